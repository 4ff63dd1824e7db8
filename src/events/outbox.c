/*
 * outbox.c - the durable event outbox in SQLite (see outbox.h for the schema and the rules).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "events/outbox.h"

#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/alloc.h"
#include "core/log.h"
#include "wa/error.h"

#define COMPONENT "outbox"

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INSERT_EVENT,
    ST_INSERT_DELIVERY,
    ST_LAST_ID,
    ST_LIVE_ADD,
    ST_LIVE_DEL,
    ST_DROP_TARGET,
    ST_DUE,
    ST_CLAIM,
    ST_DELIVERED,
    ST_RETRY,
    ST_FAILED,
    ST_UNCLAIM,
    ST_WAKE,
    ST_NEXT_DUE,
    ST_REPLAY,
    ST_INFO,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INSERT_EVENT] = "INSERT INTO wg_events(id, ts, session, event, body) VALUES (?1, ?2, ?3, "
                        "?4, ?5)",
    [ST_INSERT_DELIVERY] = "INSERT INTO wg_deliveries(seq, target, next_at) VALUES (?1, ?2, ?3)",
    [ST_LAST_ID] = "SELECT id FROM wg_events ORDER BY id DESC LIMIT 1",
    [ST_LIVE_ADD] = "INSERT OR IGNORE INTO temp.wg_live(target) VALUES (?1)",
    [ST_LIVE_DEL] = "DELETE FROM temp.wg_live WHERE target = ?1",
    [ST_DROP_TARGET] = "DELETE FROM wg_deliveries WHERE target = ?1 AND state IN (0, 1)",
    [ST_DUE] = "SELECT d.seq, d.target, d.attempts, e.id, e.event, e.body FROM wg_deliveries d "
               "JOIN wg_events e ON e.seq = d.seq WHERE d.state = 0 AND "
               "(d.next_at <= ?1 OR d.last_try < ?2) AND d.target IN (SELECT target FROM "
               "temp.wg_live) ORDER BY d.next_at, d.seq LIMIT ?3",
    [ST_CLAIM] = "UPDATE wg_deliveries SET state = 1, attempts = attempts + 1, last_try = ?3 "
                 "WHERE seq = ?1 AND target = ?2 AND state = 0",
    [ST_DELIVERED] = "DELETE FROM wg_deliveries WHERE seq = ?1 AND target = ?2",
    [ST_RETRY] = "UPDATE wg_deliveries SET state = 0, next_at = ?3, last_status = ?4, "
                 "last_error = ?5 WHERE seq = ?1 AND target = ?2",
    [ST_FAILED] = "UPDATE wg_deliveries SET state = 2, last_status = ?3, last_error = ?4 WHERE "
                  "seq = ?1 AND target = ?2",
    [ST_UNCLAIM] = "UPDATE wg_deliveries SET state = 0, next_at = ?3, attempts = MAX(attempts - "
                   "1, 0) WHERE seq = ?1 AND target = ?2 AND state = 1",
    [ST_WAKE] = "UPDATE wg_deliveries SET next_at = ?2 WHERE target = ?1 AND state = 0 AND "
                "next_at > ?2",
    [ST_NEXT_DUE] = "SELECT MIN(next_at) FROM wg_deliveries WHERE state = 0 AND target IN "
                    "(SELECT target FROM temp.wg_live)",
    [ST_REPLAY] = "SELECT id, session, event, body FROM wg_events WHERE id > ?1 ORDER BY id "
                  "LIMIT ?2",
    [ST_INFO] = "SELECT d.attempts, d.state, d.last_status FROM wg_deliveries d JOIN wg_events e "
                "ON e.seq = d.seq WHERE e.id = ?1 AND d.target = ?2",
};

struct wg_outbox {
    sqlite3 *sql;
    sqlite3_stmt *st[ST_COUNT];
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS wg_outbox_meta (k TEXT PRIMARY KEY NOT NULL, v TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS wg_events ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE,"
    " ts INTEGER NOT NULL,"
    " session TEXT,"
    " event TEXT NOT NULL,"
    " body TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS wg_events_ts ON wg_events(ts);"
    "CREATE TABLE IF NOT EXISTS wg_deliveries ("
    " seq INTEGER NOT NULL,"
    " target TEXT NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_at INTEGER NOT NULL,"
    " last_try INTEGER NOT NULL DEFAULT 0,"
    " last_status INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT,"
    " PRIMARY KEY (seq, target)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS wg_deliveries_due ON wg_deliveries(state, next_at);"
    "CREATE INDEX IF NOT EXISTS wg_deliveries_target ON wg_deliveries(target, state);"
    "INSERT OR IGNORE INTO wg_outbox_meta(k, v) VALUES ('schema', '1');"
    "CREATE TEMP TABLE IF NOT EXISTS wg_live (target TEXT PRIMARY KEY NOT NULL);";

static int exec(wg_outbox *ob, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(ob->sql, sql, NULL, NULL, &msg) != SQLITE_OK) {
        wa_log_error(COMPONENT, "%s", msg ? msg : sqlite3_errmsg(ob->sql));
        sqlite3_free(msg);
        return WA_ESTORE;
    }
    return 0;
}

/* Run a statement that returns no row, then reset it. */
static int step_done(wg_outbox *ob, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        if (rc != SQLITE_CONSTRAINT)
            wa_log_error(COMPONENT, "%s", sqlite3_errmsg(ob->sql));
        return rc == SQLITE_CONSTRAINT ? WA_EEXIST : WA_ESTORE;
    }
    return 0;
}

