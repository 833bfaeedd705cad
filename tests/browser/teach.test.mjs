// The page's Teach panel in headless chromium (the CPU build: SwiftShader's WebGPU would take
// an hour for this run): synthetic films of one finding (pneumonia, which the demo boxes
// poorly) loaded as a JSONL with its images, 24 to train on and 8 held out; a reload in the
// middle of training loses only the steps since the last save and Resume goes on from it; at
// the end the held-out IoU is higher than before training, the adapter is kept and listed, and
// the downloaded zip, merged natively by `import-peft`, gives the page's box. Needs: DIST (the
// trunk build), MEDGROUND_CLI (the native binary), SHOTS, CHROMIUM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch } from './launch.mjs';
import { serve } from '../../tools/serve.mjs';

const DIST = process.env.DIST;
const CLI = process.env.MEDGROUND_CLI;
const SHOTS = process.env.SHOTS || 'target/browser';
const STEPS = 30;

function iou(a, b) {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const area = (q) => (q[2] - q[0]) * (q[3] - q[1]);
  return (w * h) / (area(a) + area(b) - w * h);
}

// Pneumonia phrases of synthetic upright films: the first 24 of a training seed and 8 of a
// validation seed, as one JSONL (split "val" marks the held-out ones) beside their images.
async function films(dir) {
  const rows = [];
  for (const [split, n, seed, take] of [['train', 200, 21, 24], ['val', 120, 11, 8]]) {
    const out = join(dir, split);
    execFileSync(CLI, ['data', 'synth', '--n', String(n), '--out', out, '--split', split, '--seed', String(seed), '--upright'], { stdio: 'ignore' });
    const all = (await readFile(join(out, `${split}.jsonl`), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    for (const r of all.filter((r) => r.category === 'Pneumonia').slice(0, take)) {
      const name = r.image.split('/').pop();
      await copyFile(join(out, r.image), join(dir, name));
      rows.push({ ...r, image: name, file: join(dir, name) });
    }
  }
  await writeFile(join(dir, 'teach.jsonl'), rows.map(({ file, ...r }) => JSON.stringify(r)).join('\n'));
  return rows;
}

test('Teach: train on labelled films in the page, resume after a reload, download the adapter', { skip: (!DIST || !CLI) && 'DIST or MEDGROUND_CLI not set', timeout: 900_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'medground-teach-'));
  const rows = await films(dir);
  await mkdir(SHOTS, { recursive: true });
  const { server, origin } = await serve(DIST);
  const browser = await launch(false);
  try {
    const context = await browser.newContext({ acceptDownloads: true });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const ready = async () => {
      await page.waitForFunction(() => document.body.dataset.backend || document.getElementById('error').textContent, null, { timeout: 300_000 });
      assert.equal(await page.textContent('#error'), '');
    };
    await page.goto(`${origin}/`);
    await ready();
    await page.click('#teach summary');
    await page.setInputFiles('#labelled', [join(dir, 'teach.jsonl'), ...new Set(rows.map((r) => r.file))]);
    await page.waitForSelector('#teach[data-examples="32"]');
    assert.equal(await page.getAttribute('#teach', 'data-held'), '8');
    // One more by hand: a film opened, its phrase typed, its box drawn on the film.
    const one = rows[0];
    await page.setInputFiles('#file', one.file);
    await page.waitForSelector(`#view[data-image="${one.image}"]`);
    await page.fill('#teach-phrase', one.phrase);
    await page.check('#draw');
    const r = await page.$eval('#view', (c) => { const b = c.getBoundingClientRect(); return { x: b.x, y: b.y, sx: b.width / c.width, sy: b.height / c.height }; });
    const [x, y, w, h] = one.box;
    await page.mouse.move(r.x + x * r.sx, r.y + y * r.sy);
    await page.mouse.down();
    await page.mouse.move(r.x + (x + w / 2) * r.sx, r.y + (y + h / 2) * r.sy);
    await page.mouse.move(r.x + (x + w) * r.sx, r.y + (y + h) * r.sy);
    await page.mouse.up();
    await page.screenshot({ path: `${SHOTS}/teach-label.png`, fullPage: true });
    await page.click('#add');
    await page.waitForSelector('#teach[data-examples="33"]');
    const drawn = JSON.parse(await page.getAttribute('#teach', 'data-last-box'));
    [x, y, x + w, y + h].forEach((v, k) => assert.ok(Math.abs(drawn[k] - v) <= 2, `drawn ${drawn}, meant ${one.box} (x, y, w, h)`));
    assert.equal(await page.getAttribute('#teach', 'data-held'), '8');
    await page.uncheck('#draw');
    await page.fill('#steps', String(STEPS));
    await page.fill('#tune-name', 'pneumonia');
    const start = Date.now();
    await page.click('#train');
    // Past the save at step 10, then a reload: the run comes back at step 10.
    await page.waitForFunction(() => +document.getElementById('teach').dataset.step >= 12, null, { timeout: 300_000 });
    const msPerStep = (Date.now() - start) / 12;
    const before = JSON.parse(await page.getAttribute('#teach', 'data-val-iou'));
    assert.equal(before[0][0], 0);
    await page.screenshot({ path: `${SHOTS}/teach-during.png`, fullPage: true });
    await page.reload();
    await ready();
    await page.waitForSelector('#resume:not([hidden])');
    assert.equal(await page.getAttribute('#teach', 'data-saved'), '10');
    assert.match(await page.textContent('#resume'), /from step 10 of 30/);
    await page.click('#resume');
    await page.waitForFunction(() => ['done', 'failed'].includes(document.getElementById('teach').dataset.state), null, { timeout: 600_000 });
    assert.equal(await page.getAttribute('#teach', 'data-state'), 'done', await page.textContent('#error'));
    const after = JSON.parse(await page.getAttribute('#teach', 'data-val-iou'));
    assert.deepEqual(after[0], before[0], 'the curve before the reload was not kept');
    assert.ok(after.some(([s]) => s === 10) && after.at(-1)[0] === STEPS, JSON.stringify(after));
    const [first, last] = [before[0][1], after.at(-1)[1]];
    console.log(`Teach panel (CPU wasm in chromium): ${msPerStep.toFixed(0)} ms a step with validation; held-out IoU ${first.toFixed(3)} before, ${last.toFixed(3)} after ${STEPS} steps (a reload at step 12, resumed from 10)`);
    assert.ok(last > first + 0.03, `held-out IoU ${first} -> ${last}`);
    assert.match(await page.textContent('#tune-state'), /adapter "pneumonia" in use/);
    await page.screenshot({ path: `${SHOTS}/teach-after.png`, fullPage: true });
    const listed = await page.$$eval('#adapter option', (o) => o.map((x) => x.textContent));
    assert.ok(listed.some((t) => t.startsWith('pneumonia (trained here, 30 steps)')), listed.join(' | '));

    // The page's box with the adapter, and the native one with the downloaded zip merged.
    const film = rows.find((r) => r.split === 'val');
    await page.setInputFiles('#file', film.file);
    await page.waitForSelector(`#view[data-image="${film.image}"]`);
    await page.fill('#phrase', film.phrase);
    await page.click('#go');
    await page.waitForSelector('#view[data-answer]', { timeout: 300_000 });
    const answer = JSON.parse(await page.getAttribute('#view', 'data-answer'));
    assert.equal(answer.calibrated, false);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-adapter')]);
    assert.equal(download.suggestedFilename(), 'pneumonia.zip');
    const zip = join(dir, 'pneumonia.zip');
    await download.saveAs(zip);
    execFileSync(CLI, ['import-peft', '--base', 'assets/demo', '--adapter', zip, '--out', join(dir, 'merged')], { stdio: 'ignore' });
    const native = JSON.parse(execFileSync(CLI, ['ground', '--image', film.file, '--phrase', film.phrase, '--model', join(dir, 'merged')], { encoding: 'utf8' }));
    assert.ok(iou(answer.box, native.box) >= 0.98, `page ${answer.box}, native ${native.box}`);
    // Stop: a longer run ends after the step in progress, its adapter kept.
    await page.fill('#steps', '100');
    await page.fill('#tune-name', 'stopped');
    await page.click('#train');
    await page.waitForFunction(() => +document.getElementById('teach').dataset.step >= 2, null, { timeout: 300_000 });
    await page.click('#stop');
    await page.waitForSelector('#teach[data-state="stopped"]', { timeout: 300_000 });
    const stoppedAt = +(await page.getAttribute('#teach', 'data-step'));
    assert.ok(stoppedAt >= 2 && stoppedAt < 100, `stopped at ${stoppedAt}`);
    const names = await page.$$eval('#adapter option', (o) => o.map((x) => x.textContent));
    assert.ok(names.some((t) => t.startsWith(`stopped (trained here, ${stoppedAt} steps)`)), names.join(' | '));
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    server.close();
  }
});
