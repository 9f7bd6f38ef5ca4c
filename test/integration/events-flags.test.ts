// External events and feature flags through the real gateway (2 workers, real
// upstreams): an Alertmanager webhook (version 4, the documented payload shape)
// firing, re-sent and resolved; a plain event; flags switched at run time, a
// percentage sticky per caller, and a maintenance answer from every worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool } from 'undici';
import { startGateway, baseConfig } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { alertmanagerPayload, api, assertBothServed, perWorker, type Json } from '../helpers/admin-api.js';

const ADMIN = 'all-scopes-admin-token-0001';

function alertmanager(status: 'firing' | 'resolved', fingerprint = 'c8f2a1d9e0b7f3a4'): unknown {
  return alertmanagerPayload(status, { alertname: 'HighErrorRate', labels: { service: 'checkout', severity: 'page' }, summary: 'checkout 5xx above 5%', fingerprint, startsAt: '2026-12-01T10:00:00.000Z', endsAt: '2026-12-01T10:20:00.000Z' });
}

/** `n` requests over 16 connections (both workers), each with `headers(i)`; the statuses and bodies */
async function load(url: string, n: number, headers: (i: number) => Record<string, string> = () => ({})): Promise<{ status: number; body: string }[]> {
  const pool = new Pool(url, { connections: 16 });
  try {
    return await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const r = await pool.request({ path: '/', method: 'GET', headers: headers(i) });
        return { status: r.statusCode, body: await r.body.text() };
      }),
    );
  } finally {
    await pool.close();
  }
}

test('events: an Alertmanager firing applies its rule as overrides, a re-send is idempotent, resolved undoes it; a plain event too', async () => {
  const up = await startUpstream();
  const gw = await startGateway(
    baseConfig([up.address], {
      admin: { host: '127.0.0.1', port: 0, token: ADMIN },
      flags: { maint: { value: false } },
      routes: [{ name: 'api', match: { path: '/' }, upstream: 'app', maintenance: { flag: 'maint', status: 503, body: 'degraded\n', retryAfter: '30s' }, policies: [{ 'rate-limit': { name: 'per-route', key: ['route'], rate: '10000/s', burst: 10000 } }] }],
      events: [
        { name: 'high-errors', on: { alertname: 'HighErrorRate', status: 'firing' }, do: [{ flag: { name: 'maint', value: true } }, { scaleRateLimit: { route: 'api', factor: 0.5 } }], for: '10m' },
        { name: 'freeze', on: { event: 'deploy-freeze' }, do: [{ override: { kind: 'rate-limit', target: { route: 'api' }, value: { rate: '100/s' } } }] },
      ],
    }),
  );
  try {
    const base = gw.adminUrl;
    const fired = await api(base, 'POST', '/v1/events', ADMIN, alertmanager('firing'));
    assert.equal(fired.status, 200, JSON.stringify(fired.json));
    const outcome = (fired.json.events as { applied: { rule: string; overrides: string[] }[]; duplicates: string[] }[])[0]!;
    assert.equal(outcome.applied[0]!.rule, 'high-errors');
    assert.equal(outcome.applied[0]!.overrides.length, 2);
    const listed = (await api(base, 'GET', '/v1/overrides', ADMIN)).json.overrides as { kind: string; createdBy: string; source: string; reason: string; expiresAt: string; origin: { fingerprint: string } }[];
    assert.deepEqual(listed.map((o) => o.kind).sort(), ['flag', 'rate-limit']);
    assert.ok(listed.every((o) => o.createdBy === 'event:high-errors' && o.source === 'event' && o.origin.fingerprint === 'c8f2a1d9e0b7f3a4' && o.reason === 'checkout 5xx above 5%' && o.expiresAt !== null));
    const st = (await api(base, 'GET', '/status', ADMIN)).json as { rateLimits: { route: string; ratePerSecond: number }[] };
    assert.equal(st.rateLimits[0]!.ratePerSecond, 5000);
    const before = await perWorker(base, ADMIN);
    const during = await load(gw.url, 40);
    assert.ok(during.every((r) => r.status === 503 && r.body === 'degraded\n'), JSON.stringify(during.slice(0, 3)));
    assertBothServed(before, await perWorker(base, ADMIN));

    // Alertmanager re-sends a firing group (repeat_interval, retries): nothing changes.
    const again = await api(base, 'POST', '/v1/events', ADMIN, alertmanager('firing'));
    assert.deepEqual((again.json.events as { duplicates: string[]; applied: unknown[] }[])[0]!.duplicates, ['high-errors']);
    const ids = ((await api(base, 'GET', '/v1/overrides', ADMIN)).json.overrides as { id: string }[]).map((o) => o.id).sort();
    assert.deepEqual(ids, [...outcome.applied[0]!.overrides].sort());

    const resolved = await api(base, 'POST', '/v1/events', ADMIN, alertmanager('resolved'));
    assert.equal((resolved.json.events as { resolved: string[] }[])[0]!.resolved.length, 2);
    assert.deepEqual((await api(base, 'GET', '/v1/overrides', ADMIN)).json.overrides, []);
    const after = await load(gw.url, 20);
    assert.ok(after.every((r) => r.status === 200), JSON.stringify(after.slice(0, 3)));
    const st2 = (await api(base, 'GET', '/status', ADMIN)).json as { rateLimits: { ratePerSecond: number }[]; events: { received: number } };
    assert.equal(st2.rateLimits[0]!.ratePerSecond, 10000);
    assert.equal(st2.events.received, 3);
    assert.equal(gw.logs.filter((l) => l.event === 'external-event').length, 3);

    // A plain event, and its duplicate while its override holds.
    const plain = await api(base, 'POST', '/v1/events', ADMIN, { event: 'deploy-freeze', labels: { team: 'payments' } });
    assert.equal((plain.json.events as { applied: unknown[] }[])[0]!.applied.length, 1);
    const dup = await api(base, 'POST', '/v1/events', ADMIN, { event: 'deploy-freeze', labels: { team: 'payments' } });
    assert.deepEqual((dup.json.events as { duplicates: string[] }[])[0]!.duplicates, ['freeze']);
    assert.equal(((await api(base, 'GET', '/status', ADMIN)).json as { rateLimits: { ratePerSecond: number }[] }).rateLimits[0]!.ratePerSecond, 100);
    // Its resolution undoes it; the rule names no status, so it does not act on the
    // resolution and put the override straight back.
    const over = await api(base, 'POST', '/v1/events', ADMIN, { event: 'deploy-freeze', labels: { team: 'payments' }, status: 'resolved' });
    const o = (over.json.events as { resolved: string[]; applied: unknown[] }[])[0]!;
    assert.equal(o.resolved.length, 1);
    assert.deepEqual(o.applied, [], 'a rule without status does not act on a resolution');
    assert.deepEqual((await api(base, 'GET', '/v1/overrides', ADMIN)).json.overrides, []);
    // Neither shape: refused with the reason.
    const bad = await api(base, 'POST', '/v1/events', ADMIN, { version: '3', alerts: [] });
    assert.equal(bad.status, 422);
  } finally {
    await gw.stop();
    await up.close();
  }
});

