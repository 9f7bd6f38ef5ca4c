// The hot-path upstream pool against real servers on loopback: keep-alive reuse, the
// connection bound and its queue, the keep-alive race (retried once, only when RFC 9110
// §9.2.2 allows), bytes on an idle connection, timeouts, backpressure, aborts, and a
// streamed request body.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { H1Pool, type H1PoolOptions } from '../../src/worker/upstream/h1-pool.js';
import { UpstreamErrorCode, type RequestBody } from '../../src/worker/upstream/upstream-handler.js';
import { Collect } from '../helpers/collect-handler.js';

const OPTS: H1PoolOptions = { connections: 4, keepAliveTimeout: 4000, connectTimeout: 1000, headersTimeout: 5000, bodyTimeout: 5000 };

interface Upstream {
  port: number;
  server: Server;
  connections: number;
  requests: string[];
  close(): Promise<void>;
}

/** A raw server; `answer` gets each request head (and the socket) and writes what it likes. */
async function upstream(answer: (head: string, sock: Socket, nth: number) => void): Promise<Upstream> {
  const u: Upstream = { port: 0, server: null as unknown as Server, connections: 0, requests: [], close: async () => {} };
  const sockets = new Set<Socket>();
  u.server = createServer((sock) => {
    u.connections++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let buf = '';
    let nth = 0;
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        let rest = buf.slice(end + 4);
        const cl = /\r\ncontent-length: (\d+)/i.exec(head);
        let full = head;
        if (cl !== null) {
          const n = Number(cl[1]);
          if (rest.length < n) return;
          full += '\r\n\r\n' + rest.slice(0, n);
          rest = rest.slice(n);
        } else if (/\r\ntransfer-encoding: chunked/i.test(head)) {
          const last = rest.indexOf('0\r\n\r\n');
          if (last < 0) return;
          full += '\r\n\r\n' + rest.slice(0, last + 5);
          rest = rest.slice(last + 5);
        }
        buf = rest;
        u.requests.push(full);
        answer(full, sock, ++nth);
      }
    });
  });
  await new Promise<void>((r) => u.server.listen(0, '127.0.0.1', r));
  u.port = (u.server.address() as { port: number }).port;
  u.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => u.server.close(r));
  };
  return u;
}

