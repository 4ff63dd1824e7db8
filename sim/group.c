/*
 * group.c - groups (<iq xmlns='w:g2'>) and their w:gp2 notifications, in the shapes Baileys
 * (lib/Socket/groups.js extractGroupMetadata, messages-recv.js handleGroupNotification) and
 * whatsmeow (group.go parseGroupNode) read (PROTOCOL.md §6 Groups).
 *
 *   create       to '@g.us' <create subject key><participant jid/>..</create>
 *                -> <group id='120363..' creator creation subject s_t s_o size addressing_mode>
 *                   <participant jid [type='superadmin'|'admin'] lid/>..</group>
 *   query        to GID <query request='interactive'/> -> <group ../> (members only, else 403)
 *   participating to '@g.us' <participating/> -> <groups><group ../>..</groups>
 *   add|remove|promote|demote  to GID <add><participant jid/>..</add> (admins only)
 *                -> <add><participant jid [error='404'|'409'|'403']/>..</add>
 *   leave        to '@g.us' <leave><group id/>..</leave>
 *   subject      to GID <subject>text</subject>
 * Every change goes to all member devices (the actor's own device excepted) as
 * <notification from=GID type='w:gp2' id t participant=ACTOR><add|remove|create|..>..</..>
 * </notification>, queued for offline devices. Groups use PN addressing (addressing_mode='pn',
 * members by phone number, each with its LID in lid=), which Baileys 6.17 and 7 both handle.
 * Members are phones: every device of a member receives the group's messages. With --state,
 * every change is written through (state.c).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "jid/jid.h"
#include "sim.h"
#include "util.h"
#include "wa/error.h"

#define GROUP_ID_PREFIX "120363"
#define GROUP_OP_MAX    256 /* participants in one create/add/remove */

static int reserve_members(sim_group *g, size_t need)
{
    sim_group_member *nm;
    size_t ncap;

    if (need <= g->members_cap)
        return 0;
    if (need > SIM_GROUP_MAX_MEMBERS)
        return WA_ELIMIT;
    ncap = g->members_cap ? g->members_cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    if (ncap > SIM_GROUP_MAX_MEMBERS)
        ncap = SIM_GROUP_MAX_MEMBERS;
    nm = realloc(g->members, ncap * sizeof *nm);
    if (!nm)
        return WA_ENOMEM;
    g->members = nm;
    g->members_cap = ncap;
    return 0;
}

sim_group *sim_group_find(sim *s, const char *gid_jid)
{
    sim_group *g;
    wa_jid j;

    if (!s->route || !gid_jid || wa_jid_parse(gid_jid, &j) != 0 || !wa_jid_is_group(&j))
        return NULL;
    for (g = s->route->groups; g; g = g->next)
        if (strcmp(g->id, j.user) == 0)
            return g;
    return NULL;
}

sim_group_member *sim_group_member_of(sim_group *g, const sim_phone *p)
{
    size_t i;

    for (i = 0; i < g->nmembers; i++)
        if (g->members[i].phone == p)
            return &g->members[i];
    return NULL;
}

static int add_member(sim_group *g, sim_phone *p, int admin)
{
    int rc;

    if (sim_group_member_of(g, p))
        return WA_EEXIST;
    rc = reserve_members(g, g->nmembers + 1);
    if (rc)
        return rc;
    g->members[g->nmembers].phone = p;
    g->members[g->nmembers].admin = admin;
    g->nmembers++;
    return 0;
}

static void remove_member(sim_group *g, sim_group_member *m)
{
    size_t i = (size_t)(m - g->members);

    memmove(&g->members[i], &g->members[i + 1], (g->nmembers - i - 1) * sizeof *m);
    g->nmembers--;
}

static void delete_group(sim *s, sim_group *g)
{
    sim_group **pp;

    for (pp = &s->route->groups; *pp; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            s->route->ngroups--;
            sim_state_group_delete(s, g);
            free(g->members);
            free(g);
            return;
        }
    }
}

static void gid_jid(const sim_group *g, char *out, size_t cap)
{
    snprintf(out, cap, "%s@g.us", g->id);
}

