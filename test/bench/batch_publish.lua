-- wrk script: batch publish, MOM_BATCH (default 100) 100-byte messages per
-- request, POST /v1/queues/<MOM_QUEUE>/messages/batch with
-- {"messages":[{"body":"..."}, ...]} and "Authorization: Bearer <MOM_TOKEN>".
-- The request is built once per thread (static request: no Lua per request).
-- Inputs: env MOM_TOKEN, MOM_QUEUE (default "bench"), MOM_BATCH.
-- Prints one "MOMBENCH ..." summary line from done() for run_bench.py;
-- messages = requests x batch (wrk counts non-2xx answers separately and
-- run_bench.py reports them).
-- SPDX-License-Identifier: MIT

local token = os.getenv("MOM_TOKEN") or ""
local queue = os.getenv("MOM_QUEUE") or "bench"
local batch = tonumber(os.getenv("MOM_BATCH") or "") or 100

-- 100 bytes exactly, as publish.lua's body.
local BODY = string.sub(string.rep("mom-bench-payload-", 6), 1, 100)

function init(args)
  local item = '{"body":"' .. BODY .. '"}'
  local items = {}
  for i = 1, batch do items[i] = item end
  wrk.method = "POST"
  wrk.path = "/v1/queues/" .. queue .. "/messages/batch"
  wrk.body = '{"messages":[' .. table.concat(items, ",") .. ']}'
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "MOMBENCH requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d " ..
    "socket_errors=%d timeouts=%d batch=%d\n",
    summary.requests, summary.duration, latency:percentile(50.0),
    latency:percentile(99.0), e.status, e.connect + e.read + e.write, e.timeout, batch))
end
