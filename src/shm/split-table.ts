// Typed view of the split rows (layout in layout.ts): a route's side weights as
// cumulative thresholds, written by the primary under a per-row seqlock and read by
// workers on every request to a split route.
//
// Why cumulative thresholds and not weights: a request's draw x in [0, kSplitScale) is
// compared with threshold after threshold, so the pick is a few loads and compares,
// and for a sticky split (x from a hash of the caller) a caller's side changes only
// when a threshold crosses its x. With two sides, the canary last, raising the
// canary's weight lowers the one threshold: callers already on the canary stay there
// (the set of x below 1 − w shrinks as w grows). The same holds for the first and the
// last side of any split; a middle side's range can move under a caller.
import { kSplitCumulativeInt32, kSplitMaxSides, kSplitRowInt32, kSplitRows, kSplitScale, kSplitSeqInt32, kSplitSidesInt32, splitInt32Offset } from './layout.js';
import type { SharedState } from './shared-state.js';

/**
 * A read retries while the row is being written; a write is a dozen stores, so a retry
 * almost always succeeds at once. A write found in progress is spun on this many times,
 * then waited for in 1 ms steps up to kWriteWaitMs: the primary can be descheduled
 * mid-write on a loaded host (4 threads on 2 cores) for longer than any spin, and a read
 * that gave up then would take a torn row. Past that (a writer that died mid-write,
 * which a primary thread cannot do without taking the process with it) the read takes
 * what it sees rather than wait for ever.
 */
const kWriteSpins = 2_000;
const kWriteWaitMs = 1_000;

export class SplitTable {
  readonly i32: Int32Array;
  private readonly base: number;

  constructor(shm: SharedState) {
    this.i32 = shm.i32;
    this.base = splitInt32Offset(shm.layout, 0);
  }

  /** Writes `weights` (any non-negative numbers with a positive sum) as row `row`'s thresholds. */
  write(row: number, weights: readonly number[]): void {
    if (row < 0 || row >= kSplitRows) throw new RangeError(`split row ${row} out of range`);
    if (weights.length === 0 || weights.length > kSplitMaxSides) throw new RangeError(`a split has 1 to ${kSplitMaxSides} sides`);
    const cum = cumulative(weights);
    const b = this.base + row * kSplitRowInt32;
    const i32 = this.i32;
    const v = Atomics.add(i32, b + kSplitSeqInt32, 1);
    if ((v & 1) !== 0) throw new Error(`split row ${row}: nested write (seqlock already odd)`);
    Atomics.store(i32, b + kSplitSidesInt32, cum.length);
    for (let i = 0; i < kSplitMaxSides; i++) Atomics.store(i32, b + kSplitCumulativeInt32 + i, i < cum.length ? cum[i]! : kSplitScale);
    Atomics.add(i32, b + kSplitSeqInt32, 1);
  }

  /**
   * The side (0-based) that draw `x` falls in, among the first `sides` of the row.
   * XXX: rows follow the split routes' order in the config, so a reload that reorders
   * them rewrites a row while a request of the older generation may still read it;
   * that request may pick by another route's thresholds, and a side past what its
   * route has is clamped to its last side. Rows keyed by route name would need a free
   * list shared with workers; the window is one reload's broadcast.
   */
  pick(row: number, x: number, sides: number): number {
    const i32 = this.i32;
    const b = this.base + row * kSplitRowInt32;
    let side = 0;
    let odd = 0;
    for (;;) {
      const v1 = Atomics.load(i32, b + kSplitSeqInt32);
      if ((v1 & 1) !== 0 && odd < kWriteSpins + kWriteWaitMs) {
        if (++odd > kWriteSpins) Atomics.wait(i32, b + kSplitSeqInt32, v1, 1);
        continue;
      }
      const n = Atomics.load(i32, b + kSplitSidesInt32);
      side = n - 1;
      for (let i = 0; i < n - 1; i++) {
        if (x < Atomics.load(i32, b + kSplitCumulativeInt32 + i)) {
          side = i;
          break;
        }
      }
      if (Atomics.load(i32, b + kSplitSeqInt32) === v1 || odd >= kWriteSpins + kWriteWaitMs) break;
    }
    if (side < 0) return 0;
    return side < sides ? side : sides - 1;
  }

  /** The row's weights as shares of kSplitScale (for status and tests). */
  read(row: number): number[] {
    const b = this.base + row * kSplitRowInt32;
    const n = Atomics.load(this.i32, b + kSplitSidesInt32);
    const out: number[] = [];
    let prev = 0;
    for (let i = 0; i < n; i++) {
      const c = Atomics.load(this.i32, b + kSplitCumulativeInt32 + i);
      out.push((c - prev) / kSplitScale);
      prev = c;
    }
    return out;
  }
}

/** Thresholds out of kSplitScale; the last is always kSplitScale so every draw lands somewhere. */
export function cumulative(weights: readonly number[]): number[] {
  let total = 0;
  for (const w of weights) {
    if (!(w >= 0) || !Number.isFinite(w)) throw new RangeError('split weights must be finite and non-negative');
    total += w;
  }
  if (!(total > 0)) throw new RangeError('split weights must not all be zero');
  const out: number[] = [];
  let acc = 0;
  for (let i = 0; i < weights.length; i++) {
    acc += weights[i]!;
    out.push(i === weights.length - 1 ? kSplitScale : Math.round((acc / total) * kSplitScale));
  }
  return out;
}