/* <group id creator creation subject s_t s_o size addressing_mode><participant ../>..</group> */
static wa_node *group_node(wa_arena *a, wa_node *parent, const sim_group *g)
{
    char creator[SIM_JID_LEN], so[SIM_JID_LEN], creation[24], st[24], size[24];
    wa_node *n;
    size_t i;

    sim_user_jid(g->creator, 0, creator, sizeof creator);
    sim_user_jid(g->subject_owner ? g->subject_owner : g->creator, 0, so, sizeof so);
    snprintf(creation, sizeof creation, "%lld", (long long)g->creation);
    snprintf(st, sizeof st, "%lld", (long long)g->subject_t);
    snprintf(size, sizeof size, "%zu", g->nmembers);
    n = parent ? sim_child(a, parent, "group", "id", g->id, NULL)
               : sim_node(a, "group", "id", g->id, NULL);
    if (!n)
        return NULL;
    if (wa_node_set_attr(a, n, "creator", creator) ||
        wa_node_set_attr(a, n, "creation", creation) ||
        wa_node_set_attr(a, n, "subject", g->subject) || wa_node_set_attr(a, n, "s_t", st) ||
        wa_node_set_attr(a, n, "s_o", so) || wa_node_set_attr(a, n, "size", size) ||
        wa_node_set_attr(a, n, "addressing_mode", "pn"))
        return NULL;
    for (i = 0; i < g->nmembers; i++) {
        static const char *const types[] = {NULL, "admin", "superadmin"};
        char jid[SIM_JID_LEN], lid[SIM_JID_LEN];
        int t = g->members[i].admin;
        sim_user_jid(g->members[i].phone, 0, jid, sizeof jid);
        sim_user_jid(g->members[i].phone, 1, lid, sizeof lid);
        if (!sim_child(a, n, "participant", "jid", jid, "type", t >= 0 && t <= 2 ? types[t] : NULL,
                       "lid", lid, NULL))
            return NULL;
    }
    return n;
}

void sim_group_notify(sim *s, sim_group *g, const char *actor_jid, wa_node *child,
                      sim_phone *const *extra, size_t nextra, const sim_device *except)
{
    wa_arena a;
    wa_node *n;
    char id[32], t[24], gid[64];
    size_t i, total = g->nmembers + nextra;
    unsigned k;

    wa_arena_init(&a, 4096);
    sim_make_id(s, id, sizeof id);
    sim_unix_str(t, sizeof t);
    gid_jid(g, gid, sizeof gid);
    n = sim_node(&a, "notification", "from", gid, "type", "w:gp2", "id", id, "t", t, "participant",
                 actor_jid, NULL);
    if (n && child && wa_node_add_child(n, child) == 0) {
        for (i = 0; i < total; i++) {
            sim_phone *p = i < g->nmembers ? g->members[i].phone : extra[i - g->nmembers];
            for (k = 0; k < SIM_MAX_DEVICES; k++) {
                sim_device *d = &p->devices[k];
                if (d->present && d != except)
                    sim_route_deliver(s, d, n);
            }
        }
    }
    wa_arena_cleanup(&a);
}

/* "120363" + 12 random digits, like the real server's group ids. */
static void make_group_id(sim *s, char *out, size_t cap)
{
    char jid[64];
    unsigned tries = 0;

    do {
        uint64_t v = 0;
        wa_random(&v, sizeof v);
        snprintf(out, cap, GROUP_ID_PREFIX "%012llu", (unsigned long long)(v % 1000000000000ULL));
        snprintf(jid, sizeof jid, "%s@g.us", out);
    } while (sim_group_find(s, jid) && ++tries < 100);
}

