// The primary thread: owns the config, the shared memory, the workers and the admin
// API. It is the only writer of control state (docs/architecture.md §1).
import { availableParallelism } from 'node:os';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { compileWorkerConfig } from '../config/compile.js';
import { loadConfigFile } from '../config/load.js';
import { checkPlugins } from '../config/plugin-check.js';
import type { Config } from '../config/schema.js';
import { SharedState } from '../shm/shared-state.js';
import { CacheAdmin } from './cache/cache-admin.js';
import { cacheRoutes } from './cache/cache-routes.js';
import {
  kWorkerBytesInField,
  kWorkerBytesOutField,
  kWorkerClientAbortsField,
  kWorkerConnectionsRefusedField,
  kWorkerPluginErrorsField,
  kWorkerInFlightField,
  kWorkerRequestsField,
  kWorkerRetriesField,
  kWorkerWsBytesInField,
  kWorkerWsBytesOutField,
  kWorkerWsConnectionsField,
  kWorkerWsMessagesInField,
  kWorkerWsMessagesOutField,
  kWorkerWsOpenField,
  kWorkerStatus1xxField,
  kWorkerUpstreamErrorsField,
  PIPELINE_FALLBACK_MS,
  pipelineAnomalyNames,
} from '../shm/layout.js';
import { startAdminServer } from './admin-server.js';
import { ApiRouter, type AuditSink } from './admin/api-router.js';
import { TokenStore } from './admin/tokens.js';
import { selfRoute } from './admin/self-route.js';
import type { Logger } from './logger.js';
import { Supervisor } from './supervisor.js';
import { createObservability, type Observability } from './observability.js';
import { EndpointWriter, WEIGHT_SCALE, shmCapacity, upstreamTables } from './endpoint-writer.js';
import { LimiterWriter } from './limiter-writer.js';
import { UpstreamControl } from './upstream-control.js';
import { endpointKey } from '../discovery/provider.js';
import { OverloadMonitor } from './overload-monitor.js';
import { snapshotTls, TlsCertificates, type TlsSnapshot } from './tls-certificates.js';
import { DecisionFeed } from './decisions/decision-feed.js';
import { decision, withDecisionFeed } from './decisions/decision-log.js';
import { DecisionStream, type DecisionStreamOptions } from './decisions/decision-stream.js';
import { decisionRoutes } from './decisions/decision-routes.js';
import { ControllerScheduler } from '../controllers/scheduler.js';
import { ClusterLimiter } from '../fleet/cluster-limiter.js';
import { SplitWriter } from './rollout/split-writer.js';
import { SideStats } from './rollout/side-stats.js';
import { RolloutManager } from './rollout/rollout-manager.js';
import { rolloutRoutes } from './rollout/rollout-routes.js';
import { splitTarget, type SplitSpec } from './overrides/split-target.js';
import type { OverrideTarget } from './overrides/target.js';
import { AccessControl } from './access/access-control.js';
import { accessRoutes } from './access/access-routes.js';
import { BanWriter } from './access/ban-writer.js';
import { ConfigError, StartupCodes } from '../errors.js';
import { FlagWriter } from './flag-writer.js';
import { StateFile } from './state-file.js';
import { OverrideStore } from './overrides/store.js';
import { endpointTarget } from './overrides/endpoint-target.js';
import { rateLimitTarget } from './overrides/rate-limit-target.js';
import { breakerTarget } from './overrides/breaker-target.js';
import { flagTarget } from './overrides/flag-target.js';
import { overrideRoutes } from './overrides/override-routes.js';
import { EventRouter, eventRuleIssues } from './events/event-router.js';
import { eventRoutes } from './events/event-routes.js';
import { ipAccessTarget } from './overrides/ip-access-target.js';
import { banTarget } from './overrides/ban-target.js';
import { SharedDicts } from '../shm/shared-dicts.js';
import { sharedDictSpecs } from '../config/schema-shared.js';
import { sharedDictRoute } from './shared-dict-routes.js';
import { pluginRoutes } from './plugin-routes.js';

