/*
 * client_int.h - internals of libwa's client (include/wa/client.h).
 *
 * Files: client.c (life cycle, the connection on wa_stream + wa_wire, the one timer, stanza
 * dispatch, reconnect); messaging (part 2): sigstore.c (the wa_signal_store over the SQLite
 * store), e2e.c (the Signal handle, addresses, PN<->LID), devices.c (usync device lists and
 * their cache, contact queries), content.c (Message protobufs built and read), send.c (send
 * jobs, retry receipts honoured), recv.c (messages and receipts received); policy.c (what a
 * disconnect means: reason, code, retry, backoff), payload.c (ClientPayload for registration and
 * login), keys.c (identity, registration id, signed prekey, one-time prekeys), iq.c (ids, pending
 * iqs with deadlines), stanzas.c (builders of what the client sends), pair.c (QR texts,
 * pair-success, phone-code crypto).
 *
 * Everything but client.c is sans-I/O (time is passed in, nodes are built into a caller's
 * arena), so it is unit-tested without a loop.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_CLIENT_CLIENT_INT_H
#define WA_CLIENT_CLIENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "bnode/node.h"
#include "core/arena.h"
#include "core/buf.h"
#include "jid/jid.h"
#include "signal/signal.h"
#include "store/store.h"
#include "wa/client.h"

/* ---- limits and protocol constants ---------------------------------------------------------- */

#define WA__DEADLINK_GRACE_MS     5000   /* Baileys: dead if nothing for interval + 5 s */
#define WA__QR_FIRST_MS           60000  /* first ref lives 60 s */
#define WA__QR_NEXT_MS            20000  /* later ones 20 s */
#define WA__PAIR_CODE_TTL_MS      180000 /* how long a phone code is waited for */
#define WA__MAX_REFS              8      /* refs kept from one pair-device */
#define WA__REF_MAX               128    /* longest ref accepted */
#define WA__MAX_PENDING_IQS       48     /* iqs of our own in flight per connection */
#define WA__IQ_ID_MAX             32
#define WA__PREKEY_LOW            5 /* upload when the server has this many or fewer */
#define WA__PREKEY_UPLOAD_DEFAULT 50
#define WA__PREKEY_UPLOAD_MAX     812 /* Baileys 7's INITIAL_PREKEY_COUNT */
#define WA__STANZA_ARENA_MAX                                                                       \
    (1u << 20)                    /* arena for one stanza we build (an upload of 812               \
                                   * keys is ~40 KiB) */
#define WA__PAYLOAD_MAX      4096 /* serialized ClientPayload */
#define WA__QR_MAX           512  /* QR text */
#define WA__PHONE_MAX        20   /* digits of a phone number */
#define WA__PAIR_CODE_LEN    8
#define WA__PAIR_CODE_ITER   131072 /* PBKDF2 iterations (2 << 16) */
#define WA__QR_PREFIX        "https://wa.me/settings/linked_devices#"
#define WA__PLATFORM_ID      "1" /* CompanionWebClientType CHROME (QR 5th field) */
#define WA__PLATFORM_DISPLAY "Chrome (Mac OS)"
#define WA__SERVER           "s.whatsapp.net"
/* The server as an addressee (to=): the JID "@s.whatsapp.net" (JID_PAIR with an empty user on the
 * wire, as Baileys and whatsmeow write it), not the bare token "s.whatsapp.net". */
#define WA__SERVER_JID "@s.whatsapp.net"

/* ---- policy.c ------------------------------------------------------------------------------- */

/* What a stream:error or failure node means: reason (enum wa_disconnect_reason), the status
 * code and a static text. Unknown codes are WA_DISC_SERVER (5xx) or WA_DISC_PROTOCOL. */
void wa__policy_classify_node(const wa_node *n, int *reason, int *code, const char **text);
/* The reason for a status code alone (515, 401, 440, ...). */
int wa__policy_reason_for_code(int code);
/* Whether a reason retries, and the delay: 0 for a restart, else the backoff for `attempt`
 * (0, 1, 2...): min(max, base << attempt), then a uniform jitter over its upper half.
 * Returns 1 (retry, *delay_ms set) or 0 (stop). rnd is a random 32-bit value. */
int wa__policy_retry(int reason, unsigned attempt, unsigned base_ms, unsigned max_ms, uint32_t rnd,
                     unsigned *delay_ms);
