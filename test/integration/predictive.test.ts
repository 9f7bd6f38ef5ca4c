// Predictive concurrency end to end: a request rate that climbs exponentially makes the
// forecast (damped Holt refit on the primary) run ahead of the rate now, and with
// `concurrency.predictive` the adaptive limit's floor is raised to what the forecast rate
// needs at minRTT — logged with those inputs, shown in /status and in metrics. The same
// climb without `predictive` raises no floor. Ranges are wide: the host is small and shared.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';

const SERVICE_MS = 20;

/** Open-loop traffic whose rate climbs exponentially from `from` to `to` requests/s over `ms`; bounded by the schedule. */
async function climb(url: string, from: number, to: number, ms: number, until: () => boolean): Promise<{ sent: number; ok: number }> {
  const agent = new Agent({ connections: 256 });
  const t0 = Date.now();
  let sent = 0;
  let ok = 0;
  const inFlight = new Set<Promise<void>>();
  try {
    for (;;) {
      const t = Date.now() - t0;
      if (t >= ms || until()) break;
      // Requests due by now under rate(t) = from·e^(kt): the integral of the rate.
      const k = Math.log(to / from) / ms;
      const due = Math.floor((from / k) * (Math.exp(k * t) - 1) / 1000);
      while (sent < due) {
        sent++;
        const p = request(url, { dispatcher: agent })
          .then(async (r) => {
            await r.body.dump();
            if (r.statusCode === 200) ok++;
          })
          .catch(() => undefined)
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(inFlight);
  } finally {
    await agent.close();
  }
  return { sent, ok };
}

interface Guard {
  upstream: string;
  concurrency: { limit: number; predictive: { floor: number; requestRate: number; forecast: number | null } | null };
}

async function guard(gw: RunningGateway): Promise<Guard> {
  const s = (await (await request(`${gw.adminUrl}/status`)).body.json()) as { protection: { upstreams: Guard[] } };
  return s.protection.upstreams.find((u) => u.upstream === 'app')!;
}

function config(address: string, predictive: unknown): Record<string, unknown> {
  const cfg = baseConfig([address], {
    // A season longer than the test: the fit is the trend alone (Holt), 4 s ahead.
    observability: { snapshotInterval: '100ms', forecast: { horizon: '4s', season: '20s', interval: '250ms' } },
  });
  Object.assign((cfg.upstreams as { app: Record<string, unknown> }).app, {
    retries: 0,
    // A sluggish gradient (smoothing 0.05) so the climb outruns it, as a surge outruns any
    // controller that only reacts: the floor is what gets ahead.
    concurrency: { limit: 'adaptive', min: 4, max: 200, smoothing: 0.05, minRttRequests: 10, minRttInterval: '60s', ...(predictive === undefined ? {} : { predictive }) },
  });
  return cfg;
}

async function slowUpstream(): Promise<Awaited<ReturnType<typeof startUpstream>>> {
  return startUpstream((_req, res) => {
    setTimeout(() => res.end('ok'), SERVICE_MS);
  });
}

test('predictive concurrency: a climbing rate raises the limit floor ahead of the surge, logged with the forecast that caused it', async (t) => {
  const up = await slowUpstream();
  const gw = await startGateway(config(up.address, { surge: '25%', maxStep: 10, holdFor: '30s' }));
  try {
    const raised = () => gw.logs.find((l) => l.event === 'concurrency-predictive');
    const load = await climb(`${gw.url}/climb`, 20, 400, 12_000, () => raised() !== undefined);
    const e = raised() as Record<string, number> | undefined;
    t.diagnostic(`sent ${load.sent}, ok ${load.ok}; decision: ${JSON.stringify(e)}`);
    assert.ok(e !== undefined, `a concurrency-predictive decision during the climb (sent ${load.sent})`);
    for (const k of ['requestRate', 'forecast', 'horizonS', 'minRttMs', 'needed', 'from', 'to']) assert.ok(k in e, `the decision carries ${k}`);
    assert.ok(e.forecast! >= e.requestRate! * 1.25, `the forecast (${e.forecast}/s) is at least the surge threshold over the rate (${e.requestRate}/s)`);
    assert.ok(e.to! > e.from!, `the floor raised the limit (${e.from} → ${e.to})`);
    assert.ok(e.to! <= e.from! * 10, 'the floor is bounded by maxStep');
    // The floor is held (holdFor 30 s) and the limit workers see is at or above it.
    const g = await guard(gw);
    assert.ok(g.concurrency.predictive !== null && g.concurrency.predictive.floor >= e.to!, `/status shows the floor (${JSON.stringify(g.concurrency.predictive)})`);
    assert.ok(g.concurrency.limit >= g.concurrency.predictive.floor, `the limit (${g.concurrency.limit}) is at or above the floor`);
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    const floor = /tidegate_concurrency_predictive_floor\{upstream="app"\} (\d+)/.exec(metrics);
    assert.ok(floor !== null && Number(floor[1]) >= e.to!, `the floor metric (${floor?.[1]})`);
    assert.equal(gw.logs.filter((l) => l.event === 'concurrency-predictive').length, 1, 'raised once, then held');
  } finally {
    await gw.stop();
    await up.close();
  }
});

test('predictive concurrency is off by default: the same climb raises no floor', async () => {
  const up = await slowUpstream();
  const gw = await startGateway(config(up.address, undefined));
  try {
    // The climb runs its whole course here, and a forecast must exist at the end, so the
    // absence of a floor is not just the absence of a forecast.
    const load = await climb(`${gw.url}/climb`, 20, 400, 12_000, () => false);
    assert.ok(load.ok > 500, `traffic flowed (${load.ok} of ${load.sent})`);
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /tidegate_upstream_request_rate_forecast\{upstream="app",horizon="4s"\} [\d.]+/, 'a forecast was made');
    assert.equal((await guard(gw)).concurrency.predictive, null);
    assert.equal(gw.logs.filter((l) => l.event === 'concurrency-predictive').length, 0);
  } finally {
    await gw.stop();
    await up.close();
  }
});
