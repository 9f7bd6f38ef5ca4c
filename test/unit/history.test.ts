// The chart history: a fixed ring per series group, rates from counter deltas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HistoryRing } from '../../src/primary/history/history-ring.js';
import { History, historyCapacity, MAX_HISTORY_POINTS, type HistoryInputs, type LatencyWindow, type TrafficTotals } from '../../src/primary/history/history.js';

test('ring: wraps at capacity, gaps read as null, a series silent for a whole window is dropped', () => {
  const r = new HistoryRing(3, 2);
  r.push(1000, new Map([['a', [1, 10]]]));
  r.push(2000, new Map([['a', [2, 20]], ['b', [5, NaN]]]));
  r.push(3000, new Map([['b', [6, 60]]]));
  let got = r.read();
  assert.deepEqual(got.times, [1000, 2000, 3000]);
  assert.deepEqual(got.series, [
    { name: 'a', values: [[1, 2, null], [10, 20, null]] },
    { name: 'b', values: [[null, 5, 6], [null, null, 60]] },
  ]);
  r.push(4000, new Map([['b', [7, 70]]]));
  got = r.read(2000);
  assert.deepEqual(got.times, [3000, 4000], 'since is exclusive');
  assert.deepEqual(r.read().times, [2000, 3000, 4000], 'the oldest point fell out');
  r.push(5000, new Map([['b', [8, 80]]]));
  assert.deepEqual(r.read().series.map((s) => s.name), ['b'], '"a" has not reported for a whole window');
  assert.deepEqual(r.read(undefined, new Set(['b'])).series[0]!.values[0], [6, 7, 8]);
});

function inputs(routes: Record<string, TrafficTotals>, lat: Record<string, LatencyWindow> = {}, elu: Record<number, number> = {}): HistoryInputs {
  return {
    routes: new Map(Object.entries(routes)),
    upstreams: new Map(),
    routeLatency: new Map(Object.entries(lat)),
    upstreamLatency: new Map(),
    workerElu: new Map(Object.entries(elu).map(([k, v]) => [Number(k), v])),
  };
}

test('history: the first sample is the baseline; rates are deltas over measured time; percentiles in ms', () => {
  const h = new History(10, 1000);
  h.sample(10_000, inputs({ api: { requests: 100, errors: 1 } }));
  assert.equal(h.points, 0);
  h.sample(12_000, inputs({ api: { requests: 300, errors: 5 } }, { api: { percentilesUs: [1000, 2500, 9000], count: 200 } }, { 0: 0.25, 1: 0.5 }));
  h.sample(13_000, inputs({ api: { requests: 300, errors: 5 } }, { api: { percentilesUs: [0, 0, 0], count: 0 } }, { 0: 0.1 }));
  const q = h.query(new URL('http://admin/v1/history')) as {
    intervalMs: number;
    routes: { times: number[]; series: { name: string; rps: number[]; errorsPerSecond: number[]; p50Ms: (number | null)[]; p99Ms: (number | null)[] }[] };
    workers: { series: { name: string; elu: (number | null)[] }[] };
  };
  assert.equal(q.intervalMs, 1000);
  assert.deepEqual(q.routes.times, [12_000, 13_000]);
  const api = q.routes.series[0]!;
  assert.deepEqual(api.rps, [100, 0]);
  assert.deepEqual(api.errorsPerSecond, [2, 0]);
  assert.deepEqual(api.p50Ms, [1, null], 'no requests in an interval: no latency point, not a zero');
  assert.deepEqual(api.p99Ms, [9, null]);
  assert.deepEqual(q.workers.series.map((s) => [s.name, s.elu]), [['0', [0.25, 0.1]], ['1', [0.5, null]]]);
  const only = h.query(new URL('http://admin/v1/history?kind=worker')) as Record<string, unknown>;
  assert.equal(only.routes, undefined);
  assert.throws(() => h.query(new URL('http://admin/v1/history?kind=routes')), /kind must be/);
  assert.throws(() => h.query(new URL('http://admin/v1/history?since=yesterday')), /since must be/);
});

test('capacity: window / interval, bounded', () => {
  assert.equal(historyCapacity(900_000, 1000), 900);
  assert.equal(historyCapacity(900_000, 100), MAX_HISTORY_POINTS);
});

test('config: observability.decisions and .history defaults; bad values rejected with their paths', async () => {
  const { validateConfig } = await import('../../src/config/load.js');
  const base = { upstreams: { app: { discovery: { type: 'static', endpoints: ['127.0.0.1:9001'] } } }, routes: [{ upstream: 'app' }] };
  const o = validateConfig(base).observability;
  assert.deepEqual(o.decisions, { size: 1000, stream: { heartbeat: 15_000, clientBuffer: 1024 * 1024, maxClients: 16 } });
  assert.deepEqual(o.history, { window: 900_000 });
  assert.equal(validateConfig({ ...base, observability: { decisions: { stream: { clientBuffer: '64kb' } }, history: { window: '1h' } } }).observability.decisions.stream.clientBuffer, 65536);
  let issues: readonly string[] = [];
  try {
    validateConfig({ ...base, observability: { decisions: { size: 5, stream: { heartbeat: 10, clientBuffer: '1kb', extra: 1 } }, history: { window: '1s' } } });
  } catch (err) {
    issues = (err as { issues?: readonly string[] }).issues ?? [];
  }
  const text = issues.join('\n');
  for (const path of ['observability.decisions.size', 'observability.decisions.stream.heartbeat', 'observability.decisions.stream.clientBuffer', 'observability.decisions.stream.extra: unknown key', 'observability.history.window']) {
    assert.ok(text.includes(path), `an issue at ${path} in:\n${text}`);
  }
});
