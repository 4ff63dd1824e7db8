/*
 * session.h - the gateway's sessions (one WhatsApp linked device each) and the small "session
 * backend" interface that connects them to WhatsApp.
 *
 * The registry (wg_sessions) owns the records, their persisted desired state (db.h) and the
 * life cycle seen by the API: create, start, stop, logout, delete. Everything that talks to
 * WhatsApp sits behind wg_backend_ops: the libwa client backend (backend_wa.c, over
 * include/wa/client.h) is the one wagate runs; the unit tests plug in a recording one. Backends
 * report back through wg_session_report_*(); whoever waits on a session (a suspended HTTP
 * request waiting for a pairing code) registers a wg_session_watch.
 *
 * Everything runs on the loop thread.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_SESSION_H
#define WG_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

/* Session names: 1..64 of [A-Za-z0-9_-], starting with a letter or digit. They become file
 * names and URL path segments, so nothing else (no dots, no slashes) is accepted. */
#define WG_SESSION_NAME_MAX   64
#define WG_SESSION_REASON_MAX 160
#define WG_SESSION_JID_MAX    192 /* WA_STORE_JID_MAX */
#define WG_SESSION_CODE_MAX   16
/* Upper bound on the number of session records (running or not). */
#define WG_SESSIONS_MAX 100000

enum wg_status {
    WG_STATUS_STARTING = 0,
    WG_STATUS_SCAN_QR,
    WG_STATUS_PAIRING_CODE,
    WG_STATUS_WORKING,
    WG_STATUS_DISCONNECTED,
    WG_STATUS_LOGGED_OUT,
    WG_STATUS_FAILED,
    WG_STATUS_STOPPED,
    WG_STATUS_COUNT
};

typedef struct wg_sessions wg_sessions;

typedef struct wg_session {
    char name[WG_SESSION_NAME_MAX + 1];
    int status;                          /* enum wg_status */
    char reason[WG_SESSION_REASON_MAX];  /* why the last DISCONNECTED/FAILED/LOGGED_OUT, or "" */
    char me[WG_SESSION_JID_MAX];         /* own JID once paired, or "" */
    char me_lid[WG_SESSION_JID_MAX];     /* own LID ("LID:DEVICE@lid") once paired, or "" */
    char *qr;                            /* current QR text while SCAN_QR, else NULL */
    char pair_code[WG_SESSION_CODE_MAX]; /* current pairing code while PAIRING_CODE, or "" */
    unsigned pair_gen;                   /* bumped by every wg_sessions_pair_phone */
    struct wg_session_watch *watches;    /* see wg_session_watch_add */
    char *config_json;                   /* options given at creation (webhook, proxy); secret */
    int64_t created_at;                  /* unix seconds */
    int want_running;                    /* desired state, persisted: started at boot if 1 */
    void *backend;                       /* the backend's handle, NULL while closed */
    unsigned queue_inflight;             /* queued sends handed to the backend, not finished */
    wg_sessions *owner;
    int store_dirty; /* messages stored since its last prune (wg_sessions_prune_store) */
} wg_session;

/*
 * The session backend. ctx is the backend's own state (wg_backend.ctx). All members are
 * required unless marked optional. Calls happen on the loop thread; a backend reports changes
 * with wg_session_report_*() at any time (inside these calls too).
 */
struct json_t; /* jansson */

/* Outcome of a backend send (wg_backend_ops.send). */
typedef struct wg_send_result {
    int err;            /* 0: the server acknowledged message id; else WA_E* */
    int not_registered; /* the recipient phone number is not on WhatsApp (nothing was sent) */
    const char *id;     /* the message id ("" when nothing was sent) */
    const char *detail; /* readable detail of a failure, or "" */
} wg_send_result;
typedef void (*wg_send_cb)(void *user_data, const wg_send_result *r);
/* Answer of wg_backend_ops.call: err 0 and result (borrowed), or WA_E* with a readable detail. */
typedef void (*wg_call_cb)(void *user_data, int err, struct json_t *result, const char *detail);

