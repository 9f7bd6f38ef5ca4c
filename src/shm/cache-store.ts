// The shared response store: every worker reads and fills it, the primary reports and
// purges. Protocol (what the stress test in test/unit/cache-store-stress.test.ts checks):
//
// * Every mutation — index slots, record fields, chunk chains, free lists — happens under
//   one writer lock (a compare-exchange word). Writes are misses, revalidations and
//   purges; hits never take it. A critical section copies at most one object, so the
//   lock is held microseconds.
// * Readers take no lock. A record's seqlock word is odd while a writer changes it and
//   moves on every change; a reader reads it, copies what it needs (fields and bytes)
//   and reads it again: a changed or odd word means the copy may be torn and it is
//   thrown away (a miss). Chunks are reused only after the record that held them was
//   freed, which moves that record's word, so no reader can keep a torn body.
// * Workers serve hits straight out of the arena (uWS copies or sends the bytes before
//   end() returns): inside a read section a worker's reader line holds the free epoch
//   it saw on entry, and freed chunks wait in limbo until every reader line is 0 or
//   past the epoch of their free. A reader checks the record's word after it found the
//   body's chunks and before it sends them: a free before that check moved the word, a
//   free after it is held back by the reader's line. Epoch-based reclamation; readers
//   still take no lock and write only their own line.
// * A record being fetched is Filling; the state word is what other requests for the
//   key wait on (Atomics.waitAsync) and is notified when it turns Ready or Free.
import {
  CacheResult,
  RecordFlag,
  RecordState,
  computeCacheLayout,
  kCacheAdmissionRefusedField,
  kCacheBodyBytesField,
  kCacheChunkBytes,
  kCacheChunksField,
  kCacheCounterStripes,
  kCacheDoorkeeperSlots,
  kCacheEpochField,
  kCacheLimboChunksField,
  kCacheLimboEpochField,
  kCacheLimboHeadField,
  kCacheLimboTailField,
  kCacheReaderSlots,
  kCacheReaderSlotsUsedField,
  kCacheReaderStride,
  kCacheReclaimWaitsField,
  kCacheClockHandField,
  kCacheEntriesField,
  kCacheEvictionsField,
  kCacheFreeChunkField,
  kCacheFreeChunksField,
  kCacheFreeRecordField,
  kCacheIdleWordField,
  kCacheIndexSlotsField,
  kCacheLayoutVersion,
  kCacheLockField,
  kCacheLockHolderField,
  kCacheLockKeyField,
  kCachePrimaryHolder,
  kCacheResetsField,
  kCacheMagic,
  kCacheMagicField,
  kCacheMaxObjectField,
  kCacheNoSpaceField,
  kCachePurgedField,
  kCacheRecordsField,
  kCacheResultCount,
  kCacheRoutesField,
  kCacheSketchSamplesField,
  kCacheSketchWidthField,
  kCacheStoredField,
  kCacheTokenField,
  kCacheTooLargeField,
  kCacheVersionField,
  kRecBodyLenField,
  kRecBornAtF64,
  kRecChunksField,
  kRecFillDeadlineF64,
  kRecFirstChunkField,
  kRecFlagsField,
  kRecFreshUntilF64,
  kRecHashAField,
  kRecHashBField,
  kRecHeuristicF64,
  kRecInt32,
  kRecKeyLenField,
  kRecMetaLenField,
  kRecNextFreeField,
  kRecRefField,
  kRecRefreshingField,
  kRecSeqField,
  kRecSieUntilF64,
  kRecStateField,
  kRecWaitersField,
  kRecStatusField,
  kRecSwrUntilF64,
  kRecTokenField,
  kSketchRows,
  type CacheLayout,
} from './cache-layout.js';

/** index probe length; past it a key is not stored (the table is 2× the records, so this is rare) */
const kMaxProbe = 16;
/**
 * An index slot holds 0 (empty), -1 (a tombstone) or, for record r, r + 1 in its low
 * bits, above them as many bits of the key's hash B as fit (a tag), and from bit 27 the
 * slot's distance from the key's home slot (0…15). A probe passes other keys' slots
 * on their tag, without reading their records (a random cache line each, often in the
 * other worker's core), and a delete tells from the distances which slots must stay
 * tombstones. 16 GiB, the largest cache.size, has 2^23 records: 3 bits of tag left.
 */
const kSlotDistShift = 27;
const kSpinsBeforeWait = 64;
/**
 * Sketch samples a thread counts by itself before adding them to the shared count: a
 * contended atomic add per request on a word every worker writes (taking it and the
 * route's result counter away gained ≈ 3 % of a caching route's CPU in a paired A/B);
 * the reset moves by at most this many samples per thread.
 */
const kSampleBatch = 64;
/**
 * Looks a lookup takes while it keeps meeting writes to its key (a thread descheduled
 * mid-copy can meet several). With one key replaced every 20 us (the replace stress
 * test), 2 % of copies tear; four looks still ended in a miss in about one run of ten.
 */
const kLookupAttempts = 6;
/** reservations a thread releases before it takes the lock just to unlink them */
const kReleasedBatch = 32;
/** the hash's two FNV offset bases (see hash()) */
export const kHashSeedA = 0x811c9dc5 | 0;
export const kHashSeedB = 0x2f1b2ad3;
/** fill tokens a thread takes from the shared source at once (see newToken) */
const kTokenBlock = 1024;
/**
 * Chunks a publish frees beyond its need when it evicts (at most 1/64 of the arena), so
 * that the next one usually finds enough in limbo that every reader has moved past
 * (reclaimed at once) instead of waiting for readers of chunks it freed itself.
 */
const kReclaimSlack = 32;
/** how long a write waits for readers to leave chunks it needs before it gives up (ms) */
const kReclaimWaitMs = 50;

/** What publish() did. */
export const enum PublishResult {
  Stored = 0,
  /** larger than cache.maxObjectSize */
  TooLarge = 1,
  /** the arena is full and the key is less frequent than every eviction candidate */
  Refused = 2,
  /** no index slot or record could be had */
  NoSpace = 3,
}

/**
 * What a worker already holds of record versions (see CacheStore.lookupShared): 0 none
 * (copy the metadata), 1 the metadata and a view of the body in the arena, 2 the
 * metadata only (the body's chunks are not one run: copy it).
 */
export interface HeldHeads {
  held(r: number, seq: number): number;
}

/** Freshness and flags of an entry, as written by publish() and read back by read(). */
export interface EntryFields {
  status: number;
  flags: number;
  bornAt: number;
  freshUntil: number;
  swrUntil: number;
  sieUntil: number;
  heuristic: number;
}

export function newEntryFields(): EntryFields {
  return { status: 0, flags: 0, bornAt: 0, freshUntil: 0, swrUntil: 0, sieUntil: 0, heuristic: 0 };
}

export class CacheStore {
  readonly buffer: SharedArrayBuffer;
  readonly layout: CacheLayout;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  /** the whole buffer as bytes: chunk copies use Buffer.copy, which allocates nothing */
  readonly bytes: Buffer;
  private readonly sketch: Uint8Array;
  private readonly recBase: number; // Int32 index
  private readonly indexBase: number;
  private readonly linksBase: number;
  private readonly routeBase: number;
  /** Int32 index of this thread's route counter block (see stripe()) */
  private routeStripe: number;
  private readonly doorBase: number;
  private readonly readersBase: number;
  /** Int32 index of this thread's reader line, -1 when it has none (it copies every hit) */
  private readerAt = -1;
  private readDepth = 0;
  /** what this thread writes into kCacheLockHolderField while it holds the lock */
  private holderId = kCachePrimaryHolder;
  /** what the last seek() found */
  private seekChunk = -1;
  private seekLeft = 0;
  private seekSkip = 0;
  private readonly indexMask: number;
  /** an index slot's value: see kSlotDistShift */
  private readonly slotRecMask: number;
  private readonly slotTagMask: number;
  private readonly sketchMask: number;
  private readonly sketchResetAt: number;
  private readonly reclaimSlack: number;
  /** this thread's samples not yet in the shared count */
  private samples = 0;
  /** this thread's block of fill tokens: next one, and how many are left */
  private tokenNext = 0;
  private tokenLeft = 0;

