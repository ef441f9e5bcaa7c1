//! `trit bench tlmm`: cycles of the simulated TLMM engine against the ideal (lookups needed ÷
//! lookups per cycle), simulation speed, and verilate + C++ build times from a cold cache.
//! Figures are measured, never asserted here.

use crate::tlmm::{build_spec, Throttle, TlmmSim};
use anyhow::Result;
use hdl::{generate_tlmm, TlmmParams};
use model::Config;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::time::Instant;

/// One measured matrix product.
#[derive(Debug, Clone, Serialize)]
pub struct ShapeResult {
    /// Output rows (N).
    pub n: usize,
    /// Inputs (K).
    pub k: usize,
    /// Tokens sharing the weights.
    pub tokens: usize,
    /// Cycles from start to done.
    pub cycles: u64,
    /// Lookups needed ÷ lookups per cycle (per token, times tokens).
    pub ideal_cycles: f64,
    /// ideal ÷ measured.
    pub utilization: f64,
    /// Simulated cycles per wall-clock second (driver included).
    pub sim_cycles_per_s: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct TlmmBench {
    /// Config measured.
    pub config: String,
    /// Engine parameters.
    pub params: TlmmParams,
    /// Lookups per cycle.
    pub lookups_per_cycle: usize,
    /// Per-shape results.
    pub shapes: Vec<ShapeResult>,
    /// Cold verilate + build of the measured design, seconds.
    pub build_seconds: f64,
    /// Cold verilate + build of the `tiny` preset's design, seconds.
    pub tiny_build_seconds: f64,
}

/// Measure the engine of `cfg` on `shapes` (N, K, tokens); the weight buffer is sized to hold
/// the largest one. Builds go to a fresh cache directory so their times are cold.
pub fn bench_tlmm(cfg: &Config, shapes: &[(usize, usize, usize)]) -> Result<TlmmBench> {
    let mut p = TlmmParams::from_config(cfg);
    let tl = p.tlmm();
    p.WBUF_DEPTH = shapes.iter().map(|&(n, k, _)| tl.blocks(n) * tl.steps(k)).max().unwrap_or(1).max(p.WBUF_DEPTH);
    p.MAX_TOKENS = shapes.iter().map(|s| s.2).max().unwrap_or(1).max(p.MAX_TOKENS);
    let cold = tempfile_dir()?;
    let design = generate_tlmm(&p, &format!("config `{}` (benchmark)", cfg.name));
    let mut spec = build_spec(&design, false);
    spec.cache_dir = Some(cold.join("main"));
    let mut sim = TlmmSim::with_spec(&design, &spec)?;
    let build_seconds = sim.model.built.build_seconds;
    let tiny = hdl::generate(&Config::preset("tiny")?);
    let mut tiny_spec = build_spec(&tiny, false);
    tiny_spec.cache_dir = Some(cold.join("tiny"));
    let tiny_build_seconds = sim::build(&tiny_spec)?.build_seconds;
    let _ = std::fs::remove_dir_all(&cold);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut out = Vec::new();
    for &(n, k, tokens) in shapes {
        let codes: Vec<i8> = (0..n * k).map(|_| rng.random_range(-1..=1)).collect();
        let x: Vec<Vec<i8>> = (0..tokens).map(|_| (0..k).map(|_| rng.random::<i8>()).collect()).collect();
        sim.load_weights(&tl.pack_weights(&codes, n, k))?;
        let t0 = Instant::now();
        let run = sim.matmul(n, k, &x, Throttle::default(), 100 * (n * k) as u64)?;
        let secs = t0.elapsed().as_secs_f64();
        let ideal = (tl.lookups_needed(n, k) * tokens) as f64 / tl.lookups_per_cycle() as f64;
        out.push(ShapeResult {
            n,
            k,
            tokens,
            cycles: run.cycles,
            ideal_cycles: ideal,
            utilization: ideal / run.cycles as f64,
            sim_cycles_per_s: run.cycles as f64 / secs.max(1e-9),
        });
    }
    Ok(TlmmBench {
        config: cfg.name.clone(),
        lookups_per_cycle: tl.lookups_per_cycle(),
        params: p,
        shapes: out,
        build_seconds,
        tiny_build_seconds,
    })
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("trit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

impl TlmmBench {
    /// Human-readable table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "TLMM engine of `{}`: G={}, {} tables x {} rows = {} lookups/cycle\n",
            self.config, self.params.G, self.params.TABLES, self.params.COLS, self.lookups_per_cycle
        );
        s.push_str(&format!(
            "{:>6} {:>6} {:>6} {:>10} {:>10} {:>12} {:>14}\n",
            "N", "K", "tokens", "cycles", "ideal", "utilization", "sim cycles/s"
        ));
        for r in &self.shapes {
            s.push_str(&format!(
                "{:>6} {:>6} {:>6} {:>10} {:>10.0} {:>11.1}% {:>14.0}\n",
                r.n,
                r.k,
                r.tokens,
                r.cycles,
                r.ideal_cycles,
                100.0 * r.utilization,
                r.sim_cycles_per_s
            ));
        }
        s.push_str(&format!(
            "cold verilate + build: {:.1} s for this design, {:.1} s for `tiny`",
            self.build_seconds, self.tiny_build_seconds
        ));
        s
    }
}
