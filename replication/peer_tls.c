/* TLS under the peer channel: OpenSSL over memory BIOs between the socket
 * (a bufferevent) and h2conn, so the core stays one read path for both.
 * Mutual TLS 1.2+ with ALPN h2 only; each side verifies the other's chain
 * against the cluster CA, and the certificate must name a member: by a SAN
 * URI "urn:mom:node:<id>" when it has any (then exactly those ids), else by
 * the member's host from MOM_PEERS (SAN DNS name or IP address). The dialler
 * requires the member it dialled; the listener requires some member, and
 * each call's token must then name one of the certified members (peer.c).
 * Owns the two SSL_CTXs of a peer and the SSL and pre-handshake buffer of
 * each connection; what a finished handshake must satisfy is decided in
 * handshake_accepted.
 * SPDX-License-Identifier: MIT */
#include "replication/peer_internal.h"

#include "common/err.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define TLS_CHUNK 16384

/* Moves what OpenSSL produced onto the socket. */
static int tls_flush(struct pconn *pc)
{
    BIO *wbio = SSL_get_wbio(pc->ssl);
    uint8_t buf[TLS_CHUNK];
    int n;
    while ((n = BIO_read(wbio, buf, (int)sizeof buf)) > 0)
        if (bufferevent_write(pc->bev, buf, (size_t)n) != 0)
            return MOM_ERR_NOMEM;
    return MOM_OK;
}

static int tls_write(struct pconn *pc, const uint8_t *data, size_t len)
{
    while (len > 0) {
        int chunk = len > INT32_MAX ? INT32_MAX : (int)len;
        int n = SSL_write(pc->ssl, data, chunk);
        if (n <= 0)
            return MOM_ERR_IO;
        data += n;
        len -= (size_t)n;
    }
    return tls_flush(pc);
}

static const char *tls_error(void)
{
    unsigned long e = ERR_get_error();
    return e ? ERR_reason_error_string(e) : "TLS error";
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char h2[] = "\x02h2";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, h2, sizeof h2 - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* A server or client context: our certificate, peers verified against the
 * cluster CA (mutual TLS), TLS 1.2 at least, ALPN h2 only. */
static SSL_CTX *tls_ctx_new(bool server, const char *cert, const char *key, const char *ca)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1 || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        log_error("peer TLS: cannot load certificate %s, key %s or CA %s: %s", cert, key, ca,
                  tls_error());
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    if (server)
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    else if (SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x02h2", 3) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Puts TLS under a fresh connection; the handshake starts at once. */
int peer_tls_start(struct pconn *pc, bool server)
{
    struct peer *p = pc->peer;
    pc->ssl = SSL_new(server ? p->tls_server : p->tls_client);
    pc->tls_hold = evbuffer_new();
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    if (!pc->ssl || !pc->tls_hold || !rbio || !wbio) {
        BIO_free(rbio);
        BIO_free(wbio);
        return MOM_ERR_NOMEM;
    }
    SSL_set_bio(pc->ssl, rbio, wbio);
    if (server) {
        SSL_set_accept_state(pc->ssl);
        return MOM_OK;
    }
    SSL_set_connect_state(pc->ssl);
    const char *host = pc->member->cfg.host;
    struct in6_addr a6;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) != 1 && inet_pton(AF_INET6, host, &a6) != 1)
        SSL_set_tlsext_host_name(pc->ssl, host);
    SSL_do_handshake(pc->ssl);
    return tls_flush(pc);
}

int peer_tls_send(struct pconn *pc, const uint8_t *data, size_t len)
{
    if (!pc->tls_ready)
        return evbuffer_add(pc->tls_hold, data, len) == 0 ? MOM_OK : MOM_ERR_NOMEM;
    return tls_write(pc, data, len);
}

#define NODE_URI_PREFIX "urn:mom:node:"

/* Adds id when it is a member of the cluster (ids of others are ignored). */
static void add_cert_id(struct pconn *pc, uint32_t id)
{
    bool member = false;
    for (size_t i = 0; i < pc->peer->n_ids; i++)
        member = member || pc->peer->member_ids[i] == id;
    if (!member)
        return;
    for (size_t i = 0; i < pc->n_cert_ids; i++)
        if (pc->cert_ids[i] == id)
            return;
    if (pc->n_cert_ids < PEER_CERT_IDS_MAX)
        pc->cert_ids[pc->n_cert_ids++] = id;
}

/* "urn:mom:node:<id>" with a plain decimal id 1..2^31-1; 0 otherwise. */
static uint32_t node_of_uri(const unsigned char *s, int len)
{
    size_t plen = sizeof NODE_URI_PREFIX - 1;
    if (len <= (int)plen || memcmp(s, NODE_URI_PREFIX, plen) != 0)
        return 0;
    uint64_t id = 0;
    for (int i = (int)plen; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || id > 0x7fffffffu)
            return 0;
        id = id * 10 + (uint64_t)(s[i] - '0');
    }
    return id > 0x7fffffffu ? 0 : (uint32_t)id;
}

/* Fills pc->cert_ids with the members the peer's certificate names. */
static void certified_members(struct pconn *pc, X509 *cert)
{
    struct peer *p = pc->peer;
    pc->n_cert_ids = 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    bool has_node_uri = false;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type != GEN_URI)
            continue;
        const ASN1_IA5STRING *uri = gn->d.uniformResourceIdentifier;
        uint32_t id = node_of_uri(ASN1_STRING_get0_data(uri), ASN1_STRING_length(uri));
        if (id) {
            has_node_uri = true; /* names a node: the host no longer counts */
            add_cert_id(pc, id);
        }
    }
    GENERAL_NAMES_free(names);
    if (has_node_uri)
        return;
    for (size_t i = 0; i < p->n_members; i++) {
        const char *host = p->members[i].cfg.host;
        if (X509_check_ip_asc(cert, host, 0) == 1 || X509_check_host(cert, host, 0, 0, NULL) == 1)
            add_cert_id(pc, p->members[i].cfg.id);
    }
}

