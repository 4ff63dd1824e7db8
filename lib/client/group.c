/*
 * group.c - groups (PROTOCOL.md §6 Groups; Baileys 7 lib/Socket/groups.js, whatsmeow group.go):
 * the application's calls (create, metadata, participants), the member lists a group send needs
 * (a small cache), w:gp2 notifications, and when our sender key must change.
 *
 *   create        <iq type='set' xmlns='w:g2' to='@g.us' id><create subject key>
 *                 <participant jid/>..</create></iq>
 *   metadata      <iq type='get' xmlns='w:g2' to=GID id><query request='interactive'/></iq>
 *   participants  <iq type='set' xmlns='w:g2' to=GID id><add|remove|promote|demote>
 *                 <participant jid/>..</..></iq> -> <add><participant jid [error]/>..</add>
 * Answers carry <group id subject creator creation ..><participant jid [type] [lid]/>..</group>
 * (id without the server, as Baileys reads it).
 *
 * SENDER KEYS. Every member device must get our SenderKeyDistributionMessage before it can read
 * our group messages; the store records which devices got it (skdm_sent). When a member leaves
 * or is removed, the key they knew must not protect what follows: our sender key is dropped and
 * the record cleared, so the next send makes a new key and distributes it to the members left.
 * A member added later simply gets the current key with the next send: it reads what follows
 * (sender key chains only go forward), and only that.
 *
 * Member lists are cached (WA__GROUPCACHE_MAX groups, WA__DEVCACHE_TTL_MS) and forgotten on any
 * w:gp2 change and with the connection.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "client/client_int.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/util.h"
#include "wa/error.h"

#define LOG "client"

typedef struct gentry {
    char gid[WA_JID_STR_MAX]; /* "" = free */
    uint64_t fetched;
    size_t n;
    wa_jid *members;
} gentry;

struct wa__groups {
    gentry e[WA__GROUPCACHE_MAX];
};

enum { OP_CREATE = 1, OP_META, OP_PART };

struct wa__gop {
    uint32_t seq;
    int kind;
    int action; /* OP_PART: enum wa_client_group_action */
    char gid[WA_JID_STR_MAX];
    wa_client_group_cb cb;
    void *user_data;
};

static const char *const action_tags[] = {NULL, "add", "remove", "promote", "demote"};

/* ---- cache ---------------------------------------------------------------------------------- */

static void entry_clear(gentry *e)
{
    wa_free(e->members);
    memset(e, 0, sizeof *e);
}

static gentry *find(wa_client *c, const char *gid)
{
    size_t i;

    for (i = 0; c->groups && i < WA__GROUPCACHE_MAX; i++)
        if (c->groups->e[i].gid[0] && !strcmp(c->groups->e[i].gid, gid))
            return &c->groups->e[i];
    return NULL;
}

static void forget(wa_client *c, const char *gid)
{
    gentry *e = find(c, gid);

    if (e)
        entry_clear(e);
}

void wa__group_clear(wa_client *c)
{
    size_t i;

    if (!c->groups)
        return;
    for (i = 0; i < WA__GROUPCACHE_MAX; i++)
        entry_clear(&c->groups->e[i]);
    wa_free(c->groups);
    c->groups = NULL;
}

int wa__group_members(wa_client *c, const wa_jid *group, const wa_jid **members)
{
    char gid[WA_JID_STR_MAX];
    gentry *e;

    if (wa_jid_format(group, gid, sizeof gid) < 0 || !(e = find(c, gid)))
        return -1;
    if (wa__client_now(c) - e->fetched > WA__DEVCACHE_TTL_MS)
        return -1;
    *members = e->members;
    return (int)e->n;
}

/* The group JID of a <group id> ("120363..." or "120363...@g.us"). */
static int group_jid(const wa_node *g, char *out, size_t cap)
{
    const char *id = wa_node_attr(g, "id");
    wa_jid j;

    if (!id || !id[0])
        return WA_EPROTO;
    if (strchr(id, '@'))
        return wa_jid_parse(id, &j) == 0 && wa_jid_is_group(&j) && wa_jid_format(&j, out, cap) > 0
                   ? 0
                   : WA_EPROTO;
    return wa_jid_make(&j, id, WA_JID_SERVER_GROUP, 0) == 0 && wa_jid_format(&j, out, cap) > 0
               ? 0
               : WA_EPROTO;
}

