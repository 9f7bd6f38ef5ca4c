// Worker-thread side of test/unit/limiter.test.ts: hammers one key of the shared GCRA
// table until a deadline (process.hrtime, shared by all threads), and reports what it
// was admitted and when its first and last attempts were.
import { parentPort, workerData } from 'node:worker_threads';
import { SharedState } from '../../src/shm/shared-state.js';
import { LimiterTable, type LimitResult } from '../../src/shm/limiter-table.js';
import { hash32, SEED_A, SEED_B } from '../../src/balancers/hash.js';

interface Data {
  readonly buffer: SharedArrayBuffer;
  readonly maxWorkers: number;
  readonly row: number;
  readonly key: string;
  /** hrtime ns as a string (BigInt does not cross postMessage in workerData on every version) */
  readonly deadline: string;
}

const d = workerData as Data;
const table = new LimiterTable(SharedState.attach(d.buffer, { maxWorkers: d.maxWorkers }));
const deadline = BigInt(d.deadline);
const h1 = hash32(d.key, SEED_A);
const h2 = hash32(d.key, SEED_B);
const out: LimitResult = { remaining: 0, resetSeconds: 0, multiplier: 1, unavailable: false };
let admitted = 0;
let denied = 0;
let first = 0n;
let last = 0n;
for (;;) {
  const now = process.hrtime.bigint();
  if (now >= deadline) break;
  if (first === 0n) first = now;
  last = now;
  if (table.acquire(d.row, h1, h2, now, out)) admitted++;
  else denied++;
}
parentPort!.postMessage({ admitted, denied, first: String(first), last: String(last) });
