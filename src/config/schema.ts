// The config schema. zod was chosen over ajv/typebox because one declaration gives
// both the static type and a validator that reports *every* issue with its path, and
// transforms let durations/sizes/rates be parsed strictly where they are declared.
// Unknown keys are errors everywhere: a typo must never be silently ignored.
import { z } from 'zod';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { SERVER_NAME_RE } from './tls-files.js';
import { durationMs, sizeBytes } from '../units/zod-units.js';
import { parseDuration, parseSize } from '../units/units.js';
import { policyEntrySchema } from './policy-entries.js';
import { discoverySchema } from '../discovery/registry.js';
import { healthSchema } from './schema-health.js';
import { observabilitySchema } from '../metrics/config.js';
import { breakerSchema, fallbackIssues } from '../controllers/breaker.js';
import { concurrencySchema } from '../controllers/concurrency.js';
import { sheddingSchema } from '../controllers/shed-level.js';
import { workersSchema } from './schema-workers.js';
import { priorityNames } from '../shm/layout.js';
import { redisIssues, redisSchema } from './schema-redis.js';
import { splitIssues, splitRouteFields } from './schema-split.js';
import { rolloutIssues, rolloutsSchema } from './schema-rollout.js';
import { tenantsSchema } from './schema-tenants.js';
import { controlSections, flagIssues, maintenanceSchema, routeFlagMatch } from './schema-control.js';
import { cacheIssues, cacheStoreSchema, routeCacheSchema } from './schema-cache.js';
import { sharedDictsSchema } from './schema-shared.js';
import { pluginPathsSchema } from './schema-plugins.js';
import { luaIssues, luaRouteFields } from './schema-lua.js';

export const duration = durationMs;
export const size = sizeBytes;

const cidr = z.string().refine((v) => {
  const [addr, bits, extra] = v.split('/');
  if (extra !== undefined || !addr) return false;
  const family = isIP(addr);
  if (family === 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return Number.isInteger(n) && n >= 0 && n <= (family === 4 ? 32 : 128);
}, 'expected an IP address or CIDR like "10.0.0.0/8"');

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE'] as const;

/** a PEM file; a relative path is taken from the working directory */
const pemPath = z.string().min(1).transform((p) => resolve(p));
const pemEntry = { cert: pemPath, key: pemPath, passphrase: z.string().min(1).optional() };

/**
 * TLS termination on the data-plane port (uWS SSLApp, BoringSSL inside). The files are
 * read, parsed and matched at config check (src/config/tls-checks.ts); each `sni`
 * entry is a certificate chosen by the client's server name, the top-level one is
 * served to every other name and to clients that send none.
 */
const tlsSchema = z.strictObject({
  ...pemEntry,
  sni: z
    .array(
      z.strictObject({
        serverName: z
          .string()
          .regex(SERVER_NAME_RE, 'expected a DNS name like "api.example.com" or "*.example.com"')
          .transform((h) => h.toLowerCase()),
        ...pemEntry,
      }),
    )
    .default([]),
});

const listenSchema = z.strictObject({
  host: z.string().min(1).default('0.0.0.0'),
  port: z.number().int().min(0).max(65535).default(8080),
  tls: tlsSchema.optional(),
});

const adminSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(9901),
  token: z.string().min(16, 'admin token must be at least 16 characters').optional(),
  /** a file of named tokens with scopes (see src/config/token-file.ts); re-read when it changes */
  tokens: z.string().min(1).optional(),
  /**
   * with tokens configured, GET and HEAD from a loopback peer that sends no token act
   * with the `read` scope (a read-only console on the machine itself); off by default
   */
  loopbackRead: z.boolean().default(false),
});

// uWS 20.30 drops a request with more than 48 header lines before tidegate sees it
// (measured; test/integration/framing.test.ts pins it), so a higher limit
// would be a promise we cannot keep.
export const UWS_MAX_HEADER_COUNT = 48;

