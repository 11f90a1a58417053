# Topic and subscription event streams (Server-Sent Events) on one real
# node: the wire format (retry, id/event/data, heartbeats, headers), where a
# stream starts (from=, the cursor, Last-Event-ID), ack=auto, errors before
# the stream opens (400/401/404/505/503), access_token and the access log,
# back-pressure with a reader that stops reading, a vanished client, a
# pipelined request, a deleted topic, curl -N and 10,000 idle streams.
# Cluster streams are in test_streams_cluster.py, the browser in
# test_streams_browser.py.
# SPDX-License-Identifier: MIT

import os
import re
import resource
import selectors
import socket
import subprocess
import time

import pytest
import requests

from conftest import Client, assert_error, mint, wait_until
from sse_client import SSEClient, StreamClosed


def stream(m, path, token=None, headers=None, **kw):
    host, port = m.host_port()
    c = SSEClient(host, port, path, token=token, headers=headers, **kw).connect()
    return c


def open_stream(m, path, token, headers=None, **kw):
    c = stream(m, path, token, headers, **kw)
    assert c.read_head() == 200, c.body_text
    return c


def metric(m, name):
    text = requests.get(m.url("/metrics"), timeout=10).text
    found = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(found.group(1)) if found else None


def test_topic_stream_format_and_live_events(momd):
    c = Client(momd, mint("alice"))
    c.create_topic("t")
    for i in range(3):
        c.publish_topic("t", b"old-%d" % i)
    listed = c.read_topic("t", **{"from": "earliest"})["messages"]
    s = open_stream(momd, "/v1/topics/t/stream?from=earliest", mint("alice"))
    assert s.headers["content-type"] == "text/event-stream"
    assert s.headers["cache-control"] == "no-cache"
    assert s.headers["x-mom-node"] == "1"
    assert s.chunked
    evs = s.events(3)
    assert s.retry == 2000
    assert s.text == b"" or not s.text.startswith(b"retry")
    assert [e["id"] for e in evs] == ["0", "1", "2"]
    assert all(e["event"] == "message" for e in evs)
    # the same JSON object as the message list
    assert [e["json"] for e in evs] == listed
    c.publish_topic("t", b"live")
    ev = s.next_event()
    assert ev["id"] == "3" and ev["json"]["body"] == "live" and ev["json"]["offset"] == 3
    assert ev["json"]["publisher"] == "alice"
    s.close()


def test_retry_line_comes_first(momd):
    c = Client(momd, mint("alice"))
    c.create_topic("t")
    c.publish_topic("t", b"x")
    s = open_stream(momd, "/v1/topics/t/stream?from=earliest", mint("alice"))
    s.next_event()
    # what the client decoded first was the retry field, before any id
    assert s.retry == 2000
    s.close()
    s = open_stream(momd, "/v1/topics/t/stream?from=earliest", mint("alice"))
    s._decode_chunks()
    while b"id:" not in s.text:
        s.raw += s._recv(time.monotonic() + 5)
        s._decode_chunks()
    assert s.text.startswith(b"retry: 2000\n\n")
    s.close()


def test_from_latest_offset_and_last_event_id(momd):
    c = Client(momd, mint("alice"))
    c.create_topic("t")
    for i in range(5):
        c.publish_topic("t", b"m%d" % i)
    latest = open_stream(momd, "/v1/topics/t/stream", mint("alice"))  # default latest
    at2 = open_stream(momd, "/v1/topics/t/stream?from=2", mint("alice"))
    assert [e["id"] for e in at2.events(3)] == ["2", "3", "4"]
    # Last-Event-ID wins over from=
    resumed = open_stream(momd, "/v1/topics/t/stream?from=earliest", mint("alice"),
                          headers={"Last-Event-ID": "3"})
    assert resumed.next_event()["id"] == "4"
    c.publish_topic("t", b"m5")
    assert latest.next_event()["id"] == "5"
    assert at2.next_event()["id"] == "5"
    assert resumed.next_event()["id"] == "5"
    for s in (latest, at2, resumed):
        s.close()


