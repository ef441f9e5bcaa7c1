//! The sampler chain stage by stage, against values worked out by hand (docs/sampling.md has
//! the order), and its reproducibility.

use host::sampling::{
    candidates_of, draw, filtered, min_p, repeat_penalty, softmax, temperature, top_k, top_p, Candidate, Sampler,
    SamplingParams,
};

fn ids(c: &[Candidate]) -> Vec<u32> {
    c.iter().map(|x| x.id).collect()
}

fn sorted_ids(c: &[Candidate]) -> Vec<u32> {
    let mut v = ids(c);
    v.sort();
    v
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6
}

/// Probabilities 1/8, 1/2, 1/16, 1/4, 1/16 for ids 0..4 (logits are their logarithms).
fn halves() -> Vec<f64> {
    [0.125f64, 0.5, 0.0625, 0.25, 0.0625].iter().map(|p| p.ln()).collect()
}

#[test]
fn repetition_penalty_divides_positive_and_multiplies_negative_logits_once() {
    let mut c = candidates_of(&[2.0, 1.0, -1.0, -2.0]);
    // Token 0 appears twice: penalized once.
    repeat_penalty(&mut c, &[0, 3, 0], 2.0);
    let l: Vec<f64> = c.iter().map(|x| x.logit).collect();
    assert_eq!(l, vec![1.0, 1.0, -1.0, -4.0]);
    let mut c = candidates_of(&[2.0, -2.0]);
    repeat_penalty(&mut c, &[0, 1], 1.0);
    assert_eq!(c, candidates_of(&[2.0, -2.0]), "penalty 1 is off");
}

#[test]
fn top_k_keeps_the_k_largest_lower_id_first_on_ties() {
    let mut c = candidates_of(&[0.5, 3.0, 1.0, 3.0, -1.0]);
    top_k(&mut c, 3);
    assert_eq!(ids(&c), vec![1, 3, 2]);
    let mut c = candidates_of(&[0.5, 3.0, 1.0, 3.0, -1.0]);
    top_k(&mut c, 0);
    assert_eq!(ids(&c), vec![1, 3, 2, 0, 4], "0 keeps all");
    let mut c = candidates_of(&[0.5, 3.0]);
    top_k(&mut c, 10);
    assert_eq!(ids(&c), vec![1, 0]);
}

#[test]
fn softmax_of_logarithms_gives_back_the_probabilities() {
    let p = softmax(&candidates_of(&halves()));
    for (a, b) in p.iter().zip([0.125, 0.5, 0.0625, 0.25, 0.0625]) {
        assert!(close(*a, b), "{p:?}");
    }
}

#[test]
fn top_p_keeps_the_smallest_prefix_reaching_p() {
    let run = |p: f64| {
        let mut c = candidates_of(&halves());
        top_p(&mut c, p);
        ids(&c)
    };
    // Sorted: id 1 (0.5), id 3 (0.25), id 0 (0.125), ids 2 and 4 (0.0625 each).
    assert_eq!(run(0.7), vec![1, 3], "0.5 + 0.25 = 0.75 >= 0.7");
    assert_eq!(run(0.8), vec![1, 3, 0], "0.75 < 0.8 <= 0.875");
    assert_eq!(run(0.9), vec![1, 3, 0, 2], "0.875 < 0.9 <= 0.9375");
    assert_eq!(run(1.0), vec![1, 3, 0, 2, 4], "1 keeps all");
    assert_eq!(run(0.0), vec![1], "at least one token");
}

#[test]
fn min_p_keeps_tokens_at_least_p_times_as_likely_as_the_best() {
    let run = |p: f64| {
        let mut c = candidates_of(&halves());
        min_p(&mut c, p);
        sorted_ids(&c)
    };
    // Best 0.5: p 0.2 -> floor 0.1 keeps 0.5, 0.25, 0.125; p 0.3 -> floor 0.15 keeps two.
    assert_eq!(run(0.2), vec![0, 1, 3]);
    assert_eq!(run(0.3), vec![1, 3]);
    assert_eq!(run(1.0), vec![1]);
    assert_eq!(run(0.0), vec![0, 1, 2, 3, 4], "0 keeps all");
}

#[test]
fn temperature_divides_the_logits() {
    let mut c = candidates_of(&[2.0, -1.0]);
    temperature(&mut c, 0.5);
    assert_eq!(c.iter().map(|x| x.logit).collect::<Vec<_>>(), vec![4.0, -2.0]);
}

#[test]
fn draw_walks_the_cumulative_distribution() {
    let c: Vec<Candidate> =
        [(7, 0.5f64), (8, 0.3), (9, 0.2)].iter().map(|&(id, p)| Candidate { id, logit: p.ln() }).collect();
    // Cumulative 0.5, 0.8, 1.0.
    for (u, want) in [(0.0, 7), (0.49, 7), (0.51, 8), (0.79, 8), (0.81, 9), (0.999, 9)] {
        assert_eq!(draw(&c, u), want, "u = {u}");
    }
}

fn chain(top_k: usize, top_p: f64, min_p: f64, repeat_last_n: usize) -> SamplingParams {
    SamplingParams { temp: 0.5, top_k, top_p, min_p, repeat_penalty: 1.5, repeat_last_n, seed: Some(1) }
}