const limitsSchema = z.strictObject({
  maxHeaderBytes: size.default(16 * 1024),
  maxHeaderCount: z.number().int().min(1).max(UWS_MAX_HEADER_COUNT).default(UWS_MAX_HEADER_COUNT),
  maxUrlBytes: size.default(8 * 1024),
  maxBodyBytes: size.default(10 * 1024 * 1024),
  clientBodyTimeout: duration.default(10_000),
  /**
   * Per worker: connections with a request in progress beyond this are answered 503
   * TG_ERR_LIMIT_CONNECTIONS and closed. uWS 20.30 tells JS nothing about a connection
   * before its first request head (no accept or close hook), so idle keep-alive
   * connections and ones still sending a head are not counted (README, "Overload").
   */
  maxConnections: z.number().int().min(1).max(1_000_000).default(10_000),
  /**
   * Largest WebSocket message any route accepts. uWS takes it once per worker, so it is
   * fixed at start; routes may set a smaller `websocket.maxMessageSize`.
   */
  maxWebSocketMessageBytes: size.pipe(z.number().int().min(1024).max(256 * 1024 * 1024)).default(1024 * 1024),
  /**
   * Each worker thread's V8 young generation at most (0: V8's own ceiling, 16 MiB
   * semi-spaces). Under load V8 grows it while scavenges see survivors and keeps what it
   * grew into, which is most of the loaded RSS's drift; a proxy's garbage dies young, so
   * a small one costs little (README). Fixed at start (a thread's heap is sized once).
   */
  maxWorkerYoungGeneration: size.pipe(z.number().int().refine((v) => v === 0 || (v >= 1024 * 1024 && v <= 256 * 1024 * 1024), 'must be 0 (V8 decides) or 1mb … 256mb')).default(8 * 1024 * 1024),
});

/**
 * Shared-memory table sizes (src/shm/layout.ts), fixed at start: a reload that needs more
 * is refused with TG_ERR_SHM_CAPACITY, and a change here takes effect on restart.
 */
const capacitySchema = z.strictObject({
  upstreams: z.number().int().min(1).max(4096).default(64),
  endpointsPerUpstream: z.number().int().min(1).max(65_536).default(128),
  /** rate-limit keys tracked at once across all policies (rounded up to a power of two) */
  limiterKeys: z.number().int().min(16).max(1 << 24).default(65_536),
  /** rate-limit policies across all routes */
  limiterPolicies: z.number().int().min(1).max(4096).default(64),
  /** keys the ban table tracks at once (refusal counts and bans), rounded up to a power of two */
  banKeys: z.number().int().min(16).max(1 << 20).default(4096),
});

const shutdownSchema = z.strictObject({
  drainTimeout: duration.default(10_000),
});

