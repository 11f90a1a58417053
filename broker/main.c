/* momd: parses the configuration, builds the server on one event_base and
 * runs the loop until SIGTERM/SIGINT. The only file that wires the process;
 * it prints "MOMD READY ..." on stdout once recovery is done and the ports
 * are bound, so scripts and tests can wait for it.
 * SPDX-License-Identifier: MIT */
#include "broker/config.h"
#include "broker/server.h"
#include "common/err.h"
#include "common/log.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    log_info("signal %d: shutting down", (int)sig);
    event_base_loopexit(arg, NULL);
}

static const char *env_lookup(const char *name)
{
    return getenv(name);
}

int main(int argc, char **argv)
{
    struct config cfg;
    char err[512];
    if (config_load(&cfg, argc, argv, env_lookup, err, sizeof err) != MOM_OK) {
        fprintf(stderr, "momd: %s\n", err);
        return 2;
    }
    if (cfg.help) {
        config_print_help(stdout);
        return 0;
    }
    enum log_level level;
    if (log_parse_level(cfg.log_level, &level) != MOM_OK) {
        fprintf(stderr, "momd: MOM_LOG_LEVEL must be debug, info, warn or error\n");
        return 2;
    }
    log_set_level(level);
    enum log_format format;
    if (log_parse_format(cfg.log_format, &format) != MOM_OK) {
        fprintf(stderr, "momd: MOM_LOG_FORMAT must be text or json\n");
        return 2;
    }
    log_set_format(format);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit is a write error, not a crash */
    /* Room for MOM_MAX_CONNECTIONS clients plus the log, peers and helpers. */
    struct rlimit nofile;
    rlim_t want = (rlim_t)cfg.max_connections + 256;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < want) {
        nofile.rlim_cur = want < nofile.rlim_max ? want : nofile.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &nofile) != 0 || nofile.rlim_cur < want)
            log_warn("open file limit %llu is below MOM_MAX_CONNECTIONS + 256",
                     (unsigned long long)nofile.rlim_cur);
    }

    struct event_config *ecfg = event_config_new();
    struct event_base *base = ecfg ? event_base_new_with_config(ecfg) : NULL;
    event_config_free(ecfg);
    /* Priorities: 0 urgent, 1 default (HTTP, peers, timers), 2 the group-commit flush. */
    if (!base || event_base_priority_init(base, 3) != 0) {
        fprintf(stderr, "momd: cannot create the event loop\n");
        return 1;
    }
    struct server *server = NULL;
    int rc = server_new(base, &cfg, &server);
    if (rc != MOM_OK) {
        log_error("start-up failed: %s", mom_strerror(rc));
        event_base_free(base);
        return 1;
    }
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    log_info("node %u serving http on port %u, peers on port %u, fsync=%s, data in %s", cfg.node_id,
             server_http_port(server), server_peer_port(server), config_fsync_name(cfg.fsync),
             cfg.data_dir);
    printf("MOMD READY node=%u http=127.0.0.1:%u peer=127.0.0.1:%u\n", cfg.node_id,
           server_http_port(server), server_peer_port(server));
    fflush(stdout);
    event_base_dispatch(base);
    server_handoff(server); /* a leader hands over before it goes */
    event_free(sigterm);
    event_free(sigint);
    server_free(server);
    event_base_free(base);
    log_info("stopped");
    return 0;
}
