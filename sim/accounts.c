/*
 * accounts.c - the simulator's accounts: one virtual primary phone per phone number (device 0,
 * with its own Signal identity and LID) and its companion devices 1, 2, ...
 *
 * Device ids are never reused: each phone counts them up (next_device_id, kept by --state), so a
 * companion linked after another was unlinked gets a new id, and peers' Signal sessions with
 * the old device's address (PHONE:ID) cannot be mistaken for sessions with the new one. The
 * companions live in SIM_MAX_DEVICES slots, found by id (sim_phone_device). Linking and
 * unlinking are announced with devices notifications (usync.c); an unlinked device that is
 * connected gets stream:error 401 with <conflict type='device_removed'/>, as the real server
 * sends it.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "crypto/curve25519.h"
#include "jid/jid.h"
#include "sim.h"
#include "util.h"
#include "wa/error.h"

sim_phone *sim_phone_find(sim *s, const char *number)
{
    sim_phone *p;

    for (p = s->phones; p; p = p->next)
        if (strcmp(p->number, number) == 0)
            return p;
    return NULL;
}

sim_phone *sim_phone_find_lid(sim *s, const char *lid)
{
    sim_phone *p;

    for (p = s->phones; p; p = p->next)
        if (strcmp(p->lid, lid) == 0)
            return p;
    return NULL;
}

static int valid_number(const char *number)
{
    size_t i, n = strlen(number);

    if (n < 5 || n > SIM_PHONE_LEN)
        return 0;
    for (i = 0; i < n; i++)
        if (number[i] < '0' || number[i] > '9')
            return 0;
    return number[0] != '0';
}

/* The virtual phone's signed prekey: XEdDSA by its identity over the 33-byte form 05 || pub
 * (libsignal verifies it that way: PROTOCOL.md §6, Signal notes). */
static int make_phone_spk(sim_phone *p)
{
    sim_keys *k = &p->devices[0].keys;
    uint8_t msg[33];
    int rc;

    rc = wa_x25519_keygen(p->spk_priv, k->spk_pub);
    if (rc)
        return rc;
    msg[0] = WA_SIGNAL_KEY_TYPE;
    memcpy(msg + 1, k->spk_pub, 32);
    k->spk_id = 1;
    return wa_xeddsa_sign(k->spk_sig, p->identity_priv, msg, sizeof msg);
}

/* One more batch of one-time prekeys; when the store is full, the oldest handed-out keys make
 * room (a client that never used them cannot start a session with them any more). */
static int make_phone_prekeys(sim_phone *p)
{
    size_t i, room;

    if (!p->opks) {
        p->opks = calloc(SIM_PHONE_PREKEY_MAX, sizeof *p->opks);
        if (!p->opks)
            return WA_ENOMEM;
    }
    room = SIM_PHONE_PREKEY_MAX - p->nopks;
    if (room < SIM_PHONE_PREKEY_BATCH) {
        size_t drop = SIM_PHONE_PREKEY_BATCH - room, kept = 0;
        for (i = 0; i < p->nopks; i++) {
            if (drop && p->opks[i].handed_out) {
                drop--;
                continue;
            }
            p->opks[kept++] = p->opks[i];
        }
        wa_wipe(p->opks + kept, (p->nopks - kept) * sizeof *p->opks);
        p->nopks = kept;
        if (SIM_PHONE_PREKEY_MAX - p->nopks < SIM_PHONE_PREKEY_BATCH)
            return WA_ELIMIT; /* all unused: nothing to make */
    }
    for (i = 0; i < SIM_PHONE_PREKEY_BATCH; i++) {
        sim_phone_prekey *k = &p->opks[p->nopks];
        /* ids 1..0xFFFFFF (3 bytes on the wire), never 0 (libsignal-node drops id 0) */
        if (p->next_opk_id == 0 || p->next_opk_id > 0xFFFFFF)
            p->next_opk_id = 1;
        if (wa_x25519_keygen(k->priv, k->pub) != 0)
            return WA_ECRYPTO;
        k->id = p->next_opk_id++;
        k->handed_out = 0;
        p->nopks++;
    }
    return 0;
}

