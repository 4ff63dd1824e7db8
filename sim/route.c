/*
 * route.c - message routing of the simulator: messages, receipts, presence and chat states
 * between devices, as the real server does it (PROTOCOL.md §6). The server never decrypts: it
 * copies each device's <enc> into a stanza of its own for that device.
 *
 * Messages (<message to id type [edit] [category]>, answered with <ack class='message' id
 * from=TO t/>, which Baileys reads as the server ack of the message to TO):
 *   - to a user (PN or LID): every <participants><to jid=DEVICE> gets
 *     <message from=SENDER_DEVICE id t type notify [recipient=TO]><enc../>[<device-identity/>]
 *     </message>; recipient only for the sender's own other devices. A PN-addressed message
 *     carries sender_lid (LID user) and a LID-addressed one sender_pn, which Baileys 7 and
 *     whatsmeow use to learn the PN<->LID mapping (they put the device back themselves).
 *   - a top-level <enc> that is not skmsg is a directed resend (the answer to a retry receipt):
 *     it goes to the one device TO names, after any <to> enc for that device.
 *   - to a group: group.c's members; every member device but the sender's gets
 *     <message from=GID participant=SENDER_DEVICE addressing_mode='pn' participant_lid ..> with
 *     its own <to> enc (the sender key distribution) BEFORE the top-level skmsg enc; a
 *     participant= attribute on the stanza directs it to that device only (resend).
 *   - category='peer' is for the account's own phone: acknowledged and dropped.
 *   What the virtual phone (device 0) is sent goes to phone.c, which answers as a phone does;
 *   offline devices get theirs from their queue at login (queue.c).
 * Receipts (<receipt id to [participant] [type] [recipient]>[<list><item id/>..</list>]) go to
 * the device that sent each message (a bounded map id -> sender, SIM_ROUTE_MAP_SIZE), from the
 * receipt sender's device (1:1) or from=GID participant=DEVICE (groups), t added; a receipt
 * naming messages of several devices is split. type='inactive' (sent by a client that is not
 * "available") is forwarded as a plain delivery receipt, as the sender's ticks show it; a retry
 * receipt goes to the one device that sent the message with its children intact; read-self and
 * played-self (readreceipts privacy "none") go to the reader's own other devices, not to the
 * sender (forward_self_receipt). Every receipt is acknowledged <ack class='receipt' id from=TO
 * [type]/>, and also acknowledges our delivery of the messages it names (queue.c).
 * Presence: <presence type='subscribe' to=USER> subscribes the device (answered with the current
 * presence); available/unavailable from any device of a phone goes to its online subscribers.
 * Chat states go to the online devices of the peer (or of the group's members).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "http/httpd.h"
#include "jid/jid.h"
#include "sim.h"
#include "util.h"
#include "wa/error.h"

#define ROUTE_MAX_TO 8192       /* <to> entries taken from one message */
#define ROUTE_ARENA  (1u << 20) /* per delivered copy (content is referenced, not copied) */

/* ---- state ---------------------------------------------------------------------------------- */

sim_route *sim_route_state(sim *s)
{
    size_t i;

    if (!s->route) {
        s->route = calloc(1, sizeof *s->route);
        if (!s->route) {
            wa_log_warn("sim", "out of memory for the routing state");
            return NULL;
        }
        for (i = 0; i < SIM_ROUTE_MAP_SIZE; i++) {
            s->route->buckets[i] = -1;
            s->route->map[i].next = -1;
        }
        for (i = 0; i < SIM_DEVSUB_BUCKETS; i++)
            s->route->devsub_buckets[i] = -1;
        for (i = 0; i < SIM_MAX_DEVSUBS; i++)
            s->route->devsubs[i].next = -1;
    }
    return s->route;
}

void sim_route_cleanup(sim *s)
{
    sim_route *r = s->route;

    if (!r)
        return;
    while (r->groups) {
        sim_group *g = r->groups;
        r->groups = g->next;
        free(g->members);
        free(g);
    }
    free(r);
    s->route = NULL;
}

static uint32_t hash_id(const char *id)
{
    uint32_t h = 2166136261u;

    while (*id)
        h = (h ^ (uint8_t)*id++) * 16777619u;
    return h % SIM_ROUTE_MAP_SIZE;
}

