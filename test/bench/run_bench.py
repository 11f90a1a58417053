#!/usr/bin/python3
"""Benchmark driver for momd: throughput and latency as ratios to a zero-work
evhtp baseline measured in the same run, then memory with one million queued
messages and restart time over that log.

It starts test/bench's baseline_server and momd (single node, fresh data dir
in a temp directory, loopback only, HS256 secret; the token is minted here
with PyJWT), runs each wrk case (test/bench/*.lua) for --duration seconds with
-t2 at 64 and at 256 connections, prints a markdown table and writes it to
BENCH_DIR/results.md. Every process it starts is stopped in a finally block;
every wait is bounded.

Usage: run_bench.py --momd ABS/momd --bench-dir ABS/build/bench [--quick]
Exit status: 0 when every case ran, 1 when something failed (momd crash,
setup error, wrk error), 2 with --strict when a target was missed.
SPDX-License-Identifier: MIT
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import jwt
import requests

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
BODY_100 = ("mom-bench-payload-" * 6)[:100]
CONNS = (64, 256)
THREADS = 2
P99_TARGET_MS = 10.0
READ_TOPIC_SIZE = 10000
BATCH = 100                     # messages per request in the batch case
BATCH_TARGET = 1_000_000        # messages/s, durable (issue 14)
FOLLOWER_RATIO, FOLLOWER_P99_MS = 0.5, 20.0
RSS_TARGET_MB = 200

# case id -> (label, lua script, fsync mode of the node, ratio target or None,
# p99 target in ms at 64 connections or None). Targets are issue 14's.
CASES = {
    "baseline": ("baseline (evhtp, no work)", "publish.lua", None, None, None),
    "publish_always": ("queue publish, fsync=always", "publish.lua", "always", 0.60, 5.0),
    "receive_ack": ("receive+ack pair, fsync=always", "receive_ack.lua", "always", 0.35,
                    P99_TARGET_MS),
    "batch_always": (f"queue batch publish ({BATCH} x 100 B a request), fsync=always",
                     "batch_publish.lua", "always", None, None),
    "topic_publish": ("topic publish, fsync=always", "topic_publish.lua", "always", None,
                      P99_TARGET_MS),
    "topic_read": ("topic read (10 msgs), fsync=always", "topic_read.lua", "always", None,
                   P99_TARGET_MS),
    "publish_never": ("queue publish, fsync=never", "publish.lua", "never", 0.80, P99_TARGET_MS),
    "receive_ack_never": ("receive+ack pair, fsync=never", "receive_ack.lua", "never", None,
                          P99_TARGET_MS),
}
CASE_ORDER = list(CASES)
ONLY_64 = ("batch_always",)  # cases run at 64 connections only


class Setup:
    """How servers and wrk share the two cores. usual: nothing pinned, wrk
    -t2 at 64 and 256 connections; pinned: every server on core 0 (taskset),
    wrk -t1 on core 1 at 64 connections (bench_peers.py's setup)."""

    def __init__(self, name, pinned, threads, conns):
        self.name, self.pinned, self.threads, self.conns = name, pinned, threads, conns

    def describe(self):
        if self.pinned:
            return (f"pinned: servers on core 0 (taskset), wrk -t{self.threads} on core 1, "
                    f"{' and '.join(map(str, self.conns))} connections")
        return (f"usual: nothing pinned, wrk -t{self.threads}, "
                f"{' and '.join(map(str, self.conns))} connections")

    def server_wrap(self):
        """Command prefix for a server process of this setup."""
        if not self.pinned:
            return []
        import bench_peers
        return bench_peers.pinned(bench_peers.SERVER_CORE, [])


SETUPS = {"usual": Setup("usual", False, THREADS, CONNS),
          "pinned": Setup("pinned", True, 1, (64,))}


class BenchError(Exception):
    """A step failed in a way that makes its result meaningless."""


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

class Proc:
    """A child process with stdout/stderr in files; stop() is idempotent."""

    def __init__(self, name, argv, log_dir, env=None):
        self.name = name
        self.argv = argv
        self.out_path = os.path.join(log_dir, f"{name}.stdout")
        self.err_path = os.path.join(log_dir, f"{name}.stderr")
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        self.started = time.monotonic()
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.out,
                                      stderr=self.err, env=env, close_fds=True)
        self.exit_code = None
        self.stop_seconds = None

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def wait_line(self, pattern, timeout):
        """Poll stdout for a line matching pattern; returns (match, seconds since spawn)."""
        rx = re.compile(pattern)
        deadline = self.started + timeout
        while True:
            with open(self.out_path, "rb") as f:
                data = f.read().decode("utf-8", "replace")
            for line in data.splitlines():
                m = rx.search(line)
                if m:
                    return m, time.monotonic() - self.started
            if not self.alive():
                raise BenchError(f"{self.name} exited with {self.popen.returncode} before "
                                 f"printing its ready line\n{self.stderr_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: no ready line within {timeout}s\n"
                                 f"{self.stderr_tail()}")
            time.sleep(0.005)

    def stop(self, timeout=20.0):
        """SIGTERM, wait up to timeout, then SIGKILL. Returns the exit code."""
        if self.exit_code is not None:
            return self.exit_code
        t0 = time.monotonic()
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} (pid {self.pid}) ignored SIGTERM for {timeout}s: SIGKILL")
                self.popen.kill()
                self.popen.wait(timeout=10)
        self.stop_seconds = time.monotonic() - t0
        self.exit_code = self.popen.returncode
        self.out.close()
        self.err.close()
        return self.exit_code

    def rss_kb(self):
        """(VmRSS, VmHWM) in kB from /proc/PID/status."""
        vals = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    vals[k] = int(v.split()[0])
        return vals.get("VmRSS", 0), vals.get("VmHWM", 0)

    def stderr_tail(self, n=15):
        try:
            with open(self.err_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"    {self.name}: {line}" for line in lines[-n:])


class Procs:
    """Every process this run started, so finally can stop them all."""

    def __init__(self):
        self.all = []

    def add(self, p):
        self.all.append(p)
        return p

    def stop_all(self):
        for p in self.all:
            try:
                p.stop(timeout=10)
            except Exception as e:  # keep stopping the others
                log(f"stopping {p.name} (pid {p.pid}): {e}")


