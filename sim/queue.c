/*
 * queue.c - what a device gets when it is not there, and what it gets at login.
 *
 * Delivery (sim_route_deliver): a stanza for an online device is sent at once and, when it is a
 * message, receipt or notification, kept (encoded) until the client acknowledges it with an
 * <ack/> or, for messages, a <receipt/> (Baileys 7 acknowledges a decrypted message with its
 * receipt alone: PROTOCOL.md §6). A stanza for an offline device goes into its offline queue,
 * marked offline='1' (Baileys reports such messages as upsert type 'append', as it does with the
 * real server's offline messages). Both lists are bounded (SIM_QUEUE_MAX, SIM_QUEUE_MAX_BYTES,
 * SIM_UNACKED_MAX): past the bound the oldest entry is dropped with a warning. With --state,
 * every entry added to, moved between or removed from the two lists is written through
 * (state.c), so both survive a restart in order.
 *
 * Login: a connection gets nothing until it says <iq xmlns='passive'><active/></iq> (every client
 * does, after its prekey upload: PROTOCOL.md §5); what comes for it before is queued. Then
 * (sim_route_set_active): what the last connection left unacknowledged, then the offline queue,
 * each stanza at most SIM_REDELIVER_MAX times; then, once per device, the virtual phone's
 * app-state sync key share, and at every login a history sync notification of type NO_HISTORY
 * (both end-to-end encrypted messages from the account's device 0, category 'peer': phone.c);
 * then
 * <ib><offline count=N/></ib>.
 *
 * Why wait for <active/>: Baileys 6.17 shares one transaction buffer among concurrent key-store
 * transactions (lib/Utils/auth-utils.js addTransactionCapability), so a message processed while
 * its prekey upload runs makes it drop the uploaded prekeys from its store: every later pkmsg
 * then fails with "Invalid PreKey ID". Baileys 6.17 and 7 send <active/> after the upload,
 * whatsmeow right after <success/> (connectionevents.go SetPassive); Baileys 7 even logs in with
 * ClientPayload.passive=true. A client that never says it gets nothing (its queue waits).
 *
 * Why the history notification: Baileys 7 holds message events after <ib offline> until a
 * history sync notification arrives, unless it already synced (20 s timeout, lib/Socket/chats.js
 * AwaitingInitialSync, accountSyncCounter); NO_HISTORY is not a processable type, so it goes
 * online at once. Baileys 6.17 holds events after <ib offline> while it has no app-state key and
 * releases them in its first app-state sync, which a history notification starts: the key share
 * comes first, then the notification, then Baileys asks <iq xmlns='w:sync:app:state'>, which
 * sim_route_app_state answers with every collection up to date (no patches, no snapshot). A bare
 * result would make both Baileys versions loop forever on the sync. The notification carries an
 * inline payload (an empty HistorySync) so that clients that download history (whatsmeow) find
 * nothing to download.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnode/bnode.h"
#include "core/log.h"
#include "core/util.h"
#include "proto/message.pb-c.h"
#include "proto/proto.h"
#include "sim.h"
#include "util.h"
#include "wa/error.h"

#define SYNC_MAX_COLLECTIONS 32 /* collections answered in one app-state iq */
#define ENCODE_MAX           ((size_t)WA_BNODE_MAX_BYTES + 4096)

/* Stanzas a client acknowledges (and we redeliver when it did not). */
static int tracked(const char *tag)
{
    return strcmp(tag, "message") == 0 || strcmp(tag, "receipt") == 0 ||
           strcmp(tag, "notification") == 0;
}

/* Entries are wiped before free (stanzas for a device: nothing in them is for anyone else). */
static void release(sim_queued *q)
{
    if (q) {
        wa_wipe(q->data, q->len);
        free(q);
    }
}

static void free_list(sim_queued *q)
{
    while (q) {
        sim_queued *next = q->next;
        release(q);
        q = next;
    }
}

