/*
 * store.h - libwa's SQLite store: layout decision, and the internal API the client uses
 * (credentials, prekeys, signed prekeys, PN<->LID map, end-to-end state). The public part is
 * include/wa/store.h.
 *
 * LAYOUT: ONE SQLite FILE FOR ALL ACCOUNTS OF A PROCESS, every table keyed by an `account`
 * column, ONE CONNECTION PER LOOP THREAD, nothing of an idle account in memory.
 *
 * Why not one file per account:
 *   - File descriptors. The process has about 20,000, shared with the sockets of the same
 *     accounts. An open SQLite database in WAL mode holds three (db, -wal, -shm), so 10,000
 *     accounts cannot keep their files open; they would need an LRU of open handles that opens
 *     and closes files (and re-parses schemas, re-maps -shm) on every message burst.
 *   - Memory. Every connection has its own page cache, lookaside and prepared statements:
 *     tens to hundreds of KiB each, which alone would break the 64 KiB-per-idle-client goal.
 *     One shared connection has one cache (WA_STORE_DEFAULT_CACHE_KIB) however many accounts.
 *   - fsync cost. Many files mean many WALs and many checkpoints; one WAL batches them.
 * What one file costs, and how it is handled:
 *   - Per-account backup: wa_store_snapshot copies one account's rows (inside one read
 *     transaction, so the copy is consistent) into a new SQLite file, and wa_store_restore
 *     imports such a file under a new name. Every table is listed once (tables[] in store.c),
 *     so the end-to-end tables (e2e.c: sessions, sender keys, message ids, recent sends) and
 *     the app-state sync keys (appstate.c) are part of backup, restore, wipe and delete.
 *   - Deletion: wa_store_account_wipe/delete DELETE the account's rows in one transaction;
 *     secure_delete=ON overwrites the freed pages, so wiped keys do not linger in the file.
 *   - One writer at a time: writes are a few small rows (a pairing, a prekey batch, a
 *     session update per message) and are sub-millisecond without fsync, which is what WAL +
 *     synchronous=NORMAL gives. Several loop threads each open their own wa_store on the file;
 *     a busy timeout (WA_STORE_BUSY_MS) serializes their rare concurrent writes.
 *   - Blast radius: one corrupt file holds every account; the per-account snapshots are the
 *     backups, and SQLite's WAL keeps the file consistent across crashes.
 *
 * CRASH SAFETY: journal_mode=WAL, synchronous=NORMAL by default: a commit survives a process
 * crash at once, and a power loss can only lose the last commits before a checkpoint, never
 * corrupt the file. That is right for state that can be recovered (prekey marks, Signal
 * ratchets, repaired by retry receipts), and keeps per-message writes fsync-free. Commits that
 * must survive a power loss because the server is told about them right after - the identity
 * made by pairing (acknowledged by pair-device-sign) and the logout wipe - are "durable": they
 * run with synchronous=FULL, which fsyncs the WAL before COMMIT returns.
 *
 * Memory: the store struct, one prepared statement per query kind (prepared on first use) and
 * the page cache (capped by cache_size). Key material read from the database is copied into
 * the caller's struct; callers wipe it (wa_store_creds_wipe) as soon as they are done, so
 * an idle client holds no keys.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_STORE_STORE_H
#define WA_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "wa/store.h"

#define WA_STORE_DEFAULT_CACHE_KIB 2048 /* one page cache for every account of a connection */
#define WA_STORE_BUSY_MS           5000 /* wait for another thread's write transaction */
#define WA_STORE_WAL_LIMIT         (64 * 1024 * 1024) /* journal_size_limit: WAL file size kept */
#define WA_STORE_SCHEMA_VERSION    4

#define WA_STORE_KEY_LEN       32
#define WA_STORE_SIG_LEN       64
#define WA_STORE_JID_MAX       192       /* a formatted JID with its NUL (WA_JID_STR_MAX fits) */
#define WA_STORE_TEXT_MAX      128       /* platform, push name */
#define WA_STORE_ADV_MAX       1024      /* serialized ADVSignedDeviceIdentity */
#define WA_STORE_ROUTING_MAX   256       /* edge routing info */
#define WA_STORE_PREKEY_ID_MAX 0xFFFFFFu /* prekey ids are 24-bit on the wire, never 0 */

