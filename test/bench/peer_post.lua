-- wrk script for `make bench-peers`: one fixed POST per request, for peers
-- whose request is not momd's (RabbitMQ's HTTP API). Inputs (env):
-- PEER_PATH, PEER_BODY, PEER_AUTH (the Authorization header's value),
-- PEER_EMPTY (a body that means "nothing to get": such answers are counted).
-- Prints one "MOMBENCH ..." line like the other scripts.
-- SPDX-License-Identifier: MIT

local empty_body = os.getenv("PEER_EMPTY")
local threads = {}
empty = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.path = os.getenv("PEER_PATH") or "/"
  wrk.body = os.getenv("PEER_BODY") or ""
  wrk.headers["Content-Type"] = "application/json"
  local auth = os.getenv("PEER_AUTH")
  if auth then wrk.headers["Authorization"] = auth end
end

if empty_body then
  function response(status, headers, body)
    if body == empty_body then empty = empty + 1 end
  end
end

function done(summary, latency, requests)
  local n = 0
  for _, th in ipairs(threads) do n = n + (th:get("empty") or 0) end
  local e = summary.errors
  io.write(string.format(
    "MOMBENCH requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d " ..
    "socket_errors=%d timeouts=%d empty=%d\n",
    summary.requests, summary.duration, latency:percentile(50.0),
    latency:percentile(99.0), e.status, e.connect + e.read + e.write, e.timeout, n))
end
