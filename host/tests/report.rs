//! `trit report`: the performance model against Verilator on calibration configs, the per-unit
//! synthesis helpers (hierarchy, URAM inference check, logic depth) on small modules, and the
//! CLI's JSON and error paths. Whole-kernel synthesis is never run here (minutes); yosys steps
//! run on the tiny preset's smallest modules.

use host::perfmodel::{self, calibration_configs, Sample, CALIB};
use host::synth;
use model::Config;
use std::path::Path;
use std::process::Command;

/// A scratch directory for a yosys test, or None (with a note) where yosys is not installed.
fn yosys_workdir() -> Option<tempfile::TempDir> {
    if sim::tools::find(sim::tools::Tool::Yosys).is_err() {
        println!("note: yosys not installed; skipping (scripts/setup.sh installs it)");
        return None;
    }
    Some(tempfile::tempdir().unwrap())
}

/// The model within 5 % of simulation for decode and prefill cycles per layer on the eight tiny
/// calibration configs, at a prompt length (12 tokens: 3 or 2 chunks, decode context 13) that is
/// not one the table was fitted at (8 and 24).
#[test]
fn model_within_5_percent_of_simulation() {
    let c = CALIB.fitted();
    let mut failures = Vec::new();
    let configs = calibration_configs();
    assert!(configs.len() >= 5);
    for (label, cfg) in &configs {
        let s: Sample = perfmodel::simulate(cfg, 12).unwrap_or_else(|e| panic!("{label}: {e:#}"));
        let (dm, dr, pm, pr) = perfmodel::errors(&c, &s);
        let (de, pe) = ((dm - dr) / dr, (pm - pr) / pr);
        println!(
            "{label:<28} decode {dm:.0} model / {dr:.0} sim ({:+.1}%), prefill {pm:.0} / {pr:.0} ({:+.1}%)",
            100.0 * de,
            100.0 * pe
        );
        if de.abs() > 0.05 || pe.abs() > 0.05 {
            failures.push(format!("{label}: decode {:+.1}%, prefill {:+.1}%", 100.0 * de, 100.0 * pe));
        }
    }
    assert!(
        failures.is_empty(),
        "model off by more than 5% (refit with `trit report --calibrate`, docs/report.md): {failures:?}"
    );
}

/// The model's structure: decode grows with the context, prefill with the prompt, and a wider
/// engine (more lookups per cycle) prefills faster; bytes per token add up.
#[test]
fn model_responds_to_the_config() {
    let c = CALIB.fitted();
    let cfg = Config::preset("tellme-kv260").unwrap();
    assert!(perfmodel::decode_layer(&c, &cfg, 512) > perfmodel::decode_layer(&c, &cfg, 16));
    assert!(perfmodel::prefill_layer(&c, &cfg, 128) > perfmodel::prefill_layer(&c, &cfg, 64));
    let wide = Config::preset_with("tellme-kv260", "[engine]\ntables_per_step = 56\n").unwrap();
    assert!(perfmodel::prefill_layer(&c, &wide, 128) < perfmodel::prefill_layer(&c, &cfg, 128));
    let p = perfmodel::project(&cfg, 250.0);
    let b = &p.bytes;
    assert_eq!(b.total(), b.weights + b.lm_head + b.kv_cache + b.activations);
    // The LM head: one int8 row (aligned) and a scale per vocab entry.
    assert!(b.lm_head >= (cfg.model.vocab * (cfg.model.hidden + 4)) as u64);
    // Ternary weights at 5 bits per 3 weights at least.
    let params: usize = hdl::linear_shapes(&cfg).iter().map(|&(_, k, n)| k * n).sum();
    assert!(b.weights as f64 >= (cfg.model.layers * params) as f64 * 5.0 / 3.0 / 8.0);
    // Tokens/s cannot beat the roofline the same bytes give.
    assert!(p.roofline_fraction > 0.0 && p.roofline_fraction <= 1.0, "{}", p.roofline_fraction);
    // A slower clock is slower.
    assert!(perfmodel::project(&cfg, 125.0).decode_tok_s < p.decode_tok_s);
    // ATTENTION cannot beat its stream: the fitting preset's one port carries 16 bytes per cycle,
    // and the last 4-token chunk of a 128-token prompt reads, per query head, each of the
    // 125..128 keys' codes and f32 scale in K and in V.
    let fit = Config::preset("tellme-kv260-fit").unwrap();
    let m = &fit.model;
    let attention = perfmodel::layer_ops(&fit, 4, 124).into_iter().find(|o| o.kind == 4).unwrap();
    let bytes = (125..=128).sum::<usize>() * m.heads * 2 * (m.head_dim + 4);
    let cycles = perfmodel::op_cycles(&c, &attention);
    assert!(cycles >= bytes as f64 / 16.0, "{cycles} cycles for {bytes} bytes over one 16-byte port");
}

