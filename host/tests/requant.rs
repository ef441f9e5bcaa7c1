//! The requant lanes (hdl/rtl/requant.sv, requant_round.sv) against model::numerics::requant + sat_i32, bit for
//! bit: ties, zero and huge/tiny scales, extreme inputs, and random pairs. Two lanes share each
//! scale (the decoded shift is shared): lane 0 gets a case's x, lane 1 the next case's x.

use model::numerics::{requant, sat_i32};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::{BuildSpec, Model, PortSpec};
use std::sync::Mutex;

static BUILD: Mutex<()> = Mutex::new(());

const LANES: usize = 2;

fn lanes(in_w: usize, frac: u32) -> Model {
    let top = format!(
        "`default_nettype none\nmodule rq_top (input wire logic clk_i, input wire logic rst_ni, input wire logic valid_i,\n  input wire logic [{}:0] x_i, input wire logic [31:0] scale_i, output logic valid_o, output logic [{}:0] y_o);\n  requant #(.LANES({LANES}), .IN_W({in_w}), .FRAC({frac})) u (.*);\nendmodule\n`resetall\n",
        LANES * in_w - 1,
        LANES * 32 - 1
    );
    let p = |n: &str, w: usize, input: bool| PortSpec { name: n.into(), width: w, input };
    let spec = BuildSpec {
        top: "rq_top".into(),
        sources: vec![
            ("trit_num.sv".into(), include_str!("../../hdl/rtl/trit_num.sv").into()),
            ("requant_round.sv".into(), include_str!("../../hdl/rtl/requant_round.sv").into()),
            ("mul_pieces.sv".into(), include_str!("../../hdl/rtl/mul_pieces.sv").into()),
            ("requant.sv".into(), include_str!("../../hdl/rtl/requant.sv").into()),
            ("rq_top.sv".into(), top),
        ],
        ports: vec![
            p("clk_i", 1, true),
            p("rst_ni", 1, true),
            p("valid_i", 1, true),
            p("x_i", LANES * in_w, true),
            p("scale_i", 32, true),
            p("valid_o", 1, false),
            p("y_o", LANES * 32, false),
        ],
        clock: "clk_i".into(),
        trace: false,
        cache_dir: None,
    };
    let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    Model::new(&spec).unwrap_or_else(|e| panic!("{e}"))
}

/// `values` (each `in_w` bits, two's complement) packed lane after lane into 32-bit words.
fn pack(values: &[i64], in_w: usize) -> Vec<u32> {
    let mut words = vec![0u32; (values.len() * in_w).div_ceil(32)];
    for (l, &v) in values.iter().enumerate() {
        for b in 0..in_w {
            if (v >> b.min(63)) & 1 == 1 {
                let at = l * in_w + b;
                words[at / 32] |= 1 << (at % 32);
            }
        }
    }
    words
}

fn check(in_w: usize, frac: u32, cases: &[(i64, f32)]) {
    let mut m = lanes(in_w, frac);
    let (rst, v, x, s, vo, y) = (
        m.port("rst_ni").unwrap(),
        m.port("valid_i").unwrap(),
        m.port("x_i").unwrap(),
        m.port("scale_i").unwrap(),
        m.port("valid_o").unwrap(),
        m.port("y_o").unwrap(),
    );
    m.set_u64(rst, 0);
    m.tick();
    m.set_u64(rst, 1);
    let lane_x = |i: usize, l: usize| cases[(i + l) % cases.len()].0;
    let mut got = Vec::new();
    for i in 0..cases.len() + 4 {
        // the pipeline is three stages; drain it
        if let Some(&(_, sv)) = cases.get(i) {
            m.set_u64(v, 1);
            let xs: Vec<i64> = (0..LANES).map(|l| lane_x(i, l)).collect();
            m.set(x, &pack(&xs, in_w));
            m.set_u64(s, sv.to_bits() as u64);
        } else {
            m.set_u64(v, 0);
        }
        m.tick();
        m.eval();
        if m.get_u64(vo) == 1 {
            got.push(m.get(y));
        }
    }
    assert_eq!(got.len(), cases.len());
    for (i, (&(_, sv), g)) in cases.iter().zip(got).enumerate() {
        for (l, &word) in g.iter().enumerate().take(LANES) {
            let xv = lane_x(i, l);
            let want = sat_i32(requant(xv as i128, sv, frac));
            assert_eq!(word as i32, want, "lane {l}: x = {xv}, s = {sv:e} ({:#010x}), frac {frac}", sv.to_bits());
        }
    }
}

fn cases(in_w: usize, seed: u64) -> Vec<(i64, f32)> {
    let lim = if in_w >= 64 { i64::MAX } else { (1i64 << (in_w - 1)) - 1 };
    let mut v: Vec<(i64, f32)> = vec![
        (0, 1.0),
        (12345, 0.0),
        (1, 2f32.powi(-17)),
        (3, 2f32.powi(-17)),
        (-1, 2f32.powi(-17)),
        (-3, 2f32.powi(-17)),
        (5, 1.5 * 2f32.powi(-18)),
        (lim, 1.0),
        (-lim - 1, 1.0),
        (lim, 2f32.powi(100)),
        (-lim - 1, 2f32.powi(100)),
        (7, 2f32.powi(-120)),
        (lim, f32::MIN_POSITIVE),
        (1, 2f32.powi(15)),
        (-1, 2f32.powi(15)),
        (1, 2f32.powi(16)),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..20000 {
        let x = match rng.random_range(0..3) {
            0 => rng.random_range(-lim - 1..=lim),
            1 => rng.random_range(-1000..1000),
            _ => rng.random_range(-(1i64 << 24)..(1i64 << 24)).clamp(-lim - 1, lim),
        };
        let e: i32 = rng.random_range(-40..10);
        let s = f32::from_bits(((e + 127) as u32) << 23 | rng.random_range(0..1u32 << 23));
        v.push((x, s));
    }
    v
}

#[test]
fn requant_lanes_match_the_reference() {
    check(32, 16, &cases(32, 1));
    check(24, 16, &cases(24, 2));
    check(64, 0, &cases(64, 3));
}