const proxySchema = z.strictObject({
  /** peers whose X-Forwarded-Proto/-Host are kept and whose X-Forwarded-For hops are believed for the client address (X-Forwarded-For is appended to for every peer) */
  trustedProxies: z.array(cidr).default([]),
  via: z.union([z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected a token like "tidegate"'), z.literal(false)]).default('tidegate'),
  requestIdHeader: z.string().regex(/^[a-z0-9-]+$/, 'expected a lowercase header name').default('x-request-id'),
  /**
   * RFC 7239 Forwarded: a trusted proxy's field is passed on, anyone else's dropped
   * (the X-Forwarded-For trust rule); `append` also adds our own element.
   */
  forwarded: z.enum(['pass', 'append']).default('pass'),
  /** collapse repeated slashes in the path before routing (Envoy merge_slashes) */
  mergeSlashes: z.boolean().default(false),
  /** %2F and %5C in the path: forward as they are, refuse with 400, or decode before routing */
  escapedSlashes: z.enum(['keep', 'reject', 'decode']).default('keep'),
});

const upstreamSchema = z.strictObject({
  /** picker per upstream (src/balancers/<name>.ts); weights come with the endpoints */
  balancer: z.enum(['round-robin', 'weighted-round-robin', 'least-request', 'peak-ewma', 'consistent-hash']).default('round-robin'),
  /** consistent-hash key: a request header, a cookie, or the client address (after trusted proxies) */
  hash: z
    .strictObject({
      on: z.enum(['header', 'cookie', 'client-ip']),
      name: z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected a header or cookie name').optional(),
    })
    .refine((h) => h.on === 'client-ip' || h.name !== undefined, { message: 'hash.name is required for header and cookie', path: ['name'] })
    .optional(),
  /** a new or re-admitted endpoint's weight ramps up over this window (Envoy slow start); 0 = off */
  slowStart: duration.default(0),
  /** below this share of healthy endpoints, balance over all of them (Envoy panic threshold); 0% = never */
  panicThreshold: z
    .union([z.number(), z.string().regex(/^\d+(\.\d+)?%$/, 'expected a percentage like "50%"')])
    .transform((v) => (typeof v === 'number' ? v : Number(v.slice(0, -1))))
    .pipe(z.number().min(0).max(100))
    .default(50),
  /** one provider per upstream (src/discovery/<type>.ts, each with its schema) */
  discovery: discoverySchema,
  /** active checks and passive outlier detection (src/config/schema-health.ts) */
  health: healthSchema.optional(),
  timeouts: z
    .strictObject({
      connect: duration.default(1_000),
      /** time to the response's header block */
      response: duration.default(30_000),
      /** longest gap between two body chunks from the upstream */
      read: duration.default(60_000),
    })
    .prefault({}),
  pool: z
    .strictObject({
      connections: z.number().int().min(1).max(4096).default(64),
      keepAliveTimeout: duration.default(4_000),
      /**
       * Per worker: requests waiting for one of this upstream's connections (beyond
       * what `connections` carry) past which new ones get 503 TG_ERR_UPSTREAM_OVERLOADED
       * at once; undici's own queue is unbounded.
       */
      maxPending: z.number().int().min(0).max(1_000_000).default(1024),
      /**
       * Requests one connection may have outstanding (HTTP/1.1 pipelining), for
       * upstreams known to handle it: bodiless GET, HEAD and OPTIONS only. 1 = one at a time.
       */
      pipelining: z.number().int().min(1).max(16).default(1),
    })
    .prefault({}),
  retries: z.number().int().min(0).max(5).default(1),
  /** circuit breaker (src/controllers/breaker.ts) */
  breaker: breakerSchema.optional(),
  /** in-flight limit, fixed or adaptive (src/controllers/concurrency.ts) */
  concurrency: concurrencySchema.optional(),
});

const hostPattern = z
  .string()
  .regex(/^(\*\.)?[A-Za-z0-9.-]+$/, 'expected a host name like "api.example.com" or "*.example.com"')
  .transform((h) => h.toLowerCase());

/** Per-route WebSocket relay settings; `websocket: true` takes every default. */
export const websocketSchema = z.strictObject({
  /** no message (or ping/pong) either way for this long closes both sides with 1001; 0 = never. Checked once a second */
  idleTimeout: duration.default(60_000),
  /** a larger message in either direction closes both sides with 1009; default limits.maxWebSocketMessageBytes */
  maxMessageSize: size.pipe(z.number().int().min(1)).optional(),
  /** bytes the gateway may hold for one side before it stops reading the other (upstream) or disconnects (client) */
  maxBackpressure: size.pipe(z.number().int().min(1024)).default(1024 * 1024),
});

const routeSchema = z.strictObject({
  name: z.string().min(1).optional(),
  match: z
    .strictObject({
      host: z.union([hostPattern, z.array(hostPattern).min(1)]).optional(),
      path: z.string().startsWith('/', 'expected a path starting with "/"').default('/'),
      pathType: z.enum(['prefix', 'exact']).default('prefix'),
      methods: z.array(z.enum(METHODS)).min(1).optional(),
      flag: routeFlagMatch,
    })
    .prefault({}),
  /** absent when the route has a `split` (src/config/schema-split.ts) */
  upstream: z.string().min(1).optional(),
  ...splitRouteFields,
  policies: z.array(policyEntrySchema()).default([]),
  /** which requests are shed first at an upstream's concurrency limit or under gateway load */
  priority: z.enum(priorityNames).default('normal'),
  /** set the upstream request's Host to the endpoint's host:port instead of passing the client's */
  rewriteHost: z.boolean().default(false),
  /** accept `Upgrade: websocket` on this route and relay frames to the upstream */
  // `true` is the block with every default; a union would report a typo inside the
  // block as "invalid input" instead of the key and its path.
  websocket: z.preprocess((v) => (v === true ? {} : v === false ? undefined : v), websocketSchema.optional()),
  maintenance: maintenanceSchema,
  /** store and serve this route's responses from the shared cache (README "Caching") */
  cache: routeCacheSchema.optional(),
  ...luaRouteFields,
})
  // A split route's `upstream` is its first side, so code that names one upstream per
  // route (priorities, adaptive limits, status) keeps a value; splitIssues rejects a
  // route with neither.
  .transform((r) => ({ ...r, upstream: r.upstream ?? r.split?.[0]?.upstream ?? '' }));

export const configSchema = z
  .strictObject({
    listen: listenSchema.prefault({}),
    workers: workersSchema.default('auto'),
    admin: adminSchema.prefault({}),
    limits: limitsSchema.prefault({}),
    shutdown: shutdownSchema.prefault({}),
    proxy: proxySchema.prefault({}),
    capacity: capacitySchema.prefault({}),
    observability: observabilitySchema.prefault({}),
    /** shed low priorities when the workers' event loops are busy (src/controllers/shed-level.ts); off when absent */
    shedding: sheddingSchema.optional(),
    /** where `scope: cluster` rate limits keep their buckets (src/fleet/); needed only by those */
    redis: redisSchema.optional(),
    /** tenants and their tiers (src/config/schema-tenants.ts); off when absent */
    tenants: tenantsSchema.optional(),
    /** the shared response cache's store; used only when some route has `cache` */
    cache: cacheStoreSchema.prefault({}),
    shared: sharedDictsSchema,
    plugins: pluginPathsSchema,
    upstreams: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/, 'expected an upstream name of letters, digits, "_" and "-"'), upstreamSchema),
    routes: z.array(routeSchema).min(1, 'at least one route is required'),
    /** canary rollouts over split routes (src/config/schema-rollout.ts) */
    rollouts: rolloutsSchema.default({}),
    ...controlSections,
  });

