//! Loading a model (the built-in tiny one or a checkpoint directory) with its config and
//! tokenizer, and generating tokens with it.

use crate::device::Device;
use crate::refdev::RefDevice;
use crate::runtime::{DeviceShape, Runtime};
use crate::sampling::{Sampler, SamplingParams};
use anyhow::{bail, Context, Result};
use model::checkpoint::FloatWeights;
use model::config::{Config, FfnActivation, ModelConfig};
use model::import::Checkpoint;
use model::reference::{QuantModel, Reference};
use model::tokenizer::{json_ids, Tok};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A loaded model: config, float weights (as loaded), hardware-form weights and tokenizer.
pub struct Session {
    /// The config the model runs under.
    pub cfg: Config,
    /// Where the checkpoint was read from.
    pub dir: PathBuf,
    /// Float weights as loaded (the yardstick models start from these).
    pub weights: FloatWeights,
    /// Hardware-form weights.
    pub quant: Arc<QuantModel>,
    /// Tokenizer.
    pub tok: Tok,
}

/// A fresh directory name for writing the tiny model under the system temp directory: unique
/// per process and call, so concurrent sessions (test threads) never share one. It is written,
/// loaded and removed again; the model is small and deterministic.
fn tiny_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("trit-tiny-model-{}-{n}", std::process::id()))
}

impl Session {
    /// Load `model` (`tiny` or a directory) under `config` (a preset name or file; default:
    /// `tiny` for the tiny model, derived from `config.json` otherwise).
    pub fn open(model: &str, config: Option<&str>) -> Result<Session> {
        if model == "tiny" {
            return Session::tiny(Config::load(config.unwrap_or("tiny"))?, model::tiny::TINY_SEED);
        }
        let dir = PathBuf::from(model);
        if !dir.exists() {
            bail!("--model {model}: no such file or directory (give a Hugging Face checkpoint directory, a .gguf or .safetensors file, or `tiny`)");
        }
        let cfg = match config {
            Some(c) => Config::load(c)?,
            None => config_from_checkpoint(&dir)?,
        };
        Session::load(&dir, cfg)
    }

    /// The random tiny-model weights for `cfg` (any config small enough to generate), written
    /// as a checkpoint and loaded back like any other.
    pub fn tiny(cfg: Config, seed: u64) -> Result<Session> {
        let dir = tiny_dir();
        model::tiny::write_model_dir(&dir, &cfg, seed).map_err(anyhow::Error::msg)?;
        let s = Session::load(&dir, cfg);
        let _ = std::fs::remove_dir_all(&dir);
        s
    }

    /// Load any checkpoint format (`model::import`): float weights as stored (pre-quantized
    /// linears dequantized), hardware weights straight from the checkpoint (pre-quantized
    /// ternary codes kept exactly). The tokenizer is `tokenizer.json` in the directory, or beside
    /// a `.gguf`/`.safetensors` file.
    fn load(dir: &Path, cfg: Config) -> Result<Session> {
        let ctx = || format!("loading checkpoint {}", dir.display());
        let ck = Checkpoint::open(dir).with_context(ctx)?;
        let weights = ck.load_float(&cfg).with_context(ctx)?;
        let quant = Arc::new(ck.load_quant(&cfg).with_context(ctx)?);
        let tok_dir = if dir.is_dir() { dir } else { dir.parent().unwrap_or(Path::new(".")) };
        // config.json may list several EOS ids; the config's own comes first.
        let mut eos = vec![cfg.model.eos_token_id];
        if let Ok(text) = std::fs::read_to_string(tok_dir.join("config.json")) {
            let raw: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            eos.extend(raw.get("eos_token_id").map(json_ids).unwrap_or_default());
        }
        let tok = Tok::load_dir(tok_dir, cfg.model.bos_token_id, &eos).map_err(anyhow::Error::msg)?;
        Ok(Session { cfg, dir: dir.to_path_buf(), weights, quant, tok })
    }

