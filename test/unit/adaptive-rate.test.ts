// The AIMD step of adaptive rate limits with recorded inputs: no timers, no servers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { rateLimitSchema } from '../../src/policies/rate-limit.js';
import { adaptiveRateStep, initialAdaptiveRateState, type AdaptiveRateState } from '../../src/controllers/adaptive-rate.js';
import { kLatencyBuckets, latencyBucket } from '../../src/shm/layout.js';

const TICK = 200;
const id = { route: 'api', policy: 'per-user', upstream: 'app' };

function adaptiveCfg(adaptive: Record<string, unknown>) {
  const c = rateLimitSchema(z).parse({ rate: '100/s', adaptive });
  assert.ok(c.adaptive);
  return c.adaptive;
}

/** One tick's histogram: `n` responses of `ms` each. */
function hist(n: number, ms: number): Float64Array {
  const h = new Float64Array(kLatencyBuckets);
  h[latencyBucket(ms * 1000)] = n;
  return h;
}

/** Runs ticks from `t0` with the same inputs; returns the last state, the time after, and every write. */
function run(cfg: ReturnType<typeof adaptiveCfg>, s: AdaptiveRateState, t0: number, ticks: number, per: { n: number; ms: number; failures?: number }) {
  const writes: number[] = [];
  const events: string[] = [];
  let t = t0;
  for (let i = 0; i < ticks; i++) {
    t += TICK;
    const r = adaptiveRateStep(id, cfg, s, { now: t, attempts: per.n, failures: per.failures ?? 0, latency: hist(per.n, per.ms) });
    s = r.state;
    if (r.write !== null) writes.push(r.write);
    for (const e of r.events) events.push(e.event);
  }
  return { s, t, writes, events };
}

/** A controller past its warm-up window (at t = 1000 with a 1 s window). */
function warm(cfg: ReturnType<typeof adaptiveCfg>): AdaptiveRateState {
  return run(cfg, initialAdaptiveRateState(0, kLatencyBuckets), 0, 5, { n: 10, ms: 5 }).s;
}

test('adaptive rate: schema defaults and rejects', () => {
  const c = adaptiveCfg({});
  assert.deepEqual(c, { upstreamLatency: 200, percentile: 99, errorRate: 5, min: 20, decrease: 0.7, increase: 10, healthyBelow: 80, window: 2000, minSamples: 20 });
  const bad = rateLimitSchema(z).safeParse({ rate: '10/s', adaptive: { upstreamLatency: 'soon', decrease: 1.5, min: '0%', extra: 1 } });
  assert.equal(bad.success, false);
  const paths = bad.error!.issues.map((i) => i.path.join('.')).sort();
  assert.deepEqual(paths, ['adaptive', 'adaptive.decrease', 'adaptive.min', 'adaptive.upstreamLatency']);
});

test('adaptive rate: slow p99 cuts the multiplier by `decrease` once per window down to the floor, then healthy restores it step by step to 1', () => {
  const cfg = adaptiveCfg({ upstreamLatency: '100ms', window: '1s', min: '30%', decrease: 0.5, increase: '25%' });
  let s = initialAdaptiveRateState(0, kLatencyBuckets);
  // The first window is the warm-up: judged by nobody, however slow.
  let r = run(cfg, s, 0, 5, { n: 10, ms: 300 });
  assert.deepEqual(r.writes, []);
  assert.equal(r.s.verdict, 'warm-up');
  // Slow: 10 responses a tick at 300 ms. One window (5 ticks) → ×0.5, the next → floor 0.3.
  r = run(cfg, r.s, r.t, 4, { n: 10, ms: 300 });
  assert.deepEqual(r.writes, [], 'nothing before a full window');
  r = run(cfg, r.s, r.t, 1, { n: 10, ms: 300 });
  assert.deepEqual(r.writes, [0.5]);
  assert.deepEqual(r.events, ['ratelimit-decreased']);
  r = run(cfg, r.s, r.t, 15, { n: 10, ms: 300 });
  assert.deepEqual(r.writes, [0.3], 'one more cut, then held at the floor (no repeated events at the floor)');
  assert.equal(r.s.multiplier, 0.3);
  // Healthy (10 ms): +0.25 a window, capped at 1.
  r = run(cfg, r.s, r.t, 20, { n: 10, ms: 10 });
  assert.deepEqual(r.writes, [0.55, 0.8, 1]);
  assert.deepEqual(r.events, ['ratelimit-increased', 'ratelimit-increased', 'ratelimit-increased']);
  s = r.s;
  assert.equal(s.decreases, 2);
  assert.equal(s.increases, 3);
  // Steady and healthy at 1: a minute of ticks writes nothing.
  r = run(cfg, s, r.t, 300, { n: 10, ms: 10 });
  assert.deepEqual(r.writes, []);
});

test('adaptive rate: the error rate alone cuts it; the decision event carries its inputs', () => {
  const cfg = adaptiveCfg({ errorRate: '5%', window: '1s' });
  const s = initialAdaptiveRateState(0, kLatencyBuckets);
  let out = null;
  let t = 0;
  let st = run(cfg, s, 0, 5, { n: 10, ms: 5 }).s; // the warm-up window
  t = 1000;
  for (let i = 0; i < 5; i++) {
    t += TICK;
    const r = adaptiveRateStep(id, cfg, st, { now: t, attempts: 20, failures: 4, latency: hist(20, 5) });
    st = r.state;
    if (r.events.length) out = r.events[0]!;
  }
  assert.ok(out);
  assert.equal(out.event, 'ratelimit-decreased');
  assert.equal(out.fields.multiplier, 0.7);
  assert.equal(out.fields.previous, 1);
  assert.equal(out.fields.errorRate, 20);
  assert.equal(out.fields.responses, 100);
  assert.equal(out.fields.failures, 20);
  assert.equal(out.fields.route, 'api');
  assert.equal(out.fields.upstream, 'app');
  assert.match(out.msg, /error rate 20% over 5%/);
});

test('adaptive rate: inside the hysteresis band it holds; a thin window decides nothing', () => {
  const cfg = adaptiveCfg({ upstreamLatency: '100ms', window: '1s', healthyBelow: '50%', minSamples: 20 });
  // Cut once, then sit at 80 ms: under the 100 ms target, over 50 % of it → hold, never back up nor down.
  let r = run(cfg, warm(cfg), 1000, 5, { n: 10, ms: 300 });
  assert.deepEqual(r.writes, [0.7]);
  r = run(cfg, r.s, r.t, 100, { n: 10, ms: 80 });
  assert.deepEqual(r.writes, []);
  assert.equal(r.s.verdict, 'hold');
  // No responses (< minSamples): no evidence, no change.
  r = run(cfg, r.s, r.t, 100, { n: 0, ms: 300 });
  assert.deepEqual(r.writes, []);
  assert.equal(r.s.verdict, 'no-data');
});

test('adaptive rate: the window restarts after a change, so slow responses from before a cut do not cause a second one', () => {
  const cfg = adaptiveCfg({ upstreamLatency: '100ms', window: '1s' });
  let r = run(cfg, warm(cfg), 1000, 5, { n: 50, ms: 300 });
  assert.deepEqual(r.writes, [0.7]);
  // After the cut: healthy again. The next window sees only the new responses → an increase, not a cut.
  r = run(cfg, r.s, r.t, 5, { n: 10, ms: 10 });
  assert.deepEqual(r.writes, [0.8]);
});
