// Shared dictionaries under every thread at once (the README's promise: correct under
// concurrent use from every worker). Threads count into one dictionary and churn a
// small one that evicts constantly while this thread reads both; afterwards no count
// may be lost, no value read torn, and the structures must be sound. Without the
// dictionary's lock (set `locking = false` in the helper) counts go missing and the
// free list and chains break within a few thousand operations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { SharedState } from '../../src/shm/shared-state.js';
import { SharedDicts } from '../../src/shm/shared-dicts.js';

const WORKER = new URL('../helpers/shared-dict-stress-worker.js', import.meta.url);
const THREADS = 4;
const ITERATIONS = 60_000;

test('shared dict: no lost increment, no torn value, sound structures under 4 threads + a reader', { timeout: 120_000 }, async () => {
  const specs = [
    { name: 'counters', bytes: 64 * 1024 },
    // 8 KiB: ~120 blocks for 97 keys of up to 4 blocks each, so writes evict all the time.
    { name: 'churn', bytes: 8 * 1024 },
  ];
  const shm = SharedState.create({ maxWorkers: 1, maxUpstreams: 1, maxEndpoints: 1, limiterSlots: 16, limiterPolicies: 1, sharedDictBytes: 72 * 1024 });
  const dicts = SharedDicts.format(shm, specs);
  const results: Promise<{ torn: number; incrFailed: number; reads: number; firstTorn: string[] }>[] = [];
  const workers: Worker[] = [];
  for (let slot = 0; slot < THREADS; slot++) {
    const w = new Worker(WORKER, { workerData: { buffer: shm.buffer, placements: dicts.placements, slot, iterations: ITERATIONS, locking: true } });
    workers.push(w);
    results.push(
      new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      }),
    );
  }
  let done = false;
  const all = Promise.all(results).finally(() => (done = true));
  // This thread reads as the admin API would, between yields so messages arrive.
  let listed = 0;
  while (!done) {
    for (let j = 0; j < 50; j++) listed += dicts.get('churn')!.getKeys(0).length + (dicts.get('counters')!.get('total') === undefined ? 0 : 1);
    await new Promise((r) => setImmediate(r));
  }
  const r = await all;
  await Promise.all(workers.map((w) => w.terminate()));
  const counters = dicts.get('counters')!;
  const churn = dicts.get('churn')!;
  const torn = r.reduce((s, x) => s + x.torn, 0);
  console.log(`# ${THREADS} threads × ${ITERATIONS}: reads ${r.reduce((s, x) => s + x.reads, 0)}, torn ${torn}, evictions ${churn.stats().evictions}, reader listed ${listed} keys`);
  assert.equal(r.reduce((s, x) => s + x.incrFailed, 0), 0, 'every incr succeeded');
  assert.equal(counters.get('total'), THREADS * ITERATIONS, 'no increment lost');
  for (let slot = 0; slot < THREADS; slot++) assert.equal(counters.get(`worker-${slot}`), ITERATIONS, `worker ${slot}'s own count`);
  assert.equal(torn, 0, `torn reads: ${r.flatMap((x) => x.firstTorn).join('; ')}`);
  assert.ok(churn.stats().evictions > 0, 'the small dictionary really evicted');
  assert.deepEqual(churn.check(), [], 'churned dictionary is sound');
  assert.deepEqual(counters.check(), [], 'counter dictionary is sound');
});
