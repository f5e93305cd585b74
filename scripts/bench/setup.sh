#!/usr/bin/env bash
# Creates the Python environment `tokenprune bench` uses for its reference rows (NumPy's SGEMM,
# the upstream loops in torch): .cache/bench-venv with CPU torch and NumPy from PyPI (about 4 GB,
# ~10 minutes the first time; skipped when already there). Not part of the test command.
#
#   bash scripts/bench/setup.sh && cargo run --release -- bench
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.cache/bench-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c 'import numpy, torch' 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check torch==2.15.0 numpy==2.4.6
fi
"$venv/bin/python" -c 'import numpy, torch; print("bench venv: torch", torch.__version__, "numpy", numpy.__version__)'
