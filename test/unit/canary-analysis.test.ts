// The canary check's statistics and the rollout state machine, with hand-checked numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyse, mannWhitneyU, normalCdf } from '../../src/primary/rollout/canary-analysis.js';
import { act, initialState, onCheck, type RolloutState } from '../../src/primary/rollout/rollout-controller.js';
import { cumulative } from '../../src/shm/split-table.js';
import { kSplitScale } from '../../src/shm/layout.js';
import { rolloutSchema } from '../../src/config/schema-rollout.js';

const m = (pairs: [number, number][]) => new Map(pairs);

test('Mann-Whitney U from bucket counts: ties count half, the tie-corrected variance and a one-sided p', () => {
  // A = {1, 2, 2}, B = {2, 3}: A beats no B; the two A 2s tie with B's 2: U_A = 0 + 0.5 + 0.5 = 1
  const r = mannWhitneyU(m([[1, 1], [2, 2]]), m([[2, 1], [3, 1]]));
  assert.equal(r.u, 1);
  assert.equal(r.n1, 3);
  assert.equal(r.n2, 2);
  // tie group of 3 at value 2: Σ(t³−t) = 24; var = 3·2/12 · (6 − 24/20) = 2.4
  assert.ok(Math.abs(r.z - (1 - 3 - 0.5) / Math.sqrt(2.4)) < 1e-12);
  // identical samples: z < 0 (continuity), p ≥ 0.5
  const same = mannWhitneyU(m([[5, 100], [6, 100]]), m([[5, 100], [6, 100]]));
  assert.ok(same.p > 0.5);
  // everything in one bucket: no information, p = 1
  assert.equal(mannWhitneyU(m([[5, 10]]), m([[5, 10]])).p, 1);
  // A entirely above B: very small p
  assert.ok(mannWhitneyU(m([[20, 50]]), m([[10, 50]])).p < 1e-10);
  assert.ok(Math.abs(normalCdf(1.959964) - 0.975) < 1e-6);
  assert.ok(Math.abs(normalCdf(-2.326348) - 0.01) < 1e-6);
});

const cfg = { minRequests: 20, maxErrorRate: 0.05, maxLatencyRatio: 1.5 };
const counts = (ok: number, err: number) => [0, 0, ok, 0, 0, err];
const idx = (v: number) => v; // bucket index = µs for these checks

test('analyse: error-rate excess fails, a slower canary fails only when significant and over the ratio, too few requests is inconclusive', () => {
  const fast = m([[1000, 50], [1100, 50]]);
  const ok = analyse({ counts: counts(100, 0), buckets: fast }, { counts: counts(100, 2), buckets: fast }, cfg, idx);
  assert.equal(ok.verdict, 'pass', ok.reasons.join());
  assert.equal(ok.errorRateDiff, 0.0196);

  const errors = analyse({ counts: counts(100, 0), buckets: fast }, { counts: counts(70, 30), buckets: fast }, cfg, idx);
  assert.equal(errors.verdict, 'fail');
  assert.match(errors.reasons[0]!, /error rate 30% vs stable 0%/);

  const slow = m([[3000, 50], [3300, 50]]);
  const slower = analyse({ counts: counts(100, 0), buckets: fast }, { counts: counts(100, 0), buckets: slow }, cfg, idx);
  assert.equal(slower.verdict, 'fail');
  assert.equal(slower.latency?.medianRatio, 3);
  assert.ok(slower.latency!.significant);

  // significant but small: 10 % slower passes a 1.5 ratio
  const bitSlower = analyse({ counts: counts(100, 0), buckets: fast }, { counts: counts(100, 0), buckets: m([[1100, 50], [1210, 50]]) }, cfg, idx);
  assert.equal(bitSlower.verdict, 'pass');

  // large ratio on 2 + 2 samples would not be significant; but minRequests stops it first
  const few = analyse({ counts: counts(5, 0), buckets: fast }, { counts: counts(100, 0), buckets: slow }, cfg, idx);
  assert.equal(few.verdict, 'inconclusive');
  assert.match(few.reasons[0]!, /too little traffic: stable 5, canary 100/);
});