class Momd:
    """One momd node on a data dir; restart() keeps the data dir."""

    def __init__(self, args, procs, log_dir, data_dir, secret, fsync, tag, wrap=()):
        self.args = args
        self.wrap = list(wrap)  # a command prefix, e.g. taskset -c 0
        self.procs = procs
        self.log_dir = log_dir
        self.data_dir = data_dir
        self.secret = secret
        self.fsync = fsync
        self.tag = tag
        self.starts = 0
        self.proc = None
        self.base = None
        self.ready_seconds = None
        self.readyz_seconds = None

    def start(self):
        self.starts += 1
        os.makedirs(self.data_dir, exist_ok=True)
        argv = [self.args.momd, "--node-id", "1", "--http-addr", "127.0.0.1:0",
                "--peer-addr", "127.0.0.1:0", "--data-dir", self.data_dir,
                "--jwt-secret", self.secret, "--fsync", self.fsync,
                "--log-level", self.args.momd_log_level]
        name = f"momd-{self.tag}-{self.starts}"
        self.proc = self.procs.add(Proc(name, self.wrap + argv, self.log_dir))
        m, secs = self.proc.wait_line(r"MOMD READY .*http=(\S+)", self.args.start_timeout)
        self.ready_seconds = secs
        self.base = f"http://{m.group(1)}"
        self.readyz_seconds = wait_readyz(self.base, self.proc, self.args.start_timeout)
        log(f"{name} pid {self.proc.pid} at {self.base} (READY {secs:.3f}s, "
            f"/readyz {self.readyz_seconds:.3f}s)")
        return self

    def stop(self):
        code = self.proc.stop()
        log(f"{self.proc.name} stopped: exit {code} after {self.proc.stop_seconds:.2f}s")
        return code


