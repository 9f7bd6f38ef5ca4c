-- wrk script: count every response whose status is not 2xx (wrk's own "Non-2xx or 3xx"
-- lets 3xx pass as success), and print one JSON line with everything the runner needs.
-- A peer that answers errors fast must show up as errors, not throughput.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  ok2xx = 0
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok2xx = ok2xx + 1
  else
    non2xx = non2xx + 1
  end
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
