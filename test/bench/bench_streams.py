"""The event-stream part of `make bench` (called by run_bench.py; alone with
--only-streams):

1. Fan-out: 1,000 streams on one topic (raw sockets, one selector loop in
   this process), one publisher (wrk -t1 -c1 topic_publish.lua, 100-byte
   bodies, fsync=never so that the disk does not hide the loop's work) for
   --duration seconds: events delivered per second to all streams together,
   and what the publisher got per second meanwhile.
2. Latency: one stream, one publisher posting a message every 5 ms whose
   body is its send time (fsync=always, the default): the time from the
   POST leaving this process to the event arriving, p50/p99 over the run
   (target: p99 under 5 ms).
3. Memory: RSS of a node before and after opening 10,000 idle streams
   (MOM_MAX_CONNECTIONS raised, this process's fd limit raised), per stream
   (target: under 4 KiB), and of another node before and after 10,000 idle
   keep-alive connections that made one request each: what any client
   costs in evhtp (its connection and parser) before it streams.

This process reads every stream and runs the latency publisher: it shares
the cores with momd, so the numbers are a lower bound on a loaded machine.

SPDX-License-Identifier: MIT
"""

import http.client
import os
import resource
import selectors
import socket
import statistics
import subprocess
import threading
import time

import requests

import run_bench as rb

FANOUT_STREAMS = 1000
IDLE_STREAMS = 10000
LATENCY_INTERVAL_S = 0.005
LATENCY_TARGET_MS = 5.0
RSS_TARGET_KIB = 4.0


