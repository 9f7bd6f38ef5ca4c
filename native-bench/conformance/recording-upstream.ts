// The upstream the proxy under test forwards to: a raw TCP server that parses what
// arrives strictly (as a careful origin server would), records every request — request
// line, fields, decoded body, trailers — and answers 200 with a small body. What it
// cannot parse is recorded too, with any vector tag found in the bytes: a proxy that
// forwards unframeable bytes is part of what the suite reports.
import { createServer, type Server, type Socket } from 'node:net';
import { TAG_PATTERN } from './vectors.js';

export interface UpstreamRequest {
  /** the vector tags in the request target (normally one) */
  readonly tags: string[];
  readonly method: string;
  readonly target: string;
  readonly version: string;
  readonly fields: [string, string][];
  body: Buffer;
  trailers: [string, string][];
  /** the whole message (head and body) arrived */
  complete: boolean;
  /** it carried both Content-Length and Transfer-Encoding (the proxy passed ambiguous framing on) */
  readonly ambiguous: boolean;
  readonly connection: number;
}

export interface UpstreamParseError {
  readonly tags: string[];
  readonly error: string;
  /** the first bytes that could not be parsed (latin1, at most 512) */
  readonly bytes: string;
  readonly connection: number;
}

export interface RecordingUpstream {
  readonly host: string;
  readonly port: number;
  readonly requests: UpstreamRequest[];
  readonly errors: UpstreamParseError[];
  /** forget everything recorded so far */
  reset(): void;
  close(): Promise<void>;
}

const RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nX-Conformance-Upstream: 1\r\n\r\nok\n';
const REJECT = 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';
const MAX_HEAD = 64 * 1024;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) (HTTP\/\d\.\d)$/;

function tagsIn(text: string): string[] {
  return [...new Set(text.match(TAG_PATTERN) ?? [])];
}

class ParseError extends Error {}

/** Parses one connection's byte stream into requests. */
class ConnectionParser {
  private buf: Buffer = Buffer.alloc(0);
  private current: UpstreamRequest | undefined;
  private mode: 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' = 'head';
  private remaining = 0;
  private bodyParts: Buffer[] = [];

  constructor(
    private readonly id: number,
    private readonly onHead: (r: UpstreamRequest) => void,
    private readonly onComplete: (r: UpstreamRequest) => void,
  ) {}

  /** feeds bytes; throws ParseError on anything a strict server refuses */
  push(data: Buffer): void {
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    for (;;) if (!this.step()) return;
  }

  pending(): string {
    return this.buf.subarray(0, 512).toString('latin1');
  }

  /** tags of the request whose body was being read when parsing failed */
  currentTags(): string[] {
    return this.current?.tags ?? [];
  }

  private line(): string | null {
    const i = this.buf.indexOf('\r\n');
    if (i === -1) {
      if (this.buf.length > MAX_HEAD) throw new ParseError('line too long');
      return null;
    }
    const l = this.buf.subarray(0, i).toString('latin1');
    this.buf = this.buf.subarray(i + 2);
    return l;
  }

  private step(): boolean {
    switch (this.mode) {
      case 'head':
        return this.head();
      case 'length': {
        if (this.buf.length === 0) return false;
        const n = Math.min(this.remaining, this.buf.length);
        this.bodyParts.push(Buffer.from(this.buf.subarray(0, n)));
        this.buf = this.buf.subarray(n);
        this.remaining -= n;
        if (this.remaining === 0) this.finish();
        return true;
      }
      case 'chunk-size': {
        const l = this.line();
        if (l === null) return false;
        const m = /^([0-9A-Fa-f]{1,8})(?:;.*)?$/.exec(l);
        if (!m) throw new ParseError(`bad chunk size line ${JSON.stringify(l)}`);
        this.remaining = parseInt(m[1]!, 16);
        this.mode = this.remaining === 0 ? 'trailers' : 'chunk-data';
        return true;
      }
      case 'chunk-data': {
        if (this.buf.length === 0) return false;
        const n = Math.min(this.remaining, this.buf.length);
        this.bodyParts.push(Buffer.from(this.buf.subarray(0, n)));
        this.buf = this.buf.subarray(n);
        this.remaining -= n;
        if (this.remaining === 0) this.mode = 'chunk-crlf';
        return true;
      }
      case 'chunk-crlf': {
        if (this.buf.length < 2) return false;
        if (this.buf[0] !== 0x0d || this.buf[1] !== 0x0a) throw new ParseError('chunk data not followed by CRLF');
        this.buf = this.buf.subarray(2);
        this.mode = 'chunk-size';
        return true;
      }
      case 'trailers': {
        const l = this.line();
        if (l === null) return false;
        if (l === '') {
          this.finish();
          return true;
        }
        this.current!.trailers.push(parseField(l));
        return true;
      }
    }
  }

