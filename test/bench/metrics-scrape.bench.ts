// Cost of one GET /metrics scrape with 8 workers × 100 routes (+10 upstreams), every
// route and upstream active on every worker: the worst case for cardinality.
// Also times merging one round of snapshots (8 workers) in the aggregation thread.
//   npx tsc -p tsconfig.json --outDir .tmp/obs-dist && node .tmp/obs-dist/test/bench/metrics-scrape.bench.js
import * as hdr from 'hdr-histogram-js';
import { configSchema } from '../../src/config/schema.js';
import { createObservability } from '../../src/primary/observability.js';
import { createLogger } from '../../src/primary/logger.js';
import { SharedState } from '../../src/shm/shared-state.js';
import type { WorkerInfo } from '../../src/primary/supervisor.js';
import { CODE_CLASSES, METHODS, UPSTREAM_CLASSES, type TelemetrySnapshot } from '../../src/metrics/snapshot.js';

const WORKERS = Number(process.env.WORKERS ?? 8);
const ROUTES = Number(process.env.ROUTES ?? 100);
const UPSTREAMS = 10;
const SCRAPES = 30;

hdr.initWebAssemblySync();
function interval(n: number, seed: number): Uint8Array {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3, autoResize: false, useWebAssembly: true });
  let s = seed;
  for (let i = 0; i < n; i++) h.recordValue(Math.floor(200 + ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) ** 3 * 500_000));
  const b = (h as unknown as { encode(): Uint8Array }).encode();
  h.destroy();
  return b;
}

const upstreams: Record<string, unknown> = {};
for (let u = 0; u < UPSTREAMS; u++) upstreams[`up${u}`] = { discovery: { type: 'static', endpoints: [`127.0.0.1:${9000 + u}`, `127.0.0.1:${9100 + u}`] } };
const config = configSchema.parse({
  workers: WORKERS,
  upstreams,
  routes: Array.from({ length: ROUTES }, (_, i) => ({ name: `route-${i}`, match: { path: `/r${i}` }, upstream: `up${i % UPSTREAMS}` })),
});
const shm = SharedState.create({ maxWorkers: WORKERS });
const workers: WorkerInfo[] = Array.from({ length: WORKERS }, (_, slot) => ({ slot, workerId: slot, threadId: slot, phase: 'listening', restarts: 0, startedAt: Date.now(), generation: 1 }));
const obs = createObservability({ shm, workers: () => workers, config: () => config, log: createLogger('silent') });

function snapshot(w: number, seq: number): TelemetrySnapshot {
  const counts = Array.from({ length: METHODS.length * CODE_CLASSES.length }, (_, i) => (i % 7 === 0 ? 10 : 0));
  return {
    kind: 'snapshot',
    seq,
    at: Date.now(),
    intervalMs: 1000,
    routes: Array.from({ length: ROUTES }, (_, i) => ({ name: `route-${i}`, upstream: `up${i % UPSTREAMS}`, counts, bytesIn: 100, bytesOut: 1000, hist: interval(200, w * 1000 + i + seq), histSumUs: 200 * 5000, count: 200, sumUs: 200 * 5000 })),
    upstreams: Array.from({ length: UPSTREAMS }, (_, u) => ({ name: `up${u}`, outcomes: Array.from({ length: UPSTREAM_CLASSES.length }, () => 20), hist: interval(2000, u + seq), histSumUs: 2000 * 4000, count: 2000, sumUs: 2000 * 4000 })),
    runtime: { elu: 0.5, loopDelayMeanMs: 1, loopDelayP99Ms: 2, loopDelayMaxMs: 3, heapUsedBytes: 1e7, heapTotalBytes: 2e7 },
    accessLog: [],
    accessLogDropped: 0,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// Pre-build two rounds of snapshots so encoding cost is not timed as merging.
const rounds = [0, 1, 2].map((r) => Array.from({ length: WORKERS }, (_, w) => snapshot(w, r)));
const mergeMs: number[] = [];
for (const round of rounds) {
  const t0 = performance.now();
  for (let w = 0; w < WORKERS; w++) obs.onWorkerTelemetry(w, round[w]);
  const tIntake = performance.now() - t0;
  await obs.flush();
  mergeMs.push(performance.now() - t0);
  console.log(`round: intake on the primary loop ${tIntake.toFixed(1)} ms, merged in the pool after ${(performance.now() - t0).toFixed(1)} ms (${WORKERS * (ROUTES + UPSTREAMS)} interval histograms)`);
}

const scrape = obs.adminRoutes['/metrics']!;
const url = new URL('http://admin/metrics');
const times: number[] = [];
let bytes = 0;
let lines = 0;
for (let i = 0; i < SCRAPES; i++) {
  const t0 = performance.now();
  const r = await scrape(url);
  times.push(performance.now() - t0);
  bytes = Buffer.byteLength(r.body);
  lines = String(r.body).split('\n').length;
}
console.log(`/metrics with ${WORKERS} workers × ${ROUTES} routes, ${UPSTREAMS} upstreams: median ${median(times).toFixed(1)} ms per scrape (min ${Math.min(...times).toFixed(1)}, max ${Math.max(...times).toFixed(1)}; ${SCRAPES} scrapes), ${(bytes / 1024).toFixed(0)} KiB, ${lines} lines`);
console.log(`merge round median ${median(mergeMs).toFixed(1)} ms`);
await obs.close();
