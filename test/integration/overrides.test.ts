// Run-time overrides through the real gateway (2 workers, real upstreams): an endpoint
// drained and a rate limit tightened, each expiring by itself or deleted; scopes (a
// `read` token cannot change traffic); a forced breaker; persistence across a restart;
// a reload that keeps one override and drops another whose configured value changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { startGateway, baseConfig } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { until } from '../helpers/poll.js';
import { api, assertBothServed, perWorker, tokenFile, type Json } from '../helpers/admin-api.js';

const ADMIN = 'all-scopes-admin-token-0001';
import { OPS, READER } from '../helpers/admin-api.js';

/** Which upstream answered each of `n` requests, spread over 16 connections (both workers). */
async function spread(url: string, n: number, ups: Record<string, TestUpstream>, path = '/'): Promise<Record<string, number>> {
  const before = Object.fromEntries(Object.entries(ups).map(([k, u]) => [k, u.requests.length]));
  const pool = new Pool(url, { connections: 16 });
  const statuses: number[] = [];
  try {
    await Promise.all(
      Array.from({ length: n }, async () => {
        const r = await pool.request({ path, method: 'GET' });
        await r.body.dump();
        statuses.push(r.statusCode);
      }),
    );
  } finally {
    await pool.close();
  }
  const out: Record<string, number> = Object.fromEntries(Object.entries(ups).map(([k, u]) => [k, u.requests.length - before[k]!]));
  out.non2xx = statuses.filter((s) => s >= 300).length;
  return out;
}

interface OverrideJson {
  id: string;
  kind: string;
  key: string;
  createdBy: string;
  expiresAt: string | null;
  reason: string | null;
}

test('overrides: drain an endpoint and tighten a rate limit across workers; expiry and delete restore; a read token cannot change traffic', async () => {
  const a = await startUpstream();
  const b = await startUpstream();
  const gw = await startGateway(
    baseConfig([a.address, b.address], {
      admin: { host: '127.0.0.1', port: 0, token: ADMIN, tokens: tokenFile() },
      routes: [
        { name: 'limited', match: { path: '/limited' }, upstream: 'app', policies: [{ 'rate-limit': { name: 'per-route', key: ['route'], rate: '10000/s', burst: 10000 } }] },
        { name: 'main', match: { path: '/' }, upstream: 'app' },
      ],
    }),
  );
  try {
    const base = gw.adminUrl;
    // A read token is refused before anything changes, and the refusal is audited.
    const refused = await api(base, 'POST', '/v1/overrides', READER, { kind: 'endpoint', target: { upstream: 'app', endpoint: b.address }, value: { state: 'drain' } });
    assert.equal(refused.status, 403);
    assert.equal((refused.json.error as Json).code, 'TG_ERR_ADMIN_FORBIDDEN');
    assert.equal((await api(base, 'PUT', `/v1/upstreams/app/endpoints/${b.address}`, READER, { state: 'drain' })).status, 403);
    assert.deepEqual((await api(base, 'GET', '/v1/overrides', READER)).json, { overrides: [] });

    const invalid = await api(base, 'POST', '/v1/overrides', OPS, { kind: 'endpoint', target: { upstream: 'nope', endpoint: 'x' }, value: { weight: 0 } });
    assert.equal(invalid.status, 422);
    assert.ok((invalid.json.error as { issues: string[] }).issues.length >= 3, JSON.stringify(invalid.json));

    const before = await perWorker(base, READER);
    const drained = await api(base, 'POST', '/v1/overrides', OPS, { kind: 'endpoint', target: { upstream: 'app', endpoint: b.address }, value: { state: 'drain' }, for: '5s', reason: 'deploy b' });
    assert.equal(drained.status, 201, JSON.stringify(drained.json));
    const o = drained.json as unknown as OverrideJson;
    assert.equal(o.createdBy, 'ops');
    assert.equal(o.reason, 'deploy b');
    assert.ok(o.expiresAt !== null);
    const t0 = Date.now();
    const during = await spread(gw.url, 60, { a, b });
    assert.ok(Date.now() - t0 < 4000, 'the requests ran while the override held');
    assert.equal(during.b, 0, `a drained endpoint takes no requests: ${JSON.stringify(during)}`);
    assert.equal(during.a, 60);
    assertBothServed(before, await perWorker(base, READER));
    assert.equal(((await api(base, 'GET', `/v1/overrides/${o.id}`, READER)).json as unknown as OverrideJson).key, `app/${b.address}`);
    // Expiry on the primary's timer restores the configured state.
    await until('drain expired', async () => (await api(base, 'GET', '/v1/overrides', READER)).json.overrides as unknown[], (l) => l.length === 0, 15_000);
    const expiredAfter = Date.now() - t0;
    assert.ok(expiredAfter >= 4000 && expiredAfter < 15000, `expired after ${expiredAfter} ms (for: 5s)`);
    const after = await spread(gw.url, 60, { a, b });
    assert.ok(after.b > 10 && after.a > 10, `both endpoints serve again: ${JSON.stringify(after)}`);
    assert.ok(gw.logs.some((l) => l.event === 'override-removed' && l.why === 'expired' && l.id === o.id));

    // Rate limit: from 10000/s to 1/s with burst 1 through the convenience route; deleting restores it.
    const tight = await api(base, 'PUT', '/v1/routes/limited/rate-limit', OPS, { rate: '1/m', burst: 2 });
    assert.equal(tight.status, 201, JSON.stringify(tight.json));
    const limited = await spread(gw.url, 20, { a, b }, '/limited');
    assert.equal(limited.non2xx, 18, `burst 2 then 429: ${JSON.stringify(limited)}`);
    const status = (await api(base, 'GET', '/status', READER)).json as { rateLimits: { route: string; ratePerSecond: number; burst: number }[]; overrides: { active: OverrideJson[] } };
    assert.equal(status.overrides.active.length, 1);
    assert.equal(status.overrides.active[0]!.kind, 'rate-limit');
    const del = await api(base, 'DELETE', `/v1/overrides/${(tight.json as unknown as OverrideJson).id}`, OPS);
    assert.equal(del.status, 200);
    assert.equal((await api(base, 'DELETE', `/v1/overrides/${(tight.json as unknown as OverrideJson).id}`, OPS)).status, 404);
    const restored = await spread(gw.url, 20, { a, b }, '/limited');
    assert.equal(restored.non2xx, 0, JSON.stringify(restored));

    // Every change is a decision and an audit line with the caller.
    const audit = gw.logs.filter((l) => l.event === 'admin-audit');
    assert.ok(audit.some((l) => l.caller === 'reader' && l.status === 403));
    assert.ok(audit.some((l) => l.caller === 'ops' && l.method === 'POST' && l.path === '/v1/overrides' && l.status === 201));
    const feed = (await api(base, 'GET', '/v1/decisions?kind=override-applied,override-removed', READER)).json as { decisions: { kind: string }[] };
    assert.ok(feed.decisions.filter((d) => d.kind === 'override-applied').length >= 2, JSON.stringify(feed));
  } finally {
    await gw.stop();
    await a.close();
    await b.close();
  }
});

