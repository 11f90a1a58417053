/* Password hashing helper threads (see hasher.h). Shared under `mu`: the
 * two pending lanes (singly linked FIFOs), the finished list and `stop`;
 * threads sleep on `cv`. A job's inputs are written by the loop before it
 * is queued and read by one thread; its outputs are written by that thread
 * before it is put on the finished list; `done`/`arg`/`cancelled` are
 * touched by the loop only. The loop drains the eventfd, takes the whole
 * finished list under the lock and runs the callbacks outside it.
 * SPDX-License-Identifier: MIT */
#include "broker/hasher.h"

#include "broker/auth.h"
#include "common/err.h"
#include "common/log.h"

#include <errno.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define HASHER_MAX_THREADS 4u
#define HASHER_RECORD_LEN 192u

enum job_kind { JOB_VERIFY, JOB_HASH };

struct hasher_job {
    struct hasher_job *next;
    enum job_kind kind;
    char *password;
    size_t password_len;
    char *stored;                   /* verify */
    int result;                     /* thread output */
    char record[HASHER_RECORD_LEN]; /* hash output */
    hasher_done_fn done;            /* loop only */
    void *arg;                      /* loop only */
    bool cancelled;                 /* loop only */
};

struct lane {
    struct hasher_job *head, *tail;
};

struct hasher {
    pthread_t threads[HASHER_MAX_THREADS];
    unsigned nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int efd;
    struct event *ev;
    size_t max_pending;
    /* Guarded by mu. */
    struct lane urgent, normal;
    struct hasher_job *finished;
    size_t pending; /* queued + running + finished, not yet collected */
    bool stop;
};

static void lane_push(struct lane *l, struct hasher_job *j)
{
    j->next = NULL;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

static struct hasher_job *lane_pop(struct lane *l)
{
    struct hasher_job *j = l->head;
    if (j) {
        l->head = j->next;
        if (!l->head)
            l->tail = NULL;
    }
    return j;
}

static void job_free(struct hasher_job *j)
{
    if (!j)
        return;
    if (j->password) {
        OPENSSL_cleanse(j->password, j->password_len);
        free(j->password);
    }
    free(j->stored);
    OPENSSL_cleanse(j->record, sizeof j->record);
    free(j);
}

static void *hasher_main(void *arg)
{
    struct hasher *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->urgent.head && !h->normal.head && !h->stop)
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->stop)
            break;
        struct hasher_job *j = lane_pop(&h->urgent);
        if (!j)
            j = lane_pop(&h->normal);
        pthread_mutex_unlock(&h->mu);

        if (j->kind == JOB_VERIFY)
            j->result = auth_password_verify(j->password, j->password_len, j->stored)
                            ? MOM_OK
                            : MOM_ERR_AUTH;
        else
            j->result =
                auth_password_hash(j->password, j->password_len, j->record, sizeof j->record);

        pthread_mutex_lock(&h->mu);
        j->next = h->finished;
        h->finished = j;
        uint64_t one = 1;
        ssize_t n;
        do {
            n = write(h->efd, &one, sizeof one);
        } while (n < 0 && errno == EINTR);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static void on_finished(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct hasher *h = arg;
    uint64_t count;
    while (read(fd, &count, sizeof count) > 0)
        ;
    pthread_mutex_lock(&h->mu);
    struct hasher_job *list = h->finished;
    h->finished = NULL;
    pthread_mutex_unlock(&h->mu);
    /* The list is newest first; answer in finishing order. */
    struct hasher_job *rev = NULL;
    while (list) {
        struct hasher_job *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        struct hasher_job *j = rev;
        rev = j->next;
        pthread_mutex_lock(&h->mu);
        h->pending--;
        pthread_mutex_unlock(&h->mu);
        if (!j->cancelled)
            j->done(j->arg, j->result, j->result == MOM_OK ? j->record : NULL);
        job_free(j);
    }
}

int hasher_new(struct event_base *base, unsigned threads, size_t max_pending, struct hasher **out)
{
    *out = NULL;
    if (threads < 1 || threads > HASHER_MAX_THREADS || max_pending < 1)
        return MOM_ERR_INVALID;
    struct hasher *h = calloc(1, sizeof *h);
    if (!h)
        return MOM_ERR_NOMEM;
    h->max_pending = max_pending;
    h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->efd < 0) {
        free(h);
        return MOM_ERR_IO;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->ev = event_new(base, h->efd, EV_READ | EV_PERSIST, on_finished, h);
    if (!h->ev || event_add(h->ev, NULL) != 0) {
        hasher_free(h);
        return MOM_ERR_NOMEM;
    }
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&h->threads[i], NULL, hasher_main, h) != 0) {
            hasher_free(h);
            return MOM_ERR_IO;
        }
        h->nthreads++;
    }
    *out = h;
    return MOM_OK;
}

void hasher_free(struct hasher *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    for (unsigned i = 0; i < h->nthreads; i++)
        pthread_join(h->threads[i], NULL);
    struct hasher_job *j;
    while ((j = lane_pop(&h->urgent)))
        job_free(j);
    while ((j = lane_pop(&h->normal)))
        job_free(j);
    while ((j = h->finished)) {
        h->finished = j->next;
        job_free(j);
    }
    if (h->ev)
        event_free(h->ev);
    close(h->efd);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static int submit(struct hasher *h, struct hasher_job *j, bool urgent, struct hasher_job **out)
{
    pthread_mutex_lock(&h->mu);
    if (h->pending >= h->max_pending) {
        pthread_mutex_unlock(&h->mu);
        job_free(j);
        return MOM_ERR_TOO_LARGE;
    }
    h->pending++;
    lane_push(urgent ? &h->urgent : &h->normal, j);
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    *out = j;
    return MOM_OK;
}

static struct hasher_job *job_new(enum job_kind kind, const char *password, size_t len,
                                  hasher_done_fn done, void *arg)
{
    struct hasher_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->kind = kind;
    j->done = done;
    j->arg = arg;
    j->password_len = len;
    j->password = malloc(len + 1);
    if (!j->password) {
        free(j);
        return NULL;
    }
    if (len)
        memcpy(j->password, password, len);
    j->password[len] = '\0';
    return j;
}

int hasher_verify(struct hasher *h, const char *password, size_t len, const char *stored,
                  bool urgent, hasher_done_fn done, void *arg, struct hasher_job **job)
{
    struct hasher_job *j = job_new(JOB_VERIFY, password, len, done, arg);
    if (!j)
        return MOM_ERR_NOMEM;
    j->stored = strdup(stored);
    if (!j->stored) {
        job_free(j);
        return MOM_ERR_NOMEM;
    }
    return submit(h, j, urgent, job);
}

int hasher_hash(struct hasher *h, const char *password, size_t len, hasher_done_fn done, void *arg,
                struct hasher_job **job)
{
    struct hasher_job *j = job_new(JOB_HASH, password, len, done, arg);
    if (!j)
        return MOM_ERR_NOMEM;
    return submit(h, j, false, job);
}

void hasher_cancel(struct hasher_job *job)
{
    if (job)
        job->cancelled = true;
}
