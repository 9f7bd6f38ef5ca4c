import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedState } from '../../src/shm/shared-state.js';
import { EndpointSnapshot, EndpointTable } from '../../src/shm/endpoint-table.js';
import { EndpointWriter, type EndpointSpec } from '../../src/primary/endpoint-writer.js';
import { WeightedRoundRobinBalancer } from '../../src/balancers/weighted-round-robin.js';
import { RoundRobinBalancer } from '../../src/balancers/round-robin.js';
import { LeastRequestBalancer } from '../../src/balancers/least-request.js';
import { PeakEwmaBalancer } from '../../src/balancers/peak-ewma.js';
import { ConsistentHashBalancer } from '../../src/balancers/consistent-hash.js';
import { hash32 } from '../../src/balancers/hash.js';

function eps(n: number, weights: number[] = []): EndpointSpec[] {
  return Array.from({ length: n }, (_, i) => ({ host: '10.0.0.1', port: 8000 + i, weight: weights[i] ?? 1 }));
}

function setup(endpoints: EndpointSpec[], opts: { slowStartMs?: number; panicThreshold?: number; maxEndpoints?: number } = {}) {
  const shm = SharedState.create({ maxWorkers: 1, maxUpstreams: 2, maxEndpoints: opts.maxEndpoints ?? 32, limiterSlots: 16, limiterPolicies: 1 });
  const writer = new EndpointWriter(shm);
  writer.applyConfig([{ name: 'app', balancer: 'x', endpoints, slowStartMs: opts.slowStartMs ?? 0, panicThreshold: opts.panicThreshold ?? 0 }], true);
  const table = new EndpointTable(shm);
  const slot = table.findUpstream('app');
  const snap = new EndpointSnapshot(table, slot);
  const pick = (b: { pick(a: number, h: number): number }, avoid = -1, hash = -1): number => {
    snap.sync();
    return b.pick(avoid, hash);
  };
  return { shm, writer, table, slot, snap, pick };
}

test('smooth weighted round robin: weights 5,1,1 give a a b a c a a (nginx)', () => {
  const { snap, pick, writer } = setup(eps(3, [5, 1, 1]));
  const b = new WeightedRoundRobinBalancer(snap);
  assert.deepEqual(Array.from({ length: 7 }, () => 'abc'[pick(b)]).join(' '), 'a a b a c a a');
  writer.stop();
});

test('round robin cycles and a retry avoids the failed endpoint', () => {
  const { snap, pick, writer } = setup(eps(3));
  const b = new RoundRobinBalancer(snap);
  assert.deepEqual([pick(b), pick(b), pick(b), pick(b)], [0, 1, 2, 0]);
  assert.equal(pick(b, 1), 2, 'next would be 1, which the retry avoids');
  writer.stop();
});

test('least request (P2C) never picks the endpoint with most requests in flight', () => {
  const { snap, pick, table, slot, writer } = setup(eps(3));
  table.addInFlight(slot, 0, 10);
  const b = new LeastRequestBalancer(snap);
  const counts = [0, 0, 0];
  for (let i = 0; i < 3000; i++) counts[pick(b)]!++;
  assert.equal(counts[0], 0, 'two choices always include a less loaded endpoint');
  assert.ok(counts[1]! > 1000 && counts[2]! > 1000, `spread over the rest: ${counts}`);
  writer.stop();
});

