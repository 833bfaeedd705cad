#!/usr/bin/env bash
# The README's demo command, started, checked and stopped (.ci/run runs it after the tests): the
# page and its model are served, the served WebGPU wasm is the optimised one tools/build-web.sh
# made, one query in headless chromium (WebGPU through SwiftShader, and the CPU fallback) gives
# the native CLI's box (target/native.json, written by tools/test.sh), and after Ctrl-C's signal
# nothing serves any more. Any failing step fails it.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${PORT:-8080}"
origin="http://127.0.0.1:$port"
log=target/demo.log
start=$(date +%s)
# Its own process group, so that Ctrl-C's SIGINT to the group stops the server it execs too.
PORT="$port" setsid bash tools/demo.sh >"$log" 2>&1 </dev/null &
demo=$!
stop() { kill -INT -- "-$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 1 1200); do
  curl -sf "$origin/model/manifest.json" >/dev/null && break
  kill -0 "$demo" 2>/dev/null || { cat "$log"; echo "tools/demo.sh exited before serving"; exit 1; }
  sleep 1
done
# Fetched to a file, not piped into grep -q: grep leaving early made curl fail on a closed pipe
# (exit 23), which pipefail counted as a failure of a page that was served.
page=target/demo-index.html
curl -sf "$origin/" -o "$page" && grep -q '<title>' "$page" || { cat "$log"; echo "the page is not served on $origin/"; exit 1; }
curl -sf "$origin/model/manifest.json" >/dev/null || { cat "$log"; echo "no $origin/model/manifest.json"; exit 1; }
echo "serving after $(( $(date +%s) - start )) s:"
cat "$log"
# The served WebGPU wasm is the optimised build (trunk's own is about 24 MB), byte for byte.
served=$(curl -sf "$origin/pkg/wasm/medground_bg.wasm" | wc -c)
echo "served medground_bg.wasm: $served bytes"
[ "$served" -lt 15500000 ] || { echo "the served wasm is not the optimised one"; exit 1; }
[ "$served" -eq "$(stat -c %s dist/pkg/wasm/medground_bg.wasm)" ] || { echo "the served wasm differs from dist/"; exit 1; }
ORIGIN="$origin" NATIVE=target/native.json SHOTS=target/browser-demo node --test tests/browser/page.test.mjs
stop
trap - EXIT
curl -s "$origin/" >/dev/null && { echo "the demo still serves after it was stopped"; exit 1; }
echo "the demo command: served, answered and stopped"
