# Persistence: everything acknowledged survives a clean stop (SIGTERM) and a
# crash (SIGKILL) — queues and settings, messages, leases, delivery counts,
# idempotency keys, topic offsets, subscription cursors and users — and a torn
# tail in the newest log segment is cut at start-up with a log line.
# SPDX-License-Identifier: MIT

import glob
import os
import random
import re
import signal
import socket
import threading
import time

import pytest
import requests

from conftest import Client, assert_error, body_bytes, mint, wait_until

SHORT_LEASE_MS = 4000
# the WAL logs "torn tail at offset N (...); cutting M bytes"; accept any wording
# that says a tail was cut/truncated
TRUNCATION_RE = re.compile(r"(?i)truncat|torn tail|cutting")


def login(m, user, pw):
    return requests.post(m.url("/v1/auth/token"), json={"username": user, "password": pw},
                         timeout=30)


def snapshot_state(c):
    """Everything readable without side effects, for before/after comparison."""
    st = {"queues": c.get("/v1/queues").json(), "topics": c.get("/v1/topics").json(),
          "subs": c.get("/v1/subscriptions").json()}
    for t in st["topics"]["topics"]:
        st["read:" + t["name"]] = c.get("/v1/topics/%s/messages" % t["name"],
                                        params={"max": "1000"}).json()
        st["subs:" + t["name"]] = c.get("/v1/topics/%s/subscriptions" % t["name"]).json()
    return st


def populate(m):
    alice = Client(m, mint("alice"))
    r = requests.post(m.url("/v1/auth/users"), json={"username": "pete",
                                                     "password": "pete's password"}, timeout=30)
    assert r.status_code == 201, r.text
    alice.create_queue("pq", visibility_timeout_ms=30000, max_length=100, max_deliveries=5)
    alice.create_queue("gone")
    assert alice.delete("/v1/queues/gone").status_code == 204
    alice.create_queue("private", access="private")
    alice.publish("private", b"secret")
    pubs = []
    pubs.append(alice.publish("pq", b"m0", headers={"Content-Type": "text/plain"}))
    for b in (b"m1", b"m2", b"m3", b"\xffm4"):
        pubs.append(alice.publish("pq", b))
    # m0: long lease that must survive
    l0 = alice.receive("pq", visibility_timeout_ms=600000)[0]
    assert body_bytes(l0) == b"m0"
    # m1: delivered once, lease ended -> delivery_count 1 recorded
    l1 = alice.receive("pq", visibility_timeout_ms=200)[0]
    assert body_bytes(l1) == b"m1"
    wait_until(lambda: alice.get_queue("pq")["in_flight"] == 1, timeout=5, what="m1 lease end")
    # m2: delivered and acked (m1 comes first again)
    got = alice.receive("pq", max=2, visibility_timeout_ms=600000)
    assert [body_bytes(x) for x in got] == [b"m1", b"m2"]
    assert alice.post("/v1/queues/pq/messages/%s/nack" % got[0]["receipt"]).status_code == 204
    assert alice.ack("pq", got[1]["receipt"]).status_code == 204
    idem = alice.post("/v1/queues/pq/messages", data=b"idem", headers={"Idempotency-Key": "ik"})
    assert idem.status_code == 201
    delayed = alice.publish("pq", b"delayed", headers={"Mom-Delay-Ms": "600000"})
    # topic, subscription cursor
    alice.create_topic("pt", retention_messages=100)
    for i in range(4):
        assert alice.publish_topic("pt", b"t%d" % i)["offset"] == i
    r = alice.put("/v1/topics/pt/subscriptions/ps", json={"start": "earliest"})
    assert r.status_code == 201
    assert alice.post("/v1/topics/pt/subscriptions/ps/ack", json={"offset": 1}).status_code == 204
    r = alice.put("/v1/topics/pt/subscriptions/latest")
    assert r.status_code == 201
    return {"alice": alice, "l0": l0, "pubs": pubs, "idem": idem.json(), "delayed": delayed}


