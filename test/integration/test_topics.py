# Topics (retained log, offsets, retention, reads and long polls) and
# durable subscriptions (cursor, stateless reads, ack, permissions).
# SPDX-License-Identifier: MIT

import base64
import threading
import time

import pytest

from conftest import RFC3339_MS, assert_error, body_bytes, wait_until

TOPIC_DEFAULTS = {"retention_ms": 0, "retention_messages": 0, "retention_bytes": 0,
                  "access": "public"}
TMSG_FIELDS = {"offset", "id", "body", "encoding", "content_type", "published_at", "publisher"}


def check_topic_object(t, name, owner, **settings):
    for k in ("name", "owner", "created_at", "first_offset", "next_offset", "subscriptions"):
        assert k in t, (k, t)
    assert t["name"] == name and t["owner"] == owner
    assert RFC3339_MS.match(t["created_at"]), t["created_at"]
    want = dict(TOPIC_DEFAULTS)
    want.update(settings)
    for k, v in want.items():
        assert t.get(k, "<missing>") == v, (k, t)


def check_sub_object(s, name, topic, owner):
    for k in ("name", "topic", "owner", "created_at", "cursor", "lag"):
        assert k in s, (k, s)
    assert (s["name"], s["topic"], s["owner"]) == (name, topic, owner), s
    assert RFC3339_MS.match(s["created_at"]), s["created_at"]


def offsets(reply):
    return [m["offset"] for m in reply["messages"]]


def bodies(reply):
    return [body_bytes(m) for m in reply["messages"]]


def put_sub(c, t, s, body=None, expect=201):
    r = c.put("/v1/topics/%s/subscriptions/%s" % (t, s), json=body)
    assert r.status_code == expect, (r.status_code, r.text)
    return r.json()


def get_sub(c, t, s):
    r = c.get("/v1/topics/%s/subscriptions/%s" % (t, s))
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def read_sub(c, t, s, expect=200, timeout=None, **params):
    r = c.get("/v1/topics/%s/subscriptions/%s/messages" % (t, s), params=params,
              timeout=timeout)
    assert r.status_code == expect, (r.status_code, r.text)
    return r.json()


def ack_sub(c, t, s, offset):
    return c.post("/v1/topics/%s/subscriptions/%s/ack" % (t, s), json={"offset": offset})


def tbatch(c, t, items, headers=None):
    return c.post("/v1/topics/%s/messages/batch" % t, json={"messages": items}, headers=headers)


# ---- resource ---------------------------------------------------------------------

def test_create_topic_returns_resource(alice):
    t = alice.create_topic("news")
    check_topic_object(t, "news", "alice")
    assert t["first_offset"] == 0 and t["next_offset"] == 0
    assert alice.get_topic("news") == t


def test_create_same_other_empty(alice):
    s = {"retention_ms": 60000, "retention_messages": 100, "retention_bytes": 1 << 20,
         "access": "public"}
    check_topic_object(alice.create_topic("t", **s), "t", "alice", **s)
    check_topic_object(alice.create_topic("t", expect=200, **s), "t", "alice", **s)
    alice.create_topic("t", expect=200, retention_messages=100)
    assert_error(alice.put("/v1/topics/t", json={"retention_messages": 5}), 409, "conflict")
    r = alice.put("/v1/topics/t")
    assert r.status_code == 200, r.text
    check_topic_object(r.json(), "t", "alice", **s)
    r = alice.put("/v1/topics/t", json={})
    assert r.status_code == 200, r.text
    check_topic_object(alice.get_topic("t"), "t", "alice", **s)


@pytest.mark.parametrize("name", ["a*b", "x" * 129, "a%20b", "a,b"])
def test_bad_topic_name_is_400(alice, name):
    assert_error(alice.put("/v1/topics/" + name), 400, "invalid_name")


@pytest.mark.parametrize("body", [
    {"retention_ms": "1"}, {"retention_messages": -1}, {"retention_bytes": 1.5},
    {"access": "hidden"}, {"max_length": 5}, {"whatever": True},
])
def test_bad_topic_settings_are_400(alice, body):
    assert_error(alice.put("/v1/topics/t", json=body), 400, "bad_request")
    assert_error(alice.get("/v1/topics/t"), 404, "topic_not_found")


