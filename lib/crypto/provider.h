/*
 * provider.h - libsignal-protocol-c glue: an OpenSSL 3 signal_crypto_provider and the
 * signal_context that libwa's XEdDSA code (and later the Signal session layer) share.
 *
 * The contract implemented is the one documented in <signal/signal_protocol.h>
 * (struct signal_crypto_provider): random bytes, HMAC-SHA256 init/update/final/cleanup,
 * SHA-512 init/update/final/cleanup (final re-arms the context), AES encrypt/decrypt in
 * SG_CIPHER_AES_CTR_NOPADDING and SG_CIPHER_AES_CBC_PKCS5 with 128/192/256-bit keys and a
 * 16-byte IV. Output buffers are signal_buffers the library frees.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_CRYPTO_PROVIDER_H
#define WA_CRYPTO_PROVIDER_H

#include <signal/signal_protocol.h>

/* Fill *p with libwa's OpenSSL-backed callbacks (user_data = NULL). */
void wa_signal_provider_fill(signal_crypto_provider *p);

/* Create a signal_context with libwa's crypto provider and a log function that forwards
 * libsignal's messages to wa_log (component "signal"). The caller owns the context and frees
 * it with wa_signal_ctx_free. 0, WA_ENOMEM or WA_ECRYPTO (provider refused). */
int wa_signal_ctx_new(signal_context **out);
void wa_signal_ctx_free(signal_context *ctx);

/* The process-wide context, created on first use; NULL if creation failed (it is retried on
 * the next call). NOT thread-safe: libwa runs its protocol code on one loop thread; code on
 * other threads creates its own context with wa_signal_ctx_new. The context has no locking
 * functions set, so it must not be used from two threads at once. */
signal_context *wa_signal_ctx_get(void);
/* Destroy the process-wide context (at exit, so leak checkers stay quiet). */
void wa_signal_ctx_shutdown(void);

#endif
