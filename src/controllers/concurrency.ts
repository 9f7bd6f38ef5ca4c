// Adaptive concurrency of one upstream, as a pure step function, after Envoy's adaptive
// concurrency filter (gradient controller) with Netflix Gradient2's guards:
//
// * minRTT: now and then (every minRttInterval ± minRttJitter) the limit is pinned to
//   `min` until minRttRequests responses have been seen; their percentile is the
//   upstream's latency without queueing.
// * every tick with enough samples: sampleRTT = the percentile of this tick's response
//   times; gradient = clamp((minRTT × (1 + buffer)) / sampleRTT, 0.5, 2);
//   target = gradient × limit + √(gradient × limit) (the headroom lets it probe upwards;
//   none while requests are refused with the gradient below 1; while requests are
//   refused, half the buffer);
//   limit ← limit + smoothing × (target − limit), within [min, max] — the whole step
//   at once while requests are refused and responses come back at minRTT (the ramp).
// * it does not move while fewer than half the limit are in flight and nothing is shed
//   (the limit is not what holds traffic back, so a larger one proves nothing, and a
//   smaller one would only follow latency noise).
// * minRTT also follows any tick whose sample is lower (a measurement taken in a slow
//   moment would otherwise hold the limit down until the next one).
// * the limit workers see (the control word) moves only when the smoothed value is
//   at least 10 % (and 1) away from it: a steady load writes nothing and logs nothing.
//
// Latency comes from per-worker histograms in shared memory (4 buckets per octave,
// counted by each worker with a plain increment) rather than the HDR snapshots the
// metrics use: the controller needs this tick's samples now, and a snapshot arrives
// on its own interval, through a message and a merge on another thread.
import { z } from 'zod';
import { durationMs, percent } from '../units/zod-units.js';
import { kLatencyBuckets, latencyBucketFloor } from '../shm/layout.js';
import { round, type DecisionEvent } from './decision.js';
import { predictiveSchema } from './predictive.js';

export const concurrencySchema = z
  .strictObject({
    /** `adaptive`, or a fixed number of requests in flight to the upstream (all workers) */
    limit: z.union([z.literal('adaptive'), z.number().int().min(1).max(1_000_000)]).default('adaptive'),
    min: z.number().int().min(1).max(1_000_000).default(3),
    max: z.number().int().min(1).max(1_000_000).default(1000),
    /** which percentile of response times the gradient compares */
    percentile: percent.default(50),
    /** latency above minRTT tolerated before the limit shrinks */
    buffer: percent.default(25),
    smoothing: z.number().gt(0).max(1).default(0.2),
    minRttInterval: durationMs.default(30_000),
    minRttJitter: percent.default(15),
    minRttRequests: z.number().int().min(1).max(100_000).default(50),
    /** a tick with fewer responses than this carries over to the next */
    minSamples: z.number().int().min(1).max(100_000).default(10),
    /**
     * the share of the limit each route priority may fill (critical: all of it); the
     * rest is kept for the priorities above, so at the limit the lowest are shed first
     */
    shares: z
      .strictObject({ high: percent.default(90), normal: percent.default(80), low: percent.default(50) })
      .prefault({})
      .refine((s) => s.low <= s.normal && s.normal <= s.high, { message: 'shares must not grow towards lower priorities (low ≤ normal ≤ high)', path: ['low'] }),
    /** raise the limit's floor ahead of a surge the request-rate forecast predicts (src/controllers/predictive.ts); off by default */
    predictive: predictiveSchema,
  })
  .refine((c) => c.min <= c.max, { message: 'min must not exceed max', path: ['min'] });

/** Fractions of the limit by Priority (critical first), as workers apply them. */
export function priorityShares(cfg: ConcurrencyConfig | undefined): number[] {
  if (cfg === undefined) return [1, 1, 1, 1];
  return [1, cfg.shares.high / 100, cfg.shares.normal / 100, cfg.shares.low / 100];
}

