/* Option table and the flags > env > file > defaults chain for momd.
 * One table row per option keeps the flag, env name, help and parser
 * together, so --help always lists every option.
 * SPDX-License-Identifier: MIT */
#include "broker/config.h"

#include "common/err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum opt_kind { OPT_STR, OPT_U32, OPT_U64, OPT_BOOL, OPT_FSYNC };

struct option_def {
    const char *flag;
    const char *env;
    enum opt_kind kind;
    size_t offset;
    size_t size;
    const char *help;
};

#define STR(field, flag, env, help)                                                                \
    {                                                                                              \
        flag, env, OPT_STR, offsetof(struct config, field), sizeof(((struct config *)0)->field),   \
            help                                                                                   \
    }
#define NUM(kind, field, flag, env, help)                                                          \
    {                                                                                              \
        flag, env, kind, offsetof(struct config, field), 0, help                                   \
    }

static const struct option_def options[] = {
    NUM(OPT_U32, node_id, "--node-id", "MOM_NODE_ID", "this node's id in MOM_PEERS (1)"),
    STR(http_addr, "--http-addr", "MOM_HTTP_ADDR",
        "client REST address (0.0.0.0:8080; port 0 = any)"),
    STR(peer_addr, "--peer-addr", "MOM_PEER_ADDR",
        "peer gRPC address (0.0.0.0:9090; port 0 = any)"),
    STR(peers, "--peers", "MOM_PEERS", "cluster members \"1=host:9090,2=host:9090,3=host:9090\""),
    STR(data_dir, "--data-dir", "MOM_DATA_DIR", "data directory (./data)"),
    STR(jwt_secret, "--jwt-secret", "MOM_JWT_SECRET", "HS256 secret for client tokens"),
    STR(jwt_public_key_file, "--jwt-public-key-file", "MOM_JWT_PUBLIC_KEY_FILE",
        "PEM public key for RS256/ES256 client tokens"),
    STR(jwt_issuer, "--jwt-issuer", "MOM_JWT_ISSUER", "required iss claim"),
    STR(jwt_audience, "--jwt-audience", "MOM_JWT_AUDIENCE", "required aud claim"),
    STR(jwt_admin_claim, "--jwt-admin-claim", "MOM_JWT_ADMIN_CLAIM",
        "claim whose value (string or list) containing \"admin\" makes an admin (roles)"),
    NUM(OPT_FSYNC, fsync, "--fsync", "MOM_FSYNC", "always|everysec|never (always)"),
    NUM(OPT_U64, max_body, "--max-body", "MOM_MAX_BODY", "largest request body in bytes (1048576)"),
    NUM(OPT_BOOL, allow_registration, "--allow-registration", "MOM_ALLOW_REGISTRATION",
        "allow POST /v1/auth/users (true)"),
    STR(admin_users, "--admin-users", "MOM_ADMIN_USERS", "comma list of admin usernames"),
    STR(log_level, "--log-level", "MOM_LOG_LEVEL", "debug|info|warn|error (info)"),
    STR(log_format, "--log-format", "MOM_LOG_FORMAT",
        "text|json: one line per event as text or as a JSON object (text)"),
    NUM(OPT_BOOL, access_log, "--access-log", "MOM_ACCESS_LOG",
        "one log line per answered request (false)"),
    NUM(OPT_U64, token_ttl_s, "--token-ttl-s", "MOM_TOKEN_TTL_S",
        "lifetime of issued tokens (3600)"),
    NUM(OPT_U64, snapshot_entries, "--snapshot-entries", "MOM_SNAPSHOT_ENTRIES",
        "log entries between snapshots (100000)"),
    NUM(OPT_U64, snapshot_log_mb, "--snapshot-log-mb", "MOM_SNAPSHOT_LOG_MB",
        "or log MiB held in memory that start a snapshot (64)"),
    NUM(OPT_U64, wal_segment_mb, "--wal-segment-mb", "MOM_WAL_SEGMENT_MB",
        "log segment size in MiB, preallocated on disk (64; 1..1024)"),
    STR(cluster_secret, "--cluster-secret", "MOM_CLUSTER_SECRET", "shared secret of the peers"),
    NUM(OPT_U64, commit_timeout_ms, "--commit-timeout-ms", "MOM_COMMIT_TIMEOUT_MS",
        "answer 503 when a write cannot commit in time (5000)"),
    NUM(OPT_BOOL, bootstrap, "--bootstrap", "MOM_BOOTSTRAP",
        "override: fresh storage votes without waiting for the other members (false)"),
    STR(peer_tls_cert, "--peer-tls-cert", "MOM_PEER_TLS_CERT", "peer TLS certificate (PEM)"),
    STR(peer_tls_key, "--peer-tls-key", "MOM_PEER_TLS_KEY", "peer TLS private key (PEM)"),
    STR(peer_tls_ca, "--peer-tls-ca", "MOM_PEER_TLS_CA", "CA that signs peer certificates (PEM)"),
    STR(tls_cert, "--tls-cert", "MOM_TLS_CERT",
        "serve the client port over TLS 1.2+ with this certificate chain (PEM)"),
    STR(tls_key, "--tls-key", "MOM_TLS_KEY", "private key of MOM_TLS_CERT (PEM)"),
    STR(tls_client_ca, "--tls-client-ca", "MOM_TLS_CLIENT_CA",
        "require client certificates signed by this CA (PEM)"),
    STR(cors_origins, "--cors-origins", "MOM_CORS_ORIGINS",
        "browser origins allowed by CORS: comma list or * (none)"),
    NUM(OPT_BOOL, demo, "--demo", "MOM_DEMO",
        "create the prototype's demo topics, queues and admin once (false)"),
    STR(demo_password, "--demo-password", "MOM_DEMO_PASSWORD",
        "password of the demo user admin (generated and logged)"),
    NUM(OPT_U64, max_connections, "--max-connections", "MOM_MAX_CONNECTIONS",
        "open client connections; more are answered 503 and closed (4096)"),
    NUM(OPT_U64, header_timeout_ms, "--header-timeout-ms", "MOM_HEADER_TIMEOUT_MS",
        "a request whose headers are not complete in this time is closed (10000)"),
    NUM(OPT_U64, idle_timeout_ms, "--idle-timeout-ms", "MOM_IDLE_TIMEOUT_MS",
        "a keep-alive connection without a request for this long is closed (60000)"),
    NUM(OPT_U64, max_header_bytes, "--max-header-bytes", "MOM_MAX_HEADER_BYTES",
        "request line and headers, in bytes; 431 above (8192; 1024..8192)"),
    NUM(OPT_U64, max_url_bytes, "--max-url-bytes", "MOM_MAX_URL_BYTES",
        "request target (path and query), in bytes; 414 above (4096)"),
    NUM(OPT_U64, hash_threads, "--hash-threads", "MOM_HASH_THREADS",
        "password hashing helper threads (1; 1..4)"),
    NUM(OPT_U64, login_failures, "--login-failures", "MOM_LOGIN_FAILURES",
        "failed logins of one username from one address before 429; then one try every 2 s (5)"),
    NUM(OPT_U64, login_addr_failures, "--login-addr-failures", "MOM_LOGIN_ADDR_FAILURES",
        "failed logins from one client address before 429; then one try every 200 ms (50)"),
    NUM(OPT_U64, max_streams, "--max-streams", "MOM_MAX_STREAMS",
        "open event streams of this node; more are answered 503 (10000)"),
    NUM(OPT_U64, sse_heartbeat_ms, "--sse-heartbeat-ms", "MOM_SSE_HEARTBEAT_MS",
        "a keep-alive comment on an idle event stream this often (15000; 10..3600000)"),
    NUM(OPT_U64, sse_max_buffer, "--sse-max-buffer", "MOM_SSE_MAX_BUFFER",
        "bytes queued to one event stream before it is paused (1048576; 4096..1073741824)"),
    STR(config_file, "--config", "MOM_CONFIG", "config file of KEY=VALUE lines (env names)"),
};

