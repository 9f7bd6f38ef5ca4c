// Micro-benchmark of the per-request shared-memory work (undici style: one hot
// function per file). Prints ns/op, median of several runs, for:
//   sync            EndpointSnapshot.sync(): the seqlock check every request does
//   sync+rr         … plus a round-robin pick
//   sync+p2c        … plus a least-request pick (two shared in-flight loads)
//   sync+ewma       … plus a peak-EWMA pick
//   copy            a full snapshot copy (what a request pays after the primary wrote)
//   inflight+done   onPicked/onDone counter work: two Atomics.add + EWMA CAS
//   gcra            one limiter acquire on a hot key
// Optional: `--writer` runs a worker thread that rewrites the table ~1000×/s meanwhile.
//
//   npx tsc -p tsconfig.json --outDir .tmp/bench && node .tmp/bench/native-bench/micro/seqlock-read.bench.js
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { SharedState } from '../../src/shm/shared-state.js';
import { EndpointSnapshot, EndpointTable } from '../../src/shm/endpoint-table.js';
import { LimiterTable, type LimitResult } from '../../src/shm/limiter-table.js';
import { EndpointWriter } from '../../src/primary/endpoint-writer.js';
import { RoundRobinBalancer } from '../../src/balancers/round-robin.js';
import { LeastRequestBalancer } from '../../src/balancers/least-request.js';
import { PeakEwmaBalancer } from '../../src/balancers/peak-ewma.js';

const ENDPOINTS = 8;
const eps = (w: number) => Array.from({ length: ENDPOINTS }, (_, i) => ({ host: '10.0.0.1', port: 9000 + i, weight: w }));

if (!isMainThread) {
  // Writer thread: the primary's role, rewriting weights about 1000 times a second.
  const { buffer, until } = workerData as { buffer: SharedArrayBuffer; until: number };
  const shm = SharedState.attach(buffer, { maxWorkers: 2 });
  const t = new EndpointTable(shm);
  const slot = t.findUpstream('app');
  let k = 0;
  const tick = (): void => {
    if (Date.now() > until) {
      parentPort!.postMessage(k);
      return;
    }
    t.beginWrite(slot);
    for (let e = 0; e < ENDPOINTS; e++) t.setRowField(slot, e, 3, 100 + (k % 7));
    t.endWrite(slot);
    k++;
    setTimeout(tick, 1);
  };
  tick();
} else {
  const withWriter = process.argv.includes('--writer');
  const shm = SharedState.create({ maxWorkers: 2, maxUpstreams: 4, maxEndpoints: 32, limiterSlots: 1024, limiterPolicies: 4 });
  const writer = new EndpointWriter(shm);
  writer.applyConfig([{ name: 'app', balancer: 'x', endpoints: eps(1), slowStartMs: 0, panicThreshold: 0 }], true);
  const table = new EndpointTable(shm);
  const slot = table.findUpstream('app');
  const snap = new EndpointSnapshot(table, slot);
  const rr = new RoundRobinBalancer(snap);
  const p2c = new LeastRequestBalancer(snap);
  const ewma = new PeakEwmaBalancer(snap);
  const limiter = new LimiterTable(shm);
  limiter.setPolicy(0, 1e6, 1e6);
  const out: LimitResult = { remaining: 0, resetSeconds: 0, multiplier: 1, unavailable: false };
  let sink = 0;

  const cases: Record<string, (n: number) => void> = {
    sync: (n) => {
      for (let i = 0; i < n; i++) sink += snap.sync() ? 1 : 0;
    },
    'sync+rr': (n) => {
      for (let i = 0; i < n; i++) {
        snap.sync();
        sink += rr.pick(-1, -1);
      }
    },
    'sync+p2c': (n) => {
      for (let i = 0; i < n; i++) {
        snap.sync();
        sink += p2c.pick(-1, -1);
      }
    },
    'sync+ewma': (n) => {
      for (let i = 0; i < n; i++) {
        snap.sync();
        sink += ewma.pick(-1, -1);
      }
    },
    copy: (n) => {
      for (let i = 0; i < n; i++) {
        snap.version = -1; // force the slow path
        sink += snap.sync() ? 1 : 0;
      }
    },
    'inflight+done': (n) => {
      for (let i = 0; i < n; i++) {
        const e = i & 7;
        table.addInFlight(slot, e, 1);
        table.addInFlight(slot, e, -1);
        table.recordResult(slot, e, 200, 1000 + (i & 255));
      }
    },
    gcra: (n) => {
      for (let i = 0; i < n; i++) sink += limiter.acquire(0, 12345, 678, process.hrtime.bigint(), out) ? 1 : 0;
    },
  };
  const ITER: Record<string, number> = { copy: 500_000, gcra: 500_000 };
  const RUNS = 9;

  const run = async (): Promise<void> => {
    let writes: Promise<number> | null = null;
    if (withWriter) {
      const w = new Worker(new URL(import.meta.url), { workerData: { buffer: shm.buffer, until: Date.now() + 60_000 } });
      writes = new Promise((r) => w.once('message', r));
      w.unref();
    }
    console.log(`seqlock-read micro-benchmark: ${ENDPOINTS} endpoints, ${RUNS} runs per case, median ns/op${withWriter ? ', writer thread rewriting ~1000/s' : ''} (node ${process.version})`);
    for (const [name, fn] of Object.entries(cases)) {
      const n = ITER[name] ?? 5_000_000;
      fn(n / 10); // warm up (JIT)
      const samples: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const t0 = process.hrtime.bigint();
        fn(n);
        samples.push(Number(process.hrtime.bigint() - t0) / n);
      }
      samples.sort((a, b) => a - b);
      console.log(`${name.padEnd(14)} ${samples[RUNS >> 1]!.toFixed(1).padStart(7)} ns/op   (min ${samples[0]!.toFixed(1)}, max ${samples[RUNS - 1]!.toFixed(1)})`);
    }
    console.log(`(sink ${sink > 0 ? 'ok' : 'zero'}, snapshot copies with retries: ${snap.retries})`);
    writer.stop();
    if (writes) process.exit(0);
  };
  void run();
}
