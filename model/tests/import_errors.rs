//! Bad checkpoints get a clear error naming the tensor or field, never a panic: wrong shapes,
//! missing tensors, unknown dtypes, configs that disagree with the preset, truncated or corrupt
//! files, broken shard indexes; plus thousands of mutated, truncated and random safetensors and
//! GGUF headers through the same parse functions the `fuzz/` targets call.

use model::import::fixtures::{grid_weights, write_gguf, write_hf, Float, GgufLinears, HfLinears};
use model::import::ternary::Tq;
use model::import::{gguf, safetensors, Checkpoint, ScaleUse};
use model::Config;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

fn cfg() -> Config {
    Config::preset_with(
        "tiny",
        "[model]\nvocab = 260\nhidden = 256\nheads = 4\nkv_heads = 1\nhead_dim = 64\nffn = 512\nmax_seq = 64\n\
         tied_embeddings = true\n",
    )
    .unwrap()
}

fn load_err(path: &Path, cfg: &Config) -> String {
    match Checkpoint::open(path) {
        Err(e) => e.to_string(),
        Ok(c) => c.load_quant(cfg).err().map(|e| e.to_string()).unwrap_or_else(|| panic!("{} loaded", path.display())),
    }
}

/// Rewrite one tensor of a single-file HF checkpoint (dtype, shape, bytes); `None` removes it.
fn edit_tensor(dir: &Path, name: &str, new: Option<(&str, Vec<usize>, Vec<u8>)>) {
    let p = dir.join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    let h = safetensors::parse(&bytes).unwrap();
    let mut owned: Vec<(String, String, Vec<usize>, Vec<u8>)> = h
        .tensors
        .iter()
        .filter(|(n, _)| n.as_str() != name)
        .map(|(n, t)| (n.clone(), t.dtype.clone(), t.shape.clone(), bytes[t.start..t.end].to_vec()))
        .collect();
    if let Some((d, s, b)) = new {
        owned.push((name.to_string(), d.to_string(), s, b));
    }
    let e: Vec<safetensors::Entry> =
        owned.iter().map(|(n, d, s, b)| (n.as_str(), d.as_str(), s.as_slice(), b.as_slice())).collect();
    std::fs::write(&p, safetensors::serialize(&e, &[])).unwrap();
}

#[test]
fn packed_checkpoint_errors_name_the_tensor_or_field() {
    let cfg = cfg();
    let w = grid_weights(&cfg, 1);
    let fresh = || {
        let d = tempfile::tempdir().unwrap();
        write_hf(d.path(), &cfg, &w, HfLinears::Packed(ScaleUse::Multiply), Float::BF16, 1).unwrap();
        d
    };
    let q = "model.layers.1.self_attn.q_proj.weight";

    let d = fresh();
    edit_tensor(d.path(), &format!("{q}_scale"), None);
    let e = load_err(d.path(), &cfg);
    assert!(e.contains("q_proj.weight_scale`") && e.contains("missing"), "{e}");

    let d = fresh();
    edit_tensor(d.path(), q, Some(("U8", vec![256, 64], vec![0x55; 256 * 64])));
    let e = load_err(d.path(), &cfg);
    assert!(e.contains(q) && e.contains("packed uint8 shape [256, 64], expected [64, 256]"), "{e}");

    let d = fresh();
    edit_tensor(d.path(), q, Some(("U8", vec![64, 256], vec![0xff; 64 * 256])));
    let e = load_err(d.path(), &cfg);
    assert!(e.contains(q) && e.contains("code 3"), "{e}");

    let d = fresh();
    edit_tensor(d.path(), &format!("{q}_scale"), Some(("F32", vec![1], (-2.0f32).to_le_bytes().to_vec())));
    let e = load_err(d.path(), &cfg);
    assert!(e.contains("weight_scale") && e.contains("must be positive"), "{e}");

    let d = fresh();
    edit_tensor(d.path(), q, Some(("I16", vec![256, 256], vec![0; 2 * 256 * 256])));
    let e = load_err(d.path(), &cfg);
    assert!(e.contains(q) && e.contains("dtype I16 is not supported"), "{e}");

    // No quantization_config: the scale convention is unknown.
    let d = fresh();
    let c = std::fs::read_to_string(d.path().join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&c).unwrap();
    v.as_object_mut().unwrap().remove("quantization_config");
    std::fs::write(d.path().join("config.json"), v.to_string()).unwrap();
    let e = load_err(d.path(), &cfg);
    assert!(e.contains("config.json") && e.contains("quantization_config"), "{e}");
    v["quantization_config"] = serde_json::json!({"quant_method": "bitnet", "linear_class": "fancylinear"});
    std::fs::write(d.path().join("config.json"), v.to_string()).unwrap();
    let e = load_err(d.path(), &cfg);
    assert!(e.contains("`quantization_config.linear_class` `fancylinear`"), "{e}");
}

