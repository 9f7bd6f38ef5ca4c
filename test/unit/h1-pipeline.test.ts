// pool.pipelining against raw loopback upstreams that record what each read carried:
// several requests on one connection in one write, responses matched in order (HEAD
// framing by the request's method), requests with a body never pipelined, the upstream
// closing mid-pipeline (followers sent again once, never given another's response),
// anomalies stopping pipelining, aborts in and at the head of a pipeline, timeouts.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { H1Pool, type H1PoolOptions, type PipelineCounters } from '../../src/worker/upstream/h1-pool.js';
import { UpstreamErrorCode, type RequestBody } from '../../src/worker/upstream/upstream-handler.js';
import { Collect } from '../helpers/collect-handler.js';
import { PipelineAnomaly } from '../../src/shm/layout.js';

interface Req {
  method: string;
  path: string;
  /** connection number at the server (1-based) */
  conn: number;
  /** 1-based request number on that connection */
  nth: number;
  /** requests in the same read */
  inRead: number;
  /** responses this connection still owed when the request arrived */
  owed: number;
}

interface Upstream {
  port: number;
  connections: number;
  requests: Req[];
  /** per read: how many requests it completed */
  reads: number[];
  close(): Promise<void>;
}

/**
 * A raw server. `answer` gets each request and returns the response to write (all the
 * responses for one read go out in one write, as nginx does), or null to answer later
 * itself through `sock`.
 */
async function upstream(answer: (r: Req, sock: Socket) => string | null): Promise<Upstream> {
  const u: Upstream = { port: 0, connections: 0, requests: [], reads: [], close: async () => {} };
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    const conn = ++u.connections;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let buf = '';
    let nth = 0;
    let answered = 0;
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      const got: Req[] = [];
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = buf.slice(0, end);
        let rest = buf.slice(end + 4);
        const cl = /\r\ncontent-length: (\d+)/i.exec(head);
        if (cl !== null) {
          const n = Number(cl[1]);
          if (rest.length < n) break;
          rest = rest.slice(n);
        }
        buf = rest;
        const [method, path] = head.split(' ') as [string, string];
        got.push({ method, path, conn, nth: ++nth, inRead: 0, owed: nth - 1 - answered });
      }
      if (got.length > 0) u.reads.push(got.length);
      let out = '';
      for (const r of got) {
        r.inRead = got.length;
        u.requests.push(r);
        const s = answer(r, sock);
        if (s !== null) {
          out += s;
          answered++;
        }
      }
      if (out.length > 0 && !sock.destroyed) sock.write(out, 'latin1');
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

/** 200 whose body names the request, so a response given to the wrong request shows */
const named = (r: Req, extra = ''): string => `HTTP/1.1 200 OK\r\nContent-Length: ${r.method === 'HEAD' ? 99 : Buffer.byteLength(r.path)}\r\n${extra}\r\n${r.method === 'HEAD' ? '' : r.path}`;

const OPTS: H1PoolOptions = { connections: 1, keepAliveTimeout: 4000, connectTimeout: 1000, headersTimeout: 5000, bodyTimeout: 5000, pipelining: 4 };

