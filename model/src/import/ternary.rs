//! Ternary weight encodings found in released checkpoints, decoded to row-major codes in
//! {-1, 0, 1} (and encoded, for fixtures):
//!
//! - **Hugging Face packed BitNet** (`microsoft/bitnet-b1.58-2B-4T`; transformers
//!   `integrations/bitnet.py`, `pack_weights`/`unpack_weights`): a `rows x cols` ternary matrix is
//!   a uint8 tensor `[rows/4, cols]`. With `P = rows/4`, byte `[r][c]` holds the codes of rows
//!   `r`, `r + P`, `r + 2P`, `r + 3P` (column `c`) in bits `[1:0]`, `[3:2]`, `[5:4]`, `[7:6]`;
//!   each 2-bit field is `weight + 1` (so `3` never occurs).
//! - **GGUF TQ2_0** (llama.cpp `ggml-quants.c`): blocks of 256 weights along a row, 64 bytes of
//!   2-bit fields (`weight + 1`) and an fp16 scale `d`. Byte `j*32 + m` (j = 0, 1) holds weights
//!   `j*128 + l*32 + m` in bits `2l+1..2l` (l = 0..4).
//! - **GGUF TQ1_0**: blocks of 256, 48 bytes of five base-3 digits plus 4 bytes of four, then
//!   fp16 `d`. A byte holding digits `t_0..t_{n-1}` (each `weight + 1`, `t_0` most significant,
//!   four-digit bytes shifted up by one digit) stores `ceil(value * 256 / 243)`; digit `k` is
//!   `((byte * 3^k) mod 256) * 3 >> 8`. Bytes 0..32 hold weights `m + 32k`, bytes 32..48 weights
//!   `160 + m + 16k`, the 4 `qh` bytes weights `240 + j + 4k`.
//!
//! In both GGUF types each block has its own scale `d` (the block's absmax); trit's ternary
//! engine has one scale per tensor, so a tensor whose non-zero blocks disagree on `d` is an error.

/// Unpack a Hugging Face packed tensor (`[rows/4, cols]` bytes) to row-major codes.
pub fn unpack_hf(packed: &[u8], rows: usize, cols: usize) -> Result<Vec<i8>, String> {
    if rows % 4 != 0 {
        return Err(format!("{rows} output rows are not a multiple of 4 (four codes per byte)"));
    }
    let p = rows / 4;
    if packed.len() != p * cols {
        return Err(format!("{} packed bytes, expected {} ([{p}, {cols}])", packed.len(), p * cols));
    }
    let mut codes = vec![0i8; rows * cols];
    // For each of the four row blocks, a whole block at a time (sequential reads and writes).
    for i in 0..4 {
        let shift = 2 * i;
        let dst = &mut codes[i * p * cols..(i + 1) * p * cols];
        for (d, &b) in dst.iter_mut().zip(packed) {
            *d = ((b >> shift) & 3) as i8 - 1;
        }
    }
    if let Some(at) = codes.iter().position(|&c| c == 2) {
        let (row, col) = (at / cols, at % cols);
        return Err(format!(
            "2-bit code 3 (not a ternary value) at row {row}, column {col} (byte [{}, {col}], bits {})",
            row % p,
            2 * (row / p)
        ));
    }
    Ok(codes)
}

/// Pack row-major codes the Hugging Face way (inverse of [`unpack_hf`]).
pub fn pack_hf(codes: &[i8], rows: usize, cols: usize) -> Vec<u8> {
    assert!(rows % 4 == 0 && codes.len() == rows * cols);
    let p = rows / 4;
    let mut out = vec![0u8; p * cols];
    for (idx, &c) in codes.iter().enumerate() {
        let (row, col) = (idx / cols, idx % cols);
        out[(row % p) * cols + col] |= ((c + 1) as u8) << (2 * (row / p));
    }
    out
}

/// Weights per GGUF ternary block.
pub const QK: usize = 256;
/// Bytes of a TQ2_0 block.
pub const TQ2_BYTES: usize = 66;
/// Bytes of a TQ1_0 block.
pub const TQ1_BYTES: usize = 54;

/// Which GGUF ternary type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tq {
    /// TQ1_0 (1.6875 bits per weight).
    Tq1,
    /// TQ2_0 (2.0625 bits per weight).
    Tq2,
}

impl Tq {
    /// Bytes per 256-weight block.
    pub fn block_bytes(self) -> usize {
        match self {
            Tq::Tq1 => TQ1_BYTES,
            Tq::Tq2 => TQ2_BYTES,
        }
    }
}

fn trit(byte: u8, k: usize) -> i8 {
    let q = byte.wrapping_mul([1u8, 3, 9, 27, 81][k]);
    (((q as u16) * 3) >> 8) as i8 - 1
}

