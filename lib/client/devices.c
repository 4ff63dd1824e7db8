/*
 * devices.c - user sync (PROTOCOL.md §6 step 1): the device lists a send needs, kept in a
 * bounded cache, and the contact query behind wa_client_check_phones.
 *
 * Device query, as Baileys 7 writes it (lib/Socket/messages-send.js getUSyncDevices,
 * lib/WAUSync): <iq to='@s.whatsapp.net' type='get' xmlns='usync' id><usync context='message'
 * mode='query' sid last='true' index='0'><query><devices version='2'/><lid/></query><list>
 * <user jid='USER'/>..</list></usync></iq>. The answer lists <user jid><devices><device-list>
 * <device id [key-index]/>..</device-list></devices>[<lid val/>]</user>. Device 0 (the phone)
 * always counts; other devices count only with a key-index (as Baileys and whatsmeow: a
 * companion without one is not signed by the account). A <lid val/> teaches the user's LID.
 *
 * Cache: at most WA__DEVCACHE_MAX users, each list valid WA__DEVCACHE_TTL_MS (Baileys' 5
 * minutes), the oldest entry evicted when full. A <notification type='devices'> from a user
 * forgets its list (both its PN and LID forms); the whole cache goes with the connection, since
 * notifications missed while offline would leave it stale.
 *
 * Contact query (Baileys onWhatsApp): <usync context='interactive' mode='query'>
 * <query><contact/><lid/></query><list><user><contact>+NUMBER</contact></user>..</list> ->
 * <user jid='NUMBER@s.whatsapp.net'><contact type='in'|'out'/>[<lid val/>]</user>.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/util.h"
#include "wa/error.h"

#define LOG "client"

typedef struct devlist {
    char user[WA_JID_STR_MAX]; /* non-AD user JID */
    uint64_t fetched;          /* loop ms */
    uint16_t n;
    uint16_t ids[WA__DEVICES_MAX];
} devlist;

struct wa__devcache {
    devlist *e[WA__DEVCACHE_MAX];
};

struct wa__check {
    uint32_t seq;
    wa_client_check_cb cb;
    void *user_data;
    size_t n;
    char (*phones)[WA__PHONE_MAX + 1];
};

/* ---- cache ---------------------------------------------------------------------------------- */

static devlist *find(wa_client *c, const char *user)
{
    size_t i;

    if (!c->devs)
        return NULL;
    for (i = 0; i < WA__DEVCACHE_MAX; i++)
        if (c->devs->e[i] && !strcmp(c->devs->e[i]->user, user))
            return c->devs->e[i];
    return NULL;
}

static devlist *slot_for(wa_client *c, const char *user)
{
    devlist *d = find(c, user), **victim = NULL;
    size_t i;

    if (d)
        return d;
    if (!c->devs && !(c->devs = wa_calloc(1, sizeof *c->devs)))
        return NULL;
    for (i = 0; i < WA__DEVCACHE_MAX; i++) {
        devlist **e = &c->devs->e[i];
        if (!*e) {
            victim = e;
            break;
        }
        if (!victim || (*e)->fetched < (*victim)->fetched)
            victim = e;
    }
    if (!*victim && !(*victim = wa_calloc(1, sizeof **victim)))
        return NULL;
    d = *victim;
    memset(d, 0, sizeof *d);
    snprintf(d->user, sizeof d->user, "%s", user);
    return d;
}

int wa__devices_get(wa_client *c, const wa_jid *user, uint16_t *ids)
{
    char s[WA_JID_STR_MAX];
    devlist *d;

    if (wa_jid_format(user, s, sizeof s) < 0 || !(d = find(c, s)))
        return -1;
    if (wa__client_now(c) - d->fetched > WA__DEVCACHE_TTL_MS)
        return -1;
    memcpy(ids, d->ids, d->n * sizeof *ids);
    return d->n;
}

static void forget_one(wa_client *c, const wa_jid *user)
{
    char s[WA_JID_STR_MAX];
    size_t i;

    if (!c->devs || wa_jid_format(user, s, sizeof s) < 0)
        return;
    for (i = 0; i < WA__DEVCACHE_MAX; i++) {
        if (c->devs->e[i] && !strcmp(c->devs->e[i]->user, s)) {
            wa_free(c->devs->e[i]);
            c->devs->e[i] = NULL;
        }
    }
}

void wa__devices_forget(wa_client *c, const wa_jid *user)
{
    wa_jid u, alt;

    wa_jid_to_non_ad(user, &u);
    forget_one(c, &u);
    if (wa__e2e_alt(c, &u, &alt) == 0)
        forget_one(c, &alt);
}

void wa__devices_clear(wa_client *c)
{
    size_t i;

    if (!c->devs)
        return;
    for (i = 0; i < WA__DEVCACHE_MAX; i++)
        wa_free(c->devs->e[i]);
    wa_free(c->devs);
    c->devs = NULL;
}

/* ---- usync ---------------------------------------------------------------------------------- */

