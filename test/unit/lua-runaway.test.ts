// The runaway protection of src/lua: countdowns compiled into scripts (lua-instrument.ts)
// turn the instruction-count hook on only once a call has looped, so every way a script
// can run forever — a loop, a goto, a call in a loop, recursion, a callback, code made
// with load, a function made by an earlier call — must still end in 500 TG_ERR_PLUGIN,
// and what the rewrite touches (line numbers, labels, strings and comments) must behave
// as the script was written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedState } from '../../src/shm/shared-state.js';
import { SharedDicts } from '../../src/shm/shared-dicts.js';
import type { AccessContext, PolicyInstance } from '../../src/policies/policy.js';
import { loadLuaVm } from '../../src/lua/lua-vm.js';
import { LuaHost } from '../../src/lua/lua-host.js';
import { luaPolicy } from '../../src/lua/lua-policy.js';
import { attachLuaReporting } from '../../src/lua/lua-report.js';
import { instrument } from '../../src/lua/lua-instrument.js';
import { Errors } from '../../src/errors.js';

const vm = await loadLuaVm();
const shm = SharedState.create({ maxWorkers: 1, maxUpstreams: 1, maxEndpoints: 1, limiterSlots: 16, limiterPolicies: 1, sharedDictBytes: 64 * 1024 });
const dicts = SharedDicts.format(shm, [{ name: 'counts', bytes: 32 * 1024 }]);
const events: { event: string; fields: Record<string, unknown> }[] = [];
attachLuaReporting((_level, event, fields) => events.push({ event, fields }), null);
const host = new LuaHost(vm, { dicts, scheme: 'http', workerId: 0 });

let files = 0;
let routes = 0;
function policy(source: string, maxInstructions = 50_000): PolicyInstance {
  return luaPolicy.create(
    { access: { file: `/scripts/r${++files}.lua`, source }, maxInstructions },
    { shm: shm.buffer, maxWorkers: 1, routeIndex: ++routes, routeName: 'r', policyIndex: 0, kindIndex: 0, tenants: null, plugins: new Map(), dicts, lua: host },
  );
}

function request(): AccessContext {
  return { method: 'GET', path: '/', query: '', host: 'h', headers: ['host', 'h'], peer: '127.0.0.1', clientIp: '127.0.0.1', routeIndex: 0, routeName: 'r', responseHeaders: [], consumer: null, tenant: null, watched: null };
}

const header = (ctx: AccessContext, name: string): string | undefined => {
  const p = ctx.responseHeaders;
  for (let i = 0; i < p.length; i += 2) if (p[i] === name) return p[i + 1];
  return undefined;
};

/** Runs the script once: its answer, what it set as X-R, and the last lua-error it logged. */
function run(p: PolicyInstance): { answer: unknown; r: string | undefined; error: Record<string, unknown> | undefined; ms: number } {
  events.length = 0;
  const ctx = request();
  const t0 = performance.now();
  const answer = p.access(ctx);
  return { answer, r: header(ctx, 'x-r'), error: events.filter((e) => e.event === 'lua-error').at(-1)?.fields, ms: performance.now() - t0 };
}

function assertStopped(source: string, what: string): void {
  const out = run(policy(source));
  assert.equal(out.answer, Errors.PLUGIN, `${what}: answered 500 TG_ERR_PLUGIN`);
  assert.equal(out.error?.runaway, true, `${what}: stopped as a runaway (${String(out.error?.error)})`);
  assert.match(String(out.error?.error), /instruction limit exceeded/, what);
  assert.ok(out.ms < 5_000, `${what}: stopped in ${out.ms} ms`);
  // The hook is off again between calls.
  assert.equal(vm.api._lua_gethookmask(host.L), 0, `${what}: no hook left set`);
}

test('every way of running forever is stopped by the instruction limit', { timeout: 60_000 }, () => {
  assertStopped('while true do end', 'while loop');
  assertStopped('repeat local x = 1 until false', 'repeat loop');
  assertStopped('for i = 1, math.huge do end', 'numeric for');
  assertStopped('local function it() return 1 end\nfor _ in it do end', 'generic for');
  assertStopped('::top:: local x = 1 goto top', 'goto');
  assertStopped('local function spin() while true do end end\nfor i = 1, 10 do spin() end', 'a runaway inside a function called in a loop');
  assertStopped('local function r(n) return r(n + 1) end\nr(1)', 'tail recursion');
  assertStopped('local t = {} t.m = function(self, n) if n > 0 then return self:m(n + 1) end end\nt:m(1)', 'method recursion');
  assertStopped('string.gsub(string.rep("a", 10), "a", function() while true do end end)', 'a callback from C');
  assertStopped('local t = {} for i = 1, 100 do t[i] = i end\ntable.sort(t, function(a, b) while true do end end)', 'a sort comparator');
  assertStopped('load("while true do end")()', 'code made with load');
  assertStopped('local f = load(function() return nil end)\nlocal g = load("local n = ... while true do n = n + 1 end")\ng(1)', 'load with arguments');
  assertStopped('while true do pcall(function() while true do end end) end', 'a pcall around the limit');
  assertStopped('local f = coroutine.wrap(function() while true do end end)\nwhile true do pcall(f) end', 'a coroutine');
  assertStopped('local co = coroutine.wrap(function() local n = 0 while true do n = n + 1 end end)\nco()', 'a coroutine that spins');
});

