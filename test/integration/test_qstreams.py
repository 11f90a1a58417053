# Queue streams (GET /v1/queues/{q}/stream?prefetch=N) on real nodes: the
# prefetch credit (exactly N leases in flight, an ack or a nack frees one),
# leases released at once by a Command when the stream closes or its client
# vanishes (another consumer gets them long before the visibility timeout),
# two streams competing on one queue, a stream on a follower of a
# three-node cluster (leases through the leader, release included), a
# reader that stops reading (the stream stops leasing), a deleted queue
# ending its streams, the errors before a stream opens, and a
# node stopping under open streams (their leases wait for their timeout).
# The visibility timeouts here are 10 minutes: a lease that comes back
# during a test came back through the release, not through its timeout.
# SPDX-License-Identifier: MIT

import select
import socket
import struct

from conftest import Client, assert_error, mint, wait_until
from sse_client import SSEClient, StreamClosed
from test_cluster import Cluster, cluster, wait_for  # noqa: F401 (the fixture)

LONG_VT = 600000


def open_stream(node, path, sub="alice"):
    host, port = node.host_port()
    s = SSEClient(host, port, path, token=mint(sub)).connect()
    assert s.read_head() == 200, s.body_text
    assert s.headers["content-type"] == "text/event-stream"
    return s


def queue_with(c, name, n):
    c.create_queue(name, visibility_timeout_ms=LONG_VT)
    r = c.post("/v1/queues/%s/messages/batch" % name,
               json={"messages": [{"body": "m%d" % i} for i in range(1, n + 1)]})
    assert r.status_code == 201, r.text


def receive_all(c, name, n, wait_ms=20000):
    """Receives with long polls until n messages came (or one came back
    empty after wait_ms: then the leases did not come back)."""
    got = []
    while len(got) < n:
        msgs = c.receive(name, max=100, wait_ms=wait_ms, visibility_timeout_ms=LONG_VT,
                         timeout=wait_ms / 1000 + 10)
        if not msgs:
            break
        got += msgs
    return got


def test_prefetch_credit(momd):
    c = Client(momd, mint("alice"))
    queue_with(c, "q", 10)
    s = open_stream(momd, "/v1/queues/q/stream?prefetch=3")
    evs = s.events(3)
    assert [e["id"] for e in evs] == ["1", "2", "3"]
    assert all(e["event"] == "message" for e in evs)
    m = evs[0]["json"]
    assert m["seq"] == 1 and m["body"] == "m1" and m["encoding"] == "utf-8"
    assert m["delivery_count"] == 1 and m["publisher"] == "alice"
    assert set(m) >= {"id", "seq", "receipt", "body", "encoding", "content_type",
                      "delivery_count", "published_at", "publisher"}
    # exactly three in flight: the stream holds its credit, no more
    q = c.get_queue("q")
    assert (q["in_flight"], q["depth"]) == (3, 7)
    # an ack frees one slot: the next message comes
    assert c.ack("q", evs[0]["json"]["receipt"]).status_code == 204
    ev = s.next_event()
    assert ev["json"]["seq"] == 4
    # a nack frees one: the nacked message is back at its position and is
    # the next one leased, its delivery counted
    r = c.post("/v1/queues/q/messages/%s/nack" % evs[1]["json"]["receipt"])
    assert r.status_code == 204, r.text
    ev = s.next_event()
    assert (ev["json"]["seq"], ev["json"]["delivery_count"]) == (2, 2)
    assert c.get_queue("q")["in_flight"] == 3
    # another consumer gets exactly what the stream does not hold
    other = c.receive("q", max=100, visibility_timeout_ms=LONG_VT)
    assert [x["seq"] for x in other] == [5, 6, 7, 8, 9, 10]
    s.close()


def test_default_prefetch_is_ten(momd):
    c = Client(momd, mint("alice"))
    queue_with(c, "q", 15)
    s = open_stream(momd, "/v1/queues/q/stream")
    assert [e["json"]["seq"] for e in s.events(10)] == list(range(1, 11))
    assert c.get_queue("q")["in_flight"] == 10
    assert [x["seq"] for x in c.receive("q", max=100)] == [11, 12, 13, 14, 15]
    s.close()


