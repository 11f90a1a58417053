# Hostile peers on the peer port: a certificate from the cluster's CA that
# names another member (or no member), a token whose subject is not the
# member the certificate names, and stale peer tokens. Each is refused and
# the node keeps serving clients.
# SPDX-License-Identifier: MIT

import datetime
import ipaddress
import time
from concurrent import futures

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import Client, mint, wait_until
from test_peer_grpc import CLUSTER_SECRET, PING, free_port, peer_token
from test_peer_tls import make_ca, pem_cert, pem_key

PING_REPLY_NODE1 = bytes.fromhex("10012001")


def make_leaf(ca, cn, node=None, ip="127.0.0.1"):
    """A leaf for cn; SAN: the IP address, and urn:mom:node:<node> when given."""
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    names = [x509.IPAddress(ipaddress.ip_address(ip))]
    if node is not None:
        names.append(x509.UniformResourceIdentifier("urn:mom:node:%d" % node))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return pem_cert(cert), pem_key(key)


@pytest.fixture
def pki(tmp_path):
    ca = make_ca()
    out = {"ca_pem": pem_cert(ca[1]), "ca": tmp_path / "ca.pem"}
    out["ca"].write_bytes(out["ca_pem"])
    for name, node, ip in (("node1", 1, "127.0.0.1"), ("node2", 2, "127.0.0.1"),
                           ("node3", 3, "127.0.0.1"), ("stranger", 9, "127.0.0.1"),
                           ("elsewhere", None, "10.9.9.9")):
        out[name] = make_leaf(ca, name, node, ip)
        (tmp_path / (name + ".pem")).write_bytes(out[name][0])
        (tmp_path / (name + ".key")).write_bytes(out[name][1])
        out[name + "_files"] = (tmp_path / (name + ".pem"), tmp_path / (name + ".key"))
    return out


def tls_args(pki, name):
    cert, key = pki[name + "_files"]
    return ["--peer-tls-cert", str(cert), "--peer-tls-key", str(key), "--peer-tls-ca",
            str(pki["ca"])]


def ping(channel, token, timeout=5):
    call = channel.unary_unary(PING, request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    return call(b"", metadata=(("authorization", "Bearer " + token),), timeout=timeout)


def serves_clients(m):
    """The node still answers clients (a cluster whose other members are
    absent has no quorum, so this is a read, not a write)."""
    c = Client(m, mint("observer"))
    assert c.get("/healthz").status_code == 200
    r = c.get("/v1/cluster")
    assert r.status_code == 200 and r.json()["nodes"], r.text


def test_certificate_for_another_member_is_refused(pki, momd_factory):
    peers = "1=127.0.0.1:0,2=127.0.0.1:%d,3=127.0.0.1:%d" % (free_port(), free_port())
    m = momd_factory(args=["--node-id", "1", "--cluster-secret", CLUSTER_SECRET, "--peers", peers]
                     + tls_args(pki, "node1"))

    def channel(name):
        cert, key = pki[name]
        return grpc.secure_channel(m.peer, grpc.ssl_channel_credentials(pki["ca_pem"], key, cert))

    # node 3's certificate with node 3's token: fine.
    with channel("node3") as ch:
        assert ping(ch, peer_token(sub="node:3")) == PING_REPLY_NODE1
    # node 3's certificate claiming to be node 2: refused.
    with channel("node3") as ch:
        with pytest.raises(grpc.RpcError) as e:
            ping(ch, peer_token(sub="node:2"))
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # Certificates of the right CA that name no member: refused at the handshake.
    for name in ("stranger", "elsewhere"):
        with channel(name) as ch:
            with pytest.raises(grpc.RpcError) as e:
                ping(ch, peer_token(sub="node:2"), timeout=3)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE, name
    assert "does not name any member" in m.stderr_since_start()
    serves_clients(m)


def test_dialled_member_must_present_its_own_certificate(pki, momd_factory):
    seen = []

    def handler(request, context):
        seen.append(1)
        return bytes.fromhex("10022002")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("mom.v1.Peer", {
        "Ping": grpc.unary_unary_rpc_method_handler(handler, request_deserializer=lambda b: b,
                                                    response_serializer=lambda b: b)}),))
    cert, key = pki["node3"]  # listening as member 2 with member 3's certificate
    creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=pki["ca_pem"],
                                        require_client_auth=True)
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    try:
        m = momd_factory(args=["--node-id", "1", "--cluster-secret", CLUSTER_SECRET,
                               "--peers", "1=127.0.0.1:0,2=127.0.0.1:%d" % port]
                         + tls_args(pki, "node1"))
        wait_until(lambda: "does not name member 2" in m.stderr_since_start(), timeout=10,
                   what="the dialled certificate refused")
        assert seen == []
        serves_clients(m)
    finally:
        server.stop(0).wait(5)


def test_stale_peer_token_is_refused(momd_factory):
    peers = "1=127.0.0.1:0,2=127.0.0.1:%d" % free_port()
    m = momd_factory(args=["--node-id", "1", "--cluster-secret", CLUSTER_SECRET, "--peers", peers])
    now = int(time.time())
    with grpc.insecure_channel(m.peer) as ch:
        for tok in (peer_token(iat=now - 600, exp_in=600),   # signed long ago, exp far away
                    peer_token(iat=None),                      # no iat
                    peer_token(iat=now + 60)):                 # issued in the future
            with pytest.raises(grpc.RpcError) as e:
                ping(ch, tok)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert ping(ch, peer_token()) == PING_REPLY_NODE1
    serves_clients(m)


def test_peer_that_never_acknowledges_settings_is_dropped(momd_factory):
    import socket
    peers = "1=127.0.0.1:0,2=127.0.0.1:%d" % free_port()
    m = momd_factory(args=["--node-id", "1", "--cluster-secret", CLUSTER_SECRET, "--peers", peers])
    host, port = m.peer.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    # The client preface, then nothing: no SETTINGS, no acknowledgement.
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    t0 = time.monotonic()
    s.settimeout(10)
    try:
        while s.recv(65536):
            pass
    except ConnectionResetError:
        pass
    assert 4.0 <= time.monotonic() - t0 < 9.0
    s.close()
    assert "SETTINGS not acknowledged" in m.stderr_since_start()
    serves_clients(m)


def test_connections_per_address_are_capped(momd_factory):
    import select
    import socket
    peers = "1=127.0.0.1:0,2=127.0.0.1:%d" % free_port()
    m = momd_factory(args=["--node-id", "1", "--cluster-secret", CLUSTER_SECRET, "--peers", peers])
    host, port = m.peer.rsplit(":", 1)
    socks = [socket.create_connection((host, int(port)), timeout=10) for _ in range(80)]
    try:
        time.sleep(1.0)
        closed = 0
        for s in socks:
            r, _, _ = select.select([s], [], [], 0)
            if r:
                try:
                    closed += s.recv(1) == b""
                except ConnectionResetError:
                    closed += 1
        assert closed == 80 - 64, closed
    finally:
        for s in socks:
            s.close()
    with grpc.insecure_channel(m.peer) as ch:
        assert wait_until(lambda: _ping_ok(ch), timeout=5, what="peer port serving again")
    serves_clients(m)


def _ping_ok(ch):
    try:
        return ping(ch, peer_token(), timeout=2) == PING_REPLY_NODE1
    except grpc.RpcError:
        return False
