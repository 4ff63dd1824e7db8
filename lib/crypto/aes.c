/*
 * aes.c - AES-256-GCM (NIST SP 800-38D), AES-CTR and AES-CBC/PKCS#7 over OpenSSL 3 EVP.
 *
 * GCM follows the layout used by WhatsApp's Noise transport and Baileys' aesEncryptGCM:
 * 12-byte IV, 16-byte tag appended after the ciphertext. Lengths are fed to OpenSSL in chunks
 * because EVP takes int lengths.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "crypto/crypto.h"

#include <limits.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/util.h"
#include "crypto/algs.h"
#include "wa/error.h"

#define AES_CHUNK (1 << 30) /* bytes per EVP update call (EVP lengths are int) */

/* EVP_CipherUpdate over any size_t length; *written accumulates the output. */
static int update_all(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t len,
                      size_t *written)
{
    while (len > 0) {
        int chunk = len > AES_CHUNK ? AES_CHUNK : (int)len;
        int n = 0;
        if (EVP_CipherUpdate(ctx, out + *written, &n, in, chunk) != 1 || n < 0)
            return WA_ECRYPTO;
        *written += (size_t)n;
        in += chunk;
        len -= (size_t)chunk;
    }
    return 0;
}

static int gcm_run(int enc, uint8_t *out, const uint8_t key[WA_AES256_KEY_LEN],
                   const uint8_t iv[WA_AES_GCM_IV_LEN], const uint8_t *aad, size_t aad_len,
                   const uint8_t *in, size_t len, uint8_t tag[WA_AES_GCM_TAG_LEN])
{
    EVP_CIPHER_CTX *ctx;
    size_t written = 0;
    int n = 0, rc = WA_ECRYPTO;

    if ((aad_len && !aad) || (len && (!in || !out)))
        return WA_EINVAL;
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return WA_ENOMEM;
    if (EVP_CipherInit_ex(ctx, wa__crypto_aes256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, WA_AES_GCM_IV_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, enc) != 1)
        goto out;
    while (aad_len > 0) {
        int chunk = aad_len > AES_CHUNK ? AES_CHUNK : (int)aad_len;
        if (EVP_CipherUpdate(ctx, NULL, &n, aad, chunk) != 1)
            goto out;
        aad += chunk;
        aad_len -= (size_t)chunk;
    }
    if (update_all(ctx, out, in, len, &written))
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, WA_AES_GCM_TAG_LEN, tag) != 1)
        goto out;
    /* GCM writes nothing in final; pass a scratch pointer so out + written is never formed
     * past a zero-length buffer */
    {
        uint8_t scratch[WA_AES_BLOCK_LEN];
        if (EVP_CipherFinal_ex(ctx, scratch, &n) != 1)
            goto out;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, WA_AES_GCM_TAG_LEN, tag) != 1)
        goto out;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int wa_aes_gcm_encrypt(uint8_t *out, const uint8_t key[WA_AES256_KEY_LEN],
                       const uint8_t iv[WA_AES_GCM_IV_LEN], const uint8_t *aad, size_t aad_len,
                       const uint8_t *in, size_t len)
{
    uint8_t tag[WA_AES_GCM_TAG_LEN];
    int rc;

    if (!out || len > SIZE_MAX - WA_AES_GCM_TAG_LEN)
        return WA_EINVAL;
    rc = gcm_run(1, out, key, iv, aad, aad_len, in, len, tag);
    if (rc) {
        wa_wipe(out, len);
        return rc;
    }
    memcpy(out + len, tag, WA_AES_GCM_TAG_LEN);
    return 0;
}

