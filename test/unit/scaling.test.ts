import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Recommender, hpaDesired } from '../../src/metrics/scaling.js';

const target = { metric: 'rps' as const, target: 100, minReplicas: 1, maxReplicas: 20, tolerance: 0.1, scaleDownStabilization: 300_000 };

test('hpaDesired: ceil(current × observed / target) outside the ±10 % band', () => {
  assert.equal(hpaDesired(4, 150, 100, 0.1), 6);
  assert.equal(hpaDesired(4, 109, 100, 0.1), 4, 'within tolerance');
  assert.equal(hpaDesired(4, 91, 100, 0.1), 4, 'within tolerance');
  assert.equal(hpaDesired(4, 50, 100, 0.1), 2);
  assert.equal(hpaDesired(3, 101, 100, 0), 4, 'ceil, no tolerance');
  assert.equal(hpaDesired(0, 250, 100, 0.1), 3, 'from zero, scale as from one');
});

test('scale-up is immediate, scale-down waits for the stabilisation window', () => {
  const r = new Recommender(target);
  let t = 0;
  assert.equal(r.update(t, 4, 200).recommended, 8);
  t += 15_000;
  // traffic drops: raw says 2, but 8 was recommended within the window
  const down = r.update(t, 8, 25);
  assert.equal(down.raw, 2);
  assert.equal(down.recommended, 8);
  assert.match(down.reason, /stabilisation window/);
  t += 300_001;
  assert.equal(r.update(t, 8, 25).recommended, 2, 'after the window the dip is believed');
  assert.equal(r.update(t + 1, 2, 5000).recommended, 20, 'clamped to maxReplicas');
  assert.equal(r.update(t + 2, 2, null).recommended, 2, 'no data: keep');
});
