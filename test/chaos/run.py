#!/usr/bin/env python3
# Chaos runner: for each scenario (scenarios.py's registry, filled by the
# fault modules faults_*.py) it starts a real cluster (cluster.py; 3 or 5
# members, MOM_FSYNC=always unless --fsync says otherwise), drives the
# workload (workload.py: queue publishes with Idempotency-Key, receives,
# acks and consumers that crash holding messages; topic publishes, reads
# through every member, a durable subscription read and acked) while the
# scenario applies its seeded faults, then heals, drains, reads the whole
# topic through every member and checks the history (check.py lists every
# property). It prints per scenario: faults applied, attempted and
# acknowledged publishes (queue + topic), lost, duplicated, unexpected,
# other violations, availability (share of 100 ms slots of the fault phase
# in which some publish was acknowledged) and the longest outage (longest
# gap between acknowledged publishes). Exit status 1 when any scenario
# found a violation, did not drain, or a node wrote a sanitizer report.
# Usage: MOMD=build/momd run.py --seconds 60 --seed 1 [--scenario kill9 ...]
#        [--ci] [--fsync always|everysec|never] [--results out.jsonl]
# SPDX-License-Identifier: MIT

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check import check, outage_stats  # noqa: E402
from cluster import ChaosCluster, NoLeader, mint  # noqa: E402
from conftest import MomdStartError  # noqa: E402
from scenarios import Context, load  # noqa: E402
from workload import Workload  # noqa: E402

DRAIN_TIMEOUT_S = 120.0
LOST = ("queue_lost", "topic_lost")
DUPLICATED = ("queue_duplicated", "topic_duplicated")
UNEXPECTED = ("queue_unexpected", "topic_unexpected")


