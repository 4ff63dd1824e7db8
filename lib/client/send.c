/*
 * send.c - sending end-to-end encrypted 1:1 messages (PROTOCOL.md §6, Baileys 7
 * lib/Socket/messages-send.js relayMessage, whatsmeow send.go), and re-sending them when a
 * device answers with a retry receipt.
 *
 * A send is a job that moves through stages, each ending with an iq answer or at once:
 *   DEVICES  the device lists of the peer and of our own account (usync; cached: devices.c)
 *   KEYS     prekey bundles for the devices we have no session with (one <key> iq), sessions
 *            started from them
 *   (encrypt) the serialized Message, padded, encrypted for every peer device and, wrapped in
 *            deviceSentMessage { destinationJid, message }, for every other device of ours,
 *            with ONE batch load of the sessions per side (wa_signal_encrypt_many); the advanced
 *            sessions and a copy of the message (for retries) commit in one store transaction
 *            BEFORE the stanza leaves
 *   ACK      <message id to type [edit]><participants><to jid><enc v='2' type>..</enc></to>..
 *            </participants>[<device-identity/>]</message> sent; the server's <ack class=
 *            'message' id> ends the job: sent(id, 0), or sent(id, WA_EPROTO) with an error
 *            attribute, sent(id, WA_ETIMEDOUT) when no ack came within iq_timeout_ms.
 * <device-identity> (our ADVSignedDeviceIdentity with the account key) rides along whenever
 * one of the encs is a pkmsg, so the receiver can check that this device belongs to the account.
 *
 * Retry receipts (PROTOCOL.md §6, Baileys 7 sendMessagesAgain): <receipt type='retry' from=DEV
 * id><retry count/><registration/>[<keys>..</keys>]</receipt>. The session with DEV is rebuilt
 * from a fresh bundle - the <keys> in the receipt when present, else one fetched from the server
 * - and the message (from the store's recent sends) is re-encrypted for DEV alone: a pkmsg, which
 * decrypts whatever state the receiver lost. The re-send is <message id to=DEV type
 * device_fanout='false' [recipient=CHAT for our own devices]><enc v='2' type count=N>..</enc>
 * <device-identity/></message>. At most WA__RESEND_MAX re-sends per (message, device).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "client/client_int.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/util.h"
#include "crypto/curve25519.h"
#include "wa/error.h"

#define LOG "client"

enum { JOB_GROUP = 1, JOB_DEVICES, JOB_KEYS, JOB_ACK };

struct wa__job {
    uint32_t seq;
    int stage;
    uint64_t deadline; /* JOB_ACK: the server's ack is due */
    char id[WA_CLIENT_MSG_ID_MAX];
    wa_jid chat;                   /* the peer user (non-AD) */
    char chat_str[WA_JID_STR_MAX]; /* its string form (destinationJid, retry cache) */
    wa__outgoing out;
    /* a re-send after a retry receipt: one device */
    int resend;
    wa_jid target;
    unsigned count;
    int have_bundle; /* the receipt carried <keys> */
    wa_signal_bundle bundle;
    int keys_fetched; /* bundles were asked for once: devices still without a session are
                       * left out rather than asked for again */
    int group;        /* chat is a group: sender keys */
    int turn_wait;    /* an older send to the chat has not gone out: waits its turn */
};

typedef struct wa__resend_seen {
    char id[WA_CLIENT_MSG_ID_MAX];
    char device[WA_JID_STR_MAX];
    unsigned count;
} resend_seen;

/* One device of a fan-out. */
typedef struct target {
    wa_jid jid;
    wa_signal_addr addr;
    int own;                       /* another device of ours: gets the deviceSentMessage (1:1) */
    int skdm;                      /* group: has no copy of our sender key yet */
    char name[WA_SIGNAL_NAME_MAX]; /* group: addr's libsignal name (skdm_sent key) */
} target;

static void job_free(wa__job *j)
{
    if (!j)
        return;
    wa_buf_wipe_cleanup(&j->out.plain);
    wa_wipe(j, sizeof *j);
    wa_free(j);
}

static wa__job **slot_of(wa_client *c, uint32_t seq)
{
    size_t i;

    for (i = 0; i < WA__MAX_JOBS; i++)
        if (c->jobs[i] && c->jobs[i]->seq == seq)
            return &c->jobs[i];
    return NULL;
}

/* End a job: take it out of the table, report (not for internal re-sends), free it. */
static void finish(wa_client *c, wa__job **slot, int err)
{
    wa__job *j = *slot;
    char id[WA_CLIENT_MSG_ID_MAX];
    int report = !j->resend;

    *slot = NULL;
    memcpy(id, j->id, sizeof id);
    if (err)
        wa_log_warn(LOG, "[%s] %s %s to %s failed: %s", c->account_name,
                    j->resend ? "re-send of" : "message", j->id, j->chat_str, wa_strerror(err));
    job_free(j);
    if (report && c->cbs.sent && !c->freeing)
        c->cbs.sent(c, id, err, c->user_data);
}

/* ---- order ---------------------------------------------------------------------------------- */

/* Whether an older send to j's chat has not gone out yet. Messages to a chat leave in the
 * order they were sent: a send that finds the devices and sessions cached must not overtake
 * one still fetching them (it would, as each job goes on with its own iq answers). */
static int behind(const wa_client *c, const wa__job *j)
{
    size_t i;

    for (i = 0; i < WA__MAX_JOBS; i++) {
        const wa__job *k = c->jobs[i];
        if (k && k != j && !k->resend && k->seq < j->seq && k->stage != JOB_ACK &&
            !strcmp(k->chat_str, j->chat_str))
            return 1;
    }
    return 0;
}

static int advance(wa_client *c, wa__job **slot);

/* Let the waiting sends of chat go on, oldest first, while nothing older is pending. */
static void take_turns(wa_client *c, const char *chat)
{
    unsigned gen = c->gen;
    char key[WA_JID_STR_MAX];
    int rc;

    snprintf(key, sizeof key, "%s", chat); /* chat may be freed below */
    for (;;) {
        wa__job **slot = NULL;
        size_t i;
        for (i = 0; i < WA__MAX_JOBS; i++) {
            wa__job *k = c->jobs[i];
            if (k && k->turn_wait && !strcmp(k->chat_str, key) && (!slot || k->seq < (*slot)->seq))
                slot = &c->jobs[i];
        }
        if (!slot || behind(c, *slot))
            return;
        (*slot)->turn_wait = 0;
        rc = advance(c, slot);
        if (rc && *slot) {
            finish(c, slot, rc);
            if (!wa__client_alive(c, gen))
                return;
            continue;
        }
        if (*slot && (*slot)->stage != JOB_ACK)
            return; /* fetching: its iq answer goes on (wa__send_iq_answer) */
    }
}