def test_closing_the_stream_releases_its_leases_at_once(momd):
    c = Client(momd, mint("alice"))
    queue_with(c, "q", 5)
    s = open_stream(momd, "/v1/queues/q/stream?prefetch=5")
    evs = s.events(5)
    assert c.ack("q", evs[0]["json"]["receipt"]).status_code == 204
    s.close()
    # the four unacked come back at once, long before their 10-minute lease
    got = receive_all(c, "q", 4)
    assert sorted(m["seq"] for m in got) == [2, 3, 4, 5]
    assert all(m["delivery_count"] == 2 for m in got)
    # the stream's receipts are dead
    r = c.ack("q", evs[1]["json"]["receipt"])
    assert_error(r, 410, "receipt_expired")


def test_vanished_clients_free_their_leases(momd):
    """Clients that never read their events and go away (one closes, one
    resets the connection) free their leases at once."""
    c = Client(momd, mint("alice"))
    queue_with(c, "q", 4)
    host, port = momd.host_port()
    gone = []
    for _ in range(2):
        s = SSEClient(host, port, "/v1/queues/q/stream?prefetch=2", token=mint("alice"))
        gone.append(s.connect())
    # leased (and written to the sockets), never read by the clients
    wait_until(lambda: c.get_queue("q")["in_flight"] == 4, timeout=10, what="4 leases")
    gone[0].close()  # FIN
    gone[1].sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    gone[1].close()  # RST
    got = receive_all(c, "q", 4)
    assert sorted(m["seq"] for m in got) == [1, 2, 3, 4]
    assert all(m["delivery_count"] == 2 for m in got)


def next_from_either(streams, timeout=20):
    """(stream, event) of whichever stream has an event first."""
    for s in streams:
        s._decode_chunks()
        if b"\n\n" in s.text:
            return s, s.next_event()
    ready, _, _ = select.select([s.sock for s in streams], [], [], timeout)
    assert ready, "no event in %d s" % timeout
    s = next(s for s in streams if s.sock in ready)
    return s, s.next_event()


def test_two_streams_never_hold_the_same_message(momd):
    c = Client(momd, mint("alice"))
    n = 40
    queue_with(c, "q", n)
    a = open_stream(momd, "/v1/queues/q/stream?prefetch=4")
    b = open_stream(momd, "/v1/queues/q/stream?prefetch=4", sub="bob")
    acker = Client(momd, mint("bob"))
    seen = {a: [], b: []}
    held = {a: [], b: []}  # (seq, receipt) not acked yet, oldest first
    in_flight = set()
    while len(seen[a]) + len(seen[b]) < n:
        s, ev = next_from_either([a, b])
        seq = ev["json"]["seq"]
        assert seq not in in_flight, "seq %d in flight on both streams" % seq
        in_flight.add(seq)
        seen[s].append(seq)
        held[s].append((seq, ev["json"]["receipt"]))
        if len(held[s]) > 2:  # keep two in flight, ack the oldest
            old, receipt = held[s].pop(0)
            assert acker.ack("q", receipt).status_code == 204
            in_flight.discard(old)
    assert sorted(seen[a] + seen[b]) == list(range(1, n + 1))
    assert seen[a] and seen[b]
    a.close()
    b.close()


def test_a_reader_that_does_not_read_stops_the_leasing(momd_factory):
    """Events that wait for the socket hold the stream's leasing: a client
    that stops reading keeps what one Receive gave it (100 of prefetch
    1000) and the rest stays for other consumers; once it reads, it gets
    everything it was given, in order."""
    m = momd_factory(env={"MOM_SSE_MAX_BUFFER": "65536"})
    c = Client(m, mint("alice"))
    c.create_queue("q", visibility_timeout_ms=LONG_VT)
    body = b"x" * 200000  # 100 events: 20 MB, far beyond the socket's buffers
    for _ in range(150):
        c.publish("q", body)
    host, port = m.host_port()
    s = SSEClient(host, port, "/v1/queues/q/stream?prefetch=1000", token=mint("alice"),
                  rcvbuf=4096, timeout=60).connect()
    assert s.read_head() == 200
    wait_until(lambda: c.get_queue("q")["in_flight"] == 100, timeout=30, what="one Receive")
    # the stream leases nothing more while its events wait: the rest is ours
    other = c.receive("q", max=100, visibility_timeout_ms=LONG_VT)
    assert [x["seq"] for x in other] == list(range(101, 151))
    assert [e["json"]["seq"] for e in s.events(100)] == list(range(1, 101))
    s.close()


