/*
 * provider.c - an OpenSSL 3 implementation of libsignal-protocol-c's signal_crypto_provider
 * (contract: <signal/signal_protocol.h>; cipher coverage as in libsignal-protocol-c's own test
 * provider: AES-CTR without padding and AES-CBC with PKCS#5 padding, 128/192/256-bit keys,
 * 16-byte IV), plus the process-wide signal_context.
 *
 * Every callback returns 0 or a negative SG_ERR_* code, as libsignal expects. Contexts are
 * allocated with wa_malloc; key material in temporaries is wiped.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "crypto/provider.h"

#include <string.h>

#include <openssl/evp.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/util.h"
#include "crypto/algs.h"
#include "crypto/crypto.h"
#include "wa/error.h"

static int sg_random(uint8_t *data, size_t len, void *user_data)
{
    (void)user_data;
    return wa_random(data, len) ? SG_ERR_UNKNOWN : SG_SUCCESS;
}

static int sg_hmac_init(void **hmac_context, const uint8_t *key, size_t key_len, void *user_data)
{
    wa_hmac_sha256_ctx *c;
    int rc;

    (void)user_data;
    /* libsignal-protocol-c 2.3.3 (hkdf_extract, signal_message_get_mac) calls the cleanup
     * callback on its uninitialised context pointer after a failed init: leave it NULL. */
    *hmac_context = NULL;
    c = wa_malloc(sizeof *c);
    if (!c)
        return SG_ERR_NOMEM;
    rc = wa_hmac_sha256_init(c, key, key_len);
    if (rc) {
        wa_free(c);
        return rc == WA_ENOMEM ? SG_ERR_NOMEM : SG_ERR_UNKNOWN;
    }
    *hmac_context = c;
    return SG_SUCCESS;
}

static int sg_hmac_update(void *hmac_context, const uint8_t *data, size_t data_len, void *user_data)
{
    (void)user_data;
    return wa_hmac_sha256_update(hmac_context, data, data_len) ? SG_ERR_UNKNOWN : SG_SUCCESS;
}

static int sg_hmac_final(void *hmac_context, signal_buffer **output, void *user_data)
{
    uint8_t mac[WA_HMAC_SHA256_LEN];
    signal_buffer *b;
    int rc = SG_ERR_UNKNOWN;

    (void)user_data;
    if (wa_hmac_sha256_final(hmac_context, mac) == 0) {
        b = signal_buffer_create(mac, sizeof mac);
        if (b) {
            *output = b;
            rc = SG_SUCCESS;
        } else {
            rc = SG_ERR_NOMEM;
        }
    }
    wa_wipe(mac, sizeof mac); /* libsignal's HKDF uses these outputs as keys */
    return rc;
}

static void sg_hmac_cleanup(void *hmac_context, void *user_data)
{
    (void)user_data;
    if (!hmac_context)
        return;
    wa_hmac_sha256_cleanup(hmac_context);
    wa_free(hmac_context);
}

