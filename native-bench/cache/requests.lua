-- wrk script of the cache scenario. Without REQ_PATH each request asks for /obj/<k>, k
-- drawn from a Zipf distribution over ZIPF_N objects with exponent ZIPF_S (most popular
-- first). With REQ_PATH every request asks for that path, and with REQ_UNIQUE=1 for
-- <REQ_PATH>/<run>/<n>, a path no earlier request of any run or thread used. Counting
-- and the JSON line at the end are load/wrk-report.lua's (WRK_REPORT: its path).
dofile(os.getenv("WRK_REPORT"))
local report_init = init
local N = tonumber(os.getenv("ZIPF_N") or "10000")
local S = tonumber(os.getenv("ZIPF_S") or "1.0")
local fixed = os.getenv("REQ_PATH")
local unique = os.getenv("REQ_UNIQUE") == "1"
local run = ""
local n = 0
local cdf = {}

function init(args)
  report_init(args)
  local sum = 0
  for k = 1, N do sum = sum + 1 / (k ^ S) end
  local acc = 0
  for k = 1, N do
    acc = acc + 1 / (k ^ S) / sum
    cdf[k] = acc
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1e6) + tonumber(tostring({}):sub(8), 16) % 100000)
  run = os.time() .. "-" .. math.random(1, 1000000000)
end

function request()
  if fixed then
    if not unique then return wrk.format("GET", fixed) end
    n = n + 1
    return wrk.format("GET", fixed .. "/" .. run .. "/" .. n)
  end
  local u = math.random()
  local lo, hi = 1, N
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return wrk.format("GET", "/obj/" .. lo)
end
