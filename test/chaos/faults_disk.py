# Storage and clock faults on one member at a time:
#   corrupt     the member is killed, one of its files damaged — a flipped
#               byte in a log segment, an older segment cut in the middle,
#               a flipped byte in or a cut of its snapshot, a garbled
#               raft-state — and restarted: it must move the storage aside,
#               catch up from the others and lose nothing (small segments
#               and frequent snapshots so that there are some to damage)
#   disk-full   writes, fallocate and creates of one member fail with
#               ENOSPC (powercut.so's POWERCUT_ENOSPC) for 1-4 s; then the
#               member is restarted, as an operator would after freeing space
#   clock-jump  one member's wall clock jumps (libfaketime, monotonic time
#               untouched) by -10 min .. +10 min for 2-6 s, then back
# SPDX-License-Identifier: MIT

import glob
import os
import time

import powercut
import requests
from cluster import mint
from scenarios import register

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
HEAL_TIMEOUT_S = 60.0


def caught_up(cluster, i, timeout=HEAL_TIMEOUT_S):
    """Seconds until member i+1 votes again and has applied what the
    leader had committed when it started waiting; None when it did not."""
    start = time.monotonic()
    target = None
    while time.monotonic() - start < timeout:
        try:
            views = [requests.get(cluster.nodes[k].url("/v1/cluster"), timeout=2,
                                  headers={"Authorization": "Bearer " + mint("chaos")}).json()
                     for k in range(cluster.n) if cluster.running(k)]
            lead = [v for v in views if v["role"] == "leader"]
            if target is None and lead:
                target = lead[0]["commit_index"]
            mine = [v for v in views if v["node_id"] == i + 1]
            if target is not None and mine and not mine[0]["abstaining"] and \
                    mine[0]["applied_index"] >= target:
                return time.monotonic() - start
        except (requests.RequestException, ValueError, KeyError):
            pass
        time.sleep(0.2)
    return None


def _flip(path, rng, lo=0):
    size = os.path.getsize(path)
    if size <= lo:
        return None
    off = rng.randrange(lo, size)
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ (1 << rng.randrange(8))]))
    return "flipped a bit at byte %d of %s" % (off, os.path.basename(path))


def _cut(path, rng, lo=0):
    size = os.path.getsize(path)
    if size <= lo + 1:
        return None
    at = rng.randrange(lo + 1, size)
    os.truncate(path, at)
    return "cut %s at %d of %d bytes" % (os.path.basename(path), at, size)


def damage(cluster, i, rng):
    """Damages one file of member i+1's storage (it is stopped); says what."""
    g = cluster.group_dir(i)
    if g is None:
        return None
    segs = sorted(glob.glob(os.path.join(g, "log", "*.seg")))
    snaps = sorted(glob.glob(os.path.join(g, "snapshot-*.snap")))
    state = os.path.join(g, "raft-state")
    choices = []
    if len(segs) >= 2:
        choices += [lambda: _flip(rng.choice(segs[:-1]), rng, 32),
                    lambda: _cut(rng.choice(segs[:-1]), rng, 32)]
    if segs:
        choices.append(lambda: _flip(segs[-1], rng, 32))
    if snaps:
        choices += [lambda: _flip(snaps[-1], rng), lambda: _cut(snaps[-1], rng)]
    if os.path.exists(state):
        choices.append(lambda: _flip(state, rng))
    rng.shuffle(choices)
    for c in choices:
        what = c()
        if what:
            return what
    return None


def prepare_corrupt(cluster):
    for m in cluster.nodes:
        m.env.update({"MOM_WAL_SEGMENT_MB": "1", "MOM_SNAPSHOT_ENTRIES": "2000"})


def corrupt(ctx):
    """one member's log segment, snapshot or raft-state damaged while it is stopped"""
    c = ctx.cluster
    while ctx.sleep(ctx.rng.uniform(2.0, 4.0)):
        i = ctx.rng.randrange(c.n)
        c.kill9(i)
        what = damage(c, i, ctx.rng)
        c.start(i)
        healed = caught_up(c, i)
        ctx.log("node %d: %s; %s" % (i + 1, what or "nothing to damage",
                                      "caught up in %.1f s" % healed if healed is not None
                                      else "NOT caught up within %.0f s" % HEAL_TIMEOUT_S))
        if healed is None:
            raise AssertionError("node %d did not heal after: %s" % (i + 1, what))


