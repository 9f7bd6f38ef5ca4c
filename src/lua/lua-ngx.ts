// The JS half of the `ngx` API: C functions (lua_CFunction, `int f(lua_State*)`) made
// with the module's addFunction, once per module. Each reads its arguments off the
// Lua stack, serves the active host's request (lua-host.ts), and pushes its results.
//
// Errors: a function throws LuaRaise (or anything, for a bug) and the wrapper raises it
// as a Lua error with the caller's file and line, like luaL_error. lua_error unwinds
// by throwing through these JS frames, so it is called after the catch, never inside
// a try; and a non-Error thrown at us is Lua's own unwinding, passed on untouched.
import { pid } from 'node:process';
import type { AccessContext } from '../policies/policy.js';
import { PairsEditor, ResponseEditor } from '../plugins/plugin-policy.js';
import { DictBytes, type SharedDict } from '../shm/shared-dict.js';
import { DictValueType } from '../shm/shared-dict-layout.js';
import type { LuaHost } from './lua-host.js';
import { activeHost, LuaPhase, PHASE_NAMES, type LuaCall } from './lua-call.js';
import { LUA_REGISTRYINDEX, LuaType, type LuaVm } from './lua-vm.js';
import { luaLog } from './lua-report.js';
import { instrument } from './lua-instrument.js';

export class LuaRaise extends Error {}
/** ngx.exit: unwinds the script with the exit token (the status is in the call). */
class LuaExit extends Error {}
const EXIT = new LuaExit('ngx.exit');

export interface LuaFunctionTable {
  readonly names: readonly string[];
  readonly pointers: readonly number[];
  /** the instruction-count hook, `void hook(lua_State*, lua_Debug*)` */
  readonly hook: number;
  /** the C function a script's countdown calls when it runs out (lua-instrument.ts) */
  readonly tick: number;
  /** a unique light userdata: the error value ngx.exit raises */
  readonly exitToken: number;
}

type Impl = (L: number, vm: LuaVm, host: LuaHost) => number;

function request(host: LuaHost): LuaCall & { access: AccessContext } {
  const c = host.call;
  if (c.access === null) throw new LuaRaise('no request is being handled (ngx APIs are available in request phases only)');
  return c as LuaCall & { access: AccessContext };
}

function disabled(c: LuaCall, api: string): never {
  throw new LuaRaise(`API disabled in the context of ${PHASE_NAMES[c.phase]}: ${api}`);
}

/** A request header as it will be forwarded; several fields joined with ", ". */
function requestHeader(a: AccessContext, name: string): string | undefined {
  if (name === 'host') return a.host;
  let out: string | undefined;
  const h = a.headers;
  for (let i = 2; i < h.length; i += 2) if (h[i] === name) out = out === undefined ? h[i + 1] : `${out}, ${h[i + 1]}`;
  return out;
}

function queryArg(query: string, name: string): string | undefined {
  if (query.length === 0) return undefined;
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    if (k.toLowerCase() === name) return eq < 0 ? '' : part.slice(eq + 1);
  }
  return undefined;
}

function cookie(a: AccessContext, name: string): string | undefined {
  const c = requestHeader(a, 'cookie');
  if (c === undefined) return undefined;
  for (const part of c.split(';')) {
    const p = part.trim();
    const eq = p.indexOf('=');
    if (eq > 0 && p.slice(0, eq) === name) return p.slice(eq + 1);
  }
  return undefined;
}

