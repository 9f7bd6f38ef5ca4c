// Cache purge as an event action, through the real gateway (2 workers, a real
// upstream): an Alertmanager webhook (version 4, the documented payload shape) firing
// purges the entries its rule names from the store every worker reads; a re-sent firing does not purge
// again; a resolved one does nothing. A purge rule without a caching route, or naming
// two things, is a config error with its path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool } from 'undici';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { alertmanagerPayload, api, assertBothServed, perWorker } from '../helpers/admin-api.js';

const ADMIN = 'all-scopes-admin-token-0001';

function alertmanager(status: 'firing' | 'resolved'): unknown {
  return alertmanagerPayload(status, { alertname: 'CatalogChanged', labels: { service: 'catalog', product: '7' }, summary: 'product 7 was edited', fingerprint: '5e1f0c7a9b3d2e84', startsAt: '2026-12-01T10:00:00.000Z', endsAt: '2026-12-01T10:05:00.000Z' });
}

interface Outcome {
  applied: { rule: string }[];
  duplicates: string[];
  purged: { rule: string; purge: Record<string, string>; removed: number }[];
  errors: string[];
}

test('events: a firing alert purges the cache entries of its tag from the shared store; a re-send does not purge again; resolved does nothing', async () => {
  const hits = new Map<string, number>();
  const up = await startUpstream((req, res) => {
    const path = req.url!;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const tag = path.startsWith('/product/7/') ? 'product-7' : 'product-8';
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=3600', 'cache-tag': `${tag},catalog` });
    res.end(`${path} #${hits.get(path)}`);
  });
  const gw = await startGateway(
    baseConfig([up.address], {
      admin: { host: '127.0.0.1', port: 0, token: ADMIN },
      cache: { size: '8mb' },
      routes: [{ name: 'catalog', match: { path: '/' }, upstream: 'app', cache: {} }],
      // No `status` in `on`: the rule also matches the resolved alert, which must not purge.
      events: [{ name: 'catalog-changed', on: { alertname: 'CatalogChanged' }, do: [{ purge: { tag: 'product-7' } }] }],
    }),
  );
  const pool = new Pool(gw.url, { connections: 16 });
  const paths = ['/product/7/a', '/product/7/b', '/product/8/a'];
  /** every path 20 times over 16 connections (so through both workers) */
  const readAll = async (): Promise<void> => {
    await Promise.all(
      Array.from({ length: paths.length * 20 }, async (_, i) => {
        const r = await pool.request({ path: paths[i % paths.length]!, method: 'GET' });
        assert.equal(r.statusCode, 200);
        await r.body.text();
      }),
    );
  };
  const upstream = (): number[] => paths.map((p) => hits.get(p) ?? 0);
  try {
    const base = gw.adminUrl;
    // Fill one by one (so no coalescing question), then read from both workers: all hits.
    for (const p of paths) await (await pool.request({ path: p, method: 'GET' })).body.text();
    const before = await perWorker(base, ADMIN);
    await readAll();
    assertBothServed(before, await perWorker(base, ADMIN));
    assert.deepEqual(upstream(), [1, 1, 1], 'stored once, served from the shared cache by both workers');

    const fired = await api(base, 'POST', '/v1/events', ADMIN, alertmanager('firing'));
    assert.equal(fired.status, 200, JSON.stringify(fired.json));
    const out = (fired.json.events as Outcome[])[0]!;
    assert.deepEqual(out.applied.map((a) => a.rule), ['catalog-changed']);
    assert.deepEqual(out.purged, [{ rule: 'catalog-changed', purge: { tag: 'product-7' }, removed: 2 }]);
    assert.deepEqual(out.errors, []);
    assert.deepEqual((await api(base, 'GET', '/v1/overrides', ADMIN)).json.overrides, [], 'a purge is not an override');

    // Both product-7 entries went from the one shared store; product-8 stayed.
    for (const p of paths) await (await pool.request({ path: p, method: 'GET' })).body.text();
    assert.deepEqual(upstream(), [2, 2, 1]);
    const afterPurge = await perWorker(base, ADMIN);
    await readAll();
    assertBothServed(afterPurge, await perWorker(base, ADMIN));
    assert.deepEqual(upstream(), [2, 2, 1], 'refilled once, hits again on both workers');

    // Alertmanager re-sends the firing group (repeat_interval, retries): a duplicate, no second purge.
    const again = (await api(base, 'POST', '/v1/events', ADMIN, alertmanager('firing'))).json.events as Outcome[];
    assert.deepEqual([again[0]!.duplicates, again[0]!.purged], [['catalog-changed'], []]);
    await readAll();
    assert.deepEqual(upstream(), [2, 2, 1], 're-delivery purged nothing');

    // Resolved: nothing to undo for a purge, and nothing is purged.
    const resolved = (await api(base, 'POST', '/v1/events', ADMIN, alertmanager('resolved'))).json.events as Outcome[];
    assert.deepEqual(resolved[0]!.purged, []);
    await readAll();
    assert.deepEqual(upstream(), [2, 2, 1], 'resolved purged nothing');

    const decisions = gw.logs.filter((l) => l.event === 'cache-purged');
    assert.deepEqual(decisions.map((l) => [l.by, l.tag, l.purged]), [['event:catalog-changed', 'product-7', 2]]);
    const metrics = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
    assert.match(metrics, /tidegate_cache_removed_total\{reason="purge"\} 2\b/);
  } finally {
    await pool.close();
    await gw.stop();
    await up.close();
  }
});

test('events: a purge action needs a caching route and exactly one of key, prefix, tag (config errors with their paths)', async () => {
  const up = await startUpstream();
  try {
    await assert.rejects(startGateway(baseConfig([up.address], { events: [{ on: { alertname: 'X' }, do: [{ purge: { tag: 'a' } }] }] }), { timeoutMs: 8000 }), (e: Error) => /events\[0\]\.do\[0\]\.purge: no route has `cache`/.test(e.message));
    await assert.rejects(
      startGateway(baseConfig([up.address], { cache: { size: '8mb' }, routes: [{ match: { path: '/' }, upstream: 'app', cache: {} }], events: [{ on: { alertname: 'X' }, do: [{ purge: { tag: 'a', prefix: 'b' } }] }] }), { timeoutMs: 8000 }),
      (e: Error) => /events\[0\]\.do\[0\]\.purge: exactly one of key, prefix, tag/.test(e.message),
    );
  } finally {
    await up.close();
  }
});