/* An account's own credentials. Fixed-size: no allocation. Secret fields: *_priv, adv_secret. */
typedef struct wa_store_creds {
    uint8_t noise_priv[WA_STORE_KEY_LEN];
    uint8_t noise_pub[WA_STORE_KEY_LEN];
    uint8_t identity_priv[WA_STORE_KEY_LEN];
    uint8_t identity_pub[WA_STORE_KEY_LEN];
    uint32_t registration_id;
    /* current signed prekey (older ones stay in the signed_prekey table) */
    uint32_t spk_id;
    uint8_t spk_priv[WA_STORE_KEY_LEN];
    uint8_t spk_pub[WA_STORE_KEY_LEN];
    uint8_t spk_sig[WA_STORE_SIG_LEN];
    int64_t spk_created; /* unix seconds */
    uint8_t adv_secret[WA_STORE_KEY_LEN];
    uint32_t next_prekey_id; /* next one-time prekey id to generate (1..WA_STORE_PREKEY_ID_MAX) */
    /* set by pairing ("" before) */
    char me_jid[WA_STORE_JID_MAX]; /* "PHONE:DEVICE@s.whatsapp.net" */
    char me_lid[WA_STORE_JID_MAX]; /* "LID:DEVICE@lid" or "" */
    char platform[WA_STORE_TEXT_MAX];
    char push_name[WA_STORE_TEXT_MAX];
    uint8_t adv_identity[WA_STORE_ADV_MAX]; /* ADVSignedDeviceIdentity incl. account key */
    size_t adv_identity_len;
    uint8_t routing_info[WA_STORE_ROUTING_MAX];
    size_t routing_info_len;
} wa_store_creds;

typedef struct wa_store_prekey {
    uint32_t id;
    uint8_t priv[WA_STORE_KEY_LEN];
    uint8_t pub[WA_STORE_KEY_LEN];
} wa_store_prekey;

/* Wipe a creds struct (all of it). */
void wa_store_creds_wipe(wa_store_creds *c);

/* Load account id's credentials into *out (written only on success; wipe it after use).
 * 0, WA_ENOTFOUND (none yet), WA_ESTORE. */
int wa_store_creds_load(wa_store *s, int64_t id, wa_store_creds *out);
/* Insert or replace the credentials (and record the current signed prekey in the
 * signed_prekey table). durable != 0: fsync before returning (see the top of this file).
 * 0 or WA_ESTORE. */
int wa_store_creds_save(wa_store *s, int64_t id, const wa_store_creds *c, int durable);
/* Update only the routing info / push name. 0, WA_ENOTFOUND, WA_ESTORE. */
int wa_store_set_routing(wa_store *s, int64_t id, const uint8_t *info, size_t len);
int wa_store_set_push_name(wa_store *s, int64_t id, const char *name);

/* One-time prekeys. Store n new keys (not yet uploaded) and set the account's next prekey id
 * to next_id, in one transaction. 0, WA_EEXIST (an id is taken), WA_ENOTFOUND (no creds),
 * WA_ESTORE. */
int wa_store_prekeys_add(wa_store *s, int64_t id, const wa_store_prekey *keys, size_t n,
                         uint32_t next_id);
/* Up to max keys not yet uploaded, lowest id first, into out[]; *n set. 0 or WA_ESTORE. */
int wa_store_prekeys_pending(wa_store *s, int64_t id, wa_store_prekey *out, size_t max, size_t *n);
/* Mark the given ids uploaded. 0 or WA_ESTORE. */
int wa_store_prekeys_mark_uploaded(wa_store *s, int64_t id, const uint32_t *ids, size_t n);
/* Mark the n lowest keys not yet uploaded as uploaded (what an upload of the n lowest pending
 * keys carried), in one statement. 0 or WA_ESTORE. */
int wa_store_prekeys_mark_lowest(wa_store *s, int64_t id, size_t n);
/* The key with this id (for a pkmsg, part 2). 0, WA_ENOTFOUND, WA_ESTORE. */
int wa_store_prekey_get(wa_store *s, int64_t id, uint32_t key_id, wa_store_prekey *out);
/* Remove a used key. 0 (also if absent) or WA_ESTORE. */
int wa_store_prekey_remove(wa_store *s, int64_t id, uint32_t key_id);
/* Number of stored keys; uploaded_only counts only uploaded ones. 0 or WA_ESTORE. */
int wa_store_prekeys_count(wa_store *s, int64_t id, int uploaded_only, size_t *n);

