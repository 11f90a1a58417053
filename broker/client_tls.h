/* TLS on the client port (MOM_TLS_CERT, MOM_TLS_KEY, MOM_TLS_CLIENT_CA):
 * evhtp's SSL support, with the context hardened and every file checked
 * at start-up so that a bad one stops the node with a clear reason.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_CLIENT_TLS_H
#define MOM_BROKER_CLIENT_TLS_H

#include <evhtp.h>
#include <stddef.h>

/* Turns TLS on for htp's listener: TLS 1.2 and later, the certificate
 * chain at cert with its key, and with ca (may be NULL or empty) a client
 * certificate signed by that CA required. cfg must outlive htp (evhtp keeps
 * it). On failure, why (whylen bytes) says which file and what is wrong.
 * Returns MOM_OK, MOM_ERR_INVALID (a file is missing, unreadable, not PEM,
 * or the key does not match the certificate) or MOM_ERR_NOMEM. */
int client_tls_enable(evhtp_t *htp, evhtp_ssl_cfg_t *cfg, const char *cert, const char *key,
                      const char *ca, char *why, size_t whylen);

#endif
