# The momd command line as the harness and operators rely on it: the READY
# line names bound ports, options come from flags > env > config file >
# defaults, --help works and a bad option stops start-up.
# SPDX-License-Identifier: MIT

import os
import socket
import subprocess

import requests

from conftest import HTTP_TIMEOUT_S, MOMD_BIN, Client, assert_error, mint


def test_ready_line_names_bound_ports(momd):
    assert momd.node == "1", momd.ready_line
    host, port = momd.host_port()
    assert host == "127.0.0.1" and port != 0, momd.ready_line
    assert momd.peer, momd.ready_line
    phost, pport = momd.peer.rsplit(":", 1)
    assert int(pport) != 0, "peer port 0 in READY line: %s" % momd.ready_line
    socket.create_connection((phost, int(pport)), timeout=5).close()


def test_env_options(momd_factory):
    m = momd_factory(env={"MOM_NODE_ID": "4", "MOM_MAX_BODY": "1024"})
    assert m.node == "4", m.ready_line
    c = Client(m, mint("alice"))
    c.create_queue("q")
    r = c.post("/v1/queues/q/messages", data=b"x" * 2000)
    assert_error(r, 413, "payload_too_large")
    assert r.headers.get("X-Mom-Node") == "4"


def test_config_file_and_precedence(momd_factory, tmp_path):
    cfg = tmp_path / "mom.conf"
    cfg.write_text("MOM_NODE_ID=5\nMOM_ALLOW_REGISTRATION=false\nMOM_MAX_BODY=1024\n")
    # file < env < flag
    m = momd_factory(args=["--config", str(cfg), "--max-body", "4096"],
                     env={"MOM_NODE_ID": "6"})
    assert m.node == "6", m.ready_line
    r = requests.post(m.url("/v1/auth/users"), json={"username": "alice",
                                                     "password": "long enough password"},
                      timeout=HTTP_TIMEOUT_S)
    assert_error(r, 403, "forbidden")
    c = Client(m, mint("alice"))
    c.create_queue("q")
    c.publish("q", b"x" * 3000)
    assert_error(c.post("/v1/queues/q/messages", data=b"x" * 5000), 413, "payload_too_large")


def test_help_and_bad_option(tmp_path):
    r = subprocess.run([MOMD_BIN, "--help"], capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr[-500:]
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    assert "--http-addr" in out and "--data-dir" in out, out[:500]
    r = subprocess.run([MOMD_BIN, "--no-such-option", "--data-dir", str(tmp_path / "d"),
                        "--http-addr", "127.0.0.1:0", "--peer-addr", "127.0.0.1:0"],
                       capture_output=True, timeout=10)
    assert r.returncode != 0
    assert b"MOMD READY" not in r.stdout


def test_wal_segment_size_rotates_and_recovers(momd_factory):
    m = momd_factory(env={"MOM_WAL_SEGMENT_MB": "1"}, args=["--snapshot-entries", "1000000"])
    c = Client(m, mint("alice"))
    c.create_queue("q")
    body = b"s" * 50000
    for _ in range(50):  # 2.5 MB of payload: at least three 1 MiB segments
        c.publish("q", body)
    log_dir = os.path.join(m.data_dir, "group-0", "log")
    segments = sorted(f for f in os.listdir(log_dir) if f.endswith(".seg"))
    assert len(segments) >= 3, segments
    for name in segments[:-1]:
        # a segment rotates once it passes the limit; one batch may overshoot
        assert os.path.getsize(os.path.join(log_dir, name)) < 2 * 1024 * 1024, name
    m.restart()
    assert c.get_queue("q")["depth"] == 50
    msgs = c.receive("q", max=50, ack="auto")
    assert len(msgs) == 50
    assert all(x["encoding"] == "utf-8" and x["body"] == body.decode() for x in msgs)


def test_sizes_out_of_range_refuse_to_start(tmp_path):
    for flag, env, bad in (("--wal-segment-mb", "MOM_WAL_SEGMENT_MB", "0"),
                           ("--wal-segment-mb", "MOM_WAL_SEGMENT_MB", "1025"),
                           ("--wal-segment-mb", "MOM_WAL_SEGMENT_MB", "many"),
                           ("--snapshot-log-mb", "MOM_SNAPSHOT_LOG_MB", "0")):
        r = subprocess.run([MOMD_BIN, flag, bad, "--data-dir", str(tmp_path / "d"),
                            "--http-addr", "127.0.0.1:0", "--peer-addr", "127.0.0.1:0"],
                           capture_output=True, timeout=10)
        assert r.returncode != 0, (flag, bad)
        assert env.encode() in r.stderr, r.stderr[-300:]
        assert b"MOMD READY" not in r.stdout
