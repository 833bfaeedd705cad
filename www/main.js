// The page: picks an image, asks the worker (which runs the model) and draws the answer. The
// Teach panel (teach.js) trains an adapter on the user's labelled films through the same worker.
import { teach } from './teach.js';

const $ = (id) => document.getElementById(id);
const worker = new Worker('worker.js', { type: 'module' });
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
  if (data.type === 'tune') {
    page.onTune?.(data);
    return;
  }
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

const COLOURS = ['#ff3b3b', '#3bd1ff', '#ffd23b', '#7dff5a', '#ff7bf0', '#ff9a3b'];
let answers = []; // the last question's answers, each { phrase, colour, box, ... }
let wl = { w: 256, l: 128 }; // display window / level on the 8-bit preview

// The preview under the display window: grey values v -> (v - (l - w/2)) / w, clamped.
function windowed() {
  if (wl.w === 256 && wl.l === 128) return preview;
  const src = preview.data;
  const out = new ImageData(preview.width, preview.height);
  const lut = new Uint8ClampedArray(256);
  for (let v = 0; v < 256; v++) lut[v] = ((v - (wl.l - wl.w / 2)) / wl.w) * 255;
  for (let i = 0; i < src.length; i += 4) {
    out.data[i] = lut[src[i]]; out.data[i + 1] = lut[src[i + 1]]; out.data[i + 2] = lut[src[i + 2]];
    out.data[i + 3] = 255;
  }
  return out;
}

function draw() {
  if (!preview) return;
  canvas.width = preview.width;
  canvas.height = preview.height;
  ctx.putImageData(windowed(), 0, 0);
  const t = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 250));
  ctx.lineWidth = t;
  ctx.font = `${Math.max(12, 5 * t)}px system-ui, sans-serif`;
  for (const [k, a] of answers.entries()) {
    const [x1, y1, x2, y2] = a.box;
    ctx.strokeStyle = ctx.fillStyle = a.colour;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.fillText(`${k + 1}`, x1 + t, Math.max(y1 - 2 * t, 5 * t));
  }
  if (page.overlay) { // the box being labelled in the Teach panel, dashed
    const [x1, y1, x2, y2] = page.overlay;
    ctx.strokeStyle = '#7dff5a';
    ctx.setLineDash([3 * t, 2 * t]);
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.setLineDash([]);
  }
  canvas.setAttribute('aria-label', answers.length
    ? `the film with ${answers.length} box${answers.length > 1 ? 'es' : ''}: ${answers.map((a) => `${a.phrase} at x ${a.box[0].toFixed(0)} to ${a.box[2].toFixed(0)}, y ${a.box[1].toFixed(0)} to ${a.box[3].toFixed(0)}`).join('; ')}`
    : `the film ${image ? image.name : ''}`);
}

function setWindow(w, l) {
  wl = { w: Math.min(512, Math.max(8, Math.round(w))), l: Math.min(255, Math.max(0, Math.round(l))) };
  $('win').value = wl.w;
  $('lev').value = wl.l;
  canvas.dataset.window = `${wl.w},${wl.l}`;
  draw();
}
// The window that stretches the film's own range (its 1st to 99th percentile of grey) over the
// screen: MONOCHROME1 is already inverted and the file's VOI window applied by the decoder.
function autoWindow() {
  const d = preview.data;
  const hist = new Uint32Array(256);
  for (let i = 0; i < d.length; i += 4) hist[((d[i] + d[i + 1] + d[i + 2]) / 3) | 0]++;
  const n = d.length / 4;
  let acc = 0, lo = 0, hi = 255;
  for (let v = 0; v < 256; v++) {
    if (acc <= n * 0.01) lo = v;
    acc += hist[v];
    if (acc < n * 0.99) hi = v + 1;
  }
  return [Math.max(8, hi - lo + 1), (lo + hi + 1) / 2];
}
$('auto-wl').addEventListener('click', () => preview && setWindow(...autoWindow()));
$('win').addEventListener('input', () => setWindow(+$('win').value, wl.l));
$('lev').addEventListener('input', () => setWindow(wl.w, +$('lev').value));
for (const b of document.querySelectorAll('[data-wl]')) {
  b.addEventListener('click', () => setWindow(...b.dataset.wl.split(',').map(Number)));
}
// Drag on the film: right/left widens/narrows the window, down/up darkens/brightens; in the
// Teach panel's draw mode a drag draws the box to label instead.
let dragFrom = null;
function filmPoint(e) {
  const r = canvas.getBoundingClientRect();
  const clamp = (v, hi) => Math.min(hi, Math.max(0, v));
  return [clamp((e.clientX - r.left) * canvas.width / r.width, canvas.width), clamp((e.clientY - r.top) * canvas.height / r.height, canvas.height)];
}
canvas.addEventListener('pointerdown', (e) => {
  dragFrom = { x: e.clientX, y: e.clientY, at: filmPoint(e), ...wl };
  canvas.setPointerCapture(e.pointerId);
});
canvas.addEventListener('pointermove', (e) => {
  if (!dragFrom) return;
  if (page.drawing && preview) {
    const [a, b] = [dragFrom.at, filmPoint(e)];
    page.overlay = [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])].map(Math.round);
    draw();
    page.onOverlay?.();
  } else setWindow(dragFrom.w + (e.clientX - dragFrom.x), dragFrom.l + (e.clientY - dragFrom.y) / 2);
});
canvas.addEventListener('pointerup', () => { dragFrom = null; });