/// Refit from simulations (ignored: minutes). Prints the table to paste into CALIB.

/// The prefill breakdown adds up to the layer's cycles; its floor is the lookups counted from
/// the model's shapes (every weight in groups of G, each group one lookup per token, tables x
/// columns lookups per cycle), so twice the lookups per cycle halve it; the TTFT it sets is
/// under the projected one.
#[test]
fn prefill_breakdown_adds_up_and_its_floor_counts_the_lookups() {
    let c = CALIB.fitted();
    for name in ["tiny", "tellme-kv260", "tellme-kv260-fit"] {
        let cfg = Config::preset(name).unwrap();
        let parts = perfmodel::prefill_parts(&c, &cfg, 128);
        let whole = perfmodel::prefill_layer(&c, &cfg, 128);
        assert!((parts.total() - whole).abs() < 1e-6 * whole, "{name}: {parts:?} against {whole}");
        let (m, e) = (&cfg.model, &cfg.engine);
        let (q, kv) = (m.heads * m.head_dim, m.kv_heads * m.head_dim);
        let groups = |k: usize| k.div_ceil(e.tlmm_group);
        let per_token = groups(m.hidden) * (q + 2 * kv + 2 * m.ffn) + groups(q) * m.hidden + groups(m.ffn) * m.hidden;
        let floor = 128.0 * per_token as f64 / (e.tables_per_step * e.columns_per_cycle) as f64;
        assert!((parts.lookup_floor - floor).abs() < 1e-6 * floor, "{name}: {} against {floor}", parts.lookup_floor);
        assert!(parts.attention > 0.0 && parts.vector > 0.0, "{name}: {parts:?}");
        let p = perfmodel::project(&cfg, 250.0);
        assert!(p.ttft_lookup_floor_s < p.ttft_s.1, "{name}: {} against {}", p.ttft_lookup_floor_s, p.ttft_s.1);
    }
    let cfg = Config::preset("tellme-kv260").unwrap();
    let double = Config::preset_with("tellme-kv260", "[engine]\ntables_per_step = 56\n").unwrap();
    let (one, two) = (perfmodel::prefill_parts(&c, &cfg, 128), perfmodel::prefill_parts(&c, &double, 128));
    assert!((one.lookup_floor - 2.0 * two.lookup_floor).abs() < 1e-6 * one.lookup_floor);
    // The preset's prefill is its lookups' (docs/report.md): the report must say so.
    assert!(perfmodel::project(&cfg, 250.0).prefill_binds.starts_with("TLMM lookups (448 per cycle)"));
}
#[test]
#[ignore]
fn refit_calibration() {
    let (fit, samples) = perfmodel::calibrate(|w| eprintln!("simulating {w}")).unwrap();
    println!("{}", perfmodel::calib_source(&fit));
    for (l, s) in &samples {
        println!("{l}: {:?}", perfmodel::errors(&fit, s));
    }
}

#[test]
fn parses_the_yosys_hierarchy() {
    let stat = "\n=== design hierarchy ===\n\n   trit_kernel                       1\n     \
                $paramod$8f2b\\trit_kernel_core      1\n       $paramod$2d64\\op_rope_kv      1\n         \
                $paramod\\elem_reader\\DATA_W=s32'00000000000000000000000010000000      3\n       \
                $paramod\\axi_rd_master\\DATA_W=s32'1      4\n\n   Number of wires: 3\n";
    let h = synth::parse_hierarchy(stat);
    let names: Vec<(&str, u64, usize)> = h.iter().map(|e| (e.base.as_str(), e.count, e.level)).collect();
    assert_eq!(
        names,
        [
            ("trit_kernel", 1, 0),
            ("trit_kernel_core", 1, 1),
            ("op_rope_kv", 1, 2),
            ("elem_reader", 3, 3),
            ("axi_rd_master", 4, 2)
        ]
    );
}