    /// A fresh reference engine for this model (the golden model, called directly).
    pub fn reference(&self) -> Reference {
        Reference::new(Arc::clone(&self.quant))
    }

    /// How the generated design for this config lays out device memory.
    pub fn device_shape(&self) -> DeviceShape {
        DeviceShape::of(&self.cfg, &hdl::TlmmParams::from_config(&self.cfg))
    }

    /// The model loaded on `dev` through the runtime.
    pub fn runtime<D: Device>(&self, dev: D) -> Result<Runtime<D>> {
        Runtime::new(dev, &self.quant, self.device_shape())
    }

    /// The model loaded on the reference device through the runtime (the `ref` backend).
    pub fn ref_runtime(&self) -> Result<Runtime<RefDevice>> {
        let shape = self.device_shape();
        self.runtime(RefDevice::new(shape.tl, shape.buffer_beats, shape.bus_bytes, 16 << 30))
    }

    /// Prompt ids from text (BOS first when the tokenizer asks for it, see [`model::tokenizer`])
    /// or from explicit ids, fed as given (checked against the vocabulary and the context length).
    pub fn prompt_ids(&self, text: Option<&str>, ids: Option<&[u32]>) -> Result<Vec<u32>> {
        let ids = match (text, ids) {
            (Some(t), None) => self.tok.encode(t).map_err(anyhow::Error::msg)?,
            (None, Some(i)) => i.to_vec(),
            _ => bail!("give exactly one of --prompt and --prompt-ids"),
        };
        if ids.is_empty() {
            bail!("the prompt is empty");
        }
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= self.cfg.model.vocab) {
            bail!("prompt token id {bad} is outside the vocabulary (size {})", self.cfg.model.vocab);
        }
        if ids.len() > self.cfg.model.max_seq {
            bail!(
                "the prompt has {} tokens, more than the context length max_seq = {} of config {}",
                ids.len(),
                self.cfg.model.max_seq,
                self.cfg.name
            );
        }
        Ok(ids)
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// `n` tokens were generated.
    Length,
    /// The model produced an end-of-sequence id (any of the tokenizer's stop ids).
    Eos,
    /// The context (max_seq) is full.
    Context,
    /// The text reached one of the stop strings.
    StopString,
}

impl Stop {
    /// The name used in JSON and in the summary line.
    pub fn name(self) -> &'static str {
        match self {
            Stop::Length => "length",
            Stop::Eos => "eos",
            Stop::Context => "context",
            Stop::StopString => "stop_string",
        }
    }
}

/// Engine time spent in a generation (sampling and detokenizing excluded).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timing {
    /// The prefill (prompt processing, yields the first token's logits).
    pub prefill: Duration,
    /// All decode steps.
    pub decode: Duration,
    /// Decode steps run (each feeds one generated token back).
    pub decode_steps: usize,
}

/// Result of a generation.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    /// Ids fed to the model.
    pub prompt_ids: Vec<u32>,
    /// Ids generated (the stop id, or the token completing a stop string, included).
    pub output_ids: Vec<u32>,
    /// Decoded text of `output_ids`, cut before a stop string.
    pub text: String,
    /// Why it stopped.
    pub stop: Stop,
    /// Logits (Q.16) after the last token fed.
    #[serde(skip)]
    pub last_logits: Vec<i32>,
    /// Engine time.
    #[serde(skip)]
    pub timing: Timing,
}

/// What generation needs from a backend: prefill, decode, position.
pub trait Engine {
    /// Process a prompt; last logits.
    fn prefill(&mut self, tokens: &[u32]) -> Result<Vec<i32>>;
    /// Process one token; its logits.
    fn decode(&mut self, token: u32) -> Result<Vec<i32>>;
    /// Tokens in the context.
    fn position(&self) -> usize;
}

