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
# A guard against size regressions; the goal (under 6 MB) is not met yet: see the web issue.
for f in dist/medground_bg.wasm pkg/wasm/medground_bg.wasm; do
  size=$(stat -c %s "$f")
  echo "$f: $size bytes"
  [ "$size" -lt 14000000 ] || { echo "$f grew past 14 MB"; exit 1; }
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
