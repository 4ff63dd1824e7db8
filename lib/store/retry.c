/*
 * retry.c - the store's pending retries (store.h "pending retries"): incoming messages that
 * failed to decrypt and were asked again with a retry receipt. The server takes the retry
 * receipt as the acknowledgement of its delivery, so a client killed before the re-send came
 * would lose the message with its in-memory retry state; this table lets the next run ask again.
 *
 * The table is account-scoped and listed in store.c's tables[] (schema 4), so wipe, delete,
 * snapshot and restore cover it. Bounded: WA_STORE_RETRY_KEEP rows per account, the oldest
 * (first asked) dropped beyond.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "store/store_int.h"
#include "wa/error.h"

enum { Q_RETRY_PUT, Q_RETRY_DEL, Q_RETRY_LIST, Q_RETRY_PRUNE, Q_COUNT };

_Static_assert(WA__STORE_RETRY_BASE + Q_COUNT <= WA__STORE_STMTS,
               "retry.c statement slots overflow");

static const char *const queries[Q_COUNT] = {
    [Q_RETRY_PUT] = "INSERT INTO retry_pending (account, msg_id, chat, sender, participant,"
                    " recipient, t, count, asked) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                    " ON CONFLICT (account, msg_id, sender, participant) DO UPDATE SET"
                    " chat = excluded.chat, recipient = excluded.recipient, t = excluded.t,"
                    " count = excluded.count, asked = excluded.asked",
    [Q_RETRY_DEL] = "DELETE FROM retry_pending WHERE account = ?1 AND msg_id = ?2 AND sender = ?3"
                    " AND participant = ?4",
    [Q_RETRY_LIST] = "SELECT msg_id, chat, sender, participant, recipient, t, count, asked"
                     " FROM retry_pending WHERE account = ?1 ORDER BY rowid LIMIT ?2",
    [Q_RETRY_PRUNE] = "DELETE FROM retry_pending WHERE account = ?1 AND rowid <= (SELECT rowid"
                      " FROM retry_pending WHERE account = ?1 ORDER BY rowid DESC LIMIT 1"
                      " OFFSET ?2)",
};

static sqlite3_stmt *stmt(wa_store *s, int q)
{
    return wa__store_stmt(s, WA__STORE_RETRY_BASE + q, queries[q]);
}

/* A NUL-terminated text shorter than cap (empty allowed when empty_ok). */
static int text_ok(const char *t, size_t cap, int empty_ok)
{
    size_t n;

    if (!t)
        return 0;
    n = strnlen(t, cap);
    return n < cap && (empty_ok || n > 0);
}

/* Copy column i (text) into dst of cap bytes. 0 or WA_ESTORE. */
static int col_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *v = sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);

    if (!v || n >= cap)
        return WA_ESTORE;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 0;
}

int wa_store_retry_put(wa_store *s, int64_t id, const wa_store_retry *r, size_t *dropped)
{
    sqlite3_stmt *st;
    int rc;

    if (dropped)
        *dropped = 0;
    if (!s || !r || !text_ok(r->msg_id, sizeof r->msg_id, 0) ||
        !text_ok(r->key, sizeof r->key, 0) || !text_ok(r->from, sizeof r->from, 0) ||
        !text_ok(r->participant, sizeof r->participant, 1) ||
        !text_ok(r->recipient, sizeof r->recipient, 1) || !text_ok(r->t, sizeof r->t, 1))
        return WA_EINVAL;
    st = stmt(s, Q_RETRY_PUT);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, r->msg_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r->participant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, r->recipient, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, r->t, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)r->count);
    sqlite3_bind_int64(st, 9, r->asked);
    rc = wa__store_run(s, st);
    wa__store_done(st);
    if (rc)
        return rc;
    st = stmt(s, Q_RETRY_PRUNE);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, WA_STORE_RETRY_KEEP);
    rc = wa__store_run(s, st);
    if (rc == 0 && dropped)
        *dropped = (size_t)sqlite3_changes(s->db);
    wa__store_done(st);
    return rc;
}

int wa_store_retry_del(wa_store *s, int64_t id, const char *msg_id, const char *from,
                       const char *participant, int *deleted)
{
    sqlite3_stmt *st;
    int rc;

    if (deleted)
        *deleted = 0;
    if (!participant)
        participant = "";
    if (!s || !text_ok(msg_id, WA_STORE_MSGID_MAX, 0) || !text_ok(from, WA_STORE_JID_MAX, 0) ||
        !text_ok(participant, WA_STORE_JID_MAX, 1))
        return WA_EINVAL;
    st = stmt(s, Q_RETRY_DEL);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, msg_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, participant, -1, SQLITE_STATIC);
    rc = wa__store_run(s, st);
    if (rc == 0 && deleted)
        *deleted = sqlite3_changes(s->db) > 0;
    wa__store_done(st);
    return rc;
}

int wa_store_retry_list(wa_store *s, int64_t id, wa_store_retry *out, size_t cap, size_t *n)
{
    sqlite3_stmt *st;
    size_t k = 0;
    int rc = 0, step = SQLITE_DONE;

    if (!s || !n || (cap && !out))
        return WA_EINVAL;
    *n = 0;
    if (cap == 0)
        return 0;
    st = stmt(s, Q_RETRY_LIST);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)cap);
    while (k < cap && (step = sqlite3_step(st)) == SQLITE_ROW) {
        wa_store_retry *r = &out[k];
        sqlite3_int64 count = sqlite3_column_int64(st, 6);
        memset(r, 0, sizeof *r);
        if (col_text(st, 0, r->msg_id, sizeof r->msg_id) ||
            col_text(st, 1, r->key, sizeof r->key) || col_text(st, 2, r->from, sizeof r->from) ||
            col_text(st, 3, r->participant, sizeof r->participant) ||
            col_text(st, 4, r->recipient, sizeof r->recipient) ||
            col_text(st, 5, r->t, sizeof r->t) || count < 0 || count > 1000) {
            rc = WA_ESTORE;
            break;
        }
        r->count = (unsigned)count;
        r->asked = sqlite3_column_int64(st, 7);
        k++;
    }
    if (rc == 0 && k < cap && step != SQLITE_DONE)
        rc = wa__store_fail(s, "pending retries");
    wa__store_done(st);
    if (rc == 0)
        *n = k;
    return rc;
}
