// `rate-limit`: GCRA per key in the shared limiter table (src/shm/limiter-table.ts),
// so the limit holds across all worker threads, not per thread as nginx's
// limit_req would per worker without a shared zone.
//
//   policies:
//     - rate-limit: { key: header:x-user-id, rate: 100/s, burst: 200 }
//
// key: `client-ip` (after trusted proxies), `header:<name>` (a request without the
//   header is keyed by its client address, as APISIX falls back to remote_addr), `route`
//   (one bucket for the whole route), `consumer` / `tenant` (as an earlier api-key or
//   jwt policy identified the caller; keyed by client address when none did), or a
//   list of these combined into one key.
// rate: "<n>/<s|m|h|d>", or `tier`: the caller's tenant tier's rate and burst (the
//   tenants section; usually with `key: tenant`, so each tenant has its own bucket).
// burst: requests admitted at once from a fresh key (default: one second's worth, at
//   least 1).
// headers: send RateLimit-Policy / RateLimit on admitted responses too (default true);
//   a 429 always carries them and Retry-After.
//
// The rate and burst live in the shm policy row (`kindIndex`), written by the primary
// from this config and changeable at run time (src/primary/limiter-writer.ts); the
// worker reads them on every request.
//
// adaptive: { upstreamLatency, errorRate, min, ... } lets the primary's AIMD controller
//   (src/controllers/adaptive-rate.ts) scale the rate by the row's multiplier while the
//   route's upstream is slow or failing; the worker just applies the multiplier.
//
// scope: `local` (default: this instance's shared memory alone) or `cluster`: one bucket
//   per key for the whole fleet, kept in Redis (top-level `redis`), spent from local
//   leases the primary refills (src/fleet/cluster-limiter.ts); the worker never waits
//   on Redis. While Redis is unreachable `redis.onFailure` decides; `deny` answers
//   503 TG_ERR_RATE_LIMIT_UNAVAILABLE.
//
// Header syntax: draft-ietf-httpapi-ratelimit-headers (2025):
//   RateLimit-Policy: "<name>";q=<n>;w=<period seconds>   (the effective rate: configured × multiplier)
//   RateLimit: "<name>";r=<remaining>;t=<seconds>         (t: until full / until retry)
// `r` is capped at q: GCRA's burst can exceed one window's quota, and r > q would
// read as nonsense to a client.
import type { z as ZodNamespace } from 'zod';
import { Errors, type ErrorSpec } from '../errors.js';
import { parseDuration, parseRate, type Rate } from '../units/units.js';
import { hash32, SEED_A, SEED_B } from '../balancers/hash.js';
import { SharedState } from '../shm/shared-state.js';
import { LimiterTable, type LimitResult } from '../shm/limiter-table.js';
import type { AccessContext, PolicyDefinition, PolicyEnv, PolicyInstance, Zod } from './policy.js';
import type { TenantDirectory } from './tenant-directory.js';
import { tierMultiplier, tierRanks, type TierRanks } from './tier-cut.js';

