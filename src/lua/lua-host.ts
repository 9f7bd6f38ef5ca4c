// One Lua state per config generation in a worker: the sandboxed standard libraries,
// the `ngx` API (lua-prelude.ts in Lua, lua-ngx.ts in JS), and every script of the
// generation compiled once (luaL_loadbufferx) and kept in the registry. A request runs
// a script with one lua_getfield and one lua_pcallk; what the script asks of `ngx`
// crosses the boundary, nothing else.
//
// Calls never overlap (the worker's thread runs one request step at a time and a
// script cannot wait), so the request a C function serves is the host's `call`, set
// before each pcall.
//
// A runaway script is stopped by an instruction-count hook: every HOOK_EVERY VM
// instructions the hook takes them off the call's budget and raises an error once it
// is spent. A script that catches that error (pcall) finds the hook then firing on
// every instruction, so the first instruction outside its pcall raises again. The hook
// is off while a call starts: a count hook makes Lua 5.4 dispatch every instruction
// through it, so scripts carry countdowns on their loops, calls and gotos instead
// (lua-instrument.ts), and the first countdown to run out turns the hook on for the
// rest of the call. The budget is counted from there: a call runs at most
// `countdownFor(maxInstructions)` loop iterations or calls before it (1,000 for the
// default budget). A script the rewrite cannot take is run with the hook from its start.
//
// Lifetime: a request may run its access script on one generation and its log script
// later; the state outlives its generation until every request that passed one of
// its access or content scripts on a route with later Lua phases has had its log phase
// (open counts them), then it is closed.
import { STATUS_CODES } from 'node:http';
import type { AccessContext, LogPhaseContext, ResponsePhaseContext } from '../policies/policy.js';
import type { SharedDicts } from '../shm/shared-dicts.js';
import type { SharedDict } from '../shm/shared-dict.js';
import { LUA_MASKCOUNT, LUA_REGISTRYINDEX, LuaType, type LuaVm } from './lua-vm.js';
import { PRELUDE } from './lua-prelude.js';
import { ngxFunctions, type LuaFunctionTable } from './lua-ngx.js';
import { instrument } from './lua-instrument.js';
import { LuaCall, LuaRequest, setActiveHost, type LuaScript, type LuaPhase } from './lua-call.js';

/** Instructions between two hook calls: small against any budget, rare against a script's own work. */
export const HOOK_EVERY = 1000;
export const DEFAULT_MAX_INSTRUCTIONS = 1_000_000;

/** Checks (loop iterations, calls, gotos) a call runs before the hook comes on: a thousandth of the budget, 1 … 1000. */
export function countdownFor(maxInstructions: number): number {
  return Math.max(1, Math.min(1000, Math.floor(maxInstructions / 1000)));
}

/** How a script call ended. */
export const enum LuaOutcome {
  /** it returned (or called ngx.exit(ngx.OK)) */
  Done = 0,
  /** ngx.exit(status) with a status: `call.exitStatus` */
  Exit = 1,
  /** a Lua error, the instruction limit, or ngx.exit(ngx.ERROR): `host.error` */
  Failed = 2,
}

export interface LuaHostOptions {
  readonly dicts: SharedDicts;
  readonly scheme: 'http' | 'https';
  /** the worker's slot, for ngx.worker.id() */
  readonly workerId: number;
  /** for the micro-benchmark only: compile scripts without the runaway checks and never hook them */
  readonly unprotected?: boolean;
}

let ids = 0;

export class LuaHost {
  readonly vm: LuaVm;
  readonly L: number;
  readonly call = new LuaCall();
  readonly opts: LuaHostOptions;
  /** dictionaries by the id scripts know them by (index into this list) */
  readonly dicts: readonly SharedDict[];
  private readonly dictIds: ReadonlyMap<string, number>;
  /**
   * The state's dict objects (ngx.shared.<name>) by their table's address: they live as
   * long as the state (the prelude keeps each, and Lua's collector never moves a
   * table), so no other table ever has one of these addresses.
   */
  readonly dictTables = new Map<number, SharedDict>();
  /** the last error message of a Failed call (with file and line), and whether the instruction limit caused it */
  error = '';
  runaway = false;
  /** instructions left to the running call */
  budget = 0;
  /** the hook fires every `step` instructions: HOOK_EVERY, or 1 after a caught limit error */
  step = HOOK_EVERY;
  /** the running call's countdown: what the tick hands back */
  countdown = 1000;
  /** whether the count hook is set on the state's main thread (it is off between calls) */
  private hooked = false;
  private readonly id = ++ids;
  private scripts = 0;
  /** per route index: does a Lua policy of it have a log phase (then requests are tracked until the last one) */
  private readonly laterPhases: boolean[] = [];
  /** per route index: the policy index whose log phase ends the request's Lua state */
  private readonly lastLog: number[] = [];
  private readonly requests = new Map<AccessContext, LuaRequest>();
  /** the request of a call on a route with no later phase: released after the call */
  private readonly temp = new LuaRequest();
  private open = 0;
  private retired = false;
  private closed = false;

