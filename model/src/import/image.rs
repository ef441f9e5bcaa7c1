//! The TLMM weight image of a ternary matrix, fast: the same bytes as
//! [`crate::pack::Tlmm::pack_image`] (which is the definition, and builds every beat bit by bit),
//! computed with a table of group codes and a 64-bit little-endian bit writer so a 2B-parameter
//! checkpoint packs in seconds. `tests` check the two agree on random shapes.

use crate::pack::Tlmm;

/// Group code of every `(row, group)` of a row-major `n x k` ternary matrix, `[n][groups]`.
fn group_codes(tl: &Tlmm, codes: &[i8], n: usize, k: usize) -> Vec<u8> {
    let g = tl.g;
    let groups = tl.groups(k);
    // code of the base-3 digit pattern sum (w_i + 1) 3^i
    let patterns = 3usize.pow(g as u32);
    let table: Vec<u8> = (0..patterns)
        .map(|p| {
            let w: Vec<i8> = (0..g).map(|i| (p / 3usize.pow(i as u32) % 3) as i8 - 1).collect();
            tl.group_code(&w) as u8
        })
        .collect();
    let mut out = vec![0u8; n * groups];
    for (row, dst) in codes.chunks_exact(k).zip(out.chunks_exact_mut(groups)) {
        let full = k / g;
        for (gi, d) in dst.iter_mut().enumerate().take(full) {
            let w = &row[gi * g..gi * g + g];
            let mut p = 0usize;
            for i in (0..g).rev() {
                p = p * 3 + (w[i] + 1) as usize;
            }
            *d = table[p];
        }
        if full < groups {
            *dst.last_mut().expect("a partial group") = tl.group_code(&row[full * g..]) as u8;
        }
    }
    out
}

/// Append `n` bits of `v` at bit `at` of `buf` (LSB first, bytes little-endian), OR-ing in;
/// `n + at % 8 <= 64`.
#[inline]
fn put_bits(buf: &mut [u8], at: usize, n: usize, v: u64) {
    let byte = at / 8;
    if byte + 8 <= buf.len() {
        let w = u64::from_le_bytes(buf[byte..byte + 8].try_into().expect("8 bytes")) | v << (at % 8);
        buf[byte..byte + 8].copy_from_slice(&w.to_le_bytes());
        return;
    }
    let mut byte = at / 8;
    let mut v = v << (at % 8);
    let mut left = n + at % 8;
    while left > 0 {
        buf[byte] |= v as u8;
        v >>= 8;
        byte += 1;
        left = left.saturating_sub(8);
    }
}

/// [`Tlmm::pack_image`], fast: the [`Tlmm::chunks`] of the matrix, each chunk's beats in
/// (step, block) order, every beat padded to [`Tlmm::beat_stride`] bytes.
pub fn pack_image(tl: &Tlmm, codes: &[i8], n: usize, k: usize, buffer_beats: usize, bus_bytes: usize) -> Vec<u8> {
    assert_eq!(codes.len(), n * k);
    pack_group_codes(tl, &group_codes(tl, codes, n, k), n, k, buffer_beats, bus_bytes)
}

