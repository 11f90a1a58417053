# Event streams on a three-node cluster: a follower serves topic and
# subscription streams from its own applied state (woken by apply), a
# client resumes on another node with Last-Event-ID, and a stream whose
# node is killed with SIGKILL under a steady publisher reconnects elsewhere
# and misses nothing (no gap, no duplicate: the events are exactly the
# topic's log).
# SPDX-License-Identifier: MIT

import threading
import time

import requests

from conftest import Client, mint
from sse_client import SSEClient, StreamClosed
from test_cluster import Cluster, cluster, wait_for  # noqa: F401 (the fixture)


def open_stream(node, path, headers=None, timeout=10.0):
    host, port = node.host_port()
    s = SSEClient(host, port, path, token=mint("alice"), headers=headers,
                  timeout=timeout).connect()
    assert s.read_head() == 200, s.body_text
    return s


def all_messages(c, topic):
    out, start = [], 0
    while True:
        r = c.get("/v1/topics/%s/messages" % topic, params={"from": start, "max": 1000})
        assert r.status_code == 200, r.text
        page = r.json()
        out += page["messages"]
        if page["next_offset"] == start:
            return out
        start = page["next_offset"]


def test_follower_serves_streams_woken_by_apply(cluster):
    li = cluster.leader()
    fi = (li + 1) % 3
    leader, follower = cluster.client(li), cluster.client(fi)
    leader.create_topic("t")
    assert leader.put("/v1/topics/t/subscriptions/s", json={"start": "earliest"}).status_code \
        == 201
    leader.publish_topic("t", b"before")
    ts = open_stream(cluster.nodes[fi], "/v1/topics/t/stream?from=earliest")
    ss = open_stream(cluster.nodes[fi], "/v1/topics/t/subscriptions/s/stream?ack=auto")
    assert ts.headers["x-mom-node"] == str(fi + 1)
    assert ts.next_event()["json"]["body"] == "before"
    assert ss.next_event()["json"]["body"] == "before"
    leader.publish_topic("t", b"through the leader")
    follower.publish_topic("t", b"through the follower")
    for s in (ts, ss):
        bodies = [e["json"]["body"] for e in s.events(2)]
        assert bodies == ["through the leader", "through the follower"]
    # ack=auto went through the leader like any ack: every node sees it
    wait_for(lambda: all(cluster.client(i).get("/v1/topics/t/subscriptions/s").json()["cursor"]
                         == 3 for i in range(3)), what="the cursor acked on every node")
    ts.close()
    ss.close()


def test_resume_on_another_node(cluster):
    li = cluster.leader()
    c = cluster.client(li)
    c.create_topic("t")
    for i in range(10):
        c.publish_topic("t", b"m%d" % i)
    a = open_stream(cluster.nodes[(li + 1) % 3], "/v1/topics/t/stream?from=earliest")
    first = a.events(4)
    a.close()
    b = open_stream(cluster.nodes[(li + 2) % 3], "/v1/topics/t/stream?from=earliest",
                    headers={"Last-Event-ID": first[-1]["id"]})
    rest = b.events(6)
    ids = [int(e["id"]) for e in first + rest]
    assert ids == list(range(10))
    assert [e["json"]["body"] for e in first + rest] == ["m%d" % i for i in range(10)]
    # and the same on the same node
    a = open_stream(cluster.nodes[(li + 1) % 3], "/v1/topics/t/stream",
                    headers={"Last-Event-ID": "7"})
    assert [e["id"] for e in a.events(2)] == ["8", "9"]
    a.close()
    b.close()


class Publisher(threading.Thread):
    """Publishes m0, m1, ... to topic t through the given nodes, retrying
    each until it is acknowledged (a retry may store a message twice:
    the check compares the stream with the topic's log, not with this)."""

    def __init__(self, cluster, nodes):
        super().__init__(daemon=True)
        self.clients = [Client(cluster.nodes[i], mint("alice"), timeout=5) for i in nodes]
        self.stop_flag = threading.Event()
        self.acked = 0

    def run(self):
        i = 0
        while not self.stop_flag.is_set():
            for c in self.clients:
                try:
                    r = c.post("/v1/topics/t/messages", data=b"m%d" % i)
                except requests.RequestException:
                    continue
                if r.status_code == 201:
                    self.acked += 1
                    i += 1
                    break
            else:
                time.sleep(0.05)
            time.sleep(0.005)


def test_sigkill_under_a_stream_then_resume_elsewhere(cluster):
    li = cluster.leader()
    others = [i for i in range(3) if i != li]
    cluster.client(li).create_topic("t")
    pub = Publisher(cluster, others)
    pub.start()
    try:
        # the stream is on the leader, the node that dies
        s = open_stream(cluster.nodes[li], "/v1/topics/t/stream?from=earliest")
        got = s.events(30, timeout=20)
        cluster.nodes[li].kill9()
        try:
            while True:
                got.append(s.next_event(timeout=5))
        except (StreamClosed, TimeoutError, OSError):
            pass
        s.close()
        # reconnect to a survivor with the last id seen, as EventSource does
        deadline = time.monotonic() + 20
        while True:
            try:
                s = open_stream(cluster.nodes[others[0]], "/v1/topics/t/stream",
                                headers={"Last-Event-ID": got[-1]["id"]})
                break
            except (AssertionError, OSError, StreamClosed, TimeoutError):
                assert time.monotonic() < deadline, "no survivor served the stream"
                time.sleep(0.1)
        wait_for(lambda: pub.acked >= int(got[-1]["id"]) + 30, timeout=30,
                 what="publishes after the failover")
    finally:
        pub.stop_flag.set()
        pub.join(30)
    log = all_messages(cluster.client(others[0]), "t")
    while len(got) < len(log):
        got.append(s.next_event(timeout=20))
    s.close()
    assert [int(e["id"]) for e in got] == list(range(len(log)))
    assert [e["json"] for e in got] == log
