/* Unit tests for broker/receipt: a made receipt verifies and names its
 * lease; any changed byte, a wrong key, another queue, a truncated or
 * lengthened receipt, a non-canonical number and the old bare counter
 * triple are all refused; the MAC matches an independent HMAC-SHA256 for
 * names of every length, and pinned receipts stay byte for byte; the
 * cluster key is the same for the same secret; the data-dir key file is
 * created 0600, read back, and refused when damaged.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "broker/receipt.h"
#include "common/base64.h"
#include "common/err.h"

static struct receipt_key key_of(uint8_t seed)
{
    struct receipt_key k;
    for (size_t i = 0; i < sizeof k.bytes; i++)
        k.bytes[i] = (uint8_t)(seed + i * 7);
    return k;
}

/* receipt_make and receipt_verify under a signer of k made for the call */
static size_t make(const struct receipt_key *k, const char *queue, const struct receipt_lease *l,
                   char out[RECEIPT_MAX])
{
    struct receipt_signer *sg = receipt_signer_new(k);
    assert_non_null(sg);
    size_t n = receipt_make(sg, queue, l, out);
    receipt_signer_free(sg);
    return n;
}

static bool verify_n(const struct receipt_key *k, const char *queue, const char *s, size_t len,
                     struct receipt_lease *l)
{
    struct receipt_signer *sg = receipt_signer_new(k);
    assert_non_null(sg);
    bool ok = receipt_verify(sg, queue, s, len, l);
    receipt_signer_free(sg);
    return ok;
}

static bool verify(const struct receipt_key *k, const char *queue, const char *s,
                   struct receipt_lease *l)
{
    return verify_n(k, queue, s, strlen(s), l);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct receipt_key k = key_of(1);
    static const struct receipt_lease leases[] = {
        {1, 1, 1}, {0, 0, 0}, {0x1f, 0x2a, 3}, {UINT64_MAX, UINT64_MAX, UINT64_MAX}};
    for (size_t i = 0; i < sizeof leases / sizeof *leases; i++) {
        char r[RECEIPT_MAX];
        size_t n = make(&k, "orders", &leases[i], r);
        assert_int_equal(n, strlen(r));
        assert_true(n < RECEIPT_MAX);
        struct receipt_lease got;
        assert_true(verify(&k, "orders", r, &got));
        assert_memory_equal(&got, &leases[i], sizeof got);
        char lease[RECEIPT_LEASE_MAX];
        size_t m = receipt_lease_text(&got, lease);
        assert_int_equal(m, strlen(lease));
        /* the receipt is the lease text, a dot and the MAC */
        assert_memory_equal(r, lease, m);
        assert_int_equal(r[m], '.');
        assert_int_equal(n - m - 1, RECEIPT_MAC_CHARS);
    }
    char r[RECEIPT_MAX];
    make(&k, "q", &(struct receipt_lease){0x1f, 2, 3}, r);
    assert_memory_equal(r, "1f.2.3.", 7);
    char big[RECEIPT_MAX];
    assert_int_equal(make(&k, "q", &leases[3], big), RECEIPT_MAX - 1);
}

/* The MAC is base64url of the first 16 bytes of HMAC-SHA256 over
 * "mom receipt v1" NUL queue NUL and the three numbers big-endian. */
static void test_mac_matches_hmac(void **state)
{
    (void)state;
    struct receipt_key k = key_of(9);
    struct receipt_lease l = {0x0102030405060708, 9, 0xa};
    char r[RECEIPT_MAX];
    make(&k, "jobs", &l, r);
    uint8_t msg[64];
    size_t n = 0;
    memcpy(msg, "mom receipt v1", 15), n = 15;
    memcpy(msg + n, "jobs", 5), n += 5;
    static const uint8_t nums[24] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0,
                                     0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0xa};
    memcpy(msg + n, nums, 24), n += 24;
    uint8_t mac[32];
    unsigned int maclen = 0;
    assert_non_null(HMAC(EVP_sha256(), k.bytes, sizeof k.bytes, msg, n, mac, &maclen));
    const char *dot = strrchr(r, '.');
    uint8_t got[18];
    size_t gotlen = 0;
    assert_int_equal(base64_decode(BASE64_URL, dot + 1, strlen(dot + 1), got, sizeof got, &gotlen),
                     MOM_OK);
    assert_int_equal(gotlen, 16);
    assert_memory_equal(got, mac, 16);
}