def test_from_time(momd):
    c = Client(momd, mint("alice"))
    c.create_topic("t")
    for i in range(3):
        c.publish_topic("t", b"m%d" % i)
    msgs = c.read_topic("t", **{"from": "earliest"})["messages"]
    # the first message published at or after the time of the second
    s = open_stream(momd, "/v1/topics/t/stream?from=time:" + msgs[1]["published_at"],
                    mint("alice"))
    ev = s.next_event()
    assert int(ev["id"]) <= 1 and ev["json"]["published_at"] >= msgs[1]["published_at"]
    s.close()
    s = open_stream(momd, "/v1/topics/t/stream?from=time:2000-01-01T00:00:00Z", mint("alice"))
    assert s.next_event()["id"] == "0"
    s.close()
    s = open_stream(momd, "/v1/topics/t/stream?from=time:2999-01-01T00:00:00Z", mint("alice"))
    c.publish_topic("t", b"later")
    assert s.next_event()["json"]["body"] == "later"
    s.close()
    r = requests.get(momd.url("/v1/topics/t/stream"), params={"from": "time:yesterday"},
                     headers={"Authorization": "Bearer " + mint("alice")}, timeout=10)
    assert_error(r, 400, "bad_request")


def test_subscription_stream_cursor_and_ack(momd):
    c = Client(momd, mint("alice"))
    c.create_topic("t")
    assert c.put("/v1/topics/t/subscriptions/s", json={"start": "earliest"}).status_code == 201
    for i in range(4):
        c.publish_topic("t", b"m%d" % i)
    assert c.post("/v1/topics/t/subscriptions/s/ack", json={"offset": 0}).status_code == 204
    s = open_stream(momd, "/v1/topics/t/subscriptions/s/stream", mint("alice"))
    assert [e["id"] for e in s.events(3)] == ["1", "2", "3"]
    # delivering does not move the cursor
    assert c.get("/v1/topics/t/subscriptions/s").json()["cursor"] == 1
    s.close()
    # resume after Last-Event-ID
    s = open_stream(momd, "/v1/topics/t/subscriptions/s/stream", mint("alice"),
                    headers={"Last-Event-ID": "2"})
    assert s.next_event()["id"] == "3"
    s.close()
    # ack=auto acks what was written, through a Command like any ack
    s = open_stream(momd, "/v1/topics/t/subscriptions/s/stream?ack=auto", mint("alice"))
    assert [e["id"] for e in s.events(3)] == ["1", "2", "3"]
    wait_until(lambda: c.get("/v1/topics/t/subscriptions/s").json()["cursor"] == 4,
               what="cursor moved by ack=auto")
    c.publish_topic("t", b"m4")
    assert s.next_event()["id"] == "4"
    wait_until(lambda: c.get("/v1/topics/t/subscriptions/s").json()["cursor"] == 5,
               what="cursor moved past the live event")
    s.close()