void sim_route_drop_queue(sim_device *d)
{
    free_list(d->queue_head);
    free_list(d->unacked_head);
    d->queue_head = d->queue_tail = NULL;
    d->unacked_head = d->unacked_tail = NULL;
    d->queue_len = d->unacked_len = 0;
    d->queue_bytes = 0;
}

/* A shallow copy of n with one more attribute (root only: children are shared). */
static const wa_node *with_attr(wa_arena *a, const wa_node *n, const char *key, const char *value)
{
    wa_node *copy;

    if (wa_node_attr(n, key))
        return n;
    copy = wa_arena_alloc(a, sizeof *copy);
    if (!copy)
        return n;
    *copy = *n;
    copy->next = NULL;
    copy->attrs = wa_arena_alloc(a, (n->nattrs + 1) * sizeof *copy->attrs);
    if (!copy->attrs)
        return n;
    if (n->nattrs)
        memcpy(copy->attrs, n->attrs, n->nattrs * sizeof *copy->attrs);
    copy->attrs_cap = n->nattrs + 1;
    if (wa_node_set_attr(a, copy, key, value) != 0)
        return n;
    return copy;
}

static sim_queued *encode_entry(const wa_node *n)
{
    const char *id = wa_node_attr(n, "id");
    sim_queued *q = NULL;
    wa_buf b;

    wa_buf_init(&b, ENCODE_MAX);
    if (wa_bnode_encode(n, 3, &b) == 0) {
        q = malloc(sizeof *q + b.len);
        if (q) {
            memset(q, 0, sizeof *q);
            snprintf(q->tag, sizeof q->tag, "%s", n->tag);
            if (id && strlen(id) <= SIM_MSG_ID_MAX)
                snprintf(q->id, sizeof q->id, "%s", id);
            q->len = b.len;
            memcpy(q->data, b.data, b.len);
        }
    }
    wa_buf_wipe_cleanup(&b);
    return q;
}

static void append(sim_queued **head, sim_queued **tail, sim_queued *q)
{
    q->next = NULL;
    if (*tail)
        (*tail)->next = q;
    else
        *head = q;
    *tail = q;
}

static sim_queued *pop(sim_queued **head, sim_queued **tail)
{
    sim_queued *q = *head;

    if (q) {
        *head = q->next;
        if (!*head)
            *tail = NULL;
        q->next = NULL;
    }
    return q;
}

static void push_entry(sim_device *d, sim_queued *q)
{
    while (d->queue_head &&
           (d->queue_len >= SIM_QUEUE_MAX || d->queue_bytes + q->len > SIM_QUEUE_MAX_BYTES)) {
        sim_queued *old = pop(&d->queue_head, &d->queue_tail);
        d->queue_len--;
        d->queue_bytes -= old->len;
        wa_log_warn("sim", "%s:%u: offline queue full, dropping <%s id=%s>", d->phone->number,
                    (unsigned)d->id, old->tag, old->id);
        sim_state_queue_del(d, old);
        release(old);
    }
    append(&d->queue_head, &d->queue_tail, q);
    d->queue_len++;
    d->queue_bytes += q->len;
    sim_state_queue_put(d, q, 0);
}

/* The oldest unacknowledged stanza makes room (the list is bounded). */
static void drop_oldest_unacked(sim_device *d)
{
    sim_queued *old = pop(&d->unacked_head, &d->unacked_tail);

    d->unacked_len--;
    sim_state_queue_del(d, old);
    release(old);
}

static void add_unacked(sim_device *d, sim_queued *q)
{
    if (d->unacked_len >= SIM_UNACKED_MAX)
        drop_oldest_unacked(d);
    append(&d->unacked_head, &d->unacked_tail, q);
    d->unacked_len++;
    sim_state_queue_put(d, q, 1);
}

