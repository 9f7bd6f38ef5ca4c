// Peer: the ceiling of tidegate's design on this host — uWebSockets.js in N worker
// threads, each with a minimal keep-alive HTTP/1.1 client on net.Socket, and none of a
// gateway's work: no header forwarding or filtering, no routing, no validation, no
// metrics. GET/HEAD-style requests only (the bench sends nothing else); the upstream
// must answer with Content-Length. What tidegate spends above this peer is its own
// per-request work; what this peer spends above nginx is the runtime's.
// usage: node uws-minimal-proxy.js PORT UPSTREAM_PORT WORKERS
import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { HttpResponse, TemplatedApp } from '../../src/worker/uws.js';

interface Job {
  res: HttpResponse;
  aborted: boolean;
}

interface Conn {
  socket: Socket;
  job: Job | null;
  head: Buffer | null;
  total: number;
  sent: number;
  /** a body chunk uWS could not take yet (its offset, for onWritable) */
  pending: Buffer | null;
  pendingAt: number;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

if (isMainThread) {
  const [port, upstreamPort, workers] = process.argv.slice(2).map(Number);
  if (!port || !upstreamPort) {
    console.error('usage: uws-minimal-proxy PORT UPSTREAM_PORT [WORKERS]');
    process.exit(2);
  }
  const threads: Worker[] = [];
  let ready = 0;
  for (let i = 0; i < (workers || 1); i++) {
    const w = new Worker(new URL(import.meta.url), { workerData: { port, upstreamPort } });
    w.on('message', () => {
      if (++ready === threads.length) console.log(JSON.stringify({ event: 'started', port }));
    });
    w.on('error', (err) => {
      console.error(err);
      process.exit(1);
    });
    threads.push(w);
  }
  // uWS keeps its sockets open in the worker threads, and Node asserts when a worker's
  // loop closes with handles open: nothing here needs a clean shutdown.
  process.on('SIGTERM', () => process.kill(process.pid, 'SIGKILL'));
} else {
  const uws = createRequire(import.meta.url)('uWebSockets.js') as { App(): TemplatedApp };
  const { port, upstreamPort } = workerData as { port: number; upstreamPort: number };
  const idle: Conn[] = [];

  const fail = (c: Conn): void => {
    const job = c.job;
    c.job = null;
    c.socket.destroy();
    if (job !== null && !job.aborted) job.res.cork(() => job.res.writeStatus('502 Bad Gateway').end('bad gateway'));
  };

  const deliver = (c: Conn, chunk: Buffer): void => {
    const job = c.job!;
    c.sent += chunk.length;
    const done = c.sent >= c.total;
    if (!job.aborted) {
      const res = job.res;
      let ok = true;
      res.cork(() => {
        c.pendingAt = res.getWriteOffset();
        ok = res.tryEnd(chunk, c.total)[0];
      });
      if (!ok && !done) {
        c.pending = chunk;
        c.socket.pause();
        res.onWritable((offset) => {
          const [ok2, done2] = res.tryEnd(c.pending!.subarray(offset - c.pendingAt), c.total);
          if (!ok2 && !done2) return false;
          c.pending = null;
          c.socket.resume();
          return true;
        });
      }
    }
    if (done) {
      c.job = null;
      idle.push(c);
    }
  };

  const onData = (c: Conn, data: Buffer): void => {
    if (c.job === null) return fail(c);
    if (c.total >= 0) return deliver(c, data);
    const buf = c.head === null ? data : Buffer.concat([c.head, data]);
    const end = buf.indexOf(CRLFCRLF);
    if (end < 0) {
      c.head = buf;
      return;
    }
    c.head = null;
    const head = buf.toString('latin1', 0, end).toLowerCase();
    const at = head.indexOf('\r\ncontent-length:');
    if (at < 0) return fail(c);
    c.total = parseInt(head.slice(at + 17), 10);
    c.sent = 0;
    const status = buf.toString('latin1', 9, buf.indexOf(13));
    const job = c.job;
    if (!job.aborted) job.res.cork(() => job.res.writeStatus(status).writeHeader('content-type', 'text/plain'));
    deliver(c, buf.subarray(end + 4));
  };

  const open = (): Conn => {
    const socket = connect(upstreamPort, '127.0.0.1');
    socket.setNoDelay(true);
    const c: Conn = { socket, job: null, head: null, total: -1, sent: 0, pending: null, pendingAt: 0 };
    socket.on('data', (d: Buffer) => onData(c, d));
    socket.on('error', () => fail(c));
    socket.on('close', () => {
      const i = idle.indexOf(c);
      if (i >= 0) idle.splice(i, 1);
      if (c.job !== null) fail(c);
    });
    return c;
  };

  uws
    .App()
    .any('/*', (res, req) => {
      const job: Job = { res, aborted: false };
      res.onAborted(() => {
        job.aborted = true;
      });
      const c = idle.pop() ?? open();
      c.job = job;
      c.total = -1;
      const q = req.getQuery();
      c.socket.write(`${req.getMethod().toUpperCase()} ${req.getUrl()}${q ? `?${q}` : ''} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`, 'latin1');
    })
    .listen('127.0.0.1', port, (token) => {
      if (!token) process.exit(1);
      parentPort!.postMessage('listening');
    });
}
