/*
 * store.c - the SQLite store (see store.h for the layout decision and crash-safety rules).
 *
 * One connection, WAL, synchronous=NORMAL (FULL around durable commits), secure_delete=ON,
 * a capped page cache. Statements are prepared once per connection on first use and reset
 * after every use. Every account-scoped table is listed in tables[], which drives wipe,
 * delete, snapshot and restore.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "store/store.h"
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/util.h"
#include "wa/error.h"

/* Longest generated SQL statement (DDL with a schema prefix, table copies). */
#define SQL_MAX 1024

/* Schema: head + schema prefix + tail; the prefix is: "" for the main database, "snap." for a
 * snapshot. */
static const struct {
    const char *head, *tail;
} ddl[] = {
    {"CREATE TABLE IF NOT EXISTS ", "account (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
                                    " created INTEGER NOT NULL)"},
    {"CREATE TABLE IF NOT EXISTS ",
     "creds (account INTEGER PRIMARY KEY, noise_priv BLOB NOT NULL,"
     " noise_pub BLOB NOT NULL, identity_priv BLOB NOT NULL, identity_pub BLOB NOT NULL,"
     " registration_id INTEGER NOT NULL, spk_id INTEGER NOT NULL, adv_secret BLOB NOT NULL,"
     " next_prekey_id INTEGER NOT NULL, me_jid TEXT NOT NULL, me_lid TEXT NOT NULL,"
     " platform TEXT NOT NULL, push_name TEXT NOT NULL, adv_identity BLOB, routing_info BLOB)"},
    {"CREATE TABLE IF NOT EXISTS ",
     "signed_prekey (account INTEGER NOT NULL, id INTEGER NOT NULL,"
     " priv BLOB NOT NULL, pub BLOB NOT NULL, sig BLOB NOT NULL, created INTEGER NOT NULL,"
     " PRIMARY KEY (account, id)) WITHOUT ROWID"},
    {"CREATE TABLE IF NOT EXISTS ",
     "prekey (account INTEGER NOT NULL, id INTEGER NOT NULL,"
     " priv BLOB NOT NULL, pub BLOB NOT NULL, uploaded INTEGER NOT NULL DEFAULT 0,"
     " PRIMARY KEY (account, id)) WITHOUT ROWID"},
    {"CREATE TABLE IF NOT EXISTS ", "lid_map (account INTEGER NOT NULL, pn TEXT NOT NULL,"
                                    " lid TEXT NOT NULL, PRIMARY KEY (account, pn)) WITHOUT ROWID"},
    {"CREATE UNIQUE INDEX IF NOT EXISTS ", "lid_map_lid ON lid_map (account, lid)"},
    /* schema 2: end-to-end state (e2e.c). Signal addresses are (name, device), name being
     * libsignal's ("user" for a phone number, "user_1" for a LID: lib/signal/signal.h). */
    {"CREATE TABLE IF NOT EXISTS ",
     "identity (account INTEGER NOT NULL, name TEXT NOT NULL, device INTEGER NOT NULL,"
     " key BLOB NOT NULL, PRIMARY KEY (account, name, device)) WITHOUT ROWID"},
    {"CREATE TABLE IF NOT EXISTS ",
     "session (account INTEGER NOT NULL, name TEXT NOT NULL, device INTEGER NOT NULL,"
     " record BLOB NOT NULL, PRIMARY KEY (account, name, device)) WITHOUT ROWID"},
    {"CREATE TABLE IF NOT EXISTS ",
     "sender_key (account INTEGER NOT NULL, grp TEXT NOT NULL, name TEXT NOT NULL,"
     " device INTEGER NOT NULL, record BLOB NOT NULL,"
     " PRIMARY KEY (account, grp, name, device)) WITHOUT ROWID"},
    {"CREATE TABLE IF NOT EXISTS ",
     "skdm_sent (account INTEGER NOT NULL, grp TEXT NOT NULL, name TEXT NOT NULL,"
     " device INTEGER NOT NULL, PRIMARY KEY (account, grp, name, device)) WITHOUT ROWID"},
    {"CREATE TABLE IF NOT EXISTS ",
     "msg_seen (account INTEGER NOT NULL, chat TEXT NOT NULL, id TEXT NOT NULL,"
     " state INTEGER NOT NULL, t INTEGER NOT NULL, payload BLOB, UNIQUE (account, chat, id))"},
    {"CREATE INDEX IF NOT EXISTS ", "msg_seen_account ON msg_seen (account)"},
    {"CREATE TABLE IF NOT EXISTS ",
     "sent_msg (account INTEGER NOT NULL, id TEXT NOT NULL, chat TEXT NOT NULL,"
     " payload BLOB NOT NULL, t INTEGER NOT NULL, UNIQUE (account, id))"},
    {"CREATE INDEX IF NOT EXISTS ", "sent_msg_account ON sent_msg (account)"},
    /* schema 3: app-state sync keys the phone shares (appstate.c) */
    {"CREATE TABLE IF NOT EXISTS ",
     "app_state_keys (account INTEGER NOT NULL, key_id BLOB NOT NULL, key_data BLOB NOT NULL,"
     " fingerprint BLOB, timestamp INTEGER NOT NULL, PRIMARY KEY (account, key_id))"
     " WITHOUT ROWID"},
    /* schema 4: retry receipts awaiting a re-send (retry.c) */
    {"CREATE TABLE IF NOT EXISTS ",
     "retry_pending (account INTEGER NOT NULL, msg_id TEXT NOT NULL, chat TEXT NOT NULL,"
     " sender TEXT NOT NULL, participant TEXT NOT NULL, recipient TEXT NOT NULL, t TEXT NOT NULL,"
     " count INTEGER NOT NULL, asked INTEGER NOT NULL, UNIQUE (account, msg_id, sender,"
     " participant))"},
};