#[test]
fn config_disagreements_name_both_sides() {
    let cfg = cfg();
    let w = grid_weights(&cfg, 2);
    let root = tempfile::tempdir().unwrap();
    let g = root.path().join("m.gguf");
    write_gguf(&g, &cfg, &w, GgufLinears::Ternary(Tq::Tq2), Float::F16).unwrap();
    let other = Config::preset_with("tiny", "[model]\nvocab = 260\nhidden = 256\nheads = 4\nkv_heads = 2\nhead_dim = 64\nffn = 512\nmax_seq = 64\ntied_embeddings = true\n").unwrap();
    let e = load_err(&g, &other);
    assert!(
        e.contains("m.gguf") && e.contains("`num_key_value_heads` is 1 but config tiny has model.kv_heads = 2"),
        "{e}"
    );
    let untied = Config::preset_with(
        "tiny",
        "[model]\nvocab = 260\nhidden = 256\nheads = 4\nkv_heads = 1\nhead_dim = 64\nffn = 512\nmax_seq = 64\n",
    )
    .unwrap();
    let e = load_err(&g, &untied);
    assert!(e.contains("tie_word_embeddings"), "{e}");
    // The preset that the 2B-4T checkpoint needs, against this small file.
    let e = load_err(&g, &Config::preset("bitnet2b-kv260").unwrap());
    assert!(e.contains("`vocab_size` is 260 but config bitnet2b-kv260 has model.vocab = 128256"), "{e}");
}

