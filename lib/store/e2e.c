/*
 * e2e.c - the store's end-to-end state (store.h "end-to-end state"): remote identity keys,
 * Signal sessions, group sender keys and which devices got ours, processed message ids and
 * recent sends. All of it is account-scoped and listed in store.c's tables[], so wipe, delete,
 * snapshot and restore cover it.
 *
 * Records are libsignal's serialized records, stored as they come (lib/signal's adapter in the
 * client maps its callbacks onto these functions). Reads copy into the caller's capped wa_buf;
 * a record larger than the buffer's room is WA_ELIMIT, never a truncation.
 *
 * Bounded tables: msg_seen keeps the newest WA_STORE_SEEN_KEEP ids per account and sent_msg the
 * newest WA_STORE_SENT_KEEP sends; older rows are pruned every PRUNE_EVERY inserts (cheap:
 * the rowid order within an account is the insertion order).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_int.h"
#include "wa/error.h"

#define PRUNE_EVERY 64

enum {
    Q_OWN_ID,
    Q_IDK_GET,
    Q_IDK_PUT,
    Q_SESS_GET,
    Q_SESS_GET_NAME,
    Q_SESS_PUT,
    Q_SESS_DEL,
    Q_SK_GET,
    Q_SK_PUT,
    Q_SK_DEL,
    Q_SKDM_HAS,
    Q_SKDM_PUT,
    Q_SKDM_CLEAR,
    Q_SEEN_GET,
    Q_SEEN_PUT,
    Q_SEEN_PRUNE,
    Q_SENT_PUT,
    Q_SENT_GET,
    Q_SENT_PRUNE,
    Q_MV_SESS,
    Q_MV_SESS_DEL,
    Q_MV_IDK,
    Q_MV_IDK_DEL,
    Q_MV_SK,
    Q_MV_SK_DEL,
    Q_SEEN_DONE,
    Q_COUNT
};

_Static_assert(WA__STORE_E2E_BASE + Q_COUNT <= WA__STORE_APPSTATE_BASE,
               "e2e.c statement slots overflow");

static const char *const queries[Q_COUNT] = {
    [Q_OWN_ID] =
        "SELECT identity_priv, identity_pub, registration_id FROM creds WHERE account = ?1",
    [Q_IDK_GET] = "SELECT key FROM identity WHERE account = ?1 AND name = ?2 AND device = ?3",
    [Q_IDK_PUT] = "INSERT OR REPLACE INTO identity (account, name, device, key)"
                  " VALUES (?1, ?2, ?3, ?4)",
    [Q_SESS_GET] = "SELECT record FROM session WHERE account = ?1 AND name = ?2 AND device = ?3",
    [Q_SESS_GET_NAME] = "SELECT device, record FROM session WHERE account = ?1 AND name = ?2",
    [Q_SESS_PUT] = "INSERT OR REPLACE INTO session (account, name, device, record)"
                   " VALUES (?1, ?2, ?3, ?4)",
    [Q_SESS_DEL] = "DELETE FROM session WHERE account = ?1 AND name = ?2 AND device = ?3",
    [Q_SK_GET] = "SELECT record FROM sender_key WHERE account = ?1 AND grp = ?2 AND name = ?3"
                 " AND device = ?4",
    [Q_SK_PUT] = "INSERT OR REPLACE INTO sender_key (account, grp, name, device, record)"
                 " VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_SK_DEL] = "DELETE FROM sender_key WHERE account = ?1 AND grp = ?2 AND name = ?3"
                 " AND device = ?4",
    [Q_SKDM_HAS] = "SELECT 1 FROM skdm_sent WHERE account = ?1 AND grp = ?2 AND name = ?3"
                   " AND device = ?4",
    [Q_SKDM_PUT] = "INSERT OR IGNORE INTO skdm_sent (account, grp, name, device)"
                   " VALUES (?1, ?2, ?3, ?4)",
    [Q_SKDM_CLEAR] = "DELETE FROM skdm_sent WHERE account = ?1 AND grp = ?2",
    [Q_SEEN_GET] = "SELECT state, payload FROM msg_seen WHERE account = ?1 AND chat = ?2"
                   " AND id = ?3",
    [Q_SEEN_PUT] = "INSERT OR REPLACE INTO msg_seen (account, chat, id, state, t, payload)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_SEEN_PRUNE] = "DELETE FROM msg_seen WHERE account = ?1 AND rowid <= (SELECT rowid FROM"
                     " msg_seen WHERE account = ?1 ORDER BY rowid DESC LIMIT 1 OFFSET ?2)",
    [Q_SENT_PUT] = "INSERT OR REPLACE INTO sent_msg (account, id, chat, payload, t)"
                   " VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_SENT_GET] = "SELECT chat, payload FROM sent_msg WHERE account = ?1 AND id = ?2",
    [Q_SENT_PRUNE] = "DELETE FROM sent_msg WHERE account = ?1 AND rowid <= (SELECT rowid FROM"
                     " sent_msg WHERE account = ?1 ORDER BY rowid DESC LIMIT 1 OFFSET ?2)",
    [Q_MV_SESS] = "UPDATE OR IGNORE session SET name = ?3 WHERE account = ?1 AND name = ?2",
    [Q_MV_SESS_DEL] = "DELETE FROM session WHERE account = ?1 AND name = ?2",
    [Q_MV_IDK] = "UPDATE OR IGNORE identity SET name = ?3 WHERE account = ?1 AND name = ?2",
    [Q_MV_IDK_DEL] = "DELETE FROM identity WHERE account = ?1 AND name = ?2",
    [Q_MV_SK] = "UPDATE OR IGNORE sender_key SET name = ?3 WHERE account = ?1 AND name = ?2",
    [Q_MV_SK_DEL] = "DELETE FROM sender_key WHERE account = ?1 AND name = ?2",
    /* an update in place: no index changes (a REPLACE deletes and inserts the row and its two
     * index entries) */
    [Q_SEEN_DONE] = "UPDATE msg_seen SET state = ?4, payload = NULL WHERE account = ?1"
                    " AND chat = ?2 AND id = ?3",
};