#define OPTION_COUNT (sizeof options / sizeof options[0])

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->node_id = 1;
    strcpy(cfg->http_addr, "0.0.0.0:8080");
    strcpy(cfg->peer_addr, "0.0.0.0:9090");
    strcpy(cfg->data_dir, "./data");
    strcpy(cfg->jwt_admin_claim, "roles");
    cfg->fsync = FSYNC_ALWAYS;
    cfg->max_body = 1u << 20;
    cfg->allow_registration = true;
    strcpy(cfg->log_level, "info");
    strcpy(cfg->log_format, "text");
    cfg->token_ttl_s = 3600;
    cfg->snapshot_entries = 100000;
    cfg->wal_segment_mb = 64;
    cfg->snapshot_log_mb = 64;
    cfg->commit_timeout_ms = 5000;
    cfg->max_connections = 4096;
    cfg->header_timeout_ms = 10000;
    cfg->idle_timeout_ms = 60000;
    cfg->max_header_bytes = 8192;
    cfg->max_url_bytes = 4096;
    cfg->hash_threads = 1;
    cfg->login_failures = 5;
    cfg->login_addr_failures = 50;
    cfg->max_streams = 10000;
    cfg->sse_heartbeat_ms = 15000;
    cfg->sse_max_buffer = 1u << 20;
}