static const sim_phone_prekey *hand_out(sim_phone *p)
{
    size_t i;

    for (i = 0; i < p->nopks; i++) {
        if (!p->opks[i].handed_out) {
            p->opks[i].handed_out = 1;
            sim_state_phone_prekey_handed(p, p->opks[i].id);
            return &p->opks[i];
        }
    }
    return NULL;
}

const sim_phone_prekey *sim_phone_hand_out_prekey(sim_phone *p)
{
    const sim_phone_prekey *k = hand_out(p);

    if (k)
        return k;
    if (make_phone_prekeys(p) != 0)
        return NULL;
    sim_state_phone_prekeys(p);
    return hand_out(p);
}

static void free_phone(sim_phone *p)
{
    unsigned i;

    for (i = 0; i < SIM_MAX_DEVICES; i++) {
        sim_route_drop_queue(&p->devices[i]);
        sim_keys_cleanup(&p->devices[i].keys);
    }
    sim_vphone_free(p);
    sim_state_phone_free(p);
    if (p->opks) {
        wa_wipe(p->opks, SIM_PHONE_PREKEY_MAX * sizeof *p->opks);
        free(p->opks);
    }
    wa_wipe(p->identity_priv, sizeof p->identity_priv);
    wa_wipe(p->spk_priv, sizeof p->spk_priv);
    wa_wipe(p->appstate_key, sizeof p->appstate_key);
    free(p);
}

sim_phone *sim_phone_get(sim *s, const char *number)
{
    sim_phone *p = sim_phone_find(s, number);
    sim_device *d;
    uint32_t r;

    if (p || !valid_number(number))
        return p;
    p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->sim = s;
    snprintf(p->number, sizeof p->number, "%s", number);
    /* a LID is an opaque number of about 15 digits, unrelated to the phone number */
    do {
        uint64_t v = 0;
        wa_random(&v, sizeof v);
        snprintf(p->lid, sizeof p->lid, "%llu",
                 (unsigned long long)(100000000000000ULL + v % 899999999999999ULL));
    } while (sim_phone_find_lid(s, p->lid));
    if (wa_x25519_keygen(p->identity_priv, p->identity_pub) != 0 || make_phone_spk(p) != 0 ||
        make_phone_prekeys(p) != 0) {
        free_phone(p);
        return NULL;
    }
    /* the app-state sync key the phone shares with every companion (queue.c) */
    wa_random(p->appstate_key_id + 2, 4);
    wa_random(p->appstate_key, sizeof p->appstate_key);
    p->appstate_key_ts = (int64_t)time(NULL) * 1000;
    p->next_key_index = 1;
    p->next_device_id = 1;
    snprintf(p->push_name, sizeof p->push_name, "Phone %s", number);
    d = &p->devices[0];
    d->phone = p;
    d->id = 0;
    d->present = 1;
    memcpy(d->keys.identity_pub, p->identity_pub, 32);
    wa_random(&r, sizeof r);
    d->keys.reg_id = 1 + r % 16380;
    p->next = s->phones;
    s->phones = p;
    sim_state_phone_save(p);
    return p;
}

sim_device *sim_phone_device(sim_phone *p, unsigned id)
{
    unsigned i;

    if (!p || id > SIM_DEVICE_ID_MAX)
        return NULL;
    if (id == 0)
        return p->devices[0].present ? &p->devices[0] : NULL;
    for (i = 1; i < SIM_MAX_DEVICES; i++)
        if (p->devices[i].present && p->devices[i].id == id)
            return &p->devices[i];
    return NULL;
}

sim_device *sim_device_find(sim *s, const char *user, unsigned device)
{
    sim_phone *p = sim_phone_find(s, user);

    if (!p)
        p = sim_phone_find_lid(s, user);
    return sim_phone_device(p, device);
}

