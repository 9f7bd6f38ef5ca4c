// Upstream-side conformance: what tidegate makes of its upstream's bytes.
//
// Part 1 is tidegate's own contract, one case per test, through a real gateway (two
// workers) whose route leads to a raw upstream that writes each case's bytes exactly
// (`/case/<id>`), with `retries: 0` so that no retry hides a case:
// * a valid response reaches the client whole;
// * a malformed one is answered `502 TG_ERR_UPSTREAM_PROTOCOL` when no byte of it has
//   gone to the client yet, and the client connection is closed without a clean end
//   when the flaw is in a body whose head went out already;
// * either way the upstream connection is discarded (the gateway closes it, and the
//   next request is served on another one), the request is sent once, and what the
//   client reads parses strictly as one valid HTTP/1.1 response — checked again by a
//   follow-up request on the same client connection, which any stray byte would spoil.
// Part 2 is the idle-connection race (RFC 9110 §9.2.2), on a gateway of its own so
// that the worker's pool holds only the connections the test made.
// Part 3 runs the cross-proxy vector suite (native-bench/conformance/upstream) through
// the gateway, as `npm run conformance:upstream` does beside nginx and HAProxy.
// Before all of them the strict reader is checked on its own: a clean run would prove
// nothing if it took a malformed answer for a valid one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, baseConfig, type RunningGateway } from '../helpers/gateway.js';
import { okResponse, startRawUpstream, type RawUpstream, type Reply, type SeenRequest } from '../helpers/raw-upstream.js';
import { StrictClient, parseResponse, type Field, type Outcome } from '../helpers/strict-client.js';
import { until } from '../helpers/poll.js';
import { runResponseSuite, startMalformedUpstream } from '../../native-bench/conformance/upstream/suite.js';
import { RESPONSE_VECTORS } from '../../native-bench/conformance/upstream/responses.js';

type Expect =
  /** valid: the client gets this status and body; `discarded`: the upstream connection must be dropped after it all the same */
  | {
      readonly answer: 'forward';
      readonly status: number;
      readonly body: string;
      readonly check?: (fields: readonly Field[], trailers: readonly Field[]) => string | null;
      readonly discarded?: boolean;
    }
  /** nothing of the response went out: this error, as the JSON body of src/worker/error-response.ts */
  | { readonly answer: 'error'; readonly code: 'TG_ERR_UPSTREAM_PROTOCOL' | 'TG_ERR_UPSTREAM_RESET' }
  /** the head went out before the flaw: the client sees a 200 head, then a close before the message ends */
  | { readonly answer: 'cut' };

interface UpstreamCase {
  readonly id: string;
  readonly name: string;
  readonly rfc: string;
  readonly method?: 'GET' | 'HEAD';
  readonly fields?: readonly string[];
  readonly reply: Reply;
  readonly expect: Expect;
}

const head = (statusLine: string, fields: readonly string[]): string => `${statusLine}\r\n${fields.map((f) => `${f}\r\n`).join('')}\r\n`;
const BODY = 'the-upstream-body';
const SMUGGLED = 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED';
const once = (bytes: string): Reply => ({ pieces: [bytes] });
const forward = (body = BODY, status = 200, check?: (fields: readonly Field[], trailers: readonly Field[]) => string | null): Expect => ({ answer: 'forward', status, body, ...(check ? { check } : {}) });
const protocol: Expect = { answer: 'error', code: 'TG_ERR_UPSTREAM_PROTOCOL' };
const withLength = (lengthValue: string, body = BODY): Reply => once(head('HTTP/1.1 200 OK', [`Content-Length: ${lengthValue}`]) + body);
const chunkedWith = (chunks: string): Reply => once(head('HTTP/1.1 200 OK', ['Transfer-Encoding: chunked']) + chunks);
const withField = (field: string): Reply => once(head('HTTP/1.1 200 OK', [field, `Content-Length: ${BODY.length}`]) + BODY);
const withStatusLine = (line: string): Reply => once(`${line}\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`);
const field = (fields: readonly Field[], name: string): string | undefined => fields.find(([n]) => n === name)?.[1];
const split = (s: string, size: number): string[] => Array.from({ length: Math.ceil(s.length / size) }, (_, i) => s.slice(i * size, (i + 1) * size));

