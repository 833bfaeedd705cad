// Runs the model off the main thread through the npm package's loader (pkg/index.js, copied to
// dist/pkg/ by tools/build-web.sh): one fetch with progress, one adapter probe, one manifest
// reading for the page and for the package. The bundle is kept in the Cache API for offline
// visits; the WebGPU build of the wasm is fetched only when WebGPU grants an adapter, the
// CPU-only build (a third of the size) otherwise.
import { Grounder, initWasm, preview } from './pkg/index.js';

const MODEL = new URL('./model/', import.meta.url).href;
const CACHE = 'medground-model-v1';
let grounder = null;
let training = false; // fineTune holds the model: other model requests wait for it to end
let stopAsked = false;

async function load(backend) {
  grounder = await Grounder.load(MODEL, {
    backend,
    cache: CACHE,
    onProgress: (loaded, total) => postMessage({ type: 'progress', loaded, total }),
  });
  return { backend: grounder.backend, adapters: grounder.adapters };
}

// Trains in this worker; progress goes to the page as it comes ({ type: 'tune', ... }), the
// adapter zip included at each save. A 'stop' message ends it after the step in progress.
async function tune({ examples, options }) {
  training = true;
  stopAsked = false;
  try {
    const out = await grounder.fineTune(examples, {
      ...options,
      onProgress: (p) => {
        postMessage({ type: 'tune', ...p });
        return !stopAsked;
      },
    });
    const adapter = await grounder.exportAdapter({ zip: true });
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
      if (!grounder) await initWasm(undefined, 'auto');
      const p = preview(data.bytes);
      result = { width: p.width, height: p.height, rgba: p.rgba };
    } else if (!grounder) throw new Error('the model is still loading');
    else if (type === 'ground') result = await grounder.ground(data.bytes, data.phrase);
    else if (type === 'adapter') {
      await grounder.useAdapter(data.name || null);
      result = { adapter: grounder.adapter };
    } else if (type === 'tune') result = await tune(data);
    else if (type === 'loadAdapter') {
      await grounder.loadAdapter(data.name, data.zip);
      result = { adapter: grounder.adapter };
    } else throw new Error(`unknown request ${type}`);
    postMessage({ id, result });
  } catch (e) {
    postMessage({ id, error: e && e.message ? e.message : String(e) });
  }
};
