// Compiling without running, for the config check on the primary: the syntax error
// of a script, with its file and line, exactly as a worker's Lua would report it.
import { loadLuaVm } from './lua-vm.js';

export interface LuaCompileChecker {
  /** null, or "<file>:<line>: <what>" */
  check(file: string, source: string): string | null;
  close(): void;
}

export async function compileChecker(): Promise<LuaCompileChecker> {
  const vm = await loadLuaVm();
  const api = vm.api;
  const L = api._luaL_newstate();
  if (L === 0) throw new Error('Lua: cannot create a state (out of memory)');
  return {
    check(file, source) {
      const err = vm.load(L, source, `@${file}`);
      api._lua_settop(L, 0);
      return err;
    },
    close() {
      api._lua_close(L);
    },
  };
}
