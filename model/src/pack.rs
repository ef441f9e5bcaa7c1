//! The TLMM data formats, defined once: how ternary weights become per-group table indices and
//! how weights, activations and results are laid out in the engine's beats. The generator
//! (widths in the manifest), the host (device weight image) and the tests all use these.
//!
//! A group of `G` ternary weights `w_0..w_{G-1}` is the balanced-ternary number
//! `m = sum_i w_i 3^i`. Its code is `sign << MAG_W | |m|` with `sign = (m < 0)`: the engine
//! stores only the `(3^G - 1) / 2` tables entries for positive `m` and negates on lookup
//! (`hdl/rtl/tlmm_table_build.sv` explains the trick).
//!
//! Beats are little-endian bit vectors (bit `i` is bit `i % 32` of word `i / 32`):
//! - weight beat `(step s, block b)`: for row `c < COLS`, table `j < TABLES`, the code of row
//!   `b*COLS + c`, group `s*TABLES + j` at bit `(c*TABLES + j) * CODE_W`;
//! - activation beat `(step s, token t)`: element `i < G` of group `j` (input index
//!   `(s*TABLES + j)*G + i`) as int8 at bit `(j*G + i) * 8`;
//! - result beat `(block b, token t)`: row `b*COLS + c` as a signed `ACC_W`-bit integer at bit
//!   `c * ACC_W`.
//!
//! Rows beyond `N` and inputs beyond `K` are zero (zero weights contribute nothing).

use crate::config::Config;

/// A bit vector in 32-bit little-endian words, the unit the simulator and the device take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bits {
    /// Width in bits.
    pub width: usize,
    /// `ceil(width / 32)` words; bits above `width` are zero.
    pub words: Vec<u32>,
}

impl Bits {
    /// All-zero vector of `width` bits.
    pub fn zero(width: usize) -> Bits {
        Bits { width, words: vec![0; width.div_ceil(32)] }
    }

    /// Write the low `n` bits of `v` at bit `at`.
    pub fn set(&mut self, at: usize, n: usize, v: u64) {
        assert!(n <= 64 && at + n <= self.width, "field {at}+{n} outside {} bits", self.width);
        for k in 0..n {
            let bit = (v >> k) & 1;
            let (w, b) = ((at + k) / 32, (at + k) % 32);
            self.words[w] = (self.words[w] & !(1 << b)) | ((bit as u32) << b);
        }
    }

    /// Read `n` bits at bit `at`, zero-extended.
    pub fn get(&self, at: usize, n: usize) -> u64 {
        assert!(n <= 64 && at + n <= self.width);
        (0..n).fold(0u64, |acc, k| {
            let (w, b) = ((at + k) / 32, (at + k) % 32);
            acc | ((((self.words[w] >> b) & 1) as u64) << k)
        })
    }

    /// Read `n` bits at bit `at` as a two's-complement signed value.
    pub fn get_signed(&self, at: usize, n: usize) -> i64 {
        let v = self.get(at, n);
        if n < 64 && (v >> (n - 1)) & 1 == 1 {
            (v | (!0u64 << n)) as i64
        } else {
            v as i64
        }
    }
}

/// The TLMM engine's shape: group size, tables per step, rows per cycle, accumulator width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlmm {
    /// Activations per group (G).
    pub g: usize,
    /// Tables (groups) per step.
    pub tables: usize,
    /// Output rows per cycle.
    pub cols: usize,
    /// Accumulator bits.
    pub acc_bits: usize,
}

impl Tlmm {
    /// The engine shape a config asks for.
    pub fn from_config(cfg: &Config) -> Tlmm {
        let e = &cfg.engine;
        Tlmm { g: e.tlmm_group, tables: e.tables_per_step, cols: e.columns_per_cycle, acc_bits: e.acc_bits as usize }
    }

    /// Stored table entries per group: the positive balanced-ternary patterns, (3^G - 1) / 2.
    pub fn entries(&self) -> usize {
        (3usize.pow(self.g as u32) - 1) / 2
    }

    /// Bits of the magnitude index (0..=entries).
    pub fn mag_bits(&self) -> usize {
        (usize::BITS - self.entries().leading_zeros()) as usize
    }

    /// Bits of one group code (sign + magnitude): 4, 5, 7 for G = 2, 3, 4.
    pub fn code_bits(&self) -> usize {
        self.mag_bits() + 1
    }

