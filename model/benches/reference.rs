//! Speed of the bit-exact reference at `tellme-kv260` dimensions (hidden 1536, FFN 4096, 16
//! heads of 96, SiLU, vocab 32002), one decoder layer, random weights.
//!
//! - `decode_layer/tellme-kv260`: `Reference::forward_layer(0, ..)` for one token at a context
//!   of 128 cached tokens.
//! - `decode_step/tellme-kv260-1layer`: a full `Reference::decode(token)`: embedding, the layer,
//!   final norm and the 32002-row LM head.
//!
//! Both clone the prefilled engine in the (untimed) setup of `iter_batched`, so every timed call
//! sees exactly 128 cached tokens. (Without the clone the cache would grow by one entry per
//! iteration: `decode` would run out of context after `max_seq - 128` calls, and because
//! `forward_layer` appends K/V without advancing `position()`, repeated calls would attend over
//! the same 129 keys while appending entries nobody reads.) A clone copies only the KV cache
//! (about 400 KB at context 128); the model is shared through an `Arc`.
//!
//! After criterion, a plain line with a quick `Instant`-based figure is printed so the number is
//! visible in `cargo bench` output.

use criterion::{BatchSize, Criterion};
use model::reference::{QuantModel, Reference};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONTEXT: usize = 128;
const SEED: u64 = 0x7e11_3e00;

struct Fixture {
    /// Engine with `CONTEXT` tokens prefilled.
    engine: Reference,
    /// One token's hidden state (Q.16).
    h: Vec<Vec<i32>>,
    /// The token decoded in `decode_step`.
    token: u32,
}

/// Small deterministic pseudo-random numbers (xorshift64*), so the bench needs no extra crates.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn fixture() -> Fixture {
    let t0 = Instant::now();
    let mut cfg = model::Config::preset("tellme-kv260").expect("preset");
    cfg.model.layers = 1;
    // The RoPE table is max_seq x head_dim/2; 512 positions are plenty for a context of 128.
    cfg.model.max_seq = 512;
    cfg.validate().expect("1-layer tellme-kv260 config validates");
    let (vocab, hidden) = (cfg.model.vocab, cfg.model.hidden);
    let w = model::tiny::random_weights(&cfg, SEED);
    let qm = QuantModel::from_float(&cfg, &w);
    drop(w);
    let mut engine = Reference::new(Arc::new(qm));
    let mut rng = Rng(SEED | 1);
    let prompt: Vec<u32> = (0..CONTEXT).map(|_| (rng.next() % vocab as u64) as u32).collect();
    engine.prefill(&prompt).expect("prefill");
    assert_eq!(engine.position(), CONTEXT);
    // Residual-stream values of an embedding-like magnitude: uniform in +-2.0 (Q.16).
    let h = vec![(0..hidden).map(|_| (rng.next() % (1 << 18)) as i32 - (1 << 17)).collect()];
    let token = (rng.next() % vocab as u64) as u32;
    eprintln!(
        "setup: tellme-kv260 dims, 1 layer, random weights, {CONTEXT}-token prefill: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    Fixture { engine, h, token }
}

fn bench_layer(c: &mut Criterion, f: &Fixture) {
    let mut g = c.benchmark_group("decode_layer");
    g.sample_size(10);
    g.bench_function("tellme-kv260", |b| {
        b.iter_batched(
            || (f.engine.clone(), f.h.clone()),
            |(mut r, mut h)| {
                r.forward_layer(0, black_box(&mut h));
                (r, h) // dropped outside the timed region
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn bench_step(c: &mut Criterion, f: &Fixture) {
    let mut g = c.benchmark_group("decode_step");
    g.sample_size(10);
    g.bench_function("tellme-kv260-1layer", |b| {
        b.iter_batched(
            || f.engine.clone(),
            |mut r| {
                let logits = r.decode(black_box(f.token)).expect("decode");
                (r, logits)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Mean wall time of `n` calls of `run` on fresh clones (clone not timed), in ms.
fn quick_ms<T>(n: usize, mut setup: impl FnMut() -> T, mut run: impl FnMut(&mut T)) -> f64 {
    let mut total = Duration::ZERO;
    for _ in 0..n {
        let mut s = setup();
        let t = Instant::now();
        run(black_box(&mut s));
        total += t.elapsed();
        drop(s);
    }
    total.as_secs_f64() * 1e3 / n as f64
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let f = fixture();
    bench_layer(&mut c, &f);
    bench_step(&mut c, &f);
    c.final_summary();

    let layer = quick_ms(10, || (f.engine.clone(), f.h.clone()), |(r, h)| r.forward_layer(0, h));
    let step = quick_ms(
        10,
        || f.engine.clone(),
        |r| {
            black_box(r.decode(f.token).expect("decode"));
        },
    );
    println!("reference decode: {layer:.2} ms per layer (tellme-kv260 dims, context {CONTEXT})");
    println!(
        "reference decode step: {step:.2} ms (1 layer + embedding + final norm + 32002-row LM head; \
         the non-layer part is {:.2} ms)",
        step - layer
    );
}
