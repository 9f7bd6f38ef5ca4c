// The ngx API of src/lua on one Lua state, phase by phase, without a gateway: each
// script is compiled by the `lua` policy as a worker would, run against a synthetic
// request, and judged by what it did to the request (answer, headers, dictionaries).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SharedState } from '../../src/shm/shared-state.js';
import { SharedDicts } from '../../src/shm/shared-dicts.js';
import { LocalResponse, type AccessContext, type PolicyInstance } from '../../src/policies/policy.js';
import { loadLuaVm } from '../../src/lua/lua-vm.js';
import { LuaHost } from '../../src/lua/lua-host.js';
import { LuaContent, luaPolicy, type LuaEntryConfig } from '../../src/lua/lua-policy.js';
import { attachLuaReporting } from '../../src/lua/lua-report.js';
import { compileChecker } from '../../src/lua/lua-compile.js';
import { Errors } from '../../src/errors.js';

const vm = await loadLuaVm();
const shm = SharedState.create({ maxWorkers: 1, maxUpstreams: 1, maxEndpoints: 1, limiterSlots: 16, limiterPolicies: 1, sharedDictBytes: 64 * 1024 });
const dicts = SharedDicts.format(shm, [
  { name: 'counts', bytes: 32 * 1024 },
  { name: 'config', bytes: 32 * 1024 },
]);
const events: { level: string; event: string; fields: Record<string, unknown> }[] = [];
attachLuaReporting((level, event, fields) => events.push({ level, event, fields }), null);
const dir = mkdtempSync(join(tmpdir(), 'tidegate-lua-unit-'));

function newHost(): LuaHost {
  return new LuaHost(vm, { dicts, scheme: 'http', workerId: 0 });
}

let files = 0;
function script(source: string): { file: string; source: string } {
  const file = join(dir, `s${++files}.lua`);
  writeFileSync(file, source);
  return { file, source };
}

function policy(host: LuaHost, c: Partial<Record<'access' | 'header_filter' | 'log', string>>, maxInstructions = 1_000_000, routeIndex = 0): PolicyInstance {
  const config: LuaEntryConfig = {
    ...(c.access !== undefined ? { access: script(c.access) } : {}),
    ...(c.header_filter !== undefined ? { header_filter: script(c.header_filter) } : {}),
    ...(c.log !== undefined ? { log: script(c.log) } : {}),
    maxInstructions,
  };
  return luaPolicy.create(config, { shm: shm.buffer, maxWorkers: 1, routeIndex, routeName: 'r', policyIndex: 0, kindIndex: 0, tenants: null, plugins: new Map(), dicts, lua: host });
}

function request(over: Partial<AccessContext> = {}): AccessContext {
  return {
    method: 'GET',
    path: '/api/orders',
    query: 'a=1&b=two%20words&flag',
    host: 'Example.COM:8080',
    headers: ['host', 'Example.COM:8080', 'x-user-id', 'alice', 'accept', 'text/html', 'accept', 'application/json', 'cookie', 'sid=abc; theme=dark', 'x-forwarded-for', '10.0.0.9'],
    peer: '10.0.0.9',
    clientIp: '192.0.2.7',
    routeIndex: 0,
    routeName: 'r',
    responseHeaders: [],
    consumer: null,
    tenant: null,
    watched: null,
    ...over,
  };
}

const header = (pairs: readonly string[], name: string): string | undefined => {
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === name) return pairs[i + 1];
  return undefined;
};