static void finish(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static int schema_check(wg_outbox *ob)
{
    sqlite3_stmt *st = NULL;
    int rc = WA_ESTORE;

    if (sqlite3_prepare_v2(ob->sql, "SELECT v FROM wg_outbox_meta WHERE k = 'schema'", -1, &st,
                           NULL) != SQLITE_OK)
        return WA_ESTORE;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        if (v && atoi(v) <= WG_OUTBOX_SCHEMA_VERSION)
            rc = 0;
        else
            wa_log_error(COMPONENT, "outbox schema %s is newer than this build", v ? v : "?");
    }
    sqlite3_finalize(st);
    return rc;
}

int wg_outbox_open(const char *path, int fsync_full, wg_outbox **out)
{
    wg_outbox *ob;
    int fd, i, rc = WA_ESTORE;

    /* 0600 from the start: events carry message texts */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        wa_log_error(COMPONENT, "cannot open %s", path);
        return WA_ESTORE;
    }
    close(fd);
    ob = wa_calloc(1, sizeof *ob);
    if (!ob)
        return WA_ENOMEM;
    if (sqlite3_open_v2(path, &ob->sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        wa_log_error(COMPONENT, "cannot open %s: %s", path,
                     ob->sql ? sqlite3_errmsg(ob->sql) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(ob->sql, WG_OUTBOX_BUSY_TIMEOUT_MS);
    /* wagate opens it NORMAL (fsync_full 0): an event stored before libwa sends its receipt
     * must survive a crash of the process, which WAL gives without an fsync per commit; a
     * power loss may drop the last events, as it may drop libwa's own recent state. */
    if (exec(ob, "PRAGMA journal_mode=WAL") ||
        exec(ob, fsync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL") ||
        exec(ob, schema) || schema_check(ob))
        goto fail;
    for (i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(ob->sql, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &ob->st[i],
                               NULL) != SQLITE_OK) {
            wa_log_error(COMPONENT, "prepare: %s", sqlite3_errmsg(ob->sql));
            goto fail;
        }
    }
    /* attempts that were in flight when the previous process stopped: send them again */
    if (exec(ob, "UPDATE wg_deliveries SET state = 0 WHERE state = 1"))
        goto fail;
    *out = ob;
    return 0;
fail:
    wg_outbox_close(ob);
    return rc;
}

void wg_outbox_close(wg_outbox *ob)
{
    int i;

    if (!ob)
        return;
    for (i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(ob->st[i]);
    sqlite3_close(ob->sql);
    wa_free(ob);
}

int wg_outbox_last_id(wg_outbox *ob, char id[WG_EVENT_ID_LEN + 1])
{
    sqlite3_stmt *st = ob->st[ST_LAST_ID];
    int rc = sqlite3_step(st);

    id[0] = '\0';
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        if (v && strlen(v) == WG_EVENT_ID_LEN)
            memcpy(id, v, WG_EVENT_ID_LEN + 1);
    }
    finish(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : WA_ESTORE;
}

int wg_outbox_insert(wg_outbox *ob, const wg_envelope *env, const char *const *targets,
                     size_t ntargets, int64_t now, int64_t *seq)
{
    sqlite3_stmt *st;
    int64_t s;
    size_t i;
    int rc;

    if (step_done(ob, ob->st[ST_BEGIN]))
        return WA_ESTORE;
    st = ob->st[ST_INSERT_EVENT];
    sqlite3_bind_text(st, 1, env->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, env->ts_ms);
    if (env->session[0])
        sqlite3_bind_text(st, 3, env->session, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_text(st, 4, env->event, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, env->json, (int)env->json_len, SQLITE_STATIC);
    rc = step_done(ob, st);
    if (rc)
        goto fail;
    s = sqlite3_last_insert_rowid(ob->sql);
    st = ob->st[ST_INSERT_DELIVERY];
    for (i = 0; i < ntargets; i++) {
        sqlite3_bind_int64(st, 1, s);
        sqlite3_bind_text(st, 2, targets[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        rc = step_done(ob, st);
        if (rc == WA_EEXIST) /* the same target twice: one delivery */
            continue;
        if (rc)
            goto fail;
    }
    if (step_done(ob, ob->st[ST_COMMIT])) {
        rc = WA_ESTORE;
        goto fail;
    }
    if (seq)
        *seq = s;
    return 0;
fail:
    step_done(ob, ob->st[ST_ROLLBACK]);
    return rc;
}

int wg_outbox_set_live(wg_outbox *ob, const char *target, int live)
{
    sqlite3_stmt *st = ob->st[live ? ST_LIVE_ADD : ST_LIVE_DEL];

    sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
    return step_done(ob, st);
}

int wg_outbox_drop_target(wg_outbox *ob, const char *target, int64_t *n)
{
    sqlite3_stmt *st = ob->st[ST_DROP_TARGET];
    int rc;

    sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
    rc = step_done(ob, st);
    if (!rc && n)
        *n = sqlite3_changes(ob->sql);
    return rc;
}

void wg_delivery_cleanup(wg_delivery *d)
{
    wa_free(d->body);
    d->body = NULL;
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const char *v = (const char *)sqlite3_column_text(st, col);
    size_t n = v ? strlen(v) : 0;

    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, v, n);
    dst[n] = '\0';
}

int wg_outbox_due(wg_outbox *ob, int64_t now, int64_t flush_start, wg_delivery *rows, size_t max,
                  size_t *n)
{
    sqlite3_stmt *st = ob->st[ST_DUE];
    size_t got = 0, i, kept = 0;
    int rc = 0, s;

    *n = 0;
    if (max == 0)
        return 0;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, flush_start > 0 ? flush_start : 0);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
    while ((s = sqlite3_step(st)) == SQLITE_ROW && got < max) {
        wg_delivery *d = &rows[got];
        const void *body = sqlite3_column_text(st, 5);
        int blen = sqlite3_column_bytes(st, 5);

        memset(d, 0, sizeof *d);
        d->seq = sqlite3_column_int64(st, 0);
        copy_col(d->target, sizeof d->target, st, 1);
        d->attempts = (unsigned)sqlite3_column_int(st, 2);
        copy_col(d->id, sizeof d->id, st, 3);
        copy_col(d->event, sizeof d->event, st, 4);
        d->body = wa_malloc((size_t)blen + 1);
        if (!d->body) {
            rc = WA_ENOMEM;
            break;
        }
        if (blen)
            memcpy(d->body, body, (size_t)blen);
        d->body[blen] = '\0';
        d->body_len = (size_t)blen;
        got++;
    }
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        rc = WA_ESTORE;
    finish(st);
    /* claim each row; one that is gone or taken meanwhile is dropped from the answer */
    for (i = 0; i < got; i++) {
        sqlite3_stmt *c = ob->st[ST_CLAIM];
        int r;
        sqlite3_bind_int64(c, 1, rows[i].seq);
        sqlite3_bind_text(c, 2, rows[i].target, -1, SQLITE_STATIC);
        sqlite3_bind_int64(c, 3, now);
        r = step_done(ob, c);
        if (r || sqlite3_changes(ob->sql) != 1) {
            if (r)
                rc = r;
            wg_delivery_cleanup(&rows[i]);
            continue;
        }
        rows[i].attempts++;
        if (kept != i)
            rows[kept] = rows[i];
        kept++;
    }
    *n = kept;
    return rc;
}

static int seq_target(wg_outbox *ob, int which, int64_t seq, const char *target)
{
    sqlite3_stmt *st = ob->st[which];

    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_text(st, 2, target, -1, SQLITE_STATIC);
    return step_done(ob, st);
}

int wg_outbox_delivered(wg_outbox *ob, int64_t seq, const char *target)
{
    return seq_target(ob, ST_DELIVERED, seq, target);
}

static void bind_error(sqlite3_stmt *st, int col, const char *error)
{
    if (error)
        sqlite3_bind_text(
            st, col, error,
            (int)(strlen(error) > WG_OUTBOX_ERROR_MAX ? WG_OUTBOX_ERROR_MAX : strlen(error)),
            SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, col);
}

int wg_outbox_retry(wg_outbox *ob, int64_t seq, const char *target, int64_t next_at, int status,
                    const char *error)
{
    sqlite3_stmt *st = ob->st[ST_RETRY];

    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_text(st, 2, target, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, next_at);
    sqlite3_bind_int(st, 4, status);
    bind_error(st, 5, error);
    return step_done(ob, st);
}

int wg_outbox_failed(wg_outbox *ob, int64_t seq, const char *target, int status, const char *error)
{
    sqlite3_stmt *st = ob->st[ST_FAILED];

    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_text(st, 2, target, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, status);
    bind_error(st, 4, error);
    return step_done(ob, st);
}

int wg_outbox_unclaim(wg_outbox *ob, int64_t seq, const char *target, int64_t at)
{
    sqlite3_stmt *st = ob->st[ST_UNCLAIM];

    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_text(st, 2, target, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, at);
    return step_done(ob, st);
}

int wg_outbox_wake_target(wg_outbox *ob, const char *target, int64_t now)
{
    sqlite3_stmt *st = ob->st[ST_WAKE];

    sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    return step_done(ob, st);
}

int wg_outbox_next_due(wg_outbox *ob, int64_t *at)
{
    sqlite3_stmt *st = ob->st[ST_NEXT_DUE];
    int s = sqlite3_step(st), rc = WA_ESTORE;

    if (s == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
            rc = WA_ENOTFOUND;
        } else {
            *at = sqlite3_column_int64(st, 0);
            rc = 0;
        }
    }
    finish(st);
    return rc;
}

int wg_outbox_count(wg_outbox *ob, int state, const char *target, int64_t *n)
{
    sqlite3_stmt *st = NULL;
    const char *sql;
    int rc = WA_ESTORE;

    /* not hot: prepared per call */
    if (state < 0)
        sql = target ? "SELECT COUNT(*) FROM wg_deliveries WHERE state IN (0, 1) AND target = ?1"
                     : "SELECT COUNT(*) FROM wg_deliveries WHERE state IN (0, 1)";
    else
        sql = target ? "SELECT COUNT(*) FROM wg_deliveries WHERE state = ?2 AND target = ?1"
                     : "SELECT COUNT(*) FROM wg_deliveries WHERE state = ?2";
    if (sqlite3_prepare_v2(ob->sql, sql, -1, &st, NULL) != SQLITE_OK)
        return WA_ESTORE;
    if (target)
        sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
    if (state >= 0)
        sqlite3_bind_int(st, 2, state);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *n = sqlite3_column_int64(st, 0);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

int wg_outbox_delivery_info(wg_outbox *ob, const char *id, const char *target, unsigned *attempts,
                            int *state, int *last_status)
{
    sqlite3_stmt *st = ob->st[ST_INFO];
    int s, rc = WA_ENOTFOUND;

    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, target, -1, SQLITE_STATIC);
    s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        if (attempts)
            *attempts = (unsigned)sqlite3_column_int(st, 0);
        if (state)
            *state = sqlite3_column_int(st, 1);
        if (last_status)
            *last_status = sqlite3_column_int(st, 2);
        rc = 0;
    } else if (s != SQLITE_DONE) {
        rc = WA_ESTORE;
    }
    finish(st);
    return rc;
}

int wg_outbox_replay(wg_outbox *ob, const char *after_id, size_t max, wg_outbox_event_cb cb,
                     void *user_data, size_t *nread)
{
    sqlite3_stmt *st = ob->st[ST_REPLAY];
    size_t count = 0;
    int s, rc = 0;

    sqlite3_bind_text(st, 1, after_id ? after_id : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *session = (const char *)sqlite3_column_text(st, 1);
        const char *event = (const char *)sqlite3_column_text(st, 2);
        const char *body = (const char *)sqlite3_column_text(st, 3);
        size_t blen = (size_t)sqlite3_column_bytes(st, 3);

        count++;
        if (!id || !event || !body)
            continue;
        rc = cb(id, session, event, body, blen, user_data);
        if (rc)
            break;
    }
    if (!rc && s != SQLITE_DONE)
        rc = WA_ESTORE;
    finish(st);
    if (nread)
        *nread = count;
    return rc;
}

int wg_outbox_prune(wg_outbox *ob, int64_t cut_ms, int64_t keep_max, int64_t *deleted)
{
    sqlite3_stmt *st = NULL;
    int64_t maxseq = 0, below;
    int rc = WA_ESTORE;

    if (sqlite3_prepare_v2(ob->sql, "SELECT COALESCE(MAX(seq), 0) FROM wg_events", -1, &st, NULL) !=
        SQLITE_OK)
        return WA_ESTORE;
    if (sqlite3_step(st) == SQLITE_ROW)
        maxseq = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    below = maxseq - keep_max; /* events with seq <= below are beyond the newest keep_max */
    if (exec(ob, "BEGIN IMMEDIATE"))
        return WA_ESTORE;
#define PRUNABLE "(ts < ?1 OR seq <= ?2) AND seq < ?3"
    {
        static const char *const sql[] = {
            /* deliveries nobody will ask for again: their target is gone and the event old */
            "DELETE FROM wg_deliveries WHERE state IN (0, 1) AND target NOT IN (SELECT target "
            "FROM temp.wg_live) AND seq IN (SELECT seq FROM wg_events WHERE ts < ?1 AND seq < "
            "?3)",
            "DELETE FROM wg_deliveries WHERE state = 2 AND seq IN (SELECT seq FROM wg_events "
            "WHERE " PRUNABLE ")",
            "DELETE FROM wg_events WHERE " PRUNABLE " AND NOT EXISTS (SELECT 1 FROM "
            "wg_deliveries d WHERE d.seq = wg_events.seq)",
        };
        size_t i;
        for (i = 0; i < sizeof sql / sizeof *sql; i++) {
            if (sqlite3_prepare_v2(ob->sql, sql[i], -1, &st, NULL) != SQLITE_OK)
                goto out;
            /* numbered parameters: ?2 exists in every statement's numbering even if unused */
            sqlite3_bind_int64(st, 1, cut_ms);
            sqlite3_bind_int64(st, 2, below);
            sqlite3_bind_int64(st, 3, maxseq);
            if (sqlite3_step(st) != SQLITE_DONE)
                goto out;
            if (i == 2 && deleted)
                *deleted = sqlite3_changes(ob->sql);
            sqlite3_finalize(st);
            st = NULL;
        }
    }
#undef PRUNABLE
    rc = exec(ob, "COMMIT");
out:
    sqlite3_finalize(st);
    if (rc)
        exec(ob, "ROLLBACK");
    return rc;
}
