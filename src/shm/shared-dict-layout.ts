// Layout of one shared dictionary (`shared: { <name>: { size } }`) inside the shared
// dictionary region (layout.ts, kHeaderSharedDictBytesField). Every slot is a named
// constant, in Int32 units from the dictionary's base unless said otherwise.
//
//   header (one cache line) | hash buckets (Int32 block index, -1 empty) | blocks
//
// Storage is 64-byte blocks. An item is a head block (metadata and the first bytes of
// key + value) followed by continuation blocks chained through their first word; a
// free block sits on one free stack. Fixed blocks keep allocation O(blocks) with no
// fragmentation to compact, at the cost of rounding every item up to 64 bytes
// (OpenResty's slab allocator rounds to powers of two, so the overhead is alike).

export const kDictMagic = 0x7464_6963; // "tdic"

/** futex-style mutex: 0 free, 1 held, 2 held with waiters (see shared-dict.ts) */
export const kDictLockInt32 = 0;
export const kDictBucketsInt32 = 1;
export const kDictBlocksInt32 = 2;
/** top of the free stack, -1 when no block is free */
export const kDictFreeHeadInt32 = 3;
export const kDictFreeCountInt32 = 4;
/** most recently used item (head block), -1 when empty */
export const kDictLruHeadInt32 = 5;
/** least recently used item, the first evicted */
export const kDictLruTailInt32 = 6;
export const kDictItemsInt32 = 7;
/** valid (unexpired) items evicted to make room: what `forcible` reports, counted */
export const kDictEvictionsInt32 = 8;
/** expired items removed to make room or by flush_expired */
export const kDictExpiredRemovedInt32 = 9;
export const kDictMagicInt32 = 10;
export const kDictHeaderInt32 = 16;

export const kDictBlockBytes = 64;
export const kDictBlockInt32 = kDictBlockBytes / 4;

// Head block (Int32 index within the block).
/** next head block in the hash bucket's chain, -1 last */
export const kItemChainInt32 = 0;
export const kItemLruPrevInt32 = 1;
export const kItemLruNextInt32 = 2;
/** first continuation block, -1 none */
export const kItemContInt32 = 3;
export const kItemHashInt32 = 4;
export const kItemKeyBytesInt32 = 5;
/** a DictValueType */
export const kItemTypeInt32 = 6;
/** UTF-8 bytes of a string value (0 for numbers and booleans) */
export const kItemValueBytesInt32 = 7;
/** f64 at Int32 8–9: absolute expiry, ms on the dictionary's clock; 0 = never */
export const kItemExpiresF64Int32 = 8;
/** f64 at Int32 10–11: a number value, or a boolean as 0/1 */
export const kItemNumberF64Int32 = 10;
/** user flags (OpenResty `set(key, value, exptime, flags)`), an unsigned 32-bit number */
export const kItemFlagsInt32 = 12;
/** key bytes then string value bytes start here in the head block … */
export const kItemDataByte = 13 * 4;
/** … and continue after the chain word of each continuation block */
export const kContNextInt32 = 0;
export const kContDataByte = 4;
export const kHeadDataBytes = kDictBlockBytes - kItemDataByte; // 12
export const kContDataBytes = kDictBlockBytes - kContDataByte; // 60

export const enum DictValueType {
  String = 1,
  Number = 2,
  Boolean = 3,
}

/** OpenResty's limit on a shared-dict key */
export const kDictMaxKeyBytes = 65_535;
/** smallest dictionary: a header, buckets and a few dozen blocks */
export const kDictMinBytes = 8 * 1024;

/** Blocks an item of `bytes` (key + value) needs. */
export function blocksFor(bytes: number): number {
  return bytes <= kHeadDataBytes ? 1 : 1 + Math.ceil((bytes - kHeadDataBytes) / kContDataBytes);
}

export interface DictGeometry {
  readonly buckets: number;
  readonly blocks: number;
  /** byte offset of the first block from the dictionary's base */
  readonly blocksByte: number;
}

/** Buckets (a power of two, about one per two blocks) and blocks that fit in `bytes`. */
export function dictGeometry(bytes: number): DictGeometry {
  const usable = bytes - kDictHeaderInt32 * 4;
  // Each block costs 64 bytes plus, at one bucket per two blocks, 2 bytes of bucket.
  let buckets = 1;
  while (buckets < usable / (kDictBlockBytes + 2) / 2) buckets *= 2;
  const blocksByte = Math.ceil((kDictHeaderInt32 * 4 + buckets * 4) / kDictBlockBytes) * kDictBlockBytes;
  const blocks = Math.floor((bytes - blocksByte) / kDictBlockBytes);
  return { buckets, blocks, blocksByte };
}

export interface DictPlacement {
  readonly name: string;
  /** byte offset of the dictionary's base from the start of the shared dictionary region */
  readonly byteOffset: number;
  readonly bytes: number;
}

/**
 * Where each dictionary lives: in configured order, each rounded up to whole cache
 * lines, from `regionByte` (0: offsets within the region). Derived from the config alone, so the primary and every
 * worker agree without a directory in shared memory.
 */
export function placeDicts(regionByte: number, dicts: readonly { readonly name: string; readonly bytes: number }[]): DictPlacement[] {
  let at = regionByte;
  return dicts.map((d) => {
    const bytes = Math.ceil(d.bytes / kDictBlockBytes) * kDictBlockBytes;
    const p = { name: d.name, byteOffset: at, bytes };
    at += bytes;
    return p;
  });
}

/** Bytes the whole region needs for these dictionaries. */
export function sharedDictRegionBytes(dicts: readonly { readonly bytes: number }[]): number {
  let n = 0;
  for (const d of dicts) n += Math.ceil(d.bytes / kDictBlockBytes) * kDictBlockBytes;
  return n;
}