const char *config_fsync_name(enum fsync_policy p)
{
    return p == FSYNC_ALWAYS ? "always" : p == FSYNC_EVERYSEC ? "everysec" : "never";
}

static int parse_u64(const char *text, uint64_t *out)
{
    if (!*text || *text == '-' || *text == '+')
        return MOM_ERR_INVALID;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end)
        return MOM_ERR_INVALID;
    *out = v;
    return MOM_OK;
}

static int set_option(struct config *cfg, const struct option_def *o, const char *value, char *err,
                      size_t errlen)
{
    char *field = (char *)cfg + o->offset;
    uint64_t v;
    switch (o->kind) {
    case OPT_STR:
        if (strlen(value) >= o->size) {
            snprintf(err, errlen, "%s: value too long", o->env);
            return MOM_ERR_INVALID;
        }
        strcpy(field, value);
        return MOM_OK;
    case OPT_U32:
        if (parse_u64(value, &v) || v > UINT32_MAX) {
            snprintf(err, errlen, "%s: expected an unsigned integer, got '%s'", o->env, value);
            return MOM_ERR_INVALID;
        }
        *(uint32_t *)(void *)field = (uint32_t)v;
        return MOM_OK;
    case OPT_U64:
        if (parse_u64(value, &v)) {
            snprintf(err, errlen, "%s: expected an unsigned integer, got '%s'", o->env, value);
            return MOM_ERR_INVALID;
        }
        *(uint64_t *)(void *)field = v;
        return MOM_OK;
    case OPT_BOOL:
        if (!strcasecmp(value, "true") || !strcmp(value, "1") || !strcasecmp(value, "yes"))
            *(bool *)(void *)field = true;
        else if (!strcasecmp(value, "false") || !strcmp(value, "0") || !strcasecmp(value, "no"))
            *(bool *)(void *)field = false;
        else {
            snprintf(err, errlen, "%s: expected true or false, got '%s'", o->env, value);
            return MOM_ERR_INVALID;
        }
        return MOM_OK;
    case OPT_FSYNC:
        if (!strcmp(value, "always"))
            cfg->fsync = FSYNC_ALWAYS;
        else if (!strcmp(value, "everysec"))
            cfg->fsync = FSYNC_EVERYSEC;
        else if (!strcmp(value, "never"))
            cfg->fsync = FSYNC_NEVER;
        else {
            snprintf(err, errlen, "%s: expected always, everysec or never, got '%s'", o->env,
                     value);
            return MOM_ERR_INVALID;
        }
        return MOM_OK;
    }
    return MOM_ERR_INVALID;
}

static const struct option_def *find_by_env(const char *name, size_t len)
{
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (strlen(options[i].env) == len && !strncmp(options[i].env, name, len))
            return &options[i];
    return NULL;
}

int config_apply_file(struct config *cfg, const char *text, char *err, size_t errlen)
{
    if (!text)
        return MOM_OK;
    unsigned lineno = 0;
    while (*text) {
        lineno++;
        const char *eol = strchr(text, '\n');
        size_t len = eol ? (size_t)(eol - text) : strlen(text);
        char line[4096];
        if (len >= sizeof line) {
            snprintf(err, errlen, "config line %u too long", lineno);
            return MOM_ERR_INVALID;
        }
        memcpy(line, text, len);
        line[len] = '\0';
        text += len + (eol ? 1 : 0);
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strlen(p);
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
            p[--n] = '\0';
        if (!*p || *p == '#')
            continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            snprintf(err, errlen, "config line %u: expected KEY=VALUE", lineno);
            return MOM_ERR_INVALID;
        }
        size_t klen = (size_t)(eq - p);
        while (klen && (p[klen - 1] == ' ' || p[klen - 1] == '\t'))
            klen--;
        char *value = eq + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        size_t vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        }
        const struct option_def *o = find_by_env(p, klen);
        if (!o || o->offset == offsetof(struct config, config_file)) {
            snprintf(err, errlen, "config line %u: unknown key '%.*s'", lineno, (int)klen, p);
            return MOM_ERR_INVALID;
        }
        if (set_option(cfg, o, value, err, errlen))
            return MOM_ERR_INVALID;
    }
    return MOM_OK;
}

int config_apply_env(struct config *cfg, config_getenv_fn getenv_fn, char *err, size_t errlen)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const char *v = getenv_fn(options[i].env);
        if (v && set_option(cfg, &options[i], v, err, errlen))
            return MOM_ERR_INVALID;
    }
    return MOM_OK;
}

