/*
 * signal.h - the Signal layer of libwa: 1:1 sessions (X3DH + double ratchet) and group sender
 * keys over libsignal-protocol-c (Debian 2.3.3), with storage behind a callback interface keyed
 * by WhatsApp addresses. Used by libwa's client and by wasim's virtual phones.
 *
 * Facts followed (PROTOCOL.md section 6, checked against npm libsignal 6.0.0 and Baileys 7):
 *   - 32-byte Curve25519 keys on the wire; libsignal-protocol-c wants 0x05 || key. Every key in
 *     this API is 32 bytes; the prefix is added and stripped inside.
 *   - A signed prekey's signature is XEdDSA over the 33-byte form 0x05 || pub.
 *   - Private keys are clamped before they reach libsignal-protocol-c (it does not clamp).
 *   - One-time prekey ids are never 0 (libsignal-node drops a zero preKeyId from a pkmsg) and
 *     never 0xFFFFFF (libsignal-protocol-c never deletes a prekey with that id, treating it as a
 *     "last resort" key): ids live in 1..WA_SIGNAL_PREKEY_ID_MAX.
 *
 * Addresses and the libsignal name mapping (same as Baileys 7 jidToSignalProtocolAddress, so
 * that records keyed "name.device" are interchangeable with Baileys' stores):
 *     user "15551234567", PN,  device 2  -> name "15551234567",       device_id 2
 *     user "123456789012345", LID, dev 0 -> name "123456789012345_1", device_id 0
 *     hosted (128) and hosted LID (129)  -> name "user_128" / "user_129"
 * The suffix is the AD_JID domain type. A user never contains '_', '.', ':' or '@', so the
 * mapping is injective: the same number in the PN and LID spaces gives two sessions. A sender
 * key is named (group id, sender address); Baileys writes it "group::name::device".
 *
 * Identity policy: trust on first use, then WhatsApp's behaviour: a changed remote identity is
 * accepted (the session is rebuilt by the pkmsg or bundle that carries it), the new key is saved
 * and the change is reported through the identity-changed callback so that the application can
 * emit an event. The save and the report happen only after the whole operation succeeded (a
 * forged pkmsg with a foreign identity key but no valid MAC changes nothing).
 * wa_signal_set_identity_policy(WA_SIGNAL_IDENTITY_REJECT) refuses changes instead
 * (WA_ECRYPTO, reason "untrusted identity").
 *
 * Ownership: every pointer argument is borrowed for the duration of the call. Output wa_bufs
 * are appended to, only on success; before any state changes the functions reserve room in
 * them, so a full output buffer fails with WA_ELIMIT without consuming a message key.
 * Threads: a wa_signal has its own signal_context and may be used by one thread at a time.
 * The key-generation helpers sign with the process-wide context (crypto/curve25519.h): call
 * them on the loop thread.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_SIGNAL_SIGNAL_H
#define WA_SIGNAL_SIGNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define WA_SIGNAL_KEY_LEN  32 /* Curve25519 public or private key */
#define WA_SIGNAL_SIG_LEN  64 /* XEdDSA signature */
#define WA_SIGNAL_USER_MAX 128
/* "user" + "_129" + NUL */
#define WA_SIGNAL_NAME_MAX (WA_SIGNAL_USER_MAX + 5)
/* group id string (a group JID such as "120363...@g.us"), bytes without the NUL */
#define WA_SIGNAL_GROUP_MAX 128
/* Largest serialized record (session, prekey, sender key) accepted from a store. */
#define WA_SIGNAL_RECORD_MAX (256u * 1024u)
/* Largest plaintext accepted by the encrypt functions and ciphertext accepted by decrypt. */
#define WA_SIGNAL_MSG_MAX (4u * 1024u * 1024u)
/* Ciphertext bytes beyond the plaintext: pkmsg header, ratchet key, counters, MAC, CBC pad
 * (1:1), or key id, iteration and signature (group). Reserved in the output before encrypting. */
#define WA_SIGNAL_CT_OVERHEAD 256
/* Largest SenderKeyDistributionMessage accepted (they are about 80 bytes). */
#define WA_SIGNAL_SKDM_MAX      1024
#define WA_SIGNAL_PREKEY_ID_MAX 0xFFFFFEu
#define WA_SIGNAL_REG_ID_MAX    16380u
/* Largest address count of one wa_signal_encrypt_many / wa_signal_has_sessions call. */
#define WA_SIGNAL_BATCH_MAX 512
/* WhatsApp's message padding: 1..16 bytes, each equal to the count (Baileys 7
 * writeRandomPadMax16: (random & 0x0f) + 1). */