test('peak EWMA moves traffic away from a slow endpoint after one sample', () => {
  const { snap, pick, table, slot, writer } = setup(eps(3));
  table.recordResult(slot, 0, 200, 50_000); // 50 ms
  table.recordResult(slot, 1, 200, 1_000);
  table.recordResult(slot, 2, 200, 1_200);
  const b = new PeakEwmaBalancer(snap);
  const counts = [0, 0, 0];
  for (let i = 0; i < 3000; i++) counts[pick(b)]!++;
  assert.equal(counts[0], 0, `slow endpoint loses every pair: ${counts}`);
  // The EWMA decays after faster samples, peaks at once on a slow one.
  table.recordResult(slot, 1, 200, 100_000);
  assert.equal(snap.ewmaUs(1), 100_000);
  table.recordResult(slot, 1, 200, 1_000);
  assert.ok(snap.ewmaUs(1) < 100_000 && snap.ewmaUs(1) > 80_000);
  // A fast failure is not a fast endpoint.
  table.recordResult(slot, 2, 503, 200);
  assert.equal(snap.ewmaUs(2), 1_000_000);
  // Time decay (the primary's 1 s timer) lets a once-slow endpoint be tried again.
  const { writer: w2, table: t2, slot: s2, snap: sn2 } = setup(eps(2));
  w2.applyConfig([{ name: 'app', balancer: 'peak-ewma', endpoints: eps(2), slowStartMs: 0, panicThreshold: 0 }]);
  t2.recordResult(s2, 0, 200, 50_000);
  t2.recordResult(s2, 1, 200, 1_000);
  for (let i = 0; i < 40; i++) w2.decayEwma(); // 40 s
  assert.ok(sn2.ewmaUs(0) < 1_000, `decayed: ${sn2.ewmaUs(0)}`);
  w2.stop();
  writer.stop();
});

test('Maglev consistent hashing: even spread, same answer on every worker, small disruption when an endpoint leaves', () => {
  const N = 10;
  const KEYS = 20_000;
  const a = setup(eps(N));
  const addressOf = (row: number): string => a.table.readAddress(a.slot, row);
  const b1 = new ConsistentHashBalancer({ snapshot: a.snap, addressOf });
  // A second "worker": its own snapshot and picker over the same table.
  const snap2 = new EndpointSnapshot(a.table, a.slot);
  const b2 = new ConsistentHashBalancer({ snapshot: snap2, addressOf });
  const before = new Int32Array(KEYS);
  const counts = new Array<number>(N).fill(0);
  for (let k = 0; k < KEYS; k++) {
    const h = hash32(`user-${k}`);
    before[k] = a.pick(b1, -1, h);
    counts[before[k]!]!++;
    assert.equal(b2.pick(-1, h), before[k]);
  }
  for (const c of counts) assert.ok(Math.abs(c / KEYS - 1 / N) < 0.03, `spread: ${counts}`);
  // Endpoint 3 leaves (discovery drops it: it drains and takes nothing new).
  a.writer.setEndpoints('app', eps(N).filter((_, i) => i !== 3));
  let moved = 0;
  let movedOthers = 0;
  for (let k = 0; k < KEYS; k++) {
    const e = a.pick(b1, -1, hash32(`user-${k}`));
    assert.notEqual(e, 3);
    if (e !== before[k]) {
      moved++;
      if (before[k] !== 3) movedOthers++;
    }
  }
  const share = moved / KEYS;
  const othersShare = movedOthers / KEYS;
  console.log(`maglev: ${N} endpoints, one leaves: ${(share * 100).toFixed(2)}% of keys moved (${((counts[3]! / KEYS) * 100).toFixed(2)}% owned by it, ${(othersShare * 100).toFixed(2)}% others)`);
  assert.ok(share <= 1 / N + 0.05, `bounded disruption: ${share}`);
  assert.ok(othersShare < 0.05, `keys of the remaining endpoints mostly stay: ${othersShare}`);
  // A retry for a key avoids the endpoint it failed on, deterministically.
  const h = hash32('user-1');
  const first = a.pick(b1, -1, h);
  const retry = a.pick(b1, first, h);
  assert.notEqual(retry, first);
  assert.equal(a.pick(b1, first, h), retry);
  a.writer.stop();
});

