#!/usr/bin/env bash
# Installs what the page and the npm package need, from the package registries only:
# wasm-bindgen-cli and trunk from crates.io, wasm-opt (binaryen) from Debian.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen 0.2.130" ]; then
  cargo install wasm-bindgen-cli --version 0.2.130
fi
if [[ "$(trunk --version 2>/dev/null)" != *"0.21.14"* ]]; then
  cargo install trunk --version 0.21.14 --locked
fi
if ! command -v wasm-opt >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq binaryen) >/dev/null
fi
