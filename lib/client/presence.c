/*
 * presence.c - presence, chat states (typing indicators) and identity changes of contacts.
 *
 * Stanzas (Baileys 7 lib/Socket/chats.js sendPresenceUpdate / presenceSubscribe /
 * handlePresenceUpdate, whatsmeow presence.go SendPresence / SubscribePresence /
 * SendChatPresence / handlePresence / handleChatState):
 *   out  <presence type='available'|'unavailable' name=PUSH_NAME/>   own availability; with
 *        'available' also <ib><unified_session id/></ib>, as both do. While available, delivery
 *        receipts are plain ones (recv.c), not type='inactive' (Baileys sendActiveReceipts).
 *   out  <presence type='subscribe' to=USER/>                         (no tctoken: we keep none)
 *   out  <chatstate to=JID><composing/>|<paused/>|<composing media='audio'/></chatstate>
 *        (whatsmeow's form; Baileys also writes from=ME, which the server sets anyway)
 *   in   <presence from=USER [type='unavailable'] [last=UNIX|'deny']/>  -> presence callback
 *   in   <chatstate from=USER|GROUP [participant=USER]><composing [media]/>|<paused/>
 *        </chatstate>                                                 -> chat_state callback
 * Neither presence nor chatstate is acknowledged (neither library acks them).
 *
 * Identity changes (whatsmeow notification.go handleEncryptNotification and
 * message.go clearUntrustedIdentity, Baileys 7 handleEncryptNotification):
 *   - <notification type='encrypt' from=USER><identity/></notification>: the contact has a new
 *     identity key (new phone, reinstall). Every session and stored identity of the user (both
 *     its phone-number and LID names) is dropped with its cached device list, so the next
 *     message either way starts a new session from a fresh prekey bundle (trust on first use).
 *   - a pkmsg (or a prekey bundle) naming another identity key than the stored one: the Signal
 *     layer accepts it, rebuilds that device's session and reports it (signal.h); the device
 *     list is dropped as well.
 *   Both raise identity_changed(user JID) ONCE per change: a change reported by one path is
 *   not reported again by the other (or by the user's other devices) within
 *   WA__IDCHANGE_WINDOW_MS. Reports from inside a Signal operation are noted and raised after
 *   the stanza was handled (wa__identity_flush), never in the middle of a decryption.
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

typedef struct wa__idchange {
    char user[WA_JID_STR_MAX]; /* the reported user JID; "" = free */
    char alt[WA_JID_STR_MAX];  /* its other form (PN <-> LID) when known */
    uint64_t at;               /* loop ms of the change */
    int pending;               /* noted, not yet reported */
} idchange;

/* ---- sending -------------------------------------------------------------------------------- */

/* A user or group JID (non-AD) from "NUMBER" or a JID string. 0 or WA_EINVAL. */
static int parse_to(const char *to, int allow_group, wa_jid *out)
{
    wa_jid j;
    size_t i, n;

    if (!to || !to[0])
        return WA_EINVAL;
    n = strlen(to);
    for (i = 0; i < n && to[i] >= '0' && to[i] <= '9'; i++)
        ;
    if (i == n)
        return n <= WA__PHONE_MAX && wa_jid_make(out, to, WA_JID_SERVER_USER, 0) == 0 ? 0
                                                                                      : WA_EINVAL;
    if (wa_jid_parse(to, &j) != 0 || !j.user[0])
        return WA_EINVAL;
    if (!wa_jid_is_user(&j) && !wa_jid_is_lid(&j) && !(allow_group && wa_jid_is_group(&j)))
        return WA_EINVAL;
    wa_jid_to_non_ad(&j, out);
    return 0;
}

