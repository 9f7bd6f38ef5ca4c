// Worker-thread side of the "replaced entry is always found" test in
// test/unit/cache-store-stress.test.ts: the writer replaces one key's entry over and
// over; readers look it up and count the lookups that found nothing. Bounded: stops
// after `iterations` operations.
import { parentPort, workerData } from 'node:worker_threads';
import { CacheStore, newEntryFields } from '../../src/shm/cache-store.js';

interface Data {
  readonly buffer: SharedArrayBuffer;
  readonly writer: boolean;
  readonly iterations: number;
  /** body size of each version (3000 unless told) */
  readonly bodyBytes?: number;
}

const d = workerData as Data;
const store = CacheStore.attach(d.buffer);
const out = Buffer.alloc(64 * 1024);
const key = 'hot';
store.hash(key);
const { hA, hB } = store;
let misses = 0;
let found = 0;
const body = Buffer.alloc(d.bodyBytes ?? 3000, 7);
for (let n = 0; n < d.iterations; n++) {
  if (d.writer) {
    const f = newEntryFields();
    f.status = 200;
    store.publish(-1, 0, key, hA, hB, `v${n}`, [body], body.length, f, -1);
    // A replacement every 20 µs or so: a reader that collided with one looks again
    // after it, and that second look must not collide with the next one.
    const until = process.hrtime.bigint() + 20_000n;
    while (process.hrtime.bigint() < until);
  } else if (store.lookup(key, hA, hB, out) < 0) misses++;
  else found++;
}
parentPort!.postMessage({ misses, found });
