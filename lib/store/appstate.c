/*
 * appstate.c - the store's app-state sync keys (store.h "app-state sync keys"): the keys the
 * account's phone shares with its companions in protocolMessage.appStateSyncKeyShare
 * (whatsmeow store/sqlstore PutAppStateSyncKey, Baileys keyStore 'app-state-sync-key'). The
 * app-state sync (syncd) decrypts and checks patches with them; this file only keeps them.
 *
 * The table is account-scoped and listed in store.c's tables[] (schema 3), so wipe, delete,
 * snapshot and restore cover it. A key shared again replaces the stored one unless the stored
 * one has a larger timestamp (whatsmeow's rule).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <string.h>

#include "core/util.h"
#include "store/store.h"
#include "store/store_int.h"
#include "wa/error.h"

enum { Q_KEY_PUT, Q_KEY_GET, Q_KEY_COUNT, Q_COUNT };

_Static_assert(WA__STORE_APPSTATE_BASE + Q_COUNT <= WA__STORE_STMTS,
               "appstate.c statement slots overflow");

static const char *const queries[Q_COUNT] = {
    [Q_KEY_PUT] = "INSERT INTO app_state_keys (account, key_id, key_data, fingerprint, timestamp)"
                  " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (account, key_id) DO UPDATE SET"
                  " key_data = excluded.key_data, fingerprint = excluded.fingerprint,"
                  " timestamp = excluded.timestamp"
                  " WHERE excluded.timestamp >= app_state_keys.timestamp",
    [Q_KEY_GET] = "SELECT key_data, fingerprint, timestamp FROM app_state_keys"
                  " WHERE account = ?1 AND key_id = ?2",
    [Q_KEY_COUNT] = "SELECT count(*) FROM app_state_keys WHERE account = ?1",
};

static sqlite3_stmt *stmt(wa_store *s, int q)
{
    return wa__store_stmt(s, WA__STORE_APPSTATE_BASE + q, queries[q]);
}

void wa_store_appstate_key_wipe(wa_store_appstate_key *k)
{
    if (k)
        wa_wipe(k, sizeof *k);
}

int wa_store_appstate_key_put(wa_store *s, int64_t id, const wa_store_appstate_key *k)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !k || k->id_len == 0 || k->id_len > WA_STORE_APPSTATE_ID_MAX || k->data_len == 0 ||
        k->data_len > WA_STORE_APPSTATE_DATA_MAX || k->fingerprint_len > WA_STORE_APPSTATE_FP_MAX)
        return WA_EINVAL;
    st = stmt(s, Q_KEY_PUT);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_blob(st, 2, k->id, (int)k->id_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, k->data, (int)k->data_len, SQLITE_STATIC);
    if (k->fingerprint_len)
        sqlite3_bind_blob(st, 4, k->fingerprint, (int)k->fingerprint_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_int64(st, 5, k->timestamp);
    rc = wa__store_run(s, st);
    wa__store_done(st);
    return rc;
}

int wa_store_appstate_key_get(wa_store *s, int64_t id, const uint8_t *key_id, size_t key_id_len,
                              wa_store_appstate_key *out)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !key_id || key_id_len == 0 || key_id_len > WA_STORE_APPSTATE_ID_MAX || !out)
        return WA_EINVAL;
    st = stmt(s, Q_KEY_GET);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_blob(st, 2, key_id, (int)key_id_len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const void *d = sqlite3_column_blob(st, 0);
        size_t dl = (size_t)sqlite3_column_bytes(st, 0);
        const void *f = sqlite3_column_blob(st, 1);
        size_t fl = (size_t)sqlite3_column_bytes(st, 1);
        if (!d || dl == 0 || dl > WA_STORE_APPSTATE_DATA_MAX || fl > WA_STORE_APPSTATE_FP_MAX) {
            rc = WA_ESTORE;
        } else {
            memset(out, 0, sizeof *out);
            memcpy(out->id, key_id, key_id_len);
            out->id_len = key_id_len;
            memcpy(out->data, d, dl);
            out->data_len = dl;
            if (f && fl)
                memcpy(out->fingerprint, f, fl);
            out->fingerprint_len = f ? fl : 0;
            out->timestamp = sqlite3_column_int64(st, 2);
            rc = 0;
        }
    } else if (rc == SQLITE_DONE) {
        rc = WA_ENOTFOUND;
    } else {
        rc = wa__store_fail(s, "app-state key get");
    }
    wa__store_done(st);
    return rc;
}

int wa_store_appstate_key_count(wa_store *s, int64_t id, size_t *n)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !n)
        return WA_EINVAL;
    st = stmt(s, Q_KEY_COUNT);
    if (!st)
        return WA_ESTORE;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *n = (size_t)sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        rc = wa__store_fail(s, "app-state key count");
    }
    wa__store_done(st);
    return rc;
}
