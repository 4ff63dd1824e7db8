/*
 * cert.h - WhatsApp's Noise certificate chain (the encrypted payload of serverHello):
 *
 *   CertChain { leaf = 1, intermediate = 2 }, each NoiseCertificate { details = 1, signature = 2 }
 *   Details  { serial = 1, issuerSerial = 2, key = 3, notBefore = 4, notAfter = 5 }
 *
 * The intermediate's details are signed (XEdDSA, 64 bytes) by the root key and carry
 * issuerSerial 0; the leaf's details are signed by the intermediate's key, carry
 * issuerSerial = the intermediate's serial and key = the server's Noise static public key.
 * Verification follows whatsmeow handshake.go verifyServerCert check for check (same order).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_NOISE_CERT_H
#define WA_NOISE_CERT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define WA_NOISE_CERT_ISSUER_SERIAL 0 /* whatsmeow WACertIssuerSerial */
#define WA_NOISE_CERT_SIG_LEN       64
#define WA_NOISE_CERT_KEY_LEN       32
/* The real WhatsApp root public key (whatsmeow WACertPubKey, Baileys 7
 * WA_CERT_DETAILS.PUBLIC_KEY). */
#define WA_NOISE_WA_ROOT_PUB_HEX "142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6b"
extern const uint8_t WA_NOISE_WA_ROOT_PUB[WA_NOISE_CERT_KEY_LEN];

typedef struct wa_noise_cert_params {
    const uint8_t *root_priv;         /* 32 bytes: signs the intermediate */
    const uint8_t *intermediate_priv; /* 32 bytes: its public key goes into the intermediate;
                                       * signs the leaf */
    const uint8_t *leaf_key;          /* 32 bytes: the server's Noise static public key */
    uint32_t intermediate_serial;
    uint32_t leaf_serial;
    uint64_t not_before; /* validity of both certificates, unix seconds */
    uint64_t not_after;
} wa_noise_cert_params;

/* Build and sign a chain; appends the serialized CertChain to *out (unchanged on failure).
 * Signing uses the shared signal_context (loop thread). 0, WA_EINVAL, WA_ELIMIT, WA_ENOMEM,
 * WA_ECRYPTO. */
int wa_noise_cert_create(const wa_noise_cert_params *p, wa_buf *out);

/* Verify a serialized CertChain against the trusted root public key, the server static key
 * decrypted from serverHello, and the time `now` (unix seconds). 0, or WA_ECERT with *reason
 * (if reason is not NULL) set to a static string naming the failed check. */
int wa_noise_cert_verify(const uint8_t *chain, size_t len,
                         const uint8_t root_pub[WA_NOISE_CERT_KEY_LEN],
                         const uint8_t server_static[WA_NOISE_CERT_KEY_LEN], uint64_t now,
                         const char **reason);

#endif
