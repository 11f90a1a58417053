# Network faults for the chaos runner: one TCP proxy per directed peer link
# (faults_net.py puts them on a cluster's links and schedules the faults).
#
# Every node dials each other member itself (docs/peer-protocol.md,
# "Connections"), so the link i->j is the connection node i opens to node j:
# node i's MOM_PEERS names, for each other member j, the port of the proxy of
# link i->j, which forwards to j's real peer port. The proxies are byte pipes
# (h2c or TLS pass through unchanged; peer identity is the token's `sub`, not
# the address), so without a fault the cluster behaves as without them.
#
# What a fault does to the bytes, per direction of each connection:
#   stall   bytes from node a to node b are held (not read, so TCP back-
#           pressure fills the sender's buffers) until healed, then delivered
#           in order: a black-holed route whose packets TCP retransmits. An
#           RPC needs both directions, so holding a->b on both connections of
#           the pair stalls the calls of both nodes (Raft's view: a cut pair);
#   link    the connection node a dials to node b is black-holed (both of
#           its directions held) while the connection b dials to a flows: a
#           can no longer call b, but b still calls a and gets answers — the
#           one-way cut a request/response protocol can see;
#   reset   connections between the groups are aborted (RST) and new ones
#           are closed at accept while the fault lasts;
#   latency each chunk waits its link's delay (+ uniform jitter) before it is
#           written, order kept; "loss" is what TCP makes of a lost packet:
#           with probability p a chunk and everything behind it waits one
#           retransmission timeout (200..1000 ms).
# Faults are changed from any thread; the proxies run on one asyncio loop in
# a background thread owned by `Net`, and `Net.close()` stops them all.
# SPDX-License-Identifier: MIT

import asyncio
import random
import threading

CHUNK = 65536
PIPE_DEPTH = 16  # chunks read ahead of a held direction (then TCP back-pressure)
RTO_S = (0.2, 1.0)  # the stall of one "lost" chunk