const rc = rolloutSchema.parse({ route: 'api', stable: 'blue', canary: 'green', steps: [5, 25, 50, 100], interval: '10s', analysis: { failedChecks: 2 } });
const pass = analyse({ counts: counts(100, 0), buckets: m([[1, 100]]) }, { counts: counts(100, 0), buckets: m([[1, 100]]) }, cfg, idx);
const fail = analyse({ counts: counts(100, 0), buckets: m([[1, 100]]) }, { counts: counts(70, 30), buckets: m([[1, 100]]) }, cfg, idx);
const now = new Date(0);

test('rollout: start, a pass per step up to the last below 100, then promoted; two failures roll back to 0 %', () => {
  let s: RolloutState = initialState(now);
  const started = act('r', rc, s, 'start', now);
  assert.ok(started.ok);
  s = started.state;
  assert.deepEqual([s.phase, s.step, s.weight], ['progressing', 0, 5]);
  const weights = [s.weight];
  for (let i = 0; i < 3; i++) {
    s = onCheck('r', rc, s, pass, now).state;
    weights.push(s.weight);
  }
  assert.deepEqual(weights, [5, 25, 50, 100]);
  assert.equal(s.phase, 'promoted');
  assert.equal(s.checks.length, 3);

  const again = act('r', rc, s, 'start', now);
  assert.ok(again.ok, 'a promoted rollout can start over');
  s = onCheck('r', rc, again.state, pass, now).state; // 25
  const f1 = onCheck('r', rc, s, fail, now);
  assert.equal(f1.state.phase, 'progressing');
  assert.equal(f1.events[0]!.event, 'rollout-check-failed');
  // a pass in between resets the count
  s = onCheck('r', rc, f1.state, pass, now).state; // 50
  assert.equal(s.failures, 0);
  s = onCheck('r', rc, s, fail, now).state;
  const f2 = onCheck('r', rc, s, fail, now);
  assert.deepEqual([f2.state.phase, f2.state.weight], ['rolled-back', 0]);
  assert.equal(f2.events[0]!.event, 'rollout-rolled-back');
  assert.equal(f2.events[0]!.fields.failures, 2);
});

test('rollout actions refused where they make no sense; onFailure pause holds the weight', () => {
  const s = initialState(now);
  assert.equal(act('r', rc, s, 'pause', now).ok, false);
  assert.equal(act('r', rc, s, 'resume', now).ok, false);
  const p = (act('r', rc, s, 'start', now) as { state: RolloutState }).state;
  assert.equal(act('r', rc, p, 'start', now).ok, false);
  const paused = (act('r', rc, p, 'pause', now) as { state: RolloutState }).state;
  assert.equal(paused.phase, 'paused');
  const promoted = act('r', rc, paused, 'promote', now);
  assert.ok(promoted.ok);
  assert.deepEqual([promoted.state.phase, promoted.state.weight], ['promoted', 100]);
  const holder = { ...rc, onFailure: 'pause' as const, analysis: { ...rc.analysis, failedChecks: 1 } };
  const held = onCheck('r', holder, p, fail, now).state;
  assert.deepEqual([held.phase, held.weight], ['paused', 5]);
});

test('split thresholds: cumulative out of the scale, the last always the full scale, and a rising canary weight only lowers its threshold', () => {
  assert.deepEqual(cumulative([80, 20]), [Math.round(0.8 * kSplitScale), kSplitScale]);
  assert.deepEqual(cumulative([0, 100]), [0, kSplitScale]);
  assert.throws(() => cumulative([0, 0]));
  let prev = kSplitScale;
  for (const w of [0, 5, 25, 50, 100]) {
    const t = cumulative([100 - w, w])[0]!;
    assert.ok(t <= prev, 'a caller with x ≥ the threshold (on the canary) stays on it');
    prev = t;
  }
});

test('rollout config: steps must rise and end at 100', () => {
  assert.equal(rolloutSchema.safeParse({ route: 'a', stable: 'b', canary: 'c', steps: [50, 25, 100] }).success, false);
  assert.equal(rolloutSchema.safeParse({ route: 'a', stable: 'b', canary: 'c', steps: [5, 50] }).success, false);
  assert.equal(rolloutSchema.parse({ route: 'a', stable: 'b', canary: 'c', analysis: { maxErrorRate: '2%' } }).analysis.maxErrorRate, 0.02);
});
