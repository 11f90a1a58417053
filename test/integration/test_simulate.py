# deploy/demo/simulate against a three-node cluster for 10 s: it exits 0,
# and what it says it sent and consumed is what the broker holds (every
# order consumed and the queue empty on every node, each magazine's offsets
# equal to the articles sent, each subscription caught up).
# SPDX-License-Identifier: MIT

import os
import re
import subprocess

import pytest

from conftest import REPO, Client, mint
from test_cluster import Cluster

SIMULATE = os.path.join(REPO, "deploy", "demo", "simulate")


@pytest.fixture
def cluster3(tmp_path):
    c = Cluster(tmp_path)
    c.start()
    yield c
    c.stop_all()
    problems = [p for p in (m.sanitizer_report() for m in c.nodes) if p]
    assert not problems, "\n".join(problems)


def field(out, key):
    m = re.search(r"^%s:(.*)$" % key, out, re.M)
    assert m, "no %r line in:\n%s" % (key, out)
    return dict(kv.split("=", 1) for kv in m.group(1).split())


def test_simulation_counts_match_the_broker(cluster3):
    cluster3.leader()
    token = mint("simulador")
    urls = ",".join("http://" + m.http for m in cluster3.nodes)
    p = subprocess.run(["bash", SIMULATE, "--url", urls, "--token", token, "--rate", "20",
                        "--seconds", "10"], capture_output=True, text=True, timeout=120)
    out = p.stdout
    assert p.returncode == 0, out + p.stderr
    assert "simulate: ok" in out
    sent, consumed = field(out, "sent"), field(out, "consumed")
    broker, missing = field(out, "broker"), field(out, "missing")
    per_magazine = field(out, "sent-per-magazine")
    assert missing == {"orders": "0", "articles": "0"}
    assert int(sent["orders"]) > 0 and int(sent["articles"]) > 0, out
    assert consumed["orders"] == sent["orders"] and consumed["articles"] == sent["articles"]
    assert sum(int(v) for v in per_magazine.values()) == int(sent["articles"])
    queue, sub = broker["queue"], broker["subscription"]
    assert broker["remaining"] == "0"
    for i in range(3):
        c = Client(cluster3.nodes[i], token)
        q = c.get_queue(queue)
        assert (q["depth"], q["in_flight"]) == (0, 0), q
        for magazine, n in per_magazine.items():
            t = c.get_topic(magazine)
            assert t["next_offset"] == int(n), (magazine, t)
            s = c.get("/v1/topics/%s/subscriptions/%s" % (magazine, sub)).json()
            assert (s["cursor"], s["lag"]) == (int(n), 0), s


def test_simulate_usage_errors():
    p = subprocess.run(["bash", SIMULATE], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "usage" in p.stderr
    p = subprocess.run(["bash", SIMULATE, "--url", "http://127.0.0.1:1", "--token", "x",
                        "--rate", "fast"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