void sim_route_remember(sim *s, const char *id, const sim_device *sender, int lid)
{
    sim_route *r = sim_route_state(s);
    sim_route_entry *e;
    int32_t slot, *pp;
    uint32_t h;

    if (!r || !id || strlen(id) > SIM_MSG_ID_MAX)
        return;
    slot = (int32_t)r->map_next;
    r->map_next = (r->map_next + 1) % SIM_ROUTE_MAP_SIZE;
    e = &r->map[slot];
    if (e->phone) { /* the ring wrapped: unlink the oldest entry from its chain */
        for (pp = &r->buckets[hash_id(e->id)]; *pp != -1; pp = &r->map[*pp].next) {
            if (*pp == slot) {
                *pp = e->next;
                break;
            }
        }
    }
    snprintf(e->id, sizeof e->id, "%s", id);
    e->phone = sender->phone;
    e->device = sender->id;
    e->lid = lid;
    h = hash_id(e->id);
    e->next = r->buckets[h];
    r->buckets[h] = slot;
    sim_state_route_remember(s, (size_t)slot, e);
}

/* The sender of message id; hint (may be NULL) is the phone the receipt names. */
static const sim_route_entry *lookup(sim *s, const char *id, const sim_phone *hint)
{
    sim_route *r = s->route;
    int32_t i;

    if (!r || !id || strlen(id) > SIM_MSG_ID_MAX)
        return NULL;
    for (i = r->buckets[hash_id(id)]; i != -1; i = r->map[i].next) {
        const sim_route_entry *e = &r->map[i];
        if (strcmp(e->id, id) == 0 && (!hint || e->phone == hint))
            return e;
    }
    return NULL;
}

/* ---- node helpers -----------------------------------------------------------------------------
 */

/* A copy of src (attributes copied, byte content referenced: src must outlive the copy). */
static wa_node *copy_ref(wa_arena *a, wa_node *parent, const wa_node *src)
{
    wa_node *n = parent ? wa_node_new_child(a, parent, src->tag) : wa_node_new(a, src->tag);
    const uint8_t *p;
    size_t i, len;

    if (!n)
        return NULL;
    for (i = 0; i < src->nattrs; i++)
        if (wa_node_set_attr(a, n, src->attrs[i].key, src->attrs[i].value) != 0)
            return NULL;
    if (src->content == WA_NODE_LIST) {
        wa_node_set_list(n);
        WA_NODE_FOREACH(ch, src)
        {
            if (!copy_ref(a, n, ch))
                return NULL;
        }
    } else if (src->content == WA_NODE_BYTES && wa_node_content_bytes(src, &p, &len) == 0) {
        wa_node_set_bytes_ref(n, p, len);
    } else if (src->content == WA_NODE_STRING && wa_node_content_bytes(src, &p, &len) == 0) {
        if (wa_node_set_string_n(a, n, (const char *)p, len) != 0)
            return NULL;
    }
    return n;
}

static void send_ack(sim_conn *c, const char *cls, const char *id, const char *from,
                     const char *type, const char *participant, const char *error)
{
    wa_arena a;
    wa_node *n;
    char t[24];

    wa_arena_init(&a, 4096);
    sim_unix_str(t, sizeof t);
    n = sim_node(&a, "ack", "class", cls, "id", id ? id : "", "from", from, "type", type,
                 "participant", participant, "t", strcmp(cls, "message") == 0 ? t : NULL, "error",
                 error, NULL);
    if (n)
        sim_conn_send(c, n);
    wa_arena_cleanup(&a);
}

/* ---- messages ---------------------------------------------------------------------------------
 */

typedef struct msg_ctx {
    sim *s;
    sim_device *sender;
    const wa_node *n;
    const char *id, *type, *edit, *to;
    const wa_node *participants;
    const wa_node *devident;
    int has_top_enc; /* a top-level <enc> (skmsg in groups, pkmsg/msg in a directed resend) */
    char t[24];
} msg_ctx;

/* The common head of a delivered message. */
static wa_node *new_message(wa_arena *a, const msg_ctx *m, const char *from)
{
    return sim_node(a, "message", "from", from, "type", m->type ? m->type : "text", "id", m->id,
                    "t", m->t, "notify",
                    m->sender->push_name[0] ? m->sender->push_name : m->sender->phone->push_name,
                    "edit", m->edit, NULL);
}