/* The reason for a wa_stream close code / wa_wire error (WA_E*). */
int wa__policy_reason_for_error(int err);
/* Default status code of a reason (for events): 515, 428, 408, ... */
int wa__policy_code_for_reason(int reason);

/* ---- payload.c ------------------------------------------------------------------------------ */

typedef struct wa__payload_opts {
    uint32_t version[3]; /* app version */
    const char *os_name; /* DeviceProps.os */
    const char *push_name;
} wa__payload_opts;

/* Parse "a.b.c" (three decimal numbers) into v. 0 or WA_EINVAL. */
int wa__parse_version(const char *s, uint32_t v[3]);
/* Serialized ClientPayload into out: login when creds->me_jid is set, else registration
 * (devicePairingData). 0, WA_EINVAL (bad me_jid), WA_ENOMEM/WA_ELIMIT. */
int wa__payload_build(const wa_store_creds *creds, const wa__payload_opts *o, wa_buf *out);

/* ---- keys.c --------------------------------------------------------------------------------- */

/* Fresh credentials for an unpaired account: noise and identity key pairs, registration id
 * (1..16380), signed prekey id 1 signed over 0x05||pub, adv secret, next prekey id 1. */
int wa__keys_new_creds(wa_store_creds *c);
/* Sign a signed prekey: sig = XEdDSA(identity_priv, 0x05 || pub). */
int wa__keys_sign_prekey(const uint8_t identity_priv[32], const uint8_t pub[32], uint8_t sig[64]);
/* The prekey id after `id` (24-bit, wrapping to 1: never 0). */
uint32_t wa__keys_next_id(uint32_t id);
/* Make sure `want` keys not yet uploaded exist for the account (generating the missing ones
 * from creds->next_prekey_id on) and return up to `want` of them in out[] (*n). 0 or
 * WA_ESTORE/WA_ENOMEM/WA_ECRYPTO. Wipe out[] after use. */
int wa__keys_pending_prekeys(wa_store *s, int64_t account, const wa_store_creds *creds, size_t want,
                             wa_store_prekey *out, size_t *n);
/* n fresh one-time key pairs into keys[] (ids left 0). Only crypto and the CSPRNG: safe on a
 * thread-pool thread (client.c makes large batches off the loop). 0 or WA_ECRYPTO/WA_EIO. */
int wa__keys_generate(wa_store_prekey *keys, size_t n);
/* Give keys[] (from wa__keys_generate) the ids from creds->next_prekey_id on and store them,
 * not yet uploaded, with the new next_prekey_id, in one transaction. creds must be current
 * (loaded just before). 0 or WA_ESTORE/WA_ENOTFOUND (no such account)/WA_EINVAL. */
int wa__keys_store_new(wa_store *s, int64_t account, const wa_store_creds *creds,
                       wa_store_prekey *keys, size_t n);
/* Rotation hook: a new signed prekey (id + 1) into *c (not saved). */
int wa__keys_rotate_signed_prekey(wa_store_creds *c, int64_t now);
/* The server's one-time prekey ids (its key bundle digest): those this store does not hold
 * (a restored backup older than the server's state) get fresh key pairs under the same ids, up
 * to max of them, stored as not yet uploaded (the next upload replaces them on the server),
 * and next_prekey_id moves past them. *unknown: ids not held; *replaced: new keys made.
 * 0 or WA_ESTORE/WA_ENOMEM/WA_ECRYPTO. */
int wa__keys_adopt_server_prekeys(wa_store *s, int64_t account, const uint32_t *ids, size_t n,
                                  size_t max, size_t *unknown, size_t *replaced);

/* ---- iq.c ----------------------------------------------------------------------------------- */

enum wa__iq_kind {
    WA__IQ_PING = 1,
    WA__IQ_COUNT,
    WA__IQ_UPLOAD,
    WA__IQ_ACTIVE,
    WA__IQ_ROTATE,
    WA__IQ_LINK_HELLO,
    WA__IQ_LINK_FINISH,
    WA__IQ_OTHER,
    WA__IQ_USYNC,      /* device lists for a send job (arg = job seq) */
    WA__IQ_KEYS,       /* prekey bundles for a send job (arg = job seq) */
    WA__IQ_CONTACT,    /* contact query (arg = query seq) */
    WA__IQ_GROUP,      /* a group call of the application (arg = op seq) */
    WA__IQ_GROUP_META, /* group metadata for a send job (arg = job seq) */
    WA__IQ_DIGEST,     /* the server's key bundle digest (after login) */
    WA__IQ_PRIVACY,    /* the account's privacy settings (once connected) */
};

