/*
 * hash.c - SHA-256, HMAC-SHA256, HKDF-SHA256 (RFC 5869) and PBKDF2-HMAC-SHA256 (RFC 8018)
 * over OpenSSL 3.
 *
 * HKDF is written out on top of HMAC rather than through EVP_KDF because WhatsApp uses it with
 * empty inputs (Noise Split: empty IKM; media keys: empty salt) and RFC 5869's definition is
 * two lines; OpenSSL's provider rejects an empty key.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "crypto/crypto.h"

#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include "core/util.h"
#include "crypto/algs.h"
#include "wa/error.h"

/* RFC 2104 pads the key with zeros to the block size, so an empty key and a one-byte zero key
 * give the same MAC; OpenSSL is happier with a non-empty key. */
static const uint8_t zero_key[1] = {0};
static const uint8_t empty_data[1] = {0};

int wa_sha256(uint8_t out[WA_SHA256_LEN], const void *data, size_t len)
{
    return wa_sha256_2(out, data, len, NULL, 0);
}

int wa_sha256_2(uint8_t out[WA_SHA256_LEN], const void *a, size_t alen, const void *b, size_t blen)
{
    wa_sha256_ctx c;
    int rc;

    rc = wa_sha256_init(&c);
    if (rc)
        return rc;
    rc = wa_sha256_update(&c, a, alen);
    if (!rc)
        rc = wa_sha256_update(&c, b, blen);
    if (!rc)
        rc = wa_sha256_final(&c, out);
    wa_sha256_cleanup(&c);
    return rc;
}

int wa_sha256_init(wa_sha256_ctx *c)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    if (!md)
        return WA_ENOMEM;
    if (EVP_DigestInit_ex(md, wa__crypto_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return WA_ECRYPTO;
    }
    c->md = md;
    return 0;
}

int wa_sha256_update(wa_sha256_ctx *c, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (!c->md || !data)
        return WA_EINVAL;
    return EVP_DigestUpdate(c->md, data, len) == 1 ? 0 : WA_ECRYPTO;
}

int wa_sha256_final(wa_sha256_ctx *c, uint8_t out[WA_SHA256_LEN])
{
    unsigned int n = 0;
    uint8_t tmp[WA_SHA256_LEN];

    if (!c->md)
        return WA_EINVAL;
    if (EVP_DigestFinal_ex(c->md, tmp, &n) != 1 || n != WA_SHA256_LEN)
        return WA_ECRYPTO;
    memcpy(out, tmp, WA_SHA256_LEN);
    return 0;
}

void wa_sha256_cleanup(wa_sha256_ctx *c)
{
    EVP_MD_CTX_free(c->md);
    c->md = NULL;
}

int wa_hmac_sha256(uint8_t out[WA_HMAC_SHA256_LEN], const uint8_t *key, size_t key_len,
                   const void *data, size_t len)
{
    uint8_t tmp[WA_HMAC_SHA256_LEN];
    unsigned int n = 0;

    if (key_len > INT_MAX || (key_len && !key) || (len && !data))
        return WA_EINVAL;
    if (key_len == 0) {
        key = zero_key;
        key_len = sizeof zero_key;
    }
    if (len == 0)
        data = empty_data;
    if (!HMAC(wa__crypto_sha256(), key, (int)key_len, data, len, tmp, &n) ||
        n != WA_HMAC_SHA256_LEN) {
        wa_wipe(tmp, sizeof tmp);
        return WA_ECRYPTO;
    }
    memcpy(out, tmp, WA_HMAC_SHA256_LEN);
    wa_wipe(tmp, sizeof tmp);
    return 0;
}

int wa_hmac_sha256_init(wa_hmac_sha256_ctx *c, const uint8_t *key, size_t key_len)
{
    EVP_MAC_CTX *ctx;

    if (key_len && !key)
        return WA_EINVAL;
    if (key_len == 0) {
        key = zero_key;
        key_len = sizeof zero_key;
    }
    ctx = wa__crypto_hmac_sha256_new(); /* algs.c: no lookup per MAC */
    if (!ctx)
        return WA_ENOMEM;
    if (EVP_MAC_init(ctx, key, key_len, NULL) != 1) {
        EVP_MAC_CTX_free(ctx);
        return WA_ECRYPTO;
    }
    c->mac = ctx;
    return 0;
}

