//! The kernel in Verilator behind the Device trait: registers over AXI4-Lite, programs from
//! device memory, results equal to the reference device; unsupported ops and timeouts are clear
//! errors.

use hdl::isa::{row_bytes, Op, Prefetch, Setup};
use hdl::regmap;
use host::device::{Device, DeviceExt};
use host::refdev::RefDevice;
use host::simdev::SimDevice;
use model::Config;
use sim::axi::MemTiming;
use std::sync::Mutex;
use std::time::Duration;

static BUILD: Mutex<()> = Mutex::new(());

fn devices() -> (SimDevice, RefDevice, Config) {
    let cfg = Config::preset("tiny").unwrap();
    let d = hdl::generate(&cfg);
    let timing = MemTiming::from_board(cfg.board.bandwidth_gbs, cfg.board.clock_mhz, 100.0);
    let sim = {
        let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        SimDevice::new(&d, timing, cfg.board.clock_mhz, 64 << 20).unwrap_or_else(|e| panic!("{e:#}"))
    };
    let tl = d.params.tlmm();
    let r = RefDevice::new(tl, d.params.WBUF_DEPTH, d.bus_bits / 8, 64 << 20);
    (sim, r, cfg)
}

fn setup(hidden: u32, vocab: u32) -> Op {
    Op::Setup(Setup {
        hidden,
        ffn: 4 * hidden,
        vocab,
        max_seq: 16,
        heads: 1,
        kv_heads: 1,
        head_dim: hidden as u16,
        kv_qmax: 127,
        head_bits: 8,
        eps: 1e-5,
        score_scale: 0.5,
        prefetch: None,
    })
}

fn run(dev: &mut dyn Device, program: &[Op], at: u64, timeout: Duration) -> anyhow::Result<()> {
    let bytes: Vec<u8> = program.iter().flat_map(|op| op.encode()).collect();
    dev.write(at, &bytes)?;
    dev.start(at)?;
    dev.wait(timeout)
}

#[test]
fn registers_follow_the_map() {
    let (mut sim, _, _) = devices();
    assert_eq!(sim.read_reg(regmap::MAGIC).unwrap(), regmap::MAGIC_VALUE);
    assert_eq!(sim.read_reg(regmap::CTRL).unwrap() & regmap::ctrl::IDLE, regmap::ctrl::IDLE);
    sim.write_reg(regmap::ARG_PROGRAM, 0x1234_5678).unwrap();
    sim.write_reg(regmap::ARG_PROGRAM + 4, 0x9abc).unwrap();
    assert_eq!(sim.read_reg(regmap::ARG_PROGRAM).unwrap(), 0x1234_5678);
    assert_eq!(sim.read_reg(regmap::ARG_PROGRAM + 4).unwrap(), 0x9abc);
    assert_eq!(sim.read_reg(regmap::ERROR).unwrap(), 0);
}

