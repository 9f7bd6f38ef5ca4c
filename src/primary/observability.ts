// Primary-side observability: metrics exposition, histogram aggregation and the
// scaling signals. The gateway creates it once and hands it worker messages.
//
// Data flow: workers ship a TelemetrySnapshot every `observability.snapshotInterval`
// → counters are summed here, interval HDR histograms go to the aggregation thread
// (piscina, src/metrics/aggregator.ts) → a scrape renders cached exports plus live
// shm reads; it never waits on a worker or the pool.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { AdminRoutes } from './admin-server.js';
import type { Logger } from './logger.js';
import type { Config } from '../config/schema.js';
import type { SharedState } from '../shm/shared-state.js';
import type { WorkerLedger } from '../shm/endpoint-table.js';
import type { WorkerInfo } from './supervisor.js';
import type { TlsStatus } from './tls-certificates.js';
import {
  kWorkerBytesInField,
  kWorkerBytesOutField,
  kWorkerClientAbortsField,
  kWorkerConnectionsRefusedField,
  kWorkerPluginErrorsField,
  kWorkerInFlightField,
  kWorkerRequestsField,
  kWorkerRetriesField,
  kWorkerStatus1xxField,
  kWorkerUpstreamErrorsField,
  kWorkerWsBytesInField,
  kWorkerWsBytesOutField,
  kWorkerWsConnectionsField,
  kWorkerWsMessagesInField,
  kWorkerWsMessagesOutField,
  kWorkerWsOpenField,
} from '../shm/layout.js';
import { Aggregator } from '../metrics/aggregator.js';
import type { ObservabilityConfig } from '../metrics/config.js';
import { histogramKey, splitHistogramKey } from '../metrics/hdr.js';
import type { IngestEntry } from '../metrics/histogram-store.js';
import { renderHistogram, type HistogramSeries } from '../metrics/prometheus.js';
import { Recommender, type Recommendation } from '../metrics/scaling.js';
import { CODE_CLASSES, METHODS, SHED_REASONS, UPSTREAM_CLASSES, isTelemetrySnapshot, type WorkerRuntimeStats } from '../metrics/snapshot.js';
import type { ForecastResult } from '../metrics/forecast.js';
import { WebhookNotifier } from '../metrics/webhook.js';
import { readEndpointTables, readLimiterPolicies, readOverload, type UpstreamTableRead } from '../metrics/shm-read.js';
import { STATUS_PAGE_HTML } from './status-page/page.js';
import type { DecisionFeed } from './decisions/decision-feed.js';
import type { DecisionStreamStats } from './decisions/decision-stream.js';
import { HISTORY_PERCENTILES, History, historyCapacity, type LatencyWindow, type TrafficTotals } from './history/history.js';
import { decision } from './decisions/decision-log.js';
import type { GuardStatus, SheddingStatus, WorkerScalingStatus } from '../controllers/scheduler.js';
import { priorityNames, type PriorityName } from '../shm/layout.js';
import { registerCacheMetrics } from './cache/cache-metrics.js';
import type { CacheStats } from './cache/cache-admin.js';

export interface ObservabilityDeps {
  readonly shm: SharedState;
  readonly workers: () => readonly WorkerInfo[];
  readonly config: () => Config;
  readonly log: Logger;
  /** the data plane's certificates (src/primary/tls-certificates.ts) */
  readonly tls?: () => TlsStatus;
  /** the decision feed and its stream, for their metrics (absent in tests that need neither) */
  readonly decisions?: DecisionFeed;
  readonly decisionStream?: DecisionStreamStats;
  /** breaker and concurrency controllers' state (src/controllers) */
  readonly controllers?: () => readonly GuardStatus[];
  /** the gateway-wide shed level (src/controllers/shed-level.ts) */
  readonly shedding?: () => SheddingStatus;
  /** modules with metric families of their own add them to the registry (cluster rate limits) */
  readonly register?: (registry: Registry) => void;
  /** worker-thread scaling (workers: { min, max }); null when the count is fixed */
  readonly workerScaling?: () => WorkerScalingStatus | null;
  /** exposition text of families kept elsewhere (splits and rollouts), appended to /metrics */
  readonly extraMetrics?: () => string;
  /** bans in force per ban policy (src/primary/access/ban-writer.ts) */
  readonly bans?: () => readonly { policy: string; active: number }[];
  /** active overrides by kind and feature flags' effective values (percent) */
  readonly control?: () => { overrides: Record<string, number>; flags: readonly { name: string; effective: number }[] };
  /** the response cache's statistics (src/primary/cache), null when no route caches */
  readonly cache?: () => CacheStats | null;
}

export interface ScalingStatus {
  readonly upstream: string;
  readonly recommendation: Recommendation | null;
  readonly requestRate: number;
  readonly forecast: (ForecastResult & { horizonSeconds: number }) | null;
  /** the upstream's scaling target (observability.scaling.upstreams), null when it has none */
  readonly target: { readonly metric: string; readonly target: number } | null;
  /** observability.forecast.enabled: without it `forecast` stays null */
  readonly forecastEnabled: boolean;
}

/** Requests answered 503 TG_ERR_SHED on one route at one priority for one reason (totals). */
export interface ShedCount {
  readonly route: string;
  readonly priority: PriorityName;
  readonly reason: (typeof SHED_REASONS)[number];
  readonly count: number;
}

export interface Observability {
  readonly adminRoutes: NonNullable<AdminRoutes['extra']>;
  /** shed counts by route, priority and reason (non-zero totals; as of the last worker snapshots) */
  shedByRoute(): ShedCount[];
  /** the upstream's last request rate and its forecast, null before any traffic (predictive concurrency) */
  forecastOf(upstream: string): { rate: number; forecast: number | null; horizonS: number } | null;
  /** a `telemetry` message from a worker */
  onWorkerTelemetry(slot: number, payload: unknown): void;
  /**
   * The worker thread of `slot` ended (retired, crashed, drained): its last heap,
   * event-loop and concurrency figures leave the per-worker gauges and the sums over
   * workers instead of staying at their last values.
   */
  onWorkerExit(slot: number): void;
  onConfig(config: Config, generation: number): void;
  /** the `scaling` field of GET /status */
  status(): { scaling: ScalingStatus[]; history: { points: number; capacity: number; intervalMs: number } };
  /** test/bench hook: resolves once every snapshot received so far is merged */
  flush(): Promise<void>;
  close(): Promise<void>;
}

interface RouteAgg {
  upstream: string;
  readonly counts: Float64Array;
  /** 503 TG_ERR_SHED, SHED_REASONS × priority (reason-major) */
  readonly shed: Float64Array;
  bytesIn: number;
  bytesOut: number;
}

const N_CLASSES = CODE_CLASSES.length;

function httpError(status: number, code: string, message: string): Error {
  return Object.assign(new Error(message), { status, code });
}

