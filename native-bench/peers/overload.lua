-- Adaptive concurrency in Lua, the way an OpenResty user writes "autoscale Lua" for an
-- upstream that can be overloaded: one in-flight count and one limit in a
-- lua_shared_dict that every worker shares, a gradient step in the manner of Envoy's
-- adaptive concurrency filter on a 200 ms timer in worker 0, fed the upstream response
-- times that log_by_lua adds up, and priorities by location: /critical/ may fill the
-- whole limit, everything else half of it. Over its threshold a request is answered
-- 503 with Retry-After at once. The algorithm is the documented one (gradient =
-- minRTT × 1.25 / sample RTT, clamped 0.5–2; limit moves 0.2 of the way towards
-- gradient × limit + √(gradient × limit); no growth while under half the limit and
-- nothing shed), with the mean response time of the tick as its sample.
-- XXX: minRTT is the lowest tick mean seen, never re-measured: enough for a bench run of
-- seconds, not for an upstream whose latency without a queue changes.
local _M = {}

local dict = ngx.shared.tg_overload
local MIN, MAX, BUFFER, SMOOTHING, MIN_SAMPLES, BULK_SHARE = 2, 64, 0.25, 0.2, 10, 0.5

function _M.init()
  dict:set("limit", MIN)
  dict:set("inflight", 0)
end

local function step()
  local n = dict:get("n") or 0
  if n < MIN_SAMPLES then return end
  local sum = dict:get("sum") or 0
  -- incr by the negative amount: what other workers add meanwhile is kept for the next tick
  dict:incr("n", -n, 0)
  dict:incr("sum", -sum, 0)
  local shed = dict:get("shed") or 0
  dict:incr("shed", -shed, 0)
  local rtt = sum / n
  local minrtt = dict:get("minrtt")
  if not minrtt or rtt < minrtt then
    minrtt = rtt
    dict:set("minrtt", minrtt)
  end
  local limit = dict:get("limit") or MIN
  local g = minrtt * (1 + BUFFER) / rtt
  if g < 0.5 then g = 0.5 elseif g > 2 then g = 2 end
  local target = g * limit + math.sqrt(g * limit)
  if (dict:get("inflight") or 0) < limit / 2 and shed == 0 then target = limit end
  limit = limit + SMOOTHING * (target - limit)
  if limit < MIN then limit = MIN elseif limit > MAX then limit = MAX end
  dict:set("limit", limit)
end

function _M.init_worker()
  if ngx.worker.id() == 0 then ngx.timer.every(0.2, step) end
end

function _M.access()
  local limit = dict:get("limit") or MIN
  local threshold = limit
  if ngx.var.uri:sub(1, 10) ~= "/critical/" then threshold = math.max(1, math.floor(limit * BULK_SHARE)) end
  local inflight = dict:incr("inflight", 1, 0)
  if inflight > threshold then
    dict:incr("inflight", -1, 0)
    dict:incr("shed", 1, 0)
    ngx.header["Retry-After"] = 1
    return ngx.exit(503)
  end
  ngx.ctx.counted = true
end

function _M.log()
  if not ngx.ctx.counted then return end
  dict:incr("inflight", -1, 0)
  local rt = tonumber(ngx.var.upstream_response_time)
  if rt then
    dict:incr("sum", rt, 0)
    dict:incr("n", 1, 0)
  end
end

return _M
