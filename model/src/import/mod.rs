//! Checkpoint import: every supported checkpoint format, opened memory-mapped, checked against a
//! [`Config`], and loaded either as f32 master weights ([`FloatWeights`]) or straight into the
//! hardware form the reference and the device take ([`QuantModel`]).
//!
//! Formats (`docs/checkpoints.md` has the details and sources):
//! - Hugging Face directories: `config.json` plus `model.safetensors` or sharded
//!   `model.safetensors.index.json`; tensors in F32, F16 or BF16 (quantized on import by the
//!   config's weight format), or BitNet's released packed form (`U8` `[out/4, in]` plus a
//!   `weight_scale` per linear, [`ternary::unpack_hf`]).
//! - GGUF files (`llama` and `bitnet` architectures): F32/F16/BF16 tensors, and linears in TQ1_0
//!   or TQ2_0 ([`ternary::decode_tq`]).
//!
//! Pre-quantized ternary weights enter [`QuantModel`] as codes plus one scale per tensor, never
//! through floats, so the codes are exactly the checkpoint's.

pub mod fixtures;
pub mod gguf;
pub mod image;
pub mod safetensors;
pub mod ternary;

use crate::checkpoint::{CheckpointError, FloatLayer, FloatWeights, HfConfig};
use crate::config::{Config, WeightFormat};
use crate::numerics::NormWeight;
use crate::quant::{HeadRows, QLinear, QWeights};
use crate::reference::{quantize_linear, QuantLayer, QuantModel};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use ternary::Tq;

/// Element type of a stored tensor, as far as the importer reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dt {
    /// binary32.
    F32,
    /// binary16.
    F16,
    /// bfloat16.
    BF16,
    /// Bytes (packed BitNet linears).
    U8,
    /// GGUF ternary blocks.
    Tq(Tq),
}

/// One tensor as stored: its Hugging Face name, type, shape (outermost first) and bytes.
#[derive(Debug, Clone)]
pub struct TensorRef<'a> {
    /// Hugging Face name (GGUF names are translated).
    pub name: String,
    /// The type as the file spells it (`BF16`, `U8`, `TQ2_0`, ...).
    pub type_name: String,
    /// The type, if the importer reads it.
    pub dt: Option<Dt>,
    /// Shape, outermost first (GGUF dims reversed).
    pub shape: Vec<usize>,
    /// The raw bytes (memory-mapped).
    pub data: &'a [u8],
}

/// How a packed BitNet `weight_scale` applies (transformers `integrations/bitnet.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleUse {
    /// `AutoBitLinear` (offline): `y = (x W^T) * weight_scale`, so the scale is `mean|W|`.
    Multiply,
    /// `BitLinear`: `y = (x W^T) / (weight_scale * input_scale)`, so the scale is `1 / mean|W|`.
    Divide,
}

enum Store {
    Safetensors {
        maps: Vec<(PathBuf, memmap2::Mmap)>,
        tensors: BTreeMap<String, (usize, safetensors::TensorInfo)>,
    },
    Gguf {
        map: memmap2::Mmap,
        header: gguf::Gguf,
        /// Hugging Face name -> index into `header.tensors`.
        by_name: BTreeMap<String, usize>,
        /// `llama` stores q/k rows permuted for its interleaved RoPE (undone on import).
        permuted_qk: bool,
    },
}

/// An opened checkpoint: its config (from `config.json` or the GGUF metadata) and its tensors,
/// memory-mapped.
pub struct Checkpoint {
    path: PathBuf,
    cfg_path: PathBuf,
    hf: HfConfig,
    store: Store,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io { path: path.to_path_buf(), source }
}

fn map_file(path: &Path) -> Result<memmap2::Mmap, CheckpointError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    // SAFETY: the file is opened read-only and not modified while mapped (checkpoints are inputs).
    unsafe { memmap2::Mmap::map(&file) }.map_err(io(path))
}

fn tensor_err(name: &str, msg: impl Into<String>) -> CheckpointError {
    CheckpointError::Tensor { name: name.to_string(), msg: msg.into() }
}

/// The Hugging Face name of a GGUF tensor (`blk.3.attn_q.weight` ->
/// `model.layers.3.self_attn.q_proj.weight`); `None` for tensors trit does not use.
pub fn hf_name(gguf: &str) -> Option<String> {
    let fixed = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let hf = match part {
        "attn_norm.weight" => "input_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "attn_sub_norm.weight" => "self_attn.attn_sub_norm.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        "ffn_sub_norm.weight" => "mlp.ffn_sub_norm.weight",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}"))
}

/// Is `arch` (GGUF `general.architecture`) a BitNet b1.58 variant?
fn is_bitnet_arch(arch: &str) -> bool {
    arch.starts_with("bitnet")
}

