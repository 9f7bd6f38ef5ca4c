// Config of run-time control: the state file overrides persist to, feature flags,
// routes' flag match and maintenance switch, and the event rules that turn alerts
// into overrides. The override targets themselves check action values against the
// running config (src/primary/overrides/), since only they know what a value means.
import { resolve } from 'node:path';
import { z } from 'zod';
import { durationMs, percent } from '../units/zod-units.js';

const flagName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected a flag name of letters, digits, "_", "." and "-" (at most 64)');
const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected a header name')
  .transform((h) => h.toLowerCase());

/** true/false, or a share of callers: "25%" or a number 0–100 → basis points (0–10000) */
export const flagValue = z.union([z.boolean(), percent]).transform((v) => (v === true ? 10_000 : v === false ? 0 : Math.round(v * 100)));

export const flagSchema = z.strictObject({
  value: flagValue.default(0),
  /**
   * A percentage flag picks callers by a hash of this request header; without it (or
   * when a request lacks the header) by the client address (after trusted proxies).
   */
  stickyHeader: headerName.optional(),
});

export const flagsSchema = z.record(flagName, flagSchema).default({});

export const stateSchema = z.strictObject({
  /** where overrides and rollout progress are kept across restarts (JSON, written tmp + rename); none: they live in memory only */
  file: z
    .string()
    .min(1)
    .transform((p) => resolve(p))
    .optional(),
});

/** routes[].match.flag: the route matches only while the flag is on for the request */
export const routeFlagMatch = flagName.optional();

/** routes[].maintenance: answer this instead of proxying while the flag is on for the request */
export const maintenanceSchema = z
  .strictObject({
    flag: flagName,
    status: z.number().int().min(200).max(599).default(503),
    body: z.string().max(64 * 1024).default('down for maintenance\n'),
    contentType: z.string().min(1).default('text/plain; charset=utf-8'),
    /** Retry-After in seconds on the maintenance answer; none when absent */
    retryAfter: durationMs.optional(),
  })
  .optional();

/**
 * What a purge action removes from the shared cache, as POST /v1/cache/purge takes it.
 * Exactly one of the three is checked with the event rules (eventRuleIssues), not here:
 * a refinement inside the action union would only say "invalid input".
 */
const purgeSchema = z.strictObject({
  /** a cache key as GET /v1/cache?keys lists it (host + path + ?query), with its variants */
  key: z.string().min(1).optional(),
  /** every key starting with this */
  prefix: z.string().min(1).optional(),
  /** every entry whose Cache-Tag or Surrogate-Key named it */
  tag: z.string().min(1).optional(),
});

const action = z.union([
  /** any override target, as POST /v1/overrides takes it */
  z.strictObject({ override: z.strictObject({ kind: z.string().min(1), target: z.unknown(), value: z.unknown() }) }),
  /** the rate-limit policy's rate times `factor` */
  z.strictObject({ scaleRateLimit: z.strictObject({ route: z.string().min(1), policy: z.string().min(1).optional(), factor: z.number().positive().max(1000) }) }),
  z.strictObject({ breaker: z.strictObject({ upstream: z.string().min(1), state: z.enum(['open', 'closed']) }) }),
  z.strictObject({ flag: z.strictObject({ name: flagName, value: z.union([z.boolean(), percent]) }) }),
  z.strictObject({ endpoint: z.strictObject({ upstream: z.string().min(1), address: z.string().min(1), weight: z.number().int().min(1).max(1_000_000).optional(), state: z.enum(['drain', 'enable']).optional() }) }),
  /** purge the shared cache when the event fires (not an override: nothing to restore, so a resolved event does nothing) */
  z.strictObject({ purge: purgeSchema }),
]);

export type EventAction = z.output<typeof action>;

export const eventRuleSchema = z.strictObject({
  /** a rule fires when every label here equals the event's (alertname, event, status and any other label) */
  on: z.record(z.string().min(1), z.string()).refine((o) => Object.keys(o).length > 0, 'at least one label to match'),
  do: z.array(action).min(1),
  /** how long the overrides hold unless a resolved alert undoes them first; none: until resolved or deleted */
  for: durationMs.optional(),
  name: z.string().min(1).optional(),
});

export const eventsSchema = z.array(eventRuleSchema).default([]);

/** The top-level sections, spread into the config schema. */
export const controlSections = {
  state: stateSchema.prefault({}),
  flags: flagsSchema,
  events: eventsSchema,
};

/** Every route's flag and maintenance flag must be a configured flag. */
export function flagIssues(raw: { flags?: unknown; routes?: unknown }): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  const names = typeof raw.flags === 'object' && raw.flags !== null ? Object.keys(raw.flags) : [];
  const known = names.join(', ') || 'none';
  if (Array.isArray(raw.routes)) {
    raw.routes.forEach((r: unknown, i) => {
      const route = r as { match?: { flag?: unknown }; maintenance?: { flag?: unknown } } | null;
      const f = route?.match?.flag;
      if (typeof f === 'string' && !names.includes(f)) out.push({ path: ['routes', i, 'match', 'flag'], message: `unknown flag "${f}" (known: ${known})` });
      const m = route?.maintenance?.flag;
      if (typeof m === 'string' && !names.includes(m)) out.push({ path: ['routes', i, 'maintenance', 'flag'], message: `unknown flag "${m}" (known: ${known})` });
    });
  }
  return out;
}
