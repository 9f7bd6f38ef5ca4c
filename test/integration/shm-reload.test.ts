// Reloads against the fixed-size shared tables: a config that needs more room is
// refused whole (TG_ERR_SHM_CAPACITY) and the running one keeps serving; a new rate
// reaches the workers through the policy row.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { request } from 'undici';
import { stringify } from 'yaml';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';

test('reload: more upstreams than capacity is refused with TG_ERR_SHM_CAPACITY; a new rate applies at once', async () => {
  const up = await startUpstream();
  const route = (rate: string, burst: number) => [{ name: 'api', match: { path: '/' }, upstream: 'app', policies: [{ 'rate-limit': { key: 'route', rate, burst } }] }];
  const cfg = baseConfig([up.address], { capacity: { upstreams: 1 }, routes: route('1/m', 1) });
  const gw = await startGateway(cfg);
  const get = async (): Promise<number> => {
    const r = await request(`${gw.url}/x`);
    await r.body.dump();
    return r.statusCode;
  };
  try {
    assert.equal(await get(), 200);
    assert.equal(await get(), 429);

    writeFileSync(gw.configPath, stringify({ ...cfg, upstreams: { ...(cfg.upstreams as object), two: { discovery: { type: 'static', endpoints: [up.address] } } } }));
    const refused = await request(`${gw.adminUrl}/reload`, { method: 'POST' });
    assert.equal(refused.statusCode, 400);
    const body = (await refused.body.json()) as { error: { code: string; issues: string[] } };
    assert.equal(body.error.code, 'TG_ERR_SHM_CAPACITY');
    assert.match(body.error.issues[0]!, /capacity\.upstreams: the config has 2 upstreams but shared memory was sized for 1/);
    assert.equal(await get(), 429, 'the running config (and its limit) stays');

    writeFileSync(gw.configPath, stringify({ ...cfg, routes: route('1000/s', 100) }));
    const applied = await request(`${gw.adminUrl}/reload`, { method: 'POST' });
    assert.equal(applied.statusCode, 200);
    await applied.body.dump();
    // The rate lives in shared memory: the old generation's workers see it too. The
    // exhausted key is restated as "burst used up" under the new policy, so it is full
    // again after one burst window (100 / 1000/s = 100 ms).
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 20; i++) assert.equal(await get(), 200);
    const s = (await (await request(`${gw.adminUrl}/status`)).body.json()) as { rateLimits: { route: string; ratePerSecond: number; burst: number }[] };
    assert.deepEqual(s.rateLimits.map((p) => [p.route, p.ratePerSecond, p.burst]), [['api', 1000, 100]]);
  } finally {
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});
