/*
 * usync.c - user sync (<iq xmlns='usync'>) and prekey bundles (<iq xmlns='encrypt'><key>),
 * what a client asks before it encrypts (PROTOCOL.md §6 steps 1-2).
 *
 * usync: <usync context mode sid last index><query>PROTOCOLS</query><list><user [jid]>..</user>
 * </list></usync> -> <usync sid index='0' last='true' mode context><result>PROTOCOLS</result>
 * <list><user jid>..</user>..</list></usync>, answering per user, in the shapes Baileys parses
 * (lib/WAUSync/Protocols/, USyncQuery.parseUSyncQueryResult) and whatsmeow (user.go):
 *   devices (version 2): <devices><device-list><device id='0'/><device id='N' key-index='K'/>
 *            </device-list></devices>: device 0 is the virtual phone, always there; companions
 *            carry key-index (Baileys ignores non-zero devices without one). An unknown user has
 *            an empty list.
 *   contact: the user names a phone number in <contact>+NUMBER</contact> (onWhatsApp); the
 *            answer is <user jid='NUMBER@s.whatsapp.net'><contact type='in'|'out'/>. A number
 *            is on WhatsApp once it exists in the simulator (control API or pairing).
 *   lid:     <lid val='LID@lid'/> for a phone asked by phone number (Baileys 7 asks it with every
 *            device query and stores the PN<->LID mapping); nothing for a LID.
 *   status, disappearing_mode: neutral defaults. Anything else: nothing.
 * Users asked by LID are answered by LID (devices then become LID device JIDs in Baileys 7).
 *
 * Bundles: <key><user jid=DEVICE [reason]/>..</key> -> <list><user jid=DEVICE><registration/>
 * <type/><identity/><skey><id/><value/><signature/></skey>[<key><id/><value/></key>]</user>..
 * </list>. Each one-time prekey is handed out once; without one the bundle has no <key> (Signal
 * then starts the session from the signed prekey alone). The virtual phone (device 0) has its
 * own keys (accounts.c). Unknown devices are left out of the list: Baileys 7 fails the whole
 * query on a per-user <error/>. A companion that runs low on prekeys is told so with
 * <notification type='encrypt'><count value/></notification>, and uploads more.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "crypto/curve25519.h"
#include "jid/jid.h"
#include "sim.h"
#include "util.h"
#include "wa/error.h"

#define PREKEY_LOW 5 /* Baileys' MIN_PREKEY_COUNT: below it the client is told to upload */

enum { P_DEVICES = 1, P_CONTACT = 2, P_LID = 4, P_STATUS = 8, P_DISAPPEARING = 16 };

static wa_node *be_node(wa_arena *a, wa_node *parent, const char *tag, uint32_t v, size_t len)
{
    uint8_t b[4];
    size_t i;

    for (i = 0; i < len; i++)
        b[i] = (uint8_t)(v >> (8 * (len - 1 - i)));
    return sim_bytes(a, sim_child(a, parent, tag, NULL), b, len);
}

static void add_devices(wa_arena *a, wa_node *user, const sim_phone *p)
{
    wa_node *list = sim_child(a, sim_child(a, user, "devices", NULL), "device-list", NULL);
    unsigned i;

    if (!list)
        return;
    wa_node_set_list(list);
    if (!p)
        return;
    for (i = 0; i < SIM_MAX_DEVICES; i++) {
        const sim_device *d = &p->devices[i];
        char id[8], ki[16];
        if (!d->present)
            continue;
        snprintf(id, sizeof id, "%u", i);
        snprintf(ki, sizeof ki, "%u", (unsigned)d->key_index);
        sim_child(a, list, "device", "id", id, "key-index", i ? ki : NULL, NULL);
    }
}

