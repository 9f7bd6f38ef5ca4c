// Worker-thread side of test/unit/split-table.test.ts: picks a side of split row 0,
// which the main thread keeps flipping between "all on side 0" and "all on side 2",
// with a draw in the middle of the scale. A torn read (side 0's new threshold with
// side 1's old one) would land on side 1, which neither version of the row allows.
// Bounded: stops after `iterations` picks.
import { parentPort, workerData } from 'node:worker_threads';
import { SharedState } from '../../src/shm/shared-state.js';
import { SplitTable } from '../../src/shm/split-table.js';
import { kSplitScale } from '../../src/shm/layout.js';

const d = workerData as { buffer: SharedArrayBuffer; maxWorkers: number; iterations: number };
const table = new SplitTable(SharedState.attach(d.buffer, { maxWorkers: d.maxWorkers }));
const seen = [0, 0, 0];
for (let i = 0; i < d.iterations; i++) seen[table.pick(0, kSplitScale >> 1, 3)]!++;
parentPort!.postMessage(seen);
