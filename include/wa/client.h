/*
 * wa/client.h - libwa's WhatsApp Web multi-device client: one linked device (one account of a
 * wa_store) that pairs (QR or phone-number code), logs in and stays connected through every
 * kind of disconnect.
 *
 * THREADING AND OWNERSHIP
 *   - A client lives on one uv_loop_t and every call and callback happens on that loop's
 *     thread. Many clients share one loop (and one wa_store); nothing in libwa blocks the loop
 *     except short SQLite calls. Several loops in several threads each need their own
 *     wa_store (one SQLite connection per thread, same file).
 *   - The loop and the store are borrowed: both must outlive the client. The config and
 *     callbacks structs are copied by wa_client_new (strings too); user_data is passed back.
 *   - Strings and nodes given to callbacks are valid only during the callback.
 *   - Any function may be called from inside a callback, wa_client_free included: the client
 *     then stops at once, no further callback runs, and its memory is released by the loop
 *     once its handles are closed (run the loop until it has no more work).
 *
 * LIFE CYCLE
 *   wa_client_new -> wa_client_start -> [qr... | pair_code] -> paired -> connected
 *                 -> disconnected{reason, will_retry} -> (retry) -> connected ...
 *   wa_client_stop closes the connection and cancels retries (disconnected{WA_DISC_STOPPED,
 *   will_retry 0} if a connection was up); wa_client_start may be called again once that
 *   event has arrived. An account without credentials
 *   starts pairing (QR by default, phone code after wa_client_pair_phone).
 *
 * RECONNECT POLICY (every disconnect is reported with its reason and whether it retries)
 *   515 restart required          -> reconnect at once (normal after pairing)
 *   network loss, timeouts, dead  -> reconnect after an exponential backoff with jitter,
 *   link, server errors (5xx)        capped (reconnect_base_ms .. reconnect_max_ms)
 *   440 replaced                  -> stop: another connection took over (no fight loop)
 *   401 logged out                -> wipe the account's credentials, logged_out, stop
 *   403 banned, 405 client version refused, 411 downgrade -> stop with the reason
 *   pairing refs exhausted, pairing refused, bad certificate chain -> stop
 *   proxy authentication failed   -> stop (an unreachable proxy is a network error: retry)
 *
 * MESSAGING (end-to-end encrypted, Signal over libsignal-protocol-c, state in the wa_store)
 *   Receiving: every <message> is decrypted in order (1:1 sessions and group sender keys, for
 *   phone-number and LID senders alike: one Signal state per device, keyed by the LID once it
 *   is known), unpadded and decoded; then, in this order:
 *     1. the new Signal state and the message id (with its plaintext) commit in one store
 *        transaction (shared by the messages of one socket read: one commit per burst);
 *     2. the `message` callback runs (in order, after that commit);
 *     3. the id is marked handed over (in memory at once; in the store with the next message's
 *        commit, or within 250 ms: a crash before that can only repeat it flagged
 *        maybe_repeat); 4. the receipt and the ack leave.
 *   The server keeps a message until its receipt, so a process that dies anywhere in 1-4 gets
 *   it again at the next login: a redelivered id is recognised and not decrypted again; if it
 *   had not been handed over yet, its committed plaintext is, flagged maybe_repeat (a crash
 *   between the callback and the mark repeats it: at least once, every repeat flagged; see
 *   maybe_repeat for exactly once at the application). Messages that cannot be decrypted
 *   raise `decrypt_failed` and send a retry receipt (the sender rebuilds the session and
 *   re-sends; asked again, with our keys, if no re-send comes); malformed content is nacked.
 *   Neither affects the connection or any other session. Sending: wa_client_send_* return the
 *   message id at once; the `sent` callback reports the server's ack (or the failure). Device
 *   lists (usync), prekey bundles and our sender keys are fetched and distributed as needed; a
 *   retry receipt from a peer device is honoured from the store's recent sends.
 *
 * MEMORY: an idle connected client keeps its struct, the stream (TLS engine), the wire's
 * transport keys and one timer; buffers and the table of iqs in flight are freed when empty,
 * keys stay in the store. The Signal handle is freed after a keep-alive interval without
 * messaging; device-list and group caches (bounded) stay until the connection ends.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_CLIENT_H
#define WA_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "wa/store.h"

typedef struct wa_client wa_client;
struct wa_node; /* a decoded stanza (lib/bnode/node.h); opaque here */