/* A previous or current signed prekey by id (part 2 needs old ones for late pkmsgs).
 * 0, WA_ENOTFOUND, WA_ESTORE. priv/pub/sig may be NULL. */
int wa_store_signed_prekey_get(wa_store *s, int64_t id, uint32_t spk_id,
                               uint8_t priv[WA_STORE_KEY_LEN], uint8_t pub[WA_STORE_KEY_LEN],
                               uint8_t sig[WA_STORE_SIG_LEN]);

/* PN <-> LID map of the account's contacts (users without device: "123", "456"; the servers
 * are implied). Put replaces an existing mapping of either side. 0 or WA_ESTORE/WA_EINVAL. */
int wa_store_lid_put(wa_store *s, int64_t id, const char *pn_user, const char *lid_user);
/* Lookups write a NUL-terminated user into out (cap bytes). 0, WA_ENOTFOUND, WA_ELIMIT,
 * WA_ESTORE. */
int wa_store_lid_for_pn(wa_store *s, int64_t id, const char *pn_user, char *out, size_t cap);
int wa_store_pn_for_lid(wa_store *s, int64_t id, const char *lid_user, char *out, size_t cap);

/* ---- transactions ------------------------------------------------------------------------
 * Group several calls into one commit (e.g. the session a decryption advanced and the id of
 * the message it gave). Levels nest; every function below also works inside one. */
int wa_store_tx_begin(wa_store *s);
/* Commit (rc == 0) or roll back (rc != 0) the innermost level; returns the final result. */
int wa_store_tx_end(wa_store *s, int rc);

/* ---- end-to-end state (e2e.c) ---------------------------------------------------------------
 * Signal addresses are (name, device): name is libsignal's name of the user (1..
 * WA_STORE_NAME_MAX bytes), e.g. "15551234567" (phone number) or "123456789_1" (LID). Records
 * are opaque blobs of at most WA_STORE_RECORD_MAX bytes (libsignal's serialized records). */
#define WA_STORE_NAME_MAX    160
#define WA_STORE_GROUP_MAX   128
#define WA_STORE_RECORD_MAX  (256u * 1024u)
#define WA_STORE_MSGID_MAX   128
#define WA_STORE_SEEN_KEEP   20000 /* message ids remembered per account (newest kept) */
#define WA_STORE_SENT_KEEP   256   /* recent sends kept per account for retry receipts */
#define WA_STORE_PAYLOAD_MAX (1u << 20)

typedef struct wa_store_addr {
    const char *name;
    uint16_t device;
} wa_store_addr;

/* Remote identity keys. get: 0, WA_ENOTFOUND, WA_ESTORE. */
int wa_store_identity_get(wa_store *s, int64_t id, const wa_store_addr *a,
                          uint8_t key[WA_STORE_KEY_LEN]);
int wa_store_identity_put(wa_store *s, int64_t id, const wa_store_addr *a,
                          const uint8_t key[WA_STORE_KEY_LEN]);
/* Our own identity key pair and registration id (the part of creds libsignal needs). 0,
 * WA_ENOTFOUND, WA_ESTORE. Wipe priv after use. */
int wa_store_own_identity(wa_store *s, int64_t id, uint8_t priv[WA_STORE_KEY_LEN],
                          uint8_t pub[WA_STORE_KEY_LEN], uint32_t *reg_id);

/* Sessions. get appends the record to out: 0, WA_ENOTFOUND, WA_ELIMIT (out too small),
 * WA_ESTORE. The batch form reads the n records of one send inside one read transaction, one
 * query per distinct name; found[i] = 1 and the record appended to outs[i], or found[i] = 0.
 * delete: 1 deleted, 0 absent, or WA_ESTORE. */
int wa_store_session_get(wa_store *s, int64_t id, const wa_store_addr *a, wa_buf *out);
int wa_store_sessions_get(wa_store *s, int64_t id, const wa_store_addr *a, size_t n, wa_buf *outs,
                          uint8_t *found);
