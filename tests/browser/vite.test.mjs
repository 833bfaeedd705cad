// The npm package inside a bundler: pkg/examples/vite, built by Vite (tools/test.sh), served
// statically, answers a DICOM film in headless chromium as the native CLI does (CPU backend).
// Needs: VITE_DIST (the example's build, with the bundle in model/), NATIVE, CHROMIUM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { chromium } from 'playwright-core';

const DIST = process.env.VITE_DIST;
const native = JSON.parse(await readFile(process.env.NATIVE, 'utf8'));
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

test('the Vite example answers as the native CLI', { skip: !DIST && 'VITE_DIST not set' }, async () => {
  const server = http.createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    const file = join(DIST, path.endsWith('/') ? `${path}index.html` : path);
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
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