int wa_hmac_sha256_update(wa_hmac_sha256_ctx *c, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (!c->mac || !data)
        return WA_EINVAL;
    return EVP_MAC_update(c->mac, data, len) == 1 ? 0 : WA_ECRYPTO;
}

int wa_hmac_sha256_final(wa_hmac_sha256_ctx *c, uint8_t out[WA_HMAC_SHA256_LEN])
{
    uint8_t tmp[WA_HMAC_SHA256_LEN];
    size_t n = 0;
    int rc = WA_ECRYPTO;

    if (!c->mac)
        return WA_EINVAL;
    /* EVP_MAC_init with no key restarts the MAC under the key already set */
    if (EVP_MAC_final(c->mac, tmp, &n, sizeof tmp) == 1 && n == WA_HMAC_SHA256_LEN &&
        EVP_MAC_init(c->mac, NULL, 0, NULL) == 1) {
        memcpy(out, tmp, WA_HMAC_SHA256_LEN);
        rc = 0;
    }
    wa_wipe(tmp, sizeof tmp);
    return rc;
}

void wa_hmac_sha256_cleanup(wa_hmac_sha256_ctx *c)
{
    EVP_MAC_CTX_free(c->mac); /* OpenSSL cleanses the key schedule */
    c->mac = NULL;
}

int wa_hkdf_sha256(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
                   const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len)
{
    uint8_t prk[WA_SHA256_LEN], t[WA_SHA256_LEN];
    wa_hmac_sha256_ctx h = {NULL};
    size_t done = 0, n;
    uint8_t counter = 0;
    int rc;

    if (out_len == 0 || out_len > WA_HKDF_SHA256_MAX_OUT || (info_len && !info))
        return WA_EINVAL;
    /* Extract: PRK = HMAC(salt, IKM) */
    rc = wa_hmac_sha256(prk, salt, salt_len, ikm, ikm_len);
    if (rc)
        goto out;
    rc = wa_hmac_sha256_init(&h, prk, sizeof prk);
    if (rc)
        goto out;
    /* Expand: T(i) = HMAC(PRK, T(i-1) || info || i); the output is written directly because
     * nothing is returned on failure anyway (out is wiped then). */
    while (done < out_len) {
        counter++;
        if (counter > 1)
            rc = wa_hmac_sha256_update(&h, t, sizeof t);
        if (!rc)
            rc = wa_hmac_sha256_update(&h, info, info_len);
        if (!rc)
            rc = wa_hmac_sha256_update(&h, &counter, 1);
        if (!rc)
            rc = wa_hmac_sha256_final(&h, t);
        if (rc)
            break;
        n = out_len - done < sizeof t ? out_len - done : sizeof t;
        memcpy(out + done, t, n);
        done += n;
    }
    if (rc)
        wa_wipe(out, out_len);
out:
    wa_hmac_sha256_cleanup(&h);
    wa_wipe(prk, sizeof prk);
    wa_wipe(t, sizeof t);
    return rc;
}

int wa_pbkdf2_sha256(uint8_t *out, size_t out_len, const void *password, size_t password_len,
                     const uint8_t *salt, size_t salt_len, uint32_t iterations)
{
    if (out_len == 0 || out_len > INT_MAX || password_len > INT_MAX || salt_len > INT_MAX ||
        iterations == 0 || iterations > INT_MAX || (password_len && !password) ||
        (salt_len && !salt))
        return WA_EINVAL;
    if (password_len == 0)
        password = "";
    if (salt_len == 0)
        salt = empty_data;
    if (PKCS5_PBKDF2_HMAC(password, (int)password_len, salt, (int)salt_len, (int)iterations,
                          wa__crypto_sha256(), (int)out_len, out) != 1) {
        wa_wipe(out, out_len);
        return WA_ECRYPTO;
    }
    return 0;
}