test('ngx.var reads request values lazily; ngx.header and ngx.req.set_header edit both directions', () => {
  const host = newHost();
  const p = policy(
    host,
    {
      access: `
        ngx.header["X-Uri"] = ngx.var.uri
        ngx.header["X-Request-Uri"] = ngx.var.request_uri
        ngx.header["X-Args"] = ngx.var.args
        ngx.header.x_arg_b = ngx.var.arg_b
        ngx.header["X-Host"] = ngx.var.host
        ngx.header["X-User"] = ngx.var.http_x_user_id
        ngx.header["X-Accept"] = ngx.var.http_accept
        ngx.header["X-Cookie"] = ngx.var.cookie_theme
        ngx.header["X-Method"] = ngx.req.get_method() .. "/" .. ngx.var.request_method
        ngx.header["X-Addr"] = ngx.var.remote_addr
        ngx.header["X-Bin"] = #ngx.var.binary_remote_addr
        ngx.header["X-Missing"] = tostring(ngx.var.http_nope) .. tostring(ngx.var.no_such_variable)
        ngx.header["X-Multi"] = { "a", "b" }
        ngx.req.set_header("X-Added", "yes")
        ngx.req.set_header("Accept", nil)
      `,
    },
  );
  const ctx = request();
  assert.equal(p.access(ctx), null, 'nothing answered: the request goes on');
  const r = ctx.responseHeaders;
  assert.equal(header(r, 'x-uri'), '/api/orders');
  assert.equal(header(r, 'x-request-uri'), '/api/orders?a=1&b=two%20words&flag');
  assert.equal(header(r, 'x-args'), 'a=1&b=two%20words&flag');
  assert.equal(header(r, 'x-arg-b'), 'two%20words', 'ngx.header.x_arg_b: underscores become hyphens; $arg_ is not decoded');
  assert.equal(header(r, 'x-host'), 'example.com', '$host: lower case, no port');
  assert.equal(header(r, 'x-user'), 'alice');
  assert.equal(header(r, 'x-accept'), 'text/html, application/json');
  assert.equal(header(r, 'x-cookie'), 'dark');
  assert.equal(header(r, 'x-method'), 'GET/GET');
  assert.equal(header(r, 'x-addr'), '192.0.2.7');
  assert.equal(header(r, 'x-bin'), '4');
  assert.equal(header(r, 'x-missing'), 'nilnil');
  assert.deepEqual(
    r.filter((_, i) => i % 2 === 0 && r[i] === 'x-multi').length,
    2,
    'a table value sets several fields',
  );
  assert.equal(header(ctx.headers, 'x-added'), 'yes');
  assert.equal(header(ctx.headers, 'accept'), undefined, 'set_header(name, nil) clears every field of that name');
  host.close();
});

test('ngx.exit answers with its status and the output; ngx.OK goes on', () => {
  const host = newHost();
  const exit429 = policy(host, { access: 'ngx.header["Retry-After"] = 7; return ngx.exit(429)' });
  const ctx = request();
  const r = exit429.access(ctx);
  assert.ok(r instanceof LocalResponse);
  assert.equal(r.status, 429);
  assert.match(r.body, /^429 Too Many Requests/);
  assert.equal(header(ctx.responseHeaders, 'retry-after'), '7');
  const said = policy(host, { access: 'ngx.status = 403; ngx.say("no ", 1, " ", true); ngx.print({ "a", { "b" } }); return ngx.exit(ngx.HTTP_OK)' });
  const s = said.access(request());
  assert.ok(s instanceof LocalResponse);
  assert.equal(s.status, 403, 'output sent the status set before it');
  assert.equal(s.body, 'no 1 true\nab');
  assert.deepEqual(s.headers, ['content-type', 'text/plain; charset=utf-8']);
  assert.equal(policy(host, { access: 'return ngx.exit(ngx.OK)' }).access(request()), null);
  assert.equal(policy(host, { access: 'local ok = pcall(ngx.exit, 401)' }).access(request()) instanceof LocalResponse, true, 'an exit caught by pcall still answers');
  const redirect = policy(host, { access: 'return ngx.redirect("/login")' });
  const rc = request();
  const red = redirect.access(rc);
  assert.ok(red instanceof LocalResponse);
  assert.equal(red.status, 302);
  assert.equal(header(rc.responseHeaders, 'location'), '/login');
  host.close();
});

