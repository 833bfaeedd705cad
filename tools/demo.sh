#!/usr/bin/env bash
# The demo, as README's first command runs it: builds the page with the shipped demo bundle once
# (tools/build-web.sh: the optimised wasm files, assets/demo as model/) and serves exactly that
# folder, dist/, on http://127.0.0.1:8080 (PORT=N for another port) until Ctrl-C. Installs what
# it needs from the package registries. DEMO_PREBUILT=1 serves an existing dist/ without
# rebuilding (CI, right after tools/test.sh built it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
port="${PORT:-8080}"
command -v node >/dev/null || { echo "tools/demo.sh needs Node.js (node) on PATH" >&2; exit 2; }
# A taken port is said before the build, not after it.
node tools/serve.mjs --probe "$port"
if [ "${DEMO_PREBUILT:-0}" != 1 ]; then
  bash tools/web-tools.sh
  bash tools/build-web.sh
fi
for f in dist/index.html dist/pkg/index.js dist/pkg/wasm/medground_bg.wasm dist/pkg/wasm/medground_cpu_bg.wasm dist/model/manifest.json; do
  [ -f "$f" ] || { echo "$f is missing: run bash tools/demo.sh without DEMO_PREBUILT=1" >&2; exit 2; }
done
echo "the page: http://127.0.0.1:$port/  (medground_bg.wasm $(stat -c %s dist/pkg/wasm/medground_bg.wasm) bytes; Ctrl-C stops)"
exec node tools/serve.mjs dist "$port"