def drain(w, cluster):
    """Waits until every acknowledged publish was delivered, the queue is
    empty and the subscription has no lag; True when it got there."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        with w.h.lock:
            delivered = {d[0] for d in w.h.deliveries}
            missing = w.h.acked - delivered
        if not missing and w.queue_empty() and w.sub_lag() == 0:
            return True
        time.sleep(0.3)
    return False


def read_everything(w, cluster):
    """Reads the whole topic through every member (the same order on every
    node is then checked offset by offset)."""
    rng = random.Random(0)
    for i in range(cluster.n):
        frm, tries = 0, 0
        while tries < 50:
            msgs = w.topic_read(rng, frm, mx=1000, node=i)
            if msgs is None:
                tries += 1
                time.sleep(0.2)
                continue
            if not msgs:
                break
            frm = msgs[-1][0] + 1


def run_scenario(sc, seconds, seed, workdir, fsync):
    rng = random.Random("%s-%d" % (sc.name, seed))
    tmp = tempfile.mkdtemp(prefix="chaos-%s-" % sc.name, dir=workdir)
    cluster = ChaosCluster(tmp, n=sc.nodes, fsync=fsync)
    w = None
    ctx = None
    result = {"scenario": sc.name, "seed": seed, "seconds": seconds, "fsync": fsync,
              "nodes": sc.nodes}
    found, drained, problem = {}, False, None
    try:
        sc.prepare(cluster)
        cluster.start()
        w = Workload(cluster, seed, mint("chaos"))
        w.setup(cluster.leader(timeout=30))
        w.start()
        ctx = Context(cluster, rng, time.monotonic() + seconds, w.h)
        sc.run(ctx)
        end = time.monotonic()
        sc.heal(ctx)
        for i in range(cluster.n):
            cluster.resume(i)
            if not cluster.running(i):
                cluster.start(i)
        cluster.leader(timeout=60)
        w.stop_publishing.set()
        time.sleep(4)  # publishes in flight get their answers
        drained = drain(w, cluster)
        w.stop()
        read_everything(w, cluster)
        h = w.h
        with h.lock:
            found = check(h)
            availability, longest = outage_stats(h.ack_times, ctx.start, end)
            result.update({
                "faults": len(ctx.lines),
                "attempted": len(h.attempted) + len(h.t_attempted),
                "acknowledged": len(h.acked) + len(h.t_acked),
                "deliveries": len(h.deliveries), "availability": availability,
                "longest_outage_s": longest, "drained": drained,
                "cut_off_probes": dict(h.probes),
            })
    except (NoLeader, AssertionError, OSError, MomdStartError) as e:
        problem = "%s: %s" % (type(e).__name__, e)
    finally:
        if w is not None:
            w.stop()
        cluster.stop_all()
        sc.cleanup(cluster)
    found["sanitizer"] = [r[:300] for r in cluster.sanitizer_reports()]
    if problem:
        found["harness"] = [problem]
    result["lost"] = sum(len(found.get(k, [])) for k in LOST)
    result["duplicated"] = sum(len(found.get(k, [])) for k in DUPLICATED)
    result["unexpected"] = sum(len(found.get(k, [])) for k in UNEXPECTED)
    result["other"] = sum(len(v) for k, v in found.items()
                          if k not in LOST + DUPLICATED + UNEXPECTED)
    result["violations"] = {k: len(v) for k, v in found.items() if v}
    ok = drained and not problem and not any(found.values())
    result["ok"] = ok
    return ok, result, {k: v[:10] for k, v in found.items() if v}, \
        (ctx.lines if ctx else []), tmp


HEAD = "%-18s %5s %6s %9s %12s %5s %10s %10s %6s %12s %14s"


def main():
    ap = argparse.ArgumentParser(description="mom chaos runner")
    ap.add_argument("--seconds", type=float, default=60.0, help="fault phase per scenario")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--scenario", action="append", help="repeatable; default: all")
    ap.add_argument("--ci", action="store_true", help="only the scenarios of the short CI run")
    ap.add_argument("--fsync", default="always", choices=("always", "everysec", "never"))
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--results", default=None, help="append one JSON line per scenario")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    registry = load()
    if args.list:
        for name, sc in registry.items():
            print("%-16s %d nodes%s  %s" % (name, sc.nodes, "  ci" if sc.ci else "", sc.doc))
        return 0
    names = args.scenario or [n for n, sc in registry.items() if sc.ci or not args.ci]
    for n in names:
        if n not in registry:
            ap.error("unknown scenario %s (--list shows them)" % n)
    seed = args.seed if args.seed is not None else int(time.time())
    workdir = args.workdir or tempfile.gettempdir()
    os.makedirs(workdir, exist_ok=True)
    failed = 0
    print("chaos: seed %d, %.0f s of faults per scenario, fsync=%s" %
          (seed, args.seconds, args.fsync), flush=True)
    print(HEAD % ("scenario", "nodes", "faults", "attempted", "acknowledged", "lost",
                  "duplicated", "unexpected", "other", "availability", "longest outage"),
          flush=True)
    for name in names:
        ok, r, details, fault_log, tmp = run_scenario(registry[name], args.seconds, seed,
                                                      workdir, args.fsync)
        print("%-18s %5d %6d %9d %12d %5d %10d %10d %6d %11.1f%% %12.2f s  %s" %
              (name, r["nodes"], r.get("faults", 0), r.get("attempted", 0),
               r.get("acknowledged", 0), r["lost"], r["duplicated"], r["unexpected"],
               r["other"], 100 * r.get("availability", 0), r.get("longest_outage_s", 0),
               "ok" if ok else "FAILED"), flush=True)
        probes = r.get("cut_off_probes", {})
        if any(probes.values()):
            print("  cut-off nodes probed: %d answered 503, %d 2xx after the heal, "
                  "%d unanswered; %d snapshots installed" % (
                      probes["503"], probes["after heal"], probes["unanswered"],
                      probes.get("snapshots installed", 0)), flush=True)
        if args.results:
            with open(args.results, "a") as f:
                f.write(json.dumps(r) + "\n")
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            failed += 1
            print("  drained=%s; data and logs kept in %s" % (r.get("drained"), tmp))
            for k, v in details.items():
                print("  %s: %r" % (k, v))
            for line in fault_log:
                print("  " + line)
    print("chaos: %s (seed %d)" % ("FAILED" if failed else "passed", seed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