test('errors answer 500 TG_ERR_PLUGIN with the message and line; a runaway script is stopped, even one that catches the limit', () => {
  const host = newHost();
  events.length = 0;
  const boom = policy(host, { access: 'local x = 1\nerror("boom at two")\n' });
  assert.equal(boom.access(request()), Errors.PLUGIN);
  const e = events.find((x) => x.event === 'lua-error')!;
  assert.match(String(e.fields.error), /s\d+\.lua:2: boom at two/);
  assert.equal(e.fields.line, 2);
  assert.equal(e.fields.phase, 'access');
  assert.equal(e.fields.runaway, false);

  const nilCall = policy(host, { access: 'local t = nil\nreturn t.x' });
  assert.equal(nilCall.access(request()), Errors.PLUGIN);

  const spin = policy(host, { access: 'while true do end' }, 50_000);
  const t0 = performance.now();
  assert.equal(spin.access(request()), Errors.PLUGIN);
  assert.ok(performance.now() - t0 < 5_000, 'stopped');
  const r = events.filter((x) => x.event === 'lua-error').at(-1)!;
  assert.match(String(r.fields.error), /instruction limit exceeded/);
  assert.equal(r.fields.runaway, true);

  const sneaky = policy(host, { access: 'while true do pcall(function() while true do end end) end' }, 50_000);
  assert.equal(sneaky.access(request()), Errors.PLUGIN, 'a pcall around the loop does not keep it alive');
  const co = policy(host, { access: 'local f = coroutine.wrap(function() while true do end end)\nwhile true do pcall(f) end' }, 50_000);
  assert.equal(co.access(request()), Errors.PLUGIN, 'nor does a coroutine');

  // The state is sound afterwards: a normal script runs, with its full budget.
  const fine = policy(host, { access: 'local n = 0 for i = 1, 10000 do n = n + i end ngx.header["X-N"] = n' });
  const ctx = request();
  assert.equal(fine.access(ctx), null);
  assert.equal(header(ctx.responseHeaders, 'x-n'), '50005000');
  host.close();
});

test('ngx.shared: get/set/add/replace/delete/incr/ttl/expire/get_keys/flush_expired on the shared dictionaries', () => {
  const host = newHost();
  dicts.get('counts')!.flushAll();
  const p = policy(host, {
    access: `
      local d = ngx.shared.counts
      assert(ngx.shared.nope == nil)
      local out = {}
      local function put(k, a, b, c) out[#out + 1] = k .. "=" .. table.concat({ tostring(a), tostring(b), tostring(c) }, ",") end
      put("set", d:set("a", "x", 0, 5))
      put("get", d:get("a"))
      put("add", d:add("a", "y"))
      put("replace", d:replace("a", 12.5))
      put("get2", d:get("a"))
      put("incr-missing", d:incr("n", 1))
      put("incr-init", d:incr("n", 2, 10))
      put("incr", d:incr("n", 3))
      d:incr("a-str", 1, 0)
      d:set("s", "str")
      put("incr-str", d:incr("s", 1))
      put("ttl0", d:ttl("n"))
      put("expire", d:expire("n", 100))
      put("ttl", math.ceil(d:ttl("n")))
      put("delete", d:delete("a"))
      put("gone", d:get("a"))
      put("bool", d:set("b", true) and d:get("b"))
      put("badval", d:set("t", {}))
      put("nilkey", d:get(nil))
      local okz, errz = pcall(d.get, "a")
      put("zone", okz, errz and errz:find('bad "zone" argument', 1, true) ~= nil)
      local okf, errf = pcall(d.get, setmetatable({ 0 }, getmetatable(d)), "a")
      put("fake", okf, errf and errf:find('bad "zone" argument', 1, true) ~= nil)
      ngx.shared.counts = nil
      collectgarbage()
      put("again", ngx.shared.counts == d, ngx.shared.counts:get("b"))
      put("extra", d:get("b", true))
      local keys = d:get_keys(0)
      table.sort(keys)
      put("keys", table.concat(keys, "|"))
      put("flushed", d:flush_expired())
      ngx.header["X-Out"] = table.concat(out, ";")
    `,
  });
  const ctx = request();
  events.length = 0;
  assert.equal(p.access(ctx), null, JSON.stringify(events));
  const out = Object.fromEntries(header(ctx.responseHeaders, 'x-out')!.split(';').map((kv) => kv.split('=') as [string, string]));
  assert.equal(out.set, 'true,nil,false');
  assert.equal(out.get, 'x,5,nil', 'value and flags');
  assert.equal(out.add, 'false,exists,false');
  assert.equal(out.replace, 'true,nil,false');
  assert.equal(out.get2, '12.5,nil,nil');
  assert.equal(out['incr-missing'], 'nil,not found,nil');
  assert.equal(out['incr-init'], '12,nil,false');
  assert.equal(out.incr, '15,nil,false', 'integral numbers are Lua integers (print as LuaJIT numbers do)');
  assert.equal(out['incr-str'], 'nil,not a number,nil');
  assert.equal(out.ttl0, '0,nil,nil');
  assert.equal(out.expire, 'true,nil,nil');
  assert.equal(out.ttl, '100,nil,nil');
  assert.equal(out.gone, 'nil,nil,nil');
  assert.equal(out.bool, 'true,nil,nil');
  assert.equal(out.badval, 'false,bad value type,false');
  assert.equal(out.nilkey, 'nil,nil key,nil');
  assert.equal(out.zone, 'false,true,nil', 'd.get(key) (not d:get) is refused as OpenResty does');
  assert.equal(out.fake, 'false,true,nil', 'a table made to look like a dict object is refused');
  assert.equal(out.again, 'true,true,nil', 'a script that drops ngx.shared.counts gets the same object back');
  assert.equal(out.extra, 'true,nil,nil', 'an extra argument to get is ignored (it is not get_stale)');
  assert.equal(out.keys, 'a-str|b|n|s,nil,nil');
  assert.equal(dicts.get('counts')!.get('n'), 15, 'the JS side sees what Lua wrote');
  host.close();
});

