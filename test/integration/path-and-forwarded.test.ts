// Path normalisation before routing, and RFC 7239 Forwarded under the trust rules,
// through the real gateway. Raw sockets, because every HTTP client library would
// normalise the path before sending it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { rawRequest } from '../helpers/raw-http.js';

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: a.test\r\n${extra}Connection: close\r\n\r\n`;

describe('path normalisation before routing', () => {
  let admin: TestUpstream;
  let pub: TestUpstream;
  let gw: RunningGateway;
  let merging: RunningGateway;
  let rejecting: RunningGateway;
  const config = (proxy: Record<string, unknown>): Record<string, unknown> =>
    baseConfig([], {
      workers: 1,
      proxy,
      upstreams: {
        admin: { discovery: { type: 'static', endpoints: [admin.address] } },
        pub: { discovery: { type: 'static', endpoints: [pub.address] } },
      },
      routes: [
        { name: 'admin', match: { path: '/admin' }, upstream: 'admin' },
        { name: 'rest', match: { path: '/' }, upstream: 'pub' },
      ],
    });
  before(async () => {
    admin = await startUpstream();
    pub = await startUpstream();
    [gw, merging, rejecting] = await Promise.all([
      startGateway(config({})),
      startGateway(config({ mergeSlashes: true })),
      startGateway(config({ escapedSlashes: 'reject' })),
    ]);
  });
  after(async () => {
    await Promise.all([gw.stop(), merging.stop(), rejecting.stop()]);
    await admin.close();
    await pub.close();
  });

  /** Sends `path` and returns which upstream saw which path. */
  async function routed(g: RunningGateway, path: string): Promise<{ status: number | null; admin?: string; pub?: string }> {
    const a = admin.requests.length;
    const p = pub.requests.length;
    const r = await rawRequest(g.port, get(path), 3000);
    return { status: r.status, admin: admin.requests[a]?.url, pub: pub.requests[p]?.url };
  }

  test('/public/../admin routes to /admin and the upstream sees /admin', async () => {
    assert.deepEqual(await routed(gw, '/public/../admin'), { status: 200, admin: '/admin', pub: undefined });
  });
  test('/public/%2e%2e/admin counts as ..', async () => {
    assert.deepEqual(await routed(gw, '/public/%2e%2e/admin/x'), { status: 200, admin: '/admin/x', pub: undefined });
  });
  test('/a/./b loses the dot segment; the query is untouched', async () => {
    assert.deepEqual(await routed(gw, '/a/./b?x=/../y'), { status: 200, admin: undefined, pub: '/a/b?x=/../y' });
  });
  test('//admin is not /admin by default, and is with proxy.mergeSlashes', async () => {
    assert.deepEqual(await routed(gw, '//admin'), { status: 200, admin: undefined, pub: '//admin' });
    assert.deepEqual(await routed(merging, '//admin'), { status: 200, admin: '/admin', pub: undefined });
  });
  test('%00 and malformed encodings answer 400 without reaching an upstream', async () => {
    for (const [path, code] of [
      ['/a%00', 'TG_ERR_PATH_NUL'],
      ['/a%zz', 'TG_ERR_PATH_INVALID_ENCODING'],
    ] as const) {
      const before = admin.requests.length + pub.requests.length;
      const r = await rawRequest(gw.port, get(path), 3000);
      assert.equal(r.status, 400, r.data);
      assert.match(r.data, new RegExp(code));
      assert.equal(admin.requests.length + pub.requests.length, before);
    }
  });
  test('escaped slashes: kept by default, refused with escapedSlashes: reject', async () => {
    assert.deepEqual(await routed(gw, '/x/..%2Fadmin'), { status: 200, admin: undefined, pub: '/x/..%2Fadmin' });
    const r = await rawRequest(rejecting.port, get('/x/..%2fadmin'), 3000);
    assert.equal(r.status, 400);
    assert.match(r.data, /TG_ERR_PATH_ESCAPED_SLASH/);
  });
});

describe('Forwarded (RFC 7239) under the trust rules', () => {
  let up: TestUpstream;
  let untrusting: RunningGateway;
  let trusting: RunningGateway;
  let appending: RunningGateway;
  before(async () => {
    up = await startUpstream();
    [untrusting, trusting, appending] = await Promise.all([
      startGateway(baseConfig([up.address], { workers: 1 })),
      startGateway(baseConfig([up.address], { workers: 1, proxy: { trustedProxies: ['127.0.0.1'] } })),
      startGateway(baseConfig([up.address], { workers: 1, proxy: { forwarded: 'append' } })),
    ]);
  });
  after(async () => {
    await Promise.all([untrusting.stop(), trusting.stop(), appending.stop()]);
    await up.close();
  });

  async function forwardedSeen(g: RunningGateway, extra: string): Promise<string | string[] | undefined> {
    const n = up.requests.length;
    const r = await rawRequest(g.port, get('/f', extra), 3000);
    assert.equal(r.status, 200, r.data);
    return up.requests[n]!.headers.forwarded;
  }

  test("an untrusted peer's Forwarded is dropped", async () => {
    assert.equal(await forwardedSeen(untrusting, 'Forwarded: for=6.6.6.6\r\n'), undefined);
  });
  test("a trusted proxy's Forwarded is passed on as received", async () => {
    assert.equal(await forwardedSeen(trusting, 'Forwarded: for=192.0.2.7;proto=https\r\n'), 'for=192.0.2.7;proto=https');
  });
  test("append writes our own element, after dropping an untrusted peer's", async () => {
    assert.equal(await forwardedSeen(appending, 'Forwarded: for=6.6.6.6\r\n'), 'for=127.0.0.1;host=a.test;proto=http');
  });
  test('a client cannot keep Forwarded by listing it in Connection', async () => {
    assert.equal(await forwardedSeen(trusting, 'Forwarded: for=192.0.2.7\r\nConnection: forwarded\r\n'), undefined);
  });
});
