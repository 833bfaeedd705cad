#!/usr/bin/env bash
# One command for docs/BENCHMARKS.md: medground natively (CPU), PyTorch + transformers + PEFT on
# the same model, batch and query, and the npm package in headless chromium (WebGPU and CPU).
# Needs the reference venv (see tools/reference/bench_torch.py; made here if missing, from PyPI)
# and the web build (tools/build-web.sh). Not part of CI: timings vary with the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
threads=${THREADS:-$(nproc)}
mkdir -p target/bench
cargo build --release --locked
RAYON_NUM_THREADS=$threads ./target/release/medground bench --save-inputs target/bench --json target/bench/native.json
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv && .venv/bin/pip install -q torch transformers peft safetensors
fi
.venv/bin/python tools/reference/bench_torch.py --threads "$threads" --inputs target/bench --json target/bench/torch.json
if [ "${SKIP_BROWSER:-0}" != 1 ]; then
  [ -f pkg/wasm/medground_bg.wasm ] || { bash tools/web-tools.sh && bash tools/build-web.sh; }
  (cd tests/browser && npm ci --no-audit --no-fund >/dev/null)
  node tools/bench/browser.mjs target/bench/browser.json 10
fi
.venv/bin/python tools/bench/report.py target/bench
