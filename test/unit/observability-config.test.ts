import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/load.js';
import { DEFAULT_BUCKETS_SECONDS, observabilitySchema, workerObservability } from '../../src/metrics/config.js';
import { DEFAULT_WORKER_OBSERVABILITY } from '../../src/metrics/worker-observability.js';
import { compileWorkerConfig } from '../../src/config/compile.js';

const base = { upstreams: { app: { discovery: { type: 'static', endpoints: ['127.0.0.1:9001'] } } }, routes: [{ upstream: 'app' }] };

function issues(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    return (err as { issues?: string[] }).issues ?? [(err as Error).message];
  }
  assert.fail('expected the config to be rejected');
}

test('observability section: defaults, and what workers receive', () => {
  const cfg = validateConfig(base);
  const o = cfg.observability;
  assert.deepEqual(o.histograms, { enabled: true, buckets: [...DEFAULT_BUCKETS_SECONDS] });
  assert.equal(o.snapshotInterval, 1000);
  assert.equal(o.accessLog.sampleRate, 0);
  assert.deepEqual(o.tracing, { enabled: true, startIfAbsent: true, sampleNewTraces: false });
  assert.equal(o.scaling.interval, 15_000);
  assert.equal(o.forecast.horizon, 60_000);
  assert.equal(o.webhook, undefined);
  const w = compileWorkerConfig(cfg, 1).observability;
  assert.deepEqual(w, { histograms: true, snapshotIntervalMs: 1000, accessLog: o.accessLog, tracing: o.tracing });
});

test('observability section: every error is reported with its path', () => {
  const got = issues(() =>
    validateConfig({
      ...base,
      observability: {
        histograms: { buckets: [0.1, 0.05] },
        snapshotInterval: '10ms',
        accessLog: { sampleRate: 2 },
        scaling: { upstreams: { nope: { metric: 'rps', target: 10 }, app: { metric: 'cpu', target: 1 } } },
        webhook: { url: 'ftp://x' },
        bogus: true,
      },
    }),
  ).join('\n');
  for (const p of ['observability.histograms.buckets', 'observability.snapshotInterval', 'observability.accessLog.sampleRate', 'observability.scaling.upstreams.nope', 'observability.scaling.upstreams.app.metric', 'observability.webhook.url', 'bogus']) {
    assert.ok(got.includes(p), `missing ${p} in:\n${got}`);
  }
});

test('observability section: a full example parses', () => {
  const cfg = validateConfig({
    ...base,
    observability: {
      histograms: { enabled: false, buckets: [0.01, 0.1, 1] },
      snapshotInterval: '250ms',
      accessLog: { sampleRate: 0.01, maxPerInterval: 50 },
      tracing: { startIfAbsent: false },
      scaling: { interval: '30s', upstreams: { app: { metric: 'p99', target: 0.25, maxReplicas: 10, scaleDownStabilization: '5m' } } },
      forecast: { horizon: '2m', season: '1h' },
      webhook: { url: 'http://127.0.0.1:9/hook', timeout: '500ms', retries: 2 },
    },
  });
  assert.equal(cfg.observability.scaling.upstreams.app!.scaleDownStabilization, 300_000);
  assert.equal(cfg.observability.scaling.upstreams.app!.tolerance, 0.1);
  assert.equal(cfg.observability.webhook!.timeout, 500);
});

test("the workers' zod-free defaults equal the schema's defaults for an empty section", () => {
  assert.deepEqual(workerObservability(observabilitySchema.parse({})), DEFAULT_WORKER_OBSERVABILITY);
});
