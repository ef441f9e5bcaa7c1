//! Criterion benchmarks of issue 7:
//! - `reference_decode_step`: one decode step of the bit-exact reference on `tiny`;
//! - `tlmm_sim`: one TLMM matmul (tiny engine, 64 x 96, one token) in Verilator -- criterion's
//!   time per iteration, and the simulated cycles per wall-clock second printed beside it;
//! - `model_vs_simulation`: the performance model on every calibration config (timed), with its
//!   error against a fresh `trit sim` of each printed (measured, never asserted: the test
//!   `report::model_within_5_percent_of_simulation` asserts).

use criterion::{criterion_group, criterion_main, Criterion};
use host::perfmodel;
use host::tlmm::{Throttle, TlmmSim};
use model::reference::{QuantModel, Reference};
use model::Config;
use std::sync::Arc;
use std::time::Instant;

fn reference_decode(c: &mut Criterion) {
    let cfg = Config::preset("tiny").unwrap();
    let q = Arc::new(QuantModel::from_float(&cfg, &model::tiny::random_weights(&cfg, 1)));
    let mut r = Reference::new(q);
    r.prefill(&[1, 2, 3, 4]).unwrap();
    c.bench_function("reference_decode_step/tiny", |b| {
        b.iter(|| {
            if r.position() + 1 >= cfg.model.max_seq {
                r.reset();
                r.prefill(&[1]).unwrap();
            }
            r.decode(5).unwrap()
        })
    });
}

fn tlmm_sim(c: &mut Criterion) {
    let cfg = Config::preset("tiny").unwrap();
    let p = hdl::TlmmParams::from_config(&cfg);
    let tl = p.tlmm();
    let d = hdl::generate_tlmm(&p, "bench");
    let mut sim = TlmmSim::new(&d).unwrap();
    let (n, k) = (64, 96);
    let codes: Vec<i8> = (0..n * k).map(|i| (i % 3) as i8 - 1).collect();
    sim.load_weights(&tl.pack_weights(&codes, n, k)).unwrap();
    let x = vec![(0..k).map(|i| (i as i8).wrapping_mul(7)).collect::<Vec<i8>>()];
    let (mut cycles, t0) = (0u64, Instant::now());
    c.bench_function("tlmm_sim/tiny_64x96", |b| {
        b.iter(|| {
            cycles += sim.matmul(n, k, &x, Throttle::default(), 1_000_000).unwrap().cycles;
        })
    });
    println!("tlmm_sim: {:.0} simulated cycles/s", cycles as f64 / t0.elapsed().as_secs_f64());
}

fn model_vs_sim(c: &mut Criterion) {
    let fit = perfmodel::CALIB.fitted();
    let configs = perfmodel::calibration_configs();
    for (label, cfg) in &configs {
        let s = perfmodel::simulate(cfg, 12).unwrap();
        let (dm, dr, pm, pr) = perfmodel::errors(&fit, &s);
        println!(
            "model_vs_simulation/{label}: decode {:+.2}%, prefill {:+.2}%",
            100.0 * (dm - dr) / dr,
            100.0 * (pm - pr) / pr
        );
    }
    c.bench_function("perfmodel/project_tellme_kv260", |b| {
        let cfg = Config::preset("tellme-kv260").unwrap();
        b.iter(|| perfmodel::project(&cfg, 250.0))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).without_plots();
    targets = reference_decode, tlmm_sim, model_vs_sim
}
criterion_main!(benches);