/* Receipts pinned byte for byte (written by the one-shot HMAC() version
 * before signers existed): the format and the MAC's value never change, or
 * every receipt already handed out stops verifying. The 128-byte name takes
 * the MAC's input past one SHA-256 block. */
static void test_known_receipts(void **state)
{
    (void)state;
    struct receipt_key k = key_of(9);
    char longname[129];
    for (size_t i = 0; i < 128; i++)
        longname[i] = (char)('a' + i % 26);
    longname[128] = '\0';
    static const struct receipt_lease max = {UINT64_MAX, UINT64_MAX, UINT64_MAX};
    const struct {
        const char *queue;
        struct receipt_lease lease;
        const char *receipt;
    } known[] = {
        {"jobs", {0x0102030405060708, 9, 0xa}, "102030405060708.9.a.vKavA5-_ySz6GveYAUg48g"},
        {"orders", {1, 1, 1}, "1.1.1.bCi2QyG7BKI_00B__9NRFA"},
        {longname, max,
         "ffffffffffffffff.ffffffffffffffff.ffffffffffffffff.U3GAikB-qZa_BiuF_11QSg"},
    };
    struct receipt_signer *sg = receipt_signer_new(&k);
    assert_non_null(sg);
    /* twice through one signer: each MAC starts from the keyed states */
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
            char r[RECEIPT_MAX];
            size_t n = receipt_make(sg, known[i].queue, &known[i].lease, r);
            assert_string_equal(r, known[i].receipt);
            struct receipt_lease l;
            assert_true(receipt_verify(sg, known[i].queue, r, n, &l));
            assert_memory_equal(&l, &known[i].lease, sizeof l);
            assert_false(receipt_verify(sg, "jobs2", r, n, &l));
        }
    }
    receipt_signer_free(sg);
    receipt_signer_free(NULL);
}

/* Queue names of every length up to the longest valid one (the MAC's
 * input spans one to three SHA-256 blocks) against an independent HMAC. */
static void test_mac_every_name_length(void **state)
{
    (void)state;
    struct receipt_key k = key_of(11);
    struct receipt_signer *sg = receipt_signer_new(&k);
    assert_non_null(sg);
    char name[129];
    for (size_t len = 0; len <= 128; len++) {
        memset(name, 'n', len);
        name[len] = '\0';
        struct receipt_lease l = {len + 1, 0x77, 2};
        char r[RECEIPT_MAX];
        receipt_make(sg, name, &l, r);
        uint8_t msg[15 + 128 + 1 + 24];
        size_t n = 0;
        memcpy(msg, "mom receipt v1", 15), n = 15;
        memcpy(msg + n, name, len + 1), n += len + 1;
        static const uint8_t tail[16] = {0, 0, 0, 0, 0, 0, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 2};
        memset(msg + n, 0, 8);
        msg[n + 7] = (uint8_t)(len + 1);
        memcpy(msg + n + 8, tail, 16), n += 24;
        uint8_t mac[32];
        unsigned int maclen = 0;
        assert_non_null(HMAC(EVP_sha256(), k.bytes, sizeof k.bytes, msg, n, mac, &maclen));
        uint8_t got[18];
        size_t gotlen = 0;
        const char *dot = strrchr(r, '.');
        assert_int_equal(
            base64_decode(BASE64_URL, dot + 1, strlen(dot + 1), got, sizeof got, &gotlen), MOM_OK);
        assert_int_equal(gotlen, 16);
        assert_memory_equal(got, mac, 16);
    }
    receipt_signer_free(sg);
}

