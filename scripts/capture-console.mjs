#!/usr/bin/env node
// Renders docs/console.png: a gateway on loopback with three routes, ~25 s of varying
// bounded load (one route answers some 5xx), one endpoint SIGKILLed and restarted
// (ejection, readmission, slow start) and another killed for good, one drained by an
// override with a reason, then /ui in headless Chromium at 1280 px while the load
// still runs.
//   npm run build && node scripts/capture-console.mjs [out.png]
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway } from '../dist/test/helpers/gateway.js';
import { startChildUpstream } from '../dist/test/helpers/child-upstream.js';
import { startUpstream } from '../dist/test/helpers/upstream.js';

const out = process.argv[2] ?? 'docs/console.png';
const a = await startChildUpstream();
let b = await startChildUpstream();
const c = await startChildUpstream();
let n = 0;
const flaky = await startUpstream((req, res) => {
  res.statusCode = ++n % 12 === 0 ? 503 : 200;
  res.end('ok');
});
const gw = await startGateway({
  listen: { host: '127.0.0.1', port: 0 },
  workers: 2,
  admin: { host: '127.0.0.1', port: 0 },
  upstreams: {
    users: { balancer: 'least-request', slowStart: '30s', discovery: { type: 'static', endpoints: [a.address, b.address, c.address] }, health: { active: { path: '/health', interval: '500ms', timeout: '500ms', healthy: 2, unhealthy: 2 } } },
    orders: { discovery: { type: 'static', endpoints: [flaky.address] } },
  },
  routes: [
    { name: 'users', match: { path: '/v1/users' }, upstream: 'users' },
    { name: 'orders', match: { path: '/v1/orders' }, upstream: 'orders' },
    { name: 'catch-all', match: { path: '/' }, upstream: 'users' },
  ],
  observability: { snapshotInterval: '250ms' },
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function load(ms, concurrency) {
  const end = Date.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      for (let k = 0; Date.now() < end; k++) {
        const path = k % 5 === 0 ? '/v1/orders/7' : k % 7 === 0 ? '/static/x' : '/v1/users/42';
        await (await fetch(gw.url + path)).text().catch(() => {});
        if (i >= concurrency / 2) await sleep(2);
      }
    }),
  );
}
try {
  await load(6_000, 4);
  await load(5_000, 8);
  await b.kill();
  await load(5_000, 6);
  b = await startChildUpstream(b.port);
  await load(4_000, 6);
  await c.kill();
  const running = load(12_000, 6);
  // An operator's drain, as the console's button makes it: the row shows "draining", the override its reason.
  const drain = await fetch(`${gw.adminUrl}/v1/upstreams/users/endpoints/${a.address}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ state: 'drain', for: '15m', reason: 'kernel upgrade' }) });
  if (drain.status !== 201) throw new Error(`drain: HTTP ${drain.status} ${await drain.text()}`);
  await sleep(6_000);
  const profile = mkdtempSync(join(tmpdir(), 'tidegate-chromium-'));
  // Async: the load runs in this process and must keep going while Chromium renders.
  await promisify(execFile)('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--no-first-run', `--user-data-dir=${profile}`, '--virtual-time-budget=5000', '--window-size=1280,1400', `--screenshot=${out}`, `${gw.adminUrl}/ui`]);
  rmSync(profile, { recursive: true, force: true });
  console.log(`wrote ${out}`);
  await running;
} finally {
  await gw.stop();
  await a.kill();
  await b.kill();
  await c.kill();
  await flaky.close();
}
