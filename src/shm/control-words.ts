// Typed view of the per-upstream control words (layout in layout.ts) and of the
// outcome counters in each worker's ledger that the controllers read.
//
// Who writes what:
// * the primary's controller scheduler (src/controllers) alone writes the control word
//   (breaker state + concurrency limit) and the open-until time;
// * workers take half-open probe permits with compareExchange (the primary only
//   refills them when it enters half-open), and count admitted requests in the
//   shared in-flight word with Atomics.add;
// * each worker alone writes its own ledger counters, with plain stores.
import {
  controlInt32Offset,
  kControlInFlightInt32,
  kControlOpenUntilF64Word,
  kControlProbePermitsInt32,
  kControlWordInt32,
  kLatencyBuckets,
  kLedgerAdmittedInt32,
  kLedgerAttemptsInt32,
  kLedgerCircuitOpenInt32,
  kLedgerFailuresInt32,
  kLedgerFallbackInt32,
  kLedgerLatencyInt32,
  kLedgerProbeFailuresInt32,
  kLedgerProbeSuccessesInt32,
  kLedgerShedByPriorityInt32,
  kLedgerShedInt32,
  kLedgerSlowInt32,
  latencyBucket,
  ledgerInt32Offset,
} from './layout.js';
import type { SharedState } from './shared-state.js';

/** The low bits of the control word hold the breaker state; the limit sits above them. */
export const kBreakerStateMask = 3;
export const kLimitShift = 2;
/** largest concurrency limit the word can carry */
export const kMaxConcurrencyLimit = 0x1fff_ffff;

/** One worker's outcome counters for one upstream (all totals that wrap at 2^32). */
export interface UpstreamOutcomes {
  attempts: number;
  failures: number;
  slow: number;
  probeSuccesses: number;
  probeFailures: number;
  circuitOpen: number;
  fallback: number;
  shed: number;
  /** of `shed`, by Priority */
  readonly shedByPriority: [number, number, number, number];
  /** this worker's share of the shared in-flight word */
  admitted: number;
}

export class ControlWords {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly maxUpstreams: number;

  constructor(readonly shm: SharedState) {
    this.i32 = shm.i32;
    this.f64 = shm.f64;
    this.maxUpstreams = shm.layout.limits.maxUpstreams;
  }

  /** Int32 index of upstream `u`'s control block. */
  base(u: number): number {
    return controlInt32Offset(this.shm.layout, u);
  }

  // ---- primary side (single writer) ------------------------------------------------

  /** Writes breaker state and concurrency limit as one word: a reader never sees one without the other. */
  writeWord(u: number, state: number, limit: number): void {
    const l = limit < 0 ? 0 : limit > kMaxConcurrencyLimit ? kMaxConcurrencyLimit : limit | 0;
    Atomics.store(this.i32, this.base(u) + kControlWordInt32, (l << kLimitShift) | (state & kBreakerStateMask));
  }

  /** Set before the state turns Open, so a worker that sees Open reads its time. */
  writeOpenUntil(u: number, epochMs: number): void {
    this.f64[this.base(u) / 2 + kControlOpenUntilF64Word] = epochMs;
  }

  /** Set before the state turns HalfOpen (or to 0 before it leaves). */
  setProbePermits(u: number, n: number): void {
    Atomics.store(this.i32, this.base(u) + kControlProbePermitsInt32, n);
  }

  /** Worker `w` has ended: take back the requests it still counted in flight. Returns them per upstream slot. */
  releaseWorker(w: number): { upstream: number; count: number }[] {
    const out: { upstream: number; count: number }[] = [];
    for (let u = 0; u < this.maxUpstreams; u++) {
      const i = ledgerInt32Offset(this.shm.layout, w, u) + kLedgerAdmittedInt32;
      const v = Atomics.load(this.i32, i);
      if (v === 0) continue;
      Atomics.sub(this.i32, this.base(u) + kControlInFlightInt32, v);
      Atomics.store(this.i32, i, 0);
      out.push({ upstream: u, count: v });
    }
    return out;
  }

  // ---- either side --------------------------------------------------------------------

  word(u: number): number {
    return Atomics.load(this.i32, this.base(u) + kControlWordInt32);
  }

  openUntil(u: number): number {
    return this.f64[this.base(u) / 2 + kControlOpenUntilF64Word]!;
  }

  probePermits(u: number): number {
    return Atomics.load(this.i32, this.base(u) + kControlProbePermitsInt32);
  }

  inFlight(u: number): number {
    return Atomics.load(this.i32, this.base(u) + kControlInFlightInt32);
  }

