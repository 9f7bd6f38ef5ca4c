// Turns a validated Config into what workers receive. Done once per generation on
// the primary; workers rebuild their matchers from it.
import type { Config, RouteConfig, WebSocketConfig } from './schema.js';
import type { WorkerConfig, WorkerFallback, WorkerFlagRef, WorkerMaintenance, WorkerRoute, WorkerRouteCache, WorkerSplit, WorkerUpstream, WorkerWebSocket } from '../messages.js';
import type { RouteCacheConfig } from './schema-cache.js';
import { workerObservability } from '../metrics/config.js';
import { priorityShares } from '../controllers/concurrency.js';
import { priorityNames } from '../shm/layout.js';
import { adaptivePolicies } from '../controllers/adaptive-rate.js';
import { workerTenants } from './schema-tenants.js';
import { placeDicts } from '../shm/shared-dict-layout.js';
import { sharedDictSpecs } from './schema-shared.js';

/**
 * `flagSlots`: each flag's slot in shared memory, given by the primary's flag writer
 * (kept across reloads); without it, slots follow the config's order (tests, benches).
 */
export function compileWorkerConfig(cfg: Config, generation: number, flagSlots?: ReadonlyMap<string, number>): WorkerConfig {
  const flagNames = Object.keys(cfg.flags);
  const flagRef = (name: string | undefined): WorkerFlagRef | null => (name === undefined ? null : { slot: flagSlots?.get(name) ?? flagNames.indexOf(name), stickyHeader: cfg.flags[name]?.stickyHeader ?? null });
  const names = Object.keys(cfg.upstreams);
  // An adaptive rate limit needs its upstream's outcome counters, which a guard keeps.
  const watched = new Set(adaptivePolicies(cfg).map((p) => p.upstream));
  const upstreams: WorkerUpstream[] = names.map((name) => {
    const u = cfg.upstreams[name]!;
    return {
      name,
      balancer: u.balancer,
      hash: u.hash ?? null,
      // Only a static set is known at compile time; discovered sets reach workers through
      // the shared endpoint tables (src/primary/endpoint-writer.ts), not through config.
      timeouts: u.timeouts,
      pool: u.pool,
      retries: u.retries,
      guard: u.breaker === undefined && u.concurrency === undefined && !watched.has(name) ? null : { slowCallUs: (u.breaker?.slowCall?.duration ?? 0) * 1000, fallback: workerFallback(u.breaker?.fallback, names), shares: uncapTop(priorityShares(u.concurrency), topPriority(cfg, name)) },
    };
  });
  let splitRow = 0;
  const routes: WorkerRoute[] = cfg.routes.map((r, i) => ({
    name: r.name ?? `route-${i}`,
    hosts: r.match.host === undefined ? null : Array.isArray(r.match.host) ? r.match.host : [r.match.host],
    path: r.match.path,
    pathType: r.match.pathType,
    methods: r.match.methods ?? null,
    upstream: names.indexOf(r.upstream),
    policies: r.policies,
    rewriteHost: r.rewriteHost,
    priority: priorityNames.indexOf(r.priority),
    websocket: r.websocket === undefined ? null : workerWebSocket(r.websocket, cfg.limits.maxWebSocketMessageBytes),
    split: r.split === undefined ? null : workerSplit(r, splitRow++, names),
    flag: flagRef(r.match.flag),
    maintenance: r.maintenance === undefined ? null : workerMaintenance(r.maintenance, flagRef(r.maintenance.flag)!),
    cache: r.cache === undefined ? null : workerRouteCache(r.cache),
    lua: r.lua ?? null,
  }));
  const cache = cfg.routes.some((r) => r.cache !== undefined) ? { lockTimeout: cfg.cache.lockTimeout, admission: cfg.cache.admission } : null;
  return { generation, listen: cfg.listen, limits: cfg.limits, proxy: cfg.proxy, observability: workerObservability(cfg.observability), upstreams, routes, tenants: workerTenants(cfg.tenants), cache, plugins: cfg.plugins, shared: placeDicts(0, sharedDictSpecs(cfg.shared)) };
}

/** Index in priorityNames of the highest priority any route sends to `upstream` (critical = 0); a tenant tier's priority may raise any route's. */
function topPriority(cfg: Config, upstream: string): number {
  let top = priorityNames.length - 1;
  for (const r of cfg.routes) if (r.upstream === upstream || r.split?.some((s) => s.upstream === upstream)) top = Math.min(top, priorityNames.indexOf(r.priority));
  for (const t of Object.values(cfg.tenants?.tiers ?? {})) if (t.priority !== undefined) top = Math.min(top, priorityNames.indexOf(t.priority));
  return top;
}

/**
 * A share is a reserve for the priorities above it, so the highest priority that
 * actually routes to the upstream fills the whole limit: an upstream whose routes are
 * all `normal` admits its full `limit`, not 80 % of it.
 */
function uncapTop(shares: number[], top: number): number[] {
  return shares.map((s, i) => (i <= top ? 1 : s));
}

function workerMaintenance(m: NonNullable<Config['routes'][number]['maintenance']>, ref: WorkerFlagRef): WorkerMaintenance {
  const headers = ['content-type', m.contentType];
  if (m.retryAfter !== undefined) headers.push('retry-after', String(Math.max(1, Math.ceil(m.retryAfter / 1000))));
  return { ...ref, response: { kind: 'static', status: m.status, body: m.body, headers } };
}

function workerRouteCache(c: RouteCacheConfig): WorkerRouteCache {
  return {
    ttlDefault: c.ttl.default,
    ttlMin: c.ttl.min,
    ttlMax: c.ttl.max,
    staleWhileRevalidate: c.staleWhileRevalidate,
    staleIfError: c.staleIfError,
    staleIfBusy: c.staleIfBusy,
    keyHeaders: c.keyHeaders,
    bypassHeader: c.bypass.header ?? null,
    bypassCookie: c.bypass.cookie ?? null,
    stripSetCookie: c.setCookie === 'strip',
  };
}

function workerWebSocket(ws: WebSocketConfig, ceiling: number): WorkerWebSocket {
  return { idleTimeout: ws.idleTimeout, maxMessageSize: ws.maxMessageSize ?? ceiling, maxBackpressure: ws.maxBackpressure };
}

function workerFallback(fb: NonNullable<Config['upstreams'][string]['breaker']>['fallback'], names: readonly string[]): WorkerFallback | null {
  if (fb === undefined) return null;
  if ('upstream' in fb) return { kind: 'upstream', upstream: names.indexOf(fb.upstream) };
  const headers: string[] = [];
  for (const [k, v] of Object.entries(fb.headers)) headers.push(k.toLowerCase(), v);
  if (!Object.hasOwn(fb.headers, 'content-type') && !headers.includes('content-type') && fb.body.length > 0) headers.push('content-type', 'text/plain; charset=utf-8');
  return { kind: 'static', status: fb.status, body: fb.body, headers };
}

/**
 * Split rows go to split routes in config order (the primary's SplitWriter uses the
 * same order, src/primary/rollout/split-writer.ts).
 */
function workerSplit(r: RouteConfig, row: number, names: readonly string[]): WorkerSplit {
  const sides = r.split!;
  return {
    row,
    sides: sides.map((s) => names.indexOf(s.upstream)),
    sticky: r.sticky === undefined ? null : { on: r.sticky.on, name: r.sticky.name ?? '' },
    rules: sides.flatMap((s, side) => (s.match === undefined ? [] : [{ side, headers: Object.entries(s.match.header).flat() }])),
  };
}
