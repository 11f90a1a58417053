# Integration-test harness for momd: starts real broker processes on port 0,
# reads their "MOMD READY" line, mints JWTs, wraps HTTP calls (always with a
# timeout) and fails a test whose broker wrote a sanitizer report on stderr.
# Every process a test starts is stopped in the fixture's finalizer.
# SPDX-License-Identifier: MIT

import base64
import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import jwt
import pytest
import requests

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MOMD_BIN = os.environ.get("MOMD", os.path.join(REPO, "build", "momd"))
SECRET = "integration-test-secret-0123456789abcdef"
READY_TIMEOUT_S = 20.0
HTTP_TIMEOUT_S = 10.0
TEST_TIMEOUT_S = int(os.environ.get("MOM_TEST_TIMEOUT_S", "180"))
SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")
READY_RE = re.compile(r"MOMD READY\b.*\bhttp=(\S+)")
NODE_RE = re.compile(r"\bnode=(\S+)")
PEER_RE = re.compile(r"\bpeer=(\S+)")
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class MomdStartError(Exception):
    pass


class Momd:
    """One momd process (restartable on the same data dir)."""

    def __init__(self, data_dir, stderr_path, secret=SECRET, args=(), env=None,
                 binary=MOMD_BIN):
        self.binary = binary
        self.data_dir = str(data_dir)
        self.stderr_path = str(stderr_path)
        self.secret = secret
        self.args = list(args)
        self.env = dict(env or {})
        self.proc = None
        self.http = None
        self.peer = None
        self.node = None
        self.ready_line = None
        self.stderr_offset = 0
        self.starts = 0
        self.last_exit = None
        self._reader = None
        self._lines = None
        self.clients = []  # Client objects bound to this node (closed at teardown)

    # ---- lifecycle -------------------------------------------------------
    def command(self):
        cmd = [self.binary, "--http-addr", "127.0.0.1:0", "--peer-addr", "127.0.0.1:0",
               "--data-dir", self.data_dir]
        if self.secret is not None:
            cmd += ["--jwt-secret", self.secret]
        return cmd + self.args

    def start(self):
        assert self.proc is None, "already running"
        if not os.path.exists(self.binary):
            raise MomdStartError("momd binary not found: %s" % self.binary)
        os.makedirs(self.data_dir, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOM_")}
        env.update(self.env)
        # small segments keep a run's disk use low and rotate more often
        env.setdefault("MOM_WAL_SEGMENT_MB", "4")
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        errf = open(self.stderr_path, "ab")
        self.stderr_offset = errf.tell()
        try:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=errf, env=env)
        finally:
            errf.close()
        self.starts += 1
        self._lines = queue.Queue()
        self._reader = threading.Thread(target=self._read_stdout,
                                        args=(self.proc, self._lines), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail_start("no READY line within %.0f s" % READY_TIMEOUT_S)
            try:
                line = self._lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                if self.proc.poll() is not None and not self._reader.is_alive():
                    self._fail_start("exited with %s before READY" % self.proc.returncode)
                continue
            if line is None:
                self.proc.wait(timeout=5)
                self._fail_start("exited with %s before READY" % self.proc.returncode)
            m = READY_RE.search(line)
            if m:
                self.ready_line = line.strip()
                self.http = m.group(1)
                n = NODE_RE.search(line)
                p = PEER_RE.search(line)
                self.node = n.group(1) if n else None
                self.peer = p.group(1) if p else None
                return self

    @staticmethod
    def _read_stdout(proc, lines):
        for raw in proc.stdout:
            lines.put(raw.decode("utf-8", "replace"))
        lines.put(None)

    def _fail_start(self, why):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
        raise MomdStartError("momd %s (cmd: %s)\n--- stderr tail ---\n%s"
                             % (why, " ".join(self.command()), self.stderr_tail()))

    def open_http_connections(self):
        """Server-side sockets on the HTTP port still open (ESTABLISHED or
        CLOSE_WAIT), from /proc/net/tcp{,6}."""
        if not self.http:
            return 0
        port = "%04X" % self.host_port()[1]
        n = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    rows = f.read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                cols = row.split()
                if len(cols) > 3 and cols[1].endswith(":" + port) and cols[3] in ("01", "08"):
                    n += 1
        return n

    def wait_idle(self, timeout=2.0):
        """Waits until the node has closed every client connection."""
        deadline = time.monotonic() + timeout
        while self.open_http_connections() and time.monotonic() < deadline:
            time.sleep(0.02)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15.0):
        """SIGTERM, wait, then SIGKILL. Returns the exit status."""
        if self.proc is None:
            return self.last_exit
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self._reap()

    def kill9(self):
        if self.proc is None:
            return self.last_exit
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        return self._reap()

    def _reap(self):
        self.last_exit = self.proc.returncode
        if self.proc.stdout:
            self.proc.stdout.close()
        if self._reader is not None:
            self._reader.join(timeout=5)
        self.proc = None
        return self.last_exit

    def restart(self, kill=False, args=None):
        if kill:
            self.kill9()
        else:
            self.stop()
        if args is not None:
            self.args = list(args)
        return self.start()

    # ---- helpers ---------------------------------------------------------
    def url(self, path):
        assert self.http, "momd not started"
        return "http://%s%s" % (self.http, path)

    def host_port(self):
        host, port = self.http.rsplit(":", 1)
        return host, int(port)

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stderr_since_start(self):
        try:
            with open(self.stderr_path, "rb") as f:
                f.seek(self.stderr_offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stderr_tail(self, n=40):
        return "\n".join(self.stderr_text().splitlines()[-n:])

    def sanitizer_report(self):
        text = self.stderr_text()
        hits = [i for i in (text.find(m) for m in SANITIZER_MARKERS) if i >= 0]
        if not hits:
            return None
        start = text.rfind("\n", 0, min(hits)) + 1
        return text[start:start + 4000]


# ---- tokens -----------------------------------------------------------------

def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(n):
    """n distinct ports of 127.0.0.1, free now, for a node to bind later
    (peer ports that MOM_PEERS must name before the node starts). They are
    picked below the kernel's ephemeral range: a port the kernel hands out
    on its own (another listener on port 0, a proxy's or a client's
    outgoing connection) can then never take one of them between this pick
    and the node's bind."""
    low, high = 10000, _ephemeral_low() - 1
    ports = []
    while len(ports) < n:
        port = random.randint(low, high)
        if port in ports:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        ports.append(port)
    return ports


def free_port():
    return free_ports(1)[0]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(sub="alice", secret=SECRET, exp_in=3600, roles=None, algorithm="HS256",
         key=None, headers=None, **claims):
    """A signed JWT. exp_in=None leaves exp out; claims override anything."""
    now = int(time.time())
    payload = {"sub": sub, "iat": now}
    if exp_in is not None:
        payload["exp"] = now + exp_in
    if roles is not None:
        payload["roles"] = roles
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key if key is not None else secret, algorithm=algorithm,
                      headers=headers)


