//! `trit import`: a checkpoint in any supported format (`model::import`) to the device weight
//! image, written as one file (`weights.bin`) a loader can copy to device memory as is.
//!
//! The image holds exactly the blobs [`crate::runtime::Runtime::new`] writes to the device, in
//! the same order and bytes (a test checks this against a recording device): the fp16
//! embedding, final norm, int8 LM head and its row scales, RoPE table, then per layer the norms
//! and the seven linears as TLMM weight images (chunked for the weight buffer, beats padded to
//! the bus, as the manifest's `weight_schedule` describes).
//!
//! File layout (little-endian): `TRITWIMG`, u32 version (1), u32 header length, the header as
//! JSON (config, device shape, and per segment its name, file offset and bytes; linears add
//! `k`, `n` and their f32 `scale`), then each segment at a multiple of [`ALIGN`] bytes.

use crate::runtime::{head_image, norm_bytes, padded_rows, DeviceShape};
use anyhow::{bail, Context, Result};
use model::config::{Config, WeightFormat};
use model::import::Checkpoint;
use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// File magic.
pub const MAGIC: &[u8; 8] = b"TRITWIMG";
/// Segments start at multiples of this (the device allocator's alignment).
pub const ALIGN: usize = 4096;

/// One blob of the image.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Segment {
    /// `embed`, `layers.3.q`, ...
    pub name: String,
    /// Byte offset in the file.
    pub offset: u64,
    /// Length in bytes.
    pub bytes: u64,
    /// Linears: inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<u32>,
    /// Linears: outputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Linears: the per-tensor weight scale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<f32>,
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The checkpoint read.
    pub source: String,
    /// Its storage format.
    pub format: String,
    /// The config it was imported under.
    pub config: String,
    /// Tensor bytes in the checkpoint.
    pub checkpoint_bytes: u64,
    /// Bytes of the image file.
    pub image_bytes: u64,
    /// Seconds for loading + packing + writing.
    pub seconds: f64,
    /// Checkpoint MB (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// The segments.
    pub segments: Vec<Segment>,
}

/// A linear's `(k, n, scale)`.
type LinMeta = Option<(u32, u32, f32)>;

/// A blob of the image: name, bytes, and for linears `(k, n, scale)`.
type Blob = (String, Vec<u8>, LinMeta);

/// A read-back image: header JSON and (segment name, bytes).
pub type Image = (serde_json::Value, Vec<(String, Vec<u8>)>);

