// Turns a validated Config into what workers receive. Done once per generation on
// the primary; workers rebuild their matchers from it.
import type { Config, WebSocketConfig } from './schema.js';
import type { WorkerConfig, WorkerFallback, WorkerRoute, WorkerUpstream, WorkerWebSocket } from '../messages.js';
import { workerObservability } from '../metrics/config.js';
import { priorityShares } from '../controllers/concurrency.js';
import { priorityNames } from '../shm/layout.js';
import { adaptivePolicies } from '../controllers/adaptive-rate.js';
import { placeDicts } from '../shm/shared-dict-layout.js';
import { sharedDictSpecs } from './schema-shared.js';

export function compileWorkerConfig(cfg: Config, generation: number): WorkerConfig {
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
  }));
  return { generation, listen: cfg.listen, limits: cfg.limits, proxy: cfg.proxy, observability: workerObservability(cfg.observability), upstreams, routes, plugins: cfg.plugins, shared: placeDicts(0, sharedDictSpecs(cfg.shared)) };
}

/** Index in priorityNames of the highest priority any route sends to `upstream` (critical = 0). */
function topPriority(cfg: Config, upstream: string): number {
  let top = priorityNames.length - 1;
  for (const r of cfg.routes) if (r.upstream === upstream) top = Math.min(top, priorityNames.indexOf(r.priority));
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
