/*
 * phone.c - the virtual phone (device 0 of a sim_phone) behaving as a real WhatsApp phone
 * toward companions, with lib/signal and an in-memory Signal store per phone.
 *
 * Keys: the store holds the phone's identity key pair and registration id (accounts.c), its
 * signed prekey and, copied in before each pkmsg is decrypted, the one-time prekeys the server
 * has handed out so far (sim_phone.opks; ids only grow, so a watermark says which are in).
 * Sessions are keyed by the peer device's phone-number address whatever form (PN or LID) a
 * stanza uses: the simulator knows both, so one device has one session here.
 *
 * Sending (POST /phones/{phone}/send, sim_phone_send_text):
 *   1:1     Message{conversation, messageContextInfo{messageSecret, deviceListMetadataVersion}},
 *           padded (wa_signal_pad), encrypted for every present companion (device >= 1) of the
 *           recipient; the sender's own companions get Message{deviceSentMessage{destinationJid,
 *           message}, messageContextInfo} as a phone sends them. A device without a session gets
 *           one from the bundle the server holds (its one-time prekey taken, as a bundle query
 *           would); a device whose identity changed (unlinked and re-paired in the same slot)
 *           gets a new one. Each copy is <message from=PHONE id t type='text' notify=PUSHNAME
 *           [sender_lid|sender_pn] | [recipient]><enc v='2' type='pkmsg|msg'/></message>,
 *           delivered by sim_route_deliver (at once, or queued for an offline device). A phone
 *           sends no <device-identity> (only companions have an ADV identity; Baileys does not
 *           require one on received pkmsgs). The peer copies carry the other address form
 *           (sender_lid / sender_pn) as route.c does, so Baileys 7 learns the PN<->LID mapping;
 *           the own-device copies carry none (Baileys 7 would map the peer to the sender).
 *   group   the phone's SenderKeyDistributionMessage goes 1:1 (pkmsg/msg, Message{
 *           senderKeyDistributionMessage}) to each member device that has not had it (tracked
 *           per group and device identity), then the skmsg to every member device, in one
 *           <message from=GID participant=PHONE addressing_mode='pn' participant_lid ..> per
 *           device, pairwise enc first (route.c's group fan-out order).
 *   The message id is remembered for routing (sim_route_remember), so receipts come back to
 *   device 0, i.e. to sim_phone_receive.
 *   peer    the phone's protocol messages to its own companions (queue.c at login: the app-state
 *           sync key share, the history sync notification; sim_phone_send_peer) go the same way
 *           as its other messages to a companion: padded, encrypted with the session to that
 *           device (pkmsg until the device answers on it, then msg), in <message from=PHONE
 *           type='text' id t category='peer' notify><enc v='2' type='pkmsg|msg'/></message>
 *           (whatsmeow's peer messages: type 'text', category 'peer'; Baileys 7 and whatsmeow
 *           decrypt them like any message and answer with a peer_msg receipt). Kept in the
 *           sent ring like texts: a retry receipt gets the message again on a new session.
 * Receiving (sim_phone_receive, called by sim_route_deliver for device 0):
 *   <receipt>  recorded (last SIM_VPHONE_RECEIPTS_MAX); type='retry': the session with the
 *              asking device is rebuilt, from the <keys> bundle in the receipt or else a fresh
 *              one from the server's state, and the message is sent again to that device alone
 *              (<enc count=N>; a group message as a 1:1 enc carrying the text and the SKDM).
 *   <message>  pkmsg/msg/skmsg decrypted with the phone's store (SKDMs installed), the text
 *              recorded (last SIM_VPHONE_INBOX_MAX), and a delivery receipt sent back to the
 *              sending device as a phone does; a message that does not decrypt gets a retry
 *              receipt carrying the phone's registration id and a fresh bundle (at most
 *              SIM_VPHONE_RETRY_MAX times per id).
 * Control: GET /phones/{phone}/messages (each with `plain`: the decrypted Message of every enc, in
 * hex, for the wire-fidelity test), GET /phones/{phone}/receipts[?id=ID], and
 * POST /phones/{phone}/forget-sessions (the phone drops its 1:1 sessions: tests the retry path).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/log.h"
#include "core/util.h"
#include "http/httpd.h"
#include "jid/jid.h"
#include "proto/message.pb-c.h"
#include "proto/proto.h"
#include "signal/memstore.h"
#include "signal/signal.h"
#include "sim.h"
#include "util.h"
#include "wa/error.h"

#define VP_ARENA           (1u << 20)                   /* one stanza built or a parsed request */
#define VP_PLAIN_MAX       (SIM_VPHONE_TEXT_MAX + 4096) /* a Message protobuf we send */
#define VP_SECRET_LEN      32
#define VP_SKDM_MARKS_MAX  8192 /* (group, device) pairs that have our sender key */
#define VP_KEY_BUNDLE_TYPE 5    /* <keys><type>: Curve25519 (Signal's DJB type) */
/* A phone's receipts come back after a network round trip, never within the sender's own send
 * call. Baileys keeps a sent message for a resend only once sending returned (an instant retry
 * receipt finds nothing to resend), and Baileys 7 buffers the upsert of its own message for
 * 100 ms (event-buffer.js createBufferedFunction) and folds a delivery receipt that arrives
 * meanwhile into it: no messages.update, so an application never sees the tick. */
#define VP_RECEIPT_DELAY_MS 250
#define VP_RETRY_DELAY_MS   300
#define VP_PENDING_MAX      256 /* receipts waiting for their delay (more are sent at once) */
#define VP_RETRY_COUNT_MAX  99  /* <enc count> of a resend */
#define VP_PLAIN_KEEP       8   /* decrypted encs kept per inbox message */

/* A receipt to send later (a list, VP_PENDING_MAX long at most). */
typedef struct vp_pending {
    struct vp_pending *next;
    char user[SIM_PHONE_LEN + 1];
    uint16_t device;
    int lid;
    int retry;
    unsigned count;
    char id[SIM_MSG_ID_MAX + 1];
    char from[SIM_JID_LEN]; /* the message's from (a group JID or the sender) */
    char t[24];
    uint64_t due; /* loop ms */
} vp_pending;

/* The rings below are arrays of pointers allocated on first use, their entries one heap block
 * each: a phone that only receives now and then costs a few kilobytes (scale tests have
 * thousands of phones). */

/* A message the phone sent (kept for retry receipts). */
typedef struct vp_sent {
    char id[SIM_MSG_ID_MAX + 1];
    char to[SIM_JID_LEN]; /* the user (PN or LID form) or the group JID */
    uint8_t secret[VP_SECRET_LEN];
    int group, lid;
    char t[24];
    uint8_t *peer; /* a peer message: its serialized Message (heap), else NULL */
    size_t peer_len;
    char text[]; /* NUL-terminated */
} vp_sent;

/* A message companions sent the phone. Strings are heap (NULL: none). */
typedef struct vp_msg {
    char *id, *from; /* sending device (PN form) */
    char *chat;      /* the peer user, the group, or the destination of own copies */
    char *text;
    char *error;      /* why it did not decrypt */
    const char *kind; /* static: conversation, extendedText, ... */
    uint64_t t;
    int from_me;
    unsigned retries; /* retry receipts we sent for it */
    json_t *plain;    /* [{"enc","hex"}]: each decrypted, unpadded Message (wire-fidelity tests) */
} vp_msg;

typedef struct vp_receipt {
    uint64_t t;
    char type[16];    /* delivery, read, retry, ... */
    const char *from; /* the device that sent the receipt (after id in the block) */
    char id[];
} vp_receipt;

typedef struct vp_mark {
    char group[SIM_JID_LEN];
    char user[SIM_PHONE_LEN + 1];
    uint16_t device;
    uint8_t identity[32];
} vp_mark;