/** The config schema, built from the zod the config layer passes in (see PolicyDefinition.schema). */
export function rateLimitSchema(z: Zod) {
  const rate = z.union([z.string(), z.number()]).transform((v, ctx): Rate => {
    const r = parseRate(v);
    if (!r.ok) {
      ctx.addIssue({ code: 'custom', message: `${r.expected}, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return r.value;
  });
  const ms = z.union([z.string(), z.number()]).transform((v, ctx): number => {
    const r = parseDuration(v);
    if (!r.ok) {
      ctx.addIssue({ code: 'custom', message: `${r.expected}, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return r.value;
  });
  const pct = z
    .union([z.number(), z.string().regex(/^\d+(\.\d+)?%$/, 'expected a percentage like "50%"')])
    .transform((v) => (typeof v === 'number' ? v : Number(v.slice(0, -1))))
    .pipe(z.number().min(0).max(100));
  // The AIMD controller's knobs (src/controllers/adaptive-rate.ts runs it on the primary).
  const adaptive = z
    .strictObject({
      /** the upstream's response-time percentile (`percentile`) above which the rate shrinks */
      upstreamLatency: ms.default(200),
      percentile: pct.default(99),
      /** the upstream's failure rate (5xx, no response) above which the rate shrinks */
      errorRate: pct.default(5),
      /** floor of the multiplier, percent of the configured rate */
      min: pct.pipe(z.number().gt(0)).default(20),
      /** multiplicative decrease: the multiplier is multiplied by this when over target */
      decrease: z.number().gt(0).lt(1).default(0.7),
      /** additive increase per healthy window, percent of the configured rate */
      increase: pct.pipe(z.number().gt(0)).default(10),
      /** healthy (room to increase) only below this share of both targets: the hysteresis band */
      healthyBelow: pct.pipe(z.number().gt(0)).default(80),
      /** responses judged per decision; the window restarts after every change */
      window: ms.pipe(z.number().min(200).max(600_000)).default(2000),
      /** a window with fewer responses decides nothing */
      minSamples: z.number().int().min(1).max(1_000_000).default(20),
    })
    .optional();
  const keyPart = z.union([
    z.literal('client-ip'),
    z.literal('route'),
    z.literal('consumer'),
    z.literal('tenant'),
    z
      .string()
      .regex(/^header:[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected "client-ip", "route", "consumer", "tenant" or "header:<name>"')
      .transform((v) => v.toLowerCase()),
  ]);
  return z
    .strictObject({
      /** the policy name in RateLimit-Policy / RateLimit */
      name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected a token like "per-user"').default('default'),
      key: z.union([keyPart, z.array(keyPart).min(1)]).default('client-ip'),
      /** `tier`: the caller's tenant tier's rate and burst (the tenants section) */
      rate: z.union([z.literal('tier'), rate]),
      burst: z.number().int().min(1).max(10_000_000).optional(),
      headers: z.boolean().default(true),
      scope: z.enum(['local', 'cluster']).default('local'),
      adaptive,
    })
    // XXX: an adaptive multiplier would have to travel to Redis with every lease and be
    // agreed by every instance; refused until the fleet has one controller for it.
    .refine((c) => !(c.scope === 'cluster' && c.adaptive !== undefined), { message: 'adaptive is not supported with scope: cluster', path: ['adaptive'] })
    // XXX: leases are sized from one rate per policy row; a tier's quota per request does not fit them yet.
    .refine((c) => !(c.scope === 'cluster' && c.rate === 'tier'), { message: 'rate: tier is not supported with scope: cluster', path: ['rate'] })
    .transform((c) => {
      // With `rate: tier` the row holds a placeholder: every request brings its tier's quota.
      const r: Rate = c.rate === 'tier' ? { count: 1, periodSeconds: 1, perSecond: 1 } : c.rate;
      return { ...c, tier: c.rate === 'tier', rate: r, key: Array.isArray(c.key) ? c.key : [c.key], burst: c.burst ?? Math.max(1, Math.ceil(r.perSecond)) };
    });
}

export type RateLimitConfig = ZodNamespace.output<ReturnType<typeof rateLimitSchema>>;
export type AdaptiveRateConfig = NonNullable<RateLimitConfig['adaptive']>;

const enum KeyKind {
  ClientIp,
  Route,
  Header,
  Consumer,
  Tenant,
}

// Shared across instances of one worker: the table view over the same buffer.
let tableFor: { buffer: SharedArrayBuffer; table: LimiterTable } | null = null;

function limiterTable(env: PolicyEnv): LimiterTable {
  if (tableFor === null || tableFor.buffer !== env.shm) {
    tableFor = { buffer: env.shm, table: new LimiterTable(SharedState.attach(env.shm, { maxWorkers: env.maxWorkers })) };
  }
  return tableFor.table;
}

class RateLimit implements PolicyInstance {
  readonly name = 'rate-limit';
  private readonly kinds: KeyKind[];
  private readonly headerNames: string[];
  private readonly quoted: string;
  /** per quota (one, or one per tenant tier with `rate: tier`): count, period, rate, burst as configured */
  private readonly base: readonly { count: number; period: number; perSecond: number; burst: number }[];
  /** effective quota and RateLimit-Policy value per quota, for the row multiplier they were built for */
  private readonly quota: number[];
  private readonly policyHeader: string[];
  /**
   * per quota: the factor on its tier rate that turns the policy's multiplier m into the
   * tier's own (src/policies/tier-cut.ts: lower tiers take the cut first); 1 without tiers
   */
  private readonly tierScale: Float64Array;
  private readonly ranks: TierRanks | null;
  private multiplier = 1;
  private readonly out: LimitResult = { remaining: 0, resetSeconds: 0, multiplier: 1, unavailable: false };

  constructor(
    private readonly cfg: RateLimitConfig,
    private readonly table: LimiterTable,
    private readonly row: number,
    private readonly routeIndex: number,
    private readonly tenants: TenantDirectory | null,
  ) {
    this.kinds = cfg.key.map((k) => (k === 'client-ip' ? KeyKind.ClientIp : k === 'route' ? KeyKind.Route : k === 'consumer' ? KeyKind.Consumer : k === 'tenant' ? KeyKind.Tenant : KeyKind.Header));
    this.headerNames = cfg.key.map((k) => (k.startsWith('header:') ? k.slice(7) : ''));
    this.quoted = `"${cfg.name}"`;
    this.base =
      cfg.tier && tenants !== null
        ? tenants.tiers.map((t) => ({ count: t.count, period: t.periodSeconds, perSecond: t.ratePerSecond, burst: t.burst }))
        : [{ count: cfg.rate.count, period: cfg.rate.periodSeconds, perSecond: 0, burst: 0 }];
    this.quota = this.base.map((b) => b.count);
    this.policyHeader = this.base.map((b) => `${this.quoted};q=${b.count};w=${b.period}`);
    this.tierScale = new Float64Array(this.base.length).fill(1);
    this.ranks = cfg.tier && tenants !== null && cfg.adaptive !== undefined ? tierRanks(tenants.tiers.map((t) => t.priority)) : null;
  }

  /** The headers state the effective quota: rebuilt only when the multiplier moved (rare), never per request. */
  private rescale(m: number): void {
    this.multiplier = m;
    const r = this.ranks;
    for (let i = 0; i < this.base.length; i++) {
      const b = this.base[i]!;
      const own = r !== null && m > 0 ? tierMultiplier(m, this.cfg.adaptive!.min / 100, r.ranks[i]!, r.levels) : m;
      this.tierScale[i] = m > 0 ? own / m : 1;
      // Rounded down, at least 1: a client that keeps to q must never be refused.
      this.quota[i] = Math.max(1, Math.floor(b.count * (own > 0 ? own : 1)));
      this.policyHeader[i] = `${this.quoted};q=${this.quota[i]};w=${b.period}`;
    }
  }

  private key(ctx: AccessContext): string {
    const kinds = this.kinds;
    if (kinds.length === 1) return this.part(ctx, 0);
    let k = this.part(ctx, 0);
    for (let i = 1; i < kinds.length; i++) k += '\u0000' + this.part(ctx, i);
    return k;
  }

  private part(ctx: AccessContext, i: number): string {
    switch (this.kinds[i]) {
      case KeyKind.ClientIp:
        return ctx.clientIp;
      case KeyKind.Route:
        return `#${this.routeIndex}`;
      // Set by an earlier api-key or jwt policy; without one, key by client (never one bucket for all).
      case KeyKind.Consumer:
        return ctx.consumer === null ? ctx.clientIp : `c:${ctx.consumer}`;
      case KeyKind.Tenant:
        return ctx.tenant === null ? ctx.clientIp : `t:${ctx.tenant}`;
      default: {
        const name = this.headerNames[i]!;
        const h = ctx.headers;
        for (let j = 0; j < h.length; j += 2) if (h[j] === name) return `h:${h[j + 1]}`;
        return ctx.clientIp; // no header: key by client, never one shared bucket for all
      }
    }
  }

  access(ctx: AccessContext): ErrorSpec | null {
    const key = this.key(ctx);
    const out = this.out;
    const t = this.tenants;
    const q = this.cfg.tier && t !== null ? t.tierOf(ctx.tenant) : 0;
    const b = this.base[q]!;
    // The tier's scale is the one for the multiplier the previous request saw: a change
    // reaches the quota one request late, which the next rescale then states.
    const ok = this.table.acquire(this.row, hash32(key, SEED_A), hash32(key, SEED_B), process.hrtime.bigint(), out, b.perSecond * this.tierScale[q]!, b.burst);
    if (out.multiplier !== this.multiplier) this.rescale(out.multiplier);
    if (ok) {
      if (this.cfg.headers) {
        ctx.responseHeaders.push('ratelimit-policy', this.policyHeader[q]!, 'ratelimit', `${this.quoted};r=${Math.min(out.remaining, this.quota[q]!)};t=${Math.ceil(out.resetSeconds)}`);
      }
      return null;
    }
    // Whole seconds, rounded up: a client that waits Retry-After must find a token.
    const retry = Math.max(1, Math.ceil(out.resetSeconds));
    ctx.responseHeaders.push('ratelimit-policy', this.policyHeader[q]!, 'ratelimit', `${this.quoted};r=0;t=${retry}`, 'retry-after', String(retry));
    if (out.unavailable) return Errors.RATE_LIMIT_UNAVAILABLE; // a 503: the error response adds Retry-After: 1
    return Errors.RATE_LIMITED;
  }
}

export const rateLimitPolicy: PolicyDefinition = {
  name: 'rate-limit',
  schema: rateLimitSchema,
  create(config: unknown, env: PolicyEnv): PolicyInstance {
    return new RateLimit(config as RateLimitConfig, limiterTable(env), env.kindIndex, env.routeIndex, env.tenants);
  },
};
