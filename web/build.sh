#!/usr/bin/env bash
# Builds the npm package's wasm into web/dist:
#   cargo (wasm32) -> wasm-bindgen (the exact version in Cargo.lock) -> wasm-opt (npm binaryen).
# Installs what it needs when missing. Never use Debian's binaryen (wasm-opt 108 silently breaks
# the module): wasm-opt here always comes from web/node_modules.
set -euo pipefail
cd "$(dirname "$0")"

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print }' ../Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have" != "$want" ]; then
  echo "installing wasm-bindgen-cli $want (have: ${have:-none})"
  cargo install wasm-bindgen-cli --version "$want"
fi
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
[ -x node_modules/.bin/wasm-opt ] || npm ci --no-audit --no-fund

features=${TOKENPRUNE_WASM_FEATURES-gpu}
# 128-bit SIMD (every current browser and Node >= 16): the CPU fallback is ~3x faster with it.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=+simd128"
cargo build --release --lib --target wasm32-unknown-unknown --no-default-features ${features:+--features "$features"}
rm -rf dist
# --experimental-reset-state-function: __wbg_reset_state(), with which src/host.js replaces a
# module that trapped by a fresh instance (objects of the dead one then refuse every call).
wasm-bindgen --target web --experimental-reset-state-function --out-dir dist --out-name tokenprune \
  ../target/wasm32-unknown-unknown/release/tokenprune.wasm
raw=$(stat -c %s dist/tokenprune_bg.wasm)
node_modules/.bin/wasm-opt -O3 dist/tokenprune_bg.wasm -o dist/tokenprune_bg.opt.wasm
mv dist/tokenprune_bg.opt.wasm dist/tokenprune_bg.wasm
echo "dist/tokenprune_bg.wasm: $raw bytes from wasm-bindgen, $(stat -c %s dist/tokenprune_bg.wasm) bytes after wasm-opt -O3"
