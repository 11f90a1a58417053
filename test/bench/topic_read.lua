-- wrk script: read a window of 10 messages from a topic,
-- GET /v1/topics/<MOM_TOPIC>/messages?from=OFFSET&max=10 with a bearer token.
-- With MOM_TOPIC_SIZE=N (messages already in the topic, N >= 10) each request
-- reads at an offset drawn from [0, N-10]; with N unset or < 10 every request
-- reads from=earliest. 256 requests are pre-built per thread in init() and
-- request() only cycles through them.
-- Inputs: env MOM_TOKEN, MOM_TOPIC (default "bench"), MOM_TOPIC_SIZE,
-- or args after "--": TOKEN [TOPIC [SIZE]].
-- Prints one "MOMBENCH ..." summary line from done() for run_bench.py.
-- SPDX-License-Identifier: MIT

local token = os.getenv("MOM_TOKEN") or ""
local topic = os.getenv("MOM_TOPIC") or "bench"
local size = tonumber(os.getenv("MOM_TOPIC_SIZE") or "0") or 0

local NREQ = 256
local reqs = {}
local next_req = 1
local threads = {}
local nthreads = 0

function setup(thread)
  nthreads = nthreads + 1
  thread:set("thread_no", nthreads)
  table.insert(threads, thread)
end

function init(args)
  if args[1] then token = args[1] end
  if args[2] then topic = args[2] end
  if args[3] then size = tonumber(args[3]) or 0 end
  -- thread_no is set by setup(); seed per thread so threads read different windows.
  math.randomseed(1000 + (thread_no or 0))
  local headers = { ["Authorization"] = "Bearer " .. token }
  local base = "/v1/topics/" .. topic .. "/messages?max=10&from="
  for i = 1, NREQ do
    local from = "earliest"
    if size >= 10 then from = tostring(math.random(0, size - 10)) end
    reqs[i] = wrk.format("GET", base .. from, headers)
  end
end

function request()
  local r = reqs[next_req]
  next_req = next_req + 1
  if next_req > NREQ then next_req = 1 end
  return r
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "MOMBENCH requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d " ..
    "socket_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50.0),
    latency:percentile(99.0), e.status, e.connect + e.read + e.write, e.timeout))
end
