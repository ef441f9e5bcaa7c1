//! The datapath operations, each defined once. `docs/numerics.md` is the prose of this file; the
//! RTL must equal these functions bit for bit.
//!
//! Two kinds of numbers flow through the accelerator:
//! - **vectors** are integers: int8 codes into the linear layers, int32 fixed point with
//!   [`FX_FRAC`] fraction bits everywhere else. Sums of integers do not depend on order, so any
//!   parallel schedule in hardware gives the same bits.
//! - **per-token scalars** (quantization scales, norm factors, softmax denominators) are IEEE
//!   binary32 with round-to-nearest-even and subnormal results flushed to zero ([`ftz`]); there
//!   are only a handful per token, so a small sequential float unit computes them.
//!
//! A scalar meets a vector only through [`requant`], an exact integer multiply by the scalar's
//! 24-bit mantissa followed by one round-half-to-even shift.

/// Fraction bits of the fixed-point vectors (residual stream, projections, attention output,
/// logits): value = integer / 2^16, range +-32768.
pub const FX_FRAC: u32 = 16;
/// Fraction bits of the RoPE cos/sin tables: 1.0 = 16384.
pub const ROPE_FRAC: u32 = 14;
/// Fraction bits of softmax weights: 1.0 = 32768.
pub const PROB_FRAC: u32 = 15;
/// log2(e) in Q.16, round-half-even of 1.4426950408889634 * 65536 (= 94548.46).
pub const LOG2E_Q16: i64 = 94548;

/// Round-half-to-even of `x / 2^s` (s may be 0). Exact for any i128 `x`.
pub fn rne_shift(x: i128, s: u32) -> i128 {
    if s == 0 {
        return x;
    }
    if s >= 128 {
        return 0;
    }
    let floor = x >> s; // arithmetic shift: floor division
    let rem = x - (floor << s); // 0 <= rem < 2^s
    let half = 1i128 << (s - 1);
    if rem > half || (rem == half && (floor & 1) == 1) {
        floor + 1
    } else {
        floor
    }
}

/// Round-half-to-even of `n / d` for `d > 0`.
pub fn rne_div(n: i128, d: i128) -> i128 {
    assert!(d > 0, "rne_div by {d}");
    let q = n.div_euclid(d);
    let r = n.rem_euclid(d); // 0 <= r < d
    if 2 * r > d || (2 * r == d && (q & 1) == 1) {
        q + 1
    } else {
        q
    }
}

/// Saturate to the int32 range.
pub fn sat_i32(x: i128) -> i32 {
    x.clamp(i32::MIN as i128, i32::MAX as i128) as i32
}

/// Flush a subnormal binary32 result to +0. Every scalar operation ends with this.
pub fn ftz(x: f32) -> f32 {
    if x.is_subnormal() {
        0.0
    } else {
        x
    }
}

/// Scalar multiply (IEEE RNE, then flush-to-zero).
pub fn fmul(a: f32, b: f32) -> f32 {
    ftz(a * b)
}
/// Scalar divide (IEEE RNE, then flush-to-zero).
pub fn fdiv(a: f32, b: f32) -> f32 {
    ftz(a / b)
}
/// Scalar add (IEEE RNE, then flush-to-zero).
pub fn fadd(a: f32, b: f32) -> f32 {
    ftz(a + b)
}
/// Scalar square root (IEEE, correctly rounded).
pub fn fsqrt(a: f32) -> f32 {
    ftz(a.sqrt())
}
/// Integer to binary32, round-half-to-even (Rust's `as` conversion is RNE).
pub fn f32_from_int(x: u128) -> f32 {
    ftz(x as f32)
}
/// `x * 2^k` in binary32: exact unless the result leaves the normal range (then flushed/∞).
pub fn ldexp(x: f32, k: i32) -> f32 {
    ftz((x as f64 * libm::exp2(k as f64)) as f32)
}