/// Logits 3, 2, 1, 0, -1 with token 0 in the history, penalty 1.5: token 0 drops to 2.0.
/// Top-k 3 keeps ids 0, 1, 2 with logits 2, 2, 1, whose probabilities before temperature are
/// 1/(2 + e^-1) = 0.4223 (twice) and 0.1554. Temperature 0.5 then gives logits 4, 4, 2 and
/// probabilities 1/(2 + e^-2) = 0.4683 (twice) and 0.0634: cumulative 0.4683, 0.9366, 1.
#[test]
fn the_chain_runs_penalty_top_k_top_p_min_p_then_temperature() {
    let logits = [3.0, 2.0, 1.0, 0.0, -1.0];
    let history = [0];
    let c = filtered(&chain(3, 0.9, 0.0, 64), &logits, &history);
    assert_eq!(ids(&c), vec![0, 1, 2]);
    for (x, want) in c.iter().zip([4.0, 4.0, 2.0]) {
        assert!(close(x.logit, want), "{c:?}");
    }
    let p = softmax(&c);
    assert!(close(p[0], 0.468311) && close(p[2], 0.063378), "{p:?}");
    assert_eq!(draw(&c, 0.3), 0);
    assert_eq!(draw(&c, 0.5), 1);
    // Top-p 0.9 saw the probabilities before temperature (0.8446 < 0.9 after two tokens), so
    // token 2 is still there; had temperature come first, 0.9366 >= 0.9 would have dropped it.
    assert_eq!(draw(&c, 0.95), 2);
    // Top-p 0.8 stops after two tokens (0.8446 >= 0.8).
    assert_eq!(ids(&filtered(&chain(3, 0.8, 0.0, 64), &logits, &history)), vec![0, 1]);
    // Min-p on the same three: token 2 is e^-1 = 0.368 times as likely as the best.
    assert_eq!(sorted_ids(&filtered(&chain(3, 1.0, 0.4, 64), &logits, &history)), vec![0, 1]);
    assert_eq!(sorted_ids(&filtered(&chain(3, 1.0, 0.3, 64), &logits, &history)), vec![0, 1, 2]);
    // Only the last repeat_last_n tokens are penalized: with history [0, 4] and a window of
    // one, token 4 is (-1 -> -1.5, not in the top 3) and token 0 keeps its 3.
    let c = filtered(&chain(3, 1.0, 0.0, 1), &logits, &[0, 4]);
    assert_eq!(ids(&c), vec![0, 1, 2]);
    assert_eq!(c.iter().map(|x| x.logit).collect::<Vec<_>>(), vec![6.0, 4.0, 2.0]);
}

#[test]
fn temperature_zero_is_greedy_after_the_penalty() {
    let mut s = Sampler::new(SamplingParams::greedy()).unwrap();
    assert_eq!(s.sample(&[1.0, 3.0, 3.0], &[]), 1, "lowest id on ties");
    let p = SamplingParams { repeat_penalty: 2.0, ..SamplingParams::greedy() };
    let mut s = Sampler::new(p).unwrap();
    // 3.0 / 2 = 1.5 for token 1, so token 2 wins.
    assert_eq!(s.sample(&[1.0, 3.0, 3.0], &[1]), 2);
    // Q.16 logits: the integers' order, whatever their size.
    assert_eq!(s.sample_q16(&[-5, 1 << 30, (1 << 30) + 1], &[]), 2);
}

/// Q.16 logits 0 and 65536 are 0.0 and 1.0: at temperature 1, token 1 has probability
/// e / (1 + e) = 0.7311. 20000 seeded draws land within 0.015 of it (5 standard deviations);
/// sampling the raw integers would give token 1 every time.
#[test]
fn q16_logits_are_sampled_in_logit_units() {
    let p = SamplingParams { temp: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0, seed: Some(7), ..Default::default() };
    let mut s = Sampler::new(p).unwrap();
    let n = 20000;
    let ones = (0..n).filter(|_| s.sample_q16(&[0, 65536], &[]) == 1).count();
    let f = ones as f64 / n as f64;
    assert!((f - 0.731059).abs() < 0.015, "{f}");
}

#[test]
fn same_seed_same_tokens_other_seed_other_tokens() {
    let logits: Vec<f64> = (0..50).map(|i| (i % 7) as f64 * 0.1).collect();
    let run = |seed: u64| {
        let p = SamplingParams { temp: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0, seed: Some(seed), ..Default::default() };
        let mut s = Sampler::new(p).unwrap();
        (0..40).map(|_| s.sample(&logits, &[])).collect::<Vec<u32>>()
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

#[test]
fn out_of_range_settings_are_refused_with_the_flag_name() {
    let bad = |p: SamplingParams, want: &str| {
        let e = Sampler::new(p).err().expect("refused");
        assert!(e.contains(want), "{e}");
    };
    let base = SamplingParams { temp: 0.8, seed: Some(1), ..Default::default() };
    bad(SamplingParams { top_p: 1.5, ..base.clone() }, "--top-p 1.5: must be in 0..=1");
    bad(SamplingParams { min_p: -0.1, ..base.clone() }, "--min-p -0.1: must be in 0..=1");
    bad(SamplingParams { temp: f64::NAN, ..base.clone() }, "--temp NaN");
    bad(SamplingParams { temp: -1.0, ..base.clone() }, "--temp -1: must be 0 (greedy) or more");
    bad(SamplingParams { repeat_penalty: 0.0, ..base.clone() }, "--repeat-penalty 0: must be more than 0");
    bad(SamplingParams { seed: None, ..base }, "needs a seed");
}
