// The origin server of the upstream-side suite: a raw TCP server that reads each
// request head on a connection and writes the bytes its vector prescribes, exactly,
// then keeps the connection for the next request or closes it. A request for
// `/<tag>/next` (the client's follow-up) is answered with a plain valid response, so a
// proxy that reuses a connection the vector left dirty reads the dirt as its answer.
import { createServer, type Server, type Socket } from 'node:net';
import { RESPONSE_TAG_PATTERN, type ResponseVector } from './responses.js';

export interface MalformedUpstream {
  readonly port: number;
  /** tag → the vector it stands for; set by the suite before it sends anything */
  readonly vectors: Map<string, ResponseVector>;
  /** requests seen per tag (first requests and follow-ups) */
  readonly seen: Map<string, number>;
  close(): Promise<void>;
}

const MAX_HEAD = 64 * 1024;

export function nextBody(tag: string): string {
  return `next-${tag}`;
}

export async function startMalformedUpstream(): Promise<MalformedUpstream> {
  const vectors = new Map<string, ResponseVector>();
  const seen = new Map<string, number>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) {
          if (buf.length > MAX_HEAD) socket.destroy();
          return;
        }
        const headText = buf.slice(0, end);
        buf = buf.slice(end + 4);
        const target = /^[A-Z]+ (\S+) HTTP\/1\.[01]/.exec(headText)?.[1] ?? '';
        const tag = target.match(RESPONSE_TAG_PATTERN)?.[0];
        if (tag !== undefined) seen.set(tag, (seen.get(tag) ?? 0) + 1);
        const v = tag === undefined ? undefined : vectors.get(tag);
        if (v === undefined || target.endsWith('/next')) {
          const body = tag === undefined ? 'no-tag' : nextBody(tag);
          socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`, 'latin1');
          continue;
        }
        socket.write(Buffer.from(v.response(tag!), 'latin1'));
        if (v.thenClose) {
          socket.end();
          return;
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    vectors,
    seen,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
