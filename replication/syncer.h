/* The I/O helper thread: runs fdatasync (the one blocking syscall mom
 * allows) off the loop. The loop hands it one job at a time through a
 * mutex-protected slot; completion comes back through an eventfd that the
 * loop watches. The thread shares nothing else with the broker.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_REPLICATION_SYNCER_H
#define MOM_REPLICATION_SYNCER_H

#include <stdbool.h>
#include <stdint.h>

struct syncer;

/* Starts the thread. Returns MOM_OK, MOM_ERR_IO or MOM_ERR_NOMEM. */
int syncer_start(struct syncer **out);
/* Stops and joins the thread, closes the eventfd. Accepts NULL. Waits for a job in flight. */
void syncer_stop(struct syncer *s);
/* The eventfd that becomes readable when a job has completed. */
int syncer_event_fd(const struct syncer *s);
/* Submits fdatasync(fd) tagged with cookie. Only one job may be in flight:
 * returns MOM_ERR_INVALID if one is, else MOM_OK. */
int syncer_submit(struct syncer *s, int fd, uint64_t cookie);
/* Called by the loop when the eventfd is readable: drains it and, if a job
 * finished, returns true with its cookie and result (MOM_OK, MOM_ERR_IO or
 * MOM_ERR_NOSPACE) and the sync duration in microseconds. */
bool syncer_collect(struct syncer *s, uint64_t *cookie, int *result, uint64_t *micros);
bool syncer_busy(const struct syncer *s);

#endif