/* wa_client.readreceipts: the account's "readreceipts" privacy setting */
enum { WA__RR_UNKNOWN = 0, WA__RR_ALL, WA__RR_NONE };

typedef struct wa__iq {
    char id[WA__IQ_ID_MAX];
    int kind;
    uint64_t deadline; /* loop ms */
    uint32_t arg;      /* e.g. how many prekeys an upload carried */
} wa__iq;

typedef struct wa__iq_table {
    char prefix[16]; /* "NNNNN.NNNNN-" as Baileys: two random 16-bit numbers */
    uint32_t seq;
    wa__iq *pending; /* n of cap, NULL when none (iq.c) */
    unsigned n, cap;
} wa__iq_table;

/* New prefix, no pending iqs (t uninitialised, zeroed or cleared: nothing is freed). */
void wa__iq_init(wa__iq_table *t);
/* Forget every pending iq (the connection ended); the table's memory is freed. */
void wa__iq_clear(wa__iq_table *t);
/* A new id into id[WA__IQ_ID_MAX] (not tracked). */
void wa__iq_make_id(wa__iq_table *t, char *id);
/* Track an iq. 0, WA_ELIMIT (table full) or WA_ENOMEM. */
int wa__iq_track(wa__iq_table *t, const char *id, int kind, uint64_t deadline, uint32_t arg);
/* Take the pending iq answered by id (removed). 0 and *out, or WA_ENOTFOUND. */
int wa__iq_take(wa__iq_table *t, const char *id, wa__iq *out);
/* The earliest deadline, or UINT64_MAX. */
uint64_t wa__iq_next_deadline(const wa__iq_table *t);
/* Take one iq whose deadline is <= now. 0 and *out, or WA_ENOTFOUND. */
int wa__iq_take_expired(wa__iq_table *t, uint64_t now, wa__iq *out);

/* ---- stanzas.c (builders; every node goes into `a`) ----------------------------------------- */

wa_node *wa__st_ping(wa_arena *a, const char *id);
wa_node *wa__st_prekey_count(wa_arena *a, const char *id);
wa_node *wa__st_prekey_digest(wa_arena *a, const char *id);
/* <iq xmlns='privacy' to='s.whatsapp.net' type='get' id><privacy/></iq>, as Baileys 7 */
wa_node *wa__st_privacy_get(wa_arena *a, const char *id);
/* <iq xmlns='encrypt' type='set' to id><registration/><type/><identity/><list>keys</list>
 * <skey/></iq> */
wa_node *wa__st_prekey_upload(wa_arena *a, const char *id, const wa_store_creds *c,
                              const wa_store_prekey *keys, size_t n);
wa_node *wa__st_rotate(wa_arena *a, const char *id, const wa_store_creds *c);
wa_node *wa__st_passive_active(wa_arena *a, const char *id);
/* Bare <iq to type='result' id/> answering iq (NULL if it has no id). */
wa_node *wa__st_iq_result(wa_arena *a, const wa_node *iq);
/* <ack id to class [participant] [recipient] [type] [from]/> for a message, receipt,
 * notification or call. me_jid is added as from on messages. NULL if n has no id/from. */
wa_node *wa__st_ack(wa_arena *a, const wa_node *n, const char *me_jid);
/* <ib><unified_session id/></ib> for the given unix ms. */
wa_node *wa__st_unified_session(wa_arena *a, uint64_t unix_ms);

/* ---- pair.c --------------------------------------------------------------------------------- */

/* The QR text for ref: WA__QR_PREFIX ref,b64(noise),b64(identity),b64(adv),platform.
 * 0 or WA_ELIMIT. */
int wa__pair_qr_text(const char *ref, const wa_store_creds *c, char *out, size_t cap);

/* What pair-success gave. */
typedef struct wa__pair_result {
    char jid[WA_STORE_JID_MAX];
    char lid[WA_STORE_JID_MAX];
    char platform[WA_STORE_TEXT_MAX];
    char biz_name[WA_STORE_TEXT_MAX];
    uint32_t key_index;
} wa__pair_result;