/* The digits of "+15550001111" (or "15550001111@s.whatsapp.net"), 0 on success. */
static int contact_number(const wa_node *contact, char *out, size_t cap)
{
    const uint8_t *p;
    size_t len, i, n = 0;

    if (wa_node_content_bytes(contact, &p, &len) != 0)
        return -1;
    for (i = 0; i < len && p[i] != '@'; i++) {
        if (p[i] >= '0' && p[i] <= '9') {
            if (n + 1 >= cap)
                return -1;
            out[n++] = (char)p[i];
        } else if (p[i] != '+' && p[i] != ' ' && p[i] != '-') {
            return -1;
        }
    }
    out[n] = 0;
    return n ? 0 : -1;
}

wa_node *sim_route_usync(sim_conn *c, const wa_node *iq, wa_arena *a)
{
    sim *s = c->sim;
    const wa_node *us = wa_node_child(iq, "usync");
    const wa_node *query = wa_node_child(us, "query"), *list = wa_node_child(us, "list");
    wa_node *res, *out, *result, *olist;
    unsigned protos = 0;
    size_t nusers = 0;

    if (!us || !query)
        return sim_iq_error(a, iq, 400, "bad-request");
    res = sim_iq_result(a, iq);
    out = sim_child(a, res, "usync", "sid", wa_node_attr(us, "sid"), "index", "0", "last", "true",
                    "mode", wa_node_attr(us, "mode"), "context", wa_node_attr(us, "context"), NULL);
    result = sim_child(a, out, "result", NULL);
    olist = sim_child(a, out, "list", NULL);
    if (!olist)
        return sim_iq_error(a, iq, 500, "internal-server-error");
    WA_NODE_FOREACH(q, query)
    {
        unsigned bit = wa_node_is(q, "devices")             ? P_DEVICES
                       : wa_node_is(q, "contact")           ? P_CONTACT
                       : wa_node_is(q, "lid")               ? P_LID
                       : wa_node_is(q, "status")            ? P_STATUS
                       : wa_node_is(q, "disappearing_mode") ? P_DISAPPEARING
                                                            : 0;
        if (bit && !(protos & bit)) {
            protos |= bit;
            sim_child(a, result, q->tag, NULL);
        }
    }
    WA_NODE_FOREACH(u, list)
    {
        const char *jid = wa_node_attr(u, "jid");
        const wa_node *contact = wa_node_child(u, "contact");
        sim_phone *p = NULL;
        wa_node *user;
        char out_jid[WA_JID_STR_MAX];
        int lid = 0;
        if (!wa_node_is(u, "user") || nusers++ >= SIM_USYNC_MAX_USERS)
            continue;
        if (jid) {
            wa_jid j, nj;
            if (wa_jid_parse(jid, &j) != 0 || !(wa_jid_is_user(&j) || wa_jid_is_lid(&j))) {
                wa_log_info("sim", "usync: skipping user %s", jid);
                continue;
            }
            wa_jid_to_non_ad(&j, &nj);
            if (wa_jid_format(&nj, out_jid, sizeof out_jid) < 0)
                continue;
            p = sim_phone_by_jid(s, out_jid, &lid);
        } else if (contact) {
            char number[SIM_PHONE_LEN + 1];
            if (contact_number(contact, number, sizeof number) != 0)
                continue;
            snprintf(out_jid, sizeof out_jid, "%s@s.whatsapp.net", number);
            p = sim_phone_find(s, number);
        } else {
            continue;
        }
        user = sim_child(a, olist, "user", "jid", out_jid, NULL);
        if (!user)
            return sim_iq_error(a, iq, 500, "internal-server-error");
        if (protos & P_DEVICES)
            add_devices(a, user, p);
        if (protos & P_CONTACT)
            sim_child(a, user, "contact", "type", p ? "in" : "out", NULL);
        if ((protos & P_LID) && p && !lid) {
            char l[SIM_JID_LEN];
            sim_user_jid(p, 1, l, sizeof l);
            sim_child(a, user, "lid", "val", l, NULL);
        }
        if (protos & P_STATUS)
            sim_child(a, user, "status", "t", "0", NULL);
        if (protos & P_DISAPPEARING)
            sim_child(a, user, "disappearing_mode", "duration", "0", "t", "0", NULL);
    }
    return res;
}

