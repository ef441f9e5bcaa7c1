//! Turning one position's logits into the next token: llama.cpp's sampler chain.
//!
//! The chain, in this order (the order of llama.cpp's default `common_sampler`):
//!
//! 1. **repetition penalty** over the distinct tokens among the last `repeat_last_n` tokens
//!    (prompt included): a positive logit is divided by the penalty, a negative one multiplied;
//! 2. **top-k**: keep the `k` largest logits (ties broken by the lower id);
//! 3. **top-p** (nucleus): softmax of what is left, keep the smallest prefix (largest first) whose
//!    probabilities sum to at least `p`;
//! 4. **min-p**: keep the tokens whose probability is at least `min_p` times the largest one's
//!    (on logits: `l >= l_max + ln(min_p)`);
//! 5. **temperature**: divide the logits by `temp`;
//! 6. **draw** one token from the softmax of what is left, with a ChaCha8 generator seeded by
//!    `seed` (same seed, same logits: same tokens).
//!
//! Top-p and min-p therefore see the probabilities *before* temperature, as in llama.cpp. A
//! stage with its neutral value (`top_k` 0, `top_p` 1, `min_p` 0, penalty 1) does nothing, and
//! every stage keeps at least one token. `temp` 0 is greedy: the largest logit after the
//! penalty (the lowest id on ties), no random numbers drawn; the filters cannot change which
//! token that is.
//!
//! Logits come from the engines as Q.16 integers; they are sampled as `l / 65536` in f64 (exact),
//! so greedy sampling picks exactly the reference's `argmax`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Sampling settings (the CLI's `--temp`, `--top-k`, `--top-p`, `--min-p`, `--repeat-penalty`,
/// `--repeat-last-n`, `--seed`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SamplingParams {
    /// Temperature; 0 is greedy.
    pub temp: f64,
    /// Keep the `top_k` most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Nucleus threshold in 0..=1; 1 keeps all.
    pub top_p: f64,
    /// Minimum probability relative to the most likely token, in 0..=1; 0 keeps all.
    pub min_p: f64,
    /// Repetition penalty (> 0); 1 is off.
    pub repeat_penalty: f64,
    /// How many of the latest tokens the penalty looks at; 0 is off.
    pub repeat_last_n: usize,
    /// Seed of the random generator (`None` for greedy: nothing is drawn).
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    /// Greedy, with llama.cpp's defaults for the rest (top-k 40, top-p 0.95, min-p 0.05,
    /// penalty off over the last 64 tokens).
    fn default() -> Self {
        SamplingParams {
            temp: 0.0,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: None,
        }
    }
}

impl SamplingParams {
    /// Plain greedy decoding (no penalty).
    pub fn greedy() -> Self {
        Self::default()
    }

    /// Check every value; the message names the flag and the allowed range.
    pub fn validate(&self) -> Result<(), String> {
        let range = |name: &str, v: f64, ok: bool, what: &str| {
            if ok && v.is_finite() {
                Ok(())
            } else {
                Err(format!("{name} {v}: must be {what}"))
            }
        };
        range("--temp", self.temp, self.temp >= 0.0, "0 (greedy) or more")?;
        range("--top-p", self.top_p, (0.0..=1.0).contains(&self.top_p), "in 0..=1 (1 turns it off)")?;
        range("--min-p", self.min_p, (0.0..=1.0).contains(&self.min_p), "in 0..=1 (0 turns it off)")?;
        range("--repeat-penalty", self.repeat_penalty, self.repeat_penalty > 0.0, "more than 0 (1 turns it off)")?;
        if self.temp > 0.0 && self.seed.is_none() {
            return Err("sampling with --temp > 0 needs a seed".into());
        }
        Ok(())
    }
}

/// A token still in the running, with its (possibly modified) logit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Token id.
    pub id: u32,
    /// Logit.
    pub logit: f64,
}

/// Every token of a logit vector as a candidate.
pub fn candidates_of(logits: &[f64]) -> Vec<Candidate> {
    logits.iter().enumerate().map(|(i, &l)| Candidate { id: i as u32, logit: l }).collect()
}

/// Largest logit first, lower id first on ties.
fn sort_desc(c: &mut [Candidate]) {
    c.sort_by(|a, b| b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id)));
}

