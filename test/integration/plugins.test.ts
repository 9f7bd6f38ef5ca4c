// JS plugins through the real gateway with two workers: the two example plugins
// (access decisions, header edits both ways, response and log phases, counters in
// shared dictionaries read through the admin API), a plugin that throws in each phase
// (contained: 500 TG_ERR_PLUGIN, counted, rate-limited log, no worker lost), a reload
// that swaps a plugin's code under traffic, and `tidegate --check` reporting plugin
// load and schema errors with their paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool, request } from 'undici';
import { baseConfig, CLI, startGateway, writeConfig } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { assertEveryWorkerServed, workerRequests } from '../helpers/workers.js';
import { until } from '../helpers/poll.js';

const EXAMPLES = fileURLToPath(new URL('../../../examples/plugins/', import.meta.url));
const CONNECTIONS = 16;

/** A plugin that throws in the phase named by the request's x-boom header; VERSION marks the code generation. */
function flakySource(version: string): string {
  return `const VERSION = ${JSON.stringify(version)};
export default {
  name: 'flaky',
  create() {
    return {
      access(ctx) {
        if (ctx.header('x-boom') === 'access') throw new Error('boom in access');
        ctx.responseHeaders.set('x-flaky-version', VERSION);
      },
      response(ctx) {
        if (ctx.header('x-boom') === 'response') throw new Error('boom in response');
      },
      log(ctx) {
        if (ctx.header('x-boom') === 'log') throw new Error('boom in log');
      },
    };
  },
};
`;
}

async function shared(adminUrl: string, dict: string, key: string): Promise<{ status: number; value?: unknown }> {
  const r = await request(`${adminUrl}/v1/shared/${dict}?key=${encodeURIComponent(key)}`);
  const body = (await r.body.json()) as { value?: unknown };
  return { status: r.statusCode, value: body.value };
}

async function metric(adminUrl: string, name: string): Promise<number> {
  const r = await request(`${adminUrl}/metrics`);
  const text = await r.body.text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

test('plugins: example plugins, shared counters across workers, contained failures, reload swap', { timeout: 120_000 }, async () => {
  const up = await startUpstream((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.setHeader('x-powered-by', 'upstream-framework');
    res.end(JSON.stringify({ url: req.url, tenant: req.headers['x-tenant-id'] ?? null }));
  });
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-plugins-'));
  const flaky = join(dir, 'flaky.mjs');
  writeFileSync(flaky, flakySource('v1'));
  const gw = await startGateway(
    baseConfig([up.address], {
      workers: 2,
      shared: { tenants: { size: '64kb' }, responses: { size: '64kb' } },
      plugins: [join(EXAMPLES, 'tenant-header.mjs'), join(EXAMPLES, 'response-stamp.mjs'), flaky],
      routes: [
        { name: 'tenant', match: { path: '/t' }, upstream: 'app', policies: [{ plugin: { name: 'tenant-header', config: { header: 'x-tenant', dict: 'tenants', allow: ['acme', 'globex'] } } }] },
        { name: 'stamp', match: { path: '/s' }, upstream: 'app', policies: [{ plugin: { name: 'response-stamp', config: { strip: ['x-powered-by'], stamp: 'edge-1', dict: 'responses' } } }] },
        { name: 'flaky', match: { path: '/f' }, upstream: 'app', policies: [{ plugin: { name: 'flaky' } }] },
        { name: 'plain', match: { path: '/' }, upstream: 'app' },
      ],
    }),
  );
  const pool = new Pool(gw.url, { connections: CONNECTIONS, pipelining: 1 });
  try {
    const get = async (path: string, headers: Record<string, string> = {}) => {
      const r = await pool.request({ path, method: 'GET', headers });
      return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
    };

    // Access phase: refusals answered by the plugin itself, the upstream never asked.
    const seen = up.requests.length;
    const missing = await get('/t/x');
    assert.equal(missing.status, 400);
    assert.equal(missing.body, 'missing x-tenant header\n');
    assert.match(String(missing.headers['content-type']), /^text\/plain/);
    const denied = await get('/t/x', { 'x-tenant': 'evil' });
    assert.equal(denied.status, 403);
    assert.deepEqual(JSON.parse(denied.body), { error: 'tenant not allowed', tenant: 'evil' });
    assert.equal(up.requests.length, seen, 'refused requests never reached the upstream');

    // Admitted: header forwarded and echoed; the per-tenant count holds across both workers.
    const before = await workerRequests(gw.adminUrl);
    const N = 200;
    const results = await Promise.all(Array.from({ length: N }, () => get('/t/x', { 'x-tenant': 'acme' })));
    for (const r of results) {
      assert.equal(r.status, 200, r.body);
      assert.equal(JSON.parse(r.body).tenant, 'acme', 'the upstream got X-Tenant-Id');
      assert.equal(r.headers['x-tenant-id'], 'acme');
    }
    await assertEveryWorkerServed(gw.adminUrl, 2, before);
    assert.deepEqual(await shared(gw.adminUrl, 'tenants', 'acme'), { status: 200, value: N });
    assert.equal((await shared(gw.adminUrl, 'tenants', 'evil')).status, 404, 'refused tenants are not counted');

    // Response phase edits the upstream's headers; the log phase counts by status class.
    const M = 60;
    for (const r of await Promise.all(Array.from({ length: M }, () => get('/s/y')))) {
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-powered-by'], undefined, 'stripped');
      assert.equal(r.headers['x-stamp'], 'edge-1; upstream-status=200');
    }
    await until('log-phase counts', () => shared(gw.adminUrl, 'responses', '2xx'), (v) => v.value === M);
    assert.equal((await get('/plain')).headers['x-powered-by'], 'upstream-framework', 'a route without the plugin is untouched');

    // Failures are contained: 500 TG_ERR_PLUGIN in access and response, nothing in log.
    const workersBefore = ((await (await request(`${gw.adminUrl}/status`)).body.json()) as { workers: { workerId: number }[] }).workers.map((w) => w.workerId).sort();
    const BOOMS = 20;
    for (const r of await Promise.all(Array.from({ length: BOOMS }, () => get('/f', { 'x-boom': 'access' })))) {
      assert.equal(r.status, 500);
      assert.equal(JSON.parse(r.body).error.code, 'TG_ERR_PLUGIN');
    }
    const resp = await get('/f', { 'x-boom': 'response' });
    assert.equal(resp.status, 500);
    assert.equal(JSON.parse(resp.body).error.code, 'TG_ERR_PLUGIN');
    assert.equal((await get('/f', { 'x-boom': 'log' })).status, 200, 'a log-phase failure changes nothing for the client');
    const fine = await get('/f');
    assert.equal(fine.status, 200);
    assert.equal(fine.headers['x-flaky-version'], 'v1');
    await until('plugin errors counted', () => metric(gw.adminUrl, 'tidegate_plugin_errors_total'), (n) => n === BOOMS + 2);
    const events = await until('plugin-error events', () => gw.logs.filter((l) => l.event === 'plugin-error' && l.plugin === 'flaky'), (l) => l.some((e) => e.phase === 'access'));
    assert.match(String(events[0]!.error), /boom in/);
    assert.match(String(events[0]!.at), /flaky\.mjs/, 'the log names the throwing line');
    // 22 failures within seconds: at most one line per plugin per worker (the first), the rest suppressed.
    assert.ok(events.length <= 2, `rate-limited: ${events.length} plugin-error lines for ${BOOMS + 2} failures`);
    const workersAfter = ((await (await request(`${gw.adminUrl}/status`)).body.json()) as { workers: { workerId: number }[] }).workers.map((w) => w.workerId).sort();
    assert.deepEqual(workersAfter, workersBefore, 'no worker was lost or restarted');

    // Reload with new plugin code while requests run: every request answered, then only v2.
    writeFileSync(flaky, flakySource('v2'));
    let running = true;
    const statuses = new Map<number, number>();
    const load = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (running) {
          const r = await get('/f');
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        }
      }),
    );
    const reload = await request(`${gw.adminUrl}/reload`, { method: 'POST' });
    assert.equal(reload.statusCode, 200, await reload.body.text());
    await until('every worker runs v2', async () => (await Promise.all(Array.from({ length: 24 }, () => get('/f')))).every((r) => r.headers['x-flaky-version'] === 'v2'), (ok) => ok, 10_000);
    running = false;
    await load;
    assert.deepEqual([...statuses.keys()], [200], `only 200s during the reload: ${JSON.stringify([...statuses])}`);
  } finally {
    await pool.close();
    await gw.stop();
    await up.close();
  }
});

