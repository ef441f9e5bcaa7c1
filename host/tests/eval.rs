//! `trit eval`: logits under the three numerics and perplexity, each checked against the model
//! crate called directly (not through host::eval); its error messages; checkpoints with the
//! Llama-3-style tokenizer and both `config.json` forms.

mod common;
use common::{fails, llama3_style_checkpoint, ok};
use model::float::{FloatMode, FloatModel, FloatRunner};
use model::reference::{QuantModel, Reference};
use model::Config;
use std::sync::Arc;

fn tiny_weights() -> (Config, model::checkpoint::FloatWeights) {
    let cfg = Config::preset("tiny").unwrap();
    let dir = tempfile::tempdir().unwrap();
    model::tiny::write_model_dir(dir.path(), &cfg, model::tiny::TINY_SEED).unwrap();
    let w = model::checkpoint::load_dir(dir.path(), &cfg).unwrap();
    (cfg, w)
}

fn rows(v: &serde_json::Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
        .collect()
}

#[test]
fn eval_logits_match_the_model_crate_in_every_mode() {
    let (cfg, w) = tiny_weights();
    let prompt = [256u32, 72, 105];
    let json = |mode: &str| -> serde_json::Value {
        serde_json::from_str(&ok(&["eval", "--model", "tiny", "--prompt-ids", "256,72,105", "--mode", mode, "--json"]))
            .unwrap()
    };
    // exact: the reference's Q.16 integers over 2^16 (exact in f32 for these magnitudes).
    let v = json("exact");
    assert_eq!(v["prompt_ids"], serde_json::json!([256, 72, 105]));
    let got = rows(&v["logits"]);
    let mut r = Reference::new(Arc::new(QuantModel::from_float(&cfg, &w)));
    let want: Vec<Vec<f32>> =
        r.prefill_all(&prompt).unwrap().iter().map(|l| l.iter().map(|&x| x as f32 / 65536.0).collect()).collect();
    assert_eq!((got.len(), got[0].len()), (3, 258), "one row per position, one float per vocabulary entry");
    assert_eq!(got, want);
    for (mode, fm) in [("plain", FloatMode::Plain), ("w158a8", FloatMode::W158A8)] {
        let got = rows(&json(mode)["logits"]);
        let want = FloatRunner::new(Arc::new(FloatModel::new(&cfg, w.clone(), fm))).forward(&prompt);
        assert_eq!(got, want, "{mode}");
    }
    // Text prompts carry the BOS the tokenizer adds.
    let v: serde_json::Value = serde_json::from_str(&ok(&["eval", "--model", "tiny", "-p", "Hi", "--json"])).unwrap();
    assert_eq!(v["prompt_ids"], serde_json::json!([256, 72, 105]));
    assert_eq!(rows(&v["logits"]), want_exact(&cfg, &w, &prompt));
}

fn want_exact(cfg: &Config, w: &model::checkpoint::FloatWeights, ids: &[u32]) -> Vec<Vec<f32>> {
    let mut r = Reference::new(Arc::new(QuantModel::from_float(cfg, w)));
    r.prefill_all(ids).unwrap().iter().map(|l| l.iter().map(|&x| x as f32 / 65536.0).collect()).collect()
}

/// `-ln softmax(l)[t]` from Q.16 logits, in f64.
fn nll_q16(l: &[i32], t: u32) -> f64 {
    let v: Vec<f64> = l.iter().map(|&x| x as f64 / 65536.0).collect();
    let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln() - v[t as usize]
}

/// Perplexity of byte tokens `text` with windows of `width` text tokens after a BOS, starting
/// every `stride` tokens, each token scored once (the definition in docs/sampling.md).
fn perplexity_by_hand(
    cfg: &Config,
    w: &model::checkpoint::FloatWeights,
    text: &[u32],
    width: usize,
    stride: usize,
) -> f64 {
    let q = Arc::new(QuantModel::from_float(cfg, w));
    let (mut sum, mut n, mut scored_to, mut start) = (0.0, 0, 0, 0);
    loop {
        let end = (start + width).min(text.len());
        let mut input = vec![256];
        input.extend_from_slice(&text[start..end]);
        let logits = Reference::new(Arc::clone(&q)).prefill_all(&input).unwrap();
        // Row j predicts input[j + 1] = text[start + j].
        for g in scored_to.max(start)..end {
            sum += nll_q16(&logits[g - start], text[g]);
            n += 1;
        }
        scored_to = end;
        if end == text.len() {
            break;
        }
        start += stride;
    }
    assert_eq!(n, text.len());
    (sum / n as f64).exp()
}

