//! A realistic-size case: one decoder layer of the full-size `tellme-kv260` model (hidden 1536,
//! 16 heads of 96, FFN 4096, gated SiLU, the 32002-row LM head; four memory ports, eight tokens
//! per weight fetch, one query per pass over the keys, the weight buffer's ring of chunks) on the Verilator
//! kernel, prefill then decode: logits equal to the reference device's bit for bit after every
//! program. Random weights for one layer; the Verilator build of the full-size kernel is cached
//! by content hash like every other. `trit sim --config tellme-kv260` measures the same design's
//! cycles; this checks what it computes.

use host::check::lockstep;
use host::session::Session;
use model::Config;

/// One layer of `cfg` (random weights, seed `seed`), a nine-token prompt of ids
/// `(i * step + offset) % vocab`, then two decoded tokens: logits equal to the reference
/// device's after every program.
fn one_layer_equals_the_reference(cfg: Config, seed: u64, step: u32, offset: u32) {
    let s = Session::tiny(cfg, seed).unwrap_or_else(|e| panic!("{e:#}"));
    let prompt: Vec<u32> = (0..9u32).map(|i| (i * step + offset) % 32002).collect();
    let r = lockstep(&s, &prompt, 2, None).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(r.tokens.len(), 2);
    assert_eq!(r.logits.len(), 32002);
    assert!(r.logits.iter().any(|&l| l != 0), "all-zero logits");
}

/// `preset` cut to one layer, with byte-level BOS/EOS ids for the random model's tokenizer (the
/// numerics do not see them).
fn one_layer_of(preset: &str) -> Config {
    let patch = "[model]\nlayers = 1\nbos_token_id = 256\neos_token_id = 257\n";
    Config::preset_with(preset, patch).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn one_full_size_tellme_kv260_layer_equals_the_reference() {
    // Nine tokens: a full chunk of eight and a chunk of one.
    one_layer_equals_the_reference(one_layer_of("tellme-kv260"), 11, 7919, 13);
}

/// The preset narrowed to fit the KV260 (`tellme-kv260-fit`: 14 tables, four tokens per weight
/// fetch, attention over one port, the loader prefetching over the other three meanwhile): the
/// design users can build today, simulated like the full one.
#[test]
fn one_layer_of_the_fitting_variant_equals_the_reference() {
    let cfg = one_layer_of("tellme-kv260-fit");
    assert_eq!((cfg.engine.tables_per_step, cfg.engine.prefill_tokens, cfg.engine.attention_ports), (14, 4, Some(1)));
    // Nine tokens: two full chunks of four and a chunk of one.
    one_layer_equals_the_reference(cfg, 12, 4099, 5);
}
