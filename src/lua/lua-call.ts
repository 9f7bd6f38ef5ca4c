// What a script call serves: the phase, the request's contexts, and what the script
// did to it (output, exit status, ngx.status). One LuaCall per Lua state, reused for
// every call: calls never overlap.
import type { AccessContext, LogPhaseContext, ResponsePhaseContext } from '../policies/policy.js';
import type { LuaHost } from './lua-host.js';

export const enum LuaPhase {
  Access = 0,
  HeaderFilter = 1,
  Log = 2,
  Content = 3,
}

export const PHASE_NAMES = ['access', 'header_filter', 'log', 'content'] as const;

/** A compiled script: its registry key and what the logs say about it. */
export interface LuaScript {
  readonly file: string;
  readonly phase: LuaPhase;
  readonly route: string;
  readonly maxInstructions: number;
  /** NUL-terminated registry key in the module's memory */
  readonly key: number;
  /** run with the count hook from its start (the runaway checks could not be compiled in) */
  readonly hooked: boolean;
}

/** What one request keeps across its Lua phases. */
export class LuaRequest {
  /** registry reference of ngx.ctx, 0 until a script touches it */
  ctxRef = 0;
}

/** The request a C function serves: set by `run`, valid during one pcall. */
export class LuaCall {
  phase: LuaPhase = LuaPhase.Access;
  access: AccessContext | null = null;
  response: ResponsePhaseContext | null = null;
  log: LogPhaseContext | null = null;
  req: LuaRequest | null = null;
  script: LuaScript | null = null;
  /** ngx.exit's argument, NaN when it was not called */
  exitStatus = Number.NaN;
  /** ngx.status as set by the script in access or content, 0 when unset */
  status = 0;
  /** ngx.say / ngx.print output, in order */
  out: string[] = [];
}

/** The host whose script is running (calls never overlap, so there is one). */
let active: LuaHost | null = null;

export function activeHost(): LuaHost {
  return active!;
}

export function setActiveHost(h: LuaHost): void {
  active = h;
}