/* Account-scoped tables, their columns other than `account` (for restore) and the schema
 * version that introduced them (a snapshot of an older schema restores without them). The
 * account table itself is handled apart. */
static const struct {
    const char *name;
    const char *cols;
    int since;
} tables[] = {
    {"creds",
     "noise_priv, noise_pub, identity_priv, identity_pub, registration_id, spk_id,"
     " adv_secret, next_prekey_id, me_jid, me_lid, platform, push_name, adv_identity,"
     " routing_info",
     1},
    {"signed_prekey", "id, priv, pub, sig, created", 1},
    {"prekey", "id, priv, pub, uploaded", 1},
    {"lid_map", "pn, lid", 1},
    {"identity", "name, device, key", 2},
    {"session", "name, device, record", 2},
    {"sender_key", "grp, name, device, record", 2},
    {"skdm_sent", "grp, name, device", 2},
    {"msg_seen", "chat, id, state, t, payload", 2},
    {"sent_msg", "id, chat, payload, t", 2},
    {"app_state_keys", "key_id, key_data, fingerprint, timestamp", 3},
    {"retry_pending", "msg_id, chat, sender, participant, recipient, t, count, asked", 4},
};

enum {
    Q_ACCOUNT_GET,
    Q_ACCOUNT_ADD,
    Q_ACCOUNT_LIST,
    Q_ACCOUNT_DEL,
    Q_PAIRED,
    Q_CREDS_GET,
    Q_CREDS_PUT,
    Q_SPK_PUT,
    Q_SPK_GET,
    Q_ROUTING_SET,
    Q_PUSHNAME_SET,
    Q_NEXT_PREKEY_SET,
    Q_PREKEY_ADD,
    Q_PREKEY_PENDING,
    Q_PREKEY_MARK,
    Q_PREKEY_GET,
    Q_PREKEY_DEL,
    Q_PREKEY_COUNT,
    Q_PREKEY_COUNT_UP,
    Q_LID_DEL,
    Q_LID_PUT,
    Q_LID_BY_PN,
    Q_PN_BY_LID,
    Q_PREKEY_MARK_LOWEST,
    Q_COUNT
};

static const char *const queries[Q_COUNT] = {
    [Q_ACCOUNT_GET] = "SELECT id FROM account WHERE name = ?1",
    [Q_ACCOUNT_ADD] = "INSERT INTO account (name, created) VALUES (?1, ?2)",
    [Q_ACCOUNT_LIST] = "SELECT id, name FROM account ORDER BY id",
    [Q_ACCOUNT_DEL] = "DELETE FROM account WHERE id = ?1",
    [Q_PAIRED] = "SELECT me_jid <> '' FROM creds WHERE account = ?1",
    [Q_CREDS_GET] = "SELECT c.noise_priv, c.noise_pub, c.identity_priv, c.identity_pub,"
                    " c.registration_id, c.spk_id, c.adv_secret, c.next_prekey_id, c.me_jid,"
                    " c.me_lid, c.platform, c.push_name, c.adv_identity, c.routing_info,"
                    " s.priv, s.pub, s.sig, s.created FROM creds c JOIN signed_prekey s"
                    " ON s.account = c.account AND s.id = c.spk_id WHERE c.account = ?1",
    [Q_CREDS_PUT] = "INSERT OR REPLACE INTO creds (account, noise_priv, noise_pub, identity_priv,"
                    " identity_pub, registration_id, spk_id, adv_secret, next_prekey_id, me_jid,"
                    " me_lid, platform, push_name, adv_identity, routing_info) VALUES"
                    " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    [Q_SPK_PUT] = "INSERT OR REPLACE INTO signed_prekey (account, id, priv, pub, sig, created)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_SPK_GET] = "SELECT priv, pub, sig FROM signed_prekey WHERE account = ?1 AND id = ?2",
    [Q_ROUTING_SET] = "UPDATE creds SET routing_info = ?2 WHERE account = ?1",
    [Q_PUSHNAME_SET] = "UPDATE creds SET push_name = ?2 WHERE account = ?1",
    [Q_NEXT_PREKEY_SET] = "UPDATE creds SET next_prekey_id = ?2 WHERE account = ?1",
    [Q_PREKEY_ADD] = "INSERT INTO prekey (account, id, priv, pub) VALUES (?1, ?2, ?3, ?4)",
    [Q_PREKEY_PENDING] = "SELECT id, priv, pub FROM prekey WHERE account = ?1 AND uploaded = 0"
                         " ORDER BY id LIMIT ?2",
    [Q_PREKEY_MARK] = "UPDATE prekey SET uploaded = 1 WHERE account = ?1 AND id = ?2",
    [Q_PREKEY_GET] = "SELECT priv, pub FROM prekey WHERE account = ?1 AND id = ?2",
    [Q_PREKEY_DEL] = "DELETE FROM prekey WHERE account = ?1 AND id = ?2",
    [Q_PREKEY_COUNT] = "SELECT count(*) FROM prekey WHERE account = ?1",
    [Q_PREKEY_COUNT_UP] = "SELECT count(*) FROM prekey WHERE account = ?1 AND uploaded = 1",
    [Q_LID_DEL] = "DELETE FROM lid_map WHERE account = ?1 AND (pn = ?2 OR lid = ?3)",
    [Q_LID_PUT] = "INSERT INTO lid_map (account, pn, lid) VALUES (?1, ?2, ?3)",
    [Q_LID_BY_PN] = "SELECT lid FROM lid_map WHERE account = ?1 AND pn = ?2",
    [Q_PN_BY_LID] = "SELECT pn FROM lid_map WHERE account = ?1 AND lid = ?2",
    [Q_PREKEY_MARK_LOWEST] = "UPDATE prekey SET uploaded = 1 WHERE account = ?1 AND uploaded = 0"
                             " AND id IN (SELECT id FROM prekey WHERE account = ?1 AND"
                             " uploaded = 0 ORDER BY id LIMIT ?2)",
};

