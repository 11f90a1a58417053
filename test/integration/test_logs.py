# Logging on a real node: MOM_LOG_FORMAT=text|json and MOM_ACCESS_LOG=1.
# One access line per answered request with node, method, path, status,
# duration, bytes and user; JSON lines parse; a token sent in the
# Authorization header or in the query string, a password and a message
# body never appear in any log line.
# SPDX-License-Identifier: MIT

import json
import re
import subprocess
import time

import requests

from conftest import MOMD_BIN, Client, mint

SECRET_BODY = "body-marker-5f1c9e0b-never-logged"
PASSWORD = "pw-marker-8d2a-correct-horse"


def access_lines_text(text):
    return [l for l in text.splitlines() if re.search(r" INFO access ", l)]


def exercise(m):
    """Requests of every kind, returning the secrets that were sent."""
    token = mint("alice")
    c = Client(m, token)
    c.create_queue("lq")
    c.publish("lq", SECRET_BODY)
    # a token in the query string (as EventSource clients send it) and a
    # repeated, percent-encoded variant: only their keys may show
    qtoken = mint("carol")
    r = requests.get(m.url("/v1/queues/lq"), params={"access_token": qtoken, "x": "1"},
                     headers={"Authorization": "Bearer " + token}, timeout=10)
    assert r.status_code == 200
    r = requests.get(m.url("/v1/queues?Access%5FToken=" + qtoken), timeout=10)
    assert r.status_code == 401
    # a bad token in the header is refused and not logged either
    bad = token[:-4] + "AAAA"
    r = requests.get(m.url("/v1/queues"), headers={"Authorization": "Bearer " + bad}, timeout=10)
    assert r.status_code == 401
    # a password in a body
    r = requests.post(m.url("/v1/auth/users"), json={"username": "dave", "password": PASSWORD},
                      timeout=10)
    assert r.status_code == 201, r.text
    r = requests.post(m.url("/v1/auth/token"), json={"username": "dave", "password": PASSWORD},
                      timeout=10)
    assert r.status_code == 200, r.text
    issued = r.json()["access_token"]
    assert requests.get(m.url("/metrics"), timeout=10).status_code == 200
    assert requests.get(m.url("/nowhere"), timeout=10).status_code == 404
    c.close()
    return [token, qtoken, bad, issued, PASSWORD, SECRET_BODY]


def assert_no_secrets(text, secrets):
    for s in secrets:
        assert s not in text, "a secret appears in the log: %s..." % s[:12]
        # nor a long piece of a token (a signature alone is a secret too)
        for part in s.split("."):
            if len(part) >= 16:
                assert part not in text, "a token part appears in the log"


def test_access_log_text(momd_factory):
    m = momd_factory(env={"MOM_ACCESS_LOG": "1"})
    secrets = exercise(m)
    time.sleep(0.2)
    text = m.stderr_since_start()
    assert_no_secrets(text, secrets)
    lines = access_lines_text(text)
    assert len(lines) >= 9, lines
    pub = [l for l in lines if 'method="POST"' in l and 'path="/v1/queues/lq/messages"' in l]
    assert len(pub) == 1, lines
    p = pub[0]
    assert 'node="1"' in p and "status=201" in p and 'user="alice"' in p, p
    assert re.search(r" duration_us=\d+ ", p) and re.search(r" bytes=[1-9]\d* ", p), p
    q = [l for l in lines if "access_token" in l]
    assert len(q) == 1 and 'path="/v1/queues/lq?access_token=REDACTED&x=1"' in q[0], q
    # evhtp hands the query over percent-decoded; either way it is redacted
    enc = [l for l in lines if "Access%5FToken" in l or "Access_Token" in l]
    assert len(enc) == 1 and re.search(r"Access(%5F|_)Token=REDACTED", enc[0]), enc
    assert any('path="/nowhere"' in l and "status=404" in l and 'user="-"' in l for l in lines)
    assert any('path="/metrics"' in l and "status=200" in l for l in lines)


def test_json_log_lines_parse(momd_factory):
    m = momd_factory(env={"MOM_ACCESS_LOG": "1", "MOM_LOG_FORMAT": "json"})
    secrets = exercise(m)
    time.sleep(0.2)
    m.stop()
    text = m.stderr_since_start()
    assert_no_secrets(text, secrets)
    records = []
    for line in text.splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)  # every line, start-up and shutdown included
        assert {"time", "level", "msg"} <= rec.keys(), rec
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", rec["time"]), rec
        records.append(rec)
    assert any(r["msg"] == "stopped" for r in records)
    access = [r for r in records if r["msg"] == "access"]
    assert len(access) >= 9
    pub = [r for r in access if r["method"] == "POST" and r["path"] == "/v1/queues/lq/messages"]
    assert len(pub) == 1
    p = pub[0]
    assert p["node"] == "1" and p["status"] == 201 and p["user"] == "alice", p
    assert isinstance(p["duration_us"], int) and p["bytes"] > 0
    login = [r for r in access if r["path"] == "/v1/auth/token"]
    assert len(login) == 1 and login[0]["status"] == 200


def test_no_access_lines_by_default(momd_factory):
    m = momd_factory()
    Client(m, mint("alice")).create_queue("quiet")
    time.sleep(0.1)
    assert access_lines_text(m.stderr_since_start()) == []


def test_bad_log_format_is_refused(tmp_path):
    p = subprocess.run([MOMD_BIN, "--data-dir", str(tmp_path / "d"), "--http-addr",
                        "127.0.0.1:0", "--peer-addr", "127.0.0.1:0", "--log-format", "xml"],
                       capture_output=True, timeout=20)
    assert p.returncode == 2
    assert b"MOM_LOG_FORMAT" in p.stderr