export function createObservability(deps: ObservabilityDeps): Observability {
  const { shm, log } = deps;
  let cfg: ObservabilityConfig = deps.config().observability;
  let bounds = [...cfg.histograms.buckets];
  const aggregator = new Aggregator(bounds, (err) => log.error({ event: 'histogram-aggregation-failed', error: err.message }, 'histogram aggregation failed'));

  const routes = new Map<string, RouteAgg>();
  const upstreamOutcomes = new Map<string, Float64Array>();
  /** per worker slot: time-averaged concurrency of the last interval (Little's law: Σlatency / interval) */
  const routeConcurrency = new Map<number, Map<string, number>>();
  const upstreamConcurrency = new Map<number, Map<string, number>>();
  const runtime = new Map<number, WorkerRuntimeStats>();
  const snapshotsByWorker = new Map<number, number>();
  let accessLogged = 0;
  let accessDropped = 0;
  // Sampling is the access log's switch (accessLog.sampleRate), not the control-plane log level.
  const accessLog = log.child({ log: 'access' }, { level: 'info' });

  /** Shed counts with a non-zero total, by route, priority and reason (metrics and /status). */
  function shedByRoute(): ShedCount[] {
    const out: ShedCount[] = [];
    for (const [route, a] of routes)
      for (let r = 0; r < SHED_REASONS.length; r++)
        for (let p = 0; p < priorityNames.length; p++) {
          const count = a.shed[r * priorityNames.length + p]!;
          if (count > 0) out.push({ route, priority: priorityNames[p]!, reason: SHED_REASONS[r]!, count });
        }
    return out;
  }

  // ---- telemetry intake -------------------------------------------------------------

  function onWorkerTelemetry(slot: number, payload: unknown): void {
    if (!isTelemetrySnapshot(payload)) return;
    snapshotsByWorker.set(slot, (snapshotsByWorker.get(slot) ?? 0) + 1);
    const entries: IngestEntry[] = [];
    const intervalUs = Math.max(1, payload.intervalMs * 1000);
    const rc = new Map<string, number>();
    for (const r of payload.routes) {
      let agg = routes.get(r.name);
      if (agg === undefined) routes.set(r.name, (agg = { upstream: r.upstream, counts: new Float64Array(METHODS.length * N_CLASSES), shed: new Float64Array(SHED_REASONS.length * priorityNames.length), bytesIn: 0, bytesOut: 0 }));
      agg.upstream = r.upstream;
      for (let i = 0; i < agg.counts.length; i++) agg.counts[i]! += r.counts[i] ?? 0;
      if (r.shed !== undefined) for (let i = 0; i < agg.shed.length; i++) agg.shed[i]! += r.shed[i] ?? 0;
      agg.bytesIn += r.bytesIn;
      agg.bytesOut += r.bytesOut;
      rc.set(r.name, r.sumUs / intervalUs);
      if (r.hist !== null) entries.push({ key: histogramKey('request', r.name), worker: slot, bytes: r.hist, sumUs: r.histSumUs });
    }
    routeConcurrency.set(slot, rc);
    const uc = new Map<string, number>();
    for (const u of payload.upstreams) {
      let o = upstreamOutcomes.get(u.name);
      if (o === undefined) upstreamOutcomes.set(u.name, (o = new Float64Array(UPSTREAM_CLASSES.length)));
      for (let i = 0; i < o.length; i++) o[i]! += u.outcomes[i] ?? 0;
      uc.set(u.name, u.sumUs / intervalUs);
      if (u.hist !== null) entries.push({ key: histogramKey('upstream', u.name), worker: slot, bytes: u.hist, sumUs: u.histSumUs });
    }
    upstreamConcurrency.set(slot, uc);
    runtime.set(slot, payload.runtime);
    for (const e of payload.accessLog) accessLog.info({ event: 'access', worker: slot, ...e });
    accessLogged += payload.accessLog.length;
    accessDropped += payload.accessLogDropped;
    aggregator.push(entries);
  }

  // ---- request-rate history, forecasts, recommendations -----------------------------

  const rateHistory = new Map<string, number[]>();
  const lastTotals = new Map<string, number>();
  const lastRate = new Map<string, number>();
  let lastRateAt = performance.now();
  const forecasts = new Map<string, ForecastResult & { horizonSeconds: number }>();
  const recommenders = new Map<string, Recommender>();
  const lastNotified = new Map<string, number>();
  let webhook: WebhookNotifier | null = null;
  const webhookOutcomes = { ok: 0, failed: 0 };

  function upstreamNames(): string[] {
    const names = new Set(Object.keys(deps.config().upstreams));
    for (const n of upstreamOutcomes.keys()) names.add(n);
    return [...names];
  }

  function historyCap(): number {
    return Math.max(10, Math.ceil((3 * cfg.forecast.season) / cfg.snapshotInterval));
  }

  function sampleRates(): void {
    const now = performance.now();
    const dt = (now - lastRateAt) / 1000;
    lastRateAt = now;
    if (dt <= 0) return;
    const cap = historyCap();
    for (const name of upstreamNames()) {
      const o = upstreamOutcomes.get(name);
      let total = 0;
      if (o !== undefined) for (let i = 0; i < o.length; i++) total += o[i]!;
      const rate = Math.max(0, (total - (lastTotals.get(name) ?? 0)) / dt);
      lastTotals.set(name, total);
      lastRate.set(name, rate);
      let h = rateHistory.get(name);
      if (h === undefined) rateHistory.set(name, (h = []));
      h.push(rate);
      if (h.length > cap) h.splice(0, h.length - cap);
    }
  }

  async function refitForecasts(): Promise<void> {
    if (!cfg.forecast.enabled) return;
    const step = cfg.snapshotInterval;
    // An upstream that has seen no request yet has nothing to forecast (and a gateway
    // without traffic then never starts the aggregation thread for it).
    const series = [...rateHistory].filter(([, v]) => v.some((x) => x > 0)).map(([name, values]) => ({ name, values: [...values] }));
    if (series.length === 0) return;
    const season = Math.max(2, Math.round(cfg.forecast.season / step));
    const horizon = Math.max(1, Math.round(cfg.forecast.horizon / step));
    const results = await aggregator.fitForecasts(series, season, horizon);
    for (const r of results) forecasts.set(r.name, { ...r.result, horizonSeconds: cfg.forecast.horizon / 1000 });
  }

  /** Endpoints now serving an upstream: healthy rows in the shm table when it is populated, else the configured static list. */
  function currentReplicas(name: string, tables: readonly UpstreamTableRead[]): number | null {
    const t = tables.find((x) => x.name === name);
    if (t !== undefined) return t.healthy;
    const u = deps.config().upstreams[name];
    if (u === undefined) return null;
    const d = u.discovery as { type: string; endpoints?: readonly unknown[] };
    return Array.isArray(d.endpoints) ? d.endpoints.length : null;
  }

  function sumOverWorkers(m: Map<number, Map<string, number>>, name: string): number {
    let s = 0;
    for (const w of m.values()) s += w.get(name) ?? 0;
    return s;
  }

  async function recomputeScaling(): Promise<void> {
    const targets = cfg.scaling.upstreams;
    const names = Object.keys(targets);
    if (names.length === 0) return;
    const needP99 = names.some((n) => targets[n]!.metric === 'p99');
    const windowP99 = needP99 ? await aggregator.takeWindow(99) : {};
    const tables = safeTables();
    const now = Date.now();
    // Rate over the scaling interval: mean of the samples it spans.
    const samples = Math.max(1, Math.round(cfg.scaling.interval / cfg.snapshotInterval));
    for (const name of names) {
      const t = targets[name]!;
      let r = recommenders.get(name);
      if (r === undefined) recommenders.set(name, (r = new Recommender(t)));
      r.setTarget(t);
      const current = currentReplicas(name, tables);
      if (current === null) continue;
      let observed: number | null;
      const per = Math.max(current, 1);
      if (t.metric === 'rps') {
        const h = rateHistory.get(name) ?? [];
        const recent = h.slice(-samples);
        observed = recent.length === 0 ? 0 : recent.reduce((a, b) => a + b, 0) / recent.length / per;
      } else if (t.metric === 'inflight') {
        observed = sumOverWorkers(upstreamConcurrency, name) / per;
      } else {
        const w = windowP99[histogramKey('upstream', name)];
        observed = w === undefined || w.count === 0 ? null : w.valueUs / 1e6;
      }
      const rec = r.update(now, current, observed);
      const prev = lastNotified.get(name);
      if (prev === undefined || prev !== rec.recommended) {
        lastNotified.set(name, rec.recommended);
        // The first decision is logged too, so the log explains the starting point.
        decision(log).info({ event: 'scaling-recommendation', upstream: name, current: rec.current, recommended: rec.recommended, previous: prev ?? null, metric: rec.metric, observed: rec.observed, target: rec.target, reason: rec.reason }, 'scaling recommendation changed');
        if (prev !== undefined || rec.recommended !== rec.current) {
          webhook?.notify({ type: 'scaling-recommendation', upstream: name, current: rec.current, recommended: rec.recommended, previous: prev ?? null, metric: rec.metric, observed: rec.observed, target: rec.target, reason: rec.reason, at: new Date(now).toISOString() });
        }
      }
    }
  }

  // ---- chart history (GET /v1/history) ---------------------------------------------

  const history = new History(historyCapacity(cfg.history.window, cfg.snapshotInterval), cfg.snapshotInterval);

  async function sampleHistory(): Promise<void> {
    const windows = await aggregator.takeHistoryWindow(HISTORY_PERCENTILES);
    await aggregator.refreshHeap();
    const routeTotals = new Map<string, TrafficTotals>();
    const err5xx = CODE_CLASSES.indexOf('5xx');
    for (const [name, a] of routes) {
      let requests = 0;
      let errors = 0;
      for (let i = 0; i < a.counts.length; i++) {
        requests += a.counts[i]!;
        if (i % N_CLASSES === err5xx) errors += a.counts[i]!;
      }
      routeTotals.set(name, { requests, errors });
    }
    const upstreamTotals = new Map<string, TrafficTotals>();
    const up5xx = UPSTREAM_CLASSES.indexOf('5xx');
    const upErr = UPSTREAM_CLASSES.indexOf('error');
    for (const [name, o] of upstreamOutcomes) {
      let requests = 0;
      for (let i = 0; i < o.length; i++) requests += o[i]!;
      upstreamTotals.set(name, { requests, errors: o[up5xx]! + o[upErr]! });
    }
    const routeLatency = new Map<string, LatencyWindow>();
    const upstreamLatency = new Map<string, LatencyWindow>();
    for (const [key, w] of Object.entries(windows)) {
      const { kind, name } = splitHistogramKey(key);
      (kind === 'request' ? routeLatency : upstreamLatency).set(name, { percentilesUs: w.valuesUs, count: w.count });
    }
    const workerElu = new Map<number, number>();
    for (const w of deps.workers()) {
      const r = runtime.get(w.slot);
      if (r !== undefined && w.phase === 'listening') workerElu.set(w.slot, r.elu);
    }
    history.sample(Date.now(), { routes: routeTotals, upstreams: upstreamTotals, routeLatency, upstreamLatency, workerElu });
  }

  function configureWebhook(): void {
    const w = cfg.webhook;
    if (w === undefined) {
      webhook?.close();
      webhook = null;
      return;
    }
    if (webhook === null) {
      webhook = new WebhookNotifier(w, (ev, outcome) => {
        if (outcome.ok) {
          webhookOutcomes.ok++;
          log.info({ event: 'webhook-delivered', upstream: ev.upstream, recommended: ev.recommended, attempts: outcome.attempts, status: outcome.status }, 'scaling webhook delivered');
        } else {
          webhookOutcomes.failed++;
          log.warn({ event: 'webhook-failed', upstream: ev.upstream, recommended: ev.recommended, attempts: outcome.attempts, error: outcome.error }, 'scaling webhook failed');
        }
      });
    } else {
      webhook.setConfig(w);
    }
  }
  configureWebhook();

  const timers: NodeJS.Timeout[] = [];
  function guarded(name: string, fn: () => Promise<void>): () => void {
    let running = false;
    return () => {
      if (running) return; // a slow round is skipped, never stacked
      running = true;
      fn()
        .catch((err: Error) => log.error({ event: `${name}-failed`, error: err.message }, `${name} failed`))
        .finally(() => (running = false));
    };
  }
  function startTimers(): void {
    for (const t of timers) clearInterval(t);
    timers.length = 0;
    timers.push(setInterval(sampleRates, cfg.snapshotInterval));
    timers.push(setInterval(guarded('history', sampleHistory), cfg.snapshotInterval));
    timers.push(setInterval(guarded('scaling', recomputeScaling), cfg.scaling.interval));
    timers.push(setInterval(guarded('forecast', refitForecasts), cfg.forecast.interval));
    for (const t of timers) t.unref();
  }
  startTimers();

  // ---- shm reads (endpoint tables and limiter rows belong to other modules) ----------

  let tableReadFailed = false;
  function safeTables(): UpstreamTableRead[] {
    try {
      return readEndpointTables(shm);
    } catch (err) {
      // The layout is another team's and still moving: a read that fails must cost the
      // endpoint metrics only, never the scrape.
      if (!tableReadFailed) log.warn({ event: 'endpoint-table-unreadable', error: (err as Error).message }, 'endpoint metrics omitted');
      tableReadFailed = true;
      return [];
    }
  }

  // ---- Prometheus registry ----------------------------------------------------------

  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tidegate_' });
  const reg = [registry];
  deps.register?.(registry);

  function counter(name: string, help: string, labelNames: readonly string[], fill: (emit: (labels: Record<string, string>, v: number) => void) => void): void {
    new Counter({
      name,
      help,
      labelNames,
      registers: reg,
      collect() {
        this.reset();
        fill((labels, v) => this.inc(labels, v));
      },
    });
  }
  function gauge(name: string, help: string, labelNames: readonly string[], fill: (emit: (labels: Record<string, string>, v: number) => void) => void): void {
    new Gauge({
      name,
      help,
      labelNames,
      registers: reg,
      collect() {
        this.reset();
        fill((labels, v) => this.set(labels, v));
      },
    });
  }

  // run-time control
  gauge('tidegate_overrides_active', 'Overrides in force, by kind (endpoint, rate-limit, breaker, flag, …).', ['kind'], (emit) => {
    for (const [kind, n] of Object.entries(deps.control?.().overrides ?? {})) emit({ kind }, n);
  });
  gauge('tidegate_flag_value_percent', 'Each feature flag\'s effective value: 0 off, 100 on, between: the share of callers it is on for.', ['flag'], (emit) => {
    for (const f of deps.control?.().flags ?? []) emit({ flag: f.name }, f.effective);
  });
  registerCacheMetrics(counter, gauge, () => deps.cache?.() ?? null);

  // data-plane certificates
  gauge('tidegate_tls_certificate_expiry_timestamp_seconds', 'notAfter of each certificate the data plane serves, as a Unix time ("default": no SNI match).', ['server_name'], (emit) => {
    for (const c of deps.tls?.().certificates ?? []) emit({ server_name: c.serverName ?? 'default' }, Date.parse(c.validTo) / 1000);
  });
  counter('tidegate_tls_reloads_total', 'Certificate reloads, by outcome ("failed": at least one worker kept its old certificates).', ['outcome'], (emit) => {
    const r = deps.tls?.().reloads;
    if (r) {
      emit({ outcome: 'applied' }, r.applied);
      emit({ outcome: 'failed' }, r.failed);
    }
  });

  // per route
  counter('tidegate_route_requests_total', 'Requests finished, by route, method and status class ("aborted": the client left before a status was sent).', ['route', 'method', 'code_class'], (emit) => {
    for (const [route, a] of routes)
      for (let m = 0; m < METHODS.length; m++)
        for (let c = 0; c < N_CLASSES; c++) {
          const v = a.counts[m * N_CLASSES + c]!;
          if (v > 0) emit({ route, method: METHODS[m]!, code_class: CODE_CLASSES[c]! }, v);
        }
  });
  counter('tidegate_shed_total', 'Requests answered 503 TG_ERR_SHED, by route, route priority and reason ("concurrency": the upstream was at its priority\'s share of the concurrency limit; "gateway_load": the shed level).', ['route', 'priority', 'reason'], (emit) => {
    for (const s of shedByRoute()) emit({ route: s.route, priority: s.priority, reason: s.reason }, s.count);
  });
  counter('tidegate_route_received_bytes_total', 'Request body bytes read from clients, by route.', ['route'], (emit) => {
    for (const [route, a] of routes) emit({ route }, a.bytesIn);
  });
  counter('tidegate_route_sent_bytes_total', 'Response body bytes written to clients, by route.', ['route'], (emit) => {
    for (const [route, a] of routes) emit({ route }, a.bytesOut);
  });
  gauge('tidegate_route_in_flight_requests', "Average requests in flight over the last snapshot interval (Little's law: summed latency / interval), by route.", ['route'], (emit) => {
    for (const route of routes.keys()) emit({ route }, sumOverWorkers(routeConcurrency, route));
  });

  // per upstream
  counter('tidegate_upstream_requests_total', 'Proxied requests by upstream and outcome of the last attempt (status class of the upstream response, "error": no response, "client_aborted").', ['upstream', 'outcome'], (emit) => {
    for (const [upstream, o] of upstreamOutcomes) for (let i = 0; i < o.length; i++) if (o[i]! > 0) emit({ upstream, outcome: UPSTREAM_CLASSES[i]! }, o[i]!);
  });
  gauge('tidegate_upstream_in_flight_requests', "Average upstream requests in flight over the last snapshot interval (Little's law), by upstream.", ['upstream'], (emit) => {
    for (const upstream of upstreamOutcomes.keys()) emit({ upstream }, sumOverWorkers(upstreamConcurrency, upstream));
  });
  gauge('tidegate_upstream_request_rate', 'Requests per second sent to the upstream over the last snapshot interval (the forecast input).', ['upstream'], (emit) => {
    for (const [upstream, v] of lastRate) emit({ upstream }, v);
  });
  gauge('tidegate_upstream_request_rate_forecast', 'Forecast requests per second `horizon` ahead (damped Holt-Winters over the per-interval rate history).', ['upstream', 'horizon'], (emit) => {
    for (const [upstream, f] of forecasts) emit({ upstream, horizon: `${f.horizonSeconds}s` }, f.value);
  });
  gauge('tidegate_upstream_replicas_current', 'Endpoints serving the upstream now (healthy rows of the endpoint table, else the configured list).', ['upstream'], (emit) => {
    for (const [upstream, r] of recommenders) if (r.latest) emit({ upstream }, r.latest.current);
  });
  gauge('tidegate_upstream_replicas_recommended', 'HPA-style recommended endpoint count: ceil(current × observed / target), ±tolerance, scale-down stabilised.', ['upstream'], (emit) => {
    for (const [upstream, r] of recommenders) if (r.latest) emit({ upstream }, r.latest.recommended);
  });
  gauge('tidegate_upstream_scaling_observed', 'The scaling metric as last observed (rps or in-flight per endpoint, or p99 latency in seconds).', ['upstream', 'metric'], (emit) => {
    for (const [upstream, r] of recommenders) if (r.latest && r.latest.observed !== null) emit({ upstream, metric: r.latest.metric }, r.latest.observed);
  });
  gauge('tidegate_upstream_scaling_target', 'The configured scaling target (same unit as tidegate_upstream_scaling_observed).', ['upstream', 'metric'], (emit) => {
    for (const [upstream, t] of Object.entries(cfg.scaling.upstreams)) emit({ upstream, metric: t.metric }, t.target);
  });

  // adaptive protection (src/controllers): the decisions and their inputs
  const guards = (emit: (labels: Record<string, string>, v: number) => void, pick: (g: GuardStatus) => number | null, extra: Record<string, string> = {}): void => {
    for (const g of deps.controllers?.() ?? []) {
      const v = pick(g);
      if (v !== null) emit({ upstream: g.upstream, ...extra }, v);
    }
  };
  gauge('tidegate_breaker_state', 'Circuit breaker state (1 for the current state).', ['upstream', 'state'], (emit) => {
    for (const g of deps.controllers?.() ?? []) if (g.breaker) for (const st of ['closed', 'open', 'half-open']) emit({ upstream: g.upstream, state: st }, g.breaker.state === st ? 1 : 0);
  });
  counter('tidegate_breaker_transitions_total', 'Breaker state changes, by the state entered.', ['upstream', 'to'], (emit) => {
    for (const g of deps.controllers?.() ?? []) {
      if (!g.breaker) continue;
      emit({ upstream: g.upstream, to: 'open' }, g.transitions['breaker-opened'] ?? 0);
      emit({ upstream: g.upstream, to: 'half-open' }, g.transitions['breaker-half-open'] ?? 0);
      emit({ upstream: g.upstream, to: 'closed' }, g.transitions['breaker-closed'] ?? 0);
    }
  });
  gauge('tidegate_breaker_failure_rate_threshold_ratio', 'Failure rate (0-1) over the window at which the breaker trips now (moves with event-loop utilisation when adaptive).', ['upstream'], (emit) => guards(emit, (g) => (g.breaker ? g.breaker.failureRateThreshold / 100 : null)));
  gauge('tidegate_breaker_window_failure_ratio', 'Failure rate (0-1) over the breaker window.', ['upstream'], (emit) => guards(emit, (g) => (g.breaker ? g.breaker.window.failureRate / 100 : null)));
  gauge('tidegate_breaker_window_slow_ratio', 'Slow-call rate (0-1) over the breaker window.', ['upstream'], (emit) => guards(emit, (g) => (g.breaker ? g.breaker.window.slowRate / 100 : null)));
  gauge('tidegate_breaker_window_requests', 'Upstream attempts with a verdict over the breaker window.', ['upstream'], (emit) => guards(emit, (g) => (g.breaker ? g.breaker.window.requests : null)));
  counter('tidegate_breaker_rejected_total', 'Requests refused by an open breaker ("fallback": answered by the fallback instead of 503 TG_ERR_CIRCUIT_OPEN).', ['upstream', 'answer'], (emit) => {
    for (const g of deps.controllers?.() ?? []) {
      if (!g.breaker) continue;
      emit({ upstream: g.upstream, answer: 'circuit_open' }, g.counts.circuitOpen - g.counts.fallback);
      emit({ upstream: g.upstream, answer: 'fallback' }, g.counts.fallback);
    }
  });
  counter('tidegate_breaker_probes_total', 'Half-open probe requests that got a verdict.', ['upstream'], (emit) => guards(emit, (g) => (g.breaker ? g.counts.probes : null)));
  gauge('tidegate_concurrency_limit', 'Requests allowed in flight to the upstream, all workers (adaptive or fixed).', ['upstream'], (emit) => guards(emit, (g) => g.concurrency?.limit ?? null));
  gauge('tidegate_concurrency_in_flight_requests', 'Requests counted against the concurrency limit now (live).', ['upstream'], (emit) => guards(emit, (g) => g.concurrency?.inFlight ?? null));
  gauge('tidegate_concurrency_min_rtt_seconds', 'The adaptive limit\'s minRTT: response time without queueing, as last measured.', ['upstream'], (emit) => guards(emit, (g) => (g.concurrency?.minRttMs == null ? null : g.concurrency.minRttMs / 1000)));
  gauge('tidegate_concurrency_sample_rtt_seconds', 'The adaptive limit\'s latest sampled response-time percentile.', ['upstream'], (emit) => guards(emit, (g) => (g.concurrency?.sampleRttMs == null ? null : g.concurrency.sampleRttMs / 1000)));
  gauge('tidegate_concurrency_gradient', 'The adaptive limit\'s latest gradient (minRTT with buffer / sample RTT, 0.5-2).', ['upstream'], (emit) => guards(emit, (g) => g.concurrency?.gradient ?? null));
  counter('tidegate_concurrency_shed_total', 'Requests answered 503 TG_ERR_SHED over the concurrency limit.', ['upstream'], (emit) => guards(emit, (g) => (g.concurrency ? g.counts.shed : null)));
  counter('tidegate_concurrency_shed_by_priority_total', 'Requests answered 503 TG_ERR_SHED over their priority\'s share of the concurrency limit, by route priority.', ['upstream', 'priority'], (emit) => {
    for (const g of deps.controllers?.() ?? []) if (g.concurrency) for (let p = 0; p < 4; p++) emit({ upstream: g.upstream, priority: priorityNames[p]! }, g.counts.shedByPriority[p] ?? 0);
  });
  gauge('tidegate_bans_active', 'Client keys banned now by each ban policy (automatic abuse blocking and operator bans).', ['policy'], (emit) => {
    for (const b of deps.bans?.() ?? []) emit({ policy: b.policy }, b.active);
  });
  gauge('tidegate_shed_level', 'Priorities the gateway sheds for its own load: 0 none, 1 low, 2 low and normal, 3 all but critical.', [], (emit) => {
    const s = deps.shedding?.();
    if (s?.enabled) emit({}, s.level);
  });
  counter('tidegate_load_shed_total', 'Requests answered 503 TG_ERR_SHED by the shed level (gateway event-loop load), by route priority.', ['priority'], (emit) => {
    const s = deps.shedding?.();
    if (s?.enabled) for (const p of priorityNames) emit({ priority: p }, s.shed[p]);
  });
  gauge('tidegate_concurrency_predictive_floor', 'With concurrency.predictive: the floor the request-rate forecast raised the adaptive limit to ahead of a surge (0: none).', ['upstream'], (emit) => guards(emit, (g) => g.concurrency?.predictive?.floor ?? null));
  counter('tidegate_concurrency_limit_changes_total', 'Times the adaptive limit workers see changed.', ['upstream'], (emit) => guards(emit, (g) => (g.concurrency ? (g.transitions['concurrency-limit'] ?? 0) + (g.transitions['concurrency-min-rtt-start'] ?? 0) + (g.transitions['concurrency-min-rtt'] ?? 0) : null)));

  // per endpoint / upstream table (shm; absent until the table is populated)
  let tablesThisScrape: UpstreamTableRead[] = [];
  gauge('tidegate_upstream_healthy_endpoints', 'Healthy endpoints in the upstream (endpoint table).', ['upstream'], (emit) => {
    for (const t of tablesThisScrape) emit({ upstream: t.name }, t.healthy);
  });
  gauge('tidegate_upstream_panic_mode', '1 while too few endpoints are healthy and balancers spread over all of them (Envoy panic mode).', ['upstream'], (emit) => {
    for (const t of tablesThisScrape) emit({ upstream: t.name }, t.panic ? 1 : 0);
  });
  counter('tidegate_upstream_no_endpoint_total', 'Picks that found no usable endpoint (503).', ['upstream'], (emit) => {
    for (const t of tablesThisScrape) emit({ upstream: t.name }, t.noEndpoint);
  });
  const overloadRows = (emit: (labels: Record<string, string>, v: number) => void, pick: (r: WorkerLedger) => number): void => {
    const slots = deps.workers().map((w) => w.slot);
    for (const t of tablesThisScrape) for (const r of readOverload(shm, t.slot, slots)) emit({ upstream: t.name, worker: String(r.worker) }, pick(r));
  };
  gauge('tidegate_upstream_pending_requests', "Requests waiting for one of the upstream's connections (beyond pool.connections), by upstream and worker (live).", ['upstream', 'worker'], (emit) => overloadRows(emit, (r) => r.pending));
  counter('tidegate_upstream_overloaded_total', 'Requests answered 503 TG_ERR_UPSTREAM_OVERLOADED because pool.maxPending were already waiting, by upstream and worker.', ['upstream', 'worker'], (emit) => overloadRows(emit, (r) => r.overloaded));
  counter('tidegate_upstream_pipelined_requests_total', 'Requests written behind another on one upstream connection (pool.pipelining), by upstream and worker.', ['upstream', 'worker'], (emit) => overloadRows(emit, (r) => r.pipelined));
  counter('tidegate_upstream_pipeline_batched_heads_total', 'Request heads that went out in one write with at least one other (pool.pipelining), by upstream and worker.', ['upstream', 'worker'], (emit) => overloadRows(emit, (r) => r.pipelineBatched));
  counter('tidegate_upstream_pipeline_fallbacks_total', 'Times a connection pool stopped pipelining for a while after an anomaly in the response order, by upstream and worker.', ['upstream', 'worker'], (emit) => overloadRows(emit, (r) => r.pipelineFallbacks));
  gauge('tidegate_endpoint_state', 'Endpoint health state (1 for the current state).', ['upstream', 'endpoint', 'state'], (emit) => {
    for (const t of tablesThisScrape) for (const e of t.endpoints) for (const s of ['healthy', 'ejected', 'draining']) emit({ upstream: t.name, endpoint: e.address, state: s }, e.state === s ? 1 : 0);
  });
  gauge('tidegate_endpoint_in_flight_requests', 'Requests in flight to the endpoint, all workers (live, from shared memory).', ['upstream', 'endpoint'], (emit) => {
    for (const t of tablesThisScrape) for (const e of t.endpoints) emit({ upstream: t.name, endpoint: e.address }, e.inFlight);
  });
  gauge('tidegate_endpoint_latency_ewma_seconds', 'Peak-EWMA of response-head latency for the endpoint.', ['upstream', 'endpoint'], (emit) => {
    for (const t of tablesThisScrape) for (const e of t.endpoints) emit({ upstream: t.name, endpoint: e.address }, e.ewmaUs / 1e6);
  });
  counter('tidegate_endpoint_ejections_total', 'Times the endpoint was ejected by health checks or outlier detection.', ['upstream', 'endpoint'], (emit) => {
    for (const t of tablesThisScrape) for (const e of t.endpoints) emit({ upstream: t.name, endpoint: e.address }, e.ejections);
  });
  counter('tidegate_endpoint_requests_total', 'Requests sent to the endpoint (32-bit counter in shared memory; wraps).', ['upstream', 'endpoint'], (emit) => {
    for (const t of tablesThisScrape) for (const e of t.endpoints) emit({ upstream: t.name, endpoint: e.address }, e.requests);
  });
  counter('tidegate_endpoint_failures_total', 'Requests to the endpoint that failed (no response or 5xx).', ['upstream', 'endpoint'], (emit) => {
    for (const t of tablesThisScrape) for (const e of t.endpoints) emit({ upstream: t.name, endpoint: e.address }, e.failures);
  });

  // rate limiter rows: row k belongs to the k-th rate-limit policy (routes in order,
  // policies in order), the rule LimiterWriter and the workers' kindIndex follow.
  function limiterRowLabels(): { route: string; policy: string }[] {
    const out: { route: string; policy: string }[] = [];
    deps.config().routes.forEach((r, i) => {
      for (const p of r.policies) if (p.name === 'rate-limit') out.push({ route: r.name ?? `route-${i}`, policy: String((p.config as { name?: unknown }).name ?? 'default') });
    });
    return out;
  }
  /** The policy rows of this generation with their labels (a row left over from an older generation is skipped). */
  const labelledLimiterRows = (): { l: { route: string; policy: string }; r: ReturnType<typeof readLimiterPolicies>[number] }[] => {
    let rows: ReturnType<typeof readLimiterPolicies> = [];
    try {
      rows = readLimiterPolicies(shm);
    } catch {
      rows = [];
    }
    const labels = limiterRowLabels();
    const out: { l: { route: string; policy: string }; r: ReturnType<typeof readLimiterPolicies>[number] }[] = [];
    for (const r of rows) {
      const l = labels[r.row];
      if (l !== undefined) out.push({ l, r });
    }
    return out;
  };
  counter('tidegate_ratelimit_decisions_total', 'Rate-limit decisions by route and policy ("limited": 429; "unmetered": bucket table full, admitted).', ['route', 'policy', 'decision'], (emit) => {
    for (const { l, r } of labelledLimiterRows()) {
      emit({ ...l, decision: 'allowed' }, r.allowed);
      emit({ ...l, decision: 'limited' }, r.denied);
      emit({ ...l, decision: 'unmetered' }, r.overflow);
    }
  });

  gauge('tidegate_ratelimit_multiplier', 'Share of the configured rate a rate-limit policy admits now (1 = as configured; an adaptive policy lowers it while its upstream is slow or failing).', ['route', 'policy'], (emit) => {
    for (const { l, r } of labelledLimiterRows()) emit(l, r.multiplier);
  });

  // per worker (shm counter slices + telemetry)
  function perWorker(field: number, emit: (labels: Record<string, string>, v: number) => void): void {
    for (const w of deps.workers()) emit({ worker: String(w.slot) }, shm.workerCounters(w.slot)[field] ?? 0);
  }
  counter('tidegate_worker_requests_total', 'Requests started, by worker thread.', ['worker'], (emit) => perWorker(kWorkerRequestsField, emit));
  counter('tidegate_worker_responses_total', 'Responses by worker and status class.', ['worker', 'code_class'], (emit) => {
    for (const w of deps.workers()) {
      const c = shm.workerCounters(w.slot);
      for (let i = 0; i < 5; i++) emit({ worker: String(w.slot), code_class: `${i + 1}xx` }, c[kWorkerStatus1xxField + i] ?? 0);
    }
  });
  gauge('tidegate_worker_in_flight_requests', 'Requests in flight on the worker (live).', ['worker'], (emit) => perWorker(kWorkerInFlightField, emit));
  counter('tidegate_worker_upstream_errors_total', 'Upstream attempts that failed without a response, by worker.', ['worker'], (emit) => perWorker(kWorkerUpstreamErrorsField, emit));
  counter('tidegate_worker_connections_refused_total', 'Requests answered 503 TG_ERR_LIMIT_CONNECTIONS (and their connection closed) over limits.maxConnections, by worker.', ['worker'], (emit) => perWorker(kWorkerConnectionsRefusedField, emit));
  counter('tidegate_plugin_errors_total', 'Plugin phase calls that threw (answered 500 TG_ERR_PLUGIN in the access and response phases), by worker; the plugin-error log events name the plugin.', ['worker'], (emit) => perWorker(kWorkerPluginErrorsField, emit));
  counter('tidegate_worker_retries_total', 'Upstream retries, by worker.', ['worker'], (emit) => perWorker(kWorkerRetriesField, emit));
  counter('tidegate_worker_client_aborts_total', 'Requests whose client went away before a response, by worker.', ['worker'], (emit) => perWorker(kWorkerClientAbortsField, emit));
  counter('tidegate_worker_received_bytes_total', 'Request body bytes read, by worker.', ['worker'], (emit) => perWorker(kWorkerBytesInField, emit));
  counter('tidegate_worker_sent_bytes_total', 'Response body bytes written, by worker.', ['worker'], (emit) => perWorker(kWorkerBytesOutField, emit));
  gauge('tidegate_worker_websocket_open_connections', 'WebSocket relays open on the worker (live).', ['worker'], (emit) => perWorker(kWorkerWsOpenField, emit));
  counter('tidegate_worker_websocket_connections_total', 'WebSocket relays opened (upstream switched protocols, client upgraded), by worker.', ['worker'], (emit) => perWorker(kWorkerWsConnectionsField, emit));
  function perWorkerDirection(inField: number, outField: number, emit: (labels: Record<string, string>, v: number) => void): void {
    for (const w of deps.workers()) {
      const c = shm.workerCounters(w.slot);
      emit({ worker: String(w.slot), direction: 'in' }, c[inField] ?? 0);
      emit({ worker: String(w.slot), direction: 'out' }, c[outField] ?? 0);
    }
  }
  counter('tidegate_worker_websocket_messages_total', 'WebSocket messages relayed, by worker and direction ("in": client to upstream, "out": upstream to client).', ['worker', 'direction'], (emit) =>
    perWorkerDirection(kWorkerWsMessagesInField, kWorkerWsMessagesOutField, emit),
  );
  counter('tidegate_worker_websocket_bytes_total', 'WebSocket message payload bytes relayed, by worker and direction.', ['worker', 'direction'], (emit) => perWorkerDirection(kWorkerWsBytesInField, kWorkerWsBytesOutField, emit));
  gauge('tidegate_worker_up', '1 while the worker thread is listening.', ['worker'], (emit) => {
    for (const w of deps.workers()) emit({ worker: String(w.slot) }, w.phase === 'listening' ? 1 : 0);
  });
  gauge('tidegate_workers', 'Worker threads by state: serving, starting (added, not yet listening), retiring (draining before they end).', ['state'], (emit) => {
    let serving = 0;
    let starting = 0;
    let retiring = 0;
    for (const w of deps.workers()) {
      if (w.phase === 'listening') serving++;
      else if (w.phase === 'retiring') retiring++;
      else if (w.phase === 'starting' || w.phase === 'restarting') starting++;
    }
    emit({ state: 'serving' }, serving);
    emit({ state: 'starting' }, starting);
    emit({ state: 'retiring' }, retiring);
  });
  gauge('tidegate_workers_bounds', 'Worker-thread scaling bounds (workers.min, workers.max); absent when the count is fixed.', ['bound'], (emit) => {
    const s = deps.workerScaling?.();
    if (s === null || s === undefined) return;
    emit({ bound: 'min' }, s.min);
    emit({ bound: 'max' }, s.max);
  });
  counter('tidegate_worker_scaling_total', 'Worker-thread scaling decisions, by direction ("up": a thread added, "down": one retired).', ['direction'], (emit) => {
    const s = deps.workerScaling?.();
    if (s === null || s === undefined) return;
    emit({ direction: 'up' }, s.adds);
    emit({ direction: 'down' }, s.retires);
  });
  gauge('tidegate_worker_restarts', 'Consecutive restarts of the worker slot (resets after a stable minute).', ['worker'], (emit) => {
    for (const w of deps.workers()) emit({ worker: String(w.slot) }, w.restarts);
  });
  const rt = (pick: (s: WorkerRuntimeStats) => number) => (emit: (labels: Record<string, string>, v: number) => void) => {
    for (const [slot, s] of runtime) emit({ worker: String(slot) }, pick(s));
  };
  gauge('tidegate_worker_event_loop_utilization_ratio', 'Event-loop utilisation of the worker over the last snapshot interval (0-1).', ['worker'], rt((s) => s.elu));
  gauge('tidegate_worker_event_loop_delay_mean_seconds', 'Mean event-loop delay of the worker over the last interval.', ['worker'], rt((s) => s.loopDelayMeanMs / 1000));
  gauge('tidegate_worker_event_loop_delay_p99_seconds', '99th percentile event-loop delay of the worker over the last interval.', ['worker'], rt((s) => s.loopDelayP99Ms / 1000));
  gauge('tidegate_worker_event_loop_delay_max_seconds', 'Largest event-loop delay of the worker over the last interval.', ['worker'], rt((s) => s.loopDelayMaxMs / 1000));
  gauge('tidegate_worker_heap_used_bytes', "V8 heap in use by the worker thread's isolate.", ['worker'], rt((s) => s.heapUsedBytes));
  gauge('tidegate_worker_heap_total_bytes', "V8 heap reserved by the worker thread's isolate.", ['worker'], rt((s) => s.heapTotalBytes));
  gauge('tidegate_aggregator_heap_used_bytes', "V8 heap in use by the histogram aggregation thread's isolate (0 while that thread does not run: it starts with the first histogram to merge).", [], (emit) => {
    emit({}, aggregator.heapStats()?.usedBytes ?? 0);
  });
  gauge('tidegate_aggregator_heap_total_bytes', "V8 heap reserved by the histogram aggregation thread's isolate (0 while that thread does not run).", [], (emit) => {
    emit({}, aggregator.heapStats()?.totalBytes ?? 0);
  });
  counter('tidegate_telemetry_snapshots_total', 'Telemetry snapshots received from each worker.', ['worker'], (emit) => {
    for (const [slot, n] of snapshotsByWorker) emit({ worker: String(slot) }, n);
  });
  counter('tidegate_access_log_entries_total', 'Sampled access-log entries written.', [], (emit) => emit({}, accessLogged));
  counter('tidegate_access_log_dropped_total', 'Sampled access-log entries dropped (over accessLog.maxPerInterval).', [], (emit) => emit({}, accessDropped));
  counter('tidegate_decisions_total', 'Control-plane decisions recorded in the decision feed, by kind (the log event name).', ['kind'], (emit) => {
    if (deps.decisions) for (const [kind, n] of deps.decisions.totals) emit({ kind }, n);
  });
  gauge('tidegate_decision_stream_clients', 'Open GET /v1/decisions/stream connections.', [], (emit) => emit({}, deps.decisionStream?.clients ?? 0));
  counter('tidegate_decision_stream_overflows_total', 'Decision streams closed because the client read slower than decisions arrived (it resumes with Last-Event-ID).', [], (emit) => emit({}, deps.decisionStream?.overflows ?? 0));
  gauge('tidegate_history_points', 'Points held per series in the console history ring.', [], (emit) => emit({}, history.points));
  counter('tidegate_scaling_webhook_deliveries_total', 'Scaling webhook deliveries by outcome (after retries).', ['outcome'], (emit) => {
    emit({ outcome: 'ok' }, webhookOutcomes.ok);
    emit({ outcome: 'failed' }, webhookOutcomes.failed);
  });

  function renderHistograms(): string {
    const req: HistogramSeries[] = [];
    const up: HistogramSeries[] = [];
    for (const s of aggregator.series.values()) {
      if (s.worker < 0) continue; // merged: sum(by le) in PromQL gives it; exporting it too would double-count
      const { kind, name } = splitHistogramKey(s.key);
      const series: HistogramSeries = { labels: [[kind === 'request' ? 'route' : 'upstream', name], ['worker', String(s.worker)]], buckets: s.buckets, count: s.count, sum: s.sumUs / 1e6 };
      (kind === 'request' ? req : up).push(series);
    }
    return (
      renderHistogram('tidegate_request_duration_seconds', 'End-to-end request latency by route and worker (HDR histogram, 3 significant digits, exported at the configured bounds).', bounds, req) +
      renderHistogram('tidegate_upstream_duration_seconds', 'Time from upstream dispatch to the upstream response head, by upstream and worker (HDR histogram).', bounds, up)
    );
  }

  // ---- admin routes ---------------------------------------------------------------

  function parseWorker(v: string | null): number | null {
    if (v === null || v === '' || v === 'all') return null;
    if (!/^\d{1,4}$/.test(v)) throw httpError(400, 'TG_ERR_ADMIN_BAD_QUERY', `worker must be a worker slot number, got ${JSON.stringify(v)}`);
    return Number(v);
  }

  const adminRoutes: Observability['adminRoutes'] = {
    '/metrics': async () => {
      // One consistent read of the endpoint tables serves every endpoint family.
      tablesThisScrape = safeTables();
      const text = (await registry.metrics()) + renderHistograms() + (deps.extraMetrics?.() ?? '');
      return { type: registry.contentType, body: text };
    },
    '/histograms': async (url) => {
      const route = url.searchParams.get('route');
      const upstream = url.searchParams.get('upstream');
      const format = url.searchParams.get('format') ?? 'json';
      const worker = parseWorker(url.searchParams.get('worker'));
      if (route === null && upstream === null) {
        await aggregator.flush();
        const index: { kind: string; name: string; workers: number[] }[] = [];
        const seen = new Map<string, number[]>();
        for (const s of aggregator.series.values()) {
          let w = seen.get(s.key);
          if (w === undefined) seen.set(s.key, (w = []));
          if (s.worker >= 0) w.push(s.worker);
        }
        for (const [key, workers] of seen) index.push({ ...splitHistogramKey(key), workers: workers.sort((a, b) => a - b) });
        return { type: 'application/json', body: JSON.stringify({ unit: 'microseconds', histograms: index }, null, 2) };
      }
      if (route !== null && upstream !== null) throw httpError(400, 'TG_ERR_ADMIN_BAD_QUERY', 'give route or upstream, not both');
      const key = route !== null ? histogramKey('request', route) : histogramKey('upstream', upstream!);
      if (format === 'hdr') {
        const b64 = await aggregator.encode(key, worker);
        if (b64 === null) throw httpError(404, 'TG_ERR_ADMIN_NOT_FOUND', `no histogram for ${key}${worker === null ? '' : ` on worker ${worker}`}`);
        return { type: 'text/plain; charset=utf-8', body: b64 };
      }
      if (format !== 'json') throw httpError(400, 'TG_ERR_ADMIN_BAD_QUERY', `format must be "json" or "hdr", got ${JSON.stringify(format)}`);
      const s = await aggregator.summary(key, worker);
      if (s === null) throw httpError(404, 'TG_ERR_ADMIN_NOT_FOUND', `no histogram for ${key}${worker === null ? '' : ` on worker ${worker}`}`);
      return { type: 'application/json', body: JSON.stringify({ unit: 'microseconds', ...s }, null, 2) };
    },
    '/ui': async () => ({ type: 'text/html; charset=utf-8', body: STATUS_PAGE_HTML }),
    '/v1/history': async (url) => ({ type: 'application/json', body: JSON.stringify(history.query(url)) }),
  };

  return {
    adminRoutes,
    shedByRoute,
    forecastOf(upstream) {
      const rate = lastRate.get(upstream);
      if (rate === undefined) return null;
      const f = forecasts.get(upstream);
      return { rate, forecast: f?.value ?? null, horizonS: f?.horizonSeconds ?? cfg.forecast.horizon / 1000 };
    },
    onWorkerTelemetry,
    onWorkerExit(slot) {
      runtime.delete(slot);
      routeConcurrency.delete(slot);
      upstreamConcurrency.delete(slot);
    },
    onConfig(config) {
      const prev = cfg;
      cfg = config.observability;
      if (JSON.stringify(cfg.histograms.buckets) !== JSON.stringify(bounds)) {
        bounds = [...cfg.histograms.buckets];
        aggregator.setBounds(bounds).catch(() => {}); // logged by the aggregator's onError
      }
      history.resize(historyCapacity(cfg.history.window, cfg.snapshotInterval), cfg.snapshotInterval);
      if (prev.snapshotInterval !== cfg.snapshotInterval || prev.scaling.interval !== cfg.scaling.interval || prev.forecast.interval !== cfg.forecast.interval) startTimers();
      for (const name of recommenders.keys()) if (cfg.scaling.upstreams[name] === undefined) recommenders.delete(name);
      configureWebhook();
    },
    status() {
      const names = new Set([...Object.keys(cfg.scaling.upstreams), ...lastRate.keys()]);
      return {
        scaling: [...names].map((upstream) => ({
          upstream,
          recommendation: recommenders.get(upstream)?.latest ?? null,
          requestRate: lastRate.get(upstream) ?? 0,
          forecast: forecasts.get(upstream) ?? null,
          target: cfg.scaling.upstreams[upstream] === undefined ? null : { metric: cfg.scaling.upstreams[upstream]!.metric, target: cfg.scaling.upstreams[upstream]!.target },
          forecastEnabled: cfg.forecast.enabled,
        })),
        history: { points: history.points, capacity: history.capacity, intervalMs: cfg.snapshotInterval },
      };
    },
    flush: () => aggregator.flush(),
    async close() {
      for (const t of timers) clearInterval(t);
      webhook?.close();
      await aggregator.close();
    },
  };
}
