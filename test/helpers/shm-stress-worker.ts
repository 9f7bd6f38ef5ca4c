// Worker-thread side of test/unit/shm-stress.test.ts: reads an endpoint table the
// main thread keeps rewriting, checks every copy it takes for tearing, and counts
// requests in and out of the shared in-flight counters. Bounded: stops by itself
// after `iterations` simulated requests.
import { parentPort, workerData } from 'node:worker_threads';
import { SharedState } from '../../src/shm/shared-state.js';
import { EndpointSnapshot, EndpointTable } from '../../src/shm/endpoint-table.js';

interface Data {
  readonly buffer: SharedArrayBuffer;
  readonly maxWorkers: number;
  readonly slot: number;
  readonly iterations: number;
}

const d = workerData as Data;
const shm = SharedState.attach(d.buffer, { maxWorkers: d.maxWorkers });
const table = new EndpointTable(shm);
const snap = new EndpointSnapshot(table, d.slot);

let copies = 0;
let torn = 0;
let picks = 0;
let noCandidate = 0;
const firstTorn: string[] = [];

/**
 * The writer's invariant (see the test): in any one generation every endpoint has the
 * same weight, and that weight encodes how many endpoints the set has. A copy that
 * mixes two generations breaks it.
 */
function verify(): void {
  copies++;
  const n = snap.count;
  if (snap.healthy !== n) {
    torn++;
    if (firstTorn.length < 3) firstTorn.push(`healthy ${snap.healthy} != candidates ${n}`);
    return;
  }
  if (n === 0) return;
  const w0 = snap.weights[snap.candidates[0]!]!;
  const expectedCount = Math.floor(w0 / 100 / 10);
  let ok = expectedCount === n;
  for (let i = 1; i < n && ok; i++) if (snap.weights[snap.candidates[i]!] !== w0) ok = false;
  if (!ok) {
    torn++;
    if (firstTorn.length < 3) firstTorn.push(`count ${n} weights ${Array.from(snap.candidates.subarray(0, n), (e) => snap.weights[e]).join(',')}`);
  }
}

// Outstanding requests: picked rows not yet finished, so in-flight counters really
// go up and down concurrently with the primary's rewrites.
const ring = new Int32Array(16).fill(-1);
for (let i = 0; i < d.iterations; i++) {
  if (snap.sync()) verify();
  const slotIdx = i & 15;
  const prev = ring[slotIdx]!;
  if (prev >= 0) {
    table.addInFlight(d.slot, prev, -1);
    table.recordResult(d.slot, prev, 200, 100 + (i & 1023));
  }
  if (snap.count === 0) {
    noCandidate++;
    ring[slotIdx] = -1;
    continue;
  }
  const e = snap.candidates[i % snap.count]!;
  table.addInFlight(d.slot, e, 1);
  ring[slotIdx] = e;
  picks++;
}
for (const e of ring) if (e >= 0) table.addInFlight(d.slot, e, -1);

parentPort!.postMessage({ copies, torn, picks, noCandidate, retries: snap.retries, firstTorn });
