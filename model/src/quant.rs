//! Weight quantizers and quantized weight containers: what the import step produces from float
//! weights and what both the bit-exact reference and the `w158a8` float model consume.

/// Weights of one quantized linear layer `y = W x`, `W` is `rows x cols` (out x in), row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum QWeights {
    /// BitNet b1.58: codes in {-1, 0, 1}; `W ~= code * scale`.
    Ternary {
        /// Row-major codes.
        codes: Vec<i8>,
        /// Per-tensor scale (absmean of the float weights).
        scale: f32,
    },
    /// Group-wise 2-bit: odd levels {-3, -1, 1, 3} (two's-complement 2-bit code `c` stands for
    /// level `2c + 1`); `W ~= level * mult[row][group] * scale`.
    Int2 {
        /// Row-major levels in {-3, -1, 1, 3}.
        levels: Vec<i8>,
        /// Group size along the input dimension.
        group: usize,
        /// Per-(row, group) multipliers, 1..=255, row-major `[rows][cols / group]`.
        mult: Vec<u8>,
        /// Per-tensor scale.
        scale: f32,
    },
}

/// A quantized linear layer.
#[derive(Debug, Clone, PartialEq)]
pub struct QLinear {
    /// Output features.
    pub rows: usize,
    /// Input features.
    pub cols: usize,
    /// The weights.
    pub w: QWeights,
}

impl QLinear {
    /// Per-tensor scale.
    pub fn scale(&self) -> f32 {
        match &self.w {
            QWeights::Ternary { scale, .. } | QWeights::Int2 { scale, .. } => *scale,
        }
    }

    /// Integer matrix-vector product: `acc[r] = sum_c W[r][c] * x[c]` (int2: each group's sum
    /// times its multiplier). Exact in int32 for every config that validates.
    pub fn matvec(&self, x: &[i8]) -> Vec<i32> {
        assert_eq!(x.len(), self.cols, "matvec input length");
        match &self.w {
            QWeights::Ternary { codes, .. } => codes
                .chunks_exact(self.cols)
                .map(|row| row.iter().zip(x).map(|(&w, &a)| w as i32 * a as i32).sum())
                .collect(),
            QWeights::Int2 { levels, group, mult, .. } => {
                let groups = self.cols / group;
                levels
                    .chunks_exact(self.cols)
                    .enumerate()
                    .map(|(r, row)| {
                        (0..groups)
                            .map(|g| {
                                let s: i32 =
                                    (0..*group).map(|i| row[g * group + i] as i32 * x[g * group + i] as i32).sum();
                                s * mult[r * groups + g] as i32
                            })
                            .sum()
                    })
                    .collect()
            }
        }
    }

    /// The weights as floats (dequantized), row-major; for the `w158a8` float model.
    pub fn dequantize(&self) -> Vec<f32> {
        match &self.w {
            QWeights::Ternary { codes, scale } => codes.iter().map(|&c| c as f32 * scale).collect(),
            QWeights::Int2 { levels, group, mult, scale } => {
                let groups = self.cols / group;
                levels
                    .iter()
                    .enumerate()
                    .map(|(i, &l)| {
                        let (r, c) = (i / self.cols, i % self.cols);
                        l as f32 * (mult[r * groups + c / group] as f32 * scale)
                    })
                    .collect()
            }
        }
    }
}

/// BitNet b1.58 absmean quantization (as Hugging Face's `WeightQuant`): `m = max(mean|W|,
/// 1e-5)`, `code = clamp(round_half_even(W * (1/m)), -1, 1)`, scale `m`. The mean is summed in
/// f64 and rounded to f32; `1/m` and the product are f32, as in the published code.
pub fn quantize_ternary(w: &[f32], rows: usize, cols: usize) -> QLinear {
    assert_eq!(w.len(), rows * cols);
    let mean = (w.iter().map(|v| v.abs() as f64).sum::<f64>() / w.len() as f64) as f32;
    let m = mean.max(1e-5);
    let inv = 1.0f32 / m;
    let codes = w.iter().map(|&v| (v * inv).round_ties_even().clamp(-1.0, 1.0) as i8).collect();
    QLinear { rows, cols, w: QWeights::Ternary { codes, scale: m } }
}