void sim_queue_restore(sim_device *d, sim_queued *q, int unacked)
{
    if (unacked) {
        append(&d->unacked_head, &d->unacked_tail, q);
        d->unacked_len++;
    } else {
        append(&d->queue_head, &d->queue_tail, q);
        d->queue_len++;
        d->queue_bytes += q->len;
    }
}

int sim_queue_push(sim_device *d, const wa_node *n)
{
    wa_arena a;
    sim_queued *q;

    wa_arena_init(&a, 4096);
    if (tracked(n->tag))
        n = with_attr(&a, n, "offline", "1");
    q = encode_entry(n);
    wa_arena_cleanup(&a);
    if (!q)
        return WA_ENOMEM;
    push_entry(d, q);
    return 0;
}

static void keep_unacked(sim_device *d, const wa_node *n)
{
    sim_queued *q;

    if (!tracked(n->tag) || !wa_node_attr(n, "id"))
        return;
    q = encode_entry(n);
    if (!q || !q->id[0]) {
        release(q);
        return;
    }
    q->attempts = 1; /* this delivery */
    add_unacked(d, q);
}

void sim_queue_acked(sim_device *d, const char *tag, const char *id)
{
    sim_queued *q, *prev = NULL;

    if (!d || !id)
        return;
    for (q = d->unacked_head; q; prev = q, q = q->next) {
        if (strcmp(q->id, id) != 0 || (tag && strcmp(q->tag, tag) != 0))
            continue;
        if (prev)
            prev->next = q->next;
        else
            d->unacked_head = q->next;
        if (d->unacked_tail == q)
            d->unacked_tail = prev;
        d->unacked_len--;
        sim_state_queue_del(d, q);
        release(q);
        return;
    }
}

void sim_route_ack(sim_conn *c, const wa_node *n)
{
    const char *cls = wa_node_attr(n, "class");

    if (c->device && cls)
        sim_queue_acked(c->device, cls, wa_node_attr(n, "id"));
}

void sim_route_deliver(sim *s, sim_device *d, const wa_node *n)
{
    if (!d->present)
        return;
    if (d->id == 0) {
        /* the virtual phone has no client: phone.c decrypts and answers like a phone */
        sim_trace_node(s, NULL, "phone", n);
        sim_phone_receive(s, d->phone, n);
        return;
    }
    if (d->conn && d->conn->state == SIM_CONN_ONLINE && d->conn->route_active &&
        sim_conn_send(d->conn, n) == 0) {
        keep_unacked(d, n);
        return;
    }
    sim_trace_node(s, NULL, "queued", n);
    if (sim_queue_push(d, n) != 0)
        wa_log_warn("sim", "%s:%u: cannot queue <%s>", d->phone->number, (unsigned)d->id, n->tag);
}

/* Send one stored stanza again (decoded, re-encoded for the connection's dictionary). */
static int send_entry(sim_conn *c, const sim_queued *q)
{
    wa_arena a;
    wa_node *n = NULL;
    int rc;

    wa_arena_init(&a, WA_BNODE_ARENA_MAX);
    rc = wa_bnode_decode(q->data, q->len, 3, &a, &n);
    if (rc == 0)
        rc = sim_conn_send(c, n);
    wa_arena_cleanup(&a);
    return rc;
}

/* A protocol message from the account's phone to this device: end-to-end encrypted
 * <message category='peer'> (phone.c sim_phone_send_peer), as the real phone sends it. */
static void send_phone_peer(sim_conn *c, const Wa__Message *m)
{
    sim_device *d = c->device;
    wa_buf b;
    int rc;

    wa_buf_init(&b, 4096);
    rc = wa_proto_pack(m, &b);
    if (rc == 0)
        rc = sim_phone_send_peer(c->sim, d, b.data, b.len);
    if (rc != 0)
        wa_log_warn("sim", "%s:%u: cannot send a peer message: %s", d->phone->number,
                    (unsigned)d->id, wa_strerror(rc));
    wa_buf_wipe_cleanup(&b);
}

