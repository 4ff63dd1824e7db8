/*
 * tls.c - the per-connection TLS engine: an SSL object over a custom in-memory BIO.
 *
 * Why a custom BIO and not a BIO pair or two BIO_s_mem: a BIO pair allocates two fixed 17 KiB
 * ring buffers per connection for its whole life, and a mem BIO keeps its largest-ever
 * allocation after it is drained. Ours reads from and writes to two wa_bufs that are capped
 * (WA_TLS_MAX_INPUT / WA_TLS_MAX_OUTPUT) and freed as soon as they are empty, so an idle
 * connection holds only OpenSSL's SSL object and session.
 *
 * What that is (OpenSSL 3.0, idle TLS 1.3 client, measured with heaptrack: ~18 KiB in all):
 * the SSL struct itself ~7.6 KiB (one allocation: its embedded record-layer and s3 state);
 * ~1 KiB more made by SSL_new (CERT copy, verify param, BIO); the peer's certificate chain,
 * decoded and kept in the SSL_SESSION (~4 KiB for one P-256 certificate, X509 + EVP_PKEY;
 * each further certificate of a chain adds its own); the two AES-GCM record cipher contexts
 * ~1 KiB each; the SSL_SESSION ~1 KiB; the key shares (ours and the peer's) ~0.6 KiB; small
 * handshake leftovers. None of it can be freed through the API while the connection lives
 * (record buffers, tickets, the trust store and our own buffers are not in the figure).
 *
 * The BIO never blocks and never reports EOF: when the input is exhausted it sets the retry
 * flag, which OpenSSL turns into SSL_ERROR_WANT_READ and we into WA_EAGAIN. A write into the
 * output buffer only fails on allocation failure, and wa_tls_write checks the cap before
 * calling SSL_write, so SSL_write never needs to be retried with the same arguments.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core/alloc.h"
#include "core/log.h"
#include "tls/tls_int.h"
#include "wa/error.h"

/* Room for the readable error text (allocated only when an error happens). */
#define ERR_TEXT_MAX 200
/* Worst-case TLS record expansion we assume per record when checking the output cap:
 * 5-byte header + content type + AEAD tag (16) or CBC padding/MAC (<= 256 + 48). */
#define RECORD_OVERHEAD 512

struct wa_tls {
    SSL *ssl;
    wa_buf in;     /* ciphertext fed, not yet read by OpenSSL: bytes [in_off, in.len) */
    size_t in_off; /* consumed prefix of `in` */
    wa_buf out;    /* ciphertext written by OpenSSL, not yet taken */
    int err;       /* sticky error, 0 if none */
    char *err_text;
    unsigned is_server : 1;
    unsigned verify : 1;
    unsigned handshake_done : 1;
    unsigned shutdown_sent : 1;
    unsigned oom : 1; /* the BIO failed to allocate */
};

/* ---- the BIO ---- */

static BIO_METHOD *bio_method;
static pthread_once_t bio_method_once = PTHREAD_ONCE_INIT;

static int bio_write(BIO *b, const char *data, int len)
{
    wa_tls *t = BIO_get_data(b);

    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (wa_buf_append(&t->out, data, (size_t)len) != 0) {
        t->oom = 1;
        return -1;
    }
    return len;
}

static int bio_read(BIO *b, char *data, int len)
{
    wa_tls *t = BIO_get_data(b);
    size_t avail = t->in.len - t->in_off;
    size_t n;

    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (avail == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    n = (size_t)len < avail ? (size_t)len : avail;
    memcpy(data, t->in.data + t->in_off, n);
    t->in_off += n;
    if (t->in_off == t->in.len) {
        t->in_off = 0;
        wa_buf_reset(&t->in);
    }
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    wa_tls *t = BIO_get_data(b);

    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_PENDING:
        return (long)(t->in.len - t->in_off);
    case BIO_CTRL_WPENDING:
        return (long)t->out.len;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int bio_destroy(BIO *b)
{
    BIO_set_data(b, NULL);
    return 1;
}

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "wa_tls_mem");

    if (!m)
        return;
    if (!BIO_meth_set_write(m, bio_write) || !BIO_meth_set_read(m, bio_read) ||
        !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create) ||
        !BIO_meth_set_destroy(m, bio_destroy)) {
        BIO_meth_free(m);
        return;
    }
    bio_method = m;
}

/* ---- errors ---- */

