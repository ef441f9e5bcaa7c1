//! Equivalence proofs: RTL arithmetic written for fewer LUTs equals its straightforward
//! definition for every input, checked with yosys `sat -prove` (a SAT solver over all input
//! bits, not samples).
//!
//! requant_round.sv's `rq_apply` (with `rq_decode`, the shift decoded once for all lanes)
//! against model::numerics::requant + saturation (written out in SystemVerilog) at every width an
//! engine instantiates it with (linear layers, LM head, attention, the quantizers' codes); and
//! op_vector's `bn_at` (block normalization) against `trit_num::rne_shift`; and
//! `trit_num::lead_one` (two levels: bytes, then bits) against the plain priority loop; and
//! op_embed's `f16_pre` (fp16 -> Q.16 by cases of the exponent) against the conversion written
//! out (shift, remainder against half a step, saturation by compare); and `trit_num::i2f_at`
//! (rounding by round and sticky bits) against the remainder-against-half rounding; and
//! op_linear's `div_ceil` (a multiply by a reciprocal) against the division it replaces.

use sim::tools::{find, Tool};
use std::process::Command;

/// The text of `src` between `// [proof: NAME begin]` and `// [proof: NAME end]`.
fn marked<'a>(src: &'a str, name: &str) -> &'a str {
    let begin = src.find(&format!("// [proof: {name} begin]")).expect("begin marker");
    let end = src.find(&format!("// [proof: {name} end]")).expect("end marker");
    &src[begin..end]
}

/// A module whose output `ok` is 1 iff requant's lane rounding equals the reference for a
/// product p of `pw` bits and a scale exponent e, saturated to `out_w` signed bits. The reference
/// is model::numerics::requant then saturation written out: p * 2^sh exact for sh >= 0 (in 192
/// bits: beyond sh = 63 every non-zero p saturates), `trit_num::rne_shift` for sh < 0.
/// (`trit_num::requant_shift` saturates from sh = 8 on, which equals this only for products with
/// a significand, |p| >= 2^23; the proof is over every p.)
fn rq_equivalence_module(pw: usize, frac: u32, out_w: u32) -> String {
    format!(
        "module eq (input logic signed [{p}:0] p, input logic [7:0] e, output logic ok);\n\
         \x20 localparam int P_W = {pw};\n\x20 localparam int FRAC = {frac};\n\x20 localparam int OUT_W = {out_w};\n{body}\n\
         \x20 localparam logic signed [191:0] HI = (192'sd1 <<< (OUT_W - 1)) - 192'sd1;\n\
         \x20 localparam logic signed [191:0] LO = 192'sd0 - (192'sd1 <<< (OUT_W - 1));\n\
         \x20 wire logic signed [10:0] sh = 11'($signed({{3'b0, e}})) - 11'sd150 + 11'sd{frac};\n\
         \x20 wire logic signed [191:0] left = 192'(p) <<< sh[5:0];\n\
         \x20 wire logic signed [191:0] right = 192'(trit_num::rne_shift(96'(p), 8'(11'sd0 - sh)));\n\
         \x20 logic signed [191:0] exact;\n\
         \x20 logic signed [OUT_W-1:0] reference;\n\
         \x20 always_comb begin\n\
         \x20   exact = sh >= 11'sd0 ? left : right;\n\
         \x20   if (e == 8'd0 || p == '0) reference = '0;\n\
         \x20   else if (sh > 11'sd63) reference = p < 0 ? Y_MIN : Y_MAX;\n\
         \x20   else reference = exact > HI ? Y_MAX : exact < LO ? Y_MIN : OUT_W'(exact);\n\
         \x20 end\n\
         \x20 wire logic signed [OUT_W-1:0] fast = rq_apply(p, rq_decode(e));\n\
         \x20 assign ok = fast == reference;\n\
         endmodule\n",
        p = pw - 1,
        body = marked(include_str!("../../hdl/rtl/requant_round.sv"), "rq_apply")
    )
}

