// The part of the `observability:` section a worker needs, without the schema: workers
// load no schema library. test/unit/observability-config.test.ts keeps the defaults
// here equal to what the schema produces for an empty section.

export interface WorkerObservability {
  readonly histograms: boolean;
  readonly snapshotIntervalMs: number;
  readonly accessLog: { readonly sampleRate: number; readonly maxPerInterval: number };
  readonly tracing: { readonly enabled: boolean; readonly startIfAbsent: boolean; readonly sampleNewTraces: boolean };
}

/** Used where a config predates the section (e.g. a WorkerConfig built by a test). */
export const DEFAULT_WORKER_OBSERVABILITY: WorkerObservability = Object.freeze({
  histograms: true,
  snapshotIntervalMs: 1_000,
  accessLog: Object.freeze({ sampleRate: 0, maxPerInterval: 1000 }),
  tracing: Object.freeze({ enabled: true, startIfAbsent: true, sampleNewTraces: false }),
});