int wa_client_send_chat_state(wa_client *c, const char *to, int state)
{
    wa_arena a;
    wa_node *n, *s;
    wa_jid j;
    int rc;

    if (!c || (state != WA_CHAT_COMPOSING && state != WA_CHAT_PAUSED && state != WA_CHAT_RECORDING))
        return WA_EINVAL;
    rc = parse_to(to, 1, &j);
    if (rc)
        return rc;
    if (!wa_client_is_connected(c))
        return WA_ESTATE;
    wa_arena_init(&a, 1024);
    n = wa_node_new(&a, "chatstate");
    s = n ? wa_node_new_child(&a, n, state == WA_CHAT_PAUSED ? "paused" : "composing") : NULL;
    rc = !s || wa_node_set_attr_jid(&a, n, "to", &j) ||
                 (state == WA_CHAT_RECORDING && wa_node_set_attr(&a, s, "media", "audio"))
             ? WA_ENOMEM
             : wa__client_send(c, n);
    wa_arena_cleanup(&a);
    return rc;
}

int wa_client_send_presence(wa_client *c, int type)
{
    char name[128];
    wa_arena a;
    wa_node *n;
    size_t i, k = 0;
    int rc;

    if (!c || (type != WA_PRESENCE_AVAILABLE && type != WA_PRESENCE_UNAVAILABLE))
        return WA_EINVAL;
    if (!wa_client_is_connected(c))
        return WA_ESTATE;
    /* Baileys drops '@' from the name it sends */
    for (i = 0; c->push_name && c->push_name[i] && k + 1 < sizeof name; i++)
        if (c->push_name[i] != '@')
            name[k++] = c->push_name[i];
    name[k] = '\0';
    wa_arena_init(&a, 1024);
    n = wa_node_new(&a, "presence");
    rc = !n ||
                 wa_node_set_attr(&a, n, "type",
                                  type == WA_PRESENCE_AVAILABLE ? "available" : "unavailable") ||
                 (name[0] && wa_node_set_attr(&a, n, "name", name))
             ? WA_ENOMEM
             : 0;
    if (rc == 0 && type == WA_PRESENCE_AVAILABLE) {
        wa_node *us = wa__st_unified_session(&a, (uint64_t)wa__client_unix() * 1000u);
        if (us)
            wa__client_send(c, us); /* best effort, as both libraries */
    }
    if (rc == 0)
        rc = wa__client_send(c, n);
    if (rc == 0)
        c->available = type == WA_PRESENCE_AVAILABLE;
    wa_arena_cleanup(&a);
    return rc;
}

int wa_client_subscribe_presence(wa_client *c, const char *jid)
{
    wa_arena a;
    wa_node *n;
    wa_jid j;
    int rc;

    if (!c)
        return WA_EINVAL;
    rc = parse_to(jid, 0, &j);
    if (rc)
        return rc;
    if (!wa_client_is_connected(c))
        return WA_ESTATE;
    wa_arena_init(&a, 1024);
    n = wa_node_new(&a, "presence");
    rc = !n || wa_node_set_attr(&a, n, "type", "subscribe") || wa_node_set_attr_jid(&a, n, "to", &j)
             ? WA_ENOMEM
             : wa__client_send(c, n);
    wa_arena_cleanup(&a);
    return rc;
}

/* ---- receiving ------------------------------------------------------------------------------ */

void wa__presence_recv(wa_client *c, const wa_node *n)
{
    wa_client_presence_update ev;
    const char *type = wa_node_attr(n, "type"), *last = wa_node_attr(n, "last");
    char from[WA_JID_STR_MAX];
    wa_jid j, u;
    int64_t t = 0;

    if (!c->cbs.presence || wa_node_attr_jid(n, "from", &j) != 0 || !j.user[0] ||
        (!wa_jid_is_user(&j) && !wa_jid_is_lid(&j)))
        return;
    if (type && strcmp(type, "available") != 0 && strcmp(type, "unavailable") != 0)
        return; /* subscribe requests and the like are not updates */
    wa_jid_to_non_ad(&j, &u);
    if (wa_jid_format(&u, from, sizeof from) < 0)
        return;
    memset(&ev, 0, sizeof ev);
    ev.from = from;
    ev.available = !type || strcmp(type, "unavailable") != 0;
    if (last && strcmp(last, "deny") != 0 && wa_node_attr_i64(n, "last", &t) == 0 && t > 0)
        ev.last_seen = t;
    c->cbs.presence(c, &ev, c->user_data);
}

