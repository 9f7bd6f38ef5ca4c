// GCRA rate-limit buckets in shared memory (layout in layout.ts).
//
// GCRA keeps one number per key, the theoretical arrival time (TAT): a request at
// `now` is admitted when max(TAT, now) + T − now ≤ τ, where T = 1/rate and
// τ = burst × T, and then TAT becomes max(TAT, now) + T. So `burst` requests pass at
// once from a fresh key, then one per T: over a window D, at most burst + rate × D.
// Workers update TATs with Atomics.compareExchange on a BigInt64Array (nanoseconds of
// process.hrtime, a monotonic clock every thread of the process shares), so no two
// workers can both take the last token.
//
// Keys live in a fixed open-addressed table (linear probing, at most kLimiterMaxProbe
// slots). Each slot holds [TAT, tag]; the tag is the policy row and 48 bits of the
// key's two hashes (0 = empty). A slot whose TAT is in the past is a full bucket,
// the same state as no entry at all, so it may be taken over by another key: that
// is the eviction, and it loses nothing.
//
// XXX: taking over an expired slot is two CASes (tag, then TAT). A request for the old
// key racing the takeover can leave the new key with the old key's TAT (at most one
// request's worth, once) — the price of not locking; counted nowhere.
//
// A `scope: cluster` policy (its cluster words say so, src/fleet/ writes them) adds a
// lease in front of the same slot: tokens the primary took from the Redis bucket for
// this key. A request spends one with compareExchange; with none left it is refused
// when Redis last said the key is empty (deny-until), else admitted on credit by a small
// GCRA at this instance's share of the rate on the slot's TAT (the bridge), and the
// primary charges that credit to Redis at its next exchange. While Redis is
// unreachable the row's mode says what to do instead (allow, deny, or the local share).
// A slot with a lease, unreported use or uncharged credit is never taken over.
//
// When every probed slot holds a live key the request is admitted unmetered and
// counted as overflow (fail open: a full table must not become an outage); the
// primary reports it so `capacity.limiterKeys` can be raised.
import {
  ClusterMode,
  kClusterPolicyBridgeBurstField,
  kClusterPolicyBridgedInt32,
  kClusterPolicyFailClosedInt32,
  kClusterPolicyFailOpenInt32,
  kClusterPolicyGraceField,
  kClusterPolicyLeasedInt32,
  kClusterPolicyLocalInt32,
  kClusterPolicyModeField,
  kClusterPolicyShareBurstField,
  kClusterPolicyShareRateField,
  kClusterPolicyWords,
  kLeaseDebtInt32,
  kLeaseDenyUntilField,
  kLeaseRefusedInt32,
  kLeaseSlotWords,
  kLeaseTokensInt32,
  kLeaseUsedInt32,
  kLimiterMaxProbe,
  kLimiterPolicyAllowedInt32,
  kLimiterPolicyBurstField,
  kLimiterPolicyChangedAtField,
  kLimiterPolicyDeniedInt32,
  kLimiterPolicyInUseField,
  kLimiterPolicyMultiplierField,
  kLimiterPolicyOverflowInt32,
  kLimiterPolicyRateField,
  kLimiterPolicyWords,
  kLimiterSlotTagField,
  kLimiterSlotTatField,
  kLimiterSlotWords,
} from './layout.js';
import type { SharedState } from './shared-state.js';

/** What `acquire` reports besides the verdict (reused by the caller: no allocation). */
export interface LimitResult {
  /** requests that would still pass right now */
  remaining: number;
  /** admitted: seconds until the bucket is full again; denied: seconds until one more passes */
  resetSeconds: number;
  /** the policy row's multiplier as this request read it (1 = as configured; adaptive limits move it) */
  multiplier: number;
  /** refused because a cluster policy's Redis is unreachable and redis.onFailure is deny (not a 429) */
  unavailable: boolean;
}

export interface LimiterPolicyInfo {
  readonly row: number;
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly multiplier: number;
  readonly allowed: number;
  readonly denied: number;
  readonly overflow: number;
}