def start_node(args, procs, log_dir, data_dir, secret, tag, fsync, env_args=()):
    os.makedirs(data_dir, exist_ok=True)
    argv = [args.momd, "--node-id", "1", "--http-addr", "127.0.0.1:0", "--peer-addr",
            "127.0.0.1:0", "--data-dir", data_dir, "--jwt-secret", secret, "--fsync", fsync,
            "--log-level", args.momd_log_level] + list(env_args)
    proc = procs.add(rb.Proc(tag, argv, log_dir))
    m, _ = proc.wait_line(r"MOMD READY .*http=(\S+)", args.start_timeout)
    base = f"http://{m.group(1)}"
    rb.wait_readyz(base, proc, args.start_timeout)
    host, port = m.group(1).rsplit(":", 1)
    return proc, base, host, int(port)


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < need:
        raise rb.BenchError(f"the fd limit ({hard}) is below {need}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))


class Streams:
    """n raw-socket streams on one topic, read by one selector loop that
    only counts events (occurrences of "\\nid: " and a leading "id: ")."""

    def __init__(self, host, port, topic, token, n):
        self.sel = selectors.DefaultSelector()
        self.socks = []
        self.events = 0
        self.carry = {}
        req = (f"GET /v1/topics/{topic}/stream HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: Bearer {token}\r\n\r\n").encode()
        for i in range(n):
            s = socket.create_connection((host, port), timeout=30)
            s.sendall(req)
            s.setblocking(False)
            self.socks.append(s)
            self.carry[s] = b""
            self.sel.register(s, selectors.EVENT_READ)
        self.opened = self.wait_all(b"retry: 2000")

    def wait_all(self, marker, timeout=120):
        seen = set()
        got = {s: b"" for s in self.socks}
        deadline = time.monotonic() + timeout
        while len(seen) < len(self.socks):
            if time.monotonic() > deadline:
                raise rb.BenchError(f"{len(self.socks) - len(seen)} streams did not open")
            for key, _ in self.sel.select(timeout=1):
                data = key.fileobj.recv(65536)
                if not data:
                    raise rb.BenchError("a stream was closed by the node")
                got[key.fileobj] += data
                if marker in got[key.fileobj]:
                    seen.add(key.fileobj)
        return len(seen)

    def pump(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for key, _ in self.sel.select(timeout=0.2):
                s = key.fileobj
                try:
                    data = s.recv(262144)
                except BlockingIOError:
                    continue
                if not data:
                    raise rb.BenchError("a stream was closed by the node")
                buf = self.carry[s] + data
                self.events += buf.count(b"\nid: ")
                self.carry[s] = buf[-5:]

    def close(self):
        for s in self.socks:
            self.sel.unregister(s)
            s.close()
        self.sel.close()


def fanout(args, procs, log_dir, tmp, secret, token):
    raise_fd_limit(FANOUT_STREAMS + 500)
    proc, base, host, port = start_node(
        args, procs, log_dir, os.path.join(tmp, "streams-fanout"), secret, "momd-streams-fanout",
        "never", ["--max-connections", str(FANOUT_STREAMS + 100)])
    try:
        s = rb.session(token)
        rb.create(s, base, "topics", "bench")
        streams = Streams(host, port, "bench", token, FANOUT_STREAMS)
        env = dict(os.environ, MOM_TOKEN=token, MOM_TOPIC="bench")
        wrk = subprocess.Popen(
            [args.wrk, "-t1", "-c1", f"-d{args.duration}s", "--timeout", "5s", "-s",
             os.path.join(rb.SCRIPT_DIR, "topic_publish.lua"), base],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env)
        t0 = time.monotonic()
        streams.pump(args.duration)
        out, _ = wrk.communicate(timeout=args.duration + 60)
        t1 = time.monotonic()
        m = rb.MOMBENCH_RX.search(out)
        published = int(dict(kv.split("=") for kv in m.group(1).split())["requests"]) if m else 0
        # the events of the publishes still on their way
        streams.pump(2.0)
        total = streams.events
        streams.close()
        nxt = s.get(f"{base}/v1/topics/bench").json()["next_offset"]
        return {"streams": FANOUT_STREAMS, "events": total, "events_ps": total / (t1 - t0),
                "published": nxt, "publish_ps": published / args.duration,
                "complete": total == nxt * FANOUT_STREAMS}
    finally:
        proc.stop()


def latency(args, procs, log_dir, tmp, secret, token):
    proc, base, host, port = start_node(
        args, procs, log_dir, os.path.join(tmp, "streams-latency"), secret,
        "momd-streams-latency", "always")
    try:
        s = rb.session(token)
        rb.create(s, base, "topics", "lat")
        sock = socket.create_connection((host, port), timeout=30)
        sock.sendall((f"GET /v1/topics/lat/stream HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: Bearer {token}\r\n\r\n").encode())
        buf = b""
        while b"retry: 2000" not in buf:
            buf += sock.recv(65536)
        samples = []
        stop = threading.Event()

        def publisher():
            c = http.client.HTTPConnection(host, port, timeout=10)
            hdrs = {"Authorization": "Bearer " + token, "Content-Type": "text/plain"}
            while not stop.is_set():
                c.request("POST", "/v1/topics/lat/messages", body=str(time.monotonic_ns()),
                          headers=hdrs)
                c.getresponse().read()
                time.sleep(LATENCY_INTERVAL_S)
            c.close()

        t = threading.Thread(target=publisher, daemon=True)
        t.start()
        end = time.monotonic() + args.duration
        buf = b""
        while time.monotonic() < end:
            buf += sock.recv(65536)
            now = time.monotonic_ns()
            while True:
                i = buf.find(b'"body":"')
                if i < 0:
                    break
                j = buf.find(b'"', i + 8)
                if j < 0:
                    break
                samples.append((now - int(buf[i + 8:j])) / 1e6)
                buf = buf[j:]
        stop.set()
        t.join(15)
        sock.close()
        samples.sort()
        return {"n": len(samples), "p50": statistics.median(samples),
                "p99": samples[int(0.99 * (len(samples) - 1))], "max": samples[-1]}
    finally:
        proc.stop()


def idle_memory(args, procs, log_dir, tmp, secret, token, streams_too):
    """RSS growth per connection of a node holding IDLE_STREAMS idle
    streams, or (streams_too False) as many idle keep-alive connections
    that each made one request: the part of a stream every client costs."""
    raise_fd_limit(IDLE_STREAMS + 1000)
    tag = "momd-streams-idle" if streams_too else "momd-idle-connections"
    proc, base, host, port = start_node(
        args, procs, log_dir, os.path.join(tmp, tag), secret, tag, "never",
        ["--max-connections", str(IDLE_STREAMS + 100)])
    try:
        s = rb.session(token)
        rb.create(s, base, "topics", "idle")
        s.get(f"{base}/metrics")  # the first scrape's allocations are not the streams'
        time.sleep(0.5)
        before, _ = proc.rss_kb()
        if streams_too:
            conns = Streams(host, port, "idle", token, IDLE_STREAMS)
        else:
            conns = []
            for _ in range(IDLE_STREAMS):
                c = socket.create_connection((host, port), timeout=30)
                c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                if not c.recv(4096):
                    raise rb.BenchError("an idle connection was closed")
                conns.append(c)
        time.sleep(1.0)
        after, _ = proc.rss_kb()
        text = requests.get(f"{base}/metrics", timeout=30).text
        count = [ln for ln in text.splitlines() if ln.startswith("mom_streams ")]
        if streams_too:
            conns.close()
        else:
            for c in conns:
                c.close()
        return {"n": IDLE_STREAMS, "before_kib": before, "after_kib": after,
                "per_kib": (after - before) / IDLE_STREAMS,
                "reported": count[0].split()[1] if count else "?"}
    finally:
        proc.stop()


def run(args, procs, log_dir, tmp, secret, token):
    """Returns (markdown report, number of missed targets)."""
    missed = 0
    lines = ["| measure | value | target |", "|---|---|---|"]
    rb.log("streams: fan-out to 1,000 streams")
    f = fanout(args, procs, log_dir, tmp, secret, token)
    lines.append(f"| events/s delivered to {f['streams']:,} streams (one publisher, "
                 f"fsync=never) | {f['events_ps']:,.0f} ({f['events']:,} events; publisher "
                 f"{f['publish_ps']:,.0f}/s; every event delivered: "
                 f"{'yes' if f['complete'] else 'no'}) | |")
    rb.log("streams: publish-to-event latency")
    lat = latency(args, procs, log_dir, tmp, secret, token)
    ok = lat["p99"] < LATENCY_TARGET_MS
    missed += not ok
    lines.append(f"| publish-to-event latency, one stream, fsync=always ({lat['n']:,} "
                 f"events) | p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms, max "
                 f"{lat['max']:.2f} ms | p99 < {LATENCY_TARGET_MS:g} ms "
                 f"{'met' if ok else '**missed**'} |")
    rb.log("streams: RSS of 10,000 idle connections, then of 10,000 idle streams")
    conn = idle_memory(args, procs, log_dir, tmp, secret, token, False)
    mem = idle_memory(args, procs, log_dir, tmp, secret, token, True)
    ok = mem["per_kib"] < RSS_TARGET_KIB
    missed += not ok
    lines.append(f"| RSS per idle stream ({mem['n']:,} open, mom_streams {mem['reported']}; "
                 f"{mem['before_kib']:,} -> {mem['after_kib']:,} KiB) | {mem['per_kib']:.2f} KiB "
                 f"| < {RSS_TARGET_KIB:g} KiB {'met' if ok else '**missed**'} |")
    lines.append(f"| of which an idle keep-alive connection ({conn['n']:,} after one GET "
                 f"/healthz each) | {conn['per_kib']:.2f} KiB; the stream's own part "
                 f"{mem['per_kib'] - conn['per_kib']:.2f} KiB | |")
    return "\n".join(lines), missed
