// ngx.shared.DICT semantics of src/shm/shared-dict.ts, one operation at a time, on a
// synthetic clock (expiry) and in small dictionaries (eviction).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedState } from '../../src/shm/shared-state.js';
import { SharedDicts } from '../../src/shm/shared-dicts.js';
import { DictBytes, type SharedDict } from '../../src/shm/shared-dict.js';
import { dictGeometry, DictValueType, kDictBlockBytes } from '../../src/shm/shared-dict-layout.js';

function dict(bytes = 64 * 1024): { d: SharedDict; now: { t: number } } {
  const shm = SharedState.create({ maxWorkers: 1, maxUpstreams: 1, maxEndpoints: 1, limiterSlots: 16, limiterPolicies: 1, sharedDictBytes: bytes });
  const d = SharedDicts.format(shm, [{ name: 'd', bytes }]).get('d')!;
  const now = { t: 1_000_000 };
  d.clock = () => now.t;
  return { d, now };
}

function sound(d: SharedDict): void {
  assert.deepEqual(d.check(), []);
}

test('get/set of strings, numbers, booleans and flags; set nil deletes', () => {
  const { d } = dict();
  assert.equal(d.get('missing'), undefined);
  assert.equal(d.err, null, 'a missing key is not an error');
  assert.equal(d.set('s', 'héllo wörld'), true);
  assert.equal(d.get('s'), 'héllo wörld');
  assert.equal(d.set('n', 3.5, 0, 7), true);
  assert.equal(d.get('n'), 3.5);
  assert.equal(d.flags, 7);
  assert.equal(d.set('b', false), true);
  assert.equal(d.get('b'), false);
  const long = 'x'.repeat(1000) + 'é'.repeat(300);
  assert.equal(d.set('long-key-' + 'k'.repeat(100), long), true);
  assert.equal(d.get('long-key-' + 'k'.repeat(100)), long);
  assert.equal(d.set('s', 42), true, 'overwrite with another type');
  assert.equal(d.get('s'), 42);
  assert.equal(d.set('s', null), true);
  assert.equal(d.get('s'), undefined);
  assert.equal(d.set('', 1), false);
  assert.equal(d.err, 'empty key');
  assert.equal(d.set('k'.repeat(70_000), 1), false);
  assert.equal(d.err, 'key too long');
  sound(d);
});

test('keys and string values as bytes (DictBytes): any bytes round-trip, and a JS string key is its UTF-8 bytes', () => {
  const { d } = dict(512 * 1024);
  const mem = new Uint8Array(4096);
  const ref = (at: number, bytes: number[]): DictBytes => {
    mem.set(bytes, at);
    const r = new DictBytes();
    r.bytes = mem;
    r.at = at;
    r.len = bytes.length;
    return r;
  };
  const k1 = ref(10, [0x80, 0x01]);
  const k2 = ref(20, [0x81, 0x01]);
  const bin = [0x00, 0xff, 0xfe, 0x80, 0x61, 0x00];
  assert.equal(d.set(k1, ref(100, bin)), true);
  assert.equal(d.set(k2, 7), true);
  const out = new DictBytes();
  out.bytes = new Uint8Array(64);
  out.at = 5;
  out.len = 59;
  assert.equal(d.getInto(k1, false, out), DictValueType.String);
  assert.deepEqual([...out.bytes.subarray(out.at, out.at + out.len)], bin, 'copied into the caller\'s buffer unchanged');
  assert.equal(out.at, 5);
  assert.equal(d.getInto(k2, false, out), DictValueType.Number, 'keys that differ in a byte that is not UTF-8 stay distinct');
  assert.equal(d.number, 7);
  const big = Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff);
  const kb = ref(30, [0xc3, 0xa9]); // "é"
  assert.equal(d.set(kb, ref(200, big)), true);
  const small = new DictBytes();
  small.bytes = new Uint8Array(16);
  small.len = 16;
  assert.equal(d.getInto(kb, false, small), DictValueType.String);
  assert.notEqual(small.bytes.length, 16, 'too big for the caller\'s buffer: handed over in the dictionary\'s own');
  assert.deepEqual([...small.bytes.subarray(small.at, small.at + small.len)], big);
  assert.equal(d.incr('é', 1), undefined, 'the UTF-8 key is the same item: a string, not a number');
  assert.equal(d.err, 'not a number');
  assert.deepEqual(
    d.getKeyBytes(0).map((k) => [...k]).sort(),
    [[0x80, 0x01], [0x81, 0x01], [0xc3, 0xa9]].sort(),
  );
  assert.equal(d.get(ref(40, [])), undefined);
  assert.equal(d.err, 'empty key');
  sound(d);
});

test('a string value larger than any before keeps its key (the scratch grows without losing the key bytes)', () => {
  const { d } = dict(512 * 1024);
  const v = 'é'.repeat(60_000);
  assert.equal(d.set('key-one', v), true);
  assert.equal(d.get('key-one'), v);
  sound(d);
});

