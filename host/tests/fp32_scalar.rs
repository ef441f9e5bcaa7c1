//! The scalar float unit (`hdl/rtl/fp32_scalar.sv`) against `model::numerics`, bit for bit:
//! hand-picked edge cases (rounding ties, the edge of the normal range, signed zeros, overflow,
//! cancellation, wide integers), at least 20000 random operand pairs per operation drawn to hit
//! the interesting regions, the IEEE special values it documents, its handshake and latency, and
//! its acceptance by Verilator lint, Icarus and yosys.

use model::numerics::{f32_from_int, fadd, fdiv, fmul, fsqrt, ldexp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::{BuildSpec, Model, PortId, PortSpec};
use std::sync::Mutex;

/// Verilator builds use every core; run them one at a time.
static BUILD: Mutex<()> = Mutex::new(());

const SOURCES: [(&str, &str); 2] = [
    ("fp32_round.sv", include_str!("../../hdl/rtl/fp32_round.sv")),
    ("fp32_scalar.sv", include_str!("../../hdl/rtl/fp32_scalar.sv")),
];
/// The unit's default integer width.
const INT_W: u32 = 96;
/// Random operand pairs per operation.
const RANDOM: usize = 20_000;
/// Every NaN the unit produces.
const QNAN: u32 = 0x7fc0_0000;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Mul = 0,
    Div = 1,
    Add = 2,
    Sub = 3,
    Sqrt = 4,
    I2f = 5,
    Ldexp = 6,
}

/// One request: the operation and its operands (`b` is k for LDEXP, `int` the I2F input).
#[derive(Clone, Copy, Debug)]
struct Req {
    op: Op,
    a: u32,
    b: u32,
    int: u128,
}

impl Req {
    fn ab(op: Op, a: f32, b: f32) -> Req {
        Req { op, a: a.to_bits(), b: b.to_bits(), int: 0 }
    }
    fn bits(op: Op, a: u32, b: u32) -> Req {
        Req { op, a, b, int: 0 }
    }
    fn int(x: u128) -> Req {
        Req { op: Op::I2f, a: 0, b: 0, int: x }
    }
    fn ldexp(a: f32, k: i32) -> Req {
        Req { op: Op::Ldexp, a: a.to_bits(), b: k as u32, int: 0 }
    }

    /// The reference result (`model::numerics`).
    fn reference(&self) -> u32 {
        let (a, b) = (f32::from_bits(self.a), f32::from_bits(self.b));
        let r = match self.op {
            Op::Mul => fmul(a, b),
            Op::Div => fdiv(a, b),
            Op::Add => fadd(a, b),
            Op::Sub => fadd(a, -b), // IEEE: a - b is a + (-b), zeros included
            Op::Sqrt => fsqrt(a),
            Op::I2f => f32_from_int(self.int),
            Op::Ldexp => ldexp(a, self.b as i32),
        };
        r.to_bits()
    }
}

struct Fpu {
    m: Model,
    req_valid: PortId,
    req_ready: PortId,
    op: PortId,
    a: PortId,
    b: PortId,
    int: PortId,
    rsp_valid: PortId,
    rsp_ready: PortId,
    res: PortId,
}

/// The unit at its default `INT_W`, or (for another width) inside a wrapper that sets it.
fn spec(int_w: u32) -> BuildSpec {
    let p = |n: &str, w: usize, input: bool| PortSpec { name: n.into(), width: w, input };
    let mut sources: Vec<(String, String)> = SOURCES.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
    let top = if int_w == INT_W {
        "fp32_scalar".to_string()
    } else {
        let top = format!("fp32_scalar_w{int_w}");
        sources.push((format!("{top}.sv"), wrapper(&top, int_w)));
        top
    };
    BuildSpec {
        top,
        sources,
        ports: vec![
            p("clk_i", 1, true),
            p("rst_ni", 1, true),
            p("req_valid_i", 1, true),
            p("req_ready_o", 1, false),
            p("op_i", 3, true),
            p("a_i", 32, true),
            p("b_i", 32, true),
            p("int_i", int_w as usize, true),
            p("rsp_valid_o", 1, false),
            p("rsp_ready_i", 1, true),
            p("res_o", 32, false),
        ],
        clock: "clk_i".into(),
        trace: false,
        cache_dir: None,
    }
}

/// A top level that sets `INT_W` (the simulator builds a module with its default parameters).
fn wrapper(top: &str, int_w: u32) -> String {
    const TEXT: &str = r#"`default_nettype none
module TOP (
  input  wire logic         clk_i,
  input  wire logic         rst_ni,
  input  wire logic         req_valid_i,
  output      logic         req_ready_o,
  input  wire logic [2:0]   op_i,
  input  wire logic [31:0]  a_i,
  input  wire logic [31:0]  b_i,
  input  wire logic [MSB:0] int_i,
  output      logic         rsp_valid_o,
  input  wire logic         rsp_ready_i,
  output      logic [31:0]  res_o
);
  fp32_scalar #(.INT_W(WIDTH)) u_fpu (
    .clk_i, .rst_ni, .req_valid_i, .req_ready_o, .op_i, .a_i, .b_i, .int_i, .rsp_valid_o,
    .rsp_ready_i, .res_o
  );