/// A module whose output `ok` is 1 iff op_vector's block normalization equals the low 32 bits of
/// `trit_num::rne_shift(x, s)` (every shift the 96-bit products can need: s <= 96 - 30).
fn bn_equivalence_module() -> String {
    format!(
        "module eq (input logic signed [95:0] x, input logic [7:0] s, output logic ok);\n{body}\n\
         \x20 wire logic signed [95:0] reference = trit_num::rne_shift(x, s);\n\
         \x20 wire logic [31:0] fast = bn_at(x, s, bn_decode(s));\n\
         \x20 assign ok = s > 8'd66 || fast == reference[31:0];\n\
         endmodule\n",
        body = marked(include_str!("../../hdl/rtl/op_vector.sv"), "bn_at")
    )
}

/// Runs `sat -prove ok 1` on `module` (with trit_num); the yosys log, or None without yosys.
fn prove(module: &str) -> Option<String> {
    let Ok(yosys) = find(Tool::Yosys) else {
        println!("note: yosys not installed; skipping (scripts/setup.sh installs it)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let trit_num = dir.path().join("trit_num.sv");
    std::fs::write(&trit_num, include_str!("../../hdl/rtl/trit_num.sv")).unwrap();
    let eq = dir.path().join("eq.sv");
    std::fs::write(&eq, module).unwrap();
    let script = format!(
        "read_verilog -sv {} {}; hierarchy -top eq; proc; flatten; opt; sat -prove ok 1",
        trit_num.display(),
        eq.display()
    );
    let out = Command::new(&yosys.path).args(["-p", &script]).output().unwrap();
    assert!(out.status.success(), "yosys failed:\n{}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

const PROVEN: &str = "SAT proof finished - no model found: SUCCESS!";

/// Proves `module` (`what` names the function in the failure message), then checks that the
/// proof can fail: `module` with `from` replaced by `to` must give a counterexample.
fn assert_proven_and_mutation_caught(module: &str, what: &str, from: &str, to: &str) {
    let Some(log) = prove(module) else { return };
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    assert!(log.contains(PROVEN), "{what} differs from its reference:\n{}", tail.join("\n"));
    let broken = module.replace(from, to);
    assert_ne!(broken, module, "the mutation must change the source");
    let Some(log) = prove(&broken) else { return };
    assert!(!log.contains(PROVEN) && log.contains("model found: FAIL!"), "expected a counterexample:\n{log}");
}

#[test]
fn requant_lane_rounding_equals_the_reference_for_every_input() {
    // (product bits, fraction bits, result bits) of every instance: op_linear (24-bit
    // accumulators times a significand, Q.16), the LM head's logit (73, 16, 32), attention's
    // outputs (89, 0, 32) and its scores and weights (57, 16, 41), the quantizers' codes before
    // the clamp (57 or 73 bits, 0, 17); and a 32-bit input at Q.0.
    for (pw, frac, out_w) in
        [(49, 16, 32), (57, 0, 32), (73, 16, 32), (89, 0, 32), (57, 16, 41), (57, 0, 17), (73, 0, 17)]
    {
        let Some(log) = prove(&rq_equivalence_module(pw, frac, out_w)) else { return };
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        assert!(
            log.contains(PROVEN),
            "P_W = {pw}, FRAC = {frac}, OUT_W = {out_w}: rq_apply differs:\n{}",
            tail.join("\n")
        );
    }
}

/// The requant proof can fail: dropping the sticky bit from the tie rule is caught, and so is
/// the round-half-to-even tie rule forgotten (ties away from zero).
#[test]
fn a_wrong_requant_rounding_is_caught() {
    for (pw, frac, out_w, from, to) in
        [(49, 16, 32, "((|(p & lmask)) || t[1])", "t[1]"), (57, 0, 17, "|| t[1]", "|| 1'b1")]
    {
        let good = rq_equivalence_module(pw, frac, out_w);
        let broken = good.replace(from, to);
        assert_ne!(broken, good, "the mutation must change the source");
        let Some(log) = prove(&broken) else { return };
        assert!(!log.contains(PROVEN) && log.contains("model found: FAIL!"), "expected a counterexample:\n{log}");
    }
}

#[test]
fn op_vector_block_normalization_equals_the_reference_for_every_input() {
    // ... and a window one bit short of the round bit is caught.
    assert_proven_and_mutation_caught(&bn_equivalence_module(), "bn_at", "w[0] && ", "w[1] && ");
}

#[test]
fn lead_one_equals_the_priority_loop_for_every_input() {
    let module = |body: &str| {
        format!(
            "module eq (input logic [95:0] x, output logic ok);\n\
             \x20 logic [7:0] reference;\n\
             \x20 always_comb begin\n\
             \x20   reference = '0;\n\
             \x20   for (int b = 0; b < 96; b++) if (x[b]) reference = 8'(b);\n\
             \x20 end\n\
             \x20 assign ok = {body};\n\
             endmodule\n"
        )
    };
    let Some(log) = prove(&module("trit_num::lead_one(x) == reference")) else { return };
    assert!(log.contains(PROVEN), "lead_one differs from the loop:\n{log}");
    // ... and an off-by-one is caught.
    let Some(log) = prove(&module("trit_num::lead_one(x >> 1) == reference")) else { return };
    assert!(!log.contains(PROVEN) && log.contains("model found: FAIL!"), "expected a counterexample:\n{log}");
}

/// A module whose output `ok` is 1 iff op_embed's `f16_pre` equals the fp16 -> Q.16 conversion
/// of model::numerics::f16_to_fx written out plainly: value * 2^16 = m * 2^sh, a left shift
/// saturating at 2^31 by compare, a right shift rounding half to even by its remainder.
fn f16_equivalence_module() -> String {
    format!(
        "module eq (input logic [15:0] h, output logic ok);\n\
         \x20 localparam int PRE_W = 34;\n{body}\n\
         \x20 logic [4:0] e;\n\x20 logic [10:0] m, q, rem, half;\n\x20 logic [42:0] wide;\n\
         \x20 logic [31:0] mag;\n\x20 logic signed [6:0] sh;\n\x20 logic [PRE_W-1:0] reference;\n\
         \x20 always_comb begin\n\
         \x20   e = h[14:10];\n\
         \x20   m = e == 5'd0 ? {{1'b0, h[9:0]}} : {{1'b1, h[9:0]}};\n\
         \x20   sh = e == 5'd0 ? -7'sd8 : 7'($signed({{2'b0, e}})) - 7'sd9;\n\
         \x20   mag = '0;\n\x20   wide = '0;\n\x20   q = '0;\n\x20   rem = '0;\n\x20   half = '0;\n\
         \x20   if (sh >= 0) begin\n\
         \x20     wide = 43'(m) << sh;\n\
         \x20     mag = wide >= 43'h0_8000_0000 ? 32'h8000_0000 : wide[31:0];\n\
         \x20   end else begin\n\
         \x20     q = m >> (-sh);\n\
         \x20     rem = m & ((11'd1 << (-sh)) - 11'd1);\n\
         \x20     half = 11'd1 << (-sh - 7'sd1);\n\
         \x20     mag = 32'(q) + 32'(rem > half || (rem == half && q[0]));\n\
         \x20   end\n\
         \x20   if (e == 5'd31) reference = h[9:0] != '0 ? '0 : {{1'b1, h[15], 32'd0}};\n\
         \x20   else reference = {{mag == 32'h8000_0000, h[15], mag}};\n\
         \x20 end\n\
         \x20 assign ok = f16_pre(h) == reference;\n\
         endmodule\n",
        body = marked(include_str!("../../hdl/rtl/op_embed.sv"), "f16_pre")
    )
}

#[test]
fn f16_conversion_equals_the_plain_one_for_every_input() {
    // ... and rounding ties away from zero is caught.
    assert_proven_and_mutation_caught(&f16_equivalence_module(), "f16_pre", "(sticky || q[0])", "1'b1");
}

/// A module whose output `ok` is 1 iff `trit_num::i2f_at(x, lead_one(x))` equals the
/// conversion written out with the remainder compared against half a step (model::numerics'
/// `f32` of an integer: round half to even), for every 96-bit x.
fn i2f_equivalence_module() -> String {
    "module eq (input logic [95:0] x, output logic ok);\n\
     \x20 logic [7:0] e, sh;\n\x20 logic [95:0] q, rem, half;\n\x20 logic [31:0] reference;\n\
     \x20 always_comb begin\n\
     \x20   e = trit_num::lead_one(x);\n\
     \x20   q = '0;\n\x20   rem = '0;\n\x20   half = '0;\n\x20   sh = '0;\n\
     \x20   if (x == '0) reference = 32'd0;\n\
     \x20   else if (e <= 8'd23) begin\n\
     \x20     q = x << (8'd23 - e);\n\
     \x20     reference = {1'b0, e + 8'd127, q[22:0]};\n\
     \x20   end else begin\n\
     \x20     sh = e - 8'd23;\n\
     \x20     q = x >> sh;\n\
     \x20     rem = x & ((96'd1 << sh) - 96'd1);\n\
     \x20     half = 96'd1 << (sh - 8'd1);\n\
     \x20     if (rem > half || (rem == half && q[0])) q = q + 96'd1;\n\
     \x20     if (q[24]) begin\n\
     \x20       q = q >> 1;\n\
     \x20       e = e + 8'd1;\n\
     \x20     end\n\
     \x20     reference = {1'b0, e + 8'd127, q[22:0]};\n\
     \x20   end\n\
     \x20 end\n\
     \x20 assign ok = trit_num::i2f_at(x, trit_num::lead_one(x)) == reference;\n\
     endmodule\n"
        .to_string()
}

#[test]
fn i2f_rounding_equals_the_remainder_compare_for_every_input() {
    // ... and ties rounded up instead of to even are caught.
    assert_proven_and_mutation_caught(&i2f_equivalence_module(), "i2f_at", "(rem == half && q[0])", "rem == half");
}

/// A module whose output `ok` is 1 iff op_linear's `div_ceil(x, d)` equals ceil(x / d) for every
/// x of `dw` bits.
fn div_ceil_equivalence_module(dw: u32, d: u32) -> String {
    format!(
        "module eq (input logic [{top}:0] x, output logic ok);\n\
         \x20 localparam int DW = {dw};\n{body}\n\
         \x20 wire logic [{dw}:0] plain = ({{1'b0, x}} + {dw1}'d{dm1}) / {dw1}'d{d};\n\
         \x20 assign ok = div_ceil(x, {d}) == 32'(plain);\n\
         endmodule\n",
        top = dw - 1,
        dw1 = dw + 1,
        dm1 = d - 1,
        body = marked(include_str!("../../hdl/rtl/op_linear.sv"), "div_ceil")
    )
}

#[test]
fn linear_sizing_division_equals_the_plain_one_for_every_input() {
    // The divisors op_linear's presets use (tlmm_group 3, 28 tables, 16 columns, 2..4 ports) at
    // tellme-kv260's 13 bits and tiny's 9; the most a config admits (256) and the largest the
    // function states (511) at 16 bits. With too few fraction bits in the reciprocal it fails.
    for (dw, d) in [(13, 3), (13, 28), (13, 16), (13, 4), (9, 3), (9, 7), (16, 256), (16, 511)] {
        let Some(log) = prove(&div_ceil_equivalence_module(dw, d)) else { return };
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        assert!(log.contains(PROVEN), "DW = {dw}, d = {d}: div_ceil differs:\n{}", tail.join("\n"));
    }
    assert_proven_and_mutation_caught(&div_ceil_equivalence_module(13, 28), "div_ceil", "S = DW + 10", "S = DW + 2");
}
