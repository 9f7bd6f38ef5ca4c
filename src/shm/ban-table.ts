// The shared ban table (layout in layout.ts): refusal counts per (ban policy, key) and
// the bans they set, read by every worker on every request of a route with a `ban`
// policy (src/policies/ban.ts), listed and changed by the primary (GET/DELETE
// /v1/bans). Counting is a fixed window that starts at the first counted refusal.
//
// Claiming a slot takes it with an even tag (kClaiming: real tags are odd), fills it in
// and only then publishes the key's tag, so a thread probing the same key meanwhile
// waits for the slot to say whose it is instead of claiming it again (which reset the
// count: concurrent first refusals on two workers lost each other's counts).
// XXX: a window reset racing an increment may drop that increment: counts are exact to
// a refusal under a race, which a threshold of "10 in a minute" does not notice. A thread
// that died inside a claim (a dozen stores, no await) leaves its slot marked for good,
// and every later claim that probes through it waits kClaimWaitMs first.
// When all kBanMaxProbe slots hold live keys the refusal is not counted (fail open:
// a full table must not ban anyone); `overflow` counts those so capacity.banKeys can
// be raised.
import {
  banInt32Offset,
  kBanCountField,
  kBanExpiresField,
  kBanHashBField,
  kBanKeyInt32Offset,
  kBanKeyLengthField,
  kBanKeyMaxBytes,
  kBanMaxProbe,
  kBanPolicyField,
  kBanSetAtField,
  kBanSourceField,
  kBanTagField,
  kBanTickMs,
  kBanTripsField,
  kBanUntilField,
  kBanWindowStartField,
  kHeaderBanEpochField,
  type Layout,
} from './layout.js';
import type { SharedState } from './shared-state.js';

/** The tag of a slot while one thread fills it in (real tags are odd). */
const kClaiming = 2;
/** How long a prober spins, then waits, for a claim to finish (see awaitClaim) */
const kClaimSpins = 2_000;
const kClaimWaitMs = 100;

export const BanSource = { Automatic: 0, Manual: 1 } as const;

