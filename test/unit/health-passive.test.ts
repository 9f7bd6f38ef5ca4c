// Passive outlier detection with a fake clock and fake worker counters: the Envoy
// rules (consecutive thresholds, base × count ejection, max percent, interval sweep,
// multiplier decay) without waiting real seconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HealthChecker, type HealthTransition, type PassiveSignalSource } from '../../src/primary/health/health-checker.js';
import { healthSchema, passiveHealthSchema } from '../../src/config/schema-health.js';
import type { EndpointTableWriter } from '../../src/primary/upstream-control.js';
import type { EndpointWriter } from '../../src/primary/endpoint-writer.js';
import { captureLog } from '../helpers/log-capture.js';

// Compile-time check: the shared-table writer plugs into discovery and health as is.
type AssertAssignable<T, U extends T> = U;
export type WriterFits = AssertAssignable<EndpointTableWriter, EndpointWriter>;

function setup(passive: Record<string, unknown>, n = 10) {
  let now = 1_000_000;
  const counters = new Map<string, { consecutive5xx: number; consecutiveConnectFailures: number }>();
  const source: PassiveSignalSource = {
    read: (_u, ep) => counters.get(`${ep.host}:${ep.port}`) ?? null,
    reset: (_u, ep) => counters.set(`${ep.host}:${ep.port}`, { consecutive5xx: 0, consecutiveConnectFailures: 0 }),
  };
  const cap = captureLog();
  const transitions: HealthTransition[] = [];
  const sink: string[] = [];
  const hc = new HealthChecker({
    log: cap.log,
    // what the log held when the tables took the verdict: the event must come after
    sink: { setHealth: (_u, ep, state) => sink.push(`${ep.host}:${ep.port}=${state} (${cap.records.filter((r) => r.event === 'endpoint-ejected' || r.event === 'endpoint-readmitted').length} events before)`) },
    passiveSource: source,
    now: () => now,
    onTransition: (t) => transitions.push(t),
  });
  hc.configure('app', healthSchema.parse({ passive }));
  const eps = Array.from({ length: n }, (_, i) => ({ host: '10.0.0.1', port: 9000 + i }));
  hc.setEndpoints('app', eps);
  return {
    hc,
    cap,
    transitions,
    sink,
    set: (i: number, c5: number, cf = 0) => counters.set(`10.0.0.1:${9000 + i}`, { consecutive5xx: c5, consecutiveConnectFailures: cf }),
    get: (i: number) => counters.get(`10.0.0.1:${9000 + i}`),
    advance: (ms: number) => (now += ms),
    now: () => now,
  };
}

test('passive: defaults are Envoy\'s (5 × 5xx, 10 s, 30 s base, 10 %)', () => {
  const d = passiveHealthSchema.parse({});
  assert.equal(d.consecutive5xx, 5);
  assert.equal(d.interval, 10_000);
  assert.equal(d.baseEjection, 30_000);
  assert.equal(d.maxEjectionPercent, 10);
});

