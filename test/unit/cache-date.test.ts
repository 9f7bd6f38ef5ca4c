// HTTP-dates the cache reads: as strings (Expires, Last-Modified, If-Modified-Since) and
// as the bytes of the upstream's Date, whose one-entry memory must never answer for a
// different value, however its bytes arrive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHttpDate, parseHttpDateBytes } from '../../src/worker/cache/cache-control.js';

test('a Date in bytes parses as its string does; a repeat, a one-byte change and another length each give their own value', () => {
  const d1 = 'Wed, 02 Dec 2026 12:00:00 GMT';
  const d2 = 'Wed, 02 Dec 2026 12:00:01 GMT';
  const view = Buffer.from(`x${d1}y`, 'latin1').subarray(1, 1 + d1.length);
  assert.equal(parseHttpDateBytes(view), Date.parse(d1));
  assert.equal(parseHttpDateBytes(Buffer.from(d1, 'latin1')), Date.parse(d1), 'a repeat in another buffer');
  // the same memory, rewritten: the value must follow the bytes, not the buffer
  view.write(d2, 'latin1');
  assert.equal(parseHttpDateBytes(view), Date.parse(d2));
  const rfc850 = 'Wednesday, 02-Dec-26 12:00:02 GMT';
  assert.equal(parseHttpDateBytes(Buffer.from(rfc850, 'latin1')), Date.parse(rfc850));
  assert.ok(Number.isNaN(parseHttpDateBytes(null)));
  assert.ok(Number.isNaN(parseHttpDateBytes(Buffer.from('soon'))));
  assert.ok(Number.isNaN(parseHttpDateBytes(Buffer.from('soon'))), 'an invalid value remembered is still invalid');
  assert.equal(parseHttpDateBytes(Buffer.from(d1, 'latin1')), Date.parse(d1));
  assert.equal(parseHttpDate(d2), Date.parse(d2));
  assert.ok(Number.isNaN(parseHttpDate(null)));
});
