# Network faults and five-node clusters: scenarios that put netfault.py's
# proxies on every peer link of the cluster (prepare), apply one seeded
# fault at a time and heal it (run), and the probe that checks what a
# cut-off minority answers.
#
# While a scenario cuts a known minority off, the probe asks every node of
# it for a read of the queue, a receive, a topic read and a read of the
# subscription, and for a queue the majority created after the cut (which
# the cut-off node never heard of) a receive, a read and a publish: each
# must be answered 503 (or not before the heal). A 2xx answered while the
# node is still cut off is a stale read (it could not have passed the read
# barrier: recorded in the history's `cut_off`), and a 4xx a stale 4xx
# (every queue asked for exists). kill9-5 and pause-5 are faults_node.py's
# faults on five members.
# SPDX-License-Identifier: MIT

import socket
import threading
import time

import requests

import faults_node
from cluster import mint
from netfault import Net
from scenarios import register
from workload import QUEUE, SUB, TOPIC

PROBE_TIMEOUT_S = 8.0  # above MOM_COMMIT_TIMEOUT_MS (5 s): a 503 comes first
TOKEN = mint("chaos")
# a snapshot every few seconds of the workload: a node cut off for a few
# seconds often comes back behind the others' compaction and catches up by
# InstallSnapshot, under faults
SNAPSHOT_ENTRIES = 200


