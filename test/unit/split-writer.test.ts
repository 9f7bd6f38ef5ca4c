// The split writer's layers over the configured weights: a rollout's step, then a split
// override on top. The shared row always holds the top layer; ending the override
// uncovers the rollout's weights, ending that the configured ones; a reload keeps
// the layers while the route keeps its sides, and drops the override when the
// configured weights changed (the edited config is the newer word).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/load.js';
import { SharedState } from '../../src/shm/shared-state.js';
import { SplitWriter } from '../../src/primary/rollout/split-writer.js';
import { createLogger } from '../../src/primary/logger.js';

function config(weights: [number, number], sides: [string, string] = ['blue', 'green']): ReturnType<typeof validateConfig> {
  return validateConfig({
    upstreams: { blue: { discovery: { type: 'static', endpoints: ['127.0.0.1:9001'] } }, green: { discovery: { type: 'static', endpoints: ['127.0.0.1:9002'] } }, red: { discovery: { type: 'static', endpoints: ['127.0.0.1:9003'] } } },
    routes: [{ name: 'api', split: [{ upstream: sides[0], weight: weights[0] }, { upstream: sides[1], weight: weights[1] }] }],
  });
}

function setup(): { w: SplitWriter; row: () => number[] } {
  const shm = SharedState.create({ maxWorkers: 1, maxUpstreams: 3, maxEndpoints: 1, limiterSlots: 16, limiterPolicies: 1 });
  const w = new SplitWriter(shm, createLogger('silent'));
  return { w, row: () => w.table.read(0).map((x) => Math.round(x * 100)) };
}

test('the row holds the top layer: override over rollout over configured; each end uncovers the one beneath', () => {
  const { w, row } = setup();
  w.applyConfig(config([95, 5]));
  assert.deepEqual(row(), [95, 5]);
  const heard: string[] = [];
  w.onOverride = (route) => heard.push(route);

  w.setRollout('api', [75, 25], 'web');
  assert.deepEqual([row(), w.source('api')], [[75, 25], 'rollout:web']);
  w.setOverride('api', [100, 0]);
  assert.deepEqual([row(), w.source('api'), w.overridden('api')], [[100, 0], 'override', true]);
  assert.deepEqual(heard, ['api'], 'the rollout manager hears of the override');
  assert.deepEqual(w.status()[0]!.beneath, { blue: 75, green: 25 });

  // A rollout step under the override is kept, not written over it.
  w.setRollout('api', [50, 50], 'web');
  assert.deepEqual(row(), [100, 0]);
  w.clearOverride('api');
  assert.deepEqual([row(), w.source('api'), w.status()[0]!.beneath], [[50, 50], 'rollout:web', null]);
  w.clearRollout('api');
  assert.deepEqual([row(), w.source('api')], [[95, 5], 'config']);
});

test('a reload keeps both layers while sides and weights hold; new configured weights drop the override; new sides drop both', () => {
  const { w, row } = setup();
  w.applyConfig(config([95, 5]));
  w.setRollout('api', [75, 25], 'web');
  w.setOverride('api', [0, 100]);
  w.applyConfig(config([95, 5]));
  assert.deepEqual([row(), w.source('api')], [[0, 100], 'override']);

  w.applyConfig(config([90, 10]));
  assert.deepEqual([row(), w.source('api'), w.overridden('api')], [[75, 25], 'rollout:web', false], 'the override went; the rollout stays');

  w.setOverride('api', [0, 100]);
  w.applyConfig(config([90, 10], ['blue', 'red']));
  assert.deepEqual([row(), w.source('api')], [[90, 10], 'config']);
});