#[test]
fn perplexity_chunked_and_sliding() {
    let (cfg, w) = tiny_weights();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("text.txt");
    let text: String = "The quick brown fox jumps over the lazy dog. ".repeat(3).chars().take(100).collect();
    std::fs::write(&file, &text).unwrap();
    let bytes: Vec<u32> = text.bytes().map(u32::from).collect();
    let f = file.to_str().unwrap();
    let run = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["eval", "--model", "tiny", "--perplexity", f, "--json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&ok(&args)).unwrap()
    };
    // 100 tokens, windows of 33 positions = BOS + 32 tokens: 32 + 32 + 32 + 4.
    let v = run(&["--ctx", "33"]);
    assert_eq!((v["tokens"].as_u64(), v["windows"].as_u64(), v["mode"].as_str()), (Some(100), Some(4), Some("exact")));
    let want = perplexity_by_hand(&cfg, &w, &bytes, 32, 32);
    let got = v["perplexity"].as_f64().unwrap();
    assert!((got - want).abs() <= 1e-9 * want, "{got} vs {want}");
    // Sliding by 16: windows start at 0, 16, 32, 48, 64, 80; the last reaches the end.
    let v = run(&["--ctx", "33", "--stride", "16"]);
    assert_eq!((v["tokens"].as_u64(), v["windows"].as_u64()), (Some(100), Some(6)));
    let sliding = perplexity_by_hand(&cfg, &w, &bytes, 32, 16);
    let got = v["perplexity"].as_f64().unwrap();
    assert!((got - sliding).abs() <= 1e-9 * sliding, "{got} vs {sliding}");
    assert!((sliding - want).abs() > 1e-6 * want, "more context changes the result");
    // The whole text fits one window at the default context (320).
    let v = run(&[]);
    assert_eq!((v["windows"].as_u64(), v["context"].as_u64()), (Some(1), Some(320)));
    let one = perplexity_by_hand(&cfg, &w, &bytes, 319, 319);
    assert!((v["perplexity"].as_f64().unwrap() - one).abs() <= 1e-9 * one);
    // The float models score the same tokens.
    let v = run(&["--mode", "w158a8"]);
    assert_eq!((v["tokens"].as_u64(), v["mode"].as_str()), (Some(100), Some("w158a8")));
    let p = v["perplexity"].as_f64().unwrap();
    assert!(p.is_finite() && p > 1.0 && (p - one).abs() > 1e-9, "{p}");
    let plain = ok(&["eval", "--model", "tiny", "--perplexity", f]);
    assert!(plain.starts_with("perplexity ") && plain.contains("over 100 tokens"), "{plain}");
}

#[test]
fn eval_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let text = dir.path().join("t.txt");
    std::fs::write(&text, "some text").unwrap();
    let (e, t) = (empty.to_str().unwrap(), text.to_str().unwrap());
    let e1 = fails(&["eval", "--model", "tiny"]);
    assert!(e1.contains("give one of --prompt, --prompt-ids or --perplexity"), "{e1}");
    let e2 = fails(&["eval", "--model", "tiny", "-p", "x", "--mode", "fp8"]);
    assert!(e2.contains("invalid value 'fp8' for '--mode <MODE>'") && e2.contains("plain, w158a8, exact"), "{e2}");
    let e3 = fails(&["eval", "--model", "tiny", "--perplexity", "/nonexistent/x.txt"]);
    assert!(e3.contains("--perplexity /nonexistent/x.txt") && e3.contains("No such file"), "{e3}");
    let e4 = fails(&["eval", "--model", "tiny", "--perplexity", e]);
    assert!(e4.contains("the text has 0 token(s): perplexity needs at least 1"), "{e4}");
    let e5 = fails(&["eval", "--model", "tiny", "--perplexity", t, "--ctx", "1"]);
    assert!(e5.contains("--ctx 1: must be in 2..=320"), "{e5}");
    let e6 = fails(&["eval", "--model", "tiny", "--perplexity", t, "--ctx", "400"]);
    assert!(e6.contains("--ctx 400: must be in 2..=320"), "{e6}");
    let e7 = fails(&["eval", "--model", "tiny", "--perplexity", t, "--ctx", "10", "--stride", "0"]);
    assert!(e7.contains("--stride 0: must be in 1..=9"), "{e7}");
    let e8 = fails(&["eval", "--model", "tiny", "-p", "x", "--perplexity", t]);
    assert!(e8.contains("cannot be used with"), "{e8}");
    let ids: Vec<String> = (0..321).map(|i| (i % 256).to_string()).collect();
    let e9 = fails(&["eval", "--model", "tiny", "--prompt-ids", &ids.join(",")]);
    assert!(e9.contains("321 tokens, more than the context length max_seq = 320"), "{e9}");
    let e10 = fails(&["eval", "--model", "tiny", "--prompt-ids", "256,300"]);
    assert!(e10.contains("token id 300 is outside the vocabulary (size 258)"), "{e10}");
}