function legend() {
  const ol = $('legend');
  ol.replaceChildren(...answers.map((a) => {
    const li = document.createElement('li');
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = a.colour;
    li.append(sw, `${a.phrase}: ${verdict(a)}`);
    return li;
  }));
  $('save').hidden = answers.length === 0;
}

$('save').addEventListener('click', () => {
  canvas.toBlob((blob) => {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `${(image?.name || 'film').replace(/\.[^.]*$/, '')}-medground.png`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }, 'image/png');
});

async function setImage(bytes, name) {
  showError('');
  page.overlay = null;
  $('result').textContent = '';
  answers = [];
  legend();
  delete canvas.dataset.answer;
  try {
    const p = await ask('preview', { bytes });
    preview = new ImageData(new Uint8ClampedArray(p.rgba), p.width, p.height);
    image = { bytes, name };
    setWindow(...autoWindow());
    canvas.dataset.image = name;
    page.onImage?.();
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

// The confidence in words: with a calibrated bundle it is the chance that the box is right
// (IoU >= 0.5 on validation films); without one, only the model's own probability.
// An image outside what the model knows (inDistribution false) gets no confidence at all: the
// calibration was fitted on training-kind films only.
function verdict(a) {
  if (a.inDistribution === false) {
    return 'not a chest film the model knows: this image does not look like the frontal chest films ' +
      'it was trained on, so the box means nothing';
  }
  const c = a.confidence;
  const pct = c > 0.99 ? 'over 99%' : c < 0.01 ? 'under 1%' : `${(c * 100).toFixed(0)}%`;
  if (!a.calibrated) return `model probability ${pct} (not calibrated)`;
  const word = c >= 0.7 ? 'likely right' : c >= 0.4 ? 'unsure' : 'likely wrong';
  const unusual = a.oodTypical != null && a.oodScore > a.oodTypical
    ? ' (an unusual film: further from the training films than 99% of validation films are, so trust the figure less)' : '';
  return `${word}: ${pct} of answers this confident were right on synthetic validation films${unusual}`;
}

$('adapter').addEventListener('change', async () => {
  $('go').disabled = $('adapter').disabled = true;
  try {
    const kept = $('adapter').selectedOptions[0]?.dataset.kept;
    if (kept) await ask('loadAdapter', { name: kept, zip: await page.keptAdapter(kept) });
    else await ask('adapter', { name: $('adapter').value });
    answers = [];
    legend();
    draw();
  } catch (err) {
    showError(err.message);
  } finally {
    $('go').disabled = !(ready && image);
    $('adapter').disabled = false;
  }
});

$('ask').addEventListener('submit', async (e) => {
  e.preventDefault();
  showError('');
  const phrases = $('phrase').value.split(/[;\n]/).map((p) => p.trim()).filter(Boolean).slice(0, COLOURS.length);
  if (!image) return showError('Choose an image first.');
  if (!phrases.length) return showError('Type what to find.');
  $('go').disabled = $('adapter').disabled = true;
  answers = [];
  delete canvas.dataset.answer;
  try {
    for (const [k, phrase] of phrases.entries()) {
      const a = await ask('ground', { bytes: image.bytes, phrase });
      answers.push({ ...a, phrase, colour: COLOURS[k] });
      draw();
      legend();
      $('result').textContent = `${answers.length} of ${phrases.length}: ${a.ms.toFixed(0)} ms on ${a.backend === 'webgpu' ? 'WebGPU' : 'the CPU'}`;
    }
    canvas.dataset.answers = JSON.stringify(answers);
    canvas.dataset.answer = JSON.stringify(answers[0]);
  } catch (err) {
    showError(err.message);
  } finally {
    $('go').disabled = $('adapter').disabled = false;
  }
});

// What the Teach panel uses of the page.
const page = {
  ask, draw, showError, canvas,
  get image() { return image; },
  get ready() { return ready; },
  overlay: null, // [x1, y1, x2, y2] in the film's pixels, while labelling
  drawing: false,
  busy(on) { $('go').disabled = on || !(ready && image); $('adapter').disabled = on; },
};
teach(page);

(async () => {
  const params = new URLSearchParams(location.search);
  try {
    const info = await ask('load', { backend: params.get('backend') || 'auto' });
    ready = true;
    $('download').hidden = true;
    $('state').textContent = `model ready (${info.backend === 'webgpu' ? 'WebGPU' : 'CPU, no WebGPU adapter'})`;
    document.body.dataset.backend = info.backend;
    if (info.adapters.length) {
      for (const name of info.adapters) $('adapter').append(new Option(name, name));
      $('adapter-row').hidden = false;
    }
    $('go').disabled = !image;
    page.onReady?.();
  } catch (e) {
    $('state').textContent = 'the model could not be loaded';
    showError(e.message);
  }
})();