def wait_readyz(base, proc, timeout):
    """Seconds from proc spawn until GET /readyz answers 200."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not proc.alive():
            raise BenchError(f"{proc.name} exited while waiting for /readyz\n{proc.stderr_tail()}")
        try:
            r = requests.get(base + "/readyz", timeout=2)
            if r.status_code == 200:
                return time.monotonic() - proc.started
            last = f"{r.status_code} {r.text[:200]}"
        except requests.RequestException as e:
            last = str(e)
        time.sleep(0.02)
    raise BenchError(f"{proc.name}: /readyz not 200 within {timeout}s (last: {last})")


# ---------------------------------------------------------------- REST helpers

def mint_token(secret):
    now = int(time.time())
    claims = {"sub": "bench", "iat": now, "exp": now + 6 * 3600, "roles": ["admin"]}
    tok = jwt.encode(claims, secret, algorithm="HS256")
    return tok if isinstance(tok, str) else tok.decode()


def session(token):
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    return s


def expect(r, codes, what):
    if r.status_code not in codes:
        raise BenchError(f"{what}: HTTP {r.status_code} {r.text[:300]}")
    return r


def create(s, base, kind, name):
    expect(s.put(f"{base}/v1/{kind}/{name}", timeout=10), (200, 201), f"PUT /v1/{kind}/{name}")


def fill(base, token, kind, name, count, batch=1000, workers=4):
    """Publish count 100-byte messages with the batch route (1000 per request),
    falling back to single publishes if the batch route is missing."""
    payload = json.dumps({"messages": [{"body": BODY_100}] * batch}).encode()
    url = f"{base}/v1/{kind}/{name}/messages"
    hdr = {"Content-Type": "application/json"}
    t0 = time.monotonic()

    probe = session(token).post(url + "/batch", data=payload if count >= batch else
                                json.dumps({"messages": [{"body": BODY_100}] * count}).encode(),
                                headers=hdr, timeout=60)
    if probe.status_code in (404, 405, 501):
        log(f"batch publish answered {probe.status_code}; falling back to single publishes")
        return fill_single(base, token, kind, name, count, workers)
    expect(probe, (201,), f"POST {url}/batch")
    done = min(batch, count)

    local = threading.local()

    def send(n):
        if not hasattr(local, "s"):
            local.s = session(token)
        s = local.s
        body = payload if n == batch else json.dumps(
            {"messages": [{"body": BODY_100}] * n}).encode()
        expect(s.post(url + "/batch", data=body, headers=hdr, timeout=120), (201,),
               f"POST {url}/batch")
        return n

    chunks = []
    left = count - done
    while left > 0:
        chunks.append(min(batch, left))
        left -= chunks[-1]
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
        for n in ex.map(send, chunks):
            done += n
    secs = time.monotonic() - t0
    log(f"filled {kind}/{name} with {done} messages in {secs:.1f}s "
        f"({done / max(secs, 1e-9):.0f} msg/s)")
    return secs


def fill_single(base, token, kind, name, count, workers=8):
    url = f"{base}/v1/{kind}/{name}/messages"
    t0 = time.monotonic()

    def send(n):
        s = session(token)
        for _ in range(n):
            expect(s.post(url, data=BODY_100, headers={"Content-Type": "text/plain"},
                          timeout=30), (201,), f"POST {url}")
        return n

    per = [count // workers + (1 if i < count % workers else 0) for i in range(workers)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
        total = sum(ex.map(send, per))
    secs = time.monotonic() - t0
    log(f"filled {kind}/{name} with {total} single publishes in {secs:.1f}s")
    return secs


def fill_wrk(args, base, token, name, count):
    """Publish count single 100-byte messages to queue name with wrk (publish.lua
    in MOM_LIMIT mode, -c64): one log entry per message. Stops wrk once the
    depth reaches count or stops growing for 10 s; bounded by 15 minutes."""
    per_thread = (count + THREADS - 1) // THREADS
    env = dict(os.environ, MOM_TOKEN=token, MOM_QUEUE=name, MOM_LIMIT=str(per_thread))
    argv = [args.wrk, f"-t{THREADS}", "-c64", "-d900s", "--timeout", "10s",
            "-s", os.path.join(SCRIPT_DIR, "publish.lua"), base]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=env, text=True)
    s = session(token)
    depth, last_growth, last_depth = 0, time.monotonic(), -1
    try:
        while time.monotonic() - t0 < 900 and p.poll() is None:
            time.sleep(0.5)
            depth = queue_depth(s, base, name) or 0
            if depth != last_depth:
                last_depth, last_growth = depth, time.monotonic()
            if depth >= per_thread * THREADS or time.monotonic() - last_growth > 10:
                break
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        try:
            out, _ = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate(timeout=10)
    secs = time.monotonic() - t0
    for rx in (r"Non-2xx or 3xx responses: \d+", r"Socket errors: .*"):
        hit = re.search(rx, out or "")
        if hit:
            log(f"fill with wrk: {hit.group(0)}")
    log(f"filled queues/{name} with {depth} single publishes in {secs:.1f}s "
        f"({depth / max(secs, 1e-9):.0f} msg/s)")
    return secs


def queue_depth(s, base, name):
    r = expect(s.get(f"{base}/v1/queues/{name}", timeout=30), (200,), f"GET /v1/queues/{name}")
    return r.json().get("depth")


# ---------------------------------------------------------------- wrk

MOMBENCH_RX = re.compile(r"^MOMBENCH (.*)$", re.M)


def run_wrk(args, script, url, conns, env_extra, setup=None):
    """wrk with script for --duration seconds; unpinned -t2 unless setup is
    the pinned one (wrk -t1 on core 1, bench_peers.py's command line)."""
    env = dict(os.environ)
    env.update(env_extra)
    if setup is not None and setup.pinned:
        import bench_peers
        argv = bench_peers.wrk_argv(args, script, url, conns)
    else:
        argv = [args.wrk, f"-t{THREADS}", f"-c{conns}", f"-d{args.duration}s", "--latency",
                "--timeout", "5s", "-s", os.path.join(SCRIPT_DIR, script), url]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       env=env, timeout=args.duration + 60)
    m = MOMBENCH_RX.search(r.stdout)
    if r.returncode != 0 or not m:
        raise BenchError(f"wrk {script} -c{conns} failed (rc {r.returncode}):\n"
                         f"{r.stdout[-1500:]}\n{r.stderr[-1500:]}")
    res = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    res["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    secs = res["duration_us"] / 1e6
    res["rps"] = res["requests"] / secs
    if "pairs" in res:
        res["pairs_ps"] = res["pairs"] / secs
    if "batch" in res:  # batch_publish.lua: messages = 2xx answers x batch
        res["msgs_ps"] = (res["requests"] - res["non2xx"]) * res["batch"] / secs
    return res


# ---------------------------------------------------------------- the run

class Results:
    def __init__(self):
        self.rows = []        # dicts: setup, case, conns, res (or error)
        self.baseline = {}    # (setup name, conns) -> rps
        self.redis = {}       # setup name -> redis-benchmark LPUSH result, or a note (str)
        self.follower = {}    # setup name -> (ratio, p99 ms) of publish through a follower
        self.memory = {}
        self.problems = []    # strings worth the reader's attention
        self.missed = 0

    def add(self, case, conns, res=None, error=None, setup="usual"):
        self.rows.append({"setup": setup, "case": case, "conns": conns, "res": res,
                          "error": error})

    def get(self, setup, case, conns=64):
        """The result of case at conns in setup, or None."""
        for r in self.rows:
            if r["setup"] == setup and r["case"] == case and r["conns"] == conns:
                return r["res"]
        return None

    def ratio(self, setup, case, conns=64):
        res, base = self.get(setup, case, conns), self.baseline.get((setup, conns))
        if not res or not base:
            return None
        return res.get("pairs_ps", res["rps"]) / base


def fmt_ms(us):
    return f"{us / 1000:.2f}"


def table(results, setup="usual"):
    out = ["| case | conns | rate | ratio | p50 ms | p99 ms | target | met? | errors / notes |",
           "|---|---:|---:|---:|---:|---:|---|---|---|"]
    for row in results.rows:
        if row["setup"] != setup:
            continue
        label, _, _, ratio_t, p99_t = CASES[row["case"]]
        conns = row["conns"]
        if row["error"]:
            out.append(f"| {label} | {conns} | — | — | — | — | — | FAILED | "
                       f"{row['error']} |")
            results.missed += 1
            continue
        res = row["res"]
        is_pair = "pairs_ps" in res
        is_batch = "msgs_ps" in res
        rate = res["pairs_ps"] if is_pair else res["rps"]
        rate_s = f"{rate:,.0f} " + ("pairs/s" if is_pair else "req/s")
        if is_batch:
            rate_s = f"{res['msgs_ps']:,.0f} msg/s"
        base = results.baseline.get((setup, conns))
        ratio = rate / base if base and row["case"] != "baseline" else None
        ratio_s = "1.00" if row["case"] == "baseline" else (f"{ratio:.2f}" if ratio else "—")
        p99_ms = res["p99_us"] / 1000
        notes = []
        errs = res["non2xx"] + res["socket_errors"] + res["timeouts"]
        if errs:
            notes.append(f"non-2xx {res['non2xx']}, socket {res['socket_errors']}, "
                         f"timeouts {res['timeouts']}")
        if is_pair:
            notes.append(f"{res['rps']:,.0f} req/s; empty {res['empty']}, 410 {res['gone']}, "
                         f"other {res['other']}")
        if is_batch:
            notes.append(f"{res['rps']:,.0f} req/s of {res['batch']} messages; ratio is "
                         f"of requests/s")
        if row["case"] == "baseline":
            target_s, met_s = "—", "—"
        else:
            checks = []
            parts = []
            if ratio_t is not None:
                parts.append(f"ratio ≥ {ratio_t:.2f}")
                checks.append(ratio is not None and ratio >= ratio_t)
            if is_batch:
                parts.append(f"≥ {BATCH_TARGET:,} msg/s")
                checks.append(res["msgs_ps"] >= BATCH_TARGET)
            if conns == CONNS[0] and p99_t is not None:
                parts.append(f"p99 < {p99_t:.0f} ms")
                checks.append(p99_ms < p99_t)
            if errs:
                checks.append(False)
            target_s = ", ".join(parts) if parts else "—"
            if conns != CONNS[0] and parts:
                target_s += " (info)"
            if not checks:
                met_s = "—"
            elif all(checks):
                met_s = "yes"
            else:
                met_s = "**no**"
                if conns == CONNS[0]:
                    results.missed += 1
        out.append(f"| {label} | {conns} | {rate_s} | {ratio_s} | {fmt_ms(res['p50_us'])} | "
                   f"{fmt_ms(res['p99_us'])} | {target_s} | {met_s} | {'; '.join(notes)} |")
    red = results.redis.get(setup)
    if isinstance(red, dict):
        base = results.baseline.get((setup, 64))
        ratio_s = f"{red['rate'] / base:.2f}" if base else "—"
        out.append(f"| Redis LPUSH 100 B, appendfsync always | 64 | {red['rate']:,.0f} req/s | "
                   f"{ratio_s} | "
                   f"{fmt_ms(red['p50_us'])} | {fmt_ms(red['p99_us'])} | — | — | "
                   f"redis-benchmark -c64 -P1 -d100; RESP, no token |")
    elif red:
        out.append(f"| Redis LPUSH 100 B, appendfsync always | 64 | — | — | — | — | — | — | "
                   f"{red} |")
    return "\n".join(out)


def targets_table(results, setups, snapshot_measured=False):
    """Issue 14's targets, each with the value measured in every setup of
    this run (the snapshot case reports in its own section)."""
    rows = ["| target (issue 14) | " + " | ".join(setups) + " |",
            "|---|" + "---|" * len(setups)]

    def cell(value, met):
        if value is None:
            return "not measured"
        return f"{value} — {'met' if met else '**missed**'}"

    def row(target, cells):
        rows.append(f"| {target} | " + " | ".join(cells) + " |")

    def ratio_row(case, target, label):
        cells = []
        for st in setups:
            r = results.ratio(st, case)
            cells.append(cell(None if r is None else f"{r:.2f}", r is not None and r >= target))
        row(f"{label} ≥ {target:.2f} of the baseline", cells)

    ratio_row("publish_always", CASES["publish_always"][3], "publish fsync=always")
    cells = []
    for st in setups:
        res, red = results.get(st, "publish_always"), results.redis.get(st)
        if not res or not isinstance(red, dict):
            cells.append(red if isinstance(red, str) else cell(None, False))
            continue
        cells.append(cell(f"{res['rps']:,.0f} vs {red['rate']:,.0f} req/s "
                          f"({res['rps'] / red['rate']:.2f}x)", res["rps"] >= red["rate"]))
    row("publish fsync=always ≥ Redis appendfsync-always LPUSH (same run, same setup)", cells)
    cells = []
    for st in setups:
        res = results.get(st, "publish_always")
        p99 = res["p99_us"] / 1000 if res else None
        cells.append(cell(None if p99 is None else f"{p99:.2f} ms", p99 is not None and p99 < 5))
    row("publish fsync=always p99 < 5 ms", cells)
    row("publish p99 < 5 ms while a snapshot is written",
        ["see \"Publish latency while snapshots are written\" (unpinned and pinned rows)"
         if snapshot_measured else "not measured (--skip-snapshot)" for _ in setups])
    ratio_row("publish_never", CASES["publish_never"][3], "publish fsync=never")
    ratio_row("receive_ack", CASES["receive_ack"][3], "receive+ack pairs fsync=always")
    cells = []
    for st in setups:
        res = results.get(st, "batch_always")
        v = res["msgs_ps"] if res else None
        cells.append(cell(None if v is None else f"{v:,.0f} msg/s (p99 "
                          f"{res['p99_us'] / 1000:.1f} ms)", v is not None and v >= BATCH_TARGET))
    row(f"batch publish ({BATCH} a request, 64 connections) ≥ {BATCH_TARGET:,} msg/s durable",
        cells)
    m = results.memory
    if "rss_mb" in m and m.get("messages", 0) >= 1_000_000:
        mem = cell(f"{m['rss_mb']:.1f} MB (after a restart "
                   f"{m.get('rss_after_mb', 0):.1f} MB)", m["rss_mb"] < RSS_TARGET_MB)
    else:
        mem = "not measured (needs --messages 1000000)"
    row(f"1,000,000 queued 100-byte messages < {RSS_TARGET_MB} MB RSS",
        [mem if st == "usual" else "(one measurement: memory does not depend on pinning)"
         for st in setups])
    cells = []
    for st in setups:
        v = results.follower.get(st)
        cells.append(cell(None if v is None else f"{v[0]:.2f}, p99 {v[1]:.1f} ms",
                          v is not None and v[0] >= FOLLOWER_RATIO and v[1] < FOLLOWER_P99_MS))
    row(f"3 nodes through a follower ≥ {FOLLOWER_RATIO} of the single node, "
        f"p99 < {FOLLOWER_P99_MS:.0f} ms", cells)
    return "\n".join(rows)


def memory_table(results):
    m = results.memory
    if not m:
        return ""
    if "error" in m and "rss_mb" not in m:
        return f"Memory/restart test FAILED: {m['error']}\n"
    n = m["messages"]
    rows = ["| measure | value | target | met? |", "|---|---:|---|---|"]

    def row(name, val, target="—", ok=None):
        rows.append(f"| {name} | {val} | {target} | "
                    f"{'—' if ok is None else ('yes' if ok else '**no**')} |")

    how = "one publish each" if m.get("fill") == "single" else "batches of 1000"
    row(f"fill {n:,} x 100 B ({how}, fsync=never)", f"{m['fill_seconds']:.1f} s")
    row("depth after fill", f"{m.get('depth')}", f"{n:,}", m.get("depth") == n)
    full = n >= 1_000_000
    row("VmRSS with the queue full", f"{m['rss_mb']:.1f} MB",
        f"< {RSS_TARGET_MB} MB" + ("" if full else " (at 1M)"),
        m["rss_mb"] < RSS_TARGET_MB if full else None)
    row("VmHWM (peak)", f"{m['hwm_mb']:.1f} MB")
    row("data dir size", f"{m['data_mb']:.1f} MB")
    if "stop_seconds" in m:
        row("SIGTERM to exit", f"{m['stop_seconds']:.2f} s (exit {m['exit_code']})", "exit 0",
            m["exit_code"] == 0)
    if "restart_ready_s" in m:
        row("restart: spawn to READY line", f"{m['restart_ready_s']:.3f} s",
            "< 3 s" + ("" if full else " (at 1M)"), m["restart_ready_s"] < 3.0 if full else None)
        row("restart: spawn to /readyz 200", f"{m['restart_readyz_s']:.3f} s")
    if "depth_after" in m:
        row("depth after restart", f"{m['depth_after']}", f"{n:,}", m["depth_after"] == n)
    if "rss_after_mb" in m:
        row("VmRSS after restart", f"{m['rss_after_mb']:.1f} MB")
    if "error" in m:
        rows.append(f"\nFAILED after partial results: {m['error']}")
    if full:
        if not m["rss_mb"] < RSS_TARGET_MB or not m.get("restart_ready_s", 99) < 3.0 or \
                m.get("depth") != n or m.get("depth_after") != n:
            results.missed += 1
    return "\n".join(rows) + "\n"


def dir_mb(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total / (1 << 20)


def log_findings(log_dir):
    """Lines in momd stderr logs that look like warnings, errors or crashes."""
    rx = re.compile(r"\b(warn|warning|error|fatal|abort|assert|sanitizer|segv)\b"
                    r"|runtime error:", re.I)
    found = []
    for name in sorted(os.listdir(log_dir)):
        if not name.startswith("momd") or not name.endswith(".stderr"):
            continue
        with open(os.path.join(log_dir, name), "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        hits = [line for line in lines if rx.search(line)]
        if hits:
            found.append(f"- {name}: {len(hits)} warning/error lines, first: "
                         f"`{hits[0][:200]}`" + (f", last: `{hits[-1][:200]}`"
                                                 if len(hits) > 1 else ""))
    return found


def run_case(args, results, node, case, conns, token, extra_env=None, setup=None):
    """Run one wrk case against node.base and record the row."""
    setup = setup or SETUPS["usual"]
    label = CASES[case][0]
    script = CASES[case][1]
    env = {"MOM_TOKEN": token}
    env.update(extra_env or {})
    log(f"[{setup.name}] {label} -c{conns} for {args.duration}s")
    try:
        res = run_wrk(args, script, node.base, conns, env, setup)
    except (BenchError, subprocess.TimeoutExpired) as e:
        results.add(case, conns, error=str(e).splitlines()[0], setup=setup.name)
        results.problems.append(f"[{setup.name}] {label} -c{conns}: {e}")
        return None
    results.add(case, conns, res, setup=setup.name)
    if hasattr(node, "proc") and not node.proc.alive():
        msg = (f"momd died during [{setup.name}] {label} -c{conns} "
               f"(exit {node.proc.popen.returncode})")
        results.problems.append(msg + "\n" + node.proc.stderr_tail())
        raise BenchError(msg)
    return res


def run_node_cases(args, results, procs, tmp, log_dir, secret, token, fsync, cases, setup=None):
    """Start one node with this fsync mode and run the selected cases on it."""
    setup = setup or SETUPS["usual"]
    tag = f"{fsync}-{setup.name}"
    node = Momd(args, procs, log_dir, os.path.join(tmp, f"data-{tag}"), secret, fsync,
                tag, wrap=setup.server_wrap()).start()
    s = session(token)
    try:
        for case in cases:
            script = CASES[case][1]
            for conns in setup.conns:
                if case in ONLY_64 and conns != 64:
                    continue
                if script in ("publish.lua", "batch_publish.lua"):
                    q = f"pub-{case}-{conns}"
                    create(s, node.base, "queues", q)
                    run_case(args, results, node, case, conns, token,
                             {"MOM_QUEUE": q, "MOM_BATCH": str(BATCH)}, setup)
                elif script == "receive_ack.lua":
                    q = f"rx-{fsync}-{conns}"
                    create(s, node.base, "queues", q)
                    base_rps = results.baseline.get((setup.name, conns), 100000)
                    # a pair is two requests, so half the baseline's rate would do; a
                    # baseline slowed by other work on the machine must not leave the
                    # queue empty before the run ends
                    n = args.rx_prefill or int(min(max(base_rps * args.duration, 50000),
                                                   1_500_000))
                    n = (n + 999) // 1000 * 1000
                    fill(node.base, token, "queues", q, n)
                    run_case(args, results, node, case, conns, token, {"MOM_QUEUE": q}, setup)
                elif script == "topic_publish.lua":
                    t = f"tpub-{fsync}-{conns}"
                    create(s, node.base, "topics", t)
                    run_case(args, results, node, case, conns, token, {"MOM_TOPIC": t}, setup)
                elif script == "topic_read.lua":
                    t = f"tread-{fsync}"
                    if conns == setup.conns[0]:
                        create(s, node.base, "topics", t)
                        fill(node.base, token, "topics", t, READ_TOPIC_SIZE)
                        r = expect(s.get(f"{node.base}/v1/topics/{t}/messages?from=100&max=10",
                                         timeout=10), (200,), "topic read check")
                        got = len(r.json().get("messages", []))
                        if got != 10:
                            results.problems.append(f"topic read check returned {got} "
                                                    f"messages, expected 10")
                    run_case(args, results, node, case, conns, token,
                             {"MOM_TOPIC": t, "MOM_TOPIC_SIZE": str(READ_TOPIC_SIZE)}, setup)
    finally:
        code = node.stop()
        if code != 0:
            results.problems.append(f"momd (fsync={fsync}, {setup.name}) exit status {code} at "
                                    f"shutdown (expected 0 after SIGTERM)\n"
                                    + node.proc.stderr_tail())


def run_baseline(args, results, procs, log_dir, token, setup):
    """The zero-work evhtp server of this setup at each of its connection counts."""
    baseline = procs.add(Proc(f"baseline-{setup.name}", setup.server_wrap() + [
        os.path.join(args.bench_dir, "baseline_server"), "0"], log_dir))
    m, _ = baseline.wait_line(r"READY port=(\d+)", 10)

    class Base:
        base = f"http://127.0.0.1:{m.group(1)}"
        proc = baseline

    try:
        for conns in setup.conns:
            res = run_case(args, results, Base, "baseline", conns, token, {"MOM_QUEUE": "bench"},
                           setup)
            if res:
                results.baseline[(setup.name, conns)] = res["rps"]
    finally:
        baseline.stop()


def run_redis(args, results, procs, log_dir, tmp, setup):
    """Redis LPUSH with appendonly yes, appendfsync always, in this setup
    (bench_peers.py's server and client command lines)."""
    import bench_peers
    if not bench_peers.redis_installed():
        results.redis[setup.name] = ("skipped: redis-server / redis-benchmark not installed "
                                     "(`make bench` installs them)")
        return
    log(f"[{setup.name}] Redis LPUSH, appendfsync always, for about {args.duration}s")
    proc, port = bench_peers.start_redis(args, procs, log_dir, tmp, "always", setup.pinned)
    try:
        results.redis[setup.name] = bench_peers.redis_sized(args, port, "lpush", setup.pinned)
    except (BenchError, subprocess.TimeoutExpired) as e:
        results.redis[setup.name] = f"FAILED: {str(e).splitlines()[0][:200]}"
        results.problems.append(f"[{setup.name}] Redis LPUSH: {e}")
    finally:
        proc.stop()


def run_throughput(args, results, procs, tmp, log_dir, secret, token, setup):
    """Every throughput case of this setup against its own same-run baseline.
    Returns True when a node failed."""
    failed = False
    run_baseline(args, results, procs, log_dir, token, setup)
    for fsync in ("always", "never"):
        cases = [c for c in args.cases if CASES[c][2] == fsync]
        if not cases:
            continue
        try:
            run_node_cases(args, results, procs, tmp, log_dir, secret, token, fsync, cases,
                           setup)
        except (BenchError, requests.RequestException) as e:
            failed = True
            results.problems.append(f"fsync={fsync} node ({setup.name}): {e}")
            log(f"fsync={fsync} node ({setup.name}) failed: {str(e).splitlines()[0]}")
    if "publish_always" in args.cases and not args.skip_redis:
        run_redis(args, results, procs, log_dir, tmp, setup)
    return failed


def run_memory(args, results, procs, tmp, log_dir, secret, token):
    n = args.messages
    m = results.memory
    m["messages"] = n
    m["fill"] = args.fill
    node = Momd(args, procs, log_dir, os.path.join(tmp, "data-memory"), secret, "never",
                "memory").start()
    try:
        s = session(token)
        create(s, node.base, "queues", "mem")
        rss0, _ = node.proc.rss_kb()
        m["rss_empty_mb"] = rss0 / 1024
        if args.fill == "single":
            m["fill_seconds"] = fill_wrk(args, node.base, token, "mem", n)
        else:
            m["fill_seconds"] = fill(node.base, token, "queues", "mem", n)
        time.sleep(0.5)
        m["depth"] = queue_depth(s, node.base, "mem")
        rss, hwm = node.proc.rss_kb()
        m["rss_mb"], m["hwm_mb"] = rss / 1024, hwm / 1024
        m["data_mb"] = dir_mb(node.data_dir)
        log(f"{n} messages queued: depth {m['depth']}, VmRSS {m['rss_mb']:.1f} MB, "
            f"VmHWM {m['hwm_mb']:.1f} MB, data {m['data_mb']:.1f} MB")
        s.close()
        m["exit_code"] = node.stop()
        m["stop_seconds"] = node.proc.stop_seconds
        node.start()
        m["restart_ready_s"] = node.ready_seconds
        m["restart_readyz_s"] = node.readyz_seconds
        s = session(token)
        m["depth_after"] = queue_depth(s, node.base, "mem")
        m["rss_after_mb"] = node.proc.rss_kb()[0] / 1024
        log(f"restart: READY after {node.ready_seconds:.3f}s, /readyz after "
            f"{node.readyz_seconds:.3f}s, depth {m['depth_after']}")
    except (BenchError, requests.RequestException) as e:
        m["error"] = str(e).splitlines()[0]
        results.problems.append(f"memory/restart: {e}")
    finally:
        node.stop()


def page_weight(base):
    """Everything the dashboard loads before it signs in: the page at / and
    each file it references (src=, href=; all from the node), as
    [(path, bytes, content type)]. API calls made after sign-in are not
    counted: they depend on what the cluster holds."""
    r = expect(requests.get(base + "/", timeout=10), (200,), "dashboard page")
    files = [("/", len(r.content), r.headers.get("Content-Type", ""))]
    for ref in re.findall(r'(?:src|href)="([^"#][^"]*)"', r.text):
        if not ref.startswith("/") or ref.startswith("//"):
            raise BenchError(f"the dashboard references {ref}, not a file of the node")
        a = expect(requests.get(base + ref, timeout=10), (200,), f"dashboard file {ref}")
        files.append((ref, len(a.content), a.headers.get("Content-Type", "")))
    return files


def run_page_weight(args, results, procs, tmp, log_dir, secret):
    node = Momd(args, procs, log_dir, os.path.join(tmp, "data-page"), secret, "never",
                "page").start()
    try:
        files = page_weight(node.base)
    finally:
        node.stop()
    total = sum(n for _, n, _ in files)
    log(f"dashboard page weight: {total} bytes in {len(files)} files")
    rows = ["| file | bytes | Content-Type |", "|---|---:|---|"]
    rows += [f"| `{path}` | {n} | {ctype} |" for path, n, ctype in files]
    rows.append(f"| **total** | **{total}** | |")
    return "\n".join(rows)


def machine_line():
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
            f"load average {load} (other work on the machine skews the numbers)")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--momd", required=True, help="absolute path of the momd binary")
    ap.add_argument("--bench-dir", required=True,
                    help="directory holding baseline_server; results.md and logs/ go here")
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run (5)")
    ap.add_argument("--conns", default="64",
                    help="connection counts of the usual setup's throughput cases, comma list "
                         "(64; 64,256 adds the informational 256-connection rows); the pinned "
                         "setup runs at 64")
    ap.add_argument("--messages", type=int, default=1_000_000,
                    help="messages for the memory/restart test (1000000)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 2 s runs and 100000 messages")
    ap.add_argument("--cases", default=",".join(CASE_ORDER),
                    help="comma list of cases to run (baseline always runs): "
                         + ",".join(CASE_ORDER))
    ap.add_argument("--fill", choices=("batch", "single"), default="batch",
                    help="memory test: publish in batches of 1000 (a log of count/1000 "
                         "entries) or one message per request with wrk (count entries)")
    ap.add_argument("--setups", default="usual,pinned",
                    help="comma list of setups for the throughput cases and the cluster: usual "
                         "(unpinned, wrk -t2), pinned (servers on core 0, wrk -t1 on core 1)")
    ap.add_argument("--skip-redis", action="store_true",
                    help="skip Redis's appendfsync-always LPUSH beside the durable publish")
    ap.add_argument("--skip-memory", action="store_true", help="skip memory/restart test")
    ap.add_argument("--skip-cluster", action="store_true", help="skip the three-node cluster")
    ap.add_argument("--skip-serial", action="store_true",
                    help="skip the one-client latency by answer size and serial batch publish")
    ap.add_argument("--only-serial", action="store_true",
                    help="run only the one-client cases (bench_serial.py)")
    ap.add_argument("--skip-metrics", action="store_true",
                    help="skip the metrics cost and scrape benchmarks (bench_metrics.py)")
    ap.add_argument("--metrics-rounds", type=int, default=3,
                    help="publish runs per binary for the metrics cost (3)")
    ap.add_argument("--callgrind", action="store_true",
                    help="also count instructions per publish with valgrind (slow, "
                         "independent of the machine's load)")
    ap.add_argument("--only-metrics", action="store_true",
                    help="run only the metrics benchmarks")
    ap.add_argument("--skip-streams", action="store_true",
                    help="skip the event-stream benchmarks (bench_streams.py)")
    ap.add_argument("--only-streams", action="store_true",
                    help="run only the event-stream benchmarks")
    ap.add_argument("--skip-hostile", action="store_true",
                    help="skip the hostile-client cases (bench_hostile.py)")
    ap.add_argument("--only-hostile", action="store_true",
                    help="run only the hostile-client cases")
    ap.add_argument("--skip-tls", action="store_true",
                    help="skip publish over TLS against plain (bench_tls.py)")
    ap.add_argument("--only-tls", action="store_true",
                    help="run only publish over TLS against plain")
    ap.add_argument("--skip-qstream", action="store_true",
                    help="skip queue streams against receive+ack polling")
    ap.add_argument("--only-qstream", action="store_true",
                    help="run only queue streams against receive+ack polling")
    ap.add_argument("--skip-snapshot", action="store_true",
                    help="skip publish latency while snapshots are written (bench_snapshot.py)")
    ap.add_argument("--only-snapshot", action="store_true",
                    help="run only publish latency while snapshots are written")
    ap.add_argument("--rx-prefill", type=int, default=0,
                    help="messages queued before each receive+ack run "
                         "(default: the baseline rate x duration, at least 50,000)")
    ap.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    ap.add_argument("--momd-log-level", default="warn")
    ap.add_argument("--start-timeout", type=float, default=60.0,
                    help="seconds allowed for a start (READY line and /readyz)")
    ap.add_argument("--keep", action="store_true", help="keep the temp data dirs")
    ap.add_argument("--strict", action="store_true", help="exit 2 when a target is missed")
    args = ap.parse_args(argv)
    if args.only_qstream:  # the parts that run before it
        args.skip_streams = args.skip_hostile = True
    if args.quick:
        args.duration = 2 if args.duration == 5 else args.duration
        args.messages = 100_000 if args.messages == 1_000_000 else args.messages
    if args.fill == "single":  # wrk publishes the same count on each thread
        args.messages = (args.messages + THREADS - 1) // THREADS * THREADS
    if args.only_snapshot:  # the parts that run before it
        args.skip_streams = args.skip_hostile = args.skip_qstream = args.skip_serial = True
        args.skip_metrics = args.skip_tls = True
    if args.only_tls:
        args.skip_streams = args.skip_hostile = args.skip_serial = args.skip_metrics = True
        args.skip_qstream = True
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    args.setups = [x.strip() for x in args.setups.split(",") if x.strip()]
    try:
        conns = tuple(int(c) for c in args.conns.split(",") if c.strip())
    except ValueError:
        ap.error(f"--conns: not a comma list of integers: {args.conns!r}")
    if not conns or conns[0] != 64:
        ap.error("--conns must start with 64 (the connection count the targets apply at)")
    SETUPS["usual"].conns = conns
    for x in args.setups:
        if x not in SETUPS:
            ap.error(f"unknown setup {x!r}")
    if "pinned" in args.setups and (os.cpu_count() or 1) < 2:
        ap.error("the pinned setup needs two cores (servers on core 0, wrk on core 1)")
    for c in args.cases:
        if c not in CASES:
            ap.error(f"unknown case {c!r}")
    for path in (args.momd, os.path.join(args.bench_dir, "baseline_server"), args.wrk):
        if not os.access(path, os.X_OK):
            ap.error(f"not executable: {path}")
    return args


def free_port():
    import socket
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


class ClusterNode:
    """One member of a three-node cluster on loopback (fixed peer port)."""

    def __init__(self, args, procs, log_dir, tmp, secret, node_id, peers, peer_port, wrap=()):
        self.args, self.procs, self.log_dir = args, procs, log_dir
        self.wrap = list(wrap)
        self.node_id, self.peers, self.peer_port = node_id, peers, peer_port
        self.data_dir = os.path.join(tmp, f"cluster-{node_id}-{os.urandom(3).hex()}")
        self.secret = secret
        self.starts = 0
        self.proc = None
        self.base = None

    def start(self, bootstrap):
        self.starts += 1
        argv = [self.args.momd, "--node-id", str(self.node_id), "--http-addr", "127.0.0.1:0",
                "--peer-addr", f"127.0.0.1:{self.peer_port}", "--peers", self.peers,
                "--cluster-secret", self.secret, "--data-dir", self.data_dir,
                "--jwt-secret", self.secret, "--fsync", "always",
                "--log-level", self.args.momd_log_level]
        if bootstrap:
            argv += ["--bootstrap", "true"]
        self.proc = self.procs.add(Proc(f"cluster{self.node_id}-{self.starts}", self.wrap + argv,
                                        self.log_dir))
        m, _ = self.proc.wait_line(r"MOMD READY .*http=(\S+)", self.args.start_timeout)
        self.base = f"http://{m.group(1)}"
        return self


def cluster_leader(nodes, token, timeout=15.0):
    s = session(token)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for n in nodes:
            if not n.proc.alive():
                continue
            try:
                v = s.get(n.base + "/v1/cluster", timeout=2).json()
            except (requests.RequestException, ValueError):
                continue
            if v.get("role") == "leader":
                return n
        time.sleep(0.05)
    raise BenchError("no leader elected within %.0f s" % timeout)


def run_cluster_bench(args, results, procs, tmp, log_dir, secret, token, setup=None):
    """Issue 4's bench: publish through the leader and through a follower of
    a three-node cluster (fsync=always, 64 connections) beside the
    single-node publish of this run and setup, and the failover time (kill
    -9 of the leader to the first committed write) over several trials. In
    the pinned setup (all three nodes on core 0, wrk on core 1) only the
    follower path, issue 14's target."""
    setup = setup or SETUPS["usual"]
    ports = [free_port() for _ in range(3)]
    peers = ",".join(f"{i + 1}=127.0.0.1:{p}" for i, p in enumerate(ports))
    nodes = [ClusterNode(args, procs, log_dir, tmp, secret, i + 1, peers, ports[i],
                         setup.server_wrap())
             for i in range(3)]
    for n in nodes:
        n.start(bootstrap=True)
    s = session(token)
    leader = cluster_leader(nodes, token)
    follower = next(n for n in nodes if n is not leader)
    for n in nodes:
        wait_readyz(n.base, n.proc, args.start_timeout)
    single = results.get(setup.name, "publish_always")
    single = single["rps"] if single else None
    lines = ["| path | req/s | ratio to single node | p50 ms | p99 ms | target | met? |",
             "|---|---:|---:|---:|---:|---|---|"]
    paths = (("through the leader", leader), ("through a follower", follower))
    if setup.pinned:
        paths = paths[1:]
    for label, node in paths:
        q = "cl-" + label.split()[-1]
        create(s, node.base, "queues", q)
        log(f"[{setup.name}] 3-node publish {label} -c64 for {args.duration}s")
        res = run_wrk(args, "publish.lua", node.base, 64, {"MOM_TOKEN": token, "MOM_QUEUE": q},
                      setup)
        ratio = res["rps"] / single if single else 0.0
        p99 = res["p99_us"] / 1000
        met = ratio >= FOLLOWER_RATIO and p99 < FOLLOWER_P99_MS
        if node is follower:
            results.follower[setup.name] = (ratio, p99)
        lines.append(f"| {label} | {res['rps']:,.0f} | {ratio:.2f} | {fmt_ms(res['p50_us'])} | "
                     f"{fmt_ms(res['p99_us'])} | ratio >= {FOLLOWER_RATIO}, p99 < "
                     f"{FOLLOWER_P99_MS:.0f} ms | {'yes' if met else '**no**'} |")
        if not met:
            results.missed += 1
    if setup.pinned:
        for n in nodes:
            n.proc.stop()
        return "\n".join(lines)
    create(s, leader.base, "queues", "failover")
    times = []
    for trial in range(3 if args.quick else 5):
        leader = cluster_leader(nodes, token)
        others = [n for n in nodes if n is not leader]
        leader.proc.popen.kill()
        leader.proc.popen.wait(timeout=10)
        t0 = time.monotonic()
        done = None
        while time.monotonic() - t0 < 30 and done is None:
            for n in others:
                try:
                    r = s.post(n.base + "/v1/queues/failover/messages", data=b"x" * 100,
                               timeout=1)
                except requests.RequestException:
                    continue
                if r.status_code == 201:
                    done = time.monotonic() - t0
                    break
            time.sleep(0.01)
        if done is None:
            raise BenchError(f"failover trial {trial + 1}: no write committed within 30 s")
        times.append(done)
        log(f"failover trial {trial + 1}: {done:.2f} s")
        leader.proc.stop()
        leader.start(bootstrap=False)
        wait_readyz(leader.base, leader.proc, args.start_timeout)
    lines += ["", "| failover: kill -9 of the leader to the first committed write | value |",
              "|---|---:|"]
    lines += [f"| trial {i + 1} | {t:.2f} s |" for i, t in enumerate(times)]
    lines.append(f"| median | {sorted(times)[len(times) // 2]:.2f} s |")
    for n in nodes:
        n.proc.stop()
    return "\n".join(lines)


def run_peer_bench(args):
    """The peer channel's own load client (test/bench/peer_bench.c): Ping
    RPC/s and Raft appends (batches of entries) beside a same-run TCP echo."""
    exe = os.path.join(args.bench_dir, "peer_bench")
    if not os.path.exists(exe):
        return None
    seconds = 2 if args.quick else 5
    log(f"peer channel bench ({seconds} s per run)")
    r = subprocess.run([exe, "--seconds", str(seconds)], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        raise BenchError(f"peer_bench exited {r.returncode}: {r.stderr[-300:]}")
    return r.stdout


def main(argv):
    args = parse_args(argv)
    results = Results()
    procs = Procs()
    tmp = tempfile.mkdtemp(prefix="mom-bench-")
    log_dir = os.path.join(args.bench_dir, "logs")
    shutil.rmtree(log_dir, ignore_errors=True)
    os.makedirs(log_dir)
    secret = os.urandom(24).hex()
    token = mint_token(secret)
    failed = False
    peer_report = None
    cluster_report = {}  # setup name -> markdown
    page_report = None
    metrics_report = None
    serial_report = None
    hostile_report = None
    streams_report = None
    tls_report = None
    qstream_report = None
    snapshot_report = None
    started = datetime.datetime.now(datetime.timezone.utc)
    machine_before = machine_line()
    load_before = os.getloadavg()[0]
    try:
        # the helper modules import this module by name: one copy, so that
        # their BenchError is the one caught here
        sys.modules.setdefault("run_bench", sys.modules[__name__])
        if not args.skip_streams:
            import bench_streams
            streams_report, missed = bench_streams.run(args, procs, log_dir, tmp, secret, token)
            results.missed += missed
        if args.only_streams:
            raise StopIteration
        if not args.skip_hostile:
            import bench_hostile
            hostile_report, missed = bench_hostile.run(args, procs, log_dir, tmp, secret,
                                                       token)
            results.missed += missed
        if args.only_hostile:
            raise StopIteration
        if not args.skip_qstream:
            import bench_qstream
            qstream_report, missed = bench_qstream.run(args, procs, log_dir, tmp, secret, token)
            results.missed += missed
        if args.only_qstream:
            raise StopIteration
        if not args.skip_serial:
            import bench_serial
            serial_report = bench_serial.run(args, procs, log_dir, tmp, secret, token)
        if args.only_serial:
            raise StopIteration
        if not args.skip_metrics:
            import bench_metrics
            metrics_report, missed = bench_metrics.run(args, procs, log_dir, tmp, secret, token)
            results.missed += missed
        if args.only_metrics:
            raise StopIteration
        if not args.skip_tls:
            import bench_tls
            tls_report = bench_tls.run(args, procs, log_dir, tmp, secret, token)
        if args.only_tls:
            raise StopIteration
        if not args.skip_snapshot:
            import bench_snapshot
            snapshot_report, missed = bench_snapshot.run(args, procs, log_dir, tmp, secret, token)
            results.missed += missed
        if args.only_snapshot:
            raise StopIteration
        for name in args.setups:
            if run_throughput(args, results, procs, tmp, log_dir, secret, token, SETUPS[name]):
                failed = True

        if not args.skip_memory:
            run_memory(args, results, procs, tmp, log_dir, secret, token)
        page_report = run_page_weight(args, results, procs, tmp, log_dir, secret)
        peer_report = run_peer_bench(args)
        if not args.skip_cluster:
            for name in args.setups:
                cluster_report[name] = run_cluster_bench(args, results, procs, tmp, log_dir,
                                                         secret, token, SETUPS[name])
    except StopIteration:
        pass  # --only-metrics, --only-serial, --only-hostile, --only-streams, --only-tls,
        # --only-qstream, --only-snapshot
    except (BenchError, requests.RequestException) as e:
        failed = True
        results.problems.append(str(e))
        log(f"aborted: {str(e).splitlines()[0]}")
    finally:
        procs.stop_all()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    report = [f"# mom benchmark ({started:%Y-%m-%d %H:%M} UTC)", "",
              f"- machine at start: {machine_before}",
              f"- load average at end (includes this run's own load): "
              f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}",
              f"- momd: `{args.momd}`; {args.duration} s per wrk run, "
              f"100-byte bodies, bearer token on every request",
              "- setups, each with its own baseline and nodes: "
              + "; ".join(SETUPS[n].describe() for n in args.setups),
              "- baseline: test/bench/baseline_server (single-thread evhtp, 200, no work), "
              "driven with publish.lua (same 100-byte POST); ratios are to the baseline of the "
              "same setup at the same connection count",
              "- receive+ack counts pairs/s (one receive + one ack = one pair); p50/p99 are per "
              "request (receives and acks mixed)",
              "- targets apply at 64 connections; 256-connection rows are informational", ""]
    if load_before > 0.5 * (os.cpu_count() or 1):
        report += [f"**Warning: the 1-minute load average was {load_before:.2f} when the run "
                   "started: other work competes for the cores and the ratios are not "
                   "trustworthy. Re-run on an idle machine.**", ""]
    only = (args.only_metrics or args.only_serial or args.only_hostile or args.only_streams
            or args.only_tls or args.only_qstream or args.only_snapshot)
    if not only:
        for name in args.setups:
            report += [f"## Throughput and latency, {SETUPS[name].describe()}", "",
                       table(results, name), ""]
    if streams_report:
        report += ["## Event streams (SSE)", "", streams_report, ""]
    if hostile_report:
        report += ["## Hostile clients (fsync=always)", "", hostile_report, ""]
    if qstream_report:
        report += ["## Queue streams against receive+ack polling", "", qstream_report, ""]
    if serial_report:
        report += ["## One serial client (latency by answer size, batch publish)", "",
                   serial_report, ""]
    if metrics_report:
        report += ["## Metrics: cost of the updates, scrape time", "", metrics_report, ""]
    if tls_report:
        report += ["## Client TLS: publish over TLS against plain (same build)", "", tls_report,
                   ""]
    if snapshot_report:
        report += ["## Publish latency while snapshots are written", "", snapshot_report, ""]
    if not args.skip_memory and not only:
        report += ["## Memory and restart", "", memory_table(results)]
    for name, text in cluster_report.items():
        report += ["", f"## Three-node cluster (fsync=always, 64 connections), "
                   f"{SETUPS[name].describe()}", "", text, ""]
    if not only:
        report += ["## Issue 14's targets in this run", "",
                   targets_table(results, args.setups, snapshot_report is not None), ""]
    if page_report:
        report += ["", "## Dashboard page weight (uncompressed, before sign-in)", "",
                   page_report, ""]
    if peer_report:
        report += ["", "## Peer channel (gRPC over our HTTP/2, one loopback connection)", "",
                   "```", peer_report.rstrip(), "```", ""]
    findings = log_findings(log_dir)
    if findings:
        report += ["## momd log findings", ""] + findings + [""]
    if results.problems:
        failed = True
        report += ["## Problems", ""] + [f"- {p.splitlines()[0]}" for p in results.problems] + [""]
        for p in results.problems:
            print(p, file=sys.stderr)
    report += [f"Logs: {log_dir}", ""]
    text = "\n".join(report)
    print(text)
    with open(os.path.join(args.bench_dir, "results.md"), "w") as f:
        f.write(text)
    if failed or any(r["error"] for r in results.rows):
        return 1
    if args.strict and results.missed:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
