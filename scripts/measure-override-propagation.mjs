#!/usr/bin/env node
// How soon an override reaches every worker. A tidegate child with 2 workers serves a
// route whose maintenance response is switched by a flag; 16 keep-alive connections
// (each mapped to the worker that serves it, one request at a time, through the
// per-worker counters in /status) send requests back to back. Each trial flips the
// flag with PUT /v1/flags/<name> and timestamps the API's answer; per worker it reports
//   stale: requests SENT after the API answered that still got the old value
//   first: when the first response with the new value arrived, after the API answered
//          (an upper bound on propagation that includes one request's round trip)
//   visible within: when the first request that got the new value was sent, after the
//          PUT was sent (the change was on that worker by then)
// and the same bound before the answer (negative: a worker saw it before the API
// call returned). Timestamps are performance.now() in this process.
//
//   npm run build && node scripts/measure-override-propagation.mjs [--trials 20]
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Client } from 'undici';
import { startedPort } from './lib/started-port.mjs';

const { values: o } = parseArgs({ options: { trials: { type: 'string', default: '20' }, connections: { type: 'string', default: '16' } } });
const TRIALS = Number(o.trials);
const root = resolve(new URL('..', import.meta.url).pathname);

const upstream = createServer((_req, res) => res.end('ok'));
await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
const dir = mkdtempSync(join(tmpdir(), 'tidegate-propagation-'));
const cfgPath = join(dir, 'tidegate.yaml');
writeFileSync(
  cfgPath,
  `listen: { host: 127.0.0.1, port: 0 }
workers: 2
admin: { host: 127.0.0.1, port: 0 }
flags: { maint: { value: false } }
upstreams: { app: { discovery: { type: static, endpoints: ["127.0.0.1:${upstream.address().port}"] } } }
routes: [ { match: { path: / }, upstream: app, maintenance: { flag: maint, status: 503, body: "m" } } ]
`,
);
const child = spawn(process.execPath, [join(root, 'dist/src/cli.js'), '--config', cfgPath], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TIDEGATE_LOG_LEVEL: 'info' } });
let adminPort = 0;
child.stdout.on('data', (d) => {
  const m = /"adminPort":(\d+)/.exec(String(d));
  if (m) adminPort = Number(m[1]);
});
const port = await startedPort(child);
while (adminPort === 0) await new Promise((r) => setTimeout(r, 10));
const admin = `http://127.0.0.1:${adminPort}`;
const perWorker = async () => (await (await fetch(`${admin}/status`)).json()).workers.map((w) => w.requests);

// Map each connection to the worker serving it.
const conns = [];
for (let i = 0; i < Number(o.connections); i++) {
  const client = new Client(`http://127.0.0.1:${port}`, { pipelining: 1 });
  const before = await perWorker();
  await (await client.request({ path: '/', method: 'GET' })).body.dump();
  const after = await perWorker();
  conns.push({ client, worker: after.findIndex((n, w) => n > before[w]) });
}
const workers = [...new Set(conns.map((c) => c.worker))].sort();
if (workers.length < 2) console.error(`warning: all connections on worker(s) ${workers.join(',')}`);

let log = [];
let running = true;
const loops = conns.map(async (c) => {
  while (running) {
    const sent = performance.now();
    const r = await c.client.request({ path: '/', method: 'GET' });
    await r.body.dump();
    log.push({ worker: c.worker, sent, got: performance.now(), status: r.statusCode });
  }
});

const rows = [];
for (let t = 0; t < TRIALS; t++) {
  const on = t % 2 === 0; // alternate on and off
  await new Promise((r) => setTimeout(r, 150));
  log = [];
  const apiSent = performance.now();
  const res = await fetch(`${admin}/v1/flags/maint`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: on }) });
  const apiAnswered = performance.now();
  if (res.status !== 201) throw new Error(`PUT /v1/flags answered ${res.status}: ${await res.text()}`);
  await new Promise((r) => setTimeout(r, 150));
  const want = on ? 503 : 200;
  for (const w of workers) {
    const mine = log.filter((x) => x.worker === w);
    const after = mine.filter((x) => x.sent > apiAnswered);
    const stale = after.filter((x) => x.status !== want).length;
    const first = mine.filter((x) => x.status === want).sort((a, b) => a.got - b.got)[0];
    const gaps = mine.slice(1).map((x, i) => x.sent - mine[i].sent);
    // The first request answered with the new value, by when it was SENT: the worker had
    // the change by then, so (its send − the PUT's send) bounds the propagation from the
    // API call's start, whatever the PUT's own answer took to come back.
    const firstSent = mine.filter((x) => x.status === want).sort((a, b) => a.sent - b.sent)[0];
    rows.push({ trial: t, worker: w, stale, sentAfter: after.length, firstAfterAnswerMs: first ? first.got - apiAnswered : NaN, visibleWithinMs: firstSent ? firstSent.sent - apiSent : NaN, apiMs: apiAnswered - apiSent, requests: mine.length, meanGapMs: gaps.reduce((s, g) => s + g, 0) / Math.max(1, gaps.length) });
  }
}
running = false;
await Promise.all(loops);
for (const c of conns) await c.client.close();
child.kill('SIGTERM');
upstream.close();

const fmt = (n) => n.toFixed(2);
for (const w of workers) {
  const r = rows.filter((x) => x.worker === w);
  const first = r.map((x) => x.firstAfterAnswerMs).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const visible = r.map((x) => x.visibleWithinMs).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  console.log(
    `worker ${w}: ${r.length} trials, stale responses to requests sent after the API answered: ${r.reduce((s, x) => s + x.stale, 0)} of ${r.reduce((s, x) => s + x.sentAfter, 0)}; ` +
      `first new-value response after the answer: median ${fmt(first[first.length >> 1])} ms, max ${fmt(first[first.length - 1])} ms; ` +
      `the first request with the new value was sent within median ${fmt(visible[visible.length >> 1])} ms, max ${fmt(visible[visible.length - 1])} ms of the PUT being sent; ` +
      `requests per trial window ${Math.round(r.reduce((s, x) => s + x.requests, 0) / r.length)}, mean gap between sends on one connection ${fmt(r.reduce((s, x) => s + x.meanGapMs, 0) / r.length)} ms`,
  );
}
const api = rows.map((x) => x.apiMs).sort((a, b) => a - b);
console.log(`PUT /v1/flags round trip: median ${fmt(api[api.length >> 1])} ms, max ${fmt(api[api.length - 1])} ms`);
