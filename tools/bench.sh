#!/usr/bin/env bash
# One command for docs/BENCHMARKS.md: medground natively and PyTorch + transformers + PEFT on the
# same model, batch and query, at three sizes (the tiny model at 49 image tokens, at 196, and
# SmolVLM-256M's shapes at one tile with random weights), then the npm package in headless
# chromium (WebGPU and CPU). Needs the reference venv (see tools/reference/bench_torch.py; made
# here if missing, from PyPI) and the web build (tools/build-web.sh). Not part of CI: timings vary
# with the machine.
#   DEVICE=vulkan    medground on the GPU through Vulkan (FEATURES=vulkan), PyTorch on
#                    TORCH_DEVICE=cuda; DEVICE=cuda both on CUDA (FEATURES=cuda)
#   SIZES="tiny49"   a subset of tiny49 tiny196 smolvlm-256m
#   PYTHON=python3   a Python with torch, transformers and peft (default: the .venv made here)
#   SKIP_BROWSER=1   no browser rows;  REPORT=0  print the table, leave docs/BENCHMARKS.md alone
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
threads=${THREADS:-$(nproc)}
device=${DEVICE:-cpu}
torch_device=${TORCH_DEVICE:-$device}
sizes=${SIZES:-tiny49 tiny196 smolvlm-256m}
out=${BENCH_OUT:-target/bench}
features=()
[ -n "${FEATURES:-}" ] && features=(--features "$FEATURES")
mkdir -p "$out"
# NO_BUILD=1 uses the binary already in target/release (built elsewhere with the same features).
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --locked "${features[@]}"
mg=./target/release/medground
# PYTHON=python3 uses a Python that already has torch, transformers and peft (a GPU machine's).
py=${PYTHON:-.venv/bin/python}
if [ -z "${PYTHON:-}" ] && [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv && .venv/bin/pip install -q torch transformers peft safetensors
fi
for size in $sizes; do
  dir=$out/$size
  mkdir -p "$dir"
  # Per size: the base the training step adapts, the model the query runs on, batch, steps.
  case $size in
    tiny49) base=assets/base model=assets/demo batch=16 steps=10 queries=30 ;;
    tiny196)
      [ -f "$dir/base/manifest.json" ] || $mg init --from assets/base --scale-factor 1 --dtype f32 --out "$dir/base"
      [ -f "$dir/demo/manifest.json" ] || $mg init --from assets/demo --scale-factor 1 --dtype f32 --out "$dir/demo"
      base=$dir/base model=$dir/demo batch=16 steps=10 queries=30 ;;
    smolvlm-256m)
      [ -f "$dir/model/manifest.json" ] || $mg init --preset smolvlm-256m --dtype f32 --out "$dir/model"
      base=$dir/model model=$dir/model batch=${SMOL_BATCH:-4} steps=${SMOL_STEPS:-3} queries=5 ;;
    *) echo "unknown size $size (tiny49, tiny196, smolvlm-256m)" >&2; exit 2 ;;
  esac
  echo "== $size on $device: medground"
  RAYON_NUM_THREADS=$threads $mg bench --device "$device" --base "$base" --model "$model" \
    --batch "$batch" --steps "$steps" --queries "$queries" --save-inputs "$dir" --json "$dir/native.json"
  echo "== $size on $torch_device: PyTorch + PEFT"
  "$py" tools/reference/bench_torch.py --device "$torch_device" --threads "$threads" \
    --base "$base" --model "$model" --steps "$steps" --queries "$queries" \
    --inputs "$dir" --json "$dir/torch.json"
done
if [ "${SKIP_BROWSER:-0}" != 1 ]; then
  [ -f pkg/wasm/medground_bg.wasm ] || { bash tools/web-tools.sh && bash tools/build-web.sh; }
  (cd tests/browser && npm ci --no-audit --no-fund >/dev/null)
  node tools/bench/browser.mjs "$out/browser.json" 10
fi
SIZES="$sizes" "$py" tools/bench/report.py "$out"
