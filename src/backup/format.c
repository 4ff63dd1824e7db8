/*
 * format.c - the ".wgb" backup object: zlib, AES-256-GCM, SHA-256 (layout in format.h).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "backup/format.h"

#include <string.h>

#include <zlib.h>

#include "core/alloc.h"
#include "core/util.h"
#include "wa/error.h"

#define INFO_AES "wagate-backup-v1 aes-256-gcm"
/* deflate's best case is 258 bytes per 2-bit code, about 1032:1; with margin */
#define ZLIB_RATIO_MAX 1100
#define INFO_KID       "wagate-backup-v1 key-id"

int wg_backup_key_derive(wg_backup_key *k, const uint8_t master[WG_BACKUP_KEY_LEN])
{
    wg_backup_key t;
    int rc;

    rc = wa_hkdf_sha256(t.aes, sizeof t.aes, NULL, 0, master, WG_BACKUP_KEY_LEN,
                        (const uint8_t *)INFO_AES, sizeof INFO_AES - 1);
    if (rc == 0)
        rc = wa_hkdf_sha256(t.id, sizeof t.id, NULL, 0, master, WG_BACKUP_KEY_LEN,
                            (const uint8_t *)INFO_KID, sizeof INFO_KID - 1);
    if (rc == 0)
        *k = t;
    wa_wipe(&t, sizeof t);
    return rc;
}

int wg_backup_key_parse(const char *text, uint8_t out[WG_BACKUP_KEY_LEN])
{
    uint8_t tmp[WG_BACKUP_KEY_LEN + 8];
    size_t n = text ? strlen(text) : 0, got = 0;
    int rc = WA_EINVAL;

    if (n == 2 * WG_BACKUP_KEY_LEN) {
        if (wa_hex_decode(tmp, WG_BACKUP_KEY_LEN, text, n) == 0) {
            memcpy(out, tmp, WG_BACKUP_KEY_LEN);
            rc = 0;
        }
    } else if (n >= 43 && n <= 44) {
        if (wa_base64_decode(tmp, sizeof tmp, &got, text, n) == 0 && got == WG_BACKUP_KEY_LEN) {
            memcpy(out, tmp, WG_BACKUP_KEY_LEN);
            rc = 0;
        }
    }
    wa_wipe(tmp, sizeof tmp);
    return rc;
}

int wg_backup_payload_build(wa_buf *out, const void *meta, size_t meta_len, const void *db,
                            size_t db_len)
{
    uint8_t l[4];
    int rc;

    wa_buf_reset(out);
    if (meta_len > WG_BACKUP_META_MAX || db_len > WG_BACKUP_PLAIN_MAX ||
        4 + meta_len + db_len > WG_BACKUP_PLAIN_MAX)
        return WA_ELIMIT;
    wa_store_be32(l, (uint32_t)meta_len);
    if ((rc = wa_buf_reserve(out, 4 + meta_len + db_len)) || (rc = wa_buf_append(out, l, 4)) ||
        (rc = wa_buf_append(out, meta, meta_len)) || (rc = wa_buf_append(out, db, db_len)))
        return rc;
    return 0;
}

int wg_backup_payload_split(const uint8_t *p, size_t len, wa_slice *meta, wa_slice *db)
{
    uint32_t ml;

    if (len < 4)
        return WA_EPROTO;
    ml = wa_load_be32(p);
    if (ml > WG_BACKUP_META_MAX || ml > len - 4)
        return WA_EPROTO;
    *meta = wa_slice_make(p + 4, ml);
    *db = wa_slice_make(p + 4 + ml, len - 4 - ml);
    return 0;
}

static void header_write(uint8_t *p, const wg_backup_header *h)
{
    memcpy(p, WG_BACKUP_MAGIC, 4);
    p[4] = (uint8_t)h->version;
    p[5] = (uint8_t)h->flags;
    p[6] = p[7] = 0;
    wa_store_be64(p + 8, (uint64_t)h->created_ms);
    memcpy(p + 16, h->sha256, WA_SHA256_LEN);
    wa_store_be32(p + 48, h->plain_len);
    wa_store_be32(p + 52, h->body_len);
    memcpy(p + 56, h->key_id, WG_BACKUP_KEY_ID_LEN);
    memcpy(p + 64, h->iv, WA_AES_GCM_IV_LEN);
}

