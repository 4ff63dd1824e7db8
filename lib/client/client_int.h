/*
 * client_int.h - internals of libwa's client (include/wa/client.h).
 *
 * Files: client.c (life cycle, the connection on wa_stream + wa_wire, the one timer, stanza
 * dispatch, reconnect), policy.c (what a disconnect means: reason, code, retry, backoff),
 * payload.c (ClientPayload for registration and login), keys.c (identity, registration id,
 * signed prekey, one-time prekeys), iq.c (ids, pending iqs with deadlines), stanzas.c
 * (builders of what the client sends), pair.c (QR texts, pair-success, phone-code crypto).
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

#include "bnode/node.h"
#include "core/arena.h"
#include "core/buf.h"
#include "store/store.h"
#include "wa/client.h"

/* ---- limits and protocol constants ---------------------------------------------------- */

#define WA__DEADLINK_GRACE_MS     5000   /* Baileys: dead if nothing for interval + 5 s */
#define WA__QR_FIRST_MS           60000  /* first ref lives 60 s */
#define WA__QR_NEXT_MS            20000  /* later ones 20 s */
#define WA__PAIR_CODE_TTL_MS      180000 /* how long a phone code is waited for */
#define WA__MAX_REFS              8      /* refs kept from one pair-device */
#define WA__REF_MAX               128    /* longest ref accepted */
#define WA__MAX_PENDING_IQS       8      /* iqs of our own in flight per connection */
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

/* ---- policy.c ------------------------------------------------------------------------- */

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

/* ---- payload.c ------------------------------------------------------------------------ */

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

/* ---- keys.c ------------------------------------------------------------------------------ */

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
/* Rotation hook: a new signed prekey (id + 1) into *c (not saved). */
int wa__keys_rotate_signed_prekey(wa_store_creds *c, int64_t now);

/* ---- iq.c --------------------------------------------------------------------------------- */

enum wa__iq_kind {
    WA__IQ_PING = 1,
    WA__IQ_COUNT,
    WA__IQ_UPLOAD,
    WA__IQ_ACTIVE,
    WA__IQ_ROTATE,
    WA__IQ_LINK_HELLO,
    WA__IQ_LINK_FINISH,
    WA__IQ_OTHER,
};

typedef struct wa__iq {
    char id[WA__IQ_ID_MAX];
    int kind;
    uint64_t deadline; /* loop ms */
    uint32_t arg;      /* e.g. how many prekeys an upload carried */
} wa__iq;

typedef struct wa__iq_table {
    char prefix[16]; /* "NNNNN.NNNNN-" as Baileys: two random 16-bit numbers */
    uint32_t seq;
    wa__iq pending[WA__MAX_PENDING_IQS];
    unsigned n;
} wa__iq_table;

/* New prefix, no pending iqs. */
void wa__iq_init(wa__iq_table *t);
/* Forget every pending iq (the connection ended). */
void wa__iq_clear(wa__iq_table *t);
/* A new id into id[WA__IQ_ID_MAX] (not tracked). */
void wa__iq_make_id(wa__iq_table *t, char *id);
/* Track an iq. 0 or WA_ELIMIT (table full). */
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

/* ---- pair.c -----------------------------------------------------------------------------------
 */

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

/* ---- helpers shared by the files --------------------------------------------------------------
 */

/* Children with raw bytes content. */
wa_node *wa__child_bytes(wa_arena *a, wa_node *parent, const char *tag, const void *p, size_t n);
/* Big-endian bytes of v (len 1..4) as content of a new child. */
wa_node *wa__child_be(wa_arena *a, wa_node *parent, const char *tag, uint32_t v, size_t len);

#endif
