// fineTune in the npm package (Node, CPU wasm) takes the native trainer's steps: on the six
// films and the config of tests/fixtures/tune.toml its losses equal `train`'s log to 1e-4.
// Run by tools/test.sh: MEDGROUND_TUNE_FILMS=dir (data synth's output) and
// MEDGROUND_TUNE_NATIVE=losses.json (the native run's losses, from its log.csv).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Grounder } from '../../pkg/index.js';

const films = process.env.MEDGROUND_TUNE_FILMS;
const skip = !films && 'MEDGROUND_TUNE_FILMS not set';

async function examples() {
  const rows = (await readFile(join(films, 'val.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  return Promise.all(rows.map(async (r) => ({
    image: new Uint8Array(await readFile(join(films, r.image))),
    phrase: r.phrase,
    box: [r.box[0], r.box[1], r.box[0] + r.box[2], r.box[1] + r.box[3]],
  })));
}

test('fineTune logs the native trainer\'s losses and answers with the adapter', { skip }, async () => {
  const native = JSON.parse(await readFile(process.env.MEDGROUND_TUNE_NATIVE, 'utf8'));
  const g = await Grounder.load(process.env.MEDGROUND_BUNDLE ?? 'assets/demo', { backend: 'cpu', noWarmup: true });
  const set = await examples();
  const before = await g.ground(set[0].image, set[0].phrase);
  assert.equal(before.calibrated, true);
  const seen = [];
  const start = performance.now();
  const out = await g.fineTune(set, { steps: 4, batch: 4, warmupSteps: 2, seed: 0, onProgress: (p) => { seen.push(p); } });
  assert.equal(out.steps, 4);
  const rss = (process.memoryUsage().rss / 2 ** 20).toFixed(0);
  console.log(`fineTune on wasm CPU: ${((performance.now() - start) / 4).toFixed(0)} ms a step (batch 4, tiny model); process RSS after it ${rss} MB`);
  assert.deepEqual(seen.map((p) => p.step), [1, 2, 3, 4]);
  assert.equal(native.length, 4);
  out.losses.forEach((l, i) => assert.ok(Math.abs(l - native[i]) < 1e-4, `step ${i}: ${l} in wasm, ${native[i]} natively`));
  const after = await g.ground(set[0].image, set[0].phrase);
  assert.equal(g.adapter, 'fine-tuned');
  assert.equal(after.calibrated, false); // the bundle's calibration described other weights
  assert.ok(after.probability !== before.probability, 'the answer did not change with the adapter');

  // Taken away as a PEFT adapter, merged natively by import-peft: the same box.
  const files = await g.exportAdapter();
  assert.deepEqual(Object.keys(files).sort(), ['adapter_config.json', 'adapter_model.safetensors']);
  const dir = await mkdtemp(join(tmpdir(), 'medground-tune-'));
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes);
  const cli = process.env.MEDGROUND_CLI ?? 'target/release/medground';
  const bundle = process.env.MEDGROUND_BUNDLE ?? 'assets/demo';
  execFileSync(cli, ['import-peft', '--base', bundle, '--adapter', dir, '--out', join(dir, 'merged')], { stdio: 'ignore' });
  const rows = (await readFile(join(films, 'val.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  const merged = JSON.parse(execFileSync(cli, ['ground', '--image', join(films, rows[0].image), '--phrase', rows[0].phrase,
    '--model', join(dir, 'merged')], { encoding: 'utf8' }));
  assert.equal(merged.text, after.text);
  assert.ok(Math.abs(merged.probability - after.probability) < 1e-3, `${merged.probability} vs ${after.probability}`);
  // Zipped (the page's download): import-peft reads the zip itself.
  const zip = await g.exportAdapter({ zip: true });
  await writeFile(join(dir, 'adapter.zip'), zip);
  execFileSync(cli, ['import-peft', '--base', bundle, '--adapter', join(dir, 'adapter.zip'), '--out', join(dir, 'from-zip')], { stdio: 'ignore' });
  const fromZip = JSON.parse(execFileSync(cli, ['ground', '--image', join(films, rows[0].image), '--phrase', rows[0].phrase,
    '--model', join(dir, 'from-zip')], { encoding: 'utf8' }));
  assert.deepEqual(fromZip.box, merged.box);
  await g.useAdapter(null);
  assert.equal(g.adapter, undefined);
  const back = await g.ground(set[0].image, set[0].phrase);
  assert.equal(back.calibrated, true); // the bundle's own weights and calibration again
  assert.equal(back.probability, before.probability);
  await assert.rejects(g.exportAdapter(), /call fineTune first/);
});

