/*
 * state.c - `wasim --state FILE`: the simulator's state mirrored in SQLite, so that a wasim
 * restarted after SIGTERM or SIGKILL knows the accounts, devices, offline queues and groups of
 * the last run and presents the same server identity (root key, Noise static key, certificate
 * chain). Clients that trusted the root key and paired log in again without pairing, get what
 * was queued for them, and find their groups.
 *
 * Design: the in-memory structures stay as they are and remain the truth while wasim runs; the
 * file is a write-through mirror. Each change that matters is written when it happens, by a
 * call from the place that makes it (accounts.c, pair.c, stanza.c, queue.c, group.c, route.c,
 * phone.c), in a small transaction of its own, and everything is read back once at start
 * (sim_state_load). journal_mode=WAL with synchronous=NORMAL: a commit survives a crash of the
 * process (SIGKILL) as soon as it returns, with no fsync per write (a power loss may lose the
 * last commits before a checkpoint, never corrupt the file). Writes are a few rows; the largest,
 * a prekey upload, rewrites one device's prekeys (at most SIM_MAX_PREKEYS rows, about a
 * millisecond), so the loop is never held long. locking_mode=EXCLUSIVE: a second wasim on the
 * same file is refused instead of both writing it.
 *
 * Kept: the server identity (the chain is re-issued under the same root and static key when
 *   it is about to expire); phones (number, LID, identity, signed prekey, registration id,
 *   one-time prekeys with their private halves and hand-out marks, app-state sync key, push
 *   name, next key index, next device id: ids are never reused); companion devices (Noise
 *   key, key index, Signal identity, signed prekey, remaining one-time prekeys, push name,
 *   whether the key share went out); the offline queue and the delivered-but-unacknowledged
 *   list of every device, in order, with delivery attempts; groups (subject, creator, times,
 * members and admin ranks); the receipt routing map (message id -> sending device), so receipts for
 * messages sent before a restart still find their sender; the virtual phones' Signal identities of
 * peers, sessions and sender keys (their store is wrapped: lib/signal's memstore cannot enumerate
 * its records, so each store/delete callback is mirrored, and the records are put back into a fresh
 * memstore when the phone's Signal state is made). Not kept (rebuilt or runtime only): connections
 * and their registration or pairing in progress (pairing codes, a scanned QR whose pair-device-sign
 * had not arrived), presence and subscriptions (clients subscribe again), faults, statistics, the
 * virtual phones' inboxes, receipts, messages kept for retries and the marks of which devices have
 * their sender key (a phone sends its SKDM again after a restart, which clients accept).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "core/log.h"
#include "core/util.h"
#include "noise/cert.h"
#include "signal/signal.h"
#include "sim.h"
#include "wa/error.h"

#define STATE_SCHEMA_VERSION 1
#define STATE_APP_ID         0x7761736d /* PRAGMA application_id: "wasm" */
#define STATE_BUSY_MS        1000       /* wait for the lock of a wasim that is just exiting */
#define STATE_CHAIN_MAX      4096       /* serialized certificate chain */
#define STATE_QUEUED_MAX     ((size_t)16 << 20) /* one stored stanza (bnode content limit) */
#define STATE_CERT_MARGIN_S  (7 * 86400)        /* re-issue the chain when it expires within this */

enum sig_kind { SIG_IDENTITY = 0, SIG_SESSION = 1, SIG_SENDER_KEY = 2 };

/* Prepared once, on first use. */
enum {
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_META_PUT,
    Q_PHONE_PUT,
    Q_PHONE_KEY_INDEX,
    Q_PHONE_DEVICE_ID,
    Q_OPK_CLEAR,
    Q_OPK_PUT,
    Q_OPK_HANDED,
    Q_DEV_PUT,
    Q_DEV_UPDATE,
    Q_DEV_DEL,
    Q_DPK_CLEAR,
    Q_DPK_PUT,
    Q_DPK_DEL,
    Q_QUEUE_INSERT,
    Q_QUEUE_MOVE,
    Q_QUEUE_DEL,
    Q_QUEUE_CLEAR,
    Q_GROUP_PUT,
    Q_GROUP_DEL,
    Q_MEMBERS_CLEAR,
    Q_MEMBER_PUT,
    Q_ROUTE_PUT,
    Q_SIG_PUT,
    Q_SIG_DEL,
    Q_COUNT
};