int wa_store_session_put(wa_store *s, int64_t id, const wa_store_addr *a, const uint8_t *rec,
                         size_t len);
int wa_store_session_delete(wa_store *s, int64_t id, const wa_store_addr *a);

/* Sender keys, by (group id, sender address). Same conventions as sessions. */
int wa_store_sender_key_get(wa_store *s, int64_t id, const char *group, const wa_store_addr *a,
                            wa_buf *out);
int wa_store_sender_key_put(wa_store *s, int64_t id, const char *group, const wa_store_addr *a,
                            const uint8_t *rec, size_t len);
int wa_store_sender_key_delete(wa_store *s, int64_t id, const char *group, const wa_store_addr *a);

/* Which devices have our current sender key for a group. has: 1 / 0 / WA_ESTORE. mark adds n
 * devices; clear forgets them all (our sender key changed). */
int wa_store_skdm_has(wa_store *s, int64_t id, const char *group, const wa_store_addr *a);
int wa_store_skdm_mark(wa_store *s, int64_t id, const char *group, const wa_store_addr *a,
                       size_t n);
int wa_store_skdm_clear(wa_store *s, int64_t id, const char *group);

/* A user's Signal state moves from one name to another (a phone number user whose LID became
 * known: sessions, identities and sender keys are re-keyed; rows already present under `to`
 * win). 0 or WA_ESTORE. */
int wa_store_e2e_rename(wa_store *s, int64_t id, const char *from, const char *to);
/* Forget a user's sessions and identity keys, every device (its identity changed: the next
 * message or send starts afresh, trust on first use). Sender keys stay. 0 or WA_ESTORE. */
int wa_store_e2e_forget(wa_store *s, int64_t id, const char *name);

/* Processed incoming message ids (redeliveries are recognised by them), per chat key.
 * State WA_STORE_SEEN_DECRYPTED: decrypted and committed, payload (the plaintext) not yet
 * handed to the application; WA_STORE_SEEN_DONE: handed over (payload dropped);
 * WA_STORE_SEEN_REFUSED: decrypted but malformed, refused (payload: the nack's error code, a
 * NUL, the reason), so that a redelivery is refused and reported again.
 * get: 0 with *state (and the payload appended to payload when not NULL), WA_ENOTFOUND,
 * WA_ELIMIT, WA_ESTORE. put replaces; the oldest ids beyond WA_STORE_SEEN_KEEP are forgotten. */
enum { WA_STORE_SEEN_DECRYPTED = 1, WA_STORE_SEEN_DONE = 2, WA_STORE_SEEN_REFUSED = 3 };
int wa_store_seen_get(wa_store *s, int64_t id, const char *chat, const char *msg_id, int *state,
                      wa_buf *payload);
int wa_store_seen_put(wa_store *s, int64_t id, const char *chat, const char *msg_id, int state,
                      const uint8_t *payload, size_t len, int64_t t);
/* Mark an id handed over (state WA_STORE_SEEN_DONE, its plaintext dropped) in place; an id not
 * in the table (pruned) is added done, with t. 0, WA_EINVAL, WA_ESTORE. */
int wa_store_seen_done(wa_store *s, int64_t id, const char *chat, const char *msg_id, int64_t t);

/* Recent sends (the serialized Message, unpadded), for re-sending on a retry receipt.
 * get: 0 with the chat JID in chat[cap] and the payload appended, WA_ENOTFOUND, WA_ELIMIT,
 * WA_ESTORE. The oldest beyond WA_STORE_SENT_KEEP are forgotten. */
int wa_store_sent_put(wa_store *s, int64_t id, const char *msg_id, const char *chat,
                      const uint8_t *payload, size_t len, int64_t t);
int wa_store_sent_get(wa_store *s, int64_t id, const char *msg_id, char *chat, size_t cap,
                      wa_buf *payload);

/* ---- app-state sync keys (appstate.c) -------------------------------------------------------
 * The keys our phone shares in a protocolMessage.appStateSyncKeyShare (whatsmeow
 * store.AppStateSyncKey, Baileys 'app-state-sync-key'), by key id; the later app-state sync
 * decrypts and verifies patches with them. data is secret: wipe the struct after use
 * (wa_store_appstate_key_wipe). */