static void notify_prekeys_low(sim *s, sim_device *d)
{
    wa_arena a;
    wa_node *n;
    char id[32], t[24], count[16];

    wa_arena_init(&a, 4096);
    sim_make_id(s, id, sizeof id);
    sim_unix_str(t, sizeof t);
    snprintf(count, sizeof count, "%zu", d->keys.nprekeys);
    /* from='@s.whatsapp.net' (the server JID): Baileys compares it with S_WHATSAPP_NET */
    n = sim_node(&a, "notification", "from", "@s.whatsapp.net", "type", "encrypt", "id", id, "t", t,
                 NULL);
    if (sim_child(&a, n, "count", "value", count, NULL))
        sim_route_deliver(s, d, n);
    wa_arena_cleanup(&a);
}

static int add_bundle(sim *s, wa_arena *a, wa_node *list, const char *jid, sim_device *d)
{
    const sim_keys *k = &d->keys;
    wa_node *user = sim_child(a, list, "user", "jid", jid, NULL), *skey, *key;
    uint8_t type = WA_SIGNAL_KEY_TYPE;
    uint32_t pk_id = 0;
    const uint8_t *pk_pub = NULL;
    sim_prekey pk;

    if (!user)
        return WA_ENOMEM;
    be_node(a, user, "registration", k->reg_id, 4);
    sim_bytes(a, sim_child(a, user, "type", NULL), &type, 1);
    sim_bytes(a, sim_child(a, user, "identity", NULL), k->identity_pub, 32);
    skey = sim_child(a, user, "skey", NULL);
    be_node(a, skey, "id", k->spk_id, 3);
    sim_bytes(a, sim_child(a, skey, "value", NULL), k->spk_pub, 32);
    if (!sim_bytes(a, sim_child(a, skey, "signature", NULL), k->spk_sig, 64))
        return WA_ENOMEM;
    if (d->id == 0) {
        const sim_phone_prekey *opk = sim_phone_hand_out_prekey(d->phone);
        if (opk) {
            pk_id = opk->id;
            pk_pub = opk->pub;
        }
    } else {
        size_t before = d->keys.nprekeys;
        if (sim_device_take_prekey(d, &pk) == 0) {
            pk_id = pk.id;
            pk_pub = pk.pub;
        }
        if (before >= PREKEY_LOW && d->keys.nprekeys < PREKEY_LOW)
            notify_prekeys_low(s, d);
    }
    wa_log_debug("sim", "bundle for %s: registration %u, signed prekey %u, prekey %u", jid,
                 (unsigned)k->reg_id, (unsigned)k->spk_id, (unsigned)pk_id);
    if (pk_pub) {
        key = sim_child(a, user, "key", NULL);
        be_node(a, key, "id", pk_id, 3);
        if (!sim_bytes(a, sim_child(a, key, "value", NULL), pk_pub, 32))
            return WA_ENOMEM;
    }
    return 0;
}

wa_node *sim_route_prekey_bundles(sim_conn *c, const wa_node *iq, wa_arena *a)
{
    sim *s = c->sim;
    const wa_node *key = wa_node_child(iq, "key");
    wa_node *res = sim_iq_result(a, iq), *list = sim_child(a, res, "list", NULL);
    size_t n = 0;

    if (!list)
        return sim_iq_error(a, iq, 500, "internal-server-error");
    WA_NODE_FOREACH(u, key)
    {
        const char *jid = wa_node_attr(u, "jid");
        sim_device *d;
        if (!wa_node_is(u, "user") || n++ >= SIM_BUNDLE_MAX_USERS)
            continue;
        d = sim_device_by_jid(s, jid, NULL);
        if (!d) {
            wa_log_info("sim", "prekey bundle: no device %s", jid ? jid : "(none)");
            continue;
        }
        if (add_bundle(s, a, list, jid, d) != 0)
            return sim_iq_error(a, iq, 500, "internal-server-error");
    }
    return res;
}