static const char *const sql_text[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_META_PUT] = "INSERT OR REPLACE INTO meta(k, v) VALUES(?1, ?2)",
    [Q_PHONE_PUT] =
        "INSERT OR REPLACE INTO phones(number, lid, identity_priv, identity_pub, reg_id, "
        "spk_id, spk_priv, spk_pub, spk_sig, next_key_index, next_opk_id, push_name, "
        "appstate_key_id, appstate_key, appstate_key_ts) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    [Q_PHONE_KEY_INDEX] =
        "UPDATE phones SET next_key_index = ?2, next_opk_id = ?3 WHERE number = ?1",
    [Q_PHONE_DEVICE_ID] =
        "INSERT OR REPLACE INTO phone_device_ids(number, next_device) VALUES(?1, ?2)",
    [Q_OPK_CLEAR] = "DELETE FROM phone_prekeys WHERE number = ?1",
    [Q_OPK_PUT] = "INSERT OR REPLACE INTO phone_prekeys(number, id, pos, pub, priv, handed_out) "
                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_OPK_HANDED] = "UPDATE phone_prekeys SET handed_out = 1 WHERE number = ?1 AND id = ?2",
    [Q_DEV_PUT] = "INSERT OR REPLACE INTO devices(number, device, noise_pub, key_index, reg_id, "
                  "identity_pub, spk_id, spk_pub, spk_sig, push_name, platform, keyshare_sent) "
                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [Q_DEV_UPDATE] = "UPDATE devices SET push_name = ?3, keyshare_sent = ?4 "
                     "WHERE number = ?1 AND device = ?2",
    [Q_DEV_DEL] = "DELETE FROM devices WHERE number = ?1 AND device = ?2",
    [Q_DPK_CLEAR] = "DELETE FROM device_prekeys WHERE number = ?1 AND device = ?2",
    [Q_DPK_PUT] = "INSERT OR REPLACE INTO device_prekeys(number, device, id, pos, pub) "
                  "VALUES(?1, ?2, ?3, ?4, ?5)",
    [Q_DPK_DEL] = "DELETE FROM device_prekeys WHERE number = ?1 AND device = ?2 AND id = ?3",
    [Q_QUEUE_INSERT] = "INSERT INTO queue(number, device, unacked, ord, tag, id, attempts, data) "
                       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [Q_QUEUE_MOVE] = "UPDATE queue SET unacked = ?2, ord = ?3, attempts = ?4 WHERE sid = ?1",
    [Q_QUEUE_DEL] = "DELETE FROM queue WHERE sid = ?1",
    [Q_QUEUE_CLEAR] = "DELETE FROM queue WHERE number = ?1 AND device = ?2",
    [Q_GROUP_PUT] = "INSERT OR REPLACE INTO groups_(id, subject, creator, subject_owner, creation, "
                    "subject_t) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_GROUP_DEL] = "DELETE FROM groups_ WHERE id = ?1",
    [Q_MEMBERS_CLEAR] = "DELETE FROM group_members WHERE gid = ?1",
    [Q_MEMBER_PUT] = "INSERT INTO group_members(gid, pos, number, admin) VALUES(?1, ?2, ?3, ?4)",
    [Q_ROUTE_PUT] = "INSERT OR REPLACE INTO route_map(slot, seq, id, number, device, lid) "
                    "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_SIG_PUT] = "INSERT OR REPLACE INTO phone_signal(number, kind, grp, name, device, rec) "
                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_SIG_DEL] = "DELETE FROM phone_signal WHERE number = ?1 AND kind = ?2 AND grp = ?3 AND "
                  "name = ?4 AND device = ?5",
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS phones(number TEXT PRIMARY KEY, lid TEXT NOT NULL,"
    " identity_priv BLOB NOT NULL, identity_pub BLOB NOT NULL, reg_id INTEGER NOT NULL,"
    " spk_id INTEGER NOT NULL, spk_priv BLOB NOT NULL, spk_pub BLOB NOT NULL,"
    " spk_sig BLOB NOT NULL, next_key_index INTEGER NOT NULL, next_opk_id INTEGER NOT NULL,"
    " push_name TEXT NOT NULL, appstate_key_id BLOB NOT NULL, appstate_key BLOB NOT NULL,"
    " appstate_key_ts INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS phone_prekeys(number TEXT NOT NULL, id INTEGER NOT NULL,"
    " pos INTEGER NOT NULL, pub BLOB NOT NULL, priv BLOB NOT NULL, handed_out INTEGER NOT NULL,"
    " PRIMARY KEY(number, id));"
    "CREATE TABLE IF NOT EXISTS devices(number TEXT NOT NULL, device INTEGER NOT NULL,"
    " noise_pub BLOB NOT NULL, key_index INTEGER NOT NULL, reg_id INTEGER NOT NULL,"
    " identity_pub BLOB NOT NULL, spk_id INTEGER NOT NULL, spk_pub BLOB NOT NULL,"
    " spk_sig BLOB NOT NULL, push_name TEXT NOT NULL, platform TEXT NOT NULL,"
    " keyshare_sent INTEGER NOT NULL, PRIMARY KEY(number, device));"
    "CREATE TABLE IF NOT EXISTS device_prekeys(number TEXT NOT NULL, device INTEGER NOT NULL,"
    " id INTEGER NOT NULL, pos INTEGER NOT NULL, pub BLOB NOT NULL,"
    " PRIMARY KEY(number, device, id));"
    "CREATE TABLE IF NOT EXISTS queue(sid INTEGER PRIMARY KEY, number TEXT NOT NULL,"
    " device INTEGER NOT NULL, unacked INTEGER NOT NULL, ord INTEGER NOT NULL, tag TEXT NOT NULL,"
    " id TEXT NOT NULL, attempts INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS queue_device ON queue(number, device);"
    "CREATE TABLE IF NOT EXISTS groups_(id TEXT PRIMARY KEY, subject TEXT NOT NULL,"
    " creator TEXT NOT NULL, subject_owner TEXT NOT NULL, creation INTEGER NOT NULL,"
    " subject_t INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS group_members(gid TEXT NOT NULL, pos INTEGER NOT NULL,"
    " number TEXT NOT NULL, admin INTEGER NOT NULL, PRIMARY KEY(gid, pos));"
    "CREATE TABLE IF NOT EXISTS route_map(slot INTEGER PRIMARY KEY, seq INTEGER NOT NULL,"
    " id TEXT NOT NULL, number TEXT NOT NULL, device INTEGER NOT NULL, lid INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS phone_signal(number TEXT NOT NULL, kind INTEGER NOT NULL,"
    " grp TEXT NOT NULL, name TEXT NOT NULL, device INTEGER NOT NULL, rec BLOB NOT NULL,"
    " PRIMARY KEY(number, kind, grp, name, device));"
    /* added after version 1 files were written: absent rows read as "after the highest device
     * id stored" */
    "CREATE TABLE IF NOT EXISTS phone_device_ids(number TEXT PRIMARY KEY,"
    " next_device INTEGER NOT NULL);";

struct sim_state {
    sqlite3 *db;
    sqlite3_stmt *q[Q_COUNT];
    int loading;       /* sim_state_load runs: the hooks write nothing */
    int64_t next_ord;  /* order of queue rows: appends get increasing values */
    int64_t route_seq; /* order of route_map rows */
};

/* The phone's Signal store as wasim uses it (memstore), with mirrored writes. */
struct sim_state_sig {
    sim *sim;
    sim_phone *phone;
    wa_signal_store inner;
};

/* ---- statements ------------------------------------------------------------------------------ */

static void warn_db(struct sim_state *st, const char *what)
{
    wa_log_warn("sim", "state: %s: %s", what, sqlite3_errmsg(st->db));
}

/* The prepared statement, reset and unbound; NULL on failure (logged). */
static sqlite3_stmt *stmt(struct sim_state *st, int which)
{
    sqlite3_stmt *q = st->q[which];

    if (!q) {
        if (sqlite3_prepare_v2(st->db, sql_text[which], -1, &st->q[which], NULL) != SQLITE_OK) {
            warn_db(st, sql_text[which]);
            return NULL;
        }
        return st->q[which];
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return q;
}

/* Step a bound write statement to completion. 0 or WA_ESTORE (logged). */
static int run(struct sim_state *st, sqlite3_stmt *q, const char *what)
{
    int rc;

    if (!q)
        return WA_ESTORE;
    rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc != SQLITE_DONE) {
        warn_db(st, what);
        return WA_ESTORE;
    }
    return 0;
}

static int exec_simple(struct sim_state *st, int which)
{
    return run(st, stmt(st, which), sql_text[which]);
}

static int begin(struct sim_state *st)
{
    return exec_simple(st, Q_BEGIN);
}

/* Commit when rc is 0, else roll back. Returns rc, or the commit's failure. */
static int finish(struct sim_state *st, int rc)
{
    if (rc == 0)
        rc = exec_simple(st, Q_COMMIT);
    if (rc != 0)
        exec_simple(st, Q_ROLLBACK);
    return rc;
}

static void bind_text(sqlite3_stmt *q, int i, const char *s)
{
    sqlite3_bind_text(q, i, s, -1, SQLITE_STATIC);
}

static void bind_blob(sqlite3_stmt *q, int i, const void *p, size_t n)
{
    sqlite3_bind_blob64(q, i, p, n, SQLITE_STATIC);
}

/* The store to write to, or NULL (no --state, or reading it back at start). */
static struct sim_state *writer(const sim *s)
{
    return s && s->state && !s->state->loading ? s->state : NULL;
}

/* ---- open, close ---------------------------------------------------------------------------- */

static int exec_sql(sqlite3 *db, const char *sql)
{
    char *err = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        wa_log_error("sim", "state: %s: %s", sql, err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return WA_ESTORE;
    }
    return 0;
}

static int pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *q = NULL;
    int rc = WA_ESTORE;

    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW) {
        *out = sqlite3_column_int64(q, 0);
        rc = 0;
    } else {
        wa_log_error("sim", "state: %s: %s", sql, sqlite3_errmsg(db));
    }
    sqlite3_finalize(q);
    return rc;
}

