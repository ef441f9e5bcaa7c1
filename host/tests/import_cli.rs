//! `trit import` and `trit run --model` on every checkpoint format: the weight image is exactly
//! what the runtime writes to the device, identical for every format of the same weights, and
//! generation from the packed, BF16 and GGUF forms gives the same tokens.

mod common;

use anyhow::Result;
use common::{fails, ok};
use host::device::Device;
use host::refdev::RefDevice;
use host::runtime::{DeviceShape, Runtime};
use model::import::fixtures::{grid_weights, write_gguf, write_hf, Float, GgufLinears, HfLinears};
use model::import::ternary::Tq;
use model::import::{Checkpoint, ScaleUse};
use model::Config;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TINY: &str = include_str!("../../configs/tiny.toml");

/// The BitNet 2B-4T layout at tiny size (rows of 256 for GGUF ternary blocks), as a TOML file.
fn config_file(dir: &Path) -> (PathBuf, Config) {
    let mut text = TINY.to_string();
    for (from, to) in [
        ("vocab = 258", "vocab = 260"),
        ("hidden = 64", "hidden = 256"),
        ("heads = 4\nkv_heads = 2", "heads = 4\nkv_heads = 1"),
        ("head_dim = 16", "head_dim = 64"),
        ("ffn = 160", "ffn = 512"),
        ("max_seq = 320", "max_seq = 64"),
        ("rope_theta = 10000.0", "rope_theta = 500000.0"),
        ("tied_embeddings = false", "tied_embeddings = true"),
    ] {
        assert!(text.contains(from), "{from}");
        text = text.replacen(from, to, 1);
    }
    let path = dir.join("bitnet-tiny.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = Config::load(path.to_str().unwrap()).unwrap();
    (path, cfg)
}

/// A device that records every write and otherwise is the reference device.
struct Recorder {
    inner: RefDevice,
    writes: Vec<Vec<u8>>,
}

impl Device for Recorder {
    fn name(&self) -> String {
        "recorder".into()
    }
    fn read_reg(&mut self, offset: u32) -> Result<u32> {
        self.inner.read_reg(offset)
    }
    fn write_reg(&mut self, offset: u32, value: u32) -> Result<()> {
        self.inner.write_reg(offset, value)
    }
    fn alloc(&mut self, bytes: u64) -> Result<u64> {
        self.inner.alloc(bytes)
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<()> {
        self.writes.push(data.to_vec());
        self.inner.write(addr, data)
    }
    fn read(&mut self, addr: u64, out: &mut [u8]) -> Result<()> {
        self.inner.read(addr, out)
    }
    fn wait(&mut self, timeout: Duration) -> Result<()> {
        self.inner.wait(timeout)
    }
}

struct Fixture {
    _root: tempfile::TempDir,
    cfg_path: PathBuf,
    cfg: Config,
    packed: PathBuf,
    bf16: PathBuf,
    tq1: PathBuf,
    tq2: PathBuf,
}

fn fixture() -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let (cfg_path, cfg) = config_file(root.path());
    let w = grid_weights(&cfg, 77);
    let packed = root.path().join("packed");
    write_hf(&packed, &cfg, &w, HfLinears::Packed(ScaleUse::Multiply), Float::BF16, 2).unwrap();
    let bf16 = root.path().join("bf16");
    write_hf(&bf16, &cfg, &w, HfLinears::Float(Float::BF16), Float::BF16, 1).unwrap();
    let gdir = root.path().join("gguf");
    std::fs::create_dir_all(&gdir).unwrap();
    let (tq1, tq2) = (gdir.join("m-tq1.gguf"), gdir.join("m-tq2.gguf"));
    write_gguf(&tq1, &cfg, &w, GgufLinears::Ternary(Tq::Tq1), Float::F16).unwrap();
    write_gguf(&tq2, &cfg, &w, GgufLinears::Ternary(Tq::Tq2), Float::F16).unwrap();
    for d in [&packed, &bf16, &gdir] {
        model::tokenizer::write_byte_tokenizer(&d.join("tokenizer.json"), &cfg).unwrap();
    }
    Fixture { _root: root, cfg_path, cfg, packed, bf16, tq1, tq2 }
}

#[test]
fn image_is_what_the_runtime_writes_and_the_same_for_every_format() {
    let f = fixture();
    let out = f._root.path().join("weights.bin");
    let r = host::import::import(&f.packed, &f.cfg, &out, &|_, _| {}).unwrap();
    assert!(r.checkpoint_bytes > 0 && r.image_bytes > r.checkpoint_bytes / 2);
    let (header, segs) = host::import::read_image(&out).unwrap();
    assert_eq!(header["config"], f.cfg.name.as_str());

    // What Runtime::new writes for the same model (loaded from the BF16 form).
    let q = Checkpoint::open(&f.bf16).unwrap().load_quant(&f.cfg).unwrap();
    let shape = DeviceShape::of(&f.cfg, &hdl::TlmmParams::from_config(&f.cfg));
    let dev =
        Recorder { inner: RefDevice::new(shape.tl, shape.buffer_beats, shape.bus_bytes, 1 << 30), writes: vec![] };
    let mut rt = Runtime::new(dev, &q, shape).unwrap();
    let writes = &rt.device().writes;
    assert_eq!(writes.len(), segs.len(), "the runtime writes {} blobs, the image has {}", writes.len(), segs.len());
    for (i, (w, (name, s))) in writes.iter().zip(&segs).enumerate() {
        assert!(w == s, "segment {i} ({name}): image differs from what the runtime writes");
    }
    let names: Vec<&str> = segs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..6], &["embed", "final_norm", "lm_head", "lm_head_scales", "rope", "layers.0.attn_norm"]);

    // Every other format: the same image bytes.
    for src in [&f.bf16, &f.tq1, &f.tq2] {
        let o = f._root.path().join("other.bin");
        host::import::import(src, &f.cfg, &o, &|_, _| {}).unwrap();
        let (_, s2) = host::import::read_image(&o).unwrap();
        assert!(s2 == segs, "{}: image differs from the packed form's", src.display());
    }
}