test('events: a rule whose action its target refuses is a config error with its path', async () => {
  const up = await startUpstream();
  try {
    await assert.rejects(
      startGateway(baseConfig([up.address], { events: [{ on: { alertname: 'X' }, do: [{ breaker: { upstream: 'app', state: 'open' } }, { override: { kind: 'nope', target: 1, value: 2 } }] }] }), { timeoutMs: 8000 }),
      (e: Error) => /events\[0\]\.do\[0\]: target\.upstream: upstream "app" has no breaker/.test(e.message) && /events\[0\]\.do\[1\]: unknown override kind "nope"/.test(e.message),
    );
  } finally {
    // A failed assertion must not leave the server open and the test runner waiting on it.
    await up.close();
  }
});

test('flags: match.flag switches a route at run time on every worker; a percentage sticks per caller; GET /v1/flags shows it', async () => {
  const stable = await startUpstream();
  const beta = await startUpstream();
  const gw = await startGateway({
    ...baseConfig([stable.address], { admin: { host: '127.0.0.1', port: 0, token: ADMIN } }),
    upstreams: {
      stable: { discovery: { type: 'static', endpoints: [stable.address] } },
      beta: { discovery: { type: 'static', endpoints: [beta.address] } },
    },
    flags: { beta: { value: false, stickyHeader: 'x-user' } },
    routes: [
      { name: 'beta', match: { path: '/', flag: 'beta' }, upstream: 'beta' },
      { name: 'stable', match: { path: '/' }, upstream: 'stable' },
    ],
  });
  try {
    const base = gw.adminUrl;
    const side = async (n: number, user?: (i: number) => string) => {
      const b0 = beta.requests.length;
      const s0 = stable.requests.length;
      const r = await load(gw.url, n, user ? (i) => ({ 'x-user': user(i) }) : undefined);
      assert.ok(r.every((x) => x.status === 200));
      return { beta: beta.requests.length - b0, stable: stable.requests.length - s0 };
    };
    assert.deepEqual(await side(20), { beta: 0, stable: 20 });
    const on = await api(base, 'PUT', '/v1/flags/beta', ADMIN, { value: true, for: '10m' });
    assert.equal(on.status, 201, JSON.stringify(on.json));
    const before = await perWorker(base, ADMIN);
    assert.deepEqual(await side(40), { beta: 40, stable: 0 });
    assertBothServed(before, await perWorker(base, ADMIN));

    // 30 % of callers, by x-user: about 30 of 100 users, each always on its side.
    assert.equal((await api(base, 'PUT', '/v1/flags/beta', ADMIN, { value: '30%' })).status, 201);
    const flags = (await api(base, 'GET', '/v1/flags', ADMIN)).json.flags as Json[];
    assert.deepEqual(flags, [{ name: 'beta', slot: 0, configured: 0, effective: 30, stickyHeader: 'x-user' }]);
    const b0 = beta.requests.length;
    await side(200, (i) => `user-${i % 100}`);
    const onBeta = new Map<string, number>();
    for (const r of beta.requests.slice(b0)) onBeta.set(String(r.headers['x-user']), (onBeta.get(String(r.headers['x-user'])) ?? 0) + 1);
    // Binomial(100, 0.3): 30 ± 4.6; 12…48 is about ±4 sigma.
    assert.ok(onBeta.size >= 12 && onBeta.size <= 48, `users on beta: ${onBeta.size}`);
    assert.ok([...onBeta.values()].every((n) => n === 2), 'each user saw the same side both times');

    // Deleting the override restores the configured "off".
    const id = ((await api(base, 'GET', '/v1/overrides', ADMIN)).json.overrides as { id: string }[])[0]!.id;
    assert.equal((await api(base, 'DELETE', `/v1/overrides/${id}`, ADMIN)).status, 200);
    assert.deepEqual(await side(20, (i) => `user-${i}`), { beta: 0, stable: 20 });
  } finally {
    await gw.stop();
    await stable.close();
    await beta.close();
  }
});