int sim_state_open(sim *s, const char *path)
{
    struct sim_state *st = calloc(1, sizeof *st);
    int64_t app = 0, version = 0;
    char sql[128];
    int rc = WA_ESTORE;

    if (!st)
        return WA_ENOMEM;
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        wa_log_error("sim", "state: cannot open %s: %s", path,
                     st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(st->db, STATE_BUSY_MS);
    /* the exclusive lock is taken by the first access: a second wasim fails here */
    if (exec_sql(st->db, "PRAGMA locking_mode=EXCLUSIVE") ||
        exec_sql(st->db, "PRAGMA journal_mode=WAL") ||
        exec_sql(st->db, "PRAGMA synchronous=NORMAL") ||
        pragma_int(st->db, "PRAGMA application_id", &app) ||
        pragma_int(st->db, "PRAGMA user_version", &version)) {
        wa_log_error("sim", "state: %s is not usable (another wasim using it, or not SQLite)",
                     path);
        goto out;
    }
    if (app == 0 && version == 0) {
        snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d", STATE_APP_ID,
                 STATE_SCHEMA_VERSION);
        if (exec_sql(st->db, sql))
            goto out;
    } else if (app != STATE_APP_ID || version != STATE_SCHEMA_VERSION) {
        wa_log_error("sim", "state: %s is not a wasim state file of version %d", path,
                     STATE_SCHEMA_VERSION);
        goto out;
    }
    if (exec_sql(st->db, schema))
        goto out;
    if (pragma_int(st->db, "SELECT coalesce(max(ord), 0) + 1 FROM queue", &st->next_ord) ||
        pragma_int(st->db, "SELECT coalesce(max(seq), 0) + 1 FROM route_map", &st->route_seq))
        goto out;
    s->state = st;
    st = NULL;
    rc = 0;
    wa_log_info("sim", "state: %s", path);
out:
    if (st) {
        sqlite3_close(st->db);
        free(st);
    }
    return rc;
}

