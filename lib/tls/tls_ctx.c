/*
 * tls_ctx.c - shared TLS contexts for the client and server roles.
 *
 * One SSL_CTX per role is shared by every connection: it holds the trust store (the system
 * bundle alone is a few hundred KiB, so it must not be per connection), the server's
 * certificate and key, and the settings that keep per-connection memory low:
 *   - SSL_MODE_RELEASE_BUFFERS: record read/write buffers (~17 KiB each) freed when empty;
 *   - read-ahead off (the default), so OpenSSL never buffers more than one record;
 *   - SSL_OP_NO_COMPRESSION (also closes CRIME);
 *   - no session cache on either side, no TLS 1.3 session tickets from the server: a
 *     reconnecting client just does a full handshake, and nothing accumulates in the context;
 *   - SSL_OP_NO_RENEGOTIATION: a write can never need a read (simplifies the engine).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <arpa/inet.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/alloc.h"
#include "core/log.h"
#include "tls/tls_int.h"
#include "wa/error.h"

const char *wa__tls_openssl_reason(void)
{
    unsigned long first = ERR_peek_error(), e = ERR_peek_last_error();
    const char *r;

    if (e == 0)
        return "";
    /* a system error (e.g. a CA file that cannot be opened) comes first, wrapped by others */
    if (ERR_SYSTEM_ERROR(first))
        return strerror(ERR_GET_REASON(first));
    r = ERR_reason_error_string(e);
    return r ? r : "unknown OpenSSL error";
}

int wa__tls_is_ip_literal(const char *s)
{
    unsigned char addr[16];

    return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

/* Settings common to both roles. */
static int ctx_common(SSL_CTX *c)
{
    if (!SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION))
        return WA_ETLS;
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(c, 0);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    return 0;
}

static wa_tls_ctx *ctx_wrap(SSL_CTX *c, int is_server, int verify)
{
    wa_tls_ctx *ctx = wa_calloc(1, sizeof *ctx);

    if (!ctx)
        return NULL;
    ctx->ssl_ctx = c;
    ctx->is_server = is_server;
    ctx->verify = verify;
    return ctx;
}

/* Add every certificate of a PEM text to the context's trust store. */
static int add_ca_pem(SSL_CTX *c, const char *pem)
{
    X509_STORE *store = SSL_CTX_get_cert_store(c);
    BIO *bio;
    X509 *x;
    int count = 0, rc = 0;

    bio = BIO_new_mem_buf(pem, -1);
    if (!bio)
        return WA_ENOMEM;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        /* a duplicate of a system CA is not an error */
        if (!X509_STORE_add_cert(store, x) &&
            ERR_GET_REASON(ERR_peek_last_error()) != X509_R_CERT_ALREADY_IN_HASH_TABLE)
            rc = WA_ETLS;
        X509_free(x);
        if (rc)
            goto out;
        count++;
    }
    if (count == 0)
        rc = WA_ECERT;
out:
    BIO_free(bio);
    return rc;
}

int wa_tls_ctx_new_client(const wa_tls_client_opts *opts, wa_tls_ctx **out)
{
    static const wa_tls_client_opts defaults;
    SSL_CTX *c = NULL;
    wa_tls_ctx *ctx;
    int rc;

    if (!opts)
        opts = &defaults;
    ERR_clear_error();
    c = SSL_CTX_new(TLS_client_method());
    if (!c) {
        rc = WA_ENOMEM;
        goto out;
    }
    rc = ctx_common(c);
    if (rc)
        goto out;
    if (opts->insecure_skip_verify) {
        wa_log_warn(WA__TLS_LOG, "certificate verification is DISABLED (insecure_skip_verify): "
                                 "for tests only");
        SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    }
    if (!opts->no_system_ca && !SSL_CTX_set_default_verify_paths(c)) {
        wa_log_error(WA__TLS_LOG, "cannot load the system CA store: %s", wa__tls_openssl_reason());
        rc = WA_ETLS;
        goto out;
    }
    if (opts->ca_file && !SSL_CTX_load_verify_locations(c, opts->ca_file, NULL)) {
        wa_log_error(WA__TLS_LOG, "cannot load CA file %s: %s", opts->ca_file,
                     wa__tls_openssl_reason());
        rc = WA_EIO;
        goto out;
    }
    if (opts->ca_pem) {
        rc = add_ca_pem(c, opts->ca_pem);
        if (rc) {
            wa_log_error(WA__TLS_LOG, "cannot load CA PEM: %s", wa__tls_openssl_reason());
            goto out;
        }
    }
    ctx = ctx_wrap(c, 0, !opts->insecure_skip_verify);
    if (!ctx) {
        rc = WA_ENOMEM;
        goto out;
    }
    c = NULL;
    *out = ctx;
out:
    SSL_CTX_free(c);
    ERR_clear_error();
    return rc;
}

/* Leaf certificate and any chain certificates that follow it. */
static int use_cert_chain_pem(SSL_CTX *c, const char *pem)
{
    BIO *bio;
    X509 *x = NULL;
    int rc = WA_ECERT;

    bio = BIO_new_mem_buf(pem, -1);
    if (!bio)
        return WA_ENOMEM;
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (!x || !SSL_CTX_use_certificate(c, x))
        goto out;
    X509_free(x);
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (!SSL_CTX_add0_chain_cert(c, x))
            goto out;
        x = NULL; /* owned by the context now */
    }
    rc = 0;
out:
    X509_free(x);
    BIO_free(bio);
    return rc;
}

static int use_key_pem(SSL_CTX *c, const char *pem)
{
    BIO *bio;
    EVP_PKEY *k;
    int rc = WA_ECERT;

    bio = BIO_new_mem_buf(pem, -1);
    if (!bio)
        return WA_ENOMEM;
    k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (k && SSL_CTX_use_PrivateKey(c, k) && SSL_CTX_check_private_key(c))
        rc = 0;
    EVP_PKEY_free(k);
    BIO_free(bio);
    return rc;
}

int wa_tls_ctx_new_server(const char *cert_pem, const char *key_pem, wa_tls_ctx **out)
{
    SSL_CTX *c = NULL;
    wa_tls_ctx *ctx;
    int rc;

    if (!cert_pem || !key_pem)
        return WA_EINVAL;
    ERR_clear_error();
    c = SSL_CTX_new(TLS_server_method());
    if (!c) {
        rc = WA_ENOMEM;
        goto out;
    }
    rc = ctx_common(c);
    if (rc)
        goto out;
    /* no session tickets: nothing to resume, nothing extra sent or kept per connection */
    if (!SSL_CTX_set_num_tickets(c, 0)) {
        rc = WA_ETLS;
        goto out;
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    rc = use_cert_chain_pem(c, cert_pem);
    if (!rc)
        rc = use_key_pem(c, key_pem);
    if (rc) {
        wa_log_error(WA__TLS_LOG, "bad server certificate or key: %s", wa__tls_openssl_reason());
        goto out;
    }
    ctx = ctx_wrap(c, 1, 0);
    if (!ctx) {
        rc = WA_ENOMEM;
        goto out;
    }
    c = NULL;
    *out = ctx;
out:
    SSL_CTX_free(c);
    ERR_clear_error();
    return rc;
}

void wa_tls_ctx_free(wa_tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    wa_free(ctx);
}

int wa_tls_ctx_is_server(const wa_tls_ctx *ctx)
{
    return ctx->is_server;
}
