#!/usr/bin/env bash
# Installs what the tests need and runs every test. Safe to re-run; skips what is present.
# Used as-is by CI (.ci/run) and documented as the test command in README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

# The GPU tests need a wgpu adapter. Machines without a GPU get Mesa's lavapipe, a Vulkan
# driver that runs on the CPU (adapter "llvmpipe"): slow, but it runs every kernel.
have_vulkan_icd() {
  command -v vulkaninfo >/dev/null 2>&1 && vulkaninfo --summary >/dev/null 2>&1 && return 0
  ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1
}
if ! have_vulkan_icd; then
  step "installing mesa-vulkan-drivers (lavapipe) for the GPU tests"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers
  else
    echo "cannot install mesa-vulkan-drivers (not root, no sudo): the GPU tests will fail" >&2
  fi
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
# GPU tests fail (instead of skipping) when no adapter is found.
export TOKENPRUNE_REQUIRE_GPU="${TOKENPRUNE_REQUIRE_GPU:-1}"

step "toolchain: $(cargo --version)"
if [ "${TOKENPRUNE_SKIP_LINT:-0}" != 1 ]; then
  step "format and lint"
  rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy
  cargo fmt --all -- --check
  cargo clippy --all-targets -- -D warnings
fi

step "cargo test (unit, conformance, properties, GPU, shaders, bad input, CLI, doc tests)"
cargo test --all-targets
cargo test --doc

step "CPU-only build (--no-default-features): library and its tests"
cargo test --no-default-features --lib --test conformance --test shaders --test bad_input

step "all tests passed"
