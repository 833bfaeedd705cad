// The page in headless Debian chromium: WebGPU (SwiftShader on a CPU-only machine) and the CPU
// fallback give the native CLI's box; a non-image file shows the error; no request leaves the
// page's origin; the controls work (several phrases, window/level, download). Needs: DIST (the trunk build) or ORIGIN (a page already served, e.g. by
// tools/demo.sh: .ci/run checks the README's demo command this way), NATIVE (native answer
// JSON), CHROMIUM, SHOTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { launch } from './launch.mjs';
import { serve } from '../../tools/serve.mjs';

const DIST = process.env.DIST;
const native = JSON.parse(await readFile(process.env.NATIVE, 'utf8'));
const SHOTS = process.env.SHOTS || 'target/browser';
let server;
let origin;

before(async () => {
  if (process.env.ORIGIN) origin = process.env.ORIGIN.replace(/\/$/, '');
  else ({ server, origin } = await serve(DIST));
  await mkdir(SHOTS, { recursive: true });
});

after(() => server?.close());

function iou(a, b) {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const area = (q) => (q[2] - q[0]) * (q[3] - q[1]);
  return inter / (area(a) + area(b) - inter);
}

async function run(webgpu) {
  const browser = await launch(webgpu);
  const page = await browser.newPage();
  const foreign = [];
  const wasm = [];
  // Requests from the worker go through the browser context, so listen there.
  page.context().on('request', (r) => { if (r.url().endsWith('.wasm')) wasm.push(r.url().split('/').pop()); });
  page.on('request', (r) => { if (!r.url().startsWith(origin) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) foreign.push(r.url()); });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => document.body.dataset.backend || document.getElementById('error').textContent, null, { timeout: 300_000 });
    assert.equal(await page.textContent('#error'), '', 'the model did not load');
    const backend = await page.getAttribute('body', 'data-backend');
    assert.equal(backend, webgpu ? 'webgpu' : 'cpu');

    // A file that is not an image shows the error.
    await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image') });
    await page.waitForFunction(() => document.getElementById('error').textContent.includes('not an image'));

    await page.click('button[data-sample="samples/chest_rg1.dcm"]');
    await page.waitForSelector('#view[data-image="chest_rg1.dcm"]');
    await page.fill('#phrase', native.phrase);
    await page.click('#go');
    await page.waitForSelector('#view[data-answer]', { timeout: 300_000 });
    const answer = JSON.parse(await page.getAttribute('#view', 'data-answer'));
    assert.equal(answer.backend, backend);
    assert.ok(iou(answer.box, native.box) >= 0.98, `${JSON.stringify(answer.box)} vs native ${JSON.stringify(native.box)}`);
    await page.screenshot({ path: `${SHOTS}/page-${backend}.png`, fullPage: true });
    await writeFile(`${SHOTS}/answer-${backend}.json`, JSON.stringify(answer));
    if (!webgpu) await controls(page);
    assert.deepEqual(foreign, [], 'requests left the page origin');
    // Only the build the backend needs is fetched: the CPU-only one without WebGPU.
    assert.deepEqual(wasm, [webgpu ? 'medground_bg.wasm' : 'medground_cpu_bg.wasm']);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
}