function ipBytes(ip: string): Uint8Array {
  if (ip.includes('.') && !ip.includes(':')) return Uint8Array.from(ip.split('.').map(Number));
  // IPv6: expand "::", then 8 groups of 16 bits (an embedded IPv4 tail counts as two).
  let s = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  let tail: number[] = [];
  if (v4 !== null) {
    tail = v4[1]!.split('.').map(Number);
    s = s.slice(0, -v4[1]!.length) + '0:0';
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const hs = head === '' ? [] : head.split(':');
  const rs = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = rest === undefined ? hs : [...hs, ...Array<string>(8 - hs.length - rs.length).fill('0'), ...rs];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16) || 0;
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

type Req = LuaCall & { access: AccessContext };
type Resolver = (c: Req, host: LuaHost) => string | Uint8Array | undefined;

const fixedVars: Readonly<Record<string, Resolver>> = {
  uri: (c) => c.access.path,
  request_uri: (c) => (c.access.query.length > 0 ? `${c.access.path}?${c.access.query}` : c.access.path),
  args: (c) => (c.access.query.length > 0 ? c.access.query : undefined),
  query_string: (c) => (c.access.query.length > 0 ? c.access.query : undefined),
  is_args: (c) => (c.access.query.length > 0 ? '?' : ''),
  request_method: (c) => c.access.method,
  remote_addr: (c) => c.access.clientIp,
  binary_remote_addr: (c) => ipBytes(c.access.clientIp),
  realip_remote_addr: (c) => c.access.peer,
  host: (c) => {
    const h = c.access.host;
    const colon = h.startsWith('[') ? h.indexOf(']') + 1 : h.indexOf(':');
    return (colon > 0 ? h.slice(0, colon) : h).toLowerCase();
  },
  http_host: (c) => c.access.host,
  scheme: (_c, host) => host.opts.scheme,
  content_length: (c) => requestHeader(c.access, 'content-length'),
  content_type: (c) => requestHeader(c.access, 'content-type'),
  tg_route: (c) => c.access.routeName,
  status: (c) => {
    const s = c.response?.status ?? c.log?.status;
    return s === undefined ? undefined : String(s === 0 ? 499 : s);
  },
  request_time: (c) => (c.log === null ? undefined : requestTime(c.log.durationMs)),
};

/** "0.000" … "0.999": most requests take under a second, and toFixed costs more than the lookup */
const subSecond: readonly string[] = Array.from({ length: 1000 }, (_, ms) => (ms / 1000).toFixed(3));

/** $request_time: seconds with millisecond resolution, as nginx writes it */
function requestTime(durationMs: number): string {
  const ms = Math.max(0, Math.round(durationMs));
  return ms < 1000 ? subSecond[ms]! : (ms / 1000).toFixed(3);
}

const fixed = new Map<string, Resolver>(Object.entries(fixedVars));
const none: Resolver = () => undefined;

function resolverFor(name: string): Resolver {
  const f = fixed.get(name);
  if (f !== undefined) return f;
  if (name.startsWith('http_')) {
    const field = name.slice(5).toLowerCase().replaceAll('_', '-');
    return (c) => requestHeader(c.access, field);
  }
  if (name.startsWith('arg_')) {
    const arg = name.slice(4).toLowerCase();
    return (c) => queryArg(c.access.query, arg);
  }
  if (name.startsWith('cookie_')) {
    const k = name.slice(7);
    return (c) => cookie(c.access, k);
  }
  if (name.startsWith('sent_http_')) {
    const field = name.slice(10).replaceAll('_', '-');
    return (c) => (c.response === null ? undefined : new ResponseEditor(c.response.upstreamHeaders, c.access.responseHeaders).get(field));
  }
  return none;
}

/** Variable names seen so far and how to compute each (scripts read the same few names on every request). */
const resolvers = new Map<string, Resolver>();

/** ngx.var.<name>: the value, or undefined (nil). Only what the script reads is computed. */
function variable(c: Req, name: string, host: LuaHost): string | Uint8Array | undefined {
  let r = resolvers.get(name);
  if (r === undefined) {
    if (resolvers.size >= 4096) resolvers.clear();
    r = resolverFor(name);
    resolvers.set(name, r);
  }
  return r(c, host);
}

/** Header names as scripts write them → as fields are named: a script uses the same few. */
const headerNames = new Map<string, string>();

function headerName(vm: LuaVm, L: number, idx: number): string {
  const n = keyArg(vm, L, idx);
  if (n === null) throw new LuaRaise('header name must be a string');
  let f = headerNames.get(n);
  if (f === undefined) {
    if (headerNames.size >= 4096) headerNames.clear();
    f = n.toLowerCase().replaceAll('_', '-');
    headerNames.set(n, f);
  }
  return f;
}

const debugInfos = new WeakMap<LuaVm, number>();

/** A lua_Debug (≈ 120 bytes in this build) in the module's memory, for lua_getstack. */
function debugInfo(vm: LuaVm): number {
  let p = debugInfos.get(vm);
  if (p === undefined) {
    p = vm.api._malloc(256);
    debugInfos.set(vm, p);
  }
  return p;
}

/** A header value from Lua: nil (remove), a string or number, or a table of them (several fields). */
function headerValues(vm: LuaVm, L: number, idx: number): string[] | null {
  const api = vm.api;
  const t = api._lua_type(L, idx);
  if (t === LuaType.Nil || t === LuaType.None) return null;
  if (t === LuaType.String || t === LuaType.Number) return [vm.toString(L, idx)!];
  if (t === LuaType.Table) {
    const out: string[] = [];
    for (let i = 1; ; i++) {
      const et = vm.rawgeti(L, idx, i);
      if (et === LuaType.Nil) {
        api._lua_settop(L, -2);
        break;
      }
      const s = et === LuaType.String || et === LuaType.Number ? vm.toString(L, -1) : null;
      api._lua_settop(L, -2);
      if (s === null) throw new LuaRaise('header values in a table must be strings');
      out.push(s);
    }
    return out;
  }
  throw new LuaRaise(`bad header value: a ${t === LuaType.Boolean ? 'boolean' : 'non-string'}`);
}

/** The editor of the fields the response will carry, for this phase. */
function responseHeaders(c: LuaCall & { access: AccessContext }): PairsEditor | ResponseEditor {
  if (c.phase === LuaPhase.HeaderFilter) return new ResponseEditor(c.response!.upstreamHeaders, c.access.responseHeaders);
  return new PairsEditor(c.access.responseHeaders, 0);
}

function setHeader(editor: { set(n: string, v: string): void; add(n: string, v: string): void; remove(n: string): void }, name: string, values: string[] | null): void {
  try {
    if (values === null || values.length === 0) editor.remove(name);
    else {
      editor.set(name, values[0]!);
      for (let i = 1; i < values.length; i++) editor.add(name, values[i]!);
    }
  } catch (err) {
    throw new LuaRaise((err as Error).message);
  }
}

function pushValue(vm: LuaVm, L: number, v: string | number | boolean | Uint8Array | undefined | null): void {
  if (v === undefined || v === null) vm.api._lua_pushnil(L);
  else if (typeof v === 'string') vm.pushString(L, v);
  else if (typeof v === 'number') vm.pushNumber(L, v);
  else if (typeof v === 'boolean') vm.api._lua_pushboolean(L, v ? 1 : 0);
  else vm.pushBytes(L, v);
}

/** JSON.parse's result as Lua values (null → cjson.null, a NULL light userdata). */
function pushJson(vm: LuaVm, L: number, v: unknown, depth: number): void {
  const api = vm.api;
  if (depth > 1000) throw new LuaRaise('Found too many nested data structures (1001)');
  if (v === null) api._lua_pushlightuserdata(L, 0);
  else if (typeof v === 'string') vm.pushString(L, v);
  else if (typeof v === 'number') vm.pushNumber(L, v);
  else if (typeof v === 'boolean') api._lua_pushboolean(L, v ? 1 : 0);
  else {
    if (api._lua_checkstack(L, 3) === 0) throw new LuaRaise('Found too many nested data structures');
    if (Array.isArray(v)) {
      api._lua_createtable(L, v.length, 0);
      for (let i = 0; i < v.length; i++) {
        pushJson(vm, L, v[i], depth + 1);
        vm.rawseti(L, -2, i + 1);
      }
    } else {
      const keys = Object.keys(v as object);
      api._lua_createtable(L, 0, keys.length);
      for (const k of keys) {
        vm.pushString(L, k);
        pushJson(vm, L, (v as Record<string, unknown>)[k], depth + 1);
        api._lua_rawset(L, -3);
      }
    }
  }
}

const regexCache = new Map<string, RegExp | string>();

/** A JS RegExp for ngx.re's pattern and options (i m s u a; j o are accepted and ignored), or why not. */
function compileRegex(pattern: string, options: string, indices: boolean): RegExp | string {
  const key = `${indices ? 'd' : ''}${options}/${pattern}`;
  let re = regexCache.get(key);
  if (re !== undefined) return re;
  let flags = indices ? 'd' : '';
  let sticky = false;
  for (const o of options) {
    if (o === 'i' || o === 'm' || o === 's' || o === 'u') flags += o;
    else if (o === 'a') sticky = true;
    else if (o === 'j' || o === 'o' || o === 'J' || o === 'D') continue;
    else {
      re = `unknown flag "${o}" (supported: a i j m o s u)`;
      break;
    }
  }
  if (re === undefined) {
    try {
      re = new RegExp(pattern, flags + (sticky ? 'y' : 'g'));
    } catch (err) {
      re = `failed to compile regex "${pattern}": ${(err as Error).message}`;
    }
  }
  if (regexCache.size >= 512) regexCache.clear();
  regexCache.set(key, re);
  return re;
}

/** JS string index → 1-based byte position in the UTF-8 subject. */
function bytePos(subject: string, ascii: boolean, index: number): number {
  return ascii ? index : Buffer.byteLength(subject.slice(0, index));
}

function charIndex(subject: string, ascii: boolean, bytes: number): number {
  if (ascii) return bytes;
  const b = Buffer.from(subject);
  return b.subarray(0, bytes).toString('utf8').length;
}

/** The dictionary of the method call's `self`: one of the state's dict objects (by its table's address). */
function dictOf(host: LuaHost, vm: LuaVm, L: number): SharedDict {
  const api = vm.api;
  const d = api._lua_type(L, 1) === LuaType.Table ? host.dictTables.get(api._lua_topointer(L, 1)) : undefined;
  if (d === undefined) throw new LuaRaise('bad "zone" argument');
  return d;
}

// A dict call's key, string value and result, as bytes in the module's memory: Lua
// strings are bytes, and they reach the dictionary and come back without a JS string
// (nor a UTF-8 round trip that would change bytes which are not UTF-8). Refilled by
// every call: calls never overlap.
const keyRef = new DictBytes();
const valueRef = new DictBytes();
const outRef = new DictBytes();

/** The dict key at `idx` (a string, or a number as its text) as bytes, or null for another type. */
function dictKey(vm: LuaVm, L: number, idx: number): DictBytes | null {
  const t = vm.api._lua_type(L, idx);
  if (t !== LuaType.String && t !== LuaType.Number) return null;
  keyRef.at = vm.stringAt(L, idx);
  keyRef.len = vm.strLen;
  return keyRef;
}

/** A dict value from Lua: nil (undefined), boolean, number or string (as bytes); `bad` for anything else. */
function dictValue(vm: LuaVm, L: number, idx: number): DictBytes | number | boolean | undefined | typeof BAD {
  const t = vm.api._lua_type(L, idx);
  switch (t) {
    case LuaType.Nil:
    case LuaType.None:
      return undefined;
    case LuaType.Boolean:
      return vm.api._lua_toboolean(L, idx) !== 0;
    case LuaType.Number:
      return vm.toNumber(L, idx);
    case LuaType.String:
      valueRef.at = vm.stringAt(L, idx);
      valueRef.len = vm.strLen;
      return valueRef;
    default:
      return BAD;
  }
}
const BAD = Symbol('bad value');

function optNumber(vm: LuaVm, L: number, idx: number, def: number): number {
  const t = vm.api._lua_type(L, idx);
  if (t === LuaType.Nil || t === LuaType.None) return def;
  if (t !== LuaType.Number) throw new LuaRaise(`bad argument #${idx}: number expected`);
  return vm.toNumber(L, idx);
}

function keyArg(vm: LuaVm, L: number, idx: number): string | null {
  const t = vm.api._lua_type(L, idx);
  return t === LuaType.String || t === LuaType.Number ? vm.toString(L, idx) : null;
}

function pushResult(vm: LuaVm, L: number, ok: boolean, err: string | null, forcible: boolean): number {
  vm.api._lua_pushboolean(L, ok ? 1 : 0);
  if (err === null) vm.api._lua_pushnil(L);
  else vm.pushString(L, err);
  vm.api._lua_pushboolean(L, forcible ? 1 : 0);
  return 3;
}

function pushFail(vm: LuaVm, L: number, err: string): number {
  vm.api._lua_pushnil(L);
  vm.pushString(L, err);
  return 2;
}

const enum Mode {
  Set,
  SafeSet,
  Add,
  SafeAdd,
  Replace,
}

/** dict:get(key) and dict:get_stale(key), called as the methods themselves: self, key. */
function dictGet(L: number, vm: LuaVm, host: LuaHost, stale: boolean): number {
  const d = dictOf(host, vm, L);
  const api = vm.api;
  // The value is copied straight into the scratch buffer, and pushed from there.
  const out = outRef;
  out.at = vm.scratchFor(0);
  const key = dictKey(vm, L, 2);
  if (key === null) return pushFail(vm, L, 'nil key');
  const heap = vm.heap();
  key.bytes = heap;
  out.bytes = heap;
  out.len = vm.scratchSize;
  const type = d.getInto(key, stale, out);
  if (type === 0) {
    if (d.err !== null) return pushFail(vm, L, d.err);
    api._lua_pushnil(L);
    return 1;
  }
  // A C function returns the top values: push the flags only when they are returned.
  if (type === DictValueType.Number) vm.pushNumber(L, d.number);
  else if (type === DictValueType.Boolean) api._lua_pushboolean(L, d.number !== 0 ? 1 : 0);
  else if (out.bytes === heap) api._lua_pushlstring(L, out.at, out.len);
  else vm.pushBytes(L, out.bytes.subarray(out.at, out.at + out.len));
  if (!stale) {
    if (d.flags === 0) return 1;
    vm.pushInteger(L, d.flags);
    return 2;
  }
  if (d.flags !== 0) vm.pushInteger(L, d.flags);
  else vm.api._lua_pushnil(L);
  vm.api._lua_pushboolean(L, d.stale ? 1 : 0);
  return 3;
}

/** dict:set and its variants (self, key, value, exptime?, flags?); delete is set(key, nil). */
function dictSet(L: number, vm: LuaVm, host: LuaHost, mode: Mode): number {
  const d = dictOf(host, vm, L);
  const key = dictKey(vm, L, 2);
  if (key === null) return pushResult(vm, L, false, 'nil key', false);
  const value = dictValue(vm, L, 3);
  if (value === BAD) return pushResult(vm, L, false, 'bad value type', false);
  const exptime = optNumber(vm, L, 4, 0);
  const flags = optNumber(vm, L, 5, 0);
  if (exptime < 0) throw new LuaRaise('bad "exptime" argument');
  key.bytes = valueRef.bytes = vm.heap();
  let ok: boolean;
  if (mode === Mode.Set) ok = d.set(key, value, exptime, flags);
  else if (mode === Mode.SafeSet) ok = d.safeSet(key, value, exptime, flags);
  else if (value === undefined) return pushResult(vm, L, false, 'attempt to add or replace nil values', false);
  else if (mode === Mode.Add) ok = d.add(key, value, exptime, flags);
  else if (mode === Mode.SafeAdd) ok = d.safeAdd(key, value, exptime, flags);
  else ok = d.replace(key, value, exptime, flags);
  return pushResult(vm, L, ok, ok ? null : d.err, d.forcible);
}

const impls: Record<string, Impl> = {
  null(L, vm) {
    vm.api._lua_pushlightuserdata(L, 0);
    return 1;
  },
  tick(L, vm, host) {
    // Hooked from here to the end of the call; the countdown starts again so that
    // functions made in another call (holding their own countdown) reach here too.
    host.hookOn(L);
    vm.pushInteger(L, host.countdown);
    return 1;
  },
  hook_on(L, _vm, host) {
    host.hookOn(L);
    return 0;
  },
  instrument(L, vm, host) {
    const source = keyArg(vm, L, 1);
    const checked = source === null ? null : instrument(source, host.countdown);
    if (checked === null) vm.api._lua_pushnil(L);
    else vm.pushString(L, checked);
    return 1;
  },
  var_get(L, vm, host) {
    const c = request(host);
    const name = keyArg(vm, L, 2);
    if (name === null) throw new LuaRaise('ngx.var: variable name must be a string');
    pushValue(vm, L, variable(c, name, host));
    return 1;
  },
  var_set(L, vm) {
    throw new LuaRaise(`variable "${keyArg(vm, L, 2) ?? '?'}" not changeable (tidegate has no nginx variables to set)`);
  },
  header_get(L, vm, host) {
    const c = request(host);
    if (c.phase === LuaPhase.Log) disabled(c, 'ngx.header');
    pushValue(vm, L, responseHeaders(c).get(headerName(vm, L, 2)));
    return 1;
  },
  header_set(L, vm, host) {
    const c = request(host);
    if (c.phase === LuaPhase.Log) disabled(c, 'ngx.header');
    setHeader(responseHeaders(c), headerName(vm, L, 2), headerValues(vm, L, 3));
    return 0;
  },
  write(L, vm, host) {
    const c = request(host);
    if (c.phase !== LuaPhase.Access && c.phase !== LuaPhase.Content) disabled(c, 'ngx.say / ngx.print');
    const s = vm.toString(L, 1) ?? '';
    c.out.push(vm.api._lua_toboolean(L, 2) !== 0 ? `${s}\n` : s);
    vm.pushInteger(L, 1);
    return 1;
  },
  exit(L, vm, host) {
    const c = request(host);
    const t = vm.api._lua_type(L, 1);
    if (t !== LuaType.Number) throw new LuaRaise('ngx.exit: status must be a number');
    const status = Math.trunc(vm.toNumber(L, 1));
    if (c.phase === LuaPhase.HeaderFilter && status !== 0) throw new LuaRaise('ngx.exit with a status is not supported in header_filter (the response status cannot be changed there)');
    if (status > 0 && (status < 200 || status > 999)) throw new LuaRaise(`ngx.exit: bad status ${status}`);
    c.exitStatus = status;
    // `return ngx.exit(s)` in the script's main chunk, the usual form: the chunk's frame
    // is gone (a tail call), so returning ends the script as the error would, without
    // the cost of unwinding (an exception through the module's frames, ≈ 7 µs).
    if (L === host.L && vm.api._lua_getstack(L, 2, debugInfo(vm)) === 0) return 0;
    throw EXIT;
  },
  log(L, vm, host) {
    const c = host.call;
    const level = vm.toNumber(L, 1);
    vm.api._luaL_where(L, 2);
    const at = vm.toString(L, -1) ?? '';
    luaLog(c.script, c.access?.routeName ?? '', level, at.endsWith(': ') ? at.slice(0, -2) : at, vm.toString(L, 2) ?? '');
    return 0;
  },
  now(L, vm) {
    vm.api._lua_pushnumber(L, Date.now() / 1000);
    return 1;
  },
  time(L, vm) {
    vm.pushInteger(L, Math.floor(Date.now() / 1000));
    return 1;
  },
  phase(L, vm, host) {
    vm.pushString(L, host.call.access === null ? 'init' : PHASE_NAMES[host.call.phase]);
    return 1;
  },
  re_find(L, vm) {
    const subject = keyArg(vm, L, 1);
    const pattern = keyArg(vm, L, 2);
    if (subject === null || pattern === null) throw new LuaRaise('ngx.re.find: subject and regex must be strings');
    const options = keyArg(vm, L, 3) ?? '';
    const api = vm.api;
    const hasCtx = api._lua_type(L, 4) === LuaType.Table;
    const nth = Math.trunc(optNumber(vm, L, 5, 0));
    const re = compileRegex(pattern, options, nth > 0);
    if (typeof re === 'string') return pushFail(vm, L, re);
    let ascii = true;
    for (let i = 0; i < subject.length; i++)
      if (subject.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    let start = 0;
    if (hasCtx) {
      api._lua_getfield(L, 4, vm.cstr('pos'));
      if (api._lua_type(L, -1) === LuaType.Number) start = Math.max(0, Math.trunc(vm.toNumber(L, -1)) - 1);
      api._lua_settop(L, -2);
    }
    re.lastIndex = charIndex(subject, ascii, start);
    const m = re.exec(subject);
    if (m === null) {
      api._lua_pushnil(L);
      return 1;
    }
    const whole: [number, number] = [m.index, m.index + m[0].length];
    const span = nth > 0 ? (m.indices?.[nth] ?? null) : whole;
    if (hasCtx) {
      vm.pushInteger(L, bytePos(subject, ascii, whole[1]) + 1);
      api._lua_setfield(L, 4, vm.cstr('pos'));
    }
    if (span === null) {
      api._lua_pushnil(L);
      return 1;
    }
    vm.pushInteger(L, bytePos(subject, ascii, span[0]) + 1);
    vm.pushInteger(L, bytePos(subject, ascii, span[1]));
    return 2;
  },
  req_get_method(L, vm, host) {
    vm.pushString(L, request(host).access.method);
    return 1;
  },
  req_get_headers(L, vm, host) {
    const a = request(host).access;
    const max = optNumber(vm, L, 1, 100);
    const h = a.headers;
    const api = vm.api;
    const seen = new Map<string, string[]>();
    let n = 0;
    for (let i = 0; i < h.length && (max <= 0 || n < max); i += 2, n++) {
      const name = h[i]!;
      const v = i === 0 ? a.host : h[i + 1]!;
      const list = seen.get(name);
      if (list === undefined) seen.set(name, [v]);
      else list.push(v);
    }
    api._lua_createtable(L, 0, seen.size);
    for (const [name, values] of seen) {
      vm.pushString(L, name);
      if (values.length === 1) vm.pushString(L, values[0]!);
      else {
        api._lua_createtable(L, values.length, 0);
        for (let i = 0; i < values.length; i++) {
          vm.pushString(L, values[i]!);
          vm.rawseti(L, -2, i + 1);
        }
      }
      api._lua_rawset(L, -3);
    }
    return 1;
  },
  req_set_header(L, vm, host) {
    const c = request(host);
    if (c.phase !== LuaPhase.Access && c.phase !== LuaPhase.Content) disabled(c, 'ngx.req.set_header (the request was already sent)');
    setHeader(new PairsEditor(c.access.headers, 2), headerName(vm, L, 1), headerValues(vm, L, 2));
    return 0;
  },
  req_get_uri_args(L, vm, host) {
    const a = request(host).access;
    const max = optNumber(vm, L, 1, 100);
    const api = vm.api;
    const args = new Map<string, (string | true)[]>();
    let n = 0;
    for (const part of a.query.length > 0 ? a.query.split('&') : []) {
      if (part.length === 0) continue;
      if (max > 0 && n++ >= max) break;
      const eq = part.indexOf('=');
      const k = decodeArg(eq < 0 ? part : part.slice(0, eq));
      const v: string | true = eq < 0 ? true : decodeArg(part.slice(eq + 1));
      const list = args.get(k);
      if (list === undefined) args.set(k, [v]);
      else list.push(v);
    }
    api._lua_createtable(L, 0, args.size);
    for (const [k, values] of args) {
      vm.pushString(L, k);
      if (values.length === 1) pushValue(vm, L, values[0]);
      else {
        api._lua_createtable(L, values.length, 0);
        for (let i = 0; i < values.length; i++) {
          pushValue(vm, L, values[i]);
          vm.rawseti(L, -2, i + 1);
        }
      }
      api._lua_rawset(L, -3);
    }
    return 1;
  },
  worker_id(L, vm, host) {
    vm.pushInteger(L, Math.max(0, host.opts.workerId));
    return 1;
  },
  worker_pid(L, vm) {
    vm.pushInteger(L, pid);
    return 1;
  },
  prefix(L, vm) {
    vm.pushString(L, `${process.cwd()}/`);
    return 1;
  },
  dict_register(L, vm, host) {
    const d = host.dicts[vm.toNumber(L, 2)];
    if (vm.api._lua_type(L, 1) !== LuaType.Table || d === undefined) throw new LuaRaise('bad shared dict object');
    host.dictTables.set(vm.api._lua_topointer(L, 1), d);
    return 0;
  },
  dict_id(L, vm, host) {
    const name = keyArg(vm, L, 1);
    const id = name === null ? undefined : host.dictId(name);
    if (id === undefined) vm.api._lua_pushnil(L);
    else vm.pushInteger(L, id);
    return 1;
  },
  dict_get(L, vm, host) {
    return dictGet(L, vm, host, false);
  },
  dict_get_stale(L, vm, host) {
    return dictGet(L, vm, host, true);
  },
  dict_set(L, vm, host) {
    return dictSet(L, vm, host, Mode.Set);
  },
  dict_safe_set(L, vm, host) {
    return dictSet(L, vm, host, Mode.SafeSet);
  },
  dict_add(L, vm, host) {
    return dictSet(L, vm, host, Mode.Add);
  },
  dict_safe_add(L, vm, host) {
    return dictSet(L, vm, host, Mode.SafeAdd);
  },
  dict_replace(L, vm, host) {
    return dictSet(L, vm, host, Mode.Replace);
  },
  dict_incr(L, vm, host) {
    const d = dictOf(host, vm, L);
    const key = dictKey(vm, L, 2);
    if (key === null) return pushFail(vm, L, 'nil key');
    if (vm.api._lua_type(L, 3) !== LuaType.Number) return pushFail(vm, L, 'not a number');
    const by = vm.toNumber(L, 3);
    const it = vm.api._lua_type(L, 4);
    const init = it === LuaType.Nil || it === LuaType.None ? undefined : it === LuaType.Number ? vm.toNumber(L, 4) : Number.NaN;
    const initTtl = optNumber(vm, L, 5, 0);
    key.bytes = vm.heap();
    const v = d.incr(key, by, init, initTtl);
    if (v === undefined) return pushFail(vm, L, d.err ?? 'not found');
    vm.pushNumber(L, v);
    vm.api._lua_pushnil(L);
    vm.api._lua_pushboolean(L, d.forcible ? 1 : 0);
    return 3;
  },
  dict_op(L, vm, host) {
    const d = dictOf(host, vm, L);
    const op = vm.toString(L, 2);
    const api = vm.api;
    switch (op) {
      case 'ttl': {
        const key = dictKey(vm, L, 3);
        if (key === null) return pushFail(vm, L, 'nil key');
        key.bytes = vm.heap();
        const t = d.ttl(key);
        if (t === undefined) return pushFail(vm, L, d.err ?? 'not found');
        vm.pushNumber(L, t);
        return 1;
      }
      case 'expire': {
        const key = dictKey(vm, L, 3);
        if (key === null) return pushFail(vm, L, 'nil key');
        const exptime = optNumber(vm, L, 4, 0);
        key.bytes = vm.heap();
        const ok = d.expire(key, exptime);
        if (!ok) return pushFail(vm, L, d.err ?? 'not found');
        api._lua_pushboolean(L, 1);
        return 1;
      }
      case 'get_keys': {
        const keys = d.getKeyBytes(optNumber(vm, L, 3, 1024));
        api._lua_createtable(L, keys.length, 0);
        for (let i = 0; i < keys.length; i++) {
          vm.pushBytes(L, keys[i]!);
          vm.rawseti(L, -2, i + 1);
        }
        return 1;
      }
      case 'flush_expired':
        vm.pushInteger(L, d.flushExpired(optNumber(vm, L, 3, 0)));
        return 1;
      case 'flush_all':
        d.flushAll();
        return 0;
      case 'capacity':
        vm.pushInteger(L, d.capacity());
        return 1;
      case 'free_space':
        vm.pushInteger(L, d.freeSpace());
        return 1;
    }
    throw new LuaRaise(`unknown shared dict operation ${op}`);
  },
  status_get(L, vm, host) {
    const c = request(host);
    const s = c.phase === LuaPhase.HeaderFilter ? c.response!.status : c.phase === LuaPhase.Log ? c.log!.status || 499 : c.status;
    vm.pushInteger(L, s);
    return 1;
  },
  status_set(L, vm, host) {
    const c = request(host);
    if (c.phase === LuaPhase.HeaderFilter) throw new LuaRaise('ngx.status cannot be changed in header_filter (tidegate sends the upstream status)');
    if (c.phase === LuaPhase.Log) throw new LuaRaise('attempt to set ngx.status after sending out response headers');
    if (vm.api._lua_type(L, 1) !== LuaType.Number) throw new LuaRaise('ngx.status must be a number');
    const s = Math.trunc(vm.toNumber(L, 1));
    if (s < 200 || s > 999) throw new LuaRaise(`ngx.status: bad status ${s}`);
    c.status = s;
    return 0;
  },
  ctx_get(L, vm, host) {
    const req = request(host).req!;
    const api = vm.api;
    if (req.ctxRef === 0) {
      api._lua_createtable(L, 0, 4);
      api._lua_pushvalue(L, -1);
      req.ctxRef = api._luaL_ref(L, LUA_REGISTRYINDEX);
    } else {
      vm.rawgeti(L, LUA_REGISTRYINDEX, req.ctxRef);
    }
    return 1;
  },
  ctx_set(L, vm, host) {
    const req = request(host).req!;
    const api = vm.api;
    if (api._lua_type(L, 1) !== LuaType.Table) throw new LuaRaise('ngx.ctx must be a table');
    if (req.ctxRef !== 0) api._luaL_unref(L, LUA_REGISTRYINDEX, req.ctxRef);
    api._lua_pushvalue(L, 1);
    req.ctxRef = api._luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
  },
  tonumber(L, vm) {
    // The prelude's tonumber(s) for a string: the decimal forms, parsed here; anything
    // else returns nothing, and Lua's own conversion decides. Lua 5.4 in this build
    // parses a float with musl's exact strtod, ≈ 2 µs for "0.001"; JS's Number is as
    // exact (both round correctly) at a fraction of that.
    const p = vm.stringAt(L, 1);
    const n = vm.strLen;
    if (p === 0 || n > 64) return 0;
    const h = vm.heap();
    const end = p + n;
    let i = p;
    while (i < end && isSpace(h[i]!)) i++;
    const start = i;
    if (i < end && (h[i] === 0x2d || h[i] === 0x2b)) i++;
    let digits = 0;
    while (i < end && isDigit(h[i]!)) {
      i++;
      digits++;
    }
    let float = false;
    if (i < end && h[i] === 0x2e) {
      float = true;
      i++;
      while (i < end && isDigit(h[i]!)) {
        i++;
        digits++;
      }
    }
    if (digits === 0) return 0;
    if (i < end && (h[i]! | 0x20) === 0x65) {
      float = true;
      i++;
      if (i < end && (h[i] === 0x2d || h[i] === 0x2b)) i++;
      let exp = 0;
      while (i < end && isDigit(h[i]!)) {
        i++;
        exp++;
      }
      if (exp === 0) return 0;
    }
    const stop = i;
    while (i < end && isSpace(h[i]!)) i++;
    // Trailing bytes (hex, a NUL, words) and integers that may not fit a double exactly: Lua's rules.
    if (i !== end || (!float && digits > 15)) return 0;
    const v = Number(String.fromCharCode.apply(null, h.subarray(start, stop) as unknown as number[]));
    if (float) vm.api._lua_pushnumber(L, v);
    else vm.pushInteger(L, v);
    return 1;
  },
  json_decode(L, vm) {
    const s = keyArg(vm, L, 1);
    if (s === null) throw new LuaRaise('bad argument #1 to decode (string expected)');
    let v: unknown;
    try {
      v = JSON.parse(s);
    } catch (err) {
      throw new LuaRaise(`Expected a JSON value: ${(err as Error).message}`);
    }
    pushJson(vm, L, v, 1);
    return 1;
  },
};

/** C's isspace in the C locale, as Lua's conversions use it */
function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function decodeArg(s: string): string {
  const plus = s.replaceAll('+', ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}

export function ngxFunctions(vm: LuaVm): LuaFunctionTable {
  const api = vm.api;
  const exitToken = api._malloc(1);
  const names = Object.keys(impls);
  const pointers = names.map((name) => {
    const impl = impls[name]!;
    return api.addFunction((L: number): number => {
      let msg: string;
      try {
        return impl(L, vm, activeHost());
      } catch (err) {
        // Lua's own unwinding (a longjmp through these frames) is not an Error: let it pass.
        if (!(err instanceof Error)) throw err;
        if (err === EXIT) {
          api._lua_pushlightuserdata(L, exitToken);
          msg = '';
        } else {
          msg = err instanceof LuaRaise ? err.message : `tidegate: ${err.message}`;
        }
      }
      if (msg !== '') {
        api._luaL_where(L, 1);
        vm.pushString(L, msg);
        api._lua_concat(L, 2);
      }
      return api._lua_error(L);
    }, 'ii');
  });
  const hook = api.addFunction((L: number): void => {
    const host = activeHost();
    // The thread's own count: a coroutine hooked in an earlier call may differ from host.step.
    host.budget -= api._lua_gethookcount(L);
    if (host.budget >= 0) return;
    host.runaway = true;
    if (host.step !== 1) {
      // Every instruction from now on: a pcall in the script cannot swallow the limit.
      host.step = 1;
      api._lua_sethook(host.L, hook, 8, 1);
    }
    if (L !== host.L) api._lua_sethook(L, hook, 8, 1);
    api._luaL_where(L, 0);
    vm.pushString(L, `instruction limit exceeded (${host.call.script?.maxInstructions ?? 0} per call)`);
    api._lua_concat(L, 2);
    api._lua_error(L);
  }, 'vii');
  return { names, pointers, hook, tick: pointers[names.indexOf('tick')]!, exitToken };
}