const okResponse = (body: string, extra = ''): string => `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

function send(pool: H1Pool, method = 'GET', path = '/', body: RequestBody = null, headers: string[] = ['host', 'x']): Collect {
  const c = new Collect();
  pool.dispatch(c, method, path, headers, body);
  return c;
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

async function setup(answer: (head: string, sock: Socket, nth: number) => void, opts: Partial<H1PoolOptions> = {}): Promise<{ u: Upstream; pool: H1Pool }> {
  const u = await upstream(answer);
  const pool = new H1Pool(`127.0.0.1:${u.port}`, { ...OPTS, ...opts });
  cleanups.push(async () => {
    await pool.destroy();
    await u.close();
  });
  return { u, pool };
}

describe('h1 pool', () => {
  test('sequential requests reuse one keep-alive connection; the request head is as sent', async () => {
    const { u, pool } = await setup((_h, s, n) => s.write(okResponse(`r${n}`)));
    for (let i = 1; i <= 10; i++) {
      const r = await send(pool, 'GET', `/p?i=${i}`, null, ['host', 'example.test', 'x-a', 'b']).done;
      assert.equal(r.error, null);
      assert.equal(r.body, `r${i}`);
    }
    assert.equal(u.connections, 1);
    assert.match(u.requests[0]!, /^GET \/p\?i=1 HTTP\/1\.1\r\nhost: example\.test\r\nx-a: b$/);
    assert.equal(pool.size, 1);
  });

  test('at most `connections` at once; the rest wait in order and are all answered', async () => {
    const pending: Socket[] = [];
    const { u, pool } = await setup((h, s) => {
      pending.push(s);
      setTimeout(() => s.write(okResponse(/GET (\S+)/.exec(h)![1]!)), 30);
    }, { connections: 2 });
    const all = Array.from({ length: 8 }, (_, i) => send(pool, 'GET', `/${i}`));
    assert.equal(pool.queued, 6);
    const rs = await Promise.all(all.map((c) => c.done));
    assert.deepEqual(rs.map((r) => r.body), all.map((_, i) => `/${i}`));
    assert.equal(u.connections, 2);
  });

  test('the keep-alive race: a GET on a connection the upstream dropped is sent again on a new one', async () => {
    // The second request on each connection is met with a close, as an upstream whose
    // idle timer fired just as the request arrived.
    const { u, pool } = await setup((_h, s, n) => (n === 1 ? s.write(okResponse('first')) : s.destroy()));
    assert.equal((await send(pool).done).body, 'first');
    const c = send(pool, 'GET', '/again');
    const r = await c.done;
    assert.equal(r.error, null);
    assert.equal(r.body, 'first'); // answered as the first request of a new connection
    assert.equal(u.connections, 2);
    assert.equal(c.connects, 2, 'the handler was handed the new connection');
  });

  test('…but a POST is not repeated (RFC 9110 §9.2.2): it fails as a reset', async () => {
    const { u, pool } = await setup((_h, s, n) => (n === 1 ? s.write(okResponse('first')) : s.destroy()));
    assert.equal((await send(pool).done).body, 'first');
    const r = await send(pool, 'POST', '/x', Buffer.from('data')).done;
    assert.ok(r.error !== null);
    assert.ok(r.error.code === UpstreamErrorCode.Closed || r.error.code === 'ECONNRESET', String(r.error.code));
    assert.equal(u.connections, 1);
  });

  test('bytes on an idle connection close it; the next request goes on a new one', async () => {
    const { u, pool } = await setup((_h, s, n) => {
      s.write(okResponse(`r${n}`));
      if (n === 1) setTimeout(() => s.write('HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED'), 20);
    });
    assert.equal((await send(pool).done).body, 'r1');
    const deadline = Date.now() + 5000;
    while (pool.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(pool.size, 0, 'the dirty connection was closed');
    const r = await send(pool).done;
    assert.equal(r.body, 'r1');
    assert.equal(u.connections, 2);
  });

  test('no response head within headersTimeout: TG_UP_HEADERS_TIMEOUT', async () => {
    const { pool } = await setup(() => {}, { headersTimeout: 200 });
    const t0 = performance.now();
    const r = await send(pool).done;
    const took = performance.now() - t0;
    assert.equal(r.error?.code, UpstreamErrorCode.HeadersTimeout);
    assert.ok(took >= 150 && took < 3000, `${took} ms`);
  });

  test('a body that stalls for bodyTimeout: TG_UP_BODY_TIMEOUT, after the head was delivered', async () => {
    const { pool } = await setup((_h, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'), { bodyTimeout: 200 });
    const r = await send(pool).done;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'abc');
    assert.equal(r.error?.code, UpstreamErrorCode.BodyTimeout);
  });

  test('backpressure: a handler that holds the body gets it all after resuming, and the connection is reused', async () => {
    const big = 'x'.repeat(256 * 1024);
    const { u, pool } = await setup((_h, s) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' + `${(big.length).toString(16)}\r\n${big}\r\n5\r\nhello\r\n0\r\n\r\n`));
    const c = new Collect();
    c.holdTimes = 3;
    pool.dispatch(c, 'GET', '/', ['host', 'x'], null);
    const r = await c.done;
    assert.equal(r.error, null);
    assert.equal(r.body, big + 'hello');
    assert.equal((await send(pool).done).error, null);
    assert.equal(u.connections, 1);
  });

  test('abort: in flight it closes the connection; queued it withdraws the request; both call onError at once', async () => {
    const { pool } = await setup(() => {}, { connections: 1 });
    const a = send(pool);
    const b = send(pool);
    assert.equal(pool.queued, 1);
    let bErr: string | undefined;
    void b.done.then((r) => (bErr = r.error?.message));
    b.abort!(new Error('b gone'));
    await Promise.resolve();
    assert.equal(bErr, 'b gone');
    assert.equal(pool.queued, 0);
    while (a.abort === null) await new Promise((r) => setTimeout(r, 5));
    a.abort(new Error('a gone'));
    assert.equal((await a.done).error?.message, 'a gone');
    assert.equal(pool.size, 0);
  });

  test('a streamed body without a length goes out chunked; a buffered one with Content-Length', async () => {
    const { u, pool } = await setup((h, s) => s.write(okResponse(String(h.length))));
    const stream = Readable.from([Buffer.from('hello '), Buffer.from('world')]);
    assert.equal((await send(pool, 'POST', '/s', stream).done).error, null);
    assert.match(u.requests[0]!, /\r\ntransfer-encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n$/);
    assert.equal((await send(pool, 'PUT', '/b', Buffer.from('abc')).done).error, null);
    assert.match(u.requests[1]!, /\r\ncontent-length: 3\r\n\r\nabc$/);
    assert.equal((await send(pool, 'POST', '/e').done).error, null);
    assert.match(u.requests[2]!, /^POST \/e HTTP\/1\.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n$/);
    assert.equal(u.connections, 1);
  });

  test('a malformed response fails as TG_UP_PROTOCOL and the connection is not reused', async () => {
    let n = 0;
    const { u, pool } = await setup((_h, s) => s.write(++n === 1 ? 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab' : okResponse('fine')));
    assert.equal((await send(pool).done).error?.code, UpstreamErrorCode.Protocol);
    assert.equal((await send(pool).done).body, 'fine');
    assert.equal(u.connections, 2);
  });

  test('close() lets queued and in-flight requests finish, then resolves with no connection left', async () => {
    const { pool } = await setup((_h, s) => setTimeout(() => s.write(okResponse('late')), 30), { connections: 1 });
    const a = send(pool);
    const b = send(pool);
    await pool.close();
    assert.equal((await a.done).body, 'late');
    assert.equal((await b.done).body, 'late');
    assert.equal(pool.size, 0);
    assert.equal((await send(pool).done).error?.code, UpstreamErrorCode.Destroyed);
  });
});