/* Handle <iq><pair-success>: verify the HMAC (adv secret) and the account signature, make our
 * device signature, fill c->me_jid/me_lid/platform/adv_identity (c is then ready to be saved)
 * and build the reply <iq to type='result' id><pair-device-sign><device-identity key-index>
 * into *reply. 0; WA_EPROTO (missing parts, bad JID), WA_ECRYPTO (HMAC or signature wrong),
 * WA_EPROTOBUF, WA_ENOMEM. Nothing in c is changed on failure. */
int wa__pair_success(const wa_node *iq, wa_store_creds *c, wa_arena *a, wa_node **reply,
                     wa__pair_result *res);

/* Phone-number code pairing (companion_hello / companion_finish). */
typedef struct wa__link {
    char phone[WA__PHONE_MAX + 1];
    char code[WA__PAIR_CODE_LEN + 1];
    uint8_t eph_priv[32], eph_pub[32];
    uint8_t code_key_salt[32]; /* not secret */
} wa__link;

/* A new code (Crockford-like alphabet, from 5 random bytes) and ephemeral key pair. */
int wa__link_init(wa__link *l, const char *phone);
/* Encode 5 bytes as the 8-character code. */
void wa__link_code_from_bytes(const uint8_t b[5], char code[WA__PAIR_CODE_LEN + 1]);
/* salt32 || iv16 || AES-256-CTR(PBKDF2(code, salt), iv, pub): 80 bytes into out. */
int wa__link_wrap(const char *code, const uint8_t pub[32], uint8_t out[80]);
int wa__link_unwrap(const char *code, const uint8_t in[80], uint8_t pub[32]);
/* The companion_hello iq. */
wa_node *wa__link_hello(wa_arena *a, const char *id, const wa__link *l,
                        const uint8_t noise_pub[32]);
/* Handle the link_code_companion_reg notification: derive the adv secret into
 * c->adv_secret and build the companion_finish iq. 0, WA_EPROTO, WA_ECRYPTO, WA_ENOMEM. */
int wa__link_finish(const wa_node *notification, const wa__link *l, wa_store_creds *c, wa_arena *a,
                    const char *id, wa_node **iq);

/* ---- helpers shared by the files ------------------------------------------------------------ */

/* Children with raw bytes content. */
wa_node *wa__child_bytes(wa_arena *a, wa_node *parent, const char *tag, const void *p, size_t n);
/* Big-endian bytes of v (len 1..4) as content of a new child. */
wa_node *wa__child_be(wa_arena *a, wa_node *parent, const char *tag, uint32_t v, size_t len);

/* ---- messaging limits (part 2) -------------------------------------------------------------- */

#define WA__MAX_JOBS          WA_CLIENT_MAX_SENDS
#define WA__MAX_CHECKS        8                   /* contact queries in flight */
#define WA__DEVCACHE_MAX      256                 /* users whose device list is cached */
#define WA__DEVCACHE_TTL_MS   (5 * 60000)         /* Baileys: 5 minutes */
#define WA__DEVICES_MAX       64                  /* devices kept per user (more are ignored) */
#define WA__FANOUT_MAX        WA_SIGNAL_BATCH_MAX /* devices one send encrypts for */
#define WA__TEXT_MAX          65536               /* bytes of text in one message */
#define WA__PLAIN_MAX         (1u << 20)          /* serialized Message we send or accept */
#define WA__SEND_COALESCE_MAX (64u << 10)         /* written at once within a read above */
#define WA__RETRY_MAX         5 /* retry receipts per incoming message (Baileys maxMsgRetryCount) */
#define WA__RETRY_KEYS_FROM   2 /* retry count from which our keys ride along (Baileys) */
#define WA__RETRY_TRACK       64         /* incoming message ids whose retry count is remembered */
#define WA__RETRY_WAIT_MS     4000       /* no re-send this long after a retry receipt: ask again */
#define WA__RESEND_TRACK      128        /* (our message, device) re-sends remembered */
#define WA__RESEND_MAX        5          /* re-sends of one message to one device */
#define WA__STANZA_MSG_MAX    (8u << 20) /* arena of one outgoing message stanza */
#define WA__MSG_ID_HEX        18         /* "3EB0" + 18 upper-case hex digits, as WhatsApp Web */
#define WA__GROUPCACHE_MAX    16         /* groups whose member list is cached */
#define WA__GROUP_MEMBERS_MAX 1024       /* members taken from one group */

/* ---- the client struct (shared by the client's files) --------------------------------------- */

