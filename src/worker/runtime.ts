// A worker's per-generation state: what a request needs to be routed and proxied.
// Swapped whole when the primary sends a new config generation; requests in flight
// keep the generation they started with.
import type { WorkerConfig } from '../messages.js';
import type { PolicyInstance } from '../policies/policy.js';
import { policyDefinition } from '../policies/registry.js';
import type { SharedState } from '../shm/shared-state.js';
import { EndpointTable } from '../shm/endpoint-table.js';
import { SplitTable } from '../shm/split-table.js';
import { IpAllowList } from '../policies/ip-allow-list.js';
import { Router } from './router.js';
import { UpstreamSet } from './upstream-set.js';
import type { PathOptions } from './path-normalize.js';
import { workerSlot } from './worker-state.js';
import { TenantDirectory } from '../policies/tenant-directory.js';
import { FlagTable } from '../shm/flag-table.js';
import { FlagGate } from './flag-gate.js';
import { clientIp } from './forwarding.js';
import { RouteCache } from './cache/route-cache.js';
import { cacheStore } from './cache/worker-cache.js';
import { SharedDicts } from '../shm/shared-dicts.js';
import type { PluginDefinition } from '../plugins/plugin-api.js';
import { LuaHost } from '../lua/lua-host.js';
import { LuaContent } from '../lua/lua-policy.js';
import type { LuaVm } from '../lua/lua-vm.js';

export class Runtime {
  readonly generation: number;
  readonly config: WorkerConfig;
  readonly router: Router;
  readonly upstreams: readonly UpstreamSet[];
  readonly trusted: IpAllowList;
  /** "1.1 tidegate", or null when Via is switched off */
  readonly viaToken: string | null;
  readonly requestIdHeader: string;
  readonly pathOptions: PathOptions;
  /** X-Forwarded-Proto for a client that is not a trusted proxy: how it reached us */
  readonly scheme: 'http' | 'https';
  /** tenant tiers, null without a tenants section */
  readonly tenants: TenantDirectory | null;
  /** feature flags for routes that name one (match.flag, maintenance) */
  readonly flags: FlagGate;
  /** per route, its access policies in configured order */
  readonly policies: readonly (readonly PolicyInstance[])[];
  /** the split routes' weights (shared; the primary changes them at run time) */
  readonly splits: SplitTable;
  /** per route, its cache (null: the route does not cache) */
  readonly caches: readonly (RouteCache | null)[];
  /** per route, the policies with a response phase (plugins); empty for most routes, which then pay one length check */
  readonly responsePhase: readonly (readonly PolicyInstance[])[];
  /** per route, the policies with a log phase */
  readonly logPhase: readonly (readonly PolicyInstance[])[];
  readonly dicts: SharedDicts;
  /** this generation's Lua state, null when no route uses Lua */
  readonly lua: LuaHost | null;
  /** per route, its `lua.content` script (null: the route proxies) */
  readonly contents: readonly (LuaContent | null)[];

  /**
   * `plugins`: this generation's plugin modules by name, imported before (src/plugins/plugin-module.ts);
   * `lua`: the thread's Lua module when the config has Lua (loaded before, src/lua/lua-vm.ts).
   */
  constructor(config: WorkerConfig, shm: SharedState, plugins: ReadonlyMap<string, PluginDefinition> = new Map(), lua: LuaVm | null = null) {
    this.generation = config.generation;
    this.config = config;
    this.trusted = new IpAllowList(config.proxy.trustedProxies);
    this.flags = new FlagGate(new FlagTable(shm), (peer, forwardedFor) => clientIp(peer, forwardedFor, this));
    this.router = new Router(config.routes, this.flags);
    const endpoints = new EndpointTable(shm, workerSlot());
    this.upstreams = config.upstreams.map((u) => new UpstreamSet(u, endpoints, this.trusted));
    this.viaToken = config.proxy.via === false ? null : `1.1 ${config.proxy.via}`;
    this.requestIdHeader = config.proxy.requestIdHeader;
    this.pathOptions = { mergeSlashes: config.proxy.mergeSlashes, escapedSlashes: config.proxy.escapedSlashes };
    this.scheme = config.listen.tls === undefined ? 'http' : 'https';
    this.splits = new SplitTable(shm);
    this.tenants = config.tenants === null ? null : new TenantDirectory(config.tenants);
    const store = cacheStore();
    const cc = config.cache;
    this.caches = config.routes.map((r, i) => (r.cache == null || store === null || cc == null ? null : new RouteCache(r.cache, store, i, cc.lockTimeout, cc.admission)));
    this.dicts = SharedDicts.attach(shm, config.shared);
    this.lua = lua === null || !workerConfigHasLua(config) ? null : new LuaHost(lua, { dicts: this.dicts, scheme: this.scheme, workerId: workerSlot() });
    try {
      const kinds = new Map<string, number>();
      this.policies = config.routes.map((route, routeIndex) =>
        route.policies.map((p, policyIndex) => {
          const def = policyDefinition(p.name);
          if (!def) throw new Error(`unknown policy ${p.name}`);
          const kindIndex = kinds.get(p.name) ?? 0;
          kinds.set(p.name, kindIndex + 1);
          return def.create(p.config, { shm: shm.buffer, maxWorkers: shm.layout.limits.maxWorkers, routeIndex, routeName: route.name, policyIndex, kindIndex, tenants: this.tenants, plugins, dicts: this.dicts, lua: this.lua });
        }),
      );
      this.responsePhase = this.policies.map((list) => list.filter((p) => p.response !== undefined));
      this.logPhase = this.policies.map((list) => list.filter((p) => p.log !== undefined));
      this.contents = config.routes.map((r) => (r.lua == null ? null : new LuaContent(this.lua!, r.lua, r.name)));
    } catch (err) {
      // A script that does not compile here: this generation is refused, its Lua state goes with it.
      this.lua?.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    // Closes once the requests between their Lua phases on this generation are done.
    this.lua?.retire();
    await Promise.allSettled(this.upstreams.map((u) => u.close()));
  }

  destroy(): void {
    for (const u of this.upstreams) u.destroy();
  }

  /** The crash test hook: requests dropped with no accounting, as if the thread died. */
  abandon(): void {
    for (const u of this.upstreams) u.abandon();
  }
}

/** Whether a route of this generation runs Lua (then the worker loads the Lua module first). */
export function workerConfigHasLua(config: WorkerConfig): boolean {
  return config.routes.some((r) => r.lua != null || r.policies.some((p) => p.name === 'lua'));
}
