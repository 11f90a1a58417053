# The chaos runner's history check (run.py's check and outage_stats) on
# crafted histories: each violation it claims to find is found, and
# at-least-once redelivery of the same id is not mistaken for a duplicate.
# SPDX-License-Identifier: MIT

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import check, outage_stats  # noqa: E402


def test_clean_history_with_redelivery_and_unacked_attempt():
    attempted = {"a": "k1", "b": "k2", "c": "k3"}
    delivered = {"a": {"1"}, "b": {"2"}}  # "b" redelivered under its own id
    found = check(attempted, {"a", "b"}, delivered, [], [])
    assert not any(found.values()), found


def test_each_violation_is_found():
    attempted = {"a": "k1", "b": "k2", "c": "k3"}
    delivered = {"a": {"1", "7"}, "x": {"9"}}
    stale = [("receive", 404, "queue_not_found")]
    found = check(attempted, {"a", "b"}, delivered, stale, [("ack", 500, "")])
    assert found["lost"] == ["b"]
    assert found["duplicated"] == ["a"]
    assert found["unexpected"] == ["x"]
    assert found["stale_4xx"] == stale
    assert found["errors"] == [("ack", 500, "")]


def test_outage_stats():
    availability, longest = outage_stats([0.05, 0.15, 2.05], 0.0, 3.0)
    assert abs(longest - 1.9) < 1e-9
    assert abs(availability - 3 / 30) < 1e-9
    availability, longest = outage_stats([], 0.0, 1.0)
    assert availability == 0 and longest == 1.0