_Static_assert(Q_COUNT <= WA__STORE_E2E_BASE, "store.c statement slots overflow");

int wa__store_fail(wa_store *s, const char *what)
{
    wa_log_error("store", "%s: %s", what, sqlite3_errmsg(s->db));
    return WA_ESTORE;
}

int wa__store_exec(wa_store *s, const char *sql)
{
    char *err = NULL;

    if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        wa_log_error("store", "%s: %s", sql, err ? err : "?");
        sqlite3_free(err);
        return WA_ESTORE;
    }
    return 0;
}

sqlite3_stmt *wa__store_stmt(wa_store *s, int slot, const char *sql)
{
    if (slot < 0 || slot >= WA__STORE_STMTS)
        return NULL;
    if (!s->stmt[slot] && sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                             &s->stmt[slot], NULL) != SQLITE_OK) {
        wa__store_fail(s, "prepare");
        s->stmt[slot] = NULL;
    }
    return s->stmt[slot];
}

/* The prepared statement for query q, bound to nothing, or NULL (logged). */
static sqlite3_stmt *stmt(wa_store *s, int q)
{
    return wa__store_stmt(s, q, queries[q]);
}

void wa__store_done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

int wa__store_run(wa_store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    if (rc == SQLITE_DONE)
        return 0;
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return WA_EEXIST;
    return wa__store_fail(s, "step");
}

int wa__store_begin(wa_store *s, int durable)
{
    int rc;

    if (s->tx_depth > 0) { /* inside a caller's transaction: durability is the caller's */
        rc = wa__store_exec(s, "SAVEPOINT wa_nested");
    } else {
        if (durable && wa__store_exec(s, "PRAGMA main.synchronous=FULL") != 0)
            return WA_ESTORE;
        rc = wa__store_exec(s, "BEGIN IMMEDIATE");
        if (rc && durable)
            wa__store_exec(s, "PRAGMA main.synchronous=NORMAL");
    }
    if (rc == 0)
        s->tx_depth++;
    return rc;
}

int wa__store_finish(wa_store *s, int rc, int durable)
{
    if (s->tx_depth <= 0)
        return rc ? rc : WA_ESTORE;
    s->tx_depth--;
    if (s->tx_depth > 0) {
        if (rc == 0)
            rc = wa__store_exec(s, "RELEASE wa_nested");
        if (rc != 0) {
            wa__store_exec(s, "ROLLBACK TO wa_nested");
            wa__store_exec(s, "RELEASE wa_nested");
        }
        return rc;
    }
    if (rc == 0)
        rc = wa__store_exec(s, "COMMIT");
    if (rc != 0 && !sqlite3_get_autocommit(s->db))
        wa__store_exec(s, "ROLLBACK");
    if (durable)
        wa__store_exec(s, "PRAGMA main.synchronous=NORMAL");
    return rc;
}

static int create_schema(wa_store *s, const char *prefix)
{
    char sql[SQL_MAX];
    size_t i;

    for (i = 0; i < WA_ARRAY_SIZE(ddl); i++) {
        snprintf(sql, sizeof sql, "%s%s%s", ddl[i].head, prefix, ddl[i].tail);
        if (wa__store_exec(s, sql) != 0)
            return WA_ESTORE;
    }
    return 0;
}

/* Make sure the file exists with mode 0600 before SQLite creates it with the umask's mode
 * (the -wal and -shm files inherit the database file's mode). */
static int create_private(const char *path, int excl)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (excl ? O_EXCL : 0), 0600);

    if (fd < 0)
        return errno == EEXIST ? WA_EEXIST : WA_EIO;
    close(fd);
    return 0;
}

