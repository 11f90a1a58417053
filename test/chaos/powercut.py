# Simulated power loss, part 2: after every process that wrote under a
# directory with powercut.so preloaded is dead (kill -9), cut() reads the
# journal (format at the top of powercut.c) and puts the directory back in
# its last durable state:
#   1. entries: every create, mkdir, rename and unlink whose directory was
#      not fsync'd after it (for a rename: both directories) is undone, the
#      newest first; a replaced or unlinked file comes back from its backup
#   2. data: every file the journal knows is truncated to the size its last
#      successful fsync/fdatasync saw (a truncate counts at once), and every
#      write journaled after that sync began and below that size is zeroed
#      (momd only writes over zeros: appends into preallocated segments)
# Then the journal and backups are emptied: what is left is durable.
# SPDX-License-Identifier: MIT

import os
import shutil

LIB = os.environ.get("POWERCUT_LIB") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "build", "powercut.so")


def env(root, journal, enospc=None):
    """The environment that makes powercut.so journal a process's files."""
    e = {"POWERCUT_ROOT": os.path.realpath(root), "POWERCUT_JOURNAL": journal}
    if enospc:
        e["POWERCUT_ENOSPC"] = enospc
    return e


class Inode:
    def __init__(self, durable):
        self.durable = durable  # size made durable (None: unknown, keep)
        self.pending = []  # (offset, length) written since the last sync began


def _parse(journal):
    try:
        with open(journal) as f:
            text = f.read()
    except FileNotFoundError:
        return []
    lines = text.split("\n")
    # a line cut by the kill is not a record
    return [ln.split("\t") for ln in lines[:-1] if ln]


def plan(records):
    """(inodes: id -> Inode, undo: entry ops to undo, newest last)."""
    inodes = {}
    ops = []  # [kind, args, dirs, durable dirs]
    sync_begin = {}  # seq -> ("f", id, size, n pending) | ("d", dir, n ops)
    for rec in records:
        k = rec[0]
        if k == "F":
            if rec[1] not in inodes:
                inodes[rec[1]] = Inode(int(rec[2]))
        elif k == "C":
            inodes[rec[1]] = Inode(0)
            ops.append(["C", rec[1:], {os.path.dirname(rec[2])}, set()])
        elif k == "W":
            ino = inodes.setdefault(rec[1], Inode(None))
            ino.pending.append((int(rec[2]), int(rec[3])))
        elif k == "T":
            ino = inodes.setdefault(rec[1], Inode(None))
            size = int(rec[2])
            ino.durable = size if ino.durable is None else min(ino.durable, size)
        elif k == "s":
            ino = inodes.setdefault(rec[2], Inode(None))
            sync_begin[rec[1]] = ("f", rec[2], int(rec[3]), len(ino.pending))
        elif k == "d":
            sync_begin[rec[1]] = ("d", rec[2], len(ops))
        elif k in ("S", "D"):
            b = sync_begin.pop(rec[1], None)
            if b is None:
                continue
            if b[0] == "f":
                ino = inodes[b[1]]
                ino.durable = b[2]
                ino.pending = ino.pending[b[3]:]
            else:
                for op in ops[:b[2]]:
                    if b[1] in op[2]:
                        op[3].add(b[1])
        elif k == "R":
            ops.append(["R", rec[1:], {os.path.dirname(rec[1]), os.path.dirname(rec[2])}, set()])
        elif k == "U":
            ops.append(["U", rec[1:], {os.path.dirname(rec[1])}, set()])
        elif k == "M":
            ops.append(["M", rec[1:], {os.path.dirname(rec[1])}, set()])
    return inodes, [op for op in ops if op[3] != op[2]]


def _ino_id(st):
    return "%d:%d" % (st.st_dev, st.st_ino)


def cut(root, journal):
    """Applies the power loss to root; returns what it did (for the log)."""
    inodes, undo = plan(_parse(journal))
    stats = {"entries_undone": 0, "files_cut": 0, "bytes_lost": 0}
    for kind, args, _, _ in reversed(undo):
        stats["entries_undone"] += 1
        if kind == "C":
            ident, path = args
            try:
                if _ino_id(os.lstat(path)) == ident:
                    os.unlink(path)
            except FileNotFoundError:
                pass
        elif kind == "M":
            shutil.rmtree(args[0], ignore_errors=True)
        elif kind == "R":
            old, new, backup = args
            if os.path.lexists(new):
                os.makedirs(os.path.dirname(old), exist_ok=True)
                os.rename(new, old)
            if backup != "-" and os.path.exists(backup):
                os.rename(backup, new)
        elif kind == "U":
            path, backup = args
            if backup != "-" and os.path.exists(backup):
                os.rename(backup, path)
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            ino = inodes.get(_ino_id(st))
            if ino is None:
                continue
            keep = st.st_size if ino.durable is None else min(st.st_size, ino.durable)
            lost = st.st_size - keep
            with open(path, "r+b") as f:
                for off, length in ino.pending:
                    end = min(off + length, keep)
                    if off < end:
                        f.seek(off)
                        f.write(b"\0" * (end - off))
                        lost += end - off
                if keep < st.st_size:
                    f.truncate(keep)
                os.fsync(f.fileno())
            if lost:
                stats["files_cut"] += 1
                stats["bytes_lost"] += lost
    open(journal, "w").close()
    shutil.rmtree(journal + "-links", ignore_errors=True)
    return stats