#define WA_STORE_APPSTATE_ID_MAX   64  /* keyId bytes (WhatsApp: 6) */
#define WA_STORE_APPSTATE_DATA_MAX 64  /* keyData bytes (WhatsApp: 32) */
#define WA_STORE_APPSTATE_FP_MAX   256 /* serialized AppStateSyncKeyFingerprint */

typedef struct wa_store_appstate_key {
    uint8_t id[WA_STORE_APPSTATE_ID_MAX];
    size_t id_len; /* 1..WA_STORE_APPSTATE_ID_MAX */
    uint8_t data[WA_STORE_APPSTATE_DATA_MAX];
    size_t data_len; /* 1..WA_STORE_APPSTATE_DATA_MAX */
    uint8_t fingerprint[WA_STORE_APPSTATE_FP_MAX];
    size_t fingerprint_len; /* 0: none */
    int64_t timestamp;      /* the key's timestamp as the phone sent it (ms) */
} wa_store_appstate_key;

void wa_store_appstate_key_wipe(wa_store_appstate_key *k);
/* Insert, or replace the stored key of the same id unless that one is newer (a larger
 * timestamp, as whatsmeow keeps it). 0, WA_EINVAL, WA_ESTORE. */
int wa_store_appstate_key_put(wa_store *s, int64_t id, const wa_store_appstate_key *k);
/* The key with this id into *out (written only on success). 0, WA_ENOTFOUND, WA_EINVAL,
 * WA_ESTORE. */
int wa_store_appstate_key_get(wa_store *s, int64_t id, const uint8_t *key_id, size_t key_id_len,
                              wa_store_appstate_key *out);
/* Number of keys stored for the account. 0 or WA_ESTORE. */
int wa_store_appstate_key_count(wa_store *s, int64_t id, size_t *n);

/* ---- pending retries (retry.c) ------------------------------------------------------------
 * Incoming messages that failed to decrypt and for which a retry receipt went out: what is
 * needed to send the next retry receipt (the receipt's to / participant / recipient, the
 * message's t), the count of the last one sent and when (unix ms). The client writes a row just
 * before each retry receipt leaves, deletes it when the message decrypts or the retry limit is
 * reached, and after a restart asks again for the rows it finds (the server took the retry
 * receipt as the acknowledgement: nothing else brings the message back). At most
 * WA_STORE_RETRY_KEEP rows per account: the oldest beyond are dropped. */
#define WA_STORE_RETRY_KEEP  256
#define WA_STORE_RETRY_T_MAX 24

typedef struct wa_store_retry {
    char msg_id[WA_STORE_MSGID_MAX];
    char key[WA_STORE_NAME_MAX];        /* the msg_seen chat key of the message */
    char from[WA_STORE_JID_MAX];        /* the stanza's from: the receipt's to */
    char participant[WA_STORE_JID_MAX]; /* "" when absent */
    char recipient[WA_STORE_JID_MAX];   /* "" when absent */
    char t[WA_STORE_RETRY_T_MAX];       /* the message's t attribute */
    unsigned count;                     /* retry receipts sent */
    int64_t asked;                      /* unix ms of the last one */
} wa_store_retry;

/* Insert or update the row of (msg_id, from, participant). *dropped (may be NULL) = the oldest
 * rows dropped to stay within WA_STORE_RETRY_KEEP. 0, WA_EINVAL, WA_ESTORE. */
int wa_store_retry_put(wa_store *s, int64_t id, const wa_store_retry *r, size_t *dropped);
/* Delete the row (participant NULL = ""); *deleted (may be NULL) = 1 when there was one. 0 (also
 * when there was none), WA_EINVAL, WA_ESTORE. */
int wa_store_retry_del(wa_store *s, int64_t id, const char *msg_id, const char *from,
                       const char *participant, int *deleted);
/* Up to cap rows, oldest first, into out; *n = the number written. 0, WA_EINVAL, WA_ESTORE. */
int wa_store_retry_list(wa_store *s, int64_t id, wa_store_retry *out, size_t cap, size_t *n);

/* Readable text of the last SQLite error on this connection (for logs). Never NULL. */
const char *wa_store_errmsg(wa_store *s);

#endif