/// Every one of the 65536 fp16 bit patterns goes through EMBED on the kernel and on the
/// reference device: the Q.16 rows must be equal (zeros, subnormals, ties, saturation, inf, NaN).
#[test]
fn embed_converts_every_fp16_pattern_like_the_reference() {
    let (mut sim, mut refd, _) = devices();
    let (hidden, vocab) = (64u32, 1024u32);
    let row_in = row_bytes(2 * hidden as u64);
    let row_out = row_bytes(4 * hidden as u64);
    let mut table = vec![0u8; (row_in * vocab as u64) as usize];
    for pattern in 0..65536u32 {
        let (r, c) = ((pattern / hidden) as u64, (pattern % hidden) as u64);
        let at = (r * row_in + 2 * c) as usize;
        table[at..at + 2].copy_from_slice(&(pattern as u16).to_le_bytes());
    }
    let tokens_per_op = 4u16;
    let ops = vocab as u64 / tokens_per_op as u64;
    for dev in [&mut sim as &mut dyn Device, &mut refd as &mut dyn Device] {
        let t = dev.alloc(table.len() as u64).unwrap();
        dev.write(t, &table).unwrap();
        // Token ids in a scrambled order, so rows land in non-trivial places.
        let ids: Vec<i32> = (0..vocab).map(|i| ((i * 389 + 7) % vocab) as i32).collect();
        let ids_at = dev.alloc(4 * vocab as u64).unwrap();
        dev.write_i32s(ids_at, &ids).unwrap();
        let dst = dev.alloc(row_out * vocab as u64).unwrap();
        let mut prog = vec![setup(hidden, vocab)];
        for k in 0..ops {
            prog.push(Op::Embed {
                tokens: tokens_per_op,
                ids: ids_at + 4 * k * tokens_per_op as u64,
                table: t,
                dst: dst + k * tokens_per_op as u64 * row_out,
            });
        }
        prog.push(Op::End);
        let at = dev.alloc(64 * prog.len() as u64).unwrap();
        run(dev, &prog, at, Duration::from_secs(1)).unwrap_or_else(|e| panic!("{}: {e:#}", dev.name()));
    }
    // Same allocation sequence on both devices, so the same addresses hold the results.
    let dst = hdl_dst_address(&mut sim, &table, vocab);
    for row in 0..vocab as u64 {
        let a = sim.read_i32s(dst + row * row_out, hidden as usize).unwrap();
        let b = refd.read_i32s(dst + row * row_out, hidden as usize).unwrap();
        assert_eq!(a, b, "row {row}");
    }
    let counters: std::collections::HashMap<_, _> = sim.counters().unwrap().into_iter().collect();
    assert_eq!(counters["descriptors"], ops + 2);
    assert!(counters["cycles"] > 0 && counters["dram_read_bytes"] > 0);
    assert_eq!(counters["dram_write_bytes"], row_out * vocab as u64);
}

/// The destination buffer's address: third allocation after the table and the ids.
fn hdl_dst_address(_sim: &mut SimDevice, table: &[u8], vocab: u32) -> u64 {
    let page = |b: u64| b.div_ceil(4096) * 4096;
    host::refdev::MEM_BASE + page(table.len() as u64) + page(4 * vocab as u64)
}

#[test]
fn unimplemented_ops_and_missing_setup_are_reported() {
    let (mut sim, _, _) = devices();
    let at = sim.alloc(4096).unwrap();
    // An opcode the ISA does not define stops the program; so do sizes beyond the kernel's maxima.
    let mut bad = Op::End.encode();
    bad[0] = 0x7f;
    let bytes: Vec<u8> = [setup(64, 16).encode(), bad, Op::End.encode()].concat();
    sim.write(at, &bytes).unwrap();
    sim.start(at).unwrap();
    let e = format!("{:#}", sim.wait(Duration::from_secs(1)).unwrap_err());
    assert!(e.contains("descriptor 1 (opcode 0x7f): opcode not implemented"), "{e}");
    let nq = Op::NormQuant { tokens: 1, n: 100_000, src: at, norm: 0, codes: at, scales: at };
    let e = format!("{:#}", run(&mut sim, &[setup(64, 16), nq, Op::End], at, Duration::from_secs(1)).unwrap_err());
    assert!(
        e.contains("descriptor 1 (opcode 0x11): sizes or formats beyond what this kernel was generated for"),
        "{e}"
    );
    let big = Op::Linear {
        tokens: 1,
        k: 64,
        n: 100_000,
        w_scale: 1.0,
        codes: at,
        scales: at,
        weights: at,
        dst: at,
        accumulate: false,
        prefetch: None,
    };
    let e = format!("{:#}", run(&mut sim, &[setup(64, 16), big, Op::End], at, Duration::from_secs(1)).unwrap_err());
    assert!(
        e.contains("descriptor 1 (opcode 0x12): sizes or formats beyond what this kernel was generated for"),
        "{e}"
    );
    // An LM head program for int4 codes on a kernel generated for int8 ones.
    let Op::Setup(mut s4) = setup(64, 16) else { unreachable!() };
    s4.head_bits = 4;
    let head = Op::LmHead { tokens: 1, src: at, norm: at, head: at, head_scales: at, dst: at };
    let e = format!("{:#}", run(&mut sim, &[Op::Setup(s4), head, Op::End], at, Duration::from_secs(1)).unwrap_err());
    assert!(
        e.contains("descriptor 1 (opcode 0x16): sizes or formats beyond what this kernel was generated for"),
        "{e}"
    );
    let emb = Op::Embed { tokens: 1, ids: at, table: at, dst: at };
    let e = format!("{:#}", run(&mut sim, &[emb, Op::End], at, Duration::from_secs(1)).unwrap_err());
    assert!(e.contains("descriptor 0 (opcode 0x10): op before SETUP"), "{e}");
    // The kernel is usable again after an error.
    run(&mut sim, &[setup(64, 16), Op::End], at, Duration::from_secs(1)).unwrap();
}