/// Group-wise 2-bit quantization with odd levels {-3, -1, 1, 3}: per (row, group) the step is
/// `max|W| / 3`; steps are expressed as `mult * scale` with `scale = max step / 255` and `mult`
/// rounded half to even into 1..=255; each weight takes the nearest level.
pub fn quantize_int2(w: &[f32], rows: usize, cols: usize, group: usize) -> QLinear {
    assert_eq!(w.len(), rows * cols);
    assert!(group > 0 && cols % group == 0, "group {group} must divide {cols}");
    let groups = cols / group;
    let steps: Vec<f64> = (0..rows * groups)
        .map(|rg| {
            let (r, g) = (rg / groups, rg % groups);
            let s = &w[r * cols + g * group..r * cols + (g + 1) * group];
            s.iter().fold(0f64, |m, v| m.max(v.abs() as f64)) / 3.0
        })
        .collect();
    let max_step = steps.iter().cloned().fold(0f64, f64::max);
    let scale = if max_step > 0.0 { (max_step / 255.0) as f32 } else { 1e-5 };
    let mult: Vec<u8> = steps.iter().map(|s| (s / scale as f64).round_ties_even().clamp(1.0, 255.0) as u8).collect();
    let levels = w
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let (r, c) = (i / cols, i % cols);
            let step = mult[r * groups + c / group] as f64 * scale as f64;
            // nearest odd integer to v/step, clamped to +-3
            let t = v as f64 / step;
            let odd = 2.0 * ((t - 1.0) / 2.0).round_ties_even() + 1.0;
            odd.clamp(-3.0, 3.0) as i8
        })
        .collect();
    QLinear { rows, cols, w: QWeights::Int2 { levels, group, mult, scale } }
}

/// The LM head in hardware form: int8 or int4 codes with one f32 scale per row (vocabulary entry).
#[derive(Debug, Clone, PartialEq)]
pub struct HeadRows {
    /// Number of rows (vocabulary).
    pub rows: usize,
    /// Row length (hidden).
    pub cols: usize,
    /// Row-major codes in -qmax..=qmax, one per element.
    pub codes: Vec<i8>,
    /// Per-row scales: `max|row| / qmax`.
    pub scales: Vec<f32>,
}

impl HeadRows {
    /// Per-row absmax to `-qmax..=qmax` (127 for int8, 7 for int4): `scale = max|w| / qmax` (f64,
    /// rounded to f32); codes `round_half_even(w * qmax / max|w|)` evaluated in f64.
    pub fn quantize(w: &[f32], rows: usize, cols: usize, qmax: i32) -> HeadRows {
        assert_eq!(w.len(), rows * cols);
        let q = qmax as f64;
        let mut codes = Vec::with_capacity(w.len());
        let mut scales = Vec::with_capacity(rows);
        for row in w.chunks_exact(cols) {
            let max = row.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
            if max == 0.0 {
                codes.extend(std::iter::repeat_n(0i8, cols));
                scales.push(0.0);
                continue;
            }
            codes.extend(row.iter().map(|&v| (v as f64 * q / max).round_ties_even().clamp(-q, q) as i8));
            scales.push((max / q) as f32);
        }
        HeadRows { rows, cols, codes, scales }
    }

    /// `acc[r] = sum_c code[r][c] * x[c]` with int16 activations, exact in i64.
    pub fn matvec(&self, x: &[i16]) -> Vec<i64> {
        assert_eq!(x.len(), self.cols);
        self.codes
            .chunks_exact(self.cols)
            .map(|row| row.iter().zip(x).map(|(&w, &a)| w as i64 * a as i64).sum())
            .collect()
    }
}

/// Codes in device memory at `bits` per code: bytes for 8; for 4, two's-complement nibbles, two
/// per byte, element `2i` in the low nibble of byte `i` (`codes.len()` even).
pub fn pack_codes(codes: &[i8], bits: u32) -> Vec<u8> {
    match bits {
        8 => codes.iter().map(|&c| c as u8).collect(),
        4 => {
            assert!(codes.len() % 2 == 0, "int4 codes come in pairs");
            codes.chunks_exact(2).map(|p| (p[0] as u8 & 0xf) | (p[1] as u8) << 4).collect()
        }
        _ => panic!("codes are 4 or 8 bits, not {bits}"),
    }
}

