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
 * Device-list changes: a device that asks for a user's devices is remembered (user, device,
 * form: a ring of SIM_MAX_DEVSUBS, like the real server's list of who holds a user's device
 * list). When a companion of that user is linked or unlinked, those devices, and every other
 * companion of the user, get <notification type='devices' from=USER><add|remove device_hash>
 * <device jid/><key-index-list ts/></add|remove></notification> (sim_devices_notify), queued
 * while offline and acknowledged like every notification. Baileys 7 then adds the device to
 * its cached list or drops the removed one and its Signal session; whatsmeow updates its cache
 * when device_hash (participantListHashV2 of the new list) matches; Baileys 6.17 only logs it.
 * Without them a sender that cached the list keeps encrypting for the old set of devices until
 * its cache expires (Baileys: 5 minutes).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "crypto/crypto.h"
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
        snprintf(id, sizeof id, "%u", (unsigned)d->id);
        snprintf(ki, sizeof ki, "%u", (unsigned)d->key_index);
        sim_child(a, list, "device", "id", id, "key-index", d->id ? ki : NULL, NULL);
    }
}

/* ---- who holds which device list, and telling them of changes ------------------------------ */

static uint32_t fnv_str(uint32_t h, const char *str)
{
    while (*str)
        h = (h ^ (uint8_t)*str++) * 16777619u;
    return h;
}

static uint32_t devsub_hash(const sim_phone *target, const sim_phone *fetcher, unsigned device,
                            int lid)
{
    uint32_t h = fnv_str(fnv_str(2166136261u, target->number), fetcher->number);

    h = (h ^ device) * 16777619u;
    h = (h ^ (unsigned)lid) * 16777619u;
    return h % SIM_DEVSUB_BUCKETS;
}