def verify(m, ctx, before):
    alice = Client(m, mint("alice"))
    after = snapshot_state(alice)
    assert after == before, "state changed across restart"
    q = alice.get_queue("pq")
    assert (q["visibility_timeout_ms"], q["max_length"], q["max_deliveries"]) == (30000, 100, 5)
    assert q["owner"] == "alice"
    # m0 leased, m2 acked, delayed invisible
    assert (q["depth"], q["in_flight"], q["delayed"]) == (5, 1, 1), q
    assert_error(alice.get("/v1/queues/gone"), 404, "queue_not_found")
    assert_error(Client(m, mint("bob")).post("/v1/queues/private/receive"), 403, "forbidden")
    # idempotency key is durable
    r = alice.post("/v1/queues/pq/messages", data=b"other", headers={"Idempotency-Key": "ik"})
    assert r.status_code == 201 and r.json() == ctx["idem"]
    # delivery counts and order
    got = alice.receive("pq", max=10)
    assert [body_bytes(x) for x in got] == [b"m1", b"m3", b"\xffm4", b"idem"]
    assert [x["delivery_count"] for x in got] == [3, 1, 1, 1]
    assert got[0]["id"] == ctx["pubs"][1]["id"]
    assert [x["seq"] for x in got] == [2, 4, 5, 6]
    # the surviving lease on m0 can still be acked
    r = alice.ack("pq", ctx["l0"]["receipt"])
    assert r.status_code == 204, r.text
    # seq continues after the highest stored one
    assert alice.publish("pq", b"new")["seq"] == 8
    # topic and subscription
    t = alice.get_topic("pt")
    assert (t["first_offset"], t["next_offset"]) == (0, 4)
    s = alice.get("/v1/topics/pt/subscriptions/ps").json()
    assert s["cursor"] == 2 and s["lag"] == 2
    r = alice.get("/v1/topics/pt/subscriptions/ps/messages").json()
    assert [x["offset"] for x in r["messages"]] == [2, 3]
    assert alice.get("/v1/topics/pt/subscriptions/latest").json()["cursor"] == 4
    assert alice.publish_topic("pt", b"t4")["offset"] == 4
    # users
    r = login(m, "pete", "pete's password")
    assert r.status_code == 200, r.text
    assert Client(m, r.json()["access_token"]).get("/v1/queues").status_code == 200
    assert login(m, "pete", "wrong password!").status_code == 401
    r = requests.post(m.url("/v1/auth/users"), json={"username": "pete",
                                                     "password": "another password"}, timeout=30)
    assert_error(r, 409, "conflict")


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_state_survives_restart(momd, how):
    ctx = populate(momd)
    before = snapshot_state(ctx["alice"])
    if how == "sigterm":
        assert momd.stop() == 0, momd.stderr_tail()
        momd.start()
    else:
        momd.kill9()
        momd.start()
    verify(momd, ctx, before)
    # and once more, after the post-restart writes
    before2 = snapshot_state(ctx["alice"])
    momd.restart(kill=(how == "sigkill"))
    assert snapshot_state(Client(momd, mint("alice"))) == before2


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_lease_stays_invisible_across_restart(momd, how):
    c = Client(momd, mint("alice"))
    c.create_queue("q")
    c.publish("q", b"leased")
    c.publish("q", b"free")
    m = c.receive("q", visibility_timeout_ms=SHORT_LEASE_MS)[0]
    t0 = time.monotonic()
    momd.restart(kill=(how == "sigkill"))
    assert time.monotonic() - t0 < SHORT_LEASE_MS / 1000.0 - 1.0, "restart too slow for this test"
    got = c.receive("q", max=10)
    assert [body_bytes(x) for x in got] == [b"free"], got
    assert c.get_queue("q")["in_flight"] == 2
    assert c.ack("q", got[0]["receipt"]).status_code == 204
    again = wait_until(lambda: c.receive("q"), timeout=SHORT_LEASE_MS / 1000.0 + 5,
                       what="lease end after restart")[0]
    assert again["id"] == m["id"] and again["delivery_count"] == 2
    assert time.monotonic() - t0 >= SHORT_LEASE_MS / 1000.0 - 0.5
    assert_error(c.ack("q", m["receipt"]), 410, "receipt_expired")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clean_shutdown_exit_zero(momd, sig):
    c = Client(momd, mint("alice"))
    c.create_queue("q")
    c.publish("q", b"x")
    momd.proc.send_signal(sig)
    assert momd.proc.wait(timeout=15) == 0, momd.stderr_tail()
    momd.stop()
    momd.start()
    assert c.get_queue("q")["depth"] == 1


