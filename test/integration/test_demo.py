# MOM_DEMO=1: the prototype's magazines, queues and admin user are created
# once per cluster as replicated Commands, never twice (restarts, other
# nodes, a new leader), the admin's password is MOM_DEMO_PASSWORD or
# generated and logged once, and the admin is an admin.
# SPDX-License-Identifier: MIT

import re
import time

import pytest
import requests

from conftest import Client, MomdStartError, mint, wait_until
from test_cluster import Cluster

MAGAZINES = ["BBC", "CNN", "El_tiempo", "Minuto_30"]
TOPICS = sorted(MAGAZINES + ["t1", "t3"])
CREATING = "demo data: creating"
PASSWORD_RE = re.compile(r"generated password ([0-9a-f]{32})")


def login(momd, password):
    r = requests.post(momd.url("/api/auth/login"),
                      json={"username": "admin", "password": password}, timeout=10)
    return r


def demo_ready(momd, password):
    r = login(momd, password)
    if r.status_code != 200:
        return None
    return Client(momd, r.json()["token"])


def topic_counts(c):
    return {t["name"]: (t["owner"], t["next_offset"]) for t in c.get("/v1/topics").json()["topics"]}


def check_demo_data(c):
    counts = topic_counts(c)
    assert sorted(counts) == TOPICS
    for name in MAGAZINES:
        owner, n = counts[name]
        assert owner == "admin" and 3 <= n <= 5, (name, counts[name])
    assert counts["t1"] == ("admin", 0) and counts["t3"] == ("admin", 0)
    assert c.get("/colas").json() == {"colas": ["q1", "q2"]}
    articles = c.get("//api/topicos/CNN/mensajes").json()["mensajes"]
    assert all(a["emisor"] == "admin" and a["contenido"] for a in articles)
    return counts


def test_demo_once_on_one_node_with_its_password(momd_factory):
    m = momd_factory(env={"MOM_DEMO": "1", "MOM_DEMO_PASSWORD": "demo-clave-1"})
    c = wait_until(lambda: demo_ready(m, "demo-clave-1"), timeout=10, what="demo admin")
    counts = check_demo_data(c)
    assert "demo-clave-1" not in m.stderr_text()
    assert m.stderr_text().count(CREATING) == 1
    # the demo admin is an admin: it may delete what others own
    Client(m, mint("ana")).create_queue("de-ana")
    assert c.delete("/v1/queues/de-ana").status_code == 204
    # a deleted magazine stays deleted, and nothing is made twice on restart
    assert c.delete("/api/topicos/t3").status_code == 200
    m.restart()
    c = wait_until(lambda: demo_ready(m, "demo-clave-1"), timeout=10, what="admin after restart")
    time.sleep(1.5)  # more than a demo check interval on the ready leader
    after = topic_counts(c)
    del counts["t3"]
    assert after == counts
    assert m.stderr_text().count(CREATING) == 1


def test_demo_generated_password_is_logged_once_and_differs(momd_factory):
    passwords = []
    for _ in range(2):
        m = momd_factory(env={"MOM_DEMO": "1"})
        found = wait_until(lambda: PASSWORD_RE.search(m.stderr_text()), timeout=10,
                           what="generated password in the log")
        password = found.group(1)
        assert m.stderr_text().count(password) == 1
        c = wait_until(lambda: demo_ready(m, password), timeout=10, what="demo admin")
        check_demo_data(c)
        assert login(m, "admin").status_code == 401
        passwords.append(password)
    assert passwords[0] != passwords[1]


def test_no_demo_without_the_setting(momd_factory):
    m = momd_factory()
    c = Client(m, mint("ana"))
    time.sleep(1.5)
    assert c.get("/v1/topics").json()["topics"] == []
    assert CREATING not in m.stderr_text()


def test_demo_password_must_be_valid(momd_factory):
    m = momd_factory(env={"MOM_DEMO": "1", "MOM_DEMO_PASSWORD": "short"}, start=False)
    with pytest.raises(MomdStartError):
        m.start()
    assert "MOM_DEMO_PASSWORD" in m.stderr_text()


def test_demo_once_per_cluster(tmp_path):
    cl = Cluster(tmp_path, extra_args=["--demo", "1", "--demo-password", "demo-clave-1"])
    try:
        cl.start()
        li = cl.leader()
        f = (li + 1) % 3
        c = wait_until(lambda: demo_ready(cl.nodes[f], "demo-clave-1"), timeout=15,
                       what="demo admin through a follower")
        counts = check_demo_data(c)
        for i in range(3):
            o = Client(cl.nodes[i], c.token)
            wait_until(lambda: topic_counts(o) == counts, timeout=10, what="replicated demo")
        assert sum(m.stderr_text().count(CREATING) for m in cl.nodes) == 1
        # a new leader does not make it again
        cl.nodes[li].stop()
        nl = cl.leader(among=[i for i in range(3) if i != li], timeout=20)
        time.sleep(1.5)
        assert topic_counts(Client(cl.nodes[nl], c.token)) == counts
        # nor does a full restart
        cl.nodes[li].start()
        for m in cl.nodes:
            m.stop()
        for m in cl.nodes:
            m.start()
        nl = cl.leader(timeout=20)
        time.sleep(1.5)
        c = wait_until(lambda: demo_ready(cl.nodes[nl], "demo-clave-1"), timeout=10,
                       what="admin after restart")
        for i in range(3):
            assert topic_counts(Client(cl.nodes[i], c.token)) == counts
        assert sum(m.stderr_text().count(CREATING) for m in cl.nodes) == 1
    finally:
        cl.stop_all()
    problems = [p for p in (m.sanitizer_report() for m in cl.nodes) if p]
    assert not problems, "\n".join(problems)
