#!/usr/bin/python3
"""`make bench-peers`: momd beside what its users would pick instead, in one
run with one setup: every server pinned to core 0 (taskset), its load client
on core 1, 64 connections, 100-byte message bodies, each case for
--duration seconds. Rates are compared with the zero-work evhtp server of
test/bench (baseline_server) measured in the same run.

The cases:
- baseline_server (evhtp, answers 200 without work) and nginx (one worker,
  `return 200`): the same 100-byte POST as a publish (publish.lua), wrk -t1;
- momd: publish (publish.lua) with fsync=always and fsync=never, receive+ack
  pairs (receive_ack.lua) with both, bearer JWT on every request;
- Redis (Debian's redis-server, appendonly yes with appendfsync always, then
  appendfsync no): LPUSH then RPOP of 100-byte values with redis-benchmark
  (Debian's redis-tools: -c 64 -P 1 -d 100, one client thread), RESP and no
  token: Redis's own load client, since wrk speaks only HTTP;
- the seed's stack: FastAPI on uvicorn (Debian's packages; uvloop and
  httptools when installed) serving peer_fastapi_app.py, an in-memory queue
  with momd's routes, driven by the same wrk scripts as momd;
- RabbitMQ (Debian's rabbitmq-server, management plugin) through its HTTP
  API: publish to a durable queue (persistent messages) and get with
  ackmode ack_requeue_false (a get and its ack in one request), wrk -t1 with
  peer_post.lua and HTTP basic auth. Skipped with a note when it cannot
  start (or is not installed).

Every server gets a temp directory and free ports and is stopped at the end
(RabbitMQ's epmd too when this run started it). A peer that cannot run is a
"skipped" row with the reason; the run still prints the table.

Usage: bench_peers.py --momd ABS/momd --bench-dir ABS/build/bench [--duration S]
Exit status: 0 when the table was printed and momd's rows ran, 1 otherwise.
SPDX-License-Identifier: MIT
"""

import argparse
import base64
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import requests

import run_bench as rb

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
SERVER_CORE, CLIENT_CORE = "0", "1"
CONNS = 64
BODY_100 = rb.BODY_100


def free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def pinned(core, argv):
    return ["taskset", "-c", core] + list(argv)


