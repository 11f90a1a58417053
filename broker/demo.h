/* The prototype's demo data (MOM_DEMO=1), created once per cluster by its
 * leader as ordinary Commands. See demo.c for how "once" is decided.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_DEMO_H
#define MOM_BROKER_DEMO_H

#include "broker/config.h"

#include <stdbool.h>
#include <stdint.h>

struct server;

/* Per-process bookkeeping, embedded in the server. */
struct demo_state {
    uint64_t next_check_ms; /* monotonic */
    bool done;              /* the demo user exists: nothing left to do */
};

/* MOM_DEMO_PASSWORD, when set, must be a valid password (8..1024 bytes).
 * Returns MOM_OK or MOM_ERR_INVALID (logged). */
int demo_check_config(const struct config *cfg);
/* From the server's cron: on a ready leader of a cluster without the demo
 * data, proposes what is missing. Cheap when there is nothing to do. */
void demo_on_cron(struct server *s, struct demo_state *d);

#endif