test('a function made by an earlier call (holding that call\'s countdown) is still stopped', { timeout: 60_000 }, () => {
  const p = policy('if spin == nil then\n  spin = function() local n = 0 while true do n = n + 1 end end\n  ngx.header["X-R"] = "made"\nelse\n  spin()\nend');
  const first = run(p);
  assert.equal(first.answer, null);
  assert.equal(first.r, 'made');
  const second = run(p);
  assert.equal(second.answer, Errors.PLUGIN);
  assert.equal(second.error?.runaway, true);
});

test('the budget is counted once the hook is on: long work under it runs, over it stops', { timeout: 60_000 }, () => {
  const under = run(policy('local n = 0 for i = 1, 20000 do n = n + i end ngx.header["X-R"] = n', 1_000_000));
  assert.equal(under.answer, null);
  assert.equal(under.r, '200010000');
  const over = run(policy('local n = 0 for i = 1, 2000000 do n = n + i end ngx.header["X-R"] = n', 1_000_000));
  assert.equal(over.answer, Errors.PLUGIN);
  assert.equal(over.error?.runaway, true);
  // Small budgets start the hook after a thousandth of them in checks.
  const small = run(policy('local n = 0 for i = 1, 5000 do n = n + i end', 1_000));
  assert.equal(small.answer, Errors.PLUGIN);
});

test('scripts behave as written: labels, strings, comments, numbers, line numbers, load', () => {
  const p = policy(`-- a comment with do and function( in it
local s = "while true do end" .. 'repeat' .. [[function() goto x]] .. [==[ ]] do ]==]
--[[ a long comment: while true do
end ]]
local n = 0
for i = 1, 10 do
  if i % 2 == 0 then goto continue end
  local odd = i
  n = n + odd
  ::continue::
end
local e = 1e-1 + 0x1p-1 + .5e+1
local t = { do_it = function(self) return self.repeat_n end, repeat_n = 3 }
local function add(a, b) return a + b end
local f = function(...) return select("#", ...) end
local g = load("return math.pi > 3 and ...")
local h = load("return x", "=h", "t", { x = 7 })
local m = load(coroutine.wrap(function() coroutine.yield("return ") coroutine.yield("40 + 2") end))
ngx.header["X-R"] = table.concat({ #s, n, e, t:do_it(), add(1, 2), f(1, nil, 3), tostring(g("ok")), h(), m() }, ",")
`);
  const out = run(p);
  assert.equal(out.answer, null, String(out.error?.error));
  assert.equal(out.r, '47,25,5.6,3,3,3,ok,7,42');

  // Errors keep their lines, in the script and in code made with load.
  const err = run(policy('local a = 1\nlocal function f()\n  error("boom")\nend\nfor i = 1, 3 do\n  f()\nend'));
  assert.equal(err.answer, Errors.PLUGIN);
  assert.match(String(err.error?.error), /r\d+\.lua:3: boom/);
  assert.equal(err.error?.runaway, false);
  const loaded = run(policy('local f = load("local x = 1\\nwhile x do\\n  x = nil .. 1\\nend", "=chunk")\nf()'));
  assert.match(String(loaded.error?.error), /chunk:3: attempt to concatenate a nil value/);

  // A top-level `...` is empty, as before the rewrite.
  const dots = run(policy('ngx.header["X-R"] = select("#", ...)'));
  assert.equal(dots.r, '0');
});

test('the rewrite keeps every line where it was and leaves what it cannot read to the compiler', () => {
  const src = 'local a = 1\nwhile a < 3 do\n  a = a + 1\nend\nrepeat a = a - 1 until a == 0\n::l:: if a > 0 then goto l end\nlocal function f(x) return x end\n';
  const out = instrument(src, 10)!;
  assert.equal(out.split('\n').length, src.split('\n').length + 1, 'one line more: the wrapper\'s end');
  const lines = out.split('\n');
  assert.match(lines[1]!, /^while a < 3 do __tidegate_n = __tidegate_n - 1/);
  assert.match(lines[5]!, /then  __tidegate_n = .* end goto l end/);
  assert.equal(instrument('local s = "unterminated', 10), null);
  assert.equal(instrument('--[[ never closed', 10), null);
  assert.equal(instrument('local s = [==[ never closed ]=]', 10), null);
});
