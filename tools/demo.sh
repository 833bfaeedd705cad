#!/usr/bin/env bash
# The demo, as README's first command runs it: builds the page with the shipped demo bundle and
# serves it on http://127.0.0.1:8080. Installs what it needs from the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash tools/web-tools.sh
bash tools/build-web.sh
echo "serving the page on http://127.0.0.1:8080 (Ctrl-C stops)"
exec trunk --config trunk.toml serve --release --cargo-profile wasm-release --address 127.0.0.1 --port 8080