/* Cache the members of a <group> node. */
static int cache_group(wa_client *c, const wa_node *g)
{
    char gid[WA_JID_STR_MAX];
    wa_jid *m;
    gentry *e, *victim = NULL;
    size_t n = 0, i;

    if (group_jid(g, gid, sizeof gid) != 0)
        return WA_EPROTO;
    m = wa_calloc(WA__GROUP_MEMBERS_MAX, sizeof *m);
    if (!m)
        return WA_ENOMEM;
    WA_NODE_FOREACH(p, g)
    {
        wa_jid j;
        if (!wa_node_is(p, "participant") || wa_node_attr_jid(p, "jid", &j) != 0 ||
            n >= WA__GROUP_MEMBERS_MAX)
            continue;
        wa_jid_to_non_ad(&j, &m[n++]);
        {
            wa_jid lid;
            if (wa_jid_is_user(&j) && wa_node_attr_jid(p, "lid", &lid) == 0 && wa_jid_is_lid(&lid))
                wa__e2e_learn(c, j.user, lid.user);
        }
    }
    if (!c->groups && !(c->groups = wa_calloc(1, sizeof *c->groups))) {
        wa_free(m);
        return WA_ENOMEM;
    }
    e = find(c, gid);
    for (i = 0; !e && i < WA__GROUPCACHE_MAX; i++) {
        gentry *x = &c->groups->e[i];
        if (!x->gid[0]) {
            e = x;
            break;
        }
        if (!victim || x->fetched < victim->fetched)
            victim = x;
    }
    if (!e)
        e = victim;
    entry_clear(e);
    snprintf(e->gid, sizeof e->gid, "%s", gid);
    e->fetched = wa__client_now(c);
    e->n = n;
    e->members = m;
    return 0;
}

int wa__group_take(wa_client *c, const wa_node *iq)
{
    const char *type = wa_node_attr(iq, "type");
    const wa_node *g = wa_node_child(iq, "group");

    if (!type || strcmp(type, "result") != 0 || !g)
        return WA_EPROTO;
    return cache_group(c, g);
}

/* ---- keys ----------------------------------------------------------------------------------- */

int wa__group_own_addr(wa_client *c, wa_signal_addr *out)
{
    wa_jid me;

    if (wa_jid_parse(c->me_jid, &me) != 0)
        return WA_ESTATE;
    return wa__e2e_addr(c, &me, out);
}

void wa__group_rotate_key(wa_client *c, const char *group)
{
    wa_signal *sig = wa__e2e_signal(c);
    wa_signal_addr own;
    int rc;

    if (!sig || wa__group_own_addr(c, &own) != 0)
        return;
    rc = wa_store_tx_begin(c->store);
    if (rc == 0) {
        rc = wa_signal_group_delete_sender_key(sig, group, &own);
        if (rc == 0)
            rc = wa_store_skdm_clear(c->store, c->account, group);
        rc = wa_store_tx_end(c->store, rc);
    }
    if (rc)
        wa_log_warn(LOG, "[%s] cannot renew our sender key for %s: %s", c->account_name, group,
                    wa_strerror(rc));
    else
        wa_log_info(LOG, "[%s] %s: a member left, our sender key will be renewed", c->account_name,
                    group);
}

/* ---- the application's calls ---------------------------------------------------------------- */

static wa_node *group_iq(wa_arena *a, const char *type, const char *to, const char *id)
{
    wa_node *iq = wa_node_new(a, "iq");

    if (!iq || wa_node_set_attr(a, iq, "type", type) || wa_node_set_attr(a, iq, "xmlns", "w:g2") ||
        wa_node_set_attr(a, iq, "to", to) || wa_node_set_attr(a, iq, "id", id))
        return NULL;
    return iq;
}

/* A participant JID from a phone number or a user JID (non-AD). */
static int user_jid(const char *in, char *out, size_t cap)
{
    wa_jid j;
    size_t i, n;

    if (!in || !in[0])
        return WA_EINVAL;
    n = strlen(in);
    for (i = 0; i < n && in[i] >= '0' && in[i] <= '9'; i++)
        ;
    if (i == n) {
        if (n > WA__PHONE_MAX || wa_jid_make(&j, in, WA_JID_SERVER_USER, 0) != 0)
            return WA_EINVAL;
    } else if (wa_jid_parse(in, &j) != 0 || !j.user[0] ||
               (!wa_jid_is_user(&j) && !wa_jid_is_lid(&j))) {
        return WA_EINVAL;
    }
    wa_jid_to_non_ad(&j, &j);
    return wa_jid_format(&j, out, cap) > 0 ? 0 : WA_EINVAL;
}