/// Stage 1: divide positive logits by `penalty`, multiply negative ones, once per distinct
/// token of `recent`.
pub fn repeat_penalty(c: &mut [Candidate], recent: &[u32], penalty: f64) {
    if penalty == 1.0 || recent.is_empty() {
        return;
    }
    for x in c.iter_mut() {
        if recent.contains(&x.id) {
            x.logit = if x.logit <= 0.0 { x.logit * penalty } else { x.logit / penalty };
        }
    }
}

/// Stage 2: keep the `k` largest (all when `k` is 0); leaves `c` sorted, largest first.
pub fn top_k(c: &mut Vec<Candidate>, k: usize) {
    sort_desc(c);
    if k > 0 {
        c.truncate(k);
    }
}

/// Probabilities of the candidates (softmax, in their order).
pub fn softmax(c: &[Candidate]) -> Vec<f64> {
    let max = c.iter().map(|x| x.logit).fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = c.iter().map(|x| (x.logit - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

/// Stage 3: the smallest set of most likely tokens whose probabilities reach `p`; leaves `c`
/// sorted, largest first.
pub fn top_p(c: &mut Vec<Candidate>, p: f64) {
    sort_desc(c);
    if p >= 1.0 {
        return;
    }
    let probs = softmax(c);
    let mut cum = 0.0;
    let mut keep = c.len();
    for (i, q) in probs.iter().enumerate() {
        cum += q;
        if cum >= p {
            keep = i + 1;
            break;
        }
    }
    c.truncate(keep.max(1));
}

/// Stage 4: keep tokens with probability at least `p` times the largest.
pub fn min_p(c: &mut Vec<Candidate>, p: f64) {
    if p <= 0.0 || c.is_empty() {
        return;
    }
    let max = c.iter().map(|x| x.logit).fold(f64::NEG_INFINITY, f64::max);
    let floor = max + p.ln();
    c.retain(|x| x.logit >= floor);
}

/// Stage 5: divide the logits by `t` (> 0).
pub fn temperature(c: &mut [Candidate], t: f64) {
    c.iter_mut().for_each(|x| x.logit /= t);
}

/// Stage 6: the candidate at which the cumulative probability first exceeds `u` (in [0, 1)).
pub fn draw(c: &[Candidate], u: f64) -> u32 {
    let probs = softmax(c);
    let mut cum = 0.0;
    for (x, q) in c.iter().zip(&probs) {
        cum += q;
        if u < cum {
            return x.id;
        }
    }
    c.last().expect("at least one candidate").id
}

/// The largest logit's id (lowest on ties).
pub fn greedy(c: &[Candidate]) -> u32 {
    c.iter().fold(c[0], |best, x| if x.logit > best.logit { *x } else { best }).id
}

/// Stages 1-5 on `logits`: what [`draw`] chooses from (for `temp` 0, only the greedy token).
pub fn filtered(p: &SamplingParams, logits: &[f64], history: &[u32]) -> Vec<Candidate> {
    let mut c = candidates_of(logits);
    let recent = &history[history.len().saturating_sub(p.repeat_last_n)..];
    repeat_penalty(&mut c, recent, p.repeat_penalty);
    if p.temp <= 0.0 {
        let id = greedy(&c);
        return vec![c[id as usize]];
    }
    top_k(&mut c, p.top_k);
    top_p(&mut c, p.top_p);
    min_p(&mut c, p.min_p);
    temperature(&mut c, p.temp);
    c
}

/// The chain with its random generator.
pub struct Sampler {
    params: SamplingParams,
    rng: ChaCha8Rng,
}

impl Sampler {
    /// A sampler for validated `params`.
    pub fn new(params: SamplingParams) -> Result<Sampler, String> {
        params.validate()?;
        let rng = ChaCha8Rng::seed_from_u64(params.seed.unwrap_or(0));
        Ok(Sampler { params, rng })
    }

    /// The settings.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Next token from Q.16 logits; `history` is every token so far (prompt included).
    pub fn sample_q16(&mut self, logits: &[i32], history: &[u32]) -> u32 {
        let l: Vec<f64> = logits.iter().map(|&x| x as f64 / 65536.0).collect();
        self.sample(&l, history)
    }

    /// Next token from float logits.
    pub fn sample(&mut self, logits: &[f64], history: &[u32]) -> u32 {
        let c = filtered(&self.params, logits, history);
        if self.params.temp <= 0.0 {
            return c[0].id;
        }
        let u: f64 = self.rng.random();
        draw(&c, u)
    }
}
