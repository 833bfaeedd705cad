// A static file server on 127.0.0.1, with no dependencies but Node: the demo's (tools/demo.sh
// serves dist/ with it) and the browser tests' (a free port, plus pages served from memory).
//   node tools/serve.mjs DIR [PORT]      serve DIR on http://127.0.0.1:PORT (default 8080)
//   node tools/serve.mjs --probe PORT    exit 0 if PORT is free on 127.0.0.1, 3 if it is taken
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css',
  '.json': 'application/json', '.png': 'image/png', '.jpg': 'image/jpeg', '.dcm': 'application/dicom',
};

/// Serves the files under `root` (and `pages`: path -> HTML from memory) on `port` (0: a free
/// one). Resolves to { server, origin }; rejects with the listen error (EADDRINUSE and so on).
export async function serve(root, pages = {}, port = 0) {
  const server = http.createServer(async (req, res) => {
    let path;
    try {
      path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    } catch {
      res.writeHead(400);
      return res.end();
    }
    if (pages[path] !== undefined) {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end(pages[path]);
    }
    const file = join(root, path.endsWith('/') ? `${path}index.html` : path);
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream', 'content-length': body.length, 'cache-control': 'no-cache' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', ok);
  });
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

function taken(port) {
  return `port ${port} on 127.0.0.1 is taken: stop what uses it, or choose another port (PORT=8081 bash tools/demo.sh)`;
}

async function main(args) {
  if (args[0] === '--probe') {
    const port = Number(args[1]);
    try {
      const { server } = await serve('.', {}, port);
      server.close();
    } catch (e) {
      console.error(e.code === 'EADDRINUSE' ? taken(port) : `cannot listen on 127.0.0.1:${port}: ${e.message}`);
      process.exit(3);
    }
    return;
  }
  const [dir, portArg = '8080'] = args;
  const port = Number(portArg);
  if (!dir || !Number.isInteger(port) || port < 1 || port > 65535) {
    console.error('usage: node tools/serve.mjs DIR [PORT]   (PORT: 1-65535)');
    process.exit(2);
  }
  try {
    const { origin } = await serve(resolve(dir), {}, port);
    console.log(`serving ${dir} on ${origin}/ (Ctrl-C stops)`);
  } catch (e) {
    console.error(e.code === 'EADDRINUSE' ? taken(port) : `cannot listen on 127.0.0.1:${port}: ${e.message}`);
    process.exit(3);
  }
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main(process.argv.slice(2));
}
