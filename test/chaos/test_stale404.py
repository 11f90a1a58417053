# Reproducer for a stale 404 seen once by hand: a follower of a 3-node
# cluster, cut off with its bytes held (netfault "stall") for about 4 s —
# long enough for its peer connections to be dropped by the keepalive
# (replication/peer.c, KEEPALIVE_DEAD_MS) — answered a receive for a queue
# the majority created after the cut with 404 queue_not_found. The
# contract (docs/architecture.md): a node that has not caught up answers
# 503, never 404. Each try cuts a follower, creates a new queue on the
# majority, fires receives, publishes and GETs at the cut-off node across
# the keepalive drop, heals and fires again while it catches up. Every
# answer must be 503 or a success; the first 404 fails the test with the
# request that got it. Tries alternate between the two kinds of cut: every
# third one drops the connections (netfault "reset": RST, new ones refused)
# instead of holding the bytes.
# STALE404_TRIES (default 3) sets the number of tries; STALE404_CUT_S the
# length of each cut (default 4.5 s).
# SPDX-License-Identifier: MIT

import os
import sys
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_netfault import agreed_leader, auth, start, stop  # noqa: E402

TRIES = int(os.environ.get("STALE404_TRIES", "3"))
CUT_S = float(os.environ.get("STALE404_CUT_S", "4.5"))


def answer(method, url, **kw):
    """The status and body of one request, or None when the node did not
    answer in time (a held node may not)."""
    try:
        r = requests.request(method, url, headers=auth(), timeout=8, **kw)
    except requests.RequestException:
        return None
    return r.status_code, r.text


def check(seen, where, what, got, ok):
    if got is None:
        return
    seen.append((where, what, got[0]))
    assert got[0] in ok, "try %s: %s answered %d: %s" % (where, what, got[0], got[1])


def probe(node, q, seen, where):
    """One round of the requests that must never see a stale 404."""
    check(seen, where, "receive " + q,
          answer("POST", node.url("/v1/queues/%s/receive" % q)), (200, 503))
    check(seen, where, "GET " + q, answer("GET", node.url("/v1/queues/%s" % q)), (200, 503))
    check(seen, where, "publish " + q,
          answer("POST", node.url("/v1/queues/%s/messages" % q), data=b"x"), (201, 503))


def create_on(c, among, q, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for i in among:
            got = answer("PUT", c.nodes[i].url("/v1/queues/" + q), json={})
            if got and got[0] in (200, 201):
                return
            assert got is None or got[0] == 503, got
        time.sleep(0.05)
    raise AssertionError("no node of %r created %s" % (among, q))


def test_cut_off_follower_never_answers_404_for_a_queue_created_after_the_cut(tmp_path):
    c = start(tmp_path, 3)
    seen = []
    try:
        for t in range(TRIES):
            li = agreed_leader(c, range(3))
            f = (li + 1 + t % 2) % 3
            rest = [i for i in range(3) if i != f]
            node = c.nodes[f]
            c.net.partition([{f}, set(rest)], mode="reset" if t % 3 == 2 else "stall")
            q = "q%d" % t
            create_on(c, rest, q)
            cut_end = time.monotonic() + CUT_S
            while time.monotonic() < cut_end:  # across the keepalive drop
                probe(node, q, seen, "%d cut" % t)
                time.sleep(0.02)
            c.net.heal()
            caught_up = time.monotonic() + 30
            while True:  # while it catches up
                got = answer("POST", node.url("/v1/queues/%s/receive" % q))
                check(seen, "%d healed" % t, "receive " + q, got, (200, 503))
                if got and got[0] == 200:
                    break
                assert time.monotonic() < caught_up, "try %d: node %d never caught up" % (t, f)
                probe(node, q, seen, "%d healed" % t)
        # the cut-off node did answer (503s), not only time out
        assert any(s[2] == 503 for s in seen), seen[:20]
    finally:
        stop(c)