endmodule
`resetall
"#;
    TEXT.replace("TOP", top).replace("MSB", &(int_w - 1).to_string()).replace("WIDTH", &int_w.to_string())
}

impl Fpu {
    fn new() -> Fpu {
        Fpu::with_int_width(INT_W)
    }

    fn with_int_width(int_w: u32) -> Fpu {
        let mut m = {
            let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
            Model::new(&spec(int_w)).unwrap_or_else(|e| panic!("{e}"))
        };
        let g = |m: &Model, n: &str| m.port(n).unwrap();
        let rst = g(&m, "rst_ni");
        let f = Fpu {
            req_valid: g(&m, "req_valid_i"),
            req_ready: g(&m, "req_ready_o"),
            op: g(&m, "op_i"),
            a: g(&m, "a_i"),
            b: g(&m, "b_i"),
            int: g(&m, "int_i"),
            rsp_valid: g(&m, "rsp_valid_o"),
            rsp_ready: g(&m, "rsp_ready_i"),
            res: g(&m, "res_o"),
            m: {
                m.set_u64(rst, 0);
                m.tick();
                m.set_u64(rst, 1);
                m.tick();
                m
            },
        };
        f
    }

    fn drive(&mut self, r: &Req) {
        let m = &mut self.m;
        m.set_u64(self.op, r.op as u64);
        m.set_u64(self.a, r.a as u64);
        m.set_u64(self.b, r.b as u64);
        m.set(self.int, &[r.int as u32, (r.int >> 32) as u32, (r.int >> 64) as u32, (r.int >> 96) as u32]);
    }

    /// Issue one request and wait for its response: (result bits, cycles from acceptance to
    /// `rsp_valid_o`).
    fn run(&mut self, r: &Req) -> (u32, u64) {
        self.drive(r);
        let m = &mut self.m;
        m.set_u64(self.req_valid, 1);
        m.eval();
        assert_eq!(m.get_u64(self.req_ready), 1, "unit not idle before {r:?}");
        m.tick();
        m.set_u64(self.req_valid, 0);
        let mut cycles = 1;
        while m.get_u64(self.rsp_valid) == 0 {
            m.tick();
            cycles += 1;
            assert!(cycles < 1000, "no response to {r:?}");
        }
        let res = m.get_u64(self.res) as u32;
        m.set_u64(self.rsp_ready, 1);
        m.tick();
        m.set_u64(self.rsp_ready, 0);
        (res, cycles)
    }
}

fn show(x: u32) -> String {
    format!("{x:#010x} ({:e})", f32::from_bits(x))
}

/// Run every request and compare with the reference; a NaN reference must give the unit's
/// canonical NaN. Panics with the first few mismatches.
fn check(fpu: &mut Fpu, reqs: &[Req]) {
    let mut bad = Vec::new();
    for r in reqs {
        let (got, _) = fpu.run(r);
        let want = r.reference();
        let ok = if f32::from_bits(want).is_nan() { got == QNAN } else { got == want };
        if !ok {
            bad.push(format!(
                "{:?} a={} b={} int={:#x}: rtl {} reference {}",
                r.op,
                show(r.a),
                show(r.b),
                r.int,
                show(got),
                show(want)
            ));
        }
    }
    assert!(bad.is_empty(), "{} of {} mismatch:\n{}", bad.len(), reqs.len(), bad[..bad.len().min(12)].join("\n"));
}

/// How often the reference result of `reqs` falls in each region the rounding treats specially,
/// so a generator change cannot quietly stop covering one: (smallest normal, negative zero from
/// non-zero operands, +0 flushed from a negative result, infinity from finite operands).
fn coverage(reqs: &[Req]) -> [usize; 4] {
    let mut c = [0; 4];
    for r in reqs {
        let (a, b, want) = (f32::from_bits(r.a), f32::from_bits(r.b), r.reference());
        let nonzero = a != 0.0 && (b != 0.0 || matches!(r.op, Op::Sqrt | Op::I2f | Op::Ldexp));
        let negative = match r.op {
            Op::Mul | Op::Div => (r.a ^ r.b) >> 31 == 1,
            Op::Ldexp => r.a >> 31 == 1,
            Op::Add => (a as f64 + b as f64) < 0.0, // exact in f64 for these exponents
            Op::Sub => (a as f64 - b as f64) < 0.0,
            _ => false,
        };
        c[0] += (want & 0x7fff_ffff == 0x0080_0000) as usize;
        c[1] += (nonzero && want == 0x8000_0000) as usize;
        c[2] += (nonzero && negative && want == 0) as usize;
        c[3] += (a.is_finite() && b.is_finite() && f32::from_bits(want).is_infinite()) as usize;
    }
    c
}

fn assert_covers(reqs: &[Req], min: [usize; 4]) {
    let c = coverage(reqs);
    assert!(c.iter().zip(min).all(|(&c, m)| c >= m), "{:?}: coverage {c:?} below {min:?}", reqs[0].op);
}

// ---------------------------------------------------------------- operand generators

const MIN_NORMAL: f32 = f32::MIN_POSITIVE;

fn pow2(k: i32) -> f32 {
    assert!((-126..=127).contains(&k));
    f32::from_bits(((k + 127) as u32) << 23)
}

/// A random normal or zero binary32 with a biased exponent in `exp` (1..=254), random sign
/// when `signed`; zero with probability 1/64.
fn rand_f32(rng: &mut ChaCha8Rng, exp: std::ops::RangeInclusive<i32>, signed: bool) -> u32 {
    let sign = if signed && rng.random_bool(0.5) { 1u32 << 31 } else { 0 };
    if rng.random_range(0..64) == 0 {
        return sign;
    }
    let e = rng.random_range(exp).clamp(1, 254) as u32;
    sign | e << 23 | rng.random::<u32>() & 0x7f_ffff
}

/// A random normal within the whole range.
fn any_f32(rng: &mut ChaCha8Rng, signed: bool) -> u32 {
    rand_f32(rng, 1..=254, signed)
}

/// Move a finite binary32 by `d` ulps (staying finite and keeping its sign); `None` when the
/// result would not be a normal number or zero.
fn nudge(x: f32, d: i32) -> Option<u32> {
    if !x.is_finite() || x == 0.0 {
        return None;
    }
    let mag = (x.to_bits() & 0x7fff_ffff) as i64 + d as i64;
    let sign = x.to_bits() & 0x8000_0000;
    if !(0x0080_0000..=0x7f7f_ffff).contains(&mag) {
        return None;
    }
    Some(sign | mag as u32)
}

/// `b` such that `a op b` lands near `target` (a few ulps either way), for MUL and DIV.
fn near(rng: &mut ChaCha8Rng, op: Op, target: f64) -> Option<Req> {
    let a = f32::from_bits(any_f32(rng, true));
    if a == 0.0 {
        return None;
    }
    let b = match op {
        Op::Mul => (target / a as f64) as f32,
        _ => (a as f64 / target) as f32,
    };
    let b = nudge(b, rng.random_range(-3..=3))?;
    let b = if rng.random_bool(0.5) { b ^ 0x8000_0000 } else { b };
    Some(Req::bits(op, a.to_bits(), b))
}

/// Targets where rounding meets the range: the overflow threshold, the smallest normal and the
/// half of the smallest subnormal (signed zero versus flushed subnormal). Exact in f64.
fn edges() -> [f64; 4] {
    let p = |k: i32| 2f64.powi(k);
    [
        p(128) - p(103),   // (2 - 2^-24) * 2^127: ties to infinity
        p(-126) - p(-150), // ties up to 2^-126
        p(-126),
        p(-150), // ties to zero
    ]
}

fn random_mul_div(seed: u64, op: Op) -> Vec<Req> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = Vec::with_capacity(RANDOM);
    while v.len() < RANDOM {
        let r = match rng.random_range(0..10) {
            // Anywhere: mostly overflow or underflow for MUL/DIV of random exponents.
            0..=2 => Some(Req::bits(op, any_f32(&mut rng, true), any_f32(&mut rng, true))),
            // Results in the normal range (exponents chosen to land near 2^0).
            3..=6 => {
                let a = rand_f32(&mut rng, 64..=190, true);
                let b = rand_f32(&mut rng, 64..=190, true);
                Some(Req::bits(op, a, b))
            }
            // Next to the edges of the range.
            _ => {
                let t = edges()[rng.random_range(0..4)];
                near(&mut rng, op, t)
            }
        };
        v.extend(r);
    }
    v
}

// ---------------------------------------------------------------- edge cases

fn mul_div_edges(op: Op) -> Vec<Req> {
    let mut v = Vec::new();
    let vals = [
        0.0f32,
        -0.0,
        1.0,
        -1.0,
        2.0,
        0.5,
        3.0,
        1.5,
        1.0 + f32::EPSILON,
        2.0 - f32::EPSILON,
        f32::MAX,
        -f32::MAX,
        MIN_NORMAL,
        -MIN_NORMAL,
        pow2(-75),
        pow2(-63),
        pow2(64),
        pow2(127),
        7.0,
        0.1,
        1.0 / 3.0,
    ];
    for &a in &vals {
        for &b in &vals {
            v.push(Req::ab(op, a, b));
        }
    }
    // Exactly 2^-150 (a tie between 0 and 2^-149: signed zero), just above it (a subnormal: +0).
    for s in [1.0f32, -1.0] {
        if op == Op::Mul {
            v.push(Req::ab(op, s * pow2(-75), pow2(-75)));
            v.push(Req::ab(op, s * pow2(-75), 1.5 * pow2(-75)));
            v.push(Req::ab(op, s * pow2(-80), pow2(-80))); // far below: signed zero
                                                           // (2 - 2^-23) * 2^-127 = 2^-126 - 2^-150: ties up to the smallest normal.
            v.push(Req::ab(op, s * (2.0 - f32::EPSILON) * pow2(-64), pow2(-63)));
            // One ulp less: rounds to a subnormal, flushed to +0.
            v.push(Req::ab(op, s * (2.0 - 2.0 * f32::EPSILON) * pow2(-64), pow2(-63)));
            // Exactly 2^-127: subnormal -> +0.
            v.push(Req::ab(op, s * MIN_NORMAL, 0.5));
            // Just below 2^-126 by a tiny amount: rounds up to 2^-126.
            v.push(Req::ab(op, s * (1.0 - f32::EPSILON / 2.0), MIN_NORMAL));
            // Overflow: (2 - 2^-23) * 2 ties to infinity only past MAX + half ulp.
            v.push(Req::ab(op, s * f32::MAX, 1.0 + f32::EPSILON));
            v.push(Req::ab(op, s * f32::MAX, 2.0));
            v.push(Req::ab(op, s * pow2(64), pow2(64)));
            // Rounding ties in the significand: (1 + 2^-23)^2 = 1 + 2^-22 + 2^-46 (above half).
            v.push(Req::ab(op, s * (1.0 + f32::EPSILON), 1.0 + f32::EPSILON));
            // 3 * (1 + 2^-23) * ... odd products with an exact half ulp: (2^12+1)^2 = 2^24 + 2^13 + 1.
            v.push(Req::ab(op, s * 4097.0, 4097.0));
            v.push(Req::ab(op, s * 4097.0, 4095.0));
            v.push(Req::ab(op, s * 8388609.0, 3.0)); // (2^23+1)*3 = 3*2^23 + 3: tie, to even
            v.push(Req::ab(op, s * 8388609.0, 5.0));
        } else {
            v.push(Req::ab(op, s * pow2(-75), pow2(75)));
            v.push(Req::ab(op, s * 1.5 * pow2(-75), pow2(75)));
            v.push(Req::ab(op, s * MIN_NORMAL, 2.0)); // 2^-127 -> +0
            v.push(Req::ab(op, s * MIN_NORMAL, 1.0 + f32::EPSILON)); // (1 - 2^-23 + ...) * 2^-126: a subnormal -> +0
            v.push(Req::ab(op, s * (2.0 - f32::EPSILON) * pow2(-64), pow2(63)));
            v.push(Req::ab(op, s * (2.0 - 2.0 * f32::EPSILON) * pow2(-64), pow2(63)));
            v.push(Req::ab(op, s * f32::MAX, 1.0 - f32::EPSILON / 2.0));
            v.push(Req::ab(op, s * f32::MAX, 0.5));
            v.push(Req::ab(op, s * pow2(100), pow2(-100)));
            v.push(Req::ab(op, s * 1.0, 3.0));
            v.push(Req::ab(op, s * 2.0, 3.0));
            v.push(Req::ab(op, s * 1.0, 7.0));
            v.push(Req::ab(op, s * 127.0, 4096.0 * 1024.0));
            v.push(Req::ab(op, s * 1.0, 1.0 + f32::EPSILON)); // 1 - 2^-23 + ...: inexact, below 1
            v.push(Req::ab(op, s * (1.0 + f32::EPSILON), 2.0 - f32::EPSILON));
        }
    }
    v
}

fn add_edges() -> Vec<Req> {
    let e = f32::EPSILON; // 2^-23
    let pairs: Vec<(f32, f32)> = vec![
        (0.0, 0.0),
        (0.0, -0.0),
        (-0.0, 0.0),
        (-0.0, -0.0),
        (1.0, 0.0),
        (-1.0, 0.0),
        (0.0, -1.0),
        (-0.0, 1.0),
        (1.0, -1.0),
        (-1.0, 1.0),
        (f32::MAX, -f32::MAX),
        (MIN_NORMAL, -MIN_NORMAL),
        (1.0, 1.0),
        (1.0, e / 2.0),            // tie: 1 + 2^-24 -> 1 (even)
        (1.0 + e, e / 2.0),        // tie: -> 1 + 2^-22 (even)
        (1.0, e / 2.0 + e / 4.0),  // above half: rounds up
        (1.0, e / 4.0),            // below half
        (1.0, -e / 4.0),           // 1 - 2^-25 -> 1
        (1.0, -e / 2.0),           // exactly 1 - 2^-24, representable
        (1.0, -e / 4.0 - e / 8.0), // 1 - 3*2^-26: -> 1 - 2^-24
        (1.0, pow2(-100)),
        (1.0, -pow2(-100)),
        (1.5, -pow2(-100)),
        (pow2(100), 1.0),
        (1.0, -(1.0 - e / 2.0)), // cancellation to 2^-24
        (1.0 + e, -1.0),         // cancellation to 2^-23
        (2.0, -(2.0 - e)),       // cancellation to 2^-22 (exponents differ by one)
        (2.0, -(1.0 + e)),       // one-bit normalization after a one-bit alignment
        (1.0, -(2.0 - e)),
        (f32::MAX, f32::MAX),  // overflow
        (f32::MAX, pow2(103)), // MAX + half ulp: tie to even = 2^128 -> inf
        (f32::MAX, pow2(102)), // below the tie: MAX
        (-f32::MAX, -pow2(103)),
        (f32::MAX, -pow2(103)),
        (2.0 * MIN_NORMAL, -MIN_NORMAL * (1.0 + e)), // 2^-126 - 2^-149: subnormal -> +0
        (2.0 * MIN_NORMAL, -MIN_NORMAL),             // exactly 2^-126
        (-2.0 * MIN_NORMAL, MIN_NORMAL * (1.0 + e)), // negative subnormal -> +0
        (MIN_NORMAL * (1.0 + e), -MIN_NORMAL),       // 2^-149 -> +0
        (MIN_NORMAL * 1.5, MIN_NORMAL * 1.5),
        (3.0, 5.0),
        (0.1, 0.2),
        (16777216.0, 1.0),  // 2^24 + 1: tie -> 2^24
        (16777216.0, 3.0),  // 2^24 + 3: tie -> 2^24 + 4
        (16777216.0, -1.0), // 2^24 - 1 exact
        (16777216.0, -0.5), // 2^24 - 0.5: the ulp below 2^24 is 1, a tie -> 2^24 (even)
        (16777216.0, -0.25),
        (-16777216.0, 0.75),
    ];
    let mut v = Vec::new();
    for (a, b) in pairs {
        v.push(Req::ab(Op::Add, a, b));
        v.push(Req::ab(Op::Add, b, a));
        v.push(Req::ab(Op::Sub, a, -b));
        v.push(Req::ab(Op::Sub, -a, b));
    }
    v
}

fn random_add(seed: u64, op: Op) -> Vec<Req> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..RANDOM)
        .map(|_| {
            let a = any_f32(&mut rng, true);
            // Some near the bottom of the range: differences that fall below it.
            let a = if rng.random_range(0..8) == 0 { rand_f32(&mut rng, 1..=3, true) } else { a };
            let ea = ((a >> 23) & 0xff) as i32;
            let b = match rng.random_range(0..8) {
                0 | 1 => any_f32(&mut rng, true),
                // Exponents within the alignment window and a bit beyond.
                2..=4 => rand_f32(&mut rng, ea - 30..=ea + 30, true),
                // Same or adjacent exponent: cancellation.
                5 | 6 => rand_f32(&mut rng, ea - 1..=ea + 1, true),
                // A few ulps from -a or a: massive cancellation, or exact doubling.
                _ => nudge(f32::from_bits(a ^ 0x8000_0000), rng.random_range(-4..=4)).unwrap_or(a),
            };
            Req::bits(op, a, b)
        })
        .collect()
}

fn sqrt_edges() -> Vec<Req> {
    let mut v: Vec<Req> = [
        0.0f32,
        -0.0,
        1.0,
        2.0,
        3.0,
        4.0,
        0.5,
        0.25,
        9.0,
        1.0 + f32::EPSILON,
        2.0 - f32::EPSILON,
        4.0 - 2.0 * f32::EPSILON,
        f32::MAX,
        MIN_NORMAL,
        2.0 * MIN_NORMAL,
        pow2(127),
        pow2(-125),
        1e-30,
        123456789.0,
    ]
    .iter()
    .map(|&a| Req::ab(Op::Sqrt, a, 0.0))
    .collect();
    // Perfect squares: exact roots.
    for r in [3u32, 255, 4095, 4097, 65535, 1 << 11, 0xfff_fff >> 1] {
        let x = (r as f64 * r as f64) as f32;
        v.push(Req::ab(Op::Sqrt, x, 1.0));
        v.push(Req::ab(Op::Sqrt, x * pow2(-60), 1.0));
    }
    // b must not matter.
    v.push(Req::bits(Op::Sqrt, 2.0f32.to_bits(), 0xffff_ffff));
    v
}

fn random_sqrt(seed: u64) -> Vec<Req> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..RANDOM).map(|_| Req::bits(Op::Sqrt, any_f32(&mut rng, false), rng.random())).collect()
}

/// I2F edge cases for a `w`-bit integer input.
fn i2f_edges(w: u32) -> Vec<Req> {
    let max = u128::MAX >> (128 - w);
    let top = |pattern: u128, bits: u32| pattern << (w - bits); // `bits` significant bits at the top
    let mut v: Vec<u128> = vec![
        0,
        1,
        2,
        3,
        (1 << 24) - 1,
        1 << 24,
        (1 << 24) + 1, // tie -> 2^24
        (1 << 24) + 2,
        (1 << 24) + 3, // tie -> 2^24 + 4
        (1 << 25) - 1, // -> 2^25
        (1 << 25) + 1, // below half of the ulp 4
        (1 << 25) + 2, // tie -> 2^25 (even)
        (1 << 25) + 3,
        (1 << 25) + 6, // tie -> 2^25 + 8
        u32::MAX as u128,
        u64::MAX as u128,
        (1u128 << 80) - 1, // the widest sum of squares of numerics.md
        max,               // -> 2^w
        max >> 1,
        top(0xff_ffff, 24),      // exact, at the top
        top(0x100_0001, 25) + 1, // tie plus a far sticky bit: rounds up
        top(0x100_0001, 25),     // exact tie: rounds to even (down)
        top(0x100_0003, 25),     // exact tie: rounds to even (up)
        top(1, 1),
        top(1, 1) + 1,
        top(0x1ff_ffff, 25), // tie at the top: carries into the next octave
    ];
    v.retain(|&x| x <= max);
    v.extend((0..w).map(|s| 1u128 << s));
    v.into_iter().map(Req::int).collect()
}

/// Random `w`-bit integers: uniform bit length, then uniform bits; some exact ties.
fn random_i2f(seed: u64, w: u32, n: usize) -> Vec<Req> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let bits = rng.random_range(0..=w);
            let x = if bits == 0 { 0 } else { rng.random::<u128>() >> (128 - bits) | 1u128 << (bits - 1) };
            // Some with an exact tie: 24 significant bits, then 1, then zeros.
            let x = if bits > 26 && rng.random_bool(0.2) {
                let sh = bits - 25;
                (x >> sh << sh) | 1u128 << (sh - 1)
            } else {
                x
            };
            Req::int(x)
        })
        .collect()
}

fn ldexp_edges() -> Vec<Req> {
    let mut v = Vec::new();
    for s in [1.0f32, -1.0] {
        for (a, k) in [
            (1.0f32, 0),
            (1.0, -126),
            (1.0, -127), // 2^-127: subnormal -> +0
            (1.0, -149),
            (1.0, -150),                // 2^-150: tie -> signed zero
            (1.5, -150),                // rounds to 2^-149: subnormal -> +0
            (1.0, -151),                // signed zero
            (2.0 - f32::EPSILON, -127), // 2^-126 - 2^-150: ties up to 2^-126
            (2.0 - 2.0 * f32::EPSILON, -127),
            (1.0, 127),
            (1.0, 128), // inf
            (f32::MAX, 0),
            (f32::MAX, 1),
            (f32::MAX, -253),
            (f32::MAX, -300),
            (MIN_NORMAL, 253),
            (MIN_NORMAL, 254),
            (1.0, i32::MAX),
            (1.0, i32::MIN),
            (1.0, 512),
            (1.0, -512),
            (1.0, -513),
            (0.0, 5),
            (0.0, -5),
            (3.0, -2),
        ] {
            v.push(Req::ldexp(s * a, k));
        }
    }
    v
}

fn random_ldexp(seed: u64) -> Vec<Req> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..RANDOM)
        .map(|_| {
            let a = any_f32(&mut rng, true);
            // Some with an all-ones significand (or one less): the ones that can round up to 2^-126.
            let a = if a & 0x7fff_ffff != 0 && rng.random_range(0..4) == 0 {
                a | 0x7f_fffe | rng.random_range(0..2)
            } else {
                a
            };
            let a = f32::from_bits(a);
            let k = match rng.random_range(0..4) {
                0 => rng.random_range(-300..=300),
                1 => rng.random::<i32>(),
                // Land near the bottom or top of the range.
                _ => {
                    let e = ((a.to_bits() >> 23) & 0xff) as i32 - 127;
                    let target = if rng.random_bool(0.5) { -127 } else { 127 };
                    target - e + rng.random_range(-24..=24)
                }
            };
            // 0 * 2^k for k >= 1024 is NaN in the reference (exp2 overflows to infinity), the
            // signed zero here: a documented deviation, see `documented_deviations`.
            Req::ldexp(a, if a == 0.0 { k.min(1023) } else { k })
        })
        .collect()
}

// ---------------------------------------------------------------- tests

#[test]
fn mul_matches_reference() {
    let mut fpu = Fpu::new();
    check(&mut fpu, &mul_div_edges(Op::Mul));
    let reqs = random_mul_div(1, Op::Mul);
    assert_covers(&reqs, [100; 4]);
    check(&mut fpu, &reqs);
}

#[test]
fn div_matches_reference() {
    let mut fpu = Fpu::new();
    check(&mut fpu, &mul_div_edges(Op::Div));
    let reqs = random_mul_div(2, Op::Div);
    assert_covers(&reqs, [100; 4]);
    check(&mut fpu, &reqs);
}

#[test]
fn add_and_sub_match_reference() {
    let mut fpu = Fpu::new();
    check(&mut fpu, &add_edges());
    for (seed, op) in [(3, Op::Add), (4, Op::Sub)] {
        let reqs = random_add(seed, op);
        assert_covers(&reqs, [0, 0, 100, 20]);
        check(&mut fpu, &reqs);
    }
}

#[test]
fn sqrt_matches_reference() {
    let mut fpu = Fpu::new();
    check(&mut fpu, &sqrt_edges());
    check(&mut fpu, &random_sqrt(5));
}

#[test]
fn int_to_float_matches_reference() {
    let mut fpu = Fpu::new();
    check(&mut fpu, &i2f_edges(INT_W));
    check(&mut fpu, &random_i2f(6, INT_W, RANDOM));
}

#[test]
fn int_width_is_a_parameter() {
    for w in [32, 128] {
        let mut fpu = Fpu::with_int_width(w);
        check(&mut fpu, &i2f_edges(w));
        check(&mut fpu, &random_i2f(20 + w as u64, w, 2000));
        check(&mut fpu, &mul_div_edges(Op::Div)[..50]);
    }
    // Out of range: elaboration stops with the rule.
    let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let e = match Model::new(&spec(16)) {
        Ok(_) => panic!("INT_W = 16 must not elaborate"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("INT_W = 16, must be 32..256"), "{e}");
}

#[test]
fn ldexp_matches_reference() {
    let mut fpu = Fpu::new();
    check(&mut fpu, &ldexp_edges());
    let reqs = random_ldexp(7);
    assert_covers(&reqs, [10, 100, 100, 100]);
    check(&mut fpu, &reqs);
}

/// Infinity and NaN never occur in valid operation; the unit follows IEEE where the standard
/// fixes the result (NaN results compare as the canonical quiet NaN).
#[test]
fn special_values_follow_ieee() {
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    let mut v = Vec::new();
    for (a, b) in [
        (inf, 2.0),
        (-inf, 2.0),
        (inf, -0.0),
        (0.0, inf),
        (inf, inf),
        (inf, -inf),
        (1.0, 0.0),
        (-1.0, 0.0),
        (1.0, -0.0),
        (0.0, 0.0),
        (-0.0, 0.0),
        (1.0, inf),
        (-1.0, inf),
        (inf, 1.0),
        (nan, 1.0),
        (1.0, nan),
        (f32::MAX, -inf),
    ] {
        for op in [Op::Mul, Op::Div, Op::Add, Op::Sub] {
            v.push(Req::ab(op, a, b));
        }
    }
    for a in [inf, -inf, nan, -1.0, -f32::MAX, -MIN_NORMAL] {
        v.push(Req::ab(Op::Sqrt, a, 0.0));
    }
    for k in [-5, 0, 5] {
        v.push(Req::ldexp(inf, k));
        v.push(Req::ldexp(-inf, k));
        v.push(Req::ldexp(nan, k));
    }
    let mut fpu = Fpu::new();
    check(&mut fpu, &v);
    // Operation 7 is reserved: NaN.
    let r = Req { op: Op::Mul, a: 1.0f32.to_bits(), b: 1.0f32.to_bits(), int: 0 };
    fpu.drive(&r);
    fpu.m.set_u64(fpu.op, 7);
    fpu.m.set_u64(fpu.req_valid, 1);
    fpu.m.tick();
    fpu.m.set_u64(fpu.req_valid, 0);
    fpu.m.run_until(100, |m| m.get_u64(fpu.rsp_valid) == 1).unwrap();
    assert_eq!(fpu.m.get_u64(fpu.res) as u32, QNAN);
}

/// Documented deviations, outside valid operation: subnormal operands are read as zero of the
/// same sign; LDEXP of a zero is a zero for every k (the reference gives NaN for k >= 1024).
#[test]
fn documented_deviations() {
    let sub = 0x0000_0001u32; // 2^-149
    let mut fpu = Fpu::new();
    for (op, a, b, want) in [
        (Op::Mul, sub, pow2(100).to_bits(), 0u32),
        (Op::Mul, sub | 1 << 31, pow2(100).to_bits(), 0x8000_0000),
        (Op::Add, sub, 0, 0),
        (Op::Add, 1.0f32.to_bits(), sub, 1.0f32.to_bits()),
        (Op::Div, 1.0f32.to_bits(), sub, f32::INFINITY.to_bits()),
        (Op::Ldexp, 0, 1024, 0),
        (Op::Ldexp, 0x8000_0000, i32::MAX as u32, 0x8000_0000),
    ] {
        assert_eq!(fpu.run(&Req::bits(op, a, b)).0, want, "{op:?} {a:#x} {b:#x}");
    }
}

/// One request at a time: ready only when idle, the response held until accepted; latency per
/// operation within the documented bounds.
#[test]
fn handshake_and_latency() {
    let mut fpu = Fpu::new();
    // Back-pressure: the response waits, stable, and no new request is accepted meanwhile.
    let r = Req::ab(Op::Div, 1.0, 3.0);
    fpu.drive(&r);
    fpu.m.set_u64(fpu.req_valid, 1);
    fpu.m.tick();
    fpu.m.set_u64(fpu.req_valid, 0);
    let m = &mut fpu.m;
    m.run_until(100, |m| m.get_u64(fpu.rsp_valid) == 1).unwrap();
    let first = m.get_u64(fpu.res);
    assert_eq!(first as u32, r.reference());
    // Keep a different request pending while the response is refused.
    m.set_u64(fpu.op, Op::Mul as u64);
    m.set_u64(fpu.req_valid, 1);
    for _ in 0..10 {
        m.tick();
        assert_eq!(m.get_u64(fpu.rsp_valid), 1);
        assert_eq!(m.get_u64(fpu.req_ready), 0);
        assert_eq!(m.get_u64(fpu.res), first);
    }
    m.set_u64(fpu.rsp_ready, 1);
    m.tick();
    m.set_u64(fpu.rsp_ready, 0);
    // Now idle: the pending MUL (1 * 3) is accepted on the next edge.
    m.eval();
    assert_eq!(m.get_u64(fpu.req_ready), 1);
    m.tick();
    m.set_u64(fpu.req_valid, 0);
    m.run_until(100, |m| m.get_u64(fpu.rsp_valid) == 1).unwrap();
    assert_eq!(m.get_u64(fpu.res) as u32, 3.0f32.to_bits());
    m.set_u64(fpu.rsp_ready, 1);
    m.tick();
    m.set_u64(fpu.rsp_ready, 0);

    // Latency from acceptance to rsp_valid_o: the documented ranges, each end reached.
    let mut table = Vec::new();
    let mut lat = |name: &str, reqs: &[Req], lo: u64, hi: u64| {
        let c: Vec<u64> = reqs.iter().map(|r| fpu.run(r).1).collect();
        let (min, max) = (*c.iter().min().unwrap(), *c.iter().max().unwrap());
        table.push(format!("{name}: {min}..={max} cycles"));
        assert!(min == lo && max == hi, "{name} latency {min}..={max}, documented {lo}..={hi}");
    };
    let finite = |r: &&Req| {
        let (a, b) = (f32::from_bits(r.a), f32::from_bits(r.b));
        a.is_finite() && b.is_finite() && (r.op != Op::Div || b != 0.0)
    };
    let pick = |v: Vec<Req>| -> Vec<Req> { v.iter().filter(finite).take(2000).copied().collect() };
    lat("MUL", &pick(random_mul_div(11, Op::Mul)), 31, 32);
    lat("DIV", &pick(random_mul_div(12, Op::Div)), 31, 32);
    lat("SQRT", &pick(random_sqrt(14)), 30, 31);
    let mut add = pick(random_add(13, Op::Add));
    add.extend([Req::ab(Op::Add, 0.0, 0.0), Req::ab(Op::Add, 1.0, -(1.0 - f32::EPSILON / 2.0))]);
    lat("ADD", &add, 4, 35);
    lat("I2F", &i2f_edges(INT_W), INT_W as u64 + 3, INT_W as u64 + 29);
    let ldexp: Vec<Req> = random_ldexp(15).into_iter().filter(|r| (r.b as i32).abs() < 512).take(2000).collect();
    lat("LDEXP", &ldexp, 4, 4);
    let special = [
        Req::ab(Op::Mul, f32::INFINITY, 1.0),
        Req::ab(Op::Div, 1.0, 0.0),
        Req::ab(Op::Div, 1.0, f32::INFINITY),
        Req::ab(Op::Add, f32::NAN, 1.0),
        Req::ab(Op::Sqrt, -1.0, 0.0),
        Req::ldexp(1.0, 1 << 20),
    ];
    lat("special", &special, 3, 3);
    eprintln!("fp32_scalar latency (acceptance to rsp_valid_o):\n{}", table.join("\n"));
}

/// The RTL is lint-clean, simulates the same in Icarus, and synthesizes in yosys without DSPs;
/// the extreme `INT_W` elaborates too.
#[test]
fn rtl_is_accepted_by_verilator_icarus_and_yosys() {
    let write = |files: &[(String, String)]| {
        let dir = tempfile::tempdir().unwrap();
        let mut list = String::new();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
            list.push_str(&format!("{name}\n"));
        }
        std::fs::write(dir.path().join("filelist.f"), list).unwrap();
        dir
    };
    let wide = spec(256);
    let dir = write(&wide.sources);
    host::synth::verilator_lint(dir.path(), &wide.top).unwrap_or_else(|e| panic!("{e:#}"));
    host::synth::iverilog(dir.path(), &wide.top).unwrap_or_else(|e| panic!("{e:#}"));

    let dir = write(&spec(INT_W).sources);
    host::synth::verilator_lint(dir.path(), "fp32_scalar").unwrap_or_else(|e| panic!("{e:#}"));
    host::synth::iverilog(dir.path(), "fp32_scalar").unwrap_or_else(|e| panic!("{e:#}"));
    icarus_agrees(dir.path());
    let stats = host::synth::yosys_xilinx(dir.path(), "fp32_scalar").unwrap_or_else(|e| panic!("{e:#}"));
    let (luts, ffs) = (stats.count_prefix("LUT"), stats.count_prefix("FD"));
    eprintln!("fp32_scalar (INT_W = {INT_W}): {luts} LUTs, {ffs} FFs, cells {:?}", stats.cells);
    assert_eq!(stats.count_prefix("DSP"), 0, "{:?}", stats.cells);
    // ~240 FFs of state and the 67-bit request register (op, a, b: S_LOAD decodes from it).
    assert!(luts > 0 && luts < 1000 && ffs < 400, "{:?}", stats.cells);
}

/// Run edge cases of every operation through Icarus (`iverilog` + `vvp`) and compare with the
/// reference: no Verilator-only semantics (unreset registers, part-selects) hide in the RTL.
fn icarus_agrees(dir: &std::path::Path) {
    use sim::tools::{find, Tool};
    let mut reqs = mul_div_edges(Op::Mul)[..60].to_vec();
    reqs.extend(&mul_div_edges(Op::Div)[..60]);
    reqs.extend(add_edges());
    reqs.extend(sqrt_edges());
    reqs.extend(i2f_edges(INT_W));
    reqs.extend(ldexp_edges());
    let mut init = String::new();
    for (i, r) in reqs.iter().enumerate() {
        init.push_str(&format!(
            "    op[{i}] = 3'd{}; a[{i}] = 32'h{:08x}; b[{i}] = 32'h{:08x}; x[{i}] = {INT_W}'h{:x};\n",
            r.op as u32, r.a, r.b, r.int
        ));
    }
    let n = reqs.len();
    let tb = format!(
        r#"`timescale 1ns/1ps
