//! Deterministic small checkpoints in the Hugging Face layout, for tests and the demo.
//!
//! [`write_model_dir`] writes `config.json`, a real `model.safetensors` (bf16, like the released
//! BitNet master weights) and a byte-level `tokenizer.json`; the result is loaded back through
//! [`crate::checkpoint::load_dir`], the same path as any real checkpoint.

use crate::checkpoint::{FloatLayer, FloatWeights};
use crate::config::{Config, FfnActivation};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::collections::HashMap;
use std::path::Path;

/// Seed of the built-in tiny model.
pub const TINY_SEED: u64 = 0x7417_2026;

/// Random weights with the shapes `cfg` asks for. Gaussian linears (std 1/sqrt(in)), norm gains
/// near 1, embeddings with std 1 and an LM head with std 0.5, so logits have a realistic spread
/// (a few units). (Random *tied* models mostly echo their input token, which makes a dull demo;
/// the tiny preset is untied, the tests also cover tied variants.)
pub fn random_weights(cfg: &Config, seed: u64) -> FloatWeights {
    let m = &cfg.model;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut gauss = |n: usize, mean: f32, std: f32| -> Vec<f32> {
        let d = Normal::new(mean, std).expect("valid normal");
        (0..n).map(|_| d.sample(&mut rng)).collect()
    };
    let (h, f, kv) = (m.hidden, m.ffn, cfg.kv_dim());
    let lin = |n_in: usize| 1.0 / (n_in as f32).sqrt();
    let embed = gauss(m.vocab * h, 0.0, 1.0);
    let mut layers = Vec::new();
    for _ in 0..m.layers {
        layers.push(FloatLayer {
            attn_norm: gauss(h, 1.0, 0.1),
            q: gauss(h * h, 0.0, lin(h)),
            k: gauss(kv * h, 0.0, lin(h)),
            v: gauss(kv * h, 0.0, lin(h)),
            o: gauss(h * h, 0.0, lin(h)),
            attn_sub_norm: m.sub_norms.then(|| gauss(h, 1.0, 0.1)),
            ffn_norm: gauss(h, 1.0, 0.1),
            gate: gauss(f * h, 0.0, lin(h)),
            up: gauss(f * h, 0.0, lin(h)),
            down: gauss(h * f, 0.0, lin(f)),
            ffn_sub_norm: m.sub_norms.then(|| gauss(f, 1.0, 0.1)),
        });
    }
    let final_norm = gauss(h, 1.0, 0.1);
    let lm_head = (!m.tied_embeddings).then(|| gauss(m.vocab * h, 0.0, 0.5));
    FloatWeights { embed, layers, final_norm, lm_head }
}

/// Storage dtype for [`write_checkpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreDtype {
    /// IEEE binary32.
    F32,
    /// bfloat16 (round to nearest even).
    Bf16,
}

/// Write `config.json` and `model.safetensors` for `w` in the Hugging Face BitNet/Llama layout.
pub fn write_checkpoint(dir: &Path, cfg: &Config, w: &FloatWeights, dtype: StoreDtype) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), hf_config_json(cfg))?;
    let m = &cfg.model;
    let (h, f, kv) = (m.hidden, m.ffn, cfg.kv_dim());
    let mut tensors: Vec<(String, Vec<usize>, &[f32])> = vec![
        ("model.embed_tokens.weight".into(), vec![m.vocab, h], &w.embed),
        ("model.norm.weight".into(), vec![h], &w.final_norm),
    ];
    if let Some(head) = &w.lm_head {
        tensors.push(("lm_head.weight".into(), vec![m.vocab, h], head));
    }
    for (i, l) in w.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        tensors.push((format!("{p}.input_layernorm.weight"), vec![h], &l.attn_norm));
        tensors.push((format!("{p}.self_attn.q_proj.weight"), vec![h, h], &l.q));
        tensors.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, h], &l.k));
        tensors.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, h], &l.v));
        tensors.push((format!("{p}.self_attn.o_proj.weight"), vec![h, h], &l.o));
        if let Some(s) = &l.attn_sub_norm {
            tensors.push((format!("{p}.self_attn.attn_sub_norm.weight"), vec![h], s));
        }
        tensors.push((format!("{p}.post_attention_layernorm.weight"), vec![h], &l.ffn_norm));
        tensors.push((format!("{p}.mlp.gate_proj.weight"), vec![f, h], &l.gate));
        tensors.push((format!("{p}.mlp.up_proj.weight"), vec![f, h], &l.up));
        tensors.push((format!("{p}.mlp.down_proj.weight"), vec![h, f], &l.down));
        if let Some(s) = &l.ffn_sub_norm {
            tensors.push((format!("{p}.mlp.ffn_sub_norm.weight"), vec![f], s));
        }
    }
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(n, s, v)| {
            let b = match dtype {
                StoreDtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                StoreDtype::Bf16 => v.iter().flat_map(|x| half::bf16::from_f32(*x).to_le_bytes()).collect(),
            };
            (n, s, b)
        })
        .collect();
    let st_dtype = match dtype {
        StoreDtype::F32 => Dtype::F32,
        StoreDtype::Bf16 => Dtype::BF16,
    };
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(n, s, b)| (n.clone(), TensorView::new(st_dtype, s.clone(), b).expect("shape matches data")))
        .collect();
    let meta: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    safetensors::serialize_to_file(views, Some(meta), &dir.join("model.safetensors"))
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// A `config.json` in the transformers form for `cfg` (BitNet when sub-norms are on, Llama
/// otherwise).
pub fn hf_config_json(cfg: &Config) -> String {
    let m = &cfg.model;
    let (arch, ty) = if m.sub_norms { ("BitNetForCausalLM", "bitnet") } else { ("LlamaForCausalLM", "llama") };
    let act = match m.ffn_activation {
        FfnActivation::Relu2 => "relu2",
        FfnActivation::Silu => "silu",
    };
    let v = serde_json::json!({
        "architectures": [arch],
        "model_type": ty,
        "vocab_size": m.vocab,
        "hidden_size": m.hidden,
        "intermediate_size": m.ffn,
        "num_hidden_layers": m.layers,
        "num_attention_heads": m.heads,
        "num_key_value_heads": m.kv_heads,
        "head_dim": m.head_dim,
        "max_position_embeddings": m.max_seq,
        "rms_norm_eps": m.norm_eps,
        "rope_theta": m.rope_theta,
        "tie_word_embeddings": m.tied_embeddings,
        "hidden_act": act,
        "bos_token_id": m.bos_token_id,
        "eos_token_id": m.eos_token_id,
        "torch_dtype": "bfloat16",
    });
    serde_json::to_string_pretty(&v).expect("json") + "\n"
}

/// Write config.json, model.safetensors (bf16) and tokenizer.json for random weights.
pub fn write_model_dir(dir: &Path, cfg: &Config, seed: u64) -> Result<(), String> {
    let w = random_weights(cfg, seed);
    write_checkpoint(dir, cfg, &w, StoreDtype::Bf16).map_err(|e| format!("writing {}: {e}", dir.display()))?;
    crate::tokenizer::write_byte_tokenizer(&dir.join("tokenizer.json"), cfg)
}
