-- wrk script: publish one 100-byte message per request to a topic,
-- POST /v1/topics/<MOM_TOPIC>/messages with "Authorization: Bearer <MOM_TOKEN>".
-- The request is built once per thread (static request: no Lua per request).
-- Inputs: env MOM_TOKEN, MOM_TOPIC (default "bench"), or args after "--": TOKEN [TOPIC].
-- Prints one "MOMBENCH ..." summary line from done() for run_bench.py.
-- SPDX-License-Identifier: MIT

local token = os.getenv("MOM_TOKEN") or ""
local topic = os.getenv("MOM_TOPIC") or "bench"

-- 100 bytes exactly.
local BODY = string.sub(string.rep("mom-bench-payload-", 6), 1, 100)

function init(args)
  if args[1] then token = args[1] end
  if args[2] then topic = args[2] end
  wrk.method = "POST"
  wrk.path = "/v1/topics/" .. topic .. "/messages"
  wrk.body = BODY
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "text/plain"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "MOMBENCH requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d " ..
    "socket_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50.0),
    latency:percentile(99.0), e.status, e.connect + e.read + e.write, e.timeout))
end