/* Device `by` fetched target's device list in PN (lid 0) or LID (1) form. */
static void devsub_remember(sim *s, const sim_device *by, sim_phone *target, int lid)
{
    sim_route *r = sim_route_state(s);
    sim_devsub *e;
    int32_t i, slot, *pp;
    uint32_t h;

    if (!r || !by || by->id == 0)
        return;
    lid = lid ? 1 : 0;
    h = devsub_hash(target, by->phone, by->id, lid);
    for (i = r->devsub_buckets[h]; i != -1; i = r->devsubs[i].next) {
        e = &r->devsubs[i];
        if (e->target == target && e->fetcher == by->phone && e->device == by->id && e->lid == lid)
            return;
    }
    slot = (int32_t)r->devsubs_next;
    r->devsubs_next = (r->devsubs_next + 1) % SIM_MAX_DEVSUBS;
    e = &r->devsubs[slot];
    if (e->fetcher) { /* the ring wrapped: the oldest fetch is forgotten */
        uint32_t old = devsub_hash(e->target, e->fetcher, e->device, e->lid);
        for (pp = &r->devsub_buckets[old]; *pp != -1; pp = &r->devsubs[*pp].next) {
            if (*pp == slot) {
                *pp = e->next;
                break;
            }
        }
    }
    e->fetcher = by->phone;
    e->target = target;
    e->device = by->id;
    e->lid = (uint8_t)lid;
    e->next = r->devsub_buckets[h];
    r->devsub_buckets[h] = slot;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* whatsmeow's participantListHashV2 of p's device list in one form (LID or PN): "2:" and the
 * base64 (no padding) of the first 6 bytes of SHA-256 over the sorted "USER.0:ID@SERVER"
 * strings, concatenated. out gets "" on failure. */
static void device_list_hash(const sim_phone *p, int lid, char out[16])
{
    char jids[SIM_MAX_DEVICES][SIM_JID_LEN], cat[SIM_MAX_DEVICES * SIM_JID_LEN];
    const char *sorted[SIM_MAX_DEVICES];
    uint8_t md[WA_SHA256_LEN];
    size_t n = 0, len = 0, i;

    for (i = 0; i < SIM_MAX_DEVICES; i++) {
        const sim_device *d = &p->devices[i];
        if (!d->present)
            continue;
        snprintf(jids[n], sizeof jids[n], "%s.0:%u@%s", lid ? p->lid : p->number, (unsigned)d->id,
                 lid ? "lid" : "s.whatsapp.net");
        sorted[n] = jids[n];
        n++;
    }
    qsort(sorted, n, sizeof *sorted, cmp_str);
    for (i = 0; i < n; i++) {
        size_t k = strlen(sorted[i]);
        memcpy(cat + len, sorted[i], k);
        len += k;
    }
    out[0] = '\0';
    if (wa_sha256(md, cat, len) != 0)
        return;
    out[0] = '2';
    out[1] = ':';
    wa_base64_encode(out + 2, md, 6, 0); /* 8 characters, no padding */
}

/* The notification in one form (lid 0: PN, with the LID forms in lid= attributes). */
static wa_node *devices_note(sim *s, wa_arena *a, const sim_phone *p, int lid, unsigned id,
                             uint32_t key_index, int added)
{
    char nid[32], t[24], from[SIM_JID_LEN], alt[SIM_JID_LEN], dev[SIM_JID_LEN];
    char dev_alt[SIM_JID_LEN], ki[16], hash[16], lid_hash[16];
    wa_node *n, *change;

    sim_make_id(s, nid, sizeof nid);
    sim_unix_str(t, sizeof t);
    sim_user_jid(p, lid, from, sizeof from);
    sim_user_jid(p, 1, alt, sizeof alt);
    snprintf(dev, sizeof dev, "%s:%u@%s", lid ? p->lid : p->number, id,
             lid ? "lid" : "s.whatsapp.net");
    snprintf(dev_alt, sizeof dev_alt, "%s:%u@lid", p->lid, id);
    snprintf(ki, sizeof ki, "%u", (unsigned)key_index);
    device_list_hash(p, lid, hash);
    device_list_hash(p, 1, lid_hash);
    n = sim_node(a, "notification", "from", from, "type", "devices", "id", nid, "t", t, "lid",
                 lid ? NULL : alt, NULL);
    change = sim_child(a, n, added ? "add" : "remove", "device_hash", hash[0] ? hash : NULL,
                       "device_lid_hash", !lid && lid_hash[0] ? lid_hash : NULL, NULL);
    if (!sim_child(a, change, "device", "jid", dev, "key-index", added ? ki : NULL, "lid",
                   lid ? NULL : dev_alt, NULL) ||
        !sim_child(a, change, "key-index-list", "ts", t, NULL))
        return NULL;
    return n;
}

void sim_devices_notify(sim *s, sim_phone *p, uint16_t id, uint32_t key_index, int added)
{
    sim_route *r = sim_route_state(s);
    wa_node *note[2] = {NULL, NULL}; /* PN, LID form */
    wa_arena a;
    size_t k, told = 0;
    unsigned i;

    wa_arena_init(&a, 16384);
    /* the account's other companions */
    for (i = 1; i < SIM_MAX_DEVICES; i++) {
        sim_device *d = &p->devices[i];
        if (!d->present || d->id == id)
            continue;
        if (!note[0])
            note[0] = devices_note(s, &a, p, 0, id, key_index, added);
        if (note[0]) {
            sim_route_deliver(s, d, note[0]);
            told++;
        }
    }
    /* the devices that fetched this list, in the form they asked in (their caches are keyed
     * by it); an own companion already has the PN form */
    for (k = 0; r && k < SIM_MAX_DEVSUBS; k++) {
        const sim_devsub *e = &r->devsubs[k];
        sim_device *d;
        if (!e->fetcher || e->target != p || (e->fetcher == p && !e->lid))
            continue;
        d = sim_phone_device(e->fetcher, e->device);
        if (!d || d->id == 0 || (e->fetcher == p && d->id == id))
            continue;
        if (!note[e->lid])
            note[e->lid] = devices_note(s, &a, p, e->lid, id, key_index, added);
        if (note[e->lid]) {
            sim_route_deliver(s, d, note[e->lid]);
            told++;
        }
    }
    wa_log_info("sim", "devices of %s: %u %s, %zu devices told", p->number, (unsigned)id,
                added ? "linked" : "unlinked", told);
    wa_arena_cleanup(&a);
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
        if (protos & P_DEVICES) {
            add_devices(a, user, p);
            if (p)
                devsub_remember(s, c->device, p, lid);
        }
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
