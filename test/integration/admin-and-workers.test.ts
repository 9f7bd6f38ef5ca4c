// Admin API, worker supervision (crash → restart with backoff) and config reload
// (bad config rejected with every error, running config kept).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { request } from 'undici';
import { stringify } from 'yaml';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';

const TOKEN = 'test-token-0123456789abcdef';

// The deadline is generous because a loaded 2-core CI host can take seconds to start a
// worker or swap a generation; a condition that holds ends the wait at once.
async function waitFor(check: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('admin: probes are open, everything else needs the token', async () => {
  const up = await startUpstream();
  const gw = await startGateway(baseConfig([up.address], { admin: { host: '127.0.0.1', port: 0, token: TOKEN } }));
  try {
    assert.equal((await request(`${gw.adminUrl}/healthz`)).statusCode, 200);
    assert.equal((await request(`${gw.adminUrl}/readyz`)).statusCode, 200);
    const denied = await request(`${gw.adminUrl}/status`);
    assert.equal(denied.statusCode, 401);
    assert.equal(((await denied.body.json()) as { error: { code: string } }).error.code, 'TG_ERR_ADMIN_UNAUTHORIZED');
    const wrong = await request(`${gw.adminUrl}/status`, { headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.statusCode, 401);
    await wrong.body.dump();
    const ok = await request(`${gw.adminUrl}/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(ok.statusCode, 200);
    const s = (await ok.body.json()) as { workers: { phase: string }[]; routes: unknown[]; upstreams: { endpoints: string[] }[]; generation: number; uptimeSeconds: number };
    assert.equal(s.workers.length, 2);
    assert.ok(s.workers.every((w) => w.phase === 'listening'));
    assert.equal(s.routes.length, 1);
    assert.deepEqual(s.upstreams[0]!.endpoints, [up.address]);
    assert.equal(s.generation, 1);
    assert.equal((await request(`${gw.adminUrl}/nope`, { headers: { authorization: `Bearer ${TOKEN}` } })).statusCode, 404);
  } finally {
    await gw.stop();
    await up.close();
  }
});

test('a crashed worker is restarted; the process and the other worker keep serving', async () => {
  const up = await startUpstream();
  const gw = await startGateway(baseConfig([up.address]), { env: { TIDEGATE_ENABLE_TEST_HOOKS: '1' } });
  try {
    const r = await request(`${gw.adminUrl}/debug/crash-worker?slot=0`, { method: 'POST' });
    assert.equal(r.statusCode, 202);
    await r.body.dump();
    await waitFor(() => gw.logs.some((l) => l.event === 'worker-restart'), 'a worker-restart line');
    await waitFor(async () => {
      const s = (await (await request(`${gw.adminUrl}/status`)).body.json()) as { workers: { slot: number; restarts: number; phase: string }[] };
      return s.workers[0]!.restarts === 1 && s.workers[0]!.phase === 'listening';
    }, 'the restarted worker listening');
    const crash = gw.logs.find((l) => l.event === 'worker-crashed')!;
    assert.match(String(crash.error), /crash requested/);
    const restart = gw.logs.find((l) => l.event === 'worker-restart')!;
    assert.equal(restart.reason, 'worker thread exited unexpectedly');
    assert.equal(typeof restart.restartInMs, 'number');
    for (let i = 0; i < 10; i++) {
      const x = await request(`${gw.url}/after-crash`);
      assert.equal(x.statusCode, 200);
      await x.body.dump();
    }
    assert.equal(gw.proc.exitCode, null, 'the process is still running');
  } finally {
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});

test('reload: a bad config is rejected with every error and the running config stays; a good one applies', async () => {
  const up = await startUpstream();
  const cfg = baseConfig([up.address]);
  const gw = await startGateway(cfg);
  try {
    writeFileSync(gw.configPath, stringify({ ...cfg, routes: [{ upstream: 'missing' }], limits: { maxBodyBytes: 'lots' } }));
    gw.proc.kill('SIGHUP');
    await waitFor(() => gw.logs.some((l) => l.event === 'config-rejected'), 'a config-rejected line');
    const rejected = gw.logs.find((l) => l.event === 'config-rejected') as { issues: string[] };
    assert.ok(rejected.issues.some((i) => i.startsWith('routes[0].upstream')));
    assert.ok(rejected.issues.some((i) => i.startsWith('limits.maxBodyBytes')));
    const still = await request(`${gw.url}/x`);
    assert.equal(still.statusCode, 200, 'the running config still serves');
    await still.body.dump();
    const viaApi = await request(`${gw.adminUrl}/reload`, { method: 'POST' });
    assert.equal(viaApi.statusCode, 400);
    const body = (await viaApi.body.json()) as { error: { issues: string[] } };
    assert.equal(body.error.issues.length, 2);

    const up2 = await startUpstream();
    writeFileSync(
      gw.configPath,
      stringify({ ...cfg, upstreams: { ...(cfg.upstreams as object), two: { discovery: { type: 'static', endpoints: [up2.address] } } }, routes: [{ match: { path: '/two' }, upstream: 'two' }, ...(cfg.routes as object[])] }),
    );
    const applied = await request(`${gw.adminUrl}/reload`, { method: 'POST' });
    assert.equal(applied.statusCode, 200);
    assert.equal(((await applied.body.json()) as { generation: number }).generation, 2);
    await waitFor(async () => {
      const r = await request(`${gw.url}/two/x`);
      await r.body.dump();
      return up2.requests.length > 0;
    }, 'a request on /two reaching the new upstream');
    await up2.close();
  } finally {
    await gw.stop();
    await up.close();
  }
});