int wg_backup_header_parse(const uint8_t *obj, size_t len, wg_backup_header *h)
{
    if (len < WG_BACKUP_HEADER_LEN)
        return len >= 4 && memcmp(obj, WG_BACKUP_MAGIC, 4) != 0 ? WA_EPROTO : WA_ETRUNC;
    if (memcmp(obj, WG_BACKUP_MAGIC, 4) != 0)
        return WA_EPROTO;
    memset(h, 0, sizeof *h);
    h->version = obj[4];
    h->flags = obj[5];
    h->created_ms = (int64_t)(((uint64_t)wa_load_be32(obj + 8) << 32) | wa_load_be32(obj + 12));
    memcpy(h->sha256, obj + 16, WA_SHA256_LEN);
    h->plain_len = wa_load_be32(obj + 48);
    h->body_len = wa_load_be32(obj + 52);
    memcpy(h->key_id, obj + 56, WG_BACKUP_KEY_ID_LEN);
    memcpy(h->iv, obj + 64, WA_AES_GCM_IV_LEN);
    if (obj[6] || obj[7])
        return WA_EPROTO;
    return 0;
}

int wg_backup_encode(wa_buf *out, const wg_backup_key *key, int64_t created_ms,
                     const uint8_t *plain, size_t plain_len, uint8_t sha256_out[WA_SHA256_LEN])
{
    wg_backup_header h;
    uLongf zlen;
    size_t bound, body_max;
    uint8_t *body;
    int rc;

    if (plain_len > WG_BACKUP_PLAIN_MAX || (!plain && plain_len))
        return WA_ELIMIT;
    memset(&h, 0, sizeof h);
    h.version = WG_BACKUP_VERSION;
    h.flags = WG_BACKUP_F_ZLIB | (key ? WG_BACKUP_F_AES : 0);
    h.created_ms = created_ms;
    h.plain_len = (uint32_t)plain_len;
    if ((rc = wa_sha256(h.sha256, plain, plain_len)))
        return rc;
    if (key) {
        memcpy(h.key_id, key->id, WG_BACKUP_KEY_ID_LEN);
        if (wa_random(h.iv, sizeof h.iv))
            return WA_EIO;
    }
    bound = compressBound((uLong)plain_len);
    body_max = bound + (key ? WA_AES_GCM_TAG_LEN : 0);
    wa_buf_reset(out);
    if ((rc = wa_buf_reserve(out, WG_BACKUP_HEADER_LEN + body_max)))
        return rc;
    body = out->data + WG_BACKUP_HEADER_LEN;
    zlen = (uLongf)bound;
    if (compress2(body, &zlen, plain_len ? plain : (const uint8_t *)"", (uLong)plain_len,
                  WG_BACKUP_ZLIB_LEVEL) != Z_OK)
        return WA_EZLIB;
    h.body_len = (uint32_t)zlen + (key ? WA_AES_GCM_TAG_LEN : 0);
    header_write(out->data, &h);
    if (key) {
        /* in place; the header (with the final body length) is the additional data */
        rc = wa_aes_gcm_encrypt(body, key->aes, h.iv, out->data, WG_BACKUP_HEADER_LEN, body,
                                (size_t)zlen);
        if (rc) {
            wa_wipe(out->data, out->cap);
            wa_buf_reset(out);
            return rc;
        }
    }
    out->len = WG_BACKUP_HEADER_LEN + h.body_len;
    if (sha256_out)
        memcpy(sha256_out, h.sha256, WA_SHA256_LEN);
    return 0;
}

static int fail(const char **why, const char *reason, int rc)
{
    if (why)
        *why = reason;
    return rc;
}