test('overrides: a forced breaker holds open or closed whatever the controller sees, shows in /status, and auto hands it back', async () => {
  const up = await startUpstream();
  const cfg = baseConfig([up.address], { admin: { host: '127.0.0.1', port: 0, token: ADMIN } });
  Object.assign((cfg.upstreams as { app: Record<string, unknown> }).app, { breaker: {} });
  const gw = await startGateway(cfg);
  try {
    const base = gw.adminUrl;
    const forced = await api(base, 'PUT', '/v1/upstreams/app/breaker', ADMIN, { state: 'open', reason: 'upstream maintenance' });
    assert.equal(forced.status, 201, JSON.stringify(forced.json));
    const open = await spread(gw.url, 30, { up });
    assert.equal(open.up, 0, JSON.stringify(open));
    assert.equal(open.non2xx, 30);
    const r = await fetch(gw.url + '/');
    assert.equal(r.status, 503);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'TG_ERR_CIRCUIT_OPEN');
    const st = (await api(base, 'GET', '/status', ADMIN)).json as { protection: { upstreams: { breaker: { state: string; forced: string | null } }[] } };
    assert.deepEqual({ state: st.protection.upstreams[0]!.breaker.state, forced: st.protection.upstreams[0]!.breaker.forced }, { state: 'open', forced: 'open' });
    // A breaker override on an upstream without a breaker is refused with the reason.
    const none = await api(base, 'POST', '/v1/overrides', ADMIN, { kind: 'breaker', target: 'nope', value: 'open' });
    assert.equal(none.status, 422);
    const auto = await api(base, 'PUT', '/v1/upstreams/app/breaker', ADMIN, { state: 'auto' });
    assert.equal(auto.status, 200, JSON.stringify(auto.json));
    const closed = await spread(gw.url, 30, { up });
    assert.equal(closed.up, 30, JSON.stringify(closed));
  } finally {
    await gw.stop();
    await up.close();
  }
});