const UPSTREAM_CASES: readonly UpstreamCase[] = [
  // ---- valid responses: forwarded whole ----
  { id: 'cl-body', name: 'Content-Length body', rfc: 'RFC 9112 §6.2', reply: once(okResponse(BODY)), expect: forward() },
  {
    id: 'chunked-ext-trailer',
    name: 'chunked body with chunk extensions and a trailer section (trailers are not forwarded)',
    rfc: 'RFC 9112 §7.1.1, §7.1.2',
    reply: chunkedWith('5;name=value\r\nhello\r\n6;a=1;b="x y"\r\n world\r\n0\r\nX-Digest: abc\r\n\r\n'),
    expect: forward('hello world', 200, (fields, trailers) =>
      trailers.length > 0 ? `trailers forwarded: ${JSON.stringify(trailers)}` : field(fields, 'x-digest') !== undefined ? 'the trailer was forwarded as a header' : null,
    ),
  },
  {
    id: 'close-delimited',
    name: 'close-delimited body (no Content-Length, no Transfer-Encoding, then the close)',
    rfc: 'RFC 9112 §6.3 (8)',
    reply: { pieces: [head('HTTP/1.1 200 OK', ['Connection: close']) + 'part one, ', 'part two'], delayMs: 30, then: 'end' },
    expect: forward('part one, part two'),
  },
  { id: 'interim-100', name: '100 Continue, then 200 (the client sees only the 200)', rfc: 'RFC 9110 §15.2', reply: once(head('HTTP/1.1 100 Continue', []) + okResponse(BODY)), expect: forward() },
  { id: 'interim-103', name: '103 Early Hints, then 200', rfc: 'RFC 9110 §15.2, RFC 8297', reply: once(head('HTTP/1.1 103 Early Hints', ['Link: </style.css>; rel=preload']) + okResponse(BODY)), expect: forward() },
  {
    id: 'head-content-length',
    name: 'HEAD answered with Content-Length and no body',
    rfc: 'RFC 9110 §9.3.2',
    method: 'HEAD',
    reply: once(head('HTTP/1.1 200 OK', ['Content-Length: 1234'])),
    expect: forward('', 200, (fields) => (field(fields, 'content-length') === '1234' ? null : `Content-Length ${field(fields, 'content-length')}, not 1234`)),
  },
  { id: 'status-204', name: '204 No Content', rfc: 'RFC 9110 §15.3.5', reply: once(head('HTTP/1.1 204 No Content', [])), expect: forward('', 204) },
  { id: 'status-304', name: '304 Not Modified to a conditional GET', rfc: 'RFC 9110 §15.4.5', fields: ['If-None-Match: "v1"'], reply: once(head('HTTP/1.1 304 Not Modified', ['ETag: "v1"'])), expect: forward('', 304) },
  { id: 'head-split', name: 'the head split over many TCP writes', rfc: 'RFC 9112 §2.1', reply: { pieces: split(okResponse(BODY, ['X-Long-Name-Field: some value']), 5), delayMs: 3 }, expect: forward() },
  {
    id: 'body-split',
    name: 'a Content-Length body split over many TCP writes',
    rfc: 'RFC 9112 §6.2',
    reply: { pieces: [head('HTTP/1.1 200 OK', ['Content-Length: 36']), ...split('abcdefghijklmnopqrstuvwxyz0123456789', 4)], delayMs: 5 },
    expect: forward('abcdefghijklmnopqrstuvwxyz0123456789'),
  },
  { id: 'head-48k', name: 'a 48 KiB response head (under the 64 KiB limit)', rfc: 'RFC 9110 §2.3', reply: withField(`X-Big: ${'a'.repeat(48 * 1024)}`), expect: forward() },
  {
    // Nothing can tell such bytes from the answer to the next request sent on that
    // connection: the gateway must drop it before it sends another request there.
    id: 'stray-after-idle',
    name: 'a complete response, then stray bytes on the idle connection 50 ms later',
    rfc: 'RFC 9112 §9.3',
    reply: { pieces: [okResponse(BODY)], later: { afterMs: 50, bytes: SMUGGLED } },
    expect: { answer: 'forward', status: 200, body: BODY, discarded: true },
  },
  { id: 'status-empty-reason', name: 'status line with an empty reason phrase after its SP (`HTTP/1.1 200 `)', rfc: 'RFC 9112 §4', reply: withStatusLine('HTTP/1.1 200 '), expect: forward() },
  // ---- malformed, found before any byte went out: 502 TG_ERR_UPSTREAM_PROTOCOL ----
  { id: 'cl-two-values', name: 'two different Content-Length fields', rfc: 'RFC 9112 §6.3 (5)', reply: once(head('HTTP/1.1 200 OK', [`Content-Length: ${BODY.length}`, `Content-Length: ${BODY.length + 1}`]) + BODY + 'x'), expect: protocol },
  { id: 'cl-list', name: 'Content-Length: 1, 2', rfc: 'RFC 9110 §8.6', reply: withLength('1, 2', 'ab'), expect: protocol },
  { id: 'cl-not-numeric', name: 'Content-Length: abc', rfc: 'RFC 9110 §8.6', reply: withLength('abc'), expect: protocol },
  { id: 'cl-negative', name: 'Content-Length: -5', rfc: 'RFC 9110 §8.6', reply: withLength('-5'), expect: protocol },
  { id: 'cl-plus-sign', name: 'Content-Length: +5', rfc: 'RFC 9110 §8.6 (1*DIGIT)', reply: withLength('+5', 'abcde'), expect: protocol },
  { id: 'cl-hex', name: 'Content-Length: 0x5', rfc: 'RFC 9110 §8.6 (1*DIGIT)', reply: withLength('0x5', 'abcde'), expect: protocol },
  { id: 'cl-over-2-53', name: 'Content-Length over 2^53 (9007199254740993)', rfc: 'RFC 9110 §8.6 (a recipient MUST prevent overflow and precision loss)', reply: withLength('9007199254740993'), expect: protocol },
  { id: 'cl-with-te', name: 'Content-Length with Transfer-Encoding: chunked', rfc: 'RFC 9112 §6.1, §6.3 (3)', reply: once(head('HTTP/1.1 200 OK', ['Content-Length: 5', 'Transfer-Encoding: chunked']) + '5\r\nhello\r\n0\r\n\r\n'), expect: protocol },
  // RFC 9112 §6.1: a sender MUST NOT apply chunked more than once, so the framing is unknowable.
  { id: 'te-chunked-twice', name: 'Transfer-Encoding: chunked, chunked', rfc: 'RFC 9112 §6.1', reply: once(head('HTTP/1.1 200 OK', ['Transfer-Encoding: chunked, chunked']) + '5\r\nhello\r\n0\r\n\r\n'), expect: protocol },
  { id: 'chunk-size-zz', name: 'chunk size "zz"', rfc: 'RFC 9112 §7.1', reply: chunkedWith('zz\r\nhello\r\n0\r\n\r\n'), expect: protocol },
  { id: 'chunk-size-empty', name: 'empty chunk size line', rfc: 'RFC 9112 §7.1', reply: chunkedWith('\r\nhello\r\n0\r\n\r\n'), expect: protocol },
  { id: 'chunk-size-negative', name: 'chunk size "-1"', rfc: 'RFC 9112 §7.1', reply: chunkedWith('-1\r\nhello\r\n0\r\n\r\n'), expect: protocol },
  { id: 'chunk-size-17-hex', name: 'chunk size of 17 hex digits', rfc: 'RFC 9112 §7.1 (anticipate overflow)', reply: chunkedWith(`1${'0'.repeat(16)}\r\nhello\r\n0\r\n\r\n`), expect: protocol },
  { id: 'chunk-no-crlf', name: 'chunk data not followed by CRLF (same write as the head)', rfc: 'RFC 9112 §7.1', reply: chunkedWith('5\r\nhelloXX0\r\n\r\n'), expect: protocol },
  { id: 'bytes-after-cl', name: 'bytes after a complete Content-Length response, in the same write', rfc: 'RFC 9112 §6.3, §9.3', reply: once(okResponse(BODY) + SMUGGLED), expect: protocol },
  { id: 'head-with-body', name: 'a body to HEAD (same write as the head)', rfc: 'RFC 9110 §9.3.2, RFC 9112 §6.3 (1)', method: 'HEAD', reply: once(head('HTTP/1.1 200 OK', ['Content-Length: 8']) + 'SMUGGLED'), expect: protocol },
  { id: '204-with-body', name: 'a body to 204 (same write as the head)', rfc: 'RFC 9110 §15.3.5, RFC 9112 §6.3 (1)', reply: once(head('HTTP/1.1 204 No Content', []) + SMUGGLED), expect: protocol },
  {
    id: '304-with-body',
    name: 'a body to 304 (same write as the head)',
    rfc: 'RFC 9110 §15.4.5, RFC 9112 §6.3 (1)',
    fields: ['If-None-Match: "v1"'],
    reply: once(head('HTTP/1.1 304 Not Modified', ['ETag: "v1"', 'Content-Length: 8']) + 'SMUGGLED'),
    expect: protocol,
  },
  { id: 'status-2-digits', name: 'status line `HTTP/1.1 20 OK`', rfc: 'RFC 9112 §4 (3DIGIT)', reply: withStatusLine('HTTP/1.1 20 OK'), expect: protocol },
  { id: 'status-4-digits', name: 'status line `HTTP/1.1 2000 OK`', rfc: 'RFC 9112 §4 (3DIGIT)', reply: withStatusLine('HTTP/1.1 2000 OK'), expect: protocol },
  { id: 'status-http-2', name: 'status line `HTTP/2.0 200 OK`', rfc: 'RFC 9112 §2.3 (an HTTP/1.1 connection)', reply: withStatusLine('HTTP/2.0 200 OK'), expect: protocol },
  { id: 'status-icy', name: 'status line `ICY 200 OK`', rfc: 'RFC 9112 §2.3, §4', reply: withStatusLine('ICY 200 OK'), expect: protocol },
  // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]: the reason may be empty, the SP may not.
  { id: 'status-no-sp', name: 'status line `HTTP/1.1 200` (no SP after the code)', rfc: 'RFC 9112 §4', reply: withStatusLine('HTTP/1.1 200'), expect: protocol },
  { id: 'status-101-unasked', name: '101 Switching Protocols to a request that asked for no upgrade', rfc: 'RFC 9110 §15.2.2, §7.8', reply: once(head('HTTP/1.1 101 Switching Protocols', ['Connection: upgrade', 'Upgrade: websocket'])), expect: protocol },
  { id: 'field-space-before-colon', name: 'whitespace between field name and colon', rfc: 'RFC 9112 §5.1', reply: withField('X-Spaced : 1'), expect: protocol },
  { id: 'field-obs-fold', name: 'obs-fold (a field value continued on the next line)', rfc: 'RFC 9112 §5.2', reply: once(head('HTTP/1.1 200 OK', ['X-Folded: a', ' b', `Content-Length: ${BODY.length}`]) + BODY), expect: protocol },
  { id: 'field-nul', name: 'NUL in a field value', rfc: 'RFC 9110 §5.5', reply: withField('X-Nul: a\u0000b'), expect: protocol },
  { id: 'field-bare-cr', name: 'bare CR in a field value', rfc: 'RFC 9112 §2.2', reply: withField('X-Cr: a\rb'), expect: protocol },
  { id: 'field-no-colon', name: 'a field line without a colon', rfc: 'RFC 9112 §5', reply: withField('X-Broken-Line'), expect: protocol },
  // RFC 9112 §2.2 lets a recipient accept a bare LF; tidegate's upstream client requires CRLF.
  { id: 'bare-lf', name: 'bare LF line endings', rfc: 'RFC 9112 §2.2', reply: once(`HTTP/1.1 200 OK\nContent-Length: ${BODY.length}\n\n${BODY}`), expect: protocol },
  { id: 'head-over-64k', name: 'a response head over 64 KiB', rfc: 'RFC 9110 §2.3 (a recipient may limit)', reply: withField(`X-Big: ${'a'.repeat(70 * 1024)}`), expect: protocol },
  { id: 'close-mid-head', name: 'the upstream closes before the head is complete', rfc: 'RFC 9112 §8', reply: { pieces: ['HTTP/1.1 200 OK\r\nContent-Len'], then: 'end' }, expect: { answer: 'error', code: 'TG_ERR_UPSTREAM_RESET' } },
  // ---- the flaw comes after the head went out: the client connection is cut ----
  { id: 'cl-close-early', name: 'Content-Length: 100, then a close after 10 bytes', rfc: 'RFC 9112 §8', reply: { pieces: [head('HTTP/1.1 200 OK', ['Content-Length: 100']) + '0123456789'], then: 'end', thenAfterMs: 50 }, expect: { answer: 'cut' } },
  {
    id: 'chunked-close-early',
    name: 'chunked body, then a close before the last chunk',
    rfc: 'RFC 9112 §8, §7.1',
    reply: { pieces: [head('HTTP/1.1 200 OK', ['Transfer-Encoding: chunked']) + '5\r\nhello\r\n'], then: 'end', thenAfterMs: 50 },
    expect: { answer: 'cut' },
  },
  {
    id: 'chunk-size-invalid-later',
    name: 'an invalid chunk size after a valid first chunk',
    rfc: 'RFC 9112 §7.1',
    reply: { pieces: [head('HTTP/1.1 200 OK', ['Transfer-Encoding: chunked']) + '5\r\nhello\r\n', 'zz\r\nworld\r\n0\r\n\r\n'], delayMs: 50 },
    expect: { answer: 'cut' },
  },
];


