// The worker scaler's step function with recorded inputs: no timers, no threads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { workerScalingSchema } from '../../src/config/schema-workers.js';
import { initialWorkerScale, workerScaleSettled, workerScaleStep, type WorkerScaleState } from '../../src/controllers/worker-scale.js';
import { validateConfig } from '../../src/config/load.js';

const TICK = 200;
const cfg = workerScalingSchema.parse({ min: 1, max: 3, target: '70%', release: '30%', addAfter: '1s', retireAfter: '2s', cooldown: '3s' });

interface Tick {
  readonly elu: number;
  readonly serving: number;
  readonly changing?: number;
}

/** Feeds one tick per sample from `start`; returns the actions with their times and the last state. */
function replay(s: WorkerScaleState, start: number, samples: readonly Tick[]): { state: WorkerScaleState; actions: { at: number; action: string; fields: Record<string, unknown> }[] } {
  const actions: { at: number; action: string; fields: Record<string, unknown> }[] = [];
  let now = start;
  for (const t of samples) {
    const r = workerScaleStep(cfg, s, { now, elu: t.elu, serving: t.serving, changing: t.changing ?? 0 });
    s = r.state;
    if (r.action !== null) actions.push({ at: now, action: r.action, fields: { ...r.event!.fields } });
    now += TICK;
  }
  return { state: s, actions };
}

const ticks = (n: number, t: Tick): Tick[] => Array.from({ length: n }, () => t);

test('worker scale: sustained utilisation above target adds one thread after addAfter, not before', () => {
  // A recorded overload: 1 thread at 85–95 % (noise included), from t = 3 s (past the start cool-down).
  const recorded = [0.88, 0.91, 0.86, 0.95, 0.9, 0.87, 0.93, 0.89, 0.92, 0.9].map((elu) => ({ elu, serving: 1 }));
  const { actions, state } = replay(initialWorkerScale(0), 3_000, recorded);
  assert.equal(actions.length, 1, JSON.stringify(actions));
  assert.equal(actions[0]!.action, 'add');
  // The dwell starts at the first hot tick (3.0 s) and ends 1 s later.
  assert.equal(actions[0]!.at, 4_000);
  assert.equal(actions[0]!.fields.from, 1);
  assert.equal(actions[0]!.fields.to, 2);
  assert.equal(state.adds, 1);
});

test('worker scale: one dip below target restarts the dwell; a spike shorter than addAfter adds nothing', () => {
  const spike = [...ticks(3, { elu: 0.95, serving: 1 }), ...ticks(3, { elu: 0.1, serving: 1 }), ...ticks(3, { elu: 0.95, serving: 1 })];
  assert.deepEqual(replay(initialWorkerScale(0), 3_000, spike).actions, []);
});

test('worker scale: nothing moves while a thread starts or drains, nor during the cool-down after it settled', () => {
  let s = replay(initialWorkerScale(0), 3_000, ticks(6, { elu: 0.95, serving: 1 })).state;
  // The added thread is starting: still overloaded, but no second add.
  let r = replay(s, 4_200, ticks(10, { elu: 0.95, serving: 1, changing: 1 }));
  assert.deepEqual(r.actions, []);
  // It listens at 6.2 s: the cool-down (3 s) holds even at full load, then the dwell (1 s) runs again.
  s = workerScaleSettled(r.state, 6_200);
  r = replay(s, 6_200, ticks(24, { elu: 0.95, serving: 2 }));
  assert.equal(r.actions.length, 1);
  assert.equal(r.actions[0]!.action, 'add');
  assert.ok(r.actions[0]!.at >= 6_200 + 3_000 + 1_000, `added at ${r.actions[0]!.at}`);
  // At max nothing more is added, however hot.
  s = workerScaleSettled(r.state, 20_000);
  assert.deepEqual(replay(s, 20_000, ticks(50, { elu: 0.99, serving: 3 })).actions, []);
});

test('worker scale: retires after retireAfter at or below release, never below min, never into overload', () => {
  // 3 threads at 20 %: the 2 left would carry 30 % < 70 % → retire after 2 s.
  let r = replay(initialWorkerScale(0), 3_000, ticks(12, { elu: 0.2, serving: 3 }));
  assert.equal(r.actions.length, 1);
  assert.equal(r.actions[0]!.action, 'retire');
  assert.equal(r.actions[0]!.at, 5_000);
  assert.equal(r.actions[0]!.fields.utilizationAfter, 0.3);
  // 2 threads at 29 % (under release): one thread would carry 58 %: allowed. At min (1) never.
  assert.equal(replay(initialWorkerScale(0), 3_000, ticks(12, { elu: 0.29, serving: 2 })).actions[0]?.action, 'retire');
  assert.deepEqual(replay(initialWorkerScale(0), 3_000, ticks(50, { elu: 0, serving: 1 })).actions, []);
  // With release close to target, a retire that would push the rest over target is refused: no flapping.
  const close = workerScalingSchema.parse({ min: 1, max: 4, target: '50%', release: '40%', addAfter: '1s', retireAfter: '1s', cooldown: '1s' });
  let s = initialWorkerScale(0);
  for (let now = 2_000; now < 20_000; now += TICK) {
    const step = workerScaleStep(close, s, { now, elu: 0.38, serving: 2, changing: 0 });
    s = step.state;
    assert.equal(step.action, null, `at ${now}: 2 × 38 % on one thread is 76 % > 50 %`);
  }
});

test('worker scale: a steady load between release and target never changes the count (recorded 60 s)', () => {
  const steady = Array.from({ length: 300 }, (_, i) => ({ elu: 0.45 + 0.2 * Math.sin(i / 7), serving: 2 }));
  assert.deepEqual(replay(initialWorkerScale(0), 3_000, steady).actions, []);
});

test('workers config: a number, auto, or a block with bounds; bad blocks are rejected with paths', () => {
  const base = { upstreams: { a: { discovery: { type: 'static', endpoints: ['127.0.0.1:1'] } } }, routes: [{ match: { path: '/' }, upstream: 'a' }] };
  assert.equal(validateConfig({ ...base, workers: 3 }).workers, 3);
  assert.equal(validateConfig({ ...base }).workers, 'auto');
  assert.deepEqual(validateConfig({ ...base, workers: { min: 1, max: 2 } }).workers, { min: 1, max: 2, target: 75, release: 30, addAfter: 3000, retireAfter: 60000, cooldown: 10000 });
  const issues = (w: unknown): readonly string[] => {
    try {
      validateConfig({ ...base, workers: w });
    } catch (err) {
      return (err as { issues: readonly string[] }).issues;
    }
    return [];
  };
  assert.deepEqual(issues({ min: 1, max: 4, targt: 50 }), ['workers.targt: unknown key']);
  assert.deepEqual(issues({ min: 5, max: 4 }), ['workers.min: min must not exceed max']);
  assert.deepEqual(issues({ min: 1, max: 4, target: '50%', release: '60%' }), ['workers.release: release must be below target']);
  assert.equal(issues({ min: 0, max: 300 }).length, 2);
});