def test_sigterm_with_open_connections(momd):
    """Idle keep-alive connections and a paused long poll do not stop a clean,
    prompt exit (under ASan the harness also checks nothing leaked)."""
    c = Client(momd, mint("alice"))
    c.create_queue("q")
    idle = socket.create_connection(momd.host_port(), timeout=5)
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(4096).startswith(b"HTTP/1.1 200")
    out = {}

    def poll():
        try:
            out["r"] = c.post("/v1/queues/q/receive", params={"wait_ms": "20000"}, timeout=30)
        except requests.RequestException as e:
            out["e"] = e

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    momd.proc.send_signal(signal.SIGTERM)
    rc = momd.proc.wait(timeout=15)
    assert rc == 0, momd.stderr_tail()
    assert time.monotonic() - t0 < 5, "shutdown waited for the long poll"
    t.join(10)
    assert not t.is_alive()
    if "r" in out:  # answered before closing: must not be a success with a message
        assert out["r"].status_code in (200, 503), out["r"].text
    idle.close()
    momd.stop()


def test_snapshots_and_log_replay(momd_factory):
    m = momd_factory(args=["--snapshot-entries", "20"])
    c = Client(m, mint("alice"))
    c.create_queue("q")
    c.create_topic("t")
    c.put("/v1/topics/t/subscriptions/s", json={"start": "earliest"})
    for i in range(60):
        c.publish("q", b"q%d" % i)
        c.publish_topic("t", b"t%d" % i)
    for _ in range(20):
        msg = c.receive("q")[0]
        assert c.ack("q", msg["receipt"]).status_code == 204
    leased = c.receive("q", visibility_timeout_ms=600000)[0]
    assert c.post("/v1/topics/t/subscriptions/s/ack", json={"offset": 29}).status_code == 204
    before = snapshot_state(c)
    m.kill9()
    m.start()
    assert snapshot_state(c) == before
    m.restart()
    assert snapshot_state(c) == before
    got = c.receive("q", max=100)
    assert [body_bytes(x) for x in got] == [b"q%d" % i for i in range(21, 60)]
    assert c.ack("q", leased["receipt"]).status_code == 204
    assert c.get("/v1/topics/t/subscriptions/s").json()["cursor"] == 30


def _segments(data_dir):
    segs = glob.glob(os.path.join(data_dir, "**", "*.seg"), recursive=True)
    assert segs, "no *.seg file under %s: %s" % (data_dir, sorted(
        os.path.relpath(os.path.join(d, f), data_dir)
        for d, _, fs in os.walk(data_dir) for f in fs))
    return segs


def _newest_segment(data_dir):
    return max(_segments(data_dir), key=lambda p: (os.stat(p).st_mtime_ns, p))


def _fill(m):
    c = Client(m, mint("alice"))
    c.create_queue("q")
    c.create_topic("t")
    for i in range(10):
        c.publish("q", b"q%d" % i)
    for i in range(3):
        c.publish_topic("t", b"t%d" % i)
    m0 = c.receive("q", visibility_timeout_ms=600000)[0]
    assert c.ack("q", m0["receipt"]).status_code == 204
    return c


def _check_filled(c):
    t = c.get_topic("t")
    assert t["next_offset"] == 3
    r = c.read_topic("t")
    assert [body_bytes(x) for x in r["messages"]] == [b"t0", b"t1", b"t2"]
    got = c.receive("q", max=100, visibility_timeout_ms=600000)
    assert [body_bytes(x) for x in got] == [b"q%d" % i for i in range(1, 10)]
    for x in got:
        assert c.ack("q", x["receipt"]).status_code == 204


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
@pytest.mark.parametrize("garbage", ["random", "ones", "length_prefix"])
def test_torn_tail_is_truncated(momd, how, garbage):
    c = _fill(momd)
    if how == "sigterm":
        assert momd.stop() == 0
    else:
        momd.kill9()
    seg = _newest_segment(momd.data_dir)
    rnd = random.Random(1234)
    if garbage == "random":
        junk = bytes(rnd.getrandbits(8) for _ in range(37))
    elif garbage == "ones":
        junk = b"\xff" * 64
    else:
        # looks like the start of a record (small length) that never finished
        junk = (200).to_bytes(4, "little") + bytes(rnd.getrandbits(8) for _ in range(11))
    with open(seg, "ab") as f:
        f.write(junk)
    momd.start()
    log = momd.stderr_since_start()
    assert TRUNCATION_RE.search(log), "no truncation line in log:\n" + log[-3000:]
    _check_filled(c)
    # the log is clean again: new writes land and survive another crash
    c.publish("q", b"after")
    momd.kill9()
    momd.start()
    got = c.receive("q", max=10)
    assert [body_bytes(x) for x in got] == [b"after"]


