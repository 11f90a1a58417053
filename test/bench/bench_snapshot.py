"""Publish latency while snapshots are written (called by run_bench.py;
--only-snapshot runs just this part, --skip-snapshot leaves it out).

A snapshot is written by a forked child of momd from its copy-on-write image
(replication/node_snapshot.c); the fork, the parent's copy-on-write faults,
the child's CPU and its disk writes all compete with the loop and with the
log's fdatasync. This part makes them happen often on a large state: one
node with fsync=always and MOM_SNAPSHOT_ENTRIES=SNAPSHOT_ENTRIES holds a
queue prefilled with PREFILL 100-byte messages (batches of 1000, so every
snapshot carries them all), then wrk publishes single 100-byte messages to
another queue with 64 connections for the run's duration (at least
MIN_SECONDS), so a snapshot starts every SNAPSHOT_ENTRIES publishes.

Two setups, each on a fresh node: unpinned (momd and wrk -t2 free to use
both cores) and pinned (momd and its snapshot child on core 0, wrk -t1 on
core 1, as make bench-peers runs). Each prints req/s, p50/p99/max latency
(wrk's, per request), the snapshots momd finished during the run (from
/metrics) and the log's fdatasync time (momd's histogram, count-weighted
bucket estimate of p99). Target: p99 < 5 ms.

SPDX-License-Identifier: MIT
"""

import os
import re
import subprocess

import run_bench as rb

SNAPSHOT_ENTRIES = 20000
PREFILL = 300_000
MIN_SECONDS = 20
P99_TARGET_MS = 5.0
SERVER_CORE, CLIENT_CORE = "0", "1"

LATENCY_RX = re.compile(r"^\s*Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\b", re.M)
UNIT_US = {"us": 1, "ms": 1000, "s": 1_000_000}


def metric(text, name):
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def buckets(text, name):
    """[(le seconds, cumulative count)] of a histogram family without labels."""
    out = []
    for le, v in re.findall(rf'^{name}_bucket\{{le="([^"]+)"\}} (\S+)$', text, re.M):
        out.append((float("inf") if le == "+Inf" else float(le), float(v)))
    return out


def bucket_p99_ms(before, after):
    """Upper bound of the bucket holding the 99th percentile of the
    observations between two scrapes, in ms (None when nothing happened)."""
    b0 = dict(before)
    diff = [(le, n - b0.get(le, 0.0)) for le, n in after]
    total = diff[-1][1] if diff else 0
    if total <= 0:
        return None
    for le, n in diff:
        if n >= 0.99 * total:
            return le * 1000
    return None


def scrape(s, base):
    return rb.expect(s.get(f"{base}/metrics", timeout=30), (200,), "GET /metrics").text


def start_node(args, procs, log_dir, tmp, secret, tag, pinned):
    data = os.path.join(tmp, f"data-{tag}")
    os.makedirs(data, exist_ok=True)
    argv = [args.momd, "--node-id", "1", "--http-addr", "127.0.0.1:0", "--peer-addr",
            "127.0.0.1:0", "--data-dir", data, "--jwt-secret", secret, "--fsync", "always",
            "--snapshot-entries", str(SNAPSHOT_ENTRIES), "--log-level", args.momd_log_level]
    if pinned:
        argv = ["taskset", "-c", SERVER_CORE] + argv
    proc = procs.add(rb.Proc(f"momd-{tag}", argv, log_dir))
    m, _ = proc.wait_line(r"MOMD READY .*http=(\S+)", args.start_timeout)
    base = f"http://{m.group(1)}"
    rb.wait_readyz(base, proc, args.start_timeout)
    return proc, base


