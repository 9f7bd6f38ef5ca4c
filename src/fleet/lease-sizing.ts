// How big a cluster rate-limit lease is, when it is refilled, and what it costs in
// accuracy: pure arithmetic, so the primary's loop (cluster-limiter.ts) stays a loop and
// the numbers can be checked without a fleet.
//
// The trade: one EVALSHA per batch, so Redis commands per admitted request are about
// 1 / batch; but every token an instance holds is one the rest of the fleet cannot
// spend, so the tokens held across N instances are what the fleet can fall short of
// its limit by. An instance's share of a key at its limit is rate / N; at 50/s over 10
// instances a batch sized from the share alone (`ahead` of it) is one or two tokens and
// costs a command per request or more. So a batch is never smaller than `minTokens`,
// and the arithmetic below states what that costs.

/** What sizes a lease: the policy, the fleet and the `redis.lease` settings. */
export interface LeaseParams {
  /** the policy's rate for the whole fleet, tokens per second */
  readonly rate: number;
  readonly burst: number;
  /** instances sharing the limit (`redis.instances`) */
  readonly instances: number;
  /** a batch covers this much of the rate the instance plans for (`lease.ahead`) */
  readonly aheadMs: number;
  /** smallest batch (`lease.min`) */
  readonly minTokens: number;
  /** most tokens one instance holds per key (`lease.maxTokens`) */
  readonly maxTokens: number;
}

/** What this instance has seen of one key. */
export interface KeyView {
  /** requests per second for the key here, admitted or refused for want of a lease */
  readonly demand: number;
  /** Redis' last answer could not grant the batch at once: the fleet is at the key's limit */
  readonly limited: boolean;
  /** how long a refill takes to arrive once wanted: the sync interval as achieved + the Redis round trip */
  readonly refillMs: number;
}

export interface LeasePlan {
  /** tokens one exchange asks for */
  readonly batch: number;
  /** fewest tokens Redis hands out at once; with fewer available it reserves the whole batch for when it conforms */
  readonly min: number;
  /** the low-water mark: a refill is asked for once the tokens held are at most this */
  readonly low: number;
  /** furthest ahead Redis may reserve a batch: one batch for every instance queued before this one, plus a refill */
  readonly horizonMs: number;
}

/** The most one exchange can ever be granted: Redis never holds more than the burst. */
export function batchCap(p: LeaseParams): number {
  return Math.max(1, Math.min(p.maxTokens, Math.floor(p.burst)));
}

/**
 * The rate this instance plans a key's lease for. At the fleet's limit the fleet as a
 * whole spends `rate`, and each instance can count on its share of it, however much
 * more it is asked; below the limit, what it is asked.
 */
export function plannedRate(p: LeaseParams, k: KeyView): number {
  const d = demandOf(k);
  return k.limited ? Math.min(d, p.rate / p.instances) : d;
}

function demandOf(k: KeyView): number {
  return Number.isFinite(k.demand) && k.demand > 0 ? k.demand : 0;
}

export function planLease(p: LeaseParams, k: KeyView): LeasePlan {
  const r = plannedRate(p, k);
  const cap = batchCap(p);
  const batch = Math.min(cap, Math.max(p.minTokens, Math.ceil((r * p.aheadMs) / 1000)));
  // Ahead of need: what is spent here (at the demand, not the plan) while a refill is on
  // its way, at least the last token: at the limit the answer, a reservation, must come
  // before the lease runs dry, or requests meant to be refused are admitted on credit.
  const low = Math.min(batch, Math.max(1, Math.ceil((demandOf(k) * k.refillMs) / 1000)));
  const min = Math.max(1, Math.ceil(batch / 2));
  const horizonMs = (p.instances * batch * 1000) / p.rate + k.refillMs;
  return { batch, min, low, horizonMs };
}

/**
 * Tokens to give back from a lease that holds far more than its plan (the key's demand
 * fell): what is above one batch plus the low-water mark, when that is at least a batch
 * and `minTokens`, so that giving back is worth its command.
 */
export function surplusTokens(held: number, plan: LeasePlan, minTokens: number): number {
  const keep = plan.batch + plan.low;
  const over = held - keep;
  return over >= Math.max(plan.batch, minTokens) ? over : 0;
}

export interface AccuracyBound {
  /** the batch each instance asks for while the key is at its limit */
  readonly batch: number;
  readonly low: number;
  /** most tokens one instance holds for the key at its limit: a batch on top of the low-water mark */
  readonly perInstance: number;
  /** most tokens the fleet holds outside Redis: N × perInstance; the fleet admits at least rate × t + burst − this */
  readonly fleet: number;
  /** EVALSHA per 1,000 admitted at the limit (one per batch) */
  readonly commandsPer1000: number;
}

/**
 * The lower side of the accuracy bound for one key at its limit, every instance asked
 * for `demand` (default: its share, the least at which the key is at its limit), from
 * the parameters: tokens held across the fleet are the most it can fall short of
 * rate × t + burst by. The low-water mark grows with the demand, never past a batch.
 */
export function accuracyBound(p: LeaseParams, refillMs: number, demand = p.rate / p.instances): AccuracyBound {
  const plan = planLease(p, { demand, limited: true, refillMs });
  const perInstance = plan.batch + plan.low;
  return { batch: plan.batch, low: plan.low, perInstance, fleet: p.instances * perInstance, commandsPer1000: 1000 / plan.batch };
}