def test_errors_before_the_stream_opens(momd):
    c = Client(momd, mint("alice"))
    c.create_topic("t")
    c.publish_topic("t", b"x")
    tok = mint("alice")

    def answer(path, token=tok, headers=None, version="HTTP/1.1"):
        s = stream(momd, path, token, headers)
        if version != "HTTP/1.1":
            s.close()
            s = SSEClient(*momd.host_port(), path, token=token, headers=headers).connect(version)
        status = s.read_head()
        body = s.json() if s.body_text else None
        s.close()
        return status, body, s.headers

    cases = [
        ("/v1/topics/t/stream?from=nonsense", tok, None, 400, "bad_request"),
        ("/v1/topics/t/stream?from=-1", tok, None, 400, "bad_request"),
        ("/v1/topics/t/stream?from=5", tok, None, 400, "offset_out_of_range"),
        ("/v1/topics/t/stream", tok, {"Last-Event-ID": "abc"}, 400, "bad_request"),
        ("/v1/topics/t/stream", tok, {"Last-Event-ID": "-3"}, 400, "bad_request"),
        ("/v1/topics/t/stream", tok, {"Last-Event-ID": "7"}, 400, "offset_out_of_range"),
        ("/v1/topics/t/stream", tok, {"Last-Event-ID": "18446744073709551615"}, 400,
         "bad_request"),
        ("/v1/topics/nope/stream", tok, None, 404, "topic_not_found"),
        ("/v1/topics/t/subscriptions/nope/stream", tok, None, 404, "subscription_not_found"),
        ("/v1/topics/t/subscriptions/s/stream?ack=sometimes", tok, None, 400, "bad_request"),
        ("/v1/topics/t/stream", None, None, 401, "unauthorized"),
        ("/v1/topics/t/stream?access_token=garbage", None, None, 401, "invalid_token"),
        ("/v1/topics/bad%20name/stream", tok, None, 400, "invalid_name"),
    ]
    assert c.put("/v1/topics/t/subscriptions/s", json={}).status_code == 201
    for path, token, headers, status, code in cases:
        got, body, _ = answer(path, token, headers)
        assert got == status, (path, headers, got, body)
        assert body["error"]["code"] == code, (path, body)
    got, body, hdrs = answer("/v1/topics/t/stream", version="HTTP/1.0")
    assert got == 505 and body["error"]["code"] == "http_version_not_supported"
    r = c.post("/v1/topics/t/stream")
    assert r.status_code == 405
    assert metric(momd, "mom_streams") == 0


def test_access_token_on_stream_routes_only_and_never_logged(momd_factory):
    m = momd_factory(env={"MOM_ACCESS_LOG": "1"})
    c = Client(m, mint("alice"))
    c.create_topic("t")
    tok = mint("alice")
    s = open_stream(m, "/v1/topics/t/stream?from=earliest&access_token=" + tok, None)
    c.publish_topic("t", b"x")
    assert s.next_event()["json"]["body"] == "x"
    s.close()
    # not on other routes
    r = requests.get(m.url("/v1/topics"), params={"access_token": tok}, timeout=10)
    assert_error(r, 401, "unauthorized")
    r = requests.get(m.url("/v1/topics/t/messages"), params={"access_token": tok}, timeout=10)
    assert_error(r, 401, "unauthorized")
    # the Authorization header wins over the query token
    s = stream(m, "/v1/topics/t/stream?access_token=" + tok, "not-a-jwt")
    assert s.read_head() == 401 and s.json()["error"]["code"] == "invalid_token"
    s.close()
    wait_until(lambda: "access_token=REDACTED" in m.stderr_text(), what="the access log line")
    text = m.stderr_text()
    assert tok not in text
    assert tok.split(".")[2] not in text


def test_cross_origin_event_source_gets_cors_headers(momd_factory):
    m = momd_factory(env={"MOM_CORS_ORIGINS": "http://reader.example"})
    c = Client(m, mint("alice"))
    c.create_topic("t")
    s = open_stream(m, "/v1/topics/t/stream?access_token=" + mint("alice"), None,
                    headers={"Origin": "http://reader.example"})
    assert s.headers["access-control-allow-origin"] == "http://reader.example"
    assert "X-Mom-Node" in s.headers["access-control-expose-headers"]
    s.close()


def test_heartbeat_while_idle(momd_factory):
    m = momd_factory(env={"MOM_SSE_HEARTBEAT_MS": "100"})
    c = Client(m, mint("alice"))
    c.create_topic("t")
    s = open_stream(m, "/v1/topics/t/stream", mint("alice"))
    s.wait_comment("keep-alive", timeout=10)
    before = len(s.comments)
    s.wait_comment("keep-alive", timeout=10)
    c.publish_topic("t", b"after heartbeats")
    ev = s.next_event()
    assert ev["json"]["body"] == "after heartbeats"
    assert len(s.comments) >= before
    s.close()