/* Children: the device's own <to> encs first, then the top-level encs, then device-identity. */
static int add_content(wa_arena *a, wa_node *msg, const msg_ctx *m, const wa_node *to)
{
    int encs = 0;

    WA_NODE_FOREACH(e, to)
    {
        if (wa_node_is(e, "enc")) {
            if (!copy_ref(a, msg, e))
                return -1;
            encs++;
        }
    }
    WA_NODE_FOREACH(e, m->n)
    {
        if (wa_node_is(e, "enc")) {
            if (!copy_ref(a, msg, e))
                return -1;
            encs++;
        }
    }
    if (encs && m->devident && !copy_ref(a, msg, m->devident))
        return -1;
    return encs;
}

static void deliver_user_copy(msg_ctx *m, sim_device *d, const wa_node *to, int lid,
                              const char *recipient)
{
    wa_arena a;
    wa_node *msg;
    char from[SIM_JID_LEN], alt[SIM_JID_LEN];

    wa_arena_init(&a, ROUTE_ARENA);
    sim_device_jid(m->sender, lid, from, sizeof from);
    sim_user_jid(m->sender->phone, !lid, alt, sizeof alt);
    msg = new_message(&a, m, from);
    if (msg && recipient)
        wa_node_set_attr(&a, msg, "recipient", recipient);
    if (msg)
        wa_node_set_attr(&a, msg, lid ? "sender_pn" : "sender_lid", alt);
    if (msg && add_content(&a, msg, m, to) > 0) {
        sim_route_deliver(m->s, d, msg);
        m->s->stats.messages_routed++;
    }
    wa_arena_cleanup(&a);
}

/* 0, or the error code for the ack. */
static const char *route_user_message(msg_ctx *m, const wa_jid *tj)
{
    sim *s = m->s;
    sim_route *r = sim_route_state(s);
    sim_phone *peer;
    sim_device *d;
    int lid = wa_jid_is_lid(tj), count = 0, dlid;
    char recipient[WA_JID_STR_MAX];
    wa_jid u;
    uint64_t gen;

    if (!r)
        return "500";
    peer = sim_phone_by_jid(s, m->to, NULL);
    wa_jid_to_non_ad(tj, &u);
    if (wa_jid_format(&u, recipient, sizeof recipient) < 0)
        return "400";
    sim_route_remember(s, m->id, m->sender, lid);
    gen = ++r->mark_gen;
    if (m->has_top_enc) {
        /* directed resend: the one device TO names (device 0 when it names none) */
        d = sim_device_by_jid(s, m->to, &dlid);
        if (!d) {
            wa_log_info("sim", "message %s: resend to unknown device %s", m->id, m->to);
            return "404";
        }
        WA_NODE_FOREACH(to, m->participants)
        {
            if (wa_node_is(to, "to") && sim_device_by_jid(s, wa_node_attr(to, "jid"), NULL) == d) {
                d->route_mark = gen;
                d->route_to = to;
                break;
            }
        }
        deliver_user_copy(m, d, d->route_mark == gen ? d->route_to : NULL, lid,
                          d->phone == m->sender->phone ? wa_node_attr(m->n, "recipient") : NULL);
        return NULL;
    }
    if (!peer)
        wa_log_info("sim", "message %s to %s: no such user", m->id, m->to);
    WA_NODE_FOREACH(to, m->participants)
    {
        const char *jid = wa_node_attr(to, "jid");
        if (!wa_node_is(to, "to") || count++ >= ROUTE_MAX_TO)
            continue;
        d = sim_device_by_jid(s, jid, NULL);
        if (!d) {
            wa_log_info("sim", "message %s: no device %s", m->id, jid ? jid : "(none)");
            continue;
        }
        if (d == m->sender || d->route_mark == gen)
            continue;
        d->route_mark = gen;
        /* the sender's other devices learn the chat from recipient= */
        deliver_user_copy(m, d, to, lid,
                          d->phone == m->sender->phone && peer != m->sender->phone ? recipient
                                                                                   : NULL);
    }
    return NULL;
}

