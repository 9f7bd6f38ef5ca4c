// Admission to an upstream: its circuit breaker and concurrency limit, as decided by
// the primary's controllers and published in the upstream's control word. Per request
// this is one atomic load (breaker closed, no limit), plus one Atomics.add when a
// concurrency limit is set (against the route priority's share of it); nothing allocates.
import { BreakerState } from '../shm/layout.js';
import { kBreakerStateMask, kLimitShift, UpstreamGuardWords } from '../shm/control-words.js';
import type { SharedState } from '../shm/shared-state.js';
import type { WorkerFallback, WorkerGuard } from '../messages.js';

export const enum Admission {
  /** go ahead; nothing to undo */
  Pass = 0,
  /** go ahead, counted in the shared in-flight word: `leave()` when done */
  Counted = 1,
  /** go ahead as a half-open probe: report its verdict (or return the permit) */
  Probe = 2,
  /** breaker open (or half-open and every probe taken) */
  Open = 3,
  /** over the concurrency limit */
  Shed = 4,
}

const retryAfter: (readonly string[])[] = [];

/** ['retry-after', n] for whole seconds, built once per value. */
export function retryAfterSeconds(n: number): readonly string[] {
  const s = n < 1 ? 1 : n > 3600 ? 3600 : Math.ceil(n);
  let h = retryAfter[s];
  if (h === undefined) retryAfter[s] = h = ['retry-after', String(s)];
  return h;
}

export class UpstreamGuard {
  readonly words: UpstreamGuardWords;
  readonly slowCallUs: number;
  readonly fallback: WorkerFallback | null;
  /** by Priority: the fraction of the limit requests of that priority may fill */
  private readonly shares = new Float64Array(4);

  constructor(cfg: WorkerGuard, shm: SharedState, slot: number, workerSlot: number) {
    this.words = new UpstreamGuardWords(shm, slot, workerSlot);
    this.slowCallUs = cfg.slowCallUs;
    this.fallback = cfg.fallback;
    this.shares.set(cfg.shares);
  }

  /** `priority`: the route's Priority (0 critical … 3 low). */
  admit(priority: number): Admission {
    const w = this.words.word();
    if (w === 0) return Admission.Pass;
    const state = w & kBreakerStateMask;
    if (state !== BreakerState.Closed) {
      if (state === BreakerState.Open || !this.words.takeProbe()) {
        this.words.countCircuitOpen();
        return Admission.Open;
      }
      // A probe is admitted whatever the concurrency limit says: it is what decides
      // whether the upstream gets traffic again at all.
      return Admission.Probe;
    }
    const limit = w >>> kLimitShift;
    if (limit === 0) return Admission.Pass;
    // Each priority compares the one shared in-flight count with its own share of the
    // limit: at the limit the lowest are refused first, critical only at the whole of it.
    let threshold = (limit * this.shares[priority]!) | 0;
    if (threshold < 1) threshold = 1;
    if (this.words.admit(threshold)) return Admission.Counted;
    this.words.countShed(priority);
    return Admission.Shed;
  }

  /** Retry-After for a refusal while open: whole seconds until the breaker turns half-open, at least 1. */
  openRetryAfter(): readonly string[] {
    const state = this.words.word() & kBreakerStateMask;
    if (state !== BreakerState.Open) return retryAfterSeconds(1);
    return retryAfterSeconds((this.words.openUntil() - Date.now()) / 1000);
  }

  /** An attempt's verdict (`status` 0: no response) and its time to the response head. */
  record(status: number, latencyMs: number): void {
    const us = latencyMs * 1000;
    this.words.record(status === 0 || status >= 500, this.slowCallUs > 0 && us >= this.slowCallUs, us | 0);
  }
}
