// The shared cache store, single-threaded: storage round trip, replacement, removal,
// fill reservations, size limits, CLOCK eviction and TinyLFU admission under a scan.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { CacheStore, PublishResult, kHashSeedA, kHashSeedB, newEntryFields } from '../../src/shm/cache-store.js';
import { recoverIfStuck } from '../../src/primary/cache/cache-admin.js';
import { CacheResult, kCacheAdmissionRefusedField, kCacheEvictionsField, kCacheReclaimWaitsField, kCacheRecordsField, kCacheResetsField } from '../../src/shm/cache-layout.js';

function put(s: CacheStore, key: string, body: string, freq = -1): PublishResult {
  s.hash(key);
  const f = newEntryFields();
  f.status = 200;
  f.freshUntil = 1234.5;
  return s.publish(-1, 0, key, s.hA, s.hB, `meta:${key}`, [Buffer.from(body)], body.length, f, freq);
}

function get(s: CacheStore, key: string): string | null {
  s.hash(key);
  const r = s.find(key, s.hA, s.hB);
  if (r < 0) return null;
  const out = Buffer.alloc(1 << 20);
  assert.ok(s.read(r, s.seq, out));
  const at = s.metaAt;
  assert.equal(out.toString('latin1', at, at + s.metaLen), `meta:${key}`);
  return out.toString('latin1', at + s.metaLen, at + s.metaLen + s.bodyLen);
}

test('an entry reads back as stored, across chunk boundaries, and a new one replaces it', () => {
  const s = CacheStore.create(64 * 1024, 16 * 1024);
  const big = 'x'.repeat(5000) + 'end';
  assert.equal(put(s, 'GET a/1', big), PublishResult.Stored);
  assert.equal(get(s, 'GET a/1'), big);
  assert.equal(s.fields.status, 200);
  assert.equal(s.fields.freshUntil, 1234.5);
  assert.equal(put(s, 'GET a/1', 'second'), PublishResult.Stored);
  assert.equal(get(s, 'GET a/1'), 'second');
  assert.equal(get(s, 'GET a/2'), null);
  assert.deepEqual(s.check(), []);
  s.hash('GET a/1');
  assert.equal(s.remove('GET a/1', s.hA, s.hB), true);
  assert.equal(get(s, 'GET a/1'), null);
  assert.deepEqual(s.check(), []);
});

/** Stores 'GET d' (its body returned) in chunks that are not one run of the arena. */
function putSplit(s: CacheStore): string {
  // a, b, c take chunks 0, 1, 2; removing b and then a leaves the free list 0 → 1 → 3 → …,
  // so the next 3-chunk entry is split: 0, 1 (one run) and 3.
  for (const k of ['GET a', 'GET b', 'GET c']) assert.equal(put(s, k, 'small'), PublishResult.Stored);
  for (const k of ['GET b', 'GET a']) {
    s.hash(k);
    assert.equal(s.remove(k, s.hA, s.hB), true);
  }
  const body = Array.from({ length: 2500 }, (_, i) => String.fromCharCode(33 + ((i * 7) % 90))).join('');
  assert.equal(put(s, 'GET d', body), PublishResult.Stored);
  s.hash('GET d');
  return body;
}

test('an entry whose chunks are not all adjacent in the arena reads back whole into a buffer of any alignment', () => {
  const s = CacheStore.create(64 * 1024, 16 * 1024);
  const body = putSplit(s);
  const r = s.find('GET d', s.hA, s.hB);
  for (const shift of [0, 1, 3, 6]) {
    const out = Buffer.alloc(64 * 1024).subarray(shift);
    assert.ok(s.read(r, s.seq, out));
    const at = s.metaAt;
    assert.equal(out.toString('latin1', at, at + s.metaLen), 'meta:GET d', `shift ${shift}`);
    assert.equal(out.toString('latin1', at + s.metaLen, at + s.metaLen + s.bodyLen), body, `shift ${shift}`);
  }
  assert.deepEqual(s.check(), []);
});

test('a key hashed in pieces (a saved Host prefix, then path, query, key fields) hashes as the whole key', () => {
  const st = CacheStore.create(64 * 1024, 16 * 1024);
  const pieces = ['example.com', '/a/b', '?', 'x=1&y=é', '\nv1'];
  const whole = pieces.join('');
  st.hash(whole);
  const want = [st.hA, st.hB];
  st.hashStart(kHashSeedA, kHashSeedB);
  st.hashAdd(pieces[0]!);
  const [a, b] = [st.laneA, st.laneB];
  st.hash('something else'); // the saved lanes do not depend on what came between
  st.hashStart(a, b);
  for (const p of pieces.slice(1)) st.hashAdd(p);
  st.hashEnd(whole.length);
  assert.deepEqual([st.hA, st.hB], want);
  st.hash(`${whole}?`);
  assert.notDeepEqual([st.hA, st.hB], want, 'another key hashes apart');
});

