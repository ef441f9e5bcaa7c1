//! The `trit` binary end to end: outputs, JSON shapes, and error messages.

use model::reference::{argmax, QuantModel, Reference};
use model::Config;
mod common;

use common::{fails, ok, trit};
use std::process::Command;
use std::sync::Arc;

/// Greedy ids computed straight from the model crate (not through host::session).
fn greedy_from_model(prompt: &[u32], n: usize) -> Vec<u32> {
    let cfg = Config::preset("tiny").unwrap();
    let dir = tempfile::tempdir().unwrap();
    model::tiny::write_model_dir(dir.path(), &cfg, model::tiny::TINY_SEED).unwrap();
    let w = model::checkpoint::load_dir(dir.path(), &cfg).unwrap();
    let mut r = Reference::new(Arc::new(QuantModel::from_float(&cfg, &w)));
    let mut logits = r.prefill(prompt).unwrap();
    let mut out = vec![];
    for _ in 0..n {
        let t = argmax(&logits);
        out.push(t);
        logits = r.decode(t).unwrap();
    }
    out
}

#[test]
fn run_json_has_the_documented_shape_and_the_reference_tokens() {
    let out = ok(&["run", "--backend", "ref", "--model", "tiny", "--prompt-ids", "256,72,105", "-n", "8", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ids = |k: &str| -> Vec<u32> { v[k].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect() };
    assert_eq!(ids("prompt_ids"), vec![256, 72, 105]);
    let output = ids("output_ids");
    assert_eq!(output.len(), 8);
    assert_eq!(output, greedy_from_model(&[256, 72, 105], 8));
    assert!(v["text"].is_string());
}

#[test]
fn run_text_prompt_prepends_bos() {
    let out = ok(&["run", "--model", "tiny", "-p", "Hi", "-n", "3", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["prompt_ids"], serde_json::json!([256, 72, 105]));
    let plain = ok(&["run", "--model", "tiny", "-p", "Hi", "-n", "3"]);
    assert!(!plain.is_empty());
}

#[test]
fn prompt_longer_than_the_context_is_refused() {
    let ids: Vec<String> = (0..321).map(|i| (i % 256).to_string()).collect();
    let e = fails(&["run", "--model", "tiny", "--prompt-ids", &ids.join(","), "-n", "1"]);
    assert!(e.contains("321 tokens, more than the context length max_seq = 320"), "{e}");
    let e = fails(&["run", "--model", "tiny", "--prompt-ids", "1,999", "-n", "1"]);
    assert!(e.contains("token id 999 is outside the vocabulary"), "{e}");
}

#[test]
fn generation_stops_at_the_context_limit() {
    let ids: Vec<String> = (0..318).map(|i| (i % 256).to_string()).collect();
    let out = ok(&["run", "--model", "tiny", "--prompt-ids", &ids.join(","), "-n", "10", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // 318 prompt tokens + 2 generated tokens fed back fill the 320 positions; the third
    // generated token comes from the last logits and cannot be fed.
    assert_eq!(v["stop"], "context");
    assert_eq!(v["output_ids"].as_array().unwrap().len(), 3);
}

#[test]
fn bad_config_file_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    let text = include_str!("../../configs/tiny.toml").replace("[engine]\n", "[engine]\nwarp_drive = true\n");
    std::fs::write(&p, text).unwrap();
    let e = fails(&["run", "--model", "tiny", "--config", p.to_str().unwrap(), "-p", "x"]);
    assert!(e.contains("unknown field `warp_drive`") && e.contains("bad.toml"), "{e}");
}

#[test]
fn accuracy_json_reports_the_three_comparisons() {
    let out = ok(&["accuracy", "--model", "tiny", "--positions", "64", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["positions"], 64);
    let rel = v["exact_vs_w158a8"]["rel_rms"].as_f64().unwrap();
    assert!(rel > 0.0 && rel < 0.05, "{rel}");
    assert!(v["w158a8_vs_plain"]["rel_rms"].as_f64().unwrap() > rel);
    let e = fails(&["accuracy", "--model", "tiny", "--positions", "1000"]);
    assert!(e.contains("--positions must be in 1..=320"), "{e}");
}

#[test]
fn demo_runs_all_steps() {
    let out = ok(&["demo"]);
    for step in ["[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"] {
        assert!(out.contains(step), "{out}");
    }
    assert!(out.contains("identical to the reference device's ids"), "{out}");
    assert!(out.contains("kernel cycles: prefill"), "{out}");
}

#[test]
fn tiny_writes_a_checkpoint_that_run_loads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("tiny");
    ok(&["tiny", "--out", d.to_str().unwrap()]);
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(d.join(f).is_file(), "{f}");
    }
    // Loaded as a directory with the config derived from config.json: same tokens as `tiny`.
    let a = ok(&["run", "--model", d.to_str().unwrap(), "--prompt-ids", "256,65", "-n", "5", "--json"]);
    let b = ok(&["run", "--model", "tiny", "--prompt-ids", "256,65", "-n", "5", "--json"]);
    assert_eq!(a, b);
}

#[test]
fn missing_tools_are_named_with_the_fix() {
    let o = Command::new(env!("CARGO_BIN_EXE_trit"))
        .arg("doctor")
        .env("PATH", "")
        .env("TRIT_YOSYS", "/nonexistent/yosys")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("iverilog not found") && out.contains("scripts/setup.sh"), "{out}");
    assert!(out.contains("TRIT_YOSYS"), "{out}");
}

#[test]
fn config_prints_a_resolved_preset() {
    let out = ok(&["config", "--config", "tellme-kv260", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["model"]["hidden"], 1536);
    assert_eq!(v["board"]["uram"], 64);
    let toml_out = ok(&["config", "--config", "tiny"]);
    assert!(toml_out.contains("hidden = 64"), "{toml_out}");
}

#[test]
fn xrt_backend_without_a_board_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let xclbin = dir.path().join("trit.xclbin");
    host::xrtdev::write_minimal_xclbin(&xclbin).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_trit"))
        .args(["run", "--backend", "xrt", "--xclbin", xclbin.to_str().unwrap(), "-p", "hi", "-n", "1"])
        .env_remove("XCL_EMULATION_MODE")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.to_lowercase().contains("no device"), "{e}");
    let e = fails(&["run", "--backend", "xrt", "-p", "hi"]);
    assert!(e.contains("--backend xrt needs --xclbin"), "{e}");
}

/// The simulated kernel generates exactly the reference model's tokens, and its JSON adds the
/// cycles of the prefill and of every decode step plus the performance counters.
#[test]
fn sim_backend_generates_the_reference_tokens_and_reports_cycles() {
    let out = ok(&["run", "--backend", "sim", "--model", "tiny", "--prompt-ids", "256,72,105", "-n", "5", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<u32> = v["output_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
    assert_eq!(ids, greedy_from_model(&[256, 72, 105], 5));
    assert!(v["cycles"]["prefill"].as_u64().unwrap() > 0, "{v}");
    let decode = v["cycles"]["decode"].as_array().unwrap();
    assert_eq!(decode.len(), 4, "one entry per decode step (the last token needs none): {v}");
    assert!(decode.iter().all(|c| c.as_u64().unwrap() > 0));
    for name in hdl::regmap::COUNTER_NAMES {
        assert!(v["counters"][name].is_u64(), "counter {name} missing: {v}");
    }
    let total: u64 = v["cycles"]["prefill"].as_u64().unwrap() + decode.iter().map(|c| c.as_u64().unwrap()).sum::<u64>();
    assert_eq!(v["counters"]["cycles"].as_u64().unwrap(), total);
    assert!(v["counters"]["dram_read_bytes"].as_u64().unwrap() > 0);
    let refv: serde_json::Value =
        serde_json::from_str(&ok(&["run", "--model", "tiny", "--prompt-ids", "256,72,105", "-n", "5", "--json"]))
            .unwrap();
    assert!(refv.get("cycles").is_none(), "the reference backend has no cycles to report: {refv}");
}

/// `trit sim --timeline` traces every layer op of the programs in order, and their cycles add
/// up to the program's (to the trace's poll interval).
#[test]
fn sim_timeline_accounts_for_every_op_of_the_program() {
    // A prompt within one chunk (tiny's is 4 tokens): the prefill figure is that one program.
    let out = ok(&["sim", "--config", "tiny", "--layers", "2", "--prompt-len", "3", "--timeline", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for phase in ["prefill", "decode"] {
        let rows = v["timeline"][phase].as_array().unwrap();
        let ops: Vec<&str> = rows.iter().map(|r| r["op"].as_str().unwrap()).collect();
        assert_eq!(ops.len(), 26, "13 ops per layer, 2 layers: {ops:?}");
        assert_eq!(&ops[..2], ["NORM_QUANT", "LINEAR"], "{ops:?}");
        assert_eq!(ops[12], "LINEAR", "down_proj ends a layer: {ops:?}");
        let sum: u64 = rows.iter().map(|r| r["in_program"].as_u64().unwrap()).sum();
        let program = 2 * v[phase]["cycles_per_layer"].as_u64().unwrap();
        assert!(sum.abs_diff(program) <= program / 20 + 200, "{phase}: ops {sum} vs program {program}: {v}");
        assert!(rows.iter().all(|r| r["alone"].as_u64().unwrap() > 0), "{v}");
    }
}

/// `trit sim --json` has the documented fields, with per-layer cycles and fractions that are
/// consistent with the per-op table.
#[test]
fn sim_json_reports_per_layer_cycles_and_fractions() {
    let out = ok(&["sim", "--config", "tiny", "--layers", "2", "--prompt-len", "5", "--decode-steps", "2", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let d = &v["decode"];
    let p = &v["prefill"];
    assert_eq!(p["prompt_len"], 5);
    assert_eq!(d["context"], 7, "prefill of 5, then 2 decode steps: {v}");
    for (phase, key) in [(d, "cycles_per_layer"), (d, "dram_bytes_per_layer"), (p, "cycles_per_layer")] {
        assert!(phase[key].as_u64().unwrap() > 0, "{key}: {v}");
    }
    for f in [&d["roofline_fraction"], &p["compute_fraction"]] {
        let f = f.as_f64().unwrap();
        assert!(f > 0.0 && f <= 1.0, "fraction {f}: {v}");
    }
    // Per-layer cycles come from the layers as one program, where weight loads overlap the other
    // ops: no more than the ops run alone (without EMBED), over 2 layers.
    let ops = d["ops"].as_object().unwrap();
    let sum: u64 = ops.iter().filter(|(k, _)| *k != "EMBED").map(|(_, r)| r["cycles"].as_u64().unwrap()).sum();
    assert!(d["cycles_per_layer"].as_u64().unwrap() <= sum / 2, "{v}");
    assert_eq!(ops["LINEAR"]["count"], 14, "7 linears per layer: {v}");
    assert!(v["estimates"]["decode_tok_s"].as_f64().unwrap() > 0.0);
    let e = fails(&["sim", "--config", "tiny", "--prompt-len", "400"]);
    assert!(e.contains("exceed the context length max_seq = 320"), "{e}");
}

/// Without --json the text streams to stdout (then a newline) and the speed goes to stderr.
#[test]
fn run_streams_the_text_and_reports_tokens_per_second() {
    let args = ["run", "--model", "tiny", "--prompt-ids", "256,72,105", "-n", "8"];
    let o = trit(&args);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(&ok(&[&args[..], &["--json"]].concat())).unwrap();
    assert_eq!(String::from_utf8(o.stdout).unwrap(), format!("{}\n", v["text"].as_str().unwrap()));
    let e = String::from_utf8(o.stderr).unwrap();
    assert!(e.contains("prompt 3 tokens") && e.contains("generated 8 tokens, 7 decode steps"), "{e}");
    assert!(e.contains("tok/s") && e.contains("stop: length; greedy; ref backend"), "{e}");
    assert_eq!(v["sampling"]["temp"], 0.0);
    assert!(v["sampling"]["seed"].is_null(), "greedy draws no random numbers: {v}");
}

fn output_ids(out: &str) -> Vec<u32> {
    let v: serde_json::Value = serde_json::from_str(out).unwrap();
    v["output_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// `run --json` at a flat distribution (temperature 5, filters off), where the seed decides.
fn run_sampled(seed: Option<&str>) -> String {
    let mut a = vec!["run", "--model", "tiny", "--prompt-ids", "256,72,105", "-n", "16", "--json"];
    a.extend(["--temp", "5", "--top-k", "0", "--top-p", "1", "--min-p", "0"]);
    if let Some(seed) = seed {
        a.extend(["--seed", seed]);
    }
    ok(&a)
}

#[test]
fn sampling_is_reproducible_by_seed() {
    let a = run_sampled(Some("42"));
    assert_eq!(output_ids(&a), output_ids(&run_sampled(Some("42"))));
    assert_ne!(output_ids(&a), output_ids(&run_sampled(Some("43"))));
    assert_ne!(output_ids(&a), greedy_from_model(&[256, 72, 105], 16));
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!((v["sampling"]["seed"].as_u64(), v["sampling"]["temp"].as_f64()), (Some(42), Some(5.0)));
    // Without --seed a fresh one is drawn and reported; giving it back repeats the run.
    let fresh = run_sampled(None);
    let v: serde_json::Value = serde_json::from_str(&fresh).unwrap();
    let seed = v["sampling"]["seed"].as_u64().expect("the seed is reported").to_string();
    assert_eq!(output_ids(&run_sampled(Some(&seed))), output_ids(&fresh));
}

/// The simulated kernel's logits are the reference's bits, so the same seed samples the same
/// tokens through the same generation loop.
#[test]
fn sampled_tokens_are_the_same_on_the_sim_backend() {
    let args = |backend| {
        ["run", "--backend", backend, "--prompt-ids", "256,72,105", "-n", "5", "--temp", "1.0", "--seed", "5", "--json"]
    };
    assert_eq!(output_ids(&ok(&args("sim"))), output_ids(&ok(&args("ref"))));
}

/// `--stop` with a character of the greedy output: generation ends at the token that produced
/// it, and the text is cut before it.
#[test]
fn stop_string_ends_generation() {
    let ids = greedy_from_model(&[256, 72, 105], 32);
    // The first printable ASCII byte that did not occur before it (bytes >= 0x80 never decode
    // to ASCII, so it cannot appear earlier in the text).
    let k = (0..ids.len())
        .find(|&i| (0x21..0x7f).contains(&ids[i]) && !ids[..i].contains(&ids[i]))
        .expect("a printable byte in 32 tokens");
    let stop = char::from(ids[k] as u8).to_string();
    let out = ok(&["run", "--model", "tiny", "--prompt-ids", "256,72,105", "-n", "32", "--stop", &stop, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(output_ids(&out), ids[..=k].to_vec());
    assert_eq!(v["stop"], "stop_string");
    assert!(!v["text"].as_str().unwrap().contains(&stop), "{v}");
}

#[test]
fn bad_sampling_flags_are_refused() {
    for (args, want) in [
        (&["--top-p", "1.5"][..], "--top-p 1.5: must be in 0..=1"),
        (&["--min-p", "2"], "--min-p 2: must be in 0..=1"),
        (&["--temp", "-0.5"], "--temp -0.5: must be 0 (greedy) or more"),
        (&["--repeat-penalty", "0"], "--repeat-penalty 0: must be more than 0"),
        (&["--stop", ""], "--stop: a stop string must not be empty"),
        (&["--top-k", "-3"], "invalid value '-3' for '--top-k <K>'"),
    ] {
        let e = fails(&[&["run", "--model", "tiny", "-p", "Hi", "-n", "2"][..], args].concat());
        assert!(e.contains(want), "{args:?}: {e}");
    }
}