/* zlib(HistorySync{syncType: PUSH_NAME}): an empty history (PUSH_NAME, a value every client's
 * schema knows; the notification's own type says NO_HISTORY). */
static const uint8_t empty_history[] = {0x78, 0x9c, 0xe3, 0x60, 0x01, 0x00, 0x00, 0x16, 0x00, 0x0d};

static void send_no_history(sim_conn *c)
{
    Wa__Message m = WA__MESSAGE__INIT;
    Wa__Message__ProtocolMessage pm = WA__MESSAGE__PROTOCOL_MESSAGE__INIT;
    Wa__Message__HistorySyncNotification hist = WA__MESSAGE__HISTORY_SYNC_NOTIFICATION__INIT;

    hist.has_synctype = 1;
    hist.synctype = WA__MESSAGE__HISTORY_SYNC_TYPE__NO_HISTORY;
    hist.has_initialhistbootstrapinlinepayload = 1;
    hist.initialhistbootstrapinlinepayload.data = (uint8_t *)empty_history;
    hist.initialhistbootstrapinlinepayload.len = sizeof empty_history;
    pm.has_type = 1;
    pm.type = WA__MESSAGE__PROTOCOL_MESSAGE__TYPE__HISTORY_SYNC_NOTIFICATION;
    pm.historysyncnotification = &hist;
    m.protocolmessage = &pm;
    send_phone_peer(c, &m);
}

static void send_key_share(sim_conn *c)
{
    sim_phone *p = c->device->phone;
    Wa__Message m = WA__MESSAGE__INIT;
    Wa__Message__ProtocolMessage pm = WA__MESSAGE__PROTOCOL_MESSAGE__INIT;
    Wa__Message__AppStateSyncKeyShare share = WA__MESSAGE__APP_STATE_SYNC_KEY_SHARE__INIT;
    Wa__Message__AppStateSyncKey key = WA__MESSAGE__APP_STATE_SYNC_KEY__INIT;
    Wa__Message__AppStateSyncKeyId kid = WA__MESSAGE__APP_STATE_SYNC_KEY_ID__INIT;
    Wa__Message__AppStateSyncKeyData kd = WA__MESSAGE__APP_STATE_SYNC_KEY_DATA__INIT;
    Wa__Message__AppStateSyncKeyFingerprint fp = WA__MESSAGE__APP_STATE_SYNC_KEY_FINGERPRINT__INIT;
    Wa__Message__AppStateSyncKey *keys[1] = {&key};
    uint32_t raw_id = sim_be_bytes(p->appstate_key_id + 2, 4);

    kid.has_keyid = 1;
    kid.keyid.data = p->appstate_key_id;
    kid.keyid.len = sizeof p->appstate_key_id;
    fp.has_rawid = 1;
    fp.rawid = raw_id;
    fp.has_currentindex = 1;
    fp.currentindex = 0;
    kd.has_keydata = 1;
    kd.keydata.data = p->appstate_key;
    kd.keydata.len = sizeof p->appstate_key;
    kd.fingerprint = &fp;
    kd.has_timestamp = 1;
    kd.timestamp = p->appstate_key_ts;
    key.keyid = &kid;
    key.keydata = &kd;
    share.n_keys = 1;
    share.keys = keys;
    pm.has_type = 1;
    pm.type = WA__MESSAGE__PROTOCOL_MESSAGE__TYPE__APP_STATE_SYNC_KEY_SHARE;
    pm.appstatesynckeyshare = &share;
    m.protocolmessage = &pm;
    send_phone_peer(c, &m);
}

/* Send the offline queue, after what earlier connections left unacknowledged when login is set.
 * Returns the number of stanzas sent. */