#[test]
fn a_kernel_that_does_not_finish_times_out_clearly() {
    let (mut sim, _, _) = devices();
    let table = sim.alloc(64 * 128).unwrap();
    let ids = sim.alloc(4096).unwrap();
    let dst = sim.alloc(64 * 256).unwrap();
    let at = sim.alloc(4096).unwrap();
    let prog = [setup(64, 64), Op::Embed { tokens: 64, ids, table, dst }, Op::End];
    // 40 ns at 250 MHz = 10 cycles: far too short for 64 rows.
    let e = format!("{:#}", run(&mut sim, &prog, at, Duration::from_nanos(40)).unwrap_err());
    assert!(e.contains("the kernel did not finish within"), "{e}");
}

#[test]
fn a_waveform_window_can_be_dumped() {
    let cfg = Config::preset("tiny").unwrap();
    let d = hdl::generate(&cfg);
    let timing = MemTiming::from_board(cfg.board.bandwidth_gbs, cfg.board.clock_mhz, 100.0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kernel.fst");
    {
        let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        let mut sim = SimDevice::with_waveform(&d, timing, cfg.board.clock_mhz, 1 << 20, &path, 0, 200).unwrap();
        let at = sim.alloc(4096).unwrap();
        run(&mut sim, &[setup(64, 16), Op::End], at, Duration::from_secs(1)).unwrap();
    }
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 1000, "waveform too small: {size} bytes");
}