  /** Worker `w`'s counters for upstream `u` (the primary sums deltas of these per tick). */
  outcomes(w: number, u: number, into: UpstreamOutcomes): UpstreamOutcomes {
    const b = ledgerInt32Offset(this.shm.layout, w, u);
    const i32 = this.i32;
    into.attempts = Atomics.load(i32, b + kLedgerAttemptsInt32) >>> 0;
    into.failures = Atomics.load(i32, b + kLedgerFailuresInt32) >>> 0;
    into.slow = Atomics.load(i32, b + kLedgerSlowInt32) >>> 0;
    into.probeSuccesses = Atomics.load(i32, b + kLedgerProbeSuccessesInt32) >>> 0;
    into.probeFailures = Atomics.load(i32, b + kLedgerProbeFailuresInt32) >>> 0;
    into.circuitOpen = Atomics.load(i32, b + kLedgerCircuitOpenInt32) >>> 0;
    into.fallback = Atomics.load(i32, b + kLedgerFallbackInt32) >>> 0;
    into.shed = Atomics.load(i32, b + kLedgerShedInt32) >>> 0;
    for (let p = 0; p < 4; p++) into.shedByPriority[p] = Atomics.load(i32, b + kLedgerShedByPriorityInt32 + p) >>> 0;
    into.admitted = Atomics.load(i32, b + kLedgerAdmittedInt32);
    return into;
  }

  /** Adds worker `w`'s latency histogram for upstream `u` into `into` (totals; the caller takes deltas). */
  readLatency(w: number, u: number, into: Float64Array): void {
    const b = ledgerInt32Offset(this.shm.layout, w, u) + kLedgerLatencyInt32;
    for (let i = 0; i < kLatencyBuckets; i++) into[i] = Atomics.load(this.i32, b + i) >>> 0;
  }
}

/**
 * A worker's handle on one upstream's control words and its own ledger counters:
 * every method is a few loads and stores at precomputed indices, no allocation.
 */
export class UpstreamGuardWords {
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly wordI: number;
  private readonly openUntilF: number;
  private readonly permitsI: number;
  private readonly inFlightI: number;
  /** this worker's ledger header for the upstream, -1 without a worker slot (no counting) */
  private readonly ledgerI: number;

  constructor(shm: SharedState, u: number, workerSlot: number) {
    this.i32 = shm.i32;
    this.f64 = shm.f64;
    const b = controlInt32Offset(shm.layout, u);
    this.wordI = b + kControlWordInt32;
    this.openUntilF = b / 2 + kControlOpenUntilF64Word;
    this.permitsI = b + kControlProbePermitsInt32;
    this.inFlightI = b + kControlInFlightInt32;
    this.ledgerI = workerSlot >= 0 ? ledgerInt32Offset(shm.layout, workerSlot, u) : -1;
  }

  /** The control word: one load per request. */
  word(): number {
    return Atomics.load(this.i32, this.wordI);
  }

  openUntil(): number {
    return this.f64[this.openUntilF]!;
  }

  /** Takes one half-open probe permit; exactly as many succeed, over all workers, as the primary granted. */
  takeProbe(): boolean {
    const i32 = this.i32;
    for (;;) {
      const p = Atomics.load(i32, this.permitsI);
      if (p <= 0) return false;
      if (Atomics.compareExchange(i32, this.permitsI, p, p - 1) === p) return true;
    }
  }

  /** A probe ended without a verdict (client gone, no endpoint): another request may probe instead. */
  returnProbe(): void {
    Atomics.add(this.i32, this.permitsI, 1);
  }

  /** Counts a request in flight if that keeps the upstream within `limit`; false = shed. */
  admit(limit: number): boolean {
    const prev = Atomics.add(this.i32, this.inFlightI, 1);
    if (prev >= limit) {
      Atomics.sub(this.i32, this.inFlightI, 1);
      return false;
    }
    if (this.ledgerI >= 0) this.i32[this.ledgerI + kLedgerAdmittedInt32]! += 1;
    return true;
  }

  /** An `admit`ted request finished. */
  leave(): void {
    Atomics.sub(this.i32, this.inFlightI, 1);
    if (this.ledgerI >= 0) this.i32[this.ledgerI + kLedgerAdmittedInt32]! -= 1;
  }

  /** An attempt got its verdict: `failed` (5xx or no response), `slow` (over slowCall.duration), `latencyUs` to the response head. */
  record(failed: boolean, slow: boolean, latencyUs: number): void {
    const l = this.ledgerI;
    if (l < 0) return;
    const i32 = this.i32;
    i32[l + kLedgerAttemptsInt32]! += 1;
    if (failed) i32[l + kLedgerFailuresInt32]! += 1;
    if (slow) i32[l + kLedgerSlowInt32]! += 1;
    i32[l + kLedgerLatencyInt32 + latencyBucket(latencyUs)]! += 1;
  }

  recordProbe(failed: boolean): void {
    if (this.ledgerI >= 0) this.i32[this.ledgerI + (failed ? kLedgerProbeFailuresInt32 : kLedgerProbeSuccessesInt32)]! += 1;
  }

  countCircuitOpen(): void {
    if (this.ledgerI >= 0) this.i32[this.ledgerI + kLedgerCircuitOpenInt32]! += 1;
  }

  countFallback(): void {
    if (this.ledgerI >= 0) this.i32[this.ledgerI + kLedgerFallbackInt32]! += 1;
  }

  countShed(priority: number): void {
    const l = this.ledgerI;
    if (l < 0) return;
    this.i32[l + kLedgerShedInt32]! += 1;
    this.i32[l + kLedgerShedByPriorityInt32 + priority]! += 1;
  }
}
