-- access_by_lua: one limit for every user, read from a shared dict on each request, and
-- each user's requests counted in a window of 60 s. Operators change the limit at run
-- time by writing "global_limit" (set-limit.lua below does it over HTTP); until then
-- the default holds. Over the limit: 429 with Retry-After.
--
--   shared: { config: { size: 64kb }, user_counts: { size: 1mb } }
--   policies: [ { lua: { access: examples/lua/global-limit.lua } } ]
--
-- Adapted from the article's snippet: its counter was a get followed by a set, which
-- two workers can interleave; incr with an initial value and TTL counts atomically in
-- both OpenResty and tidegate.
local config = ngx.shared.config
local counts = ngx.shared.user_counts

local WINDOW = 60
local limit = config:get("global_limit") or 100

local user = ngx.var.http_x_user_id
if not user or user == "" then
  user = ngx.var.remote_addr
end

local count, err = counts:incr(user, 1, 0, WINDOW)
if not count then
  ngx.log(ngx.ERR, "cannot count requests of ", user, ": ", err)
  return ngx.exit(ngx.HTTP_INTERNAL_SERVER_ERROR)
end

ngx.header["X-RateLimit-Limit"] = limit
if count > limit then
  local ttl = counts:ttl(user) or WINDOW
  ngx.header["Retry-After"] = math.max(1, math.ceil(ttl))
  ngx.header["X-RateLimit-Remaining"] = 0
  return ngx.exit(ngx.HTTP_TOO_MANY_REQUESTS)
end
ngx.header["X-RateLimit-Remaining"] = limit - count