class Net:
    """The proxies of every directed link, their fault state and counters.
    Node ids here are 0-based indexes; a link is (src, dst): the connection
    src dials to dst."""

    def __init__(self, seed=0):
        self.rng = random.Random(seed)
        self.links = {}  # (src, dst) -> {"server", "target", "port", "conns"}
        self.held = set()  # (a, b): bytes from node a to node b are held
        self.held_links = set()  # (src, dst): both directions of that link held
        self.reset = set()  # (a, b): connections between a and b are refused
        self.delay = {}  # (a, b) -> (latency_s, jitter_s, loss)
        self.accepted = 0
        self.aborted = 0
        self.bytes = 0
        self.loop = asyncio.new_event_loop()
        self.changed = None  # asyncio.Condition, created on the loop
        self.thread = threading.Thread(target=self._run, name="netfault", daemon=True)
        ready = threading.Event()
        self.loop.call_soon(ready.set)
        self.thread.start()
        ready.wait(10)
        self._call(self._init())

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def _init(self):
        self.changed = asyncio.Condition()

    def _call(self, coro, timeout=15):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    # ---- links ------------------------------------------------------------
    def add_link(self, src, dst, target_port, host="127.0.0.1"):
        """Starts the proxy of link src->dst towards host:target_port and
        returns the port it listens on (127.0.0.1, chosen by the kernel)."""
        return self._call(self._add_link(src, dst, target_port, host))

    async def _add_link(self, src, dst, target_port, host):
        link = {"target": (host, target_port), "conns": set()}

        async def on_accept(reader, writer):
            await self._serve(src, dst, link, reader, writer)

        link["server"] = await asyncio.start_server(on_accept, "127.0.0.1", 0)
        link["port"] = link["server"].sockets[0].getsockname()[1]
        self.links[(src, dst)] = link
        return link["port"]

    async def _serve(self, src, dst, link, creader, cwriter):
        self.accepted += 1
        if self._refused(src, dst):
            self._abort(cwriter)
            return
        try:
            ureader, uwriter = await asyncio.open_connection(*link["target"])
        except OSError:
            self._abort(cwriter)  # the target is down: the dialler sees a reset
            return
        conn = (cwriter, uwriter)
        link["conns"].add(conn)
        try:
            await asyncio.gather(self._pipe(src, dst, (src, dst), creader, uwriter),
                                 self._pipe(dst, src, (src, dst), ureader, cwriter))
        finally:
            link["conns"].discard(conn)
            for w in conn:
                w.close()

    def _refused(self, a, b):
        return (a, b) in self.reset or (b, a) in self.reset

    def _held(self, frm, to, link):
        return (frm, to) in self.held or link in self.held_links

    def _abort(self, writer):
        self.aborted += 1
        writer.transport.abort()

    async def _pipe(self, frm, to, link, reader, writer):
        """Copies frm's bytes to `to` through the faults of this moment."""
        q = asyncio.Queue(PIPE_DEPTH)

        async def read():
            try:
                while True:
                    data = await reader.read(CHUNK)
                    await q.put((self.loop.time(), data))
                    if not data:
                        return
            except (OSError, asyncio.IncompleteReadError):
                await q.put((self.loop.time(), b""))

        reading = asyncio.ensure_future(read())
        try:
            while True:
                t, data = await q.get()
                latency, jitter, loss = self.delay.get((frm, to), (0.0, 0.0, 0.0))
                wait = t + latency + (self.rng.uniform(0, jitter) if jitter else 0.0)
                if loss and self.rng.random() < loss:
                    wait += self.rng.uniform(*RTO_S)
                if wait > self.loop.time():
                    await asyncio.sleep(wait - self.loop.time())
                async with self.changed:
                    await self.changed.wait_for(lambda: not self._held(frm, to, link))
                if not data:
                    writer.close()  # the other side closed: so does this one
                    return
                writer.write(data)
                self.bytes += len(data)
                await writer.drain()
        except (OSError, ConnectionError):
            writer.transport.abort()
        finally:
            reading.cancel()

    # ---- faults -----------------------------------------------------------
    def _set(self, held=None, held_links=None, reset=None, delay=None):
        async def apply():
            if held is not None:
                self.held = set(held)
            if held_links is not None:
                self.held_links = set(held_links)
            if reset is not None:
                self.reset = set(reset)
                for (src, dst), link in self.links.items():
                    if self._refused(src, dst):
                        for conn in list(link["conns"]):
                            for w in conn:
                                self._abort(w)
            if delay is not None:
                self.delay = dict(delay)
            async with self.changed:
                self.changed.notify_all()
        self._call(apply())

    @staticmethod
    def between(groups):
        """Every ordered pair of nodes in different groups."""
        return {(a, b) for g in groups for h in groups if g is not h for a in g for b in h}

    def partition(self, groups, mode="stall"):
        """Cuts every pair of nodes in different groups, in both directions
        (mode "stall": held; "reset": aborted and refused)."""
        pairs = self.between(groups)
        if mode == "reset":
            self._set(reset=pairs, held=set())
        else:
            self._set(held=pairs, reset=set())

    def hold(self, a, b):
        """One way: bytes from node a to node b are held (both connections)."""
        self._set(held=self.held | {(a, b)})

    def hold_link(self, src, dst):
        """One way: the connection src dials to dst is black-holed; dst's own
        connection to src still carries its calls and their answers."""
        self._set(held_links=self.held_links | {(src, dst)})

    def set_delay(self, delay):
        """delay: (a, b) -> (latency_s, jitter_s, loss probability per chunk)."""
        self._set(delay=delay)

    def heal(self):
        self._set(held=set(), held_links=set(), reset=set(), delay={})

    def close(self):
        async def stop():
            for link in self.links.values():
                link["server"].close()
                for conn in list(link["conns"]):
                    for w in conn:
                        w.transport.abort()
            self.links = {}
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            self._call(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
