// `upstreams.<name>.health`: active checks (the primary probes each endpoint) and
// passive outlier detection (workers count failures, the primary ejects). Defaults for
// passive follow Envoy's outlier detection: consecutive 5xx = 5,
// interval 10 s, base ejection 30 s × ejection count, max ejection 10 %, max time 300 s.
import { z } from 'zod';
import { durationMs } from '../units/zod-units.js';

/** 200, "2xx", or "200-299" → an inclusive [from, to] range. */
const statusRange = z.union([z.number(), z.string()]).transform((v, ctx): readonly [number, number] => {
  const bad = (): never => {
    ctx.addIssue({ code: 'custom', message: `expected a status like 200, "2xx" or "200-299", got ${JSON.stringify(v)}` });
    return z.NEVER;
  };
  if (typeof v === 'number') return Number.isInteger(v) && v >= 100 && v <= 599 ? [v, v] : bad();
  const cls = /^([1-5])xx$/i.exec(v);
  if (cls) return [Number(cls[1]) * 100, Number(cls[1]) * 100 + 99];
  const range = /^(\d{3})-(\d{3})$/.exec(v);
  if (range && Number(range[1]) >= 100 && Number(range[2]) <= 599 && Number(range[1]) <= Number(range[2])) return [Number(range[1]), Number(range[2])];
  if (/^\d{3}$/.test(v) && Number(v) >= 100 && Number(v) <= 599) return [Number(v), Number(v)];
  return bad();
});

export const activeHealthSchema = z
  .strictObject({
    type: z.enum(['http', 'tcp']).default('http'),
    /** HTTP only: the path probed with GET */
    path: z.string().startsWith('/', 'expected a path starting with "/"').default('/health'),
    /** HTTP only: Host header of the probe; default the endpoint's host:port */
    host: z.string().min(1).optional(),
    /** HTTP only: statuses that count as a pass (Envoy's default is 200 alone; any 2xx is what nginx and Kong users expect) */
    expectedStatuses: z.array(statusRange).min(1).default([[200, 299]]),
    interval: durationMs.default(5_000),
    /** a probe that has not passed within this time fails (a stopped process accepts TCP and never answers) */
    timeout: durationMs.default(1_000),
    /** consecutive passes that make an unhealthy endpoint healthy */
    healthy: z.number().int().min(1).max(100).default(2),
    /** consecutive failures that make a healthy endpoint unhealthy */
    unhealthy: z.number().int().min(1).max(100).default(3),
    /** each wait is interval + random(0, jitter), so checks from many gateways do not beat in step */
    jitter: durationMs.default(0),
  })
  .superRefine((a, ctx) => {
    if (a.timeout > a.interval) ctx.addIssue({ code: 'custom', path: ['timeout'], message: `timeout (${a.timeout}ms) must not exceed interval (${a.interval}ms)` });
  });

export const passiveHealthSchema = z.strictObject({
  /** consecutive 5xx responses (from any worker) that eject an endpoint; 0 disables */
  consecutive5xx: z.number().int().min(0).max(10_000).default(5),
  /** consecutive connect failures / resets before a response; 0 disables */
  consecutiveConnectFailures: z.number().int().min(0).max(10_000).default(5),
  /** the sweep that returns ejected endpoints whose time is up and decays ejection counts */
  interval: durationMs.default(10_000),
  /** ejection time = baseEjection × times ejected, capped by maxEjection */
  baseEjection: durationMs.default(30_000),
  maxEjection: durationMs.default(300_000),
  /** at most this share of an upstream's endpoints is passively ejected at once (one is always allowed, as in Envoy) */
  maxEjectionPercent: z.number().min(0).max(100).default(10),
});

export const healthSchema = z.strictObject({
  active: activeHealthSchema.optional(),
  passive: passiveHealthSchema.optional(),
});

export type ActiveHealthConfig = z.output<typeof activeHealthSchema>;
export type PassiveHealthConfig = z.output<typeof passiveHealthSchema>;
export type HealthConfig = z.output<typeof healthSchema>;