export const VERSION = '0.1.0';

/** uWS closes an idle HTTP connection after 10 s (compile-time); a retiring thread waits that out, plus a margin. */
const kRetireIdleMs = 15_000;

export interface GatewayOptions {
  readonly config: Config;
  /** file to re-read on reload (SIGHUP or POST /reload); absent for a programmatic config */
  readonly configPath?: string;
  /** a config source other than a file (etcd, src/fleet/etcd-source.ts): reload takes its current config */
  readonly configSource?: { load(): Config; status(): unknown };
  readonly log: Logger;
}

function streamOptions(c: Config): DecisionStreamOptions {
  const s = c.observability.decisions.stream;
  return { heartbeatMs: s.heartbeat, clientBufferBytes: s.clientBuffer, maxClients: s.maxClients };
}

/** Threads to start with, and the most that may run at once (the shared memory is sized for these). */
export function resolveWorkerCount(workers: Config['workers']): { initial: number; max: number } {
  if (workers === 'auto') {
    const n = Math.max(1, availableParallelism());
    return { initial: n, max: n };
  }
  if (typeof workers === 'number') return { initial: workers, max: workers };
  return { initial: workers.min, max: workers.max };
}

export class Gateway {
  private config: Config;
  private generation = 1;
  private readonly shm: SharedState;
  /** the shared response cache (allocated only when some route caches) */
  readonly cache: CacheAdmin;
  /** the shared dictionaries (config `shared`), fixed at start */
  readonly dicts: SharedDicts;
  private readonly supervisor: Supervisor;
  private admin: Server | null = null;
  private readonly startedAt = Date.now();
  private draining = false;
  /** latched: every upstream's discovery has answered once since start */
  private discoverySettled = false;
  private readonly obs: Observability;
  /** discovery + health checks per upstream (src/primary/upstream-control.ts) */
  readonly control: UpstreamControl;
  /** the shared endpoint tables' one writer (discovery, health, admin go through it) */
  readonly endpoints: EndpointWriter;
  /** rate-limit policy rows: rates changeable at run time */
  readonly limiter: LimiterWriter;
  /** leases of `scope: cluster` rate limits from Redis (src/fleet/cluster-limiter.ts) */
  readonly cluster: ClusterLimiter;
  private overload: OverloadMonitor | null = null;
  /** the data plane's certificates and their reloads */
  readonly tls: TlsCertificates;
  /** the last decisions (ejections, discovery, reloads, worker restarts, scaling), GET /v1/decisions */
  readonly decisions: DecisionFeed;
  private readonly decisionStream: DecisionStream;
  /** opts.log carrying the decision feed: every control-plane module logs through it */
  private readonly log: Logger;
  /** breaker and concurrency controllers: the only writer of the control words */
  readonly controllers: ControllerScheduler;
  /** admin tokens and their scopes (admin.token, admin.tokens) */
  private readonly tokens: TokenStore;
  /** the /v1 admin route table: each run-time capability registers its endpoints here */
  readonly api: ApiRouter;
  private readonly audit: AuditSink;
  /** split routes' weights in shared memory: config, API, overrides and rollouts write through it */
  readonly splits: SplitWriter;
  private readonly sideStats = new SideStats();
  /** canary rollouts (src/primary/rollout) */
  readonly rollouts: RolloutManager;
  /** the `split` override target, for the override store */
  readonly splitTarget: OverrideTarget<SplitSpec>;
  /** the access policies' run-time tables (ip-access lists, api-key files) */
  readonly access: AccessControl;
  /** the shared ban table's primary side (list, set, lift, decision events) */
  readonly bans: BanWriter;
  /** feature-flag words in shared memory */
  readonly flags: FlagWriter;
  /** run-time changes on top of the config (API, events), persisted to state.file */
  readonly overrides: OverrideStore;
  /** POST /v1/events: alerts and plain events → overrides */
  readonly events: EventRouter;
  port = 0;
  adminPort = 0;