/* ---- devices -------------------------------------------------------------------------------- */

/* The users a send goes to (allocated into *out, *n): the peer and ourselves in the chat's
 * addressing form, or the group's members and ourselves. */
static int job_users(wa_client *c, const wa__job *j, wa_jid **out, size_t *n)
{
    const wa_jid *members = NULL;
    wa_jid me, *u;
    size_t k = 0, i, count = 1;
    int nm = 0, mine = 0;

    if (wa__e2e_me(c, !j->group && wa_jid_is_lid(&j->chat), &me) != 0 && wa__e2e_me(c, 0, &me) != 0)
        return WA_ESTATE;
    if (j->group) {
        nm = wa__group_members(c, &j->chat, &members);
        if (nm < 0)
            return WA_ENOTFOUND;
        count = (size_t)nm;
    }
    u = wa_calloc(count + 1, sizeof *u);
    if (!u)
        return WA_ENOMEM;
    if (!j->group)
        u[k++] = j->chat;
    for (i = 0; j->group && i < (size_t)nm; i++)
        u[k++] = members[i];
    for (i = 0; i < k; i++)
        mine |= wa_jid_same_user(&u[i], &me);
    if (!mine)
        u[k++] = me;
    *out = u;
    *n = k;
    return 0;
}

static int stage_group(wa_client *c, wa__job *j)
{
    const wa_jid *members;

    if (wa__group_members(c, &j->chat, &members) >= 0) {
        j->stage = JOB_DEVICES;
        return 1;
    }
    j->stage = JOB_GROUP;
    return wa__group_query_for_job(c, &j->chat, j->seq);
}

static int stage_devices(wa_client *c, wa__job *j)
{
    wa_jid *users = NULL, *missing = NULL;
    uint16_t ids[WA__DEVICES_MAX];
    size_t n = 0, m = 0, i;
    wa_arena a;
    char iqid[WA__IQ_ID_MAX];
    int rc;

    rc = job_users(c, j, &users, &n);
    if (rc == WA_ENOTFOUND && j->group)
        return stage_group(c, j); /* the member list went stale */
    if (rc)
        return rc;
    missing = wa_calloc(n, sizeof *missing);
    if (!missing) {
        wa_free(users);
        return WA_ENOMEM;
    }
    for (i = 0; i < n; i++)
        if (wa__devices_get(c, &users[i], ids) < 0)
            missing[m++] = users[i];
    if (m == 0) {
        j->stage = JOB_KEYS;
        rc = 1; /* go on at once */
    } else {
        wa_arena_init(&a, 16384 + m * 256);
        wa__iq_make_id(&c->iqs, iqid);
        rc = wa__client_send_iq(c, wa__devices_query(c, &a, iqid, missing, m), iqid, WA__IQ_USYNC,
                                j->seq);
        wa_arena_cleanup(&a);
        j->stage = JOB_DEVICES;
    }
    wa_free(users);
    wa_free(missing);
    return rc;
}

/* Group targets: which devices still need our sender key (skdm_sent). */
static int mark_skdm_needs(wa_client *c, const wa__job *j, target *t, size_t n)
{
    size_t i;
    int rc;

    for (i = 0; i < n; i++) {
        wa_store_addr sa;
        if (wa_signal_addr_name(&t[i].addr, t[i].name, sizeof t[i].name) < 0)
            return WA_EINVAL;
        sa.name = t[i].name;
        sa.device = t[i].addr.device;
        rc = wa_store_skdm_has(c->store, c->account, j->chat_str, &sa);
        if (rc < 0)
            return rc;
        t[i].skdm = !rc;
    }
    return 0;
}

/* Every device the message goes to, into t[] (*n). */
static int job_targets(wa_client *c, const wa__job *j, target *t, size_t cap, size_t *n)
{
    wa_jid *users = NULL, me;
    uint16_t ids[WA__DEVICES_MAX], mine = wa__e2e_my_device(c);
    size_t nu = 0, i, k, count = 0;
    int rc, nd;

    memset(t, 0, sizeof *t);
    if (j->resend) {
        t[0].jid = j->target;
        if (!j->group && wa__e2e_me(c, wa_jid_is_lid(&j->target), &me) == 0)
            t[0].own = wa_jid_same_user(&me, &j->target);
        rc = wa__e2e_addr(c, &t[0].jid, &t[0].addr);
        if (rc == 0 && wa_signal_addr_name(&t[0].addr, t[0].name, sizeof t[0].name) < 0)
            rc = WA_EINVAL;
        t[0].skdm = 1;
        if (rc == 0)
            *n = 1;
        return rc;
    }
    if (wa__e2e_me(c, !j->group && wa_jid_is_lid(&j->chat), &me) != 0 && wa__e2e_me(c, 0, &me) != 0)
        return WA_ESTATE;
    rc = job_users(c, j, &users, &nu);
    if (rc)
        return rc;
    for (i = 0; i < nu && rc == 0; i++) {
        int own = wa_jid_same_user(&users[i], &me);
        nd = wa__devices_get(c, &users[i], ids);
        if (nd < 0) {
            rc = WA_ENOTFOUND; /* evicted meanwhile: the caller starts over */
            break;
        }
        for (k = 0; k < (size_t)nd; k++) {
            if (own && ids[k] == mine)
                continue; /* this device */
            if (count >= cap) {
                rc = WA_ELIMIT;
                break;
            }
            memset(&t[count], 0, sizeof t[count]);
            t[count].jid = users[i];
            t[count].jid.device = ids[k];
            t[count].own = own && !j->group;
            if (wa__e2e_addr(c, &t[count].jid, &t[count].addr) != 0)
                continue;
            count++;
        }
    }
    wa_free(users);
    if (rc == 0 && j->group)
        rc = mark_skdm_needs(c, j, t, count);
    if (rc == 0)
        *n = count;
    return rc;
}

/* ---- keys ----------------------------------------------------------------------------------- */

