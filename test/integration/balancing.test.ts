// Balancers through the real gateway: two workers share one endpoint table, so a
// consistent-hash key lands on the same endpoint whichever worker serves it, and
// /status shows what the table holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool, request } from 'undici';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { assertEveryWorkerServed } from '../helpers/workers.js';

interface Status {
  balancing: { name: string; balancer: string; panic: boolean; healthy: number; endpoints: { address: string; stateName: string; inFlight: number; requests: number; weight: number; ewmaUs: number }[] }[];
}

test('consistent-hash on a header: every key sticks to one endpoint across both workers', async () => {
  const ups: TestUpstream[] = [];
  for (let i = 0; i < 3; i++) {
    const port = i;
    ups.push(await startUpstream((_req, res) => res.end(String(port))));
  }
  const cfg = baseConfig(ups.map((u) => u.address), { workers: 2 }) as { upstreams: { app: Record<string, unknown> } };
  cfg.upstreams.app.balancer = 'consistent-hash';
  cfg.upstreams.app.hash = { on: 'header', name: 'x-user' };
  const gw2 = await startGateway(cfg);
  // 18 connections × 20 requests: enough connections that both workers get some.
  const pool = new Pool(gw2.url, { connections: 18 });
  try {
    const seen = new Map<string, Set<string>>();
    await Promise.all(
      Array.from({ length: 18 }, async (_, c) => {
        for (let i = 0; i < 20; i++) {
          const user = `u${(i * 7 + c) % 30}`;
          const r = await pool.request({ path: '/', method: 'GET', headers: { 'x-user': user } });
          assert.equal(r.statusCode, 200);
          const who = await r.body.text();
          if (!seen.has(user)) seen.set(user, new Set());
          seen.get(user)!.add(who);
        }
      }),
    );
    for (const [user, eps] of seen) assert.equal(eps.size, 1, `${user} went to ${[...eps].join(', ')}`);
    const used = new Set([...seen.values()].map((s) => [...s][0]));
    assert.ok(used.size >= 2, 'keys spread over more than one endpoint');
    await assertEveryWorkerServed(gw2.adminUrl, 2);

    const s = (await (await request(`${gw2.adminUrl}/status`)).body.json()) as Status;
    const app = s.balancing.find((b) => b.name === 'app')!;
    assert.equal(app.balancer, 'consistent-hash');
    assert.equal(app.healthy, 3);
    assert.equal(app.panic, false);
    assert.deepEqual(app.endpoints.map((e) => e.address).sort(), ups.map((u) => u.address).sort());
    assert.equal(app.endpoints.reduce((n, e) => n + e.requests, 0), 360);
    for (const e of app.endpoints) {
      assert.equal(e.stateName, 'healthy');
      assert.equal(e.inFlight, 0);
    }
  } finally {
    await pool.close();
    assert.equal(await gw2.stop(), 0, gw2.exitReport());
    for (const u of ups) await u.close();
  }
});

test('a config needing more endpoint rows than capacity refuses to start with TG_ERR_SHM_CAPACITY', async () => {
  const up = await startUpstream();
  const cfg = baseConfig([up.address, '127.0.0.1:1', '127.0.0.1:2'], { capacity: { endpointsPerUpstream: 2 } });
  await assert.rejects(startGateway(cfg), (err: Error) => /TG_ERR_SHM_CAPACITY/.test(err.message) && /capacity\.endpointsPerUpstream.*"app" has 3 endpoints.*sized for 2/.test(err.message));
  await up.close();
});

test('weighted-round-robin with static { address, weight } endpoints splits 3:1 across both workers', async () => {
  const a = await startUpstream();
  const b = await startUpstream();
  const cfg = baseConfig([], { workers: 2 }) as { upstreams: { app: Record<string, unknown> } };
  cfg.upstreams.app.balancer = 'weighted-round-robin';
  cfg.upstreams.app.discovery = { type: 'static', endpoints: [{ address: a.address, weight: 3 }, b.address] };
  const gw = await startGateway(cfg);
  const pool = new Pool(gw.url, { connections: 16 });
  try {
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = 0; i < 10; i++) await (await pool.request({ path: '/', method: 'GET' })).body.text();
      }),
    );
    assert.equal(a.requests.length + b.requests.length, 160);
    // Each worker interleaves 3:1 exactly; two workers add at most one partial cycle each.
    assert.ok(Math.abs(a.requests.length - 120) <= 4, `a got ${a.requests.length}, b ${b.requests.length}`);
    await assertEveryWorkerServed(gw.adminUrl, 2);
    const s = (await (await request(`${gw.adminUrl}/status`)).body.json()) as Status;
    const app = s.balancing.find((x) => x.name === 'app')!;
    assert.equal(app.balancer, 'weighted-round-robin');
    assert.deepEqual(app.endpoints.map((e) => e.weight), [3, 1]);
  } finally {
    await pool.close();
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await a.close();
    await b.close();
  }
});
