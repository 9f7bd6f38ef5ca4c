-- content_by_lua: an endpoint that sets the global limit global-limit.lua reads.
-- PUT /limits?value=N stores N; GET answers the limit in force, as JSON.
-- Put it on a route only operators can reach (an ip-access or api-key policy).
--
--   routes:
--     - match: { path: /limits, pathType: exact }
--       lua: { content: examples/lua/set-limit.lua }
local cjson = require "cjson"
local config = ngx.shared.config

if ngx.req.get_method() == "PUT" then
  local value = tonumber(ngx.var.arg_value)
  if not value or value < 0 then
    ngx.status = ngx.HTTP_BAD_REQUEST
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode({ error = "value must be a number >= 0" }))
    return ngx.exit(ngx.HTTP_BAD_REQUEST)
  end
  local ok, err = config:set("global_limit", value)
  if not ok then
    ngx.log(ngx.ERR, "cannot store the limit: ", err)
    return ngx.exit(ngx.HTTP_INTERNAL_SERVER_ERROR)
  end
end

ngx.header["Content-Type"] = "application/json"
ngx.say(cjson.encode({ global_limit = config:get("global_limit") or 100 }))