fn tiny_design(dir: &Path) -> hdl::Design {
    let d = hdl::generate(&Config::preset("tiny").unwrap());
    d.write(dir).unwrap();
    d
}

/// The kernel's engines are found under its core, each engine's synthesis cache key covers its
/// own module tree and the packages but not its siblings (editing one engine re-synthesizes only
/// that engine), and the tiny weight buffer lands in URAM.
#[test]
fn kernel_units_and_uram_check() {
    let Some(dir) = yosys_workdir() else { return };
    let d = tiny_design(dir.path());
    let (units, hier) = host::report::kernel_units(dir.path(), &d.kernel).unwrap();
    let names: Vec<&str> = units.iter().map(|u| u.1.as_str()).collect();
    for e in ["op_linear", "op_attention", "op_vector", "op_rope_kv", "op_lm_head", "op_embed", "axil_ctrl"] {
        assert!(names.contains(&e), "{e} missing from {names:?}");
    }
    let linear = units.iter().find(|u| u.1 == "op_linear").unwrap();
    let files = synth::unit_sources(dir.path(), &hier, linear.3).unwrap();
    for f in ["rtl/op_linear.sv", "rtl/tlmm_core.sv", "rtl/requant.sv", "rtl/trit_num.sv"] {
        assert!(files.iter().any(|x| x == f), "{f} missing from {files:?}");
    }
    for f in ["rtl/op_attention.sv", "rtl/axil_ctrl.sv"] {
        assert!(!files.iter().any(|x| x == f), "{f} in {files:?}");
    }
    let checks = host::report::check_uram(dir.path(), &dir.path().join("cache"), &d, &hier, &d.kernel).unwrap();
    let uram = d.memories.iter().find(|m| m.kind == "uram").unwrap();
    assert!(checks[0].contains(&format!("{} URAM288", uram.primitives)), "{checks:?}");
}

/// No part-select is written at a computed position anywhere in the kernel (yosys would build a
/// barrel shifter of the whole vector and its mask), and the check finds one when it is there.
#[test]
fn no_part_select_shifters_in_the_kernel() {
    let Some(dir) = yosys_workdir() else { return };
    let d = tiny_design(dir.path());
    let found = synth::part_select_shifters(dir.path(), &d.kernel, 64).unwrap();
    assert!(
        found.is_empty(),
        "part-selects written at computed positions (write by constant position instead): {found:?}"
    );
    // The pattern elem_writer had: a byte placed at a computed offset of a 128-bit word.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(
        bad.path().join("bad.sv"),
        "module bad (input logic clk, input logic [3:0] i, input logic [7:0] d, output logic [127:0] w);\n\
         always_ff @(posedge clk) w[8*i +: 8] <= d;\nendmodule\n",
    )
    .unwrap();
    std::fs::write(bad.path().join("filelist.f"), "bad.sv\n").unwrap();
    let found = synth::part_select_shifters(bad.path(), "bad", 64).unwrap();
    assert!(found.iter().any(|f| f.starts_with("bad: $shift_128")), "{found:?}");
}

/// A weight buffer without the URAM attribute maps to block RAM: the check fails and says so.
#[test]
fn uram_check_fails_loudly_on_block_ram() {
    let Some(dir) = yosys_workdir() else { return };
    let d = tiny_design(dir.path());
    let f = dir.path().join("rtl/tlmm_weight_buffer.sv");
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains("(* ram_style = \"ultra\" *)"));
    std::fs::write(&f, text.replace("(* ram_style = \"ultra\" *)", "")).unwrap();
    let (_, hier) = host::report::kernel_units(dir.path(), &d.kernel).unwrap();
    let e = host::report::check_uram(dir.path(), &dir.path().join("cache"), &d, &hier, &d.kernel).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("meant for URAM") && msg.contains("RAMB36"), "{msg}");
}

