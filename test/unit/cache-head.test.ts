// A worker's decoded entry heads (cache-serve.ts StoredHead): one decode per entry
// version, and never the head of an earlier version, even when a record is reused for
// another key with metadata of the same length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CacheStore, PublishResult, newEntryFields } from '../../src/shm/cache-store.js';
import { storedHead } from '../../src/worker/cache/cache-serve.js';

const scratch = Buffer.alloc(64 * 1024);

function put(s: CacheStore, key: string, value: string): void {
  s.hash(key);
  const f = newEntryFields();
  f.status = 200;
  // tags, vary, etag, last-modified, then field name/value pairs (cache-fill.ts buildMeta)
  const meta = ['', '', '"e1"', '', 'content-type', 'text/plain', 'x-v', value].join('\n');
  assert.equal(s.publish(-1, 0, key, s.hA, s.hB, meta, [Buffer.from('body')], 4, f, -1), PublishResult.Stored);
}

function lookup(s: CacheStore, key: string): number {
  s.hash(key);
  const r = s.lookup(key, s.hA, s.hB, scratch);
  assert.ok(r >= 0, `${key} is stored`);
  return r;
}

test('a decoded head serves every hit of its entry version and no later version', () => {
  const s = CacheStore.create(64 * 1024, 16 * 1024);
  put(s, 'h/1', 'one');
  const r1 = lookup(s, 'h/1');
  const h1 = storedHead(s, r1, scratch);
  assert.equal(h1.meta[7], 'one');
  assert.equal(h1.headBlock(200).toString('latin1'), '200 OK\r\ncontent-type: text/plain\r\nx-v: one\r\netag: "e1"');
  assert.equal(storedHead(s, lookup(s, 'h/1'), scratch), h1, 'the second hit reuses the decoded head');

  // The record is freed and handed to another key whose metadata has the same length.
  s.hash('h/1');
  assert.ok(s.remove('h/1', s.hA, s.hB));
  put(s, 'h/2', 'two');
  const r2 = lookup(s, 'h/2');
  assert.equal(r2, r1, 'the freed record was reused');
  const h2 = storedHead(s, r2, scratch);
  assert.equal(h2.meta[7], 'two');
  assert.equal(h2.headBlock(200).toString('latin1'), '200 OK\r\ncontent-type: text/plain\r\nx-v: two\r\netag: "e1"');

  // Replaced under the same key: the new version's head, wherever it is stored.
  put(s, 'h/2', 'six');
  assert.equal(storedHead(s, lookup(s, 'h/2'), scratch).meta[7], 'six');
});

test('Age and Cache-Status values are reused while they stay the same and follow when they change', () => {
  const s = CacheStore.create(64 * 1024, 16 * 1024);
  put(s, 'h/3', 'v');
  const h = storedHead(s, lookup(s, 'h/3'), scratch);
  assert.equal(h.age(5), '5');
  assert.equal(h.age(6), '6');
  assert.equal(h.hitStatus(3599), 'tidegate; hit; ttl=3599');
  assert.equal(h.hitStatus(3598), 'tidegate; hit; ttl=3598');
});