/* Defaults. */
#define WA_CLIENT_DEFAULT_URL "wss://web.whatsapp.com/ws/chat"
/* The WhatsApp Web version Baileys 7.0.0-rc14 sends (lib/Defaults/index.js). */
#define WA_CLIENT_DEFAULT_VERSION            "2.3000.1043857760"
#define WA_CLIENT_DEFAULT_ACCOUNT            "default"
#define WA_CLIENT_DEFAULT_KEEPALIVE_MS       30000
#define WA_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS 20000
#define WA_CLIENT_DEFAULT_IQ_TIMEOUT_MS      60000
#define WA_CLIENT_DEFAULT_RECONNECT_BASE_MS  1000
#define WA_CLIENT_DEFAULT_RECONNECT_MAX_MS   60000

/* Why a connection ended (wa_client_disconnect_info.reason). */
enum wa_disconnect_reason {
    WA_DISC_STOPPED = 1,  /* wa_client_stop / wa_client_free */
    WA_DISC_RESTART,      /* 515 restart required: reconnects at once */
    WA_DISC_NETWORK,      /* connect failed, connection lost or closed by the peer */
    WA_DISC_TIMEOUT,      /* connect, handshake or iq timeout */
    WA_DISC_DEAD_LINK,    /* nothing received for keepalive + grace (no pong) */
    WA_DISC_SERVER,       /* server closing (xmlstreamend) or a 5xx stream error/failure */
    WA_DISC_REPLACED,     /* 440: another connection of this device took over */
    WA_DISC_LOGGED_OUT,   /* 401: the device was unlinked; credentials wiped */
    WA_DISC_BANNED,       /* 403 */
    WA_DISC_BAD_VERSION,  /* 405: the server refused our client version */
    WA_DISC_DOWNGRADE,    /* 411: multi-device mismatch */
    WA_DISC_CERT,         /* TLS certificate or Noise certificate chain rejected */
    WA_DISC_PROTOCOL,     /* the server sent something malformed or unexpected */
    WA_DISC_PAIR_EXPIRED, /* every QR ref / the pairing code expired */
    WA_DISC_PAIR_FAILED,  /* pair-success did not verify, or the code pairing failed */
    WA_DISC_STORE,        /* the store failed (cannot read/write credentials) */
    WA_DISC_PROXY_AUTH,   /* the proxy refused our credentials (or wants some): no retry */
};

typedef struct wa_client_disconnect_info {
    int reason;        /* enum wa_disconnect_reason */
    int code;          /* WhatsApp/Baileys status code: 515, 428, 408, 440, 401, 403, ... */
    const char *text;  /* readable detail ("restart required", "certificate chain ...") */
    int will_retry;    /* 1: the client reconnects by itself */
    unsigned retry_ms; /* delay before that reconnect (0 = at once) */
} wa_client_disconnect_info;

typedef struct wa_client_config {
    const char *account;     /* account name in the store; NULL = "default" */
    const char *ws_url;      /* NULL = WA_CLIENT_DEFAULT_URL (ws:// or wss://host[:port]/path) */
    const uint8_t *root_key; /* 32-byte trusted Noise root; NULL = WhatsApp's real root */
    const char *ca_file;     /* extra trusted CA (PEM) for wss://, or NULL */
    const char *proxy;       /* socks5://, socks5h:// or http:// proxy URL, or NULL */
    const char *version;     /* "2.3000.x"; NULL = WA_CLIENT_DEFAULT_VERSION */
    const char *push_name;   /* name shown to contacts (optional) */
    const char *os_name;     /* DeviceProps.os, shown on the phone; NULL = "Mac OS" */
    unsigned keepalive_ms;   /* ping interval; 0 = default */
    unsigned connect_timeout_ms;  /* DNS+TCP+TLS and WebSocket+Noise+login, each; 0 = default */
    unsigned iq_timeout_ms;       /* 0 = default */
    unsigned reconnect_base_ms;   /* first backoff step; 0 = default */
    unsigned reconnect_max_ms;    /* backoff cap; 0 = default */
    unsigned prekey_upload_count; /* one-time prekeys per refill; 0 = 50 (a server with none
                                   * gets 812 at once, as Baileys 7 and whatsmeow) */
    int dict_version;             /* binary node dictionary; 0 = 3 */
} wa_client_config;

