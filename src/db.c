/*
 * db.c - the gateway's session list in SQLite (see db.h).
 *
 * Schema version 1 (PRAGMA user_version):
 *   sessions(name TEXT PRIMARY KEY, created_at INTEGER, want_running INTEGER, config TEXT)
 *   health(id INTEGER PRIMARY KEY CHECK (id = 1), checked_at INTEGER)  -- write probe
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

#define SCHEMA_VERSION 1
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
                             "PRAGMA user_version = 1;";

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
