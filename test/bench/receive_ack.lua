-- wrk script: competing-consumer loop, one "pair" = one receive + one ack.
-- A connection asks for a receipt with POST /v1/queues/<Q>/receive?max=1;
-- response() pulls the receipt out of the JSON reply and queues it; the next
-- request() of any connection of this thread acks it with
-- DELETE /v1/queues/<Q>/messages/<receipt>. An empty receive (queue drained)
-- is counted and the connection simply receives again.
-- Counters are thread globals read back in done() through thread:get().
-- Inputs: env MOM_TOKEN, MOM_QUEUE (default "bench"), or args after "--": TOKEN [QUEUE].
-- Prints one "MOMBENCH ..." line; pairs = acks answered 204.
-- SPDX-License-Identifier: MIT

local token = os.getenv("MOM_TOKEN") or ""
local queue = os.getenv("MOM_QUEUE") or "bench"

-- Per-thread counters (globals so thread:get() can read them).
receives = 0     -- 200 with a receipt
empty = 0        -- 200 without a receipt (nothing visible)
acks = 0         -- 204 (ack accepted)
gone = 0         -- 410 (lease ended before the ack)
other = 0        -- any other status

local threads = {}
local headers
local recv_req
local ack_prefix
-- FIFO of receipts waiting for an ack (shared by this thread's connections).
local pending = {}
local head, tail = 1, 0

function setup(thread)
  table.insert(threads, thread)
end

local function urlencode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

function init(args)
  if args[1] then token = args[1] end
  if args[2] then queue = args[2] end
  headers = { ["Authorization"] = "Bearer " .. token }
  recv_req = wrk.format("POST", "/v1/queues/" .. queue .. "/receive?max=1", headers, "")
  ack_prefix = "/v1/queues/" .. queue .. "/messages/"
end

function request()
  if head <= tail then
    local receipt = pending[head]
    pending[head] = nil
    head = head + 1
    return wrk.format("DELETE", ack_prefix .. receipt, headers)
  end
  return recv_req
end

function response(status, hdrs, body)
  if status == 200 then
    local r = body and string.match(body, '"receipt"%s*:%s*"([^"]+)"')
    if r then
      receives = receives + 1
      tail = tail + 1
      pending[tail] = urlencode(r)
    else
      empty = empty + 1
    end
  elseif status == 204 then
    acks = acks + 1
  elseif status == 410 then
    gone = gone + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local t = { receives = 0, empty = 0, acks = 0, gone = 0, other = 0 }
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (th:get(k) or 0) end
  end
  local e = summary.errors
  io.write(string.format(
    "MOMBENCH requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d " ..
    "socket_errors=%d timeouts=%d pairs=%d receives=%d empty=%d gone=%d other=%d\n",
    summary.requests, summary.duration, latency:percentile(50.0),
    latency:percentile(99.0), e.status, e.connect + e.read + e.write, e.timeout,
    t.acks, t.receives, t.empty, t.gone, t.other))
end