const HOST = 'upstream-conformance.test';
const CASE_MS = 8_000;

function request(method: string, target: string, fields: readonly string[] = [], body?: string): string {
  const framing = body === undefined ? '' : `Content-Length: ${body.length}\r\n`;
  return `${method} ${target} HTTP/1.1\r\nHost: ${HOST}\r\n${fields.map((f) => `${f}\r\n`).join('')}${framing}\r\n${body ?? ''}`;
}

function describeOutcome(o: Outcome): string {
  return `${JSON.stringify(o.parsed).slice(0, 300)}; closed ${o.closed}; timed out ${o.timedOut}; raw ${JSON.stringify(o.raw.slice(0, 200))}`;
}

/** The answer is one complete valid response, nothing behind it; returns it. */
function complete(o: Outcome): Extract<Outcome['parsed'], { kind: 'complete' }> {
  assert.equal(o.parsed.kind, 'complete', describeOutcome(o));
  const p = o.parsed as Extract<Outcome['parsed'], { kind: 'complete' }>;
  assert.equal(p.rest, '', `bytes behind the response: ${describeOutcome(o)}`);
  return p;
}

/** The gateway's 502 with `code` in its JSON body; a HEAD's answer has the fields and no body (RFC 9110 §9.3.2). */
function assertErrorBody(o: Outcome, code: string, method = 'GET'): void {
  const p = complete(o);
  assert.equal(p.status, 502, describeOutcome(o));
  assert.equal(field(p.fields, 'content-type'), 'application/json', describeOutcome(o));
  if (method === 'HEAD') {
    assert.equal(p.body, '', describeOutcome(o));
    return;
  }
  const json = JSON.parse(p.body) as { error?: { code?: string } };
  assert.equal(json.error?.code, code, describeOutcome(o));
}

