#!/usr/bin/env node
// Heap cost of the console's rings, filled to capacity (run after a build):
//   node --expose-gc scripts/measure-console-memory.mjs [routes] [upstreams] [workers] [points]
// Defaults: 100 routes, 20 upstreams, 8 workers, 900 points (15 min at the default
// 1 s snapshot interval); the decision ring gets 1000 decisions like an ejection's.
import { History } from '../dist/src/primary/history/history.js';
import { DecisionFeed } from '../dist/src/primary/decisions/decision-feed.js';

if (typeof globalThis.gc !== 'function') {
  console.error('run with node --expose-gc');
  process.exit(2);
}
const [routes = 100, upstreams = 20, workers = 8, points = 900] = process.argv.slice(2).map(Number);

function heap() {
  for (let i = 0; i < 3; i++) globalThis.gc();
  return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
}
const mib = (b) => (b / 1024 / 1024).toFixed(2);

const before = heap();
const h = new History(points, 1000);
const r = new Map();
const u = new Map();
const lat = new Map();
const ulat = new Map();
const elu = new Map();
for (let t = 0; t <= points; t++) {
  for (let i = 0; i < routes; i++) {
    r.set(`route-${i}`, { requests: t * 100 + i, errors: t });
    lat.set(`route-${i}`, { percentilesUs: [1000 + i, 5000 + i, 20000 + i], count: 100 });
  }
  for (let i = 0; i < upstreams; i++) {
    u.set(`upstream-${i}`, { requests: t * 500, errors: t });
    ulat.set(`upstream-${i}`, { percentilesUs: [900, 4000, 18000], count: 500 });
  }
  for (let w = 0; w < workers; w++) elu.set(w, 0.3);
  h.sample(1_000_000 + t * 1000, { routes: r, upstreams: u, routeLatency: lat, upstreamLatency: ulat, workerElu: elu });
}
r.clear();
u.clear();
lat.clear();
ulat.clear();
elu.clear();
const afterHistory = heap();

const feed = new DecisionFeed(1000);
for (let i = 0; i < 1000; i++) {
  feed.push({
    time: new Date().toISOString(),
    kind: 'endpoint-ejected',
    level: 'warn',
    subject: { upstream: `upstream-${i % 20}`, endpoint: `10.0.${i % 256}.${i % 200}:8080` },
    message: `endpoint 10.0.${i % 256}.${i % 200}:8080 ejected`,
    why: { cause: 'active', reason: `2 consecutive http checks failed (ECONNREFUSED: connect ECONNREFUSED 10.0.${i % 256}.${i % 200}:8080)` },
  });
}
const afterFeed = heap();
const json = JSON.stringify(h.query(new URL('http://admin/v1/history')));
console.log(`history: ${routes} routes + ${upstreams} upstreams × 5 fields + ${workers} workers × 1, ${h.points} points: ${mib(afterHistory - before)} MiB`);
console.log(`decision feed: ${feed.retained} decisions: ${mib(afterFeed - afterHistory)} MiB`);
console.log(`GET /v1/history (everything) would answer ${mib(json.length)} MiB of JSON`);
