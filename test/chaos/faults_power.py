# Simulated power loss (powercut.c, powercut.py): every member runs with the
# interposer journaling its data directory; a power loss stops the member
# and every process it forked (the snapshot writer) with SIGKILL, cuts its
# directory back to what was durable, and restarts it after a while.
#   power-one      one member at a time
#   power-minority two of five members at once
#   power-all      every member at once
# SPDX-License-Identifier: MIT

import os
import signal
import time

import powercut
from scenarios import register


def _children(pid):
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            kids.append(int(name))
    return kids


def _gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


def power_off(cluster, i):
    """SIGKILL member i+1 and its children at the same instant (it is
    stopped first so that it forks nothing new), then cut its directory."""
    pid = cluster.pid(i)
    if pid is not None:
        os.kill(pid, signal.SIGSTOP)
        kids = _children(pid)
        for k in kids:
            os.kill(k, signal.SIGKILL)
        cluster.kill9(i)
        deadline = time.monotonic() + 10
        while not all(_gone(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.01)
    return powercut.cut(cluster.data_dir(i), _journal(cluster, i))


def _journal(cluster, i):
    return os.path.join(cluster.tmp, "node%d.powercut" % (i + 1))


def prepare(cluster):
    if not os.path.exists(powercut.LIB):
        raise OSError("%s not built (make chaos builds it)" % powercut.LIB)
    for i in range(cluster.n):
        os.makedirs(cluster.data_dir(i), exist_ok=True)
        cluster.preload(i, powercut.LIB, powercut.env(cluster.data_dir(i), _journal(cluster, i)))


def _outages(ctx, how_many):
    c = ctx.cluster
    while ctx.sleep(ctx.rng.uniform(1.0, 3.0)):
        victims = sorted(ctx.rng.sample(range(c.n), how_many))
        lost = [power_off(c, i) for i in victims]
        ctx.log("power loss on node(s) %s: %s" % (
            ",".join(str(i + 1) for i in victims),
            "; ".join("%d entries undone, %d bytes lost" % (s["entries_undone"], s["bytes_lost"])
                      for s in lost)))
        ctx.sleep(ctx.rng.uniform(0.3, 2.0))
        for i in victims:
            c.start(i)


def power1(ctx):
    """power loss (unsynced writes and directory entries lost) on one member"""
    _outages(ctx, 1)


def power_minority(ctx):
    """power loss on two of five members at once"""
    _outages(ctx, 2)


def power_all(ctx):
    """power loss on every member at once"""
    _outages(ctx, ctx.cluster.n)


register("power-one", power1, prepare=prepare, ci=False)  # the short run has power-minority
register("power-minority", power_minority, nodes=5, prepare=prepare)
register("power-all", power_all, prepare=prepare)
