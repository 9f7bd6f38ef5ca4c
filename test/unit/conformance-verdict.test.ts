// The conformance suite's own logic, without a proxy: how answers are split, and how
// a probe plus the upstream's records become a verdict.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseResponses, type ProbeResult } from '../../native-bench/conformance/probe.js';
import type { UpstreamRequest } from '../../native-bench/conformance/recording-upstream.js';
import { judge, passes } from '../../native-bench/conformance/verdict.js';
import { VECTORS, type Vector } from '../../native-bench/conformance/vectors.js';

const TAG = 'cfaa0001';

function vector(id: string): Vector {
  const v = VECTORS.find((x) => x.id === id);
  assert.ok(v, id);
  return v;
}

function probeResult(statuses: number[], closedAfterMs: number | null): ProbeResult {
  return { responses: statuses.map((status) => ({ status, head: `HTTP/1.1 ${status} X` })), trailing: '', closed: closedAfterMs !== null, closedAfterMs, reset: false, connectError: null };
}

function arrived(method: string, target: string, body = '', fields: [string, string][] = []): UpstreamRequest {
  return { tags: [TAG], method, target, version: 'HTTP/1.1', fields, body: Buffer.from(body, 'latin1'), trailers: [], complete: true, ambiguous: false, connection: 1 };
}

test('parseResponses splits Content-Length, chunked and interim answers, and waits for incomplete ones', () => {
  const data = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\nHTTP/1.1 404 No\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\nHTTP/1.1 400 Bad\r\nContent-Length: 9\r\n\r\nshort';
  const r = parseResponses(data, false);
  assert.deepEqual(r.responses.map((x) => x.status), [200, 404]);
  assert.match(r.rest, /^HTTP\/1\.1 400/);
  // a body without length ends at the close
  assert.deepEqual(parseResponses('HTTP/1.1 400 Bad\r\n\r\nbye', true).responses.map((x) => x.status), [400]);
  assert.deepEqual(parseResponses('HTTP/1.1 400 Bad\r\n\r\nbye', false).responses, []);
});

test('a valid request that arrived intact and was answered is forwarded; an altered body is a desync', () => {
  const v = vector('control-post-cl');
  const ok = judge(v, TAG, probeResult([200], null), [arrived('POST', `/${TAG}`, 'hello')], []);
  assert.equal(ok.verdict, 'forwarded');
  assert.ok(passes(v.expected, ok));
  const cut = judge(v, TAG, probeResult([200], null), [arrived('POST', `/${TAG}`, 'hel')], []);
  assert.equal(cut.verdict, 'desync');
});

test('a smuggled request at the upstream is a desync even when the client got a 400', () => {
  const v = vector('smuggle-cl-cl-zero-first');
  const j = judge(v, TAG, probeResult([400], 5), [arrived('GET', `/smuggled?${TAG}`)], []);
  assert.equal(j.verdict, 'desync');
  assert.ok(!passes(v.expected, j));
});

test('rejections: closed after the answer, left open, or closed silently', () => {
  const v = vector('cl-duplicate-different');
  assert.equal(judge(v, TAG, probeResult([400], 3), [], []).verdict, 'rejected');
  assert.equal(judge(v, TAG, probeResult([400], null), [], []).verdict, 'open');
  assert.equal(judge(v, TAG, probeResult([], 10_500), [], []).verdict, 'closed');
  assert.equal(judge(v, TAG, probeResult([], null), [], []).verdict, 'timeout');
  // what must be refused but reached the upstream
  const fwd = judge(v, TAG, probeResult([200], null), [arrived('POST', `/${TAG}`, 'hel')], []);
  assert.equal(fwd.verdict, 'forwarded');
  assert.ok(!passes(v.expected, fwd));
});

test('absolute-form is compared by path; one of two pipelined requests is partial', () => {
  assert.equal(judge(vector('line-absolute-form'), TAG, probeResult([200], null), [arrived('GET', `http://conformance.test/${TAG}`)], []).verdict, 'forwarded');
  assert.equal(judge(vector('pipeline-two-valid'), TAG, probeResult([200], 4), [arrived('GET', `/${TAG}`)], []).verdict, 'partial');
});

test('a repairable field forwarded unrepaired conforms to nothing', () => {
  const v = vector('header-nul-in-value');
  const j = judge(v, TAG, probeResult([200], null), [arrived('GET', `/${TAG}`, '', [['X-Test', 'a\x00b']])], []);
  assert.equal(j.verdict, 'forwarded');
  assert.equal(j.findings.length, 1);
  assert.ok(!passes(v.expected, j));
  assert.ok(passes(v.expected, judge(v, TAG, probeResult([200], null), [arrived('GET', `/${TAG}`, '', [['X-Test', 'a b']])], [])));
});

test('every vector has an RFC section, a unique id and a tagged target', () => {
  const ids = new Set(VECTORS.map((v) => v.id));
  assert.equal(ids.size, VECTORS.length);
  for (const v of VECTORS) {
    assert.match(v.rfc, /^RFC 911[02] §/, v.id);
    assert.ok(v.parts(TAG).join('').includes(TAG), v.id);
    assert.ok(v.requests(TAG).length >= 1, v.id);
  }
});
