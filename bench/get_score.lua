-- wrk script of bench/get_score.py.
-- Mode "get_score" (first argument after --): POST /v1/get_score with a JSON body whose
-- user id and input vary per request; the second argument tags the run's user ids so the
-- benchmark can count exactly its own score_log rows; the third is the game's X-Api-Key
-- (get_score needs a caller).
-- Mode "health": GET /health through the same Lua path, so both runs pay the same client cost.
-- response() counts every answer that is not 2xx; done() prints one line "WRK_JSON {...}" with
-- the totals the benchmark parses.

local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

local mode, run_tag, counter
non_2xx = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  mode = args[1] or "get_score"
  run_tag = args[2] or "bench"
  if args[3] and args[3] ~= "" then
    headers["X-Api-Key"] = args[3]
  end
  counter = 0
end

function request()
  if mode == "health" then
    return wrk.format("GET", "/health")
  end
  counter = counter + 1
  local user_id = string.format("%s-%d-%d", run_tag, thread_no, counter % 10000)
  local input = (counter % 2001) - 1000 + 0.25
  local body = string.format('{"user_id":"%s","input":%.2f}', user_id, input)
  return wrk.format("POST", "/v1/get_score", headers, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local total_non_2xx = 0
  for _, thread in ipairs(threads) do
    total_non_2xx = total_non_2xx + thread:get("non_2xx")
  end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,'
      .. '"p99_us":%d,"max_us":%d,"mean_us":%.1f,"errors_connect":%d,"errors_read":%d,'
      .. '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"non_2xx":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, e.connect, e.read, e.write, e.status, e.timeout, total_non_2xx))
end