test('a body over maxObjectSize is refused', () => {
  const s = CacheStore.create(64 * 1024, 1000);
  assert.equal(put(s, 'k', 'y'.repeat(1001)), PublishResult.TooLarge);
  assert.equal(get(s, 'k'), null);
});

test('a reservation makes later requests for the key wait until it is published or released', () => {
  const s = CacheStore.create(64 * 1024, 4096);
  s.hash('k');
  const { hA, hB } = s;
  const r = s.reserve(hA, hB, 1000, 5000, -1);
  assert.ok(r >= 0);
  const token = s.token;
  assert.equal(s.reserve(hA, hB, 1001, 5000, -1), -2 - r, 'a second request waits on the first');
  // past the deadline another request takes the fill over; the first one's publish is then not used
  const r2 = s.reserve(hA, hB, 7000, 5000, -1);
  assert.equal(r2, r);
  assert.notEqual(s.token, token);
  s.release(r, token); // stale token: nothing happens
  assert.equal(s.reserve(hA, hB, 7001, 5000, -1), -2 - r);
  s.release(r, s.token);
  assert.equal(s.recordState(r), 3, 'released: waiters see the word leave Filling (Released)');
  assert.equal(s.lookup('k', hA, hB, Buffer.alloc(8192)), -1, 'a released reservation is found by no lookup');
  assert.deepEqual(s.check(), []);
  assert.equal(s.recordState(r), 0, 'unlinked the next time the releasing thread held the lock (check() takes it)');
  const r3 = s.reserve(hA, hB, 7002, 5000, -1);
  assert.ok(r3 >= 0, 'the next request reserves anew instead of waiting');
  s.release(r3, s.token);
  assert.ok(s.reserve(hA, hB, 7003, 5000, -1) >= 0, 'so does the one after a release not yet unlinked');
  assert.deepEqual(s.check(), []);
});

test('records released by threads that never took the lock again are reclaimed when records run short', () => {
  const s = CacheStore.create(16 * 1024, 4096);
  const records = s.counter(kCacheRecordsField);
  // one handle per "thread": each one's release waits for its next lock, which never comes
  for (let n = 0; n < records; n++) {
    const h = CacheStore.attach(s.buffer);
    h.hash(`k${n}`);
    const r = h.reserve(h.hA, h.hB, 1000, 5000, -1);
    assert.ok(r >= 0, `reservation ${n}`);
    h.release(r, h.token);
    assert.equal(h.recordState(r), 3);
  }
  const late = CacheStore.attach(s.buffer);
  late.hash('late');
  assert.ok(late.reserve(late.hA, late.hB, 1000, 5000, -1) >= 0, 'a released record is taken back for a new reservation');
  assert.deepEqual(s.check(), []);
});

test('removeWhere purges by key prefix or meta (tags) and leaves the rest', () => {
  const s = CacheStore.create(64 * 1024, 4096);
  for (const k of ['h/a/1', 'h/a/2', 'h/b/1']) put(s, k, 'v');
  assert.equal(s.removeWhere((key) => key.startsWith('h/a/')), 2);
  assert.equal(get(s, 'h/a/1'), null);
  assert.equal(get(s, 'h/b/1'), 'v');
  assert.deepEqual(s.check(), []);
});

