//! Checkpoints in the Hugging Face layout: `config.json` + `model.safetensors` (or shards), and
//! the f32 weight containers every checkpoint format loads into.
//!
//! [`load_dir`] is the loader the tiny model and every Hugging Face directory go through: it
//! reads the config, checks it against the chosen [`Config`], memory-maps the safetensors
//! file(s), checks every tensor's presence, shape and dtype, and converts to f32
//! ([`FloatWeights`]). The formats themselves (sharded safetensors, packed BitNet, GGUF) live in
//! [`crate::import`].

use crate::config::{Config, FfnActivation};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a checkpoint could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `config.json` is malformed or disagrees with the chosen config.
    Config {
        /// The config.json path.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// The safetensors container is malformed.
    Format {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        msg: String,
    },
    /// The GGUF container is malformed.
    Gguf {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        msg: String,
    },
    /// A tensor is missing, has the wrong shape or an unsupported dtype.
    Tensor {
        /// The tensor name.
        name: String,
        /// What is wrong.
        msg: String,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            CheckpointError::Config { path, msg } => write!(f, "{}: {msg}", path.display()),
            CheckpointError::Format { path, msg } => {
                write!(f, "{}: not a valid safetensors file: {msg}", path.display())
            }
            CheckpointError::Gguf { path, msg } => write!(f, "{}: not a valid GGUF file: {msg}", path.display()),
            CheckpointError::Tensor { name, msg } => write!(f, "tensor `{name}`: {msg}"),
        }
    }
}

impl std::error::Error for CheckpointError {}

/// Weights of one decoder layer, f32, linears row-major `[out][in]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatLayer {
    /// input_layernorm.
    pub attn_norm: Vec<f32>,
    /// q_proj `[heads*head_dim][hidden]`.
    pub q: Vec<f32>,
    /// k_proj `[kv_heads*head_dim][hidden]`.
    pub k: Vec<f32>,
    /// v_proj `[kv_heads*head_dim][hidden]`.
    pub v: Vec<f32>,
    /// o_proj `[hidden][hidden]`.
    pub o: Vec<f32>,
    /// attn_sub_norm `[hidden]` (BitNet only).
    pub attn_sub_norm: Option<Vec<f32>>,
    /// post_attention_layernorm.
    pub ffn_norm: Vec<f32>,
    /// gate_proj `[ffn][hidden]`.
    pub gate: Vec<f32>,
    /// up_proj `[ffn][hidden]`.
    pub up: Vec<f32>,
    /// down_proj `[hidden][ffn]`.
    pub down: Vec<f32>,
    /// ffn_sub_norm `[ffn]` (BitNet only).
    pub ffn_sub_norm: Option<Vec<f32>>,
}

/// All weights of a model in f32.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatWeights {
    /// embed_tokens `[vocab][hidden]`.
    pub embed: Vec<f32>,
    /// Decoder layers.
    pub layers: Vec<FloatLayer>,
    /// Final norm.
    pub final_norm: Vec<f32>,
    /// lm_head `[vocab][hidden]`; `None` when tied to the embedding.
    pub lm_head: Option<Vec<f32>>,
}

impl FloatWeights {
    /// The LM head matrix (the embedding when tied).
    pub fn lm_head(&self) -> &[f32] {
        self.lm_head.as_deref().unwrap_or(&self.embed)
    }
}

/// The parts of a Hugging Face `config.json` that trit reads (transformers 4 and 5 forms).
#[derive(Debug, Clone, Deserialize)]
pub struct HfConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// FFN size.
    pub intermediate_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// KV heads (defaults to the query heads).
    pub num_key_value_heads: Option<usize>,
    /// Head dimension (defaults to hidden / heads).
    pub head_dim: Option<usize>,
    /// Context length.
    pub max_position_embeddings: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base (transformers 4 form).
    pub rope_theta: Option<f64>,
    /// RoPE parameters (transformers 5 form).
    pub rope_parameters: Option<RopeParameters>,
    /// Tied embeddings.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// FFN activation name.
    pub hidden_act: String,
    /// BOS id.
    pub bos_token_id: Option<serde_json::Value>,
    /// EOS id (an int or a list).
    pub eos_token_id: Option<serde_json::Value>,
    /// `bitnet`, `llama`, ...
    #[serde(default)]
    pub model_type: Option<String>,
    /// How pre-quantized weights are stored (BitNet: packed uint8 + `weight_scale`).
    #[serde(default)]
    pub quantization_config: Option<QuantizationConfig>,
}

/// `quantization_config` of a pre-quantized checkpoint (transformers' `BitNetQuantConfig`).
#[derive(Debug, Clone, Deserialize)]
pub struct QuantizationConfig {
    /// `bitnet` for BitNet checkpoints.
    pub quant_method: Option<String>,
    /// `autobitlinear` (the 2B-4T release: the output is multiplied by `weight_scale`) or
    /// `bitlinear` (the transformers default: divided by it).
    pub linear_class: Option<String>,
    /// `offline` (packed ternary weights) or `online` (float master weights).
    pub quantization_mode: Option<String>,
}