def attach(cluster):
    """Puts a proxy on every directed link of `cluster` before its first
    start (cluster.net, closed by detach)."""
    # the members' peer ports are free but not yet bound: hold them while
    # the proxies take ports of their own, so the kernel cannot hand one out
    reserved = []
    for i in range(cluster.n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", cluster.peer_port(i)))
        reserved.append(s)
    net = Net()
    try:
        ports = {(i, j): net.add_link(i, j, cluster.peer_port(j))
                 for i in range(cluster.n) for j in range(cluster.n) if i != j}
    except BaseException:
        net.close()
        raise
    finally:
        for s in reserved:
            s.close()
    cluster.net = net
    cluster.link_addr = lambda i, j: "127.0.0.1:%d" % ports[(i, j)]
    for m in cluster.nodes:
        m.env["MOM_SNAPSHOT_ENTRIES"] = str(SNAPSHOT_ENTRIES)


def heal(ctx):
    ctx.cluster.net.heal()


def detach(cluster):
    net = getattr(cluster, "net", None)
    if net is not None:
        cluster.net = None
        net.close()


class Probe:
    """Queries the nodes of a cut-off minority and judges their answers
    into the history (h.cut_off, h.stale, h.errors and the counters)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.threads = []

    def during(self, nodes, healed):
        """One read and one receive to each node in `nodes`, judged against
        `healed` (a threading.Event set when the cut is healed)."""
        for i in nodes:
            m = self.ctx.cluster.nodes[i]
            if not m.running() or not m.http:
                continue
            for what, method, path, params in (
                    ("cut-off read", "GET", "/v1/queues/" + QUEUE, None),
                    ("cut-off receive", "POST", "/v1/queues/%s/receive" % QUEUE,
                     {"max": 1, "wait_ms": 0, "visibility_timeout_ms": 1000}),
                    ("cut-off topic read", "GET", "/v1/topics/%s/messages" % TOPIC,
                     {"from": 0, "max": 1}),
                    ("cut-off subscription", "GET",
                     "/v1/topics/%s/subscriptions/%s" % (TOPIC, SUB), None)):
                t = threading.Thread(target=self._one, daemon=True,
                                     args=(i, what, m.url(path), method, params, healed))
                t.start()
                self.threads.append(t)

    def created(self, majority, minority, healed):
        """Creates a new queue through the majority side while `minority`
        is cut off, then asks each cut-off node to receive from it, read it
        and publish to it: a node that never heard of the queue must answer
        503, never 404."""
        self.created_n = getattr(self, "created_n", 0) + 1
        name = "cut-%d" % self.created_n
        t = threading.Thread(target=self._create_then_probe, daemon=True,
                             args=(name, majority, minority, healed))
        t.start()
        self.threads.append(t)

    def _create_then_probe(self, name, majority, minority, healed):
        c = self.ctx.cluster
        while not healed.is_set():
            m = c.nodes[majority[self.created_n % len(majority)]]
            try:
                r = requests.put(m.url("/v1/queues/" + name), json={}, timeout=PROBE_TIMEOUT_S,
                                 headers={"Authorization": "Bearer " + TOKEN})
            except requests.RequestException:
                r = None
            if r is not None and r.status_code in (200, 201):
                break
            if r is not None and r.status_code not in (503,):
                self.ctx.history.note("create %s on the majority" % name, r)
                return
            time.sleep(0.1)
        if healed.is_set():
            return
        for i in minority:
            m = c.nodes[i]
            for what, method, path, params in (
                    ("receive from a queue created while cut off", "POST",
                     "/v1/queues/%s/receive" % name, {"max": 1, "wait_ms": 0}),
                    ("read of a queue created while cut off", "GET", "/v1/queues/" + name, None),
                    ("publish to a queue created while cut off", "POST",
                     "/v1/queues/%s/messages" % name, None)):
                t = threading.Thread(target=self._one, daemon=True,
                                     args=(i, what, m.url(path), method, params, healed))
                t.start()
                self.threads.append(t)

    def _one(self, i, what, url, method, params, healed):
        h = self.ctx.history
        try:
            r = requests.request(method, url, params=params, timeout=PROBE_TIMEOUT_S,
                                 headers={"Authorization": "Bearer " + TOKEN},
                                 data=b"probe" if method == "POST" and "messages" in url else None)
        except requests.RequestException:
            with h.lock:
                h.probes["unanswered"] += 1
            return
        cut_off = not healed.is_set()
        if r.status_code == 503:
            with h.lock:
                h.probes["503"] += 1
        elif 200 <= r.status_code < 300 and cut_off:
            with h.lock:
                h.cut_off.append((i + 1, what, r.status_code, r.text[:200]))
        elif 200 <= r.status_code < 300:
            with h.lock:
                h.probes["after heal"] += 1
        else:
            h.note("node %d %s" % (i + 1, what), r)

    def join(self):
        for t in self.threads:
            t.join(PROBE_TIMEOUT_S + 5)


def find_leader(cluster):
    """Index of a node that says it leads, or None (short timeouts: nodes
    may be cut off)."""
    for i, m in enumerate(cluster.nodes):
        if not m.running() or not m.http:
            continue
        try:
            v = requests.get(m.url("/v1/cluster"), timeout=0.5,
                             headers={"Authorization": "Bearer " + TOKEN}).json()
        except (requests.RequestException, ValueError):
            continue
        if v.get("role") == "leader":
            return i
    return None


def _pick_node(ctx):
    """The leader half of the time (the interesting case), else any node."""
    if ctx.rng.random() < 0.5:
        li = find_leader(ctx.cluster)
        if li is not None:
            return li
    return ctx.rng.randrange(ctx.cluster.n)


def _names(nodes):
    return ",".join(str(i + 1) for i in sorted(nodes))


def _cut(ctx, probe, minority, hold):
    """Cuts `minority` from the rest for `hold` seconds (stall or reset),
    probing its nodes meanwhile, then heals."""
    c = ctx.cluster
    rest = set(range(c.n)) - set(minority)
    mode = ctx.rng.choice(("stall", "reset"))
    healed = threading.Event()
    c.net.partition([set(minority), rest], mode=mode)
    ctx.log("cut %s | %s (%s) for %.1f s" % (_names(minority), _names(rest), mode, hold))
    time.sleep(0.2)
    probe.during(minority, healed)
    probe.created(sorted(rest), minority, healed)
    time.sleep(max(0.0, hold - 0.2))
    healed.set()  # answers from here on are not "while cut off"
    c.net.heal()


def _seed_net(ctx):
    ctx.cluster.net.rng.seed(ctx.rng.random())
    return Probe(ctx)


# One fault each, healed before returning: f(ctx, probe).

def isolate_once(ctx, probe):
    _cut(ctx, probe, [_pick_node(ctx)], ctx.rng.uniform(1.0, 5.0))


def minority_once(ctx, probe):
    n = ctx.cluster.n
    first = _pick_node(ctx)
    others = [i for i in range(n) if i != first]
    ctx.rng.shuffle(others)
    _cut(ctx, probe, [first] + others[:(n - 1) // 2 - 1], ctx.rng.uniform(1.0, 5.0))


def one_way_once(ctx, probe):
    c = ctx.cluster
    cuts = []
    for _ in range(ctx.rng.choice((1, 1, 2))):
        a = _pick_node(ctx)
        b = ctx.rng.choice([j for j in range(c.n) if j != a])
        if ctx.rng.random() < 0.5:
            a, b = b, a
        if ctx.rng.random() < 0.5:
            c.net.hold(a, b)
            cuts.append("bytes %d->%d held" % (a + 1, b + 1))
        else:
            c.net.hold_link(a, b)
            cuts.append("link %d->%d black-holed" % (a + 1, b + 1))
    hold = ctx.rng.uniform(1.0, 5.0)
    ctx.log("%s for %.1f s" % (", ".join(cuts), hold))
    time.sleep(hold)
    c.net.heal()


def flapping_once(ctx, probe):
    c = ctx.cluster
    first = _pick_node(ctx)
    others = [i for i in range(c.n) if i != first]
    ctx.rng.shuffle(others)
    minority = {first} | set(others[:ctx.rng.randrange((c.n + 1) // 2)])
    groups = [minority, set(range(c.n)) - minority]
    mode = ctx.rng.choice(("stall", "reset"))
    span = ctx.rng.uniform(2.0, 6.0)
    ctx.log("flapping %s | %s (%s) for %.1f s" % (_names(groups[0]), _names(groups[1]),
                                                  mode, span))
    end = time.monotonic() + span
    while time.monotonic() < end:
        c.net.partition(groups, mode=mode)
        time.sleep(ctx.rng.uniform(0.1, 0.5))
        c.net.heal()
        time.sleep(ctx.rng.uniform(0.1, 0.5))


def latency_loss_once(ctx, probe):
    c = ctx.cluster
    n = c.n
    delay = {(a, b): (ctx.rng.uniform(0, 0.15), ctx.rng.uniform(0, 0.05),
                      ctx.rng.uniform(0, 0.05))
             for a in range(n) for b in range(n) if a != b}
    c.net.set_delay(delay)
    hold = ctx.rng.uniform(2.0, 6.0)
    what = "latency up to %.0f ms, loss up to %.1f%% for %.1f s" % (
        1000 * max(lat + jit for lat, jit, _ in delay.values()),
        100 * max(x[2] for x in delay.values()), hold)
    if ctx.rng.random() < 1 / 3:
        i = _pick_node(ctx)
        healed = threading.Event()
        c.net.partition([{i}, set(range(n)) - {i}])
        ctx.log(what + ", node %d cut off meanwhile" % (i + 1))
        time.sleep(0.2)
        probe.during([i], healed)
        time.sleep(hold)
        healed.set()
    else:
        ctx.log(what)
        time.sleep(hold)
    c.net.heal()


def _schedule(*faults):
    """A scenario applying one of `faults` at a time until ctx.until."""
    def run(ctx):
        probe = _seed_net(ctx)
        while ctx.sleep(ctx.rng.uniform(0.5, 1.5)):
            ctx.rng.choice(faults)(ctx, probe)
        probe.join()
        with ctx.history.lock:
            ctx.history.probes["snapshots installed"] = sum(
                m.stderr_text().count("installed snapshot") for m in ctx.cluster.nodes)
    return run


for _name, _nodes, _ci, _faults, _doc in (
        ("partition-isolate", 3, False, (isolate_once,),
         "one node (the leader half of the time) cut off from the others for 1-5 s"),
        ("partition-majority", 5, False, (minority_once,),
         "five nodes split 2 | 3 (the leader in the minority half of the time) for 1-5 s"),
        ("one-way", 3, False, (one_way_once,),
         "one or two one-way cuts for 1-5 s: a's bytes to b held, "
         "or the link a dials to b black-holed"),
        ("flapping", 3, False, (flapping_once,),
         "a node or a minority cut and healed every 100-500 ms for 2-6 s"),
        ("latency-loss", 3, False, (latency_loss_once,),
         "per-link latency 0-150 ms, jitter 0-50 ms, loss 0-5% for 2-6 s; "
         "a third of the time one node cut off too"),
        ("net-mixed", 5, True, (isolate_once, minority_once, one_way_once, flapping_once,
                                latency_loss_once),
         "any of the network faults above, one at a time, on five nodes")):
    register(_name, _schedule(*_faults), nodes=_nodes, prepare=attach, heal=heal,
             cleanup=detach, ci=_ci, doc=_doc)
register("kill9-5", faults_node.kill9, nodes=5, ci=False,
         doc="kill -9 of one of five members, restarted after 0.2-2.5 s")
register("pause-5", faults_node.pause, nodes=5, ci=False,
         doc="SIGSTOP of one of five members, SIGCONT after 0.2-2.5 s")