export class LimiterTable {
  private readonly i64: BigInt64Array;
  private readonly f64: Float64Array;
  private readonly i32: Int32Array;
  readonly slots: number;
  readonly policies: number;
  private readonly mask: number;
  private readonly policyOffset: number;
  private readonly slotOffset: number;
  private readonly clusterOffset: number;
  private readonly leaseOffset: number;
  /** the clock `acquire`'s callers use (tests with a synthetic clock replace it) */
  clock: () => bigint = process.hrtime.bigint;

  constructor(shm: SharedState) {
    this.i64 = shm.i64;
    this.f64 = shm.f64;
    this.i32 = shm.i32;
    this.slots = shm.layout.limits.limiterSlots;
    this.policies = shm.layout.limits.limiterPolicies;
    this.mask = this.slots - 1;
    this.policyOffset = shm.layout.limiterPolicyOffset;
    this.slotOffset = shm.layout.limiterSlotOffset;
    this.clusterOffset = shm.layout.clusterPolicyOffset;
    this.leaseOffset = shm.layout.leaseSlotOffset;
  }

  private policyBase(p: number): number {
    if (p < 0 || p >= this.policies) throw new RangeError(`limiter policy row ${p} out of range (capacity.limiterPolicies is ${this.policies})`);
    return this.policyOffset + p * kLimiterPolicyWords;
  }

  // ---- primary side ----------------------------------------------------------------

  /** Writes a policy row. Each field is one aligned 8-byte store; see layout.ts on why no seqlock. */
  setPolicy(p: number, ratePerSecond: number, burst: number, multiplier = 1): void {
    const b = this.policyBase(p);
    this.f64[b + kLimiterPolicyRateField] = ratePerSecond;
    this.f64[b + kLimiterPolicyBurstField] = burst;
    this.f64[b + kLimiterPolicyMultiplierField] = multiplier;
    this.f64[b + kLimiterPolicyInUseField] = 1;
    this.f64[b + kLimiterPolicyChangedAtField] = Number(this.clock());
  }

  setMultiplier(p: number, multiplier: number): void {
    const b = this.policyBase(p);
    this.f64[b + kLimiterPolicyMultiplierField] = multiplier;
    this.f64[b + kLimiterPolicyChangedAtField] = Number(this.clock());
  }

  clearPolicy(p: number): void {
    const b = this.policyBase(p);
    this.f64[b + kLimiterPolicyInUseField] = 0;
    this.f64[b + kLimiterPolicyRateField] = 0;
  }

  policy(p: number): LimiterPolicyInfo {
    const b = this.policyBase(p);
    return {
      row: p,
      ratePerSecond: this.f64[b + kLimiterPolicyRateField]!,
      burst: this.f64[b + kLimiterPolicyBurstField]!,
      multiplier: this.f64[b + kLimiterPolicyMultiplierField]!,
      allowed: Atomics.load(this.i32, b * 2 + kLimiterPolicyAllowedInt32) >>> 0,
      denied: Atomics.load(this.i32, b * 2 + kLimiterPolicyDeniedInt32) >>> 0,
      overflow: Atomics.load(this.i32, b * 2 + kLimiterPolicyOverflowInt32) >>> 0,
    };
  }

  /** Keys with a live (non-full) bucket; O(slots), for status and tests. */
  liveKeys(nowNs = process.hrtime.bigint()): number {
    let n = 0;
    for (let s = 0; s < this.slots; s++) {
      const base = this.slotOffset + s * kLimiterSlotWords;
      if (Atomics.load(this.i64, base + kLimiterSlotTagField) !== 0n && Atomics.load(this.i64, base + kLimiterSlotTatField) > nowNs) n++;
    }
    return n;
  }

  // ---- worker side -------------------------------------------------------------------

