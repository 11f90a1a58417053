/* The broker process's core object: the evhtp REST server, the store, the
 * replication node and auth, all on one event_base. main.c creates it from
 * the configuration and runs the loop.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_SERVER_H
#define MOM_BROKER_SERVER_H

#include "broker/config.h"

#include <stdint.h>

struct event_base;
struct server;

/* Recovers state from the data dir and binds the listeners.
 * Returns MOM_OK or an error (already logged). */
int server_new(struct event_base *base, const struct config *cfg, struct server **out);
/* Stops serving and frees everything. Accepts NULL. */
void server_free(struct server *s);
/* Graceful stop of a cluster leader: hands leadership to an up-to-date
 * follower, running the loop for at most about a second. */
void server_handoff(struct server *s);
uint16_t server_http_port(const struct server *s);
uint16_t server_peer_port(const struct server *s);

#endif
