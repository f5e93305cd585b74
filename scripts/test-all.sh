#!/usr/bin/env bash
# Installs what the tests need and runs every test. Safe to re-run; skips what is present.
# Used as-is by CI (.ci/run) and documented as the test command in README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

step "toolchain: $(cargo --version)"
if [ "${TOKENPRUNE_SKIP_LINT:-0}" != 1 ]; then
  step "format and lint"
  rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy
  cargo fmt --all -- --check
  cargo clippy --all-targets -- -D warnings
fi

step "cargo test (unit, conformance, properties, bad input, CLI, doc tests)"
cargo test --all-targets
cargo test --doc

step "all tests passed"