/// LINEAR on the kernel (TLMM unit, weight chunks through its buffer, requant, accumulate) equals
/// the reference device, over shapes with one and several chunks, odd sizes and 1..4 tokens.
#[test]
fn linear_matches_the_reference_device() {
    use rand::{Rng, SeedableRng};
    let (mut sim, mut refd, cfg) = devices();
    let d = hdl::generate(&cfg);
    let tl = d.params.tlmm();
    let (wbuf, bus) = (d.params.WBUF_DEPTH, d.bus_bits / 8);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    // (k, n, tokens, accumulate)
    let shapes = [
        (64usize, 64usize, 1u16, false),
        (64, 160, 3, true),
        (160, 64, 4, false),
        (160, 160, 2, true),
        (37, 13, 1, false),
    ];
    for (i, &(k, n, tokens, acc)) in shapes.iter().enumerate() {
        let codes: Vec<i8> = (0..n * k).map(|_| rng.random_range(-1..=1)).collect();
        let image = tl.pack_image(&codes, n, k, wbuf, bus);
        let xrow = row_bytes(k as u64) as usize;
        let yrow = row_bytes(4 * n as u64) as usize;
        let x: Vec<u8> =
            (0..tokens as usize * xrow).map(|j| if j % xrow < k { rng.random::<u8>() } else { 0xAA }).collect();
        let scales: Vec<u8> = (0..tokens).flat_map(|_| rng.random_range(1e-4f32..0.1).to_le_bytes()).collect();
        let y0: Vec<u8> = (0..tokens as usize * yrow / 4)
            .flat_map(|j| if j % 7 == 0 { i32::MAX - 5 } else { rng.random_range(-1_000_000..1_000_000) }.to_le_bytes())
            .collect();
        let w_scale = rng.random_range(0.01f32..1.0);
        let mut outs = Vec::new();
        for dev in [&mut sim as &mut dyn Device, &mut refd as &mut dyn Device] {
            let put = |dev: &mut dyn Device, b: &[u8]| {
                let a = dev.alloc(b.len() as u64).unwrap();
                dev.write(a, b).unwrap();
                a
            };
            let (wa, xa, sa, ya) = (put(dev, &image), put(dev, &x), put(dev, &scales), put(dev, &y0));
            let op = Op::Linear {
                tokens,
                k: k as u32,
                n: n as u32,
                w_scale,
                codes: xa,
                scales: sa,
                weights: wa,
                dst: ya,
                accumulate: acc,
                prefetch: None,
            };
            let at = dev.alloc(4096).unwrap();
            run(dev, &[setup(64, 16), op, Op::End], at, Duration::from_secs(1))
                .unwrap_or_else(|e| panic!("{} case {i}: {e:#}", dev.name()));
            let mut rows = Vec::new();
            for t in 0..tokens as u64 {
                rows.push(dev.read_i32s(ya + t * yrow as u64, n).unwrap());
            }
            outs.push(rows);
        }
        assert_eq!(outs[0], outs[1], "case {i}: k={k} n={n} tokens={tokens} accumulate={acc}");
    }
    let counters: std::collections::HashMap<_, _> = sim.counters().unwrap().into_iter().collect();
    assert!(counters["tlmm_busy"] > 0);
    assert!(counters["tlmm_stall"] > 0, "loading weights and writing rows back stall the TLMM unit: {counters:?}");
    assert!(counters["dram_read_bytes"] > 0 && counters["dram_write_bytes"] > 0, "{counters:?}");
}

