"""The metrics part of `make bench` (called by run_bench.py):

1. Publish throughput with and without the per-request metrics updates:
   build/bench/momd_nometrics is momd with broker/server.c compiled with
   -DMOM_METRICS_OFF (no clock reads, counters or histograms per request;
   everything else identical, /metrics still answers). Both run publish.lua
   at 64 connections with fsync=never (so the disk does not hide the CPU
   cost), alternating binaries for --metrics-rounds rounds; the table shows
   each round and the ratio of the medians (target: at least 0.98).
2. A scrape of a node holding 10,000 queues (and one message in each): 20
   sequential GET /metrics, median and max time, body size (target: under
   50 ms).
3. With --callgrind: instructions per publish from valgrind's callgrind,
   which does not depend on the machine's load: for each binary,
   (Ir(N2 publishes) - Ir(N1 publishes)) / (N2 - N1) over one keep-alive
   connection, so start-up and shutdown cancel out.

SPDX-License-Identifier: MIT
"""

import os
import re
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import requests

import run_bench as rb

SCRAPE_QUEUES = 10000
SCRAPES = 20
SCRAPE_TARGET_MS = 50.0
OVERHEAD_TARGET = 0.98


def start_node(args, procs, log_dir, data_dir, secret, binary, tag, fsync="never",
               wrapper=(), timeout=None):
    os.makedirs(data_dir, exist_ok=True)
    argv = list(wrapper) + [binary, "--node-id", "1", "--http-addr", "127.0.0.1:0",
                            "--peer-addr", "127.0.0.1:0", "--data-dir", data_dir,
                            "--jwt-secret", secret, "--fsync", fsync,
                            "--log-level", args.momd_log_level]
    proc = procs.add(rb.Proc(tag, argv, log_dir))
    m, _ = proc.wait_line(r"MOMD READY .*http=(\S+)", timeout or args.start_timeout)
    base = f"http://{m.group(1)}"
    rb.wait_readyz(base, proc, timeout or args.start_timeout)
    return proc, base


def publish_overhead(args, procs, log_dir, tmp, secret, token):
    nometrics = os.path.join(args.bench_dir, "momd_nometrics")
    rows, rps = [], {"metrics": [], "nometrics": []}
    for rnd in range(args.metrics_rounds):
        for kind, binary in (("metrics", args.momd), ("nometrics", nometrics)):
            tag = f"momd-{kind}-{rnd + 1}"
            proc, base = start_node(args, procs, log_dir, os.path.join(tmp, tag), secret,
                                    binary, tag)
            try:
                rb.create(rb.session(token), base, "queues", "pub")
                rb.log(f"publish with{'out' if kind == 'nometrics' else ''} metrics updates, "
                       f"round {rnd + 1}, -c64 for {args.duration}s")
                res = rb.run_wrk(args, "publish.lua", base, 64,
                                 {"MOM_TOKEN": token, "MOM_QUEUE": "pub"})
                if res["non2xx"]:
                    raise rb.BenchError(f"{tag}: {res['non2xx']} non-2xx answers")
            finally:
                proc.stop()
            rps[kind].append(res["rps"])
            label = "without" if kind == "nometrics" else "with"
            rows.append(f"| {rnd + 1} | {label} | {res['rps']:.0f} | "
                        f"{res['p50_us'] / 1000:.2f} | {res['p99_us'] / 1000:.2f} |")
    with_m = statistics.median(rps["metrics"])
    without = statistics.median(rps["nometrics"])
    ratio = with_m / without if without else 0.0
    ok = ratio >= OVERHEAD_TARGET
    out = ["| round | metrics updates | req/s | p50 ms | p99 ms |", "|---:|---|---:|---:|---:|"]
    out += rows
    out += ["", f"Median with / without: {with_m:.0f} / {without:.0f} req/s = **{ratio:.3f}** "
                f"(target >= {OVERHEAD_TARGET}: {'met' if ok else 'MISSED'}; wrk -t2 -c64, "
                f"fsync=never, 100-byte publishes, {args.duration} s per run)"]
    return "\n".join(out), ok


