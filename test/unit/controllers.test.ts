// The controllers' step functions with recorded inputs: no timers, no servers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { breakerSchema, breakerStep, fallbackIssues, initialBreakerState, type BreakerControllerState, type BreakerInputs } from '../../src/controllers/breaker.js';
import { concurrencySchema, concurrencyStep, histogramPercentile, initialConcurrencyState, type ConcurrencyState } from '../../src/controllers/concurrency.js';
import { BreakerState, kLatencyBuckets, latencyBucket, latencyBucketFloor } from '../../src/shm/layout.js';
import { SharedState } from '../../src/shm/shared-state.js';
import { ControlWords, UpstreamGuardWords } from '../../src/shm/control-words.js';

const TICK = 200;
const quiet: Omit<BreakerInputs, 'now'> = { attempts: 0, failures: 0, slow: 0, probeSuccesses: 0, probeFailures: 0, elu: 0 };

function run(cfg: ReturnType<typeof breakerSchema.parse>, s: BreakerControllerState, now: number, inp: Partial<BreakerInputs>) {
  return breakerStep('app', cfg, s, { ...quiet, now, ...inp });
}

test('breaker step: trips on the failure rate only with minRequests in the window, and the window slides', () => {
  const cfg = breakerSchema.parse({ window: '1s', minRequests: 10, failureRate: '50%' });
  let s = initialBreakerState(cfg, TICK, 0);
  // 9 requests, all failed: below minRequests, stays closed.
  let r = run(cfg, s, 200, { attempts: 9, failures: 9 });
  assert.equal(r.state.state, 'closed');
  assert.equal(r.write, null);
  s = r.state;
  // 4 more successes: 13 requests, 9 failed (69 %) → open.
  r = run(cfg, s, 400, { attempts: 4 });
  assert.equal(r.state.state, 'open');
  assert.deepEqual(r.write, { state: BreakerState.Open, openUntil: 400 + 5000, permits: 0 });
  assert.equal(r.events.length, 1);
  const e = r.events[0]!;
  assert.equal(e.event, 'breaker-opened');
  assert.equal(e.fields.attempts, 13);
  assert.equal(e.fields.failures, 9);
  assert.equal(e.fields.threshold, 50);

  // The window forgets: failures 6 ticks (1.2 s) ago no longer count.
  s = initialBreakerState(cfg, TICK, 0);
  s = run(cfg, s, 200, { attempts: 8, failures: 8 }).state;
  for (let t = 400; t <= 1400; t += TICK) s = run(cfg, s, t, {}).state;
  r = run(cfg, s, 1600, { attempts: 10, failures: 4 });
  assert.equal(r.state.state, 'closed', '4 of 10 failed in the window; the 8 older failures slid out');
});