/* ---- messaging (part 2) --------------------------------------------------------------------- */

#define WA_CLIENT_MSG_ID_MAX   64 /* a message id with its NUL ("3EB0" + 18 hex digits sent) */
#define WA_CLIENT_MENTIONS_MAX 64

/* What an incoming message carries (wa_client_message.kind). */
enum wa_client_msg_kind {
    WA_MSG_TEXT = 1, /* text (conversation or extended text; quoted/mentions may be set) */
    WA_MSG_REACTION, /* text = the emoji ("" removes a reaction), target_* = the message */
    WA_MSG_EDIT,     /* text = the new text, target_id = the edited message */
    WA_MSG_REVOKE,   /* delete for everyone: target_id = the deleted message */
    WA_MSG_OTHER,    /* another content type: see raw */
    WA_MSG_LOCATION, /* latitude, longitude, location_name, location_address */
    WA_MSG_CONTACT,  /* contact_name (displayName), vcard */
};

/* An incoming end-to-end encrypted message, decrypted, its state committed to the store. Every
 * string is valid during the callback only; absent ones are "" (never NULL). */
typedef struct wa_client_message {
    const char *id;
    const char *chat;       /* the conversation: the peer's user JID (1:1) or the group JID */
    const char *sender;     /* the sending device as the stanza named it (PN or LID form) */
    const char *sender_pn;  /* the sender's phone-number user JID when known */
    const char *sender_lid; /* the sender's LID user JID when known */
    const char *push_name;
    int64_t timestamp; /* unix seconds (the stanza's t) */
    int from_me;       /* sent by another device of this account (chat = its recipient) */
    int offline;       /* delivered from the server's offline queue */
    /* 1: an earlier run of the client committed this message and stopped (crash, SIGKILL)
     * before its "handed over" mark was durable, so the application MAY have seen it already.
     * The contract: every message is handed over at least once; a repeat comes only after such
     * a stop in the window between the callback and the mark (no order of the two closes it
     * for a sink outside the store's transaction) and is always flagged (once per such stop);
     * the one exception: after a stale store snapshot is restored, ids handed over after the
     * snapshot can come again unflagged. An application that records the (chat, id) durably in
     * its callback and drops the ids it knows gets every message exactly once, as
     * `wa-cli listen --inbox` does (wagate's store checks the flagged ones: src/session.c). */
    int maybe_repeat;
    int kind; /* enum wa_client_msg_kind */
    const char *text;
    const char *quoted_id; /* reply: the quoted message id, its sender and text */
    const char *quoted_sender;
    const char *quoted_text;
    const char *const *mentions; /* mentioned JIDs */
    size_t n_mentions;
    const char *target_id; /* reaction / edit / revoke: the message it is about */
    const char *target_sender;
    int target_from_me;
    const uint8_t *raw; /* the serialized Message protobuf (after unwrapping) */
    size_t raw_len;
    double latitude, longitude;   /* WA_MSG_LOCATION (degrees) */
    const char *location_name;    /* "" when absent */
    const char *location_address; /* "" when absent */
    const char *contact_name;     /* WA_MSG_CONTACT: displayName */
    const char *vcard;            /* the vCard text */
} wa_client_message;

