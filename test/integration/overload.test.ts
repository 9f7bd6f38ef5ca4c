// Bounded queues, answered fast: pool.maxPending (requests waiting for an upstream's
// connections, per worker) and limits.maxConnections (connections with a request in
// progress, per worker). Both refuse with 503 + Retry-After without touching the upstream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { request } from 'undici';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startRawUpstream, startUpstream } from '../helpers/upstream.js';
import { rawRequest } from '../helpers/raw-http.js';
import { until } from '../helpers/poll.js';

/** Accepts and reads, never answers; counts connections and request heads. */
async function stalledUpstream() {
  const seen = { connections: 0, requests: 0 };
  const raw = await startRawUpstream((s: Socket) => {
    seen.connections++;
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
        seen.requests++;
        buf = buf.slice(i + 4);
      }
    });
  });
  return { ...raw, seen };
}

async function status(gw: RunningGateway): Promise<{
  workers: { connections: { active: number; limit: number; refused: number } }[];
  upstreams: { name: string; overload: { connections: number; maxPending: number; pending: number; overloaded: number } }[];
}> {
  const r = await request(`${gw.adminUrl}/status`);
  return (await r.body.json()) as never;
}

async function metric(gw: RunningGateway, line: RegExp): Promise<number | null> {
  const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
  const m = text.split('\n').find((l) => line.test(l));
  return m === undefined ? null : Number(m.slice(m.lastIndexOf(' ') + 1));
}

test('pool.maxPending: with a stalled upstream, requests beyond connections + maxPending get 503 at once, and the upstream sees only what its connections carry', async () => {
  const CONNECTIONS = 2;
  const MAX_PENDING = 10;
  const CLIENTS = 50;
  const up = await stalledUpstream();
  const cfg = baseConfig([up.address], { workers: 1 });
  Object.assign((cfg.upstreams as { app: Record<string, unknown> }).app, { pool: { connections: CONNECTIONS, maxPending: MAX_PENDING }, timeouts: { connect: '1s', response: '60s' } });
  const gw = await startGateway(cfg);
  try {
    const results = Array.from({ length: CLIENTS }, async () => {
      const t0 = performance.now();
      try {
        const r = await request(`${gw.url}/work`);
        const body = await r.body.text();
        return { status: r.statusCode, ms: performance.now() - t0, retryAfter: r.headers['retry-after'], code: r.statusCode === 503 ? (JSON.parse(body) as { error: { code: string } }).error.code : null };
      } catch {
        return { status: 0, ms: performance.now() - t0, retryAfter: undefined, code: null };
      }
    });
    // One worker, an upstream that never answers: the first CONNECTIONS requests hold
    // its connections, the next MAX_PENDING wait, every other one is refused.
    const refusedExpected = CLIENTS - CONNECTIONS - MAX_PENDING;
    const refused: { ms: number }[] = [];
    const settled: { status: number; ms: number; retryAfter: unknown; code: string | null }[] = [];
    for (const p of results) void p.then((r) => settled.push(r));
    await until('the excess is refused', () => settled.length, (n) => n >= refusedExpected, 10_000);
    for (const r of settled) {
      assert.equal(r.status, 503);
      assert.equal(r.code, 'TG_ERR_UPSTREAM_OVERLOADED');
      assert.equal(r.retryAfter, '1');
      refused.push(r);
    }
    // Loose: "at once" on a loaded 2-core machine, against a response timeout of 60 s.
    const slowest = Math.max(...refused.map((r) => r.ms));
    assert.ok(slowest < 3000, `refusals within 3 s of being sent (slowest ${slowest.toFixed(0)} ms)`);
    const s = await until('pending settles', () => status(gw), (x) => x.upstreams[0]!.overload.pending === MAX_PENDING);
    assert.equal(settled.length, refusedExpected, 'nobody else was answered');
    assert.deepEqual(s.upstreams[0]!.overload, { connections: CONNECTIONS, maxPending: MAX_PENDING, pending: MAX_PENDING, overloaded: refusedExpected, workers: [{ worker: 0, pending: MAX_PENDING, overloaded: refusedExpected }] });
    assert.equal(s.workers[0]!.connections.active, CONNECTIONS + MAX_PENDING);
    assert.deepEqual(up.seen, { connections: CONNECTIONS, requests: CONNECTIONS }, 'the upstream saw only what the pool connections carry');
    assert.equal(await metric(gw, /^tidegate_upstream_pending_requests\{upstream="app",worker="0"\}/), MAX_PENDING);
    assert.equal(await metric(gw, /^tidegate_upstream_overloaded_total\{upstream="app",worker="0"\}/), refusedExpected);
    const ev = await until('the refusals are logged', () => gw.logs.find((l) => l.event === 'upstream-overloaded'), (l) => l !== undefined);
    assert.equal(ev!.upstream, 'app');
    assert.equal(ev!.refused, refusedExpected);
    // The upstream goes away: the held requests fail and the count drains to zero.
    await up.close();
    const rest = await Promise.all(results);
    assert.equal(rest.filter((r) => r.status === 502).length, CONNECTIONS + MAX_PENDING, JSON.stringify(rest.map((r) => r.status)));
    await until('nothing pending', () => status(gw), (x) => x.upstreams[0]!.overload.pending === 0 && x.workers[0]!.connections.active === 0);
  } finally {
    await gw.stop();
    await up.close();
  }
});

