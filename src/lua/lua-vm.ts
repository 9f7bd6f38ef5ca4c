// Lua 5.4 (wasmoon's WebAssembly build) through its raw C API: the `_lua_*` exports of
// the Emscripten module, called directly. wasmoon's JS proxy objects cost ≈ 25 µs a call
// on this host against ≈ 3.6 µs raw, and they convert every value that crosses; here
// only what a script asks for crosses, as bytes in the module's memory.
//
// One module per thread, loaded on first use: a worker whose config has no Lua never
// imports wasmoon (the import below is dynamic and runs when a generation with Lua is
// built, never on the request path).
//
// Strings cross as UTF-8. Lua strings are bytes; a script's output or a header value
// that is not valid UTF-8 is sent with U+FFFD in place of the bad bytes.

/** The lua_* and luaL_* exports tidegate calls (pointers and lua_State* are numbers). */
export interface LuaRawApi {
  _luaL_newstate(): number;
  _lua_close(L: number): void;
  _luaL_openlibs(L: number): void;
  _luaL_loadbufferx(L: number, buf: number, size: number, name: number, mode: number): number;
  _lua_pcallk(L: number, nargs: number, nresults: number, msgh: number, ctx: number, k: number): number;
  _lua_settop(L: number, idx: number): void;
  _lua_gettop(L: number): number;
  _lua_type(L: number, idx: number): number;
  _lua_tolstring(L: number, idx: number, len: number): number;
  _lua_tonumberx(L: number, idx: number, isnum: number): number;
  _lua_toboolean(L: number, idx: number): number;
  _lua_touserdata(L: number, idx: number): number;
  _lua_topointer(L: number, idx: number): number;
  _lua_pushnil(L: number): void;
  _lua_pushnumber(L: number, n: number): void;
  _lua_pushinteger(L: number, ...n: (number | bigint)[]): void;
  _lua_pushlstring(L: number, s: number, len: number): number;
  _lua_pushboolean(L: number, b: number): void;
  _lua_pushlightuserdata(L: number, p: number): void;
  _lua_pushcclosure(L: number, fn: number, n: number): void;
  _lua_pushvalue(L: number, idx: number): void;
  _lua_createtable(L: number, narr: number, nrec: number): void;
  _lua_setfield(L: number, idx: number, k: number): void;
  _lua_getfield(L: number, idx: number, k: number): number;
  _lua_rawset(L: number, idx: number): void;
  _lua_rawget(L: number, idx: number): number;
  _lua_rawseti(L: number, idx: number, ...n: (number | bigint)[]): void;
  _lua_rawgeti(L: number, idx: number, ...n: (number | bigint)[]): number;
  _lua_next(L: number, idx: number): number;
  _lua_setmetatable(L: number, idx: number): number;
  _luaL_ref(L: number, t: number): number;
  _luaL_unref(L: number, t: number, ref: number): void;
  _lua_error(L: number): number;
  _luaL_where(L: number, lvl: number): void;
  _lua_concat(L: number, n: number): void;
  _lua_sethook(L: number, f: number, mask: number, count: number): void;
  _lua_gethookcount(L: number): number;
  _lua_gethookmask(L: number): number;
  _lua_setupvalue(L: number, funcindex: number, n: number): number;
  _lua_checkstack(L: number, n: number): number;
  _lua_getstack(L: number, level: number, ar: number): number;
  _malloc(n: number): number;
  _free(p: number): void;
  HEAPU8: Uint8Array;
  addFunction(fn: (...args: number[]) => number | void, signature: string): number;
}

export const LUA_REGISTRYINDEX = -1_001_000;
export const LUA_MULTRET = -1;
export const LUA_MASKCOUNT = 1 << 3;

export const enum LuaType {
  None = -1,
  Nil = 0,
  Boolean = 1,
  LightUserdata = 2,
  Number = 3,
  String = 4,
  Table = 5,
  Function = 6,
  Userdata = 7,
  Thread = 8,
}

export const enum LuaStatus {
  Ok = 0,
  Yield = 1,
  ErrRun = 2,
  ErrSyntax = 3,
  ErrMem = 4,
  ErrErr = 5,
}

const utf8 = new TextDecoder('utf-8');
const STRING_CACHE_SLOTS = 256;
const encoder = new TextEncoder();
/** BigInts of small integers, made once: lua_Integer arguments are BigInts, and most are small */
const SMALL_INTS = 1024;
const smallBigInts: readonly bigint[] = Array.from({ length: SMALL_INTS }, (_, i) => BigInt(i));
function big(v: number): bigint {
  return v >= 0 && v < SMALL_INTS ? smallBigInts[v]! : BigInt(v);
}

