/* The I/O helper thread (docs/architecture.md, "One thread owns the state"):
 * runs fdatasync off the loop. The loop owns `busy` and is the only caller
 * of submit/collect/busy; the job slot (has_job, done, fd, cookie, result,
 * micros, stop) is shared with the thread under `mu`, and the thread sleeps
 * on `cv` while the slot is empty. Completion is signalled by writing 1 to a
 * nonblocking eventfd that the loop watches. One job is in flight at a time;
 * the thread shares nothing else with the broker.
 * SPDX-License-Identifier: MIT */
#include "replication/syncer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"

struct syncer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int efd;
    bool busy; /* loop thread only: submitted and not yet collected */
    /* Guarded by mu. */
    bool stop;
    bool has_job; /* submitted, not yet picked up by the thread */
    bool done;    /* finished, not yet collected */
    int fd;
    uint64_t cookie;
    int result;
    uint64_t micros;
};

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void *syncer_main(void *arg)
{
    struct syncer *s = arg;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->has_job && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!s->has_job)
            break; /* stop requested and no job left */
        int fd = s->fd;
        s->has_job = false;
        pthread_mutex_unlock(&s->mu);

        uint64_t t0 = mono_us();
        int rc;
        do {
            rc = fdatasync(fd);
        } while (rc != 0 && errno == EINTR);
        int result = rc == 0 ? MOM_OK : mom_err_from_errno(errno);
        uint64_t micros = mono_us() - t0;

        pthread_mutex_lock(&s->mu);
        s->result = result;
        s->micros = micros;
        s->done = true;
        pthread_mutex_unlock(&s->mu);
        /* Signalled after the unlock: the loop wakes and locks mu at once
         * (syncer_collect), and with both threads on one core it would
         * otherwise find mu held and sleep until this thread runs again. */
        uint64_t one = 1;
        /* An eventfd write fails only when the counter would overflow. */
        ssize_t n;
        do {
            n = write(s->efd, &one, sizeof one);
        } while (n < 0 && errno == EINTR);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int syncer_start(struct syncer **out)
{
    *out = NULL;
    struct syncer *s = calloc(1, sizeof *s);
    if (s == NULL)
        return MOM_ERR_NOMEM;
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) {
        free(s);
        return MOM_ERR_IO;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        close(s->efd);
        free(s);
        return MOM_ERR_NOMEM;
    }
    if (pthread_cond_init(&s->cv, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        close(s->efd);
        free(s);
        return MOM_ERR_NOMEM;
    }
    int rc = pthread_create(&s->thread, NULL, syncer_main, s);
    if (rc != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        close(s->efd);
        free(s);
        return rc == EAGAIN ? MOM_ERR_NOMEM : MOM_ERR_IO;
    }
    *out = s;
    return MOM_OK;
}

void syncer_stop(struct syncer *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL); /* finishes a job in flight first */
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    close(s->efd);
    free(s);
}

int syncer_event_fd(const struct syncer *s)
{
    return s->efd;
}

int syncer_submit(struct syncer *s, int fd, uint64_t cookie)
{
    if (s->busy)
        return MOM_ERR_INVALID;
    s->busy = true;
    pthread_mutex_lock(&s->mu);
    s->fd = fd;
    s->cookie = cookie;
    s->has_job = true;
    s->done = false;
    pthread_mutex_unlock(&s->mu);
    pthread_cond_signal(&s->cv); /* after the unlock, like the eventfd write */
    return MOM_OK;
}

bool syncer_collect(struct syncer *s, uint64_t *cookie, int *result, uint64_t *micros)
{
    uint64_t count;
    ssize_t n;
    do {
        n = read(s->efd, &count, sizeof count); /* nonblocking: EAGAIN when empty */
    } while (n < 0 && errno == EINTR);

    bool done = false;
    pthread_mutex_lock(&s->mu);
    if (s->done) {
        done = true;
        s->done = false;
        *cookie = s->cookie;
        *result = s->result;
        *micros = s->micros;
    }
    pthread_mutex_unlock(&s->mu);
    if (done)
        s->busy = false;
    return done;
}

bool syncer_busy(const struct syncer *s)
{
    return s->busy;
}