static sqlite3_stmt *stmt(wa_store *s, int q)
{
    return wa__store_stmt(s, WA__STORE_E2E_BASE + q, queries[q]);
}

static int name_ok(const char *name)
{
    size_t n;

    if (!name)
        return 0;
    n = strlen(name);
    return n > 0 && n <= WA_STORE_NAME_MAX;
}

static int addr_ok(const wa_store_addr *a)
{
    return a && name_ok(a->name);
}

static int group_ok(const char *g)
{
    size_t n;

    if (!g)
        return 0;
    n = strlen(g);
    return n > 0 && n <= WA_STORE_GROUP_MAX;
}

static int text_ok(const char *t, size_t max)
{
    size_t n;

    if (!t)
        return 0;
    n = strlen(t);
    return n > 0 && n <= max;
}

static void bind_addr(sqlite3_stmt *st, int first, const wa_store_addr *a)
{
    sqlite3_bind_text(st, first, a->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, first + 1, a->device);
}

/* Step a lookup whose column col is a blob to append to out. 0, WA_ENOTFOUND, WA_ELIMIT,
 * WA_ENOMEM, WA_ESTORE. */
static int step_blob(wa_store *s, sqlite3_stmt *st, int col, wa_buf *out, const char *what)
{
    int rc = sqlite3_step(st);

    if (rc == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(st, col);
        size_t n = (size_t)sqlite3_column_bytes(st, col);
        if (n == 0 || !p || n > WA_STORE_RECORD_MAX)
            return WA_ESTORE;
        return wa_buf_append(out, p, n);
    }
    return rc == SQLITE_DONE ? WA_ENOTFOUND : wa__store_fail(s, what);
}

/* ---- transactions --------------------------------------------------------------------------- */

int wa_store_tx_begin(wa_store *s)
{
    return s ? wa__store_begin(s, 0) : WA_EINVAL;
}

int wa_store_tx_end(wa_store *s, int rc)
{
    return s ? wa__store_finish(s, rc, 0) : WA_EINVAL;
}

