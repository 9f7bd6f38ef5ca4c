-- The nginx-lua peer's log phase (autoscale.lua, _M.log) as a tidegate script: request
-- counts by status class and a latency sum per endpoint. tidegate has no
-- $upstream_addr or $upstream_response_time, so the endpoint is "none" (the bench has
-- one) and the latency is $request_time: the same two incr calls per request.
local counters = ngx.shared.tg_counters
local endpoint = ngx.var.upstream_addr or "none"
local status = ngx.var.status or "000"
counters:incr("req|" .. endpoint .. "|" .. status:sub(1, 1) .. "xx", 1, 0)
local rt = tonumber(ngx.var.upstream_response_time or ngx.var.request_time)
if rt then counters:incr("lat|" .. endpoint, rt, 0) end
