#!/usr/bin/env bash
# Builds the page into dist/ (trunk) and the npm package's wasm into pkg/wasm/ from one
# size-optimised wasm32 build. wasm-opt runs on cargo's output, before wasm-bindgen: Debian's
# binaryen 108 breaks the externref table of wasm-bindgen's output when run after it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
trunk --config trunk.toml build --release --cargo-profile wasm-release
raw=target/wasm32-unknown-unknown/wasm-release/medground.wasm
opt=target/wasm32-unknown-unknown/wasm-release/medground.opt.wasm
wasm-opt -Oz --strip-debug --strip-producers --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue "$raw" -o "$opt"
wasm-bindgen --target no-modules --no-typescript --out-name medground --out-dir dist "$opt"
wasm-bindgen --target web --out-name medground --out-dir pkg/wasm "$opt"
ls -l dist/medground_bg.wasm pkg/wasm/medground_bg.wasm