  constructor(private readonly opts: GatewayOptions) {
    this.config = opts.config;
    this.tls = new TlsCertificates(opts.config.listen.tls);
    this.decisions = new DecisionFeed(opts.config.observability.decisions.size);
    this.decisionStream = new DecisionStream(this.decisions, streamOptions(opts.config));
    this.log = withDecisionFeed(opts.log, this.decisions);
    this.tokens = new TokenStore(this.tokenOptions(opts.config));
    // Every change through the API is one audit line: who, what, and how it was answered.
    this.audit = (line) => this.log.info({ event: 'admin-audit', ...line }, `admin ${line.method} ${line.path} by ${line.caller}: ${line.status}`);
    this.api = new ApiRouter(this.audit);
    this.api.add(selfRoute);
    const count = resolveWorkerCount(opts.config.workers);
    this.shm = SharedState.create({ maxWorkers: count.max, ...shmCapacity(opts.config) });
    this.shm.setGeneration(this.generation);
    this.dicts = SharedDicts.format(this.shm, sharedDictSpecs(opts.config.shared));
    this.api.add(sharedDictRoute(this.dicts));
    this.api.add(...pluginRoutes(this.dicts, () => this.config));
    // Tables before workers: a worker finds its upstreams in them when it starts.
    this.endpoints = new EndpointWriter(this.shm, this.log);
    this.endpoints.applyConfig(upstreamTables(this.config), true);
    this.limiter = new LimiterWriter(this.shm);
    this.limiter.applyConfig(this.config);
    this.cluster = new ClusterLimiter(this.shm, this.log);
    this.cluster.apply(this.config, this.limiter.rows());
    this.splits = new SplitWriter(this.shm, this.log);
    this.splits.applyConfig(this.config);
    this.splitTarget = splitTarget(this.splits);
    // One state file: overrides and rollout progress are sections of it.
    const stateFile = this.config.state.file === undefined ? null : new StateFile(this.config.state.file);
    this.rollouts = new RolloutManager(this.splits, this.sideStats, this.log, stateFile);
    this.rollouts.applyConfig(this.config);
    this.api.add(...rolloutRoutes(this.splits, this.rollouts));
    this.flags = new FlagWriter(this.shm);
    this.flags.applyConfig(this.config);
    this.supervisor = new Supervisor(this.shm, count.initial, compileWorkerConfig(this.config, this.generation, this.flags.slots), this.log);
    this.cache = new CacheAdmin(this.config);
    this.supervisor.cacheBuffer = this.cache.buffer;
    this.api.add(...cacheRoutes(this.cache, () => this.config, this.log));
    // Before the workers start: each one gets the tables in force with its workerData.
    this.access = new AccessControl({ send: (key, value) => this.supervisor.setPolicyData(key, value), log: this.log });
    this.access.applyConfig(this.config);
    this.bans = new BanWriter(this.shm, this.log);
    this.bans.applyConfig(this.config);
    this.api.add(...accessRoutes(this.access, this.bans, () => this.config));
    const workerPool = {
      counts: () => this.supervisor.counts(),
      add: () => this.supervisor.addWorker(),
      // A retiring thread closes its connections one response at a time, then waits out
      // uWS's idle timeout: the drain timeout bounds the requests, not that wait.
      retire: () => this.supervisor.retireWorker(this.config.shutdown.drainTimeout + kRetireIdleMs),
    };
    this.controllers = new ControllerScheduler({ shm: this.shm, log: this.log, workerSlots: () => this.supervisor.info.map((w) => w.slot), workerUtilization: () => this.supervisor.eventLoopUtilization(), slotOf: (name) => this.endpoints.slotOf(name), setMultiplier: (row, f) => this.limiter.setMultiplier(row, f), forecast: (name) => this.obs.forecastOf(name), workerPool });
    this.supervisor.onAdded = (slot, ok, ms, error) => this.controllers.workerChanged('up', slot, ok, ms, error === undefined ? {} : { error });
    this.supervisor.onRetired = (slot, forced, ms) => this.controllers.workerChanged('down', slot, true, ms, { forcedRequests: forced });
    this.controllers.apply(this.config);
    this.overrides = new OverrideStore({ log: this.log, config: () => this.config, file: stateFile });
    this.overrides.register(endpointTarget(this.endpoints));
    this.overrides.register(rateLimitTarget(this.limiter));
    this.overrides.register(breakerTarget(this.controllers));
    this.overrides.register(flagTarget(this.flags));
    this.overrides.register(this.splitTarget);
    this.overrides.register(ipAccessTarget(this.access));
    this.overrides.register(banTarget(this.bans));
    const eventIssues = eventRuleIssues(this.config, this.overrides);
    if (eventIssues.length > 0) throw new ConfigError(eventIssues);
    this.events = new EventRouter(this.overrides, () => this.config, this.log, this.cache.store === null ? null : (req) => this.cache.purge(req));
    this.api.add(...overrideRoutes(this.overrides, this.flags, (kind) => this.overrides.scopeOf(kind), (route) => this.splits.status().find((s) => s.route === route)), ...eventRoutes(this.events));
    // Before the workers start: their first requests already see what was overridden.
    this.overrides.restoreFromFile();
    this.obs = createObservability({ shm: this.shm, workers: () => this.supervisor.info, workerScaling: () => this.controllers.workerScalingStatus(), config: () => this.config, log: this.log, tls: () => this.tls.status(), decisions: this.decisions, decisionStream: this.decisionStream.stats, controllers: () => this.controllers.status(), shedding: () => this.controllers.sheddingStatus(), register: (r) => this.cluster.register(r), extraMetrics: () => this.rollouts.metricsText(), bans: () => this.bans.counts(), control: () => ({ overrides: this.overrides.counts(), flags: this.flags.status() }), cache: () => (this.cache.store === null ? null : this.cache.stats(this.config)) });
    this.supervisor.onTelemetry = (slot, payload) => {
      this.obs.onWorkerTelemetry(slot, payload);
      this.sideStats.onTelemetry(payload);
    };
    this.supervisor.onWorkerExit = (slot) => {
      this.endpoints.releaseWorker(slot);
      this.controllers.releaseWorker(slot);
      this.obs.onWorkerExit(slot);
      // A worker that ended inside a cache read section would hold freed chunks back,
      // and one that ended holding the cache's writer lock would stop every cache write.
      void this.cache.workerExited(slot).then((dropped) => {
        if (dropped !== null) decision(this.log).error({ event: 'cache-reset', slot, droppedEntries: dropped, reason: 'a worker ended while it held the cache writer lock; the store was emptied and rebuilt' }, 'cache store reset');
      });
      // A gauge its next incarnation would only correct at its first request.
      this.shm.workerCounters(slot)[kWorkerInFlightField] = 0;
    };
    // XXX: writer null until the EndpointWriter is created here; then pass it so discovery
    // and health decisions land in the shared tables the balancers read.
    this.control = new UpstreamControl({ log: this.log, writer: this.endpoints });
  }

