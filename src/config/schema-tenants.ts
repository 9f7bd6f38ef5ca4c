// The `tenants` section: who a caller's tenant is, the tiers, and each tenant's tier.
//
//   tenants:
//     header: x-tenant            # optional: a request header names the tenant when no api-key / jwt policy did
//     tiers:
//       gold:   { rate: 200/s, burst: 400, priority: high }
//       bronze: { rate: 20/s, burst: 20, priority: low }
//     assign: { acme: gold, globex: bronze }
//     default: bronze
//
// A caller's tenant comes from an api-key policy (the key file's `tenant`), a jwt
// policy (`tenantClaim`) or, failing those, `header`. Its tier is `assign[tenant]`, or
// `default` for every other tenant and for callers with none. A `rate-limit` policy
// with `rate: tier` takes the tier's rate and burst (keyed by tenant with `key:
// tenant`); a tier's `priority` replaces the route's for shedding.
import { z } from 'zod';
import { parseRate, type Rate } from '../units/units.js';
import { priorityNames, type PriorityName } from '../shm/layout.js';
import type { Config } from './schema.js';
import type { WorkerTenants } from '../messages.js';

const name = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected a name of 1–64 letters, digits, ".", "_" or "-"');

const rate = z.union([z.string(), z.number()]).transform((v, ctx): Rate => {
  const r = parseRate(v);
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: `${r.expected}, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return r.value;
});

const tierSchema = z.strictObject({
  rate,
  /** requests admitted at once from a fresh tenant (default: one second's worth, at least 1) */
  burst: z.number().int().min(1).max(10_000_000).optional(),
  /** the priority the tier's requests are shed as (default: the route's) */
  priority: z.enum(priorityNames).optional(),
});

export const tenantsSchema = z
  .strictObject({
    header: z
      .string()
      .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected a header name')
      .transform((h) => h.toLowerCase())
      .optional(),
    tiers: z.record(name, tierSchema).refine((t) => Object.keys(t).length > 0, 'at least one tier is required'),
    assign: z.record(name, name).default({}),
    default: name,
  })
  .superRefine((t, ctx) => {
    const tiers = Object.keys(t.tiers);
    if (!tiers.includes(t.default)) ctx.addIssue({ code: 'custom', path: ['default'], message: `unknown tier "${t.default}" (known: ${tiers.join(', ')})` });
    for (const [tenant, tier] of Object.entries(t.assign)) {
      if (!tiers.includes(tier)) ctx.addIssue({ code: 'custom', path: ['assign', tenant], message: `unknown tier "${tier}" (known: ${tiers.join(', ')})` });
    }
  });

export type TenantsConfig = z.output<typeof tenantsSchema>;

export function workerTenants(t: TenantsConfig | undefined): WorkerTenants | null {
  if (t === undefined) return null;
  const names = Object.keys(t.tiers);
  return {
    header: t.header ?? null,
    tiers: names.map((n) => {
      const tier = t.tiers[n]!;
      return { name: n, ratePerSecond: tier.rate.perSecond, count: tier.rate.count, periodSeconds: tier.rate.periodSeconds, burst: tier.burst ?? Math.max(1, Math.ceil(tier.rate.perSecond)), priority: tier.priority === undefined ? -1 : priorityNames.indexOf(tier.priority as PriorityName) };
    }),
    assign: Object.fromEntries(Object.entries(t.assign).map(([tenant, tier]) => [tenant, names.indexOf(tier)])),
    defaultTier: names.indexOf(t.default),
  };
}

/** A `rate-limit` with `rate: tier` needs the tiers. */
export function tenantIssues(cfg: Config): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  if (cfg.tenants !== undefined) return out;
  cfg.routes.forEach((r, i) =>
    r.policies.forEach((p, j) => {
      if (p.name === 'rate-limit' && (p.config as { tier?: boolean }).tier === true) out.push({ path: ['routes', i, 'policies', j, 'rate-limit', 'rate'], message: '"tier" needs a tenants section with tiers' });
    }),
  );
  return out;
}