impl Engine for Reference {
    fn prefill(&mut self, tokens: &[u32]) -> Result<Vec<i32>> {
        Ok(Reference::prefill(self, tokens)?)
    }
    fn decode(&mut self, token: u32) -> Result<Vec<i32>> {
        Ok(Reference::decode(self, token)?)
    }
    fn position(&self) -> usize {
        Reference::position(self)
    }
}

impl<D: Device> Engine for Runtime<D> {
    fn prefill(&mut self, tokens: &[u32]) -> Result<Vec<i32>> {
        Runtime::prefill(self, tokens)
    }
    fn decode(&mut self, token: u32) -> Result<Vec<i32>> {
        Runtime::decode(self, token)
    }
    fn position(&self) -> usize {
        Runtime::position(self)
    }
}

/// How to generate: how many tokens, how to sample them, where to stop.
#[derive(Debug, Clone, Default)]
pub struct GenOptions {
    /// At most this many tokens.
    pub n: usize,
    /// The sampler chain's settings.
    pub sampling: SamplingParams,
    /// Stop when the generated text contains one of these (matched on the decoded text,
    /// special tokens skipped; the text is cut before it).
    pub stop: Vec<String>,
}

impl GenOptions {
    /// Check the settings (sampling ranges, no empty stop string).
    pub fn validate(&self) -> Result<()> {
        self.sampling.validate().map_err(anyhow::Error::msg)?;
        if self.stop.iter().any(|s| s.is_empty()) {
            bail!("--stop: a stop string must not be empty");
        }
        Ok(())
    }
}

/// Streams generated text: emits what is settled, holds back a trailing incomplete UTF-8
/// character and any tail that could still become a stop string.
struct TextStream<'a> {
    stops: &'a [String],
    sent: String,
}

impl TextStream<'_> {
    /// Feed the whole text so far; returns the cut position when a stop string appears.
    fn update(&mut self, full: &str, emit: &mut impl FnMut(&str)) -> Option<usize> {
        if let Some(pos) = self.stops.iter().filter_map(|s| full.find(s.as_str())).min() {
            self.emit_to(full, pos.max(self.sent.len()), emit);
            return Some(pos.max(self.sent.len()));
        }
        let mut end = full.trim_end_matches('\u{FFFD}').len();
        let held = self
            .stops
            .iter()
            .flat_map(|s| s.char_indices().skip(1).map(move |(i, _)| &s[..i]))
            .filter(|prefix| full[..end].ends_with(prefix))
            .map(|prefix| prefix.len())
            .max()
            .unwrap_or(0);
        end -= held;
        self.emit_to(full, end, emit);
        None
    }

    fn emit_to(&mut self, full: &str, end: usize, emit: &mut impl FnMut(&str)) {
        // Only extend what was sent (the decoded text of a prefix of the ids is a prefix of
        // the text of all of them, up to a held-back incomplete character).
        if end > self.sent.len() && full.is_char_boundary(end) && full.starts_with(self.sent.as_str()) {
            emit(&full[self.sent.len()..end]);
            self.sent.push_str(&full[self.sent.len()..end]);
        }
    }
}

