//! Shared helpers for the model integration tests.
#![allow(dead_code)]

use model::checkpoint::{load_dir, FloatWeights};
use model::reference::{QuantModel, Reference};
use model::Config;
use std::sync::Arc;

/// The tiny preset with some fields changed (a small config of another shape).
pub fn variant(edit: &str) -> Config {
    let base = include_str!("../../../configs/tiny.toml");
    let mut doc: toml::Table = toml::from_str(base).unwrap();
    let patch: toml::Table = toml::from_str(edit).unwrap();
    for (section, table) in patch {
        match (doc.get_mut(&section), table) {
            (Some(toml::Value::Table(d)), toml::Value::Table(p)) => d.extend(p),
            (_, v) => {
                doc.insert(section, v);
            }
        }
    }
    Config::from_toml(&toml::to_string(&doc).unwrap(), "test-variant", None).unwrap()
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