/// Split a non-negative normal binary32 into `(m, e)` with `x = m * 2^e`, `m` the 24-bit
/// significand (hidden bit included). Zero gives `(0, 0)`.
pub fn f32_parts(x: f32) -> (i64, i32) {
    assert!(x >= 0.0 && x.is_finite(), "scalar {x} must be finite and non-negative");
    if x == 0.0 {
        return (0, 0);
    }
    let bits = x.to_bits();
    let exp = ((bits >> 23) & 0xff) as i32;
    assert!(exp != 0, "scalar {x} is subnormal; scalars are flushed to zero");
    let m = (bits & 0x7f_ffff) as i64 | (1 << 23);
    (m, exp - 127 - 23)
}

/// `round_half_even(x * s * 2^frac)`, computed exactly: the product with the 24-bit significand
/// is exact, and only the final shift rounds. This is the one place a scalar meets a vector.
pub fn requant(x: i128, s: f32, frac: u32) -> i128 {
    let (m, e) = f32_parts(s);
    let prod = x * m as i128;
    let shift = e + frac as i32; // result = prod * 2^shift
    if shift >= 0 {
        // Only reachable with huge scales: exact when it fits in i128, saturated otherwise.
        let sat = if prod < 0 { i128::MIN } else { i128::MAX };
        if shift >= 127 {
            return if prod == 0 { 0 } else { sat };
        }
        prod.checked_mul(1i128 << shift).unwrap_or(sat)
    } else {
        rne_shift(prod, (-shift) as u32)
    }
}

/// A quantized vector: int codes plus one binary32 scale (value = code * scale).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantVec {
    /// Codes in `-qmax..=qmax`.
    pub codes: Vec<i8>,
    /// Dequantization scale.
    pub scale: f32,
}

/// RMSNorm weight in hardware form: `g_i = gain[i] * 2^-shift`, gains int16.
#[derive(Debug, Clone, PartialEq)]
pub struct NormWeight {
    /// Integer gains.
    pub gain: Vec<i16>,
    /// Power-of-two exponent shared by the vector.
    pub shift: i32,
}

impl NormWeight {
    /// Convert float gains: the largest shift with `max |g| * 2^shift <= 32767`, then
    /// round-half-to-even per element.
    pub fn from_f32(g: &[f32]) -> NormWeight {
        let max = g.iter().fold(0f64, |m, &v| m.max((v as f64).abs()));
        if max == 0.0 {
            return NormWeight { gain: vec![0; g.len()], shift: 0 };
        }
        let mut shift = (32767.0 / max).log2().floor() as i32;
        while max * libm::exp2(shift as f64) > 32767.0 {
            shift -= 1;
        }
        while max * libm::exp2((shift + 1) as f64) <= 32767.0 {
            shift += 1;
        }
        let k = libm::exp2(shift as f64);
        let gain = g.iter().map(|&v| (v as f64 * k).round_ties_even().clamp(-32767.0, 32767.0) as i16).collect();
        NormWeight { gain, shift }
    }

    /// The gains as floats (for the float model and reports).
    pub fn to_f32(&self) -> Vec<f32> {
        self.gain.iter().map(|&v| (v as f64 * libm::exp2(-self.shift as f64)) as f32).collect()
    }
}

/// Per-token absmax quantization to int8, optionally fused with RMSNorm; see [`quantize_wide`].
pub fn quantize(x: &[i32], ex: i32, norm: Option<(&NormWeight, f32)>, qmax: i32) -> QuantVec {
    assert!(qmax <= 127, "int8 codes hold at most +-127");
    let (codes, scale) = quantize_wide(x, ex, norm, qmax);
    QuantVec { codes: codes.into_iter().map(|c| c as i8).collect(), scale }
}

/// Per-token absmax quantization to int16 codes (the LM head input), optionally with RMSNorm.
pub fn quantize_i16(x: &[i32], ex: i32, norm: Option<(&NormWeight, f32)>) -> (Vec<i16>, f32) {
    let (codes, scale) = quantize_wide(x, ex, norm, LM_HEAD_QMAX);
    (codes.into_iter().map(|c| c as i16).collect(), scale)
}

