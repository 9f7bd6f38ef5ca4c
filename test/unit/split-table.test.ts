// Split rows under concurrent reads: the primary's seqlocked write of every side's
// threshold is seen whole by worker threads (no torn read), and picks follow the
// cumulative weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { SharedState } from '../../src/shm/shared-state.js';
import { SplitTable } from '../../src/shm/split-table.js';
import { kSplitScale } from '../../src/shm/layout.js';

const WORKER = new URL('../helpers/split-reader-worker.js', import.meta.url);
const THREADS = 3;

test('picks follow the cumulative weights', () => {
  const shm = SharedState.create({ maxWorkers: 1, maxUpstreams: 1, maxEndpoints: 1, limiterSlots: 16, limiterPolicies: 1 });
  const t = new SplitTable(shm);
  t.write(5, [20, 30, 50]);
  assert.equal(t.pick(5, 0, 3), 0);
  assert.equal(t.pick(5, Math.floor(0.2 * kSplitScale) - 1, 3), 0);
  assert.equal(t.pick(5, Math.round(0.2 * kSplitScale), 3), 1);
  assert.equal(t.pick(5, Math.round(0.5 * kSplitScale), 3), 2);
  assert.equal(t.pick(5, kSplitScale - 1, 3), 2);
  assert.equal(t.pick(5, kSplitScale - 1, 2), 1, 'clamped to the sides the route has');
  assert.deepEqual(t.read(5).map((w) => Math.round(w * 100)), [20, 30, 50]);
});

test('a flip of every threshold at once is never seen half-done by readers on other threads', async () => {
  const shm = SharedState.create({ maxWorkers: THREADS, maxUpstreams: 1, maxEndpoints: 1, limiterSlots: 16, limiterPolicies: 1 });
  const t = new SplitTable(shm);
  t.write(0, [100, 0, 0]);
  const workers = Array.from({ length: THREADS }, () => new Worker(WORKER, { workerData: { buffer: shm.buffer, maxWorkers: THREADS, iterations: 300_000 } }));
  const results = workers.map((w) => new Promise<number[]>((resolve, reject) => (w.once('message', resolve), w.once('error', reject))));
  let done = false;
  void Promise.all(results).finally(() => (done = true));
  let writes = 0;
  // Flip until every reader is done (bounded by their iteration count), yielding now and then.
  while (!done) {
    for (let i = 0; i < 2000; i++) t.write(0, writes++ % 2 === 0 ? [0, 0, 100] : [100, 0, 0]);
    await new Promise((r) => setImmediate(r));
  }
  const seen = await Promise.all(results);
  for (const s of seen) assert.equal(s[1], 0, `a reader landed on side 1 (torn read): ${s.join(', ')}`);
  const both = seen.reduce((a, s) => [a[0]! + s[0]!, a[1]! + s[2]!], [0, 0]);
  assert.ok(both[0]! > 0 && both[1]! > 0, `readers saw both versions (${both.join(', ')}) over ${writes} writes`);
  await Promise.all(workers.map((w) => w.terminate()));
});
