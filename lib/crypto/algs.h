/*
 * algs.h - OpenSSL 3 algorithm objects fetched once per process (algs.c), for the primitives in
 * this directory. Internal to lib/crypto.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_CRYPTO_ALGS_H
#define WA_CRYPTO_ALGS_H

#include <stddef.h>

#include <openssl/evp.h>

const EVP_MD *wa__crypto_sha256(void);
const EVP_MD *wa__crypto_sha512(void);
const EVP_CIPHER *wa__crypto_aes256_gcm(void);
/* AES-CBC (cbc 1) or AES-CTR (cbc 0) for a 16/24/32-byte key; NULL for another length. */
const EVP_CIPHER *wa__crypto_aes(int cbc, size_t key_len);
/* A new HMAC-SHA256 context, digest set, key not yet (EVP_MAC_init with the key); NULL on
 * failure. Free with EVP_MAC_CTX_free. */
EVP_MAC_CTX *wa__crypto_hmac_sha256_new(void);

#endif
