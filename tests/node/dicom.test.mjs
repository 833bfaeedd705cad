// The DICOM conformance check of tests/dicom_conformance.rs on the wasm build in Node: every
// file of the pydicom-data wheel that pydicom (with its pixel-data plugins) decodes gives the
// same first-frame values through the package's dicomFrame (lossless: equal; lossy: within the
// codec's tolerance), JPEG-LS and RLE by the crate's own decoders as natively; the rest are
// refused with a named reason. Run by tools/test.sh with
// MEDGROUND_DICOM_REF=dir (what tools/reference/dicom_reference.py wrote).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { initWasm, dicomFrame } from '../../pkg/index.js';

const ref = process.env.MEDGROUND_DICOM_REF;
// As tests/dicom_conformance.rs: largest and mean difference as shares of the value range.
const LOSSY_MAX = 0.03;
const LOSSY_MEAN = 0.002;

test('pydicom-data conformance in wasm', { skip: !ref && 'MEDGROUND_DICOM_REF not set' }, async () => {
  await initWasm(undefined, 'cpu');
  const index = JSON.parse(await readFile(`${ref}/index.json`, 'utf8'));
  const failures = [];
  let equal = 0, close = 0, refused = 0;
  for (const e of index) {
    const bytes = new Uint8Array(await readFile(e.file));
    let frame, error;
    try {
      frame = dicomFrame(bytes);
    } catch (err) {
      error = String(err.message ?? err);
    }
    if (e.status === 'refused') {
      if (error !== undefined) {
        assert.doesNotMatch(error, /malformed/, e.name);
        refused++;
      } else if (e.name === 'emri_small_jpeg_2k_lossless_too_short.dcm') {
        // Only its closing delimiter is missing: the first frame is the intact file's.
        const raw = await readFile(`${ref}/emri_small_jpeg_2k_lossless.dcm.f64`);
        assert.deepEqual([...frame.values], [...new Float64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8)]);
      } else {
        failures.push(`${e.name}: pydicom refuses it, medground reads it`);
      }
      continue;
    }
    if (error !== undefined) {
      failures.push(`${e.name} (${e.syntax}): ${error}`);
      continue;
    }
    const raw = await readFile(`${ref}/${e.name}.f64`);
    const want = new Float64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8);
    const samples = e.shape.length === 3 ? e.shape[2] : 1;
    if (frame.height !== e.shape[0] || frame.width !== e.shape[1] || frame.samples !== samples) {
      failures.push(`${e.name}: ${frame.height}x${frame.width}x${frame.samples} against ${e.shape}`);
      continue;
    }
    let max = 0, sum = 0, lo = Infinity, hi = -Infinity;
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(frame.values[i] - want[i]);
      max = Math.max(max, d);
      sum += d;
      lo = Math.min(lo, want[i]);
      hi = Math.max(hi, want[i]);
    }
    if (max === 0) {
      equal++;
      continue;
    }
    const range = Math.max(hi - lo, 1);
    const ybr = e.name.includes('ybr');
    if ((e.lossy && max / range <= LOSSY_MAX && sum / want.length / range <= LOSSY_MEAN) || (ybr && max <= 1)) close++;
    else failures.push(`${e.name}: max |diff| ${max}, mean ${sum / want.length}`);
  }
  console.log(`${equal} equal, ${close} within tolerance, ${refused} refused as pydicom does`);
  assert.deepEqual(failures, []);
  assert.ok(equal + close >= 65, `${equal + close} decoded alike`);
});
