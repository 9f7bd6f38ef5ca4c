// Worker-side telemetry: the place where latency histograms and the access log are
// set up on a worker thread, and where interval snapshots are shipped to the primary.
import type { WorkerData, WorkerToPrimary } from '../messages.js';

export interface WorkerTelemetry {
  /** called when a new config generation is applied (route/upstream names may change) */
  onConfig(generation: number): void;
  stop(): void;
}

export function startWorkerTelemetry(_data: WorkerData, _send: (msg: WorkerToPrimary) => void): WorkerTelemetry {
  return { onConfig() {}, stop() {} };
}