    /// Smallest signed width holding a table entry (|entry| <= 128 G).
    pub fn entry_bits(&self) -> usize {
        let max = 128 * self.g; // magnitude bound; -128*G and +127*G both fit in this width
        (usize::BITS - max.leading_zeros()) as usize + 1
    }

    /// Bits of an activation beat.
    pub fn act_beat_bits(&self) -> usize {
        self.tables * self.g * 8
    }

    /// Bits of a weight beat.
    pub fn wgt_beat_bits(&self) -> usize {
        self.cols * self.tables * self.code_bits()
    }

    /// Bits of a result beat.
    pub fn out_beat_bits(&self) -> usize {
        self.cols * self.acc_bits
    }

    /// Groups covering `k` inputs.
    pub fn groups(&self, k: usize) -> usize {
        k.div_ceil(self.g)
    }

    /// Steps covering `k` inputs.
    pub fn steps(&self, k: usize) -> usize {
        self.groups(k).div_ceil(self.tables)
    }

    /// Blocks covering `n` rows.
    pub fn blocks(&self, n: usize) -> usize {
        n.div_ceil(self.cols)
    }

    /// Lookups per cycle.
    pub fn lookups_per_cycle(&self) -> usize {
        self.cols * self.tables
    }

    /// Table lookups an `n x k` matrix-vector product needs (one per row and group).
    pub fn lookups_needed(&self, n: usize, k: usize) -> usize {
        n * self.groups(k)
    }