  constructor(vm: LuaVm, opts: LuaHostOptions) {
    this.vm = vm;
    this.opts = opts;
    this.dicts = opts.dicts.names().map((n) => opts.dicts.get(n)!);
    this.dictIds = new Map(this.dicts.map((d, i) => [d.name, i]));
    const api = vm.api;
    const L = api._luaL_newstate();
    if (L === 0) throw new Error('Lua: cannot create a state (out of memory)');
    this.L = L;
    api._luaL_openlibs(L);
    const fns = functionTable(vm);
    const err = vm.load(L, PRELUDE, '=tidegate');
    if (err !== null) throw new Error(`Lua prelude: ${err}`);
    api._lua_createtable(L, 0, fns.names.length);
    for (let i = 0; i < fns.names.length; i++) {
      api._lua_pushcclosure(L, fns.pointers[i]!, 0);
      api._lua_setfield(L, -2, vm.cstr(fns.names[i]!));
    }
    setActiveHost(this);
    this.budget = DEFAULT_MAX_INSTRUCTIONS * 10;
    api._lua_sethook(L, fns.hook, LUA_MASKCOUNT, HOOK_EVERY);
    if (api._lua_pcallk(L, 1, 0, 0, 0, 0) !== 0) {
      const msg = vm.toString(L, -1);
      api._lua_close(L);
      throw new Error(`Lua prelude: ${msg}`);
    }
    api._lua_sethook(L, 0, 0, 0);
    api._lua_settop(L, 0);
  }

  dictId(name: string): number | undefined {
    return this.dictIds.get(name);
  }

  /**
   * Compiles `source` (the file's text, read on the primary at config check) as a
   * function with its own global environment (reads fall through to the shared
   * globals: ngx, cjson, the libraries; writes stay the script's). Throws the syntax error.
   */
  compile(file: string, source: string, phase: LuaPhase, route: string, maxInstructions: number): LuaScript {
    const vm = this.vm;
    const api = vm.api;
    const L = this.L;
    const name = `@${file}`;
    // The text as written first: its syntax error is the one to report.
    const err = vm.load(L, source, name);
    if (err !== null) throw new Error(err);
    const unprotected = this.opts.unprotected === true;
    const checked = unprotected ? null : instrument(source, countdownFor(maxInstructions));
    let wrapper = false;
    if (checked !== null) {
      api._lua_settop(L, -2);
      wrapper = vm.load(L, checked, name) === null;
      // XXX: a script the rewrite breaks (at a compiler limit: 200 locals, 255 upvalues) runs as written, hooked throughout.
      if (!wrapper && vm.load(L, source, name) !== null) throw new Error(`${file}: cannot be compiled twice`);
    }
    api._lua_createtable(L, 0, 0); // the script's _ENV
    api._lua_createtable(L, 0, 1);
    vm.rawgeti(L, LUA_REGISTRYINDEX, 2); // LUA_RIDX_GLOBALS
    api._lua_setfield(L, -2, vm.cstr('__index'));
    api._lua_setmetatable(L, -2);
    api._lua_setupvalue(L, -2, 1);
    if (wrapper) {
      // The wrapper chunk, given the tick, returns the script as a function.
      api._lua_pushcclosure(L, functionTable(vm).tick, 0);
      if (api._lua_pcallk(L, 1, 1, 0, 0, 0) !== 0) {
        const msg = vm.toString(L, -1);
        api._lua_settop(L, 0);
        throw new Error(`${file}: ${msg ?? 'the checked script did not load'}`);
      }
    }
    const hooked = !wrapper && !unprotected;
    const key = vm.cstr(`tidegate.script.${this.id}.${++this.scripts}`);
    api._lua_setfield(L, LUA_REGISTRYINDEX, key);
    api._lua_settop(L, 0);
    return { file, phase, route, maxInstructions, key, hooked };
  }

  /** A Lua policy of route `routeIndex` at `policyIndex` has a log phase (its own script, or the release of a header_filter's request). */
  registerLogPhase(routeIndex: number, policyIndex: number): void {
    this.laterPhases[routeIndex] = true;
    this.lastLog[routeIndex] = Math.max(this.lastLog[routeIndex] ?? -1, policyIndex);
  }

  /** The request's Lua state for a first phase (access, content): tracked when later phases will follow. */
  enter(ctx: AccessContext): LuaRequest {
    if (this.laterPhases[ctx.routeIndex] !== true) return this.temp;
    let r = this.requests.get(ctx);
    if (r === undefined) {
      r = new LuaRequest();
      this.requests.set(ctx, r);
      this.open++;
    }
    return r;
  }

  /** The request's state for a later phase; one that never passed a first phase (refused before it) gets a fresh one. */
  peek(ctx: AccessContext): LuaRequest {
    return this.requests.get(ctx) ?? this.temp;
  }

  /** Whether the log phase of `policyIndex` is the request's last Lua phase. */
  isLastLog(routeIndex: number, policyIndex: number): boolean {
    return this.lastLog[routeIndex] === policyIndex;
  }

