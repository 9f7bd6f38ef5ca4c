// Upstream failure handling: 502/504 with stable codes, retries only when safe
// (RFC 9110 §9.2.2), and never a clean-looking truncated response.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request, Client } from 'undici';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { deadPort, startRawUpstream, startUpstream, type TestUpstream } from '../helpers/upstream.js';

type Raw = Awaited<ReturnType<typeof startRawUpstream>>;

async function status(gw: RunningGateway): Promise<{ workers: { retries: number; upstreamErrors: number }[] }> {
  const r = await request(`${gw.adminUrl}/status`);
  return (await r.body.json()) as { workers: { retries: number; upstreamErrors: number }[] };
}

describe('upstream failures', () => {
  let live: TestUpstream;
  let resetter: Raw; // reads the request, then resets the connection
  let silent: Raw; // accepts and never answers
  let halfBody: Raw; // promises 100000 bytes, sends 1000, closes
  let silentClosed = 0;
  let gw: RunningGateway;
  let dead: number;

  before(async () => {
    live = await startUpstream();
    dead = await deadPort();
    resetter = await startRawUpstream((s) => s.once('data', () => s.resetAndDestroy()));
    silent = await startRawUpstream((s) => {
      s.resume(); // read (and ignore) the request, so the gateway's FIN is seen
      s.on('close', () => silentClosed++);
    });
    halfBody = await startRawUpstream((s) =>
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n' + 'a'.repeat(1000));
        setTimeout(() => s.destroy(), 100);
      }),
    );
    gw = await startGateway(
      baseConfig([], {
        upstreams: {
          flaky: { discovery: { type: 'static', endpoints: [`127.0.0.1:${dead}`, live.address] } },
          deadonly: { discovery: { type: 'static', endpoints: [`127.0.0.1:${dead}`] } },
          resetting: { discovery: { type: 'static', endpoints: [resetter.address, live.address] } },
          silent: { discovery: { type: 'static', endpoints: [silent.address] }, timeouts: { response: '300ms' }, retries: 0 },
          half: { discovery: { type: 'static', endpoints: [halfBody.address] }, retries: 0 },
        },
        routes: [
          { match: { path: '/flaky' }, upstream: 'flaky' },
          { match: { path: '/dead' }, upstream: 'deadonly' },
          { match: { path: '/reset' }, upstream: 'resetting' },
          { match: { path: '/silent' }, upstream: 'silent' },
          { match: { path: '/half' }, upstream: 'half' },
        ],
      }),
    );
  });
  after(async () => {
    await gw.stop();
    await Promise.all([live.close(), resetter.close(), silent.close(), halfBody.close()]);
  });

  test('connection refused: retried on another endpoint, for any method (nothing was sent)', async () => {
    for (let i = 0; i < 6; i++) {
      const method = i % 2 ? 'POST' : 'GET';
      const r = await request(`${gw.url}/flaky/${i}`, { method, body: method === 'POST' ? 'x' : undefined });
      assert.equal(r.statusCode, 200, `${method} #${i}`);
      await r.body.dump();
    }
    const s = await status(gw);
    assert.ok(s.workers.reduce((n, w) => n + w.retries, 0) >= 3, 'about half the requests hit the dead endpoint first');
  });

  test('connection refused with no other endpoint: 502 TG_ERR_UPSTREAM_CONNECT', async () => {
    const r = await request(`${gw.url}/dead`);
    assert.equal(r.statusCode, 502);
    const body = (await r.body.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'TG_ERR_UPSTREAM_CONNECT');
    assert.ok(r.headers['x-request-id']);
  });

  test('reset after the request was sent: GET is retried, POST is not', async () => {
    const before = live.requests.length;
    let gets502 = 0;
    for (let i = 0; i < 4; i++) {
      const r = await request(`${gw.url}/reset/get${i}`);
      if (r.statusCode !== 200) gets502++;
      await r.body.dump();
    }
    assert.equal(gets502, 0, 'idempotent requests are retried on the other endpoint');
    const posts: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await request(`${gw.url}/reset/post${i}`, { method: 'POST', body: 'payload' });
      posts.push(r.statusCode);
      if (r.statusCode === 502) assert.equal(((await r.body.json()) as { error: { code: string } }).error.code, 'TG_ERR_UPSTREAM_RESET');
      else await r.body.dump();
    }
    assert.ok(posts.includes(502), 'a POST that reached the resetting endpoint fails');
    const retriedPosts = live.requests.slice(before).filter((q) => q.method === 'POST').length;
    assert.equal(retriedPosts, posts.filter((s) => s === 200).length, 'every POST the live endpoint saw was its first attempt, none a retry');
  });

  test('response timeout: 504 TG_ERR_UPSTREAM_TIMEOUT and the upstream socket is destroyed', async () => {
    const t0 = Date.now();
    const r = await request(`${gw.url}/silent`);
    assert.equal(r.statusCode, 504);
    assert.equal(((await r.body.json()) as { error: { code: string } }).error.code, 'TG_ERR_UPSTREAM_TIMEOUT');
    // undici's timers are coarse (measured: a 300 ms headersTimeout fires after ~1 s).
    assert.ok(Date.now() - t0 >= 250);
    for (let i = 0; i < 40 && silentClosed === 0; i++) await new Promise((res) => setTimeout(res, 50));
    assert.ok(silentClosed >= 1, 'the timed-out upstream connection was closed');
  });

  test('upstream closes mid-body: the client connection is aborted, not cleanly ended', async () => {
    const c = new Client(gw.url);
    try {
      const r = await c.request({ path: '/half', method: 'GET' });
      assert.equal(r.statusCode, 200);
      await assert.rejects(r.body.arrayBuffer(), (err: Error & { code?: string }) => {
        assert.ok(['UND_ERR_SOCKET', 'ECONNRESET', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH'].includes(err.code ?? ''), `${err.code} ${err.message}`);
        return true;
      });
    } finally {
      await c.destroy();
    }
  });
});