void wa__chatstate_recv(wa_client *c, const wa_node *n)
{
    wa_client_chat_state_update ev;
    const wa_node *s = wa_node_children(n);
    char chat[WA_JID_STR_MAX], sender[WA_JID_STR_MAX];
    wa_jid from, who;

    if (!c->cbs.chat_state || !s || wa_node_attr_jid(n, "from", &from) != 0 || !from.user[0])
        return;
    if (wa_jid_is_group(&from)) {
        if (wa_node_attr_jid(n, "participant", &who) != 0)
            return;
    } else if (wa_jid_is_user(&from) || wa_jid_is_lid(&from)) {
        who = from;
        wa_jid_to_non_ad(&from, &from);
    } else {
        return;
    }
    wa_jid_to_non_ad(&who, &who);
    if (wa_jid_format(&from, chat, sizeof chat) < 0 ||
        wa_jid_format(&who, sender, sizeof sender) < 0)
        return;
    memset(&ev, 0, sizeof ev);
    ev.chat = chat;
    ev.sender = sender;
    if (wa_node_is(s, "composing")) {
        const char *media = wa_node_attr(s, "media");
        ev.state = media && !strcmp(media, "audio") ? WA_CHAT_RECORDING : WA_CHAT_COMPOSING;
    } else if (wa_node_is(s, "paused")) {
        ev.state = WA_CHAT_PAUSED;
    }
    c->cbs.chat_state(c, &ev, c->user_data);
}

/* ---- identity changes ----------------------------------------------------------------------- */

/* The user JID to report for u (non-AD): the phone-number form when known, else u; alt gets
 * the other form ("" unknown). */
static void report_names(wa_client *c, const wa_jid *u, char *jid, char *alt)
{
    wa_jid other;

    jid[0] = alt[0] = '\0';
    if (wa__e2e_alt(c, u, &other) == 0) {
        const wa_jid *pn = wa_jid_is_lid(u) ? &other : u, *lid = wa_jid_is_lid(u) ? u : &other;
        wa_jid_format(pn, jid, WA_JID_STR_MAX);
        wa_jid_format(lid, alt, WA_JID_STR_MAX);
    } else {
        wa_jid_format(u, jid, WA_JID_STR_MAX);
    }
}

/* Note a change of user u. 1: new (to report), 0: already reported within the window. */
static int note(wa_client *c, const wa_jid *u, int pending)
{
    char jid[WA_JID_STR_MAX], alt[WA_JID_STR_MAX];
    uint64_t now = wa__client_now(c);
    idchange *e;
    size_t i;

    if (!c->idchanges && !(c->idchanges = wa_calloc(WA__IDCHANGE_TRACK, sizeof *c->idchanges)))
        return 1; /* no memory to remember: report (at worst twice) */
    report_names(c, u, jid, alt);
    if (!jid[0])
        return 0;
    for (i = 0; i < WA__IDCHANGE_TRACK; i++) {
        e = &c->idchanges[i];
        if (!e->user[0] || (strcmp(e->user, jid) && (!alt[0] || strcmp(e->user, alt)) &&
                            (!e->alt[0] || strcmp(e->alt, jid))))
            continue;
        if (now - e->at < WA__IDCHANGE_WINDOW_MS)
            return 0;
        break; /* an older change of the same user: this is a new one */
    }
    if (i == WA__IDCHANGE_TRACK) {
        e = &c->idchanges[c->idchanges_next];
        c->idchanges_next = (c->idchanges_next + 1) % WA__IDCHANGE_TRACK;
    }
    memset(e, 0, sizeof *e);
    snprintf(e->user, sizeof e->user, "%s", jid);
    snprintf(e->alt, sizeof e->alt, "%s", alt);
    e->at = now;
    e->pending = pending;
    return 1;
}

