// The cache scenario's origin, its own process: /obj/<i> answers a body of 1–16 KiB
// (fixed per i) with `Cache-Control: max-age=3600`; /slow/<name> the same after 300 ms;
// /_count reports how many requests it served (what the hit ratio is computed from, the
// same way for every peer).
import { createServer } from 'node:http';
import { objectSize } from './objects.js';

const port = Number(process.argv[2]);
let served = 0;
const perPath = new Map<string, number>();

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (url === '/_count') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ served, slow: Object.fromEntries([...perPath].filter(([p]) => p.startsWith('/slow/'))) }));
    return;
  }
  served++;
  perPath.set(url, (perPath.get(url) ?? 0) + 1);
  const i = Number(url.slice(url.lastIndexOf('/') + 1)) || 0;
  const body = Buffer.alloc(objectSize(i), 97 + (i % 26));
  const send = (): void => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length, 'cache-control': 'max-age=3600' });
    res.end(body);
  };
  if (url.startsWith('/slow/')) setTimeout(send, 300);
  else send();
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