struct pairing;
struct tls_ref;
typedef struct wa__job wa__job;
typedef struct wa__devcache wa__devcache;
typedef struct wa__check wa__check;
typedef struct wa__groups wa__groups;
typedef struct wa__gop wa__gop;

typedef struct wa__sigstore {
    wa_store *store;
    int64_t account;
} wa__sigstore;

/* An incoming message we asked to be re-sent (recv.c). */
typedef struct wa__retry_seen {
    char id[WA_CLIENT_MSG_ID_MAX];
    char from[WA_JID_STR_MAX];
    char participant[WA_JID_STR_MAX]; /* "" when absent */
    char recipient[WA_JID_STR_MAX];   /* "" when absent */
    char t[24];
    unsigned count;              /* retry receipts sent */
    uint64_t deadline;           /* loop ms: ask again if no re-send came by then; 0: not waiting */
    char key[WA_STORE_NAME_MAX]; /* the message's msg_seen chat key (the stored retry row) */
} wa__retry_seen;

struct wa_client {
    uv_loop_t *loop;
    wa_store *store;
    int64_t account;
    void *user_data;
    wa_client_callbacks cbs;
    /* configuration */
    char *account_name, *host, *path, *proxy, *push_name, *os_name, *phone;
    uint16_t port;
    uint8_t use_tls, dict, has_root;
    uint8_t root[32];
    uint32_t version[3];
    unsigned keepalive_ms, connect_timeout_ms, iq_timeout_ms, backoff_base, backoff_max,
        prekey_count;
    struct tls_ref *tls;
    /* state */
    int state;
    int started;
    int freeing;
    int timer_closed;
    unsigned gen; /* changes on stop/free: code after a user callback checks it */
    uv_timer_t timer;
    struct wa_stream *stream;
    struct wa_wire *wire;
    uint64_t deadline; /* handshake deadline */
    uint64_t retry_at;
    uint64_t last_recv, next_ping;
    wa__iq_table iqs;
    unsigned attempts;
    int was_connected;
    int upload_busy;
    int disc_reason, disc_code;
    char disc_text[192];
    char me_jid[WA_STORE_JID_MAX];
    struct pairing *pair;
    /* messaging (part 2). Everything below is created on first use and released when the
     * connection ends (send jobs fail with WA_ECLOSED), so an idle client holds none of it. */
    wa__sigstore sigstore;
    wa_signal *sig;
    uint64_t sig_used; /* loop ms of the last wa__e2e_signal: freed after a quiet keep-alive */
    wa__devcache *devs;
    wa__job *jobs[WA__MAX_JOBS];
    uint32_t job_seq;
    wa__check *checks[WA__MAX_CHECKS];
    wa__retry_seen *retries; /* WA__RETRY_TRACK entries (ring) */
    unsigned retries_next;
    struct wa__resend_seen *resends; /* WA__RESEND_TRACK entries (ring) */
    unsigned resends_next;
    char me_lid[WA_STORE_JID_MAX];          /* "LID:DEVICE@lid" once known, else "" */
    wa__groups *groups;                     /* group member lists (group.c) */
    wa__gop *gops[WA_CLIENT_GROUP_OPS_MAX]; /* group calls in flight */
    /* presence.c */
    int available; /* we sent presence available (delivery receipts are not 'inactive') */
    /* client.c: the account's readreceipts privacy setting, fetched once per connection
     * (WA__RR_*; WA__RR_UNKNOWN until a first answer; a reconnect keeps the last one until the
     * new answer): mark_read sends 'read' only when ALL */
    int8_t readreceipts;
    struct wa__idchange *idchanges; /* identity changes seen (WA__IDCHANGE_TRACK, ring) */
    unsigned idchanges_next;
    struct wa__keygen *keygen; /* one-time prekeys being made on the thread pool (client.c) */
    /* recv.c: "handed over" marks not yet written (WA__MARKS_MAX, on first use): written in the
     * next message's decrypt transaction, at marks_deadline, or when the connection ends */
    struct wa__done_mark *marks;
    unsigned n_marks;
    uint64_t marks_deadline;
    /* recv.c: rows in the store's retry_pending (an upper bound; 0: no delete to try) */
    size_t retry_rows;
    /* recv.c: the messages of one read burst, decrypted in one open store transaction
     * (rx_open) and handed over after its commit (wa__recv_batch_flush); rx is allocated when a
     * batch opens and freed when it ends */
    struct wa__rx_pending **rx;
    unsigned n_rx;
    int rx_open;
    int rx_err;  /* a store write of the batch failed: it is rolled back */
    int in_read; /* client.c: handling a read; sends are written at its end */
};

