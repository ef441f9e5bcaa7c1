//! What the bit-exact numerics cost: the reference's logits against the float models over a
//! token sequence, every position compared.

use crate::session::Session;
use anyhow::Result;
use model::float::{agreement, Agreement, FloatMode, FloatModel, FloatRunner};
use model::reference::logits_to_f32;
use serde::Serialize;
use std::sync::Arc;

/// Text used when no prompt is given (tokenized, then repeated to the requested length).
pub const DEFAULT_TEXT: &str = "The accelerator streams ternary weights from DRAM through on-chip buffers, \
builds tables of partial sums from the incoming activations, and looks up each group of weights \
instead of multiplying. ";

/// The accuracy report.
#[derive(Debug, Clone, Serialize)]
pub struct AccuracyReport {
    /// Config name.
    pub config: String,
    /// Positions compared.
    pub positions: usize,
    /// Bit-exact reference against `w158a8` (the published BitNet semantics).
    pub exact_vs_w158a8: Agreement,
    /// Bit-exact reference against the unquantized model.
    pub exact_vs_plain: Agreement,
    /// `w158a8` against the unquantized model (what BitNet quantization itself changes).
    pub w158a8_vs_plain: Agreement,
}

/// Token sequence of `positions` ids: BOS when the tokenizer adds one, then the prompt's own
/// tokens repeated.
pub fn eval_tokens(s: &Session, prompt: Option<&str>, positions: usize) -> Result<Vec<u32>> {
    let text = prompt.unwrap_or(DEFAULT_TEXT);
    let body = s.tok.encode_plain(text).map_err(anyhow::Error::msg)?;
    if body.is_empty() {
        anyhow::bail!("the prompt {text:?} has no tokens to evaluate");
    }
    // The tokenizer's own rule decides about BOS: the empty text is BOS alone or nothing.
    let mut out = s.tok.encode("").map_err(anyhow::Error::msg)?;
    while out.len() < positions {
        out.extend(body.iter().take(positions - out.len()));
    }
    out.truncate(positions.max(1));
    Ok(out)
}

/// Run the three models over `tokens` and compare every position.
pub fn measure(s: &Session, tokens: &[u32]) -> Result<AccuracyReport> {
    let mut r = s.reference();
    let exact: Vec<Vec<f32>> = r.prefill_all(tokens)?.iter().map(|l| logits_to_f32(l)).collect();
    let run = |mode| FloatRunner::new(Arc::new(FloatModel::new(&s.cfg, s.weights.clone(), mode))).forward(tokens);
    let w158 = run(FloatMode::W158A8);
    let plain = run(FloatMode::Plain);
    Ok(AccuracyReport {
        config: s.cfg.name.clone(),
        positions: tokens.len(),
        exact_vs_w158a8: agreement(&exact, &w158),
        exact_vs_plain: agreement(&exact, &plain),
        w158a8_vs_plain: agreement(&w158, &plain),
    })
}