/// The image straight from a Hugging Face packed tensor (`[n/4, k]` bytes, see
/// [`super::ternary::unpack_hf`]), without materializing the codes: each group's 2-bit fields
/// (`weight + 1`) index a table of group codes. Equal to unpacking then [`pack_image`].
pub fn pack_image_hf(
    tl: &Tlmm,
    packed: &[u8],
    n: usize,
    k: usize,
    buffer_beats: usize,
    bus_bytes: usize,
) -> Result<Vec<u8>, String> {
    if n % 4 != 0 || packed.len() != n / 4 * k {
        return Err(format!("{} packed bytes do not hold a {n} x {k} matrix", packed.len()));
    }
    let g = tl.g;
    let groups = tl.groups(k);
    // fields f_i = w_i + 1 in bits 2i..2i+2; pattern with a field 3 is invalid (0xff)
    let table: Vec<u8> = (0..1usize << (2 * g))
        .map(|f| {
            let w: Vec<i8> = (0..g).map(|i| ((f >> (2 * i)) & 3) as i8 - 1).collect();
            if w.contains(&2) {
                0xff
            } else {
                tl.group_code(&w) as u8
            }
        })
        .collect();
    let p = n / 4;
    let mut gc = vec![0u8; n * groups];
    for (row, dst) in gc.chunks_exact_mut(groups).enumerate() {
        let src = &packed[(row % p) * k..(row % p + 1) * k];
        let shift = 2 * (row / p);
        let full = k / g;
        match g {
            2 => hf_groups::<2>(src, shift, &table, &mut dst[..full]),
            3 => hf_groups::<3>(src, shift, &table, &mut dst[..full]),
            _ => hf_groups::<4>(src, shift, &table, &mut dst[..full]),
        }
        if full < groups {
            let mut f = 0usize;
            for i in 0..g {
                let field = src.get(full * g + i).map_or(1, |b| (b >> shift) & 3);
                f |= (field as usize) << (2 * i);
            }
            dst[full] = table[f];
        }
        if let Some(gi) = dst.iter().position(|&c| c == 0xff) {
            return Err(format!("2-bit code 3 (not a ternary value) in row {row}, columns {}..{}", gi * g, gi * g + g));
        }
    }
    Ok(pack_group_codes(tl, &gc, n, k, buffer_beats, bus_bytes))
}

/// Group codes of the whole groups of one packed row (fields at `shift`).
#[inline]
fn hf_groups<const G: usize>(src: &[u8], shift: usize, table: &[u8], dst: &mut [u8]) {
    for (d, b) in dst.iter_mut().zip(src.chunks_exact(G)) {
        let mut f = 0usize;
        for (i, &x) in b.iter().enumerate() {
            f |= (((x >> shift) & 3) as usize) << (2 * i);
        }
        *d = table[f];
    }
}

fn pack_group_codes(tl: &Tlmm, gc: &[u8], n: usize, k: usize, buffer_beats: usize, bus_bytes: usize) -> Vec<u8> {
    let groups = tl.groups(k);
    let (steps, blocks) = (tl.steps(k), tl.blocks(n));
    let stride = tl.beat_stride(bus_bytes);
    let cw = tl.code_bits();
    let mut out = vec![0u8; steps * blocks * stride];
    let mut beat_i = 0;
    for (first, size) in tl.chunks(n, k, buffer_beats) {
        for s in 0..steps {
            for b in first..first + size {
                let beat = &mut out[beat_i * stride..(beat_i + 1) * stride];
                beat_i += 1;
                for c in 0..tl.cols {
                    let row = b * tl.cols + c;
                    if row >= n {
                        break;
                    }
                    let g0 = s * tl.tables;
                    let g1 = (g0 + tl.tables).min(groups);
                    let src = &gc[row * groups + g0..row * groups + g1.max(g0)];
                    // pack up to 56 bits at a time
                    let mut at = c * tl.tables * cw;
                    let mut acc = 0u64;
                    let mut nbits = 0;
                    for &code in src {
                        acc |= (code as u64) << nbits;
                        nbits += cw;
                        if nbits + cw > 56 {
                            put_bits(beat, at, nbits, acc);
                            at += nbits;
                            acc = 0;
                            nbits = 0;
                        }
                    }
                    if nbits > 0 {
                        put_bits(beat, at, nbits, acc);
                    }
                }
            }
        }
    }
    out
}

/// bfloat16 bits to binary16 bits, round to nearest even (as `f16::from_f32(bf16.to_f32())`):
/// values in fp16's normal range only rebias the exponent (the 7-bit fraction fits in 10 bits);
/// the rest (subnormal, overflow, NaN) take the general conversion.
#[inline]
pub fn bf16_to_f16(b: u16) -> u16 {
    let e = (b >> 7) & 0xff;
    if (113..=142).contains(&e) {
        (b & 0x8000) | ((e - 112) << 10) | ((b & 0x7f) << 3)
    } else {
        half::f16::from_f32(half::bf16::from_bits(b).to_f32()).to_bits()
    }
}

