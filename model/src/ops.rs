//! The decoder's operations at the granularity the accelerator executes them (one command
//! descriptor each), written once and used by both the [`crate::reference::Reference`] and the
//! host's reference device, which runs the same programs as the hardware.

use crate::config::FfnActivation;
use crate::numerics::{
    block_normalize, dequant_linear, f32_from_int, fdiv, fmul, quantize, quantize_i16, requant, sat_i32, silu_fx,
    Exp2Tables, NormWeight, QuantVec, FX_FRAC,
};
use crate::quant::{HeadRows, QLinear};

/// Activation code range of the linear layers (int8, symmetric).
pub const ACT_QMAX: i32 = 127;

/// Exponent of a Q.16 vector.
pub const FX_EX: i32 = -(FX_FRAC as i32);

/// Attention geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttnDims {
    /// Query heads.
    pub heads: usize,
    /// KV heads.
    pub kv_heads: usize,
    /// Head dimension.
    pub head_dim: usize,
}

/// One layer's KV cache as stored: codes `[pos][kv_head][head_dim]`, scales `[pos][kv_head]`.
#[derive(Debug, Clone, Copy)]
pub struct KvView<'a> {
    /// Key codes.
    pub k: &'a [i8],
    /// Key scales.
    pub k_scale: &'a [f32],
    /// Value codes.
    pub v: &'a [i8],
    /// Value scales.
    pub v_scale: &'a [f32],
}

/// A quantized linear layer on quantized activations, output Q.16.
pub fn linear(w: &QLinear, x: &QuantVec) -> Vec<i32> {
    dequant_linear(&w.matvec(&x.codes), x.scale, w.scale())
}

/// Quantize one token's `k` and `v` (Q.16, after RoPE for `k`) per KV head: the cache entries
/// `(k codes, k scales, v codes, v scales)` of that position.
pub fn kv_entries(k: &[i32], v: &[i32], head_dim: usize, qmax: i32) -> (Vec<i8>, Vec<f32>, Vec<i8>, Vec<f32>) {
    let (mut kc, mut ks, mut vc, mut vs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (kh, vh) in k.chunks_exact(head_dim).zip(v.chunks_exact(head_dim)) {
        let kq = quantize(kh, FX_EX, None, qmax);
        let vq = quantize(vh, FX_EX, None, qmax);
        kc.extend_from_slice(&kq.codes);
        ks.push(kq.scale);
        vc.extend_from_slice(&vq.codes);
        vs.push(vq.scale);
    }
    (kc, ks, vc, vs)
}

/// Attention of all query heads of one token at `pos` over cached keys `0..=pos`: exact
/// two-pass softmax in base 2 (max, then exp2 of the differences), value weights carrying each
/// key's value scale, one reciprocal of the denominator per head. Output Q.16, heads
/// concatenated. `score_scale` is `log2(e) / sqrt(head_dim)` as binary32.
pub fn attention(d: AttnDims, kv: KvView, q: &[i32], pos: usize, exp2: &Exp2Tables, score_scale: f32) -> Vec<i32> {
    let (hd, kvh, group) = (d.head_dim, d.kv_heads, d.heads / d.kv_heads);
    let mut out = Vec::with_capacity(q.len());
    for head in 0..d.heads {
        let kvi = head / group;
        let qq = quantize(&q[head * hd..(head + 1) * hd], FX_EX, None, ACT_QMAX);
        let keys = 0..=pos;
        let z: Vec<i32> = keys
            .clone()
            .map(|t| {
                let base = (t * kvh + kvi) * hd;
                let raw: i32 = qq.codes.iter().zip(&kv.k[base..base + hd]).map(|(&a, &b)| a as i32 * b as i32).sum();
                let c = fmul(fmul(qq.scale, kv.k_scale[t * kvh + kvi]), score_scale);
                sat_i32(requant(raw as i128, c, FX_FRAC))
            })
            .collect();
        let zmax = *z.iter().max().expect("at least one key");
        let e: Vec<u32> = z.iter().map(|&zt| exp2.exp2_neg(zmax as i64 - zt as i64)).collect();
        let sum: u64 = e.iter().map(|&x| x as u64).sum();
        let mut acc = vec![0i128; hd];
        for (t, &et) in keys.zip(&e) {
            let w = requant(et as i128, kv.v_scale[t * kvh + kvi], FX_FRAC);
            let base = (t * kvh + kvi) * hd;
            for (a, &v) in acc.iter_mut().zip(&kv.v[base..base + hd]) {
                *a += w * v as i128;
            }
        }
        let rcp = fdiv(1.0, f32_from_int(sum as u128));
        out.extend(acc.iter().map(|&a| sat_i32(requant(a, rcp, 0))));
    }
    out
}

/// The gated FFN's activation and product, quantized for `down_proj`: `act(gate) * up` exact,
/// block-normalized to int32 with a per-token exponent, then (sub-norm and) int8 quantization.
pub fn ffn_activation(
    act: FfnActivation,
    gate: &[i32],
    up: &[i32],
    exp2: &Exp2Tables,
    sub_norm: Option<(&NormWeight, f32)>,
) -> QuantVec {
    let (prod, frac): (Vec<i128>, u32) = match act {
        // relu(g)^2 is exact in Q.32; times up (Q.16) -> Q.48.
        FfnActivation::Relu2 => {
            (gate.iter().zip(up).map(|(&g, &u)| (g.max(0) as i128).pow(2) * u as i128).collect(), 3 * FX_FRAC)
        }
        // silu(g) in Q.16 times up (Q.16) -> Q.32.
        FfnActivation::Silu => {
            (gate.iter().zip(up).map(|(&g, &u)| silu_fx(g, exp2) as i128 * u as i128).collect(), 2 * FX_FRAC)
        }
    };
    let (fv, ex) = block_normalize(&prod, frac);
    quantize(&fv, ex, sub_norm, ACT_QMAX)
}

/// Final norm fused with int16 quantization, int8 x int16 LM head, per-row dequantization to
/// Q.16 logits.
pub fn lm_head(head: &HeadRows, final_norm: &NormWeight, eps: f32, h: &[i32]) -> Vec<i32> {
    let (codes, scale) = quantize_i16(h, FX_EX, Some((final_norm, eps)));
    let acc = head.matvec(&codes);
    acc.iter().zip(&head.scales).map(|(&a, &s)| sat_i32(requant(a as i128, fmul(scale, s), FX_FRAC))).collect()
}