def wait_port(port, proc, timeout, what):
    """Until 127.0.0.1:port accepts a connection (proc must stay alive)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise rb.BenchError(f"{what} exited with {proc.popen.returncode}\n"
                                f"{proc.stderr_tail()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise rb.BenchError(f"{what}: port {port} not open within {timeout}s")


def wrk_argv(args, script, url, conns=CONNS):
    """wrk -t1 pinned to the client core (also `make bench`'s pinned setup)."""
    return pinned(CLIENT_CORE, [args.wrk, "-t1", f"-c{conns}", f"-d{args.duration}s",
                                "--latency", "--timeout", "5s", "-s",
                                os.path.join(SCRIPT_DIR, script), url])


def wrk(args, script, url, env_extra):
    """wrk -t1 -c64 pinned to the client core; returns the MOMBENCH fields
    plus rate (pairs/s for receive_ack.lua, else requests/s)."""
    env = dict(os.environ)
    env.update(env_extra)
    argv = wrk_argv(args, script, url)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       env=env, timeout=args.duration + 60)
    m = rb.MOMBENCH_RX.search(r.stdout)
    if r.returncode != 0 or not m:
        raise rb.BenchError(f"wrk {script} failed (rc {r.returncode}): "
                            f"{(r.stdout + r.stderr)[-600:]}")
    res = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    res["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    secs = res["duration_us"] / 1e6
    res["rate"] = (res["pairs"] if "pairs" in res else res["requests"]) / secs
    res["rps"] = res["requests"] / secs
    return res


class Table:
    def __init__(self):
        self.rows = []      # (system, operation, client, res or None, note)
        self.baseline = None

    def add(self, system, op, client, res=None, note=""):
        self.rows.append((system, op, client, res, note))
        if system.startswith("baseline") and res:
            self.baseline = res["rate"]

    def markdown(self):
        out = ["| system | operation | load client | rate | p50 ms | p99 ms | ratio to baseline "
               "| notes |", "|---|---|---|---:|---:|---:|---:|---|"]
        for system, op, client, res, note in self.rows:
            if res is None:
                out.append(f"| {system} | {op} | {client} | — | — | — | — | {note} |")
                continue
            unit = " pairs/s" if "pairs" in res else "/s"
            ratio = f"{res['rate'] / self.baseline:.2f}" if self.baseline else "—"
            notes = [note] if note else []
            errs = res.get("non2xx", 0) + res.get("socket_errors", 0) + res.get("timeouts", 0)
            if errs:
                notes.append(f"errors: non-2xx {res.get('non2xx', 0)}, socket "
                             f"{res.get('socket_errors', 0)}, timeouts {res.get('timeouts', 0)}")
            if res.get("empty"):
                notes.append(f"{res['empty']} empty answers")
            out.append(f"| {system} | {op} | {client} | {res['rate']:,.0f}{unit} | "
                       f"{res['p50_us'] / 1000:.2f} | {res['p99_us'] / 1000:.2f} | {ratio} | "
                       f"{'; '.join(notes)} |")
        return "\n".join(out)


# ---------------------------------------------------------------- the peers

def run_baseline(args, procs, log_dir, table, token):
    proc = procs.add(rb.Proc("peer-baseline", pinned(SERVER_CORE, [
        os.path.join(args.bench_dir, "baseline_server"), "0"]), log_dir))
    m, _ = proc.wait_line(r"READY port=(\d+)", 10)
    try:
        res = wrk(args, "publish.lua", f"http://127.0.0.1:{m.group(1)}",
                  {"MOM_TOKEN": token, "MOM_QUEUE": "bench"})
        table.add("baseline (evhtp, no work)", "POST 100 B, answer 200", "wrk", res)
    finally:
        proc.stop()


def run_nginx(args, procs, log_dir, tmp, table, token):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(nginx, os.X_OK):
        table.add("nginx", "POST 100 B, `return 200`", "wrk", note="skipped: nginx not installed")
        return
    d = os.path.join(tmp, "nginx")
    os.makedirs(d)
    port = free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 100000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok"; }}
    }}
}}
""")
    proc = procs.add(rb.Proc("peer-nginx", pinned(SERVER_CORE, [
        nginx, "-p", d, "-c", conf, "-e", os.path.join(d, "error.log")]), log_dir))
    try:
        wait_port(port, proc, 10, "nginx")
        res = wrk(args, "publish.lua", f"http://127.0.0.1:{port}",
                  {"MOM_TOKEN": token, "MOM_QUEUE": "bench"})
        table.add("nginx (1 worker, static)", "POST 100 B, `return 200`", "wrk", res)
    finally:
        proc.stop()


def run_mom(args, procs, log_dir, tmp, table, secret, token):
    for fsync in ("always", "never"):
        node = rb.Momd(args, procs, log_dir, os.path.join(tmp, f"mom-{fsync}"), secret, fsync,
                       f"peers-{fsync}", wrap=pinned(SERVER_CORE, []))
        node.start()
        try:
            s = rb.session(token)
            rb.create(s, node.base, "queues", "pub")
            res = wrk(args, "publish.lua", node.base, {"MOM_TOKEN": token, "MOM_QUEUE": "pub"})
            table.add(f"mom, fsync={fsync}", "publish", "wrk", res, "bearer JWT, HTTP/1.1")
            rb.create(s, node.base, "queues", "rx")
            rb.fill(node.base, token, "queues", "rx", args.prefill)
            res = wrk(args, "receive_ack.lua", node.base, {"MOM_TOKEN": token, "MOM_QUEUE": "rx"})
            table.add(f"mom, fsync={fsync}", "receive + ack (a pair = 2 requests)", "wrk", res,
                      f"{res['rps']:,.0f} requests/s")
        finally:
            node.stop()


REDIS_CSV = re.compile(r'^"(\w+)[^"]*","([\d.]+)","([\d.]+)","([\d.]+)","([\d.]+)","([\d.]+)",'
                       r'"([\d.]+)","([\d.]+)"', re.M)


def redis_benchmark(args, port, test, n, pin=True):
    """redis-benchmark -c64 -P1 -d100, pinned to the client core unless pin
    is False (`make bench`'s usual setup)."""
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(CONNS), "-P", "1",
            "-d", "100", "-t", test, "-n", str(n), "--csv"]
    r = subprocess.run(pinned(CLIENT_CORE, argv) if pin else argv, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=args.duration * 6 + 120)
    m = REDIS_CSV.search(r.stdout)
    if r.returncode != 0 or not m:
        raise rb.BenchError(f"redis-benchmark -t {test} failed (rc {r.returncode}): "
                            f"{(r.stdout + r.stderr)[-400:]}")
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
    # "p99_latency_ms","max_latency_ms"
    return {"rate": float(m.group(2)), "p50_us": float(m.group(5)) * 1000,
            "p99_us": float(m.group(7)) * 1000, "requests": n}