static int start_op(wa_client *c, wa__gop *op, wa_node *iq, const char *id)
{
    size_t i, slot = WA_CLIENT_GROUP_OPS_MAX;
    int rc;

    for (i = 0; i < WA_CLIENT_GROUP_OPS_MAX && slot == WA_CLIENT_GROUP_OPS_MAX; i++)
        if (!c->gops[i])
            slot = i;
    if (slot == WA_CLIENT_GROUP_OPS_MAX)
        return WA_ELIMIT;
    if (!iq)
        return WA_ENOMEM;
    op->seq = ++c->job_seq;
    rc = wa__client_send_iq(c, iq, id, WA__IQ_GROUP, op->seq);
    if (rc)
        return rc;
    c->gops[slot] = wa_malloc(sizeof *op);
    if (!c->gops[slot])
        return WA_ENOMEM; /* the answer will find no op: dropped */
    *c->gops[slot] = *op;
    return 0;
}

/* Participants of an op node: jid, lid, type, error. */
static int participants_of(const wa_node *n, wa_client_group_participant **out, size_t *count)
{
    wa_client_group_participant *p;
    size_t k = 0, max = wa_node_child_count(n);

    *out = NULL;
    *count = 0;
    if (max == 0)
        return 0;
    if (max > WA__GROUP_MEMBERS_MAX)
        max = WA__GROUP_MEMBERS_MAX;
    p = wa_calloc(max, sizeof *p);
    if (!p)
        return WA_ENOMEM;
    WA_NODE_FOREACH(x, n)
    {
        const char *type = wa_node_attr(x, "type"), *jid = wa_node_attr(x, "jid");
        int err = 0;
        if (!wa_node_is(x, "participant") || !jid || k >= max)
            continue;
        p[k].jid = jid;
        p[k].lid = wa_node_attr(x, "lid") ? wa_node_attr(x, "lid") : "";
        p[k].admin = !type ? 0 : !strcmp(type, "superadmin") ? 2 : !strcmp(type, "admin") ? 1 : 0;
        if (wa_node_attr_int(x, "error", &err) == 0)
            p[k].error = err;
        k++;
    }
    *out = p;
    *count = k;
    return 0;
}

static void op_done(wa_client *c, wa__gop *op, int err, const wa_node *iq)
{
    const wa_node *g = NULL, *part = NULL;
    wa_client_group info;
    wa_client_group_participant *ps = NULL;
    char gid[WA_JID_STR_MAX];
    int64_t creation = 0;

    memset(&info, 0, sizeof info);
    if (err == 0) {
        if (op->kind == OP_PART) {
            part = wa_node_child(iq, action_tags[op->action]);
            if (!part)
                err = WA_EPROTO;
        } else {
            g = wa_node_child(iq, "group");
            if (!g || group_jid(g, gid, sizeof gid) != 0)
                err = WA_EPROTO;
        }
    }
    if (err == 0)
        err = participants_of(g ? g : part, &ps, &info.n_participants);
    if (err == 0 && g) {
        cache_group(c, g);
        info.jid = gid;
        info.subject = wa_node_attr(g, "subject") ? wa_node_attr(g, "subject") : "";
        info.creator = wa_node_attr(g, "creator") ? wa_node_attr(g, "creator") : "";
        if (wa_node_attr_i64(g, "creation", &creation) == 0)
            info.creation = creation;
    } else if (err == 0) {
        size_t i;
        int removed = 0;
        info.jid = op->gid;
        info.subject = info.creator = "";
        for (i = 0; i < info.n_participants; i++)
            removed |= op->action == WA_GROUP_REMOVE && ps[i].error == 0;
        /* our own change: no notification comes back to this device */
        forget(c, op->gid);
        if (removed)
            wa__group_rotate_key(c, op->gid);
    }
    info.participants = ps;
    if (op->cb && !c->freeing)
        op->cb(c, err, err ? NULL : &info, op->user_data);
    wa_free(ps);
}

void wa__group_answer(wa_client *c, uint32_t seq, const wa_node *iq)
{
    const char *type = wa_node_attr(iq, "type");
    size_t i;

    for (i = 0; i < WA_CLIENT_GROUP_OPS_MAX; i++) {
        wa__gop *op = c->gops[i];
        if (op && op->seq == seq) {
            c->gops[i] = NULL;
            op_done(c, op, type && !strcmp(type, "result") ? 0 : WA_EPROTO, iq);
            wa_free(op);
            return;
        }
    }
}

