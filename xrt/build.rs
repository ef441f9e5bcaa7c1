//! Build script of the XRT binding:
//! 1. finds XRT's headers and `libxrt_coreutil` (Debian's libxrt-dev, or an install named by
//!    `XILINX_XRT`), failing with a message that names the package when they are missing;
//! 2. compiles the C++ exception shim (`src/shim.cpp`) with the `cc` crate;
//! 3. runs bindgen over `src/wrapper.h` (the shim's C interface and XRT's xclbin structures);
//! 4. links `xrt_coreutil` (and `uuid`, which XRT's inline UUID helpers call);
//! 5. makes `$OUT_DIR/xilinx_xrt/lib/` with links to the XRT libraries: XRT loads its driver
//!    library (`libxrt_core.so.2`, or `libxrt_noop.so.2` under `XCL_EMULATION_MODE=noop`) from
//!    `$XILINX_XRT/lib` at run time, while Debian installs it in the multiarch directory. The
//!    crate points `XILINX_XRT` there when it is unset (`TRIT_XRT_DEFAULT_ROOT`).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

const HINT: &str = "install Debian's libxrt-dev and libxrt1 (scripts/setup.sh installs them), \
                    or set XILINX_XRT to an XRT installation";

fn fail(msg: &str) -> ! {
    eprintln!("error: trit-xrt: {msg}");
    std::process::exit(1);
}

/// XRT's include directory: the one holding `xrt/xrt_device.h` and `xclbin.h`.
fn find_include(xilinx_xrt: Option<&Path>) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(root) = xilinx_xrt {
        candidates.push(root.join("include"));
    }
    candidates.push("/usr/include/xrt".into());
    candidates.push("/usr/local/include/xrt".into());
    candidates.into_iter().find(|d| d.join("xrt/xrt_device.h").is_file() && d.join("xclbin.h").is_file())
}

/// The directory holding `libxrt_coreutil.so`.
fn find_lib(xilinx_xrt: Option<&Path>) -> Option<PathBuf> {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(root) = xilinx_xrt {
        candidates.push(root.join("lib"));
    }
    candidates.push(format!("/usr/lib/{arch}-linux-gnu").into());
    candidates.push("/usr/lib64".into());
    candidates.push("/usr/lib".into());
    candidates.push("/usr/local/lib".into());
    candidates.into_iter().find(|d| d.join("libxrt_coreutil.so").exists())
}

/// `$out/xilinx_xrt/lib/` with a link to every `libxrt_*` library of `lib`.
fn make_runtime_root(out: &Path, lib: &Path) -> PathBuf {
    let root = out.join("xilinx_xrt");
    let dir = root.join("lib");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&dir).unwrap_or_else(|e| fail(&format!("creating {}: {e}", dir.display())));
    let entries = fs::read_dir(lib).unwrap_or_else(|e| fail(&format!("reading {}: {e}", lib.display())));
    for entry in entries.flatten() {
        let name = entry.file_name();
        let s = name.to_string_lossy();
        if s.starts_with("libxrt_") && s.contains(".so") {
            std::os::unix::fs::symlink(entry.path(), dir.join(&name))
                .unwrap_or_else(|e| fail(&format!("linking {} into {}: {e}", s, dir.display())));
        }
    }
    root
}

fn main() {
    println!("cargo:rerun-if-changed=src/shim.h");
    println!("cargo:rerun-if-changed=src/shim.cpp");
    println!("cargo:rerun-if-changed=src/wrapper.h");
    println!("cargo:rerun-if-env-changed=XILINX_XRT");

    let xilinx_xrt = env::var_os("XILINX_XRT").filter(|v| !v.is_empty()).map(PathBuf::from);
    let Some(include) = find_include(xilinx_xrt.as_deref()) else {
        fail(&format!(
            "XRT headers not found (looked for xrt/xrt_device.h and xclbin.h under $XILINX_XRT/include, \
             /usr/include/xrt and /usr/local/include/xrt): {HINT}"
        ));
    };
    // XRT's headers include <uuid/uuid.h>, which Debian's libxrt-dev does not pull in.
    if !["/usr/include", "/usr/local/include"].iter().any(|d| Path::new(d).join("uuid/uuid.h").is_file()) {
        fail(
            "<uuid/uuid.h> not found: XRT's headers include it, but Debian's libxrt-dev does not depend on it; \
             install Debian's uuid-dev",
        );
    }
    let Some(lib) = find_lib(xilinx_xrt.as_deref()) else {
        fail(&format!("libxrt_coreutil.so not found (XRT headers are in {}): {HINT}", include.display()));
    };
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("src/shim.cpp")
        .include("src")
        // XRT's headers as system headers: their warnings are not ours to fix.
        .flag("-isystem")
        .flag(include.to_str().expect("XRT include path is UTF-8"))
        .warnings(true)
        .compile("trit_xrt_shim");

    let bindings = bindgen::Builder::default()
        .header("src/wrapper.h")
        .clang_arg(format!("-I{}", include.display()))
        .allowlist_function("trit_xrt_.*")
        .allowlist_var("TRIT_XRT_.*")
        .allowlist_type(
            "axlf|axlf_header|axlf_section_header|axlf_section_kind|mem_topology|mem_data|MEM_TYPE|\
             ip_layout|ip_data|IP_TYPE|connectivity|connection|XCLBIN_MODE|ert_cmd_state",
        )
        .default_enum_style(bindgen::EnumVariation::ModuleConsts)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .unwrap_or_else(|e| {
            fail(&format!(
                "bindgen failed on src/wrapper.h with XRT headers from {}: {e} \
                 (bindgen needs libclang: Debian's libclang-dev and clang, installed by scripts/setup.sh)",
                include.display()
            ))
        });
    bindings
        .write_to_file(out.join("bindings.rs"))
        .unwrap_or_else(|e| fail(&format!("writing {}: {e}", out.join("bindings.rs").display())));

    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-lib=dylib=xrt_coreutil");
    println!("cargo:rustc-link-lib=dylib=uuid");

    let root = make_runtime_root(&out, &lib);
    println!("cargo:rustc-env=TRIT_XRT_DEFAULT_ROOT={}", root.display());
}