static wa_node *usync_iq(wa_client *c, wa_arena *a, const char *id, const char *context,
                         wa_node **query, wa_node **list)
{
    wa_node *iq = wa_node_new(a, "iq"), *us;
    char sid[WA__IQ_ID_MAX];

    wa__iq_make_id(&c->iqs, sid);
    if (!iq || wa_node_set_attr(a, iq, "to", WA__SERVER_JID) ||
        wa_node_set_attr(a, iq, "type", "get") || wa_node_set_attr(a, iq, "xmlns", "usync") ||
        wa_node_set_attr(a, iq, "id", id))
        return NULL;
    us = wa_node_new_child(a, iq, "usync");
    if (!us || wa_node_set_attr(a, us, "context", context) ||
        wa_node_set_attr(a, us, "mode", "query") || wa_node_set_attr(a, us, "sid", sid) ||
        wa_node_set_attr(a, us, "last", "true") || wa_node_set_attr(a, us, "index", "0"))
        return NULL;
    *query = wa_node_new_child(a, us, "query");
    *list = wa_node_new_child(a, us, "list");
    return *query && *list ? iq : NULL;
}

wa_node *wa__devices_query(wa_client *c, wa_arena *a, const char *id, const wa_jid *users, size_t n)
{
    wa_node *iq, *query, *list, *d;
    size_t i;

    iq = usync_iq(c, a, id, "message", &query, &list);
    if (!iq || !(d = wa_node_new_child(a, query, "devices")) ||
        wa_node_set_attr(a, d, "version", "2") || !wa_node_new_child(a, query, "lid"))
        return NULL;
    for (i = 0; i < n; i++) {
        wa_node *u = wa_node_new_child(a, list, "user");
        if (!u || wa_node_set_attr_jid(a, u, "jid", &users[i]))
            return NULL;
    }
    return iq;
}

/* Learn the PN<->LID pair a usync <user jid> with <lid val/> gives. */
static void learn_lid(wa_client *c, const wa_jid *user, const wa_node *u)
{
    wa_jid lid;

    if (wa_node_attr_jid(wa_node_child(u, "lid"), "val", &lid) == 0 && wa_jid_is_lid(&lid) &&
        wa_jid_is_user(user) && lid.user[0])
        wa__e2e_learn(c, user->user, lid.user);
}

int wa__devices_take(wa_client *c, const wa_node *iq)
{
    const wa_node *list = wa_node_child(wa_node_child(iq, "usync"), "list");
    const char *type = wa_node_attr(iq, "type");

    if (!type || strcmp(type, "result") != 0 || !list)
        return WA_EPROTO;
    WA_NODE_FOREACH(u, list)
    {
        const wa_node *dl = wa_node_child(wa_node_child(u, "devices"), "device-list");
        char s[WA_JID_STR_MAX];
        wa_jid j;
        devlist *d;

        if (!wa_node_is(u, "user") || wa_node_attr_jid(u, "jid", &j) != 0)
            continue;
        wa_jid_to_non_ad(&j, &j);
        learn_lid(c, &j, u);
        if (!dl || wa_jid_format(&j, s, sizeof s) < 0 || !(d = slot_for(c, s)))
            continue;
        d->n = 0;
        d->fetched = wa__client_now(c);
        WA_NODE_FOREACH(dev, dl)
        {
            uint64_t id;
            size_t k;
            int dup = 0;
            if (!wa_node_is(dev, "device") || wa_node_attr_u64(dev, "id", &id) != 0 ||
                id > UINT16_MAX)
                continue;
            if (id != 0 && !wa_node_attr(dev, "key-index"))
                continue; /* a companion without a key index: not signed, ignored */
            for (k = 0; k < d->n; k++)
                dup |= d->ids[k] == id;
            if (!dup && d->n < WA__DEVICES_MAX)
                d->ids[d->n++] = (uint16_t)id;
        }
    }
    return 0;
}

void wa__devices_notification(wa_client *c, const wa_node *n)
{
    wa_jid from;

    if (wa_node_attr_jid(n, "from", &from) != 0)
        return;
    wa_log_debug(LOG, "[%s] device list of %s changed", c->account_name, from.user);
    wa__devices_forget(c, &from);
}

/* ---- contact queries ------------------------------------------------------------------------ */

static void check_free(wa__check *q)
{
    if (q) {
        wa_free(q->phones);
        wa_free(q);
    }
}