struct sim_vphone {
    wa_signal_memstore *mem;
    wa_signal_store st;
    wa_signal *sig;
    uint32_t opk_synced; /* one-time prekeys with ids up to this are in the store */
    vp_sent **sent;      /* SIM_VPHONE_SENT_MAX slots */
    size_t sent_next;
    vp_msg **inbox; /* SIM_VPHONE_INBOX_MAX slots */
    size_t inbox_next;
    vp_receipt **receipts; /* SIM_VPHONE_RECEIPTS_MAX slots */
    size_t receipts_next;
    vp_mark *marks; /* heap, VP_SKDM_MARKS_MAX at most */
    size_t nmarks, marks_cap;
    vp_pending *pending; /* in the order they were made */
    size_t npending;
    uv_timer_t *timer; /* heap (it may outlive the phone while closing); data = the phone */
    sim *sim;
};

/* ---- state ----------------------------------------------------------------------------------- */

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void free_str(char *s)
{
    if (s) {
        wa_wipe(s, strlen(s));
        free(s);
    }
}

static void free_sent(vp_sent *m)
{
    if (m) {
        if (m->peer) {
            wa_wipe(m->peer, m->peer_len);
            free(m->peer);
        }
        wa_wipe(m, sizeof *m + strlen(m->text));
        free(m);
    }
}

static void free_msg(vp_msg *m)
{
    if (m) {
        free(m->id);
        free(m->from);
        free(m->chat);
        free_str(m->text);
        free(m->error);
        json_decref(m->plain);
        free(m);
    }
}

/* Replace *dst with a copy of src (NULL: none). 0 or WA_ENOMEM (then *dst is NULL). */
static int set_str(char **dst, const char *src)
{
    free(*dst);
    *dst = src ? strdup(src) : NULL;
    return src && !*dst ? WA_ENOMEM : 0;
}

void sim_vphone_free(sim_phone *p)
{
    sim_vphone *v = p->vphone;
    size_t i;

    if (!v)
        return;
    if (v->timer) {
        uv_handle_t *h = (uv_handle_t *)v->timer;
        if (uv_is_closing(h)) { /* closed by the loop's shutdown walk: the loop is over */
            free(h);
        } else {
            h->data = NULL;
            uv_close(h, free_handle);
        }
    }
    wa_signal_free(v->sig);
    wa_signal_memstore_free(v->mem);
    for (i = 0; v->sent && i < SIM_VPHONE_SENT_MAX; i++)
        free_sent(v->sent[i]);
    for (i = 0; v->inbox && i < SIM_VPHONE_INBOX_MAX; i++)
        free_msg(v->inbox[i]);
    for (i = 0; v->receipts && i < SIM_VPHONE_RECEIPTS_MAX; i++)
        free(v->receipts[i]);
    free(v->sent);
    free(v->inbox);
    free(v->receipts);
    while (v->pending) {
        vp_pending *q = v->pending;
        v->pending = q->next;
        free(q);
    }
    free(v->marks);
    wa_wipe(v, sizeof *v);
    free(v);
    p->vphone = NULL;
}

/* The phone's Signal state, made on first use. NULL on failure (logged). */
static sim_vphone *vphone(sim *s, sim_phone *p)
{
    sim_vphone *v = p->vphone;
    const sim_keys *k = &p->devices[0].keys;
    wa_signal_keypair id;
    wa_signal_signed_prekey spk;
    int rc;

    if (v)
        return v;
    v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->sim = s;
    memcpy(id.pub, p->identity_pub, 32);
    memcpy(id.priv, p->identity_priv, 32);
    id.priv[0] &= 248;  /* accounts.c's keys are X25519 keys: clamping changes nothing, but */
    id.priv[31] &= 127; /* libsignal-protocol-c wants them clamped (signal.h) */
    id.priv[31] |= 64;
    memset(&spk, 0, sizeof spk);
    spk.id = k->spk_id;
    memcpy(spk.kp.pub, k->spk_pub, 32);
    memcpy(spk.kp.priv, p->spk_priv, 32);
    spk.kp.priv[0] &= 248;
    spk.kp.priv[31] &= 127;
    spk.kp.priv[31] |= 64;
    memcpy(spk.sig, k->spk_sig, 64);
    rc = wa_signal_memstore_new(&v->mem, &id, k->reg_id, 0);
    if (rc == 0) {
        wa_signal_memstore_bind(v->mem, &v->st);
        /* --state: sessions, identities and sender keys mirrored and restored (state.c) */
        rc = sim_state_phone_signal(s, p, &v->st);
    }
    if (rc == 0)
        rc = wa_signal_new(&v->sig, &v->st);
    if (rc == 0)
        rc = wa_signal_save_signed_prekey(v->sig, &spk);
    wa_wipe(&id, sizeof id);
    wa_wipe(&spk, sizeof spk);
    if (rc != 0) {
        wa_log_warn("sim", "phone %s: no Signal store: %s", p->number, wa_strerror(rc));
        wa_signal_free(v->sig);
        wa_signal_memstore_free(v->mem);
        free(v);
        return NULL;
    }
    p->vphone = v;
    return v;
}

/* Copy the one-time prekeys the server made since the last call into the store (their private
 * halves: a pkmsg names one by id). Ids grow by one per key (accounts.c); the watermark does not
 * follow a wrap past 0xFFFFFF. */
static void sync_prekeys(sim_vphone *v, const sim_phone *p)
{
    size_t i;
    uint32_t high = v->opk_synced;

    for (i = 0; i < p->nopks; i++) {
        const sim_phone_prekey *k = &p->opks[i];
        wa_signal_prekey pk;
        int rc;
        if (k->id <= v->opk_synced || k->id == 0 || k->id > WA_SIGNAL_PREKEY_ID_MAX)
            continue;
        pk.id = k->id;
        memcpy(pk.kp.pub, k->pub, 32);
        memcpy(pk.kp.priv, k->priv, 32);
        rc = wa_signal_save_prekeys(v->sig, &pk, 1);
        wa_wipe(&pk, sizeof pk);
        if (rc != 0) {
            wa_log_warn("sim", "phone %s: cannot store prekey %u: %s", p->number, (unsigned)k->id,
                        wa_strerror(rc));
            break;
        }
        if (k->id > high)
            high = k->id;
    }
    v->opk_synced = high;
}

static int device_addr(const sim_device *d, wa_signal_addr *a)
{
    return wa_signal_addr_make(a, d->phone->number, WA_SIGNAL_PN, d->id);
}

static int has_keys(const sim_device *d)
{
    static const uint8_t zero[32];

    return d->present && d->id != 0 && memcmp(d->keys.identity_pub, zero, 32) != 0;
}

/* ---- sender key marks ------------------------------------------------------------------------ */

static vp_mark *mark_find(sim_vphone *v, const char *group, const sim_device *d)
{
    size_t i;

    for (i = 0; i < v->nmarks; i++) {
        vp_mark *m = &v->marks[i];
        if (m->device == d->id && strcmp(m->user, d->phone->number) == 0 &&
            strcmp(m->group, group) == 0)
            return m;
    }
    return NULL;
}

static int has_mark(sim_vphone *v, const char *group, const sim_device *d)
{
    const vp_mark *m = mark_find(v, group, d);

    return m && memcmp(m->identity, d->keys.identity_pub, 32) == 0;
}

static void set_mark(sim_vphone *v, const char *group, const sim_device *d)
{
    vp_mark *m = mark_find(v, group, d);

    if (!m) {
        if (v->nmarks == v->marks_cap) {
            size_t ncap = v->marks_cap ? v->marks_cap * 2 : 32;
            vp_mark *nm;
            if (ncap > VP_SKDM_MARKS_MAX)
                ncap = VP_SKDM_MARKS_MAX;
            if (v->nmarks == ncap) { /* full: forget the oldest (it gets the SKDM again) */
                memmove(v->marks, v->marks + 1, (v->nmarks - 1) * sizeof *v->marks);
                v->nmarks--;
            } else {
                nm = realloc(v->marks, ncap * sizeof *nm);
                if (!nm)
                    return;
                v->marks = nm;
                v->marks_cap = ncap;
            }
        }
        m = &v->marks[v->nmarks++];
        snprintf(m->group, sizeof m->group, "%s", group);
        snprintf(m->user, sizeof m->user, "%s", d->phone->number);
        m->device = d->id;
    }
    memcpy(m->identity, d->keys.identity_pub, 32);
}

