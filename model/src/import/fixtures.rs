//! Checkpoints written from Rust in every format the importer reads, for tests and benchmarks:
//! Hugging Face directories (F32/F16/BF16 tensors, BitNet packed linears, sharded) and GGUF files
//! (F32/F16 tensors, TQ1_0/TQ2_0 linears), all from the same [`FloatWeights`]. Plus
//! [`grid_weights`]: random weights every format stores exactly, so all formats of one model
//! must give bit-identical logits.

use super::gguf::{self, Value};
use super::safetensors;
use super::ternary::{self, Tq};
use super::ScaleUse;
use crate::checkpoint::{FloatLayer, FloatWeights};
use crate::config::Config;
use crate::quant::{quantize_ternary, QWeights};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// A float storage type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Float {
    /// binary32.
    F32,
    /// binary16.
    F16,
    /// bfloat16.
    BF16,
}

impl Float {
    fn name(self) -> &'static str {
        match self {
            Float::F32 => "F32",
            Float::F16 => "F16",
            Float::BF16 => "BF16",
        }
    }
    fn ggml(self) -> u32 {
        match self {
            Float::F32 => gguf::ty::F32,
            Float::F16 => gguf::ty::F16,
            Float::BF16 => gguf::ty::BF16,
        }
    }
    /// Little-endian bytes of `v` in this type (round to nearest even).
    pub fn bytes(self, v: &[f32]) -> Vec<u8> {
        match self {
            Float::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Float::F16 => v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect(),
            Float::BF16 => v.iter().flat_map(|x| half::bf16::from_f32(*x).to_le_bytes()).collect(),
        }
    }
}

/// How a Hugging Face checkpoint stores its decoder linears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HfLinears {
    /// As floats of this type (the `-bf16` master-weight release, Llama checkpoints).
    Float(Float),
    /// BitNet's released packed form: absmean-quantized (from the BF16-rounded master), uint8
    /// `[out/4, in]` plus a BF16 `weight_scale` applied as `how` says.
    Packed(ScaleUse),
}

/// The Hugging Face tensor list of `w`: (name, shape, values), linears flagged.
fn hf_tensors<'a>(cfg: &Config, w: &'a FloatWeights) -> Vec<(String, Vec<usize>, &'a [f32], bool)> {
    let m = &cfg.model;
    let (h, f, q, kv) = (m.hidden, m.ffn, m.heads * m.head_dim, cfg.kv_dim());
    let mut t: Vec<(String, Vec<usize>, &[f32], bool)> = vec![
        ("model.embed_tokens.weight".into(), vec![m.vocab, h], &w.embed, false),
        ("model.norm.weight".into(), vec![h], &w.final_norm, false),
    ];
    if let Some(head) = &w.lm_head {
        t.push(("lm_head.weight".into(), vec![m.vocab, h], head, false));
    }
    for (i, l) in w.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        t.push((format!("{p}.input_layernorm.weight"), vec![h], &l.attn_norm, false));
        t.push((format!("{p}.self_attn.q_proj.weight"), vec![q, h], &l.q, true));
        t.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, h], &l.k, true));
        t.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, h], &l.v, true));
        t.push((format!("{p}.self_attn.o_proj.weight"), vec![h, q], &l.o, true));
        if let Some(s) = &l.attn_sub_norm {
            t.push((format!("{p}.self_attn.attn_sub_norm.weight"), vec![q], s, false));
        }
        t.push((format!("{p}.post_attention_layernorm.weight"), vec![h], &l.ffn_norm, false));
        t.push((format!("{p}.mlp.gate_proj.weight"), vec![f, h], &l.gate, true));
        t.push((format!("{p}.mlp.up_proj.weight"), vec![f, h], &l.up, true));
        t.push((format!("{p}.mlp.down_proj.weight"), vec![h, f], &l.down, true));
        if let Some(s) = &l.ffn_sub_norm {
            t.push((format!("{p}.mlp.ffn_sub_norm.weight"), vec![f], s, false));
        }
    }
    t
}