/* ---- client.c services for the messaging files ---------------------------------------------- */

/* Send a stanza (traced). 0, WA_ESTATE when not connected, encoder errors. */
int wa__client_send(wa_client *c, const wa_node *n);
/* Send an iq of ours and track its answer (on_iq_answer dispatches by kind). */
int wa__client_send_iq(wa_client *c, wa_node *iq, const char *id, int kind, uint32_t arg);
/* Still the same life of the client after a user callback? */
int wa__client_alive(const wa_client *c, unsigned gen);
/* Loop time (ms) and wall-clock unix seconds. */
uint64_t wa__client_now(const wa_client *c);
int64_t wa__client_unix(void);
/* Re-arm the timer (deadlines changed). */
void wa__client_arm(wa_client *c);
/* <ack/> for a stanza (message, receipt, notification, call). */
void wa__client_ack(wa_client *c, const wa_node *n);

/* ---- sigstore.c ----------------------------------------------------------------------------- */

/* Fill every callback of *st (the batch load included) with the adapter over ss's account. */
void wa__sigstore_bind(wa__sigstore *ss, wa_signal_store *st);

/* ---- e2e.c ---------------------------------------------------------------------------------- */

/* The Signal handle (created on first use). NULL on failure (logged). */
wa_signal *wa__e2e_signal(wa_client *c);
/* Release the handle and the per-connection messaging state (connection ended). */
void wa__e2e_release(wa_client *c);
/* Free the Signal handle if unused for quiet_ms (it keeps no state between operations: the
 * store has it; the next use makes a new one). Called at each keep-alive. */
void wa__e2e_idle(wa_client *c, uint64_t now, uint64_t quiet_ms);
/* The Signal address for a device JID: LID when the JID is a LID or its phone number's LID is
 * known, else the phone number (one Signal state per device, whichever name it arrives under).
 * 0, WA_EINVAL (not a user JID). */
int wa__e2e_addr(wa_client *c, const wa_jid *device, wa_signal_addr *out);
/* A PN user and its LID user (users without server or device) are the same person: remember it
 * and move any Signal state kept under the phone number to the LID. 0 or WA_ESTORE. */
int wa__e2e_learn(wa_client *c, const char *pn_user, const char *lid_user);
/* The other form of a user JID (PN -> LID, LID -> PN) into out, when known. 0, WA_ENOTFOUND. */
int wa__e2e_alt(wa_client *c, const wa_jid *user, wa_jid *out);
/* Our own non-AD user JID in the PN (lid 0) or LID (lid 1) form. 0, WA_ENOTFOUND. */
int wa__e2e_me(wa_client *c, int lid, wa_jid *out);
/* Our device id (from me_jid). */
uint16_t wa__e2e_my_device(const wa_client *c);
/* The serialized ADVSignedDeviceIdentity (with the account key) into out. */
int wa__e2e_device_identity(wa_client *c, wa_buf *out);
/* Check a <device-identity> that came with a pkmsg from `sender`, whose identity key the pkmsg
 * names (identity_pub): the account signature over 06 00 || details || identity_pub by the
 * accountSignatureKey it carries. 0, WA_ECRYPTO, WA_EPROTOBUF. */
int wa__e2e_check_device_identity(const uint8_t *adv, size_t len,
                                  const uint8_t identity_pub[WA_SIGNAL_KEY_LEN]);
/* The identity key a PreKeySignalMessage names (32 bytes, prefix stripped). 0 or WA_EPROTO. */
int wa__e2e_pkmsg_identity(const uint8_t *ct, size_t len, uint8_t out[WA_SIGNAL_KEY_LEN]);

/* ---- devices.c ------------------------------------------------------------------------------ */

/* The cached device ids of user (non-AD user JID); fresh only (TTL). Returns the count (0..
 * WA__DEVICES_MAX) into ids, or -1 when not cached. */
int wa__devices_get(wa_client *c, const wa_jid *user, uint16_t *ids);
/* Forget user's device list (both its PN and LID forms). */
void wa__devices_forget(wa_client *c, const wa_jid *user);
void wa__devices_clear(wa_client *c);
/* A usync device query for users[0..n) (non-AD) into `a`; id is the iq id. */
wa_node *wa__devices_query(wa_client *c, wa_arena *a, const char *id, const wa_jid *users,
                           size_t n);
