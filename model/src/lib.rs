//! trit-model: the configuration, quantization, checkpoint loading and the bit-exact reference
//! that defines the accelerator's numerics (`docs/numerics.md`), plus the f32 model that
//! measures what those numerics cost.
#![deny(missing_docs)]

pub mod checkpoint;
pub mod config;
pub mod float;
pub mod import;
pub mod numerics;
pub mod ops;
pub mod pack;
pub mod quant;
pub mod reference;
pub mod tiny;
pub mod tokenizer;

pub use config::Config;
