# The power-loss interposer (powercut.c) and its cut (powercut.py): a child
# process under LD_PRELOAD writes, syncs, renames, unlinks and makes
# directories the way momd does, is killed with SIGKILL, and the cut must
# leave exactly what was durable. Needs build/powercut.so (make chaos
# builds it).
# SPDX-License-Identifier: MIT

import errno
import os
import subprocess
import sys
import textwrap

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import powercut  # noqa: E402

CHILD = textwrap.dedent('''
    import os, signal, sys
    root = sys.argv[1]
    def dsync(d):
        fd = os.open(d + "/.", os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(fd)
        os.close(fd)
    def put(path, data, sync=True, flags=0):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | flags, 0o644)
        os.write(fd, data)
        if sync:
            os.fsync(fd)
        os.close(fd)
    a, b = os.path.join(root, "a"), os.path.join(root, "b")
    os.mkdir(root + "/x"); os.mkdir(root + "/x/y")
    os.mkdir(a); os.mkdir(b); dsync(root + "/x/y/../..")  # as wal.c names a parent
    # data: synced, then an unsynced append
    fd = os.open(a + "/log", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"AAAA"); os.fdatasync(fd); dsync(a)
    os.write(fd, b"BBBB")
    # preallocated: sized and synced, one synced and one unsynced pwrite
    fd2 = os.open(a + "/seg", os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd2, 100); os.fdatasync(fd2); dsync(a)
    os.pwrite(fd2, b"XY", 10); os.fdatasync(fd2)
    os.pwrite(fd2, b"ZZ", 20)
    os.ftruncate(fd2, 150)  # extended, never synced
    # O_DSYNC: every write durable
    put(a + "/dsync", b"", sync=False, flags=os.O_DSYNC); dsync(a)
    fd3 = os.open(a + "/dsync", os.O_WRONLY | os.O_DSYNC)
    os.write(fd3, b"durable")
    # the atomic replace and an unlink, without (a) and with (b) the
    # directory fsync after them
    for d in (a, b):
        put(d + "/state", b"old"); put(d + "/gone", b"g"); dsync(d)
    for d in (a, b):
        put(d + "/state.tmp", b"new")
        os.rename(d + "/state.tmp", d + "/state")
        os.unlink(d + "/gone")
    dsync(b)
    # a file synced but its create not: lost; a directory never synced: lost
    put(a + "/orphan", b"o")
    os.mkdir(root + "/c"); put(root + "/c/f", b"f"); dsync(root + "/c")
    # snapshot-style: written by a forked child, renamed, directory synced
    pid = os.fork()
    if pid == 0:
        put(b + "/snap.tmp", b"snapshot")
        os.rename(b + "/snap.tmp", b + "/snap")
        dsync(b)
        os._exit(0)
    os.waitpid(pid, 0)
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)
''')


@pytest.fixture
def lib():
    if not os.path.exists(powercut.LIB):
        pytest.skip("build/powercut.so not built (make chaos builds it)")
    return powercut.LIB


def run_child(tmp_path, lib, extra_env=None, script=CHILD):
    root = tmp_path / "root"
    root.mkdir()
    journal = str(tmp_path / "journal")
    env = dict(os.environ, LD_PRELOAD=lib, **powercut.env(str(root), journal))
    env.update(extra_env or {})
    p = subprocess.run([sys.executable, "-c", script, str(root)], env=env,
                       capture_output=True, timeout=60)
    return root, journal, p


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_cut_leaves_exactly_what_was_durable(tmp_path, lib):
    root, journal, p = run_child(tmp_path, lib)
    assert p.returncode == -9 and p.stdout == b"ready\n", p.stderr
    # before the cut everything the process did is visible
    assert read(root / "a" / "log") == b"AAAABBBB"
    assert (root / "a" / "orphan").exists() and (root / "c").exists()
    stats = powercut.cut(str(root), journal)
    a, b = root / "a", root / "b"
    assert read(a / "log") == b"AAAA"
    seg = read(a / "seg")
    assert len(seg) == 100 and seg[10:12] == b"XY" and seg[20:22] == b"\0\0"
    assert read(a / "dsync") == b"durable"
    assert read(a / "state") == b"old" and not (a / "state.tmp").exists()
    assert read(b / "state") == b"new" and not (b / "state.tmp").exists()
    assert read(a / "gone") == b"g" and not (b / "gone").exists()
    assert not (a / "orphan").exists()
    assert not (root / "c").exists()
    assert read(b / "snap") == b"snapshot"
    assert stats["entries_undone"] >= 5 and stats["bytes_lost"] >= 4 + 2 + 50
    # the journal is emptied: a second cut changes nothing
    assert powercut.cut(str(root), journal)["entries_undone"] == 0
    assert read(a / "log") == b"AAAA"


def test_untracked_files_are_left_alone(tmp_path, lib):
    script = textwrap.dedent('''
        import os, signal, sys
        out = sys.argv[1] + "-outside"
        fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"kept")
        os.kill(os.getpid(), signal.SIGKILL)
    ''')
    root, journal, p = run_child(tmp_path, lib, script=script)
    assert p.returncode == -9
    powercut.cut(str(root), journal)
    assert read(str(root) + "-outside") == b"kept"


def test_disk_full_flag(tmp_path, lib):
    flag = tmp_path / "full"
    flag.write_text("")
    script = textwrap.dedent('''
        import errno, os, sys
        root = sys.argv[1]
        try:
            os.open(root + "/new", os.O_WRONLY | os.O_CREAT, 0o644)
            print("created")
        except OSError as e:
            print(errno.errorcode[e.errno])
        fd = os.open(root + "/old", os.O_WRONLY)
        try:
            os.write(fd, b"x")
            print("written")
        except OSError as e:
            print(errno.errorcode[e.errno])
        os.remove(sys.argv[2])
        os.write(fd, b"y")
        print("written")
    ''')
    root = tmp_path / "root"
    root.mkdir()
    (root / "old").write_text("")
    env = dict(os.environ, LD_PRELOAD=lib,
               **powercut.env(str(root), str(tmp_path / "journal"), enospc=str(flag)))
    p = subprocess.run([sys.executable, "-c", script, str(root), str(flag)], env=env,
                       capture_output=True, timeout=60, text=True)
    assert p.stdout.split() == [errno.errorcode[errno.ENOSPC]] * 2 + ["written"], p.stderr
    assert read(root / "old") == b"y"
