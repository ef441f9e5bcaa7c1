//! The typed configuration: one TOML file per design (board + model + quantization + engine).
//!
//! This is the single source of truth for every parameter. Presets are compiled into the binary
//! (so `trit` works from any directory) and can be overridden by a file path. Unknown keys are
//! rejected by serde; every other rule is checked by [`Config::validate`], whose errors name the
//! field and the rule broken.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// Built-in presets: (name, TOML text).
const PRESETS: &[(&str, &str)] = &[
    ("tiny", include_str!("../../configs/tiny.toml")),
    ("tellme-kv260", include_str!("../../configs/tellme-kv260.toml")),
    ("tellme-kv260-fit", include_str!("../../configs/tellme-kv260-fit.toml")),
    ("bitnet2b-kv260", include_str!("../../configs/bitnet2b-kv260.toml")),
    ("accllm-u280", include_str!("../../configs/accllm-u280.toml")),
];

/// Built-in boards: (name, TOML text).
const BOARDS: &[(&str, &str)] = &[
    ("kv260", include_str!("../../configs/boards/kv260.toml")),
    ("u280", include_str!("../../configs/boards/u280.toml")),
];

/// A configuration error: which config, which field, and the rule that was broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the config came from (preset name or file path).
    pub origin: String,
    /// Dotted field path, e.g. `model.heads`; empty for whole-file errors.
    pub field: String,
    /// What is wrong, including the offending values.
    pub rule: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "config {}: {}", self.origin, self.rule)
        } else {
            write!(f, "config {}: `{}`: {}", self.origin, self.field, self.rule)
        }
    }
}

impl std::error::Error for ConfigError {}

/// FFN activation of the gated FFN: `down(act(gate(x)) * up(x))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FfnActivation {
    /// ReLU(x)^2 (microsoft/bitnet-b1.58-2B-4T).
    Relu2,
    /// x * sigmoid(x) (Llama, 1bitLLM/bitnet_b1_58-large).
    Silu,
}

/// Weight format of the linear layers inside the decoder blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightFormat {
    /// BitNet b1.58: codes in {-1, 0, +1}, one f32 scale per tensor.
    Ternary,
    /// Group-wise 2-bit: codes in {-2, -1, 0, +1}, a u8 multiplier per group, one f32 per tensor.
    Int2,
}

/// Activation format at the input of every quantized linear layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActFormat {
    /// Per-token absmax int8 (symmetric, -128..=127 range, codes reach +-127).
    Int8,
}

/// KV-cache element format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvFormat {
    /// int8 codes, one f32 scale per (token, kv head).
    Int8,
    /// int4 codes (-7..=7), one f32 scale per (token, kv head).
    Int4,
}

impl KvFormat {
    /// Largest code magnitude.
    pub fn qmax(self) -> i32 {
        match self {
            KvFormat::Int8 => 127,
            KvFormat::Int4 => 7,
        }
    }
}

/// LM head weight format: per-row absmax codes with one f32 scale per row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadFormat {
    /// int8 codes (-127..=127), one byte each.
    #[default]
    Int8,
    /// int4 codes (-7..=7), two per byte (low nibble first): half the bytes of the largest read of
    /// a decode step, for a larger quantization error (docs/numerics.md §1).
    Int4,
}

impl HeadFormat {
    /// Largest code magnitude.
    pub fn qmax(self) -> i32 {
        match self {
            HeadFormat::Int8 => 127,
            HeadFormat::Int4 => 7,
        }
    }

    /// Bits per code in device memory.
    pub fn bits(self) -> u32 {
        match self {
            HeadFormat::Int8 => 8,
            HeadFormat::Int4 => 4,
        }
    }
}

/// Model dimensions and the architecture switches that tell BitNet/Llama variants apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Vocabulary size (rows of the embedding and the LM head).
    pub vocab: usize,
    /// Hidden size (residual stream width).
    pub hidden: usize,
    /// Number of decoder layers.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `heads`).
    pub kv_heads: usize,
    /// Dimension of one head.
    pub head_dim: usize,
    /// FFN intermediate size.
    pub ffn: usize,
    /// Context length: the largest number of positions (prompt + generated).
    pub max_seq: usize,
    /// RoPE base.
    pub rope_theta: f64,
    /// RMSNorm epsilon.
    pub norm_eps: f64,
    /// LM head shares the embedding matrix.
    pub tied_embeddings: bool,
    /// Activation of the gated FFN.
    pub ffn_activation: FfnActivation,
    /// BitNet sub-norms: RMSNorm before o_proj (size hidden) and before down_proj (size ffn).
    pub sub_norms: bool,
    /// Beginning-of-sequence token id.
    pub bos_token_id: u32,
    /// End-of-sequence token id.
    pub eos_token_id: u32,
}

