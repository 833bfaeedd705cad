// Browser side of docs/BENCHMARKS.md: the npm package in headless Debian chromium, once on WebGPU
// (SwiftShader on a machine without a GPU) and once on the wasm CPU fallback. Per backend: model
// load (fetching the bundle from loopback, checking it, building the model), the first query
// (shader compilation included: no warm-up) and the median of the next queries.
// Needs pkg/wasm (tools/build-web.sh) and tests/browser/node_modules (npm ci there).
// Usage: node tools/bench/browser.mjs OUT.json [queries]
//   BUNDLE=dir (under the repository; default assets/demo) BACKENDS=cpu (default webgpu,cpu), e.g.
//   the 256 M int8 bundle of tools/real_size.sh: BUNDLE=runs/smol256-web/bundle BACKENDS=cpu
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { serve } from '../serve.mjs';
import { launch } from '../../tests/browser/launch.mjs';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const OUT = process.argv[2] || 'target/bench/browser.json';
const QUERIES = Number(process.argv[3] || 10);
const BUNDLE = process.env.BUNDLE || 'assets/demo';
const BACKENDS = (process.env.BACKENDS || 'webgpu,cpu').split(',');

const PAGE = `<!doctype html><meta charset="utf-8"><title>medground bench</title>
<script type="module">
import { Grounder } from '/pkg/index.js';
const q = new URLSearchParams(location.search);
const backend = q.get('backend'), n = Number(q.get('n')), bundle = q.get('bundle'), phrase = 'small left pleural effusion';
try {
  const film = new Uint8Array(await (await fetch('/tests/fixtures/chest_rg1.dcm')).arrayBuffer());
  let t = performance.now();
  const g = await Grounder.load('/' + bundle + '/', { backend, noWarmup: true });
  const loadMs = performance.now() - t;
  t = performance.now();
  const first = await g.ground(film, phrase);
  const firstMs = performance.now() - t;
  // Two films in turn (the sample as DICOM and as PNG), so that every timed query reads its
  // film anew; then the same film again, which the package keeps encoded.
  const films = [film, new Uint8Array(await (await fetch('/tests/fixtures/chest_rg1_expected.png')).arrayBuffer())];
  const times = [];
  for (let i = 0; i < n; i++) {
    t = performance.now();
    await g.ground(films[(i + 1) % 2], phrase);
    times.push(performance.now() - t);
  }
  const again = [];
  for (let i = 0; i < n; i++) {
    t = performance.now();
    await g.ground(films[n % 2], phrase);
    again.push(performance.now() - t);
  }
  const median = (v) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
  window.result = { backend: g.backend, loadMs, firstMs, medianMs: median(times), sameFilmMs: median(again), queries: n, text: first.text };
} catch (e) {
  window.result = { error: String(e) };
}
</script>`;

const { server, origin } = await serve(ROOT, { '/': PAGE, '/bench.html': PAGE });

const results = {};
try {
  for (const backend of BACKENDS) {
    const browser = await launch(backend === 'webgpu');
    try {
      const page = await browser.newPage();
      // SwiftShader runs WebGPU on the CPU, about 30x slower than flex: fewer queries there.
      const n = backend === 'webgpu' ? Math.min(QUERIES, 3) : QUERIES;
      await page.goto(`${origin}/bench.html?backend=${backend}&n=${n}&bundle=${encodeURIComponent(BUNDLE)}`);
      await page.waitForFunction(() => window.result, null, { timeout: 1_200_000 });
      results[backend] = await page.evaluate(() => window.result);
      if (results[backend].error) throw new Error(`${backend}: ${results[backend].error}`);
      results[backend].browser = browser.version();
      console.log(backend, JSON.stringify(results[backend]));
    } finally {
      await browser.close();
    }
  }
} finally {
  server.close();
}
await writeFile(OUT, JSON.stringify(results, null, 2));
