/* Unit tests for replication/syncer: a real fdatasync on a temp file runs on
 * the helper thread and comes back through the eventfd with its cookie,
 * result and duration; one job at a time; errors map to MOM_ERR_*; stop
 * waits for a job in flight.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "replication/syncer.h"

static int temp_file(char *path, size_t n)
{
    snprintf(path, n, "/tmp/mom-syncer-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char data[4096];
    memset(data, 'x', sizeof data);
    assert_int_equal(write(fd, data, sizeof data), (ssize_t)sizeof data);
    return fd;
}

/* Waits until the eventfd is readable (at most 10 s). */
static void wait_event(const struct syncer *s)
{
    struct pollfd p = {.fd = syncer_event_fd(s), .events = POLLIN};
    assert_int_equal(poll(&p, 1, 10000), 1);
    assert_true(p.revents & POLLIN);
}

static bool event_ready(const struct syncer *s)
{
    struct pollfd p = {.fd = syncer_event_fd(s), .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

static void test_sync_roundtrip(void **state)
{
    (void)state;
    char path[64];
    int fd = temp_file(path, sizeof path);
    struct syncer *s = NULL;
    assert_int_equal(syncer_start(&s), MOM_OK);
    assert_non_null(s);
    assert_true(syncer_event_fd(s) >= 0);
    assert_false(syncer_busy(s));

    uint64_t cookie = 0, micros = 0;
    int result = -99;
    assert_false(syncer_collect(s, &cookie, &result, &micros)); /* nothing yet */

    for (uint64_t round = 1; round <= 5; round++) {
        assert_int_equal(write(fd, "y", 1), 1);
        assert_int_equal(syncer_submit(s, fd, 1000 + round), MOM_OK);
        assert_true(syncer_busy(s));
        /* One job in flight: a second submit is refused, done or not. */
        assert_int_equal(syncer_submit(s, fd, 9999), MOM_ERR_INVALID);
        wait_event(s);
        assert_true(syncer_collect(s, &cookie, &result, &micros));
        assert_int_equal(cookie, 1000 + round);
        assert_int_equal(result, MOM_OK);
        assert_true(micros < 10u * 1000 * 1000);
        assert_false(syncer_busy(s));
        /* The eventfd was drained and nothing else is pending. */
        assert_false(event_ready(s));
        assert_false(syncer_collect(s, &cookie, &result, &micros));
    }
    syncer_stop(s);
    close(fd);
    unlink(path);
}

static void test_sync_error(void **state)
{
    (void)state;
    struct syncer *s = NULL;
    assert_int_equal(syncer_start(&s), MOM_OK);
    /* A closed descriptor: fdatasync fails with EBADF. */
    char path[64];
    int fd = temp_file(path, sizeof path);
    close(fd);
    unlink(path);
    assert_int_equal(syncer_submit(s, fd, 7), MOM_OK);
    wait_event(s);
    uint64_t cookie = 0, micros = 0;
    int result = 0;
    assert_true(syncer_collect(s, &cookie, &result, &micros));
    assert_int_equal(cookie, 7);
    assert_int_equal(result, MOM_ERR_IO);
    assert_false(syncer_busy(s));
    syncer_stop(s);
}

static void test_stop_with_job_in_flight(void **state)
{
    (void)state;
    char path[64];
    int fd = temp_file(path, sizeof path);
    struct syncer *s = NULL;
    assert_int_equal(syncer_start(&s), MOM_OK);
    assert_int_equal(syncer_submit(s, fd, 1), MOM_OK);
    syncer_stop(s); /* joins after the job, no hang, no leak */
    syncer_stop(NULL);
    /* Start and stop without any job. */
    assert_int_equal(syncer_start(&s), MOM_OK);
    syncer_stop(s);
    close(fd);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_roundtrip),
        cmocka_unit_test(test_sync_error),
        cmocka_unit_test(test_stop_with_job_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