/* ---- sessions -------------------------------------------------------------------------------- */

/* Start a session with d from the bundle the server holds (taking one of its one-time prekeys,
 * as a bundle query does). */
static int session_from_server(sim_vphone *v, sim_device *d, const wa_signal_addr *a)
{
    wa_signal_bundle b;
    sim_prekey pk;

    memset(&b, 0, sizeof b);
    b.reg_id = d->keys.reg_id;
    memcpy(b.identity_pub, d->keys.identity_pub, 32);
    b.spk_id = d->keys.spk_id;
    memcpy(b.spk_pub, d->keys.spk_pub, 32);
    memcpy(b.spk_sig, d->keys.spk_sig, 64);
    if (sim_device_take_prekey(d, &pk) == 0) {
        b.has_prekey = 1;
        b.prekey_id = pk.id;
        memcpy(b.prekey_pub, pk.pub, 32);
    }
    return wa_signal_process_bundle(v->sig, a, &b);
}

/* A usable session with d: made when there is none, remade when d's identity is not the one
 * the session was made with (the slot was unlinked and paired again). */
static int ensure_session(sim_vphone *v, sim_device *d, const wa_signal_addr *a)
{
    uint8_t known[32];
    int rc;

    rc = v->st.load_identity_cb(a, known, v->st.user_data);
    if (rc < 0)
        return rc;
    if (rc == 1 && !wa_ct_equal(known, d->keys.identity_pub, 32)) {
        wa_log_info("sim", "phone: %s:%u has a new identity: new session", d->phone->number,
                    (unsigned)d->id);
        rc = wa_signal_delete_session(v->sig, a);
        if (rc)
            return rc;
    } else {
        rc = wa_signal_has_session(v->sig, a);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
    return session_from_server(v, d, a);
}

/* ---- building -------------------------------------------------------------------------------- */

/* The Message protobuf for text (NULL: none), optionally wrapped as deviceSentMessage for
 * destination dsm_dest and/or carrying our SKDM for group; padded into out. */
static int build_plain(const char *text, const uint8_t secret[VP_SECRET_LEN], const char *dsm_dest,
                       const char *group, const wa_buf *skdm, wa_buf *out)
{
    Wa__Message inner = WA__MESSAGE__INIT, outer = WA__MESSAGE__INIT;
    Wa__MessageContextInfo mci = WA__MESSAGE_CONTEXT_INFO__INIT;
    Wa__Message__DeviceSentMessage dsm = WA__MESSAGE__DEVICE_SENT_MESSAGE__INIT;
    Wa__Message__SenderKeyDistributionMessage sk =
        WA__MESSAGE__SENDER_KEY_DISTRIBUTION_MESSAGE__INIT;
    Wa__Message *top = &inner;
    wa_buf pb;
    int rc;

    if (text) {
        inner.conversation = (char *)text;
        mci.has_messagesecret = 1;
        mci.messagesecret.data = (uint8_t *)secret;
        mci.messagesecret.len = VP_SECRET_LEN;
        mci.has_devicelistmetadataversion = 1;
        mci.devicelistmetadataversion = 2;
        inner.messagecontextinfo = &mci;
    }
    if (skdm) {
        sk.groupid = (char *)group;
        sk.has_axolotlsenderkeydistributionmessage = 1;
        sk.axolotlsenderkeydistributionmessage.data = skdm->data;
        sk.axolotlsenderkeydistributionmessage.len = skdm->len;
        inner.senderkeydistributionmessage = &sk;
    }
    if (dsm_dest) {
        dsm.destinationjid = (char *)dsm_dest;
        dsm.message = &inner;
        outer.devicesentmessage = &dsm;
        outer.messagecontextinfo = inner.messagecontextinfo;
        top = &outer;
    }
    wa_buf_init(&pb, VP_PLAIN_MAX);
    rc = wa_proto_pack(top, &pb);
    if (rc == 0)
        rc = wa_signal_pad(pb.data, pb.len, out);
    wa_buf_wipe_cleanup(&pb);
    return rc;
}

/* <enc v='2' type=T [count=N]>ct</enc> under msg. */
static int add_enc(wa_arena *a, wa_node *msg, int type, const wa_buf *ct, unsigned count)
{
    char cnt[16];
    wa_node *e;

    snprintf(cnt, sizeof cnt, "%u", count);
    e = sim_child(a, msg, "enc", "v", "2", "type",
                  type == WA_SIGNAL_PKMSG ? "pkmsg"
                  : type == WA_SIGNAL_MSG ? "msg"
                                          : "skmsg",
                  "count", count ? cnt : NULL, NULL);
    return sim_bytes(a, e, ct->data, ct->len) ? 0 : WA_ENOMEM;
}

/* The head of a 1:1 copy for d (own: one of the sender's companions). */
static wa_node *user_head(wa_arena *a, const sim_phone *p, const vp_sent *m, int own)
{
    char from[SIM_JID_LEN], alt[SIM_JID_LEN];
    wa_node *n;

    sim_user_jid(p, m->lid, from, sizeof from);
    sim_user_jid(p, !m->lid, alt, sizeof alt);
    n = sim_node(a, "message", "from", from, "type", "text", "id", m->id, "t", m->t, "notify",
                 p->push_name, NULL);
    if (n && own && wa_node_set_attr(a, n, "recipient", m->to) != 0)
        return NULL;
    if (n && !own && wa_node_set_attr(a, n, m->lid ? "sender_pn" : "sender_lid", alt) != 0)
        return NULL;
    return n;
}

static wa_node *group_head(wa_arena *a, const sim_phone *p, const vp_sent *m)
{
    char part[SIM_JID_LEN], alt[SIM_JID_LEN];

    sim_user_jid(p, 0, part, sizeof part);
    sim_user_jid(p, 1, alt, sizeof alt);
    return sim_node(a, "message", "from", m->to, "type", "text", "id", m->id, "t", m->t, "notify",
                    p->push_name, "participant", part, "addressing_mode", "pn", "participant_lid",
                    alt, NULL);
}

/* The head of a peer message to one of the phone's own companions. */
static wa_node *peer_head(wa_arena *a, const sim_phone *p, const vp_sent *m)
{
    char from[SIM_JID_LEN];

    sim_user_jid(p, 0, from, sizeof from);
    return sim_node(a, "message", "from", from, "type", "text", "id", m->id, "t", m->t, "category",
                    "peer", "notify", p->push_name, NULL);
}

/* Encrypt plain for d (session made when needed) and append the enc to msg. */
static int enc_for(sim_vphone *v, sim_device *d, const wa_buf *plain, wa_arena *a, wa_node *msg,
                   unsigned count)
{
    wa_signal_addr addr;
    wa_buf ct;
    int rc, type = 0;

    rc = device_addr(d, &addr);
    if (rc == 0)
        rc = ensure_session(v, d, &addr);
    wa_buf_init(&ct, plain->len + WA_SIGNAL_CT_OVERHEAD);
    if (rc == 0)
        rc = wa_signal_encrypt(v->sig, &addr, plain->data, plain->len, &type, &ct);
    if (rc == 0)
        rc = add_enc(a, msg, type, &ct, count);
    if (rc != 0)
        wa_log_warn("sim", "phone: cannot encrypt for %s:%u: %s (%s)", d->phone->number,
                    (unsigned)d->id, wa_strerror(rc), wa_signal_last_error(v->sig));
    wa_buf_cleanup(&ct);
    return rc;
}

static void deliver(sim *s, sim_device *d, const wa_node *msg)
{
    sim_route_deliver(s, d, msg);
    s->stats.messages_routed++;
}

/* ---- sending --------------------------------------------------------------------------------- */

static vp_sent *sent_find(sim_vphone *v, const char *id)
{
    size_t i;

    for (i = 0; v->sent && i < SIM_VPHONE_SENT_MAX; i++)
        if (v->sent[i] && v->sent[i]->id[0] && strcmp(v->sent[i]->id, id) == 0)
            return v->sent[i];
    return NULL;
}

/* A new entry in the sent ring (the oldest goes), holding a copy of text. */
static vp_sent *sent_new(sim_vphone *v, const char *text)
{
    size_t len = strlen(text);
    vp_sent *m;

    if (!v->sent && !(v->sent = calloc(SIM_VPHONE_SENT_MAX, sizeof *v->sent)))
        return NULL;
    m = calloc(1, sizeof *m + len + 1);
    if (!m)
        return NULL;
    memcpy(m->text, text, len + 1);
    free_sent(v->sent[v->sent_next]);
    v->sent[v->sent_next] = m;
    v->sent_next = (v->sent_next + 1) % SIM_VPHONE_SENT_MAX;
    return m;
}

/* Send m (1:1) to every companion of peer and of the sender. Returns the devices reached. */
static int send_user(sim *s, sim_phone *p, sim_vphone *v, const vp_sent *m, sim_phone *peer)
{
    wa_buf plain, dsm_plain;
    int reached = 0, rc;
    unsigned i, pass;

    wa_buf_init(&plain, VP_PLAIN_MAX);
    wa_buf_init(&dsm_plain, VP_PLAIN_MAX);
    rc = build_plain(m->text, m->secret, NULL, NULL, NULL, &plain);
    if (rc == 0)
        rc = build_plain(m->text, m->secret, m->to, NULL, NULL, &dsm_plain);
    if (rc != 0) {
        wa_log_warn("sim", "phone %s: cannot build message %s: %s", p->number, m->id,
                    wa_strerror(rc));
        goto out;
    }
    for (pass = 0; pass < 2; pass++) {
        sim_phone *who = pass == 0 ? peer : p;
        for (i = 1; i < SIM_MAX_DEVICES; i++) {
            sim_device *d = &who->devices[i];
            wa_arena a;
            wa_node *msg;
            if (!has_keys(d))
                continue;
            wa_arena_init(&a, VP_ARENA);
            msg = user_head(&a, p, m, pass == 1);
            if (msg && enc_for(v, d, pass == 1 ? &dsm_plain : &plain, &a, msg, 0) == 0) {
                deliver(s, d, msg);
                reached++;
            }
            wa_arena_cleanup(&a);
        }
    }
out:
    wa_buf_wipe_cleanup(&plain);
    wa_buf_wipe_cleanup(&dsm_plain);
    return reached;
}

/* Send m to every member device of g: SKDM first where it is missing, then the skmsg. */
static int send_group(sim *s, sim_phone *p, sim_vphone *v, const vp_sent *m, sim_group *g)
{
    wa_signal_addr own;
    wa_buf skdm, skdm_plain, plain, skmsg;
    int reached = 0, rc;
    size_t i;
    unsigned k;

    wa_buf_init(&skdm, WA_SIGNAL_SKDM_MAX);
    wa_buf_init(&skdm_plain, VP_PLAIN_MAX);
    wa_buf_init(&plain, VP_PLAIN_MAX);
    wa_buf_init(&skmsg, VP_PLAIN_MAX + WA_SIGNAL_CT_OVERHEAD);
    rc = wa_signal_addr_make(&own, p->number, WA_SIGNAL_PN, 0);
    if (rc == 0)
        rc = wa_signal_group_create_skdm(v->sig, m->to, &own, &skdm);
    if (rc == 0)
        rc = build_plain(NULL, NULL, NULL, m->to, &skdm, &skdm_plain);
    if (rc == 0)
        rc = build_plain(m->text, m->secret, NULL, NULL, NULL, &plain);
    if (rc == 0)
        rc = wa_signal_group_encrypt(v->sig, m->to, &own, plain.data, plain.len, &skmsg);
    if (rc != 0) {
        wa_log_warn("sim", "phone %s: cannot build group message %s: %s (%s)", p->number, m->id,
                    wa_strerror(rc), wa_signal_last_error(v->sig));
        goto out;
    }
    for (i = 0; i < g->nmembers; i++) {
        sim_phone *mp = g->members[i].phone;
        for (k = 1; k < SIM_MAX_DEVICES; k++) {
            sim_device *d = &mp->devices[k];
            wa_arena a;
            wa_node *msg;
            int need = 0;
            if (!has_keys(d))
                continue;
            wa_arena_init(&a, VP_ARENA);
            msg = group_head(&a, p, m);
            if (msg && !has_mark(v, m->to, d)) {
                need = 1;
                if (enc_for(v, d, &skdm_plain, &a, msg, 0) != 0)
                    msg = NULL;
            }
            if (msg && add_enc(&a, msg, 0, &skmsg, 0) == 0) {
                deliver(s, d, msg);
                if (need)
                    set_mark(v, m->to, d);
                reached++;
            }
            wa_arena_cleanup(&a);
        }
    }
out:
    wa_buf_wipe_cleanup(&skdm);
    wa_buf_wipe_cleanup(&skdm_plain);
    wa_buf_wipe_cleanup(&plain);
    wa_buf_cleanup(&skmsg);
    return reached;
}

/* "to": a phone number ("+49 111", "49111"), a user JID (PN or LID) or a group JID. */
static int resolve_to(sim *s, const char *to, sim_phone **peer, sim_group **group, int *lid)
{
    char digits[SIM_PHONE_LEN + 1];
    size_t i, n = 0;
    wa_jid j;

    *peer = NULL;
    *group = NULL;
    *lid = 0;
    if (strchr(to, '@')) {
        if (wa_jid_parse(to, &j) != 0)
            return WA_EINVAL;
        if (wa_jid_is_group(&j)) {
            *group = sim_group_find(s, to);
            return *group ? 0 : WA_ENOTFOUND;
        }
        if (j.device || j.agent || !(wa_jid_is_user(&j) || wa_jid_is_lid(&j)))
            return WA_EINVAL;
        *peer = sim_phone_by_jid(s, to, lid);
        return *peer ? 0 : WA_ENOTFOUND;
    }
    for (i = 0; to[i]; i++) {
        if (to[i] >= '0' && to[i] <= '9') {
            if (n >= SIM_PHONE_LEN)
                return WA_EINVAL;
            digits[n++] = to[i];
        } else if (to[i] != '+' && to[i] != ' ' && to[i] != '-') {
            return WA_EINVAL;
        }
    }
    if (n == 0)
        return WA_EINVAL;
    digits[n] = 0;
    *peer = sim_phone_find(s, digits);
    return *peer ? 0 : WA_ENOTFOUND;
}

/* A phone message id: 16 random bytes in upper-case hex, as Android phones make them. 0 or
 * WA_EIO. */
static int new_msg_id(char out[SIM_MSG_ID_MAX + 1])
{
    uint8_t rid[16];
    size_t i;

    if (wa_random(rid, sizeof rid) != 0)
        return WA_EIO;
    wa_hex_encode(out, rid, sizeof rid);
    for (i = 0; out[i]; i++)
        if (out[i] >= 'a' && out[i] <= 'f')
            out[i] = (char)(out[i] - 'a' + 'A');
    return 0;
}

int sim_phone_send_text(sim *s, sim_phone *p, const char *to, const char *text, char *id_out,
                        size_t id_cap, int *devices)
{
    sim_vphone *v;
    sim_phone *peer;
    sim_group *g;
    vp_sent *m;
    int rc, lid, reached;

    if (strlen(text) > SIM_VPHONE_TEXT_MAX)
        return WA_ELIMIT;
    rc = resolve_to(s, to, &peer, &g, &lid);
    if (rc)
        return rc;
    if (peer == p)
        return WA_EINVAL; /* the phone's own chat: not simulated */
    if (g && !sim_group_member_of(g, p))
        return WA_ESTATE;
    v = vphone(s, p);
    if (!v)
        return WA_ENOMEM;
    m = sent_new(v, text);
    if (!m)
        return WA_ENOMEM;
    if (new_msg_id(m->id) != 0 || wa_random(m->secret, sizeof m->secret) != 0) {
        m->id[0] = 0;
        return WA_EIO;
    }
    sim_unix_str(m->t, sizeof m->t);
    m->lid = lid;
    m->group = g != NULL;
    if (g)
        snprintf(m->to, sizeof m->to, "%s@g.us", g->id);
    else
        sim_user_jid(peer, lid, m->to, sizeof m->to);
    sim_route_remember(s, m->id, &p->devices[0], lid);
    reached = g ? send_group(s, p, v, m, g) : send_user(s, p, v, m, peer);
    wa_log_debug("sim", "phone %s sent %s to %s: %d devices", p->number, m->id, m->to, reached);
    if (id_cap)
        snprintf(id_out, id_cap, "%s", m->id);
    if (devices)
        *devices = reached;
    return 0;
}

int sim_phone_send_peer(sim *s, sim_device *d, const uint8_t *msg, size_t len)
{
    sim_phone *p = d->phone;
    sim_vphone *v;
    vp_sent *m;
    wa_buf plain;
    wa_arena a;
    wa_node *n;
    int rc;

    if (!has_keys(d))
        return WA_ESTATE;
    v = vphone(s, p);
    if (!v)
        return WA_ENOMEM;
    /* kept like a text: a retry receipt for it gets it again on a new session */
    m = sent_new(v, "");
    if (!m || !(m->peer = malloc(len ? len : 1)))
        return WA_ENOMEM;
    memcpy(m->peer, msg, len);
    m->peer_len = len;
    sim_user_jid(p, 0, m->to, sizeof m->to);
    sim_unix_str(m->t, sizeof m->t);
    wa_buf_init(&plain, len + 256);
    wa_arena_init(&a, VP_ARENA);
    rc = new_msg_id(m->id);
    if (rc == 0)
        rc = wa_signal_pad(msg, len, &plain);
    n = rc == 0 ? peer_head(&a, p, m) : NULL;
    if (rc == 0 && !n)
        rc = WA_ENOMEM;
    if (rc == 0)
        rc = enc_for(v, d, &plain, &a, n, 0);
    if (rc == 0) {
        /* its receipts (peer_msg, hist_sync, retry) come back to device 0 */
        sim_route_remember(s, m->id, &p->devices[0], 0);
        sim_route_deliver(s, d, n);
    } else {
        m->id[0] = 0;
    }
    wa_arena_cleanup(&a);
    wa_buf_wipe_cleanup(&plain);
    return rc;
}

/* Send sent message m again to device d alone (the answer to its retry receipt). */
static void resend(sim *s, sim_phone *p, sim_vphone *v, const vp_sent *m, sim_device *d,
                   unsigned count)
{
    wa_signal_addr own;
    wa_buf skdm, plain;
    wa_arena a;
    wa_node *msg;
    int rc = 0, own_dev = d->phone == p;

    wa_buf_init(&skdm, WA_SIGNAL_SKDM_MAX);
    wa_buf_init(&plain, VP_PLAIN_MAX);
    wa_arena_init(&a, VP_ARENA);
    if (m->peer) {
        if (!own_dev) {
            rc = WA_EINVAL; /* only the phone's own companions get peer messages */
            msg = NULL;
        } else {
            rc = wa_signal_pad(m->peer, m->peer_len, &plain);
            msg = rc == 0 ? peer_head(&a, p, m) : NULL;
        }
    } else if (m->group) {
        /* a 1:1 enc with the text and our SKDM, no skmsg */
        rc = wa_signal_addr_make(&own, p->number, WA_SIGNAL_PN, 0);
        if (rc == 0)
            rc = wa_signal_group_create_skdm(v->sig, m->to, &own, &skdm);
        if (rc == 0)
            rc = build_plain(m->text, m->secret, NULL, m->to, &skdm, &plain);
        msg = rc == 0 ? group_head(&a, p, m) : NULL;
    } else {
        rc = build_plain(m->text, m->secret, own_dev ? m->to : NULL, NULL, NULL, &plain);
        msg = rc == 0 ? user_head(&a, p, m, own_dev) : NULL;
    }
    if (msg && enc_for(v, d, &plain, &a, msg, count ? count : 1) == 0) {
        deliver(s, d, msg);
        if (m->group)
            set_mark(v, m->to, d);
        wa_log_info("sim", "phone %s: resent %s to %s:%u", p->number, m->id, d->phone->number,
                    (unsigned)d->id);
    } else {
        wa_log_warn("sim", "phone %s: cannot resend %s to %s:%u", p->number, m->id,
                    d->phone->number, (unsigned)d->id);
    }
    wa_arena_cleanup(&a);
    wa_buf_wipe_cleanup(&skdm);
    wa_buf_wipe_cleanup(&plain);
}

/* ---- receipts -------------------------------------------------------------------------------- */

static int child_bytes(const wa_node *n, const char *tag, const uint8_t **p, size_t *len)
{
    const wa_node *c = wa_node_child(n, tag);

    return c ? wa_node_content_bytes(c, p, len) : -1;
}

static int child_uint(const wa_node *n, const char *tag, size_t width, uint32_t *out)
{
    const uint8_t *p;
    size_t len;

    if (child_bytes(n, tag, &p, &len) != 0 || len != width)
        return -1;
    *out = sim_be_bytes(p, len);
    return 0;
}

/* A 32-byte key, also accepted in libsignal's 33-byte 05 || key form. */
static int child_key(const wa_node *n, const char *tag, uint8_t out[32])
{
    const uint8_t *p;
    size_t len;

    if (child_bytes(n, tag, &p, &len) != 0)
        return -1;
    if (len == 33 && p[0] == VP_KEY_BUNDLE_TYPE) {
        p++;
        len--;
    }
    if (len != 32)
        return -1;
    memcpy(out, p, 32);
    return 0;
}

/* The bundle of a retry receipt: <registration/> and <keys><type/><identity/>[<key><id/><value/>
 * </key>]<skey><id/><value/><signature/></skey>..</keys>. 0 or -1. */
static int retry_bundle(const wa_node *receipt, wa_signal_bundle *b)
{
    const wa_node *keys = wa_node_child(receipt, "keys");
    const wa_node *skey = wa_node_child(keys, "skey"), *key = wa_node_child(keys, "key");
    const uint8_t *p;
    size_t len;
    uint32_t type;

    memset(b, 0, sizeof *b);
    if (!keys || !skey || child_uint(keys, "type", 1, &type) != 0 || type != VP_KEY_BUNDLE_TYPE ||
        child_uint(receipt, "registration", 4, &b->reg_id) != 0 ||
        child_key(keys, "identity", b->identity_pub) != 0 ||
        child_uint(skey, "id", 3, &b->spk_id) != 0 || child_key(skey, "value", b->spk_pub) != 0 ||
        child_bytes(skey, "signature", &p, &len) != 0 || len != 64)
        return -1;
    memcpy(b->spk_sig, p, 64);
    if (key) {
        if (child_uint(key, "id", 3, &b->prekey_id) != 0 ||
            child_key(key, "value", b->prekey_pub) != 0)
            return -1;
        b->has_prekey = 1;
    }
    return 0;
}

static void handle_retry(sim *s, sim_phone *p, sim_vphone *v, const wa_node *n, const char *id,
                         const char *device_jid)
{
    const wa_node *retry = wa_node_child(n, "retry");
    sim_device *d = sim_device_by_jid(s, device_jid, NULL);
    vp_sent *m = sent_find(v, id);
    wa_signal_addr addr;
    wa_signal_bundle b;
    uint64_t count = 1;
    int rc;

    if (!d || d->id == 0 || !m) {
        wa_log_info("sim", "phone %s: retry receipt for %s from %s: %s", p->number, id,
                    device_jid ? device_jid : "?", m ? "unknown device" : "message not kept");
        return;
    }
    if (retry && wa_node_attr(retry, "count"))
        wa_node_attr_u64(retry, "count", &count);
    rc = device_addr(d, &addr);
    if (rc == 0 && retry_bundle(n, &b) == 0) {
        rc = wa_signal_process_bundle(v->sig, &addr, &b);
    } else if (rc == 0) {
        rc = wa_signal_delete_session(v->sig, &addr);
        if (rc == 0)
            rc = session_from_server(v, d, &addr);
    }
    if (rc != 0) {
        wa_log_warn("sim", "phone %s: retry of %s from %s: no new session: %s (%s)", p->number, id,
                    device_jid, wa_strerror(rc), wa_signal_last_error(v->sig));
        return;
    }
    resend(s, p, v, m, d, (unsigned)(count > VP_RETRY_COUNT_MAX ? VP_RETRY_COUNT_MAX : count));
}

static void record_receipt(sim_vphone *v, const char *id, const char *from, const char *type)
{
    size_t il = strnlen(id, SIM_MSG_ID_MAX), fl = strnlen(from, SIM_JID_LEN);
    vp_receipt *r;
    char *f;

    if (!v->receipts && !(v->receipts = calloc(SIM_VPHONE_RECEIPTS_MAX, sizeof *v->receipts)))
        return;
    r = malloc(sizeof *r + il + 1 + fl + 1);
    if (!r)
        return;
    memcpy(r->id, id, il);
    r->id[il] = 0;
    f = r->id + il + 1;
    memcpy(f, from, fl);
    f[fl] = 0;
    r->from = f;
    snprintf(r->type, sizeof r->type, "%s", type && type[0] ? type : "delivery");
    r->t = (uint64_t)time(NULL);
    free(v->receipts[v->receipts_next]);
    v->receipts[v->receipts_next] = r;
    v->receipts_next = (v->receipts_next + 1) % SIM_VPHONE_RECEIPTS_MAX;
}

static void on_receipt(sim *s, sim_phone *p, sim_vphone *v, const wa_node *n)
{
    const char *id = wa_node_attr(n, "id"), *from = wa_node_attr(n, "from");
    const char *participant = wa_node_attr(n, "participant"), *type = wa_node_attr(n, "type");
    const char *who = participant ? participant : from;
    char pn[SIM_JID_LEN];
    sim_device *d;

    if (!id || !who)
        return;
    d = sim_device_by_jid(s, who, NULL);
    if (d)
        sim_device_jid(d, 0, pn, sizeof pn);
    else
        snprintf(pn, sizeof pn, "%s", who);
    record_receipt(v, id, pn, type);
    if (type && strcmp(type, "retry") == 0) {
        handle_retry(s, p, v, n, id, who);
        return;
    }
    WA_NODE_FOREACH(list, n)
    {
        if (!wa_node_is(list, "list"))
            continue;
        WA_NODE_FOREACH(item, list)
        {
            const char *iid = wa_node_attr(item, "id");
            if (wa_node_is(item, "item") && iid)
                record_receipt(v, iid, pn, type);
        }
    }
}

/* ---- receiving messages ---------------------------------------------------------------------- */

/* A new inbox entry for (id, from) (the oldest goes). NULL on allocation failure. */
static vp_msg *inbox_new(sim_vphone *v, const char *id, const char *from)
{
    vp_msg *m;

    if (!v->inbox && !(v->inbox = calloc(SIM_VPHONE_INBOX_MAX, sizeof *v->inbox)))
        return NULL;
    m = calloc(1, sizeof *m);
    if (!m || set_str(&m->id, id) != 0 || set_str(&m->from, from) != 0) {
        free_msg(m);
        return NULL;
    }
    free_msg(v->inbox[v->inbox_next]);
    v->inbox[v->inbox_next] = m;
    v->inbox_next = (v->inbox_next + 1) % SIM_VPHONE_INBOX_MAX;
    return m;
}

static vp_msg *inbox_find(sim_vphone *v, const char *id, const char *from)
{
    size_t i;

    for (i = 0; v->inbox && i < SIM_VPHONE_INBOX_MAX; i++)
        if (v->inbox[i] && strcmp(v->inbox[i]->id, id) == 0 && strcmp(v->inbox[i]->from, from) == 0)
            return v->inbox[i];
    return NULL;
}

/* Our receipt for message n from device d: delivery, or retry with a fresh bundle. */
/* from, id, msg_t: the message's attributes. */
static void send_receipt(sim *s, sim_phone *p, sim_device *d, const char *from, const char *id,
                         const char *msg_t, int lid, int retry, unsigned count)
{
    int group = from && strstr(from, "@g.us") != NULL;
    char me[SIM_JID_LEN], t[24], cnt[16];
    wa_arena a;
    wa_node *r, *keys, *k;
    uint8_t b[4];

    wa_arena_init(&a, 16384);
    sim_user_jid(p, group ? 0 : lid, me, sizeof me);
    sim_unix_str(t, sizeof t);
    r = sim_node(&a, "receipt", "from", group ? from : me, "id", id, "t", t, "participant",
                 group ? me : NULL, "type", retry ? "retry" : NULL, NULL);
    if (r && retry) {
        const sim_keys *ks = &p->devices[0].keys;
        const sim_phone_prekey *opk = sim_phone_hand_out_prekey(p);
        snprintf(cnt, sizeof cnt, "%u", count);
        sim_child(&a, r, "retry", "count", cnt, "id", id, "t", msg_t, "v", "1", NULL);
        wa_store_be32(b, ks->reg_id);
        sim_bytes(&a, sim_child(&a, r, "registration", NULL), b, 4);
        keys = sim_child(&a, r, "keys", NULL);
        b[0] = VP_KEY_BUNDLE_TYPE;
        sim_bytes(&a, sim_child(&a, keys, "type", NULL), b, 1);
        sim_bytes(&a, sim_child(&a, keys, "identity", NULL), p->identity_pub, 32);
        if (opk) {
            k = sim_child(&a, keys, "key", NULL);
            wa_store_be24(b, opk->id);
            sim_bytes(&a, sim_child(&a, k, "id", NULL), b, 3);
            sim_bytes(&a, sim_child(&a, k, "value", NULL), opk->pub, 32);
        }
        k = sim_child(&a, keys, "skey", NULL);
        wa_store_be24(b, ks->spk_id);
        sim_bytes(&a, sim_child(&a, k, "id", NULL), b, 3);
        sim_bytes(&a, sim_child(&a, k, "value", NULL), ks->spk_pub, 32);
        sim_bytes(&a, sim_child(&a, k, "signature", NULL), ks->spk_sig, 64);
    }
    if (r) {
        sim_route_deliver(s, d, r);
        s->stats.receipts_routed++;
    }
    wa_arena_cleanup(&a);
}

static void on_timer(uv_timer_t *t)
{
    sim_phone *p = t->data;
    sim_vphone *v = p ? p->vphone : NULL;
    vp_pending *due = NULL, **tail = &due, **pp, *q;
    uint64_t now, next = 0;

    if (!v)
        return;
    now = sim_now_ms(v->sim);
    /* take the due ones out first: sending may add new ones */
    for (pp = &v->pending; (q = *pp) != NULL;) {
        if (q->due > now) {
            if (!next || q->due < next)
                next = q->due;
            pp = &q->next;
            continue;
        }
        *pp = q->next;
        v->npending--;
        q->next = NULL;
        *tail = q;
        tail = &q->next;
    }
    while ((q = due) != NULL) {
        sim_device *d = sim_device_find(v->sim, q->user, q->device);
        due = q->next;
        if (d && d->id != 0)
            send_receipt(v->sim, p, d, q->from, q->id, q->t[0] ? q->t : NULL, q->lid, q->retry,
                         q->count);
        free(q);
    }
    if (next)
        uv_timer_start(t, on_timer, next - now, 0);
}

/* Send our receipt (delivery, or retry) for message (from, id, t) to d after a round trip's
 * delay; at once when too many are waiting or no timer can be made. */
static void receipt_later(sim_phone *p, sim_vphone *v, sim_device *d, const char *from,
                          const char *id, const char *t, int lid, int retry, unsigned count)
{
    unsigned delay = retry ? VP_RETRY_DELAY_MS : VP_RECEIPT_DELAY_MS;
    vp_pending *q = NULL, **pp;

    if (!v->timer) {
        v->timer = malloc(sizeof *v->timer);
        if (v->timer && uv_timer_init(v->sim->loop, v->timer) != 0) {
            free(v->timer);
            v->timer = NULL;
        }
        if (v->timer) {
            v->timer->data = p;
            uv_unref((uv_handle_t *)v->timer); /* never keeps the loop alive at shutdown */
        }
    }
    if (v->timer && v->npending < VP_PENDING_MAX)
        q = calloc(1, sizeof *q);
    if (!q) {
        send_receipt(v->sim, p, d, from, id, t, lid, retry, count);
        return;
    }
    snprintf(q->user, sizeof q->user, "%s", d->phone->number);
    q->device = d->id;
    q->lid = lid;
    q->retry = retry;
    q->count = count;
    snprintf(q->id, sizeof q->id, "%s", id);
    snprintf(q->from, sizeof q->from, "%s", from);
    snprintf(q->t, sizeof q->t, "%s", t ? t : "");
    q->due = sim_now_ms(v->sim) + delay;
    for (pp = &v->pending; *pp; pp = &(*pp)->next)
        ;
    *pp = q;
    v->npending++;
    if (!uv_is_active((uv_handle_t *)v->timer) || uv_timer_get_due_in(v->timer) > delay)
        uv_timer_start(v->timer, on_timer, delay, 0);
}

/* Decode a padded Message: text and kind into m, SKDM installed. 0 or WA_E*. */
static int take_message(sim_vphone *v, vp_msg *m, const char *group, const wa_signal_addr *sender,
                        const wa_buf *padded)
{
    Wa__Message *msg = NULL;
    const Wa__Message *body;
    const char *text = NULL;
    size_t len;
    int rc;

    rc = wa_signal_unpad(padded->data, padded->len, &len);
    if (rc == 0)
        rc = wa_proto_unpack(&wa__message__descriptor, padded->data, len, &msg);
    if (rc != 0)
        return rc;
    body = msg;
    if (msg->devicesentmessage && msg->devicesentmessage->message) {
        body = msg->devicesentmessage->message;
        m->from_me = 1;
        if (msg->devicesentmessage->destinationjid &&
            strlen(msg->devicesentmessage->destinationjid) < SIM_JID_LEN)
            set_str(&m->chat, msg->devicesentmessage->destinationjid);
    }
    if (group && body->senderkeydistributionmessage &&
        body->senderkeydistributionmessage->has_axolotlsenderkeydistributionmessage) {
        const ProtobufCBinaryData *k =
            &body->senderkeydistributionmessage->axolotlsenderkeydistributionmessage;
        rc = wa_signal_group_process_skdm(v->sig, group, sender, k->data, k->len);
        if (rc != 0)
            wa_log_warn("sim", "phone: bad SKDM from %s:%u: %s", sender->user,
                        (unsigned)sender->device, wa_strerror(rc));
        rc = 0;
        if (!m->kind)
            m->kind = "senderKeyDistribution";
    }
    if (body->conversation) {
        text = body->conversation;
        m->kind = "conversation";
    } else if (body->extendedtextmessage && body->extendedtextmessage->text) {
        text = body->extendedtextmessage->text;
        m->kind = "extendedText";
    } else if (body->protocolmessage) {
        m->kind = "protocol";
    } else if (!m->kind) {
        m->kind = "other";
    }
    if (text) {
        size_t tl = strnlen(text, SIM_VPHONE_TEXT_MAX);
        char *copy = malloc(tl + 1);
        if (copy) {
            memcpy(copy, text, tl);
            copy[tl] = 0;
            free_str(m->text);
            m->text = copy;
        }
    }
    wa_proto_free(msg);
    return 0;
}

/* Keep the decrypted Message of one enc (hex) for GET /phones/{p}/messages, at most
 * VP_PLAIN_KEEP per message: the wire-fidelity test compares what two clients put in it. */
static void keep_plain(vp_msg *m, const char *enc, const wa_buf *padded)
{
    size_t len;
    char *hex;
    json_t *o;

    if (wa_signal_unpad(padded->data, padded->len, &len) != 0 || len > VP_PLAIN_MAX ||
        (!m->plain && !(m->plain = json_array())) || json_array_size(m->plain) >= VP_PLAIN_KEEP)
        return;
    hex = malloc(2 * len + 1);
    if (!hex)
        return;
    wa_hex_encode(hex, padded->data, len);
    o = json_pack("{s:s, s:s}", "enc", enc, "hex", hex);
    if (o)
        json_array_append_new(m->plain, o);
    free(hex);
}

static void on_message(sim *s, sim_phone *p, sim_vphone *v, const wa_node *n)
{
    const char *id = wa_node_attr(n, "id"), *from = wa_node_attr(n, "from");
    const char *participant = wa_node_attr(n, "participant"),
               *category = wa_node_attr(n, "category");
    const char *recipient = wa_node_attr(n, "recipient");
    const char *sender_jid;
    const char *group = NULL;
    wa_signal_addr addr;
    sim_device *d;
    vp_msg *m;
    int lid = 0, failed = 0, dup = 0, ok = 0;
    char pn[SIM_JID_LEN], chat[SIM_JID_LEN], why[128];
    wa_jid fj;

    if (!id || !from || (category && strcmp(category, "peer") == 0) || wa_jid_parse(from, &fj) != 0)
        return;
    if (wa_jid_is_group(&fj))
        group = from;
    sender_jid = group ? participant : from;
    d = sim_device_by_jid(s, sender_jid, &lid);
    if (!d || d->id == 0 || device_addr(d, &addr) != 0) {
        wa_log_info("sim", "phone %s: message %s from unknown device %s", p->number, id,
                    sender_jid ? sender_jid : "?");
        return;
    }
    sim_device_jid(d, 0, pn, sizeof pn);
    m = inbox_find(v, id, pn);
    if (m && !m->error) {
        receipt_later(p, v, d, from, id, NULL, lid, 0, 0); /* a redelivery: again */
        return;
    }
    if (!m)
        m = inbox_new(v, id, pn);
    if (!m)
        return;
    set_str(&m->error, NULL);
    m->t = (uint64_t)time(NULL);
    if (!group && !recipient)
        sim_user_jid(d->phone, 0, chat, sizeof chat);
    set_str(&m->chat, group ? group : recipient ? recipient : chat);
    m->from_me = d->phone == p;
    WA_NODE_FOREACH(e, n)
    {
        const char *type = wa_node_attr(e, "type");
        const uint8_t *ct;
        size_t len;
        wa_buf out;
        int rc, t = 0;
        if (!wa_node_is(e, "enc") || !type || wa_node_content_bytes(e, &ct, &len) != 0)
            continue;
        wa_buf_init(&out, len + WA_SIGNAL_CT_OVERHEAD);
        if (strcmp(type, "skmsg") == 0) {
            rc = group ? wa_signal_group_decrypt(v->sig, group, &addr, ct, len, &out) : WA_EPROTO;
        } else if (wa_signal_type_parse(type, &t) == 0) {
            if (t == WA_SIGNAL_PKMSG)
                sync_prekeys(v, p);
            rc = wa_signal_decrypt(v->sig, &addr, t, ct, len, &out);
        } else {
            rc = WA_EUNSUPPORTED;
        }
        if (rc == 0)
            rc = take_message(v, m, group, &addr, &out);
        if (rc == 0)
            keep_plain(m, type, &out);
        wa_buf_wipe_cleanup(&out);
        if (rc == 0) {
            ok++;
        } else if (rc == WA_EEXIST) {
            dup++;
        } else {
            failed++;
            snprintf(why, sizeof why, "%s enc: %s (%s)", type, wa_strerror(rc),
                     wa_signal_last_error(v->sig));
            set_str(&m->error, why);
        }
    }
    if (failed && !m->text) {
        wa_log_info("sim", "phone %s: message %s from %s did not decrypt: %s", p->number, id, pn,
                    why);
        if (m->retries < SIM_VPHONE_RETRY_MAX) {
            m->retries++;
            receipt_later(p, v, d, from, id, wa_node_attr(n, "t"), lid, 1, m->retries);
        }
        return;
    }
    set_str(&m->error, NULL);
    if (!ok && !dup)
        return;
    if (!m->from_me)
        receipt_later(p, v, d, from, id, NULL, lid, 0, 0);
}

void sim_phone_receive(sim *s, sim_phone *p, const wa_node *n)
{
    sim_vphone *v;

    if (!wa_node_is(n, "receipt") && !wa_node_is(n, "message"))
        return; /* notifications and the like: a phone has nothing to answer */
    v = vphone(s, p);
    if (!v)
        return;
    if (wa_node_is(n, "receipt"))
        on_receipt(s, p, v, n);
    else
        on_message(s, p, v, n);
}

int sim_phone_forget_sessions(sim *s, sim_phone *p, int *count)
{
    sim_vphone *v = vphone(s, p);
    const sim_phone *q;
    wa_signal_addr a;
    int n = 0, rc;
    unsigned i;

    if (!v)
        return WA_ENOMEM;
    for (q = s->phones; q; q = q->next) {
        for (i = 1; i < SIM_MAX_DEVICES; i++) {
            if (!q->devices[i].present) /* (slots: the device ids are q->devices[i].id) */
                continue;
            rc = wa_signal_addr_make(&a, q->number, WA_SIGNAL_PN, q->devices[i].id);
            if (rc == 0)
                rc = wa_signal_has_session(v->sig, &a);
            if (rc == 1)
                rc = wa_signal_delete_session(v->sig, &a) == 0 ? 1 : 0;
            if (rc == 1)
                n++;
        }
    }
    if (count)
        *count = n;
    return 0;
}

/* ---- control API ----------------------------------------------------------------------------- */

static void reply_json(wg_http_resp *resp, int status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);

    if (s) {
        wg_http_set_body(resp, status, "application/json", s, strlen(s));
        free(s);
    } else {
        wg_http_json_error(resp, 500, "internal", "cannot encode reply");
    }
    json_decref(j);
}

