#!/bin/bash
# The 256 M model (SmolVLM-256M's shapes, random weights, its processor) through every command on
# this machine, each with its wall time and peak memory (issue 23; figures in docs/real_bases.md):
#   bash tools/real_size.sh            # about 15 minutes on 2 idle cores, 4.5 GB of memory
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg}
mkdir -p "$XDG_RUNTIME_DIR" runs
cargo build --release --locked --features wgpu 2>&1 | tail -1
M=./target/release/medground
timed() { /usr/bin/time -f "  -> %e s, peak %M KB" "$@"; }
rm -rf runs/smol256 runs/smol256-paper runs/smol256-web
echo "== init"; timed $M init --preset smolvlm-256m --dtype f32 --out runs/smol256
echo "== ground, base, all tiles"
timed $M ground --model runs/smol256 --image tests/fixtures/chest_rg1.dcm --phrase "the heart"
echo "== train (paper preset, batch 2 repeated; the loss must fall)"
timed $M train --config configs/smolvlm-256m-check.toml --eval synth:2:test 2>&1 \
    | grep -E "trainable|done:|->"
cat runs/smol256-paper/log.csv
echo "== export int8"; timed $M export --run runs/smol256-paper --out runs/smol256-web --dtype int8
du -h runs/smol256-web/bundle/model.safetensors
echo "== eval"; timed $M eval synth:2:test --model runs/smol256-web/bundle
echo "== ground, fine-tuned (global view)"
timed $M ground --model runs/smol256-web/bundle --image tests/fixtures/chest_rg1.dcm --phrase "the heart"