typedef struct wg_backend_ops {
    const char *name;         /* "offline", "libwa" */
    int connects_to_whatsapp; /* 0 for a backend that does not (shown in /ready and logs) */
    /* Create the handle of session s (s outlives it until close). 0 or WA_E*. */
    int (*open)(void *ctx, wg_session *s, void **handle);
    /* Connect (log in or start pairing). 0 or WA_E*. */
    int (*start)(void *ctx, void *handle);
    /* Disconnect, cancel retries; idempotent. Reports STOPPED. */
    void (*stop)(void *ctx, void *handle);
    /* Unlink the device and wipe its credentials. Reports LOGGED_OUT. 0 or WA_E*. */
    int (*logout)(void *ctx, void *handle);
    /* Release the handle (after stop). */
    void (*close)(void *ctx, void *handle);
    /* Delete the persisted state (credentials, keys) of the named session. 0 or WA_E*. */
    int (*purge)(void *ctx, const char *name);
    /* Optional: heap bytes this session's handle holds (MEMORY_DEBUG, GET session). */
    size_t (*memory)(void *ctx, void *handle);
    /* Optional: memory pressure: drop caches, free idle buffers. */
    void (*trim)(void *ctx);
    /* Optional: (re)start the session pairing by phone-number code instead of QR (phone:
     * digits with country code). Reports STARTING, then the code (wg_session_report_pair_code)
     * or FAILED. 0, WA_EINVAL (bad number), WA_ESTATE (already paired), WA_E*. */
    int (*pair_phone)(void *ctx, void *handle, const char *phone);
    /* Optional: send a message described by req (a JSON object, borrowed: the backend keeps
     * a reference while it needs it): {"kind": "text"|"reaction"|"edit"|"revoke"|"location"|
     * "contact", "to", "text"?, "reply_to"?, "mentions"?, "message_id"?, "emoji"?, "from_me"?,
     * "latitude"?, "longitude"?, "name"?, "address"?, "vcard"?}. A phone number
     * in "to" is first checked to be on WhatsApp. cb runs once, later (never inside this
     * call), unless send_cancel(user_data) ran first. 0, WA_ESTATE (not connected),
     * WA_ENOTFOUND (the phone number is known not to be on WhatsApp: nothing sent),
     * WA_EINVAL, WA_ELIMIT (too many in flight), WA_ENOMEM. */
    int (*send)(void *ctx, void *handle, struct json_t *req, wg_send_cb cb, void *user_data);
    /* Optional (required with send): forget the callback of the send with user_data. */
    void (*send_cancel)(void *ctx, void *handle, void *user_data);
    /* Optional: read receipts for ids[0..n) of chat (sender: the author in groups, or NULL).
     * 0, WA_ESTATE, WA_EINVAL. */
    int (*mark_read)(void *ctx, void *handle, const char *chat, const char *sender,
                     const char *const *ids, size_t n);
    /* Optional: a request answered later (cb runs once, never inside this call, unless
     * call_cancel(user_data) ran first; result borrowed during cb, NULL on error):
     *   {"op": "check", "phones": [digits...]} -> {"contacts": [{phone, exists, jid, lid?}]}
     *   {"op": "group_create", "subject", "participants": [JID...]} -> group
     *   {"op": "group_info", "group"} -> group
     *   {"op": "group_add" | "group_remove", "group", "participants": [JID...]}
     *       -> {"group", "participants": [{jid, lid?, error}]}
     *   group: {"jid", "subject", "creator", "creation", "participants": [{jid, lid?, admin}]}
     * 0, WA_ESTATE (not connected), WA_EINVAL, WA_ELIMIT (too many in flight), WA_ENOMEM. */
    int (*call)(void *ctx, void *handle, struct json_t *req, wg_call_cb cb, void *user_data);
    /* Optional (required with call): forget the callback of the call with user_data. */
    void (*call_cancel)(void *ctx, void *handle, void *user_data);
    /* Optional: an immediate action: {"op": "presence", "presence": "available"|"unavailable"},
     * {"op": "chat_state", "to", "state": "composing"|"paused"|"recording"},
     * {"op": "subscribe", "jid"}. 0, WA_ESTATE, WA_EINVAL, WA_EUNSUPPORTED. */
    int (*act)(void *ctx, void *handle, struct json_t *req);
} wg_backend_ops;

typedef struct wg_backend {
    const wg_backend_ops *ops;
    void *ctx;
} wg_backend;

