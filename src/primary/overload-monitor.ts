// Turns the workers' overload counters (pool.maxPending refusals per upstream, in
// their shared-memory ledgers; limits.maxConnections refusals, in their counter
// slices) into structured log events, once a second: workers never log per refused
// request, and an operator still sees when shedding started, how much, and when it
// stopped. Metrics and /status read the same counters live. The same pass reports each
// time a worker's connection pool stopped pipelining (pool.pipelining) after an anomaly.
import type { Logger } from './logger.js';
import type { SharedState } from '../shm/shared-state.js';
import { kWorkerConnectionsRefusedField, kWorkerInFlightField, PIPELINE_FALLBACK_MS, pipelineAnomalyNames } from '../shm/layout.js';
import type { EndpointWriter } from './endpoint-writer.js';
import type { Config } from '../config/schema.js';
import { decision } from './decisions/decision-log.js';

const INTERVAL_MS = 1000;

export interface OverloadMonitorDeps {
  readonly shm: SharedState;
  readonly endpoints: EndpointWriter;
  readonly workerSlots: () => readonly number[];
  readonly config: () => Config;
  readonly log: Logger;
}

export class OverloadMonitor {
  private readonly timer: NodeJS.Timeout;
  /** "upstream/worker" → refusals seen at the last check */
  private readonly lastOverloaded = new Map<string, number>();
  /** "upstream/worker" → pipelining fallbacks seen at the last check */
  private readonly lastFallbacks = new Map<string, number>();
  private readonly shedding = new Set<string>();
  private readonly lastRefused = new Map<number, number>();
  private readonly refusing = new Set<number>();

  constructor(private readonly deps: OverloadMonitorDeps) {
    this.timer = setInterval(() => this.check(), INTERVAL_MS);
    this.timer.unref();
    this.check(); // baseline, so counters from before (a restart keeps them) are not reported as new
  }

  check(): void {
    const { shm, endpoints, log } = this.deps;
    const cfg = this.deps.config();
    const slots = this.deps.workerSlots();
    for (const [name, u] of Object.entries(cfg.upstreams)) {
      for (const r of endpoints.overload(name, slots)) {
        const key = `${name}/${r.worker}`;
        const prevFallbacks = this.lastFallbacks.get(key);
        this.lastFallbacks.set(key, r.pipelineFallbacks);
        const stops = prevFallbacks === undefined ? 0 : (r.pipelineFallbacks - prevFallbacks) >>> 0;
        if (stops > 0) {
          const anomaly = pipelineAnomalyNames[r.pipelineAnomaly] ?? String(r.pipelineAnomaly);
          decision(log).warn(
            { event: 'upstream-pipelining-fallback', upstream: name, worker: r.worker, anomaly, fallbacks: stops, pipelining: u.pool.pipelining, fallbackMs: PIPELINE_FALLBACK_MS },
            `upstream ${name}: worker ${r.worker} stopped pipelining for ${PIPELINE_FALLBACK_MS / 1000} s after ${anomaly} (requests go one at a time per connection)`,
          );
        }
        const prev = this.lastOverloaded.get(key);
        this.lastOverloaded.set(key, r.overloaded);
        if (prev === undefined) continue;
        const delta = (r.overloaded - prev) >>> 0;
        if (delta > 0) {
          const first = !this.shedding.has(key);
          this.shedding.add(key);
          // The start and the end of refusing go into the decision feed; the per-second
          // counts between them are log lines only, so the feed is not flooded.
          (first ? decision(log) : log).warn(
            { event: 'upstream-overloaded', upstream: name, worker: r.worker, refused: delta, intervalMs: INTERVAL_MS, pending: r.pending, maxPending: u.pool.maxPending, connections: u.pool.connections, first },
            `upstream ${name}: worker ${r.worker} refused ${delta} requests (503 TG_ERR_UPSTREAM_OVERLOADED, ${r.pending} waiting, maxPending ${u.pool.maxPending})`,
          );
        } else if (this.shedding.delete(key)) {
          decision(log).info({ event: 'upstream-overload-over', upstream: name, worker: r.worker, pending: r.pending }, `upstream ${name}: worker ${r.worker} no longer refusing`);
        }
      }
    }
    for (const w of slots) {
      const c = shm.workerCounters(w);
      const refused = c[kWorkerConnectionsRefusedField] ?? 0;
      const prev = this.lastRefused.get(w);
      this.lastRefused.set(w, refused);
      if (prev === undefined) continue;
      const delta = refused - prev;
      if (delta > 0) {
        const first = !this.refusing.has(w);
        this.refusing.add(w);
        (first ? decision(log) : log).warn(
          { event: 'connections-refused', worker: w, refused: delta, first, intervalMs: INTERVAL_MS, active: c[kWorkerInFlightField] ?? 0, maxConnections: cfg.limits.maxConnections },
          `worker ${w} refused ${delta} requests over limits.maxConnections (${cfg.limits.maxConnections})`,
        );
      } else if (this.refusing.delete(w)) {
        decision(log).info({ event: 'connections-refused-over', worker: w, active: c[kWorkerInFlightField] ?? 0 }, `worker ${w} no longer refusing connections`);
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