test('overrides persist to state.file (tmp + rename) and are re-applied after a restart; a reload keeps what still fits and drops what it changed', async () => {
  const a = await startUpstream();
  const b = await startUpstream();
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-state-'));
  const stateFile = join(dir, 'state.json');
  const cfg = baseConfig([a.address, b.address], {
    admin: { host: '127.0.0.1', port: 0, token: ADMIN },
    state: { file: stateFile },
    flags: { maint: { value: false } },
    routes: [{ name: 'main', match: { path: '/' }, upstream: 'app', maintenance: { flag: 'maint', status: 503, body: 'back soon\n' } }],
  });
  let gw = await startGateway(cfg);
  try {
    assert.equal((await api(gw.adminUrl, 'PUT', `/v1/upstreams/app/endpoints/${b.address}`, ADMIN, { weight: 5 })).status, 201);
    assert.equal((await api(gw.adminUrl, 'PUT', '/v1/flags/maint', ADMIN, { value: true, reason: 'db migration' })).status, 201);
    const saved = JSON.parse(readFileSync(stateFile, 'utf8')) as { overrides: OverrideJson[] };
    assert.deepEqual(saved.overrides.map((o) => o.kind).sort(), ['endpoint', 'flag']);
    const r = await fetch(gw.url + '/x');
    assert.equal(r.status, 503);
    assert.equal(await r.text(), 'back soon\n');
    await gw.stop();

    gw = await startGateway(cfg);
    const listed = (await api(gw.adminUrl, 'GET', '/v1/overrides', ADMIN)).json.overrides as OverrideJson[];
    assert.deepEqual(listed.map((o) => o.kind).sort(), ['endpoint', 'flag']);
    assert.ok(gw.logs.some((l) => l.event === 'overrides-restored' && l.restored === 2));
    const m = await spread(gw.url, 40, { a, b });
    assert.equal(m.non2xx, 40, `maintenance answered after the restart: ${JSON.stringify(m)}`);
    const st = (await api(gw.adminUrl, 'GET', '/status', ADMIN)).json as { balancing: { endpoints: { address: string; weight: number }[] }[] };
    assert.equal(st.balancing[0]!.endpoints.find((e) => e.address === b.address)!.weight, 5);

    // Reload: the flag's configured value changes (conflict: dropped), the endpoint override is kept.
    writeFileSync(gw.configPath, stringify({ ...cfg, flags: { maint: { value: '0%' }, other: {} } }));
    assert.equal((await api(gw.adminUrl, 'POST', '/reload', ADMIN)).status, 200);
    // "false" and "0%" are the same value: kept. Now change it for real.
    let s2 = (await api(gw.adminUrl, 'GET', '/status', ADMIN)).json as { overrides: { active: OverrideJson[]; dropped: { why: string; override: OverrideJson }[]; lastReload: { kept: number; dropped: number } } };
    assert.deepEqual(s2.overrides.lastReload, { generation: 2, kept: 2, dropped: 0 });
    const kept = await spread(gw.url, 20, { a, b });
    assert.equal(kept.non2xx, 20, `the kept flag override is re-applied after the reload wrote configured values: ${JSON.stringify(kept)}`);
    writeFileSync(gw.configPath, stringify({ ...cfg, flags: { maint: { value: '10%' } } }));
    assert.equal((await api(gw.adminUrl, 'POST', '/reload', ADMIN)).status, 200);
    s2 = (await api(gw.adminUrl, 'GET', '/status', ADMIN)).json as typeof s2;
    assert.deepEqual(s2.overrides.lastReload, { generation: 3, kept: 1, dropped: 1 });
    assert.equal(s2.overrides.active[0]!.kind, 'endpoint');
    assert.match(s2.overrides.dropped[0]!.why, /configured value of flag "maint" changed/);
    assert.ok(gw.logs.some((l) => l.event === 'override-dropped' && l.kind === 'flag'));
    const st2 = (await api(gw.adminUrl, 'GET', '/status', ADMIN)).json as { balancing: { endpoints: { address: string; weight: number }[] }[] };
    assert.equal(st2.balancing[0]!.endpoints.find((e) => e.address === b.address)!.weight, 5, 'the kept override is re-applied after the reload wrote configured weights');
    const saved2 = JSON.parse(readFileSync(stateFile, 'utf8')) as { overrides: OverrideJson[] };
    assert.deepEqual(saved2.overrides.map((o) => o.kind), ['endpoint']);
  } finally {
    await gw.stop();
    await a.close();
    await b.close();
  }
});