test('CLOCK evicts when full; TinyLFU admission keeps a frequent set through a scan of one-time keys', () => {
  // 32 KiB: 32 chunks; 2 KiB bodies take 3 chunks each (key + meta + body), so about 10 fit.
  const body = 'b'.repeat(2000);
  const hot = Array.from({ length: 6 }, (_, i) => `hot/${i}`);
  const run = (admission: boolean): number => {
    const s = CacheStore.create(32 * 1024, 4096);
    const touch = (k: string): number => {
      s.hash(k);
      s.touch(s.hA, s.hB);
      return admission ? s.frequency(s.hA, s.hB) : -1;
    };
    for (let round = 0; round < 5; round++) {
      for (const k of hot) {
        const f = touch(k);
        if (get(s, k) === null) put(s, k, body, f);
      }
    }
    // The hot keys stay in use during the scan, one request per four scan keys: each is
    // then asked for once per 24 scan keys, while the cache holds about 10 entries.
    for (let i = 0; i < 200; i++) {
      const k = `scan/${i}`;
      const f = touch(k);
      if (get(s, k) === null) put(s, k, body, f);
      if (i % 4 === 3) {
        const h = hot[(i >> 2) % hot.length]!;
        const hf = touch(h);
        if (get(s, h) === null) put(s, h, body, hf);
      }
    }
    assert.deepEqual(s.check(), []);
    assert.ok(s.counter(kCacheEvictionsField) > 0 || s.counter(kCacheAdmissionRefusedField) > 0);
    if (admission) assert.ok(s.counter(kCacheAdmissionRefusedField) > 100, 'the scan keys are refused');
    return hot.filter((k) => get(s, k) !== null).length;
  };
  assert.equal(run(true), hot.length, 'with admission every hot key survives the scan');
  assert.ok(run(false) < hot.length, 'plain CLOCK loses hot keys to the scan');
});

test('admission counts the requests waiting on a fill: a burst for a fresh key is stored against a hot set', () => {
  // 32 chunks of 1 KiB; each entry takes 3, so 10 hot keys fill it (records to spare),
  // each asked for often enough to max the sketch's counters (15).
  const s = CacheStore.create(32 * 1024, 4096);
  const body = 'b'.repeat(2500);
  const freqOf = (k: string, touches: number): number => {
    s.hash(k);
    for (let t = 0; t < touches; t++) s.touch(s.hA, s.hB);
    return s.frequency(s.hA, s.hB);
  };
  for (let i = 0; i < 10; i++) assert.equal(put(s, `hot/${i}`, body, freqOf(`hot/${i}`, 15)), PublishResult.Stored);
  // `touches`: what the sketch holds for the key, which is less than the requests for it
  // once the counters stop at 15 or are halved (every 10 × records requests; this test
  // stays under that, 150 + 1 + 8).
  const fill = (key: string, waiters: number, touches: number): PublishResult => {
    const f = freqOf(key, touches);
    const r = s.reserve(s.hA, s.hB, 0, 5000, f);
    assert.ok(r >= 0, 'the first request reserves the fill');
    const token = s.token;
    for (let w = 0; w < waiters; w++) assert.ok(s.reserve(s.hA, s.hB, 0, 5000, f) <= -2, 'later requests wait on it');
    const e = newEntryFields();
    e.status = 200;
    return s.publish(r, token, key, s.hA, s.hB, `meta:${key}`, [Buffer.from(body)], body.length, e, f);
  };
  assert.equal(fill('fresh/alone', 0, 1), PublishResult.Refused, 'a one-time key still loses to the hot set');
  assert.equal(fill('fresh/burst', 40, 8), PublishResult.Stored, '40 waiters make it hotter than the victim');
  assert.equal(get(s, 'fresh/burst'), body);
  assert.deepEqual(s.check(), []);
});

test('the sketch halves every counter after 10 × records samples (counted per thread in batches of 64), and not before', () => {
  const s = CacheStore.create(32 * 1024, 4096);
  const resetAt = 10 * s.counter(kCacheRecordsField);
  s.hash('hot');
  const [hA, hB] = [s.hA, s.hB];
  for (let t = 0; t < 15; t++) s.touch(hA, hB);
  assert.equal(s.frequency(hA, hB), 15);
  s.hash('other');
  // Up to one batch short of the reset: nothing halved yet.
  for (let t = 15; t < resetAt - 64; t++) s.touch(s.hA, s.hB);
  assert.equal(s.frequency(hA, hB), 15, 'no reset before 10 × records samples');
  for (let t = resetAt - 64; t < resetAt + 64; t++) s.touch(s.hA, s.hB);
  assert.equal(s.frequency(hA, hB), 7, 'halved once');
});

test('route counters: each worker adds to its own stripe (no word two workers write) and a reader sums them', () => {
  const s = CacheStore.create(32 * 1024, 4096);
  const w1 = CacheStore.attach(s.buffer);
  const w2 = CacheStore.attach(s.buffer);
  w1.stripe(1);
  w2.stripe(2);
  const before = new Int32Array(s.buffer).slice();
  for (let n = 0; n < 3; n++) w1.countResult(5, CacheResult.Hit);
  w2.countResult(5, CacheResult.Hit);
  w2.countResult(5, CacheResult.Miss);
  assert.equal(s.routeResult(5, CacheResult.Hit), 4);
  assert.equal(s.routeResult(5, CacheResult.Miss), 1);
  assert.equal(s.routeResult(4, CacheResult.Hit), 0);
  const after = new Int32Array(s.buffer);
  const changed = [...after.keys()].filter((k) => after[k] !== before[k]);
  assert.equal(changed.length, 3, 'three words changed: route 5 hit in stripes 1 and 2, miss in stripe 2');
  assert.deepEqual(changed.map((k) => after[k]).sort(), [1, 1, 3]);
});

