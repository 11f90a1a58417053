# Repair instead of refusal: a follower whose storage is damaged while it is
# stopped (a flipped byte or a truncated middle in an older log segment, a
# corrupt snapshot, an unreadable raft-state file or one with a flipped
# digit, caught by its checksum) moves the storage aside,
# restarts as lost storage (abstaining), catches up from the others and then
# serves every acknowledged message, even as one of the only two members
# left. A single node with the same damage refuses to start and names the
# repair step.
# SPDX-License-Identifier: MIT

import glob
import os

import pytest

from conftest import Client, Momd, MomdStartError, mint
from test_cluster import Cluster, drain, wait_for

BODY_PAD = "x" * 60000  # 40 messages: about 2.4 MB, three 1 MB segments


@pytest.fixture
def make_cluster(tmp_path):
    made = []

    def make(**env):
        c = Cluster(tmp_path)
        for m in c.nodes:
            m.env.update({"MOM_WAL_SEGMENT_MB": "1"}, **env)
        made.append(c)
        return c.start()

    yield make
    for c in made:
        c.stop_all()
        problems = [p for p in (m.sanitizer_report() for m in c.nodes) if p]
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


def publish_acknowledged(c, n=40):
    """Publishes n messages with idempotency keys; returns the acknowledged bodies."""
    c.create_queue("q")
    acked = []
    for i in range(n):
        body = "m-%03d-%s" % (i, BODY_PAD)
        r = c.post("/v1/queues/q/messages", data=body.encode(),
                   headers={"Idempotency-Key": "k-%d" % i})
        assert r.status_code == 201, r.text
        acked.append(body)
    return acked


def group_dir(node):
    return os.path.join(node.data_dir, "group-0")


def segments(node):
    return sorted(glob.glob(os.path.join(group_dir(node), "log", "*.seg")))


def flip_byte_in_older_segment(node):
    segs = segments(node)
    assert len(segs) >= 2, segs
    path = segs[0]
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        f.seek(size // 2)
        b = f.read(1)
        f.seek(size // 2)
        f.write(bytes([b[0] ^ 0x40]))
    return path


def truncate_older_segment_middle(node):
    segs = segments(node)
    assert len(segs) >= 2, segs
    path = segs[0]
    os.truncate(path, os.path.getsize(path) // 2)
    return path


def corrupt_snapshot(node):
    snaps = sorted(glob.glob(os.path.join(group_dir(node), "snapshot-*.snap")))
    assert snaps, "no snapshot written"
    path = snaps[-1]
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        f.seek(size // 2)
        b = f.read(1)
        f.seek(size // 2)
        f.write(bytes([b[0] ^ 0x01]))
    return path


def garble_raft_state(node):
    path = os.path.join(group_dir(node), "raft-state")
    assert os.path.exists(path)
    with open(path, "w") as f:
        f.write("not a raft state\n")
    return path


def flip_digit_in_raft_state(node):
    """Another digit in the incarnation: still a well-formed raft-state,
    found only by its checksum (it used to be believed)."""
    path = os.path.join(group_dir(node), "raft-state")
    with open(path) as f:
        fields = f.read().split(" ")
    inc = fields[3]
    fields[3] = inc[:-1] + str((int(inc[-1]) + 1) % 10)
    with open(path, "w") as f:
        f.write(" ".join(fields))
    return path


DAMAGE = {
    "flipped byte in an older segment": (flip_byte_in_older_segment, {}),
    "truncated middle segment": (truncate_older_segment_middle, {}),
    "corrupt snapshot": (corrupt_snapshot, {"MOM_SNAPSHOT_ENTRIES": "10"}),
    "unreadable raft-state": (garble_raft_state, {}),
    "flipped digit in raft-state": (flip_digit_in_raft_state, {}),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_follower_heals_and_serves_every_acknowledged_message(make_cluster, damage):
    damage_fn, env = DAMAGE[damage]
    cluster = make_cluster(**env)
    li = cluster.leader()
    acked = publish_acknowledged(cluster.client(li))
    f = (li + 1) % 3
    fc = cluster.client(f)
    wait_for(lambda: fc.get_queue("q")["depth"] == len(acked), what="follower applied all")
    node = cluster.nodes[f]
    if env.get("MOM_SNAPSHOT_ENTRIES"):
        wait_for(lambda: glob.glob(os.path.join(group_dir(node), "snapshot-*.snap")),
                 what="a snapshot on the follower")
    assert node.stop() == 0
    damaged = damage_fn(node)

    node.start()  # starts instead of refusing
    log = node.stderr_since_start()
    aside = glob.glob(group_dir(node) + ".damaged-*")
    assert len(aside) == 1, (aside, log)
    assert "moved aside to %s" % aside[0] in log, log
    assert os.path.basename(damaged) in log, log  # what was wrong, by name
    # the damaged file is kept for inspection under the moved directory
    assert os.path.exists(damaged.replace(group_dir(node), aside[0])), damaged
    assert "damaged storage: abstaining from votes until caught up" in log, log
    if "raft-state" not in damage:
        # the cluster id survives the repair: the new storage is not fresh,
        # so it can only rejoin this cluster, never form a new one
        def cluster_id(d):
            with open(os.path.join(d, "raft-state")) as f:
                return f.read().split()[4]
        assert cluster_id(group_dir(node)) == cluster_id(aside[0])

    # it catches up and votes again
    leader_commit = cluster.cluster_view(li)["commit_index"]
    wait_for(lambda: (lambda v: not v["abstaining"] and v["applied_index"] >= leader_commit)(
        cluster.cluster_view(f)), timeout=30, what="the repaired follower caught up")
    assert fc.get_queue("q")["depth"] == len(acked)

    # the healed node is now needed for a majority: kill -9 the leader
    cluster.nodes[li].kill9()
    cluster.leader(timeout=20, among=[i for i in range(3) if i != li])
    got = drain(Client(node, mint("alice"), timeout=15), "q", len(acked), timeout=60)
    assert sorted(got) == sorted(acked)


def test_single_node_with_damaged_log_refuses_and_names_the_repair(tmp_path):
    m = Momd(tmp_path / "data", tmp_path / "momd.stderr", env={"MOM_WAL_SEGMENT_MB": "1"})
    m.start()
    try:
        publish_acknowledged(Client(m, mint("alice"), timeout=15))
        m.stop()
        path = flip_byte_in_older_segment(m)
        with pytest.raises(MomdStartError):
            m.start()
        log = m.stderr_since_start()
        assert os.path.basename(path) in log, log
        assert "refusing to start" in log and "mv %s" % group_dir(m) in log, log
        assert "restore it from a backup" in log, log
        assert not glob.glob(group_dir(m) + ".damaged-*")
        assert os.path.exists(path)  # nothing was moved or removed
        # and it keeps refusing: nothing was changed by the attempt
        with pytest.raises(MomdStartError):
            m.start()
    finally:
        m.stop()
