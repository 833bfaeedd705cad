// medground for JavaScript: load a model bundle, then ground(image, phrase) -> box.
// Two builds of the same crate: with WebGPU (medground_bg.wasm) and CPU only
// (medground_cpu_bg.wasm, a third of the size). Only the one a Grounder needs is fetched.
import * as gpuBuild from './wasm/medground.js';
import * as cpuBuild from './wasm/medground_cpu.js';

const builds = {
  gpu: { module: gpuBuild, file: './wasm/medground_bg.wasm', ready: null },
  cpu: { module: cpuBuild, file: './wasm/medground_cpu_bg.wasm', ready: null },
};
const inNode = typeof window === 'undefined' && typeof process !== 'undefined' && Boolean(process.versions?.node);

async function hasAdapter() {
  try {
    return Boolean(globalThis.navigator?.gpu && (await globalThis.navigator.gpu.requestAdapter()));
  } catch {
    return false;
  }
}

/** Which build serves `backend`: "auto" takes WebGPU's only when an adapter is granted. */
async function buildFor(backend) {
  if (backend === 'cpu') return 'cpu';
  if (backend === 'webgpu') return 'gpu';
  return (await hasAdapter()) ? 'gpu' : 'cpu';
}

/**
 * Instantiates one build's WebAssembly module once (`build`: "cpu", the default, "gpu", or
 * "auto": the WebGPU build where an adapter is granted); `wasm` may be its bytes or URL
 * (defaults beside this file).
 */
export async function initWasm(wasm, build = 'cpu') {
  if (build === 'auto') build = await buildFor('auto');
  const b = builds[build];
  if (!b) throw new Error(`unknown build ${build}: use cpu, gpu or auto`);
  b.ready ??= (async () => {
    if (wasm === undefined && inNode) {
      // Node's fetch does not read file: URLs; hand the module its bytes.
      wasm = await readFile(new URL(b.file, import.meta.url));
    }
    await b.module.default(wasm === undefined ? undefined : { module_or_path: wasm });
    return b.module;
  })();
  return b.ready;
}

async function readFile(path) {
  // Named through a variable so that bundlers (Vite, webpack) leave this Node-only import alone.
  const fs = 'node:fs/promises';
  const { readFile } = await import(/* @vite-ignore */ /* webpackIgnore: true */ fs);
  return new Uint8Array(await readFile(path));
}

