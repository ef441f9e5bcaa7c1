//! The command stream: what the host writes into device memory and the kernel executes. Defined
//! once here; the host encodes it, the reference device and (issue 5) the RTL command processor
//! decode it. `docs/isa.md` is the prose of this file.
//!
//! A program is a sequence of 64-byte descriptors ending with [`Op::End`]. Byte layout of a
//! descriptor (little-endian): `[0]` opcode, `[1]` flags, `[2..4]` tokens (u16), `[4..8]` `a`,
//! `[8..12]` `b`, `[12..16]` `c` (u32 or f32 bits), `[16..64]` six u64 device addresses.
//! Model-wide sizes come once per program in [`Op::Setup`], so within its maximum sizes the
//! hardware is model-agnostic.

use std::fmt;

/// Bytes per descriptor.
pub const DESC_BYTES: usize = 64;

/// Alignment of every row in device memory, bytes (the widest AXI bus: 512 bits). Engines then
/// only ever start bursts on bus-word boundaries; the tail of a row is written with byte strobes.
pub const ROW_ALIGN: u64 = 64;

/// Bytes a row of `bytes` occupies: rounded up to [`ROW_ALIGN`]. Two-dimensional buffers
/// (`[tokens][n]`, tables `[rows][n]`, the KV cache `[pos][...]`) use this as their row stride;
/// per-token scalars (`[tokens]` scales, ids) are one dense row.
pub fn row_bytes(bytes: u64) -> u64 {
    bytes.div_ceil(ROW_ALIGN) * ROW_ALIGN
}

/// Offset of the int16 gains in a norm weight: the i32 `shift` sits alone in the first row.
pub const NORM_GAINS: u64 = ROW_ALIGN;

/// FFN activation selected by [`Op::FfnAct`]'s flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// ReLU(x)^2.
    Relu2 = 0,
    /// SiLU.
    Silu = 1,
}

/// Model-wide sizes and constants, set by [`Op::Setup`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setup {
    /// Hidden size.
    pub hidden: u32,
    /// FFN size.
    pub ffn: u32,
    /// Vocabulary.
    pub vocab: u32,
    /// Context length (KV cache rows per layer).
    pub max_seq: u32,
    /// Query heads.
    pub heads: u16,
    /// KV heads.
    pub kv_heads: u16,
    /// Head dimension.
    pub head_dim: u16,
    /// KV code range (127 int8, 7 int4).
    pub kv_qmax: u16,
    /// Bits per LM head code in memory (8 or 4): the kernel's LM head reads one format, fixed
    /// when it is generated, and rejects a program written for the other.
    pub head_bits: u8,
    /// RMSNorm epsilon (binary32).
    pub eps: f32,
    /// `log2(e)/sqrt(head_dim)` (binary32).
    pub score_scale: f32,
    /// The program's first LINEAR's matrix (same fields as [`Op::Linear`]'s hint): the kernel
    /// starts loading it at once, while the ops before that LINEAR run.
    pub prefetch: Option<Prefetch>,
}

/// A LINEAR's prefetch hint: the next LINEAR's weight image and shape (`addr[4]`, and `addr[5]`
/// = k | n << 32; `addr[4] == 0` means none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefetch {
    /// Weight image address.
    pub weights: u64,
    /// Inputs (K).
    pub k: u32,
    /// Outputs (N).
    pub n: u32,
}

