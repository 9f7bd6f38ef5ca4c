// The overload scenario's arithmetic: goodput, critical success, rejection latency and
// recovery from a generator's per-request record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GeneratorOutput } from '../../native-bench/overload/generator.js';
import { parseOverloadOptions, summarise } from '../../native-bench/overload/run.js';
import { nginxLimits } from '../../native-bench/overload/peers.js';

/** 1 s before, 2 s overload, 2 s after, 100 requests per second; `fate(i, dueMs)` → [status, latency ms] */
function record(fate: (i: number, due: number) => [number, number]): GeneratorOutput {
  const g: GeneratorOutput = { startEpochMs: 0, dueMs: [], phase: [], critical: [], status: [], latencyMs: [], errors: {}, maxSendLagMs: 0 };
  for (let i = 0; i < 500; i++) {
    const due = i * 10;
    const [status, latency] = fate(i, due);
    g.dueMs.push(due);
    g.phase.push(due < 1000 ? 0 : due < 3000 ? 1 : 2);
    g.critical.push(i % 10 === 0 ? 1 : 0);
    g.status.push(status);
    g.latencyMs.push(latency);
  }
  return g;
}

const o = parseOverloadOptions(['--scenario', 'overload', '--capacity', '2', '--service', '20', '--before', '1', '--overload', '2', '--after', '2']);

test('goodput, critical success and fast-rejection latency count only the overload phase', () => {
  // in the overload: critical always 200 in 30 ms, bulk alternately 200 (30 ms) and 503 (1 ms)
  const s = summarise(record((i, due) => (due >= 1000 && due < 3000 && i % 10 !== 0 && i % 2 === 1 ? [503, 1] : [200, 30])), o);
  const ov = s.overload!;
  assert.equal(ov.criticalSent, 20);
  assert.equal(ov.criticalSuccessPct, 100);
  assert.equal(ov.criticalP99Ms, 30);
  assert.equal(ov.rejected, 100);
  assert.equal(ov.rejectedP50Ms, 1);
  assert.deepEqual(ov.rejectStatuses, { 503: 100 });
  assert.equal(ov.goodputRps, 50, '100 of 200 answered 2xx over 2 s');
  assert.equal(ov.goodputPctOfCapacity, 50, 'capacity 2 / 20 ms = 100/s');
  assert.equal(s.recoveryS, 0);
  assert.equal(s.afterSuccessPct, 100);
});

test('recovery is the time after the overload until every later 250 ms bin is ≥ 95 % 2xx; timeouts are lost, not rejections', () => {
  // everything due before 3.6 s times out; from then on all succeed
  const s = summarise(record((_, due) => (due >= 1000 && due < 3600 ? [0, 2000] : [200, 25])), o);
  assert.equal(s.overload!.timeoutsOrErrors, 200);
  assert.equal(s.overload!.rejected, 0);
  assert.equal(s.recoveryS, 0.75, '3.0 → 3.5 s fail; the bin from 3.5 s holds 10 failures of 25, the one from 3.75 s none');
  const never = summarise(record((_, due) => (due >= 1000 ? [0, 2000] : [200, 25])), o);
  assert.equal(never.recoveryS, null);
});

test("nginx's static limits follow the upstream's capacity", () => {
  assert.deepEqual(nginxLimits({ capacity: 8, serviceMs: 20, criticalShare: 0.1 }), { CAPACITY: 8, SERVICE_MS: 20, CAPACITY_RPS: 400, BULK_CONN: 7, BULK_RPS: 360, BULK_BURST: 16, CRITICAL_CONN: 4 });
});