#[test]
fn gguf_errors_name_the_tensor() {
    let cfg = cfg();
    let w = grid_weights(&cfg, 3);
    let root = tempfile::tempdir().unwrap();
    let g = root.path().join("m.gguf");
    write_gguf(&g, &cfg, &w, GgufLinears::Ternary(Tq::Tq1), Float::F16).unwrap();
    let good = std::fs::read(&g).unwrap();

    // Truncated: the last tensor's data runs past the end.
    std::fs::write(&g, &good[..good.len() - 100]).unwrap();
    let e = load_err(&g, &cfg);
    assert!(e.contains("not a valid GGUF file") && e.contains("tensor `") && e.contains("truncated"), "{e}");

    // A block of one tensor with another scale.
    let h = gguf::parse(&good).unwrap();
    let t = h.tensors.iter().find(|t| t.name == "blk.0.ffn_up.weight").unwrap();
    let (s, _) = t.range.unwrap();
    let mut bad = good.clone();
    let d = half::f16::from_f32(0.5).to_le_bytes();
    bad[s + 54 * 3 + 52..s + 54 * 3 + 54].copy_from_slice(&d);
    std::fs::write(&g, &bad).unwrap();
    let e = load_err(&g, &cfg);
    assert!(
        e.contains("model.layers.0.mlp.up_proj.weight")
            && e.contains("block 3 has 0.5")
            && e.contains("one scale per tensor"),
        "{e}"
    );

    // A tensor type the importer does not read (Q4_K, id 12): rewrite blk.1.attn_v's type id.
    let t = h.tensors.iter().find(|t| t.name == "blk.1.attn_v.weight").unwrap();
    let key = b"blk.1.attn_v.weight";
    let at = good.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    let ty_at = at + 4 + 8 * t.dims.len();
    let mut bad = good.clone();
    bad[ty_at..ty_at + 4].copy_from_slice(&12u32.to_le_bytes());
    std::fs::write(&g, &bad).unwrap();
    let e = load_err(&g, &cfg);
    // Q4_K blocks are bigger than TQ1_0's: the table no longer fits the data
    assert!(e.contains("tensors `blk.1.attn_v.weight` and `blk.1.attn_output.weight` overlap"), "{e}");
    // IQ4_XS (23): a type whose layout the parser does not know; the loader names it
    bad[ty_at..ty_at + 4].copy_from_slice(&23u32.to_le_bytes());
    std::fs::write(&g, &bad).unwrap();
    let e = load_err(&g, &cfg);
    assert!(e.contains("model.layers.1.self_attn.v_proj.weight") && e.contains("ggml type 23 is not supported"), "{e}");

    // Missing tensor: a file written for a config without sub-norms, read as one with them.
    let nosub = Config::preset_with("tiny", "[model]\nvocab = 260\nhidden = 256\nheads = 4\nkv_heads = 1\nhead_dim = 64\nffn = 512\nmax_seq = 64\ntied_embeddings = true\nsub_norms = false\n").unwrap();
    let w2 = grid_weights(&nosub, 4);
    write_gguf(&g, &nosub, &w2, GgufLinears::Float(Float::F16), Float::F16).unwrap();
    let e = load_err(&g, &cfg);
    // the file says architecture llama (no sub-norms): the activation differs first
    assert!(e.contains("hidden_act"), "{e}");
}

#[test]
fn sharded_index_errors() {
    let cfg = cfg();
    let w = grid_weights(&cfg, 5);
    let d = tempfile::tempdir().unwrap();
    write_hf(d.path(), &cfg, &w, HfLinears::Float(Float::BF16), Float::BF16, 3).unwrap();
    let index = d.path().join("model.safetensors.index.json");
    let text = std::fs::read_to_string(&index).unwrap();
    // A shard that does not exist.
    std::fs::write(&index, text.replacen("model-00002-of-00003.safetensors", "model-00009-of-00003.safetensors", 1))
        .unwrap();
    let e = load_err(d.path(), &cfg);
    assert!(e.contains("model-00009-of-00003.safetensors") && e.contains("cannot read"), "{e}");
    // A path outside the directory.
    std::fs::write(&index, text.replacen("model-00002-of-00003.safetensors", "../x.safetensors", 1)).unwrap();
    let e = load_err(d.path(), &cfg);
    assert!(e.contains("is not a file name in the directory"), "{e}");
    // A truncated shard.
    std::fs::write(&index, &text).unwrap();
    let shard = d.path().join("model-00003-of-00003.safetensors");
    let b = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &b[..b.len() - 10]).unwrap();
    let e = load_err(d.path(), &cfg);
    assert!(
        e.contains("model-00003-of-00003.safetensors: not a valid safetensors file") && e.contains("tensor `"),
        "{e}"
    );
}

#[test]
fn not_a_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("weights.bin");
    std::fs::write(&p, b"hello").unwrap();
    assert!(load_err(&p, &cfg()).contains("not a checkpoint"));
    assert!(load_err(&d.path().join("nope.gguf"), &cfg()).contains("cannot read"));
    let g = d.path().join("x.gguf");
    std::fs::write(&g, b"GGUF\x03\0\0\0").unwrap();
    assert!(load_err(&g, &cfg()).contains("not a valid GGUF file"));
}