test('breaker step: slow calls trip it; open → half-open after openFor; probes close it or re-open it for twice as long, capped', () => {
  const cfg = breakerSchema.parse({ window: '1s', minRequests: 5, failureRate: '50%', slowCall: { duration: '100ms', rate: '80%' }, openFor: '1s', maxOpenFor: '3s', halfOpenRequests: 2 });
  let s = initialBreakerState(cfg, TICK, 0);
  let r = run(cfg, s, 200, { attempts: 10, slow: 8 });
  assert.equal(r.state.state, 'open');
  assert.match(r.events[0]!.fields.reason as string, /slow-call rate 80%/);
  s = r.state;
  assert.equal(run(cfg, s, 1100, {}).state.state, 'open', 'still open before openFor');
  r = run(cfg, s, 1200, {});
  assert.equal(r.state.state, 'half-open');
  assert.deepEqual(r.write, { state: BreakerState.HalfOpen, openUntil: 1200, permits: 2 });
  s = r.state;
  // One probe succeeded, one failed → open again, openFor 2 s.
  r = run(cfg, s, 1400, { probeSuccesses: 1 });
  assert.equal(r.state.state, 'half-open');
  r = run(cfg, r.state, 1600, { probeFailures: 1 });
  assert.equal(r.state.state, 'open');
  assert.equal(r.events[0]!.fields.openForMs, 2000);
  assert.equal(r.state.trips, 2);
  // Third trip would be 4 s: capped at maxOpenFor 3 s.
  s = run(cfg, r.state, 3600, {}).state;
  assert.equal(s.state, 'half-open');
  r = run(cfg, s, 3800, { probeFailures: 2 });
  assert.equal(r.events[0]!.fields.openForMs, 3000);
  // Half-open, both probes succeed → closed, window empty.
  s = run(cfg, r.state, 6800, {}).state;
  r = run(cfg, s, 7000, { probeSuccesses: 2 });
  assert.equal(r.state.state, 'closed');
  assert.equal(r.events[0]!.event, 'breaker-closed');
  assert.deepEqual(r.write, { state: BreakerState.Closed, openUntil: 0, permits: 0 });
  // A healthy period of maxOpenFor forgets the trips: the next trip opens for openFor again.
  s = r.state;
  for (let t = 7200; t <= 10_200; t += TICK) s = run(cfg, s, t, { attempts: 1 }).state;
  assert.equal(s.trips, 0);
  r = run(cfg, s, 10_400, { attempts: 10, failures: 10 });
  assert.equal(r.events[0]!.fields.openForMs, 1000);
});

test('breaker step: the adaptive threshold tightens with event-loop utilisation, between its bounds, with hysteresis', () => {
  const cfg = breakerSchema.parse({ window: '1s', minRequests: 10, failureRate: '50%', adaptive: { minFailureRate: '20%', maxFailureRate: '60%', idleUtilization: 0.2, busyUtilization: 0.8 } });
  let s = initialBreakerState(cfg, TICK, 0);
  assert.equal(s.threshold, 60, 'starts loose');
  // Busy for a while: smoothed utilisation climbs to 1, threshold falls to the floor.
  const seen: number[] = [];
  for (let t = 200; t <= 6000; t += TICK) {
    const r = run(cfg, s, t, { elu: 1 });
    s = r.state;
    for (const e of r.events) if (e.event === 'breaker-threshold') seen.push(e.fields.to as number);
  }
  assert.equal(s.threshold, 20);
  assert.ok(seen.length >= 2 && seen.length <= 9, `moved in steps of at least the hysteresis: ${seen.join(',')}`);
  for (let i = 1; i < seen.length - 1; i++) assert.ok(seen[i - 1]! - seen[i]! >= 5, `steps ${seen.join(',')}`);
  // 30 % failures now trip (they would not have at 60 %).
  const tripped = run(cfg, s, 6200, { attempts: 20, failures: 6, elu: 1 });
  assert.equal(tripped.state.state, 'open');
  assert.equal(tripped.events.find((e) => e.event === 'breaker-opened')!.fields.threshold, 20);
  // Utilisation hovering around one value: no threshold event at all.
  let h = initialBreakerState(cfg, TICK, 0);
  for (let t = 200; t <= 4000; t += TICK) h = run(cfg, h, t, { elu: 0.5 }).state;
  let events = 0;
  for (let t = 4200; t <= 10_000; t += TICK) events += run(cfg, h, t, { elu: 0.5 + (t % 400 === 0 ? 0.05 : -0.05) }).events.length;
  assert.equal(events, 0);
});

test('breaker config: defaults, bounds and cross-checks', () => {
  const d = breakerSchema.parse({});
  assert.deepEqual([d.window, d.minRequests, d.failureRate, d.openFor, d.maxOpenFor, d.halfOpenRequests], [10_000, 20, 50, 5000, 60_000, 3]);
  assert.equal(breakerSchema.safeParse({ openFor: '10s', maxOpenFor: '5s' }).success, false);
  assert.equal(breakerSchema.safeParse({ adaptive: { minFailureRate: '60%', maxFailureRate: '20%' } }).success, false);
  assert.equal(breakerSchema.safeParse({ failureRate: '150%' }).success, false);
  assert.equal(breakerSchema.safeParse({ fallback: { status: 200, body: 'x', bogus: 1 } }).success, false);
  assert.deepEqual(
    fallbackIssues({ a: { breaker: { fallback: { upstream: 'a' } } }, b: { breaker: { fallback: { upstream: 'nope' } } }, c: { breaker: { fallback: { upstream: 'a' } } } }).map((i) => i.path.join('.')),
    ['upstreams.a.breaker.fallback.upstream', 'upstreams.b.breaker.fallback.upstream'],
  );
});

