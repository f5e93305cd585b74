#!/usr/bin/env bash
# Bounded fuzzing smoke: builds the cargo-fuzz targets in fuzz/ and runs each for a fixed time;
# fails when any target crashes, panics, hangs or runs out of memory. fuzz/README.md has the
# targets, the long-run figures and how to reproduce a crash.
#
#   bash scripts/fuzz-smoke.sh                 # every target, 45 s each
#   bash scripts/fuzz-smoke.sh api npy         # some targets
#
# Environment:
#   TOKENPRUNE_FUZZ_SECONDS    seconds per target (default 45)
#   TOKENPRUNE_FUZZ_SANITIZER  none (default: runs on stable Rust) or address (AddressSanitizer:
#                              a nightly-only rustc flag, enabled on stable with
#                              RUSTC_BOOTSTRAP=1; builds into fuzz/target-asan)
#
# Installs cargo-fuzz (the version pinned below) when it is missing or another version.
# The working corpus is fuzz/corpus/<target> (git-ignored, grows across runs); the committed
# seeds in fuzz/seeds/<target> are read, never written. Crashes land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
seconds="${TOKENPRUNE_FUZZ_SECONDS:-45}"
sanitizer="${TOKENPRUNE_FUZZ_SANITIZER:-none}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(npy safetensors api)

if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet --force
fi

# cargo-fuzz itself runs on stable with `-s none`: the coverage instrumentation it asks rustc
# for (-Cpasses=sancov-module, -Cllvm-args=-sanitizer-coverage-*) is stable. Only sanitizers
# (-Zsanitizer=...) need a nightly rustc; RUSTC_BOOTSTRAP=1 unlocks them on stable.
flags=(-s "$sanitizer")
if [ "$sanitizer" != none ]; then
  export RUSTC_BOOTSTRAP=1
  flags+=(--target-dir fuzz/target-asan)
fi

# Built once for every target (release with debug assertions and overflow checks).
cargo fuzz build "${flags[@]}"

failed=()
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log="fuzz/artifacts/$t.log"
  echo "fuzz $t: ${seconds}s"
  # -timeout: one input running over 10 s is a hang; -rss_limit_mb: memory blow-ups fail too.
  if cargo fuzz run "${flags[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
    echo "fuzz $t: ok, ${runs:-?} executions, ${cov:-coverage not shown}"
  else
    failed+=("$t")
    echo "fuzz $t: FAILED (full log: $log)"
    grep -v -e '^#[0-9]' -e 'Uses: ' "$log" | tail -60
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz smoke failed: ${failed[*]}; reproduce with: cargo fuzz run -s $sanitizer <target> fuzz/artifacts/<target>/<crash file>"
  exit 1
fi
echo "fuzz smoke: all targets passed"
