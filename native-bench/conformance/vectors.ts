// The raw-socket vectors: each is sent as written (byte for byte) over its own TCP
// connection. Every request target carries the vector's tag (`/cfab0012`, or
// `/smuggled?cfab0012` for the request hidden behind a smuggling payload), so the
// recording upstream can say which vector produced whatever reached it even while
// vectors run concurrently and the proxy pools its upstream connections.
//
// `expected` is what RFC 9110/9112 ask of a server (a proxy is a server to its client):
//   forward  the request is valid and must reach the upstream intact;
//   reject   the server must refuse it (4xx/5xx, or close) and forward nothing;
//   either   the RFC lets the server reject it or repair and forward it (e.g. obs-fold
//            "reject or replace with SP"); forwarding is acceptable only intact and
//            repaired — never a desync.

export type Expected = 'forward' | 'reject' | 'either';

export type Category =
  | 'control'
  | 'content-length'
  | 'transfer-encoding'
  | 'smuggling'
  | 'chunked'
  | 'headers'
  | 'host'
  | 'request-line'
  | 'pipelining'
  | 'limits';

/** A request the client means to send, as the upstream should see it if forwarded. */
export interface SentRequest {
  readonly method: string;
  /** origin-form target (absolute-form is normalised to this before comparing) */
  readonly path: string;
  /** the decoded body the upstream must receive */
  readonly body: string;
}

export interface Vector {
  /** stable kebab-case id */
  readonly id: string;
  readonly name: string;
  readonly category: Category;
  /** RFC and section that decides the expected class */
  readonly rfc: string;
  readonly expected: Expected;
  /** what is written; each further part is written once the previous one was answered */
  parts(tag: string): string[];
  /** the requests the client sends (for `reject` vectors: what must not be forwarded) */
  requests(tag: string): SentRequest[];
  /** shut down the write side after the last part (an incomplete message stays incomplete) */
  readonly halfClose?: boolean;
  /**
   * the server must close the connection after answering even when it forwards
   * (Content-Length with Transfer-Encoding, RFC 9112 §6.1): the probe waits for the close
   */
  readonly mustClose?: boolean;
  /**
   * For `either` vectors that a server may repair: what a forwarded copy must not
   * contain (e.g. a NUL byte still in a header value). Returns a finding or null.
   */
  checkForwarded?(fields: readonly (readonly [string, string])[]): string | null;
}

const CRLF = '\r\n';
const HOST = 'Host: conformance.test';
const BODY = 'hello';
const CHUNKED_BODY = `5${CRLF}hello${CRLF}0${CRLF}${CRLF}`;

function lines(ls: readonly string[]): string {
  return ls.map((l) => l + CRLF).join('');
}

/** `METHOD /tag HTTP/1.1` + Host + the given field lines + blank line + body */
function req(tag: string, method: string, fields: readonly string[], body = '', host: readonly string[] = [HOST]): string {
  return `${method} /${tag} HTTP/1.1${CRLF}${lines([...host, ...fields])}${CRLF}${body}`;
}

function smuggled(tag: string): string {
  return `GET /smuggled?${tag} HTTP/1.1${CRLF}${HOST}${CRLF}${CRLF}`;
}

// the smuggled request's own Content-Length swallows the CRLF 0 CRLF CRLF that follows it
function teClInner(tag: string): string {
  return `GET /smuggled?${tag} HTTP/1.1${CRLF}${HOST}${CRLF}Content-Length: 7${CRLF}${CRLF}`;
}

function one(method: string, body = ''): (tag: string) => SentRequest[] {
  return (tag) => [{ method, path: `/${tag}`, body }];
}

function noControlChars(name: string, bad: RegExp): Vector['checkForwarded'] {
  return (fields) => {
    for (const [k, v] of fields) if (k.toLowerCase() === name && bad.test(v)) return `forwarded ${name} still holds ${JSON.stringify(v)}`;
    return null;
  };
}

// Bytes of a request line + fields sent before a body, for Content-Length arithmetic.
const len = (s: string): number => Buffer.byteLength(s, 'latin1');