static void test_any_changed_byte_is_refused(void **state)
{
    (void)state;
    struct receipt_key k = key_of(2);
    char r[RECEIPT_MAX];
    size_t n = make(&k, "orders", &(struct receipt_lease){0x51, 0x1234, 2}, r);
    static const char alphabet[] =
        "0123456789abcdefABCDEFGHIJKLMNOPQRSTUVWXYZghijklmnopqrstuvwxyz-_.!\x80";
    size_t accepted = 0;
    for (size_t i = 0; i < n; i++) {
        for (const char *c = alphabet; *c; c++) {
            if (*c == r[i])
                continue;
            char t[RECEIPT_MAX];
            memcpy(t, r, n + 1);
            t[i] = *c;
            struct receipt_lease l;
            if (verify(&k, "orders", t, &l))
                accepted++;
        }
    }
    assert_int_equal(accepted, 0);
}

static void test_wrong_key_other_queue(void **state)
{
    (void)state;
    struct receipt_key k = key_of(3), other = key_of(4);
    char r[RECEIPT_MAX];
    make(&k, "orders", &(struct receipt_lease){5, 6, 1}, r);
    struct receipt_lease l;
    assert_true(verify(&k, "orders", r, &l));
    assert_false(verify(&other, "orders", r, &l));
    assert_false(verify(&k, "orders2", r, &l));
    assert_false(verify(&k, "order", r, &l));
    assert_false(verify(&k, "", r, &l));
    /* one bit of the key */
    struct receipt_key flipped = k;
    flipped.bytes[31] ^= 0x80;
    assert_false(verify(&flipped, "orders", r, &l));
    /* the same lease of the same queue under another key differs */
    char r2[RECEIPT_MAX];
    make(&other, "orders", &(struct receipt_lease){5, 6, 1}, r2);
    assert_string_not_equal(r, r2);
    /* the next delivery of the same message is another receipt */
    make(&k, "orders", &(struct receipt_lease){5, 6, 2}, r2);
    assert_string_not_equal(r, r2);
}

static void test_truncated_and_malformed(void **state)
{
    (void)state;
    struct receipt_key k = key_of(5);
    char r[RECEIPT_MAX];
    size_t n = make(&k, "q", &(struct receipt_lease){0x10, 0x20, 1}, r);
    struct receipt_lease l;
    for (size_t cut = 0; cut < n; cut++)
        assert_false(verify_n(&k, "q", r, cut, &l));
    char longer[RECEIPT_MAX + 8];
    snprintf(longer, sizeof longer, "%sA", r);
    assert_false(verify(&k, "q", longer, &l));
    snprintf(longer, sizeof longer, "0%s", r); /* a leading zero: not canonical */
    assert_false(verify(&k, "q", longer, &l));
    const char *mac = strrchr(r, '.') + 1;
    static const char *const heads[] = {
        "10.20",    "10.20.1.1", "10.20.01", "10..1",   "10.20.1 ", "1O.20.1",
        "10.20.-1", "",          "10.20.1.", "A0.20.1", "+10.20.1", "10.20.00000000000000001"};
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++) {
        char t[160];
        snprintf(t, sizeof t, "%s.%s", heads[i], mac);
        assert_false(verify(&k, "q", t, &l));
    }
    static const char *const junk[] = {"",
                                       "x",
                                       "1.1.1",
                                       "2.1.1",
                                       "never-issued",
                                       "0",
                                       "AAAAAAAAAAAAAAAA",
                                       "1.1.1.AAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++)
        assert_false(verify(&k, "q", junk[i], &l));
    /* a NUL inside the given length */
    char t[RECEIPT_MAX];
    memcpy(t, r, n + 1);
    t[n - 1] = '\0';
    assert_false(verify_n(&k, "q", t, n, &l));
}