/* Receipt kinds (wa_client_receipt.type). */
enum wa_client_receipt_type {
    WA_RECEIPT_DELIVERED = 1,
    WA_RECEIPT_READ, /* read (or read-self: another device of ours read it) */
    WA_RECEIPT_PLAYED,
    WA_RECEIPT_RETRY, /* the peer could not decrypt: the client re-sends by itself */
    WA_RECEIPT_OTHER,
};

typedef struct wa_client_receipt {
    int type;              /* enum wa_client_receipt_type */
    const char *type_name; /* the stanza's type ("" for a delivery) */
    const char *chat;      /* 1:1: the peer's user JID; groups: the group */
    const char *from;      /* the device that sent the receipt */
    const char *const *ids;
    size_t n_ids;
    int64_t timestamp;
} wa_client_receipt;

/* Why a message could not be handed over (wa_client_decrypt_failure). The client has already
 * answered: a retry receipt (the sender re-sends) or, past the retry limit, an ack. */
typedef struct wa_client_decrypt_failure {
    const char *id;
    const char *chat;
    const char *sender;
    const char *enc_type; /* "pkmsg", "msg", "skmsg" or "" */
    int err;              /* WA_E* */
    const char *reason;   /* readable: "no session", "invalid MAC ...", "bad padding", ... */
    int retry_count;      /* the count of the retry receipt sent (0: none sent) */
    int gave_up;          /* 1: the retry limit is reached: no more retry receipts, the message
                           * is lost (id and sender are set; chat may be the sender's) */
} wa_client_decrypt_failure;

/* Options of a send (NULL = none). */
typedef struct wa_client_send_opts {
    const char *id;              /* message id to use; NULL = a new "3EB0..." id */
    const char *quoted_id;       /* reply to this message */
    const char *quoted_sender;   /* its sender (JID; NULL: the chat peer) */
    const char *quoted_text;     /* its text (shown in the reply; optional) */
    const char *const *mentions; /* JIDs mentioned in the text ("@NUMBER" in it) */
    size_t n_mentions;
} wa_client_send_opts;

/* One result of wa_client_check_phones. */
typedef struct wa_client_contact {
    const char *phone; /* as asked (digits) */
    const char *jid;   /* "NUMBER@s.whatsapp.net" */
    int exists;        /* 1: on WhatsApp */
    const char *lid;   /* the LID user JID when the server told it, else "" */
} wa_client_contact;

/* ---- groups --------------------------------------------------------------------------------- */

/* A member of a group, or one participant of an add/remove/promote/demote. */
typedef struct wa_client_group_participant {
    const char *jid; /* the member's user JID as the server names it */
    const char *lid; /* its LID user JID when given, else "" */
    int admin;       /* 0 member, 1 admin, 2 superadmin */
    int error;       /* participant operations: 0 done, else the server's code (403, 404, 409) */
} wa_client_group_participant;

/* Group metadata (create / metadata answers), or the outcome of a participant operation
 * (then only jid and participants are set). */
typedef struct wa_client_group {
    const char *jid; /* "120363...@g.us" */
    const char *subject;
    const char *creator;
    int64_t creation;
    const wa_client_group_participant *participants;
    size_t n_participants;
} wa_client_group;

/* Answer of a group call: err 0 and g, or err WA_E* (WA_EPROTO: the server refused, WA_ECLOSED:
 * the connection ended first) and g NULL. */
typedef void (*wa_client_group_cb)(wa_client *c, int err, const wa_client_group *g,
                                   void *user_data);

/* A change to a group someone else made (a w:gp2 notification). */
typedef struct wa_client_group_update {
    const char *jid;     /* the group */
    const char *action;  /* "create", "add", "remove", "promote", "demote", "subject", "leave",
                            or the notification's child tag */
    const char *actor;   /* who did it ("" when not given) */
    const char *subject; /* create / subject: the (new) subject, else "" */
    const char *const *participants; /* add / remove / promote / demote: who */
    size_t n_participants;
    int64_t timestamp;
} wa_client_group_update;

