// The circuit breaker of one upstream, as a pure step function: (config, last state,
// this tick's inputs) → (new state, control words to write, decisions). The scheduler
// (scheduler.ts) owns the timer and the shared memory; this file owns the rules.
//
//   closed ──(over `window`, ≥ minRequests: failure rate ≥ threshold, or slow-call rate ≥ slowCall.rate)──▶ open
//   open ──(openFor elapsed; openFor doubles per consecutive trip, capped at maxOpenFor)──▶ half-open
//   half-open ──(all halfOpenRequests probes succeed)──▶ closed
//   half-open ──(one probe fails)──▶ open (longer)
//
// Adaptive threshold: the failure rate that trips moves between adaptive.maxFailureRate
// (gateway idle) and adaptive.minFailureRate (gateway busy) with the workers' event-loop
// utilisation, smoothed, and changes only by at least adaptive.hysteresis points, so a
// load that hovers does not make the threshold (and its log) chatter.
import { z } from 'zod';
import { durationMs, percent } from '../units/zod-units.js';
import { BreakerState } from '../shm/layout.js';
import { round, type DecisionEvent } from './decision.js';

const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected a header name');

export const breakerSchema = z
  .strictObject({
    window: durationMs.default(10_000),
    minRequests: z.number().int().min(1).max(1_000_000).default(20),
    failureRate: percent.default(50),
    slowCall: z.strictObject({ duration: durationMs, rate: percent.default(100) }).optional(),
    openFor: durationMs.default(5_000),
    maxOpenFor: durationMs.default(60_000),
    halfOpenRequests: z.number().int().min(1).max(10_000).default(3),
    adaptive: z
      .strictObject({
        minFailureRate: percent,
        maxFailureRate: percent,
        /** event-loop utilisation (0–1) at or below which the threshold is maxFailureRate */
        idleUtilization: z.number().min(0).max(1).default(0.3),
        /** … and at or above which it is minFailureRate */
        busyUtilization: z.number().min(0).max(1).default(0.8),
        /** percentage points the threshold must move before it changes */
        hysteresis: z.number().min(0).max(100).default(5),
      })
      .refine((a) => a.minFailureRate <= a.maxFailureRate, { message: 'minFailureRate must not exceed maxFailureRate', path: ['minFailureRate'] })
      .refine((a) => a.idleUtilization < a.busyUtilization, { message: 'idleUtilization must be below busyUtilization', path: ['idleUtilization'] })
      .optional(),
    fallback: z
      .union([
        z.strictObject({ upstream: z.string().min(1) }),
        z.strictObject({
          status: z.number().int().min(200).max(599),
          body: z.string().max(64 * 1024).default(''),
          headers: z.record(headerName, z.string()).default({}),
        }),
      ])
      .optional(),
  })
  .refine((b) => b.openFor <= b.maxOpenFor, { message: 'openFor must not exceed maxOpenFor', path: ['openFor'] });

export type BreakerConfig = z.output<typeof breakerSchema>;

/** Cross-section check on the raw config: a fallback upstream must exist and not be the upstream itself. */
export function fallbackIssues(upstreams: unknown): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  if (typeof upstreams !== 'object' || upstreams === null) return out;
  const names = Object.keys(upstreams);
  for (const [name, u] of Object.entries(upstreams as Record<string, unknown>)) {
    const fb = (u as { breaker?: { fallback?: { upstream?: unknown } } } | null)?.breaker?.fallback?.upstream;
    if (typeof fb !== 'string') continue;
    const path = ['upstreams', name, 'breaker', 'fallback', 'upstream'];
    if (fb === name) out.push({ path, message: 'an upstream cannot be its own fallback' });
    else if (!names.includes(fb)) out.push({ path, message: `unknown upstream "${fb}" (known: ${names.join(', ')})` });
  }
  return out;
}

export type BreakerStateName = 'closed' | 'open' | 'half-open';

