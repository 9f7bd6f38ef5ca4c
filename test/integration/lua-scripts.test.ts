// Lua scripts through the real gateway with two workers: the examples/lua scripts (the
// seed's global limit with per-user counting, per-endpoint counters, the limit set by a
// content route) with their counters consistent across workers and read through the
// admin API; header_filter and log phases; runaway and erroring scripts contained
// (500 TG_ERR_PLUGIN, logged with the line, no worker lost); a reload that swaps a
// script under traffic; and `tidegate --check` reporting script errors with paths.
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

const EXAMPLES = fileURLToPath(new URL('../../../examples/lua/', import.meta.url));
const CONNECTIONS = 16;

async function shared(adminUrl: string, dict: string, key: string): Promise<{ status: number; value?: unknown }> {
  const r = await request(`${adminUrl}/v1/shared/${dict}?key=${encodeURIComponent(key)}`);
  const body = (await r.body.json()) as { value?: unknown };
  return { status: r.statusCode, value: body.value };
}

async function metric(adminUrl: string, name: string): Promise<number> {
  const text = await (await request(`${adminUrl}/metrics`)).body.text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

async function workerIds(adminUrl: string): Promise<number[]> {
  const s = (await (await request(`${adminUrl}/status`)).body.json()) as { workers: { workerId: number }[] };
  return s.workers.map((w) => w.workerId).sort();
}

const versionScript = (v: string): string => `ngx.header["X-Script-Version"] = "${v}"\n`;

test('lua: the example scripts across two workers, phases, contained failures, reload swap', { timeout: 120_000 }, async () => {
  const up = await startUpstream((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.setHeader('x-powered-by', 'upstream-framework');
    res.end(JSON.stringify({ url: req.url, user: req.headers['x-user-id'] ?? null, marked: req.headers['x-lua-mark'] ?? null }));
  });
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-lua-'));
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const version = file('version.lua', versionScript('v1'));
  const spin = file('spin.lua', 'local n = 0\nwhile true do n = n + 1 end\n');
  const boom = file('boom.lua', '-- fails on its third line\nlocal t = {}\nerror("boom: " .. #t)\n');
  const filter = file('filter.lua', 'ngx.header["X-Powered-By"] = nil\nngx.header["X-Upstream-Status"] = ngx.status\n');
  const statusLog = file('status-log.lua', 'ngx.shared.statuses:incr(string.sub(ngx.var.status, 1, 1) .. "xx", 1, 0)\n');
  const mark = file('mark.lua', 'ngx.req.set_header("X-Lua-Mark", ngx.var.http_x_user_id or "anonymous")\n');
  const gw = await startGateway(
    baseConfig([up.address], {
      workers: 2,
      shared: { config: { size: '64kb' }, user_counts: { size: '64kb' }, endpoint_counters: { size: '64kb' }, statuses: { size: '64kb' } },
      routes: [
        { name: 'limits', match: { path: '/limits', pathType: 'exact' }, lua: { content: join(EXAMPLES, 'set-limit.lua') } },
        { name: 'limited', match: { path: '/limited' }, upstream: 'app', policies: [{ lua: { access: join(EXAMPLES, 'global-limit.lua') } }] },
        { name: 'counted', match: { path: '/api' }, upstream: 'app', policies: [{ lua: { access: join(EXAMPLES, 'endpoint-counters.lua'), header_filter: filter, log: statusLog } }, { lua: { access: mark } }] },
        { name: 'versioned', match: { path: '/v' }, upstream: 'app', policies: [{ lua: { access: version } }] },
        { name: 'spin', match: { path: '/spin' }, upstream: 'app', policies: [{ lua: { access: spin, maxInstructions: 200_000 } }] },
        { name: 'boom', match: { path: '/boom' }, upstream: 'app', policies: [{ lua: { access: boom } }] },
        { name: 'plain', match: { path: '/' }, upstream: 'app' },
      ],
    }),
  );
  const pool = new Pool(gw.url, { connections: CONNECTIONS, pipelining: 1 });
  try {
    const send = async (path: string, headers: Record<string, string> = {}, method: 'GET' | 'PUT' = 'GET') => {
      const r = await pool.request({ path, method, headers });
      return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
    };

    assert.equal(gw.logs.filter((l) => l.event === 'lua-loaded').length, 2, 'each worker loaded the Lua module once');

    // Per-endpoint counters, the header_filter and the log phase, on both workers.
    const before = await workerRequests(gw.adminUrl);
    const N = 200;
    const M = 50;
    const results = await Promise.all([...Array.from({ length: N }, () => send('/api/orders', { 'x-user-id': 'dora' })), ...Array.from({ length: M }, () => send('/api/users'))]);
    for (const r of results) {
      assert.equal(r.status, 200, r.body);
      assert.equal(r.headers['x-powered-by'], undefined, 'header_filter removed the upstream field');
      assert.equal(r.headers['x-upstream-status'], '200');
    }
    assert.equal(JSON.parse(results[0]!.body).marked, 'dora', 'the second policy set a request header from ngx.var');
    assert.equal(JSON.parse(results[N]!.body).marked, 'anonymous');
    await assertEveryWorkerServed(gw.adminUrl, 2, before);
    assert.deepEqual(await shared(gw.adminUrl, 'endpoint_counters', 'GET /api/orders'), { status: 200, value: N }, 'no increment lost between the workers');
    assert.deepEqual(await shared(gw.adminUrl, 'endpoint_counters', 'GET /api/users'), { status: 200, value: M });
    assert.deepEqual(await shared(gw.adminUrl, 'endpoint_counters', 'total'), { status: 200, value: N + M });
    await until('log-phase counts', () => shared(gw.adminUrl, 'statuses', '2xx'), (v) => v.value === N + M);
    assert.equal((await send('/plain')).headers['x-powered-by'], 'upstream-framework', 'a route without Lua is untouched');

    // The global limit, set through the content route and read by every worker.
    const set = await send('/limits?value=30', {}, 'PUT');
    assert.equal(set.status, 200, set.body);
    assert.deepEqual(JSON.parse(set.body), { global_limit: 30 });
    assert.match(String(set.headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse((await send('/limits')).body), { global_limit: 30 });
    assert.equal((await send('/limits?value=-1', {}, 'PUT')).status, 400);
    const seenBefore = up.requests.length;
    const LIMITED = 60;
    const bob = await Promise.all(Array.from({ length: LIMITED }, () => send('/limited', { 'x-user-id': 'bob' })));
    const ok = bob.filter((r) => r.status === 200);
    const refused = bob.filter((r) => r.status === 429);
    assert.equal(ok.length, 30, `exactly the limit admitted across both workers: ${bob.map((r) => r.status).join(',')}`);
    assert.equal(refused.length, LIMITED - 30);
    for (const r of refused) {
      assert.match(r.body, /^429 Too Many Requests/);
      assert.ok(Number(r.headers['retry-after']) >= 1);
      assert.equal(r.headers['x-ratelimit-remaining'], '0');
    }
    assert.equal(up.requests.length - seenBefore, 30, 'refused requests never reached the upstream');
    assert.deepEqual(await shared(gw.adminUrl, 'user_counts', 'bob'), { status: 200, value: LIMITED }, "bob's requests, counted across workers");
    const carol = await send('/limited', { 'x-user-id': 'carol' });
    assert.equal(carol.status, 200);
    assert.equal(carol.headers['x-ratelimit-remaining'], '29');

    // Failures are contained: a runaway script and an erroring one answer 500 TG_ERR_PLUGIN.
    const workersBefore = await workerIds(gw.adminUrl);
    const errorsBefore = await metric(gw.adminUrl, 'tidegate_plugin_errors_total');
    const SPINS = 12;
    for (const r of await Promise.all(Array.from({ length: SPINS }, () => send('/spin')))) {
      assert.equal(r.status, 500);
      assert.equal(JSON.parse(r.body).error.code, 'TG_ERR_PLUGIN');
    }
    const b = await send('/boom');
    assert.equal(b.status, 500);
    assert.equal(JSON.parse(b.body).error.code, 'TG_ERR_PLUGIN');
    await until('lua failures counted', () => metric(gw.adminUrl, 'tidegate_plugin_errors_total'), (n) => n - errorsBefore === SPINS + 1);
    const runaway = await until('runaway logged', () => gw.logs.filter((l) => l.event === 'lua-error' && l.script === spin), (l) => l.length > 0);
    assert.equal(runaway[0]!.runaway, true);
    assert.match(String(runaway[0]!.error), /spin\.lua:2: instruction limit exceeded/);
    assert.ok(runaway.length <= 2, `rate-limited: ${runaway.length} lua-error lines for ${SPINS} failures`);
    const boomed = await until('error logged', () => gw.logs.filter((l) => l.event === 'lua-error' && l.script === boom), (l) => l.length > 0);
    assert.equal(boomed[0]!.line, 3);
    assert.match(String(boomed[0]!.error), /boom\.lua:3: boom: 0/);
    assert.equal(boomed[0]!.route, 'boom');
    assert.deepEqual(await workerIds(gw.adminUrl), workersBefore, 'no worker was lost or restarted');
    const after = await workerRequests(gw.adminUrl);
    const fine = await Promise.all(Array.from({ length: 40 }, () => send('/api/after')));
    assert.ok(fine.every((r) => r.status === 200));
    await assertEveryWorkerServed(gw.adminUrl, 2, after);

    // Reload with an edited script while requests run: every request answered, then only v2.
    assert.equal((await send('/v')).headers['x-script-version'], 'v1');
    writeFileSync(version, versionScript('v2'));
    let running = true;
    const statuses = new Map<number, number>();
    const load = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (running) {
          const r = await send('/v');
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        }
      }),
    );
    const reload = await request(`${gw.adminUrl}/reload`, { method: 'POST' });
    assert.equal(reload.statusCode, 200, await reload.body.text());
    await until('every worker runs v2', async () => (await Promise.all(Array.from({ length: 24 }, () => send('/v')))).every((r) => r.headers['x-script-version'] === 'v2'), (ok) => ok, 10_000);
    running = false;
    await load;
    assert.deepEqual([...statuses.keys()], [200], `only 200s during the reload: ${JSON.stringify([...statuses])}`);
    // The counters live in shared memory, not in the replaced Lua state.
    assert.deepEqual(await shared(gw.adminUrl, 'endpoint_counters', 'GET /api/orders'), { status: 200, value: N });
  } finally {
    await pool.close();
    await gw.stop();
    await up.close();
  }
});