/* ---- identities ----------------------------------------------------------------------------- */

int wa_store_own_identity(wa_store *s, int64_t id, uint8_t priv[WA_STORE_KEY_LEN],
                          uint8_t pub[WA_STORE_KEY_LEN], uint32_t *reg_id)
{
    sqlite3_stmt *st;
    uint8_t k[WA_STORE_KEY_LEN], p[WA_STORE_KEY_LEN];
    int64_t reg = 0;
    int rc;

    if (!s || !priv || !pub || !reg_id)
        return WA_EINVAL;
    st = stmt(s, Q_OWN_ID);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        reg = sqlite3_column_int64(st, 2);
        rc = wa__store_col_blob(st, 0, k, sizeof k) | wa__store_col_blob(st, 1, p, sizeof p);
        if (rc || reg < 0 || reg > UINT32_MAX)
            rc = WA_ESTORE;
    } else {
        rc = rc == SQLITE_DONE ? WA_ENOTFOUND : wa__store_fail(s, "own identity");
    }
    wa__store_done(st);
    if (rc == 0) {
        memcpy(priv, k, sizeof k);
        memcpy(pub, p, sizeof p);
        *reg_id = (uint32_t)reg;
    }
    wa_wipe(k, sizeof k);
    return rc;
}

int wa_store_identity_get(wa_store *s, int64_t id, const wa_store_addr *a,
                          uint8_t key[WA_STORE_KEY_LEN])
{
    sqlite3_stmt *st;
    uint8_t k[WA_STORE_KEY_LEN];
    int rc;

    if (!s || !addr_ok(a) || !key)
        return WA_EINVAL;
    st = stmt(s, Q_IDK_GET);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    bind_addr(st, 2, a);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = wa__store_col_blob(st, 0, k, sizeof k);
    else
        rc = rc == SQLITE_DONE ? WA_ENOTFOUND : wa__store_fail(s, "identity");
    wa__store_done(st);
    if (rc == 0)
        memcpy(key, k, sizeof k);
    return rc;
}

int wa_store_identity_put(wa_store *s, int64_t id, const wa_store_addr *a,
                          const uint8_t key[WA_STORE_KEY_LEN])
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !addr_ok(a) || !key)
        return WA_EINVAL;
    st = stmt(s, Q_IDK_PUT);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    bind_addr(st, 2, a);
    sqlite3_bind_blob(st, 4, key, WA_STORE_KEY_LEN, SQLITE_STATIC);
    rc = wa__store_run(s, st);
    wa__store_done(st);
    return rc;
}

/* ---- sessions ------------------------------------------------------------------------------- */

int wa_store_session_get(wa_store *s, int64_t id, const wa_store_addr *a, wa_buf *out)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !addr_ok(a) || !out)
        return WA_EINVAL;
    st = stmt(s, Q_SESS_GET);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    bind_addr(st, 2, a);
    rc = step_blob(s, st, 0, out, "session");
    wa__store_done(st);
    return rc;
}

int wa_store_sessions_get(wa_store *s, int64_t id, const wa_store_addr *a, size_t n, wa_buf *outs,
                          uint8_t *found)
{
    sqlite3_stmt *st;
    size_t i, j;
    int rc = 0, step;

    if (!s || (n && (!a || !outs || !found)))
        return WA_EINVAL;
    for (i = 0; i < n; i++) {
        if (!addr_ok(&a[i]))
            return WA_EINVAL;
        found[i] = 0;
    }
    if (n == 0)
        return 0;
    st = stmt(s, Q_SESS_GET_NAME);
    if (!st)
        return WA_ESTORE;
    /* one read transaction: the records of one send come from one snapshot */
    if (s->tx_depth == 0 && wa__store_exec(s, "BEGIN") != 0)
        return WA_ESTORE;
    for (i = 0; i < n && rc == 0; i++) {
        int seen = 0;
        for (j = 0; j < i; j++)
            if (strcmp(a[j].name, a[i].name) == 0)
                seen = 1;
        if (seen)
            continue; /* this name's rows were read with the first address of it */
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, a[i].name, -1, SQLITE_STATIC);
        while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t dev = sqlite3_column_int64(st, 0);
            const void *p = sqlite3_column_blob(st, 1);
            size_t len = (size_t)sqlite3_column_bytes(st, 1);
            for (j = i; j < n && rc == 0; j++) {
                if (found[j] || a[j].device != dev || strcmp(a[j].name, a[i].name) != 0)
                    continue;
                if (!p || len == 0 || len > WA_STORE_RECORD_MAX)
                    rc = WA_ESTORE;
                else
                    rc = wa_buf_append(&outs[j], p, len);
                if (rc == 0)
                    found[j] = 1;
            }
        }
        if (rc == 0 && step != SQLITE_DONE)
            rc = wa__store_fail(s, "sessions");
        wa__store_done(st);
    }
    if (s->tx_depth == 0)
        wa__store_exec(s, "COMMIT");
    if (rc)
        for (i = 0; i < n; i++)
            found[i] = 0;
    return rc;
}

