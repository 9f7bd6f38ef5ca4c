// The second half of config validation for Lua: read every script a config names
// (`lua` policies, `lua.content` routes) and compile it with the Lua that workers
// run, so `tidegate --check`, start and every reload report an unreadable file or a
// syntax error with its path and line, and the running config stays. The text read
// here is what workers get: a file edited after the check changes nothing until the
// next reload. The Lua module is loaded only for a config that has scripts.
import { readFileSync } from 'node:fs';
import type { Config } from './schema.js';
import { formatPath } from './load.js';
import type { LuaEntryConfig, LuaScriptRef } from '../lua/lua-policy.js';

/** Whether any route of `cfg` runs Lua. */
export function configHasLua(cfg: Config): boolean {
  return cfg.routes.some((r) => r.lua !== undefined || r.policies.some((p) => p.name === 'lua'));
}

/** `cfg` with every script's text filled in; problems are added to `issues` with their paths. */
export async function checkLuaScripts(cfg: Config, issues: string[]): Promise<Config> {
  if (!configHasLua(cfg)) return cfg;
  const { compileChecker } = await import('../lua/lua-compile.js');
  const checker = await compileChecker();
  try {
    const read = (ref: LuaScriptRef, at: (string | number)[]): LuaScriptRef => {
      let source: string;
      try {
        source = readFileSync(ref.file, 'utf8');
      } catch (err) {
        issues.push(`${formatPath(at)}: cannot read Lua script ${ref.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        return ref;
      }
      const problem = checker.check(ref.file, source);
      if (problem !== null) issues.push(`${formatPath(at)}: ${problem}`);
      return { file: ref.file, source };
    };
    const routes = cfg.routes.map((route, r) => ({
      ...route,
      ...(route.lua === undefined ? {} : { lua: { ...route.lua, content: read(route.lua.content, ['routes', r, 'lua', 'content']) } }),
      policies: route.policies.map((p, j) => {
        if (p.name !== 'lua') return p;
        const c = p.config as LuaEntryConfig;
        const at = ['routes', r, 'policies', j, 'lua'];
        const out: Record<string, unknown> = { ...c };
        for (const phase of ['access', 'header_filter', 'log'] as const) {
          const ref = c[phase];
          if (ref !== undefined) out[phase] = read(ref, [...at, phase]);
        }
        return { name: 'lua', config: out };
      }),
    }));
    return { ...cfg, routes };
  } finally {
    checker.close();
  }
}
