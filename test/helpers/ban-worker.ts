// Worker-thread side of test/unit/ban-table.test.ts: counts `n` refusals of one key in
// the shared ban table and reports how many of its calls set the ban; or, given `keys`,
// waits at a barrier with the other threads and then counts one refusal of each key, so
// that the threads race to claim every key's slot.
import { parentPort, workerData } from 'node:worker_threads';
import { SharedState } from '../../src/shm/shared-state.js';
import { BanTable } from '../../src/shm/ban-table.js';
import { banHashes } from '../../src/policies/ban.js';

const d = workerData as { buffer: SharedArrayBuffer; maxWorkers: number; key: string; n: number; threshold: number; tick: number; keys?: string[]; barrier?: SharedArrayBuffer; threads?: number };
const table = new BanTable(SharedState.attach(d.buffer, { maxWorkers: d.maxWorkers }));
let set = 0;
if (d.keys !== undefined) {
  const hashes = d.keys.map((k) => banHashes('race', k));
  const b = new Int32Array(d.barrier!);
  Atomics.add(b, 0, 1);
  while (Atomics.load(b, 0) < d.threads!);
  for (let i = 0; i < d.keys.length; i++) {
    const h = hashes[i]!;
    if (table.count(h.policy, h.a, h.b, d.keys[i]!, d.threshold, 600, 600, d.tick)) set++;
  }
} else {
  const h = banHashes('stress', d.key);
  for (let i = 0; i < d.n; i++) if (table.count(h.policy, h.a, h.b, d.key, d.threshold, 600, 600, d.tick)) set++;
}
parentPort!.postMessage({ set });
