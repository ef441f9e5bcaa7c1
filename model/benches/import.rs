//! Import speed on a checkpoint of microsoft/bitnet-b1.58-2B-4T's size and layout (the
//! `bitnet2b-kv260` config: 30 layers, hidden 2560, FFN 6912, vocab 128256, tied embedding),
//! random weights written to a temporary directory first (not timed):
//!
//! - `packed`: the released form, uint8 linears `[out/4, in]` + BF16 `weight_scale`, BF16 norms
//!   and embedding (~1.2 GB of tensors);
//! - `bf16` (only with `TRIT_BENCH_FORMS=packed,bf16`; ~4.8 GB on disk): BF16 master weights,
//!   absmean-quantized on import.
//!
//! Timed: open (mmap) + every linear into its TLMM weight image (packed tensors straight from
//! their bytes, float tensors absmean-quantized first; layers on every core), the embedding to
//! fp16 and the LM head to int8 rows, all in memory: reported as checkpoint MB (10^6 bytes) per
//! second.
//! Then, timed separately, writing that image to a file (end-to-end figure).
//! The checkpoint was just written, so it is read from the page cache: this measures the import,
//! not the disk. `cargo bench -p trit-model --bench import` (prints, asserts nothing).

use model::import::Checkpoint;
use model::pack::Tlmm;
use model::Config;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// (name, dtype, shape) of every tensor, in file order.
fn tensor_list(cfg: &Config, packed: bool) -> Vec<(String, &'static str, Vec<usize>)> {
    let m = &cfg.model;
    let (h, f, q, kv) = (m.hidden, m.ffn, m.heads * m.head_dim, cfg.kv_dim());
    let mut t = vec![("model.embed_tokens.weight".to_string(), "BF16", vec![m.vocab, h])];
    t.push(("model.norm.weight".into(), "BF16", vec![h]));
    for i in 0..m.layers {
        let p = format!("model.layers.{i}");
        t.push((format!("{p}.input_layernorm.weight"), "BF16", vec![h]));
        t.push((format!("{p}.post_attention_layernorm.weight"), "BF16", vec![h]));
        t.push((format!("{p}.self_attn.attn_sub_norm.weight"), "BF16", vec![q]));
        t.push((format!("{p}.mlp.ffn_sub_norm.weight"), "BF16", vec![f]));
        for (n, r, c) in [
            ("self_attn.q_proj", q, h),
            ("self_attn.k_proj", kv, h),
            ("self_attn.v_proj", kv, h),
            ("self_attn.o_proj", h, q),
            ("mlp.gate_proj", f, h),
            ("mlp.up_proj", f, h),
            ("mlp.down_proj", h, f),
        ] {
            if packed {
                t.push((format!("{p}.{n}.weight"), "U8", vec![r / 4, c]));
                t.push((format!("{p}.{n}.weight_scale"), "BF16", vec![1]));
            } else {
                t.push((format!("{p}.{n}.weight"), "BF16", vec![r, c]));
            }
        }
    }
    t
}

/// Stream a safetensors file of random tensors (header first, then data generated per tensor).
fn write_checkpoint(dir: &Path, cfg: &Config, packed: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&model::tiny::hf_config_json(cfg)).unwrap();
    if packed {
        config["quantization_config"] = serde_json::json!({"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "offline"});
    }
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let list = tensor_list(cfg, packed);
    let size = |d: &str| if d == "U8" { 1 } else { 2 };
    let mut header = serde_json::Map::new();
    let mut off = 0usize;
    for (n, d, s) in &list {
        let bytes = s.iter().product::<usize>() * size(d);
        header.insert(n.clone(), serde_json::json!({"dtype": d, "shape": s, "data_offsets": [off, off + bytes]}));
        off += bytes;
    }
    let mut json = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    let f = std::fs::File::create(dir.join("model.safetensors")).unwrap();
    let mut w = std::io::BufWriter::with_capacity(8 << 20, f);
    w.write_all(&(json.len() as u64).to_le_bytes()).unwrap();
    w.write_all(&json).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2025);
    let mut buf = Vec::new();
    for (n, d, s) in &list {
        let count: usize = s.iter().product();
        buf.clear();
        if *d == "U8" {
            // four codes in {0, 1, 2} per byte
            buf.extend((0..count).map(|_| {
                let r: u32 = rng.random();
                (0..4).fold(0u8, |a, i| a | ((((r >> (8 * i)) & 0xff) % 3) as u8) << (2 * i))
            }));
        } else if n.ends_with("weight_scale") {
            buf.extend(half::bf16::from_f32(1.5).to_le_bytes());
        } else if n.contains("norm") {
            buf.extend((0..count).flat_map(|_| half::bf16::from_f32(rng.random_range(0.5..1.5)).to_le_bytes()));
        } else {
            let sd = if n.contains("embed") { 1.0 } else { 0.02 };
            buf.extend((0..count).flat_map(|_| half::bf16::from_f32(rng.random_range(-sd..sd)).to_le_bytes()));
        }
        w.write_all(&buf).unwrap();
    }
    w.flush().unwrap();
}

