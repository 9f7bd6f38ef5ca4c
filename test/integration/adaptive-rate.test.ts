// Load-aware rate limits end to end: two workers, a loopback upstream whose response
// time and error rate the test changes while traffic flows, and the primary's AIMD
// controller scaling the policy's rate down while the upstream is slow or failing and
// back up when it is healthy. Ranges are wide on purpose: the machine is small and shared.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, request } from 'undici';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { assertEveryWorkerServed, workerRequests } from '../helpers/workers.js';

interface Fault {
  delayMs: number;
  /** every n-th request answers 500 (0: none) */
  failEvery: number;
  served: number;
}

interface RateStatus {
  route: string;
  policy: string;
  multiplier: number;
  verdict: string | null;
  decreases: number;
  increases: number;
}

async function rateStatus(gw: RunningGateway): Promise<RateStatus> {
  const s = (await (await request(`${gw.adminUrl}/status`)).body.json()) as { protection: { rateLimits: RateStatus[] } };
  return s.protection.rateLimits.find((r) => r.policy === 'aimd')!;
}

async function until(what: string, ms: number, cond: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out after ${ms} ms waiting for ${what}`);
}

/** `clients` closed-loop clients until `stop()`; a 429 waits 100 ms before the next request. Keeps the last admitted RateLimit-Policy header. */
function load(url: string, clients: number) {
  const agent = new Agent({ connections: clients, pipelining: 1 });
  const counts = new Map<string, number>();
  const seen = { policy: '' };
  let running = true;
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      try {
        const r = await request(url, { dispatcher: agent });
        await r.body.dump();
        counts.set(String(r.statusCode), (counts.get(String(r.statusCode)) ?? 0) + 1);
        if (r.statusCode !== 429) seen.policy = String(r.headers['ratelimit-policy']);
        else await new Promise((res) => setTimeout(res, 100));
      } catch {
        counts.set('error', (counts.get('error') ?? 0) + 1);
      }
    }
  });
  return {
    counts,
    seen,
    async stop() {
      running = false;
      await Promise.all(loops);
      await agent.close();
    },
  };
}

/** Responses the upstream served over `ms`. */
async function servedOver(f: Fault, ms: number): Promise<number> {
  const before = f.served;
  await new Promise((r) => setTimeout(r, ms));
  return f.served - before;
}

test('adaptive rate limit: steady when healthy, cut to its floor while the upstream is slow, restored when healthy, cut again on errors; headers show the effective quota', async (t) => {
  const f: Fault = { delayMs: 2, failEvery: 0, served: 0 };
  const up = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    const n = ++f.served;
    setTimeout(() => {
      res.statusCode = f.failEvery > 0 && n % f.failEvery === 0 ? 500 : 200;
      res.end('ok');
    }, f.delayMs);
  });
  const cfg = baseConfig([up.address], {
    routes: [
      {
        name: 'api',
        match: { path: '/' },
        upstream: 'app',
        policies: [{ 'rate-limit': { name: 'aimd', key: 'route', rate: '100/s', burst: 10, adaptive: { upstreamLatency: '200ms', percentile: 90, errorRate: '5%', min: '20%', decrease: 0.5, increase: '40%', window: '1s', minSamples: 5 } } }],
      },
    ],
  });
  Object.assign((cfg.upstreams as { app: Record<string, unknown> }).app, { retries: 0 });
  // p90, not the default p99: on this small shared machine one scheduling stall is the p99 of a 1 s window.
  const gw = await startGateway(cfg);
  const workers0 = await workerRequests(gw.adminUrl);
  const gen = load(`${gw.url}/x`, 24);
  const aimdEvents = () => gw.logs.filter((l) => typeof l.event === 'string' && l.event.startsWith('ratelimit-'));
  try {
    // Healthy: the full rate, and no decision over a quiet period of several windows.
    await new Promise((r) => setTimeout(r, 1500));
    const healthy = await servedOver(f, 3000);
    t.diagnostic(`healthy: ${healthy} served in 3 s (rate 100/s)`);
    assert.deepEqual(aimdEvents().map((e) => e.msg), [], 'no adaptive decision while healthy');
    assert.equal((await rateStatus(gw)).multiplier, 1);
    assert.equal(gen.seen.policy, '"aimd";q=100;w=1');
    assert.ok(healthy >= 200 && healthy <= 3 * 100 + 10 + 30, `about 100/s admitted while healthy (${healthy} in 3 s)`);

    // Slow upstream (500 ms, over the 200 ms target): ×0.5, then the 20 % floor.
    f.delayMs = 500;
    await until('the multiplier at its floor', 15_000, async () => (await rateStatus(gw)).multiplier === 0.2);
    await new Promise((r) => setTimeout(r, 500));
    const slow = await servedOver(f, 3000);
    t.diagnostic(`slow: ${slow} served in 3 s at ×0.2 (24 clients could send ~140)`);
    assert.ok(slow <= 3 * 20 + 10 + 20, `about 20/s admitted at the floor (${slow} in 3 s)`);
    assert.ok(slow >= 20, `the floor still admits traffic (${slow} in 3 s)`);
    assert.equal(gen.seen.policy, '"aimd";q=20;w=1', 'RateLimit-Policy states the effective quota');
    const down = aimdEvents().filter((e) => e.event === 'ratelimit-decreased');
    assert.deepEqual(down.map((e) => e.multiplier), [0.5, 0.25, 0.2], 'halved per window down to the floor, each cut logged once, none repeated at the floor');
    for (const k of ['route', 'policy', 'upstream', 'previous', 'latencyMs', 'latencyTargetMs', 'errorRate', 'errorRateTarget', 'responses', 'windowMs']) assert.ok(k in down[0]!, `decision log carries ${k}`);
    assert.ok((down[0]!.latencyMs as number) > 200, `the cut quotes the slow p90 (${String(down[0]!.latencyMs)} ms)`);
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /tidegate_ratelimit_multiplier\{route="api",policy="aimd"\} 0\.2\b/);

    // Healthy again: +40 % a window back to 1, step by step.
    f.delayMs = 2;
    await until('the multiplier back at 1', 15_000, async () => (await rateStatus(gw)).multiplier === 1);
    const up1 = aimdEvents().filter((e) => e.event === 'ratelimit-increased').map((e) => e.multiplier);
    assert.deepEqual(up1, [0.6, 1], 'restored in steps');
    await until('the full quota in the headers', 3000, async () => gen.seen.policy === '"aimd";q=100;w=1');

    // Failing upstream (1 in 4 is a 500, fast): the error rate alone cuts it.
    f.failEvery = 4;
    await until('a cut on the error rate', 10_000, async () => (await rateStatus(gw)).multiplier < 1);
    const last = aimdEvents().at(-1)!;
    assert.equal(last.event, 'ratelimit-decreased');
    assert.ok((last.errorRate as number) > 5, `the cut quotes the error rate (${String(last.errorRate)} %)`);
    assert.match(String(last.msg), /error rate/);
    await assertEveryWorkerServed(gw.adminUrl, 2, workers0);
    for (const e of aimdEvents()) t.diagnostic(JSON.stringify(e));
  } finally {
    await gen.stop();
    await gw.stop();
    await up.close();
  }
});

test('adaptive rate limit with tenant tiers: the low tier takes the cut first, as the decision line and /status say', async (t) => {
  const f: Fault = { delayMs: 500, failEvery: 0, served: 0 };
  const up = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    f.served++;
    setTimeout(() => res.end('ok'), f.delayMs);
  });
  const cfg = baseConfig([up.address], {
    tenants: { header: 'x-tenant', tiers: { gold: { rate: '100/s', priority: 'high' }, bronze: { rate: '100/s', priority: 'low' } }, assign: { acme: 'gold' }, default: 'bronze' },
    routes: [
      {
        name: 'api',
        match: { path: '/' },
        upstream: 'app',
        policies: [{ 'rate-limit': { name: 'aimd', key: 'tenant', rate: 'tier', adaptive: { upstreamLatency: '200ms', percentile: 90, min: '20%', decrease: 0.7, window: '1s', minSamples: 5 } } }],
      },
    ],
  });
  Object.assign((cfg.upstreams as { app: Record<string, unknown> }).app, { retries: 0 });
  const gw = await startGateway(cfg);
  const agent = new Agent({ connections: 16 });
  let running = true;
  const loops = Array.from({ length: 16 }, async (_, i) => {
    while (running) {
      const r = await request(`${gw.url}/x`, { dispatcher: agent, headers: { 'x-tenant': i % 2 === 0 ? 'acme' : 'initech' } }).catch(() => null);
      await r?.body.dump();
      if (r?.statusCode === 429) await new Promise((res) => setTimeout(res, 50));
    }
  });
  try {
    await until('the multiplier at its floor', 20_000, async () => (await rateStatus(gw)).multiplier === 0.2);
    const cuts = gw.logs.filter((l) => l.event === 'ratelimit-decreased');
    t.diagnostic(cuts.map((c) => `×${String(c.multiplier)}: ${String(c.tiers)}`).join('; '));
    // ×0.7 is 37.5 % of the way to the floor: bronze (the lower of two levels) is 75 % of its way down, gold untouched.
    assert.equal(cuts[0]!.multiplier, 0.7);
    assert.equal(cuts[0]!.tiers, 'gold ×1, bronze ×0.4');
    assert.equal(cuts.at(-1)!.tiers, 'gold ×0.2, bronze ×0.2', 'at the floor both tiers are at it');
    const s = (await (await request(`${gw.adminUrl}/status`)).body.json()) as { protection: { rateLimits: { policy: string; tiers: Record<string, number> | null }[] } };
    assert.deepEqual(s.protection.rateLimits.find((r) => r.policy === 'aimd')!.tiers, { gold: 0.2, bronze: 0.2 });
  } finally {
    running = false;
    await Promise.all(loops);
    await agent.close();
    await gw.stop();
    await up.close();
  }
});
