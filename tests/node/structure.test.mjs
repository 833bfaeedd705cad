// The tiled path in the npm package (Node, CPU backend): a bundle of the structure fixture (an
// Idefics3 shaped like SmolVLM-256M, with its processor) answers on a tall image cut into tiles
// as the native CLI does; a folder streams with progress; a bundle too large for a tab's
// WebAssembly memory is refused from its manifest before any download.
// Run by tools/test.sh: MEDGROUND_STRUCTURE=dir MEDGROUND_STRUCTURE_NATIVE=answer.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Grounder, memoryNeeded } from '../../pkg/index.js';

const bundle = process.env.MEDGROUND_STRUCTURE;
const native = bundle && JSON.parse(await readFile(process.env.MEDGROUND_STRUCTURE_NATIVE, 'utf8'));
const skip = !bundle && 'MEDGROUND_STRUCTURE not set';

test('a tiled bundle answers as the native CLI, with download progress', { skip }, async () => {
  const seen = [];
  const g = await Grounder.load(bundle, { backend: 'cpu', noWarmup: true, onProgress: (n, total) => seen.push([n, total]) });
  const manifest = JSON.parse(await readFile(`${bundle}/manifest.json`, 'utf8'));
  const total = Object.values(manifest.files).reduce((n, f) => n + f.size, 0);
  assert.ok(manifest.files['preprocessor_config.json'], 'the bundle carries the processor');
  assert.ok(seen.length >= 4);
  assert.deepEqual(seen.at(-1), [total, total]);
  const image = new Uint8Array(await readFile(new URL('../fixtures/structure/tall.png', import.meta.url)));
  const a = await g.ground(image, native.phrase);
  assert.equal(a.text, native.text);
  assert.deepEqual(a.boxNorm, native.boxNorm);
  assert.ok(Math.abs(a.probability - native.probability) < 1e-4, `${a.probability} vs ${native.probability}`);
});

test('a bundle too large for WebAssembly memory is refused before its download', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'medground-'));
  // A 2 GB int8 model: 2 GB of files plus 8 GB of f32 weights. Its files do not exist: only the
  // manifest is read.
  const manifest = { format: 'medground-bundle-1', dtype: 'int8', files: {
    'config.json': { size: 800, sha256: '0'.repeat(64) },
    'model.safetensors': { size: 2 * 2 ** 30, sha256: '0'.repeat(64) },
  } };
  assert.equal(memoryNeeded(manifest), 800 + 10 * 2 ** 30);
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  await assert.rejects(Grounder.load(dir, { backend: 'cpu' }), /needs about 10\.0 GB.*4 GB of WebAssembly memory/);
  // The 256 M model as an int8 bundle fits.
  assert.ok(memoryNeeded({ dtype: 'int8', files: { 'model.safetensors': { size: 258679800 } } }) < 2 * 2 ** 30);
});