test('plugins: tidegate --check reports load errors and plugin schema errors with their paths', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-plugins-'));
  const noExport = join(dir, 'no-export.mjs');
  writeFileSync(noExport, 'export const nothing = 1;\n');
  const cfg = baseConfig(['127.0.0.1:9'], {
    plugins: [join(dir, 'missing.mjs'), join(EXAMPLES, 'tenant-header.mjs'), noExport],
    shared: { tenants: { size: '16kb' } },
    routes: [
      { match: { path: '/a' }, upstream: 'app', policies: [{ plugin: { name: 'tenant-header', config: { header: 'Not A Header', extra: 1 } } }] },
      { match: { path: '/b' }, upstream: 'app', policies: [{ plugin: { name: 'tenant-headr' } }] },
      { match: { path: '/c' }, upstream: 'app', policies: [{ plugin: { name: 'tenant-header', config: { dict: 'nope' } } }] },
    ],
  });
  const r = spawnSync(process.execPath, [CLI, '--check', writeConfig(cfg)], { encoding: 'utf8', timeout: 20_000 });
  assert.notEqual(r.status, 0, 'rejected');
  const out = r.stderr + r.stdout;
  assert.match(out, /plugins\[0\]: cannot load plugin .*missing\.mjs/);
  assert.match(out, /plugins\[2\]: cannot load plugin .*exports no plugin/);
  assert.match(out, /routes\[0\]\.policies\[0\]\.plugin\.config\.header: expected a lower-case header name/);
  assert.match(out, /routes\[0\]\.policies\[0\]\.plugin\.config\.extra: unknown key/);
  assert.match(out, /routes\[1\]\.policies\[0\]\.plugin\.name: unknown plugin "tenant-headr"/);
  assert.match(out, /routes\[2\]\.policies\[0\]\.plugin: plugin tenant-header: create failed: no shared dict "nope"/);

  const good = baseConfig(['127.0.0.1:9'], {
    plugins: [join(EXAMPLES, 'tenant-header.mjs')],
    routes: [{ match: { path: '/' }, upstream: 'app', policies: [{ plugin: { name: 'tenant-header' } }] }],
  });
  const ok = spawnSync(process.execPath, [CLI, '--check', writeConfig(good)], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(ok.status, 0, ok.stderr);
});
