/* The API's error kinds and the one table that maps each onto the wire: the
 * HTTP status and the error code clients match on (docs/api.md, "Errors").
 * The store, the request parsers and the handlers fail with a kind; only
 * api_error.c knows which status and code a kind is, and render.c turns it
 * into the {"error":{"code","message"}} answer.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_API_ERROR_H
#define MOM_BROKER_API_ERROR_H

enum api_error {
    API_ERR_BAD_REQUEST,            /* 400 bad_request */
    API_ERR_INVALID_JSON,           /* 400 invalid_json */
    API_ERR_INVALID_NAME,           /* 400 invalid_name */
    API_ERR_OFFSET_OUT_OF_RANGE,    /* 400 offset_out_of_range */
    API_ERR_UNAUTHORIZED,           /* 401 unauthorized: no bearer token */
    API_ERR_INVALID_TOKEN,          /* 401 invalid_token */
    API_ERR_INVALID_CREDENTIALS,    /* 401 invalid_credentials */
    API_ERR_FORBIDDEN,              /* 403 forbidden */
    API_ERR_NOT_FOUND,              /* 404 not_found: no such route */
    API_ERR_QUEUE_NOT_FOUND,        /* 404 queue_not_found */
    API_ERR_TOPIC_NOT_FOUND,        /* 404 topic_not_found */
    API_ERR_SUBSCRIPTION_NOT_FOUND, /* 404 subscription_not_found */
    API_ERR_METHOD_NOT_ALLOWED,     /* 405 method_not_allowed */
    API_ERR_CONFLICT,               /* 409 conflict */
    API_ERR_RECEIPT_EXPIRED,        /* 410 receipt_expired */
    API_ERR_LENGTH_REQUIRED,        /* 411 bad_request: chunked request body */
    API_ERR_PAYLOAD_TOO_LARGE,      /* 413 payload_too_large */
    API_ERR_URI_TOO_LONG,           /* 414 uri_too_long */
    API_ERR_QUEUE_FULL,             /* 429 queue_full */
    API_ERR_TOO_MANY_REQUESTS,      /* 429 too_many_requests: failed logins */
    API_ERR_HEADER_TOO_LARGE,       /* 431 header_too_large */
    API_ERR_NOT_APPLIED,            /* 500 bad_request: a log entry that does not decode */
    API_ERR_UNAVAILABLE,            /* 503 unavailable: no leader, no quorum, no memory */
    API_ERR_STORAGE_UNAVAILABLE,    /* 503 storage_unavailable: the log cannot be made durable */
    API_ERR_STORAGE_FULL,           /* 507 storage_unavailable: the disk is full */
    API_ERR_HTTP_VERSION,           /* 505 http_version_not_supported: a stream over HTTP/1.0 */
    API_ERR_COUNT
};

/* The HTTP status of a kind (500 for a value outside the enum). */
int api_error_status(enum api_error e);
/* The error code of a kind ("bad_request" for a value outside the enum). */
const char *api_error_code(enum api_error e);

#endif
