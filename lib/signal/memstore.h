/*
 * memstore.h - an in-memory wa_signal_store: bounded hash maps of records, for tests, for
 * wasim's virtual phones and as the reference behaviour of the storage interface (the SQLite
 * store of the client must behave the same way).
 *
 * Every table holds at most `max_entries` records; a store beyond that fails with WA_ELIMIT
 * (nothing is evicted: losing a session or a prekey silently would be worse). Values are wiped
 * when replaced or freed. Not thread-safe (one wa_signal, one thread).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_SIGNAL_MEMSTORE_H
#define WA_SIGNAL_MEMSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "signal/signal.h"

#define WA_SIGNAL_MEMSTORE_DEFAULT_MAX 65536

enum wa_signal_mem_table {
    WA_SIGNAL_MEM_IDENTITIES = 0,
    WA_SIGNAL_MEM_SESSIONS,
    WA_SIGNAL_MEM_PREKEYS,
    WA_SIGNAL_MEM_SIGNED_PREKEYS,
    WA_SIGNAL_MEM_SENDER_KEYS,
    WA_SIGNAL_MEM_NTABLES
};

typedef struct wa_signal_memstore wa_signal_memstore;

/* A store holding our identity (copied) and registration id. max_entries per table, 0 for
 * WA_SIGNAL_MEMSTORE_DEFAULT_MAX. 0, WA_EINVAL, WA_ENOMEM, WA_EIO. */
int wa_signal_memstore_new(wa_signal_memstore **out, const wa_signal_keypair *identity,
                           uint32_t reg_id, size_t max_entries);
/* Frees everything (wiping it). NULL is fine. */
void wa_signal_memstore_free(wa_signal_memstore *m);

/* Fill every callback of *store (including the optional batch load) with this store's;
 * store->user_data = m. */
void wa_signal_memstore_bind(wa_signal_memstore *m, wa_signal_store *store);

/* Number of records in a table (enum wa_signal_mem_table). */
size_t wa_signal_memstore_count(const wa_signal_memstore *m, int table);

/* Test hook: after `n` more successful callbacks, every callback fails with `code` (a
 * negative WA_E*) until called again with n < 0. */
void wa_signal_memstore_fail_after(wa_signal_memstore *m, long n, int code);

#endif
