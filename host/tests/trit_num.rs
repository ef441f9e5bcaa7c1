//! The element-wise functions of `hdl/rtl/trit_num.sv` against `model::numerics`, bit for bit:
//! `i2f` (integer to binary32), `fp32_mul` and `requant`, over hand-picked edges and tens of
//! thousands of random operands drawn across their whole ranges. The engines that use them are
//! tested end to end; this pins each function on its own, where a failure names the input.

use model::numerics::{f32_from_int, fmul, requant, rne_div};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::{BuildSpec, Model, PortSpec};

/// A combinational wrapper exposing the functions on ports (the clock only satisfies the
/// simulator's interface).
const TB: &str = "
`default_nettype none
module num_tb (
  input  wire logic        clk,
  input  wire logic [95:0] int_i,
  input  wire logic [31:0] a_i,
  input  wire logic [31:0] b_i,
  input  wire logic [63:0] x_i,
  input  wire logic [7:0]  frac_i,
  input  wire logic [23:0] pair_i,
  output      logic [31:0] pair_o,
  input  wire logic [15:0] sig_e_i,
  output      logic [15:0] sig_o,
  output      logic [31:0] i2f_o,
  output      logic [31:0] mul_o,
  output      logic [95:0] requant_o
);
  assign i2f_o     = trit_num::i2f(int_i);
  assign mul_o     = trit_num::fp32_mul(a_i, b_i);
  assign requant_o = trit_num::requant(x_i, b_i, frac_i);
  assign pair_o    = trit_num::mul_s8_pair(pair_i[23:16], pair_i[15:8], pair_i[7:0]);
  sigmoid_pipe u_sig (.clk_i (clk), .e_i (sig_e_i), .y_o (sig_o));
endmodule
`resetall
";

fn model() -> Model {
    let p = |n: &str, w: usize, input: bool| PortSpec { name: n.into(), width: w, input };
    let spec = BuildSpec {
        top: "num_tb".into(),
        sources: vec![
            ("trit_num.sv".into(), include_str!("../../hdl/rtl/trit_num.sv").into()),
            ("sigmoid_pipe.sv".into(), include_str!("../../hdl/rtl/sigmoid_pipe.sv").into()),
            ("num_tb.sv".into(), TB.into()),
        ],
        ports: vec![
            p("clk", 1, true),
            p("int_i", 96, true),
            p("a_i", 32, true),
            p("b_i", 32, true),
            p("x_i", 64, true),
            p("frac_i", 8, true),
            p("pair_i", 24, true),
            p("pair_o", 32, false),
            p("sig_e_i", 16, true),
            p("sig_o", 16, false),
            p("i2f_o", 32, false),
            p("mul_o", 32, false),
            p("requant_o", 96, false),
        ],
        clock: "clk".into(),
        trace: false,
        cache_dir: None,
    };
    Model::new(&spec).unwrap_or_else(|e| panic!("{e}"))
}

fn words(x: u128, n: usize) -> Vec<u32> {
    (0..n).map(|i| (x >> (32 * i)) as u32).collect()
}