test('add fails on a live key, replace on a missing one; both succeed past expiry', () => {
  const { d, now } = dict();
  assert.equal(d.add('a', 1), true);
  assert.equal(d.add('a', 2), false);
  assert.equal(d.err, 'exists');
  assert.equal(d.get('a'), 1);
  assert.equal(d.replace('b', 1), false);
  assert.equal(d.err, 'not found');
  assert.equal(d.replace('a', 'two'), true);
  assert.equal(d.get('a'), 'two');
  d.set('e', 'old', 1);
  now.t += 1001;
  assert.equal(d.replace('e', 'x'), false, 'an expired key is not found');
  assert.equal(d.add('e', 'new'), true, 'an expired key can be added');
  assert.equal(d.get('e'), 'new');
  assert.equal(d.delete('a'), true);
  assert.equal(d.get('a'), undefined);
  sound(d);
});

test('a set of a value the same size as the old one replaces it in place: value, type, expiry, flags and recency all change', () => {
  const { d, now } = dict();
  d.set('a', 'first-value-xyz', 5, 3);
  d.set('b', 1);
  const free = d.freeSpace();
  assert.equal(d.set('a', 'other-value-abc', 0, 9), true);
  assert.equal(d.get('a'), 'other-value-abc');
  assert.equal(d.flags, 9);
  assert.equal(d.ttl('a'), 0, 'no expiry now');
  assert.equal(d.freeSpace(), free, 'no block taken or freed');
  assert.deepEqual(d.getKeys(0), ['a', 'b']);
  assert.equal(d.set('b', 2.5, 1), true);
  assert.deepEqual(d.getKeys(0), ['b', 'a'], 'the replaced item is the most recently used');
  assert.equal(d.get('b'), 2.5);
  assert.equal(d.set('b', true), true, 'a number becomes a boolean');
  assert.equal(d.get('b'), true);
  assert.equal(d.ttl('b'), 0);
  d.set('c', 'old', 1);
  now.t += 2000;
  assert.equal(d.add('c', 'new'), true, 'an expired item is replaced by add');
  assert.equal(d.get('c'), 'new');
  assert.equal(d.ttl('c'), 0);
  assert.equal(d.replace('c', 'NEW'), true);
  assert.equal(d.get('c'), 'NEW');
  assert.equal(d.add('c', 'one'), false);
  assert.equal(d.get('c'), 'NEW', 'a failed add changes nothing');
  sound(d);
});

test('expiry: get hides, get_stale shows, ttl and expire', () => {
  const { d, now } = dict();
  d.set('k', 'v', 2.5);
  assert.equal(d.ttl('k'), 2.5);
  now.t += 1000;
  assert.equal(d.ttl('k'), 1.5);
  assert.equal(d.get('k'), 'v');
  now.t += 1500;
  assert.equal(d.get('k'), undefined, 'expired at exactly its time');
  assert.equal(d.getStale('k'), 'v');
  assert.equal(d.stale, true);
  assert.equal(d.ttl('k'), undefined);
  assert.equal(d.err, 'not found');
  assert.equal(d.expire('k', 10), false, 'expire on an expired key');
  d.set('p', 1);
  assert.equal(d.ttl('p'), 0, 'no expiry reads as 0');
  assert.equal(d.expire('p', 3), true);
  assert.equal(d.ttl('p'), 3);
  assert.equal(d.expire('p', 0), true);
  assert.equal(d.ttl('p'), 0);
  now.t += 1e9;
  assert.equal(d.get('p'), 1, 'expire 0 means never');
  sound(d);
});

test('incr: not found without init, init and init_ttl, keeps expiry, refuses non-numbers', () => {
  const { d, now } = dict();
  assert.equal(d.incr('c', 1), undefined);
  assert.equal(d.err, 'not found');
  assert.equal(d.incr('c', 1, 10), 11);
  assert.equal(d.incr('c', -3), 8);
  assert.equal(d.ttl('c'), 0);
  assert.equal(d.incr('t', 1, 0, 2), 1);
  assert.equal(d.ttl('t'), 2);
  now.t += 1000;
  assert.equal(d.incr('t', 5, 0, 100), 6, 'an existing item keeps its ttl; init_ttl is ignored');
  assert.equal(d.ttl('t'), 1);
  now.t += 1000;
  assert.equal(d.incr('t', 1), undefined, 'expired: not found again');
  assert.equal(d.incr('t', 1, 100), 101, 'expired with init: starts over');
  d.set('s', 'str');
  assert.equal(d.incr('s', 1, 0), undefined);
  assert.equal(d.err, 'not a number');
  assert.equal(d.incr('c', Number.NaN), undefined);
  assert.equal(d.err, 'not a number');
  sound(d);
});

