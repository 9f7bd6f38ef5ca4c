// How an adaptive rate limit's cut is shared among tenant tiers: the lowest tier
// priority takes it first. The AIMD controller (src/controllers/adaptive-rate.ts) moves
// one multiplier m per policy between `min` and 1; with K distinct tier priorities the
// lowest falls from 1 to `min` while m goes from 1 to 1 − (1 − min)/K, the next one over
// the next stretch, and so on, so a noisy low tier is held back before a high one loses
// anything. With one tier (or no tiers) it is m itself. The controller closes the loop on
// the upstream's latency whatever the mapping, so the order is all this decides.
//
// Used by the worker (the quota it enforces) and the primary (/status), so both agree.

/** Priority index (0 critical … 3 low) a tier without its own priority is ranked at. */
const NORMAL = 2;

export interface TierRanks {
  /** per tier: 0 for the lowest priority present, levels − 1 for the highest */
  readonly ranks: readonly number[];
  readonly levels: number;
}

/** `priorities`: per tier, its priority index (0 critical … 3 low), or −1 for none (ranked as normal). */
export function tierRanks(priorities: readonly number[]): TierRanks {
  const p = priorities.map((x) => (x < 0 ? NORMAL : x));
  const distinct = [...new Set(p)].sort((a, b) => b - a); // lowest priority (largest index) first
  return { ranks: p.map((x) => distinct.indexOf(x)), levels: Math.max(1, distinct.length) };
}

/** The multiplier a tier of `rank` gets when the policy's is `m` with floor `min` (both 0–1]. */
export function tierMultiplier(m: number, min: number, rank: number, levels: number): number {
  if (!(min < 1) || m >= 1) return m >= 1 ? 1 : m;
  const cut = Math.min(1, Math.max(0, (1 - m) / (1 - min)));
  const own = Math.min(1, Math.max(0, cut * levels - rank));
  // min + … rather than 1 − …: at the floor it is min exactly, so quotas round as configured.
  return min + (1 - min) * (1 - own);
}