test('slow start ramps a new endpoint from 10% to its full weight over the window', () => {
  const { snap, writer, slot, table } = setup(eps(2, [4, 4]), { slowStartMs: 10_000 });
  snap.sync();
  assert.equal(snap.weights[0], 400, 'the initial set starts at full weight');
  const t0 = Date.now();
  writer.setEndpoints('app', eps(3, [4, 4, 4]));
  snap.sync();
  assert.equal(snap.weights[2], 40, 'a new endpoint starts at 10%');
  writer.tick(t0 + 5_000);
  snap.sync();
  assert.ok(Math.abs(snap.weights[2]! - 200) <= 2, `half way: ${snap.weights[2]}`);
  writer.tick(t0 + 10_500);
  snap.sync();
  assert.equal(snap.weights[2], 400);
  // Re-admission after an ejection ramps again.
  writer.setState('app', 1, 'ejected', 'test');
  writer.setState('app', 1, 'healthy', 'test');
  snap.sync();
  assert.ok(snap.weights[1]! < 400, `re-admitted endpoint ramps: ${snap.weights[1]}`);
  assert.equal(table.rowField(slot, 1, 7 /* ejections */), 1);
  writer.stop();
});

test('panic mode: below the threshold of healthy endpoints, balance over all of them', () => {
  const { snap, writer, table, slot } = setup(eps(4), { panicThreshold: 50 });
  snap.sync();
  assert.equal(snap.count, 4);
  writer.setState('app', 0, 'ejected', 'test');
  writer.setState('app', 1, 'ejected', 'test');
  snap.sync();
  assert.equal(snap.panic, false, '2/4 = 50% is not below 50%');
  assert.equal(snap.count, 2);
  writer.setState('app', { host: '10.0.0.1', port: 8002 }, 'ejected', 'test');
  snap.sync();
  assert.equal(snap.panic, true);
  assert.equal(snap.count, 4, 'panic spreads over ejected endpoints too');
  const st = writer.status()[0]!;
  assert.equal(st.panic, true);
  assert.equal(st.healthy, 1);
  table.countPanicPick(slot);
  assert.equal(writer.status()[0]!.panicPicks, 1);
  writer.setState('app', 0, 'healthy', 'test');
  snap.sync();
  assert.equal(snap.panic, false);
  assert.equal(snap.count, 2);
  // Draining endpoints are never picked, not even in panic.
  writer.setState('app', 3, 'draining', 'test');
  snap.sync();
  assert.ok(!Array.from(snap.candidates.subarray(0, snap.count)).includes(3));
  writer.stop();
});

test('writer API: weights, passive-health counters, capacity errors', () => {
  const { snap, writer, table, slot } = setup(eps(2), { maxEndpoints: 4 });
  writer.setWeight('app', 1, 3);
  snap.sync();
  assert.deepEqual([snap.weights[0], snap.weights[1]], [100, 300]);
  for (let i = 0; i < 3; i++) table.recordResult(slot, 0, 503, 1000);
  table.recordResult(slot, 0, 0, 0);
  assert.deepEqual(writer.read('app', { host: '10.0.0.1', port: 8000 }), { consecutive5xx: 3, consecutiveConnectFailures: 1 });
  table.recordResult(slot, 0, 200, 1000);
  assert.deepEqual(writer.read('app', 0), { consecutive5xx: 0, consecutiveConnectFailures: 0 }, 'a success resets both');
  table.recordResult(slot, 0, 500, 1000);
  writer.reset('app', 0);
  assert.deepEqual(writer.read('app', 0), { consecutive5xx: 0, consecutiveConnectFailures: 0 });
  assert.throws(() => writer.setEndpoints('app', eps(5)), (e: Error & { code?: string }) => e.code === 'TG_ERR_SHM_CAPACITY' && /endpointsPerUpstream.*5 endpoints.*4/.test(e.message));
  assert.throws(
    () => writer.applyConfig([1, 2, 3].map((i) => ({ name: `u${i}`, balancer: 'x', endpoints: eps(1), slowStartMs: 0, panicThreshold: 0 }))),
    (e: Error & { code?: string }) => e.code === 'TG_ERR_SHM_CAPACITY' && /capacity\.upstreams.*3 upstreams.*2/.test(e.message),
  );
  assert.throws(
    () => writer.applyConfig([{ name: 'n'.repeat(65), balancer: 'x', endpoints: eps(1), slowStartMs: 0, panicThreshold: 0 }]),
    (e: Error & { code?: string }) => e.code === 'TG_ERR_SHM_CAPACITY' && /longer than the 64 bytes/.test(e.message),
  );
  assert.equal(table.upstreamField(slot, 0 /* seqlock */) % 2, 0, 'a refused write never leaves the seqlock odd');
  assert.equal(table.findUpstream('app'), slot, 'a refused config changes nothing');
  // A removed endpoint drains, then its row is freed once nothing is in flight.
  table.addInFlight(slot, 1, 1);
  writer.setEndpoints('app', eps(1));
  writer.tick();
  assert.equal(writer.status()[0]!.endpoints.length, 2, 'still draining: one request in flight');
  table.addInFlight(slot, 1, -1);
  writer.tick();
  assert.equal(writer.status()[0]!.endpoints.length, 1);
  writer.stop();
});