test('get_keys lists live keys, most recently used first, up to a limit; flush_expired and flush_all', () => {
  const { d, now } = dict();
  d.set('a', 1);
  d.set('b', 2, 1);
  d.set('c', 3);
  d.get('a'); // a is now the most recently used
  assert.deepEqual(d.getKeys(0), ['a', 'c', 'b']);
  assert.deepEqual(d.getKeys(2), ['a', 'c']);
  now.t += 1000;
  assert.deepEqual(d.getKeys(), ['a', 'c'], 'expired keys are not listed');
  assert.equal(d.flushExpired(), 1);
  assert.equal(d.getStale('b'), undefined, 'flushed, not just hidden');
  d.set('x', 1, 1);
  d.set('y', 1, 1);
  now.t += 2000;
  assert.equal(d.flushExpired(1), 1, 'at most max');
  assert.equal(d.flushExpired(0), 1);
  assert.equal(d.stats().expiredRemoved, 3);
  d.flushAll();
  assert.deepEqual(d.getKeys(0), []);
  assert.equal(d.freeSpace(), d.capacity());
  sound(d);
});

test('a full dictionary evicts the least recently used items and reports forcible; safe_set and safe_add do not evict', () => {
  const bytes = 8 * 1024;
  const { d } = dict(bytes);
  const blocks = dictGeometry(bytes).blocks;
  assert.equal(d.capacity(), blocks * kDictBlockBytes);
  // Each item: a 6-byte key and a 40-byte value = 2 blocks.
  const value = 'v'.repeat(40);
  const fit = Math.floor(blocks / 2);
  for (let i = 0; i < fit; i++) {
    assert.equal(d.set(`key${String(i).padStart(3, '0')}`, value), true);
    assert.equal(d.forcible, false, `item ${i} fits`);
  }
  d.get('key000'); // used: the LRU victim is key001 now
  assert.equal(d.set('new001', value), true);
  assert.equal(d.forcible, true);
  assert.equal(d.get('key001'), undefined, 'least recently used went first');
  assert.equal(d.get('key000'), value, 'recently read survives');
  assert.equal(d.stats().evictions, 1);
  assert.equal(d.safeSet('new002', value), false);
  assert.equal(d.err, 'no memory');
  assert.equal(d.safeAdd('new003', value), false);
  assert.equal(d.err, 'no memory');
  if (d.freeSpace() > 0) d.set('filler', 1); // an odd block left over: fill it
  assert.equal(d.freeSpace(), 0);
  assert.equal(d.incr('counter', 1, 0), 1, 'incr with init may evict');
  assert.equal(d.forcible, true);
  // Larger than the whole dictionary: no memory even with eviction.
  assert.equal(d.set('huge', 'h'.repeat(bytes)), false);
  assert.equal(d.err, 'no memory');
  // Evicting up to 30 items makes room for a big one.
  assert.equal(d.set('big', 'b'.repeat(60 * 20)), true);
  assert.equal(d.forcible, true);
  assert.equal(d.get('big'), 'b'.repeat(60 * 20));
  sound(d);
});

test('expired items are reclaimed before live ones are evicted', () => {
  const bytes = 8 * 1024;
  const { d, now } = dict(bytes);
  const blocks = dictGeometry(bytes).blocks;
  for (let i = 0; i < blocks; i++) d.set(`e${i}`, i, i % 2 === 0 ? 1 : 0);
  assert.equal(d.freeSpace(), 0);
  now.t += 1000;
  for (let i = 0; i < blocks / 4; i++) {
    assert.equal(d.set(`n${i}`, i), true);
    assert.equal(d.forcible, false, 'room came from expired items');
  }
  for (let i = 1; i < blocks; i += 2) assert.equal(d.get(`e${i}`), i, 'no live item was evicted');
  sound(d);
});

test('dictionaries sit side by side without overlapping; a worker attaches by placement', () => {
  const shm = SharedState.create({ maxWorkers: 1, maxUpstreams: 1, maxEndpoints: 1, limiterSlots: 16, limiterPolicies: 1, sharedDictBytes: 3 * 16 * 1024 });
  const dicts = SharedDicts.format(shm, [
    { name: 'a', bytes: 16 * 1024 },
    { name: 'b', bytes: 16 * 1024 },
    { name: 'c', bytes: 16 * 1024 },
  ]);
  for (const n of ['a', 'b', 'c']) for (let i = 0; i < 500; i++) dicts.get(n)!.set(`k${i}`, `${n}-${i}`);
  const other = SharedDicts.attach(SharedState.attach(shm.buffer, { maxWorkers: 1 }), dicts.placements);
  for (const n of ['a', 'b', 'c']) {
    const d = other.get(n)!;
    assert.deepEqual(d.check(), []);
    assert.equal(d.get('k499'), `${n}-499`);
  }
  assert.throws(() => SharedDicts.attach(shm, [{ name: 'x', byteOffset: 0, bytes: 64 * 1024 }]), /TG_ERR_SHM_CAPACITY|reserved at start/);
});