def _flag(cluster, i):
    return os.path.join(cluster.tmp, "node%d.full" % (i + 1))


def prepare_full(cluster):
    if not os.path.exists(powercut.LIB):
        raise OSError("%s not built (make chaos builds it)" % powercut.LIB)
    for i in range(cluster.n):
        os.makedirs(cluster.data_dir(i), exist_ok=True)
        journal = os.path.join(cluster.tmp, "node%d.powercut" % (i + 1))
        cluster.preload(i, powercut.LIB, powercut.env(cluster.data_dir(i), journal,
                                                      enospc=_flag(cluster, i)))


def disk_full(ctx):
    """one member's disk full (ENOSPC) for 1-4 s, then restarted"""
    c = ctx.cluster
    while ctx.sleep(ctx.rng.uniform(0.5, 2.0)):
        i = ctx.rng.randrange(c.n)
        open(_flag(c, i), "w").close()
        hold = ctx.rng.uniform(1.0, 4.0)
        ctx.log("node %d disk full for %.1f s" % (i + 1, hold))
        ctx.sleep(hold)
        os.unlink(_flag(c, i))
        c.nodes[i].stop()
        c.start(i)


def heal_full(ctx):
    for i in range(ctx.cluster.n):
        if os.path.exists(_flag(ctx.cluster, i)):
            os.unlink(_flag(ctx.cluster, i))


def _clock(cluster, i):
    return os.path.join(cluster.tmp, "node%d.faketime" % (i + 1))


def _set_clock(cluster, i, spec):
    tmp = _clock(cluster, i) + ".tmp"
    with open(tmp, "w") as f:
        f.write(spec + "\n")
    os.replace(tmp, _clock(cluster, i))


def prepare_clock(cluster):
    if not os.path.exists(FAKETIME_LIB):
        raise OSError("%s missing (Debian package libfaketime)" % FAKETIME_LIB)
    # libfaketime cannot be preloaded into a jemalloc build (make chaos
    # builds this one on glibc's malloc)
    binary = os.environ.get("MOMD_LIBC_MALLOC") or os.path.join(
        os.path.dirname(cluster.nodes[0].binary), "chaos", "momd_libc_malloc")
    if not os.path.exists(binary):
        raise OSError("%s not built (make chaos builds it)" % binary)
    for i in range(cluster.n):
        cluster.nodes[i].binary = binary
        _set_clock(cluster, i, "+0")
        cluster.preload(i, FAKETIME_LIB, {
            "FAKETIME_TIMESTAMP_FILE": _clock(cluster, i),
            "FAKETIME_CACHE_DURATION": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_DONT_RESET": "1",
        })


def clock_jump(ctx):
    """one member's wall clock jumps by -10 min .. +10 min for 2-6 s"""
    c = ctx.cluster
    while ctx.sleep(ctx.rng.uniform(0.5, 2.0)):
        i = ctx.rng.randrange(c.n)
        jump = ctx.rng.choice((-1, 1)) * ctx.rng.choice((5, 30, 120, 600))
        hold = ctx.rng.uniform(2.0, 6.0)
        _set_clock(c, i, "%+ds" % jump)
        ctx.log("node %d clock %+d s for %.1f s" % (i + 1, jump, hold))
        ctx.sleep(hold)
        _set_clock(c, i, "+0")
    time.sleep(1.5)  # the cached offsets expire


def heal_clock(ctx):
    for i in range(ctx.cluster.n):
        _set_clock(ctx.cluster, i, "+0")


register("corrupt", corrupt, prepare=prepare_corrupt)
register("disk-full", disk_full, prepare=prepare_full, heal=heal_full)
register("clock-jump", clock_jump, prepare=prepare_clock, heal=heal_clock)
