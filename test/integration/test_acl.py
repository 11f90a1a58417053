# ACLs (docs/api.md, "Access control"): PUT/GET /v1/{queues|topics}/{name}/acl,
# private resources open to their owner, admins and the users on the ACL's
# publish or consume list, lists that leave out what the caller cannot use,
# the seed's routes over the same checks, bad ACL bodies, and an ACL set on a
# cluster's leader that every follower applies and that survives restarts.
import glob
import os
import threading

import pytest

from conftest import Client, assert_error, body_bytes, mint, wait_until
from sse_client import SSEClient
from test_cluster import Cluster, cluster  # noqa: F401  (the fixture)

KINDS = ("queues", "topics")


@pytest.fixture
def carol(client):
    return client("carol")


@pytest.fixture
def dave(client):
    return client("dave")


def acl_path(kind, name):
    return "/v1/%s/%s/acl" % (kind, name)


def put_acl(c, kind, name, publish=None, consume=None, expect=200):
    body = {}
    if publish is not None:
        body["publish"] = publish
    if consume is not None:
        body["consume"] = consume
    r = c.put(acl_path(kind, name), json=body)
    assert r.status_code == expect, (r.status_code, r.text)
    return r.json()


def create(c, kind, name, **settings):
    r = c.put("/v1/%s/%s" % (kind, name), json=settings or None)
    assert r.status_code == 201, (r.status_code, r.text)


# ---- what each action is, per kind ------------------------------------------

def do_publish(c, kind, name):
    return c.post("/v1/%s/%s/messages" % (kind, name), data=b"from " + c.token[-4:].encode())


def do_consume(c, kind, name):
    if kind == "queues":
        return c.post("/v1/queues/%s/receive" % name)
    return c.get("/v1/topics/%s/messages" % name)


def listed(c, kind, name):
    r = c.get("/v1/" + kind)
    assert r.status_code == 200, r.text
    return name in [x["name"] for x in r.json()[kind]]


# ---- the matrix ---------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_acl_matrix(kind, alice, bob, carol, dave, admin):
    """owner alice, admin root, carol on the publish list, dave on the consume
    list, bob on neither: publish, consume, delete, set ACL, read ACL, list."""
    create(alice, kind, "p", access="private")
    acl = put_acl(alice, kind, "p", publish=["carol"], consume=["dave"])
    assert acl == {"publish": ["carol"], "consume": ["dave"]}

    # publish: owner, admin, the publish list; not the consume list, not others
    for c in (alice, admin, carol):
        assert do_publish(c, kind, "p").status_code == 201, c.token
    for c in (bob, dave):
        assert_error(do_publish(c, kind, "p"), 403, "forbidden")
    # consume: owner, admin, the consume list; not the publish list, not others
    for c in (alice, admin, dave):
        r = do_consume(c, kind, "p")
        assert r.status_code == 200, r.text
    for c in (bob, carol):
        assert_error(do_consume(c, kind, "p"), 403, "forbidden")
    # list and GET: whoever may publish or consume sees it; bob does not
    for c in (alice, admin, carol, dave):
        assert listed(c, kind, "p")
        assert c.get("/v1/%s/p" % kind).status_code == 200
    assert not listed(bob, kind, "p")
    assert_error(bob.get("/v1/%s/p" % kind), 403, "forbidden")
    # the ACL itself: owner and admin only
    for c in (bob, carol, dave):
        assert_error(c.get(acl_path(kind, "p")), 403, "forbidden")
        assert_error(c.put(acl_path(kind, "p"), json={"consume": ["bob"]}), 403, "forbidden")
    assert alice.get(acl_path(kind, "p")).json() == acl
    assert admin.get(acl_path(kind, "p")).json() == acl
    assert put_acl(admin, kind, "p", publish=["carol", "bob"], consume=["dave"]) == {
        "publish": ["bob", "carol"], "consume": ["dave"]}
    assert do_publish(bob, kind, "p").status_code == 201  # bob was just added
    # delete: owner or admin only, whatever the ACL says
    for c in (bob, carol, dave):
        assert_error(c.delete("/v1/%s/p" % kind), 403, "forbidden")
    assert alice.delete("/v1/%s/p" % kind).status_code == 204
    create(alice, kind, "p2", access="private")
    assert admin.delete("/v1/%s/p2" % kind).status_code == 204