void sim_state_close(sim *s)
{
    struct sim_state *st = s->state;
    size_t i;

    if (!st)
        return;
    for (i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(st->q[i]);
    if (sqlite3_close(st->db) != SQLITE_OK)
        wa_log_warn("sim", "state: close: %s", sqlite3_errmsg(st->db));
    free(st);
    s->state = NULL;
}

/* ---- server identity ------------------------------------------------------------------------ */

static const char *const identity_keys[] = {"root_priv", "root_pub", "static_priv", "static_pub",
                                            "cert_chain"};

int sim_state_load_identity(sim *s)
{
    struct sim_state *st = s->state;
    uint8_t *dst[4] = {s->root_priv, s->root_pub, s->static_priv, s->static_pub};
    sqlite3_stmt *q = NULL;
    unsigned found = 0;
    int rc = 0;

    if (!st)
        return 0;
    if (sqlite3_prepare_v2(st->db, "SELECT k, v FROM meta", -1, &q, NULL) != SQLITE_OK) {
        warn_db(st, "read identity");
        return WA_ESTORE;
    }
    while (rc == 0 && sqlite3_step(q) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(q, 0);
        const void *v = sqlite3_column_blob(q, 1);
        size_t n = (size_t)sqlite3_column_bytes(q, 1), i;
        for (i = 0; k && i < WA_ARRAY_SIZE(identity_keys); i++) {
            if (strcmp(k, identity_keys[i]) != 0)
                continue;
            if (i < 4 && n == 32) {
                memcpy(dst[i], v, 32);
            } else if (i == 4 && n > 0 && n <= STATE_CHAIN_MAX) {
                wa_buf_reset(&s->cert_chain);
                rc = wa_buf_append(&s->cert_chain, v, n);
            } else {
                rc = WA_EPROTO;
            }
            found |= 1u << i;
        }
    }
    sqlite3_finalize(q);
    if (rc == 0 && found != 0 && found != (1u << WA_ARRAY_SIZE(identity_keys)) - 1)
        rc = WA_EPROTO;
    if (rc != 0) {
        wa_log_error("sim", "state: the stored server identity is damaged");
        return rc;
    }
    return found ? 1 : 0;
}

int sim_state_save_identity(sim *s)
{
    struct sim_state *st = s->state;
    const uint8_t *src[4] = {s->root_priv, s->root_pub, s->static_priv, s->static_pub};
    size_t i;
    int rc;

    if (!st)
        return 0;
    rc = begin(st);
    for (i = 0; rc == 0 && i < WA_ARRAY_SIZE(identity_keys); i++) {
        sqlite3_stmt *q = stmt(st, Q_META_PUT);
        if (!q) {
            rc = WA_ESTORE;
            break;
        }
        bind_text(q, 1, identity_keys[i]);
        if (i < 4)
            bind_blob(q, 2, src[i], 32);
        else
            bind_blob(q, 2, s->cert_chain.data, s->cert_chain.len);
        rc = run(st, q, "save identity");
    }
    return finish(st, rc);
}

/* ---- phones -----------------------------------------------------------------------------------
 */

static int put_phone_prekeys(struct sim_state *st, const sim_phone *p)
{
    sqlite3_stmt *q = stmt(st, Q_OPK_CLEAR);
    size_t i;
    int rc;

    if (!q)
        return WA_ESTORE;
    bind_text(q, 1, p->number);
    rc = run(st, q, "clear phone prekeys");
    for (i = 0; rc == 0 && i < p->nopks; i++) {
        const sim_phone_prekey *k = &p->opks[i];
        q = stmt(st, Q_OPK_PUT);
        if (!q)
            return WA_ESTORE;
        bind_text(q, 1, p->number);
        sqlite3_bind_int64(q, 2, k->id);
        sqlite3_bind_int64(q, 3, (int64_t)i);
        bind_blob(q, 4, k->pub, 32);
        bind_blob(q, 5, k->priv, 32);
        sqlite3_bind_int(q, 6, k->handed_out ? 1 : 0);
        rc = run(st, q, "save phone prekey");
    }
    return rc;
}

static int put_key_index(struct sim_state *st, const sim_phone *p)
{
    sqlite3_stmt *q = stmt(st, Q_PHONE_KEY_INDEX);

    if (!q)
        return WA_ESTORE;
    bind_text(q, 1, p->number);
    sqlite3_bind_int64(q, 2, p->next_key_index);
    sqlite3_bind_int64(q, 3, p->next_opk_id);
    if (run(st, q, "save phone counters") != 0)
        return WA_ESTORE;
    q = stmt(st, Q_PHONE_DEVICE_ID);
    if (!q)
        return WA_ESTORE;
    bind_text(q, 1, p->number);
    sqlite3_bind_int64(q, 2, p->next_device_id);
    return run(st, q, "save next device id");
}

void sim_state_phone_save(sim_phone *p)
{
    struct sim_state *st = writer(p->sim);
    const sim_keys *k = &p->devices[0].keys;
    sqlite3_stmt *q;
    int rc;

    if (!st)
        return;
    rc = begin(st);
    q = rc ? NULL : stmt(st, Q_PHONE_PUT);
    if (q) {
        bind_text(q, 1, p->number);
        bind_text(q, 2, p->lid);
        bind_blob(q, 3, p->identity_priv, 32);
        bind_blob(q, 4, p->identity_pub, 32);
        sqlite3_bind_int64(q, 5, k->reg_id);
        sqlite3_bind_int64(q, 6, k->spk_id);
        bind_blob(q, 7, p->spk_priv, 32);
        bind_blob(q, 8, k->spk_pub, 32);
        bind_blob(q, 9, k->spk_sig, 64);
        sqlite3_bind_int64(q, 10, p->next_key_index);
        sqlite3_bind_int64(q, 11, p->next_opk_id);
        bind_text(q, 12, p->push_name);
        bind_blob(q, 13, p->appstate_key_id, sizeof p->appstate_key_id);
        bind_blob(q, 14, p->appstate_key, sizeof p->appstate_key);
        sqlite3_bind_int64(q, 15, p->appstate_key_ts);
        rc = run(st, q, "save phone");
    } else if (!rc) {
        rc = WA_ESTORE;
    }
    if (rc == 0)
        rc = put_phone_prekeys(st, p);
    finish(st, rc);
}

void sim_state_phone_prekeys(sim_phone *p)
{
    struct sim_state *st = writer(p->sim);
    int rc;

    if (!st)
        return;
    rc = begin(st);
    if (rc == 0)
        rc = put_phone_prekeys(st, p);
    if (rc == 0)
        rc = put_key_index(st, p);
    finish(st, rc);
}

void sim_state_phone_prekey_handed(sim_phone *p, uint32_t id)
{
    struct sim_state *st = writer(p->sim);
    sqlite3_stmt *q = st ? stmt(st, Q_OPK_HANDED) : NULL;

    if (!q)
        return;
    bind_text(q, 1, p->number);
    sqlite3_bind_int64(q, 2, id);
    run(st, q, "mark phone prekey");
}

/* ---- devices ----------------------------------------------------------------------------------
 */

static struct sim_state *device_writer(const sim_device *d)
{
    return d && d->phone && d->id != 0 ? writer(d->phone->sim) : NULL;
}

void sim_state_device_save(sim_device *d)
{
    struct sim_state *st = device_writer(d);
    const sim_keys *k;
    sqlite3_stmt *q;
    size_t i;
    int rc;

    if (!st)
        return;
    k = &d->keys;
    rc = begin(st);
    q = rc ? NULL : stmt(st, Q_DEV_PUT);
    if (q) {
        bind_text(q, 1, d->phone->number);
        sqlite3_bind_int(q, 2, d->id);
        bind_blob(q, 3, d->noise_pub, 32);
        sqlite3_bind_int64(q, 4, d->key_index);
        sqlite3_bind_int64(q, 5, k->reg_id);
        bind_blob(q, 6, k->identity_pub, 32);
        sqlite3_bind_int64(q, 7, k->spk_id);
        bind_blob(q, 8, k->spk_pub, 32);
        bind_blob(q, 9, k->spk_sig, 64);
        bind_text(q, 10, d->push_name);
        bind_text(q, 11, d->platform);
        sqlite3_bind_int(q, 12, d->keyshare_sent ? 1 : 0);
        rc = run(st, q, "save device");
    } else if (!rc) {
        rc = WA_ESTORE;
    }
    q = rc ? NULL : stmt(st, Q_DPK_CLEAR);
    if (q) {
        bind_text(q, 1, d->phone->number);
        sqlite3_bind_int(q, 2, d->id);
        rc = run(st, q, "clear device prekeys");
    }
    for (i = 0; rc == 0 && i < k->nprekeys; i++) {
        q = stmt(st, Q_DPK_PUT);
        if (!q) {
            rc = WA_ESTORE;
            break;
        }
        bind_text(q, 1, d->phone->number);
        sqlite3_bind_int(q, 2, d->id);
        sqlite3_bind_int64(q, 3, k->prekeys[i].id);
        sqlite3_bind_int64(q, 4, (int64_t)i);
        bind_blob(q, 5, k->prekeys[i].pub, 32);
        rc = run(st, q, "save device prekey");
    }
    if (rc == 0)
        rc = put_key_index(st, d->phone);
    finish(st, rc);
}

void sim_state_device_update(sim_device *d)
{
    struct sim_state *st = device_writer(d);
    sqlite3_stmt *q = st ? stmt(st, Q_DEV_UPDATE) : NULL;

    if (!q)
        return;
    bind_text(q, 1, d->phone->number);
    sqlite3_bind_int(q, 2, d->id);
    bind_text(q, 3, d->push_name);
    sqlite3_bind_int(q, 4, d->keyshare_sent ? 1 : 0);
    run(st, q, "update device");
}

void sim_state_device_prekey_taken(sim_device *d, uint32_t id)
{
    struct sim_state *st = device_writer(d);
    sqlite3_stmt *q = st ? stmt(st, Q_DPK_DEL) : NULL;

    if (!q)
        return;
    bind_text(q, 1, d->phone->number);
    sqlite3_bind_int(q, 2, d->id);
    sqlite3_bind_int64(q, 3, id);
    run(st, q, "take device prekey");
}

void sim_state_device_removed(sim_device *d)
{
    struct sim_state *st = device_writer(d);
    static const int clears[] = {Q_DEV_DEL, Q_DPK_CLEAR, Q_QUEUE_CLEAR};
    size_t i;
    int rc;

    if (!st)
        return;
    rc = begin(st);
    for (i = 0; rc == 0 && i < WA_ARRAY_SIZE(clears); i++) {
        sqlite3_stmt *q = stmt(st, clears[i]);
        if (!q) {
            rc = WA_ESTORE;
            break;
        }
        bind_text(q, 1, d->phone->number);
        sqlite3_bind_int(q, 2, d->id);
        rc = run(st, q, "remove device");
    }
    finish(st, rc);
}

/* ---- queues -----------------------------------------------------------------------------------
 */

void sim_state_queue_put(sim_device *d, sim_queued *q, int unacked)
{
    struct sim_state *st = device_writer(d);
    sqlite3_stmt *x;

    if (!st || !q)
        return;
    if (q->sid) {
        x = stmt(st, Q_QUEUE_MOVE);
        if (!x)
            return;
        sqlite3_bind_int64(x, 1, q->sid);
        sqlite3_bind_int(x, 2, unacked ? 1 : 0);
        sqlite3_bind_int64(x, 3, st->next_ord++);
        sqlite3_bind_int64(x, 4, q->attempts);
        run(st, x, "move queued stanza");
        return;
    }
    x = stmt(st, Q_QUEUE_INSERT);
    if (!x)
        return;
    bind_text(x, 1, d->phone->number);
    sqlite3_bind_int(x, 2, d->id);
    sqlite3_bind_int(x, 3, unacked ? 1 : 0);
    sqlite3_bind_int64(x, 4, st->next_ord++);
    bind_text(x, 5, q->tag);
    bind_text(x, 6, q->id);
    sqlite3_bind_int64(x, 7, q->attempts);
    bind_blob(x, 8, q->data, q->len);
    if (run(st, x, "queue stanza") == 0)
        q->sid = sqlite3_last_insert_rowid(st->db);
}

void sim_state_queue_del(sim_device *d, sim_queued *q)
{
    struct sim_state *st = device_writer(d);
    sqlite3_stmt *x;

    if (!st || !q || !q->sid)
        return;
    x = stmt(st, Q_QUEUE_DEL);
    if (!x)
        return;
    sqlite3_bind_int64(x, 1, q->sid);
    if (run(st, x, "unqueue stanza") == 0)
        q->sid = 0;
}

/* ---- groups, routing map ----------------------------------------------------------------------
 */

void sim_state_group_save(sim *s, const sim_group *g)
{
    struct sim_state *st = writer(s);
    sqlite3_stmt *q;
    size_t i;
    int rc;

    if (!st)
        return;
    rc = begin(st);
    q = rc ? NULL : stmt(st, Q_GROUP_PUT);
    if (q) {
        bind_text(q, 1, g->id);
        bind_text(q, 2, g->subject);
        bind_text(q, 3, g->creator->number);
        bind_text(q, 4, (g->subject_owner ? g->subject_owner : g->creator)->number);
        sqlite3_bind_int64(q, 5, g->creation);
        sqlite3_bind_int64(q, 6, g->subject_t);
        rc = run(st, q, "save group");
    } else if (!rc) {
        rc = WA_ESTORE;
    }
    q = rc ? NULL : stmt(st, Q_MEMBERS_CLEAR);
    if (q) {
        bind_text(q, 1, g->id);
        rc = run(st, q, "clear group members");
    }
    for (i = 0; rc == 0 && i < g->nmembers; i++) {
        q = stmt(st, Q_MEMBER_PUT);
        if (!q) {
            rc = WA_ESTORE;
            break;
        }
        bind_text(q, 1, g->id);
        sqlite3_bind_int64(q, 2, (int64_t)i);
        bind_text(q, 3, g->members[i].phone->number);
        sqlite3_bind_int(q, 4, g->members[i].admin);
        rc = run(st, q, "save group member");
    }
    finish(st, rc);
}

void sim_state_group_delete(sim *s, const sim_group *g)
{
    struct sim_state *st = writer(s);
    static const int dels[] = {Q_GROUP_DEL, Q_MEMBERS_CLEAR};
    size_t i;
    int rc;

    if (!st)
        return;
    rc = begin(st);
    for (i = 0; rc == 0 && i < WA_ARRAY_SIZE(dels); i++) {
        sqlite3_stmt *q = stmt(st, dels[i]);
        if (!q) {
            rc = WA_ESTORE;
            break;
        }
        bind_text(q, 1, g->id);
        rc = run(st, q, "delete group");
    }
    finish(st, rc);
}

void sim_state_route_remember(sim *s, size_t slot, const sim_route_entry *e)
{
    struct sim_state *st = writer(s);
    sqlite3_stmt *q = st ? stmt(st, Q_ROUTE_PUT) : NULL;

    if (!q || !e->phone)
        return;
    sqlite3_bind_int64(q, 1, (int64_t)slot);
    sqlite3_bind_int64(q, 2, st->route_seq++);
    bind_text(q, 3, e->id);
    bind_text(q, 4, e->phone->number);
    sqlite3_bind_int(q, 5, e->device);
    sqlite3_bind_int(q, 6, e->lid ? 1 : 0);
    run(st, q, "remember message");
}

/* ---- the virtual phone's Signal store ------------------------------------------------------- */

static void sig_write(struct sim_state_sig *w, int del, int kind, const char *group,
                      const wa_signal_addr *a, const uint8_t *rec, size_t len)
{
    struct sim_state *st = writer(w->sim);
    char name[WA_SIGNAL_NAME_MAX];
    sqlite3_stmt *q;

    if (!st || wa_signal_addr_name(a, name, sizeof name) < 0)
        return;
    q = stmt(st, del ? Q_SIG_DEL : Q_SIG_PUT);
    if (!q)
        return;
    bind_text(q, 1, w->phone->number);
    sqlite3_bind_int(q, 2, kind);
    bind_text(q, 3, group ? group : "");
    bind_text(q, 4, name);
    sqlite3_bind_int(q, 5, a->device);
    if (!del)
        bind_blob(q, 6, rec, len);
    run(st, q, del ? "delete phone signal record" : "save phone signal record");
}

static int sig_get_identity(wa_signal_keypair *kp, uint32_t *reg_id, void *ud)
{
    struct sim_state_sig *w = ud;

    return w->inner.get_identity_cb(kp, reg_id, w->inner.user_data);
}

static int sig_load_identity(const wa_signal_addr *a, uint8_t key[WA_SIGNAL_KEY_LEN], void *ud)
{
    struct sim_state_sig *w = ud;

    return w->inner.load_identity_cb(a, key, w->inner.user_data);
}

static int sig_save_identity(const wa_signal_addr *a, const uint8_t key[WA_SIGNAL_KEY_LEN],
                             void *ud)
{
    struct sim_state_sig *w = ud;
    int rc = w->inner.save_identity_cb(a, key, w->inner.user_data);

    if (rc == 0)
        sig_write(w, 0, SIG_IDENTITY, NULL, a, key, WA_SIGNAL_KEY_LEN);
    return rc;
}

static int sig_load_session(const wa_signal_addr *a, wa_buf *out, void *ud)
{
    struct sim_state_sig *w = ud;

    return w->inner.load_session_cb(a, out, w->inner.user_data);
}

static int sig_store_session(const wa_signal_addr *a, const uint8_t *rec, size_t len, void *ud)
{
    struct sim_state_sig *w = ud;
    int rc = w->inner.store_session_cb(a, rec, len, w->inner.user_data);

    if (rc == 0)
        sig_write(w, 0, SIG_SESSION, NULL, a, rec, len);
    return rc;
}

static int sig_delete_session(const wa_signal_addr *a, void *ud)
{
    struct sim_state_sig *w = ud;
    int rc = w->inner.delete_session_cb(a, w->inner.user_data);

    if (rc >= 0)
        sig_write(w, 1, SIG_SESSION, NULL, a, NULL, 0);
    return rc;
}

static int sig_load_sessions(const wa_signal_addr *addrs, size_t n, wa_buf *outs, uint8_t *found,
                             void *ud)
{
    struct sim_state_sig *w = ud;

    return w->inner.load_sessions_cb(addrs, n, outs, found, w->inner.user_data);
}

/* One-time and signed prekeys pass through: accounts.c's tables hold them (sim_phone.opks). */
static int sig_load_prekey(uint32_t id, wa_buf *out, void *ud)
{
    struct sim_state_sig *w = ud;

    return w->inner.load_prekey_cb(id, out, w->inner.user_data);
}

static int sig_store_prekey(uint32_t id, const uint8_t *rec, size_t len, void *ud)
{
    struct sim_state_sig *w = ud;

    return w->inner.store_prekey_cb(id, rec, len, w->inner.user_data);
}

static int sig_remove_prekey(uint32_t id, void *ud)
{
    struct sim_state_sig *w = ud;

    return w->inner.remove_prekey_cb(id, w->inner.user_data);
}

static int sig_load_spk(uint32_t id, wa_buf *out, void *ud)
{
    struct sim_state_sig *w = ud;

    return w->inner.load_signed_prekey_cb(id, out, w->inner.user_data);
}

static int sig_store_spk(uint32_t id, const uint8_t *rec, size_t len, void *ud)
{
    struct sim_state_sig *w = ud;

    return w->inner.store_signed_prekey_cb(id, rec, len, w->inner.user_data);
}

static int sig_remove_spk(uint32_t id, void *ud)
{
    struct sim_state_sig *w = ud;

    return w->inner.remove_signed_prekey_cb(id, w->inner.user_data);
}

static int sig_load_sk(const char *group, const wa_signal_addr *sender, wa_buf *out, void *ud)
{
    struct sim_state_sig *w = ud;

    return w->inner.load_sender_key_cb(group, sender, out, w->inner.user_data);
}

static int sig_store_sk(const char *group, const wa_signal_addr *sender, const uint8_t *rec,
                        size_t len, void *ud)
{
    struct sim_state_sig *w = ud;
    int rc = w->inner.store_sender_key_cb(group, sender, rec, len, w->inner.user_data);

    if (rc == 0)
        sig_write(w, 0, SIG_SENDER_KEY, group, sender, rec, len);
    return rc;
}

static int sig_delete_sk(const char *group, const wa_signal_addr *sender, void *ud)
{
    struct sim_state_sig *w = ud;
    int rc = w->inner.delete_sender_key_cb(group, sender, w->inner.user_data);

    if (rc >= 0)
        sig_write(w, 1, SIG_SENDER_KEY, group, sender, NULL, 0);
    return rc;
}

/* Put the stored records of phone p back into the (fresh) inner store. */
static int sig_replay(struct sim_state *st, struct sim_state_sig *w)
{
    sqlite3_stmt *q = NULL;
    size_t loaded = 0, bad = 0;
    int rc = 0;

    if (sqlite3_prepare_v2(
            st->db, "SELECT kind, grp, name, device, rec FROM phone_signal WHERE number = ?1", -1,
            &q, NULL) != SQLITE_OK) {
        warn_db(st, "read phone signal records");
        return 0; /* the phone starts without them: the retry path rebuilds sessions */
    }
    bind_text(q, 1, w->phone->number);
    while (sqlite3_step(q) == SQLITE_ROW) {
        int kind = sqlite3_column_int(q, 0);
        const char *group = (const char *)sqlite3_column_text(q, 1);
        const char *name = (const char *)sqlite3_column_text(q, 2);
        int64_t device = sqlite3_column_int64(q, 3);
        const uint8_t *rec = sqlite3_column_blob(q, 4);
        size_t len = (size_t)sqlite3_column_bytes(q, 4);
        wa_signal_addr a;
        int r = WA_EPROTO;
        if (!group || !name || device < 0 || device > UINT16_MAX || !rec ||
            len > WA_SIGNAL_RECORD_MAX ||
            wa_signal_addr_from_name(&a, name, strlen(name), (int32_t)device) != 0) {
            bad++;
            continue;
        }
        if (kind == SIG_IDENTITY && len == WA_SIGNAL_KEY_LEN)
            r = w->inner.save_identity_cb(&a, rec, w->inner.user_data);
        else if (kind == SIG_SESSION)
            r = w->inner.store_session_cb(&a, rec, len, w->inner.user_data);
        else if (kind == SIG_SENDER_KEY && group[0] && strlen(group) <= WA_SIGNAL_GROUP_MAX)
            r = w->inner.store_sender_key_cb(group, &a, rec, len, w->inner.user_data);
        if (r == WA_ENOMEM) {
            rc = r;
            break;
        }
        if (r == 0)
            loaded++;
        else
            bad++;
    }
    sqlite3_finalize(q);
    if (loaded || bad)
        wa_log_info("sim", "state: phone %s: %zu Signal records restored%s", w->phone->number,
                    loaded, bad ? " (some damaged ones skipped)" : "");
    return rc;
}

int sim_state_phone_signal(sim *s, sim_phone *p, wa_signal_store *st)
{
    struct sim_state_sig *w = p->state_sig;

    if (!s->state)
        return 0;
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w)
            return WA_ENOMEM;
        p->state_sig = w;
    }
    w->sim = s;
    w->phone = p;
    w->inner = *st;
    st->user_data = w;
    st->get_identity_cb = sig_get_identity;
    st->load_identity_cb = sig_load_identity;
    st->save_identity_cb = sig_save_identity;
    st->load_session_cb = sig_load_session;
    st->store_session_cb = sig_store_session;
    st->delete_session_cb = sig_delete_session;
    st->load_sessions_cb = w->inner.load_sessions_cb ? sig_load_sessions : NULL;
    st->load_prekey_cb = sig_load_prekey;
    st->store_prekey_cb = sig_store_prekey;
    st->remove_prekey_cb = sig_remove_prekey;
    st->load_signed_prekey_cb = sig_load_spk;
    st->store_signed_prekey_cb = sig_store_spk;
    st->remove_signed_prekey_cb = sig_remove_spk;
    st->load_sender_key_cb = sig_load_sk;
    st->store_sender_key_cb = sig_store_sk;
    st->delete_sender_key_cb = sig_delete_sk;
    return sig_replay(s->state, w);
}

