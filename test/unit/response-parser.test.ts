// The upstream response parser on its own: what it accepts (delivered exactly, however
// the bytes are split across reads) and what it refuses (with the reason), including
// the ways a response can claim a different end than it has.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_HEAD_BYTES, ResponseParser, type ResponseSink } from '../../src/worker/upstream/response-parser.js';

interface Outcome {
  status: number;
  headers: string[];
  body: string;
  complete: boolean;
  error: string | null;
}

class Recorder implements ResponseSink {
  out: Outcome = { status: 0, headers: [], body: '', complete: false, error: null };
  /** the header views as handed over, read only at the end (they must outlive every read) */
  raw: Buffer[] = [];
  /** return false from the next body callback (backpressure) */
  pauseNext = false;
  onResponseHead(status: number, headers: Buffer[]): boolean {
    this.out.status = status;
    this.raw = headers;
    return true;
  }
  onResponseBody(chunk: Buffer): boolean {
    this.out.body += chunk.toString('latin1');
    if (this.pauseNext) {
      this.pauseNext = false;
      return false;
    }
    return true;
  }
  onResponseComplete(): void {
    this.out.complete = true;
  }
  onResponseError(reason: string): void {
    this.out.error = reason;
  }
  expectsAnother(): boolean {
    return false;
  }
}

/**
 * Feeds `buf` as a socket read does: copied into one scratch buffer that is overwritten
 * as soon as execute() returns, as the connection's read buffer is by the next read.
 */
function feed(p: ResponseParser, scratch: Buffer, buf: Buffer): void {
  buf.copy(scratch);
  p.execute(scratch.subarray(0, buf.length));
  scratch.fill(0x23);
}

/** feeds `raw` in pieces of `step` bytes (0: one piece), then an EOF when `close` */
function parse(raw: string, opts: { head?: boolean; step?: number; close?: boolean } = {}): Outcome & { keepAlive: boolean } {
  const r = new Recorder();
  const p = new ResponseParser(r);
  p.reset(opts.head === true);
  const buf = Buffer.from(raw, 'latin1');
  const scratch = Buffer.alloc(buf.length);
  const step = opts.step ?? 0;
  if (step <= 0) feed(p, scratch, buf);
  else for (let i = 0; i < buf.length && r.out.error === null && !r.out.complete; i += step) feed(p, scratch, buf.subarray(i, i + step));
  if (opts.close === true && r.out.error === null && !r.out.complete && p.finishOnClose()) r.onResponseComplete();
  return { ...r.out, headers: r.raw.map((b) => b.toString('latin1')), keepAlive: p.keepAlive };
}

const ok = (body: string, extra = ''): string => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

