-- wrk script: a flood of failed logins, POST /v1/auth/token with a wrong
-- password for MOM_USER (default "victim"). After the first failures the
-- node answers 429 before hashing; the flood measures what that costs the
-- other clients. Prints one "MOMBENCH ..." summary line like publish.lua.
-- SPDX-License-Identifier: MIT

local user = os.getenv("MOM_USER") or "victim"

function init(args)
  wrk.method = "POST"
  wrk.path = "/v1/auth/token"
  wrk.body = '{"username":"' .. user .. '","password":"wrong-password"}'
  wrk.headers["Content-Type"] = "application/json"
end

local statuses = {}

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "MOMBENCH requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d " ..
    "socket_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50.0),
    latency:percentile(99.0), e.status, e.connect + e.read + e.write, e.timeout))
end
