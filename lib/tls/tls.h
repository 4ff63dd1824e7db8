/*
 * tls.h - a sans-I/O TLS engine on OpenSSL 3.
 *
 * OpenSSL never sees a socket: each connection's SSL object reads from and writes to a small
 * custom BIO backed by two capped wa_bufs (ciphertext in, ciphertext out). The caller moves
 * bytes between the engine and the network:
 *
 *     wa_tls_feed(t, ciphertext from the peer)
 *     wa_tls_handshake(t) / wa_tls_read(t, plaintext out)   -> 0, WA_EAGAIN, or an error
 *     wa_tls_write(t, plaintext)
 *     wa_tls_pending_output(t, &buf)                        -> ciphertext to send to the peer
 *
 * Verification (client role) is on by default: the chain is checked against the system CA
 * store (SSL_CTX_set_default_verify_paths) plus optional extra CAs, SNI is sent and the host
 * name (or IP address) is checked with SSL_set1_host / X509_VERIFY_PARAM_set1_ip_asc. It can
 * only be switched off by an explicit option, which is logged as a warning.
 *
 * Memory: thousands of idle connections must fit in a few KiB each, so one SSL_CTX is shared
 * by all connections of a role, OpenSSL's record buffers are released when empty
 * (SSL_MODE_RELEASE_BUFFERS), read-ahead stays off, there is no compression, no session cache
 * and no TLS 1.3 session tickets, and the engine's own in/out buffers are freed whenever they
 * become empty. Protocol floor: TLS 1.2 (RFC 5246); TLS 1.3 (RFC 8446) preferred.
 *
 * Errors are sticky: after the first failure every call returns the same code, and
 * wa_tls_last_error() gives a readable reason ("certificate verify failed: Hostname mismatch").
 * Certificate problems are WA_ECERT, every other TLS failure WA_ETLS.
 *
 * Threading: a wa_tls_ctx may be shared by engines on several threads once created; one engine
 * is used by one thread at a time. OpenSSL's error queue is cleared around every call.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_TLS_TLS_H
#define WA_TLS_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Ciphertext the engine buffers from wa_tls_feed before OpenSSL consumes it. The event loop
 * feeds one socket read (<= 64 KiB) at a time and drains it at once, so this is never reached
 * by a well-behaved caller; it bounds a misbehaving one. */
#define WA_TLS_MAX_INPUT (256 * 1024)
/* Ciphertext the engine buffers before the caller takes it with wa_tls_pending_output. */
#define WA_TLS_MAX_OUTPUT (16 * 1024 * 1024)
/* Longest plaintext of one TLS record (RFC 8446 5.1): a read buffer this big never truncates. */
#define WA_TLS_MAX_RECORD 16384
/* Longest host name accepted for SNI / verification / certificate generation (RFC 1035). */
#define WA_TLS_MAX_HOSTNAME 253
/* Validity of a generated self-signed certificate. */
#define WA_TLS_SELF_SIGNED_DAYS 365

typedef struct wa_tls_ctx wa_tls_ctx;
typedef struct wa_tls wa_tls;

typedef struct wa_tls_client_opts {
    /* Extra trusted CA certificates, in addition to the system store (both optional): a PEM
     * file path and/or PEM text (one or more certificates). The simulator's GET /ca.pem can be
     * given here as-is. */
    const char *ca_file;
    const char *ca_pem;
    /* Do not load the system CA store: trust only ca_file/ca_pem (pinning to a simulator). */
    int no_system_ca;
    /* DANGER, tests only: accept any certificate and any host name. Logged as a warning. */
    int insecure_skip_verify;
} wa_tls_client_opts;

/* --- contexts (shared by many connections) --- */

/* Client context. opts may be NULL (system CAs, verification on).
 * Returns 0 and *out, WA_EIO if ca_file cannot be loaded, WA_ECERT if ca_pem holds no valid
 * certificate, WA_ETLS/WA_ENOMEM otherwise. Free with wa_tls_ctx_free. */
int wa_tls_ctx_new_client(const wa_tls_client_opts *opts, wa_tls_ctx **out);

/* Server context from PEM text: cert_pem is the leaf certificate optionally followed by its
 * chain, key_pem the matching private key (PKCS#8 or traditional, unencrypted). Both are
 * copied; the caller keeps ownership. Returns 0 and *out, WA_ECERT if the certificate or key
 * cannot be parsed or do not match, WA_ETLS/WA_ENOMEM otherwise. */
int wa_tls_ctx_new_server(const char *cert_pem, const char *key_pem, wa_tls_ctx **out);