int wa_store_open(const char *path, const wa_store_options *opts, wa_store **out)
{
    wa_store *s;
    char sql[128];
    unsigned cache = opts && opts->cache_kib ? opts->cache_kib : WA_STORE_DEFAULT_CACHE_KIB;
    int version = -1, rc = WA_ESTORE;
    sqlite3_stmt *st = NULL;

    if (!path || !path[0] || !out)
        return WA_EINVAL;
    if (create_private(path, 0) == WA_EIO) {
        wa_log_error("store", "cannot create %s: %s", path, strerror(errno));
        return WA_ESTORE;
    }
    s = wa_calloc(1, sizeof *s);
    if (!s)
        return WA_ENOMEM;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        wa_log_error("store", "cannot open %s: %s", path,
                     s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(s->db, WA_STORE_BUSY_MS);
    sqlite3_extended_result_codes(s->db, 1);
    snprintf(sql, sizeof sql, "PRAGMA cache_size=-%u", cache);
    if (wa__store_exec(s, "PRAGMA journal_mode=WAL") ||
        wa__store_exec(s, "PRAGMA main.synchronous=NORMAL") ||
        wa__store_exec(s, "PRAGMA secure_delete=ON") || wa__store_exec(s, sql) ||
        wa__store_exec(s, "PRAGMA foreign_keys=OFF"))
        goto out;
    snprintf(sql, sizeof sql, "PRAGMA journal_size_limit=%d", WA_STORE_WAL_LIMIT);
    if (wa__store_exec(s, sql))
        goto out;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version < 0 || version > WA_STORE_SCHEMA_VERSION) {
        wa_log_error("store", "%s: not a libwa store or a newer schema (%d)", path, version);
        goto out;
    }
    if (wa__store_begin(s, 0))
        goto out;
    rc = create_schema(s, "");
    if (rc == 0) {
        snprintf(sql, sizeof sql, "PRAGMA user_version=%d", WA_STORE_SCHEMA_VERSION);
        rc = wa__store_exec(s, sql);
    }
    rc = wa__store_finish(s, rc, 0);
out:
    if (rc) {
        wa_store_close(s);
        return WA_ESTORE;
    }
    *out = s;
    return 0;
}

void wa_store_close(wa_store *s)
{
    size_t i;

    if (!s)
        return;
    for (i = 0; i < WA__STORE_STMTS; i++)
        sqlite3_finalize(s->stmt[i]);
    if (s->db && sqlite3_close(s->db) != SQLITE_OK)
        wa_log_warn("store", "close: %s", sqlite3_errmsg(s->db));
    wa_free(s);
}

const char *wa_store_errmsg(wa_store *s)
{
    return s && s->db ? sqlite3_errmsg(s->db) : "no database";
}

static int valid_name(const char *name)
{
    size_t n;

    if (!name)
        return 0;
    n = strlen(name);
    return n > 0 && n <= WA_STORE_ACCOUNT_NAME_MAX;
}

static int account_lookup(wa_store *s, const char *name, int64_t *id)
{
    sqlite3_stmt *st = stmt(s, Q_ACCOUNT_GET);
    int rc;

    if (!st)
        return WA_ESTORE;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = WA_ENOTFOUND;
    } else {
        rc = wa__store_fail(s, "account lookup");
    }
    wa__store_done(st);
    return rc;
}

static int account_add(wa_store *s, const char *name, int64_t *id)
{
    sqlite3_stmt *st = stmt(s, Q_ACCOUNT_ADD);
    int rc;

    if (!st)
        return WA_ESTORE;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
    rc = wa__store_run(s, st);
    wa__store_done(st);
    if (rc == 0)
        *id = sqlite3_last_insert_rowid(s->db);
    return rc;
}

int wa_store_account(wa_store *s, const char *name, int create, int64_t *id)
{
    int64_t v = 0;
    int rc;

    if (!s || !id || !valid_name(name))
        return WA_EINVAL;
    rc = account_lookup(s, name, &v);
    if (rc == WA_ENOTFOUND && create)
        rc = account_add(s, name, &v);
    if (rc == 0)
        *id = v;
    return rc;
}

int wa_store_accounts(wa_store *s, int (*cb)(int64_t id, const char *name, void *user_data),
                      void *user_data)
{
    sqlite3_stmt *st = stmt(s, Q_ACCOUNT_LIST);
    int rc;

    if (!st)
        return WA_ESTORE;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int r =
            cb(sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1), user_data);
        if (r) {
            wa__store_done(st);
            return r;
        }
    }
    rc = rc == SQLITE_DONE ? 0 : wa__store_fail(s, "account list");
    wa__store_done(st);
    return rc;
}

int wa_store_account_paired(wa_store *s, int64_t id)
{
    sqlite3_stmt *st = stmt(s, Q_PAIRED);
    int paired = 0;

    if (!st)
        return 0;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        paired = sqlite3_column_int(st, 0) != 0;
    wa__store_done(st);
    return paired;
}

/* Delete the account's rows from every account-scoped table (inside a transaction). */
static int delete_rows(wa_store *s, int64_t id)
{
    char sql[SQL_MAX];
    size_t i;
    int rc = 0;

    for (i = 0; i < WA_ARRAY_SIZE(tables) && rc == 0; i++) {
        sqlite3_stmt *st = NULL;
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE account = ?1", tables[i].name);
        if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
            rc = wa__store_fail(s, "prepare delete");
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, id);
            rc = wa__store_run(s, st);
        }
        sqlite3_finalize(st);
    }
    return rc;
}

