# docs/openapi.yaml against itself, the route table and a real node: the
# document is well-formed OpenAPI 3.1 (every schema a valid JSON Schema
# 2020-12, every $ref resolves, every path parameter declared), it
# describes exactly the /v1 routes of broker/router.c, and real answers of
# every /v1 operation (successes and errors) have a documented status and
# match its schema. Debian 12 has no openapi-spec-validator, so the
# structural checks are written here on top of python3-jsonschema.
# SPDX-License-Identifier: MIT

import os
import re

import jsonschema
import pytest
import requests
import yaml

from conftest import REPO, Client, mint

SPEC_PATH = os.path.join(REPO, "docs", "openapi.yaml")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@pytest.fixture(scope="module")
def spec():
    with open(SPEC_PATH) as f:
        return yaml.safe_load(f)


def resolve(spec, ref):
    assert ref.startswith("#/"), ref
    node = spec
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, "unresolved $ref %s" % ref
        node = node[part]
    return node


def walk(node, path=()):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (i,))


def test_document_is_valid_openapi_31(spec):
    assert re.match(r"^3\.1\.\d+$", spec["openapi"])
    assert spec["info"]["title"] and spec["info"]["version"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    tags = {t["name"] for t in spec.get("tags", [])}
    for where, node in walk(spec):
        if "$ref" in node:
            resolve(spec, node["$ref"])
    for name, schema in spec["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
    for template, item in spec["paths"].items():
        assert template.startswith("/"), template
        declared = {p["name"] for p in item.get("parameters", [])
                    for p in [resolve(spec, p["$ref"]) if "$ref" in p else p]
                    if p["in"] == "path"}
        for method, op in item.items():
            if method == "parameters":
                continue
            assert method in METHODS, (template, method)
            op_params = {p["name"] for p in op.get("parameters", [])
                         for p in [resolve(spec, p["$ref"]) if "$ref" in p else p]
                         if p["in"] == "path"}
            used = set(re.findall(r"\{([^}]+)\}", template))
            assert used == declared | op_params, (template, method, used, declared | op_params)
            assert op.get("summary"), (template, method)
            assert set(op.get("tags", [])) <= tags, (template, method)
            assert op["responses"], (template, method)
            for status, resp in op["responses"].items():
                assert re.match(r"^[1-5]\d\d$", str(status)), (template, method, status)
                resp = resolve(spec, resp["$ref"]) if "$ref" in resp else resp
                assert resp.get("description"), (template, method, status)
                for media in resp.get("content", {}).values():
                    jsonschema.Draft202012Validator.check_schema(media["schema"])
            body = op.get("requestBody")
            if body:
                for media in body["content"].values():
                    jsonschema.Draft202012Validator.check_schema(media["schema"])


def router_routes():
    with open(os.path.join(REPO, "broker", "router.c")) as f:
        text = f.read()
    return {("/" + re.sub(r"\{\}", "{}", p), m.lower())
            for p, m in re.findall(r'\{"([^"]+)", HTTP_([A-Z]+), ROUTE_\w+\}', text)}


def normalized(template):
    return re.sub(r"\{[^}]+\}", "{}", template)


def test_every_v1_route_is_described(spec):
    served = {r for r in router_routes() if r[0].startswith("/v1/")}
    described = {(normalized(t), m) for t, item in spec["paths"].items()
                 for m in item if m in METHODS and t.startswith("/v1/")}
    assert served, "no /v1 route found in broker/router.c"
    assert served - described == set(), "routes missing from docs/openapi.yaml"
    assert described - served == set(), "documented routes the router does not serve"


class Checker:
    """Validates answers against the spec and remembers what it covered."""

    def __init__(self, spec):
        self.spec = spec
        self.covered = set()

    def __call__(self, r, template, method=None):
        method = (method or r.request.method).lower()
        op = self.spec["paths"][template][method]
        status = str(r.status_code)
        assert status in op["responses"], \
            "%s %s answered %s, not documented: %s" % (method, template, status, r.text[:300])
        resp = op["responses"][status]
        resp = resolve(self.spec, resp["$ref"]) if "$ref" in resp else resp
        assert r.headers.get("X-Mom-Node"), "no X-Mom-Node"
        content = resp.get("content")
        if not content:
            assert r.content == b"", (template, status, r.content[:200])
        else:
            ctype = r.headers.get("Content-Type", "").split(";")[0].strip()
            media = [k for k in content if k.split(";")[0].strip() == ctype]
            assert media, (template, status, ctype, list(content))
            if ctype == "application/json":
                schema = dict(content[media[0]]["schema"])
                schema["components"] = self.spec["components"]
                jsonschema.Draft202012Validator(
                    schema, format_checker=jsonschema.FormatChecker()).validate(r.json())
        if r.status_code in (429, 503):
            assert r.headers.get("Retry-After"), (template, status)
        self.covered.add((template, method, r.status_code))
        return r


def test_real_answers_match_the_schemas(spec, momd_factory):
    m = momd_factory(env={"MOM_MAX_BODY": "4096"})
    check = Checker(spec)
    alice = Client(m, mint("alice"))
    bob = Client(m, mint("bob"))
    anon = Client(m, None)

    check(anon.get("/healthz"), "/healthz")
    check(anon.get("/readyz"), "/readyz")
    check(anon.get("/metrics"), "/metrics")

    # auth
    creds = {"username": "oa_user", "password": "openapi-pass-1"}
    check(anon.post("/v1/auth/users", json=creds), "/v1/auth/users")
    check(anon.post("/v1/auth/users", json=creds), "/v1/auth/users")  # 409
    check(anon.post("/v1/auth/users", json={"username": "x"}), "/v1/auth/users")  # 400
    check(anon.post("/v1/auth/token", json=creds), "/v1/auth/token")
    check(anon.post("/v1/auth/token", json=dict(creds, password="wrong-password")),
          "/v1/auth/token")  # 401
    check(alice.get("/v1/cluster"), "/v1/cluster")
    check(anon.get("/v1/cluster"), "/v1/cluster")  # 401

    # queues
    q = "/v1/queues/{queue}"
    check(alice.put("/v1/queues/oq", json={"visibility_timeout_ms": 30000}), q, "put")
    check(alice.put("/v1/queues/oq"), q, "put")  # 200
    check(alice.put("/v1/queues/oq", json={"visibility_timeout_ms": 5}), q, "put")  # 409
    check(alice.put("/v1/queues/bad name"), q, "put")  # 400
    check(alice.put("/v1/queues/oq2", json={"max_length": 1, "access": "private"}), q, "put")
    check(alice.get("/v1/queues"), "/v1/queues")
    check(alice.get("/v1/queues/oq"), q)
    check(alice.get("/v1/queues/none"), q)  # 404
    check(bob.get("/v1/queues/oq2"), q)  # 403
    pub = q + "/messages"
    check(alice.post("/v1/queues/oq/messages", data=b"hello"), pub)
    check(alice.post("/v1/queues/oq/messages", data=b"\xff\xfe binary",
                     headers={"Mom-Delay-Ms": "0"}), pub)
    check(alice.post("/v1/queues/none/messages", data=b"x"), pub)  # 404
    check(alice.post("/v1/queues/oq/messages", data=b"x" * 5000), pub)  # 413
    check(alice.post("/v1/queues/oq2/messages", data=b"1"), pub)
    check(alice.post("/v1/queues/oq2/messages", data=b"2"), pub)  # 429
    check(bob.post("/v1/queues/oq2/messages", data=b"x"), pub)  # 403
    batch = q + "/messages/batch"
    check(alice.post("/v1/queues/oq/messages/batch",
                     json={"messages": [{"body": "a"}, {"body": "Yg==", "encoding": "base64"}]}),
          batch)
    check(alice.post("/v1/queues/oq/messages/batch", json={"messages": []}), batch)  # 400
    rcv = q + "/receive"
    r = check(alice.post("/v1/queues/oq/receive", params={"max": 3}), rcv)
    leases = [x["receipt"] for x in r.json()["messages"]]
    assert len(leases) == 3
    check(alice.post("/v1/queues/oq/receive", params={"max": 1, "ack": "auto"}), rcv)
    check(alice.post("/v1/queues/oq/receive", params={"max": -1}), rcv)  # 400
    check(alice.post("/v1/queues/none/receive"), rcv)  # 404
    ack = q + "/messages/{receipt}"
    check(alice.delete("/v1/queues/oq/messages/" + leases[0]), ack)
    check(alice.delete("/v1/queues/oq/messages/" + leases[0]), ack)  # 410
    check(alice.post("/v1/queues/oq/messages/%s/extend" % leases[1],
                     json={"visibility_timeout_ms": 60000}), ack + "/extend")
    check(alice.post("/v1/queues/oq/messages/%s/extend" % leases[1], json={}),
          ack + "/extend")  # 400
    check(alice.post("/v1/queues/oq/messages/%s/nack" % leases[1], json={"delay_ms": 0}),
          ack + "/nack")
    check(alice.post("/v1/queues/oq/messages/%s/nack" % leases[1]), ack + "/nack")  # 410
    check(alice.post("/v1/queues/oq/messages/%s/extend" % leases[1],
                     json={"visibility_timeout_ms": 1}), ack + "/extend")  # 410
    # a queue stream: the head of a 200 (the body never ends), and errors
    r = alice.get("/v1/queues/oq/stream", params={"prefetch": 2}, stream=True)
    check(r, q + "/stream")
    r.close()
    check(alice.get("/v1/queues/oq/stream", params={"prefetch": 0}), q + "/stream")  # 400
    check(alice.get("/v1/queues/none/stream"), q + "/stream")  # 404
    qacl = q + "/acl"
    check(alice.put("/v1/queues/oq2/acl", json={"publish": ["bob"], "consume": []}), qacl, "put")
    check(alice.put("/v1/queues/oq2/acl", json={"publish": [1]}), qacl, "put")  # 400
    check(bob.put("/v1/queues/oq2/acl", json={}), qacl, "put")  # 403
    check(alice.put("/v1/queues/none/acl", json={}), qacl, "put")  # 404
    check(alice.get("/v1/queues/oq2/acl"), qacl)
    check(bob.get("/v1/queues/oq2/acl"), qacl)  # 403
    check(alice.get("/v1/queues/none/acl"), qacl)  # 404
    check(bob.delete("/v1/queues/oq"), q)  # 403
    check(alice.delete("/v1/queues/oq"), q)
    check(alice.delete("/v1/queues/oq"), q)  # 404

    # topics and subscriptions
    t = "/v1/topics/{topic}"
    check(alice.put("/v1/topics/ot", json={"retention_messages": 100}), t, "put")
    check(alice.put("/v1/topics/ot"), t, "put")  # 200
    check(alice.put("/v1/topics/ot", json={"retention_messages": 5}), t, "put")  # 409
    check(alice.put("/v1/topics/ot", json={"nope": 1}), t, "put")  # 400
    check(alice.get("/v1/topics"), "/v1/topics")
    check(alice.get("/v1/topics/ot"), t)
    check(alice.get("/v1/topics/none"), t)  # 404
    s = t + "/subscriptions/{subscription}"
    check(alice.put("/v1/topics/ot/subscriptions/os", json={"start": "earliest"}), s, "put")
    check(alice.put("/v1/topics/ot/subscriptions/os"), s, "put")  # 200
    check(alice.put("/v1/topics/none/subscriptions/os"), s, "put")  # 404
    check(alice.put("/v1/topics/ot/subscriptions/ts", json={"start": "time:2000-01-01T00:00:00Z"}),
          s, "put")
    check(alice.put("/v1/topics/ot/subscriptions/ts", json={"start": "time:x"}), s, "put")  # 400
    tm = t + "/messages"
    check(alice.post("/v1/topics/ot/messages", data=b"news",
                     headers={"Content-Type": "text/plain"}), tm, "post")
    check(alice.post("/v1/topics/none/messages", data=b"x"), tm, "post")  # 404
    check(alice.post("/v1/topics/ot/messages/batch",
                     json={"messages": [{"body": "n1"}, {"body": "n2"}]}), tm + "/batch")
    check(alice.post("/v1/topics/ot/messages/batch", json={"messages": "x"}),
          tm + "/batch")  # 400
    check(alice.get("/v1/topics/ot/messages", params={"from": "earliest"}), tm, "get")
    check(alice.get("/v1/topics/ot/messages", params={"from": 99}), tm, "get")  # 400
    check(alice.get("/v1/topics/ot/messages", params={"from": "time:2000-01-01T00:00:00Z"}), tm,
          "get")
    check(alice.get("/v1/topics/ot/messages", params={"from": "time:2000-01-01"}), tm,
          "get")  # 400
    check(alice.get("/v1/topics/none/messages"), tm, "get")  # 404
    check(alice.get("/v1/topics/ot/subscriptions"), t + "/subscriptions")
    check(alice.get("/v1/topics/none/subscriptions"), t + "/subscriptions")  # 404
    check(alice.get("/v1/topics/ot/subscriptions/os"), s)
    check(alice.get("/v1/topics/ot/subscriptions/zz"), s)  # 404
    check(alice.get("/v1/topics/ot/subscriptions/os/messages", params={"max": 2}),
          s + "/messages")
    check(alice.get("/v1/topics/ot/subscriptions/zz/messages"), s + "/messages")  # 404
    check(alice.post("/v1/topics/ot/subscriptions/os/ack", json={"offset": 0}), s + "/ack")
    check(alice.post("/v1/topics/ot/subscriptions/os/ack", json={"offset": 999}),
          s + "/ack")  # 400
    check(alice.post("/v1/topics/ot/subscriptions/os/seek", json={"offset": 0}), s + "/seek")
    check(alice.post("/v1/topics/ot/subscriptions/os/seek",
                     json={"time": "2000-01-01T00:00:00Z"}), s + "/seek")
    check(alice.post("/v1/topics/ot/subscriptions/os/seek", json={"offset": 999}),
          s + "/seek")  # 400
    check(bob.post("/v1/topics/ot/subscriptions/os/seek", json={"offset": 0}),
          s + "/seek")  # 403
    check(alice.post("/v1/topics/ot/subscriptions/zz/seek", json={"offset": 0}),
          s + "/seek")  # 404
    check(alice.get("/v1/subscriptions"), "/v1/subscriptions")
    check(anon.get("/v1/subscriptions"), "/v1/subscriptions")  # 401
    # event streams: the head of a 200 (the body never ends), and errors
    for path, tpl in (("/v1/topics/ot/stream", t + "/stream"),
                      ("/v1/topics/ot/subscriptions/os/stream", s + "/stream")):
        r = alice.get(path, stream=True)
        check(r, tpl, "get")
        r.close()
    check(alice.get("/v1/topics/ot/stream", params={"from": "x"}), t + "/stream", "get")  # 400
    check(alice.get("/v1/topics/none/stream"), t + "/stream", "get")  # 404
    check(alice.get("/v1/topics/ot/subscriptions/zz/stream"), s + "/stream", "get")  # 404
    check(bob.delete("/v1/topics/ot/subscriptions/os"), s)  # 403
    check(alice.delete("/v1/topics/ot/subscriptions/os"), s)
    check(alice.delete("/v1/topics/ot/subscriptions/os"), s)  # 404
    tacl = t + "/acl"
    check(alice.put("/v1/topics/ot/acl", json={"consume": ["bob", "carol"]}), tacl, "put")
    check(alice.put("/v1/topics/ot/acl", json={"readers": []}), tacl, "put")  # 400
    check(bob.put("/v1/topics/ot/acl", json={}), tacl, "put")  # 403
    check(alice.get("/v1/topics/ot/acl"), tacl)
    check(alice.get("/v1/topics/none/acl"), tacl)  # 404
    check(alice.delete("/v1/topics/ot"), t)
    check(alice.delete("/v1/topics/ot"), t)  # 404

    # every documented operation was seen answering 2xx at least once
    ok = {(tpl, meth) for tpl, meth, st in check.covered if 200 <= st < 300}
    ops = {(tpl, meth) for tpl, item in spec["paths"].items() for meth in item if meth in METHODS}
    assert ops - ok == set(), "operations never checked with a real success"
    # and the error shape was checked on many statuses
    errors = {st for _, _, st in check.covered if st >= 400}
    assert {400, 401, 403, 404, 409, 410, 413, 429} <= errors, errors
