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
 * Statements are prepared once per handle (the first time they are used, SQLITE_PREPARE_
 * PERSISTENT) and reset with their bindings cleared after each use; wg_db_close finalizes them.
 * A statement still stepping (a callback of a walk calling into the same query) gets a fresh
 * one-shot statement instead.
 *
 * Durability, per table (one connection, so the level is switched around the writes that need
 * more; SQLite applies PRAGMA synchronous to the connection's next commits):
 *   - WAL with synchronous=NORMAL by default: a commit survives a crash of the process (SIGKILL,
 *     OOM kill: the WAL is in the kernel's page cache), the last commits may be lost on power
 *     loss or a kernel crash (the WAL is fsynced at checkpoints). That is the right level for
 *     the message store (a bounded history cache and the dedupe record; its acks and statuses are
 *     the hot path under API sends: ~4 commits per send) and the health probe.
 *   - synchronous=FULL (the WAL fsynced at commit) for the session list and the send queue:
 *     their writes are rare (a session created, started, stopped; a send accepted with 202 while
 *     reconnecting) and they are promises made to the API caller that should survive power loss
 *     on a real disk. On Cloud Run the local disk is memory anyway: persistence there comes from
 *     the backups, and FULL costs nothing that matters.
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

/* The cached statements (see stmt_sql). */
enum {
    Q_SESSION_INSERT,
    Q_SESSION_SET_RUNNING,
    Q_SESSION_DELETE,
    Q_SESSIONS_LOAD,
    Q_PROBE,
    Q_QUEUE_ADD,
    Q_QUEUE_DELETE,
    Q_QUEUE_PURGE,
    Q_QUEUE_COUNT,
    Q_QUEUE_LOAD,
    Q_MSG_PUT,
    Q_MSG_EXISTS,
    Q_MSG_SET_STATUS,
    Q_CHATS,
    Q_MSG_CUT,
    Q_MESSAGES,
    Q_PRUNE_AGE,
    Q_PRUNE_EDGE,
    Q_PRUNE_SESSION,
    Q_MSG_PURGE,
    Q_COUNT
};

static const char *const stmt_sql[Q_COUNT] = {
    [Q_SESSION_INSERT] = "INSERT INTO sessions(name, created_at, want_running, config) "
                         "VALUES (?, ?, ?, ?)",
    [Q_SESSION_SET_RUNNING] = "UPDATE sessions SET want_running = ? WHERE name = ?",
    [Q_SESSION_DELETE] = "DELETE FROM sessions WHERE name = ?",
    [Q_SESSIONS_LOAD] = "SELECT name, created_at, want_running, config FROM sessions ORDER BY name",
    [Q_PROBE] = "INSERT OR REPLACE INTO health(id, checked_at) VALUES (1, ?)",
    [Q_QUEUE_ADD] = "INSERT INTO send_queue(id, session, body, queued_at) VALUES (?, ?, ?, ?)",
    [Q_QUEUE_DELETE] = "DELETE FROM send_queue WHERE id = ?",
    [Q_QUEUE_PURGE] = "DELETE FROM send_queue WHERE session = ?",
    [Q_QUEUE_COUNT] = "SELECT count(*) FROM send_queue WHERE session = ?",
    [Q_QUEUE_LOAD] = "SELECT id, body FROM send_queue WHERE session = ? "
                     "ORDER BY queued_at, rowid LIMIT ?",
    [Q_MSG_PUT] = "INSERT OR IGNORE INTO messages(session, chat, id, from_me, sender, kind, "
                  "text, body, ts, status, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [Q_MSG_EXISTS] = "SELECT 1 FROM messages WHERE session = ? AND chat = ? AND id = ?",
    [Q_MSG_SET_STATUS] = "UPDATE messages SET status = ?1 WHERE session = ?2 AND id = ?3"
                         " AND (?4 IS NULL OR chat = ?4) AND (CASE status WHEN 'pending' THEN 0"
                         " WHEN 'sent' THEN 1 WHEN 'failed' THEN 1 WHEN 'delivered' THEN 2"
                         " WHEN 'read' THEN 3 WHEN 'played' THEN 4 ELSE -1 END) < ?5"
                         " AND NOT (status = 'received' AND ?1 <> 'read')",
    [Q_CHATS] = "SELECT chat, max(ts), count(*),"
                " sum(from_me = 0 AND status = 'received') FROM messages"
                " WHERE session = ? AND body IS NOT NULL GROUP BY chat"
                " ORDER BY max(ts) DESC, chat LIMIT ?",
    [Q_MSG_CUT] = "SELECT ts, rowid FROM messages WHERE session = ? AND chat = ? AND id = ?",
    [Q_MESSAGES] = "SELECT id, from_me, sender, kind, text, body, ts, status FROM messages"
                   " WHERE session = ? AND chat = ? AND body IS NOT NULL"
                   " AND (ts < ? OR (ts = ? AND rowid < ?))"
                   " ORDER BY ts DESC, rowid DESC LIMIT ?",
    [Q_PRUNE_AGE] = "DELETE FROM messages WHERE rowid IN (SELECT rowid FROM messages"
                    " WHERE stored_at < ? LIMIT ?)",
    /* the rowid of the newest row past the bound (the index on session orders by rowid) */
    [Q_PRUNE_EDGE] = "SELECT rowid FROM messages WHERE session = ? ORDER BY rowid DESC"
                     " LIMIT 1 OFFSET ?",
    [Q_PRUNE_SESSION] = "DELETE FROM messages WHERE rowid IN (SELECT rowid FROM messages"
                        " WHERE session = ? AND rowid <= ? ORDER BY rowid LIMIT ?)",
    [Q_MSG_PURGE] = "DELETE FROM messages WHERE session = ?",
};

struct wg_db {
    sqlite3 *sql;
    sqlite3_stmt *st[Q_COUNT]; /* prepared on first use */
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
    /* NORMAL by default, FULL around the durable writes: see the top of the file */
    if (exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"))
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
    size_t i;

    if (!db)
        return;
    for (i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(db->st[i]);
    sqlite3_close(db->sql);
    free(db);
}

/* The statement q, ready to bind: the cached one, prepared on first use. If the cached one is
 * still stepping (a walk's callback running the same query), a one-shot copy. Each prepare()
 * is paired with a done(). */
static int prepare(wg_db *db, int q, sqlite3_stmt **st)
{
    sqlite3_stmt *c = db->st[q];
    int rc;

    if (c && !sqlite3_stmt_busy(c)) {
        *st = c;
        return 0;
    }
    rc = sqlite3_prepare_v3(db->sql, stmt_sql[q], -1, c ? 0 : SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc != SQLITE_OK) {
        wa_log_error(COMPONENT, "prepare: %s", sqlite3_errmsg(db->sql));
        return WA_ESTORE;
    }
    if (!c)
        db->st[q] = *st;
    return 0;
}

/* Give back a statement from prepare(): reset (ending its read or write), bindings cleared. */
static void done(wg_db *db, int q, sqlite3_stmt *st)
{
    if (st != db->st[q]) {
        sqlite3_finalize(st);
        return;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* The writes that stay synchronous=FULL (see the top of the file): the level is switched for
 * the connection's next commit and back. A failed switch leaves the level as it was: the write
 * still happens, at most less durable on power loss. */
static void durable(wg_db *db, int on)
{
    exec(db, on ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
}

int wg_db_session_insert(wg_db *db, const char *name, int64_t created_at, int want_running,
                         const char *config_json)
{
    sqlite3_stmt *st;
    int rc;

    if ((rc = prepare(db, Q_SESSION_INSERT, &st)))
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, created_at);
    sqlite3_bind_int(st, 3, want_running ? 1 : 0);
    sqlite3_bind_text(st, 4, config_json ? config_json : "{}", -1, SQLITE_STATIC);
    durable(db, 1);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        rc = 0;
    else if (sqlite3_extended_errcode(db->sql) == SQLITE_CONSTRAINT_PRIMARYKEY)
        rc = WA_EEXIST;
    else {
        wa_log_error(COMPONENT, "insert: %s", sqlite3_errmsg(db->sql));
        rc = WA_ESTORE;
    }
    done(db, Q_SESSION_INSERT, st);
    durable(db, 0);
    return rc;
}

/* One write statement q with a text binding (after an int one when bind_arg), committed FULL
 * when is_durable. 0, WA_ENOTFOUND (no row changed), WA_ESTORE. */
static int update_one(wg_db *db, int q, const char *name, int arg, int bind_arg, int is_durable)
{
    sqlite3_stmt *st;
    int rc;

    if ((rc = prepare(db, q, &st)))
        return rc;
    if (bind_arg) {
        sqlite3_bind_int(st, 1, arg);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    }
    if (is_durable)
        durable(db, 1);
    if (sqlite3_step(st) != SQLITE_DONE) {
        wa_log_error(COMPONENT, "update: %s", sqlite3_errmsg(db->sql));
        rc = WA_ESTORE;
    } else {
        rc = sqlite3_changes(db->sql) ? 0 : WA_ENOTFOUND;
    }
    done(db, q, st);
    if (is_durable)
        durable(db, 0);
    return rc;
}

int wg_db_session_set_running(wg_db *db, const char *name, int want_running)
{
    return update_one(db, Q_SESSION_SET_RUNNING, name, want_running ? 1 : 0, 1, 1);
}

int wg_db_session_delete(wg_db *db, const char *name)
{
    return update_one(db, Q_SESSION_DELETE, name, 0, 0, 1);
}

int wg_db_sessions_load(wg_db *db, wg_db_session_cb cb, void *user_data)
{
    sqlite3_stmt *st;
    int rc, step;

    if ((rc = prepare(db, Q_SESSIONS_LOAD, &st)))
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
    done(db, Q_SESSIONS_LOAD, st);
    return rc;
}

int wg_db_probe(wg_db *db)
{
    sqlite3_stmt *st;
    int rc;

    if ((rc = prepare(db, Q_PROBE, &st)))
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : WA_ESTORE;
    done(db, Q_PROBE, st);
    return rc;
}

/* ---- the queue of sends made while a session reconnects (committed FULL: the 202 promised
 * them) ---- */

int wg_db_queue_add(wg_db *db, const char *id, const char *session, const char *body,
                    int64_t queued_at)
{
    sqlite3_stmt *st;
    int rc;

    if ((rc = prepare(db, Q_QUEUE_ADD, &st)))
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, session, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, body, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, queued_at);
    durable(db, 1);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : WA_ESTORE;
    if (rc)
        wa_log_error(COMPONENT, "queue: %s", sqlite3_errmsg(db->sql));
    done(db, Q_QUEUE_ADD, st);
    durable(db, 0);
    return rc;
}

int wg_db_queue_delete(wg_db *db, const char *id)
{
    /* a delete lost on power loss would send the message twice */
    return update_one(db, Q_QUEUE_DELETE, id, 0, 0, 1);
}

int wg_db_queue_purge(wg_db *db, const char *session)
{
    int rc = update_one(db, Q_QUEUE_PURGE, session, 0, 0, 1);

    return rc == WA_ENOTFOUND ? 0 : rc;
}

int wg_db_queue_count(wg_db *db, const char *session, size_t *n)
{
    sqlite3_stmt *st;
    int rc;

    if ((rc = prepare(db, Q_QUEUE_COUNT, &st)))
        return rc;
    sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        *n = (size_t)sqlite3_column_int64(st, 0);
    else
        rc = WA_ESTORE;
    done(db, Q_QUEUE_COUNT, st);
    return rc;
}

int wg_db_queue_load(wg_db *db, const char *session, size_t limit, wg_db_queue_cb cb,
                     void *user_data)
{
    sqlite3_stmt *st;
    int rc, step;

    if ((rc = prepare(db, Q_QUEUE_LOAD, &st)))
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
    done(db, Q_QUEUE_LOAD, st);
    return rc;
}

/* ---- the message store (synchronous=NORMAL: see the top of the file) ---- */

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

    if ((rc = prepare(db, Q_MSG_PUT, &st)))
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
    done(db, Q_MSG_PUT, st);
    return rc;
}

int wg_db_msg_exists(wg_db *db, const char *session, const char *chat, const char *id)
{
    sqlite3_stmt *st;
    int rc;

    if ((rc = prepare(db, Q_MSG_EXISTS, &st)))
        return rc;
    sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, chat, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    rc = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : WA_ESTORE;
    done(db, Q_MSG_EXISTS, st);
    return rc;
}

int wg_db_msg_set_status(wg_db *db, const char *session, const char *chat, const char *id,
                         const char *status)
{
    sqlite3_stmt *st;
    int rc, rank = status_rank(status);

    if (rank < 0)
        return WA_EINVAL;
    if ((rc = prepare(db, Q_MSG_SET_STATUS, &st)))
        return rc;
    sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, session, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    bind_opt_text(st, 4, chat);
    sqlite3_bind_int(st, 5, rank);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : WA_ESTORE;
    done(db, Q_MSG_SET_STATUS, st);
    return rc;
}

int wg_db_chats(wg_db *db, const char *session, size_t limit, wg_db_chat_cb cb, void *user_data)
{
    sqlite3_stmt *st;
    int rc, step;

    if ((rc = prepare(db, Q_CHATS, &st)))
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
    done(db, Q_CHATS, st);
    return rc;
}

int wg_db_messages(wg_db *db, const char *session, const char *chat, const char *before_id,
                   int64_t before_ts, size_t limit, wg_db_msg_cb cb, void *user_data)
{
    sqlite3_stmt *st = NULL;
    int64_t cut_ts = INT64_MAX, cut_row = INT64_MAX;
    int rc, step;

    if (before_id && before_id[0]) {
        if ((rc = prepare(db, Q_MSG_CUT, &st)))
            return rc;
        sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, chat, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, before_id, -1, SQLITE_STATIC);
        step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            cut_ts = sqlite3_column_int64(st, 0);
            cut_row = sqlite3_column_int64(st, 1);
        }
        done(db, Q_MSG_CUT, st);
        if (step == SQLITE_DONE)
            return WA_ENOTFOUND;
        if (step != SQLITE_ROW)
            return WA_ESTORE;
    } else if (before_ts > 0) {
        cut_ts = before_ts;
        cut_row = 0; /* strictly older than before_ts */
    }
    if ((rc = prepare(db, Q_MESSAGES, &st)))
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
    done(db, Q_MESSAGES, st);
    return rc;
}

/* Run the bounded DELETE q with two int64 bindings (and an optional text one first); rows
 * deleted are added to *n. */
static int delete_bounded(wg_db *db, int q, const char *text, int64_t a, int64_t b, size_t *n)
{
    sqlite3_stmt *st;
    int rc, i = 1;

    if ((rc = prepare(db, q, &st)))
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
    done(db, q, st);
    return rc;
}

int wg_db_msg_prune_age(wg_db *db, int64_t cut, size_t budget, size_t *deleted)
{
    *deleted = 0;
    return delete_bounded(db, Q_PRUNE_AGE, NULL, cut, (int64_t)budget, deleted);
}

int wg_db_msg_prune_session(wg_db *db, const char *session, size_t keep, size_t budget,
                            size_t *deleted)
{
    sqlite3_stmt *st;
    int64_t edge;
    int rc, step;

    *deleted = 0;
    if ((rc = prepare(db, Q_PRUNE_EDGE, &st)))
        return rc;
    sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)keep);
    step = sqlite3_step(st);
    edge = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    done(db, Q_PRUNE_EDGE, st);
    if (step != SQLITE_ROW)
        return step == SQLITE_DONE ? 0 : WA_ESTORE;
    return delete_bounded(db, Q_PRUNE_SESSION, session, edge, (int64_t)budget, deleted);
}

int wg_db_msg_purge(wg_db *db, const char *session)
{
    int rc = update_one(db, Q_MSG_PURGE, session, 0, 0, 0);

    return rc == WA_ENOTFOUND ? 0 : rc;
}
