/*
 * crypto.h - symmetric primitives of libwa on top of OpenSSL 3: SHA-256, HMAC-SHA256,
 * HKDF-SHA256 (RFC 5869), PBKDF2-HMAC-SHA256 (RFC 8018), AES-256-GCM (NIST SP 800-38D; 12-byte
 * IV, 16-byte tag appended to the ciphertext, as WhatsApp's Noise layer and Baileys use it),
 * AES-CTR and AES-CBC with PKCS#7 padding (WhatsApp media, pairing-code key wrapping).
 *
 * Conventions: functions return 0 or a negative WA_E* code; output buffers are written only on
 * success (a failed decryption wipes whatever it wrote into its output); `out` may equal `in`
 * for the cipher functions (in-place operation). Every call is thread-safe: no shared state.
 * Key material that passes through a function's own stack is wiped before it returns.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_CRYPTO_CRYPTO_H
#define WA_CRYPTO_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define WA_SHA256_LEN      32
#define WA_SHA512_LEN      64
#define WA_HMAC_SHA256_LEN 32
#define WA_AES256_KEY_LEN  32
#define WA_AES_BLOCK_LEN   16
#define WA_AES_GCM_IV_LEN  12
#define WA_AES_GCM_TAG_LEN 16
/* RFC 5869: L <= 255 * HashLen */
#define WA_HKDF_SHA256_MAX_OUT (255 * WA_SHA256_LEN)

/* ---- SHA-256 ---- */

/* out = SHA-256(data[0..len)). data may be NULL when len is 0. 0 or WA_ECRYPTO. */
int wa_sha256(uint8_t out[WA_SHA256_LEN], const void *data, size_t len);
/* out = SHA-256(a || b): the Noise MixHash step without a temporary copy. */
int wa_sha256_2(uint8_t out[WA_SHA256_LEN], const void *a, size_t alen, const void *b, size_t blen);

/* Incremental SHA-256. _init allocates (OpenSSL); _cleanup must follow every successful _init,
 * whether or not _final was called. */
typedef struct wa_sha256_ctx {
    struct evp_md_ctx_st *md;
} wa_sha256_ctx;
int wa_sha256_init(wa_sha256_ctx *c);
int wa_sha256_update(wa_sha256_ctx *c, const void *data, size_t len);
int wa_sha256_final(wa_sha256_ctx *c, uint8_t out[WA_SHA256_LEN]);
void wa_sha256_cleanup(wa_sha256_ctx *c);

/* ---- HMAC-SHA256 ---- */

/* out = HMAC-SHA256(key, data). An empty key is allowed (RFC 2104: same as a zero key). */
int wa_hmac_sha256(uint8_t out[WA_HMAC_SHA256_LEN], const uint8_t *key, size_t key_len,
                   const void *data, size_t len);

/* Incremental HMAC-SHA256; same lifetime rules as wa_sha256_ctx. After _final the context
 * may be fed again and computes a new MAC under the same key. */
typedef struct wa_hmac_sha256_ctx {
    struct evp_mac_ctx_st *mac;
} wa_hmac_sha256_ctx;
int wa_hmac_sha256_init(wa_hmac_sha256_ctx *c, const uint8_t *key, size_t key_len);
int wa_hmac_sha256_update(wa_hmac_sha256_ctx *c, const void *data, size_t len);
int wa_hmac_sha256_final(wa_hmac_sha256_ctx *c, uint8_t out[WA_HMAC_SHA256_LEN]);
void wa_hmac_sha256_cleanup(wa_hmac_sha256_ctx *c);

/* ---- key derivation ---- */

/* RFC 5869 HKDF-SHA256: out[0..out_len) = HKDF-Expand(HKDF-Extract(salt, ikm), info, out_len).
 * Any of salt/ikm/info may be empty (NULL with length 0); an empty salt means HashLen zero
 * bytes. WA_EINVAL if out_len is 0 or above WA_HKDF_SHA256_MAX_OUT. */
int wa_hkdf_sha256(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
                   const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len);

/* PBKDF2-HMAC-SHA256 (RFC 8018) with `iterations` >= 1. WA_EINVAL on bad sizes. */
int wa_pbkdf2_sha256(uint8_t *out, size_t out_len, const void *password, size_t password_len,
                     const uint8_t *salt, size_t salt_len, uint32_t iterations);

/* ---- AES ---- */

/* AES-256-GCM. Encrypt writes len + 16 bytes (ciphertext || tag) to out. aad may be NULL
 * when aad_len is 0. */
int wa_aes_gcm_encrypt(uint8_t *out, const uint8_t key[WA_AES256_KEY_LEN],
                       const uint8_t iv[WA_AES_GCM_IV_LEN], const uint8_t *aad, size_t aad_len,
                       const uint8_t *in, size_t len);
/* Decrypt `len` bytes (ciphertext || 16-byte tag) into out (len - 16 bytes).
 * WA_ECRYPTO if the tag does not verify (out is wiped) or len < 16. */
int wa_aes_gcm_decrypt(uint8_t *out, const uint8_t key[WA_AES256_KEY_LEN],
                       const uint8_t iv[WA_AES_GCM_IV_LEN], const uint8_t *aad, size_t aad_len,
                       const uint8_t *in, size_t len);

enum wa_aes_mode {
    WA_AES_CTR = 1,       /* iv = the full 16-byte initial counter block (big-endian counter) */
    WA_AES_CBC_PKCS7 = 2, /* iv = 16 bytes; PKCS#7 padding (= PKCS#5 for 16-byte blocks) */
};

/* Generic AES with a 16-, 24- or 32-byte key (used by the Signal crypto provider).
 * CTR: out gets len bytes. CBC encrypt: out needs len + 16 bytes (padding is always added, 1..16
 * bytes). CBC decrypt: len must be a non-zero multiple of 16, out needs len bytes, bad padding is
 * WA_ECRYPTO. *out_len receives the bytes written. Note: an unauthenticated CBC decryption is a
 * padding oracle; verify the MAC (media: HMAC-SHA256) BEFORE calling the decrypt. */
int wa_aes_crypt(int mode, int encrypt, const uint8_t *key, size_t key_len,
                 const uint8_t iv[WA_AES_BLOCK_LEN], const uint8_t *in, size_t len, uint8_t *out,
                 size_t *out_len);

/* AES-256-CTR (encryption and decryption are the same). out gets len bytes. */
int wa_aes_ctr(uint8_t *out, const uint8_t key[WA_AES256_KEY_LEN],
               const uint8_t iv[WA_AES_BLOCK_LEN], const uint8_t *in, size_t len);
/* AES-256-CBC with PKCS#7 padding; see wa_aes_crypt for the sizes. */
int wa_aes_cbc_encrypt(uint8_t *out, size_t *out_len, const uint8_t key[WA_AES256_KEY_LEN],
                       const uint8_t iv[WA_AES_BLOCK_LEN], const uint8_t *in, size_t len);
int wa_aes_cbc_decrypt(uint8_t *out, size_t *out_len, const uint8_t key[WA_AES256_KEY_LEN],
                       const uint8_t iv[WA_AES_BLOCK_LEN], const uint8_t *in, size_t len);

#endif