module tb;
  logic clk = 1'b0, rst_n = 1'b0, req_valid = 1'b0, req_ready, rsp_valid;
  logic [2:0] op_i;
  logic [31:0] a_i, b_i, res;
  logic [{m}:0] x_i;
  logic [2:0] op [{n}];
  logic [31:0] a [{n}], b [{n}];
  logic [{m}:0] x [{n}];
  always #5 clk = !clk;
  fp32_scalar dut (
    .clk_i (clk), .rst_ni (rst_n), .req_valid_i (req_valid), .req_ready_o (req_ready),
    .op_i, .a_i, .b_i, .int_i (x_i), .rsp_valid_o (rsp_valid), .rsp_ready_i (1'b1), .res_o (res)
  );
  initial begin
{init}    repeat (2) @(negedge clk);
    rst_n = 1'b1;
    for (int i = 0; i < {n}; i++) begin
      @(negedge clk);
      op_i = op[i]; a_i = a[i]; b_i = b[i]; x_i = x[i]; req_valid = 1'b1;
      @(negedge clk);
      req_valid = 1'b0;
      for (int c = 0; c < 1000 && !rsp_valid; c++) @(negedge clk);
      $display("res %h", res);
    end
    $finish;
  end
endmodule
"#,
        m = INT_W - 1
    );
    std::fs::write(dir.join("tb.sv"), tb).unwrap();
    let iv = find(Tool::Iverilog)
        .unwrap()
        .command()
        .args(["-g2012", "-o", "tb.vvp", "-s", "tb", "fp32_round.sv", "fp32_scalar.sv", "tb.sv"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(iv.status.success(), "{}", String::from_utf8_lossy(&iv.stderr));
    let run = find(Tool::Vvp).unwrap().command().arg("tb.vvp").current_dir(dir).output().unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    let got: Vec<u32> =
        out.lines().filter_map(|l| l.strip_prefix("res ")).map(|h| u32::from_str_radix(h, 16).unwrap()).collect();
    assert_eq!(got.len(), n, "vvp printed {} results:\n{out}", got.len());
    for (r, &g) in reqs.iter().zip(&got) {
        let want = r.reference();
        let ok = if f32::from_bits(want).is_nan() { g == QNAN } else { g == want };
        assert!(ok, "Icarus: {r:?}: {} reference {}", show(g), show(want));
    }
}
