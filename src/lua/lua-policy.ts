// The `lua` policy and `lua.content` routes: OpenResty's access_by_lua_file,
// header_filter_by_lua_file, log_by_lua_file and content_by_lua_file.
//
//   shared: { limits: { size: 1mb } }
//   routes:
//     - upstream: app
//       policies:
//         - lua: { access: examples/lua/global-limit.lua, log: counters.lua }
//     - match: { path: /hello }
//       lua: { content: hello.lua }
//
// The file paths are read and compiled on the primary at config check (a syntax error
// is reported with its path and line); workers get the source text with the config and
// compile it once per generation into that generation's Lua state (lua-host.ts).
// Whatever a script does wrong answers 500 TG_ERR_PLUGIN (in the log phase it is only
// counted) and is logged, rate-limited; the worker carries on.
import { resolve } from 'node:path';
import { Errors, type ErrorSpec } from '../errors.js';
import { LocalResponse, type AccessContext, type LogPhaseContext, type PolicyDefinition, type PolicyEnv, type PolicyInstance, type ResponsePhaseContext, type Zod } from '../policies/policy.js';
import { DEFAULT_MAX_INSTRUCTIONS, LuaHost, LuaOutcome } from './lua-host.js';
import { LuaPhase, type LuaScript } from './lua-call.js';
import { luaFailed } from './lua-report.js';

/** A script as the config carries it to workers: its absolute path and (after the check on the primary) its text. */
export interface LuaScriptRef {
  readonly file: string;
  readonly source: string | null;
}

export interface LuaEntryConfig {
  readonly access?: LuaScriptRef;
  readonly header_filter?: LuaScriptRef;
  readonly log?: LuaScriptRef;
  readonly maxInstructions: number;
}

export interface LuaContentConfig {
  readonly content: LuaScriptRef;
  readonly maxInstructions: number;
}

/** a relative path is taken from the working directory, like plugin modules; the text is filled in by the config check */
export function luaFileSchema(z: Zod) {
  return z
    .string()
    .min(1)
    .transform((p): LuaScriptRef => ({ file: resolve(p), source: null }));
}

export function luaMaxInstructionsSchema(z: Zod) {
  return z.number().int().min(1000).max(1_000_000_000).default(DEFAULT_MAX_INSTRUCTIONS);
}

export function luaEntrySchema(z: Zod) {
  return z
    .strictObject({
      access: luaFileSchema(z).optional(),
      header_filter: luaFileSchema(z).optional(),
      log: luaFileSchema(z).optional(),
      /** VM instructions one phase call may run before it is stopped (500 TG_ERR_PLUGIN) */
      maxInstructions: luaMaxInstructionsSchema(z),
    })
    .refine((c) => c.access !== undefined || c.header_filter !== undefined || c.log !== undefined, { message: 'give at least one of access, header_filter, log' });
}

function compiled(host: LuaHost, ref: LuaScriptRef | undefined, phase: LuaPhase, route: string, maxInstructions: number): LuaScript | null {
  if (ref === undefined) return null;
  if (ref.source === null) throw new Error(`lua script ${ref.file} was not read at config check`);
  return host.compile(ref.file, ref.source, phase, route, maxInstructions);
}

/**
 * What an access or content call answers: null (go on), a local response (ngx.exit
 * with a status, or output), or 500. `content` answers in every case.
 */
function answer(host: LuaHost, script: LuaScript, outcome: LuaOutcome, content: boolean, ctx: AccessContext): LocalResponse | ErrorSpec | null {
  if (outcome === LuaOutcome.Failed) {
    luaFailed(script, host.error, host.runaway);
    return Errors.PLUGIN;
  }
  const c = host.call;
  const out = c.out;
  // Output sends the response head: the status is ngx.status (or 200) whatever ngx.exit says after.
  if (out.length === 0 && outcome === LuaOutcome.Exit) return local(c.exitStatus, LuaHost.defaultBody(c.exitStatus), ctx);
  if (out.length === 0 && !content) return null;
  return local(c.status || 200, out.length === 1 ? out[0]! : out.join(''), ctx);
}

