#!/usr/bin/env bash
# Runs the whole test suite: `cargo test --workspace --release` from the repo root.
# Extra arguments are appended to cargo test (e.g. `scripts/test.sh -p trit-sim -- tools`).
# Release mode keeps the reference model fast inside the tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

locked=()
if [ -f Cargo.lock ]; then
    locked=(--locked)
fi

exec cargo test --workspace --release "${locked[@]}" "$@"