export interface BreakerControllerState {
  readonly state: BreakerStateName;
  /** ring of per-tick [attempts, failures, slow] over the window */
  readonly ring: Float64Array;
  readonly head: number;
  /** consecutive trips (sets the next openFor) */
  readonly trips: number;
  /** Date.now() ms: when the state was entered */
  readonly since: number;
  readonly openUntil: number;
  readonly openForMs: number;
  readonly probeSuccesses: number;
  readonly probeFailures: number;
  /** smoothed event-loop utilisation of the workers */
  readonly elu: number;
  /** the failure rate (percent) that trips now */
  readonly threshold: number;
  readonly transitions: number;
}

export interface BreakerInputs {
  /** Date.now() ms */
  readonly now: number;
  /** deltas this tick, summed over workers */
  readonly attempts: number;
  readonly failures: number;
  readonly slow: number;
  readonly probeSuccesses: number;
  readonly probeFailures: number;
  /** mean event-loop utilisation of the workers over the tick (0–1) */
  readonly elu: number;
}

/** What to write: breaker state, the open-until time (before Open) and probe permits (before HalfOpen). */
export interface BreakerWrite {
  readonly state: BreakerState;
  readonly openUntil: number;
  readonly permits: number;
}

export interface BreakerStep {
  readonly state: BreakerControllerState;
  readonly write: BreakerWrite | null;
  readonly events: DecisionEvent[];
}

/** Smoothing of the utilisation input per tick (about a second at 200 ms ticks). */
const ELU_ALPHA = 0.2;

export function initialBreakerState(cfg: BreakerConfig, tickMs: number, now: number): BreakerControllerState {
  const buckets = Math.max(1, Math.ceil(cfg.window / tickMs));
  return {
    state: 'closed',
    ring: new Float64Array(buckets * 3),
    head: 0,
    trips: 0,
    since: now,
    openUntil: 0,
    openForMs: cfg.openFor,
    probeSuccesses: 0,
    probeFailures: 0,
    elu: 0,
    threshold: cfg.adaptive ? cfg.adaptive.maxFailureRate : cfg.failureRate,
    transitions: 0,
  };
}

/** Window sums of the ring: [attempts, failures, slow]. */
export function windowSums(ring: Float64Array): [number, number, number] {
  let a = 0;
  let f = 0;
  let s = 0;
  for (let i = 0; i < ring.length; i += 3) {
    a += ring[i]!;
    f += ring[i + 1]!;
    s += ring[i + 2]!;
  }
  return [a, f, s];
}

