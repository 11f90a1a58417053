"""Storage failures: a full disk answers 507, a failed write answers 503,
both with a JSON error and a log line; nothing acknowledged is lost, nothing
refused appears later, and the node keeps serving reads."""
import os
import subprocess

import pytest

from conftest import Client, assert_error, mint

BODY = b"x" * (256 * 1024)


def publish_until_refused(c, queue, limit=200):
    """Publishes BODY until the node refuses; returns (acked count, refusal)."""
    acked = 0
    for _ in range(limit):
        r = c.post("/v1/queues/%s/messages" % queue, data=BODY,
                   headers={"Content-Type": "application/octet-stream"})
        if r.status_code == 201:
            acked += 1
            continue
        return acked, r
    pytest.fail("the disk never filled after %d publishes" % limit)


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount tmpfs here: %s" % r.stderr.decode(errors="replace"))
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_answers_507_and_loses_nothing(momd_factory, small_disk):
    m = momd_factory(data_dir=small_disk / "data", args=["--snapshot-entries", "1000000"])
    c = Client(m, mint("alice"))
    c.create_queue("q")
    acked, refused = publish_until_refused(c, "q")
    assert acked > 0
    assert_error(refused, 507, "storage_unavailable")
    assert refused.headers.get("X-Mom-Node") == "1"
    assert "disk full" in m.stderr_since_start() or "no space" in m.stderr_since_start()
    # still serving, state exactly what was acknowledged
    assert c.get("/healthz").status_code == 200
    assert c.get_queue("q")["depth"] == acked
    # a refused write did not sneak into the log: restart and count again
    m.restart()
    assert c.get_queue("q")["depth"] == acked
    got = 0
    while True:
        msgs = c.receive("q", max=100, ack="auto")
        if not msgs:
            break
        got += len(msgs)
    assert got == acked


def test_failed_write_answers_503_and_state_stays(momd_factory, tmp_path):
    """RLIMIT_FSIZE makes write() fail with EFBIG once the segment file would
    grow past the limit (SIGXFSZ is ignored by momd)."""
    limit = 3 * 1024 * 1024
    m = momd_factory(start=False, args=["--snapshot-entries", "1000000"])
    # the harness' Popen has no preexec hook, so wrap the binary with
    # prlimit (util-linux, always on Debian)
    orig_command = m.command

    def command():
        return ["prlimit", "--fsize=%d" % limit, "--"] + orig_command()

    m.command = command
    m.start()
    c = Client(m, mint("alice"))
    c.create_queue("q")
    acked, refused = publish_until_refused(c, "q")
    assert acked > 0
    assert_error(refused, 503, "storage_unavailable")
    assert "Retry-After" in refused.headers
    assert "log write failed" in m.stderr_since_start()
    assert c.get_queue("q")["depth"] == acked
    m.stop()
    m.command = orig_command
    m.start()
    assert c.get_queue("q")["depth"] == acked
    # writes work again once the limit is gone
    c.publish("q", b"after")
    assert c.get_queue("q")["depth"] == acked + 1