test('passive: 5 consecutive 5xx eject for base × count; the sweep returns it when the time is up; counters reset on ejection', async (t) => {
  const s = setup({});
  t.after(() => s.hc.stop());
  s.set(3, 4);
  s.hc.scanPassive('app');
  assert.equal(s.transitions.length, 0, '4 is under the threshold');
  s.set(3, 5);
  s.hc.scanPassive('app');
  assert.equal(s.transitions.length, 1);
  assert.equal(s.transitions[0]!.state, 'ejected');
  assert.equal(s.transitions[0]!.cause, 'passive');
  assert.match(s.transitions[0]!.reason, /5 consecutive 5xx responses \(threshold 5\); ejected for 30000ms \(ejection #1\)/);
  assert.deepEqual(s.get(3), { consecutive5xx: 0, consecutiveConnectFailures: 0 }, 'reset, as Envoy does');
  assert.deepEqual(s.sink, ['10.0.0.1:9003=ejected (0 events before)'], 'the workers route by an ejection before it is announced');
  assert.equal(s.cap.events('endpoint-ejected').length, 1);

  s.advance(20_000);
  s.hc.sweepPassive('app');
  assert.equal(s.transitions.length, 1, 'still ejected at 20 s');
  s.advance(10_000);
  s.hc.sweepPassive('app');
  assert.equal(s.transitions.length, 2);
  assert.equal(s.transitions[1]!.state, 'healthy');
  assert.match(s.transitions[1]!.reason, /ejection time expired/);
  assert.equal(s.cap.events('endpoint-readmitted').length, 1);

  // Second ejection before the multiplier decays: 2 × base.
  s.set(3, 0, 5);
  s.hc.scanPassive('app');
  assert.match(s.transitions[2]!.reason, /5 consecutive connect failures.*ejected for 60000ms \(ejection #2\)/);
  const st = s.hc.stats('app')!;
  assert.equal(st.ejectionsPassive, 2);
  assert.equal(st.readmissions, 1);
  assert.equal(st.ejectedNow, 1);
});

test('passive: maxEjectionPercent caps ejections, but one is always allowed', async (t) => {
  const s = setup({ maxEjectionPercent: 10 }, 3);
  t.after(() => s.hc.stop());
  s.set(0, 5);
  s.set(1, 5);
  s.hc.scanPassive('app');
  assert.equal(s.transitions.filter((x) => x.state === 'ejected').length, 1, '1 of 3 (33 %) is allowed as the first; a second is not');
  assert.equal(s.hc.stats('app')!.ejectionsOverflow, 1);
  assert.equal(s.cap.events('endpoint-ejection-skipped').length, 1);

  const wide = setup({ maxEjectionPercent: 50 }, 4);
  t.after(() => wide.hc.stop());
  for (let i = 0; i < 4; i++) wide.set(i, 9);
  wide.hc.scanPassive('app');
  assert.equal(wide.transitions.length, 2, '0 % and 25 % are below 50 %; at 50 % it stops');
});

test('passive: ejection time is capped by maxEjection, and the multiplier decays one step per clean interval', async (t) => {
  const s = setup({ baseEjection: '30s', maxEjection: '60s', interval: '10s' });
  t.after(() => s.hc.stop());
  for (let round = 1; round <= 3; round++) {
    s.set(0, 5);
    s.hc.scanPassive('app');
    s.advance(61_000);
    s.hc.sweepPassive('app');
  }
  const ejections = s.transitions.filter((x) => x.state === 'ejected').map((x) => /ejected for (\d+)ms/.exec(x.reason)![1]);
  assert.deepEqual(ejections, ['30000', '60000', '60000']);
  // Three clean sweeps bring the multiplier from 3 to 0: the next ejection is base again.
  for (let i = 0; i < 3; i++) {
    s.advance(10_000);
    s.hc.sweepPassive('app');
  }
  s.set(0, 5);
  s.hc.scanPassive('app');
  assert.match(s.transitions.at(-1)!.reason, /ejected for 30000ms \(ejection #1\)/);
});

test('passive: an endpoint removed by discovery is forgotten; one that stays keeps its ejection', async (t) => {
  const s = setup({}, 3);
  t.after(() => s.hc.stop());
  s.set(1, 5);
  s.hc.scanPassive('app');
  assert.equal(s.hc.stats('app')!.ejectedNow, 1);
  s.hc.setEndpoints('app', [{ host: '10.0.0.1', port: 9000 }, { host: '10.0.0.1', port: 9001 }]);
  assert.equal(s.hc.snapshot('app').find((e) => e.endpoint === '10.0.0.1:9001')!.state, 'ejected');
  s.hc.setEndpoints('app', [{ host: '10.0.0.1', port: 9000 }]);
  assert.equal(s.hc.stats('app')!.ejectedNow, 0);
  assert.deepEqual(s.hc.snapshot('app').map((e) => e.endpoint), ['10.0.0.1:9000']);
});

test('health config: statuses, timeout ≤ interval, unknown keys', () => {
  const a = healthSchema.parse({ active: { expectedStatuses: [200, '3xx', '401-403'] } }).active!;
  assert.deepEqual(a.expectedStatuses, [[200, 200], [300, 399], [401, 403]]);
  assert.equal(healthSchema.safeParse({ active: { interval: '1s', timeout: '2s' } }).success, false);
  assert.equal(healthSchema.safeParse({ active: { expectedStatuses: ['6xx'] } }).success, false);
  assert.equal(healthSchema.safeParse({ passive: { consecutive5XX: 3 } }).success, false);
});