test('doorkeeper: a key is refused before only from its second refusal; a distinct key in its slot takes the slot', () => {
  const s = CacheStore.create(32 * 1024, 4096);
  s.hash('a');
  const [aA, aB] = [s.hA, s.hB];
  assert.equal(s.refusedBefore(aA, aB), false, 'first refusal');
  assert.equal(s.refusedBefore(aA, aB), true, 'second refusal');
  assert.equal(s.refusedBefore(aA, aB), true);
  // Same slot (the slot comes from hA), another key: it replaces the sighting.
  assert.equal(s.refusedBefore(aA, aB + 2), false);
  assert.equal(s.refusedBefore(aA, aB), false, 'its sighting was replaced');
  // A stream of distinct keys is never "refused before".
  let seen = 0;
  for (let k = 0; k < 5000; k++) {
    s.hash(`/u/${k}`);
    if (s.refusedBefore(s.hA, s.hB)) seen++;
  }
  assert.equal(seen, 0);
});

test('the sketch counts a key in one 64-byte block (one cache line per request), four counters in it', () => {
  const s = CacheStore.create(256 * 1024, 4096);
  const sketch = (): Uint8Array => new Uint8Array(s.buffer, s.layout.sketchOffset, 4 * s.layout.sketchWidth).slice();
  for (const key of ['a', 'b', '/obj/17', 'example.com/x?y=1']) {
    s.hash(key);
    const before = sketch();
    s.touch(s.hA, s.hB);
    const after = sketch();
    const changed = [...after.keys()].filter((k) => after[k] !== before[k]);
    assert.ok(changed.length >= 1 && changed.length <= 4, `${key}: ${changed.length} counters`);
    assert.equal(new Set(changed.map((k) => k >> 6)).size, 1, `${key}: every counter in one block: ${changed.join(',')}`);
    assert.equal((s.layout.sketchOffset + (changed[0]! & ~63)) % 64, 0, 'the block is a cache line');
  }
});

test('lookupShared: a body in one run of chunks is found in the arena, a split one is copied, a held version copies nothing', () => {
  const s = CacheStore.create(64 * 1024, 16 * 1024);
  s.stripe(2);
  const none = { held: (): number => 0 };
  const body = 'y'.repeat(2500);
  assert.equal(put(s, 'GET run', body), PublishResult.Stored);
  const out = Buffer.alloc(64 * 1024);
  s.hash('GET run');
  s.enterRead();
  let r = s.lookupShared('GET run', s.hA, s.hB, out, none);
  assert.ok(r >= 0);
  assert.ok(s.bodyAt >= 0, 'located in place');
  assert.equal(s.bytes.toString('latin1', s.bodyAt, s.bodyAt + s.bodyLen), body);
  assert.equal(out.toString('latin1', s.metaAt, s.metaAt + s.metaLen), 'meta:GET run');
  // Held (1): neither meta nor body is copied.
  out.fill(0);
  r = s.lookupShared('GET run', s.hA, s.hB, out, { held: () => 1 });
  assert.ok(r >= 0);
  assert.equal(out.indexOf(0x79), -1, 'nothing copied');
  s.leaveRead();
  // Outside a section nothing is located in place.
  r = s.lookupShared('GET run', s.hA, s.hB, out, none);
  assert.equal(s.bodyAt, -1);
  assert.equal(out.toString('latin1', s.metaAt + s.metaLen, s.metaAt + s.metaLen + s.bodyLen), body);

  // Split chain: copied after the meta, bodyAt -1.
  const t = CacheStore.create(64 * 1024, 16 * 1024);
  t.stripe(2);
  const split = putSplit(t);
  t.enterRead();
  assert.ok(t.lookupShared('GET d', t.hA, t.hB, out, none) >= 0);
  t.leaveRead();
  assert.equal(t.bodyAt, -1, 'not one run');
  assert.equal(out.toString('latin1', t.metaAt + t.metaLen, t.metaAt + t.metaLen + t.bodyLen), split);
  assert.deepEqual(t.check(), []);
});