/// Code range of the LM-head input (int16, symmetric).
pub const LM_HEAD_QMAX: i32 = 32767;

/// Per-token absmax quantization with codes in `-qmax..=qmax`, optionally fused with RMSNorm.
///
/// Input: integer vector `x` with value `x_i * 2^ex`. With a norm, the quantity quantized is
/// `RMSNorm(x)_i = x_i g_i / sqrt(mean(x^2) + eps)`; because absmax quantization does not depend
/// on a common factor, the codes come from `p_i = x_i * gain_i` alone and the square root only
/// enters the scale — one square root and two divides per token, no per-element float work.
pub fn quantize_wide(x: &[i32], ex: i32, norm: Option<(&NormWeight, f32)>, qmax: i32) -> (Vec<i32>, f32) {
    let n = x.len();
    let (p, eg): (Vec<i64>, i32) = match norm {
        Some((w, _)) => {
            assert_eq!(w.gain.len(), n, "norm weight length");
            (x.iter().zip(&w.gain).map(|(&a, &g)| a as i64 * g as i64).collect(), w.shift)
        }
        None => (x.iter().map(|&a| a as i64).collect(), 0),
    };
    let mx = p.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
    if mx == 0 {
        return (vec![0; n], 0.0);
    }
    let mx_f = f32_from_int(mx as u128);
    let inv = fdiv(qmax as f32, mx_f);
    let codes = p.iter().map(|&v| requant(v as i128, inv, 0).clamp(-qmax as i128, qmax as i128) as i32).collect();
    let top = ldexp(mx_f, ex - eg); // max |x_i g_i| in real units
    let scale = match norm {
        None => fdiv(top, qmax as f32),
        Some((_, eps)) => {
            let ss: u128 = x.iter().map(|&a| (a as i128 * a as i128) as u128).sum();
            let mean = fdiv(ldexp(f32_from_int(ss), 2 * ex), n as f32);
            let rms = fsqrt(fadd(mean, eps));
            fdiv(fdiv(top, rms), qmax as f32)
        }
    };
    (codes, scale)
}

/// Turn exact wide products into int32 plus a power-of-two exponent: shift right (round half to
/// even) just enough that every magnitude is at most 2^30. Input value = `v * 2^-frac`; output
/// value = `out * 2^ex`.
pub fn block_normalize(v: &[i128], frac: u32) -> (Vec<i32>, i32) {
    let max = v.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0);
    let bits = 128 - max.leading_zeros();
    let s = bits.saturating_sub(30);
    let out = v.iter().map(|&x| rne_shift(x, s) as i32).collect();
    (out, s as i32 - frac as i32)
}

/// Convert accumulators of a linear layer to fixed point: `acc * (sx * sw)` in Q.16.
pub fn dequant_linear(acc: &[i32], sx: f32, sw: f32) -> Vec<i32> {
    let c = fmul(sx, sw);
    acc.iter().map(|&a| sat_i32(requant(a as i128, c, FX_FRAC))).collect()
}

/// Saturating residual add in Q.16.
pub fn residual_add(h: &mut [i32], y: &[i32]) {
    for (a, &b) in h.iter_mut().zip(y) {
        *a = a.saturating_add(b);
    }
}

/// fp16 (IEEE binary16 bits) to Q.16, round half to even, saturating. Used for embedding rows.
pub fn f16_to_fx(bits: u16) -> i32 {
    let v = half::f16::from_bits(bits).to_f64(); // exact
    (v * (1u64 << FX_FRAC) as f64).round_ties_even().clamp(i32::MIN as f64, i32::MAX as f64) as i32
}

/// The two 256-entry tables that define `2^-f` for `f` in [0, 1) with 16 fraction bits:
/// `hi[j] = 2^(-j/256)`, `lo[j] = 2^(-j/65536)`, both Q.15 (round half to even of an f64
/// evaluation by the `libm` crate, so the ROM contents are the same on every machine).
#[derive(Debug, Clone)]
pub struct Exp2Tables {
    /// 2^(-j/256) in Q.15.
    pub hi: [u16; 256],
    /// 2^(-j/65536) in Q.15.
    pub lo: [u16; 256],
}

