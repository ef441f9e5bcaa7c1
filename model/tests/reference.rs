//! The bit-exact reference as a whole: prefill equals decode, every architecture switch runs,
//! bad requests are refused with a clear message, and the numerics cost stays small against the
//! published float semantics.

mod common;

use common::{checkpoint, reference, variant};
use model::float::{agreement, FloatMode, FloatModel, FloatRunner};
use model::reference::{logits_to_f32, QuantModel, Reference};
use model::Config;
use std::sync::Arc;

/// Every combination of the architecture switches, at tiny size.
fn switch_variants() -> Vec<(String, Config)> {
    let mut out = Vec::new();
    for act in ["relu2", "silu"] {
        for sub in [true, false] {
            for (kv, hd) in [(2, 16), (4, 16), (1, 32)] {
                let heads = 64 / hd;
                let edit = format!(
                    "[model]\nffn_activation = \"{act}\"\nsub_norms = {sub}\nkv_heads = {kv}\nhead_dim = {hd}\nheads = {heads}\n"
                );
                out.push((format!("{act} sub_norms={sub} kv_heads={kv} head_dim={hd}"), variant(&edit)));
            }
        }
    }
    out.push((
        "int2 weights, int4 kv".into(),
        variant("[quant]\nweights = \"int2\"\nweight_group = 16\nkv = \"int4\"\n[engine]\nacc_bits = 32\n"),
    ));
    out.push(("untied embeddings".into(), variant("[model]\ntied_embeddings = false\n")));
    out
}

fn prompt(n: usize, seed: u32) -> Vec<u32> {
    (0..n as u32).map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 7) % 256).collect()
}

#[test]
fn prefill_then_decode_equals_decoding_one_at_a_time() {
    for (name, cfg) in switch_variants() {
        let mut a = reference(&cfg, 11);
        let mut b = a.clone();
        let tokens = prompt(13, 5);
        let la = a.prefill_all(&tokens[..9]).unwrap();
        let mut lb = Vec::new();
        for &t in &tokens[..9] {
            lb.push(b.decode(t).unwrap());
        }
        assert_eq!(la, lb, "{name}: prefill logits differ from one-at-a-time decode");
        for &t in &tokens[9..] {
            assert_eq!(a.decode(t).unwrap(), b.decode(t).unwrap(), "{name}: decode after prefill differs");
        }
        assert_eq!(a.cache().len(), b.cache().len());
        for (ca, cb) in a.cache().iter().zip(b.cache()) {
            assert_eq!(
                (&ca.k, &ca.k_scale, &ca.v, &ca.v_scale),
                (&cb.k, &cb.k_scale, &cb.v, &cb.v_scale),
                "{name}: caches differ"
            );
        }
        // Logits are not degenerate: several distinct values.
        let last = a.decode(7).unwrap();
        let distinct: std::collections::BTreeSet<i32> = last.iter().cloned().collect();
        assert!(distinct.len() > cfg.model.vocab / 2, "{name}: logits look degenerate");
    }
}

#[test]
fn prefill_in_chunks_equals_one_prefill() {
    let cfg = Config::preset("tiny").unwrap();
    let mut a = reference(&cfg, 3);
    let mut b = a.clone();
    let tokens = prompt(33, 9);
    let whole = a.prefill(&tokens).unwrap();
    b.prefill(&tokens[..1]).unwrap();
    b.prefill(&tokens[1..8]).unwrap();
    let chunked = b.prefill(&tokens[8..]).unwrap();
    assert_eq!(whole, chunked);
}

#[test]
fn context_limit_is_enforced_with_a_clear_message() {
    let cfg = variant("[model]\nmax_seq = 8\n");
    let mut r = reference(&cfg, 1);
    let err = r.prefill(&prompt(9, 0)).unwrap_err().to_string();
    assert!(err.contains("max_seq = 8") && err.contains("exceed the context length"), "{err}");
    r.prefill(&prompt(8, 0)).unwrap(); // exactly the limit is fine
    let err = r.decode(1).unwrap_err().to_string();
    assert!(err.contains("9 > 8"), "{err}");
    let mut r = reference(&cfg, 1);
    let err = r.prefill(&[300]).unwrap_err().to_string();
    assert!(err.contains("token id 300") && err.contains("258"), "{err}");
    assert!(r.prefill(&[]).unwrap_err().to_string().contains("empty"));
}

#[test]
fn exact_model_tracks_the_published_float_semantics() {
    let cfg = Config::preset("tiny").unwrap();
    let (_dir, w) = checkpoint(&cfg, model::tiny::TINY_SEED);
    let exact = QuantModel::from_float(&cfg, &w);
    let tokens = prompt(256, 1);
    let mut r = Reference::new(Arc::new(exact));
    let ex: Vec<Vec<f32>> = r.prefill_all(&tokens).unwrap().iter().map(|l| logits_to_f32(l)).collect();
    let fm = Arc::new(FloatModel::new(&cfg, w.clone(), FloatMode::W158A8));
    let fl = FloatRunner::new(fm).forward(&tokens);
    let a = agreement(&ex, &fl);
    println!(
        "exact vs w158a8 over {} positions: rel RMS {:.4}, mean KL {:.6}, top-1 {:.4}",
        a.positions, a.rel_rms, a.mean_kl, a.top1
    );
    assert!(a.rel_rms <= 0.02, "relative RMS logit error {} exceeds 2%", a.rel_rms);
    // The plain model is further away (ternary weights change the function), which shows the
    // metric is sensitive.
    let plain = FloatRunner::new(Arc::new(FloatModel::new(&cfg, w, FloatMode::Plain))).forward(&tokens);
    let p = agreement(&fl, &plain);
    println!("w158a8 vs plain: rel RMS {:.4}, top-1 {:.4}", p.rel_rms, p.top1);
    assert!(p.rel_rms > a.rel_rms);
}
