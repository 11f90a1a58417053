# Three real momd processes on loopback replicating through Raft: writes and
# reads through every node, leader failover under load, restart and catch-up,
# full restart, a minority that cannot commit, leases and subscription
# cursors across failover, followers answering like the leader.
# SPDX-License-Identifier: MIT

import os
import re
import signal
import threading
import time

import pytest
import requests

from conftest import Client, Momd, MomdStartError, free_ports, mint

CLUSTER_SECRET = "cluster-test-secret-0123456789abcdef"



class Cluster:
    def __init__(self, tmp_path, extra_args=()):
        self.ports = free_ports(3)
        peers = ",".join("%d=127.0.0.1:%d" % (i + 1, p) for i, p in enumerate(self.ports))
        self.nodes = []
        for i in range(3):
            args = ["--peer-addr", "127.0.0.1:%d" % self.ports[i], "--node-id", str(i + 1),
                    "--peers", peers, "--cluster-secret", CLUSTER_SECRET] + list(extra_args)
            m = Momd(tmp_path / ("node%d" % (i + 1)), tmp_path / ("node%d.stderr" % (i + 1)),
                     args=args, env={"MOM_BOOTSTRAP": "1"})
            self.nodes.append(m)

    def start(self):
        for m in self.nodes:
            m.start()
        # the bootstrap flag is for the very first start only
        for m in self.nodes:
            m.env.pop("MOM_BOOTSTRAP", None)
        return self

    def client(self, i, sub="alice"):
        return Client(self.nodes[i], mint(sub))

    def cluster_view(self, i):
        r = requests.get(self.nodes[i].url("/v1/cluster"),
                         headers={"Authorization": "Bearer " + mint("alice")}, timeout=5)
        return r.json()

    def leader(self, timeout=10.0, among=None):
        """Index of the node every running node (or `among`) agrees leads."""
        among = among if among is not None else [i for i, m in enumerate(self.nodes)
                                                 if m.running()]
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                views = [self.cluster_view(i) for i in among]
                leaders = {v["leader"] for v in views}
                if len(leaders) == 1 and None not in leaders:
                    lid = leaders.pop()
                    if self.nodes[lid - 1].running() and lid - 1 in among:
                        if all(requests.get(self.nodes[i].url("/readyz"), timeout=5).status_code
                               == 200 for i in among):
                            return lid - 1
                last = views
            except requests.RequestException as e:
                last = e
            time.sleep(0.05)
        pytest.fail("no agreed leader within %.1f s: %r" % (timeout, last))

    def stop_all(self):
        for m in self.nodes:
            if m.proc is not None and m.running():
                try:
                    os.kill(m.proc.pid, signal.SIGCONT)
                except OSError:
                    pass
        for m in self.nodes:
            for c in m.clients:
                c.close()
        # as conftest does: let each node close its client connections first
        for m in self.nodes:
            if m.running():
                m.wait_idle()
        for m in self.nodes:
            m.stop()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start()
    except MomdStartError as e:
        c.stop_all()
        pytest.fail(str(e), pytrace=False)
    yield c
    c.stop_all()
    problems = [m.sanitizer_report() for m in c.nodes]
    problems = [p for p in problems if p]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def wait_for(fn, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except requests.RequestException as e:
            last = e
        time.sleep(0.05)
    pytest.fail("timed out waiting for %s (last: %r)" % (what, last))


def depth(c, name):
    r = c.get("/v1/queues/%s" % name)
    return r.json()["depth"] if r.status_code == 200 else None


def drain(c, queue_name, expect_total, timeout=20.0):
    """Receives and acks everything; returns the bodies."""
    bodies = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(bodies) < expect_total:
        r = c.post("/v1/queues/%s/receive" % queue_name, params={"max": 100, "wait_ms": 200})
        if r.status_code == 503:
            time.sleep(0.1)
            continue
        assert r.status_code == 200, r.text
        for m in r.json()["messages"]:
            bodies.append(m["body"])
            a = c.ack(queue_name, m["receipt"])
            assert a.status_code in (204, 503), a.text
    return bodies


def test_publish_receive_ack_through_every_node(cluster):
    cluster.leader()
    clients = [cluster.client(i) for i in range(3)]
    clients[1].create_queue("q")
    for i, c in enumerate(clients):
        r = c.post("/v1/queues/q/messages", data=b"from-%d" % i)
        assert r.status_code == 201, r.text
        assert r.headers["X-Mom-Node"] == str(i + 1)
    for c in clients:
        wait_for(lambda: c.get_queue("q")["depth"] == 3, what="depth 3 everywhere")
    got = []
    for i, c in enumerate(clients):
        r = c.post("/v1/queues/q/receive", params={"max": 1})
        assert r.status_code == 200, r.text
        m = r.json()["messages"][0]
        got.append(m["body"])
        ack = clients[(i + 1) % 3].ack("q", m["receipt"])
        assert ack.status_code == 204, ack.text
    assert sorted(got) == ["from-0", "from-1", "from-2"]
    for c in clients:
        wait_for(lambda: c.get_queue("q")["depth"] == 0 and c.get_queue("q")["in_flight"] == 0,
                 what="empty queue everywhere")


def test_cluster_view_and_readyz(cluster):
    li = cluster.leader()
    v = cluster.cluster_view(li)
    assert v["role"] == "leader" and v["leader"] == li + 1 and v["term"] >= 1
    assert v["commit_index"] >= 1
    assert len(v["nodes"]) == 3
    for n in v["nodes"]:
        assert n["healthy"] is True
        assert n["match_index"] >= 1
    f = (li + 1) % 3
    fv = cluster.cluster_view(f)
    assert fv["role"] == "follower" and fv["leader"] == li + 1


class Publisher(threading.Thread):
    """Publishes numbered messages with idempotency keys round-robin through
    the running nodes, retrying each until acknowledged."""

    def __init__(self, cluster, queue_name):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.queue_name = queue_name
        self.acked = []
        self.stop_flag = threading.Event()
        self.errors = 0
        self.last_ack_time = None
        self.ack_times = []

    def run(self):
        tok = mint("alice")
        n = 0
        while not self.stop_flag.is_set():
            body = "msg-%05d" % n
            deadline = time.monotonic() + 30
            k = n
            while not self.stop_flag.is_set() and time.monotonic() < deadline:
                m = self.cluster.nodes[k % 3]
                k += 1
                if not m.running() or m.http is None:
                    continue
                try:
                    r = requests.post(m.url("/v1/queues/%s/messages" % self.queue_name),
                                      data=body.encode(), timeout=8,
                                      headers={"Authorization": "Bearer " + tok,
                                               "Idempotency-Key": body})
                except requests.RequestException:
                    self.errors += 1
                    time.sleep(0.02)
                    continue
                if r.status_code == 201:
                    self.acked.append(body)
                    self.last_ack_time = time.monotonic()
                    self.ack_times.append(self.last_ack_time)
                    break
                self.errors += 1
                time.sleep(0.02)
            n += 1


def test_leader_kill_under_load_then_catch_up(cluster):
    li = cluster.leader()
    c = cluster.client((li + 1) % 3)
    c.create_queue("q")
    pub = Publisher(cluster, "q")
    pub.start()
    wait_for(lambda: len(pub.acked) >= 50, what="50 acknowledged publishes")
    old = cluster.nodes[li]
    old.kill9()
    killed_at = time.monotonic()
    count_at_kill = len(pub.acked)
    wait_for(lambda: len(pub.acked) > count_at_kill + 5, timeout=10, what="writes after failover")
    new_li = cluster.leader(timeout=10)
    assert new_li != li
    # the first acknowledgement after the kill (a new leader committed) came
    # within 3 s
    first_after = min(t for t in pub.ack_times if t > killed_at)
    assert first_after - killed_at < 3.0, first_after - killed_at
    time.sleep(0.5)
    pub.stop_flag.set()
    pub.join(40)
    acked = list(pub.acked)
    assert len(acked) == len(set(acked))
    # the killed node restarts and catches up from its log
    old.start()
    cluster.leader(timeout=10)
    survivor = cluster.client(new_li)
    total = wait_for(lambda: survivor.get_queue("q")["depth"], what="depth on the leader")
    assert total >= len(acked)
    rejoined = Client(old, mint("alice"))
    wait_for(lambda: depth(rejoined, "q") == total, timeout=15,
             what="restarted node caught up")
    bodies = drain(survivor, "q", total)
    assert len(bodies) == len(set(bodies)), "duplicates"
    missing = set(acked) - set(bodies)
    assert not missing, sorted(missing)[:10]


def test_new_leader_commits_within_3s(cluster):
    li = cluster.leader()
    c = cluster.client((li + 1) % 3)
    c.create_queue("q")
    cluster.nodes[li].kill9()
    t0 = time.monotonic()
    others = [i for i in range(3) if i != li]
    ok = False
    while time.monotonic() - t0 < 3.0:
        try:
            r = cluster.client(others[0]).post("/v1/queues/q/messages", data=b"x")
            if r.status_code == 201:
                ok = True
                break
        except requests.RequestException:
            pass
        time.sleep(0.05)
    assert ok, "no write committed within 3 s of the leader's death"


def test_full_restart_keeps_state(cluster):
    cluster.leader()
    c = cluster.client(0)
    c.create_queue("q")
    c.create_topic("t")
    for i in range(20):
        assert c.post("/v1/queues/q/messages", data=b"m%d" % i).status_code == 201
        assert c.post("/v1/topics/t/messages", data=b"t%d" % i).status_code == 201
    for m in cluster.nodes:
        m.kill9()
    for m in cluster.nodes:
        m.start()
    cluster.leader(timeout=15)
    for i in range(3):
        ci = cluster.client(i)
        wait_for(lambda: depth(ci, "q") == 20, what="queue depth after restart")
        wait_for(lambda: ci.get_topic("t")["next_offset"] == 20, what="topic after restart")


def test_isolated_node_answers_503_and_recovers(tmp_path):
    c = Cluster(tmp_path, extra_args=["--commit-timeout-ms", "1500"])
    try:
        c.start()
        li = c.leader()
        cl = c.client(li)
        cl.create_queue("q")
        lone = li  # the leader loses its majority
        stopped = [i for i in range(3) if i != lone]
        for i in stopped:
            os.kill(c.nodes[i].proc.pid, signal.SIGSTOP)
        try:
            for _ in range(3):
                t0 = time.monotonic()
                r = cl.post("/v1/queues/q/messages", data=b"lost?", timeout=10)
                elapsed = time.monotonic() - t0
                assert r.status_code == 503, r.text
                assert "Retry-After" in r.headers
                assert elapsed < 1.5 + 1.0, elapsed
        finally:
            for i in stopped:
                os.kill(c.nodes[i].proc.pid, signal.SIGCONT)
        c.leader(timeout=15)

        def write_ok():
            r = cl.post("/v1/queues/q/messages", data=b"after", timeout=10)
            return r.status_code == 201
        wait_for(write_ok, timeout=15, what="writes after SIGCONT")
    finally:
        c.stop_all()


def test_leases_and_cursors_survive_failover(cluster):
    li = cluster.leader()
    c = cluster.client(li)
    c.create_queue("q")
    c.create_topic("t")
    assert c.put("/v1/topics/t/subscriptions/s", json={"start": "earliest"}).status_code == 201
    for i in range(3):
        assert c.post("/v1/queues/q/messages", data=b"q%d" % i).status_code == 201
        assert c.post("/v1/topics/t/messages", data=b"t%d" % i).status_code == 201
    r = c.post("/v1/queues/q/receive", params={"max": 1, "visibility_timeout_ms": 60000})
    leased = r.json()["messages"][0]
    r = c.get("/v1/topics/t/subscriptions/s/messages", params={"max": 2})
    msgs = r.json()["messages"]
    assert [m["body"] for m in msgs] == ["t0", "t1"]
    assert c.post("/v1/topics/t/subscriptions/s/ack", json={"offset": 1}).status_code == 204
    f = (li + 1) % 3
    fc = cluster.client(f)
    wait_for(lambda: fc.get_queue("q")["in_flight"] == 1, what="lease replicated")
    cluster.nodes[li].kill9()
    new_li = cluster.leader(timeout=10)
    nc = cluster.client(new_li)
    q = nc.get_queue("q")
    assert q["in_flight"] == 1 and q["depth"] == 2
    r = nc.post("/v1/queues/q/receive", params={"max": 10})
    assert sorted(m["body"] for m in r.json()["messages"]) == ["q1", "q2"]
    r = nc.ack("q", leased["receipt"])
    assert r.status_code == 204, r.text
    r = nc.get("/v1/topics/t/subscriptions/s/messages", params={"max": 10})
    assert [m["body"] for m in r.json()["messages"]] == ["t2"]


def test_follower_answers_equal_leader(cluster):
    li = cluster.leader()
    c = cluster.client(li)
    c.create_queue("q", max_deliveries=3)
    c.create_topic("t")
    for i in range(5):
        c.post("/v1/queues/q/messages", data=b"m%d" % i)
        c.post("/v1/topics/t/messages", data=b"t%d" % i)

    def same(path):
        answers = [cluster.client(i).get(path) for i in range(3)]
        return all(a.status_code == 200 for a in answers) and \
            len({a.text for a in answers}) == 1
    for path in ("/v1/queues/q", "/v1/topics/t", "/v1/queues", "/v1/topics",
                 "/v1/topics/t/messages?from=earliest"):
        wait_for(lambda: same(path), what="equal answers for " + path)


def test_follower_behind_compaction_gets_snapshot(tmp_path):
    c = Cluster(tmp_path, extra_args=["--snapshot-entries", "40"])
    try:
        c.start()
        li = c.leader()
        f = (li + 1) % 3
        cl = c.client(li)
        cl.create_queue("q")
        c.nodes[f].kill9()
        for i in range(150):
            assert cl.post("/v1/queues/q/messages", data=b"m%d" % i).status_code == 201
        wait_for(lambda: "snapshot written" in c.nodes[li].stderr_text(), what="leader snapshot")
        c.nodes[f].start()
        fc = Client(c.nodes[f], mint("alice"))
        wait_for(lambda: depth(fc, "q") == 150, timeout=20,
                 what="follower caught up from the snapshot")
        assert "installed snapshot" in c.nodes[f].stderr_text()
        # and it keeps following: a new write reaches it
        assert cl.post("/v1/queues/q/messages", data=b"after").status_code == 201
        wait_for(lambda: depth(fc, "q") == 151, what="replication after install")
    finally:
        c.stop_all()


def test_follower_reads_are_linearizable(cluster):
    li = cluster.leader()
    lc = cluster.client(li)
    lc.create_queue("q")
    followers = [cluster.client(i) for i in range(3) if i != li]
    for n in range(1, 21):
        assert lc.post("/v1/queues/q/messages", data=b"x").status_code == 201
        # no waiting: a read after an acknowledged write sees it on every node
        for fc in followers:
            assert depth(fc, "q") == n


def test_graceful_stop_hands_over_leadership(cluster):
    li = cluster.leader()
    c = cluster.client((li + 1) % 3)
    c.create_queue("q")
    t0 = time.monotonic()
    cluster.nodes[li].stop()
    assert "handing leadership to member" in cluster.nodes[li].stderr_text()
    others = [i for i in range(3) if i != li]
    new_li = cluster.leader(timeout=5, among=others)
    assert new_li != li
    assert c.post("/v1/queues/q/messages", data=b"x").status_code == 201
    assert time.monotonic() - t0 < 5


def test_wiped_member_abstains_then_rejoins(cluster):
    import shutil
    li = cluster.leader()
    c = cluster.client(li)
    c.create_queue("q")
    for i in range(10):
        assert c.post("/v1/queues/q/messages", data=b"m%d" % i).status_code == 201
    f = (li + 1) % 3
    cluster.nodes[f].kill9()
    shutil.rmtree(os.path.join(cluster.nodes[f].data_dir, "group-0"))
    cluster.nodes[f].start()
    assert "abstaining" in cluster.nodes[f].stderr_since_start()
    fc = Client(cluster.nodes[f], mint("alice"))
    wait_for(lambda: depth(fc, "q") == 10, timeout=15, what="wiped member caught up")
    # it stopped abstaining: with the old leader gone, the two can elect
    wait_for(lambda: not cluster.cluster_view(f).get("abstaining", False), what="abstain over")
    cluster.nodes[li].kill9()
    others = [i for i in range(3) if i != li]
    cluster.leader(timeout=10, among=others)
    assert depth(fc, "q") == 10


FORMED = "every member reports fresh storage: forming a new cluster"
CAUGHT_UP = "caught up after fresh storage"


def started(c):
    try:
        c.start()
    except MomdStartError as e:
        c.stop_all()
        pytest.fail(str(e), pytrace=False)
    return c


def test_new_cluster_forms_without_a_flag_and_never_again(tmp_path):
    c = Cluster(tmp_path)
    for m in c.nodes:
        m.env.pop("MOM_BOOTSTRAP", None)
    started(c)
    try:
        li = c.leader(timeout=15)
        cl = c.client(li)
        cl.create_queue("q")
        for i in range(5):
            assert cl.post("/v1/queues/q/messages", data=b"m%d" % i).status_code == 201
        # a majority formed the cluster; a member that heard from the others
        # only after they had voted caught up instead (both without a flag)
        logs = [m.stderr_since_start() for m in c.nodes]
        assert sum(FORMED in t for t in logs) >= 2, logs
        assert all(FORMED in t or CAUGHT_UP in t for t in logs), logs
        # the whole cluster restarts on its data: it does not form again
        for m in c.nodes:
            m.stop()
        for m in c.nodes:
            m.start()
        li = c.leader(timeout=15)
        for i, m in enumerate(c.nodes):
            assert FORMED not in m.stderr_since_start()
            assert depth(c.client(i), "q") == 5
            assert not c.cluster_view(i)["abstaining"]
    finally:
        c.stop_all()


def test_storage_of_another_cluster_is_refused(tmp_path):
    a = started(Cluster(tmp_path / "a"))
    b = started(Cluster(tmp_path / "b"))
    try:
        la, lb = a.leader(), b.leader()
        a.client(la).create_queue("qa")
        b.client(lb).create_queue("qb")
        b.stop_all()
        # node 3 of cluster a gets the disk of node 3 of cluster b
        f = 2 if la != 2 else 1
        a.nodes[f].stop()
        import shutil
        shutil.rmtree(a.nodes[f].data_dir)
        shutil.copytree(b.nodes[f].data_dir, a.nodes[f].data_dir)
        a.nodes[f].start()
        others = [i for i in range(3) if i != f]
        wait_for(lambda: any("belongs to cluster" in a.nodes[i].stderr_since_start()
                             for i in others + [f]), timeout=10, what="the refusal line")
        lines = [ln for i in range(3) for ln in a.nodes[i].stderr_since_start().splitlines()
                 if "belongs to cluster" in ln]
        assert any("never merged" in ln for ln in lines), lines
        # the other two keep serving; nothing of b reaches them
        li = a.leader(among=others)
        ca = a.client(li)
        assert ca.post("/v1/queues/qa/messages", data=b"x").status_code == 201
        assert ca.get("/v1/queues/qb").status_code == 404
        assert a.client(f).get("/v1/queues/qa").status_code != 200
    finally:
        a.stop_all()
        b.stop_all()


def test_wrong_cluster_secret_is_named_and_the_others_serve(tmp_path):
    c = Cluster(tmp_path)
    args = c.nodes[2].args
    args[args.index("--cluster-secret") + 1] = "another-secret-0123456789abcdef0123"
    started(c)
    try:
        li = c.leader(timeout=15, among=[0, 1])
        cl = c.client(li)
        cl.create_queue("q")
        assert cl.post("/v1/queues/q/messages", data=b"x").status_code == 201
        wait_for(lambda: "refuses this node's peer calls" in c.nodes[2].stderr_since_start(),
                 timeout=10, what="the refusal line on the misconfigured node")
        line = [ln for ln in c.nodes[2].stderr_since_start().splitlines()
                if "refuses this node's peer calls" in ln][0]
        assert "MOM_CLUSTER_SECRET" in line and re.search(r"node [12] refuses", line), line
    finally:
        c.stop_all()