int wa_store_account_wipe(wa_store *s, int64_t id)
{
    int rc;

    if (!s)
        return WA_EINVAL;
    rc = wa__store_begin(s, 1);
    if (rc)
        return rc;
    rc = delete_rows(s, id);
    rc = wa__store_finish(s, rc, 1);
    /* The freed pages are zeroed (secure_delete); push the WAL into the file too, so that old
     * frames holding the keys are overwritten soon rather than at some later checkpoint. */
    if (rc == 0)
        sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return rc;
}

int wa_store_account_delete(wa_store *s, int64_t id)
{
    sqlite3_stmt *st;
    int rc;

    if (!s)
        return WA_EINVAL;
    rc = wa__store_begin(s, 1);
    if (rc)
        return rc;
    rc = delete_rows(s, id);
    if (rc == 0) {
        st = stmt(s, Q_ACCOUNT_DEL);
        rc = st ? 0 : WA_ESTORE;
        if (st) {
            sqlite3_bind_int64(st, 1, id);
            rc = wa__store_run(s, st);
            if (rc == 0 && sqlite3_changes(s->db) == 0)
                rc = WA_ENOTFOUND;
            wa__store_done(st);
        }
    }
    rc = wa__store_finish(s, rc, 1);
    if (rc == 0)
        sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return rc;
}

/* ---- credentials ---------------------------------------------------------------------------- */

void wa_store_creds_wipe(wa_store_creds *c)
{
    if (c)
        wa_wipe(c, sizeof *c);
}

int wa__store_col_blob(sqlite3_stmt *st, int i, uint8_t *dst, size_t len)
{
    const void *p = sqlite3_column_blob(st, i);

    if ((size_t)sqlite3_column_bytes(st, i) != len || !p)
        return WA_ESTORE;
    memcpy(dst, p, len);
    return 0;
}

static int col_blob_var(sqlite3_stmt *st, int i, uint8_t *dst, size_t cap, size_t *len)
{
    const void *p = sqlite3_column_blob(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);

    if (n > cap)
        return WA_ESTORE;
    if (n)
        memcpy(dst, p, n);
    *len = n;
    return 0;
}

static int col_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *p = sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);

    if (n >= cap)
        return WA_ESTORE;
    if (n && p)
        memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

int wa_store_creds_load(wa_store *s, int64_t id, wa_store_creds *out)
{
    sqlite3_stmt *st;
    wa_store_creds *c;
    int rc;

    if (!s || !out)
        return WA_EINVAL;
    st = stmt(s, Q_CREDS_GET);
    if (!st)
        return WA_ESTORE;
    c = wa_calloc(1, sizeof *c);
    if (!c)
        return WA_ENOMEM;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        rc = WA_ENOTFOUND;
    } else if (rc != SQLITE_ROW) {
        rc = wa__store_fail(s, "load credentials");
    } else {
        int64_t reg = sqlite3_column_int64(st, 4), spk = sqlite3_column_int64(st, 5),
                next = sqlite3_column_int64(st, 7);
        rc = wa__store_col_blob(st, 0, c->noise_priv, 32) |
             wa__store_col_blob(st, 1, c->noise_pub, 32) |
             wa__store_col_blob(st, 2, c->identity_priv, 32) |
             wa__store_col_blob(st, 3, c->identity_pub, 32) |
             wa__store_col_blob(st, 6, c->adv_secret, 32) |
             col_text(st, 8, c->me_jid, sizeof c->me_jid) |
             col_text(st, 9, c->me_lid, sizeof c->me_lid) |
             col_text(st, 10, c->platform, sizeof c->platform) |
             col_text(st, 11, c->push_name, sizeof c->push_name) |
             col_blob_var(st, 12, c->adv_identity, sizeof c->adv_identity, &c->adv_identity_len) |
             col_blob_var(st, 13, c->routing_info, sizeof c->routing_info, &c->routing_info_len) |
             wa__store_col_blob(st, 14, c->spk_priv, 32) |
             wa__store_col_blob(st, 15, c->spk_pub, 32) |
             wa__store_col_blob(st, 16, c->spk_sig, 64);
        if (rc || reg < 0 || reg > UINT32_MAX || spk < 0 || spk > WA_STORE_PREKEY_ID_MAX ||
            next < 1 || next > WA_STORE_PREKEY_ID_MAX) {
            wa_log_error("store", "account %lld: malformed credentials row", (long long)id);
            rc = WA_ESTORE;
        } else {
            c->registration_id = (uint32_t)reg;
            c->spk_id = (uint32_t)spk;
            c->next_prekey_id = (uint32_t)next;
            c->spk_created = sqlite3_column_int64(st, 17);
        }
    }
    wa__store_done(st);
    if (rc == 0)
        memcpy(out, c, sizeof *c);
    wa_store_creds_wipe(c);
    wa_free(c);
    return rc;
}