void sim_state_phone_free(sim_phone *p)
{
    if (p->state_sig) {
        free(p->state_sig);
        p->state_sig = NULL;
    }
}

/* ---- loading ----------------------------------------------------------------------------------
 */

static int prepare(struct sim_state *st, const char *sql, sqlite3_stmt **q)
{
    if (sqlite3_prepare_v2(st->db, sql, -1, q, NULL) != SQLITE_OK) {
        warn_db(st, sql);
        return WA_ESTORE;
    }
    return 0;
}

/* Copy a BLOB column of exactly n bytes. 0 or WA_EPROTO. */
static int col_key(sqlite3_stmt *q, int col, void *dst, size_t n)
{
    const void *p = sqlite3_column_blob(q, col);

    if (!p || (size_t)sqlite3_column_bytes(q, col) != n)
        return WA_EPROTO;
    memcpy(dst, p, n);
    return 0;
}

/* Copy a TEXT column that fits cap (with its NUL). 0 or WA_EPROTO. */
static int col_text(sqlite3_stmt *q, int col, char *dst, size_t cap)
{
    const char *p = (const char *)sqlite3_column_text(q, col);

    if (!p || strlen(p) >= cap)
        return WA_EPROTO;
    memcpy(dst, p, strlen(p) + 1);
    return 0;
}