export interface BanEntry {
  readonly slot: number;
  readonly policy: number;
  readonly key: string;
  /** epoch ms */
  readonly until: number;
  readonly setAt: number;
  readonly trips: number;
  readonly count: number;
  readonly source: 'automatic' | 'manual';
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class BanTable {
  private readonly i32: Int32Array;
  private readonly u8: Uint8Array;
  private readonly layout: Layout;
  private readonly mask: number;
  /** Date.now() of tick 0 */
  readonly epoch: number;
  /** refusals not counted because every probed slot held a live key (this thread's count) */
  overflow = 0;

  constructor(shm: SharedState) {
    this.i32 = shm.i32;
    this.u8 = new Uint8Array(shm.buffer);
    this.layout = shm.layout;
    this.mask = shm.layout.limits.banSlots - 1;
    this.epoch = shm.f64[kHeaderBanEpochField]!;
  }

  get slots(): number {
    return this.mask + 1;
  }

  /** now in ticks since the epoch (100 ms: an Int32 lasts 6.8 years) */
  tick(now = Date.now()): number {
    return Math.floor((now - this.epoch) / kBanTickMs);
  }

  msOf(tick: number): number {
    return this.epoch + tick * kBanTickMs;
  }

  /** Int32 index of the slot holding (policy, a, b), or -1. `a` must be odd-tagged (| 1). */
  find(policy: number, a: number, b: number): number {
    const i32 = this.i32;
    for (let p = 0; p < kBanMaxProbe; p++) {
      const base = banInt32Offset(this.layout, (a + p) & this.mask);
      const tag = Atomics.load(i32, base + kBanTagField);
      if (tag === 0) return -1;
      // (a slot being claimed is passed over: its key has no count yet, so no ban)
      if (tag === a && i32[base + kBanHashBField] === b && i32[base + kBanPolicyField] === policy) return base;
    }
    return -1;
  }

  /** Ticks until the ban on (policy, a, b) ends, or 0 when there is none. */
  bannedFor(policy: number, a: number, b: number, now: number): number {
    const base = this.find(policy, a, b);
    if (base < 0) return 0;
    const until = Atomics.load(this.i32, base + kBanUntilField);
    return until > now ? until - now : 0;
  }

  /** The slot for (policy, a, b), claiming an empty or expired one; -1 when all probed are live. */
  private claim(policy: number, a: number, b: number, key: string, now: number): number {
    const i32 = this.i32;
    let retries = 0;
    for (let p = 0; p < kBanMaxProbe; p++) {
      const base = banInt32Offset(this.layout, (a + p) & this.mask);
      let tag = Atomics.load(i32, base + kBanTagField);
      if (tag === kClaiming) tag = this.awaitClaim(base + kBanTagField);
      if (tag === kClaiming) continue;
      if (tag === a && i32[base + kBanHashBField] === b && i32[base + kBanPolicyField] === policy) return base;
      if (tag !== 0 && Atomics.load(i32, base + kBanExpiresField) > now) continue;
      if (Atomics.compareExchange(i32, base + kBanTagField, tag, kClaiming) !== tag) {
        if (retries++ < 4) p--; // taken meanwhile, perhaps for this key: look at the slot again
        continue;
      }
      i32[base + kBanHashBField] = b;
      i32[base + kBanPolicyField] = policy;
      Atomics.store(i32, base + kBanWindowStartField, now);
      Atomics.store(i32, base + kBanCountField, 0);
      Atomics.store(i32, base + kBanUntilField, 0);
      Atomics.store(i32, base + kBanTripsField, 0);
      Atomics.store(i32, base + kBanExpiresField, now);
      this.writeKey(base, key);
      Atomics.store(i32, base + kBanTagField, a);
      Atomics.notify(i32, base + kBanTagField);
      return base;
    }
    this.overflow++;
    return -1;
  }

  /**
   * Another thread is filling a slot in (a dozen stores): its tag, once published. It
   * spins first; a claimer the scheduler stopped mid-claim (4 threads on 2 cores) is
   * waited for, in 1 ms steps up to kClaimWaitMs, and only a claimer that never
   * finishes (its thread died) leaves the slot to be passed over.
   */
  private awaitClaim(at: number): number {
    const i32 = this.i32;
    let tag = kClaiming;
    for (let spins = 0; tag === kClaiming && spins < kClaimSpins; spins++) tag = Atomics.load(i32, at);
    for (let ms = 0; tag === kClaiming && ms < kClaimWaitMs; ms++) {
      Atomics.wait(i32, at, kClaiming, 1);
      tag = Atomics.load(i32, at);
    }
    return tag;
  }

  private writeKey(base: number, key: string): void {
    const at = (base + kBanKeyInt32Offset) * 4;
    const { written } = encoder.encodeInto(key, this.u8.subarray(at, at + kBanKeyMaxBytes));
    this.i32[base + kBanKeyLengthField] = written;
  }

  /**
   * Counts one refusal; bans the key for `forTicks` when it makes `count` within
   * `windowTicks`. Returns true when this call set the ban.
   */
  count(policy: number, a: number, b: number, key: string, threshold: number, windowTicks: number, forTicks: number, now: number): boolean {
    const base = this.claim(policy, a, b, key, now);
    if (base < 0) return false;
    const i32 = this.i32;
    const start = Atomics.load(i32, base + kBanWindowStartField);
    if (now - start >= windowTicks && Atomics.compareExchange(i32, base + kBanWindowStartField, start, now) === start) Atomics.store(i32, base + kBanCountField, 0);
    const n = Atomics.add(i32, base + kBanCountField, 1) + 1;
    const keep = now + windowTicks;
    if (Atomics.load(i32, base + kBanExpiresField) < keep) Atomics.store(i32, base + kBanExpiresField, keep);
    if (n < threshold) return false;
    const until = Atomics.load(i32, base + kBanUntilField);
    if (until > now) return false;
    if (Atomics.compareExchange(i32, base + kBanUntilField, until, now + forTicks) !== until) return false;
    this.markBanned(base, now, now + forTicks, BanSource.Automatic);
    return true;
  }

  private markBanned(base: number, now: number, until: number, source: number): void {
    const i32 = this.i32;
    Atomics.store(i32, base + kBanCountField, 0);
    Atomics.store(i32, base + kBanWindowStartField, now);
    Atomics.store(i32, base + kBanSetAtField, now);
    Atomics.store(i32, base + kBanSourceField, source);
    Atomics.add(i32, base + kBanTripsField, 1);
    if (Atomics.load(i32, base + kBanExpiresField) < until) Atomics.store(i32, base + kBanExpiresField, until);
  }

  /** Primary: bans (policy, key) until `untilTick` (an operator's or an event's ban). False when the table has no room. */
  ban(policy: number, a: number, b: number, key: string, untilTick: number, now: number): boolean {
    const base = this.claim(policy, a, b, key, now);
    if (base < 0) return false;
    Atomics.store(this.i32, base + kBanUntilField, untilTick);
    this.markBanned(base, now, untilTick, BanSource.Manual);
    return true;
  }

  /** Primary: ends the ban on a slot and forgets its count. */
  lift(base: number): void {
    Atomics.store(this.i32, base + kBanUntilField, 0);
    Atomics.store(this.i32, base + kBanCountField, 0);
  }

  /** Every slot with a ban in force at `now` (or, with `all`, every slot in use), with its Int32 index. */
  entries(now: number, all = false): (BanEntry & { base: number })[] {
    const out: (BanEntry & { base: number })[] = [];
    const i32 = this.i32;
    for (let s = 0; s <= this.mask; s++) {
      const base = banInt32Offset(this.layout, s);
      const tag = Atomics.load(i32, base + kBanTagField);
      if (tag === 0 || tag === kClaiming) continue;
      const until = Atomics.load(i32, base + kBanUntilField);
      if (!all && until <= now) continue;
      const at = (base + kBanKeyInt32Offset) * 4;
      const len = Math.min(kBanKeyMaxBytes, i32[base + kBanKeyLengthField]!);
      out.push({
        base,
        slot: s,
        policy: i32[base + kBanPolicyField]!,
        key: decoder.decode(this.u8.slice(at, at + len)),
        until: until > 0 ? this.msOf(until) : 0,
        setAt: this.msOf(Atomics.load(i32, base + kBanSetAtField)),
        trips: Atomics.load(i32, base + kBanTripsField),
        count: Atomics.load(i32, base + kBanCountField),
        source: Atomics.load(i32, base + kBanSourceField) === BanSource.Manual ? 'manual' : 'automatic',
      });
    }
    return out;
  }
}
