// The second half of config validation, for `plugins`: import every module, check its
// definition, validate each route's `plugin` entry with that plugin's schema, and run
// its `create` once, the way each worker will. Asynchronous (ES modules load so), so it
// runs after the schema on the primary: at `tidegate --check`, at start and on every
// reload. Every problem is reported with its path, like the schema's own.
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import type { Config } from './schema.js';
import { formatPath } from './load.js';
import { importPlugin } from '../plugins/plugin-module.js';
import { pluginEnv, type PluginEntryConfig } from '../plugins/plugin-policy.js';
import type { PluginDefinition } from '../plugins/plugin-api.js';
import { checkLuaScripts } from './lua-check.js';

/** The config with each plugin entry's `config` replaced by what the plugin's schema parsed; throws ConfigError. */
export async function checkPlugins(cfg: Config): Promise<Config> {
  const issues: string[] = [];
  const byName = new Map<string, { def: PluginDefinition; schema: z.ZodType | null; index: number }>();
  for (let i = 0; i < cfg.plugins.length; i++) {
    const path = cfg.plugins[i]!;
    let def: PluginDefinition;
    try {
      def = await importPlugin(path);
    } catch (err) {
      issues.push(`${formatPath(['plugins', i])}: cannot load plugin ${path}: ${(err as Error).message}`);
      continue;
    }
    const first = byName.get(def.name);
    if (first !== undefined) {
      issues.push(`${formatPath(['plugins', i])}: plugin name "${def.name}" is also the name of plugins[${first.index}]`);
      continue;
    }
    let schema: z.ZodType | null = null;
    try {
      schema = def.schema === undefined ? null : (def.schema(z) as z.ZodType);
    } catch (err) {
      issues.push(`${formatPath(['plugins', i])}: plugin ${def.name}: its schema function threw: ${(err as Error).message}`);
      continue;
    }
    byName.set(def.name, { def, schema, index: i });
  }
  const dictNames = Object.keys(cfg.shared);
  const routes = cfg.routes.map((route, r) => ({
    ...route,
    policies: route.policies.map((p, j) => {
      if (p.name !== 'plugin') return p;
      const entry = p.config as PluginEntryConfig;
      const at = ['routes', r, 'policies', j, 'plugin'];
      const known = byName.get(entry.name);
      if (known === undefined) {
        issues.push(`${formatPath([...at, 'name'])}: unknown plugin "${entry.name}" (loaded from \`plugins\`: ${[...byName.keys()].join(', ') || 'none'})`);
        return p;
      }
      let parsed: unknown = entry.config;
      if (known.schema === null) {
        if (entry.config !== undefined && !(typeof entry.config === 'object' && entry.config !== null && Object.keys(entry.config).length === 0)) {
          issues.push(`${formatPath([...at, 'config'])}: plugin ${entry.name} takes no config (it has no schema)`);
          return p;
        }
      } else {
        const res = known.schema.safeParse(entry.config ?? {});
        if (!res.success) {
          for (const issue of res.error.issues) {
            if (issue.code === 'unrecognized_keys') for (const key of issue.keys) issues.push(`${formatPath([...at, 'config', ...issue.path, key])}: unknown key`);
            else issues.push(`${formatPath([...at, 'config', ...issue.path])}: ${issue.message}`);
          }
          return p;
        }
        parsed = res.data;
      }
      try {
        // What each worker will do with it (structured clone, then create): fail here, not there.
        const cloned = structuredClone(parsed);
        known.def.create(cloned, pluginEnv(entry.name, route.name ?? `route-${r}`, null, dictNames));
      } catch (err) {
        issues.push(`${formatPath(at)}: plugin ${entry.name}: create failed: ${(err as Error).message}`);
        return p;
      }
      return { name: 'plugin', config: { name: entry.name, config: parsed } satisfies PluginEntryConfig };
    }),
  }));
  // Lua scripts are read and compiled here too, so their problems are listed with the plugins'.
  const checked = await checkLuaScripts({ ...cfg, routes }, issues);
  if (issues.length > 0) throw new ConfigError(issues);
  return checked;
}
