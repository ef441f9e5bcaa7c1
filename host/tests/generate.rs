//! The generator: deterministic output, a manifest that carries the config's numbers, and RTL
//! that Verilator (lint), Icarus and yosys all accept, with the weight buffer in URAM.

use hdl::generate;
use model::Config;
use std::process::Command;

fn variant(edit: &str) -> Config {
    Config::preset_with("tiny", &format!("[engine]\n{edit}")).unwrap_or_else(|e| panic!("{e}"))
}

fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["", "rtl"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                out.push((p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn same_config_gives_byte_identical_output() {
    let cfg = Config::preset("tellme-kv260").unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(&cfg).write(a.path()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trit"))
        .args(["gen", "--config", "tellme-kv260", "--out", b.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("448 lookups/cycle"));
    let (fa, fb) = (files(a.path()), files(b.path()));
    assert_eq!(fa.len(), generate(&cfg).files.len() + 3, "RTL files + filelist + manifest + regmap");
    assert_eq!(fa, fb);
    let other = tempfile::tempdir().unwrap();
    generate(&Config::preset("tiny").unwrap()).write(other.path()).unwrap();
    assert_ne!(files(other.path()), fa, "a different config must change the output");
}

#[test]
fn manifest_carries_the_config_and_derived_numbers() {
    let cfg = Config::preset("tellme-kv260").unwrap();
    let d = generate(&cfg);
    let m = &d.manifest;
    assert_eq!(m["config"], "tellme-kv260");
    assert_eq!(m["board"], "kv260");
    let p = &m["tlmm"]["parameters"];
    assert_eq!((p["G"].as_u64(), p["TABLES"].as_u64(), p["COLS"].as_u64()), (Some(3), Some(28), Some(16)));
    // Largest N and K of the decoder's linears: FFN 4096 -> 256 blocks of 16 rows, 49 steps of 84.
    assert_eq!((p["MAX_BLOCKS"].as_u64(), p["MAX_STEPS"].as_u64()), (Some(256), Some(49)));
    assert_eq!(p["WBUF_DEPTH"], cfg.engine.weight_buffer_beats);
    assert_eq!(m["tlmm"]["code_bits"], 5);
    assert_eq!(m["tlmm"]["wgt_beat_bits"], 16 * 28 * 5);
    assert_eq!(m["tlmm"]["lookups_per_cycle"], 448);
    let top = &d.files.iter().find(|(n, _)| n == "trit_tlmm_top.sv").unwrap().1;
    assert!(top.contains(".WBUF_DEPTH (4096)") && top.contains("[2239:0] wbuf_data_i"), "{top}");
    let files: Vec<&str> = m["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(files.last(), Some(&"rtl/trit_kernel.sv"), "the kernel top comes last (dependency order)");
    let kernel = &d.files.last().unwrap().1;
    assert!(kernel.contains(".DATA_W       (256)") && kernel.contains(".OFF_ERROR    (32'h00000018)"), "{kernel}");
    assert_eq!(m["kernel"]["bus_bits"], cfg.bus_bits());
    let wbuf = d.files.iter().find(|(n, _)| n == "tlmm_weight_buffer.sv").unwrap();
    assert!(wbuf.1.contains("(* ram_style = \"ultra\" *)"));
    // Four HP ports; gate (K 1536 -> 19 steps, N 4096 -> 256 blocks) needs 4864 beats, more than
    // the 4096-beat buffer: a quarter (1024 beats) holds 53 blocks, so chunks of 53 blocks
    // between two edge chunks of ceil(53 / 8) = 7 blocks, raised to a table fill's 14 cycles
    // (G = 3: 13 entries + the zero entry): 14 + 4 x 53 + 16 + 14 = 256.
    assert_eq!(m["kernel"]["memory_ports"], 4);
    let ws = &m["weight_schedule"];
    assert_eq!(ws["weight_ports"], 4);
    assert_eq!(ws["bus_words_per_beat"], 9, "2240-bit beats in the preset's 256-bit words");
    let row = |name: &str| ws["linears"].as_array().unwrap().iter().find(|r| r["linear"] == name).unwrap().clone();
    let gate = row("gate");
    assert_eq!((gate["steps"].as_u64(), gate["blocks"].as_u64()), (Some(19), Some(256)));
    assert_eq!(gate["chunk_blocks"], serde_json::json!([14, 53, 53, 53, 53, 16, 14]));
    assert_eq!(gate["double_buffered"], true);
    assert_eq!(gate["load_cycles"][1], (53 * 19 * 9u64).div_ceil(4));
    assert_eq!(gate["run_cycles_per_token"][0], 14 * 19);
    // q (96 blocks x 19 steps = 1824 beats) is more than a quarter of the buffer: 14 + 53 + 15 + 14.
    let q = row("q");
    assert_eq!(
        (q["chunk_blocks"].clone(), q["double_buffered"].as_bool()),
        (serde_json::json!([14, 53, 15, 14]), Some(true))
    );
}

#[test]
fn generated_rtl_is_accepted_by_verilator_icarus_and_yosys() {
    for (name, cfg) in [
        ("tiny", Config::preset("tiny").unwrap()),
        ("G=2", variant("tlmm_group = 2\ntables_per_step = 3\n")),
        ("G=4", variant("tlmm_group = 4\ntables_per_step = 2\n")),
        // Wide read elements (the LM head takes a whole 32-byte word per port and cycle).
        ("256-bit masters", variant("axi_data_bits = 256\n")),
    ] {
        let d = generate(&cfg);
        let dir = tempfile::tempdir().unwrap();
        d.write(dir.path()).unwrap();
        host::synth::verilator_lint(dir.path(), &d.top).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        host::synth::iverilog(dir.path(), &d.top).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let stats = host::synth::yosys_xilinx(dir.path(), &d.top).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let uram = d.memories.iter().find(|m| m.kind == "uram").unwrap();
        assert_eq!(
            stats.count("URAM288"),
            uram.primitives as u64,
            "{name}: the weight buffer ({} x {}) must map to {} URAM288: {:?}",
            uram.depth,
            uram.width,
            uram.primitives,
            stats.cells
        );
        assert!(stats.count_prefix("LUT") > 0 && stats.count_prefix("FD") > 0, "{name}: {:?}", stats.cells);
        if name == "tiny" {
            // The Vitis kernel top too.
            host::synth::verilator_lint(dir.path(), &d.kernel).unwrap_or_else(|e| panic!("kernel: {e:#}"));
            host::synth::iverilog(dir.path(), &d.kernel).unwrap_or_else(|e| panic!("kernel: {e:#}"));
            // Elaboration only: synthesizing the whole kernel is `trit report`'s job (minutes).
            host::synth::yosys_elaborate(dir.path(), &d.kernel).unwrap_or_else(|e| panic!("kernel: {e:#}"));
        }
    }
}

#[test]
fn docs_carry_the_generated_register_map() {
    let doc = include_str!("../../docs/isa.md");
    assert!(
        doc.contains(&hdl::regmap::markdown()),
        "docs/isa.md is out of date: paste the output of hdl::regmap::markdown()"
    );
    let dir = tempfile::tempdir().unwrap();
    generate(&Config::preset("tiny").unwrap()).write(dir.path()).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("regmap.md")).unwrap(), hdl::regmap::markdown());
}

/// The kernel generated for every preset (full-size model limits, each board's bus) passes
/// Verilator's lint: widths derived from large parameters stay consistent.
#[test]
fn every_preset_kernel_lints() {
    for name in ["tiny", "tellme-kv260", "bitnet2b-kv260", "accllm-u280"] {
        let d = generate(&Config::preset(name).unwrap());
        let dir = tempfile::tempdir().unwrap();
        d.write(dir.path()).unwrap();
        host::synth::verilator_lint(dir.path(), &d.kernel).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    }
}
