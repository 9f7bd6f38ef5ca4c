// The default histogram bounds, apart from the observability schema (config.ts) so that
// the aggregation thread can read them without loading zod.

/** Prometheus-style default bounds in seconds: 1 ms … 60 s, dense where APIs live. */
export const DEFAULT_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;