/* Finish query i: results (or err) to its callback. */
static void check_done(wa_client *c, size_t i, int err, const wa_node *iq)
{
    wa__check *q = c->checks[i];
    wa_client_contact *res = NULL;
    char(*jids)[WA_JID_STR_MAX] = NULL, (*lids)[WA_JID_STR_MAX] = NULL;
    const wa_node *list;
    size_t k;

    c->checks[i] = NULL;
    if (err == 0) {
        res = wa_calloc(q->n, sizeof *res);
        jids = wa_calloc(q->n, sizeof *jids);
        lids = wa_calloc(q->n, sizeof *lids);
        if (!res || !jids || !lids)
            err = WA_ENOMEM;
    }
    if (err == 0) {
        list = wa_node_child(wa_node_child(iq, "usync"), "list");
        for (k = 0; k < q->n; k++) {
            res[k].phone = q->phones[k];
            snprintf(jids[k], sizeof jids[k], "%s@%s", q->phones[k], WA_JID_SERVER_USER);
            res[k].jid = jids[k];
            res[k].lid = "";
        }
        WA_NODE_FOREACH(u, list)
        {
            const char *type = wa_node_attr(wa_node_child(u, "contact"), "type");
            wa_jid j, lid;
            if (!wa_node_is(u, "user") || wa_node_attr_jid(u, "jid", &j) != 0)
                continue;
            learn_lid(c, &j, u);
            for (k = 0; k < q->n; k++) {
                if (strcmp(q->phones[k], j.user) != 0)
                    continue;
                res[k].exists = type && !strcmp(type, "in");
                if (wa_node_attr_jid(wa_node_child(u, "lid"), "val", &lid) == 0 &&
                    wa_jid_format(&lid, lids[k], sizeof lids[k]) > 0)
                    res[k].lid = lids[k];
            }
        }
    }
    if (q->cb && !c->freeing)
        q->cb(c, err, err ? NULL : res, err ? 0 : q->n, q->user_data);
    wa_free(res);
    wa_free(jids);
    wa_free(lids);
    check_free(q);
}

void wa__check_answer(wa_client *c, uint32_t seq, const wa_node *iq)
{
    const char *type = wa_node_attr(iq, "type");
    size_t i;

    for (i = 0; i < WA__MAX_CHECKS; i++) {
        if (c->checks[i] && c->checks[i]->seq == seq) {
            check_done(c, i, type && !strcmp(type, "result") ? 0 : WA_EPROTO, iq);
            return;
        }
    }
}

void wa__check_fail_all(wa_client *c, int err)
{
    /* no early return when a callback stops or frees the client: every entry must go (the
     * callbacks are not called once the client is being freed) */
    size_t i;

    for (i = 0; i < WA__MAX_CHECKS; i++) {
        if (c->checks[i]) {
            check_done(c, i, err, NULL);
        }
    }
}

int wa_client_check_phones(wa_client *c, const char *const *phones, size_t n, wa_client_check_cb cb,
                           void *user_data)
{
    wa__check *q = NULL;
    wa_node *iq, *query, *list;
    wa_arena a;
    char id[WA__IQ_ID_MAX];
    size_t i, k, slot = WA__MAX_CHECKS;
    int rc = 0;

    if (!c || !phones || n == 0)
        return WA_EINVAL;
    if (n > WA_CLIENT_CHECK_MAX)
        return WA_ELIMIT;
    if (!wa_client_is_connected(c))
        return WA_ESTATE;
    for (i = 0; i < WA__MAX_CHECKS && slot == WA__MAX_CHECKS; i++)
        if (!c->checks[i])
            slot = i;
    if (slot == WA__MAX_CHECKS)
        return WA_ELIMIT;
    q = wa_calloc(1, sizeof *q);
    if (q)
        q->phones = wa_calloc(n, sizeof *q->phones);
    if (!q || !q->phones) {
        check_free(q);
        return WA_ENOMEM;
    }
    for (i = 0; i < n && rc == 0; i++) {
        const char *p = phones[i];
        size_t len = 0;
        if (!p)
            rc = WA_EINVAL;
        for (; rc == 0 && *p; p++) {
            if (*p >= '0' && *p <= '9') {
                if (len >= WA__PHONE_MAX)
                    rc = WA_EINVAL;
                else
                    q->phones[i][len++] = *p;
            } else if (*p != '+' && *p != ' ' && *p != '-') {
                rc = WA_EINVAL;
            }
        }
        if (rc == 0 && len < 5)
            rc = WA_EINVAL;
    }
    if (rc) {
        check_free(q);
        return rc;
    }
    q->n = n;
    q->cb = cb;
    q->user_data = user_data;
    q->seq = ++c->job_seq;
    wa_arena_init(&a, 64 * 1024 + n * 256);
    wa__iq_make_id(&c->iqs, id);
    iq = usync_iq(c, &a, id, "interactive", &query, &list);
    if (!iq || !wa_node_new_child(&a, query, "contact") || !wa_node_new_child(&a, query, "lid"))
        rc = WA_ENOMEM;
    for (k = 0; rc == 0 && k < n; k++) {
        char plus[WA__PHONE_MAX + 2];
        wa_node *u = wa_node_new_child(&a, list, "user");
        wa_node *ct = u ? wa_node_new_child(&a, u, "contact") : NULL;
        snprintf(plus, sizeof plus, "+%s", q->phones[k]);
        if (!ct || wa_node_set_string(&a, ct, plus))
            rc = WA_ENOMEM;
    }
    if (rc == 0)
        rc = wa__client_send_iq(c, iq, id, WA__IQ_CONTACT, q->seq);
    wa_arena_cleanup(&a);
    if (rc) {
        check_free(q);
        return rc;
    }
    c->checks[slot] = q;
    return 0;
}
