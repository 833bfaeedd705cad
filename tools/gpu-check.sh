#!/usr/bin/env bash
# The prepared GPU check (speed issue): on a machine with an NVIDIA GPU and PyTorch + PEFT,
# medground's GPU path beside PyTorch + PEFT on the same GPU at the three sizes of
# tools/bench.sh, then a short stage-2 training run on the GPU; prints one table.
# medground runs on Vulkan (wgpu): `--features cuda` cannot build offline (cubecl-llvm's build
# script downloads LLVM), and the lent GPU machine has neither network nor Rust. So build and
# pack here with `bash tools/gpu-pack.sh` (binary and Vulkan loaders into .gpu/), carry .gpu,
# and run there: `for f in .gpu/*.deb; do dpkg -x $f /; done; ldconfig; bash tools/gpu-check.sh`.
#   DEVICE=vulkan (default) | cuda | cpu   medground's device; PyTorch runs on TORCH_DEVICE
#                                          (cuda, or cpu with DEVICE=cpu: the dry run here)
#   PYTHON=.venv/bin/python                a Python with torch, transformers and peft (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
device=${DEVICE:-vulkan}
torch_device=${TORCH_DEVICE:-$([ "$device" = cpu ] && echo cpu || echo cuda)}
out=${OUT:-target}/gpu-check
mkdir -p "$out"
log() { printf '\n== %s\n' "$*"; }
# The packed binary (tools/gpu-pack.sh) where there is one.
if [ -f .gpu/medground.gz ]; then
  mkdir -p target/release && gunzip -c .gpu/medground.gz > target/release/medground
  chmod +x target/release/medground
  NO_BUILD=1
fi
# The NVIDIA Vulkan ICD where the loader does not find it by itself.
nv=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$nv" ] && export VK_DRIVER_FILES=${VK_DRIVER_FILES:-$nv}

log "machine"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"
py=${PYTHON:-python3}
"$py" -c 'import torch, transformers, peft; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "transformers", transformers.__version__, "peft", peft.__version__)'

# FEATURES= overrides the cargo features (default: cuda, none on the CPU); NO_BUILD=1 uses the
# binary in target/release as it is.
features=()
feat=${FEATURES-$([ "$device" = cpu ] || echo "$device")}
[ -n "$feat" ] && features=(--features "$feat")
if [ "${NO_BUILD:-0}" != 1 ] && command -v cargo >/dev/null; then
  log "build ${features[*]:-(cpu)}"
  cargo build --release --locked "${features[@]}"
fi
mg=./target/release/medground
[ -x "$mg" ] || { echo "no $mg: build it with cargo build --release --locked ${features[*]}" >&2; exit 2; }

log "bench: medground on $device, PyTorch + PEFT on $torch_device"
sizes=${SIZES:-tiny49 tiny196 smolvlm-256m}
[ "$device" = cpu ] && sizes=${SIZES:-tiny49}
NO_BUILD=1 DEVICE=$device TORCH_DEVICE=$torch_device PYTHON=$py SIZES="$sizes" SKIP_BROWSER=1 REPORT=0 BENCH_OUT="$out/bench" \
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