/// The parsers never panic: mutated (bit flips, byte sets, insertions, deletions), truncated and
/// random headers of valid files, thousands of each, only return `Ok` or a non-empty error.
/// (`fuzz/` has the same two functions as cargo-fuzz targets for machines with nightly Rust.)
#[test]
fn parsers_survive_mutated_truncated_and_random_input() {
    let cfg = cfg();
    let w = grid_weights(&cfg, 6);
    let d = tempfile::tempdir().unwrap();
    write_hf(d.path(), &cfg, &w, HfLinears::Packed(ScaleUse::Multiply), Float::BF16, 1).unwrap();
    let st = std::fs::read(d.path().join("model.safetensors")).unwrap();
    let g = d.path().join("m.gguf");
    write_gguf(&g, &cfg, &w, GgufLinears::Ternary(Tq::Tq1), Float::F16).unwrap();
    let gg = std::fs::read(&g).unwrap();
    // Headers only (the data is never parsed here), plus a little data so offsets can land.
    let st_head = &st[..(8 + u64::from_le_bytes(st[..8].try_into().unwrap()) as usize + 256).min(st.len())];
    let gg_head = &gg[..6000.min(gg.len())];
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let mut errors = 0usize;
    let mut check = |r: Result<(), String>| {
        if let Err(e) = r {
            assert!(!e.is_empty());
            errors += 1;
        }
    };
    for i in 0..6000 {
        for (which, base) in [(0, st_head), (1, gg_head)] {
            let mut b = base.to_vec();
            match i % 6 {
                0 => b.truncate(rng.random_range(0..=b.len())),
                1 => {
                    for _ in 0..rng.random_range(1..8) {
                        let at = rng.random_range(0..b.len());
                        b[at] ^= 1 << rng.random_range(0..8);
                    }
                }
                2 => {
                    // plausible-but-wrong integers: set a byte to 0x00/0xff/0x7f
                    let at = rng.random_range(0..b.len().min(400));
                    b[at] = [0u8, 0xff, 0x7f, 0x80][rng.random_range(0..4)];
                }
                3 => {
                    let at = rng.random_range(0..b.len());
                    let n = rng.random_range(1..16).min(b.len() - at);
                    b.drain(at..at + n);
                }
                4 => {
                    let at = rng.random_range(0..b.len());
                    let extra: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
                    b.splice(at..at, extra);
                }
                _ => {
                    b = (0..rng.random_range(0..64)).map(|_| rng.random()).collect();
                    if rng.random::<bool>() && which == 1 {
                        b.splice(0..0, *b"GGUF\x03\0\0\0");
                    }
                }
            }
            let r = std::panic::catch_unwind(|| match which {
                0 => safetensors::parse(&b).map(|_| ()),
                _ => gguf::parse(&b).map(|_| ()),
            });
            check(r.unwrap_or_else(|_| panic!("parser {which} panicked on case {i}: {b:02x?}")));
        }
    }
    assert!(errors > 6000, "most mutations must be rejected, {errors} were");

    // The whole loader on a few hundred corrupted files (data included): errors, no panics.
    for i in 0..200 {
        let (path, base) = if i % 2 == 0 { (d.path().join("model.safetensors"), &st) } else { (g.clone(), &gg) };
        let mut b = base.clone();
        for _ in 0..rng.random_range(1..40) {
            let at = rng.random_range(0..b.len());
            b[at] = rng.random();
        }
        std::fs::write(&path, &b).unwrap();
        let open_path = if i % 2 == 0 { d.path().to_path_buf() } else { g.clone() };
        let r = std::panic::catch_unwind(|| Checkpoint::open(&open_path).and_then(|c| c.load_quant(&cfg)).map(|_| ()));
        match r {
            Ok(Ok(())) | Ok(Err(_)) => {}
            Err(_) => panic!("loader panicked on corrupted file {i}"),
        }
        std::fs::write(&path, base).unwrap();
    }
}