def redis_installed():
    return bool(shutil.which("redis-server") and shutil.which("redis-benchmark"))


def start_redis(args, procs, log_dir, tmp, fsync, pin=True):
    """redis-server with appendonly yes and this appendfsync, on core 0 unless
    pin is False; returns (proc, port) once its port is open."""
    d = os.path.join(tmp, f"redis-{fsync}{'' if pin else '-unpinned'}")
    os.makedirs(d)
    port = free_port()
    argv = [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
            "--save", "", "--appendonly", "yes", "--appendfsync", fsync, "--daemonize", "no",
            "--protected-mode", "no", "--logfile", ""]
    proc = procs.add(rb.Proc(f"peer-redis-{fsync}", pinned(SERVER_CORE, argv) if pin else argv,
                             log_dir))
    try:
        wait_port(port, proc, 15, "redis-server")
    except rb.BenchError:
        proc.stop()
        raise
    return proc, port


def redis_sized(args, port, test, pin=True):
    """test run for about --duration seconds: a short probe sizes the run."""
    probe = redis_benchmark(args, port, test, 20000, pin)
    n = max(20000, int(probe["rate"] * args.duration))
    return redis_benchmark(args, port, test, n, pin)


def run_redis(args, procs, log_dir, tmp, table):
    if not redis_installed():
        table.add("Redis", "LPUSH / RPOP", "redis-benchmark",
                  note="skipped: redis-server or redis-benchmark not installed")
        return
    for fsync in ("always", "no"):
        proc, port = start_redis(args, procs, log_dir, tmp, fsync)
        try:
            label = f"Redis, appendfsync {fsync}"
            res = redis_sized(args, port, "lpush")
            table.add(label, "LPUSH 100 B", "redis-benchmark", res, "RESP, no token")
            # the list holds what LPUSH and its probe pushed
            res = redis_benchmark(args, port, "rpop", res["requests"])
            table.add(label, "RPOP", "redis-benchmark", res, "RESP, no token")
        finally:
            proc.stop()


def run_fastapi(args, procs, log_dir, tmp, table, secret, token):
    label = "FastAPI + uvicorn (seed's stack)"
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        table.add(label, "publish / receive + ack", "wrk", note=f"skipped: {e}")
        return
    impl = []
    for mod, what in (("uvloop", "uvloop"), ("httptools", "httptools")):
        try:
            __import__(mod)
            impl.append(what)
        except ImportError:
            impl.append({"uvloop": "asyncio", "httptools": "h11"}[mod])
    port = free_port()
    env = dict(os.environ, PEER_BENCH_SECRET=secret)
    proc = procs.add(rb.Proc("peer-fastapi", pinned(SERVER_CORE, [
        sys.executable, "-m", "uvicorn", "--app-dir", SCRIPT_DIR, "peer_fastapi_app:app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-access-log",
        "--log-level", "warning"]), log_dir, env=env))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_port(port, proc, 30, "uvicorn")
        note = f"in memory, no disk; {' + '.join(impl)}, 1 worker; JWT checked, cached"
        s = rb.session(token)
        rb.create(s, base, "queues", "pub")
        res = wrk(args, "publish.lua", base, {"MOM_TOKEN": token, "MOM_QUEUE": "pub"})
        table.add(label, "publish", "wrk", res, note)
        rb.create(s, base, "queues", "rx")
        rb.fill(base, token, "queues", "rx", min(args.prefill, 200_000))
        res = wrk(args, "receive_ack.lua", base, {"MOM_TOKEN": token, "MOM_QUEUE": "rx"})
        table.add(label, "receive + ack (a pair = 2 requests)", "wrk", res,
                  f"{res['rps']:,.0f} requests/s; {note}")
    finally:
        proc.stop()


