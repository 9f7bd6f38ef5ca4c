// Worker-side telemetry: latency histograms, per-route/upstream counters and the
// sampled access log, recorded in the log phase (request-log.ts) and shipped to the
// primary as one message per snapshot interval — never per request.
//
// Why counters live here and not in shm: per-route × method × status-class counts
// depend on the config generation (route count changes on reload) and are read only
// at scrape time, so a snapshot delta every interval (1 s by default) is as good as
// a live cell and needs no change to the shared-memory layout.
// The per-worker totals that the control loops read live are in shm already.
//
// Hot-path cost: one WASM `recordValue` per histogram (≈40–60 ns measured, vs ≈220–290
// ns for the JS implementations of hdr-histogram-js 3.0.1), a handful of typed-array
// increments, and no allocation unless the request is sampled for the access log.
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import * as hdr from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';
import type { WorkerConfig, WorkerData, WorkerToPrimary } from '../messages.js';
import { DEFAULT_WORKER_OBSERVABILITY, type WorkerObservability } from '../metrics/worker-observability.js';
import { HDR_DIGITS, HDR_HIGHEST_US, HDR_LOWEST_US } from '../metrics/hdr.js';
import {
  CODE_CLASSES,
  METHODS,
  SHED_REASONS,
  UNMATCHED_ROUTE,
  UPSTREAM_CLASSES,
  type AccessLogEntry,
  type RouteDelta,
  type SideDelta,
  type TelemetrySnapshot,
  type UpstreamDelta,
} from '../metrics/snapshot.js';
import { setRequestFinishedHook, type FinishedRequest } from './request-log.js';
import { clientTraceId, traceIdOf } from './trace-context.js';

export interface WorkerTelemetry {
  /** called when a new config generation is applied (route/upstream names may change) */
  onConfig(generation: number, config?: WorkerConfig): void;
  /** ships what is left and stops the timer (drain, crash) */
  stop(): void;
}

const N_CLASSES = CODE_CLASSES.length;
const N_UP_CLASSES = UPSTREAM_CLASSES.length;
const UP_ERROR = 0;
const UP_CLIENT_ABORTED = N_UP_CLASSES - 1;
/** histograms encoded per event-loop turn when shipping a snapshot */
const HIST_SLICE = 8;

let useWasm = false;
try {
  hdr.initWebAssemblySync();
  useWasm = true;
} catch {
  // The JS implementation gives the same encoding, only slower to record.
  useWasm = false;
}

function newHistogram(): Histogram {
  return hdr.build({
    lowestDiscernibleValue: HDR_LOWEST_US,
    highestTrackableValue: HDR_HIGHEST_US,
    numberOfSignificantValueDigits: HDR_DIGITS,
    // A value above the range throws when autoResize is off; values are clamped first.
    autoResize: false,
    bitBucketSize: 32, // per interval: 2^31 per bucket cannot overflow in one second
    useWebAssembly: useWasm,
  });
}

class RouteStats {
  hist: Histogram | null = null;
  /** sum of what `hist` holds, taken together with it (the encode may lag the counters) */
  histSumUs = 0;
  count = 0;
  sumUs = 0;
  readonly counts = new Float64Array(METHODS.length * N_CLASSES);
  /** 503 TG_ERR_SHED by reason × priority (SHED_REASONS-major) */
  readonly shed = new Float64Array(SHED_REASONS.length * 4);
  shedAny = false;
  bytesIn = 0;
  bytesOut = 0;
  constructor(
    readonly name: string,
    public upstream: string,
  ) {}
}

class UpstreamStats {
  hist: Histogram | null = null;
  histSumUs = 0;
  count = 0;
  sumUs = 0;
  readonly outcomes = new Float64Array(N_UP_CLASSES);
  constructor(readonly name: string) {}
}

/** One side of a split route: the counts and latencies the canary analysis compares. */
class SideStats {
  hist: Histogram | null = null;
  histSumUs = 0;
  readonly counts = new Float64Array(N_CLASSES);
  constructor(
    readonly route: string,
    readonly upstream: string,
  ) {}
}