/// `rope_parameters` of transformers 5.
#[derive(Debug, Clone, Deserialize)]
pub struct RopeParameters {
    /// RoPE base.
    pub rope_theta: Option<f64>,
    /// Only `default` is supported.
    pub rope_type: Option<String>,
}

impl HfConfig {
    /// Read and parse `config.json`.
    pub fn read(path: &Path) -> Result<HfConfig, CheckpointError> {
        let text = std::fs::read_to_string(path).map_err(|source| CheckpointError::Io { path: path.into(), source })?;
        serde_json::from_str(&text).map_err(|e| CheckpointError::Config { path: path.into(), msg: e.to_string() })
    }

    /// RoPE base from either form.
    pub fn theta(&self) -> Option<f64> {
        self.rope_parameters.as_ref().and_then(|p| p.rope_theta).or(self.rope_theta)
    }

    /// Check every dimension against the chosen config; the message names both sides.
    pub fn check_against(&self, cfg: &Config, path: &Path) -> Result<(), CheckpointError> {
        let m = &cfg.model;
        let bad = |msg: String| Err(CheckpointError::Config { path: path.into(), msg });
        let pairs: [(&str, usize, &str, usize); 6] = [
            ("vocab_size", self.vocab_size, "model.vocab", m.vocab),
            ("hidden_size", self.hidden_size, "model.hidden", m.hidden),
            ("intermediate_size", self.intermediate_size, "model.ffn", m.ffn),
            ("num_hidden_layers", self.num_hidden_layers, "model.layers", m.layers),
            ("num_attention_heads", self.num_attention_heads, "model.heads", m.heads),
            (
                "num_key_value_heads",
                self.num_key_value_heads.unwrap_or(self.num_attention_heads),
                "model.kv_heads",
                m.kv_heads,
            ),
        ];
        for (hf, a, ours, b) in pairs {
            if a != b {
                return bad(format!("`{hf}` is {a} but config {} has {ours} = {b}", cfg.name));
            }
        }
        let hd = self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1));
        if hd != m.head_dim {
            return bad(format!("head_dim is {hd} but config {} has model.head_dim = {}", cfg.name, m.head_dim));
        }
        if m.max_seq > self.max_position_embeddings {
            return bad(format!(
                "`max_position_embeddings` is {} but config {} asks for model.max_seq = {}",
                self.max_position_embeddings, cfg.name, m.max_seq
            ));
        }
        if let Some(t) = self.rope_parameters.as_ref().and_then(|p| p.rope_type.clone()) {
            if t != "default" {
                return bad(format!("rope_type `{t}` is not supported (only `default`)"));
            }
        }
        match self.theta() {
            Some(t) if (t - m.rope_theta).abs() <= 1e-9 * t.abs() => {}
            Some(t) => {
                return bad(format!(
                    "`rope_theta` is {t} but config {} has model.rope_theta = {}",
                    cfg.name, m.rope_theta
                ))
            }
            None => return bad("no `rope_theta` (neither top-level nor in `rope_parameters`)".into()),
        }
        if (self.rms_norm_eps - m.norm_eps).abs() > 1e-12 {
            return bad(format!(
                "`rms_norm_eps` is {} but config {} has model.norm_eps = {}",
                self.rms_norm_eps, cfg.name, m.norm_eps
            ));
        }
        if self.tie_word_embeddings != m.tied_embeddings {
            return bad(format!(
                "`tie_word_embeddings` is {} but config {} has model.tied_embeddings = {}",
                self.tie_word_embeddings, cfg.name, m.tied_embeddings
            ));
        }
        let act = match self.hidden_act.as_str() {
            "relu2" => FfnActivation::Relu2,
            "silu" | "swish" => FfnActivation::Silu,
            other => return bad(format!("`hidden_act` `{other}` is not supported (relu2, silu)")),
        };
        if act != m.ffn_activation {
            return bad(format!(
                "`hidden_act` is {} but config {} has model.ffn_activation = {:?}",
                self.hidden_act, cfg.name, m.ffn_activation
            ));
        }
        Ok(())
    }
}

/// Load a Hugging Face checkpoint directory (`config.json` + `model.safetensors` or
/// `model.safetensors.index.json` shards), checked against `cfg`, as f32 weights. Pre-quantized
/// (packed BitNet) linears come back dequantized (`code * scale`); use
/// [`crate::import::Checkpoint::load_quant`] to keep their codes.
pub fn load_dir(dir: &Path, cfg: &Config) -> Result<FloatWeights, CheckpointError> {
    crate::import::Checkpoint::open(dir)?.load_float(cfg)
}