/**
 * Checks that span sections. They run on the raw (env-substituted) input, not inside
 * zod: a zod refinement is skipped whenever any field error exists, and a config must
 * be rejected with *every* error at once.
 */
export function crossSectionIssues(raw: unknown): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  if (typeof raw !== 'object' || raw === null) return out;
  const cfg = raw as { upstreams?: unknown; routes?: unknown; admin?: { host?: unknown; port?: unknown; token?: unknown }; listen?: { port?: unknown } };
  const upstreams = typeof cfg.upstreams === 'object' && cfg.upstreams !== null ? Object.keys(cfg.upstreams) : [];
  if (Array.isArray(cfg.routes)) {
    cfg.routes.forEach((r: unknown, i) => {
      const name = (r as { upstream?: unknown } | null)?.upstream;
      if (typeof name === 'string' && !upstreams.includes(name)) {
        out.push({ path: ['routes', i, 'upstream'], message: `unknown upstream "${name}" (known: ${upstreams.join(', ') || 'none'})` });
      }
    });
  }
  out.push(...routeNameIssues(cfg.routes), ...slowStartIssues(cfg.upstreams), ...fallbackIssues(cfg.upstreams), ...redisIssues(raw), ...splitIssues(raw), ...rolloutIssues(raw), ...cacheIssues(raw), ...luaIssues(raw));
  out.push(...flagIssues(raw as { flags?: unknown; routes?: unknown }));
  const scaling = (raw as { observability?: { scaling?: { upstreams?: unknown } } }).observability?.scaling?.upstreams;
  if (typeof scaling === 'object' && scaling !== null) {
    for (const name of Object.keys(scaling)) {
      if (!upstreams.includes(name)) out.push({ path: ['observability', 'scaling', 'upstreams', name], message: `unknown upstream "${name}" (known: ${upstreams.join(', ') || 'none'})` });
    }
  }
  // The route limit is checked against the worker-wide one after both parsed: uWS
  // refuses a larger message before tidegate sees it, so a route cannot promise more.
  const limitRaw = (raw as { limits?: { maxWebSocketMessageBytes?: unknown } }).limits?.maxWebSocketMessageBytes;
  const limit = limitRaw === undefined ? 1024 * 1024 : parseSize(limitRaw);
  if (Array.isArray(cfg.routes) && (typeof limit === 'number' || limit.ok)) {
    const max = typeof limit === 'number' ? limit : limit.value;
    cfg.routes.forEach((r: unknown, i) => {
      const ws = (r as { websocket?: { maxMessageSize?: unknown } } | null)?.websocket;
      if (typeof ws !== 'object' || ws === null || ws.maxMessageSize === undefined) return;
      const v = parseSize(ws.maxMessageSize);
      if (v.ok && v.value > max) out.push({ path: ['routes', i, 'websocket', 'maxMessageSize'], message: `must not exceed limits.maxWebSocketMessageBytes (${max} bytes)` });
    });
  }
  const host = typeof cfg.admin?.host === 'string' ? cfg.admin.host : '127.0.0.1';
  const loopback = host === '127.0.0.1' || host === '::1' || host === 'localhost';
  if (!loopback && !cfg.admin?.token && !(cfg.admin as { tokens?: unknown } | undefined)?.tokens) {
    out.push({ path: ['admin', 'token'], message: `a token is required when the admin API binds to ${host} (not loopback)` });
  }
  const adminPort = typeof cfg.admin?.port === 'number' ? cfg.admin.port : 9901;
  const listenPort = typeof cfg.listen?.port === 'number' ? cfg.listen.port : 8080;
  if (adminPort !== 0 && adminPort === listenPort) out.push({ path: ['admin', 'port'], message: 'the admin port must differ from listen.port' });
  return out;
}

