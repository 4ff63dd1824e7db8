/*
 * db.c - the gateway's session list in SQLite (see db.h).
 *
 * Schema version 2 (PRAGMA user_version; version 1 files are upgraded by adding the table):
 *   sessions(name TEXT PRIMARY KEY, created_at INTEGER, want_running INTEGER, config TEXT)
 *   health(id INTEGER PRIMARY KEY CHECK (id = 1), checked_at INTEGER)  -- write probe
 *   send_queue(id PRIMARY KEY, session, body, queued_at)              -- sends while reconnecting
 *   messages(session, chat, id, from_me, sender, kind, text, body, ts, status, stored_at;
 *            PRIMARY KEY (session, chat, id))                          -- the message store
 * (rowid order is insertion order: the per-session bound keeps the newest rows by rowid).
 * The message store is also the record that makes delivery exactly once by message id: a
 * message libwa flags maybe_repeat is looked up here before it is published again.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "db.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/log.h"
#include "wa/error.h"

#define SCHEMA_VERSION 2
#define COMPONENT      "db"

struct wg_db {
    sqlite3 *sql;
};

static const char schema[] = "CREATE TABLE IF NOT EXISTS sessions ("
                             " name TEXT PRIMARY KEY NOT NULL,"
                             " created_at INTEGER NOT NULL,"
                             " want_running INTEGER NOT NULL,"
                             " config TEXT NOT NULL DEFAULT '{}');"
                             "CREATE TABLE IF NOT EXISTS health ("
                             " id INTEGER PRIMARY KEY CHECK (id = 1),"
                             " checked_at INTEGER NOT NULL);"
                             "CREATE TABLE IF NOT EXISTS send_queue ("
                             " id TEXT PRIMARY KEY NOT NULL,"
                             " session TEXT NOT NULL,"
                             " body TEXT NOT NULL,"
                             " queued_at INTEGER NOT NULL);"
                             "CREATE INDEX IF NOT EXISTS send_queue_session"
                             " ON send_queue(session, queued_at);"
                             "CREATE TABLE IF NOT EXISTS messages ("
                             " session TEXT NOT NULL,"
                             " chat TEXT NOT NULL,"
                             " id TEXT NOT NULL,"
                             " from_me INTEGER NOT NULL,"
                             " sender TEXT NOT NULL DEFAULT '',"
                             " kind TEXT NOT NULL,"
                             " text TEXT,"
                             " body TEXT,"
                             " ts INTEGER NOT NULL,"
                             " status TEXT NOT NULL,"
                             " stored_at INTEGER NOT NULL,"
                             " PRIMARY KEY (session, chat, id));"
                             "CREATE INDEX IF NOT EXISTS messages_chat_ts"
                             " ON messages(session, chat, ts);"
                             "CREATE INDEX IF NOT EXISTS messages_id ON messages(session, id);"
                             "CREATE INDEX IF NOT EXISTS messages_session ON messages(session);"
                             "CREATE INDEX IF NOT EXISTS messages_stored ON messages(stored_at);"
                             "PRAGMA user_version = 2;";

static int exec(wg_db *db, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(db->sql, sql, NULL, NULL, &msg) != SQLITE_OK) {
        wa_log_error(COMPONENT, "%s", msg ? msg : "sqlite error");
        sqlite3_free(msg);
        return WA_ESTORE;
    }
    return 0;
}

static int user_version(wg_db *db, int *v)
{
    sqlite3_stmt *st;
    int rc = WA_ESTORE;

    if (sqlite3_prepare_v2(db->sql, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return WA_ESTORE;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *v = sqlite3_column_int(st, 0);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

int wg_db_open(const char *path, wg_db **out)
{
    wg_db *db;
    int fd, v = 0, rc = WA_ESTORE;

    /* create the file ourselves so that it is 0600 from the start (it holds webhook secrets) */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        wa_log_error(COMPONENT, "cannot open %s", path);
        return WA_ESTORE;
    }
    close(fd);
    db = calloc(1, sizeof *db);
    if (!db)
        return WA_ENOMEM;
    if (sqlite3_open_v2(path, &db->sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(db->sql, WG_DB_BUSY_TIMEOUT_MS);
    if (exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"))
        goto out;
    if (user_version(db, &v))
        goto out;
    if (v > SCHEMA_VERSION) {
        wa_log_error(COMPONENT, "%s has schema %d, newer than this build's %d", path, v,
                     SCHEMA_VERSION);
        goto out;
    }
    if (exec(db, schema))
        goto out;
    rc = 0;
out:
    if (rc) {
        if (db->sql)
            wa_log_error(COMPONENT, "%s: %s", path, sqlite3_errmsg(db->sql));
        sqlite3_close(db->sql);
        free(db);
        return rc;
    }
    *out = db;
    return 0;
}

void wg_db_close(wg_db *db)
{
    if (!db)
        return;
    sqlite3_close(db->sql);
    free(db);
}

static int prepare(wg_db *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(db->sql, sql, -1, st, NULL) != SQLITE_OK) {
        wa_log_error(COMPONENT, "prepare: %s", sqlite3_errmsg(db->sql));
        return WA_ESTORE;
    }
    return 0;
}

int wg_db_session_insert(wg_db *db, const char *name, int64_t created_at, int want_running,
                         const char *config_json)
{
    sqlite3_stmt *st;
    int rc;

    if ((rc = prepare(db,
                      "INSERT INTO sessions(name, created_at, want_running, config) "
                      "VALUES (?, ?, ?, ?)",
                      &st)))
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, created_at);
    sqlite3_bind_int(st, 3, want_running ? 1 : 0);
    sqlite3_bind_text(st, 4, config_json ? config_json : "{}", -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        rc = 0;
    else if (sqlite3_extended_errcode(db->sql) == SQLITE_CONSTRAINT_PRIMARYKEY)
        rc = WA_EEXIST;
    else {
        wa_log_error(COMPONENT, "insert: %s", sqlite3_errmsg(db->sql));
        rc = WA_ESTORE;
    }
    sqlite3_finalize(st);
    return rc;
}

static int update_one(wg_db *db, const char *sql, const char *name, int arg, int bind_arg)
{
    sqlite3_stmt *st;
    int rc;

    if ((rc = prepare(db, sql, &st)))
        return rc;
    if (bind_arg) {
        sqlite3_bind_int(st, 1, arg);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    }
    if (sqlite3_step(st) != SQLITE_DONE) {
        wa_log_error(COMPONENT, "update: %s", sqlite3_errmsg(db->sql));
        rc = WA_ESTORE;
    } else {
        rc = sqlite3_changes(db->sql) ? 0 : WA_ENOTFOUND;
    }
    sqlite3_finalize(st);
    return rc;
}

int wg_db_session_set_running(wg_db *db, const char *name, int want_running)
{
    return update_one(db, "UPDATE sessions SET want_running = ? WHERE name = ?", name,
                      want_running ? 1 : 0, 1);
}

int wg_db_session_delete(wg_db *db, const char *name)
{
    return update_one(db, "DELETE FROM sessions WHERE name = ?", name, 0, 0);
}

int wg_db_sessions_load(wg_db *db, wg_db_session_cb cb, void *user_data)
{
    sqlite3_stmt *st;
    int rc, step;

    if ((rc = prepare(
             db, "SELECT name, created_at, want_running, config FROM sessions ORDER BY name", &st)))
        return rc;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *cfg = (const char *)sqlite3_column_text(st, 3);
        rc = cb(name ? name : "", sqlite3_column_int64(st, 1), sqlite3_column_int(st, 2),
                cfg ? cfg : "{}", user_data);
        if (rc)
            break;
    }
    if (!rc && step != SQLITE_DONE) {
        wa_log_error(COMPONENT, "load: %s", sqlite3_errmsg(db->sql));
        rc = WA_ESTORE;
    }
    sqlite3_finalize(st);
    return rc;
}