  async start(): Promise<void> {
    const log = this.log;
    this.port = await this.supervisor.start();
    // JWT key sets from a URL arrive asynchronously; wait (bounded) so the first requests find them.
    await Promise.race([this.access.loaded(), new Promise((r) => setTimeout(r, 10_000).unref())]);
    this.controllers.start();
    this.cluster.start();
    this.bans.start();
    this.overload = new OverloadMonitor({ shm: this.shm, endpoints: this.endpoints, workerSlots: () => this.supervisor.info.map((w) => w.slot), config: () => this.config, log });
    await this.control.apply(this.config.upstreams);
    const a = this.config.admin;
    const consoleRoutes = decisionRoutes(this.decisions, this.decisionStream);
    this.admin = await startAdminServer(a.host, a.port, this.tokens, {
      api: this.api,
      audit: this.audit,
      ready: () => !this.draining && this.supervisor.ready() && this.discoveryAnswered(),
      status: () => this.status(),
      reload: () => this.reload(),
      extra: { ...this.obs.adminRoutes, ...consoleRoutes.extra },
      streams: consoleRoutes.streams,
      ...(process.env.TIDEGATE_ENABLE_TEST_HOOKS === '1' ? { crashWorker: (slot: number, abrupt: boolean) => this.supervisor.crash(slot, abrupt) } : {}),
    });
    this.adminPort = (this.admin.address() as AddressInfo).port;
    log.info(
      { event: 'started', port: this.port, adminPort: this.adminPort, workers: this.supervisor.info.length, generation: this.generation, version: VERSION },
      `tidegate listening on ${this.config.listen.host}:${this.port} (admin ${a.host}:${this.adminPort})`,
    );
  }

