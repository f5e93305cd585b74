#!/usr/bin/env bash
# Re-creates the tiny random-weight VLMs under web/test/models (committed; the test command does
# not run this). Needs PyPI only: a venv in .cache/mllm-venv with scripts/mllm/requirements.txt
# (torch included, about 4 GB, 10 minutes the first time).
#
#   bash scripts/mllm/setup.sh                      rewrite web/test/models/{llava,qwen2vl}
#   bash scripts/mllm/setup.sh --preset bench-qwen2vl --out .cache/mllm/bench
#                                                   a Qwen2-VL-2B-shaped model for the benchmark
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.cache/mllm-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c 'import torch, transformers, onnx, onnxruntime, onnxscript, tokenizers' 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/mllm/requirements.txt
fi
if [ $# -eq 0 ]; then
  set -- --out web/test/models
fi
exec "$venv/bin/python" scripts/mllm/make_tiny_models.py "$@"