/// Absmean ternary codes and scale of a linear, from its BF16-rounded values (what importing
/// the BF16 master computes).
pub fn ternary_of(v: &[f32], rows: usize, cols: usize) -> (Vec<i8>, f32) {
    let r: Vec<f32> = v.iter().map(|&x| half::bf16::from_f32(x).to_f32()).collect();
    match quantize_ternary(&r, rows, cols).w {
        QWeights::Ternary { codes, scale } => (codes, scale),
        QWeights::Int2 { .. } => unreachable!("quantize_ternary returns ternary weights"),
    }
}

/// Write a Hugging Face checkpoint directory: `config.json` (with `quantization_config` for the
/// packed form) and `model.safetensors`, or `shards > 1` files plus
/// `model.safetensors.index.json`. Non-linear tensors are stored as `others`.
pub fn write_hf(
    dir: &Path,
    cfg: &Config,
    w: &FloatWeights,
    linears: HfLinears,
    others: Float,
    shards: usize,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut config: serde_json::Value = serde_json::from_str(&crate::tiny::hf_config_json(cfg)).expect("json");
    if let HfLinears::Packed(how) = linears {
        let class = match how {
            ScaleUse::Multiply => "autobitlinear",
            ScaleUse::Divide => "bitlinear",
        };
        config["quantization_config"] =
            serde_json::json!({ "quant_method": "bitnet", "linear_class": class, "quantization_mode": "offline" });
    }
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config).expect("json") + "\n")?;
    // (name, dtype, shape, bytes)
    let mut out: Vec<(String, &'static str, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, shape, v, is_linear) in hf_tensors(cfg, w) {
        match (is_linear, linears) {
            (true, HfLinears::Packed(how)) => {
                let (rows, cols) = (shape[0], shape[1]);
                let (codes, scale) = ternary_of(v, rows, cols);
                let stored = match how {
                    ScaleUse::Multiply => scale,
                    ScaleUse::Divide => 1.0 / scale,
                };
                out.push((name.clone(), "U8", vec![rows / 4, cols], ternary::pack_hf(&codes, rows, cols)));
                out.push((format!("{name}_scale"), "BF16", vec![1], Float::BF16.bytes(&[stored])));
            }
            (true, HfLinears::Float(t)) => out.push((name, t.name(), shape, t.bytes(v))),
            (false, _) => out.push((name, others.name(), shape, others.bytes(v))),
        }
    }
    let shards = shards.max(1);
    if shards == 1 {
        let e: Vec<safetensors::Entry> =
            out.iter().map(|(n, d, s, b)| (n.as_str(), *d, s.as_slice(), b.as_slice())).collect();
        return std::fs::write(dir.join("model.safetensors"), safetensors::serialize(&e, &[("format", "pt")]));
    }
    let per = out.len().div_ceil(shards);
    let mut map = serde_json::Map::new();
    for (k, chunk) in out.chunks(per).enumerate() {
        let file = format!("model-{:05}-of-{:05}.safetensors", k + 1, shards);
        let e: Vec<safetensors::Entry> =
            chunk.iter().map(|(n, d, s, b)| (n.as_str(), *d, s.as_slice(), b.as_slice())).collect();
        std::fs::write(dir.join(&file), safetensors::serialize(&e, &[("format", "pt")]))?;
        for (n, ..) in chunk {
            map.insert(n.clone(), serde_json::Value::from(file.clone()));
        }
    }
    let total: usize = out.iter().map(|o| o.3.len()).sum();
    let index = serde_json::json!({ "metadata": { "total_size": total }, "weight_map": map });
    std::fs::write(dir.join("model.safetensors.index.json"), serde_json::to_string_pretty(&index).expect("json"))
}

/// How a GGUF file stores its decoder linears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgufLinears {
    /// Floats.
    Float(Float),
    /// Ternary blocks (absmean of the BF16-rounded master, one fp16 scale in every block).
    Ternary(Tq),
}