def test_deleted_queue_ends_its_streams(momd):
    c = Client(momd, mint("alice"))
    queue_with(c, "q", 1)
    s = open_stream(momd, "/v1/queues/q/stream")
    s.next_event()
    assert c.delete("/v1/queues/q").status_code == 204
    assert s.wait_end()


def test_errors_before_the_stream_opens(momd):
    c = Client(momd, mint("alice"))
    c.create_queue("q")
    host, port = momd.host_port()

    def answer(path, token=mint("alice")):
        s = SSEClient(host, port, path, token=token).connect()
        status = s.read_head()
        body = s.json() if s.body_text else None
        s.close()
        return status, body

    for bad in ("0", "1001", "-1", "abc", "", "1.5", "99999999999999999999999"):
        status, body = answer("/v1/queues/q/stream?prefetch=" + bad)
        assert status == 400 and body["error"]["code"] == "bad_request", (bad, body)
    # 400 comes before 404
    status, body = answer("/v1/queues/nope/stream?prefetch=0")
    assert status == 400
    status, body = answer("/v1/queues/nope/stream")
    assert status == 404 and body["error"]["code"] == "queue_not_found"
    status, body = answer("/v1/queues/q/stream", token=None)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, body = answer("/v1/queues/q/stream?prefetch=1000")
    assert status == 200
    # a browser's EventSource sends its token in the query
    status, _ = answer("/v1/queues/q/stream?access_token=" + mint("alice"), token=None)
    assert status == 200
    # nothing was leased by the refused ones
    assert c.get_queue("q")["in_flight"] == 0


def test_queue_stream_on_a_follower(cluster):
    li = cluster.leader()
    fi = (li + 1) % 3
    leader = Client(cluster.nodes[li], mint("alice"))
    queue_with(leader, "q", 6)
    follower = cluster.nodes[fi]
    wait_for(lambda: Client(follower, mint("alice")).get("/v1/queues/q").status_code == 200,
             what="the queue on the follower")
    s = open_stream(follower, "/v1/queues/q/stream?prefetch=2")
    assert s.headers["x-mom-node"] == str(fi + 1)
    evs = s.events(2)
    assert [e["json"]["seq"] for e in evs] == [1, 2]
    assert leader.get_queue("q")["in_flight"] == 2
    # an ack through the leader frees a slot on the follower's stream
    assert leader.ack("q", evs[0]["json"]["receipt"]).status_code == 204
    assert s.next_event()["json"]["seq"] == 3
    # the other follower's consumer gets what the stream does not hold
    other = Client(cluster.nodes[3 - li - fi], mint("bob"))
    assert [m["seq"] for m in other.receive("q", max=100, visibility_timeout_ms=LONG_VT)] == \
        [4, 5, 6]
    # closing the follower's stream releases its two leases through the leader
    s.close()
    got = receive_all(leader, "q", 2)
    assert sorted(m["seq"] for m in got) == [2, 3]


def test_node_stops_under_open_streams(momd):
    """A node that stops while its queue streams hold leases (and maybe a
    Receive in flight) shuts down cleanly; after the restart the leases are
    still there (the release could not be proposed) and end at their
    visibility timeout, like those of a node that died."""
    c = Client(momd, mint("alice"))
    queue_with(c, "q", 6)
    streams = [open_stream(momd, "/v1/queues/q/stream?prefetch=2") for _ in range(2)]
    for s in streams:
        s.events(2)
    momd.stop()
    for s in streams:
        s.close()
    momd.start()
    c = Client(momd, mint("alice"))
    q = c.get_queue("q")
    assert (q["in_flight"], q["depth"]) == (4, 2)