int wg_db_probe(wg_db *db)
{
    sqlite3_stmt *st;
    int rc;

    if ((rc = prepare(db, "INSERT OR REPLACE INTO health(id, checked_at) VALUES (1, ?)", &st)))
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : WA_ESTORE;
    sqlite3_finalize(st);
    return rc;
}

/* ---- the queue of sends made while a session reconnects ---- */

int wg_db_queue_add(wg_db *db, const char *id, const char *session, const char *body,
                    int64_t queued_at)
{
    sqlite3_stmt *st;
    int rc;

    if ((rc = prepare(
             db, "INSERT INTO send_queue(id, session, body, queued_at) VALUES (?, ?, ?, ?)", &st)))
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, session, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, body, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, queued_at);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : WA_ESTORE;
    if (rc)
        wa_log_error(COMPONENT, "queue: %s", sqlite3_errmsg(db->sql));
    sqlite3_finalize(st);
    return rc;
}

int wg_db_queue_delete(wg_db *db, const char *id)
{
    return update_one(db, "DELETE FROM send_queue WHERE id = ?", id, 0, 0);
}

int wg_db_queue_purge(wg_db *db, const char *session)
{
    int rc = update_one(db, "DELETE FROM send_queue WHERE session = ?", session, 0, 0);

    return rc == WA_ENOTFOUND ? 0 : rc;
}

int wg_db_queue_count(wg_db *db, const char *session, size_t *n)
{
    sqlite3_stmt *st;
    int rc;

    if ((rc = prepare(db, "SELECT count(*) FROM send_queue WHERE session = ?", &st)))
        return rc;
    sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        *n = (size_t)sqlite3_column_int64(st, 0);
    else
        rc = WA_ESTORE;
    sqlite3_finalize(st);
    return rc;
}