impl Exp2Tables {
    /// Build both tables.
    pub fn new() -> Exp2Tables {
        let mut hi = [0u16; 256];
        let mut lo = [0u16; 256];
        for j in 0..256 {
            hi[j] = (libm::exp2(-(j as f64) / 256.0) * 32768.0).round_ties_even() as u16;
            lo[j] = (libm::exp2(-(j as f64) / 65536.0) * 32768.0).round_ties_even() as u16;
        }
        Exp2Tables { hi, lo }
    }

    /// `2^(-d / 65536)` in Q.15 for `d >= 0` (Q.16): split `d` into integer part `n` and the
    /// fraction's high and low bytes; multiply the two table entries (round to Q.15), then shift
    /// right by `n` (round half to even).
    pub fn exp2_neg(&self, d: i64) -> u32 {
        assert!(d >= 0, "exp2_neg of a positive exponent");
        let n = (d >> 16) as u64;
        if n > 16 {
            return 0;
        }
        let f = (d & 0xffff) as usize;
        let y = rne_shift(self.hi[f >> 8] as i128 * self.lo[f & 0xff] as i128, PROB_FRAC);
        rne_shift(y, n as u32) as u32
    }
}

impl Default for Exp2Tables {
    fn default() -> Self {
        Self::new()
    }
}

/// RoPE tables: `cos`/`sin` of `pos * theta^(-2i/d)` for every position and pair index, Q.14,
/// row-major `[pos][i]` with `i < head_dim/2`. Evaluated in f64 with `libm` (same bits on every
/// machine), rounded half to even.
#[derive(Debug, Clone)]
pub struct RopeTable {
    /// Pairs per head (head_dim / 2).
    pub half: usize,
    /// cos, Q.14.
    pub cos: Vec<i16>,
    /// sin, Q.14.
    pub sin: Vec<i16>,
}

impl RopeTable {
    /// Tables for `max_seq` positions.
    pub fn new(head_dim: usize, max_seq: usize, theta: f64) -> RopeTable {
        let half = head_dim / 2;
        let mut cos = Vec::with_capacity(max_seq * half);
        let mut sin = Vec::with_capacity(max_seq * half);
        let one = (1u32 << ROPE_FRAC) as f64;
        for pos in 0..max_seq {
            for i in 0..half {
                let inv_freq = libm::pow(theta, -((2 * i) as f64) / head_dim as f64);
                let angle = pos as f64 * inv_freq;
                cos.push((libm::cos(angle) * one).round_ties_even() as i16);
                sin.push((libm::sin(angle) * one).round_ties_even() as i16);
            }
        }
        RopeTable { half, cos, sin }
    }

    /// Rotate one head in place (non-interleaved pairs `i`, `i + d/2`, as Hugging Face's
    /// `rotate_half`): `a' = a cos - b sin`, `b' = b cos + a sin`, each rounded half to even
    /// from the exact sum of products, saturated to int32.
    pub fn apply(&self, x: &mut [i32], pos: usize) {
        assert_eq!(x.len(), 2 * self.half);
        let row = pos * self.half;
        for i in 0..self.half {
            let (c, s) = (self.cos[row + i] as i128, self.sin[row + i] as i128);
            let (a, b) = (x[i] as i128, x[i + self.half] as i128);
            x[i] = sat_i32(rne_shift(a * c - b * s, ROPE_FRAC));
            x[i + self.half] = sat_i32(rne_shift(b * c + a * s, ROPE_FRAC));
        }
    }
}

