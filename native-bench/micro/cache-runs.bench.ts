// How many hits of the cache scenario's Zipf mix find their body in one run of the
// arena (sent from it as it lies) and how many need a copy (chunks not adjacent): the
// scenario's objects (1–16 KiB, Zipf s = 1.0 over 10,000) replayed against a store of
// its default size, every miss stored as a fill would (with admission), on one thread
// that reads as a worker does (a read section, lookupShared). Deterministic.
//
//   npx tsc -p tsconfig.json && node dist/native-bench/micro/cache-runs.bench.js [requests]
import { CacheStore, newEntryFields } from '../../src/shm/cache-store.js';
import { objectSize } from '../cache/objects.js';

const OBJECTS = 10_000;
const REQUESTS = Number(process.argv[2] ?? 400_000);
let total = 0;
for (let i = 0; i < OBJECTS; i++) total += objectSize(i);
const store = CacheStore.create(Math.round(total * 0.2), 64 * 1024);
store.stripe(0);

// Zipf s = 1.0 by inverse CDF over precomputed cumulative weights; xorshift32 draws.
const cum = new Float64Array(OBJECTS);
let sum = 0;
for (let i = 0; i < OBJECTS; i++) cum[i] = sum += 1 / (i + 1);
let seed = 0x9e3779b9;
function draw(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  const u = ((seed >>> 0) / 2 ** 32) * sum;
  let lo = 0;
  let hi = OBJECTS - 1;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (cum[m]! < u) lo = m + 1;
    else hi = m;
  }
  return lo;
}

const out = Buffer.allocUnsafe(store.maxObjectSize + 64 * 1024);
const holdNothing = { held: (): number => 0 };
const f = newEntryFields();
f.status = 200;
f.freshUntil = Date.now() + 3_600_000;
let hits = 0;
let inPlace = 0;
for (let n = 0; n < REQUESTS; n++) {
  const id = draw();
  const key = `127.0.0.1:8080/obj/${id}`;
  store.hash(key);
  const { hA, hB } = store;
  store.touch(hA, hB);
  store.enterRead();
  const r = store.lookupShared(key, hA, hB, out, holdNothing);
  store.leaveRead();
  if (r >= 0) {
    // the second half only: the first fills the store
    if (n >= REQUESTS / 2) {
      hits++;
      if (store.bodyAt >= 0) inPlace++;
    }
    continue;
  }
  const len = objectSize(id);
  const freq = store.frequency(hA, hB);
  const res = store.reserve(hA, hB, Date.now(), 5_000, freq);
  store.publish(res, store.token, key, hA, hB, 'content-type\napplication/octet-stream', [Buffer.alloc(len, id & 0xff)], len, f, freq);
}
console.log(`cache-runs: ${REQUESTS} requests, store of ${(store.layout.chunks / 1024).toFixed(1)} MiB; of the ${hits} hits in the second half, ${inPlace} (${((100 * inPlace) / hits).toFixed(1)} %) found their body in one run of the arena, ${hits - inPlace} needed a copy`);