/// One row of [`crate::quant::HeadRows::quantize`], fast and bit-identical: `max = max|w|` (f64),
/// scale `max / qmax` (rounded to f32), codes `round_half_even(w * qmax / max)` in f64. The
/// rounding adds and subtracts 1.5 * 2^52 (exact round-to-nearest-even for |x| < 2^51) instead
/// of a libm call, so the loop vectorizes. Returns the scale.
pub fn head_row(row: &[f32], qmax: i32, codes: &mut [i8]) -> f32 {
    let max = row.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    head_row_with_max(row, max, qmax, codes)
}

/// [`head_row`] with `max = max|w|` already known.
pub fn head_row_with_max(row: &[f32], max: f64, qmax: i32, codes: &mut [i8]) -> f32 {
    if max == 0.0 {
        codes.iter_mut().for_each(|c| *c = 0);
        return 0.0;
    }
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
    let q = qmax as f64;
    for (c, &v) in codes.iter_mut().zip(row) {
        let x = v as f64 * q / max;
        *c = ((x + MAGIC) - MAGIC).clamp(-q, q) as i8;
    }
    (max / q) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn bf16_to_f16_equals_the_general_conversion_for_every_value() {
        for b in 0..=u16::MAX {
            let want = half::f16::from_f32(half::bf16::from_bits(b).to_f32());
            let got = half::f16::from_bits(bf16_to_f16(b));
            assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{b:#06x}");
        }
    }

    #[test]
    fn head_rows_equal_the_definition() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        for i in 0..400 {
            let qmax = if i % 2 == 0 { 127 } else { 7 };
            let cols = rng.random_range(1..300);
            // include exact ties: odd multiples of max/(2 qmax)
            let max = rng.random_range(0.01f32..4.0);
            let ties = 2 * qmax;
            let row: Vec<f32> = (0..cols)
                .map(|i| {
                    if i % 3 == 0 {
                        max * rng.random_range(-ties..=ties) as f32 / ties as f32
                    } else {
                        rng.random_range(-max..max)
                    }
                })
                .collect();
            let want = crate::quant::HeadRows::quantize(&row, 1, cols, qmax);
            let mut codes = vec![0i8; cols];
            let s = head_row(&row, qmax, &mut codes);
            assert_eq!((codes, s), (want.codes, want.scales[0]), "qmax {qmax}");
        }
    }

    #[test]
    fn from_hf_packed_equals_unpack_then_pack() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..40 {
            let tl = Tlmm {
                g: rng.random_range(2..=4),
                tables: rng.random_range(1..=9),
                cols: rng.random_range(1..=9),
                acc_bits: 24,
            };
            let (n, k) = (4 * rng.random_range(1..10), rng.random_range(1..50));
            let codes: Vec<i8> = (0..n * k).map(|_| rng.random_range(-1..=1)).collect();
            let packed = crate::import::ternary::pack_hf(&codes, n, k);
            let (buf, bus) = (rng.random_range(1..40), [4, 16][rng.random_range(0..2)]);
            assert_eq!(pack_image_hf(&tl, &packed, n, k, buf, bus).unwrap(), tl.pack_image(&codes, n, k, buf, bus));
        }
        let tl = Tlmm { g: 3, tables: 2, cols: 2, acc_bits: 24 };
        assert!(pack_image_hf(&tl, &[0x55, 0xc0 | 0x15], 8, 1, 4, 4).unwrap_err().contains("code 3"));
    }

    #[test]
    fn equals_the_definition() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..60 {
            let tl = Tlmm {
                g: rng.random_range(2..=4),
                tables: rng.random_range(1..=9),
                cols: rng.random_range(1..=9),
                acc_bits: 24,
            };
            let (n, k) = (rng.random_range(1..40), rng.random_range(1..60));
            let codes: Vec<i8> = (0..n * k).map(|_| rng.random_range(-1..=1)).collect();
            let (buf, bus) = (rng.random_range(1..40), [4, 16, 32][rng.random_range(0..3)]);
            assert_eq!(
                pack_image(&tl, &codes, n, k, buf, bus),
                tl.pack_image(&codes, n, k, buf, bus),
                "{tl:?} n {n} k {k} buffer {buf} bus {bus}"
            );
        }
    }
}
