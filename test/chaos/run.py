#!/usr/bin/env python3
# Chaos runner: starts a real three-node cluster (fsync=always), drives a
# queue workload through every node — publishes with an Idempotency-Key,
# each retried with the same key until acknowledged; a consumer receiving
# with manual acks — while a seeded schedule applies one fault at a time to
# one node (kill -9 then restart, or SIGSTOP then SIGCONT), then heals,
# drains and checks the recorded history:
#   lost        acknowledged publishes never delivered (must be 0)
#   duplicated  bodies delivered under two or more message ids, i.e. one
#               publish stored twice (must be 0; a redelivery of the same id
#               after an expired lease is at-least-once, counted apart)
#   unexpected  deliveries of a body that was never published (must be 0)
#   stale 4xx   any 4xx for the queue, which exists all along, or for a
#               publish (must be 0; 410 for an ack whose lease expired
#               during a fault is legitimate)
#   errors      other unexpected answers (500...) and sanitizer reports on
#               any node's stderr (must be 0)
# and prints attempted/acknowledged/lost/duplicated/unexpected, the
# availability (share of 100 ms slots of the fault phase in which some
# publish was acknowledged) and the longest outage (longest gap between
# two acknowledged publishes). What it does not do yet: topics and
# subscriptions, partitions, clock jumps, disk full, power loss and
# corruption faults, five-node clusters.
# Usage: MOMD=build/momd run.py --seconds 60 --seed 1 [--scenario kill9]
# SPDX-License-Identifier: MIT

import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from conftest import mint  # noqa: E402
from test_cluster import Cluster  # noqa: E402

QUEUE = "chaos"
REQ_TIMEOUT_S = 2.0
DRAIN_TIMEOUT_S = 90.0
SCENARIOS = ("kill9", "pause", "mixed")


