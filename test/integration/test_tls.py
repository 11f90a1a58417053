# TLS on the client port (MOM_TLS_CERT, MOM_TLS_KEY, MOM_TLS_CLIENT_CA) with
# a CA made at test time (python3-cryptography): curl and Python's
# http.client/ssl over TLS 1.2 and 1.3, TLS 1.1 refused by the server, a
# required client certificate (none or another CA's is refused), plain HTTP
# on the TLS port closed without disturbing other requests, long polls, CORS,
# /metrics and topic and queue streams (their receipts acked) over TLS, and
# every bad configuration stopping start-up with a message naming the
# setting.
# SPDX-License-Identifier: MIT

import datetime
import http.client
import ipaddress
import json
import socket
import ssl
import subprocess
import threading
import warnings

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import MomdStartError, mint

ORIGIN = "https://app.example"


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, issuer_name, public_key, signing_key, ca):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
         .public_key(public_key).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1)))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
    return b.sign(signing_key, hashes.SHA256())


class Pki:
    """A CA, the server's certificate, a client's, and a client of another CA."""

    def __init__(self, d):
        self.dir = d
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _cert("mom test CA", _name("mom test CA"), ca_key.public_key(), ca_key, True)
        other_key = ec.generate_private_key(ec.SECP256R1())
        other = _cert("other CA", _name("other CA"), other_key.public_key(), other_key, True)
        self.ca = self._write("ca.pem", cert=ca)
        self.other_ca = self._write("other-ca.pem", cert=other)
        self.cert, self.key = self._leaf("server", ca, ca_key)
        self.client = self._leaf("client", ca, ca_key)
        self.stranger = self._leaf("stranger", other, other_key)
        self.junk = self._write_bytes("junk.pem", b"not a certificate\n")

    def _leaf(self, cn, ca, ca_key):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(cn, ca.subject, key.public_key(), ca_key, False)
        return self._write(cn + ".pem", cert=cert), self._write(cn + ".key", key=key)

    def _write(self, name, cert=None, key=None):
        data = (cert.public_bytes(serialization.Encoding.PEM) if cert is not None else
                key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
        return self._write_bytes(name, data)

    def _write_bytes(self, name, data):
        p = self.dir / name
        p.write_bytes(data)
        return str(p)


@pytest.fixture
def pki(tmp_path):
    d = tmp_path / "pki"
    d.mkdir()
    return Pki(d)


def tls_args(pki, client_ca=False):
    args = ["--tls-cert", pki.cert, "--tls-key", pki.key]
    return args + (["--tls-client-ca", pki.ca] if client_ca else [])


def port_of(m):
    return m.host_port()[1]


def https(m, path):
    return "https://127.0.0.1:%d%s" % (port_of(m), path)


def session(pki, cert=None):
    s = requests.Session()
    s.trust_env = False  # REQUESTS_CA_BUNDLE would replace verify
    s.verify = pki.ca
    if cert:
        s.cert = cert
    s.headers["Authorization"] = "Bearer " + mint("alice")
    return s


def ssl_context(pki, version=None, cert=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.ca)
    if version is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = version
            ctx.maximum_version = version
        if version < ssl.TLSVersion.TLSv1_2:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer it
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def handshake(m, ctx):
    """The negotiated version, or the SSL error the handshake ended with."""
    with socket.create_connection(("127.0.0.1", port_of(m)), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return t.version()


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "20"] + list(args),
                          capture_output=True, text=True, timeout=30)


