#!/usr/bin/env bash
# wasm-opt -Oz on cargo's raw wasm (IN -> OUT), with the features wasm-bindgen's output uses.
# Run before wasm-bindgen: Debian's binaryen 108 breaks the externref table when run after it.
set -euo pipefail
wasm-opt -Oz --strip-debug --strip-producers --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue "$1" -o "$2"
