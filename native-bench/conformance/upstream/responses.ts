// The upstream-side vectors: what a malformed (or merely unusual) origin server writes
// back, byte for byte, and what a careful proxy must make of it for its client. Every
// body the upstream writes carries the vector's tag (`MARK-<tag>`), and every response
// smuggled behind a complete one carries `SMUGGLED-<tag>`, so whatever reaches a client
// can be traced to the vector that produced it even when the proxy pools connections.
//
// `expected`:
//   intact  the response is valid: the client gets its status and body exactly;
//   reject  the proxy must not pass it on: a 502 (nothing of the upstream's body), or,
//           when the flaw is found after the head was forwarded (a bad chunk), a close
//           before the message completes, so the client cannot take it as whole;
//   repair  the RFC lets a proxy either reject it or forward a repaired copy: a 502, or
//           the body intact with the flaw gone from the forwarded head (`checkHead`);
//   abort   the upstream stops mid-body: the client must see the message cut short
//           (a close before it completes) or a 502, never a complete message;
//   trailing bytes after a complete message: the proxy may refuse the response (a
//           502, or a close when the head had gone out) or forward the message whole
//           and discard the rest with the connection; never pass the rest on.
// After every answer the client asks again on the same connection (`/<tag>/next`), and
// nothing in the whole run may ever show a `SMUGGLED-` body.

export type ResponseExpected = 'intact' | 'reject' | 'repair' | 'abort' | 'trailing';

export interface ResponseVector {
  readonly id: string;
  readonly name: string;
  /** RFC and section that decides the expected class */
  readonly rfc: string;
  readonly expected: ResponseExpected;
  /** the method the client sends (default GET) */
  readonly method?: 'GET' | 'HEAD';
  /** extra request header lines the client sends (e.g. a conditional) */
  readonly requestFields?: readonly string[];
  /** the bytes the upstream writes for this vector's request */
  response(tag: string): string;
  /** after writing: close the connection, or keep it for the next request (default keep) */
  readonly thenClose?: boolean;
  /** intact / repair: the status and decoded body the client must get */
  readonly status?: number;
  readonly body?: (tag: string) => string;
  /** repair: why the forwarded head still carries the flaw, or null when repaired */
  checkHead?(head: string): string | null;
}

const CRLF = '\r\n';
export const mark = (tag: string): string => `MARK-${tag}`;
/** a complete response hidden behind another: whoever reads it was desynchronised */
export const smuggledResponse = (tag: string): string => `HTTP/1.1 200 OK${CRLF}Content-Length: ${`SMUGGLED-${tag}`.length}${CRLF}${CRLF}SMUGGLED-${tag}`;

function head(status: string, fields: readonly string[]): string {
  return `HTTP/1.1 ${status}${CRLF}${fields.map((f) => f + CRLF).join('')}${CRLF}`;
}
function cl(tag: string, fields: readonly string[] = [], status = '200 OK'): string {
  const b = mark(tag);
  return head(status, [`Content-Length: ${b.length}`, ...fields]) + b;
}
function chunked(tag: string): string {
  const b = mark(tag);
  return `${b.length.toString(16)}${CRLF}${b}${CRLF}0${CRLF}${CRLF}`;
}

const intact = { expected: 'intact' as const, status: 200, body: mark };