test('fineTune reports validation IoU, saves the adapter, resumes from a save; loadAdapter answers as the tuned model', { skip }, async () => {
  const native = JSON.parse(await readFile(process.env.MEDGROUND_TUNE_NATIVE, 'utf8'));
  const bundle = process.env.MEDGROUND_BUNDLE ?? 'assets/demo';
  const set = await examples();
  const opts = { steps: 4, batch: 4, warmupSteps: 2, seed: 0 };
  const g = await Grounder.load(bundle, { backend: 'cpu', noWarmup: true });
  const seen = [];
  const out = await g.fineTune(set, { ...opts, validation: set.slice(0, 2), validateEvery: 2, saveEvery: 2, onProgress: (p) => { seen.push(p); } });
  assert.deepEqual(seen.map((p) => p.step), [0, 1, 2, 3, 4]);
  assert.deepEqual(seen.map((p) => p.valIoU !== undefined), [true, false, true, false, true]);
  assert.deepEqual(seen.map((p) => p.adapter instanceof Uint8Array), [false, false, true, false, true]);
  assert.deepEqual(out.valIoU.map(([s]) => s), [0, 2, 4]);
  for (const [, iou] of out.valIoU) assert.ok(iou >= 0 && iou <= 1, `IoU ${iou}`);
  out.losses.forEach((l, i) => assert.ok(Math.abs(l - native[i]) < 1e-4, `step ${i}: ${l} vs ${native[i]}`));

  // A reload after step 2: a new grounder goes on from the save. The loss of step 3 is taken
  // before its update, on the saved weights: the unbroken run's to 1e-4.
  const h = await Grounder.load(bundle, { backend: 'cpu', noWarmup: true });
  const resumed = await h.fineTune(set, { ...opts, resume: { adapter: seen[2].adapter, step: 2 } });
  assert.equal(resumed.losses.length, 2);
  assert.ok(Math.abs(resumed.losses[0] - native[2]) < 1e-4, `resumed step 3: ${resumed.losses[0]} vs ${native[2]}`);
  await assert.rejects(h.fineTune(set, { ...opts, resume: { adapter: seen[2].adapter, step: 4 } }), /only 4 steps/);
  await assert.rejects(h.fineTune(set, { ...opts, rank: 8, resume: { adapter: seen[2].adapter, step: 2 } }), /rank/);
  await assert.rejects(h.fineTune(set, { ...opts, resume: { adapter: new Uint8Array([80, 75, 3, 4]), step: 2 } }), /zip/);

  // The final save, loaded into a fresh grounder: the tuned model's answer.
  const k = await Grounder.load(bundle, { backend: 'cpu', noWarmup: true });
  await k.loadAdapter('mine', seen[4].adapter);
  assert.equal(k.adapter, 'mine');
  const [a, b] = [await g.ground(set[1].image, set[1].phrase), await k.ground(set[1].image, set[1].phrase)];
  assert.equal(b.text, a.text);
  assert.equal(b.calibrated, false);
  assert.deepEqual(await k.exportAdapter({ zip: true }), seen[4].adapter);
  // Adapters trained or loaded in this session are listed, and useAdapter comes back to them.
  await g.fineTune(set.slice(0, 2), { steps: 1, batch: 2, name: 'short' });
  assert.deepEqual(g.adapters, ['fine-tuned', 'short']);
  await g.useAdapter('fine-tuned');
  assert.equal((await g.ground(set[1].image, set[1].phrase)).text, a.text);
  await g.useAdapter(null);
  assert.equal((await g.ground(set[1].image, set[1].phrase)).calibrated, true);
  await g.useAdapter('short');
  assert.equal(g.adapter, 'short');
  assert.deepEqual(k.adapters, ['mine']);
  await assert.rejects(k.loadAdapter('bad', new Uint8Array([1, 2, 3])), /zip/);
});

test('fineTune refuses bad examples and options with clear errors', { skip }, async () => {
  const g = await Grounder.load(process.env.MEDGROUND_BUNDLE ?? 'assets/demo', { backend: 'cpu', noWarmup: true });
  const [e] = await examples();
  await assert.rejects(g.fineTune([], { steps: 1 }), /at least one example/);
  await assert.rejects(g.fineTune([{ ...e, box: [0, 0, 9999, 10] }], { steps: 1 }), /not inside/);
  await assert.rejects(g.fineTune([{ ...e, phrase: ' ' }], { steps: 1 }), /phrase/);
  await assert.rejects(g.fineTune([{ ...e, image: new Uint8Array([1, 2, 3]) }], { steps: 1 }), /image|decode|format/i);
  await assert.rejects(g.fineTune([e], { steps: 0 }), /at least 1/);
  await assert.rejects(g.fineTune([e], { stepz: 3 }), /unknown fineTune option "stepz"/);
  let calls = 0;
  const out = await g.fineTune([e], { steps: 5, batch: 1, onProgress: () => { calls += 1; return false; } });
  assert.equal(out.steps, 1); // returning false stops after that step
  assert.equal(calls, 1);
});