export type ConcurrencyConfig = z.output<typeof concurrencySchema>;

export type ConcurrencyPhase = 'min-rtt' | 'sampling';

export interface ConcurrencyState {
  readonly phase: ConcurrencyPhase;
  /** smoothed limit */
  readonly limit: number;
  /** what workers see (the control word) */
  readonly written: number;
  readonly minRttUs: number;
  readonly sampleRttUs: number;
  readonly gradient: number;
  /** Date.now() ms of the next minRTT measurement */
  readonly nextMinRttAt: number;
  readonly phaseSince: number;
  /** latency samples gathered and not yet used (a tick below minSamples, or the minRTT window) */
  readonly pending: Float64Array;
  readonly changes: number;
  /** direction of the last write: -1, 1, or 0 before any since the last minRTT measurement (hysteresis) */
  readonly lastDir: number;
}

export interface ConcurrencyInputs {
  readonly now: number;
  /** this tick's response-time histogram deltas, summed over workers (kLatencyBuckets) */
  readonly latency: Float64Array;
  /** requests in flight to the upstream now (the shared word) */
  readonly inFlight: number;
  /** requests shed this tick */
  readonly shed: number;
  /** uniform in [0, 1): the jitter of the next minRTT measurement (passed in to keep this pure) */
  readonly random: number;
  /** a raised floor (predictive input), 0 or absent for none: the limit stays at or above it while sampling */
  readonly floor?: number;
}

export interface ConcurrencyStep {
  readonly state: ConcurrencyState;
  /** the limit to write, or null when unchanged */
  readonly write: number | null;
  readonly events: DecisionEvent[];
}

/** A fixed limit: what to write, no controller. */
export function fixedLimit(cfg: ConcurrencyConfig): number | null {
  return cfg.limit === 'adaptive' ? null : cfg.limit;
}

/**
 * How far above the measured minRTT a sample may be and still count as "no queueing"
 * for the ramp, and how far below it (about one histogram bucket: 4 per octave).
 */
const RAMP_ABOVE = 0.05;
const RAMP_BELOW = 0.15;

/** Longest the minRTT window waits for its requests before measuring with what it has. */
const MIN_RTT_TIMEOUT_MS = 5_000;

export function initialConcurrencyState(cfg: ConcurrencyConfig, now: number): ConcurrencyState {
  return { phase: 'min-rtt', limit: cfg.min, written: cfg.min, minRttUs: 0, sampleRttUs: 0, gradient: 1, nextMinRttAt: now, phaseSince: now, pending: new Float64Array(kLatencyBuckets), changes: 0, lastDir: 0 };
}

/** The `p`th percentile (0–100) of a bucket histogram, interpolated inside the bucket; 0 when empty. */
export function histogramPercentile(h: Float64Array, p: number): number {
  let total = 0;
  for (let i = 0; i < h.length; i++) total += h[i]!;
  if (total === 0) return 0;
  const rank = (p / 100) * total;
  let seen = 0;
  for (let i = 0; i < h.length; i++) {
    const c = h[i]!;
    if (c === 0) continue;
    if (seen + c >= rank) {
      const lo = latencyBucketFloor(i);
      const hi = i + 1 < kLatencyBuckets ? latencyBucketFloor(i + 1) : lo * 1.25;
      return lo + (hi - lo) * Math.min(1, Math.max(0, (rank - seen) / c));
    }
    seen += c;
  }
  return latencyBucketFloor(h.length - 1);
}

