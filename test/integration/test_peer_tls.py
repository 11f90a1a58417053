# Optional TLS on the peer port (MOM_PEER_TLS_CERT/KEY/CA): mutual TLS with
# ALPN h2 against python3-grpcio in both directions, and between two momd.
# A client without a certificate, with one from another CA, or in cleartext
# is refused; an incomplete TLS configuration stops start-up. Certificates
# are made at test time with python3-cryptography.
# SPDX-License-Identifier: MIT

import datetime
import ipaddress
from concurrent import futures

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import Client, mint, wait_until
from test_peer_grpc import CLUSTER_SECRET, PING, free_port, peer_token

PING_REPLY_NODE1 = bytes.fromhex("10012001")  # PingResponse{from: 1, leader: 1}


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn="mom test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_leaf(ca, cn):
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture
def pki(tmp_path):
    """Files for node1/node2 under one CA, plus an outsider under another CA."""
    ca = make_ca()
    other_ca = make_ca("someone else")
    out = {"ca": tmp_path / "ca.pem", "ca_pem": pem_cert(ca[1])}
    out["ca"].write_bytes(out["ca_pem"])
    for name, issuer in (("node1", ca), ("node2", ca), ("outsider", other_ca)):
        key, cert = make_leaf(issuer, name)
        (tmp_path / (name + ".pem")).write_bytes(pem_cert(cert))
        (tmp_path / (name + ".key")).write_bytes(pem_key(key))
        out[name] = (tmp_path / (name + ".pem"), tmp_path / (name + ".key"))
        out[name + "_pem"] = (pem_cert(cert), pem_key(key))
    return out


def tls_args(pki, name):
    cert, key = pki[name]
    return ["--peer-tls-cert", str(cert), "--peer-tls-key", str(key), "--peer-tls-ca", str(pki["ca"])]


def ping(channel, timeout=5):
    call = channel.unary_unary(PING, request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    return call(b"", metadata=(("authorization", "Bearer " + peer_token()),), timeout=timeout)


def cluster(momd):
    r = Client(momd, mint("observer")).get("/v1/cluster")
    assert r.status_code == 200, r.text
    return r.json()


def healthy(momd, node_id):
    return next(n for n in cluster(momd)["nodes"] if n["id"] == node_id)["healthy"]


def test_grpc_client_with_mutual_tls(pki, momd_factory):
    m = momd_factory(args=["--node-id", "1", "--cluster-secret", CLUSTER_SECRET,
                           "--peers", "1=127.0.0.1:0,2=127.0.0.1:%d" % free_port()]
                     + tls_args(pki, "node1"))
    cert, key = pki["node2_pem"]
    creds = grpc.ssl_channel_credentials(pki["ca_pem"], key, cert)
    with grpc.secure_channel(m.peer, creds) as ch:
        assert ping(ch) == PING_REPLY_NODE1
    refused = [
        grpc.ssl_channel_credentials(pki["ca_pem"]),                     # no client certificate
        grpc.ssl_channel_credentials(pki["ca_pem"], pki["outsider_pem"][1],
                                     pki["outsider_pem"][0]),            # another CA
    ]
    for creds in refused:
        with grpc.secure_channel(m.peer, creds) as ch:
            with pytest.raises(grpc.RpcError) as e:
                ping(ch, timeout=3)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    with grpc.insecure_channel(m.peer) as ch:
        with pytest.raises(grpc.RpcError) as e:
            ping(ch, timeout=3)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    # still serving after the refusals
    creds = grpc.ssl_channel_credentials(pki["ca_pem"], key, cert)
    with grpc.secure_channel(m.peer, creds) as ch:
        assert ping(ch) == PING_REPLY_NODE1
    assert "TLS handshake failed" in m.stderr_since_start()


def test_momd_calls_tls_grpc_server(pki, momd_factory):
    seen = []

    def handler(request, context):
        auth = context.auth_context()
        seen.append((auth.get("x509_common_name"), context.invocation_metadata()))
        return bytes.fromhex("10022002")  # PingResponse{from: 2, leader: 2}

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("mom.v1.Peer", {
        "Ping": grpc.unary_unary_rpc_method_handler(handler, request_deserializer=lambda b: b,
                                                    response_serializer=lambda b: b)}),))
    cert, key = pki["node2_pem"]
    creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=pki["ca_pem"],
                                        require_client_auth=True)
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    try:
        m = momd_factory(args=["--node-id", "1", "--cluster-secret", CLUSTER_SECRET,
                               "--peers", "1=127.0.0.1:0,2=127.0.0.1:%d" % port]
                         + tls_args(pki, "node1"))
        wait_until(lambda: healthy(m, 2), timeout=10, what="node 2 healthy over TLS")
        assert seen and seen[0][0] == [b"node1"], seen[:1]
    finally:
        server.stop(0).wait(5)


def test_two_momd_over_tls(pki, momd_factory):
    p1, p2 = free_port(), free_port()
    peers = "1=127.0.0.1:%d,2=127.0.0.1:%d" % (p1, p2)
    a = momd_factory(args=["--node-id", "1", "--peer-addr", "127.0.0.1:%d" % p1, "--peers", peers,
                           "--cluster-secret", CLUSTER_SECRET] + tls_args(pki, "node1"))
    b = momd_factory(args=["--node-id", "2", "--peer-addr", "127.0.0.1:%d" % p2, "--peers", peers,
                           "--cluster-secret", CLUSTER_SECRET] + tls_args(pki, "node2"))
    wait_until(lambda: healthy(a, 2) and healthy(b, 1), timeout=15, what="both healthy")


def test_incomplete_tls_config_refused(pki, momd_factory):
    cert, _ = pki["node1"]
    m = momd_factory(args=["--node-id", "1", "--cluster-secret", CLUSTER_SECRET,
                           "--peer-tls-cert", str(cert)], start=False)
    with pytest.raises(Exception):
        m.start()
    assert "MOM_PEER_TLS" in m.stderr_text()