export function breakerStep(upstream: string, cfg: BreakerConfig, prev: BreakerControllerState, inp: BreakerInputs): BreakerStep {
  const events: DecisionEvent[] = [];
  const now = inp.now;
  // Adaptive threshold first: it applies to this tick's decision.
  const elu = prev.elu + ELU_ALPHA * (inp.elu - prev.elu);
  let threshold = prev.threshold;
  const a = cfg.adaptive;
  if (a) {
    const t = Math.min(1, Math.max(0, (elu - a.idleUtilization) / (a.busyUtilization - a.idleUtilization)));
    const target = round(a.maxFailureRate - t * (a.maxFailureRate - a.minFailureRate), 1);
    const atBound = target === a.minFailureRate || target === a.maxFailureRate;
    if (target !== threshold && (Math.abs(target - threshold) >= a.hysteresis || atBound)) {
      events.push({
        event: 'breaker-threshold',
        level: 'info',
        msg: `upstream ${upstream}: breaker trips at ${target}% failures now (was ${threshold}%), workers' event-loop utilisation ${round(elu * 100, 0)}%`,
        fields: { upstream, from: threshold, to: target, elu: round(elu, 3), idleUtilization: a.idleUtilization, busyUtilization: a.busyUtilization, minFailureRate: a.minFailureRate, maxFailureRate: a.maxFailureRate },
      });
      threshold = target;
    }
  }
  let s: BreakerControllerState = { ...prev, elu, threshold };
  let write: BreakerWrite | null = null;

  const trip = (reason: string, extra: Record<string, string | number | boolean | null>): void => {
    const trips = s.trips + 1;
    const openForMs = Math.min(cfg.maxOpenFor, cfg.openFor * 2 ** (trips - 1));
    const openUntil = now + openForMs;
    events.push({
      event: 'breaker-opened',
      level: 'warn',
      msg: `upstream ${upstream}: breaker opened (${reason}); half-open in ${openForMs} ms`,
      fields: { upstream, from: s.state, to: 'open', reason, ...extra, openForMs, trips },
    });
    s = { ...s, state: 'open', ring: new Float64Array(s.ring.length), head: 0, trips, since: now, openUntil, openForMs, probeSuccesses: 0, probeFailures: 0, transitions: s.transitions + 1 };
    write = { state: BreakerState.Open, openUntil, permits: 0 };
  };

  switch (prev.state) {
    case 'closed': {
      const ring = prev.ring.slice();
      const head = (prev.head + 3) % ring.length;
      ring[head] = inp.attempts;
      ring[head + 1] = inp.failures;
      ring[head + 2] = inp.slow;
      // A healthy period as long as the longest open time forgets earlier trips.
      const trips = prev.trips > 0 && now - prev.since >= cfg.maxOpenFor ? 0 : prev.trips;
      s = { ...s, ring, head, trips };
      const [attempts, failures, slow] = windowSums(ring);
      if (attempts >= cfg.minRequests) {
        const failureRate = (failures / attempts) * 100;
        const slowRate = (slow / attempts) * 100;
        const common = { attempts, failures, slow, failureRate: round(failureRate, 1), slowRate: round(slowRate, 1), threshold, windowMs: cfg.window, minRequests: cfg.minRequests, elu: round(elu, 3) };
        if (failureRate >= threshold) trip(`failure rate ${round(failureRate, 1)}% ≥ ${threshold}% over ${attempts} requests`, common);
        else if (cfg.slowCall && slowRate >= cfg.slowCall.rate) trip(`slow-call rate ${round(slowRate, 1)}% ≥ ${cfg.slowCall.rate}% (over ${cfg.slowCall.duration} ms) over ${attempts} requests`, { ...common, slowCallMs: cfg.slowCall.duration, slowCallRate: cfg.slowCall.rate });
      }
      break;
    }
    case 'open':
      if (now >= prev.openUntil) {
        events.push({
          event: 'breaker-half-open',
          level: 'info',
          msg: `upstream ${upstream}: breaker half-open, admitting ${cfg.halfOpenRequests} probe requests`,
          fields: { upstream, from: 'open', to: 'half-open', openForMs: prev.openForMs, trips: prev.trips, probes: cfg.halfOpenRequests },
        });
        s = { ...s, state: 'half-open', since: now, probeSuccesses: 0, probeFailures: 0, transitions: s.transitions + 1 };
        write = { state: BreakerState.HalfOpen, openUntil: prev.openUntil, permits: cfg.halfOpenRequests };
      }
      break;
    case 'half-open': {
      const ok = prev.probeSuccesses + inp.probeSuccesses;
      const failed = prev.probeFailures + inp.probeFailures;
      s = { ...s, probeSuccesses: ok, probeFailures: failed };
      if (failed > 0) {
        trip(`${failed} of the half-open probes failed`, { probes: cfg.halfOpenRequests, probeSuccesses: ok, probeFailures: failed });
      } else if (ok >= cfg.halfOpenRequests) {
        events.push({
          event: 'breaker-closed',
          level: 'info',
          msg: `upstream ${upstream}: breaker closed, ${ok} probe requests succeeded`,
          fields: { upstream, from: 'half-open', to: 'closed', probes: cfg.halfOpenRequests, probeSuccesses: ok, trips: prev.trips },
        });
        s = { ...s, state: 'closed', ring: new Float64Array(prev.ring.length), head: 0, since: now, transitions: s.transitions + 1 };
        write = { state: BreakerState.Closed, openUntil: 0, permits: 0 };
      }
      break;
    }
  }
  return { state: s, write, events };
}

export const breakerStateCode: Record<BreakerStateName, BreakerState> = { closed: BreakerState.Closed, open: BreakerState.Open, 'half-open': BreakerState.HalfOpen };