/// Quantization formats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantConfig {
    /// Weight format of the decoder-block linears.
    pub weights: WeightFormat,
    /// Group size of `int2` weights (along the input dimension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_group: Option<usize>,
    /// Activation format.
    pub activations: ActFormat,
    /// KV-cache format.
    pub kv: KvFormat,
    /// LM head format (int8 when absent).
    #[serde(default)]
    pub lm_head: HeadFormat,
}

/// Most AXI master ports the kernel uses (the KV260's four HP ports reach its DDR bandwidth);
/// `engine.attention_ports` is checked against it here, the kernel generator uses it too.
pub const MAX_MEM_PORTS: usize = 4;

/// Engine parameters (the TLMM core; more engines add their own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// G: activations per TLMM group (table of 3^G entries).
    pub tlmm_group: usize,
    /// Tables built per step (each covers G activations).
    pub tables_per_step: usize,
    /// Output columns produced per cycle.
    pub columns_per_cycle: usize,
    /// Accumulator width of the linear layers, in bits.
    #[serde(default = "default_acc_bits")]
    pub acc_bits: u32,
    /// Table entry width in bits; default: the least that holds +-128*G (10 for G = 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_entry_bits: Option<u32>,
    /// Tokens that share one weight fetch in prefill (the engine's MAX_TOKENS).
    #[serde(default = "default_one")]
    pub prefill_tokens: usize,
    /// Extra register stages after the lookup sums (retimed into the adder trees).
    #[serde(default = "default_one")]
    pub pipeline_stages: usize,
    /// Prefill attention: query tokens that share one pass over the keys and values (their
    /// dot products and value sums run side by side; 1..=4, at most `prefill_tokens`).
    #[serde(default = "default_one")]
    pub attention_queries: usize,
    /// AXI ports the attention engine streams keys and values over, each with its own dot
    /// products and value sums (1..= the board's `axi_ports`, at most [`MAX_MEM_PORTS`]);
    /// default: all of them.
    /// Fewer save the per-port logic and leave the other weight ports to the linear loader's
    /// prefetch while attention runs, at more attention cycles (docs/report.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_ports: Option<usize>,
    /// On-chip weight buffer (URAM) depth in weight beats; larger matrices are split by rows.
    pub weight_buffer_beats: usize,
    /// Data width of the kernel's AXI masters, bits (128, 256 or 512); default: the board's
    /// port width. A master wider than the board's ports reaches them through a width and
    /// clock converter (TeLLMe's kernel: 256-bit masters on the KV260's 128-bit HP ports), at
    /// most the port's width times its clock (`board.axi_port_mhz`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub axi_data_bits: Option<u32>,
}

fn default_acc_bits() -> u32 {
    24
}

fn default_one() -> usize {
    1
}

/// An FPGA board: fabric budget, memory system and clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// Short name (`kv260`).
    pub name: String,
    /// Full part number for the vendor tools.
    pub part: String,
    /// Device family as yosys/Vivado name it.
    pub family: String,
    /// 6-input LUTs.
    pub lut: u64,
    /// Flip-flops.
    pub ff: u64,
    /// 36 Kb block RAMs.
    pub bram36: u64,
    /// 288 Kb UltraRAMs.
    pub uram: u64,
    /// DSP48E2 slices.
    pub dsp: u64,
    /// Memory technology (`ddr4`, `hbm2`).
    pub memory: String,
    /// Independent memory channels.
    pub memory_channels: u32,
    /// Peak DRAM bandwidth, GB/s.
    pub peak_bandwidth_gbs: f64,
    /// Achievable DRAM bandwidth assumed by the performance model, GB/s.
    pub bandwidth_gbs: f64,
    /// Number of AXI master ports the kernel may use.
    pub axi_ports: u32,
    /// Data width of one of the memory system's AXI ports, bits (the PS's HP ports on a Zynq);
    /// the kernel's masters are this wide unless `engine.axi_data_bits` says otherwise.
    pub axi_data_bits: u32,
    /// Highest clock those ports run at, MHz (Zynq UltraScale+ PS-PL interfaces: 333). Absent:
    /// they run at the kernel clock, and a wider kernel master gains nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub axi_port_mhz: Option<f64>,
    /// Kernel clock, MHz.
    pub clock_mhz: f64,
}

