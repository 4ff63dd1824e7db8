/*
 * curve25519.c - X25519 over OpenSSL 3 raw EVP_PKEY keys (RFC 7748), XEdDSA through
 * libsignal-protocol-c's curve functions (<signal/curve.h>).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "crypto/curve25519.h"

#include <string.h>

#include <openssl/evp.h>
#include <signal/curve.h>
#include <signal/signal_protocol.h>

#include "core/util.h"
#include "crypto/provider.h"
#include "wa/error.h"

void wa_x25519_clamp(uint8_t k[WA_X25519_KEY_LEN])
{
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
}

int wa_x25519_public(uint8_t pub[WA_X25519_KEY_LEN], const uint8_t priv[WA_X25519_KEY_LEN])
{
    EVP_PKEY *k;
    uint8_t tmp[WA_X25519_KEY_LEN];
    size_t n = sizeof tmp;
    int rc = WA_ECRYPTO;

    k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, WA_X25519_KEY_LEN);
    if (!k)
        return WA_ECRYPTO;
    if (EVP_PKEY_get_raw_public_key(k, tmp, &n) == 1 && n == WA_X25519_KEY_LEN) {
        memcpy(pub, tmp, WA_X25519_KEY_LEN);
        rc = 0;
    }
    EVP_PKEY_free(k); /* OpenSSL cleanses the private key */
    return rc;
}

int wa_x25519_keygen(uint8_t priv[WA_X25519_KEY_LEN], uint8_t pub[WA_X25519_KEY_LEN])
{
    uint8_t k[WA_X25519_KEY_LEN], p[WA_X25519_KEY_LEN];
    int rc;

    rc = wa_random(k, sizeof k);
    if (rc)
        goto out;
    wa_x25519_clamp(k);
    rc = wa_x25519_public(p, k);
    if (rc)
        goto out;
    memcpy(priv, k, sizeof k);
    memcpy(pub, p, sizeof p);
out:
    wa_wipe(k, sizeof k);
    return rc;
}

int wa_x25519(uint8_t out[WA_X25519_KEY_LEN], const uint8_t priv[WA_X25519_KEY_LEN],
              const uint8_t pub[WA_X25519_KEY_LEN])
{
    EVP_PKEY *self = NULL, *peer = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t secret[WA_X25519_KEY_LEN];
    size_t n = sizeof secret, i;
    uint8_t acc = 0;
    int rc = WA_ECRYPTO;

    self = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, WA_X25519_KEY_LEN);
    peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pub, WA_X25519_KEY_LEN);
    if (!self || !peer)
        goto out;
    ctx = EVP_PKEY_CTX_new(self, NULL);
    if (!ctx)
        goto out;
    /* OpenSSL itself fails the derivation when the result is all zero (RFC 7748 section 6.1);
     * the check below keeps that guarantee independent of the OpenSSL build. */
    if (EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, peer) != 1 ||
        EVP_PKEY_derive(ctx, secret, &n) != 1 || n != sizeof secret)
        goto out;
    for (i = 0; i < sizeof secret; i++)
        acc |= secret[i];
    if (acc == 0)
        goto out;
    memcpy(out, secret, sizeof secret);
    rc = 0;
out:
    wa_wipe(secret, sizeof secret);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    EVP_PKEY_free(self);
    return rc;
}

int wa_xeddsa_sign(uint8_t sig[WA_XEDDSA_SIG_LEN], const uint8_t priv[WA_X25519_KEY_LEN],
                   const uint8_t *msg, size_t len)
{
    static const uint8_t empty[1] = {0};
    signal_context *ctx = wa_signal_ctx_get();
    ec_private_key *key = NULL;
    signal_buffer *out = NULL;
    uint8_t k[WA_X25519_KEY_LEN];
    int rc = WA_ECRYPTO;

    if (!ctx)
        return WA_ENOMEM;
    if (len && !msg)
        return WA_EINVAL;
    if (!msg)
        msg = empty;
    memcpy(k, priv, sizeof k);
    wa_x25519_clamp(k);
    /* ec_private_key_destroy wipes the key copy inside libsignal */
    if (curve_decode_private_point(&key, k, sizeof k, ctx) < 0) {
        rc = WA_ENOMEM;
        goto out;
    }
    if (curve_calculate_signature(ctx, &out, key, msg, len) < 0 || !out ||
        signal_buffer_len(out) != WA_XEDDSA_SIG_LEN)
        goto out;
    memcpy(sig, signal_buffer_data(out), WA_XEDDSA_SIG_LEN);
    rc = 0;
out:
    wa_wipe(k, sizeof k);
    if (out)
        signal_buffer_free(out);
    SIGNAL_UNREF(key);
    return rc;
}

int wa_xeddsa_verify(const uint8_t pub[WA_X25519_KEY_LEN], const uint8_t *msg, size_t len,
                     const uint8_t sig[WA_XEDDSA_SIG_LEN])
{
    static const uint8_t empty[1] = {0};
    uint8_t p33[WA_SIGNAL_PUBKEY_LEN];
    ec_public_key *key = NULL;
    int rc = WA_ECRYPTO;

    if (len && !msg)
        return WA_EINVAL;
    if (!msg)
        msg = empty;
    p33[0] = WA_SIGNAL_KEY_TYPE;
    memcpy(p33 + 1, pub, WA_X25519_KEY_LEN);
    /* the context is only used for logging bad keys, which a 0x05-prefixed key is not; passing
     * NULL keeps verification free of shared state */
    if (curve_decode_point(&key, p33, sizeof p33, NULL) < 0)
        return WA_ENOMEM;
    if (curve_verify_signature(key, msg, len, sig, WA_XEDDSA_SIG_LEN) == 1)
        rc = 0;
    SIGNAL_UNREF(key);
    return rc;
}
