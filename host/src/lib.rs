//! trit-host: loading models, the runtime that drives a backend, and the `trit` CLI.
#![deny(missing_docs)]

pub mod accuracy;
pub mod session;
pub mod tlmm;