/// A program of LINEARs that name the next one's weights (one hint wrong, a NORM_QUANT in
/// between) gives the reference device's results, and the prefetching saves cycles. At the end
/// three LINEARs read the same rows: the second reuses the rows the first read, and writes its
/// results over them, so the third must read them again.
#[test]
fn linears_that_prefetch_the_next_matrix_match_the_reference_and_save_cycles() {
    use rand::{Rng, SeedableRng};
    let (_, mut refd, cfg) = devices();
    let d = hdl::generate(&cfg);
    // A slow memory (2 GB/s), so weight loads outweigh the tiny ops' fixed costs as they do at
    // full size.
    let timing = MemTiming::from_board(2.0, cfg.board.clock_mhz, 100.0);
    let mut sim = {
        let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        SimDevice::new(&d, timing, cfg.board.clock_mhz, 64 << 20).unwrap_or_else(|e| panic!("{e:#}"))
    };
    let tl = d.params.tlmm();
    let (wbuf, bus) = (d.params.WBUF_DEPTH, d.bus_bits / 8);
    assert!(tl.chunks(160, 160, wbuf).len() > 2, "the test wants double-buffered matrices with edge chunks");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    // (k, n, tokens, accumulate); matrices 3 and 4 have the same shape, different weights.
    let shapes = [
        (160usize, 160usize, 1u16, false),
        (160, 64, 1, true),
        (64, 160, 2, false),
        (160, 160, 1, false),
        (160, 160, 1, true),
    ];
    // Which matrix each LINEAR names as next: right, right, wrong (0 instead of 3), right, none.
    let hints = [Some(1usize), Some(2), Some(0), Some(4), None];
    struct Bufs {
        image: Vec<u8>,
        x: Vec<u8>,
        scales: Vec<u8>,
        y0: Vec<u8>,
    }
    let bufs: Vec<Bufs> = shapes
        .iter()
        .map(|&(k, n, tokens, _)| {
            let codes: Vec<i8> = (0..n * k).map(|_| rng.random_range(-1..=1)).collect();
            let (xrow, yrow) = (row_bytes(k as u64) as usize, row_bytes(4 * n as u64) as usize);
            Bufs {
                image: tl.pack_image(&codes, n, k, wbuf, bus),
                x: (0..tokens as usize * xrow).map(|j| if j % xrow < k { rng.random::<u8>() } else { 0 }).collect(),
                scales: (0..tokens).flat_map(|_| rng.random_range(1e-4f32..0.1).to_le_bytes()).collect(),
                y0: (0..tokens as usize * yrow / 4)
                    .flat_map(|_| rng.random_range(-1_000_000i32..1_000_000).to_le_bytes())
                    .collect(),
            }
        })
        .collect();
    let w_scale = 0.37f32;
    // Runs the program on `dev`; returns every output row and the cycles.
    let go = |dev: &mut dyn Device, prefetch: bool| -> (Vec<Vec<u8>>, u64) {
        let put = |dev: &mut dyn Device, b: &[u8]| {
            let a = dev.alloc(b.len().max(64) as u64).unwrap();
            dev.write(a, b).unwrap();
            a
        };
        let addrs: Vec<[u64; 4]> =
            bufs.iter().map(|b| [put(dev, &b.image), put(dev, &b.x), put(dev, &b.scales), put(dev, &b.y0)]).collect();
        let (nq_codes, nq_scales) = (put(dev, &[0; 256]), put(dev, &[0; 64]));
        let mut program = vec![setup(64, 16)];
        for (i, &(k, n, tokens, accumulate)) in shapes.iter().enumerate() {
            let hint = hints[i].filter(|_| prefetch).map(|j| Prefetch {
                weights: addrs[j][0],
                k: shapes[j].0 as u32,
                n: shapes[j].1 as u32,
            });
            let [weights, codes, scales, dst] = addrs[i];
            program.push(Op::Linear {
                tokens,
                k: k as u32,
                n: n as u32,
                w_scale,
                codes,
                scales,
                weights,
                dst,
                accumulate,
                prefetch: hint,
            });
            if i == 1 {
                // Another engine runs while the loader prefetches matrix 2.
                program.push(Op::NormQuant {
                    tokens: 1,
                    n: 64,
                    src: addrs[1][3],
                    norm: 0,
                    codes: nq_codes,
                    scales: nq_scales,
                });
            }
        }
        let row = row_bytes(4 * 160) as usize;
        let mut z_init = bufs[4].x.clone();
        z_init.resize(row, 0);
        let (z, r0, r2) = (put(dev, &z_init), put(dev, &vec![0; row]), put(dev, &vec![0; row]));
        for (weights, dst) in [(addrs[4][0], r0), (addrs[3][0], z), (addrs[0][0], r2)] {
            program.push(Op::Linear {
                tokens: 1,
                k: 160,
                n: 160,
                w_scale,
                codes: z,
                scales: addrs[4][2],
                weights,
                dst,
                accumulate: false,
                prefetch: None,
            });
        }
        program.push(Op::End);
        let at = dev.alloc(4096).unwrap();
        run(dev, &program, at, Duration::from_secs(5)).unwrap_or_else(|e| panic!("{}: {e:#}", dev.name()));
        let read = |dev: &mut dyn Device, a: u64, len: usize| {
            let mut v = vec![0u8; len];
            dev.read(a, &mut v).unwrap();
            v
        };
        let mut outs: Vec<Vec<u8>> = addrs.iter().zip(&bufs).map(|(a, b)| read(dev, a[3], b.y0.len())).collect();
        outs.push(read(dev, nq_codes, 64));
        outs.push(read(dev, nq_scales, 4));
        for a in [z, r0, r2] {
            outs.push(read(dev, a, row));
        }
        let cycles = dev.counters().map(|c| c.into_iter().find(|(k, _)| *k == "cycles").map(|(_, v)| v).unwrap_or(0));
        (outs, cycles.unwrap_or(0))
    };
    let (want, _) = go(&mut refd, true);
    let (with, cycles_with) = go(&mut sim, true);
    let (without, cycles_without) = go(&mut sim, false);
    for (i, (w, r)) in with.iter().zip(&want).enumerate() {
        assert!(w == r, "output {i} with prefetch differs from the reference");
    }
    assert_eq!(without, want, "without prefetch");
    assert!(cycles_with < cycles_without, "prefetching saves cycles: {cycles_with} vs {cycles_without}");
}

