// A worker's decoded entry heads (cache-serve.ts StoredHead): one decode per entry
// version, and never the head of an earlier version, even when a record is reused for
// another key with metadata of the same length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CacheStore, PublishResult, newEntryFields } from '../../src/shm/cache-store.js';
import { answerHead, storedHead } from '../../src/worker/cache/cache-serve.js';

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

test('an answer head is the stored block, then Age, Cache-Status, Via, the request id and Connection; a 304 block carries only the fields a 304 may', () => {
  const s = CacheStore.create(64 * 1024, 16 * 1024);
  put(s, 'h/4', 'v');
  const h = storedHead(s, lookup(s, 'h/4'), scratch);
  const full = answerHead(h.headBlock(200), '7', 'tidegate; hit; ttl=3', '1.1 tidegate', 'x-request-id', 'abc-1', false).toString('latin1');
  assert.equal(full, '200 OK\r\ncontent-type: text/plain\r\nx-v: v\r\netag: "e1"\r\nage: 7\r\ncache-status: tidegate; hit; ttl=3\r\nvia: 1.1 tidegate\r\nx-request-id: abc-1');
  // Shorter after a longer one: nothing of the earlier answer is left in it.
  const short = answerHead(h.notModifiedBlock(), '8', 'tidegate; hit', null, 'x-request-id', 'abc-2', true).toString('latin1');
  assert.equal(short, '304 Not Modified\r\netag: "e1"\r\nage: 8\r\ncache-status: tidegate; hit\r\nx-request-id: abc-2\r\nconnection: close');
  // The next hits of the entry reuse what precedes the id: only the id (and close) change.
  const again = answerHead(h.notModifiedBlock(), '8', 'tidegate; hit', null, 'x-request-id', 'abc-3-longer-than-before', false).toString('latin1');
  assert.equal(again, '304 Not Modified\r\netag: "e1"\r\nage: 8\r\ncache-status: tidegate; hit\r\nx-request-id: abc-3-longer-than-before');
  assert.equal(answerHead(h.notModifiedBlock(), '8', 'tidegate; hit', null, 'x-request-id', 'a4', true).toString('latin1'), '304 Not Modified\r\netag: "e1"\r\nage: 8\r\ncache-status: tidegate; hit\r\nx-request-id: a4\r\nconnection: close');
  assert.equal(answerHead(h.notModifiedBlock(), '9', 'tidegate; hit', null, 'x-request-id', 'a5', false).toString('latin1'), '304 Not Modified\r\netag: "e1"\r\nage: 9\r\ncache-status: tidegate; hit\r\nx-request-id: a5', 'a new age rewrites the tail');
  // A client's id longer than the room left grows the buffer and keeps what precedes it.
  const long = 'i'.repeat(9000);
  assert.equal(answerHead(h.notModifiedBlock(), '9', 'tidegate; hit', null, 'x-request-id', long, false).toString('latin1'), `304 Not Modified\r\netag: "e1"\r\nage: 9\r\ncache-status: tidegate; hit\r\nx-request-id: ${long}`);
  // A block larger than the buffer answerHead writes into grows it.
  const big = Buffer.from(`200 OK\r\nx-big: ${'b'.repeat(20_000)}`, 'latin1');
  assert.equal(answerHead(big, '0', 'tidegate; hit', null, 'x-id', '1', false).toString('latin1'), `${big.toString('latin1')}\r\nage: 0\r\ncache-status: tidegate; hit\r\nx-id: 1`);
});

test('the body view is kept for the next hit of the same version and replaced when the bytes lie elsewhere', () => {
  const s = CacheStore.create(64 * 1024, 16 * 1024);
  put(s, 'h/5', 'v');
  const h = storedHead(s, lookup(s, 'h/5'), scratch);
  const at = s.metaAt + s.metaLen;
  const v1 = h.bodyView(scratch, at, s.bodyLen);
  assert.equal(v1.toString(), 'body');
  assert.equal(h.bodyView(scratch, at, s.bodyLen), v1);
  const other = Buffer.alloc(1024);
  scratch.copy(other, 0, at, at + 4);
  const v2 = h.bodyView(other, 0, 4);
  assert.notEqual(v2, v1);
  assert.equal(v2.buffer, other.buffer);
  assert.notEqual(h.bodyView(scratch, at + 1, 3), v2);
});