#define WA_SIGNAL_PAD_MAX 16

/* Server kind of an address; the values are the AD_JID domain types. */
enum wa_signal_server {
    WA_SIGNAL_PN = 0,          /* @s.whatsapp.net (phone number) */
    WA_SIGNAL_LID = 1,         /* @lid */
    WA_SIGNAL_HOSTED = 128,    /* @hosted */
    WA_SIGNAL_HOSTED_LID = 129 /* @hosted.lid */
};

typedef struct wa_signal_addr {
    char user[WA_SIGNAL_USER_MAX + 1]; /* NUL-terminated, non-empty */
    uint8_t server;                    /* enum wa_signal_server */
    uint16_t device;                   /* 0 = primary */
} wa_signal_addr;

/* Message types of 1:1 ciphertexts (the values of libsignal's ciphertext types). */
enum wa_signal_msg_type {
    WA_SIGNAL_MSG = 2,   /* <enc type='msg'>: SignalMessage */
    WA_SIGNAL_PKMSG = 3, /* <enc type='pkmsg'>: PreKeySignalMessage */
};

typedef struct wa_signal_keypair {
    uint8_t pub[WA_SIGNAL_KEY_LEN];
    uint8_t priv[WA_SIGNAL_KEY_LEN]; /* clamped */
} wa_signal_keypair;

typedef struct wa_signal_prekey {
    uint32_t id; /* 1..WA_SIGNAL_PREKEY_ID_MAX */
    wa_signal_keypair kp;
} wa_signal_prekey;

typedef struct wa_signal_signed_prekey {
    uint32_t id;
    wa_signal_keypair kp;
    uint8_t sig[WA_SIGNAL_SIG_LEN]; /* XEdDSA(identity priv, 0x05 || kp.pub) */
} wa_signal_signed_prekey;

/* A remote device's prekey bundle, as the server's <key> answer carries it. */
typedef struct wa_signal_bundle {
    uint32_t reg_id;
    uint8_t identity_pub[WA_SIGNAL_KEY_LEN];
    uint32_t spk_id;
    uint8_t spk_pub[WA_SIGNAL_KEY_LEN];
    uint8_t spk_sig[WA_SIGNAL_SIG_LEN];
    int has_prekey; /* the one-time prekey is optional */
    uint32_t prekey_id;
    uint8_t prekey_pub[WA_SIGNAL_KEY_LEN];
} wa_signal_bundle;

/* ---- addresses ---- */

/* Build an address. 0, or WA_EINVAL (empty user or one with characters outside printable
 * ASCII, or '_', '.', ':', '@'; unknown server kind), WA_ELIMIT (user too long). */
int wa_signal_addr_make(wa_signal_addr *out, const char *user, int server, uint16_t device);
/* The libsignal name ("user" or "user_<server>") into buf (NUL-terminated). Returns the length
 * or WA_ELIMIT / WA_EINVAL. WA_SIGNAL_NAME_MAX is always enough. */
int wa_signal_addr_name(const wa_signal_addr *a, char *buf, size_t cap);
/* Inverse of wa_signal_addr_name plus the device id. 0 or WA_EINVAL. */
int wa_signal_addr_from_name(wa_signal_addr *out, const char *name, size_t len, int32_t device);
/* 1 if equal, 0 otherwise. */
int wa_signal_addr_equal(const wa_signal_addr *a, const wa_signal_addr *b);

/* "msg" / "pkmsg" (NULL for other values), and back: 0 or WA_EINVAL. */
const char *wa_signal_type_name(int type);
int wa_signal_type_parse(const char *s, int *type);

/* ---- key generation (loop thread: signing uses the process-wide signal_context) ---- */

/* A fresh Curve25519 key pair (identity, signed prekey, ...). 0, WA_EIO or WA_ECRYPTO. */
int wa_signal_gen_keypair(wa_signal_keypair *out);
/* A registration id in 1..WA_SIGNAL_REG_ID_MAX. 0 or WA_EIO. */
int wa_signal_gen_registration_id(uint32_t *out);
/* A signed prekey with the given id (1..WA_SIGNAL_PREKEY_ID_MAX), signed by identity. */
int wa_signal_gen_signed_prekey(const wa_signal_keypair *identity, uint32_t id,
                                wa_signal_signed_prekey *out);
