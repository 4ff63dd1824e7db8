/*
 * db.h - wagate's own SQLite database (DATA_DIR/wagate.db): the list of sessions with their
 * desired state (running or stopped) and options, so that they come back at boot. libwa keeps
 * each session's WhatsApp credentials in its own store (wa/store.h); this file holds only what
 * the gateway adds on top.
 *
 * Calls are synchronous and short (one small row, WAL journal); durable commits fsync. One
 * connection, used from the loop thread only.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_DB_H
#define WG_DB_H

#include <stddef.h>
#include <stdint.h>

typedef struct wg_db wg_db;

#define WG_DB_FILE "wagate.db"
/* How long a statement waits on a lock held by another connection before failing. */
#define WG_DB_BUSY_TIMEOUT_MS 200

/* Open (creating with mode 0600) the database at path, schema created or checked.
 * 0 and *out; WA_ESTORE (cannot open, not a database, a newer schema), WA_ENOMEM. */
int wg_db_open(const char *path, wg_db **out);
/* NULL allowed. */
void wg_db_close(wg_db *db);

/* Add a session row. config_json: the session's options (may hold secrets; never logged).
 * 0, WA_EEXIST, WA_ESTORE. */
int wg_db_session_insert(wg_db *db, const char *name, int64_t created_at, int want_running,
                         const char *config_json);
/* 0, WA_ENOTFOUND, WA_ESTORE. */
int wg_db_session_set_running(wg_db *db, const char *name, int want_running);
int wg_db_session_delete(wg_db *db, const char *name);

/* Walk every session row in name order. Strings are valid during the call. A non-zero return
 * from cb stops the walk and is returned. 0 or WA_ESTORE. */
typedef int (*wg_db_session_cb)(const char *name, int64_t created_at, int want_running,
                                const char *config_json, void *user_data);
int wg_db_sessions_load(wg_db *db, wg_db_session_cb cb, void *user_data);

/* Health probe: write (and commit) one row. 0 if the store is writable, WA_ESTORE if not. */
int wg_db_probe(wg_db *db);

/* The durable queue of sends accepted while a session was reconnecting (body: the request as
 * JSON text with its message id). 0 or WA_ESTORE (delete: WA_ENOTFOUND when absent). */
int wg_db_queue_add(wg_db *db, const char *id, const char *session, const char *body,
                    int64_t queued_at);
int wg_db_queue_delete(wg_db *db, const char *id);
/* Drop every queued send of a session (deleted). */
int wg_db_queue_purge(wg_db *db, const char *session);
int wg_db_queue_count(wg_db *db, const char *session, size_t *n);
/* The oldest `limit` queued sends of session, in order; cb returning non-zero stops. */
typedef int (*wg_db_queue_cb)(const char *id, const char *body, void *user_data);
int wg_db_queue_load(wg_db *db, const char *session, size_t limit, wg_db_queue_cb cb,
                     void *user_data);

/*
 * The message store: messages in and out per session and chat, bounded (wg_db_msg_prune_*).
 * A row with body NULL only records that the id was seen (the store disabled: dedupe only);
 * such rows are never listed. status: "received" (incoming), "read" (incoming, read by us),
 * "pending", "sent", "delivered", "read", "played", "failed" (outgoing).
 */
typedef struct wg_db_msg {
    const char *chat, *id, *sender; /* sender "" for ours */
    const char *kind;               /* text, reaction, edit, revoke, location, contact, other */
    const char *text;               /* may be NULL */
    const char *body;               /* the event payload as JSON text, or NULL (dedupe only) */
    const char *status;
    int from_me;
    int64_t ts; /* unix seconds */
} wg_db_msg;
/* Insert unless (session, chat, id) is there. 0, WA_EEXIST (kept as it was), WA_ESTORE. */
int wg_db_msg_put(wg_db *db, const char *session, const wg_db_msg *m, int64_t now);
/* 1 stored, 0 not, WA_ESTORE. */
int wg_db_msg_exists(wg_db *db, const char *session, const char *chat, const char *id);
/* Move message id (of chat, or of any chat when chat is NULL) forward to status; a status never
 * goes back. 0 (also when absent), WA_EINVAL (unknown status), WA_ESTORE. */
int wg_db_msg_set_status(wg_db *db, const char *session, const char *chat, const char *id,
                         const char *status);
/* Chats of a session, the most recent first: last message time, messages stored, unread (ours
 * to read). cb returning non-zero stops. 0 or WA_ESTORE. */
typedef int (*wg_db_chat_cb)(const char *chat, int64_t last_ts, int64_t count, int64_t unread,
                             void *user_data);
int wg_db_chats(wg_db *db, const char *session, size_t limit, wg_db_chat_cb cb, void *user_data);
/* Messages of a chat, newest first, older than message before_id (if given; WA_ENOTFOUND when
 * it is not stored) or than unix time before_ts (if > 0), at most limit. */
typedef int (*wg_db_msg_cb)(const wg_db_msg *m, void *user_data);
int wg_db_messages(wg_db *db, const char *session, const char *chat, const char *before_id,
                   int64_t before_ts, size_t limit, wg_db_msg_cb cb, void *user_data);
/* Delete at most budget rows stored before unix time cut. *deleted: how many. */
int wg_db_msg_prune_age(wg_db *db, int64_t cut, size_t budget, size_t *deleted);
/* Delete at most budget of the oldest rows of session beyond its newest keep. */
int wg_db_msg_prune_session(wg_db *db, const char *session, size_t keep, size_t budget,
                            size_t *deleted);
/* Drop every stored message of a session (deleted). */
int wg_db_msg_purge(wg_db *db, const char *session);

#endif
