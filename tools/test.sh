#!/usr/bin/env bash
# The whole test suite, as README's second command and CI run it. Installs what it needs from the
# package registries (crates.io, Debian, npm): nothing else is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never PATH="$HOME/.cargo/bin:$PATH"
step() { printf '\n== %s\n' "$*"; }

step "toolchain"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
cargo --version

step "format"
cargo fmt --all -- --check

step "native tests (release, CPU)"
cargo test --release --locked

step "web tools (wasm-bindgen-cli, trunk from crates.io; binaryen, chromium from Debian)"
bash tools/web-tools.sh
if ! command -v chromium >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null
fi

step "wasm32 build: the page (trunk) and the npm package"
bash tools/build-web.sh
# Size guards: the CPU-only build meets the 6 MB goal; the WebGPU build does not yet (see the web
# issue), so it is only kept from growing.
check_size() { size=$(stat -c %s "$1"); echo "$1: $size bytes"; [ "$size" -lt "$2" ] || { echo "$1 grew past $2 bytes"; exit 1; }; }
for d in dist pkg/wasm; do
  check_size "$d/medground_cpu_bg.wasm" 6000000
  check_size "$d/medground_bg.wasm" 14000000
done
(cd pkg && npm pack --dry-run --json >/dev/null)

step "npm package in Node (CPU backend) against the native CLI"
phrase="small left pleural effusion"
./target/release/medground ground --image tests/fixtures/chest_rg1.dcm --phrase "$phrase" --model assets/demo \
  | sed "s/}\$/,\"phrase\":\"$phrase\"}/" > target/native.json
MEDGROUND_BUNDLE=assets/demo MEDGROUND_NATIVE=target/native.json node --test tests/node/

step "the npm package in a bundler: pkg/examples/vite built by Vite"
(cd pkg/examples/vite && npm ci --no-audit --no-fund >/dev/null && rm -rf public/model \
  && mkdir -p public && cp -r ../../../assets/demo public/model && npx vite build --logLevel warn)

step "the page and the Vite example in headless chromium (WebGPU through SwiftShader, CPU fallback)"
(cd tests/browser && npm ci --no-audit --no-fund >/dev/null)
DIST=dist VITE_DIST=pkg/examples/vite/dist NATIVE=target/native.json SHOTS=target/browser \
  node --test tests/browser/
