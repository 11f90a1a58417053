# The chaos scenario registry. A fault module (test/chaos/faults_*.py, all
# loaded by load()) calls register() once per scenario:
#   register(name, run, nodes=3, prepare=None, heal=None, cleanup=None, ci=True)
#     prepare(cluster)  before the first start: set env, preloads, link_addr
#     run(ctx)          applies faults until ctx.until (time.monotonic()),
#                       logging each with ctx.log(text)
#     heal(ctx)         undoes whatever run left behind (the runner then
#                       restarts stopped members and continues paused ones)
#     cleanup(cluster)  after every member stopped (remove proxies, mounts)
#     ci                part of the short CI run
# ctx: cluster (cluster.ChaosCluster), rng (random.Random of the seed),
# until, log(text), sleep(seconds) (returns False once `until` passed),
# t() (seconds since the fault phase began), history (the workload's
# check.History, for a scenario's own probes).
# SPDX-License-Identifier: MIT

import glob
import importlib
import os
import time

SCENARIOS = {}


class Scenario:
    def __init__(self, name, run, nodes, prepare, heal, cleanup, ci, doc):
        self.name = name
        self.run = run
        self.nodes = nodes
        self.prepare = prepare or (lambda cluster: None)
        self.heal = heal or (lambda ctx: None)
        self.cleanup = cleanup or (lambda cluster: None)
        self.ci = ci
        self.doc = doc


def register(name, run, nodes=3, prepare=None, heal=None, cleanup=None, ci=True, doc=""):
    assert name not in SCENARIOS, "scenario %s registered twice" % name
    SCENARIOS[name] = Scenario(name, run, nodes, prepare, heal, cleanup, ci,
                               doc or (run.__doc__ or "").strip().splitlines()[0])


class Context:
    def __init__(self, cluster, rng, until, history=None):
        self.cluster = cluster
        self.history = history
        self.rng = rng
        self.until = until
        self.start = time.monotonic()
        self.lines = []

    def t(self):
        return time.monotonic() - self.start

    def log(self, text):
        self.lines.append("t=%5.1f %s" % (self.t(), text))

    def sleep(self, seconds):
        """Sleeps, but not past `until`; False when the phase is over."""
        left = self.until - time.monotonic()
        time.sleep(max(0.0, min(seconds, left)))
        return time.monotonic() < self.until


def load():
    """Imports every fault module next to this file; returns the registry."""
    here = os.path.dirname(os.path.abspath(__file__))
    for path in sorted(glob.glob(os.path.join(here, "faults_*.py"))):
        importlib.import_module(os.path.basename(path)[:-3])
    return SCENARIOS
