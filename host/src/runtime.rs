//! The runtime: lays the model out in device memory (the weight image), keeps the KV cache
//! there, and for every prefill chunk or decode step writes a program of descriptors and runs
//! it on any [`Device`]. No backend-specific logic lives here.

use crate::device::{Device, DeviceExt};
use anyhow::{bail, Context, Result};
use hdl::isa::{row_bytes, Act, KvLayout, Op, Prefetch, Setup, DESC_BYTES, NORM_GAINS};
use model::config::{FfnActivation, WeightFormat};
use model::numerics::NormWeight;
use model::pack::Tlmm;
use model::quant::{HeadRows, QLinear, QWeights};
use model::reference::{QuantModel, RefError};
use std::time::Duration;

/// How the device lays out weights: the TLMM engine shape, its weight buffer and the bus width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceShape {
    /// TLMM engine.
    pub tl: Tlmm,
    /// Weight buffer beats (chunking of the weight image).
    pub buffer_beats: usize,
    /// Memory bus bytes (weight beats are padded to it).
    pub bus_bytes: usize,
    /// Tokens per prefill chunk (the engine's MAX_TOKENS).
    pub chunk_tokens: usize,
}

impl DeviceShape {
    /// The shape of a generated design on its config's board.
    pub fn of(cfg: &model::Config, p: &hdl::TlmmParams) -> DeviceShape {
        DeviceShape {
            tl: p.tlmm(),
            buffer_beats: p.WBUF_DEPTH,
            bus_bytes: cfg.bus_bits() / 8,
            chunk_tokens: p.MAX_TOKENS,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Lin {
    addr: u64,
    k: u32,
    n: u32,
    scale: f32,
}

#[derive(Debug, Clone)]
struct LayerImage {
    attn_norm: u64,
    q: Lin,
    k: Lin,
    v: Lin,
    o: Lin,
    attn_sub: u64,
    ffn_norm: u64,
    gate: Lin,
    up: Lin,
    down: Lin,
    ffn_sub: u64,
    kv: u64,
}

#[derive(Debug, Clone)]
struct Buffers {
    ids: u64,
    h: u64,
    codes: u64,
    scales: u64,
    q: u64,
    k: u64,
    v: u64,
    attn: u64,
    gate: u64,
    up: u64,
    logits: u64,
    program: u64,
}

/// A model loaded on a device, with its KV cache.
pub struct Runtime<D: Device> {
    dev: D,
    setup: Setup,
    act: Act,
    shape: DeviceShape,
    vocab: usize,
    embed: u64,
    final_norm: u64,
    head: u64,
    head_scales: u64,
    rope: u64,
    layers: Vec<LayerImage>,
    buf: Buffers,
    pos: usize,
    history: Vec<Counters>,
    /// How long one program may run.
    pub timeout: Duration,
    /// Give every LINEAR the next one's weights to prefetch (on by default; off to measure
    /// what prefetching buys, results are the same).
    pub prefetch: bool,
}

/// The device's performance counters (hdl::regmap::COUNTER_NAMES) over one `prefill` or
/// `decode` call, summed over its programs.
pub type Counters = std::collections::BTreeMap<&'static str, u64>;

/// What [`Runtime::measure_chunk`] measured.
#[derive(Debug, Clone)]
pub struct ChunkMeasure {
    /// The decoder layers in one program (the chunk's program minus its EMBED).
    pub layers: Counters,
    /// EMBED alone.
    pub embed: Counters,
    /// LM_HEAD alone, when asked for.
    pub lm_head: Option<Counters>,
    /// Every op alone, in program order (when asked for).
    pub ops: Vec<(Op, Counters)>,
    /// Every op of the layers program with the cycles from its decode to the next
    /// descriptor's, inside the program (overlaps included), where the device traces
    /// descriptor times ([`Device::descriptor_times`]); empty otherwise.
    pub timeline: Vec<(Op, u64)>,
}

/// Per-op cycles of `program` from descriptor decode times (descriptors decoded, cycle): op
/// `i` lasts from the first time `i + 1` descriptors were seen decoded to the first time
/// `i + 2` were (the last op to the last observation). Ops the trace skipped over (shorter
/// than its poll interval) get the time to the next one seen.
pub fn op_timeline(program: &[Op], times: &[(u64, u64)]) -> Vec<(Op, u64)> {
    let Some(&(_, end)) = times.last() else { return Vec::new() };
    let first_seen = |n: u64| times.iter().find(|&&(m, _)| m >= n).map_or(end, |&(_, t)| t);
    program
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let (from, to) = (first_seen(i as u64 + 1), first_seen(i as u64 + 2));
            (*op, to.saturating_sub(from))
        })
        .collect()
}

/// A norm weight in its device layout (docs/isa.md): the i32 shift, then at [`NORM_GAINS`] the
/// i16 gains.
pub fn norm_bytes(w: &NormWeight) -> Vec<u8> {
    let mut b = w.shift.to_le_bytes().to_vec();
    b.resize(NORM_GAINS as usize, 0);
    b.extend(w.gain.iter().flat_map(|g| g.to_le_bytes()));
    b
}

/// The LM head's codes as the kernel reads them: rows of `cols` codes at `bits` each
/// ([`model::quant::pack_codes`]), padded like every row table.
pub fn head_image(head: &HeadRows, bits: u32) -> Vec<u8> {
    padded_rows(&model::quant::pack_codes(&head.codes, bits), head.cols * bits as usize / 8)
}

/// `rows` rows of `row` bytes each, every row padded to [`row_bytes`]: how the runtime lays out
/// the embedding, LM head and RoPE table (and `trit import` writes them).
pub fn padded_rows(data: &[u8], row: usize) -> Vec<u8> {
    let stride = row_bytes(row as u64) as usize;
    let mut out = Vec::with_capacity(data.len() / row.max(1) * stride);
    for r in data.chunks(row) {
        let start = out.len();
        out.extend_from_slice(r);
        out.resize(start + stride, 0);
    }
    out
}

impl<D: Device> Runtime<D> {
    /// Write the model's weight image into `dev` and allocate the KV cache and buffers.
    pub fn new(mut dev: D, model: &QuantModel, shape: DeviceShape) -> Result<Runtime<D>> {
        let cfg = &model.cfg;
        let m = &cfg.model;
        if cfg.quant.weights != WeightFormat::Ternary {
            bail!(
                "config {}: {:?} weights need the AccLLM engine, which this device does not have",
                cfg.name,
                cfg.quant.weights
            );
        }
        let setup = Setup {
            hidden: m.hidden as u32,
            ffn: m.ffn as u32,
            vocab: m.vocab as u32,
            max_seq: m.max_seq as u32,
            heads: m.heads as u16,
            kv_heads: m.kv_heads as u16,
            head_dim: m.head_dim as u16,
            kv_qmax: cfg.quant.kv.qmax() as u16,
            head_bits: cfg.quant.lm_head.bits() as u8,
            eps: model.eps,
            score_scale: model.score_scale,
            prefetch: None,
        };
        let mut put = |dev: &mut D, bytes: &[u8]| -> Result<u64> {
            let a = dev.alloc(bytes.len().max(1) as u64)?;
            dev.write(a, bytes)?;
            Ok(a)
        };
        let lin = |dev: &mut D, put: &mut dyn FnMut(&mut D, &[u8]) -> Result<u64>, l: &QLinear| -> Result<Lin> {
            let QWeights::Ternary { codes, scale } = &l.w else { bail!("only ternary linears are supported") };
            let img = shape.tl.pack_image(codes, l.rows, l.cols, shape.buffer_beats, shape.bus_bytes);
            Ok(Lin { addr: put(dev, &img)?, k: l.cols as u32, n: l.rows as u32, scale: *scale })
        };
        let embed_bytes: Vec<u8> = model.embed.iter().flat_map(|b| b.to_le_bytes()).collect();
        let embed = put(&mut dev, &padded_rows(&embed_bytes, 2 * m.hidden))?;
        let final_norm = put(&mut dev, &norm_bytes(&model.final_norm))?;
        let head = put(&mut dev, &head_image(&model.lm_head, cfg.quant.lm_head.bits()))?;
        let head_scales =
            put(&mut dev, &model.lm_head.scales.iter().flat_map(|s| s.to_le_bytes()).collect::<Vec<u8>>())?;
        let rope_bytes: Vec<u8> = model.rope.cos.iter().chain(&model.rope.sin).flat_map(|v| v.to_le_bytes()).collect();
        let rope = put(&mut dev, &padded_rows(&rope_bytes, m.head_dim))?; // head_dim/2 i16 per row
        let kv_bytes = KvLayout::new(&setup).bytes;
        let mut layers = Vec::new();
        for l in &model.layers {
            let opt = |dev: &mut D, put: &mut dyn FnMut(&mut D, &[u8]) -> Result<u64>, w: &Option<NormWeight>| {
                w.as_ref().map(|w| put(dev, &norm_bytes(w))).unwrap_or(Ok(0))
            };
            layers.push(LayerImage {
                attn_norm: put(&mut dev, &norm_bytes(&l.attn_norm))?,
                q: lin(&mut dev, &mut put, &l.q)?,
                k: lin(&mut dev, &mut put, &l.k)?,
                v: lin(&mut dev, &mut put, &l.v)?,
                o: lin(&mut dev, &mut put, &l.o)?,
                attn_sub: opt(&mut dev, &mut put, &l.attn_sub_norm)?,
                ffn_norm: put(&mut dev, &norm_bytes(&l.ffn_norm))?,
                gate: lin(&mut dev, &mut put, &l.gate)?,
                up: lin(&mut dev, &mut put, &l.up)?,
                down: lin(&mut dev, &mut put, &l.down)?,
                ffn_sub: opt(&mut dev, &mut put, &l.ffn_sub_norm)?,
                kv: dev.alloc(kv_bytes)?,
            });
        }
        let t = shape.chunk_tokens as u64;
        let (h, f, qd, kvd) = (m.hidden as u64, m.ffn as u64, m.hidden as u64, cfg.kv_dim() as u64);
        let ops_per_program = 4 + 11 * m.layers as u64;
        let rows = |n: u64, elem: u64| t * row_bytes(n * elem);
        let buf = Buffers {
            ids: dev.alloc(4 * t)?,
            h: dev.alloc(rows(h, 4))?,
            codes: dev.alloc(rows(h.max(f), 1))?,
            scales: dev.alloc(4 * t)?,
            q: dev.alloc(rows(qd, 4))?,
            k: dev.alloc(rows(kvd, 4))?,
            v: dev.alloc(rows(kvd, 4))?,
            attn: dev.alloc(rows(qd, 4))?,
            gate: dev.alloc(rows(f, 4))?,
            up: dev.alloc(rows(f, 4))?,
            logits: dev.alloc(4 * m.vocab as u64)?,
            program: dev.alloc(DESC_BYTES as u64 * ops_per_program)?,
        };
        let act = match m.ffn_activation {
            FfnActivation::Relu2 => Act::Relu2,
            FfnActivation::Silu => Act::Silu,
        };
        Ok(Runtime {
            dev,
            setup,
            act,
            shape,
            vocab: m.vocab,
            embed,
            final_norm,
            head,
            head_scales,
            rope,
            layers,
            buf,
            pos: 0,
            history: Vec::new(),
            timeout: Duration::from_secs(600),
            prefetch: true,
        })
    }

