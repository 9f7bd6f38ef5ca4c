// Cache-Control as the cache reads it (RFC 9111 §5.2): directives of one or several
// fields, case and spaces, invalid arguments; and the parse's memory of the value its
// object holds, which must never answer for another value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newDirectives, parseCacheControl, type Directives } from '../../src/worker/cache/cache-control.js';

function pick(d: Directives): Record<string, boolean | number> {
  const { source: _source, ...rest } = d;
  return rest;
}

const none = pick(newDirectives());

test('directives of a Cache-Control value, as a table', () => {
  const cases: [string | null, Partial<Directives>][] = [
    [null, {}],
    ['', {}],
    ['max-age=60', { maxAge: 60 }],
    ['Max-Age = 60 , PUBLIC', { maxAge: 60, public: true }],
    ['private', { private: true }],
    ['no-store,no-cache', { noStore: true, noCache: true }],
    ['no-cache="set-cookie", must-revalidate', { noCache: true, mustRevalidate: true }],
    ['s-maxage="120", proxy-revalidate', { sMaxAge: 120, proxyRevalidate: true }],
    ['max-age=60,max-age=30', { maxAge: 30 }],
    ['max-age=soon', { maxAge: 0 }],
    ['stale-while-revalidate=30, stale-if-error=600', { staleWhileRevalidate: 30, staleIfError: 600 }],
    ['only-if-cached', { onlyIfCached: true }],
    [',,max-age=5,', { maxAge: 5 }],
    ['x-unknown=1, max-age=7', { maxAge: 7 }],
  ];
  for (const [value, want] of cases) {
    const d = parseCacheControl(value, newDirectives());
    assert.deepEqual(pick(d), { ...none, ...want }, String(value));
  }
});

test('an object parsed again gives the new value\'s directives, a repeat the same ones', () => {
  const d = newDirectives();
  assert.equal(parseCacheControl('max-age=60', d).maxAge, 60);
  assert.equal(parseCacheControl('max-age=60', d).maxAge, 60, 'a repeat');
  const other = parseCacheControl('private', d);
  assert.deepEqual(pick(other), { ...none, private: true }, 'nothing of the previous value is kept');
  // a value equal in content but built anew (as each response's is)
  assert.equal(parseCacheControl(['max', 'age=9'].join('-'), d).maxAge, 9);
  assert.equal(parseCacheControl(['max', 'age=9'].join('-'), d).private, false);
  assert.deepEqual(pick(parseCacheControl(null, d)), none, 'no value after a value');
  assert.deepEqual(pick(parseCacheControl('', d)), none);
  // two objects keep their own values
  const e = newDirectives();
  parseCacheControl('no-store', e);
  assert.equal(parseCacheControl('max-age=3', d).maxAge, 3);
  assert.equal(e.noStore, true);
  assert.equal(e.maxAge, -1);
});