def loop_cpu_ns(pid):
    """CPU time of the process's main thread (the loop), in ns."""
    with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def scrape_10k(args, procs, log_dir, tmp, secret, token):
    proc, base = start_node(args, procs, log_dir, os.path.join(tmp, "momd-scrape"), secret,
                            args.momd, "momd-scrape")
    try:
        rb.log(f"creating {SCRAPE_QUEUES} queues with one message each")
        def work(i):
            s = requests.Session()
            s.headers["Authorization"] = f"Bearer {token}"
            name = f"sq{i:05d}"
            rb.expect(s.put(f"{base}/v1/queues/{name}", timeout=30), (201,), "PUT queue")
            rb.expect(s.post(f"{base}/v1/queues/{name}/messages", data=b"x", timeout=30),
                      (201,), "publish")
            s.close()

        with ThreadPoolExecutor(max_workers=8) as ex:
            list(ex.map(work, range(SCRAPE_QUEUES)))
        times, size = [], 0
        s = requests.Session()
        cpu0 = loop_cpu_ns(proc.pid)
        for _ in range(SCRAPES):
            t0 = time.perf_counter()
            r = s.get(f"{base}/metrics", timeout=30)
            times.append((time.perf_counter() - t0) * 1000)
            rb.expect(r, (200,), "GET /metrics")
            size = len(r.content)
        depth_lines = len(re.findall(r"^mom_queue_depth\{", r.text, re.M))
        if depth_lines != SCRAPE_QUEUES:
            raise rb.BenchError(f"/metrics listed {depth_lines} queue depths, "
                                f"expected {SCRAPE_QUEUES}")
        cpu_ms = (loop_cpu_ns(proc.pid) - cpu0) / 1e6 / SCRAPES
        med, worst = statistics.median(times), max(times)
        # momd's own view: the /metrics route's latency histogram (arrival to
        # answer handed to the socket: the render, without the transfer)
        last = s.get(f"{base}/metrics", timeout=30).text
        total = re.search(r'^mom_http_request_duration_seconds_sum\{route="/metrics"\} (\S+)$',
                          last, re.M)
        count = re.search(r'^mom_http_request_duration_seconds_count\{route="/metrics"\} (\S+)$',
                          last, re.M)
        server_ms = float(total.group(1)) * 1000 / float(count.group(1)) if total and count else 0
        ok = med < SCRAPE_TARGET_MS
        text = (f"| queues | scrapes | median ms | max ms | in momd (mean) | loop CPU per scrape "
                f"| body | target | met? |\n"
                f"|---:|---:|---:|---:|---:|---:|---:|---|---|\n"
                f"| {SCRAPE_QUEUES} | {SCRAPES} | {med:.1f} | {worst:.1f} | {server_ms:.1f} | "
                f"{cpu_ms:.1f} ms | "
                f"{size / 1e6:.2f} MB, {r.text.count(chr(10))} lines | < {SCRAPE_TARGET_MS:.0f} ms"
                f" (median) | {'yes' if ok else 'NO'} |\n\n"
                f"Median and max are timed by the client (python requests over loopback, "
                f"keep-alive: the render on the loop, the transfer and the client's parse); "
                f"\"in momd\" is the mean of the node's own /metrics latency histogram "
                f"(arrival to the answer handed to the socket); \"loop CPU\" is the loop "
                f"thread's CPU time per scrape (/proc schedstat), which does not grow when other "
                f"work competes for the cores.")
        return text, ok
    finally:
        proc.stop()


def callgrind_ir(args, procs, log_dir, tmp, secret, token, binary, tag, n, only=()):
    """Instructions momd executed (in the functions `only` and their callees
    when given) over n sequential publishes."""
    out = os.path.join(log_dir, f"callgrind-{tag}-{n}{'-only' if only else ''}.out")
    wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    wrapper += [f"--toggle-collect={f}" for f in only]
    proc, base = start_node(args, procs, log_dir, os.path.join(tmp, f"cg-{tag}-{n}"), secret,
                            binary, f"cg-{tag}-{n}", wrapper=wrapper,
                            timeout=max(args.start_timeout, 120))
    try:
        s = rb.session(token)
        rb.create(s, base, "queues", "cg")
        body = rb.BODY_100.encode()
        for _ in range(n):
            rb.expect(s.post(f"{base}/v1/queues/cg/messages", data=body, timeout=30), (201,),
                      "publish")
        s.close()
    finally:
        proc.stop(timeout=120)
    with open(out) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise rb.BenchError(f"no totals in {out}")


# What a request's metrics update runs: the two clock reads (arrival and
# answer) and the counter/histogram update.
METRICS_FUNCTIONS = ("metrics_count_request", "clock_mono_us")


def callgrind_report(args, procs, log_dir, tmp, secret, token):
    n1, n2 = 500, 2500
    nometrics = os.path.join(args.bench_dir, "momd_nometrics")
    per, only = {}, {}
    for tag, binary in (("metrics", args.momd), ("nometrics", nometrics)):
        rb.log(f"callgrind: {tag}, {n1} and {n2} publishes, whole process and "
               f"{'/'.join(METRICS_FUNCTIONS)} alone")
        a = callgrind_ir(args, procs, log_dir, tmp, secret, token, binary, tag, n1)
        b = callgrind_ir(args, procs, log_dir, tmp, secret, token, binary, tag, n2)
        per[tag] = (b - a) / (n2 - n1)
        a = callgrind_ir(args, procs, log_dir, tmp, secret, token, binary, tag, n1,
                         METRICS_FUNCTIONS)
        b = callgrind_ir(args, procs, log_dir, tmp, secret, token, binary, tag, n2,
                         METRICS_FUNCTIONS)
        only[tag] = (b - a) / (n2 - n1)
    cost = only["metrics"] - only["nometrics"]
    return (f"| binary | instructions per publish | of which in {' + '.join(METRICS_FUNCTIONS)} |"
            f"\n|---|---:|---:|\n"
            f"| momd | {per['metrics']:.0f} | {only['metrics']:.1f} |\n"
            f"| momd_nometrics | {per['nometrics']:.0f} | {only['nometrics']:.1f} |\n\n"
            f"The metrics updates cost **{cost:.0f} instructions per request** "
            f"({100 * cost / per['nometrics']:.2f} % of a publish). Counts are "
            f"(Ir({n2}) - Ir({n1})) / {n2 - n1} over one client and one keep-alive "
            f"connection, fsync=never, 100-byte bodies, every thread of momd, the kernel "
            f"excluded; the second column counts only inside those functions "
            f"(--toggle-collect), which the loop's timers also call, so the difference "
            f"between the binaries is the updates'. The whole-process totals differ by "
            f"timer work that depends on how long each run took under valgrind.")


def run(args, procs, log_dir, tmp, secret, token):
    """Returns (markdown, number of targets missed)."""
    parts, missed = [], 0
    text, ok = publish_overhead(args, procs, log_dir, tmp, secret, token)
    parts += ["### Publish with and without metrics updates", "", text, ""]
    missed += not ok
    text, ok = scrape_10k(args, procs, log_dir, tmp, secret, token)
    parts += ["### A scrape of 10,000 queues", "", text, ""]
    missed += not ok
    if args.callgrind:
        parts += ["### Instructions per publish", "",
                  callgrind_report(args, procs, log_dir, tmp, secret, token), ""]
    return "\n".join(parts), missed