def run_publish(args, base, token, seconds, pinned):
    threads = 1 if pinned else rb.THREADS
    argv = [args.wrk, f"-t{threads}", "-c64", f"-d{seconds}s", "--latency", "--timeout", "5s",
            "-s", os.path.join(rb.SCRIPT_DIR, "publish.lua"), base]
    if pinned:
        argv = ["taskset", "-c", CLIENT_CORE] + argv
    env = dict(os.environ, MOM_TOKEN=token, MOM_QUEUE="snap-pub")
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                       timeout=seconds + 60)
    m = rb.MOMBENCH_RX.search(r.stdout)
    lat = LATENCY_RX.search(r.stdout)
    if r.returncode != 0 or not m or not lat:
        raise rb.BenchError(f"wrk publish.lua failed (rc {r.returncode}):\n{r.stdout[-1500:]}\n"
                            f"{r.stderr[-1500:]}")
    res = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    res["max_us"] = float(lat.group(1)) * UNIT_US[lat.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    res["errors"] = (int(non2xx.group(1)) if non2xx else 0) + res["socket_errors"] + \
        res["timeouts"]
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    return res


def one_setup(args, procs, log_dir, tmp, secret, token, pinned):
    tag = "snap-pinned" if pinned else "snap-unpinned"
    prefill = 100_000 if args.quick else PREFILL
    seconds = max(args.duration, MIN_SECONDS)
    proc, base = start_node(args, procs, log_dir, tmp, secret, tag, pinned)
    try:
        s = rb.session(token)
        rb.create(s, base, "queues", "snap-fill")
        rb.create(s, base, "queues", "snap-pub")
        rb.fill(base, token, "queues", "snap-fill", prefill)
        before = scrape(s, base)
        rb.log(f"{tag}: publish -c64 for {seconds}s, a snapshot every {SNAPSHOT_ENTRIES} "
               f"entries over {prefill:,} queued messages")
        res = run_publish(args, base, token, seconds, pinned)
        after = scrape(s, base)
        if not proc.alive():
            raise rb.BenchError(f"{tag}: momd died\n{proc.stderr_tail()}")
        rss_kb, _ = proc.rss_kb()
    finally:
        proc.stop()
    name = "mom_snapshot_duration_seconds"
    snaps = metric(after, f"{name}_count") - metric(before, f"{name}_count")
    snap_s = metric(after, f"{name}_sum") - metric(before, f"{name}_sum")
    fs = "mom_wal_fsync_duration_seconds"
    sync_p99 = bucket_p99_ms(buckets(before, fs), buckets(after, fs))
    res.update(snapshots=int(snaps), snap_mean_s=snap_s / snaps if snaps else 0.0,
               sync_p99_ms=sync_p99, rss_mb=rss_kb / 1024, prefill=prefill)
    rb.log(f"{tag}: {res['rps']:,.0f} req/s, p50 {res['p50_us'] / 1000:.2f} ms, p99 "
           f"{res['p99_us'] / 1000:.2f} ms, max {res['max_us'] / 1000:.1f} ms, "
           f"{res['snapshots']} snapshots")
    return res


def run(args, procs, log_dir, tmp, secret, token):
    """Returns (markdown section, number of missed targets)."""
    setups = [False] + ([True] if (os.cpu_count() or 1) >= 2 else [])
    rows = ["| setup | req/s | p50 ms | p99 ms | max ms | snapshots in the run | mean snapshot s "
            "| log fdatasync p99 ms (bucket) | RSS MB | target | met? |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    missed = 0
    for pinned in setups:
        res = one_setup(args, procs, log_dir, tmp, secret, token, pinned)
        ok = res["p99_us"] / 1000 < P99_TARGET_MS and res["snapshots"] > 0 and not res["errors"]
        missed += not ok
        label = "pinned (momd core 0, wrk -t1 core 1)" if pinned else "unpinned (wrk -t2)"
        sync = f"≤ {res['sync_p99_ms']:g}" if res["sync_p99_ms"] is not None else "—"
        rows.append(f"| {label} | {res['rps']:,.0f} | {res['p50_us'] / 1000:.2f} | "
                    f"{res['p99_us'] / 1000:.2f} | {res['max_us'] / 1000:.1f} | "
                    f"{res['snapshots']} | {res['snap_mean_s']:.2f} | {sync} | "
                    f"{res['rss_mb']:.0f} | p99 < {P99_TARGET_MS:g} ms, ≥ 1 snapshot | "
                    f"{'yes' if ok else '**no**'}" +
                    (f" (errors {res['errors']})" if res["errors"] else "") + " |")
    rows += ["", f"fsync=always, MOM_SNAPSHOT_ENTRIES={SNAPSHOT_ENTRIES}, a queue prefilled "
             f"with {res['prefill']:,} x 100 B (every snapshot holds them), single 100-byte "
             f"publishes with 64 connections for {max(args.duration, MIN_SECONDS)} s."]
    return "\n".join(rows), missed
