#!/usr/bin/env node
// Measures the gateway's RSS with N idle keep-alive client connections (default
// 1000): each connection makes one request, then stays open and idle. uWS closes
// idle HTTP connections after ~10 s, so the reading is taken right after they open.
//   node scripts/measure-idle-rss.mjs [connections] [workers]   (after npm run build)
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startedPort } from './lib/started-port.mjs';

const N = Number(process.argv[2] ?? 1000);
const WORKERS = Number(process.argv[3] ?? 2);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

const up = createServer((req, res) => res.end('ok'));
await new Promise((r) => up.listen(0, '127.0.0.1', r));
const dir = mkdtempSync(join(tmpdir(), 'tg-idle-'));
const cfg = join(dir, 'c.yaml');
writeFileSync(cfg, `listen: { host: 127.0.0.1, port: 0 }\nworkers: ${WORKERS}\nadmin: { port: 0 }\nupstreams: { a: { discovery: { type: static, endpoints: ["127.0.0.1:${up.address().port}"] } } }\nroutes: [{ upstream: a }]\n`);
const gw = spawn(process.execPath, [join(root, 'dist/src/cli.js'), '--config', cfg], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await startedPort(gw);
await new Promise((r) => setTimeout(r, 500));
const before = rss(gw.pid);
const sockets = [];
let answered = 0;
for (let i = 0; i < N; i++) {
  const s = connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.once('data', () => answered++);
  s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  sockets.push(s);
  if (i % 100 === 99) await new Promise((r) => setTimeout(r, 20));
}
while (answered < N) await new Promise((r) => setTimeout(r, 20));
await new Promise((r) => setTimeout(r, 500));
const after = rss(gw.pid);
console.log(JSON.stringify({ connections: N, workers: WORKERS, rssBeforeMiB: +before.toFixed(1), rssWithIdleMiB: +after.toFixed(1), perConnectionKiB: +(((after - before) * 1024) / N).toFixed(2) }));
for (const s of sockets) s.destroy();
gw.kill('SIGTERM');
await new Promise((r) => gw.once('exit', r));
up.close();