/* Take a usync answer: cache every user's device list and learn PN<->LID pairs. 0 or
 * WA_EPROTO (not a usync result). */
int wa__devices_take(wa_client *c, const wa_node *iq);
/* <notification type='devices'>: the sender's device list changed. */
void wa__devices_notification(wa_client *c, const wa_node *n);
/* Contact queries (wa_client_check_phones): the iq answer for query seq. */
void wa__check_answer(wa_client *c, uint32_t seq, const wa_node *iq);
void wa__check_fail_all(wa_client *c, int err);

/* ---- group.c -------------------------------------------------------------------------------- */

/* The cached members of group (non-AD user JIDs, borrowed until the next change of the cache):
 * the count, or -1 when not cached (or stale). */
int wa__group_members(wa_client *c, const wa_jid *group, const wa_jid **members);
/* Ask the group's metadata for send job `seq` (answer: WA__IQ_GROUP_META). */
int wa__group_query_for_job(wa_client *c, const wa_jid *group, uint32_t seq);
/* Take a metadata answer into the cache. 0 or WA_EPROTO. */
int wa__group_take(wa_client *c, const wa_node *iq);
/* Answer of a group call (WA__IQ_GROUP). */
void wa__group_answer(wa_client *c, uint32_t seq, const wa_node *iq);
void wa__group_fail_all(wa_client *c, int err);
/* <notification type='w:gp2'>. */
void wa__group_notification(wa_client *c, const wa_node *n);
void wa__group_clear(wa_client *c);
/* Our sender key for group must change (a member left): drop it and the record of who had it,
 * so that the next send distributes a new one to the members left. */
void wa__group_rotate_key(wa_client *c, const char *group);
/* Our own device's Signal address (the sender of our group messages). */
int wa__group_own_addr(wa_client *c, wa_signal_addr *out);

/* ---- content.c ------------------------------------------------------------------------------ */

/* A message to send, serialized (a Message protobuf), with the stanza attributes it needs. */
typedef struct wa__outgoing {
    wa_buf plain;          /* serialized Message (capped at WA__PLAIN_MAX) */
    const char *type;      /* stanza type: "text", "reaction", "media" */
    const char *edit;      /* stanza edit attribute: NULL, "1" (edit), "7" (revoke) */
    const char *mediatype; /* <enc mediatype> (Baileys getMediaType): "vcard", or NULL */
} wa__outgoing;

/* Builders (chat: the conversation JID string as it goes into message keys). 0, WA_EINVAL,
 * WA_ELIMIT, WA_ENOMEM. */
int wa__content_text(wa__outgoing *o, const char *text, const wa_client_send_opts *opts,
                     const char *chat);
int wa__content_reaction(wa__outgoing *o, const char *chat, const char *target_id,
                         const char *target_sender, int target_from_me, const char *emoji,
                         int64_t now_ms);
int wa__content_edit(wa__outgoing *o, const char *chat, const char *target_id, const char *text,
                     int64_t now_ms);
int wa__content_revoke(wa__outgoing *o, const char *chat, const char *target_id);
int wa__content_location(wa__outgoing *o, const wa_client_location *loc,
                         const wa_client_send_opts *opts, const char *chat);
int wa__content_contact(wa__outgoing *o, const char *display_name, const char *vcard,
                        const wa_client_send_opts *opts, const char *chat);
/* Message { senderKeyDistributionMessage { groupId, axolotlSenderKeyDistributionMessage } },
 * appended to out (appended to a serialized Message, it adds the field to it). */
int wa__content_skdm(const char *group, const uint8_t *skdm, size_t len, wa_buf *out);
/* Message { deviceSentMessage { destinationJid, message } } around a serialized Message. */
int wa__content_dsm(const uint8_t *plain, size_t len, const char *destination, wa_buf *out);

/* An incoming message's content, read from a serialized Message (deviceSentMessage and the
 * FutureProof wrappers unwrapped). Strings point into the decoded message or static "". */
