// Load-aware rate limits: an AIMD controller per adaptive `rate-limit` policy, as a pure
// step function. Its output is the policy row's multiplier (workers apply rate ×
// multiplier and report the effective quota in their headers).
//
// * Inputs per tick: the route's upstream outcomes (attempts, failures) and response
//   time histogram, summed over workers — the same counters the breaker and the
//   concurrency limit read.
// * Over a window (`window`, 2 s by default) it judges the upstream: over target when
//   the `percentile` (p99) of response times exceeds `upstreamLatency` or the failure
//   rate exceeds `errorRate`; healthy when both stay under `healthyBelow` (80 %) of their
//   targets; in between it holds (the hysteresis band that keeps it from flapping
//   around a target).
// * Over target: multiplier × `decrease` (0.7), never below `min`. Healthy: + `increase`
//   (10 % of the configured rate), never above 1. At 1 and healthy nothing happens.
// * After every change the window starts empty, so the next verdict is about traffic
//   under the new multiplier alone (old slow responses must not drive a second cut):
//   at most one change per window, which is the cool-down.
// * The first window with traffic (after start, or after a window without) decides
//   nothing: it holds the cold start of connections and code, whose p99 says nothing
//   about load.
// * A window with fewer than `minSamples` responses decides nothing: no traffic is no
//   evidence, and whatever multiplier is set does not matter while nobody calls.
import type { Config } from '../config/schema.js';
import type { AdaptiveRateConfig, RateLimitConfig } from '../policies/rate-limit.js';
import { histogramPercentile } from './concurrency.js';
import { round, type DecisionEvent } from './decision.js';
import { tierMultiplier, tierRanks, type TierRanks } from '../policies/tier-cut.js';
import { priorityNames, type PriorityName } from '../shm/layout.js';

/** A tier's priority as an index (0 critical … 3 low), −1 when it has none. */
function priorityIndex(p: string | undefined): number {
  return p === undefined ? -1 : priorityNames.indexOf(p as PriorityName);
}

/** What identifies one adaptive policy in events and /status. */
export interface AdaptiveRateId {
  readonly route: string;
  readonly policy: string;
  readonly upstream: string;
  /** `rate: tier`: the tenant tiers by name with their rank (src/policies/tier-cut.ts); lower ranks take the cut first */
  readonly tiers?: { readonly names: readonly string[]; readonly ranks: TierRanks } | null;
}

function tierList(t: Record<string, number> | null): string | null {
  return t === null ? null : Object.entries(t).map(([name, m]) => `${name} ×${m}`).join(', ');
}

/** Each tier's own multiplier when the policy's is `m`, for decision lines and /status; null without tiers. */
export function tierMultipliers(id: AdaptiveRateId, cfg: AdaptiveRateConfig, m: number): Record<string, number> | null {
  const t = id.tiers;
  if (t === undefined || t === null) return null;
  const out: Record<string, number> = {};
  t.names.forEach((name, i) => (out[name] = round(tierMultiplier(m, cfg.min / 100, t.ranks.ranks[i]!, t.ranks.levels), 3)));
  return out;
}

export interface AdaptiveRateState {
  /** what the policy row holds (1 = as configured) */
  readonly multiplier: number;
  /** Date.now() ms the current window began (at start, or at the last change) */
  readonly windowStart: number;
  /** this window's sums: responses, failures, and the response-time histogram */
  readonly attempts: number;
  readonly failures: number;
  readonly latency: Float64Array;
  /** the last full window's verdict and its numbers (for /status) */
  readonly verdict: 'over' | 'healthy' | 'hold' | 'no-data' | 'warm-up' | null;
  readonly latencyMs: number;
  readonly errorRate: number;
  readonly decreases: number;
  readonly increases: number;
  readonly changedAt: number | null;
}

export interface AdaptiveRateInputs {
  readonly now: number;
  /** this tick's responses from the upstream (with a verdict) and how many failed */
  readonly attempts: number;
  readonly failures: number;
  /** this tick's response-time histogram deltas (kLatencyBuckets), summed over workers */
  readonly latency: Float64Array;
}

export interface AdaptiveRateStep {
  readonly state: AdaptiveRateState;
  /** the multiplier to write, or null when unchanged */
  readonly write: number | null;
  readonly events: DecisionEvent[];
}

export function initialAdaptiveRateState(now: number, buckets: number): AdaptiveRateState {
  return { multiplier: 1, windowStart: now, attempts: 0, failures: 0, latency: new Float64Array(buckets), verdict: null, latencyMs: 0, errorRate: 0, decreases: 0, increases: 0, changedAt: null };
}

