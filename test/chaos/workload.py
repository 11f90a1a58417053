# The chaos workload: threads that call random members of the cluster and
# record what they saw in a check.History.
#   publisher (x2)  queue publishes, each with an Idempotency-Key and
#                   retried with the same key until answered 2xx
#   consumer        receives (visibility VISIBILITY_MS) and acks; one batch
#                   in CRASH_EVERY is never acked (a consumer that crashed
#                   holding it: redelivered after the visibility timeout)
#   t_publisher     topic publishes, retried with the same key
#   t_reader        topic reads from a random offset through random members
#   sub_reader      one durable subscription: read from the cursor, ack the
#                   last offset, look at the subscription's cursor
# A member that does not answer (stopped, paused, cut off) is a None; 503
# and 507 are retried; every other unexpected answer is recorded.
# SPDX-License-Identifier: MIT

import random
import threading
import time

import requests

from check import History

QUEUE = "chaos"
TOPIC = "chaos-t"
SUB = "chaos-s"
REQ_TIMEOUT_S = 3.0
VISIBILITY_MS = 4000
CRASH_EVERY = 10
RETRY = (429, 503, 507)


class Workload:
    def __init__(self, cluster, seed, token):
        self.cluster = cluster
        self.token = token
        self.h = History()
        self.seed = seed
        self.stop_publishing = threading.Event()
        self.stop_all = threading.Event()
        self.threads = []

    def request(self, rng, method, path, node=None, **kw):
        """(member index, answer or None) for one call to a random member."""
        i = rng.randrange(self.cluster.n) if node is None else node
        m = self.cluster.nodes[i]
        if not m.http or not m.running():
            return i, None
        headers = kw.pop("headers", {})
        headers["Authorization"] = "Bearer " + self.token
        try:
            return i, requests.request(method, m.url(path), headers=headers,
                                       timeout=REQ_TIMEOUT_S, **kw)
        except requests.RequestException:
            return i, None

    def setup(self, leader):
        """Creates the queue, the topic and the subscription on `leader`."""
        rng = random.Random(0)
        for path, body in (("/v1/queues/" + QUEUE, {"max_deliveries": 1000000}),
                           ("/v1/topics/" + TOPIC, {}),
                           ("/v1/topics/%s/subscriptions/%s" % (TOPIC, SUB),
                            {"start": "earliest"})):
            _, r = self.request(rng, "PUT", path, node=leader, json=body)
            assert r is not None and r.status_code == 201, (path, r and r.text)

    def start(self):
        specs = [(self.publisher, "p0"), (self.publisher, "p1"), (self.consumer, None),
                 (self.t_publisher, "t0"), (self.t_reader, None), (self.sub_reader, None)]
        for k, (fn, arg) in enumerate(specs):
            rng = random.Random("%d-%d" % (self.seed, k))
            args = (rng,) if arg is None else (rng, arg)
            t = threading.Thread(target=fn, args=args, daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self):
        self.stop_publishing.set()
        self.stop_all.set()
        for t in self.threads:
            t.join(timeout=15)

    # ---- queue -------------------------------------------------------------
    def publisher(self, rng, tag):
        h = self.h
        seq = 0
        while not self.stop_publishing.is_set():
            key = "%s-%d" % (tag, seq)
            body = "body-" + key
            seq += 1
            with h.lock:
                h.attempted[body] = key
            while not self.stop_publishing.is_set():
                _, r = self.request(rng, "POST", "/v1/queues/%s/messages" % QUEUE,
                                    data=body.encode(),
                                    headers={"Idempotency-Key": key,
                                             "Content-Type": "text/plain"})
                if r is not None and r.status_code in (200, 201):
                    with h.lock:
                        h.acked.add(body)
                        h.ack_times.append(time.monotonic())
                    break
                if r is not None and r.status_code not in RETRY:
                    h.note("publish", r)
                time.sleep(0.05)

    def consumer(self, rng):
        h = self.h
        while not self.stop_all.is_set():
            t_send = time.monotonic()
            _, r = self.request(rng, "POST", "/v1/queues/%s/receive" % QUEUE,
                                params={"max": 10, "wait_ms": 200,
                                        "visibility_timeout_ms": VISIBILITY_MS})
            t_recv = time.monotonic()
            if r is None or r.status_code in RETRY:
                time.sleep(0.05)
                continue
            if r.status_code != 200:
                h.note("receive", r)
                time.sleep(0.05)
                continue
            msgs = r.json()["messages"]
            with h.lock:
                for m in msgs:
                    h.deliveries.append((m["body"], m["id"], t_send, t_recv,
                                         VISIBILITY_MS / 1000.0))
            if msgs and rng.randrange(CRASH_EVERY) == 0:
                continue  # crashed holding them: redelivered after the timeout
            for m in msgs:
                a_send = time.monotonic()
                _, a = self.request(rng, "DELETE",
                                    "/v1/queues/%s/messages/%s" % (QUEUE, m["receipt"]))
                if a is None:
                    continue
                with h.lock:
                    h.acks.append((m["id"], a.status_code, a_send, time.monotonic()))
                if a.status_code not in (204, 410) + RETRY:
                    h.note("ack", a)

    def queue_empty(self):
        _, r = self.request(random.Random(), "GET", "/v1/queues/" + QUEUE)
        if r is None or r.status_code != 200:
            return False
        q = r.json()
        return q["depth"] == 0 and q["in_flight"] == 0

    # ---- topic -------------------------------------------------------------
    def t_publisher(self, rng, tag):
        h = self.h
        seq = 0
        while not self.stop_publishing.is_set():
            key = "%s-%d" % (tag, seq)
            body = "tbody-" + key
            seq += 1
            with h.lock:
                h.t_attempted.add(body)
            while not self.stop_publishing.is_set():
                _, r = self.request(rng, "POST", "/v1/topics/%s/messages" % TOPIC,
                                    data=body.encode(),
                                    headers={"Idempotency-Key": key,
                                             "Content-Type": "text/plain"})
                if r is not None and r.status_code in (200, 201):
                    with h.lock:
                        h.t_acked[body] = r.json()["offset"]
                        h.t_acked_at.append((time.monotonic(), r.json()["offset"]))
                        h.ack_times.append(time.monotonic())
                    break
                if r is not None and r.status_code not in RETRY:
                    h.note("topic publish", r)
                time.sleep(0.05)

    def topic_read(self, rng, frm, mx=100, node=None):
        """One read; its messages, or None when it was not answered 200."""
        t_send = time.monotonic()
        i, r = self.request(rng, "GET", "/v1/topics/%s/messages" % TOPIC, node=node,
                            params={"from": frm, "max": mx})
        if r is None or r.status_code in RETRY:
            return None
        if r.status_code != 200:
            self.h.note("topic read", r)
            return None
        msgs = [(m["offset"], m["body"]) for m in r.json()["messages"]]
        with self.h.lock:
            self.h.reads.append((i, frm, mx, t_send, msgs))
        return msgs

    def t_reader(self, rng):
        while not self.stop_all.is_set():
            with self.h.lock:
                top = max(self.h.t_acked.values(), default=0)
            self.topic_read(rng, max(0, top - rng.randrange(20)))
            time.sleep(0.05)

    def sub_reader(self, rng):
        h = self.h
        base = "/v1/topics/%s/subscriptions/%s" % (TOPIC, SUB)
        while not self.stop_all.is_set():
            t_send = time.monotonic()
            _, r = self.request(rng, "GET", base + "/messages", params={"max": 50})
            t_recv = time.monotonic()
            if r is None or r.status_code in RETRY:
                time.sleep(0.05)
                continue
            if r.status_code != 200:
                h.note("subscription read", r)
                time.sleep(0.05)
                continue
            msgs = r.json()["messages"]
            with h.lock:
                h.sub_reads.append((t_send, t_recv, msgs[0]["offset"] if msgs else None))
                # max 0: its start (the cursor) is not known in advance, so
                # it is not held to the read-after-write rule
                h.reads.append(("sub", 0, 0, t_send, [(m["offset"], m["body"]) for m in msgs]))
            if msgs:
                last = msgs[-1]["offset"]
                a_send = time.monotonic()
                _, a = self.request(rng, "POST", base + "/ack", json={"offset": last})
                if a is not None:
                    with h.lock:
                        h.sub_acks.append((last, a.status_code, a_send, time.monotonic()))
                    if a.status_code not in (204,) + RETRY:
                        h.note("subscription ack", a)
            c_send = time.monotonic()
            _, c = self.request(rng, "GET", base)
            if c is not None and c.status_code == 200:
                with h.lock:
                    h.cursors.append((c_send, time.monotonic(), c.json()["cursor"]))
            elif c is not None and c.status_code not in RETRY:
                h.note("subscription get", c)
            time.sleep(0.05)

    def sub_lag(self):
        _, r = self.request(random.Random(), "GET",
                            "/v1/topics/%s/subscriptions/%s" % (TOPIC, SUB))
        if r is None or r.status_code != 200:
            return None
        return r.json()["lag"]
