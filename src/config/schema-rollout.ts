// Automated canary rollouts: `rollouts.<name>` moves a split route's canary side
// through weight steps, checking it against the stable side every interval
// (src/primary/rollout/). `state.file` keeps their progress across restarts.
import { z } from 'zod';
import { durationMs } from '../units/zod-units.js';
import { parseDuration } from '../units/units.js';

/** 0.05 or "5%" → 0.05 */
const fraction = z
  .union([z.number(), z.string().regex(/^\d+(\.\d+)?%$/, 'expected a fraction like 0.05 or a percentage like "5%"')])
  .transform((v) => (typeof v === 'number' ? v : Number(v.slice(0, -1)) / 100))
  .pipe(z.number().min(0).max(1));

const webhookSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  timeout: durationMs.default(5_000),
  retries: z.number().int().min(0).max(10).default(2),
});

export const rolloutSchema = z.strictObject({
  /** the route's name; its `split` must have exactly the two sides below */
  route: z.string().min(1),
  stable: z.string().min(1),
  canary: z.string().min(1),
  /** canary weights in percent, rising, the last 100 */
  steps: z
    .array(z.number().gt(0).max(100))
    .min(1)
    .refine((s) => s.every((v, i) => i === 0 || v > s[i - 1]!), 'steps must rise')
    .refine((s) => s[s.length - 1] === 100, 'the last step must be 100')
    .default([5, 25, 50, 100]),
  /** time between two checks; each check compares the two sides over the interval just ended */
  interval: durationMs.pipe(z.number().min(100, 'interval must be at least 100ms')).default(60_000),
  analysis: z
    .strictObject({
      /** requests each side needs in an interval for a verdict; fewer pauses the rollout */
      minRequests: z.number().int().min(10).default(100),
      /** largest allowed excess of the canary's error rate (5xx and gateway errors) over the stable one's */
      maxErrorRate: fraction.default(0.01),
      /** largest allowed canary/stable ratio of median latency, when the canary is also significantly slower (Mann-Whitney U) */
      maxLatencyRatio: z.number().min(1).default(1.5),
      /** consecutive failed checks that trigger onFailure */
      failedChecks: z.number().int().min(1).max(100).default(2),
    })
    .prefault({}),
  /** rollback: canary to 0 %; pause: hold the current weight for an operator */
  onFailure: z.enum(['rollback', 'pause']).default('rollback'),
  /** POST of every phase change (JSON), from the primary, off the request path */
  webhook: webhookSchema.optional(),
});

export const rolloutsSchema = z.record(z.string().regex(/^[A-Za-z0-9_-]+$/, 'expected a rollout name of letters, digits, "_" and "-"'), rolloutSchema);

export type RolloutConfig = z.output<typeof rolloutSchema>;

type Issue = { path: (string | number)[]; message: string };

/** Rollouts against the routes they name (raw input, like crossSectionIssues). */
export function rolloutIssues(raw: unknown): Issue[] {
  const out: Issue[] = [];
  if (typeof raw !== 'object' || raw === null) return out;
  const cfg = raw as { routes?: unknown; rollouts?: unknown; observability?: { snapshotInterval?: unknown } };
  if (typeof cfg.rollouts !== 'object' || cfg.rollouts === null) return out;
  const routes = Array.isArray(cfg.routes) ? (cfg.routes as unknown[]) : [];
  const byName = new Map<string, { split?: unknown }>();
  routes.forEach((r, i) => {
    const route = (r ?? {}) as { name?: unknown; split?: unknown };
    byName.set(typeof route.name === 'string' && route.name.length > 0 ? route.name : `route-${i}`, route);
  });
  const snap = cfg.observability?.snapshotInterval === undefined ? { ok: true as const, value: 1_000 } : parseDuration(cfg.observability.snapshotInterval);
  const taken = new Map<string, string>();
  for (const [name, v] of Object.entries(cfg.rollouts as Record<string, unknown>)) {
    const ro = (v ?? {}) as { route?: unknown; stable?: unknown; canary?: unknown; interval?: unknown };
    if (typeof ro.route !== 'string') continue;
    const route = byName.get(ro.route);
    if (route === undefined) {
      out.push({ path: ['rollouts', name, 'route'], message: `unknown route "${ro.route}" (known: ${[...byName.keys()].join(', ') || 'none'})` });
      continue;
    }
    const other = taken.get(ro.route);
    if (other !== undefined) out.push({ path: ['rollouts', name, 'route'], message: `route "${ro.route}" is already rolled out by rollouts.${other}` });
    taken.set(ro.route, name);
    if (!Array.isArray(route.split)) {
      out.push({ path: ['rollouts', name, 'route'], message: `route "${ro.route}" has no split; a rollout moves the weights of a two-sided split` });
      continue;
    }
    const sides = (route.split as { upstream?: unknown }[]).map((s) => s?.upstream);
    if (sides.length !== 2) out.push({ path: ['rollouts', name, 'route'], message: `route "${ro.route}" splits over ${sides.length} sides; a rollout needs exactly two (stable and canary)` });
    if (typeof ro.stable === 'string' && !sides.includes(ro.stable)) out.push({ path: ['rollouts', name, 'stable'], message: `"${ro.stable}" is not a side of route "${ro.route}" (sides: ${sides.join(', ')})` });
    if (typeof ro.canary === 'string' && !sides.includes(ro.canary)) out.push({ path: ['rollouts', name, 'canary'], message: `"${ro.canary}" is not a side of route "${ro.route}" (sides: ${sides.join(', ')})` });
    if (ro.stable === ro.canary && typeof ro.stable === 'string') out.push({ path: ['rollouts', name, 'canary'], message: 'stable and canary must be different sides' });
    if (ro.interval !== undefined && snap.ok) {
      const iv = parseDuration(ro.interval);
      if (iv.ok && iv.value < snap.value) out.push({ path: ['rollouts', name, 'interval'], message: `must be at least observability.snapshotInterval (${snap.value} ms): a check needs the workers' counters of its interval` });
    }
  }
  return out;
}