/// Merges `patch` into `doc`: tables key by key (the patch's keys replace the doc's), anything
/// else replaced whole.
fn merge_tables(doc: &mut toml::Table, patch: toml::Table) {
    for (section, value) in patch {
        match (doc.get_mut(&section), value) {
            (Some(toml::Value::Table(d)), toml::Value::Table(p)) => d.extend(p),
            (_, v) => {
                doc.insert(section, v);
            }
        }
    }
}

/// What a config file holds, before the board reference is resolved.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    name: String,
    board: String,
    model: ModelConfig,
    quant: QuantConfig,
    engine: EngineConfig,
}

/// int8 codes the accelerator's attention engine takes per cycle and port (one 16-byte read
/// element); head dimensions must be a multiple of it. (The LM head takes a whole bus word:
/// [`Config::head_lane_bytes`].)
pub const CODE_LANES: usize = 16;

/// Bytes the LM head takes per port and cycle on a `bus_bits`-wide bus: a whole bus word (the
/// head is the largest read of a decode step). The kernel generator passes it to the RTL.
pub fn head_lane_bytes(bus_bits: usize) -> usize {
    bus_bits / 8
}

/// A complete, validated configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Design name.
    pub name: String,
    /// The board, resolved from `configs/boards/`.
    pub board: Board,
    /// Model dimensions and switches.
    pub model: ModelConfig,
    /// Quantization formats.
    pub quant: QuantConfig,
    /// Engine parameters.
    pub engine: EngineConfig,
}