static wa_node *keys_iq(wa_arena *a, const char *id, const target *t, const uint8_t *need, size_t n)
{
    wa_node *iq = wa_node_new(a, "iq"), *key;
    size_t i;

    if (!iq || wa_node_set_attr(a, iq, "xmlns", "encrypt") ||
        wa_node_set_attr(a, iq, "type", "get") || wa_node_set_attr(a, iq, "to", WA__SERVER_JID) ||
        wa_node_set_attr(a, iq, "id", id) || !(key = wa_node_new_child(a, iq, "key")))
        return NULL;
    for (i = 0; i < n; i++) {
        wa_node *u;
        if (!need[i])
            continue;
        u = wa_node_new_child(a, key, "user");
        /* reason='identity' as whatsmeow (fetchPreKeys) and Baileys 7 (assertSessions, forced) */
        if (!u || wa_node_set_attr_jid(a, u, "jid", &t[i].jid) ||
            wa_node_set_attr(a, u, "reason", "identity"))
            return NULL;
    }
    return iq;
}

/* Big-endian content of exactly len bytes (1..4). */
static int be_child(const wa_node *parent, const char *tag, size_t len, uint32_t *out)
{
    const uint8_t *p;
    size_t n, i;
    uint32_t v = 0;

    if (wa_node_content_bytes(wa_node_child(parent, tag), &p, &n) != 0 || n != len)
        return WA_EPROTO;
    for (i = 0; i < n; i++)
        v = v << 8 | p[i];
    *out = v;
    return 0;
}

static int bytes_child(const wa_node *parent, const char *tag, uint8_t *out, size_t len)
{
    const uint8_t *p;
    size_t n;

    if (wa_node_content_bytes(wa_node_child(parent, tag), &p, &n) != 0 || n != len)
        return WA_EPROTO;
    memcpy(out, p, len);
    return 0;
}

/* A bundle from a node holding <identity/><skey/>[<key/>] (and <registration/> unless reg is
 * given). Identity keys may come 33 bytes long (with the 0x05 prefix) from some peers. */
static int parse_bundle(const wa_node *u, const uint32_t *reg, wa_signal_bundle *b)
{
    const wa_node *sk = wa_node_child(u, "skey"), *k = wa_node_child(u, "key");
    const uint8_t *p;
    size_t n;

    memset(b, 0, sizeof *b);
    if (reg)
        b->reg_id = *reg;
    else if (be_child(u, "registration", 4, &b->reg_id))
        return WA_EPROTO;
    if (wa_node_content_bytes(wa_node_child(u, "identity"), &p, &n) != 0)
        return WA_EPROTO;
    if (n == 33 && p[0] == WA_SIGNAL_KEY_TYPE)
        p++, n--;
    if (n != 32)
        return WA_EPROTO;
    memcpy(b->identity_pub, p, 32);
    if (!sk || be_child(sk, "id", 3, &b->spk_id) || bytes_child(sk, "value", b->spk_pub, 32) ||
        bytes_child(sk, "signature", b->spk_sig, 64))
        return WA_EPROTO;
    if (k) {
        if (be_child(k, "id", 3, &b->prekey_id) || bytes_child(k, "value", b->prekey_pub, 32))
            return WA_EPROTO;
        b->has_prekey = 1;
    }
    return 0;
}

/* Start sessions from a <key> answer. Unless fresh (a retry's rebuild), a device that has a
 * session by now keeps it: sends started together each fetched bundles for the same new device,
 * and taking every one would archive a session state per send (records of 20 states, read and
 * written on every later message, and a pkmsg per state for the peer to take). */
static void take_bundles(wa_client *c, const wa_node *iq, int fresh)
{
    wa_signal *sig = wa__e2e_signal(c);
    const wa_node *list = wa_node_child(iq, "list");

    if (!sig)
        return;
    WA_NODE_FOREACH(u, list)
    {
        wa_signal_bundle b;
        wa_signal_addr addr;
        wa_jid j;
        int rc;
        if (!wa_node_is(u, "user") || wa_node_attr_jid(u, "jid", &j) != 0)
            continue;
        if (wa_node_child(u, "error")) {
            wa_log_info(LOG, "[%s] no prekey bundle for %s:%u", c->account_name, j.user,
                        (unsigned)j.device);
            continue;
        }
        rc = parse_bundle(u, NULL, &b);
        if (rc == 0)
            rc = wa__e2e_addr(c, &j, &addr);
        if (rc == 0 && !fresh && wa_signal_has_session(sig, &addr) == 1)
            continue;
        if (rc == 0)
            rc = wa_signal_process_bundle(sig, &addr, &b);
        if (rc)
            wa_log_warn(LOG, "[%s] bundle of %s:%u refused: %s (%s)", c->account_name, j.user,
                        (unsigned)j.device, wa_strerror(rc), wa_signal_last_error(sig));
    }
}

static int stage_keys(wa_client *c, wa__job *j, target *t, size_t n)
{
    wa_signal *sig = wa__e2e_signal(c);
    wa_signal_addr *addrs = NULL;
    uint8_t *has = NULL, *need = NULL;
    size_t i, missing = 0;
    wa_arena a;
    char iqid[WA__IQ_ID_MAX];
    int rc;

    if (!sig)
        return WA_ENOMEM;
    if (j->resend) {
        /* a retry receipt: always a fresh session (from its <keys>, else from the server) */
        if (j->have_bundle) {
            rc = wa_signal_process_bundle(sig, &t[0].addr, &j->bundle);
            j->have_bundle = 0;
            if (rc == 0)
                return 1;
            wa_log_warn(LOG, "[%s] the retry receipt's keys were refused (%s): fetching a bundle",
                        c->account_name, wa_signal_last_error(sig));
        }
        need = wa_calloc(1, 1);
        if (!need)
            return WA_ENOMEM;
        need[0] = 1;
        missing = 1;
    } else {
        addrs = wa_calloc(n ? n : 1, sizeof *addrs);
        has = wa_calloc(n ? n : 1, 1);
        need = wa_calloc(n ? n : 1, 1);
        if (!addrs || !has || !need) {
            rc = WA_ENOMEM;
            goto out;
        }
        for (i = 0; i < n; i++)
            addrs[i] = t[i].addr;
        rc = wa_signal_has_sessions(sig, addrs, n, has);
        if (rc)
            goto out;
        for (i = 0; i < n; i++) {
            /* groups: only the devices our sender key goes to need a session */
            need[i] = !has[i] && (!j->group || t[i].skdm);
            missing += need[i];
        }
    }
    if (missing == 0) {
        rc = 1;
        goto out;
    }
    wa_arena_init(&a, 16384 + missing * 128);
    wa__iq_make_id(&c->iqs, iqid);
    rc = wa__client_send_iq(c, keys_iq(&a, iqid, t, need, j->resend ? 1 : n), iqid, WA__IQ_KEYS,
                            j->seq);
    wa_arena_cleanup(&a);
    if (rc == 0)
        j->keys_fetched = 1;
out:
    wa_free(addrs);
    wa_free(has);
    wa_free(need);
    return rc;
}