fn run(label: &str, dir: &Path, cfg: &Config, out: &Path) {
    let t0 = Instant::now();
    let ck = Checkpoint::open(dir).unwrap();
    ck.check(cfg).unwrap();
    let bytes = ck.data_bytes();
    let tl = Tlmm::from_config(cfg);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shapes = Checkpoint::linear_shapes(cfg);
    // Embedding and LM head on one thread while the layers are packed on every core, a group of
    // layers at a time; the whole image stays in memory (timed separately: writing it).
    let (embed, head, images) = std::thread::scope(|s| {
        let side = s.spawn(|| {
            let t = Instant::now();
            let e = ck.embed_f16(cfg).unwrap();
            let te = t.elapsed().as_secs_f64();
            let h = ck.lm_head_rows(cfg).unwrap();
            println!(
                "import/{label}: (embedding to fp16 {te:.2} s, LM head quantized {:.2} s, on their own thread)",
                t.elapsed().as_secs_f64() - te
            );
            (e, h)
        });
        let mut images: Vec<Vec<u8>> = Vec::new();
        let layers: Vec<usize> = (0..cfg.model.layers).collect();
        for group in layers.chunks(threads) {
            let imgs: Vec<Vec<Vec<u8>>> = std::thread::scope(|s2| {
                let hs: Vec<_> = group
                    .iter()
                    .map(|&i| {
                        let (ck, tl) = (&ck, &tl);
                        s2.spawn(move || {
                            shapes
                                .iter()
                                .map(|(n, r, c)| {
                                    ck.linear_image(&format!("model.layers.{i}.{n}.weight"), *r, *c, cfg, tl).unwrap().0
                                })
                                .collect()
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            images.extend(imgs.into_iter().flatten());
        }
        println!("import/{label}: (linears packed at {:.2} s)", t0.elapsed().as_secs_f64());
        let (e, h) = side.join().unwrap();
        (e, h, images)
    });
    let t_pack = t0.elapsed().as_secs_f64();
    let image_bytes: usize = images.iter().map(|i| i.len()).sum();
    let mut w = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(out).unwrap());
    for img in &images {
        w.write_all(img).unwrap();
    }
    for chunk in embed.chunks(1 << 16) {
        w.write_all(&chunk.iter().flat_map(|b| b.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    }
    w.write_all(&model::quant::pack_codes(&head.codes, cfg.quant.lm_head.bits())).unwrap();
    w.flush().unwrap();
    let total = t0.elapsed().as_secs_f64();
    let mb = bytes as f64 / 1e6;
    println!(
        "import/{label}: {mb:.0} MB of tensors packed into the device image in memory in {t_pack:.2} s = {:.0} MB/s ({:.0} MB of linear images, embedding, int8 LM head; {threads} threads)",
        mb / t_pack,
        image_bytes as f64 / 1e6
    );
    println!(
        "import/{label}: with the image written to a file: {total:.2} s = {:.0} MB/s end to end (this machine writes about 0.7 GB/s to the page cache)",
        mb / total
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it too: keep that quick.
    if std::env::args().any(|a| a == "--test" || a == "--list") || !std::env::args().any(|a| a == "--bench") {
        println!("import bench: run with `cargo bench -p trit-model --bench import`");
        return;
    }
    let cfg = Config::preset(&std::env::var("TRIT_BENCH_CONFIG").unwrap_or("bitnet2b-kv260".into())).unwrap();
    let forms = std::env::var("TRIT_BENCH_FORMS").unwrap_or("packed".into());
    let root = tempfile::tempdir().unwrap();
    for form in forms.split(',') {
        let packed = match form {
            "packed" => true,
            "bf16" => false,
            other => panic!("TRIT_BENCH_FORMS: unknown form {other} (packed, bf16)"),
        };
        let dir = root.path().join(form);
        let t = Instant::now();
        write_checkpoint(&dir, &cfg, packed);
        println!("import/{form}: wrote a {} checkpoint in {:.1} s (not timed)", cfg.name, t.elapsed().as_secs_f64());
        run(form, &dir, &cfg, &root.path().join("image.bin"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
