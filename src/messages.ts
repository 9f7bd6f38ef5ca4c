// Every message that crosses between the primary and a worker thread. Messages are
// for rare, large things (a config generation, drain); anything read per request
// lives in shared memory (docs/architecture.md §1).
import type { Config, RouteConfig, TlsConfig, UpstreamConfig } from './config/schema.js';
import type { PolicyEntry } from './policies/registry.js';
import type { WorkerObservability } from './metrics/worker-observability.js';
import type { DictPlacement } from './shm/shared-dict-layout.js';
import type { LuaContentConfig } from './lua/lua-policy.js';

/** The part of a config a worker needs, structured-clone safe. */
export interface WorkerConfig {
  readonly generation: number;
  readonly listen: Config['listen'];
  readonly limits: Config['limits'];
  readonly proxy: Config['proxy'];
  readonly observability: WorkerObservability;
  readonly upstreams: readonly WorkerUpstream[];
  readonly routes: readonly WorkerRoute[];
  /** tenant tiers (src/config/schema-tenants.ts), null without a tenants section */
  readonly tenants: WorkerTenants | null;
  /** the shared response cache's settings; null when no route caches */
  readonly cache?: WorkerCache | null;
  /** plugin module paths (config `plugins`), imported once per generation */
  readonly plugins: readonly string[];
  /** the shared dictionaries (config `shared`), placed in the shared buffer's region */
  readonly shared: readonly DictPlacement[];
}

export interface WorkerCache {
  /** ms a request waits for another's fill of the same key (cache.lockTimeout) */
  readonly lockTimeout: number;
  readonly admission: boolean;
}

/** A route's `cache` block, durations in ms (src/worker/cache/route-cache.ts). */
export interface WorkerRouteCache {
  readonly ttlDefault: number;
  readonly ttlMin: number;
  readonly ttlMax: number;
  readonly staleWhileRevalidate: number;
  readonly staleIfError: number;
  readonly staleIfBusy: number;
  readonly keyHeaders: readonly string[];
  readonly bypassHeader: string | null;
  readonly bypassCookie: string | null;
  readonly stripSetCookie: boolean;
}

export interface WorkerTenants {
  /** request header naming the tenant when no auth policy did; null: none */
  readonly header: string | null;
  readonly tiers: readonly WorkerTier[];
  /** tenant → index into tiers */
  readonly assign: Readonly<Record<string, number>>;
  readonly defaultTier: number;
}

export interface WorkerTier {
  readonly name: string;
  readonly ratePerSecond: number;
  /** the rate as configured, for RateLimit-Policy: count per periodSeconds */
  readonly count: number;
  readonly periodSeconds: number;
  readonly burst: number;
  /** a Priority (0 critical … 3 low), or -1: the route's */
  readonly priority: number;
}

export interface WorkerUpstream {
  readonly name: string;
  readonly balancer: UpstreamConfig['balancer'];
  readonly hash: UpstreamConfig['hash'] | null;
  readonly timeouts: UpstreamConfig['timeouts'];
  readonly pool: UpstreamConfig['pool'];
  readonly retries: number;
  /** breaker and concurrency limit, when either is configured (src/controllers) */
  readonly guard: WorkerGuard | null;
}

/** What a worker needs of an upstream's adaptive protection; the controllers on the primary decide the rest. */
export interface WorkerGuard {
  /** attempts whose response head takes this long count as slow (breaker.slowCall.duration); 0 = not counted */
  readonly slowCallUs: number;
  /** what an open breaker answers instead of 503 TG_ERR_CIRCUIT_OPEN */
  readonly fallback: WorkerFallback | null;
  /** the fraction of the concurrency limit each Priority may fill (critical first) */
  readonly shares: readonly number[];
}

export type WorkerFallback =
  | { readonly kind: 'upstream'; readonly upstream: number }
  | { readonly kind: 'static'; readonly status: number; readonly body: string; readonly headers: readonly string[] };