int wa_store_session_put(wa_store *s, int64_t id, const wa_store_addr *a, const uint8_t *rec,
                         size_t len)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !addr_ok(a) || !rec || len == 0 || len > WA_STORE_RECORD_MAX)
        return WA_EINVAL;
    st = stmt(s, Q_SESS_PUT);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    bind_addr(st, 2, a);
    sqlite3_bind_blob(st, 4, rec, (int)len, SQLITE_STATIC);
    rc = wa__store_run(s, st);
    wa__store_done(st);
    return rc;
}

int wa_store_session_delete(wa_store *s, int64_t id, const wa_store_addr *a)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !addr_ok(a))
        return WA_EINVAL;
    st = stmt(s, Q_SESS_DEL);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    bind_addr(st, 2, a);
    rc = wa__store_run(s, st);
    if (rc == 0)
        rc = sqlite3_changes(s->db) > 0 ? 1 : 0;
    wa__store_done(st);
    return rc;
}

/* ---- sender keys ---------------------------------------------------------------------------- */

static sqlite3_stmt *sk_stmt(wa_store *s, int q, int64_t id, const char *group,
                             const wa_store_addr *a)
{
    sqlite3_stmt *st = stmt(s, q);

    if (st) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, group, -1, SQLITE_STATIC);
        bind_addr(st, 3, a);
    }
    return st;
}

int wa_store_sender_key_get(wa_store *s, int64_t id, const char *group, const wa_store_addr *a,
                            wa_buf *out)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !group_ok(group) || !addr_ok(a) || !out)
        return WA_EINVAL;
    st = sk_stmt(s, Q_SK_GET, id, group, a);
    if (!st)
        return WA_ESTORE;
    rc = step_blob(s, st, 0, out, "sender key");
    wa__store_done(st);
    return rc;
}

int wa_store_sender_key_put(wa_store *s, int64_t id, const char *group, const wa_store_addr *a,
                            const uint8_t *rec, size_t len)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !group_ok(group) || !addr_ok(a) || !rec || len == 0 || len > WA_STORE_RECORD_MAX)
        return WA_EINVAL;
    st = sk_stmt(s, Q_SK_PUT, id, group, a);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_blob(st, 5, rec, (int)len, SQLITE_STATIC);
    rc = wa__store_run(s, st);
    wa__store_done(st);
    return rc;
}

int wa_store_sender_key_delete(wa_store *s, int64_t id, const char *group, const wa_store_addr *a)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !group_ok(group) || !addr_ok(a))
        return WA_EINVAL;
    st = sk_stmt(s, Q_SK_DEL, id, group, a);
    if (!st)
        return WA_ESTORE;
    rc = wa__store_run(s, st);
    if (rc == 0)
        rc = sqlite3_changes(s->db) > 0 ? 1 : 0;
    wa__store_done(st);
    return rc;
}

int wa_store_skdm_has(wa_store *s, int64_t id, const char *group, const wa_store_addr *a)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !group_ok(group) || !addr_ok(a))
        return WA_EINVAL;
    st = sk_stmt(s, Q_SKDM_HAS, id, group, a);
    if (!st)
        return WA_ESTORE;
    rc = sqlite3_step(st);
    rc = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : wa__store_fail(s, "skdm");
    wa__store_done(st);
    return rc;
}

