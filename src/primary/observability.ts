// Primary-side observability: metrics exposition, histogram aggregation and the
// scaling signals. The gateway creates it once and hands it worker messages.
import type { AdminRoutes } from './admin-server.js';
import type { Logger } from './logger.js';
import type { Config } from '../config/schema.js';
import type { SharedState } from '../shm/shared-state.js';
import type { WorkerInfo } from './supervisor.js';

export interface ObservabilityDeps {
  readonly shm: SharedState;
  readonly workers: () => readonly WorkerInfo[];
  readonly config: () => Config;
  readonly log: Logger;
}

export interface Observability {
  readonly adminRoutes: NonNullable<AdminRoutes['extra']>;
  /** a `telemetry` message from a worker */
  onWorkerTelemetry(slot: number, payload: unknown): void;
  onConfig(config: Config, generation: number): void;
  close(): Promise<void>;
}

export function createObservability(_deps: ObservabilityDeps): Observability {
  return { adminRoutes: {}, onWorkerTelemetry() {}, onConfig() {}, async close() {} };
}