def test_curl_and_python_over_tls(momd_factory, pki):
    m = momd_factory(args=tls_args(pki))
    token = mint("alice")
    # curl, verifying the server against the CA
    r = curl("--cacert", pki.ca, "-H", "Authorization: Bearer " + token, "-X", "PUT",
             https(m, "/v1/queues/orders"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == "orders"
    r = curl("--cacert", pki.ca, "-H", "Authorization: Bearer " + token,
             "-H", "Content-Type: text/plain", "--data-binary", "order #1",
             "-w", "%{http_code}", "-o", "/dev/null", https(m, "/v1/queues/orders/messages"))
    assert r.returncode == 0 and r.stdout == "201", (r.stdout, r.stderr)
    # Python's http.client on one kept-alive TLS connection
    conn = http.client.HTTPSConnection("127.0.0.1", port_of(m), timeout=10,
                                       context=ssl_context(pki))
    hdrs = {"Authorization": "Bearer " + token}
    conn.request("POST", "/v1/queues/orders/receive?max=1", headers=hdrs)
    resp = conn.getresponse()
    assert resp.status == 200
    msg = json.loads(resp.read())["messages"][0]
    assert msg["body"] == "order #1"
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    conn.request("DELETE", "/v1/queues/orders/messages/" + msg["receipt"], headers=hdrs)
    resp = conn.getresponse()
    assert resp.status == 204
    resp.read()
    conn.request("GET", "/v1/queues/orders", headers=hdrs)
    resp = conn.getresponse()
    assert json.loads(resp.read())["depth"] == 0
    conn.close()
    # without the CA the server is not trusted
    r = curl(https(m, "/healthz"))
    assert r.returncode == 60, (r.returncode, r.stderr)


def test_tls_versions(momd_factory, pki):
    m = momd_factory(args=tls_args(pki))
    assert handshake(m, ssl_context(pki, ssl.TLSVersion.TLSv1_2)) == "TLSv1.2"
    assert handshake(m, ssl_context(pki, ssl.TLSVersion.TLSv1_3)) == "TLSv1.3"
    for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        with pytest.raises(ssl.SSLError) as e:
            handshake(m, ssl_context(pki, old))
        # the server's alert, not a client that would not offer it
        assert "ALERT_PROTOCOL_VERSION" in str(e.value) or "protocol version" in str(e.value)
    r = curl("--cacert", pki.ca, "--tlsv1.1", "--tls-max", "1.1", "--ciphers",
             "DEFAULT@SECLEVEL=0", https(m, "/healthz"))
    assert r.returncode == 35 and "protocol version" in r.stderr, r.stderr
    r = curl("--cacert", pki.ca, "--tlsv1.2", "--tls-max", "1.2", https(m, "/healthz"))
    assert r.returncode == 0 and json.loads(r.stdout) == {"status": "ok"}


def test_client_certificate_required(momd_factory, pki):
    m = momd_factory(args=tls_args(pki, client_ca=True))
    # the right client certificate: curl and Python
    r = curl("--cacert", pki.ca, "--cert", pki.client[0], "--key", pki.client[1],
             https(m, "/healthz"))
    assert r.returncode == 0 and json.loads(r.stdout) == {"status": "ok"}, r.stderr
    s = session(pki, cert=pki.client)
    assert s.put(https(m, "/v1/queues/q"), timeout=10).status_code == 201
    assert handshake(m, ssl_context(pki, cert=pki.client)) in ("TLSv1.2", "TLSv1.3")
    # none, or one from another CA: refused in the handshake
    for cert in (None, pki.stranger):
        args = ["--cacert", pki.ca] + (["--cert", cert[0], "--key", cert[1]] if cert else [])
        r = curl(*(args + [https(m, "/healthz")]))
        assert r.returncode != 0 and r.stdout == "", (cert, r.stdout)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            conn = http.client.HTTPSConnection(
                "127.0.0.1", port_of(m), timeout=10,
                context=ssl_context(pki, ssl.TLSVersion.TLSv1_2, cert=cert))
            conn.request("GET", "/healthz")
            conn.getresponse()
    # the node still serves the good client
    assert s.get(https(m, "/v1/queues/q"), timeout=10).json()["name"] == "q"


def test_plain_http_on_tls_port_is_closed_and_others_go_on(momd_factory, pki):
    m = momd_factory(args=tls_args(pki))
    s = session(pki)
    assert s.put(https(m, "/v1/queues/q"), timeout=10).status_code == 201
    got = {}

    def long_poll():
        r = s.post(https(m, "/v1/queues/q/receive"), params={"wait_ms": 10000}, timeout=30)
        got["r"] = r

    t = threading.Thread(target=long_poll)
    t.start()
    for payload in (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x05hello",
                    b"\x00" * 64):
        with socket.create_connection(("127.0.0.1", port_of(m)), timeout=10) as raw:
            raw.sendall(payload)
            data = b""
            try:
                while True:
                    chunk = raw.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
            assert b"HTTP/" not in data
    r = curl("http://127.0.0.1:%d/healthz" % port_of(m))
    assert r.returncode != 0
    # the long poll still gets its message, and new requests are served
    assert s.post(https(m, "/v1/queues/q/messages"), data=b"x", timeout=10).status_code == 201
    t.join(timeout=30)
    assert got["r"].status_code == 200
    assert [x["body"] for x in got["r"].json()["messages"]] == ["x"]
    assert s.get(https(m, "/healthz"), timeout=10).json() == {"status": "ok"}


def test_cors_and_metrics_over_tls(momd_factory, pki):
    m = momd_factory(args=tls_args(pki) + ["--cors-origins", ORIGIN])
    s = session(pki)
    r = s.get(https(m, "/v1/queues"), headers={"Origin": ORIGIN}, timeout=10)
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == ORIGIN
    r = requests.options(https(m, "/v1/queues/q/receive"), verify=pki.ca, timeout=10, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204 and r.headers["Access-Control-Max-Age"] == "600"
    r = requests.get(https(m, "/metrics"), verify=pki.ca, timeout=10)
    assert r.status_code == 200
    assert 'mom_http_requests_total{route="/v1/queues",method="GET",status="200"} 1' in r.text


def test_restart_keeps_serving_tls(momd_factory, pki):
    m = momd_factory(args=tls_args(pki))
    s = session(pki)
    assert s.put(https(m, "/v1/queues/q"), timeout=10).status_code == 201
    s.close()
    m.restart()
    s = session(pki)
    assert s.get(https(m, "/v1/queues/q"), timeout=10).status_code == 200


@pytest.mark.parametrize("case", ["missing cert", "cert only", "key only", "ca only",
                                  "cert not PEM", "key of another cert", "ca not PEM",
                                  "missing ca"])
def test_bad_tls_configuration_stops_start(momd_factory, pki, case):
    args, needle = {
        "missing cert": (["--tls-cert", pki.cert + ".nope", "--tls-key", pki.key],
                         "MOM_TLS_CERT"),
        "cert only": (["--tls-cert", pki.cert], "MOM_TLS_KEY"),
        "key only": (["--tls-key", pki.key], "MOM_TLS_CERT"),
        "ca only": (["--tls-client-ca", pki.ca], "MOM_TLS_CERT"),
        "cert not PEM": (["--tls-cert", pki.junk, "--tls-key", pki.key], "MOM_TLS_CERT"),
        "key of another cert": (["--tls-cert", pki.cert, "--tls-key", pki.client[1]],
                                "MOM_TLS_KEY"),
        "ca not PEM": (tls_args(pki) + ["--tls-client-ca", pki.junk], "MOM_TLS_CLIENT_CA"),
        "missing ca": (tls_args(pki) + ["--tls-client-ca", pki.ca + ".nope"],
                       "MOM_TLS_CLIENT_CA"),
    }[case]
    m = momd_factory(args=args, start=False)
    with pytest.raises(MomdStartError):
        m.start()
    err = m.stderr_text()
    assert "client TLS" in err and needle in err, err


def sse_events(lines, n):
    """The next n events from an SSE answer's line iterator, as dicts."""
    events, cur = [], {}
    for line in lines:
        if line == "":
            if "data" in cur:
                events.append(cur)
                if len(events) == n:
                    return events
            cur = {}
        elif not line.startswith(":"):
            k, _, v = line.partition(":")
            cur[k] = v[1:] if v.startswith(" ") else v
    return events


def test_streams_over_tls(momd_factory, pki):
    m = momd_factory(args=tls_args(pki))
    s = session(pki)
    # streams get a session of their own: requests may hand a half-read
    # streamed connection back to its pool, and a request pipelined on a
    # stream's connection closes the stream
    streams = session(pki)
    assert s.put(https(m, "/v1/topics/t"), timeout=10).status_code == 201
    assert s.put(https(m, "/v1/queues/q"), timeout=10).status_code == 201
    for i in range(2):
        assert s.post(https(m, "/v1/topics/t/messages"), data=b"t%d" % i,
                      timeout=10).status_code == 201
        assert s.post(https(m, "/v1/queues/q/messages"), data=b"q%d" % i,
                      timeout=10).status_code == 201
    with streams.get(https(m, "/v1/topics/t/stream"), params={"from": "earliest"},
                     stream=True, timeout=20) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
        lines = r.iter_lines(decode_unicode=True)
        evs = sse_events(lines, 2)
        assert [e["id"] for e in evs] == ["0", "1"]
        assert [json.loads(e["data"])["body"] for e in evs] == ["t0", "t1"]
        # a live event over TLS
        assert s.post(https(m, "/v1/topics/t/messages"), data=b"live",
                      timeout=10).status_code == 201
        assert json.loads(sse_events(lines, 1)[0]["data"])["body"] == "live"
    streams.close()
    streams = session(pki)
    # a queue stream's receipts are the same MAC'd receipts: ack one, forge one
    with streams.get(https(m, "/v1/queues/q/stream"), params={"prefetch": 2}, stream=True,
                     timeout=20) as r:
        assert r.status_code == 200
        lines = r.iter_lines(decode_unicode=True)
        evs = [json.loads(e["data"]) for e in sse_events(lines, 2)]
        assert sorted(e["body"] for e in evs) == ["q0", "q1"]
        receipt = evs[0]["receipt"]
        lease, mac = receipt.rsplit(".", 1)
        forged = lease + "." + ("A" if mac[0] != "A" else "B") + mac[1:]
        assert s.delete(https(m, "/v1/queues/q/messages/" + forged),
                        timeout=10).status_code == 410
        assert s.delete(https(m, "/v1/queues/q/messages/" + receipt),
                        timeout=10).status_code == 204
        assert s.delete(https(m, "/v1/queues/q/messages/" + receipt),
                        timeout=10).status_code == 410
    streams.close()