  /**
   * Not ready before each upstream's discovery has answered once (a set or a failure):
   * a provider's first answer is asynchronous, and until it comes its upstream has no
   * endpoint and every request to it would be a 503. Latched, so a reload that adds an
   * upstream does not take a serving gateway out of rotation.
   */
  private discoveryAnswered(): boolean {
    if (!this.discoverySettled) this.discoverySettled = this.control.discovery.settled();
    return this.discoverySettled;
  }

  /** Re-reads the config file. A bad config is rejected with every error and the running one stays. */
  private tokenOptions(cfg: Config): ConstructorParameters<typeof TokenStore>[0] {
    return {
      token: cfg.admin.token,
      file: cfg.admin.tokens,
      loopbackRead: cfg.admin.loopbackRead,
      onFileError: (issues) => this.log.error({ event: 'admin-tokens-rejected', file: cfg.admin.tokens, issues }, 'admin token file rejected; the tokens loaded before stay'),
      onFileLoaded: (count) => this.log.info({ event: 'admin-tokens-loaded', file: cfg.admin.tokens, count }, `admin token file loaded: ${count} tokens`),
    };
  }

  async reload(): Promise<{ generation: number }> {
    const { configPath, configSource } = this.opts;
    const log = this.log;
    if (!configPath && !configSource) throw Object.assign(new Error('no config file to reload (started without --config)'), { code: 'TG_ERR_CONFIG_READ' });
    let next: Config;
    try {
      next = await checkPlugins(configSource ? configSource.load() : loadConfigFile(configPath!));
    } catch (err) {
      const e = err as Error & { issues?: readonly string[]; code?: string };
      decision(log).error({ event: 'config-rejected', reason: e.message, issues: e.issues, code: e.code }, 'config rejected; running config stays');
      throw err;
    }
    // Certificates are swapped live (below); turning TLS on or off changes the scheme
    // every worker was built for, so that one needs a restart like host and port.
    const tlsOnOff = (next.listen.tls === undefined) !== (this.config.listen.tls === undefined);
    const restartNeeded =
      next.listen.host !== this.config.listen.host ||
      next.listen.port !== this.config.listen.port ||
      tlsOnOff ||
      next.admin.host !== this.config.admin.host ||
      next.admin.port !== this.config.admin.port ||
      JSON.stringify(next.workers) !== JSON.stringify(this.config.workers) ||
      // uWS takes the WebSocket message ceiling once per worker
      next.limits.maxWebSocketMessageBytes !== this.config.limits.maxWebSocketMessageBytes ||
      // a thread's heap limits are set when it is made
      next.limits.maxWorkerYoungGeneration !== this.config.limits.maxWorkerYoungGeneration ||
      // the overrides' state file is opened once, at start
      next.state.file !== this.config.state.file;
    // XXX: worker bounds take effect on restart: the shared memory was sized for the running max.
    if (JSON.stringify(next.workers) !== JSON.stringify(this.config.workers)) next = { ...next, workers: this.config.workers };
    if (tlsOnOff) {
      // Until the restart the running TLS setting stays, or workers would stamp the
      // new scheme on requests that still arrive the old way.
      const { tls: _ignored, ...plain } = next.listen;
      next = { ...next, listen: this.config.listen.tls === undefined ? plain : { ...plain, tls: this.config.listen.tls } };
    }
    let tlsNext: TlsSnapshot | null;
    try {
      tlsNext = snapshotTls(next.listen.tls);
      // Before anything changes: a config the fixed-size tables cannot hold is refused whole,
      // and so is an event rule whose action its target would refuse.
      const eventIssues = eventRuleIssues(next, this.overrides);
      if (eventIssues.length > 0) throw new ConfigError(eventIssues);
      if (JSON.stringify(next.shared) !== JSON.stringify(this.config.shared)) {
        throw Object.assign(new Error('shared dictionaries are fixed at start: a change to `shared` needs a restart'), { code: StartupCodes.SHM_CAPACITY });
      }
      this.endpoints.checkCapacity(upstreamTables(next));
      this.flags.applyConfig(next);
      this.cache.checkReload(next);
      this.limiter.applyConfig(next);
      this.cluster.apply(next, this.limiter.rows());
      this.endpoints.applyConfig(upstreamTables(next));
      this.controllers.apply(next);
      this.splits.applyConfig(next);
      this.access.applyConfig(next);
      this.bans.applyConfig(next);
    } catch (err) {
      const e = err as Error & { code?: string; issues?: readonly string[] };
      decision(log).error({ event: 'config-rejected', reason: e.message, code: e.code, ...(e.issues ? { issues: e.issues } : {}) }, 'config rejected; running config stays');
      throw err;
    }
    const prev = this.config;
    this.config = next;
    this.tokens.configure(this.tokenOptions(next));
    this.generation++;
    // XXX: applyConfig above wrote configured values, so for the microseconds until this
    // re-applies them, workers may read an overridden value as configured.
    this.overrides.reconcile(prev, next, this.generation);
    this.shm.setGeneration(this.generation);
    this.supervisor.broadcast(compileWorkerConfig(next, this.generation, this.flags.slots));
    this.obs.onConfig(next, this.generation);
    this.rollouts.applyConfig(next);
    await this.control.apply(next.upstreams);
    if (tlsNext !== null && next.listen.tls !== undefined && this.tls.changed(tlsNext)) await this.reloadTls(next.listen.tls, tlsNext);
    this.decisions.resize(next.observability.decisions.size);
    this.decisionStream.setOptions(streamOptions(next));
    decision(log).info({ event: 'config-applied', generation: this.generation, routes: next.routes.length, upstreams: Object.keys(next.upstreams).length }, 'config applied');
    if (restartNeeded) log.warn({ event: 'config-needs-restart', reason: 'listen host/port, TLS on/off, admin host/port, workers, limits.maxWebSocketMessageBytes or limits.maxWorkerYoungGeneration changed; these take effect on restart' }, 'some changes need a restart');
    return { generation: this.generation };
  }

