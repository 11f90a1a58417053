/* Benchmark baseline: the smallest useful evhtp server. One thread, one
 * libevent loop, one generic callback that answers 200 with a two-byte body
 * and does no other work. run_bench.py measures momd as a ratio to this.
 * Usage: baseline_server [PORT] (0 or absent = pick a free port on 127.0.0.1).
 * Prints "READY port=N" on stdout once listening; SIGTERM/SIGINT stop it.
 * SPDX-License-Identifier: MIT */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <evhtp.h>

static void baseline_on_request(evhtp_request_t *req, void *arg)
{
    (void)arg;
    evbuffer_add(req->buffer_out, "ok", 2);
    evhtp_send_reply(req, EVHTP_RES_OK);
}

static void baseline_on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak((struct event_base *)arg);
}

static int baseline_bound_port(evhtp_t *htp)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    evutil_socket_t fd = evconnlistener_get_fd(htp->server);

    memset(&sin, 0, sizeof(sin));
    if (getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
        return -1;
    return ntohs(sin.sin_port);
}

int main(int argc, char **argv)
{
    long port = 0;
    if (argc > 1) {
        char *end = NULL;
        errno = 0;
        port = strtol(argv[1], &end, 10);
        if (errno != 0 || end == argv[1] || *end != '\0' || port < 0 || port > 65535) {
            fprintf(stderr, "usage: %s [PORT]\n", argv[0]);
            return 2;
        }
    }

    struct event_base *base = event_base_new();
    if (base == NULL) {
        fprintf(stderr, "baseline_server: event_base_new failed\n");
        return 1;
    }
    evhtp_t *htp = evhtp_new(base, NULL);
    if (htp == NULL) {
        fprintf(stderr, "baseline_server: evhtp_new failed\n");
        event_base_free(base);
        return 1;
    }
    evhtp_set_gencb(htp, baseline_on_request, NULL);

    if (evhtp_bind_socket(htp, "ipv4:127.0.0.1", (uint16_t)port, 1024) != 0) {
        fprintf(stderr, "baseline_server: bind 127.0.0.1:%ld failed\n", port);
        evhtp_free(htp);
        event_base_free(base);
        return 1;
    }

    int rc = 1;
    struct event *sigterm = evsignal_new(base, SIGTERM, baseline_on_signal, base);
    struct event *sigint = evsignal_new(base, SIGINT, baseline_on_signal, base);
    int bound = baseline_bound_port(htp);
    if (sigterm == NULL || sigint == NULL || event_add(sigterm, NULL) != 0 ||
        event_add(sigint, NULL) != 0 || bound <= 0) {
        fprintf(stderr, "baseline_server: signal setup or getsockname failed\n");
        goto out;
    }

    printf("READY port=%d\n", bound);
    fflush(stdout);

    rc = event_base_loop(base, 0) < 0 ? 1 : 0;

out:
    if (sigterm != NULL)
        event_free(sigterm);
    if (sigint != NULL)
        event_free(sigint);
    evhtp_unbind_socket(htp);
    evhtp_free(htp);
    event_base_free(base);
    return rc;
}
