// Worker-thread scaling as a pure step function. Each tick it sees the serving workers'
// mean event-loop utilisation and asks for one thread more or one fewer, never both
// and never while a thread is still starting or draining:
// * add: utilisation at or above `target` for `addAfter`, below `max`;
// * retire: utilisation at or below `release` for `retireAfter`, above `min`, and the
//   load the remaining threads would carry (utilisation × n / (n − 1)) below `target`,
//   so a retire never sets up the next add.
// After a change (once the new thread serves or the old one is gone) nothing moves for
// `cooldown`, and the dwell timers restart. Utilisation is smoothed over about a
// second first (one 200 ms tick of a loaded machine can dip or spike on its own): the gap between target and release, the
// dwell and the cool-down are the hysteresis that keeps a steady load from flapping.
import type { WorkerScalingConfig } from '../config/schema-workers.js';
import { round, type DecisionEvent } from './decision.js';

/** time constant of the utilisation smoothing, ms */
export const kWorkerEluSmoothingMs = 1_000;

export interface WorkerScaleState {
  /** smoothed utilisation (0–1); null before the first tick */
  readonly elu: number | null;
  readonly at: number;
  /** Date.now() ms since utilisation has stayed at or above target; null when it is not */
  readonly hotSince: number | null;
  /** since when it has stayed low enough to retire; null when it is not */
  readonly coldSince: number | null;
  /** the last change completed (or the start): the cool-down counts from here */
  readonly settledAt: number;
  readonly adds: number;
  readonly retires: number;
}

export interface WorkerScaleInputs {
  readonly now: number;
  /** mean event-loop utilisation (0–1) of the serving workers since the previous tick */
  readonly elu: number;
  /** threads listening and not retiring */
  readonly serving: number;
  /** threads starting (added, not yet listening) or retiring (draining) */
  readonly changing: number;
}

export type WorkerScaleAction = 'add' | 'retire' | null;

export function initialWorkerScale(now: number): WorkerScaleState {
  return { elu: null, at: now, hotSince: null, coldSince: null, settledAt: now, adds: 0, retires: 0 };
}

/** A change finished (the added thread listens, the retired one is gone): the cool-down starts now. */
export function workerScaleSettled(s: WorkerScaleState, now: number): WorkerScaleState {
  // The smoothed value described the old thread count.
  return { ...s, elu: null, hotSince: null, coldSince: null, settledAt: now };
}

export function workerScaleStep(cfg: WorkerScalingConfig, s: WorkerScaleState, inp: WorkerScaleInputs): { state: WorkerScaleState; action: WorkerScaleAction; event: DecisionEvent | null } {
  const { now, serving } = inp;
  // Utilisation measured while a thread starts or drains, or right after, describes
  // the old thread count: it decides nothing and starts no dwell.
  if (inp.changing > 0 || now - s.settledAt < cfg.cooldown || serving === 0) {
    return { state: { ...s, elu: null, at: now, hotSince: null, coldSince: null }, action: null, event: null };
  }
  const elu = s.elu === null ? inp.elu : s.elu + (inp.elu - s.elu) * (1 - Math.exp(-(now - s.at) / kWorkerEluSmoothingMs));
  const pct = elu * 100;
  const remaining = serving > 1 ? (pct * serving) / (serving - 1) : Infinity;
  const hot = pct >= cfg.target && serving < cfg.max;
  const cold = !hot && pct <= cfg.release && serving > cfg.min && remaining < cfg.target;
  const hotSince = hot ? (s.hotSince ?? now) : null;
  const coldSince = cold ? (s.coldSince ?? now) : null;
  const next = { ...s, elu, at: now, hotSince, coldSince };
  const fields = { eventLoopUtilization: round(elu, 3), target: cfg.target / 100, release: cfg.release / 100, min: cfg.min, max: cfg.max };
  if (hotSince !== null && now - hotSince >= cfg.addAfter) {
    return {
      state: { ...next, hotSince: null, adds: s.adds + 1 },
      action: 'add',
      event: {
        event: 'worker-scale-up',
        level: 'warn',
        msg: `workers' event-loop utilisation ${round(pct, 1)} % ≥ ${cfg.target} % for ${Math.round((now - hotSince) / 100) / 10} s: adding a worker thread (${serving} → ${serving + 1} of at most ${cfg.max})`,
        fields: { ...fields, from: serving, to: serving + 1, heldMs: now - hotSince },
      },
    };
  }
  if (coldSince !== null && now - coldSince >= cfg.retireAfter) {
    return {
      state: { ...next, coldSince: null, retires: s.retires + 1 },
      action: 'retire',
      event: {
        event: 'worker-scale-down',
        level: 'info',
        msg: `workers' event-loop utilisation ${round(pct, 1)} % ≤ ${cfg.release} % for ${Math.round((now - coldSince) / 100) / 10} s (${round(remaining, 1)} % on ${serving - 1}): retiring a worker thread (${serving} → ${serving - 1}, at least ${cfg.min})`,
        fields: { ...fields, from: serving, to: serving - 1, heldMs: now - coldSince, utilizationAfter: round(remaining / 100, 3) },
      },
    };
  }
  return { state: next, action: null, event: null };
}
