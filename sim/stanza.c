/*
 * stanza.c - the simulator's answers to what clients send after the handshake: every iq gets
 * a well-formed result (or the error a fault asks for), never silence (PROTOCOL.md §5).
 *
 * Handled here: md (pair-device result, pair-device-sign via pair.c, link codes), encrypt
 * (prekey count, upload, rotate, digest; bundles via route.c), passive, w (props), blocklist,
 * privacy (get; readreceipts set, per phone), w:p (ping), presence, ack, md
 * remove-companion-device (a companion's own logout).
 * Messages, receipts, notifications, usync and groups go to route.c (sim_route_*), which may not
 * exist for every kind yet: those get a bare result.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/log.h"
#include "core/util.h"
#include "jid/jid.h"
#include "sim.h"
#include "util.h"
#include "wa/error.h"

static const sim_iq_fault *iq_fault(sim *s, const char *xmlns)
{
    size_t i;

    if (!xmlns)
        return NULL;
    for (i = 0; i < WA_ARRAY_SIZE(s->iq_faults); i++)
        if (s->iq_faults[i].active && strcmp(s->iq_faults[i].xmlns, xmlns) == 0)
            return &s->iq_faults[i];
    return NULL;
}

static int content_is(const wa_node *n, size_t len, const uint8_t **p)
{
    size_t l;

    if (!n || wa_node_content_bytes(n, p, &l) != 0 || l != len)
        return 0;
    return 1;
}

static sim_keys *conn_keys(sim_conn *c)
{
    if (c->device)
        return &c->device->keys;
    return &c->reg_keys;
}

/* <iq xmlns='encrypt' type='set'><registration/><type/><identity/><list><key>..</list><skey/> */
static int store_prekeys(sim_conn *c, const wa_node *iq)
{
    sim_keys *k = conn_keys(c);
    const wa_node *list = wa_node_child(iq, "list"), *skey = wa_node_child(iq, "skey");
    const wa_node *reg = wa_node_child(iq, "registration"), *ident = wa_node_child(iq, "identity");
    const uint8_t *p;
    int rc;

    if (content_is(reg, 4, &p))
        k->reg_id = sim_be_bytes(p, 4);
    if (content_is(ident, 32, &p)) {
        if (c->device && memcmp(k->identity_pub, p, 32) != 0)
            wa_log_warn("sim", "conn %llu: identity key changed in upload",
                        (unsigned long long)c->id);
        memcpy(k->identity_pub, p, 32);
    }
    if (skey) {
        const uint8_t *id, *val, *sig;
        if (!content_is(wa_node_child(skey, "id"), 3, &id) ||
            !content_is(wa_node_child(skey, "value"), 32, &val) ||
            !content_is(wa_node_child(skey, "signature"), 64, &sig))
            return WA_EPROTO;
        k->spk_id = sim_be_bytes(id, 3);
        memcpy(k->spk_pub, val, 32);
        memcpy(k->spk_sig, sig, 64);
    }
    WA_NODE_FOREACH(key, list)
    {
        const uint8_t *id, *val;
        if (!wa_node_is(key, "key"))
            continue;
        if (!content_is(wa_node_child(key, "id"), 3, &id) ||
            !content_is(wa_node_child(key, "value"), 32, &val))
            return WA_EPROTO;
        rc = sim_keys_add_prekey(k, sim_be_bytes(id, 3), val);
        if (rc)
            return rc;
    }
    sim_state_device_save(c->device); /* --state (no-op while registering: device NULL) */
    return 0;
}

static wa_node *be_bytes_node(wa_arena *a, wa_node *parent, const char *tag, uint32_t v, size_t len)
{
    uint8_t b[4];
    size_t i;

    for (i = 0; i < len; i++)
        b[i] = (uint8_t)(v >> (8 * (len - 1 - i)));
    return sim_bytes(a, sim_child(a, parent, tag, NULL), b, len);
}