static int col_u32(sqlite3_stmt *q, int col, uint32_t *out)
{
    int64_t v = sqlite3_column_int64(q, col);

    if (v < 0 || v > UINT32_MAX)
        return WA_EPROTO;
    *out = (uint32_t)v;
    return 0;
}

/* The phone a row names, remembering the last one (rows come ordered by number). */
static sim_phone *row_phone(sim *s, sqlite3_stmt *q, int col, sim_phone **last)
{
    const char *number = (const char *)sqlite3_column_text(q, col);

    if (!number)
        return NULL;
    if (!*last || strcmp((*last)->number, number) != 0)
        *last = sim_phone_find(s, number);
    return *last;
}

static int load_phones(sim *s, struct sim_state *st)
{
    sqlite3_stmt *q = NULL;
    sim_phone *p = NULL;
    int rc, step = SQLITE_DONE;

    rc = prepare(st,
                 "SELECT number, lid, identity_priv, identity_pub, reg_id, spk_id, spk_priv, "
                 "spk_pub, spk_sig, next_key_index, next_opk_id, push_name, appstate_key_id, "
                 "appstate_key, appstate_key_ts FROM phones",
                 &q);
    while (rc == 0 && (step = sqlite3_step(q)) == SQLITE_ROW) {
        sim_device *d;
        sim_keys *k;
        p = calloc(1, sizeof *p);
        if (p)
            p->opks = calloc(SIM_PHONE_PREKEY_MAX, sizeof *p->opks);
        if (!p || !p->opks) {
            rc = WA_ENOMEM;
            break;
        }
        d = &p->devices[0];
        k = &d->keys;
        p->sim = s;
        if (col_text(q, 0, p->number, sizeof p->number) || col_text(q, 1, p->lid, sizeof p->lid) ||
            col_key(q, 2, p->identity_priv, 32) || col_key(q, 3, p->identity_pub, 32) ||
            col_u32(q, 4, &k->reg_id) || col_u32(q, 5, &k->spk_id) ||
            col_key(q, 6, p->spk_priv, 32) || col_key(q, 7, k->spk_pub, 32) ||
            col_key(q, 8, k->spk_sig, 64) || col_u32(q, 9, &p->next_key_index) ||
            col_u32(q, 10, &p->next_opk_id) || col_text(q, 11, p->push_name, sizeof p->push_name) ||
            col_key(q, 12, p->appstate_key_id, sizeof p->appstate_key_id) ||
            col_key(q, 13, p->appstate_key, sizeof p->appstate_key) || !p->number[0] ||
            !p->lid[0] || sim_phone_find(s, p->number)) {
            rc = WA_EPROTO;
            break;
        }
        p->appstate_key_ts = sqlite3_column_int64(q, 14);
        memcpy(k->identity_pub, p->identity_pub, 32);
        d->phone = p;
        d->id = 0;
        d->present = 1;
        p->next = s->phones;
        s->phones = p;
        p = NULL;
    }
    if (p) { /* not linked: freed here */
        wa_wipe(p->identity_priv, sizeof p->identity_priv);
        wa_wipe(p->spk_priv, sizeof p->spk_priv);
        wa_wipe(p->appstate_key, sizeof p->appstate_key);
        free(p->opks);
        free(p);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = WA_ESTORE;
    sqlite3_finalize(q);
    return rc;
}

static int load_phone_prekeys(sim *s, struct sim_state *st)
{
    sqlite3_stmt *q = NULL;
    sim_phone *last = NULL;
    int rc, step = SQLITE_DONE;

    rc = prepare(st,
                 "SELECT number, id, pub, priv, handed_out FROM phone_prekeys "
                 "ORDER BY number, pos",
                 &q);
    while (rc == 0 && (step = sqlite3_step(q)) == SQLITE_ROW) {
        sim_phone *p = row_phone(s, q, 0, &last);
        sim_phone_prekey *k;
        if (!p || p->nopks >= SIM_PHONE_PREKEY_MAX) {
            rc = WA_EPROTO;
            break;
        }
        k = &p->opks[p->nopks];
        if (col_u32(q, 1, &k->id) || col_key(q, 2, k->pub, 32) || col_key(q, 3, k->priv, 32)) {
            rc = WA_EPROTO;
            break;
        }
        k->handed_out = sqlite3_column_int(q, 4) != 0;
        p->nopks++;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = WA_ESTORE;
    sqlite3_finalize(q);
    return rc;
}

static int load_devices(sim *s, struct sim_state *st)
{
    sqlite3_stmt *q = NULL;
    sim_phone *last = NULL;
    int rc, step = SQLITE_DONE;

    rc = prepare(st,
                 "SELECT number, device, noise_pub, key_index, reg_id, identity_pub, spk_id, "
                 "spk_pub, spk_sig, push_name, platform, keyshare_sent FROM devices "
                 "ORDER BY number, device",
                 &q);
    while (rc == 0 && (step = sqlite3_step(q)) == SQLITE_ROW) {
        sim_phone *p = row_phone(s, q, 0, &last);
        int64_t id = sqlite3_column_int64(q, 1);
        sim_device *d = NULL;
        unsigned i;
        if (p && id >= 1 && id <= SIM_DEVICE_ID_MAX && !sim_phone_device(p, (unsigned)id))
            for (i = 1; i < SIM_MAX_DEVICES && !d; i++) /* a free slot */
                d = p->devices[i].present ? NULL : &p->devices[i];
        if (!d) {
            rc = WA_EPROTO;
            break;
        }
        if (col_key(q, 2, d->noise_pub, 32) || col_u32(q, 3, &d->key_index) ||
            col_u32(q, 4, &d->keys.reg_id) || col_key(q, 5, d->keys.identity_pub, 32) ||
            col_u32(q, 6, &d->keys.spk_id) || col_key(q, 7, d->keys.spk_pub, 32) ||
            col_key(q, 8, d->keys.spk_sig, 64) ||
            col_text(q, 9, d->push_name, sizeof d->push_name) ||
            col_text(q, 10, d->platform, sizeof d->platform)) {
            memset(d, 0, sizeof *d);
            rc = WA_EPROTO;
            break;
        }
        d->keyshare_sent = sqlite3_column_int(q, 11) != 0;
        d->phone = p;
        d->id = (uint16_t)id;
        d->present = 1;
        if (p->next_device_id <= (uint32_t)id)
            p->next_device_id = (uint32_t)id + 1;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = WA_ESTORE;
    sqlite3_finalize(q);
    return rc;
}

/* Each phone's next device id: at least the stored counter (ids of devices unlinked since are
 * not handed out again), and past every device loaded. */
static int load_device_ids(sim *s, struct sim_state *st)
{
    sqlite3_stmt *q = NULL;
    sim_phone *last = NULL;
    int rc, step = SQLITE_DONE;

    rc = prepare(st, "SELECT number, next_device FROM phone_device_ids ORDER BY number", &q);
    while (rc == 0 && (step = sqlite3_step(q)) == SQLITE_ROW) {
        sim_phone *p = row_phone(s, q, 0, &last);
        uint32_t next;
        if (!p || col_u32(q, 1, &next) || next > SIM_DEVICE_ID_MAX + 1u) {
            rc = WA_EPROTO;
            break;
        }
        if (next > p->next_device_id)
            p->next_device_id = next;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = WA_ESTORE;
    sqlite3_finalize(q);
    for (last = s->phones; rc == 0 && last; last = last->next)
        if (last->next_device_id == 0)
            last->next_device_id = 1;
    return rc;
}

static int load_device_prekeys(sim *s, struct sim_state *st)
{
    sqlite3_stmt *q = NULL;
    sim_phone *last = NULL;
    int rc, step = SQLITE_DONE;

    rc = prepare(
        st, "SELECT number, device, id, pub FROM device_prekeys ORDER BY number, device, pos", &q);
    while (rc == 0 && (step = sqlite3_step(q)) == SQLITE_ROW) {
        sim_phone *p = row_phone(s, q, 0, &last);
        int64_t dev = sqlite3_column_int64(q, 1);
        sim_device *d =
            dev >= 1 && dev <= SIM_DEVICE_ID_MAX ? sim_phone_device(p, (unsigned)dev) : NULL;
        uint8_t pub[32];
        uint32_t id;
        if (!d || col_u32(q, 2, &id) || col_key(q, 3, pub, 32)) {
            rc = WA_EPROTO;
            break;
        }
        rc = sim_keys_add_prekey(&d->keys, id, pub);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = WA_ESTORE;
    sqlite3_finalize(q);
    return rc;
}

static int load_queues(sim *s, struct sim_state *st, size_t *count)
{
    sqlite3_stmt *q = NULL;
    sim_phone *last = NULL;
    int rc, step = SQLITE_DONE;

    rc = prepare(st,
                 "SELECT sid, number, device, unacked, tag, id, attempts, data FROM queue "
                 "ORDER BY ord",
                 &q);
    while (rc == 0 && (step = sqlite3_step(q)) == SQLITE_ROW) {
        sim_phone *p = row_phone(s, q, 1, &last);
        int64_t dev = sqlite3_column_int64(q, 2);
        const void *data = sqlite3_column_blob(q, 7);
        size_t len = (size_t)sqlite3_column_bytes(q, 7);
        sim_device *d =
            dev >= 1 && dev <= SIM_DEVICE_ID_MAX ? sim_phone_device(p, (unsigned)dev) : NULL;
        sim_queued *e;
        if (!d || !data || len > STATE_QUEUED_MAX) {
            rc = WA_EPROTO;
            break;
        }
        e = malloc(sizeof *e + len);
        if (!e) {
            rc = WA_ENOMEM;
            break;
        }
        memset(e, 0, sizeof *e);
        if (col_text(q, 4, e->tag, sizeof e->tag) || col_text(q, 5, e->id, sizeof e->id) ||
            col_u32(q, 6, &e->attempts)) {
            free(e);
            rc = WA_EPROTO;
            break;
        }
        e->sid = sqlite3_column_int64(q, 0);
        e->len = len;
        memcpy(e->data, data, len);
        sim_queue_restore(d, e, sqlite3_column_int(q, 3) != 0);
        (*count)++;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = WA_ESTORE;
    sqlite3_finalize(q);
    return rc;
}

static sim_phone *phone_col(sim *s, sqlite3_stmt *q, int col)
{
    const char *number = (const char *)sqlite3_column_text(q, col);

    return number ? sim_phone_find(s, number) : NULL;
}

static int load_groups(sim *s, struct sim_state *st, size_t *count)
{
    sim_route *r = sim_route_state(s);
    sqlite3_stmt *q = NULL;
    sim_group *g = NULL;
    int rc, step = SQLITE_DONE;

    if (!r)
        return WA_ENOMEM;
    /* one row per member (a group without members has none left: skipped) */
    rc = prepare(st,
                 "SELECT g.id, g.subject, g.creator, g.subject_owner, g.creation, g.subject_t, "
                 "m.number, m.admin FROM groups_ g JOIN group_members m ON m.gid = g.id "
                 "ORDER BY g.id, m.pos",
                 &q);
    while (rc == 0 && (step = sqlite3_step(q)) == SQLITE_ROW) {
        const char *gid = (const char *)sqlite3_column_text(q, 0);
        sim_phone *member = phone_col(s, q, 6);
        if (!gid)
            continue;
        if (!g || strcmp(g->id, gid) != 0) {
            if (r->ngroups >= SIM_MAX_GROUPS) {
                rc = WA_ELIMIT;
                break;
            }
            g = calloc(1, sizeof *g);
            if (!g) {
                rc = WA_ENOMEM;
                break;
            }
            if (col_text(q, 0, g->id, sizeof g->id) ||
                col_text(q, 1, g->subject, sizeof g->subject) ||
                !(g->creator = phone_col(s, q, 2))) {
                free(g);
                g = NULL;
                rc = WA_EPROTO;
                break;
            }
            g->subject_owner = phone_col(s, q, 3);
            g->creation = sqlite3_column_int64(q, 4);
            g->subject_t = sqlite3_column_int64(q, 5);
            g->next = r->groups;
            r->groups = g;
            r->ngroups++;
            (*count)++;
        }
        if (!member || sim_group_member_of(g, member) || g->nmembers >= SIM_GROUP_MAX_MEMBERS)
            continue; /* an unknown phone cannot be: skipped */
        if (g->nmembers == g->members_cap) {
            size_t ncap = g->members_cap ? g->members_cap * 2 : 8;
            sim_group_member *nm = realloc(g->members, ncap * sizeof *nm);
            if (!nm) {
                rc = WA_ENOMEM;
                break;
            }
            g->members = nm;
            g->members_cap = ncap;
        }
        g->members[g->nmembers].phone = member;
        g->members[g->nmembers].admin = sqlite3_column_int(q, 7);
        g->nmembers++;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = WA_ESTORE;
    sqlite3_finalize(q);
    return rc;
}

/* The routing map is rebuilt in the order it was written, then written again under the new
 * ring positions (slots), in one transaction: at most SIM_ROUTE_MAP_SIZE rows. */
typedef struct route_row {
    char id[SIM_MSG_ID_MAX + 1];
    sim_phone *phone;
    uint16_t device;
    int lid;
} route_row;

static int load_route(sim *s, struct sim_state *st, size_t *count)
{
    sqlite3_stmt *q = NULL;
    route_row *rows = calloc(SIM_ROUTE_MAP_SIZE, sizeof *rows);
    sim_phone *last = NULL;
    size_t n = 0, i;
    int rc, step = SQLITE_DONE;

    if (!rows)
        return WA_ENOMEM;
    rc = prepare(st, "SELECT id, number, device, lid FROM route_map ORDER BY seq", &q);
    while (rc == 0 && n < SIM_ROUTE_MAP_SIZE && (step = sqlite3_step(q)) == SQLITE_ROW) {
        route_row *e = &rows[n];
        int64_t dev = sqlite3_column_int64(q, 2);
        if (col_text(q, 0, e->id, sizeof e->id) || dev < 0 || dev > SIM_DEVICE_ID_MAX)
            continue;
        /* rows are ordered by seq, not number: the last-phone cache helps runs of one sender */
        e->phone = row_phone(s, q, 1, &last);
        if (!e->phone)
            continue;
        e->device = (uint16_t)dev;
        e->lid = sqlite3_column_int(q, 3) != 0;
        n++;
    }
    sqlite3_finalize(q);
    if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
        rc = WA_ESTORE;
    if (rc == 0 && (rc = begin(st)) == 0) {
        rc = exec_sql(st->db, "DELETE FROM route_map");
        for (i = 0; rc == 0 && i < n; i++) {
            sim_device sender;
            memset(&sender, 0, sizeof sender);
            sender.phone = rows[i].phone;
            sender.id = rows[i].device;
            sim_route_remember(s, rows[i].id, &sender, rows[i].lid); /* writes its row again */
        }
        rc = finish(st, rc);
    }
    free(rows);
    *count = n;
    return rc;
}

int sim_state_load(sim *s)
{
    struct sim_state *st = s->state;
    size_t phones = 0, devices = 0, queued = 0, groups = 0, routes = 0;
    const sim_phone *p;
    int rc;

    if (!st)
        return 0;
    st->loading = 1;
    rc = load_phones(s, st);
    if (rc == 0)
        rc = load_phone_prekeys(s, st);
    if (rc == 0)
        rc = load_devices(s, st);
    if (rc == 0)
        rc = load_device_ids(s, st);
    if (rc == 0)
        rc = load_device_prekeys(s, st);
    if (rc == 0)
        rc = load_queues(s, st, &queued);
    if (rc == 0)
        rc = load_groups(s, st, &groups);
    st->loading = 0;
    if (rc == 0)
        rc = load_route(s, st, &routes);
    if (rc != 0) {
        wa_log_error("sim", "state: cannot read the state back: %s",
                     rc == WA_EPROTO ? "damaged rows (not written by this wasim?)"
                                     : wa_strerror(rc));
        return rc;
    }
    for (p = s->phones; p; p = p->next) {
        unsigned i;
        phones++;
        for (i = 1; i < SIM_MAX_DEVICES; i++)
            devices += p->devices[i].present ? 1 : 0;
    }
    wa_log_info("sim",
                "state: %zu phones, %zu devices, %zu queued stanzas, %zu groups, %zu routed "
                "message ids restored",
                phones, devices, queued, groups, routes);
    return 0;
}

int sim_state_chain_fresh(const sim *s)
{
    return wa_noise_cert_verify(s->cert_chain.data, s->cert_chain.len, s->root_pub, s->static_pub,
                                (uint64_t)time(NULL) + STATE_CERT_MARGIN_S, NULL) == 0;
}
