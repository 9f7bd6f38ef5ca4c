// A raw TCP upstream for tests of what the gateway makes of an upstream's bytes: it
// reads each request (head, and a Content-Length or chunked body), asks a script what
// to answer, and writes exactly those bytes — in pieces with delays, followed by a
// close or a reset, or with stray bytes later — so that responses no HTTP server
// library would produce can be served. It records every connection it accepted (and
// who closed it) and every request it read, so a test can tell whether a connection
// was reused or discarded and whether a request was sent twice.
import { createServer, type Server, type Socket } from 'node:net';

export interface SeenRequest {
  /** the connection it came on: 1 for the first accepted, and so on */
  readonly conn: number;
  /** 0 for the first request on its connection */
  readonly seq: number;
  readonly method: string;
  /** the request target as sent */
  readonly target: string;
  /** the head as received, latin1, without the blank line */
  readonly head: string;
  readonly body: Buffer;
}

export interface Reply {
  /** written in order, each `delayMs` after the one before (the first at once) */
  readonly pieces: readonly (string | Buffer)[];
  readonly delayMs?: number;
  /** after the last piece: `end` sends a FIN, `reset` destroys the socket; default: keep it for the next request */
  readonly then?: 'end' | 'reset';
  /** how long after the last piece `then` happens (default at once) */
  readonly thenAfterMs?: number;
  /** bytes nobody asked for, written this long after the last piece */
  readonly later?: { readonly afterMs: number; readonly bytes: string | Buffer };
}

/** What to answer a request; `nth` counts the requests with this target so far (1 for the first). */
export type Script = (req: SeenRequest, nth: number) => Reply;

export interface ConnectionRecord {
  readonly id: number;
  /** the socket is gone */
  closed: boolean;
  /** it went because the gateway closed or reset it, not because a script ended it */
  closedByPeer: boolean;
}

export interface RawUpstream {
  readonly port: number;
  readonly requests: readonly SeenRequest[];
  readonly connections: readonly ConnectionRecord[];
  /** the requests whose target is `target`, in arrival order */
  seen(target: string): SeenRequest[];
  close(): Promise<void>;
}

const MAX_HEAD = 1024 * 1024;

const bytes = (b: string | Buffer): Buffer => (typeof b === 'string' ? Buffer.from(b, 'latin1') : b);

/** A response with a Content-Length body (keep-alive). */
export function okResponse(body: string, fields: readonly string[] = []): string {
  return `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body, 'latin1')}\r\n${fields.map((f) => `${f}\r\n`).join('')}\r\n${body}`;
}

export async function startRawUpstream(script: Script): Promise<RawUpstream> {
  const requests: SeenRequest[] = [];
  const connections: ConnectionRecord[] = [];
  const perTarget = new Map<string, number>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const server: Server = createServer((socket) => {
    const rec: ConnectionRecord = { id: connections.length + 1, closed: false, closedByPeer: false };
    connections.push(rec);
    sockets.add(socket);
    let endedHere = false;
    let seq = 0;
    let buf: Buffer = Buffer.alloc(0);
    // One reply at a time: bytes that arrive while one is being written wait for it.
    let replying = false;
    // Each piece its own segment: Nagle would merge pieces written a few ms apart.
    socket.setNoDelay(true);
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      rec.closed = true;
      rec.closedByPeer = !endedHere;
    });

    const nextRequest = (): SeenRequest | null => {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) {
        if (buf.length > MAX_HEAD) socket.destroy();
        return null;
      }
      const head = buf.subarray(0, end).toString('latin1');
      const [method = '', target = ''] = head.slice(0, head.indexOf('\r\n') >>> 0).split(' ');
      let at = end + 4;
      let body: Buffer;
      const cl = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
      if (cl) {
        const n = Number(cl[1]);
        if (buf.length < at + n) return null;
        body = buf.subarray(at, at + n);
        at += n;
      } else if (/\r\ntransfer-encoding:[ \t]*chunked/i.test(head)) {
        // Enough for the bodies tests send: sizes without extensions, no trailers.
        const parts: Buffer[] = [];
        for (;;) {
          const le = buf.indexOf('\r\n', at);
          if (le === -1) return null;
          const size = parseInt(buf.subarray(at, le).toString('latin1'), 16);
          if (buf.length < le + 2 + size + 2) return null;
          parts.push(buf.subarray(le + 2, le + 2 + size));
          at = le + 2 + size + 2;
          if (size === 0) break;
        }
        body = Buffer.concat(parts);
      } else {
        body = Buffer.alloc(0);
      }
      buf = buf.subarray(at);
      return { conn: rec.id, seq: seq++, method, target, head, body: Buffer.from(body) };
    };

    const serve = (): void => {
      if (replying || socket.destroyed || endedHere) return;
      const req = nextRequest();
      if (req === null) return;
      requests.push(req);
      const nth = (perTarget.get(req.target) ?? 0) + 1;
      perTarget.set(req.target, nth);
      const reply = script(req, nth);
      replying = true;
      let i = 0;
      const step = (): void => {
        if (socket.destroyed) return;
        if (i < reply.pieces.length) {
          socket.write(bytes(reply.pieces[i++]!));
          if (i < reply.pieces.length) later(reply.delayMs ?? 0, step);
          else if (reply.then !== undefined && (reply.thenAfterMs ?? 0) > 0) later(reply.thenAfterMs!, finish);
          else finish();
          return;
        }
        finish();
      };
      const finish = (): void => {
        if (socket.destroyed) return;
        if (reply.then === 'reset') {
          endedHere = true;
          socket.resetAndDestroy();
          return;
        }
        if (reply.then === 'end') {
          endedHere = true;
          socket.end();
          return;
        }
        if (reply.later !== undefined) {
          const extra = reply.later.bytes;
          later(reply.later.afterMs, () => {
            if (!socket.destroyed) socket.write(bytes(extra));
          });
        }
        replying = false;
        serve();
      };
      step();
    };

    socket.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      serve();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    requests,
    connections,
    seen: (target) => requests.filter((r) => r.target === target),
    close: () =>
      new Promise<void>((r) => {
        for (const t of timers) clearTimeout(t);
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