  /**
   * New certificate files: every worker starts a listener with them on the same port,
   * then every worker closes its old listen socket, then every worker retires the old
   * listener, whose open connections finish on the old certificate. Each step waits for
   * all workers: connections an old listener closes reconnect at once, and while any
   * worker still had an old listen socket the kernel could queue some of them there,
   * to be reset when it closes (measured: a few connect errors in wrk per reload).
   */
  private async reloadTls(tls: NonNullable<Config['listen']['tls']>, next: TlsSnapshot): Promise<void> {
    const revision = ++this.tls.revision;
    const slots = this.supervisor.info.map((w) => w.slot);
    const started = await this.supervisor.tlsStep({ type: 'tls', step: 'start', tls, revision }, slots);
    const ready = started.filter((a) => a.ok).map((a) => a.slot);
    const switched = await this.supervisor.tlsStep({ type: 'tls', step: 'switch', revision }, ready);
    await this.supervisor.tlsStep({ type: 'tls', step: 'retire', revision }, switched.filter((a) => a.ok).map((a) => a.slot));
    const answers = [...started.filter((a) => !a.ok), ...switched];
    const failed = answers.filter((a) => !a.ok).map((a) => ({ slot: a.slot, message: a.message ?? 'failed' }));
    this.tls.recordReload(next, revision, failed, answers.length);
    const certificates = next.certificates.map((c) => ({ serverName: c.serverName, subject: c.subject, validTo: c.validTo, fingerprint256: c.fingerprint256 }));
    if (failed.length === 0) decision(this.log).info({ event: 'tls-reloaded', revision, workers: answers.length, certificates }, 'certificates reloaded');
    else decision(this.log).error({ event: 'tls-reload-failed', revision, failedWorkers: failed, workers: answers.length, certificates }, 'some workers kept their old certificates');
  }

