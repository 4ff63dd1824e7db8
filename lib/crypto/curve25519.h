/*
 * curve25519.h - X25519 (RFC 7748) key pairs and agreement, and XEdDSA signatures over
 * Curve25519 keys (the "Signal" signatures WhatsApp uses for certificates, signed prekeys and
 * device identities).
 *
 * Keys are the 32-byte raw forms carried on WhatsApp's wire. libsignal-protocol-c's 33-byte
 * public form (0x05 || key) stays inside this module. Private keys are clamped before use
 * (k[0] &= 248, k[31] &= 127, k[31] |= 64) because libsignal-protocol-c does not clamp for
 * XEdDSA, and an unclamped key would give a signature that does not match its X25519 public key.
 *
 * X25519 uses OpenSSL (thread-safe). XEdDSA signing uses libsignal-protocol-c's
 * curve_calculate_signature with the process-wide signal_context (crypto/provider.h), so it
 * must run on the loop thread; verification needs no context and is thread-safe.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_CRYPTO_CURVE25519_H
#define WA_CRYPTO_CURVE25519_H

#include <stddef.h>
#include <stdint.h>

#define WA_X25519_KEY_LEN    32
#define WA_XEDDSA_SIG_LEN    64
#define WA_SIGNAL_KEY_TYPE   0x05 /* prefix of libsignal's 33-byte public keys */
#define WA_SIGNAL_PUBKEY_LEN 33

/* k[0] &= 248; k[31] &= 127; k[31] |= 64 (RFC 7748 decodeScalar25519, in place). */
void wa_x25519_clamp(uint8_t k[WA_X25519_KEY_LEN]);

/* A fresh key pair; priv is clamped. 0, WA_EIO (no randomness) or WA_ECRYPTO. */
int wa_x25519_keygen(uint8_t priv[WA_X25519_KEY_LEN], uint8_t pub[WA_X25519_KEY_LEN]);

/* pub = X25519(priv, 9). The result does not depend on whether priv is clamped. */
int wa_x25519_public(uint8_t pub[WA_X25519_KEY_LEN], const uint8_t priv[WA_X25519_KEY_LEN]);

/* out = X25519(priv, pub). WA_ECRYPTO if the result is all zero (small-order peer key). */
int wa_x25519(uint8_t out[WA_X25519_KEY_LEN], const uint8_t priv[WA_X25519_KEY_LEN],
              const uint8_t pub[WA_X25519_KEY_LEN]);

/* XEdDSA signature of msg under priv (clamped internally); randomized, so two signatures of one
 * message differ. msg may be NULL when len is 0. Uses wa_signal_ctx_get(): loop thread only.
 * 0, WA_ENOMEM or WA_ECRYPTO. */
int wa_xeddsa_sign(uint8_t sig[WA_XEDDSA_SIG_LEN], const uint8_t priv[WA_X25519_KEY_LEN],
                   const uint8_t *msg, size_t len);

/* 0 if sig is a valid XEdDSA signature of msg under the X25519 public key pub,
 * WA_ECRYPTO otherwise. */
int wa_xeddsa_verify(const uint8_t pub[WA_X25519_KEY_LEN], const uint8_t *msg, size_t len,
                     const uint8_t sig[WA_XEDDSA_SIG_LEN]);

#endif
