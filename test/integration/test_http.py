# HTTP surface: routing (404/405 with Allow), error shape, check precedence,
# body limits (413 from Content-Length, before auth), health endpoints, the
# X-Mom-Node header, and robustness against malformed requests.
# SPDX-License-Identifier: MIT

import re
import socket

import pytest
import requests

from conftest import HTTP_TIMEOUT_S, Client, assert_error, mint


def raw_http(momd, data, timeout=5.0):
    """Sends raw bytes, reads until the server closes (or timeout). Returns
    (status, headers dict lowercased, body bytes) or (None, {}, raw) if no
    HTTP response came back."""
    s = socket.create_connection(momd.host_port(), timeout=timeout)
    buf = b""
    try:
        s.sendall(data)
        while True:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            buf += chunk
            if _complete(buf):
                break
    finally:
        s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    if not m:
        return None, {}, buf
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    return int(m.group(1)), headers, body


def _complete(buf):
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return bool(m) and len(body) >= int(m.group(1))


def still_serving(momd, token=None):
    r = requests.get(momd.url("/healthz"), timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200, r.text
    if token:
        r = requests.get(momd.url("/v1/queues"), headers={"Authorization": "Bearer " + token},
                         timeout=HTTP_TIMEOUT_S)
        assert r.status_code == 200, r.text


UNKNOWN_ROUTES = ["/nope", "/v1", "/v1/nope", "/v2/queues", "/v1/queues/q/unknown",
                  "/v1/queues/q/messages/r/bogus", "/v1/topics/t/subscriptions/s/nope",
                  "/v1/queues/a/b/c/d/e/f/g", "/v1/topics/t/zzz"]


@pytest.mark.parametrize("path", UNKNOWN_ROUTES)
def test_unknown_route_is_404_json(momd, path):
    tok = mint("alice")
    for headers in ({}, {"Authorization": "Bearer " + tok}):
        r = requests.get(momd.url(path), headers=headers, timeout=HTTP_TIMEOUT_S)
        assert_error(r, 404, "not_found")
        assert r.headers.get("X-Mom-Node") == "1"
    still_serving(momd, tok)


WRONG_METHODS = [
    ("DELETE", "/v1/queues", {"GET"}),
    ("POST", "/v1/queues/q", {"GET", "PUT", "DELETE"}),
    ("GET", "/v1/queues/q/messages", {"POST"}),
    ("GET", "/v1/queues/q/receive", {"POST"}),
    ("PUT", "/v1/queues/q/messages/batch", {"POST"}),
    ("GET", "/v1/queues/q/messages/r/nack", {"POST"}),
    ("GET", "/v1/queues/q/messages/r/extend", {"POST"}),
    ("POST", "/v1/topics", {"GET"}),
    ("PATCH", "/v1/topics/t", {"GET", "PUT", "DELETE"}),
    ("DELETE", "/v1/topics/t/messages", {"GET", "POST"}),
    ("POST", "/v1/topics/t/subscriptions/s", {"GET", "PUT", "DELETE"}),
    ("GET", "/v1/topics/t/subscriptions/s/ack", {"POST"}),
    ("DELETE", "/v1/topics/t/subscriptions", {"GET"}),
    ("PUT", "/v1/subscriptions", {"GET"}),
    ("GET", "/v1/auth/token", {"POST"}),
    ("POST", "/healthz", {"GET"}),
]


@pytest.mark.parametrize("method,path,allowed", WRONG_METHODS,
                         ids=["%s %s" % (m, p) for m, p, _ in WRONG_METHODS])
def test_wrong_method_is_405_with_allow(momd, method, path, allowed):
    tok = mint("alice")
    for headers in ({}, {"Authorization": "Bearer " + tok}):
        r = requests.request(method, momd.url(path), headers=headers, timeout=HTTP_TIMEOUT_S)
        assert_error(r, 405, "method_not_allowed")
        allow = {a.strip().upper() for a in r.headers.get("Allow", "").split(",") if a.strip()}
        assert allowed <= allow, (r.headers.get("Allow"), allowed)
        assert method not in allow
    still_serving(momd, tok)


@pytest.mark.parametrize("method,path", [
    ("PUT", "/v1/queues/q"),
    ("PUT", "/v1/topics/t"),
    ("POST", "/v1/queues/q/messages/batch"),
    ("POST", "/v1/topics/t/messages/batch"),
    ("POST", "/v1/topics/t/subscriptions/s/ack"),
    ("PUT", "/v1/topics/t/subscriptions/s"),
    ("POST", "/v1/auth/users"),
    ("POST", "/v1/auth/token"),
])
def test_malformed_json_is_400(momd, method, path):
    c = Client(momd, mint("alice"))
    c.create_queue("q")
    c.create_topic("t")
    c.put("/v1/topics/t/subscriptions/s")
    for bad in (b"{", b'{"a":', b"{'single': 1}", b"\xff\xfe", b"nul", b'{"a":1,}'):
        r = c.request(method, path, data=bad, headers={"Content-Type": "application/json"})
        assert_error(r, 400, "invalid_json")
    still_serving(momd, c.token)


@pytest.mark.parametrize("bad", [b'{}}', b'{} x', b'{}{}', b'[] []'])
def test_trailing_garbage_after_json_is_400(momd, bad):
    c = Client(momd, mint("alice"))
    for method, path in (("PUT", "/v1/queues/q"), ("PUT", "/v1/topics/t"),
                         ("POST", "/v1/auth/users")):
        r = c.request(method, path, data=bad, headers={"Content-Type": "application/json"})
        assert_error(r, 400, "invalid_json")
    assert c.get("/v1/queues").json() == {"queues": []}


def test_malformed_json_on_nack_and_extend(alice):
    alice.create_queue("q")
    alice.publish("q", b"x")
    m = alice.receive("q")[0]
    for action in ("nack", "extend"):
        r = alice.post("/v1/queues/q/messages/%s/%s" % (m["receipt"], action), data=b"{",
                       headers={"Content-Type": "application/json"})
        assert_error(r, 400, "invalid_json")
    # the lease is intact
    assert alice.ack("q", m["receipt"]).status_code == 204


# ---- body limits -------------------------------------------------------------------------

@pytest.fixture
def small(momd_factory):
    return momd_factory(args=["--max-body", "1024"])


def test_413_from_content_length_before_auth(small):
    tok = mint("alice")
    c = Client(small, tok)
    c.create_queue("q")
    for auth in (b"", b"Authorization: Bearer " + tok.encode() + b"\r\n"):
        for path in (b"/v1/queues/q/messages", b"/v1/queues/missing/messages", b"/nope",
                     b"/v1/auth/users"):
            req = (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n" + auth +
                   b"Content-Type: application/octet-stream\r\n"
                   b"Content-Length: 10000000\r\n\r\n")
            status, headers, body = raw_http(small, req)
            assert status == 413, (path, auth, status, body[:300])
            assert headers.get("x-mom-node") == "1", headers
            assert b'"payload_too_large"' in body, body
    assert c.get_queue("q")["depth"] == 0
    still_serving(small, tok)


def test_413_with_body_sent(small):
    tok = mint("alice")
    c = Client(small, tok)
    c.create_queue("q")
    r = requests.post(small.url("/v1/queues/q/messages"), data=b"x" * 2000,
                      timeout=HTTP_TIMEOUT_S)
    assert_error(r, 413, "payload_too_large")
    r = c.post("/v1/queues/q/messages", data=b"x" * 2000)
    assert_error(r, 413, "payload_too_large")
    r = c.put("/v1/queues/q2", json={"access": "public", "pad": "p" * 3000})
    assert_error(r, 413, "payload_too_large")
    assert_error(c.get("/v1/queues/q2"), 404, "queue_not_found")
    r = c.post("/v1/queues/q/messages/batch", json={"messages": [{"body": "y" * 2000}]})
    assert_error(r, 413, "payload_too_large")
    assert c.get_queue("q")["depth"] == 0
    still_serving(small, tok)


def test_max_body_is_inclusive(small):
    c = Client(small, mint("alice"))
    c.create_queue("q")
    c.publish("q", b"a" * 1024)
    assert_error(c.post("/v1/queues/q/messages", data=b"a" * 1025), 413, "payload_too_large")
    got = c.receive("q", max=10)
    assert len(got) == 1 and got[0]["body"] == "a" * 1024


def test_chunked_body_over_limit_refused(small):
    c = Client(small, mint("alice"))
    c.create_queue("q")

    def gen():
        for _ in range(8):
            yield b"z" * 500

    try:
        r = c.post("/v1/queues/q/messages", data=gen())
        assert r.status_code in (411, 413), (r.status_code, r.text)
        assert_error(r, r.status_code)
    except requests.ConnectionError:
        pass  # refusing by closing is acceptable; nothing may be stored
    assert c.get_queue("q")["depth"] == 0
    still_serving(small, c.token)


def test_default_max_body_allows_1_mib(momd):
    c = Client(momd, mint("alice"))
    c.create_queue("q")
    c.publish("q", b"b" * (1 << 20))
    assert len(c.receive("q")[0]["body"]) == 1 << 20


@pytest.mark.xfail(strict=False, reason=(
    "known gap (docs/api.md): evhtp closes the connection right after the early 413, "
    "so a body still in flight can turn it into a reset (docs/architecture.md, '413 before the body'); rare on loopback"))
def test_over_default_max_body_413_while_body_in_flight(momd):
    """A plain client (no Expect: 100-continue) that sends a body just over the
    default limit must read a 413, not a connection reset."""
    c = Client(momd, mint("alice"))
    c.create_queue("q")
    body = b"b" * ((1 << 20) + 1)
    # repeated: losing the 413 to a reset is a race, seen in about 1 of 5 tries
    for i in range(10):
        try:
            r = requests.post(momd.url("/v1/queues/q/messages"), data=body,
                              headers={"Authorization": "Bearer " + c.token},
                              timeout=HTTP_TIMEOUT_S)
        except requests.ConnectionError as e:
            pytest.fail("try %d: connection error instead of 413: %r" % (i, e))
        assert_error(r, 413, "payload_too_large")
    assert c.get_queue("q")["depth"] == 0


# ---- precedence -----------------------------------------------------------------------

def test_precedence(momd, alice, bob):
    # 404/405 route errors come before 401
    assert_error(requests.get(momd.url("/v1/nope"), timeout=HTTP_TIMEOUT_S), 404, "not_found")
    assert_error(requests.delete(momd.url("/v1/queues"), timeout=HTTP_TIMEOUT_S), 405,
                 "method_not_allowed")
    # 401 before 400
    r = requests.put(momd.url("/v1/queues/q"), data=b"{", timeout=HTTP_TIMEOUT_S)
    assert_error(r, 401, "unauthorized")
    r = requests.put(momd.url("/v1/queues/bad*name"), timeout=HTTP_TIMEOUT_S)
    assert_error(r, 401, "unauthorized")
    r = requests.put(momd.url("/v1/queues/q"), data=b"{",
                     headers={"Authorization": "Bearer nope"}, timeout=HTTP_TIMEOUT_S)
    assert_error(r, 401, "invalid_token")
    # 400 before unknown resource 404
    assert_error(alice.post("/v1/queues/missing/receive", params={"max": "-1"}), 400)
    assert_error(alice.get("/v1/topics/missing/messages", params={"from": "x"}), 400)
    assert_error(alice.post("/v1/queues/missing/messages", data=b"x",
                            headers={"Mom-Delay-Ms": "-1"}), 400)
    # unknown resource 404 before 403
    assert_error(bob.delete("/v1/queues/missing"), 404, "queue_not_found")
    # 400 before 403; 403 before 410 / 429
    alice.create_queue("priv", access="private", max_length=1)
    alice.publish("priv", b"x")
    assert_error(bob.post("/v1/queues/priv/receive", params={"max": "-1"}), 400)
    assert_error(bob.delete("/v1/queues/priv/messages/never-issued"), 403, "forbidden")
    assert_error(bob.post("/v1/queues/priv/messages", data=b"y"), 403, "forbidden")
    assert_error(alice.post("/v1/queues/priv/messages", data=b"y"), 429, "queue_full")


# ---- health, node header, error shape ------------------------------------------------------

@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints(momd, path):
    r = requests.get(momd.url(path), timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200
    assert r.headers.get("Content-Type", "").startswith("application/json")
    assert r.json() == {"status": "ok"}
    assert r.headers.get("X-Mom-Node") == "1"
    # a bad token does not matter there
    r = requests.get(momd.url(path), headers={"Authorization": "Bearer junk"},
                     timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200


def test_x_mom_node_on_every_response(momd, alice, bob):
    rs = [
        requests.get(momd.url("/healthz"), timeout=HTTP_TIMEOUT_S),
        requests.get(momd.url("/v1/queues"), timeout=HTTP_TIMEOUT_S),          # 401
        requests.get(momd.url("/v1/nope"), timeout=HTTP_TIMEOUT_S),            # 404
        requests.post(momd.url("/v1/queues"), timeout=HTTP_TIMEOUT_S),         # 405
        alice.put("/v1/queues/q"),                                             # 201
        alice.put("/v1/queues/q"),                                             # 200
        alice.post("/v1/queues/q/messages", data=b"x"),                       # 201
        alice.put("/v1/queues/q", data=b"{"),                                 # 400
        bob.delete("/v1/queues/q"),                                            # 403
        alice.put("/v1/queues/q", json={"max_length": 3}),                    # 409
        alice.delete("/v1/queues/q/messages/zzz"),                             # 410
        alice.delete("/v1/queues/q"),                                          # 204
        requests.post(momd.url("/v1/auth/token"), json={"username": "no", "password": "nopenope"},
                      timeout=HTTP_TIMEOUT_S),                                 # 401
    ]
    for r in rs:
        assert r.headers.get("X-Mom-Node") == "1", (r.request.method, r.url, r.status_code,
                                                    dict(r.headers))


def test_node_id_option(momd_factory):
    m = momd_factory(args=["--node-id", "7"])
    assert m.node == "7", m.ready_line
    r = requests.get(m.url("/healthz"), timeout=HTTP_TIMEOUT_S)
    assert r.headers.get("X-Mom-Node") == "7"
    r = requests.get(m.url("/v1/nope"), timeout=HTTP_TIMEOUT_S)
    assert r.headers.get("X-Mom-Node") == "7"


def test_error_bodies_are_json_errors(momd, alice, bob):
    """Every 4xx carries {"error": {"code", "message"}} and never a 200 with an error."""
    alice.create_queue("q", max_length=1)
    alice.publish("q", b"x")
    cases = [
        requests.get(momd.url("/v1/queues"), timeout=HTTP_TIMEOUT_S),
        requests.get(momd.url("/v1/queues"), headers={"Authorization": "Bearer x.y.z"},
                     timeout=HTTP_TIMEOUT_S),
        requests.get(momd.url("/nope"), timeout=HTTP_TIMEOUT_S),
        requests.patch(momd.url("/v1/queues/q"), timeout=HTTP_TIMEOUT_S),
        alice.put("/v1/queues/q", data=b"[1,"),
        alice.put("/v1/queues/q*"),
        alice.get("/v1/queues/none"),
        bob.delete("/v1/queues/q"),
        alice.put("/v1/queues/q", json={"max_length": 2}),
        alice.delete("/v1/queues/q/messages/abc"),
        alice.post("/v1/queues/q/messages", data=b"y"),
        alice.get("/v1/topics/none"),
        requests.post(momd.url("/v1/auth/token"), json={"username": "x", "password": "yyyyyyyy"},
                      timeout=HTTP_TIMEOUT_S),
    ]
    for r in cases:
        assert 400 <= r.status_code < 500, (r.url, r.status_code, r.text)
        err = assert_error(r, r.status_code)
        assert err["message"], r.text
        assert set(r.json()) == {"error"}, r.text


# ---- robustness ------------------------------------------------------------------------------

def test_node_survives_malformed_requests(momd):
    tok = mint("alice")
    junk = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /v1/queues HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"A" * 20000 + b"\r\n\r\n",
        b"GET /v1/queues HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100000 + b"\r\n\r\n",
        b"POST /v1/queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST /v1/queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /v1/queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort",
        b"GET /" + b"a/" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/queues/%zz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok.encode() +
        b"\r\n\r\n",
        b"PUT /v1/queues/q%00x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok.encode() +
        b"\r\nContent-Length: 0\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS ClientHello
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"",
    ]
    for data in junk:
        status, headers, body = raw_http(momd, data, timeout=2.0)
        if status is not None:
            assert 400 <= status < 500 or status == 505, (data[:60], status, body[:200])
        still_serving(momd, tok)
    # a connection opened and closed without a byte, and one left half-way
    socket.create_connection(momd.host_port(), timeout=2).close()
    s = socket.create_connection(momd.host_port(), timeout=2)
    s.sendall(b"POST /v1/queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Len")
    still_serving(momd, tok)
    s.close()
    still_serving(momd, tok)
    # none of that created anything (e.g. "q%00x" must not become "q")
    r = requests.get(momd.url("/v1/queues"), headers={"Authorization": "Bearer " + tok},
                     timeout=HTTP_TIMEOUT_S)
    assert r.json() == {"queues": []}, r.text


def test_keep_alive_reuse_after_errors(momd):
    """One session (one connection) sees errors and successes interleaved."""
    c = Client(momd, mint("alice"))
    c.create_queue("q")
    for i in range(20):
        assert c.get("/v1/nope").status_code == 404
        assert c.post("/v1/queues").status_code == 405
        assert c.put("/v1/queues/q", data=b"{").status_code == 400
        assert c.post("/v1/queues/q/messages", data=b"m%d" % i).status_code == 201
    assert c.get_queue("q")["depth"] == 20