int wa_store_skdm_mark(wa_store *s, int64_t id, const char *group, const wa_store_addr *a, size_t n)
{
    size_t i;
    int rc;

    if (!s || !group_ok(group) || (n && !a))
        return WA_EINVAL;
    for (i = 0; i < n; i++)
        if (!addr_ok(&a[i]))
            return WA_EINVAL;
    rc = wa__store_begin(s, 0);
    if (rc)
        return rc;
    for (i = 0; i < n && rc == 0; i++) {
        sqlite3_stmt *st = sk_stmt(s, Q_SKDM_PUT, id, group, &a[i]);
        rc = st ? wa__store_run(s, st) : WA_ESTORE;
        wa__store_done(st);
    }
    return wa__store_finish(s, rc, 0);
}

int wa_store_skdm_clear(wa_store *s, int64_t id, const char *group)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !group_ok(group))
        return WA_EINVAL;
    st = stmt(s, Q_SKDM_CLEAR);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, group, -1, SQLITE_STATIC);
    rc = wa__store_run(s, st);
    wa__store_done(st);
    return rc;
}

/* ---- PN -> LID ------------------------------------------------------------------------------ */

int wa_store_e2e_rename(wa_store *s, int64_t id, const char *from, const char *to)
{
    static const int steps[] = {Q_MV_SESS,    Q_MV_SESS_DEL, Q_MV_IDK,
                                Q_MV_IDK_DEL, Q_MV_SK,       Q_MV_SK_DEL};
    size_t i;
    int rc;

    if (!s || !name_ok(from) || !name_ok(to))
        return WA_EINVAL;
    if (strcmp(from, to) == 0)
        return 0;
    rc = wa__store_begin(s, 0);
    if (rc)
        return rc;
    for (i = 0; i < WA_ARRAY_SIZE(steps) && rc == 0; i++) {
        sqlite3_stmt *st = stmt(s, steps[i]);
        if (!st) {
            rc = WA_ESTORE;
            break;
        }
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, from, -1, SQLITE_STATIC);
        if (sqlite3_bind_parameter_count(st) >= 3)
            sqlite3_bind_text(st, 3, to, -1, SQLITE_STATIC);
        rc = wa__store_run(s, st);
        wa__store_done(st);
    }
    return wa__store_finish(s, rc, 0);
}

int wa_store_e2e_forget(wa_store *s, int64_t id, const char *name)
{
    static const int steps[] = {Q_MV_SESS_DEL, Q_MV_IDK_DEL}; /* (account, name) deletes */
    size_t i;
    int rc;

    if (!s || !name_ok(name))
        return WA_EINVAL;
    rc = wa__store_begin(s, 0);
    if (rc)
        return rc;
    for (i = 0; i < WA_ARRAY_SIZE(steps) && rc == 0; i++) {
        sqlite3_stmt *st = stmt(s, steps[i]);
        if (!st) {
            rc = WA_ESTORE;
            break;
        }
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        rc = wa__store_run(s, st);
        wa__store_done(st);
    }
    return wa__store_finish(s, rc, 0);
}

/* ---- message ids and recent sends ----------------------------------------------------------- */

static void prune(wa_store *s, int q, int64_t id, int keep)
{
    sqlite3_stmt *st;

    if (sqlite3_last_insert_rowid(s->db) % PRUNE_EVERY != 0)
        return;
    st = stmt(s, q);
    if (!st)
        return;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, keep);
    if (wa__store_run(s, st) != 0)
        wa_log_warn("store", "pruning old rows failed (kept)");
    wa__store_done(st);
}

