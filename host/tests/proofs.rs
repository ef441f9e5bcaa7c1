//! Equivalence proofs: RTL arithmetic written for fewer LUTs equals its straightforward
//! definition for every input, checked with yosys `sat -prove` (a SAT solver over all input
//! bits, not samples).
//!
//! vec_quant's `code_at` (with `code_shift`, the per-vector decode of inv's exponent) against
//! `trit_num::clamp_code(trit_num::requant_shift(p, e, 0), qmax)`, the 96-bit form the
//! reference's quantization is written in, at both product widths the quantizers use.

use sim::tools::{find, Tool};
use std::process::Command;

/// The functions between vec_quant.sv's `[proof: code_at begin]` and `[proof: code_at end]`.
fn code_at_source() -> &'static str {
    let src = include_str!("../../hdl/rtl/vec_quant.sv");
    let begin = src.find("// [proof: code_at begin]").expect("begin marker in vec_quant.sv");
    let end = src.find("// [proof: code_at end]").expect("end marker in vec_quant.sv");
    &src[begin..end]
}

/// A module whose output `ok` is 1 iff code_at equals the reference for inputs p, e, qmax.
fn equivalence_module(pw: usize) -> String {
    format!(
        "module eq (input logic signed [{p}:0] p, input logic [7:0] e, input logic [15:0] qmax, output logic ok);\n\
         \x20 localparam int PW = {pw};\n{body}\n\
         \x20 wire logic signed [15:0] fast = code_at(p, code_shift(e), qmax);\n\
         \x20 wire logic signed [15:0] reference = trit_num::clamp_code(trit_num::requant_shift(96'(p), e, 8'd0), qmax);\n\
         \x20 assign ok = fast == reference;\n\
         endmodule\n",
        p = pw + 24,
        body = code_at_source()
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

#[test]
fn vec_quant_code_rounding_equals_the_reference_for_every_input() {
    // PW = 32: quantizers without a norm (57-bit products); 48: with one (73 bits).
    for pw in [32, 48] {
        let Some(log) = prove(&equivalence_module(pw)) else { return };
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        assert!(log.contains(PROVEN), "PW = {pw}: code_at differs from the reference:\n{}", tail.join("\n"));
    }
}

/// The proof can fail: a code_at that forgets the round-half-to-even tie rule differs.
#[test]
fn a_wrong_rounding_is_caught() {
    let broken = equivalence_module(32).replace("|| t[1]", "|| 1'b1");
    assert_ne!(broken, equivalence_module(32), "the mutation must change the source");
    let Some(log) = prove(&broken) else { return };
    assert!(!log.contains(PROVEN) && log.contains("model found: FAIL!"), "expected a counterexample:\n{log}");
}