/// The blobs of the image in the runtime's write order, straight from the checkpoint: packed
/// BitNet linears go from their bytes to TLMM images without a code array, layers are packed on
/// every core. `progress` gets checkpoint bytes as tensors are done.
fn checkpoint_blobs(
    ck: &Checkpoint,
    cfg: &Config,
    shape: &DeviceShape,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Blob>> {
    let m = &cfg.model;
    let bytes_of = |name: &str| ck.tensor(name).map(|t| t.data.len() as u64).unwrap_or(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let layer = |i: usize| -> Result<Vec<Blob>> {
        let p = format!("model.layers.{i}");
        let norm = |n: &str, len: usize| -> Result<Vec<u8>> {
            let name = format!("{p}.{n}.weight");
            let w = ck.norm(&name, len)?;
            progress(bytes_of(&name));
            Ok(norm_bytes(&w))
        };
        let lin = |suffix: &str, rows: usize, cols: usize| -> Result<(Vec<u8>, LinMeta)> {
            let name = format!("{p}.{suffix}.weight");
            let (img, scale) = ck.linear_image(&name, rows, cols, cfg, &shape.tl)?;
            progress(bytes_of(&name));
            Ok((img, Some((cols as u32, rows as u32, scale))))
        };
        let shapes = Checkpoint::linear_shapes(cfg);
        let mut out: Vec<Blob> = vec![(format!("layers.{i}.attn_norm"), norm("input_layernorm", m.hidden)?, None)];
        for (suffix, rows, cols) in &shapes[..4] {
            let (b, meta) = lin(suffix, *rows, *cols)?;
            out.push((format!("layers.{i}.{}", short(suffix)), b, meta));
        }
        if m.sub_norms {
            out.push((
                format!("layers.{i}.attn_sub_norm"),
                norm("self_attn.attn_sub_norm", m.heads * m.head_dim)?,
                None,
            ));
        }
        out.push((format!("layers.{i}.ffn_norm"), norm("post_attention_layernorm", m.hidden)?, None));
        for (suffix, rows, cols) in &shapes[4..] {
            let (b, meta) = lin(suffix, *rows, *cols)?;
            out.push((format!("layers.{i}.{}", short(suffix)), b, meta));
        }
        if m.sub_norms {
            out.push((format!("layers.{i}.ffn_sub_norm"), norm("mlp.ffn_sub_norm", m.ffn)?, None));
        }
        Ok(out)
    };
    std::thread::scope(|s| -> Result<Vec<Blob>> {
        // the embedding and LM head on their own thread while the layers are packed
        let head = s.spawn(|| -> Result<Vec<Blob>> {
            let embed: Vec<u8> = ck.embed_f16(cfg)?.iter().flat_map(|b| b.to_le_bytes()).collect();
            let final_norm = norm_bytes(&ck.norm("model.norm.weight", m.hidden)?);
            let lm = ck.lm_head_rows(cfg)?;
            progress(
                bytes_of("model.embed_tokens.weight") + bytes_of("model.norm.weight") + bytes_of("lm_head.weight"),
            );
            let rope = model::numerics::RopeTable::new(m.head_dim, m.max_seq, m.rope_theta);
            let rope: Vec<u8> = rope.cos.iter().chain(&rope.sin).flat_map(|v| v.to_le_bytes()).collect();
            Ok(vec![
                ("embed".into(), padded_rows(&embed, 2 * m.hidden), None),
                ("final_norm".into(), final_norm, None),
                ("lm_head".into(), head_image(&lm, cfg.quant.lm_head.bits()), None),
                ("lm_head_scales".into(), lm.scales.iter().flat_map(|s| s.to_le_bytes()).collect(), None),
                ("rope".into(), padded_rows(&rope, m.head_dim), None),
            ])
        });
        let mut layers: Vec<Blob> = Vec::new();
        let ids: Vec<usize> = (0..m.layers).collect();
        for group in ids.chunks(threads) {
            let done: Vec<Result<Vec<Blob>>> = std::thread::scope(|s2| {
                let hs: Vec<_> = group.iter().map(|&i| s2.spawn(move || layer(i))).collect();
                hs.into_iter().map(|h| h.join().expect("layer packer panicked")).collect()
            });
            for d in done {
                layers.extend(d?);
            }
        }
        let mut out = head.join().expect("embedding loader panicked")?;
        out.extend(layers);
        Ok(out)
    })
}

fn short(suffix: &str) -> &str {
    match suffix {
        "self_attn.q_proj" => "q",
        "self_attn.k_proj" => "k",
        "self_attn.v_proj" => "v",
        "self_attn.o_proj" => "o",
        "mlp.gate_proj" => "gate",
        "mlp.up_proj" => "up",
        _ => "down",
    }
}

/// Import `model` under `cfg` into the image file `out`; `progress(done, total)` gets checkpoint
/// bytes.
pub fn import(model: &Path, cfg: &Config, out: &Path, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<Report> {
    let t0 = std::time::Instant::now();
    let ck = Checkpoint::open(model).with_context(|| format!("opening checkpoint {}", model.display()))?;
    let total = ck.data_bytes();
    let done = std::sync::atomic::AtomicU64::new(0);
    let step = |n: u64| {
        let d = done.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
        progress(d.min(total), total);
    };
    let ctx = || format!("loading checkpoint {}", model.display());
    ck.check(cfg).with_context(ctx)?;
    if cfg.quant.weights != WeightFormat::Ternary {
        // load it all the same: every tensor checked, linears quantized as the reference would
        ck.load_quant_with(cfg, &step).with_context(ctx)?;
        bail!(
            "the checkpoint loads under config {} ({:?} weights, quantized on import), but the device weight image for {:?} weights comes with the AccLLM engine, which is not built yet; only ternary configs have an image today (the reference runs the model: trit accuracy --model {} --config ...)",
            cfg.name,
            cfg.quant.weights,
            cfg.quant.weights,
            model.display()
        );
    }
    let shape = DeviceShape::of(cfg, &hdl::TlmmParams::from_config(cfg));
    let blobs = checkpoint_blobs(&ck, cfg, &shape, &step).with_context(ctx)?;
    // Header: segment offsets depend on the header length, so size it with placeholder offsets
    // first (offsets are fixed-width enough after one pass: lay out twice).
    let mut segments: Vec<Segment> = Vec::new();
    let layout = |base: usize, segments: &mut Vec<Segment>| {
        segments.clear();
        let mut at = base;
        for (name, b, meta) in &blobs {
            segments.push(Segment {
                name: name.clone(),
                offset: at as u64,
                bytes: b.len() as u64,
                k: meta.map(|m| m.0),
                n: meta.map(|m| m.1),
                scale: meta.map(|m| m.2),
            });
            at = (at + b.len()).div_ceil(ALIGN) * ALIGN;
        }
    };
    let header_json = |segments: &Vec<Segment>| {
        serde_json::to_vec(&serde_json::json!({
            "generator": hdl::GENERATOR,
            "config": cfg.name,
            "source": model.display().to_string(),
            "format": ck.format(),
            "shape": {
                "tlmm_group": shape.tl.g,
                "tables_per_step": shape.tl.tables,
                "columns_per_cycle": shape.tl.cols,
                "acc_bits": shape.tl.acc_bits,
                "weight_buffer_beats": shape.buffer_beats,
                "bus_bytes": shape.bus_bytes,
            },
            "segments": segments,
        }))
        .expect("json")
    };
    let mut base = ALIGN;
    loop {
        layout(base, &mut segments);
        let h = header_json(&segments);
        let need = (16 + h.len()).div_ceil(ALIGN) * ALIGN;
        if need <= base {
            break;
        }
        base = need;
    }
    let header = header_json(&segments);
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut written = 0usize;
    fn put(w: &mut impl Write, b: &[u8], written: &mut usize) -> std::io::Result<()> {
        *written += b.len();
        w.write_all(b)
    }
    let io = || format!("writing {}", out.display());
    put(&mut w, MAGIC, &mut written).with_context(io)?;
    put(&mut w, &1u32.to_le_bytes(), &mut written).with_context(io)?;
    put(&mut w, &(header.len() as u32).to_le_bytes(), &mut written).with_context(io)?;
    put(&mut w, &header, &mut written).with_context(io)?;
    for (s, (_, b, _)) in segments.iter().zip(&blobs) {
        let pad = vec![0u8; s.offset as usize - written];
        put(&mut w, &pad, &mut written).with_context(io)?;
        put(&mut w, b, &mut written).with_context(io)?;
    }
    w.flush().with_context(io)?;
    let seconds = t0.elapsed().as_secs_f64();
    Ok(Report {
        source: model.display().to_string(),
        format: ck.format(),
        config: cfg.name.clone(),
        checkpoint_bytes: total,
        image_bytes: written as u64,
        seconds,
        mb_per_s: total as f64 / 1e6 / seconds.max(1e-9),
        segments,
    })
}

/// Read an image file back: its header (JSON) and the bytes of every segment by name.
pub fn read_image(path: &Path) -> Result<Image> {
    let b = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if b.len() < 16 || &b[..8] != MAGIC {
        bail!("{}: not a trit weight image (no TRITWIMG magic)", path.display());
    }
    let n = u32::from_le_bytes(b[12..16].try_into().expect("4")) as usize;
    let h: serde_json::Value = serde_json::from_slice(b.get(16..16 + n).context("truncated header")?)?;
    let mut segs = Vec::new();
    for s in h["segments"].as_array().context("no segments")? {
        let (o, l) = (s["offset"].as_u64().context("offset")? as usize, s["bytes"].as_u64().context("bytes")? as usize);
        let data = b.get(o..o + l).with_context(|| format!("{}: segment past the end", path.display()))?;
        segs.push((s["name"].as_str().unwrap_or_default().to_string(), data.to_vec()));
    }
    Ok((h, segs))
}
