// Traffic splitting: `routes[].split` sends a route's requests to several upstreams by
// weight (percentages summing to 100), optionally sticky per caller, with per-side
// header rules that override the weights. Blue/green is a two-sided split whose
// weights are flipped 100/0 at run time (PUT /v1/routes/<route>/split).
import { z } from 'zod';
import { kSplitMaxSides, kSplitRows } from '../shm/layout.js';

const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

export const splitSideSchema = z.strictObject({
  upstream: z.string().min(1),
  /** percent of the route's requests (the sides sum to 100) */
  weight: z.number().min(0).max(100),
  /** requests carrying every one of these header values go to this side whatever the weights */
  match: z
    .strictObject({
      header: z.record(z.string().regex(HEADER_NAME, 'expected a lower-case header name'), z.string()).refine((h) => Object.keys(h).length > 0, 'list at least one header'),
    })
    .optional(),
});

export const stickySchema = z
  .strictObject({
    on: z.enum(['header', 'cookie', 'client-ip']),
    name: z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected a header or cookie name').transform((n) => n.toLowerCase()).optional(),
  })
  .refine((s) => s.on === 'client-ip' || s.name !== undefined, { message: 'sticky.name is required for header and cookie', path: ['name'] });

/** The route fields, spread into the route schema. */
export const splitRouteFields = {
  /** instead of `upstream`: sides chosen per request by weight */
  split: z.array(splitSideSchema).min(2, 'a split needs at least two sides').max(kSplitMaxSides, `a split has at most ${kSplitMaxSides} sides`).optional(),
  /** keep a caller on one side while the weights move (hash of a header, a cookie or the client address) */
  sticky: stickySchema.optional(),
};

export type SplitSide = z.output<typeof splitSideSchema>;
export type StickyConfig = z.output<typeof stickySchema>;

type Issue = { path: (string | number)[]; message: string };

/** Cross-field checks on the raw routes (see crossSectionIssues: every error at once). */
export function splitIssues(raw: unknown): Issue[] {
  const out: Issue[] = [];
  if (typeof raw !== 'object' || raw === null) return out;
  const cfg = raw as { upstreams?: unknown; routes?: unknown };
  const upstreams = typeof cfg.upstreams === 'object' && cfg.upstreams !== null ? Object.keys(cfg.upstreams) : [];
  if (!Array.isArray(cfg.routes)) return out;
  let splits = 0;
  cfg.routes.forEach((r: unknown, i) => {
    if (typeof r !== 'object' || r === null) return;
    const route = r as { upstream?: unknown; split?: unknown; sticky?: unknown; lua?: unknown };
    const has = Array.isArray(route.split);
    if (route.upstream === undefined && route.split === undefined && route.lua === undefined) out.push({ path: ['routes', i, 'upstream'], message: 'a route needs `upstream` or `split` (or a `lua.content` script)' });
    if (route.upstream !== undefined && route.split !== undefined) out.push({ path: ['routes', i, 'split'], message: 'give `upstream` or `split`, not both' });
    if (route.sticky !== undefined && !has) out.push({ path: ['routes', i, 'sticky'], message: '`sticky` needs a `split`' });
    if (!has) return;
    splits++;
    const sides = route.split as unknown[];
    const seen = new Set<string>();
    let sum = 0;
    let numeric = true;
    sides.forEach((s: unknown, j) => {
      const side = (s ?? {}) as { upstream?: unknown; weight?: unknown };
      if (typeof side.upstream === 'string') {
        if (!upstreams.includes(side.upstream)) out.push({ path: ['routes', i, 'split', j, 'upstream'], message: `unknown upstream "${side.upstream}" (known: ${upstreams.join(', ') || 'none'})` });
        if (seen.has(side.upstream)) out.push({ path: ['routes', i, 'split', j, 'upstream'], message: `upstream "${side.upstream}" is already a side of this split` });
        seen.add(side.upstream);
      }
      if (typeof side.weight === 'number') sum += side.weight;
      else numeric = false;
    });
    if (numeric && Math.abs(sum - 100) > 1e-9) out.push({ path: ['routes', i, 'split'], message: `the weights must sum to 100 (they sum to ${sum})` });
  });
  if (splits > kSplitRows) out.push({ path: ['routes'], message: `at most ${kSplitRows} routes may have a split (found ${splits})` });
  return out;
}

/** Checks run-time weights (`{ side: percent }`) against a route's sides; the issues, or the weights in side order. */
export function parseSplitWeights(sides: readonly string[], value: unknown): { ok: true; weights: number[] } | { ok: false; issues: string[] } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, issues: [`weights: expected an object of side → percent, like ${JSON.stringify(Object.fromEntries(sides.map((s, i) => [s, i === 0 ? 100 : 0])))}`] };
  const issues: string[] = [];
  const given = value as Record<string, unknown>;
  for (const k of Object.keys(given)) if (!sides.includes(k)) issues.push(`weights.${k}: not a side of this split (sides: ${sides.join(', ')})`);
  const weights = sides.map((s) => {
    const w = given[s];
    if (w === undefined) {
      issues.push(`weights.${s}: missing (every side needs a weight)`);
      return 0;
    }
    if (typeof w !== 'number' || !(w >= 0 && w <= 100)) {
      issues.push(`weights.${s}: expected a number from 0 to 100`);
      return 0;
    }
    return w;
  });
  const sum = weights.reduce((a, b) => a + b, 0);
  if (issues.length === 0 && Math.abs(sum - 100) > 1e-9) issues.push(`weights: must sum to 100 (they sum to ${sum})`);
  return issues.length > 0 ? { ok: false, issues } : { ok: true, weights };
}