/// Random Q.16 rows with magnitudes spread over many octaves, some exact zeros and extremes.
fn fx_rows(rng: &mut impl rand::Rng, tokens: usize, n: usize, zero_row: bool) -> Vec<u8> {
    let stride = row_bytes(4 * n as u64) as usize / 4;
    (0..tokens * stride)
        .flat_map(|j| {
            let (t, i) = (j / stride, j % stride);
            let v: i32 = if i >= n || (zero_row && t == 0) {
                0
            } else {
                match rng.random_range(0..20) {
                    0 => 0,
                    1 => i32::MIN,
                    2 => i32::MAX,
                    _ => {
                        let mag = rng.random_range(0..31);
                        rng.random_range(-(1i64 << mag)..=(1i64 << mag)) as i32
                    }
                }
            };
            v.to_le_bytes()
        })
        .collect()
}

/// Run one op on both devices with the given input buffers; `outs` names (buffer index, bytes)
/// to read back. Returns what each device wrote.
fn both(
    sim: &mut SimDevice,
    refd: &mut RefDevice,
    setup: Op,
    bufs: &[Vec<u8>],
    op: impl Fn(&[u64]) -> Op,
    outs: &[(usize, usize)],
) -> Vec<Vec<Vec<u8>>> {
    let mut all = Vec::new();
    for dev in [sim as &mut dyn Device, refd as &mut dyn Device] {
        let addrs: Vec<u64> = bufs
            .iter()
            .map(|b| {
                let a = dev.alloc(b.len().max(64) as u64).unwrap();
                dev.write(a, b).unwrap();
                a
            })
            .collect();
        let at = dev.alloc(4096).unwrap();
        run(dev, &[setup, op(&addrs), Op::End], at, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{}: {e:#}", dev.name()));
        all.push(
            outs.iter()
                .map(|&(i, len)| {
                    let mut b = vec![0u8; len];
                    dev.read(addrs[i], &mut b).unwrap();
                    b
                })
                .collect(),
        );
    }
    all
}

/// NORM_QUANT (RMSNorm fused into int8 quantization) and FFN_ACT (ReLU^2 / SiLU products,
/// block normalization, sub-norm) on the kernel equal the reference device, bit for bit.
#[test]
fn vector_ops_match_the_reference_device() {
    use model::numerics::NormWeight;
    use rand::{Rng, SeedableRng};
    let (mut sim, mut refd, _) = devices();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for (case, &(n, tokens, with_norm)) in
        [(64usize, 1u16, true), (160, 4, true), (37, 3, false), (64, 2, false)].iter().enumerate()
    {
        let gains: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect();
        let norm = host::runtime::norm_bytes(&NormWeight::from_f32(&gains));
        let x = fx_rows(&mut rng, tokens as usize, n, case == 2);
        let code_len = tokens as usize * row_bytes(n as u64) as usize;
        let setup = setup(64, 16);
        // NORM_QUANT: buffers x, norm, codes, scales.
        let got = both(
            &mut sim,
            &mut refd,
            setup,
            &[x.clone(), norm.clone(), vec![0x55; code_len], vec![0x55; 64]],
            |a| Op::NormQuant {
                tokens,
                n: n as u32,
                src: a[0],
                norm: if with_norm { a[1] } else { 0 },
                codes: a[2],
                scales: a[3],
            },
            &[(2, code_len), (3, 64)],
        );
        assert_eq!(got[0], got[1], "NORM_QUANT case {case}: n={n} tokens={tokens} norm={with_norm}");
        // FFN_ACT with both activations: gate x, up from another draw; ffn = n.
        let up = fx_rows(&mut rng, tokens as usize, n, false);
        for act in [hdl::isa::Act::Relu2, hdl::isa::Act::Silu] {
            let Op::Setup(mut s) = setup else { unreachable!() };
            s.ffn = n as u32;
            let got = both(
                &mut sim,
                &mut refd,
                Op::Setup(s),
                &[x.clone(), up.clone(), norm.clone(), vec![0x55; code_len], vec![0x55; 64]],
                |a| Op::FfnAct {
                    tokens,
                    act,
                    gate: a[0],
                    up: a[1],
                    norm: if with_norm { a[2] } else { 0 },
                    codes: a[3],
                    scales: a[4],
                },
                &[(3, code_len), (4, 64)],
            );
            assert_eq!(got[0], got[1], "FFN_ACT case {case}: {act:?} n={n} tokens={tokens} norm={with_norm}");
        }
    }
}

/// ROPE_KV (RoPE on q in place and on k, k and v quantized per KV head into the cache, its codes
/// and scales) on the kernel equals the reference device, bit for bit: GQA (4 query heads, 2 KV
/// heads), several tokens at a position past zero, extreme values, an all-zero v row (scale 0),
/// and int8 and int4 caches.
#[test]
fn rope_kv_matches_the_reference_device() {
    use rand::{Rng, SeedableRng};
    let (mut sim, mut refd, _) = devices();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let (heads, kv_heads, head_dim, max_seq) = (4u16, 2u16, 16u16, 16u32);
    let (qd, kvd) = (heads as usize * head_dim as usize, kv_heads as usize * head_dim as usize);
    for (case, &(tokens, pos0, kv_qmax)) in [(3u16, 5u32, 127u16), (1, 15, 7), (4, 0, 127)].iter().enumerate() {
        let Op::Setup(mut s) = setup(qd as u32, 16) else { unreachable!() };
        s.max_seq = max_seq;
        s.heads = heads;
        s.kv_heads = kv_heads;
        s.head_dim = head_dim;
        s.kv_qmax = kv_qmax;
        // cos rows then sin rows, head_dim/2 i16 each (Q1.14, any i16 is legal input).
        let table: Vec<u8> = (0..2 * max_seq as usize * head_dim as usize / 2)
            .flat_map(|i| {
                let v: i16 = if i % 7 == 0 { i16::MIN } else { rng.random_range(-16384..=16384) };
                v.to_le_bytes()
            })
            .collect();
        let rope = host::runtime::padded_rows(&table, head_dim as usize);
        let q = fx_rows(&mut rng, tokens as usize, qd, false);
        let k = fx_rows(&mut rng, tokens as usize, kvd, false);
        let v = fx_rows(&mut rng, tokens as usize, kvd, case == 0);
        let kv_len = hdl::isa::KvLayout::new(&s).bytes as usize;
        let got = both(
            &mut sim,
            &mut refd,
            Op::Setup(s),
            &[q.clone(), k, v, rope, vec![0x55; kv_len]],
            |a| Op::RopeKv { tokens, pos0, q: a[0], k: a[1], v: a[2], rope: a[3], kv: a[4] },
            &[(0, q.len()), (4, kv_len)],
        );
        assert_eq!(got[0][0], got[1][0], "ROPE_KV case {case}: q after RoPE");
        assert_eq!(got[0][1], got[1][1], "ROPE_KV case {case}: the KV cache");
        assert_ne!(got[0][0], q, "ROPE_KV case {case}: q was rotated in place");
    }
}
