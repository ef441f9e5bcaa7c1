//! Checkpoint import: the same known weights written in every supported format (Hugging Face
//! F32/F16/BF16, sharded, BitNet packed uint8 + weight_scale; GGUF F32/F16, TQ1_0, TQ2_0) must
//! load to the same ternary codes and scales and give bit-identical exact-mode logits; and the
//! codes must equal an independent absmean computed here in exact arithmetic.

use model::checkpoint::FloatWeights;
use model::import::fixtures::{grid_weights, write_gguf, write_hf, Float, GgufLinears, HfLinears};
use model::import::ternary::Tq;
use model::import::{Checkpoint, ScaleUse};
use model::quant::{QLinear, QWeights};
use model::reference::{QuantModel, Reference};
use model::Config;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The BitNet 2B-4T layout at tiny size: ReLU^2, sub-norms, GQA (4 query heads per KV head, as
/// 20/5), tied embeddings, theta 5e5; rows of 256 so GGUF ternary blocks fit.
fn bitnet_tiny() -> Config {
    Config::preset_with(
        "tiny",
        "[model]\nvocab = 260\nhidden = 256\nheads = 4\nkv_heads = 1\nhead_dim = 64\nffn = 512\n\
         max_seq = 64\nrope_theta = 500000.0\ntied_embeddings = true\n",
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A Llama-architecture model (SiLU, no sub-norms, untied, 2 KV heads) as 1bitLLM's ternary
/// Llama checkpoints and Llama-2 are.
fn llama_tiny() -> Config {
    Config::preset_with(
        "tiny",
        "[model]\nvocab = 260\nhidden = 256\nheads = 4\nkv_heads = 2\nhead_dim = 64\nffn = 512\n\
         max_seq = 64\nffn_activation = \"silu\"\nsub_norms = false\ntied_embeddings = false\n",
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

const PROMPT: [u32; 6] = [256, 72, 105, 33, 7, 199];

fn logits(m: QuantModel) -> Vec<i32> {
    Reference::new(Arc::new(m)).prefill(&PROMPT).unwrap()
}

fn ternary(l: &QLinear) -> (&[i8], f32) {
    match &l.w {
        QWeights::Ternary { codes, scale } => (codes, *scale),
        other => panic!("not ternary: {other:?}"),
    }
}

/// Write `w` in every format for `cfg`; (label, path).
fn all_formats(root: &Path, cfg: &Config, w: &FloatWeights) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut hf = |label: &str, lin: HfLinears, other: Float, shards: usize| {
        let dir = root.join(label);
        write_hf(&dir, cfg, w, lin, other, shards).unwrap();
        out.push((label.to_string(), dir));
    };
    hf("hf-bf16", HfLinears::Float(Float::BF16), Float::BF16, 1);
    hf("hf-f16", HfLinears::Float(Float::F16), Float::F16, 1);
    hf("hf-f32", HfLinears::Float(Float::F32), Float::F32, 1);
    hf("hf-bf16-3-shards", HfLinears::Float(Float::BF16), Float::BF16, 3);
    hf("hf-packed-autobitlinear", HfLinears::Packed(ScaleUse::Multiply), Float::BF16, 1);
    // (`bitlinear` stores 1/scale in BF16, which cannot hold it exactly; tested on its own below)
    hf("hf-packed-2-shards", HfLinears::Packed(ScaleUse::Multiply), Float::BF16, 2);
    for (label, lin, other) in [
        ("gguf-f32", GgufLinears::Float(Float::F32), Float::F32),
        ("gguf-f16", GgufLinears::Float(Float::F16), Float::F16),
        ("gguf-bf16", GgufLinears::Float(Float::BF16), Float::BF16),
        ("gguf-tq1_0", GgufLinears::Ternary(Tq::Tq1), Float::F16),
        ("gguf-tq2_0", GgufLinears::Ternary(Tq::Tq2), Float::F16),
    ] {
        let path = root.join(format!("{label}.gguf"));
        write_gguf(&path, cfg, w, lin, other).unwrap();
        out.push((label.to_string(), path));
    }
    out
}

/// Absmean ternary codes computed independently in exact (f64) arithmetic: `m = mean |w|`,
/// `code = clamp(round_half_even(w / m), -1, 1)`. The grid weights make every ratio exact.
fn absmean_exact(w: &[f32]) -> (Vec<i8>, f64) {
    let m = w.iter().map(|v| v.abs() as f64).sum::<f64>() / w.len() as f64;
    let codes = w.iter().map(|&v| (v as f64 / m).round_ties_even().clamp(-1.0, 1.0) as i8).collect();
    (codes, m)
}

fn check_all_formats_agree(cfg: &Config, seed: u64) {
    let w = grid_weights(cfg, seed);
    let root = tempfile::tempdir().unwrap();
    let formats = all_formats(root.path(), cfg, &w);
    let mut first: Option<(String, QuantModel, Vec<i32>)> = None;
    for (label, path) in formats {
        let ck = Checkpoint::open(&path).unwrap_or_else(|e| panic!("{label}: {e}"));
        let q = ck.load_quant(cfg).unwrap_or_else(|e| panic!("{label}: {e}"));
        // Independent absmean of every linear of layer 0 and the last layer.
        for l in [0, cfg.model.layers - 1] {
            let fl = &w.layers[l];
            let ql = &q.layers[l];
            for (name, float, lin) in
                [("q", &fl.q, &ql.q), ("k", &fl.k, &ql.k), ("o", &fl.o, &ql.o), ("down", &fl.down, &ql.down)]
            {
                let (codes, m) = absmean_exact(float);
                let (got, scale) = ternary(lin);
                assert_eq!(got, codes.as_slice(), "{label}: layer {l} {name} codes");
                assert_eq!(scale as f64, m, "{label}: layer {l} {name} scale");
            }
        }
        let lg = logits(q.clone());
        match &first {
            None => first = Some((label, q, lg)),
            Some((l0, q0, lg0)) => {
                assert_eq!(q.embed, q0.embed, "{label} vs {l0}: embedding");
                assert_eq!(q.lm_head, q0.lm_head, "{label} vs {l0}: LM head");
                for (a, b) in q.layers.iter().zip(&q0.layers) {
                    for (x, y) in [
                        (&a.q, &b.q),
                        (&a.k, &b.k),
                        (&a.v, &b.v),
                        (&a.o, &b.o),
                        (&a.gate, &b.gate),
                        (&a.up, &b.up),
                        (&a.down, &b.down),
                    ] {
                        assert_eq!(x, y, "{label} vs {l0}: a linear differs");
                    }
                    assert_eq!(a.attn_norm, b.attn_norm, "{label} vs {l0}");
                    assert_eq!(a.ffn_sub_norm, b.ffn_sub_norm, "{label} vs {l0}");
                }
                assert_eq!(&lg, lg0, "{label} vs {l0}: logits differ");
            }
        }
    }
    // The logits mean something: not all equal.
    let lg = &first.unwrap().2;
    assert!(lg.iter().any(|&x| x != lg[0]));
}

#[test]
fn bitnet_layout_every_format_gives_identical_logits() {
    check_all_formats_agree(&bitnet_tiny(), 11);
}

#[test]
fn llama_layout_every_format_gives_identical_logits() {
    // GGUF `llama` files permute q/k rows for interleaved RoPE; the importer undoes it.
    check_all_formats_agree(&llama_tiny(), 12);
}

/// Must-show: a checkpoint with the 2B-4T layout -- the released tensor names, uint8 packing
/// `[out/4, in]`, BF16 `weight_scale` `[1]` with `linear_class: autobitlinear`, BF16 norms and
/// embedding, tied LM head -- gives exactly the logits of its BF16 master-weight form (the
/// `-bf16` release layout), which is quantized with absmean on import.
#[test]
fn bitnet_2b4t_packed_and_bf16_forms_give_identical_exact_logits() {
    let cfg = bitnet_tiny();
    let w = grid_weights(&cfg, 2024);
    let root = tempfile::tempdir().unwrap();
    let (packed, bf16) = (root.path().join("packed"), root.path().join("bf16"));
    write_hf(&packed, &cfg, &w, HfLinears::Packed(ScaleUse::Multiply), Float::BF16, 1).unwrap();
    write_hf(&bf16, &cfg, &w, HfLinears::Float(Float::BF16), Float::BF16, 1).unwrap();

    // The packed file has the release's names, dtypes and shapes.
    let bytes = std::fs::read(packed.join("model.safetensors")).unwrap();
    let h = model::import::safetensors::parse(&bytes).unwrap();
    let t = |n: &str| h.tensors.get(n).unwrap_or_else(|| panic!("no {n}"));
    let q = t("model.layers.0.self_attn.q_proj.weight");
    assert_eq!((q.dtype.as_str(), q.shape.as_slice()), ("U8", &[64usize, 256][..]));
    let s = t("model.layers.1.mlp.down_proj.weight_scale");
    assert_eq!((s.dtype.as_str(), s.shape.as_slice()), ("BF16", &[1usize][..]));
    assert_eq!(t("model.layers.0.mlp.ffn_sub_norm.weight").dtype, "BF16");
    assert_eq!(t("model.embed_tokens.weight").dtype, "BF16");
    assert!(!h.tensors.contains_key("lm_head.weight"), "2B-4T ties the LM head to the embedding");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(packed.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["quantization_config"]["linear_class"], "autobitlinear");

    let a = Checkpoint::open(&packed).unwrap().load_quant(&cfg).unwrap();
    let b = Checkpoint::open(&bf16).unwrap().load_quant(&cfg).unwrap();
    for (x, y) in a.layers.iter().zip(&b.layers) {
        assert_eq!((ternary(&x.gate).0, ternary(&x.gate).1), (ternary(&y.gate).0, ternary(&y.gate).1));
        assert_eq!(x.o, y.o);
    }
    let (mut ra, mut rb) = (Reference::new(Arc::new(a)), Reference::new(Arc::new(b)));
    assert_eq!(ra.prefill(&PROMPT).unwrap(), rb.prefill(&PROMPT).unwrap());
    for t in [3u32, 250, 17] {
        assert_eq!(ra.decode(t).unwrap(), rb.decode(t).unwrap(), "decode of {t}");
    }
}

/// The scale convention, checked on one hand-made linear: with `autobitlinear` the stored
/// `weight_scale` is the scale; with `bitlinear` it is its reciprocal.
#[test]
fn weight_scale_multiplies_for_autobitlinear_and_divides_for_bitlinear() {
    let cfg = bitnet_tiny();
    let w = grid_weights(&cfg, 5);
    let (_, m) = absmean_exact(&w.layers[0].v);
    for how in [ScaleUse::Multiply, ScaleUse::Divide] {
        let dir = tempfile::tempdir().unwrap();
        write_hf(dir.path(), &cfg, &w, HfLinears::Packed(how), Float::BF16, 1).unwrap();
        let ck = Checkpoint::open(dir.path()).unwrap();
        let stored =
            model::import::to_f32(&ck.tensor("model.layers.0.self_attn.v_proj.weight_scale").unwrap()).unwrap()[0];
        match how {
            ScaleUse::Multiply => assert_eq!(stored as f64, m),
            ScaleUse::Divide => assert!((stored as f64 * m - 1.0).abs() < 1e-2, "stored {stored}, mean {m}"),
        }
        let l = ck.linear("model.layers.0.self_attn.v_proj.weight", 64, 256, &cfg).unwrap();
        let want = match how {
            ScaleUse::Multiply => stored,
            ScaleUse::Divide => 1.0 / stored,
        };
        assert_eq!(ternary(&l).1, want);
    }
}

/// Float master weights load the same from every format (f32 view used by the float models).
#[test]
fn float_views_agree_across_float_formats() {
    let cfg = llama_tiny();
    let w = grid_weights(&cfg, 9);
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a");
    write_hf(&a, &cfg, &w, HfLinears::Float(Float::F16), Float::F16, 2).unwrap();
    let b = root.path().join("b.gguf");
    write_gguf(&b, &cfg, &w, GgufLinears::Float(Float::F16), Float::F16).unwrap();
    let fa = Checkpoint::open(&a).unwrap().load_float(&cfg).unwrap();
    let fb = Checkpoint::open(&b).unwrap().load_float(&cfg).unwrap();
    assert_eq!(fa, w);
    assert_eq!(fb, w);
}

/// A Llama-2-style fp16 checkpoint loads for the AccLLM (int2) config: float weights, quantized
/// by the int2 quantizer the reference has. Pre-quantized ternary files refuse an int2 config.
#[test]
fn llama_fp16_loads_for_the_int2_config_and_ternary_files_refuse_it() {
    let cfg = Config::preset_with(
        "accllm-u280",
        "[model]\nvocab = 260\nhidden = 256\nheads = 4\nkv_heads = 4\nhead_dim = 64\nffn = 512\nlayers = 2\nmax_seq = 64\n",
    )
    .unwrap();
    let w = grid_weights(&cfg, 3);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("llama2");
    write_hf(&dir, &cfg, &w, HfLinears::Float(Float::F16), Float::F16, 1).unwrap();
    let q = Checkpoint::open(&dir).unwrap().load_quant(&cfg).unwrap();
    assert!(matches!(q.layers[0].q.w, QWeights::Int2 { .. }));
    let gg = root.path().join("t.gguf");
    write_gguf(&gg, &cfg, &w, GgufLinears::Ternary(Tq::Tq2), Float::F16).unwrap();
    let e = Checkpoint::open(&gg).unwrap().load_quant(&cfg).unwrap_err().to_string();
    assert!(e.contains("q_proj.weight") && e.contains("pre-quantized ternary") && e.contains("Int2"), "{e}");
}
