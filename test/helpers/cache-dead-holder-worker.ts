// Worker-thread side of the "worker that ends holding the writer lock" test in
// test/unit/cache-store.test.ts: attaches as worker slot `slot`, stores `entries`
// entries, enters a read section, takes the writer lock and ends without giving either
// back (as a thread stopped by worker.terminate() inside a critical section would).
import { parentPort, workerData } from 'node:worker_threads';
import { CacheStore, newEntryFields } from '../../src/shm/cache-store.js';

const d = workerData as { buffer: SharedArrayBuffer; slot: number; entries: number };
const store = CacheStore.attach(d.buffer);
store.stripe(d.slot);
const f = newEntryFields();
f.status = 200;
f.freshUntil = Date.now() + 60_000;
for (let k = 0; k < d.entries; k++) {
  const key = `GET dead/${k}`;
  store.hash(key);
  store.publish(-1, 0, key, store.hA, store.hB, 'm', [Buffer.alloc(1500, k & 0xff)], 1500, f, -1);
}
store.enterRead();
store.lock();
parentPort!.postMessage('holding');
process.exit(0);
