//! The whole decoder on the simulated kernel: token ids and logits from the Verilator RTL equal
//! the reference device's exactly, for several model shapes, prompt lengths and decode steps, and
//! up to the context limit. Set TRIT_WAVES=DIR to get an FST of the first failing program.

use host::check::lockstep;
use host::session::Session;
use model::Config;
use std::path::PathBuf;

fn variant(edit: &str) -> Config {
    Config::preset_with("tiny", edit).unwrap_or_else(|e| panic!("{e}"))
}

fn prompt(n: usize) -> Vec<u32> {
    (0..n as u32).map(|i| (i * 37 + 11) % 256).collect()
}

fn wave(name: &str) -> Option<PathBuf> {
    std::env::var_os("TRIT_WAVES").map(|d| PathBuf::from(d).join(format!("{name}.fst")))
}

/// Prompts of 1, 7 and 33 tokens (33 spans several prefill chunks), 16 greedy decode steps each.
fn check(name: &str, cfg: Config) {
    let s = Session::tiny(cfg, 3).unwrap();
    for len in [1, 7, 33] {
        let w = wave(&format!("{name}-{len}"));
        let r = lockstep(&s, &prompt(len), 16, w.as_deref()).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(r.tokens.len(), 16);
        assert_eq!(r.cycles.len(), 17);
        assert!(r.logits.iter().any(|&l| l != 0), "{name}: all-zero logits");
    }
}

#[test]
fn tiny_sim_equals_ref() {
    check("tiny", Config::preset("tiny").unwrap());
}

/// Also attention query blocks of four (tiny: two): a 7-token prompt ends in a block of three;
/// attention over three of the four ports (the loader keeps the fourth); and 256-bit masters
/// (the int8 LM head takes 32 codes per port and cycle).
#[test]
fn silu_mha_head_dim_32_without_sub_norms_sim_equals_ref() {
    check(
        "silu-mha-hd32",
        variant(
            "[model]\nffn_activation = \"silu\"\nsub_norms = false\nheads = 2\nkv_heads = 2\nhead_dim = 32\n\
             [engine]\nattention_queries = 4\nattention_ports = 3\naxi_data_bits = 256\n",
        ),
    );
}

/// Also the int4 LM head (two codes per byte: 32 codes per port and cycle), attention over port 0
/// alone (the loader prefetches over the three weight ports meanwhile), and 256-bit masters
/// behind the board's 128-bit ports (the memory model holds each port to 16 B x 333 MHz; the
/// head takes 64 codes per port and cycle).
#[test]
fn gqa_4_to_1_tied_int4_kv_and_head_sim_equals_ref() {
    check(
        "gqa4-tied-int4",
        variant(
            "[model]\nkv_heads = 1\ntied_embeddings = true\n[quant]\nkv = \"int4\"\nlm_head = \"int4\"\n\
             [engine]\nattention_ports = 1\naxi_data_bits = 256\n",
        ),
    );
}

/// Fill the whole context (prefill 10, then decode to max_seq) on a short-context variant.
#[test]
fn sim_equals_ref_up_to_the_context_limit() {
    let s = Session::tiny(variant("[model]\nmax_seq = 24\n"), 9).unwrap();
    let r = lockstep(&s, &prompt(10), 100, wave("context").as_deref()).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(r.tokens.len(), 14, "decoding stops when the context is full");
}

/// The waveform a failing comparison leaves behind: replaying a prompt and a decode step on the
/// traced build writes an FST of the requested cycle window.
#[test]
fn a_failing_program_can_be_replayed_into_a_waveform() {
    let s = Session::tiny(Config::preset("tiny").unwrap(), 3).unwrap();
    let r = lockstep(&s, &prompt(3), 1, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decode.fst");
    // The decode step's cycles follow the prefill's.
    let (from, to) = (r.cycles[0], r.cycles[0] + r.cycles[1]);
    host::check::replay_with_waveform(&s, &[prompt(3), vec![r.tokens[0]]], &path, from, to).unwrap();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    assert!(size > 1000, "waveform too small: {size} bytes");
}