int config_apply_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cfg->help = true;
            continue;
        }
        const char *eq = strchr(arg, '=');
        size_t flen = eq ? (size_t)(eq - arg) : strlen(arg);
        const struct option_def *o = NULL;
        for (size_t k = 0; k < OPTION_COUNT; k++)
            if (strlen(options[k].flag) == flen && !strncmp(options[k].flag, arg, flen))
                o = &options[k];
        if (!o) {
            snprintf(err, errlen, "unknown option '%s' (see --help)", arg);
            return MOM_ERR_INVALID;
        }
        const char *value;
        if (eq)
            value = eq + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else {
            snprintf(err, errlen, "option %s needs a value", o->flag);
            return MOM_ERR_INVALID;
        }
        if (set_option(cfg, o, value, err, errlen))
            return MOM_ERR_INVALID;
    }
    return MOM_OK;
}

static char *read_text_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
        if (len + 1 == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

int config_load(struct config *cfg, int argc, char **argv, config_getenv_fn getenv_fn, char *err,
                size_t errlen)
{
    /* Find the config file first (flag > env), then apply file < env < flags. */
    struct config probe;
    config_defaults(&probe);
    if (config_apply_env(&probe, getenv_fn, err, errlen) ||
        config_apply_args(&probe, argc, argv, err, errlen))
        return MOM_ERR_INVALID;
    config_defaults(cfg);
    if (probe.config_file[0]) {
        char *text = read_text_file(probe.config_file);
        if (!text) {
            snprintf(err, errlen, "cannot read config file '%s': %s", probe.config_file,
                     strerror(errno));
            return MOM_ERR_INVALID;
        }
        int rc = config_apply_file(cfg, text, err, errlen);
        free(text);
        if (rc)
            return rc;
    }
    if (config_apply_env(cfg, getenv_fn, err, errlen) ||
        config_apply_args(cfg, argc, argv, err, errlen))
        return MOM_ERR_INVALID;
    if (cfg->wal_segment_mb < 1 || cfg->wal_segment_mb > 1024) {
        snprintf(err, errlen, "MOM_WAL_SEGMENT_MB: expected 1..1024, got %" PRIu64,
                 cfg->wal_segment_mb);
        return MOM_ERR_INVALID;
    }
    static const struct {
        const char *env;
        size_t offset;
        uint64_t lo, hi;
    } ranges[] = {
        {"MOM_MAX_CONNECTIONS", offsetof(struct config, max_connections), 1, 1000000},
        {"MOM_HEADER_TIMEOUT_MS", offsetof(struct config, header_timeout_ms), 100, 3600000},
        {"MOM_IDLE_TIMEOUT_MS", offsetof(struct config, idle_timeout_ms), 100, 86400000},
        {"MOM_MAX_HEADER_BYTES", offsetof(struct config, max_header_bytes), 1024, 8192},
        {"MOM_MAX_URL_BYTES", offsetof(struct config, max_url_bytes), 256, 8000},
        {"MOM_HASH_THREADS", offsetof(struct config, hash_threads), 1, 4},
        {"MOM_LOGIN_FAILURES", offsetof(struct config, login_failures), 1, 1000000},
        {"MOM_LOGIN_ADDR_FAILURES", offsetof(struct config, login_addr_failures), 1, 1000000},
        {"MOM_MAX_STREAMS", offsetof(struct config, max_streams), 1, 1000000},
        {"MOM_SSE_HEARTBEAT_MS", offsetof(struct config, sse_heartbeat_ms), 10, 3600000},
        {"MOM_SSE_MAX_BUFFER", offsetof(struct config, sse_max_buffer), 4096, 1u << 30},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        uint64_t v = *(const uint64_t *)(const void *)((const char *)cfg + ranges[i].offset);
        if (v < ranges[i].lo || v > ranges[i].hi) {
            snprintf(err, errlen, "%s: expected %" PRIu64 "..%" PRIu64 ", got %" PRIu64,
                     ranges[i].env, ranges[i].lo, ranges[i].hi, v);
            return MOM_ERR_INVALID;
        }
    }
    if (cfg->snapshot_log_mb < 1 || cfg->snapshot_log_mb > (1u << 20)) {
        snprintf(err, errlen, "MOM_SNAPSHOT_LOG_MB: expected 1..1048576, got %" PRIu64,
                 cfg->snapshot_log_mb);
        return MOM_ERR_INVALID;
    }
    return MOM_OK;
}

void config_print_help(FILE *out)
{
    fprintf(out, "usage: momd [options]\n\n"
                 "Every option is also an environment variable and a config file key.\n"
                 "Precedence: flags > environment > config file > defaults.\n\n");
    for (size_t i = 0; i < OPTION_COUNT; i++)
        fprintf(out, "  %-24s %-26s %s\n", options[i].flag, options[i].env, options[i].help);
    fprintf(out, "  %-24s %-26s %s\n", "--help", "", "show this text");
}
