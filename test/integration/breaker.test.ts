// The circuit breaker end to end: two workers, a real loopback upstream whose
// behaviour the test switches, the primary's controller deciding from the workers'
// shared counters. Waits are on log events and /status with deadlines, never sleeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, request } from 'undici';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

type Mode = { status: number; delayMs: number };

/** An upstream answering `mode.status` after `mode.delayMs`; the test changes `mode` as it goes. */
async function switchable(mode: Mode): Promise<TestUpstream> {
  return startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    const { status, delayMs } = mode;
    const answer = () => {
      res.statusCode = status;
      res.setHeader('content-type', 'text/plain');
      res.end(status >= 500 ? 'broken' : 'ok');
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
}

interface Reply {
  status: number;
  code: string | null;
  retryAfter: string | null;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

async function get(url: string, dispatcher?: Agent): Promise<Reply> {
  const r = await request(url, dispatcher ? { dispatcher } : {});
  const body = await r.body.text();
  let code: string | null = null;
  if (r.headers['content-type'] === 'application/json') {
    try {
      code = (JSON.parse(body) as { error?: { code?: string } }).error?.code ?? null;
    } catch {
      code = null;
    }
  }
  const ra = r.headers['retry-after'];
  return { status: r.statusCode, code, retryAfter: typeof ra === 'string' ? ra : null, body, headers: r.headers };
}

/** `n` requests at once, each on its own connection (so the kernel spreads them over the workers). */
async function burst(url: string, n: number): Promise<Reply[]> {
  const agent = new Agent({ connections: n, pipelining: 1 });
  try {
    return await Promise.all(Array.from({ length: n }, () => get(url, agent)));
  } finally {
    await agent.close();
  }
}

async function waitEvent(gw: RunningGateway, event: string, count: number, ms: number): Promise<Record<string, unknown>> {
  const end = Date.now() + ms;
  for (;;) {
    const found = gw.logs.filter((l) => l.event === event);
    if (found.length >= count) return found[count - 1]!;
    if (Date.now() > end) assert.fail(`no ${count}× "${event}" within ${ms} ms; events: ${gw.logs.map((l) => l.event).filter(Boolean).join(', ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function workerRequests(gw: RunningGateway): Promise<number[]> {
  const s = (await (await request(`${gw.adminUrl}/status`)).body.json()) as { workers: { requests: number }[] };
  return s.workers.map((w) => w.requests);
}

interface ProtectionStatus {
  protection: { upstreams: { upstream: string; breaker: { state: string; trips: number; openForMs: number; failureRateThreshold: number } | null; counts: { circuitOpen: number; fallback: number } }[] };
}

async function protection(gw: RunningGateway, upstream: string): Promise<ProtectionStatus['protection']['upstreams'][number]> {
  const s = (await (await request(`${gw.adminUrl}/status`)).body.json()) as ProtectionStatus;
  return s.protection.upstreams.find((u) => u.upstream === upstream)!;
}

/** Sequential requests until the breaker opens (each is a 5xx the upstream really answered). */
async function tripBreaker(gw: RunningGateway, path: string, opened: number): Promise<Record<string, unknown>> {
  const end = Date.now() + 10_000;
  while (gw.logs.filter((l) => l.event === 'breaker-opened').length < opened) {
    if (Date.now() > end) assert.fail('breaker did not open within 10 s');
    await get(`${gw.url}${path}`);
  }
  return waitEvent(gw, 'breaker-opened', opened, 1000);
}

const BREAKER = { window: '5s', minRequests: 10, failureRate: '50%', openFor: '1s', maxOpenFor: '10s', halfOpenRequests: 3 };

test('breaker: trips on 5xx, answers 503 TG_ERR_CIRCUIT_OPEN fast without touching the upstream, admits exactly N probes across workers, re-opens longer on a failed probe, closes on success', async () => {
  const mode: Mode = { status: 500, delayMs: 0 };
  const up = await switchable(mode);
  const cfg = baseConfig([up.address]);
  Object.assign((cfg.upstreams as { app: Record<string, unknown> }).app, { retries: 0, breaker: BREAKER });
  const gw = await startGateway(cfg);
  try {
    const opened = await tripBreaker(gw, '/a', 1);
    assert.equal(opened.to, 'open');
    assert.equal(opened.openForMs, 1000);
    assert.ok((opened.attempts as number) >= 10, `tripped over ${String(opened.attempts)} requests (minRequests 10)`);
    assert.ok((opened.failureRate as number) >= 50);

    // Open: every request answered at once, the upstream sees none of them.
    const seen = up.requests.length;
    const t0 = performance.now();
    const refused = await burst(`${gw.url}/a`, 20);
    const ms = performance.now() - t0;
    for (const r of refused) {
      assert.equal(r.status, 503);
      assert.equal(r.code, 'TG_ERR_CIRCUIT_OPEN');
      const ra = Number(r.retryAfter);
      assert.ok(ra >= 1 && ra <= 1, `Retry-After ${String(r.retryAfter)} is the seconds until half-open (openFor 1s)`);
    }
    assert.equal(up.requests.length, seen, 'no request reached the upstream while open');
    assert.ok(ms < 2000, `20 refusals took ${ms.toFixed(0)} ms`);

    // Half-open with a failing upstream: exactly 3 probes get through, they fail, it re-opens for twice as long.
    await waitEvent(gw, 'breaker-half-open', 1, 5000);
    mode.delayMs = 300; // hold the probes so every request of the burst meets the taken permits
    const before1 = up.requests.length;
    const w0 = await workerRequests(gw);
    const probes1 = await burst(`${gw.url}/a`, 24);
    const w1 = await workerRequests(gw);
    assert.equal(up.requests.length - before1, 3, 'exactly halfOpenRequests probes reached the upstream');
    assert.equal(probes1.filter((r) => r.status === 500).length, 3);
    assert.equal(probes1.filter((r) => r.code === 'TG_ERR_CIRCUIT_OPEN').length, 21);
    w1.forEach((n, i) => assert.ok(n > w0[i]!, `worker ${i} took part in the half-open burst`));
    const reopened = await waitEvent(gw, 'breaker-opened', 2, 3000);
    assert.equal(reopened.from, 'half-open');
    assert.equal(reopened.openForMs, 2000, 'openFor doubles on a re-trip');
    assert.equal((await protection(gw, 'app')).breaker!.trips, 2);

    // Half-open again, healthy upstream: the probes succeed and the breaker closes.
    await waitEvent(gw, 'breaker-half-open', 2, 6000);
    mode.status = 200;
    const before2 = up.requests.length;
    const probes2 = await burst(`${gw.url}/a`, 24);
    assert.equal(up.requests.length - before2, 3);
    assert.equal(probes2.filter((r) => r.status === 200).length, 3);
    const closed = await waitEvent(gw, 'breaker-closed', 1, 3000);
    assert.equal(closed.probeSuccesses, 3);
    mode.delayMs = 0;
    const after = await burst(`${gw.url}/a`, 10);
    for (const r of after) assert.equal(r.status, 200);
    // Every transition logged once, and counted in /status and metrics.
    assert.equal(gw.logs.filter((l) => l.event === 'breaker-opened').length, 2);
    assert.equal(gw.logs.filter((l) => l.event === 'breaker-half-open').length, 2);
    assert.equal(gw.logs.filter((l) => l.event === 'breaker-closed').length, 1);
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /tidegate_breaker_state\{upstream="app",state="closed"\} 1/);
    assert.match(metrics, /tidegate_breaker_transitions_total\{upstream="app",to="open"\} 2/);
    assert.match(metrics, /tidegate_breaker_rejected_total\{upstream="app",answer="circuit_open"\} (\d+)/);
  } finally {
    await gw.stop();
    await up.close();
  }
});

test('breaker fallback: an open breaker sends requests to the fallback upstream, or answers the static response', async () => {
  const broken: Mode = { status: 503, delayMs: 0 };
  const up = await switchable(broken);
  const spare = await switchable({ status: 200, delayMs: 0 });
  const cfg = baseConfig([up.address], {
    upstreams: {
      app: { discovery: { type: 'static', endpoints: [up.address] }, retries: 0, breaker: { ...BREAKER, openFor: '30s', maxOpenFor: '30s', fallback: { upstream: 'spare' } } },
      spare: { discovery: { type: 'static', endpoints: [spare.address] } },
      fixed: { discovery: { type: 'static', endpoints: [up.address] }, retries: 0, breaker: { ...BREAKER, openFor: '30s', maxOpenFor: '30s', fallback: { status: 200, body: '{"items":[],"degraded":true}', headers: { 'content-type': 'application/json', 'x-degraded': '1' } } } },
    },
    routes: [
      { match: { path: '/dyn' }, upstream: 'app' },
      { match: { path: '/static' }, upstream: 'fixed' },
    ],
  });
  const gw = await startGateway(cfg);
  try {
    await tripBreaker(gw, '/dyn', 1);
    const spareBefore = spare.requests.length;
    const upBefore = up.requests.length;
    const viaSpare = await burst(`${gw.url}/dyn/x`, 10);
    for (const r of viaSpare) assert.equal(r.status, 200);
    assert.equal(spare.requests.length - spareBefore, 10, 'the fallback upstream served every request');
    assert.equal(up.requests.length, upBefore, 'the broken upstream saw none');

    await tripBreaker(gw, '/static', 2);
    const upBefore2 = up.requests.length;
    const fixed = await burst(`${gw.url}/static`, 10);
    for (const r of fixed) {
      assert.equal(r.status, 200);
      assert.equal(r.body, '{"items":[],"degraded":true}');
      assert.equal(r.headers['x-degraded'], '1');
      assert.equal(r.headers['content-type'], 'application/json');
    }
    assert.equal(up.requests.length, upBefore2);
    const p = await protection(gw, 'fixed');
    assert.equal(p.breaker!.state, 'open');
    const end = Date.now() + 3000;
    while ((await protection(gw, 'app')).counts.fallback < 10 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    // ≥: the request that met the breaker just opened, before its log line was read, may have gone to the fallback too.
    assert.ok((await protection(gw, 'app')).counts.fallback >= 10);
  } finally {
    await gw.stop();
    await up.close();
    await spare.close();
  }
});