def test_list_get_delete(alice, bob, admin):
    assert alice.get("/v1/topics").json() == {"topics": []}
    alice.create_topic("t1")
    bob.create_topic("t2", retention_messages=3)
    ts = {t["name"]: t for t in alice.get("/v1/topics").json()["topics"]}
    assert set(ts) == {"t1", "t2"}
    check_topic_object(ts["t2"], "t2", "bob", retention_messages=3)
    assert_error(alice.get("/v1/topics/nope"), 404, "topic_not_found")
    assert_error(alice.delete("/v1/topics/t2"), 403, "forbidden")
    r = bob.delete("/v1/topics/t2")
    assert r.status_code == 204 and r.content == b""
    assert_error(bob.get("/v1/topics/t2"), 404, "topic_not_found")
    assert_error(bob.delete("/v1/topics/t2"), 404, "topic_not_found")
    assert admin.delete("/v1/topics/t1").status_code == 204
    assert alice.get("/v1/topics").json() == {"topics": []}


def test_unknown_topic_is_404_everywhere(alice):
    assert_error(alice.post("/v1/topics/nope/messages", data=b"x"), 404, "topic_not_found")
    assert_error(tbatch(alice, "nope", [{"body": "x"}]), 404, "topic_not_found")
    assert_error(alice.get("/v1/topics/nope/messages"), 404, "topic_not_found")
    assert_error(alice.put("/v1/topics/nope/subscriptions/s"), 404, "topic_not_found")
    assert_error(alice.get("/v1/topics/nope/subscriptions"), 404, "topic_not_found")
    assert_error(alice.get("/v1/topics/nope/subscriptions/s/messages"), 404, "topic_not_found")


def test_private_topic(alice, bob, admin):
    alice.create_topic("priv", access="private")
    assert_error(bob.post("/v1/topics/priv/messages", data=b"x"), 403, "forbidden")
    assert_error(bob.get("/v1/topics/priv/messages"), 403, "forbidden")
    assert_error(bob.put("/v1/topics/priv/subscriptions/s"), 403, "forbidden")
    alice.publish_topic("priv", b"a")
    admin.publish_topic("priv", b"b")
    assert bodies(alice.read_topic("priv")) == [b"a", b"b"]


# ---- publish and read -------------------------------------------------------------------

def test_publish_offsets_and_read(alice, bob):
    alice.create_topic("t")
    p0 = alice.publish_topic("t", b"zero", headers={"Content-Type": "text/plain"})
    assert set(p0) >= {"id", "offset"} and p0["offset"] == 0
    assert isinstance(p0["id"], str) and p0["id"]
    p1 = bob.publish_topic("t", b"\xff\x00")
    p2 = alice.publish_topic("t", "\u00fcber".encode())
    assert (p1["offset"], p2["offset"]) == (1, 2)
    r = alice.read_topic("t")  # from defaults to earliest
    assert offsets(r) == [0, 1, 2] and r["next_offset"] == 3
    m0, m1, m2 = r["messages"]
    assert set(m0) >= TMSG_FIELDS
    assert m0["id"] == p0["id"] and m0["body"] == "zero" and m0["encoding"] == "utf-8"
    assert m0["content_type"] == "text/plain" and m0["publisher"] == "alice"
    assert RFC3339_MS.match(m0["published_at"])
    assert m1["encoding"] == "base64" and base64.b64decode(m1["body"]) == b"\xff\x00"
    assert m1["content_type"] == "application/octet-stream" and m1["publisher"] == "bob"
    assert m2["body"] == "\u00fcber"
    # reading changes nothing: anyone, any number of times
    assert offsets(bob.read_topic("t", **{"from": "earliest"})) == [0, 1, 2]
    assert offsets(alice.read_topic("t", **{"from": "1"})) == [1, 2]
    r = alice.read_topic("t", **{"from": "0", "max": "2"})
    assert offsets(r) == [0, 1] and r["next_offset"] == 2
    r = alice.read_topic("t", **{"from": "latest"})
    assert r["messages"] == [] and r["next_offset"] == 3
    r = alice.read_topic("t", **{"from": "3"})
    assert r["messages"] == [] and r["next_offset"] == 3
    t = alice.get_topic("t")
    assert (t["first_offset"], t["next_offset"]) == (0, 3)