void wa__group_fail_all(wa_client *c, int err)
{
    /* no early return when a callback stops or frees the client: every entry must go (the
     * callbacks are not called once the client is being freed) */
    size_t i;

    for (i = 0; i < WA_CLIENT_GROUP_OPS_MAX; i++) {
        wa__gop *op = c->gops[i];
        if (!op)
            continue;
        c->gops[i] = NULL;
        op_done(c, op, err, NULL);
        wa_free(op);
    }
}

int wa_client_group_create(wa_client *c, const char *subject, const char *const *participants,
                           size_t n, wa_client_group_cb cb, void *user_data)
{
    wa__gop op;
    wa_arena a;
    wa_node *iq, *cr;
    char id[WA__IQ_ID_MAX], key[WA_CLIENT_MSG_ID_MAX], jid[WA_JID_STR_MAX];
    size_t i;
    int rc = 0;

    if (!c || !subject || !subject[0] || strlen(subject) > WA_STORE_TEXT_MAX * 2 ||
        (n && !participants))
        return WA_EINVAL;
    if (n > WA_CLIENT_GROUP_BATCH_MAX)
        return WA_ELIMIT;
    if (!wa_client_is_connected(c))
        return WA_ESTATE;
    memset(&op, 0, sizeof op);
    op.kind = OP_CREATE;
    op.cb = cb;
    op.user_data = user_data;
    wa_arena_init(&a, 16384 + n * 256);
    wa__iq_make_id(&c->iqs, id);
    wa__content_new_id(key);
    iq = group_iq(&a, "set", "@g.us", id);
    cr = iq ? wa_node_new_child(&a, iq, "create") : NULL;
    if (!cr || wa_node_set_attr(&a, cr, "subject", subject) || wa_node_set_attr(&a, cr, "key", key))
        rc = WA_ENOMEM;
    for (i = 0; rc == 0 && i < n; i++) {
        wa_node *p;
        rc = user_jid(participants[i], jid, sizeof jid);
        if (rc == 0 && (!(p = wa_node_new_child(&a, cr, "participant")) ||
                        wa_node_set_attr(&a, p, "jid", jid)))
            rc = WA_ENOMEM;
    }
    if (rc == 0)
        rc = start_op(c, &op, iq, id);
    wa_arena_cleanup(&a);
    return rc;
}

static int parse_group_arg(const char *group, wa_jid *out)
{
    return group && wa_jid_parse(group, out) == 0 && wa_jid_is_group(out) ? 0 : WA_EINVAL;
}

int wa_client_group_metadata(wa_client *c, const char *group, wa_client_group_cb cb,
                             void *user_data)
{
    wa__gop op;
    wa_arena a;
    wa_node *iq, *q;
    wa_jid g;
    char id[WA__IQ_ID_MAX];
    int rc;

    if (!c || parse_group_arg(group, &g) != 0)
        return WA_EINVAL;
    if (!wa_client_is_connected(c))
        return WA_ESTATE;
    memset(&op, 0, sizeof op);
    op.kind = OP_META;
    op.cb = cb;
    op.user_data = user_data;
    wa_jid_format(&g, op.gid, sizeof op.gid);
    wa_arena_init(&a, 4096);
    wa__iq_make_id(&c->iqs, id);
    iq = group_iq(&a, "get", op.gid, id);
    q = iq ? wa_node_new_child(&a, iq, "query") : NULL;
    rc = q && wa_node_set_attr(&a, q, "request", "interactive") == 0 ? start_op(c, &op, iq, id)
                                                                     : WA_ENOMEM;
    wa_arena_cleanup(&a);
    return rc;
}

int wa__group_query_for_job(wa_client *c, const wa_jid *group, uint32_t seq)
{
    wa_arena a;
    wa_node *iq, *q;
    char id[WA__IQ_ID_MAX], gid[WA_JID_STR_MAX];
    int rc;

    if (wa_jid_format(group, gid, sizeof gid) < 0)
        return WA_EINVAL;
    wa_arena_init(&a, 4096);
    wa__iq_make_id(&c->iqs, id);
    iq = group_iq(&a, "get", gid, id);
    q = iq ? wa_node_new_child(&a, iq, "query") : NULL;
    rc = q && wa_node_set_attr(&a, q, "request", "interactive") == 0
             ? wa__client_send_iq(c, iq, id, WA__IQ_GROUP_META, seq)
             : WA_ENOMEM;
    wa_arena_cleanup(&a);
    return rc;
}

