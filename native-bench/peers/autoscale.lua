-- The "autoscale Lua" policy as OpenResty users write it (cf. lua-resty-limit-traffic's
-- limit.req and nginx-lua-prometheus): a GCRA rate limit per key in a lua_shared_dict,
-- per-endpoint request/status/latency counters, and a Prometheus /metrics endpoint.
local _M = {}

local limits = ngx.shared.tg_limits
local counters = ngx.shared.tg_counters
local ngx_now = ngx.now
local ngx_var = ngx.var

local emission_interval -- seconds per request
local tolerance         -- seconds of burst
local key_header

function _M.configure(opts)
  emission_interval = 1 / opts.rate
  tolerance = opts.burst * emission_interval
  key_header = "http_" .. opts.key_header:gsub("-", "_")
end

-- GCRA: one "theoretical arrival time" per key. get+set is not atomic across workers —
-- the same compromise lua-resty-limit-traffic makes — so a burst may overshoot slightly.
function _M.access()
  local key = ngx_var[key_header] or ngx_var.binary_remote_addr
  local now = ngx_now()
  local tat = limits:get(key)
  if not tat or tat < now then tat = now end
  local new_tat = tat + emission_interval
  local allow_at = new_tat - tolerance
  if allow_at > now then
    ngx.header["Retry-After"] = math.ceil(allow_at - now)
    counters:incr("rejected", 1, 0)
    return ngx.exit(429)
  end
  limits:set(key, new_tat, math.ceil(tolerance) + 1)
end

-- Per-endpoint counters: requests, status class, upstream latency sum (seconds).
function _M.log()
  local endpoint = ngx_var.upstream_addr or "none"
  local status = ngx_var.status or "000"
  counters:incr("req|" .. endpoint .. "|" .. status:sub(1, 1) .. "xx", 1, 0)
  local rt = tonumber(ngx_var.upstream_response_time)
  if rt then counters:incr("lat|" .. endpoint, rt, 0) end
end

function _M.metrics()
  local out = {
    "# TYPE tidegate_lua_requests_total counter",
  }
  local lat = { "# TYPE tidegate_lua_upstream_seconds_total counter" }
  for _, k in ipairs(counters:get_keys(0)) do
    local v = counters:get(k)
    local kind, endpoint, class = k:match("^(%a+)|([^|]+)|?(.*)$")
    if kind == "req" then
      out[#out + 1] = string.format('tidegate_lua_requests_total{endpoint="%s",class="%s"} %d', endpoint, class, v)
    elseif kind == "lat" then
      lat[#lat + 1] = string.format('tidegate_lua_upstream_seconds_total{endpoint="%s"} %.6f', endpoint, v)
    end
  end
  out[#out + 1] = "# TYPE tidegate_lua_rejected_total counter"
  out[#out + 1] = "tidegate_lua_rejected_total " .. (counters:get("rejected") or 0)
  ngx.header["Content-Type"] = "text/plain; version=0.0.4"
  ngx.say(table.concat(out, "\n"))
  ngx.say(table.concat(lat, "\n"))
end

return _M