/// SiLU of a Q.16 value, result Q.16 (as i64, may exceed int32 only for |x| >= 2^15):
/// `sigma(|x|) = 2^30 / (2^15 + 2^(-|x| log2 e))` in Q.15 by one integer division,
/// `sigma(-x) = 1 - sigma(x)`, `silu = x * sigma` rounded half to even.
pub fn silu_fx(x: i32, t: &Exp2Tables) -> i64 {
    let ax = (x as i64).abs();
    let xl = rne_shift(ax as i128 * LOG2E_Q16 as i128, FX_FRAC) as i64;
    let e = t.exp2_neg(xl) as i128;
    let sig_pos = rne_div(1i128 << 30, (1i128 << PROB_FRAC) + e);
    let sig = if x >= 0 { sig_pos } else { (1i128 << PROB_FRAC) - sig_pos };
    rne_shift(x as i128 * sig, PROB_FRAC) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rne_shift_ties_go_to_even() {
        // 2.5 -> 2, 3.5 -> 4, -2.5 -> -2, -3.5 -> -4, 2.25 -> 2, 2.75 -> 3
        assert_eq!(rne_shift(5, 1), 2);
        assert_eq!(rne_shift(7, 1), 4);
        assert_eq!(rne_shift(-5, 1), -2);
        assert_eq!(rne_shift(-7, 1), -4);
        assert_eq!(rne_shift(9, 2), 2);
        assert_eq!(rne_shift(11, 2), 3);
        assert_eq!(rne_shift(-9, 2), -2);
        assert_eq!(rne_shift(-11, 2), -3);
        assert_eq!(rne_shift(12345, 0), 12345);
    }

    #[test]
    fn rne_div_matches_float_rounding_on_small_cases() {
        for n in -200i128..200 {
            for d in 1i128..20 {
                let want = (n as f64 / d as f64).round_ties_even() as i128;
                assert_eq!(rne_div(n, d), want, "{n}/{d}");
            }
        }
    }

    #[test]
    fn requant_is_exact_multiply_then_one_rounding() {
        // 3 * 0.5 = 1.5 -> 2 ; 5 * 0.5 = 2.5 -> 2 ; -5 * 0.5 -> -2
        assert_eq!(requant(3, 0.5, 0), 2);
        assert_eq!(requant(5, 0.5, 0), 2);
        assert_eq!(requant(-5, 0.5, 0), -2);
        // 1 * 0.75 in Q.16 = 49152 exactly
        assert_eq!(requant(1, 0.75, 16), 49152);
        // zero scale gives zero
        assert_eq!(requant(123456, 0.0, 16), 0);
    }

    #[test]
    fn quantize_hand_worked_ties_and_saturation() {
        // Values 0.5 .. ; max 254 -> inv = 127/254 = 0.5 exactly.
        // 254 -> 127, 1 -> 0.5 -> 0 (tie to even), 3 -> 1.5 -> 2, -5 -> -2.5 -> -2, -254 -> -127
        let q = quantize(&[254, 1, 3, -5, -254], 0, None, 127);
        assert_eq!(q.codes, vec![127, 0, 2, -2, -127]);
        assert_eq!(q.scale, 2.0);
        // Largest-magnitude int32 inputs: saturate symmetrically, never -128.
        let q = quantize(&[i32::MIN, i32::MAX, 0], 0, None, 127);
        assert_eq!(q.codes, vec![-127, 127, 0]);
        // All-zero row: codes and scale zero, no division by zero.
        let q = quantize(&[0; 7], -16, None, 127);
        assert_eq!(q.codes, vec![0; 7]);
        assert_eq!(q.scale, 0.0);
        // int4 KV range.
        let q = quantize(&[14, 7, -14, 1], 0, None, 7);
        assert_eq!(q.codes, vec![7, 4, -7, 0]); // 3.5 -> 4, 0.5 -> 0
    }

    #[test]
    fn quantize_with_norm_scale_is_rms_normalized_max() {
        // x = [3, 4] (Q.0), g = 1: mean(x^2) = 12.5, rms = 3.5355; max|x_norm| = 4/3.5355
        let w = NormWeight { gain: vec![1, 1], shift: 0 };
        let q = quantize(&[3, 4], 0, Some((&w, 0.0)), 127);
        assert_eq!(q.codes, vec![95, 127]); // 3*127/4 = 95.25
        let want = 4.0 / 12.5f64.sqrt() / 127.0;
        assert!((q.scale as f64 - want).abs() < 1e-7 * want);
    }

    #[test]
    fn norm_weight_uses_full_int16_range() {
        let w = NormWeight::from_f32(&[1.0, -0.5, 0.25]);
        assert_eq!(w.shift, 14);
        assert_eq!(w.gain, vec![16384, -8192, 4096]);
        assert_eq!(w.to_f32(), vec![1.0, -0.5, 0.25]);
        let w = NormWeight::from_f32(&[0.0, 0.0]);
        assert_eq!(w.gain, vec![0, 0]);
    }

    #[test]
    fn block_normalize_keeps_small_vectors_and_shifts_big_ones() {
        let (v, ex) = block_normalize(&[3, -4], 16);
        assert_eq!((v, ex), (vec![3, -4], -16));
        let big = 1i128 << 40;
        let (v, ex) = block_normalize(&[big, -big / 2, 3], 32);
        // 2^40 has 41 bits: shift by 11 so every magnitude is at most 2^30 after rounding.
        assert_eq!(v, vec![1 << 29, -(1 << 28), 0]);
        assert_eq!(ex, 11 - 32);
        let (v, _) = block_normalize(&[(1i128 << 31) - 1], 0);
        assert_eq!(v, vec![1 << 30]); // rounds up to exactly 2^30, still fits
    }

    #[test]
    fn exp2_table_endpoints_and_accuracy() {
        let t = Exp2Tables::new();
        assert_eq!(t.exp2_neg(0), 32768);
        assert_eq!(t.exp2_neg(1 << 16), 16384);
        assert_eq!(t.exp2_neg(17 << 16), 0);
        for d in (0..(12 << 16)).step_by(977) {
            let want = libm::exp2(-(d as f64) / 65536.0) * 32768.0;
            assert!((t.exp2_neg(d) as f64 - want).abs() <= 1.5, "d={d}");
        }
    }

    #[test]
    fn rope_position_zero_is_identity_and_rotation_preserves_norm() {
        let r = RopeTable::new(8, 16, 10000.0);
        let mut x = vec![65536, -3 << 16, 12345, 0, 7, 8, 9, 10];
        let orig = x.clone();
        r.apply(&mut x, 0);
        assert_eq!(x, orig);
        r.apply(&mut x, 5);
        let n0: f64 = orig.iter().map(|&v| (v as f64).powi(2)).sum();
        let n1: f64 = x.iter().map(|&v| (v as f64).powi(2)).sum();
        assert!((n0.sqrt() - n1.sqrt()).abs() / n0.sqrt() < 1e-3);
    }

    #[test]
    fn silu_matches_float_closely() {
        let t = Exp2Tables::new();
        for xi in (-20 * 65536..20 * 65536).step_by(4099) {
            let x = xi as f64 / 65536.0;
            let want = x / (1.0 + (-x).exp());
            let got = silu_fx(xi, &t) as f64 / 65536.0;
            assert!((got - want).abs() <= 1e-3 * (1.0 + x.abs()), "x={x} got={got} want={want}");
        }
        assert_eq!(silu_fx(0, &t), 0);
    }

    #[test]
    fn f16_to_fixed_rounds_and_saturates() {
        assert_eq!(f16_to_fx(half::f16::from_f32(1.5).to_bits()), 98304);
        assert_eq!(f16_to_fx(half::f16::from_f32(-0.25).to_bits()), -16384);
        assert_eq!(f16_to_fx(half::f16::MAX.to_bits()), i32::MAX);
        // 2^-17 is half an LSB of Q.16: ties to even -> 0; 3 * 2^-17 = 1.5 LSB -> 2
        assert_eq!(f16_to_fx(half::f16::from_f64(libm::exp2(-17.0)).to_bits()), 0);
        assert_eq!(f16_to_fx(half::f16::from_f64(3.0 * libm::exp2(-17.0)).to_bits()), 2);
    }
}
