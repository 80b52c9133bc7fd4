-- wrk script of bench/battles.py: POST /v1/battles/batch with N duels of two random players
-- per request (N = 1: POST /v1/battles, one duel per request), the X-Api-Key rotating over the game keys given after "--" (one key is capped by the front
-- door's per-key quota). response() counts every answer that is not 202; done() prints one
-- line "WRK_JSON {...}" with the totals the benchmark parses.

local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

local keys, players, per_request, counter
not_202 = 0

function init(args)
  players = tonumber(args[1])
  per_request = tonumber(args[2])
  keys = {}
  for i = 3, #args do
    table.insert(keys, args[i])
  end
  counter = 0
  math.randomseed(thread_no * 7919)
end

local function duel()
  local a = math.random(0, players - 1)
  local b = (a + math.random(1, players - 1)) % players
  return string.format('{"mode":"duel","sides":[["p%d"],["p%d"]]}', a, b)
end

function request()
  counter = counter + 1
  local headers = { ["Content-Type"] = "application/json", ["X-Api-Key"] = keys[counter % #keys + 1] }
  if per_request == 1 then
    return wrk.format("POST", "/v1/battles", headers, duel())
  end
  local battles = {}
  for i = 1, per_request do
    battles[i] = duel()
  end
  local body = '{"battles":[' .. table.concat(battles, ",") .. ']}'
  return wrk.format("POST", "/v1/battles/batch", headers, body)
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
