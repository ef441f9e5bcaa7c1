//! The cycle benchmark of issue 5: one full-size `tellme-kv260` decoder layer (hidden 1536, FFN
//! 4096) in Verilator behind the KV260 DRAM model (17.1 GB/s at 250 MHz). Prints the decode
//! step's fraction of the DRAM roofline (layer bytes / (cycles x bytes per cycle)) and the
//! 128-token prefill's fraction of the compute floor (lookups needed / lookups per cycle), with
//! the per-op breakdown; TeLLMe v2 reaches about 21 % and 27 % of the same limits. A benchmark
//! measures and prints; it never fails on a figure.
//!
//! `TRIT_BENCH_CONFIG` (default `tellme-kv260`) and `TRIT_BENCH_PROMPT` (default 128) change the
//! config and the prompt length; the prefill of 128 tokens takes several minutes of simulation.

use host::simperf::{run, text, SimRequest};
use model::Config;
use std::time::Instant;

fn main() {
    let config = std::env::var("TRIT_BENCH_CONFIG").unwrap_or_else(|_| "tellme-kv260".into());
    let prompt_len = std::env::var("TRIT_BENCH_PROMPT").ok().and_then(|p| p.parse().ok()).unwrap_or(128);
    let cfg = Config::load(&config).unwrap_or_else(|e| panic!("{e}"));
    let req = SimRequest { cfg, layers: 1, prompt_len, decode_steps: 1, lm_head: false, timeline: false };
    let t0 = Instant::now();
    let mut last = 0;
    let r = run(&req, |done, total| {
        if done * 10 / total.max(1) != last {
            last = done * 10 / total.max(1);
            eprintln!("  {done}/{total} ops simulated ({:.0?})", t0.elapsed());
        }
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", text(&r));
    println!(
        "sim_layer/{config}: decode {:.1} % of the DRAM roofline, {}-token prefill {:.1} % of the compute floor \
         (targets 80 % and 70 %; TeLLMe v2 about 21 % and 27 %); {:.0?} of simulation",
        100.0 * r.decode.roofline_fraction,
        r.prefill.prompt_len,
        100.0 * r.prefill.compute_fraction,
        t0.elapsed()
    );
}