/* ---- encrypt and send ----------------------------------------------------------------------- */

static int add_enc(wa_arena *a, wa_node *parent, const wa_signal_encrypted *e, unsigned count,
                   const char *mediatype)
{
    wa_node *enc = wa_node_new_child(a, parent, "enc");
    char cnt[16];

    if (!enc || wa_node_set_attr(a, enc, "v", "2") ||
        wa_node_set_attr(a, enc, "type", wa_signal_type_name(e->type)) ||
        (mediatype && wa_node_set_attr(a, enc, "mediatype", mediatype)))
        return WA_ENOMEM;
    if (count) {
        snprintf(cnt, sizeof cnt, "%u", count);
        if (wa_node_set_attr(a, enc, "count", cnt))
            return WA_ENOMEM;
    }
    wa_node_set_bytes_ref(enc, e->ct.data, e->ct.len);
    return 0;
}

static int encrypt_and_send(wa_client *c, wa__job *j, const target *t, size_t n)
{
    wa_signal *sig = wa__e2e_signal(c);
    wa_signal_addr *addrs = NULL;
    wa_signal_encrypted *res = NULL;
    size_t *order = NULL;  /* result k is for target t[order[k]] */
    uint8_t *which = NULL; /* result k's plaintext: 0 the message, 1 the deviceSentMessage */
    wa_buf plain, dsm, dsm_plain, adv;
    wa_node *msg = NULL, *parts = NULL;
    wa_arena a;
    size_t i, npeer = 0, nown = 0, sent = 0, pk = 0;
    int rc, tx = 0;

    wa_buf_init(&plain, WA__PLAIN_MAX + WA_SIGNAL_PAD_MAX);
    wa_buf_init(&dsm, WA__PLAIN_MAX + WA_JID_STR_MAX + 32);
    wa_buf_init(&dsm_plain, WA__PLAIN_MAX + WA_JID_STR_MAX + 32 + WA_SIGNAL_PAD_MAX);
    wa_buf_init(&adv, WA_STORE_ADV_MAX);
    wa_arena_init(&a, WA__STANZA_MSG_MAX);
    if (!sig) {
        rc = WA_ENOMEM;
        goto out;
    }
    addrs = wa_calloc(n ? n : 1, sizeof *addrs);
    res = wa_calloc(n ? n : 1, sizeof *res);
    order = wa_calloc(n ? n : 1, sizeof *order);
    which = wa_calloc(n ? n : 1, 1);
    if (!addrs || !res || !order || !which) {
        rc = WA_ENOMEM;
        goto out;
    }
    /* peers first, then our own devices (the stanza lists them in that order) */
    for (i = 0; i < n; i++)
        if (!t[i].own)
            order[npeer++] = i;
    for (i = 0; i < n; i++)
        if (t[i].own)
            order[npeer + nown++] = i;
    for (i = 0; i < n; i++) {
        addrs[i] = t[order[i]].addr;
        which[i] = (uint8_t)t[order[i]].own;
    }
    for (i = 0; i < n; i++)
        wa_buf_init(&res[i].ct, WA__PLAIN_MAX + 2 * WA_SIGNAL_CT_OVERHEAD + WA_JID_STR_MAX);
    rc = wa_signal_pad(j->out.plain.data, j->out.plain.len, &plain);
    if (rc == 0 && nown) {
        rc = wa__content_dsm(j->out.plain.data, j->out.plain.len, j->chat_str, &dsm);
        if (rc == 0)
            rc = wa_signal_pad(dsm.data, dsm.len, &dsm_plain);
    }
    if (rc)
        goto out;
    rc = wa_store_tx_begin(c->store);
    if (rc)
        goto out;
    tx = 1;
    {
        /* every session of the fan-out in one batch load */
        const uint8_t *pl[2] = {plain.data, nown ? dsm_plain.data : plain.data};
        size_t len[2] = {plain.len, nown ? dsm_plain.len : plain.len};
        rc = wa_signal_encrypt_fanout(sig, addrs, n, pl, len, which, res);
    }
    if (rc == 0 && !j->resend)
        rc = wa_store_sent_put(c->store, c->account, j->id, j->chat_str, j->out.plain.data,
                               j->out.plain.len, wa__client_unix());
    rc = wa_store_tx_end(c->store, rc);
    tx = 0;
    if (rc)
        goto out;
    /* the stanza */
    msg = wa_node_new(&a, "message");
    if (!msg || wa_node_set_attr(&a, msg, "id", j->id) ||
        wa_node_set_attr_jid(&a, msg, "to", j->resend ? &j->target : &j->chat) ||
        wa_node_set_attr(&a, msg, "type", j->out.type) ||
        (j->out.edit && wa_node_set_attr(&a, msg, "edit", j->out.edit))) {
        rc = WA_ENOMEM;
        goto out;
    }
    if (j->resend) {
        if (wa_node_set_attr(&a, msg, "device_fanout", "false") ||
            (t[0].own && wa_node_set_attr_jid(&a, msg, "recipient", &j->chat))) {
            rc = WA_ENOMEM;
            goto out;
        }
    } else if (!(parts = wa_node_new_child(&a, msg, "participants"))) {
        rc = WA_ENOMEM;
        goto out;
    }
    for (i = 0; i < npeer + nown; i++) {
        const target *ti = &t[order[i]];
        if (res[i].err) {
            wa_log_warn(LOG, "[%s] message %s: not encrypted for %s:%u: %s", c->account_name, j->id,
                        ti->jid.user, (unsigned)ti->jid.device, wa_strerror(res[i].err));
            continue;
        }
        pk |= res[i].type == WA_SIGNAL_PKMSG;
        if (j->resend) {
            rc = add_enc(&a, msg, &res[i], j->count, j->out.mediatype);
        } else {
            wa_node *to = wa_node_new_child(&a, parts, "to");
            rc = to && wa_node_set_attr_jid(&a, to, "jid", &ti->jid) == 0
                     ? add_enc(&a, to, &res[i], 0, j->out.mediatype)
                     : WA_ENOMEM;
        }
        if (rc)
            goto out;
        sent++;
    }
    if (sent == 0) {
        rc = WA_ENOTFOUND; /* no device could be reached */
        goto out;
    }
    if (pk || j->resend) {
        rc = wa__e2e_device_identity(c, &adv);
        if (rc == 0 && !wa__child_bytes(&a, msg, "device-identity", adv.data, adv.len))
            rc = WA_ENOMEM;
        if (rc)
            goto out;
    }
    rc = wa__client_send(c, msg);
    if (rc == 0)
        wa_log_debug(LOG, "[%s] %s %s to %s: %zu device(s)", c->account_name,
                     j->resend ? "re-sent" : "sent", j->id, j->chat_str, sent);
out:
    if (tx)
        wa_store_tx_end(c->store, rc ? rc : WA_ESTORE);
    if (res)
        for (i = 0; i < n; i++)
            wa_buf_cleanup(&res[i].ct);
    wa_free(res);
    wa_free(addrs);
    wa_free(order);
    wa_free(which);
    wa_arena_cleanup(&a);
    wa_buf_wipe_cleanup(&plain);
    wa_buf_wipe_cleanup(&dsm);
    wa_buf_wipe_cleanup(&dsm_plain);
    wa_buf_cleanup(&adv);
    return rc;
}