export function adaptiveRateStep(id: AdaptiveRateId, cfg: AdaptiveRateConfig, prev: AdaptiveRateState, inp: AdaptiveRateInputs): AdaptiveRateStep {
  const latency = prev.latency.slice();
  for (let i = 0; i < latency.length; i++) latency[i]! += inp.latency[i] ?? 0;
  const attempts = prev.attempts + inp.attempts;
  const failures = prev.failures + inp.failures;
  if (inp.now - prev.windowStart < cfg.window) return { state: { ...prev, attempts, failures, latency }, write: null, events: [] };

  // A full window: judge it, then start the next one.
  const fresh = { windowStart: inp.now, attempts: 0, failures: 0, latency: new Float64Array(latency.length) };
  if (attempts < cfg.minSamples) return { state: { ...prev, ...fresh, verdict: 'no-data' }, write: null, events: [] };
  if (prev.verdict === null || prev.verdict === 'no-data') return { state: { ...prev, ...fresh, verdict: 'warm-up' }, write: null, events: [] };
  const latencyMs = histogramPercentile(latency, cfg.percentile) / 1000;
  const errorRate = (failures / attempts) * 100;
  const slow = latencyMs > cfg.upstreamLatency;
  const failing = errorRate > cfg.errorRate;
  const band = cfg.healthyBelow / 100;
  const healthy = latencyMs <= cfg.upstreamLatency * band && errorRate <= cfg.errorRate * band;
  const verdict = slow || failing ? 'over' : healthy ? 'healthy' : 'hold';
  const floor = cfg.min / 100;
  let m = prev.multiplier;
  if (verdict === 'over') m = Math.max(floor, prev.multiplier * cfg.decrease);
  else if (verdict === 'healthy') m = Math.min(1, prev.multiplier + cfg.increase / 100);
  // Float noise must not count as a change (nor be written, nor logged).
  m = round(m, 4);
  const base = { ...prev, ...fresh, verdict, latencyMs: round(latencyMs, 1), errorRate: round(errorRate, 2) } as const;
  if (m === prev.multiplier) return { state: base, write: null, events: [] };

  const down = m < prev.multiplier;
  const reason = down ? (slow ? `p${cfg.percentile} ${round(latencyMs, 1)}ms over ${cfg.upstreamLatency}ms` : `error rate ${round(errorRate, 1)}% over ${cfg.errorRate}%`) : `p${cfg.percentile} ${round(latencyMs, 1)}ms and error rate ${round(errorRate, 1)}% under ${cfg.healthyBelow}% of their targets`;
  const event: DecisionEvent = {
    event: down ? 'ratelimit-decreased' : 'ratelimit-increased',
    level: down ? 'warn' : 'info',
    msg: `route ${id.route} rate-limit ${id.policy}: rate ×${m} (was ×${prev.multiplier}): upstream ${id.upstream} ${reason}`,
    fields: {
      route: id.route,
      policy: id.policy,
      upstream: id.upstream,
      multiplier: m,
      previous: prev.multiplier,
      latencyMs: round(latencyMs, 1),
      latencyTargetMs: cfg.upstreamLatency,
      percentile: cfg.percentile,
      errorRate: round(errorRate, 2),
      errorRateTarget: cfg.errorRate,
      responses: attempts,
      failures,
      windowMs: cfg.window,
      atFloor: m <= floor,
      // Decision fields are flat: each tier's own multiplier as "name ×m", lowest first as configured.
      tiers: tierList(tierMultipliers(id, cfg, m)),
    },
  };
  return {
    state: { ...base, multiplier: m, decreases: prev.decreases + (down ? 1 : 0), increases: prev.increases + (down ? 0 : 1), changedAt: inp.now },
    write: m,
    events: [event],
  };
}

/** An adaptive policy of the config, at its limiter row (routes in order, policies in order: LimiterWriter's rule). */
export interface AdaptivePolicy extends AdaptiveRateId {
  readonly row: number;
  readonly cfg: AdaptiveRateConfig;
}

/** The config's adaptive rate-limit policies, with their rows and the upstream of their route. */
export function adaptivePolicies(cfg: Config): AdaptivePolicy[] {
  const out: AdaptivePolicy[] = [];
  let row = 0;
  cfg.routes.forEach((r, i) => {
    for (const p of r.policies) {
      if (p.name !== 'rate-limit') continue;
      const c = p.config as RateLimitConfig;
      if (c.adaptive !== undefined) {
        const names = c.tier && cfg.tenants !== undefined ? Object.keys(cfg.tenants.tiers) : null;
        const tiers = names === null ? null : { names, ranks: tierRanks(names.map((n) => priorityIndex(cfg.tenants!.tiers[n]!.priority))) };
        out.push({ row, route: r.name ?? `route-${i}`, policy: c.name, upstream: r.upstream, cfg: c.adaptive, tiers });
      }
      row++;
    }
  });
  return out;
}

/** One adaptive policy in /status (`protection.rateLimits`). */
export interface AdaptiveRateStatus {
  readonly route: string;
  readonly policy: string;
  readonly upstream: string;
  readonly multiplier: number;
  readonly min: number;
  readonly verdict: AdaptiveRateState['verdict'];
  readonly latencyMs: number;
  readonly latencyTargetMs: number;
  readonly errorRate: number;
  readonly errorRateTarget: number;
  readonly decreases: number;
  readonly increases: number;
  readonly changedAt: string | null;
  /** `rate: tier`: each tier's own multiplier (lower tiers take the cut first) */
  readonly tiers: Record<string, number> | null;
}

export function adaptiveRateStatus(p: AdaptivePolicy, s: AdaptiveRateState): AdaptiveRateStatus {
  return {
    route: p.route,
    policy: p.policy,
    upstream: p.upstream,
    multiplier: s.multiplier,
    min: p.cfg.min / 100,
    verdict: s.verdict,
    latencyMs: s.latencyMs,
    latencyTargetMs: p.cfg.upstreamLatency,
    errorRate: s.errorRate,
    errorRateTarget: p.cfg.errorRate,
    decreases: s.decreases,
    increases: s.increases,
    changedAt: s.changedAt === null ? null : new Date(s.changedAt).toISOString(),
    tiers: tierMultipliers(p, p.cfg, s.multiplier),
  };
}