static void deliver_group_copy(msg_ctx *m, sim_group *g, sim_device *d, const wa_node *to)
{
    wa_arena a;
    wa_node *msg;
    char gid[64], part[SIM_JID_LEN], alt[SIM_JID_LEN];

    wa_arena_init(&a, ROUTE_ARENA);
    snprintf(gid, sizeof gid, "%s@g.us", g->id);
    sim_device_jid(m->sender, 0, part, sizeof part);
    sim_user_jid(m->sender->phone, 1, alt, sizeof alt);
    msg = new_message(&a, m, gid);
    if (msg && (wa_node_set_attr(&a, msg, "participant", part) != 0 ||
                wa_node_set_attr(&a, msg, "addressing_mode", "pn") != 0 ||
                wa_node_set_attr(&a, msg, "participant_lid", alt) != 0))
        msg = NULL;
    if (msg && add_content(&a, msg, m, to) > 0) {
        sim_route_deliver(m->s, d, msg);
        m->s->stats.messages_routed++;
    }
    wa_arena_cleanup(&a);
}

static const char *route_group_message(msg_ctx *m)
{
    sim *s = m->s;
    sim_route *r = sim_route_state(s);
    sim_group *g = sim_group_find(s, m->to);
    const char *directed = wa_node_attr(m->n, "participant");
    sim_device *target = NULL;
    int count = 0;
    uint64_t gen;
    size_t i;
    unsigned k;

    if (!r)
        return "500";
    if (!g)
        return "404";
    if (!sim_group_member_of(g, m->sender->phone))
        return "403";
    if (directed) {
        target = sim_device_by_jid(s, directed, NULL);
        if (!target || !sim_group_member_of(g, target->phone))
            return "404";
    }
    sim_route_remember(s, m->id, m->sender, 0);
    gen = ++r->mark_gen;
    WA_NODE_FOREACH(to, m->participants)
    {
        sim_device *d;
        if (!wa_node_is(to, "to") || count++ >= ROUTE_MAX_TO)
            continue;
        d = sim_device_by_jid(s, wa_node_attr(to, "jid"), NULL);
        if (d) {
            d->route_mark = gen;
            d->route_to = to;
        }
    }
    if (target) {
        deliver_group_copy(m, g, target, target->route_mark == gen ? target->route_to : NULL);
        return NULL;
    }
    for (i = 0; i < g->nmembers; i++) {
        sim_phone *p = g->members[i].phone;
        for (k = 0; k < SIM_MAX_DEVICES; k++) {
            sim_device *d = &p->devices[k];
            const wa_node *to = d->route_mark == gen ? d->route_to : NULL;
            if (!d->present || d == m->sender || (!to && !m->has_top_enc))
                continue;
            deliver_group_copy(m, g, d, to);
        }
    }
    return NULL;
}

void sim_route_message(sim_conn *c, const wa_node *n, wa_arena *a)
{
    msg_ctx m;
    wa_jid tj;
    const char *category = wa_node_attr(n, "category"), *err = NULL;

    (void)a;
    if (!c->device)
        return;
    memset(&m, 0, sizeof m);
    m.s = c->sim;
    m.sender = c->device;
    m.n = n;
    m.id = wa_node_attr(n, "id");
    m.to = wa_node_attr(n, "to");
    m.type = wa_node_attr(n, "type");
    m.edit = wa_node_attr(n, "edit");
    m.participants = wa_node_child(n, "participants");
    m.devident = wa_node_child(n, "device-identity");
    sim_unix_str(m.t, sizeof m.t);
    if (!m.id || !m.id[0] || strlen(m.id) > SIM_MSG_ID_MAX) {
        wa_log_warn("sim", "conn %llu: message without a usable id", (unsigned long long)c->id);
        send_ack(c, "message", m.id, m.to, NULL, NULL, "400");
        return;
    }
    if (!m.to || wa_jid_parse(m.to, &tj) != 0) {
        wa_log_warn("sim", "conn %llu: message %s: bad to", (unsigned long long)c->id, m.id);
        send_ack(c, "message", m.id, m.to, NULL, NULL, "400");
        return;
    }
    if (category && strcmp(category, "peer") == 0) {
        /* peer data operations for the account's own phone: nothing to route */
        send_ack(c, "message", m.id, m.to, NULL, NULL, NULL);
        return;
    }
    WA_NODE_FOREACH(e, n)
    {
        if (wa_node_is(e, "enc"))
            m.has_top_enc = 1;
    }
    if (wa_jid_is_group(&tj))
        err = route_group_message(&m);
    else if ((wa_jid_is_user(&tj) || wa_jid_is_lid(&tj)) && !tj.agent)
        err = route_user_message(&m, &tj);
    else
        wa_log_info("sim", "message %s to %s: not routed (unsupported destination)", m.id, m.to);
    if (err)
        wa_log_info("sim", "message %s to %s refused: %s", m.id, m.to, err);
    send_ack(c, "message", m.id, m.to, NULL, NULL, err);
}

