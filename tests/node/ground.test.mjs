// The npm package in Node (CPU backend): it loads a bundle and answers as the native CLI does.
// Run by tools/test.sh as: MEDGROUND_BUNDLE=dir MEDGROUND_NATIVE=answer.json node --test tests/node/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Grounder } from '../../pkg/index.js';

const bundle = process.env.MEDGROUND_BUNDLE;
const native = JSON.parse(await readFile(process.env.MEDGROUND_NATIVE, 'utf8'));
const film = new Uint8Array(await readFile(new URL('../fixtures/chest_rg1.dcm', import.meta.url)));

test('the package answers as the native CLI on a DICOM film', async () => {
  const g = await Grounder.load(bundle, { backend: 'auto' });
  assert.equal(g.backend, 'cpu'); // Node has no WebGPU adapter: the CPU fallback runs
  const a = await g.ground(film, native.phrase);
  assert.equal(a.text, native.text);
  assert.deepEqual(a.boxNorm, native.boxNorm);
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(a.box[i] - native.box[i]) < 1e-3);
  assert.equal(typeof native.confidence, 'number');
  assert.ok(Math.abs(a.confidence - native.confidence) < 1e-3);
  assert.ok(Math.abs(a.probability - native.probability) < 1e-3);
  assert.equal(a.calibrated, native.calibrated);
  assert.equal(a.inDistribution, native.inDistribution);
  assert.equal(typeof native.oodScore, 'number');
  assert.ok(Math.abs(a.oodScore - native.oodScore) < 1e-3 * native.oodScore, `${a.oodScore} vs ${native.oodScore}`);
  assert.equal(a.backend, 'cpu');
  // The same film again: read from the film kept by the first question, the same answer.
  const again = await g.ground(film, native.phrase);
  assert.equal(again.text, a.text);
  assert.equal(again.probability, a.probability);
  assert.equal(again.oodScore, a.oodScore);
});

test('outside an image the model knows: no confidence, as natively', { skip: !process.env.MEDGROUND_NATIVE_OUTSIDE && 'MEDGROUND_NATIVE_OUTSIDE not set' }, async () => {
  const expected = JSON.parse(await readFile(process.env.MEDGROUND_NATIVE_OUTSIDE, 'utf8'));
  assert.equal(expected.inDistribution, false);
  assert.equal(expected.confidence, null);
  assert.equal(expected.calibrated, false);
  const g = await Grounder.load(bundle, { backend: 'cpu', noWarmup: true });
  const a = await g.ground(new Uint8Array(await readFile(expected.image)), expected.phrase);
  assert.equal(a.inDistribution, false);
  assert.equal(a.confidence, null);
  assert.equal(a.calibrated, false);
  assert.equal(typeof a.probability, 'number');
  assert.ok(Math.abs(a.oodScore - expected.oodScore) < 1e-3 * expected.oodScore, `${a.oodScore} vs ${expected.oodScore}`);
  assert.deepEqual(a.boxNorm, expected.boxNorm);
});

test('a structure states its confidence from the same views agreement as the native CLI', async () => {
  const expected = JSON.parse(await readFile(process.env.MEDGROUND_NATIVE_STRUCTURE, 'utf8'));
  const g = await Grounder.load(bundle, { backend: 'cpu', noWarmup: true });
  const a = await g.ground(film, expected.phrase);
  assert.deepEqual(a.boxNorm, expected.boxNorm);
  assert.equal(typeof expected.agreement, 'number', 'the demo reads the views agreement for this structure');
  assert.ok(Math.abs(a.agreement - expected.agreement) < 1e-3, `${a.agreement} vs ${expected.agreement}`);
  assert.equal(typeof expected.confidence, 'number');
  assert.ok(Math.abs(a.confidence - expected.confidence) < 1e-3);
  assert.equal(a.inDistribution, expected.inDistribution);
  assert.equal(a.calibrated, true);
});

test('bad input is a clear exception', async () => {
  const g = await Grounder.load(bundle, { backend: 'cpu', noWarmup: true });
  await assert.rejects(g.ground(new TextEncoder().encode('not an image'), 'effusion'), /not a PNG, JPEG or DICOM/);
  await assert.rejects(g.ground(film, '   '), /phrase is empty/);
  const manifest = await readFile(`${bundle}/manifest.json`);
  const files = { 'manifest.json': manifest };
  for (const f of Object.keys(JSON.parse(manifest).files)) files[f] = new Uint8Array(await readFile(`${bundle}/${f}`));
  files['model.safetensors'][100] ^= 1;
  await assert.rejects(Grounder.load(files, { backend: 'cpu' }), /checksum/);
});