#[test]
fn i2f_fp32_mul_and_requant_equal_the_reference() {
    let mut m = model();
    let port = |m: &Model, n: &str| m.port(n).unwrap();
    let (int_i, a_i, b_i, x_i, frac_i) =
        (port(&m, "int_i"), port(&m, "a_i"), port(&m, "b_i"), port(&m, "x_i"), port(&m, "frac_i"));
    let (i2f_o, mul_o, requant_o) = (port(&m, "i2f_o"), port(&m, "mul_o"), port(&m, "requant_o"));
    let mut rng = ChaCha8Rng::seed_from_u64(11);

    // i2f: every width, values around rounding ties, and the extremes.
    let mut ints: Vec<u128> = vec![0, 1, 2, 3, (1 << 24) - 1, 1 << 24, (1 << 24) + 1, (1 << 25) + 3, (1u128 << 96) - 1];
    for bits in 1..=96u32 {
        for _ in 0..200 {
            let x = rng.random::<u128>() >> (128 - bits) | 1u128 << (bits - 1);
            ints.push(x);
            if bits > 25 {
                let sh = bits - 25; // a tie: the bit below the kept ones set, nothing under it
                ints.push((x >> sh << sh) | 1u128 << (sh - 1));
            }
        }
    }
    for &x in &ints {
        m.set(int_i, &words(x, 3));
        m.eval();
        assert_eq!(m.get(i2f_o)[0], f32_from_int(x).to_bits(), "i2f({x})");
    }

    // fp32_mul on the operands the engines give it (non-negative scales) and on signed ones,
    // across the whole exponent range so that products overflow, underflow and round to the
    // smallest normal.
    let mut pairs: Vec<(f32, f32)> = vec![
        (0.0, 1.0),
        (1.0, 1.0),
        (f32::MIN_POSITIVE, 0.5),
        (f32::MIN_POSITIVE, 1.0 - f32::EPSILON / 2.0),
        (f32::MAX, 2.0),
        (-3.0, 0.0),
        (1.0000001, 0.99999994),
    ];
    for _ in 0..30_000 {
        let e = |r: &mut ChaCha8Rng| {
            f32::from_bits(r.random_range(0x0080_0000u32..0x7f80_0000) | r.random::<u32>() & 0x8000_0000)
        };
        pairs.push((e(&mut rng), e(&mut rng)));
    }
    for &(a, b) in &pairs {
        m.set(a_i, &[a.to_bits()]);
        m.set(b_i, &[b.to_bits()]);
        m.eval();
        assert_eq!(m.get(mul_o)[0], fmul(a, b).to_bits(), "fp32_mul({a:e}, {b:e})");
    }

    // requant: 64-bit integers of every magnitude times scales of every exponent, fractions
    // 0 and 16 (the values the engines use); results compared where the reference fits 94 bits.
    for i in 0..40_000 {
        let bits = rng.random_range(0..63u32);
        let x: i64 = rng.random_range(-(1i64 << bits)..=(1i64 << bits));
        let s = f32::from_bits(if i % 50 == 0 { 0 } else { rng.random_range(0x0080_0000u32..0x4380_0000) });
        let frac = if i % 2 == 0 { 0 } else { 16 };
        let want = requant(x as i128, s, frac);
        if want.unsigned_abs() >= 1 << 94 {
            continue;
        }
        m.set(x_i, &words(x as u64 as u128, 2));
        m.set(b_i, &[s.to_bits()]);
        m.set(frac_i, &[frac]);
        m.eval();
        let w = m.get(requant_o);
        let got = (w[0] as u128 | (w[1] as u128) << 32 | (w[2] as u128) << 64) as i128;
        let got = got << 32 >> 32; // sign-extend the 96-bit result
        assert_eq!(got, want, "requant({x}, {s:e}, {frac})");
    }
}

/// `mul_s8_pair` (two int8 products from one multiply, the attention's key dot products): every
/// shared operand `x` against every `a` with edge and random `b`, and every `b` with edge and
/// random `a` -- each product sits in its own field, so this covers both fields' every value.
#[test]
fn mul_s8_pair_gives_both_products() {
    let mut m = model();
    let (pair_i, pair_o) = (m.port("pair_i").unwrap(), m.port("pair_o").unwrap());
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let check = |m: &mut Model, a: i8, b: i8, x: i8| {
        m.set(pair_i, &[(a as u8 as u32) << 16 | (b as u8 as u32) << 8 | x as u8 as u32]);
        m.eval();
        let w = m.get(pair_o)[0];
        let (ax, bx) = ((w >> 16) as u16 as i16, w as u16 as i16);
        assert_eq!((ax as i32, bx as i32), (a as i32 * x as i32, b as i32 * x as i32), "mul_s8_pair({a}, {b}, {x})");
    };
    for x in i8::MIN..=i8::MAX {
        let mut others: Vec<i8> = vec![i8::MIN, -127, -1, 0, 1, 127];
        others.extend((0..4).map(|_| rng.random::<i8>()));
        for v in i8::MIN..=i8::MAX {
            for &o in &others {
                check(&mut m, v, o, x);
                check(&mut m, o, v, x);
            }
        }
    }
}

/// `sigmoid_pipe` (FFN_ACT's SiLU sigmoid, a pipelined division): for every Q.15 input 0..=32768,
/// fed one per cycle, the output 8 cycles later is RNE(2^30 / (2^15 + e)) as the reference
/// (`model::numerics::silu_fx`) computes it.
#[test]
fn sigmoid_pipe_divides_like_the_reference() {
    const LATENCY: usize = 8;
    let mut m = model();
    let (e_i, y_o) = (m.port("sig_e_i").unwrap(), m.port("sig_o").unwrap());
    let es: Vec<u32> = (0..=32768).collect();
    for i in 0..es.len() + LATENCY - 1 {
        m.set(e_i, &[es.get(i).copied().unwrap_or(0)]);
        m.tick();
        if i + 1 >= LATENCY {
            let e = es[i + 1 - LATENCY];
            let want = rne_div(1 << 30, (1 << 15) + e as i128) as u32;
            assert_eq!(m.get(y_o)[0], want, "sigmoid of e = {e}");
        }
    }
}