  status(): unknown {
    const workers = this.supervisor.info.map((w) => {
      const c = this.shm.workerCounters(w.slot);
      return {
        slot: w.slot,
        workerId: w.workerId,
        threadId: w.threadId,
        phase: w.phase,
        restarts: w.restarts,
        generation: w.generation,
        uptimeSeconds: w.phase === 'listening' ? Math.round((Date.now() - w.startedAt) / 1000) : 0,
        requests: c[kWorkerRequestsField],
        inFlight: c[kWorkerInFlightField],
        responses: { '1xx': c[kWorkerStatus1xxField], '2xx': c[kWorkerStatus1xxField + 1], '3xx': c[kWorkerStatus1xxField + 2], '4xx': c[kWorkerStatus1xxField + 3], '5xx': c[kWorkerStatus1xxField + 4] },
        clientAborts: c[kWorkerClientAbortsField],
        upstreamErrors: c[kWorkerUpstreamErrorsField],
        retries: c[kWorkerRetriesField],
        // limits.maxConnections counts connections with a request in progress (= inFlight)
        connections: { active: c[kWorkerInFlightField], limit: this.config.limits.maxConnections, refused: c[kWorkerConnectionsRefusedField] },
        pluginErrors: c[kWorkerPluginErrorsField],
        bytesIn: c[kWorkerBytesInField],
        bytesOut: c[kWorkerBytesOutField],
        websocket: {
          open: c[kWorkerWsOpenField],
          connections: c[kWorkerWsConnectionsField],
          messagesIn: c[kWorkerWsMessagesInField],
          messagesOut: c[kWorkerWsMessagesOutField],
          bytesIn: c[kWorkerWsBytesInField],
          bytesOut: c[kWorkerWsBytesOutField],
        },
      };
    });
    return {
      version: VERSION,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      generation: this.generation,
      draining: this.draining,
      configSource: this.opts.configSource?.status() ?? { type: 'file', path: this.opts.configPath ?? null },
      listen: { host: this.config.listen.host, port: this.port, tls: this.tls.status() },
      workers,
      totals: { requests: workers.reduce((s, w) => s + (w.requests ?? 0), 0), inFlight: workers.reduce((s, w) => s + (w.inFlight ?? 0), 0) },
      scaling: this.obs.status().scaling,
      workerScaling: this.controllers.workerScalingStatus(),
      routes: this.config.routes.map((r, i) => ({ name: r.name ?? `route-${i}`, match: r.match, upstream: r.upstream, ...(r.split === undefined ? {} : { split: r.split.map((s) => s.upstream) }), policies: r.policies.map((p) => p.name) })),
      upstreams: Object.entries(this.config.upstreams).map(([name, u]) => ({
        name,
        balancer: u.balancer,
        discovery: u.discovery.type,
        endpoints: (this.control.currentEndpoints(name) ?? (u.discovery.type === 'static' ? u.discovery.endpoints : [])).map(endpointKey),
        ...this.control.status(name),
        timeouts: u.timeouts,
        overload: this.overloadStatus(name, u.pool),
        pipelining: this.pipeliningStatus(name, u.pool),
      })),
      // balancer, endpoint states, weights, in-flight, EWMA, panic (shared tables) and limiter policies
      // weightPercent: the effective weight as a share of the configured one (slow start ramps it to 100)
      balancing: this.endpoints.status().map((u) => ({ ...u, endpoints: u.endpoints.map((e) => ({ ...e, weightPercent: e.weight > 0 ? Math.round((100 * e.effectiveWeight) / (e.weight * WEIGHT_SCALE)) : 0 })) })),
      rateLimits: this.limiter.status(),
      // scope: cluster rate limits: Redis reachability, the mode in force, leases, commands
      cluster: this.cluster.status(),
      splits: this.splits.status(),
      rollouts: this.rollouts.status(),
      access: this.access.status(),
      bans: this.bans.status(),
      // run-time changes: active overrides, those a reload or restart dropped and why, the state file
      overrides: this.overrides.status(),
      flags: this.flags.status(),
      events: this.events.status(),
      decisions: { latestId: this.decisions.latestId, oldestId: this.decisions.oldestId, retained: this.decisions.retained, size: this.decisions.size, streamClients: this.decisionStream.stats.clients },
      history: this.obs.status().history,
      // breaker state, thresholds and window, concurrency limit and its inputs, per guarded upstream
      cache: this.cache.stats(this.config),
      protection: { tickMs: this.controllers.tickMs, eventLoopUtilization: Math.round(this.controllers.utilization * 1000) / 1000, upstreams: this.controllers.status(), shedding: this.controllers.sheddingStatus(), shed: this.obs.shedByRoute(), rateLimits: this.controllers.adaptiveRateStatus() },
    };
  }