export const RESPONSE_VECTORS: readonly ResponseVector[] = [
  // ---- controls: valid responses a proxy must pass on unchanged ----
  { id: 'control-content-length', name: 'Content-Length body', rfc: 'RFC 9112 §6.2', ...intact, response: (t) => cl(t) },
  { id: 'control-chunked', name: 'chunked body', rfc: 'RFC 9112 §7.1', ...intact, response: (t) => head('200 OK', ['Transfer-Encoding: chunked']) + chunked(t) },
  { id: 'control-close-delimited', name: 'body delimited by the close (no length)', rfc: 'RFC 9112 §6.3 (8)', ...intact, thenClose: true, response: (t) => head('200 OK', ['Connection: close']) + mark(t) },
  {
    id: 'control-chunk-extensions-trailers',
    name: 'chunk extensions and a trailer section',
    rfc: 'RFC 9112 §7.1.1, §7.1.2',
    ...intact,
    response: (t) => head('200 OK', ['Transfer-Encoding: chunked', 'Trailer: X-Digest']) + `${mark(t).length.toString(16)};ext=1${CRLF}${mark(t)}${CRLF}0${CRLF}X-Digest: abc${CRLF}${CRLF}`,
  },
  { id: 'interim-103', name: '103 Early Hints before the final response', rfc: 'RFC 9110 §15.2, RFC 8297', ...intact, response: (t) => head('103 Early Hints', ['Link: </style.css>; rel=preload']) + cl(t) },
  { id: 'interim-100-unsolicited', name: 'a 100 Continue nobody asked for, then 200', rfc: 'RFC 9110 §15.2.1', ...intact, response: (t) => head('100 Continue', []) + cl(t) },
  { id: 'control-404', name: 'an error status with a body', rfc: 'RFC 9110 §15.5.5', expected: 'intact', status: 404, body: mark, response: (t) => cl(t, [], '404 Not Found') },
  // ---- Content-Length ----
  { id: 'cl-duplicate-different', name: 'two Content-Length values that differ', rfc: 'RFC 9112 §6.3 (5)', expected: 'reject', response: (t) => head('200 OK', [`Content-Length: ${mark(t).length}`, `Content-Length: ${mark(t).length + 1}`]) + mark(t) + 'x' },
  {
    id: 'cl-duplicate-same',
    name: 'Content-Length twice with the same value',
    rfc: 'RFC 9110 §8.6',
    expected: 'repair',
    status: 200,
    body: mark,
    response: (t) => head('200 OK', [`Content-Length: ${mark(t).length}`, `Content-Length: ${mark(t).length}`]) + mark(t),
    checkHead: (h) => ((h.match(/\r\ncontent-length:/gi) ?? []).length > 1 ? 'Content-Length still appears twice' : null),
  },
  {
    id: 'cl-list-same',
    name: 'Content-Length as a list of equal values (5, 5)',
    rfc: 'RFC 9110 §8.6',
    expected: 'repair',
    status: 200,
    body: mark,
    response: (t) => head('200 OK', [`Content-Length: ${mark(t).length}, ${mark(t).length}`]) + mark(t),
    checkHead: (h) => (/\r\ncontent-length:[^\r]*,/i.test(h) ? 'the Content-Length list was forwarded' : null),
  },
  { id: 'cl-not-a-number', name: 'Content-Length: abc', rfc: 'RFC 9112 §6.3 (5)', expected: 'reject', thenClose: true, response: (t) => head('200 OK', ['Content-Length: abc']) + mark(t) },
  { id: 'cl-negative', name: 'Content-Length: -5', rfc: 'RFC 9112 §6.3 (5)', expected: 'reject', thenClose: true, response: (t) => head('200 OK', ['Content-Length: -5']) + mark(t) },
  { id: 'cl-plus-sign', name: 'Content-Length: +N', rfc: 'RFC 9110 §8.6 (1*DIGIT)', expected: 'reject', thenClose: true, response: (t) => head('200 OK', [`Content-Length: +${mark(t).length}`]) + mark(t) },
  { id: 'cl-overflow', name: 'Content-Length beyond 2^64', rfc: 'RFC 9110 §8.6', expected: 'reject', thenClose: true, response: (t) => head('200 OK', ['Content-Length: 99999999999999999999999']) + mark(t) },
  {
    id: 'cl-and-te',
    name: 'Content-Length with Transfer-Encoding: chunked',
    rfc: 'RFC 9112 §6.1 (an intermediary that forwards MUST remove Content-Length)',
    expected: 'repair',
    status: 200,
    body: mark,
    thenClose: true,
    response: (t) => head('200 OK', ['Content-Length: 3', 'Transfer-Encoding: chunked']) + chunked(t),
    checkHead: (h) => (/\r\ncontent-length:/i.test(h) && /\r\ntransfer-encoding:/i.test(h) ? 'both Content-Length and Transfer-Encoding were forwarded' : /\r\ncontent-length:\s*3\r/i.test(h) ? 'the stale Content-Length: 3 was forwarded' : null),
  },
  // ---- chunked framing ----
  { id: 'chunk-size-not-hex', name: 'chunk size "zz"', rfc: 'RFC 9112 §7.1', expected: 'reject', thenClose: true, response: (t) => head('200 OK', ['Transfer-Encoding: chunked']) + `zz${CRLF}${mark(t)}${CRLF}0${CRLF}${CRLF}` },
  { id: 'chunk-size-overflow', name: 'chunk size beyond 2^64', rfc: 'RFC 9112 §7.1', expected: 'reject', thenClose: true, response: (t) => head('200 OK', ['Transfer-Encoding: chunked']) + `fffffffffffffffffffff${CRLF}${mark(t)}${CRLF}0${CRLF}${CRLF}` },
  { id: 'chunk-data-too-long', name: 'chunk data longer than its size', rfc: 'RFC 9112 §7.1', expected: 'reject', thenClose: true, response: (t) => head('200 OK', ['Transfer-Encoding: chunked']) + `2${CRLF}${mark(t)}${CRLF}0${CRLF}${CRLF}` },
  { id: 'chunk-size-negative', name: 'chunk size "-1"', rfc: 'RFC 9112 §7.1', expected: 'reject', thenClose: true, response: (t) => head('200 OK', ['Transfer-Encoding: chunked']) + `-1${CRLF}${mark(t)}${CRLF}0${CRLF}${CRLF}` },
  // ---- bytes where no body may be ----
  // The message ends where its framing says; what follows must never reach a client.
  // tidegate refuses these (its own contract, test/integration/upstream-conformance.test.ts);
  // forwarding the message and dropping the connection is the RFC's other reading.
  { id: 'bytes-after-content-length', name: 'a second response glued behind a complete one', rfc: 'RFC 9112 §6.3, §9.3', expected: 'trailing', status: 200, body: mark, response: (t) => cl(t) + smuggledResponse(t) },
  { id: 'bytes-after-chunked', name: 'a response glued behind the last chunk', rfc: 'RFC 9112 §7.1, §9.3', expected: 'trailing', status: 200, body: mark, response: (t) => head('200 OK', ['Transfer-Encoding: chunked']) + chunked(t) + smuggledResponse(t) },
  { id: 'head-with-body', name: 'a body sent in answer to HEAD', rfc: 'RFC 9110 §9.3.2, RFC 9112 §6.3 (1)', method: 'HEAD', expected: 'trailing', status: 200, body: () => '', response: (t) => head('200 OK', [`Content-Length: ${`SMUGGLED-${t}`.length + 40}`]) + smuggledResponse(t) },
  { id: '204-with-body', name: 'a body behind 204 No Content', rfc: 'RFC 9110 §15.3.5, RFC 9112 §6.3 (1)', expected: 'trailing', status: 204, body: () => '', response: (t) => head('204 No Content', []) + smuggledResponse(t) },
  {
    id: '304-with-body',
    name: 'a body behind 304 Not Modified',
    rfc: 'RFC 9110 §15.4.5, RFC 9112 §6.3 (1)',
    requestFields: ['If-None-Match: "v1"'],
    expected: 'trailing',
    status: 304,
    body: () => '',
    response: (t) => head('304 Not Modified', ['ETag: "v1"']) + smuggledResponse(t),
  },
  // ---- the status line and the head ----
  { id: 'status-two-digits', name: 'status code "20"', rfc: 'RFC 9112 §4', expected: 'reject', thenClose: true, response: (t) => `HTTP/1.1 20 OK${CRLF}Content-Length: ${mark(t).length}${CRLF}${CRLF}${mark(t)}` },
  {
    // Syntactically an HTTP-version (DIGIT "." DIGIT); RFC 9110 §2.5 leaves a foreign
    // major version undefined, so a proxy may refuse it or answer in its own version.
    id: 'status-version-2',
    name: 'status line "HTTP/2.0 200"',
    rfc: 'RFC 9112 §2.3, RFC 9110 §2.5',
    expected: 'repair',
    status: 200,
    body: mark,
    thenClose: true,
    response: (t) => `HTTP/2.0 200 OK${CRLF}Content-Length: ${mark(t).length}${CRLF}${CRLF}${mark(t)}`,
    checkHead: (h) => (/^HTTP\/1\.[01] /.test(h) ? null : 'the foreign version was forwarded'),
  },
  { id: 'status-line-missing', name: 'no status line (HTTP/0.9-style body)', rfc: 'RFC 9112 §4', expected: 'reject', thenClose: true, response: (t) => `${mark(t)}${CRLF}${CRLF}` },
  { id: 'head-oversize', name: 'a 96 KiB response head', rfc: 'RFC 9110 §2.3 (a recipient may limit)', expected: 'reject', thenClose: true, response: (t) => head('200 OK', [`X-Big: ${'a'.repeat(96 * 1024)}`, `Content-Length: ${mark(t).length}`]) + mark(t) },
  { id: 'header-no-colon', name: 'a header line without a colon', rfc: 'RFC 9112 §5', expected: 'reject', thenClose: true, response: (t) => head('200 OK', ['X-Broken-Line', `Content-Length: ${mark(t).length}`]) + mark(t) },
  {
    id: 'header-space-before-colon',
    name: 'whitespace between field name and colon',
    rfc: 'RFC 9112 §5.1 (a proxy MUST remove it before forwarding)',
    expected: 'repair',
    status: 200,
    body: mark,
    thenClose: true,
    response: (t) => head('200 OK', ['X-Spaced : 1', `Content-Length: ${mark(t).length}`]) + mark(t),
    checkHead: (h) => (/\r\nx-spaced[ \t]+:/i.test(h) ? 'the whitespace before the colon was forwarded' : null),
  },
  {
    id: 'header-obs-fold',
    name: 'obs-fold (a header continued on the next line)',
    rfc: 'RFC 9112 §5.2 (replace with SP or reject)',
    expected: 'repair',
    status: 200,
    body: mark,
    thenClose: true,
    response: (t) => head('200 OK', ['X-Folded: a', ' b', `Content-Length: ${mark(t).length}`]) + mark(t),
    checkHead: (h) => (/\r\n[ \t]/.test(h) ? 'the folded line was forwarded' : null),
  },
  {
    id: 'header-value-nul',
    name: 'NUL in a header value',
    rfc: 'RFC 9110 §5.5',
    expected: 'repair',
    status: 200,
    body: mark,
    thenClose: true,
    response: (t) => head('200 OK', ['X-Nul: a\u0000b', `Content-Length: ${mark(t).length}`]) + mark(t),
    checkHead: (h) => (h.includes('\u0000') ? 'the NUL was forwarded' : null),
  },
  {
    id: 'header-value-bare-cr',
    name: 'a bare CR in a header value',
    rfc: 'RFC 9112 §2.2',
    expected: 'repair',
    status: 200,
    body: mark,
    thenClose: true,
    response: (t) => head('200 OK', ['X-Cr: a\rX-Injected: 1', `Content-Length: ${mark(t).length}`]) + mark(t),
    checkHead: (h) => (/\r(?!\n)/.test(h) ? 'the bare CR was forwarded' : /\r\nx-injected:/i.test(h) ? 'the bare CR split the field into an injected one' : null),
  },
  {
    id: 'head-lf-only',
    name: 'line endings of LF alone',
    rfc: 'RFC 9112 §2.2 (a recipient MAY accept a bare LF)',
    expected: 'repair',
    status: 200,
    body: mark,
    thenClose: true,
    response: (t) => `HTTP/1.1 200 OK\nContent-Length: ${mark(t).length}\n\n${mark(t)}`,
    checkHead: (h) => (/[^\r]\n/.test(h) ? 'bare LF line endings were forwarded' : null),
  },
  // ---- the upstream stops mid-message ----
  { id: 'premature-close-content-length', name: 'close after 5 of the promised bytes', rfc: 'RFC 9112 §8 (incomplete message)', expected: 'abort', thenClose: true, response: (t) => head('200 OK', ['Content-Length: 100']) + mark(t).slice(0, 5) },
  { id: 'premature-close-chunked', name: 'close before the last chunk', rfc: 'RFC 9112 §8, §7.1', expected: 'abort', thenClose: true, response: (t) => head('200 OK', ['Transfer-Encoding: chunked']) + `${mark(t).length.toString(16)}${CRLF}${mark(t)}${CRLF}` },
  { id: 'premature-close-head', name: 'close in the middle of the head', rfc: 'RFC 9112 §8', expected: 'reject', thenClose: true, response: () => `HTTP/1.1 200 OK${CRLF}Content-Len` },
];

/** `uc` + run letters + index, e.g. `ucaa0007`: found again in bodies and paths */
export function responseTag(run: string, index: number): string {
  return `uc${run}${String(index).padStart(4, '0')}`;
}

export const RESPONSE_TAG_PATTERN = /uc[a-z]{2}\d{4}/g;
