// Lease sizing of cluster rate limits (src/fleet/lease-sizing.ts): batch, low-water
// mark, reservation horizon, surplus to give back, and the accuracy bound they imply.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accuracyBound, batchCap, planLease, plannedRate, surplusTokens, type LeaseParams } from '../../src/fleet/lease-sizing.js';

const fleet = (over: Partial<LeaseParams> = {}): LeaseParams => ({ rate: 50, burst: 25, instances: 10, aheadMs: 250, minTokens: 8, maxTokens: 10_000, ...over });

test('a small share gets the minimum batch, not one or two tokens', () => {
  // 50/s over 10 instances: a share of 5/s, 250 ms of which is 1.25 tokens.
  const plan = planLease(fleet(), { demand: 10, limited: true, refillMs: 55 });
  assert.equal(plannedRate(fleet(), { demand: 10, limited: true, refillMs: 55 }), 5, 'at the limit an instance plans for its share, however much it is asked');
  assert.equal(plan.batch, 8);
  assert.equal(plan.min, 4, 'granted at once only with half a batch available');
  assert.equal(plan.low, 1, 'ahead of need: refilled with the last token still there');
  // One batch for each of 10 instances at 50/s: 1.6 s, plus one refill.
  assert.ok(Math.abs(plan.horizonMs - 1655) < 1e-9, String(plan.horizonMs));
});

test('below the limit the batch follows the demand here; at the limit the share; never past the burst or maxTokens', () => {
  const p = fleet({ rate: 1000, burst: 500, instances: 4 });
  assert.equal(planLease(p, { demand: 400, limited: false, refillMs: 60 }).batch, 100, '400/s × 250 ms');
  assert.equal(planLease(p, { demand: 400, limited: true, refillMs: 60 }).batch, 63, 'share 250/s × 250 ms, rounded up');
  assert.equal(planLease(p, { demand: 100, limited: true, refillMs: 60 }).batch, 25, 'a demand under the share is planned as it is');
  assert.equal(planLease(p, { demand: 1e6, limited: false, refillMs: 60 }).batch, 500, 'Redis never holds more than the burst');
  assert.equal(planLease({ ...p, maxTokens: 40 }, { demand: 1e6, limited: false, refillMs: 60 }).batch, 40);
  assert.equal(batchCap(fleet({ burst: 3 })), 3);
  assert.equal(planLease(fleet({ burst: 3 }), { demand: 0, limited: false, refillMs: 50 }).batch, 3, 'a burst under lease.min caps the batch');
  assert.equal(planLease(fleet({ burst: 1 }), { demand: 1e3, limited: false, refillMs: 50 }).low, 1, 'low-water never above the batch');
});

test('the low-water mark covers what is spent while a refill is on its way', () => {
  const p = fleet({ rate: 10_000, burst: 10_000, instances: 2 });
  // 200/s here, a refill arriving 60 ms after it is wanted: 12 spent meanwhile.
  const plan = planLease(p, { demand: 200, limited: false, refillMs: 60 });
  assert.equal(plan.low, 12);
  assert.equal(plan.batch, 50);
  assert.equal(planLease(p, { demand: 200, limited: false, refillMs: 150 }).low, 30, 'a slower refill is asked for earlier');
  assert.equal(planLease(p, { demand: 200, limited: false, refillMs: 400 }).low, 50, 'but never above the batch');
  // At the limit the batch is planned for the share, the low-water mark for what is asked here.
  const limited = planLease(fleet({ rate: 2000, burst: 1000 }), { demand: 400, limited: true, refillMs: 55 });
  assert.deepEqual([limited.batch, limited.low], [50, 22]);
});

test('a demand that is no number plans as none: the minimum batch', () => {
  for (const demand of [Number.NaN, -5, Number.POSITIVE_INFINITY, 0]) {
    const plan = planLease(fleet(), { demand, limited: false, refillMs: 50 });
    assert.deepEqual([plan.batch, plan.low, plan.min], [8, 1, 4], String(demand));
  }
});

test('surplus: only what is above a batch plus the low-water mark, and only when that is worth a command', () => {
  const plan = planLease(fleet(), { demand: 5, limited: true, refillMs: 55 }); // batch 8, low 1
  assert.equal(surplusTokens(100, plan, 8), 91);
  assert.equal(surplusTokens(17, plan, 8), 8);
  assert.equal(surplusTokens(16, plan, 8), 0, '7 over is less than a batch');
  assert.equal(surplusTokens(0, plan, 8), 0);
  assert.equal(surplusTokens(-3, plan, 8), 0, 'a lease overdrawn by racing workers gives nothing back');
});

test('accuracy bound: N × (batch + low) tokens outside Redis at the limit, one EVALSHA per batch', () => {
  // The README's arithmetic: 50/s, burst 25, lease.ahead 250 ms, lease.min 8, a refill
  // 55 ms after it is wanted (syncInterval 50 ms + a 5 ms round trip).
  const ten = accuracyBound(fleet(), 55);
  assert.deepEqual(ten, { batch: 8, low: 1, perInstance: 9, fleet: 90, commandsPer1000: 125 });
  const five = accuracyBound(fleet({ instances: 5 }), 55);
  assert.deepEqual(five, { batch: 8, low: 1, perInstance: 9, fleet: 45, commandsPer1000: 125 });
  // 2 instances: a share of 25/s, 6.25 tokens per 250 ms, still under lease.min; 25/s × 55 ms = 1.4 → 2.
  const two = accuracyBound(fleet({ instances: 2 }), 55);
  assert.deepEqual(two, { batch: 8, low: 2, perInstance: 10, fleet: 20, commandsPer1000: 125 });
  // A high rate: 2,000/s over 10 instances, burst 1,000: share 200/s → 50 a batch, 11 low-water.
  const high = accuracyBound(fleet({ rate: 2000, burst: 1000 }), 55);
  assert.deepEqual(high, { batch: 50, low: 11, perInstance: 61, fleet: 610, commandsPer1000: 20 });
  assert.deepEqual(accuracyBound(fleet({ rate: 2000, burst: 1000 }), 55, 400), { batch: 50, low: 22, perInstance: 72, fleet: 720, commandsPer1000: 20 });
  // At 2 × the limit the low-water mark is twice the share's: 2 instances at 50/s × 55 ms → 3.
  assert.deepEqual(accuracyBound(fleet({ instances: 2 }), 55, 50), { batch: 8, low: 3, perInstance: 11, fleet: 22, commandsPer1000: 125 });
  // The trade: a bigger minimum costs fewer commands and more tokens held.
  const bigger = accuracyBound(fleet({ minTokens: 16 }), 55);
  assert.ok(bigger.commandsPer1000 < ten.commandsPer1000 && bigger.fleet > ten.fleet);
});
