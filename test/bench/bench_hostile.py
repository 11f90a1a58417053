"""Hostile-client benchmarks for run_bench.py: publish latency while 16
connections flood the node with failed logins, and publish throughput with
1,500 idle keep-alive connections open against none. Each case starts its
own momd (fsync=always) through run_bench's helpers; every process is
stopped by the caller's Procs.
SPDX-License-Identifier: MIT
"""

import os
import resource
import socket
import subprocess
import threading

import requests

import run_bench as rb

LOGIN_FLOOD_CONNS = 16
PUBLISH_CONNS = 64
IDLE_CONNS = 1500
P99_TARGET_MS = 20.0
IDLE_RATIO_TARGET = 0.90


def _node(args, procs, log_dir, tmp, secret, tag):
    return rb.Momd(args, procs, log_dir, os.path.join(tmp, "data-" + tag), secret, "always",
                   tag).start()


def _publish(args, node, token, queue):
    s = rb.session(token)
    rb.create(s, node.base, "queues", queue)
    return rb.run_wrk(args, "publish.lua", node.base, PUBLISH_CONNS,
                      {"MOM_TOKEN": token, "MOM_QUEUE": queue})


def login_flood(args, procs, log_dir, tmp, secret, token):
    node = _node(args, procs, log_dir, tmp, secret, "loginflood")
    try:
        r = requests.post(node.base + "/v1/auth/users",
                          json={"username": "victim", "password": "right-password"}, timeout=10)
        rb.expect(r, (201, 409), "register victim")
        quiet = _publish(args, node, token, "quiet")
        flood_out = {}

        def flood():
            argv = [args.wrk, "-t1", "-c%d" % LOGIN_FLOOD_CONNS, "-d%ds" % (args.duration + 2),
                    "--latency", "--timeout", "5s",
                    "-s", os.path.join(rb.SCRIPT_DIR, "login_flood.lua"), node.base]
            flood_out["r"] = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                            text=True, timeout=args.duration + 60)

        t = threading.Thread(target=flood)
        t.start()
        try:
            loud = _publish(args, node, token, "loud")
        finally:
            t.join(args.duration + 70)
        out = flood_out.get("r")
        m = rb.MOMBENCH_RX.search(out.stdout if out else "")
        logins = int(m.group(1).split()[0].split("=")[1]) if m else 0
    finally:
        node.stop()
    p99 = loud["p99_us"] / 1000
    errors = loud["non2xx"] + loud["status_errors"] + loud["socket_errors"] + loud["timeouts"]
    ok = p99 < P99_TARGET_MS and errors == 0
    text = "\n".join([
        "| publish -c%d (fsync=always) | req/s | p50 ms | p99 ms | errors |" % PUBLISH_CONNS,
        "|---|---:|---:|---:|---:|",
        "| no flood | %.0f | %s | %s | %d |" % (quiet["rps"], rb.fmt_ms(quiet["p50_us"]),
                                               rb.fmt_ms(quiet["p99_us"]), quiet["non2xx"]),
        "| %d connections of failed logins (%d attempts) | %.0f | %s | %s | %d |"
        % (LOGIN_FLOOD_CONNS, logins, loud["rps"], rb.fmt_ms(loud["p50_us"]),
           rb.fmt_ms(loud["p99_us"]), errors),
        "",
        "Target: p99 under %.0f ms and no error during the flood: %s."
        % (P99_TARGET_MS, "met" if ok else "**missed**")])
    return text, ok


def _open_idle(node, n):
    host, port = node.base[len("http://"):].rsplit(":", 1)
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(s)
    for s in socks:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                raise rb.BenchError("an idle connection was closed before its answer")
            data += chunk
    return socks


def idle_connections(args, procs, log_dir, tmp, secret, token):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < IDLE_CONNS + 512:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, IDLE_CONNS + 512), hard))
    node = _node(args, procs, log_dir, tmp, secret, "idle")
    socks = []
    try:
        none = _publish(args, node, token, "none-idle")
        socks = _open_idle(node, IDLE_CONNS)
        loaded = _publish(args, node, token, "with-idle")
        still_open = sum(1 for s in socks if s.fileno() >= 0)
    finally:
        for s in socks:
            s.close()
        node.stop()
    ratio = loaded["rps"] / none["rps"] if none["rps"] else 0.0
    ok = ratio >= IDLE_RATIO_TARGET
    text = "\n".join([
        "| publish -c%d (fsync=always) | req/s | p50 ms | p99 ms |" % PUBLISH_CONNS,
        "|---|---:|---:|---:|",
        "| no other connection | %.0f | %s | %s |" % (none["rps"], rb.fmt_ms(none["p50_us"]),
                                                      rb.fmt_ms(none["p99_us"])),
        "| %d idle keep-alive connections open | %.0f | %s | %s |"
        % (still_open, loaded["rps"], rb.fmt_ms(loaded["p50_us"]), rb.fmt_ms(loaded["p99_us"])),
        "",
        "Throughput with the idle connections: %.2f of none (target at least %.2f): %s."
        % (ratio, IDLE_RATIO_TARGET, "met" if ok else "**missed**")])
    return text, ok


def run(args, procs, log_dir, tmp, secret, token):
    """Returns (markdown, number of targets missed)."""
    parts, missed = [], 0
    for title, fn in (("Publish under a login flood", login_flood),
                      ("Publish with 1,500 idle connections", idle_connections)):
        try:
            text, ok = fn(args, procs, log_dir, tmp, secret, token)
        except (rb.BenchError, requests.RequestException, subprocess.TimeoutExpired) as e:
            text, ok = "not measured: %s" % str(e).splitlines()[0], False
        parts += ["### " + title, "", text, ""]
        missed += not ok
    return "\n".join(parts), missed
