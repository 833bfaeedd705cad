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

step "Mesa's lavapipe (a Vulkan driver on the CPU) for the wgpu tests, from Debian"
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq mesa-vulkan-drivers) >/dev/null
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-$(id -u)}
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

step "pydicom references for the DICOM conformance tests (PyPI: pydicom-data, pydicom and its codecs)"
if [ ! -x target/ref-venv/bin/python ]; then
  python3 -m venv target/ref-venv
fi
target/ref-venv/bin/pip install -q --disable-pip-version-check pydicom pydicom-data pylibjpeg \
  pylibjpeg-libjpeg pylibjpeg-openjpeg pylibjpeg-rle numpy
target/ref-venv/bin/python -W ignore tools/reference/dicom_reference.py target/dicom-ref
export MEDGROUND_DICOM_REF="$PWD/target/dicom-ref"

step "native tests (release; CPU, and wgpu on Vulkan through lavapipe: one build)"
cargo test --release --locked --features wgpu
cargo test --release --locked --features wgpu --test dicom_conformance -- --ignored --nocapture

step "the crate as a library: examples/ground.rs on the sample film"
cargo run --release --locked --features wgpu --example ground -- tests/fixtures/chest_rg1.dcm \
  "the heart" "right lung" | tee target/example.txt
grep -q '^the heart: \[' target/example.txt && grep -q '^right lung: \[' target/example.txt

step "web tools (wasm-bindgen-cli, trunk from crates.io; binaryen, chromium from Debian)"
bash tools/web-tools.sh
if ! command -v chromium >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null
fi

step "wasm32 build: the page (trunk) and the npm package"
bash tools/build-web.sh
# Size guards, kept from growing: the CPU-only build was 5.3 MB and the WebGPU one 13.6 MB before
# the in-browser fine-tune (autodiff and AdamW) added 0.8 MB to each (6.1 and 14.8 MB), adapter
# zips (read and write) 0.15 MB more (6.27 and 14.97 MB).
check_size() { size=$(stat -c %s "$1"); echo "$1: $size bytes"; [ "$size" -lt "$2" ] || { echo "$1 grew past $2 bytes"; exit 1; }; }
for d in dist/pkg/wasm pkg/wasm; do
  check_size "$d/medground_cpu_bg.wasm" 6500000
  check_size "$d/medground_bg.wasm" 15500000
done
(cd pkg && npm pack --dry-run --json >/dev/null)

step "npm package in Node (CPU backend) against the native CLI"
phrase="small left pleural effusion"
./target/release/medground ground --image tests/fixtures/chest_rg1.dcm --phrase "$phrase" --model assets/demo \
  | sed "s/}\$/,\"phrase\":\"$phrase\"}/" > target/native.json
# A structure whose confidence reads the agreement of its boxes on shifted views.
part="the left hemidiaphragm"
./target/release/medground ground --image tests/fixtures/chest_rg1.dcm --phrase "$part" --model assets/demo \
  | sed "s/}\$/,\"phrase\":\"$part\"}/" > target/native-structure.json
# An image outside what the model knows (a photo): no confidence, natively and in Node.
outside=tests/fixtures/ood/photos/chelsea.png
./target/release/medground ground --image $outside --phrase "the heart" --model assets/demo \
  | sed "s|}\$|,\"phrase\":\"the heart\",\"image\":\"$outside\"}|" > target/native-outside.json
