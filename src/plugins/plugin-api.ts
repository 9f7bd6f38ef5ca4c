// The plugin API, published as `tidegate/plugin` (package.json "exports"). A plugin
// is an ES module whose default export (or export named `plugin`) is a
// PluginDefinition: a name, a config schema, and `create`, which returns the phase
// functions for one route's use of the plugin.
//
// The contract is the built-in policies' own: phase functions are synchronous and do
// no I/O (they run on the request path of a worker thread); `create` runs once per
// config generation in each worker (and once on the primary at config check); the
// schema runs only on the primary, where zod lives — workers never load it.
//
//   export default definePlugin({
//     name: 'tenant-header',
//     schema: (z) => z.strictObject({ header: z.string().default('x-tenant') }),
//     create(config, env) {
//       return {
//         access(ctx) {
//           const t = ctx.header(config.header);
//           if (t === undefined) return ctx.respond(400, 'tenant required\n');
//           ctx.upstreamHeaders.set('x-tenant-id', t);
//         },
//       };
//     },
//   });
//
// Anything a phase throws answers the request 500 TG_ERR_PLUGIN (in the log phase it is
// only counted); it is counted and logged with the plugin's name, rate-limited, and
// never takes the worker down.
import type { z as ZodNamespace } from 'zod';

/** zod as the config layer hands it to `schema` (a plugin need not depend on zod itself). */
export type Zod = typeof ZodNamespace;

export interface PluginDefinition<C = unknown> {
  /** what routes call it (`- plugin: { name, config }`): letters, digits, `.`, `_`, `-` */
  readonly name: string;
  /** the config schema, built from the zod it is given; without one the plugin takes no config */
  readonly schema?: (z: Zod) => ZodNamespace.ZodType<C>;
  /** once per route that uses the plugin, per config generation, per worker */
  create(config: C, env: PluginEnv): PluginPhases;
}

export interface PluginPhases {
  /** before the upstream is chosen: read the request, edit the headers it is forwarded with, or answer it */
  access?(ctx: PluginAccessContext): void;
  /** the upstream's status and headers, before they are sent: edit the response headers */
  response?(ctx: PluginResponseContext): void;
  /** after the response (or the client leaving, status 0): count and log */
  log?(ctx: PluginLogContext): void;
}

export interface PluginEnv {
  /** the route this instance serves */
  readonly route: string;
  /** a shared dictionary (config `shared`); throws for a name the config does not define */
  shared(name: string): SharedDictionary;
  /** the gateway's log, as `plugin-log` events with the plugin's name */
  log(level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>): void;
}

/** Read-only view of the request, the same in every phase. */
export interface PluginRequest {
  readonly method: string;
  /** the normalised path, without the query */
  readonly path: string;
  /** the query string without "?", "" when none */
  readonly query: string;
  /** the Host header as received */
  readonly host: string;
  /** the client address (after proxy.trustedProxies) */
  readonly clientIp: string;
  /** the TCP peer */
  readonly peer: string;
  readonly route: string;
  /** a request header (name in any case) as it will be forwarded; several values joined with ", " */
  header(name: string): string | undefined;
}

export interface HeaderEditor {
  get(name: string): string | undefined;
  /** replaces every field of that name */
  set(name: string, value: string): void;
  /** adds one more field */
  add(name: string, value: string): void;
  remove(name: string): void;
}

export interface PluginAccessContext extends PluginRequest {
  /** the request headers sent to the upstream (Host and hop-by-hop fields cannot be edited) */
  readonly upstreamHeaders: HeaderEditor;
  /** fields added to whatever response the client gets */
  readonly responseHeaders: HeaderEditor;
  /** answers the request here (no upstream); `headers` as name → value */
  respond(status: number, body?: string, headers?: Readonly<Record<string, string>>): void;
}

export interface PluginResponseContext extends PluginRequest {
  /** the upstream's status */
  readonly status: number;
  /** the response headers as they will be sent to the client */
  readonly responseHeaders: HeaderEditor;
}

export interface PluginLogContext extends PluginRequest {
  /** the status sent, 0 when the client left first */
  readonly status: number;
  readonly durationMs: number;
}

/** ngx.shared.DICT, as src/shm/shared-dict.ts implements it; `err`/`forcible`/`flags` describe the last call. */
export interface SharedDictionary {
  get(key: string): string | number | boolean | undefined;
  getStale(key: string): string | number | boolean | undefined;
  set(key: string, value: string | number | boolean | null | undefined, exptimeSeconds?: number, flags?: number): boolean;
  safeSet(key: string, value: string | number | boolean | null | undefined, exptimeSeconds?: number, flags?: number): boolean;
  add(key: string, value: string | number | boolean, exptimeSeconds?: number, flags?: number): boolean;
  safeAdd(key: string, value: string | number | boolean, exptimeSeconds?: number, flags?: number): boolean;
  replace(key: string, value: string | number | boolean, exptimeSeconds?: number, flags?: number): boolean;
  delete(key: string): boolean;
  incr(key: string, by: number, init?: number, initTtlSeconds?: number): number | undefined;
  ttl(key: string): number | undefined;
  expire(key: string, exptimeSeconds: number): boolean;
  getKeys(max?: number): string[];
  flushExpired(max?: number): number;
  flushAll(): void;
  capacity(): number;
  freeSpace(): number;
  readonly err: string | null;
  readonly forcible: boolean;
  readonly flags: number;
  readonly stale: boolean;
}

/** Identity, for the types: `export default definePlugin({ ... })`. */
export function definePlugin<C>(def: PluginDefinition<C>): PluginDefinition<C> {
  return def;
}
