//! `trit eval`: the logits a model gives a prompt, and perplexity over a text file, under one of
//! three numerics: the two float models of [`model::float`] (`plain`, `w158a8`) or the bit-exact
//! reference (`exact`), whose Q.16 integer logits are dequantized as `l / 65536` (the LM head
//! requantizes to 2^-16, `docs/numerics.md` §8).
//!
//! Perplexity windows: the text is tokenized without BOS into `N` tokens. A window holds `W =
//! ctx - 1` text tokens after a BOS (or `ctx` without, when the tokenizer adds none); windows
//! start every `stride` tokens (default `W`: chunks that do not overlap). Each window starts
//! from an empty cache, and scores only the tokens the previous windows did not (a sliding
//! window with `stride < W` gives them more context), so every token that has a predecessor in
//! its window is scored exactly once: all `N` with BOS; without BOS the first token of the text,
//! and in non-overlapping chunks the first token of each chunk, are context only.
//! `ppl = exp(mean over scored tokens of -ln softmax(logits)[token])`.

use crate::session::Session;
use anyhow::{bail, Result};
use model::float::{FloatMode, FloatModel, FloatRunner};
use model::reference::{logits_to_f32, Reference};
use serde::Serialize;
use std::sync::Arc;

/// Which numerics compute the logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The checkpoint's float weights, unquantized (f32).
    Plain,
    /// Published BitNet b1.58 semantics in f32: ternary weights, int8 activations.
    W158a8,
    /// The bit-exact reference (the accelerator's numerics), logits dequantized from Q.16.
    Exact,
}

impl Mode {
    /// The name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::W158a8 => "w158a8",
            Mode::Exact => "exact",
        }
    }
}

/// Positions fed per step when scoring (bounds memory to this many logit rows).
const BLOCK: usize = 64;

/// A model under one numerics that is fed tokens in order and returns each position's logits.
enum Runner {
    Exact(Reference),
    Float(FloatRunner),
}

impl Runner {
    fn new(s: &Session, mode: Mode, float: &Option<Arc<FloatModel>>) -> Runner {
        match (mode, float) {
            (Mode::Exact, _) => Runner::Exact(s.reference()),
            (_, Some(m)) => Runner::Float(FloatRunner::new(Arc::clone(m))),
            (_, None) => unreachable!("float modes build their model first"),
        }
    }

    /// Logits of every position of `tokens`, in f64 (exact for the Q.16 integers).
    fn feed(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f64>>> {
        Ok(match self {
            Runner::Exact(r) => {
                r.prefill_all(tokens)?.iter().map(|l| l.iter().map(|&x| x as f64 / 65536.0).collect()).collect()
            }
            Runner::Float(r) => r.forward(tokens).iter().map(|l| l.iter().map(|&x| x as f64).collect()).collect(),
        })
    }
}

fn float_model(s: &Session, mode: Mode) -> Option<Arc<FloatModel>> {
    let fm = match mode {
        Mode::Plain => FloatMode::Plain,
        Mode::W158a8 => FloatMode::W158A8,
        Mode::Exact => return None,
    };
    Some(Arc::new(FloatModel::new(&s.cfg, s.weights.clone(), fm)))
}

/// Logits of every position of `ids` (fed from an empty cache), one row per position.
pub fn logits(s: &Session, ids: &[u32], mode: Mode) -> Result<Vec<Vec<f32>>> {
    match mode {
        Mode::Exact => Ok(s.reference().prefill_all(ids)?.iter().map(|l| logits_to_f32(l)).collect()),
        _ => {
            let m = float_model(s, mode).expect("a float mode");
            Ok(FloatRunner::new(m).forward(ids))
        }
    }
}

/// `-ln softmax(l)[target]`.
pub fn nll(l: &[f64], target: u32) -> f64 {
    let max = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = l.iter().map(|x| (x - max).exp()).sum::<f64>().ln() + max;
    lse - l[target as usize]
}

/// The perplexity report.
#[derive(Debug, Clone, Serialize)]
pub struct Perplexity {
    /// exp(mean negative log-likelihood).
    pub perplexity: f64,
    /// Tokens scored.
    pub tokens: usize,
    /// Numerics.
    pub mode: Mode,
    /// Mean negative log-likelihood, nats per token.
    pub nll: f64,
    /// Windows run.
    pub windows: usize,
    /// Positions per window (BOS included).
    pub context: usize,
    /// Text tokens between window starts.
    pub stride: usize,
}

/// Window settings of [`perplexity`]: `ctx` positions per window (default: the model's
/// context length), windows `stride` text tokens apart (default: no overlap).
#[derive(Debug, Clone, Copy, Default)]
pub struct Windows {
    /// Positions per window, BOS included.
    pub ctx: Option<usize>,
    /// Text tokens between window starts.
    pub stride: Option<usize>,
}

/// Perplexity of `text` (see the module docs for the windows).
pub fn perplexity(s: &Session, text: &str, mode: Mode, w: Windows) -> Result<Perplexity> {
    let max = s.cfg.model.max_seq;
    let ctx = w.ctx.unwrap_or(max);
    let bos = s.tok.add_bos;
    let min_ctx = if bos { 2 } else { 3 };
    if ctx < min_ctx || ctx > max {
        bail!("--ctx {ctx}: must be in {min_ctx}..={max} (the context length of config {})", s.cfg.name);
    }
    let width = ctx - bos as usize;
    let stride = w.stride.unwrap_or(width);
    if stride == 0 || stride > width {
        bail!("--stride {stride}: must be in 1..={width} (the text tokens of a {ctx}-position window)");
    }
    let tokens = s.tok.encode_plain(text).map_err(anyhow::Error::msg)?;
    if tokens.len() < 2 - bos as usize {
        bail!("the text has {} token(s): perplexity needs at least {}", tokens.len(), 2 - bos as usize);
    }
    let float = float_model(s, mode);
    let (mut sum, mut scored, mut windows) = (0f64, 0usize, 0usize);
    // Global index of the first text token not scored yet.
    let mut next = 0;
    let mut start = 0;
    loop {
        let end = (start + width).min(tokens.len());
        let mut input = Vec::with_capacity(ctx);
        if bos {
            input.push(s.tok.bos);
        }
        input.extend_from_slice(&tokens[start..end]);
        // Input position j predicts input[j + 1], i.e. text token start + j + 1 - bos.
        let offset = bos as usize;
        let mut runner = Runner::new(s, mode, &float);
        for (b, chunk) in input.chunks(BLOCK).enumerate() {
            for (i, l) in runner.feed(chunk)?.iter().enumerate() {
                let j = b * BLOCK + i;
                let g = start + j + 1 - offset;
                if j + 1 < input.len() && g >= next {
                    sum += nll(l, input[j + 1]);
                    scored += 1;
                }
            }
        }
        windows += 1;
        next = end;
        if end == tokens.len() {
            break;
        }
        start += stride;
    }
    let mean = sum / scored as f64;
    Ok(Perplexity { perplexity: mean.exp(), tokens: scored, mode, nll: mean, windows, context: ctx, stride })
}
