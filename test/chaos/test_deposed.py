# A leader that loses its leadership answers the writes it accepted with
# 503 at once (outcome unknown: they may still commit under the next
# leader), and a follower that learns a newer term does the same for the
# writes it forwarded to the old leader — neither waits out the commit
# timeout (replication/node.c, leadership_check). The commit timeout is set
# to 120 s here, so an answer within a request's 60 s can only come from
# that path. Retried with the same Idempotency-Key after the heal, each
# write is stored exactly once.
# SPDX-License-Identifier: MIT

import os
import sys
import threading
import time

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import ChaosCluster  # noqa: E402
from conftest import MomdStartError  # noqa: E402
from faults_net import attach  # noqa: E402
from test_netfault import agreed_leader, auth, publish, publish_until_acked, stop, wait_depth  # noqa: E402,E501


def test_deposed_leader_and_its_followers_answer_503_before_the_commit_timeout(tmp_path):
    c = ChaosCluster(tmp_path, n=3, env={"MOM_COMMIT_TIMEOUT_MS": "120000"})
    attach(c)
    try:
        c.start()
    except MomdStartError as e:
        stop(c)
        pytest.fail(str(e), pytrace=False)
    try:
        li = agreed_leader(c, range(3))
        f = (li + 1) % 3
        r = requests.put(c.nodes[li].url("/v1/queues/q"), json={}, headers=auth(), timeout=10)
        assert r.status_code == 201, r.text
        publish_until_acked(c, [li], b"before", "k0")
        c.net.partition([{li}, {i for i in range(3) if i != li}])
        got = {}

        def write(i, body, key):
            try:
                got[key] = publish(c.nodes[i], body, key, timeout=60)
            except requests.RequestException as e:  # the old behaviour: 120 s
                got[key] = e

        threads = [threading.Thread(target=write, args=(li, b"on-old-leader", "k1")),
                   threading.Thread(target=write, args=(f, b"via-follower", "k2"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for key in ("k1", "k2"):
            r = got[key]
            assert isinstance(r, requests.Response), (key, r)
            assert r.status_code == 503, (key, r.status_code, r.text)
            assert r.json()["error"]["code"] == "unavailable", r.text
            assert "may still commit" in r.json()["error"]["message"], r.text
        c.net.heal()
        agreed_leader(c, range(3))
        publish_until_acked(c, range(3), b"on-old-leader", "k1")
        publish_until_acked(c, range(3), b"via-follower", "k2")
        for m in c.nodes:
            wait_depth(m, 3)
    finally:
        stop(c)