int wa_store_creds_save(wa_store *s, int64_t id, const wa_store_creds *c, int durable)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !c || c->next_prekey_id < 1 || c->next_prekey_id > WA_STORE_PREKEY_ID_MAX ||
        c->adv_identity_len > sizeof c->adv_identity ||
        c->routing_info_len > sizeof c->routing_info)
        return WA_EINVAL;
    rc = wa__store_begin(s, durable);
    if (rc)
        return rc;
    st = stmt(s, Q_CREDS_PUT);
    if (!st) {
        rc = WA_ESTORE;
        goto out;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_blob(st, 2, c->noise_priv, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, c->noise_pub, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, c->identity_priv, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, c->identity_pub, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, c->registration_id);
    sqlite3_bind_int64(st, 7, c->spk_id);
    sqlite3_bind_blob(st, 8, c->adv_secret, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, c->next_prekey_id);
    sqlite3_bind_text(st, 10, c->me_jid, (int)strnlen(c->me_jid, sizeof c->me_jid), SQLITE_STATIC);
    sqlite3_bind_text(st, 11, c->me_lid, (int)strnlen(c->me_lid, sizeof c->me_lid), SQLITE_STATIC);
    sqlite3_bind_text(st, 12, c->platform, (int)strnlen(c->platform, sizeof c->platform),
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 13, c->push_name, (int)strnlen(c->push_name, sizeof c->push_name),
                      SQLITE_STATIC);
    sqlite3_bind_blob(st, 14, c->adv_identity, (int)c->adv_identity_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 15, c->routing_info, (int)c->routing_info_len, SQLITE_STATIC);
    rc = wa__store_run(s, st);
    wa__store_done(st);
    if (rc)
        goto out;
    st = stmt(s, Q_SPK_PUT);
    if (!st) {
        rc = WA_ESTORE;
        goto out;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, c->spk_id);
    sqlite3_bind_blob(st, 3, c->spk_priv, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, c->spk_pub, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, c->spk_sig, 64, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, c->spk_created ? c->spk_created : (int64_t)time(NULL));
    rc = wa__store_run(s, st);
    wa__store_done(st);
out:
    return wa__store_finish(s, rc, durable);
}

static int update_one(wa_store *s, int q, int64_t id, const void *p, size_t len, int text)
{
    sqlite3_stmt *st = stmt(s, q);
    int rc;

    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    if (text)
        sqlite3_bind_text(st, 2, p, (int)len, SQLITE_STATIC);
    else
        sqlite3_bind_blob(st, 2, p, (int)len, SQLITE_STATIC);
    rc = wa__store_run(s, st);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        rc = WA_ENOTFOUND;
    wa__store_done(st);
    return rc;
}

int wa_store_set_routing(wa_store *s, int64_t id, const uint8_t *info, size_t len)
{
    if (!s || (len && !info) || len > WA_STORE_ROUTING_MAX)
        return WA_EINVAL;
    return update_one(s, Q_ROUTING_SET, id, info, len, 0);
}

int wa_store_set_push_name(wa_store *s, int64_t id, const char *name)
{
    if (!s || !name || strlen(name) >= WA_STORE_TEXT_MAX)
        return WA_EINVAL;
    return update_one(s, Q_PUSHNAME_SET, id, name, strlen(name), 1);
}

int wa_store_signed_prekey_get(wa_store *s, int64_t id, uint32_t spk_id,
                               uint8_t priv[WA_STORE_KEY_LEN], uint8_t pub[WA_STORE_KEY_LEN],
                               uint8_t sig[WA_STORE_SIG_LEN])
{
    sqlite3_stmt *st = stmt(s, Q_SPK_GET);
    uint8_t k[32], p[32], g[64];
    int rc;

    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, spk_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = wa__store_col_blob(st, 0, k, 32) | wa__store_col_blob(st, 1, p, 32) |
             wa__store_col_blob(st, 2, g, 64);
        rc = rc ? WA_ESTORE : 0;
    } else {
        rc = rc == SQLITE_DONE ? WA_ENOTFOUND : wa__store_fail(s, "signed prekey");
    }
    wa__store_done(st);
    if (rc == 0) {
        if (priv)
            memcpy(priv, k, 32);
        if (pub)
            memcpy(pub, p, 32);
        if (sig)
            memcpy(sig, g, 64);
    }
    wa_wipe(k, sizeof k);
    return rc;
}

/* ---- one-time prekeys ----------------------------------------------------------------------- */

int wa_store_prekeys_add(wa_store *s, int64_t id, const wa_store_prekey *keys, size_t n,
                         uint32_t next_id)
{
    sqlite3_stmt *st;
    size_t i;
    int rc;

    if (!s || (n && !keys) || next_id < 1 || next_id > WA_STORE_PREKEY_ID_MAX)
        return WA_EINVAL;
    for (i = 0; i < n; i++)
        if (keys[i].id < 1 || keys[i].id > WA_STORE_PREKEY_ID_MAX)
            return WA_EINVAL;
    rc = wa__store_begin(s, 0);
    if (rc)
        return rc;
    st = stmt(s, Q_NEXT_PREKEY_SET);
    if (!st) {
        rc = WA_ESTORE;
        goto out;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, next_id);
    rc = wa__store_run(s, st);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        rc = WA_ENOTFOUND;
    wa__store_done(st);
    if (rc)
        goto out;
    st = stmt(s, Q_PREKEY_ADD);
    if (!st) {
        rc = WA_ESTORE;
        goto out;
    }
    for (i = 0; i < n && rc == 0; i++) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, keys[i].id);
        sqlite3_bind_blob(st, 3, keys[i].priv, 32, SQLITE_STATIC);
        sqlite3_bind_blob(st, 4, keys[i].pub, 32, SQLITE_STATIC);
        rc = wa__store_run(s, st);
        wa__store_done(st);
    }
