# Crash consistency: client threads publish, consume, publish to a topic and
# move a subscription cursor while the node is SIGKILLed and restarted a few
# times. Every acknowledged (2xx) effect must survive: queue publishes exactly
# once (consumed-and-acked or still stored), acks stay acked, topic messages
# at their offsets, the cursor at least where it was acknowledged.
# SPDX-License-Identifier: MIT

import random
import threading
import time
from collections import Counter

import requests

from conftest import Client, body_bytes, mint

CYCLES = 3
VISIBILITY_MS = 1000
REQ_TIMEOUT_S = 5.0
MAX_OPS_PER_THREAD = 20000


class Record:
    def __init__(self):
        self.lock = threading.Lock()
        self.cycle = 0
        self.attempted = set()        # queue bodies we tried to publish
        self.published = {}           # body -> (id, seq, cycle), 201 answers
        self.acked = {}               # body -> monotonic time the 204 arrived
        self.ack_unknown = set()      # ack sent, answer lost (the node died)
        self.deliveries = []          # (body, id, delivery_count, request start)
        self.late_deliveries = []     # delivered although the request began after its ack
        self.t_attempted = set()
        self.t_published = {}         # offset -> body
        self.t_offsets_seen = {}      # offset -> body, from subscription reads
        self.t_mismatch = []
        self.cursor_acked = 0         # cursor (next offset) acknowledged by a 204
        self.unexpected = []          # (what, status, text)
        self.errors = 0


def _note(rec, what, r):
    with rec.lock:
        rec.unexpected.append((what, r.status_code, r.text[:200]))


def _publisher(m, rec, stop, idx):
    c = Client(m, mint("pub%d" % idx), timeout=REQ_TIMEOUT_S)
    for n in range(MAX_OPS_PER_THREAD):
        if stop.is_set():
            return
        body = "p%d-%d" % (idx, n)
        with rec.lock:
            rec.attempted.add(body)
            cycle = rec.cycle
        try:
            r = c.post("/v1/queues/work/messages", data=body.encode())
        except requests.RequestException:
            with rec.lock:
                rec.errors += 1
            time.sleep(0.02)
            continue
        if r.status_code == 201:
            j = r.json()
            with rec.lock:
                rec.published[body] = (j["id"], j["seq"], cycle)
        elif r.status_code != 503:
            _note(rec, "publish", r)


def _never_sent(exc):
    """True when the request certainly did not reach the node (connect refused)."""
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text


def _consumer(m, rec, stop, idx):
    c = Client(m, mint("con%d" % idx), timeout=REQ_TIMEOUT_S)
    rnd = random.Random(idx)
    for _ in range(MAX_OPS_PER_THREAD):
        if stop.is_set():
            return
        t_req = time.monotonic()
        try:
            r = c.post("/v1/queues/work/receive",
                       params={"max": "10", "wait_ms": "200",
                               "visibility_timeout_ms": str(VISIBILITY_MS)})
        except requests.RequestException:
            with rec.lock:
                rec.errors += 1
            time.sleep(0.02)
            continue
        if r.status_code != 200:
            if r.status_code != 503:
                _note(rec, "receive", r)
            continue
        msgs = r.json()["messages"]
        with rec.lock:
            for msg in msgs:
                b = body_bytes(msg).decode()
                rec.deliveries.append((b, msg["id"], msg["delivery_count"], t_req))
                if b in rec.acked and rec.acked[b] < t_req:
                    rec.late_deliveries.append((b, msg["id"], msg["delivery_count"]))
        for msg in msgs:
            if stop.is_set():
                return
            if rnd.random() < 0.1:
                continue  # leave some leases to expire
            b = body_bytes(msg).decode()
            try:
                a = c.delete("/v1/queues/work/messages/%s" % msg["receipt"])
            except requests.RequestException as e:
                with rec.lock:
                    rec.errors += 1
                    if not _never_sent(e):
                        rec.ack_unknown.add(b)
                break  # the node is down: leave the rest to expire
            if a.status_code == 204:
                with rec.lock:
                    rec.acked.setdefault(b, time.monotonic())
            elif a.status_code == 503:
                with rec.lock:
                    rec.ack_unknown.add(b)
            elif a.status_code != 410:
                _note(rec, "ack", a)