bool peer_tls_certifies(const struct pconn *pc, uint32_t id)
{
    if (!pc->ssl)
        return true;
    for (size_t i = 0; i < pc->n_cert_ids; i++)
        if (pc->cert_ids[i] == id)
            return true;
    return false;
}

/* The handshake is complete: what the peer must have agreed to before any
 * h2 byte flows. Logs and fails the connection when it has not. */
static bool handshake_accepted(struct pconn *pc)
{
    X509 *cert = SSL_get0_peer_certificate(pc->ssl);
    if (!cert) {
        peer_conn_fail(pc, "no peer certificate", true);
        return false;
    }
    certified_members(pc, cert);
    if (pc->member ? !peer_tls_certifies(pc, pc->member->cfg.id) : pc->n_cert_ids == 0) {
        char who[32] = "any member";
        /* "does not name any member" / "does not name member <id>" */
        if (pc->member)
            snprintf(who, sizeof who, "member %u", pc->member->cfg.id);
        log_warn("peer connection %s: the TLS certificate does not name %s (SAN " NODE_URI_PREFIX
                 "<id>, or the member's host)",
                 pc->desc, who);
        peer_conn_fail(pc, "certificate names another member", true);
        return false;
    }
    const unsigned char *alpn = NULL;
    unsigned int alen = 0;
    SSL_get0_alpn_selected(pc->ssl, &alpn, &alen);
    if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
        log_warn("peer connection %s: TLS peer did not agree on ALPN h2", pc->desc);
        peer_conn_fail(pc, "no ALPN h2", true);
        return false;
    }
    return true;
}

void peer_tls_read(struct pconn *pc, struct evbuffer *in)
{
    BIO *rbio = SSL_get_rbio(pc->ssl);
    struct evbuffer_iovec v[8];
    int nv = evbuffer_peek(in, -1, NULL, v, 8);
    size_t used = 0;
    for (int i = 0; i < nv && i < 8; i++) {
        if (BIO_write(rbio, v[i].iov_base, (int)v[i].iov_len) != (int)v[i].iov_len)
            break;
        used += v[i].iov_len;
    }
    evbuffer_drain(in, used);
    if (!pc->tls_ready) {
        int rc = SSL_do_handshake(pc->ssl);
        tls_flush(pc);
        if (rc != 1) {
            int err = SSL_get_error(pc->ssl, rc);
            if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
                long vr = SSL_get_verify_result(pc->ssl);
                log_warn("peer connection %s: TLS handshake failed: %s", pc->desc,
                         vr != X509_V_OK ? X509_verify_cert_error_string(vr) : tls_error());
                peer_conn_fail(pc, "TLS handshake failed", true);
            }
            return;
        }
        if (!handshake_accepted(pc))
            return;
        pc->tls_ready = true;
        size_t held = evbuffer_get_length(pc->tls_hold);
        if (held && tls_write(pc, evbuffer_pullup(pc->tls_hold, -1), held) != MOM_OK) {
            peer_conn_fail(pc, "TLS write failed", false);
            return;
        }
        evbuffer_drain(pc->tls_hold, held);
    }
    uint8_t buf[TLS_CHUNK];
    for (;;) {
        int n = SSL_read(pc->ssl, buf, (int)sizeof buf);
        if (n > 0) {
            if (!peer_conn_feed(pc, buf, (size_t)n))
                return;
            continue;
        }
        int err = SSL_get_error(pc->ssl, n);
        tls_flush(pc);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
            return;
        peer_conn_fail(pc, err == SSL_ERROR_ZERO_RETURN ? "TLS closed by peer" : tls_error(),
                       false);
        return;
    }
}

int peer_tls_init(struct peer *p, const struct peer_config *cfg)
{
    bool has_cert = cfg->tls_cert && *cfg->tls_cert, has_key = cfg->tls_key && *cfg->tls_key,
         has_ca = cfg->tls_ca && *cfg->tls_ca;
    if (!has_cert && !has_key && !has_ca)
        return MOM_OK; /* cleartext h2c */
    if (!(has_cert && has_key && has_ca)) {
        log_error("peer TLS needs all of MOM_PEER_TLS_CERT, MOM_PEER_TLS_KEY and MOM_PEER_TLS_CA");
        return MOM_ERR_INVALID;
    }
    p->tls_server = tls_ctx_new(true, cfg->tls_cert, cfg->tls_key, cfg->tls_ca);
    p->tls_client = tls_ctx_new(false, cfg->tls_cert, cfg->tls_key, cfg->tls_ca);
    return p->tls_server && p->tls_client ? MOM_OK : MOM_ERR_INVALID;
}

void peer_tls_cleanup(struct peer *p)
{
    if (p->tls_server)
        SSL_CTX_free(p->tls_server);
    if (p->tls_client)
        SSL_CTX_free(p->tls_client);
    p->tls_server = p->tls_client = NULL;
}

void peer_tls_conn_cleanup(struct pconn *pc)
{
    if (pc->ssl)
        SSL_free(pc->ssl);
    if (pc->tls_hold)
        evbuffer_free(pc->tls_hold);
    pc->ssl = NULL;
    pc->tls_hold = NULL;
}
