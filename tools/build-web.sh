#!/usr/bin/env bash
# Builds the page into dist/ (trunk) and the npm package's wasm into pkg/wasm/ (copied with the
# package's loader into dist/pkg/, which the page's worker imports), each twice: with
# WebGPU (`web`: medground.js, medground_bg.wasm) and CPU only (`web-cpu`: medground_cpu.js,
# medground_cpu_bg.wasm, a third of the size; made by trunk's post_build hook tools/web-cpu.sh),
# so that browsers without a WebGPU adapter and Node fetch the small one (tools/wasm-opt.sh runs
# on cargo's output, before wasm-bindgen).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
out=target/wasm32-unknown-unknown/wasm-release
trunk --config trunk.toml build --release --cargo-profile wasm-release
bash tools/wasm-opt.sh "$out/medground-gpu.wasm" "$out/medground-gpu.wasm.opt"
wasm-bindgen --target web --out-name medground --out-dir pkg/wasm "$out/medground-gpu.wasm.opt"
wasm-bindgen --target web --out-name medground_cpu --out-dir pkg/wasm "$out/medground-cpu.wasm.opt"
# The page's worker loads the model through the npm package's loader: the package goes into
# dist/pkg/, and trunk's own bindings (unoptimised, unused) leave dist/.
rm -f dist/medground.js dist/medground_bg.wasm dist/medground_cpu.js dist/medground_cpu_bg.wasm
rm -rf dist/pkg && mkdir -p dist/pkg && cp pkg/index.js dist/pkg/ && cp -r pkg/wasm dist/pkg/
ls -l dist/pkg/wasm/*.wasm pkg/wasm/*.wasm