/// One command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// End of program.
    End,
    /// Model-wide sizes for the ops that follow.
    Setup(Setup),
    /// `dst[t] = Q.16(embedding row ids[t])` for `tokens` u32 ids at `ids`; table of fp16 rows.
    Embed {
        /// Tokens.
        tokens: u16,
        /// Token ids (u32 each).
        ids: u64,
        /// Embedding table, fp16 `[vocab][hidden]`.
        table: u64,
        /// Output, i32 `[tokens][hidden]`.
        dst: u64,
    },
    /// Per-token absmax int8 quantization of `n`-element Q.16 rows, with RMSNorm when `norm != 0`
    /// (a norm weight is the i32 `shift`, then at [`NORM_GAINS`] the `n` i16 gains).
    NormQuant {
        /// Tokens.
        tokens: u16,
        /// Row length.
        n: u32,
        /// Input, i32 `[tokens][n]`.
        src: u64,
        /// Norm weight or 0 for none.
        norm: u64,
        /// Output codes, i8 `[tokens][n]`.
        codes: u64,
        /// Output scales, f32 `[tokens]`.
        scales: u64,
    },
    /// `dst[t] (+)= dequant(W codes[t])`, `W` an `n x k` ternary matrix in the TLMM weight image
    /// layout; `accumulate` adds (saturating) into `dst` instead of writing.
    Linear {
        /// Tokens.
        tokens: u16,
        /// Inputs (K).
        k: u32,
        /// Outputs (N).
        n: u32,
        /// Per-tensor weight scale (binary32).
        w_scale: f32,
        /// Input codes, i8 `[tokens][k]`.
        codes: u64,
        /// Input scales, f32 `[tokens]`.
        scales: u64,
        /// Packed weights.
        weights: u64,
        /// Output, i32 `[tokens][n]`.
        dst: u64,
        /// Add into `dst` (residual) rather than overwrite.
        accumulate: bool,
        /// The matrix the program's next LINEAR uses: the engine starts loading it as soon as
        /// this one is loaded (a hint: results never depend on it).
        prefetch: Option<Prefetch>,
    },
    /// RoPE on `q` and `k` (in place) at positions `pos0..`, then quantize `k` and `v` per KV
    /// head into the layer's KV cache.
    RopeKv {
        /// Tokens.
        tokens: u16,
        /// Position of the first token.
        pos0: u32,
        /// q, i32 `[tokens][heads*head_dim]`.
        q: u64,
        /// k, i32 `[tokens][kv_heads*head_dim]`.
        k: u64,
        /// v, i32 `[tokens][kv_heads*head_dim]`.
        v: u64,
        /// RoPE table: i16 `[max_seq][head_dim/2]` cos rows, then as many sin rows.
        rope: u64,
        /// The layer's KV cache ([`KvLayout`]).
        kv: u64,
    },
    /// Causal attention of `tokens` queries at positions `pos0..` over the layer's cache.
    Attention {
        /// Tokens.
        tokens: u16,
        /// Position of the first query.
        pos0: u32,
        /// q, i32 `[tokens][heads*head_dim]` (after RoPE).
        q: u64,
        /// The layer's KV cache.
        kv: u64,
        /// Output, i32 `[tokens][heads*head_dim]`.
        dst: u64,
    },
    /// `act(gate) * up`, block-normalized, (sub-normed and) int8-quantized for down_proj.
    FfnAct {
        /// Tokens.
        tokens: u16,
        /// Activation.
        act: Act,
        /// gate, i32 `[tokens][ffn]`.
        gate: u64,
        /// up, i32 `[tokens][ffn]`.
        up: u64,
        /// Sub-norm weight or 0.
        norm: u64,
        /// Output codes, i8 `[tokens][ffn]`.
        codes: u64,
        /// Output scales, f32 `[tokens]`.
        scales: u64,
    },
    /// Final norm + int8 LM head on the last of `tokens` rows of `src`: Q.16 logits.
    LmHead {
        /// Rows in `src` (the last one is used).
        tokens: u16,
        /// Hidden states, i32 `[tokens][hidden]`.
        src: u64,
        /// Final norm weight.
        norm: u64,
        /// Head codes, i8 `[vocab][hidden]`.
        head: u64,
        /// Head row scales, f32 `[vocab]`.
        head_scales: u64,
        /// Logits, i32 `[vocab]`.
        dst: u64,
    },
}

/// Opcodes.
pub mod opcode {
    /// [`super::Op::End`].
    pub const END: u8 = 0x00;
    /// [`super::Op::Setup`].
    pub const SETUP: u8 = 0x01;
    /// [`super::Op::Embed`].
    pub const EMBED: u8 = 0x10;
    /// [`super::Op::NormQuant`].
    pub const NORM_QUANT: u8 = 0x11;
    /// [`super::Op::Linear`].
    pub const LINEAR: u8 = 0x12;
    /// [`super::Op::RopeKv`].
    pub const ROPE_KV: u8 = 0x13;
    /// [`super::Op::Attention`].
    pub const ATTENTION: u8 = 0x14;
    /// [`super::Op::FfnAct`].
    pub const FFN_ACT: u8 = 0x15;
    /// [`super::Op::LmHead`].
    pub const LM_HEAD: u8 = 0x16;
}

