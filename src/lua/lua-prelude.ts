// The Lua half of the `ngx` API, run once per Lua state (per config generation) with
// the table of C functions (src/lua/lua-ngx.ts) as its argument. What needs the
// request crosses into JS; argument shaping, constants and cjson.encode stay in Lua,
// where they cost no boundary crossing.
//
// The sandbox: no io, no debug (a script could remove the instruction hook), no
// package searchers (require knows cjson only), text chunks only in load, and os
// without the calls that touch the process or files.
export const PRELUDE = String.raw`
local tg = ...
local type, tostring, select, rawget, rawset, setmetatable, error, pairs, next =
      type, tostring, select, rawget, rawset, setmetatable, error, pairs, next
local concat, floor, format, gsub, byte, lower = table.concat, math.floor, string.format, string.gsub, string.byte, string.lower

local null = tg.null()
local ngx = {
  OK = 0, ERROR = -1, AGAIN = -2, DONE = -4, DECLINED = -5,
  STDERR = 0, EMERG = 1, ALERT = 2, CRIT = 3, ERR = 4, WARN = 5, NOTICE = 6, INFO = 7, DEBUG = 8,
  HTTP_CONTINUE = 100, HTTP_SWITCHING_PROTOCOLS = 101,
  HTTP_OK = 200, HTTP_CREATED = 201, HTTP_ACCEPTED = 202, HTTP_NO_CONTENT = 204, HTTP_PARTIAL_CONTENT = 206,
  HTTP_SPECIAL_RESPONSE = 300, HTTP_MOVED_PERMANENTLY = 301, HTTP_MOVED_TEMPORARILY = 302, HTTP_SEE_OTHER = 303,
  HTTP_NOT_MODIFIED = 304, HTTP_TEMPORARY_REDIRECT = 307, HTTP_PERMANENT_REDIRECT = 308,
  HTTP_BAD_REQUEST = 400, HTTP_UNAUTHORIZED = 401, HTTP_PAYMENT_REQUIRED = 402, HTTP_FORBIDDEN = 403,
  HTTP_NOT_FOUND = 404, HTTP_NOT_ALLOWED = 405, HTTP_NOT_ACCEPTABLE = 406, HTTP_REQUEST_TIMEOUT = 408,
  HTTP_CONFLICT = 409, HTTP_GONE = 410, HTTP_UPGRADE_REQUIRED = 426, HTTP_TOO_MANY_REQUESTS = 429,
  HTTP_CLOSE = 444, HTTP_ILLEGAL = 451, HTTP_INTERNAL_SERVER_ERROR = 500, HTTP_NOT_IMPLEMENTED = 501,
  HTTP_METHOD_NOT_IMPLEMENTED = 501, HTTP_BAD_GATEWAY = 502, HTTP_SERVICE_UNAVAILABLE = 503,
  HTTP_GATEWAY_TIMEOUT = 504, HTTP_VERSION_NOT_SUPPORTED = 505, HTTP_INSUFFICIENT_STORAGE = 507,
  null = null,
}

-- ngx.var.<name>: each read asks JS for that one variable.
ngx.var = setmetatable({}, { __index = tg.var_get, __newindex = tg.var_set })
-- ngx.header[name]: the response fields (what is set in access goes out with any response).
ngx.header = setmetatable({}, { __index = tg.header_get, __newindex = tg.header_set })

local function text(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" or t == "boolean" or t == "nil" then return tostring(v) end
  if v == null then return "null" end
  if t == "table" then
    local parts = {}
    for i = 1, #v do parts[i] = text(v[i]) end
    return concat(parts)
  end
  error("bad argument: a " .. t .. " cannot be output", 4)
end

local function args_text(...)
  local n = select("#", ...)
  if n == 1 then return text((...)) end
  local parts = {}
  for i = 1, n do parts[i] = text((select(i, ...))) end
  return concat(parts)
end

function ngx.print(...) return tg.write(args_text(...), false) end
function ngx.say(...) return tg.write(args_text(...), true) end
function ngx.flush() return 1 end
function ngx.exit(status) return tg.exit(status) end
function ngx.redirect(uri, status)
  status = status or 302
  if status ~= 301 and status ~= 302 and status ~= 303 and status ~= 307 and status ~= 308 then
    error("only ngx.HTTP_MOVED_TEMPORARILY, ngx.HTTP_MOVED_PERMANENTLY, ngx.HTTP_SEE_OTHER, ngx.HTTP_TEMPORARY_REDIRECT and ngx.HTTP_PERMANENT_REDIRECT are allowed", 2)
  end
  ngx.header["Location"] = uri
  return tg.exit(status)
end

function ngx.log(level, ...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do
    local v = (select(i, ...))
    local t = type(v)
    if t == "string" then parts[i] = v
    elseif t == "number" or t == "boolean" or t == "nil" then parts[i] = tostring(v)
    elseif v == null then parts[i] = "null"
    else error("bad argument #" .. (i + 1) .. " to 'log' (string, number, boolean or nil expected, got " .. t .. ")", 2) end
  end
  -- Not a tail call: tg.log finds the script's file and line two levels up.
  tg.log(level, concat(parts))
end

ngx.now = tg.now
ngx.time = tg.time
function ngx.update_time() end
function ngx.today() return os.date("%Y-%m-%d") end
function ngx.localtime() return os.date("%Y-%m-%d %H:%M:%S") end
function ngx.utctime() return os.date("!%Y-%m-%d %H:%M:%S") end
function ngx.http_time(sec) return os.date("!%a, %d %b %Y %H:%M:%S GMT", floor(sec)) end
function ngx.cookie_time(sec) return os.date("!%a, %d-%b-%y %H:%M:%S GMT", floor(sec)) end
ngx.get_phase = tg.phase
function ngx.is_subrequest() return false end

ngx.re = { find = tg.re_find }

local header_mt = {
  __index = function(t, k)
    if type(k) ~= "string" then return nil end
    local n = gsub(lower(k), "_", "-")
    if n ~= k then return rawget(t, n) end
  end,
}

ngx.req = {
  get_method = tg.req_get_method,
  get_headers = function(max, raw)
    local t = tg.req_get_headers(max or 100)
    if not raw then setmetatable(t, header_mt) end
    return t
  end,
  set_header = function(name, value) return tg.req_set_header(name, value) end,
  clear_header = function(name) return tg.req_set_header(name, nil) end,
  get_uri_args = function(max) return tg.req_get_uri_args(max or 100) end,
}

ngx.worker = { id = tg.worker_id, count = tg.worker_count, pid = tg.worker_pid, exiting = function() return false end }
ngx.config = { subsystem = "http", debug = false, ngx_lua_version = 10026, nginx_version = 1022001, prefix = tg.prefix }

-- ngx.shared.<dict>: one object per dictionary, holding the id JS gave it at [1]; the
-- hot methods are the C functions themselves (no Lua call in between).
local dop = tg.dict_op
local dict_methods = {
  get = tg.dict_get, get_stale = tg.dict_get_stale, set = tg.dict_set, safe_set = tg.dict_safe_set,
  add = tg.dict_add, safe_add = tg.dict_safe_add, replace = tg.dict_replace, incr = tg.dict_incr,
}
local dset = tg.dict_set
function dict_methods.delete(self, key) return dset(self, key, nil) end
function dict_methods.ttl(self, key) return dop(self, "ttl", key) end
function dict_methods.expire(self, key, exptime) return dop(self, "expire", key, exptime) end
function dict_methods.get_keys(self, max) return dop(self, "get_keys", max) end
function dict_methods.flush_expired(self, max) return dop(self, "flush_expired", max) end
function dict_methods.flush_all(self) return dop(self, "flush_all") end
function dict_methods.capacity(self) return dop(self, "capacity") end
function dict_methods.free_space(self) return dop(self, "free_space") end
local dict_mt = { __index = dict_methods }

-- Every dict object made is kept here too (out of scripts' reach, for the state's life):
-- JS knows them by address (lua-host.ts dictTables).
local dict_objects = {}
ngx.shared = setmetatable({}, {
  __index = function(t, name)
    local id = tg.dict_id(name)
    if id == nil then return nil end
    local d = dict_objects[id + 1]
    if d == nil then
      d = setmetatable({ id }, dict_mt)
      tg.dict_register(d, id)
      dict_objects[id + 1] = d
    end
    rawset(t, name, d)
    return d
  end,
})

-- ngx.status and ngx.ctx are per request: the ngx table holds neither, so its metatable sees every use.
setmetatable(ngx, {
  __index = function(_, k)
    if k == "status" then return tg.status_get() end
    if k == "ctx" then return tg.ctx_get() end
    if k == "headers_sent" then return false end
  end,
  __newindex = function(t, k, v)
    if k == "status" then return tg.status_set(v) end
    if k == "ctx" then return tg.ctx_set(v) end
    rawset(t, k, v)
  end,
})

-- cjson (lua-cjson's defaults): encode here, decode in JS (JSON.parse).
local cjson = { null = null, _NAME = "cjson", _VERSION = "2.1.0" }
local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["/"] = "\\/", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function escape_char(c) return escapes[c] or format("\\u%04x", byte(c)) end
local function encode_string(s) return '"' .. gsub(s, '[%c"\\/]', escape_char) .. '"' end

local encode_value
local function encode_table(t, depth, out)
  if depth > 1000 then error("Cannot serialise, excessive nesting (" .. depth .. ")", 0) end
  local max, count = 0, 0
  for k in pairs(t) do
    if type(k) == "number" and k > 0 and floor(k) == k then
      if k > max then max = k end
      count = count + 1
    else
      max = -1
      break
    end
  end
  if max > 0 then
    if max > count * 2 and max > 10 then error("Cannot serialise table: excessively sparse array", 0) end
    out[#out + 1] = "["
    for i = 1, max do
      if i > 1 then out[#out + 1] = "," end
      encode_value(t[i], depth + 1, out)
    end
    out[#out + 1] = "]"
    return
  end
  out[#out + 1] = "{"
  local first = true
  for k, v in pairs(t) do
    local tk = type(k)
    if tk == "number" then k = tostring(k) elseif tk ~= "string" then
      error("Cannot serialise table: table key must be a number or string", 0)
    end
    if not first then out[#out + 1] = "," end
    first = false
    out[#out + 1] = encode_string(k)
    out[#out + 1] = ":"
    encode_value(v, depth + 1, out)
  end
  out[#out + 1] = "}"
end

encode_value = function(v, depth, out)
  local t = type(v)
  if t == "string" then out[#out + 1] = encode_string(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then error("Cannot serialise number: must not be NaN or Infinity", 0) end
    out[#out + 1] = math.type(v) == "integer" and tostring(v) or format("%.14g", v)
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif v == nil or v == null then out[#out + 1] = "null"
  elseif t == "table" then encode_table(v, depth, out)
  else error("Cannot serialise " .. t .. ": type not supported", 0) end
end

function cjson.encode(v)
  local out = {}
  encode_value(v, 1, out)
  return concat(out)
end
cjson.decode = tg.json_decode
function cjson.new() return cjson end

-- The sandbox.
local loaded = { cjson = cjson, ["cjson.safe"] = cjson, string = string, table = table, math = math, utf8 = utf8, coroutine = coroutine, os = os }
function require(name)
  local m = loaded[name]
  if m == nil then error("module '" .. tostring(name) .. "' not found: tidegate scripts can require cjson and the standard libraries only", 2) end
  return m
end
for _, k in ipairs({ "execute", "exit", "remove", "rename", "tmpname", "getenv", "setlocale" }) do os[k] = nil end
io, debug, package, dofile, loadfile = nil, nil, nil, nil, nil
string.dump = nil
-- load: text only, and with the runaway checks compiled in as for the scripts; text the
-- rewrite cannot take runs hooked whenever it is called. env is passed on only when given
-- (an explicit nil would leave the chunk without globals).
local raw_load, instrument, tick, hook_on = load, tg.instrument, tg.tick, tg.hook_on
function load(chunk, name, mode, ...)
  if type(chunk) == "function" then
    -- a reader in a loop: count it from the start
    hook_on()
    local parts, reader = {}, chunk
    while true do
      local p = reader()
      if p == nil or p == "" then break end
      if type(p) ~= "string" then error("reader function must return a string", 2) end
      parts[#parts + 1] = p
    end
    chunk, name = concat(parts), name or "=(load)"
  end
  local f, err = raw_load(chunk, name, "t", ...)
  if not f or type(chunk) ~= "string" then return f, err end
  local checked = instrument(chunk)
  local make = checked and raw_load(checked, name or chunk, "t", ...)
  if make then return make(tick) end
  return function(...) hook_on() return f(...) end
end
-- tonumber: a string without a base goes to JS first (lua-ngx.ts: decimal forms, the
-- same value Lua gives, several times faster than this build's strtod), then to Lua's.
do
  local tonumber, fast = tonumber, tg.tonumber
  _G.tonumber = function(...)
    local v, base = ...
    if base == nil and type(v) == "string" then
      local n = fast(v)
      if n ~= nil then return n end
    end
    return (tonumber(...))
  end
end
function print(...) return ngx.log(ngx.NOTICE, ...) end
_G.ngx = ngx
_G.cjson = cjson
`;