typedef struct wa__incoming {
    void *msg; /* the decoded Wa__Message (wa_proto_free) */
    int kind;  /* enum wa_client_msg_kind */
    const char *text;
    const char *quoted_id, *quoted_sender, *quoted_text;
    const char **mentions;
    size_t n_mentions;
    const char *target_id, *target_sender;
    int target_from_me;
    const char *dsm_destination; /* deviceSentMessage.destinationJid or NULL */
    int has_content;             /* something for the application (not only protocol/SKDM) */
    const uint8_t *skdm;         /* senderKeyDistributionMessage (group id in skdm_group) */
    size_t skdm_len;
    const char *skdm_group;
    double latitude, longitude; /* WA_MSG_LOCATION */
    const char *location_name, *location_address;
    const char *contact_name, *vcard; /* WA_MSG_CONTACT */
} wa__incoming;

/* Decode. 0, WA_EPROTOBUF, WA_EDEPTH, WA_ELIMIT. Free with wa__content_free. */
int wa__content_read(const uint8_t *p, size_t len, wa__incoming *out);
void wa__content_free(wa__incoming *in);

/* A new message id like WhatsApp Web's: "3EB0" + 18 upper-case hex digits. */
void wa__content_new_id(char id[WA_CLIENT_MSG_ID_MAX]);

/* ---- send.c --------------------------------------------------------------------------------- */

/* Start a send of o (taken over: o->plain is moved into the job) to chat. id_out receives the
 * message id (opts id or a new one). 0, WA_ELIMIT (jobs full), WA_EINVAL, WA_ENOMEM. */
int wa__send_start(wa_client *c, const wa_jid *chat, wa__outgoing *o, const char *id, char *id_out);
/* An iq answer for a job (WA__IQ_USYNC / WA__IQ_KEYS); error nodes included. */
void wa__send_iq_answer(wa_client *c, int kind, uint32_t seq, const wa_node *iq);
/* <ack class='message'> from the server. */
void wa__send_acked(wa_client *c, const wa_node *ack);
/* <receipt type='retry'>: rebuild the session with that device and re-send. */
void wa__send_retry(wa_client *c, const wa_node *receipt);
/* Jobs whose server ack is overdue fail; the earliest deadline (UINT64_MAX: none). */
void wa__send_expire(wa_client *c, uint64_t now);
uint64_t wa__send_next_deadline(const wa_client *c);
/* Every job fails with err (connection ended). */
void wa__send_fail_all(wa_client *c, int err);

/* ---- presence.c ----------------------------------------------------------------------------- */

#define WA__IDCHANGE_TRACK     16    /* users whose identity change is remembered */
#define WA__IDCHANGE_WINDOW_MS 60000 /* one change reported once in this window */

/* <presence from type [last]> and <chatstate from [participant]><composing|paused/>. */
void wa__presence_recv(wa_client *c, const wa_node *n);
void wa__chatstate_recv(wa_client *c, const wa_node *n);
/* <notification type='encrypt' from=USER><identity/></notification>: every session and
 * identity of the user is dropped, with its device list; identity_changed is raised. */
void wa__identity_notification(wa_client *c, const wa_node *n);
/* The Signal layer replaced a stored identity (a pkmsg or bundle with a new key): noted, and
 * reported by wa__identity_flush (never from inside a Signal operation). */
void wa__identity_changed_cb(const wa_signal_addr *addr, const uint8_t old_key[WA_SIGNAL_KEY_LEN],
                             const uint8_t new_key[WA_SIGNAL_KEY_LEN], void *user_data);
/* Raise the identity_changed events noted since the last call (after a stanza was handled). */
void wa__identity_flush(wa_client *c);
/* Forget the identity-change memory (the client is freed). */
void wa__presence_release(wa_client *c);

/* ---- recv.c --------------------------------------------------------------------------------- */

void wa__recv_message(wa_client *c, const wa_node *n);
void wa__recv_receipt(wa_client *c, const wa_node *n);
/* Messages whose re-send is overdue get the next retry receipt; the earliest deadline. */
void wa__recv_expire(wa_client *c, uint64_t now);
uint64_t wa__recv_next_deadline(const wa_client *c);
/* After login: ask again for the messages whose retry receipts the store remembers (an earlier
 * run, or connection, asked and no re-send came); load them into the retry timers. */
void wa__recv_retry_resume(wa_client *c);
/* Write the deferred "handed over" marks now (recv.c; the connection ends, or their time). */
void wa__recv_marks_flush(wa_client *c);
/* End the batch of decrypted messages (recv.c): commit its transaction, then hand the messages
 * over and receipt them. Called when a read's stanzas are done, and before anything that must
 * not run inside the batch's transaction (other stanzas, callbacks). No-op without a batch. */
void wa__recv_batch_flush(wa_client *c);

#endif