/**
 * The thread's Lua module with the conversions every caller needs. A lua_State lives
 * in this module's memory; many can (one per config generation).
 */
export class LuaVm {
  readonly api: LuaRawApi;
  /** lua_Integer is 64-bit: passed as a BigInt, or as two 32-bit halves by a build without WASM_BIGINT */
  private readonly bigint: boolean;
  private scratch: number;
  private scratchBytes: number;
  /** a size_t out-parameter for lua_tolstring */
  private readonly lenPtr: number;
  private readonly cstrings = new Map<string, number>();
  /** toString's cache of short ASCII strings: direct-mapped by address */
  private readonly cachedAt = new Int32Array(STRING_CACHE_SLOTS).fill(-1);
  private readonly cachedStrings: string[] = new Array<string>(STRING_CACHE_SLOTS).fill('');

  /** the module's memory as bytes, as last seen: see heap() */
  private heapView: Uint8Array;

  constructor(api: LuaRawApi) {
    this.api = api;
    this.heapView = api.HEAPU8;
    // A raw wasm export's length is its parameter count: (L, n) with BigInt, (L, lo, hi)
    // without; wasmoon 1.16 is built with BigInt (its wrapper's length is 0).
    this.bigint = api._lua_pushinteger.length !== 3;
    this.scratchBytes = 4096;
    this.scratch = api._malloc(this.scratchBytes);
    this.lenPtr = api._malloc(8);
  }

  /**
   * The module's memory as bytes. Growing the memory detaches the old buffer (its view
   * reads as empty), so the view is fetched again only then, not through the module's
   * property on every use. Call it after the last lua_* call that may allocate.
   */
  heap(): Uint8Array {
    const h = this.heapView;
    if (h.length !== 0) return h;
    return (this.heapView = this.api.HEAPU8);
  }

  /** A NUL-terminated copy of `s` in the module's memory, kept for the thread's life (field names, chunk names). */
  cstr(s: string): number {
    let p = this.cstrings.get(s);
    if (p === undefined) {
      const bytes = encoder.encode(s);
      p = this.api._malloc(bytes.length + 1);
      this.heap().set(bytes, p);
      this.heap()[p + bytes.length] = 0;
      this.cstrings.set(s, p);
    }
    return p;
  }

  private ensureScratch(n: number): void {
    if (n <= this.scratchBytes) return;
    this.api._free(this.scratch);
    this.scratchBytes = Math.max(n, this.scratchBytes * 2);
    this.scratch = this.api._malloc(this.scratchBytes);
  }