sim_device *sim_device_new(sim_phone *p)
{
    unsigned i;

    if (p->next_device_id == 0)
        p->next_device_id = 1;
    if (p->next_device_id > SIM_DEVICE_ID_MAX) {
        wa_log_warn("sim", "phone %s: device ids used up", p->number);
        return NULL;
    }
    for (i = 1; i < SIM_MAX_DEVICES; i++) {
        sim_device *d = &p->devices[i];
        if (!d->present && !d->phone) { /* a pending pairing holds d->phone */
            memset(d, 0, sizeof *d);
            d->phone = p;
            d->id = (uint16_t)p->next_device_id++;
            d->present = 1;
            d->key_index = p->next_key_index++;
            return d;
        }
    }
    return NULL;
}

void sim_device_linked(sim *s, sim_device *d)
{
    if (d->present && d->id != 0)
        sim_devices_notify(s, d->phone, d->id, d->key_index, 1);
}

void sim_keys_cleanup(sim_keys *k)
{
    free(k->prekeys);
    k->prekeys = NULL;
    k->nprekeys = k->prekeys_cap = 0;
}

int sim_keys_add_prekey(sim_keys *k, uint32_t id, const uint8_t pub[32])
{
    size_t i;

    for (i = 0; i < k->nprekeys; i++) {
        if (k->prekeys[i].id == id) {
            memcpy(k->prekeys[i].pub, pub, 32);
            return 0;
        }
    }
    if (k->nprekeys >= SIM_MAX_PREKEYS)
        return WA_ELIMIT;
    if (k->nprekeys == k->prekeys_cap) {
        size_t ncap = k->prekeys_cap ? k->prekeys_cap * 2 : 32;
        sim_prekey *np = realloc(k->prekeys, ncap * sizeof *np);
        if (!np)
            return WA_ENOMEM;
        k->prekeys = np;
        k->prekeys_cap = ncap;
    }
    k->prekeys[k->nprekeys].id = id;
    memcpy(k->prekeys[k->nprekeys].pub, pub, 32);
    k->nprekeys++;
    return 0;
}

int sim_keys_take_prekey(sim_keys *k, sim_prekey *out)
{
    if (k->nprekeys == 0)
        return WA_ENOTFOUND;
    *out = k->prekeys[0];
    memmove(k->prekeys, k->prekeys + 1, (k->nprekeys - 1) * sizeof *k->prekeys);
    k->nprekeys--;
    return 0;
}

int sim_device_take_prekey(sim_device *d, sim_prekey *out)
{
    int rc = sim_keys_take_prekey(&d->keys, out);

    if (rc == 0)
        sim_state_device_prekey_taken(d, out->id);
    return rc;
}

void sim_free_phones(sim *s)
{
    sim_phone *p = s->phones, *next;

    sim_route_cleanup(s);
    while (p) {
        next = p->next;
        free_phone(p);
        p = next;
    }
    s->phones = NULL;
}

void sim_user_jid(const sim_phone *p, int lid, char *out, size_t cap)
{
    snprintf(out, cap, "%s@%s", lid ? p->lid : p->number, lid ? "lid" : "s.whatsapp.net");
}

void sim_device_jid(const sim_device *d, int lid, char *out, size_t cap)
{
    const sim_phone *p = d->phone;

    if (d->id)
        snprintf(out, cap, "%s:%u@%s", lid ? p->lid : p->number, (unsigned)d->id,
                 lid ? "lid" : "s.whatsapp.net");
    else
        sim_user_jid(p, lid, out, cap);
}

static sim_phone *phone_of(sim *s, const wa_jid *j, int *lid)
{
    if (j->agent || j->integrator)
        return NULL;
    if (wa_jid_is_user(j)) {
        if (lid)
            *lid = 0;
        return sim_phone_find(s, j->user);
    }
    if (wa_jid_is_lid(j)) {
        if (lid)
            *lid = 1;
        return sim_phone_find_lid(s, j->user);
    }
    return NULL;
}