def test_torn_tail_chopped_record(momd):
    """The newest segment loses its last bytes (a torn write): the node starts,
    and what survives is a prefix of the acknowledged history."""
    c = Client(momd, mint("alice"))
    c.create_queue("q")
    for i in range(10):
        c.publish("q", b"q%d" % i)
    momd.kill9()
    seg = _newest_segment(momd.data_dir)
    size = os.path.getsize(seg)
    with open(seg, "r+b") as f:
        f.truncate(size - 3)
    momd.start()
    got = c.receive("q", max=100)
    bodies = [body_bytes(x) for x in got]
    assert bodies == [b"q%d" % i for i in range(len(bodies))], bodies
    assert len(bodies) >= 9, bodies
    assert c.publish("q", b"next")["seq"] == len(bodies) + 1


# ---- torn record inside the preallocated tail (format of replication/wal.c) ----------

WAL_SEG_HEADER = 32
WAL_REC_HEADER = 24


def _records(path):
    """(offset, length, term, index) of each record, and the end of data."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"MOMWAL1\0", "unknown segment format: %r" % data[:8]
    off, recs = WAL_SEG_HEADER, []
    while off + WAL_REC_HEADER <= len(data):
        hdr = data[off:off + WAL_REC_HEADER]
        if hdr == b"\0" * WAL_REC_HEADER:
            break
        n = int.from_bytes(hdr[0:4], "little")
        term = int.from_bytes(hdr[8:16], "little")
        index = int.from_bytes(hdr[16:24], "little")
        recs.append((off, n, term, index))
        off += WAL_REC_HEADER + n
    return recs, off


@pytest.mark.parametrize("shape", ["partial_header", "short_payload", "bad_crc"])
def test_torn_record_after_last_record(momd, shape):
    c = _fill(momd)
    momd.kill9()
    seg = _newest_segment(momd.data_dir)
    recs, end = _records(seg)
    assert recs, "no records in %s" % seg
    _, _, term, index = recs[-1]
    n = 100
    hdr = (n.to_bytes(4, "little") + b"\x12\x34\x56\x78" + term.to_bytes(8, "little") +
           (index + 1).to_bytes(8, "little"))
    if shape == "partial_header":
        torn = hdr[:10]
    elif shape == "short_payload":
        torn = hdr + b"p" * 40
    else:
        torn = hdr + b"p" * n
    with open(seg, "r+b") as f:
        f.seek(end)
        f.write(torn)
    momd.start()
    log = momd.stderr_since_start()
    assert TRUNCATION_RE.search(log), "no truncation line in log:\n" + log[-3000:]
    _check_filled(c)
    c.publish("q", b"after")
    momd.kill9()
    momd.start()
    assert [body_bytes(x) for x in c.receive("q", max=10)] == [b"after"]


def test_large_batches_start_a_snapshot_by_log_size(momd_factory):
    """A few large batches never reach MOM_SNAPSHOT_ENTRIES; the log held in
    memory reaching MOM_SNAPSHOT_LOG_MB starts the snapshot instead."""
    m = momd_factory(args=["--snapshot-entries", "1000000", "--snapshot-log-mb", "1"])
    c = Client(m, mint("alice"))
    c.create_queue("q")
    body = "b" * 1000
    for i in range(40):  # 40 batches of 100 x 1 KB: ~4 MB of log
        r = c.post("/v1/queues/q/messages/batch",
                   json={"messages": [{"body": body} for _ in range(100)]})
        assert r.status_code == 201, r.text
    wait_until(lambda: "snapshot written" in m.stderr_since_start(), timeout=20,
             what="a snapshot started by the log size")
    assert c.get_queue("q")["depth"] == 4000
    m.restart()
    assert "loaded snapshot" in m.stderr_since_start()
    assert c.get_queue("q")["depth"] == 4000
