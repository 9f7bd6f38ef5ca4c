// This worker's handle on the shared cache: the store, attached once from workerData,
// and one scratch buffer that every hit copies into (a hit is served within one
// synchronous turn, so one buffer per thread is enough and nothing is allocated).
import { CacheStore } from '../../shm/cache-store.js';

/** room for the metadata (stored header fields) beside the largest body */
export const kMaxMetaBytes = 64 * 1024;

let store: CacheStore | null = null;
let scratch: Buffer | null = null;

/** `slot`: this worker's slot, which picks its block of the route counters. */
export function attachCache(buffer: SharedArrayBuffer | null, slot = 0): void {
  if (buffer === null) return;
  store = CacheStore.attach(buffer);
  store.stripe(slot);
  // + 8: CacheStore.read may start the copy up to 7 bytes in, to match the arena's alignment
  scratch = Buffer.allocUnsafe(store.maxObjectSize + kMaxMetaBytes + 8);
}

export function cacheStore(): CacheStore | null {
  return store;
}

export function cacheScratch(): Buffer {
  return scratch!;
}
