//! Building a Verilator model of a design into a shared library, cached by content hash.
//!
//! The cache key covers every input that can change the binary: the Verilator version line,
//! the flags, the top name, every source's name and text, and the generated C++ wrapper. A hit
//! costs one hash and a `dlopen`; a miss runs `verilator --cc --exe --build` in a temporary
//! directory that is renamed into place, under a file lock so parallel tests build once.

use crate::tools::{self, Tool};
use crate::wrapper::{wrapper_cpp, PortSpec};
use crate::SimError;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// Top-level module name.
    pub top: String,
    /// Sources in dependency order: (file name, text).
    pub sources: Vec<(String, String)>,
    /// Ports of the top level (the wrapper's port table).
    pub ports: Vec<PortSpec>,
    /// Name of the clock input.
    pub clock: String,
    /// Build with FST tracing support.
    pub trace: bool,
    /// Cache directory; `None` for [`cache_root`]. (Benchmarks use a fresh one for cold builds.)
    pub cache_dir: Option<PathBuf>,
}

/// A built (or cached) model library.
#[derive(Debug, Clone)]
pub struct Built {
    /// The shared library.
    pub lib: PathBuf,
    /// Whether it came from the cache.
    pub cached: bool,
    /// Seconds spent building (0 when cached).
    pub build_seconds: f64,
}

/// FNV-1a, 64 bit: a stable content hash (std's hasher may change between Rust releases).
fn fnv1a(state: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *state ^= b as u64;
        *state = state.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Separate fields so ("ab","c") and ("a","bc") differ.
    *state ^= 0xff;
    *state = state.wrapping_mul(0x0000_0100_0000_01b3);
}

/// Where models are cached: `$CARGO_TARGET_DIR/verilator` or `<repo>/target/verilator`.
pub fn cache_root() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| tools::repo_root().join("target"));
    target.join("verilator")
}

fn jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The Verilator flags (part of the cache key).
fn flags(spec: &BuildSpec) -> Vec<String> {
    let mut f: Vec<String> = [
        "--cc",
        "--exe",
        "--build",
        "-Wall",
        "--x-assign",
        "0",
        "--x-initial",
        "0",
        "-CFLAGS",
        "-fPIC -O1",
        "-LDFLAGS",
        "-shared",
        "-MAKEFLAGS",
        "OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if spec.trace {
        f.extend(["--trace-fst".to_string(), "-CFLAGS".to_string(), "-DTRIT_TRACE".to_string()]);
    }
    f.extend(["--top-module".to_string(), spec.top.clone()]);
    f
}

/// Build `spec` (or reuse the cached build) and return the library path.
pub fn build(spec: &BuildSpec) -> Result<Built, SimError> {
    let verilator = tools::find(Tool::Verilator)?;
    let wrapper = wrapper_cpp(&spec.top, &spec.ports, &spec.clock)?;
    let flags = flags(spec);
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    fnv1a(&mut h, verilator.version.as_bytes());
    for f in &flags {
        fnv1a(&mut h, f.as_bytes());
    }
    for (name, text) in &spec.sources {
        fnv1a(&mut h, name.as_bytes());
        fnv1a(&mut h, text.as_bytes());
    }
    fnv1a(&mut h, wrapper.as_bytes());
    let root = spec.cache_dir.clone().unwrap_or_else(cache_root);
    let key = format!("{}-{h:016x}", spec.top);
    let dir = root.join(&key);
    let lib = dir.join("obj").join(lib_name(&spec.top));
    if lib.is_file() {
        return Ok(Built { lib, cached: true, build_seconds: 0.0 });
    }
    std::fs::create_dir_all(&root).map_err(|e| SimError::io(&root, e))?;
    let lock_path = root.join(format!("{key}.lock"));
    let lock = std::fs::File::create(&lock_path).map_err(|e| SimError::io(&lock_path, e))?;
    lock.lock().map_err(|e| SimError::io(&lock_path, e))?;
    if lib.is_file() {
        return Ok(Built { lib, cached: true, build_seconds: 0.0 });
    }
    let t0 = Instant::now();
    let tmp = root.join(format!("{key}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let src_dir = tmp.join("src");
    std::fs::create_dir_all(&src_dir).map_err(|e| SimError::io(&src_dir, e))?;
    let mut args = flags.clone();
    args.extend(["-j".to_string(), jobs().to_string(), "--Mdir".to_string(), "obj".to_string()]);
    args.extend(["-o".to_string(), lib_name(&spec.top)]);
    let wrapper_path = src_dir.join("trit_sim_wrapper.cpp");
    std::fs::write(&wrapper_path, &wrapper).map_err(|e| SimError::io(&wrapper_path, e))?;
    args.push("src/trit_sim_wrapper.cpp".into());
    for (name, text) in &spec.sources {
        let p = src_dir.join(name);
        std::fs::write(&p, text).map_err(|e| SimError::io(&p, e))?;
        args.push(format!("src/{name}"));
    }
    let out = Command::new(&verilator.path)
        .args(&args)
        .current_dir(&tmp)
        .output()
        .map_err(|e| SimError::io(&verilator.path, e))?;
    if !out.status.success() {
        let log = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        std::fs::write(tmp.join("build.log"), &log).ok();
        return Err(SimError::Build { top: spec.top.clone(), dir: tmp, first_errors: first_errors(&log) });
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(|e| SimError::io(&dir, e))?;
    Ok(Built { lib, cached: false, build_seconds: t0.elapsed().as_secs_f64() })
}

fn lib_name(top: &str) -> String {
    format!("libtrit_{top}.so")
}

/// The first error lines of a Verilator or compiler log (all of it when none is marked).
fn first_errors(log: &str) -> String {
    let marked: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("%Error") || l.contains("error:") || l.contains("%Warning"))
        .take(20)
        .collect();
    if marked.is_empty() {
        log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    } else {
        marked.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_errors_prefers_marked_lines() {
        let log = "ok\n%Error: foo.sv:3: bad\nmore\nx.cpp:1: error: y\n";
        assert_eq!(first_errors(log), "%Error: foo.sv:3: bad\nx.cpp:1: error: y");
        assert_eq!(first_errors("a\nb"), "a\nb");
    }

    #[test]
    fn hash_separates_fields() {
        let (mut a, mut b) = (1u64, 1u64);
        fnv1a(&mut a, b"ab");
        fnv1a(&mut a, b"c");
        fnv1a(&mut b, b"a");
        fnv1a(&mut b, b"bc");
        assert_ne!(a, b);
    }
}
