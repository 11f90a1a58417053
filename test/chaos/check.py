# The chaos runner's history and its check: a pure function from what the
# workload saw to the list of violations of each property (all must be
# empty). Times are the client's time.monotonic(); a call's effect happened
# somewhere between its send and its answer.
#
# Queues (one queue, bodies unique per publish):
#   lost           acknowledged publish never delivered
#   duplicated     one body delivered under two or more message ids
#                  (redelivery of the same id is at-least-once, not this)
#   unexpected     a delivered body that was never published
#   after_ack      a delivery asked for after an ack of that id was
#                  answered 204
#   double_lease   one id leased to two receives within a visibility
#                  timeout: the second answered before the first could
#                  have expired (first's send + timeout - CLOCK_SLACK_S)
# Topics (one topic, read through every node, one durable subscription):
#   lost           acknowledged publish seen at no offset by the end
#   duplicated     one body at two or more offsets, or at an offset other
#                  than the one its publish was answered with
#   unexpected     a body read that was never published
#   order          two different bodies read at one offset (nodes disagree)
#   stale_read     a read that returned fewer than it asked for and still
#                  missed an offset acknowledged before the read was sent
#   cursor_back    the subscription's cursor seen lower than earlier
#                  (its object, or a read starting below an acked offset)
# Both:
#   stale_4xx      a 4xx for something that exists (410 for an ack whose
#                  lease had expired is legitimate and not recorded)
#   cut_off        a 2xx read or receive answered by a node of a minority
#                  that was cut off (faults_net.py's probe) before the cut
#                  was healed: it cannot have passed the read barrier
#   errors         other unexpected answers (5xx other than 503/507)
# SPDX-License-Identifier: MIT

import threading

CLOCK_SLACK_S = 0.25


class History:
    """Everything the workload saw; its threads append under `lock`."""

    def __init__(self):
        self.lock = threading.Lock()
        # queue
        self.attempted = {}  # body -> idempotency key
        self.acked = set()  # bodies whose publish was answered 2xx
        self.deliveries = []  # (body, id, t_send, t_recv, visibility_s)
        self.acks = []  # (id, status, t_send, t_recv)
        # topic
        self.t_attempted = set()
        self.t_acked = {}  # body -> offset answered
        self.t_acked_at = []  # (t_recv, offset) of acknowledged publishes
        self.reads = []  # (node, from, max, t_send, [(offset, body)])
        self.cursors = []  # (t_send, t_recv, cursor) seen on the subscription
        self.sub_acks = []  # (offset, status, t_send, t_recv)
        self.sub_reads = []  # (t_send, t_recv, first offset returned)
        # both
        self.ack_times = []  # answers of acknowledged publishes (availability)
        self.stale = []  # (what, status, text)
        self.errors = []
        # what cut-off nodes answered (faults_net.py's probe)
        self.cut_off = []  # (node, what, status, text) of 2xx while cut off
        self.probes = {"503": 0, "after heal": 0, "unanswered": 0}
        # (and "snapshots installed" during a network scenario)

    def note(self, what, r):
        """Records an unexpected answer `r` (a requests.Response)."""
        with self.lock:
            if 400 <= r.status_code < 500:
                self.stale.append((what, r.status_code, r.text[:200]))
            else:
                self.errors.append((what, r.status_code, r.text[:200]))


def check_queue(h):
    ids_of = {}
    for body, mid, _, _, _ in h.deliveries:
        ids_of.setdefault(body, set()).add(mid)
    acked_at = {}
    for mid, status, _, t_recv in h.acks:
        if status == 204:
            acked_at[mid] = min(t_recv, acked_at.get(mid, t_recv))
    by_id = {}
    for d in h.deliveries:
        by_id.setdefault(d[1], []).append(d)
    after_ack, double = [], []
    for mid, ds in by_id.items():
        ds.sort(key=lambda d: d[2])
        for d in ds:
            if mid in acked_at and d[2] > acked_at[mid]:
                after_ack.append((mid, d[0]))
        for a, b in zip(ds, ds[1:]):
            if b[3] < a[2] + a[4] - CLOCK_SLACK_S:
                double.append((mid, a[0], round(b[3] - a[2], 3)))
    return {
        "lost": sorted(h.acked - set(ids_of)),
        "duplicated": sorted(b for b, ids in ids_of.items() if len(ids) > 1),
        "unexpected": sorted(b for b in ids_of if b not in h.attempted),
        "after_ack": sorted(after_ack),
        "double_lease": sorted(double),
    }


def check_topic(h):
    at = {}  # offset -> set of bodies read there
    offsets_of = {}  # body -> set of offsets
    for _, _, _, _, msgs in h.reads:
        for off, body in msgs:
            at.setdefault(off, set()).add(body)
            offsets_of.setdefault(body, set()).add(off)
    dup = sorted(b for b, offs in offsets_of.items()
                 if len(offs) > 1 or (b in h.t_acked and h.t_acked[b] not in offs))
    stale_read = []
    acked_sorted = sorted(h.t_acked_at)
    for node, frm, mx, t_send, msgs in h.reads:
        if len(msgs) >= mx:
            continue
        seen = {off for off, _ in msgs}
        for t_recv, off in acked_sorted:
            if t_recv >= t_send:
                break
            if off >= frm and off not in seen:
                stale_read.append((node, frm, off))
                break
    back = []
    seq = sorted(h.cursors)
    for t_send, _, cur in seq:
        before = [c for _, t_recv, c in seq if t_recv < t_send]
        if before and cur < max(before):
            back.append((max(before), cur))
    acked_off = sorted((t_recv, off) for off, status, _, t_recv in h.sub_acks if status == 204)
    for t_send, _, first in h.sub_reads:
        passed = [off for t_recv, off in acked_off if t_recv < t_send]
        if first is not None and passed and first <= max(passed):
            back.append((max(passed) + 1, first))
    return {
        "lost": sorted(b for b in h.t_acked if b not in offsets_of),
        "duplicated": dup,
        "unexpected": sorted(b for b in offsets_of if b not in h.t_attempted),
        "order": sorted((off, sorted(bs)) for off, bs in at.items() if len(bs) > 1),
        "stale_read": stale_read,
        "cursor_back": back,
    }


def check(h):
    """Every violation in history `h`, by property; all must be empty."""
    found = {}
    for k, v in check_queue(h).items():
        found["queue_" + k] = v
    for k, v in check_topic(h).items():
        found["topic_" + k] = v
    found["stale_4xx"] = list(h.stale)
    found["errors"] = list(h.errors)
    found["cut_off"] = list(h.cut_off)
    return found


def outage_stats(ack_times, start, end):
    """(availability, longest outage): the share of 100 ms slots of
    [start, end] in which some publish was acknowledged, and the longest
    gap between two acknowledgements (or the phase's edges)."""
    times = sorted(t for t in ack_times if start <= t <= end)
    edges = [start] + times + [end]
    longest = max(b - a for a, b in zip(edges, edges[1:]))
    slots = max(1, int((end - start) / 0.1))
    hit = {int((t - start) / 0.1) for t in times}
    return len([s for s in hit if s < slots]) / slots, longest
