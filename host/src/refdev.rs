//! `RefDevice`: the bit-exact reference behind the [`Device`] trait. It has device memory and the
//! same register map as the kernel, and on `ap_start` it decodes the program from its memory and
//! executes every descriptor with `model::ops` — so the runtime, the weight image and the
//! command stream are tested against the reference before (and independently of) the RTL.

use crate::device::Device;
use anyhow::{bail, Context, Result};
use hdl::isa::{row_bytes, Act, KvLayout, Op, Setup, DESC_BYTES, NORM_GAINS};
use hdl::regmap;
use model::config::FfnActivation;
use model::numerics::{f16_to_fx, quantize, Exp2Tables, NormWeight, RopeTable};
use model::ops::{attention, ffn_activation, kv_entries, linear, lm_head, AttnDims, KvView, ACT_QMAX, FX_EX};
use model::pack::Tlmm;
use model::quant::{unpack_codes, HeadRows, QLinear, QWeights};
use std::time::Duration;

/// Where device memory starts (non-zero, so a null address is never valid).
pub const MEM_BASE: u64 = 0x1000_0000;

/// The reference device.
pub struct RefDevice {
    tl: Tlmm,
    buffer_beats: usize,
    bus_bytes: usize,
    mem: Vec<u8>,
    limit: u64,
    program: u64,
    done: bool,
    descriptors: u64,
    exp2: Exp2Tables,
}

impl RefDevice {
    /// A device with the engine shape `tl`, a weight buffer of `buffer_beats` beats, a memory
    /// bus of `bus_bytes` and `mem_bytes` of device memory.
    pub fn new(tl: Tlmm, buffer_beats: usize, bus_bytes: usize, mem_bytes: u64) -> RefDevice {
        RefDevice {
            tl,
            buffer_beats,
            bus_bytes,
            mem: Vec::new(),
            limit: mem_bytes,
            program: 0,
            done: false,
            descriptors: 0,
            exp2: Exp2Tables::new(),
        }
    }

    fn range(&self, addr: u64, len: usize) -> Result<std::ops::Range<usize>> {
        let end = addr.checked_add(len as u64).unwrap_or(u64::MAX);
        if addr < MEM_BASE || end > MEM_BASE + self.mem.len() as u64 {
            bail!("device address range {addr:#x}+{len} is outside allocated memory");
        }
        let s = (addr - MEM_BASE) as usize;
        Ok(s..s + len)
    }

    fn bytes(&self, addr: u64, len: usize) -> Result<&[u8]> {
        Ok(&self.mem[self.range(addr, len)?])
    }

