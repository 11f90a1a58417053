# Peer channel interop with Debian's python3-grpcio, both directions:
# a stock gRPC client calls a real momd (Ping, unknown method, missing and bad
# tokens, 1 MiB and over-limit messages, 300 concurrent calls on one channel,
# garbage protobuf), and momd calls a stock gRPC server standing in for a
# peer (round trip with a verified token, deadline exceeded, server gone and
# back). Python stubs are generated at test time with protoc --python_out.
# SPDX-License-Identifier: MIT

import importlib
import os
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc
import jwt
import pytest

from conftest import REPO, Client, free_port, mint, wait_until

CLUSTER_SECRET = "peer-cluster-secret-0123456789abcdef"
SERVICE = "mom.v1.Peer"
PING = "/mom.v1.Peer/Ping"
MAX_MESSAGE = 8 << 20  # PEER_DEFAULT_MAX_MESSAGE


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    """mom_pb2 generated from proto/mom.proto into a temp dir."""
    out = tmp_path_factory.mktemp("pb")
    subprocess.run(["protoc", "-I", os.path.join(REPO, "proto"), "--python_out", str(out),
                    os.path.join(REPO, "proto", "mom.proto")], check=True)
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("mom_pb2")
    finally:
        sys.path.remove(str(out))


def peer_token(sub="node:2", secret=CLUSTER_SECRET, aud="mom-peer", exp_in=60, **extra):
    now = int(time.time())
    claims = {"sub": sub, "aud": aud, "iat": now,
              "exp": None if exp_in is None else now + exp_in}
    claims.update(extra)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, secret, algorithm="HS256")


def bearer(tok):
    return (("authorization", "Bearer " + tok),)



def start_peer_momd(momd_factory, peers=None, secret=CLUSTER_SECRET):
    """momd as node 1; node 2 is the Python side (a closed port by default)."""
    if peers is None:
        peers = "1=127.0.0.1:0,2=127.0.0.1:%d" % free_port()
    args = ["--node-id", "1", "--peers", peers]
    if secret is not None:
        args += ["--cluster-secret", secret]
    m = momd_factory(args=args)
    assert m.peer and not m.peer.endswith(":0"), "momd printed no peer port: %s" % m.ready_line
    return m


def ping_call(channel, pb, raw=False):
    return channel.unary_unary(
        PING,
        request_serializer=(lambda b: b) if raw else pb.PingRequest.SerializeToString,
        response_deserializer=pb.PingResponse.FromString)


@pytest.fixture
def node(momd_factory):
    return start_peer_momd(momd_factory)


@pytest.fixture
def channel(node):
    ch = grpc.insecure_channel(node.peer)
    yield ch
    ch.close()


# ---- a stock gRPC client calls momd ------------------------------------------

def test_ping(pb, channel):
    resp = ping_call(channel, pb)(pb.PingRequest(group_id=7, time_ms=123),
                                  metadata=bearer(peer_token()), timeout=5)
    assert getattr(resp, "from") == 1
    assert resp.leader == 1
    assert resp.group_id == 7
    assert resp.term == 0