int wa_store_seen_get(wa_store *s, int64_t id, const char *chat, const char *msg_id, int *state,
                      wa_buf *payload)
{
    sqlite3_stmt *st;
    int rc, v = 0;

    if (!s || !text_ok(chat, WA_STORE_NAME_MAX) || !text_ok(msg_id, WA_STORE_MSGID_MAX) || !state)
        return WA_EINVAL;
    st = stmt(s, Q_SEEN_GET);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, chat, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, msg_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(st, 1);
        size_t n = (size_t)sqlite3_column_bytes(st, 1);
        v = sqlite3_column_int(st, 0);
        rc = 0;
        if (payload && n)
            rc = n > WA_STORE_PAYLOAD_MAX ? WA_ESTORE : wa_buf_append(payload, p, n);
    } else {
        rc = rc == SQLITE_DONE ? WA_ENOTFOUND : wa__store_fail(s, "message id");
    }
    wa__store_done(st);
    if (rc == 0)
        *state = v;
    return rc;
}

int wa_store_seen_put(wa_store *s, int64_t id, const char *chat, const char *msg_id, int state,
                      const uint8_t *payload, size_t len, int64_t t)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !text_ok(chat, WA_STORE_NAME_MAX) || !text_ok(msg_id, WA_STORE_MSGID_MAX) ||
        (state != WA_STORE_SEEN_DECRYPTED && state != WA_STORE_SEEN_DONE &&
         state != WA_STORE_SEEN_REFUSED) ||
        (len && !payload) || len > WA_STORE_PAYLOAD_MAX)
        return WA_EINVAL;
    st = stmt(s, Q_SEEN_PUT);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, chat, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, msg_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, state);
    sqlite3_bind_int64(st, 5, t);
    if (len)
        sqlite3_bind_blob(st, 6, payload, (int)len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    rc = wa__store_run(s, st);
    wa__store_done(st);
    if (rc == 0)
        prune(s, Q_SEEN_PRUNE, id, WA_STORE_SEEN_KEEP);
    return rc;
}

int wa_store_seen_done(wa_store *s, int64_t id, const char *chat, const char *msg_id, int64_t t)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !text_ok(chat, WA_STORE_NAME_MAX) || !text_ok(msg_id, WA_STORE_MSGID_MAX))
        return WA_EINVAL;
    st = stmt(s, Q_SEEN_DONE);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, chat, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, msg_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, WA_STORE_SEEN_DONE);
    rc = wa__store_run(s, st);
    wa__store_done(st);
    if (rc == 0 && sqlite3_changes(s->db) == 0) /* not there (pruned meanwhile): a new row */
        rc = wa_store_seen_put(s, id, chat, msg_id, WA_STORE_SEEN_DONE, NULL, 0, t);
    return rc;
}

int wa_store_sent_put(wa_store *s, int64_t id, const char *msg_id, const char *chat,
                      const uint8_t *payload, size_t len, int64_t t)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !text_ok(msg_id, WA_STORE_MSGID_MAX) || !text_ok(chat, WA_STORE_NAME_MAX) ||
        !payload || len == 0 || len > WA_STORE_PAYLOAD_MAX)
        return WA_EINVAL;
    st = stmt(s, Q_SENT_PUT);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, msg_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, chat, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, payload, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, t);
    rc = wa__store_run(s, st);
    wa__store_done(st);
    if (rc == 0)
        prune(s, Q_SENT_PRUNE, id, WA_STORE_SENT_KEEP);
    return rc;
}

int wa_store_sent_get(wa_store *s, int64_t id, const char *msg_id, char *chat, size_t cap,
                      wa_buf *payload)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !text_ok(msg_id, WA_STORE_MSGID_MAX) || !chat || !cap || !payload)
        return WA_EINVAL;
    st = stmt(s, Q_SENT_GET);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, msg_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *c = sqlite3_column_text(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        const void *p = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        if (!c || n >= cap) {
            rc = WA_ELIMIT;
        } else if (!p || len == 0 || len > WA_STORE_PAYLOAD_MAX) {
            rc = WA_ESTORE;
        } else {
            rc = wa_buf_append(payload, p, len);
            if (rc == 0) {
                memcpy(chat, c, n);
                chat[n] = '\0';
            }
        }
    } else {
        rc = rc == SQLITE_DONE ? WA_ENOTFOUND : wa__store_fail(s, "sent message");
    }
    wa__store_done(st);
    return rc;
}
