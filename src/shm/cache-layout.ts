// The response cache's shared memory: its own SharedArrayBuffer (sized by `cache.size`,
// which can be hundreds of megabytes, so it does not grow the control-state buffer of
// layout.ts), created by the primary and attached by every worker. Every slot is a named
// constant, as in layout.ts.
//
//   header (Int32)        sizes, the writer lock, free lists, the CLOCK hand, counters
//   route counters (Int32) requests per route and result, one block per counter stripe
//                         (each worker adds to its own: a word every worker writes is a
//                         contended cache line on every request), summed by readers
//   records (Int32/f64)   one per entry: seqlock word, state word, key hash, chunk chain,
//                         freshness times
//   index (Int32)         open-addressed: record + 1, 0 empty, -1 deleted
//   chunk links (Int32)   next chunk of the same entry, or the next free chunk
//   sketch (Uint8)        count-min sketch of key frequencies (TinyLFU admission), in
//                         64-byte blocks of 4 rows × 16 counters, one block per key
//   doorkeeper (Int32)    hashes of keys whose response was refused lately (the
//                         uncacheable mark's first sighting), direct-mapped
//   readers (Int32)       one 64-byte line per worker slot: the epoch a worker read
//                         when it began serving bytes straight out of the arena, 0
//                         when it is not (freed chunks wait in limbo until every
//                         worker has moved past the epoch they were freed in)
//   arena (bytes)         fixed-size chunks holding key, metadata and body of entries

export const kCacheMagic = 0x6361_6368; // "cach"
/** Bumped whenever any offset below changes. */
export const kCacheLayoutVersion = 6;

export const kCacheChunkBytes = 1024;

// ---- header (Int32 indices) ---------------------------------------------------------
// Six 64-byte lines grouped by who touches them: the writer lock and what only writers
// change (lines 0 and 1), the epoch every lookup reads (line 2), the words every thread
// adds to now and then (line 3), the counters (line 4), the replaced key (line 5). With the epoch on the lock's line,
// every lookup missed its cache after each lock taken on another core: a miss takes the
// lock twice, so on a stream of misses the lines bounced between workers.
export const kCacheMagicField = 0;
export const kCacheVersionField = 1;
export const kCacheChunksField = 2;
export const kCacheRecordsField = 3;
export const kCacheIndexSlotsField = 4;
export const kCacheSketchWidthField = 5;
export const kCacheMaxObjectField = 6;
export const kCacheRoutesField = 7;
/** the writer lock: 0 free, 1 held, 2 held while a thread may sleep on it (every mutation of the index, records and chunks happens under it) */
export const kCacheLockField = 8;
/** [lock] who holds the writer lock: worker slot + 1, kCachePrimaryHolder, or 0 (being taken or given up) */
export const kCacheLockHolderField = 9;
/** [lock] head of the free chunk list (-1 none) and its length */
export const kCacheFreeChunkField = 11;
export const kCacheFreeChunksField = 12;
/** [lock] head of the free record list (-1 none) */
export const kCacheFreeRecordField = 13;
/** [lock] CLOCK hand over records */
export const kCacheClockHandField = 14;
/** [rmw] reader lines in use: one more than the highest worker slot attached (what a reclaim scans) */
export const kCacheReaderSlotsUsedField = 15;
/** [lock] freed chunks not yet reusable: list head and tail (-1 none), length, and the epoch of the latest free */
export const kCacheLimboHeadField = 16;
export const kCacheLimboTailField = 17;
export const kCacheLimboChunksField = 18;
export const kCacheLimboEpochField = 19;
/** [lock] times a write waited for a reader to leave chunks it needed */
export const kCacheReclaimWaitsField = 20;
/** [lock] times the primary reset the store because a worker ended holding the writer lock */
export const kCacheResetsField = 21;
/** [lock] epoch of chunk frees: moves on every free (never 0); readers announce the one they saw */
export const kCacheEpochField = 32;
/** never written: what a timed sleep waits on */
export const kCacheIdleWordField = 33;
/** [rmw] sketch increments since the last halving */
export const kCacheSketchSamplesField = 48;
/** [rmw] source of fill tokens and Vary marker ids */
export const kCacheTokenField = 49;
// [lock or rmw] counters, wrapping at 2^32 (read as >>> 0)
export const kCacheEntriesField = 64; // records Ready (markers included)
export const kCacheEvictionsField = 65;
export const kCacheAdmissionRefusedField = 66;
export const kCacheStoredField = 67;
export const kCachePurgedField = 68;
export const kCacheCoalesceWaitsField = 69;
export const kCacheCoalesceTimeoutsField = 70;
export const kCacheTtlGrewField = 71;
export const kCacheTtlShrankField = 72;
export const kCacheTooLargeField = 73;
export const kCacheNoSpaceField = 74;
export const kCacheInvalidatedField = 75;
export const kCacheBodyBytesField = 76; // body bytes of Ready entries (up to 2 GiB tracked)
/**
 * [lock] hash A of the key whose entry the last publish replaced, kept after unlock: a
 * lookup that missed waits for a writer only when this names its key. A line of its
 * own: every miss reads it, and the lock's line moves between cores on every lock.
 */
