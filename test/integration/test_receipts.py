# Unforgeable receipts: a receipt carries a MAC under the cluster's receipt
# key, so a guessed, forged, truncated or borrowed receipt is 410 (404 on an
# unknown queue) and changes nothing, and a replayed receipt of an ended
# lease stays 410. The key survives restarts (a single node keeps a
# generated one in DATA/receipt-key) and is the same on every node of a
# cluster (derived from the cluster secret), so a receipt issued through one
# node acks through another, and after a failover.
# SPDX-License-Identifier: MIT

import os
import stat

import pytest

from conftest import Client, Momd, MomdStartError, assert_error, mint, wait_until
from test_cluster import CLUSTER_SECRET, cluster, wait_for  # noqa: F401 (fixture)

MAC_CHARS = 22
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def lease_ops(c, q, receipt):
    """Ack, nack and extend with one receipt: their three answers."""
    return [c.ack(q, receipt),
            c.post("/v1/queues/%s/messages/%s/nack" % (q, receipt)),
            c.post("/v1/queues/%s/messages/%s/extend" % (q, receipt),
                   json={"visibility_timeout_ms": 1000})]


def assert_dead(c, q, receipt):
    for r in lease_ops(c, q, receipt):
        assert_error(r, 410, "receipt_expired")


def forgeries(receipt):
    """Receipts a consumer could try instead of the one it was given."""
    lease, mac = receipt.rsplit(".", 1)
    inc, seq, count = lease.split(".")
    other = lambda ch: "A" if ch != "A" else "B"  # noqa: E731
    out = [
        lease,                                     # the old counter triple
        lease + ".",                               # no MAC
        lease + "." + "A" * MAC_CHARS,             # a made-up MAC
        receipt[:-1],                              # truncated
        receipt + "A",                             # lengthened
        "%s.%s.%x.%s" % (inc, seq, int(count, 16) + 1, mac),  # the next delivery
        "%s.%x.%s.%s" % (inc, int(seq, 16) + 1, count, mac),  # another message
        "0" + receipt,                             # not canonical
        receipt.upper(),
    ]
    for i in (0, 1, MAC_CHARS // 2, MAC_CHARS - 2):  # one character of the MAC
        j = len(lease) + 1 + i
        out.append(receipt[:j] + other(receipt[j]) + receipt[j + 1:])
    return out


def test_receipt_shape(alice):
    alice.create_queue("q")
    alice.publish("q", b"x")
    m = alice.receive("q")[0]
    lease, mac = m["receipt"].rsplit(".", 1)
    assert len(lease.split(".")) == 3
    assert len(mac) == MAC_CHARS and all(ch in B64URL for ch in mac)
    assert len(m["receipt"]) <= 73


def test_forged_receipts_are_410_and_change_nothing(alice, bob):
    alice.create_queue("q")
    alice.publish("q", b"x")
    m = alice.receive("q", visibility_timeout_ms=60000)[0]
    for forged in forgeries(m["receipt"]):
        # another consumer guessing, and the owner with a damaged copy
        assert_dead(bob, "q", forged)
        assert_dead(alice, "q", forged)
    q = alice.get_queue("q")
    assert q["in_flight"] == 1 and q["depth"] == 0
    assert alice.receive("q") == []
    # the lease is untouched: its own receipt still works
    r = alice.ack("q", m["receipt"])
    assert r.status_code == 204, r.text
    assert alice.get_queue("q")["in_flight"] == 0


def test_forged_receipt_on_unknown_queue_is_404(alice):
    assert_error(alice.ack("nope", "1.1.1." + "A" * MAC_CHARS), 404, "queue_not_found")
    assert_error(alice.ack("nope", "1.1.1"), 404, "queue_not_found")


def test_receipt_bound_to_its_queue(alice):
    alice.create_queue("q1")
    alice.create_queue("q2")
    alice.publish("q1", b"a")
    alice.publish("q2", b"b")
    m1 = alice.receive("q1")[0]
    m2 = alice.receive("q2")[0]
    lease1, mac1 = m1["receipt"].rsplit(".", 1)
    lease2, mac2 = m2["receipt"].rsplit(".", 1)
    assert_dead(alice, "q2", m1["receipt"])
    assert_dead(alice, "q1", m2["receipt"])
    # a MAC moved onto another lease is no receipt
    assert_dead(alice, "q2", lease2 + "." + mac1)
    assert_dead(alice, "q1", lease1 + "." + mac2)
    assert alice.ack("q1", m1["receipt"]).status_code == 204
    assert alice.ack("q2", m2["receipt"]).status_code == 204


def test_replayed_receipts_of_ended_leases_are_410(alice):
    alice.create_queue("q")
    alice.publish("q", b"acked")
    alice.publish("q", b"expired")
    acked = alice.receive("q")[0]
    assert alice.ack("q", acked["receipt"]).status_code == 204
    assert_dead(alice, "q", acked["receipt"])
    first = alice.receive("q", visibility_timeout_ms=200)[0]
    second = wait_until(lambda: alice.receive("q", visibility_timeout_ms=60000), timeout=5,
                        what="the redelivery")[0]
    assert second["id"] == first["id"] and second["delivery_count"] == 2
    assert_dead(alice, "q", first["receipt"])
    # a nacked lease's receipt is dead too
    assert alice.post("/v1/queues/q/messages/%s/nack" % second["receipt"]).status_code == 204
    assert_dead(alice, "q", second["receipt"])
    third = alice.receive("q")[0]
    assert alice.ack("q", third["receipt"]).status_code == 204


def test_generated_key_survives_restart(momd_factory):
    m = momd_factory()
    key = os.path.join(m.data_dir, "receipt-key")
    st = os.stat(key)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == 65
    with open(key) as f:
        before = f.read()
    c = Client(m, mint("alice"))
    c.create_queue("q")
    c.publish("q", b"a")
    c.publish("q", b"b")
    ma, mb = c.receive("q", max=2, visibility_timeout_ms=60000)
    c.close()
    m.restart()
    with open(key) as f:
        assert f.read() == before
    c = Client(m, mint("alice"))
    assert c.ack("q", ma["receipt"]).status_code == 204
    for forged in forgeries(mb["receipt"]):
        assert_dead(c, "q", forged)
    m.restart(kill=True)
    c = Client(m, mint("alice"))
    assert c.ack("q", mb["receipt"]).status_code == 204
    assert c.get_queue("q")["depth"] == 0


def test_damaged_key_file_stops_start(momd_factory):
    m = momd_factory()
    m.stop()
    with open(os.path.join(m.data_dir, "receipt-key"), "w") as f:
        f.write("not a key\n")
    with pytest.raises(MomdStartError):
        m.start()
    assert "receipt-key" in m.stderr_text()


def test_cluster_secret_key_is_not_stored(momd_factory):
    # a node with a cluster secret derives the key and keeps no file
    m = momd_factory(args=["--cluster-secret", CLUSTER_SECRET])
    assert not os.path.exists(os.path.join(m.data_dir, "receipt-key"))
    c = Client(m, mint("alice"))
    c.create_queue("q")
    c.publish("q", b"a")
    r = c.receive("q")[0]["receipt"]
    c.close()
    m.restart()
    c = Client(m, mint("alice"))
    assert c.ack("q", r).status_code == 204


def test_receipt_acks_through_any_node(cluster):
    li = cluster.leader()
    c = [cluster.client(i) for i in range(3)]
    c[li].create_queue("q")
    for i in range(6):
        c[li].publish("q", b"m%d" % i)
    a, b = [i for i in range(3) if i != li]
    wait_for(lambda: c[a].get_queue("q")["depth"] == 6, what="publishes replicated")
    # leased through follower A, acked through follower B and the leader
    got = c[a].receive("q", max=3, visibility_timeout_ms=60000)
    assert len(got) == 3
    assert c[b].ack("q", got[0]["receipt"]).status_code == 204
    assert c[li].ack("q", got[1]["receipt"]).status_code == 204
    r = c[b].post("/v1/queues/q/messages/%s/extend" % got[2]["receipt"],
                  json={"visibility_timeout_ms": 60000})
    assert r.status_code == 204, r.text
    # leased through the leader, acked through a follower
    m = c[li].receive("q", visibility_timeout_ms=60000)[0]
    assert c[a].ack("q", m["receipt"]).status_code == 204
    # forgeries are refused by followers and the leader alike
    for node in (a, b, li):
        for forged in forgeries(got[2]["receipt"])[:4]:
            assert_dead(c[node], "q", forged)
        assert_dead(c[node], "q", got[0]["receipt"])  # acked: replay is 410
    assert c[b].ack("q", got[2]["receipt"]).status_code == 204
    wait_for(lambda: all(c[i].get_queue("q")["in_flight"] == 0 for i in range(3)),
             what="acks replicated")


def test_receipts_survive_failover_and_full_restart(cluster):
    li = cluster.leader()
    c = cluster.client(li)
    c.create_queue("q")
    for i in range(3):
        c.publish("q", b"m%d" % i)
    leased = c.receive("q", max=3, visibility_timeout_ms=120000)
    assert len(leased) == 3
    f = (li + 1) % 3
    fc = cluster.client(f)
    wait_for(lambda: fc.get_queue("q")["in_flight"] == 3, what="leases replicated")
    cluster.nodes[li].kill9()
    new_li = cluster.leader(timeout=15)
    nc = cluster.client(new_li)
    # the receipt the old leader wrote is good on the new one and its follower
    assert nc.ack("q", leased[0]["receipt"]).status_code == 204
    other = [i for i in range(3) if i not in (li, new_li)][0]
    oc = cluster.client(other)
    assert oc.ack("q", leased[1]["receipt"]).status_code == 204
    assert_dead(oc, "q", leased[1]["receipt"])
    cluster.nodes[li].start()
    # every node restarted: the key comes back from the cluster secret
    for m in cluster.nodes:
        for cl in m.clients:
            cl.close()
        m.restart()
    li2 = cluster.leader(timeout=15)
    c2 = cluster.client(li2)
    assert c2.ack("q", leased[2]["receipt"]).status_code == 204
    wait_for(lambda: c2.get_queue("q")["in_flight"] == 0, what="acked")