// The page's controls (on the CPU build, the faster one here): the notice, several phrases at
// once with a box and a legend entry each, window/level presets, the annotated PNG download.
async function controls(page) {
  assert.match(await page.textContent('#notice'), /Not for clinical use/);
  await page.fill('#phrase', 'the right lung; the left lung; the heart');
  await page.click('#go');
  await page.waitForFunction(() => (JSON.parse(document.getElementById('view').dataset.answers || '[]')).length === 3, null, { timeout: 300_000 });
  const answers = JSON.parse(await page.getAttribute('#view', 'data-answers'));
  assert.deepEqual(answers.map((a) => a.phrase), ['the right lung', 'the left lung', 'the heart']);
  assert.equal(new Set(answers.map((a) => a.colour)).size, 3);
  const items = await page.$$eval('#legend li', (li) => li.map((l) => l.textContent));
  assert.equal(items.length, 3);
  assert.match(items[2], /^the heart: /);
  assert.match(await page.getAttribute('#view', 'aria-label'), /3 boxes: the right lung at x/);
  const sum = () => page.evaluate(() => {
    const c = document.getElementById('view');
    return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.reduce((s, v) => s + v, 0);
  });
  // The film opened under its automatic window, narrower than the file's own (the sample's
  // VOI window is wider than its pixels' range).
  const auto = await page.getAttribute('#view', 'data-window');
  assert.ok(+auto.split(',')[0] < 256, `auto window ${auto}`);
  const opened = await sum();
  await page.screenshot({ path: `${SHOTS}/page-controls.png`, fullPage: true });
  await page.click('button[data-wl="256,128"]');
  assert.equal(await page.getAttribute('#view', 'data-window'), '256,128');
  const asRead = await sum();
  assert.notEqual(asRead, opened, 'the auto window left the pixels as they were');
  await page.click('button[data-wl="200,100"]');
  assert.equal(await page.getAttribute('#view', 'data-window'), '200,100');
  assert.notEqual(await sum(), asRead, 'the lungs preset left the pixels as they were');
  await page.click('#auto-wl');
  assert.equal(await page.getAttribute('#view', 'data-window'), auto);
  assert.equal(await sum(), opened);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save')]);
  const png = await readFile(await download.path());
  assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
  assert.equal(download.suggestedFilename(), 'chest_rg1-medground.png');
  // The real film is inside what the model knows: its lungs and heart are likely right; its
  // left hemidiaphragm, boxed too low (IoU 0.07), moves when the frame moves: the views'
  // agreement brings its confidence under "likely right".
  for (const item of items) assert.match(item, /likely right/);
  await page.fill('#phrase', 'the left hemidiaphragm');
  await page.click('#go');
  await page.waitForFunction(() => (JSON.parse(document.getElementById('view').dataset.answers || '[]')).length === 1, null, { timeout: 300_000 });
  const [hemi] = JSON.parse(await page.getAttribute('#view', 'data-answers'));
  assert.equal(typeof hemi.agreement, 'number');
  const said = await page.textContent('#legend li');
  assert.match(said, /^the left hemidiaphragm: (unsure|likely wrong)/);
  assert.doesNotMatch(said, /likely right/);
  await page.screenshot({ path: `${SHOTS}/page-unsure.png`, fullPage: true });
  // The two other structures the project's own boxes say are missed on this film (trachea IoU
  // 0.36, right hemidiaphragm 0.34: tests/fixtures/chest_rg1_boxes.jsonl) still read "likely
  // right": the known shortfall of a calibration fitted on synthetic films (issue 54), stated
  // here with its figures so that any change to it shows.
  await page.fill('#phrase', 'the trachea; the right hemidiaphragm');
  await page.click('#go');
  await page.waitForFunction(() => (JSON.parse(document.getElementById('view').dataset.answers || '[]')).length === 2, null, { timeout: 300_000 });
  const [trachea, right] = await page.$$eval('#legend li', (li) => li.map((l) => l.textContent));
  assert.match(trachea, /^the trachea: likely right: 9[34]% /);
  assert.match(right, /^the right hemidiaphragm: likely right: 8[23]% /);
  await outside(page);
}

// A photo is outside what the model knows: the page says so and shows no confidence; a
// compressed DICOM of a chest film (JPEG 2000, from the pydicom-data wheel) opens and answers.
async function outside(page) {
  const photo = await readFile(new URL('../fixtures/ood/photos/astronaut.png', import.meta.url));
  await page.setInputFiles('#file', { name: 'astronaut.png', mimeType: 'image/png', buffer: photo });
  await page.waitForSelector('#view[data-image="astronaut.png"]');
  await page.fill('#phrase', 'the heart');
  await page.click('#go');
  await page.waitForSelector('#view[data-answer]', { timeout: 300_000 });
  const a = JSON.parse(await page.getAttribute('#view', 'data-answer'));
  assert.equal(a.inDistribution, false, `oodScore ${a.oodScore}, threshold ${a.oodThreshold}`);
  assert.equal(a.confidence, null);
  assert.equal(a.calibrated, false);
  const item = await page.textContent('#legend li');
  assert.match(item, /not a chest film/);
  assert.doesNotMatch(item, /likely right/);
  await page.screenshot({ path: `${SHOTS}/page-photo.png`, fullPage: true });
  const ref = process.env.MEDGROUND_DICOM_REF;
  if (!ref) return;
  const index = JSON.parse(await readFile(`${ref}/index.json`, 'utf8'));
  const j2k = await readFile(index.find((e) => e.name === 'RG1_J2KI.dcm').file);
  await page.setInputFiles('#file', { name: 'RG1_J2KI.dcm', mimeType: 'application/dicom', buffer: j2k });
  await page.waitForSelector('#view[data-image="RG1_J2KI.dcm"]', { timeout: 120_000 });
  await page.fill('#phrase', 'the heart');
  await page.click('#go');
  await page.waitForSelector('#view[data-answer]', { timeout: 300_000 });
  const b = JSON.parse(await page.getAttribute('#view', 'data-answer'));
  assert.equal(b.inDistribution, true, `oodScore ${b.oodScore}`);
  await page.screenshot({ path: `${SHOTS}/page-j2k.png`, fullPage: true });
}

test('WebGPU: the drawn box equals the native answer', { timeout: 600_000 }, () => run(true));
test('CPU fallback without WebGPU: the same box', { timeout: 600_000 }, () => run(false));