// `onBytes(n)` after each chunk read; `cache`: an open Cache API cache to serve from and fill.
async function fetchBytes(url, onBytes = () => {}, cache = null) {
  if (typeof url === 'string' && !/^[a-z]+:/i.test(url) && inNode) {
    const bytes = await readFile(url); // a path on disk, in Node
    onBytes(bytes.length);
    return bytes;
  }
  let r = cache && (await cache.match(url));
  if (!r) {
    r = await fetch(url);
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    if (cache) await cache.put(url, r.clone());
  }
  if (!r.body) {
    const bytes = new Uint8Array(await r.arrayBuffer());
    onBytes(bytes.length);
    return bytes;
  }
  const chunks = [];
  const reader = r.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    onBytes(value.length);
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

// WebAssembly (wasm32) addresses at most 4 GiB; the bundle's files and the weights widened to
// f32 must both fit, with room left for activations.
const WASM_MEMORY = 4 * 2 ** 30;
const WIDENED = { f32: 1, f16: 2, int8: 4 };

/** Bytes of WebAssembly memory a bundle needs at load, from its manifest: files + f32 weights. */
export function memoryNeeded(manifest) {
  const files = Object.values(manifest.files).reduce((n, f) => n + f.size, 0);
  const weights = (manifest.files['model.safetensors']?.size ?? 0) * (WIDENED[manifest.dtype] ?? 1);
  return files + weights;
}

function checkFits(manifest) {
  const need = memoryNeeded(manifest);
  if (need > 0.85 * WASM_MEMORY) {
    const gb = (need / 2 ** 30).toFixed(1);
    throw new Error(`the model needs about ${gb} GB of memory to load, more than a browser tab's ` +
      '4 GB of WebAssembly memory allows: use a smaller model or an int8 bundle (export --dtype int8), ' +
      'or the command line');
  }
}

async function toBytes(image) {
  if (image instanceof Uint8Array) return image;
  if (image instanceof ArrayBuffer) return new Uint8Array(image);
  if (ArrayBuffer.isView(image)) return new Uint8Array(image.buffer, image.byteOffset, image.byteLength);
  return null;
}

/** An example's image as encoded bytes: ImageData and ImageBitmap are encoded as PNG (lossless). */
async function imageBytes(image) {
  const bytes = await toBytes(image);
  if (bytes) return bytes;
  if (typeof ImageBitmap !== 'undefined' && image instanceof ImageBitmap) {
    const canvas = new OffscreenCanvas(image.width, image.height);
    canvas.getContext('2d').drawImage(image, 0, 0);
    return new Uint8Array(await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer());
  }
  if (image && image.data && image.width && image.height && typeof OffscreenCanvas !== 'undefined') {
    const canvas = new OffscreenCanvas(image.width, image.height);
    canvas.getContext('2d').putImageData(image, 0, 0);
    return new Uint8Array(await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer());
  }
  throw new TypeError("fineTune: an example's image must be encoded bytes (PNG, JPEG or DICOM), an ImageData or an ImageBitmap");
}

async function example(e) {
  return { image: await imageBytes(e?.image), phrase: e?.phrase, box: Array.from(e?.box ?? []) };
}

export class Grounder {
  constructor(inner) {
    this.inner = inner;
    this.queue = Promise.resolve(); // one call at a time: switching adapters waits for queries
  }

  run(fn) {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => {});
    return next;
  }

  /**
   * `bundle`: a URL or path of a bundle folder (holding manifest.json), or an object mapping file
   * names to bytes. `options.backend`: "auto" (default), "webgpu" or "cpu"; `options.wasm`.
   */
  static async load(bundle, options = {}) {
    const backend = options.backend ?? 'auto';
    const wasm = await initWasm(options.wasm, await buildFor(backend));
    let files = bundle;
    if (typeof bundle === 'string' || bundle instanceof URL) {
      const base = String(bundle).endsWith('/') ? String(bundle) : `${bundle}/`;
      const cache = options.cache && globalThis.caches ? await globalThis.caches.open(options.cache) : null;
      const manifestBytes = await fetchBytes(`${base}manifest.json`, undefined, cache);
      const manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
      checkFits(manifest); // before the download, not after it fills the tab
      const total = Object.values(manifest.files).reduce((n, f) => n + f.size, 0);
      let loaded = 0;
      const onBytes = (n) => { loaded += n; options.onProgress?.(loaded, total); };
      files = { 'manifest.json': manifestBytes };
      for (const name of Object.keys(manifest.files)) files[name] = await fetchBytes(base + name, onBytes, cache);
    }
    let inner;
    try {
      inner = await wasm.WebGrounder.load(files, { backend, noWarmup: options.noWarmup ?? false });
    } catch (e) {
      // A corrupt cached copy must not stick: drop it so that the next load fetches afresh.
      if (options.cache && globalThis.caches) await globalThis.caches.delete(options.cache);
      throw e;
    }
    return new Grounder(inner);
  }

  /** "webgpu" or "cpu". */
  get backend() {
    return this.inner.backend;
  }

  /** The adapters the bundle holds beside its base weights (`adapters/NAME/` in the bundle). */
  get adapters() {
    return this.inner.adapters;
  }

  /** The adapter in use, or undefined for the base weights. */
  get adapter() {
    return this.inner.adapter;
  }

  /**
   * Switches to one of the bundle's adapters, or back to the base weights with null; the base is
   * not fetched or built again (the adapter is merged into its weights in memory).
   */
  async useAdapter(name) {
    return this.run(() => this.inner.useAdapter(name ?? undefined));
  }

  /**
   * Trains a LoRA adapter on `examples` and answers with it from then on: each example is
   * { image, phrase, box: [x1, y1, x2, y2] } with the image as encoded PNG, JPEG or DICOM bytes,
   * an ImageData or an ImageBitmap, and the box in its pixels. The same steps as the native
   * `medground train` (stage 2 preset), kept under options.name ("fine-tuned") for `useAdapter`.
   * options: steps (100), batch (4), lr (0.001), rank (16),
   * alpha (32), warmupSteps, seed (0); validation (examples held out: their mean IoU is
   * reported), validateEvery (steps / 10), saveEvery (0: never; else the adapter as a zip in
   * the progress, for `resume`), resume ({ adapter, step }: go on from a saved adapter);
   * onProgress({ step, steps, loss, valIoU, adapter }) (return false to stop), signal (an
   * AbortSignal: stops after the step in progress). Resolves to { losses, steps, valIoU }
   * (valIoU: [step, mean IoU] pairs). The bundle's calibration no longer applies: answers after
   * it are `calibrated: false`.
   */
  async fineTune(examples, options = {}) {
    const { onProgress, signal, validation, ...rest } = options;
    return this.run(async () => {
      if (!Array.isArray(examples)) throw new TypeError('fineTune: examples must be an array');
      if (validation !== undefined && !Array.isArray(validation)) throw new TypeError('fineTune: validation must be an array');
      const list = await Promise.all(examples.map(example));
      if (validation) rest.validation = await Promise.all(validation.map(example));
      const progress = (p) => !signal?.aborted && onProgress?.(p) !== false;
      return this.inner.fineTune(list, rest, progress);
    });
  }

  /**
   * The adapter fineTune trained (or loadAdapter loaded), as an HF PEFT adapter folder:
   * { "adapter_config.json", "adapter_model.safetensors" } as bytes, which `medground
   * import-peft` and Python's PEFT load; with { zip: true } that folder as one zip (bytes),
   * which `import-peft --adapter FILE.zip` and `loadAdapter` read.
   */
  async exportAdapter(options) {
    return this.run(() => this.inner.exportAdapter(options));
  }

  /** Answers with an adapter zip (exportAdapter({ zip: true }) or a save), named `name`. */
  async loadAdapter(name, zip) {
    return this.run(async () => this.inner.loadAdapter(String(name), await toBytes(zip) ?? zip));
  }

  /**
   * `image`: encoded bytes (PNG, JPEG, DICOM), an ImageData, or an ImageBitmap. Resolves to
   * { box, boxNorm, text, confidence, calibrated, probability, inDistribution, oodScore, ...,
   * ms, backend } (index.d.ts). The film is read once and kept: asking the same image another
   * phrase skips the vision tower.
   */
  async ground(image, phrase) {
    return this.run(() => this.groundNow(image, phrase));
  }

  async groundNow(image, phrase) {
    const bytes = await toBytes(image);
    if (bytes) return this.inner.ground(bytes, phrase);
    if (typeof ImageBitmap !== 'undefined' && image instanceof ImageBitmap) {
      const canvas = new OffscreenCanvas(image.width, image.height);
      const ctx = canvas.getContext('2d');
      ctx.drawImage(image, 0, 0);
      image = ctx.getImageData(0, 0, image.width, image.height);
    }
    if (image && image.data && image.width && image.height) {
      const data = new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.byteLength);
      return this.inner.groundPixels(image.width, image.height, data, phrase);
    }
    throw new TypeError('image must be encoded bytes, an ImageData or an ImageBitmap');
  }
}

/**
 * A DICOM file's first frame as stored (colour as RGB, palette looked up) with what the file
 * says of itself; needs an instantiated build (Grounder.load or initWasm).
 */
export function dicomFrame(bytes) {
  const b = [builds.gpu, builds.cpu].find((x) => x.ready);
  if (!b) throw new Error('call Grounder.load or initWasm first');
  return b.module.dicomFrame(bytes);
}

/** Decodes a film to RGBA for display; needs an instantiated build (Grounder.load or initWasm). */
export function preview(bytes) {
  const b = [builds.gpu, builds.cpu].find((x) => x.ready);
  if (!b) throw new Error('call Grounder.load or initWasm first');
  return b.module.preview(bytes);
}