/* ---- receipts ---------------------------------------------------------------------------------
 */

/* Forward a receipt to the device that sent the messages ids[0..nids) (lid: the form the
 * sender addressed its peer with), from the receipt sender's device or from the group. */
static void forward_receipt(sim_conn *c, const wa_node *n, sim_device *to, int lid,
                            const char *const *ids, size_t nids, const sim_group *g)
{
    sim *s = c->sim;
    const char *type = wa_node_attr(n, "type"), *t = wa_node_attr(n, "t");
    const char *recipient = wa_node_attr(n, "recipient");
    wa_arena a;
    wa_node *out, *list;
    char now[24], from[SIM_JID_LEN], me[SIM_JID_LEN];
    size_t i;

    if (type && strcmp(type, "inactive") == 0)
        type = NULL; /* delivered to a device that is not "available": a delivery all the same */
    sim_unix_str(now, sizeof now);
    wa_arena_init(&a, ROUTE_ARENA);
    sim_device_jid(c->device, g ? 0 : lid, me, sizeof me);
    if (g)
        snprintf(from, sizeof from, "%s@g.us", g->id);
    out = sim_node(&a, "receipt", "from", g ? from : me, "id", ids[0], "t", t ? t : now, "type",
                   type, "participant", g ? me : NULL, "recipient", recipient, NULL);
    if (out && type && strcmp(type, "retry") == 0) {
        /* <retry/>, <registration/>, <keys/>: the sender rebuilds the session from them */
        WA_NODE_FOREACH(ch, n)
        {
            if (!copy_ref(&a, out, ch)) {
                out = NULL;
                break;
            }
        }
    } else if (out && nids > 1) {
        list = sim_child(&a, out, "list", NULL);
        for (i = 1; i < nids && list; i++)
            sim_child(&a, list, "item", "id", ids[i], NULL);
    }
    if (out) {
        sim_route_deliver(s, to, out);
        s->stats.receipts_routed++;
    }
    wa_arena_cleanup(&a);
}

/* type='read-self' / 'played-self' (the reader's readreceipts privacy is "none"): the sender
 * learns nothing; the reader's own other companion devices get <receipt from=READER_DEVICE
 * recipient=CHAT id t type> (1:1) or <receipt from=GID participant=READER_DEVICE ..> (groups),
 * which is how a device learns that another device of its account read a chat. */
static void forward_self_receipt(sim_conn *c, const wa_node *n, const char *to, int lid,
                                 const char *const *ids, size_t nids, int group)
{
    sim *s = c->sim;
    sim_phone *p = c->device->phone;
    const char *t = wa_node_attr(n, "t");
    wa_arena a;
    wa_node *out, *list;
    char now[24], me[SIM_JID_LEN];
    size_t i;

    sim_unix_str(now, sizeof now);
    wa_arena_init(&a, 16384);
    sim_device_jid(c->device, lid, me, sizeof me);
    out = sim_node(&a, "receipt", "from", group ? to : me, "id", ids[0], "t", t ? t : now, "type",
                   wa_node_attr(n, "type"), "participant", group ? me : NULL, "recipient",
                   group ? NULL : to, NULL);
    if (out && nids > 1) {
        list = sim_child(&a, out, "list", NULL);
        for (i = 1; i < nids && list; i++)
            sim_child(&a, list, "item", "id", ids[i], NULL);
    }
    for (i = 1; out && i < SIM_MAX_DEVICES; i++) { /* not device 0: the virtual phone */
        sim_device *d = &p->devices[i];
        if (d->present && d != c->device) {
            sim_route_deliver(s, d, out);
            s->stats.receipts_routed++;
        }
    }
    wa_arena_cleanup(&a);
}

