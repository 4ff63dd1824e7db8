/*
 * transport.c - the Noise transport cipher after Split (PROTOCOL.md section 2): AES-256-GCM,
 * IV = 8 zero bytes || counter as big-endian uint32, separate read and write counters starting
 * at 0, empty AAD. Transport plaintext = 1 flag byte + binary node (flag 0x02 = deflated).
 *
 * A counter never wraps: after 2^32 messages a direction refuses to continue (the IV would
 * repeat). A failed decryption is fatal for the read side (sticky), as in Noise.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "noise/noise.h"

#include <string.h>

#include "core/util.h"
#include "crypto/crypto.h"
#include "wa/error.h"

#define COUNTER_LIMIT ((uint64_t)UINT32_MAX + 1) /* counters 0 .. 2^32 - 1 */

static void make_iv(uint8_t iv[WA_AES_GCM_IV_LEN], uint64_t n)
{
    memset(iv, 0, WA_AES_GCM_IV_LEN - 4);
    wa_store_be32(iv + WA_AES_GCM_IV_LEN - 4, (uint32_t)n);
}

/* Encrypt `len` bytes already placed at out->data + out->len (room for the tag reserved). */
static int seal_in_place(wa_noise_transport *t, wa_buf *out, size_t len)
{
    uint8_t iv[WA_AES_GCM_IV_LEN];
    uint8_t *p = out->data + out->len;
    int rc;

    make_iv(iv, t->wn);
    rc = wa_aes_gcm_encrypt(p, t->wkey, iv, NULL, 0, p, len);
    if (rc)
        return rc;
    t->wn++;
    out->len += len + WA_NOISE_TAG_LEN;
    return 0;
}

int wa_noise_encrypt(wa_noise_transport *t, const uint8_t *pt, size_t len, wa_buf *out)
{
    int rc;

    if (len && !pt)
        return WA_EINVAL;
    if (t->wn >= COUNTER_LIMIT || len > SIZE_MAX - WA_NOISE_TAG_LEN)
        return WA_ELIMIT;
    rc = wa_buf_reserve(out, len + WA_NOISE_TAG_LEN);
    if (rc)
        return rc;
    if (len)
        memmove(out->data + out->len, pt, len);
    return seal_in_place(t, out, len);
}

int wa_noise_seal_node(wa_noise_transport *t, const uint8_t *node, size_t len, wa_buf *out)
{
    int rc;

    if (len && !node)
        return WA_EINVAL;
    if (t->wn >= COUNTER_LIMIT || len > SIZE_MAX - 1 - WA_NOISE_TAG_LEN)
        return WA_ELIMIT;
    rc = wa_buf_reserve(out, 1 + len + WA_NOISE_TAG_LEN);
    if (rc)
        return rc;
    out->data[out->len] = 0; /* flag: uncompressed */
    if (len)
        memmove(out->data + out->len + 1, node, len);
    return seal_in_place(t, out, 1 + len);
}

int wa_noise_decrypt(wa_noise_transport *t, const uint8_t *ct, size_t len, wa_buf *out)
{
    uint8_t iv[WA_AES_GCM_IV_LEN];
    size_t n;
    int rc;

    if (t->rerr)
        return t->rerr;
    if (len < WA_NOISE_TAG_LEN || !ct)
        return t->rerr = WA_ECRYPTO;
    if (t->rn >= COUNTER_LIMIT)
        return t->rerr = WA_ELIMIT;
    n = len - WA_NOISE_TAG_LEN;
    rc = wa_buf_reserve(out, n);
    if (rc)
        return rc;
    make_iv(iv, t->rn);
    /* an empty plaintext is legal; do not form a pointer into a buffer that may be NULL */
    rc = wa_aes_gcm_decrypt(n ? out->data + out->len : NULL, t->rkey, iv, NULL, 0, ct, len);
    if (rc)
        return t->rerr = WA_ECRYPTO;
    t->rn++;
    out->len += n;
    return 0;
}

int wa_noise_open_node(wa_noise_transport *t, const uint8_t *ct, size_t len, wa_buf *out,
                       uint8_t *flags, wa_slice *node)
{
    size_t start = out->len;
    int rc;

    rc = wa_noise_decrypt(t, ct, len, out);
    if (rc)
        return rc;
    if (out->len == start) {
        /* a frame must carry at least the flag byte */
        return t->rerr = WA_EPROTO;
    }
    if (flags)
        *flags = out->data[start];
    if (node)
        *node = wa_slice_make(out->data + start + 1, out->len - start - 1);
    return 0;
}

void wa_noise_transport_cleanup(wa_noise_transport *t)
{
    wa_wipe(t, sizeof *t);
}