static void test_parse_is_strict(void **state)
{
    (void)state;
    struct receipt_lease l;
    const char *mac;
    const char *ok = "ffffffffffffffff.0.a.AAAAAAAAAAAAAAAAAAAAAA";
    assert_true(receipt_parse(ok, strlen(ok), &l, &mac));
    assert_true(l.incarnation == UINT64_MAX && l.seq == 0 && l.delivery_count == 10);
    assert_ptr_equal(mac, ok + strlen(ok) - RECEIPT_MAC_CHARS);
    const char *big = "1ffffffffffffffff.0.a.AAAAAAAAAAAAAAAAAAAAAA"; /* 17 digits */
    assert_false(receipt_parse(big, strlen(big), &l, &mac));
    const char *upper = "F.0.a.AAAAAAAAAAAAAAAAAAAAAA";
    assert_false(receipt_parse(upper, strlen(upper), &l, &mac));
    const char *badmac = "f.0.a.AAAAAAAAAAAAAAAAAAAAA=";
    assert_false(receipt_parse(badmac, strlen(badmac), &l, &mac));
    assert_false(receipt_parse(NULL, 0, &l, &mac));
}

static void test_derive(void **state)
{
    (void)state;
    struct receipt_key a, b, c;
    assert_int_equal(receipt_key_derive("s3cret", 6, &a), MOM_OK);
    assert_int_equal(receipt_key_derive("s3cret", 6, &b), MOM_OK);
    assert_int_equal(receipt_key_derive("s3cre7", 6, &c), MOM_OK);
    assert_memory_equal(a.bytes, b.bytes, sizeof a.bytes);
    assert_memory_not_equal(a.bytes, c.bytes, sizeof a.bytes);
    /* HMAC-SHA256(secret, label): not the secret itself */
    uint8_t want[32];
    unsigned int n = 0;
    HMAC(EVP_sha256(), "s3cret", 6, (const uint8_t *)"mom receipt key v1", 18, want, &n);
    assert_memory_equal(a.bytes, want, 32);
    assert_int_equal(receipt_key_derive("", 0, &a), MOM_ERR_INVALID);
    assert_int_equal(receipt_key_derive(NULL, 0, &a), MOM_ERR_INVALID);
}

static void test_key_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/mom-receipt-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/receipt-key", dir);
    struct receipt_key a, b;
    bool created = false;
    assert_int_equal(receipt_key_load_or_create(dir, &a, &created), MOM_OK);
    assert_true(created);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 65);
    assert_int_equal(receipt_key_load_or_create(dir, &b, &created), MOM_OK);
    assert_false(created);
    assert_memory_equal(a.bytes, b.bytes, sizeof a.bytes);
    /* a receipt made before a restart verifies after it */
    char r[RECEIPT_MAX];
    make(&a, "q", &(struct receipt_lease){1, 2, 3}, r);
    struct receipt_lease l;
    assert_true(verify(&b, "q", r, &l));
    /* damaged files stop start-up rather than change the key */
    static const char *const bad[] = {
        "", "abc\n", "zz00000000000000000000000000000000000000000000000000000000000000\n",
        "000000000000000000000000000000000000000000000000000000000000000\n",
        "0000000000000000000000000000000000000000000000000000000000000000"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(bad[i], f);
        fclose(f);
        assert_int_equal(receipt_key_load_or_create(dir, &b, &created), MOM_ERR_CORRUPT);
    }
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_mac_matches_hmac),
        cmocka_unit_test(test_known_receipts),
        cmocka_unit_test(test_mac_every_name_length),
        cmocka_unit_test(test_any_changed_byte_is_refused),
        cmocka_unit_test(test_wrong_key_other_queue),
        cmocka_unit_test(test_truncated_and_malformed),
        cmocka_unit_test(test_parse_is_strict),
        cmocka_unit_test(test_derive),
        cmocka_unit_test(test_key_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