/// Rows `h*d + 2i + j` of a GGUF `llama` q/k matrix hold Hugging Face rows `h*d + j*d/2 + i`
/// (llama.cpp's converter interleaves the two RoPE halves of every head). Undo that.
pub fn unpermute_rows<T: Copy>(v: &[T], rows: usize, cols: usize, heads: usize) -> Vec<T> {
    permute_impl(v, rows, cols, heads, false)
}

/// The permutation llama.cpp's converter applies to `llama` q/k rows (for writing fixtures).
pub fn permute_rows<T: Copy>(v: &[T], rows: usize, cols: usize, heads: usize) -> Vec<T> {
    permute_impl(v, rows, cols, heads, true)
}

fn permute_impl<T: Copy>(v: &[T], rows: usize, cols: usize, heads: usize, forward: bool) -> Vec<T> {
    let d = rows / heads;
    let mut out = v.to_vec();
    for h in 0..heads {
        for j in 0..2 {
            for i in 0..d / 2 {
                let hf = h * d + j * d / 2 + i;
                let gg = h * d + 2 * i + j;
                let (dst, src) = if forward { (gg, hf) } else { (hf, gg) };
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&v[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

impl Checkpoint {
    /// Open `path`: a Hugging Face directory, a `.safetensors` file (with `config.json` beside
    /// it) or a `.gguf` file.
    pub fn open(path: &Path) -> Result<Checkpoint, CheckpointError> {
        if path.is_dir() {
            return Self::open_hf_dir(path);
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("gguf") => Self::open_gguf(path),
            Some("safetensors") => {
                let dir = path.parent().unwrap_or(Path::new("."));
                let cfg_path = dir.join("config.json");
                let hf = HfConfig::read(&cfg_path)?;
                let store = Self::safetensors_store(&[path.to_path_buf()])?;
                Ok(Checkpoint { path: path.to_path_buf(), cfg_path, hf, store })
            }
            _ if !path.exists() => Err(CheckpointError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
            }),
            _ => Err(CheckpointError::Config {
                path: path.to_path_buf(),
                msg: "not a checkpoint: give a Hugging Face directory, a .safetensors file or a .gguf file".into(),
            }),
        }
    }

    fn open_hf_dir(dir: &Path) -> Result<Checkpoint, CheckpointError> {
        let cfg_path = dir.join("config.json");
        let hf = HfConfig::read(&cfg_path)?;
        let index = dir.join("model.safetensors.index.json");
        let files = if index.exists() {
            let text = std::fs::read_to_string(&index).map_err(io(&index))?;
            let bad = |msg: String| CheckpointError::Config { path: index.clone(), msg };
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
            let map =
                v.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| bad("no `weight_map` object".into()))?;
            let mut shards: Vec<String> = Vec::new();
            for (name, file) in map {
                let f = file.as_str().ok_or_else(|| bad(format!("`weight_map.{name}` is not a file name")))?;
                if f.contains('/') || f.contains('\\') || f == ".." || f.is_empty() {
                    return Err(bad(format!("`weight_map.{name}` = `{f}` is not a file name in the directory")));
                }
                if !shards.iter().any(|s| s == f) {
                    shards.push(f.to_string());
                }
            }
            shards.sort();
            let store = Self::safetensors_store(&shards.iter().map(|s| dir.join(s)).collect::<Vec<_>>())?;
            // Every tensor the index names must be in the shard it names.
            if let Store::Safetensors { maps, tensors } = &store {
                for (name, file) in map {
                    let want = dir.join(file.as_str().expect("checked"));
                    match tensors.get(name) {
                        Some((i, _)) if maps[*i].0 == want => {}
                        Some((i, _)) => {
                            return Err(tensor_err(
                                name,
                                format!("the index puts it in {file} but it is in {}", maps[*i].0.display()),
                            ))
                        }
                        None => return Err(tensor_err(name, format!("listed in the index but missing from {file}"))),
                    }
                }
            }
            return Ok(Checkpoint { path: dir.to_path_buf(), cfg_path, hf, store });
        } else {
            vec![dir.join("model.safetensors")]
        };
        let store = Self::safetensors_store(&files)?;
        Ok(Checkpoint { path: dir.to_path_buf(), cfg_path, hf, store })
    }

    fn safetensors_store(files: &[PathBuf]) -> Result<Store, CheckpointError> {
        let mut maps = Vec::new();
        let mut tensors = BTreeMap::new();
        for (i, f) in files.iter().enumerate() {
            let map = map_file(f)?;
            let h = safetensors::parse(&map).map_err(|msg| CheckpointError::Format { path: f.clone(), msg })?;
            for (name, t) in h.tensors {
                if let Some((j, _)) = tensors.get(&name) {
                    let other: &(PathBuf, memmap2::Mmap) = &maps[*j];
                    return Err(tensor_err(&name, format!("in both {} and {}", other.0.display(), f.display())));
                }
                tensors.insert(name, (i, t));
            }
            maps.push((f.clone(), map));
        }
        Ok(Store::Safetensors { maps, tensors })
    }

    fn open_gguf(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let map = map_file(path)?;
        let header = gguf::parse(&map).map_err(|msg| CheckpointError::Gguf { path: path.to_path_buf(), msg })?;
        let hf = hf_config_from_gguf(&header, path)?;
        let mut by_name = BTreeMap::new();
        for (i, t) in header.tensors.iter().enumerate() {
            if let Some(n) = hf_name(&t.name) {
                by_name.insert(n, i);
            }
        }
        let permuted_qk = hf.model_type.as_deref() == Some("llama");
        Ok(Checkpoint {
            path: path.to_path_buf(),
            cfg_path: path.to_path_buf(),
            hf,
            store: Store::Gguf { map, header, by_name, permuted_qk },
        })
    }

    /// The checkpoint's config (from `config.json`, or derived from the GGUF metadata).
    pub fn hf_config(&self) -> &HfConfig {
        &self.hf
    }

    /// Where the config came from (`config.json` or the `.gguf` file).
    pub fn config_path(&self) -> &Path {
        &self.cfg_path
    }

    /// The path opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Does the checkpoint describe a BitNet model (sub-norms, ReLU^2)?
    pub fn is_bitnet(&self) -> bool {
        self.hf.model_type.as_deref() == Some("bitnet")
    }

    /// A short description of the storage (`safetensors (3 shards)`, `GGUF v3`).
    pub fn format(&self) -> String {
        match &self.store {
            Store::Safetensors { maps, .. } if maps.len() == 1 => "safetensors".into(),
            Store::Safetensors { maps, .. } => format!("safetensors ({} shards)", maps.len()),
            Store::Gguf { header, .. } => format!("GGUF v{}", header.version),
        }
    }

    /// Bytes of tensor data in the checkpoint (what an import reads at most).
    pub fn data_bytes(&self) -> u64 {
        match &self.store {
            Store::Safetensors { tensors, .. } => tensors.values().map(|(_, t)| (t.end - t.start) as u64).sum(),
            Store::Gguf { header, .. } => {
                header.tensors.iter().filter_map(|t| t.range).map(|(s, e)| (e - s) as u64).sum()
            }
        }
    }

    /// Is a tensor (Hugging Face name) present?
    pub fn has(&self, name: &str) -> bool {
        match &self.store {
            Store::Safetensors { tensors, .. } => tensors.contains_key(name),
            Store::Gguf { by_name, .. } => by_name.contains_key(name),
        }
    }

    /// A tensor by its Hugging Face name.
    pub fn tensor(&self, name: &str) -> Result<TensorRef<'_>, CheckpointError> {
        let missing = || tensor_err(name, "missing from the checkpoint");
        match &self.store {
            Store::Safetensors { maps, tensors } => {
                let (i, t) = tensors.get(name).ok_or_else(missing)?;
                let dt = match t.dtype.as_str() {
                    "F32" => Some(Dt::F32),
                    "F16" => Some(Dt::F16),
                    "BF16" => Some(Dt::BF16),
                    "U8" => Some(Dt::U8),
                    _ => None,
                };
                Ok(TensorRef {
                    name: name.to_string(),
                    type_name: t.dtype.clone(),
                    dt,
                    shape: t.shape.clone(),
                    data: &maps[*i].1[t.start..t.end],
                })
            }
            Store::Gguf { map, header, by_name, .. } => {
                let t = &header.tensors[*by_name.get(name).ok_or_else(missing)?];
                let dt = match t.ty {
                    gguf::ty::F32 => Some(Dt::F32),
                    gguf::ty::F16 => Some(Dt::F16),
                    gguf::ty::BF16 => Some(Dt::BF16),
                    gguf::ty::TQ1_0 => Some(Dt::Tq(Tq::Tq1)),
                    gguf::ty::TQ2_0 => Some(Dt::Tq(Tq::Tq2)),
                    _ => None,
                };
                let type_name = gguf::type_info(t.ty).map(|i| i.0.to_string()).unwrap_or(format!("ggml type {}", t.ty));
                let data = match t.range {
                    Some((s, e)) => &map[s..e],
                    None => &[],
                };
                let shape = t.dims.iter().rev().map(|&d| d as usize).collect();
                Ok(TensorRef { name: name.to_string(), type_name, dt, shape, data })
            }
        }
    }

    /// Check the checkpoint's config against `cfg` (dimensions, RoPE, norms, activation, ties).
    pub fn check(&self, cfg: &Config) -> Result<(), CheckpointError> {
        self.hf.check_against(cfg, &self.cfg_path)?;
        let sub = cfg.model.sub_norms;
        for i in 0..cfg.model.layers {
            for n in [
                format!("model.layers.{i}.self_attn.attn_sub_norm.weight"),
                format!("model.layers.{i}.mlp.ffn_sub_norm.weight"),
            ] {
                if self.has(&n) != sub {
                    let msg = if sub {
                        format!("missing, but config {} has model.sub_norms = true", cfg.name)
                    } else {
                        format!("present, but config {} has model.sub_norms = false", cfg.name)
                    };
                    return Err(tensor_err(&n, msg));
                }
            }
        }
        Ok(())
    }

    fn permuted_qk(&self) -> bool {
        matches!(self.store, Store::Gguf { permuted_qk: true, .. })
    }

    /// Heads whose q/k rows a GGUF `llama` file permutes (`None` for other tensors/formats).
    fn permute_heads(&self, name: &str) -> Option<usize> {
        if !self.permuted_qk() {
            return None;
        }
        let kv = self.hf.num_key_value_heads.unwrap_or(self.hf.num_attention_heads);
        if name.ends_with("self_attn.q_proj.weight") {
            Some(self.hf.num_attention_heads)
        } else if name.ends_with("self_attn.k_proj.weight") {
            Some(kv)
        } else {
            None
        }
    }

    /// A float tensor of exactly `shape`, converted to f32 (every element must be finite).
    pub fn floats(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, CheckpointError> {
        let t = self.tensor(name)?;
        if t.shape != shape {
            return Err(tensor_err(name, format!("shape {:?}, expected {:?}", t.shape, shape)));
        }
        let v = to_f32(&t)?;
        Ok(match (self.permute_heads(name), shape) {
            (Some(h), [rows, cols]) => unpermute_rows(&v, *rows, *cols, h),
            _ => v,
        })
    }

    /// How packed `weight_scale` tensors apply, from `quantization_config.linear_class`.
    pub fn scale_use(&self) -> Result<ScaleUse, CheckpointError> {
        let bad = |msg: String| CheckpointError::Config { path: self.cfg_path.clone(), msg };
        let q = self.hf.quantization_config.as_ref().ok_or_else(|| {
            bad("the checkpoint has packed uint8 linears but no `quantization_config` saying how `weight_scale` applies (quant_method `bitnet`, linear_class `autobitlinear` or `bitlinear`)".into())
        })?;
        match q.quant_method.as_deref() {
            Some("bitnet") => {}
            other => {
                return Err(bad(format!(
                    "`quantization_config.quant_method` is {other:?}; packed uint8 linears are read only for `bitnet`"
                )))
            }
        }
        match q.linear_class.as_deref() {
            Some("autobitlinear") => Ok(ScaleUse::Multiply),
            Some("bitlinear") | None => Ok(ScaleUse::Divide),
            Some(other) => Err(bad(format!(
                "`quantization_config.linear_class` `{other}` is not supported (autobitlinear, bitlinear)"
            ))),
        }
    }

    fn packed_scale(&self, weight: &str) -> Result<f32, CheckpointError> {
        let use_ = self.scale_use()?;
        let name = format!("{}_scale", weight);
        let t = self.tensor(&name)?;
        if t.shape.iter().product::<usize>() != 1 {
            return Err(tensor_err(&name, format!("shape {:?}, expected [1] (one scale per tensor)", t.shape)));
        }
        let v = to_f32(&t)?[0];
        if v <= 0.0 {
            return Err(tensor_err(&name, format!("is {v}; a weight scale must be positive")));
        }
        Ok(match use_ {
            ScaleUse::Multiply => v,
            ScaleUse::Divide => 1.0 / v,
        })
    }

    /// A decoder linear `rows x cols` in hardware form: pre-quantized ternary weights as their
    /// codes and scale; float weights quantized by the config's weight format.
    pub fn linear(&self, name: &str, rows: usize, cols: usize, cfg: &Config) -> Result<QLinear, CheckpointError> {
        let t = self.tensor(name)?;
        let ternary = |codes: Vec<i8>, scale: f32| -> Result<QLinear, CheckpointError> {
            if cfg.quant.weights != WeightFormat::Ternary {
                return Err(tensor_err(
                    name,
                    format!(
                        "is pre-quantized ternary ({}) but config {} asks for {:?} weights; use a ternary config",
                        t.type_name, cfg.name, cfg.quant.weights
                    ),
                ));
            }
            Ok(QLinear { rows, cols, w: QWeights::Ternary { codes, scale } })
        };
        match t.dt {
            Some(Dt::U8) => {
                let want = [rows.div_ceil(4), cols];
                if t.shape != want {
                    return Err(tensor_err(
                        name,
                        format!("packed uint8 shape {:?}, expected {:?} (four 2-bit codes per byte along the output dimension)", t.shape, want),
                    ));
                }
                let scale = self.packed_scale(name)?;
                let codes = ternary::unpack_hf(t.data, rows, cols).map_err(|m| tensor_err(name, m))?;
                ternary(codes, scale)
            }
            Some(Dt::Tq(tq)) => {
                if t.shape != [rows, cols] {
                    return Err(tensor_err(name, format!("shape {:?}, expected {:?}", t.shape, [rows, cols])));
                }
                let (mut codes, scales) = ternary::decode_tq(t.data, tq).map_err(|m| tensor_err(name, m))?;
                let scale = uniform_scale(&codes, &scales).map_err(|m| tensor_err(name, m))?;
                if let Some(h) = self.permute_heads(name) {
                    codes = unpermute_rows(&codes, rows, cols, h);
                }
                ternary(codes, scale)
            }
            _ => {
                let w = self.floats(name, &[rows, cols])?;
                Ok(quantize_linear(cfg, &w, rows, cols))
            }
        }
    }

    /// A decoder linear's TLMM weight image and scale, for a ternary config: packed BitNet
    /// tensors go straight from their bytes to the image ([`image::pack_image_hf`]); other
    /// formats through [`Checkpoint::linear`].
    pub fn linear_image(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
        cfg: &Config,
        tl: &crate::pack::Tlmm,
    ) -> Result<(Vec<u8>, f32), CheckpointError> {
        let (buffer, bus) = (cfg.engine.weight_buffer_beats, cfg.bus_bits() / 8);
        let t = self.tensor(name)?;
        if t.dt == Some(Dt::U8) && cfg.quant.weights == WeightFormat::Ternary && t.shape == [rows.div_ceil(4), cols] {
            let scale = self.packed_scale(name)?;
            let img = image::pack_image_hf(tl, t.data, rows, cols, buffer, bus).map_err(|m| tensor_err(name, m))?;
            return Ok((img, scale));
        }
        let l = self.linear(name, rows, cols, cfg)?;
        match &l.w {
            QWeights::Ternary { codes, scale } => Ok((image::pack_image(tl, codes, rows, cols, buffer, bus), *scale)),
            QWeights::Int2 { .. } => Err(tensor_err(name, "int2 weights have no TLMM image")),
        }
    }

    /// A norm weight `name` of `len` gains in hardware form.
    pub fn norm(&self, name: &str, len: usize) -> Result<NormWeight, CheckpointError> {
        Ok(NormWeight::from_f32(&self.floats(name, &[len])?))
    }

    /// The decoder linears of a config as (Hugging Face name suffix, rows, cols), program order.
    pub fn linear_shapes(cfg: &Config) -> [(&'static str, usize, usize); 7] {
        Self::shapes(cfg)
    }

    /// A decoder linear as f32 (pre-quantized weights dequantized: `code * scale`).
    pub fn linear_f32(&self, name: &str, rows: usize, cols: usize, cfg: &Config) -> Result<Vec<f32>, CheckpointError> {
        let t = self.tensor(name)?;
        match t.dt {
            Some(Dt::U8) | Some(Dt::Tq(_)) => {
                let mut c = cfg.clone();
                c.quant.weights = WeightFormat::Ternary;
                c.quant.weight_group = None;
                Ok(self.linear(name, rows, cols, &c)?.dequantize())
            }
            _ => self.floats(name, &[rows, cols]),
        }
    }

    fn shapes(cfg: &Config) -> [(&'static str, usize, usize); 7] {
        let m = &cfg.model;
        let (h, f, q, kv) = (m.hidden, m.ffn, m.heads * m.head_dim, cfg.kv_dim());
        [
            ("self_attn.q_proj", q, h),
            ("self_attn.k_proj", kv, h),
            ("self_attn.v_proj", kv, h),
            ("self_attn.o_proj", h, q),
            ("mlp.gate_proj", f, h),
            ("mlp.up_proj", f, h),
            ("mlp.down_proj", h, f),
        ]
    }

    /// Decoder layer `i` in hardware form; `progress` gets the bytes of each tensor read.
    pub fn load_layer(
        &self,
        i: usize,
        cfg: &Config,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<QuantLayer, CheckpointError> {
        let m = &cfg.model;
        let p = format!("model.layers.{i}");
        let norm = |n: &str, len: usize| -> Result<NormWeight, CheckpointError> {
            let name = format!("{p}.{n}.weight");
            let v = self.floats(&name, &[len])?;
            progress(self.tensor(&name)?.data.len() as u64);
            Ok(NormWeight::from_f32(&v))
        };
        let mut lin = Self::shapes(cfg).into_iter().map(|(n, rows, cols)| {
            let name = format!("{p}.{n}.weight");
            let l = self.linear(&name, rows, cols, cfg)?;
            progress(self.tensor(&name)?.data.len() as u64);
            Ok::<QLinear, CheckpointError>(l)
        });
        let mut next = || lin.next().expect("seven linears");
        let attn_norm = norm("input_layernorm", m.hidden)?;
        let (q, k, v, o) = (next()?, next()?, next()?, next()?);
        let attn_sub_norm =
            if m.sub_norms { Some(norm("self_attn.attn_sub_norm", m.heads * m.head_dim)?) } else { None };
        let ffn_norm = norm("post_attention_layernorm", m.hidden)?;
        let (gate, up, down) = (next()?, next()?, next()?);
        let ffn_sub_norm = if m.sub_norms { Some(norm("mlp.ffn_sub_norm", m.ffn)?) } else { None };
        Ok(QuantLayer { attn_norm, q, k, v, o, attn_sub_norm, ffn_norm, gate, up, down, ffn_sub_norm })
    }

    /// The embedding as fp16 bits `[vocab][hidden]` (F16 tensors are copied bit for bit; others
    /// converted element by element, round to nearest even).
    pub fn embed_f16(&self, cfg: &Config) -> Result<Vec<u16>, CheckpointError> {
        let name = "model.embed_tokens.weight";
        let t = self.tensor(name)?;
        let shape = [cfg.model.vocab, cfg.model.hidden];
        if t.shape != shape {
            return Err(tensor_err(name, format!("shape {:?}, expected {:?}", t.shape, shape)));
        }
        let bits: Vec<u16> = match t.dt {
            Some(Dt::F16) => t.data.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect(),
            Some(Dt::BF16) => {
                t.data.chunks_exact(2).map(|b| image::bf16_to_f16(u16::from_le_bytes([b[0], b[1]]))).collect()
            }
            _ => return Ok(self.floats(name, &shape)?.iter().map(|&x| half::f16::from_f32(x).to_bits()).collect()),
        };
        // non-finite sources stay non-finite in fp16; (finite BF16 beyond 65504 become infinite)
        if let Some(i) = bits.iter().position(|&b| b & 0x7c00 == 0x7c00) {
            return Err(tensor_err(name, format!("element {i} is not finite in fp16 (the embedding format)")));
        }
        Ok(bits)
    }

    /// The LM head in hardware form (rows in the config's head format, [`HeadRows::quantize`]'s
    /// numerics), row by row from the stored tensor (the embedding when tied) without an f32 copy
    /// of the matrix.
    pub fn lm_head_rows(&self, cfg: &Config) -> Result<HeadRows, CheckpointError> {
        let name = if cfg.model.tied_embeddings { "model.embed_tokens.weight" } else { "lm_head.weight" };
        let (rows, cols) = (cfg.model.vocab, cfg.model.hidden);
        let qmax = cfg.quant.lm_head.qmax();
        let t = self.tensor(name)?;
        if t.shape != [rows, cols] {
            return Err(tensor_err(name, format!("shape {:?}, expected {:?}", t.shape, [rows, cols])));
        }
        let size = match t.dt {
            Some(Dt::F32) => 4,
            Some(Dt::F16 | Dt::BF16) => 2,
            _ => return Ok(HeadRows::quantize(&self.floats(name, &[rows, cols])?, rows, cols, qmax)),
        };
        let mut codes = vec![0i8; rows * cols];
        let mut scales = Vec::with_capacity(rows);
        let mut row = vec![0f32; cols];
        for (r, (src, dst)) in t.data.chunks_exact(cols * size).zip(codes.chunks_exact_mut(cols)).enumerate() {
            // max |w| from the bits (magnitude order is integer order; all-ones exponent = not finite)
            let (max, finite) = match t.dt {
                Some(Dt::F32) => {
                    src.chunks_exact(4)
                        .zip(&mut row)
                        .for_each(|(b, x)| *x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                    let m = row.iter().map(|x| x.to_bits() & 0x7fff_ffff).max().unwrap_or(0);
                    (f32::from_bits(m), m < 0x7f80_0000)
                }
                Some(Dt::F16) => {
                    src.chunks_exact(2)
                        .zip(&mut row)
                        .for_each(|(b, x)| *x = half::f16::from_le_bytes([b[0], b[1]]).to_f32());
                    let m = src.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7fff).max().unwrap_or(0);
                    (half::f16::from_bits(m).to_f32(), m < 0x7c00)
                }
                _ => {
                    src.chunks_exact(2)
                        .zip(&mut row)
                        .for_each(|(b, x)| *x = f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16));
                    let m = src.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7fff).max().unwrap_or(0);
                    (half::bf16::from_bits(m).to_f32(), m < 0x7f80)
                }
            };
            if !finite {
                let i = row.iter().position(|v| !v.is_finite()).unwrap_or(0);
                return Err(tensor_err(name, format!("element {} is {} (not finite)", r * cols + i, row[i])));
            }
            scales.push(image::head_row_with_max(&row, max as f64, qmax, dst));
        }
        Ok(HeadRows { rows, cols, codes, scales })
    }

    /// The LM head matrix as f32 (the embedding when the config ties them).
    pub fn lm_head_f32(&self, cfg: &Config) -> Result<Vec<f32>, CheckpointError> {
        let shape = [cfg.model.vocab, cfg.model.hidden];
        if cfg.model.tied_embeddings {
            self.floats("model.embed_tokens.weight", &shape)
        } else {
            self.floats("lm_head.weight", &shape)
        }
    }

    /// The whole model in hardware form, layers loaded in parallel.
    pub fn load_quant(&self, cfg: &Config) -> Result<QuantModel, CheckpointError> {
        self.load_quant_with(cfg, &|_| {})
    }

    /// [`Checkpoint::load_quant`] reporting the bytes of each tensor read to `progress`.
    pub fn load_quant_with(
        &self,
        cfg: &Config,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<QuantModel, CheckpointError> {
        self.check(cfg)?;
        let m = &cfg.model;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(m.layers.max(1));
        let (layers, rest) = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || {
                        (t..m.layers)
                            .step_by(threads)
                            .map(|i| (i, self.load_layer(i, cfg, progress)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let rest = (|| {
                let embed = self.embed_f16(cfg)?;
                let final_norm = NormWeight::from_f32(&self.floats("model.norm.weight", &[m.hidden])?);
                let head = self.lm_head_rows(cfg)?;
                progress(self.tensor("model.embed_tokens.weight")?.data.len() as u64);
                if !m.tied_embeddings {
                    progress(self.tensor("lm_head.weight")?.data.len() as u64);
                }
                Ok::<_, CheckpointError>((embed, final_norm, head))
            })();
            let mut all: Vec<(usize, Result<QuantLayer, CheckpointError>)> =
                workers.into_iter().flat_map(|w| w.join().expect("layer loader panicked")).collect();
            all.sort_by_key(|(i, _)| *i);
            (all, rest)
        });
        let layers = layers.into_iter().map(|(_, l)| l).collect::<Result<Vec<_>, _>>()?;
        let (embed, final_norm, head) = rest?;
        Ok(QuantModel::assemble(cfg, embed, layers, final_norm, head))
    }

    /// The whole model as f32 master weights (pre-quantized linears dequantized).
    pub fn load_float(&self, cfg: &Config) -> Result<FloatWeights, CheckpointError> {
        self.check(cfg)?;
        let m = &cfg.model;
        let mut layers = Vec::with_capacity(m.layers);
        for i in 0..m.layers {
            let p = format!("model.layers.{i}");
            let [q, k, v, o, gate, up, down] =
                Self::shapes(cfg).map(|(n, r, c)| self.linear_f32(&format!("{p}.{n}.weight"), r, c, cfg));
            let norm = |n: &str, len: usize| self.floats(&format!("{p}.{n}.weight"), &[len]);
            layers.push(FloatLayer {
                attn_norm: norm("input_layernorm", m.hidden)?,
                q: q?,
                k: k?,
                v: v?,
                o: o?,
                attn_sub_norm: if m.sub_norms {
                    Some(norm("self_attn.attn_sub_norm", m.heads * m.head_dim)?)
                } else {
                    None
                },
                ffn_norm: norm("post_attention_layernorm", m.hidden)?,
                gate: gate?,
                up: up?,
                down: down?,
                ffn_sub_norm: if m.sub_norms { Some(norm("mlp.ffn_sub_norm", m.ffn)?) } else { None },
            });
        }
        let shape = [m.vocab, m.hidden];
        let lm_head = if m.tied_embeddings { None } else { Some(self.floats("lm_head.weight", &shape)?) };
        Ok(FloatWeights {
            embed: self.floats("model.embed_tokens.weight", &shape)?,
            layers,
            final_norm: self.floats("model.norm.weight", &[m.hidden])?,
            lm_head,
        })
    }
}

/// The one scale of a GGUF ternary tensor: every block that holds a non-zero code must carry the
/// same `d` (all-zero blocks may carry any, llama.cpp writes 0 for them).
fn uniform_scale(codes: &[i8], scales: &[f32]) -> Result<f32, String> {
    let mut scale: Option<(usize, f32)> = None;
    for (b, (&d, blk)) in scales.iter().zip(codes.chunks(ternary::QK)).enumerate() {
        if blk.iter().all(|&c| c == 0) {
            continue;
        }
        if !(d.is_finite() && d > 0.0) {
            return Err(format!("block {b} has scale {d}; a weight scale must be positive"));
        }
        match scale {
            None => scale = Some((b, d)),
            Some((b0, d0)) if d0 != d => {
                return Err(format!(
                    "block {b0} has scale {d0} but block {b} has {d}: trit's ternary engine takes one scale per tensor"
                ))
            }
            _ => {}
        }
    }
    Ok(scale.map_or(1.0, |(_, d)| d))
}

/// A float tensor's elements as f32; non-finite values and non-float types are errors.
pub fn to_f32(t: &TensorRef) -> Result<Vec<f32>, CheckpointError> {
    let d = t.data;
    let out: Vec<f32> = match t.dt {
        Some(Dt::F32) => d.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Some(Dt::F16) => d.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Some(Dt::BF16) => d.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        _ => {
            return Err(tensor_err(
                &t.name,
                format!("dtype {} is not supported here (F32, F16, BF16; U8, TQ1_0, TQ2_0 for linears)", t.type_name),
            ))
        }
    };
    if let Some(i) = out.iter().position(|v| !v.is_finite()) {
        return Err(tensor_err(&t.name, format!("element {i} is {} (not finite)", out[i])));
    }
    Ok(out)
}

/// The config a GGUF file's metadata describes, in Hugging Face form.
fn hf_config_from_gguf(g: &gguf::Gguf, path: &Path) -> Result<HfConfig, CheckpointError> {
    let bad = |msg: String| CheckpointError::Config { path: path.to_path_buf(), msg };
    let arch = g
        .metadata
        .get("general.architecture")
        .and_then(|v| v.as_str())
        .ok_or_else(|| bad("no `general.architecture` in the GGUF metadata".into()))?
        .to_string();
    let bitnet = is_bitnet_arch(&arch);
    if !bitnet && arch != "llama" {
        return Err(bad(format!("`general.architecture` is `{arch}`; only `llama` and `bitnet` are supported")));
    }
    let get = |k: &str| g.metadata.get(&format!("{arch}.{k}"));
    let int = |k: &str| -> Result<usize, CheckpointError> {
        get(k)
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .ok_or_else(|| bad(format!("no integer `{arch}.{k}` in the GGUF metadata")))
    };
    let embd_rows = g.tensors.iter().find(|t| t.name == "token_embd.weight").and_then(|t| t.dims.get(1).copied());
    let vocab = match get("vocab_size").and_then(|v| v.as_u64()) {
        Some(v) => v as usize,
        None => {
            embd_rows.ok_or_else(|| bad("no `token_embd.weight` to take the vocabulary size from".into()))? as usize
        }
    };
    let heads = int("attention.head_count")?;
    let token =
        |k: &str| g.metadata.get(&format!("tokenizer.ggml.{k}")).and_then(|v| v.as_u64()).map(serde_json::Value::from);
    Ok(HfConfig {
        vocab_size: vocab,
        hidden_size: int("embedding_length")?,
        intermediate_size: int("feed_forward_length")?,
        num_hidden_layers: int("block_count")?,
        num_attention_heads: heads,
        num_key_value_heads: Some(
            get("attention.head_count_kv").and_then(|v| v.as_u64()).map_or(heads, |v| v as usize),
        ),
        head_dim: get("attention.key_length").and_then(|v| v.as_u64()).map(|v| v as usize),
        max_position_embeddings: int("context_length")?,
        rms_norm_eps: get("attention.layer_norm_rms_epsilon")
            .and_then(|v| v.as_f64())
            .ok_or_else(|| bad(format!("no `{arch}.attention.layer_norm_rms_epsilon` in the GGUF metadata")))?,
        // llama.cpp's default when the key is absent
        rope_theta: Some(get("rope.freq_base").and_then(|v| v.as_f64()).unwrap_or(10000.0)),
        rope_parameters: None,
        tie_word_embeddings: !g.tensors.iter().any(|t| t.name == "output.weight"),
        hidden_act: if bitnet { "relu2".into() } else { "silu".into() },
        bos_token_id: token("bos_token_id"),
        eos_token_id: token("eos_token_id"),
        model_type: Some(if bitnet { "bitnet".into() } else { "llama".into() }),
        quantization_config: None,
    })
}