/// Decode GGUF ternary blocks to codes and each block's scale `d` (as f32, from fp16).
pub fn decode_tq(data: &[u8], t: Tq) -> Result<(Vec<i8>, Vec<f32>), String> {
    let bb = t.block_bytes();
    if data.len() % bb != 0 {
        return Err(format!("{} bytes is not a whole number of {bb}-byte blocks", data.len()));
    }
    let blocks = data.len() / bb;
    let mut codes = vec![0i8; blocks * QK];
    let mut scales = Vec::with_capacity(blocks);
    for (bi, (blk, out)) in data.chunks_exact(bb).zip(codes.chunks_exact_mut(QK)).enumerate() {
        let d = half::f16::from_le_bytes([blk[bb - 2], blk[bb - 1]]).to_f32();
        scales.push(d);
        match t {
            Tq::Tq2 => {
                for j in 0..2 {
                    for l in 0..4 {
                        for m in 0..32 {
                            let q = (blk[j * 32 + m] >> (2 * l)) & 3;
                            if q == 3 {
                                return Err(format!(
                                    "block {bi}: 2-bit code 3 (not a ternary value) at weight {}",
                                    j * 128 + l * 32 + m
                                ));
                            }
                            out[j * 128 + l * 32 + m] = q as i8 - 1;
                        }
                    }
                }
            }
            Tq::Tq1 => {
                for k in 0..5 {
                    for m in 0..32 {
                        out[m + 32 * k] = trit(blk[m], k);
                    }
                    for m in 0..16 {
                        out[160 + m + 16 * k] = trit(blk[32 + m], k);
                    }
                }
                for k in 0..4 {
                    for j in 0..4 {
                        out[240 + j + 4 * k] = trit(blk[48 + j], k);
                    }
                }
            }
        }
    }
    Ok((codes, scales))
}

fn tq1_byte(digits: &[i8]) -> u8 {
    // most significant first; four-digit bytes are shifted up one digit
    let mut v: u16 = digits.iter().fold(0u16, |a, &w| a * 3 + (w + 1) as u16);
    for _ in digits.len()..5 {
        v *= 3;
    }
    ((v * 256).div_ceil(243)) as u8
}

/// Encode codes (a multiple of 256) as GGUF ternary blocks, every block with scale `d`.
pub fn encode_tq(codes: &[i8], d: half::f16, t: Tq) -> Vec<u8> {
    assert!(codes.len() % QK == 0);
    let mut out = Vec::with_capacity(codes.len() / QK * t.block_bytes());
    for blk in codes.chunks_exact(QK) {
        match t {
            Tq::Tq2 => {
                for j in 0..2 {
                    for m in 0..32 {
                        let b = (0..4).fold(0u8, |a, l| a | (((blk[j * 128 + l * 32 + m] + 1) as u8) << (2 * l)));
                        out.push(b);
                    }
                }
            }
            Tq::Tq1 => {
                for m in 0..32 {
                    let ds: Vec<i8> = (0..5).map(|k| blk[m + 32 * k]).collect();
                    out.push(tq1_byte(&ds));
                }
                for m in 0..16 {
                    let ds: Vec<i8> = (0..5).map(|k| blk[160 + m + 16 * k]).collect();
                    out.push(tq1_byte(&ds));
                }
                for j in 0..4 {
                    let ds: Vec<i8> = (0..4).map(|k| blk[240 + j + 4 * k]).collect();
                    out.push(tq1_byte(&ds));
                }
            }
        }
        out.extend_from_slice(&d.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_packing_is_block_strided() {
        // 8 rows x 1 column: P = 2, byte 0 holds rows 0, 2, 4, 6; byte 1 rows 1, 3, 5, 7.
        let codes = [-1i8, 0, 1, -1, 0, 1, 1, 0];
        let p = pack_hf(&codes, 8, 1);
        // byte 0: rows 0,2,4,6 = -1,1,0,1 -> fields 0,2,1,2 -> 0b10_01_10_00
        assert_eq!(p, vec![0b1001_1000, 0b0110_0001]);
        assert_eq!(unpack_hf(&p, 8, 1).unwrap(), codes);
        assert!(unpack_hf(&[0xff, 0], 8, 1).unwrap_err().contains("code 3"));
    }

    #[test]
    fn transformers_docstring_example() {
        // unpack_weights docstring: packed [[0b10100001, 0b00011000], [0b10010000, 0b00001010]]
        let packed = [0b1010_0001u8, 0b0001_1000, 0b1001_0000, 0b0000_1010];
        let want = [0i8, -1, -1, 1, -1, 1, -1, 1, 1, 0, 0, -1, 1, -1, 1, -1];
        assert_eq!(unpack_hf(&packed, 8, 2).unwrap(), want);
    }

    #[test]
    fn tq_blocks_round_trip_and_match_hand_decoding() {
        let codes: Vec<i8> = (0..512).map(|i| ((i * 7 + i / 5) % 3) as i8 - 1).collect();
        for t in [Tq::Tq1, Tq::Tq2] {
            let d = half::f16::from_f32(0.125);
            let enc = encode_tq(&codes, d, t);
            assert_eq!(enc.len(), 2 * t.block_bytes());
            let (dec, s) = decode_tq(&enc, t).unwrap();
            assert_eq!(dec, codes, "{t:?}");
            assert_eq!(s, vec![0.125, 0.125]);
        }
        // TQ1_0 by hand: digits (w+1) 2,0,1,2,1 = 2*81 + 0 + 9 + 6 + 1 = 178 -> ceil(178*256/243) = 188
        assert_eq!(tq1_byte(&[1, -1, 0, 1, 0]), 188);
        assert_eq!((0..5).map(|k| trit(188, k)).collect::<Vec<_>>(), vec![1, -1, 0, 1, 0]);
        // TQ2_0 by hand: weights 0, 32, 64, 96 of the block share byte 0.
        let mut one = vec![0i8; 256];
        one[0] = 1;
        one[32] = -1;
        one[96] = 1;
        let enc = encode_tq(&one, half::f16::from_f32(1.0), Tq::Tq2);
        assert_eq!(enc[0], 0b10_01_00_10);
    }
}