def test_vanished_clients_free_their_streams(momd):
    c = Client(momd, mint("alice"))
    c.create_topic("t")
    streams = [open_stream(momd, "/v1/topics/t/stream", mint("alice")) for _ in range(5)]
    wait_until(lambda: metric(momd, "mom_streams") == 5, what="5 open streams")
    for s in streams[:3]:
        s.close()
    # one goes with a reset
    streams[3].sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    streams[3].close()
    wait_until(lambda: metric(momd, "mom_streams") == 1, what="freed streams")
    c.publish_topic("t", b"still served")
    assert streams[4].next_event()["json"]["body"] == "still served"
    streams[4].close()
    wait_until(lambda: metric(momd, "mom_streams") == 0, what="no streams")


def test_pipelined_request_closes_only_that_connection(momd):
    c = Client(momd, mint("alice"))
    c.create_topic("t")
    a = open_stream(momd, "/v1/topics/t/stream", mint("alice"))
    b = open_stream(momd, "/v1/topics/t/stream", mint("alice"))
    wait_until(lambda: metric(momd, "mom_streams") == 2, what="2 streams")
    a.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert a.closed_by_server(timeout=10)
    wait_until(lambda: metric(momd, "mom_streams") == 1, what="the pipelining stream freed")
    c.publish_topic("t", b"for b")
    assert b.next_event()["json"]["body"] == "for b"
    a.close()
    b.close()


def test_deleted_topic_ends_its_streams(momd):
    c = Client(momd, mint("alice"))
    c.create_topic("t")
    assert c.put("/v1/topics/t/subscriptions/s", json={}).status_code == 201
    s1 = open_stream(momd, "/v1/topics/t/stream", mint("alice"))
    s2 = open_stream(momd, "/v1/topics/t/subscriptions/s/stream", mint("alice"))
    assert c.delete("/v1/topics/t").status_code == 204
    assert s1.wait_end(timeout=10)
    assert s2.wait_end(timeout=10)
    wait_until(lambda: metric(momd, "mom_streams") == 0, what="streams freed")
    s1.close()
    s2.close()


def test_deleted_subscription_ends_its_stream(momd_factory):
    m = momd_factory(env={"MOM_SSE_HEARTBEAT_MS": "100"})
    c = Client(m, mint("alice"))
    c.create_topic("t")
    assert c.put("/v1/topics/t/subscriptions/s", json={}).status_code == 201
    s = open_stream(m, "/v1/topics/t/subscriptions/s/stream", mint("alice"))
    assert c.delete("/v1/topics/t/subscriptions/s").status_code == 204
    assert s.wait_end(timeout=10)
    s.close()


def test_max_streams_answers_503(momd_factory):
    m = momd_factory(env={"MOM_MAX_STREAMS": "2"})
    c = Client(m, mint("alice"))
    c.create_topic("t")
    a = open_stream(m, "/v1/topics/t/stream", mint("alice"))
    b = open_stream(m, "/v1/topics/t/stream", mint("alice"))
    s = stream(m, "/v1/topics/t/stream", mint("alice"))
    assert s.read_head() == 503
    assert s.headers.get("retry-after")
    assert s.json()["error"]["code"] == "unavailable"
    s.close()
    a.close()
    wait_until(lambda: metric(m, "mom_streams") == 1, what="a slot freed")
    s = open_stream(m, "/v1/topics/t/stream", mint("alice"))
    s.close()
    b.close()


def test_slow_reader_is_bounded_then_catches_up(momd_factory):
    limit = 65536
    m = momd_factory(env={"MOM_SSE_MAX_BUFFER": str(limit)})
    c = Client(m, mint("alice"))
    c.create_topic("t")
    s = open_stream(m, "/v1/topics/t/stream", mint("alice"), rcvbuf=4096)
    body = b"z" * 4000
    n = 600  # 2.4 MB of bodies, far more than the socket buffers hold
    for i in range(0, n, 100):
        r = c.post("/v1/topics/t/messages/batch",
                   json={"messages": [{"body": body.decode()} for _ in range(100)]})
        assert r.status_code == 201, r.text
    # the node holds at most the limit plus one event for this stream
    wait_until(lambda: metric(m, "mom_stream_queued_bytes") > 0, what="queued bytes")
    for _ in range(20):
        q = metric(m, "mom_stream_queued_bytes")
        assert q <= limit + 8192, q
        time.sleep(0.05)
    # then it catches up: every event, in order, none twice
    ids = [int(e["id"]) for e in s.events(n, timeout=60)]
    assert ids == list(range(n))
    wait_until(lambda: metric(m, "mom_stream_queued_bytes") == 0, what="drained")
    s.close()


