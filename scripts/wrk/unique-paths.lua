-- wrk request script: every request a path no earlier request (of any run) used, so a
-- caching route sees only first requests of fresh keys: /u/<start time>-<random>/<n>.
local n = 0
local prefix = ""

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  prefix = os.time() .. "-" .. math.random(1, 1000000000)
end

function request()
  n = n + 1
  return wrk.format(nil, "/u/" .. prefix .. "/" .. n)
end
