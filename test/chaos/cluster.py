# The chaos runner's cluster: N real momd processes (3 or 5) on loopback,
# built on the integration harness's Momd. What fault modules may use:
#   nodes[i]            the Momd of member i+1 (env, args, start, kill9, ...)
#   peer_port(i)        the port member i+1 listens on for its peers
#   link_addr           callable (i, j) -> "host:port" member i+1 dials to
#                       reach member j+1; a network fault module sets it
#                       before start() to put a proxy on every link
#   data_dir(i), group_dir(i), pid(i), preload(i, lib, env)
#   pause(i), resume(i), kill9(i), start(i), leader(), stop_all()
# Every process it starts is stopped by stop_all().
# SPDX-License-Identifier: MIT

import os
import signal
import sys
import time

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from conftest import Momd, free_ports, mint  # noqa: E402

CLUSTER_SECRET = "chaos-cluster-secret-0123456789abcdef"



class NoLeader(Exception):
    pass


class ChaosCluster:
    def __init__(self, tmp, n=3, fsync="always", env=None):
        self.tmp = str(tmp)
        self.n = n
        self.ports = free_ports(n)
        self.link_addr = lambda i, j: "127.0.0.1:%d" % self.ports[j]
        self.nodes = []
        self._preloads = [[] for _ in range(n)]
        for i in range(n):
            e = {"MOM_BOOTSTRAP": "1", "MOM_FSYNC": fsync}
            e.update(env or {})
            self.nodes.append(Momd(os.path.join(self.tmp, "node%d" % (i + 1)),
                                   os.path.join(self.tmp, "node%d.stderr" % (i + 1)), env=e))
        self.started = False

    # ---- what fault modules use ------------------------------------------
    def peer_port(self, i):
        return self.ports[i]

    def data_dir(self, i):
        return self.nodes[i].data_dir

    def group_dir(self, i):
        """The node's Raft storage (log/, snapshots, raft-state), or None."""
        d = self.nodes[i].data_dir
        names = [n for n in os.listdir(d) if n.startswith("group-") and "." not in n] \
            if os.path.isdir(d) else []
        return os.path.join(d, sorted(names)[0]) if names else None

    def pid(self, i):
        p = self.nodes[i].proc
        return p.pid if p is not None and p.poll() is None else None

    def preload(self, i, lib, env=None):
        """Adds an LD_PRELOAD library (and its settings) to member i+1's
        next starts."""
        if lib not in self._preloads[i]:
            self._preloads[i].append(lib)
        self.nodes[i].env["LD_PRELOAD"] = " ".join(self._preloads[i])
        # a sanitizer build must not refuse to run behind another preload
        self.nodes[i].env["ASAN_OPTIONS"] = \
            "abort_on_error=0:detect_leaks=1:verify_asan_link_order=0"
        self.nodes[i].env.update(env or {})

    def _peer_args(self, i):
        peers = ",".join("%d=%s" % (j + 1, "127.0.0.1:%d" % self.ports[j] if j == i
                                    else self.link_addr(i, j)) for j in range(self.n))
        return ["--peer-addr", "127.0.0.1:%d" % self.ports[i], "--node-id", str(i + 1),
                "--peers", peers, "--cluster-secret", CLUSTER_SECRET]

    def start(self, i=None):
        """Starts every member (the first time) or member i+1 again."""
        todo = range(self.n) if i is None else [i]
        for k in todo:
            m = self.nodes[k]
            m.args = self._peer_args(k)
            if not m.running():
                if m.proc is not None:
                    m._reap()
                m.start()
        if i is None and not self.started:
            self.started = True
            for m in self.nodes:  # the bootstrap flag is for the first start only
                m.env.pop("MOM_BOOTSTRAP", None)

    def kill9(self, i):
        self.nodes[i].kill9()

    def pause(self, i):
        os.kill(self.nodes[i].proc.pid, signal.SIGSTOP)

    def resume(self, i):
        if self.nodes[i].running():
            os.kill(self.nodes[i].proc.pid, signal.SIGCONT)

    def running(self, i):
        return self.nodes[i].running()

    def _get(self, i, path):
        return requests.get(self.nodes[i].url(path), timeout=3,
                            headers={"Authorization": "Bearer " + mint("chaos")})

    def leader(self, timeout=30.0):
        """Index of the member every running member agrees leads, once all
        of them are ready."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            among = [i for i in range(self.n) if self.running(i)]
            try:
                leaders = {self._get(i, "/v1/cluster").json()["leader"] for i in among}
                if len(leaders) == 1 and None not in leaders:
                    lid = leaders.pop() - 1
                    if lid in among and all(self._get(i, "/readyz").status_code == 200
                                            for i in among):
                        return lid
                last = leaders
            except (requests.RequestException, ValueError, KeyError) as e:
                last = e
            time.sleep(0.1)
        raise NoLeader("no agreed leader within %.0f s: %r" % (timeout, last))

    def stop_all(self):
        for i in range(self.n):
            try:
                self.resume(i)
            except OSError:
                pass
        for m in self.nodes:
            for c in m.clients:
                c.close()
        for m in self.nodes:
            m.stop()

    def sanitizer_reports(self):
        return [r for r in (m.sanitizer_report() for m in self.nodes) if r]