/// A descriptor that does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsaError {
    /// Byte offset of the descriptor in the program.
    pub offset: usize,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for IsaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "descriptor at byte {}: {}", self.offset, self.msg)
    }
}

impl std::error::Error for IsaError {}

struct Raw {
    op: u8,
    flags: u8,
    tokens: u16,
    a: u32,
    b: u32,
    c: u32,
    addr: [u64; 6],
}

impl Raw {
    fn new(op: u8) -> Raw {
        Raw { op, flags: 0, tokens: 0, a: 0, b: 0, c: 0, addr: [0; 6] }
    }

    fn bytes(&self) -> [u8; DESC_BYTES] {
        let mut d = [0u8; DESC_BYTES];
        d[0] = self.op;
        d[1] = self.flags;
        d[2..4].copy_from_slice(&self.tokens.to_le_bytes());
        d[4..8].copy_from_slice(&self.a.to_le_bytes());
        d[8..12].copy_from_slice(&self.b.to_le_bytes());
        d[12..16].copy_from_slice(&self.c.to_le_bytes());
        for (i, a) in self.addr.iter().enumerate() {
            d[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        d
    }

    fn parse(d: &[u8]) -> Raw {
        let u32_at = |i: usize| u32::from_le_bytes(d[i..i + 4].try_into().expect("4 bytes"));
        let mut addr = [0u64; 6];
        for (i, a) in addr.iter_mut().enumerate() {
            *a = u64::from_le_bytes(d[16 + 8 * i..24 + 8 * i].try_into().expect("8 bytes"));
        }
        Raw {
            op: d[0],
            flags: d[1],
            tokens: u16::from_le_bytes([d[2], d[3]]),
            a: u32_at(4),
            b: u32_at(8),
            c: u32_at(12),
            addr,
        }
    }
}

impl Op {
    /// The 64-byte encoding.
    pub fn encode(&self) -> [u8; DESC_BYTES] {
        use opcode::*;
        let mut r;
        match *self {
            Op::End => r = Raw::new(END),
            Op::Setup(s) => {
                r = Raw::new(SETUP);
                r.a = s.hidden;
                r.b = s.ffn;
                r.c = s.vocab;
                r.addr[0] = s.max_seq as u64 | (s.head_bits as u64) << 32;
                r.addr[1] =
                    s.heads as u64 | (s.kv_heads as u64) << 16 | (s.head_dim as u64) << 32 | (s.kv_qmax as u64) << 48;
                r.addr[2] = s.eps.to_bits() as u64 | (s.score_scale.to_bits() as u64) << 32;
                if let Some(p) = s.prefetch {
                    r.addr[4] = p.weights;
                    r.addr[5] = p.k as u64 | (p.n as u64) << 32;
                }
            }
            Op::Embed { tokens, ids, table, dst } => {
                r = Raw::new(EMBED);
                r.tokens = tokens;
                r.addr[..3].copy_from_slice(&[ids, table, dst]);
            }
            Op::NormQuant { tokens, n, src, norm, codes, scales } => {
                r = Raw::new(NORM_QUANT);
                r.tokens = tokens;
                r.a = n;
                r.addr[..4].copy_from_slice(&[src, norm, codes, scales]);
            }
            Op::Linear { tokens, k, n, w_scale, codes, scales, weights, dst, accumulate, prefetch } => {
                r = Raw::new(LINEAR);
                r.tokens = tokens;
                r.flags = accumulate as u8;
                r.a = k;
                r.b = n;
                r.c = w_scale.to_bits();
                r.addr[..4].copy_from_slice(&[codes, scales, weights, dst]);
                if let Some(p) = prefetch {
                    r.addr[4] = p.weights;
                    r.addr[5] = p.k as u64 | (p.n as u64) << 32;
                }
            }
            Op::RopeKv { tokens, pos0, q, k, v, rope, kv } => {
                r = Raw::new(ROPE_KV);
                r.tokens = tokens;
                r.a = pos0;
                r.addr[..5].copy_from_slice(&[q, k, v, rope, kv]);
            }
            Op::Attention { tokens, pos0, q, kv, dst } => {
                r = Raw::new(ATTENTION);
                r.tokens = tokens;
                r.a = pos0;
                r.addr[..3].copy_from_slice(&[q, kv, dst]);
            }
            Op::FfnAct { tokens, act, gate, up, norm, codes, scales } => {
                r = Raw::new(FFN_ACT);
                r.tokens = tokens;
                r.flags = act as u8;
                r.addr[..5].copy_from_slice(&[gate, up, norm, codes, scales]);
            }
            Op::LmHead { tokens, src, norm, head, head_scales, dst } => {
                r = Raw::new(LM_HEAD);
                r.tokens = tokens;
                r.addr[..5].copy_from_slice(&[src, norm, head, head_scales, dst]);
            }
        }
        r.bytes()
    }

    /// Decode the descriptor at byte `offset` of `program`.
    pub fn decode(program: &[u8], offset: usize) -> Result<Op, IsaError> {
        let err = |msg: String| Err(IsaError { offset, msg });
        let Some(d) = program.get(offset..offset + DESC_BYTES) else {
            return err(format!("program ends inside the descriptor ({} bytes)", program.len()));
        };
        let r = Raw::parse(d);
        use opcode::*;
        let a = r.addr;
        let op = match r.op {
            END => Op::End,
            SETUP => Op::Setup(Setup {
                hidden: r.a,
                ffn: r.b,
                vocab: r.c,
                max_seq: a[0] as u32,
                head_bits: (a[0] >> 32) as u8,
                heads: a[1] as u16,
                kv_heads: (a[1] >> 16) as u16,
                head_dim: (a[1] >> 32) as u16,
                kv_qmax: (a[1] >> 48) as u16,
                eps: f32::from_bits(a[2] as u32),
                score_scale: f32::from_bits((a[2] >> 32) as u32),
                prefetch: (a[4] != 0).then(|| Prefetch { weights: a[4], k: a[5] as u32, n: (a[5] >> 32) as u32 }),
            }),
            EMBED => Op::Embed { tokens: r.tokens, ids: a[0], table: a[1], dst: a[2] },
            NORM_QUANT => Op::NormQuant { tokens: r.tokens, n: r.a, src: a[0], norm: a[1], codes: a[2], scales: a[3] },
            LINEAR => Op::Linear {
                tokens: r.tokens,
                k: r.a,
                n: r.b,
                w_scale: f32::from_bits(r.c),
                codes: a[0],
                scales: a[1],
                weights: a[2],
                dst: a[3],
                accumulate: r.flags & 1 == 1,
                prefetch: (a[4] != 0).then(|| Prefetch { weights: a[4], k: a[5] as u32, n: (a[5] >> 32) as u32 }),
            },
            ROPE_KV => Op::RopeKv { tokens: r.tokens, pos0: r.a, q: a[0], k: a[1], v: a[2], rope: a[3], kv: a[4] },
            ATTENTION => Op::Attention { tokens: r.tokens, pos0: r.a, q: a[0], kv: a[1], dst: a[2] },
            FFN_ACT => Op::FfnAct {
                tokens: r.tokens,
                act: match r.flags {
                    0 => Act::Relu2,
                    1 => Act::Silu,
                    f => return err(format!("unknown FFN activation {f}")),
                },
                gate: a[0],
                up: a[1],
                norm: a[2],
                codes: a[3],
                scales: a[4],
            },
            LM_HEAD => Op::LmHead { tokens: r.tokens, src: a[0], norm: a[1], head: a[2], head_scales: a[3], dst: a[4] },
            other => return err(format!("unknown opcode {other:#04x}")),
        };
        Ok(op)
    }
}

/// Where the parts of one layer's KV cache live, relative to its base address. Head-major: each
/// KV head's codes for all positions are one contiguous run (`[max_seq][head_dim]` i8) and its
/// scales another (`[max_seq]` f32), so attention reads one head's whole context in one burst
/// stream; each head's region starts on a row boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvLayout {
    /// Key codes: `kv_heads` regions of `head_stride` bytes.
    pub k: u64,
    /// Key scales: `kv_heads` regions of `scale_stride` bytes.
    pub k_scale: u64,
    /// Value codes.
    pub v: u64,
    /// Value scales.
    pub v_scale: u64,
    /// Bytes from one head's codes to the next: `row_bytes(max_seq * head_dim)`.
    pub head_stride: u64,
    /// Bytes from one head's scales to the next: `row_bytes(4 * max_seq)`.
    pub scale_stride: u64,
    /// Bytes of one position's codes in a head (`head_dim`).
    pub head_dim: u64,
    /// Total bytes.
    pub bytes: u64,
}

impl KvLayout {
    /// The layout for a model's sizes.
    pub fn new(s: &Setup) -> KvLayout {
        let (seq, kvh, hd) = (s.max_seq as u64, s.kv_heads as u64, s.head_dim as u64);
        let head_stride = row_bytes(seq * hd);
        let scale_stride = row_bytes(4 * seq);
        let (codes, scales) = (kvh * head_stride, kvh * scale_stride);
        KvLayout {
            k: 0,
            k_scale: codes,
            v: codes + scales,
            v_scale: 2 * codes + scales,
            head_stride,
            scale_stride,
            head_dim: hd,
            bytes: 2 * (codes + scales),
        }
    }