@pytest.mark.parametrize("kind", KINDS)
def test_public_resource_ignores_the_lists(kind, alice, bob, carol):
    create(alice, kind, "pub")
    assert alice.get(acl_path(kind, "pub")).json() == {"publish": [], "consume": []}
    acl = put_acl(alice, kind, "pub", publish=["carol"], consume=[])
    assert acl == {"publish": ["carol"], "consume": []}
    assert alice.get(acl_path(kind, "pub")).json() == acl
    # stored and returned, but everyone authenticated may publish and consume
    for c in (bob, carol):
        assert do_publish(c, kind, "pub").status_code == 201
        assert do_consume(c, kind, "pub").status_code == 200
        assert listed(c, kind, "pub")
    assert_error(bob.put(acl_path(kind, "pub"), json={}), 403, "forbidden")


def test_queue_consume_covers_ack_nack_extend(alice, bob, carol):
    create(alice, "queues", "q", access="private")
    put_acl(alice, "queues", "q", consume=["carol"])
    for body in (b"a", b"b", b"c"):
        alice.publish("q", body)
    msgs = carol.receive("q", max=3)
    assert [body_bytes(m) for m in msgs] == [b"a", b"b", b"c"]
    receipts = [m["receipt"] for m in msgs]
    # bob is refused before his receipt is even looked at
    assert_error(bob.delete("/v1/queues/q/messages/" + receipts[0]), 403, "forbidden")
    assert_error(bob.post("/v1/queues/q/messages/%s/nack" % receipts[0]), 403, "forbidden")
    assert_error(bob.post("/v1/queues/q/messages/%s/extend" % receipts[0],
                          json={"visibility_timeout_ms": 1000}), 403, "forbidden")
    assert_error(bob.delete("/v1/queues/q/messages/" + "0" * 80), 403, "forbidden")
    assert_error(bob.post("/v1/queues/q/receive", params={"wait_ms": 50}), 403, "forbidden")
    assert carol.delete("/v1/queues/q/messages/" + receipts[0]).status_code == 204
    assert carol.post("/v1/queues/q/messages/%s/nack" % receipts[1]).status_code == 204
    assert carol.post("/v1/queues/q/messages/%s/extend" % receipts[2],
                      json={"visibility_timeout_ms": 60000}).status_code == 204
    # the consume list does not publish, nor batch-publish
    assert_error(carol.post("/v1/queues/q/messages", data=b"x"), 403, "forbidden")
    assert_error(carol.post("/v1/queues/q/messages/batch",
                            json={"messages": [{"body": "x"}]}), 403, "forbidden")
    # removing carol takes effect at once
    put_acl(alice, "queues", "q", consume=[])
    assert_error(carol.post("/v1/queues/q/receive"), 403, "forbidden")
    assert not listed(carol, "queues", "q")


def test_topic_subscriptions_follow_the_consume_list(alice, bob, carol):
    create(alice, "topics", "t", access="private")
    put_acl(alice, "topics", "t", publish=["bob"], consume=["carol"])
    assert carol.put("/v1/topics/t/subscriptions/cs", json={"start": "earliest"}).status_code == 201
    assert_error(bob.put("/v1/topics/t/subscriptions/bs"), 403, "forbidden")
    bob.publish_topic("t", b"hello")
    r = carol.get("/v1/topics/t/subscriptions/cs/messages")
    assert r.status_code == 200 and [body_bytes(m) for m in r.json()["messages"]] == [b"hello"]
    assert carol.post("/v1/topics/t/subscriptions/cs/ack", json={"offset": 0}).status_code == 204
    assert carol.get("/v1/topics/t/subscriptions/cs").json()["cursor"] == 1
    # a publisher may see the topic and its subscriptions, not read them
    assert bob.get("/v1/topics/t/subscriptions").status_code == 200
    assert_error(bob.get("/v1/topics/t/subscriptions/cs"), 403, "forbidden")
    assert_error(bob.get("/v1/topics/t/subscriptions/cs/messages"), 403, "forbidden")
    assert_error(bob.post("/v1/topics/t/subscriptions/cs/ack", json={"offset": 0}), 403,
                 "forbidden")
    subs = carol.get("/v1/subscriptions").json()["subscriptions"]
    assert [(s["topic"], s["name"]) for s in subs] == [("t", "cs")]
    # off the list: carol's subscription leaves her list and cannot be read,
    # but she may still delete it (its owner)
    put_acl(alice, "topics", "t", publish=["bob"], consume=[])
    assert carol.get("/v1/subscriptions").json()["subscriptions"] == []
    assert_error(carol.get("/v1/topics/t/subscriptions/cs/messages"), 403, "forbidden")
    assert carol.delete("/v1/topics/t/subscriptions/cs").status_code == 204