test('ngx.shared keys and values are byte strings: binary and non-ASCII bytes round-trip unchanged and distinct keys stay distinct', () => {
  const host = newHost();
  const counts = dicts.get('counts')!;
  counts.flushAll();
  const p = policy(host, {
    access: `
      local d = ngx.shared.counts
      local bad = {}
      local function check(what, got, want) if got ~= want then bad[#bad + 1] = what .. ":" .. tostring(got and #got) end end
      local bin = "\\0\\255\\254\\128ab\\0c"
      local long = string.rep("\\200\\1", 40) .. "tail"
      -- two keys that are not UTF-8 and differ in one byte
      d:set("\\200\\1", "first")
      d:set("\\201\\1", "second")
      check("k1", d:get("\\200\\1"), "first")
      check("k2", d:get("\\201\\1"), "second")
      d:set("bin", bin)
      check("bin", d:get("bin"), bin)
      d:set(long, long, 100)
      check("long", d:get(long), long)
      check("stale", (d:get_stale(long)), long)
      if math.ceil(d:ttl(long) or -1) ~= 100 then bad[#bad + 1] = "ttl" end
      d:set("utf8", "h\\195\\169llo \\226\\130\\172")
      d:set("h\\195\\169", 1)
      d:incr("h\\195\\169", 2)
      local addr = ngx.var.binary_remote_addr
      d:set(addr, addr)
      check("addr", d:get(addr), addr)
      d:incr("\\255n", 1, 0)
      d:incr("\\255n", 1, 0)
      if d:get("\\255n") ~= 2 then bad[#bad + 1] = "incr" end
      if not d:add("\\202\\1", "x") or d:add("\\202\\1", "y") then bad[#bad + 1] = "add" end
      d:delete("\\201\\1")
      check("deleted", d:get("\\201\\1"), nil)
      check("kept", d:get("\\200\\1"), "first")
      local found = 0
      for _, k in ipairs(d:get_keys(0)) do if k == "\\200\\1" or k == long or k == addr or k == "\\255n" then found = found + 1 end end
      if found ~= 4 then bad[#bad + 1] = "keys:" .. found end
      ngx.header["X-Bad"] = table.concat(bad, " ")
    `,
  });
  const ctx = request();
  events.length = 0;
  assert.equal(p.access(ctx), null, JSON.stringify(events));
  assert.equal(header(ctx.responseHeaders, 'x-bad'), '', 'every value read back as the bytes written');
  assert.equal(counts.get('utf8'), 'héllo €', 'UTF-8 written by Lua reads as that text in JS');
  assert.equal(counts.get('hé'), 3, 'a UTF-8 key from Lua is the same key as the JS string');
  host.close();
});