    /// Offset of the codes of (`head`, `pos`) in the region at `codes` (`k` or `v`).
    pub fn code_at(&self, codes: u64, head: u64, pos: u64) -> u64 {
        codes + head * self.head_stride + pos * self.head_dim
    }

    /// Offset of the scale of (`head`, `pos`) in the region at `scales` (`k_scale` or `v_scale`).
    pub fn scale_at(&self, scales: u64, head: u64, pos: u64) -> u64 {
        scales + head * self.scale_stride + 4 * pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_round_trips() {
        let setup = Setup {
            hidden: 1536,
            ffn: 4096,
            vocab: 32002,
            max_seq: 2048,
            heads: 16,
            kv_heads: 4,
            head_dim: 96,
            kv_qmax: 127,
            head_bits: 4,
            eps: 1e-5,
            score_scale: 0.147,
            prefetch: Some(Prefetch { weights: 1 << 40, k: 1536, n: 1536 }),
        };
        let ops = [
            Op::End,
            Op::Setup(setup),
            Op::Embed { tokens: 3, ids: 1, table: 2, dst: 3 },
            Op::NormQuant { tokens: 8, n: 1536, src: 10, norm: 0, codes: 30, scales: 40 },
            Op::Linear {
                tokens: 1,
                k: 1536,
                n: 4096,
                w_scale: 0.75,
                codes: 1,
                scales: 2,
                weights: 1 << 40,
                dst: 4,
                accumulate: true,
                prefetch: Some(Prefetch { weights: 1 << 41, k: 4096, n: 1536 }),
            },
            Op::Linear {
                tokens: 8,
                k: 64,
                n: 96,
                w_scale: 0.5,
                codes: 1,
                scales: 2,
                weights: 3,
                dst: 4,
                accumulate: false,
                prefetch: None,
            },
            Op::RopeKv { tokens: 2, pos0: 77, q: 1, k: 2, v: 3, rope: 4, kv: 5 },
            Op::Attention { tokens: 5, pos0: 9, q: 1, kv: 2, dst: 3 },
            Op::FfnAct { tokens: 1, act: Act::Silu, gate: 1, up: 2, norm: 0, codes: 4, scales: 5 },
            Op::LmHead { tokens: 4, src: 1, norm: 2, head: 3, head_scales: 4, dst: 5 },
        ];
        let program: Vec<u8> = ops.iter().flat_map(|o| o.encode()).collect();
        for (i, op) in ops.iter().enumerate() {
            assert_eq!(&Op::decode(&program, i * DESC_BYTES).unwrap(), op);
        }
    }

    #[test]
    fn bad_descriptors_are_named() {
        let mut d = Op::End.encode();
        d[0] = 0x7f;
        assert_eq!(Op::decode(&d, 0).unwrap_err().to_string(), "descriptor at byte 0: unknown opcode 0x7f");
        let e = Op::decode(&d[..10], 0).unwrap_err().to_string();
        assert!(e.contains("program ends inside the descriptor"), "{e}");
    }
}
