//! Helpers shared by the generation and eval tests.
#![allow(dead_code)]

use model::Config;
use std::path::Path;
use std::process::{Command, Output};

/// Run the `trit` binary.
pub fn trit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trit")).args(args).output().expect("run trit")
}

/// Stdout of a successful run.
pub fn ok(args: &[&str]) -> String {
    let o = trit(args);
    assert!(o.status.success(), "trit {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// Stderr of a run that fails with exit code 2.
pub fn fails(args: &[&str]) -> String {
    let o = trit(args);
    assert_eq!(o.status.code(), Some(2), "trit {args:?} should fail with exit code 2");
    String::from_utf8(o.stderr).unwrap()
}

/// A checkpoint with the tiny model's shapes, vocabulary 286, and the Llama-3-style tokenizer
/// fixture of model/tests/fixtures/llama3 (`<|begin_of_text|>` 276, `<|end_of_text|>` 277,
/// `<|eot_id|>` 285; tokenizer_config.json asks for BOS and names `<|eot_id|>` as EOS).
pub fn llama3_style_checkpoint(dir: &Path) {
    let cfg = Config::preset_with("tiny", "[model]\nvocab = 286\nbos_token_id = 276\neos_token_id = 277\n").unwrap();
    let w = model::tiny::random_weights(&cfg, 5);
    model::tiny::write_checkpoint(dir, &cfg, &w, model::tiny::StoreDtype::Bf16).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/llama3");
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture.join(f), dir.join(f)).unwrap();
    }
}