def open_stream(m, path, token):
    host, port = m.host_port()
    return SSEClient(host, port, path, token=token).connect()


def test_topic_streams_follow_the_consume_list(momd, alice, carol):
    create(alice, "topics", "st", access="private")
    put_acl(alice, "topics", "st", publish=["bob"], consume=["carol"])
    alice.publish_topic("st", b"first")
    # bob may publish, not read: refused before the stream opens
    s = open_stream(momd, "/v1/topics/st/stream?from=earliest", mint("bob"))
    assert s.read_head() == 403 and s.json()["error"]["code"] == "forbidden"
    s.close()
    assert carol.put("/v1/topics/st/subscriptions/cs", json={"start": "earliest"}).status_code \
        == 201
    s = open_stream(momd, "/v1/topics/st/subscriptions/cs/stream", mint("bob"))
    assert s.read_head() == 403
    s.close()
    live = open_stream(momd, "/v1/topics/st/stream?from=earliest", mint("carol"))
    assert live.read_head() == 200
    assert live.next_event()["json"]["body"] == "first"
    # carol taken off the list: her stream ends at once, without another message
    put_acl(alice, "topics", "st", publish=["bob"], consume=[])
    assert live.wait_end(timeout=10)
    live.close()


def test_queue_streams_follow_the_consume_list(momd, alice):
    create(alice, "queues", "sq", access="private")
    put_acl(alice, "queues", "sq", publish=["bob"], consume=["carol"])
    alice.publish("sq", b"one")
    s = open_stream(momd, "/v1/queues/sq/stream?prefetch=1", mint("bob"))
    assert s.read_head() == 403 and s.json()["error"]["code"] == "forbidden"
    s.close()
    live = open_stream(momd, "/v1/queues/sq/stream?prefetch=1", mint("carol"))
    assert live.read_head() == 200
    ev = live.next_event()
    assert ev["json"]["body"] == "one" and ev["json"]["receipt"]
    put_acl(alice, "queues", "sq", publish=["bob"], consume=[])
    assert live.wait_end(timeout=10)
    live.close()


def test_long_polls_end_when_the_acl_takes_the_right(alice):
    create(alice, "queues", "lq", access="private")
    create(alice, "topics", "lt", access="private")
    put_acl(alice, "queues", "lq", consume=["carol"])
    put_acl(alice, "topics", "lt", consume=["carol"])
    got = {}

    def poll(key, fn):
        got[key] = fn()

    cq, ct = (Client(alice.momd, mint("carol")) for _ in range(2))  # a session per thread
    threads = [
        threading.Thread(target=poll, args=("q", lambda: cq.post(
            "/v1/queues/lq/receive", params={"wait_ms": 20000}, timeout=30))),
        threading.Thread(target=poll, args=("t", lambda: ct.get(
            "/v1/topics/lt/messages", params={"from": "latest", "wait_ms": 20000}, timeout=30))),
    ]
    for t in threads:
        t.start()
    wait_until(lambda: alice.momd.open_http_connections() >= 3, what="two long polls waiting")
    put_acl(alice, "queues", "lq", consume=[])
    put_acl(alice, "topics", "lt", consume=[])
    for t in threads:
        t.join(timeout=15)
        assert not t.is_alive(), "a long poll outlived the ACL change"
    assert_error(got["q"], 403, "forbidden")
    assert_error(got["t"], 403, "forbidden")


def test_seek_needs_consume(alice, carol):
    create(alice, "topics", "sk", access="private")
    put_acl(alice, "topics", "sk", consume=["carol"])
    assert carol.put("/v1/topics/sk/subscriptions/cs").status_code == 201
    assert carol.post("/v1/topics/sk/subscriptions/cs/seek", json={"offset": 0}).status_code \
        == 200  # the subscription object
    put_acl(alice, "topics", "sk")
    assert_error(carol.post("/v1/topics/sk/subscriptions/cs/seek", json={"offset": 0}), 403,
                 "forbidden")


def test_lists_leave_out_what_the_caller_cannot_use(alice, bob, admin):
    create(alice, "queues", "a-private", access="private")
    create(alice, "queues", "b-public")
    create(alice, "queues", "c-shared", access="private")
    put_acl(alice, "queues", "c-shared", consume=["bob"])
    create(alice, "topics", "t-private", access="private")
    create(alice, "topics", "t-public")
    names = lambda c, k: [x["name"] for x in c.get("/v1/" + k).json()[k]]  # noqa: E731
    assert names(bob, "queues") == ["b-public", "c-shared"]
    assert names(alice, "queues") == ["a-private", "b-public", "c-shared"]
    assert names(admin, "queues") == ["a-private", "b-public", "c-shared"]
    assert names(bob, "topics") == ["t-public"]
    assert names(admin, "topics") == ["t-private", "t-public"]


