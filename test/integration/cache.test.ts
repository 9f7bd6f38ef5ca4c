// The response cache through the real gateway (2 workers) and a real upstream: the
// RFC 9111 storage, freshness and validation rules as a table, HEAD from GET,
// conditional requests, revalidation, unsafe-method invalidation, Vary, and
// coalescing of concurrent misses across workers.
//
// The client tells the upstream what to answer through request fields (x-resp: JSON
// response headers, x-status, x-body, x-delay ms): those fields are not part of the
// cache key, so the second request of a case asks for the same entry.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Agent, request } from 'undici';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { assertEveryWorkerServed, workerRequests } from '../helpers/workers.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describe('response cache', () => {
  let up: TestUpstream;
  let gw: RunningGateway;
  const hits = new Map<string, number>();
  const seen = (path: string): number => hits.get(path) ?? 0;
  // the forwarding fields of every upstream request, by path
  const forwardedBy = new Map<string, { xff: string | undefined; id: string | undefined; via: string | undefined }[]>();

  before(async () => {
    up = await startUpstream((req, res) => {
      const path = req.url!.split('?')[0]!;
      hits.set(path, seen(path) + 1);
      const fw = forwardedBy.get(path) ?? [];
      fw.push({ xff: req.headers['x-forwarded-for'] as string | undefined, id: req.headers['x-request-id'] as string | undefined, via: req.headers.via });
      forwardedBy.set(path, fw);
      const spec = JSON.parse(String(req.headers['x-resp'] ?? '{}')) as Record<string, string | string[]>;
      const inm = req.headers['if-none-match'];
      // x-304-if: answer 304 when the request carries this validator
      if (req.headers['x-304-if'] !== undefined && inm === req.headers['x-304-if']) {
        res.writeHead(304, spec);
        res.end();
        return;
      }
      const delay = Number(req.headers['x-delay'] ?? 0);
      const body = String(req.headers['x-body'] ?? `body of ${path} #${seen(path)}`) + (req.headers['accept-language'] ? ` lang=${req.headers['accept-language']}` : '');
      // x-body-delay: the head and the body's first 5 bytes at once, the rest this many ms later
      const bodyDelay = Number(req.headers['x-body-delay'] ?? 0);
      setTimeout(() => {
        res.writeHead(Number(req.headers['x-status'] ?? 200), { 'content-type': 'text/plain', ...spec });
        if (bodyDelay > 0 && req.method !== 'HEAD') {
          res.write(body.slice(0, 5));
          setTimeout(() => res.end(body.slice(5)), bodyDelay);
        } else res.end(req.method === 'HEAD' ? undefined : body);
      }, delay);
    });
    gw = await startGateway(
      baseConfig([up.address], {
        cache: { size: '8mb', maxObjectSize: '256kb', lockTimeout: '3s' },
        routes: [
          { name: 'strip', match: { path: '/strip' }, upstream: 'app', cache: { setCookie: 'strip' } },
          { name: 'keyed', match: { path: '/keyed' }, upstream: 'app', cache: { keyHeaders: ['x-tenant'], bypass: { header: 'x-no-cache', cookie: 'session' } } },
          { name: 'explicit', match: { path: '/explicit' }, upstream: 'app', cache: { ttl: { default: '0s' } } },
          { name: 'cached', match: { path: '/' }, upstream: 'app', cache: { ttl: { default: '30s', min: '1s', max: '1h' } } },
        ],
      }),
    );
  });

  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  async function get(path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' | 'POST' | 'DELETE' = 'GET'): Promise<Answer> {
    const r = await request(`${gw.url}${path}`, { method, headers });
    const body = await r.body.text();
    return { status: r.statusCode, headers: r.headers, body };
  }

  // [name, response fields, request fields of the second request, stored?]
  const storage: [string, Record<string, string>, Record<string, string>, boolean][] = [
    ['max-age', { 'cache-control': 'max-age=60' }, {}, true],
    ['s-maxage', { 'cache-control': 's-maxage=60' }, {}, true],
    ['expires', { expires: new Date(Date.now() + 60_000).toUTCString() }, {}, true],
    ['heuristic (no freshness, status 200)', {}, {}, true],
    ['no-store', { 'cache-control': 'no-store, max-age=60' }, {}, false],
    ['no-store, field name in upper case (names are case-insensitive)', { 'CACHE-CONTROL': 'no-store, max-age=60' }, {}, false],
    ['private', { 'cache-control': 'private, max-age=60' }, {}, false],
    ['max-age=0 without validator', { 'cache-control': 'max-age=0' }, {}, false],
    ['no-cache (stored, always revalidated)', { 'cache-control': 'no-cache, max-age=60' }, {}, false],
    ['expired Expires', { expires: 'Thu, 01 Jan 1970 00:00:00 GMT' }, {}, false],
    ['invalid Expires means expired', { expires: 'soon' }, {}, false],
    ['Set-Cookie is not stored', { 'cache-control': 'max-age=60', 'set-cookie': 'a=1' }, {}, false],
    ['Vary: * is not stored', { 'cache-control': 'max-age=60', vary: '*' }, {}, false],
    ['request no-cache forces a refetch', { 'cache-control': 'max-age=60' }, { 'cache-control': 'no-cache' }, false],
    ['request max-age=0 forces a refetch', { 'cache-control': 'max-age=60' }, { 'cache-control': 'max-age=0' }, false],
    ['request Pragma: no-cache forces a refetch', { 'cache-control': 'max-age=60' }, { pragma: 'no-cache' }, false],
  ];
  for (const [name, resp, second, stored] of storage) {
    test(`RFC 9111 storage: ${name} → ${stored ? 'served from the cache' : 'goes upstream again'}`, async () => {
      const path = `/t/${encodeURIComponent(name)}`;
      const a = await get(path, { 'x-resp': JSON.stringify(resp) });
      assert.equal(a.status, 200);
      assert.match(String(a.headers['cache-status']), /^tidegate; fwd=/);
      const b = await get(path, { 'x-resp': JSON.stringify(resp), ...second });
      assert.equal(b.status, 200);
      assert.equal(seen(path), stored ? 1 : 2, `upstream requests for ${name}`);
      if (stored) {
        assert.match(String(b.headers['cache-status']), /^tidegate; hit/);
        assert.equal(b.body, a.body);
        assert.ok(Number(b.headers.age) >= 0);
      } else {
        assert.match(String(b.headers['cache-status']), /fwd=/);
      }
    });
  }

  test('a response to an authorised request is stored only with public, s-maxage or must-revalidate (§3.5)', async () => {
    await get('/auth/a', { authorization: 'Bearer x', 'x-resp': JSON.stringify({ 'cache-control': 'max-age=60' }) });
    await get('/auth/a', { authorization: 'Bearer x', 'x-resp': JSON.stringify({ 'cache-control': 'max-age=60' }) });
    assert.equal(seen('/auth/a'), 2);
    await get('/auth/b', { authorization: 'Bearer x', 'x-resp': JSON.stringify({ 'cache-control': 'public, max-age=60' }) });
    const b = await get('/auth/b', { authorization: 'Bearer x' });
    assert.equal(seen('/auth/b'), 1);
    assert.match(String(b.headers['cache-status']), /hit/);
  });

  test('setCookie: strip stores the response without its Set-Cookie', async () => {
    const a = await get('/strip', { 'x-resp': JSON.stringify({ 'cache-control': 'max-age=60', 'set-cookie': 's=1' }) });
    assert.equal(a.headers['set-cookie'], 's=1', 'the miss passes the cookie to its own client');
    const b = await get('/strip');
    assert.equal(seen('/strip'), 1);
    assert.equal(b.headers['set-cookie'], undefined, 'a hit never hands out another client’s cookie');
  });

  test('an entry leaves out the fields the upstream’s Connection names; its age counts from the upstream’s Date (§4.2.3)', async () => {
    const resp = { 'cache-control': 'max-age=600', connection: 'x-hop, keep-alive', 'x-hop': 'secret', 'x-end': 'kept', date: new Date(Date.now() - 100_000).toUTCString() };
    const a = await get('/hop', { 'x-resp': JSON.stringify(resp) });
    assert.equal(a.headers['x-hop'], undefined, 'hop-by-hop on the miss too');
    assert.equal(a.headers['x-end'], 'kept');
    const b = await get('/hop');
    assert.equal(seen('/hop'), 1);
    assert.match(String(b.headers['cache-status']), /^tidegate; hit/);
    assert.equal(b.headers['x-hop'], undefined, 'a field Connection names is not stored');
    assert.equal(b.headers['x-end'], 'kept');
    const age = Number(b.headers.age);
    assert.ok(age >= 100 && age < 160, `Age from a Date 100 s old: ${age}`);
  });

  test('HEAD is answered from a stored GET; Age and Content-Length come from the entry', async () => {
    const a = await get('/head', { 'x-resp': JSON.stringify({ 'cache-control': 'max-age=60' }) });
    const h = await get('/head', {}, 'HEAD');
    assert.equal(seen('/head'), 1);
    assert.equal(h.status, 200);
    assert.equal(h.body, '');
    assert.equal(Number(h.headers['content-length']), Buffer.byteLength(a.body));
    assert.match(String(h.headers['cache-status']), /hit/);
  });

  test('a stored field with obs-text (a byte over 0x7F) goes out on a hit as the upstream sent it', async () => {
    // Raw bytes both ways: an HTTP client would decode the value and hide a re-encoding.
    const raw = (extra: string): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        const s = connect(gw.port, '127.0.0.1');
        const chunks: Buffer[] = [];
        s.on('data', (d: Buffer) => {
          chunks.push(d);
          if (Buffer.concat(chunks).includes('\r\n\r\n')) s.end();
        });
        s.on('end', () => resolve(Buffer.concat(chunks)));
        s.on('error', reject);
        s.write(`GET /obs-text HTTP/1.1\r\nhost: x\r\nx-resp: {"cache-control":"max-age=60","etag":"\\"e1\\"","x-label":"caf\\u00e9"}\r\n${extra}connection: close\r\n\r\n`);
      });
    const label = Buffer.from('x-label: caf\xe9\r\n', 'latin1');
    const miss = await raw('');
    assert.ok(miss.includes(label), `miss: ${miss.toString('latin1')}`);
    const hit = await raw('');
    assert.match(hit.toString('latin1'), /cache-status: tidegate; hit/i);
    assert.ok(hit.includes(label), `hit: ${hit.toString('latin1')}`);
    const notModified = await raw('if-none-match: "e1"\r\n');
    assert.match(notModified.toString('latin1'), /^HTTP\/1\.1 304/);
    assert.equal(seen('/obs-text'), 1);
  });

  test('conditional requests are answered 304 from the cache (If-None-Match, If-Modified-Since)', async () => {
    const lm = new Date(Date.now() - 3600_000).toUTCString();
    await get('/cond', { 'x-resp': JSON.stringify({ 'cache-control': 'max-age=60', etag: '"v1"', 'last-modified': lm }) });
    const a = await get('/cond', { 'if-none-match': 'W/"v1"' });
    assert.equal(a.status, 304);
    assert.equal(a.headers.etag, '"v1"');
    const b = await get('/cond', { 'if-none-match': '"other"' });
    assert.equal(b.status, 200);
    const c = await get('/cond', { 'if-modified-since': new Date().toUTCString() });
    assert.equal(c.status, 304);
    assert.equal(seen('/cond'), 1);
  });

  test('a stale entry is revalidated with its validator; a 304 refreshes it and the client gets the stored body', async () => {
    const resp = JSON.stringify({ 'cache-control': 'max-age=1', etag: '"r1"' });
    const a = await get('/reval', { 'x-resp': resp });
    await new Promise((r) => setTimeout(r, 2100)); // max-age=1 has passed (whole seconds)
    // The 304 carries the entry's new freshness (a minute, so the check below holds on a slow machine).
    const b = await get('/reval', { 'x-resp': JSON.stringify({ 'cache-control': 'max-age=60', etag: '"r1"' }), 'x-304-if': '"r1"' });
    assert.equal(seen('/reval'), 2);
    assert.equal(b.status, 200);
    assert.equal(b.body, a.body);
    assert.equal(String(b.headers['cache-status']), 'tidegate; fwd=stale; fwd-status=304');
    const c = await get('/reval');
    assert.equal(seen('/reval'), 2, 'fresh again after the 304');
    assert.match(String(c.headers['cache-status']), /hit/);
  });

  test('adaptive TTL: a response without freshness lives ttl.default; 304s lengthen it', async () => {
    const a = await get('/adaptive', { 'x-resp': JSON.stringify({ etag: '"a"' }) });
    assert.match(String(a.headers['cache-status']), /stored/);
    const b = await get('/adaptive');
    const ttl = Number(/ttl=(\d+)/.exec(String(b.headers['cache-status']))![1]);
    assert.ok(ttl >= 25 && ttl <= 30, `ttl.default 30s, got ${ttl}`);
  });

  test('unsafe methods invalidate the stored URI (§4.4)', async () => {
    await get('/inval', { 'x-resp': JSON.stringify({ 'cache-control': 'max-age=60' }) });
    await get('/inval');
    assert.equal(seen('/inval'), 1);
    const p = await get('/inval', {}, 'POST');
    assert.equal(p.headers['cache-status'], 'tidegate; fwd=method');
    await get('/inval', { 'x-resp': JSON.stringify({ 'cache-control': 'max-age=60' }) });
    assert.equal(seen('/inval'), 3, 'the POST and a fresh GET');
  });

  test('Vary: each variant is stored under its own secondary key', async () => {
    const resp = JSON.stringify({ 'cache-control': 'max-age=60', vary: 'Accept-Language' });
    const en = await get('/vary', { 'x-resp': resp, 'accept-language': 'en' });
    const de = await get('/vary', { 'x-resp': resp, 'accept-language': 'de' });
    assert.notEqual(en.body, de.body);
    assert.equal(seen('/vary'), 2);
    const en2 = await get('/vary', { 'accept-language': 'en' });
    const de2 = await get('/vary', { 'accept-language': 'de' });
    assert.equal(en2.body, en.body);
    assert.equal(de2.body, de.body);
    assert.equal(seen('/vary'), 2);
    const fr = await get('/vary', { 'x-resp': resp, 'accept-language': 'fr' });
    assert.match(String(fr.headers['cache-status']), /fwd=vary-miss/);
  });

  test('keyHeaders split the key; the bypass header and cookie skip the cache', async () => {
    const resp = JSON.stringify({ 'cache-control': 'max-age=60' });
    await get('/keyed', { 'x-resp': resp, 'x-tenant': 'a' });
    await get('/keyed', { 'x-resp': resp, 'x-tenant': 'b' });
    await get('/keyed', { 'x-tenant': 'a' });
    assert.equal(seen('/keyed'), 2);
    const b1 = await get('/keyed', { 'x-resp': resp, 'x-tenant': 'a', 'x-no-cache': '1' });
    assert.equal(b1.headers['cache-status'], 'tidegate; fwd=bypass');
    await get('/keyed', { 'x-resp': resp, 'x-tenant': 'a', cookie: 'theme=x; session=abc' });
    assert.equal(seen('/keyed'), 4);
  });

  test('only-if-cached on a miss is 504 TG_ERR_CACHE_NOT_CACHED', async () => {
    const r = await get('/never', { 'cache-control': 'only-if-cached' });
    assert.equal(r.status, 504);
    assert.match(r.body, /TG_ERR_CACHE_NOT_CACHED/);
    assert.equal(seen('/never'), 0);
  });

  test('GET /v1/cache reports; POST /v1/cache/purge removes by key, prefix and tag (Cache-Tag, Surrogate-Key)', async () => {
    const tagged = (h: Record<string, string>): Record<string, string> => ({ 'x-resp': JSON.stringify({ 'cache-control': 'max-age=60', ...h }) });
    await get('/p/a/1', tagged({ 'cache-tag': 'red,blue' }));
    await get('/p/a/2', tagged({ 'cache-tag': 'blue' }));
    await get('/p/b/1', tagged({ 'cache-tag': 'red' }));
    const c = await get('/p/c', tagged({ 'surrogate-key': 'k9 green' }));
    assert.equal(c.headers['cache-tag'], undefined, 'tags are for purging, not for clients');
    for (const p of ['/p/a/1', '/p/a/2', '/p/b/1', '/p/c']) assert.match(String((await get(p)).headers['cache-status']), /hit/, p);
    const purge = async (body: unknown): Promise<{ status: number; json: { purged?: number; error?: { code: string } } }> => {
      const r = await request(`${gw.adminUrl}/v1/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.statusCode, json: (await r.body.json()) as { purged?: number } };
    };
    const list = (await (await request(`${gw.adminUrl}/v1/cache?keys=1000`)).body.json()) as { keys: string[]; entries: number; hitRatio: number; routes: { route: string; requests: Record<string, number> }[] };
    const host = list.keys.find((k) => k.endsWith('/p/c'))!.slice(0, -'/p/c'.length);
    assert.equal((await purge({ key: `${host}/p/c` })).json.purged, 1);
    assert.match(String((await get('/p/c')).headers['cache-status']), /fwd=uri-miss/);
    assert.equal((await purge({ prefix: `${host}/p/a/` })).json.purged, 2);
    assert.match(String((await get('/p/a/2')).headers['cache-status']), /fwd=uri-miss/);
    assert.equal((await purge({ tag: 'red' })).json.purged, 1, '/p/b/1 (the red /p/a/1 went with the prefix)');
    assert.match(String((await get('/p/b/1')).headers['cache-status']), /fwd=uri-miss/);
    const bad = await purge({ key: 'x', tag: 'y' });
    assert.equal(bad.status, 422);
    assert.equal(bad.json.error!.code, 'TG_ERR_ADMIN_INVALID');
    const cached = list.routes.find((r) => r.route === 'cached')!;
    assert.ok(cached.requests.hit > 0 && cached.requests.miss > 0 && cached.requests.coalesced >= 0);
    assert.ok(list.entries > 0 && list.hitRatio > 0);
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /tidegate_cache_requests_total\{route="cached",result="hit"\} [1-9]/);
    assert.match(metrics, /tidegate_cache_removed_total\{reason="purge"\} 4/);
    const status = (await (await request(`${gw.adminUrl}/status`)).body.json()) as { cache: { enabled: boolean; entries: number } };
    assert.equal(status.cache.enabled, true);
    const decisions = await (await request(`${gw.adminUrl}/v1/decisions?kind=cache-purged`)).body.text();
    assert.match(decisions, /cache-purged/);
  });

  test('coalescing: 64 concurrent misses for one key, across both workers, make one upstream request', async () => {
    const before = await workerRequests(gw.adminUrl);
    // One connection each, so all 64 are in flight at once; SO_REUSEPORT puts some on each worker (see test/helpers/workers.ts).
    const agent = new Agent({ connections: 64, pipelining: 1 });
    const resp = JSON.stringify({ 'cache-control': 'max-age=60' });
    const t0 = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 64 }, async () => {
        const r = await request(`${gw.url}/coalesce`, { headers: { 'x-resp': resp, 'x-delay': '400' }, dispatcher: agent });
        return { status: r.statusCode, cacheStatus: String(r.headers['cache-status']), body: await r.body.text() };
      }),
    );
    const elapsed = Date.now() - t0;
    await agent.close();
    assert.equal(seen('/coalesce'), 1, 'the upstream sees exactly one request');
    assert.ok(answers.every((a) => a.status === 200 && a.body === answers[0]!.body));
    const collapsed = answers.filter((a) => a.cacheStatus.includes('collapsed')).length;
    console.log(`coalescing: 64 concurrent misses → ${seen('/coalesce')} upstream request; ${collapsed} answered as collapsed waiters, ${64 - collapsed} otherwise; ${elapsed} ms`);
    assert.ok(collapsed >= 48, `most requests waited for the one fill (got ${collapsed})`);
    await assertEveryWorkerServed(gw.adminUrl, 2, before);
  });

  test('a response that turns out uncacheable releases the waiters at once', async () => {
    const resp = JSON.stringify({ 'cache-control': 'no-store' });
    const t0 = Date.now();
    const answers = await Promise.all(Array.from({ length: 8 }, () => get('/nostore-burst', { 'x-resp': resp, 'x-delay': '300' })));
    const elapsed = Date.now() - t0;
    assert.ok(answers.every((a) => a.status === 200));
    // One fill of 300 ms, then the released waiters each go upstream (another 300 ms), far below lockTimeout (3 s).
    assert.ok(elapsed < 2500, `waiters released promptly (${elapsed} ms)`);
    assert.equal(seen('/nostore-burst'), 8);
    // Released waiters go upstream from a callback, not the request handler: they still carry the forwarding fields.
    const fw = forwardedBy.get('/nostore-burst')!;
    assert.ok(fw.every((f) => f.xff === '127.0.0.1' && f.id !== undefined && /tidegate/.test(f.via ?? '')), `every upstream request was forwarded with X-Forwarded-For, a request id and Via: ${JSON.stringify(fw)}`);
    // Later requests for the key go upstream at once, in parallel, instead of queueing behind one fill.
    const waits = async (): Promise<number> => ((await (await request(`${gw.adminUrl}/v1/cache`)).body.json()) as { coalesceWaits: number }).coalesceWaits;
    const w0 = await waits();
    await Promise.all(Array.from({ length: 8 }, () => get('/nostore-burst', { 'x-resp': resp, 'x-delay': '300' })));
    assert.equal(seen('/nostore-burst'), 16);
    assert.equal(await waits(), w0, 'no request waited on a fill');
  });

  test('hit-for-pass: while a key is marked uncacheable its responses are not stored; a purge of the key lifts the mark', async () => {
    const path = '/hfp';
    const noStore = { 'x-resp': JSON.stringify({ 'cache-control': 'no-store' }) };
    // A key asked for once is not marked (a mark takes a record); the second refusal marks it.
    for (let i = 0; i < 2; i++) assert.match(String((await get(path, noStore)).headers['cache-status']), /fwd=uri-miss; fwd-status=200; detail=no-store/);
    // Now storable, but the key is marked (10 s): passed upstream, not evaluated, not stored.
    const cacheable = { 'x-resp': JSON.stringify({ 'cache-control': 'max-age=60' }) };
    const passed = await get(path, cacheable);
    assert.equal(passed.headers['cache-status'], 'tidegate; fwd=uri-miss; detail=hit-for-pass');
    assert.equal((await get(path, cacheable)).headers['cache-status'], 'tidegate; fwd=uri-miss; detail=hit-for-pass');
    assert.equal(seen(path), 4);
    const list = (await (await request(`${gw.adminUrl}/v1/cache?keys=1000`)).body.json()) as { keys: string[] };
    const key = list.keys.find((k) => k.endsWith(path))!;
    const r = await request(`${gw.adminUrl}/v1/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
    assert.equal(((await r.body.json()) as { purged: number }).purged, 1, 'the mark is an entry the purge removes');
    assert.match(String((await get(path, cacheable)).headers['cache-status']), /fwd=uri-miss; fwd-status=200; stored/);
    assert.match(String((await get(path, cacheable)).headers['cache-status']), /^tidegate; hit/);
    assert.equal(seen(path), 5);
  });

  test('a response being collected keeps its own fields while responses for other keys arrive on its worker', async () => {
    // A's head arrives, its body 400 ms later; meanwhile 8 responses for other keys (on
    // both workers) are evaluated. A's entry must be stored with A's fields.
    const a = get('/collect/a', { 'x-resp': JSON.stringify({ 'cache-control': 'max-age=60', 'x-which': 'A' }), 'x-body-delay': '400', 'x-body': 'the body of A' });
    await new Promise((r) => setTimeout(r, 100));
    const others = await Promise.all(Array.from({ length: 8 }, (_, n) => get(`/collect/b${n}`, { 'x-resp': JSON.stringify({ 'cache-control': 'no-store', 'x-which': `B${n}`, etag: `"b${n}"` }) })));
    for (const o of others) assert.match(String(o.headers['cache-status']), /detail=no-store/);
    const first = await a;
    assert.equal(first.body, 'the body of A');
    assert.match(String(first.headers['cache-status']), /stored/);
    const hit = await get('/collect/a');
    assert.match(String(hit.headers['cache-status']), /^tidegate; hit/);
    assert.equal(hit.body, 'the body of A');
    assert.equal(hit.headers['x-which'], 'A');
    assert.equal(hit.headers.etag, undefined, 'no field of another response');
  });

  test('ttl.default 0: only responses with a lifetime or a validator are stored; the rest are refused for want of freshness', async () => {
    const none = await get('/explicit/none');
    assert.equal(none.headers['cache-status'], 'tidegate; fwd=uri-miss; fwd-status=200; detail=no-freshness');
    assert.match(String((await get('/explicit/none')).headers['cache-status']), /fwd=uri-miss; fwd-status=200; detail=no-freshness/);
    assert.equal(seen('/explicit/none'), 2);
    const lifetime = { 'x-resp': JSON.stringify({ 'cache-control': 'max-age=60' }) };
    assert.match(String((await get('/explicit/max-age', lifetime)).headers['cache-status']), /stored/);
    assert.match(String((await get('/explicit/max-age', lifetime)).headers['cache-status']), /^tidegate; hit/);
    // A validator alone: stored, and revalidated on every use (it is never fresh).
    const validator = { 'x-resp': JSON.stringify({ etag: '"v1"' }) };
    assert.match(String((await get('/explicit/etag', validator)).headers['cache-status']), /stored/);
    assert.match(String((await get('/explicit/etag', validator)).headers['cache-status']), /fwd=stale/);
    // A refusal with a reason of its own keeps that reason.
    const cookie = { 'x-resp': JSON.stringify({ 'set-cookie': 'a=1' }) };
    assert.match(String((await get('/explicit/cookie', cookie)).headers['cache-status']), /detail=set-cookie/);
    assert.match(String((await get('/explicit/auth', { authorization: 'Bearer x' })).headers['cache-status']), /detail=authorization/);
  });

  test('a key asked for once whose response is not storable leaves no mark (a stream of distinct uncacheable URLs takes no records)', async () => {
    const entries = async (): Promise<number> => ((await (await request(`${gw.adminUrl}/v1/cache`)).body.json()) as { entries: number }).entries;
    const e0 = await entries();
    for (let i = 0; i < 20; i++) assert.match(String((await get(`/once/${i}`, { 'x-resp': JSON.stringify({ 'cache-control': 'no-store' }) })).headers['cache-status']), /detail=no-store/);
    assert.equal(await entries(), e0, 'no record was taken');
  });
});
