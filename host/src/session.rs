//! Loading a model (the built-in tiny one or a checkpoint directory) with its config and
//! tokenizer, and generating tokens with it.

use crate::device::Device;
use crate::refdev::RefDevice;
use crate::runtime::{DeviceShape, Runtime};
use anyhow::{bail, Context, Result};
use model::checkpoint::FloatWeights;
use model::config::{Config, FfnActivation, ModelConfig};
use model::import::Checkpoint;
use model::reference::{argmax, QuantModel, Reference};
use model::tokenizer::Tok;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
        let tok = Tok::load(&tok_dir.join("tokenizer.json"), cfg.model.bos_token_id, cfg.model.eos_token_id)
            .map_err(anyhow::Error::msg)?;
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

    /// Prompt ids from text (BOS first) or from explicit ids (checked against the vocabulary).
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
#[serde(rename_all = "lowercase")]
pub enum Stop {
    /// `n` tokens were generated.
    Length,
    /// The model produced EOS.
    Eos,
    /// The context (max_seq) is full.
    Context,
}

/// Result of a generation.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    /// Ids fed to the model.
    pub prompt_ids: Vec<u32>,
    /// Ids generated (EOS included if produced).
    pub output_ids: Vec<u32>,
    /// Decoded text of `output_ids`.
    pub text: String,
    /// Why it stopped.
    pub stop: Stop,
    /// Logits (Q.16) after the last token fed.
    #[serde(skip)]
    pub last_logits: Vec<i32>,
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

/// Greedy generation of up to `n` tokens on any engine; `on_token` sees each new id.
pub fn generate_greedy(
    s: &Session,
    r: &mut impl Engine,
    prompt: &[u32],
    n: usize,
    mut on_token: impl FnMut(u32),
) -> Result<Generation> {
    let mut logits = r.prefill(prompt)?;
    let mut out = Vec::new();
    let max = s.cfg.model.max_seq;
    let stop = loop {
        if out.len() == n {
            break Stop::Length;
        }
        let next = argmax(&logits);
        out.push(next);
        on_token(next);
        if next == s.cfg.model.eos_token_id {
            break Stop::Eos;
        }
        if r.position() == max {
            break Stop::Context;
        }
        if out.len() < n {
            logits = r.decode(next)?;
        }
    };
    let text = s.tok.decode(&out).map_err(anyhow::Error::msg)?;
    Ok(Generation { prompt_ids: prompt.to_vec(), output_ids: out, text, stop, last_logits: logits })
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
