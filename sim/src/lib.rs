//! trit-sim: Verilator simulation driven from Rust. [`build`] turns generated RTL into a cached
//! shared library; [`Model`] loads it in process and drives it (any port width, clocking, cycle
//! counts, run-until with a limit, FST windows). [`tools`] is the one place external tools are
//! found.
#![deny(missing_docs)]

pub mod axi;
mod build;
mod model;
pub mod tools;
mod wrapper;

pub use build::{build, cache_root, BuildSpec, Built};
pub use model::{Model, PortId};
pub use wrapper::{wrapper_cpp, PortSpec};

use std::fmt;
use std::path::{Path, PathBuf};

/// What can go wrong building or running a simulation.
#[derive(Debug)]
#[non_exhaustive]
pub enum SimError {
    /// A required tool is missing or unusable.
    Tool(tools::ToolError),
    /// Verilator or the C++ compiler failed.
    Build {
        /// Top module.
        top: String,
        /// Directory with the sources and `build.log`.
        dir: PathBuf,
        /// The first error lines.
        first_errors: String,
    },
    /// The built library could not be loaded.
    Load {
        /// Library path.
        path: PathBuf,
        /// Loader message.
        msg: String,
    },
    /// The build spec or a port request is inconsistent.
    Spec {
        /// Top module.
        top: String,
        /// What is wrong.
        msg: String,
    },
    /// `run_until` hit its cycle limit.
    Timeout {
        /// Top module.
        top: String,
        /// The limit.
        cycles: u64,
    },
    /// The design broke the AXI protocol.
    Protocol {
        /// Master port.
        port: String,
        /// Cycle of the violation.
        cycle: u64,
        /// The rule broken.
        msg: String,
    },
    /// File-system error.
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl SimError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> SimError {
        SimError::Io { path: path.to_path_buf(), source }
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Tool(e) => write!(f, "{e}"),
            SimError::Build { top, dir, first_errors } => {
                write!(f, "verilator build of `{top}` failed (log: {}/build.log):\n{first_errors}", dir.display())
            }
            SimError::Load { path, msg } => write!(f, "cannot load {}: {msg}", path.display()),
            SimError::Spec { top, msg } => write!(f, "simulation of `{top}`: {msg}"),
            SimError::Timeout { top, cycles } => {
                write!(f, "simulation of `{top}` did not finish within {cycles} cycles")
            }
            SimError::Protocol { port, cycle, msg } => {
                write!(f, "AXI protocol violation on {port} at cycle {cycle}: {msg}")
            }
            SimError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for SimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SimError::Tool(e) => Some(e),
            SimError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<tools::ToolError> for SimError {
    fn from(e: tools::ToolError) -> Self {
        SimError::Tool(e)
    }
}
