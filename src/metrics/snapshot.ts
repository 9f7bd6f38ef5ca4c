// The telemetry payload a worker ships to the primary every snapshot interval
// (messages.ts carries it as `payload: unknown`; this file gives it a shape). Counts
// are deltas since the previous snapshot; histograms are the interval's HDR
// histogram in the standard V2 binary encoding (uncompressed: deflate would cost the
// worker's event loop more than the bytes cost the message channel).

/** Method slots for per-route counters: a fixed list keeps label cardinality bounded. */
export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'OTHER'] as const;
/** Status-class slots: index 0 is "no status" (client went away first), then 1xx … 5xx. */
export const CODE_CLASSES = ['aborted', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;
/** Upstream outcome slots: 0 is "error" (no response head), then 1xx … 5xx. */
export const UPSTREAM_CLASSES = ['error', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/**
 * Why a request was answered 503 TG_ERR_SHED: its upstream was at (its priority's share
 * of) the concurrency limit, or the gateway's own event-loop load put its priority
 * under the shed level. An Exchange's `shedReason` is an index here + 1 (0: not shed).
 */
export const SHED_REASONS = ['concurrency', 'gateway_load'] as const;

/** Route name used for requests that matched no route (404s, framing errors). */
export const UNMATCHED_ROUTE = '_unmatched';

export interface RouteDelta {
  readonly name: string;
  readonly upstream: string;
  /** METHODS.length × CODE_CLASSES.length request counts, method-major */
  readonly counts: number[];
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** requests shed, SHED_REASONS.length × 4 route priorities (critical first), reason-major (absent from older workers) */
  readonly shed?: number[];
  /** interval HDR histogram of end-to-end latency (µs), V2 encoding; null when histograms are off */
  hist: Uint8Array | null;
  /** exact sum of the values in `hist`, µs */
  histSumUs: number;
  /** requests counted in this delta and the exact sum of their latencies, µs (may differ from the histogram's cut) */
  readonly count: number;
  readonly sumUs: number;
}

/** One side of a split route: what the canary analysis compares (src/primary/rollout/). */
export interface SideDelta {
  readonly route: string;
  /** the side's upstream */
  readonly upstream: string;
  /** CODE_CLASSES.length request counts (end-to-end status, gateway errors included) */
  readonly counts: number[];
  /** interval HDR histogram of end-to-end latency (µs), V2 encoding; null when histograms are off */
  hist: Uint8Array | null;
  histSumUs: number;
}

export interface UpstreamDelta {
  readonly name: string;
  /** UPSTREAM_CLASSES.length counts of upstream attempts' final outcome */
  readonly outcomes: number[];
  /** interval HDR histogram of time to upstream response head (µs) */
  hist: Uint8Array | null;
  histSumUs: number;
  readonly count: number;
  readonly sumUs: number;
}

export interface WorkerRuntimeStats {
  /** event-loop utilisation over the interval, 0…1 */
  readonly elu: number;
  readonly loopDelayMeanMs: number;
  readonly loopDelayP99Ms: number;
  readonly loopDelayMaxMs: number;
  readonly heapUsedBytes: number;
  readonly heapTotalBytes: number;
}

export interface AccessLogEntry {
  /** when the request finished (ISO 8601); pino's own `time` is when the line was written */
  readonly endedAt: string;
  readonly requestId: string;
  readonly traceId: string | null;
  readonly method: string;
  readonly path: string;
  readonly route: string;
  readonly upstream: string | null;
  readonly endpoint: number;
  readonly status: number;
  readonly durationMs: number;
  readonly upstreamMs: number | null;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** who an api-key or jwt policy identified; null on routes without one */
  readonly consumer: string | null;
  readonly tenant: string | null;
  /** the tenant's tier, with a tenants section */
  readonly tier: string | null;
}

export interface TelemetrySnapshot {
  readonly kind: 'snapshot';
  readonly seq: number;
  /** Date.now() at the end of the interval */
  readonly at: number;
  readonly intervalMs: number;
  readonly routes: RouteDelta[];
  readonly upstreams: UpstreamDelta[];
  /** split routes, per side (absent from workers that predate splits) */
  readonly sides?: SideDelta[];
  readonly runtime: WorkerRuntimeStats;
  readonly accessLog: AccessLogEntry[];
  /** access-log entries sampled but not kept (over maxPerInterval) */
  readonly accessLogDropped: number;
}

export function isTelemetrySnapshot(p: unknown): p is TelemetrySnapshot {
  return typeof p === 'object' && p !== null && (p as { kind?: unknown }).kind === 'snapshot';
}