  /**
   * Whether the last reserve() returned -1 because admission refused the key: every
   * record was in use and the CLOCK's victim was at least as frequent.
   */
  refused = false;
  /** records this thread released and has not unlinked yet: record, token, … (the first releasedLen) */
  private readonly released = new Int32Array(2 * kReleasedBatch);
  private releasedLen = 0;
  /** the hash's two lanes while a key is hashed in pieces (hashStart … hashEnd) */
  laneA = kHashSeedA;
  laneB = kHashSeedB;
  /** key hash of the last hash() call (two independent 32-bit hashes) */
  hA = 0;
  hB = 0;
  /** seqlock word of the record the last find() returned */
  seq = 0;
  /**
   * The last find() passed a record with the key's hashes that it could not return (being
   * written, freed, filling): a replacement may be under way, so lookup() looks again.
   */
  busy = false;
  /** fill token of the record the last reserve() returned */
  token = 0;
  /** fields of the last read() */
  readonly fields: EntryFields = newEntryFields();
  /** meta and body lengths of the last read(), and where in its `out` the meta starts (the body follows it) */
  metaLen = 0;
  bodyLen = 0;
  metaAt = 0;
  /** lookupShared(): offset in `bytes` of the body when its chunks are one run (else -1: copied after the meta) */
  bodyAt = -1;

  private constructor(buffer: SharedArrayBuffer, layout: CacheLayout) {
    this.buffer = buffer;
    this.layout = layout;
    this.i32 = new Int32Array(buffer);
    this.f64 = new Float64Array(buffer);
    this.bytes = Buffer.from(buffer);
    this.sketch = new Uint8Array(buffer, layout.sketchOffset, kSketchRows * layout.sketchWidth);
    this.recBase = layout.recordsOffset >> 2;
    this.indexBase = layout.indexOffset >> 2;
    this.linksBase = layout.chunkLinksOffset >> 2;
    this.routeBase = layout.routeCountersOffset >> 2;
    this.routeStripe = this.routeBase;
    this.doorBase = layout.doorkeeperOffset >> 2;
    this.readersBase = layout.readersOffset >> 2;
    this.indexMask = layout.indexSlots - 1;
    const recBits = 32 - Math.clz32(layout.records);
    if (recBits > kSlotDistShift) throw new Error(`cache index: ${layout.records} records need ${recBits} bits of a slot`);
    this.slotRecMask = (1 << recBits) - 1;
    this.slotTagMask = ((1 << (kSlotDistShift - recBits)) - 1) << recBits;
    // 64-byte blocks: a key's four counters lie in one cache line (see touch()).
    this.sketchMask = (kSketchRows * layout.sketchWidth) / 64 - 1;
    // TinyLFU's reset: halve every counter after a sample ten times the entry capacity,
    // so frequencies describe recent traffic, not all time.
    this.sketchResetAt = 10 * layout.records;
    this.reclaimSlack = Math.min(kReclaimSlack, layout.chunks >> 6);
  }

  /** `sizeBytes`: the arena (cache.size); `maxObjectSize`: largest body stored. */
  static create(sizeBytes: number, maxObjectSize: number): CacheStore {
    const layout = computeCacheLayout(sizeBytes, maxObjectSize);
    const s = new CacheStore(new SharedArrayBuffer(layout.byteLength), layout);
    const h = s.i32;
    h[kCacheMagicField] = kCacheMagic;
    h[kCacheVersionField] = kCacheLayoutVersion;
    h[kCacheChunksField] = layout.chunks;
    h[kCacheRecordsField] = layout.records;
    h[kCacheIndexSlotsField] = layout.indexSlots;
    h[kCacheSketchWidthField] = layout.sketchWidth;
    h[kCacheMaxObjectField] = maxObjectSize;
    h[kCacheRoutesField] = layout.routes;
    s.chainAll();
    h[kCacheFreeChunkField] = 0;
    h[kCacheFreeChunksField] = layout.chunks;
    h[kCacheEpochField] = 1;
    h[kCacheLimboHeadField] = -1;
    h[kCacheLimboTailField] = -1;
    return s;
  }

  /** Wraps a buffer made by create() (in another thread); refuses another layout version. */
  static attach(buffer: SharedArrayBuffer): CacheStore {
    const h = new Int32Array(buffer, 0, 16);
    if (h[kCacheMagicField] !== kCacheMagic || h[kCacheVersionField] !== kCacheLayoutVersion) {
      throw new Error(`cache shared memory layout mismatch: expected version ${kCacheLayoutVersion}`);
    }
    // chunks = floor(size / chunk) so this gives the same layout back
    const layout = computeCacheLayout(h[kCacheChunksField]! * kCacheChunkBytes, h[kCacheMaxObjectField]!);
    if (layout.byteLength !== buffer.byteLength) throw new Error('cache shared memory size mismatch');
    return new CacheStore(buffer, layout);
  }

  get maxObjectSize(): number {
    return this.layout.maxObjectSize;
  }

  counter(field: number): number {
    return Atomics.load(this.i32, field) >>> 0;
  }

  count(field: number, n = 1): void {
    Atomics.add(this.i32, field, n);
  }

  /**
   * Which route counter block this thread adds to: worker slot mod kCacheCounterStripes,
   * so that two workers never write one counter's cache line (taking the contended add
   * away measured ≈ 3 % of a caching route's CPU). Threads sharing a block still add
   * atomically.
   */
  stripe(slot: number): void {
    this.routeStripe = this.routeBase + (Math.max(0, slot) % kCacheCounterStripes) * this.layout.routes * kCacheResultCount;
    if (slot < 0) return;
    this.holderId = slot + 1;
    if (slot >= kCacheReaderSlots) return;
    // The slot's reader line: a worker that ended inside a read section left it set.
    this.readerAt = this.readersBase + slot * kCacheReaderStride;
    Atomics.store(this.i32, this.readerAt, 0);
    for (let used = Atomics.load(this.i32, kCacheReaderSlotsUsedField); used < slot + 1; ) {
      const was = Atomics.compareExchange(this.i32, kCacheReaderSlotsUsedField, used, slot + 1);
      if (was === used) break;
      used = was;
    }
  }

  /**
   * Begins a read section: until leaveRead(), no chunk freed from now on is reused, so
   * views of the arena that lookupShared() found stay the bytes they were. Sections are
   * synchronous and short (a hit's lookup and answer); a thread takes no lock inside one
   * (lookupShared steps out around its wait for a writer), since a writer may be waiting
   * for it to leave.
   */
  enterRead(): void {
    if (this.readDepth++ === 0 && this.readerAt >= 0) Atomics.store(this.i32, this.readerAt, Atomics.load(this.i32, kCacheEpochField));
  }

  leaveRead(): void {
    if (--this.readDepth === 0 && this.readerAt >= 0) Atomics.store(this.i32, this.readerAt, 0);
  }

  /** Clears the reader line of worker slot `slot` (the primary, when that worker has exited). */
  clearReader(slot: number): void {
    if (slot >= 0 && slot < kCacheReaderSlots) Atomics.store(this.i32, this.readersBase + slot * kCacheReaderStride, 0);
  }

  countResult(route: number, result: CacheResult): void {
    if (route < this.layout.routes) Atomics.add(this.i32, this.routeStripe + route * kCacheResultCount + result, 1);
  }

  /** The route's count of `result` over every stripe (each wraps at 2^32; the sum is exact below 2^53). */
  routeResult(route: number, result: CacheResult): number {
    let n = 0;
    const block = this.layout.routes * kCacheResultCount;
    for (let k = 0; k < kCacheCounterStripes; k++) n += Atomics.load(this.i32, this.routeBase + k * block + route * kCacheResultCount + result) >>> 0;
    return n;
  }

  /**
   * The uncacheable mark's doorkeeper: true when a response for the key (hashed hA, hB)
   * was refused lately (while its slot held it), else records this refusal and returns
   * false. So a key is marked from its second refusal on, and a stream of distinct
   * uncacheable keys takes no record (the sketch cannot tell: under such a stream its
   * counters read 2 or more for keys never seen). Plain loads and stores: two threads
   * racing on a slot lose a sighting, which only delays a mark.
   */
  refusedBefore(hA: number, hB: number): boolean {
    const at = this.doorBase + ((hA >>> 17) & (kCacheDoorkeeperSlots - 1));
    if (this.i32[at] === hB) return true;
    this.i32[at] = hB;
    return false;
  }

  /** chunks held by entries × chunk size (chunks in limbo hold none) */
  usedBytes(): number {
    return (this.layout.chunks - Atomics.load(this.i32, kCacheFreeChunksField) - Atomics.load(this.i32, kCacheLimboChunksField)) * kCacheChunkBytes;
  }

