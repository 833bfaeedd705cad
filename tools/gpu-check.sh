#!/usr/bin/env bash
# The prepared GPU check (speed issue): on a machine with an NVIDIA GPU, CUDA and PyTorch + PEFT,
# medground's CUDA path beside PyTorch + PEFT on the same GPU at the three sizes of
# tools/bench.sh, then a short stage-2 training run on CUDA; prints one table. The GPU machine
# lent to sessions has no Rust toolchain and no network: build there with cargo if it has one,
# else carry a binary built here with `cargo build --release --locked --features cuda`
# (cudarc loads the CUDA libraries at run time, so it builds without them).
#   DEVICE=cpu bash tools/gpu-check.sh    the dry run on the CPU path (same steps, small sizes)
#   PYTHON=.venv/bin/python               a Python with torch, transformers and peft (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
device=${DEVICE:-cuda}
out=${OUT:-target}/gpu-check
mkdir -p "$out"
log() { printf '\n== %s\n' "$*"; }

log "machine"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"
py=${PYTHON:-python3}
"$py" -c 'import torch, transformers, peft; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "transformers", transformers.__version__, "peft", peft.__version__)'

# FEATURES= overrides the cargo features (default: cuda, none on the CPU); NO_BUILD=1 uses the
# binary in target/release as it is.
features=()
feat=${FEATURES-$([ "$device" = cpu ] || echo cuda)}
[ -n "$feat" ] && features=(--features "$feat")
if [ "${NO_BUILD:-0}" != 1 ] && command -v cargo >/dev/null; then
  log "build ${features[*]:-(cpu)}"
  cargo build --release --locked "${features[@]}"
fi
mg=./target/release/medground
[ -x "$mg" ] || { echo "no $mg: build it with cargo build --release --locked ${features[*]}" >&2; exit 2; }

log "bench: medground and PyTorch + PEFT on $device"
sizes=${SIZES:-tiny49 tiny196 smolvlm-256m}
[ "$device" = cpu ] && sizes=${SIZES:-tiny49}
NO_BUILD=1 DEVICE=$device PYTHON=$py SIZES="$sizes" SKIP_BROWSER=1 REPORT=0 BENCH_OUT="$out/bench" \
  SMOL_BATCH=${SMOL_BATCH:-16} SMOL_STEPS=${SMOL_STEPS:-10} bash tools/bench.sh | tee "$out/bench.md"

log "a short stage-2 run on $device"
steps=${TRAIN_STEPS:-60}
rm -rf "$out/stage2"
SECONDS=0
$mg train --device "$device" --steps "$steps" --out "$out/stage2" --eval synth:50:test 2>&1 \
  | grep -v '^\s*$' | tail -n 20 | tee "$out/train.txt"
secs=$SECONDS
first=$(sed -n 2p "$out/stage2/log.csv" | cut -d, -f2)
last=$(tail -n 1 "$out/stage2/log.csv" | cut -d, -f2)
printf '\n| stage-2 run on %s | %s steps of 16 | %s s (with the final eval) | loss %s -> %s |\n' \
  "$device" "$steps" "$secs" "$first" "$last" | tee -a "$out/bench.md"