test('limits.maxConnections: a request over the limit gets 503 TG_ERR_LIMIT_CONNECTIONS and its connection is closed', async () => {
  const LIMIT = 5;
  const up = await stalledUpstream();
  const live = await startUpstream();
  const cfg = baseConfig([], {
    workers: 1,
    limits: { maxConnections: LIMIT },
    upstreams: {
      stall: { discovery: { type: 'static', endpoints: [up.address] }, timeouts: { response: '60s' } },
      live: { discovery: { type: 'static', endpoints: [live.address] } },
    },
    routes: [
      { name: 'stall', match: { path: '/stall' }, upstream: 'stall' },
      { name: 'live', match: { path: '/live' }, upstream: 'live' },
    ],
  });
  const gw = await startGateway(cfg);
  try {
    const held = Array.from({ length: LIMIT }, () => request(`${gw.url}/stall`).then((r) => r.body.dump().then(() => r.statusCode), () => 0));
    await until('the limit is reached', () => status(gw), (s) => s.workers[0]!.connections.active === LIMIT);
    const t0 = performance.now();
    const over = await rawRequest(gw.port, 'GET /live HTTP/1.1\r\nHost: x\r\n\r\n', 3000);
    const ms = performance.now() - t0;
    assert.equal(over.status, 503);
    assert.match(over.data, /TG_ERR_LIMIT_CONNECTIONS/);
    assert.match(over.data, /\r\nretry-after: 1\r\n/i);
    assert.ok(over.closed, 'the refused connection is closed');
    assert.ok(ms < 2000, `refused at once (${ms.toFixed(0)} ms)`);
    const s = await status(gw);
    assert.deepEqual(s.workers[0]!.connections, { active: LIMIT, limit: LIMIT, refused: 1 });
    assert.equal(await metric(gw, /^tidegate_worker_connections_refused_total\{worker="0"\}/), 1);
    await until('the refusal is logged', () => gw.logs.find((l) => l.event === 'connections-refused'), (l) => l !== undefined);
    assert.equal(up.seen.requests, LIMIT, 'the refused request reached no upstream');
    // Capacity frees as requests end: the held ones fail when their upstream goes away.
    await up.close();
    assert.deepEqual(await Promise.all(held), new Array<number>(LIMIT).fill(502));
    const ok = await request(`${gw.url}/live`);
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
  } finally {
    await gw.stop();
    await Promise.all([up.close(), live.close()]);
  }
});
