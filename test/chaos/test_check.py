# The chaos runner's history check (check.py) on crafted histories: a clean
# one (with at-least-once redelivery after a timeout, an unacknowledged
# attempt and a subscription that moves forward) passes, and each property
# is caught by a history that breaks exactly it.
# SPDX-License-Identifier: MIT

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check import History, check, outage_stats  # noqa: E402

VT = 4.0


def clean():
    h = History()
    h.attempted = {"a": "k1", "b": "k2", "c": "k3"}
    h.acked = {"a", "b"}
    h.deliveries = [("a", "1", 0.0, 0.1, VT),
                    ("b", "2", 0.0, 0.1, VT),  # consumer crashed holding it
                    ("b", "2", 4.2, 4.3, VT)]  # redelivered after the timeout
    h.acks = [("1", 204, 0.2, 0.3), ("2", 204, 4.4, 4.5)]
    h.t_attempted = {"x", "y", "z"}
    h.t_acked = {"x": 0, "y": 1}
    h.t_acked_at = [(0.1, 0), (0.2, 1)]
    h.reads = [(0, 0, 100, 0.3, [(0, "x"), (1, "y")]),
               (1, 1, 100, 0.4, [(1, "y")]),
               (2, 0, 1, 0.5, [(0, "x")]),  # asked for one: not stale
               ("sub", 0, 0, 0.3, [(0, "x"), (1, "y")])]
    h.sub_reads = [(0.3, 0.35, 0), (0.6, 0.65, None)]
    h.sub_acks = [(1, 204, 0.4, 0.5)]
    h.cursors = [(0.1, 0.15, 0), (0.55, 0.58, 2), (0.7, 0.75, 2)]
    return h


def violations(h):
    return {k: v for k, v in check(h).items() if v}


def test_clean_history_passes():
    assert violations(clean()) == {}


def test_queue_lost():
    h = clean()
    h.acked.add("c")
    assert violations(h) == {"queue_lost": ["c"]}


def test_queue_duplicated_body_under_two_ids():
    h = clean()
    h.deliveries.append(("a", "9", 6.0, 6.1, VT))
    assert violations(h) == {"queue_duplicated": ["a"]}


def test_queue_unexpected_body():
    h = clean()
    h.deliveries.append(("ghost", "7", 1.0, 1.1, VT))
    assert violations(h) == {"queue_unexpected": ["ghost"]}


def test_queue_delivery_after_ack():
    h = clean()
    h.deliveries.append(("a", "1", 10.0, 10.1, VT))  # acked 204 at 0.3
    assert violations(h) == {"queue_after_ack": [("1", "a")]}


def test_queue_double_lease_within_visibility_timeout():
    h = clean()
    h.deliveries[2] = ("b", "2", 2.0, 2.1, VT)  # 2.1 s after the first lease
    h.acks[1] = ("2", 204, 2.2, 2.3)
    assert violations(h) == {"queue_double_lease": [("2", "b", 2.1)]}


def test_topic_lost():
    h = clean()
    h.t_acked["z"] = 2
    h.t_acked_at.append((0.9, 2))
    assert violations(h) == {"topic_lost": ["z"]}


def test_topic_duplicated_and_wrong_offset():
    h = clean()
    h.reads.append((1, 5, 100, 2.0, [(5, "x")]))
    assert violations(h) == {"topic_duplicated": ["x"]}
    h = clean()
    h.t_acked["y"] = 3  # answered 3, read at 1
    assert violations(h)["topic_duplicated"] == ["y"]


def test_topic_unexpected():
    h = clean()
    h.reads.append((1, 2, 100, 2.0, [(2, "ghost")]))
    assert violations(h) == {"topic_unexpected": ["ghost"]}


def test_topic_order_differs_between_nodes():
    h = clean()
    h.t_attempted.add("w")
    h.reads.append((2, 1, 100, 2.0, [(1, "w")]))
    found = violations(h)
    assert found["topic_order"] == [(1, ["w", "y"])]


def test_topic_stale_read():
    h = clean()
    h.reads.append((2, 1, 100, 0.9, []))  # offset 1 acked at 0.2, not seen
    assert violations(h) == {"topic_stale_read": [(2, 1, 1)]}


def test_cursor_back():
    h = clean()
    h.cursors.append((0.8, 0.85, 1))  # after 2
    assert violations(h) == {"topic_cursor_back": [(2, 1)]}
    h = clean()
    h.sub_reads.append((0.9, 0.95, 1))  # read starts at 1 after ack of 1
    assert violations(h) == {"topic_cursor_back": [(2, 1)]}


def test_stale_4xx_and_errors_reported():
    h = clean()
    h.stale.append(("receive", 404, "queue_not_found"))
    h.errors.append(("ack", 500, ""))
    assert violations(h) == {"stale_4xx": [("receive", 404, "queue_not_found")],
                             "errors": [("ack", 500, "")]}


def test_cut_off_2xx_reported_and_probe_counts_are_not_violations():
    h = clean()
    h.probes = {"503": 4, "after heal": 2, "unanswered": 1}
    assert violations(h) == {}
    h.cut_off = [(2, "cut-off read", 200, "{}")]
    assert violations(h) == {"cut_off": [(2, "cut-off read", 200, "{}")]}


def test_outage_stats():
    availability, longest = outage_stats([0.05, 0.15, 2.05], 0.0, 3.0)
    assert abs(longest - 1.9) < 1e-9
    assert abs(availability - 3 / 30) < 1e-9
    availability, longest = outage_stats([], 0.0, 1.0)
    assert availability == 0 and longest == 1.0