#[test]
fn cli_import_and_run_every_format() {
    let f = fixture();
    let cfg = f.cfg_path.to_str().unwrap();
    let out = f._root.path().join("w.bin");
    let js = ok(&[
        "import",
        "--model",
        f.packed.to_str().unwrap(),
        "--config",
        cfg,
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&js).unwrap();
    assert_eq!(v["format"], "safetensors (2 shards)");
    let segs = v["segments"].as_array().unwrap();
    let q0 = segs.iter().find(|s| s["name"] == "layers.0.q").unwrap();
    assert_eq!((q0["k"].as_u64(), q0["n"].as_u64()), (Some(256), Some(256)));
    let text = ok(&["import", "--model", f.tq2.to_str().unwrap(), "--config", cfg, "--out", out.to_str().unwrap()]);
    assert!(text.contains("GGUF v3") && text.contains("MB/s"), "{text}");

    let run = |model: &Path, with_config: bool| -> Vec<u64> {
        let m = model.to_str().unwrap();
        let mut args = vec!["run", "--model", m, "--prompt-ids", "256,72,105,33", "-n", "6", "--json"];
        if with_config {
            args.extend(["--config", cfg]);
        }
        let v: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
        v["output_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()
    };
    let base = run(&f.bf16, true);
    assert_eq!(base.len(), 6);
    assert_eq!(run(&f.packed, true), base, "packed");
    assert_eq!(run(&f.tq1, true), base, "TQ1_0");
    assert_eq!(run(&f.tq2, true), base, "TQ2_0");
    // Without --config: the model section comes from config.json / the GGUF metadata.
    assert_eq!(run(&f.tq2, false), base, "TQ2_0, derived config");
    assert_eq!(run(&f.packed, false), base, "packed, derived config");
}

#[test]
fn cli_import_errors() {
    let f = fixture();
    let out = f._root.path().join("w.bin");
    let o = out.to_str().unwrap();
    // A preset that disagrees with the checkpoint.
    let e = fails(&["import", "--model", f.packed.to_str().unwrap(), "--config", "bitnet2b-kv260", "--out", o]);
    assert!(
        e.contains("config.json")
            && e.contains("`vocab_size` is 260 but config bitnet2b-kv260 has model.vocab = 128256"),
        "{e}"
    );
    // Llama-2-style fp16 under an int2 (AccLLM) config: loads, then a clear limitation.
    let acc = f._root.path().join("acc.toml");
    let text = include_str!("../../configs/accllm-u280.toml")
        .replacen("vocab = 32000", "vocab = 260", 1)
        .replacen("hidden = 4096", "hidden = 256", 1)
        .replacen("layers = 32", "layers = 1", 1)
        .replacen("heads = 32\nkv_heads = 32", "heads = 4\nkv_heads = 4", 1)
        .replacen("head_dim = 128", "head_dim = 64", 1)
        .replacen("ffn = 11008", "ffn = 512", 1)
        .replacen("max_seq = 4096", "max_seq = 64", 1);
    std::fs::write(&acc, text).unwrap();
    let acc_cfg = Config::load(acc.to_str().unwrap()).unwrap();
    let llama = f._root.path().join("llama2");
    write_hf(&llama, &acc_cfg, &grid_weights(&acc_cfg, 1), HfLinears::Float(Float::F16), Float::F16, 1).unwrap();
    let e = fails(&["import", "--model", llama.to_str().unwrap(), "--config", acc.to_str().unwrap(), "--out", o]);
    assert!(e.contains("loads under config") && e.contains("Int2") && e.contains("AccLLM engine"), "{e}");
    // Not a checkpoint.
    let e = fails(&["import", "--model", o, "--config", f.cfg_path.to_str().unwrap(), "--out", o]);
    assert!(e.contains("not a checkpoint") || e.contains("cannot read"), "{e}");
    // run on a GGUF without a tokenizer.json beside it
    let lone = f._root.path().join("lone.gguf");
    std::fs::copy(&f.tq2, &lone).unwrap();
    let e = fails(&[
        "run",
        "--model",
        lone.to_str().unwrap(),
        "--config",
        f.cfg_path.to_str().unwrap(),
        "--prompt-ids",
        "1",
        "-n",
        "1",
    ]);
    assert!(e.contains("tokenizer.json"), "{e}");
}
