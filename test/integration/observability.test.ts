// Drives requests with a known upstream delay through the real gateway (2 workers)
// and checks that what /metrics and /histograms export matches what was measured.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import * as hdr from 'hdr-histogram-js';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { assertEveryWorkerServed } from '../helpers/workers.js';

const DELAY_MS = 25;
const N = 120;
const VALID_TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function pick(samples: Sample[], name: string, where: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v));
}

async function getJson<T>(url: string): Promise<T> {
  const r = await request(url);
  assert.equal(r.statusCode, 200, `${url}: ${r.statusCode}`);
  return (await r.body.json()) as T;
}

async function getText(url: string): Promise<string> {
  const r = await request(url);
  assert.equal(r.statusCode, 200, `${url}: ${r.statusCode}`);
  return r.body.text();
}

async function until<T>(what: string, fn: () => Promise<T | null>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface Summary {
  count: number;
  sumUs: number;
  minUs: number;
  maxUs: number;
  percentilesUs: Record<string, number>;
}

test('latency histograms: per worker, merged, Prometheus buckets and HDR export agree with a load run', async () => {
  const up = await startUpstream((req, res) => {
    // At least DELAY_MS of real time: libuv starts a timer from the loop's cached time,
    // so a setTimeout alone may fire before its delay has passed since the call (a CI
    // run saw the gateway record 24.91 ms), and the assertions below rely on the delay.
    const t0 = performance.now();
    const answer = (): void => {
      const left = DELAY_MS - (performance.now() - t0);
      if (left > 0) {
        setTimeout(answer, Math.ceil(left));
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ traceparent: req.headers.traceparent ?? null, tracestate: req.headers.tracestate ?? null }));
    };
    setTimeout(answer, DELAY_MS);
  });
  // A real receiver for the scaling webhook.
  const hooks: Record<string, unknown>[] = [];
  const receiver = createServer((req, res) => {
    let b = '';
    req.on('data', (c: Buffer) => (b += c.toString()));
    req.on('end', () => {
      hooks.push(JSON.parse(b) as Record<string, unknown>);
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/scale`;
  const gw: RunningGateway = await startGateway(
    baseConfig([up.address], {
      routes: [{ name: 'api', match: { path: '/' }, upstream: 'app' }],
      observability: {
        snapshotInterval: '100ms',
        histograms: { buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] },
        accessLog: { sampleRate: 1 },
        scaling: { interval: '200ms', upstreams: { app: { metric: 'rps', target: 1, scaleDownStabilization: '1s' } } },
        forecast: { interval: '200ms', season: '1s' },
        webhook: { url: hookUrl, timeout: '1s', retries: 2 },
      },
    }),
  );
  // Many connections, so SO_REUSEPORT spreads them over both workers.
  const agent = new Agent({ connections: 16 });
  try {
    const clientMs: number[] = [];
    const one = async (i: number): Promise<void> => {
      const t0 = performance.now();
      const r = await request(`${gw.url}/item/${i}`, { dispatcher: agent });
      await r.body.dump();
      clientMs.push(performance.now() - t0);
      assert.equal(r.statusCode, 200);
    };
    // Idle: the workers report their heaps, and the aggregation thread has nothing to do
    // (no histogram recorded, no rate to forecast), so it has not started.
    const idle = await until('three snapshots from each worker', async () => {
      const m = parseMetrics(await getText(`${gw.adminUrl}/metrics`));
      const snaps = pick(m, 'tidegate_telemetry_snapshots_total');
      return snaps.length === 2 && snaps.every((x) => x.value >= 3) ? m : null;
    });
    const heaps = pick(idle, 'tidegate_worker_heap_used_bytes');
    assert.deepEqual(heaps.map((x) => x.labels.worker).sort(), ['0', '1']);
    for (const h of heaps) {
      const total = pick(idle, 'tidegate_worker_heap_total_bytes', { worker: h.labels.worker! })[0]!.value;
      assert.ok(h.value > 1e6 && h.value <= total, `worker ${h.labels.worker}: heap used ${h.value} of ${total}`);
    }
    assert.deepEqual(
      pick(idle, 'tidegate_aggregator_heap_used_bytes').map((x) => x.value),
      [0],
      'no aggregation thread before any traffic',
    );

    for (let i = 0; i < N; i += 12) await Promise.all(Array.from({ length: 12 }, (_, k) => one(i + k)));

    const merged = await until('all requests in the merged histogram', async () => {
      const r = await request(`${gw.adminUrl}/histograms?route=api`);
      if (r.statusCode !== 200) {
        await r.body.dump();
        return null;
      }
      const s = (await r.body.json()) as Summary;
      return s.count === N ? s : null;
    });
    // The gateway can only have seen less time than the client did, and never less than the upstream delay.
    assert.ok(merged.minUs >= DELAY_MS * 1000 * 0.999, `min ${merged.minUs}µs below the upstream delay`);
    const sortedClient = [...clientMs].sort((a, b) => a - b);
    assert.ok(merged.percentilesUs.p50! / 1000 <= sortedClient[N / 2]! * 1.001 + 0.001, 'gateway p50 ≤ client p50');

    // Per-worker histograms add up to the merged one.
    const index = await getJson<{ histograms: { kind: string; name: string; workers: number[] }[] }>(`${gw.adminUrl}/histograms`);
    const entry = index.histograms.find((h) => h.kind === 'request' && h.name === 'api')!;
    await assertEveryWorkerServed(gw.adminUrl, 2);
    assert.deepEqual(entry.workers, [0, 1], 'both workers recorded into the histograms');
    let perWorkerCount = 0;
    let perWorkerSum = 0;
    for (const w of entry.workers) {
      const s = await getJson<Summary>(`${gw.adminUrl}/histograms?route=api&worker=${w}`);
      perWorkerCount += s.count;
      perWorkerSum += s.sumUs;
    }
    assert.equal(perWorkerCount, N);
    assert.equal(perWorkerSum, merged.sumUs);

    // Prometheus: per-worker series, cumulative buckets, counts and sums that add up.
    const metrics = parseMetrics(await getText(`${gw.adminUrl}/metrics`));
    const counts = pick(metrics, 'tidegate_request_duration_seconds_count', { route: 'api' });
    assert.deepEqual(counts.map((s) => Number(s.labels.worker)).sort(), [...entry.workers]);
    assert.equal(counts.reduce((a, s) => a + s.value, 0), N);
    const sum = pick(metrics, 'tidegate_request_duration_seconds_sum', { route: 'api' }).reduce((a, s) => a + s.value, 0);
    assert.ok(Math.abs(sum - merged.sumUs / 1e6) < 1e-6, `_sum ${sum} vs ${merged.sumUs / 1e6}`);
    const buckets = new Map<string, number>();
    for (const s of pick(metrics, 'tidegate_request_duration_seconds_bucket', { route: 'api' })) buckets.set(s.labels.le!, (buckets.get(s.labels.le!) ?? 0) + s.value);
    assert.deepEqual([...buckets.keys()], ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '1', '+Inf']);
    assert.equal(buckets.get('+Inf'), N);
    assert.equal(buckets.get('0.01'), 0, 'nothing can beat the 25 ms upstream delay');
    let prev = 0;
    for (const [le, v] of buckets) {
      assert.ok(v >= prev, `buckets are cumulative at le=${le}`);
      prev = v;
      if (le === '+Inf') continue;
      // Each request took the gateway no longer than the client: every client latency
      // under the bound (less HDR's 0.1 %) must be counted under it.
      const b = Number(le) * 1000;
      const clientUnder = clientMs.filter((ms) => ms <= b * 0.999).length;
      assert.ok(v >= clientUnder, `le=${le}: exported ${v} < ${clientUnder} measured by the client`);
    }
    assert.equal(pick(metrics, 'tidegate_route_requests_total', { route: 'api', method: 'GET', code_class: '2xx' })[0]?.value, N);
    assert.equal(pick(metrics, 'tidegate_upstream_requests_total', { upstream: 'app', outcome: '2xx' })[0]?.value, N);
    assert.equal(pick(metrics, 'tidegate_upstream_duration_seconds_count', { upstream: 'app' }).reduce((a, s) => a + s.value, 0), N);
    assert.ok(pick(metrics, 'tidegate_worker_event_loop_utilization_ratio').length >= 1);
    assert.ok(pick(metrics, 'tidegate_worker_heap_used_bytes').length >= 1);
    const aggHeap = await until('the aggregation thread heap', async () => pick(parseMetrics(await getText(`${gw.adminUrl}/metrics`)), 'tidegate_aggregator_heap_used_bytes').find((x) => x.value > 0) ?? null);
    assert.ok(aggHeap.value > 1e5, `aggregation thread heap ${aggHeap.value}`);
    assert.equal(pick(metrics, 'tidegate_worker_requests_total').reduce((a, s) => a + s.value, 0), N);
    assert.ok(pick(metrics, 'tidegate_process_resident_memory_bytes').length === 1);
    assert.ok(pick(metrics, 'tidegate_process_open_fds').length === 1);

    // Exact HDR export: the standard compressed base64, decodable by HdrHistogram tools.
    const b64 = await getText(`${gw.adminUrl}/histograms?route=api&format=hdr`);
    assert.ok(b64.startsWith('HISTFAAA'));
    const decoded = hdr.decodeFromCompressedBase64(b64);
    assert.equal(decoded.totalCount, N);
    assert.equal(decoded.getValueAtPercentile(50), merged.percentilesUs.p50);
    assert.equal(decoded.getValueAtPercentile(99), merged.percentilesUs.p99);
    const upS = await getJson<Summary>(`${gw.adminUrl}/histograms?upstream=app`);
    assert.equal(upS.count, N);
    assert.ok(upS.minUs >= DELAY_MS * 1000 * 0.999);
    assert.equal((await request(`${gw.adminUrl}/histograms?route=nope`)).statusCode, 404);
    assert.equal((await request(`${gw.adminUrl}/histograms?route=api&worker=x`)).statusCode, 400);

    // Scaling signal: 1 endpoint at far more than 1 rps each → more replicas recommended.
    // Traffic keeps flowing while it is read: on a loaded machine the checks above can
    // outlast the load run and the scale-down window, and the signal rightly goes away.
    let warm = true;
    const keepWarm = (async () => {
      // Ends with the test: an assertion that fails below closes the agent, and so this loop.
      while (warm) {
        try {
          const r = await request(`${gw.url}/item/warm`, { dispatcher: agent });
          await r.body.dump();
        } catch {
          return;
        }
        await sleep(50);
      }
    })();
    const st = await until('a scaling recommendation', async () => {
      const s = await getJson<{ scaling: { upstream: string; recommendation: { current: number; recommended: number } | null }[] }>(`${gw.adminUrl}/status`);
      const a = s.scaling.find((x) => x.upstream === 'app');
      return a?.recommendation && a.recommendation.recommended > 1 ? a : null;
    });
    assert.equal(st.recommendation!.current, 1);
    assert.ok(gw.logs.some((l) => l.event === 'scaling-recommendation' && l.upstream === 'app'));
    const hook = await until('the scaling webhook', async () => hooks.find((h) => h.upstream === 'app' && (h.recommended as number) > 1) ?? null);
    assert.equal(hook.type, 'scaling-recommendation');
    assert.equal(hook.current, 1);
    assert.equal(hook.metric, 'rps');
    assert.match(String(hook.reason), /ceil\(1 ×/);
    const after = parseMetrics(await getText(`${gw.adminUrl}/metrics`));
    assert.ok(pick(after, 'tidegate_upstream_replicas_recommended', { upstream: 'app' })[0]!.value > 1);
    await until('a forecast', async () => (pick(parseMetrics(await getText(`${gw.adminUrl}/metrics`)), 'tidegate_upstream_request_rate_forecast', { upstream: 'app', horizon: '60s' }).length === 1 ? true : null));
    warm = false;
    await keepWarm;

    // Status page is served.
    const ui = await request(`${gw.adminUrl}/ui`);
    assert.equal(ui.statusCode, 200);
    assert.match(String(ui.headers['content-type']), /text\/html/);
    assert.match(await ui.body.text(), /<title>tidegate status<\/title>/);
  } finally {
    await agent.close();
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
    receiver.closeAllConnections();
    await new Promise<void>((r) => receiver.close(() => r()));
  }
});

test('traceparent is propagated, replaced when invalid, started when absent; the access log carries the trace id', async () => {
  const up = await startUpstream((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ traceparent: req.headers.traceparent ?? null, tracestate: req.headers.tracestate ?? null }));
  });
  const gw = await startGateway(baseConfig([up.address], { observability: { snapshotInterval: '100ms', accessLog: { sampleRate: 1 } } }));
  try {
    const send = async (headers: Record<string, string>): Promise<{ traceparent: string | null; tracestate: string | null; requestId: string }> => {
      const r = await request(`${gw.url}/t`, { headers });
      const body = (await r.body.json()) as { traceparent: string | null; tracestate: string | null };
      return { ...body, requestId: String(r.headers['x-request-id']) };
    };
    const valid = await send({ traceparent: VALID_TP, tracestate: 'congo=t61rcWkgMzE' });
    assert.equal(valid.traceparent, VALID_TP);
    assert.equal(valid.tracestate, 'congo=t61rcWkgMzE');
    const invalid = await send({ traceparent: '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', tracestate: 'congo=t61rcWkgMzE' });
    assert.match(invalid.traceparent!, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    assert.notEqual(invalid.traceparent!.slice(3, 35), VALID_TP.slice(3, 35).toUpperCase());
    assert.equal(invalid.tracestate, null, 'tracestate of an invalid traceparent is not forwarded');
    const absent = await send({});
    assert.match(absent.traceparent!, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);

    const access = await until('access-log entries', async () => {
      const a = gw.logs.filter((l) => l.event === 'access');
      return a.length >= 3 ? a : null;
    });
    const byId = new Map(access.map((a) => [a.requestId as string, a]));
    assert.equal(byId.get(valid.requestId)!.traceId, VALID_TP.slice(3, 35));
    assert.equal(byId.get(absent.requestId)!.traceId, absent.traceparent!.slice(3, 35));
    const a = byId.get(valid.requestId)!;
    assert.equal(a.method, 'GET');
    assert.equal(a.route, 'route-0');
    assert.equal(a.status, 200);
    assert.equal(typeof a.durationMs, 'number');
  } finally {
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});

test('histograms switched off: no latency families, counters still exported', async () => {
  const up = await startUpstream();
  const gw = await startGateway(baseConfig([up.address], { observability: { snapshotInterval: '100ms', histograms: { enabled: false } } }));
  try {
    for (let i = 0; i < 5; i++) await (await request(`${gw.url}/x`)).body.dump();
    const m = await until('route counters', async () => {
      const s = parseMetrics(await getText(`${gw.adminUrl}/metrics`));
      return pick(s, 'tidegate_route_requests_total').reduce((a, x) => a + x.value, 0) === 5 ? s : null;
    });
    assert.equal(pick(m, 'tidegate_request_duration_seconds_count').length, 0);
    assert.equal((await request(`${gw.adminUrl}/histograms?route=route-0`)).statusCode, 404);
  } finally {
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});

test('endpoint table and rate-limit decisions are exported from shared memory', async () => {
  const up = await startUpstream();
  const gw = await startGateway(
    baseConfig([up.address], {
      routes: [
        { name: 'limited', match: { path: '/lim' }, upstream: 'app', policies: [{ 'rate-limit': { name: 'per-route', key: 'route', rate: '2/s', burst: 2 } }] },
        { name: 'open', match: { path: '/' }, upstream: 'app' },
      ],
      observability: { snapshotInterval: '100ms' },
    }),
  );
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await request(`${gw.url}/lim`);
      await r.body.dump();
      statuses.push(r.statusCode);
    }
    const limited = statuses.filter((s) => s === 429).length;
    assert.ok(limited >= 1, `statuses ${statuses.join(',')}`);
    const m = await until('route counters for the limited route', async () => {
      const s = parseMetrics(await getText(`${gw.adminUrl}/metrics`));
      return pick(s, 'tidegate_route_requests_total', { route: 'limited' }).reduce((a, x) => a + x.value, 0) === 6 ? s : null;
    });
    const dec = (d: string) => pick(m, 'tidegate_ratelimit_decisions_total', { route: 'limited', policy: 'per-route', decision: d })[0]?.value;
    assert.equal(dec('limited'), limited);
    assert.equal(dec('allowed'), 6 - limited);
    assert.equal(pick(m, 'tidegate_route_requests_total', { route: 'limited', code_class: '4xx' })[0]?.value, limited);
    assert.equal(pick(m, 'tidegate_upstream_healthy_endpoints', { upstream: 'app' })[0]?.value, 1);
    assert.equal(pick(m, 'tidegate_endpoint_state', { upstream: 'app', endpoint: up.address, state: 'healthy' })[0]?.value, 1);
    assert.equal(pick(m, 'tidegate_endpoint_state', { upstream: 'app', endpoint: up.address, state: 'ejected' })[0]?.value, 0);
    assert.equal(pick(m, 'tidegate_endpoint_requests_total', { upstream: 'app', endpoint: up.address })[0]?.value, 6 - limited);
    assert.equal(pick(m, 'tidegate_endpoint_in_flight_requests', { upstream: 'app', endpoint: up.address })[0]?.value, 0);
  } finally {
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});

test('a reload with new bucket bounds and a new route keeps the cumulative counts', async () => {
  const up = await startUpstream();
  const cfg = (buckets: number[], routes: unknown[]) => baseConfig([up.address], { routes, observability: { snapshotInterval: '100ms', histograms: { buckets } } });
  const gw = await startGateway(cfg([0.01, 0.1], [{ name: 'api', match: { path: '/' }, upstream: 'app' }]));
  try {
    for (let i = 0; i < 10; i++) await (await request(`${gw.url}/a`)).body.dump();
    await until('10 requests in the histogram', async () => ((await getJson<Summary>(`${gw.adminUrl}/histograms?route=api`).catch(() => null))?.count === 10 ? true : null));
    writeFileSync(gw.configPath, stringify(cfg([0.005, 0.5, 2], [{ name: 'b', match: { path: '/b' }, upstream: 'app' }, { name: 'api', match: { path: '/' }, upstream: 'app' }])));
    const r = await request(`${gw.adminUrl}/reload`, { method: 'POST' });
    assert.equal(r.statusCode, 200, await r.body.text());
    for (let i = 0; i < 5; i++) await (await request(`${gw.url}/a`)).body.dump();
    for (let i = 0; i < 3; i++) await (await request(`${gw.url}/b/x`)).body.dump();
    const m = await until('counts after the reload', async () => {
      const s = parseMetrics(await getText(`${gw.adminUrl}/metrics`));
      const n = (route: string) => pick(s, 'tidegate_request_duration_seconds_count', { route }).reduce((a, x) => a + x.value, 0);
      return n('api') === 15 && n('b') === 3 ? s : null;
    });
    const les = [...new Set(pick(m, 'tidegate_request_duration_seconds_bucket', { route: 'api' }).map((s) => s.labels.le))];
    assert.deepEqual(les, ['0.005', '0.5', '2', '+Inf']);
    const inf = pick(m, 'tidegate_request_duration_seconds_bucket', { route: 'api', le: '2' }).reduce((a, x) => a + x.value, 0);
    assert.equal(inf, 15, 'earlier intervals are re-bucketed at the new bounds');
    assert.equal(pick(m, 'tidegate_route_requests_total', { route: 'api', method: 'GET', code_class: '2xx' })[0]?.value, 15);
  } finally {
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});

test('a crashed worker ships its last interval, and its restart continues the same worker series', async () => {
  const up = await startUpstream();
  const gw = await startGateway(baseConfig([up.address], { workers: 1, routes: [{ name: 'api', match: { path: '/' }, upstream: 'app' }], observability: { snapshotInterval: '60s' } }), {
    env: { TIDEGATE_ENABLE_TEST_HOOKS: '1' },
  });
  try {
    // The interval is 60 s: only the crash path's final snapshot can deliver these.
    for (let i = 0; i < 10; i++) await (await request(`${gw.url}/a`)).body.dump();
    const r = await request(`${gw.adminUrl}/debug/crash-worker?slot=0`, { method: 'POST' });
    assert.equal(r.statusCode, 202);
    await r.body.dump();
    await until('10 requests shipped by the crashing worker', async () => ((await getJson<Summary>(`${gw.adminUrl}/histograms?route=api&worker=0`).catch(() => null))?.count === 10 ? true : null));
    await until('the worker back', async () => {
      const s = await getJson<{ workers: { phase: string; restarts: number }[] }>(`${gw.adminUrl}/status`);
      return s.workers[0]!.phase === 'listening' && s.workers[0]!.restarts === 1 ? true : null;
    });
    const m = parseMetrics(await getText(`${gw.adminUrl}/metrics`));
    assert.equal(pick(m, 'tidegate_worker_restarts', { worker: '0' })[0]?.value, 1);
    assert.equal(pick(m, 'tidegate_request_duration_seconds_count', { route: 'api', worker: '0' })[0]?.value, 10);
  } finally {
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});
