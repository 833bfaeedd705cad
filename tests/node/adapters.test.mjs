// Several adapters on one base in the npm package (Node, CPU backend): a bundle with the parity
// fixture as base and tests/fixtures/adapter beside it answers as the native CLI with the base
// weights, as the merged model after useAdapter, and as the base again after useAdapter(null).
// Run by tools/test.sh: MEDGROUND_ADAPTERS=dir MEDGROUND_ADAPTERS_NATIVE=answers.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Grounder } from '../../pkg/index.js';

const bundle = process.env.MEDGROUND_ADAPTERS;
const native = bundle && JSON.parse(await readFile(process.env.MEDGROUND_ADAPTERS_NATIVE, 'utf8'));
const film = new Uint8Array(await readFile(new URL('../fixtures/chest_rg1.dcm', import.meta.url)));

function same(a, b) {
  assert.equal(a.text, b.text);
  assert.ok(Math.abs(a.probability - b.probability) < 1e-4, `${a.probability} vs ${b.probability}`);
}

test('useAdapter switches to the merged model and back', { skip: !bundle && 'MEDGROUND_ADAPTERS not set' }, async () => {
  const g = await Grounder.load(bundle, { backend: 'cpu', noWarmup: true });
  assert.deepEqual(g.adapters, ['findings']);
  assert.equal(g.adapter, undefined);
  same(await g.ground(film, native.phrase), native.base);
  await g.useAdapter('findings');
  assert.equal(g.adapter, 'findings');
  same(await g.ground(film, native.phrase), native.merged);
  await g.useAdapter(null);
  same(await g.ground(film, native.phrase), native.base);
  await assert.rejects(g.useAdapter('anatomy'), /no adapter "anatomy"/);
});