/*
 * Watching one session: fn runs after each change reported by the backend (status, QR, pairing
 * code, me), and once with gone = 1 when the session record is about to be freed (deleted, or
 * the registry freed); the watch is already removed then. Inside fn a watch may remove itself
 * (only itself). The struct belongs to the caller and must stay valid while added.
 */
typedef struct wg_session_watch {
    struct wg_session_watch *next;
    void (*fn)(struct wg_session_watch *w, wg_session *s, int gone);
    void *user_data;
} wg_session_watch;
void wg_session_watch_add(wg_session *s, wg_session_watch *w);
void wg_session_watch_remove(wg_session *s, wg_session_watch *w);

/* Observer of status changes (hook for session.status events, webhooks, streams). */
typedef void (*wg_session_status_cb)(wg_session *s, int old_status, void *user_data);
/* Sink of the other events a backend reports (message, message.ack, ...); payload borrowed. */
typedef void (*wg_session_event_cb)(wg_session *s, const char *event, struct json_t *payload,
                                    void *user_data);

const char *wg_status_name(int status);
int wg_session_name_valid(const char *name);

/* Registry. db and backend are borrowed and must outlive it. 0, WA_ENOMEM. */
int wg_sessions_new(wg_db *db, const wg_backend *backend, wg_sessions **out);
/* Close every handle (no stop is reported to the db: desired states stay as they are). */
void wg_sessions_free(wg_sessions *ss);
void wg_sessions_set_observer(wg_sessions *ss, wg_session_status_cb cb, void *user_data);
void wg_sessions_set_event_sink(wg_sessions *ss, wg_session_event_cb cb, void *user_data);
/* Observer of changes to a session's durable backend state that must reach its backup at once
 * (new prekeys uploaded, signed prekey rotated): what names the change, for logs. */
typedef void (*wg_session_state_cb)(wg_session *s, const char *what, void *user_data);
void wg_sessions_set_state_observer(wg_sessions *ss, wg_session_state_cb cb, void *user_data);

/* Load the persisted sessions and start those whose desired state is running.
 * 0 or WA_ESTORE. */
int wg_sessions_load(wg_sessions *ss);

size_t wg_sessions_count(const wg_sessions *ss);
/* i-th session in name order, NULL past the end. */
wg_session *wg_sessions_at(const wg_sessions *ss, size_t i);
wg_session *wg_sessions_find(const wg_sessions *ss, const char *name);
/* Sessions whose desired state is running (what MAX_CONNECTIONS counts). */
size_t wg_sessions_running(const wg_sessions *ss);
/* Counts by status into counts[WG_STATUS_COUNT]. */
void wg_sessions_count_by_status(const wg_sessions *ss, size_t *counts);

/* Create (persisted) and, if start, start. config_json: options as JSON text (copied).
 * 0 and *out (borrowed); WA_EINVAL (bad name), WA_EEXIST, WA_ELIMIT (WG_SESSIONS_MAX),
 * WA_ESTORE, WA_ENOMEM, or the backend's error from open (then nothing is kept). */
int wg_sessions_create(wg_sessions *ss, const char *name, const char *config_json, int start,
                       wg_session **out);
/* Start a stopped session. 0, WA_ESTATE (already running), WA_ESTORE, backend errors. */
int wg_sessions_start(wg_sessions *ss, wg_session *s);
/* Stop; idempotent. 0 or WA_ESTORE. */
int wg_sessions_stop(wg_sessions *ss, wg_session *s);
/* Log out (the session stays, stopped, LOGGED_OUT). 0, WA_ESTORE, backend errors. */
int wg_sessions_logout(wg_sessions *ss, wg_session *s);
/* Pair by phone-number code: the session is marked running (persisted) and its backend
 * restarted in code mode; the code arrives later (s->pair_code, watches). 0, WA_EUNSUPPORTED
 * (the backend cannot), WA_EINVAL (bad number), WA_ESTATE (already paired), WA_ESTORE,
 * backend errors (the session then keeps its previous desired state). */
int wg_sessions_pair_phone(wg_sessions *ss, wg_session *s, const char *phone);
/* Send through the session's backend (see wg_backend_ops.send). WA_EUNSUPPORTED when the
 * backend cannot, WA_ESTATE when the session is not running, else the backend's answer. */
int wg_sessions_send(wg_sessions *ss, wg_session *s, struct json_t *req, wg_send_cb cb,
                     void *user_data);
