/* The Prometheus registry (see metrics.h). Request counters are a dense
 * array [route][method][status slot]: statuses get a slot the first time
 * they are seen (at most METRICS_STATUS_SLOTS - 1 distinct ones, then
 * "other"), so an update is three array indexes and a histogram bucket
 * scan, and every label set is bounded by the route table, never by what a
 * client sends. The `route` label is the route's pattern.
 * SPDX-License-Identifier: MIT */
#include "broker/metrics.h"

#include "broker/store.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/histogram.h"
#include "replication/node.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define METRICS_STATUS_SLOTS 32
#define METRICS_METHOD_SLOTS 6
#define ROUTE_LABEL_MAX 96

struct metrics {
    uint8_t status_slot[600]; /* status -> slot + 1; 0 = none yet */
    uint16_t slot_status[METRICS_STATUS_SLOTS];
    size_t nslots; /* the last slot is "other" and never assigned */
    uint64_t requests[ROUTE_KINDS][METRICS_METHOD_SLOTS][METRICS_STATUS_SLOTS];
    /* Routes that share a pattern (GET/PUT/DELETE /v1/queues/{queue}) share
     * one latency histogram: the one of the first route with that label. */
    struct histogram latency[ROUTE_KINDS];
    size_t latency_of[ROUTE_KINDS];
    char route_label[ROUTE_KINDS][ROUTE_LABEL_MAX];
    uint64_t start_time_us; /* process start, microseconds since the epoch */
};

static const char *const method_names[METRICS_METHOD_SLOTS] = {"GET",    "PUT",  "POST",
                                                               "DELETE", "HEAD", "OTHER"};

static size_t method_slot(enum http_method method)
{
    for (size_t i = 0; i < METRICS_METHOD_SLOTS; i++)
        if ((unsigned)method == 1u << i)
            return i;
    return METRICS_METHOD_SLOTS - 1;
}

/* The process start from /proc (boot time + start ticks), else now. */
static uint64_t process_start_us(void)
{
    uint64_t now = clock_wall_ms() * 1000;
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long btime = 0;
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    if (f)
        fclose(f);
    f = fopen("/proc/self/stat", "r");
    char buf[1024];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ticks = 0;
    long hz = sysconf(_SC_CLK_TCK);
    if (!btime || !p || hz <= 0 ||
        sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d "
               "%llu",
               &ticks) != 1)
        return now;
    return btime * 1000000ull + ticks * 1000000ull / (unsigned long long)hz;
}

struct metrics *metrics_new(void)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    for (size_t r = 0; r < ROUTE_KINDS; r++) {
        histogram_init(&m->latency[r], histogram_request_bounds_us, histogram_request_nbounds);
        router_route_label((enum route)r, m->route_label[r], ROUTE_LABEL_MAX);
        m->latency_of[r] = r;
        for (size_t k = 0; k < r; k++) {
            if (!strcmp(m->route_label[k], m->route_label[r])) {
                m->latency_of[r] = k;
                break;
            }
        }
    }
    m->start_time_us = process_start_us();
    return m;
}

void metrics_free(struct metrics *m)
{
    free(m);
}

static size_t status_slot(struct metrics *m, int status)
{
    if (status < 100 || status >= 600)
        return METRICS_STATUS_SLOTS - 1;
    uint8_t s = m->status_slot[status];
    if (s)
        return (size_t)s - 1;
    if (m->nslots == METRICS_STATUS_SLOTS - 1)
        return METRICS_STATUS_SLOTS - 1;
    m->slot_status[m->nslots] = (uint16_t)status;
    m->status_slot[status] = (uint8_t)(m->nslots + 1);
    return m->nslots++;
}

void metrics_count_request(struct metrics *m, enum route route, enum http_method method, int status,
                           uint64_t micros)
{
    size_t r = (size_t)route < ROUTE_KINDS ? (size_t)route : ROUTE_NONE;
    m->requests[r][method_slot(method)][status_slot(m, status)]++;
    histogram_observe(&m->latency[m->latency_of[r]], micros);
}

uint64_t metrics_request_count(const struct metrics *m, enum route route, enum http_method method,
                               int status)
{
    if ((size_t)route >= ROUTE_KINDS || status < 100 || status >= 600 || !m->status_slot[status])
        return 0;
    return m->requests[route][method_slot(method)][m->status_slot[status] - 1];
}

/* ---- text format helpers ---- */