def test_sender_must_match_token(pb, channel):
    md = bearer(peer_token(sub="node:2"))
    resp = ping_call(channel, pb)(pb.PingRequest(**{"from": 2}), metadata=md, timeout=5)
    assert getattr(resp, "from") == 1
    with pytest.raises(grpc.RpcError) as e:
        ping_call(channel, pb)(pb.PingRequest(**{"from": 1}), metadata=md, timeout=5)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_unknown_method(pb, channel):
    call = channel.unary_unary("/mom.v1.Peer/NoSuchMethod", request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as e:
        call(b"", metadata=bearer(peer_token()), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "NoSuchMethod" in e.value.details()
    other = channel.unary_unary("/other.Service/Ping", request_serializer=lambda b: b,
                                response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as e:
        other(b"", metadata=bearer(peer_token()), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize("make_md,why", [
    (lambda: (), "no token"),
    (lambda: bearer(peer_token(secret="not-the-cluster-secret-at-all-0123")), "wrong secret"),
    (lambda: bearer(peer_token(exp_in=-10)), "expired"),
    (lambda: bearer(peer_token(exp_in=None)), "no exp"),
    (lambda: bearer(peer_token(aud="someone-else")), "wrong audience"),
    (lambda: bearer(peer_token(aud=None)), "no audience"),
    (lambda: bearer(peer_token(sub="node:9")), "not a member"),
    (lambda: bearer(peer_token(sub="alice")), "not a node"),
    (lambda: (("authorization", "Basic Zm9vOmJhcg=="),), "not bearer"),
    (lambda: (("authorization", "Bearer x.y.z"),), "garbage token"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_unauthenticated(pb, channel, node, make_md, why):
    with pytest.raises(grpc.RpcError) as e:
        ping_call(channel, pb)(pb.PingRequest(), metadata=make_md(), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, why
    # nothing changed: the same channel still serves an authenticated call
    resp = ping_call(channel, pb)(pb.PingRequest(), metadata=bearer(peer_token()), timeout=5)
    assert getattr(resp, "from") == 1


def test_alg_none_and_confusion_refused(pb, channel):
    import base64
    import json

    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    now = int(time.time())
    claims = {"sub": "node:2", "aud": "mom-peer", "exp": now + 60}
    none_tok = "%s.%s." % (b64({"alg": "none", "typ": "JWT"}), b64(claims))
    hs512 = jwt.encode(claims, CLUSTER_SECRET, algorithm="HS512")
    for tok in (none_tok, hs512):
        with pytest.raises(grpc.RpcError) as e:
            ping_call(channel, pb)(pb.PingRequest(), metadata=bearer(tok), timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_garbage_protobuf(pb, channel):
    call = ping_call(channel, pb, raw=True)
    for body in (b"\xff\xff\xff\xff\xff", b"\x08", b"\x0a\x05ab", b"\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80"):
        with pytest.raises(grpc.RpcError) as e:
            call(body, metadata=bearer(peer_token()), timeout=5)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, body
    # an empty message is a valid PingRequest
    resp = call(b"", metadata=bearer(peer_token()), timeout=5)
    assert getattr(resp, "from") == 1


def padded_ping(pb, size):
    """A PingRequest carrying `size` bytes in unknown field 100 (skipped by nanopb)."""
    head = pb.PingRequest(group_id=3).SerializeToString()
    tag = bytes([0xa2, 0x06])  # field 100, wire type 2
    n, varint = size, bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        varint.append(b | (0x80 if n else 0))
        if not n:
            break
    return head + tag + bytes(varint) + os.urandom(size)


def test_one_mib_and_four_mib_messages(pb, channel):
    call = ping_call(channel, pb, raw=True)
    for size in (1 << 20, (4 << 20) + 100):
        resp = call(padded_ping(pb, size), metadata=bearer(peer_token()), timeout=20)
        assert resp.group_id == 3 and getattr(resp, "from") == 1


def test_over_limit_is_resource_exhausted(pb, channel):
    call = ping_call(channel, pb, raw=True)
    with pytest.raises(grpc.RpcError) as e:
        call(padded_ping(pb, MAX_MESSAGE + 1), metadata=bearer(peer_token()), timeout=30)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    resp = ping_call(channel, pb)(pb.PingRequest(), metadata=bearer(peer_token()), timeout=5)
    assert getattr(resp, "from") == 1


def test_300_concurrent_calls_one_channel(pb, channel):
    call = ping_call(channel, pb)
    md = bearer(peer_token())
    futs = [call.future(pb.PingRequest(group_id=i, time_ms=i), metadata=md, timeout=30)
            for i in range(300)]
    got = sorted(f.result().group_id for f in futs)
    assert got == list(range(300))


def test_deadline_header_accepted(pb, channel):
    # a very short deadline still completes or fails with DEADLINE_EXCEEDED, never hangs
    try:
        ping_call(channel, pb)(pb.PingRequest(), metadata=bearer(peer_token()), timeout=0.001)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    resp = ping_call(channel, pb)(pb.PingRequest(), metadata=bearer(peer_token()), timeout=5)
    assert getattr(resp, "from") == 1


def test_no_cluster_secret_refuses_everything(pb, momd_factory):
    m = start_peer_momd(momd_factory, secret=None)
    with grpc.insecure_channel(m.peer) as ch:
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as e:
                ping_call(ch, pb)(pb.PingRequest(), metadata=bearer(peer_token()), timeout=5)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "secret" in e.value.details()
    text = m.stderr_since_start()
    assert text.count("no cluster secret") == 1, text


# ---- momd calls a stock gRPC server ------------------------------------------

class FakePeer:
    """A grpcio server answering Ping as node 2; behaviour switchable."""

    def __init__(self, pb, port=0):
        self.pb = pb
        self.lock = threading.Lock()
        self.calls = []        # (claims or None, time_remaining, error)
        self.delay = 0.0
        self.cancelled_seen = 0
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handler = grpc.unary_unary_rpc_method_handler(
            self.ping, request_deserializer=pb.PingRequest.FromString,
            response_serializer=pb.PingResponse.SerializeToString)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"Ping": handler}),))
        self.port = self.server.add_insecure_port("127.0.0.1:%d" % port)
        self.server.start()

    def ping(self, request, context):
        md = dict(context.invocation_metadata())
        auth = md.get("authorization", "")
        claims, err = None, None
        try:
            assert auth.startswith("Bearer ")
            claims = jwt.decode(auth[7:], CLUSTER_SECRET, algorithms=["HS256"],
                                audience="mom-peer")
        except Exception as e:  # recorded, checked by the test
            err = repr(e)
        with self.lock:
            self.calls.append((claims, context.time_remaining(), err, getattr(request, "from")))
            delay = self.delay
        if err:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, err)
        if delay:
            time.sleep(delay)
            if not context.is_active():
                with self.lock:
                    self.cancelled_seen += 1
        return self.pb.PingResponse(group_id=request.group_id, term=5, leader=2,
                                    **{"from": 2})

    def stop(self):
        self.server.stop(0).wait(5)


def cluster(momd):
    c = Client(momd, mint("observer"))
    r = c.get("/v1/cluster")
    assert r.status_code == 200, r.text
    return r.json()


def member(view, node_id):
    return next(n for n in view["nodes"] if n["id"] == node_id)


def test_momd_calls_grpc_server(pb, momd_factory):
    fake = FakePeer(pb)
    try:
        m = start_peer_momd(momd_factory, peers="1=127.0.0.1:0,2=127.0.0.1:%d" % fake.port)
        view = wait_until(lambda: (lambda v: v if member(v, 2)["healthy"] else None)(cluster(m)),
                          timeout=10, what="node 2 healthy")
        # the stand-in answers Ping only (no Raft), so node 1 cannot win a
        # majority of two: no leader, nothing committed, still healthy pings
        assert view["node_id"] == 1 and view["leader"] is None and view["role"] != "leader"
        assert view["commit_index"] == 0
        n2 = member(view, 2)
        assert n2["address"] == "127.0.0.1:%d" % fake.port
        assert 0 <= n2["last_contact_ms"] < 3000
        assert n2["match_index"] == 0
        assert member(view, 1)["healthy"] is True
        with fake.lock:
            calls = list(fake.calls)
        assert calls, "no Ping reached the fake peer"
        for claims, remaining, err, sender in calls:
            assert err is None, err
            assert claims["sub"] == "node:1" and claims["aud"] == "mom-peer"
            assert 0 < claims["exp"] - claims["iat"] <= 300
            assert remaining is not None and 0 < remaining <= 1.0  # grpc-timeout sent
            assert sender == 1
        # pings keep coming about once a second
        n = len(calls)
        wait_until(lambda: len(fake.calls) >= n + 2, timeout=5, what="more pings")
    finally:
        fake.stop()


def test_momd_call_deadline_exceeded(pb, momd_factory):
    fake = FakePeer(pb)
    try:
        m = start_peer_momd(momd_factory, peers="1=127.0.0.1:0,2=127.0.0.1:%d" % fake.port)
        wait_until(lambda: member(cluster(m), 2)["healthy"], timeout=10, what="healthy")
        with fake.lock:
            fake.delay = 1.5  # longer than momd's 900 ms Ping deadline
        wait_until(lambda: not member(cluster(m), 2)["healthy"], timeout=10, what="unhealthy")
        wait_until(lambda: "DEADLINE_EXCEEDED" in m.stderr_since_start(), timeout=5,
                   what="DEADLINE_EXCEEDED logged")
        wait_until(lambda: fake.cancelled_seen > 0, timeout=5,
                   what="the fake peer saw the call cancelled")
        with fake.lock:
            fake.delay = 0
        wait_until(lambda: member(cluster(m), 2)["healthy"], timeout=10, what="healthy again")
    finally:
        fake.stop()


def test_momd_peer_gone_and_back(pb, momd_factory):
    fake = FakePeer(pb)
    port = fake.port
    try:
        m = start_peer_momd(momd_factory, peers="1=127.0.0.1:0,2=127.0.0.1:%d" % port)
        wait_until(lambda: member(cluster(m), 2)["healthy"], timeout=10, what="healthy")
        fake.stop()
        wait_until(lambda: not member(cluster(m), 2)["healthy"], timeout=10, what="unhealthy")
        wait_until(lambda: "UNAVAILABLE" in m.stderr_since_start(), timeout=5,
                   what="UNAVAILABLE logged")
        age = member(cluster(m), 2)["last_contact_ms"]
        time.sleep(1.2)
        assert member(cluster(m), 2)["last_contact_ms"] >= age + 1000
        fake = FakePeer(pb, port=port)  # back on the same port: momd reconnects
        wait_until(lambda: member(cluster(m), 2)["healthy"], timeout=15, what="reconnected")
        assert member(cluster(m), 2)["last_contact_ms"] < 3000
    finally:
        fake.stop()


def test_cluster_of_one(momd_factory):
    m = momd_factory(args=["--node-id", "4", "--cluster-secret", CLUSTER_SECRET])
    view = cluster(m)
    assert view["node_id"] == 4 and view["leader"] == 4
    assert [n["id"] for n in view["nodes"]] == [4]
    assert view["nodes"][0]["healthy"] is True and view["nodes"][0]["last_contact_ms"] == 0


def test_bad_peers_config_refused(momd_factory, tmp_path):
    for peers in ("2=127.0.0.1:1,3=127.0.0.1:2", "1=nohostport", "1=a:1,1=b:2"):
        m = momd_factory(args=["--node-id", "1", "--peers", peers,
                               "--cluster-secret", CLUSTER_SECRET], start=False)
        with pytest.raises(Exception):
            m.start()
        assert "MOM_PEERS" in m.stderr_text()


def test_two_momd_restart(momd_factory):
    """Two nodes ping each other; one stops (GOAWAY) and comes back on the same
    port: the other sees it unhealthy, then reconnects by itself."""
    p1, p2 = free_port(), free_port()
    peers = "1=127.0.0.1:%d,2=127.0.0.1:%d" % (p1, p2)

    def args(node_id, port):
        return ["--node-id", str(node_id), "--peer-addr", "127.0.0.1:%d" % port,
                "--peers", peers, "--cluster-secret", CLUSTER_SECRET]
    a = momd_factory(args=args(1, p1))
    b = momd_factory(args=args(2, p2))
    wait_until(lambda: member(cluster(a), 2)["healthy"] and member(cluster(b), 1)["healthy"],
               timeout=10, what="both healthy")
    assert b.stop() == 0
    wait_until(lambda: not member(cluster(a), 2)["healthy"], timeout=10, what="2 unhealthy")
    b.start()
    wait_until(lambda: member(cluster(a), 2)["healthy"] and member(cluster(b), 1)["healthy"],
               timeout=15, what="healthy again after the restart")
    # a stop sends GOAWAY(NO_ERROR): node 1 drains that link and redials
    # without calling it lost, so the health flips above are the evidence
