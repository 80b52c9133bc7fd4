-- wrk script of bench/battles.py: POST /v1/battles, a duel of two random players per request,
-- the X-Api-Key rotating over the game keys given after "--" (one key is capped by the front
-- door's per-key quota). response() counts every answer that is not 202; done() prints one
-- line "WRK_JSON {...}" with the totals the benchmark parses.

local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

local keys, players, counter
not_202 = 0

function init(args)
  players = tonumber(args[1])
  keys = {}
  for i = 2, #args do
    table.insert(keys, args[i])
  end
  counter = 0
  math.randomseed(thread_no * 7919)
end

function request()
  counter = counter + 1
  local a = math.random(0, players - 1)
  local b = (a + math.random(1, players - 1)) % players
  local body = string.format('{"mode":"duel","sides":[["p%d"],["p%d"]]}', a, b)
  local headers = { ["Content-Type"] = "application/json", ["X-Api-Key"] = keys[counter % #keys + 1] }
  return wrk.format("POST", "/v1/battles", headers, body)
end

function response(status, headers, body)
  if status ~= 202 then
    not_202 = not_202 + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("not_202")
  end
  io.write(string.format('WRK_JSON {"requests":%d,"not_202":%d,"seconds":%.3f}\n',
    summary.requests, failed, summary.duration / 1e6))
end