/** A tick's histogram: `n` responses at `ms`. */
function samples(n: number, ms: number): Float64Array {
  const h = new Float64Array(kLatencyBuckets);
  h[latencyBucket(ms * 1000)] = n;
  return h;
}

test('latency buckets: 4 per octave, percentile within a bucket of the truth', () => {
  for (const us of [1, 3, 4, 7, 8, 100, 999, 20_000, 123_456, 5_000_000]) {
    const b = latencyBucket(us);
    assert.ok(latencyBucketFloor(b) <= us && us < latencyBucketFloor(b + 1), `${us} µs in bucket ${b} [${latencyBucketFloor(b)}, ${latencyBucketFloor(b + 1)})`);
  }
  const h = new Float64Array(kLatencyBuckets);
  for (let ms = 1; ms <= 100; ms++) h[latencyBucket(ms * 1000)]! += 1;
  const p50 = histogramPercentile(h, 50) / 1000;
  const p90 = histogramPercentile(h, 90) / 1000;
  assert.ok(p50 > 40 && p50 < 60, `p50 ${p50}`);
  assert.ok(p90 > 75 && p90 < 105, `p90 ${p90}`);
  assert.equal(histogramPercentile(new Float64Array(kLatencyBuckets), 50), 0);
});

/**
 * A recorded capacity model: C requests served at once in S ms, the rest queue, so the
 * response time at `limit` in flight is S × max(1, limit / C). The controller must find
 * a limit near C that keeps the queue short, whatever it starts from.
 */
function simulate(cfg: ReturnType<typeof concurrencySchema.parse>, capacity: () => number, ticks: number, start?: ConcurrencyState): { s: ConcurrencyState; limits: number[] } {
  let s = start ?? initialConcurrencyState(cfg, 0);
  const limits: number[] = [];
  for (let i = 1; i <= ticks; i++) {
    const inFlight = s.written; // a load far above the limit keeps it full
    const rttMs = 20 * Math.max(1, inFlight / capacity());
    const n = Math.round((inFlight / rttMs) * 200); // responses per 200 ms tick
    const r = concurrencyStep('app', cfg, s, { now: i * 200, latency: samples(n, rttMs), inFlight, shed: 100, random: 0.5 });
    s = r.state;
    limits.push(s.written);
  }
  return { s, limits };
}

test('concurrency step: measures minRTT at the floor, converges near capacity, follows capacity up and down', () => {
  const cfg = concurrencySchema.parse({ min: 3, max: 500, minRttInterval: '60s' });
  let cap = 8;
  const a = simulate(cfg, () => cap, 100);
  assert.equal(a.limits[0], 3, 'pinned at min while measuring minRTT');
  assert.ok(a.s.minRttUs >= 17_000 && a.s.minRttUs <= 23_000, `minRTT ${a.s.minRttUs}`);
  const settled = a.limits.slice(-20);
  for (const l of settled) assert.ok(l >= 8 && l <= 20, `settled limits ${settled.join(',')}`);
  cap = 32;
  const b = simulate(cfg, () => cap, 100, a.s);
  const up = b.limits.slice(-20);
  // While shedding, half the buffer (12.5 %) is less than one latency bucket (19 %), so a
  // tick may read the queue a bucket high and dip the limit just under capacity.
  for (const l of up) assert.ok(l >= 28 && l <= 60, `after capacity 32: ${up.join(',')}`);
  assert.ok(up.filter((l) => l >= 32).length >= up.length * 0.75, `at or above capacity 32 most of the time: ${up.join(',')}`);
  cap = 8;
  const c = simulate(cfg, () => cap, 100, b.s);
  const down = c.limits.slice(-20);
  for (const l of down) assert.ok(l >= 8 && l <= 20, `back at capacity 8: ${down.join(',')}`);
});

