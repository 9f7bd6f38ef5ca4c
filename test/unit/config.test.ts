import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseDuration, parseRate, parseSize, parseHostPort } from '../../src/units/units.js';
import { parseConfigText, validateConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { CLI, writeConfig } from '../helpers/gateway.js';

test('durations, sizes and rates are parsed strictly', () => {
  assert.deepEqual(parseDuration('250ms'), { ok: true, value: 250 });
  assert.deepEqual(parseDuration('2s'), { ok: true, value: 2000 });
  assert.deepEqual(parseDuration('1.5m'), { ok: true, value: 90_000 });
  for (const bad of ['10', 10, '2 s', '2sec', '-1s', 's', '', '1e3ms']) assert.equal(parseDuration(bad).ok, false, String(bad));
  assert.deepEqual(parseSize('16kb'), { ok: true, value: 16384 });
  assert.deepEqual(parseSize('1mb'), { ok: true, value: 1048576 });
  assert.deepEqual(parseSize(512), { ok: true, value: 512 });
  for (const bad of ['1.5mb', '1 mb', 'mb', '-1', -1, '1tb']) assert.equal(parseSize(bad).ok, false, String(bad));
  const r = parseRate('100/s');
  assert.ok(r.ok && r.value.perSecond === 100);
  const m = parseRate('6000/m');
  assert.ok(m.ok && m.value.perSecond === 100);
  for (const bad of ['100', '100/sec', '0/s', 's/100', '100 / s']) assert.equal(parseRate(bad).ok, false, bad);
  assert.deepEqual(parseHostPort('[::1]:80'), { ok: true, value: { host: '::1', port: 80 } });
  assert.equal(parseHostPort('127.0.0.1:0').ok, false);
  assert.equal(parseHostPort('127.0.0.1').ok, false);
});

test('a valid config gets its defaults', () => {
  const cfg = validateConfig({ upstreams: { a: { discovery: { type: 'static', endpoints: ['127.0.0.1:9001'] } } }, routes: [{ upstream: 'a' }] });
  assert.equal(cfg.listen.port, 8080);
  assert.equal(cfg.admin.host, '127.0.0.1');
  assert.equal(cfg.limits.maxHeaderBytes, 16 * 1024);
  assert.equal(cfg.upstreams.a!.timeouts.connect, 1000);
  assert.equal(cfg.routes[0]!.match.path, '/');
});

test('every error is reported with its path', () => {
  const yaml = `
listen: { port: 99999 }
admin: { host: 0.0.0.0 }
limits: { clientBodyTimeout: 10, maxBodyBytes: 1.5mb }
upstreams:
  users:
    discovery: { type: static, endpoints: ["127.0.0.1"] }
    timeouts: { response: 30 }
    bogus: true
routes:
  - match: { path: v1/users, methods: [FETCH] }
    upstream: nobody
`;
  assert.throws(
    () => parseConfigText(yaml),
    (err: ConfigError) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, 'TG_ERR_CONFIG_INVALID');
      const text = err.issues.join('\n');
      for (const path of [
        'listen.port:',
        'admin.token: a token is required when the admin API binds to 0.0.0.0',
        'limits.clientBodyTimeout: expected a duration',
        'limits.maxBodyBytes: expected a size',
        'upstreams.users.discovery.endpoints[0]: expected "host:port"',
        'upstreams.users.timeouts.response: expected a duration',
        'upstreams.users.bogus: unknown key',
        'routes[0].match.path: expected a path starting with "/"',
        'routes[0].match.methods[0]:',
      ]) {
        assert.ok(text.includes(path), `missing "${path}" in:\n${text}`);
      }
      return true;
    },
  );
});

test('unknown upstream and unknown policy are errors with paths', () => {
  assert.throws(
    () => validateConfig({ upstreams: { a: { discovery: { type: 'static', endpoints: ['127.0.0.1:1'] } } }, routes: [{ upstream: 'b', policies: [{ 'no-such-policy': {} }] }] }),
    (err: ConfigError) => {
      const text = err.issues.join('\n');
      assert.match(text, /routes\[0\]\.upstream: unknown upstream "b"/);
      assert.match(text, /routes\[0\]\.policies\[0\]\.no-such-policy: unknown policy "no-such-policy"/);
      return true;
    },
  );
});