test('ngx.shared and ngx.var still read the right bytes after the module\'s memory grows during a call', () => {
  const host = newHost();
  const before = vm.api.HEAPU8.length;
  const p = policy(host, {
    access: `
      local d = ngx.shared.counts
      d:set("grow-a", "before")
      local big = string.rep("ab", 24 * 1024 * 1024)
      d:set("grow-b", big:sub(1, 6) .. ngx.var.http_x_user_id)
      local big2 = big .. "c"
      ngx.header["X-Grow"] = d:get("grow-a") .. "," .. d:get("grow-b") .. "," .. #big2
    `,
  });
  const ctx = request();
  events.length = 0;
  assert.equal(p.access(ctx), null, JSON.stringify(events));
  assert.ok(vm.api.HEAPU8.length > before, 'the memory grew');
  assert.equal(header(ctx.responseHeaders, 'x-grow'), `before,ababab${'alice'},${48 * 1024 * 1024 + 1}`);
  host.close();
});

test('tonumber gives what Lua\'s own conversion gives (the decimal forms are parsed in JS); $request_time has millisecond resolution', () => {
  const host = newHost();
  const p = policy(host, {
    access: `
      local cases = { "0.001", "1", "-12", "+5", "007", "-0", "-0.0", "1.", ".5", "-.5", "1e5", "1E-3", "2.5e+2", " 42 ", "\\t3.25\\n",
        "123456789012345", "1234567890123456", "12345678901234567890", "9007199254740993.0", "1e400", "-1e400", "4.9e-324",
        "0x10", "0x1p4", "1e", "e1", ".", "-", "", "  ", "1 2", "1.5x", "inf", "nan", "1\\0", "0.1000000000000000055511151231257827",
        string.rep("1", 70) .. ".5" }
      local bad = {}
      for _, s in ipairs(cases) do
        local a = tonumber(s)
        local ok, b = pcall(function() return s * 1 end)
        if not ok then b = nil end
        local same = math.type(a) == math.type(b) and (a == nil or (a == b and 1 / a == 1 / b))
        if not same then bad[#bad + 1] = string.format("%q:%s/%s", s, tostring(a), tostring(b)) end
      end
      if tonumber(7) ~= 7 or tonumber("z", 36) ~= 35 or tonumber("10", 2) ~= 2 or tonumber(nil) ~= nil then bad[#bad + 1] = "other" end
      if pcall(tonumber) then bad[#bad + 1] = "no argument accepted" end
      ngx.header["X-Bad"] = table.concat(bad, " ")
    `,
    log: 'ngx.shared.counts:set("rt", ngx.var.request_time)',
  });
  const ctx = request();
  events.length = 0;
  assert.equal(p.access(ctx), null, JSON.stringify(events));
  assert.equal(header(ctx.responseHeaders, 'x-bad'), '');
  for (const [ms, want] of [[0, '0.000'], [5.6, '0.006'], [999.4, '0.999'], [999.6, '1.000'], [61_234.4, '61.234']] as const) {
    p.log!({ access: ctx, status: 200, durationMs: ms });
    assert.equal(dicts.get('counts')!.get('rt'), want, `${ms} ms`);
  }
  host.close();
});

test('ngx.ctx lives from access to header_filter to log; ngx.status and ngx.var.status per phase', () => {
  const host = newHost();
  const p = policy(host, {
    access: 'ngx.ctx.started = "yes"; ngx.ctx.n = 1',
    header_filter: 'ngx.ctx.n = ngx.ctx.n + 1; ngx.header["X-Ctx"] = ngx.ctx.started .. ngx.ctx.n .. ":" .. ngx.status; ngx.header["X-Powered-By"] = nil',
    log: 'ngx.shared.counts:set("log-seen", ngx.ctx.started .. (ngx.ctx.n + 1) .. ":" .. ngx.var.status .. ":" .. tostring(ngx.var.request_time ~= nil))',
  });
  const ctx = request();
  assert.equal(p.access(ctx), null);
  const upstream = [Buffer.from('content-type'), Buffer.from('text/plain'), Buffer.from('X-Powered-By'), Buffer.from('php')];
  assert.equal(p.response!({ access: ctx, status: 201, upstreamHeaders: upstream }), null);
  assert.equal(header(ctx.responseHeaders, 'x-ctx'), 'yes2:201');
  assert.equal(upstream.length, 2, "the upstream's field was removed");
  p.log!({ access: ctx, status: 201, durationMs: 12 });
  assert.equal(dicts.get('counts')!.get('log-seen'), 'yes3:201:true');
  // A second request starts with an empty ngx.ctx.
  const other = request();
  p.access(other);
  p.log!({ access: other, status: 0, durationMs: 1 });
  assert.equal(dicts.get('counts')!.get('log-seen'), 'yes2:499:true', 'status 0 (client gone) reads as 499');
  host.close();
});