def test_read_offset_beyond_next_is_400(alice):
    alice.create_topic("t")
    alice.publish_topic("t", b"x")
    assert_error(alice.get("/v1/topics/t/messages", params={"from": "2"}), 400,
                 "offset_out_of_range")
    assert_error(alice.get("/v1/topics/t/messages", params={"from": "99999999"}), 400,
                 "offset_out_of_range")


@pytest.mark.parametrize("params", [{"from": "-1"}, {"from": "first"}, {"from": "1.5"},
                                    {"max": "-1"}, {"max": "x"}, {"wait_ms": "-1"},
                                    {"wait_ms": "1e3"}])
def test_bad_read_params_are_400(alice, params):
    alice.create_topic("t")
    assert_error(alice.get("/v1/topics/t/messages", params=params), 400, "bad_request")


def test_read_max_clamped_to_1000(alice):
    alice.create_topic("t")
    r = tbatch(alice, "t", [{"body": "m%d" % i} for i in range(1000)])
    assert r.status_code == 201, r.text
    alice.publish_topic("t", b"last")
    r = alice.read_topic("t", max="5000")
    assert len(r["messages"]) == 1000 and r["next_offset"] == 1000
    r = alice.read_topic("t", **{"from": str(r["next_offset"]), "max": "5000",
                                 "wait_ms": "99999"})
    assert bodies(r) == [b"last"]


def test_retention_messages_and_offset_raised(alice):
    alice.create_topic("t", retention_messages=3)
    for i in range(5):
        assert alice.publish_topic("t", b"m%d" % i)["offset"] == i
    t = alice.get_topic("t")
    assert (t["first_offset"], t["next_offset"]) == (2, 5)
    r = alice.read_topic("t", **{"from": "0"})
    assert offsets(r) == [2, 3, 4] and bodies(r) == [b"m2", b"m3", b"m4"]
    assert offsets(alice.read_topic("t")) == [2, 3, 4]
    r = alice.read_topic("t", **{"from": "1", "max": "1"})
    assert offsets(r) == [2] and r["next_offset"] == 3


def test_retention_ms(alice):
    alice.create_topic("t", retention_ms=300)
    for i in range(3):
        alice.publish_topic("t", b"m%d" % i)
    wait_until(lambda: alice.get_topic("t")["first_offset"] == 3, timeout=5,
               what="age retention")
    r = alice.read_topic("t")
    assert r["messages"] == [] and r["next_offset"] == 3
    assert alice.publish_topic("t", b"new")["offset"] == 3


def test_retention_bytes(alice):
    alice.create_topic("t", retention_bytes=10)
    for b in (b"aaaaa", b"bbbbb", b"ccccc"):
        alice.publish_topic("t", b)
    t = alice.get_topic("t")
    assert t["first_offset"] >= 1 and t["next_offset"] == 3
    assert bodies(alice.read_topic("t"))[-1] == b"ccccc"


def test_delay_header_on_topic_is_400(alice):
    alice.create_topic("t")
    r = alice.post("/v1/topics/t/messages", data=b"x", headers={"Mom-Delay-Ms": "100"})
    assert_error(r, 400, "bad_request")
    assert alice.get_topic("t")["next_offset"] == 0


def test_topic_idempotency_key(alice):
    alice.create_topic("t")
    r1 = alice.post("/v1/topics/t/messages", data=b"a", headers={"Idempotency-Key": "k"})
    r2 = alice.post("/v1/topics/t/messages", data=b"b", headers={"Idempotency-Key": "k"})
    assert r1.status_code == 201 and r2.status_code == 201
    assert r1.json() == r2.json()
    assert alice.get_topic("t")["next_offset"] == 1


