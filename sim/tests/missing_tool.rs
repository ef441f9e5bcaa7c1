//! A missing Verilator is a clear error naming the tool and the fix (own test binary, because it
//! changes the process environment).

use sim::{BuildSpec, Model, PortSpec};

#[test]
fn missing_verilator_is_named_with_the_fix() {
    std::env::set_var("TRIT_VERILATOR", "/nonexistent/verilator");
    let spec = BuildSpec {
        top: "t".into(),
        sources: vec![("t.sv".into(), "module t(input logic clk_i); endmodule".into())],
        ports: vec![PortSpec { name: "clk_i".into(), width: 1, input: true }],
        clock: "clk_i".into(),
        trace: false,
        cache_dir: None,
    };
    let e = match Model::new(&spec) {
        Ok(_) => panic!("must fail without verilator"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("TRIT_VERILATOR") && e.contains("/nonexistent/verilator"), "{e}");
    std::env::remove_var("TRIT_VERILATOR");
    std::env::set_var("PATH", "");
    let e = match Model::new(&spec) {
        Ok(_) => panic!("must fail without verilator on PATH"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("verilator not found") && e.contains("scripts/setup.sh"), "{e}");
}
