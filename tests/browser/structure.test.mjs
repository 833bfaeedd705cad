// The tiled path in headless chromium: the npm package loads a bundle of the structure fixture
// (SmolVLM-256M's structure and processor: the tall image cut into tiles plus the global view)
// on WebGPU (SwiftShader) and on the CPU build, answers as the native CLI, streams the download
// with progress into the Cache API, and loads again from the cache. Needs: STRUCTURE (a bundle
// folder under the repository), STRUCTURE_NATIVE, CHROMIUM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { launch } from './launch.mjs';
import { serve } from '../../tools/serve.mjs';

const BUNDLE = process.env.STRUCTURE;
const native = BUNDLE && JSON.parse(await readFile(process.env.STRUCTURE_NATIVE, 'utf8'));

for (const backend of ['webgpu', 'cpu']) {
  test(`tiled bundle in chromium (${backend})`, { skip: !BUNDLE && 'STRUCTURE not set', timeout: 600_000 }, async () => {
    const { server, origin } = await serve('.', { '/blank.html': '<!doctype html><meta charset="utf-8"><title>tiles</title>' });
    const browser = await launch(backend === 'webgpu');
    try {
      const page = await browser.newPage();
      await page.goto(`${origin}/blank.html`);
      const got = await page.evaluate(async ({ bundle, phrase, backend }) => {
        const { Grounder } = await import('/pkg/index.js');
        const image = new Uint8Array(await (await fetch('/tests/fixtures/structure/tall.png')).arrayBuffer());
        const progress = [];
        const options = { backend, noWarmup: true, cache: 'medground-test', onProgress: (n, t) => progress.push([n, t]) };
        const first = await Grounder.load(`/${bundle}/`, options);
        const out = { backend: first.backend, answer: await first.ground(image, phrase), progress: progress.at(-1), chunks: progress.length };
        out.cached = (await (await caches.open('medground-test')).keys()).length;
        const again = await Grounder.load(`/${bundle}/`, { ...options, onProgress: undefined });
        out.again = await again.ground(image, phrase);
        return out;
      }, { bundle: BUNDLE, phrase: native.phrase, backend });
      assert.equal(got.backend, backend);
      assert.equal(got.answer.text, native.text);
      assert.deepEqual(got.answer.boxNorm, native.boxNorm);
      assert.ok(Math.abs(got.answer.probability - native.probability) < 1e-3, `${got.answer.probability} vs ${native.probability}`);
      assert.equal(got.progress[0], got.progress[1], 'progress reaches the total');
      assert.ok(got.chunks >= 4);
      const manifest = JSON.parse(await readFile(`${BUNDLE}/manifest.json`, 'utf8'));
      assert.equal(got.cached, Object.keys(manifest.files).length + 1, 'every file and the manifest cached');
      assert.equal(got.again.text, native.text);
    } finally {
      await browser.close();
      server.close();
    }
  });
}