/* A group send: our sender key's SenderKeyDistributionMessage, 1:1-encrypted, for every device
 * that does not have it yet, and the message itself once, as a skmsg (Baileys 7 relayMessage,
 * group branch): <message id to=GID type [edit]><enc v='2' type='skmsg'/><participants><to jid>
 * <enc/></to>..</participants>[<device-identity/>]</message>. A re-send (retry receipt from one
 * device) is the message and the distribution message in ONE Message, 1:1-encrypted for that
 * device: <message id to=GID participant=DEV type><enc v='2' type count/>[<device-identity/>]. */
static int encrypt_group_and_send(wa_client *c, wa__job *j, const target *t, size_t n)
{
    wa_signal *sig = wa__e2e_signal(c);
    wa_signal_addr own, *addrs = NULL;
    wa_signal_encrypted *res = NULL;
    wa_store_addr *marks = NULL;
    size_t *order = NULL, i, nd = 0, sent = 0, nmarks = 0;
    wa_buf skdm, dmsg, dplain, plain, skct, adv;
    wa_node *msg = NULL, *parts = NULL, *enc;
    wa_arena a;
    int rc, pk = 0;

    wa_buf_init(&skdm, WA_SIGNAL_SKDM_MAX);
    wa_buf_init(&dmsg, WA__PLAIN_MAX + WA_SIGNAL_SKDM_MAX + WA_JID_STR_MAX + 32);
    wa_buf_init(&dplain, WA__PLAIN_MAX + WA_SIGNAL_SKDM_MAX + WA_JID_STR_MAX + 64);
    wa_buf_init(&plain, WA__PLAIN_MAX + WA_SIGNAL_PAD_MAX);
    wa_buf_init(&skct, WA__PLAIN_MAX + 2 * WA_SIGNAL_CT_OVERHEAD);
    wa_buf_init(&adv, WA_STORE_ADV_MAX);
    wa_arena_init(&a, WA__STANZA_MSG_MAX);
    if (!sig) {
        rc = WA_ENOMEM;
        goto out;
    }
    rc = wa__group_own_addr(c, &own);
    if (rc)
        goto out;
    addrs = wa_calloc(n ? n : 1, sizeof *addrs);
    res = wa_calloc(n ? n : 1, sizeof *res);
    order = wa_calloc(n ? n : 1, sizeof *order);
    marks = wa_calloc(n ? n : 1, sizeof *marks);
    if (!addrs || !res || !order || !marks) {
        rc = WA_ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        wa_buf_init(&res[i].ct, WA__PLAIN_MAX + 2 * WA_SIGNAL_CT_OVERHEAD + WA_SIGNAL_SKDM_MAX +
                                    WA_JID_STR_MAX);
        if (j->resend || t[i].skdm) {
            order[nd] = i;
            addrs[nd++] = t[i].addr;
        }
    }
    rc = wa_store_tx_begin(c->store);
    if (rc)
        goto out;
    /* our sender key (made on first use) and its distribution message */
    rc = wa_signal_group_create_skdm(sig, j->chat_str, &own, &skdm);
    if (rc == 0 && j->resend)
        rc = wa_buf_append(&dmsg, j->out.plain.data, j->out.plain.len);
    if (rc == 0)
        rc = wa__content_skdm(j->chat_str, skdm.data, skdm.len, &dmsg);
    if (rc == 0)
        rc = wa_signal_pad(dmsg.data, dmsg.len, &dplain);
    if (rc == 0 && nd)
        rc = wa_signal_encrypt_many(sig, addrs, nd, dplain.data, dplain.len, res);
    if (rc == 0 && !j->resend) {
        rc = wa_signal_pad(j->out.plain.data, j->out.plain.len, &plain);
        if (rc == 0)
            rc = wa_signal_group_encrypt(sig, j->chat_str, &own, plain.data, plain.len, &skct);
    }
    for (i = 0; rc == 0 && i < nd; i++) {
        if (res[i].err)
            continue;
        marks[nmarks].name = t[order[i]].name;
        marks[nmarks].device = t[order[i]].addr.device;
        nmarks++;
    }
    if (rc == 0 && nmarks)
        rc = wa_store_skdm_mark(c->store, c->account, j->chat_str, marks, nmarks);
    if (rc == 0 && !j->resend)
        rc = wa_store_sent_put(c->store, c->account, j->id, j->chat_str, j->out.plain.data,
                               j->out.plain.len, wa__client_unix());
    rc = wa_store_tx_end(c->store, rc);
    if (rc)
        goto out;
    msg = wa_node_new(&a, "message");
    if (!msg || wa_node_set_attr(&a, msg, "id", j->id) ||
        wa_node_set_attr(&a, msg, "to", j->chat_str) ||
        (j->resend && wa_node_set_attr_jid(&a, msg, "participant", &j->target)) ||
        wa_node_set_attr(&a, msg, "type", j->out.type) ||
        (j->out.edit && wa_node_set_attr(&a, msg, "edit", j->out.edit))) {
        rc = WA_ENOMEM;
        goto out;
    }
    if (!j->resend) {
        enc = wa_node_new_child(&a, msg, "enc");
        if (!enc || wa_node_set_attr(&a, enc, "v", "2") ||
            wa_node_set_attr(&a, enc, "type", "skmsg") ||
            (j->out.mediatype && wa_node_set_attr(&a, enc, "mediatype", j->out.mediatype))) {
            rc = WA_ENOMEM;
            goto out;
        }
        wa_node_set_bytes_ref(enc, skct.data, skct.len);
    }
    for (i = 0; i < nd; i++) {
        const target *ti = &t[order[i]];
        if (res[i].err) {
            wa_log_warn(LOG, "[%s] group message %s: no sender key for %s:%u: %s", c->account_name,
                        j->id, ti->jid.user, (unsigned)ti->jid.device, wa_strerror(res[i].err));
            continue;
        }
        pk |= res[i].type == WA_SIGNAL_PKMSG;
        if (j->resend) {
            rc = add_enc(&a, msg, &res[i], j->count, j->out.mediatype);
        } else {
            wa_node *to;
            if (!parts && !(parts = wa_node_new_child(&a, msg, "participants"))) {
                rc = WA_ENOMEM;
                goto out;
            }
            to = wa_node_new_child(&a, parts, "to");
            rc = to && wa_node_set_attr_jid(&a, to, "jid", &ti->jid) == 0
                     ? add_enc(&a, to, &res[i], 0, j->out.mediatype)
                     : WA_ENOMEM;
        }
        if (rc)
            goto out;
        sent++;
    }
    if (j->resend && sent == 0) {
        rc = WA_ENOTFOUND;
        goto out;
    }
    if (pk || j->resend) {
        rc = wa__e2e_device_identity(c, &adv);
        if (rc == 0 && !wa__child_bytes(&a, msg, "device-identity", adv.data, adv.len))
            rc = WA_ENOMEM;
        if (rc)
            goto out;
    }
    rc = wa__client_send(c, msg);
    if (rc == 0)
        wa_log_debug(LOG, "[%s] %s group message %s to %s (sender key to %zu device(s))",
                     c->account_name, j->resend ? "re-sent" : "sent", j->id, j->chat_str, sent);
out:
    if (res)
        for (i = 0; i < n; i++)
            wa_buf_cleanup(&res[i].ct);
    wa_free(res);
    wa_free(addrs);
    wa_free(order);
    wa_free(marks);
    wa_arena_cleanup(&a);
    wa_buf_wipe_cleanup(&skdm);
    wa_buf_wipe_cleanup(&dmsg);
    wa_buf_wipe_cleanup(&dplain);
    wa_buf_wipe_cleanup(&plain);
    wa_buf_cleanup(&skct);
    wa_buf_cleanup(&adv);
    return rc;
}