@pytest.mark.parametrize("kind", KINDS)
def test_acl_bad_input(kind, alice, bob):
    create(alice, kind, "x", access="private")
    p = acl_path(kind, "x")
    assert_error(alice.put(p, data=b"{", headers={"Content-Type": "application/json"}), 400,
                 "invalid_json")
    assert_error(alice.put(p), 400, "bad_request")  # a body is required
    assert_error(alice.put(p, json=[]), 400, "bad_request")
    assert_error(alice.put(p, json={"publish": "carol"}), 400, "bad_request")
    assert_error(alice.put(p, json={"publish": [1]}), 400, "bad_request")
    assert_error(alice.put(p, json={"consume": [None]}), 400, "bad_request")
    assert_error(alice.put(p, json={"publish": ["not a name"]}), 400, "invalid_name")
    assert_error(alice.put(p, json={"publish": ["x" * 129]}), 400, "invalid_name")
    assert_error(alice.put(p, json={"publish": [""]}), 400, "invalid_name")
    assert_error(alice.put(p, json={"readers": []}), 400, "bad_request")
    assert_error(alice.put(p, data=b'{"publish":[],"publish":[]}'), 400, "bad_request")
    assert_error(alice.put(p, json={"publish": ["u%d" % i for i in range(1001)]}), 400,
                 "bad_request")
    # bad input is 400 before 403: bob's bad body is a 400, his good one a 403
    assert_error(bob.put(p, json={"publish": [1]}), 400, "bad_request")
    assert_error(bob.put(p, json={}), 403, "forbidden")
    # unknown resources
    missing = "queue_not_found" if kind == "queues" else "topic_not_found"
    assert_error(alice.put(acl_path(kind, "nope"), json={}), 404, missing)
    assert_error(alice.get(acl_path(kind, "nope")), 404, missing)
    assert_error(alice.get(acl_path(kind, "bad name!")), 400, "invalid_name")
    assert_error(alice.post(p), 405, "method_not_allowed")
    # nothing above changed the ACL
    assert alice.get(p).json() == {"publish": [], "consume": []}


@pytest.mark.parametrize("kind", KINDS)
def test_acl_limits_sorting_and_lifetime(kind, alice):
    create(alice, kind, "big", access="private")
    many = ["u%04d" % i for i in range(1000)][::-1]
    acl = put_acl(alice, kind, "big", publish=many, consume=["b", "a", "b", "a"])
    assert acl["publish"] == sorted(many) and acl["consume"] == ["a", "b"]
    assert put_acl(alice, kind, "big", publish=["x" * 128]) == {"publish": ["x" * 128],
                                                                "consume": []}
    # a deleted resource's ACL goes with it
    assert alice.delete("/v1/%s/big" % kind).status_code == 204
    create(alice, kind, "big", access="private")
    assert alice.get(acl_path(kind, "big")).json() == {"publish": [], "consume": []}


def test_seed_routes_respect_private_resources(client, alice):
    """The prototype's /api and /colas, /topicos routes share the checks:
    lists leave private resources out, reads and takes are refused."""
    bob = client("bob")
    carol = client("carol")
    create(alice, "queues", "sq", access="private")
    create(alice, "topics", "st", access="private")
    put_acl(alice, "queues", "sq", publish=["carol"], consume=["carol"])
    put_acl(alice, "topics", "st", publish=["carol"], consume=["carol"])
    alice.publish("sq", b"secret")
    alice.publish_topic("st", b"news")

    assert "sq" not in bob.get("/api/colas").json()["colas"]
    assert "st" not in bob.get("/api/topicos").json()["topicos"]
    assert "sq" not in bob.get("/colas").json()["colas"]
    assert "st" not in bob.get("/topicos").json()["topicos"]
    assert "sq" in carol.get("/api/colas").json()["colas"]
    assert "st" in carol.get("/topicos").json()["topicos"]

    for path in ("/api/colas/sq/mensajes", "/colas/sq/mensajes", "/api/topicos/st/mensajes",
                 "/topicos/st/mensajes"):
        r = bob.get(path)
        assert r.status_code == 403, (path, r.status_code, r.text)
    r = bob.post("/api/colas/sq/mensajes", json={"mensaje": "x"})
    assert r.status_code == 403, r.text
    r = bob.post("/topicos/st/publicar", json={"mensaje": "x"})
    assert r.status_code == 403, r.text
    r = bob.post("/api/topicos/st/suscribir")
    assert r.status_code == 403, r.text
    # carol, on both lists, takes and reads through the same routes
    r = carol.get("/colas/sq/mensajes")
    assert r.status_code == 200 and r.json()["mensaje"] == "secret", r.text
    r = carol.get("/api/topicos/st/mensajes")
    assert r.status_code == 200, r.text
    assert [m["contenido"] for m in r.json()["mensajes"]] == ["news"]