/* Record the sticky error with a readable reason; returns err. Clears OpenSSL's queue. */
static int set_error(wa_tls *t, int err, const char *what, const char *detail)
{
    if (t->err == 0) {
        t->err = err;
        t->err_text = wa_malloc(ERR_TEXT_MAX);
        if (t->err_text)
            snprintf(t->err_text, ERR_TEXT_MAX, "%s%s%s", what, detail && *detail ? ": " : "",
                     detail ? detail : "");
    }
    ERR_clear_error();
    return t->err;
}

/* Map a failed SSL_* call (return value r) to WA_EAGAIN or a sticky error. */
static int ssl_failure(wa_tls *t, int r)
{
    int e = SSL_get_error(t->ssl, r);
    long vr;

    switch (e) {
    case SSL_ERROR_WANT_READ:
        ERR_clear_error();
        return WA_EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return set_error(t, WA_ECLOSED, "peer sent close_notify", NULL);
    default:
        break;
    }
    if (t->oom)
        return set_error(t, WA_ENOMEM, "out of memory", NULL);
    if (!t->is_server && t->verify) {
        vr = SSL_get_verify_result(t->ssl);
        if (vr != X509_V_OK)
            return set_error(t, WA_ECERT, "certificate verify failed",
                             X509_verify_cert_error_string(vr));
    }
    if (e == SSL_ERROR_SSL)
        return set_error(t, WA_ETLS, "TLS error", wa__tls_openssl_reason());
    return set_error(t, WA_ETLS, "TLS error", "unexpected OpenSSL state");
}

/* Give back the input buffer when everything fed has been consumed. */
static void release_idle(wa_tls *t)
{
    if (t->in.len == t->in_off) {
        t->in_off = 0;
        wa_buf_cleanup(&t->in);
    }
}

/* ---- public ---- */

int wa_tls_new(wa_tls_ctx *ctx, const char *hostname, wa_tls **out)
{
    wa_tls *t;
    BIO *bio = NULL;
    int rc = 0;

    if (!ctx)
        return WA_EINVAL;
    if (!ctx->is_server) {
        if (hostname && (hostname[0] == '\0' || strlen(hostname) > WA_TLS_MAX_HOSTNAME))
            return WA_EINVAL;
        if (!hostname && ctx->verify)
            return WA_EINVAL; /* nothing to verify the certificate against */
    }
    pthread_once(&bio_method_once, bio_method_init);
    if (!bio_method)
        return WA_ENOMEM;
    t = wa_calloc(1, sizeof *t);
    if (!t)
        return WA_ENOMEM;
    wa_buf_init(&t->in, WA_TLS_MAX_INPUT);
    wa_buf_init(&t->out, WA_TLS_MAX_OUTPUT);
    t->is_server = ctx->is_server ? 1 : 0;
    t->verify = ctx->verify ? 1 : 0;
    ERR_clear_error();
    t->ssl = SSL_new(ctx->ssl_ctx);
    bio = BIO_new(bio_method);
    if (!t->ssl || !bio) {
        rc = WA_ENOMEM;
        goto out;
    }
    BIO_set_data(bio, t);
    SSL_set_bio(t->ssl, bio, bio); /* one BIO both ways; SSL owns it (one reference) */
    bio = NULL;
    if (t->is_server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (hostname) {
            /* RFC 6066 3: SNI carries DNS names only, never IP literals */
            if (wa__tls_is_ip_literal(hostname)) {
                if (t->verify && !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), hostname)) {
                    rc = WA_ETLS;
                    goto out;
                }
            } else {
                if (!SSL_set_tlsext_host_name(t->ssl, hostname)) {
                    rc = WA_ETLS;
                    goto out;
                }
                if (t->verify) {
                    SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                    if (!SSL_set1_host(t->ssl, hostname)) {
                        rc = WA_ETLS;
                        goto out;
                    }
                }
            }
        }
    }
    *out = t;
out:
    BIO_free(bio);
    if (rc)
        wa_tls_free(t);
    ERR_clear_error();
    return rc;
}

void wa_tls_free(wa_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* frees the BIO */
    wa_buf_cleanup(&t->in);
    wa_buf_cleanup(&t->out);
    wa_free(t->err_text);
    wa_free(t);
}

