import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backtest, forecast } from '../../src/metrics/forecast.js';

// A synthetic "diurnal" trace: one season = 288 steps (a day at 5-minute steps),
// a smooth daily cycle 200..1000 rps, mild deterministic noise, and a 30-step spike
// to 3× on day 4. Four days in all.
function trace(): number[] {
  const season = 288;
  let s = 12345;
  const rnd = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) - 0.5;
  const out: number[] = [];
  for (let t = 0; t < 4 * season; t++) {
    const day = 600 - 400 * Math.cos((2 * Math.PI * t) / season);
    const spike = t >= 3 * season + 100 && t < 3 * season + 130 ? 2 : 0;
    out.push(day * (1 + spike) * (1 + 0.05 * rnd()));
  }
  return out;
}

test('Holt-Winters backtest on diurnal + spike beats the last-value forecast', () => {
  const x = trace();
  const horizon = 12; // one hour ahead at 5-minute steps
  const r = backtest(x, 288, horizon, { start: 2 * 288, step: 4, window: 3 * 288 });
  console.log(`forecast backtest (${r.points} origins, horizon ${horizon} steps): MAPE ${r.mape.toFixed(1)}% RMSE ${r.rmse.toFixed(1)} | naive MAPE ${r.naiveMape.toFixed(1)}% RMSE ${r.naiveRmse.toFixed(1)}`);
  // Outside the spike (and the hour after it, while the model unlearns it):
  const calm = backtest(x, 288, horizon, { start: 2 * 288, step: 4, window: 3 * 288, skip: (t) => t >= 3 * 288 + 100 && t < 3 * 288 + 130 + horizon });
  console.log(`  without the spike window (${calm.points} origins): MAPE ${calm.mape.toFixed(1)}% RMSE ${calm.rmse.toFixed(1)} | naive MAPE ${calm.naiveMape.toFixed(1)}% RMSE ${calm.naiveRmse.toFixed(1)}`);
  assert.ok(r.mape < r.naiveMape, `MAPE ${r.mape} should beat naive ${r.naiveMape}`);
  assert.ok(r.mape < 20, `MAPE ${r.mape.toFixed(1)}%`);
  assert.ok(calm.rmse < calm.naiveRmse, `calm RMSE ${calm.rmse} vs naive ${calm.naiveRmse}`);
  assert.ok(calm.mape < 10, `calm MAPE ${calm.mape.toFixed(1)}%`);
});

test('short histories fall back to damped Holt, then to the last value', () => {
  assert.equal(forecast([5], 10, 3).model, 'naive');
  const f = forecast([10, 11, 12, 13, 14, 15], 10, 1);
  assert.equal(f.model, 'holt');
  assert.ok(f.value > 14 && f.value < 17, String(f.value));
  assert.ok(forecast([100, 50, 0, 0, 0], 10, 20).value >= 0, 'never negative');
});