/* Answer of wa_client_check_phones: err 0 and n results, or err WA_E* (then n == 0). */
typedef void (*wa_client_check_cb)(wa_client *c, int err, const wa_client_contact *res, size_t n,
                                   void *user_data);

/* ---- presence and chat states --------------------------------------------------------------- */

/* Chat states (typing indicators). */
enum wa_client_chat_state {
    WA_CHAT_COMPOSING = 1, /* typing */
    WA_CHAT_PAUSED,        /* stopped typing */
    WA_CHAT_RECORDING,     /* recording audio (<composing media='audio'/>) */
};

/* Own availability (wa_client_send_presence). */
enum wa_client_presence_type {
    WA_PRESENCE_AVAILABLE = 1,
    WA_PRESENCE_UNAVAILABLE,
};

/* A <presence> of a subscribed contact. */
typedef struct wa_client_presence_update {
    const char *from;  /* the contact's user JID as the server named it (PN or LID) */
    int available;     /* 1 online, 0 offline */
    int64_t last_seen; /* unix seconds of "last seen"; 0 unknown (or hidden) */
} wa_client_presence_update;

/* A <chatstate> from a contact. */
typedef struct wa_client_chat_state_update {
    const char *chat;   /* the peer's user JID (1:1) or the group JID */
    const char *sender; /* who is typing (the peer, or the group participant) */
    int state;          /* enum wa_client_chat_state; 0 = idle (an unknown state) */
} wa_client_chat_state_update;

/* Every callback is optional (NULL) and takes user_data last. */
typedef struct wa_client_callbacks {
    /* A QR text to show (a new one as refs rotate: first after 60 s, then every 20 s). */
    void (*qr)(wa_client *c, const char *text, void *user_data);
    /* The 8-character code to type on the phone (phone-number pairing). */
    void (*pair_code)(wa_client *c, const char *code, void *user_data);
    /* Pairing succeeded and the new identity is durable in the store. lid may be "". */
    void (*paired)(wa_client *c, const char *jid, const char *lid, void *user_data);
    /* Logged in and ready (prekeys checked, passive mode left). */
    void (*connected)(wa_client *c, void *user_data);
    void (*disconnected)(wa_client *c, const wa_client_disconnect_info *info, void *user_data);
    /* The device was logged out (401); the account's credentials are already wiped. */
    void (*logged_out)(wa_client *c, void *user_data);
    /* Hook for later parts: every stanza after login, before the client's own handling.
     * Return 1 to take it over (the client then neither handles nor acks it), 0 to let the
     * client go on. */
    int (*stanza)(wa_client *c, const struct wa_node *node, void *user_data);
    /* A message (after its decryption was committed; its receipt leaves after this returns). */
    void (*message)(wa_client *c, const wa_client_message *m, void *user_data);
    /* A receipt for messages we sent (delivered, read, ...). */
    void (*receipt)(wa_client *c, const wa_client_receipt *r, void *user_data);
    /* An incoming message could not be decrypted or decoded. */
    void (*decrypt_failed)(wa_client *c, const wa_client_decrypt_failure *f, void *user_data);
    /* A send finished: err 0 once the server acknowledged message id, else why it failed
     * (WA_ETIMEDOUT, WA_ECLOSED: the connection ended first, WA_ENOTFOUND: no device of the
     * peer, WA_EPROTO: the server refused it, ...). */
    void (*sent)(wa_client *c, const char *id, int err, void *user_data);
    /* A group changed (someone else's action; our own come back through their callbacks). */
    void (*group_update)(wa_client *c, const wa_client_group_update *u, void *user_data);
    /* A contact we subscribed to (wa_client_subscribe_presence) came online or went away. */
    void (*presence)(wa_client *c, const wa_client_presence_update *p, void *user_data);
    /* Someone is typing / recording / stopped, in a 1:1 chat or a group. */
    void (*chat_state)(wa_client *c, const wa_client_chat_state_update *s, void *user_data);
    /* A contact's identity key changed (a new phone/reinstall): sessions with it were reset.
     * Raised for <notification type='encrypt'><identity/> and for a prekey message (or bundle)
     * with another key than the stored one, once per change (the two paths, and the user's
     * several devices, are not reported twice within a minute). jid: the user JID without
     * device, in the phone-number form when known, else the LID form. */
    void (*identity_changed)(wa_client *c, const char *jid, void *user_data);
    /* The server accepted new keys and the store holds them: count one-time prekeys uploaded,
     * or 0 after a signed prekey rotation. A backup of the store should follow: a copy older
     * than this lacks keys the server now hands out to senders. */
    void (*keys_uploaded)(wa_client *c, unsigned count, void *user_data);
    /* The server answered a keep-alive ping after rtt_ms milliseconds (loop time between the
     * ping leaving and its answer being read). */
    void (*keepalive)(wa_client *c, unsigned rtt_ms, void *user_data);
} wa_client_callbacks;