  /** Pushes a JS string as a Lua string (UTF-8). ASCII, the usual case, is copied without an encoder. */
  pushString(L: number, s: string): void {
    const n = s.length;
    this.ensureScratch(n * 3);
    const heap = this.heap();
    const at = this.scratch;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      heap[at + i] = c;
    }
    let len = n;
    if (i < n) len = i + encoder.encodeInto(s.slice(i), heap.subarray(at + i, at + this.scratchBytes)).written;
    this.api._lua_pushlstring(L, at, len);
  }

  /** Pushes raw bytes as a Lua string. */
  pushBytes(L: number, bytes: Uint8Array): void {
    this.ensureScratch(bytes.length);
    this.heap().set(bytes, this.scratch);
    this.api._lua_pushlstring(L, this.scratch, bytes.length);
  }

  /** Pushes a number as a Lua integer when it is one (so it prints as "5", like LuaJIT's numbers do), else as a float. */
  pushNumber(L: number, v: number): void {
    if (Number.isSafeInteger(v)) this.pushInteger(L, v);
    else this.api._lua_pushnumber(L, v);
  }

  pushInteger(L: number, v: number): void {
    if (this.bigint) this.api._lua_pushinteger(L, big(v));
    else this.api._lua_pushinteger(L, v | 0, Math.floor(v / 4294967296) | 0);
  }

  rawseti(L: number, idx: number, i: number): void {
    if (this.bigint) this.api._lua_rawseti(L, idx, big(i));
    else this.api._lua_rawseti(L, idx, i, 0);
  }

  rawgeti(L: number, idx: number, i: number): number {
    return this.bigint ? this.api._lua_rawgeti(L, idx, big(i)) : this.api._lua_rawgeti(L, idx, i, 0);
  }

  /** The string (or number, converted) at `idx`, or null for any other type. */
  toString(L: number, idx: number): string | null {
    const api = this.api;
    const p = api._lua_tolstring(L, idx, this.lenPtr);
    if (p === 0) return null;
    const heap = this.heap();
    const len = heap[this.lenPtr]! | (heap[this.lenPtr + 1]! << 8) | (heap[this.lenPtr + 2]! << 16) | (heap[this.lenPtr + 3]! << 24);
    if (len <= 32) {
      // Short strings (variable and header names, keys) are the same few on every
      // request, and Lua keeps one copy of each short string: the JS string made last
      // time from these bytes at this address is reused when the bytes still match
      // (compared, so an address reused by another string is caught).
      const slot = (p >>> 3) & (STRING_CACHE_SLOTS - 1);
      const hit = this.cachedStrings[slot]!;
      if (this.cachedAt[slot] === p && hit.length === len) {
        let i = 0;
        while (i < len && hit.charCodeAt(i) === heap[p + i]) i++;
        if (i === len) return hit;
      }
      let ascii = true;
      for (let i = 0; i < len; i++) if (heap[p + i]! > 0x7f) ascii = false;
      if (!ascii) return utf8.decode(heap.subarray(p, p + len));
      const s = String.fromCharCode.apply(null, heap.subarray(p, p + len) as unknown as number[]);
      this.cachedAt[slot] = p;
      this.cachedStrings[slot] = s;
      return s;
    }
    return utf8.decode(heap.subarray(p, p + len));
  }

  /** after stringAt: the string's length in bytes */
  strLen = 0;

  /**
   * The address in the module's memory of the string (or number, converted) at `idx`,
   * or 0 when it is neither; its length in `strLen`. Valid while the value stays on the
   * stack and nothing grows the module's memory (take heap() after the last lua_* call).
   */
  stringAt(L: number, idx: number): number {
    const api = this.api;
    const p = api._lua_tolstring(L, idx, this.lenPtr);
    if (p === 0) return 0;
    const heap = this.heap();
    this.strLen = heap[this.lenPtr]! | (heap[this.lenPtr + 1]! << 8) | (heap[this.lenPtr + 2]! << 16) | (heap[this.lenPtr + 3]! << 24);
    return p;
  }

  /** The scratch buffer's address after making it at least `n` bytes (may allocate: take addresses of Lua strings after). */
  scratchFor(n: number): number {
    this.ensureScratch(n);
    return this.scratch;
  }

  /** the scratch buffer's size in bytes */
  get scratchSize(): number {
    return this.scratchBytes;
  }

  /** Bytes of the string at `idx` (a copy), or null when it is not a string or number. */
  toBytes(L: number, idx: number): Uint8Array | null {
    const api = this.api;
    const p = api._lua_tolstring(L, idx, this.lenPtr);
    if (p === 0) return null;
    const heap = this.heap();
    const len = heap[this.lenPtr]! | (heap[this.lenPtr + 1]! << 8) | (heap[this.lenPtr + 2]! << 16) | (heap[this.lenPtr + 3]! << 24);
    return heap.slice(p, p + len);
  }

  toNumber(L: number, idx: number): number {
    return this.api._lua_tonumberx(L, idx, 0);
  }

  /** Loads `source` as a chunk named `name` ("@path" for a file) onto the stack; null, or the syntax error. */
  load(L: number, source: string, name: string): string | null {
    const bytes = encoder.encode(source);
    this.ensureScratch(bytes.length);
    this.heap().set(bytes, this.scratch);
    // Text only: binary chunks can crash the VM.
    const status = this.api._luaL_loadbufferx(L, this.scratch, bytes.length, this.cstr(name), this.cstr('t'));
    if (status === LuaStatus.Ok) return null;
    const msg = this.toString(L, -1) ?? 'unknown load error';
    this.api._lua_settop(L, -2);
    return msg;
  }
}

/** What the loaded module looks like from here (wasmoon 1.16: `LuaWasm.initialize()` → `{ module }`). */
interface WasmoonModule {
  LuaWasm: { initialize(): Promise<{ module: LuaRawApi }> };
}

type Exports = Record<string, unknown>;

