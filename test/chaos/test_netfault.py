# The network fault layer (netfault.py): its proxies are transparent byte
# pipes, each fault holds, cuts or delays exactly the bytes it names, and a
# real cluster behind them behaves as docs/architecture.md's failure modes
# say: an isolated node answers 503 (never a stale read or a 404, also for
# a queue created on the majority side after the cut), the
# majority side keeps committing, a healed node catches up; a one-way cut
# of a leader's link to a follower does not stop the cluster.
# SPDX-License-Identifier: MIT

import os
import socket
import sys
import threading
import time

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import ChaosCluster, mint  # noqa: E402
from faults_net import attach, detach  # noqa: E402
from netfault import Net  # noqa: E402
from conftest import MomdStartError  # noqa: E402


class Echo:
    """A TCP server that answers every chunk with b"<" + chunk."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.received = []
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        while True:
            try:
                data = c.recv(65536)
            except OSError:
                return
            if not data:
                c.close()
                return
            self.received.append(data)
            try:
                c.sendall(b"<" + data)
            except OSError:
                return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def net():
    n = Net(seed=1)
    echo = Echo()
    yield n, echo
    n.close()
    echo.close()


def dial(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s


def recv_exactly(s, n, timeout=5.0):
    s.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        data = s.recv(n - len(buf))
        if not data:
            break
        buf += data
    return buf


def test_proxy_is_a_transparent_pipe(net):
    n, echo = net
    port = n.add_link(0, 1, echo.port)
    s = dial(port)
    payload = os.urandom(300000)
    threading.Thread(target=s.sendall, args=(payload,), daemon=True).start()
    got = b""
    s.settimeout(5)
    while sum(len(r) for r in echo.received) < len(payload):
        got += s.recv(1 << 20)
    assert b"".join(echo.received) == payload
    s.close()


def test_held_direction_is_delivered_in_order_after_heal(net):
    n, echo = net
    port = n.add_link(0, 1, echo.port)
    s = dial(port)
    s.sendall(b"a")
    assert recv_exactly(s, 2) == b"<a"
    n.hold(1, 0)  # answers from 1 to 0 are held; 0's bytes still reach 1
    s.sendall(b"b")
    deadline = time.monotonic() + 5
    while b"b" not in echo.received and time.monotonic() < deadline:
        time.sleep(0.01)
    assert echo.received[-1] == b"b"
    s.settimeout(0.3)
    with pytest.raises(socket.timeout):
        s.recv(10)
    n.heal()
    assert recv_exactly(s, 2) == b"<b"
    n.hold(0, 1)  # now 0's bytes are held
    s.sendall(b"c")
    time.sleep(0.3)
    assert echo.received[-1] == b"b"
    n.heal()
    assert recv_exactly(s, 2) == b"<c"
    s.close()


def test_held_link_blocks_only_that_connection(net):
    n, echo = net
    p01 = n.add_link(0, 1, echo.port)
    p10 = n.add_link(1, 0, echo.port)
    a, b = dial(p01), dial(p10)
    n.hold_link(0, 1)
    b.sendall(b"x")  # link 1->0 still flows both ways
    assert recv_exactly(b, 2) == b"<x"
    a.sendall(b"y")
    a.settimeout(0.3)
    with pytest.raises(socket.timeout):
        a.recv(10)
    assert b"y" not in echo.received
    n.heal()
    assert recv_exactly(a, 2) == b"<y"
    a.close()
    b.close()


def test_reset_aborts_and_refuses_until_healed(net):
    n, echo = net
    port = n.add_link(0, 1, echo.port)
    s = dial(port)
    s.sendall(b"a")
    assert recv_exactly(s, 2) == b"<a"
    n.partition([{0}, {1}], mode="reset")
    s.settimeout(5)
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        s.sendall(b"b")
        if not s.recv(10):
            raise ConnectionResetError("closed")
    t = dial(port)  # accepted, then aborted at once
    t.settimeout(5)
    with pytest.raises(ConnectionResetError):
        if not t.recv(10):
            raise ConnectionResetError("closed")
    n.heal()
    u = dial(port)
    u.sendall(b"c")
    assert recv_exactly(u, 2) == b"<c"
    for x in (s, t, u):
        x.close()


def test_latency_and_loss_delay_but_keep_order(net):
    n, echo = net
    port = n.add_link(0, 1, echo.port)
    s = dial(port)
    n.set_delay({(0, 1): (0.15, 0.05, 0.0)})
    t0 = time.monotonic()
    s.sendall(b"a")
    assert recv_exactly(s, 2) == b"<a"
    assert time.monotonic() - t0 >= 0.15
    n.set_delay({(0, 1): (0.0, 0.0, 1.0)})  # every chunk "lost" once
    t0 = time.monotonic()
    s.sendall(b"b")
    assert recv_exactly(s, 2) == b"<b"
    assert time.monotonic() - t0 >= 0.2
    n.heal()
    s.close()


# ---- real clusters behind the proxies ---------------------------------------

def start(tmp_path, n):
    c = ChaosCluster(tmp_path, n=n)
    attach(c)
    try:
        c.start()
    except MomdStartError as e:
        stop(c)
        pytest.fail(str(e), pytrace=False)
    return c


def stop(c):
    c.net.heal()  # held answers flow, so nodes stop as they would
    try:
        c.stop_all()
    finally:
        detach(c)
    problems = c.sanitizer_reports()
    assert not problems, problems


def auth():
    return {"Authorization": "Bearer " + mint("alice")}


def publish(node, body, key, timeout=10):
    return requests.post(node.url("/v1/queues/q/messages"), data=body,
                         headers=dict(auth(), **{"Idempotency-Key": key}), timeout=timeout)


def publish_until_acked(c, among, body, key, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for i in among:
            try:
                r = publish(c.nodes[i], body, key)
            except requests.RequestException:
                continue
            if r.status_code == 201:
                return r
            assert r.status_code == 503, r.text
        time.sleep(0.1)
    pytest.fail("no publish acknowledged by %r" % (among,))


def queue_depth(node, timeout=10):
    return requests.get(node.url("/v1/queues/q"), headers=auth(), timeout=timeout)


def wait_depth(node, depth, timeout=60):
    """Waits until `node` answers the queue's depth as `depth` (503 while it
    catches up is allowed; nothing else is)."""
    deadline = time.monotonic() + timeout
    while True:
        r = queue_depth(node)
        if r.status_code == 200 and r.json()["depth"] == depth:
            return
        assert r.status_code in (200, 503), r.text
        assert time.monotonic() < deadline, r.text
        time.sleep(0.1)


@pytest.fixture
def cluster5(tmp_path):
    c = start(tmp_path, 5)
    yield c
    stop(c)


def agreed_leader(c, among, timeout=30):
    """The member every node of `among` names as leader (cut-off nodes
    may still name an old one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            views = {requests.get(c.nodes[i].url("/v1/cluster"), headers=auth(),
                                  timeout=2).json()["leader"] for i in among}
        except requests.RequestException:
            views = set()
        if len(views) == 1 and None not in views and views <= {i + 1 for i in among}:
            return views.pop() - 1
        time.sleep(0.1)
    pytest.fail("no leader among %r" % (among,))


def test_five_nodes_minority_answers_503_majority_commits_then_heals(cluster5):
    c = cluster5
    li = c.leader(timeout=30)
    r = requests.put(c.nodes[li].url("/v1/queues/q"), json={}, headers=auth(), timeout=10)
    assert r.status_code == 201, r.text
    publish_until_acked(c, [li], b"before", "k0")
    # the old leader and one follower on the minority side
    minority = [li, (li + 1) % 5]
    majority = [i for i in range(5) if i not in minority]
    c.net.partition([set(minority), set(majority)])
    newl = agreed_leader(c, majority)
    assert newl in majority
    publish_until_acked(c, majority, b"during", "k1")
    # a queue the minority never heard of: 503 there too, never 404
    r = requests.put(c.nodes[newl].url("/v1/queues/q2"), json={}, headers=auth(), timeout=10)
    assert r.status_code == 201, r.text
    for i in minority:
        url = c.nodes[i].url
        for r in (queue_depth(c.nodes[i], timeout=15),
                  publish(c.nodes[i], b"lost?", "k2", timeout=15),
                  requests.get(url("/v1/queues/q2"), headers=auth(), timeout=15),
                  requests.post(url("/v1/queues/q2/receive"), headers=auth(), timeout=15),
                  requests.post(url("/v1/queues/q2/messages"), data=b"x", headers=auth(),
                                timeout=15)):
            assert r.status_code == 503, (i, r.request.method, r.url, r.status_code, r.text)
    c.net.heal()
    c.leader(timeout=30)
    for m in c.nodes:
        wait_depth(m, 2)


def test_one_way_link_cut_from_leader_keeps_cluster_available(tmp_path):
    c = start(tmp_path, 3)
    try:
        li = c.leader(timeout=30)
        f = (li + 1) % 3
        r = requests.put(c.nodes[li].url("/v1/queues/q"), json={}, headers=auth(), timeout=10)
        assert r.status_code == 201, r.text
        # the leader can no longer call f; f still calls the leader
        c.net.hold_link(li, f)
        for k in range(5):
            publish_until_acked(c, list(range(3)), b"m%d" % k, "k%d" % k)
            time.sleep(0.5)
        c.net.heal()
        c.leader(timeout=30)
        for m in c.nodes:
            wait_depth(m, 5)
    finally:
        stop(c)


def test_tls_peers_through_the_proxies_survive_a_cut_leader(tmp_path):
    """The proxies are byte pipes: mutual TLS between the members passes
    through them unchanged (certificates name 127.0.0.1, the proxies' host
    too), and a leader cut off is replaced and catches up after the heal."""
    from test_peer_tls import make_ca, make_leaf, pem_cert, pem_key
    ca = make_ca()
    (tmp_path / "ca.pem").write_bytes(pem_cert(ca[1]))
    c = ChaosCluster(tmp_path, n=3)
    for i in range(3):
        key, cert = make_leaf(ca, "node%d" % (i + 1))
        (tmp_path / ("n%d.pem" % i)).write_bytes(pem_cert(cert))
        (tmp_path / ("n%d.key" % i)).write_bytes(pem_key(key))
        c.nodes[i].env.update({"MOM_PEER_TLS_CERT": str(tmp_path / ("n%d.pem" % i)),
                               "MOM_PEER_TLS_KEY": str(tmp_path / ("n%d.key" % i)),
                               "MOM_PEER_TLS_CA": str(tmp_path / "ca.pem")})
    attach(c)
    try:
        c.start()
        li = c.leader(timeout=30)
        r = requests.put(c.nodes[li].url("/v1/queues/q"), json={}, headers=auth(), timeout=10)
        assert r.status_code == 201, r.text
        rest = [i for i in range(3) if i != li]
        c.net.partition([{li}, set(rest)], mode="reset")
        assert agreed_leader(c, rest) in rest
        publish_until_acked(c, rest, b"during", "k1")
        c.net.heal()
        c.leader(timeout=30)
        wait_depth(c.nodes[li], 1)
        assert c.net.bytes > 0
    finally:
        stop(c)