int wa_client_group_participants(wa_client *c, const char *group, int action,
                                 const char *const *participants, size_t n, wa_client_group_cb cb,
                                 void *user_data)
{
    wa__gop op;
    wa_arena a;
    wa_node *iq, *opn;
    wa_jid g;
    char id[WA__IQ_ID_MAX], jid[WA_JID_STR_MAX];
    size_t i;
    int rc = 0;

    if (!c || parse_group_arg(group, &g) != 0 || action < WA_GROUP_ADD ||
        action > WA_GROUP_DEMOTE || n == 0 || !participants)
        return WA_EINVAL;
    if (n > WA_CLIENT_GROUP_BATCH_MAX)
        return WA_ELIMIT;
    if (!wa_client_is_connected(c))
        return WA_ESTATE;
    memset(&op, 0, sizeof op);
    op.kind = OP_PART;
    op.action = action;
    op.cb = cb;
    op.user_data = user_data;
    wa_jid_format(&g, op.gid, sizeof op.gid);
    wa_arena_init(&a, 16384 + n * 256);
    wa__iq_make_id(&c->iqs, id);
    iq = group_iq(&a, "set", op.gid, id);
    opn = iq ? wa_node_new_child(&a, iq, action_tags[action]) : NULL;
    if (!opn)
        rc = WA_ENOMEM;
    for (i = 0; rc == 0 && i < n; i++) {
        wa_node *p;
        rc = user_jid(participants[i], jid, sizeof jid);
        if (rc == 0 && (!(p = wa_node_new_child(&a, opn, "participant")) ||
                        wa_node_set_attr(&a, p, "jid", jid)))
            rc = WA_ENOMEM;
    }
    if (rc == 0)
        rc = start_op(c, &op, iq, id);
    wa_arena_cleanup(&a);
    return rc;
}

/* ---- notifications -------------------------------------------------------------------------- */

void wa__group_notification(wa_client *c, const wa_node *n)
{
    const char *from = wa_node_attr(n, "from"), *actor = wa_node_attr(n, "participant");
    const char **who = NULL;
    wa_client_group_update u;
    wa_jid g, me;
    int64_t t = 0;
    unsigned gen = c->gen;

    if (!from || wa_jid_parse(from, &g) != 0 || !wa_jid_is_group(&g))
        return;
    wa_node_attr_i64(n, "t", &t);
    forget(c, from);
    WA_NODE_FOREACH(ch, n)
    {
        const wa_node *src = ch;
        size_t k = 0, max;
        int me_gone = 0, other_gone = 0;

        memset(&u, 0, sizeof u);
        u.jid = from;
        u.action = ch->tag;
        u.actor = actor ? actor : "";
        u.subject = "";
        u.timestamp = t;
        if (wa_node_is(ch, "create") && wa_node_child(ch, "group")) {
            src = wa_node_child(ch, "group");
            cache_group(c, src);
        }
        if (wa_node_attr(src, "subject"))
            u.subject = wa_node_attr(src, "subject");
        max = wa_node_child_count(src);
        if (max > WA__GROUP_MEMBERS_MAX)
            max = WA__GROUP_MEMBERS_MAX;
        wa_free(who);
        who = max ? wa_calloc(max, sizeof *who) : NULL;
        WA_NODE_FOREACH(p, src)
        {
            wa_jid pj;
            if (!who || !wa_node_is(p, "participant") || !wa_node_attr(p, "jid") || k >= max)
                continue;
            who[k++] = wa_node_attr(p, "jid");
            if (wa_node_attr_jid(p, "jid", &pj) == 0 &&
                ((wa__e2e_me(c, 0, &me) == 0 && wa_jid_same_user(&me, &pj)) ||
                 (wa__e2e_me(c, 1, &me) == 0 && wa_jid_same_user(&me, &pj))))
                me_gone = 1;
            else
                other_gone = 1;
        }
        u.participants = who;
        u.n_participants = k;
        if ((wa_node_is(ch, "remove") || wa_node_is(ch, "leave")) && other_gone && !me_gone)
            wa__group_rotate_key(c, from);
        if (c->cbs.group_update) {
            c->cbs.group_update(c, &u, c->user_data);
            if (!wa__client_alive(c, gen))
                break;
        }
    }
    wa_free(who);
}
