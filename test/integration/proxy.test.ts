// What the gateway forwards and returns, checked at both ends with real servers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, startRawUpstream, type TestUpstream } from '../helpers/upstream.js';
import { rawRequest } from '../helpers/raw-http.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('proxying', () => {
  let up: TestUpstream;
  let raw: Awaited<ReturnType<typeof startRawUpstream>>;
  let gw: RunningGateway;
  const big = randomBytes(3 * 1024 * 1024 + 17);

  before(async () => {
    up = await startUpstream((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const u = req.url!.replace(/^\/m/, '');
        if (u === '/head') {
          res.writeHead(200, { 'content-length': '1234', 'content-type': 'text/plain' });
          return res.end();
        }
        if (u === '/204') return res.writeHead(204).end();
        if (u === '/304') return res.writeHead(304, { etag: '"x"' }).end();
        if (u === '/early-hints') {
          res.writeEarlyHints({ link: '</a.css>; rel=preload' });
          return res.end('after hints');
        }
        if (u === '/download-cl') {
          res.writeHead(200, { 'content-length': String(big.length) });
          return res.end(big);
        }
        if (u === '/download-chunked') {
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          let off = 0;
          const step = (): void => {
            while (off < big.length) {
              const ok = res.write(big.subarray(off, off + 65536));
              off += 65536;
              if (!ok) return void res.once('drain', step);
            }
            res.end();
          };
          return step();
        }
        if (u === '/resp-headers') {
          res.setHeader('set-cookie', ['a=1', 'b=2']);
          res.setHeader('x-secret', 's');
          res.setHeader('keep-alive', 'timeout=5');
          res.setHeader('connection', 'x-secret');
          res.setHeader('via', '1.0 origin');
          return res.end('ok');
        }
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ method: req.method, url: u, rawHeaders: req.rawHeaders, bodyBytes: body.length, sha: sha(body) }));
      });
    });
    // An upstream that sends a response that is not HTTP.
    raw = await startRawUpstream((s) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello')));
    gw = await startGateway(
      baseConfig([up.address], {
        upstreams: {
          app: { discovery: { type: 'static', endpoints: [up.address] } },
          broken: { discovery: { type: 'static', endpoints: [raw.address] }, retries: 0 },
        },
        routes: [
          { name: 'host-only', match: { host: '*.example.com', path: '/' }, upstream: 'app' },
          { name: 'broken', match: { path: '/broken' }, upstream: 'broken' },
          { name: 'exact', match: { path: '/exact', pathType: 'exact', methods: ['GET'] }, upstream: 'app' },
          { name: 'api', match: { path: '/api' }, upstream: 'app' },
          { name: 'misc', match: { path: '/m' }, upstream: 'app' },
        ],
        limits: { clientBodyTimeout: '500ms', maxBodyBytes: '64mb' },
      }),
    );
  });
  after(async () => {
    await gw.stop();
    await up.close();
    await raw.close();
  });

  test('strips hop-by-hop fields, adds forwarding fields, keeps order and duplicates', async () => {
    const r = await rawRequest(
      gw.port,
      'GET /api/h HTTP/1.1\r\nHost: svc.test\r\nConnection: keep-alive, X-Drop-Me\r\nX-Drop-Me: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n' +
        'Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nX-A: 1\r\nX-B: 2\r\nX-A: 3\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nVia: 1.1 edge\r\n\r\n',
    );
    assert.equal(r.status, 200);
    const body = JSON.parse(r.data.slice(r.data.indexOf('\r\n\r\n') + 4)) as { rawHeaders: string[] };
    const names = body.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const gone of ['x-drop-me', 'keep-alive', 'te', 'proxy-connection', 'upgrade']) assert.ok(!names.includes(gone), `${gone} must not be forwarded`);
    const pairs: [string, string][] = [];
    for (let i = 0; i < body.rawHeaders.length; i += 2) pairs.push([body.rawHeaders[i]!.toLowerCase(), body.rawHeaders[i + 1]!]);
    const xs = pairs.filter(([n]) => n === 'x-a' || n === 'x-b').map(([n, v]) => `${n}=${v}`);
    assert.deepEqual(xs, ['x-a=1', 'x-b=2', 'x-a=3']);
    const get = (n: string): string | undefined => pairs.find(([k]) => k === n)?.[1];
    assert.equal(get('host'), 'svc.test');
    assert.equal(get('x-forwarded-for'), '203.0.113.9, 127.0.0.1');
    assert.equal(get('x-forwarded-proto'), 'http', 'an untrusted peer cannot claim https');
    assert.equal(get('x-forwarded-host'), 'svc.test');
    assert.equal(get('via'), '1.1 edge, 1.1 tidegate');
    assert.match(get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    assert.match(r.data, /\r\nx-request-id: [0-9a-f-]{36}\r\n/);
  });

  test('keeps a valid client X-Request-Id and replaces an invalid one', async () => {
    const ok = await request(`${gw.url}/api/id`, { headers: { 'x-request-id': 'req-42.a' } });
    assert.equal(ok.headers['x-request-id'], 'req-42.a');
    await ok.body.dump();
    const bad = await request(`${gw.url}/api/id`, { headers: { 'x-request-id': 'has space' } });
    assert.match(String(bad.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    await bad.body.dump();
  });

  test('response: hop-by-hop and Connection-listed fields dropped, duplicates kept, Via appended', async () => {
    const r = await rawRequest(gw.port, 'GET /m/resp-headers HTTP/1.1\r\nHost: svc.test\r\n\r\n');
    assert.equal(r.status, 200);
    const head = r.data.slice(0, r.data.indexOf('\r\n\r\n')).toLowerCase();
    assert.ok(!head.includes('x-secret'));
    assert.ok(!head.includes('keep-alive'));
    assert.deepEqual(head.match(/set-cookie: [^\r]*/g), ['set-cookie: a=1', 'set-cookie: b=2']);
    assert.ok(head.includes('via: 1.0 origin, 1.1 tidegate'));
    assert.equal(head.match(/\r\ndate:/g)?.length, 1, 'one Date field');
  });

  test('HEAD keeps Content-Length and sends no body; the connection stays usable', async () => {
    const r = await rawRequest(gw.port, ['HEAD /m/head HTTP/1.1\r\nHost: svc.test\r\n\r\n', 'GET /m/x HTTP/1.1\r\nHost: svc.test\r\n\r\n']);
    const responses = r.data.split(/(?=HTTP\/1\.1 )/);
    assert.equal(responses.length, 2, r.data);
    assert.match(responses[0]!, /^HTTP\/1\.1 200[^]*\r\ncontent-length: 1234\r\n/i);
    assert.ok(responses[0]!.endsWith('\r\n\r\n'), 'no body after the head');
    assert.match(responses[1]!, /^HTTP\/1\.1 200/);
  });

  test('204 carries no Content-Length or body; 304 no body', async () => {
    const r = await rawRequest(gw.port, ['GET /m/204 HTTP/1.1\r\nHost: svc.test\r\n\r\n', 'GET /m/304 HTTP/1.1\r\nHost: svc.test\r\n\r\n']);
    const [a, b] = r.data.split(/(?=HTTP\/1\.1 )/);
    assert.match(a!, /^HTTP\/1\.1 204/);
    assert.ok(!/content-length|transfer-encoding/i.test(a!), a);
    assert.ok(a!.endsWith('\r\n\r\n'));
    assert.match(b!, /^HTTP\/1\.1 304/);
    assert.ok(b!.endsWith('\r\n\r\n'), b);
    assert.match(b!, /etag: "x"/i);
  });

  test('interim 103 from the upstream is absorbed; the final response arrives', async () => {
    const r = await request(`${gw.url}/m/early-hints`);
    assert.equal(r.statusCode, 200);
    assert.equal(await r.body.text(), 'after hints');
  });

  test('Expect: 100-continue is answered and not forwarded', async () => {
    const r = await rawRequest(gw.port, 'POST /m/e HTTP/1.1\r\nHost: svc.test\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc');
    assert.match(r.data, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200/);
    const body = JSON.parse(r.data.slice(r.data.lastIndexOf('\r\n\r\n') + 4)) as { rawHeaders: string[]; bodyBytes: number };
    assert.equal(body.bodyBytes, 3);
    assert.ok(!body.rawHeaders.map((h) => h.toLowerCase()).includes('expect'));
  });

  test('streams request bodies both ways intact (Content-Length and chunked)', async () => {
    const cl = await request(`${gw.url}/m/upload`, { method: 'POST', body: big });
    const a = (await cl.body.json()) as { bodyBytes: number; sha: string };
    assert.equal(a.bodyBytes, big.length);
    assert.equal(a.sha, sha(big));
    async function* gen(): AsyncGenerator<Buffer> {
      for (let off = 0; off < big.length; off += 100_000) yield big.subarray(off, off + 100_000);
    }
    const ch = await request(`${gw.url}/m/upload`, { method: 'PUT', body: Readable.from(gen()) });
    const b = (await ch.body.json()) as { bodyBytes: number; sha: string };
    assert.equal(b.bodyBytes, big.length);
    assert.equal(b.sha, sha(big));
  });

  test('streams response bodies intact (Content-Length and chunked)', async () => {
    for (const path of ['/m/download-cl', '/m/download-chunked']) {
      const r = await request(`${gw.url}${path}`);
      assert.equal(r.statusCode, 200);
      const got = Buffer.from(await r.body.arrayBuffer());
      assert.equal(got.length, big.length, path);
      assert.equal(sha(got), sha(big), path);
      if (path.endsWith('-cl')) assert.equal(r.headers['content-length'], String(big.length));
      else assert.equal(r.headers['transfer-encoding'], 'chunked');
    }
  });

  test('routing: host wildcard, exact path + method, prefix on segment boundary, 404 JSON otherwise', async () => {
    const viaHost = await request(`${gw.url}/anything`, { headers: { host: 'a.example.com' } });
    assert.equal(viaHost.statusCode, 200);
    await viaHost.body.dump();
    const apex = await request(`${gw.url}/anything`, { headers: { host: 'example.com' } });
    assert.equal(apex.statusCode, 404);
    const err = (await apex.body.json()) as { error: { code: string } };
    assert.equal(err.error.code, 'TG_ERR_ROUTE_NOT_FOUND');
    assert.equal(apex.headers['content-type'], 'application/json');
    const exact = await request(`${gw.url}/exact`);
    assert.equal(exact.statusCode, 200);
    await exact.body.dump();
    const exactPost = await request(`${gw.url}/exact`, { method: 'POST', body: 'x' });
    assert.equal(exactPost.statusCode, 404);
    await exactPost.body.dump();
    const below = await request(`${gw.url}/exact/more`);
    assert.equal(below.statusCode, 404);
    await below.body.dump();
    const seg = await request(`${gw.url}/apix`);
    assert.equal(seg.statusCode, 404, '/api must not match /apix');
    await seg.body.dump();
    const sub = await request(`${gw.url}/api/v1?q=1`);
    assert.equal(((await sub.body.json()) as { url: string }).url, '/api/v1?q=1');
  });

  test('a client that stops sending mid-body gets 408 and the connection closed', async () => {
    const t0 = Date.now();
    const r = await rawRequest(gw.port, 'POST /m/slow HTTP/1.1\r\nHost: svc.test\r\nContent-Length: 100000\r\n\r\nabc', 4000);
    assert.equal(r.status, 408, r.data);
    assert.ok(r.closed);
    assert.match(r.data, /TG_ERR_CLIENT_BODY_TIMEOUT/);
    assert.ok(Date.now() - t0 >= 450);
  });

  test('an upstream response with conflicting Content-Length is a 502', async () => {
    const r = await request(`${gw.url}/broken`);
    assert.equal(r.statusCode, 502);
    assert.equal(((await r.body.json()) as { error: { code: string } }).error.code, 'TG_ERR_UPSTREAM_PROTOCOL');
  });
});

describe('Connection: close from the client', () => {
  test('the response says Connection: close and the connection ends with a clean FIN', async () => {
    const up = await startUpstream((req, res) => {
      req.resume();
      res.end('hello');
    });
    // Only /ok is routed, so the second request takes the gateway's own 404 path.
    const gw = await startGateway(baseConfig([up.address], { routes: [{ match: { path: '/ok' }, upstream: 'app' }] }));
    try {
      for (const [path, status] of [['/ok', 200], ['/nothing-here', 404]] as const) {
        const r = await rawRequest(gw.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`, 2000);
        assert.equal(r.status, status, path);
        assert.ok(r.closed, 'closed by the server');
        const head = r.data.slice(0, r.data.indexOf('\r\n\r\n')).toLowerCase();
        assert.equal(head.match(/\r\nconnection: close/g)?.length, 1, head);
      }
    } finally {
      await gw.stop();
      await up.close();
    }
  });
});
