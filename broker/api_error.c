/* The table of api_error.h: every error kind's HTTP status and error code.
 * SPDX-License-Identifier: MIT */
#include "broker/api_error.h"

static const struct {
    int status;
    const char *code;
} table[API_ERR_COUNT] = {
    [API_ERR_BAD_REQUEST] = {400, "bad_request"},
    [API_ERR_INVALID_JSON] = {400, "invalid_json"},
    [API_ERR_INVALID_NAME] = {400, "invalid_name"},
    [API_ERR_OFFSET_OUT_OF_RANGE] = {400, "offset_out_of_range"},
    [API_ERR_UNAUTHORIZED] = {401, "unauthorized"},
    [API_ERR_INVALID_TOKEN] = {401, "invalid_token"},
    [API_ERR_INVALID_CREDENTIALS] = {401, "invalid_credentials"},
    [API_ERR_FORBIDDEN] = {403, "forbidden"},
    [API_ERR_NOT_FOUND] = {404, "not_found"},
    [API_ERR_QUEUE_NOT_FOUND] = {404, "queue_not_found"},
    [API_ERR_TOPIC_NOT_FOUND] = {404, "topic_not_found"},
    [API_ERR_SUBSCRIPTION_NOT_FOUND] = {404, "subscription_not_found"},
    [API_ERR_METHOD_NOT_ALLOWED] = {405, "method_not_allowed"},
    [API_ERR_CONFLICT] = {409, "conflict"},
    [API_ERR_RECEIPT_EXPIRED] = {410, "receipt_expired"},
    [API_ERR_LENGTH_REQUIRED] = {411, "bad_request"},
    [API_ERR_PAYLOAD_TOO_LARGE] = {413, "payload_too_large"},
    [API_ERR_URI_TOO_LONG] = {414, "uri_too_long"},
    [API_ERR_QUEUE_FULL] = {429, "queue_full"},
    [API_ERR_TOO_MANY_REQUESTS] = {429, "too_many_requests"},
    [API_ERR_HEADER_TOO_LARGE] = {431, "header_too_large"},
    [API_ERR_NOT_APPLIED] = {500, "bad_request"},
    [API_ERR_UNAVAILABLE] = {503, "unavailable"},
    [API_ERR_STORAGE_UNAVAILABLE] = {503, "storage_unavailable"},
    [API_ERR_STORAGE_FULL] = {507, "storage_unavailable"},
    [API_ERR_HTTP_VERSION] = {505, "http_version_not_supported"},
};

int api_error_status(enum api_error e)
{
    return (unsigned)e < API_ERR_COUNT ? table[e].status : 500;
}

const char *api_error_code(enum api_error e)
{
    return (unsigned)e < API_ERR_COUNT ? table[e].code : "bad_request";
}