def epmd_running():
    r = subprocess.run(["epmd", "-names"], capture_output=True, text=True, timeout=10)
    return r.returncode == 0


def run_rabbitmq(args, procs, log_dir, tmp, table):
    label = "RabbitMQ (HTTP API)"
    server = "/usr/lib/rabbitmq/bin/rabbitmq-server"
    if not os.access(server, os.X_OK) or not shutil.which("epmd"):
        table.add(label, "publish / get", "wrk",
                  note="skipped: rabbitmq-server is not installed (`make bench-peers` installs "
                       "it from Debian as root)")
        return
    d = os.path.join(tmp, "rabbitmq")
    os.makedirs(d)
    amqp, mgmt, dist = free_port(), free_port(), free_port()
    with open(os.path.join(d, "rabbitmq.conf"), "w") as f:
        f.write(f"listeners.tcp.default = 127.0.0.1:{amqp}\nmanagement.tcp.port = {mgmt}\n"
                f"management.tcp.ip = 127.0.0.1\nloopback_users.guest = true\n")
    with open(os.path.join(d, "enabled_plugins"), "w") as f:
        f.write("[rabbitmq_management].\n")
    epmd_before = epmd_running()
    env = dict(os.environ, HOME=d, RABBITMQ_CONFIG_FILE=os.path.join(d, "rabbitmq.conf"),
               RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(d, "enabled_plugins"),
               RABBITMQ_MNESIA_BASE=os.path.join(d, "mnesia"),
               RABBITMQ_LOG_BASE=os.path.join(d, "log"),
               RABBITMQ_PID_FILE=os.path.join(d, "rabbit.pid"),
               RABBITMQ_NODENAME=f"mombench{os.getpid()}@localhost",
               RABBITMQ_DIST_PORT=str(dist),
               RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+S 1:1")  # one scheduler: one core
    proc = procs.add(rb.Proc("peer-rabbitmq", pinned(SERVER_CORE, [server]), log_dir, env=env))
    base = f"http://127.0.0.1:{mgmt}"
    auth = ("guest", "guest")
    try:
        deadline = time.monotonic() + args.rabbit_timeout
        while True:
            if not proc.alive():
                raise rb.BenchError(f"rabbitmq-server exited with {proc.popen.returncode}: "
                                    f"{proc.stderr_tail(5)}")
            try:
                if requests.get(base + "/api/overview", auth=auth, timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise rb.BenchError(f"management API not up within {args.rabbit_timeout:.0f}s")
            time.sleep(0.25)
        rb.expect(requests.put(base + "/api/queues/%2F/bench", auth=auth, timeout=30,
                               json={"durable": True}), (201, 204), "declare the queue")
        basic = "Basic " + base64.b64encode(b"guest:guest").decode()
        pub = json.dumps({"properties": {"delivery_mode": 2}, "routing_key": "bench",
                          "payload": BODY_100, "payload_encoding": "string"})
        res = wrk(args, "peer_post.lua", base, {
            "PEER_PATH": "/api/exchanges/%2F/amq.default/publish", "PEER_BODY": pub,
            "PEER_AUTH": basic})
        table.add(label, "publish (persistent, durable queue)", "wrk", res,
                  "HTTP basic auth; the HTTP API does not wait for a disk sync")
        get = json.dumps({"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"})
        res = wrk(args, "peer_post.lua", base, {
            "PEER_PATH": "/api/queues/%2F/bench/get", "PEER_BODY": get, "PEER_AUTH": basic,
            "PEER_EMPTY": "[]"})
        table.add(label, "get + ack (one request)", "wrk", res, "HTTP basic auth")
    except (rb.BenchError, requests.RequestException, OSError) as e:
        table.add(label, "publish / get", "wrk",
                  note=f"skipped: {str(e).splitlines()[0][:200]}")
    finally:
        stop_group(proc)
        if not epmd_before and epmd_running():
            subprocess.run(["epmd", "-kill"], capture_output=True, timeout=10)


def stop_group(proc):
    """rabbitmq-server's script runs erl and its helpers as children."""
    if proc.alive():
        try:
            children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                      text=True).stdout.split()
        except OSError:
            children = []
        proc.stop(timeout=30)
        for c in children:
            try:
                os.kill(int(c), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    else:
        proc.stop()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--momd", required=True)
    ap.add_argument("--bench-dir", required=True)
    ap.add_argument("--duration", type=int, default=10, help="seconds per case (10)")
    ap.add_argument("--prefill", type=int, default=400_000,
                    help="messages queued before each receive+ack run (400,000)")
    ap.add_argument("--only", default="",
                    help="comma list of peers: baseline,nginx,mom,redis,fastapi,rabbitmq")
    ap.add_argument("--rabbit-timeout", type=float, default=90.0)
    ap.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    ap.add_argument("--momd-log-level", default="warn")
    ap.add_argument("--start-timeout", type=float, default=60.0)
    args = ap.parse_args(argv)
    only = set(x for x in args.only.split(",") if x) or {
        "baseline", "nginx", "mom", "redis", "fastapi", "rabbitmq"}
    if (os.cpu_count() or 1) < 2:
        print("bench-peers pins servers to core 0 and clients to core 1: needs 2 cores",
              file=sys.stderr)
        return 1
    procs = rb.Procs()
    table = Table()
    tmp = tempfile.mkdtemp(prefix="mom-peers-")
    log_dir = os.path.join(args.bench_dir, "logs-peers")
    shutil.rmtree(log_dir, ignore_errors=True)
    os.makedirs(log_dir)
    secret = os.urandom(24).hex()
    token = rb.mint_token(secret)
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    failed = False
    try:
        steps = (("baseline", lambda: run_baseline(args, procs, log_dir, table, token)),
                 ("nginx", lambda: run_nginx(args, procs, log_dir, tmp, table, token)),
                 ("mom", lambda: run_mom(args, procs, log_dir, tmp, table, secret, token)),
                 ("redis", lambda: run_redis(args, procs, log_dir, tmp, table)),
                 ("fastapi", lambda: run_fastapi(args, procs, log_dir, tmp, table, secret,
                                                 token)),
                 ("rabbitmq", lambda: run_rabbitmq(args, procs, log_dir, tmp, table)))
        for name, step in steps:
            if name not in only:
                continue
            rb.log(f"peers: {name}")
            try:
                step()
            except (rb.BenchError, requests.RequestException, OSError,
                    subprocess.TimeoutExpired) as e:
                rb.log(f"{name} failed: {str(e).splitlines()[0]}")
                table.add(name, "—", "—", note=f"FAILED: {str(e).splitlines()[0][:200]}")
                if name in ("baseline", "mom"):
                    failed = True
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    report = [f"# mom beside its peers ({started:%Y-%m-%d %H:%M} UTC)", "",
              f"- machine: {rb.machine_line()}",
              f"- load average at start {load_before[0]:.2f}, at end "
              f"{os.getloadavg()[0]:.2f}",
              f"- every server pinned to core {SERVER_CORE}, its load client to core "
              f"{CLIENT_CORE}; {CONNS} connections, 100-byte bodies, {args.duration} s per "
              f"case; wrk -t1 unless named otherwise",
              "- ratio: the row's rate over the zero-work evhtp baseline's requests/s "
              "(pairs/s for receive + ack, as in `make bench`)", "", table.markdown(), ""]
    if load_before[0] > 0.5:
        report += [f"**Warning: the load average was {load_before[0]:.2f} at the start: other "
                   "work competed for the cores. Re-run on an idle machine.**", ""]
    text = "\n".join(report)
    print(text)
    with open(os.path.join(args.bench_dir, "peers.md"), "w") as f:
        f.write(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