test('peak EWMA keeps decaying on its own timer after the last table write', async () => {
  const { writer, table, slot, snap } = setup(eps(2));
  writer.applyConfig([{ name: 'app', balancer: 'peak-ewma', endpoints: eps(2), slowStartMs: 0, panicThreshold: 0 }]);
  // A write arms the 250 ms ramp/free tick, which goes idle at once (no slow start, nothing draining).
  writer.setWeight('app', 0, 1);
  table.recordResult(slot, 0, 200, 50_000);
  assert.equal(snap.ewmaUs(0), 50_000);
  const deadline = Date.now() + 4_000;
  while (snap.ewmaUs(0) >= 50_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  writer.stop();
  assert.ok(snap.ewmaUs(0) < 50_000, `the 1 s decay ran after the tick went idle: ${snap.ewmaUs(0)}`);
});

test("releaseWorker subtracts exactly a dead worker's in-flight shares and pending count, and leaves the others'", () => {
  const shm = SharedState.create({ maxWorkers: 2, maxUpstreams: 2, maxEndpoints: 32, limiterSlots: 16, limiterPolicies: 1 });
  const writer = new EndpointWriter(shm);
  writer.applyConfig([{ name: 'app', balancer: 'least-request', endpoints: eps(3), slowStartMs: 0, panicThreshold: 0 }], true);
  const w0 = new EndpointTable(shm, 0);
  const w1 = new EndpointTable(shm, 1);
  const slot = w0.findUpstream('app');
  const snap = new EndpointSnapshot(w0, slot);
  w0.addInFlight(slot, 0, 1);
  w0.addInFlight(slot, 0, 1);
  w0.addInFlight(slot, 2, 1);
  w0.addInFlight(slot, 2, -1);
  w1.addInFlight(slot, 0, 1);
  w1.addInFlight(slot, 1, 1);
  w0.addPending(slot, 3);
  w0.countOverloaded(slot);
  assert.deepEqual([snap.inFlight(0), snap.inFlight(1), snap.inFlight(2)], [3, 1, 0]);
  assert.equal(writer.releaseWorker(0), 2);
  assert.deepEqual([snap.inFlight(0), snap.inFlight(1), snap.inFlight(2)], [1, 1, 0], "only worker 1's requests remain");
  assert.deepEqual(
    writer.overload('app', [0, 1]).map(({ worker, pending, overloaded }) => ({ worker, pending, overloaded })),
    [
      { worker: 0, pending: 0, overloaded: 1 },
      { worker: 1, pending: 0, overloaded: 0 },
    ],
  );
  assert.equal(writer.releaseWorker(0), 0, 'nothing twice');
  writer.stop();
});
