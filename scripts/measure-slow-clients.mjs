#!/usr/bin/env node
// Slow clients (slowloris) beside normal traffic. A swarm process holds N connections
// (default 2000) that each send one byte of a request head every I ms (default 3000),
// reconnecting when the gateway closes them; meanwhile a normal client (8 keep-alive
// connections, each sending back to back with a 5 ms pause) measures latency through
// the same tidegate (2 workers). Phases: normal alone, normal + swarm, normal alone
// again (so the noise of this shared host shows), S seconds each (default 30).
// Prints p50/p99/max per phase, the ratio of p99 with/without the swarm, and how long
// the gateway let a slow connection live (uWS's fixed header/idle timeout).
// NICE=19 runs the swarm at low CPU priority: on a 2-core host the swarm's own work
// (thousands of reconnects in JS) otherwise competes with the gateway and the
// measuring client, which a remote attacker's CPU would not.
//   node scripts/measure-slow-clients.mjs [connections] [seconds] [intervalMs]   (after npm run build)
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from 'undici';
import { startedPort } from './lib/started-port.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const HEAD = 'GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(4000);

if (process.argv[2] === '--swarm') {
  // Child: the slow clients. Runs `seconds`, then prints its statistics.
  const [port, n, intervalMs, seconds] = process.argv.slice(3).map(Number);
  const lifetimes = [];
  let open = 0;
  let opened = 0;
  let serverClosed = 0;
  let stopping = false;
  const sockets = new Set();
  const start = (delay) => {
    const s = connect(port, '127.0.0.1');
    const born = performance.now();
    let i = 0;
    let timer = null;
    sockets.add(s);
    s.on('connect', () => {
      open++;
      opened++;
      const tick = () => {
        if (i < HEAD.length) s.write(HEAD[i++]);
        timer = setTimeout(tick, intervalMs);
      };
      timer = setTimeout(tick, delay);
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (timer) clearTimeout(timer);
      sockets.delete(s);
      if (stopping) return;
      open--;
      serverClosed++;
      lifetimes.push(performance.now() - born);
      // A slowloris reconnects; after a random pause, so the waves of closes (all
      // born together, all timed out together) do not stay one burst forever.
      setTimeout(() => start(Math.random() * intervalMs), Math.random() * intervalMs);
    });
  };
  for (let k = 0; k < n; k++) {
    start(Math.random() * intervalMs);
    if (k % 200 === 199) await sleep(50);
  }
  const t0 = Date.now();
  let minOpen = Infinity;
  let sumOpen = 0;
  let samples = 0;
  while (Date.now() - t0 < seconds * 1000) {
    await sleep(250);
    if (Date.now() - t0 > 2000) {
      minOpen = Math.min(minOpen, open);
      sumOpen += open;
      samples++;
    }
  }
  stopping = true;
  for (const s of sockets) s.destroy();
  lifetimes.sort((a, b) => a - b);
  const q = (p) => Math.round(lifetimes[Math.min(lifetimes.length - 1, Math.floor(p * lifetimes.length))] ?? NaN);
  console.log(JSON.stringify({ opened, serverClosed, openAfter2s: { min: minOpen, mean: Math.round(sumOpen / samples) }, lifetimeMs: { min: Math.round(lifetimes[0] ?? NaN), median: q(0.5), max: Math.round(lifetimes[lifetimes.length - 1] ?? NaN) } }));
  process.exit(0);
}

const N = Number(process.argv[2] ?? 2000);
const SECONDS = Number(process.argv[3] ?? 30);
const INTERVAL = Number(process.argv[4] ?? 3000);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const self = fileURLToPath(import.meta.url);

const up = createServer((req, res) => res.end('ok'));
up.keepAliveTimeout = 60_000;
await new Promise((r) => up.listen(0, '127.0.0.1', r));
const dir = mkdtempSync(join(tmpdir(), 'tg-slow-'));
const cfg = join(dir, 'c.yaml');
writeFileSync(cfg, `listen: { host: 127.0.0.1, port: 0 }\nworkers: 2\nadmin: { port: 0 }\nupstreams: { a: { discovery: { type: static, endpoints: ["127.0.0.1:${up.address().port}"] } } }\nroutes: [{ upstream: a }]\n`);
// Every slow connection is a file descriptor in the gateway: raise the soft limit.
const gw = spawn('sh', ['-c', `ulimit -n ${Math.max(4096, 2 * N + 1024)} 2>/dev/null || ulimit -n $(ulimit -Hn); exec "${process.execPath}" "${join(root, 'dist/src/cli.js')}" --config "${cfg}"`], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await startedPort(gw);
const rss = () => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${gw.pid}/status`, 'utf8'))[1]) / 1024);

async function normalLoad(seconds) {
  const clients = Array.from({ length: 8 }, () => new Client(`http://127.0.0.1:${port}`));
  const lat = [];
  let errors = 0;
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    clients.map(async (c) => {
      while (Date.now() < end) {
        const t0 = performance.now();
        try {
          const r = await c.request({ path: '/', method: 'GET' });
          await r.body.dump();
          if (r.statusCode === 200) lat.push(performance.now() - t0);
          else errors++;
        } catch {
          errors++;
        }
        await sleep(5);
      }
    }),
  );
  await Promise.all(clients.map((c) => c.close()));
  lat.sort((a, b) => a - b);
  const q = (p) => +lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(2);
  return { requests: lat.length, errors, p50Ms: q(0.5), p99Ms: q(0.99), maxMs: +lat[lat.length - 1].toFixed(2) };
}

await sleep(1000);
await normalLoad(3); // warm-up, not reported
const alone = await normalLoad(SECONDS);
const swarmArgs = [self, '--swarm', String(port), String(N), String(INTERVAL), String(SECONDS + 8)];
const nice = process.env.NICE;
const swarm = nice ? spawn('nice', ['-n', nice, process.execPath, ...swarmArgs], { stdio: ['ignore', 'pipe', 'inherit'] }) : spawn(process.execPath, swarmArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
let swarmOut = '';
swarm.stdout.on('data', (d) => (swarmOut += d));
await sleep(6000); // let the swarm connect
const rssWithSwarm = rss();
const withSlow = await normalLoad(SECONDS);
await new Promise((r) => swarm.once('exit', r));
const again = await normalLoad(SECONDS);
console.log(
  JSON.stringify({
    slowConnections: N,
    swarmNice: nice ?? null,
    byteEveryMs: INTERVAL,
    secondsPerPhase: SECONDS,
    alone,
    withSlowClients: withSlow,
    aloneAgain: again,
    p99Ratio: { vsBefore: +(withSlow.p99Ms / alone.p99Ms).toFixed(2), vsAfter: +(withSlow.p99Ms / again.p99Ms).toFixed(2) },
    swarm: JSON.parse(swarmOut),
    gatewayRssMiBWithSwarm: rssWithSwarm,
  }),
);
gw.kill('SIGTERM');
await new Promise((r) => gw.once('exit', r));
up.close();
