// A client that reads the gateway's answers on a raw socket with a strict HTTP/1.1
// parser (RFC 9112), so a test can tell a valid response from one that merely looks
// right: CRLF line endings only, a status line with its SP before the reason, token
// field names, one framing (a single Content-Length, or Transfer-Encoding: chunked
// alone, or the close), chunk sizes and the CRLF after chunk data, and no byte beyond
// the message. A connection that closes mid-message is reported as such, never as a
// shorter complete message.
import { connect, type Socket } from 'node:net';

export type Field = readonly [name: string, value: string];

export type Parsed =
  | {
      readonly kind: 'complete';
      readonly status: number;
      readonly fields: readonly Field[];
      readonly body: string;
      readonly trailers: readonly Field[];
      /** bytes after the message */
      readonly rest: string;
    }
  /** valid so far, but the bytes (or the connection) ended before the message did; status null before a whole head */
  | { readonly kind: 'incomplete'; readonly status: number | null }
  | { readonly kind: 'invalid'; readonly why: string };

const STATUS_LINE = /^HTTP\/1\.1 ([1-5]\d\d) ([\t\x20-\x7e\x80-\xff]*)$/;
const FIELD_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t\x20-\x7e\x80-\xff]*?)[ \t]*$/;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,16})(?:;[\t\x20-\x7e\x80-\xff]*)?$/;

function badLineEnds(text: string): boolean {
  return /[^\r]\n|^\n|\r(?!\n)/.test(text);
}

function fieldLines(lines: readonly string[]): Field[] | string {
  const out: Field[] = [];
  for (const line of lines) {
    const m = FIELD_LINE.exec(line);
    if (!m) return `invalid field line ${JSON.stringify(line)}`;
    out.push([m[1]!.toLowerCase(), m[2]!]);
  }
  return out;
}

/** Parses one response at the start of `data` (latin1); `eof`: the connection has closed. */
export function parseResponse(data: string, method: string, eof: boolean): Parsed {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd === -1) {
    if (badLineEnds(data.replace(/\r$/, ''))) return { kind: 'invalid', why: 'a line ending other than CRLF' };
    return { kind: 'incomplete', status: null };
  }
  const headText = data.slice(0, headEnd);
  if (badLineEnds(headText)) return { kind: 'invalid', why: 'a line ending other than CRLF in the head' };
  const lines = headText.split('\r\n');
  const sm = STATUS_LINE.exec(lines[0]!);
  if (!sm) return { kind: 'invalid', why: `invalid status line ${JSON.stringify(lines[0])}` };
  const status = Number(sm[1]);
  const fields = fieldLines(lines.slice(1));
  if (typeof fields === 'string') return { kind: 'invalid', why: fields };
  const cls = fields.filter(([n]) => n === 'content-length');
  const tes = fields.filter(([n]) => n === 'transfer-encoding');
  if (cls.length > 1) return { kind: 'invalid', why: 'Content-Length more than once' };
  if (cls.length === 1 && !/^\d+$/.test(cls[0]![1])) return { kind: 'invalid', why: `invalid Content-Length ${cls[0]![1]}` };
  // Syntactically fine, but no client that counts in doubles can frame a body by it.
  if (cls.length === 1 && Number(cls[0]![1]) > Number.MAX_SAFE_INTEGER) return { kind: 'invalid', why: `Content-Length ${cls[0]![1]} beyond 2^53 - 1` };
  if (tes.length > 1 || (tes.length === 1 && tes[0]![1].toLowerCase() !== 'chunked')) return { kind: 'invalid', why: 'a Transfer-Encoding other than one chunked' };
  if (cls.length === 1 && tes.length === 1) return { kind: 'invalid', why: 'both Content-Length and Transfer-Encoding' };
  let at = headEnd + 4;
  const done = (body: string, trailers: readonly Field[] = []): Parsed => ({ kind: 'complete', status, fields, body, trailers, rest: data.slice(at) });
  // RFC 9112 §6.3 (1): these never have content, whatever the fields say.
  if (status < 200 || status === 204 || status === 304 || method === 'HEAD') {
    if (status === 204 && (cls.length > 0 || tes.length > 0)) return { kind: 'invalid', why: '204 with framing fields' };
    return done('');
  }
  if (cls.length === 1) {
    const n = Number(cls[0]![1]);
    if (data.length < at + n) return { kind: 'incomplete', status };
    const body = data.slice(at, at + n);
    at += n;
    return done(body);
  }
  if (tes.length === 1) {
    let body = '';
    for (;;) {
      const le = data.indexOf('\r\n', at);
      if (le === -1) return { kind: 'incomplete', status };
      const line = data.slice(at, le);
      const cm = CHUNK_SIZE.exec(line);
      if (!cm) return { kind: 'invalid', why: `invalid chunk size line ${JSON.stringify(line.slice(0, 40))}` };
      const size = parseInt(cm[1]!, 16);
      at = le + 2;
      if (size === 0) {
        const trailerEnd = data.indexOf('\r\n', at) === at ? at : data.indexOf('\r\n\r\n', at);
        if (trailerEnd === -1) return { kind: 'incomplete', status };
        const trailerText = data.slice(at, trailerEnd);
        const trailers = trailerText === '' ? [] : fieldLines(trailerText.split('\r\n'));
        if (typeof trailers === 'string') return { kind: 'invalid', why: `trailer: ${trailers}` };
        at = trailerEnd + (trailerEnd === at ? 2 : 4);
        return done(body, trailers);
      }
      if (data.length < at + size + 2) return { kind: 'incomplete', status };
      body += data.slice(at, at + size);
      if (data.slice(at + size, at + size + 2) !== '\r\n') return { kind: 'invalid', why: 'chunk data not followed by CRLF' };
      at += size + 2;
    }
  }
  // Close-delimited: complete only when the connection ended.
  if (!eof) return { kind: 'incomplete', status };
  at = data.length;
  return done(data.slice(headEnd + 4));
}

export interface Outcome {
  readonly parsed: Parsed;
  /** every byte read on the connection since the previous answer, latin1 */
  readonly raw: string;
  /** the connection had closed when the answer was judged */
  readonly closed: boolean;
  /** neither a whole answer nor a close before the deadline */
  readonly timedOut: boolean;
}

export class StrictClient {
  private data = '';
  private wake: (() => void) | null = null;
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.data += d.toString('latin1');
      this.wake?.();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
  }

  static open(port: number): Promise<StrictClient> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => resolve(new StrictClient(s)));
      s.once('error', reject);
    });
  }

  send(text: string): void {
    this.socket.write(text, 'latin1');
  }

  /** Waits until one answer is complete, invalid or cut by a close, or `ms` pass; a complete one is consumed. */
  async response(method: string, ms: number): Promise<Outcome> {
    const deadline = Date.now() + ms;
    for (;;) {
      const parsed = parseResponse(this.data, method, this.closed);
      if (parsed.kind !== 'incomplete' || this.closed) {
        const raw = this.data;
        if (parsed.kind === 'complete') this.data = parsed.rest;
        return { parsed, raw, closed: this.closed, timedOut: false };
      }
      const left = deadline - Date.now();
      if (left <= 0) return { parsed, raw: this.data, closed: false, timedOut: true };
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.wake = () => {
          clearTimeout(t);
          this.wake = null;
          r();
        };
      });
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
