// The shared tables must show no torn read and no lost update under many threads
// (docs/architecture.md §2). Worker threads read an endpoint table through the
// seqlock while this thread rewrites it as fast as it can; afterwards every copy must have been
// consistent and every in-flight increment matched by its decrement.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { SharedState } from '../../src/shm/shared-state.js';
import { EndpointWriter, type EndpointSpec } from '../../src/primary/endpoint-writer.js';
import { kEndpointInFlightField } from '../../src/shm/layout.js';

const WORKER = new URL('../helpers/shm-stress-worker.js', import.meta.url);
const THREADS = 3;
const ITERATIONS = 400_000;

/** Generation k: n endpoints (1..8), all with weight n*10 + k%2, so a mixed copy is detectable. */
function set(k: number): EndpointSpec[] {
  const n = 1 + (k % 8);
  // Rotate the addresses too, so rows are added, drained and reused.
  return Array.from({ length: n }, (_, i) => ({ host: '127.0.0.1', port: 10_000 + ((i + k) % 12), weight: n * 10 + (k % 2) }));
}

test('seqlock readers never see a torn endpoint table and in-flight counts balance', async () => {
  const shm = SharedState.create({ maxWorkers: THREADS, maxUpstreams: 2, maxEndpoints: 16, limiterSlots: 16, limiterPolicies: 1 });
  const writer = new EndpointWriter(shm);
  writer.applyConfig([{ name: 'app', balancer: 'round-robin', endpoints: set(0), slowStartMs: 0, panicThreshold: 0 }], true);
  const slot = writer.slotOf('app');

  const results: Promise<{ copies: number; torn: number; picks: number; retries: number; firstTorn: string[] }>[] = [];
  const workers: Worker[] = [];
  for (let i = 0; i < THREADS; i++) {
    const w = new Worker(WORKER, { workerData: { buffer: shm.buffer, maxWorkers: THREADS, slot, iterations: ITERATIONS } });
    workers.push(w);
    results.push(new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    }));
  }
  let done = false;
  const all = Promise.all(results).finally(() => (done = true));
  // Rewrite until every reader finished (they stop by themselves), yielding between
  // bursts so their messages can arrive.
  let writes = 0;
  const started = Date.now();
  while (!done) {
    for (let j = 0; j < 200; j++) {
      writes++;
      writer.setEndpoints('app', set(writes), 'stress');
      writer.tick(); // frees drained rows, as the timer would
    }
    await new Promise((r) => setImmediate(r));
  }
  const elapsed = (Date.now() - started) / 1000;
  writer.stop();
  const r = await all;
  await Promise.all(workers.map((w) => w.terminate()));

  const copies = r.reduce((s, x) => s + x.copies, 0);
  const torn = r.reduce((s, x) => s + x.torn, 0);
  const picks = r.reduce((s, x) => s + x.picks, 0);
  const retries = r.reduce((s, x) => s + x.retries, 0);
  let inFlight = 0;
  for (let e = 0; e < 16; e++) inFlight += writer.table.rowField(slot, e, kEndpointInFlightField);
  console.log(`shm-stress: ${THREADS} readers, ${writes} table rewrites in ${elapsed.toFixed(2)}s (${Math.round(writes / elapsed)}/s), ${copies} snapshots, ${retries} seqlock retries, ${picks} picks, torn=${torn}, in-flight after=${inFlight}`);
  assert.equal(torn, 0, `torn reads: ${r.flatMap((x) => x.firstTorn).join('; ')}`);
  assert.equal(inFlight, 0, 'every in-flight increment must be matched by a decrement');
  assert.ok(copies > 0);
});