void metrics_label_value(struct jbuf *out, const char *v)
{
    const char *start = v;
    for (; *v; v++) {
        const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
        if (!esc)
            continue;
        jbuf_raw(out, start, (size_t)(v - start));
        jbuf_lit(out, esc);
        start = v + 1;
    }
    jbuf_raw(out, start, (size_t)(v - start));
}

void metrics_format_seconds(uint64_t micros, char out[32])
{
    int n = snprintf(out, 32, "%" PRIu64 ".%06" PRIu64, micros / 1000000, micros % 1000000);
    while (n > 0 && out[n - 1] == '0')
        out[--n] = '\0';
    if (n > 0 && out[n - 1] == '.')
        out[--n] = '\0';
}

static void family(struct jbuf *b, const char *name, const char *type, const char *help)
{
    jbuf_lit(b, "# HELP ");
    jbuf_lit(b, name);
    jbuf_lit(b, " ");
    jbuf_lit(b, help);
    jbuf_lit(b, "\n# TYPE ");
    jbuf_lit(b, name);
    jbuf_lit(b, " ");
    jbuf_lit(b, type);
    jbuf_lit(b, "\n");
}

/* name{l1="v1"[,l2="v2"]} value */
static void sample(struct jbuf *b, const char *name, const char *l1, const char *v1, const char *l2,
                   const char *v2, uint64_t value)
{
    jbuf_lit(b, name);
    if (l1) {
        jbuf_lit(b, "{");
        jbuf_lit(b, l1);
        jbuf_lit(b, "=\"");
        metrics_label_value(b, v1);
        if (l2) {
            jbuf_lit(b, "\",");
            jbuf_lit(b, l2);
            jbuf_lit(b, "=\"");
            metrics_label_value(b, v2);
        }
        jbuf_lit(b, "\"}");
    }
    jbuf_lit(b, " ");
    jbuf_u64(b, value);
    jbuf_lit(b, "\n");
}

static void gauge(struct jbuf *b, const char *name, const char *help, uint64_t value)
{
    family(b, name, "gauge", help);
    sample(b, name, NULL, NULL, NULL, NULL, value);
}

static void counter(struct jbuf *b, const char *name, const char *help, uint64_t value)
{
    family(b, name, "counter", help);
    sample(b, name, NULL, NULL, NULL, NULL, value);
}

/* The _bucket/_sum/_count lines of one histogram; labels is "" or
 * `route="..."` (already escaped). */
static void histogram_lines(struct jbuf *b, const char *name, const char *labels,
                            const struct histogram *h)
{
    char le[32];
    for (size_t i = 0; i <= h->nbounds; i++) {
        jbuf_lit(b, name);
        jbuf_lit(b, "_bucket{");
        if (labels[0]) {
            jbuf_lit(b, labels);
            jbuf_lit(b, ",");
        }
        jbuf_lit(b, "le=\"");
        if (i < h->nbounds) {
            metrics_format_seconds(h->bounds_us[i], le);
            jbuf_lit(b, le);
        } else {
            jbuf_lit(b, "+Inf");
        }
        jbuf_lit(b, "\"} ");
        jbuf_u64(b, histogram_cumulative(h, i));
        jbuf_lit(b, "\n");
    }
    const char *open = labels[0] ? "{" : "";
    const char *close = labels[0] ? "}" : "";
    metrics_format_seconds(h->sum_us, le);
    jbuf_lit(b, name);
    jbuf_lit(b, "_sum");
    jbuf_lit(b, open);
    jbuf_lit(b, labels);
    jbuf_lit(b, close);
    jbuf_lit(b, " ");
    jbuf_lit(b, le);
    jbuf_lit(b, "\n");
    jbuf_lit(b, name);
    jbuf_lit(b, "_count");
    jbuf_lit(b, open);
    jbuf_lit(b, labels);
    jbuf_lit(b, close);
    jbuf_lit(b, " ");
    jbuf_u64(b, h->count);
    jbuf_lit(b, "\n");
}

/* ---- sections ---- */

