// The hit-for-pass marks this worker met, by key hash (direct-mapped): a request for a
// marked key is passed after one look at the mark's seqlock word instead of a lookup
// (index probe, key compare, copy). A purge or eviction of the mark moves the word, so
// it is lifted here at once, as in the store. Two keys alike in all 64 hash bits would
// share a slot: the other one would be passed upstream (answered, not cached) while the
// mark lasts.
import type { CacheStore } from '../../shm/cache-store.js';

const kPassSlots = 1024;
const passHashA = new Int32Array(kPassSlots);
const passHashB = new Int32Array(kPassSlots); // 0: empty (hB is always odd)
const passRecord = new Int32Array(kPassSlots);
const passSeq = new Int32Array(kPassSlots);
const passUntil = new Float64Array(kPassSlots);

/** Whether the key (hashed hA, hB) carries a mark this worker met that still holds at `now`. */
export function passMarked(st: CacheStore, hA: number, hB: number, now: number): boolean {
  const s = hA & (kPassSlots - 1);
  return passHashB[s] === hB && passHashA[s] === hA && now < passUntil[s]! && st.recordSeq(passRecord[s]!) === passSeq[s];
}

/** Notes the mark the lookup found: record `r` at seqlock word `seq`, holding until `until`. */
export function rememberPass(hA: number, hB: number, r: number, seq: number, until: number): void {
  const s = hA & (kPassSlots - 1);
  passHashA[s] = hA;
  passHashB[s] = hB;
  passRecord[s] = r;
  passSeq[s] = seq;
  passUntil[s] = until;
}