const DEPTH_RTL: &str = r#"
`default_nettype none
module shallow (input wire logic clk_i, input wire logic [7:0] a_i, b_i, output logic [7:0] y_o);
  logic [7:0] a_q, b_q;
  always_ff @(posedge clk_i) begin a_q <= a_i; b_q <= b_i; y_o <= a_q ^ b_q; end
endmodule
module deep (input wire logic clk_i, input wire logic [63:0] a_i, b_i, output logic [63:0] y_o);
  logic [63:0] a_q, b_q;
  logic [63:0] t;
  always_comb begin
    t = a_q;
    for (int i = 0; i < 12; i++) t = (t ^ {t[62:0], t[63]}) + (b_q >> i) + {t[0], t[63:1]};
  end
  always_ff @(posedge clk_i) begin a_q <= a_i; b_q <= b_i; y_o <= t; end
endmodule
module two_paths (input wire logic clk_i, input wire logic [63:0] a_i, b_i, output logic [63:0] y_o, z_o);
  logic [63:0] a_q, b_q, t;
  always_comb begin
    t = a_q;
    for (int i = 0; i < 8; i++) t = (t ^ {t[62:0], t[63]}) + (b_q >> i);  // the long path
  end
  always_ff @(posedge clk_i) begin a_q <= a_i; b_q <= b_i; y_o <= t; end
  always_ff @(posedge clk_i) z_o <= a_q + b_q;  // a short one of its own
endmodule
`resetall
"#;

/// Logic depth tells a one-level design from a long arithmetic chain, in both LUT levels and
/// the projected clock.
#[test]
fn logic_depth_orders_designs() {
    let Some(dir) = yosys_workdir() else { return };
    std::fs::create_dir_all(dir.path().join("rtl")).unwrap();
    std::fs::write(dir.path().join("rtl/depth.sv"), DEPTH_RTL).unwrap();
    std::fs::write(dir.path().join("filelist.f"), "rtl/depth.sv\n").unwrap();
    let cache = dir.path().join("cache");
    let s = synth::synth_unit(dir.path(), &cache, "shallow", "shallow", "shallow", 1, &[], None).unwrap();
    let d = synth::synth_unit(dir.path(), &cache, "deep", "deep", "deep", 1, &[], None).unwrap();
    assert_eq!(s.resources.ff, 24.0, "{:?}", s.cells);
    assert!(s.depth.lut_levels <= 1, "{:?}", s.depth);
    assert!(d.depth.lut_levels > 4 * s.depth.lut_levels.max(1), "{:?}", d.depth);
    assert!(d.depth.fmax_mhz < s.depth.fmax_mhz / 2.0, "{:?} vs {:?}", d.depth, s.depth);
    // Cached: the second call reads the result back, identical.
    let again = synth::synth_unit(dir.path(), &cache, "deep", "deep", "deep", 1, &[], None).unwrap();
    assert_eq!(again.cells, d.cells);
    // The next deepest paths: through other lines than the longest, deepest first; the short
    // adder on its own line is among them.
    let line_of = |marker: &str| {
        format!("rtl/depth.sv:{}", DEPTH_RTL.lines().position(|l| l.contains(marker)).expect("marker") + 1)
    };
    let t = synth::synth_unit(dir.path(), &cache, "two_paths", "two_paths", "two_paths", 1, &[], None).unwrap();
    assert!(t.depth.sources.contains(&line_of("the long path")), "{:?}", t.depth);
    let short = t.depth.next.iter().find(|n| n.sources.contains(&line_of("a short one"))).expect("the short path");
    assert!(short.path_ns < t.depth.path_ns, "{:?}", t.depth);
    assert!(t.depth.next.windows(2).all(|w| w[0].path_ns >= w[1].path_ns), "{:?}", t.depth.next);
    assert!(t.depth.next.iter().all(|n| n.sources != t.depth.sources), "{:?}", t.depth.next);
}

