// Tenant tiers through the real gateway (two workers): the noisy neighbour — one
// tenant floods, another stays inside its own tier's quota and is never refused, a
// third tenant of the flooding tier has its own bucket — and a tier's priority moving
// a tenant's share of an upstream's concurrency limit up or down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool } from 'undici';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { assertEveryWorkerServed, workerRequests } from '../helpers/workers.js';
import { until } from '../helpers/poll.js';

const CONNECTIONS = 16;
const TENANTS = {
  header: 'x-tenant',
  tiers: { gold: { rate: '40/s', burst: 5, priority: 'high' }, bronze: { rate: '10/s', burst: 5, priority: 'low' } },
  assign: { acme: 'gold', globex: 'bronze', initech: 'bronze' },
  default: 'bronze',
};

test('tenant tiers: a flooding tenant never consumes another tenant’s quota; each gets its tier’s rate and RateLimit-Policy', async () => {
  const up = await startUpstream();
  const gw = await startGateway(
    baseConfig([up.address], {
      workers: 2,
      tenants: TENANTS,
      routes: [{ name: 'api', match: { path: '/' }, upstream: 'app', policies: [{ 'rate-limit': { name: 'tiered', key: 'tenant', rate: 'tier' } }] }],
    }),
  );
  const flood = new Pool(gw.url, { connections: CONNECTIONS, pipelining: 1 });
  const calm = new Pool(gw.url, { connections: 4, pipelining: 1 });
  try {
    const before = await workerRequests(gw.adminUrl);
    const WINDOW_MS = 2000;
    const endAt = performance.now() + WINDOW_MS;
    let globexOk = 0;
    let globexLimited = 0;
    let first = 0;
    let last = 0;
    let globexPolicy = '';
    const floodLoop = async (): Promise<void> => {
      while (performance.now() < endAt) {
        const t = performance.now();
        if (first === 0) first = t;
        const r = await flood.request({ path: '/f', method: 'GET', headers: { 'x-tenant': 'globex' } });
        await r.body.text();
        last = Math.max(last, t);
        if (r.statusCode === 200) globexOk++;
        else if (r.statusCode === 429) globexLimited++;
        else assert.fail(`unexpected status ${r.statusCode}`);
        globexPolicy = String(r.headers['ratelimit-policy']);
      }
    };
    // acme asks for 20/s, half its tier's 40/s: none may be refused, however hard globex floods.
    const acme: number[] = [];
    let acmePolicy = '';
    const calmLoop = async (): Promise<void> => {
      while (performance.now() < endAt) {
        const r = await calm.request({ path: '/c', method: 'GET', headers: { 'x-tenant': 'acme' } });
        await r.body.text();
        acme.push(r.statusCode);
        acmePolicy = String(r.headers['ratelimit-policy']);
        await new Promise((res) => setTimeout(res, 50));
      }
    };
    await Promise.all([...Array.from({ length: CONNECTIONS }, floodLoop), calmLoop()]);
    const seconds = (last - first) / 1000;
    const expected = 5 + 10 * seconds;
    console.log(`globex (bronze 10/s): ${globexOk} admitted, ${globexLimited} limited over ${seconds.toFixed(2)} s (expected ${expected.toFixed(1)}); acme (gold 40/s): ${acme.length} requests, statuses ${[...new Set(acme)].join(',')}`);
    assert.ok(Math.abs(globexOk - expected) <= Math.max(2, expected * 0.05), `globex admitted ${globexOk}, expected ${expected.toFixed(1)}`);
    assert.ok(globexLimited > 0, 'the flood was refused');
    assert.ok(acme.length >= 3, `acme sent ${acme.length}`);
    assert.deepEqual([...new Set(acme)], [200], 'the calm tenant was never refused');
    assert.equal(acmePolicy, '"tiered";q=40;w=1');
    assert.equal(globexPolicy, '"tiered";q=10;w=1');
    await assertEveryWorkerServed(gw.adminUrl, 2, before);
    // Another tenant of the same tier has its own bucket: its burst is whole.
    const initech = await Promise.all(Array.from({ length: 5 }, async () => (await flood.request({ path: '/i', method: 'GET', headers: { 'x-tenant': 'initech' } })).statusCode));
    assert.deepEqual(initech, [200, 200, 200, 200, 200]);
    // An unassigned tenant gets the default tier.
    const other = await flood.request({ path: '/o', method: 'GET', headers: { 'x-tenant': 'nobody' } });
    await other.body.text();
    assert.equal(other.headers['ratelimit-policy'], '"tiered";q=10;w=1');
  } finally {
    await flood.close();
    await calm.close();
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});

test('tenant tiers: a tier’s priority replaces the route’s at the concurrency limit (gold high fills 10 of 10, bronze low 5, the route normal would 8)', async () => {
  // Every request is held until released, so in-flight counts are exact.
  const held: (() => void)[] = [];
  const up = await startUpstream((_req, res) => held.push(() => res.end('ok')));
  const cfg = baseConfig([up.address], {
    workers: 2,
    tenants: TENANTS,
    routes: [{ name: 'api', match: { path: '/' }, upstream: 'app', priority: 'normal' }],
  });
  Object.assign((cfg.upstreams as { app: Record<string, unknown> }).app, { retries: 0, concurrency: { limit: 10, shares: { high: '90%', normal: '80%', low: '50%' } } });
  const gw = await startGateway(cfg);
  const pool = new Pool(gw.url, { connections: 24, pipelining: 1 });
  const wave = async (tenant: string, n: number): Promise<number[]> => {
    let refused = 0;
    const pending = Array.from({ length: n }, async () => {
      const r = await pool.request({ path: '/w', method: 'GET', headers: tenant === '' ? {} : { 'x-tenant': tenant } });
      if (r.statusCode !== 200) refused++;
      await r.body.text();
      return r.statusCode;
    });
    // Refusals answer at once; the admitted wait at the upstream until released.
    await until(`${tenant}: every request held at the upstream or refused`, () => held.length + refused, (v) => v >= n, 5000);
    while (held.length > 0) held.shift()!();
    return Promise.all(pending);
  };
  try {
    const gold = await wave('acme', 12);
    assert.equal(gold.filter((s) => s === 200).length, 10, `gold (high, the top priority) admitted: ${gold.join(',')}`);
    assert.equal(gold.filter((s) => s === 503).length, 2);
    const plain = await wave('', 12);
    assert.equal(plain.filter((s) => s === 200).length, 5, `no tenant: the default tier (bronze, low): ${plain.join(',')}`);
    const bronze = await wave('globex', 12);
    assert.equal(bronze.filter((s) => s === 200).length, 5, `bronze (low) admitted: ${bronze.join(',')}`);
    assert.equal(bronze.filter((s) => s === 503).length, 7);
  } finally {
    while (held.length > 0) held.shift()!();
    await pool.close();
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});
