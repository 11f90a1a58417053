# A member that has not caught up never answers 4xx for a resource that
# exists: after kill -9 and restart, while the rest of the cluster is stopped
# (SIGSTOP, so the restarted node cannot learn the commit index), every
# request that would consult its local state answers 503 with Retry-After;
# once the others continue, the same requests succeed. Ordering by signals,
# not by sleeps, makes the lagging window as long as the test needs.
# SPDX-License-Identifier: MIT

import os
import signal

import pytest
import requests

from conftest import Client, mint
from test_cluster import Cluster, wait_for


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    c.start()
    yield c
    c.stop_all()
    problems = [p for p in (m.sanitizer_report() for m in c.nodes) if p]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def lagging_follower(cluster):
    """Sets up a queue with one message, a topic with a subscription and a
    registered user; kill -9s a follower, SIGSTOPs the other two and
    restarts the follower. Returns (follower index, the stopped indexes)."""
    li = cluster.leader()
    c = cluster.client(li)
    c.create_queue("q")
    c.publish("q", b"kept")
    c.create_topic("t")
    r = c.put("/v1/topics/t/subscriptions/s", json={"start": "earliest"})
    assert r.status_code == 201, r.text
    c.publish_topic("t", b"first")
    r = requests.post(cluster.nodes[li].url("/v1/auth/users"),
                      json={"username": "carol", "password": "carol-password-1"}, timeout=10)
    assert r.status_code == 201, r.text
    f = (li + 1) % 3
    # the follower has applied everything before it dies
    fc = cluster.client(f)
    wait_for(lambda: fc.get_queue("q")["depth"] == 1, what="follower applied the publish")
    cluster.nodes[f].kill9()
    others = [i for i in range(3) if i != f]
    for i in others:
        os.kill(cluster.nodes[i].proc.pid, signal.SIGSTOP)
    cluster.nodes[f].start()
    return f, others


def lagging_requests(node, token):
    """Every request whose answer depends on local state, as (what, response)."""
    c = Client(node, token, timeout=15)
    long_receipt = "r" * 300
    return [
        ("receive", c.post("/v1/queues/q/receive", params={"max": 1})),
        ("receive wait", c.post("/v1/queues/q/receive", params={"max": 1, "wait_ms": 100})),
        ("queue get", c.get("/v1/queues/q")),
        ("ack long receipt", c.delete("/v1/queues/q/messages/%s" % long_receipt)),
        ("topic read", c.get("/v1/topics/t/messages", params={"from": "earliest"})),
        ("subscription read", c.get("/v1/topics/t/subscriptions/s/messages")),
        ("login", requests.post(node.url("/v1/auth/token"),
                                json={"username": "carol", "password": "carol-password-1"},
                                timeout=15)),
    ]


def test_restarted_follower_answers_503_not_404_until_caught_up(cluster):
    f, others = lagging_follower(cluster)
    node = cluster.nodes[f]
    token = mint("alice")
    try:
        for what, r in lagging_requests(node, token):
            assert r.status_code == 503, "%s: %d %s" % (what, r.status_code, r.text)
            assert r.headers.get("Retry-After"), what
            assert r.json()["error"]["code"] == "unavailable", (what, r.text)
    finally:
        for i in others:
            os.kill(cluster.nodes[i].proc.pid, signal.SIGCONT)
    c = Client(node, token, timeout=15)
    # caught up: the same requests answer from the committed state
    wait_for(lambda: c.get("/v1/queues/q").status_code == 200, timeout=20,
             what="the follower serves reads again")
    r = c.post("/v1/queues/q/receive", params={"max": 1, "visibility_timeout_ms": 60000})
    assert r.status_code == 200, r.text
    assert [m["body"] for m in r.json()["messages"]] == ["kept"]
    r = c.delete("/v1/queues/q/messages/%s" % ("r" * 300))
    assert r.status_code == 410, r.text
    r = c.get("/v1/topics/t/subscriptions/s/messages")
    assert r.status_code == 200 and len(r.json()["messages"]) == 1, r.text
    r = requests.post(node.url("/v1/auth/token"),
                      json={"username": "carol", "password": "carol-password-1"}, timeout=15)
    assert r.status_code == 200, r.text
    # a queue that really does not exist is still 404 once caught up
    r = c.post("/v1/queues/nope/receive")
    assert r.status_code == 404 and r.json()["error"]["code"] == "queue_not_found", r.text
