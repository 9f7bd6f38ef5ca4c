// Read-only views of shared-memory tables that other modules own (endpoint tables,
// limiter policy rows), for metrics and scaling. Consistent reads use the upstream's
// seqlock like any reader; a scrape that keeps colliding with writes takes the last
// attempt (a metric a microsecond stale is harmless).
import { EndpointTable, type WorkerLedger } from '../shm/endpoint-table.js';
import {
  endpointStateNames,
  kEndpointAddressField,
  kEndpointEjectionsField,
  kEndpointEwmaField,
  kEndpointFailuresField,
  kEndpointInFlightField,
  kEndpointRequestsField,
  kEndpointStateField,
  kLimiterPolicyAllowedInt32,
  kLimiterPolicyDeniedInt32,
  kLimiterPolicyInUseField,
  kLimiterPolicyMultiplierField,
  kLimiterPolicyOverflowInt32,
  kLimiterPolicyWords,
  kUpstreamHealthyField,
  kUpstreamInUseField,
  kUpstreamNoEndpointField,
  kUpstreamPanicField,
  kUpstreamRowsField,
  kUpstreamSeqField,
} from '../shm/layout.js';
import type { SharedState } from '../shm/shared-state.js';

export interface EndpointRead {
  readonly address: string;
  readonly state: string;
  readonly inFlight: number;
  readonly ewmaUs: number;
  readonly ejections: number;
  readonly requests: number;
  readonly failures: number;
}

export interface UpstreamTableRead {
  readonly name: string;
  /** slot in the tables (keys the workers' ledgers) */
  readonly slot: number;
  readonly healthy: number;
  readonly panic: boolean;
  readonly noEndpoint: number;
  readonly endpoints: EndpointRead[];
}

const TRIES = 8;
const tables = new WeakMap<SharedState, EndpointTable>();

export function readEndpointTables(shm: SharedState): UpstreamTableRead[] {
  let t = tables.get(shm);
  if (t === undefined) tables.set(shm, (t = new EndpointTable(shm)));
  const out: UpstreamTableRead[] = [];
  for (let u = 0; u < t.maxUpstreams; u++) {
    if (t.upstreamField(u, kUpstreamInUseField) !== 1) continue;
    let read: UpstreamTableRead | null = null;
    for (let i = 0; i < TRIES; i++) {
      const v1 = t.upstreamField(u, kUpstreamSeqField);
      if ((v1 & 1) !== 0 && i < TRIES - 1) continue;
      const rows = Math.min(t.upstreamField(u, kUpstreamRowsField), t.maxEndpoints);
      const endpoints: EndpointRead[] = [];
      for (let e = 0; e < rows; e++) {
        if (t.rowField(u, e, kEndpointAddressField) === 0) continue; // free row
        endpoints.push({
          address: t.readAddress(u, e),
          state: endpointStateNames[t.rowField(u, e, kEndpointStateField)] ?? 'unknown',
          inFlight: Math.max(0, t.rowField(u, e, kEndpointInFlightField)),
          ewmaUs: t.rowField(u, e, kEndpointEwmaField),
          ejections: t.rowField(u, e, kEndpointEjectionsField),
          requests: t.rowField(u, e, kEndpointRequestsField) >>> 0,
          failures: t.rowField(u, e, kEndpointFailuresField) >>> 0,
        });
      }
      read = { name: t.readName(u), slot: u, healthy: t.upstreamField(u, kUpstreamHealthyField), panic: t.upstreamField(u, kUpstreamPanicField) === 1, noEndpoint: t.upstreamField(u, kUpstreamNoEndpointField) >>> 0, endpoints };
      if (t.upstreamField(u, kUpstreamSeqField) === v1) break;
    }
    if (read !== null) out.push(read);
  }
  return out;
}

/** Each worker's requests waiting for the upstream's connections, and its pool.maxPending refusals (worker ledgers). */
export function readOverload(shm: SharedState, slot: number, workers: readonly number[]): ({ worker: number } & WorkerLedger)[] {
  let t = tables.get(shm);
  if (t === undefined) tables.set(shm, (t = new EndpointTable(shm)));
  const table = t;
  return workers.map((w) => ({ worker: w, ...table.ledger(w, slot) }));
}

export interface LimiterPolicyRead {
  readonly row: number;
  readonly allowed: number;
  readonly denied: number;
  readonly overflow: number;
  /** 1 = as configured; an adaptive rate limit moves it */
  readonly multiplier: number;
}

export function readLimiterPolicies(shm: SharedState): LimiterPolicyRead[] {
  const out: LimiterPolicyRead[] = [];
  const { limiterPolicies } = shm.layout.limits;
  for (let row = 0; row < limiterPolicies; row++) {
    const base = shm.layout.limiterPolicyOffset + row * kLimiterPolicyWords;
    if (shm.f64[base + kLimiterPolicyInUseField] !== 1) continue;
    const i = base * 2;
    out.push({
      row,
      allowed: Atomics.load(shm.i32, i + kLimiterPolicyAllowedInt32) >>> 0,
      denied: Atomics.load(shm.i32, i + kLimiterPolicyDeniedInt32) >>> 0,
      overflow: Atomics.load(shm.i32, i + kLimiterPolicyOverflowInt32) >>> 0,
      multiplier: shm.f64[base + kLimiterPolicyMultiplierField]!,
    });
  }
  return out;
}
