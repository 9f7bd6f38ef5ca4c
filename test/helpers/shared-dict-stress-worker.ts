// Worker-thread side of test/unit/shared-dict-stress.test.ts: counts into one shared
// dictionary and churns another small enough to evict all the time, checking every
// value it reads back against its key. Bounded: stops after `iterations`.
import { parentPort, workerData } from 'node:worker_threads';
import { SharedState } from '../../src/shm/shared-state.js';
import { SharedDicts } from '../../src/shm/shared-dicts.js';
import type { DictPlacement } from '../../src/shm/shared-dict-layout.js';

interface Data {
  readonly buffer: SharedArrayBuffer;
  readonly placements: readonly DictPlacement[];
  readonly slot: number;
  readonly iterations: number;
  readonly locking: boolean;
}

const d = workerData as Data;
const dicts = SharedDicts.attach(SharedState.attach(d.buffer, { maxWorkers: 1 }), d.placements);
const counters = dicts.get('counters')!;
const churn = dicts.get('churn')!;
counters.locking = d.locking;
churn.locking = d.locking;

/** A value that names its key and has a length of its own, so a mixed-up read shows. */
function valueFor(key: string, i: number): string {
  return `${key}|${'x'.repeat((i * 7) % 150)}|${key}`;
}

let torn = 0;
let incrFailed = 0;
let reads = 0;
const firstTorn: string[] = [];
for (let i = 0; i < d.iterations; i++) {
  if (counters.incr('total', 1, 0) === undefined) incrFailed++;
  if (counters.incr(`worker-${d.slot}`, 1, 0) === undefined) incrFailed++;
  // Keys shared by all threads, so writers meet on the same items.
  const key = `k${(i * 13 + d.slot) % 97}`;
  if (i % 5 === 4) churn.delete(key);
  else churn.set(key, valueFor(key, i), i % 3 === 0 ? 0.001 : 0);
  const other = `k${(i * 31) % 97}`;
  const v = churn.get(other);
  if (v !== undefined) {
    reads++;
    const s = String(v);
    if (!s.startsWith(`${other}|`) || !s.endsWith(`|${other}`)) {
      torn++;
      if (firstTorn.length < 3) firstTorn.push(`${other} read ${JSON.stringify(s.slice(0, 40))}`);
    }
  }
}
parentPort!.postMessage({ torn, incrFailed, reads, firstTorn });
