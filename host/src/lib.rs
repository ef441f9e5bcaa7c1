//! trit-host: loading models, the runtime that drives a backend, and the `trit` CLI.
#![deny(missing_docs)]

pub mod accuracy;
pub mod bench;
pub mod check;
pub mod device;
pub mod eval;
pub mod fit;
pub mod import;
pub mod perfmodel;
pub mod refdev;
pub mod report;
pub mod runtime;
pub mod sampling;
pub mod session;
pub mod simdev;
pub mod simperf;
pub mod synth;
pub mod tlmm;
pub mod xrtdev;
