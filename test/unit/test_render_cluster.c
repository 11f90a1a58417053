/* Unit tests for render_cluster (broker/render.c): a struct node_status is
 * written as the GET /v1/cluster answer of docs/api.md, byte for byte, with
 * an unknown leader and a never-contacted member as null and an address
 * that needs escaping still valid JSON (checked with cJSON).
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include <cmocka.h>

#include "broker/render.h"
#include "broker/reply.h"
#include "common/err.h"
#include "replication/node.h"

static void test_three_members(void **state)
{
    (void)state;
    static struct node_status st;
    memset(&st, 0, sizeof st);
    st.node_id = 2;
    st.role = "follower";
    st.term = 7;
    st.leader = 0;
    st.commit_index = 41;
    st.applied_index = 40;
    st.abstaining = true;
    st.n_members = 3;
    st.members[0] = (struct node_member_status){
        .id = 1, .role = "follower", .match_index = 0, .last_contact_ms = UINT64_MAX};
    snprintf(st.members[0].address, sizeof st.members[0].address, "10.0.0.1:9090");
    st.members[1] = (struct node_member_status){
        .id = 2, .role = "follower", .match_index = 41, .last_contact_ms = 0, .healthy = true};
    snprintf(st.members[1].address, sizeof st.members[1].address, "[::1]:9090");
    st.members[2] = (struct node_member_status){
        .id = 3, .role = "leader", .match_index = 39, .last_contact_ms = 120, .healthy = true};
    snprintf(st.members[2].address, sizeof st.members[2].address, "we\"ird:1");
    struct reply r = {0};
    assert_int_equal(render_cluster(&st, &r), MOM_OK);
    assert_int_equal(r.status, 200);
    const char *want =
        "{\"node_id\":2,\"role\":\"follower\",\"term\":7,\"leader\":null,\"commit_index\":41,"
        "\"nodes\":[{\"id\":1,\"address\":\"10.0.0.1:9090\",\"role\":\"follower\","
        "\"match_index\":0,\"last_contact_ms\":null,\"healthy\":false},"
        "{\"id\":2,\"address\":\"[::1]:9090\",\"role\":\"follower\",\"match_index\":41,"
        "\"last_contact_ms\":0,\"healthy\":true},"
        "{\"id\":3,\"address\":\"we\\\"ird:1\",\"role\":\"leader\",\"match_index\":39,"
        "\"last_contact_ms\":120,\"healthy\":true}],"
        "\"applied_index\":40,\"abstaining\":true}";
    assert_int_equal(r.body_len, strlen(want));
    assert_memory_equal(r.body, want, r.body_len);
    cJSON *j = cJSON_ParseWithLength(r.body, r.body_len);
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "nodes")), 3);
    cJSON_Delete(j);
    reply_cleanup(&r);
}

static void test_alone(void **state)
{
    (void)state;
    static struct node_status st;
    memset(&st, 0, sizeof st);
    st.node_id = 4;
    st.role = "leader";
    st.term = 1;
    st.leader = 4;
    st.commit_index = st.applied_index = 1;
    st.n_members = 1;
    st.members[0] = (struct node_member_status){
        .id = 4, .role = "leader", .match_index = 1, .last_contact_ms = 0, .healthy = true};
    snprintf(st.members[0].address, sizeof st.members[0].address, "127.0.0.1:0");
    struct reply r = {0};
    assert_int_equal(render_cluster(&st, &r), MOM_OK);
    const char *want =
        "{\"node_id\":4,\"role\":\"leader\",\"term\":1,\"leader\":4,\"commit_index\":1,"
        "\"nodes\":[{\"id\":4,\"address\":\"127.0.0.1:0\",\"role\":\"leader\","
        "\"match_index\":1,\"last_contact_ms\":0,\"healthy\":true}],"
        "\"applied_index\":1,\"abstaining\":false}";
    assert_int_equal(r.body_len, strlen(want));
    assert_memory_equal(r.body, want, r.body_len);
    reply_cleanup(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_members),
        cmocka_unit_test(test_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
