// The primary's side of the cluster rate-limit words (layout.ts, "cluster rate limits"):
// per policy row how workers admit, per bucket slot the lease the primary keeps filled
// from Redis. The workers' side is LimiterTable.acquire.
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
  kLimiterSlotTagField,
  kLimiterSlotWords,
} from './layout.js';
import type { SharedState } from './shared-state.js';

export interface ClusterCounters {
  /** admitted from a lease */
  readonly leased: number;
  /** admitted on credit while the key's lease was empty */
  readonly bridged: number;
  /** admitted by the local share while Redis was unreachable (onFailure local) */
  readonly local: number;
  /** admitted unmetered while Redis was unreachable (onFailure allow) */
  readonly failOpen: number;
  /** refused 503 while Redis was unreachable (onFailure deny) */
  readonly failClosed: number;
}

export class LeaseTable {
  private readonly f64: Float64Array;
  private readonly i32: Int32Array;
  readonly slots: number;
  private readonly policyOffset: number;
  private readonly leaseOffset: number;
  private readonly tagInt32: number;

  constructor(shm: SharedState) {
    this.f64 = shm.f64;
    this.i32 = shm.i32;
    this.slots = shm.layout.limits.limiterSlots;
    this.policyOffset = shm.layout.clusterPolicyOffset;
    this.leaseOffset = shm.layout.leaseSlotOffset;
    this.tagInt32 = (shm.layout.limiterSlotOffset + kLimiterSlotTagField) * 2;
  }

  setPolicy(row: number, mode: ClusterMode, shareRate: number, shareBurst: number, bridgeBurst: number, graceNs = 0): void {
    const b = this.policyOffset + row * kClusterPolicyWords;
    this.f64[b + kClusterPolicyGraceField] = graceNs;
    this.f64[b + kClusterPolicyShareRateField] = shareRate;
    this.f64[b + kClusterPolicyShareBurstField] = shareBurst;
    this.f64[b + kClusterPolicyBridgeBurstField] = bridgeBurst;
    this.f64[b + kClusterPolicyModeField] = mode;
  }

  setMode(row: number, mode: ClusterMode): void {
    this.f64[this.policyOffset + row * kClusterPolicyWords + kClusterPolicyModeField] = mode;
  }

  mode(row: number): ClusterMode {
    return this.f64[this.policyOffset + row * kClusterPolicyWords + kClusterPolicyModeField]! as ClusterMode;
  }

  counters(row: number): ClusterCounters {
    const b = (this.policyOffset + row * kClusterPolicyWords) * 2;
    const i32 = this.i32;
    return {
      leased: Atomics.load(i32, b + kClusterPolicyLeasedInt32) >>> 0,
      bridged: Atomics.load(i32, b + kClusterPolicyBridgedInt32) >>> 0,
      local: Atomics.load(i32, b + kClusterPolicyLocalInt32) >>> 0,
      failOpen: Atomics.load(i32, b + kClusterPolicyFailOpenInt32) >>> 0,
      failClosed: Atomics.load(i32, b + kClusterPolicyFailClosedInt32) >>> 0,
    };
  }

  /**
   * Calls `visit` for every slot whose key belongs to one of `rows`, with the tag's two
   * halves. Plain loads (a tag seen mid-claim is seen whole on the next scan); the
   * high half is (row + 1) << 16 | h1 >>> 16, see LimiterTable's tag.
   */
  scan(rows: ReadonlySet<number>, visit: (slot: number, hi: number, lo: number, row: number) => void): void {
    const i32 = this.i32;
    const stride = kLimiterSlotWords * 2;
    let at = this.tagInt32;
    for (let s = 0; s < this.slots; s++, at += stride) {
      const hi = i32[at + 1]!;
      if (hi === 0) continue;
      const row = (hi >>> 16) - 1;
      if (rows.has(row)) visit(s, hi, i32[at]!, row);
    }
  }

  /** The tag halves now in `slot` (to check that a slot still holds the key it held). */
  tagIs(slot: number, hi: number, lo: number): boolean {
    const at = this.tagInt32 + slot * kLimiterSlotWords * 2;
    return Atomics.load(this.i32, at + 1) === hi && Atomics.load(this.i32, at) === lo;
  }

  private base(slot: number): number {
    return (this.leaseOffset + slot * kLeaseSlotWords) * 2;
  }

  tokens(slot: number): number {
    return Atomics.load(this.i32, this.base(slot) + kLeaseTokensInt32);
  }

  addTokens(slot: number, n: number): void {
    Atomics.add(this.i32, this.base(slot) + kLeaseTokensInt32, n);
  }

  /** Takes every token back (to return or expire them); what it took. */
  drainTokens(slot: number): number {
    const n = Atomics.exchange(this.i32, this.base(slot) + kLeaseTokensInt32, 0);
    return n > 0 ? n : 0;
  }

  /** Requests admitted, admitted on credit, and refused for want of a lease since the last call (all reset). */
  takeUsage(slot: number): { used: number; debt: number; refused: number } {
    const b = this.base(slot);
    const i32 = this.i32;
    return { used: Atomics.exchange(i32, b + kLeaseUsedInt32, 0), debt: Atomics.exchange(i32, b + kLeaseDebtInt32, 0), refused: Atomics.exchange(i32, b + kLeaseRefusedInt32, 0) };
  }

  /** Workers refuse the key (once its lease is spent) until process.hrtime reaches `ns`; 0 lifts it. */
  setDenyUntil(slot: number, ns: number): void {
    this.f64[this.base(slot) / 2 + kLeaseDenyUntilField] = ns;
  }
}