void sim_control_phone_send(sim *s, sim_phone *p, struct wg_http_req *req,
                            struct wg_http_resp *resp)
{
    json_error_t err;
    json_t *body = NULL, *j;
    const char *to, *text;
    char id[SIM_MSG_ID_MAX + 1];
    int rc, devices = 0;

    if (req->body_len)
        body = json_loadb(req->body, req->body_len, 0, &err);
    if (!json_is_object(body)) {
        wg_http_json_error(resp, 400, "bad_json", "a JSON object {\"to\", \"text\"} is required");
        goto out;
    }
    to = json_string_value(json_object_get(body, "to"));
    text = json_string_value(json_object_get(body, "text"));
    if (!to || !to[0] || !text) {
        wg_http_json_error(resp, 400, "bad_field",
                           "\"to\" (phone number, user JID or group JID) and \"text\" (string) "
                           "are required");
        goto out;
    }
    rc = sim_phone_send_text(s, p, to, text, id, sizeof id, &devices);
    if (rc == 0) {
        j = json_object();
        json_object_set_new(j, "id", json_string(id));
        json_object_set_new(j, "devices", json_integer(devices));
        reply_json(resp, 200, j);
    } else if (rc == WA_EINVAL) {
        wg_http_json_error(resp, 400, "bad_to",
                           "\"to\" must be another phone's number or user JID, or a group JID");
    } else if (rc == WA_ENOTFOUND) {
        wg_http_json_error(resp, 404, "no_such_recipient", "no such phone or group");
    } else if (rc == WA_ESTATE) {
        wg_http_json_error(resp, 403, "not_a_member", "the phone is not in this group");
    } else if (rc == WA_ELIMIT) {
        wg_http_json_error(resp, 413, "text_too_long", "the text is longer than 65536 bytes");
    } else {
        wg_http_json_error(resp, 500, "send_failed", wa_strerror(rc));
    }
out:
    json_decref(body);
}