/**
 * The overload benchmark as a recorded model: C = 8 slots of 20 ms, bulk (low) traffic
 * far above the limit filling its 50 % share, three critical requests in flight. The
 * limit must fill the upstream within a few ticks of a surge (refusals while responses
 * come back at minRTT ramp it unsmoothed), then hold the upstream's queue within the
 * buffer: the √ headroom is no longer added once latency is past it, and only half the
 * buffer is allowed while refusing, so critical requests do not wait behind √limit
 * queued bulk ones.
 */
test('concurrency step: ramps to capacity within a few ticks of a surge while a low share fills it, then keeps the upstream queue within the buffer', () => {
  const cfg = concurrencySchema.parse({ min: 2, max: 64 });
  let s: ConcurrencyState = { ...initialConcurrencyState(cfg, 0), phase: 'sampling', minRttUs: 20_000, limit: 6, written: 6, nextMinRttAt: 1e12 };
  const inFlights: number[] = [];
  const rtts: number[] = [];
  for (let i = 1; i <= 60; i++) {
    const bulk = Math.max(1, Math.floor(s.written * 0.5));
    const inFlight = bulk + Math.min(3, s.written - bulk);
    const rttMs = 20 * Math.max(1, inFlight / 8);
    const r = concurrencyStep('app', cfg, s, { now: i * 200, latency: samples(Math.round((inFlight / rttMs) * 200), rttMs), inFlight, shed: 100, random: 0.5 });
    s = r.state;
    if (r.events.length > 0) assert.equal(r.events[0]!.fields.ramp, rttMs <= 21, `tick ${i}: ramp only while there is no queue`);
    inFlights.push(inFlight);
    rtts.push(rttMs);
  }
  assert.ok(inFlights.slice(2).every((n) => n >= 8), `the upstream is full from the third tick on: ${inFlights.join(',')}`);
  // The gradient steers the median: on average the queue stays inside the half buffer
  // allowed while shedding (12.5 % → 22.5 ms, plus a bucket's rounding), and no tick
  // lets it past 1.4 × S.
  const settled = rtts.slice(-30);
  const mean = settled.reduce((a, b) => a + b, 0) / settled.length;
  assert.ok(mean <= 24, `upstream queue on average within the buffer once settled (mean RTT ${mean.toFixed(1)} ms: ${settled.join(',')})`);
  assert.ok(settled.every((ms) => ms <= 28), `no tick past 1.4 × S (RTT ms ${settled.join(',')})`);
});

/**
 * A steady 3× overload: everything the limit admits is in flight, and the upstream (C = 8,
 * S = 20 ms) answers in S × max(1, inFlight / C), with 5 % noise. The fixed point sits
 * between two integers, where the limit used to alternate (8 → 12 → 8 every ≈ 3 s with the
 * ramp, then 8 ↔ 9 each second); the hysteresis must settle it and keep it there.
 */
test('concurrency step: a steady overload settles the limit and does not flap', () => {
  const cfg = concurrencySchema.parse({ min: 2, max: 64 });
  let s: ConcurrencyState = { ...initialConcurrencyState(cfg, 0), phase: 'sampling', minRttUs: 20_000, limit: 6, written: 6, nextMinRttAt: 1e12 };
  const writes: string[] = [];
  for (let i = 1; i <= 150; i++) {
    const inFlight = s.written;
    const rttMs = 20 * Math.max(1, inFlight / 8) * (1 + 0.05 * Math.sin(i * 1.7));
    const r = concurrencyStep('app', cfg, s, { now: i * 200, latency: samples(Math.round((inFlight / rttMs) * 200), rttMs), inFlight, shed: 100, random: 0.5 });
    s = r.state;
    if (r.write !== null && i > 20) writes.push(`tick ${i}: ${r.write}`);
  }
  assert.deepEqual(writes, [], 'no write after the first 4 s');
  assert.ok(s.written >= 8 && s.written <= 9, `settled at capacity (${s.written})`);
});

