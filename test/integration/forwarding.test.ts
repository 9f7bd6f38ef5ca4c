// Forwarding fields and Host through the real gateway, seen by a real upstream.
// Every test client is 127.0.0.1, so trust is switched by running two gateways side
// by side: one with no trusted proxies, one that trusts 127.0.0.1. The client address
// the gateway believes is observed through a rate limit keyed on it (burst 1): two
// requests share a bucket exactly when the gateway took them for the same client.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { rawRequest } from '../helpers/raw-http.js';

/** Every value of field `name` the upstream received, one entry per field line. */
function fields(rawHeaders: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) out.push(rawHeaders[i + 1]!);
  return out;
}

describe('forwarding fields and proxy.trustedProxies', () => {
  let up: TestUpstream;
  let untrusted: RunningGateway;
  let trusted: RunningGateway;

  /** Sends one request; returns its status and the head the upstream received (if it got there). */
  async function send(gw: RunningGateway, path: string, headers: string[]): Promise<{ status: number; rawHeaders: string[] | null }> {
    const tag = `${path}${path.includes('?') ? '&' : '?'}t=${Math.random().toString(36).slice(2)}`;
    const r = await request(`${gw.url}${tag}`, { headers });
    await r.body.dump();
    const seen = up.requests.find((q) => q.url === tag);
    return { status: r.statusCode, rawHeaders: seen ? seen.rawHeaders : null };
  }

  before(async () => {
    up = await startUpstream();
    const config = (trustedProxies: string[]): Record<string, unknown> =>
      baseConfig([up.address], {
        workers: 1,
        proxy: { trustedProxies },
        routes: [
          { name: 'limited', match: { path: '/limited' }, upstream: 'app', policies: [{ 'rate-limit': { key: 'client-ip', rate: '1/m', burst: 1, headers: false } }] },
          { name: 'rewrite', match: { path: '/rewrite' }, upstream: 'app', rewriteHost: true },
          { name: 'all', match: { path: '/' }, upstream: 'app' },
        ],
      });
    [untrusted, trusted] = await Promise.all([startGateway(config([])), startGateway(config(['127.0.0.1']))]);
  });
  after(async () => {
    await Promise.all([untrusted?.stop(), trusted?.stop()]);
    await up?.close();
  });

  test('untrusted peer: one X-Forwarded-For with the peer appended; Proto and Host overwritten', async () => {
    const r = await send(untrusted, '/f', [
      'host', 'svc.test',
      'x-forwarded-for', '198.51.100.7',
      'x-forwarded-for', '203.0.113.9',
      'x-forwarded-proto', 'https',
      'x-forwarded-host', 'public.example',
    ]);
    assert.equal(r.status, 200);
    // Two client lines become one field (in order), ending with the TCP peer.
    assert.deepEqual(fields(r.rawHeaders!, 'x-forwarded-for'), ['198.51.100.7, 203.0.113.9, 127.0.0.1']);
    assert.deepEqual(fields(r.rawHeaders!, 'x-forwarded-proto'), ['http'], 'an untrusted peer cannot claim https');
    assert.deepEqual(fields(r.rawHeaders!, 'x-forwarded-host'), ['svc.test'], 'X-Forwarded-Host is the Host the gateway received');

    const none = await send(untrusted, '/f', ['host', 'svc.test']);
    assert.deepEqual(fields(none.rawHeaders!, 'x-forwarded-for'), ['127.0.0.1']);
    assert.deepEqual(fields(none.rawHeaders!, 'x-forwarded-proto'), ['http']);
  });

  test('untrusted peer: its X-Forwarded-For is not believed as the client address', async () => {
    // Different claimed clients, one bucket: the peer's.
    assert.equal((await send(untrusted, '/limited', ['x-forwarded-for', '192.0.2.1'])).status, 200);
    const second = await send(untrusted, '/limited', ['x-forwarded-for', '192.0.2.2']);
    assert.equal(second.status, 429, 'a spoofed X-Forwarded-For must not buy a fresh bucket');
    assert.equal(second.rawHeaders, null, 'the refused request never reached the upstream');
  });

  test('trusted peer: X-Forwarded-For extended, Proto and Host kept', async () => {
    const r = await send(trusted, '/f', [
      'host', 'svc.test',
      'x-forwarded-for', '198.51.100.7, 203.0.113.9',
      'x-forwarded-proto', 'https',
      'x-forwarded-host', 'public.example',
    ]);
    assert.equal(r.status, 200);
    assert.deepEqual(fields(r.rawHeaders!, 'x-forwarded-for'), ['198.51.100.7, 203.0.113.9, 127.0.0.1']);
    assert.deepEqual(fields(r.rawHeaders!, 'x-forwarded-proto'), ['https']);
    assert.deepEqual(fields(r.rawHeaders!, 'x-forwarded-host'), ['public.example']);
    assert.deepEqual(fields(r.rawHeaders!, 'host'), ['svc.test']);

    // Absent from the client: the gateway's own values, as for anyone.
    const none = await send(trusted, '/f', ['host', 'svc.test']);
    assert.deepEqual(fields(none.rawHeaders!, 'x-forwarded-for'), ['127.0.0.1']);
    assert.deepEqual(fields(none.rawHeaders!, 'x-forwarded-proto'), ['http']);
    assert.deepEqual(fields(none.rawHeaders!, 'x-forwarded-host'), ['svc.test']);
  });

  test('trusted peer: a client may not smuggle values by listing the forwarding fields in Connection', async () => {
    // Raw bytes: undici will not send a Connection field that lists other fields.
    const r = await rawRequest(
      trusted.port,
      'GET /f?conn-listed HTTP/1.1\r\nHost: svc.test\r\nConnection: close, X-Forwarded-For, X-Forwarded-Proto\r\nX-Forwarded-For: 198.51.100.7\r\nX-Forwarded-Proto: https\r\n\r\n',
      3000,
    );
    assert.equal(r.status, 200, r.data);
    const seen = up.requests.find((q) => q.url === '/f?conn-listed')!;
    assert.deepEqual(fields(seen.rawHeaders, 'x-forwarded-for'), ['127.0.0.1']);
    assert.deepEqual(fields(seen.rawHeaders, 'x-forwarded-proto'), ['http']);
  });

  test('trusted peer: the client address is the nearest untrusted X-Forwarded-For hop', async () => {
    // Nearest hop 203.0.113.9 is not trusted: that is the client, whatever came before it.
    assert.equal((await send(trusted, '/limited', ['x-forwarded-for', '198.51.100.7, 203.0.113.9'])).status, 200);
    assert.equal((await send(trusted, '/limited', ['x-forwarded-for', '203.0.113.9'])).status, 429, 'same client, same bucket');
    assert.equal((await send(trusted, '/limited', ['x-forwarded-for', '203.0.113.10'])).status, 200, 'another client, its own bucket');
    // A trusted hop is walked past (nginx realip, recursive): the client is 198.51.100.20.
    assert.equal((await send(trusted, '/limited', ['x-forwarded-for', '198.51.100.20, 127.0.0.1'])).status, 200);
    assert.equal((await send(trusted, '/limited', ['x-forwarded-for', '198.51.100.20'])).status, 429);
  });

  test('rewriteHost: the upstream sees its own authority as Host; without it, the client\'s Host', async () => {
    const rewritten = await send(untrusted, '/rewrite', ['host', 'svc.test']);
    assert.equal(rewritten.status, 200);
    assert.deepEqual(fields(rewritten.rawHeaders!, 'host'), [up.address]);
    // X-Forwarded-Host still tells the upstream what the client asked for.
    assert.deepEqual(fields(rewritten.rawHeaders!, 'x-forwarded-host'), ['svc.test']);

    const kept = await send(untrusted, '/f', ['host', 'svc.test:8443']);
    assert.deepEqual(fields(kept.rawHeaders!, 'host'), ['svc.test:8443']);
  });

  test('field values beyond ASCII: UTF-8 reaches the upstream byte for byte; a lone obs-text byte as U+FFFD', async () => {
    // The upstream (node:http) reads field values as latin1: one char per byte. Each
    // value ends in ASCII: uWS 20.30 drops the bytes over 0x7F at the end of a value
    // (and any whitespace before them) before the gateway sees it (README, Conformance).
    const utf8 = Buffer.from('caf\u00e9 \u65e5\u672c ok', 'utf8');
    const r = await rawRequest(untrusted.port, Buffer.concat([Buffer.from('GET /f?t=wide HTTP/1.1\r\nhost: svc.test\r\nx-name: '), utf8, Buffer.from('\r\nx-lone: a'), Buffer.from([0xe9]), Buffer.from('b\r\nconnection: close\r\n\r\n')]));
    assert.equal(r.status, 200);
    const seen = up.requests.find((q) => q.url === '/f?t=wide');
    assert.ok(seen, 'the request reached the upstream');
    assert.deepEqual(fields(seen.rawHeaders, 'x-name').map((v) => Buffer.from(v, 'latin1').toString('hex')), [utf8.toString('hex')]);
    // uWS hands field values over decoded as UTF-8, so an invalid byte is already U+FFFD (EF BF BD) when it reaches the gateway.
    assert.deepEqual(fields(seen.rawHeaders, 'x-lone').map((v) => Buffer.from(v, 'latin1').toString('hex')), [Buffer.from('a\ufffdb', 'utf8').toString('hex')]);
  });
});