/** One config generation's index → stats mapping; stats objects are shared by name across generations. */
interface GenerationView {
  readonly generation: number;
  readonly routes: readonly RouteStats[];
  readonly routeUpstream: readonly number[];
  readonly upstreams: readonly UpstreamStats[];
  /** per route: its sides' stats, or null for a route without a split */
  readonly sides: readonly (readonly SideStats[] | null)[];
}

function methodIndex(m: string): number {
  switch (m) {
    case 'GET':
      return 0;
    case 'HEAD':
      return 1;
    case 'POST':
      return 2;
    case 'PUT':
      return 3;
    case 'PATCH':
      return 4;
    case 'DELETE':
      return 5;
    case 'OPTIONS':
      return 6;
    case 'TRACE':
      return 7;
    default:
      return 8;
  }
}

function classIndex(status: number): number {
  return status >= 100 && status < 600 ? (status / 100) | 0 : 0;
}

function toUs(ms: number): number {
  const us = Math.round(ms * 1000);
  return us < 0 ? 0 : us > HDR_HIGHEST_US ? HDR_HIGHEST_US : us;
}

export function startWorkerTelemetry(data: WorkerData, send: (msg: WorkerToPrimary) => void): WorkerTelemetry {
  let obs: WorkerObservability = data.config.observability ?? DEFAULT_WORKER_OBSERVABILITY;
  const routeStats = new Map<string, RouteStats>();
  const upstreamStats = new Map<string, UpstreamStats>();
  const sideStats = new Map<string, SideStats>();
  const views = new Map<number, GenerationView>();
  const unmatched = new RouteStats(UNMATCHED_ROUTE, '');
  routeStats.set(UNMATCHED_ROUTE, unmatched);
  let accessLog: AccessLogEntry[] = [];
  let accessLogDropped = 0;
  let seq = 0;

  function ensureHist<T extends { hist: Histogram | null }>(s: T): void {
    if (obs.histograms && s.hist === null) s.hist = newHistogram();
  }

  /** Built once per generation (preallocates every route's and upstream's histograms). */
  function viewFor(config: WorkerConfig): GenerationView {
    let v = views.get(config.generation);
    if (v !== undefined) return v;
    const upstreams = config.upstreams.map((u) => {
      let s = upstreamStats.get(u.name);
      if (s === undefined) upstreamStats.set(u.name, (s = new UpstreamStats(u.name)));
      ensureHist(s);
      return s;
    });
    const routes = config.routes.map((r) => {
      const up = config.upstreams[r.upstream]?.name ?? '';
      let s = routeStats.get(r.name);
      if (s === undefined) routeStats.set(r.name, (s = new RouteStats(r.name, up)));
      s.upstream = up;
      ensureHist(s);
      return s;
    });
    const sides = config.routes.map((r) =>
      r.split === null
        ? null
        : r.split.sides.map((u) => {
            const up = config.upstreams[u]?.name ?? '';
            const key = `${r.name}\u0000${up}`;
            let s = sideStats.get(key);
            if (s === undefined) sideStats.set(key, (s = new SideStats(r.name, up)));
            ensureHist(s);
            return s;
          }),
    );
    ensureHist(unmatched);
    v = { generation: config.generation, routes, routeUpstream: config.routes.map((r) => r.upstream), upstreams, sides };
    views.set(config.generation, v);
    // Requests of a generation older than the last few are long gone; let their view go.
    for (const g of views.keys()) if (g < config.generation - 4) views.delete(g);
    return v;
  }

  let current = viewFor(data.config);

  const onFinished = (ex: FinishedRequest, status: number, endedAt: number): void => {
    let v = current;
    const rt = ex.rt;
    if (v.generation !== rt.generation) v = viewFor(rt.config);
    const route = ex.route;
    const rs = route === null ? unmatched : v.routes[route.index]!;
    const us = toUs(endedAt - ex.startedAt);
    if (rs.hist !== null) {
      rs.hist.recordValue(us);
      rs.histSumUs += us;
    }
    rs.count++;
    rs.sumUs += us;
    rs.counts[methodIndex(ex.head.method) * N_CLASSES + classIndex(status)]! += 1;
    rs.bytesIn += ex.requestBytes;
    rs.bytesOut += ex.responseBytes;
    if (ex.shedReason !== 0) {
      rs.shed[(ex.shedReason - 1) * 4 + ex.shedPriority]! += 1;
      rs.shedAny = true;
    }
    let upUs = -1;
    if (route !== null && ex.side >= 0) {
      const ss = v.sides[route.index]?.[ex.side];
      if (ss !== undefined) {
        if (ss.hist !== null) {
          ss.hist.recordValue(us);
          ss.histSumUs += us;
        }
        ss.counts[classIndex(status)]! += 1;
      }
    }
    if (route !== null && ex.endpointIndex >= 0) {
      // A split route's request counts for the side it went to.
      const u = v.upstreams[ex.side >= 0 ? (route.route.split?.sides[ex.side] ?? v.routeUpstream[route.index]!) : v.routeUpstream[route.index]!]!;
      if (ex.upstreamHeadersAt > 0) {
        upUs = toUs(ex.upstreamHeadersAt - ex.upstreamStartedAt);
        if (u.hist !== null) {
          u.hist.recordValue(upUs);
          u.histSumUs += upUs;
        }
        u.count++;
        u.sumUs += upUs;
        u.outcomes[status === 0 ? UP_CLIENT_ABORTED : classIndex(status)]! += 1;
      } else {
        u.outcomes[UP_ERROR]! += 1;
      }
    }
    const rate = obs.accessLog.sampleRate;
    if (rate > 0 && (rate >= 1 || Math.random() < rate)) {
      if (accessLog.length >= obs.accessLog.maxPerInterval) {
        accessLogDropped++;
        return;
      }
      accessLog.push({
        endedAt: new Date().toISOString(),
        requestId: ex.requestId,
        traceId: ex.forwarded ? traceIdOf(ex.headers) : clientTraceId(ex.head.headers),
        method: ex.head.method,
        path: ex.head.path,
        route: rs.name,
        upstream: ex.upstream?.name ?? null,
        endpoint: ex.endpointIndex,
        status,
        durationMs: us / 1000,
        upstreamMs: upUs >= 0 ? upUs / 1000 : null,
        bytesIn: ex.requestBytes,
        bytesOut: ex.responseBytes,
        consumer: ex.consumer,
        tenant: ex.tenant,
        tier: ex.tier,
      });
    }
  };
  setRequestFinishedHook(onFinished);

  // Event-loop health, per interval: utilisation (busy share) and timer delay.
  let elu: EventLoopUtilization = performance.eventLoopUtilization();
  let loopDelay: IntervalHistogram | null = null;
  try {
    loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
  } catch {
    loopDelay = null;
  }

  type HistStats = { hist: Histogram | null; histSumUs: number };
  type Pending = { stats: HistStats; delta: { hist: Uint8Array | null; histSumUs: number } };

  /** Encodes and resets one interval histogram (≈0.1–0.2 ms for a busy one, measured). */
  function takeHist(p: Pending): void {
    const h = p.stats.hist;
    if (h === null || h.totalCount === 0) return;
    p.delta.hist = (h as Histogram & { encode(): Uint8Array }).encode();
    p.delta.histSumUs = p.stats.histSumUs;
    h.reset();
    p.stats.histSumUs = 0;
  }

  let shipping = false;

  /**
   * Counters are cut synchronously; histogram encodes run HIST_SLICE per event-loop
   * turn, so 100 busy routes never stall this worker's requests for 20 ms at once. The
   * histograms then cover a slightly later cut than the counters; their own sum goes
   * with them (histSumUs), so `_sum`/`_count` stay consistent with each other.
   */
  function ship(sync: boolean): void {
    if (shipping && !sync) return; // the previous round is still encoding; the next takes all
    const pending: Pending[] = [];
    const routes: RouteDelta[] = [];
    for (const s of routeStats.values()) {
      // A histogram may hold values recorded after the last counter cut (see below).
      if (s.count === 0 && (s.hist === null || s.hist.totalCount === 0)) continue;
      const delta: RouteDelta = { name: s.name, upstream: s.upstream, counts: Array.from(s.counts), ...(s.shedAny ? { shed: Array.from(s.shed) } : {}), bytesIn: s.bytesIn, bytesOut: s.bytesOut, hist: null, histSumUs: 0, count: s.count, sumUs: s.sumUs };
      if (s.shedAny) {
        s.shed.fill(0);
        s.shedAny = false;
      }
      routes.push(delta);
      if (s.hist !== null) pending.push({ stats: s, delta });
      s.counts.fill(0);
      s.count = s.sumUs = s.bytesIn = s.bytesOut = 0;
    }
    const upstreams: UpstreamDelta[] = [];
    for (const s of upstreamStats.values()) {
      let any = s.count;
      for (let i = 0; i < s.outcomes.length; i++) any += s.outcomes[i]!;
      if (any === 0 && (s.hist === null || s.hist.totalCount === 0)) continue;
      const delta = { name: s.name, outcomes: Array.from(s.outcomes), hist: null, histSumUs: 0, count: s.count, sumUs: s.sumUs };
      upstreams.push(delta);
      if (s.hist !== null) pending.push({ stats: s, delta });
      s.outcomes.fill(0);
      s.count = s.sumUs = 0;
    }
    const sides: SideDelta[] = [];
    for (const s of sideStats.values()) {
      let any = 0;
      for (let i = 0; i < s.counts.length; i++) any += s.counts[i]!;
      if (any === 0 && (s.hist === null || s.hist.totalCount === 0)) continue;
      const delta: SideDelta = { route: s.route, upstream: s.upstream, counts: Array.from(s.counts), hist: null, histSumUs: 0 };
      sides.push(delta);
      if (s.hist !== null) pending.push({ stats: s, delta });
      s.counts.fill(0);
    }
    const nowElu = performance.eventLoopUtilization();
    const eluDelta = performance.eventLoopUtilization(nowElu, elu);
    elu = nowElu;
    const heap = getHeapStatistics();
    let delayMean = 0;
    let delayP99 = 0;
    let delayMax = 0;
    if (loopDelay !== null && loopDelay.count > 0) {
      delayMean = loopDelay.mean / 1e6;
      delayP99 = loopDelay.percentile(99) / 1e6;
      delayMax = loopDelay.max / 1e6;
      loopDelay.reset();
    }
    const snapshot: TelemetrySnapshot = {
      kind: 'snapshot',
      seq: seq++,
      at: Date.now(),
      intervalMs: obs.snapshotIntervalMs,
      routes,
      upstreams,
      sides,
      runtime: { elu: eluDelta.utilization, loopDelayMeanMs: delayMean, loopDelayP99Ms: delayP99, loopDelayMaxMs: delayMax, heapUsedBytes: heap.used_heap_size, heapTotalBytes: heap.total_heap_size },
      accessLog,
      accessLogDropped,
    };
    accessLog = [];
    accessLogDropped = 0;
    const finish = (): void => {
      shipping = false;
      send({ type: 'telemetry', workerId: data.workerId, slot: data.slot, payload: snapshot });
    };
    if (sync) {
      for (const p of pending) takeHist(p);
      finish();
      return;
    }
    shipping = true;
    let i = 0;
    const step = (): void => {
      try {
        const end = Math.min(pending.length, i + HIST_SLICE);
        for (; i < end; i++) takeHist(pending[i]!);
        if (i < pending.length) setImmediate(step);
        else finish();
      } catch {
        shipping = false; // the thread is closing (port gone); nothing to report to
      }
    };
    step();
  }

  let timer: NodeJS.Timeout | null = null;
  function arm(): void {
    if (timer !== null) clearInterval(timer);
    timer = setInterval(ship, obs.snapshotIntervalMs, false);
    // The timer must never be what keeps a draining thread alive.
    timer.unref();
  }
  arm();

  return {
    onConfig(generation, config) {
      if (config === undefined || config.generation !== generation) return;
      const prevInterval = obs.snapshotIntervalMs;
      obs = config.observability ?? DEFAULT_WORKER_OBSERVABILITY;
      current = viewFor(config);
      if (obs.snapshotIntervalMs !== prevInterval) arm();
    },
    stop() {
      if (timer === null) return;
      clearInterval(timer);
      timer = null;
      setRequestFinishedHook(null);
      loopDelay?.disable();
      try {
        ship(true); // the last partial interval, so a drain loses no counts
      } catch {
        // the port may already be closing (crash path); nothing more to do
      }
    },
  };
}