/* whatsmeow's digest: SHA-1 over identity || skey value || skey signature || prekey values. */
static void add_digest(wa_arena *a, wa_node *res, const sim_keys *k)
{
    wa_node *d = sim_child(a, res, "digest", NULL), *list;
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    uint8_t hash[20], type = 5;
    size_t i;

    sim_bytes(a, sim_child(a, d, "type", NULL), &type, 1);
    be_bytes_node(a, d, "registration", k->reg_id, 4);
    sim_bytes(a, sim_child(a, d, "identity", NULL), k->identity_pub, 32);
    {
        wa_node *sk = sim_child(a, d, "skey", NULL);
        be_bytes_node(a, sk, "id", k->spk_id, 3);
        sim_bytes(a, sim_child(a, sk, "value", NULL), k->spk_pub, 32);
        sim_bytes(a, sim_child(a, sk, "signature", NULL), k->spk_sig, 64);
    }
    list = sim_child(a, d, "list", NULL);
    if (!sha || EVP_DigestInit_ex(sha, EVP_sha1(), NULL) != 1) {
        EVP_MD_CTX_free(sha);
        return;
    }
    EVP_DigestUpdate(sha, k->identity_pub, 32);
    EVP_DigestUpdate(sha, k->spk_pub, 32);
    EVP_DigestUpdate(sha, k->spk_sig, 64);
    for (i = 0; i < k->nprekeys; i++) {
        be_bytes_node(a, list, "id", k->prekeys[i].id, 3);
        EVP_DigestUpdate(sha, k->prekeys[i].pub, 32);
    }
    EVP_DigestFinal_ex(sha, hash, NULL);
    EVP_MD_CTX_free(sha);
    sim_bytes(a, sim_child(a, d, "hash", NULL), hash, sizeof hash);
}

/* <iq xmlns='md' type='set'><remove-companion-device jid=.. reason=../></iq>: a companion logs
 * itself out (Baileys' logout()), and the phone unlinks it as if the user had: the iq result,
 * then stream:error 401 to the connection, and the device is gone (later logins get 401). A
 * companion may only remove itself. */
static wa_node *remove_companion(sim_conn *c, const wa_node *iq, wa_arena *a)
{
    const wa_node *rm = wa_node_child(iq, "remove-companion-device");
    const char *jid = wa_node_attr(rm, "jid");
    sim_device *d = NULL;
    wa_node *res;
    wa_jid j;

    if (c->device && jid && wa_jid_parse(jid, &j) == 0)
        d = sim_device_find(c->sim, j.user, j.device);
    if (!d)
        return sim_iq_error(a, iq, 404, "item-not-found");
    if (d != c->device)
        return sim_iq_error(a, iq, 403, "forbidden");
    res = sim_iq_result(a, iq);
    if (!res || sim_conn_send(c, res) != 0)
        return NULL;
    wa_log_info("sim", "conn %llu: device %s:%u logged out (%s)", (unsigned long long)c->id,
                d->phone->number, (unsigned)d->id,
                wa_node_attr(rm, "reason") ? wa_node_attr(rm, "reason") : "no reason");
    sim_device_remove(c->sim, d);
    return NULL;
}