#[test]
fn llama3_style_checkpoint_runs_and_evaluates_with_one_bos() {
    let dir = tempfile::tempdir().unwrap();
    llama3_style_checkpoint(dir.path());
    let m = dir.path().to_str().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["run", "--model", m, "-p", "Hello world!", "-n", "3", "--json"])).unwrap();
    assert_eq!(v["prompt_ids"], serde_json::json!([276, 264, 269, 0]));
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["eval", "--model", m, "-p", "Hello world!", "--json"])).unwrap();
    assert_eq!(v["prompt_ids"], serde_json::json!([276, 264, 269, 0]));
    let l = rows(&v["logits"]);
    assert_eq!((l.len(), l[0].len()), (4, 286));
    // Perplexity windows start with BOS, so every text token is scored.
    let f = dir.path().join("t.txt");
    std::fs::write(&f, "Hello world! Hello there.").unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["eval", "--model", m, "--perplexity", f.to_str().unwrap(), "--json"])).unwrap();
    // Pre-tokens "Hello" " world" "!" " Hello" " there" ".": "ĠHello" is not in the
    // vocabulary and merges to Ġ + Hello (l l, H e, He ll, Hell o), " there" to Ġthe r e:
    // 1 + 1 + 1 + 2 + 3 + 1 = 9.
    assert_eq!(v["tokens"], 9);
}

/// transformers 4 writes `rope_theta` at the top level, transformers 5 inside
/// `rope_parameters` (and `dtype` for `torch_dtype`); both load to the same model.
#[test]
fn hf_config_json_in_both_transformers_forms() {
    let cfg = Config::preset("tiny").unwrap();
    let dir = tempfile::tempdir().unwrap();
    model::tiny::write_model_dir(dir.path(), &cfg, model::tiny::TINY_SEED).unwrap();
    let path = dir.path().join("config.json");
    let v4: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v4["rope_theta"], 10000.0, "the tiny checkpoint is written in the transformers-4 form");
    let m = dir.path().to_str().unwrap();
    let args = |m| ["run", "--model", m, "--prompt-ids", "256,65", "-n", "5", "--json"];
    let reference = ok(&args("tiny"));
    assert_eq!(ok(&args(m)), reference);
    let mut v5 = v4.clone();
    let o = v5.as_object_mut().unwrap();
    o.remove("rope_theta");
    o.insert("rope_parameters".into(), serde_json::json!({"rope_theta": 10000.0, "rope_type": "default"}));
    let dtype = o.remove("torch_dtype").unwrap();
    o.insert("dtype".into(), dtype);
    o.insert("eos_token_id".into(), serde_json::json!([257]));
    std::fs::write(&path, serde_json::to_string_pretty(&v5).unwrap()).unwrap();
    assert_eq!(ok(&args(m)), reference);
    let s = host::session::Session::open(m, None).unwrap();
    assert_eq!((s.cfg.model.rope_theta, s.cfg.model.eos_token_id), (10000.0, 257));
    // A RoPE scaling trit does not implement, and no RoPE base at all, are errors.
    v5["rope_parameters"]["rope_type"] = "yarn".into();
    std::fs::write(&path, v5.to_string()).unwrap();
    let e = fails(&args(m));
    assert!(e.contains("rope_type `yarn` is not supported"), "{e}");
    v5.as_object_mut().unwrap().remove("rope_parameters");
    std::fs::write(&path, v5.to_string()).unwrap();
    let e = fails(&args(m));
    assert!(e.contains("no `rope_theta`"), "{e}");
}