int wg_db_queue_load(wg_db *db, const char *session, size_t limit, wg_db_queue_cb cb,
                     void *user_data)
{
    sqlite3_stmt *st;
    int rc, step;

    if ((rc = prepare(db,
                      "SELECT id, body FROM send_queue WHERE session = ? "
                      "ORDER BY queued_at, rowid LIMIT ?",
                      &st)))
        return rc;
    sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *body = (const char *)sqlite3_column_text(st, 1);
        if ((rc = cb(id ? id : "", body ? body : "{}", user_data)) != 0)
            break;
    }
    if (!rc && step != SQLITE_DONE)
        rc = WA_ESTORE;
    sqlite3_finalize(st);
    return rc;
}

/* ---- the message store ---- */

/* Rank of a status: an update never moves a message back (a late "delivered" after "read"). */
static int status_rank(const char *st)
{
    static const char *const order[] = {"pending", "sent", "delivered", "read", "played"};
    size_t i;

    if (!strcmp(st, "failed"))
        return 1;
    for (i = 0; i < sizeof order / sizeof *order; i++)
        if (!strcmp(st, order[i]))
            return (int)i;
    return -1;
}

static void bind_opt_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

int wg_db_msg_put(wg_db *db, const char *session, const wg_db_msg *m, int64_t now)
{
    sqlite3_stmt *st;
    int rc;

    if ((rc = prepare(db,
                      "INSERT OR IGNORE INTO messages(session, chat, id, from_me, sender, kind, "
                      "text, body, ts, status, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      &st)))
        return rc;
    sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, m->chat, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, m->id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, m->from_me ? 1 : 0);
    sqlite3_bind_text(st, 5, m->sender ? m->sender : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, m->kind, -1, SQLITE_STATIC);
    bind_opt_text(st, 7, m->text);
    bind_opt_text(st, 8, m->body);
    sqlite3_bind_int64(st, 9, m->ts);
    sqlite3_bind_text(st, 10, m->status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, now);
    if (sqlite3_step(st) != SQLITE_DONE) {
        wa_log_error(COMPONENT, "message store: %s", sqlite3_errmsg(db->sql));
        rc = WA_ESTORE;
    } else {
        rc = sqlite3_changes(db->sql) ? 0 : WA_EEXIST;
    }
    sqlite3_finalize(st);
    return rc;
}

int wg_db_msg_exists(wg_db *db, const char *session, const char *chat, const char *id)
{
    sqlite3_stmt *st;
    int rc;

    if ((rc = prepare(db, "SELECT 1 FROM messages WHERE session = ? AND chat = ? AND id = ?", &st)))
        return rc;
    sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, chat, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    rc = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : WA_ESTORE;
    sqlite3_finalize(st);
    return rc;
}

int wg_db_msg_set_status(wg_db *db, const char *session, const char *chat, const char *id,
                         const char *status)
{
    sqlite3_stmt *st;
    int rc, rank = status_rank(status);

    if (rank < 0)
        return WA_EINVAL;
    if ((rc = prepare(db,
                      "UPDATE messages SET status = ?1 WHERE session = ?2 AND id = ?3"
                      " AND (?4 IS NULL OR chat = ?4) AND (CASE status WHEN 'pending' THEN 0"
                      " WHEN 'sent' THEN 1 WHEN 'failed' THEN 1 WHEN 'delivered' THEN 2"
                      " WHEN 'read' THEN 3 WHEN 'played' THEN 4 ELSE -1 END) < ?5"
                      " AND NOT (status = 'received' AND ?1 <> 'read')",
                      &st)))
        return rc;
    sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, session, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    bind_opt_text(st, 4, chat);
    sqlite3_bind_int(st, 5, rank);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : WA_ESTORE;
    sqlite3_finalize(st);
    return rc;
}

int wg_db_chats(wg_db *db, const char *session, size_t limit, wg_db_chat_cb cb, void *user_data)
{
    sqlite3_stmt *st;
    int rc, step;

    if ((rc = prepare(db,
                      "SELECT chat, max(ts), count(*),"
                      " sum(from_me = 0 AND status = 'received') FROM messages"
                      " WHERE session = ? AND body IS NOT NULL GROUP BY chat"
                      " ORDER BY max(ts) DESC, chat LIMIT ?",
                      &st)))
        return rc;
    sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *chat = (const char *)sqlite3_column_text(st, 0);
        if ((rc = cb(chat ? chat : "", sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                     sqlite3_column_int64(st, 3), user_data)) != 0)
            break;
    }
    if (!rc && step != SQLITE_DONE)
        rc = WA_ESTORE;
    sqlite3_finalize(st);
    return rc;
}

int wg_db_messages(wg_db *db, const char *session, const char *chat, const char *before_id,
                   int64_t before_ts, size_t limit, wg_db_msg_cb cb, void *user_data)
{
    sqlite3_stmt *st = NULL;
    int64_t cut_ts = INT64_MAX, cut_row = INT64_MAX;
    int rc, step;

    if (before_id && before_id[0]) {
        if ((rc = prepare(
                 db, "SELECT ts, rowid FROM messages WHERE session = ? AND chat = ? AND id = ?",
                 &st)))
            return rc;
        sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, chat, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, before_id, -1, SQLITE_STATIC);
        step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            cut_ts = sqlite3_column_int64(st, 0);
            cut_row = sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
        if (step == SQLITE_DONE)
            return WA_ENOTFOUND;
        if (step != SQLITE_ROW)
            return WA_ESTORE;
    } else if (before_ts > 0) {
        cut_ts = before_ts;
        cut_row = 0; /* strictly older than before_ts */
    }
    if ((rc = prepare(db,
                      "SELECT id, from_me, sender, kind, text, body, ts, status FROM messages"
                      " WHERE session = ? AND chat = ? AND body IS NOT NULL"
                      " AND (ts < ? OR (ts = ? AND rowid < ?))"
                      " ORDER BY ts DESC, rowid DESC LIMIT ?",
                      &st)))
        return rc;
    sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, chat, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, cut_ts);
    sqlite3_bind_int64(st, 4, cut_ts);
    sqlite3_bind_int64(st, 5, cut_row);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)limit);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        wg_db_msg m;
        m.chat = chat;
        m.id = (const char *)sqlite3_column_text(st, 0);
        m.from_me = sqlite3_column_int(st, 1);
        m.sender = (const char *)sqlite3_column_text(st, 2);
        m.kind = (const char *)sqlite3_column_text(st, 3);
        m.text = (const char *)sqlite3_column_text(st, 4);
        m.body = (const char *)sqlite3_column_text(st, 5);
        m.ts = sqlite3_column_int64(st, 6);
        m.status = (const char *)sqlite3_column_text(st, 7);
        if (!m.id || !m.sender || !m.kind || !m.status)
            continue;
        if ((rc = cb(&m, user_data)) != 0)
            break;
    }
    if (!rc && step != SQLITE_DONE)
        rc = WA_ESTORE;
    sqlite3_finalize(st);
    return rc;
}

