// One shared dictionary with the semantics of OpenResty's ngx.shared.DICT, in the
// shared buffer, used by every worker thread (plugins, Lua) and read by the primary
// (admin API). Layout in shared-dict-layout.ts.
//
// Concurrency: one mutex per dictionary, as nginx guards each shared zone with one
// ngx_shmtx. An operation is a handful of memory accesses under the lock, so threads
// rarely meet; when they do, a waiter spins briefly and then sleeps in Atomics.wait
// (the futex protocol of Drepper, "Futexes are tricky", mutex 2). A lock-free table
// would need multi-word updates (value, expiry, LRU links) to appear atomic, which is
// what the lock buys simply.
//
// XXX: a thread stopped while it holds the lock (Worker.terminate in the middle of an
// operation) leaves the dictionary locked. The gateway never terminates a worker
// thread (uWS would abort the process), and an exception inside an operation unlocks
// in `finally`, so this is left undetected rather than guessed at with a timeout.
//
// Semantics follow lua-nginx-module's ngx_http_lua_shdict.c: `get` counts as a use
// for LRU; expired items read as missing and are reclaimed lazily (two of them from
// the LRU tail on each write, like OpenResty) or when room is needed; a write that
// finds no room evicts least-recently-used items (up to 30) and reports `forcible`;
// the `safe_` variants never evict and fail with "no memory" instead.
import {
  blocksFor,
  dictGeometry,
  DictValueType,
  kContDataByte,
  kContDataBytes,
  kContNextInt32,
  kDictBlockBytes,
  kDictBlockInt32,
  kDictBlocksInt32,
  kDictBucketsInt32,
  kDictEvictionsInt32,
  kDictExpiredRemovedInt32,
  kDictFreeCountInt32,
  kDictFreeHeadInt32,
  kDictHeaderInt32,
  kDictItemsInt32,
  kDictLockInt32,
  kDictLruHeadInt32,
  kDictLruTailInt32,
  kDictMagic,
  kDictMagicInt32,
  kDictMaxKeyBytes,
  kHeadDataBytes,
  kItemChainInt32,
  kItemContInt32,
  kItemDataByte,
  kItemExpiresF64Int32,
  kItemFlagsInt32,
  kItemHashInt32,
  kItemKeyBytesInt32,
  kItemLruNextInt32,
  kItemLruPrevInt32,
  kItemNumberF64Int32,
  kItemTypeInt32,
  kItemValueBytesInt32,
} from './shared-dict-layout.js';

export type DictValue = string | number | boolean;

/** Evicted at most per write, as OpenResty's ngx_http_lua_shdict_expire(…, 0) loop bounds it. */
const kMaxForcedEvictions = 30;
/** Spins before sleeping on a held lock: most critical sections end within them. */
const kSpins = 64;

/** What a failed operation reports, as OpenResty's second return value. */
export type DictError = 'not found' | 'exists' | 'no memory' | 'not a number' | 'key too long' | 'empty key' | 'bad value';

// Scratch for encoding a string key, and for a string value, of the current operation
// (two, so that growing one never loses the other's bytes): every operation runs to
// completion synchronously, so one of each per thread is enough.
let keyScratch = Buffer.allocUnsafe(1024);
let valueScratch = Buffer.allocUnsafe(4096);
function keyScratchFor(n: number): Buffer {
  if (keyScratch.length < n) keyScratch = Buffer.allocUnsafe(Math.max(n, keyScratch.length * 2));
  return keyScratch;
}
function valueScratchFor(n: number): Buffer {
  if (valueScratch.length < n) valueScratch = Buffer.allocUnsafe(Math.max(n, valueScratch.length * 2));
  return valueScratch;
}