class History:
    """Everything the workload saw, shared by its threads under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempted = {}  # body -> key
        self.acked = set()  # bodies answered 2xx
        self.ack_times = []  # monotonic times of publish acknowledgements
        self.delivered = {}  # body -> set of message ids
        self.deliveries = 0
        self.stale = []  # (what, status, text)
        self.errors = []  # other unexpected answers (5xx other than 503/507)

    def note_stale(self, what, r):
        with self.lock:
            self.stale.append((what, r.status_code, r.text[:200]))


class Workload:
    def __init__(self, cluster, seed):
        self.cluster = cluster
        self.token = mint("chaos")
        self.h = History()
        self.rng = random.Random(seed ^ 0x5EED)
        self.stop_publishing = threading.Event()
        self.stop_consuming = threading.Event()

    def request(self, method, path, **kw):
        """One call to a random node; None when it did not answer."""
        node = self.cluster.nodes[self.rng.randrange(len(self.cluster.nodes))]
        if not node.http:
            return None
        headers = kw.pop("headers", {})
        headers["Authorization"] = "Bearer " + self.token
        try:
            return requests.request(method, node.url(path), headers=headers,
                                    timeout=REQ_TIMEOUT_S, **kw)
        except requests.RequestException:
            return None

    def publisher(self, tag):
        seq = 0
        while not self.stop_publishing.is_set():
            key = "%s-%d" % (tag, seq)
            body = "body-" + key
            seq += 1
            with self.h.lock:
                self.h.attempted[body] = key
            while not self.stop_publishing.is_set():
                r = self.request("POST", "/v1/queues/%s/messages" % QUEUE, data=body.encode(),
                                 headers={"Idempotency-Key": key,
                                          "Content-Type": "text/plain"})
                if r is not None and r.status_code in (200, 201):
                    with self.h.lock:
                        self.h.acked.add(body)
                        self.h.ack_times.append(time.monotonic())
                    break
                if r is not None and 400 <= r.status_code < 500 and r.status_code != 429:
                    self.h.note_stale("publish", r)
                elif r is not None and r.status_code not in (429, 503, 507):
                    with self.h.lock:
                        self.h.errors.append(("publish", r.status_code, r.text[:200]))
                time.sleep(0.05)

    def consumer(self):
        while not self.stop_consuming.is_set():
            r = self.request("POST", "/v1/queues/%s/receive" % QUEUE,
                             params={"max": 10, "wait_ms": 200, "visibility_timeout_ms": 3000})
            if r is None or r.status_code == 503:
                time.sleep(0.05)
                continue
            if r.status_code != 200:
                if 400 <= r.status_code < 500:
                    self.h.note_stale("receive", r)
                else:
                    with self.h.lock:
                        self.h.errors.append(("receive", r.status_code, r.text[:200]))
                time.sleep(0.05)
                continue
            for m in r.json()["messages"]:
                with self.h.lock:
                    self.h.deliveries += 1
                    self.h.delivered.setdefault(m["body"], set()).add(m["id"])
                a = self.request("DELETE", "/v1/queues/%s/messages/%s" % (QUEUE, m["receipt"]))
                if a is None or a.status_code in (204, 410, 503):
                    continue  # unanswered or expired: redelivered later
                if 400 <= a.status_code < 500:
                    self.h.note_stale("ack", a)
                else:
                    with self.h.lock:
                        self.h.errors.append(("ack", a.status_code, a.text[:200]))

    def queue_empty(self):
        r = self.request("GET", "/v1/queues/" + QUEUE)
        if r is None or r.status_code != 200:
            return False
        q = r.json()
        return q["depth"] == 0 and q["in_flight"] == 0


def faults(cluster, scenario, rng, until, log):
    """One fault at a time on one node, from the seed, until `until`."""
    t0 = time.monotonic()
    while time.monotonic() < until:
        time.sleep(rng.uniform(0.3, 1.5))
        i = rng.randrange(len(cluster.nodes))
        node = cluster.nodes[i]
        kind = scenario if scenario != "mixed" else rng.choice(("kill9", "pause"))
        hold = rng.uniform(0.2, 2.5)
        if kind == "kill9":
            node.kill9()
            log.append("t=%.1f kill -9 node %d for %.1f s" % (time.monotonic() - t0, i + 1, hold))
            time.sleep(hold)
            node.start()
        else:
            os.kill(node.proc.pid, signal.SIGSTOP)
            log.append("t=%.1f SIGSTOP node %d for %.1f s" % (time.monotonic() - t0, i + 1, hold))
            time.sleep(hold)
            os.kill(node.proc.pid, signal.SIGCONT)


def check(attempted, acked, delivered, stale, errors):
    """The history's violations, each a sorted list (all must be empty).
    attempted: body -> key; acked: bodies answered 2xx; delivered: body ->
    set of message ids it was delivered under; stale, errors: answers."""
    return {
        "lost": sorted(acked - set(delivered)),
        "duplicated": sorted(b for b, ids in delivered.items() if len(ids) > 1),
        "unexpected": sorted(b for b in delivered if b not in attempted),
        "stale_4xx": list(stale),
        "errors": list(errors),
    }


def outage_stats(ack_times, start, end):
    times = sorted(t for t in ack_times if start <= t <= end)
    edges = [start] + times + [end]
    longest = max(b - a for a, b in zip(edges, edges[1:]))
    slots = max(1, int((end - start) / 0.1))
    hit = {int((t - start) / 0.1) for t in times}
    return len([s for s in hit if s < slots]) / slots, longest


def run_scenario(scenario, seconds, seed, workdir):
    rng = random.Random("%s-%d" % (scenario, seed))
    tmp = Path(tempfile.mkdtemp(prefix="chaos-%s-" % scenario, dir=workdir))
    cluster = Cluster(tmp)
    for m in cluster.nodes:
        m.env["MOM_FSYNC"] = "always"
    fault_log = []
    w = None
    try:
        cluster.start()
        li = cluster.leader(timeout=20)
        r = requests.put(cluster.nodes[li].url("/v1/queues/" + QUEUE),
                         json={"max_deliveries": 1000000},
                         headers={"Authorization": "Bearer " + mint("chaos")}, timeout=10)
        assert r.status_code == 201, r.text
        w = Workload(cluster, seed)
        threads = [threading.Thread(target=w.publisher, args=("p%d" % k,), daemon=True)
                   for k in range(2)]
        threads.append(threading.Thread(target=w.consumer, daemon=True))
        for t in threads:
            t.start()
        start = time.monotonic()
        faults(cluster, scenario, rng, start + seconds, fault_log)
        end = time.monotonic()
        # heal: every node running and continued, one agreed leader
        for m in cluster.nodes:
            if not m.running():
                m.start()
        cluster.leader(timeout=30)
        w.stop_publishing.set()
        for t in threads[:-1]:
            t.join(timeout=10)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        drained = False
        while time.monotonic() < deadline:
            with w.h.lock:
                missing = w.h.acked - set(w.h.delivered)
            if not missing and w.queue_empty():
                drained = True
                break
            time.sleep(0.2)
        w.stop_consuming.set()
        threads[-1].join(timeout=10)
        h = w.h
        with h.lock:
            found = check(h.attempted, h.acked, h.delivered, h.stale, h.errors)
            availability, longest = outage_stats(h.ack_times, start, end)
            result = {
                "scenario": scenario, "seed": seed, "seconds": seconds,
                "faults": len(fault_log),
                "attempted": len(h.attempted), "acknowledged": len(h.acked),
                "deliveries": h.deliveries, "availability": availability,
                "longest_outage_s": longest, "drained": drained,
            }
        result.update({k: len(v) for k, v in found.items()})
        details = {k: v[:10] for k, v in found.items()}
    finally:
        if w is not None:
            w.stop_publishing.set()
            w.stop_consuming.set()
        cluster.stop_all()
    # a sanitizer build's reports (the whole stderr of every start)
    found["sanitizer"] = [r for r in (m.sanitizer_report() for m in cluster.nodes) if r]
    result["sanitizer"] = len(found["sanitizer"])
    details["sanitizer"] = [r[:300] for r in found["sanitizer"][:3]]
    ok = drained and not any(found.values())
    return ok, result, details, fault_log, tmp


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=60.0, help="fault phase per scenario")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--scenario", choices=SCENARIOS, action="append")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    workdir = args.workdir or tempfile.gettempdir()
    os.makedirs(workdir, exist_ok=True)
    failed = 0
    print("chaos: seed %d, %.0f s of faults per scenario, fsync=always, 3 nodes" %
          (seed, args.seconds), flush=True)
    print("%-8s %6s %9s %12s %5s %10s %10s %9s %12s %14s" %
          ("scenario", "faults", "attempted", "acknowledged", "lost", "duplicated",
           "unexpected", "stale4xx", "availability", "longest outage"), flush=True)
    for scenario in args.scenario or SCENARIOS:
        ok, r, details, fault_log, tmp = run_scenario(scenario, args.seconds, seed, workdir)
        print("%-8s %6d %9d %12d %5d %10d %10d %9d %11.1f%% %12.2f s  %s" %
              (scenario, r["faults"], r["attempted"], r["acknowledged"], r["lost"],
               r["duplicated"], r["unexpected"], r["stale_4xx"], 100 * r["availability"],
               r["longest_outage_s"], "ok" if ok else "FAILED"), flush=True)
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            failed += 1
            print("  drained=%s errors=%d; data and logs kept in %s" %
                  (r["drained"], r["errors"], tmp))
            for k, v in details.items():
                if v:
                    print("  %s: %r" % (k, v))
            for line in fault_log:
                print("  " + line)
    print("chaos: %s (seed %d)" % ("FAILED" if failed else "passed", seed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
