// Short-horizon request-rate forecasts: additive Holt-Winters with a damped trend
// (Gardner & McKenzie), parameters fitted by a small grid search on one-step error.
// Pure functions: the primary runs them in the piscina pool (aggregator-task.ts)
// because a fit is ~10^5 model steps per upstream.

export interface ForecastResult {
  /** forecast value `horizon` steps after the last sample (never negative) */
  readonly value: number;
  readonly model: 'holt-winters' | 'holt' | 'naive';
  readonly alpha: number;
  readonly beta: number;
  readonly gamma: number;
  /** root mean square one-step error over the fitted history */
  readonly fitRmse: number;
}

const PHI = 0.98; // trend damping: a spike's slope must not be extrapolated for minutes
const ALPHAS = [0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9];
const BETAS = [0, 0.01, 0.05, 0.15];
const GAMMAS = [0.05, 0.1, 0.2, 0.4];

function dampSum(h: number): number {
  let s = 0;
  let p = 1;
  for (let i = 0; i < h; i++) {
    p *= PHI;
    s += p;
  }
  return s;
}

/** Runs the model once; returns the one-step SSE and the h-step forecast from the end. */
function runHoltWinters(x: ArrayLike<number>, m: number, a: number, b: number, g: number, h: number): { sse: number; forecast: number } {
  const n = x.length;
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < m; i++) {
    s1 += x[i]!;
    s2 += x[m + i]!;
  }
  let level = s1 / m;
  let trend = (s2 / m - s1 / m) / m;
  const season = new Float64Array(m);
  for (let i = 0; i < m; i++) season[i] = x[i]! - level;
  let sse = 0;
  for (let t = m; t < n; t++) {
    const si = t % m;
    const predicted = level + PHI * trend + season[si]!;
    const err = x[t]! - predicted;
    sse += err * err;
    const prevLevel = level;
    level = a * (x[t]! - season[si]!) + (1 - a) * (prevLevel + PHI * trend);
    trend = b * (level - prevLevel) + (1 - b) * PHI * trend;
    season[si] = g * (x[t]! - level) + (1 - g) * season[si]!;
  }
  const forecast = level + dampSum(h) * trend + season[(n + h - 1) % m]!;
  return { sse, forecast };
}

function runHolt(x: ArrayLike<number>, a: number, b: number, h: number): { sse: number; forecast: number } {
  let level = x[0]!;
  let trend = x.length > 1 ? x[1]! - x[0]! : 0;
  let sse = 0;
  for (let t = 1; t < x.length; t++) {
    const predicted = level + PHI * trend;
    const err = x[t]! - predicted;
    sse += err * err;
    const prevLevel = level;
    level = a * x[t]! + (1 - a) * (prevLevel + PHI * trend);
    trend = b * (level - prevLevel) + (1 - b) * PHI * trend;
  }
  return { sse, forecast: level + dampSum(h) * trend };
}

/**
 * Forecasts `horizon` steps past the end of `x` (one sample per step). Uses seasonal
 * Holt-Winters when at least two full seasons are known, damped Holt when at least
 * 3 samples are, and the last value otherwise.
 */
export function forecast(x: ArrayLike<number>, seasonLength: number, horizon: number): ForecastResult {
  const n = x.length;
  if (n < 3) return { value: Math.max(0, n > 0 ? x[n - 1]! : 0), model: 'naive', alpha: 1, beta: 0, gamma: 0, fitRmse: 0 };
  const m = Math.max(2, Math.round(seasonLength));
  let best = { sse: Infinity, forecast: 0, a: 0, b: 0, g: 0 };
  if (n >= 2 * m) {
    for (const a of ALPHAS)
      for (const b of BETAS)
        for (const g of GAMMAS) {
          const r = runHoltWinters(x, m, a, b, g, horizon);
          if (r.sse < best.sse) best = { sse: r.sse, forecast: r.forecast, a, b, g };
        }
    return { value: Math.max(0, best.forecast), model: 'holt-winters', alpha: best.a, beta: best.b, gamma: best.g, fitRmse: Math.sqrt(best.sse / (n - m)) };
  }
  for (const a of ALPHAS)
    for (const b of BETAS) {
      const r = runHolt(x, a, b, horizon);
      if (r.sse < best.sse) best = { sse: r.sse, forecast: r.forecast, a, b, g: 0 };
    }
  return { value: Math.max(0, best.forecast), model: 'holt', alpha: best.a, beta: best.b, gamma: 0, fitRmse: Math.sqrt(best.sse / (n - 1)) };
}

export interface BacktestResult {
  readonly points: number;
  readonly mape: number; // percent
  readonly rmse: number;
  readonly naiveMape: number; // last-value forecast, for comparison
  readonly naiveRmse: number;
}

/**
 * Rolling-origin backtest: from `start`, every `step` samples, fit on the last
 * `window` samples and forecast `horizon` ahead; compare with what happened
 * (`skip` leaves out target indices, e.g. a spike no model can see coming).
 */
export function backtest(x: readonly number[], seasonLength: number, horizon: number, opts: { start: number; step: number; window: number; skip?: (target: number) => boolean }): BacktestResult {
  let ape = 0;
  let se = 0;
  let naiveApe = 0;
  let naiveSe = 0;
  let points = 0;
  for (let t = opts.start; t + horizon - 1 < x.length; t += opts.step) {
    if (opts.skip?.(t + horizon - 1)) continue;
    const hist = x.slice(Math.max(0, t - opts.window), t);
    const actual = x[t + horizon - 1]!;
    const f = forecast(hist, seasonLength, horizon).value;
    const naive = hist[hist.length - 1]!;
    const denom = Math.max(Math.abs(actual), 1e-9);
    ape += Math.abs(actual - f) / denom;
    se += (actual - f) ** 2;
    naiveApe += Math.abs(actual - naive) / denom;
    naiveSe += (actual - naive) ** 2;
    points++;
  }
  return { points, mape: (100 * ape) / points, rmse: Math.sqrt(se / points), naiveMape: (100 * naiveApe) / points, naiveRmse: Math.sqrt(naiveSe / points) };
}