class Counts implements PipelineCounters {
  pipelinedN = 0;
  batchedN = 0;
  anomalies: number[] = [];
  pipelined(): void {
    this.pipelinedN++;
  }
  batched(heads: number): void {
    this.batchedN += heads;
  }
  fallback(anomaly: number): void {
    this.anomalies.push(anomaly);
  }
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

async function setup(answer: (r: Req, sock: Socket) => string | null, opts: Partial<H1PoolOptions> = {}): Promise<{ u: Upstream; pool: H1Pool; counts: Counts }> {
  const u = await upstream(answer);
  const counts = new Counts();
  const pool = new H1Pool(`127.0.0.1:${u.port}`, { ...OPTS, counters: counts, ...opts });
  cleanups.push(async () => {
    await pool.destroy();
    await u.close();
  });
  return { u, pool, counts };
}

function send(pool: H1Pool, path: string, method = 'GET', body: RequestBody = null): Collect {
  const c = new Collect();
  pool.dispatch(c, method, path, ['host', 'x'], body);
  return c;
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function bodies(cs: Collect[]): Promise<string[]> {
  const rs = await Promise.all(cs.map((c) => c.done));
  for (const r of rs) assert.equal(r.error, null, String(r.error));
  return rs.map((r) => r.body);
}

describe('h1 pool pipelining', () => {
  test('requests dispatched in one turn share one connection and arrive in one read; responses matched in order', async () => {
    const { u, pool, counts } = await setup((r) => named(r));
    const paths = ['/a', '/b', '/c', '/d'];
    assert.deepEqual(await bodies(paths.map((p) => send(pool, p))), paths);
    assert.equal(u.connections, 1);
    assert.deepEqual(u.reads, [4], 'four request heads in one read at the upstream');
    assert.deepEqual(u.requests.map((r) => r.owed), [0, 1, 2, 3]);
    assert.equal(pool.pipelined, 3);
    assert.equal(pool.batchedHeads, 4);
    assert.equal(counts.pipelinedN, 3);
    assert.equal(counts.batchedN, 4);
    // Again on the now idle connection: the first takes it, the rest join its write.
    const more = ['/e', '/f', '/g'];
    assert.deepEqual(await bodies(more.map((p) => send(pool, p))), more);
    assert.equal(u.connections, 1);
    assert.deepEqual(u.reads, [4, 3]);
    // Beyond the depth (4) the rest wait and follow as responses come back.
    const many = Array.from({ length: 10 }, (_, i) => `/m${i}`);
    assert.deepEqual(await bodies(many.map((p) => send(pool, p))), many);
    assert.equal(u.connections, 1);
    assert.ok(Math.max(...u.requests.map((r) => r.owed)) <= 3, 'never more than 4 outstanding');
    assert.equal(counts.anomalies.length, 0);
  });

  test('HEAD in a pipeline: its response has no body whatever Content-Length says, and the next response is the next request\'s', async () => {
    const { pool } = await setup((r) => named(r));
    const cs = [send(pool, '/a'), send(pool, '/h', 'HEAD'), send(pool, '/c'), send(pool, '/h2', 'HEAD'), send(pool, '/e')];
    assert.deepEqual(await bodies(cs), ['/a', '', '/c', '', '/e']);
    assert.deepEqual(cs.map((c) => c.status), [200, 200, 200, 200, 200]);
    assert.equal(pool.fallbacks, 0);
  });

  test('a POST (a body) is never pipelined: it goes out only on a connection with nothing outstanding', async () => {
    const { u, pool } = await setup((r) => named(r));
    const cs = [send(pool, '/a'), send(pool, '/b'), send(pool, '/p', 'POST', Buffer.from('data')), send(pool, '/c'), send(pool, '/o', 'OPTIONS')];
    assert.deepEqual(await bodies(cs), ['/a', '/b', '/p', '/c', '/o']);
    const post = u.requests.find((r) => r.method === 'POST')!;
    assert.equal(post.owed, 0, 'nothing was outstanding when the POST arrived');
    assert.equal(post.inRead, 1);
    assert.equal(u.requests.filter((r) => r.conn === post.conn && r.nth === post.nth + 1 && r.owed > 0).length, 0, 'nothing was pipelined behind the POST');
    assert.equal(u.connections, 1);
  });

  test('the upstream closing with requests outstanding: those are sent once more on a fresh connection and answered right; pipelining stops', async () => {
    // Connection 1 answers its first request and closes without saying so.
    const { u, pool, counts } = await setup((r, sock) => {
      if (r.conn === 1 && r.nth > 1) {
        sock.destroy();
        return null;
      }
      return named(r);
    });
    const paths = ['/a', '/b', '/c', '/d'];
    const cs = paths.map((p) => send(pool, p));
    assert.deepEqual(await bodies(cs), paths);
    assert.ok(u.connections >= 2);
    assert.deepEqual(counts.anomalies, [PipelineAnomaly.Closed]);
    assert.equal(pool.fallbacks, 1);
    assert.equal(pool.pipeliningActive, false);
    for (const p of ['/b', '/c', '/d']) assert.deepEqual(u.requests.filter((r) => r.path === p).map((r) => r.conn > 1), [false, true], `${p} sent once more, on a fresh connection`);
    // One at a time now: no request arrives with another outstanding.
    const before = u.requests.length;
    assert.deepEqual(await bodies(['/e', '/f', '/g'].map((p) => send(pool, p))), ['/e', '/f', '/g']);
    assert.ok(u.requests.slice(before).every((r) => r.owed === 0 && r.inRead === 1));
  });

  test('…but Connection: close on a response is the upstream ending the connection properly: the rest go on a fresh one, pipelining goes on', async () => {
    const { u, pool, counts } = await setup((r, sock) => {
      if (r.conn === 1 && r.nth > 2) return null;
      if (r.conn === 1 && r.nth === 2) {
        setImmediate(() => sock.end());
        return named(r, 'Connection: close\r\n');
      }
      return named(r);
    });
    const paths = ['/a', '/b', '/c', '/d'];
    assert.deepEqual(await bodies(paths.map((p) => send(pool, p))), paths);
    assert.equal(u.connections, 2);
    assert.deepEqual(counts.anomalies, []);
    assert.equal(pool.pipeliningActive, true);
    const before = u.requests.length;
    assert.deepEqual(await bodies(['/e', '/f', '/g'].map((p) => send(pool, p))), ['/e', '/f', '/g']);
    assert.deepEqual(u.requests.slice(before).map((r) => [r.conn, r.owed]), [[2, 0], [2, 1], [2, 2]], 'the fresh connection pipelines');
  });

  test('an anomaly (a 101 to a pipelined GET): that request fails as TG_UP_PROTOCOL, the ones behind are answered on a fresh connection, one fallback counted', async () => {
    const { u, pool, counts } = await setup((r) => (r.conn === 1 && r.nth === 2 ? 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n' : named(r)));
    const cs = ['/a', '/b', '/c', '/d'].map((p) => send(pool, p));
    const rs = await Promise.all(cs.map((c) => c.done));
    assert.equal(rs[0]!.body, '/a');
    assert.equal(rs[1]!.error?.code, UpstreamErrorCode.Protocol);
    assert.deepEqual(rs.slice(2).map((r) => [r.error, r.body]), [[null, '/c'], [null, '/d']]);
    assert.deepEqual(counts.anomalies, [PipelineAnomaly.Protocol]);
    assert.equal(pool.lastAnomaly, PipelineAnomaly.Protocol);
    assert.equal(u.connections, 2);
  });

  test('an extra response after the last one expected is an anomaly too, and no request gets it', async () => {
    const { pool, counts } = await setup((r) => (r.conn === 1 && r.nth === 2 ? named(r) + 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEXTRA' : named(r)));
    const rs = await Promise.all(['/a', '/b'].map((p) => send(pool, p).done));
    assert.equal(rs[0]!.body, '/a');
    assert.equal(rs[1]!.error?.code, UpstreamErrorCode.Protocol);
    assert.deepEqual(counts.anomalies, [PipelineAnomaly.Protocol]);
    assert.equal((await send(pool, '/z').done).body, '/z');
  });

  test('abort of a request behind the head: it fails at once, its response is read and dropped, the others are answered on the same connection', async () => {
    // answered 50 ms late, all together
    const { u, pool } = await setup((r, sock) => {
      setTimeout(() => sock.write(named(r)), 50);
      return null;
    });
    const cs = ['/a', '/b', '/c'].map((p) => send(pool, p));
    cs[1]!.abort!();
    const rb = await cs[1]!.done;
    assert.equal(rb.error?.code, UpstreamErrorCode.Aborted);
    assert.deepEqual([(await cs[0]!.done).body, (await cs[2]!.done).body], ['/a', '/c']);
    assert.equal((await send(pool, '/d').done).body, '/d', 'the next request gets its own response');
    assert.equal(u.connections, 1);
    assert.equal(pool.fallbacks, 0);
  });

  test('abort of the head: the connection closes and the requests behind it are answered on a fresh one', async () => {
    const { u, pool } = await setup((r, sock) => {
      setTimeout(() => sock.write(named(r)), 50);
      return null;
    });
    const cs = ['/a', '/b', '/c'].map((p) => send(pool, p));
    await until('the upstream has all three', () => u.requests.length === 3);
    cs[0]!.abort!();
    assert.equal((await cs[0]!.done).error?.code, UpstreamErrorCode.Aborted);
    assert.deepEqual(await bodies(cs.slice(1)), ['/b', '/c']);
    assert.equal(u.connections, 2);
    assert.equal(pool.fallbacks, 0);
  });

  test('timeouts per request: a follower stuck behind a slow body times out alone; the head completes; the follower\'s late response is dropped', async () => {
    // /slow: head at once, then its body in pieces for ~800 ms; /fast is answered after it (in order)
    const { u, pool } = await setup((r, sock) => {
      if (r.path === '/slow') {
        sock.write('HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n');
        let n = 0;
        const t = setInterval(() => {
          sock.write('x');
          if (++n === 8) {
            clearInterval(t);
            sock.write(named({ ...r, path: '/fast' }));
          }
        }, 100);
        return null;
      }
      return r.path === '/fast' ? null : named(r);
    }, { headersTimeout: 300, bodyTimeout: 1000 });
    const slow = send(pool, '/slow');
    const fast = send(pool, '/fast');
    const t0 = performance.now();
    const rf = await fast.done;
    const waited = performance.now() - t0;
    assert.equal(rf.error?.code, UpstreamErrorCode.HeadersTimeout);
    assert.ok(waited >= 280 && waited < 750, `timed out after ${waited.toFixed(0)} ms`);
    const rs = await slow.done;
    assert.equal(rs.error, null);
    assert.equal(rs.body, 'xxxxxxxx');
    assert.equal((await send(pool, '/next').done).body, '/next', "not /fast's response");
    assert.equal(u.connections, 1);
  });

  test('a head that gets no response within headersTimeout fails; the request behind it goes to a fresh connection', async () => {
    // Connection 1 never answers (a response to /b could only come after /never's).
    const { u, pool } = await setup((r) => (r.conn === 1 ? null : named(r)), { headersTimeout: 200 });
    const a = send(pool, '/never');
    const b = send(pool, '/b');
    assert.equal((await a.done).error?.code, UpstreamErrorCode.HeadersTimeout);
    assert.equal((await b.done).body, '/b');
    assert.equal(u.connections, 2);
  });

  test('pipelining 1 (the default): one request at a time per connection', async () => {
    const { u, pool } = await setup((r) => named(r), { pipelining: 1 });
    assert.deepEqual(await bodies(['/a', '/b', '/c'].map((p) => send(pool, p))), ['/a', '/b', '/c']);
    assert.ok(u.requests.every((r) => r.owed === 0));
    assert.equal(pool.pipelined, 0);
  });
});
