// Worker-thread side of test/unit/cache-store-stress.test.ts: reads and fills one small
// shared cache at the same time as the other threads, so entries are evicted and their
// chunks reused all the time. Every body is a pattern derived from its key and version,
// and the meta says which, so a copy that mixes two entries is detectable. In `shared`
// mode a read is what a worker's hit does: a read section, lookupShared, and the body
// checked where it lies in the arena, twice, the second time after a pause (the time a
// send takes), so chunks reused under a reader are caught. Bounded: stops after
// `iterations` operations.
import { parentPort, workerData } from 'node:worker_threads';
import { CacheStore, newEntryFields } from '../../src/shm/cache-store.js';

interface Data {
  readonly buffer: SharedArrayBuffer;
  readonly id: number;
  readonly keys: number;
  readonly iterations: number;
  /** break the protocol on purpose: skip the seqlock check after copying (the test shows this is caught) */
  readonly unchecked: boolean;
  /** read as workers do (see above); `unannounced` breaks that on purpose: the reader line stays 0 */
  readonly shared?: boolean;
  readonly unannounced?: boolean;
}

const d = workerData as Data;
const store = CacheStore.attach(d.buffer);
store.stripe(d.id);
const out = Buffer.alloc(64 * 1024);
const holdNothing = { held: (): number => 0 };
let inPlace = 0;
let rand = 0x9e3779b9 ^ (d.id * 7919);
function next(): number {
  rand ^= rand << 13;
  rand ^= rand >>> 17;
  rand ^= rand << 5;
  return rand >>> 0;
}

export function bodyLength(k: number, v: number): number {
  return 1 + ((Math.imul(k + 1, 2654435761) ^ Math.imul(v + 1, 40503)) >>> 0) % 3000;
}

let hits = 0;
let torn = 0;
let stored = 0;
let removed = 0;
let released = 0;
const firstTorn: string[] = [];

function verify(key: string): void {
  const meta = out.toString('latin1', store.metaAt, store.metaAt + store.metaLen);
  const [mk, mv, ml] = meta.split(':');
  const k = Number(key.slice(1));
  const v = Number(mv);
  const len = bodyLength(k, v);
  let ok = mk === key && Number(ml) === len && store.bodyLen === len && store.fields.status === 200 + (v % 100);
  const fill = (k * 31 + v) & 0xff;
  const arena = d.shared === true && store.bodyAt >= 0;
  const body = arena ? store.bytes : out;
  const at = arena ? store.bodyAt : store.metaAt + store.metaLen;
  if (arena) inPlace++;
  for (let j = 0; ok && j < len; j++) if (body[at + j] !== fill) ok = false;
  if (ok && arena) {
    // what a send that takes a while would read at its end
    const until = performance.now() + 0.02;
    while (performance.now() < until);
    for (let j = 0; ok && j < len; j++) if (body[at + j] !== fill) ok = false;
  }
  if (!ok) {
    torn++;
    if (firstTorn.length < 3) firstTorn.push(`${key}: meta ${meta} bodyLen ${store.bodyLen} status ${store.fields.status}`);
  }
}

for (let n = 0; n < d.iterations; n++) {
  const k = next() % d.keys;
  const key = `k${k}`;
  store.hash(key);
  const r = store.find(key, store.hA, store.hB);
  const op = next() % 16;
  if (d.shared === true && r >= 0 && op < 12) {
    store.enterRead();
    if (d.unannounced === true) Atomics.store(store.i32, (store.layout.readersOffset >> 2) + d.id * 16, 0);
    const rr = store.lookupShared(key, store.hA, store.hB, out, holdNothing);
    if (rr >= 0) {
      hits++;
      verify(key);
    }
    store.leaveRead();
    continue;
  }
  if (r >= 0 && op < 12) {
    // A reader that skipped the check would compare the last seen copy, torn or not.
    const ok = store.read(r, d.unchecked ? Atomics.load(store.i32, r * 32 + (store.layout.recordsOffset >> 2)) : store.seq, out);
    if (ok || d.unchecked) {
      hits++;
      verify(key);
    }
    continue;
  }
  if (op === 15) {
    if (store.remove(key, store.hA, store.hB)) removed++;
    continue;
  }
  const v = next() % 1000;
  const len = bodyLength(k, v);
  const body = Buffer.alloc(len, (k * 31 + v) & 0xff);
  const f = newEntryFields();
  f.status = 200 + (v % 100);
  const hA = store.hA;
  const hB = store.hB;
  const rr = store.reserve(hA, hB, Date.now(), 1000, -1);
  if (rr >= 0 && v % 5 === 0) {
    // an uncacheable response: the reservation is given up (unlinked at this thread's next lock)
    store.release(rr, store.token);
    released++;
    continue;
  }
  // rr < -1: another thread is filling the key; this store goes in without a reservation.
  const res = store.publish(rr >= 0 ? rr : -1, store.token, key, hA, hB, `${key}:${v}:${len}`, [body.subarray(0, len >> 1), body.subarray(len >> 1)], len, f, -1);
  if (res === 0) stored++;
}

parentPort!.postMessage({ hits, torn, stored, removed, released, firstTorn, inPlace });