static void render_http(const struct metrics *m, struct jbuf *b)
{
    family(b, "mom_http_requests_total", "counter",
           "HTTP requests answered, by route pattern, method and status.");
    char status[8];
    for (size_t r = 0; r < ROUTE_KINDS; r++) {
        for (size_t k = 0; k < METRICS_METHOD_SLOTS; k++) {
            for (size_t s = 0; s < METRICS_STATUS_SLOTS; s++) {
                uint64_t v = m->requests[r][k][s];
                if (!v)
                    continue;
                if (s == METRICS_STATUS_SLOTS - 1)
                    snprintf(status, sizeof status, "other");
                else
                    snprintf(status, sizeof status, "%u", (unsigned)m->slot_status[s]);
                jbuf_lit(b, "mom_http_requests_total{route=\"");
                metrics_label_value(b, m->route_label[r]);
                jbuf_lit(b, "\",method=\"");
                jbuf_lit(b, method_names[k]);
                jbuf_lit(b, "\",status=\"");
                jbuf_lit(b, status);
                jbuf_lit(b, "\"} ");
                jbuf_u64(b, v);
                jbuf_lit(b, "\n");
            }
        }
    }
    family(b, "mom_http_request_duration_seconds", "histogram",
           "Time from a request's arrival to its answer, by route pattern.");
    for (size_t r = 0; r < ROUTE_KINDS; r++) {
        if (!m->latency[r].count)
            continue;
        struct jbuf label;
        jbuf_init(&label);
        jbuf_lit(&label, "route=\"");
        metrics_label_value(&label, m->route_label[r]);
        jbuf_lit(&label, "\"");
        jbuf_raw(&label, "", 1); /* NUL */
        if (label.oom) {
            b->oom = true;
        } else {
            histogram_lines(b, "mom_http_request_duration_seconds", label.p, &m->latency[r]);
        }
        jbuf_cleanup(&label);
    }
}

static void render_queues(const struct store *st, struct jbuf *b)
{
    static const struct {
        const char *name, *type, *help;
    } fams[] = {
        {"mom_queue_depth", "gauge", "Stored messages not leased (delayed ones included)."},
        {"mom_queue_in_flight", "gauge", "Live leases."},
        {"mom_queue_delayed", "gauge", "Messages not yet visible."},
        {"mom_queue_published_total", "counter",
         "Messages stored by publishes, counted at apply (same on every replica)."},
        {"mom_queue_acked_total", "counter",
         "Messages removed by an ack or an ack=auto receive, counted at apply."},
        {"mom_queue_dead_lettered_total", "counter",
         "Messages that reached max_deliveries (moved to the dead-letter queue or dropped)."},
    };
    size_t n = store_queue_count(st);
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
        family(b, fams[f].name, fams[f].type, fams[f].help);
        struct store_queue_metrics q;
        for (size_t i = 0; i < n && store_queue_metrics_at(st, i, &q); i++) {
            uint64_t v = f == 0   ? q.depth
                         : f == 1 ? q.in_flight
                         : f == 2 ? q.delayed
                         : f == 3 ? q.published
                         : f == 4 ? q.acked
                                  : q.dead_lettered;
            sample(b, fams[f].name, "queue", q.name, NULL, NULL, v);
        }
    }
}

static void render_topics(const struct store *st, struct jbuf *b)
{
    static const struct {
        const char *name, *type, *help;
    } fams[] = {
        {"mom_topic_messages", "gauge", "Retained messages."},
        {"mom_topic_bytes", "gauge", "Body bytes of the retained messages."},
        {"mom_topic_published_total", "counter",
         "Messages ever published (the next offset; same on every replica)."},
        {"mom_topic_subscriptions", "gauge", "Durable subscriptions."},
    };
    size_t n = store_topic_count(st);
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
        family(b, fams[f].name, fams[f].type, fams[f].help);
        struct store_topic_metrics t;
        for (size_t i = 0; i < n && store_topic_metrics_at(st, i, &t); i++) {
            uint64_t v = f == 0   ? t.messages
                         : f == 1 ? t.bytes
                         : f == 2 ? t.published
                                  : t.subscriptions;
            sample(b, fams[f].name, "topic", t.name, NULL, NULL, v);
        }
    }
    for (int f = 0; f < 2; f++) {
        const char *name = f ? "mom_subscription_cursor" : "mom_subscription_lag";
        family(b, name, "gauge",
               f ? "The next offset the subscription delivers."
                 : "Messages between the subscription's cursor and the topic's end.");
        struct store_topic_metrics t;
        for (size_t i = 0; i < n && store_topic_metrics_at(st, i, &t); i++) {
            size_t iter = 0;
            struct store_subscription_metrics sub;
            while (store_subscription_metrics_next(st, i, &iter, &sub))
                sample(b, name, "topic", t.name, "subscription", sub.name,
                       f ? sub.cursor : sub.lag);
        }
    }
}

