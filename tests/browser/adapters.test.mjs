// Several adapters on one base in headless chromium: the npm package, loaded as plain ES modules
// from this repository, switches adapters on WebGPU (SwiftShader) and on the CPU build and
// answers as the native CLI with the merged model. Needs: ADAPTERS (a bundle folder under the
// repository, e.g. target/adapter-bundle), ADAPTERS_NATIVE, CHROMIUM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { launch } from './launch.mjs';
import { serve } from '../../tools/serve.mjs';

const BUNDLE = process.env.ADAPTERS;
const native = BUNDLE && JSON.parse(await readFile(process.env.ADAPTERS_NATIVE, 'utf8'));

for (const backend of ['webgpu', 'cpu']) {
  test(`useAdapter in chromium (${backend})`, { skip: !BUNDLE && 'ADAPTERS not set', timeout: 600_000 }, async () => {
    const { server, origin } = await serve('.', { '/blank.html': '<!doctype html><meta charset="utf-8"><title>adapters</title>' });
    const browser = await launch(backend === 'webgpu');
    try {
      const page = await browser.newPage();
      await page.goto(`${origin}/blank.html`);
      const got = await page.evaluate(async ({ bundle, phrase, backend }) => {
        const { Grounder } = await import('/pkg/index.js');
        const film = new Uint8Array(await (await fetch('/tests/fixtures/chest_rg1.dcm')).arrayBuffer());
        const g = await Grounder.load(`/${bundle}/`, { backend, noWarmup: true });
        const out = { backend: g.backend, adapters: g.adapters, base: await g.ground(film, phrase) };
        await g.useAdapter('findings');
        out.merged = await g.ground(film, phrase);
        await g.useAdapter(null);
        out.again = await g.ground(film, phrase);
        return out;
      }, { bundle: BUNDLE, phrase: native.phrase, backend });
      assert.equal(got.backend, backend);
      assert.deepEqual(got.adapters, ['findings']);
      for (const [k, want] of [['base', native.base], ['merged', native.merged], ['again', native.base]]) {
        assert.equal(got[k].text, want.text, k);
        assert.ok(Math.abs(got[k].probability - want.probability) < 1e-3, `${k}: ${got[k].probability} vs ${want.probability}`);
      }
    } finally {
      await browser.close();
      server.close();
    }
  });
}