test('freed chunks stay in limbo while a reader line holds an older epoch; a write waits, gives up, and goes on once the line is left or cleared', () => {
  // 16 chunks; each entry takes 4 (3500-byte body, key, meta), so the fifth store evicts.
  const s = CacheStore.create(16 * 1024, 8 * 1024);
  const reader = CacheStore.attach(s.buffer);
  reader.stripe(3);
  const body = 'z'.repeat(3500);
  for (let k = 0; k < 4; k++) assert.equal(put(s, `GET k${k}`, body), PublishResult.Stored);
  reader.enterRead();
  const t0 = Date.now();
  // Every chunk it could take is freed while the reader's epoch is older: it waits and gives up.
  assert.equal(put(s, 'GET k4', body), PublishResult.NoSpace);
  const waited = Date.now() - t0;
  assert.ok(waited >= 40 && waited < 5000, `waited ${waited} ms`);
  assert.ok(s.counter(kCacheReclaimWaitsField) >= 1);
  assert.deepEqual(s.check(), []);
  reader.leaveRead();
  assert.equal(put(s, 'GET k5', body), PublishResult.Stored);
  // A line left set (a worker that died inside a section) is cleared by the primary.
  reader.enterRead();
  assert.equal(put(s, 'GET k6', body), PublishResult.NoSpace);
  s.clearReader(3);
  assert.equal(put(s, 'GET k7', body), PublishResult.Stored);
  assert.deepEqual(s.check(), []);
  // A line holding an epoch past the free does not hold it back.
  assert.equal(put(s, 'GET k8', body), PublishResult.Stored);
  reader.leaveRead();
});

test('the index does not fill with tombstones under reservations for distinct keys, and stored keys stay reachable', () => {
  const s = CacheStore.create(1024 * 1024, 16 * 1024);
  for (let k = 0; k < 150; k++) assert.equal(put(s, `GET stored/${k}`, 'v'.repeat(1500)), PublishResult.Stored);
  for (let n = 0; n < 20_000; n++) {
    s.hash(`GET once/${n}`);
    const r = s.reserve(s.hA, s.hB, Date.now(), 5000, -1);
    assert.ok(r >= 0);
    s.release(r, s.token);
    // now and then one that stays, and one of those that goes
    if (n % 500 === 0) {
      assert.equal(put(s, `GET late/${n}`, 'w'), PublishResult.Stored);
      s.hash(`GET late/${n - 1000}`);
      s.remove(`GET late/${n - 1000}`, s.hA, s.hB);
    }
  }
  const index = new Int32Array(s.buffer, s.layout.indexOffset, s.layout.indexSlots);
  const tombstones = index.filter((v) => v === -1).length;
  // Before the cleanup: 90 % of the slots and more.
  assert.ok(tombstones < s.layout.indexSlots * 0.05, `${tombstones} of ${s.layout.indexSlots} slots are tombstones`);
  for (let k = 0; k < 150; k++) assert.equal(get(s, `GET stored/${k}`), 'v'.repeat(1500));
  assert.deepEqual(s.check(), []);
});

test('a worker that ends holding the writer lock: the primary sees it, resets the store, and writes go on', async () => {
  const s = CacheStore.create(256 * 1024, 16 * 1024);
  assert.equal(put(s, 'GET before', 'kept?'), PublishResult.Stored);
  const w = new Worker(new URL('../helpers/cache-dead-holder-worker.js', import.meta.url), { workerData: { buffer: s.buffer, slot: 5, entries: 20 } });
  await new Promise<void>((resolve, reject) => {
    w.once('exit', () => resolve());
    w.once('error', reject);
  });
  assert.equal(s.heldBy(5), true, 'the lock is still held in the dead worker\'s name');
  assert.equal(s.heldBy(4), false, 'not in another worker\'s');
  // A recovery attempt for a live holder (another slot) changes nothing.
  assert.equal(await recoverIfStuck(s, 4, 3, 5), null);
  s.clearReader(5);
  const dropped = await recoverIfStuck(s, 5, 3, 5);
  assert.equal(dropped, 21, 'every entry dropped');
  assert.equal(s.counter(kCacheResetsField), 1);
  assert.equal(get(s, 'GET before'), null);
  assert.equal(get(s, 'GET dead/3'), null);
  assert.deepEqual(s.check(), [], 'structure after the reset');
  // The lock is free again and the chunks come back through limbo.
  for (let k = 0; k < 100; k++) assert.equal(put(s, `GET after/${k}`, 'n'.repeat(1800)), PublishResult.Stored);
  assert.equal(get(s, 'GET after/99'), 'n'.repeat(1800));
  assert.deepEqual(s.check(), []);
});