/* Drop every session and identity of user u (both names) and its device list. */
static void forget_user(wa_client *c, const wa_jid *u)
{
    char name[WA_SIGNAL_NAME_MAX];
    wa_signal_addr addr;
    wa_jid forms[2];
    size_t i, n = 0;
    int rc;

    forms[n++] = *u;
    if (wa__e2e_alt(c, u, &forms[1]) == 0)
        n++;
    for (i = 0; i < n; i++) {
        /* the raw name of each form (wa__e2e_addr would map a known PN to its LID) */
        if (wa_signal_addr_make(&addr, forms[i].user,
                                wa_jid_is_lid(&forms[i]) ? WA_SIGNAL_LID : WA_SIGNAL_PN, 0) ||
            wa_signal_addr_name(&addr, name, sizeof name) < 0)
            continue;
        rc = wa_store_e2e_forget(c->store, c->account, name);
        if (rc)
            wa_log_warn(LOG, "[%s] cannot drop the sessions of %s: %s", c->account_name, name,
                        wa_strerror(rc));
    }
    wa__devices_forget(c, u);
}

void wa__identity_notification(wa_client *c, const wa_node *n)
{
    char jid[WA_JID_STR_MAX], alt[WA_JID_STR_MAX];
    wa_jid from, u;

    if (wa_node_attr_jid(n, "from", &from) != 0 || !from.user[0] ||
        (!wa_jid_is_user(&from) && !wa_jid_is_lid(&from)))
        return;
    wa_jid_to_non_ad(&from, &u);
    report_names(c, &u, jid, alt);
    if (!note(c, &u, 0)) {
        /* the pkmsg that carried the new key came first: its session is the new one, keep it */
        wa_log_info(LOG, "[%s] identity change of %s: already handled", c->account_name, jid);
        wa__devices_forget(c, &u);
        return;
    }
    wa_log_info(LOG, "[%s] identity of %s changed: its sessions are reset", c->account_name, jid);
    forget_user(c, &u);
    if (c->cbs.identity_changed)
        c->cbs.identity_changed(c, jid, c->user_data);
}

void wa__identity_changed_cb(const wa_signal_addr *addr, const uint8_t old_key[WA_SIGNAL_KEY_LEN],
                             const uint8_t new_key[WA_SIGNAL_KEY_LEN], void *user_data)
{
    wa_client *c = user_data;
    wa_jid u;

    (void)old_key;
    (void)new_key;
    if (addr->server != WA_SIGNAL_PN && addr->server != WA_SIGNAL_LID)
        return;
    if (wa_jid_make(&u, addr->user,
                    addr->server == WA_SIGNAL_LID ? WA_JID_SERVER_LID : WA_JID_SERVER_USER, 0))
        return;
    /* a new key on one device: the user may have a new device list too */
    wa__devices_forget(c, &u);
    note(c, &u, 1);
}

void wa__identity_flush(wa_client *c)
{
    unsigned gen = c->gen;
    size_t i;

    for (i = 0; c->idchanges && i < WA__IDCHANGE_TRACK; i++) {
        idchange *e = &c->idchanges[i];
        char jid[WA_JID_STR_MAX];
        if (!e->pending)
            continue;
        wa__recv_batch_flush(c); /* no callback inside a batch's transaction (recv.c) */
        if (!wa__client_alive(c, gen))
            return;
        e->pending = 0;
        snprintf(jid, sizeof jid, "%s", e->user);
        wa_log_info(LOG, "[%s] identity of %s changed (a new key in a prekey message or bundle)",
                    c->account_name, jid);
        if (c->cbs.identity_changed) {
            c->cbs.identity_changed(c, jid, c->user_data);
            if (!wa__client_alive(c, gen))
                return;
        }
    }
}

void wa__presence_release(wa_client *c)
{
    wa_free(c->idchanges);
    c->idchanges = NULL;
    c->idchanges_next = 0;
}