void sim_route_receipt(sim_conn *c, const wa_node *n, wa_arena *a)
{
    sim *s = c->sim;
    const char *id = wa_node_attr(n, "id"), *to = wa_node_attr(n, "to");
    const char *participant = wa_node_attr(n, "participant"), *type = wa_node_attr(n, "type");
    const char *ids[SIM_RECEIPT_MAX_ITEMS], *sub[SIM_RECEIPT_MAX_ITEMS];
    sim_device *dev[SIM_RECEIPT_MAX_ITEMS];
    int lids[SIM_RECEIPT_MAX_ITEMS];
    size_t nids = 0, nsub, i, j;
    sim_group *g = NULL;
    sim_phone *hint;
    const char *hint_jid;
    wa_jid tj, hj;
    int retry = type && strcmp(type, "retry") == 0;

    (void)a;
    if (!c->device)
        return;
    if (!id || !id[0] || !to || wa_jid_parse(to, &tj) != 0) {
        wa_log_warn("sim", "conn %llu: receipt without id/to", (unsigned long long)c->id);
        send_ack(c, "receipt", id, to, type, participant, "400");
        return;
    }
    ids[nids++] = id;
    if (!retry) {
        WA_NODE_FOREACH(list, n)
        {
            if (!wa_node_is(list, "list"))
                continue;
            WA_NODE_FOREACH(item, list)
            {
                const char *iid = wa_node_attr(item, "id");
                if (wa_node_is(item, "item") && iid && iid[0] && nids < SIM_RECEIPT_MAX_ITEMS)
                    ids[nids++] = iid;
            }
        }
    }
    /* a receipt acknowledges our delivery of the messages it names (Baileys 7 sends no ack) */
    for (i = 0; i < nids; i++)
        sim_queue_acked(c->device, "message", ids[i]);
    if (type && strlen(type) > 5 && strcmp(type + strlen(type) - 5, "-self") == 0) {
        forward_self_receipt(c, n, to, wa_jid_is_lid(&tj), ids, nids, wa_jid_is_group(&tj));
        send_ack(c, "receipt", id, to, type, participant, NULL);
        return;
    }
    if (wa_jid_is_group(&tj)) {
        g = sim_group_find(s, to);
        hint_jid = participant;
    } else {
        hint_jid = to;
    }
    hint = sim_phone_by_jid(s, hint_jid, NULL);
    for (i = 0; i < nids; i++) {
        const sim_route_entry *e = lookup(s, ids[i], hint);
        dev[i] = NULL;
        lids[i] = 0;
        if (e) {
            /* NULL when the sender was unlinked since (its id is not reused) */
            dev[i] = sim_phone_device(e->phone, e->device);
            lids[i] = e->lid;
        } else if (!e && hint_jid && wa_jid_parse(hint_jid, &hj) == 0 && hj.device) {
            /* not (or no longer) in the map: the receipt names the device itself */
            dev[i] = sim_device_by_jid(s, hint_jid, &lids[i]);
        }
        if (dev[i] == c->device)
            dev[i] = NULL; /* (device 0, the virtual phone, records them: phone.c) */
    }
    /* one receipt per sending device, its message ids in the original order */
    for (i = 0; i < nids; i++) {
        if (!dev[i])
            continue;
        nsub = 0;
        for (j = i; j < nids; j++) {
            if (dev[j] == dev[i] && j != i) {
                sub[nsub++] = ids[j];
                dev[j] = NULL;
            } else if (j == i) {
                sub[nsub++] = ids[j];
            }
        }
        forward_receipt(c, n, dev[i], lids[i], sub, nsub, g);
        dev[i] = NULL;
    }
    send_ack(c, "receipt", id, to, type, participant, NULL);
}

/* ---- presence and chat states ------------------------------------------------------------------
 */

static int phone_available(const sim_phone *p)
{
    unsigned i;

    for (i = 1; i < SIM_MAX_DEVICES; i++)
        if (p->devices[i].present && p->devices[i].conn && p->devices[i].available)
            return 1;
    return 0;
}

static uint64_t phone_last_seen(const sim_phone *p)
{
    uint64_t last = 0;
    unsigned i;

    for (i = 1; i < SIM_MAX_DEVICES; i++)
        if (p->devices[i].present && p->devices[i].last_seen > last)
            last = p->devices[i].last_seen;
    return last;
}

static void send_if_online(sim_device *d, const wa_node *n)
{
    if (d->present && d->id != 0 && d->conn && d->conn->state == SIM_CONN_ONLINE &&
        d->conn->route_active)
        sim_conn_send(d->conn, n);
}