sim_phone *sim_phone_by_jid(sim *s, const char *jid, int *lid)
{
    wa_jid j;

    if (!jid || wa_jid_parse(jid, &j) != 0)
        return NULL;
    return phone_of(s, &j, lid);
}

sim_device *sim_device_by_jid(sim *s, const char *jid, int *lid)
{
    sim_phone *p;
    wa_jid j;

    if (!jid || wa_jid_parse(jid, &j) != 0)
        return NULL;
    p = phone_of(s, &j, lid);
    return sim_phone_device(p, j.device);
}

void sim_device_remove(sim *s, sim_device *d)
{
    sim_phone *p = d->phone;
    uint16_t id = d->id;
    uint32_t key_index = d->key_index;

    if (d->conn) {
        sim_conn *c = d->conn;
        /* what the real server sends when the phone unlinks a companion (whatsmeow
         * connectionevents.go: code 401 + conflict device_removed is LoggedOut) */
        sim_send_stream_error(c, "401", "device_removed");
        c->device = NULL;
    }
    sim_state_device_removed(d);
    sim_route_drop_queue(d);
    sim_keys_cleanup(&d->keys);
    memset(d, 0, sizeof *d);
    if (p && id != 0)
        sim_devices_notify(s, p, id, key_index, 0);
}

/* The phone is reinstalled (a new phone, a restore without keys): a new identity key pair,
 * signed prekey and one-time prekeys; its own Signal state (sessions, sender keys) starts
 * afresh. Companions stay linked (the real phone would unlink them: not needed by the tests
 * that use this). With notify, the server tells the devices that fetched this phone's device
 * list (usync), in the form they asked in, with <notification from=USER type='encrypt' id t>
 * <identity/></notification> (whatsmeow handleEncryptNotification, Baileys 7
 * handleEncryptNotification). *told (may be NULL) = devices told. Without --state only (the
 * state file would give the phone its old sessions back). 0, WA_ECRYPTO, WA_ENOMEM. */
int sim_phone_reinstall(sim *s, sim_phone *p, int notify, size_t *told)
{
    sim_route *r = sim_route_state(s);
    wa_node *note[2] = {NULL, NULL};
    wa_arena a;
    size_t k, n = 0;
    int rc;

    sim_vphone_free(p);
    rc = wa_x25519_keygen(p->identity_priv, p->identity_pub);
    if (rc == 0)
        rc = make_phone_spk(p);
    if (rc == 0) {
        if (p->opks)
            wa_wipe(p->opks, p->nopks * sizeof *p->opks);
        p->nopks = 0;
        rc = make_phone_prekeys(p);
    }
    if (rc)
        return rc;
    memcpy(p->devices[0].keys.identity_pub, p->identity_pub, 32);
    sim_state_phone_save(p);
    wa_log_info("sim", "phone %s reinstalled: new identity", p->number);
    wa_arena_init(&a, 4096);
    for (k = 0; notify && r && k < SIM_MAX_DEVSUBS; k++) {
        const sim_devsub *e = &r->devsubs[k];
        sim_device *d;
        if (!e->fetcher || e->target != p || e->fetcher == p)
            continue;
        d = sim_phone_device(e->fetcher, e->device);
        if (!d || d->id == 0)
            continue;
        if (!note[e->lid]) {
            char nid[32], t[24], from[SIM_JID_LEN];
            sim_make_id(s, nid, sizeof nid);
            sim_unix_str(t, sizeof t);
            sim_user_jid(p, e->lid, from, sizeof from);
            note[e->lid] = sim_node(&a, "notification", "from", from, "type", "encrypt", "id", nid,
                                    "t", t, NULL);
            if (!note[e->lid] || !sim_child(&a, note[e->lid], "identity", NULL)) {
                note[e->lid] = NULL;
                continue;
            }
        }
        sim_route_deliver(s, d, note[e->lid]);
        n++;
    }
    wa_arena_cleanup(&a);
    if (told)
        *told = n;
    return 0;
}