/* n one-time prekeys with consecutive ids from first_id (1..WA_SIGNAL_PREKEY_ID_MAX), wrapping
 * from WA_SIGNAL_PREKEY_ID_MAX to 1. out[0..n) written only on success (wiped on failure). */
int wa_signal_gen_prekeys(uint32_t first_id, size_t n, wa_signal_prekey *out);
/* The id after `id` in the prekey id space (WA_SIGNAL_PREKEY_ID_MAX -> 1, 0 -> 1). */
uint32_t wa_signal_prekey_id_next(uint32_t id);
/* Our own bundle, as the server hands it out (prekey may be NULL). */
void wa_signal_make_bundle(wa_signal_bundle *out, uint32_t reg_id,
                           const uint8_t identity_pub[WA_SIGNAL_KEY_LEN],
                           const wa_signal_signed_prekey *spk, const wa_signal_prekey *prekey);

/* libsignal's serialized records of our own keys (what a store hands back from
 * load_prekey_cb / load_signed_prekey_cb), for stores that keep raw keys: appended to out.
 * timestamp_ms is the signed prekey's creation time. Uses the process-wide signal_context: loop
 * thread only. 0, WA_EINVAL, WA_ELIMIT, WA_ENOMEM, WA_ECRYPTO. The records hold the private
 * key: wipe them (wa_buf_wipe_cleanup). */
int wa_signal_prekey_record(const wa_signal_prekey *pk, wa_buf *out);
int wa_signal_signed_prekey_record(const wa_signal_signed_prekey *spk, uint64_t timestamp_ms,
                                   wa_buf *out);

/* ---- storage interface ----
 *
 * Records are opaque blobs (libsignal-protocol-c's serialized records; they hold secrets: a
 * store should keep them private and wipe what it frees). Callbacks return 0 or a negative
 * WA_E* code (WA_ESTORE for an I/O failure); loads return 1 found / 0 not found / negative.
 * A load appends the blob to `out` (empty, capped at WA_SIGNAL_RECORD_MAX; the library wipes
 * and frees it). Every callback is required unless marked optional. A store may be called
 * several times per operation; an application that wants atomicity wraps each wa_signal call
 * in a transaction of its own.
 */
typedef struct wa_signal_store {
    void *user_data;

    /* Own identity key pair and registration id. */
    int (*get_identity_cb)(wa_signal_keypair *kp, uint32_t *reg_id, void *user_data);
    /* Remote identities (32-byte public keys). */
    int (*load_identity_cb)(const wa_signal_addr *addr, uint8_t key[WA_SIGNAL_KEY_LEN],
                            void *user_data);
    int (*save_identity_cb)(const wa_signal_addr *addr, const uint8_t key[WA_SIGNAL_KEY_LEN],
                            void *user_data);

    /* Sessions. delete returns 1 deleted / 0 absent / negative. */
    int (*load_session_cb)(const wa_signal_addr *addr, wa_buf *out, void *user_data);
    int (*store_session_cb)(const wa_signal_addr *addr, const uint8_t *rec, size_t len,
                            void *user_data);
    int (*delete_session_cb)(const wa_signal_addr *addr, void *user_data);
    /* Optional batch load for one send: for each i, found[i] = 1 and the blob appended to
     * outs[i], or found[i] = 0. Returns 0 or negative. */
    int (*load_sessions_cb)(const wa_signal_addr *addrs, size_t n, wa_buf *outs, uint8_t *found,
                            void *user_data);

    /* One-time prekeys and signed prekeys, by id. remove returns 0 even if absent. */
    int (*load_prekey_cb)(uint32_t id, wa_buf *out, void *user_data);
    int (*store_prekey_cb)(uint32_t id, const uint8_t *rec, size_t len, void *user_data);
    int (*remove_prekey_cb)(uint32_t id, void *user_data);
    int (*load_signed_prekey_cb)(uint32_t id, wa_buf *out, void *user_data);
    int (*store_signed_prekey_cb)(uint32_t id, const uint8_t *rec, size_t len, void *user_data);
    int (*remove_signed_prekey_cb)(uint32_t id, void *user_data);

    /* Sender keys, by (group id NUL-terminated, sender address). delete: 1 / 0 / negative. */
    int (*load_sender_key_cb)(const char *group, const wa_signal_addr *sender, wa_buf *out,
                              void *user_data);
    int (*store_sender_key_cb)(const char *group, const wa_signal_addr *sender, const uint8_t *rec,
                               size_t len, void *user_data);
    int (*delete_sender_key_cb)(const char *group, const wa_signal_addr *sender, void *user_data);
} wa_signal_store;