/* Run the job as far as it goes without waiting. 0 (waiting, or done: *slot cleared) or an
 * error (the caller fails the job). */
static int advance(wa_client *c, wa__job **slot)
{
    wa__job *j = *slot;
    target *t = NULL;
    size_t n = 0;
    int rc = 1, rounds = 0;

    while (rc == 1 && rounds++ < 6) {
        if (j->stage == JOB_GROUP) {
            rc = j->resend ? (j->stage = JOB_KEYS, 1) : stage_group(c, j);
            continue;
        }
        if (j->stage == JOB_DEVICES) {
            rc = j->resend ? (j->stage = JOB_KEYS, 1) : stage_devices(c, j);
            continue;
        }
        if (!t && !(t = wa_calloc(WA__FANOUT_MAX, sizeof *t))) {
            rc = WA_ENOMEM;
            break;
        }
        rc = job_targets(c, j, t, WA__FANOUT_MAX, &n);
        if (rc == WA_ENOTFOUND && !j->resend) {
            j->stage = JOB_DEVICES; /* a device list went stale meanwhile */
            rc = 1;
            continue;
        }
        if (rc)
            break;
        if (!j->keys_fetched) {
            rc = stage_keys(c, j, t, n);
            if (rc != 1)
                break; /* waiting for bundles, or failed */
        }
        rc = j->group ? encrypt_group_and_send(c, j, t, n) : encrypt_and_send(c, j, t, n);
        if (rc)
            break;
        if (j->resend) {
            *slot = NULL;
            job_free(j);
        } else {
            j->stage = JOB_ACK;
            j->deadline = wa__client_now(c) + c->iq_timeout_ms;
            wa__client_arm(c);
        }
        break;
    }
    if (rc == 1)
        rc = WA_EPROTO; /* looping: device lists keep vanishing */
    wa_free(t);
    return rc;
}

int wa__send_start(wa_client *c, const wa_jid *chat, wa__outgoing *o, const char *id, char *id_out)
{
    wa__job *j, **slot = NULL;
    size_t i;
    int rc;

    if (id && (!id[0] || strlen(id) >= WA_CLIENT_MSG_ID_MAX))
        return WA_EINVAL;
    for (i = 0; i < WA__MAX_JOBS && !slot; i++)
        if (!c->jobs[i])
            slot = &c->jobs[i];
    if (!slot)
        return WA_ELIMIT;
    j = wa_calloc(1, sizeof *j);
    if (!j)
        return WA_ENOMEM;
    j->seq = ++c->job_seq;
    wa_jid_to_non_ad(chat, &j->chat);
    j->group = wa_jid_is_group(&j->chat);
    j->stage = j->group ? JOB_GROUP : JOB_DEVICES;
    if (wa_jid_format(&j->chat, j->chat_str, sizeof j->chat_str) < 0) {
        job_free(j);
        return WA_EINVAL;
    }
    if (id)
        snprintf(j->id, sizeof j->id, "%s", id);
    else
        wa__content_new_id(j->id);
    j->out = *o;
    memset(o, 0, sizeof *o); /* the buffer is the job's now */
    if (id_out)
        memcpy(id_out, j->id, strlen(j->id) + 1);
    *slot = j;
    if (behind(c, j)) {
        j->turn_wait = 1; /* goes on when the older sends to the chat are out (take_turns) */
        return 0;
    }
    rc = advance(c, slot);
    if (rc && *slot) {
        job_free(*slot);
        *slot = NULL;
    }
    return rc;
}