/**
 * Route names label metrics, histograms and the access log: two routes with one name
 * would merge their telemetry. Every later use of a name is reported, pointing at the
 * first; a route without a name is called `route-<index>`, so an explicit name may
 * collide with that too.
 */
function routeNameIssues(routes: unknown): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  if (!Array.isArray(routes)) return out;
  const first = new Map<string, number>();
  const explicit: (string | null)[] = routes.map((r: unknown) => {
    const n = (r as { name?: unknown } | null)?.name;
    return typeof n === 'string' && n.length > 0 ? n : null;
  });
  explicit.forEach((n, i) => {
    const name = n ?? `route-${i}`;
    const j = first.get(name);
    if (j === undefined) {
      first.set(name, i);
      return;
    }
    // Point at whichever of the two carries the name explicitly (an implicit one has no path to fix).
    const at = n !== null ? i : j;
    const other = at === i ? j : i;
    const how = explicit[other] === null ? `the default name of routes[${other}], which has no name` : `also the name of routes[${other}]`;
    out.push({ path: ['routes', at, 'name'], message: `duplicate route name "${name}": ${how}` });
  });
  return out;
}

/**
 * Slow start ramps an endpoint's effective weight; plain round-robin ignores weights,
 * so the combination would silently do nothing. Rejected rather than quietly turned
 * into weighted round robin: the operator chose an unweighted picker.
 */
function slowStartIssues(upstreams: unknown): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  if (typeof upstreams !== 'object' || upstreams === null) return out;
  for (const [name, u] of Object.entries(upstreams as Record<string, unknown>)) {
    const cfg = u as { balancer?: unknown; slowStart?: unknown } | null;
    if (cfg === null || typeof cfg !== 'object' || cfg.slowStart === undefined) continue;
    const ms = parseDuration(cfg.slowStart);
    if (!ms.ok || ms.value === 0) continue; // a bad value is the schema's error
    const balancer = cfg.balancer ?? 'round-robin';
    if (balancer === 'round-robin') {
      out.push({ path: ['upstreams', name, 'slowStart'], message: 'balancer round-robin ignores weights, so slow start cannot ramp an endpoint; use weighted-round-robin, least-request or peak-ewma, or remove slowStart' });
    }
  }
  return out;
}

export type TlsConfig = NonNullable<z.output<typeof listenSchema>['tls']>;
export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type UpstreamConfig = Config['upstreams'][string];
export type RouteConfig = Config['routes'][number];
export type WebSocketConfig = z.output<typeof websocketSchema>;
