// pool.pipelining through a real gateway (two workers) to a raw upstream that answers
// pipelined requests in order, each response naming its request (method and path) so
// that a response given to the wrong request shows. Then the upstream starts closing
// connections behind the first response of a pipelined read: every request is still
// answered with its own response, each worker's pool stops pipelining, and the
// fallback shows in the log, the metrics and /status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { request } from 'undici';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { until } from '../helpers/poll.js';

interface Seen {
  requests: number;
  /** requests that arrived with another still unanswered on their connection */
  pipelined: number;
  /** reads that carried more than one request */
  batchedReads: number;
}

/** `closeBehindFirst`: a read with several requests gets the first answered, then the connection closed */
async function orderedUpstream(): Promise<{ port: number; seen: Seen; closeBehindFirst: boolean; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const u = { port: 0, seen: { requests: 0, pipelined: 0, batchedReads: 0 }, closeBehindFirst: false, close: async () => {} };
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      let out = '';
      let n = 0;
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = buf.slice(0, end);
        const cl = /\r\ncontent-length: (\d+)/i.exec(head);
        const len = cl === null ? 0 : Number(cl[1]);
        if (buf.length < end + 4 + len) break;
        buf = buf.slice(end + 4 + len);
        const [method, path] = head.split(' ') as [string, string];
        u.seen.requests++;
        if (++n > 1) u.seen.pipelined++;
        if (n > 1 && u.closeBehindFirst) {
          sock.end(out);
          return;
        }
        const body = `${method} ${path}`;
        // (a HEAD response says the length its GET would have, and sends no body)
        out += `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${method === 'HEAD' ? '' : body}`;
      }
      if (n > 1) u.seen.batchedReads++;
      if (out.length > 0) sock.write(out, 'latin1');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  u.port = (server.address() as { port: number }).port;
  u.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  };
  return u;
}

interface PipeStatus {
  depth: number;
  pipelined: number;
  batchedHeads: number;
  fallbacks: number;
  workers: { worker: number; pipelined: number; batchedHeads: number; fallbacks: number; lastAnomaly: string | null; oneAtATime: boolean }[];
}

async function pipeStatus(adminUrl: string): Promise<PipeStatus> {
  const s = (await (await request(`${adminUrl}/status`)).body.json()) as { upstreams: { pipelining: PipeStatus }[] };
  return s.upstreams[0]!.pipelining;
}

/** `total` requests, `concurrency` at a time; GETs, every 5th a HEAD, every 7th a POST with a body */
async function load(url: string, total: number, concurrency: number, tag: string): Promise<string[]> {
  const wrong: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const method = i % 7 === 3 ? 'POST' : i % 5 === 1 ? 'HEAD' : 'GET';
        const path = `/${tag}/${i}`;
        const r = await request(`${url}${path}`, { method, ...(method === 'POST' ? { body: 'x'.repeat(100) } : {}) });
        const body = await r.body.text();
        const want = method === 'HEAD' ? '' : `${method} ${path}`;
        if (r.statusCode !== 200 || body !== want) wrong.push(`${method} ${path}: ${r.statusCode} ${JSON.stringify(body.slice(0, 80))}`);
      }
    }),
  );
  return wrong;
}

test('pipelining across two workers: every response is its own request\'s; an upstream that breaks the order stops it, logged and counted', { timeout: 60_000 }, async () => {
  const up = await orderedUpstream();
  const gw = await startGateway(
    baseConfig([`127.0.0.1:${up.port}`], {
      workers: 2,
      upstreams: { app: { discovery: { type: 'static', endpoints: [`127.0.0.1:${up.port}`] }, timeouts: { connect: '1s', response: '5s' }, pool: { connections: 2, pipelining: 8 } } },
    }),
  );
  try {
    const workers0 = ((await (await request(`${gw.adminUrl}/status`)).body.json()) as { workers: { requests: number }[] }).workers.map((w) => w.requests);
    const wrong = await load(gw.url, 1500, 48, 'a');
    assert.deepEqual(wrong, [], 'each response was its own request\'s');
    const workers1 = ((await (await request(`${gw.adminUrl}/status`)).body.json()) as { workers: { requests: number }[] }).workers.map((w) => w.requests);
    assert.equal(workers1.length, 2);
    workers1.forEach((n, i) => assert.ok(n - workers0[i]! > 50, `worker ${i} served traffic (${n - workers0[i]!})`));
    assert.ok(up.seen.pipelined > 0, `the upstream saw pipelined requests (${JSON.stringify(up.seen)})`);
    const s = await pipeStatus(gw.adminUrl);
    assert.equal(s.depth, 8);
    assert.equal(s.fallbacks, 0);
    for (const w of s.workers) assert.ok(w.pipelined > 0, `worker ${w.worker} pipelined (${JSON.stringify(s.workers)})`);
    assert.ok(s.batchedHeads > 0, 'some request heads shared a write');
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /^tidegate_upstream_pipelined_requests_total\{upstream="app",worker="\d+"\} [1-9]/m);

    // The upstream now drops whatever was pipelined behind a first response.
    up.closeBehindFirst = true;
    const after = await until(
      'both workers stop pipelining',
      async () => ({ wrong: await load(gw.url, 200, 48, 'b'), s: await pipeStatus(gw.adminUrl) }),
      (x) => {
        assert.deepEqual(x.wrong, [], 'answered right while the upstream closes mid-pipeline');
        return x.s.workers.every((w) => w.fallbacks > 0);
      },
      30_000,
    );
    for (const w of after.s.workers) {
      assert.equal(w.lastAnomaly, 'closed-with-requests-outstanding');
      assert.equal(w.oneAtATime, true);
    }
    const ev = await until('the fallback is logged', () => gw.logs.filter((l) => l.event === 'upstream-pipelining-fallback'), (l) => l.length >= 2);
    assert.equal(ev[0]!.upstream, 'app');
    assert.equal(ev[0]!.anomaly, 'closed-with-requests-outstanding');
    assert.match(await (await request(`${gw.adminUrl}/metrics`)).body.text(), /^tidegate_upstream_pipeline_fallbacks_total\{upstream="app",worker="\d+"\} [1-9]/m);
    // One at a time now: nothing more is pipelined.
    const before = up.seen.pipelined;
    assert.deepEqual(await load(gw.url, 300, 48, 'c'), []);
    assert.equal(up.seen.pipelined, before, 'no request was pipelined during the fallback');
  } finally {
    await gw.stop();
    await up.close();
  }
});
