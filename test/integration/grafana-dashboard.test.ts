// The Grafana dashboard (deploy/grafana/tidegate-dashboard.json) against a running
// gateway: every metric a panel's query names must be one the gateway exports, so a
// renamed metric cannot leave a panel silently empty; and the adaptive-protection
// panels the operator needs are there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { until } from '../helpers/poll.js';
import { startUpstream } from '../helpers/upstream.js';

interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: { expr?: string }[];
}

interface Dashboard {
  panels: Panel[];
  templating: { list: { query?: string | { query?: string } }[] };
}

const DASHBOARD = fileURLToPath(new URL('../../../deploy/grafana/tidegate-dashboard.json', import.meta.url));

function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\btidegate_[a-z0-9_]+/g)].map((m) => m[0]);
}

test('every metric the Grafana dashboard queries is exported by the gateway, and the adaptive protection panels are there', async () => {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
  // Families are registered whatever the config, so a plain gateway lists every name;
  // the latency histograms once a request has been through (they render per series).
  const up = await startUpstream();
  const gw = await startGateway(baseConfig([up.address]));
  let exported: Set<string>;
  try {
    for (let i = 0; i < 4; i++) await (await request(`${gw.url}/x`)).body.text();
    const text = await until(
      'both latency histograms in /metrics',
      async () => (await request(`${gw.adminUrl}/metrics`)).body.text(),
      (t) => t.includes('# TYPE tidegate_request_duration_seconds histogram') && t.includes('# TYPE tidegate_upstream_duration_seconds histogram'),
      10_000,
    );
    exported = new Set<string>();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      exported.add(m[1]!);
      if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(m[1]! + s);
    }
  } finally {
    await gw.stop();
    await up.close();
  }
  assert.ok(exported.size > 50, `the gateway exported ${exported.size} metric names`);

  const ids = new Set<number>();
  const queried = new Set<string>();
  for (const p of dash.panels) {
    assert.ok(!ids.has(p.id), `panel id ${p.id} is unique`);
    ids.add(p.id);
    if (p.type === 'row') continue;
    const exprs = (p.targets ?? []).map((t) => t.expr ?? '');
    assert.ok(exprs.length > 0 && exprs.every((e) => e.length > 0), `panel "${p.title}" has queries`);
    for (const e of exprs) {
      const names = metricNames(e);
      assert.ok(names.length > 0, `panel "${p.title}": "${e}" names a tidegate metric`);
      for (const n of names) {
        assert.ok(exported.has(n), `panel "${p.title}" queries ${n}, which the gateway does not export`);
        queried.add(n);
      }
    }
  }
  for (const v of dash.templating.list) {
    const q = typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
    for (const n of metricNames(q)) assert.ok(exported.has(n), `variable query ${q} names ${n}, which the gateway does not export`);
  }
  // The panels of adaptive protection: breaker, concurrency (limit, in flight, minRTT and
  // sample RTT), shedding by priority, route and reason, the AIMD multiplier.
  for (const n of [
    'tidegate_breaker_state',
    'tidegate_breaker_window_failure_ratio',
    'tidegate_breaker_rejected_total',
    'tidegate_concurrency_limit',
    'tidegate_concurrency_in_flight_requests',
    'tidegate_concurrency_min_rtt_seconds',
    'tidegate_concurrency_sample_rtt_seconds',
    'tidegate_concurrency_gradient',
    'tidegate_shed_total',
    'tidegate_concurrency_shed_by_priority_total',
    'tidegate_load_shed_total',
    'tidegate_shed_level',
    'tidegate_ratelimit_multiplier',
  ])
    assert.ok(queried.has(n), `a panel shows ${n}`);
});
