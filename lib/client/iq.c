/*
 * iq.c - ids and deadlines of the iqs a connection has in flight. Ids look like Baileys'
 * (`<n>.<n>-<seq>`, two random 16-bit numbers then a counter), so a trace of libwa reads like
 * one of WhatsApp Web. A small table: a client has a handful of iqs in flight at most; it grows
 * on demand (up to WA__MAX_PENDING_IQS) and is freed when empty, so an idle client holds none
 * (it was a fixed 2.7 KiB inside every client).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "client/client_int.h"
#include "core/alloc.h"
#include "core/util.h"
#include "wa/error.h"

void wa__iq_init(wa__iq_table *t)
{
    uint8_t r[4] = {0};

    memset(t, 0, sizeof *t); /* (a table in use is cleared first: wa__iq_clear) */
    wa_random(r, sizeof r);
    snprintf(t->prefix, sizeof t->prefix, "%u.%u-", (unsigned)wa_load_be16(r),
             (unsigned)wa_load_be16(r + 2));
    t->seq = 1;
}

void wa__iq_clear(wa__iq_table *t)
{
    wa_free(t->pending);
    t->pending = NULL;
    t->cap = 0;
    t->n = 0;
}

void wa__iq_make_id(wa__iq_table *t, char *id)
{
    snprintf(id, WA__IQ_ID_MAX, "%s%u", t->prefix, (unsigned)t->seq++);
}

int wa__iq_track(wa__iq_table *t, const char *id, int kind, uint64_t deadline, uint32_t arg)
{
    wa__iq *q;

    if (t->n >= WA__MAX_PENDING_IQS || strlen(id) >= WA__IQ_ID_MAX)
        return WA_ELIMIT;
    if (t->n == t->cap) {
        unsigned cap = t->cap ? t->cap * 2 : 4;
        if (cap > WA__MAX_PENDING_IQS)
            cap = WA__MAX_PENDING_IQS;
        q = wa_realloc(t->pending, cap * sizeof *q);
        if (!q)
            return WA_ENOMEM;
        t->pending = q;
        t->cap = cap;
    }
    q = &t->pending[t->n++];
    snprintf(q->id, sizeof q->id, "%s", id);
    q->kind = kind;
    q->deadline = deadline;
    q->arg = arg;
    return 0;
}

static void remove_at(wa__iq_table *t, unsigned i, wa__iq *out)
{
    *out = t->pending[i];
    t->pending[i] = t->pending[--t->n];
    if (t->n == 0)
        wa__iq_clear(t);
}

int wa__iq_take(wa__iq_table *t, const char *id, wa__iq *out)
{
    unsigned i;

    if (!id)
        return WA_ENOTFOUND;
    for (i = 0; i < t->n; i++) {
        if (strcmp(t->pending[i].id, id) == 0) {
            remove_at(t, i, out);
            return 0;
        }
    }
    return WA_ENOTFOUND;
}

uint64_t wa__iq_next_deadline(const wa__iq_table *t)
{
    uint64_t d = UINT64_MAX;
    unsigned i;

    for (i = 0; i < t->n; i++)
        if (t->pending[i].deadline < d)
            d = t->pending[i].deadline;
    return d;
}

int wa__iq_take_expired(wa__iq_table *t, uint64_t now, wa__iq *out)
{
    unsigned i;

    for (i = 0; i < t->n; i++) {
        if (t->pending[i].deadline <= now) {
            remove_at(t, i, out);
            return 0;
        }
    }
    return WA_ENOTFOUND;
}
