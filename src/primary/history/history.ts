// History for the console's charts: every snapshot interval, per route and per
// upstream the request rate, error rate and p50/p90/p99 latency of that interval,
// and per worker its event-loop utilisation, kept for `observability.history.window`.
//
// Rates are deltas of the primary's cumulative counters over the measured time
// between samples; percentiles come from the histograms merged over all workers for
// exactly that interval (the aggregation thread's history window), not from buckets.
import { HistoryRing, type SeriesRead } from './history-ring.js';
import { adminQueryError } from '../decisions/decision-query.js';

export const TRAFFIC_FIELDS = ['rps', 'errorsPerSecond', 'p50Ms', 'p90Ms', 'p99Ms'] as const;
export const WORKER_FIELDS = ['elu'] as const;
/** The percentiles asked of the aggregation thread, in TRAFFIC_FIELDS order. */
export const HISTORY_PERCENTILES = [50, 90, 99] as const;
/** Upper bound on points per series, whatever window / interval asks for. */
export const MAX_HISTORY_POINTS = 3600;

export interface TrafficTotals {
  /** cumulative since start */
  readonly requests: number;
  /** cumulative: 5xx answers, and for upstreams also attempts with no response */
  readonly errors: number;
}

export interface LatencyWindow {
  /** microseconds, HISTORY_PERCENTILES order */
  readonly percentilesUs: readonly number[];
  readonly count: number;
}

export interface HistoryInputs {
  readonly routes: ReadonlyMap<string, TrafficTotals>;
  readonly upstreams: ReadonlyMap<string, TrafficTotals>;
  readonly routeLatency: ReadonlyMap<string, LatencyWindow>;
  readonly upstreamLatency: ReadonlyMap<string, LatencyWindow>;
  readonly workerElu: ReadonlyMap<number, number>;
}

export type HistoryKind = 'route' | 'upstream' | 'worker';

export function historyCapacity(windowMs: number, intervalMs: number): number {
  return Math.max(2, Math.min(MAX_HISTORY_POINTS, Math.ceil(windowMs / intervalMs)));
}

type Named = Record<string, string | (number | null)[]>;

function named(s: SeriesRead, fields: readonly string[]): Named {
  const out: Named = { name: s.name };
  fields.forEach((f, i) => (out[f] = s.values[i] as (number | null)[]));
  return out;
}

export class History {
  private routes: HistoryRing;
  private upstreams: HistoryRing;
  private workers: HistoryRing;
  private readonly last = new Map<string, TrafficTotals>();
  private lastAt = 0;

  constructor(
    capacity: number,
    private intervalMs: number,
  ) {
    this.routes = new HistoryRing(capacity, TRAFFIC_FIELDS.length);
    this.upstreams = new HistoryRing(capacity, TRAFFIC_FIELDS.length);
    this.workers = new HistoryRing(capacity, WORKER_FIELDS.length);
  }

  get capacity(): number {
    return this.routes.capacity;
  }

  get points(): number {
    return this.routes.length;
  }

  /** A new window or interval (reload): the history starts over at the new size. */
  resize(capacity: number, intervalMs: number): void {
    this.intervalMs = intervalMs;
    if (capacity === this.capacity) return;
    this.routes = new HistoryRing(capacity, TRAFFIC_FIELDS.length);
    this.upstreams = new HistoryRing(capacity, TRAFFIC_FIELDS.length);
    this.workers = new HistoryRing(capacity, WORKER_FIELDS.length);
  }

  sample(nowMs: number, inputs: HistoryInputs): void {
    const first = this.lastAt === 0;
    const dt = (nowMs - this.lastAt) / 1000;
    this.lastAt = nowMs;
    const traffic = (prefix: string, totals: ReadonlyMap<string, TrafficTotals>, lat: ReadonlyMap<string, LatencyWindow>): Map<string, number[]> => {
      const out = new Map<string, number[]>();
      for (const [name, t] of totals) {
        const key = prefix + name;
        const prev = this.last.get(key);
        this.last.set(key, t);
        if (first || dt <= 0) continue; // the first sample only sets the baseline
        const l = lat.get(name);
        const has = l !== undefined && l.count > 0;
        out.set(name, [
          Math.max(0, (t.requests - (prev?.requests ?? 0)) / dt),
          Math.max(0, (t.errors - (prev?.errors ?? 0)) / dt),
          has ? l.percentilesUs[0]! / 1000 : NaN,
          has ? l.percentilesUs[1]! / 1000 : NaN,
          has ? l.percentilesUs[2]! / 1000 : NaN,
        ]);
      }
      return out;
    };
    const r = traffic('r\u0000', inputs.routes, inputs.routeLatency);
    const u = traffic('u\u0000', inputs.upstreams, inputs.upstreamLatency);
    if (first || dt <= 0) return;
    this.routes.push(nowMs, r);
    this.upstreams.push(nowMs, u);
    const w = new Map<string, number[]>();
    for (const [slot, elu] of inputs.workerElu) w.set(String(slot), [elu]);
    this.workers.push(nowMs, w);
  }

  /** GET /v1/history?kind=route|upstream|worker&name=a,b&since=<epoch ms> */
  query(url: URL): unknown {
    const kind = url.searchParams.get('kind');
    if (kind !== null && kind !== 'route' && kind !== 'upstream' && kind !== 'worker') throw adminQueryError(`kind must be "route", "upstream" or "worker", got ${JSON.stringify(kind)}`);
    const sinceRaw = url.searchParams.get('since');
    if (sinceRaw !== null && !/^\d{1,15}$/.test(sinceRaw)) throw adminQueryError(`since must be a time in epoch milliseconds, got ${JSON.stringify(sinceRaw)}`);
    const since = sinceRaw === null ? -Infinity : Number(sinceRaw);
    const nameParam = url.searchParams.getAll('name').flatMap((n) => n.split(',')).filter((n) => n !== '');
    const names = nameParam.length > 0 ? new Set(nameParam) : undefined;
    const group = (ring: HistoryRing, fields: readonly string[]) => {
      const r = ring.read(since, names);
      return { times: r.times, series: r.series.map((s) => named(s, fields)) };
    };
    return {
      intervalMs: this.intervalMs,
      capacity: this.capacity,
      fields: { route: TRAFFIC_FIELDS, upstream: TRAFFIC_FIELDS, worker: WORKER_FIELDS },
      ...(kind === null || kind === 'route' ? { routes: group(this.routes, TRAFFIC_FIELDS) } : {}),
      ...(kind === null || kind === 'upstream' ? { upstreams: group(this.upstreams, TRAFFIC_FIELDS) } : {}),
      ...(kind === null || kind === 'worker' ? { workers: group(this.workers, WORKER_FIELDS) } : {}),
    };
  }
}