/* Create a client for account cfg->account of `store` (created in the store if missing).
 * Nothing happens until wa_client_start. Returns 0 and *out; WA_EINVAL (bad URL, version,
 * malformed proxy URL...), WA_EUNSUPPORTED (a proxy scheme other than socks5, socks5h, http),
 * WA_EIO (the CA file cannot be loaded), WA_ESTORE, WA_ENOMEM. */
int wa_client_new(uv_loop_t *loop, wa_store *store, const wa_client_config *cfg,
                  const wa_client_callbacks *cbs, void *user_data, wa_client **out);
/* Connect (log in, or start pairing if the account has no credentials). 0, WA_ESTATE if
 * already started. */
int wa_client_start(wa_client *c);
/* Disconnect and cancel retries. Idempotent. Returns 1 when a connection was open or being
 * made: its disconnected{WA_DISC_STOPPED, will_retry 0} event follows from the loop; 0 when
 * there was none (no event follows). */
int wa_client_stop(wa_client *c);
/* Stop and release the client (see THREADING). NULL allowed. */
void wa_client_free(wa_client *c);

/* Pair by phone-number code instead of QR: call before wa_client_start on an unpaired
 * account. phone: digits only, with country code (e.g. "15551234567"). The code arrives in
 * the pair_code callback. 0, WA_EINVAL, WA_ESTATE (started or already paired). */
int wa_client_pair_phone(wa_client *c, const char *phone);

/* Rotate the signed prekey: a new one (id + 1) becomes current in the store (older ones stay
 * readable for late prekey messages) and is sent to the server (<iq xmlns='encrypt'><rotate>).
 * WhatsApp clients do this periodically (weekly to monthly); this is the hook for that
 * schedule. 0, WA_ESTATE when not connected, WA_ESTORE, WA_ECRYPTO. */
int wa_client_rotate_signed_prekey(wa_client *c);

/* Send a stanza on the logged-in connection (for later parts). 0, WA_ESTATE when not
 * connected, encoder errors. */
int wa_client_send_node(wa_client *c, const struct wa_node *node);

/* ---- sending (connected clients only) ----------------------------------------------------
 * A send encrypts for every device of the peer and every other device of ours (fetching device
 * lists and prekey bundles as needed), sends one stanza and reports the server's ack through
 * the `sent` callback. id_out (WA_CLIENT_MSG_ID_MAX bytes) receives the message id at once.
 * `to` / `chat` is a user JID ("NUMBER@s.whatsapp.net", "LID@lid") or a bare phone number.
 * Returns 0, WA_ESTATE (not connected), WA_EINVAL (bad JID, empty text), WA_ELIMIT (too many
 * sends in flight: WA_CLIENT_MAX_SENDS), WA_ENOMEM. */
#define WA_CLIENT_MAX_SENDS 64
int wa_client_send_text(wa_client *c, const char *to, const char *text,
                        const wa_client_send_opts *opts, char *id_out);
/* React to message target_id (sent by target_sender, or by us when target_from_me) with emoji
 * ("" removes the reaction). */
