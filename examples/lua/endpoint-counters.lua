-- access_by_lua: a request counter per endpoint (method and path), kept in a shared
-- dict that every worker increments, for dashboards and autoscalers to read
-- (tidegate: GET /v1/shared/endpoint_counters?key=GET%20/api/orders on the admin port).
--
--   shared: { endpoint_counters: { size: 1mb } }
--   policies: [ { lua: { access: examples/lua/endpoint-counters.lua } } ]
local counters = ngx.shared.endpoint_counters

local endpoint = ngx.var.request_method .. " " .. ngx.var.uri
local n, err = counters:incr(endpoint, 1, 0)
if not n then
  ngx.log(ngx.WARN, "cannot count ", endpoint, ": ", err)
  return
end
counters:incr("total", 1, 0)