impl Config {
    /// Names of the built-in presets.
    pub fn preset_names() -> Vec<&'static str> {
        PRESETS.iter().map(|(n, _)| *n).collect()
    }

    /// Presets that do not build on another (`base`): the ones a variant may name as its base.
    pub fn root_preset_names() -> Vec<&'static str> {
        let is_root = |text: &str| toml::from_str::<toml::Table>(text).is_ok_and(|doc| !doc.contains_key("base"));
        PRESETS.iter().filter(|(_, t)| is_root(t)).map(|(n, _)| *n).collect()
    }

    /// A built-in preset's TOML text by name.
    fn preset_text(name: &str) -> Option<&'static str> {
        PRESETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// A built-in preset by name.
    pub fn preset(name: &str) -> Result<Config, ConfigError> {
        let text = Self::preset_text(name).ok_or_else(|| ConfigError {
            origin: name.to_string(),
            field: String::new(),
            rule: format!("no such preset (known: {})", Self::preset_names().join(", ")),
        })?;
        Self::from_toml(text, name, None)
    }

    /// A built-in preset with some keys replaced: `patch` is TOML whose tables are merged key by
    /// key into the preset's (`"[model]\nkv_heads = 1\n"`), then the result is validated as
    /// a whole. For small variants of a preset in tests and experiments.
    pub fn preset_with(name: &str, patch: &str) -> Result<Config, ConfigError> {
        let origin = format!("{name} (patched)");
        let err = |rule: String| ConfigError { origin: origin.clone(), field: String::new(), rule };
        let text = Self::preset_text(name);
        let text = text.ok_or_else(|| err(format!("no such preset (known: {})", Self::preset_names().join(", "))))?;
        let mut doc: toml::Table = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let patch: toml::Table = toml::from_str(patch).map_err(|e| err(format!("patch: {}", e.to_string().trim())))?;
        merge_tables(&mut doc, patch);
        let merged = toml::to_string(&doc).map_err(|e| err(e.to_string()))?;
        Self::from_toml(&merged, &origin, None)
    }

    /// A preset name or the path of a TOML file.
    pub fn load(spec: &str) -> Result<Config, ConfigError> {
        let looks_like_path = spec.contains('/') || spec.ends_with(".toml");
        if !looks_like_path {
            return Self::preset(spec);
        }
        let path = Path::new(spec);
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: spec.to_string(),
            field: String::new(),
            rule: format!("cannot read file: {e}"),
        })?;
        Self::from_toml(&text, spec, path.parent())
    }

    /// Parse and validate TOML text. `base_dir` resolves a board given as a relative path.
    ///
    /// `base = "<preset>"` at the top takes every key of that preset and then the file's own,
    /// table by table and key by key (a variant names only what it changes: the model's
    /// dimensions stay the preset's). The merged text is validated as a whole.
    pub fn from_toml(text: &str, origin: &str, base_dir: Option<&Path>) -> Result<Config, ConfigError> {
        let err = |field: &str, rule: String| ConfigError { origin: origin.to_string(), field: field.into(), rule };
        let mut doc: toml::Table = toml::from_str(text).map_err(|e| err("", e.to_string().trim().to_string()))?;
        let merged;
        let text = match doc.remove("base") {
            None => text,
            Some(toml::Value::String(base)) => {
                let known = || Self::preset_names().join(", ");
                let base_text = Self::preset_text(&base)
                    .ok_or_else(|| err("base", format!("no such preset `{base}` (known: {})", known())))?;
                let mut full: toml::Table = toml::from_str(base_text).map_err(|e| err("base", e.to_string()))?;
                if full.contains_key("base") {
                    return Err(err(
                        "base",
                        format!("preset `{base}` has a base itself; name the preset it builds on"),
                    ));
                }
                merge_tables(&mut full, doc);
                merged = toml::to_string(&full).map_err(|e| err("", e.to_string()))?;
                merged.as_str()
            }
            Some(_) => return Err(err("base", "must be a preset's name (a string)".into())),
        };
        let file: ConfigFile = toml::from_str(text).map_err(|e| err("", e.to_string().trim().to_string()))?;
        let board = load_board(&file.board, base_dir).map_err(|rule| ConfigError {
            origin: origin.to_string(),
            field: "board".into(),
            rule,
        })?;
        let cfg = Config { name: file.name, board, model: file.model, quant: file.quant, engine: file.engine };
        cfg.validate().map_err(|(field, rule)| ConfigError { origin: origin.to_string(), field, rule })?;
        Ok(cfg)
    }

    /// Check every rule; the error is (field, rule).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let m = &self.model;
        let err = |f: &str, r: String| Err((f.to_string(), r));
        for (field, v) in [
            ("model.vocab", m.vocab),
            ("model.hidden", m.hidden),
            ("model.layers", m.layers),
            ("model.heads", m.heads),
            ("model.kv_heads", m.kv_heads),
            ("model.head_dim", m.head_dim),
            ("model.ffn", m.ffn),
            ("model.max_seq", m.max_seq),
        ] {
            if v == 0 {
                return err(field, "must be at least 1, got 0".into());
            }
        }
        if m.hidden % m.heads != 0 {
            return err("model.heads", format!("heads must divide hidden ({} does not divide {})", m.heads, m.hidden));
        }
        if m.heads * m.head_dim != m.hidden {
            return err(
                "model.head_dim",
                format!("heads x head_dim must equal hidden ({} x {} != {})", m.heads, m.head_dim, m.hidden),
            );
        }
        if m.heads % m.kv_heads != 0 {
            return err(
                "model.kv_heads",
                format!("kv_heads must divide heads ({} does not divide {})", m.kv_heads, m.heads),
            );
        }
        if m.head_dim % CODE_LANES != 0 {
            return err(
                "model.head_dim",
                format!(
                    "must be a multiple of {CODE_LANES} (the attention engine reads {CODE_LANES} codes per cycle), got {}",
                    m.head_dim
                ),
            );
        }
        let head_codes = self.head_lane_bytes() * 8 / self.quant.lm_head.bits() as usize;
        if m.hidden % head_codes != 0 {
            return err(
                "quant.lm_head",
                format!(
                    "hidden ({}) must be a multiple of {head_codes} (the LM head reads {head_codes} codes per cycle)",
                    m.hidden
                ),
            );
        }
        if m.head_dim > 512 {
            return err("model.head_dim", format!("at most 512 is supported, got {}", m.head_dim));
        }
        if m.hidden > 65536 || m.ffn > 65536 {
            return err("model.ffn", format!("hidden and ffn must be at most 65536 (got {} and {})", m.hidden, m.ffn));
        }
        if m.max_seq > 1 << 20 {
            return err("model.max_seq", format!("at most 1048576 positions, got {}", m.max_seq));
        }
        if !(m.rope_theta.is_finite() && m.rope_theta > 1.0) {
            return err("model.rope_theta", format!("must be a finite number above 1, got {}", m.rope_theta));
        }
        if !(m.norm_eps.is_finite() && m.norm_eps > 0.0 && m.norm_eps < 1.0) {
            return err("model.norm_eps", format!("must be in (0, 1), got {}", m.norm_eps));
        }
        for (field, id) in [("model.bos_token_id", m.bos_token_id), ("model.eos_token_id", m.eos_token_id)] {
            if id as usize >= m.vocab {
                return err(field, format!("token id {id} is outside the vocabulary (vocab {})", m.vocab));
            }
        }
        let q = &self.quant;
        match (q.weights, q.weight_group) {
            (WeightFormat::Int2, None) => return err("quant.weight_group", "int2 weights need a group size".into()),
            (WeightFormat::Int2, Some(g)) => {
                if g == 0 || m.hidden % g != 0 || m.ffn % g != 0 {
                    return err(
                        "quant.weight_group",
                        format!("must be positive and divide hidden ({}) and ffn ({}), got {g}", m.hidden, m.ffn),
                    );
                }
            }
            (WeightFormat::Ternary, Some(_)) => {
                return err("quant.weight_group", "only int2 weights are group-wise; remove it for ternary".into())
            }
            (WeightFormat::Ternary, None) => {}
        }
        let e = &self.engine;
        if !(2..=4).contains(&e.tlmm_group) {
            return err("engine.tlmm_group", format!("must be 2, 3 or 4, got {}", e.tlmm_group));
        }
        if e.tables_per_step == 0 || e.tables_per_step > 256 {
            return err("engine.tables_per_step", format!("must be in 1..=256, got {}", e.tables_per_step));
        }
        if e.columns_per_cycle == 0 || e.columns_per_cycle > 256 {
            return err("engine.columns_per_cycle", format!("must be in 1..=256, got {}", e.columns_per_cycle));
        }
        let tl = crate::pack::Tlmm::from_config(self);
        let entry_need = tl.entry_bits() as u32;
        if let Some(b) = e.table_entry_bits {
            if !(entry_need..=16).contains(&b) {
                return err(
                    "engine.table_entry_bits",
                    format!("must be in {entry_need}..=16 to hold +-128*G, got {b}"),
                );
            }
        }
        if e.prefill_tokens == 0 || e.prefill_tokens > 64 {
            return err("engine.prefill_tokens", format!("must be in 1..=64, got {}", e.prefill_tokens));
        }
        if e.attention_queries == 0 || e.attention_queries > 4 || e.attention_queries > e.prefill_tokens {
            return err(
                "engine.attention_queries",
                format!(
                    "must be in 1..=4 and at most prefill_tokens ({}), got {}",
                    e.prefill_tokens, e.attention_queries
                ),
            );
        }
        if let Some(a) = e.attention_ports {
            let most = (self.board.axi_ports as usize).min(MAX_MEM_PORTS);
            if a == 0 || a > most {
                return err(
                    "engine.attention_ports",
                    format!("must be in 1..={most} (the board's AXI ports, at most {MAX_MEM_PORTS}), got {a}"),
                );
            }
        }
        if e.pipeline_stages > 8 {
            return err("engine.pipeline_stages", format!("must be in 0..=8, got {}", e.pipeline_stages));
        }
        let min_beats = tl.steps(m.hidden.max(m.ffn));
        if e.weight_buffer_beats < min_beats || e.weight_buffer_beats > 1 << 20 {
            return err(
                "engine.weight_buffer_beats",
                format!(
                    "must hold at least one block of the longest row ({min_beats} beats = steps of K = {}) and at most 1048576, got {}",
                    m.hidden.max(m.ffn),
                    e.weight_buffer_beats
                ),
            );
        }
        // The accumulator must hold the worst case sum of |w| * 128 over the longest dot product.
        let need = self.accumulator_bits_needed();
        if e.acc_bits < need || e.acc_bits > 32 {
            return err(
                "engine.acc_bits",
                format!(
                    "must be in {need}..=32 to hold a {}-long dot product without overflow, got {}",
                    m.hidden.max(m.ffn),
                    e.acc_bits
                ),
            );
        }
        let b = &self.board;
        if b.bandwidth_gbs <= 0.0 || b.bandwidth_gbs > b.peak_bandwidth_gbs {
            return err(
                "board.bandwidth_gbs",
                format!("must be in (0, peak {}], got {}", b.peak_bandwidth_gbs, b.bandwidth_gbs),
            );
        }
        if b.clock_mhz <= 0.0 {
            return err("board.clock_mhz", format!("must be positive, got {}", b.clock_mhz));
        }
        if !b.axi_data_bits.is_power_of_two() || !(32..=1024).contains(&b.axi_data_bits) {
            return err(
                "board.axi_data_bits",
                format!("must be a power of two in 32..=1024 bits, got {}", b.axi_data_bits),
            );
        }
        if let Some(mhz) = b.axi_port_mhz {
            if !(mhz > 0.0) {
                return err("board.axi_port_mhz", format!("must be positive, got {mhz}"));
            }
        }
        if ![128, 256, 512].contains(&self.bus_bits()) {
            let rule = match e.axi_data_bits {
                Some(bits) => format!("the kernel's AXI masters are 128, 256 or 512 bits wide, got {bits}"),
                None => format!(
                    "the board's ports are {} bits; the kernel's AXI masters are 128, 256 or 512 bits wide: set it",
                    b.axi_data_bits
                ),
            };
            return err("engine.axi_data_bits", rule);
        }
        if b.axi_ports == 0 {
            return err("board.axi_ports", "at least one AXI master port is needed".into());
        }
        Ok(())
    }

    /// Signed accumulator width that cannot overflow: |level| <= 3 (int2) or 1 (ternary) times
    /// |activation| <= 128, summed over the longest dot product (int2 also multiplies by the u8
    /// group multiplier).
    pub fn accumulator_bits_needed(&self) -> u32 {
        let k = self.model.hidden.max(self.model.ffn) as u64;
        let max_term: u64 = match self.quant.weights {
            WeightFormat::Ternary => 128,
            WeightFormat::Int2 => 3 * 128 * 255,
        };
        let max_abs = k * max_term;
        64 - max_abs.leading_zeros() + 1
    }

    /// GQA group: query heads per kv head.
    pub fn heads_per_kv(&self) -> usize {
        self.model.heads / self.model.kv_heads
    }

    /// Table entry width the engine uses (configured or derived).
    pub fn table_entry_bits(&self) -> u32 {
        self.engine.table_entry_bits.unwrap_or(crate::pack::Tlmm::from_config(self).entry_bits() as u32)
    }

    /// Data width of the kernel's AXI masters, bits (`engine.axi_data_bits`, else the board's
    /// port width): the bus word the RTL, the weight image's layout and the runtime use.
    pub fn bus_bits(&self) -> usize {
        self.engine.axi_data_bits.unwrap_or(self.board.axi_data_bits) as usize
    }

    /// Bytes the LM head takes per port and cycle (`op_lm_head`'s LANES): [`head_lane_bytes`].
    pub fn head_lane_bytes(&self) -> usize {
        head_lane_bytes(self.bus_bits())
    }

    /// Bytes one AXI master moves per kernel cycle at most: its width, or what the board's
    /// port behind it carries at the port's clock (`board.axi_port_mhz`), whichever is less.
    pub fn port_bytes_per_cycle(&self) -> f64 {
        let b = &self.board;
        let port = b.axi_data_bits as f64 / 8.0 * b.axi_port_mhz.unwrap_or(b.clock_mhz) / b.clock_mhz;
        (self.bus_bits() as f64 / 8.0).min(port)
    }

    /// Width of the K (and V) projection output.
    pub fn kv_dim(&self) -> usize {
        self.model.kv_heads * self.model.head_dim
    }
}

