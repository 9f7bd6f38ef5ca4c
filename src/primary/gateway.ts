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
import { StartupCodes } from '../errors.js';
import { SharedDicts } from '../shm/shared-dicts.js';
import { sharedDictSpecs } from '../config/schema-shared.js';
import { sharedDictRoute } from './shared-dict-routes.js';

export const VERSION = '0.1.0';

export interface GatewayOptions {
  readonly config: Config;
  /** file to re-read on reload (SIGHUP or POST /reload); absent for a programmatic config */
  readonly configPath?: string;
  readonly log: Logger;
}

function streamOptions(c: Config): DecisionStreamOptions {
  const s = c.observability.decisions.stream;
  return { heartbeatMs: s.heartbeat, clientBufferBytes: s.clientBuffer, maxClients: s.maxClients };
}

export function resolveWorkerCount(workers: Config['workers']): number {
  return workers === 'auto' ? Math.max(1, availableParallelism()) : workers;
}

export class Gateway {
  private config: Config;
  private generation = 1;
  private readonly shm: SharedState;
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
    this.shm = SharedState.create({ maxWorkers: count, ...shmCapacity(opts.config) });
    this.shm.setGeneration(this.generation);
    this.dicts = SharedDicts.format(this.shm, sharedDictSpecs(opts.config.shared));
    this.api.add(sharedDictRoute(this.dicts));
    // Tables before workers: a worker finds its upstreams in them when it starts.
    this.endpoints = new EndpointWriter(this.shm, this.log);
    this.endpoints.applyConfig(upstreamTables(this.config), true);
    this.limiter = new LimiterWriter(this.shm);
    this.limiter.applyConfig(this.config);
    this.supervisor = new Supervisor(this.shm, count, compileWorkerConfig(this.config, this.generation), this.log);
    this.controllers = new ControllerScheduler({ shm: this.shm, log: this.log, workerSlots: () => this.supervisor.info.map((w) => w.slot), workerUtilization: () => this.supervisor.eventLoopUtilization(), slotOf: (name) => this.endpoints.slotOf(name), setMultiplier: (row, f) => this.limiter.setMultiplier(row, f) });
    this.controllers.apply(this.config);
    this.obs = createObservability({ shm: this.shm, workers: () => this.supervisor.info, config: () => this.config, log: this.log, tls: () => this.tls.status(), decisions: this.decisions, decisionStream: this.decisionStream.stats, controllers: () => this.controllers.status(), shedding: () => this.controllers.sheddingStatus() });
    this.supervisor.onTelemetry = (slot, payload) => this.obs.onWorkerTelemetry(slot, payload);
    this.supervisor.onWorkerExit = (slot) => {
      this.endpoints.releaseWorker(slot);
      this.controllers.releaseWorker(slot);
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
    this.controllers.start();
    this.overload = new OverloadMonitor({ shm: this.shm, endpoints: this.endpoints, workerSlots: () => this.supervisor.info.map((w) => w.slot), config: () => this.config, log });
    await this.control.apply(this.config.upstreams);
    const a = this.config.admin;
    const consoleRoutes = decisionRoutes(this.decisions, this.decisionStream);
    this.admin = await startAdminServer(a.host, a.port, this.tokens, {
      api: this.api,
      audit: this.audit,
      ready: () => !this.draining && this.supervisor.info.every((w) => w.phase === 'listening') && this.discoveryAnswered(),
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
      onFileError: (issues) => this.log.error({ event: 'admin-tokens-rejected', file: cfg.admin.tokens, issues }, 'admin token file rejected; the tokens loaded before stay'),
      onFileLoaded: (count) => this.log.info({ event: 'admin-tokens-loaded', file: cfg.admin.tokens, count }, `admin token file loaded: ${count} tokens`),
    };
  }

  async reload(): Promise<{ generation: number }> {
    const { configPath } = this.opts;
    const log = this.log;
    if (!configPath) throw Object.assign(new Error('no config file to reload (started without --config)'), { code: 'TG_ERR_CONFIG_READ' });
    let next: Config;
    try {
      next = await checkPlugins(loadConfigFile(configPath));
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
      next.workers !== this.config.workers ||
      // uWS takes the WebSocket message ceiling once per worker
      next.limits.maxWebSocketMessageBytes !== this.config.limits.maxWebSocketMessageBytes;
    if (tlsOnOff) {
      // Until the restart the running TLS setting stays, or workers would stamp the
      // new scheme on requests that still arrive the old way.
      const { tls: _ignored, ...plain } = next.listen;
      next = { ...next, listen: this.config.listen.tls === undefined ? plain : { ...plain, tls: this.config.listen.tls } };
    }
    let tlsNext: TlsSnapshot | null;
    try {
      tlsNext = snapshotTls(next.listen.tls);
      // Before anything changes: a config the fixed-size tables cannot hold is refused whole.
      if (JSON.stringify(next.shared) !== JSON.stringify(this.config.shared)) {
        throw Object.assign(new Error('shared dictionaries are fixed at start: a change to `shared` needs a restart'), { code: StartupCodes.SHM_CAPACITY });
      }
      this.endpoints.checkCapacity(upstreamTables(next));
      this.limiter.applyConfig(next);
      this.endpoints.applyConfig(upstreamTables(next));
      this.controllers.apply(next);
    } catch (err) {
      const e = err as Error & { code?: string };
      decision(log).error({ event: 'config-rejected', reason: e.message, code: e.code }, 'config rejected; running config stays');
      throw err;
    }
    this.config = next;
    this.tokens.configure(this.tokenOptions(next));
    this.generation++;
    this.shm.setGeneration(this.generation);
    this.supervisor.broadcast(compileWorkerConfig(next, this.generation));
    this.obs.onConfig(next, this.generation);
    await this.control.apply(next.upstreams);
    if (tlsNext !== null && next.listen.tls !== undefined && this.tls.changed(tlsNext)) await this.reloadTls(next.listen.tls, tlsNext);
    this.decisions.resize(next.observability.decisions.size);
    this.decisionStream.setOptions(streamOptions(next));
    decision(log).info({ event: 'config-applied', generation: this.generation, routes: next.routes.length, upstreams: Object.keys(next.upstreams).length }, 'config applied');
    if (restartNeeded) log.warn({ event: 'config-needs-restart', reason: 'listen host/port, TLS on/off, admin host/port, workers or limits.maxWebSocketMessageBytes changed; these take effect on restart' }, 'some changes need a restart');
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
      listen: { host: this.config.listen.host, port: this.port, tls: this.tls.status() },
      workers,
      totals: { requests: workers.reduce((s, w) => s + (w.requests ?? 0), 0), inFlight: workers.reduce((s, w) => s + (w.inFlight ?? 0), 0) },
      scaling: this.obs.status().scaling,
      routes: this.config.routes.map((r, i) => ({ name: r.name ?? `route-${i}`, match: r.match, upstream: r.upstream, policies: r.policies.map((p) => p.name) })),
      upstreams: Object.entries(this.config.upstreams).map(([name, u]) => ({
        name,
        balancer: u.balancer,
        discovery: u.discovery.type,
        endpoints: (this.control.currentEndpoints(name) ?? (u.discovery.type === 'static' ? u.discovery.endpoints : [])).map(endpointKey),
        ...this.control.status(name),
        timeouts: u.timeouts,
        overload: this.overloadStatus(name, u.pool),
      })),
      // balancer, endpoint states, weights, in-flight, EWMA, panic (shared tables) and limiter policies
      // weightPercent: the effective weight as a share of the configured one (slow start ramps it to 100)
      balancing: this.endpoints.status().map((u) => ({ ...u, endpoints: u.endpoints.map((e) => ({ ...e, weightPercent: e.weight > 0 ? Math.round((100 * e.effectiveWeight) / (e.weight * WEIGHT_SCALE)) : 0 })) })),
      rateLimits: this.limiter.status(),
      decisions: { latestId: this.decisions.latestId, oldestId: this.decisions.oldestId, retained: this.decisions.retained, size: this.decisions.size, streamClients: this.decisionStream.stats.clients },
      history: this.obs.status().history,
      // breaker state, thresholds and window, concurrency limit and its inputs, per guarded upstream
      protection: { tickMs: this.controllers.tickMs, eventLoopUtilization: Math.round(this.controllers.utilization * 1000) / 1000, upstreams: this.controllers.status(), shedding: this.controllers.sheddingStatus(), rateLimits: this.controllers.adaptiveRateStatus() },
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
    await this.obs.close();
    await this.control.stop();
    this.endpoints.stop();
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
