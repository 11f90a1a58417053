"""The one-client part of `make bench` (called by run_bench.py): what a single
serial client on one keep-alive connection sees, where Nagle's algorithm and
the client's delayed ACK would show (an answer spanning several TCP segments
waited ~40 ms for the ACK before momd set TCP_NODELAY on client sockets).

1. Latency by answer size: a topic holding 1,000-byte messages is read with
   max=N so that answers are about 1, 4, 16, 64 and 256 KiB; REQUESTS serial
   reads each, median and p99 milliseconds.
2. Serial batch publish: BATCHES requests of 1,000 100-byte messages each to
   a queue, one after the other, messages per second, with fsync=never and
   fsync=always.

SPDX-License-Identifier: MIT
"""

import http.client
import json
import os
import statistics
import time

import run_bench as rb

BODY_1K = ("mom-serial-" * 100)[:1000]
ANSWER_MAX = (1, 4, 16, 64, 240)  # messages per read: ~1, 4, 16, 64, 256 KiB
REQUESTS = 200
BATCHES = 50
BATCH_SIZE = 1000


def _conn(base):
    host, port = base.split("//", 1)[1].rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=30)


def _request(c, method, path, token, body=None):
    hdr = {"Authorization": f"Bearer {token}"}
    if body is not None:
        hdr["Content-Type"] = "application/json"
    t0 = time.perf_counter()
    c.request(method, path, body=body, headers=hdr)
    r = c.getresponse()
    data = r.read()
    dt = time.perf_counter() - t0
    if r.status >= 300:
        raise rb.BenchError(f"{method} {path}: HTTP {r.status} {data[:200]!r}")
    return dt, data


def _p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


def latency_by_size(node, token):
    c = _conn(node.base)
    _request(c, "PUT", "/v1/topics/serial", token)
    batch = json.dumps({"messages": [{"body": BODY_1K}] * max(ANSWER_MAX)}).encode()
    _request(c, "POST", "/v1/topics/serial/messages/batch", token, batch)
    rows = ["| answer | bytes | median ms | p99 ms |", "|---|---:|---:|---:|"]
    for n in ANSWER_MAX:
        times, size = [], 0
        for _ in range(REQUESTS):
            dt, data = _request(c, "GET", f"/v1/topics/serial/messages?from=earliest&max={n}",
                                token)
            times.append(dt)
            size = len(data)
        rows.append(f"| topic read max={n} | {size:,} | "
                    f"{statistics.median(times) * 1000:.2f} | {_p99(times) * 1000:.2f} |")
        rb.log(f"serial read max={n}: {size} bytes, median "
               f"{statistics.median(times) * 1000:.2f} ms")
    c.close()
    return rows


def batch_throughput(node, token, queue):
    c = _conn(node.base)
    _request(c, "PUT", f"/v1/queues/{queue}", token)
    batch = json.dumps({"messages": [{"body": rb.BODY_100}] * BATCH_SIZE}).encode()
    times = []
    for _ in range(BATCHES):
        dt, _ = _request(c, "POST", f"/v1/queues/{queue}/messages/batch", token, batch)
        times.append(dt)
    c.close()
    total = sum(times)
    return BATCHES * BATCH_SIZE / total, statistics.median(times) * 1000


def run(args, procs, log_dir, tmp, secret, token):
    """Returns the markdown section (a string)."""
    lines = []
    for fsync in ("never", "always"):
        node = rb.Momd(args, procs, log_dir, os.path.join(tmp, f"data-serial-{fsync}"), secret,
                       fsync, f"serial-{fsync}").start()
        try:
            if fsync == "never":
                lines += ["One client, one keep-alive connection, fsync=never:", ""]
                lines += latency_by_size(node, token)
                lines += ["", "| serial batch publish (1,000 x 100 B per request) | messages/s "
                          "| median ms per batch |", "|---|---:|---:|"]
            rate, med = batch_throughput(node, token, f"serial-{fsync}")
            rb.log(f"serial batch publish fsync={fsync}: {rate:,.0f} messages/s")
            lines.append(f"| fsync={fsync} | {rate:,.0f} | {med:.2f} |")
        finally:
            node.stop()
    return "\n".join(lines)
