// The Teach panel: label films (a box drawn on the film and a phrase, or a JSONL / MS-CXR CSV
// with its images), train a LoRA adapter on them in the worker (fineTune: the native trainer's
// steps), watch the loss and the held-out IoU, stop, resume after a reload; adapters are kept
// in this browser (IndexedDB), listed beside the bundle's, and downloaded as a PEFT zip.
const $ = (id) => document.getElementById(id);

// ---- IndexedDB: 'adapters' (by name: { name, zip, steps, valIoU, date }) and 'run' (the
// training in progress: examples, options, the last saved adapter and its step).
function db() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open('medground', 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore('adapters', { keyPath: 'name' });
      req.result.createObjectStore('run');
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}
async function store(name, mode, fn) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const tx = d.transaction(name, mode);
    const req = fn(tx.objectStore(name));
    tx.oncomplete = () => resolve(req?.result);
    tx.onerror = () => reject(tx.error);
  });
}
const kept = {
  all: () => store('adapters', 'readonly', (s) => s.getAll()),
  get: (name) => store('adapters', 'readonly', (s) => s.get(name)),
  put: (a) => store('adapters', 'readwrite', (s) => s.put(a)),
};
const run = {
  get: () => store('run', 'readonly', (s) => s.get('current')),
  put: (r) => store('run', 'readwrite', (s) => s.put(r, 'current')),
  clear: () => store('run', 'readwrite', (s) => s.delete('current')),
};

// ---- Labelled films from files: a JSONL (image, phrase, box [x, y, w, h], optional split,
// width, height) or an MS-CXR CSV (path, label_text, x, y, w, h, image_width, image_height),
// with the images among the chosen files (matched by name; MS-CXR's .dcm may be a .jpg/.png).
function csvRows(text) {
  const rows = [];
  let row = [], cell = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell); cell = ''; } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell); rows.push(row); row = []; cell = '';
    } else cell += c;
  }
  if (cell || row.length) { row.push(cell); rows.push(row); }
  const [head, ...body] = rows.filter((r) => r.some((v) => v.trim()));
  return body.map((r) => Object.fromEntries(head.map((h, k) => [h.trim(), r[k]])));
}

function labelled(text, isCsv) {
  if (isCsv) {
    return csvRows(text).map((r) => ({
      image: r.path, phrase: r.label_text, xywh: [+r.x, +r.y, +r.w, +r.h],
      size: r.image_width ? [+r.image_width, +r.image_height] : null, val: r.split === 'val' || r.split === 'test',
    }));
  }
  return text.split('\n').filter((l) => l.trim()).map((l, k) => {
    let r;
    try { r = JSON.parse(l); } catch { throw new Error(`line ${k + 1} is not JSON`); }
    return { image: r.image, phrase: r.phrase, xywh: r.box, size: r.width ? [r.width, r.height] : null, val: r.split === 'val' };
  });
}