async function connectionClosedByGateway(up: RawUpstream, conn: number, what: string): Promise<void> {
  const rec = await until(`${what}: the upstream connection closed`, () => up.connections[conn - 1]!, (r) => r.closed, 5_000);
  assert.ok(rec.closedByPeer, `${what}: the upstream connection was closed by the script, not discarded by the gateway`);
}

/** Follow-up on the same client connection: a plain response arrives whole, on another upstream connection when `notOn` is given. */
async function followUp(client: StrictClient, up: RawUpstream, id: string, notOn: number | null): Promise<void> {
  const target = `/case/${id}/next`;
  client.send(request('GET', target));
  const o = await client.response('GET', CASE_MS);
  const p = complete(o);
  assert.equal(p.status, 200, describeOutcome(o));
  assert.equal(p.body, `next-${id}`, describeOutcome(o));
  const seen = up.seen(target);
  assert.equal(seen.length, 1, `${target} reached the upstream ${seen.length} times`);
  if (notOn !== null) assert.notEqual(seen[0]!.conn, notOn, 'the follow-up reused the connection that carried the malformed response');
}

async function runCase(port: number, up: RawUpstream, c: UpstreamCase): Promise<void> {
  const method = c.method ?? 'GET';
  const target = `/case/${c.id}`;
  const client = await StrictClient.open(port);
  try {
    client.send(request(method, target, c.fields));
    const o = await client.response(method, CASE_MS);
    assert.ok(!o.timedOut, `no answer in ${CASE_MS} ms: ${describeOutcome(o)}`);
    assert.notEqual(o.parsed.kind, 'invalid', `the client got malformed bytes: ${describeOutcome(o)}`);
    const seen = up.seen(target);
    assert.equal(seen.length, 1, `the request reached the upstream ${seen.length} times`);
    const conn = seen[0]!.conn;
    const e = c.expect;
    switch (e.answer) {
      case 'forward': {
        const p = complete(o);
        assert.equal(p.status, e.status, describeOutcome(o));
        assert.equal(p.body, e.body, describeOutcome(o));
        const flaw = e.check?.(p.fields, p.trailers) ?? null;
        assert.equal(flaw, null, describeOutcome(o));
        if (e.discarded === true) await connectionClosedByGateway(up, conn, c.id);
        if (!client.closed) await followUp(client, up, c.id, e.discarded === true ? conn : null);
        return;
      }
      case 'error': {
        assertErrorBody(o, e.code, method);
        if (c.reply.then === undefined) await connectionClosedByGateway(up, conn, c.id);
        assert.ok(!client.closed, 'the client connection was closed after a 502 that needed no close');
        await followUp(client, up, c.id, conn);
        return;
      }
      case 'cut': {
        assert.equal(o.parsed.kind, 'incomplete', `not cut short: ${describeOutcome(o)}`);
        assert.ok(o.closed, `the client connection stayed open: ${describeOutcome(o)}`);
        assert.equal((o.parsed as { status: number | null }).status, 200, `the head did not go out first: ${describeOutcome(o)}`);
        if (c.reply.then === undefined) await connectionClosedByGateway(up, conn, c.id);
        return;
      }
    }
  } finally {
    client.destroy();
  }
}

