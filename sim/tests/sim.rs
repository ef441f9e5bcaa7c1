//! The simulator API on small hand-written designs: wide ports, clocking, run-until with a
//! limit, FST windows, and build errors that show the compiler's first lines.

use sim::{BuildSpec, Model, PortSpec, SimError};
use std::sync::Mutex;

static BUILD: Mutex<()> = Mutex::new(());

const WIDE: &str = r#"
`default_nettype none
// A 100-bit accumulator with a 40-bit and a 7-bit side port: exercises every port class.
module wide (
  input  wire logic         clk_i,
  input  wire logic         rst_ni,
  input  wire logic         en_i,
  input  wire logic [99:0]  add_i,
  input  wire logic [39:0]  mid_i,
  output      logic [99:0]  acc_o,
  output      logic [39:0]  mid_o,
  output      logic [6:0]   count_o
);
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      acc_o <= '0;
      count_o <= '0;
    end else if (en_i) begin
      acc_o <= acc_o + add_i;
      count_o <= count_o + 1;
    end
  end
  assign mid_o = ~mid_i;
endmodule
`resetall
"#;

fn spec(trace: bool, text: &str) -> BuildSpec {
    let p = |n: &str, w: usize, input: bool| PortSpec { name: n.into(), width: w, input };
    BuildSpec {
        top: "wide".into(),
        sources: vec![("wide.sv".into(), text.into())],
        ports: vec![
            p("clk_i", 1, true),
            p("rst_ni", 1, true),
            p("en_i", 1, true),
            p("add_i", 100, true),
            p("mid_i", 40, true),
            p("acc_o", 100, false),
            p("mid_o", 40, false),
            p("count_o", 7, false),
        ],
        clock: "clk_i".into(),
        trace,
        cache_dir: None,
    }
}

fn model(trace: bool) -> Model {
    let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    Model::new(&spec(trace, WIDE)).unwrap_or_else(|e| panic!("{e}"))
}

fn to_u128(w: &[u32]) -> u128 {
    w.iter().enumerate().fold(0u128, |a, (i, &x)| a | ((x as u128) << (32 * i)))
}

fn words(v: u128) -> Vec<u32> {
    (0..4).map(|i| (v >> (32 * i)) as u32).collect()
}

#[test]
fn wide_ports_clocking_and_cycle_counts() {
    let mut m = model(false);
    let (rst, en, add, mid, acc, mido, count) = (
        m.port("rst_ni").unwrap(),
        m.port("en_i").unwrap(),
        m.port("add_i").unwrap(),
        m.port("mid_i").unwrap(),
        m.port("acc_o").unwrap(),
        m.port("mid_o").unwrap(),
        m.port("count_o").unwrap(),
    );
    m.set_u64(rst, 0);
    m.tick();
    m.set_u64(rst, 1);
    let step: u128 = (1u128 << 99) / 3 + 12345; // exercises all four words
    m.set(add, &words(step));
    m.set_u64(en, 1);
    for _ in 0..5 {
        m.tick();
    }
    m.set_u64(en, 0);
    m.eval();
    let mask = (1u128 << 100) - 1;
    assert_eq!(to_u128(&m.get(acc)), (step * 5) & mask);
    assert_eq!(m.get_u64(count), 5);
    m.set_u64(mid, 0x12_3456_789a);
    m.eval();
    assert_eq!(m.get_u64(mido), !0x12_3456_789au64 & ((1 << 40) - 1), "combinational output after eval");
    assert_eq!(m.cycles(), 6);
    assert_eq!(m.width(acc), 100);
    assert!(m.port("nope").unwrap_err().to_string().contains("no port `nope`"));
}

#[test]
fn run_until_stops_on_the_condition_or_times_out() {
    let mut m = model(false);
    let (rst, en, count) = (m.port("rst_ni").unwrap(), m.port("en_i").unwrap(), m.port("count_o").unwrap());
    m.set_u64(rst, 0);
    m.tick();
    m.set_u64(rst, 1);
    m.set_u64(en, 1);
    let n = m.run_until(1000, |m| m.get_u64(count) == 42).unwrap();
    assert_eq!(n, 42);
    let e = m.run_until(10, |m| m.get_u64(count) == 200).unwrap_err();
    assert!(matches!(e, SimError::Timeout { cycles: 10, .. }));
    assert!(e.to_string().contains("did not finish within 10 cycles"), "{e}");
}

#[test]
fn fst_window_is_written() {
    let mut m = model(true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wave.fst");
    m.trace(&path, 3, 8).unwrap();
    let (rst, en) = (m.port("rst_ni").unwrap(), m.port("en_i").unwrap());
    m.set_u64(rst, 1);
    m.set_u64(en, 1);
    for _ in 0..20 {
        m.tick();
    }
    drop(m); // closes the file
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 100, "FST file too small: {} bytes", bytes.len());
    let mut untraced = model(false);
    let e = untraced.trace(&path, 0, 1).unwrap_err().to_string();
    assert!(e.contains("built without tracing"), "{e}");
}

#[test]
fn build_errors_show_the_first_compiler_lines() {
    let broken = WIDE.replace("acc_o <= acc_o + add_i;", "acc_o <= acc_o + undeclared_thing;");
    let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let e = match Model::new(&spec(false, &broken)) {
        Ok(_) => panic!("a broken design must not build"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("verilator build of `wide` failed") && e.contains("undeclared_thing"), "{e}");
}

#[test]
fn second_build_comes_from_the_cache() {
    let a = model(false);
    let b = model(false);
    assert!(b.built.cached, "same sources must hit the cache");
    assert_eq!(a.built.lib, b.built.lib);
}
