// Runs the model off the main thread. Fetches the bundle once (sha256 checked against the
// manifest by the Rust side), keeps it in the Cache API for offline visits. Loads the WebGPU
// build of the wasm only when WebGPU grants an adapter, the CPU-only build (a third of the
// size) otherwise.

const MODEL = './model/';
const CACHE = 'medground-model-v1';
let grounder = null;
let wasmReady = null;
let training = false; // fineTune holds the model: other model requests wait for it to end
let stopAsked = false;

async function adapter() {
  try {
    return Boolean(self.navigator.gpu && (await self.navigator.gpu.requestAdapter()));
  } catch {
    return false;
  }
}

// The wasm module for `backend` ("auto", "webgpu" or "cpu"), instantiated once per worker.
function wasm(backend = 'auto') {
  wasmReady ??= (async () => {
    const gpu = backend === 'webgpu' || (backend !== 'cpu' && (await adapter()));
    const name = gpu ? 'medground' : 'medground_cpu';
    importScripts(`./${name}.js`);
    await wasm_bindgen(`./${name}_bg.wasm`);
  })();
  return wasmReady;
}

async function cachedFetch(cache, url, onBytes) {
  let response = await cache.match(url);
  if (!response) {
    const fresh = await fetch(url);
    if (!fresh.ok) throw new Error(`${url}: HTTP ${fresh.status}`);
    await cache.put(url, fresh.clone());
    response = fresh;
  }
  const reader = response.body.getReader();
  const chunks = [];
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

async function load(backend) {
  await wasm(backend);
  const cache = await caches.open(CACHE);
  const manifestBytes = await cachedFetch(cache, MODEL + 'manifest.json', () => {});
  const manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
  const total = Object.values(manifest.files).reduce((n, f) => n + f.size, 0);
  let loaded = 0;
  const files = { 'manifest.json': manifestBytes };
  for (const name of Object.keys(manifest.files)) {
    files[name] = await cachedFetch(cache, MODEL + name, (n) => {
      loaded += n;
      postMessage({ type: 'progress', loaded, total });
    });
  }
  try {
    grounder = await wasm_bindgen.WebGrounder.load(files, { backend });
  } catch (e) {
    // A corrupt cached copy must not stick: drop it so the next visit fetches afresh.
    await caches.delete(CACHE);
    throw e;
  }
  return { backend: grounder.backend, adapters: grounder.adapters };
}

// Trains in this worker; progress goes to the page as it comes ({ type: 'tune', ... }), the
// adapter zip included at each save. A 'stop' message ends it after the step in progress.
async function tune({ examples, options }) {
  training = true;
  stopAsked = false;
  try {
    const out = await grounder.fineTune(examples, options, (p) => {
      postMessage({ type: 'tune', ...p });
      return !stopAsked;
    });
    const adapter = grounder.exportAdapter({ zip: true });
    return { ...out, adapter, stopped: stopAsked };
  } finally {
    training = false;
  }
}

onmessage = async ({ data }) => {
  const { id, type } = data;
  try {
    let result;
    if (type === 'stop') {
      stopAsked = true;
      postMessage({ id, result: { stopping: training } });
      return;
    }
    if (training && type !== 'preview') throw new Error('the model is training: wait for it, or stop it');
    if (type === 'load') result = await load(data.backend);
    else if (type === 'preview') {
      await wasm();
      const p = wasm_bindgen.preview(data.bytes);
      result = { width: p.width, height: p.height, rgba: p.rgba };
    } else if (type === 'ground') {
      if (!grounder) throw new Error('the model is still loading');
      result = await grounder.ground(data.bytes, data.phrase);
    } else if (type === 'adapter') {
      if (!grounder) throw new Error('the model is still loading');
      grounder.useAdapter(data.name || undefined);
      result = { adapter: grounder.adapter };
    } else if (type === 'tune') {
      if (!grounder) throw new Error('the model is still loading');
      result = await tune(data);
    } else if (type === 'loadAdapter') {
      if (!grounder) throw new Error('the model is still loading');
      grounder.loadAdapter(data.name, data.zip);
      result = { adapter: grounder.adapter };
    } else throw new Error(`unknown request ${type}`);
    postMessage({ id, result });
  } catch (e) {
    postMessage({ id, error: e && e.message ? e.message : String(e) });
  }
};