/// Write a GGUF v3 file the way llama.cpp's converter lays one out: architecture `bitnet` when
/// the config has sub-norms, else `llama` (whose q/k rows are permuted for interleaved RoPE);
/// norms in F32, the embedding (and untied LM head) in `others`.
pub fn write_gguf(
    path: &Path,
    cfg: &Config,
    w: &FloatWeights,
    linears: GgufLinears,
    others: Float,
) -> std::io::Result<()> {
    let m = &cfg.model;
    let arch = if m.sub_norms { "bitnet" } else { "llama" };
    let meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::Str(arch.into())),
        ("general.name".into(), Value::Str(format!("trit fixture ({})", cfg.name))),
        (format!("{arch}.vocab_size"), Value::U(m.vocab as u64)),
        (format!("{arch}.context_length"), Value::U(m.max_seq as u64)),
        (format!("{arch}.embedding_length"), Value::U(m.hidden as u64)),
        (format!("{arch}.feed_forward_length"), Value::U(m.ffn as u64)),
        (format!("{arch}.block_count"), Value::U(m.layers as u64)),
        (format!("{arch}.attention.head_count"), Value::U(m.heads as u64)),
        (format!("{arch}.attention.head_count_kv"), Value::U(m.kv_heads as u64)),
        (format!("{arch}.attention.key_length"), Value::U(m.head_dim as u64)),
        (format!("{arch}.rope.freq_base"), Value::F(m.rope_theta)),
        (format!("{arch}.attention.layer_norm_rms_epsilon"), Value::F(m.norm_eps)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U(m.bos_token_id as u64)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U(m.eos_token_id as u64)),
    ];
    let gg = |hf: &str| -> String {
        // inverse of super::hf_name
        let fixed = [
            ("model.embed_tokens.weight", "token_embd.weight"),
            ("model.norm.weight", "output_norm.weight"),
            ("lm_head.weight", "output.weight"),
        ];
        if let Some((_, g)) = fixed.iter().find(|(h, _)| *h == hf) {
            return g.to_string();
        }
        let rest = hf.strip_prefix("model.layers.").expect("layer tensor");
        let (i, part) = rest.split_once('.').expect("layer tensor");
        let g = match part {
            "input_layernorm.weight" => "attn_norm.weight",
            "self_attn.q_proj.weight" => "attn_q.weight",
            "self_attn.k_proj.weight" => "attn_k.weight",
            "self_attn.v_proj.weight" => "attn_v.weight",
            "self_attn.o_proj.weight" => "attn_output.weight",
            "self_attn.attn_sub_norm.weight" => "attn_sub_norm.weight",
            "post_attention_layernorm.weight" => "ffn_norm.weight",
            "mlp.gate_proj.weight" => "ffn_gate.weight",
            "mlp.up_proj.weight" => "ffn_up.weight",
            "mlp.down_proj.weight" => "ffn_down.weight",
            "mlp.ffn_sub_norm.weight" => "ffn_sub_norm.weight",
            other => panic!("no GGUF name for {other}"),
        };
        format!("blk.{i}.{g}")
    };
    let mut out: Vec<(String, Vec<u64>, u32, Vec<u8>)> = Vec::new();
    for (name, shape, v, is_linear) in hf_tensors(cfg, w) {
        let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        let heads = if arch == "llama" && name.ends_with("q_proj.weight") {
            Some(m.heads)
        } else if arch == "llama" && name.ends_with("k_proj.weight") {
            Some(m.kv_heads)
        } else {
            None
        };
        if is_linear {
            let (rows, cols) = (shape[0], shape[1]);
            match linears {
                GgufLinears::Float(t) => {
                    let v = match heads {
                        Some(h) => super::permute_rows(v, rows, cols, h),
                        None => v.to_vec(),
                    };
                    out.push((gg(&name), dims, t.ggml(), t.bytes(&v)));
                }
                GgufLinears::Ternary(tq) => {
                    if cols % ternary::QK != 0 {
                        return Err(std::io::Error::other(format!(
                            "{name}: {cols} columns are not a multiple of 256 (GGUF ternary blocks run along rows)"
                        )));
                    }
                    let (mut codes, scale) = ternary_of(v, rows, cols);
                    if let Some(h) = heads {
                        codes = super::permute_rows(&codes, rows, cols, h);
                    }
                    let ty = match tq {
                        Tq::Tq1 => gguf::ty::TQ1_0,
                        Tq::Tq2 => gguf::ty::TQ2_0,
                    };
                    out.push((gg(&name), dims, ty, ternary::encode_tq(&codes, half::f16::from_f32(scale), tq)));
                }
            }
        } else if shape.len() == 1 {
            out.push((gg(&name), dims, gguf::ty::F32, Float::F32.bytes(v)));
        } else {
            out.push((gg(&name), dims, others.ggml(), others.bytes(v)));
        }
    }
    let meta_ref: Vec<(&str, Value)> = meta.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let entries: Vec<gguf::Entry> =
        out.iter().map(|(n, d, t, b)| (n.as_str(), d.as_slice(), *t, b.as_slice())).collect();
    std::fs::write(path, gguf::write(&meta_ref, &entries))
}

