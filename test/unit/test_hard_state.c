/* Unit tests for replication/hard_state: the raft-state text round-trips
 * (extreme values too), its bytes are pinned, files of the two older
 * formats (four and five fields, no CRC) are still read, and damage is
 * refused: a flipped digit the CRC catches, a missing newline, empty,
 * extra or non-canonical fields, numbers out of range.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "replication/hard_state.h"

static int parse(const char *text, struct raft_hard_state *hs, uint64_t *inc)
{
    return hard_state_parse(text, strlen(text), hs, inc);
}

static void round_trip(void **state)
{
    (void)state;
    const struct raft_hard_state cases[] = {
        {0, 0, false, 0},
        {7, 2, true, 0xabcdef0123456789ull},
        {UINT64_MAX, UINT32_MAX, false, UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[HARD_STATE_TEXT_MAX];
        size_t len = hard_state_format(&cases[i], UINT64_MAX - i, text);
        assert_int_equal(len, strlen(text));
        struct raft_hard_state got = {0};
        uint64_t inc = 0;
        assert_int_equal(hard_state_parse(text, len, &got, &inc), MOM_OK);
        assert_true(got.term == cases[i].term && got.vote == cases[i].vote &&
                    got.abstain == cases[i].abstain && got.cluster_id == cases[i].cluster_id);
        assert_true(inc == UINT64_MAX - i);
    }
}

static void bytes_are_pinned(void **state)
{
    (void)state;
    char text[HARD_STATE_TEXT_MAX];
    struct raft_hard_state hs = {.term = 3, .vote = 1, .abstain = false, .cluster_id = 0x2a};
    hard_state_format(&hs, 1765000000000ull, text);
    /* the CRC32C (Castagnoli) of "3 1 0 1765000000000 2a" */
    assert_string_equal(text, "3 1 0 1765000000000 2a crc32c=a02edaeb\n");
}

static void older_formats_are_read(void **state)
{
    (void)state;
    struct raft_hard_state hs = {0};
    uint64_t inc = 0;
    assert_int_equal(parse("5 3 1 99\n", &hs, &inc), MOM_OK);
    assert_true(hs.term == 5 && hs.vote == 3 && hs.abstain && inc == 99 && hs.cluster_id == 0);
    assert_int_equal(parse("6 0 0 100 ff\n", &hs, &inc), MOM_OK);
    assert_true(hs.term == 6 && hs.vote == 0 && !hs.abstain && inc == 100 && hs.cluster_id == 255);
}

static void damage_is_refused(void **state)
{
    (void)state;
    char good[HARD_STATE_TEXT_MAX];
    struct raft_hard_state hs = {.term = 3, .vote = 1, .cluster_id = 0x2a};
    size_t len = hard_state_format(&hs, 1765000000000ull, good);
    struct raft_hard_state out = {.term = 77};
    uint64_t inc = 77;
    /* every single digit of the fields, changed, is caught by the CRC */
    for (size_t i = 0; good[i] != ' ' || strncmp(good + i, " crc32c=", 8) != 0; i++) {
        if (good[i] < '0' || good[i] > '9')
            continue;
        char bad[HARD_STATE_TEXT_MAX];
        memcpy(bad, good, len + 1);
        bad[i] = bad[i] == '9' ? '8' : (char)(bad[i] + 1);
        assert_int_equal(hard_state_parse(bad, len, &out, &inc), MOM_ERR_CORRUPT);
    }
    assert_int_equal(hard_state_parse(good, len - 1, &out, &inc), MOM_ERR_CORRUPT); /* no \n */
    static const char *const bad[] = {
        "",
        "\n",
        "5 3 1\n", /* too few fields */
        "5 3 1 99 0 crc32c=00000000 x\n",
        "5  3 1 99\n",                   /* an empty field */
        "5 3 2 99\n",                    /* abstain is 0 or 1 */
        "5 4294967296 0 99\n",           /* vote beyond 32 bits */
        "18446744073709551616 3 1 99\n", /* term beyond 64 bits */
        "+5 3 1 99\n",
        "5 3 1 99 FF\n", /* the cluster id is lowercase hex */
        "5 3 1 99 ff crc32c=zzzzzzzz\n",
        "5 3 1 99 ff crc32c=0\n",
        "5 3 1 99 ff crc=00000000\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(parse(bad[i], &out, &inc), MOM_ERR_CORRUPT);
    assert_true(out.term == 77 && inc == 77); /* nothing written on failure */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(bytes_are_pinned),
        cmocka_unit_test(older_formats_are_read),
        cmocka_unit_test(damage_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