/// A 512-entry memory with an asynchronous read (attention's per-lane score memories at a long
/// context) maps to LUT-RAM: yosys 0.23's own xcup library stops on it ("invalid
/// OPTION_ABITS/WIDTH combination") unless the report's corrected copy is used.
#[test]
fn deep_lutram_memories_synthesize() {
    let Some(dir) = yosys_workdir() else { return };
    std::fs::create_dir_all(dir.path().join("rtl")).unwrap();
    std::fs::write(
        dir.path().join("rtl/deep.sv"),
        "module deep (input wire logic clk_i, input wire logic we_i, input wire logic [8:0] a_i,\n\
         input wire logic [31:0] d_i, output logic [31:0] q_o);\n\
         logic [31:0] mem [512];\n\
         always_ff @(posedge clk_i) if (we_i) mem[a_i] <= d_i;\n\
         assign q_o = mem[a_i];\n\
         endmodule\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("filelist.f"), "rtl/deep.sv\n").unwrap();
    let u = synth::synth_unit(dir.path(), &dir.path().join("cache"), "deep", "deep", "deep", 1, &[], None).unwrap();
    assert_eq!(u.cells.get("RAM512X1S"), Some(&32), "{:?}", u.cells);
    assert_eq!(u.lutram, 256.0, "{:?}", u.cells);
}

/// The arrays-in-registers note names each array with its place, and only the unit's own.
#[test]
fn arrays_in_registers_are_the_units_own() {
    let log = "Warning: Replacing memory \\acc with list of registers. See rtl/a.sv:12\n\
               Warning: Replacing memory \\fifo with list of registers. See rtl/b.sv:7\n\
               using FF mapping for memory $paramod$1f\\op_a.lane_acc\n\
               using FF mapping for memory $paramod$1f\\op_a.$flatten\\u_rom.$auto$proc_rom.cc:150:do_switch$6\n";
    let own = vec!["rtl/a.sv".to_string()];
    assert_eq!(synth::arrays_in_registers(log, Some(&own)), ["acc (rtl/a.sv:12)", "lane_acc (flip-flops)"]);
    assert_eq!(synth::arrays_in_registers(log, None).len(), 3);
}

fn trit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trit"))
}

