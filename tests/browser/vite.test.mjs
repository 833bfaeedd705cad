// The npm package inside a bundler: pkg/examples/vite, built by Vite (tools/test.sh), served
// statically, answers a DICOM film in headless chromium as the native CLI does (CPU backend).
// Needs: VITE_DIST (the example's build, with the bundle in model/), NATIVE, CHROMIUM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { launch } from './launch.mjs';
import { serve } from '../../tools/serve.mjs';

const DIST = process.env.VITE_DIST;
const native = JSON.parse(await readFile(process.env.NATIVE, 'utf8'));

test('the Vite example answers as the native CLI', { skip: !DIST && 'VITE_DIST not set' }, async () => {
  const { server, origin } = await serve(DIST);
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${origin}/`);
    await page.waitForSelector('body[data-ready]', { timeout: 300_000 });
    await page.fill('#phrase', native.phrase);
    await page.setInputFiles('#file', new URL('../fixtures/chest_rg1.dcm', import.meta.url).pathname);
    await page.waitForSelector('#out[data-answer]', { timeout: 300_000 });
    const a = JSON.parse(await page.getAttribute('#out', 'data-answer'));
    assert.equal(a.text, native.text);
    assert.deepEqual(a.boxNorm, native.boxNorm);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    server.close();
  }
});