def test_a_long_backlog_arrives_whole_in_order(momd):
    # 3 MB of retained messages: fed in pieces of at most 64 KiB per loop
    # turn, each piece from where the last one stopped
    c = Client(momd, mint("alice"))
    c.create_topic("t")
    n = 3000
    for i in range(0, n, 500):
        r = c.post("/v1/topics/t/messages/batch",
                   json={"messages": [{"body": "%05d" % (i + k) + "y" * 1000}
                                      for k in range(500)]})
        assert r.status_code == 201, r.text
    s = open_stream(momd, "/v1/topics/t/stream?from=earliest", mint("alice"))
    evs = s.events(n, timeout=60)
    assert [int(e["id"]) for e in evs] == list(range(n))
    assert all(e["json"]["body"].startswith("%05d" % i) for i, e in enumerate(evs))
    c.publish_topic("t", b"then live")
    assert s.next_event()["json"]["body"] == "then live"
    s.close()


def test_curl_n(momd):
    c = Client(momd, mint("alice"))
    c.create_topic("t")
    c.publish_topic("t", b"first")
    proc = subprocess.Popen(
        ["curl", "-sN", "--max-time", "30", "-H", "Authorization: Bearer " + mint("alice"),
         momd.url("/v1/topics/t/stream?from=earliest")],
        stdout=subprocess.PIPE)
    try:
        lines = []
        while "data: " not in "".join(lines):
            lines.append(proc.stdout.readline().decode())
        c.publish_topic("t", b"second")
        while "second" not in "".join(lines):
            lines.append(proc.stdout.readline().decode())
        text = "".join(lines)
        assert text.startswith("retry: 2000\n\nid: 0\nevent: message\ndata: {")
        assert "id: 1\nevent: message\ndata: {\"offset\":1," in text
    finally:
        proc.kill()
        proc.wait()
    wait_until(lambda: metric(momd, "mom_streams") == 0, what="curl's stream freed")


def test_ten_thousand_idle_streams(momd_factory):
    n = 10000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = n + 1000
    if hard < need:
        try:  # root may raise the hard limit (momd, our child, inherits it)
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            hard = need
        except (ValueError, OSError):
            pytest.skip("the fd limit (%d) is below %d and cannot be raised" % (hard, need))
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    m = momd_factory(env={"MOM_MAX_CONNECTIONS": str(n + 100), "MOM_MAX_STREAMS": str(n)})
    c = Client(m, mint("alice"))
    c.create_topic("t")
    host, port = m.host_port()
    req = ("GET /v1/topics/t/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
           % mint("alice")).encode()
    sel = selectors.DefaultSelector()
    socks = []
    try:
        for i in range(n):
            sk = socket.create_connection((host, port), timeout=30)
            sk.sendall(req)
            sk.setblocking(False)
            socks.append(sk)
            sel.register(sk, selectors.EVENT_READ, i)
        got = [b""] * n

        def read_until(pred, what, timeout=120):
            deadline = time.monotonic() + timeout
            pending = {i for i in range(n) if not pred(got[i])}
            while pending and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=1):
                    i = key.data
                    try:
                        data = key.fileobj.recv(65536)
                    except BlockingIOError:
                        continue
                    assert data, "stream %d closed" % i
                    got[i] += data
                    if pred(got[i]):
                        pending.discard(i)
            assert not pending, "%d streams without %s" % (len(pending), what)

        read_until(lambda b: b"retry: 2000" in b, "their headers and retry line")
        assert metric(m, "mom_streams") == n
        c.publish_topic("t", b"to everyone")
        read_until(lambda b: b"to everyone" in b, "the event")
    finally:
        for sk in socks:
            sel.unregister(sk)
            sk.close()
        sel.close()
    wait_until(lambda: metric(m, "mom_streams") == 0, timeout=60, what="all streams freed")
