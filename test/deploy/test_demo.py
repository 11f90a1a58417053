# The three-container demo with real Docker (`make test-demo`): builds the
# image, runs `make demo` on empty volumes and checks that the cluster forms
# without a bootstrap flag, replicates, fails over when the leader's
# container is killed, catches up a restarted container, keeps every
# acknowledged message across `make demo-down` + `make demo` without forming
# again, and lets a member whose volume was wiped rejoin only after it has
# caught up. It talks to the containers only through the ports published on
# 127.0.0.1, uses its own compose project, ports, env file and image tag,
# and removes everything it created (containers, network, volumes, images,
# a dockerd it started), also when a check fails. Needs root.
# SPDX-License-Identifier: MIT

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import requests

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE_IMAGE = "debian:bookworm-slim"
FORMED = "every member reports fresh storage: forming a new cluster"
ABSTAINING = "fresh storage: abstaining"
CAUGHT_UP = "caught up after fresh storage"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: builds an image and runs containers with Docker")


def run(cmd, env=None, check=True, timeout=1200):
    p = subprocess.run(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stdout))
    return p


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def image_exists(name):
    return subprocess.run(["docker", "image", "inspect", name], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def docker_answers():
    return subprocess.run(["docker", "info"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def wait_for(fn, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
        except requests.RequestException as e:
            last = e
        time.sleep(0.2)
    pytest.fail("%s not within %.0f s (%r)" % (what, timeout, last))


class Demo:
    """The demo cluster under test: its compose project and HTTP access."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.project = "momtest%s" % uuid.uuid4().hex[:8]
        self.ports = free_ports(3)
        self.env_file = os.path.join(tmp, "demo.env")
        self.image = "mom:test-%s" % self.project
        self.env = dict(os.environ)
        self.env.update({
            "COMPOSE_PROJECT_NAME": self.project,
            "MOM_IMAGE": self.image,
            "MOM_DEMO_ENV_FILE": self.env_file,
            "MOM_DEMO_PORT1": str(self.ports[0]),
            "MOM_DEMO_PORT2": str(self.ports[1]),
            "MOM_DEMO_PORT3": str(self.ports[2]),
        })
        self.token = None
        self.output = ""

    def make(self, target):
        p = run(["make", "--no-print-directory", target], env=self.env)
        self.output = p.stdout
        m = re.search(r"export TOKEN=(\S+)", p.stdout)
        if m:
            self.token = m.group(1)
        return p.stdout

    def compose(self, *args, check=True):
        return run(["docker-compose", "-f", os.path.join(REPO, "deploy", "docker-compose.yml")]
                   + list(args), env=self.env, check=check)

    def container(self, i):
        return self.compose("ps", "-q", "mom%d" % (i + 1)).stdout.strip()

    def logs(self, i):
        return run(["docker", "logs", self.container(i)]).stdout

    def url(self, i, path):
        return "http://127.0.0.1:%d%s" % (self.ports[i], path)

    def hdr(self):
        return {"Authorization": "Bearer " + self.token}

    def view(self, i):
        return requests.get(self.url(i, "/v1/cluster"), headers=self.hdr(), timeout=3).json()

    def ready(self, i):
        return requests.get(self.url(i, "/readyz"), timeout=3).status_code == 200

    def leader(self, among=(0, 1, 2), timeout=60):
        """The index every node in `among` agrees leads, once all are ready."""
        def agreed():
            views = [self.view(i) for i in among]
            leaders = {v["leader"] for v in views}
            if len(leaders) == 1 and None not in leaders and all(self.ready(i) for i in among):
                lid = leaders.pop()
                if lid - 1 in among:
                    return lid
            return None
        return wait_for(agreed, timeout, "an agreed leader among %r" % (among,)) - 1

    def publish(self, i, topic, body, key):
        r = requests.post(self.url(i, "/v1/topics/%s/messages" % topic), data=body.encode(),
                          headers=dict(self.hdr(), **{"Content-Type": "text/plain",
                                                      "Idempotency-Key": key}), timeout=6)
        return r.status_code == 201

    def bodies(self, i, topic):
        r = requests.get(self.url(i, "/v1/topics/%s/messages" % topic),
                         params={"from": "earliest", "max": "1000"}, headers=self.hdr(),
                         timeout=10)
        assert r.status_code == 200, r.text
        return [m["body"] for m in r.json()["messages"]]


@pytest.fixture(scope="module")
def demo():
    if shutil.which("docker") is None or shutil.which("docker-compose") is None:
        run(["apt-get", "update", "-qq"])
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker.io",
             "docker-compose"], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    dockerd = None
    tmp = tempfile.mkdtemp(prefix="mom-test-demo-")
    if not docker_answers():
        log = open(os.path.join(tmp, "dockerd.log"), "w")
        dockerd = subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 60
        while not docker_answers():
            if time.monotonic() > deadline or dockerd.poll() is not None:
                dockerd.kill()
                pytest.fail("dockerd did not come up; see %s/dockerd.log" % tmp)
            time.sleep(0.5)
    had_base = image_exists(BASE_IMAGE)
    d = Demo(tmp)
    try:
        yield d
    finally:
        d.compose("down", "--volumes", "--remove-orphans", check=False)
        run(["docker", "rmi", "-f", d.image], check=False)
        # the build stage's image (labelled in the Dockerfile)
        run(["docker", "image", "prune", "-f", "--filter", "label=org.mom.stage=build"],
            check=False)
        if not had_base and not os.environ.get("MOM_TEST_KEEP_BASE"):
            run(["docker", "rmi", "-f", BASE_IMAGE], check=False)
        if dockerd is not None:
            dockerd.terminate()
            try:
                dockerd.wait(timeout=30)
            except subprocess.TimeoutExpired:
                dockerd.kill()
                dockerd.wait()
        shutil.rmtree(tmp, ignore_errors=True)


ACKED = []  # bodies acknowledged (201) by the cluster, in order


def test_make_demo_forms_a_cluster_without_a_flag(demo):
    t0 = time.monotonic()
    out = demo.make("demo")
    print("make demo (cold: base image, image build, start) took %.0f s" % (time.monotonic() - t0))
    assert demo.token, out
    for p in demo.ports:
        assert "http://127.0.0.1:%d" % p in out
    assert os.stat(demo.env_file).st_mode & 0o777 == 0o600
    size = run(["docker", "image", "inspect", "--format", "{{.Size}}", demo.image]).stdout
    print("image size: %.1f MB" % (int(size) / 1e6))
    lead = demo.leader()
    views = [demo.view(i) for i in range(3)]
    assert all(v["leader"] == lead + 1 and not v["abstaining"] for v in views), views
    assert sum(v["role"] == "leader" for v in views) == 1, views
    assert len(views[lead]["nodes"]) == 3, views[lead]
    logs = []
    for i in range(3):
        env = json.loads(run(["docker", "inspect", "--format", "{{json .Config.Env}}",
                              demo.container(i)]).stdout)
        assert not any(e.startswith("MOM_BOOTSTRAP") for e in env), env
        logs.append(demo.logs(i))
    # a majority formed the cluster; a member that heard from the others only
    # after they had voted caught up instead (both without a flag)
    assert sum(FORMED in t for t in logs) >= 2, logs
    assert all(FORMED in t or CAUGHT_UP in t for t in logs), logs


def test_the_printed_curl_lines_work(demo):
    lines = [ln for ln in demo.output.splitlines() if ln.startswith("curl ")]
    assert len(lines) == 3, demo.output
    outs = [run(["bash", "-c", ln], env=dict(demo.env, TOKEN=demo.token)).stdout for ln in lines]
    assert '"name":"demo"' in outs[0].replace(" ", ""), outs
    assert '"id"' in outs[1], outs
    assert "hello from mom1" in outs[2], outs


def test_write_through_mom1_read_through_mom3(demo):
    r = requests.put(demo.url(0, "/v1/topics/acked"), headers=demo.hdr(), timeout=6)
    assert r.status_code in (200, 201), r.text
    for k in range(20):
        body = "m%d" % k
        assert demo.publish(0, "acked", body, body)
        ACKED.append(body)
    assert demo.bodies(2, "acked") == ACKED


def test_docker_kill_of_the_leader_fails_over_within_5s(demo):
    lead = demo.leader()
    survivors = [i for i in range(3) if i != lead]
    run(["docker", "kill", demo.container(lead)])
    t0 = time.monotonic()
    first_ok = None
    k = 0
    # keep writing through the survivors; a write not acknowledged may
    # still have committed, which the idempotency key makes harmless
    while time.monotonic() - t0 < 15 and (first_ok is None or k < 40):
        body = "f%d" % k
        try:
            ok = demo.publish(survivors[k % 2], "acked", body, body)
        except requests.RequestException:
            ok = False
        if ok:
            ACKED.append(body)
            if first_ok is None:
                first_ok = time.monotonic() - t0
            k += 1
        else:
            time.sleep(0.05)
    assert first_ok is not None, "no write committed through the survivors"
    print("failover in containers: first write committed %.2f s after docker kill of mom%d"
          % (first_ok, lead + 1))
    assert first_ok < 5.0
    for i in survivors:
        got = demo.bodies(i, "acked")
        assert [b for b in ACKED if b not in got] == [], "acknowledged writes lost on mom%d" % (i + 1)
    test_docker_kill_of_the_leader_fails_over_within_5s.killed = lead


def test_killed_container_restarted_catches_up(demo):
    lead = test_docker_kill_of_the_leader_fails_over_within_5s.killed
    run(["docker", "start", demo.container(lead)])
    wait_for(lambda: demo.ready(lead), 60, "the restarted mom%d ready" % (lead + 1))
    got = demo.bodies(lead, "acked")
    assert [b for b in ACKED if b not in got] == []
    demo.leader()


def test_demo_down_then_demo_keeps_every_message_and_does_not_form_again(demo):
    demo.make("demo-down")
    demo.make("demo-down")  # twice is fine
    assert demo.compose("ps", "-q").stdout.strip() == ""
    demo.make("demo")
    demo.leader()
    for i in range(3):
        got = demo.bodies(i, "acked")
        assert [b for b in ACKED if b not in got] == [], "lost on mom%d" % (i + 1)
        assert FORMED not in demo.logs(i)
        assert not demo.view(i)["abstaining"]
    assert demo.publish(1, "acked", "after-restart", "after-restart")
    ACKED.append("after-restart")


def test_wiped_volume_rejoins_without_voting_until_caught_up(demo):
    demo.compose("stop", "mom3")
    demo.compose("rm", "-f", "mom3")
    run(["docker", "volume", "rm", "%s_mom3-data" % demo.project])
    demo.compose("up", "-d", "--no-build", "mom3")
    wait_for(lambda: demo.ready(2), 60, "the wiped mom3 ready")
    got = demo.bodies(2, "acked")
    assert [b for b in ACKED if b not in got] == []
    logs = wait_for(lambda: (lambda s: s if CAUGHT_UP in s else None)(demo.logs(2)), 30,
                    "mom3 caught up")
    assert ABSTAINING in logs and FORMED not in logs, logs
    assert logs.index(ABSTAINING) < logs.index(CAUGHT_UP)
    assert not demo.view(2)["abstaining"]
    demo.leader()


def test_a_member_without_a_secret_stops_with_one_line(demo):
    for missing in ("MOM_JWT_SECRET", "MOM_CLUSTER_SECRET"):
        env = ["-e", "MOM_PEERS=1=mom1:9090,2=mom2:9090,3=mom3:9090", "-e", "MOM_NODE_ID=1"]
        if missing != "MOM_JWT_SECRET":
            env += ["-e", "MOM_JWT_SECRET=demo-test-secret"]
        p = run(["docker", "run", "--rm"] + env + [demo.image], check=False, timeout=60)
        assert p.returncode == 2, p.stdout
        lines = p.stdout.strip().splitlines()
        assert len(lines) == 1 and missing in lines[0], p.stdout


def test_demo_clean_twice(demo):
    demo.make("demo-clean")
    demo.make("demo-clean")
    assert demo.compose("ps", "-q").stdout.strip() == ""
    vols = run(["docker", "volume", "ls", "-q", "--filter", "name=%s_" % demo.project]).stdout
    assert vols.strip() == ""