/* Run a bounded DELETE with two int64 bindings (and an optional text one first); rows deleted
 * are added to *n. */
static int delete_bounded(wg_db *db, const char *sql, const char *text, int64_t a, int64_t b,
                          size_t *n)
{
    sqlite3_stmt *st;
    int rc, i = 1;

    if ((rc = prepare(db, sql, &st)))
        return rc;
    if (text)
        sqlite3_bind_text(st, i++, text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, i++, a);
    sqlite3_bind_int64(st, i, b);
    if (sqlite3_step(st) != SQLITE_DONE) {
        wa_log_error(COMPONENT, "message store prune: %s", sqlite3_errmsg(db->sql));
        rc = WA_ESTORE;
    } else {
        *n += (size_t)sqlite3_changes(db->sql);
    }
    sqlite3_finalize(st);
    return rc;
}

int wg_db_msg_prune_age(wg_db *db, int64_t cut, size_t budget, size_t *deleted)
{
    *deleted = 0;
    return delete_bounded(db,
                          "DELETE FROM messages WHERE rowid IN (SELECT rowid FROM messages"
                          " WHERE stored_at < ? LIMIT ?)",
                          NULL, cut, (int64_t)budget, deleted);
}

int wg_db_msg_prune_session(wg_db *db, const char *session, size_t keep, size_t budget,
                            size_t *deleted)
{
    sqlite3_stmt *st;
    int64_t edge;
    int rc, step;

    *deleted = 0;
    /* the rowid of the newest row past the bound (the index on session orders by rowid) */
    if ((rc = prepare(db,
                      "SELECT rowid FROM messages WHERE session = ? ORDER BY rowid DESC"
                      " LIMIT 1 OFFSET ?",
                      &st)))
        return rc;
    sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)keep);
    step = sqlite3_step(st);
    edge = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (step != SQLITE_ROW)
        return step == SQLITE_DONE ? 0 : WA_ESTORE;
    return delete_bounded(db,
                          "DELETE FROM messages WHERE rowid IN (SELECT rowid FROM messages"
                          " WHERE session = ? AND rowid <= ? ORDER BY rowid LIMIT ?)",
                          session, edge, (int64_t)budget, deleted);
}

int wg_db_msg_purge(wg_db *db, const char *session)
{
    int rc = update_one(db, "DELETE FROM messages WHERE session = ?", session, 0, 0);

    return rc == WA_ENOTFOUND ? 0 : rc;
}
