#!/usr/bin/env node
// Overload against a stalled upstream (accepts, reads, never answers): C concurrent
// clients (default 50), each on its own keep-alive connection, send back to back for
// D seconds (default 20) through one tidegate with pool.connections 2 and
// pool.maxPending 10. connections + maxPending requests stay held; every other one
// must be answered 503 TG_ERR_UPSTREAM_OVERLOADED at once. Prints the refusal latency
// (median / p99 / max), the refusals per second, what the upstream saw, and the
// gateway's RSS before, during and after (it must stay flat).
//   node scripts/measure-overload.mjs [clients] [seconds] [workers]   (after npm run build)
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from 'undici';
import { startedPort } from './lib/started-port.mjs';

const CLIENTS = Number(process.argv[2] ?? 50);
const SECONDS = Number(process.argv[3] ?? 20);
const WORKERS = Number(process.argv[4] ?? 1);
const CONNECTIONS = 2;
const MAX_PENDING = 10;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const seen = { connections: 0, requests: 0 };
const held = new Set();
const up = createServer((s) => {
  seen.connections++;
  held.add(s);
  s.on('close', () => held.delete(s));
  s.on('error', () => {});
  s.on('data', (d) => (seen.requests += d.toString('latin1').split('\r\n\r\n').length - 1));
});
await new Promise((r) => up.listen(0, '127.0.0.1', r));
const dir = mkdtempSync(join(tmpdir(), 'tg-overload-'));
const cfg = join(dir, 'c.yaml');
writeFileSync(
  cfg,
  `listen: { host: 127.0.0.1, port: 0 }\nworkers: ${WORKERS}\nadmin: { port: 0 }\n` +
    `upstreams: { a: { discovery: { type: static, endpoints: ["127.0.0.1:${up.address().port}"] }, pool: { connections: ${CONNECTIONS}, maxPending: ${MAX_PENDING} }, timeouts: { response: 120s } } }\n` +
    `routes: [{ upstream: a }]\n`,
);
const gw = spawn(process.execPath, [join(root, 'dist/src/cli.js'), '--config', cfg], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await startedPort(gw);
await sleep(1000);
const rssIdle = rss(gw.pid);

const lat = [];
let refused = 0;
let other = 0;
let stop = false;
const clients = Array.from({ length: CLIENTS }, () => new Client(`http://127.0.0.1:${port}`, { headersTimeout: 0, bodyTimeout: 0 }));
const loops = clients.map(async (c) => {
  while (!stop) {
    const t0 = performance.now();
    try {
      const r = await c.request({ path: '/', method: 'GET' });
      await r.body.dump();
      if (r.statusCode === 503) {
        refused++;
        lat.push(performance.now() - t0);
      } else other++;
    } catch {
      if (!stop) other++;
    }
  }
});
const rssSamples = [];
const t0 = Date.now();
for (let s = 1; s <= SECONDS; s++) {
  await sleep(t0 + s * 1000 - Date.now());
  rssSamples.push(+rss(gw.pid).toFixed(1));
}
stop = true;
const heldUpstream = { ...seen };
// Release the held requests: the upstream goes away, they fail, loops end.
for (const s of held) s.destroy();
up.close();
await Promise.race([Promise.all(loops), sleep(10_000)]);
await sleep(1000);
const rssAfter = rss(gw.pid);
for (const c of clients) c.destroy().catch(() => {});
lat.sort((a, b) => a - b);
const q = (p) => +(lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN).toFixed(2);
console.log(
  JSON.stringify({
    clients: CLIENTS,
    seconds: SECONDS,
    workers: WORKERS,
    connections: CONNECTIONS,
    maxPending: MAX_PENDING,
    refused,
    refusedPerSecond: Math.round(refused / SECONDS),
    otherAnswers: other,
    refusalMs: { median: q(0.5), p99: q(0.99), max: +(lat[lat.length - 1] ?? NaN).toFixed(2) },
    upstreamSaw: heldUpstream,
    rssMiB: { idle: +rssIdle.toFixed(1), first: rssSamples[0], mid: rssSamples[Math.floor(rssSamples.length / 2)], last: rssSamples[rssSamples.length - 1], max: Math.max(...rssSamples), afterRelease: +rssAfter.toFixed(1) },
  }),
);
gw.kill('SIGTERM');
await new Promise((r) => gw.once('exit', r));
