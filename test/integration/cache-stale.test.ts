// Stale serving (RFC 5861) through the real gateway: stale-while-revalidate answers at
// once and refreshes once in the background; stale-if-error answers from the stale
// entry when the upstream answers 5xx and when it is gone altogether; must-revalidate
// forbids both.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { until } from '../helpers/poll.js';

describe('stale serving', () => {
  let up: TestUpstream;
  let gw: RunningGateway;
  const hits = new Map<string, number>();
  const seen = (p: string): number => hits.get(p) ?? 0;
  /** paths whose next answer is a 503 */
  const failing = new Set<string>();

  const swrForwarded: (string | undefined)[] = [];
  before(async () => {
    up = await startUpstream((req, res) => {
      const path = req.url!;
      hits.set(path, seen(path) + 1);
      if (path === '/swr') swrForwarded.push(req.headers['x-forwarded-for'] as string | undefined);
      if (failing.has(path)) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('down');
        return;
      }
      // The refreshed /swr lives a minute: on a loaded machine a one-second entry could go
      // stale again before the test reads it, and a second refresh would be right then.
      const cc = path.startsWith('/mr') ? 'max-age=1, must-revalidate' : path === '/swr' && seen(path) > 1 ? 'max-age=60' : 'max-age=1';
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': cc });
      res.end(`${path} v${seen(path)}`);
    });
    const cfg = baseConfig([up.address], {
      routes: [{ match: { path: '/' }, upstream: 'app', cache: { staleWhileRevalidate: '20s', staleIfError: '1m' } }],
    });
    (cfg.upstreams as { app: { retries?: number } }).app.retries = 0;
    gw = await startGateway(cfg);
  });

  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  const get = async (path: string): Promise<{ status: number; cs: string; body: string }> => {
    const r = await request(`${gw.url}${path}`);
    return { status: r.statusCode, cs: String(r.headers['cache-status']), body: await r.body.text() };
  };

  test('stale-while-revalidate serves at once and refreshes once in the background; must-revalidate is never served stale', async () => {
    for (const p of ['/swr', '/mr']) assert.equal((await get(p)).status, 200);
    await new Promise((r) => setTimeout(r, 2100)); // every entry is stale now (max-age=1)

    // stale-while-revalidate: the stale body at once, one background refresh, then the new body.
    const a = await get('/swr');
    assert.equal(a.body, '/swr v1');
    assert.match(a.cs, /detail=stale-while-revalidate/);
    const b = await get('/swr');
    assert.ok(b.body === '/swr v1' || b.body === '/swr v2', `the stale entry, or already the refreshed one: ${b.body}`);
    await until('background refresh reached the upstream', () => seen('/swr'), (n) => n >= 2);
    const c = await until('refreshed entry served', () => get('/swr'), (x) => x.body === '/swr v2');
    assert.match(c.cs, /^tidegate; hit/);
    assert.equal(seen('/swr'), 2, 'exactly one refresh for several stale hits');
    // The refresh is sent after its request was answered from the cache: it carries that request's forwarding fields.
    assert.deepEqual(swrForwarded, ['127.0.0.1', '127.0.0.1'], 'the fill and the background refresh were forwarded with X-Forwarded-For');

    // must-revalidate: never served stale; with the upstream failing the client sees the failure.
    failing.add('/mr');
    const mr = await get('/mr');
    assert.equal(mr.status, 503);
  });

  test('stale-if-error after the stale-while-revalidate window: a 5xx and a dead upstream are answered from the entry', async () => {
    // A second gateway whose route has no stale-while-revalidate, so the stale entry goes upstream first.
    const up2 = await startUpstream((req, res) => {
      if (req.url === '/sie5xx' && failing.has('/2/sie5xx')) {
        res.writeHead(503);
        res.end('down');
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=1', 'content-type': 'text/plain' });
      res.end(`${req.url} fresh`);
    });
    const cfg = baseConfig([up2.address], { routes: [{ match: { path: '/' }, upstream: 'app', cache: { staleIfError: '1m' } }] });
    (cfg.upstreams as { app: { retries?: number } }).app.retries = 0;
    const gw2 = await startGateway(cfg);
    try {
      const g = async (p: string): Promise<{ status: number; cs: string; body: string }> => {
        const r = await request(`${gw2.url}${p}`);
        return { status: r.statusCode, cs: String(r.headers['cache-status']), body: await r.body.text() };
      };
      assert.equal((await g('/sie5xx')).status, 200);
      assert.equal((await g('/siedown')).status, 200);
      await new Promise((r) => setTimeout(r, 2100));
      failing.add('/2/sie5xx');
      const e = await g('/sie5xx');
      assert.equal(e.status, 200);
      assert.equal(e.body, '/sie5xx fresh');
      assert.match(e.cs, /detail=stale-if-error/);
      await up2.close(); // the upstream is gone: connection refused
      const d = await g('/siedown');
      assert.equal(d.status, 200);
      assert.equal(d.body, '/siedown fresh');
      assert.match(d.cs, /detail=stale-if-error/);
      const miss = await g('/never-stored');
      assert.equal(miss.status, 502, 'nothing stale to serve: the error stands');
    } finally {
      await gw2.stop();
    }
  });
  test('stale-if-busy: at the upstream\'s concurrency limit a stale entry answers instead of 503 TG_ERR_SHED', async () => {
    const up3 = await startUpstream((req, res) => {
      const hold = req.url === '/hold';
      setTimeout(() => {
        res.writeHead(200, { 'cache-control': hold ? 'no-store' : 'max-age=1', 'content-type': 'text/plain' });
        res.end(`${req.url} once`);
      }, hold ? 2500 : 0);
    });
    const cfg = baseConfig([up3.address], { routes: [{ match: { path: '/' }, upstream: 'app', cache: { staleIfBusy: '1m' } }] });
    (cfg.upstreams as { app: Record<string, unknown> }).app.concurrency = { limit: 1 };
    const gw3 = await startGateway(cfg);
    try {
      const g = async (p: string): Promise<{ status: number; cs: string; body: string }> => {
        const r = await request(`${gw3.url}${p}`);
        return { status: r.statusCode, cs: String(r.headers['cache-status']), body: await r.body.text() };
      };
      assert.equal((await g('/busy')).status, 200);
      await new Promise((r) => setTimeout(r, 2100)); // stale now
      const holding = g('/hold'); // takes the one place of the limit for 2.5 s
      await until('the hold request is in flight at the limit', async () => ((await (await request(`${gw3.adminUrl}/status`)).body.json()) as { protection: { upstreams: { concurrency?: { inFlight: number } }[] } }).protection.upstreams[0]?.concurrency?.inFlight ?? 0, (n) => n >= 1);
      const b = await g('/busy');
      assert.equal(b.status, 200);
      assert.equal(b.body, '/busy once');
      assert.match(b.cs, /detail=stale-if-busy/);
      const none = await g('/not-stored');
      assert.equal(none.status, 503, 'nothing stale: the limit answers');
      assert.equal((await holding).status, 200);
    } finally {
      await gw3.stop();
      await up3.close();
    }
  });
});