export interface WorkerRoute {
  readonly name: string;
  readonly hosts: readonly string[] | null;
  readonly path: string;
  readonly pathType: RouteConfig['match']['pathType'];
  readonly methods: readonly string[] | null;
  readonly upstream: number; // index into WorkerConfig.upstreams
  readonly policies: readonly PolicyEntry[];
  readonly rewriteHost: boolean;
  /** a Priority (0 critical … 3 low) */
  readonly priority: number;
  /** null: Upgrade requests are proxied as plain HTTP (Upgrade is hop-by-hop) */
  readonly websocket: WorkerWebSocket | null;
  /** null: every request goes to `upstream` */
  readonly split: WorkerSplit | null;
  /** match.flag: the route matches only while this flag is on for the request */
  readonly flag: WorkerFlagRef | null;
  /** answered instead of proxying while its flag is on for the request */
  readonly maintenance: WorkerMaintenance | null;
  /** null: the route does not cache */
  readonly cache?: WorkerRouteCache | null;
  /** `lua.content`: a script answers instead of an upstream (upstream is then -1) */
  readonly lua?: LuaContentConfig | null;
}

/** A flag's slot in shared memory (src/shm/flag-table.ts) and what a percentage sticks by. */
export interface WorkerFlagRef {
  readonly slot: number;
  /** lower-case header whose value picks the callers of a percentage; null: the client address */
  readonly stickyHeader: string | null;
}

export interface WorkerMaintenance extends WorkerFlagRef {
  readonly response: Extract<WorkerFallback, { kind: 'static' }>;
}

/** A route's sides; their weights are in the shared split row `row` (src/shm/split-table.ts). */
export interface WorkerSplit {
  readonly row: number;
  /** upstream index of each side, in config order (the order of the row's thresholds) */
  readonly sides: readonly number[];
  readonly sticky: { readonly on: 'header' | 'cookie' | 'client-ip'; readonly name: string } | null;
  /** header rules, tried in side order before the weights: `headers` is name, value, … */
  readonly rules: readonly { readonly side: number; readonly headers: readonly string[] }[];
}

export interface WorkerWebSocket {
  /** ms; 0 = none */
  readonly idleTimeout: number;
  readonly maxMessageSize: number;
  readonly maxBackpressure: number;
}

export interface WorkerData {
  readonly workerId: number;
  readonly slot: number;
  readonly shm: SharedArrayBuffer;
  readonly maxWorkers: number;
  /** the port to listen on; 0 only for the first worker, which reports the one it got */
  readonly port: number;
  readonly config: WorkerConfig;
  /** the access policies' run-time tables in force when the worker starts (src/policies/policy-data.ts) */
  readonly policyData: readonly (readonly [string, unknown])[];
  /** the shared response cache (src/shm/cache-store.ts); absent when no route caches */
  readonly cache?: SharedArrayBuffer | null;
}

export type TlsStep = 'start' | 'switch' | 'retire';

export type PrimaryToWorker =
  | { readonly type: 'config'; readonly config: WorkerConfig }
  | { readonly type: 'drain'; readonly timeoutMs: number }
  /** an access policy's run-time table changed (src/policies/policy-data.ts); value undefined clears it */
  | { readonly type: 'policy-data'; readonly key: string; readonly value: unknown }
  /**
   * The worker scaler retires this thread: stop accepting, close each connection after
   * its next response, end once none is left (or at timeoutMs); answered with 'drained'.
   */
  | { readonly type: 'retire'; readonly timeoutMs: number }
  /**
   * New certificate files (or the same paths rewritten), in three steps that every
   * worker finishes before any starts the next (src/primary/gateway.ts reloadTls):
   * start a listener with them beside the old one; switch (the old listen socket
   * closes); retire (old connections close after their next response).
   */
  | { readonly type: 'tls'; readonly step: 'start'; readonly tls: TlsConfig; readonly revision: number }
  | { readonly type: 'tls'; readonly step: 'switch' | 'retire'; readonly revision: number }
  /** test hook: throw inside the worker, to exercise the crash path; `abrupt`: end the thread without its cleanup */
  | { readonly type: 'crash'; readonly abrupt?: boolean };

export type WorkerToPrimary =
  | { readonly type: 'listening'; readonly workerId: number; readonly port: number }
  | { readonly type: 'listen-failed'; readonly workerId: number; readonly message: string }
  | { readonly type: 'config-applied'; readonly workerId: number; readonly generation: number }
  | { readonly type: 'drained'; readonly workerId: number; readonly forced: number }
  | { readonly type: 'tls-step'; readonly workerId: number; readonly revision: number; readonly step: TlsStep; readonly ok: boolean; readonly message?: string }
  | { readonly type: 'telemetry'; readonly workerId: number; readonly slot: number; readonly payload: unknown }
  | { readonly type: 'log'; readonly level: 'info' | 'warn' | 'error'; readonly event: string; readonly fields: Record<string, unknown> };