/**
 * The module's own exports, called without the wrapper wasmoon's build puts on each
 * (an assertion that formats its message on every call, then `apply`): ≈ 65 against
 * ≈ 21 ns a call measured here. Only the wasm instance has them, so the instance is
 * caught as Emscripten instantiates it.
 * XXX: replaces WebAssembly.instantiate for the moment the module loads (this thread
 * only); it recognises Emscripten's import object and changes nothing else.
 */
async function instantiateCapturing(load: () => Promise<{ module: LuaRawApi }>): Promise<{ module: LuaRawApi; exports: Exports | null }> {
  type Instantiate = (...args: unknown[]) => Promise<{ instance?: { exports: Exports } }>;
  const wa = (globalThis as unknown as { WebAssembly: { instantiate: Instantiate } }).WebAssembly;
  const original = wa.instantiate;
  let exports: Exports | null = null;
  wa.instantiate = async (...args: unknown[]) => {
    const imports = args[1] as { env?: Record<string, unknown> } | undefined;
    const env = imports?.env;
    const ours = env?._emscripten_throw_longjmp !== undefined;
    let invoke: Invoke | null = null;
    if (ours && typeof env!.invoke_vii === 'function') {
      invoke = new Invoke();
      env!.invoke_vii = invoke.vii;
    }
    const r = await original.apply(wa, args);
    if (ours && r.instance !== undefined) {
      exports = r.instance.exports;
      invoke?.attach(exports);
    }
    return r;
  };
  try {
    const lw = await load();
    return { module: lw.module, exports };
  } finally {
    wa.instantiate = original;
  }
}

/**
 * Emscripten's `invoke_vii`, through which luaD_rawrunprotected (setjmp: every
 * lua_pcall) calls its function, as the module's glue has it but without the check
 * of its build: that one reads the function table (WebAssembly.Table.get, slow) on every
 * call to assert that its copy of the entry is current. Here the entry is read once:
 * the functions called this way are the module's own (never replaced; tidegate only
 * adds to the table). A longjmp arrives as a number thrown: the stack is restored
 * and setThrew(1, 0) records it, as the glue does.
 */
class Invoke {
  private table: { get(i: number): (a: number, b: number) => void } | null = null;
  private stackSave: () => number = () => 0;
  private stackRestore: (sp: number) => void = () => undefined;
  private setThrew: (threw: number, value: number) => void = () => undefined;
  private readonly entries = new Map<number, (a: number, b: number) => void>();

  attach(exports: Exports): void {
    this.table = exports.__indirect_function_table as Invoke['table'];
    this.stackSave = exports.stackSave as () => number;
    this.stackRestore = exports.stackRestore as (sp: number) => void;
    this.setThrew = exports.setThrew as (threw: number, value: number) => void;
  }

  readonly vii = (index: number, a: number, b: number): void => {
    const sp = this.stackSave();
    try {
      let f = this.entries.get(index);
      if (f === undefined) {
        f = this.table!.get(index);
        this.entries.set(index, f);
      }
      f(a, b);
    } catch (e) {
      this.stackRestore(sp);
      if (e !== (e as number) + 0) throw e;
      this.setThrew(1, 0);
    }
  };
}

/** The module's API with its raw exports in place of the wrapped ones, where there are. */
function rawApi(module: LuaRawApi, exports: Exports | null): LuaRawApi {
  if (exports === null) return module;
  const entries: [string, unknown][] = [];
  for (const key of Object.keys(module)) {
    if (!key.startsWith('_lua') && key !== '_malloc' && key !== '_free') continue;
    const raw = exports[key.slice(1)];
    entries.push([key, typeof raw === 'function' ? raw : (module as unknown as Record<string, unknown>)[key]]);
  }
  entries.push(['addFunction', module.addFunction.bind(module)]);
  // Made in one go: an object given its ≈ 150 properties one by one is left in V8's
  // dictionary mode, where every `api._lua_*` call is a hash lookup (≈ 10 ns each).
  const api = Object.fromEntries(entries);
  Object.defineProperty(api, 'HEAPU8', { get: () => module.HEAPU8 });
  return api as unknown as LuaRawApi;
}

let loading: Promise<LuaVm> | null = null;

/** The thread's Lua module, loaded once (0.1–0.6 s on a loaded 2-core host; off the request path). */
export function loadLuaVm(): Promise<LuaVm> {
  loading ??= (async () => {
    const wasmoon = (await import('wasmoon')) as unknown as WasmoonModule;
    const { module, exports } = await instantiateCapturing(() => wasmoon.LuaWasm.initialize());
    return new LuaVm(rawApi(module, exports));
  })();
  return loading;
}