/* ---- the Signal handle ---- */

typedef struct wa_signal wa_signal;

/* Create a handle over `store` (the struct is copied; store->user_data must outlive the
 * handle). Creates its own signal_context (wa_signal_ctx_new). 0, WA_EINVAL (a required
 * callback is missing), WA_ENOMEM or WA_ECRYPTO. */
int wa_signal_new(wa_signal **out, const wa_signal_store *store);
void wa_signal_free(wa_signal *s);

enum wa_signal_identity_policy {
    WA_SIGNAL_IDENTITY_ACCEPT = 0, /* default: save the new identity, report the change */
    WA_SIGNAL_IDENTITY_REJECT = 1  /* refuse: WA_ECRYPTO "untrusted identity" */
};
void wa_signal_set_identity_policy(wa_signal *s, int policy);

/* Called after an operation that replaced a stored remote identity succeeded (the new key is
 * already saved). Keys are borrowed for the call. */
typedef void (*wa_signal_identity_changed_cb)(const wa_signal_addr *addr,
                                              const uint8_t old_key[WA_SIGNAL_KEY_LEN],
                                              const uint8_t new_key[WA_SIGNAL_KEY_LEN],
                                              void *user_data);
void wa_signal_set_identity_changed_cb(wa_signal *s, wa_signal_identity_changed_cb cb,
                                       void *user_data);

/* Why the last failing call on s failed ("duplicate message", "no session", "invalid MAC or
 * no matching session state", ...); "" after a success. Never NULL; static storage. */
const char *wa_signal_last_error(const wa_signal *s);

/* Serialize and store our keys (libsignal record format) through the store callbacks. */
int wa_signal_save_prekeys(wa_signal *s, const wa_signal_prekey *pk, size_t n);
int wa_signal_save_signed_prekey(wa_signal *s, const wa_signal_signed_prekey *spk);
/* The public key of stored one-time prekey `id` (for an upload or a bundle). 0, WA_ENOTFOUND. */
int wa_signal_load_prekey_public(wa_signal *s, uint32_t id, uint8_t pub[WA_SIGNAL_KEY_LEN]);

/* ---- 1:1 sessions ---- */

/* Start (or restart) a session with addr from its bundle: verifies the signed prekey signature
 * (WA_ECRYPTO "invalid signed prekey signature"), creates the session; the next encrypt gives a
 * pkmsg. 0 or negative WA_E*. */
int wa_signal_process_bundle(wa_signal *s, const wa_signal_addr *addr, const wa_signal_bundle *b);

/* Encrypt plaintext (already padded: wa_signal_pad) for addr. *type = WA_SIGNAL_PKMSG until the
 * peer has answered, then WA_SIGNAL_MSG; the ciphertext is appended to out.
 * WA_ENOTFOUND "no session", WA_ELIMIT (len > WA_SIGNAL_MSG_MAX or out too small), ... */
int wa_signal_encrypt(wa_signal *s, const wa_signal_addr *addr, const uint8_t *plain, size_t len,
                      int *type, wa_buf *out);

/* Decrypt a msg or pkmsg from addr, appending the (still padded) plaintext to out. A pkmsg
 * creates the session and consumes its one-time prekey. Errors:
 *   WA_EEXIST     duplicate message (already decrypted: acknowledge, do not ask for a retry)
 *   WA_ENOTFOUND  no session (msg) / unknown prekey or signed prekey id (pkmsg)
 *   WA_ECRYPTO    invalid MAC or no matching session state, untrusted identity, bad key
 *   WA_EPROTO / WA_EPROTOBUF  malformed message; WA_EUNSUPPORTED  unknown message version
 *   WA_ELIMIT, WA_ENOMEM, WA_EINVAL, or a store callback's code. */
int wa_signal_decrypt(wa_signal *s, const wa_signal_addr *addr, int type, const uint8_t *ct,
                      size_t len, wa_buf *out);

/* 1 if a session record exists for addr, 0 if not, negative on store failure. */
int wa_signal_has_session(wa_signal *s, const wa_signal_addr *addr);
/* Batch form for one send (uses load_sessions_cb when set): has[i] = 0/1. n <=
 * WA_SIGNAL_BATCH_MAX. 0 or negative. */
