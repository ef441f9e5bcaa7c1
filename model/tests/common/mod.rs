//! Shared helpers for the model integration tests.
#![allow(dead_code)]

use model::checkpoint::{load_dir, FloatWeights};
use model::reference::{QuantModel, Reference};
use model::Config;
use std::sync::Arc;

/// The tiny preset with some fields changed (a small config of another shape).
pub fn variant(edit: &str) -> Config {
    Config::preset_with("tiny", edit).unwrap_or_else(|e| panic!("{e}"))
}

/// Write a random checkpoint for `cfg` and load it back through the real loader.
pub fn checkpoint(cfg: &Config, seed: u64) -> (tempfile::TempDir, FloatWeights) {
    let dir = tempfile::tempdir().unwrap();
    model::tiny::write_model_dir(dir.path(), cfg, seed).unwrap();
    let w = load_dir(dir.path(), cfg).unwrap();
    (dir, w)
}

/// A reference engine for `cfg` with random weights.
pub fn reference(cfg: &Config, seed: u64) -> Reference {
    let (_d, w) = checkpoint(cfg, seed);
    Reference::new(Arc::new(QuantModel::from_float(cfg, &w)))
}