out:
    return wa__store_finish(s, rc, 0);
}

int wa_store_prekeys_pending(wa_store *s, int64_t id, wa_store_prekey *out, size_t max, size_t *n)
{
    sqlite3_stmt *st;
    size_t k = 0;
    int rc;

    if (!s || !n || (max && !out))
        return WA_EINVAL;
    st = stmt(s, Q_PREKEY_PENDING);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    while (k < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t kid = sqlite3_column_int64(st, 0);
        if (kid < 1 || kid > WA_STORE_PREKEY_ID_MAX || wa__store_col_blob(st, 1, out[k].priv, 32) ||
            wa__store_col_blob(st, 2, out[k].pub, 32)) {
            wa__store_done(st);
            return WA_ESTORE;
        }
        out[k].id = (uint32_t)kid;
        k++;
    }
    if (k < max && rc != SQLITE_DONE) {
        wa__store_done(st);
        return wa__store_fail(s, "pending prekeys");
    }
    wa__store_done(st);
    *n = k;
    return 0;
}

int wa_store_prekeys_mark_uploaded(wa_store *s, int64_t id, const uint32_t *ids, size_t n)
{
    sqlite3_stmt *st;
    size_t i;
    int rc;

    if (!s || (n && !ids))
        return WA_EINVAL;
    rc = wa__store_begin(s, 0);
    if (rc)
        return rc;
    st = stmt(s, Q_PREKEY_MARK);
    if (!st)
        rc = WA_ESTORE;
    for (i = 0; i < n && rc == 0; i++) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, ids[i]);
        rc = wa__store_run(s, st);
        wa__store_done(st);
    }
    return wa__store_finish(s, rc, 0);
}

int wa_store_prekeys_mark_lowest(wa_store *s, int64_t id, size_t n)
{
    sqlite3_stmt *st;
    int rc;

    if (!s)
        return WA_EINVAL;
    if (!n)
        return 0;
    st = stmt(s, Q_PREKEY_MARK_LOWEST);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, n > INT64_MAX ? INT64_MAX : (sqlite3_int64)n);
    rc = wa__store_run(s, st); /* one statement: atomic without a transaction of its own */
    wa__store_done(st);
    return rc;
}

int wa_store_prekey_get(wa_store *s, int64_t id, uint32_t key_id, wa_store_prekey *out)
{
    sqlite3_stmt *st;
    wa_store_prekey k;
    int rc;

    if (!s || !out)
        return WA_EINVAL;
    st = stmt(s, Q_PREKEY_GET);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, key_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = wa__store_col_blob(st, 0, k.priv, 32) | wa__store_col_blob(st, 1, k.pub, 32)
                 ? WA_ESTORE
                 : 0;
    else
        rc = rc == SQLITE_DONE ? WA_ENOTFOUND : wa__store_fail(s, "prekey");
    wa__store_done(st);
    if (rc == 0) {
        k.id = key_id;
        *out = k;
    }
    wa_wipe(&k, sizeof k);
    return rc;
}

int wa_store_prekey_remove(wa_store *s, int64_t id, uint32_t key_id)
{
    sqlite3_stmt *st = s ? stmt(s, Q_PREKEY_DEL) : NULL;
    int rc;

    if (!st)
        return s ? WA_ESTORE : WA_EINVAL;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, key_id);
    rc = wa__store_run(s, st);
    wa__store_done(st);
    return rc;
}

int wa_store_prekeys_count(wa_store *s, int64_t id, int uploaded_only, size_t *n)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !n)
        return WA_EINVAL;
    st = stmt(s, uploaded_only ? Q_PREKEY_COUNT_UP : Q_PREKEY_COUNT);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *n = (size_t)sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        rc = wa__store_fail(s, "prekey count");
    }
    wa__store_done(st);
    return rc;
}

/* ---- PN <-> LID ----------------------------------------------------------------------------- */

int wa_store_lid_put(wa_store *s, int64_t id, const char *pn_user, const char *lid_user)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !pn_user || !lid_user || !pn_user[0] || !lid_user[0])
        return WA_EINVAL;
    rc = wa__store_begin(s, 0);
    if (rc)
        return rc;
    st = stmt(s, Q_LID_DEL);
    rc = st ? 0 : WA_ESTORE;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, pn_user, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, lid_user, -1, SQLITE_STATIC);
        rc = wa__store_run(s, st);
        wa__store_done(st);
    }
    if (rc == 0) {
        st = stmt(s, Q_LID_PUT);
        rc = st ? 0 : WA_ESTORE;
    }
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, pn_user, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, lid_user, -1, SQLITE_STATIC);
        rc = wa__store_run(s, st);
        wa__store_done(st);
    }
    return wa__store_finish(s, rc, 0);
}

static int lid_lookup(wa_store *s, int q, int64_t id, const char *key, char *out, size_t cap)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !key || !out || !cap)
        return WA_EINVAL;
    st = stmt(s, q);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        if (n >= cap) {
            rc = WA_ELIMIT;
        } else {
            memcpy(out, sqlite3_column_text(st, 0), n);
            out[n] = '\0';
            rc = 0;
        }
    } else {
        rc = rc == SQLITE_DONE ? WA_ENOTFOUND : wa__store_fail(s, "lid lookup");
    }
    wa__store_done(st);
    return rc;
}