int wa_signal_has_sessions(wa_signal *s, const wa_signal_addr *addrs, size_t n, uint8_t *has);
/* Delete the session with addr. 0 (also when there was none) or negative. */
int wa_signal_delete_session(wa_signal *s, const wa_signal_addr *addr);

/* One result of wa_signal_encrypt_many. */
typedef struct wa_signal_encrypted {
    int err;   /* 0, or this device's WA_E* (e.g. WA_ENOTFOUND: no session) */
    int type;  /* WA_SIGNAL_MSG / WA_SIGNAL_PKMSG when err == 0 */
    wa_buf ct; /* initialised by the caller (wa_buf_init); ciphertext appended when err == 0 */
} wa_signal_encrypted;

/* Encrypt one plaintext for n devices (a fan-out send), loading all sessions with one
 * load_sessions_cb call when the store has it. Per-device failures are reported in res[i].err
 * and do not stop the others. Returns 0, or negative for a failure of the whole call
 * (WA_EINVAL, WA_ELIMIT for n > WA_SIGNAL_BATCH_MAX, WA_ENOMEM, a batch load failure). */
int wa_signal_encrypt_many(wa_signal *s, const wa_signal_addr *addrs, size_t n,
                           const uint8_t *plain, size_t len, wa_signal_encrypted *res);

/* wa_signal_encrypt_many with two plaintexts in one batch: device i gets plain[which[i]]
 * (which[i] is 0 or 1). A send uses it for the peer's devices (the message) and our own other
 * devices (the deviceSentMessage) with a single load of every session. */
int wa_signal_encrypt_fanout(wa_signal *s, const wa_signal_addr *addrs, size_t n,
                             const uint8_t *const plain[2], const size_t len[2],
                             const uint8_t *which, wa_signal_encrypted *res);

/* ---- groups (sender keys) ----
 * group: NUL-terminated group id, 1..WA_SIGNAL_GROUP_MAX bytes (the group JID string). */

/* Our SenderKeyDistributionMessage for group (creating our sender key if there is none),
 * appended to skdm: it goes into Message.senderKeyDistributionMessage
 * .axolotlSenderKeyDistributionMessage, encrypted 1:1 to each member device. */
int wa_signal_group_create_skdm(wa_signal *s, const char *group, const wa_signal_addr *own,
                                wa_buf *skdm);
/* Install a sender's distribution message. WA_EPROTO for a malformed one. */
int wa_signal_group_process_skdm(wa_signal *s, const char *group, const wa_signal_addr *sender,
                                 const uint8_t *skdm, size_t len);
/* Encrypt (padded) plaintext with our sender key: a SenderKeyMessage (<enc type='skmsg'>)
 * appended to out. WA_ENOTFOUND if we have no sender key (call create_skdm first). */
int wa_signal_group_encrypt(wa_signal *s, const char *group, const wa_signal_addr *own,
                            const uint8_t *plain, size_t len, wa_buf *out);
/* Decrypt a sender's skmsg, appending the padded plaintext to out. Errors as
 * wa_signal_decrypt (WA_ENOTFOUND: no sender key from this sender; WA_ECRYPTO: unknown key id,
 * bad signature or bad ciphertext; WA_EEXIST: duplicate). */
int wa_signal_group_decrypt(wa_signal *s, const char *group, const wa_signal_addr *sender,
                            const uint8_t *ct, size_t len, wa_buf *out);
/* 1 if a sender key record exists for (group, sender), 0 if not, negative on failure. */
int wa_signal_group_has_sender_key(wa_signal *s, const char *group, const wa_signal_addr *sender);
/* Forget (group, sender)'s sender key (ours: the next create_skdm makes a new one, as after a
 * member left). 0 or negative. */
int wa_signal_group_delete_sender_key(wa_signal *s, const char *group,
                                      const wa_signal_addr *sender);

/* ---- WhatsApp padding ---- */

/* Append plain || n bytes of value n, n random in 1..WA_SIGNAL_PAD_MAX, to out. 0, WA_ELIMIT,
 * WA_ENOMEM, WA_EIO. */
int wa_signal_pad(const uint8_t *plain, size_t len, wa_buf *out);
/* Length of p without its padding: the last byte n must be 1..len and the last n bytes must all
 * equal n (whatsmeow's check; Baileys only checks n <= len). 0 with *plain_len set, or
 * WA_EPROTO (empty, n == 0, n > len, or a mismatching pad byte). */
int wa_signal_unpad(const uint8_t *p, size_t len, size_t *plain_len);

#endif