    /// The device.
    pub fn device(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Tokens in the KV cache.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Forget the context (the cache rows are overwritten by the next tokens) and the counters.
    pub fn reset(&mut self) {
        self.pos = 0;
        self.history.clear();
    }

    /// Counters of every `prefill` and `decode` call since the start (or `reset`), in order.
    /// All zero on a device without counters (the reference device counts only descriptors).
    pub fn history(&self) -> &[Counters] {
        &self.history
    }

    /// Process a prompt in chunks of the engine's token count; logits (Q.16) of the last token.
    pub fn prefill(&mut self, tokens: &[u32]) -> Result<Vec<i32>> {
        let max_seq = self.setup.max_seq as usize;
        if tokens.is_empty() {
            return Err(RefError::EmptyPrompt.into());
        }
        if self.pos + tokens.len() > max_seq {
            return Err(RefError::ContextOverflow { position: self.pos, requested: tokens.len(), max_seq }.into());
        }
        if let Some(&id) = tokens.iter().find(|&&t| t as usize >= self.vocab) {
            return Err(RefError::BadToken { id, vocab: self.vocab }.into());
        }
        let chunks: Vec<&[u32]> = tokens.chunks(self.shape.chunk_tokens).collect();
        let mut total = Counters::new();
        for (i, chunk) in chunks.iter().enumerate() {
            self.run_chunk(chunk, i + 1 == chunks.len())?;
            for (name, v) in self.dev.counters()? {
                *total.entry(name).or_insert(0) += v;
            }
        }
        self.history.push(total);
        self.dev.read_i32s(self.buf.logits, self.vocab)
    }

    /// Process one token; its logits.
    pub fn decode(&mut self, token: u32) -> Result<Vec<i32>> {
        self.prefill(&[token])
    }

    fn run_chunk(&mut self, tokens: &[u32], logits: bool) -> Result<()> {
        let program = self.program(tokens.len() as u16, self.pos as u32, logits);
        let ids: Vec<i32> = tokens.iter().map(|&t| t as i32).collect();
        self.dev.write_i32s(self.buf.ids, &ids)?;
        self.run_program(&program)?;
        self.pos += tokens.len();
        Ok(())
    }

    fn run_program(&mut self, program: &[Op]) -> Result<()> {
        let bytes: Vec<u8> = program.iter().flat_map(|op| op.encode()).collect();
        self.dev.write(self.buf.program, &bytes)?;
        self.dev.start(self.buf.program)?;
        self.dev.wait(self.timeout).with_context(|| format!("{} at position {}", self.dev.name(), self.pos))
    }

    /// Measure `tokens` (at most one chunk) at the current position, for `trit sim`, and move
    /// on: the chunk's program without the LM head as one program (`layers`: its counters
    /// minus those of its EMBED alone, so what the decoder layers cost, overlaps included); with
    /// `breakdown`, also every op alone (SETUP, op, END), each minus an empty program; with
    /// `lm_head`, the LM head alone. Every program writes what the whole program writes (the
    /// residual stream starts again at EMBED, ROPE_KV rewrites the same cache entries), so
    /// device memory ends as after one run.
    pub fn measure_chunk(&mut self, tokens: &[u32], breakdown: bool, lm_head: bool) -> Result<ChunkMeasure> {
        let max_seq = self.setup.max_seq as usize;
        if tokens.is_empty() || tokens.len() > self.shape.chunk_tokens {
            bail!("measure_chunk takes 1..={} tokens, not {}", self.shape.chunk_tokens, tokens.len());
        }
        if self.pos + tokens.len() > max_seq {
            return Err(RefError::ContextOverflow { position: self.pos, requested: tokens.len(), max_seq }.into());
        }
        let ids: Vec<i32> = tokens.iter().map(|&t| t as i32).collect();
        self.dev.write_i32s(self.buf.ids, &ids)?;
        let setup = Op::Setup(self.setup);
        self.run_program(&[setup, Op::End])?;
        let base: Counters = self.dev.counters()?.into_iter().collect();
        let alone = |rt: &mut Self, mut op: Op| -> Result<Counters> {
            if let Op::Linear { prefetch, .. } = &mut op {
                *prefetch = None; // the op's own cost, not the next one's loads
            }
            rt.run_program(&[setup, op, Op::End])?;
            Ok(rt.dev.counters()?.into_iter().map(|(k, v)| (k, v.saturating_sub(base[k]))).collect())
        };
        let program = self.program(tokens.len() as u16, self.pos as u32, lm_head);
        let mut ops = Vec::new();
        let mut embed = Counters::new();
        let mut head = None;
        for op in program.iter().filter(|op| !matches!(op, Op::Setup(_) | Op::End)) {
            match op {
                Op::Embed { .. } => embed = alone(self, *op)?,
                Op::LmHead { .. } => head = Some(alone(self, *op)?),
                _ if breakdown => ops.push((*op, alone(self, *op)?)),
                _ => {}
            }
        }
        if breakdown {
            ops.insert(0, (program[1], embed.clone()));
            if let Some(h) = &head {
                ops.push((program[program.len() - 2], h.clone()));
            }
        }
        let program = self.program(tokens.len() as u16, self.pos as u32, false);
        self.run_program(&program)?;
        let timeline = op_timeline(&program, &self.dev.descriptor_times());
        let layers = self.dev.counters()?.into_iter().map(|(k, v)| (k, v.saturating_sub(embed[k]))).collect();
        self.pos += tokens.len();
        Ok(ChunkMeasure { layers, embed, lm_head: head, ops, timeline })
    }

    /// Device-memory bytes of one decoder layer's weights: the seven TLMM weight images and the
    /// norm weights (the bytes a decode step must read for the layer, besides the KV cache).
    pub fn layer_weight_bytes(&self) -> u64 {
        let (tl, bus) = (self.shape.tl, self.shape.bus_bytes);
        let Some(l) = self.layers.first() else { return 0 };
        let image = |x: &Lin| (tl.steps(x.k as usize) * tl.blocks(x.n as usize) * tl.beat_stride(bus)) as u64;
        let linears: u64 = [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down].iter().map(|x| image(x)).sum();
        let norm = |n: u64| NORM_GAINS + row_bytes(2 * n);
        let (h, f) = (self.setup.hidden as u64, self.setup.ffn as u64);
        let subs = if l.attn_sub != 0 { norm(h) + norm(f) } else { 0 };
        linears + 2 * norm(h) + subs
    }

    /// The KV layout of every layer (the bytes attention reads grow with the position).
    pub fn kv_layout(&self) -> KvLayout {
        KvLayout::new(&self.setup)
    }

    /// The model-wide sizes the programs carry.
    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    /// The device shape the weight image was laid out for.
    pub fn shape(&self) -> DeviceShape {
        self.shape
    }

    /// The program for `t` tokens at positions `pos0..`.
    fn program(&self, t: u16, pos0: u32, logits: bool) -> Vec<Op> {
        let b = &self.buf;
        let s = &self.setup;
        let mut p = vec![Op::Setup(*s), Op::Embed { tokens: t, ids: b.ids, table: self.embed, dst: b.h }];
        let linear = |l: &Lin, dst: u64, accumulate: bool| Op::Linear {
            tokens: t,
            k: l.k,
            n: l.n,
            w_scale: l.scale,
            codes: b.codes,
            scales: b.scales,
            weights: l.addr,
            dst,
            accumulate,
            prefetch: None,
        };
        let quant =
            |src: u64, n: u32, norm: u64| Op::NormQuant { tokens: t, n, src, norm, codes: b.codes, scales: b.scales };
        for l in &self.layers {
            p.push(quant(b.h, s.hidden, l.attn_norm));
            p.extend([linear(&l.q, b.q, false), linear(&l.k, b.k, false), linear(&l.v, b.v, false)]);
            p.push(Op::RopeKv { tokens: t, pos0, q: b.q, k: b.k, v: b.v, rope: self.rope, kv: l.kv });
            p.push(Op::Attention { tokens: t, pos0, q: b.q, kv: l.kv, dst: b.attn });
            p.push(quant(b.attn, s.hidden, l.attn_sub));
            p.push(linear(&l.o, b.h, true));
            p.push(quant(b.h, s.hidden, l.ffn_norm));
            p.extend([linear(&l.gate, b.gate, false), linear(&l.up, b.up, false)]);
            p.push(Op::FfnAct {
                tokens: t,
                act: self.act,
                gate: b.gate,
                up: b.up,
                norm: l.ffn_sub,
                codes: b.codes,
                scales: b.scales,
            });
            p.push(linear(&l.down, b.h, true));
        }
        // Each LINEAR names the next one's weights, so the engine loads them while it finishes
        // and while the ops in between run; SETUP names the first one's, loaded while EMBED and
        // the first NORM_QUANT run. Not across the LM head, which needs every port.
        let mut next = None;
        for op in p.iter_mut().rev() {
            match op {
                Op::Linear { weights, k, n, prefetch, .. } => {
                    *prefetch = if self.prefetch { next } else { None };
                    next = Some(Prefetch { weights: *weights, k: *k, n: *n });
                }
                Op::Setup(s) => s.prefetch = if self.prefetch { next } else { None },
                _ => {}
            }
        }
        if logits {
            p.push(Op::LmHead {
                tokens: t,
                src: b.h,
                norm: self.final_norm,
                head: self.head,
                head_scales: self.head_scales,
                dst: b.logits,
            });
        }
        p.push(Op::End);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each op lasts from its decode to the next one's; an op the trace skipped (shorter than a
    /// poll) gets no cycles of its own, and the last op runs to the last observation.
    #[test]
    fn op_timeline_spans_decodes() {
        let program = [Op::End; 4];
        // Descriptor 1 decoded by cycle 10, 2 by 50, 3 and 4 both first seen at 90, done at 130.
        let times = [(0, 0), (1, 10), (2, 50), (4, 90), (4, 130)];
        let cycles: Vec<u64> = op_timeline(&program, &times).into_iter().map(|(_, c)| c).collect();
        assert_eq!(cycles, [40, 40, 0, 40]);
        assert!(op_timeline(&program, &[]).is_empty());
    }
}