static wa_node *do_create(sim_conn *c, const wa_node *iq, const wa_node *create, wa_arena *a)
{
    sim *s = c->sim;
    sim_route *r = sim_route_state(s);
    sim_phone *me = c->device->phone;
    const char *subject = wa_node_attr(create, "subject");
    sim_group *g;
    wa_node *res, *note;
    char actor[SIM_JID_LEN];
    size_t n = 0;

    if (!r)
        return sim_iq_error(a, iq, 500, "internal-server-error");
    if (!subject || !subject[0])
        return sim_iq_error(a, iq, 400, "bad-request");
    if (r->ngroups >= SIM_MAX_GROUPS)
        return sim_iq_error(a, iq, 406, "resource-constraint");
    g = calloc(1, sizeof *g);
    if (!g)
        return sim_iq_error(a, iq, 500, "internal-server-error");
    make_group_id(s, g->id, sizeof g->id);
    snprintf(g->subject, sizeof g->subject, "%s", subject);
    g->creator = g->subject_owner = me;
    g->creation = g->subject_t = (int64_t)time(NULL);
    if (add_member(g, me, 2) != 0) {
        free(g);
        return sim_iq_error(a, iq, 500, "internal-server-error");
    }
    WA_NODE_FOREACH(p, create)
    {
        sim_phone *ph;
        if (!wa_node_is(p, "participant") || n++ >= GROUP_OP_MAX)
            continue;
        ph = sim_phone_by_jid(s, wa_node_attr(p, "jid"), NULL);
        if (ph)
            add_member(g, ph, 0); /* unknown numbers are left out, duplicates ignored */
    }
    g->next = r->groups;
    r->groups = g;
    r->ngroups++;
    sim_state_group_save(s, g);
    wa_log_info("sim", "group %s@g.us created by %s with %zu members", g->id, me->number,
                g->nmembers);
    res = sim_iq_result(a, iq);
    if (!group_node(a, res, g))
        return sim_iq_error(a, iq, 500, "internal-server-error");
    sim_user_jid(me, 0, actor, sizeof actor);
    note = wa_node_new(a, "create");
    if (note && group_node(a, note, g))
        sim_group_notify(s, g, actor, note, NULL, 0, c->device);
    return res;
}

/* add / remove / promote / demote */
static wa_node *do_participants(sim_conn *c, const wa_node *iq, sim_group *g, const wa_node *op,
                                wa_arena *a)
{
    sim *s = c->sim;
    const char *tag = op->tag;
    int add = strcmp(tag, "add") == 0, remove = strcmp(tag, "remove") == 0;
    int promote = strcmp(tag, "promote") == 0;
    sim_phone *removed[GROUP_OP_MAX];
    size_t nremoved = 0, n = 0, changed = 0;
    wa_node *res = sim_iq_result(a, iq), *out = sim_child(a, res, tag, NULL);
    wa_node *note = wa_node_new(a, tag);
    char actor[SIM_JID_LEN];

    WA_NODE_FOREACH(p, op)
    {
        const char *jid = wa_node_attr(p, "jid");
        sim_phone *ph;
        sim_group_member *m;
        const char *err = NULL;
        if (!wa_node_is(p, "participant") || n++ >= GROUP_OP_MAX)
            continue;
        ph = sim_phone_by_jid(s, jid, NULL);
        m = ph ? sim_group_member_of(g, ph) : NULL;
        if (!ph) {
            err = "404";
        } else if (add) {
            int rc = add_member(g, ph, 0);
            err = rc == WA_EEXIST ? "409" : rc ? "500" : NULL;
        } else if (!m) {
            err = "404";
        } else if (remove) {
            if (m->admin == 2 && ph != c->device->phone)
                err = "403"; /* the creator is not removed by others */
            else {
                remove_member(g, m);
                removed[nremoved++] = ph;
            }
        } else if (promote) {
            if (m->admin < 1)
                m->admin = 1;
        } else if (m->admin == 1) {
            m->admin = 0; /* demote (a superadmin stays) */
        }
        sim_child(a, out, "participant", "jid", jid ? jid : "", "error", err, NULL);
        if (!err) {
            char pj[SIM_JID_LEN];
            sim_user_jid(ph, 0, pj, sizeof pj);
            sim_child(a, note, "participant", "jid", pj, NULL);
            changed++;
        }
    }
    if (changed && note) {
        sim_user_jid(c->device->phone, 0, actor, sizeof actor);
        sim_group_notify(s, g, actor, note, removed, nremoved, c->device);
    }
    if (g->nmembers == 0)
        delete_group(s, g);
    else if (changed)
        sim_state_group_save(s, g);
    return res;
}

