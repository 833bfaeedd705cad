#!/usr/bin/env bash
# Trunk's post_build hook (trunk.toml): right after trunk built the WebGPU wasm, keep a copy of
# it and build the CPU-only wasm (`--features web-cpu`, a third of the size), optimised.
# tools/build-web.sh takes both from target/ afterwards and binds them for the npm package,
# whose loader the page uses.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
out=target/wasm32-unknown-unknown/wasm-release
cp "$out/medground.wasm" "$out/medground-gpu.wasm"
cargo build --locked --target wasm32-unknown-unknown --profile wasm-release --no-default-features --features web-cpu
cp "$out/medground.wasm" "$out/medground-cpu.wasm"
bash tools/wasm-opt.sh "$out/medground-cpu.wasm" "$out/medground-cpu.wasm.opt"