# Several adapters on one base: the parity fixture with tests/fixtures/adapter beside it, and the
# same adapter merged; the native answers of both, for the Node and chromium tests.
mg=./target/release/medground
rm -rf target/adapter-bundle target/adapter-merged
$mg import-peft --base tests/fixtures/parity --adapter tests/fixtures/adapter --name findings --out target/adapter-bundle
$mg import-peft --base tests/fixtures/parity --adapter tests/fixtures/adapter --out target/adapter-merged
film=tests/fixtures/chest_rg1.dcm
{
  printf '{"phrase":"%s","base":' "$phrase"
  $mg ground --image $film --phrase "$phrase" --model target/adapter-bundle
  printf ',"adapted":'
  $mg ground --image $film --phrase "$phrase" --model target/adapter-bundle --adapter findings
  printf ',"merged":'
  $mg ground --image $film --phrase "$phrase" --model target/adapter-merged
  printf '}\n'
} > target/adapters.json
node -e 'const a = require("./target/adapters.json"); if (a.adapted.text !== a.merged.text || Math.abs(a.adapted.probability - a.merged.probability) > 1e-6) { console.error("ground --adapter differs from the merged model", a); process.exit(1); }'
# The tiled path: a bundle of the structure fixture (SmolVLM-256M's structure, its processor).
rm -rf target/structure-bundle
$mg init --from tests/fixtures/structure --dtype f32 --out target/structure-bundle
$mg ground --image tests/fixtures/structure/tall.png --phrase "$phrase" --model target/structure-bundle \
  | sed "s/}\$/,\"phrase\":\"$phrase\"}/" > target/structure.json
# The fine-tune parity check: six films, the native trainer's losses on them.
rm -rf target/tune-films target/tune-run
$mg data synth --n 6 --out target/tune-films --split val --seed 3 --upright >/dev/null
$mg train --config tests/fixtures/tune.toml --eval target/tune-films/val.jsonl >/dev/null 2>&1
losses() { awk -F, 'NR > 1 { printf "%s%s", (NR > 2 ? "," : "["), $2 } END { print "]" }' "$1"; }
losses target/tune-run/log.csv > target/tune-native.json
# The same run on wgpu (lavapipe): what chromium's WebGPU is held to (a GPU backend's rounding).
rm -rf target/tune-run-wgpu
$mg train --config tests/fixtures/tune.toml --device wgpu --out target/tune-run-wgpu \
  --eval target/tune-films/val.jsonl >/dev/null 2>&1
losses target/tune-run-wgpu/log.csv > target/tune-native-wgpu.json
# node --test counts a skipped test as passed: in CI every test must run (`no_skips`).
no_skips() { grep -qE '^# skipped 0$' "$1" || { echo "$1: a test was skipped"; grep -E '# SKIP|^# skipped' "$1"; exit 1; }; }
MEDGROUND_BUNDLE=assets/demo MEDGROUND_NATIVE=target/native.json MEDGROUND_NATIVE_STRUCTURE=target/native-structure.json \
  MEDGROUND_NATIVE_OUTSIDE=target/native-outside.json \
  MEDGROUND_TUNE_FILMS=target/tune-films MEDGROUND_TUNE_NATIVE=target/tune-native.json \
  MEDGROUND_ADAPTERS=target/adapter-bundle MEDGROUND_ADAPTERS_NATIVE=target/adapters.json \
  MEDGROUND_STRUCTURE=target/structure-bundle MEDGROUND_STRUCTURE_NATIVE=target/structure.json \
  node --test tests/node/ 2>&1 | tee target/node-tests.log
no_skips target/node-tests.log

step "the npm package in a bundler: pkg/examples/vite built by Vite"
(cd pkg/examples/vite && npm ci --no-audit --no-fund >/dev/null && rm -rf public/model \
  && mkdir -p public && cp -r ../../../assets/demo public/model && npx vite build --logLevel warn)

step "the page and the Vite example in headless chromium (WebGPU through SwiftShader, CPU fallback)"
(cd tests/browser && npm ci --no-audit --no-fund >/dev/null)
DIST=dist VITE_DIST=pkg/examples/vite/dist NATIVE=target/native.json SHOTS=target/browser MEDGROUND_CLI=$mg \
  TUNE_FILMS=target/tune-films TUNE_NATIVE=target/tune-native.json TUNE_NATIVE_WGPU=target/tune-native-wgpu.json \
  ADAPTERS=target/adapter-bundle ADAPTERS_NATIVE=target/adapters.json \
  STRUCTURE=target/structure-bundle STRUCTURE_NATIVE=target/structure.json node --test tests/browser/ \
  2>&1 | tee target/browser-tests.log
no_skips target/browser-tests.log