#[test]
fn report_json_has_the_promised_fields() {
    let out = trit().args(["report", "--config", "tellme-kv260", "--no-synth", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &v["projected"];
    for k in ["clock_mhz", "decode_tok_s"] {
        assert!(p[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {p}");
    }
    for k in ["64", "128"] {
        assert!(p["ttft_s"][k].as_f64().is_some_and(|x| x > 0.0), "ttft {k}: {p}");
    }
    assert!(p["ttft_s"]["128"].as_f64() > p["ttft_s"]["64"].as_f64());
    let parts = &p["prefill_128"];
    let sum: f64 = ["lookup_floor_cycles", "linear_rest_cycles", "attention_cycles", "vector_cycles"]
        .iter()
        .map(|k| parts[k].as_f64().unwrap_or_else(|| panic!("prefill_128.{k}: {p}")))
        .sum();
    let whole = p["prefill_layer_cycles_128"].as_f64().unwrap();
    assert!((sum - whole).abs() < 1e-6 * whole, "{parts} against {whole}");
    assert!(parts["binds"].as_str().is_some_and(|s| s.contains("% of a 128-token layer")), "{parts}");
    assert!(p["ttft_lookup_floor_s"].as_f64() < p["ttft_s"]["128"].as_f64(), "{p}");
    for k in ["lut", "ff", "bram36", "uram", "dsp"] {
        assert!(v["budget"][k].as_f64().is_some_and(|x| x > 0.0), "budget {k}: {v}");
    }
    assert_eq!(v["budget"]["uram"].as_f64(), Some(64.0));
}

#[test]
fn report_errors_name_the_cause() {
    let out = trit().args(["report", "--config", "no-such-config"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no such preset") && err.contains("tellme-kv260"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let out = trit()
        .args(["report", "--config", "tiny", "--out"])
        .arg(dir.path())
        .env("TRIT_YOSYS", "/nonexistent/yosys")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("yosys") && err.contains("apt-get install yosys"), "{err}");

    // `--unit` names the kernel's units when asked for one it does not have.
    if sim::tools::find(sim::tools::Tool::Yosys).is_ok() {
        let out = trit()
            .args(["report", "--config", "tiny", "--unit", "op_nothing", "--out"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no unit `op_nothing`") && err.contains("op_attention, "), "{err}");
    }
}

/// `trit fit` on synthesized units (written here as `trit report` would leave them): the chosen
/// config loads, stays within 90 % of every resource by the same estimate, projects at least the
/// starting config's decode, and the output says what binds.
/// A build directory holding `reports/resources.json` with the units (name, LUT, FF, BRAM36,
/// URAM, DSP) as `trit report` would leave them.
fn synthesized_units(units: &[(&str, f64, f64, f64, f64, f64)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("reports");
    std::fs::create_dir_all(&rep).unwrap();
    let units: Vec<_> = units
        .iter()
        .map(|&(name, lut, ff, bram, uram, dsp)| {
            serde_json::json!({"name": name, "instances": 1, "lutram": 0.0, "lut_levels": 6, "path_ns": 3.0,
                "fmax_mhz": 333.0, "resources": {"lut": lut, "ff": ff, "bram36": bram, "uram": uram, "dsp": dsp}})
        })
        .collect();
    std::fs::write(rep.join("resources.json"), serde_json::json!({ "units": units }).to_string()).unwrap();
    dir
}

/// `trit fit --board kv260 --config CONFIG` on the units in `dir`, writing `dir/fit.toml`.
fn run_fit(dir: &tempfile::TempDir, config: &str) -> std::process::Output {
    trit()
        .args(["fit", "--board", "kv260", "--config", config, "--build"])
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("fit.toml"))
        .output()
        .unwrap()
}

/// `trit fit` on `config` and the units in `dir`: the chosen config, the output, and the written file.
fn fit(dir: &tempfile::TempDir, config: &str) -> (Config, String, std::path::PathBuf) {
    let out = dir.path().join("fit.toml");
    let o = run_fit(dir, config);
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}{}", stdout, String::from_utf8_lossy(&o.stderr));
    let chosen = Config::load(out.to_str().unwrap()).unwrap_or_else(|e| panic!("{e}"));
    (chosen, stdout, out)
}

#[test]
fn fit_chooses_a_config_within_budget() {
    let dir = synthesized_units(&[
        ("op_linear", 40000.0, 30000.0, 8.0, 32.0, 40.0),
        ("op_attention", 15000.0, 9000.0, 10.0, 0.0, 20.0),
        ("kernel glue", 5000.0, 4000.0, 2.0, 0.0, 0.0),
    ]);
    let (chosen, stdout, out) = fit(&dir, "tellme-kv260");
    assert!(stdout.contains("binds:"), "{stdout}");
    let base = Config::preset("tellme-kv260").unwrap();
    // Written as a variant of the preset: its base and the engine keys that changed, nothing else.
    let text = std::fs::read_to_string(&out).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(doc.get("base").and_then(|b| b.as_str()), Some("tellme-kv260"), "{text}");
    let keys: Vec<&String> = doc.keys().collect();
    assert_eq!(keys, ["base", "engine", "name"], "{text}");
    assert_eq!((&chosen.model, &chosen.quant, &chosen.board), (&base.model, &base.quant, &base.board));
    let engine = toml::Value::try_from(&base.engine).unwrap();
    for (k, v) in doc["engine"].as_table().unwrap() {
        assert_ne!(engine.get(k), Some(v), "{k} is the preset's own value: {text}");
    }
    // A variant of a variant builds on the root preset (a base cannot have a base of its own).
    let (again, _, out2) = fit(&dir, "tellme-kv260-fit");
    let doc2: toml::Table = toml::from_str(&std::fs::read_to_string(&out2).unwrap()).unwrap();
    assert_eq!(doc2.get("base").and_then(|b| b.as_str()), Some("tellme-kv260"));
    assert_eq!(again.name, "tellme-kv260-fit-fit");
    let units = host::report::load_units(dir.path()).unwrap();
    let est = host::report::estimate_resources(&base, &units, &chosen);
    for ((k, v), (_, b)) in est.pairs().iter().zip(host::report::budget(&chosen).pairs()) {
        assert!(*v <= 0.9 * b, "{k}: {v} of {b}");
    }
    let pc = perfmodel::project(&chosen, 250.0);
    let pb = perfmodel::project(&base, 250.0);
    assert!(pc.decode_tok_s >= 0.995 * pb.decode_tok_s, "{} < {}", pc.decode_tok_s, pb.decode_tok_s);

    // A board the config is not for is an error naming both.
    let o = trit().args(["fit", "--board", "u280", "--config", "tellme-kv260", "--out"]).arg(&out).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("u280") && err.contains("kv260"), "{err}");
}

/// `report::plots` writes the roofline and the sweep as SVG (and PNG when a TrueType font is
/// installed), each with its legend: the two design points and the sweep's series.
#[test]
fn plots_are_written_with_their_legends() {
    let cfg = Config::preset("tellme-kv260").unwrap();
    let projected = perfmodel::project(&cfg, cfg.board.clock_mhz);
    let point = |lut: f64| host::report::SweepPoint {
        tables: 28,
        cols: 16,
        tokens: 8,
        wbuf: 4096,
        queries: 1,
        attn_ports: 4,
        resources: synth::Resources { lut, ..Default::default() },
        projected: projected.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let written = host::report::plots(&cfg, &projected, &[point(40_000.0), point(80_000.0)], dir.path()).unwrap();
    for (name, labels) in [
        ("roofline", &["roof: min(bandwidth", "decode (ctx 128)", "prefill 128"][..]),
        ("sweep", &["decode tok/s (ctx 128)", "prefill tok/s (128-token prompt)", "90% of the board"][..]),
    ] {
        let svg = dir.path().join(format!("{name}.svg"));
        assert!(written.contains(&svg), "{name}.svg not in {written:?}");
        let text = std::fs::read_to_string(&svg).unwrap();
        for l in labels {
            assert!(text.contains(l), "{name}.svg lacks the legend entry {l:?}");
        }
        let png = dir.path().join(format!("{name}.png"));
        if written.contains(&png) {
            assert!(std::fs::metadata(&png).unwrap().len() > 1000, "{name}.png is (nearly) empty");
        }
    }
}

/// A design whose fixed logic alone is over the board: `trit fit` fails with the variant that
/// came nearest and the resource over 90 %, not just "nothing fits".
#[test]
fn fit_that_cannot_fit_names_the_nearest_variant_and_what_binds() {
    let dir = synthesized_units(&[
        ("op_linear", 40000.0, 30000.0, 8.0, 32.0, 40.0),
        ("op_vector", 200000.0, 9000.0, 0.0, 0.0, 20.0),
        ("kernel glue", 5000.0, 4000.0, 2.0, 0.0, 0.0),
    ]);
    let o = run_fit(&dir, "tellme-kv260");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{stderr}");
    assert!(stderr.contains("the nearest (tables_per_step"), "{stderr}");
    assert!(stderr.contains("still needs lut "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dir.path().join("fit.toml").exists(), "no config may be written when nothing fits");
}

/// When the attention engine's query block is what does not fit (DSPs here), `trit fit`
/// shrinks the engine (its queries or its ports) rather than giving up or choosing an
/// over-budget design.
#[test]
fn fit_shrinks_the_attention_block_that_does_not_fit() {
    let preset = include_str!("../../configs/tellme-kv260.toml");
    assert!(preset.contains("\nattention_queries = 1\n"));
    let four_queries = preset.replace("\nattention_queries = 1\n", "\nattention_queries = 4\n");
    let base = Config::from_toml(&four_queries, "four queries", None).unwrap();
    let dir = synthesized_units(&[
        ("op_linear", 40000.0, 30000.0, 8.0, 32.0, 40.0),
        ("op_attention", 30000.0, 9000.0, 0.0, 0.0, 1200.0),
        ("kernel glue", 5000.0, 4000.0, 2.0, 0.0, 0.0),
    ]);
    let four = dir.path().join("four-queries.toml");
    std::fs::write(&four, &four_queries).unwrap();
    let (chosen, stdout, _) = fit(&dir, four.to_str().unwrap());
    // Fewer queries or fewer ports: either shrinks the engine's lanes.
    let lanes = |c: &Config| c.engine.attention_queries * hdl::KernelShape::from_config(c).ATTN_PORTS;
    assert!(lanes(&chosen) < lanes(&base), "{stdout}");
    let units = host::report::load_units(dir.path()).unwrap();
    let est = host::report::estimate_resources(&base, &units, &chosen);
    assert!(est.dsp <= 0.9 * host::report::budget(&chosen).dsp, "{} DSPs", est.dsp);
}
