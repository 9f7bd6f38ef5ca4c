// The `observability:` config section (histograms, snapshots, access log, tracing,
// scaling signals, webhook). Its own file so schema.ts stays a list of sections;
// defaults make the whole section optional.
import { z } from 'zod';
import { DEFAULT_BUCKETS_SECONDS } from './buckets.js';
import { durationMs, sizeBytes } from '../units/zod-units.js';
import type { WorkerObservability } from './worker-observability.js';

const duration = durationMs;

export { DEFAULT_BUCKETS_SECONDS };

const histogramsSchema = z.strictObject({
  /** off: workers record nothing (the A/B switch for measuring recording cost) */
  enabled: z.boolean().default(true),
  /** upper bounds (`le`) of the exported Prometheus buckets, seconds, ascending; +Inf is implied */
  buckets: z
    .array(z.number().positive().max(60))
    .min(1)
    .max(50)
    .refine((b) => b.every((v, i) => i === 0 || v > b[i - 1]!), 'expected strictly ascending bucket bounds')
    .default([...DEFAULT_BUCKETS_SECONDS]),
});

const accessLogSchema = z.strictObject({
  /** fraction of requests logged, 0 (off) … 1 (all) */
  sampleRate: z.number().min(0).max(1).default(0),
  /** per worker per snapshot interval; entries beyond this are counted as dropped, never queued */
  maxPerInterval: z.number().int().min(1).max(100_000).default(1000),
});

const tracingSchema = z.strictObject({
  /** validate and forward W3C traceparent/tracestate; false forwards them untouched (no parsing) */
  enabled: z.boolean().default(true),
  /** start a new trace (new traceparent) when the request has none or an invalid one */
  startIfAbsent: z.boolean().default(true),
  /** trace-flags "sampled" bit on traces we start (we record no spans ourselves) */
  sampleNewTraces: z.boolean().default(false),
});

const scalingTargetSchema = z.strictObject({
  /** what the target is per endpoint: request rate, in-flight requests, or p99 upstream latency */
  metric: z.enum(['rps', 'inflight', 'p99']),
  /** rps: requests/s per endpoint; inflight: concurrent requests per endpoint; p99: seconds */
  target: z.number().positive(),
  minReplicas: z.number().int().min(0).default(1),
  maxReplicas: z.number().int().min(1).default(100),
  /** HPA's ±10 %: no change while observed/target is within 1 ± tolerance */
  tolerance: z.number().min(0).max(1).default(0.1),
  /** HPA's downscale stabilisation: scale down only to the highest recommendation in this window */
  scaleDownStabilization: duration.default(300_000),
});

const scalingSchema = z.strictObject({
  /** how often recommendations are recomputed (HPA's sync period is 15 s) */
  interval: duration.default(15_000),
  upstreams: z.record(z.string(), scalingTargetSchema).default({}),
});

const forecastSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** how far ahead the request-rate forecast looks */
  horizon: duration.default(60_000),
  /** seasonal period of the Holt-Winters model; history keeps 3 seasons */
  season: duration.default(600_000),
  /** how often forecasts are refit (in the piscina pool) */
  interval: duration.default(15_000),
});

const webhookSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  timeout: duration.default(2_000),
  retries: z.number().int().min(0).max(10).default(3),
});

const decisionStreamSchema = z.strictObject({
  /** comment line sent on an idle stream, so proxies keep it and clients see a dead one */
  heartbeat: duration.pipe(z.number().min(100).max(300_000)).default(15_000),
  /** bytes a client may have waiting on its socket before its stream is closed (it resumes with Last-Event-ID) */
  clientBuffer: sizeBytes.pipe(z.number().int().min(4096).max(64 * 1024 * 1024)).default(1024 * 1024),
  /** concurrent streams; more are answered 503 */
  maxClients: z.number().int().min(1).max(1000).default(16),
});

const decisionsSchema = z.strictObject({
  /** decisions kept in the primary's ring (GET /v1/decisions, the stream's replay) */
  size: z.number().int().min(10).max(100_000).default(1000),
  stream: decisionStreamSchema.prefault({}),
});

const historySchema = z.strictObject({
  /** how much chart history the primary keeps, one point per snapshotInterval (at most 3600 points) */
  window: duration.pipe(z.number().min(10_000).max(86_400_000)).default(900_000),
});

export const observabilitySchema = z.strictObject({
  histograms: histogramsSchema.prefault({}),
  /** how often workers ship histogram/counter snapshots to the primary */
  snapshotInterval: duration.pipe(z.number().min(50, 'snapshotInterval must be at least 50ms').max(60_000)).default(1_000),
  accessLog: accessLogSchema.prefault({}),
  tracing: tracingSchema.prefault({}),
  scaling: scalingSchema.prefault({}),
  forecast: forecastSchema.prefault({}),
  webhook: webhookSchema.optional(),
  decisions: decisionsSchema.prefault({}),
  history: historySchema.prefault({}),
});

export type ObservabilityConfig = z.output<typeof observabilitySchema>;
export type ScalingTarget = z.output<typeof scalingTargetSchema>;

/** The part of the section a worker needs (structured-clone safe). */
export function workerObservability(o: ObservabilityConfig): WorkerObservability {
  return { histograms: o.histograms.enabled, snapshotIntervalMs: o.snapshotInterval, accessLog: o.accessLog, tracing: o.tracing };
}