    fn i32s(&self, addr: u64, n: usize) -> Result<Vec<i32>> {
        Ok(self.bytes(addr, 4 * n)?.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    fn f32s(&self, addr: u64, n: usize) -> Result<Vec<f32>> {
        Ok(self.i32s(addr, n)?.into_iter().map(|x| f32::from_bits(x as u32)).collect())
    }

    fn i8s(&self, addr: u64, n: usize) -> Result<Vec<i8>> {
        Ok(self.bytes(addr, n)?.iter().map(|&b| b as i8).collect())
    }

    fn i16s(&self, addr: u64, n: usize) -> Result<Vec<i16>> {
        Ok(self.bytes(addr, 2 * n)?.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect())
    }

    fn put(&mut self, addr: u64, data: &[u8]) -> Result<()> {
        let r = self.range(addr, data.len())?;
        self.mem[r].copy_from_slice(data);
        Ok(())
    }

    fn put_i32s(&mut self, addr: u64, v: &[i32]) -> Result<()> {
        self.put(addr, &v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())
    }

    fn put_f32s(&mut self, addr: u64, v: &[f32]) -> Result<()> {
        self.put(addr, &v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())
    }

    fn put_i8s(&mut self, addr: u64, v: &[i8]) -> Result<()> {
        self.put(addr, &v.iter().map(|&x| x as u8).collect::<Vec<u8>>())
    }

    fn norm(&self, addr: u64, n: usize) -> Result<Option<NormWeight>> {
        if addr == 0 {
            return Ok(None);
        }
        let shift = self.i32s(addr, 1)?[0];
        Ok(Some(NormWeight { gain: self.i16s(addr + NORM_GAINS, n)?, shift }))
    }

    fn run(&mut self) -> Result<()> {
        let mut setup: Option<Setup> = None;
        let mut at = self.program;
        loop {
            let raw = self.bytes(at, DESC_BYTES)?.to_vec();
            let op = Op::decode(&raw, 0).with_context(|| format!("program at {:#x}", self.program))?;
            self.descriptors += 1;
            at += DESC_BYTES as u64;
            if let Op::Setup(s) = op {
                setup = Some(s);
                continue;
            }
            if op == Op::End {
                return Ok(());
            }
            let s = setup.context("the program uses an op before Setup")?;
            self.execute(&s, op).with_context(|| format!("executing {op:?}"))?;
        }
    }

    fn execute(&mut self, s: &Setup, op: Op) -> Result<()> {
        let (hidden, ffn) = (s.hidden as usize, s.ffn as usize);
        let (hd, kvh) = (s.head_dim as usize, s.kv_heads as usize);
        let dims = AttnDims { heads: s.heads as usize, kv_heads: kvh, head_dim: hd };
        let qdim = dims.heads * hd;
        let kvdim = kvh * hd;
        // Row t of a [tokens][n] buffer of `elem`-byte elements.
        let row = |base: u64, t: usize, n: usize, elem: usize| base + t as u64 * row_bytes((n * elem) as u64);
        match op {
            Op::End | Op::Setup(_) => unreachable!("handled by run"),
            Op::Embed { tokens, ids, table, dst } => {
                let ids = self.i32s(ids, tokens as usize)?;
                for (t, &id) in ids.iter().enumerate() {
                    if id as u32 >= s.vocab {
                        bail!("token id {id} outside the vocabulary {}", s.vocab);
                    }
                    let bytes = self.bytes(row(table, id as usize, hidden, 2), hidden * 2)?;
                    let x: Vec<i32> =
                        bytes.chunks_exact(2).map(|c| f16_to_fx(u16::from_le_bytes([c[0], c[1]]))).collect();
                    self.put_i32s(row(dst, t, hidden, 4), &x)?;
                }
            }
            Op::NormQuant { tokens, n, src, norm, codes, scales } => {
                let n = n as usize;
                let w = self.norm(norm, n)?;
                for t in 0..tokens as usize {
                    let x = self.i32s(row(src, t, n, 4), n)?;
                    let q = quantize(&x, FX_EX, w.as_ref().map(|w| (w, s.eps)), ACT_QMAX);
                    self.put_i8s(row(codes, t, n, 1), &q.codes)?;
                    self.put_f32s(scales + 4 * t as u64, &[q.scale])?;
                }
            }
            // `prefetch` is a hint for the engine's weight loader; the reference has none.
            Op::Linear { tokens, k, n, w_scale, codes, scales, weights, dst, accumulate, prefetch: _ } => {
                let (k, n) = (k as usize, n as usize);
                let len = self.tl.steps(k) * self.tl.blocks(n) * self.tl.beat_stride(self.bus_bytes);
                let image = self.bytes(weights, len)?;
                let w = self.tl.unpack_image(image, n, k, self.buffer_beats, self.bus_bytes);
                let layer = QLinear { rows: n, cols: k, w: QWeights::Ternary { codes: w, scale: w_scale } };
                for t in 0..tokens as usize {
                    let x = model::numerics::QuantVec {
                        codes: self.i8s(row(codes, t, k, 1), k)?,
                        scale: self.f32s(scales + 4 * t as u64, 1)?[0],
                    };
                    let mut y = linear(&layer, &x);
                    let out = row(dst, t, n, 4);
                    if accumulate {
                        let mut h = self.i32s(out, n)?;
                        model::numerics::residual_add(&mut h, &y);
                        y = h;
                    }
                    self.put_i32s(out, &y)?;
                }
            }
            Op::RopeKv { tokens, pos0, q, k, v, rope, kv } => {
                let max_seq = s.max_seq as usize;
                let half = hd / 2;
                let lay = KvLayout::new(s);
                let sin_base = rope + max_seq as u64 * row_bytes(2 * half as u64);
                for t in 0..tokens as usize {
                    let pos = pos0 as usize + t;
                    if pos >= max_seq {
                        bail!("position {pos} is beyond the KV cache (max_seq {max_seq})");
                    }
                    let table = RopeTable {
                        half,
                        cos: vec![0; pos * half].into_iter().chain(self.i16s(row(rope, pos, half, 2), half)?).collect(),
                        sin: vec![0; pos * half]
                            .into_iter()
                            .chain(self.i16s(row(sin_base, pos, half, 2), half)?)
                            .collect(),
                    };
                    let (qa, ka, va) = (row(q, t, qdim, 4), row(k, t, kvdim, 4), row(v, t, kvdim, 4));
                    let mut qv = self.i32s(qa, qdim)?;
                    let mut kv_ = self.i32s(ka, kvdim)?;
                    let vv = self.i32s(va, kvdim)?;
                    qv.chunks_exact_mut(hd).for_each(|h| table.apply(h, pos));
                    kv_.chunks_exact_mut(hd).for_each(|h| table.apply(h, pos));
                    self.put_i32s(qa, &qv)?;
                    self.put_i32s(ka, &kv_)?;
                    let (kc, ks, vc, vs) = kv_entries(&kv_, &vv, hd, s.kv_qmax as i32);
                    let p = pos as u64;
                    for h in 0..kvh {
                        let (hc, hh) = (h * hd..(h + 1) * hd, h as u64);
                        self.put_i8s(kv + lay.code_at(lay.k, hh, p), &kc[hc.clone()])?;
                        self.put_f32s(kv + lay.scale_at(lay.k_scale, hh, p), &ks[h..h + 1])?;
                        self.put_i8s(kv + lay.code_at(lay.v, hh, p), &vc[hc])?;
                        self.put_f32s(kv + lay.scale_at(lay.v_scale, hh, p), &vs[h..h + 1])?;
                    }
                }
            }
            Op::Attention { tokens, pos0, q, kv, dst } => {
                let lay = KvLayout::new(s);
                let (mut kc, mut ks, mut vc, mut vs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                // Gather the head-major cache into the reference's [pos][kv_head] order.
                for p in 0..(pos0 as u64 + tokens as u64) {
                    for h in 0..kvh as u64 {
                        kc.extend(self.i8s(kv + lay.code_at(lay.k, h, p), hd)?);
                        ks.extend(self.f32s(kv + lay.scale_at(lay.k_scale, h, p), 1)?);
                        vc.extend(self.i8s(kv + lay.code_at(lay.v, h, p), hd)?);
                        vs.extend(self.f32s(kv + lay.scale_at(lay.v_scale, h, p), 1)?);
                    }
                }
                let view = KvView { k: &kc, k_scale: &ks, v: &vc, v_scale: &vs };
                for t in 0..tokens as usize {
                    let qv = self.i32s(row(q, t, qdim, 4), qdim)?;
                    let o = attention(dims, view, &qv, pos0 as usize + t, &self.exp2, s.score_scale);
                    self.put_i32s(row(dst, t, qdim, 4), &o)?;
                }
            }
            Op::FfnAct { tokens, act, gate, up, norm, codes, scales } => {
                let w = self.norm(norm, ffn)?;
                let act = match act {
                    Act::Relu2 => FfnActivation::Relu2,
                    Act::Silu => FfnActivation::Silu,
                };
                for t in 0..tokens as usize {
                    let g = self.i32s(row(gate, t, ffn, 4), ffn)?;
                    let u = self.i32s(row(up, t, ffn, 4), ffn)?;
                    let q = ffn_activation(act, &g, &u, &self.exp2, w.as_ref().map(|w| (w, s.eps)));
                    self.put_i8s(row(codes, t, ffn, 1), &q.codes)?;
                    self.put_f32s(scales + 4 * t as u64, &[q.scale])?;
                }
            }
            Op::LmHead { tokens, src, norm, head, head_scales, dst } => {
                let vocab = s.vocab as usize;
                let last = tokens.checked_sub(1).context("LmHead with zero tokens")? as usize;
                let h = self.i32s(row(src, last, hidden, 4), hidden)?;
                let w = self.norm(norm, hidden)?.context("LmHead needs the final norm")?;
                if s.head_bits != 8 && s.head_bits != 4 {
                    bail!("SETUP head_bits {} (LM head codes are 8 or 4 bits)", s.head_bits);
                }
                let bits = s.head_bits as u32;
                let row_len = hidden * bits as usize / 8;
                let mut codes = Vec::with_capacity(vocab * hidden);
                for r in 0..vocab {
                    codes.extend(unpack_codes(self.bytes(row(head, r, row_len, 1), row_len)?, hidden, bits));
                }
                let rows = HeadRows { rows: vocab, cols: hidden, codes, scales: self.f32s(head_scales, vocab)? };
                let logits = lm_head(&rows, &w, s.eps, &h);
                self.put_i32s(dst, &logits)?;
            }
        }
        Ok(())
    }
}

impl Device for RefDevice {
    fn name(&self) -> String {
        "ref".into()
    }

    fn read_reg(&mut self, offset: u32) -> Result<u32> {
        Ok(match offset {
            regmap::CTRL => {
                let done = std::mem::take(&mut self.done); // clear on read
                regmap::ctrl::IDLE | if done { regmap::ctrl::DONE | regmap::ctrl::READY } else { 0 }
            }
            regmap::ARG_PROGRAM => self.program as u32,
            o if o == regmap::ARG_PROGRAM + 4 => (self.program >> 32) as u32,
            o if o == regmap::counter(7) => self.descriptors as u32,
            o if o == regmap::counter(7) + 4 => (self.descriptors >> 32) as u32,
            regmap::MAGIC => regmap::MAGIC_VALUE,
            // Cycle and traffic counters mean nothing for a software reference.
            _ => 0,
        })
    }

    fn write_reg(&mut self, offset: u32, value: u32) -> Result<()> {
        match offset {
            regmap::CTRL if value & regmap::ctrl::START != 0 => {
                self.descriptors = 0;
                self.run()?;
                self.done = true;
            }
            regmap::ARG_PROGRAM => self.program = (self.program & !0xffff_ffff) | value as u64,
            o if o == regmap::ARG_PROGRAM + 4 => self.program = (self.program & 0xffff_ffff) | (value as u64) << 32,
            _ => {}
        }
        Ok(())
    }

    fn alloc(&mut self, bytes: u64) -> Result<u64> {
        let addr = MEM_BASE + self.mem.len() as u64;
        let size = bytes.div_ceil(4096) * 4096;
        if self.mem.len() as u64 + size > self.limit {
            bail!("device memory exhausted: {} of {} bytes in use, {bytes} more requested", self.mem.len(), self.limit);
        }
        self.mem.resize(self.mem.len() + size as usize, 0);
        Ok(addr)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<()> {
        self.put(addr, data)
    }

    fn read(&mut self, addr: u64, out: &mut [u8]) -> Result<()> {
        out.copy_from_slice(self.bytes(addr, out.len())?);
        Ok(())
    }

    fn wait(&mut self, _timeout: Duration) -> Result<()> {
        // Programs run to completion inside `ap_start`, so done is already set (or never will be).
        let ctrl = self.read_reg(regmap::CTRL)?;
        if ctrl & regmap::ctrl::DONE == 0 {
            bail!("ref: wait without a started program");
        }
        Ok(())
    }
}