def test_acl_survives_restart_on_one_node(momd, alice, bob, carol):
    create(alice, "queues", "kept", access="private")
    put_acl(alice, "queues", "kept", consume=["carol"])
    create(alice, "topics", "tkept", access="private")
    put_acl(alice, "topics", "tkept", publish=["bob", "carol"])
    momd.restart()
    assert alice.get(acl_path("queues", "kept")).json() == {"publish": [], "consume": ["carol"]}
    assert alice.get(acl_path("topics", "tkept")).json() == {"publish": ["bob", "carol"],
                                                             "consume": []}
    assert carol.post("/v1/queues/kept/receive").status_code == 200
    assert_error(bob.post("/v1/queues/kept/receive"), 403, "forbidden")
    assert bob.post("/v1/topics/tkept/messages", data=b"x").status_code == 201


def test_acl_in_a_snapshot_survives_restart(momd_factory):
    """With a tiny snapshot threshold the ACL is read back from a snapshot,
    not only from the log."""
    m = momd_factory(args=["--snapshot-entries", "5"])
    alice = Client(m, mint("alice"))
    bob = Client(m, mint("bob"))
    create(alice, "queues", "snapq", access="private")
    put_acl(alice, "queues", "snapq", publish=["bob"], consume=["bob"])
    for i in range(20):
        alice.publish("snapq", b"m%d" % i)
    wait_until(lambda: glob.glob(os.path.join(str(m.data_dir), "**", "snapshot-*.snap"),
                                 recursive=True), what="a snapshot file")
    m.restart()
    assert alice.get(acl_path("queues", "snapq")).json() == {"publish": ["bob"],
                                                             "consume": ["bob"]}
    assert len(bob.receive("snapq", max=20)) == 20


# ---- a three-node cluster ------------------------------------------------------

def test_acl_replicated_to_followers_and_kept_across_restart(cluster):  # noqa: F811
    lead = cluster.leader()
    fol = [i for i in range(3) if i != lead]
    owner = cluster.client(lead, "alice")
    create(owner, "queues", "rq", access="private")
    create(owner, "topics", "rt", access="private")
    # set through a follower (forwarded to the leader) and on the leader
    put_acl(cluster.client(fol[0], "alice"), "queues", "rq", consume=["carol"])
    put_acl(owner, "topics", "rt", publish=["carol"])
    owner.publish("rq", b"for carol")
    for i in range(3):
        a = cluster.client(i, "alice")
        assert a.get(acl_path("queues", "rq")).json() == {"publish": [], "consume": ["carol"]}
        assert a.get(acl_path("topics", "rt")).json() == {"publish": ["carol"], "consume": []}
        bob = cluster.client(i, "bob")
        assert_error(bob.get("/v1/queues/rq"), 403, "forbidden")
        assert "rq" not in [q["name"] for q in bob.get("/v1/queues").json()["queues"]]
        carol = cluster.client(i, "carol")
        assert "rq" in [q["name"] for q in carol.get("/v1/queues").json()["queues"]]
        # not on rq's publish list, on rt's
        assert_error(carol.post("/v1/queues/rq/messages", data=b"x"), 403, "forbidden")
        assert carol.post("/v1/topics/rt/messages", data=b"x").status_code == 201
    # a non-owner's PUT through a follower is refused by the leader's apply
    assert_error(cluster.client(fol[1], "bob").put(acl_path("queues", "rq"), json={}), 403,
                 "forbidden")
    got = cluster.client(fol[1], "carol").receive("rq")
    assert [body_bytes(m) for m in got] == [b"for carol"]

    for m in cluster.nodes:
        m.stop()
    for m in cluster.nodes:
        m.start()
    lead = cluster.leader()
    for i in range(3):
        a = cluster.client(i, "alice")
        assert wait_until(lambda: a.get(acl_path("queues", "rq")).json()
                          == {"publish": [], "consume": ["carol"]}, what="the ACL after restart")
        assert_error(cluster.client(i, "bob").post("/v1/topics/rt/messages", data=b"x"), 403,
                     "forbidden")
