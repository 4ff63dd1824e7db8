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
 *
 * MEMORY: an idle connected client keeps its struct, the stream (TLS engine), the wire's
 * transport keys and one timer; buffers are freed when empty, keys stay in the store.
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
    unsigned prekey_upload_count; /* one-time prekeys per upload; 0 = 50 */
    int dict_version;             /* binary node dictionary; 0 = 3 */
} wa_client_config;

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

/* The account's JID ("PHONE:DEVICE@s.whatsapp.net") once paired, else "". */
const char *wa_client_jid(const wa_client *c);
/* 1 while logged in (between connected and disconnected). */
int wa_client_is_connected(const wa_client *c);
/* The store account id. */
int64_t wa_client_account_id(const wa_client *c);
void *wa_client_user_data(const wa_client *c);

/* Short lower-case name of a reason ("restart", "replaced", "logged_out", ...). */
const char *wa_disconnect_reason_name(int reason);

#endif