def _topic_publisher(m, rec, stop):
    c = Client(m, mint("tpub"), timeout=REQ_TIMEOUT_S)
    for n in range(MAX_OPS_PER_THREAD):
        if stop.is_set():
            return
        body = "t-%d" % n
        with rec.lock:
            rec.t_attempted.add(body)
        try:
            r = c.post("/v1/topics/log/messages", data=body.encode())
        except requests.RequestException:
            with rec.lock:
                rec.errors += 1
            time.sleep(0.02)
            continue
        if r.status_code == 201:
            with rec.lock:
                rec.t_published[r.json()["offset"]] = body
        elif r.status_code != 503:
            _note(rec, "topic publish", r)


def _sub_acker(m, rec, stop):
    c = Client(m, mint("subber"), timeout=REQ_TIMEOUT_S)
    for _ in range(MAX_OPS_PER_THREAD):
        if stop.is_set():
            return
        try:
            r = c.get("/v1/topics/log/subscriptions/s/messages",
                      params={"max": "50", "wait_ms": "200"})
        except requests.RequestException:
            with rec.lock:
                rec.errors += 1
            time.sleep(0.02)
            continue
        if r.status_code != 200:
            if r.status_code != 503:
                _note(rec, "sub read", r)
            continue
        msgs = r.json()["messages"]
        if not msgs:
            continue
        with rec.lock:
            offs = [x["offset"] for x in msgs]
            if offs != list(range(offs[0], offs[0] + len(offs))):
                rec.t_mismatch.append(("non-contiguous read", offs))
            if offs[0] < rec.cursor_acked:
                rec.t_mismatch.append(("read below acked cursor", offs[0], rec.cursor_acked))
            for x in msgs:
                b = body_bytes(x).decode()
                prev = rec.t_offsets_seen.setdefault(x["offset"], b)
                if prev != b:
                    rec.t_mismatch.append(("offset changed body", x["offset"], prev, b))
        last = msgs[-1]["offset"]
        try:
            a = c.post("/v1/topics/log/subscriptions/s/ack", json={"offset": last})
        except requests.RequestException:
            with rec.lock:
                rec.errors += 1
            continue
        if a.status_code == 204:
            with rec.lock:
                rec.cursor_acked = max(rec.cursor_acked, last + 1)
        elif a.status_code != 503:
            _note(rec, "sub ack", a)


def _drain(c, deadline):
    drained = []
    while time.monotonic() < deadline:
        r = c.post("/v1/queues/work/receive", params={"max": "100", "ack": "auto"})
        assert r.status_code == 200, r.text
        msgs = r.json()["messages"]
        drained += [(body_bytes(x).decode(), x["id"]) for x in msgs]
        if msgs:
            continue
        q = c.get_queue("work")
        if q["depth"] == 0 and q["in_flight"] == 0:
            return drained
        time.sleep(0.1)
    raise AssertionError("queue did not drain: %r" % c.get_queue("work"))


def _read_topic_all(c):
    out = []
    frm = "earliest"
    for _ in range(1000):
        r = c.get("/v1/topics/log/messages", params={"from": frm, "max": "1000"})
        assert r.status_code == 200, r.text
        j = r.json()
        out += j["messages"]
        if not j["messages"]:
            return out
        frm = str(j["next_offset"])
    raise AssertionError("topic read did not end")


