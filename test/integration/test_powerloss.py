# Simulated power loss on a single node (test/chaos/powercut.c preloaded,
# test/chaos/powercut.py's cut after kill -9): what was acknowledged under
# fsync=always is there after the restart. Regression: the storage
# directories made at first start (group-N, its log/) were never fsync'd
# into their parents, so a power loss soon after the first start took the
# whole storage with it and the node came back empty (404 for the queue).
# SPDX-License-Identifier: MIT

import os
import sys

import pytest

from conftest import Client, Momd, mint

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "chaos"))
import powercut  # noqa: E402


@pytest.fixture
def powered(tmp_path):
    if not os.path.exists(powercut.LIB):
        pytest.skip("powercut.so not built (make integration builds it)")
    data = tmp_path / "data"
    data.mkdir()
    journal = str(tmp_path / "journal")
    env = {"LD_PRELOAD": powercut.LIB, "MOM_FSYNC": "always",
           "ASAN_OPTIONS": "abort_on_error=0:detect_leaks=1:verify_asan_link_order=0"}
    env.update(powercut.env(str(data), journal))
    m = Momd(data, tmp_path / "stderr", env=env)
    m.start()
    yield m, journal
    m.stop()
    assert m.sanitizer_report() is None, m.sanitizer_report()


def test_acknowledged_survives_power_loss_after_first_start(powered):
    m, journal = powered
    c = Client(m, mint("alice"))
    c.create_queue("q")
    c.create_topic("t")
    for i in range(5):
        c.publish("q", "m%d" % i)
        c.publish_topic("t", "t%d" % i)
    m.kill9()
    stats = powercut.cut(m.data_dir, journal)
    m.start()
    got = c.receive("q", max=10)
    assert sorted(x["body"] for x in got) == ["m%d" % i for i in range(5)], stats
    msgs = c.read_topic("t", **{"from": "earliest"})["messages"]
    assert [x["body"] for x in msgs] == ["t%d" % i for i in range(5)]


def test_power_loss_loses_only_unacknowledged(powered):
    m, journal = powered
    c = Client(m, mint("alice"))
    c.create_queue("q")
    for round_ in range(3):
        for i in range(20):
            c.publish("q", "r%d-%d" % (round_, i))
        m.kill9()
        powercut.cut(m.data_dir, journal)
        m.start()
    got = c.receive("q", max=100)
    assert len(got) == 60