static void send_presence(sim_device *to, sim_phone *of, int lid)
{
    wa_arena a;
    wa_node *n;
    char from[SIM_JID_LEN], last[24];
    int avail = phone_available(of);

    wa_arena_init(&a, 4096);
    sim_user_jid(of, lid, from, sizeof from);
    snprintf(last, sizeof last, "%llu", (unsigned long long)phone_last_seen(of));
    n = sim_node(&a, "presence", "from", from, "type", avail ? "available" : "unavailable", "last",
                 !avail && phone_last_seen(of) ? last : NULL, NULL);
    if (n)
        send_if_online(to, n);
    wa_arena_cleanup(&a);
}

void sim_route_presence(sim_conn *c, const wa_node *n, wa_arena *a)
{
    sim *s = c->sim;
    sim_route *r = sim_route_state(s);
    sim_device *d = c->device;
    const char *type = wa_node_attr(n, "type"), *to = wa_node_attr(n, "to");
    size_t i;

    (void)a;
    if (!d || !r || !type)
        return;
    if (strcmp(type, "available") == 0 || strcmp(type, "unavailable") == 0) {
        sim_phone *p = d->phone;
        int before = phone_available(p), after;
        d->available = type[0] == 'a';
        d->last_seen = (uint64_t)time(NULL);
        after = phone_available(p);
        if (before == after)
            return;
        for (i = 0; i < SIM_MAX_SUBS; i++) {
            sim_sub *sub = &r->subs[i];
            sim_device *sd = sub->subscriber && sub->target == p
                                 ? sim_phone_device(sub->subscriber, sub->device)
                                 : NULL;
            if (sd) /* (NULL too when the subscriber was unlinked) */
                send_presence(sd, p, sub->lid);
        }
    } else if (strcmp(type, "subscribe") == 0 || strcmp(type, "unsubscribe") == 0) {
        int lid = 0;
        sim_phone *target = sim_phone_by_jid(s, to, &lid);
        sim_sub *slot = NULL;
        if (!target)
            return;
        for (i = 0; i < SIM_MAX_SUBS; i++) {
            sim_sub *sub = &r->subs[i];
            if (sub->subscriber == d->phone && sub->device == d->id && sub->target == target)
                slot = sub;
        }
        if (type[0] == 'u') {
            if (slot)
                memset(slot, 0, sizeof *slot);
            return;
        }
        if (!slot) {
            slot = &r->subs[r->subs_next];
            r->subs_next = (r->subs_next + 1) % SIM_MAX_SUBS;
        }
        slot->subscriber = d->phone;
        slot->device = d->id;
        slot->lid = lid;
        slot->target = target;
        send_presence(d, target, lid);
    }
}

void sim_route_chatstate(sim_conn *c, const wa_node *n, wa_arena *a)
{
    sim *s = c->sim;
    sim_device *d = c->device;
    const char *to = wa_node_attr(n, "to");
    const wa_node *state = wa_node_children(n);
    wa_node *out;
    wa_jid tj;
    char from[SIM_JID_LEN], part[SIM_JID_LEN];
    size_t i;
    unsigned k;

    if (!d || !to || !state || wa_jid_parse(to, &tj) != 0)
        return;
    if (wa_jid_is_group(&tj)) {
        sim_group *g = sim_group_find(s, to);
        if (!g || !sim_group_member_of(g, d->phone))
            return;
        snprintf(from, sizeof from, "%s@g.us", g->id);
        sim_user_jid(d->phone, 0, part, sizeof part);
        out = sim_node(a, "chatstate", "from", from, "participant", part, NULL);
        if (!out || !copy_ref(a, out, state))
            return;
        for (i = 0; i < g->nmembers; i++)
            for (k = 1; k < SIM_MAX_DEVICES; k++)
                if (&g->members[i].phone->devices[k] != d)
                    send_if_online(&g->members[i].phone->devices[k], out);
    } else {
        int lid = 0;
        sim_phone *p = sim_phone_by_jid(s, to, &lid);
        if (!p)
            return;
        sim_user_jid(d->phone, lid, from, sizeof from);
        out = sim_node(a, "chatstate", "from", from, NULL);
        if (!out || !copy_ref(a, out, state))
            return;
        for (k = 1; k < SIM_MAX_DEVICES; k++)
            send_if_online(&p->devices[k], out);
    }
}