int wa_store_lid_for_pn(wa_store *s, int64_t id, const char *pn_user, char *out, size_t cap)
{
    return lid_lookup(s, Q_LID_BY_PN, id, pn_user, out, cap);
}

int wa_store_pn_for_lid(wa_store *s, int64_t id, const char *lid_user, char *out, size_t cap)
{
    return lid_lookup(s, Q_PN_BY_LID, id, lid_user, out, cap);
}

/* ---- snapshot / restore --------------------------------------------------------------------- */

static int attach(wa_store *s, const char *path)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(s->db, "ATTACH DATABASE ?1 AS snap", -1, &st, NULL) != SQLITE_OK)
        return wa__store_fail(s, "attach");
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    rc = wa__store_run(s, st);
    sqlite3_finalize(st);
    return rc ? WA_ESTORE : 0;
}

static void detach(wa_store *s)
{
    wa__store_exec(s, "DETACH DATABASE snap");
}

/* Run `sql` (one statement) with ?1 bound to v. */
static int exec_id(wa_store *s, const char *sql, int64_t v)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return wa__store_fail(s, "prepare");
    sqlite3_bind_int64(st, 1, v);
    rc = wa__store_run(s, st);
    sqlite3_finalize(st);
    return rc;
}

int wa_store_snapshot(wa_store *s, int64_t id, const char *path)
{
    char sql[SQL_MAX];
    size_t i;
    int rc, attached = 0;

    if (!s || !path || !path[0])
        return WA_EINVAL;
    rc = create_private(path, 1);
    if (rc)
        return rc == WA_EEXIST ? WA_EEXIST : WA_ESTORE;
    rc = attach(s, path);
    if (rc)
        goto out;
    attached = 1;
    rc = wa__store_exec(s, "PRAGMA snap.synchronous=FULL");
    if (rc == 0)
        rc = wa__store_begin(s, 0);
    if (rc)
        goto out;
    rc = create_schema(s, "snap.");
    if (rc == 0) {
        snprintf(sql, sizeof sql, "PRAGMA snap.user_version=%d", WA_STORE_SCHEMA_VERSION);
        rc = wa__store_exec(s, sql);
    }
    if (rc == 0) {
        rc = exec_id(s, "INSERT INTO snap.account SELECT * FROM main.account WHERE id = ?1", id);
        if (rc == 0 && sqlite3_changes(s->db) != 1)
            rc = WA_ENOTFOUND;
    }
    for (i = 0; i < WA_ARRAY_SIZE(tables) && rc == 0; i++) {
        snprintf(sql, sizeof sql, "INSERT INTO snap.%s SELECT * FROM main.%s WHERE account = ?1",
                 tables[i].name, tables[i].name);
        rc = exec_id(s, sql, id);
    }
    rc = wa__store_finish(s, rc, 0);
out:
    if (attached)
        detach(s);
    if (rc)
        unlink(path);
    return rc;
}

int wa_store_restore(wa_store *s, const char *path, const char *name, int64_t *id)
{
    char sql[SQL_MAX];
    sqlite3_stmt *st = NULL;
    int64_t old_id = 0, new_id = 0;
    size_t i;
    int rc, version = -1, count = 0;

    if (!s || !path || !id || !valid_name(name) || access(path, R_OK) != 0)
        return WA_EINVAL;
    rc = attach(s, path);
    if (rc)
        return rc;
    if (sqlite3_prepare_v2(s->db, "PRAGMA snap.user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (version < 1 || version > WA_STORE_SCHEMA_VERSION) {
        rc = WA_EINVAL;
        goto out;
    }
    if (sqlite3_prepare_v2(s->db, "SELECT id FROM snap.account", -1, &st, NULL) != SQLITE_OK) {
        rc = WA_EINVAL;
        goto out;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        old_id = sqlite3_column_int64(st, 0);
        count++;
    }
    sqlite3_finalize(st);
    if (count != 1) {
        rc = WA_EINVAL;
        goto out;
    }
    rc = wa__store_begin(s, 1);
    if (rc)
        goto out;
    rc = account_lookup(s, name, &new_id);
    if (rc == 0)
        rc = WA_EEXIST;
    else if (rc == WA_ENOTFOUND)
        rc = account_add(s, name, &new_id);
    for (i = 0; i < WA_ARRAY_SIZE(tables) && rc == 0; i++) {
        sqlite3_stmt *ins = NULL;
        if (tables[i].since > version)
            continue; /* not in a snapshot of that schema */
        snprintf(sql, sizeof sql,
                 "INSERT INTO main.%s (account, %s) SELECT ?1, %s FROM snap.%s WHERE account = ?2",
                 tables[i].name, tables[i].cols, tables[i].cols, tables[i].name);
        if (sqlite3_prepare_v2(s->db, sql, -1, &ins, NULL) != SQLITE_OK) {
            rc = WA_EINVAL; /* a table or column is missing: not our snapshot */
        } else {
            sqlite3_bind_int64(ins, 1, new_id);
            sqlite3_bind_int64(ins, 2, old_id);
            rc = wa__store_run(s, ins);
        }
        sqlite3_finalize(ins);
    }
    rc = wa__store_finish(s, rc, 1);
out:
    detach(s);
    if (rc == 0)
        *id = new_id;
    return rc;
}