def test_topic_batch(alice):
    alice.create_topic("t")
    alice.publish_topic("t", b"first")
    r = tbatch(alice, "t", [{"body": "a"},
                            {"body": base64.b64encode(b"\x00b").decode(), "encoding": "base64",
                             "content_type": "application/x-b"}])
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["offsets"] == [1, 2] and len(b["ids"]) == 2
    rr = alice.read_topic("t", **{"from": "1"})
    assert [m["id"] for m in rr["messages"]] == b["ids"]
    assert bodies(rr) == [b"a", b"\x00b"]
    assert rr["messages"][1]["content_type"] == "application/x-b"
    assert_error(tbatch(alice, "t", []), 400, "bad_request")
    assert_error(tbatch(alice, "t", [{"body": "x"}] * 1001), 400, "bad_request")
    assert_error(tbatch(alice, "t", [{"body": "x", "delay_ms": 5}]), 400, "bad_request")
    assert alice.get_topic("t")["next_offset"] == 3


def _in_thread(fn):
    out = {}

    def run():
        t0 = time.monotonic()
        try:
            out["result"] = fn()
        except Exception as e:
            out["error"] = e
        out["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_long_poll_read(alice, bob):
    alice.create_topic("t")
    alice.publish_topic("t", b"old")
    t, out = _in_thread(lambda: alice.get("/v1/topics/t/messages",
                                          params={"from": "1", "wait_ms": "5000"}, timeout=15))
    time.sleep(0.5)
    bob.publish_topic("t", b"new")
    t.join(15)
    assert "error" not in out, out
    r = out["result"]
    assert r.status_code == 200, r.text
    assert offsets(r.json()) == [1] and bodies(r.json()) == [b"new"]
    assert r.json()["next_offset"] == 2
    assert out["elapsed"] < 4.0


def test_long_poll_latest(alice, bob):
    alice.create_topic("t")
    alice.publish_topic("t", b"old")
    t, out = _in_thread(lambda: alice.get("/v1/topics/t/messages",
                                          params={"from": "latest", "wait_ms": "5000"},
                                          timeout=15))
    time.sleep(0.5)
    bob.publish_topic("t", b"new")
    t.join(15)
    assert "error" not in out, out
    assert bodies(out["result"].json()) == [b"new"]


def test_long_poll_read_times_out_empty(alice):
    alice.create_topic("t")
    t0 = time.monotonic()
    r = alice.read_topic("t", wait_ms="1000", timeout=15)
    assert r["messages"] == [] and r["next_offset"] == 0
    assert 0.9 <= time.monotonic() - t0 < 5


def test_topic_deleted_during_long_poll_is_404(alice):
    alice.create_topic("t")
    t, out = _in_thread(lambda: alice.get("/v1/topics/t/messages",
                                          params={"wait_ms": "8000"}, timeout=15))
    time.sleep(0.5)
    assert alice.delete("/v1/topics/t").status_code == 204
    t.join(15)
    assert "error" not in out, out
    assert_error(out["result"], 404, "topic_not_found")


def test_recreated_topic_starts_at_zero(alice):
    alice.create_topic("t")
    alice.publish_topic("t", b"a")
    alice.publish_topic("t", b"b")
    assert alice.delete("/v1/topics/t").status_code == 204
    alice.create_topic("t")
    t = alice.get_topic("t")
    assert (t["first_offset"], t["next_offset"]) == (0, 0)
    assert alice.publish_topic("t", b"c")["offset"] == 0
    assert bodies(alice.read_topic("t")) == [b"c"]


# ---- subscriptions -----------------------------------------------------------------------

def test_subscription_start_and_repeat(alice):
    alice.create_topic("t")
    alice.publish_topic("t", b"m0")
    alice.publish_topic("t", b"m1")
    e = put_sub(alice, "t", "early", {"start": "earliest"})
    check_sub_object(e, "early", "t", "alice")
    assert e["cursor"] == 0 and e["lag"] == 2
    latest = put_sub(alice, "t", "late", {"start": "latest"})
    assert latest["cursor"] == 2 and latest["lag"] == 0
    dflt = put_sub(alice, "t", "dflt")
    assert dflt["cursor"] == 2, "start defaults to latest"
    # a repeat PUT is 200 and start applies only at creation
    again = put_sub(alice, "t", "late", {"start": "earliest"}, expect=200)
    assert again["cursor"] == 2
    assert put_sub(alice, "t", "early", None, expect=200)["cursor"] == 0
    assert get_sub(alice, "t", "early") == put_sub(alice, "t", "early", {}, expect=200)
    t = alice.get_topic("t")
    subs = t["subscriptions"]
    if isinstance(subs, list):
        names = sorted(s if isinstance(s, str) else s["name"] for s in subs)
        assert names == ["dflt", "early", "late"], subs
    else:
        assert subs == 3, subs


@pytest.mark.parametrize("body", [{"start": "middle"}, {"start": 0}, {"cursor": 5}])
def test_subscription_bad_body_is_400(alice, body):
    alice.create_topic("t")
    assert_error(alice.put("/v1/topics/t/subscriptions/s", json=body), 400, "bad_request")
    assert_error(alice.get("/v1/topics/t/subscriptions/s"), 404, "subscription_not_found")


def test_subscription_bad_name_is_400(alice):
    alice.create_topic("t")
    assert_error(alice.put("/v1/topics/t/subscriptions/a*b"), 400, "invalid_name")
    assert_error(alice.put("/v1/topics/t/subscriptions/" + "s" * 129), 400, "invalid_name")


def test_subscription_read_ack_cursor(alice):
    alice.create_topic("t")
    put_sub(alice, "t", "s", {"start": "earliest"})
    for i in range(5):
        alice.publish_topic("t", b"m%d" % i)
    r1 = read_sub(alice, "t", "s", max="3")
    assert offsets(r1) == [0, 1, 2] and bodies(r1) == [b"m0", b"m1", b"m2"]
    assert set(r1["messages"][0]) >= TMSG_FIELDS
    # stateless until acked
    assert offsets(read_sub(alice, "t", "s", max="3")) == [0, 1, 2]
    assert get_sub(alice, "t", "s")["cursor"] == 0
    r = ack_sub(alice, "t", "s", 1)
    assert r.status_code == 204 and r.content == b""
    s = get_sub(alice, "t", "s")
    assert s["cursor"] == 2 and s["lag"] == 3
    assert offsets(read_sub(alice, "t", "s")) == [2, 3, 4]
    # ack below the cursor: 204, nothing changes
    assert ack_sub(alice, "t", "s", 0).status_code == 204
    assert get_sub(alice, "t", "s")["cursor"] == 2
    # ack >= next_offset: 400
    assert_error(ack_sub(alice, "t", "s", 5), 400, ("offset_out_of_range", "bad_request"))
    assert_error(ack_sub(alice, "t", "s", 500), 400, ("offset_out_of_range", "bad_request"))
    assert get_sub(alice, "t", "s")["cursor"] == 2
    assert ack_sub(alice, "t", "s", 4).status_code == 204
    s = get_sub(alice, "t", "s")
    assert s["cursor"] == 5 and s["lag"] == 0
    assert read_sub(alice, "t", "s")["messages"] == []


@pytest.mark.parametrize("body", [{}, {"offset": "1"}, {"offset": -1}, {"offset": 1.5},
                                  {"offset": None}])
def test_subscription_ack_bad_body_is_400(alice, body):
    alice.create_topic("t")
    put_sub(alice, "t", "s", {"start": "earliest"})
    alice.publish_topic("t", b"x")
    alice.publish_topic("t", b"y")
    r = alice.post("/v1/topics/t/subscriptions/s/ack", json=body)
    assert_error(r, 400, "bad_request")
    assert get_sub(alice, "t", "s")["cursor"] == 0


def test_subscription_long_poll(alice, bob):
    alice.create_topic("t")
    put_sub(alice, "t", "s")
    t, out = _in_thread(lambda: alice.get("/v1/topics/t/subscriptions/s/messages",
                                          params={"wait_ms": "5000"}, timeout=15))
    time.sleep(0.5)
    bob.publish_topic("t", b"hey")
    t.join(15)
    assert "error" not in out, out
    assert out["result"].status_code == 200, out["result"].text
    assert bodies(out["result"].json()) == [b"hey"]
    assert out["elapsed"] < 4.0


def test_subscription_read_params(alice):
    alice.create_topic("t")
    put_sub(alice, "t", "s")
    for p in ({"max": "-1"}, {"max": "z"}, {"wait_ms": "-3"}):
        assert_error(alice.get("/v1/topics/t/subscriptions/s/messages", params=p), 400,
                     "bad_request")


def test_unknown_subscription_is_404(alice):
    alice.create_topic("t")
    assert_error(alice.get("/v1/topics/t/subscriptions/nope"), 404, "subscription_not_found")
    assert_error(alice.get("/v1/topics/t/subscriptions/nope/messages"), 404,
                 "subscription_not_found")
    assert_error(ack_sub(alice, "t", "nope", 0), 404, "subscription_not_found")
    assert_error(alice.delete("/v1/topics/t/subscriptions/nope"), 404, "subscription_not_found")


def test_retention_moves_slow_cursor(alice):
    alice.create_topic("t", retention_messages=2)
    put_sub(alice, "t", "slow", {"start": "earliest"})
    for i in range(5):
        alice.publish_topic("t", b"m%d" % i)
    s = get_sub(alice, "t", "slow")
    assert s["cursor"] == 3, s
    assert s["lag"] == 2
    assert offsets(read_sub(alice, "t", "slow")) == [3, 4]


def test_subscription_lists(alice, bob):
    alice.create_topic("t1")
    alice.create_topic("t2")
    put_sub(alice, "t1", "a1")
    put_sub(alice, "t2", "a2")
    put_sub(bob, "t1", "b1")
    r = alice.get("/v1/topics/t1/subscriptions")
    assert r.status_code == 200, r.text
    subs = {s["name"]: s for s in r.json()["subscriptions"]}
    assert set(subs) == {"a1", "b1"}
    check_sub_object(subs["b1"], "b1", "t1", "bob")
    r = alice.get("/v1/subscriptions")
    assert r.status_code == 200, r.text
    mine = sorted((s["topic"], s["name"]) for s in r.json()["subscriptions"])
    assert mine == [("t1", "a1"), ("t2", "a2")]
    for s in r.json()["subscriptions"]:
        assert s["owner"] == "alice"
    r = bob.get("/v1/subscriptions")
    assert [(s["topic"], s["name"]) for s in r.json()["subscriptions"]] == [("t1", "b1")]


def test_subscription_delete_permissions(alice, bob, client, admin):
    carol = client("carol")
    alice.create_topic("t")
    put_sub(bob, "t", "bs")
    # anyone who may consume the topic may read and ack
    alice.publish_topic("t", b"x")
    assert offsets(read_sub(carol, "t", "bs")) == [0]
    assert ack_sub(carol, "t", "bs", 0).status_code == 204
    # delete: the subscription owner, the topic owner or an admin
    assert_error(carol.delete("/v1/topics/t/subscriptions/bs"), 403, "forbidden")
    r = alice.delete("/v1/topics/t/subscriptions/bs")
    assert r.status_code == 204 and r.content == b""
    assert_error(bob.get("/v1/topics/t/subscriptions/bs"), 404, "subscription_not_found")
    put_sub(bob, "t", "bs2")
    assert bob.delete("/v1/topics/t/subscriptions/bs2").status_code == 204
    put_sub(bob, "t", "bs3")
    assert admin.delete("/v1/topics/t/subscriptions/bs3").status_code == 204
    assert bob.get("/v1/topics/t/subscriptions").json()["subscriptions"] == []


def test_deleting_topic_deletes_subscriptions(alice):
    alice.create_topic("t")
    put_sub(alice, "t", "s", {"start": "earliest"})
    alice.publish_topic("t", b"x")
    assert ack_sub(alice, "t", "s", 0).status_code == 204
    assert alice.delete("/v1/topics/t").status_code == 204
    assert alice.get("/v1/subscriptions").json()["subscriptions"] == []
    alice.create_topic("t")
    assert_error(alice.get("/v1/topics/t/subscriptions/s"), 404, "subscription_not_found")
    assert alice.get("/v1/topics/t/subscriptions").json()["subscriptions"] == []
    # a new subscription of the same name starts fresh
    s = put_sub(alice, "t", "s", {"start": "earliest"})
    assert s["cursor"] == 0