    /// The code of one group of ternary weights (missing trailing weights are zero).
    pub fn group_code(&self, w: &[i8]) -> u32 {
        assert!(w.len() <= self.g);
        let m: i32 = w
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                assert!((-1..=1).contains(&x), "weight {x} is not ternary");
                x as i32 * 3i32.pow(i as u32)
            })
            .sum();
        (((m < 0) as u32) << self.mag_bits()) | m.unsigned_abs()
    }

    /// Weight beats of a row-major `n x k` ternary matrix, in (step, block) order.
    pub fn pack_weights(&self, codes: &[i8], n: usize, k: usize) -> Vec<Bits> {
        assert_eq!(codes.len(), n * k);
        let cw = self.code_bits();
        let mut beats = Vec::with_capacity(self.steps(k) * self.blocks(n));
        for s in 0..self.steps(k) {
            for b in 0..self.blocks(n) {
                let mut beat = Bits::zero(self.wgt_beat_bits());
                for c in 0..self.cols {
                    let row = b * self.cols + c;
                    if row >= n {
                        continue;
                    }
                    for j in 0..self.tables {
                        let start = (s * self.tables + j) * self.g;
                        if start >= k {
                            continue;
                        }
                        let end = (start + self.g).min(k);
                        let code = self.group_code(&codes[row * k + start..row * k + end]);
                        beat.set((c * self.tables + j) * cw, cw, code as u64);
                    }
                }
                beats.push(beat);
            }
        }
        beats
    }

    /// Activation beats of one token's `k` int8 inputs, one per step.
    pub fn pack_activations(&self, x: &[i8]) -> Vec<Bits> {
        let k = x.len();
        (0..self.steps(k))
            .map(|s| {
                let mut beat = Bits::zero(self.act_beat_bits());
                for j in 0..self.tables {
                    for i in 0..self.g {
                        let idx = (s * self.tables + j) * self.g + i;
                        if idx < k {
                            beat.set((j * self.g + i) * 8, 8, x[idx] as u8 as u64);
                        }
                    }
                }
                beat
            })
            .collect()
    }

    /// Bytes one weight beat occupies in device memory: its bits rounded up to whole `bus_bytes`
    /// words (the AXI data width), so every beat starts on a bus word.
    pub fn beat_stride(&self, bus_bytes: usize) -> usize {
        self.wgt_beat_bits().div_ceil(8).div_ceil(bus_bytes) * bus_bytes
    }

    /// Row blocks per full chunk when an `n x k` matrix is streamed through a weight buffer of
    /// `buffer_beats` beats: as many blocks as fit with all their steps (at least one). A matrix
    /// larger than a quarter of the buffer is cut into chunks of at most a quarter: the buffer is
    /// a ring where chunks load while earlier ones wait and run, and the next matrix's first
    /// chunks are prefetched -- unless one block's steps do not fit a quarter, then chunks of the
    /// whole buffer load and run in turn. `op_linear.sv` (the loader's L_SIZE) applies the same
    /// rule.
    pub fn chunk_blocks(&self, n: usize, k: usize, buffer_beats: usize) -> usize {
        let (steps, blocks) = (self.steps(k), self.blocks(n).max(1));
        let cap = if self.double_buffered(n, k, buffer_beats) { buffer_beats / 4 } else { buffer_beats };
        (cap / steps).clamp(1, blocks)
    }

    /// Whether an `n x k` matrix streams through the weight buffer in chunks that load while
    /// others run: it does not fit a quarter of the buffer, and one block's steps do.
    pub fn double_buffered(&self, n: usize, k: usize, buffer_beats: usize) -> bool {
        let (steps, blocks) = (self.steps(k), self.blocks(n).max(1));
        blocks * steps > buffer_beats / 4 && 4 * steps <= buffer_beats
    }

    /// Cycles the engine takes to fill one pass's tables: one entry per cycle, entries 0 to
    /// [`Tlmm::entries`] (tlmm_lookup's FILL). A pass sweeps a chunk's blocks while the next
    /// pass's tables fill, so it takes at least this long.
    pub fn fill_cycles(&self) -> usize {
        self.entries() + 1
    }

    /// Blocks of an *edge* chunk, given a full chunk's: an eighth of it (rounded up), so the
    /// engine starts computing after a short load and the run after the last load is short; but
    /// not fewer than [`Tlmm::fill_cycles`], which a pass's sweep over the chunk's blocks hides
    /// only if it is at least that long; and not more than a full chunk.
    pub fn edge_blocks(&self, full: usize) -> usize {
        full.div_ceil(8).max(self.fill_cycles()).min(full)
    }

    /// The chunks an `n x k` matrix streams through the weight buffer in, as (first block,
    /// blocks): full chunks of [`Tlmm::chunk_blocks`] blocks, except that a double-buffered
    /// matrix starts and ends with an edge chunk ([`Tlmm::edge_blocks`]) and that a middle
    /// remainder shorter than [`Tlmm::fill_cycles`] takes what it lacks from the chunk before.
    /// `op_linear.sv` (the loader's chunk size) applies the same rule.
    pub fn chunks(&self, n: usize, k: usize, buffer_beats: usize) -> Vec<(usize, usize)> {
        let blocks = self.blocks(n).max(1);
        let full = self.chunk_blocks(n, k, buffer_beats);
        let edge = self.edge_blocks(full);
        let mut out = Vec::new();
        let mut first = 0;
        while first < blocks {
            let rest = blocks - first;
            let size = if !self.double_buffered(n, k, buffer_beats) || blocks <= full {
                rest.min(full)
            } else if first == 0 || rest <= edge {
                rest.min(edge)
            } else {
                // Full chunks up to the last edge, except that a remainder shorter than a table
                // fill would wait on fills: the chunk before it gives it the blocks it lacks.
                let middle = rest - edge;
                if full >= self.fill_cycles() && middle > full && middle - full < self.fill_cycles() {
                    middle - self.fill_cycles()
                } else {
                    middle.min(full)
                }
            };
            out.push((first, size));
            first += size;
        }
        out
    }

    /// The device weight image of an `n x k` ternary matrix: its [`Tlmm::chunks`] one after the
    /// other, each chunk's beats in (step, block) order, every beat padded to
    /// [`Tlmm::beat_stride`]. This is what the engine streams into its buffer, chunk by chunk.
    pub fn pack_image(&self, codes: &[i8], n: usize, k: usize, buffer_beats: usize, bus_bytes: usize) -> Vec<u8> {
        let beats = self.pack_weights(codes, n, k); // (step, block) order, all blocks
        let (steps, blocks) = (self.steps(k), self.blocks(n));
        let stride = self.beat_stride(bus_bytes);
        let mut out = Vec::with_capacity(steps * blocks * stride);
        for (first, size) in self.chunks(n, k, buffer_beats) {
            for s in 0..steps {
                for b in first..first + size {
                    let beat = &beats[s * blocks + b];
                    let start = out.len();
                    out.extend(beat.words.iter().flat_map(|w| w.to_le_bytes()));
                    out.resize(start + stride, 0);
                }
            }
        }
        out
    }

    /// Inverse of [`Tlmm::pack_image`]: the row-major ternary codes.
    pub fn unpack_image(&self, image: &[u8], n: usize, k: usize, buffer_beats: usize, bus_bytes: usize) -> Vec<i8> {
        let (steps, blocks) = (self.steps(k), self.blocks(n));
        let (stride, cw, mw) = (self.beat_stride(bus_bytes), self.code_bits(), self.mag_bits());
        assert!(image.len() >= steps * blocks * stride, "weight image too short");
        let mut codes = vec![0i8; n * k];
        let mut idx = 0;
        for (first, size) in self.chunks(n, k, buffer_beats) {
            for s in 0..steps {
                for b in first..first + size {
                    let bytes = &image[idx * stride..(idx + 1) * stride];
                    idx += 1;
                    let words = bytes.chunks(4).map(|c| c.iter().rev().fold(0u32, |a, &x| a << 8 | x as u32)).collect();
                    let beat = Bits { width: stride * 8, words };
                    for c in 0..self.cols {
                        let row = b * self.cols + c;
                        for j in 0..self.tables {
                            let code = beat.get((c * self.tables + j) * cw, cw) as i32;
                            let mut m = code & ((1 << mw) - 1);
                            if code >> mw & 1 == 1 {
                                m = -m;
                            }
                            // balanced-ternary digits of m are the group's weights
                            for i in 0..self.g {
                                let mut d = m.rem_euclid(3);
                                if d == 2 {
                                    d = -1;
                                }
                                m = (m - d) / 3;
                                let col = (s * self.tables + j) * self.g + i;
                                if row < n && col < k {
                                    codes[row * k + col] = d as i8;
                                }
                            }
                        }
                    }
                }
            }
        }
        codes
    }

    /// Rows of one result beat of block `b` (rows `>= n` dropped).
    pub fn unpack_result(&self, beat: &Bits, b: usize, n: usize) -> Vec<i32> {
        (0..self.cols)
            .filter(|c| b * self.cols + c < n)
            .map(|c| beat.get_signed(c * self.acc_bits, self.acc_bits) as i32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(g: usize) -> Tlmm {
        Tlmm { g, tables: 2, cols: 2, acc_bits: 24 }
    }

    #[test]
    fn code_widths_match_tellme() {
        assert_eq!((t(2).entries(), t(2).code_bits()), (4, 4));
        assert_eq!((t(3).entries(), t(3).code_bits()), (13, 5)); // TeLLMe: 5-bit index
        assert_eq!((t(4).entries(), t(4).code_bits()), (40, 7));
        assert_eq!(t(3).entry_bits(), 10); // TeLLMe: 10-bit table entries
    }

    #[test]
    fn group_codes_are_balanced_ternary_with_sign() {
        let g = t(3);
        assert_eq!(g.group_code(&[0, 0, 0]), 0);
        assert_eq!(g.group_code(&[1, 0, 0]), 1);
        assert_eq!(g.group_code(&[0, 1, 0]), 3);
        assert_eq!(g.group_code(&[-1, 1, 0]), 2); // -1 + 3 = 2
        assert_eq!(g.group_code(&[1, 1, 1]), 13);
        assert_eq!(g.group_code(&[-1, -1, -1]), 16 | 13);
        assert_eq!(g.group_code(&[1, -1]), 16 | 2); // 1 - 3 = -2, trailing weight zero
    }

    #[test]
    fn bits_round_trip_fields_across_words() {
        let mut b = Bits::zero(100);
        b.set(30, 5, 0b10111);
        b.set(95, 5, 0b11111);
        assert_eq!(b.get(30, 5), 0b10111);
        assert_eq!(b.get_signed(30, 5), -9);
        assert_eq!(b.get(95, 5), 31);
        assert_eq!(b.words.len(), 4);
    }

    #[test]
    fn weight_image_round_trips_through_chunks_and_padding() {
        let g = Tlmm { g: 3, tables: 2, cols: 4, acc_bits: 24 };
        let (n, k) = (13, 20); // 4 blocks, 4 steps
        let codes: Vec<i8> = (0..n * k).map(|i| ((i * 7 + i / 3) % 3) as i8 - 1).collect();
        for (buffer, bus) in [(16, 16), (8, 16), (4, 32), (5, 4)] {
            let img = g.pack_image(&codes, n, k, buffer, bus);
            assert_eq!(img.len() % bus, 0);
            assert_eq!(g.unpack_image(&img, n, k, buffer, bus), codes, "buffer {buffer}, bus {bus}");
        }
        // 4 blocks of 4 steps = 16 beats
        assert_eq!(g.chunk_blocks(n, k, 64), 4); // fits a quarter of the buffer: one chunk
        assert_eq!(g.chunk_blocks(n, k, 32), 2); // more than a quarter: chunks of a quarter (8 beats)
        assert_eq!(g.chunk_blocks(n, k, 16), 1);
        assert_eq!(g.chunk_blocks(n, k, 20), 1);
        assert_eq!(g.chunk_blocks(n, k, 8), 2); // a block does not fit a quarter: the whole buffer
        assert_eq!(g.chunk_blocks(n, k, 3), 1); // never zero
                                                // 4 rows x 2 tables x 5 bits = 40 bits = 5 bytes: one 16-byte bus word, two 4-byte words
        assert_eq!((g.beat_stride(16), g.beat_stride(4)), (16, 8));
    }

    #[test]
    fn double_buffered_matrices_start_and_end_with_edge_chunks() {
        // tellme-kv260's q projection: k = n = 1536, G = 3, 28 tables, 16 columns: 19 steps, 96
        // blocks; a quarter of a 4096-beat buffer holds 53 blocks; an eighth of that (7) is
        // less than a table fill (14 cycles), so the edge chunks are 14 blocks and the middle
        // 96 - 28 = 68 blocks are one full chunk and 15 more.
        let g = Tlmm { g: 3, tables: 28, cols: 16, acc_bits: 24 };
        assert_eq!((g.steps(1536), g.blocks(1536)), (19, 96));
        assert_eq!(g.chunks(1536, 1536, 4096), vec![(0, 14), (14, 53), (67, 15), (82, 14)]);
        // an eighth of a full chunk above the fill: a 16384-beat buffer holds 215 blocks of
        // 19 steps in a quarter, an eighth is 27 blocks
        assert_eq!(g.edge_blocks(215), 27);
        // tellme-kv260's down projection: k = 4096 (49 steps), n = 1536 (96 blocks): full chunk
        // 20, edges 14; 96 - 28 = 68 = 3 x 20 + 8 would leave 8 blocks (< 14), so the third
        // chunk gives up 6.
        assert_eq!(g.steps(4096), 49);
        let sizes: Vec<usize> = g.chunks(1536, 4096, 4096).iter().map(|c| c.1).collect();
        assert_eq!(sizes, vec![14, 20, 20, 14, 14, 14]);
        // fits a quarter of the buffer: one chunk, no edges
        assert_eq!(g.chunks(1536, 1536, 8192), vec![(0, 96)]);
        // a block too tall for a quarter of the buffer: whole-buffer chunks, no edges (6 steps)
        let h = Tlmm { g: 3, tables: 2, cols: 4, acc_bits: 24 };
        assert_eq!(h.chunks(16, 36, 8), vec![(0, 1), (1, 1), (2, 1), (3, 1)]);
        assert_eq!(h.chunks(16, 36, 12), vec![(0, 2), (2, 2)]);
        // a full chunk of one block: edges of one block, then ones
        assert_eq!(h.chunks(16, 36, 24), vec![(0, 1), (1, 1), (2, 1), (3, 1)]);
        // 4 blocks of 4 steps in a 32-beat buffer: full chunk 2, edges at most that -> 2, 2
        assert_eq!(h.chunks(13, 20, 32), vec![(0, 2), (2, 2)]);
        // G = 2 (5-cycle fills): 8 blocks of 1 step in an 8-beat buffer, full chunk 2 -> edges of 2
        let t = Tlmm { g: 2, tables: 1, cols: 1, acc_bits: 24 };
        assert_eq!(t.chunks(8, 2, 8), vec![(0, 2), (2, 2), (4, 2), (6, 2)]);
    }

    #[test]
    fn packing_lays_out_steps_blocks_and_padding() {
        let g = t(2); // G=2, 2 tables, 2 cols, code 4 bits
                      // 3 x 5 matrix: groups per row = 3, steps = 2, blocks = 2
        let w: Vec<i8> = vec![1, -1, 0, 1, 1, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1];
        let beats = g.pack_weights(&w, 3, 5);
        assert_eq!(beats.len(), 4);
        // step 0 block 0: row 0 groups 0,1 = (1,-1)->1-3=-2, (0,1)->3; row 1 = (0,0), (0,0)
        assert_eq!(beats[0].get(0, 4), 8 | 2);
        assert_eq!(beats[0].get(4, 4), 3);
        assert_eq!(beats[0].get(8, 8), 0);
        // step 1 block 1: row 2 group 2 = (-1) -> 8|1; row 3 does not exist
        assert_eq!(beats[3].get(0, 4), 8 | 1);
        assert_eq!(beats[3].get(4, 12), 0);
        let a = g.pack_activations(&[1, -2, 3, -128, 127]);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].get(0, 32), u32::from_le_bytes([1, (-2i8) as u8, 3, 128]) as u64);
        assert_eq!(a[1].get(0, 8), 127);
        assert_eq!(a[1].get(8, 24), 0);
    }
}
