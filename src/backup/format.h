/*
 * format.h - the backup object (".wgb"): one session's state, compressed, optionally
 * encrypted, checksummed. Pure: bytes in, bytes out.
 *
 * Object = 76-byte header || body. All integers big-endian.
 *
 *   off len
 *     0   4  magic "WGBK"
 *     4   1  version (1)
 *     5   1  flags: bit 0 zlib-compressed body, bit 1 AES-256-GCM encrypted; others 0
 *     6   2  reserved, 0
 *     8   8  created: Unix time in milliseconds
 *    16  32  SHA-256 of the plaintext payload
 *    48   4  plaintext length
 *    52   4  body length (the bytes after the header; an object is exactly 76 + this)
 *    56   8  key id (encrypted: identifies the key without revealing it; else zeros)
 *    64  12  AES-GCM IV (random per object; zeros when not encrypted)
 *    76      body: zlib(payload), then, if encrypted, AES-256-GCM(ciphertext || 16-byte tag)
 *              with the 76 header bytes as additional data (a changed header fails the tag)
 *
 * Payload (the plaintext) = meta length (4) || meta || database, where meta is the caller's
 * description of the session (the daemon's JSON row) and database the wa_store_snapshot file.
 *
 * Keys: SESSION_ENCRYPTION_KEY (32 bytes) is the HKDF-SHA256 input; the AES key and the key id
 * are two expansions of it (info "wagate-backup-v1 aes-256-gcm" / "wagate-backup-v1 key-id"),
 * so the id says "made with another key" without being usable to decrypt.
 *
 * Decoding checks, in order: length >= header, magic, version, flags, reserved, lengths (body
 * length matches, plaintext <= WG_BACKUP_PLAIN_MAX); encryption state against the key given
 * (refused both ways: an unencrypted object when a key is set could be a planted one); key id;
 * GCM tag; zlib stream producing exactly the plaintext length; SHA-256. The first failure
 * decides the error and a static reason text for the log.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_BACKUP_FORMAT_H
#define WG_BACKUP_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "crypto/crypto.h"

#define WG_BACKUP_MAGIC      "WGBK"
#define WG_BACKUP_VERSION    1
#define WG_BACKUP_HEADER_LEN 76
#define WG_BACKUP_F_ZLIB     0x01
#define WG_BACKUP_F_AES      0x02
#define WG_BACKUP_KEY_ID_LEN 8
#define WG_BACKUP_KEY_LEN    32
/* Bounds: a session's database, its meta, and so the whole object. */
#define WG_BACKUP_PLAIN_MAX (256u * 1024 * 1024)
#define WG_BACKUP_META_MAX  (1024u * 1024)
#define WG_BACKUP_OBJECT_MAX                                                                       \
    (WG_BACKUP_HEADER_LEN + WG_BACKUP_PLAIN_MAX + WG_BACKUP_PLAIN_MAX / 1000 + 1024)
/* zlib level: the snapshots are small SQLite files; 6 is zlib's own default. */
#define WG_BACKUP_ZLIB_LEVEL 6

typedef struct wg_backup_key {
    uint8_t aes[WG_BACKUP_KEY_LEN];
    uint8_t id[WG_BACKUP_KEY_ID_LEN];
} wg_backup_key;

typedef struct wg_backup_header {
    unsigned version;
    unsigned flags;
    int64_t created_ms;
    uint8_t sha256[WA_SHA256_LEN];
    uint32_t plain_len;
    uint32_t body_len;
    uint8_t key_id[WG_BACKUP_KEY_ID_LEN];
    uint8_t iv[WA_AES_GCM_IV_LEN];
} wg_backup_header;

/* Derive the object key from the 32-byte SESSION_ENCRYPTION_KEY. 0 or WA_ECRYPTO. Wipe k with
 * wa_wipe when done. */
int wg_backup_key_derive(wg_backup_key *k, const uint8_t master[WG_BACKUP_KEY_LEN]);

/* Parse SESSION_ENCRYPTION_KEY's text: 64 hex digits, or standard/URL-safe base64 of exactly
 * 32 bytes (padding optional). 0 and out; WA_EINVAL. */
int wg_backup_key_parse(const char *text, uint8_t out[WG_BACKUP_KEY_LEN]);

/* payload = be32(meta_len) || meta || db into out (reset first; its max bounds the result).
 * 0, WA_ELIMIT (meta > WG_BACKUP_META_MAX, or the whole > WG_BACKUP_PLAIN_MAX or out's max),
 * WA_ENOMEM. */
int wg_backup_payload_build(wa_buf *out, const void *meta, size_t meta_len, const void *db,
                            size_t db_len);
/* Split a payload (borrowed slices into it). 0 or WA_EPROTO. */
int wg_backup_payload_split(const uint8_t *p, size_t len, wa_slice *meta, wa_slice *db);

/* Make an object of the payload into out (reset first). key NULL: not encrypted. created_ms:
 * the time written into the header. sha256_out (may be NULL): the plaintext digest.
 * 0, WA_ELIMIT, WA_ENOMEM, WA_EZLIB, WA_ECRYPTO, WA_EIO (no random IV). */
int wg_backup_encode(wa_buf *out, const wg_backup_key *key, int64_t created_ms,
                     const uint8_t *plain, size_t plain_len, uint8_t sha256_out[WA_SHA256_LEN]);

/* Parse just the header (no body checks). 0, WA_ETRUNC, WA_EPROTO. */
int wg_backup_header_parse(const uint8_t *obj, size_t len, wg_backup_header *h);

/* Check and open an object into plain (reset first; allocated up to the header's plaintext
 * length). key NULL: only unencrypted objects are accepted. hdr (may be NULL) receives the
 * header. why (may be NULL) receives a static reason on failure.
 * 0; WA_ETRUNC (shorter than its header says), WA_EPROTO (not an object of ours / bad
 * lengths / trailing bytes), WA_EUNSUPPORTED (newer version or unknown flags), WA_ECRYPTO
 * (encryption state or key does not match, tag or checksum mismatch), WA_EZLIB, WA_ENOMEM.
 * plain is empty on failure. */
int wg_backup_decode(wa_buf *plain, const wg_backup_key *key, const uint8_t *obj, size_t len,
                     wg_backup_header *hdr, const char **why);

#endif
