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

/// Append `n` bits of `v` at bit `at` of `buf` (LSB first, bytes little-endian), OR-ing in.
#[inline]
fn put_bits(buf: &mut [u8], at: usize, n: usize, v: u64) {
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

/// [`Tlmm::pack_image`], fast: chunks of [`Tlmm::chunk_blocks`] row blocks, each chunk's beats in
/// (step, block) order, every beat padded to [`Tlmm::beat_stride`] bytes.
pub fn pack_image(tl: &Tlmm, codes: &[i8], n: usize, k: usize, buffer_beats: usize, bus_bytes: usize) -> Vec<u8> {
    assert_eq!(codes.len(), n * k);
    let gc = group_codes(tl, codes, n, k);
    let groups = tl.groups(k);
    let (steps, blocks) = (tl.steps(k), tl.blocks(n));
    let stride = tl.beat_stride(bus_bytes);
    let cw = tl.code_bits();
    let per_chunk = tl.chunk_blocks(n, k, buffer_beats);
    let mut out = vec![0u8; steps * blocks * stride];
    let mut beat_i = 0;
    for first in (0..blocks).step_by(per_chunk) {
        for s in 0..steps {
            for b in first..(first + per_chunk).min(blocks) {
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
                    // pack up to 64 bits at a time
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

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