test('ngx.say in header_filter and set_header in log are refused; ngx.exit with a status in header_filter too', () => {
  const host = newHost();
  const p = policy(host, { header_filter: 'ngx.say("x")', log: 'ngx.req.set_header("a", "b")' });
  const ctx = request();
  p.access(ctx);
  events.length = 0;
  assert.equal(p.response!({ access: ctx, status: 200, upstreamHeaders: [] }), Errors.PLUGIN);
  p.log!({ access: ctx, status: 200, durationMs: 1 });
  const errors = events.filter((e) => e.event === 'lua-error').map((e) => String(e.fields.error));
  assert.match(errors[0]!, /API disabled in the context of header_filter/);
  assert.match(errors[1]!, /API disabled in the context of log/);
  host.close();
});

test('ngx.re.find, cjson, ngx.req.get_headers / get_uri_args, ngx.log, time functions', () => {
  const host = newHost();
  events.length = 0;
  const p = policy(host, {
    access: `
      local cjson = require "cjson"
      local from, to = ngx.re.find("hello 1234 world", "[0-9]+", "jo")
      local cf, ct = ngx.re.find("Héllo WORLD", "world", "i")
      local ctx = { pos = 3 }
      local a1 = ngx.re.find("aXbXc", "X", "", ctx)
      local nf, nt = ngx.re.find("key=value", "(\\\\w+)=(\\\\w+)", "", nil, 2)
      local bad, err = ngx.re.find("x", "(", "")
      local h = ngx.req.get_headers()
      local args = ngx.req.get_uri_args()
      local decoded = cjson.decode('{"a":[1,2,{"b":null}],"s":"\\\\u00e9","t":true}')
      ngx.log(ngx.WARN, "warned ", 1, " ", nil)
      ngx.log(ngx.DEBUG, "dropped")
      ngx.header["X-Out"] = cjson.encode({
        re = { from, to }, ci = { cf, ct }, pos = ctx.pos, a1 = a1 or false, nth = { nf, nt }, bad = tostring(bad), err = err ~= nil,
        user = h.x_user_id, accept = h["Accept"], host = h.host,
        a = args.a, b = args.b, flag = args.flag,
        dec_a2 = decoded.a[2], dec_null = decoded.a[3].b == cjson.null, dec_s = decoded.s, dec_t = decoded.t,
        time_int = math.type(ngx.time()) == "integer", now_close = math.abs(ngx.now() - ngx.time()) < 2,
        http_time = ngx.http_time(0), phase = ngx.get_phase(), empty = cjson.encode({}), esc = cjson.encode("a/b\\n\\""),
      })
    `,
  });
  const ctx = request();
  assert.equal(p.access(ctx), null);
  const out = JSON.parse(header(ctx.responseHeaders, 'x-out')!) as Record<string, unknown>;
  assert.deepEqual(out.re, [7, 10]);
  assert.deepEqual(out.ci, [8, 12], 'byte positions in a UTF-8 subject');
  assert.equal(out.a1, 4);
  assert.equal(out.pos, 5, 'ctx.pos moves past the match');
  assert.deepEqual(out.nth, [5, 9]);
  assert.equal(out.bad, 'nil');
  assert.equal(out.err, true);
  assert.equal(out.user, 'alice', 'get_headers: h.x_user_id finds x-user-id');
  assert.deepEqual(out.accept, ['text/html', 'application/json']);
  assert.equal(out.host, 'Example.COM:8080');
  assert.equal(out.a, '1');
  assert.equal(out.b, 'two words');
  assert.equal(out.flag, true);
  assert.equal(out.dec_a2, 2);
  assert.equal(out.dec_null, true);
  assert.equal(out.dec_s, 'é');
  assert.equal(out.dec_t, true);
  assert.equal(out.time_int, true);
  assert.equal(out.now_close, true);
  assert.equal(out.http_time, 'Thu, 01 Jan 1970 00:00:00 GMT');
  assert.equal(out.phase, 'access');
  assert.equal(out.empty, '{}');
  assert.equal(out.esc, '"a\\/b\\n\\""');
  const logs = events.filter((e) => e.event === 'lua-log');
  assert.equal(logs.length, 1, 'DEBUG is dropped');
  assert.equal(logs[0]!.level, 'warn');
  assert.equal(logs[0]!.fields.message, 'warned 1 nil');
  assert.match(String(logs[0]!.fields.at), /s\d+\.lua:\d+/);
  host.close();
});

