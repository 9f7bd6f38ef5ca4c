// What a policy file provides (APISIX style: name, schema, phase functions).
// Phase functions run on worker threads, so a definition must not import the
// control plane; its validated config travels to workers by structured clone and is
// compiled into an instance once per config generation (Envoy style: config apart
// from per-request state).
import type { z as ZodNamespace } from 'zod';
import type { ErrorSpec } from '../errors.js';
import type { TenantDirectory } from './tenant-directory.js';
import type { SharedDicts } from '../shm/shared-dicts.js';
import type { PluginDefinition } from '../plugins/plugin-api.js';
import type { LuaHost } from '../lua/lua-host.js';

/** What the access phase sees of a request. Valid for the request's lifetime (later phases read it). */
export interface AccessContext {
  readonly method: string;
  readonly path: string;
  /** the query string without "?", "" when none */
  readonly query: string;
  /** Host header as received */
  readonly host: string;
  /** end-to-end request fields as they will be forwarded: lower-case name, value, … (the Host pair first; plugins edit the rest) */
  readonly headers: string[];
  /** the TCP peer */
  readonly peer: string;
  /** the client: the peer, or the nearest X-Forwarded-For hop not in proxy.trustedProxies */
  readonly clientIp: string;
  readonly routeIndex: number;
  readonly routeName: string;
  /** name, value pairs a policy adds to the response (the error it returns, or the proxied one) */
  readonly responseHeaders: string[];
  /** who the caller is, once an auth policy (api-key, jwt) identified it; later policies key on these */
  consumer: string | null;
  /** the tenant: from an auth policy, or the `tenants.header` field when none named one */
  tenant: string | null;
  /** StatusWatcher, key pairs told the response status when the request ends (null until one is added) */
  watched: unknown[] | null;
}

/** A policy that learns how each request it saw ended (ban counts refusals). */
export interface StatusWatcher {
  onStatus(key: string, status: number): void;
}

/** Asks for `w.onStatus(key, status)` when the request ends, whatever answers it. */
export function watchStatus(ctx: AccessContext, w: StatusWatcher, key: string): void {
  (ctx.watched ??= []).push(w, key);
}

/** An answer a policy gives itself instead of proxying (a plugin's `respond()`). */
export class LocalResponse {
  constructor(
    readonly status: number,
    readonly body: string,
    /** name, value pairs */
    readonly headers: readonly string[],
  ) {}
}

/** What the response phase sees: the upstream's status and headers, before they are sent. */
export interface ResponsePhaseContext {
  readonly access: AccessContext;
  readonly status: number;
  /** the upstream's response fields as they will be written (name, value Buffers); a policy may remove pairs */
  readonly upstreamHeaders: Buffer[];
}

/** What the log phase sees, after the response went out (or the client left: status 0). */
export interface LogPhaseContext {
  readonly access: AccessContext;
  readonly status: number;
  /** from the request head to the end of the response */
  readonly durationMs: number;
}

export interface PolicyEnv {
  /** the gateway's one SharedArrayBuffer (limiter buckets, policy tables) */
  readonly shm: SharedArrayBuffer;
  readonly maxWorkers: number;
  readonly routeIndex: number;
  /** the route's name (routes[].name, or route-<index>) */
  readonly routeName: string;
  readonly policyIndex: number;
  /** this policy's position among all policies of its kind in the config (stable per generation) */
  readonly kindIndex: number;
  /** the tenants section's tiers, null without one */
  readonly tenants: TenantDirectory | null;
  /** the loaded plugin modules of this generation, by plugin name (the `plugin` policy) */
  readonly plugins: ReadonlyMap<string, PluginDefinition>;
  /** the shared dictionaries (config `shared`) */
  readonly dicts: SharedDicts;
  /** this generation's Lua state (the `lua` policy); absent or null when no route uses Lua */
  readonly lua?: LuaHost | null;
}

export interface PolicyInstance {
  readonly name: string;
  /** null lets the request continue; an error spec or a local response answers it. Must not block or await. */
  access(ctx: AccessContext): ErrorSpec | LocalResponse | null;
  /** the upstream's response head, before it is sent: null lets it through, an error spec replaces it */
  response?(ctx: ResponsePhaseContext): ErrorSpec | null;
  /** after the response: for counting and logging, cannot change anything */
  log?(ctx: LogPhaseContext): void;
}

/** zod, handed to a definition's schema factory by the config layer (see `schema`). */
export type Zod = typeof ZodNamespace;

export interface PolicyDefinition {
  readonly name: string;
  /**
   * Builds the config schema from the zod it is given. A factory, not a schema, so a
   * policy file keeps its schema beside its phase functions and still never loads zod
   * itself: workers import the definition and run no schema library.
   */
  readonly schema: (z: Zod) => ZodNamespace.ZodType;
  /** runs on a worker, once per config generation */
  create(config: unknown, env: PolicyEnv): PolicyInstance;
}
