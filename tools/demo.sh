#!/usr/bin/env bash
# The demo, as README's first command runs it: grounds a phrase in the shipped chest film and
# writes the overlay. (The browser page arrives with the web issue.)
set -euo pipefail
cd "$(dirname "$0")/.."
phrase=${1:-"small left pleural effusion"}
model=assets/demo
if [ ! -f "$model/manifest.json" ]; then
  model=target/demo-random
  echo "no trained demo bundle yet: using the tiny preset with random weights ($model)" >&2
  cargo run --release --quiet -- init --out "$model"
fi
cargo run --release --quiet -- ground --image tests/fixtures/chest_rg1.dcm --phrase "$phrase" \
  --model "$model" --overlay target/demo-overlay.png
echo "overlay written to target/demo-overlay.png" >&2
