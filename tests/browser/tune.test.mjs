// fineTune in headless chromium: the npm package, loaded as plain ES modules from this
// repository, trains with the native trainer's losses (tests/fixtures/tune.toml's run): the CPU
// build against the native CPU run to 1e-4 at every step; WebGPU (SwiftShader: correctness, not
// GPU speed, about 60 s a step, so two steps) against the same run natively on wgpu (lavapipe)
// to 1e-3. A GPU backend's products round differently from the CPU's and AdamW's first steps,
// which move each weight by about lr whatever its gradient's size, carry that into the loss:
// native wgpu logs 1.50940, 1.22548 where the CPU logs 1.50940, 1.22355 (2e-3 apart), and
// chromium's WebGPU 1.50940, 1.22527. Needs: TUNE_FILMS (data synth's output under the
// repository, e.g. target/tune-films), TUNE_NATIVE and TUNE_NATIVE_WGPU (the native losses),
// CHROMIUM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { launch } from './launch.mjs';
import { serve } from '../../tools/serve.mjs';

const FILMS = process.env.TUNE_FILMS;
const native = FILMS && {
  cpu: JSON.parse(await readFile(process.env.TUNE_NATIVE, 'utf8')),
  webgpu: JSON.parse(await readFile(process.env.TUNE_NATIVE_WGPU, 'utf8')),
};

for (const backend of ['webgpu', 'cpu']) {
  test(`fineTune in chromium (${backend})`, { skip: !FILMS && 'TUNE_FILMS not set', timeout: 900_000 }, async () => {
    const { server, origin } = await serve('.', { '/blank.html': '<!doctype html><meta charset="utf-8"><title>tune</title>' });
    const browser = await launch(backend === 'webgpu');
    try {
      const page = await browser.newPage();
      await page.goto(`${origin}/blank.html`);
      const got = await page.evaluate(async ({ films, backend }) => {
        const { Grounder } = await import('/pkg/index.js');
        const rows = (await (await fetch(`/${films}/val.jsonl`)).text()).trim().split('\n').map((l) => JSON.parse(l));
        const examples = await Promise.all(rows.map(async (r) => ({
          image: new Uint8Array(await (await fetch(`/${films}/${r.image}`)).arrayBuffer()),
          phrase: r.phrase,
          box: [r.box[0], r.box[1], r.box[0] + r.box[2], r.box[1] + r.box[3]],
        })));
        const g = await Grounder.load('/assets/demo/', { backend, noWarmup: true });
        const start = performance.now();
        const last = backend === 'webgpu' ? 2 : 4; // the schedule stays that of 4 steps
        const out = await g.fineTune(examples, { steps: 4, batch: 4, warmupSteps: 2, seed: 0, onProgress: ({ step }) => step < last });
        const msPerStep = (performance.now() - start) / out.steps;
        const answer = await g.ground(examples[0].image, examples[0].phrase);
        let pictures = null;
        if (backend === 'cpu') {
          // Examples given as an ImageBitmap and an ImageData train as their encoded bytes do.
          const bitmap = await createImageBitmap(new Blob([examples[0].image]));
          const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
          canvas.getContext('2d').drawImage(bitmap, 0, 0);
          const data = canvas.getContext('2d').getImageData(0, 0, bitmap.width, bitmap.height);
          const one = { steps: 1, batch: 2, seed: 0 };
          const asBytes = await g.fineTune(examples.slice(0, 2), one);
          const asPictures = await g.fineTune([{ ...examples[0], image: bitmap }, { ...examples[1], image: data }], one);
          pictures = [asBytes.losses[0], asPictures.losses[0]];
        }
        return { backend: g.backend, losses: out.losses, msPerStep, calibrated: answer.calibrated, adapter: g.adapter, pictures };
      }, { films: FILMS, backend });
      console.log(`fineTune in chromium (${got.backend}): ${got.msPerStep.toFixed(0)} ms a step, losses ${got.losses.map((l) => l.toFixed(5)).join(' ')}`);
      assert.equal(got.backend, backend);
      assert.equal(got.adapter, 'fine-tuned');
      assert.equal(got.calibrated, false);
      if (got.pictures) assert.ok(Math.abs(got.pictures[0] - got.pictures[1]) < 1e-4, `bytes ${got.pictures[0]}, ImageBitmap / ImageData ${got.pictures[1]}`);
      const want = native[backend];
      assert.equal(got.losses.length, backend === 'webgpu' ? 2 : want.length);
      const tol = backend === 'cpu' ? 1e-4 : 1e-3;
      got.losses.forEach((l, i) => {
        assert.ok(Math.abs(l - want[i]) < tol, `step ${i}: ${l} in chromium, ${want[i]} natively (${backend === 'cpu' ? 'cpu' : 'wgpu'})`);
      });
    } finally {
      await browser.close();
      server.close();
    }
  });
}
