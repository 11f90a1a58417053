# Replay from a time: topic reads with from=time:<RFC 3339> (zones,
# fractions, a '+' left unencoded in the query, before/after everything,
# after retention, long poll), subscriptions that start at a time, and seek
# by offset and by time (range, permission, not found, bad bodies), on one
# node and through the followers of a three-node cluster.
# SPDX-License-Identifier: MIT

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import assert_error, mint
from sse_client import SSEClient
from test_cluster import cluster, wait_for  # noqa: F401  (the fixture)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def ms_of(stamp):
    """published_at ("2026-12-07T05:13:44.123Z") -> ms since the epoch."""
    dt = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return (dt - EPOCH) // timedelta(milliseconds=1)


def rfc3339(ms, offset_minutes=0, frac=3):
    """ms since the epoch as RFC 3339 in the zone +offset_minutes."""
    tz = timezone(timedelta(minutes=offset_minutes))
    dt = EPOCH + timedelta(milliseconds=ms)
    text = dt.astimezone(tz).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + ("%03d" % (ms % 1000) + "0" * 9)[:frac]
    if offset_minutes == 0:
        return text + "Z"
    sign = "+" if offset_minutes > 0 else "-"
    return text + "%s%02d:%02d" % (sign, abs(offset_minutes) // 60, abs(offset_minutes) % 60)


def publish_spread(c, topic, n):
    """n messages a few ms apart; returns [(offset, published_at ms)]."""
    for i in range(n):
        assert c.post("/v1/topics/%s/messages" % topic, data=b"m%d" % i).status_code == 201
        time.sleep(0.004)
    r = c.get("/v1/topics/%s/messages" % topic, params={"from": "earliest", "max": 1000})
    assert r.status_code == 200, r.text
    return [(m["offset"], ms_of(m["published_at"])) for m in r.json()["messages"]]


def first_at(stamps, t, next_offset):
    """The offset a read from time t must start at (stamps never decrease)."""
    return next((o for o, ms in stamps if ms >= t), next_offset)


def read_from(c, topic, value, **params):
    params = dict(params, **{"from": value})
    r = c.get("/v1/topics/%s/messages" % topic, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_read_from_time(alice):
    alice.create_topic("t")
    stamps = publish_spread(alice, "t", 6)
    assert [o for o, _ in stamps] == list(range(6))
    assert all(a[1] <= b[1] for a, b in zip(stamps, stamps[1:])), stamps
    probes = {stamps[0][1] - 1000, stamps[0][1], stamps[2][1], stamps[2][1] + 1,
              stamps[5][1], stamps[5][1] + 1}
    for t in sorted(probes):
        want = first_at(stamps, t, 6)
        got = read_from(alice, "t", "time:" + rfc3339(t))
        assert [m["offset"] for m in got["messages"]] == list(range(want, 6)), t
        assert got["next_offset"] == 6
        # the same instant in other zones and with finer fractions
        for value in (rfc3339(t, 90), rfc3339(t, -330), rfc3339(t, frac=6)):
            assert read_from(alice, "t", "time:" + value)["messages"][:1] == \
                got["messages"][:1], value
    # a fraction finer than a millisecond rounds up to the next stamp
    t = stamps[3][1]
    finer = rfc3339(t - 1, frac=0)[:-1] + ".%03d1Z" % ((t - 1) % 1000)  # (t - 1) ms + 100 us
    got = read_from(alice, "t", "time:" + finer)
    assert got["messages"][0]["offset"] == first_at(stamps, t, 6)
    # max still applies; next_offset says where to go on
    got = read_from(alice, "t", "time:" + rfc3339(stamps[1][1]), max=2)
    start = first_at(stamps, stamps[1][1], 6)
    assert [m["offset"] for m in got["messages"]] == [start, start + 1]
    assert got["next_offset"] == start + 2
    # before 1970 is before everything
    assert read_from(alice, "t", "time:1969-07-20T20:17:40Z")["messages"][0]["offset"] == 0


def test_read_from_time_with_unencoded_plus(alice):
    alice.create_topic("t")
    stamps = publish_spread(alice, "t", 3)
    t = stamps[1][1]
    value = rfc3339(t, 60)
    assert "+01:00" in value
    # a raw '+' in a query string reads as a space; mom takes it back as '+'
    r = alice.get("/v1/topics/t/messages?from=time:" + value)
    assert r.status_code == 200, r.text
    assert r.json()["messages"][0]["offset"] == first_at(stamps, t, 3)
    r = alice.get("/v1/topics/t/messages?from=time:" + value.replace("+", "%2B"))
    assert r.json()["messages"][0]["offset"] == first_at(stamps, t, 3)


def test_read_from_time_after_retention(alice):
    alice.create_topic("r", retention_messages=3)
    stamps = publish_spread(alice, "r", 7)  # only offsets 4..6 remain
    assert [o for o, _ in stamps] == [4, 5, 6]
    got = read_from(alice, "r", "time:2000-01-01T00:00:00Z")
    assert [m["offset"] for m in got["messages"]] == [4, 5, 6]
    got = read_from(alice, "r", "time:" + rfc3339(stamps[-1][1] + 1))
    assert got["messages"] == [] and got["next_offset"] == 7


def test_read_from_time_long_poll(alice):
    alice.create_topic("lp")
    stamps = publish_spread(alice, "lp", 2)
    after = stamps[-1][1] + 1
    done = {}

    def reader():
        done["r"] = alice.get("/v1/topics/lp/messages",
                              params={"from": "time:" + rfc3339(after), "wait_ms": 20000})
    th = threading.Thread(target=reader)
    th.start()
    time.sleep(0.2)
    # wait until the stamp is past `after`, then publish: the poll returns it
    while int(time.time() * 1000) <= after:
        time.sleep(0.002)
    alice.publish_topic("lp", b"late")
    th.join(25)
    assert not th.is_alive()
    r = done["r"]
    assert r.status_code == 200, r.text
    assert [m["offset"] for m in r.json()["messages"]] == [2]


@pytest.mark.parametrize("value,fragment", [
    ("time:", "time must be"),
    ("time:yesterday", "time must be"),
    ("time:2026-02-30T00:00:00Z", "no such date"),
    ("time:2026-01-01T25:00:00Z", "no such time of day"),
    ("time:2026-01-01T00:00:00", "needs a zone"),
    ("time:2026-01-01T00:00:00+0100", "offset"),
    ("time:2026-01-01T00:00:00Zjunk", "extra characters"),
    ("TIME:2026-01-01T00:00:00Z", "from must be"),
    ("-1", "from must be"),
    ("1.5", "from must be"),
    ("18446744073709551616", "too large"),
    ("earliest\x00x", "from must be"),  # %00 is not cut off: the whole value is judged
    ("time:2026-01-01T00:00:00Z\x00", "extra characters"),
    ("time:2026-01-01T00:00:00." + "0" * 200 + "Z", "longer than"),
])
def test_read_from_bad_values_are_400(alice, value, fragment):
    alice.create_topic("t")
    r = alice.get("/v1/topics/t/messages", params={"from": value})
    err = assert_error(r, 400, "bad_request")
    assert fragment in err["message"], err
    # 400 comes before the unknown topic's 404
    assert_error(alice.get("/v1/topics/nope/messages", params={"from": value}), 400)


def test_read_from_time_unknown_topic_is_404(alice):
    r = alice.get("/v1/topics/nope/messages", params={"from": "time:2026-01-01T00:00:00Z"})
    assert_error(r, 404, "topic_not_found")


def test_subscription_start_time(alice, bob):
    alice.create_topic("t")
    stamps = publish_spread(alice, "t", 5)
    t = stamps[2][1]
    r = bob.put("/v1/topics/t/subscriptions/s", json={"start": "time:" + rfc3339(t, 120)})
    assert r.status_code == 201, r.text
    want = first_at(stamps, t, 5)
    assert r.json()["cursor"] == want and r.json()["lag"] == 5 - want
    r = bob.get("/v1/topics/t/subscriptions/s/messages")
    assert [m["offset"] for m in r.json()["messages"]] == list(range(want, 5))
    # start applies only at creation
    r = bob.put("/v1/topics/t/subscriptions/s", json={"start": "time:2000-01-01T00:00:00Z"})
    assert r.status_code == 200 and r.json()["cursor"] == want
    # a time after the last message: only what comes next
    r = bob.put("/v1/topics/t/subscriptions/later",
                json={"start": "time:" + rfc3339(stamps[-1][1] + 1)})
    assert r.status_code == 201 and r.json()["cursor"] == 5
    for body in ({"start": "time:2026-13-01T00:00:00Z"}, {"start": "time:"},
                 {"start": "3"}, {"start": 3}, {"start": "time:2026-01-01T00:00:00 01:00"}):
        err = assert_error(bob.put("/v1/topics/t/subscriptions/bad", json=body), 400,
                           "bad_request")
        assert err["message"], body
    assert_error(bob.get("/v1/topics/t/subscriptions/bad"), 404, "subscription_not_found")


def seek(c, topic, sub, body, expect=200):
    r = c.post("/v1/topics/%s/subscriptions/%s/seek" % (topic, sub), json=body)
    assert r.status_code == expect, (r.status_code, r.text)
    return r


def test_seek_by_offset_and_time(alice, bob, admin):
    alice.create_topic("t", retention_messages=5)
    stamps = publish_spread(alice, "t", 8)  # retained 3..7
    assert bob.put("/v1/topics/t/subscriptions/s", json={"start": "latest"}).status_code == 201
    # back to offset 4: the answer is the subscription with its new cursor
    s = seek(bob, "t", "s", {"offset": 4}).json()
    assert (s["name"], s["topic"], s["owner"], s["cursor"], s["lag"]) == ("s", "t", "bob", 4, 4)
    r = bob.get("/v1/topics/t/subscriptions/s/messages")
    assert [m["offset"] for m in r.json()["messages"]] == [4, 5, 6, 7]
    # below the first retained offset: raised to it; next_offset: nothing left
    assert seek(bob, "t", "s", {"offset": 0}).json()["cursor"] == 3
    assert seek(bob, "t", "s", {"offset": 8}).json()["cursor"] == 8
    err = assert_error(seek(bob, "t", "s", {"offset": 9}, 400), 400, "offset_out_of_range")
    assert "next_offset 8" in err["message"]
    assert bob.get("/v1/topics/t/subscriptions/s").json()["cursor"] == 8
    # by time, backwards and forwards
    t = stamps[2][1]
    s = seek(bob, "t", "s", {"time": rfc3339(t, -60)}).json()
    assert s["cursor"] == first_at(stamps, t, 8)
    assert seek(bob, "t", "s", {"time": "1999-12-31T23:59:59Z"}).json()["cursor"] == 3
    s = seek(bob, "t", "s", {"time": rfc3339(stamps[-1][1] + 1)}).json()
    assert s["cursor"] == 8 and s["lag"] == 0
    # the cursor is acked from there as usual
    seek(bob, "t", "s", {"offset": 5})
    assert bob.post("/v1/topics/t/subscriptions/s/ack", json={"offset": 5}).status_code == 204
    assert bob.get("/v1/topics/t/subscriptions/s").json()["cursor"] == 6
    # owner of the subscription or admin: not the topic's owner, not others
    assert_error(seek(alice, "t", "s", {"offset": 3}, 403), 403, "forbidden")
    assert seek(admin, "t", "s", {"offset": 3}).json()["cursor"] == 3
    # unknown topic, unknown subscription
    assert_error(seek(bob, "nope", "s", {"offset": 0}, 404), 404, "topic_not_found")
    assert_error(seek(bob, "t", "nope", {"offset": 0}, 404), 404, "subscription_not_found")


def test_seek_wakes_a_waiting_subscription_read(alice):
    alice.create_topic("w")
    publish_spread(alice, "w", 2)
    assert alice.put("/v1/topics/w/subscriptions/s", json={"start": "latest"}).status_code == 201
    done = {}

    def reader():
        done["r"] = alice.get("/v1/topics/w/subscriptions/s/messages",
                              params={"wait_ms": 20000})
    th = threading.Thread(target=reader)
    th.start()
    time.sleep(0.2)
    seek(alice, "w", "s", {"offset": 0})
    th.join(25)
    assert not th.is_alive()
    assert [m["offset"] for m in done["r"].json()["messages"]] == [0, 1]


@pytest.mark.parametrize("body,fragment", [
    ({}, "exactly one"),
    ({"offset": 1, "time": "2026-01-01T00:00:00Z"}, "exactly one"),
    ({"offset": -1}, "non-negative"),
    ({"offset": 1.5}, "non-negative"),
    ({"offset": "1"}, "integer"),
    ({"time": 1}, "RFC 3339"),
    ({"time": "2026-01-01"}, "time must be"),
    ({"time": "2026-02-29T00:00:00Z"}, "no such date"),
    ({"whence": "start"}, "whence"),
])
def test_seek_bad_bodies_are_400(alice, body, fragment):
    alice.create_topic("t")
    assert alice.put("/v1/topics/t/subscriptions/s").status_code == 201
    err = assert_error(seek(alice, "t", "s", body, 400), 400, "bad_request")
    assert fragment in err["message"], err
    # 400 comes before the unknown resource's 404
    assert_error(seek(alice, "nope", "s", body, 400), 400)


def test_seek_not_json_and_wrong_method(alice):
    alice.create_topic("t")
    assert alice.put("/v1/topics/t/subscriptions/s").status_code == 201
    r = alice.post("/v1/topics/t/subscriptions/s/seek", data=b"{offset: 1}")
    assert_error(r, 400, "invalid_json")
    r = alice.post("/v1/topics/t/subscriptions/s/seek")
    assert_error(r, 400, "bad_request")
    r = alice.get("/v1/topics/t/subscriptions/s/seek")
    assert_error(r, 405, "method_not_allowed")
    assert r.headers.get("Allow") == "POST"


def open_stream(m, path, headers=None):
    host, port = m.host_port()
    s = SSEClient(host, port, path, token=mint("alice"), headers=headers).connect()
    status = s.read_head()
    return s, status


def test_topic_stream_from_time(momd, alice):
    alice.create_topic("t")
    stamps = publish_spread(alice, "t", 5)
    t = stamps[2][1]
    want = first_at(stamps, t, 5)
    # a raw '+' offset, as a browser's EventSource URL may carry it
    s, status = open_stream(momd, "/v1/topics/t/stream?from=time:" + rfc3339(t, 60))
    assert status == 200, s.body_text
    assert [int(e["id"]) for e in s.events(5 - want)] == list(range(want, 5))
    alice.publish_topic("t", b"live")
    assert s.next_event()["id"] == "5"
    s.close()
    # after the last message: only what comes next
    last = read_from(alice, "t", "earliest")["messages"][-1]
    assert last["offset"] == 5
    s, status = open_stream(momd, "/v1/topics/t/stream?from=time:" +
                            rfc3339(ms_of(last["published_at"]) + 1, 60).replace("+", "%2B"))
    assert status == 200
    alice.publish_topic("t", b"next")
    assert s.next_event()["id"] == "6"
    s.close()
    # Last-Event-ID still wins over from=time:
    s, status = open_stream(momd, "/v1/topics/t/stream?from=time:2000-01-01T00:00:00Z",
                            headers={"Last-Event-ID": "4"})
    assert status == 200
    assert s.next_event()["id"] == "5"
    s.close()
    # a bad time is 400 before the stream opens
    s, status = open_stream(momd, "/v1/topics/t/stream?from=time:2026-02-30T00:00:00Z")
    assert status == 400 and b"no such date" in s.body_text, s.body_text
    s.close()


def test_replay_through_followers(cluster):
    li = cluster.leader()
    lc = cluster.client(li)
    f1, f2 = [cluster.client(i, sub="bob") for i in range(3) if i != li]
    lc.create_topic("t")
    stamps = publish_spread(lc, "t", 6)
    t = stamps[3][1]
    want = first_at(stamps, t, 6)
    path = "/v1/topics/t/messages?from=time:" + rfc3339(t).replace("+", "%2B")
    leader_answer = lc.get(path)
    assert leader_answer.status_code == 200
    assert leader_answer.json()["messages"][0]["offset"] == want
    # a follower answers from its own applied state: the same stamps, the same search
    for fc in (f1, f2):
        wait_for(lambda: fc.get(path).text == leader_answer.text,
                 what="follower read from a time equals the leader's")
    # a topic stream on a follower starts at the same offset
    fi = [i for i in range(3) if i != li][0]
    st, status = open_stream(cluster.nodes[fi], "/v1/topics/t/stream?from=time:" + rfc3339(t))
    assert status == 200, st.body_text
    assert [int(e["id"]) for e in st.events(6 - want)] == list(range(want, 6))
    st.close()
    # a subscription created through a follower starts at the time
    r = f1.put("/v1/topics/t/subscriptions/s", json={"start": "time:" + rfc3339(t)})
    assert r.status_code == 201, r.text
    assert r.json()["cursor"] == want
    # seek through the other follower; every node then shows the new cursor
    s = seek(f2, "t", "s", {"time": rfc3339(stamps[1][1])}).json()
    assert s["cursor"] == first_at(stamps, stamps[1][1], 6)
    s = seek(f2, "t", "s", {"offset": 5}).json()
    assert s["cursor"] == 5
    for i in range(3):
        c = cluster.client(i, sub="bob")
        wait_for(lambda: c.get("/v1/topics/t/subscriptions/s").json()["cursor"] == 5,
                 what="cursor replicated to node %d" % i)
    assert_error(seek(f1, "t", "s", {"offset": 7}, 400), 400, "offset_out_of_range")
    assert_error(seek(cluster.client(li, sub="carol"), "t", "s", {"offset": 0}, 403), 403,
                 "forbidden")
