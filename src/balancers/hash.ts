// 32-bit string hashes for consistent hashing and limiter keys: FNV-1a over UTF-16
// code units (no encoding step, no allocation), with a seed so two independent hashes
// of one key are cheap (Maglev needs offset and skip; the limiter a tag and a slot).
export function hash32(s: string, seed = 0x811c9dc5): number {
  let h = seed | 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // Final avalanche (murmur3 fmix32): FNV's low bits are weak for short keys, and
  // both Maglev and the limiter use `h % size`.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export const SEED_A = 0x811c9dc5;
export const SEED_B = 0x2545f491;
