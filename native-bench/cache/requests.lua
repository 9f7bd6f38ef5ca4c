-- wrk script of the cache scenario, and the run ends with one JSON line (the same
-- fields as load/wrk-report.lua). Without REQ_PATH each request asks for /obj/<k>, k
-- drawn from a Zipf distribution over ZIPF_N objects with exponent ZIPF_S (most popular
-- first). With REQ_PATH every request asks for that path, and with REQ_UNIQUE=1 for
-- <REQ_PATH>/<run>/<n>, a path no earlier request of any run or thread used.
local N = tonumber(os.getenv("ZIPF_N") or "10000")
local S = tonumber(os.getenv("ZIPF_S") or "1.0")
local fixed = os.getenv("REQ_PATH")
local unique = os.getenv("REQ_UNIQUE") == "1"
local run = ""
local n = 0
local threads = {}
local cdf = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  ok2xx = 0
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

function response(status, headers, body)
  if status >= 200 and status < 300 then ok2xx = ok2xx + 1 else non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  local bad, good = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
    good = good + t:get("ok2xx")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"ok2xx":%d,"non2xx":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes, good, bad,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