test('websocket routes: true takes the defaults, a block overrides them, a route cannot exceed the worker-wide ceiling', async () => {
  const { compileWorkerConfig } = await import('../../src/config/compile.js');
  const up = { a: { discovery: { type: 'static', endpoints: ['127.0.0.1:9001'] } } };
  const cfg = validateConfig({
    limits: { maxWebSocketMessageBytes: '2mb' },
    upstreams: up,
    routes: [{ upstream: 'a', websocket: true }, { upstream: 'a', websocket: { idleTimeout: '5s', maxMessageSize: '64kb', maxBackpressure: '128kb' } }, { upstream: 'a' }],
  });
  const routes = compileWorkerConfig(cfg, 1).routes;
  assert.deepEqual(routes[0]!.websocket, { idleTimeout: 60_000, maxMessageSize: 2 * 1024 * 1024, maxBackpressure: 1024 * 1024 });
  assert.deepEqual(routes[1]!.websocket, { idleTimeout: 5_000, maxMessageSize: 64 * 1024, maxBackpressure: 128 * 1024 });
  assert.equal(routes[2]!.websocket, null);
  assert.throws(
    () => validateConfig({ upstreams: up, routes: [{ upstream: 'a', websocket: { maxMessageSize: '2mb', idleTimeout: 5, extra: 1 } }] }),
    (err: ConfigError) => {
      const text = err.issues.join('\n');
      assert.match(text, /routes\[0\]\.websocket\.maxMessageSize: must not exceed limits\.maxWebSocketMessageBytes \(1048576 bytes\)/);
      assert.match(text, /routes\[0\]\.websocket\.extra: unknown key/);
      assert.match(text, /routes\[0\]\.websocket\.idleTimeout/);
      return true;
    },
  );
});

test('environment variables are substituted, typed when a value is one variable, and missing ones reported', () => {
  const cfg = parseConfigText('listen: { port: "${P}" }\nupstreams: { a: { discovery: { type: static, endpoints: ["${HOST}:9000"] } } }\nroutes: [{ upstream: a }]\n', { P: '8181', HOST: '10.1.2.3' });
  assert.equal(cfg.listen.port, 8181);
  assert.deepEqual(cfg.upstreams.a!.discovery, { type: 'static', endpoints: [{ host: '10.1.2.3', port: 9000 }] });
  assert.throws(
    () => parseConfigText('admin: { host: 0.0.0.0, token: "${NOPE}" }\nupstreams: { a: { discovery: { type: static, endpoints: ["127.0.0.1:1"] } } }\nroutes: [{ upstream: a }]\n', {}),
    (err: ConfigError) => err.issues.some((i) => i === 'admin.token: environment variable NOPE is not set'),
  );
});

test('YAML syntax errors are reported with line and column', () => {
  assert.throws(() => parseConfigText('routes: [\n  - a\n'), (err: ConfigError) => err.issues[0]!.startsWith('(yaml)') && /line \d+/.test(err.issues[0]!));
});

