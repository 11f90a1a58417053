# GET /metrics on real nodes, parsed with python3-prometheus-client: no
# token needed, every metric the contract names is there, counters move by
# exactly what the test did, histograms are cumulative and consistent, the
# per-queue counters survive a restart from a snapshot, and on a three-node
# cluster the leader and the followers each report their own view while
# agreeing on the replicated counters.
# SPDX-License-Identifier: MIT

import math
import socket

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import Client, mint, wait_until
from test_cluster import cluster  # noqa: F401  (fixture)

REQUIRED = [
    "mom_http_requests_total", "mom_http_request_duration_seconds",
    "mom_queue_depth", "mom_queue_in_flight", "mom_queue_published_total",
    "mom_queue_acked_total", "mom_queue_dead_lettered_total",
    "mom_topic_messages", "mom_topic_published_total", "mom_subscription_lag",
    "mom_raft_term", "mom_raft_is_leader", "mom_raft_commit_index",
    "mom_raft_applied_index", "mom_raft_peer_match_index",
    "mom_raft_peer_last_contact_seconds", "mom_wal_fsync_duration_seconds",
    "mom_wal_bytes_written_total", "mom_snapshot_duration_seconds", "mom_streams",
    "mom_connections", "process_resident_memory_bytes", "process_cpu_seconds_total",
    "process_open_fds", "process_start_time_seconds",
]


class Scrape:
    """One parsed /metrics answer."""

    def __init__(self, text):
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {}
        for f in self.families.values():
            for s in f.samples:
                self.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def has_family(self, name):
        # the parser names a counter family without its _total suffix
        return name in self.families or (name.endswith("_total") and name[:-6] in self.families)

    def value(self, name, default=None, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))), default)

    def series(self, name):
        return {k[1]: v for k, v in self.samples.items() if k[0] == name}


