// Mutated inputs through the npm package in Node (CPU build): PNG, JPEG and a DICOM of each
// codec in the pydicom-data set (MEDGROUND_DICOM_REF), odd phrases. Each is answered or
// rejected with an Error the caller can catch; none kills the module (a Rust panic in wasm is
// an uncatchable "unreachable" trap that leaves the instance unusable), and the grounder
// answers as before afterwards. Run by tools/test.sh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Grounder, preview } from '../../pkg/index.js';

const bundle = process.env.MEDGROUND_BUNDLE;
const ref = process.env.MEDGROUND_DICOM_REF;
const here = (p) => new URL(p, import.meta.url);

let state = 0x2545f491n;
function next() {
  // xorshift32, in BigInt to keep it unsigned and exact.
  state ^= (state << 13n) & 0xffffffffn;
  state ^= state >> 17n;
  state ^= (state << 5n) & 0xffffffffn;
  return Number(state);
}

function mutate(bytes, round) {
  const b = bytes.slice();
  const from = round % 4 === 0 ? 0 : b.length >> 1;
  for (let k = 0; k <= next() % 8; k++) b[from + (next() % (b.length - from))] = next() & 255;
  if (round % 3 === 0) {
    const i = from + (next() % (b.length - from));
    b.fill(0, i, Math.min(b.length, i + 1 + (next() % 64)));
  }
  return round % 5 === 0 ? b.subarray(0, b.length - (next() % ((b.length >> 2) + 1))) : b;
}

async function inputs() {
  const files = [
    await readFile(here('../fixtures/chest_rg1_expected.png')),
    await readFile(here('../fixtures/ood/photos/chelsea.png')),
    await readFile(here('../fixtures/mscxr/files/p10/p10000032/s50414267/02aa804e-bde0afdd.jpg')),
  ];
  // And one DICOM of each transfer syntax pydicom decodes.
  const index = JSON.parse(await readFile(`${ref}/index.json`, 'utf8'));
  const seen = new Set();
  for (const e of index) {
    if (e.status !== 'decoded' || seen.has(e.syntax)) continue;
    const bytes = await readFile(e.file);
    if (bytes.length > 300_000) continue;
    seen.add(e.syntax);
    files.push(bytes);
  }
  return { files: files.map((f) => new Uint8Array(f)), syntaxes: [...seen] };
}

test('mutated images and phrases are answered or rejected, and the grounder still works', { skip: (!bundle || !ref) && 'MEDGROUND_BUNDLE or MEDGROUND_DICOM_REF not set' }, async () => {
  const g = await Grounder.load(bundle, { backend: 'cpu', noWarmup: true });
  const film = new Uint8Array(await readFile(here('../fixtures/chest_rg1.dcm')));
  const before = await g.ground(film, 'the heart');
  const { files, syntaxes } = await inputs();
  assert.ok(syntaxes.some((s) => s.startsWith('RLE')), syntaxes.join(', '));
  assert.ok(syntaxes.some((s) => s.startsWith('JPEG-LS')), syntaxes.join(', '));
  let tried = 0, rejected = 0;
  // The decoder alone (what ground runs first) on many mutations (90 a file)...$
  for (const f of files) {
    for (let round = 0; round < 90; round++) {
      tried++;
      try {
        preview(mutate(f, round));
      } catch (e) {
        assert.ok(e instanceof Error, String(e));
        assert.doesNotMatch(e.message, /unreachable|panicked/, e.message);
        rejected++;
      }
    }
  }
  // ...and the whole query on some.
  for (const f of files) {
    for (let round = 0; round < 3; round++) {
      tried++;
      try {
        await g.ground(mutate(f, round), 'the heart');
      } catch (e) {
        assert.ok(e instanceof Error, String(e));
        assert.doesNotMatch(e.message, /unreachable|panicked/, e.message);
        rejected++;
      }
    }
  }
  const phrases = ['', ' ', '\u0000', 'a'.repeat(5000), '{<1><2><3><4>}', '<image>'.repeat(40), 'é🫁 right lung', '\n\t'];
  for (const p of phrases) {
    tried++;
    try {
      const a = await g.ground(film, p);
      assert.equal(a.boxNorm.length, 4);
    } catch (e) {
      assert.ok(e instanceof Error, String(e));
      assert.doesNotMatch(e.message, /unreachable|panicked/, e.message);
      rejected++;
    }
  }
  console.log(`${tried} mutated inputs and phrases: ${rejected} rejected, ${tried - rejected} answered; codecs: ${syntaxes.join(', ')}`);
  assert.ok(tried >= 900, `${tried}`);
  const after = await g.ground(film, 'the heart');
  assert.equal(after.text, before.text);
  assert.equal(after.probability, before.probability);
});
