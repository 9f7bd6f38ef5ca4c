// Nanoseconds per request spent in the log-phase hook (worker telemetry): histograms
// on vs off, same process, alternating, median of 5 rounds each.
//   node .tmp/obs-dist/test/bench/record-hook.bench.js
import { configSchema } from '../../src/config/schema.js';
import { compileWorkerConfig } from '../../src/config/compile.js';
import type { WorkerData, WorkerToPrimary } from '../../src/messages.js';
import { startWorkerTelemetry } from '../../src/worker/telemetry.js';
import { requestLogged, type FinishedRequest } from '../../src/worker/request-log.js';

const N = 2_000_000;
const ROUTES = 20;

function setup(histograms: boolean): { ex: FinishedRequest[]; stop: () => void; shipped: () => number } {
  const cfg = configSchema.parse({
    upstreams: { app: { discovery: { type: 'static', endpoints: ['127.0.0.1:1'] } } },
    routes: Array.from({ length: ROUTES }, (_, i) => ({ name: `r${i}`, match: { path: `/r${i}` }, upstream: 'app' })),
    observability: { histograms: { enabled: histograms }, snapshotInterval: '60s' },
  });
  const wc = compileWorkerConfig(cfg, 1);
  let shipped = 0;
  const data = { workerId: 0, slot: 0, maxWorkers: 1, port: 0, config: wc } as unknown as WorkerData;
  const t = startWorkerTelemetry(data, (_m: WorkerToPrimary) => void shipped++);
  // Fake exchanges with the fields the hook reads; latencies spread over 0.2–200 ms.
  const ex = Array.from({ length: 1024 }, (_, i) => {
    const started = 1000;
    const lat = 0.2 + ((i * 7919) % 1000) / 5;
    return {
      rt: { generation: 1, config: wc },
      route: { index: i % ROUTES, route: wc.routes[i % ROUTES] },
      upstream: { name: 'app' },
      startedAt: started,
      upstreamStartedAt: started + 0.05,
      upstreamHeadersAt: started + lat * 0.9,
      endpointIndex: 0,
      requestBytes: 0,
      responseBytes: 1024,
      head: { method: 'GET', path: '/x' },
      headers: [],
      requestId: 'id',
    } as unknown as FinishedRequest;
  });
  return { ex, stop: () => t.stop(), shipped: () => shipped };
}

function run(histograms: boolean): number {
  const { ex, stop } = setup(histograms);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const e = ex[i & 1023]!;
    requestLogged(e, 200, e.startedAt + 1 + (i & 127));
  }
  const ns = Number(process.hrtime.bigint() - t0) / N;
  stop();
  return ns;
}

const on: number[] = [];
const off: number[] = [];
for (let r = 0; r < 5; r++) {
  on.push(run(true));
  off.push(run(false));
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`log-phase hook: histograms on ${med(on).toFixed(0)} ns/request, off ${med(off).toFixed(0)} ns/request (median of 5; on: ${on.map((x) => x.toFixed(0)).join(' ')}; off: ${off.map((x) => x.toFixed(0)).join(' ')})`);
