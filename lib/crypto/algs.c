/*
 * algs.c - OpenSSL 3 algorithm objects fetched once per process.
 *
 * Given the legacy handles (EVP_sha256(), EVP_aes_256_gcm(), ...) or a name (EVP_MAC_fetch),
 * OpenSSL 3 looks the implementation up in its provider store on EVERY init: a lock, a hash
 * lookup and parameter parsing per hash, MAC or cipher. libsignal's ratchet makes a dozen HMACs
 * per message, and the lookups were ~10% of the CPU a received message costs. The objects are
 * fetched here once (pthread_once) and only read afterwards, so every thread may use them. When
 * a fetch fails (no default provider?) the legacy handle is returned and OpenSSL fetches on use,
 * as before.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "crypto/algs.h"

#include <pthread.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

static struct {
    EVP_MD *sha256, *sha512;
    EVP_CIPHER *gcm256, *ctr[3], *cbc[3];
    EVP_MAC_CTX *hmac; /* HMAC with SHA-256 set, no key: duplicated per use */
} algs;

static pthread_once_t algs_once = PTHREAD_ONCE_INIT;

static void algs_fetch(void)
{
    static const char *const ctr[3] = {"AES-128-CTR", "AES-192-CTR", "AES-256-CTR"};
    static const char *const cbc[3] = {"AES-128-CBC", "AES-192-CBC", "AES-256-CBC"};
    EVP_MAC *mac;
    int i;

    algs.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    algs.sha512 = EVP_MD_fetch(NULL, "SHA512", NULL);
    algs.gcm256 = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    for (i = 0; i < 3; i++) {
        algs.ctr[i] = EVP_CIPHER_fetch(NULL, ctr[i], NULL);
        algs.cbc[i] = EVP_CIPHER_fetch(NULL, cbc[i], NULL);
    }
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac) {
        char digest[] = "SHA256";
        OSSL_PARAM params[2];
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
        params[1] = OSSL_PARAM_construct_end();
        algs.hmac = EVP_MAC_CTX_new(mac);
        if (algs.hmac && EVP_MAC_CTX_set_params(algs.hmac, params) != 1) {
            EVP_MAC_CTX_free(algs.hmac);
            algs.hmac = NULL;
        }
        EVP_MAC_free(mac); /* the context keeps its own reference */
    }
}

static void algs_init(void)
{
    pthread_once(&algs_once, algs_fetch);
}

const EVP_MD *wa__crypto_sha256(void)
{
    algs_init();
    return algs.sha256 ? algs.sha256 : EVP_sha256();
}

const EVP_MD *wa__crypto_sha512(void)
{
    algs_init();
    return algs.sha512 ? algs.sha512 : EVP_sha512();
}

const EVP_CIPHER *wa__crypto_aes256_gcm(void)
{
    algs_init();
    return algs.gcm256 ? algs.gcm256 : EVP_aes_256_gcm();
}

const EVP_CIPHER *wa__crypto_aes(int cbc, size_t key_len)
{
    int i = key_len == 16 ? 0 : key_len == 24 ? 1 : key_len == 32 ? 2 : -1;

    if (i < 0)
        return NULL;
    algs_init();
    if (cbc)
        return algs.cbc[i] ? algs.cbc[i]
               : i == 0    ? EVP_aes_128_cbc()
               : i == 1    ? EVP_aes_192_cbc()
                           : EVP_aes_256_cbc();
    return algs.ctr[i] ? algs.ctr[i]
           : i == 0    ? EVP_aes_128_ctr()
           : i == 1    ? EVP_aes_192_ctr()
                       : EVP_aes_256_ctr();
}

EVP_MAC_CTX *wa__crypto_hmac_sha256_new(void)
{
    EVP_MAC_CTX *ctx;
    EVP_MAC *mac;

    algs_init();
    if (algs.hmac)
        return EVP_MAC_CTX_dup(algs.hmac);
    /* the slow way: fetched per call */
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac)
        return NULL;
    ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (ctx) {
        char digest[] = "SHA256";
        OSSL_PARAM params[2];
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
        params[1] = OSSL_PARAM_construct_end();
        if (EVP_MAC_CTX_set_params(ctx, params) != 1) {
            EVP_MAC_CTX_free(ctx);
            ctx = NULL;
        }
    }
    return ctx;
}