static void render_store(const struct store *st, struct jbuf *b)
{
    struct store_stats ss;
    store_get_stats(st, &ss);
    gauge(b, "mom_queues", "Queues.", ss.queues);
    gauge(b, "mom_topics", "Topics.", ss.topics);
    gauge(b, "mom_subscriptions", "Durable subscriptions across topics.", ss.subscriptions);
    gauge(b, "mom_users", "Registered users.", ss.users);
    gauge(b, "mom_stored_messages", "Stored queue messages plus retained topic messages.",
          ss.messages);
    gauge(b, "mom_stored_bytes", "Body bytes of the stored messages.", ss.bytes);
    counter(b, "mom_dead_letters_dropped_total",
            "Dead-letters dropped because the dead-letter queue did not exist.", ss.dropped_no_dlq);
    render_queues(st, b);
    render_topics(st, b);
}

static void render_peers(const struct node_status *st, bool leader, struct jbuf *b)
{
    char peer[16], secs[32];
    uint64_t durable = 0;
    for (size_t i = 0; i < st->n_members; i++)
        if (st->members[i].id == st->node_id)
            durable = st->members[i].match_index;
    family(b, "mom_raft_peer_match_index", "gauge",
           "Leader only: the highest log index each peer acknowledged.");
    for (size_t i = 0; leader && i < st->n_members; i++) {
        const struct node_member_status *m = &st->members[i];
        if (m->id == st->node_id)
            continue;
        snprintf(peer, sizeof peer, "%u", m->id);
        sample(b, "mom_raft_peer_match_index", "peer", peer, NULL, NULL, m->match_index);
    }
    family(b, "mom_raft_peer_lag_entries", "gauge",
           "Leader only: entries durable here that each peer has not acknowledged.");
    for (size_t i = 0; leader && i < st->n_members; i++) {
        const struct node_member_status *m = &st->members[i];
        if (m->id == st->node_id)
            continue;
        snprintf(peer, sizeof peer, "%u", m->id);
        sample(b, "mom_raft_peer_lag_entries", "peer", peer, NULL, NULL,
               durable > m->match_index ? durable - m->match_index : 0);
    }
    family(b, "mom_raft_peer_last_contact_seconds", "gauge",
           "Seconds since this node last heard from each peer (a Raft message or a Ping "
           "answer; peers never heard from are left out).");
    for (size_t i = 0; i < st->n_members; i++) {
        const struct node_member_status *m = &st->members[i];
        if (m->id == st->node_id || m->last_contact_ms == UINT64_MAX)
            continue;
        snprintf(peer, sizeof peer, "%u", m->id);
        metrics_format_seconds(m->last_contact_ms * 1000, secs);
        jbuf_lit(b, "mom_raft_peer_last_contact_seconds{peer=\"");
        jbuf_lit(b, peer);
        jbuf_lit(b, "\"} ");
        jbuf_lit(b, secs);
        jbuf_lit(b, "\n");
    }
    family(b, "mom_raft_peer_healthy", "gauge",
           "1 when the peer answered recently (as GET /v1/cluster shows it).");
    for (size_t i = 0; i < st->n_members; i++) {
        const struct node_member_status *m = &st->members[i];
        if (m->id == st->node_id)
            continue;
        snprintf(peer, sizeof peer, "%u", m->id);
        sample(b, "mom_raft_peer_healthy", "peer", peer, NULL, NULL, m->healthy ? 1 : 0);
    }
}