/// The inverse of [`pack_codes`]: `n` codes from `bytes`.
pub fn unpack_codes(bytes: &[u8], n: usize, bits: u32) -> Vec<i8> {
    match bits {
        8 => bytes[..n].iter().map(|&b| b as i8).collect(),
        4 => (0..n).map(|i| ((bytes[i / 2] >> (4 * (i % 2))) << 4) as i8 >> 4).collect(),
        _ => panic!("codes are 4 or 8 bits, not {bits}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ternary_absmean_hand_worked() {
        // mean |w| = (0.5 + 1.0 + 0.0 + 1.5 + 0.25 + 0.75) / 6 = 0.666..
        let w = [0.5, -1.0, 0.0, 1.5, 0.25, -0.75];
        let q = quantize_ternary(&w, 2, 3);
        let QWeights::Ternary { codes, scale } = &q.w else { panic!() };
        // w / m = 0.75, -1.5, 0, 2.25, 0.375, -1.125 -> 1, -1 (tie? no: -1.5 -> -2 -> clamp -1), 0, 1, 0, -1
        assert_eq!(codes, &vec![1, -1, 0, 1, 0, -1]);
        assert!((scale - 0.6666667).abs() < 1e-6);
        assert_eq!(q.matvec(&[10, 20, 30]), vec![10 - 20, 10 - 30]);
    }

    #[test]
    fn ternary_all_zero_and_extremes() {
        let q = quantize_ternary(&[0.0; 6], 2, 3);
        assert_eq!(q.matvec(&[127, -128, 5]), vec![0, 0]);
        let q = quantize_ternary(&[1.0; 6], 2, 3);
        assert_eq!(q.matvec(&[-128, -128, -128]), vec![-384, -384]);
    }

    #[test]
    fn int2_levels_and_group_multipliers() {
        let w = [3.0, 1.0, -1.0, -3.0, 0.6, 0.2, -0.2, -0.6];
        let q = quantize_int2(&w, 1, 8, 4);
        let QWeights::Int2 { levels, mult, .. } = &q.w else { panic!() };
        assert_eq!(levels, &vec![3, 1, -1, -3, 3, 1, -1, -3]);
        assert_eq!(mult, &vec![255, 51]); // steps 1.0 and 0.2 in units of 1/255
        let deq = q.dequantize();
        assert!((deq[0] - 3.0).abs() < 1e-5 && (deq[4] - 0.6).abs() < 1e-5);
        // group 0 sums to 0; group 1 gives level 3 times multiplier 51
        assert_eq!(q.matvec(&[1, 1, 1, 1, 1, 0, 0, 0]), vec![3 * 51]);
    }

    #[test]
    fn head_rows_symmetric() {
        let r = HeadRows::quantize(&[2.0, -1.0, 0.0, 0.0], 2, 2, 127);
        assert_eq!(r.codes, vec![127, -64, 0, 0]); // -63.5 -> -64 (tie to even)
        assert_eq!(r.scales, vec![2.0 / 127.0, 0.0]);
        // int4: -1 * 7 / 2 = -3.5 -> -4 (tie to even); 0.25 * 7 / 2 = 0.875 -> 1
        let r = HeadRows::quantize(&[2.0, -1.0, 0.25, -2.0], 1, 4, 7);
        assert_eq!(r.codes, vec![7, -4, 1, -7]);
        assert_eq!(r.scales, vec![2.0 / 7.0]);
    }

    #[test]
    fn int4_codes_pack_low_nibble_first_and_round_trip() {
        assert_eq!(pack_codes(&[1, -1, -7, 7], 4), vec![0xf1, 0x79]);
        let codes: Vec<i8> = (-7..=7).chain(-7..=7).collect();
        assert_eq!(unpack_codes(&pack_codes(&codes, 4), codes.len(), 4), codes);
        let bytes: Vec<i8> = (-127..=127).collect();
        assert_eq!(unpack_codes(&pack_codes(&bytes, 8), bytes.len(), 8), bytes);
    }
}