  private head(): boolean {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end === -1) {
      if (this.buf.length > MAX_HEAD) throw new ParseError('head too long');
      return false;
    }
    const text = this.buf.subarray(0, end).toString('latin1');
    this.buf = this.buf.subarray(end + 4);
    const [first, ...rest] = text.split('\r\n');
    const m = REQUEST_LINE.exec(first!);
    if (!m) throw new ParseError(`bad request line ${JSON.stringify(first)}`);
    const fields = rest.map(parseField);
    const te = fields.filter(([k]) => k.toLowerCase() === 'transfer-encoding').map(([, v]) => v);
    const cl = fields.filter(([k]) => k.toLowerCase() === 'content-length').map(([, v]) => v);
    const r: UpstreamRequest = {
      tags: tagsIn(m[2]!),
      method: m[1]!,
      target: m[2]!,
      version: m[3]!,
      fields,
      body: Buffer.alloc(0),
      trailers: [],
      complete: false,
      ambiguous: te.length > 0 && cl.length > 0,
      connection: this.id,
    };
    this.current = r;
    this.bodyParts = [];
    this.onHead(r);
    if (te.length > 0) {
      const codings = te.join(',').split(',').map((s) => s.trim().toLowerCase());
      if (codings.at(-1) !== 'chunked') throw new ParseError(`Transfer-Encoding ${JSON.stringify(te.join(', '))} does not end in chunked`);
      this.mode = 'chunk-size';
    } else if (cl.length > 0) {
      const values = new Set(cl.flatMap((v) => v.split(',').map((s) => s.trim())));
      const [only] = values;
      if (values.size !== 1 || !/^\d{1,15}$/.test(only!)) throw new ParseError(`bad Content-Length ${JSON.stringify(cl.join(', '))}`);
      this.remaining = Number(only);
      if (this.remaining === 0) this.finish();
      else this.mode = 'length';
    } else {
      this.finish();
    }
    return true;
  }

  private finish(): void {
    const r = this.current!;
    r.body = Buffer.concat(this.bodyParts);
    r.complete = true;
    this.current = undefined;
    this.mode = 'head';
    this.onComplete(r);
  }
}

function parseField(line: string): [string, string] {
  if (line.startsWith(' ') || line.startsWith('\t')) throw new ParseError(`obs-fold line ${JSON.stringify(line)}`);
  const i = line.indexOf(':');
  if (i <= 0) throw new ParseError(`bad field line ${JSON.stringify(line)}`);
  const name = line.slice(0, i);
  if (!TOKEN.test(name)) throw new ParseError(`bad field name ${JSON.stringify(name)}`);
  return [name, line.slice(i + 1).trim()];
}

/** Listens on host:port (port 0 picks one) until close(). */
export async function startRecordingUpstream(host = '127.0.0.1', port = 0): Promise<RecordingUpstream> {
  const requests: UpstreamRequest[] = [];
  const errors: UpstreamParseError[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const id = ++connections;
    const parser = new ConnectionParser(
      id,
      (r) => requests.push(r),
      (r) => {
        const close = r.fields.some(([k, v]) => k.toLowerCase() === 'connection' && /\bclose\b/i.test(v));
        if (close) socket.end(RESPONSE);
        else socket.write(RESPONSE);
      },
    );
    socket.on('data', (d: Buffer) => {
      try {
        parser.push(d);
      } catch (e) {
        if (!(e instanceof ParseError)) throw e;
        const bytes = parser.pending();
        errors.push({ tags: [...new Set([...parser.currentTags(), ...tagsIn(bytes + e.message)])], error: e.message, bytes, connection: id });
        socket.end(REJECT);
        socket.removeAllListeners('data');
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address();
  if (bound === null || typeof bound === 'string') throw new Error('recording upstream: no TCP address');
  return {
    host,
    port: bound.port,
    requests,
    errors,
    reset() {
      requests.length = 0;
      errors.length = 0;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
