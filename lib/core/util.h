/*
 * util.h - small helpers shared by every layer: big-endian load/store, hex and base64,
 * secure random bytes, constant-time comparison and wiping of secrets.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_CORE_UTIL_H
#define WA_CORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define WA_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline uint32_t wa_load_be24(const uint8_t *p)
{
    return ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2];
}
static inline uint32_t wa_load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint16_t wa_load_be16(const uint8_t *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}
static inline void wa_store_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void wa_store_be24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
}
static inline void wa_store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void wa_store_be64(uint8_t *p, uint64_t v)
{
    wa_store_be32(p, (uint32_t)(v >> 32));
    wa_store_be32(p + 4, (uint32_t)v);
}

/* Fill buf with n cryptographically secure random bytes. 0 or WA_EIO. */
int wa_random(void *buf, size_t n);
/* Uniform random integer in [0, bound) (bound > 0); falls back to 0 if the RNG fails. */
uint32_t wa_random_below(uint32_t bound);

/* Constant-time equality of two n-byte regions: 1 equal, 0 different. */
int wa_ct_equal(const void *a, const void *b, size_t n);
/* Constant-time equality of two strings (length leaks, contents do not): 1 equal. */
int wa_ct_streq(const char *a, const char *b);
/* Overwrite n bytes in a way the compiler cannot elide. */
void wa_wipe(void *p, size_t n);

/* Lower-case hex; out needs 2n+1 bytes (NUL-terminated). */
void wa_hex_encode(char *out, const uint8_t *in, size_t n);
/* Decode exactly 2*outlen hex digits (either case). 0 or WA_EINVAL. */
int wa_hex_decode(uint8_t *out, size_t outlen, const char *hex, size_t hexlen);

/* Base64 (RFC 4648). url != 0 selects the URL-safe alphabet without padding.
 * wa_base64_encode writes a NUL-terminated string; out needs wa_base64_encoded_len(n)+1 bytes. */
size_t wa_base64_encoded_len(size_t n, int url);
void wa_base64_encode(char *out, const uint8_t *in, size_t n, int url);
/* Accepts both alphabets, optional padding. Writes at most outcap bytes; *outlen set on
 * success. WA_EINVAL on bad characters, WA_ELIMIT if outcap is too small. */
int wa_base64_decode(uint8_t *out, size_t outcap, size_t *outlen, const char *in, size_t inlen);

#endif