describe('response parser: valid responses, split at every byte', () => {
  const cases: [string, string, Partial<Outcome>, { head?: boolean; close?: boolean }?][] = [
    ['content-length', ok('hello', 'X-A: 1\r\n'), { status: 200, body: 'hello', headers: ['Content-Length', '5', 'X-A', '1'] }],
    ['empty reason phrase', 'HTTP/1.1 204 \r\n\r\n', { status: 204, body: '' }],
    ['chunked with extensions and trailers', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n6 ; x\r\n world\r\n0\r\nX-T: 1\r\n\r\n', { status: 200, body: 'hello world' }],
    ['upper-case hex chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n', { status: 200, body: '0123456789' }],
    ['interim 100 and 103 dropped', `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n${ok('x')}`, { status: 200, body: 'x' }],
    ['HEAD keeps its Content-Length, reads no body', 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n', { status: 200, body: '' }, { head: true }],
    ['304 with a Content-Length reads no body', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: "a"\r\n\r\n', { status: 304, body: '' }],
    ['Content-Length list of equal values', 'HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc', { status: 200, body: 'abc' }],
    ['close-delimited', 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end', { status: 200, body: 'until the end' }, { close: true }],
    ['obs-text and HTAB in a value, OWS trimmed', 'HTTP/1.1 200 OK\r\nX-V:\t caf\xe9 \t\r\nContent-Length: 0\r\n\r\n', { status: 200, headers: ['X-V', 'caf\xe9', 'Content-Length', '0'] }],
  ];
  for (const [name, raw, want, opts] of cases) {
    test(name, () => {
      for (const step of [0, 1, 2, 3, 7]) {
        const got = parse(raw, { ...opts, step });
        assert.equal(got.error, null, `step ${step}: ${got.error}`);
        assert.equal(got.complete, true, `step ${step}: not complete`);
        if (want.status !== undefined) assert.equal(got.status, want.status);
        if (want.body !== undefined) assert.equal(got.body, want.body, `step ${step}`);
        if (want.headers !== undefined) assert.deepEqual(got.headers, want.headers);
      }
    });
  }

  test('keep-alive: HTTP/1.1 by default, Connection: close, HTTP/1.0 unless it asks', () => {
    assert.equal(parse(ok('a')).keepAlive, true);
    assert.equal(parse(ok('a', 'Connection: close\r\n')).keepAlive, false);
    assert.equal(parse('HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\na').keepAlive, false);
    assert.equal(parse('HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\na').keepAlive, true);
    assert.equal(parse('HTTP/1.1 200 OK\r\n\r\nabc', { close: true }).keepAlive, false);
  });

  test('backpressure: a false from the body stops the feed until resume()', () => {
    const r = new Recorder();
    const p = new ResponseParser(r);
    p.reset(false);
    r.pauseNext = true;
    const raw = Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n');
    feed(p, Buffer.alloc(raw.length), raw); // the read is overwritten while paused: what is left was copied
    assert.equal(r.out.body, 'abc');
    assert.equal(p.paused, true);
    p.resume();
    assert.equal(r.out.body, 'abcdef');
    assert.equal(r.out.complete, true);
  });
});

describe('response parser: refused, with the reason', () => {
  // `sameRead`: the flaw is bytes after a complete message, which the parser can tell
  // only when they come in the read that completed it; bytes in a later read arrive on
  // an idle connection, which h1-connection.ts closes (test/unit/h1-pool.test.ts).
  const bad: [string, string, RegExp, { head?: boolean; close?: boolean; sameRead?: boolean }?][] = [
    ['two different Content-Length values', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', /differ/],
    ['a Content-Length list that differs', 'HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nab', /differ/],
    ['a non-numeric Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n', /invalid Content-Length/],
    ['a negative Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n', /invalid Content-Length/],
    ['a signed Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nabcde', /invalid Content-Length/],
    ['a Content-Length over 2^53', 'HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999\r\n\r\n', /invalid Content-Length/],
    ['an empty Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n', /invalid Content-Length/],
    ['Content-Length with chunked', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', /both Content-Length and Transfer-Encoding/],
    ['chunked twice', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n', /invalid Transfer-Encoding/],
    ['two Transfer-Encoding lines', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', /invalid Transfer-Encoding/],
    ['a coding other than chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', /unsupported Transfer-Encoding/],
    ['a chunk size that is not hex', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n', /invalid chunk size/],
    ['an empty chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nab\r\n0\r\n\r\n', /invalid chunk size/],
    ['a negative chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nab\r\n0\r\n\r\n', /invalid chunk size/],
    ['a chunk size beyond 2^53', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nab\r\n0\r\n\r\n', /chunk size too large/],
    ['a chunk size followed by junk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 6\r\nhello\r\n0\r\n\r\n', /invalid chunk size/],
    ['chunk data longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n', /not followed by CRLF/],
    ['bytes after a Content-Length body', `${ok('abc')}HTTP/1.1 200 OK\r\n\r\n`, /bytes after the end/, { sameRead: true }],
    ['bytes after the last chunk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX', /bytes after the end/, { sameRead: true }],
    ['a body to HEAD', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc', /bytes after the end/, { head: true, sameRead: true }],
    ['a body behind 204', 'HTTP/1.1 204 No Content\r\n\r\nabc', /bytes after the end/, { sameRead: true }],
    ['a body behind 304', 'HTTP/1.1 304 Not Modified\r\n\r\nabc', /bytes after the end/, { sameRead: true }],
    ['no SP after the status code', 'HTTP/1.1 204\r\n\r\n', /no SP after the status code/],
    ['a two-digit status', 'HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n', /invalid status/],
    ['a four-digit status', 'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n', /invalid status/],
    ['status 600', 'HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n', /invalid status code/],
    ['HTTP/2.0 on the status line', 'HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n', /invalid status line/],
    ['no status line', 'hello\r\n\r\n', /invalid status line/],
    ['101 nobody asked for', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n', /101/],
    ['whitespace before the colon', 'HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 0\r\n\r\n', /whitespace before the colon/],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n', /line folding/],
    ['NUL in a value', 'HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n', /invalid character/],
    ['a bare CR in a value', 'HTTP/1.1 200 OK\r\nX-A: a\rX-B: 1\r\nContent-Length: 0\r\n\r\n', /bare CR/],
    ['a bare LF in the head', 'HTTP/1.1 200 OK\r\nX-A: a\nX-B: 1\r\nContent-Length: 0\r\n\r\n', /bare LF/],
    ['LF-only line endings (refused at once, not at a timeout)', 'HTTP/1.1 200 OK\nContent-Length: 0\n\n', /bare LF|invalid reason/],
    ['a line without a colon', 'HTTP/1.1 200 OK\r\nX-Broken\r\nContent-Length: 0\r\n\r\n', /invalid header name/],
    ['a name with a non-token byte', 'HTTP/1.1 200 OK\r\nX(A): 1\r\nContent-Length: 0\r\n\r\n', /invalid header name/],
    ['an oversize head', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(MAX_HEAD_BYTES)}\r\nContent-Length: 0\r\n\r\n`, /response head over/],
  ];
  for (const [name, raw, reason, opts] of bad) {
    test(name, () => {
      for (const step of opts?.sameRead === true ? [0] : [0, 1, 5]) {
        if (step === 1 && raw.length > 4096) continue;
        const got = parse(raw, { ...opts, step });
        assert.match(got.error ?? `no error (status ${got.status}, body ${JSON.stringify(got.body)}, complete ${got.complete})`, reason, `step ${step}`);
        assert.equal(got.complete, false, `step ${step}: a refused response must not complete`);
      }
    });
  }

  test('an EOF before the end is not a complete response (Content-Length, chunked, head)', () => {
    assert.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', { close: true }).complete, false);
    assert.equal(parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n', { close: true }).complete, false);
    assert.equal(parse('HTTP/1.1 200 OK\r\nContent-Le', { close: true }).complete, false);
  });
});
