#!/usr/bin/env node
// Hot-path cost of the pool.maxPending bound: wrk against two tidegates over the same
// nginx upstream (1 KiB static body), one as built and one from a copy of dist/ with
// the bound's per-request work taken out (the full() check, acquire and release),
// interleaved A B A B A B in one run, `wrk -t2 -c64 -d5s` each.
//   node scripts/measure-maxpending-ab.mjs [rounds] [workers]   (after npm run build; needs nginx and wrk)
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { startedPort } from './lib/started-port.mjs';

const ROUNDS = Number(process.argv[2] ?? 3);
const WORKERS = Number(process.argv[3] ?? 2);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(join(tmpdir(), 'tg-ab-'));

function freePort() {
  return new Promise((r) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => r(p));
    });
  });
}

// B: dist/ without the bound. Each edit must apply exactly, or the comparison is void.
const bDir = join(dir, 'nocheck');
mkdirSync(bDir);
cpSync(join(root, 'dist'), join(bDir, 'dist'), { recursive: true });
symlinkSync(join(root, 'node_modules'), join(bDir, 'node_modules'));
cpSync(join(root, 'package.json'), join(bDir, 'package.json'));
const exFile = join(bDir, 'dist/src/worker/exchange.js');
let ex = readFileSync(exFile, 'utf8');
for (const [from, to] of [
  ['if (up.full(ep)) {', 'if (false) {'],
  ['up.acquire(ep);', ''],
  ['this.holding = ep;', ''],
]) {
  if (ex.split(from).length !== 2) throw new Error(`cannot patch exchange.js: "${from}" not found exactly once`);
  ex = ex.replace(from, to);
}
writeFileSync(exFile, ex);

const ngxPort = await freePort();
const ngx = join(dir, 'nginx');
mkdirSync(join(ngx, 'logs'), { recursive: true });
writeFileSync(join(ngx, 'body'), 'x'.repeat(1024));
writeFileSync(
  join(ngx, 'nginx.conf'),
  `worker_processes 1; error_log ${ngx}/logs/error.log; pid ${ngx}/nginx.pid; daemon off;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path ${ngx}/tmp; proxy_temp_path ${ngx}/tmp; fastcgi_temp_path ${ngx}/tmp; uwsgi_temp_path ${ngx}/tmp; scgi_temp_path ${ngx}/tmp;
  server { listen 127.0.0.1:${ngxPort}; location / { default_type text/plain; alias ${ngx}/body; } } }\n`,
);
const nginx = spawn('nginx', ['-p', ngx, '-c', join(ngx, 'nginx.conf')], { stdio: 'inherit' });

async function gateway(base) {
  const cfg = join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(cfg, `listen: { host: 127.0.0.1, port: 0 }\nworkers: ${WORKERS}\nadmin: { port: 0 }\nupstreams: { a: { discovery: { type: static, endpoints: ["127.0.0.1:${ngxPort}"] } } }\nroutes: [{ upstream: a }]\n`);
  const p = spawn(process.execPath, [join(base, 'dist/src/cli.js'), '--config', cfg], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await startedPort(p);
  return { p, port };
}

const a = await gateway(root);
const b = await gateway(bDir);
const wrk = (port) => {
  const out = execFileSync('wrk', ['-t2', '-c64', '-d5s', `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]);
};
wrk(a.port); // warm-up (JIT, upstream connections), not reported
wrk(b.port);
const res = { withCheck: [], withoutCheck: [] };
for (let i = 0; i < ROUNDS; i++) {
  res.withCheck.push(wrk(a.port));
  res.withoutCheck.push(wrk(b.port));
}
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
console.log(JSON.stringify({ workers: WORKERS, command: 'wrk -t2 -c64 -d5s', ...res, medianWith: median(res.withCheck), medianWithout: median(res.withoutCheck), ratio: +(median(res.withCheck) / median(res.withoutCheck)).toFixed(3) }));
for (const g of [a, b]) g.p.kill('SIGTERM');
nginx.kill('SIGQUIT');
await Promise.all([a, b].map((g) => new Promise((r) => g.p.once('exit', r))));