test('the sandbox: no io, debug, os.execute or require of other modules; globals stay in their script', () => {
  const host = newHost();
  const probe = policy(host, {
    access: `
      leaked = "mine"
      ngx.header["X-Sandbox"] = table.concat({ tostring(io), tostring(debug), tostring(os.execute), tostring(dofile), tostring(pcall(require, "socket")), tostring(os.time() > 0) }, ",")
    `,
  });
  const ctx = request();
  assert.equal(probe.access(ctx), null);
  assert.equal(header(ctx.responseHeaders, 'x-sandbox'), 'nil,nil,nil,nil,false,true');
  const other = policy(host, { access: 'ngx.header["X-Leak"] = tostring(leaked)' });
  const c2 = request();
  other.access(c2);
  assert.equal(header(c2.responseHeaders, 'x-leak'), 'nil', "another script does not see the first one's globals");
  host.close();
});

test('content scripts answer with their output, status and headers', () => {
  const host = newHost();
  const content = new LuaContent(host, { content: script('ngx.header["Content-Type"] = "application/json"\nngx.say(require("cjson").encode({ path = ngx.var.uri }))'), maxInstructions: 100_000 }, 'r');
  const ctx = request();
  const r = content.run(ctx);
  assert.ok(r instanceof LocalResponse);
  assert.equal(r.status, 200);
  assert.equal(r.body, '{"path":"\\/api\\/orders"}\n');
  assert.deepEqual(r.headers, [], 'the script set the content type');
  assert.equal(header(ctx.responseHeaders, 'content-type'), 'application/json');
  const empty = new LuaContent(host, { content: script('ngx.status = 204'), maxInstructions: 100_000 }, 'r');
  const e = empty.run(request());
  assert.ok(e instanceof LocalResponse);
  assert.equal(e.status, 204);
  assert.equal(e.body, '');
  host.close();
});

test('a retired state closes once its last request between phases is done', () => {
  const host = newHost();
  const p = policy(host, { access: 'ngx.ctx.x = 1', log: 'assert(ngx.ctx.x == 1)' });
  const ctx = request();
  p.access(ctx);
  host.retire();
  assert.equal(host.isClosed, false, 'a request is between its access and log phases');
  events.length = 0;
  p.log!({ access: ctx, status: 200, durationMs: 1 });
  assert.equal(events.filter((e) => e.event === 'lua-error').length, 0, 'its log phase ran on the state, with its ngx.ctx');
  assert.equal(host.isClosed, true);
  const idle = newHost();
  idle.retire();
  assert.equal(idle.isClosed, true, 'no request in flight: closed at once');
});

test('the config check compiler reports a syntax error with file and line', async () => {
  const checker = await compileChecker();
  try {
    assert.equal(checker.check('/x/good.lua', 'local a = 1\nreturn a'), null);
    assert.match(checker.check('/x/bad.lua', 'local a = 1\nif a then\n') ?? '', /^\/x\/bad\.lua:3: 'end' expected/);
  } finally {
    checker.close();
  }
});