/// Random weights that every format stores exactly and whose absmean scales are exact:
/// every value is `k * 2^-e` with `|k| <= 255` (exact in BF16, F16 and F32), and every linear's
/// mean |W| is `c * 2^-e` with `c` odd (so `|w| / mean` is never a rounding tie and the scale
/// is exact in BF16 and fp16). Linears have std about `1/sqrt(in)`; norm gains are near 1.
pub fn grid_weights(cfg: &Config, seed: u64) -> FloatWeights {
    let m = &cfg.model;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut linear = |rows: usize, cols: usize| -> Vec<f32> {
        let n = rows * cols;
        // magnitudes k in 0..=KMAX, mean about KMAX/2; unit 2^-e puts the mean near 0.8/sqrt(cols)
        const KMAX: i64 = 40;
        let e = (KMAX as f64 / 2.0 / (0.8 / (cols as f64).sqrt())).log2().round() as i32;
        let mut k: Vec<i64> = (0..n).map(|_| rng.random_range(0..=KMAX)).collect();
        let mut c = (k.iter().sum::<i64>() as f64 / n as f64).round() as i64;
        if c % 2 == 0 {
            c += 1;
        }
        let mut diff = c * n as i64 - k.iter().sum::<i64>();
        while diff != 0 {
            let i = rng.random_range(0..n);
            if diff > 0 && k[i] < KMAX {
                k[i] += 1;
                diff -= 1;
            } else if diff < 0 && k[i] > 0 {
                k[i] -= 1;
                diff += 1;
            }
        }
        let unit = (2f64).powi(-e);
        k.iter().map(|&k| ((if rng.random::<bool>() { k } else { -k }) as f64 * unit) as f32).collect()
    };
    let (h, f, q, kv) = (m.hidden, m.ffn, m.heads * m.head_dim, cfg.kv_dim());
    let mut layers = Vec::new();
    for _ in 0..m.layers {
        let (qw, kw, vw, ow) = (linear(q, h), linear(kv, h), linear(kv, h), linear(h, q));
        let (gw, uw, dw) = (linear(f, h), linear(f, h), linear(h, f));
        layers.push(FloatLayer {
            attn_norm: vec![],
            q: qw,
            k: kw,
            v: vw,
            o: ow,
            attn_sub_norm: None,
            ffn_norm: vec![],
            gate: gw,
            up: uw,
            down: dw,
            ffn_sub_norm: None,
        });
    }
    let mut gains =
        |n: usize| -> Vec<f32> { (0..n).map(|_| 1.0 + rng.random_range(-16i32..=16) as f32 / 64.0).collect() };
    for l in &mut layers {
        l.attn_norm = gains(h);
        l.ffn_norm = gains(h);
        if m.sub_norms {
            l.attn_sub_norm = Some(gains(q));
            l.ffn_sub_norm = Some(gains(f));
        }
    }
    let final_norm = gains(h);
    // embedding and head: k * 2^-6, |k| <= 160 (std about 0.7)
    let mut table = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-160i32..=160) as f32 / 64.0).collect() };
    let embed = table(m.vocab * h);
    let lm_head = (!m.tied_embeddings).then(|| table(m.vocab * h));
    FloatWeights { embed, layers, final_norm, lm_head }
}