void wa__send_iq_answer(wa_client *c, int kind, uint32_t seq, const wa_node *iq)
{
    wa__job **slot = slot_of(c, seq);
    const char *type = wa_node_attr(iq, "type");
    unsigned gen = c->gen;
    char chat[WA_JID_STR_MAX];
    int rc = 0;

    if (!slot)
        return;
    if (!type || strcmp(type, "result") != 0) {
        snprintf(chat, sizeof chat, "%s", (*slot)->chat_str);
        finish(c, slot, WA_EPROTO);
        if (wa__client_alive(c, gen))
            take_turns(c, chat);
        return;
    }
    if (kind == WA__IQ_GROUP_META) {
        rc = wa__group_take(c, iq);
        if (rc == 0)
            (*slot)->stage = JOB_DEVICES;
    } else if (kind == WA__IQ_USYNC) {
        rc = wa__devices_take(c, iq);
        if (rc == 0)
            (*slot)->stage = JOB_KEYS;
    } else {
        take_bundles(c, iq, (*slot)->resend);
    }
    if (rc == 0)
        rc = advance(c, slot);
    snprintf(chat, sizeof chat, "%s", (*slot) ? (*slot)->chat_str : "");
    if (rc && *slot && wa__client_alive(c, gen))
        finish(c, slot, rc);
    if (chat[0] && wa__client_alive(c, gen))
        take_turns(c, chat); /* the sends waiting behind it */
}

void wa__send_acked(wa_client *c, const wa_node *ack)
{
    const char *id = wa_node_attr(ack, "id"), *error = wa_node_attr(ack, "error");
    size_t i;

    if (!id)
        return;
    for (i = 0; i < WA__MAX_JOBS; i++) {
        wa__job *j = c->jobs[i];
        if (j && j->stage == JOB_ACK && !strcmp(j->id, id)) {
            if (error)
                wa_log_warn(LOG, "[%s] the server refused message %s: error %s", c->account_name,
                            id, error);
            finish(c, &c->jobs[i], error ? WA_EPROTO : 0);
            return;
        }
    }
}

void wa__send_expire(wa_client *c, uint64_t now)
{
    unsigned gen = c->gen;
    size_t i;

    for (i = 0; i < WA__MAX_JOBS; i++) {
        wa__job *j = c->jobs[i];
        if (j && j->stage == JOB_ACK && j->deadline <= now) {
            finish(c, &c->jobs[i], WA_ETIMEDOUT);
            if (!wa__client_alive(c, gen))
                return;
        }
    }
}

uint64_t wa__send_next_deadline(const wa_client *c)
{
    uint64_t d = UINT64_MAX;
    size_t i;

    for (i = 0; i < WA__MAX_JOBS; i++)
        if (c->jobs[i] && c->jobs[i]->stage == JOB_ACK && c->jobs[i]->deadline < d)
            d = c->jobs[i]->deadline;
    return d;
}

void wa__send_fail_all(wa_client *c, int err)
{
    /* no early return when a callback stops or frees the client: every entry must go (the
     * callbacks are not called once the client is being freed) */
    size_t i;

    for (i = 0; i < WA__MAX_JOBS; i++) {
        if (c->jobs[i]) {
            finish(c, &c->jobs[i], err);
        }
    }
}

/* ---- retry receipts ------------------------------------------------------------------------- */

/* Count one more re-send of (id, device); 0 when over the limit. */
static unsigned count_resend(wa_client *c, const char *id, const char *device)
{
    resend_seen *r;
    size_t i;

    if (!c->resends && !(c->resends = wa_calloc(WA__RESEND_TRACK, sizeof *c->resends)))
        return 1;
    for (i = 0; i < WA__RESEND_TRACK; i++) {
        r = &c->resends[i];
        if (!strcmp(r->id, id) && !strcmp(r->device, device))
            return ++r->count <= WA__RESEND_MAX ? r->count : 0;
    }
    r = &c->resends[c->resends_next];
    c->resends_next = (c->resends_next + 1) % WA__RESEND_TRACK;
    snprintf(r->id, sizeof r->id, "%s", id);
    snprintf(r->device, sizeof r->device, "%s", device);
    r->count = 1;
    return 1;
}

void wa__send_retry(wa_client *c, const wa_node *receipt)
{
    const char *id = wa_node_attr(receipt, "id"), *from = wa_node_attr(receipt, "from");
    const char *participant = wa_node_attr(receipt, "participant");
    const wa_node *retry = wa_node_child(receipt, "retry"), *keys = wa_node_child(receipt, "keys");
    wa__job *j = NULL, **slot = NULL;
    wa_jid dev, chat;
    char chat_str[WA_JID_STR_MAX];
    uint64_t count = 1;
    uint32_t reg;
    size_t i;
    int rc;

    if (!id || !from || wa_jid_parse(participant ? participant : from, &dev) != 0) {
        wa_log_warn(LOG, "[%s] malformed retry receipt", c->account_name);
        return;
    }
    if (wa_node_attr_u64(retry, "count", &count) != 0 || count == 0 || count > 100)
        count = 1;
    if (!count_resend(c, id, participant ? participant : from)) {
        wa_log_info(LOG, "[%s] retry receipt for %s from %s: re-sent too often already",
                    c->account_name, id, participant ? participant : from);
        return;
    }
    for (i = 0; i < WA__MAX_JOBS && !slot; i++)
        if (!c->jobs[i])
            slot = &c->jobs[i];
    j = slot ? wa_calloc(1, sizeof *j) : NULL;
    if (!j) {
        wa_log_warn(LOG, "[%s] retry receipt for %s: no room for a re-send", c->account_name, id);
        return;
    }
    wa_buf_init(&j->out.plain, WA__PLAIN_MAX);
    rc = wa_store_sent_get(c->store, c->account, id, chat_str, sizeof chat_str, &j->out.plain);
    if (rc || wa_jid_parse(chat_str, &chat) != 0) {
        wa_log_info(LOG, "[%s] retry receipt for %s from %s: %s", c->account_name, id, from,
                    rc == WA_ENOTFOUND ? "not one of our recent messages" : wa_strerror(rc));
        job_free(j);
        return;
    }
    j->group = wa_jid_is_group(&chat);
    if (j->group && !participant) {
        wa_log_info(LOG, "[%s] group retry receipt for %s without a participant", c->account_name,
                    id);
        job_free(j);
        return;
    }
    j->seq = ++c->job_seq;
    j->stage = JOB_DEVICES;
    j->resend = 1;
    j->chat = chat;
    snprintf(j->chat_str, sizeof j->chat_str, "%s", chat_str);
    snprintf(j->id, sizeof j->id, "%s", id);
    j->target = dev;
    j->count = (unsigned)count;
    j->out.type = "text";
    {
        /* the type and edit attributes of the original are not kept: re-derive them */
        wa__incoming in;
        if (wa__content_read(j->out.plain.data, j->out.plain.len, &in) == 0) {
            if (in.kind == WA_MSG_REACTION)
                j->out.type = "reaction";
            else if (in.kind == WA_MSG_EDIT)
                j->out.edit = "1";
            else if (in.kind == WA_MSG_REVOKE)
                j->out.edit = "7";
            else if (in.kind == WA_MSG_CONTACT) {
                j->out.type = "media";
                j->out.mediatype = "vcard";
            }
            wa__content_free(&in);
        }
    }
    if (keys && be_child(receipt, "registration", 4, &reg) == 0 &&
        parse_bundle(keys, &reg, &j->bundle) == 0)
        j->have_bundle = 1;
    wa_log_info(LOG, "[%s] retry receipt #%u for %s from %s: re-sending%s", c->account_name,
                j->count, id, participant ? participant : from,
                j->have_bundle ? " (session from the receipt's keys)" : "");
    *slot = j;
    rc = advance(c, slot);
    if (rc && *slot)
        finish(c, slot, rc);
}

