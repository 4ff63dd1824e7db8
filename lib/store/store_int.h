/*
 * store_int.h - internals shared by the store's source files: the connection struct, the
 * prepared-statement cache and the transaction helpers.
 *
 * Files: store.c (connection, accounts, credentials, prekeys, PN<->LID, wipe, snapshot and
 * restore), e2e.c (end-to-end state: identities, sessions, sender keys and their distribution,
 * message ids, recent sends), appstate.c (app-state sync keys), retry.c (pending retries).
 *
 * Transactions nest: the outermost level is BEGIN IMMEDIATE .. COMMIT, inner levels are
 * SAVEPOINTs, so a function that writes several rows in its own transaction can also run inside
 * a caller's transaction (the client decrypts a message, stores the new session and the message
 * id in one commit).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_STORE_STORE_INT_H
#define WA_STORE_STORE_INT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Prepared statement slots: store.c uses [0, WA__STORE_E2E_BASE), e2e.c
 * [WA__STORE_E2E_BASE, WA__STORE_APPSTATE_BASE), appstate.c
 * [WA__STORE_APPSTATE_BASE, WA__STORE_RETRY_BASE), retry.c the rest. */
#define WA__STORE_E2E_BASE      32
#define WA__STORE_APPSTATE_BASE 64
#define WA__STORE_RETRY_BASE    67
#define WA__STORE_STMTS         72

struct wa_store {
    sqlite3 *db;
    sqlite3_stmt *stmt[WA__STORE_STMTS];
    int tx_depth; /* open transaction levels (0: none) */
};

/* Log the SQLite error of `what` and return WA_ESTORE. */
int wa__store_fail(wa_store *s, const char *what);
/* Run SQL without results. 0 or WA_ESTORE (logged). */
int wa__store_exec(wa_store *s, const char *sql);
/* The statement in `slot`, prepared from sql on first use; NULL (logged) on failure. */
sqlite3_stmt *wa__store_stmt(wa_store *s, int slot, const char *sql);
/* Reset a statement and clear its bindings (NULL allowed). */
void wa__store_done(sqlite3_stmt *st);
/* Step a statement expected to finish without rows: 0, WA_EEXIST (constraint), WA_ESTORE. */
int wa__store_run(wa_store *s, sqlite3_stmt *st);
/* Open a transaction level (durable: fsync at the outermost commit). 0 or WA_ESTORE. */
int wa__store_begin(wa_store *s, int durable);
/* Close the level opened by wa__store_begin: commit when rc == 0, else roll it back. Returns
 * the final result (rc, or WA_ESTORE when the commit failed). */
int wa__store_finish(wa_store *s, int rc, int durable);
/* Copy column i (a blob of exactly len bytes) into dst. 0 or WA_ESTORE. */
int wa__store_col_blob(sqlite3_stmt *st, int i, uint8_t *dst, size_t len);

#endif