  /** The request is done with Lua: its ngx.ctx goes, and a retired state may close. */
  leave(ctx: AccessContext): void {
    const r = this.requests.get(ctx);
    if (r === undefined) return;
    this.requests.delete(ctx);
    this.release(r);
    this.open--;
    if (this.retired && this.open === 0) this.close();
  }

  private release(r: LuaRequest): void {
    if (r.ctxRef !== 0) {
      this.vm.api._luaL_unref(this.L, LUA_REGISTRYINDEX, r.ctxRef);
      r.ctxRef = 0;
    }
  }

  /**
   * Runs `script` for one request phase. `response`/`log` are the later phases'
   * contexts (null otherwise). The call's output, exit status and ngx.status are read
   * from `this.call` afterwards; a Failed call's message is `this.error`.
   */
  run(script: LuaScript, access: AccessContext, response: ResponsePhaseContext | null, log: LogPhaseContext | null, req: LuaRequest): LuaOutcome {
    if (this.closed) throw new Error('Lua state already closed');
    const api = this.vm.api;
    const L = this.L;
    const c = this.call;
    c.phase = script.phase;
    c.access = access;
    c.response = response;
    c.log = log;
    c.req = req;
    c.script = script;
    c.exitStatus = Number.NaN;
    c.status = 0;
    if (c.out.length > 0) c.out = [];
    setActiveHost(this);
    this.budget = script.maxInstructions;
    this.runaway = false;
    this.step = HOOK_EVERY;
    this.countdown = countdownFor(script.maxInstructions);
    if (script.hooked) this.hookOn(L);
    api._lua_getfield(L, LUA_REGISTRYINDEX, script.key);
    const status = api._lua_pcallk(L, 0, 0, 0, 0, 0);
    if (this.hooked) {
      this.hooked = false;
      api._lua_sethook(L, 0, 0, 0);
    }
    let outcome = LuaOutcome.Done;
    if (status === 0) {
      // ngx.exit inside a pcall of the script's own: the exit still applies.
      if (!Number.isNaN(c.exitStatus)) outcome = c.exitStatus < 0 ? this.exitError(script) : c.exitStatus === 0 ? LuaOutcome.Done : LuaOutcome.Exit;
    } else {
      if (api._lua_type(L, -1) === LuaType.LightUserdata && api._lua_touserdata(L, -1) === functionTable(this.vm).exitToken) {
        outcome = c.exitStatus < 0 ? this.exitError(script) : c.exitStatus === 0 ? LuaOutcome.Done : LuaOutcome.Exit;
      } else {
        outcome = LuaOutcome.Failed;
        const t = api._lua_type(L, -1);
        this.error = (t === LuaType.String || t === LuaType.Number ? this.vm.toString(L, -1) : null) ?? `(error object is a ${LUA_TYPE_NAMES[t + 1] ?? 'unknown'} value)`;
      }
      api._lua_settop(L, 0);
    }
    if (req === this.temp) this.release(req);
    c.access = null;
    c.response = null;
    c.log = null;
    c.req = null;
    return outcome;
  }

  /**
   * The running call needs the count hook from now on (a countdown ran out, or the
   * script is not checked): on the state's main thread and on `L`, the thread that
   * asked (a coroutine has its own hook).
   */
  hookOn(L: number): void {
    if (this.opts.unprotected === true) return;
    const api = this.vm.api;
    const hook = functionTable(this.vm).hook;
    if (!this.hooked) {
      this.hooked = true;
      api._lua_sethook(this.L, hook, LUA_MASKCOUNT, this.step);
    }
    // Once: setting a hook restarts its count, and ticks come more often than 1,000 instructions.
    if (L !== this.L && api._lua_gethookmask(L) === 0) api._lua_sethook(L, hook, LUA_MASKCOUNT, this.step);
  }

  /** ngx.exit(ngx.ERROR) and the other negative codes: the request fails as on a Lua error. */
  private exitError(script: LuaScript): LuaOutcome {
    this.error = `${script.file}: ngx.exit(${this.call.exitStatus}) (an error status)`;
    return LuaOutcome.Failed;
  }

  /** Body text ngx.exit(status) sends when the script wrote none. */
  static defaultBody(status: number): string {
    return status >= 400 ? `${status} ${STATUS_CODES[status] ?? ''}\n` : '';
  }

  /** The generation is replaced: close once no request is left between its phases. */
  retire(): void {
    this.retired = true;
    if (this.open === 0) this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // __gc metamethods of scripts run here: with a budget, and no request.
    setActiveHost(this);
    this.budget = DEFAULT_MAX_INSTRUCTIONS;
    this.vm.api._lua_close(this.L);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

const LUA_TYPE_NAMES = ['no value', 'nil', 'boolean', 'userdata', 'number', 'string', 'table', 'function', 'userdata', 'thread'];

const tables = new WeakMap<LuaVm, LuaFunctionTable>();

/** The C functions (and the hook) as function-table pointers: created once per module, shared by its states. */
function functionTable(vm: LuaVm): LuaFunctionTable {
  let t = tables.get(vm);
  if (t === undefined) {
    t = ngxFunctions(vm);
    tables.set(vm, t);
  }
  return t;
}
