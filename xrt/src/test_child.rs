//! Test support: XRT reads `XCL_EMULATION_MODE` once per process, so a test that needs a given
//! mode re-runs itself alone in a child process with the variable set (or removed). Shared by
//! this crate's tests and the host's.

use std::process::Command;

const CHILD: &str = "TRIT_XRT_TEST_CHILD";

/// Runs test `name` of the current test binary alone in a child process with
/// `XCL_EMULATION_MODE` = `mode` (removed if `None`); panics if it fails; returns its output.
pub fn in_child(name: &str, mode: Option<&str>) -> String {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary path"));
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"]).env(CHILD, name).env_remove("XILINX_XRT");
    match mode {
        Some(m) => cmd.env("XCL_EMULATION_MODE", m),
        None => cmd.env_remove("XCL_EMULATION_MODE"),
    };
    let out = cmd.output().expect("run the test binary");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("1 passed"), "child test {name} failed:\n{text}");
    text
}

/// Whether this process is the child started by [`in_child`] for test `name` (the test body
/// runs only there).
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD).as_deref() == Ok(name)
}