static wa_node *do_leave(sim_conn *c, const wa_node *iq, const wa_node *leave, wa_arena *a)
{
    sim *s = c->sim;
    sim_phone *me = c->device->phone;
    wa_node *res = sim_iq_result(a, iq), *out = sim_child(a, res, "leave", NULL);
    char actor[SIM_JID_LEN];
    size_t n = 0;

    sim_user_jid(me, 0, actor, sizeof actor);
    WA_NODE_FOREACH(gn, leave)
    {
        const char *id = wa_node_attr(gn, "id");
        char jid[96];
        sim_group *g;
        sim_group_member *m;
        wa_node *note;
        if (!wa_node_is(gn, "group") || !id || n++ >= GROUP_OP_MAX)
            continue;
        snprintf(jid, sizeof jid, strchr(id, '@') ? "%s" : "%s@g.us", id);
        g = sim_group_find(s, jid);
        m = g ? sim_group_member_of(g, me) : NULL;
        if (!m) {
            sim_child(a, out, "group", "id", id, "error", "404", NULL);
            continue;
        }
        remove_member(g, m);
        sim_child(a, out, "group", "id", id, NULL);
        note = wa_node_new(a, "remove");
        if (note && sim_child(a, note, "participant", "jid", actor, NULL))
            sim_group_notify(s, g, actor, note, &me, 1, c->device);
        if (g->nmembers == 0)
            delete_group(s, g);
        else
            sim_state_group_save(s, g);
    }
    return res;
}

static wa_node *do_subject(sim_conn *c, const wa_node *iq, sim_group *g, const wa_node *sub,
                           wa_arena *a)
{
    const uint8_t *p;
    size_t len;
    wa_node *note;
    char actor[SIM_JID_LEN], st[24];

    if (wa_node_content_bytes(sub, &p, &len) != 0 || len == 0 || memchr(p, 0, len))
        return sim_iq_error(a, iq, 400, "bad-request");
    if (len > SIM_SUBJECT_MAX)
        len = SIM_SUBJECT_MAX;
    memcpy(g->subject, p, len);
    g->subject[len] = 0;
    g->subject_owner = c->device->phone;
    g->subject_t = (int64_t)time(NULL);
    sim_state_group_save(c->sim, g);
    sim_user_jid(c->device->phone, 0, actor, sizeof actor);
    snprintf(st, sizeof st, "%lld", (long long)g->subject_t);
    note = sim_node(a, "subject", "subject", g->subject, "s_t", st, "s_o", actor, NULL);
    if (note)
        sim_group_notify(c->sim, g, actor, note, NULL, 0, c->device);
    return sim_iq_result(a, iq);
}

wa_node *sim_route_group_iq(sim_conn *c, const wa_node *iq, wa_arena *a)
{
    sim *s = c->sim;
    const char *to = wa_node_attr(iq, "to"), *type = wa_node_attr(iq, "type");
    const wa_node *op = wa_node_children(iq);
    sim_group *g = NULL;
    sim_group_member *me;
    wa_jid tj;

    if (!c->device)
        return sim_iq_error(a, iq, 401, "not-authorized");
    if (!to || !type || !op || wa_jid_parse(to, &tj) != 0 || !wa_jid_is_group(&tj))
        return sim_iq_error(a, iq, 400, "bad-request");
    if (!tj.user[0]) {
        /* to '@g.us' */
        if (strcmp(type, "set") == 0 && wa_node_is(op, "create"))
            return do_create(c, iq, op, a);
        if (strcmp(type, "get") == 0 && wa_node_is(op, "participating")) {
            wa_node *res = sim_iq_result(a, iq), *groups = sim_child(a, res, "groups", NULL);
            for (g = s->route ? s->route->groups : NULL; g && groups; g = g->next)
                if (sim_group_member_of(g, c->device->phone))
                    group_node(a, groups, g);
            return res;
        }
        if (strcmp(type, "set") == 0 && wa_node_is(op, "leave"))
            return do_leave(c, iq, op, a);
        return NULL; /* invites etc.: a bare result */
    }
    g = sim_group_find(s, to);
    if (!g)
        return sim_iq_error(a, iq, 404, "item-not-found");
    me = sim_group_member_of(g, c->device->phone);
    if (!me)
        return sim_iq_error(a, iq, 403, "forbidden");
    if (strcmp(type, "get") == 0 && wa_node_is(op, "query")) {
        wa_node *res = sim_iq_result(a, iq);
        return group_node(a, res, g) ? res : sim_iq_error(a, iq, 500, "internal-server-error");
    }
    if (strcmp(type, "set") != 0)
        return NULL;
    if (wa_node_is(op, "add") || wa_node_is(op, "remove") || wa_node_is(op, "promote") ||
        wa_node_is(op, "demote")) {
        if (me->admin < 1)
            return sim_iq_error(a, iq, 403, "not-authorized");
        return do_participants(c, iq, g, op, a);
    }
    if (wa_node_is(op, "subject"))
        return do_subject(c, iq, g, op, a);
    return NULL;
}
