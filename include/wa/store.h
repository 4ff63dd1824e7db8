/*
 * wa/store.h - libwa's persistent state: one SQLite database holding any number of WhatsApp
 * accounts (credentials, prekeys, the PN<->LID map, Signal identities, sessions and sender keys,
 * processed message ids and recent sends). Why one shared file: see the top of lib/store/store.h.
 *
 * Ownership and threading: a wa_store is one SQLite connection; use it from one thread (the
 * thread of the uv_loop whose clients use it). Several loop threads open one wa_store each on
 * the same file (WAL lets them read concurrently; writes take turns). Every call is
 * synchronous and short (a few small rows); durable commits (pairing, logout) fsync.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_STORE_H
#define WA_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct wa_store wa_store;

/* Longest account name (the caller's handle for an account, e.g. "default" or a session id). */
#define WA_STORE_ACCOUNT_NAME_MAX 128

typedef struct wa_store_options {
    /* SQLite page cache of this connection, shared by all its accounts, in KiB; 0 = default
     * (WA_STORE_DEFAULT_CACHE_KIB in lib/store/store.h). */
    unsigned cache_kib;
} wa_store_options;

/* Open (creating if needed, mode 0600) the database at `path`. opts may be NULL.
 * 0 and *out; WA_EINVAL (NULL/empty path), WA_ESTORE (cannot open, not a database, newer
 * schema), WA_ENOMEM. Close with wa_store_close. */
int wa_store_open(const char *path, const wa_store_options *opts, wa_store **out);
/* Close the connection (NULL allowed). No account may be in use by a client any more. */
void wa_store_close(wa_store *s);

/* The id of account `name` (1..WA_STORE_ACCOUNT_NAME_MAX bytes, no NUL). With create != 0 a
 * missing account is created (empty: no credentials yet). 0 and *id; WA_ENOTFOUND (missing,
 * create == 0), WA_EINVAL (bad name), WA_ESTORE. */
int wa_store_account(wa_store *s, const char *name, int create, int64_t *id);
/* Call cb(id, name, user_data) for every account, in id order; a non-zero return from cb stops
 * the walk and is returned. 0 or WA_ESTORE. */
int wa_store_accounts(wa_store *s, int (*cb)(int64_t id, const char *name, void *user_data),
                      void *user_data);
/* 1 if the account has credentials from a completed pairing (it can log in), 0 if not (or on
 * error). */
int wa_store_account_paired(wa_store *s, int64_t id);
/* Delete everything of the account except its name (logout: the credentials are gone, a new
 * pairing starts from scratch). Durable (fsync) before it returns. 0 or WA_ESTORE. */
int wa_store_account_wipe(wa_store *s, int64_t id);
/* Delete the account and all its rows. Durable. 0, WA_ENOTFOUND or WA_ESTORE. */
int wa_store_account_delete(wa_store *s, int64_t id);

/* Write a consistent copy of one account into a new SQLite file at `path` (created with mode
 * 0600; it must not exist): the unit of per-account backups. 0, WA_EEXIST, WA_ENOTFOUND,
 * WA_ESTORE. */
int wa_store_snapshot(wa_store *s, int64_t id, const char *path);
/* Import the account of a snapshot file under a new `name`. 0 and *id; WA_EEXIST (the name
 * is taken), WA_EINVAL (not a snapshot), WA_ESTORE. */
int wa_store_restore(wa_store *s, const char *path, const char *name, int64_t *id);

#endif