export const kCacheLockKeyField = 80;
/** kCacheLockHolderField of a thread that is no worker (the primary, tests) */
export const kCachePrimaryHolder = 0x10000;
export const kCacheHeaderInt32 = 96;

/** Results a cache-enabled request is counted under (one row of route counters per route). */
export const enum CacheResult {
  Hit = 0,
  Miss = 1,
  Stale = 2,
  Revalidated = 3,
  Coalesced = 4,
  Bypass = 5,
  Uncacheable = 6,
  StaleIfBusy = 7,
}
export const cacheResultNames = ['hit', 'miss', 'stale', 'revalidated', 'coalesced', 'bypass', 'uncacheable', 'stale_if_busy'] as const;
export const kCacheResultCount = 8;
export const kCacheMaxRoutes = 256;
/** route counter blocks: worker slot w adds to block w mod this */
export const kCacheCounterStripes = 8;
/**
 * Doorkeeper slots: under a stream of distinct uncacheable keys at 20,000 a second a key
 * stays in it ≈ 0.8 s, long enough for a hot key's second refusal to find it.
 */
export const kCacheDoorkeeperSlots = 16384;
/** worker slots that can serve straight from the arena (a worker of a higher slot copies) */
export const kCacheReaderSlots = 64;
/** Int32 words per reader line: one 64-byte cache line each, so workers never share one */
export const kCacheReaderStride = 16;

// ---- records ----------------------------------------------------------------------
/** seqlock: odd while a writer (under the lock) changes the record; readers retry or miss on a change */
export const kRecSeqField = 0;
/** a RecordState; waiters on a fill `Atomics.waitAsync` on this word */
export const kRecStateField = 1;
export const kRecHashAField = 2;
export const kRecHashBField = 3;
export const kRecFirstChunkField = 4;
export const kRecChunksField = 5;
export const kRecKeyLenField = 6;
export const kRecMetaLenField = 7;
export const kRecBodyLenField = 8;
export const kRecStatusField = 9;
/** CLOCK reference bit: readers set it (plain store, only when 0) */
export const kRecRefField = 10;
export const kRecFlagsField = 11;
/** [lock] next free record */
export const kRecNextFreeField = 12;
/** fill token of the request filling the record (Filling), so a timed-out filler cannot publish over a successor */
export const kRecTokenField = 13;
/** [rmw] 1 while one request refreshes the entry in the background (stale-while-revalidate) */
export const kRecRefreshingField = 14;
/** [lock] requests that found the record Filling and wait for it (admission counts them: cache-store.ts publish) */
export const kRecWaitersField = 15;
// f64 fields (Float64Array index = record Int32 offset / 2 + these)
/** ms since the epoch at which the response's age was 0 (response time − initial age) */
export const kRecBornAtF64 = 8;
/** ms: fresh until */
export const kRecFreshUntilF64 = 9;
/** ms: stale-while-revalidate may serve it until */
export const kRecSwrUntilF64 = 10;
/** ms: stale-if-error may serve it until */
export const kRecSieUntilF64 = 11;
/** ms: the heuristic (adaptive) lifetime the freshness came from; 0 for explicit freshness */
export const kRecHeuristicF64 = 12;
/** ms: a Filling record older than this may be taken over (its filler is gone) */
export const kRecFillDeadlineF64 = 13;
export const kRecInt32 = 32;

