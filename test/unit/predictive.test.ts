// Predictive input to the adaptive concurrency limit with recorded inputs: the forecast
// raises the floor ahead of a surge by Little's law, bounded by maxStep, max and holdFor,
// re-armed only once the forecast has dropped back; the concurrency step honours it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concurrencySchema, concurrencyStep, initialConcurrencyState, type ConcurrencyState } from '../../src/controllers/concurrency.js';
import { initialPredictiveState, predictiveSchema, predictiveStep, type PredictiveInputs, type PredictiveState } from '../../src/controllers/predictive.js';
import { kLatencyBuckets, latencyBucket } from '../../src/shm/layout.js';

const cfg = predictiveSchema.parse(true)!;
const base: PredictiveInputs = { now: 0, rate: 200, forecast: 210, horizonS: 60, minRttUs: 20_000, bufferPct: 25, limit: 10, max: 100 };

function samples(n: number, ms: number): Float64Array {
  const h = new Float64Array(kLatencyBuckets);
  h[latencyBucket(ms * 1000)] = n;
  return h;
}

test('predictive config: off by default, `true` for the defaults, bounds checked', () => {
  assert.equal(concurrencySchema.parse({}).predictive, null);
  assert.deepEqual(concurrencySchema.parse({ predictive: true }).predictive, { surge: 25, maxStep: 2, holdFor: 60_000 });
  assert.deepEqual(concurrencySchema.parse({ predictive: { surge: '50%', holdFor: '10s' } }).predictive, { surge: 50, maxStep: 2, holdFor: 10_000 });
  assert.equal(concurrencySchema.parse({ predictive: false }).predictive, null);
  assert.equal(concurrencySchema.safeParse({ predictive: { maxStep: 1 } }).success, false);
  assert.equal(concurrencySchema.safeParse({ predictive: { surge: '20%', extra: 1 } }).success, false);
});

test('predictive step: a forecast surge raises the floor by Little\'s law, holds, expires after holdFor, re-arms once the forecast drops', () => {
  let s: PredictiveState = initialPredictiveState();
  // 210/s forecast against 200/s now: under the 25 % surge threshold, nothing.
  let r = predictiveStep('app', cfg, s, base);
  assert.equal(r.state.floor, 0);
  assert.equal(r.events.length, 0);
  // 600/s forecast: needs 600 × 20 ms × 1.25 = 15 in flight; the limit is 10.
  r = predictiveStep('app', cfg, r.state, { ...base, now: 1000, forecast: 600 });
  assert.equal(r.state.floor, 15);
  assert.equal(r.events.length, 1);
  const e = r.events[0]!;
  assert.equal(e.event, 'concurrency-predictive');
  assert.deepEqual(
    { requestRate: e.fields.requestRate, forecast: e.fields.forecast, horizonS: e.fields.horizonS, minRttMs: e.fields.minRttMs, needed: e.fields.needed, from: e.fields.from, to: e.fields.to, capped: e.fields.capped },
    { requestRate: 200, forecast: 600, horizonS: 60, minRttMs: 20, needed: 15, from: 10, to: 15, capped: false },
  );
  assert.match(e.msg, /forecast 600\/s in 60 s against 200\/s now; concurrency floor 10 → 15/);
  s = r.state;
  // Still surging within holdFor: holds, says nothing.
  r = predictiveStep('app', cfg, s, { ...base, now: 30_000, forecast: 650, limit: 15 });
  assert.equal(r.state.floor, 15);
  assert.equal(r.events.length, 0);
  // holdFor (60 s) passes with the surge still forecast: released, and not raised again at once.
  r = predictiveStep('app', cfg, r.state, { ...base, now: 61_000, forecast: 650, limit: 15 });
  assert.equal(r.state.floor, 0);
  assert.equal(r.events[0]!.event, 'concurrency-predictive-released');
  assert.equal(r.events[0]!.fields.expired, true);
  r = predictiveStep('app', cfg, r.state, { ...base, now: 61_200, forecast: 650, limit: 15 });
  assert.equal(r.state.floor, 0, 'not re-raised by the same forecast');
  assert.equal(r.events.length, 0);
  // The forecast drops back (re-arms), then a new surge raises it again.
  r = predictiveStep('app', cfg, r.state, { ...base, now: 62_000, forecast: 200 });
  r = predictiveStep('app', cfg, r.state, { ...base, now: 63_000, forecast: 600 });
  assert.equal(r.state.floor, 15);
  // A forecast that no longer says surge releases it before holdFor.
  r = predictiveStep('app', cfg, r.state, { ...base, now: 64_000, forecast: 220, limit: 15 });
  assert.equal(r.state.floor, 0);
  assert.equal(r.events[0]!.fields.expired, false);
});

test('predictive step: bounded by maxStep × the limit and by max; nothing without a forecast, traffic or minRTT', () => {
  // 5000/s would need 125: capped at 2 × 10.
  let r = predictiveStep('app', cfg, initialPredictiveState(), { ...base, forecast: 5000 });
  assert.equal(r.state.floor, 20);
  assert.equal(r.events[0]!.fields.capped, true);
  r = predictiveStep('app', { ...cfg, maxStep: 50 }, initialPredictiveState(), { ...base, forecast: 5000, max: 40 });
  assert.equal(r.state.floor, 40, 'never above max');
  for (const inp of [{ forecast: null }, { rate: 0 }, { minRttUs: 0 }, { forecast: 240 }]) {
    r = predictiveStep('app', cfg, initialPredictiveState(), { ...base, forecast: 600, ...inp });
    assert.equal(r.state.floor, 0, JSON.stringify(inp));
    assert.equal(r.events.length, 0);
  }
  // Already enough: a floor at or below the limit changes nothing.
  r = predictiveStep('app', cfg, initialPredictiveState(), { ...base, forecast: 600, limit: 16 });
  assert.equal(r.state.floor, 0);
});

test('concurrency step with a floor: the limit goes up to it at once, the gradient cannot take it below, and falls once the floor is gone', () => {
  const c = concurrencySchema.parse({ min: 3, max: 100, predictive: true });
  let s: ConcurrencyState = { ...initialConcurrencyState(c, 0), phase: 'sampling', minRttUs: 20_000, limit: 10, written: 10, nextMinRttAt: 1e12 };
  // No samples yet, little in flight: the floor still lifts the limit now.
  let r = concurrencyStep('app', c, s, { now: 200, latency: new Float64Array(kLatencyBuckets), inFlight: 2, shed: 0, random: 0.5, floor: 15 });
  assert.equal(r.write, 15);
  assert.equal(r.events[0]!.fields.floor, 15);
  s = r.state;
  // A queueing upstream (RTT 3 × minRTT, requests refused) pulls the gradient down: not below 15.
  for (let i = 2; i <= 30; i++) {
    r = concurrencyStep('app', c, s, { now: i * 200, latency: samples(100, 60), inFlight: 15, shed: 50, random: 0.5, floor: 15 });
    s = r.state;
    assert.ok(s.written >= 15, `limit ${s.written} at tick ${i}`);
  }
  // The floor released: the same inputs take it down.
  for (let i = 31; i <= 60; i++) s = concurrencyStep('app', c, s, { now: i * 200, latency: samples(100, 60), inFlight: s.written, shed: 50, random: 0.5, floor: 0 }).state;
  assert.ok(s.written < 10, `limit ${s.written} once the floor is gone`);
});