test('the bundled example and demo configs are valid', () => {
  for (const f of ['config/tidegate.example.yaml']) {
    const r = spawnSync(process.execPath, [CLI, '--check', fileURLToPath(new URL(`../../../${f}`, import.meta.url))], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${f}: ${r.stderr}`);
  }
  const demo = spawnSync(process.execPath, [CLI, '--check', fileURLToPath(new URL('../../../config/demo.yaml', import.meta.url))], {
    encoding: 'utf8',
    env: { ...process.env, TIDEGATE_DEMO_UPSTREAM_A: '127.0.0.1:1', TIDEGATE_DEMO_UPSTREAM_B: '127.0.0.1:2', TIDEGATE_DEMO_FAULT_A: '127.0.0.1:3', TIDEGATE_DEMO_FAULT_B: '127.0.0.1:4' },
  });
  assert.equal(demo.status, 0, demo.stderr);
});

test('tidegate --check: exit 0 for a valid file, 2 with every error listed otherwise', () => {
  const good = writeConfig({ upstreams: { a: { discovery: { type: 'static', endpoints: ['127.0.0.1:9001'] } } }, routes: [{ upstream: 'a' }] });
  const ok = spawnSync(process.execPath, [CLI, '--check', good], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /configuration is valid/);
  const bad = writeConfig({ listen: { port: -1 }, upstreams: {}, routes: [] });
  const r = spawnSync(process.execPath, [CLI, '--check', bad], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /listen\.port/);
  assert.match(r.stderr, /routes: at least one route is required/);
  const missing = spawnSync(process.execPath, [CLI, '--config', '/nonexistent/x.yaml'], { encoding: 'utf8' });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /TG_ERR_CONFIG_READ/);
  const invalidRun = spawnSync(process.execPath, [CLI, '--config', bad], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(invalidRun.status, 2, 'an invalid config starts nothing and exits 2');
});

test('duplicate route names are rejected, every duplicate with its path', () => {
  const a = { discovery: { type: 'static', endpoints: ['127.0.0.1:1'] } };
  assert.throws(
    () =>
      validateConfig({
        upstreams: { a },
        routes: [
          { name: 'api', upstream: 'a', match: { path: '/a' } },
          { name: 'api', upstream: 'a', match: { path: '/b' } },
          { upstream: 'a', match: { path: '/c' } }, // implicitly "route-2"
          { name: 'api', upstream: 'a', match: { path: '/d' } },
          { name: 'route-2', upstream: 'a', match: { path: '/e' } },
        ],
      }),
    (err: ConfigError) => {
      const text = err.issues.join('\n');
      assert.match(text, /routes\[1\]\.name: duplicate route name "api": also the name of routes\[0\]/);
      assert.match(text, /routes\[3\]\.name: duplicate route name "api": also the name of routes\[0\]/);
      assert.match(text, /routes\[4\]\.name: duplicate route name "route-2": the default name of routes\[2\], which has no name/);
      assert.equal(err.issues.filter((i) => i.includes('duplicate route name')).length, 3, text);
      return true;
    },
  );
  // Distinct names, and unnamed routes, are fine.
  validateConfig({ upstreams: { a }, routes: [{ name: 'x', upstream: 'a' }, { upstream: 'a' }, { upstream: 'a' }] });
});

test('slowStart with round-robin (which ignores weights) is rejected at its path; weighted pickers accept it', () => {
  const ep = { type: 'static', endpoints: ['127.0.0.1:1'] };
  assert.throws(
    () =>
      validateConfig({
        upstreams: { plain: { discovery: ep, slowStart: '30s' }, explicit: { balancer: 'round-robin', discovery: ep, slowStart: '5s' }, off: { discovery: ep, slowStart: '0s' } },
        routes: [{ upstream: 'plain' }],
      }),
    (err: ConfigError) => {
      const text = err.issues.join('\n');
      assert.match(text, /upstreams\.plain\.slowStart: balancer round-robin ignores weights/);
      assert.match(text, /upstreams\.explicit\.slowStart: balancer round-robin ignores weights/);
      assert.ok(!text.includes('upstreams.off'), text);
      return true;
    },
  );
  for (const balancer of ['weighted-round-robin', 'least-request', 'peak-ewma']) {
    validateConfig({ upstreams: { a: { balancer, discovery: ep, slowStart: '30s' } }, routes: [{ upstream: 'a' }] });
  }
});

test('pool.pipelining: 1 by default, an integer from 1 to 16, errors at its path', () => {
  const ep = { type: 'static', endpoints: ['127.0.0.1:1'] };
  const ok = validateConfig({ upstreams: { a: { discovery: ep }, b: { discovery: ep, pool: { pipelining: 16 } } }, routes: [{ upstream: 'a' }] });
  assert.equal(ok.upstreams.a!.pool.pipelining, 1);
  assert.equal(ok.upstreams.b!.pool.pipelining, 16);
  assert.throws(
    () => validateConfig({ upstreams: { zero: { discovery: ep, pool: { pipelining: 0 } }, deep: { discovery: ep, pool: { pipelining: 17 } }, half: { discovery: ep, pool: { pipelining: 2.5 } }, text: { discovery: ep, pool: { pipelining: 'on' } } }, routes: [{ upstream: 'zero' }] }),
    (err: ConfigError) => {
      const text = err.issues.join('\n');
      for (const u of ['zero', 'deep', 'half', 'text']) assert.match(text, new RegExp(`upstreams\\.${u}\\.pool\\.pipelining: `), text);
      return true;
    },
  );
});

test('limits.maxWorkerYoungGeneration: 8 MiB by default, 0 for V8 own ceiling, sizes from 1mb to 256mb', () => {
  const base = { upstreams: { a: { discovery: { type: 'static', endpoints: ['127.0.0.1:9001'] } } }, routes: [{ upstream: 'a' }] };
  assert.equal(validateConfig(base).limits.maxWorkerYoungGeneration, 8 * 1024 * 1024);
  assert.equal(validateConfig({ ...base, limits: { maxWorkerYoungGeneration: 0 } }).limits.maxWorkerYoungGeneration, 0);
  assert.equal(validateConfig({ ...base, limits: { maxWorkerYoungGeneration: '32mb' } }).limits.maxWorkerYoungGeneration, 32 * 1024 * 1024);
  for (const bad of ['512kb', '1gb']) {
    assert.throws(
      () => validateConfig({ ...base, limits: { maxWorkerYoungGeneration: bad } }),
      (e: unknown) => e instanceof ConfigError && /limits\.maxWorkerYoungGeneration: must be 0 \(V8 decides\) or 1mb … 256mb/.test(e.message),
      bad,
    );
  }
});