  /**
   * One request for the key hashed to (h1, h2) under policy row `p` (at `ratePerSecond`
   * and `burstOf` instead of the row's when given). True = admitted.
   * `out` receives remaining and reset time. Never blocks: CAS retries only while
   * another worker just moved the same bucket.
   */
  acquire(p: number, h1: number, h2: number, nowNs: bigint, out: LimitResult, ratePerSecond = 0, burstOf = 0): boolean {
    const pb = this.policyBase(p);
    const f64 = this.f64;
    const m = f64[pb + kLimiterPolicyMultiplierField]!;
    out.multiplier = m;
    out.unavailable = false;
    // A tenant tier's quota (ratePerSecond, burstOf > 0) replaces the row's; the row's multiplier still applies.
    const rate = (ratePerSecond > 0 ? ratePerSecond : f64[pb + kLimiterPolicyRateField]!) * m;
    const burst = burstOf > 0 ? burstOf : f64[pb + kLimiterPolicyBurstField]!;
    if (!(rate > 0) || !(burst >= 1)) {
      out.remaining = 0;
      out.resetSeconds = 0;
      return true; // no policy written (or switched off): admit
    }
    const tag = (BigInt(p + 1) << 48n) | (BigInt(h1 >>> 0) << 16n) | BigInt(h2 & 0xffff);
    const base = this.slotFor(tag, h1, nowNs);
    if (base < 0) {
      Atomics.add(this.i32, pb * 2 + kLimiterPolicyOverflowInt32, 1);
      out.remaining = 0;
      out.resetSeconds = 0;
      return true;
    }
    const mode = f64[this.clusterOffset + p * kClusterPolicyWords + kClusterPolicyModeField]!;
    if (mode !== ClusterMode.Off) return this.cluster(p, pb, base, mode, rate, burst, nowNs, out);
    const tNs = 1e9 / rate;
    return this.update(pb, base, BigInt(Math.max(1, Math.round(tNs))), BigInt(Math.round(tNs * burst)), nowNs, out);
  }

  /** The slot holding `tag` (claimed if new), or -1 when every probed slot holds another live key. */
  private slotFor(tag: bigint, h1: number, nowNs: bigint): number {
    const i64 = this.i64;
    const start = h1 & this.mask;
    let expired = -1;
    for (let k = 0; k < kLimiterMaxProbe; k++) {
      const base = this.slotOffset + ((start + k) & this.mask) * kLimiterSlotWords;
      const t = Atomics.load(i64, base + kLimiterSlotTagField);
      if (t === tag) return base;
      if (t === 0n) {
        const was = Atomics.compareExchange(i64, base + kLimiterSlotTagField, 0n, tag);
        if (was === 0n || was === tag) return base;
        continue; // another key claimed it first
      }
      if (expired < 0 && Atomics.load(i64, base + kLimiterSlotTatField) <= nowNs && this.leaseIdle(base)) expired = base;
    }
    if (expired >= 0) {
      const old = Atomics.load(i64, expired + kLimiterSlotTagField);
      const oldTat = Atomics.load(i64, expired + kLimiterSlotTatField);
      if (oldTat <= nowNs && Atomics.compareExchange(i64, expired + kLimiterSlotTagField, old, tag) === old) return expired;
    }
    return -1;
  }

  /** Int32 index of the lease words beside the GCRA slot at word `base`. */
  private leaseIndex(base: number): number {
    return (this.leaseOffset + ((base - this.slotOffset) / kLimiterSlotWords) * kLeaseSlotWords) * 2;
  }

  private leaseIdle(base: number): boolean {
    const li = this.leaseIndex(base);
    const i32 = this.i32;
    return Atomics.load(i32, li + kLeaseTokensInt32) <= 0 && Atomics.load(i32, li + kLeaseUsedInt32) === 0 && Atomics.load(i32, li + kLeaseDebtInt32) === 0 && Atomics.load(i32, li + kLeaseRefusedInt32) === 0;
  }

