// What the config runs of its own code, for operators and the console (scope `read`):
//   GET /v1/plugins   the plugin modules loaded, each plugin in use with its routes, and
//                     every shared dictionary with its figures
//   GET /v1/shared    the shared dictionaries alone (one of them: GET /v1/shared/:name)
// Dictionary figures are read under each dictionary's lock, like a worker's access.
import type { Config } from '../config/schema.js';
import type { PluginEntryConfig } from '../plugins/plugin-policy.js';
import type { SharedDicts } from '../shm/shared-dicts.js';
import type { ApiRoute } from './admin/api-router.js';

export interface SharedDictView {
  readonly name: string;
  readonly capacityBytes: number;
  readonly usedBytes: number;
  readonly freeBytes: number;
  readonly items: number;
  readonly evictions: number;
  readonly expiredRemoved: number;
}

export interface PluginsView {
  /** module paths, as `plugins` lists them (resolved) */
  readonly modules: readonly string[];
  /** each plugin named by some route's `plugin` policy, with those routes */
  readonly plugins: readonly { readonly name: string; readonly routes: readonly string[] }[];
  readonly shared: readonly SharedDictView[];
}

export function sharedDictViews(dicts: SharedDicts): SharedDictView[] {
  return dicts.names().map((name) => {
    const s = dicts.get(name)!.stats();
    return { name, capacityBytes: s.capacityBytes, usedBytes: s.capacityBytes - s.freeBytes, freeBytes: s.freeBytes, items: s.items, evictions: s.evictions, expiredRemoved: s.expiredRemoved };
  });
}

export function pluginsView(cfg: Config, dicts: SharedDicts): PluginsView {
  const routes = new Map<string, string[]>();
  cfg.routes.forEach((r, i) => {
    for (const p of r.policies) {
      if (p.name !== 'plugin') continue;
      const name = (p.config as PluginEntryConfig).name;
      const list = routes.get(name) ?? [];
      list.push(r.name ?? `route-${i}`);
      routes.set(name, list);
    }
  });
  return { modules: cfg.plugins, plugins: [...routes].map(([name, r]) => ({ name, routes: r })), shared: sharedDictViews(dicts) };
}

export function pluginRoutes(dicts: SharedDicts, config: () => Config): ApiRoute[] {
  return [
    { method: 'GET', path: '/v1/plugins', scope: 'read', handle: () => ({ body: pluginsView(config(), dicts) }) },
    { method: 'GET', path: '/v1/shared', scope: 'read', handle: () => ({ body: { shared: sharedDictViews(dicts) } }) },
  ];
}