def scrape(momd):
    r = requests.get(momd.url("/metrics"), timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return Scrape(r.text)


def check_histograms(sc):
    """Every histogram: buckets non-decreasing in le, +Inf == _count, sum >= 0."""
    checked = 0
    for f in sc.families.values():
        if f.type != "histogram":
            continue
        groups = {}
        for s in f.samples:
            key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            groups.setdefault(key, {"buckets": [], "count": None, "sum": None})
            g = groups[key]
            if s.name.endswith("_bucket"):
                le = math.inf if s.labels["le"] == "+Inf" else float(s.labels["le"])
                g["buckets"].append((le, s.value))
            elif s.name.endswith("_count"):
                g["count"] = s.value
            elif s.name.endswith("_sum"):
                g["sum"] = s.value
        for key, g in groups.items():
            b = sorted(g["buckets"])
            assert b and b[-1][0] == math.inf, (f.name, key)
            values = [v for _, v in b]
            assert values == sorted(values), (f.name, key, b)
            assert b[-1][1] == g["count"], (f.name, key, b, g["count"])
            assert g["sum"] is not None and g["sum"] >= 0, (f.name, key)
            checked += 1
    return checked


def test_metrics_need_no_token_and_name_everything(momd, alice):
    alice.create_queue("mq")
    alice.create_topic("mt")
    r = alice.put("/v1/topics/mt/subscriptions/ms", json={"start": "earliest"})
    assert r.status_code == 201, r.text
    # no Authorization header at all, and a bad one is ignored
    r = requests.get(momd.url("/metrics"), headers={"Authorization": "Bearer nope"}, timeout=10)
    assert r.status_code == 200
    sc = scrape(momd)
    missing = [n for n in REQUIRED if not sc.has_family(n)]
    assert not missing, missing
    assert sc.value("mom_raft_is_leader") == 1
    assert sc.value("mom_raft_term") >= 1
    assert sc.value("mom_queue_depth", queue="mq") == 0
    assert sc.value("mom_topic_messages", topic="mt") == 0
    assert sc.value("mom_subscription_lag", topic="mt", subscription="ms") == 0
    assert sc.value("mom_connections") >= 1
    assert sc.value("process_open_fds") > 3
    assert sc.value("process_resident_memory_bytes") > 1 << 20
    # every route label is a pattern from the route table, never a raw path
    routes = {dict(k)["route"] for k in sc.series("mom_http_requests_total")}
    assert "/v1/queues/{queue}" in routes and "/v1/topics/{topic}" in routes, routes
    assert not any("mq" in r or "mt" in r for r in routes), routes


def test_counters_move_by_exactly_what_was_done(momd, alice):
    alice.create_queue("cq")
    route = "/v1/queues/{queue}/messages"
    before = scrape(momd)
    base_http = before.value("mom_http_requests_total", 0, route=route, method="POST",
                             status="201")
    base_count = before.value("mom_http_request_duration_seconds_count", 0, route=route)
    assert before.value("mom_queue_published_total", queue="cq") == 0
    for i in range(10):
        alice.publish("cq", "m%d" % i)
    after = scrape(momd)
    assert after.value("mom_queue_published_total", queue="cq") == 10
    assert after.value("mom_queue_depth", queue="cq") == 10
    assert after.value("mom_http_requests_total", route=route, method="POST",
                       status="201") == base_http + 10
    assert after.value("mom_http_request_duration_seconds_count", route=route) == base_count + 10
    # a batch of 5 counts 5 messages, one request on its own route
    r = alice.post("/v1/queues/cq/messages/batch",
                   json={"messages": [{"body": "b%d" % i} for i in range(5)]})
    assert r.status_code == 201, r.text
    # 3 leased and acked, 2 taken with ack=auto, 1 leased and left in flight
    msgs = alice.receive("cq", max=3)
    assert len(msgs) == 3
    for m in msgs:
        assert alice.ack("cq", m["receipt"]).status_code == 204
    assert len(alice.receive("cq", max=2, ack="auto")) == 2
    assert len(alice.receive("cq", max=1)) == 1
    # errors are counted with their status and do not count as publishes
    r = alice.post("/v1/queues/nope/messages", data=b"x")
    assert r.status_code == 404
    sc = scrape(momd)
    assert sc.value("mom_queue_published_total", queue="cq") == 15
    assert sc.value("mom_queue_acked_total", queue="cq") == 5
    assert sc.value("mom_queue_in_flight", queue="cq") == 1
    assert sc.value("mom_queue_depth", queue="cq") == 9
    assert sc.value("mom_queue_dead_lettered_total", queue="cq") == 0
    q = alice.get_queue("cq")
    assert (q["depth"], q["in_flight"]) == (9, 1)
    assert sc.value("mom_http_requests_total", route=route, method="POST", status="404") == 1
    assert sc.value("mom_http_requests_total", route="/v1/queues/{queue}/messages/batch",
                    method="POST", status="201") == 1
    assert sc.value("mom_http_requests_total", route="/v1/queues/{queue}/messages/{receipt}",
                    method="DELETE", status="204") == 3
    # requests without a token, unknown paths and the dashboard's files
    # (answered before routing) are counted too
    assert requests.get(momd.url("/v1/queues"), timeout=10).status_code == 401
    assert requests.get(momd.url("/no/such/path"), timeout=10).status_code == 404
    # a header too large is refused before any request is parsed
    with socket.create_connection(momd.host_port(), timeout=10) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        got = b""
        while True:
            chunk = raw.recv(65536)
            if not chunk:
                break
            got += chunk
        assert got.startswith(b"HTTP/1.1 431"), got[:100]
    page = requests.get(momd.url("/"), timeout=10)
    assert page.status_code == 200
    again = requests.get(momd.url("/"), headers={"If-None-Match": page.headers["ETag"]},
                         timeout=10)
    assert again.status_code == 304
    sc2 = scrape(momd)
    ui = "/{dashboard file}"
    assert sc2.value("mom_http_requests_total", route=ui, method="GET", status="200") == 1
    assert sc2.value("mom_http_requests_total", route=ui, method="GET", status="304") == 1
    assert sc2.value("mom_http_requests_total", route="unmatched", method="OTHER",
                     status="431") == 1
    assert sc2.value("mom_http_requests_total", route="/v1/queues", method="GET",
                     status="401") == 1
    assert sc2.value("mom_http_requests_total", route="unmatched", method="GET",
                     status="404") == 1
    # the previous scrape itself was counted
    assert sc2.value("mom_http_requests_total", route="/metrics", method="GET",
                     status="200") >= 3
    assert check_histograms(sc2) >= 4


def test_topics_subscriptions_and_dead_letters(momd, alice):
    alice.create_topic("tt")
    assert alice.put("/v1/topics/tt/subscriptions/s1",
                     json={"start": "earliest"}).status_code == 201
    for i in range(7):
        alice.publish_topic("tt", "t%d" % i)
    r = alice.post("/v1/topics/tt/subscriptions/s1/ack", json={"offset": 2})
    assert r.status_code == 204, r.text
    alice.create_queue("dlq")
    alice.create_queue("src", max_deliveries=1, dead_letter_queue="dlq")
    alice.publish("src", "poison")
    # a zero visibility timeout ends the lease at once: the next Tick
    # dead-letters the message (one delivery of at most one)
    assert len(alice.receive("src", visibility_timeout_ms=0)) == 1
    wait_until(lambda: scrape(momd).value("mom_queue_dead_lettered_total", queue="src") == 1,
               what="the dead-letter counter")
    sc = scrape(momd)
    assert sc.value("mom_topic_published_total", topic="tt") == 7
    assert sc.value("mom_topic_messages", topic="tt") == 7
    assert sc.value("mom_subscription_lag", topic="tt", subscription="s1") == 4
    assert sc.value("mom_subscription_cursor", topic="tt", subscription="s1") == 3
    assert sc.value("mom_queue_depth", queue="dlq") == 1
    assert sc.value("mom_queue_published_total", queue="dlq") == 0  # moved, not published
    assert sc.value("mom_queue_depth", queue="src") == 0


def test_counters_survive_restart_from_a_snapshot(momd_factory):
    m = momd_factory(args=["--snapshot-entries", "20"])
    c = Client(m, mint("alice"))
    c.create_queue("rq")
    for i in range(30):
        c.publish("rq", "r%d" % i)
    for msg in c.receive("rq", max=4):
        assert c.ack("rq", msg["receipt"]).status_code == 204
    before = scrape(m)
    assert before.value("mom_queue_published_total", queue="rq") == 30
    assert before.value("mom_queue_acked_total", queue="rq") == 4
    wait_until(lambda: scrape(m).value("mom_snapshot_duration_seconds_count") >= 1,
               what="a snapshot")
    assert scrape(m).value("mom_wal_fsync_duration_seconds_count") >= 1
    c.close()
    m.restart()
    after = scrape(m)
    assert after.value("mom_queue_published_total", queue="rq") == 30
    assert after.value("mom_queue_acked_total", queue="rq") == 4
    assert after.value("mom_queue_depth", queue="rq") == 26
    # process counters start again with the process
    assert after.value("mom_wal_bytes_written_total") < before.value("mom_wal_bytes_written_total")


def test_leader_and_follower_views(cluster):  # noqa: F811
    leader = cluster.leader()
    c = cluster.client(leader)
    c.create_queue("cl")
    for i in range(10):
        c.publish("cl", "c%d" % i)
    views = {}

    def converged():
        for i in range(3):
            views[i] = scrape(cluster.nodes[i])
        commits = {views[i].value("mom_raft_applied_index") for i in range(3)}
        return len(commits) == 1 and all(
            views[i].value("mom_queue_published_total", queue="cl") == 10 for i in range(3))

    wait_until(converged, timeout=10, what="every node to apply the publishes")
    lv = views[leader]
    assert lv.value("mom_raft_is_leader") == 1
    assert lv.value("mom_raft_role", role="leader") == 1
    peers = lv.series("mom_raft_peer_match_index")
    assert len(peers) == 2, peers
    assert {dict(k)["peer"] for k in peers} == {str(i + 1) for i in range(3) if i != leader}
    assert all(v >= 1 for v in peers.values())
    for i in range(3):
        v = views[i]
        assert v.value("mom_node_info", node=str(i + 1)) == 1
        assert v.value("mom_raft_members") == 3
        assert v.value("mom_raft_leader_id") == leader + 1
        assert v.value("mom_raft_term") == lv.value("mom_raft_term")
        assert v.value("mom_queue_depth", queue="cl") == 10
        contacts = v.series("mom_raft_peer_last_contact_seconds")
        assert contacts, "node %d heard from no peer" % (i + 1)
        assert all(0 <= s < 30 for s in contacts.values())
        assert len(v.series("mom_raft_peer_healthy")) == 2
        assert v.value("mom_raft_abstaining") == 0
        if i == leader:
            continue
        assert v.value("mom_raft_is_leader") == 0
        assert v.value("mom_raft_role", role="follower") == 1
        assert v.series("mom_raft_peer_match_index") == {}  # only the leader knows
        assert v.value("mom_raft_apply_lag") == 0
        # the follower counted no client publish itself: the leader's HTTP
        # counters are its own
        assert v.value("mom_http_requests_total", 0, route="/v1/queues/{queue}/messages",
                       method="POST", status="201") == 0
    assert lv.value("mom_http_requests_total", route="/v1/queues/{queue}/messages",
                    method="POST", status="201") == 10
    # health comes from a Ping a second: every node sees both peers healthy soon
    def all_healthy():
        for i in range(3):
            h = scrape(cluster.nodes[i]).series("mom_raft_peer_healthy")
            if len(h) != 2 or not all(x == 1 for x in h.values()):
                return False
        return True

    wait_until(all_healthy, timeout=15, what="every peer healthy on every node")
    # a write through a follower is counted on the follower that answered it
    f = (leader + 1) % 3
    cluster.client(f).publish("cl", "via follower")
    sf = scrape(cluster.nodes[f])
    assert sf.value("mom_http_requests_total", route="/v1/queues/{queue}/messages",
                    method="POST", status="201") == 1
    wait_until(lambda: scrape(cluster.nodes[leader]).value("mom_queue_published_total",
                                                           queue="cl") == 11,
               what="the forwarded publish on the leader")
    for i in range(3):
        check_histograms(scrape(cluster.nodes[i]))
