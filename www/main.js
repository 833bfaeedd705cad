// The page: picks an image, asks the worker (which runs the model) and draws the answer.
const $ = (id) => document.getElementById(id);
const worker = new Worker('worker.js');
const canvas = $('view');
const ctx = canvas.getContext('2d');
let image = null; // { bytes: Uint8Array, name }
let preview = null; // ImageData of the decoded film
let ready = false;
let pending = new Map();
let nextId = 1;

function ask(type, payload, transfer = []) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, type, ...payload }, transfer);
  });
}

worker.onmessage = ({ data }) => {
  if (data.type === 'progress') {
    $('download').value = data.loaded / Math.max(data.total, 1);
    $('state').textContent = `downloading the model… ${(data.loaded / 1e6).toFixed(1)} / ${(data.total / 1e6).toFixed(1)} MB`;
    return;
  }
  const p = pending.get(data.id);
  if (!p) return;
  pending.delete(data.id);
  if (data.error) p.reject(new Error(data.error)); else p.resolve(data.result);
};

function showError(message) {
  $('error').textContent = message;
}

function draw(answer) {
  if (!preview) return;
  canvas.width = preview.width;
  canvas.height = preview.height;
  ctx.putImageData(preview, 0, 0);
  if (!answer) return;
  const [x1, y1, x2, y2] = answer.box;
  const t = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 250));
  ctx.lineWidth = t;
  ctx.strokeStyle = '#ff3b3b';
  ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
  ctx.font = `${Math.max(12, 5 * t)}px system-ui, sans-serif`;
  ctx.fillStyle = '#ff3b3b';
  ctx.fillText(answer.phrase, x1 + t, Math.max(y1 - 2 * t, 5 * t));
  canvas.dataset.box = JSON.stringify(answer.box);
}

async function setImage(bytes, name) {
  showError('');
  $('result').textContent = '';
  delete canvas.dataset.box;
  try {
    const p = await ask('preview', { bytes });
    preview = new ImageData(new Uint8ClampedArray(p.rgba), p.width, p.height);
    image = { bytes, name };
    draw(null);
    canvas.dataset.image = name;
  } catch (e) {
    image = null;
    preview = null;
    showError(`${name}: this file is not an image medground can read (${e.message}).`);
  }
  $('go').disabled = !(ready && image);
}

async function loadFile(file) {
  await setImage(new Uint8Array(await file.arrayBuffer()), file.name);
}

$('file').addEventListener('change', (e) => e.target.files[0] && loadFile(e.target.files[0]));
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  if (e.dataTransfer.files[0]) loadFile(e.dataTransfer.files[0]);
});
for (const b of document.querySelectorAll('[data-sample]')) {
  b.addEventListener('click', async () => {
    const r = await fetch(b.dataset.sample);
    await setImage(new Uint8Array(await r.arrayBuffer()), b.dataset.sample.split('/').pop());
  });
}

$('ask').addEventListener('submit', async (e) => {
  e.preventDefault();
  showError('');
  const phrase = $('phrase').value;
  if (!image) return showError('Choose an image first.');
  $('go').disabled = true;
  try {
    const a = await ask('ground', { bytes: image.bytes, phrase });
    draw({ ...a, phrase });
    $('result').textContent =
      `${a.text} — confidence ${(a.confidence * 100).toFixed(0)}%, ${a.ms.toFixed(0)} ms on ${a.backend === 'webgpu' ? 'WebGPU' : 'the CPU'}`;
    canvas.dataset.answer = JSON.stringify(a);
  } catch (err) {
    showError(err.message);
  } finally {
    $('go').disabled = false;
  }
});

(async () => {
  const params = new URLSearchParams(location.search);
  try {
    const info = await ask('load', { backend: params.get('backend') || 'auto' });
    ready = true;
    $('download').hidden = true;
    $('state').textContent = `model ready (${info.backend === 'webgpu' ? 'WebGPU' : 'CPU, no WebGPU adapter'})`;
    document.body.dataset.backend = info.backend;
    $('go').disabled = !image;
  } catch (e) {
    $('state').textContent = 'the model could not be loaded';
    showError(e.message);
  }
})();
