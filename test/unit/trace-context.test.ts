import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyTraceContext, clientTraceId, newTraceparent, normaliseTraceparent, traceIdOf } from '../../src/worker/trace-context.js';

const VALID = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const cfg = { enabled: true, startIfAbsent: true, sampleNewTraces: false };

test('traceparent validation follows W3C Trace Context §3.2', () => {
  assert.equal(normaliseTraceparent(VALID), VALID);
  // invalid: upper-case hex, all-zero ids, version ff, wrong lengths, bad separators
  assert.equal(normaliseTraceparent(VALID.toUpperCase()), null);
  assert.equal(normaliseTraceparent('00-00000000000000000000000000000000-00f067aa0ba902b7-01'), null);
  assert.equal(normaliseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01'), null);
  assert.equal(normaliseTraceparent('ff' + VALID.slice(2)), null);
  assert.equal(normaliseTraceparent(VALID + '-extra'), null, 'version 00 must be exactly 55 chars');
  assert.equal(normaliseTraceparent(VALID.slice(0, 54)), null);
  assert.equal(normaliseTraceparent(VALID.replace(/-/g, '_')), null);
  assert.equal(normaliseTraceparent('0g' + VALID.slice(2)), null);
  // a future version: parse the first four fields, forward as version 00
  assert.equal(normaliseTraceparent('01' + VALID.slice(2) + '-what-the-future-holds'), '00' + VALID.slice(2));
  assert.equal(normaliseTraceparent('01' + VALID.slice(2) + 'x'), null, 'after 55 chars a future version needs "-"');
});

test('new traces are well formed and random', () => {
  const a = newTraceparent(false);
  const b = newTraceparent(true);
  assert.match(a, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  assert.match(b, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  assert.notEqual(a.slice(3, 35), b.slice(3, 35));
  assert.equal(normaliseTraceparent(a), a);
  // many draws cross the 4 KiB random-pool refill
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) seen.add(newTraceparent(false).slice(3, 35));
  assert.equal(seen.size, 1000);
});

test('applyTraceContext propagates valid, replaces invalid, starts absent', () => {
  const keep = ['host', 'x', 'traceparent', VALID, 'tracestate', 'vendor=1'];
  applyTraceContext(keep, cfg);
  assert.deepEqual(keep, ['host', 'x', 'traceparent', VALID, 'tracestate', 'vendor=1']);

  const bad = ['host', 'x', 'traceparent', 'garbage', 'tracestate', 'vendor=1', 'accept', '*/*'];
  applyTraceContext(bad, cfg);
  assert.equal(bad.indexOf('tracestate'), -1, 'tracestate of an invalid traceparent is dropped');
  assert.deepEqual(bad.slice(0, 4), ['host', 'x', 'accept', '*/*']);
  assert.equal(bad[4], 'traceparent');
  assert.notEqual(normaliseTraceparent(bad[5]!), null);

  const twice = ['host', 'x', 'traceparent', VALID, 'traceparent', VALID];
  applyTraceContext(twice, cfg);
  assert.equal(twice.filter((h) => h === 'traceparent').length, 1);
  assert.notEqual(traceIdOf(twice), VALID.slice(3, 35), 'two traceparent fields are ambiguous: a new trace starts');

  const none = ['host', 'x'];
  applyTraceContext(none, cfg);
  assert.equal(none.length, 4);
  assert.equal(traceIdOf(none)!.length, 32);

  const off = ['host', 'x'];
  applyTraceContext(off, { ...cfg, startIfAbsent: false });
  assert.deepEqual(off, ['host', 'x']);
  const disabled = ['host', 'x', 'traceparent', 'garbage'];
  applyTraceContext(disabled, { ...cfg, enabled: false });
  assert.deepEqual(disabled, ['host', 'x', 'traceparent', 'garbage'], 'disabled: forwarded untouched');
});

test('clientTraceId: the trace-id of a valid client traceparent only (a request the cache answered)', () => {
  const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  assert.equal(clientTraceId(['host', 'x', 'traceparent', tp]), '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(clientTraceId(['host', 'x']), null);
  assert.equal(clientTraceId(['traceparent', '00-00000000000000000000000000000000-00f067aa0ba902b7-01']), null, 'all-zero trace-id');
  assert.equal(clientTraceId(['traceparent', tp, 'traceparent', tp]), null, 'repeated');
  assert.equal(clientTraceId(['traceparent', 'garbage']), null);
});
