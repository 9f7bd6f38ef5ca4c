import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePath, removeDotSegments, type PathOptions } from '../../src/worker/path-normalize.js';
import { Errors } from '../../src/errors.js';

const keep: PathOptions = { mergeSlashes: false, escapedSlashes: 'keep' };

test('dot segments are removed (RFC 3986 §5.2.4 examples and edges)', () => {
  const cases: [string, string][] = [
    ['/a/b/c/./../../g', '/a/g'],
    ['/mid/content=5/../6', '/mid/6'],
    ['/public/../admin', '/admin'],
    ['/a/./b', '/a/b'],
    ['/a/b/..', '/a/'],
    ['/a/b/.', '/a/b/'],
    ['/..', '/'],
    ['/../../x', '/x'],
    ['/', '/'],
    ['/a//../b', '/a/b'],
    ['/.hidden/..x/x..', '/.hidden/..x/x..'],
  ];
  for (const [input, out] of cases) assert.equal(removeDotSegments(input), out, input);
});

test('unreserved percent-encodings are decoded before dot segments; others upper-cased', () => {
  assert.equal(normalizePath('/public/%2e%2e/admin', keep), '/admin');
  assert.equal(normalizePath('/public/%2E./admin', keep), '/admin');
  assert.equal(normalizePath('/%61dmin', keep), '/admin');
  assert.equal(normalizePath('/a%7eb', keep), '/a~b');
  assert.equal(normalizePath('/a%20b%c3%a9', keep), '/a%20b%C3%A9');
  assert.equal(normalizePath('/plain/path', keep), '/plain/path');
});

test('malformed encodings and %00 are refused', () => {
  assert.equal(normalizePath('/a%zz', keep), Errors.PATH_INVALID_ENCODING);
  assert.equal(normalizePath('/a%2', keep), Errors.PATH_INVALID_ENCODING);
  assert.equal(normalizePath('/a%', keep), Errors.PATH_INVALID_ENCODING);
  assert.equal(normalizePath('/a%00b', keep), Errors.PATH_NUL);
});

test('escaped slashes: keep, reject or decode', () => {
  assert.equal(normalizePath('/a%2fb/../c', keep), '/c', '%2F kept is one segment "a%2Fb"');
  assert.equal(normalizePath('/a%2fb', keep), '/a%2Fb');
  assert.equal(normalizePath('/a%5Cb', { ...keep, escapedSlashes: 'reject' }), Errors.PATH_ESCAPED_SLASH);
  assert.equal(normalizePath('/a%2Fb', { ...keep, escapedSlashes: 'reject' }), Errors.PATH_ESCAPED_SLASH);
  assert.equal(normalizePath('/x/a%2F..%2Fadmin', { ...keep, escapedSlashes: 'decode' }), '/x/admin');
});

test('merging slashes is opt-in', () => {
  assert.equal(normalizePath('//admin', keep), '//admin');
  assert.equal(normalizePath('//admin', { ...keep, mergeSlashes: true }), '/admin');
  assert.equal(normalizePath('/a///b//', { ...keep, mergeSlashes: true }), '/a/b/');
});