  private cluster(p: number, pb: number, base: number, mode: number, rate: number, burst: number, nowNs: bigint, out: LimitResult): boolean {
    const cb = this.clusterOffset + p * kClusterPolicyWords;
    const ci = cb * 2;
    const i32 = this.i32;
    const f64 = this.f64;
    if (mode === ClusterMode.Allow) {
      Atomics.add(i32, ci + kClusterPolicyFailOpenInt32, 1);
      Atomics.add(i32, pb * 2 + kLimiterPolicyAllowedInt32, 1);
      out.remaining = Math.floor(burst);
      out.resetSeconds = 0;
      return true;
    }
    if (mode === ClusterMode.Deny) {
      Atomics.add(i32, ci + kClusterPolicyFailClosedInt32, 1);
      Atomics.add(i32, pb * 2 + kLimiterPolicyDeniedInt32, 1);
      out.unavailable = true;
      out.remaining = 0;
      out.resetSeconds = 1;
      return false;
    }
    const shareRate = f64[cb + kClusterPolicyShareRateField]!;
    const tNs = 1e9 / (shareRate > 0 ? shareRate : rate);
    const T = BigInt(Math.max(1, Math.round(tNs)));
    if (mode === ClusterMode.Local) {
      const ok = this.update(pb, base, T, BigInt(Math.round(tNs * f64[cb + kClusterPolicyShareBurstField]!)), nowNs, out);
      if (ok) Atomics.add(i32, ci + kClusterPolicyLocalInt32, 1);
      return ok;
    }
    const li = this.leaseIndex(base);
    for (;;) {
      const t = Atomics.load(i32, li + kLeaseTokensInt32);
      if (t <= 0) break;
      if (Atomics.compareExchange(i32, li + kLeaseTokensInt32, t, t - 1) === t) {
        Atomics.add(i32, li + kLeaseUsedInt32, 1);
        Atomics.add(i32, ci + kClusterPolicyLeasedInt32, 1);
        Atomics.add(i32, pb * 2 + kLimiterPolicyAllowedInt32, 1);
        // What this instance holds: the fleet's bucket may hold more, never less.
        out.remaining = t - 1;
        out.resetSeconds = Math.max(0, burst - (t - 1)) / rate;
        return true;
      }
    }
    // Redis said the key is empty: refused until the primary's next answer clears this
    // (a grant) or moves it (still empty): credit here would be charged past the limit.
    // Unless that answer is late by more than the grace (a starved primary, a slow
    // Redis): then credit at the share rate, as for any late refill.
    const until = f64[li / 2 + kLeaseDenyUntilField]!;
    if (until > 0 && Number(nowNs) < until + f64[cb + kClusterPolicyGraceField]!) {
      Atomics.add(i32, li + kLeaseRefusedInt32, 1);
      Atomics.add(i32, pb * 2 + kLimiterPolicyDeniedInt32, 1);
      out.remaining = 0;
      out.resetSeconds = Math.max(0.001, (until - Number(nowNs)) / 1e9);
      return false;
    }
    const ok = this.update(pb, base, T, BigInt(Math.round(tNs * f64[cb + kClusterPolicyBridgeBurstField]!)), nowNs, out);
    if (ok) {
      Atomics.add(i32, li + kLeaseDebtInt32, 1);
      Atomics.add(i32, li + kLeaseUsedInt32, 1);
      Atomics.add(i32, ci + kClusterPolicyBridgedInt32, 1);
    } else Atomics.add(i32, li + kLeaseRefusedInt32, 1);
    return ok;
  }

  private update(pb: number, base: number, T: bigint, tau: bigint, now: bigint, out: LimitResult): boolean {
    const i64 = this.i64;
    const ti = base + kLimiterSlotTatField;
    for (;;) {
      const old = Atomics.load(i64, ti);
      const next = (old > now ? old : now) + T;
      const ahead = next - now; // how far the key is ahead of its schedule after this request
      if (ahead > tau) {
        if (old - now > tau) {
          // Possibly no request under this policy could have put the TAT this far
          // ahead: the primary raised the rate since. Then restate the key in the new
          // policy's terms as "burst used up when the policy changed", so it recovers
          // at the new rate instead of serving out the old policy's debt. `now` may be
          // stale (another worker moved the TAT with a later clock), so decide on a
          // fresh reading: any TAT written under this policy is < its writer's clock +
          // tau, and that clock was read before our load of `old`, so before `fresh`.
          const fresh = this.clock();
          if (old - fresh > tau) {
            const changedAt = BigInt(Math.floor(this.f64[pb + kLimiterPolicyChangedAtField]!)) + tau;
            Atomics.compareExchange(i64, ti, old, changedAt > fresh ? changedAt : fresh);
            continue;
          }
        }
        out.remaining = 0;
        out.resetSeconds = Number(ahead - tau) / 1e9;
        Atomics.add(this.i32, pb * 2 + kLimiterPolicyDeniedInt32, 1);
        return false;
      }
      if (Atomics.compareExchange(i64, ti, old, next) === old) {
        out.remaining = Math.floor(Number(tau - ahead) / Number(T));
        out.resetSeconds = Number(ahead) / 1e9;
        Atomics.add(this.i32, pb * 2 + kLimiterPolicyAllowedInt32, 1);
        return true;
      }
    }
  }
}
