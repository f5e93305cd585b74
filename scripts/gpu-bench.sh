#!/usr/bin/env bash
# The GPU check in one go, for a machine with a real GPU: the GPU tests on its adapter, then
# `tokenprune bench` (GPU time per call, warm), in a few minutes.
#
# Two steps, because a GPU machine may have no Rust toolchain and no network:
#
#   bash scripts/gpu-bench.sh prepare   # here: release builds of the CLI and the GPU test
#                                       # binaries, stripped, into .gpu-bench/ (git-ignored),
#                                       # plus the Vulkan loader .debs (amd64)
#   bash scripts/gpu-bench.sh run       # there, from the repo root with .gpu-bench/ copied
#                                       # along: installs the loader if missing, runs the
#                                       # tests on the GPU, then the benchmark; writes
#                                       # .gpu-bench/out/ (or $OUT when set)
#
# Environment (run): TOKENPRUNE_ADAPTER (default: the first discrete GPU; e.g. nvidia, h100),
# BENCH_REPEATS (default 20), GPU_BENCH_TESTS=0 skips the tests.
# Both steps also work on a machine with only lavapipe (TOKENPRUNE_ADAPTER=llvmpipe), which is
# how this script is exercised where no GPU exists; its figures are then not GPU figures.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.gpu-bench
tests=(gpu gpu_methods conformance_methods faults)

prepare() {
  mkdir -p "$dir/bin" "$dir/debs"
  cargo build --release --bin tokenprune
  cp target/release/tokenprune "$dir/bin/"
  local t
  for t in "${tests[@]}"; do
    [ -f "tests/$t.rs" ] || continue
    # The test binary's path is the last "executable" cargo reports for it.
    local exe
    exe=$(cargo test --release --no-run --test "$t" --message-format=json 2>/dev/null |
      sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
    cp "$exe" "$dir/bin/test-$t"
  done
  strip "$dir"/bin/* 2>/dev/null || true
  # The test binaries find tests/data through the repo path compiled into them.
  pwd >"$dir/manifest-dir"
  if command -v apt-get >/dev/null; then
    local o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/gpu-bench-apt"
    mkdir -p /tmp/gpu-bench-apt/partial
    # shellcheck disable=SC2086
    apt-get $o update -qq >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    (cd "$dir/debs" && apt-get $o download libvulkan1 >/dev/null 2>&1) ||
      echo "note: could not download libvulkan1; the GPU machine must have a Vulkan loader"
  fi
  du -sh "$dir"
  echo "prepared $dir: $(ls "$dir/bin" | tr '\n' ' ')"
}

run() {
  local out="${OUT:-$dir/out}"
  mkdir -p "$out"
  export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
  if ! ldconfig -p 2>/dev/null | grep -q libvulkan; then
    local f
    for f in "$dir"/debs/*.deb; do [ -f "$f" ] && dpkg -x "$f" /; done
    ldconfig 2>/dev/null || true
  fi
  # NVIDIA's ICD where the loader finds none by itself (containers with the driver mounted).
  if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] &&
    ! ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  fi
  local bin="$dir/bin"
  # The test binaries read tests/data at the path they were built in: point it here.
  local m
  m=$(cat "$dir/manifest-dir" 2>/dev/null || true)
  if [ -n "$m" ] && [ ! -d "$m/tests/data" ]; then
    mkdir -p "$(dirname "$m")" && ln -sfn "$PWD" "$m"
  fi
  {
    echo "# gpu-bench $(date -u +%FT%TZ) on $(uname -m), $(nproc) CPU cores"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    "$bin/tokenprune" info
  } 2>&1 | tee "$out/info.txt"
  if [ "${GPU_BENCH_TESTS:-1}" != 0 ]; then
    local t
    for t in "${tests[@]}"; do
      [ -x "$bin/test-$t" ] || continue
      echo "=== tests/$t.rs on the GPU" | tee -a "$out/tests.txt"
      TOKENPRUNE_REQUIRE_GPU=1 "$bin/test-$t" --test-threads 1 2>&1 | tail -n 5 | tee -a "$out/tests.txt"
    done
  fi
  echo "=== tokenprune bench" | tee "$out/bench.txt"
  "$bin/tokenprune" bench --repeats "${BENCH_REPEATS:-20}" 2>&1 | tee -a "$out/bench.txt"
  echo "wrote $out"
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *)
    echo "usage: bash scripts/gpu-bench.sh prepare|run" >&2
    exit 2
    ;;
esac
