// Predictive input to the adaptive concurrency limit, as a pure step: when the
// upstream's request-rate forecast (src/metrics/forecast.ts, `observability.forecast`)
// says a surge is coming, the limit's floor is raised ahead of it to what the forecast
// rate needs by Little's law (forecast rate × minRTT × (1 + buffer)), so the first
// seconds of the surge are not refused while the gradient ramps up.
//
// Bounded three ways: the floor is at most `maxStep` × the limit when it was raised and
// never above `max`; it lasts at most `holdFor`; and after a release it is raised again
// only once the forecast has first dropped back under the surge threshold (a forecast
// that is wrong keeps being wrong for a whole refit interval). The gradient still runs
// above the floor; the floor only keeps it from falling below while the surge is due.
import { z } from 'zod';
import { durationMs, percent } from '../units/zod-units.js';
import { round, type DecisionEvent } from './decision.js';

const predictiveObject = z.strictObject({
  /** how far the forecast must exceed the current request rate to count as a surge */
  surge: percent.default(25),
  /** the raised floor is at most this multiple of the limit when it was raised */
  maxStep: z.number().gt(1).max(100).default(2),
  /** longest a raised floor holds */
  holdFor: durationMs.default(60_000),
});

export type PredictiveConfig = z.output<typeof predictiveObject>;

/** `predictive: true` (the defaults), `false` (off, the default) or the settings. */
export const predictiveSchema = z
  .union([z.boolean(), predictiveObject])
  .default(false)
  .transform((v): PredictiveConfig | null => (v === false ? null : v === true ? predictiveObject.parse({}) : v));

export interface PredictiveState {
  /** the floor in force (0: none) */
  readonly floor: number;
  /** Date.now() ms when the floor was raised */
  readonly since: number;
  /** false after a release until the forecast has dropped under the surge threshold once */
  readonly armed: boolean;
  /** the inputs last seen, for /status */
  readonly rate: number;
  readonly forecast: number | null;
}

export interface PredictiveInputs {
  readonly now: number;
  /** requests per second the upstream got over the last snapshot interval */
  readonly rate: number;
  /** forecast requests per second `horizonS` ahead; null when there is none yet */
  readonly forecast: number | null;
  readonly horizonS: number;
  /** the concurrency controller's minRTT (0: not measured yet) and buffer */
  readonly minRttUs: number;
  readonly bufferPct: number;
  /** the limit workers see now, and the controller's bounds */
  readonly limit: number;
  readonly max: number;
}

export interface PredictiveStep {
  readonly state: PredictiveState;
  readonly events: DecisionEvent[];
}

export function initialPredictiveState(): PredictiveState {
  return { floor: 0, since: 0, armed: true, rate: 0, forecast: null };
}

export function predictiveStep(upstream: string, cfg: PredictiveConfig, prev: PredictiveState, inp: PredictiveInputs): PredictiveStep {
  const events: DecisionEvent[] = [];
  const { now, rate, forecast } = inp;
  const surgeAt = rate * (1 + cfg.surge / 100);
  const surging = forecast !== null && rate > 0 && forecast >= surgeAt && inp.minRttUs > 0;
  const fields = { upstream, requestRate: round(rate, 1), forecast: forecast === null ? null : round(forecast, 1), horizonS: inp.horizonS, surgePct: cfg.surge, minRttMs: round(inp.minRttUs / 1000) };
  let s: PredictiveState = { ...prev, rate, forecast };

  if (prev.floor > 0) {
    const expired = now - prev.since >= cfg.holdFor;
    if (surging && !expired) return { state: s, events };
    const why = expired ? `held ${round((now - prev.since) / 1000, 1)} s (holdFor)` : `forecast ${fields.forecast}/s no longer ${cfg.surge} % over ${fields.requestRate}/s`;
    events.push({
      event: 'concurrency-predictive-released',
      level: 'info',
      msg: `upstream ${upstream}: predictive concurrency floor ${prev.floor} released (${why})`,
      fields: { ...fields, floor: prev.floor, heldMs: now - prev.since, expired },
    });
    s = { ...s, floor: 0, since: 0, armed: !surging };
    return { state: s, events };
  }

  if (!surging) return { state: { ...s, armed: true }, events };
  if (!prev.armed) return { state: s, events };
  // Little's law: the requests in flight the forecast rate needs at minRTT, with the buffer.
  const needed = forecast * (inp.minRttUs / 1e6) * (1 + inp.bufferPct / 100);
  const floor = Math.min(Math.ceil(needed), Math.floor(inp.limit * cfg.maxStep), inp.max);
  if (floor <= inp.limit) return { state: s, events };
  events.push({
    event: 'concurrency-predictive',
    level: 'info',
    msg: `upstream ${upstream}: forecast ${fields.forecast}/s in ${inp.horizonS} s against ${fields.requestRate}/s now; concurrency floor ${inp.limit} → ${floor} (needs ${round(needed, 1)} at minRTT ${fields.minRttMs} ms)`,
    fields: { ...fields, needed: round(needed, 1), from: inp.limit, to: floor, capped: floor < Math.ceil(needed), maxStep: cfg.maxStep, holdForMs: cfg.holdFor },
  });
  s = { ...s, floor, since: now, armed: false };
  return { state: s, events };
}