  /** Per worker: requests waiting for one of the upstream's connections, and those refused for it (pool.maxPending). */
  private overloadStatus(name: string, pool: Config['upstreams'][string]['pool']): unknown {
    const workers = this.endpoints.overload(
      name,
      this.supervisor.info.map((w) => w.slot),
    );
    return {
      connections: pool.connections,
      maxPending: pool.maxPending,
      pending: workers.reduce((s, w) => s + w.pending, 0),
      overloaded: workers.reduce((s, w) => s + w.overloaded, 0),
      workers: workers.map((w) => ({ worker: w.worker, pending: w.pending, overloaded: w.overloaded })),
    };
  }

  /** pool.pipelining > 1: requests pipelined, heads that shared a write, and the fallbacks after anomalies, per worker. */
  private pipeliningStatus(name: string, pool: Config['upstreams'][string]['pool']): unknown {
    if (pool.pipelining <= 1) return null;
    const nowS = Date.now() / 1000;
    const workers = this.endpoints
      .overload(
        name,
        this.supervisor.info.map((w) => w.slot),
      )
      .map((w) => ({
        worker: w.worker,
        pipelined: w.pipelined,
        batchedHeads: w.pipelineBatched,
        fallbacks: w.pipelineFallbacks,
        lastAnomaly: w.pipelineAnomaly === 0 ? null : (pipelineAnomalyNames[w.pipelineAnomaly] ?? String(w.pipelineAnomaly)),
        // the pool that stopped last is still sending one request at a time
        oneAtATime: w.pipelineOffUntilS > nowS,
      }));
    return {
      depth: pool.pipelining,
      pipelined: workers.reduce((s, w) => s + w.pipelined, 0),
      batchedHeads: workers.reduce((s, w) => s + w.batchedHeads, 0),
      fallbacks: workers.reduce((s, w) => s + w.fallbacks, 0),
      fallbackSeconds: PIPELINE_FALLBACK_MS / 1000,
      workers,
    };
  }

  /** Graceful stop: stop accepting, finish in-flight requests up to the drain timeout, close everything. */
  async stop(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const timeoutMs = this.config.shutdown.drainTimeout;
    this.log.info({ event: 'draining', timeoutMs }, 'draining');
    await this.supervisor.drain(timeoutMs);
    this.overload?.stop();
    this.controllers.stop();
    this.cluster.stop();
    this.rollouts.stop();
    this.overrides.stop();
    await this.obs.close();
    await this.control.stop();
    this.endpoints.stop();
    this.access.stop();
    this.bans.stop();
    const admin = this.admin;
    this.decisionStream.closeAll();
    if (admin) {
      const closed = new Promise<void>((r) => admin.close(() => r()));
      admin.closeAllConnections();
      await closed;
    }
    this.log.info({ event: 'stopped' }, 'stopped');
  }
}