static size_t drain(sim_conn *c, int login)
{
    sim_device *d = c->device;
    sim_queued *pending_head = NULL, *pending_tail = NULL, *q;
    size_t count = 0;

    if (login) {
        /* what the previous connection did not acknowledge goes first, in order */
        pending_head = d->unacked_head;
        pending_tail = d->unacked_tail;
        d->unacked_head = d->unacked_tail = NULL;
        d->unacked_len = 0;
    }
    if (pending_tail) {
        pending_tail->next = d->queue_head;
        if (d->queue_tail)
            pending_tail = d->queue_tail;
    } else {
        pending_head = d->queue_head;
        pending_tail = d->queue_tail;
    }
    d->queue_head = d->queue_tail = NULL;
    d->queue_len = 0;
    d->queue_bytes = 0;
    while ((q = pop(&pending_head, &pending_tail)) != NULL) {
        if (c->state != SIM_CONN_ONLINE) {
            push_entry(d, q); /* the connection went away: keep the rest */
            continue;
        }
        if (++q->attempts > SIM_REDELIVER_MAX) {
            wa_log_warn("sim", "%s:%u: <%s id=%s> never acknowledged, dropped", d->phone->number,
                        (unsigned)d->id, q->tag, q->id);
            sim_state_queue_del(d, q);
            release(q);
            continue;
        }
        if (send_entry(c, q) != 0) {
            push_entry(d, q);
            continue;
        }
        count++;
        if (tracked(q->tag) && q->id[0]) {
            add_unacked(d, q);
        } else {
            sim_state_queue_del(d, q);
            release(q);
        }
    }
    return count;
}

static void deliver_now(sim_conn *c)
{
    sim_device *d = c->device;
    size_t count;
    wa_arena a;
    wa_node *ib;
    char buf[24];

    if (!d)
        return;
    count = drain(c, 1);
    if (d->id != 0 && c->state == SIM_CONN_ONLINE) {
        if (!d->keyshare_sent) {
            d->keyshare_sent = 1;
            sim_state_device_update(d);
            send_key_share(c);
            count++;
        }
        send_no_history(c);
        count++;
    }
    wa_arena_init(&a, 4096);
    snprintf(buf, sizeof buf, "%zu", count);
    ib = sim_node(&a, "ib", NULL);
    sim_child(&a, ib, "offline", "count", buf, NULL);
    if (ib)
        sim_conn_send(c, ib);
    wa_arena_cleanup(&a);
}

void sim_deliver_offline(sim_conn *c)
{
    sim_state_device_update(c->device); /* --state: the push name of this login */
    c->offline_pending = 1;
    if (c->route_active) {
        c->offline_pending = 0;
        deliver_now(c);
    }
}

void sim_route_set_active(sim_conn *c, int active)
{
    c->route_active = active;
    if (!active || c->state != SIM_CONN_ONLINE || !c->device)
        return;
    if (c->offline_pending) {
        c->offline_pending = 0;
        deliver_now(c);
    } else {
        drain(c, 0); /* active again after <passive/>: what was queued meanwhile */
    }
}

wa_node *sim_route_app_state(sim_conn *c, const wa_node *iq, wa_arena *a)
{
    const wa_node *sync = wa_node_child(iq, "sync");
    wa_node *res = sim_iq_result(a, iq), *out = sim_child(a, res, "sync", NULL);
    size_t n = 0;

    (void)c;
    WA_NODE_FOREACH(col, sync)
    {
        const char *name = wa_node_attr(col, "name"), *version = wa_node_attr(col, "version");
        uint64_t v = 0;
        char vbuf[24];
        if (!wa_node_is(col, "collection") || !name || n++ >= SYNC_MAX_COLLECTIONS)
            continue;
        if (version && wa_node_attr_u64(col, "version", &v) != 0)
            v = 0;
        snprintf(vbuf, sizeof vbuf, "%llu", (unsigned long long)v);
        /* no patches and no snapshot: the collection is up to date at this version */
        sim_child(a, out, "collection", "name", name, "version", vbuf, NULL);
    }
    return res;
}