int wa_aes_gcm_decrypt(uint8_t *out, const uint8_t key[WA_AES256_KEY_LEN],
                       const uint8_t iv[WA_AES_GCM_IV_LEN], const uint8_t *aad, size_t aad_len,
                       const uint8_t *in, size_t len)
{
    uint8_t tag[WA_AES_GCM_TAG_LEN];
    size_t n;
    int rc;

    if (len < WA_AES_GCM_TAG_LEN)
        return WA_ECRYPTO;
    n = len - WA_AES_GCM_TAG_LEN;
    /* copy the tag first: out may overlap in */
    memcpy(tag, in + n, WA_AES_GCM_TAG_LEN);
    rc = gcm_run(0, out, key, iv, aad, aad_len, in, n, tag);
    if (rc) {
        if (out)
            wa_wipe(out, n);
        return rc == WA_EINVAL ? rc : WA_ECRYPTO;
    }
    return 0;
}

static const EVP_CIPHER *pick_cipher(int mode, size_t key_len)
{
    if (mode == WA_AES_CTR)
        return wa__crypto_aes(0, key_len);
    if (mode == WA_AES_CBC_PKCS7)
        return wa__crypto_aes(1, key_len);
    return NULL;
}

int wa_aes_crypt(int mode, int encrypt, const uint8_t *key, size_t key_len,
                 const uint8_t iv[WA_AES_BLOCK_LEN], const uint8_t *in, size_t len, uint8_t *out,
                 size_t *out_len)
{
    const EVP_CIPHER *cipher = pick_cipher(mode, key_len);
    EVP_CIPHER_CTX *ctx;
    uint8_t last[WA_AES_BLOCK_LEN];
    size_t written = 0, cap;
    int n = 0, rc = WA_ECRYPTO;

    if (!cipher || !key || !iv || !out || !out_len || (len && !in))
        return WA_EINVAL;
    if (mode == WA_AES_CBC_PKCS7) {
        if (encrypt && len > SIZE_MAX - WA_AES_BLOCK_LEN)
            return WA_EINVAL;
        if (!encrypt && (len == 0 || len % WA_AES_BLOCK_LEN))
            return WA_ECRYPTO;
    }
    cap =
        mode == WA_AES_CBC_PKCS7 && encrypt ? len + WA_AES_BLOCK_LEN - len % WA_AES_BLOCK_LEN : len;
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return WA_ENOMEM;
    if (EVP_CipherInit_ex(ctx, cipher, NULL, key, iv, encrypt ? 1 : 0) != 1)
        goto out;
    if (update_all(ctx, out, in, len, &written))
        goto out;
    /* final: CBC encrypt emits the padded last block, CBC decrypt the unpadded tail */
    if (EVP_CipherFinal_ex(ctx, last, &n) != 1 || n < 0 || written + (size_t)n > cap)
        goto out;
    memcpy(out + written, last, (size_t)n);
    written += (size_t)n;
    *out_len = written;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    wa_wipe(last, sizeof last);
    if (rc)
        wa_wipe(out, cap);
    return rc;
}

int wa_aes_ctr(uint8_t *out, const uint8_t key[WA_AES256_KEY_LEN],
               const uint8_t iv[WA_AES_BLOCK_LEN], const uint8_t *in, size_t len)
{
    size_t n;

    return wa_aes_crypt(WA_AES_CTR, 1, key, WA_AES256_KEY_LEN, iv, in, len, out, &n);
}

int wa_aes_cbc_encrypt(uint8_t *out, size_t *out_len, const uint8_t key[WA_AES256_KEY_LEN],
                       const uint8_t iv[WA_AES_BLOCK_LEN], const uint8_t *in, size_t len)
{
    return wa_aes_crypt(WA_AES_CBC_PKCS7, 1, key, WA_AES256_KEY_LEN, iv, in, len, out, out_len);
}

int wa_aes_cbc_decrypt(uint8_t *out, size_t *out_len, const uint8_t key[WA_AES256_KEY_LEN],
                       const uint8_t iv[WA_AES_BLOCK_LEN], const uint8_t *in, size_t len)
{
    return wa_aes_crypt(WA_AES_CBC_PKCS7, 0, key, WA_AES256_KEY_LEN, iv, in, len, out, out_len);
}
