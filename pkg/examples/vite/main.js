// The npm package in a Vite app: load the bundle once, ground a phrase in the picked film.
import { Grounder } from 'medground';

const out = document.getElementById('out');
const grounder = await Grounder.load(new URL('model/', location.href));
out.textContent = `ready (${grounder.backend})`;
document.body.dataset.ready = grounder.backend;

document.getElementById('file').addEventListener('change', async (e) => {
  const bytes = new Uint8Array(await e.target.files[0].arrayBuffer());
  try {
    const a = await grounder.ground(bytes, document.getElementById('phrase').value);
    out.textContent = JSON.stringify(a);
    out.dataset.answer = JSON.stringify(a);
  } catch (err) {
    out.textContent = `error: ${err.message}`;
  }
});
