#!/usr/bin/env bash
# Trunk's post_build hook (trunk.toml): right after trunk built the WebGPU wasm, keep a copy of
# it, build the CPU-only wasm (`--features web-cpu`, a third of the size) and put its bindings
# into trunk's staging folder as medground_cpu.js + medground_cpu_bg.wasm, so that every trunk
# build or serve has both. tools/build-web.sh takes both raw builds from target/ afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
out=target/wasm32-unknown-unknown/wasm-release
cp "$out/medground.wasm" "$out/medground-gpu.wasm"
cargo build --locked --target wasm32-unknown-unknown --profile wasm-release --no-default-features --features web-cpu
cp "$out/medground.wasm" "$out/medground-cpu.wasm"
bash tools/wasm-opt.sh "$out/medground-cpu.wasm" "$out/medground-cpu.wasm.opt"
wasm-bindgen --target no-modules --no-typescript --out-name medground_cpu \
  --out-dir "${TRUNK_STAGING_DIR:-dist}" "$out/medground-cpu.wasm.opt"
