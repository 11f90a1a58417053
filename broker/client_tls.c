/* Client-port TLS on evhtp (client_tls.h). evhtp_ssl_init creates the
 * server context and makes the listener hand every accepted socket to an
 * OpenSSL bufferevent, but it ignores the results of loading the files, so
 * the files are loaded again here with every result checked, and the
 * context is tightened: TLS 1.2 at least, no renegotiation, buffers
 * released while idle (many idle keep-alive and stream connections), and
 * with a client CA, a certificate it signed required at the handshake.
 * Owns nothing: the context belongs to htp (evhtp_free frees it).
 * SPDX-License-Identifier: MIT */
#include "broker/client_tls.h"

#include "common/err.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* "<what> <path>: <reason>" with OpenSSL's last reason (or errno's). */
static int fail(char *why, size_t whylen, const char *what, const char *path)
{
    unsigned long e = ERR_peek_error(); /* the first: the root cause */
    char reason[256];
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    else
        snprintf(reason, sizeof reason, "%s", strerror(errno ? errno : EINVAL));
    ERR_clear_error();
    snprintf(why, whylen, "%s %s: %s", what, path, reason);
    return MOM_ERR_INVALID;
}

/* A readable file, checked first so that the message names errno. */
static int readable(char *why, size_t whylen, const char *what, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, whylen, "%s %s: %s", what, path, strerror(errno));
        return MOM_ERR_INVALID;
    }
    fclose(f);
    return MOM_OK;
}

int client_tls_enable(evhtp_t *htp, evhtp_ssl_cfg_t *cfg, const char *cert, const char *key,
                      const char *ca, char *why, size_t whylen)
{
    bool want_ca = ca && *ca;
    int rc = readable(why, whylen, "MOM_TLS_CERT", cert);
    if (rc == MOM_OK)
        rc = readable(why, whylen, "MOM_TLS_KEY", key);
    if (rc == MOM_OK && want_ca)
        rc = readable(why, whylen, "MOM_TLS_CLIENT_CA", ca);
    if (rc != MOM_OK)
        return rc;
    memset(cfg, 0, sizeof *cfg);
    /* evhtp takes char * but only reads them */
    cfg->pemfile = (char *)(uintptr_t)cert;
    cfg->privfile = (char *)(uintptr_t)key;
    cfg->scache_type = evhtp_ssl_scache_type_internal;
    cfg->ssl_opts = SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 |
                    SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                    SSL_OP_CIPHER_SERVER_PREFERENCE;
    if (evhtp_ssl_init(htp, cfg) != 0 || !htp->ssl_ctx) {
        snprintf(why, whylen, "cannot set up TLS on the client port");
        return MOM_ERR_NOMEM;
    }
    SSL_CTX *ctx = htp->ssl_ctx;
    ERR_clear_error(); /* evhtp's unchecked calls may have left errors */
    errno = 0;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        snprintf(why, whylen, "cannot require TLS 1.2 on the client port");
        return MOM_ERR_INVALID;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        return fail(why, whylen, "MOM_TLS_CERT", cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        return fail(why, whylen, "MOM_TLS_KEY", key);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return fail(why, whylen, "MOM_TLS_KEY does not match MOM_TLS_CERT:", key);
    if (!want_ca) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return MOM_OK;
    }
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
        return fail(why, whylen, "MOM_TLS_CLIENT_CA", ca);
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
    if (!names)
        return fail(why, whylen, "MOM_TLS_CLIENT_CA", ca);
    SSL_CTX_set_client_CA_list(ctx, names); /* the context owns names */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_verify_depth(ctx, 4);
    return MOM_OK;
}
