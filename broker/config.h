/* momd configuration: every option is a flag, an environment variable and a
 * config-file key (flags > env > file > defaults). The env names are part of
 * the contract (MOM_NODE_ID, MOM_HTTP_ADDR, ...). Parsing is pure: it reads
 * argv, an env lookup function and file text, and never exits.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_CONFIG_H
#define MOM_BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum fsync_policy { FSYNC_ALWAYS, FSYNC_EVERYSEC, FSYNC_NEVER };

struct config {
    uint32_t node_id;
    char http_addr[256];
    char peer_addr[256];
    char peers[2048];
    char data_dir[1024];
    char jwt_secret[1024];
    char jwt_public_key_file[1024];
    char jwt_issuer[256];
    char jwt_audience[256];
    char jwt_admin_claim[64];
    enum fsync_policy fsync;
    uint64_t max_body;
    bool allow_registration;
    char admin_users[2048];
    char log_level[16];
    char log_format[16]; /* text | json */
    bool access_log;     /* one line per answered request */
    uint64_t token_ttl_s;
    uint64_t snapshot_entries;
    uint64_t wal_segment_mb;  /* WAL segment size in MiB, 1..1024 */
    uint64_t snapshot_log_mb; /* log MiB in memory that start a snapshot */
    char cluster_secret[1024];
    uint64_t commit_timeout_ms;
    bool bootstrap; /* override: fresh storage votes without waiting for the others */
    char peer_tls_cert[1024];
    char peer_tls_key[1024];
    char peer_tls_ca[1024];
    char tls_cert[1024];      /* client port TLS: certificate chain (PEM) */
    char tls_key[1024];       /* its private key (PEM) */
    char tls_client_ca[1024]; /* when set, clients need a certificate it signed */
    char cors_origins[2048];  /* comma list or "*"; empty = no CORS headers */
    bool demo;                /* create the prototype's demo data once */
    char demo_password[256];  /* the demo admin's password; empty = generated */
    /* limits against hostile clients */
    uint64_t max_connections;     /* open client connections */
    uint64_t header_timeout_ms;   /* a request's headers must arrive in this time */
    uint64_t idle_timeout_ms;     /* keep-alive connection without a request */
    uint64_t max_header_bytes;    /* request line + headers (431 above) */
    uint64_t max_url_bytes;       /* request target (414 above) */
    uint64_t hash_threads;        /* password hashing helper threads */
    uint64_t login_failures;      /* failed logins per username and address before 429 */
    uint64_t login_addr_failures; /* failed logins per client address before 429 */
    /* streams (Server-Sent Events) */
    uint64_t max_streams;      /* open streams of this node; 503 above */
    uint64_t sse_heartbeat_ms; /* ": keep-alive" while a stream is idle */
    uint64_t sse_max_buffer;   /* bytes queued to one stream before it is paused */
    char config_file[1024];
    bool help;
};

typedef const char *(*config_getenv_fn)(const char *name);

/* Fills cfg with defaults. */
void config_defaults(struct config *cfg);
/* Applies file text ("KEY=VALUE" lines with env names, '#' comments), then
 * env, then argv (argv[0] skipped). file_text may be NULL. Returns 0, or
 * MOM_ERR_INVALID with a message in err (errlen bytes). */
int config_apply_file(struct config *cfg, const char *text, char *err, size_t errlen);
int config_apply_env(struct config *cfg, config_getenv_fn getenv_fn, char *err, size_t errlen);
int config_apply_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen);
/* The whole precedence chain, reading the file named by --config/MOM_CONFIG. */
int config_load(struct config *cfg, int argc, char **argv, config_getenv_fn getenv_fn, char *err,
                size_t errlen);
/* Help text listing every option. */
void config_print_help(FILE *out);

const char *config_fsync_name(enum fsync_policy p);

#endif