export const enum RecordState {
  Free = 0,
  /** reserved by one request that is fetching it; others wait */
  Filling = 1,
  Ready = 2,
  /**
   * a reservation given up (the response was not stored): found by nobody, still in the
   * index until the thread that gave it up next holds the lock (CacheStore.release)
   */
  Released = 3,
}

export const enum RecordFlag {
  /** Vary marker: the meta holds the Vary field names; variants live under secondary keys */
  Marker = 1,
  /** must-revalidate / proxy-revalidate / s-maxage: never served stale */
  NoStale = 2,
  /** no-cache: stored, but every use is revalidated */
  NoCache = 4,
  /** has a validator (ETag or Last-Modified) */
  Validator = 8,
  /**
   * "hit-for-pass" (Varnish's name): the last response for this key was not storable,
   * so until freshUntil requests go upstream at once, neither queueing behind one fill
   * nor evaluated for storing; a purge or an unsafe method removes the mark
   */
  Uncacheable = 16,
}

export interface CacheLayout {
  readonly chunks: number;
  readonly records: number;
  readonly indexSlots: number;
  readonly sketchWidth: number;
  readonly maxObjectSize: number;
  readonly routes: number;
  // byte offsets
  readonly routeCountersOffset: number;
  readonly recordsOffset: number;
  readonly indexOffset: number;
  readonly chunkLinksOffset: number;
  readonly sketchOffset: number;
  readonly doorkeeperOffset: number;
  readonly readersOffset: number;
  readonly arenaOffset: number;
  readonly byteLength: number;
}

/** rows of the sketch: 4 × 16 counters fill one 64-byte block (cache-store.ts touch) */
export const kSketchRows = 4;

function pow2AtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

const align = (n: number): number => Math.ceil(n / 64) * 64;

/**
 * `sizeBytes` is the arena (cache.size); the tables beside it add about 8 % (one record
 * per two chunks, index, links, sketch) and 132 KiB (route counter stripes, doorkeeper, reader lines).
 */
export function computeCacheLayout(sizeBytes: number, maxObjectSize: number): CacheLayout {
  const chunks = Math.max(16, Math.floor(sizeBytes / kCacheChunkBytes));
  const records = Math.max(8, chunks >> 1);
  const indexSlots = pow2AtLeast(records * 2);
  const sketchWidth = pow2AtLeast(records * 2);
  const routes = kCacheMaxRoutes;
  const routeCountersOffset = kCacheHeaderInt32 * 4;
  const recordsOffset = align(routeCountersOffset + kCacheCounterStripes * routes * kCacheResultCount * 4);
  const indexOffset = align(recordsOffset + records * kRecInt32 * 4);
  const chunkLinksOffset = align(indexOffset + indexSlots * 4);
  const sketchOffset = align(chunkLinksOffset + chunks * 4);
  const doorkeeperOffset = align(sketchOffset + kSketchRows * sketchWidth);
  const readersOffset = align(doorkeeperOffset + kCacheDoorkeeperSlots * 4);
  const arenaOffset = align(readersOffset + kCacheReaderSlots * kCacheReaderStride * 4);
  const byteLength = align(arenaOffset + chunks * kCacheChunkBytes);
  return { chunks, records, indexSlots, sketchWidth, maxObjectSize, routes, routeCountersOffset, recordsOffset, indexOffset, chunkLinksOffset, sketchOffset, doorkeeperOffset, readersOffset, arenaOffset, byteLength };
}