void wg_sessions_send_cancel(wg_sessions *ss, wg_session *s, void *user_data);
/* Queue a send (a JSON request as for send) durably while the session reconnects: a
 * message id is made (set in req as "id", written to id_out, WG_QUEUE_ID_MAX bytes) and the
 * request goes out, in order, once the session is WORKING again; its outcome comes as
 * message.ack events (sent, or failed with the error). 0, WA_ELIMIT (WG_SEND_QUEUE_MAX queued
 * already), WA_ESTORE, WA_ENOMEM. */
#define WG_SEND_QUEUE_MAX 1000
#define WG_QUEUE_ID_MAX   32
int wg_sessions_queue(wg_sessions *ss, wg_session *s, struct json_t *req, char *id_out);
/* Read receipts (see wg_backend_ops.mark_read); WA_EUNSUPPORTED, WA_ESTATE, backend errors. */
int wg_sessions_mark_read(wg_sessions *ss, wg_session *s, const char *chat, const char *sender,
                          const char *const *ids, size_t n);
/* A request answered later (wg_backend_ops.call) and its cancel; an immediate action (act).
 * WA_EUNSUPPORTED when the backend cannot, WA_ESTATE when the session is not running. */
int wg_sessions_call(wg_sessions *ss, wg_session *s, struct json_t *req, wg_call_cb cb,
                     void *user_data);
void wg_sessions_call_cancel(wg_sessions *ss, wg_session *s, void *user_data);
int wg_sessions_act(wg_sessions *ss, wg_session *s, struct json_t *req);

/* The message store (db.h): at most max messages per session, kept retention_days; either 0
 * turns it off (then only the ids of incoming messages are kept for a day, to drop repeats).
 * Incoming message events are recorded as they are published, outgoing sends when they leave
 * (wg_session_report_sent), statuses follow message.ack events and read receipts we send. */
void wg_sessions_set_store(wg_sessions *ss, unsigned max, unsigned retention_days);
/* 1 when messages are stored (listing possible). */
int wg_sessions_store_enabled(const wg_sessions *ss);
/* The database, for listing the store. */
wg_db *wg_sessions_db(const wg_sessions *ss);
/* Apply the bounds: bounded work per call (run it every health interval). */
void wg_sessions_prune_store(wg_sessions *ss);

/* Stop, purge the backend's state, delete the record. s is freed. 0, WA_ESTORE. */
int wg_sessions_delete(wg_sessions *ss, wg_session *s);
/* Shutdown: stop every running session without changing its persisted desired state. */
void wg_sessions_stop_all(wg_sessions *ss);
/* Memory pressure: ask the backend to trim. */
void wg_sessions_trim(wg_sessions *ss);
/* Bytes one session costs: its record plus the backend's handle. */
size_t wg_session_memory(const wg_session *s);

/* Backend -> gateway reports. reason/text may be NULL. LOGGED_OUT also clears the desired
 * running state (persisted): a session unlinked from the phone does not pair again by itself
 * at the next boot. */
void wg_session_report_status(wg_session *s, int status, const char *reason);
/* An event (message, message.ack, ...) for the event sink; payload is stolen (may be NULL:
 * nothing is published). Returns 1 if published, 0 if not (no payload, or a message libwa
 * flagged maybe_repeat that was published before). */
int wg_session_report_event(wg_session *s, const char *event, struct json_t *payload);
/* A QR text to show: SCAN_QR. */
void wg_session_report_qr(wg_session *s, const char *text);
/* A pairing code to type on the phone: PAIRING_CODE. */
void wg_session_report_pair_code(wg_session *s, const char *code);
/* Own JID and LID (either may be NULL or "" for unknown; both "" after a logout). */
void wg_session_report_me(wg_session *s, const char *jid, const char *lid);
/* A message of ours left (backend send accepted by the client): recorded in the message store
 * as pending (req: the send request as for wg_backend_ops.send; chat: the JID sent to). */
void wg_session_report_sent(wg_session *s, const char *chat, const char *id, struct json_t *req);
/* The backend's durable state changed in a way a backup must catch now (see
 * wg_sessions_set_state_observer); what: a short description ("prekeys uploaded"). */
void wg_session_report_state_changed(wg_session *s, const char *what);

#endif
