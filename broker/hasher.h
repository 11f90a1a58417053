/* Password hashing off the loop: PBKDF2 (auth_password_hash/verify, ~8 ms
 * each) runs on one or two helper threads. The loop hands jobs over through
 * a mutex-protected queue and learns of finished ones through an eventfd it
 * watches; the threads share nothing else with the broker. Two lanes: jobs
 * submitted as urgent (logins of names and addresses without recent
 * failures) are taken before the rest, so a flood of failing logins does
 * not slow down the others. The queue is bounded.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_HASHER_H
#define MOM_BROKER_HASHER_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct hasher;
struct hasher_job;

/* Runs on the loop when a job finishes. verify: result MOM_OK when the
 * password matched, MOM_ERR_AUTH when not. hash: result MOM_OK with the
 * record in hash (valid during the call), or MOM_ERR_IO. */
typedef void (*hasher_done_fn)(void *arg, int result, const char *hash);

/* Starts `threads` (1..4) helper threads; at most max_pending jobs wait.
 * Returns MOM_OK, MOM_ERR_INVALID, MOM_ERR_NOMEM or MOM_ERR_IO. */
int hasher_new(struct event_base *base, unsigned threads, size_t max_pending, struct hasher **out);
/* Stops and joins the threads; jobs not collected are dropped without
 * their callbacks. Accepts NULL. */
void hasher_free(struct hasher *h);

/* Queues a check of password against stored (both copied). On MOM_OK
 * *job is the handle for hasher_cancel; MOM_ERR_TOO_LARGE when the queue
 * is full, MOM_ERR_NOMEM. */
int hasher_verify(struct hasher *h, const char *password, size_t len, const char *stored,
                  bool urgent, hasher_done_fn done, void *arg, struct hasher_job **job);
/* Queues a new salted hash of password (copied). Same returns. */
int hasher_hash(struct hasher *h, const char *password, size_t len, hasher_done_fn done, void *arg,
                struct hasher_job **job);
/* Loop thread: done will not be called for job (its requester is gone);
 * the job is freed when it comes back. */
void hasher_cancel(struct hasher_job *job);

#endif