/* Frees the context. Engines created from it hold their own reference to OpenSSL's SSL_CTX,
 * but callers should still free the context last. NULL is allowed. */
void wa_tls_ctx_free(wa_tls_ctx *ctx);

/* 1 for a server context, 0 for a client context. */
int wa_tls_ctx_is_server(const wa_tls_ctx *ctx);

/* Generate a self-signed server certificate (EC P-256 key, SHA-256, valid from one hour ago
 * for WA_TLS_SELF_SIGNED_DAYS) for "localhost", 127.0.0.1 and ::1, plus `host` if not NULL
 * (a DNS name or an IP literal; it is also the subject CN). The certificate is its own CA, so
 * a client trusts it by adding cert_pem as a CA (wa_tls_client_opts.ca_pem / ca_file).
 * On success *cert_pem and *key_pem are NUL-terminated PEM strings owned by the caller: free
 * the certificate with wa_free and the key with wa_tls_pem_free (it wipes).
 * WA_EINVAL for a malformed host, WA_ETLS/WA_ENOMEM otherwise. */
int wa_tls_generate_self_signed(const char *host, char **cert_pem, char **key_pem);

/* Wipe and free a PEM string from wa_tls_generate_self_signed. NULL is allowed. */
void wa_tls_pem_free(char *pem);

/* --- engines (one per connection) --- */

/* New engine in the role of ctx. For a client context, `hostname` is the server name sent as
 * SNI (not for IP literals) and verified against the certificate; it is required unless
 * verification is off. Ignored for a server context (may be NULL). The client sends nothing
 * until wa_tls_handshake or wa_tls_read is called.
 * Returns 0 and *out, WA_EINVAL (missing/overlong host name), WA_ENOMEM, WA_ETLS. */
int wa_tls_new(wa_tls_ctx *ctx, const char *hostname, wa_tls **out);
/* Free the engine (no close_notify is sent; see wa_tls_shutdown). NULL is allowed. */
void wa_tls_free(wa_tls *t);

/* Buffer ciphertext received from the peer (copied). 0, WA_ELIMIT if more than
 * WA_TLS_MAX_INPUT bytes would be waiting (nothing is buffered then), WA_ENOMEM, or the
 * sticky error. Processing happens in wa_tls_handshake / wa_tls_read. */
int wa_tls_feed(wa_tls *t, const void *data, size_t len);

/* Advance the handshake with the input fed so far; output may become pending.
 * 0 when the handshake is complete, WA_EAGAIN when more input is needed, WA_ECERT on a
 * verification failure, WA_ETLS on any other failure (including an alert from the peer). */
int wa_tls_handshake(wa_tls *t);
/* 1 once the handshake has completed, else 0. */
int wa_tls_handshake_done(const wa_tls *t);

/* Decrypt the next plaintext: up to cap bytes into out, *n set (> 0) on success. Completes
 * the handshake first if needed. A buffer of WA_TLS_MAX_RECORD bytes takes a whole record;
 * a smaller one gets the rest on later calls. Returns 0, WA_EAGAIN (no complete record
 * buffered), WA_ECLOSED after the peer's close_notify (sticky), WA_ECERT/WA_ETLS/WA_ENOMEM. */
int wa_tls_read(wa_tls *t, uint8_t *out, size_t cap, size_t *n);

/* Encrypt len bytes of plaintext (all of it, as one or more records) into the pending output.
 * WA_ESTATE before the handshake is complete, WA_ECLOSED after wa_tls_shutdown or the peer's
 * close_notify, WA_ELIMIT if the pending output would pass WA_TLS_MAX_OUTPUT (nothing is
 * written then), WA_ETLS/WA_ENOMEM (sticky). */
int wa_tls_write(wa_tls *t, const void *data, size_t len);

/* Queue a close_notify alert (once); later writes fail with WA_ECLOSED. 0 or sticky error. */
int wa_tls_shutdown(wa_tls *t);

/* Bytes of ciphertext waiting to be sent. */
size_t wa_tls_pending_len(const wa_tls *t);
/* Move all pending ciphertext into out (appended; when out is empty and unallocated the
 * engine's buffer is handed over without a copy). The engine's output buffer is released.
 * 0 (also when nothing is pending), WA_ELIMIT if out cannot take it all (nothing moved),
 * WA_ENOMEM. */
int wa_tls_pending_output(wa_tls *t, wa_buf *out);

/* Readable reason for the sticky error ("" if none). Valid until wa_tls_free. */
const char *wa_tls_last_error(const wa_tls *t);
/* Negotiated protocol version ("TLSv1.3"), or "" before the handshake. Static string. */
const char *wa_tls_version(const wa_tls *t);

#endif