static int sg_sha512_init(void **digest_context, void *user_data)
{
    EVP_MD_CTX *md;

    (void)user_data;
    md = EVP_MD_CTX_new();
    if (!md)
        return SG_ERR_NOMEM;
    if (EVP_DigestInit_ex(md, wa__crypto_sha512(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return SG_ERR_UNKNOWN;
    }
    *digest_context = md;
    return SG_SUCCESS;
}

static int sg_sha512_update(void *digest_context, const uint8_t *data, size_t data_len,
                            void *user_data)
{
    (void)user_data;
    if (data_len == 0)
        return SG_SUCCESS;
    return EVP_DigestUpdate(digest_context, data, data_len) == 1 ? SG_SUCCESS : SG_ERR_UNKNOWN;
}

static int sg_sha512_final(void *digest_context, signal_buffer **output, void *user_data)
{
    uint8_t md[WA_SHA512_LEN];
    unsigned int n = 0;
    signal_buffer *b;
    int rc = SG_ERR_UNKNOWN;

    (void)user_data;
    /* the contract: finalize, then leave the context ready for reuse */
    if (EVP_DigestFinal_ex(digest_context, md, &n) != 1 || n != sizeof md ||
        EVP_DigestInit_ex(digest_context, wa__crypto_sha512(), NULL) != 1)
        goto out;
    b = signal_buffer_create(md, sizeof md);
    if (!b) {
        rc = SG_ERR_NOMEM;
        goto out;
    }
    *output = b;
    rc = SG_SUCCESS;
out:
    wa_wipe(md, sizeof md); /* XEdDSA hashes the private nonce material */
    return rc;
}

static void sg_sha512_cleanup(void *digest_context, void *user_data)
{
    (void)user_data;
    EVP_MD_CTX_free(digest_context);
}

static int sg_cipher(signal_buffer **output, int cipher, int encrypt, const uint8_t *key,
                     size_t key_len, const uint8_t *iv, size_t iv_len, const uint8_t *in,
                     size_t in_len)
{
    int mode;
    uint8_t *tmp = NULL;
    size_t cap, n = 0;
    signal_buffer *b;
    int rc = SG_ERR_UNKNOWN;

    if (cipher == SG_CIPHER_AES_CTR_NOPADDING)
        mode = WA_AES_CTR;
    else if (cipher == SG_CIPHER_AES_CBC_PKCS5)
        mode = WA_AES_CBC_PKCS7;
    else
        return SG_ERR_INVAL;
    if (iv_len != WA_AES_BLOCK_LEN || (key_len != 16 && key_len != 24 && key_len != 32))
        return SG_ERR_INVAL;
    if (in_len > SIZE_MAX - WA_AES_BLOCK_LEN)
        return SG_ERR_INVAL;
    cap = in_len + WA_AES_BLOCK_LEN;
    tmp = wa_malloc(cap);
    if (!tmp)
        return SG_ERR_NOMEM;
    if (wa_aes_crypt(mode, encrypt, key, key_len, iv, in, in_len, tmp, &n))
        goto out;
    b = signal_buffer_create(tmp, n);
    if (!b) {
        rc = SG_ERR_NOMEM;
        goto out;
    }
    *output = b;
    rc = SG_SUCCESS;
out:
    wa_wipe(tmp, cap);
    wa_free(tmp);
    return rc;
}

static int sg_encrypt(signal_buffer **output, int cipher, const uint8_t *key, size_t key_len,
                      const uint8_t *iv, size_t iv_len, const uint8_t *plaintext,
                      size_t plaintext_len, void *user_data)
{
    (void)user_data;
    return sg_cipher(output, cipher, 1, key, key_len, iv, iv_len, plaintext, plaintext_len);
}

static int sg_decrypt(signal_buffer **output, int cipher, const uint8_t *key, size_t key_len,
                      const uint8_t *iv, size_t iv_len, const uint8_t *ciphertext,
                      size_t ciphertext_len, void *user_data)
{
    (void)user_data;
    return sg_cipher(output, cipher, 0, key, key_len, iv, iv_len, ciphertext, ciphertext_len);
}

void wa_signal_provider_fill(signal_crypto_provider *p)
{
    memset(p, 0, sizeof *p);
    p->random_func = sg_random;
    p->hmac_sha256_init_func = sg_hmac_init;
    p->hmac_sha256_update_func = sg_hmac_update;
    p->hmac_sha256_final_func = sg_hmac_final;
    p->hmac_sha256_cleanup_func = sg_hmac_cleanup;
    p->sha512_digest_init_func = sg_sha512_init;
    p->sha512_digest_update_func = sg_sha512_update;
    p->sha512_digest_final_func = sg_sha512_final;
    p->sha512_digest_cleanup_func = sg_sha512_cleanup;
    p->encrypt_func = sg_encrypt;
    p->decrypt_func = sg_decrypt;
    p->user_data = NULL;
}

static void sg_log(int level, const char *message, size_t len, void *user_data)
{
    int wl;

    (void)user_data;
    switch (level) {
    case SG_LOG_ERROR:
        wl = WA_LOG_ERROR;
        break;
    case SG_LOG_WARNING:
        wl = WA_LOG_WARN;
        break;
    case SG_LOG_NOTICE:
    case SG_LOG_INFO:
        wl = WA_LOG_INFO;
        break;
    default:
        wl = WA_LOG_DEBUG;
        break;
    }
    if (!WA_LOG_ENABLED(wl))
        return;
    if (len > 4096)
        len = 4096;
    wa_log(wl, "signal", "%.*s", (int)len, message ? message : "");
}

int wa_signal_ctx_new(signal_context **out)
{
    signal_context *ctx = NULL;
    signal_crypto_provider p;
    int rc;

    rc = signal_context_create(&ctx, NULL);
    if (rc < 0 || !ctx)
        return WA_ENOMEM;
    wa_signal_provider_fill(&p);
    if (signal_context_set_crypto_provider(ctx, &p) < 0 ||
        signal_context_set_log_function(ctx, sg_log) < 0) {
        signal_context_destroy(ctx);
        return WA_ECRYPTO;
    }
    *out = ctx;
    return 0;
}

void wa_signal_ctx_free(signal_context *ctx)
{
    if (ctx)
        signal_context_destroy(ctx);
}

static signal_context *global_ctx;

signal_context *wa_signal_ctx_get(void)
{
    if (!global_ctx && wa_signal_ctx_new(&global_ctx) != 0)
        global_ctx = NULL;
    return global_ctx;
}

void wa_signal_ctx_shutdown(void)
{
    wa_signal_ctx_free(global_ctx);
    global_ctx = NULL;
}
