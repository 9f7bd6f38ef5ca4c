// Nanoseconds per request spent on adaptive protection in a worker, on the normal path:
// admit() (one load of the control word; with a concurrency limit, one Atomics.add),
// record() of the verdict (ledger counters and a histogram bucket) and leave(), against
// the same loop with no guard. Three guards over one real shared-memory layout:
// breaker only (word 0: nothing but the load), breaker + fixed concurrency limit, and
// none. Alternating rounds, median of 5.
//   node dist/test/bench/upstream-guard.bench.js
import { SharedState } from '../../src/shm/shared-state.js';
import { ControlWords } from '../../src/shm/control-words.js';
import { BreakerState } from '../../src/shm/layout.js';
import { Admission, UpstreamGuard } from '../../src/worker/upstream-guard.js';

const N = 5_000_000;
const shm = SharedState.create({ maxWorkers: 1, maxUpstreams: 2, maxEndpoints: 8, limiterSlots: 16, limiterPolicies: 1 });
const words = new ControlWords(shm);
words.writeWord(0, BreakerState.Closed, 0); // breaker only
words.writeWord(1, BreakerState.Closed, 10_000); // breaker + concurrency limit
const breakerOnly = new UpstreamGuard({ slowCallUs: 1_000_000, fallback: null, shares: [1, 0.9, 0.8, 0.5] }, shm, 0, 0);
const withLimit = new UpstreamGuard({ slowCallUs: 1_000_000, fallback: null, shares: [1, 0.9, 0.8, 0.5] }, shm, 1, 0);

let sink = 0;
function guarded(g: UpstreamGuard): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const a = g.admit(2); // a normal-priority route
    if (a === Admission.Open || a === Admission.Shed) sink++;
    g.record(200, 1 + (i & 63) * 0.5); // 1–32 ms, spread over buckets
    if (a === Admission.Counted) g.words.leave();
  }
  return Number(process.hrtime.bigint() - t0) / N;
}
let x = 0;
function bare(): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) x += 1 + (i & 63) * 0.5;
  return Number(process.hrtime.bigint() - t0) / N;
}
const r = { breaker: [] as number[], limit: [] as number[], none: [] as number[] };
guarded(breakerOnly);
guarded(withLimit);
bare();
for (let k = 0; k < 5; k++) {
  r.breaker.push(guarded(breakerOnly));
  r.limit.push(guarded(withLimit));
  r.none.push(bare());
}
const med = (v: number[]): number => [...v].sort((p, q) => p - q)[2]!;
console.log(
  JSON.stringify({
    iterations: N,
    nsBreaker: +med(r.breaker).toFixed(2),
    nsBreakerAndLimit: +med(r.limit).toFixed(2),
    nsNone: +med(r.none).toFixed(2),
    costBreakerNs: +(med(r.breaker) - med(r.none)).toFixed(2),
    costBreakerAndLimitNs: +(med(r.limit) - med(r.none)).toFixed(2),
    refused: sink,
    x: x > 0,
  }),
);