void sim_control_phone_forget(sim *s, sim_phone *p, struct wg_http_req *req,
                              struct wg_http_resp *resp)
{
    json_t *j;
    int n = 0, rc;

    (void)req;
    rc = sim_phone_forget_sessions(s, p, &n);
    if (rc != 0) {
        wg_http_json_error(resp, 500, "internal", wa_strerror(rc));
        return;
    }
    j = json_object();
    json_object_set_new(j, "ok", json_true());
    json_object_set_new(j, "sessions", json_integer(n));
    reply_json(resp, 200, j);
}

void sim_control_phone_inbox(sim *s, sim_phone *p, const char *what, struct wg_http_req *req,
                             struct wg_http_resp *resp)
{
    sim_vphone *v = p->vphone;
    json_t *j = json_object(), *arr = json_array();
    const char *want = wg_http_query(req, "id");
    size_t i;

    (void)s;
    json_object_set_new(j, "phone", json_string(p->number));
    if (strcmp(what, "messages") == 0) {
        for (i = 0; v && v->inbox && i < SIM_VPHONE_INBOX_MAX; i++) {
            const vp_msg *m = v->inbox[(v->inbox_next + i) % SIM_VPHONE_INBOX_MAX];
            json_t *o;
            if (!m || (want && strcmp(want, m->id) != 0))
                continue;
            o = json_object();
            json_object_set_new(o, "id", json_string(m->id));
            json_object_set_new(o, "from", json_string(m->from));
            json_object_set_new(o, "chat", m->chat ? json_string(m->chat) : json_null());
            json_object_set_new(o, "fromMe", json_boolean(m->from_me));
            json_object_set_new(o, "type", m->kind ? json_string(m->kind) : json_null());
            json_object_set_new(o, "text", m->text ? json_string(m->text) : json_null());
            json_object_set_new(o, "t", json_integer((json_int_t)m->t));
            if (m->error)
                json_object_set_new(o, "error", json_string(m->error));
            if (m->plain)
                json_object_set(o, "plain", m->plain);
            json_array_append_new(arr, o);
        }
        json_object_set_new(j, "messages", arr);
    } else {
        for (i = 0; v && v->receipts && i < SIM_VPHONE_RECEIPTS_MAX; i++) {
            const vp_receipt *r = v->receipts[(v->receipts_next + i) % SIM_VPHONE_RECEIPTS_MAX];
            json_t *o;
            if (!r || (want && strcmp(want, r->id) != 0))
                continue;
            o = json_object();
            json_object_set_new(o, "id", json_string(r->id));
            json_object_set_new(o, "from", json_string(r->from));
            json_object_set_new(o, "type", json_string(r->type));
            json_object_set_new(o, "t", json_integer((json_int_t)r->t));
            json_array_append_new(arr, o);
        }
        json_object_set_new(j, "receipts", arr);
    }
    reply_json(resp, 200, j);
}