function count(h: Float64Array): number {
  let n = 0;
  for (let i = 0; i < h.length; i++) n += h[i]!;
  return n;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

export function concurrencyStep(upstream: string, cfg: ConcurrencyConfig, prev: ConcurrencyState, inp: ConcurrencyInputs): ConcurrencyStep {
  const events: DecisionEvent[] = [];
  const now = inp.now;
  const pending = prev.pending.slice();
  for (let i = 0; i < pending.length; i++) pending[i]! += inp.latency[i] ?? 0;
  const n = count(pending);
  let s: ConcurrencyState = { ...prev, pending };
  const nextMeasurement = (): number => now + cfg.minRttInterval * (1 + ((inp.random * 2 - 1) * cfg.minRttJitter) / 100);

  if (prev.phase === 'sampling' && now >= prev.nextMinRttAt) {
    events.push({
      event: 'concurrency-min-rtt-start',
      level: 'info',
      msg: `upstream ${upstream}: measuring minRTT at concurrency limit ${cfg.min} (was ${prev.written})`,
      fields: { upstream, from: prev.written, to: cfg.min, minRttMs: round(prev.minRttUs / 1000), minRttRequests: cfg.minRttRequests },
    });
    s = { ...s, phase: 'min-rtt', phaseSince: now, pending: new Float64Array(kLatencyBuckets), written: cfg.min, changes: prev.changes + 1 };
    return { state: s, write: cfg.min, events };
  }

  if (prev.phase === 'min-rtt') {
    if (n < cfg.minRttRequests && !(n > 0 && now - prev.phaseSince >= MIN_RTT_TIMEOUT_MS)) return { state: s, write: null, events };
    const minRttUs = histogramPercentile(pending, cfg.percentile);
    // Resume from the limit it had before measuring, so a periodic measurement costs one window, not a new ramp.
    const limit = clamp(Math.max(prev.limit, cfg.min), cfg.min, cfg.max);
    const written = Math.round(limit);
    events.push({
      event: 'concurrency-min-rtt',
      level: 'info',
      msg: `upstream ${upstream}: minRTT ${round(minRttUs / 1000)} ms over ${n} responses; concurrency limit ${written}`,
      fields: { upstream, minRttMs: round(minRttUs / 1000), samples: n, percentile: cfg.percentile, from: prev.written, to: written },
    });
    s = { ...s, phase: 'sampling', phaseSince: now, minRttUs, limit, written, pending: new Float64Array(kLatencyBuckets), nextMinRttAt: nextMeasurement(), changes: prev.changes + (written !== prev.written ? 1 : 0), lastDir: 0 };
    return { state: s, write: written !== prev.written ? written : null, events };
  }

  const floor = Math.min(cfg.max, Math.max(cfg.min, inp.floor ?? 0));
  if (floor > prev.written) {
    // The predictive floor: the limit goes up to it now, before the surge brings samples.
    events.push({
      event: 'concurrency-limit',
      level: 'info',
      msg: `upstream ${upstream}: concurrency limit ${prev.written} → ${floor} (predictive floor)`,
      fields: { upstream, from: prev.written, to: floor, floor, ramp: false, inFlight: inp.inFlight, shed: inp.shed },
    });
    s = { ...s, limit: Math.max(prev.limit, floor), written: floor, changes: prev.changes + 1 };
    return { state: s, write: floor, events };
  }
  if (n < cfg.minSamples) return { state: s, write: null, events };
  const sampleRttUs = histogramPercentile(pending, cfg.percentile);
  // A tick faster than the measured minRTT means the measurement caught a slow moment
  // (start-up, a busy gateway): the lower figure is the better estimate.
  const minRtt = Math.max(1, sampleRttUs > 0 && sampleRttUs < prev.minRttUs ? sampleRttUs : prev.minRttUs);
  // While requests are refused the upstream is known to be saturated, so the buffer's
  // slack (room for the limit to probe upwards) is not needed: half of it is allowed.
  // What queues at the upstream inside the buffer is what every admitted request,
  // critical ones included, waits behind (25 % of 20 ms at 8 slots ≈ 8 queued).
  const buffer = inp.shed > 0 ? cfg.buffer / 2 : cfg.buffer;
  const gradient = clamp((minRtt * (1 + buffer / 100)) / Math.max(1, sampleRttUs), 0.5, 2);
  const raw = gradient * prev.limit;
  // The √ headroom probes for capacity and rides out latency noise. But latency past
  // the buffer (gradient < 1) while requests are refused is the upstream queueing the
  // demand the limit lets through, not noise: there the limit settled where √limit more
  // were queued at the upstream than the buffer allows (≈ 1.4 × minRTT at 8 slots, more
  // with a low share inflating the limit), and every request, critical ones included,
  // waited behind them.
  let target = gradient < 1 && inp.shed > 0 ? raw : raw + Math.sqrt(raw);
  // Gradient2: no growth while the limit is not what holds traffic back. Nor shrinking
  // on latency noise then: a smaller limit would change nothing until it reached twice
  // what is in flight, and a load that rises meets the controller again at limit/2.
  // Requests shed this tick say otherwise: a route priority's share of the limit (low:
  // half of it by default) is holding them back, so the limit may move.
  if (inp.inFlight < prev.limit / 2 && inp.shed === 0) target = prev.limit;
  // Requests refused while responses come back as fast as at the measured minRTT: the
  // limit is holding back demand the upstream shows no sign of queueing for, so it
  // takes the whole step at once (smoothed, a surge from a half-loaded limit took
  // ≈ 2.5 s of refusals to reach capacity). Not on a tick well below the measured
  // minRTT: that measurement was taken in a slow moment and says nothing about queueing
  // now. Shrinking, and growth once latency rises, stay smoothed.
  const ramp = inp.shed > 0 && target > prev.limit && sampleRttUs >= prev.minRttUs * (1 - RAMP_BELOW) && sampleRttUs <= prev.minRttUs * (1 + RAMP_ABOVE);
  const limit = clamp(prev.limit + (ramp ? 1 : cfg.smoothing) * (target - prev.limit), floor, cfg.max);
  const rounded = Math.round(limit);
  // The write band (10 %) keeps noise off the control word, and a move back up after a
  // move down needs twice that (a Schmitt trigger): at a fixed point between two
  // integers the limit would otherwise alternate between them every second or two.
  // While requests are refused, moving down stays at one band, so the limit settles on
  // the lower of the two (the upstream's queue, which every request waits behind, is
  // what the other one adds). While no write is due the smoothed limit is held inside
  // the dead zone (anti-windup), so a gentle, persistent gradient cannot creep it
  // across; a real change of capacity moves it past within a tick or two.
  const band = Math.max(1, Math.ceil(prev.written * 0.1));
  const up = prev.lastDir < 0 ? 2 * band : band;
  const down = prev.lastDir > 0 && inp.shed === 0 ? 2 * band : band;
  const dir = Math.sign(rounded - prev.written);
  const moved = Math.abs(rounded - prev.written) >= (dir > 0 ? up : down) || (rounded !== prev.written && (rounded === floor || rounded === cfg.max));
  const held = moved ? limit : clamp(limit, prev.written - down + 1, prev.written + up - 1);
  s = { ...s, limit: held, sampleRttUs, minRttUs: minRtt, gradient, pending: new Float64Array(kLatencyBuckets) };
  if (!moved) return { state: s, write: null, events };
  events.push({
    event: 'concurrency-limit',
    level: 'info',
    msg: `upstream ${upstream}: concurrency limit ${prev.written} → ${rounded} (sample RTT ${round(sampleRttUs / 1000)} ms, minRTT ${round(minRtt / 1000)} ms, gradient ${round(gradient)})`,
    fields: { upstream, from: prev.written, to: rounded, ramp, sampleRttMs: round(sampleRttUs / 1000), minRttMs: round(minRtt / 1000), gradient: round(gradient, 3), inFlight: inp.inFlight, samples: n, shed: inp.shed, percentile: cfg.percentile },
  });
  s = { ...s, written: rounded, changes: prev.changes + 1, lastDir: dir };
  return { state: s, write: rounded, events };
}
