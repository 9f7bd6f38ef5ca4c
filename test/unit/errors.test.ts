// The README's error table and the catalogue in src/errors.ts must list the same codes
// with the same statuses: clients branch on these codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AdminErrors, Errors } from '../../src/errors.js';
import { errorBody } from '../../src/worker/error-response.js';

const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');

test('every client-facing code is in the README table with its status, and nothing else is', () => {
  const table = new Map<string, number>();
  for (const m of readme.matchAll(/^\| (\d{3}) \| `(TG_ERR_[A-Z_]+)` \|/gm)) table.set(m[2]!, Number(m[1]));
  const catalogue = new Map(Object.values(Errors).map((e) => [e.code, e.status]));
  assert.deepEqual([...table.entries()].sort(), [...catalogue.entries()].sort());
});

test('codes are unique and follow TG_ERR_<AREA>_<WHAT>; bodies are stable JSON', () => {
  const codes = Object.values(Errors).map((e) => e.code);
  assert.equal(new Set(codes).size, codes.length);
  for (const c of codes) assert.match(c, /^TG_ERR_[A-Z]+(_[A-Z]+)*$/);
  assert.deepEqual(JSON.parse(errorBody(Errors.ROUTE_NOT_FOUND)), { error: { code: 'TG_ERR_ROUTE_NOT_FOUND', message: Errors.ROUTE_NOT_FOUND.message } });
});

test('every admin API code is in the README admin error table with its status', () => {
  const table = new Map<string, number>();
  for (const m of readme.matchAll(/^\| `(TG_ERR_[A-Z_]+)` \| (\d{3}) \|/gm)) table.set(m[1]!, Number(m[2]));
  const catalogue = new Map(Object.values(AdminErrors).map((e) => [e.code, e.status]));
  assert.deepEqual([...table.entries()].sort(), [...catalogue.entries()].sort());
});
