"""The queue-stream part of `make bench` (called by run_bench.py): how fast
consumers drain a queue through queue streams (GET /v1/queues/{q}/stream,
events pushed, one DELETE ack per message) against receive+ack polling
(POST .../receive?max=10, then one DELETE ack per message), on one node with
fsync=never so the disk does not hide the request path. Each side drains
the same number of pre-published 100-byte messages with the same number of
consumer threads, each on its own keep-alive connections (http.client, so
the Python client costs as little as it can); the rate is messages
acknowledged per second from the first consumer's start to the last ack.
Beside it, the CPU time the node's loop thread spent per message
(/proc schedstat), which a busy machine disturbs much less than the rate:
the Python clients share the cores with the node.

SPDX-License-Identifier: MIT
"""

import http.client
import json
import os
import sys
import threading
import time

import run_bench as rb

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))
from sse_client import SSEClient  # noqa: E402

CONSUMERS = 4
PREFETCH = 32
RECEIVE_MAX = 10


class Conn:
    """One keep-alive HTTP/1.1 connection with the bearer token."""

    def __init__(self, base, token):
        host, port = base.split("//", 1)[1].split(":")
        self.c = http.client.HTTPConnection(host, int(port), timeout=30)
        self.h = {"Authorization": "Bearer " + token}
        self.requests = 0

    def call(self, method, path, expect):
        self.c.request(method, path, headers=self.h)
        r = self.c.getresponse()
        body = r.read()
        self.requests += 1
        if r.status not in expect:
            raise rb.BenchError(f"{method} {path}: {r.status} {body[:200]!r}")
        return body

    def close(self):
        self.c.close()


def fill(base, token, queue, n):
    s = rb.session(token)
    rb.create(s, base, "queues", queue)
    rb.fill(base, token, "queues", queue, n)


def drain_polling(base, token, queue, n):
    done = [0]
    lock = threading.Lock()
    reqs = [0]
    errors = []

    def worker():
        c = Conn(base, token)
        try:
            while True:
                with lock:
                    if done[0] >= n:
                        break
                body = c.call("POST", f"/v1/queues/{queue}/receive?max={RECEIVE_MAX}", (200,))
                msgs = json.loads(body)["messages"]
                for m in msgs:
                    c.call("DELETE", f"/v1/queues/{queue}/messages/{m['receipt']}", (204,))
                with lock:
                    done[0] += len(msgs)
        except Exception as e:  # reported below
            errors.append(e)
        finally:
            with lock:
                reqs[0] += c.requests
            c.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(CONSUMERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise rb.BenchError(f"polling consumer: {errors[0]}")
    return time.monotonic() - t0, reqs[0]


def drain_streams(base, token, queue, n):
    done = [0]
    lock = threading.Lock()
    finished = threading.Event()
    reqs = [0]
    errors = []
    streams = []
    host, port = base.split("//", 1)[1].split(":")

    def worker(s):
        c = Conn(base, token)
        try:
            while not finished.is_set():
                ev = s.next_event(timeout=60)
                c.call("DELETE", f"/v1/queues/{queue}/messages/{ev['json']['receipt']}",
                       (204,))
                with lock:
                    done[0] += 1
                    if done[0] >= n:
                        finished.set()
        except Exception as e:  # a stream shut down at the end is no error
            if not finished.is_set():
                errors.append(e)
                finished.set()
        finally:
            with lock:
                reqs[0] += c.requests + 1  # its acks and the stream's GET
            c.close()

    t0 = time.monotonic()
    for _ in range(CONSUMERS):
        s = SSEClient(host, int(port), f"/v1/queues/{queue}/stream?prefetch={PREFETCH}",
                      token=token, timeout=60).connect()
        if s.read_head() != 200:
            raise rb.BenchError(f"stream answered {s.status}: {s.body_text[:200]!r}")
        streams.append(s)
    threads = [threading.Thread(target=worker, args=(s,)) for s in streams]
    for t in threads:
        t.start()
    finished.wait(timeout=600)
    secs = time.monotonic() - t0
    for s in streams:  # the workers still waiting for an event end here
        try:
            s.sock.shutdown(2)
        except OSError:
            pass
    for t in threads:
        t.join()
    for s in streams:
        s.close()
    if errors:
        raise rb.BenchError(f"stream consumer: {errors[0]}")
    if done[0] < n:
        raise rb.BenchError(f"streams drained {done[0]} of {n} messages in 600 s")
    return secs, reqs[0]


def run(args, procs, log_dir, tmp, secret, token):
    import bench_metrics
    n = 5000 if args.quick else 20000
    proc, base = bench_metrics.start_node(args, procs, log_dir, os.path.join(tmp, "qstream"),
                                          secret, args.momd, "momd-qstream")
    rows = []
    try:
        for label, queue, drain in (("receive+ack polling", "poll", drain_polling),
                                    ("queue streams", "stream", drain_streams)):
            fill(base, token, queue, n)
            rb.log(f"drain {n} messages with {CONSUMERS} {label} consumers")
            cpu0 = bench_metrics.loop_cpu_ns(proc.pid)
            secs, reqs = drain(base, token, queue, n)
            cpu_us = (bench_metrics.loop_cpu_ns(proc.pid) - cpu0) / 1e3 / n
            depth = rb.queue_depth(rb.session(token), base, queue)
            rows.append((label, n, secs, reqs, depth, cpu_us))
    finally:
        proc.stop()
    out = [f"| consumers ({CONSUMERS}) | messages | seconds | messages/s | HTTP requests "
           "per message | loop CPU per message | left in the queue |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for label, count, secs, reqs, depth, cpu_us in rows:
        out.append(f"| {label} | {count} | {secs:.2f} | {count / secs:,.0f} | "
                   f"{reqs / count:.2f} | {cpu_us:.1f} µs | {depth} |")
    poll, stream = rows[0][1] / rows[0][2], rows[1][1] / rows[1][2]
    out += ["", f"Queue streams / polling: **{stream / poll:.2f}x** (prefetch={PREFETCH}, "
                f"receive max={RECEIVE_MAX}, fsync=never, 100-byte bodies, one DELETE ack per "
                "message on both sides)"]
    return "\n".join(out), 0
