#!/usr/bin/env bash
# Builds the page into dist/ (trunk) and the npm package's wasm into pkg/wasm/, from one size-
# optimised wasm32 build, then shrinks both with wasm-opt.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
trunk --config trunk.toml build --release --cargo-profile wasm-release
wasm=target/wasm32-unknown-unknown/wasm-release/medground.wasm
wasm-bindgen --target web --out-dir pkg/wasm "$wasm"
for f in dist/medground_bg.wasm pkg/wasm/medground_bg.wasm; do
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals "$f" -o "$f.opt" && mv "$f.opt" "$f"
done
ls -l dist/medground_bg.wasm pkg/wasm/medground_bg.wasm
