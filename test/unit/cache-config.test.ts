// The cache's settings: defaults, what a worker receives, and bad values rejected with
// every error and its path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/load.js';
import { compileWorkerConfig } from '../../src/config/compile.js';
import { ConfigError } from '../../src/errors.js';

const base = { upstreams: { a: { discovery: { type: 'static', endpoints: ['127.0.0.1:9001'] } } } };

test('cache defaults, and the worker config of a caching route', () => {
  const cfg = validateConfig({ ...base, routes: [{ upstream: 'a', cache: { keyHeaders: ['X-Tenant'], bypass: { cookie: 'session' } } }, { upstream: 'a' }] });
  assert.deepEqual(cfg.cache, { size: 64 * 1024 * 1024, maxObjectSize: 1024 * 1024, lockTimeout: 5000, admission: true });
  const w = compileWorkerConfig(cfg, 1);
  assert.deepEqual(w.cache, { lockTimeout: 5000, admission: true });
  assert.deepEqual(w.routes[0]!.cache, { ttlDefault: 10_000, ttlMin: 1000, ttlMax: 300_000, staleWhileRevalidate: 0, staleIfError: 0, staleIfBusy: 0, keyHeaders: ['x-tenant'], bypassHeader: null, bypassCookie: 'session', stripSetCookie: false });
  assert.equal(w.routes[1]!.cache, null);
  assert.equal(compileWorkerConfig(validateConfig({ ...base, routes: [{ upstream: 'a' }] }), 1).cache, null, 'no store when no route caches');
});

test('bad cache settings are rejected with every error and its path', () => {
  try {
    validateConfig({
      ...base,
      cache: { size: '1mb', maxObjectSize: '512kb', lockTimeout: 5 },
      routes: [{ upstream: 'a', cache: { ttl: { min: '1m', max: '1s' }, staleIfError: 'forever', setCookie: 'keep', keyHeader: [] } }],
    });
    assert.fail('accepted');
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    const text = e.issues.join('\n');
    for (const path of ['cache.maxObjectSize', 'cache.lockTimeout', 'routes[0].cache.ttl.min', 'routes[0].cache.staleIfError', 'routes[0].cache.setCookie', 'routes[0].cache']) assert.ok(text.includes(path), `${path} in:\n${text}`);
    assert.match(text, /keyHeader/);
  }
});