def test_kill9_under_load_keeps_acknowledged_state(momd):
    t_start = time.monotonic()
    admin = Client(momd, mint("root", roles=["admin"]))
    admin.create_queue("work", visibility_timeout_ms=VISIBILITY_MS)
    admin.create_topic("log")
    r = admin.put("/v1/topics/log/subscriptions/s", json={"start": "earliest"})
    assert r.status_code == 201, r.text

    rec = Record()
    stop = threading.Event()
    threads = [threading.Thread(target=_publisher, args=(momd, rec, stop, i), daemon=True)
               for i in range(4)]
    threads += [threading.Thread(target=_consumer, args=(momd, rec, stop, i), daemon=True)
                for i in range(2)]
    threads.append(threading.Thread(target=_topic_publisher, args=(momd, rec, stop), daemon=True))
    threads.append(threading.Thread(target=_sub_acker, args=(momd, rec, stop), daemon=True))
    for t in threads:
        t.start()
    rnd = random.Random(42)
    restarts = []
    try:
        for cycle in range(CYCLES):
            time.sleep(rnd.uniform(1.0, 1.5))
            momd.kill9()
            with rec.lock:
                rec.cycle = cycle + 1
            t0 = time.monotonic()
            momd.start()
            restarts.append(time.monotonic() - t0)
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
    assert not any(t.is_alive() for t in threads), "client threads did not stop"

    c = Client(momd, mint("checker"))
    drained = _drain(c, time.monotonic() + 15)
    drained_bodies = Counter(b for b, _ in drained)
    drained_ids = {b: i for b, i in drained}

    with rec.lock:
        published, acked = dict(rec.published), dict(rec.acked)
        summary = ("published=%d acked=%d deliveries=%d drained=%d topic=%d cursor=%d "
                   "acks-unknown=%d conn-errors=%d restarts=%s" % (
                       len(published), len(acked), len(rec.deliveries), len(drained),
                       len(rec.t_published), rec.cursor_acked, len(rec.ack_unknown), rec.errors,
                       ["%.2f" % x for x in restarts]))
        assert rec.unexpected == [], (summary, rec.unexpected[:10])
        assert rec.late_deliveries == [], ("delivered after an acknowledged ack", summary,
                                           rec.late_deliveries[:10])
        assert rec.t_mismatch == [], (summary, rec.t_mismatch[:10])
        # work really happened, before and after every restart
        per_cycle = Counter(cy for _, _, cy in published.values())
        for cy in range(CYCLES + 1):
            assert per_cycle[cy] > 0, ("no acknowledged publish in cycle %d" % cy, summary)
        assert len(acked) > 0 and len(rec.t_published) > 0 and rec.cursor_acked > 0, summary

        # queue: never lost, never duplicated, acks stick
        # (an ack whose answer was lost in the crash may have committed)
        lost = [b for b in published
                if b not in acked and b not in drained_bodies and b not in rec.ack_unknown]
        why = {b: [d for d in rec.deliveries if d[0] == b] for b in lost[:10]}
        assert lost == [], ("acknowledged publishes lost", len(lost), why, summary)
        dup = [b for b, n in drained_bodies.items() if n > 1]
        assert dup == [], ("stored twice", dup[:10], summary)
        back = [b for b in acked if b in drained_bodies]
        assert back == [], ("acked messages came back", back[:10], summary)
        stray = [b for b in drained_bodies if b not in rec.attempted]
        assert stray == [], ("messages nobody published", stray[:10])
        wrong_id = [b for b, (i, _, _) in published.items()
                    if b in drained_ids and drained_ids[b] != i]
        assert wrong_id == [], ("id changed", wrong_id[:10])
        seqs = [s for _, s, _ in published.values()]
        assert len(set(seqs)) == len(seqs), "duplicate seq in acknowledged publishes"
        ids = [i for i, _, _ in published.values()]
        assert len(set(ids)) == len(ids), "duplicate id in acknowledged publishes"

        # topic: every acknowledged publish at its offset with its body
        msgs = _read_topic_all(c)
        offs = [x["offset"] for x in msgs]
        assert offs == list(range(len(offs))), "topic offsets not contiguous from 0"
        at = {x["offset"]: body_bytes(x).decode() for x in msgs}
        bad = [(o, b, at.get(o)) for o, b in rec.t_published.items() if at.get(o) != b]
        assert bad == [], ("topic publishes lost or moved", bad[:10], summary)
        seen_bad = [(o, b, at.get(o)) for o, b in rec.t_offsets_seen.items() if at.get(o) != b]
        assert seen_bad == [], ("a read offset changed its body", seen_bad[:10])
        tb = Counter(at.values())
        assert [b for b, n in tb.items() if n > 1] == [], "topic message stored twice"
        assert all(b in rec.t_attempted for b in at.values())

        # subscription cursor never goes back
        s = c.get("/v1/topics/log/subscriptions/s").json()
        assert s["cursor"] >= rec.cursor_acked, (s, rec.cursor_acked)
        assert s["cursor"] <= len(offs)

    assert time.monotonic() - t_start < 60, "crash test too slow"
    print(summary)