export function teach(page) {
  let examples = []; // { bytes, name, phrase, box: [x1, y1, x2, y2], val }
  let curve = { loss: [], iou: [] };
  let last = null; // the adapter zip of the last training, to download
  const state = (text) => { $('tune-state').textContent = text; };
  const panel = $('teach');

  // Every fifth example is held out when none is marked.
  function split() {
    const marked = examples.some((e) => e.val);
    return examples.map((e, k) => (marked ? e.val : examples.length >= 5 && k % 5 === 4));
  }
  function listed() {
    const held = split().filter(Boolean).length;
    $('examples').textContent = examples.length
      ? `${examples.length} example${examples.length > 1 ? 's' : ''}, ${held} held out to measure IoU${held ? '' : ' (5 or more give a validation set)'}`
      : 'No examples yet.';
    panel.dataset.examples = examples.length;
    panel.dataset.held = held;
    $('train').disabled = !(page.ready && examples.length);
  }

  // ---- labelling on the film
  $('draw').addEventListener('change', () => {
    page.drawing = $('draw').checked;
    page.canvas.classList.toggle('drawing', page.drawing);
  });
  const canAdd = () => { $('add').disabled = !(page.image && page.overlay && $('teach-phrase').value.trim()); };
  page.onOverlay = canAdd;
  page.onImage = canAdd;
  $('teach-phrase').addEventListener('input', canAdd);
  $('add').addEventListener('click', () => {
    const [x1, y1, x2, y2] = page.overlay;
    if (x2 - x1 < 2 || y2 - y1 < 2) return page.showError('Draw a larger box.');
    examples.push({ bytes: page.image.bytes, name: page.image.name, phrase: $('teach-phrase').value.trim(), box: page.overlay, val: false });
    panel.dataset.lastBox = JSON.stringify(page.overlay);
    page.overlay = null;
    page.draw();
    canAdd();
    listed();
  });

  $('labelled').addEventListener('change', async (e) => {
    page.showError('');
    const files = [...e.target.files];
    const table = files.find((f) => /\.(jsonl|csv)$/i.test(f.name));
    if (!table) return page.showError('Choose a .jsonl or MS-CXR .csv together with its images.');
    const byName = new Map(files.map((f) => [f.name.toLowerCase(), f]));
    const stem = (n) => n.split('/').pop().toLowerCase().replace(/\.[^.]*$/, '');
    const byStem = new Map(files.map((f) => [stem(f.name), f]));
    try {
      const rows = labelled(await table.text(), /\.csv$/i.test(table.name));
      const decoded = new Map();
      let missing = 0;
      for (const r of rows) {
        const file = byName.get(String(r.image).split('/').pop().toLowerCase()) ?? byStem.get(stem(String(r.image)));
        if (!file) { missing++; continue; }
        if (!decoded.has(file.name)) {
          const bytes = new Uint8Array(await file.arrayBuffer());
          const p = await page.ask('preview', { bytes });
          decoded.set(file.name, { bytes, width: p.width, height: p.height });
        }
        const img = decoded.get(file.name);
        // Boxes given for another size of the same film (MS-CXR's DICOM vs a smaller JPEG) scale.
        const [sx, sy] = r.size ? [img.width / r.size[0], img.height / r.size[1]] : [1, 1];
        const [x, y, w, h] = r.xywh.map(Number);
        const box = [x * sx, y * sy, (x + w) * sx, (y + h) * sy].map((v, k) => Math.min(k % 2 ? img.height : img.width, Math.max(0, v)));
        if (!(box[2] > box[0] && box[3] > box[1]) || !r.phrase) throw new Error(`a row for ${r.image} has no phrase or an empty box`);
        examples.push({ bytes: img.bytes, name: file.name, phrase: r.phrase, box, val: r.val });
      }
      state(missing ? `${missing} row${missing > 1 ? 's' : ''} named images not among the chosen files: left out` : '');
    } catch (err) {
      page.showError(`${table.name}: ${err.message}`);
    }
    listed();
  });
  $('clear').addEventListener('click', () => { examples = []; listed(); });

  // ---- the curve: loss (line, scaled to its first value) and held-out IoU (dots, 0 to 1)
  function plot() {
    const c = $('curve');
    const g = c.getContext('2d');
    g.clearRect(0, 0, c.width, c.height);
    const steps = +panel.dataset.steps || 1;
    const x = (s) => 4 + (c.width - 8) * s / steps;
    const y = (v) => c.height - 4 - (c.height - 8) * Math.min(1, Math.max(0, v));
    const top = Math.max(...curve.loss.map(([, l]) => l), 1e-9);
    g.strokeStyle = '#3bd1ff';
    g.beginPath();
    curve.loss.forEach(([s, l], k) => (k ? g.lineTo(x(s), y(l / top)) : g.moveTo(x(s), y(l / top))));
    g.stroke();
    g.fillStyle = '#ffd23b';
    for (const [s, v] of curve.iou) g.fillRect(x(s) - 3, y(v) - 3, 6, 6);
    g.font = '11px system-ui, sans-serif';
    g.fillStyle = '#3bd1ff';
    g.fillText('loss (top: its highest)', 8, 13);
    g.fillStyle = '#ffd23b';
    g.fillText('held-out IoU (0 to 1)', 150, 13);
    g.fillStyle = '#888';
    g.fillText(`step ${steps}`, c.width - 52, c.height - 6);
  }

  // The curve up to `step` (what a resume from that save will have seen).
  // `below`: the IoU at `step` left out (a resume from that save measures it again).
  const trim = (c, step, below = false) => ({ loss: c.loss.filter(([s]) => s <= step), iou: c.iou.filter(([s]) => s < step || (!below && s === step)) });

  function progress(p) {
    if (p.loss !== undefined) curve.loss.push([p.step, p.loss]);
    if (p.valIoU !== undefined) curve.iou.push([p.step, p.valIoU]);
    panel.dataset.step = p.step;
    panel.dataset.valIou = JSON.stringify(curve.iou);
    $('tune-progress').value = p.step / p.steps;
    const iou = curve.iou.length ? `, held-out IoU ${curve.iou[0][1].toFixed(3)} at the start, ${curve.iou.at(-1)[1].toFixed(3)} now` : '';
    state(`step ${p.step} of ${p.steps}${p.loss !== undefined ? `: loss ${p.loss.toFixed(4)}` : ''}${iou}`);
    plot();
    if (p.adapter) run.get().then((r) => r && run.put({ ...r, adapter: p.adapter, step: p.step, curve: trim(curve, p.step) })).catch(() => {});
  }
  page.onTune = progress;

  async function train(saved) {
    page.showError('');
    const held = split();
    const asExample = (e) => ({ image: e.bytes, phrase: e.phrase, box: e.box });
    const options = saved?.options ?? {
      steps: Math.max(1, Math.round(+$('steps').value || 100)),
      batch: 4,
      saveEvery: 5,
    };
    const name = saved?.name ?? ($('tune-name').value.trim() || 'my-adapter');
    if (saved) {
      $('steps').value = options.steps;
      $('tune-name').value = name;
    }
    const set = saved?.examples ?? examples;
    const hold = saved ? set.map((e) => e.held) : held;
    const train = set.filter((_, k) => !hold[k]).map(asExample);
    const validation = set.filter((_, k) => hold[k]).map(asExample);
    if (!saved) await run.put({ name, options, examples: set.map((e, k) => ({ ...e, held: held[k] })), step: 0 });
    else examples = set.map((e) => ({ ...e, val: e.held }));
    listed();
    // A resumed run's curve goes on from the save (its validation at the resumed step repeats).
    curve = saved?.curve ? trim(saved.curve, saved.step, true) : { loss: [], iou: [] };
    panel.dataset.steps = options.steps;
    panel.dataset.state = 'training';
    for (const b of ['train', 'resume', 'add', 'clear']) $(b).disabled = true;
    $('stop').disabled = false;
    page.busy(true);
    try {
      const resume = saved?.adapter ? { adapter: saved.adapter, step: saved.step } : undefined;
      const out = await page.ask('tune', {
        examples: train,
        options: { ...options, name, ...(validation.length ? { validation } : {}), ...(resume ? { resume } : {}) },
      });
      last = { name, zip: out.adapter };
      await kept.put({ name, zip: out.adapter, steps: out.steps, valIoU: out.valIoU, date: new Date().toISOString() });
      await run.clear();
      await listAdapters(name);
      panel.dataset.state = out.stopped ? 'stopped' : 'done';
      const iou = curve.iou.length > 1 ? `; held-out IoU ${curve.iou[0][1].toFixed(3)} -> ${curve.iou.at(-1)[1].toFixed(3)}` : '';
      state(`${out.stopped ? 'stopped' : 'done'} after step ${out.steps}: adapter "${name}" in use and kept in this browser${iou}`);
      $('download-adapter').hidden = false;
    } catch (err) {
      panel.dataset.state = 'failed';
      page.showError(`training: ${err.message}`);
    } finally {
      $('stop').disabled = true;
      $('resume').hidden = true;
      $('clear').disabled = false;
      canAdd();
      listed();
      page.busy(false);
    }
  }
  $('train').addEventListener('click', () => train(null));
  $('stop').addEventListener('click', () => { $('stop').disabled = true; page.ask('stop', {}); });
  $('resume').addEventListener('click', async () => train(await run.get()));

  // ---- kept adapters: in the page's adapter list, and the download
  async function listAdapters(select) {
    const list = $('adapter');
    for (const o of [...list.querySelectorAll('option[data-kept]')]) o.remove();
    for (const a of await kept.all()) {
      const o = new Option(`${a.name} (trained here, ${a.steps} steps)`, `kept:${a.name}`);
      o.dataset.kept = a.name;
      list.append(o);
    }
    $('adapter-row').hidden = list.options.length < 2;
    if (select) list.value = `kept:${select}`;
  }
  page.keptAdapter = async (name) => (await kept.get(name))?.zip;
  $('download-adapter').addEventListener('click', async () => {
    const chosen = $('adapter').selectedOptions[0]?.dataset.kept;
    const a = chosen ? await kept.get(chosen) : last;
    if (!a) return page.showError('Train or choose an adapter first.');
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([a.zip], { type: 'application/zip' }));
    link.download = `${a.name}.zip`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  });

  page.onReady = async () => {
    listed();
    try {
      await listAdapters();
      const r = await run.get();
      if (r) {
        $('resume').hidden = false;
        $('resume').disabled = false;
        $('resume').textContent = r.step ? `Resume "${r.name}" from step ${r.step} of ${r.options.steps}` : `Restart "${r.name}" (${r.options.steps} steps)`;
        panel.dataset.saved = r.step;
        panel.open = true;
      }
    } catch (err) {
      state(`this browser keeps no adapters here (${err.message})`);
    }
  };
}
