# Raw-socket tests of momd's peer port: hand-made HTTP/2 bytes (garbage,
# HTTP/1.1, malformed frames, protocol violations) must end that connection
# with GOAWAY carrying the RFC 9113 error code, never a crash or a hang, and
# the node keeps serving other connections. Also: PING and SETTINGS are
# acknowledged, a hand-encoded gRPC Ping is answered, and shutdown sends
# GOAWAY(NO_ERROR) with the last stream id.
# SPDX-License-Identifier: MIT

import random
import socket
import struct
import time

import pytest

from test_peer_grpc import CLUSTER_SECRET, peer_token
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED = 0x1, 0x1, 0x4, 0x8
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, COMPRESSION_ERROR = 0, 1, 3, 6, 9


def frame(ftype, flags=0, sid=0, payload=b""):
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xffff, ftype, flags, sid & 0x7fffffff) + payload


def settings(*pairs, ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def hpack_literal(name, value):
    """Literal header field without indexing, new name, no Huffman (RFC 7541 §6.2.2)."""
    def s(b):  # string length as a 7-bit-prefix integer (RFC 7541 §5.1)
        n, out = len(b), bytearray()
        if n < 127:
            out.append(n)
        else:
            out.append(127)
            n -= 127
            while n >= 128:
                out.append((n & 0x7f) | 0x80)
                n >>= 7
            out.append(n)
        return bytes(out) + b
    return b"\x00" + s(name.encode()) + s(value.encode())


def ping_request_block(path="/mom.v1.Peer/Ping"):
    return b"".join(hpack_literal(n, v) for n, v in [
        (":method", "POST"), (":scheme", "http"), (":path", path),
        (":authority", "raw"), ("content-type", "application/grpc"), ("te", "trailers"),
        ("authorization", "Bearer " + peer_token())])


class Conn:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def read_frame(self, timeout=5.0):
        """(type, flags, sid, payload) or None on EOF."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    t, fl = self.buf[3], self.buf[4]
                    sid = int.from_bytes(self.buf[5:9], "big") & 0x7fffffff
                    payload = self.buf[9:9 + n]
                    self.buf = self.buf[9 + n:]
                    return t, fl, sid, payload
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.buf += chunk

    def frames_until_eof(self, timeout=5.0):
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            f = self.read_frame(timeout=max(0.1, deadline - time.monotonic()))
            if f is None:
                return out, True
            out.append(f)
        return out, False

    def close(self):
        self.sock.close()


def goaway_of(frames):
    g = [f for f in frames if f[0] == GOAWAY]
    assert g, "no GOAWAY among %s" % [(f[0], f[1], f[2]) for f in frames]
    last, code = struct.unpack(">II", g[-1][3][:8])
    return last & 0x7fffffff, code, g[-1][3][8:]


@pytest.fixture
def node(momd_factory):
    m = momd_factory(args=["--node-id", "1", "--cluster-secret", CLUSTER_SECRET,
                           "--peers", "1=127.0.0.1:0,2=127.0.0.1:1"])
    assert m.peer and not m.peer.endswith(":0"), m.ready_line
    return m


PING_REPLY = b"\x00\x00\x00\x00\x04\x10\x01\x20\x01"  # PingResponse{from: 1, leader: 1}


def read_ping_answer(c, sid):
    """Reads until stream sid ends; returns its DATA bytes."""
    data = b""
    for _ in range(50):
        f = c.read_frame()
        assert f is not None, "connection closed"
        if f[2] != sid:
            continue
        if f[0] == DATA:
            data += f[3]
        if f[0] in (HEADERS, DATA) and f[1] & END_STREAM:
            return data
        assert f[0] != RST_STREAM, "stream %d reset" % sid
    pytest.fail("stream %d did not end" % sid)


def still_serving(node):
    """A fresh connection completes a hand-encoded gRPC Ping."""
    c = Conn(node.peer)
    try:
        c.send(PREFACE + settings())
        c.send(frame(HEADERS, END_HEADERS, 1, ping_request_block()))
        c.send(frame(DATA, END_STREAM, 1, b"\x00\x00\x00\x00\x00"))
        assert read_ping_answer(c, 1) == PING_REPLY
        return True
    finally:
        c.close()


def expect_goaway(node, data, code, split=False):
    c = Conn(node.peer)
    try:
        if split:
            for i in range(len(data)):
                c.send(data[i:i + 1])
        else:
            c.send(data)
        frames, eof = c.frames_until_eof(timeout=5)
        assert eof, "connection not closed after the violation"
        last, got, debug = goaway_of(frames)
        assert got == code, "want error %d got %d (%r)" % (code, got, debug)
        return last, debug
    finally:
        c.close()
        assert still_serving(node)


def test_http1_request_gets_goaway(node):
    expect_goaway(node, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", PROTOCOL_ERROR)


def test_garbage_gets_goaway(node):
    rnd = random.Random(1234)
    for _ in range(5):
        expect_goaway(node, bytes(rnd.randrange(256) for _ in range(200)), PROTOCOL_ERROR)


def test_malformed_settings_frame_size_error(node):
    expect_goaway(node, PREFACE + frame(SETTINGS, 0, 0, b"\x00\x01\x00"), FRAME_SIZE_ERROR)
    expect_goaway(node, PREFACE + settings() + frame(SETTINGS, 0, 0, b"\x00" * 7), FRAME_SIZE_ERROR)
    expect_goaway(node, PREFACE + settings() + frame(SETTINGS, ACK, 0, b"\x00" * 6),
                  FRAME_SIZE_ERROR)


def test_bad_settings_values(node):
    expect_goaway(node, PREFACE + settings((4, 1 << 31)), FLOW_CONTROL_ERROR)
    expect_goaway(node, PREFACE + settings((5, 100)), PROTOCOL_ERROR)
    expect_goaway(node, PREFACE + settings((2, 7)), PROTOCOL_ERROR)
    expect_goaway(node, PREFACE + frame(SETTINGS, 0, 3, b""), PROTOCOL_ERROR)


def test_first_frame_must_be_settings(node):
    expect_goaway(node, PREFACE + frame(PING, 0, 0, b"12345678"), PROTOCOL_ERROR)


def test_frame_too_large(node):
    hdr = struct.pack(">BHBBI", 0x10, 0x0001, DATA, 0, 1)  # 1 MiB + 1 announced
    expect_goaway(node, PREFACE + settings() + hdr, FRAME_SIZE_ERROR)


def test_fixed_size_frames(node):
    base = PREFACE + settings()
    expect_goaway(node, base + frame(PING, 0, 0, b"1234567"), FRAME_SIZE_ERROR)
    expect_goaway(node, base + frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x01"), FRAME_SIZE_ERROR)
    expect_goaway(node, base + frame(RST_STREAM, 0, 1, b"\x00\x00\x00"), FRAME_SIZE_ERROR)
    expect_goaway(node, base + frame(GOAWAY, 0, 0, b"\x00" * 7), FRAME_SIZE_ERROR)
    expect_goaway(node, base + frame(PRIORITY, 0, 1, b"\x00" * 4), FRAME_SIZE_ERROR)


def test_protocol_violations(node):
    base = PREFACE + settings()
    expect_goaway(node, base + frame(DATA, 0, 1, b"x"), PROTOCOL_ERROR)  # idle stream
    expect_goaway(node, base + frame(DATA, 0, 0, b"x"), PROTOCOL_ERROR)  # stream 0
    expect_goaway(node, base + frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x00\x00"), PROTOCOL_ERROR)
    expect_goaway(node, base + frame(CONTINUATION, END_HEADERS, 1, b"\x82"), PROTOCOL_ERROR)
    expect_goaway(node, base + frame(HEADERS, 0, 1, ping_request_block()[:10]) +
                  frame(PING, 0, 0, b"12345678"), PROTOCOL_ERROR)  # CONTINUATION expected
    expect_goaway(node, base + frame(PUSH_PROMISE, END_HEADERS, 1, b"\x00\x00\x00\x02"),
                  PROTOCOL_ERROR)
    expect_goaway(node, base + frame(HEADERS, END_HEADERS, 2, ping_request_block()),
                  PROTOCOL_ERROR)  # even id from a client
    expect_goaway(node, base + frame(DATA, PADDED, 1, b"\x05ab"), PROTOCOL_ERROR)


def test_flow_control_violations(node):
    base = PREFACE + settings()
    expect_goaway(node, base + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7fffffff)),
                  FLOW_CONTROL_ERROR)


def test_bad_hpack(node):
    expect_goaway(node, PREFACE + settings() + frame(HEADERS, END_HEADERS, 1, b"\x80"),
                  COMPRESSION_ERROR)
    expect_goaway(node, PREFACE + settings() + frame(HEADERS, END_HEADERS, 1, b"\xff\xff\xff\xff\xff"),
                  COMPRESSION_ERROR)


def test_byte_by_byte_violation(node):
    expect_goaway(node, PREFACE + frame(SETTINGS, 0, 0, b"\x00\x01\x00"), FRAME_SIZE_ERROR,
                  split=True)


def test_settings_and_ping_acknowledged(node):
    c = Conn(node.peer)
    try:
        c.send(PREFACE + settings((4, 1 << 20)))
        seen = []
        for _ in range(10):
            f = c.read_frame()
            assert f is not None
            seen.append(f)
            if f[0] == SETTINGS and f[1] & ACK:
                break
        assert any(f[0] == SETTINGS and not f[1] & ACK for f in seen), "server SETTINGS"
        assert any(f[0] == SETTINGS and f[1] & ACK for f in seen), "SETTINGS ACK"
        c.send(frame(PING, 0, 0, b"abcdefgh"))
        while True:
            f = c.read_frame()
            assert f is not None
            if f[0] == PING:
                assert f[1] & ACK and f[3] == b"abcdefgh"
                break
    finally:
        c.close()


def test_stream_errors_keep_connection(node):
    c = Conn(node.peer)
    try:
        c.send(PREFACE + settings())
        # upper-case header name: malformed request, stream 1 is reset
        bad = hpack_literal(":method", "POST") + hpack_literal(":scheme", "http") + \
            hpack_literal(":path", "/x") + hpack_literal("X-Upper", "1")
        c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, bad))
        rst = None
        for _ in range(20):
            f = c.read_frame()
            assert f is not None, "connection closed on a stream error"
            if f[0] == RST_STREAM:
                rst = f
                break
        assert rst[2] == 1 and struct.unpack(">I", rst[3])[0] == PROTOCOL_ERROR
        # the same connection still serves a Ping on stream 3
        c.send(frame(HEADERS, END_HEADERS, 3, ping_request_block()))
        c.send(frame(DATA, END_STREAM, 3, b"\x00\x00\x00\x00\x00"))
        assert read_ping_answer(c, 3) == PING_REPLY
    finally:
        c.close()


def test_slow_and_idle_clients_do_not_block(node):
    idle = [Conn(node.peer) for _ in range(5)]
    try:
        idle[0].send(PREFACE[:10])  # a partial preface, then nothing
        idle[1].send(PREFACE + settings() + frame(HEADERS, 0, 1, b"\x82"))  # unfinished block
        assert still_serving(node)
    finally:
        for c in idle:
            c.close()


def test_goaway_on_shutdown(node):
    c = Conn(node.peer)
    try:
        c.send(PREFACE + settings())
        c.send(frame(HEADERS, END_HEADERS, 1, ping_request_block()))
        c.send(frame(DATA, END_STREAM, 1, b"\x00\x00\x00\x00\x00"))
        assert read_ping_answer(c, 1) == PING_REPLY
        assert node.stop() == 0
        frames, eof = c.frames_until_eof(timeout=10)
        assert eof
        last, code, _ = goaway_of(frames)
        assert code == NO_ERROR and last == 1
    finally:
        c.close()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_ping_flood_without_reading_is_bounded(node):
    """A peer that floods PINGs and never reads the ACKs must not make the node
    buffer without bound: it stops reading that connection (back-pressure)."""
    pid = node.proc.pid
    before = rss_kb(pid)
    c = Conn(node.peer)
    try:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.send(PREFACE + settings())
        chunk = frame(PING, 0, 0, b"floodfld") * 4096  # 68 KiB of PINGs
        sent = 0
        c.sock.settimeout(3)
        try:
            while sent < (200 << 20):
                c.sock.sendall(chunk)
                sent += len(chunk)
        except (socket.timeout, BlockingIOError):
            pass
        assert sent < (200 << 20), "the node kept reading a peer that does not read"
        grown_mb = (rss_kb(pid) - before) / 1024
        assert grown_mb < 80, "node grew by %.0f MB" % grown_mb
        assert still_serving(node)
    finally:
        c.close()