test('concurrency step: still while not binding, quiet in a steady state, periodic minRTT with jitter, bounds', () => {
  const cfg = concurrencySchema.parse({ min: 3, max: 40, minRttInterval: '10s', minRttJitter: '20%' });
  let s: ConcurrencyState = { ...initialConcurrencyState(cfg, 0), phase: 'sampling', minRttUs: 20_000, limit: 20, written: 20, nextMinRttAt: 1e12 };
  // 4 in flight against a limit of 20, fast responses: no growth (and no event).
  for (let i = 1; i <= 50; i++) {
    const r = concurrencyStep('app', cfg, s, { now: i * 200, latency: samples(40, 20), inFlight: 4, shed: 0, random: 0.5 });
    assert.equal(r.write, null);
    assert.equal(r.events.length, 0);
    s = r.state;
  }
  // Never above max.
  let m: ConcurrencyState = { ...s, limit: 38, written: 38 };
  for (let i = 1; i <= 20; i++) m = concurrencyStep('app', cfg, m, { now: i * 200, latency: samples(100, 20), inFlight: 38, shed: 50, random: 0.5 }).state;
  assert.equal(m.written, 40);
  // The next minRTT measurement lands within interval ± jitter and pins the limit at min.
  const fresh = initialConcurrencyState(cfg, 0);
  const measured = concurrencyStep('app', cfg, fresh, { now: 200, latency: samples(60, 20), inFlight: 3, shed: 0, random: 0 });
  assert.equal(measured.state.phase, 'sampling');
  assert.equal(measured.state.nextMinRttAt, 200 + 8000, 'random 0 → interval × (1 − jitter)');
  const again = concurrencyStep('app', cfg, { ...measured.state, limit: 20, written: 20 }, { now: 8200, latency: samples(60, 20), inFlight: 20, shed: 0, random: 0.5 });
  assert.equal(again.state.phase, 'min-rtt');
  assert.equal(again.write, 3);
  assert.equal(again.events[0]!.event, 'concurrency-min-rtt-start');
  assert.equal(concurrencySchema.safeParse({ min: 10, max: 5 }).success, false);
});

test('control words: exactly N probe permits are taken, the limit is exact under contention, a worker crash is reconciled', () => {
  const shm = SharedState.create({ maxWorkers: 2, maxUpstreams: 2, maxEndpoints: 4, limiterSlots: 16, limiterPolicies: 1 });
  const cw = new ControlWords(shm);
  const w0 = new UpstreamGuardWords(shm, 1, 0);
  const w1 = new UpstreamGuardWords(shm, 1, 1);
  cw.setProbePermits(1, 3);
  cw.writeWord(1, BreakerState.HalfOpen, 0);
  let taken = 0;
  for (let i = 0; i < 10; i++) taken += Number(w0.takeProbe()) + Number(w1.takeProbe());
  assert.equal(taken, 3);
  assert.equal(cw.word(1) & 3, BreakerState.HalfOpen);
  cw.writeWord(1, BreakerState.Closed, 5);
  assert.equal(cw.word(1) >>> 2, 5);
  let admitted = 0;
  for (let i = 0; i < 4; i++) admitted += Number(w0.admit(5));
  for (let i = 0; i < 4; i++) admitted += Number(w1.admit(5));
  assert.equal(admitted, 5);
  assert.equal(cw.inFlight(1), 5);
  w0.leave();
  assert.equal(cw.inFlight(1), 4);
  // Worker 1 holds the one it got (worker 0 took 4 of the 5): its thread ends.
  assert.deepEqual(cw.releaseWorker(1), [{ upstream: 1, count: 1 }]);
  assert.equal(cw.inFlight(1), 3);
  assert.equal(cw.inFlight(0), 0, 'other upstreams untouched');
});