/** FNV-1a over bytes: keys are compared as bytes, so they are hashed as bytes. */
function fnv1a(buf: Uint8Array, at: number, len: number): number {
  let h = 0x811c9dc5;
  for (let i = at, end = at + len; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h | 0;
}

/**
 * Bytes in a caller's buffer (for Lua: a string in the VM's memory), as a key or a
 * string value: compared, hashed and copied where they lie, with no JS string in
 * between, so any bytes round-trip (a JS string key is its UTF-8 bytes). A caller keeps
 * one and refills it per operation; the dictionary reads it only during the call.
 */
export class DictBytes {
  bytes: Uint8Array = new Uint8Array(0);
  at = 0;
  len = 0;
}

/** A key: a JS string (its UTF-8 bytes) or bytes. */
export type DictKey = string | DictBytes;

export interface DictStats {
  readonly capacityBytes: number;
  readonly freeBytes: number;
  readonly items: number;
  readonly evictions: number;
  readonly expiredRemoved: number;
}

export class SharedDict {
  readonly name: string;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly u8: Buffer;
  private readonly base: number; // Int32 index of the header
  private readonly bucketBase: number; // Int32 index of bucket 0
  private readonly blockBase: number; // Int32 index of block 0
  private readonly blockByteBase: number; // byte offset of block 0
  private readonly mask: number;
  private readonly blocks: number;
  /** when false the dictionary is used without its lock: only the stress test's control run sets it */
  locking = true;
  /** ms; absolute expiry times are on this clock (tests replace it) */
  clock: () => number = Date.now;

  /** after each operation: valid items were evicted to make room */
  forcible = false;
  /** after each operation: why it failed, or null */
  err: DictError | null = null;
  /** after `get`: the item's user flags */
  flags = 0;

  /** after `getInto`: a number or boolean (0/1) value */
  number = 0;

  /** the prepared key: keyLen bytes of keySrc from keyAt */
  private keySrc: Uint8Array = keyScratch;
  private keyAt = 0;
  private keyLen = 0;
  private keyHash = 0;

  /** `byteOffset`/`bytes` from placeDicts; the region must have been formatted once (format()). */
  constructor(buffer: SharedArrayBuffer, name: string, byteOffset: number, bytes: number) {
    if (byteOffset % kDictBlockBytes !== 0) throw new RangeError(`shared dict ${name}: offset ${byteOffset} is not 64-byte aligned`);
    this.name = name;
    this.i32 = new Int32Array(buffer);
    this.f64 = new Float64Array(buffer);
    this.u8 = Buffer.from(buffer);
    this.base = byteOffset / 4;
    const g = dictGeometry(bytes);
    this.mask = g.buckets - 1;
    this.blocks = g.blocks;
    this.bucketBase = this.base + kDictHeaderInt32;
    this.blockByteBase = byteOffset + g.blocksByte;
    this.blockBase = this.blockByteBase / 4;
  }

  /** Writes an empty dictionary (primary, once, before any worker attaches). */
  static format(buffer: SharedArrayBuffer, name: string, byteOffset: number, bytes: number): SharedDict {
    const d = new SharedDict(buffer, name, byteOffset, bytes);
    const i32 = d.i32;
    const b = d.base;
    i32.fill(0, b, b + kDictHeaderInt32);
    i32[b + kDictBucketsInt32] = d.mask + 1;
    i32[b + kDictBlocksInt32] = d.blocks;
    i32.fill(-1, d.bucketBase, d.bucketBase + d.mask + 1);
    d.clearStorage();
    Atomics.store(i32, b + kDictMagicInt32, kDictMagic);
    return d;
  }

  /** true when the region holds a dictionary of this geometry (a worker's sanity check) */
  get formatted(): boolean {
    return Atomics.load(this.i32, this.base + kDictMagicInt32) === kDictMagic && this.i32[this.base + kDictBlocksInt32] === this.blocks;
  }

  private clearStorage(): void {
    const i32 = this.i32;
    const b = this.base;
    i32.fill(-1, this.bucketBase, this.bucketBase + this.mask + 1);
    // Free stack in block order: block i points at i + 1.
    for (let i = 0; i < this.blocks; i++) i32[this.blockBase + i * kDictBlockInt32 + kContNextInt32] = i + 1 < this.blocks ? i + 1 : -1;
    i32[b + kDictFreeHeadInt32] = this.blocks > 0 ? 0 : -1;
    i32[b + kDictFreeCountInt32] = this.blocks;
    i32[b + kDictLruHeadInt32] = -1;
    i32[b + kDictLruTailInt32] = -1;
    i32[b + kDictItemsInt32] = 0;
  }

  // ---- the lock -------------------------------------------------------------------

  private lock(): void {
    if (!this.locking) return;
    const i32 = this.i32;
    const at = this.base + kDictLockInt32;
    let c = Atomics.compareExchange(i32, at, 0, 1);
    if (c === 0) return;
    for (let i = 0; i < kSpins; i++) {
      if (Atomics.load(i32, at) === 0) {
        c = Atomics.compareExchange(i32, at, 0, 1);
        if (c === 0) return;
      }
    }
    // Mark "held with waiters" and sleep until the holder hands over.
    if (c !== 2) c = Atomics.exchange(i32, at, 2);
    while (c !== 0) {
      Atomics.wait(i32, at, 2);
      c = Atomics.exchange(i32, at, 2);
    }
  }

  private unlock(): void {
    if (!this.locking) return;
    const at = this.base + kDictLockInt32;
    if (Atomics.sub(this.i32, at, 1) !== 1) {
      Atomics.store(this.i32, at, 0);
      Atomics.notify(this.i32, at, 1);
    }
  }

  // ---- public operations ------------------------------------------------------------

  /** The value, or undefined when missing or expired (err null) or for a bad key (err set). `flags` holds the item's flags. */
  get(key: DictKey): DictValue | undefined {
    return this.read(key, false);
  }

  /** Like get, but an expired item is still returned (OpenResty get_stale); `stale` says whether it had expired. */
  getStale(key: DictKey): DictValue | undefined {
    return this.read(key, true);
  }

  /** after `getStale`: the value returned had expired */
  stale = false;

  private read(key: DictKey, allowStale: boolean): DictValue | undefined {
    const type = this.readInto(key, allowStale, null);
    switch (type) {
      case 0:
        return undefined;
      case DictValueType.Number:
        return this.number;
      case DictValueType.Boolean:
        return this.number !== 0;
      default:
        return valueScratch.toString('utf8', 0, this.valueLen);
    }
  }

  /**
   * get (`allowStale` false) or get_stale for a caller that takes bytes: the value's
   * type, or 0 when missing or expired (err null) or for a bad key (err set). A number
   * or boolean is in `number`. A string's bytes are copied into `out` when they fit in
   * its `len` bytes from `at` (then `out.len` is their length); when they do not, or
   * `out` is null, they are in `out` as the dictionary's own scratch (`bytes`, `at` 0,
   * `len`), valid until its next operation. `flags` and `stale` as for get.
   */
  getInto(key: DictKey, allowStale: boolean, out: DictBytes | null): DictValueType | 0 {
    return this.readInto(key, allowStale, out);
  }

  /** a string value's length after readInto(…, null): its bytes are valueScratch[0..valueLen) */
  private valueLen = 0;

  private readInto(key: DictKey, allowStale: boolean, out: DictBytes | null): DictValueType | 0 {
    this.reset();
    if (!this.prepareKey(key)) return 0;
    this.lock();
    try {
      const it = this.find();
      if (it < 0) return 0;
      const expired = this.isExpired(it, this.clock());
      if (expired && !allowStale) return 0;
      this.stale = expired;
      if (!expired) this.touch(it);
      const h = this.head(it);
      this.flags = this.i32[h + kItemFlagsInt32]! >>> 0;
      const type = this.i32[h + kItemTypeInt32]! as DictValueType;
      if (type !== DictValueType.String) {
        this.number = this.f64[(h + kItemNumberF64Int32) >> 1]!;
        return type;
      }
      const k = this.i32[h + kItemKeyBytesInt32]!;
      const n = this.i32[h + kItemValueBytesInt32]!;
      if (out !== null && n <= out.len) {
        this.readData(it, k, n, out.bytes, out.at);
        out.len = n;
        return type;
      }
      this.readData(it, k, n, valueScratchFor(n), 0);
      this.valueLen = n;
      if (out !== null) {
        out.bytes = valueScratch;
        out.at = 0;
        out.len = n;
      }
      return type;
    } finally {
      this.unlock();
    }
  }

  /** Stores the value (undefined/null deletes). `exptime` seconds, 0 = never. May evict (forcible). */
  set(key: DictKey, value: DictValue | DictBytes | null | undefined, exptime = 0, flags = 0): boolean {
    return this.write(key, value, exptime, flags, Mode.Set, true);
  }

  /** set that never evicts a valid item: fails with "no memory" instead */
  safeSet(key: DictKey, value: DictValue | DictBytes | null | undefined, exptime = 0, flags = 0): boolean {
    return this.write(key, value, exptime, flags, Mode.Set, false);
  }

  /** set only when the key is missing (or expired); fails with "exists" */
  add(key: DictKey, value: DictValue | DictBytes, exptime = 0, flags = 0): boolean {
    return this.write(key, value, exptime, flags, Mode.Add, true);
  }

  safeAdd(key: DictKey, value: DictValue | DictBytes, exptime = 0, flags = 0): boolean {
    return this.write(key, value, exptime, flags, Mode.Add, false);
  }

  /** set only when the key exists (and has not expired); fails with "not found" */
  replace(key: DictKey, value: DictValue | DictBytes, exptime = 0, flags = 0): boolean {
    return this.write(key, value, exptime, flags, Mode.Replace, true);
  }

  delete(key: DictKey): boolean {
    return this.write(key, undefined, 0, 0, Mode.Set, true);
  }

  /**
   * Adds `by` to a number. A missing or expired key fails with "not found" unless
   * `init` is given: then it starts from `init` with expiry `initTtl` seconds (0 = never).
   * An existing item keeps its expiry. The new value, or undefined with `err`.
   */
  incr(key: DictKey, by: number, init?: number, initTtl = 0): number | undefined {
    this.reset();
    if (!Number.isFinite(by) || (init !== undefined && !Number.isFinite(init))) {
      this.err = 'not a number';
      return undefined;
    }
    if (!this.prepareKey(key)) return undefined;
    this.lock();
    try {
      const now = this.clock();
      const it = this.find();
      if (it >= 0 && !this.isExpired(it, now)) {
        const h = this.head(it);
        if (this.i32[h + kItemTypeInt32] !== DictValueType.Number) {
          this.err = 'not a number';
          return undefined;
        }
        const f = (h + kItemNumberF64Int32) >> 1;
        const v = this.f64[f]! + by;
        this.f64[f] = v;
        this.touch(it);
        return v;
      }
      if (init === undefined) {
        this.err = 'not found';
        return undefined;
      }
      if (it >= 0) this.remove(it);
      this.expireSome(now, 2);
      const v = init + by;
      if (!this.insert(DictValueType.Number, v, valueScratch, 0, 0, initTtl > 0 ? now + initTtl * 1000 : 0, 0, true, now)) return undefined;
      return v;
    } finally {
      this.unlock();
    }
  }

  /** The prepared key's item if it is there and not expired; else -1 with err "not found". Under the lock. */
  private findLive(now: number): number {
    const it = this.find();
    if (it >= 0 && !this.isExpired(it, now)) return it;
    this.err = 'not found';
    return -1;
  }

  /** Seconds until the item expires (0: never), or undefined with err "not found". */
  ttl(key: DictKey): number | undefined {
    this.reset();
    if (!this.prepareKey(key)) return undefined;
    this.lock();
    try {
      const now = this.clock();
      const it = this.findLive(now);
      if (it < 0) return undefined;
      const exp = this.f64[(this.head(it) + kItemExpiresF64Int32) >> 1]!;
      return exp === 0 ? 0 : (exp - now) / 1000;
    } finally {
      this.unlock();
    }
  }

  /** Sets a new expiry on an existing item (`exptime` seconds, 0 = never); false with err "not found". */
  expire(key: DictKey, exptime: number): boolean {
    this.reset();
    if (!this.prepareKey(key)) return false;
    this.lock();
    try {
      const now = this.clock();
      const it = this.findLive(now);
      if (it < 0) return false;
      this.f64[(this.head(it) + kItemExpiresF64Int32) >> 1] = exptime > 0 ? now + exptime * 1000 : 0;
      return true;
    } finally {
      this.unlock();
    }
  }

  /** Unexpired keys, most recently used first; at most `max` of them (0: all). OpenResty's default is 1024. */
  getKeys(max = 1024): string[] {
    return this.keys(max).map((k) => k.toString('utf8'));
  }

  /** getKeys as bytes (copies): keys that are not UTF-8 come back as they were written. */
  getKeyBytes(max = 1024): Uint8Array[] {
    return this.keys(max);
  }

  private keys(max: number): Buffer[] {
    this.reset();
    const out: Buffer[] = [];
    this.lock();
    try {
      const now = this.clock();
      for (let it = this.i32[this.base + kDictLruHeadInt32]!; it >= 0; it = this.i32[this.head(it) + kItemLruNextInt32]!) {
        if (this.isExpired(it, now)) continue;
        const k = Buffer.allocUnsafe(this.i32[this.head(it) + kItemKeyBytesInt32]!);
        this.readData(it, 0, k.length, k, 0);
        out.push(k);
        if (max > 0 && out.length >= max) break;
      }
    } finally {
      this.unlock();
    }
    return out;
  }

  /** Removes expired items, at most `max` (0: all); returns how many. */
  flushExpired(max = 0): number {
    this.reset();
    this.lock();
    try {
      return this.expireSome(this.clock(), max, false);
    } finally {
      this.unlock();
    }
  }

  /** Removes every item. (OpenResty marks them expired and frees them lazily; freeing at once is what an operator expects.) */
  flushAll(): void {
    this.reset();
    this.lock();
    try {
      this.clearStorage();
    } finally {
      this.unlock();
    }
  }

  /** Bytes of storage (blocks), as OpenResty's capacity() reports the zone size. */
  capacity(): number {
    return this.blocks * kDictBlockBytes;
  }

  /** Bytes in free blocks. */
  freeSpace(): number {
    return Atomics.load(this.i32, this.base + kDictFreeCountInt32) * kDictBlockBytes;
  }

  stats(): DictStats {
    const i32 = this.i32;
    const b = this.base;
    return {
      capacityBytes: this.capacity(),
      freeBytes: this.freeSpace(),
      items: Atomics.load(i32, b + kDictItemsInt32),
      evictions: Atomics.load(i32, b + kDictEvictionsInt32) >>> 0,
      expiredRemoved: Atomics.load(i32, b + kDictExpiredRemovedInt32) >>> 0,
    };
  }

  /**
   * Walks every structure under the lock and returns what is inconsistent (empty when
   * sound): blocks lost or shared, chains and LRU links that disagree, counts that drift.
   * For tests and diagnostics, O(size).
   */
  check(): string[] {
    const problems: string[] = [];
    this.lock();
    try {
      const owner = new Int32Array(this.blocks).fill(-1);
      const claim = (blk: number, by: number, what: string): void => {
        if (blk < 0 || blk >= this.blocks) problems.push(`${what}: block ${blk} out of range`);
        else if (owner[blk] !== -1) problems.push(`${what}: block ${blk} already owned by ${owner[blk]}`);
        else owner[blk] = by;
      };
      let free = 0;
      for (let f = this.i32[this.base + kDictFreeHeadInt32]!; f >= 0 && free <= this.blocks; f = this.i32[this.blockBase + f * kDictBlockInt32 + kContNextInt32]!) {
        claim(f, -2, 'free stack');
        free++;
      }
      if (free !== this.i32[this.base + kDictFreeCountInt32]) problems.push(`free count ${this.i32[this.base + kDictFreeCountInt32]} but ${free} on the stack`);
      let items = 0;
      for (let bkt = 0; bkt <= this.mask; bkt++) {
        for (let it = this.i32[this.bucketBase + bkt]!; it >= 0 && items <= this.blocks; it = this.i32[this.head(it) + kItemChainInt32]!) {
          items++;
          claim(it, it, 'item');
          if (((this.i32[this.head(it) + kItemHashInt32]! & this.mask) >>> 0) !== bkt) problems.push(`item ${it} in bucket ${bkt} hashes elsewhere`);
          const need = blocksFor(this.i32[this.head(it) + kItemKeyBytesInt32]! + this.i32[this.head(it) + kItemValueBytesInt32]!);
          let n = 1;
          for (let c = this.i32[this.head(it) + kItemContInt32]!; c >= 0 && n <= this.blocks; c = this.i32[this.blockBase + c * kDictBlockInt32 + kContNextInt32]!) {
            claim(c, it, `continuation of ${it}`);
            n++;
          }
          if (n !== need) problems.push(`item ${it} has ${n} blocks, needs ${need}`);
        }
      }
      if (items !== this.i32[this.base + kDictItemsInt32]) problems.push(`item count ${this.i32[this.base + kDictItemsInt32]} but ${items} in buckets`);
      let lru = 0;
      let prev = -1;
      for (let it = this.i32[this.base + kDictLruHeadInt32]!; it >= 0 && lru <= this.blocks; it = this.i32[this.head(it) + kItemLruNextInt32]!) {
        lru++;
        if (owner[it] !== it) problems.push(`LRU holds ${it}, which is not an item`);
        if (this.i32[this.head(it) + kItemLruPrevInt32] !== prev) problems.push(`LRU ${it}: prev ${this.i32[this.head(it) + kItemLruPrevInt32]} expected ${prev}`);
        prev = it;
      }
      if (prev !== this.i32[this.base + kDictLruTailInt32]) problems.push(`LRU tail ${this.i32[this.base + kDictLruTailInt32]} expected ${prev}`);
      if (lru !== items) problems.push(`LRU has ${lru} items, buckets ${items}`);
      let unowned = 0;
      for (let i = 0; i < this.blocks; i++) if (owner[i] === -1) unowned++;
      if (unowned > 0) problems.push(`${unowned} blocks neither free nor in an item`);
    } finally {
      this.unlock();
    }
    return problems;
  }

  // ---- internals (the lock is held) -------------------------------------------------

  private reset(): void {
    this.err = null;
    this.forcible = false;
    this.flags = 0;
    this.stale = false;
  }

  /** Takes the key's bytes (a string encoded into keyScratch) and hashes them; false with err for an empty or too long key. */
  private prepareKey(key: DictKey): boolean {
    let src: Uint8Array;
    let at = 0;
    let n: number;
    if (typeof key === 'string') {
      src = keyScratchFor(key.length * 3);
      n = key.length === 0 ? 0 : keyScratch.write(key, 0, 'utf8');
    } else if (key instanceof DictBytes) {
      src = key.bytes;
      at = key.at;
      n = key.len;
    } else {
      n = 0;
      src = keyScratch;
    }
    if (n === 0) {
      this.err = 'empty key';
      return false;
    }
    if (n > kDictMaxKeyBytes) {
      this.err = 'key too long';
      return false;
    }
    this.keySrc = src;
    this.keyAt = at;
    this.keyLen = n;
    this.keyHash = fnv1a(src, at, n);
    return true;
  }

  private head(it: number): number {
    return this.blockBase + it * kDictBlockInt32;
  }

  private blockByte(blk: number): number {
    return this.blockByteBase + blk * kDictBlockBytes;
  }

  private isExpired(it: number, now: number): boolean {
    const exp = this.f64[(this.head(it) + kItemExpiresF64Int32) >> 1]!;
    return exp !== 0 && exp <= now;
  }

  /** The prepared key's item, or -1. */
  private find(): number {
    const i32 = this.i32;
    for (let it = i32[this.bucketBase + (this.keyHash & this.mask)]!; it >= 0; it = i32[this.head(it) + kItemChainInt32]!) {
      const h = this.head(it);
      if (i32[h + kItemHashInt32] === this.keyHash && i32[h + kItemKeyBytesInt32] === this.keyLen && this.keyEquals(it)) return it;
    }
    return -1;
  }

  /** Compares the item's key bytes with the prepared key's. */
  private keyEquals(it: number): boolean {
    const key = this.keySrc;
    let want = this.keyLen;
    let pos = this.keyAt;
    let byte = this.blockByte(it) + kItemDataByte;
    let room = kHeadDataBytes;
    let blk = this.i32[this.head(it) + kItemContInt32]!;
    const u8 = this.u8;
    while (want > 0) {
      const n = want < room ? want : room;
      for (let i = 0; i < n; i++) if (u8[byte + i] !== key[pos + i]) return false;
      pos += n;
      want -= n;
      if (want === 0) break;
      byte = this.blockByte(blk) + kContDataByte;
      room = kContDataBytes;
      blk = this.i32[this.blockBase + blk * kDictBlockInt32 + kContNextInt32]!;
    }
    return true;
  }

  /** Copies `len` bytes of the item's data stream starting at `from` into dst[at..). */
  private readData(it: number, from: number, len: number, dst: Uint8Array, at: number): void {
    this.copyData(it, from, dst, at, len, false);
  }

  /** Copies src[at..at + len) into the item's data stream (its blocks already linked) from `from`. */
  private writeData(it: number, from: number, src: Uint8Array, at: number, len: number): void {
    this.copyData(it, from, src, at, len, true);
  }

  /** Walks the item's data stream from `from` for `len` bytes, copying to (`intoItem`) or from buf[at..). */
  private copyData(it: number, from: number, buf: Uint8Array, at: number, len: number, intoItem: boolean): void {
    const u8 = this.u8;
    let skip = from;
    let byte = this.blockByte(it) + kItemDataByte;
    let room = kHeadDataBytes;
    let blk = this.i32[this.head(it) + kItemContInt32]!;
    let pos = at;
    let want = len;
    while (want > 0) {
      if (skip >= room) {
        skip -= room;
      } else {
        const n = Math.min(room - skip, want);
        const b = byte + skip;
        if (intoItem) for (let i = 0; i < n; i++) u8[b + i] = buf[pos + i]!;
        else for (let i = 0; i < n; i++) buf[pos + i] = u8[b + i]!;
        pos += n;
        want -= n;
        skip = 0;
        if (want === 0) break;
      }
      byte = this.blockByte(blk) + kContDataByte;
      room = kContDataBytes;
      blk = this.i32[this.blockBase + blk * kDictBlockInt32 + kContNextInt32]!;
    }
  }

  /** Moves an item to the LRU head (most recently used). */
  private touch(it: number): void {
    if (this.i32[this.base + kDictLruHeadInt32] === it) return;
    this.lruUnlink(it);
    this.lruPushHead(it);
  }

  private lruUnlink(it: number): void {
    const i32 = this.i32;
    const h = this.head(it);
    const prev = i32[h + kItemLruPrevInt32]!;
    const next = i32[h + kItemLruNextInt32]!;
    if (prev >= 0) i32[this.head(prev) + kItemLruNextInt32] = next;
    else i32[this.base + kDictLruHeadInt32] = next;
    if (next >= 0) i32[this.head(next) + kItemLruPrevInt32] = prev;
    else i32[this.base + kDictLruTailInt32] = prev;
  }

  private lruPushHead(it: number): void {
    const i32 = this.i32;
    const h = this.head(it);
    const old = i32[this.base + kDictLruHeadInt32]!;
    i32[h + kItemLruPrevInt32] = -1;
    i32[h + kItemLruNextInt32] = old;
    if (old >= 0) i32[this.head(old) + kItemLruPrevInt32] = it;
    else i32[this.base + kDictLruTailInt32] = it;
    i32[this.base + kDictLruHeadInt32] = it;
  }

  /** Unlinks an item from its bucket and the LRU and frees its blocks. */
  private remove(it: number): void {
    const i32 = this.i32;
    const h = this.head(it);
    const bucket = this.bucketBase + (i32[h + kItemHashInt32]! & this.mask);
    let prev = -1;
    for (let c = i32[bucket]!; c >= 0 && c !== it; c = i32[this.head(c) + kItemChainInt32]!) prev = c;
    const next = i32[h + kItemChainInt32]!;
    if (prev < 0) i32[bucket] = next;
    else i32[this.head(prev) + kItemChainInt32] = next;
    this.lruUnlink(it);
    // Free the continuation chain, then the head.
    let c = i32[h + kItemContInt32]!;
    while (c >= 0) {
      const n = i32[this.blockBase + c * kDictBlockInt32 + kContNextInt32]!;
      this.freeBlock(c);
      c = n;
    }
    this.freeBlock(it);
    i32[this.base + kDictItemsInt32]!--;
  }

  private freeBlock(blk: number): void {
    const i32 = this.i32;
    i32[this.blockBase + blk * kDictBlockInt32 + kContNextInt32] = i32[this.base + kDictFreeHeadInt32]!;
    i32[this.base + kDictFreeHeadInt32] = blk;
    i32[this.base + kDictFreeCountInt32]!++;
  }

  private popBlock(): number {
    const i32 = this.i32;
    const blk = i32[this.base + kDictFreeHeadInt32]!;
    i32[this.base + kDictFreeHeadInt32] = i32[this.blockBase + blk * kDictBlockInt32 + kContNextInt32]!;
    i32[this.base + kDictFreeCountInt32]!--;
    return blk;
  }

  /**
   * Removes up to `max` expired items (0: every one), walking from the LRU tail.
   * `tailOnly`: stop at the first live item, as OpenResty's writes do (cheap, and the
   * tail is where old items gather); flush_expired walks the whole list.
   */
  private expireSome(now: number, max: number, tailOnly = true): number {
    let n = 0;
    let it = this.i32[this.base + kDictLruTailInt32]!;
    while (it >= 0 && (max === 0 || n < max)) {
      const prev = this.i32[this.head(it) + kItemLruPrevInt32]!;
      if (this.isExpired(it, now)) {
        this.remove(it);
        n++;
      } else if (tailOnly && max !== 0) {
        break;
      }
      it = prev;
    }
    if (n > 0) this.i32[this.base + kDictExpiredRemovedInt32]! += n;
    return n;
  }

  private write(key: DictKey, value: DictValue | DictBytes | null | undefined, exptime: number, flags: number, mode: Mode, mayEvict: boolean): boolean {
    this.reset();
    if (!this.prepareKey(key)) return false;
    let type: DictValueType | 0;
    let num = 0;
    let strSrc: Uint8Array = valueScratch;
    let strAt = 0;
    let strBytes = 0;
    if (value === undefined || value === null) {
      type = 0;
    } else if (typeof value === 'string') {
      type = DictValueType.String;
      strSrc = valueScratchFor(value.length * 3);
      strBytes = value.length === 0 ? 0 : valueScratch.write(value, 0, 'utf8');
    } else if (value instanceof DictBytes) {
      type = DictValueType.String;
      strSrc = value.bytes;
      strAt = value.at;
      strBytes = value.len;
    } else if (typeof value === 'number') {
      type = DictValueType.Number;
      num = value;
    } else if (typeof value === 'boolean') {
      type = DictValueType.Boolean;
      num = value ? 1 : 0;
    } else {
      this.err = 'bad value';
      return false;
    }
    this.lock();
    try {
      const now = this.clock();
      const it = this.find();
      const live = it >= 0 && !this.isExpired(it, now);
      if (mode === Mode.Add && live) {
        this.err = 'exists';
        return false;
      }
      if (mode === Mode.Replace && !live) {
        this.err = 'not found';
        return false;
      }
      if (it >= 0 && type !== 0 && this.i32[this.head(it) + kItemValueBytesInt32] === strBytes) {
        // A value of the same size takes the item's place (OpenResty reuses it too): no unlinking, no allocating.
        this.overwrite(it, type, num, strSrc, strAt, strBytes, exptime > 0 ? now + exptime * 1000 : 0, flags);
        this.expireSome(now, 2);
        return true;
      }
      if (it >= 0) this.remove(it);
      if (type === 0) return true; // delete (set to nil)
      this.expireSome(now, 2);
      return this.insert(type, num, strSrc, strAt, strBytes, exptime > 0 ? now + exptime * 1000 : 0, flags, mayEvict, now);
    } finally {
      this.unlock();
    }
  }

  /** Gives an item a new value of its old value's size, and makes it the most recently used. */
  private overwrite(it: number, type: DictValueType, num: number, strSrc: Uint8Array, strAt: number, strBytes: number, expires: number, flags: number): void {
    const i32 = this.i32;
    const h = this.head(it);
    i32[h + kItemTypeInt32] = type;
    i32[h + kItemFlagsInt32] = flags | 0;
    this.f64[(h + kItemExpiresF64Int32) >> 1] = expires;
    this.f64[(h + kItemNumberF64Int32) >> 1] = num;
    if (strBytes > 0) this.writeData(it, i32[h + kItemKeyBytesInt32]!, strSrc, strAt, strBytes);
    this.touch(it);
  }

  /** Allocates and links a new item for the prepared key; a string value is strSrc[strAt..strAt + strBytes). */
  private insert(type: DictValueType, num: number, strSrc: Uint8Array, strAt: number, strBytes: number, expires: number, flags: number, mayEvict: boolean, now: number): boolean {
    const i32 = this.i32;
    const total = this.keyLen + strBytes;
    const need = blocksFor(total);
    if (need > this.blocks) {
      this.err = 'no memory';
      return false;
    }
    if (i32[this.base + kDictFreeCountInt32]! < need) this.expireSome(now, 0, false);
    let evicted = 0;
    while (i32[this.base + kDictFreeCountInt32]! < need) {
      const tail = i32[this.base + kDictLruTailInt32]!;
      if (!mayEvict || tail < 0 || evicted >= kMaxForcedEvictions) {
        this.err = 'no memory';
        return false;
      }
      this.remove(tail);
      evicted++;
    }
    if (evicted > 0) {
      this.forcible = true;
      i32[this.base + kDictEvictionsInt32]! += evicted;
    }
    const it = this.popBlock();
    const h = this.head(it);
    i32[h + kItemHashInt32] = this.keyHash;
    i32[h + kItemKeyBytesInt32] = this.keyLen;
    i32[h + kItemTypeInt32] = type;
    i32[h + kItemValueBytesInt32] = strBytes;
    i32[h + kItemFlagsInt32] = flags | 0;
    this.f64[(h + kItemExpiresF64Int32) >> 1] = expires;
    this.f64[(h + kItemNumberF64Int32) >> 1] = num;
    // Data: the key's bytes, then the string's; the blocks first, then the bytes.
    let last = -1;
    i32[h + kItemContInt32] = -1;
    for (let pos = kHeadDataBytes; pos < total; pos += kContDataBytes) {
      const c = this.popBlock();
      i32[this.blockBase + c * kDictBlockInt32 + kContNextInt32] = -1;
      if (last < 0) i32[h + kItemContInt32] = c;
      else i32[this.blockBase + last * kDictBlockInt32 + kContNextInt32] = c;
      last = c;
    }
    this.writeData(it, 0, this.keySrc, this.keyAt, this.keyLen);
    if (strBytes > 0) this.writeData(it, this.keyLen, strSrc, strAt, strBytes);
    const bucket = this.bucketBase + (this.keyHash & this.mask);
    i32[h + kItemChainInt32] = i32[bucket]!;
    i32[bucket] = it;
    this.lruPushHead(it);
    i32[this.base + kDictItemsInt32]!++;
    return true;
  }
}

const enum Mode {
  Set,
  Add,
  Replace,
}
