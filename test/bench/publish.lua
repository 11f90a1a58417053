-- wrk script: publish one 100-byte message per request to a queue,
-- POST /v1/queues/<MOM_QUEUE>/messages with "Authorization: Bearer <MOM_TOKEN>".
-- The request is built once per thread (static request: no Lua per request).
-- Also used for the baseline run (the baseline server answers any path).
-- Inputs: env MOM_TOKEN, MOM_QUEUE (default "bench"), MOM_LIMIT (see below),
-- or args after "--": TOKEN [QUEUE].
-- Prints one "MOMBENCH ..." summary line from done() for run_bench.py.
-- SPDX-License-Identifier: MIT

local token = os.getenv("MOM_TOKEN") or ""
local queue = os.getenv("MOM_QUEUE") or "bench"

-- 100 bytes exactly.
local BODY = string.sub(string.rep("mom-bench-payload-", 6), 1, 100)

local nthreads = 0

function setup(thread)
  nthreads = nthreads + 1
  thread:set("thread_no", nthreads)
end

function init(args)
  if args[1] then token = args[1] end
  if args[2] then queue = args[2] end
  wrk.method = "POST"
  wrk.path = "/v1/queues/" .. queue .. "/messages"
  wrk.body = BODY
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "text/plain"
end

-- Fill mode (MOM_LIMIT=N): each thread publishes exactly N messages, then only
-- sends a GET /healthz once a second per connection until wrk is stopped.
-- Off by default, so normal runs keep the static request path.
local limit = tonumber(os.getenv("MOM_LIMIT") or "")
if limit then
  local sent = 0
  local idle = nil
  local verified = false
  function request()
    -- wrk calls request() once on the first thread before it starts, only to
    -- inspect the request (script_verify_request); that call sends nothing.
    if thread_no == 1 and not verified then
      verified = true
      return wrk.request()
    end
    if sent < limit then
      sent = sent + 1
      return wrk.request()
    end
    if not idle then idle = wrk.format("GET", "/healthz") end
    return idle
  end
  function delay()
    if sent < limit then return 0 end
    return 1000
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "MOMBENCH requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d " ..
    "socket_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50.0),
    latency:percentile(99.0), e.status, e.connect + e.read + e.write, e.timeout))
end
