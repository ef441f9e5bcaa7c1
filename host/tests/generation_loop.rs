//! The generation loop of host::session on a scripted engine (one-hot logits, so greedy
//! sampling replays the script): stop ids, stop strings, text streamed as it settles, and the
//! Llama-3-style tokenizer's stop ids through a loaded checkpoint.

use anyhow::Result;
use host::sampling::SamplingParams;
use host::session::{generate, Engine, GenOptions, Session, Stop};

mod common;
use common::llama3_style_checkpoint;

/// Returns one-hot Q.16 logits that make greedy sampling pick `script[i]` at step `i`.
struct Scripted {
    script: Vec<u32>,
    vocab: usize,
    pos: usize,
    step: usize,
    fed: Vec<u32>,
}

impl Scripted {
    fn new(script: &[u32], vocab: usize) -> Scripted {
        Scripted { script: script.to_vec(), vocab, pos: 0, step: 0, fed: vec![] }
    }

    fn next_logits(&mut self) -> Vec<i32> {
        let mut l = vec![0; self.vocab];
        l[self.script[self.step] as usize] = 65536;
        self.step += 1;
        l
    }
}

impl Engine for Scripted {
    fn prefill(&mut self, tokens: &[u32]) -> Result<Vec<i32>> {
        self.pos += tokens.len();
        Ok(self.next_logits())
    }
    fn decode(&mut self, token: u32) -> Result<Vec<i32>> {
        self.fed.push(token);
        self.pos += 1;
        Ok(self.next_logits())
    }
    fn position(&self) -> usize {
        self.pos
    }
}

fn bytes(s: &str) -> Vec<u32> {
    s.bytes().map(u32::from).collect()
}

/// Generate greedily through the scripted engine; the text pieces as streamed.
fn run(s: &Session, script: &[u32], n: usize, stop: &[&str]) -> (host::session::Generation, Vec<String>, Vec<u32>) {
    let opts = GenOptions { n, sampling: SamplingParams::greedy(), stop: stop.iter().map(|s| s.to_string()).collect() };
    let mut e = Scripted::new(script, s.cfg.model.vocab);
    let mut pieces = vec![];
    let g = generate(s, &mut e, &[s.tok.bos], &opts, |_| {}, |t| pieces.push(t.to_string())).unwrap();
    (g, pieces, e.fed)
}

#[test]
fn stop_string_cuts_the_text_and_is_never_streamed() {
    let s = Session::open("tiny", None).unwrap();
    // "Hello" with stop "lo": each "l" could start "lo", so it is held back until the next
    // character shows it does not ("Hel" + "l"), and the match cuts the text before "lo".
    let (g, pieces, fed) = run(&s, &bytes("Hello world"), 20, &["lo"]);
    assert_eq!(g.stop, Stop::StopString);
    assert_eq!(g.text, "Hel");
    assert_eq!(g.output_ids, bytes("Hello"), "the token completing the stop string is generated");
    assert_eq!(pieces, vec!["H", "e", "l"]);
    assert_eq!(fed, bytes("Hell"), "no decode step after the stop");
    // The earliest of several stop strings wins.
    let (g, _, _) = run(&s, &bytes("Hello world"), 20, &["world", "o w"]);
    assert_eq!(g.text, "Hell");
}

#[test]
fn text_streams_whole_characters() {
    let s = Session::open("tiny", None).unwrap();
    // "é" is C3 A9: the first byte alone is held back.
    let (g, pieces, _) = run(&s, &bytes("aé!"), 4, &[]);
    assert_eq!(g.stop, Stop::Length);
    assert_eq!(g.output_ids.len(), 4);
    assert_eq!(pieces, vec!["a", "é", "!"]);
    assert_eq!(g.text, "aé!");
}

#[test]
fn eos_stops_and_length_limits() {
    let s = Session::open("tiny", None).unwrap();
    let (g, pieces, fed) = run(&s, &[72, 105, 257, 33], 10, &[]);
    assert_eq!(g.stop, Stop::Eos);
    assert_eq!(g.output_ids, vec![72, 105, 257]);
    assert_eq!((g.text.as_str(), pieces.concat().as_str()), ("Hi", "Hi"));
    assert_eq!(fed, vec![72, 105]);
    assert_eq!(g.timing.decode_steps, 2);
    let (g, _, fed) = run(&s, &bytes("abc"), 2, &[]);
    assert_eq!((g.stop, g.output_ids.clone()), (Stop::Length, bytes("ab")));
    assert_eq!(fed, bytes("a"), "the last token is not fed back");
    // A held-back tail is flushed when generation ends for another reason.
    let (g, pieces, _) = run(&s, &bytes("xyl"), 3, &["lo"]);
    assert_eq!((g.text.as_str(), pieces.concat().as_str()), ("xyl", "xyl"));
}

#[test]
fn empty_stop_string_is_refused() {
    let s = Session::open("tiny", None).unwrap();
    let opts = GenOptions { n: 3, sampling: SamplingParams::greedy(), stop: vec![String::new()] };
    let e = generate(&s, &mut Scripted::new(&[65, 65, 65], 258), &[256], &opts, |_| {}, |_| {}).unwrap_err();
    assert!(e.to_string().contains("--stop: a stop string must not be empty"), "{e}");
}

#[test]
fn llama3_style_checkpoint_stops_at_eot_and_end_of_text() {
    let dir = tempfile::tempdir().unwrap();
    llama3_style_checkpoint(dir.path());
    let s = Session::open(dir.path().to_str().unwrap(), None).unwrap();
    // "Hello world!" is <|begin_of_text|> Hello Ġworld ! (ids worked out in model::tokenizer).
    assert_eq!(s.prompt_ids(Some("Hello world!"), None).unwrap(), vec![276, 264, 269, 0]);
    let (g, _, _) = run(&s, &[264, 285, 0], 10, &[]);
    assert_eq!((g.stop, g.output_ids.clone(), g.text.as_str()), (Stop::Eos, vec![264, 285], "Hello"));
    let (g, _, _) = run(&s, &[269, 277, 0], 10, &[]);
    assert_eq!((g.stop, g.text.as_str()), (Stop::Eos, " world"));
    // Other special tokens are generated like any token and skipped in the text.
    let (g, _, _) = run(&s, &[282, 264, 283], 3, &[]);
    assert_eq!((g.stop, g.text.as_str()), (Stop::Length, "Hello"));
}
