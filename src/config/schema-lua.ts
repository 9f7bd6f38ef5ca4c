// `routes[].lua: { content: FILE, maxInstructions? }`: a route answered by a Lua script
// instead of an upstream (OpenResty's content_by_lua_file). The `lua` policy's own
// schema is in src/lua/lua-policy.ts; both kinds of script are read and compiled on
// the primary by src/config/lua-check.ts.
import { z } from 'zod';
import { luaFileSchema, luaMaxInstructionsSchema } from '../lua/lua-policy.js';

export const luaRouteFields = {
  lua: z
    .strictObject({
      content: luaFileSchema(z),
      /** VM instructions one call may run before it is stopped (500 TG_ERR_PLUGIN) */
      maxInstructions: luaMaxInstructionsSchema(z),
    })
    .optional(),
};

type Issue = { path: (string | number)[]; message: string };

/** Cross-field checks on the raw routes (see crossSectionIssues: every error at once). */
export function luaIssues(raw: unknown): Issue[] {
  const out: Issue[] = [];
  const routes = (raw as { routes?: unknown } | null)?.routes;
  if (!Array.isArray(routes)) return out;
  routes.forEach((r: unknown, i) => {
    if (typeof r !== 'object' || r === null) return;
    const route = r as Record<string, unknown>;
    if (route.lua !== undefined) {
      for (const other of ['upstream', 'split', 'cache', 'websocket'] as const) {
        if (route[other] !== undefined && route[other] !== false) out.push({ path: ['routes', i, other], message: `a route with \`lua.content\` is answered by its script: it takes no \`${other}\`` });
      }
    }
    // A WebSocket upgrade has no response phase and no log phase to run them in.
    if (route.websocket !== undefined && route.websocket !== false && Array.isArray(route.policies)) {
      route.policies.forEach((p: unknown, j) => {
        const lua = (p as { lua?: { header_filter?: unknown; log?: unknown } } | null)?.lua;
        if (typeof lua !== 'object' || lua === null) return;
        for (const phase of ['header_filter', 'log'] as const) {
          if (lua[phase] !== undefined) out.push({ path: ['routes', i, 'policies', j, 'lua', phase], message: `not run on a WebSocket route (an upgrade has no ${phase === 'log' ? 'log' : 'response'} phase); use access only` });
        }
      });
    }
  });
  return out;
}