  /** Sets hA, hB for `key` (FNV-1a with two offset bases, then a murmur3 finaliser). */
  hash(key: string): void {
    this.hashStart(kHashSeedA, kHashSeedB);
    this.hashAdd(key);
    this.hashEnd(key.length);
  }

  /**
   * hash() of a key given in pieces, so that a part many keys begin with (a worker's
   * Host) is read once: hashStart(seeds or the lanes saved after that part), hashAdd()
   * each piece in order, hashEnd(the key's length) sets hA, hB as hash(key) would. The
   * pieces are read where they are: the key string built from them is not flattened.
   */
  hashStart(a: number, b: number): void {
    this.laneA = a;
    this.laneB = b;
  }

  hashAdd(s: string): void {
    let a = this.laneA;
    let b = this.laneB;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i) & 0xff;
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
    }
    this.laneA = a;
    this.laneB = b;
  }

  hashEnd(length: number): void {
    this.hA = fmix(this.laneA ^ length) | 0;
    this.hB = fmix(this.laneB + 0x9e3779b9) | 1; // odd: the sketch rows step by it
  }

  // ---- the writer lock ------------------------------------------------------------------

  // The word is 0 free, 1 held, 2 held with a thread (maybe) asleep on it, so that an
  // unlock with nobody asleep makes no Atomics.notify: V8's notify takes a process-wide
  // mutex, and a fill takes and gives up the lock two or three times. The holder word
  // beside it names the thread, so that the primary can tell a worker that ended
  // inside a critical section (worker.terminate() stops JavaScript anywhere) and reset
  // the store (recoverFrom).
  lock(): void {
    const i = this.i32;
    let c = Atomics.compareExchange(i, kCacheLockField, 0, 1);
    if (c !== 0) {
      for (let spins = 0; spins < kSpinsBeforeWait && c !== 0; spins++) c = Atomics.compareExchange(i, kCacheLockField, 0, 1);
      if (c !== 0) {
        // From here on the word says 2 while this thread holds it: it cannot tell whether
        // another sleeper is left, so its unlock notifies (a spurious wake costs one retry).
        if (c !== 2) c = Atomics.exchange(i, kCacheLockField, 2);
        while (c !== 0) {
          Atomics.wait(i, kCacheLockField, 2, 1);
          c = Atomics.exchange(i, kCacheLockField, 2);
        }
      }
    }
    // A plain store (each Atomics.store is a builtin call): the word is read only by the
    // primary, after the worker ended, over 200 ms of looks.
    i[kCacheLockHolderField] = this.holderId;
    if (this.releasedLen > 0) this.unlinkReleased();
  }

  unlock(): void {
    const i = this.i32;
    i[kCacheLockHolderField] = 0;
    if (Atomics.exchange(i, kCacheLockField, 0) === 2) Atomics.notify(i, kCacheLockField, 1);
  }

  /**
   * Whether the writer lock is held by worker slot `slot`'s thread, or by a thread that
   * has not said who it is (0: between taking it and writing its name). For the primary,
   * when that worker has exited; see recoverFrom.
   */
  heldBy(slot: number): boolean {
    if (Atomics.load(this.i32, kCacheLockField) === 0) return false;
    const h = Atomics.load(this.i32, kCacheLockHolderField);
    return h === slot + 1 || h === 0;
  }

  /**
   * The primary, after worker slot `slot` ended and heldBy(slot) stayed true long past
   * any critical section (its caller samples it): the thread died holding the lock,
   * with records, lists or the index perhaps half changed, so the store is emptied and
   * rebuilt under the lock it inherits. Every record's word moves (readers throw away
   * what they copied), the index empties, and every chunk goes to limbo (a worker may
   * be sending one). Fill waiters wake and go upstream. Returns the entries dropped.
   */
  recoverFrom(slot: number): number {
    if (!this.heldBy(slot)) return 0;
    const i = this.i32;
    Atomics.store(i, kCacheLockHolderField, this.holderId);
    const dropped = Atomics.load(i, kCacheEntriesField);
    for (let s = 0; s < this.layout.indexSlots; s++) Atomics.store(i, this.indexBase + s, 0);
    for (let r = 0; r < this.layout.records; r++) {
      const rb = this.rec(r);
      const seq = Atomics.load(i, rb + kRecSeqField) | 1;
      Atomics.store(i, rb + kRecSeqField, seq); // odd, whatever it was
      const waiters = i[rb + kRecWaitersField]!;
      i[rb + kRecFirstChunkField] = -1;
      i[rb + kRecChunksField] = 0;
      i[rb + kRecBodyLenField] = 0;
      i[rb + kRecFlagsField] = 0;
      i[rb + kRecWaitersField] = 0;
      i[rb + kRecRefreshingField] = 0;
      Atomics.store(i, rb + kRecStateField, RecordState.Free);
      Atomics.store(i, rb + kRecSeqField, seq + 1);
      if (waiters > 0) Atomics.notify(i, rb + kRecStateField);
    }
    this.chainAll();
    const chunks = this.layout.chunks;
    i[kCacheFreeChunkField] = -1;
    i[kCacheFreeChunksField] = 0;
    i[kCacheLimboHeadField] = 0;
    i[kCacheLimboTailField] = chunks - 1;
    i[kCacheLimboChunksField] = chunks;
    this.bumpEpoch();
    i[kCacheClockHandField] = 0;
    Atomics.store(i, kCacheEntriesField, 0);
    Atomics.store(i, kCacheBodyBytesField, 0);
    Atomics.add(i, kCacheResetsField, 1);
    Atomics.store(i, kCacheLockHolderField, 0);
    Atomics.store(i, kCacheLockField, 0);
    Atomics.notify(i, kCacheLockField);
    return dropped;
  }

  /**
   * find() and read() into `out`: the record, or -1. A publish that has to free the entry
   * it replaces before writing the new one (no room for both), a purge or an eviction can
   * leave a reader with nothing or with a torn copy, and a reader that passed the slot
   * where a replacement went finds only the freed entry: such a reader looks once more
   * after any write in progress, instead of sending the request upstream while the entry
   * is being stored.
   * `seq` is left as of the record returned.
   */
  lookup(key: string, hA: number, hB: number, out: Buffer): number {
    return this.lookupIn(key, hA, hB, out, null);
  }

  /**
   * lookup() for a worker inside a read section: copies only what `heads` does not
   * hold of the version found (see HeldHeads) and, for a version it does not hold,
   * locates the body in the arena (`bodyAt`) when its chunks are one run. A thread
   * without a reader line copies every body, as lookup() does.
   */
  lookupShared(key: string, hA: number, hB: number, out: Buffer, heads: HeldHeads): number {
    return this.lookupIn(key, hA, hB, out, heads);
  }

  private lookupIn(key: string, hA: number, hB: number, out: Buffer, heads: HeldHeads | null): number {
    for (let attempt = 1; ; attempt++) {
      const r = this.find(key, hA, hB);
      if (r >= 0) {
        if (this.readEntry(r, this.seq, out, heads === null ? 0 : heads.held(r, this.seq), heads !== null)) return r;
        // Torn: the entry changed while it was copied, and the write that changed it may
        // be over already.
        if (attempt === kLookupAttempts) return -1;
        this.waitForWriterOutside();
      } else {
        // Not found. Only a publish replacing this very key (with the old entry freed
        // first, for want of room) or a record in flux under its hash (`busy`) can hide an
        // entry from a lookup: then it looks again after that write. Any other write in
        // progress concerns other keys, and waiting for it (a lock and an unlock, a sleep
        // when contended) was a large part of what a miss cost while misses on other
        // workers took the lock. The key word outlives the write, so a replacement that
        // ended between this lookup's probe and its look at the lock is looked past too.
        if (attempt === kLookupAttempts) return -1;
        const busy = this.busy;
        if (!busy && Atomics.load(this.i32, kCacheLockKeyField) !== hA) return -1;
        if (!this.waitForWriterOutside() && !busy && attempt > 1) return -1;
      }
    }
  }

  /** waitForWriter() from inside a read section: the writer may be waiting for this thread's line. */
  private waitForWriterOutside(): boolean {
    if (Atomics.load(this.i32, kCacheLockField) === 0) return false;
    const depth = this.readDepth;
    if (depth > 0 && this.readerAt >= 0) Atomics.store(this.i32, this.readerAt, 0);
    const waited = this.waitForWriter();
    if (depth > 0 && this.readerAt >= 0) Atomics.store(this.i32, this.readerAt, Atomics.load(this.i32, kCacheEpochField));
    return waited;
  }

  /** Waits out a write in progress on any thread; false when none was. */
  private waitForWriter(): boolean {
    if (Atomics.load(this.i32, kCacheLockField) === 0) return false;
    this.lock();
    this.unlock();
    return true;
  }

  // ---- frequency sketch (TinyLFU) ----------------------------------------------------------

  /**
   * Counts one request for the key (hashed hA, hB). The sketch is blocked: the key's
   * block of 64 bytes comes from hA, its counter in row r from 4 bits of hB within the
   * row's 16 bytes (bits 1–16: bit 0 of hB is always set), so a request touches one
   * cache line instead of one per row (as Caffeine's sketch does); each row still has
   * as many counters in all as before.
   */
  touch(hA: number, hB: number): void {
    const s = this.sketch;
    const base = (hA & this.sketchMask) << 6;
    for (let row = 0; row < kSketchRows; row++) {
      const idx = base + (row << 4) + ((hB >>> (1 + (row << 2))) & 15);
      // XXX: a plain increment; two workers may lose one of two concurrent counts. The
      // sketch is an estimate anyway and an atomic here would cost every request a
      // contended cache line.
      if (s[idx]! < 15) s[idx] = s[idx]! + 1;
    }
    if (++this.samples < kSampleBatch) return;
    this.samples = 0;
    if (Atomics.add(this.i32, kCacheSketchSamplesField, kSampleBatch) + kSampleBatch >= this.sketchResetAt) {
      Atomics.store(this.i32, kCacheSketchSamplesField, 0);
      for (let i = 0; i < s.length; i++) s[i] = s[i]! >> 1;
    }
  }

  frequency(hA: number, hB: number): number {
    const s = this.sketch;
    const base = (hA & this.sketchMask) << 6;
    let min = 255;
    for (let row = 0; row < kSketchRows; row++) {
      const v = s[base + (row << 4) + ((hB >>> (1 + (row << 2))) & 15)]!;
      if (v < min) min = v;
    }
    return min;
  }

  // ---- reads (no lock) ------------------------------------------------------------------

  private rec(r: number): number {
    return this.recBase + r * kRecInt32;
  }

  /** A Ready record holding `key` (hashed by hash()), or -1. Sets `seq` for read(). */
  find(key: string, hA: number, hB: number): number {
    const i = this.i32;
    let slot = hA & this.indexMask;
    const tag = this.tagOf(hB);
    const tagMask = this.slotTagMask;
    this.busy = false;
    for (let p = 0; p < kMaxProbe; p++) {
      // A plain load (Atomics.load is a builtin call here, not inlined): a stale or
      // reused slot is caught by the record's own checks below.
      const v = i[this.indexBase + slot]!;
      if (v === 0) return -1;
      if (v > 0 && (v & tagMask) === tag) {
        const r = (v & this.slotRecMask) - 1;
        const rb = this.rec(r);
        // The hashes first, with plain loads: in a full index most probes pass other keys'
        // records, and each Atomics.load is a builtin call. They only filter; the key
        // itself is compared between the two reads of the seqlock word.
        if (i[rb + kRecHashAField] === hA && i[rb + kRecHashBField] === hB) {
          const s = Atomics.load(i, rb + kRecSeqField);
          const state = i[rb + kRecStateField];
          if ((s & 1) === 0 && state === RecordState.Ready && this.keyMatches(r, key) && Atomics.load(i, rb + kRecSeqField) === s) {
            this.seq = s;
            return r;
          }
          if (state !== RecordState.Released) this.busy = true;
        }
      }
      slot = (slot + 1) & this.indexMask;
    }
    return -1;
  }

  private keyMatches(r: number, key: string): boolean {
    const i = this.i32;
    const rb = this.rec(r);
    if (i[rb + kRecKeyLenField] !== key.length) return false;
    const b = this.bytes;
    let chunk = i[rb + kRecFirstChunkField]!;
    let left = i[rb + kRecChunksField]!;
    let k = 0;
    while (k < key.length) {
      if (chunk < 0 || chunk >= this.layout.chunks || left-- <= 0) return false;
      const base = this.layout.arenaOffset + chunk * kCacheChunkBytes;
      const n = Math.min(kCacheChunkBytes, key.length - k);
      for (let j = 0; j < n; j++) if (b[base + j] !== (key.charCodeAt(k + j) & 0xff)) return false;
      k += n;
      chunk = i[this.linksBase + chunk]!;
    }
    return true;
  }

  /**
   * Copies record `r`'s fields (into `fields`, `metaLen`, `bodyLen`) and its meta and
   * body bytes (into `out` from `metaAt`, 0–7) as of seqlock word `seq`. False when the
   * record changed meanwhile (the copy is then garbage) or `out` is too small.
   */
  read(r: number, seq: number, out: Buffer): boolean {
    return this.readEntry(r, seq, out, 0, false);
  }

  /**
   * read(), copying only what the caller does not hold (`held`, as HeldHeads.held
   * answers) and, with `locate`, finding the body in the arena instead of copying it
   * when this thread is in a read section and the body's chunks are one run (`bodyAt`).
   */
  private readEntry(r: number, seq: number, out: Buffer, held: number, locate: boolean): boolean {
    const i = this.i32;
    const f = this.f64;
    const rb = this.rec(r);
    const fb = rb >> 1;
    const d = this.fields;
    d.status = i[rb + kRecStatusField]!;
    d.flags = i[rb + kRecFlagsField]!;
    d.bornAt = f[fb + kRecBornAtF64]!;
    d.freshUntil = f[fb + kRecFreshUntilF64]!;
    d.swrUntil = f[fb + kRecSwrUntilF64]!;
    d.sieUntil = f[fb + kRecSieUntilF64]!;
    d.heuristic = f[fb + kRecHeuristicF64]!;
    const keyLen = i[rb + kRecKeyLenField]!;
    const metaLen = i[rb + kRecMetaLenField]!;
    const bodyLen = i[rb + kRecBodyLenField]!;
    // V8 copies out of a SharedArrayBuffer word by word only when source and target are
    // equally aligned, byte by byte (about 7× slower, measured) otherwise: so the copy
    // lands at the offset that matches the source's alignment.
    const at = (this.layout.arenaOffset + keyLen - out.byteOffset) & 7;
    let bodyAt = -1;
    if (held === 0) {
      if (locate && this.readerAt >= 0 && this.readDepth > 0) bodyAt = this.bodyRun(r, keyLen + metaLen, bodyLen);
      // meta and, unless found in place, body in one copy (each Buffer.copy out of the
      // shared buffer costs about as much as copying a chunk)
      const n = bodyAt < 0 ? metaLen + bodyLen : metaLen;
      if (at + n > out.length || !this.copyOut(r, keyLen, n, out, at)) return false;
    } else if (held === 2) {
      // at + metaLen keeps the arena's alignment: both offsets moved by metaLen
      if (at + metaLen + bodyLen > out.length || !this.copyOut(r, keyLen + metaLen, bodyLen, out, at + metaLen)) return false;
    }
    // After the chunks were found, before they are sent: a free from here on leaves
    // them in limbo while this thread's line holds an epoch not past it.
    if (Atomics.load(i, rb + kRecSeqField) !== seq || i[rb + kRecStateField] !== RecordState.Ready) return false;
    this.metaLen = metaLen;
    this.bodyLen = bodyLen;
    this.metaAt = at;
    this.bodyAt = bodyAt;
    // CLOCK: referenced since the hand last passed. Written only when clear, so a hot
    // entry's cache line is not dirtied by every hit.
    if (i[rb + kRecRefField] === 0) i[rb + kRecRefField] = 1;
    return true;
  }

  /**
   * Walks record `r`'s chain to its data offset `from`: the chunk holding it, the chunks
   * left from that one on, and the offset in it (seekChunk, seekLeft, seekSkip). False
   * on a chain that does not hold together (torn).
   */
  private seek(r: number, from: number): boolean {
    const i = this.i32;
    const rb = this.rec(r);
    let chunk = i[rb + kRecFirstChunkField]!;
    let left = i[rb + kRecChunksField]!;
    const total = this.layout.chunks;
    let skip = from;
    while (skip >= kCacheChunkBytes) {
      if (chunk < 0 || chunk >= total || left-- <= 0) return false;
      chunk = i[this.linksBase + chunk]!;
      skip -= kCacheChunkBytes;
    }
    this.seekChunk = chunk;
    this.seekLeft = left;
    this.seekSkip = skip;
    return true;
  }

  /** Offset in `bytes` of record `r`'s data [from, from + n) when it lies in one run of chunks, else -1. */
  private bodyRun(r: number, from: number, n: number): number {
    if (n === 0) return this.layout.arenaOffset;
    const i = this.i32;
    const total = this.layout.chunks;
    if (!this.seek(r, from)) return -1;
    let chunk = this.seekChunk;
    const left = this.seekLeft;
    const skip = this.seekSkip;
    if (chunk < 0 || chunk >= total || left <= 0) return -1;
    const start = this.layout.arenaOffset + chunk * kCacheChunkBytes + skip;
    // chunks past the first that the range reaches into
    let more = Math.ceil((skip + n) / kCacheChunkBytes) - 1;
    if (more >= left) return -1;
    while (more-- > 0) {
      const next = i[this.linksBase + chunk]!;
      if (next !== chunk + 1 || next >= total) return -1;
      chunk = next;
    }
    return start;
  }

  /** Copies `n` bytes of record `r`'s data from offset `from` into `out` at `at`; false on a chain that does not hold together (torn). */
  private copyOut(r: number, from: number, n: number, out: Buffer, at = 0): boolean {
    const i = this.i32;
    const total = this.layout.chunks;
    if (!this.seek(r, from)) return false;
    let chunk = this.seekChunk;
    let left = this.seekLeft;
    let skip = this.seekSkip;
    let pos = 0;
    while (pos < n) {
      if (chunk < 0 || chunk >= total || left-- <= 0) return false;
      const from = this.layout.arenaOffset + chunk * kCacheChunkBytes + skip;
      let take = Math.min(kCacheChunkBytes - skip, n - pos);
      skip = 0;
      let next = i[this.linksBase + chunk]!;
      // Chained chunks that lie next to each other in the arena (the usual case: the free
      // list hands out runs) go in one copy: each Buffer.copy call out of the shared
      // buffer costs about as much as copying a whole chunk.
      while (pos + take < n && next === chunk + 1 && next < total) {
        if (left-- <= 0) return false;
        chunk = next;
        take += Math.min(kCacheChunkBytes, n - pos - take);
        next = i[this.linksBase + chunk]!;
      }
      this.bytes.copy(out, at + pos, from, from + take);
      pos += take;
      chunk = next;
    }
    return true;
  }

  /** Index of the state word of record `r` in `i32` (what fill waiters wait on). */
  stateIndex(r: number): number {
    return this.rec(r) + kRecStateField;
  }

  /** The record of a fill in progress for the key's hash, or -1 (no lock; for waiters). */
  recordState(r: number): number {
    return Atomics.load(this.i32, this.rec(r) + kRecStateField);
  }

  /** Record `r`'s seqlock word: it moves on every change of the record (no lock). */
  recordSeq(r: number): number {
    return Atomics.load(this.i32, this.rec(r) + kRecSeqField);
  }

  /** Takes the background-refresh permit of a Ready record (stale-while-revalidate): true for exactly one caller until released. */
  takeRefresh(r: number, seq: number): boolean {
    const rb = this.rec(r);
    if (Atomics.load(this.i32, rb + kRecSeqField) !== seq) return false;
    return Atomics.compareExchange(this.i32, rb + kRecRefreshingField, 0, 1) === 0;
  }

  // ---- writes (under the lock) -----------------------------------------------------------

  /**
   * Reserves the right to fetch `key`: returns a Filling record owned by the caller
   * (token in `token`); -2 - r when another request is fetching it (wait on record r's
   * state word); -1 when nothing could be reserved (go upstream without coalescing;
   * `refused` says whether admission was why). `freq` is the key's sketch frequency for
   * admission (-1: no admission check).
   */
  reserve(hA: number, hB: number, now: number, lockTimeoutMs: number, freq: number): number {
    const i = this.i32;
    this.refused = false;
    this.lock();
    try {
      let slot = hA & this.indexMask;
      const tag = this.tagOf(hB);
      for (let p = 0; p < kMaxProbe; p++) {
        const v = i[this.indexBase + slot]!;
        if (v === 0) break;
        if (v > 0 && (v & this.slotTagMask) === tag) {
          const r = (v & this.slotRecMask) - 1;
          const rb = this.rec(r);
          if (i[rb + kRecStateField] === RecordState.Filling && i[rb + kRecHashAField] === hA && i[rb + kRecHashBField] === hB) {
            if (this.f64[(rb >> 1) + kRecFillDeadlineF64]! > now) {
              i[rb + kRecWaitersField] = i[rb + kRecWaitersField]! + 1;
              return -2 - r;
            }
            // Its filler is gone or too slow: take the fill over (its publish is refused by the token).
            this.token = this.newToken();
            this.writeBegin(rb);
            i[rb + kRecTokenField] = this.token;
            this.f64[(rb >> 1) + kRecFillDeadlineF64] = now + lockTimeoutMs;
            this.writeEnd(rb);
            return r;
          }
        }
        slot = (slot + 1) & this.indexMask;
      }
      const r = this.allocRecord(freq);
      if (r < 0) return -1;
      const rb = this.rec(r);
      this.writeBegin(rb);
      i[rb + kRecHashAField] = hA;
      i[rb + kRecHashBField] = hB;
      i[rb + kRecChunksField] = 0;
      i[rb + kRecFirstChunkField] = -1;
      i[rb + kRecKeyLenField] = 0;
      i[rb + kRecRefField] = 0;
      i[rb + kRecRefreshingField] = 0;
      i[rb + kRecWaitersField] = 0;
      this.token = this.newToken();
      i[rb + kRecTokenField] = this.token;
      this.f64[(rb >> 1) + kRecFillDeadlineF64] = now + lockTimeoutMs;
      Atomics.store(i, rb + kRecStateField, RecordState.Filling);
      this.writeEnd(rb);
      if (!this.indexInsert(r, hA, hB)) {
        this.freeRecord(r);
        this.count(kCacheNoSpaceField);
        return -1;
      }
      return r;
    } finally {
      this.unlock();
    }
  }

  /**
   * A fill token (or Vary marker id) no thread has had: taken from the shared source a
   * block at a time, since an atomic add per reservation on a word every worker writes
   * is a contended cache line per miss. Tokens of different threads interleave; only
   * their uniqueness matters. They wrap after 2^31, far beyond any fill's lifetime.
   */
  newToken(): number {
    if (this.tokenLeft === 0) {
      this.tokenNext = Atomics.add(this.i32, kCacheTokenField, kTokenBlock) + 1;
      this.tokenLeft = kTokenBlock;
    }
    this.tokenLeft--;
    return this.tokenNext++;
  }

  /**
   * Gives up a reservation (the response is not stored): waiters wake at once. Without
   * the lock: the record turns Released, which lookups and reservations pass over, and
   * is unlinked (index slot, free list) the next time this thread holds the lock — on a
   * stream of misses for distinct keys, the reservation of the next one. A miss whose
   * response could not be stored took the lock twice, and each time its cache line came
   * from the other worker's core. A takeover of the reservation (its deadline passed)
   * that races this release loses its reservation: its publish then stores without one.
   */
  release(r: number, token: number): void {
    if (r < 0) return;
    const i = this.i32;
    const rb = this.rec(r);
    if (i[rb + kRecTokenField] !== token || Atomics.compareExchange(i, rb + kRecStateField, RecordState.Filling, RecordState.Released) !== RecordState.Filling) return;
    if (i[rb + kRecWaitersField]! > 0) Atomics.notify(i, rb + kRecStateField);
    const q = this.released;
    q[this.releasedLen++] = r;
    q[this.releasedLen++] = token;
    if (this.releasedLen >= 2 * kReleasedBatch) {
      // taking the lock unlinks them (see lock())
      this.lock();
      this.unlock();
    }
  }

  /** Frees the records this thread released (under the lock): those still as it left them. */
  private unlinkReleased(): void {
    const i = this.i32;
    const q = this.released;
    for (let k = 0; k < this.releasedLen; k += 2) {
      const rb = this.rec(q[k]!);
      if (i[rb + kRecStateField] === RecordState.Released && i[rb + kRecTokenField] === q[k + 1]) this.freeRecord(q[k]!);
    }
    this.releasedLen = 0;
  }

  /**
   * Stores an entry under `key` (hashed: hA, hB), replacing any entry with that key.
   * `r`/`token`: the caller's reservation (-1 for none); it is used when it is for the
   * same key and released otherwise. Body: `body` chunks totalling `bodyLen` bytes.
   */
  publish(r: number, token: number, key: string, hA: number, hB: number, meta: string, body: readonly Buffer[] | null, bodyLen: number, fields: EntryFields, freq: number): PublishResult {
    const i = this.i32;
    this.lock();
    // Before any change: a lookup that misses this key while the lock is held waits for it.
    Atomics.store(i, kCacheLockKeyField, hA);
    try {
      // What earlier writes freed is, by now, usually past every reader.
      this.reclaim();
      if (r >= 0) {
        const rb = this.rec(r);
        if (i[rb + kRecStateField] !== RecordState.Filling || i[rb + kRecTokenField] !== token) r = -1;
        else if (i[rb + kRecHashAField] !== hA || i[rb + kRecHashBField] !== hB) {
          this.freeRecord(r);
          r = -1;
        } else if (freq >= 0) {
          // Requests waiting for this fill are demand the sketch cannot show (its counters
          // stop at 15, and a burst is one key asked for at once): the key competes with
          // the victim as at least that often requested. Refused, the waiters would all
          // go upstream.
          const demand = i[rb + kRecWaitersField]! + 1;
          if (demand > freq) freq = demand;
        }
      }
      if (bodyLen > this.layout.maxObjectSize) {
        if (r >= 0) this.freeRecord(r);
        this.count(kCacheTooLargeField);
        return PublishResult.TooLarge;
      }
      // The entry it replaces goes after the new one is Ready, so that a reader on another
      // thread finds one or the other at every moment (a reader that found neither would
      // send its request upstream). Only when the arena or the records cannot hold both
      // does it go first, and its space is reused.
      const total = key.length + meta.length + bodyLen;
      const need = Math.ceil(total / kCacheChunkBytes);
      let old = this.findLocked(key, hA, hB);
      let swapInto = -1;
      if (old >= 0 && (i[kCacheFreeChunksField]! < need || (r < 0 && i[kCacheFreeRecordField]! < 0))) {
        this.freeRecord(old);
        old = -1;
      }
      if (r < 0) {
        r = this.allocRecord(freq);
        if (r < 0) return PublishResult.Refused;
        const rb = this.rec(r);
        this.writeBegin(rb);
        i[rb + kRecHashAField] = hA;
        i[rb + kRecHashBField] = hB;
        i[rb + kRecChunksField] = 0;
        i[rb + kRecFirstChunkField] = -1;
        i[rb + kRecTokenField] = 0;
        i[rb + kRecRefreshingField] = 0;
        Atomics.store(i, rb + kRecStateField, RecordState.Filling);
        this.writeEnd(rb);
        // Replacing: it takes the old entry's index slot once Ready (below), so that no
        // reader passes the slot it went into before it was there.
        if (old >= 0) swapInto = this.slotOf(old, hA);
        if (swapInto < 0 && !this.indexInsert(r, hA, hB)) {
          this.freeRecord(r);
          this.count(kCacheNoSpaceField);
          return PublishResult.NoSpace;
        }
      }
      // (No eviction below while `old` stands: it was freed above if space was short.)
      while (i[kCacheFreeChunksField]! < need) {
        if (this.reclaim()) continue;
        const held = i[kCacheFreeChunksField]! + i[kCacheLimboChunksField]!;
        // Evicting for the slack too; a victim kept for the slack is no refusal of this entry.
        if (held < need + this.reclaimSlack && this.evictOne(freq, r, held < need)) continue;
        if (held < need) {
          this.freeRecord(r);
          return PublishResult.Refused;
        }
        if (!this.awaitReaders()) {
          this.freeRecord(r);
          this.count(kCacheNoSpaceField);
          return PublishResult.NoSpace;
        }
      }
      const rb = this.rec(r);
      this.writeBegin(rb);
      // chain `need` chunks off the free list
      let first = -1;
      let prev = -1;
      for (let n = 0; n < need; n++) {
        const c = i[kCacheFreeChunkField]!;
        i[kCacheFreeChunkField] = i[this.linksBase + c]!;
        if (prev < 0) first = c;
        else i[this.linksBase + prev] = c;
        prev = c;
      }
      if (prev >= 0) i[this.linksBase + prev] = -1;
      i[kCacheFreeChunksField] = i[kCacheFreeChunksField]! - need;
      i[rb + kRecFirstChunkField] = first;
      i[rb + kRecChunksField] = need;
      const w = new ChunkWriter(this, first);
      w.string(key);
      w.string(meta);
      if (body !== null) for (const b of body) w.bytes(b);
      i[rb + kRecKeyLenField] = key.length;
      i[rb + kRecMetaLenField] = meta.length;
      i[rb + kRecBodyLenField] = bodyLen;
      this.writeFields(rb, fields);
      i[rb + kRecRefField] = 1;
      i[rb + kRecRefreshingField] = 0;
      Atomics.store(i, rb + kRecStateField, RecordState.Ready);
      this.writeEnd(rb);
      Atomics.add(i, kCacheEntriesField, 1);
      Atomics.add(i, kCacheBodyBytesField, bodyLen);
      Atomics.add(i, kCacheStoredField, 1);
      this.wakeWaiters(rb);
      if (swapInto >= 0) Atomics.store(i, swapInto, (i[swapInto]! & ~this.slotRecMask) | (r + 1)); // same key: same tag and distance
      // When swapped, its slot holds the new entry already: freeing it removes nothing from the index.
      if (old >= 0) this.freeRecord(old);
      return PublishResult.Stored;
    } finally {
      this.unlock();
    }
  }

  /** Rewrites a Ready entry's freshness (a 304 revalidated it); false if it changed since `seq`. */
  refresh(r: number, seq: number, fields: EntryFields): boolean {
    this.lock();
    try {
      const rb = this.rec(r);
      if (Atomics.load(this.i32, rb + kRecSeqField) !== seq || this.i32[rb + kRecStateField] !== RecordState.Ready) return false;
      this.writeBegin(rb);
      this.writeFields(rb, fields);
      this.i32[rb + kRecRefreshingField] = 0;
      this.writeEnd(rb);
      return true;
    } finally {
      this.unlock();
    }
  }

  /** Lets another request refresh the entry (the background refresh ended without storing). */
  endRefresh(r: number): void {
    Atomics.store(this.i32, this.rec(r) + kRecRefreshingField, 0);
  }

  /** Removes the entry stored under `key`; true if there was one. */
  remove(key: string, hA: number, hB: number): boolean {
    this.lock();
    try {
      const r = this.findLocked(key, hA, hB);
      if (r < 0) return false;
      this.freeRecord(r);
      return true;
    } finally {
      this.unlock();
    }
  }

  /**
   * Removes every Ready entry for which `match(key, meta)` holds: scanned without the
   * lock (seqlock copies), each removal under it and only if the entry did not change
   * since it was read. For purges from the primary; O(records).
   */
  removeWhere(match: (key: string, meta: string) => boolean): number {
    const i = this.i32;
    const scratch = Buffer.allocUnsafe(64 * 1024);
    let removed = 0;
    for (let r = 0; r < this.layout.records; r++) {
      const rb = this.rec(r);
      const s = Atomics.load(i, rb + kRecSeqField);
      if ((s & 1) !== 0 || i[rb + kRecStateField] !== RecordState.Ready) continue;
      const keyLen = i[rb + kRecKeyLenField]!;
      const metaLen = i[rb + kRecMetaLenField]!;
      if (keyLen + metaLen > scratch.length || !this.copyOut(r, 0, keyLen + metaLen, scratch)) continue;
      if (Atomics.load(i, rb + kRecSeqField) !== s) continue;
      if (!match(scratch.toString('latin1', 0, keyLen), scratch.toString('latin1', keyLen, keyLen + metaLen))) continue;
      this.lock();
      try {
        if (Atomics.load(i, rb + kRecSeqField) === s && i[rb + kRecStateField] === RecordState.Ready) {
          this.freeRecord(r);
          removed++;
        }
      } finally {
        this.unlock();
      }
    }
    if (removed > 0) this.count(kCachePurgedField, removed);
    return removed;
  }

  /** Every Ready entry's key (for tests and the admin API's listing); no lock. */
  keys(limit: number): string[] {
    const out: string[] = [];
    this.removeWhere((key) => {
      if (out.length < limit) out.push(key);
      return false;
    });
    return out;
  }

  /**
   * Structural invariants, for tests (under the lock): every chunk is either free or in
   * exactly one Ready record's chain, every Ready record is reachable through the index,
   * and the counters agree. Returns the problems found.
   */
  check(): string[] {
    const i = this.i32;
    const problems: string[] = [];
    this.lock();
    try {
      const owner = new Int32Array(this.layout.chunks).fill(-2);
      let free = 0;
      for (let c = i[kCacheFreeChunkField]!; c >= 0; c = i[this.linksBase + c]!) {
        if (owner[c] !== -2) {
          problems.push(`free list loops at chunk ${c}`);
          break;
        }
        owner[c] = -1;
        free++;
      }
      if (free !== i[kCacheFreeChunksField]) problems.push(`free chunks ${free} != counter ${i[kCacheFreeChunksField]}`);
      let limbo = 0;
      let tail = -1;
      for (let c = i[kCacheLimboHeadField]!; c >= 0; c = i[this.linksBase + c]!) {
        if (owner[c] !== -2) {
          problems.push(`limbo list loops or meets the free list at chunk ${c}`);
          break;
        }
        owner[c] = -1;
        tail = c;
        limbo++;
      }
      if (limbo !== i[kCacheLimboChunksField]) problems.push(`limbo chunks ${limbo} != counter ${i[kCacheLimboChunksField]}`);
      if (tail !== i[kCacheLimboTailField]) problems.push(`limbo tail ${i[kCacheLimboTailField]} != last chunk ${tail}`);
      let ready = 0;
      let body = 0;
      for (let r = 0; r < this.layout.records; r++) {
        const rb = this.rec(r);
        if ((i[rb + kRecSeqField]! & 1) !== 0) problems.push(`record ${r} left odd`);
        const st = i[rb + kRecStateField];
        if (st === RecordState.Free) continue;
        if (st === RecordState.Ready) {
          ready++;
          body += i[rb + kRecBodyLenField]!;
        }
        let c = i[rb + kRecFirstChunkField]!;
        for (let k = 0; k < i[rb + kRecChunksField]!; k++) {
          if (c < 0 || owner[c] !== -2) {
            problems.push(`record ${r}: chunk ${c} shared or missing`);
            break;
          }
          owner[c] = r;
          c = i[this.linksBase + c]!;
        }
        let found = false;
        let slot = i[rb + kRecHashAField]! & this.indexMask;
        for (let p = 0; p < kMaxProbe && !found; p++) {
          const v = i[this.indexBase + slot]!;
          if (v === 0) break;
          if (v > 0 && (v & this.slotRecMask) === r + 1) {
            found = true;
            if (v >>> kSlotDistShift !== p || (v & this.slotTagMask) !== this.tagOf(i[rb + kRecHashBField]!)) problems.push(`record ${r}: index slot ${slot} says distance ${v >>> kSlotDistShift}, tag ${v & this.slotTagMask}`);
          }
          slot = (slot + 1) & this.indexMask;
        }
        if (!found) problems.push(`record ${r} not reachable through the index`);
      }
      for (let c = 0; c < this.layout.chunks; c++) if (owner[c] === -2) problems.push(`chunk ${c} leaked`);
      if (ready !== i[kCacheEntriesField]) problems.push(`ready records ${ready} != entries counter ${i[kCacheEntriesField]}`);
      if (body !== i[kCacheBodyBytesField]) problems.push(`body bytes ${body} != counter ${i[kCacheBodyBytesField]}`);
    } finally {
      this.unlock();
    }
    return problems.slice(0, 10);
  }

  private writeBegin(rb: number): void {
    Atomics.add(this.i32, rb + kRecSeqField, 1); // odd: readers of this record retry or miss
  }

  private writeEnd(rb: number): void {
    Atomics.add(this.i32, rb + kRecSeqField, 1);
  }

  private writeFields(rb: number, d: EntryFields): void {
    const i = this.i32;
    const f = this.f64;
    const fb = rb >> 1;
    i[rb + kRecStatusField] = d.status;
    i[rb + kRecFlagsField] = d.flags;
    f[fb + kRecBornAtF64] = d.bornAt;
    f[fb + kRecFreshUntilF64] = d.freshUntil;
    f[fb + kRecSwrUntilF64] = d.swrUntil;
    f[fb + kRecSieUntilF64] = d.sieUntil;
    f[fb + kRecHeuristicF64] = d.heuristic;
  }

  private findLocked(key: string, hA: number, hB: number): number {
    const i = this.i32;
    let slot = hA & this.indexMask;
    for (let p = 0; p < kMaxProbe; p++) {
      const v = i[this.indexBase + slot]!;
      if (v === 0) return -1;
      if (v > 0 && (v & this.slotTagMask) === this.tagOf(hB)) {
        const r = (v & this.slotRecMask) - 1;
        const rb = this.rec(r);
        if (i[rb + kRecStateField] === RecordState.Ready && i[rb + kRecHashAField] === hA && i[rb + kRecHashBField] === hB && this.keyMatches(r, key)) return r;
      }
      slot = (slot + 1) & this.indexMask;
    }
    return -1;
  }

  /** The tag bits of an index slot for a key with hash B `hB` (see kSlotDistShift). */
  private tagOf(hB: number): number {
    return (hB >>> 1) & this.slotTagMask;
  }

  private indexInsert(r: number, hA: number, hB: number): boolean {
    const i = this.i32;
    let slot = hA & this.indexMask;
    for (let p = 0; p < kMaxProbe; p++) {
      const at = this.indexBase + slot;
      if (i[at]! <= 0) {
        Atomics.store(i, at, (p << kSlotDistShift) | this.tagOf(hB) | (r + 1));
        return true;
      }
      slot = (slot + 1) & this.indexMask;
    }
    return false;
  }

  /** Int32 index of the index slot holding record `r` (hash hA), or -1. */
  private slotOf(r: number, hA: number): number {
    let slot = hA & this.indexMask;
    for (let p = 0; p < kMaxProbe; p++) {
      const at = this.indexBase + slot;
      const v = this.i32[at]!;
      if (v === 0) return -1;
      if (v > 0 && (v & this.slotRecMask) === r + 1) return at;
      slot = (slot + 1) & this.indexMask;
    }
    return -1;
  }

  private indexDelete(r: number, hA: number): void {
    const at = this.slotOf(r, hA);
    if (at < 0) return;
    // A tombstone keeps the keys stored past it in their probe sequence reachable. A slot
    // no such key passes can be empty instead, and so can the tombstones before it that
    // no key passes: otherwise a stream of reservations for distinct keys turns every
    // empty slot into a tombstone (a replay of 2 million left none empty, and every miss
    // probed the full kMaxProbe). A probe that now stops early at such a slot would have
    // found nothing past it; inserts, the only other change, run under the same lock.
    const i = this.i32;
    const base = this.indexBase;
    const mask = this.indexMask;
    let slot = at - base;
    if (this.slotNeeded(slot)) {
      Atomics.store(i, at, -1);
      return;
    }
    Atomics.store(i, at, 0);
    for (let n = 1; n < kMaxProbe; n++) {
      slot = (slot - 1) & mask;
      if (i[base + slot] !== -1 || this.slotNeeded(slot)) break;
      Atomics.store(i, base + slot, 0);
    }
  }

  /** Whether a key stored within kMaxProbe slots after index slot `slot` passes it on its probe from its home slot. */
  private slotNeeded(slot: number): boolean {
    const i = this.i32;
    const mask = this.indexMask;
    for (let d = 1; d < kMaxProbe; d++) {
      const v = i[this.indexBase + ((slot + d) & mask)]!;
      if (v === 0) return false;
      if (v < 0) continue;
      // this key's slot is `v >>> kSlotDistShift` from its home: past `slot` when d or more
      if (v >>> kSlotDistShift >= d) return true;
    }
    return false;
  }

  private allocRecord(freq: number): number {
    const i = this.i32;
    let r = i[kCacheFreeRecordField]!;
    if (r < 0) {
      if (!this.evictOne(freq, -1)) return -1;
      r = i[kCacheFreeRecordField]!;
      if (r < 0) return -1;
    }
    i[kCacheFreeRecordField] = i[this.rec(r) + kRecNextFreeField]!;
    return r;
  }

  /** Frees a record of any state: out of the index, chunks back, waiters woken. */
  private freeRecord(r: number): void {
    const i = this.i32;
    const rb = this.rec(r);
    const wasReady = i[rb + kRecStateField] === RecordState.Ready;
    this.writeBegin(rb);
    this.indexDelete(r, i[rb + kRecHashAField]!);
    let c = i[rb + kRecFirstChunkField]!;
    let n = i[rb + kRecChunksField]!;
    if (n > 0) {
      // Into limbo, not the free list: a reader may be sending them (see reclaim()).
      let last = c;
      for (let k = 1; k < n; k++) last = i[this.linksBase + last]!;
      i[this.linksBase + last] = i[kCacheLimboHeadField]!;
      if (i[kCacheLimboHeadField]! < 0) i[kCacheLimboTailField] = last;
      i[kCacheLimboHeadField] = c;
      i[kCacheLimboChunksField] = i[kCacheLimboChunksField]! + n;
      // The record's word moved above (writeBegin) before the epoch does: a reader that
      // saw the new epoch sees the freed record.
      this.bumpEpoch();
    }
    c = -1;
    n = 0;
    i[rb + kRecFirstChunkField] = c;
    i[rb + kRecChunksField] = n;
    if (wasReady) {
      Atomics.sub(i, kCacheEntriesField, 1);
      Atomics.sub(i, kCacheBodyBytesField, i[rb + kRecBodyLenField]!);
    }
    i[rb + kRecBodyLenField] = 0;
    i[rb + kRecFlagsField] = 0;
    Atomics.store(i, rb + kRecStateField, RecordState.Free);
    this.writeEnd(rb);
    i[rb + kRecNextFreeField] = i[kCacheFreeRecordField]!;
    i[kCacheFreeRecordField] = r;
    this.wakeWaiters(rb);
  }

  /**
   * Every record on the free record list (0 → 1 → …) and every chunk in one chain
   * (0 → 1 → …), which the caller makes the free list or limbo: a new store, or one
   * rebuilt by recoverFrom.
   */
  private chainAll(): void {
    const i = this.i32;
    const { chunks, records } = this.layout;
    for (let c = 0; c < chunks; c++) i[this.linksBase + c] = c + 1 < chunks ? c + 1 : -1;
    for (let r = 0; r < records; r++) i[this.rec(r) + kRecNextFreeField] = r + 1 < records ? r + 1 : -1;
    i[kCacheFreeRecordField] = 0;
  }

  /** Tags what is in limbo with the current free epoch and moves the epoch on (never to 0). */
  private bumpEpoch(): void {
    const i = this.i32;
    const e = i[kCacheEpochField]!;
    i[kCacheLimboEpochField] = e;
    Atomics.store(i, kCacheEpochField, e === -1 ? 1 : (e + 1) | 0);
  }

  /**
   * Moves the chunks in limbo to the free list when no reader can still be sending any
   * of them: every reader line is 0 (outside a section) or holds an epoch past the
   * latest free's (it entered after that free, and so saw the freed records' words
   * move). False when there was nothing to move or a reader holds it back.
   */
  private reclaim(): boolean {
    const i = this.i32;
    if (i[kCacheLimboHeadField]! < 0) return false;
    const freedIn = i[kCacheLimboEpochField]!;
    const used = Math.min(Atomics.load(i, kCacheReaderSlotsUsedField), kCacheReaderSlots);
    for (let k = 0; k < used; k++) {
      const e = Atomics.load(i, this.readersBase + k * kCacheReaderStride);
      // Wrap-safe "e is not past freedIn" (epochs wrap at 2^32).
      if (e !== 0 && ((e - freedIn) | 0) <= 0) return false;
    }
    i[this.linksBase + i[kCacheLimboTailField]!] = i[kCacheFreeChunkField]!;
    i[kCacheFreeChunkField] = i[kCacheLimboHeadField]!;
    i[kCacheFreeChunksField] = i[kCacheFreeChunksField]! + i[kCacheLimboChunksField]!;
    i[kCacheLimboHeadField] = -1;
    i[kCacheLimboTailField] = -1;
    i[kCacheLimboChunksField] = 0;
    return true;
  }

  /**
   * Waits (holding the writer lock) until reclaim() succeeds: the readers it waits for
   * are inside a hit's synchronous answer, microseconds unless descheduled. False after
   * kReclaimWaitMs (a reader line left set by a worker that died mid-section, until the
   * primary clears it).
   */
  private awaitReaders(): boolean {
    // Inside its own section this thread would wait for itself (no write runs in one).
    if (this.readDepth > 0 && this.readerAt >= 0) return false;
    Atomics.add(this.i32, kCacheReclaimWaitsField, 1);
    const deadline = Date.now() + kReclaimWaitMs;
    for (let spins = 0; ; spins++) {
      if (this.reclaim()) return true;
      if (spins >= 256) {
        if (Date.now() >= deadline) return false;
        // Nothing notifies this word: a timed sleep of 50 us.
        Atomics.wait(this.i32, kCacheIdleWordField, 0, 0.05);
      }
    }
  }

  /**
   * Wakes the requests waiting for a fill of record `rb` (it turned Ready or Free). Only
   * when reserve() told some to wait: a waiter is counted under the lock before it
   * sleeps, and most fills have none (a notify takes a process-wide mutex in V8). A
   * waiter whose record was freed and reserved again (count reset) in the moment between
   * reserve() and its Atomics.waitAsync sleeps on the new fill unwoken, at most
   * cache.lockTimeout, then goes upstream.
   */
  private wakeWaiters(rb: number): void {
    if (this.i32[rb + kRecWaitersField]! > 0) Atomics.notify(this.i32, rb + kRecStateField);
  }

  /**
   * CLOCK: the first Ready record not referenced since the hand last passed is the
   * victim. With admission (`freq` ≥ 0), a victim at least as frequent as the newcomer
   * stays and the newcomer is refused (TinyLFU), so a scan of one-time keys cannot push
   * out the hot set. False when nothing was evicted.
   */
  private evictOne(freq: number, except: number, countRefusal = true): boolean {
    const i = this.i32;
    const records = this.layout.records;
    for (let steps = 0; steps < 2 * records + 1; steps++) {
      const r = i[kCacheClockHandField]!;
      i[kCacheClockHandField] = r + 1 < records ? r + 1 : 0;
      if (r === except) continue;
      const rb = this.rec(r);
      const state = i[rb + kRecStateField];
      if (state === RecordState.Released) {
        // released by a thread that has not held the lock since (or has ended)
        this.freeRecord(r);
        return true;
      }
      if (state !== RecordState.Ready) continue;
      if (i[rb + kRecRefField] !== 0) {
        i[rb + kRecRefField] = 0;
        continue;
      }
      if (freq >= 0 && (i[rb + kRecFlagsField]! & RecordFlag.Marker) === 0 && this.frequency(i[rb + kRecHashAField]!, i[rb + kRecHashBField]!) >= freq) {
        if (countRefusal) Atomics.add(i, kCacheAdmissionRefusedField, 1);
        this.refused = true;
        return false;
      }
      this.freeRecord(r);
      Atomics.add(i, kCacheEvictionsField, 1);
      return true;
    }
    return false;
  }
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Writes bytes across a chunk chain (under the lock, while the record's seqlock word is odd). */
class ChunkWriter {
  private chunk: number;
  private off = 0;

  constructor(
    private readonly s: CacheStore,
    first: number,
  ) {
    this.chunk = first;
  }

  private base(): number {
    return this.s.layout.arenaOffset + this.chunk * kCacheChunkBytes;
  }

  private next(): void {
    this.chunk = this.s.i32[(this.s.layout.chunkLinksOffset >> 2) + this.chunk]!;
    this.off = 0;
  }

  string(v: string): void {
    let k = 0;
    while (k < v.length) {
      if (this.off === kCacheChunkBytes) this.next();
      const n = Math.min(kCacheChunkBytes - this.off, v.length - k);
      this.s.bytes.write(k === 0 && n === v.length ? v : v.slice(k, k + n), this.base() + this.off, n, 'latin1');
      this.off += n;
      k += n;
    }
  }

  bytes(v: Buffer): void {
    let k = 0;
    while (k < v.length) {
      if (this.off === kCacheChunkBytes) this.next();
      const n = Math.min(kCacheChunkBytes - this.off, v.length - k);
      v.copy(this.s.bytes, this.base() + this.off, k, k + n);
      this.off += n;
      k += n;
    }
  }
}