/* ---- public send functions ------------------------------------------------------------------ */

/* A chat JID from "NUMBER", "NUMBER@s.whatsapp.net" or "LID@lid" (non-AD). */
static int parse_chat(const char *to, wa_jid *out)
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
    if (!wa_jid_is_user(&j) && !wa_jid_is_lid(&j) && !wa_jid_is_group(&j))
        return WA_EINVAL;
    wa_jid_to_non_ad(&j, out);
    return 0;
}

static int send_common(wa_client *c, const char *to,
                       int (*build)(wa__outgoing *, const void *, const char *, int64_t),
                       const void *arg, const char *id, char *id_out)
{
    wa__outgoing o;
    wa_jid chat;
    char chat_str[WA_JID_STR_MAX];
    int rc;

    if (!c)
        return WA_EINVAL;
    if (!wa_client_is_connected(c))
        return WA_ESTATE;
    rc = parse_chat(to, &chat);
    if (rc)
        return rc;
    if (wa_jid_format(&chat, chat_str, sizeof chat_str) < 0)
        return WA_EINVAL;
    memset(&o, 0, sizeof o);
    rc = build(&o, arg, chat_str, (int64_t)wa__client_unix() * 1000);
    if (rc == 0)
        rc = wa__send_start(c, &chat, &o, id, id_out);
    wa_buf_wipe_cleanup(&o.plain);
    return rc;
}

typedef struct text_args {
    const char *text;
    const wa_client_send_opts *opts;
} text_args;

static int build_text(wa__outgoing *o, const void *arg, const char *chat, int64_t now)
{
    const text_args *t = arg;

    (void)now;
    return wa__content_text(o, t->text, t->opts, chat);
}

int wa_client_send_text(wa_client *c, const char *to, const char *text,
                        const wa_client_send_opts *opts, char *id_out)
{
    text_args t = {text, opts};

    if (!text || !text[0])
        return WA_EINVAL;
    return send_common(c, to, build_text, &t, opts ? opts->id : NULL, id_out);
}

typedef struct target_args {
    const char *target_id, *target_sender, *text;
    int from_me;
} target_args;

static int build_reaction(wa__outgoing *o, const void *arg, const char *chat, int64_t now)
{
    const target_args *t = arg;

    return wa__content_reaction(o, chat, t->target_id, t->target_sender, t->from_me, t->text, now);
}

static int build_edit(wa__outgoing *o, const void *arg, const char *chat, int64_t now)
{
    const target_args *t = arg;

    return wa__content_edit(o, chat, t->target_id, t->text, now);
}

static int build_revoke(wa__outgoing *o, const void *arg, const char *chat, int64_t now)
{
    const target_args *t = arg;

    (void)now;
    return wa__content_revoke(o, chat, t->target_id);
}

int wa_client_send_reaction(wa_client *c, const char *chat, const char *target_id,
                            const char *target_sender, int target_from_me, const char *emoji,
                            char *id_out)
{
    target_args t = {target_id, target_sender, emoji, target_from_me};

    return send_common(c, chat, build_reaction, &t, NULL, id_out);
}

int wa_client_send_edit(wa_client *c, const char *chat, const char *target_id, const char *text,
                        char *id_out)
{
    target_args t = {target_id, NULL, text, 1};

    return send_common(c, chat, build_edit, &t, NULL, id_out);
}

int wa_client_send_revoke(wa_client *c, const char *chat, const char *target_id, char *id_out)
{
    target_args t = {target_id, NULL, NULL, 1};

    return send_common(c, chat, build_revoke, &t, NULL, id_out);
}

typedef struct location_args {
    const wa_client_location *loc;
    const wa_client_send_opts *opts;
} location_args;

static int build_location(wa__outgoing *o, const void *arg, const char *chat, int64_t now)
{
    const location_args *l = arg;

    (void)now;
    return wa__content_location(o, l->loc, l->opts, chat);
}

int wa_client_send_location(wa_client *c, const char *to, const wa_client_location *loc,
                            const wa_client_send_opts *opts, char *id_out)
{
    location_args l = {loc, opts};

    if (!loc)
        return WA_EINVAL;
    return send_common(c, to, build_location, &l, opts ? opts->id : NULL, id_out);
}

typedef struct contact_args {
    const char *name, *vcard;
    const wa_client_send_opts *opts;
} contact_args;

static int build_contact(wa__outgoing *o, const void *arg, const char *chat, int64_t now)
{
    const contact_args *k = arg;

    (void)now;
    return wa__content_contact(o, k->name, k->vcard, k->opts, chat);
}

int wa_client_send_contact(wa_client *c, const char *to, const char *display_name,
                           const char *vcard, const wa_client_send_opts *opts, char *id_out)
{
    contact_args k = {display_name, vcard, opts};

    if (!display_name || !display_name[0] || !vcard || !vcard[0])
        return WA_EINVAL;
    return send_common(c, to, build_contact, &k, opts ? opts->id : NULL, id_out);
}