int wa_client_send_reaction(wa_client *c, const char *chat, const char *target_id,
                            const char *target_sender, int target_from_me, const char *emoji,
                            char *id_out);
/* Edit our message target_id to text. */
int wa_client_send_edit(wa_client *c, const char *chat, const char *target_id, const char *text,
                        char *id_out);
/* Delete our message target_id for everyone. */
int wa_client_send_revoke(wa_client *c, const char *chat, const char *target_id, char *id_out);

/* A location (latitude/longitude in degrees; name and address may be NULL). */
typedef struct wa_client_location {
    double latitude, longitude;
    const char *name, *address;
} wa_client_location;
/* Send a location: Message { locationMessage { degreesLatitude, degreesLongitude, name?,
 * address? } }, stanza type='text' (as Baileys 7 and whatsmeow). WA_EINVAL: latitude outside
 * [-90, 90], longitude outside [-180, 180], not finite, or a name/address over 1 KiB. */
int wa_client_send_location(wa_client *c, const char *to, const wa_client_location *loc,
                            const wa_client_send_opts *opts, char *id_out);
/* Send a contact card: Message { contactMessage { displayName, vcard } }, stanza type='media'
 * with <enc mediatype='vcard'> (as Baileys 7 and whatsmeow). display_name non-empty; vcard
 * non-empty, at most 64 KiB. Only opts->id and a reply (quoted_*) are used. */
int wa_client_send_contact(wa_client *c, const char *to, const char *display_name,
                           const char *vcard, const wa_client_send_opts *opts, char *id_out);

/* Typing indicator in chat `to` (user JID, phone number or group JID): state is
 * WA_CHAT_COMPOSING (<chatstate to><composing/></chatstate>), WA_CHAT_PAUSED (<paused/>) or
 * WA_CHAT_RECORDING (<composing media='audio'/>). 0, WA_ESTATE (not connected), WA_EINVAL. */
int wa_client_send_chat_state(wa_client *c, const char *to, int state);
/* Our own availability: <presence type='available'|'unavailable' name=PUSH_NAME/> (name only
 * when config.push_name is set). While available, delivery receipts are plain ones (not
 * type='inactive'), as Baileys and whatsmeow do. 0, WA_ESTATE, WA_EINVAL. */
int wa_client_send_presence(wa_client *c, int type);
/* Ask for the presence of a contact (user JID or phone number): <presence type='subscribe'
 * to=JID/>. Updates come through the presence callback (the server answers with the current
 * one). WhatsApp sends them only while we are available ourselves. 0, WA_ESTATE, WA_EINVAL. */
int wa_client_subscribe_presence(wa_client *c, const char *jid);

/* Read receipts for messages of chat (ids[0..n), n >= 1), sent by sender (a device JID in
 * groups; NULL in 1:1). The account's "readreceipts" privacy setting, fetched once per
 * connection, decides the type, as on WhatsApp: "all" sends type='read' (the sender sees blue
 * ticks); "none" sends type='read-self' (only our own devices learn it). Until the client has
 * had a first answer (the first connection's answer not in yet, or the fetch failed)
 * 'read-self' is sent: the privacy-safe default; after a reconnect the last answer holds until
 * the new one. 0, WA_ESTATE, WA_EINVAL. */
int wa_client_mark_read(wa_client *c, const char *chat, const char *sender, const char *const *ids,
                        size_t n);

/* Ask which phone numbers (digits, with country code) are on WhatsApp (usync contact query).
 * The answer comes through cb (once; also on failure). 0, WA_ESTATE, WA_EINVAL, WA_ELIMIT (n >
 * WA_CLIENT_CHECK_MAX or too many queries in flight). */
#define WA_CLIENT_CHECK_MAX 256
int wa_client_check_phones(wa_client *c, const char *const *phones, size_t n, wa_client_check_cb cb,
                           void *user_data);