// keepAliveTimeout well beyond the waits here: an idle timeout must not pass for a discarded connection.
function upstreamConfig(port: number): Record<string, unknown> {
  return baseConfig([`127.0.0.1:${port}`], {
    upstreams: {
      app: { discovery: { type: 'static', endpoints: [`127.0.0.1:${port}`] }, timeouts: { connect: '1s', response: '3s', read: '3s' }, pool: { keepAliveTimeout: '60s' }, retries: 0 },
    },
  });
}

describe('upstream conformance: the strict reader itself', () => {
  const ok = 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc';
  test('reads valid responses whole', () => {
    assert.deepEqual(parseResponse(ok, 'GET', false), { kind: 'complete', status: 200, fields: [['content-length', '3']], body: 'abc', trailers: [], rest: '' });
    const chunked = parseResponse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n', 'GET', false);
    assert.equal(chunked.kind, 'complete');
    assert.equal((chunked as { body: string }).body, 'abc');
    assert.deepEqual((chunked as { trailers: unknown }).trailers, [['x-t', '1']]);
    assert.equal(parseResponse('HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n', 'GET', false).kind, 'complete');
    assert.equal(parseResponse('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n', 'HEAD', false).kind, 'complete');
  });
  test('calls every malformed response invalid', () => {
    const bad = [
      'HTTP/1.1 200 OK\nContent-Length: 3\n\nabc',
      'HTTP/1.1 200\r\nContent-Length: 3\r\n\r\nabc',
      'HTTP/1.1 20 OK\r\nContent-Length: 3\r\n\r\nabc',
      'HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc',
      'HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 3\r\n\r\nabc',
      'HTTP/1.1 200 OK\r\nX-A: 1\r\n b\r\nContent-Length: 3\r\n\r\nabc',
      'HTTP/1.1 200 OK\r\nX-N: a\u0000b\r\nContent-Length: 3\r\n\r\nabc',
      'HTTP/1.1 200 OK\r\nX-C: a\rb\r\nContent-Length: 3\r\n\r\nabc',
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc',
      'HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc',
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n',
      'HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n',
    ];
    for (const b of bad) assert.equal(parseResponse(b, 'GET', true).kind, 'invalid', JSON.stringify(b));
  });
  test('tells a cut message, a close-delimited one and stray bytes apart', () => {
    assert.deepEqual(parseResponse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', 'GET', true), { kind: 'incomplete', status: 200 });
    assert.deepEqual(parseResponse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n', 'GET', true), { kind: 'incomplete', status: 200 });
    assert.deepEqual(parseResponse('HTTP/1.1 200 OK\r\nConte', 'GET', true), { kind: 'incomplete', status: null });
    assert.equal(parseResponse('HTTP/1.1 200 OK\r\n\r\nabc', 'GET', false).kind, 'incomplete');
    assert.equal((parseResponse('HTTP/1.1 200 OK\r\n\r\nabc', 'GET', true) as { body: string }).body, 'abc');
    assert.equal((parseResponse(`${ok}X`, 'GET', false) as { rest: string }).rest, 'X');
  });
});

describe('upstream conformance: tidegate answers each upstream response as its contract says', () => {
  let up: RawUpstream;
  let gw: RunningGateway;
  const byId = new Map(UPSTREAM_CASES.map((c) => [c.id, c]));
  before(async () => {
    up = await startRawUpstream((req: SeenRequest) => {
      const m = /^\/case\/([^/]+)(\/next)?$/.exec(req.target);
      const c = m ? byId.get(m[1]!) : undefined;
      if (c === undefined || m![2] !== undefined) return { pieces: [okResponse(m ? `next-${m[1]}` : 'no-case')] };
      return c.reply;
    });
    gw = await startGateway(upstreamConfig(up.port));
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  test('case ids are unique', () => {
    assert.equal(byId.size, UPSTREAM_CASES.length);
  });

  for (const c of UPSTREAM_CASES) {
    test(`${c.id}: ${c.name}`, () => runCase(gw.port, up, c));
  }
});

describe('upstream conformance: the idle-connection race (RFC 9110 §9.2.2)', () => {
  let up: RawUpstream;
  let gw: RunningGateway;
  before(async () => {
    up = await startRawUpstream((req: SeenRequest, nth: number) => {
      const t = req.target;
      if (t === '/race/close-after/warm' || t === '/race/post-after-close/warm') return { pieces: [okResponse('warm')], then: 'end' };
      if (t.endsWith('/warm')) return { pieces: [okResponse('warm')] };
      // The request lands on a kept-alive connection and the upstream resets it unanswered,
      // as one does whose idle close crossed the request on the wire. Only the first attempt.
      if ((t === '/race/reset-get' || t === '/race/reset-post') && nth === 1 && req.seq > 0) return { pieces: [], then: 'reset' };
      return { pieces: [okResponse(`answered ${t}`)] };
    });
    gw = await startGateway(upstreamConfig(up.port));
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  /** A warm-up on the same client connection (so the same worker), leaving that worker's pool a connection to reuse. */
  async function warm(client: StrictClient, name: string): Promise<SeenRequest> {
    client.send(request('GET', `/race/${name}/warm`));
    const p = complete(await client.response('GET', CASE_MS));
    assert.equal(p.body, 'warm');
    return up.seen(`/race/${name}/warm`)[0]!;
  }

  test('race-close-after: the upstream closes a kept-alive connection right after a response; the next GET is answered 200', async () => {
      const client = await StrictClient.open(gw.port);
      try {
        await warm(client, 'close-after');
        client.send(request('GET', '/race/close-after'));
        const o = await client.response('GET', CASE_MS);
        const p = complete(o);
        assert.equal(p.status, 200, describeOutcome(o));
        assert.equal(p.body, 'answered /race/close-after');
      } finally {
        client.destroy();
      }
    });

  test('race-reset-get: a GET sent on a kept-alive connection the upstream resets unanswered is retried once, on another connection, and answered 200', async () => {
      const client = await StrictClient.open(gw.port);
      try {
        await warm(client, 'reset-get');
        client.send(request('GET', '/race/reset-get'));
        const o = await client.response('GET', CASE_MS);
        const seen = up.seen('/race/reset-get');
        assert.ok(seen.length >= 1 && seen[0]!.seq > 0, `the first attempt did not reuse a connection: ${JSON.stringify(seen.map((s) => [s.conn, s.seq]))}`);
        const p = complete(o);
        assert.equal(p.status, 200, describeOutcome(o));
        assert.equal(p.body, 'answered /race/reset-get');
        assert.equal(seen.length, 2, 'sent once, retried once');
        assert.notEqual(seen[1]!.conn, seen[0]!.conn);
      } finally {
        client.destroy();
      }
    });

  test('race-reset-post: a POST the upstream received on a kept-alive connection and reset unanswered is not retried: 502 TG_ERR_UPSTREAM_RESET', async () => {
      const client = await StrictClient.open(gw.port);
      try {
        await warm(client, 'reset-post');
        client.send(request('POST', '/race/reset-post', [], 'a small body'));
        const o = await client.response('POST', CASE_MS);
        const seen = up.seen('/race/reset-post');
        assert.ok(seen.length >= 1 && seen[0]!.seq > 0, 'the first attempt did not reuse a connection');
        assertErrorBody(o, 'TG_ERR_UPSTREAM_RESET');
        assert.equal(seen.length, 1, 'a POST that reached the upstream was sent again');
      } finally {
        client.destroy();
      }
    });

  test('race-post-after-close: a POST after the upstream closed the idle connection (no byte of it sent there) is answered 200 on a new connection', async () => {
      const client = await StrictClient.open(gw.port);
      try {
        const w = await warm(client, 'post-after-close');
        // The gateway has seen the close once its side of the connection is gone too.
        await until('the warm-up connection closed', () => up.connections[w.conn - 1]!.closed, (c) => c, 5_000);
        const opened = up.connections.length;
        client.send(request('POST', '/race/post-after-close', [], 'a small body'));
        const o = await client.response('POST', CASE_MS);
        const p = complete(o);
        assert.equal(p.status, 200, describeOutcome(o));
        const seen = up.seen('/race/post-after-close');
        assert.equal(seen.length, 1);
        assert.equal(seen[0]!.body.toString(), 'a small body');
        assert.notEqual(seen[0]!.conn, w.conn);
        assert.ok(up.connections.length >= opened, 'connections are only ever added');
      } finally {
        client.destroy();
      }
    });
});

// The cross-proxy vector suite through the gateway. Its classes are the RFCs' (a proxy
// may repair some flaws), wider than tidegate's contract above.
test('upstream-side conformance: every malformed response is refused or cut short, nothing smuggled reaches a client', async () => {
  const upstream = await startMalformedUpstream();
  const gw = await startGateway(baseConfig([`127.0.0.1:${upstream.port}`]));
  try {
    const results = await runResponseSuite({ proxyPort: gw.port, upstream });
    assert.equal(results.length, RESPONSE_VECTORS.length);
    const wrong = results.filter((r) => !r.pass);
    assert.deepEqual(wrong.map((r) => `${r.vector.id}: ${r.verdict} (${r.detail})`), []);
    assert.equal(results.filter((r) => r.verdict === 'desync').length, 0);
    // tidegate's refusals are its own stable error, not a bare 502.
    const refused = results.filter((r) => r.verdict === 'bad-gateway' && r.first.response !== null);
    assert.ok(refused.length >= 15, `${refused.length} refusals`);
    for (const r of refused) if (r.vector.method !== 'HEAD') assert.match(r.first.response!.body, /"code":"TG_ERR_UPSTREAM_(PROTOCOL|RESET)"/, `${r.vector.id}: ${r.first.response!.body}`);
    // Every vector reached the upstream, and every follow-up on a kept connection was answered by it.
    for (const r of results) assert.ok((upstream.seen.get(r.tag) ?? 0) >= 1, `${r.vector.id} never reached the upstream`);
  } finally {
    await gw.stop();
    await upstream.close();
  }
});