/// Generate up to `opts.n` tokens on any engine. `on_token` sees each new id, `on_text` each
/// new piece of settled text (concatenated, the pieces are the final text).
pub fn generate(
    s: &Session,
    r: &mut impl Engine,
    prompt: &[u32],
    opts: &GenOptions,
    mut on_token: impl FnMut(u32),
    mut on_text: impl FnMut(&str),
) -> Result<Generation> {
    opts.validate()?;
    let mut sampler = Sampler::new(opts.sampling.clone()).map_err(anyhow::Error::msg)?;
    let mut timing = Timing::default();
    let t0 = Instant::now();
    let mut logits = r.prefill(prompt)?;
    timing.prefill = t0.elapsed();
    let mut history = prompt.to_vec();
    let mut out = Vec::new();
    let mut stream = TextStream { stops: &opts.stop, sent: String::new() };
    let mut text = String::new();
    let max = s.cfg.model.max_seq;
    let stop = loop {
        if out.len() == opts.n {
            break Stop::Length;
        }
        let next = sampler.sample_q16(&logits, &history);
        out.push(next);
        history.push(next);
        on_token(next);
        text = s.tok.decode(&out).map_err(anyhow::Error::msg)?;
        if s.tok.is_stop(next) {
            break Stop::Eos;
        }
        if let Some(cut) = stream.update(&text, &mut on_text) {
            text.truncate(cut);
            break Stop::StopString;
        }
        if r.position() == max {
            break Stop::Context;
        }
        if out.len() < opts.n {
            let t = Instant::now();
            logits = r.decode(next)?;
            timing.decode += t.elapsed();
            timing.decode_steps += 1;
        }
    };
    stream.emit_to(&text, text.len(), &mut on_text);
    Ok(Generation { prompt_ids: prompt.to_vec(), output_ids: out, text, stop, last_logits: logits, timing })
}

/// Greedy generation of up to `n` tokens on any engine; `on_token` sees each new id.
pub fn generate_greedy(
    s: &Session,
    r: &mut impl Engine,
    prompt: &[u32],
    n: usize,
    on_token: impl FnMut(u32),
) -> Result<Generation> {
    let opts = GenOptions { n, sampling: SamplingParams::greedy(), stop: vec![] };
    generate(s, r, prompt, &opts, on_token, |_| {})
}

/// A config for a checkpoint (directory, `.safetensors` or `.gguf`) without an explicit one:
/// the model section from `config.json` or the GGUF metadata (sub-norms when the model is
/// BitNet), everything else from the `tellme-kv260` preset.
pub fn config_from_checkpoint(dir: &Path) -> Result<Config> {
    let ck = Checkpoint::open(dir)?;
    let path = ck.config_path().to_path_buf();
    let hf = ck.hf_config().clone();
    let id = |v: &Option<serde_json::Value>, what: &str| -> Result<u32> {
        let v = v.as_ref().with_context(|| format!("{}: no `{what}`", path.display()))?;
        let n = v.as_u64().or_else(|| v.as_array().and_then(|a| a.first()).and_then(|x| x.as_u64()));
        n.map(|n| n as u32).with_context(|| format!("{}: `{what}` is not a token id", path.display()))
    };
    let mut cfg = Config::preset("tellme-kv260")?;
    cfg.name = format!("{} (from config.json)", dir.display());
    cfg.model = ModelConfig {
        vocab: hf.vocab_size,
        hidden: hf.hidden_size,
        layers: hf.num_hidden_layers,
        heads: hf.num_attention_heads,
        kv_heads: hf.num_key_value_heads.unwrap_or(hf.num_attention_heads),
        head_dim: hf.head_dim.unwrap_or(hf.hidden_size / hf.num_attention_heads.max(1)),
        ffn: hf.intermediate_size,
        max_seq: hf.max_position_embeddings,
        rope_theta: hf.theta().with_context(|| format!("{}: no `rope_theta`", path.display()))?,
        norm_eps: hf.rms_norm_eps,
        tied_embeddings: hf.tie_word_embeddings,
        ffn_activation: if hf.hidden_act == "relu2" { FfnActivation::Relu2 } else { FfnActivation::Silu },
        sub_norms: ck.is_bitnet(),
        bos_token_id: id(&hf.bos_token_id, "bos_token_id")?,
        eos_token_id: id(&hf.eos_token_id, "eos_token_id")?,
    };
    cfg.engine.acc_bits = cfg.accumulator_bits_needed().max(cfg.engine.acc_bits);
    cfg.validate().map_err(|(field, rule)| anyhow::anyhow!("{}: derived config: `{field}`: {rule}", path.display()))?;
    Ok(cfg)
}