static void render_raft(const struct metrics_sources *src, struct jbuf *b)
{
    const struct node *n = src->node;
    struct node_status *st = malloc(sizeof *st); /* ~19 KB: not on the loop's stack */
    if (!st) {
        b->oom = true;
        return;
    }
    node_status(n, st);
    uint64_t commit = st->commit_index, applied = st->applied_index;
    bool leader = node_is_leader(n);
    char id[16];
    snprintf(id, sizeof id, "%u", src->node_id);
    family(b, "mom_node_info", "gauge", "This node's id (the X-Mom-Node header); always 1.");
    sample(b, "mom_node_info", "node", id, NULL, NULL, 1);
    family(b, "mom_raft_role", "gauge", "1 for this node's current Raft role.");
    sample(b, "mom_raft_role", "role", st->role, NULL, NULL, 1);
    gauge(b, "mom_raft_term", "Current Raft term as this node sees it.", st->term);
    gauge(b, "mom_raft_is_leader", "1 when this node leads.", leader ? 1 : 0);
    gauge(b, "mom_raft_leader_id", "The leader this node knows (0 = none).", st->leader);
    gauge(b, "mom_raft_members", "Members of the group.", st->n_members);
    gauge(b, "mom_raft_commit_index", "Highest log index this node knows is committed.", commit);
    gauge(b, "mom_raft_applied_index", "Highest log index applied to this node's store.", applied);
    gauge(b, "mom_raft_apply_lag", "commit_index - applied_index on this node.",
          commit > applied ? commit - applied : 0);
    gauge(b, "mom_raft_durable_index", "Highest log index durable on this node's disk.",
          node_member_match(n, node_id(n)));
    gauge(b, "mom_raft_ready", "1 when the node knows a leader and applied what it committed.",
          node_ready(n) ? 1 : 0);
    gauge(b, "mom_raft_writable", "1 while the node's storage accepts writes.",
          node_writable(n) ? 1 : 0);
    gauge(b, "mom_raft_abstaining", "1 while wiped storage catches up (no vote, no quorum count).",
          st->abstaining ? 1 : 0);
    render_peers(st, leader, b);
    free(st);

    struct node_stats ns;
    node_get_stats(n, &ns);
    family(b, "mom_wal_fsync_duration_seconds", "histogram",
           "fdatasync of the write-ahead log (group commit, on the I/O thread).");
    histogram_lines(b, "mom_wal_fsync_duration_seconds", "", &ns.sync_latency);
    counter(b, "mom_wal_bytes_written_total", "Log bytes written by this process.",
            ns.wal_bytes_written);
    counter(b, "mom_wal_writes_total", "write() batches of the log (group commit).", ns.batches);
    gauge(b, "mom_wal_disk_bytes", "Bytes of log segments on disk.", ns.log_bytes);
    family(b, "mom_snapshot_duration_seconds", "histogram",
           "Snapshots written by this process, from fork to the file in place.");
    histogram_lines(b, "mom_snapshot_duration_seconds", "", &ns.snapshot_duration);
}

static uint64_t count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    uint64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n ? n - 1 : 0; /* the directory's own fd */
}

static void render_process(const struct metrics *m, struct jbuf *b)
{
    char secs[32];
    struct rusage ru;
    uint64_t cpu_us = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu_us = (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec +
                 (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
    metrics_format_seconds(cpu_us, secs);
    family(b, "process_cpu_seconds_total", "counter", "User and system CPU time of all threads.");
    jbuf_lit(b, "process_cpu_seconds_total ");
    jbuf_lit(b, secs);
    jbuf_lit(b, "\n");

    unsigned long long vsize_pages = 0, rss_pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &vsize_pages, &rss_pages) != 2)
            vsize_pages = rss_pages = 0;
        fclose(f);
    }
    long page = sysconf(_SC_PAGESIZE);
    uint64_t psize = page > 0 ? (uint64_t)page : 4096;
    gauge(b, "process_resident_memory_bytes", "Resident memory.", rss_pages * psize);
    gauge(b, "process_virtual_memory_bytes", "Virtual memory.", vsize_pages * psize);
    gauge(b, "process_open_fds", "Open file descriptors.", count_open_fds());
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        gauge(b, "process_max_fds", "Limit of open file descriptors.", (uint64_t)rl.rlim_cur);
    metrics_format_seconds(m->start_time_us, secs);
    family(b, "process_start_time_seconds", "gauge", "Process start, seconds since the epoch.");
    jbuf_lit(b, "process_start_time_seconds ");
    jbuf_lit(b, secs);
    jbuf_lit(b, "\n");
}

int metrics_render(const struct metrics *m, const struct metrics_sources *src, struct jbuf *out)
{
    render_http(m, out);
    gauge(out, "mom_connections",
          "Open client connections, as MOM_MAX_CONNECTIONS counts them (refused ones until they "
          "close included).",
          src->connections);
    gauge(out, "mom_long_polls", "Requests waiting in a long poll.", src->long_polls);
    gauge(out, "mom_streams", "Open server-sent event streams.", src->streams);
    gauge(out, "mom_stream_queued_bytes",
          "Bytes written to event streams that wait for their sockets (each stream holds at "
          "most MOM_SSE_MAX_BUFFER plus one event).",
          src->stream_queued_bytes);
    if (src->store)
        render_store(src->store, out);
    if (src->node)
        render_raft(src, out);
    render_process(m, out);
    return out->oom ? MOM_ERR_NOMEM : MOM_OK;
}