fn load_board(spec: &str, base_dir: Option<&Path>) -> Result<Board, String> {
    let (text, origin): (String, String) = if let Some((_, t)) = BOARDS.iter().find(|(n, _)| *n == spec) {
        (t.to_string(), spec.to_string())
    } else if spec.ends_with(".toml") {
        let p: PathBuf = base_dir.map(|d| d.join(spec)).unwrap_or_else(|| PathBuf::from(spec));
        let t = std::fs::read_to_string(&p).map_err(|e| format!("cannot read board file {}: {e}", p.display()))?;
        (t, p.display().to_string())
    } else {
        let known: Vec<&str> = BOARDS.iter().map(|(n, _)| *n).collect();
        return Err(format!("unknown board `{spec}` (known: {}; or give a path to a .toml file)", known.join(", ")));
    };
    toml::from_str(&text).map_err(|e| format!("board {origin}: {}", e.to_string().trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_loads_and_validates() {
        for name in Config::preset_names() {
            let cfg = Config::preset(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(cfg.name, name);
        }
    }

    #[test]
    fn preset_with_merges_keys_and_validates() {
        let c = Config::preset_with("tiny", "[model]\nkv_heads = 1\n[engine]\nacc_bits = 30\n").unwrap();
        assert_eq!((c.model.kv_heads, c.model.heads, c.engine.acc_bits), (1, 4, 30));
        let e = Config::preset_with("tiny", "[model]\nheads = 5\n").unwrap_err().to_string();
        assert!(e.contains("tiny (patched)") && e.contains("heads must divide hidden"), "{e}");
        let e = Config::preset_with("tiny", "[model]\nwidth = 5\n").unwrap_err().to_string();
        assert!(e.contains("unknown field `width`"), "{e}");
    }

    #[test]
    fn a_variant_names_its_base_preset_and_only_what_it_changes() {
        let text = "name = \"narrow\"\nbase = \"tellme-kv260\"\n[engine]\ntables_per_step = 14\n";
        let v = Config::from_toml(text, "narrow.toml", None).unwrap_or_else(|e| panic!("{e}"));
        let base = Config::preset("tellme-kv260").unwrap();
        assert_eq!(v.name, "narrow");
        assert_eq!((&v.model, &v.quant, &v.board), (&base.model, &base.quant, &base.board));
        assert_eq!((v.engine.tables_per_step, base.engine.tables_per_step), (14, 28));
        assert_eq!(v.engine.columns_per_cycle, base.engine.columns_per_cycle);
        // The merged config is checked like any other: unknown keys, bad values, a bad base.
        let e = Config::from_toml(&text.replace("tables_per_step", "tables_per_stp"), "narrow.toml", None);
        assert!(e.unwrap_err().to_string().contains("unknown field `tables_per_stp`"));
        let e = Config::from_toml(&text.replace("= 14", "= 0"), "narrow.toml", None).unwrap_err().to_string();
        assert!(e.contains("engine.tables_per_step"), "{e}");
        let e = Config::from_toml(&text.replace("tellme-kv260", "tellme-kv261"), "narrow.toml", None);
        let e = e.unwrap_err().to_string();
        assert!(e.contains("narrow.toml") && e.contains("base") && e.contains("no such preset `tellme-kv261`"), "{e}");
        let e = Config::from_toml(&text.replace("\"tellme-kv260\"", "3"), "narrow.toml", None).unwrap_err();
        assert!(e.to_string().contains("must be a preset's name"), "{e}");
    }

    #[test]
    fn presets_have_the_published_dimensions() {
        let t = Config::preset("tellme-kv260").unwrap();
        let m = &t.model;
        assert_eq!((m.layers, m.hidden, m.ffn, m.heads, m.head_dim, m.vocab), (24, 1536, 4096, 16, 96, 32002));
        assert_eq!(t.model.ffn_activation, FfnActivation::Silu);
        assert_eq!(t.board.name, "kv260");
        let b = Config::preset("bitnet2b-kv260").unwrap();
        let m = &b.model;
        assert_eq!(
            (m.layers, m.hidden, m.ffn, m.heads, m.kv_heads, m.head_dim, m.vocab),
            (30, 2560, 6912, 20, 5, 128, 128256)
        );
        assert!(m.sub_norms && m.tied_embeddings);
        let a = Config::preset("accllm-u280").unwrap();
        assert_eq!(a.board.name, "u280");
        assert_eq!(a.quant.kv, KvFormat::Int4);
    }
}
