# A small Server-Sent Events client over a raw socket, for the stream tests
# and the bench: it sends the GET itself (so a test can choose the HTTP
# version, pipeline a second request or stop reading), decodes the chunked
# body and parses the event-stream fields as a browser's EventSource does.
# SPDX-License-Identifier: MIT

import json
import select
import socket
import time


class StreamClosed(Exception):
    pass


class SSEClient:
    """SSEClient(host, port, path, token=None, headers=None). After
    connect(): status, headers (lower-case names), then next_event()."""

    def __init__(self, host, port, path, token=None, headers=None, timeout=10.0,
                 rcvbuf=None):
        self.host, self.port, self.path = host, port, path
        self.headers_out = dict(headers or {})
        if token:
            self.headers_out["Authorization"] = "Bearer " + token
        self.timeout = timeout
        self.rcvbuf = rcvbuf
        self.sock = None
        self.status = None
        self.headers = {}
        self.raw = b""          # bytes not yet decoded from chunks
        self.text = b""         # decoded body bytes not yet parsed into events
        self.chunked = False
        self.ended = False      # the last chunk (0) arrived
        self.body_text = b""    # a non-stream answer's body
        self.retry = None
        self.comments = []
        self.events_seen = 0

    def connect(self, version="HTTP/1.1", send=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        self.sock.settimeout(self.timeout)
        self.sock.connect((self.host, self.port))
        if send:
            self.sock.sendall(self.request_bytes(version))
        return self

    def request_bytes(self, version="HTTP/1.1"):
        lines = ["GET %s %s" % (self.path, version), "Host: %s:%d" % (self.host, self.port),
                 "Accept: text/event-stream"]
        lines += ["%s: %s" % kv for kv in self.headers_out.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data from the stream in time")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from the stream in time")
        except ConnectionResetError:
            data = b""
        if not data:
            raise StreamClosed("the server closed the connection")
        return data

    def read_head(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n\r\n" not in self.raw:
            self.raw += self._recv(deadline)
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        if not self.chunked:
            n = int(self.headers.get("content-length", "0"))
            while len(self.raw) < n:
                self.raw += self._recv(deadline)
            self.body_text, self.raw = self.raw[:n], self.raw[n:]
        return self.status

    def json(self):
        return json.loads(self.body_text)

    def _decode_chunks(self):
        while not self.ended:
            if b"\r\n" not in self.raw:
                return
            size_line, rest = self.raw.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if len(rest) < size + 2:
                return
            if size == 0:
                self.ended = True
                self.raw = rest[2:]
                return
            self.text += rest[:size]
            self.raw = rest[size + 2:]

    def _parse_event(self):
        """One event from the decoded text, or None. Comments and retry
        are recorded as they pass."""
        while True:
            sep = self.text.find(b"\n\n")
            if sep < 0:
                return None
            block, self.text = self.text[:sep], self.text[sep + 2:]
            ev = {"id": None, "event": "message", "data": None}
            data = []
            for line in block.decode("utf-8").split("\n"):
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    continue
                k, _, v = line.partition(":")
                if v.startswith(" "):
                    v = v[1:]
                if k == "id":
                    ev["id"] = v
                elif k == "event":
                    ev["event"] = v
                elif k == "data":
                    data.append(v)
                elif k == "retry":
                    self.retry = int(v)
            if data:
                ev["data"] = "\n".join(data)
                self.events_seen += 1
                return ev

    def next_event(self, timeout=None):
        """The next event {"id","event","data","json"}; TimeoutError or
        StreamClosed (also when the stream ended) otherwise."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            self._decode_chunks()
            ev = self._parse_event()
            if ev:
                ev["json"] = json.loads(ev["data"])
                return ev
            if self.ended:
                raise StreamClosed("the stream ended")
            self.raw += self._recv(deadline)

    def events(self, n, timeout=None):
        return [self.next_event(timeout) for _ in range(n)]

    def wait_comment(self, text, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while text not in self.comments:
            self._decode_chunks()
            if self._parse_event():
                continue
            if self.ended:
                raise StreamClosed("the stream ended")
            self.raw += self._recv(deadline)

    def wait_end(self, timeout=None):
        """Reads until the last chunk arrives or the server closes."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while not self.ended:
                self._decode_chunks()
                if self.ended:
                    break
                self.raw += self._recv(deadline)
        except StreamClosed:
            pass
        return self.ended

    def closed_by_server(self, timeout=None):
        """True once the server has closed the connection (EOF or reset)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return True
            if not data:
                return True
            self.raw += data
        return False

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None