/* ---- groups (connected clients only) ---------------------------------------------------------
 * Messages to a group: wa_client_send_text & co. with the group JID ("120363...@g.us"). The
 * first send (and the first after a member was removed) distributes our sender key to every
 * member device; later ones reach the devices that did not have it yet (new members, new
 * devices) - a new member reads what follows, and only that.
 * Each call answers through cb (once). 0, WA_ESTATE, WA_EINVAL, WA_ELIMIT (more than
 * WA_CLIENT_GROUP_OPS_MAX calls in flight, or too many participants), WA_ENOMEM. */
#define WA_CLIENT_GROUP_OPS_MAX   8
#define WA_CLIENT_GROUP_BATCH_MAX 256 /* participants in one create / add / remove */
/* Create a group with us as superadmin and the given members (user JIDs or phone numbers). */
int wa_client_group_create(wa_client *c, const char *subject, const char *const *participants,
                           size_t n, wa_client_group_cb cb, void *user_data);
/* The group's metadata. */
int wa_client_group_metadata(wa_client *c, const char *group, wa_client_group_cb cb,
                             void *user_data);
enum wa_client_group_action {
    WA_GROUP_ADD = 1,
    WA_GROUP_REMOVE,
    WA_GROUP_PROMOTE,
    WA_GROUP_DEMOTE,
};
/* Add / remove / promote / demote participants (we must be an admin). */
int wa_client_group_participants(wa_client *c, const char *group, int action,
                                 const char *const *participants, size_t n, wa_client_group_cb cb,
                                 void *user_data);

/* The account's JID ("PHONE:DEVICE@s.whatsapp.net") once paired, else "". */
const char *wa_client_jid(const wa_client *c);
/* 1 while logged in (between connected and disconnected). */
int wa_client_is_connected(const wa_client *c);
/* The store account id. */
int64_t wa_client_account_id(const wa_client *c);
void *wa_client_user_data(const wa_client *c);

/* Short lower-case name of a reason ("restart", "replaced", "logged_out", ...). */
const char *wa_disconnect_reason_name(int reason);

/* ---- memory and logout ---------------------------------------------------------------------- */

/* Bytes this client holds right now: its struct and strings, the pairing state, the wire
 * (struct, WebSocket/frame/decryption buffers, the last stanza's arena, the Noise handshake
 * while it runs), the stream (1 KiB for the stream and its libuv handles, plus
 * WA_CLIENT_TLS_ESTIMATE for the TLS engine over wss://, plus the bytes queued for the socket)
 * and the messaging state that exists after messaging on this connection (Signal handle,
 * device-list and group caches,
 * sends and queries in flight, retry rings: each top-level block as the allocator reports it
 * with glibc's malloc_usable_size; entries nested inside the caches are not counted). Shared
 * things are not counted: the loop, the store, the process's SSL_CTX, the read slab. An
 * estimate of the client's share of the heap, not an exact allocator count. 0 for NULL. */
/* An idle TLS engine (OpenSSL 3 SSL object with released buffers, the peer's certificate
 * chain): heap in use per idle client over wss:// less over ws://, measured by bench/clients
 * (28.5 - 7.1 KiB at N = 500 against wasim). */
#define WA_CLIENT_TLS_ESTIMATE (21 * 1024)
size_t wa_client_memory(const wa_client *c);

/* Log out as Baileys' logout() does: on a logged-in connection send
 * <iq to='@s.whatsapp.net' type='set' xmlns='md'><remove-companion-device jid=OWN_DEVICE_JID
 * reason='user_initiated'/></iq> (the phone unlinks the device), close the connection (the
 * close drains the iq first) and wipe the account's credentials in the store at once.
 * Returns 1 when the iq went out: disconnected{WA_DISC_LOGGED_OUT, 401, will_retry 0} and then
 * logged_out follow from the loop. Returns 0 when there was no logged-in connection: the
 * client is stopped (as wa_client_stop, whose event may follow) and the credentials are wiped
 * here only (the phone may still list the device; no logged_out callback). WA_EINVAL (NULL),
 * WA_ESTORE (the wipe failed; the iq may have gone out). A new wa_client_start pairs anew. */
int wa_client_logout(wa_client *c);

#endif
