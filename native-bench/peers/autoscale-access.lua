-- The nginx-lua peer's access phase (autoscale.lua, _M.access) as a tidegate script for
-- the tidegate-lua peer: a GCRA limit per key in ngx.shared.tg_limits with get + set
-- (the same non-atomic pair the OpenResty code does). Unchanged but for configure():
-- tidegate has no init phase, so the bench writes the rate and burst into the two lines below.
local emission_interval = 1 / {{RATE}}
local tolerance = {{BURST}} * emission_interval

local limits = ngx.shared.tg_limits
local key = ngx.var.http_x_user_id or ngx.var.binary_remote_addr
local now = ngx.now()
local tat = limits:get(key)
if not tat or tat < now then tat = now end
local new_tat = tat + emission_interval
local allow_at = new_tat - tolerance
if allow_at > now then
  ngx.header["Retry-After"] = math.ceil(allow_at - now)
  ngx.shared.tg_counters:incr("rejected", 1, 0)
  return ngx.exit(429)
end
limits:set(key, new_tat, math.ceil(tolerance) + 1)