function local(status: number, body: string, ctx: AccessContext): LocalResponse {
  if (body.length === 0) return new LocalResponse(status, body, EMPTY);
  const h = ctx.responseHeaders;
  for (let i = 0; i < h.length; i += 2) if (h[i] === 'content-type') return new LocalResponse(status, body, EMPTY);
  return new LocalResponse(status, body, TEXT);
}

const EMPTY: readonly string[] = [];
const TEXT: readonly string[] = ['content-type', 'text/plain; charset=utf-8'];

class LuaPolicy implements PolicyInstance {
  readonly name = 'lua';
  readonly response?: (ctx: ResponsePhaseContext) => ErrorSpec | null;
  readonly log?: (ctx: LogPhaseContext) => void;

  constructor(
    private readonly host: LuaHost,
    private readonly routeIndex: number,
    private readonly policyIndex: number,
    private readonly accessScript: LuaScript | null,
    private readonly headerFilter: LuaScript | null,
    private readonly logScript: LuaScript | null,
  ) {
    if (headerFilter !== null) this.response = (ctx) => this.onResponse(ctx);
    // A header_filter alone still needs the end of the request: its ngx.ctx is released there.
    if (logScript !== null || headerFilter !== null) {
      this.log = (ctx) => this.onLog(ctx);
      host.registerLogPhase(routeIndex, policyIndex);
    }
  }

  access(ctx: AccessContext): ErrorSpec | LocalResponse | null {
    const host = this.host;
    const req = host.enter(ctx);
    const s = this.accessScript;
    if (s === null) return null;
    return answer(host, s, host.run(s, ctx, null, null, req), false, ctx);
  }

  private onResponse(ctx: ResponsePhaseContext): ErrorSpec | null {
    const host = this.host;
    const s = this.headerFilter!;
    if (host.run(s, ctx.access, ctx, null, host.peek(ctx.access)) !== LuaOutcome.Failed) return null;
    luaFailed(s, host.error, host.runaway);
    return Errors.PLUGIN;
  }

  private onLog(ctx: LogPhaseContext): void {
    const host = this.host;
    const s = this.logScript;
    if (s !== null && host.run(s, ctx.access, null, ctx, host.peek(ctx.access)) === LuaOutcome.Failed) luaFailed(s, host.error, host.runaway);
    if (host.isLastLog(this.routeIndex, this.policyIndex)) host.leave(ctx.access);
  }
}

function hostOf(env: PolicyEnv): LuaHost {
  const host = env.lua;
  if (host === undefined || host === null) throw new Error('lua policy: this generation has no Lua state (the worker did not load the Lua module)');
  return host;
}

export const luaPolicy: PolicyDefinition = {
  name: 'lua',
  schema: luaEntrySchema,
  create(config: unknown, env: PolicyEnv): PolicyInstance {
    const c = config as LuaEntryConfig;
    const host = hostOf(env);
    const route = env.routeName;
    return new LuaPolicy(
      host,
      env.routeIndex,
      env.policyIndex,
      compiled(host, c.access, LuaPhase.Access, route, c.maxInstructions),
      compiled(host, c.header_filter, LuaPhase.HeaderFilter, route, c.maxInstructions),
      compiled(host, c.log, LuaPhase.Log, route, c.maxInstructions),
    );
  },
};

/** A `lua.content` route: the script answers every request (after the route's access policies). */
export class LuaContent {
  private readonly script: LuaScript;
  constructor(
    private readonly host: LuaHost,
    config: LuaContentConfig,
    route: string,
  ) {
    this.script = compiled(host, config.content, LuaPhase.Content, route, config.maxInstructions)!;
  }

  run(ctx: AccessContext): LocalResponse | ErrorSpec {
    const host = this.host;
    const s = this.script;
    return answer(host, s, host.run(s, ctx, null, null, host.enter(ctx)), true, ctx)!;
  }
}