test('lua: tidegate --check reports unreadable scripts, syntax errors and misplaced phases with their paths', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-lua-'));
  const bad = join(dir, 'bad.lua');
  writeFileSync(bad, 'local x = 1\nif x then\n  ngx.say("x")\n');
  const good = join(dir, 'good.lua');
  writeFileSync(good, 'return\n');
  // Schema and cross-field errors first (the config is rejected before any file is read)…
  const misplaced = baseConfig(['127.0.0.1:9'], {
    routes: [
      { match: { path: '/c' }, upstream: 'app', lua: { content: good } },
      { match: { path: '/d' }, upstream: 'app', websocket: true, policies: [{ lua: { access: good, log: good } }] },
      { match: { path: '/e' }, upstream: 'app', policies: [{ lua: { maxInstructions: 10 } }] },
      { match: { path: '/f' }, upstream: 'app', policies: [{ lua: {} }] },
    ],
  });
  const m = spawnSync(process.execPath, [CLI, '--check', writeConfig(misplaced)], { encoding: 'utf8', timeout: 20_000 });
  assert.notEqual(m.status, 0, 'rejected');
  const mout = m.stderr + m.stdout;
  assert.match(mout, /routes\[0\]\.upstream: a route with `lua\.content` is answered by its script/);
  assert.match(mout, /routes\[1\]\.policies\[0\]\.lua\.log: not run on a WebSocket route/);
  assert.match(mout, /routes\[2\]\.policies\[0\]\.lua\.maxInstructions: /);
  assert.match(mout, /routes\[3\]\.policies\[0\]\.lua: give at least one of access, header_filter, log/);

  // …then every script is read and compiled, each problem with its path and line.
  const scripts = baseConfig(['127.0.0.1:9'], {
    routes: [
      { match: { path: '/a' }, upstream: 'app', policies: [{ lua: { access: bad } }] },
      { match: { path: '/b' }, upstream: 'app', policies: [{ lua: { log: join(dir, 'missing.lua') } }] },
      { match: { path: '/c' }, lua: { content: bad } },
    ],
  });
  const r = spawnSync(process.execPath, [CLI, '--check', writeConfig(scripts)], { encoding: 'utf8', timeout: 20_000 });
  assert.notEqual(r.status, 0, 'rejected');
  const out = r.stderr + r.stdout;
  assert.match(out, /routes\[0\]\.policies\[0\]\.lua\.access: .*bad\.lua:4: 'end' expected \(to close 'if' at line 2\)/);
  assert.match(out, /routes\[1\]\.policies\[0\]\.lua\.log: cannot read Lua script .*missing\.lua: ENOENT/);
  assert.match(out, /routes\[2\]\.lua\.content: .*bad\.lua:4:/);

  const fine = baseConfig(['127.0.0.1:9'], {
    shared: { config: { size: '16kb' }, user_counts: { size: '16kb' } },
    routes: [
      { match: { path: '/limits' }, lua: { content: join(EXAMPLES, 'set-limit.lua') } },
      { match: { path: '/' }, upstream: 'app', policies: [{ lua: { access: join(EXAMPLES, 'global-limit.lua') } }] },
    ],
  });
  const ok = spawnSync(process.execPath, [CLI, '--check', writeConfig(fine)], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(ok.status, 0, ok.stderr);
});
