// Worker-thread side of test/unit/ban-table.test.ts: counts `n` refusals of one key in
// the shared ban table and reports how many of its calls set the ban.
import { parentPort, workerData } from 'node:worker_threads';
import { SharedState } from '../../src/shm/shared-state.js';
import { BanTable } from '../../src/shm/ban-table.js';
import { banHashes } from '../../src/policies/ban.js';

const d = workerData as { buffer: SharedArrayBuffer; maxWorkers: number; key: string; n: number; threshold: number; tick: number };
const table = new BanTable(SharedState.attach(d.buffer, { maxWorkers: d.maxWorkers }));
const h = banHashes('stress', d.key);
let set = 0;
for (let i = 0; i < d.n; i++) if (table.count(h.policy, h.a, h.b, d.key, d.threshold, 600, 600, d.tick)) set++;
parentPort!.postMessage({ set });