static void handle_iq(sim_conn *c, const wa_node *iq, wa_arena *a)
{
    sim *s = c->sim;
    const char *xmlns = wa_node_attr(iq, "xmlns"), *type = wa_node_attr(iq, "type");
    const sim_iq_fault *f;
    wa_node *res = NULL;
    char buf[32];
    int set_active = -1; /* passive iq: 1 active, 0 passive */

    s->stats.iqs++;
    if (!type)
        type = "";
    if (strcmp(type, "result") == 0 || strcmp(type, "error") == 0) {
        /* answers to our own iqs: pair-device (nothing to do), pair-success (pair.c) */
        if (wa_node_child(iq, "pair-device-sign"))
            sim_pair_device_signed(c, iq);
        return;
    }
    f = iq_fault(s, xmlns);
    if (f && !wa_node_child(iq, "ping")) {
        s->stats.faults_iq_errors++;
        res = sim_iq_error(a, iq, f->code, "fault injected");
        sim_conn_send(c, res);
        return;
    }
    if (!xmlns)
        xmlns = "";
    if (strcmp(xmlns, "encrypt") == 0) {
        if (strcmp(type, "get") == 0 && wa_node_child(iq, "count")) {
            res = sim_iq_result(a, iq);
            snprintf(buf, sizeof buf, "%zu", conn_keys(c)->nprekeys);
            sim_child(a, res, "count", "value", buf, NULL);
        } else if (strcmp(type, "get") == 0 && wa_node_child(iq, "digest")) {
            res = sim_iq_result(a, iq);
            add_digest(a, res, conn_keys(c));
        } else if (strcmp(type, "get") == 0 && wa_node_child(iq, "key")) {
            res = sim_route_prekey_bundles(c, iq, a);
        } else if (strcmp(type, "set") == 0 && wa_node_child(iq, "rotate")) {
            const wa_node *rot = wa_node_child(iq, "rotate");
            if (store_prekeys(c, rot) == 0)
                res = sim_iq_result(a, iq);
            else
                res = sim_iq_error(a, iq, 400, "bad-request");
        } else if (strcmp(type, "set") == 0) {
            if (store_prekeys(c, iq) == 0)
                res = sim_iq_result(a, iq);
            else
                res = sim_iq_error(a, iq, 400, "bad-request");
        }
    } else if (strcmp(xmlns, "passive") == 0) {
        if (c->device)
            c->device->passive_active = wa_node_child(iq, "active") != NULL;
        if (c->device && strcmp(type, "set") == 0)
            set_active = wa_node_child(iq, "active") != NULL;
        res = sim_iq_result(a, iq);
    } else if (strcmp(xmlns, "w") == 0 && wa_node_child(iq, "props")) {
        wa_node *props;
        res = sim_iq_result(a, iq);
        props = sim_child(a, res, "props", "protocol", "2", "hash", "sim1", NULL);
        sim_child(a, props, "prop", "name", "sim", "value", "1", NULL);
    } else if (strcmp(xmlns, "blocklist") == 0) {
        res = sim_iq_result(a, iq);
        sim_child(a, res, "list", NULL);
    } else if (strcmp(xmlns, "privacy") == 0 && strcmp(type, "get") == 0) {
        static const char *const cats[][2] = {
            {"last", "all"},         {"online", "all"},   {"profile", "all"}, {"status", "all"},
            {"readreceipts", "all"}, {"groupadd", "all"}, {"calladd", "all"}};
        int none = c->device && c->device->phone && c->device->phone->readreceipts_none;
        wa_node *pv;
        size_t i;
        res = sim_iq_result(a, iq);
        pv = sim_child(a, res, "privacy", NULL);
        for (i = 0; i < WA_ARRAY_SIZE(cats); i++)
            sim_child(a, pv, "category", "name", cats[i][0], "value",
                      none && !strcmp(cats[i][0], "readreceipts") ? "none" : cats[i][1], NULL);
    } else if (strcmp(xmlns, "privacy") == 0 && strcmp(type, "set") == 0 &&
               wa_node_child(iq, "privacy")) {
        /* <privacy><category name='readreceipts' value='all|none'/></privacy> (Baileys
         * updateReadReceiptsPrivacy); other categories are accepted and not kept */
        WA_NODE_FOREACH(cat, wa_node_child(iq, "privacy"))
        {
            const char *name = wa_node_attr(cat, "name"), *value = wa_node_attr(cat, "value");
            if (!name || strcmp(name, "readreceipts") != 0)
                continue;
            if (!value || (strcmp(value, "all") != 0 && strcmp(value, "none") != 0))
                res = sim_iq_error(a, iq, 400, "bad-request");
            else if (c->device && c->device->phone)
                c->device->phone->readreceipts_none = strcmp(value, "none") == 0;
        }
        if (!res)
            res = sim_iq_result(a, iq);
    } else if (strcmp(xmlns, "md") == 0 && wa_node_child(iq, "link_code_companion_reg")) {
        res = sim_pair_link_code_iq(c, iq, a);
    } else if (strcmp(xmlns, "md") == 0 && strcmp(type, "set") == 0 &&
               wa_node_child(iq, "remove-companion-device")) {
        res = remove_companion(c, iq, a);
        if (!res) /* answered, or the connection is gone with the device */
            return;
    } else if (strcmp(xmlns, "usync") == 0) {
        res = sim_route_usync(c, iq, a);
    } else if (strcmp(xmlns, "w:g2") == 0) {
        res = sim_route_group_iq(c, iq, a);
    } else if (strcmp(xmlns, "w:sync:app:state") == 0) {
        res = sim_route_app_state(c, iq, a);
    }
    if (!res) /* anything else (w:p ping, w:stats, ...): a bare result */
        res = sim_iq_result(a, iq);
    if (res)
        sim_conn_send(c, res);
    if (set_active >= 0)
        sim_route_set_active(c, set_active); /* queue.c: offline delivery waits for it */
}

void sim_handle_stanza(sim_conn *c, const wa_node *n)
{
    wa_arena a;

    wa_arena_init(&a, 8u << 20);
    if (wa_node_is(n, "iq")) {
        handle_iq(c, n, &a);
    } else if (c->state != SIM_CONN_ONLINE) {
        /* an unpaired client has nothing else to say */
    } else if (wa_node_is(n, "message")) {
        sim_route_message(c, n, &a);
    } else if (wa_node_is(n, "receipt")) {
        sim_route_receipt(c, n, &a);
    } else if (wa_node_is(n, "presence")) {
        const char *name = wa_node_attr(n, "name");
        if (name && c->device)
            snprintf(c->device->push_name, sizeof c->device->push_name, "%s", name);
        sim_route_presence(c, n, &a);
    } else if (wa_node_is(n, "chatstate")) {
        sim_route_chatstate(c, n, &a);
    } else if (wa_node_is(n, "ack")) {
        sim_route_ack(c, n);
    }
    /* ack, ib (unified_session, ...), notification answers: nothing to do */
    wa_arena_cleanup(&a);
}