int wa_tls_feed(wa_tls *t, const void *data, size_t len)
{
    int rc;

    if (t->err)
        return t->err;
    if (len == 0)
        return 0;
    if (len > WA_TLS_MAX_INPUT - (t->in.len - t->in_off))
        return WA_ELIMIT;
    /* drop the consumed prefix first, so the cap counts only unread bytes */
    if (t->in_off) {
        wa_buf_consume(&t->in, t->in_off);
        t->in_off = 0;
    }
    rc = wa_buf_append(&t->in, data, len);
    if (rc == WA_ENOMEM)
        return WA_ENOMEM; /* not sticky: nothing was lost, the caller may retry */
    return rc;
}

int wa_tls_handshake(wa_tls *t)
{
    int r;

    if (t->err)
        return t->err;
    if (t->handshake_done)
        return 0;
    ERR_clear_error();
    r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->handshake_done = 1;
        release_idle(t);
        return 0;
    }
    r = ssl_failure(t, r);
    if (r == WA_EAGAIN)
        release_idle(t);
    return r;
}

int wa_tls_handshake_done(const wa_tls *t)
{
    return t->handshake_done;
}

int wa_tls_read(wa_tls *t, uint8_t *out, size_t cap, size_t *n)
{
    size_t got = 0;
    int rc;

    if (cap == 0)
        return WA_EINVAL;
    rc = wa_tls_handshake(t);
    if (rc)
        return rc;
    ERR_clear_error();
    if (SSL_read_ex(t->ssl, out, cap, &got) == 1 && got > 0) {
        *n = got;
        return 0;
    }
    rc = ssl_failure(t, 0);
    if (rc == WA_EAGAIN)
        release_idle(t);
    return rc;
}

int wa_tls_write(wa_tls *t, const void *data, size_t len)
{
    size_t written = 0, records, room;

    if (t->err)
        return t->err;
    if (!t->handshake_done)
        return WA_ESTATE;
    if (t->shutdown_sent)
        return WA_ECLOSED;
    if (len == 0)
        return 0;
    records = len / WA_TLS_MAX_RECORD + 1;
    room = WA_TLS_MAX_OUTPUT - t->out.len;
    if (len > room || records > (room - len) / RECORD_OVERHEAD)
        return WA_ELIMIT;
    ERR_clear_error();
    if (SSL_write_ex(t->ssl, data, len, &written) == 1 && written == len)
        return 0;
    /* No renegotiation and an output buffer that cannot fill up: anything else is fatal. */
    if (SSL_get_error(t->ssl, 0) == SSL_ERROR_WANT_READ)
        return set_error(t, WA_ETLS, "TLS error", "write needs a read (renegotiation?)");
    return ssl_failure(t, 0);
}

int wa_tls_shutdown(wa_tls *t)
{
    if (t->err)
        return t->err;
    if (t->shutdown_sent)
        return 0;
    t->shutdown_sent = 1;
    if (!t->handshake_done)
        return 0; /* nothing established: the transport just closes */
    ERR_clear_error();
    /* 0 = close_notify sent, waiting for the peer's; 1 = both done; < 0 only on failure */
    if (SSL_shutdown(t->ssl) < 0 && t->oom)
        return set_error(t, WA_ENOMEM, "out of memory", NULL);
    ERR_clear_error();
    return 0;
}

size_t wa_tls_pending_len(const wa_tls *t)
{
    return t->out.len;
}

int wa_tls_pending_output(wa_tls *t, wa_buf *out)
{
    wa_buf tmp;
    int rc;

    if (t->out.len == 0) {
        wa_buf_cleanup(&t->out);
        return 0;
    }
    if (out->data == NULL && out->len == 0 && out->max >= t->out.len) {
        /* hand the allocation over; out keeps its own max */
        tmp = t->out;
        out->data = tmp.data;
        out->len = tmp.len;
        out->cap = tmp.cap;
        wa_buf_init(&t->out, WA_TLS_MAX_OUTPUT);
        return 0;
    }
    rc = wa_buf_append(out, t->out.data, t->out.len);
    if (rc)
        return rc;
    wa_buf_cleanup(&t->out);
    return 0;
}

const char *wa_tls_last_error(const wa_tls *t)
{
    if (!t->err)
        return "";
    return t->err_text ? t->err_text : wa_strerror(t->err);
}

const char *wa_tls_version(const wa_tls *t)
{
    if (!t->handshake_done)
        return "";
    return SSL_get_version(t->ssl);
}