int wg_backup_decode(wa_buf *plain, const wg_backup_key *key, const uint8_t *obj, size_t len,
                     wg_backup_header *hdr, const char **why)
{
    wg_backup_header h;
    uint8_t digest[WA_SHA256_LEN];
    const uint8_t *body;
    uint8_t *clear = NULL;
    size_t body_len;
    uLongf got;
    int rc;

    wa_buf_reset(plain);
    rc = wg_backup_header_parse(obj, len, &h);
    if (rc == WA_ETRUNC)
        return fail(why, "truncated: shorter than the header", rc);
    if (rc)
        return fail(why, "not a wagate backup object (bad magic or header)", rc);
    if (h.version != WG_BACKUP_VERSION)
        return fail(why, "unsupported format version", WA_EUNSUPPORTED);
    if (h.flags & ~(unsigned)(WG_BACKUP_F_ZLIB | WG_BACKUP_F_AES))
        return fail(why, "unknown flags", WA_EUNSUPPORTED);
    if (h.plain_len > WG_BACKUP_PLAIN_MAX)
        return fail(why, "plaintext length above the limit", WA_EPROTO);
    if (len - WG_BACKUP_HEADER_LEN < h.body_len)
        return fail(why, "truncated: the body is shorter than the header says", WA_ETRUNC);
    if (len - WG_BACKUP_HEADER_LEN > h.body_len)
        return fail(why, "trailing bytes after the body", WA_EPROTO);
    /* deflate expands at most about 1032:1: a larger claim is a corrupt header, refused before
     * anything is allocated for it */
    if ((h.flags & WG_BACKUP_F_ZLIB) && h.plain_len / ZLIB_RATIO_MAX > h.body_len)
        return fail(why, "plaintext length impossible for the body", WA_EPROTO);
    if ((h.flags & WG_BACKUP_F_AES) && !key)
        return fail(why, "encrypted, but SESSION_ENCRYPTION_KEY is not set", WA_ECRYPTO);
    if (!(h.flags & WG_BACKUP_F_AES) && key)
        return fail(why, "not encrypted, but SESSION_ENCRYPTION_KEY is set (refused)", WA_ECRYPTO);
    if (!(h.flags & WG_BACKUP_F_AES)) {
        static const uint8_t zero[WG_BACKUP_KEY_ID_LEN + WA_AES_GCM_IV_LEN];
        if (memcmp(obj + 56, zero, sizeof zero) != 0)
            return fail(why, "key id or IV set in an unencrypted object", WA_EPROTO);
    }
    if (key && !wa_ct_equal(h.key_id, key->id, WG_BACKUP_KEY_ID_LEN))
        return fail(why, "encrypted with another SESSION_ENCRYPTION_KEY", WA_ECRYPTO);
    body = obj + WG_BACKUP_HEADER_LEN;
    body_len = h.body_len;
    if (key) {
        if (body_len < WA_AES_GCM_TAG_LEN)
            return fail(why, "encrypted body shorter than its tag", WA_EPROTO);
        clear = wa_malloc(body_len - WA_AES_GCM_TAG_LEN + 1);
        if (!clear)
            return fail(why, "out of memory", WA_ENOMEM);
        rc = wa_aes_gcm_decrypt(clear, key->aes, h.iv, obj, WG_BACKUP_HEADER_LEN, body, body_len);
        if (rc) {
            wa_free(clear);
            return fail(why, "authentication failed (corrupt object or tampered header)",
                        WA_ECRYPTO);
        }
        body = clear;
        body_len -= WA_AES_GCM_TAG_LEN;
    }
    if ((rc = wa_buf_reserve(plain, (size_t)h.plain_len + 1))) {
        rc = fail(why, rc == WA_ENOMEM ? "out of memory" : "plaintext above the buffer limit", rc);
        goto out;
    }
    if (h.flags & WG_BACKUP_F_ZLIB) {
        got = (uLongf)h.plain_len + 1; /* room for one extra byte: a longer stream is caught */
        if (uncompress(plain->data, &got, body, (uLong)body_len) != Z_OK || got != h.plain_len) {
            rc = fail(why, "zlib stream corrupt or of the wrong length", WA_EZLIB);
            goto out;
        }
    } else {
        if (body_len != h.plain_len) {
            rc = fail(why, "body length differs from the plaintext length", WA_EPROTO);
            goto out;
        }
        if (body_len)
            memcpy(plain->data, body, body_len);
    }
    plain->len = h.plain_len;
    if ((rc = wa_sha256(digest, plain->data, plain->len)))
        goto out;
    if (!wa_ct_equal(digest, h.sha256, WA_SHA256_LEN)) {
        rc = fail(why, "SHA-256 checksum mismatch", WA_ECRYPTO);
        goto out;
    }
    if (hdr)
        *hdr = h;
    rc = 0;
out:
    if (clear) {
        wa_wipe(clear, h.body_len - WA_AES_GCM_TAG_LEN);
        wa_free(clear);
    }
    if (rc) {
        if (plain->data)
            wa_wipe(plain->data, plain->cap);
        wa_buf_reset(plain);
    }
    return rc;
}