export const VECTORS: readonly Vector[] = [
  // --- control group: valid requests every proxy must forward ---------------------
  {
    id: 'control-get',
    name: 'GET',
    category: 'control',
    rfc: 'RFC 9112 §3',
    expected: 'forward',
    parts: (t) => [req(t, 'GET', [])],
    requests: one('GET'),
  },
  {
    id: 'control-post-cl',
    name: 'POST with Content-Length body',
    category: 'control',
    rfc: 'RFC 9112 §6.2',
    expected: 'forward',
    parts: (t) => [req(t, 'POST', ['Content-Length: 5'], BODY)],
    requests: one('POST', BODY),
  },
  {
    id: 'control-post-chunked',
    name: 'POST chunked',
    category: 'control',
    rfc: 'RFC 9112 §7.1',
    expected: 'forward',
    parts: (t) => [req(t, 'POST', ['Transfer-Encoding: chunked'], `5${CRLF}hello${CRLF}6${CRLF} world${CRLF}0${CRLF}${CRLF}`)],
    requests: one('POST', 'hello world'),
  },
  {
    id: 'control-keep-alive',
    name: 'keep-alive reuse (second request after the first answer)',
    category: 'control',
    rfc: 'RFC 9112 §9.3',
    expected: 'forward',
    parts: (t) => [req(t, 'GET', []), `GET /${t}/second HTTP/1.1${CRLF}${HOST}${CRLF}${CRLF}`],
    requests: (t) => [
      { method: 'GET', path: `/${t}`, body: '' },
      { method: 'GET', path: `/${t}/second`, body: '' },
    ],
  },

  // --- Content-Length ---------------------------------------------------------------
  {
    id: 'cl-duplicate-same',
    name: 'Content-Length twice, same value',
    category: 'content-length',
    rfc: 'RFC 9110 §8.6',
    expected: 'either',
    parts: (t) => [req(t, 'POST', ['Content-Length: 5', 'Content-Length: 5'], BODY)],
    requests: one('POST', BODY),
  },
  {
    id: 'cl-duplicate-different',
    name: 'Content-Length twice, different values',
    category: 'content-length',
    rfc: 'RFC 9112 §6.3',
    expected: 'reject',
    parts: (t) => [req(t, 'POST', ['Content-Length: 3', 'Content-Length: 5'], BODY)],
    requests: one('POST', BODY),
  },
  {
    id: 'cl-list-same',
    name: 'Content-Length: 5, 5',
    category: 'content-length',
    rfc: 'RFC 9110 §8.6',
    expected: 'either',
    parts: (t) => [req(t, 'POST', ['Content-Length: 5, 5'], BODY)],
    requests: one('POST', BODY),
  },
  {
    id: 'cl-plus-sign',
    name: 'Content-Length: +5',
    category: 'content-length',
    rfc: 'RFC 9112 §6.3',
    expected: 'reject',
    parts: (t) => [req(t, 'POST', ['Content-Length: +5'], BODY)],
    requests: one('POST', BODY),
  },
  {
    id: 'cl-negative',
    name: 'Content-Length: -5',
    category: 'content-length',
    rfc: 'RFC 9112 §6.3',
    expected: 'reject',
    parts: (t) => [req(t, 'POST', ['Content-Length: -5'], BODY)],
    requests: one('POST', BODY),
  },
  {
    id: 'cl-inner-space',
    name: 'Content-Length: 1 0 (space inside)',
    category: 'content-length',
    rfc: 'RFC 9112 §6.3',
    expected: 'reject',
    parts: (t) => [req(t, 'POST', ['Content-Length: 1 0'], '0123456789')],
    requests: one('POST', '0123456789'),
  },
  {
    id: 'cl-hex',
    name: 'Content-Length: 0x5',
    category: 'content-length',
    rfc: 'RFC 9112 §6.3',
    expected: 'reject',
    parts: (t) => [req(t, 'POST', ['Content-Length: 0x5'], BODY)],
    requests: one('POST', BODY),
  },
  {
    id: 'cl-trailing-garbage',
    name: 'Content-Length: 5x',
    category: 'content-length',
    rfc: 'RFC 9112 §6.3',
    expected: 'reject',
    parts: (t) => [req(t, 'POST', ['Content-Length: 5x'], BODY)],
    requests: one('POST', BODY),
  },
  {
    id: 'cl-overflow',
    name: 'Content-Length of 20 digits (integer overflow)',
    category: 'content-length',
    rfc: 'RFC 9112 §6.3',
    expected: 'reject',
    parts: (t) => [req(t, 'POST', ['Content-Length: 18446744073709551621'], BODY)],
    requests: one('POST', BODY),
  },
  {
    id: 'cl-and-te',
    name: 'Content-Length and Transfer-Encoding: chunked (lengths agree)',
    category: 'content-length',
    rfc: 'RFC 9112 §6.1',
    expected: 'either',
    mustClose: true,
    parts: (t) => [req(t, 'POST', [`Content-Length: ${len(CHUNKED_BODY)}`, 'Transfer-Encoding: chunked'], CHUNKED_BODY)],
    requests: one('POST', BODY),
  },

  // --- Transfer-Encoding -------------------------------------------------------------
  ...(
    [
      ['te-gzip', 'Transfer-Encoding: gzip', 'gzip', 'reject', 'RFC 9112 §6.3'],
      ['te-chunk', 'Transfer-Encoding: chunk', 'chunk', 'reject', 'RFC 9112 §6.1'],
      ['te-xchunked', 'Transfer-Encoding: xchunked', 'xchunked', 'reject', 'RFC 9112 §6.1'],
      ['te-quoted', 'Transfer-Encoding: "chunked"', '"chunked"', 'reject', 'RFC 9112 §6.1'],
      ['te-leading-comma', 'Transfer-Encoding: ,chunked', ',chunked', 'either', 'RFC 9110 §5.6.1'],
      ['te-chunked-twice', 'Transfer-Encoding: chunked, chunked', 'chunked, chunked', 'reject', 'RFC 9112 §7.1'],
      ['te-gzip-chunked', 'Transfer-Encoding: gzip, chunked', 'gzip, chunked', 'either', 'RFC 9112 §6.1'],
      ['te-chunked-gzip', 'Transfer-Encoding: chunked, gzip', 'chunked, gzip', 'reject', 'RFC 9112 §6.3'],
      ['te-identity', 'Transfer-Encoding: identity', 'identity', 'reject', 'RFC 9112 §6.1'],
      ['te-upper-case', 'Transfer-Encoding: Chunked (coding names are case-insensitive)', 'Chunked', 'forward', 'RFC 9112 §7'],
    ] as const
  ).map(
    ([id, name, value, expected, rfc]): Vector => ({
      id,
      name,
      category: 'transfer-encoding',
      rfc,
      expected,
      parts: (t) => [req(t, 'POST', [`Transfer-Encoding: ${value}`], CHUNKED_BODY)],
      requests: one('POST', BODY),
    }),
  ),
  {
    id: 'te-two-lines',
    name: 'Transfer-Encoding: chunked on two lines',
    category: 'transfer-encoding',
    rfc: 'RFC 9112 §7.1',
    expected: 'reject',
    parts: (t) => [req(t, 'POST', ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], CHUNKED_BODY)],
    requests: one('POST', BODY),
  },
  {
    id: 'te-obs-fold',
    name: 'Transfer-Encoding value on an obs-fold line',
    category: 'transfer-encoding',
    rfc: 'RFC 9112 §5.2',
    expected: 'either',
    parts: (t) => [req(t, 'POST', ['Transfer-Encoding:', ' chunked'], CHUNKED_BODY)],
    requests: one('POST', BODY),
  },
  {
    id: 'te-space-before-colon',
    name: 'Transfer-Encoding : chunked (space before colon) with Content-Length',
    category: 'transfer-encoding',
    rfc: 'RFC 9112 §5.1',
    expected: 'reject',
    parts: (t) => [req(t, 'POST', [`Content-Length: ${len(CHUNKED_BODY)}`, 'Transfer-Encoding : chunked'], CHUNKED_BODY)],
    requests: one('POST', BODY),
  },

  // --- classic smuggling payloads: a GET /smuggled hides behind each ------------------
  // With both Content-Length and Transfer-Encoding a server may reject, or frame by
  // Transfer-Encoding alone and close after answering (RFC 9112 §6.1): forwarding the
  // chunked reading is then conforming, reading the request behind it never is.
  {
    id: 'smuggle-cl-cl-zero-first',
    name: 'CL.CL: Content-Length 0, then the length of a smuggled request',
    category: 'smuggling',
    rfc: 'RFC 9112 §11.2',
    expected: 'reject',
    parts: (t) => [req(t, 'POST', ['Content-Length: 0', `Content-Length: ${len(smuggled(t))}`], smuggled(t))],
    requests: one('POST', ''),
  },
  {
    id: 'smuggle-cl-cl-zero-last',
    name: 'CL.CL: the length of a smuggled request, then Content-Length 0',
    category: 'smuggling',
    rfc: 'RFC 9112 §11.2',
    expected: 'reject',
    parts: (t) => [req(t, 'POST', [`Content-Length: ${len(smuggled(t))}`, 'Content-Length: 0'], smuggled(t))],
    requests: one('POST', ''),
  },
  {
    id: 'smuggle-cl-te',
    name: 'CL.TE: Content-Length covers a request behind the last chunk',
    category: 'smuggling',
    rfc: 'RFC 9112 §6.1, §11.2',
    expected: 'either',
    mustClose: true,
    parts: (t) => {
      const body = `0${CRLF}${CRLF}${smuggled(t)}`;
      return [req(t, 'POST', [`Content-Length: ${len(body)}`, 'Transfer-Encoding: chunked'], body)];
    },
    requests: one('POST', ''),
  },
  {
    id: 'smuggle-te-cl',
    name: 'TE.CL: a request inside a chunk, Content-Length stops before it',
    category: 'smuggling',
    rfc: 'RFC 9112 §6.1, §11.2',
    expected: 'either',
    mustClose: true,
    parts: (t) => {
      const inner = teClInner(t);
      const sizeLine = `${len(inner).toString(16)}${CRLF}`;
      return [req(t, 'POST', [`Content-Length: ${len(sizeLine)}`, 'Transfer-Encoding: chunked'], `${sizeLine}${inner}${CRLF}0${CRLF}${CRLF}`)];
    },
    // framed by Transfer-Encoding, the smuggled request is just the chunk's data
    requests: (t) => [{ method: 'POST', path: `/${t}`, body: teClInner(t) }],
  },
  {
    id: 'smuggle-te-te',
    name: 'TE.TE: chunked plus an obfuscated second Transfer-Encoding',
    category: 'smuggling',
    rfc: 'RFC 9112 §6.3, §11.2',
    expected: 'reject',
    parts: (t) => {
      const body = `0${CRLF}${CRLF}${smuggled(t)}`;
      return [req(t, 'POST', [`Content-Length: ${len(body)}`, 'Transfer-Encoding: chunked', 'Transfer-Encoding: cow'], body)];
    },
    requests: one('POST', ''),
  },
  {
    id: 'smuggle-cl-te-xchunked',
    name: 'CL.TE with Transfer-Encoding: xchunked',
    category: 'smuggling',
    rfc: 'RFC 9112 §6.3, §11.2',
    expected: 'reject',
    parts: (t) => {
      const body = `0${CRLF}${CRLF}${smuggled(t)}`;
      return [req(t, 'POST', [`Content-Length: ${len(body)}`, 'Transfer-Encoding: xchunked'], body)];
    },
    requests: one('POST', ''),
  },
  {
    id: 'smuggle-get-body',
    name: 'GET whose Content-Length body is a request',
    category: 'smuggling',
    rfc: 'RFC 9110 §9.3.1',
    expected: 'either',
    parts: (t) => [req(t, 'GET', [`Content-Length: ${len(smuggled(t))}`], smuggled(t))],
    requests: (t) => [{ method: 'GET', path: `/${t}`, body: smuggled(t) }],
  },

  // --- chunked body ------------------------------------------------------------------
  ...(
    [
      ['chunk-size-overflow', 'chunk size of 20 hex digits (overflow)', `1000000000000000000005${CRLF}hello${CRLF}0${CRLF}${CRLF}`, 'reject', 'RFC 9112 §7.1'],
      ['chunk-size-negative', 'chunk size -5', `-5${CRLF}hello${CRLF}0${CRLF}${CRLF}`, 'reject', 'RFC 9112 §7.1'],
      ['chunk-size-0x', 'chunk size 0x5', `0x5${CRLF}hello${CRLF}0${CRLF}${CRLF}`, 'reject', 'RFC 9112 §7.1'],
      ['chunk-data-no-crlf', 'chunk data not followed by CRLF', `5${CRLF}hello0${CRLF}${CRLF}`, 'reject', 'RFC 9112 §7.1'],
      ['chunk-data-bad-terminator', 'chunk data followed by two bytes other than CRLF', `5${CRLF}helloXY0${CRLF}${CRLF}`, 'reject', 'RFC 9112 §7.1'],
      ['chunk-bare-lf', 'chunked body with bare LF line endings', `5\nhello\n0\n\n`, 'either', 'RFC 9112 §2.2'],
      ['chunk-size-trailing-space', 'chunk size followed by a space (outside the grammar; parsers that trim it agree on the length)', `5 ${CRLF}hello${CRLF}0${CRLF}${CRLF}`, 'either', 'RFC 9112 §7.1, §7.1.1'],
      ['chunk-extension', 'chunk extensions (valid)', `5;name=value${CRLF}hello${CRLF}0;last${CRLF}${CRLF}`, 'forward', 'RFC 9112 §7.1.1'],
      ['chunk-trailer', 'trailer field after the last chunk (valid)', `5${CRLF}hello${CRLF}0${CRLF}X-Trailer: v${CRLF}${CRLF}`, 'forward', 'RFC 9112 §7.1.2'],
    ] as const
  ).map(
    ([id, name, body, expected, rfc]): Vector => ({
      id,
      name,
      category: 'chunked',
      rfc,
      expected,
      parts: (t) => [req(t, 'POST', ['Transfer-Encoding: chunked'], body)],
      requests: one('POST', BODY),
    }),
  ),
  {
    id: 'chunk-missing-final-crlf',
    name: 'last chunk without the final CRLF, then the client stops sending',
    category: 'chunked',
    rfc: 'RFC 9112 §7.1',
    expected: 'reject',
    halfClose: true,
    parts: (t) => [req(t, 'POST', ['Transfer-Encoding: chunked'], `5${CRLF}hello${CRLF}0${CRLF}`)],
    requests: one('POST', BODY),
  },

  // --- field syntax ------------------------------------------------------------------
  {
    id: 'header-space-before-colon',
    name: 'space between field name and colon',
    category: 'headers',
    rfc: 'RFC 9112 §5.1',
    expected: 'reject',
    parts: (t) => [req(t, 'GET', ['X-Test : 1'])],
    requests: one('GET'),
  },
  {
    id: 'header-empty-name',
    name: 'empty field name',
    category: 'headers',
    rfc: 'RFC 9112 §5',
    expected: 'reject',
    parts: (t) => [req(t, 'GET', [': value'])],
    requests: one('GET'),
  },
  {
    id: 'header-name-not-token',
    name: 'field name with a non-token character',
    category: 'headers',
    rfc: 'RFC 9110 §5.6.2',
    expected: 'reject',
    parts: (t) => [req(t, 'GET', ['X(Test): 1'])],
    requests: one('GET'),
  },
  {
    id: 'header-obs-fold',
    name: 'obs-fold continuation line',
    category: 'headers',
    rfc: 'RFC 9112 §5.2',
    expected: 'either',
    parts: (t) => [req(t, 'GET', ['X-Test: a', ' b'])],
    requests: one('GET'),
    checkForwarded: noControlChars('x-test', /[\r\n]/),
  },
  {
    id: 'header-nul-in-value',
    name: 'NUL in a field value',
    category: 'headers',
    rfc: 'RFC 9110 §5.5',
    expected: 'either',
    parts: (t) => [req(t, 'GET', ['X-Test: a\x00b'])],
    requests: one('GET'),
    checkForwarded: noControlChars('x-test', /\x00/),
  },
  {
    id: 'header-cr-in-value',
    name: 'bare CR inside a field value',
    category: 'headers',
    rfc: 'RFC 9110 §5.5',
    expected: 'either',
    parts: (t) => [req(t, 'GET', ['X-Test: a\rb'])],
    requests: one('GET'),
    checkForwarded: noControlChars('x-test', /\r/),
  },
  {
    id: 'header-lf-in-value',
    name: 'bare LF inside a field value',
    category: 'headers',
    rfc: 'RFC 9110 §5.5',
    expected: 'either',
    parts: (t) => [req(t, 'GET', ['X-Test: a\nb'])],
    requests: one('GET'),
    checkForwarded: noControlChars('x-test', /\n/),
  },
  {
    id: 'header-bare-cr-line-end',
    name: 'field line ended by a bare CR',
    category: 'headers',
    rfc: 'RFC 9112 §2.2',
    expected: 'reject',
    parts: (t) => [`GET /${t} HTTP/1.1${CRLF}${HOST}\rX-Test: 1${CRLF}${CRLF}`],
    requests: one('GET'),
  },
  {
    id: 'header-bare-lf-line-ends',
    name: 'request line and fields ended by bare LF',
    category: 'headers',
    rfc: 'RFC 9112 §2.2',
    expected: 'either',
    parts: (t) => [`GET /${t} HTTP/1.1\n${HOST}\n\n`],
    requests: one('GET'),
  },

  // --- Host ----------------------------------------------------------------------------
  {
    id: 'host-missing',
    name: 'no Host',
    category: 'host',
    rfc: 'RFC 9112 §3.2',
    expected: 'reject',
    parts: (t) => [req(t, 'GET', [], '', [])],
    requests: one('GET'),
  },
  {
    id: 'host-duplicate',
    name: 'Host twice',
    category: 'host',
    rfc: 'RFC 9112 §3.2',
    expected: 'reject',
    parts: (t) => [req(t, 'GET', [], '', [HOST, 'Host: other.test'])],
    requests: one('GET'),
  },
  {
    id: 'host-list',
    name: 'Host: a.test, b.test',
    category: 'host',
    rfc: 'RFC 9112 §3.2',
    expected: 'reject',
    parts: (t) => [req(t, 'GET', [], '', ['Host: a.test, b.test'])],
    requests: one('GET'),
  },
  {
    id: 'host-invalid-chars',
    name: 'Host with a space and a slash',
    category: 'host',
    rfc: 'RFC 9110 §7.2',
    expected: 'reject',
    parts: (t) => [req(t, 'GET', [], '', ['Host: a b/c'])],
    requests: one('GET'),
  },
  {
    id: 'host-userinfo',
    name: 'Host with userinfo (user@host)',
    category: 'host',
    rfc: 'RFC 9110 §7.2',
    expected: 'reject',
    parts: (t) => [req(t, 'GET', [], '', ['Host: user@conformance.test'])],
    requests: one('GET'),
  },

  // --- request line -----------------------------------------------------------------------
  {
    id: 'line-absolute-form',
    name: 'absolute-form target',
    category: 'request-line',
    rfc: 'RFC 9112 §3.2.2',
    expected: 'forward',
    parts: (t) => [`GET http://conformance.test/${t} HTTP/1.1${CRLF}${HOST}${CRLF}${CRLF}`],
    requests: one('GET'),
  },
  {
    id: 'line-http10',
    name: 'HTTP/1.0 request with Host',
    category: 'request-line',
    rfc: 'RFC 9112 §2.3',
    expected: 'forward',
    parts: (t) => [`GET /${t} HTTP/1.0${CRLF}${HOST}${CRLF}${CRLF}`],
    requests: one('GET'),
  },
  {
    id: 'line-http20-text',
    name: 'HTTP/2.0 as text on an HTTP/1.1 connection',
    category: 'request-line',
    rfc: 'RFC 9112 §2.3',
    expected: 'reject',
    parts: (t) => [`GET /${t} HTTP/2.0${CRLF}${HOST}${CRLF}${CRLF}`],
    requests: one('GET'),
  },
  {
    id: 'line-bad-version',
    name: 'version HTTP/1.x',
    category: 'request-line',
    rfc: 'RFC 9112 §2.3',
    expected: 'reject',
    parts: (t) => [`GET /${t} HTTP/1.x${CRLF}${HOST}${CRLF}${CRLF}`],
    requests: one('GET'),
  },
  {
    id: 'line-no-version',
    name: 'no version (HTTP/0.9 style)',
    category: 'request-line',
    rfc: 'RFC 9112 §3',
    expected: 'reject',
    parts: (t) => [`GET /${t}${CRLF}${HOST}${CRLF}${CRLF}`],
    requests: one('GET'),
  },
  {
    id: 'line-lowercase-method',
    name: 'lower-case method "get" (methods are case-sensitive)',
    category: 'request-line',
    rfc: 'RFC 9110 §9.1',
    expected: 'either',
    parts: (t) => [`get /${t} HTTP/1.1${CRLF}${HOST}${CRLF}${CRLF}`],
    requests: one('get'),
  },
  {
    id: 'line-tab-separators',
    name: 'HTAB instead of SP in the request line',
    category: 'request-line',
    rfc: 'RFC 9112 §3',
    expected: 'either',
    parts: (t) => [`GET\t/${t}\tHTTP/1.1${CRLF}${HOST}${CRLF}${CRLF}`],
    requests: one('GET'),
  },
  {
    id: 'line-leading-crlf',
    name: 'empty line before the request line',
    category: 'request-line',
    rfc: 'RFC 9112 §2.2',
    expected: 'either',
    parts: (t) => [`${CRLF}${req(t, 'GET', [])}`],
    requests: one('GET'),
  },

  // --- pipelining ------------------------------------------------------------------------
  {
    id: 'pipeline-two-valid',
    name: 'two valid GETs in one write',
    category: 'pipelining',
    rfc: 'RFC 9112 §9.3.2',
    expected: 'forward',
    parts: (t) => [req(t, 'GET', []) + `GET /${t}/second HTTP/1.1${CRLF}${HOST}${CRLF}${CRLF}`],
    requests: (t) => [
      { method: 'GET', path: `/${t}`, body: '' },
      { method: 'GET', path: `/${t}/second`, body: '' },
    ],
  },
  {
    id: 'pipeline-valid-behind-bad-cl',
    name: 'valid GET behind a request with two different Content-Lengths',
    category: 'pipelining',
    rfc: 'RFC 9112 §6.3',
    expected: 'reject',
    parts: (t) => [req(t, 'POST', ['Content-Length: 3', 'Content-Length: 5'], BODY) + `GET /${t}/second HTTP/1.1${CRLF}${HOST}${CRLF}${CRLF}`],
    requests: (t) => [
      { method: 'POST', path: `/${t}`, body: BODY },
      { method: 'GET', path: `/${t}/second`, body: '' },
    ],
  },
  {
    id: 'pipeline-valid-behind-bad-te',
    name: 'valid GET behind a request with Transfer-Encoding: gzip',
    category: 'pipelining',
    rfc: 'RFC 9112 §6.3',
    expected: 'reject',
    parts: (t) => [req(t, 'POST', ['Transfer-Encoding: gzip'], CHUNKED_BODY) + `GET /${t}/second HTTP/1.1${CRLF}${HOST}${CRLF}${CRLF}`],
    requests: (t) => [
      { method: 'POST', path: `/${t}`, body: BODY },
      { method: 'GET', path: `/${t}/second`, body: '' },
    ],
  },
  {
    id: 'pipeline-valid-behind-no-host',
    name: 'valid GET behind a request without Host',
    category: 'pipelining',
    rfc: 'RFC 9112 §3.2',
    expected: 'reject',
    parts: (t) => [`GET /${t} HTTP/1.1${CRLF}${CRLF}GET /${t}/second HTTP/1.1${CRLF}${HOST}${CRLF}${CRLF}`],
    requests: (t) => [
      { method: 'GET', path: `/${t}`, body: '' },
      { method: 'GET', path: `/${t}/second`, body: '' },
    ],
  },

  // --- limits ---------------------------------------------------------------------------------
  {
    id: 'limit-60-header-lines',
    name: '60 field lines (more than 48)',
    category: 'limits',
    rfc: 'RFC 9110 §5.4',
    expected: 'either',
    parts: (t) => [req(t, 'GET', Array.from({ length: 59 }, (_, i) => `X-H${i}: v`))],
    requests: one('GET'),
  },
];

export function tagFor(run: string, index: number): string {
  return `cf${run}${String(index).padStart(4, '0')}`;
}

/** Finds every vector tag in a piece of text (a request target, raw bytes). */
export const TAG_PATTERN = /cf[a-z]{2}\d{4}/g;