def raw_jwt(header, payload, signing_input_key=None, hmac_alg="sha256"):
    """Hand-built token: HMAC-signed with signing_input_key (bytes), or with an
    empty signature when the key is None (alg none)."""
    import hashlib
    import hmac
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    p = b64url(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = ("%s.%s" % (h, p)).encode()
    if signing_input_key is None:
        return "%s.%s." % (h, p)
    sig = hmac.new(signing_input_key, signing_input, getattr(hashlib, hmac_alg)).digest()
    return "%s.%s.%s" % (h, p, b64url(sig))


# ---- HTTP -------------------------------------------------------------------

class Client:
    """HTTP client bound to a Momd (follows it across restarts)."""

    def __init__(self, momd, token=None, timeout=HTTP_TIMEOUT_S):
        self.momd = momd
        self.token = token
        self.timeout = timeout
        self.session = requests.Session()
        momd.clients.append(self)

    def close(self):
        self.session.close()

    def request(self, method, path, auth=True, timeout=None, headers=None, **kw):
        h = dict(headers or {})
        if auth and self.token is not None and "Authorization" not in h:
            h["Authorization"] = "Bearer " + self.token
        return self.session.request(method, self.momd.url(path), headers=h,
                                    timeout=timeout or self.timeout, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # ---- shortcuts (assert success) -------------------------------------
    def create_queue(self, name, expect=201, **settings):
        r = self.put("/v1/queues/" + name, json=settings if settings else None)
        assert r.status_code == expect, (r.status_code, r.text)
        return r.json()

    def create_topic(self, name, expect=201, **settings):
        r = self.put("/v1/topics/" + name, json=settings if settings else None)
        assert r.status_code == expect, (r.status_code, r.text)
        return r.json()

    def publish(self, queue_name, body, headers=None, expect=201):
        if isinstance(body, str):
            body = body.encode("utf-8")
        r = self.post("/v1/queues/%s/messages" % queue_name, data=body, headers=headers)
        assert r.status_code == expect, (r.status_code, r.text)
        return r.json() if r.content else None

    def publish_topic(self, topic, body, headers=None, expect=201):
        if isinstance(body, str):
            body = body.encode("utf-8")
        r = self.post("/v1/topics/%s/messages" % topic, data=body, headers=headers)
        assert r.status_code == expect, (r.status_code, r.text)
        return r.json() if r.content else None

    def receive(self, queue_name, expect=200, timeout=None, **params):
        r = self.post("/v1/queues/%s/receive" % queue_name, params=params, timeout=timeout)
        assert r.status_code == expect, (r.status_code, r.text)
        return r.json()["messages"] if expect == 200 else r.json()

    def ack(self, queue_name, receipt):
        return self.delete("/v1/queues/%s/messages/%s" % (queue_name, receipt))

    def get_queue(self, name):
        r = self.get("/v1/queues/" + name)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def get_topic(self, name):
        r = self.get("/v1/topics/" + name)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def read_topic(self, topic, expect=200, timeout=None, **params):
        r = self.get("/v1/topics/%s/messages" % topic, params=params, timeout=timeout)
        assert r.status_code == expect, (r.status_code, r.text)
        return r.json()


def assert_error(r, status, code=None):
    """r is a JSON error with this status (and code, or one of a tuple of codes)."""
    assert r.status_code == status, "want %s got %s: %s" % (status, r.status_code, r.text[:500])
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), "error Content-Type %r" % ctype
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    err = body["error"]
    assert isinstance(err.get("code"), str) and isinstance(err.get("message"), str), body
    if code is not None:
        codes = code if isinstance(code, tuple) else (code,)
        assert err["code"] in codes, "want code %s got %r (%s)" % (codes, err["code"], body)
    return err


def body_bytes(msg):
    """The raw bytes of a message object from a JSON answer."""
    if msg["encoding"] == "base64":
        return base64.b64decode(msg["body"])
    assert msg["encoding"] == "utf-8", msg
    return msg["body"].encode("utf-8")


def wait_until(fn, timeout=5.0, interval=0.05, what="condition"):
    """Polls fn() until it returns a truthy value; returns it or fails."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    pytest.fail("timed out after %.1f s waiting for %s (last: %r)" % (timeout, what, last))


def healthy(momd):
    r = requests.get(momd.url("/healthz"), timeout=HTTP_TIMEOUT_S)
    return r.status_code == 200


# ---- fixtures ---------------------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the item, for _free_test_disk."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(autouse=True)
def _free_test_disk(request, tmp_path):
    """Every node preallocates its log segment, so a whole run would leave
    gigabytes behind: once a test passed (its brokers are stopped by then,
    this fixture is torn down last) its data directories go; the stderr
    files stay, and a failed test keeps everything for the post-mortem."""
    yield
    call = getattr(request.node, "rep_call", None)
    if call is None or not call.passed:
        return
    for entry in os.scandir(tmp_path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _test_deadline():
    """Bounds every test (no pytest-timeout on this machine)."""
    def on_alarm(signum, frame):
        raise TimeoutError("test exceeded %d s" % TEST_TIMEOUT_S)
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def momd_factory(tmp_path, request):
    """momd_factory(args=[], env={}, secret=SECRET, data_dir=None, start=True)."""
    started = []
    counter = [0]

    def factory(args=(), env=None, secret=SECRET, data_dir=None, start=True):
        counter[0] += 1
        n = counter[0]
        d = data_dir or (tmp_path / ("data%d" % n))
        m = Momd(d, tmp_path / ("momd%d.stderr" % n), secret=secret, args=args, env=env)
        started.append(m)
        if start:
            try:
                m.start()
            except MomdStartError as e:
                pytest.fail(str(e), pytrace=False)
        return m

    def finalize():
        problems = []
        # Close the tests' keep-alive connections first, so that a sanitizer
        # report at exit is about the test, not about idle sockets (shutting
        # down with open connections has its own test in test_persistence).
        for m in started:
            for c in m.clients:
                c.close()
        for m in started:
            if m.running():
                m.wait_idle()
        for m in started:
            try:
                m.stop()
            except Exception as e:  # keep stopping the others
                problems.append("stop failed: %r" % e)
        for m in started:
            rep = m.sanitizer_report()
            if rep:
                problems.append("sanitizer report in %s:\n%s" % (m.stderr_path, rep))
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)

    request.addfinalizer(finalize)
    return factory


@pytest.fixture
def momd(momd_factory):
    return momd_factory()


@pytest.fixture
def client(momd):
    """client(sub="alice", roles=None, **claims) -> Client for the default momd."""
    def make(sub="alice", roles=None, **claims):
        return Client(momd, mint(sub, roles=roles, **claims))
    return make


@pytest.fixture
def alice(client):
    return client("alice")


@pytest.fixture
def bob(client):
    return client("bob")


@pytest.fixture
def admin(client):
    return client("root", roles=["admin"])
