/*
 * recv.c - incoming messages and receipts (PROTOCOL.md §6; Baileys 7 lib/Socket/messages-recv.js
 * and lib/Utils/decode-wa-message.js, whatsmeow message.go / receipt.go / retry.go).
 *
 * A <message from id t [participant] [recipient] [notify] [category]> carries <enc v='2'
 * type='pkmsg'|'msg'|'skmsg'> children, decrypted in order: 1:1 encs with the session of the
 * sending device, skmsg with the group sender key the preceding enc (a SenderKeyDistribution
 * Message) installed. Each plaintext is unpadded and decoded (content.c).
 *
 * CRASH SAFETY - nothing is lost and nothing is handed over twice:
 *   1. a message id already in the store (msg_seen) is a redelivery: it is not decrypted again
 *      (that would fail: its message keys are gone); if it was handed over, only the receipt is
 *      sent again; if the process died between commit and hand-over, the stored plaintext is
 *      handed over now;
 *   2. the session/sender-key changes of every enc and the message id with its plaintext
 *      (state DECRYPTED) commit in ONE store transaction. The messages of one read (a burst:
 *      the server sends what queued up) share it: they are decrypted in order inside one open
 *      transaction, committed together when the read's stanzas are done (or WA__BATCH_MAX are
 *      waiting, or anything else must run: another stanza, a failure, a callback), and only
 *      then handed over and receipted in order (wa__recv_batch_flush). A commit per message
 *      cost a quarter of the receive CPU; a crash before the batch's commit loses its changes
 *      and its receipts alike, so the server redelivers every message of it;
 *   3. the message callback runs; then the id is marked DONE (its plaintext dropped). The mark
 *      is deferred (issue 5: one commit per message, not two): kept in memory (a redelivery
 *      meanwhile counts as done) and written in the next message's decrypt transaction, after
 *      WA__MARKS_WAIT_MS, or when the connection ends. A crash before it is written leaves the id
 *      DECRYPTED: a redelivery is handed over again flagged maybe_repeat (the window is wider,
 *      the guarantee the same); once the receipt has left, no redelivery comes;
 *   4. the receipt leaves. The receipt is the acknowledgement (Baileys 7 and
 *      whatsmeow send no <ack class='message'> after it): until it, the server keeps the
 *      message and redelivers it after a reconnect.
 *
 * Failures are never silent: a decrypt failure (no session, bad MAC, unknown prekey, missing
 * sender key, a <device-identity> that does not verify) sends a retry receipt
 * <receipt id type='retry' to [recipient] [participant]><retry count id t v='1' error='0'/>
 * <registration/>[<keys><type/><identity/><key/><skey/><device-identity/></keys>]</receipt>
 * (keys from count WA__RETRY_KEYS_FROM on, as Baileys 7, and from the first when we hold no
 * session or prekey for it, see send_retry; at most WA__RETRY_MAX per message, then a plain ack)
 * and raises decrypt_failed. Content that decrypts but is malformed (padding,
 * protobuf) cannot be fixed by a re-send: its session change commits, the message is nacked
 * (<ack error='487'|'491'>, Baileys' NACK_REASONS) and decrypt_failed raised. Neither touches the
 * connection or any other session.
 *
 * Peer messages (category='peer': protocol data from our own phone, end-to-end encrypted) take
 * the same path, steps 1-4 included, but step 3 handles them here instead of handing them over:
 * app-state sync keys are stored, a history sync notification is answered (section "peer
 * messages" below).
 *
 * Receipts for what we sent: delivered / read / played / retry, reported through the receipt
 * callback (retry receipts also make send.c re-send), then acknowledged.
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
#include "proto/message.pb-c.h"
#include "proto/proto.h"
#include "wa/error.h"

#define LOG        "client"
#define KEY_MAX    (WA_STORE_NAME_MAX + 1)
#define NACK_PARSE "487" /* ParsingError */
#define NACK_PROTO "491" /* InvalidProtobuf */
#define MAX_ENCS   8     /* enc children taken from one message */

#define WA__BATCH_MAX   64         /* messages of one read committed together (step 2) */
#define WA__BATCH_BYTES (4u << 20) /* ... and at most this much plaintext held for them */
#define WA__MARKS_MAX                                                                              \
    WA__BATCH_MAX             /* deferred "handed over" marks (step 3); a full list is             \
                               * written */
#define WA__MARKS_WAIT_MS 250 /* a deferred mark is written this long after at the latest */

struct wa__done_mark {
    char key[KEY_MAX];
    char id[WA_CLIENT_MSG_ID_MAX];
    int64_t t;
};

typedef struct rmsg {
    const wa_node *n;
    const char *id, *from, *participant, *recipient, *notify, *category;
    int64_t t;
    int group, from_me, offline;
    int maybe_repeat; /* handed over from the committed-but-not-done state of an earlier run */
    wa_jid author;    /* the sending device */
    char chat[WA_JID_STR_MAX], sender[WA_JID_STR_MAX];
    char sender_pn[WA_JID_STR_MAX], sender_lid[WA_JID_STR_MAX];
    char key[KEY_MAX]; /* msg_seen chat key */
    int peer;          /* category='peer': protocol data from our own devices (on_peer_*) */
} rmsg;

/* A failure while taking a message apart. */
typedef struct failure {
    int err;
    const char *reason;
    const char *enc_type;
    int content; /* 1: the payload decrypted but is malformed (no retry helps) */
} failure;

/* A message of the open batch: decrypted, its changes in the batch's transaction, waiting for
 * the commit to be handed over (len > 0) or only receipted (len 0: a sender key, protocol). */
struct wa__rx_pending {
    rmsg m; /* n, from, participant, recipient, category NULL; id, notify point into data */
    size_t len;
    uint8_t data[]; /* len bytes of plaintext, then the id and the push name, NUL-terminated */
};

static const char *attr_or(const wa_node *n, const char *k, const char *dflt)
{
    const char *v = wa_node_attr(n, k);

    return v ? v : dflt;
}

/* ---- receipts and acks we send -------------------------------------------------------------- */

static void nack(wa_client *c, const wa_node *n, const char *error)
{
    wa_arena a;
    wa_node *ack;

    wa_arena_init(&a, 4096);
    ack = wa__st_ack(&a, n, c->me_jid);
    if (ack && (!error || wa_node_set_attr(&a, ack, "error", error) == 0))
        wa__client_send(c, ack);
    wa_arena_cleanup(&a);
}

/* The delivery receipt (whatsmeow sendMessageReceipt): to the chat, participant = the sending
 * device in groups; for our own devices' messages type='sender' to us with recipient = chat;
 * type='inactive' as long as we did not say we are available (as Baileys and whatsmeow). */
static void send_delivery(wa_client *c, const rmsg *m)
{
    wa_arena a;
    wa_node *r;
    wa_jid me;
    int rc;

    wa_arena_init(&a, 4096);
    r = wa_node_new(&a, "receipt");
    rc = r ? wa_node_set_attr(&a, r, "id", m->id) : WA_ENOMEM;
    if (rc == 0 && m->from_me && !m->group) {
        wa_jid_to_non_ad(&m->author, &me);
        rc = wa_node_set_attr_jid(&a, r, "to", &me) | wa_node_set_attr(&a, r, "type", "sender") |
             wa_node_set_attr(&a, r, "recipient", m->chat);
    } else if (rc == 0) {
        rc = wa_node_set_attr(&a, r, "to", m->chat) |
             (m->group ? wa_node_set_attr(&a, r, "participant", m->sender) : 0) |
             (m->from_me      ? wa_node_set_attr(&a, r, "type", "sender")
              : !c->available ? wa_node_set_attr(&a, r, "type", "inactive")
                              : 0);
    }
    if (rc == 0)
        wa__client_send(c, r);
    wa_arena_cleanup(&a);
}

/* Copy src into dst of cap bytes (cut to fit). */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* The retry entry of (id, from, participant) (created, oldest replaced, when absent: *fresh = 1
 * then, id / from / participant set); NULL without memory. */
static wa__retry_seen *retry_slot(wa_client *c, const char *id, const char *from, const char *part,
                                  int *fresh)
{
    wa__retry_seen *r;
    size_t i;

    *fresh = 0;
    if (!c->retries && !(c->retries = wa_calloc(WA__RETRY_TRACK, sizeof *c->retries)))
        return NULL;
    for (i = 0; i < WA__RETRY_TRACK; i++) {
        r = &c->retries[i];
        if (r->count && !strcmp(r->id, id) && !strcmp(r->from, from) &&
            !strcmp(r->participant, part))
            return r;
    }
    r = &c->retries[c->retries_next];
    c->retries_next = (c->retries_next + 1) % WA__RETRY_TRACK;
    memset(r, 0, sizeof *r);
    copy_str(r->id, sizeof r->id, id);
    copy_str(r->from, sizeof r->from, from);
    copy_str(r->participant, sizeof r->participant, part);
    *fresh = 1;
    return r;
}

/* The retry count a re-send answers: its highest <enc count> (at most WA__RETRY_MAX; 0 on a
 * first delivery). */
static unsigned resend_count(const wa_node *n)
{
    unsigned best = 0;

    if (!n)
        return 0;
    WA_NODE_FOREACH(enc, n)
    {
        const char *v = wa_node_is(enc, "enc") ? wa_node_attr(enc, "count") : NULL;
        unsigned k = 0;

        for (; v && *v >= '0' && *v <= '9' && k <= WA__RETRY_MAX; v++)
            k = k * 10 + (unsigned)(*v - '0');
        if (k > best)
            best = k > WA__RETRY_MAX ? WA__RETRY_MAX : k;
    }
    return best;
}

/* The retry entry of message m (created, oldest replaced, when absent); NULL without memory.
 * A new entry for a re-send counts on from the count it answers (as whatsmeow does): its entry
 * was replaced by more than WA__RETRY_TRACK newer failures, or a restart came in between. */
static wa__retry_seen *retry_entry(wa_client *c, const rmsg *m)
{
    int fresh;
    wa__retry_seen *r = retry_slot(c, m->id, m->from, m->participant ? m->participant : "", &fresh);

    if (r && fresh) {
        r->count = resend_count(m->n);
        copy_str(r->recipient, sizeof r->recipient, m->recipient ? m->recipient : "");
        copy_str(r->t, sizeof r->t, attr_or(m->n, "t", "0"));
        copy_str(r->key, sizeof r->key, m->key);
    }
    return r;
}

/* ---- retry state in the store: a restart asks again (the server took the retry receipt as the
 * acknowledgement of the message: nothing else brings it back) ---- */

/* Remember r, its count about to be sent, in the store. Failures are logged. */
static void retry_store(wa_client *c, const wa__retry_seen *r)
{
    wa_store_retry row;
    size_t dropped = 0;
    int rc;

    memset(&row, 0, sizeof row);
    copy_str(row.msg_id, sizeof row.msg_id, r->id);
    copy_str(row.key, sizeof row.key, r->key);
    copy_str(row.from, sizeof row.from, r->from);
    copy_str(row.participant, sizeof row.participant, r->participant);
    copy_str(row.recipient, sizeof row.recipient, r->recipient);
    copy_str(row.t, sizeof row.t, r->t);
    row.count = r->count;
    row.asked = wa__client_unix() * 1000;
    rc = wa_store_retry_put(c->store, c->account, &row, &dropped);
    if (rc) {
        wa_log_warn(LOG, "[%s] retry state of %s not stored (%s): a restart will not ask again",
                    c->account_name, r->id, wa_strerror(rc));
        return;
    }
    if (r->count == 1)
        c->retry_rows++; /* a new row (an upper bound: a row may exist already) */
    if (dropped) {
        wa_log_warn(LOG,
                    "[%s] %zu oldest pending retries dropped (over %d): not asked again after a "
                    "restart",
                    c->account_name, dropped, WA_STORE_RETRY_KEEP);
        c->retry_rows = c->retry_rows > dropped ? c->retry_rows - dropped : 0;
    }
}

/* Forget the stored retry state of (id, from, participant): decrypted, or given up. */
static void retry_unstore(wa_client *c, const char *id, const char *from, const char *part)
{
    int deleted = 0, rc;

    if (!c->retry_rows)
        return; /* none stored: no write on the hot path */
    rc = wa_store_retry_del(c->store, c->account, id, from, part ? part : "", &deleted);
    if (rc)
        wa_log_warn(LOG, "[%s] retry state of %s not deleted: %s", c->account_name, id,
                    wa_strerror(rc));
    else if (deleted)
        c->retry_rows--;
}

/* decrypt_failed for a message given up on outside its stanza (timer, login). */
static void emit_gave_up(wa_client *c, const wa__retry_seen *r, const char *reason)
{
    wa_client_decrypt_failure ev;
    char chat[WA_JID_STR_MAX];
    wa_jid j;

    wa_log_warn(LOG, "[%s] message %s from %s%s%s: %s, giving up after %u retries", c->account_name,
                r->id, r->from, r->participant[0] ? "/" : "", r->participant, reason, r->count - 1);
    if (!c->cbs.decrypt_failed)
        return;
    if (wa_jid_parse(r->recipient[0] ? r->recipient : r->from, &j) == 0) {
        wa_jid_to_non_ad(&j, &j);
        if (wa_jid_format(&j, chat, sizeof chat) < 0)
            chat[0] = '\0';
    } else {
        chat[0] = '\0';
    }
    memset(&ev, 0, sizeof ev);
    ev.id = r->id;
    ev.chat = chat;
    ev.sender = r->participant[0] ? r->participant : r->from;
    ev.enc_type = "";
    ev.err = WA_ECRYPTO;
    ev.reason = reason;
    ev.retry_count = (int)(r->count - 1);
    ev.gave_up = 1;
    c->cbs.decrypt_failed(c, &ev, c->user_data);
}

/* The message decrypted: no re-send awaited any more. */
static void retry_done(wa_client *c, const rmsg *m)
{
    const char *part = m->participant ? m->participant : "";
    size_t i;

    for (i = 0; c->retries && i < WA__RETRY_TRACK; i++) {
        wa__retry_seen *r = &c->retries[i];
        if (r->count && !strcmp(r->id, m->id) && !strcmp(r->from, m->from) &&
            !strcmp(r->participant, part))
            r->deadline = 0;
    }
}

/* <keys> of a retry receipt: our identity, a fresh one-time prekey (marked used: it is not
 * uploaded as well), the signed prekey and our device identity. */
static int add_keys(wa_client *c, wa_arena *a, wa_node *receipt)
{
    wa_store_creds *cr = wa_malloc(sizeof *cr);
    wa_store_prekey pk;
    wa_node *keys, *k, *sk;
    uint8_t type = WA_SIGNAL_KEY_TYPE;
    size_t n = 0;
    int rc;

    if (!cr)
        return WA_ENOMEM;
    memset(&pk, 0, sizeof pk);
    rc = wa_store_creds_load(c->store, c->account, cr);
    if (rc == 0)
        rc = wa__keys_pending_prekeys(c->store, c->account, cr, 1, &pk, &n);
    if (rc == 0 && n != 1)
        rc = WA_ESTORE;
    if (rc == 0)
        rc = wa_store_prekeys_mark_uploaded(c->store, c->account, &pk.id, 1);
    if (rc)
        goto out;
    keys = wa_node_new_child(a, receipt, "keys");
    rc = WA_ENOMEM;
    if (!keys || !wa__child_bytes(a, keys, "type", &type, 1) ||
        !wa__child_bytes(a, keys, "identity", cr->identity_pub, 32))
        goto out;
    k = wa_node_new_child(a, keys, "key");
    if (!k || !wa__child_be(a, k, "id", pk.id, 3) || !wa__child_bytes(a, k, "value", pk.pub, 32))
        goto out;
    sk = wa_node_new_child(a, keys, "skey");
    if (!sk || !wa__child_be(a, sk, "id", cr->spk_id, 3) ||
        !wa__child_bytes(a, sk, "value", cr->spk_pub, 32) ||
        !wa__child_bytes(a, sk, "signature", cr->spk_sig, 64))
        goto out;
    if (cr->adv_identity_len &&
        !wa__child_bytes(a, keys, "device-identity", cr->adv_identity, cr->adv_identity_len))
        goto out;
    /* public ids and key prefixes only: to match a later pkmsg failure with the keys it used */
    wa_log_info(LOG,
                "[%s] retry keys: prekey %u (%02x%02x%02x%02x..), signed prekey %u (%02x%02x..)",
                c->account_name, (unsigned)pk.id, pk.pub[0], pk.pub[1], pk.pub[2], pk.pub[3],
                (unsigned)cr->spk_id, cr->spk_pub[0], cr->spk_pub[1]);
    rc = 0;
out:
    wa_wipe(&pk, sizeof pk);
    wa_store_creds_wipe(cr);
    wa_free(cr);
    return rc;
}

/* Send retry receipt number r->count for r (<keys> from WA__RETRY_KEYS_FROM on, or at once when
 * keys_now: see send_retry). 0 or WA_E*. */
static int send_retry_receipt(wa_client *c, const wa__retry_seen *r, int keys_now)
{
    uint8_t priv[32], pub[32];
    uint32_t reg = 0;
    wa_arena a;
    wa_node *rc_node, *retry;
    char cnt[16];
    int rc;

    rc = wa_store_own_identity(c->store, c->account, priv, pub, &reg);
    wa_wipe(priv, sizeof priv);
    wa_arena_init(&a, 16384);
    snprintf(cnt, sizeof cnt, "%u", r->count);
    rc_node = wa_node_new(&a, "receipt");
    if (rc == 0 &&
        (!rc_node || wa_node_set_attr(&a, rc_node, "id", r->id) ||
         wa_node_set_attr(&a, rc_node, "type", "retry") ||
         wa_node_set_attr(&a, rc_node, "to", r->from) ||
         (r->recipient[0] && wa_node_set_attr(&a, rc_node, "recipient", r->recipient)) ||
         (r->participant[0] && wa_node_set_attr(&a, rc_node, "participant", r->participant))))
        rc = WA_ENOMEM;
    retry = rc == 0 ? wa_node_new_child(&a, rc_node, "retry") : NULL;
    if (rc == 0 &&
        (!retry || wa_node_set_attr(&a, retry, "count", cnt) ||
         wa_node_set_attr(&a, retry, "id", r->id) || wa_node_set_attr(&a, retry, "t", r->t) ||
         wa_node_set_attr(&a, retry, "v", "1") || wa_node_set_attr(&a, retry, "error", "0") ||
         !wa__child_be(&a, rc_node, "registration", reg, 4)))
        rc = WA_ENOMEM;
    if (rc == 0 && (r->count >= WA__RETRY_KEYS_FROM || keys_now))
        rc = add_keys(c, &a, rc_node);
    if (rc == 0)
        retry_store(c, r); /* before it leaves: a kill after it must not lose the message */
    if (rc == 0)
        rc = wa__client_send(c, rc_node);
    wa_arena_cleanup(&a);
    if (rc == 0)
        wa_log_info(LOG, "[%s] retry receipt #%u sent for %s from %s%s%s", c->account_name,
                    r->count, r->id, r->from, r->participant[0] ? "/" : "", r->participant);
    else
        wa_log_warn(LOG, "[%s] cannot send a retry receipt for %s: %s", c->account_name, r->id,
                    wa_strerror(rc));
    return rc;
}

/* Ask the sender to re-send m. Returns the count sent (0: over the limit or failed: acked
 * instead; *gave_up = 1 when over the limit). no_session: we hold no session (or not the
 * prekey) the sender's message needs: our keys go with the first receipt already. Without them
 * Baileys 7 re-sends on the session we lost (a wasted retry: it re-sends after 2 receipts only),
 * and if the second re-send is then spoiled too (Baileys' libsignal steps the ratchet of every
 * session it tries on a message of ours, and keeps the stepped copy of a session that failed
 * when another decrypted it: a session built from our keys and not yet used is broken that way
 * when a message of ours crosses it), the message is lost. */
static unsigned send_retry(wa_client *c, const rmsg *m, int no_session, int *gave_up)
{
    wa__retry_seen *r = retry_entry(c, m);

    if (r && ++r->count <= WA__RETRY_MAX && send_retry_receipt(c, r, no_session) == 0) {
        /* the stanza itself is answered too (whatsmeow acks it; Baileys 7 nacks it with 500):
         * the re-send is a new stanza */
        wa__client_ack(c, m->n);
        r->deadline = wa__client_now(c) + WA__RETRY_WAIT_MS;
        wa__client_arm(c);
        return r->count;
    }
    if (r) {
        r->deadline = 0;
        if (r->count > WA__RETRY_MAX) {
            wa_log_warn(LOG,
                        "[%s] message %s from %s: still undecryptable after %u retries, "
                        "giving up",
                        c->account_name, m->id, m->sender, WA__RETRY_MAX);
            retry_unstore(c, r->id, r->from, r->participant);
            *gave_up = 1;
        }
    }
    nack(c, m->n, r && r->count > WA__RETRY_MAX ? NULL : "500");
    return 0;
}

void wa__recv_expire(wa_client *c, uint64_t now)
{
    unsigned gen = c->gen;
    size_t i;

    if (c->n_marks && now >= c->marks_deadline) {
        wa__recv_marks_flush(c);
        wa_free(c->marks); /* quiet now: an idle client holds none */
        c->marks = NULL;
    }

    for (i = 0; c->retries && i < WA__RETRY_TRACK; i++) {
        wa__retry_seen *r = &c->retries[i];
        if (!r->deadline || r->deadline > now)
            continue;
        /* no re-send came (the sender may not have had the message at hand yet, or the
         * receipt was lost): ask again, with our keys this time */
        r->deadline = 0;
        if (++r->count > WA__RETRY_MAX) {
            retry_unstore(c, r->id, r->from, r->participant);
            emit_gave_up(c, r, "never re-sent");
            if (!wa__client_alive(c, gen))
                return;
            continue;
        }
        if (send_retry_receipt(c, r, 0) == 0)
            r->deadline = now + WA__RETRY_WAIT_MS;
    }
}

uint64_t wa__recv_next_deadline(const wa_client *c)
{
    uint64_t d = UINT64_MAX;
    size_t i;

    for (i = 0; c->retries && i < WA__RETRY_TRACK; i++)
        if (c->retries[i].deadline && c->retries[i].deadline < d)
            d = c->retries[i].deadline;
    if (c->n_marks && c->marks_deadline < d)
        d = c->marks_deadline;
    return d;
}

void wa__recv_retry_resume(wa_client *c)
{
    wa_store_retry *rows = wa_malloc(WA_STORE_RETRY_KEEP * sizeof *rows);
    uint64_t now = wa__client_now(c);
    int64_t now_ms = wa__client_unix() * 1000;
    unsigned gen = c->gen;
    size_t n = 0, i, asked = 0, waiting = 0;
    int rc, state;

    if (!rows) {
        wa_log_warn(LOG, "[%s] pending retries not read: %s", c->account_name,
                    wa_strerror(WA_ENOMEM));
        return;
    }
    rc = wa_store_retry_list(c->store, c->account, rows, WA_STORE_RETRY_KEEP, &n);
    if (rc) {
        wa_log_warn(LOG, "[%s] pending retries not read: %s", c->account_name, wa_strerror(rc));
        n = 0;
    }
    c->retry_rows = n;
    for (i = 0; i < n; i++) {
        const wa_store_retry *row = &rows[i];
        wa__retry_seen tmp, *r = NULL;
        int64_t age = now_ms - row->asked;
        int fresh = 1;

        if (wa_store_seen_get(c->store, c->account, row->key, row->msg_id, &state, NULL) == 0) {
            /* the re-send came and committed, the row's delete did not (an older run) */
            retry_unstore(c, row->msg_id, row->from, row->participant);
            continue;
        }
        /* the newest WA__RETRY_TRACK rows get a timer; older ones are asked when due */
        if (n - i <= WA__RETRY_TRACK)
            r = retry_slot(c, row->msg_id, row->from, row->participant, &fresh);
        if (!r) {
            memset(&tmp, 0, sizeof tmp);
            r = &tmp;
            copy_str(r->id, sizeof r->id, row->msg_id);
            copy_str(r->from, sizeof r->from, row->from);
            copy_str(r->participant, sizeof r->participant, row->participant);
        }
        if (!fresh && (r->deadline || r->count >= row->count))
            continue; /* this process is on it already */
        copy_str(r->recipient, sizeof r->recipient, row->recipient);
        copy_str(r->t, sizeof r->t, row->t);
        copy_str(r->key, sizeof r->key, row->key);
        r->count = row->count;
        r->deadline = 0;
        if (age >= 0 && age < WA__RETRY_WAIT_MS) {
            /* asked a moment ago: its timer goes on */
            if (r != &tmp)
                r->deadline = now + (uint64_t)(WA__RETRY_WAIT_MS - age);
            waiting++;
            continue;
        }
        if (++r->count > WA__RETRY_MAX) {
            retry_unstore(c, r->id, r->from, r->participant);
            emit_gave_up(c, r, "never re-sent (asked before a restart)");
            if (!wa__client_alive(c, gen))
                goto out;
            continue;
        }
        if (send_retry_receipt(c, r, 0) == 0) {
            asked++;
            if (r != &tmp)
                r->deadline = now + WA__RETRY_WAIT_MS;
        } else {
            r->count--; /* the store keeps the last count sent */
        }
    }
    if (n)
        wa_log_info(LOG,
                    "[%s] %zu pending retries in the store: %zu asked again, %zu waiting for a "
                    "re-send",
                    c->account_name, n, asked, waiting);
    wa__client_arm(c);
out:
    wa_free(rows);
}

/* ---- handing over --------------------------------------------------------------------------- */

static void emit_message(wa_client *c, const rmsg *m, const wa__incoming *in, const uint8_t *raw,
                         size_t raw_len)
{
    wa_client_message ev;

    if (!c->cbs.message)
        return;
    memset(&ev, 0, sizeof ev);
    ev.id = m->id;
    ev.chat = m->chat;
    ev.sender = m->sender;
    ev.sender_pn = m->sender_pn;
    ev.sender_lid = m->sender_lid;
    ev.push_name = m->notify ? m->notify : "";
    ev.timestamp = m->t;
    ev.from_me = m->from_me;
    ev.offline = m->offline;
    ev.maybe_repeat = m->maybe_repeat;
    ev.kind = in->kind;
    ev.text = in->text;
    ev.quoted_id = in->quoted_id;
    ev.quoted_sender = in->quoted_sender;
    ev.quoted_text = in->quoted_text;
    ev.mentions = in->mentions;
    ev.n_mentions = in->n_mentions;
    ev.target_id = in->target_id;
    ev.target_sender = in->target_sender;
    ev.target_from_me = in->target_from_me;
    ev.raw = raw;
    ev.raw_len = raw_len;
    ev.latitude = in->latitude;
    ev.longitude = in->longitude;
    ev.location_name = in->location_name;
    ev.location_address = in->location_address;
    ev.contact_name = in->contact_name;
    ev.vcard = in->vcard;
    c->cbs.message(c, &ev, c->user_data);
}

static void emit_failure(wa_client *c, const rmsg *m, const failure *f, unsigned retry_count,
                         int gave_up)
{
    wa_client_decrypt_failure ev;

    wa_log_warn(LOG, "[%s] message %s from %s (%s): %s (%s)", c->account_name, m->id, m->sender,
                f->enc_type ? f->enc_type : "-", f->reason, wa_strerror(f->err));
    if (!c->cbs.decrypt_failed)
        return;
    memset(&ev, 0, sizeof ev);
    ev.id = m->id;
    ev.chat = m->chat;
    ev.sender = m->sender;
    ev.enc_type = f->enc_type ? f->enc_type : "";
    ev.err = f->err;
    ev.reason = f->reason;
    ev.retry_count = (int)retry_count;
    ev.gave_up = gave_up;
    c->cbs.decrypt_failed(c, &ev, c->user_data);
}

/* Write the deferred marks in the caller's transaction (or each on its own). */
static int marks_write(wa_client *c)
{
    unsigned i;
    int rc = 0, r;

    for (i = 0; i < c->n_marks; i++) {
        r = wa_store_seen_done(c->store, c->account, c->marks[i].key, c->marks[i].id,
                               c->marks[i].t);
        if (r) {
            wa_log_warn(LOG, "[%s] message %s handed over, but not marked so: %s", c->account_name,
                        c->marks[i].id, wa_strerror(r));
            rc = r;
        }
    }
    return rc;
}

/* The marks' list is kept only while marks wait (an idle client holds none). */
static void marks_release(wa_client *c)
{
    if (c->n_marks == 0 && c->marks) {
        wa_free(c->marks);
        c->marks = NULL;
    }
}

void wa__recv_marks_flush(wa_client *c)
{
    int rc;

    if (!c->n_marks) {
        marks_release(c);
        return;
    }
    rc = wa_store_tx_begin(c->store);
    if (rc == 0) {
        marks_write(c); /* a mark that failed is logged; the others commit */
        rc = wa_store_tx_end(c->store, 0);
    }
    if (rc)
        wa_log_warn(LOG, "[%s] %u handed-over marks not written: %s", c->account_name, c->n_marks,
                    wa_strerror(rc));
    c->n_marks = 0; /* bounded: a failed mark leaves the id DECRYPTED (maybe_repeat), as before */
    marks_release(c);
}

/* Whether m was handed over by this process and its mark is still deferred. */
static int marks_has(const wa_client *c, const rmsg *m)
{
    unsigned i;

    for (i = 0; i < c->n_marks; i++)
        if (!strcmp(c->marks[i].id, m->id) && !strcmp(c->marks[i].key, m->key))
            return 1;
    return 0;
}

/* Mark m handed over: deferred, or written now when the list is full or cannot be made. */
static void mark_done(wa_client *c, const rmsg *m)
{
    struct wa__done_mark *d;
    int rc;

    if (!c->marks)
        c->marks = wa_calloc(WA__MARKS_MAX, sizeof *c->marks);
    if (c->marks && c->n_marks == WA__MARKS_MAX)
        wa__recv_marks_flush(c);
    if (!c->marks || strlen(m->key) >= sizeof d->key || strlen(m->id) >= sizeof d->id) {
        rc = wa_store_seen_done(c->store, c->account, m->key, m->id, m->t);
        if (rc)
            wa_log_warn(LOG, "[%s] message %s handed over, but not marked so: %s", c->account_name,
                        m->id, wa_strerror(rc));
        return;
    }
    d = &c->marks[c->n_marks];
    snprintf(d->key, sizeof d->key, "%s", m->key);
    snprintf(d->id, sizeof d->id, "%s", m->id);
    d->t = m->t;
    if (c->n_marks++ == 0)
        c->marks_deadline = wa__client_now(c) + WA__MARKS_WAIT_MS;
}

/* Hand a committed plaintext to the application, then mark it done and answer. */
static void deliver(wa_client *c, const rmsg *m, const uint8_t *p, size_t len)
{
    wa__incoming in;
    unsigned gen = c->gen;
    int rc;

    rc = wa__content_read(p, len, &in);
    if (rc == 0) {
        if (in.has_content)
            emit_message(c, m, &in, p, len);
        wa__content_free(&in);
    }
    /* handed over: marked so even when the callback stopped or freed the client (the store
     * outlives the client; written at once then), so that the redelivery that follows is not
     * handed over again */
    mark_done(c, m);
    if (!wa__client_alive(c, gen)) {
        wa__recv_marks_flush(c);
        return; /* no receipt from a stopped client: the message comes again, and is only
                 * receipted then */
    }
    send_delivery(c, m);
}

/* ---- the batch of one read (step 2) -------------------------------------------------------- */

/* Open the batch's transaction; the deferred marks ride along (failures logged). */
static int batch_open(wa_client *c)
{
    int rc;

    if (!c->rx && !(c->rx = wa_calloc(WA__BATCH_MAX, sizeof *c->rx)))
        return WA_ENOMEM;
    rc = wa_store_tx_begin(c->store);
    if (rc)
        return rc;
    c->rx_open = 1;
    c->rx_err = 0;
    c->n_rx = 0;
    if (c->n_marks)
        marks_write(c);
    return 0;
}

/* Commit (or, after a failed write, roll back) the batch, then hand its messages over and
 * receipt them in order. 0 when it committed (or there was none). */
static int batch_end(wa_client *c)
{
    struct wa__rx_pending **rx = c->rx;
    unsigned i, n = c->n_rx, gen = c->gen;
    int rc;

    if (!c->rx_open)
        return 0;
    c->rx_open = 0;
    c->rx = NULL; /* a flush from a callback below finds no batch */
    c->n_rx = 0;
    rc = wa_store_tx_end(c->store, c->rx_err);
    if (rc) {
        wa_log_error(LOG, "[%s] %u decrypted message(s): cannot commit (%s): not acknowledged",
                     c->account_name, n, wa_strerror(c->rx_err ? c->rx_err : rc));
    } else {
        c->n_marks = 0; /* the deferred marks committed with it */
        marks_release(c);
    }
    for (i = 0; i < n; i++) {
        struct wa__rx_pending *p = rx[i];
        /* a callback that stopped or freed the client ends the hand-over: the rest stays
         * DECRYPTED and comes again after a reconnect (flagged maybe_repeat) */
        if (rc == 0 && wa__client_alive(c, gen)) {
            if (p->len)
                deliver(c, &p->m, p->data, p->len);
            else
                send_delivery(c, &p->m);
        }
        wa_wipe(p->data, p->len);
        wa_free(p);
    }
    wa_free(rx);
    return rc;
}

void wa__recv_batch_flush(wa_client *c)
{
    batch_end(c);
}

/* Whether the open batch holds m's id (the same message twice in one read). */
static int batch_has(const wa_client *c, const rmsg *m)
{
    unsigned i;

    for (i = 0; c->rx_open && i < c->n_rx; i++)
        if (!strcmp(c->rx[i]->m.id, m->id) && !strcmp(c->rx[i]->m.key, m->key))
            return 1;
    return 0;
}

/* Keep m with its plaintext for the batch's hand-over. 0, or WA_ENOMEM / WA_ELIMIT (full). */
static int batch_add(wa_client *c, const rmsg *m, const wa_buf *content)
{
    size_t lid = strlen(m->id) + 1, lnot = m->notify ? strlen(m->notify) + 1 : 0, held = 0;
    struct wa__rx_pending *p;
    unsigned i;

    if (!c->rx_open || !c->rx)
        return WA_ENOMEM; /* cannot happen: then handed over at once */
    for (i = 0; i < c->n_rx; i++)
        held += c->rx[i]->len;
    if (c->n_rx >= WA__BATCH_MAX || held + content->len > WA__BATCH_BYTES)
        return WA_ELIMIT;
    p = wa_malloc(sizeof *p + content->len + lid + lnot);
    if (!p)
        return WA_ENOMEM;
    p->m = *m;
    p->m.n = NULL;
    p->m.from = p->m.participant = p->m.recipient = p->m.category = NULL;
    p->len = content->len;
    if (content->len)
        memcpy(p->data, content->data, content->len);
    memcpy(p->data + p->len, m->id, lid);
    p->m.id = (const char *)p->data + p->len;
    if (lnot) {
        memcpy(p->data + p->len + lid, m->notify, lnot);
        p->m.notify = (const char *)p->data + p->len + lid;
    }
    c->rx[c->n_rx++] = p;
    return 0;
}

/* ---- decryption ----------------------------------------------------------------------------- */

/* Decrypt one enc into plain (padded plaintext). */
static int decrypt_enc(wa_client *c, const rmsg *m, const wa_node *enc, const char *type,
                       wa_buf *plain, failure *f)
{
    wa_signal *sig = wa__e2e_signal(c);
    wa_signal_addr addr;
    const uint8_t *ct;
    size_t len;
    int rc, st;

    f->enc_type = type;
    if (!sig) {
        f->reason = "no Signal handle";
        return f->err = WA_ENOMEM;
    }
    if (wa_node_content_bytes(enc, &ct, &len) != 0 || len == 0) {
        f->reason = "empty enc payload";
        return f->err = WA_EPROTO;
    }
    if (wa__e2e_addr(c, &m->author, &addr) != 0) {
        f->reason = "unsupported sender address";
        return f->err = WA_EINVAL;
    }
    if (!strcmp(type, "skmsg")) {
        if (!m->group) {
            f->reason = "skmsg outside a group";
            return f->err = WA_EPROTO;
        }
        rc = wa_signal_group_decrypt(sig, m->chat, &addr, ct, len, plain);
    } else if (wa_signal_type_parse(type, &st) == 0) {
        if (st == WA_SIGNAL_PKMSG && wa_node_child(m->n, "device-identity")) {
            const uint8_t *adv;
            size_t adv_len;
            uint8_t idk[WA_SIGNAL_KEY_LEN];
            if (wa_node_content_bytes(wa_node_child(m->n, "device-identity"), &adv, &adv_len) ||
                wa__e2e_pkmsg_identity(ct, len, idk) ||
                wa__e2e_check_device_identity(adv, adv_len, idk)) {
                f->reason = "the sender's device identity does not verify";
                return f->err = WA_ECRYPTO;
            }
        }
        rc = wa_signal_decrypt(sig, &addr, st, ct, len, plain);
    } else {
        f->reason = "unknown enc type";
        return f->err = WA_EPROTO;
    }
    if (rc) {
        f->err = rc;
        f->reason = wa_signal_last_error(sig);
        if (rc == WA_ELIMIT) {
            f->reason = "message too large";
            f->content = 1; /* the same size again after a re-send: refused, not retried */
        }
    }
    return rc;
}

/* Decrypt every enc in order; the content to hand over is appended to content. Store writes go
 * to the caller's transaction. 0 or the first failure in *f (later encs are still tried: a
 * failing skmsg must not undo the sender key distribution before it). Every enc is a candidate
 * (Baileys 7 and whatsmeow decrypt each): a re-send carries the message twice (in <participants>
 * and as a top-level <enc count>), so when one enc gave the content, a decrypt failure of another
 * does not fail the message (it is logged). */
static int decrypt_all(wa_client *c, const rmsg *m, wa_buf *content, failure *f)
{
    wa_buf plain;
    size_t nenc = 0;
    int failed = 0, got_content = 0;

    wa_buf_init(&plain, WA__PLAIN_MAX + WA_SIGNAL_CT_OVERHEAD);
    WA_NODE_FOREACH(enc, m->n)
    {
        const char *type = wa_node_attr(enc, "type");
        failure ef;
        wa__incoming in;
        size_t plen;
        int rc;

        if (!wa_node_is(enc, "enc") || nenc++ >= MAX_ENCS)
            continue;
        memset(&ef, 0, sizeof ef);
        wa_buf_reset(&plain);
        rc = decrypt_enc(c, m, enc, type ? type : "", &plain, &ef);
        if (rc == WA_EEXIST)
            /* a counter already used, on a message id never seen (redeliveries are caught by id
             * before this): the sender's state is broken (e.g. a session its library damaged),
             * the content is not ours to read; unless another enc gives it, a retry it is */
            ef.reason = "duplicate message counter on a new message id";
        if (rc == 0 && wa_signal_unpad(plain.data, plain.len, &plen) != 0) {
            ef.err = rc = WA_EPROTO;
            ef.reason = "bad padding";
            ef.content = 1;
        }
        if (rc == 0) {
            rc = wa__content_read(plain.data, plen, &in);
            if (rc) {
                ef.err = rc;
                ef.reason =
                    rc == WA_ELIMIT ? "Message protobuf too large" : "malformed Message protobuf";
                ef.content = 1;
            }
        }
        if (rc) {
            if (!failed)
                *f = ef;
            failed = 1;
            continue;
        }
        if (in.skdm) {
            wa_signal_addr addr;
            if (!m->group || strcmp(in.skdm_group, m->chat) != 0) {
                wa_log_warn(LOG, "[%s] message %s: sender key for another group ignored",
                            c->account_name, m->id);
            } else if (wa__e2e_addr(c, &m->author, &addr) == 0 &&
                       (rc = wa_signal_group_process_skdm(wa__e2e_signal(c), m->chat, &addr,
                                                          in.skdm, in.skdm_len)) != 0) {
                wa_log_warn(LOG, "[%s] message %s: sender key distribution refused: %s",
                            c->account_name, m->id, wa_strerror(rc));
            }
        }
        if (in.has_content || m->peer) {
            wa_buf_reset(content);
            if (wa_buf_append(content, plain.data, plen) != 0 && !failed) {
                f->err = WA_ELIMIT;
                f->reason = "message too large";
                f->content = 1;
                failed = 1;
            } else {
                got_content = 1;
            }
        }
        wa__content_free(&in);
    }
    wa_buf_wipe_cleanup(&plain);
    if (failed && got_content && !f->content) {
        wa_log_warn(LOG,
                    "[%s] message %s from %s: one %s enc did not decrypt (%s), another did: "
                    "taken",
                    c->account_name, m->id, m->sender, f->enc_type ? f->enc_type : "-",
                    f->reason ? f->reason : "-");
        memset(f, 0, sizeof *f);
        failed = 0;
    }
    if (nenc == 0 && !failed) {
        f->err = WA_EPROTO;
        f->reason = "no enc payload";
        f->content = 1;
        failed = 1;
    }
    return failed ? f->err : 0;
}

/* ---- the message stanza --------------------------------------------------------------------- */

/* Learn PN<->LID pairs the stanza states (sender_lid / participant_pn ...). */
static void learn_alt(wa_client *c, const rmsg *m)
{
    static const char *const lid_keys[] = {"sender_lid", "participant_lid"};
    static const char *const pn_keys[] = {"sender_pn", "participant_pn"};
    wa_jid alt;
    size_t i;

    for (i = 0; i < 2; i++) {
        if (wa_jid_is_user(&m->author) && wa_node_attr_jid(m->n, lid_keys[i], &alt) == 0 &&
            wa_jid_is_lid(&alt))
            wa__e2e_learn(c, m->author.user, alt.user);
        if (wa_jid_is_lid(&m->author) && wa_node_attr_jid(m->n, pn_keys[i], &alt) == 0 &&
            wa_jid_is_user(&alt))
            wa__e2e_learn(c, alt.user, m->author.user);
    }
}

/* Fill m from the stanza. 0 or WA_EPROTO. */
static int parse_message(wa_client *c, const wa_node *n, rmsg *m)
{
    wa_jid from, me, chat, alt, u;
    int64_t t = 0;

    memset(m, 0, sizeof *m);
    m->n = n;
    m->id = wa_node_attr(n, "id");
    m->from = wa_node_attr(n, "from");
    m->participant = wa_node_attr(n, "participant");
    m->recipient = wa_node_attr(n, "recipient");
    m->notify = wa_node_attr(n, "notify");
    m->category = wa_node_attr(n, "category");
    m->offline = wa_node_attr(n, "offline") != NULL;
    if (wa_node_attr_i64(n, "t", &t) == 0)
        m->t = t;
    if (!m->id || !m->id[0] || strlen(m->id) >= WA_CLIENT_MSG_ID_MAX || !m->from ||
        wa_jid_parse(m->from, &from) != 0)
        return WA_EPROTO;
    if (wa_jid_is_group(&from)) {
        if (!m->participant || wa_jid_parse(m->participant, &m->author) != 0)
            return WA_EPROTO;
        m->group = 1;
        chat = from;
    } else if (wa_jid_is_user(&from) || wa_jid_is_lid(&from)) {
        m->author = from;
        wa_jid_to_non_ad(&from, &chat);
    } else {
        return WA_EPROTO; /* broadcast, newsletter, ...: not handled */
    }
    if (wa_jid_format(&m->author, m->sender, sizeof m->sender) < 0 ||
        wa_jid_format(&chat, m->chat, sizeof m->chat) < 0)
        return WA_EPROTO;
    if ((wa__e2e_me(c, 0, &me) == 0 && wa_jid_same_user(&me, &m->author)) ||
        (wa__e2e_me(c, 1, &me) == 0 && wa_jid_same_user(&me, &m->author))) {
        m->from_me = 1;
        if (!m->group && m->recipient && wa_jid_parse(m->recipient, &chat) == 0) {
            wa_jid_to_non_ad(&chat, &chat);
            if (wa_jid_format(&chat, m->chat, sizeof m->chat) < 0)
                return WA_EPROTO;
        }
    }
    learn_alt(c, m);
    wa_jid_to_non_ad(&m->author, &u);
    if (wa_jid_is_lid(&u)) {
        wa_jid_format(&u, m->sender_lid, sizeof m->sender_lid);
        if (wa__e2e_alt(c, &u, &alt) == 0)
            wa_jid_format(&alt, m->sender_pn, sizeof m->sender_pn);
    } else {
        wa_jid_format(&u, m->sender_pn, sizeof m->sender_pn);
        if (wa__e2e_alt(c, &u, &alt) == 0)
            wa_jid_format(&alt, m->sender_lid, sizeof m->sender_lid);
    }
    /* the dedupe key: the chat, and the author in groups (ids are unique per sender) */
    {
        size_t lc = strlen(m->chat), lu = m->group ? strlen(u.user) + 1 : 0;
        if (lc + lu >= sizeof m->key)
            lu = 0; /* cannot happen with real JIDs; the chat alone still works */
        if (lc >= sizeof m->key)
            return WA_EPROTO;
        memcpy(m->key, m->chat, lc);
        if (lu) {
            m->key[lc] = '/';
            memcpy(m->key + lc + 1, u.user, lu - 1);
        }
        m->key[lc + lu] = '\0';
    }
    return 0;
}

/* ---- peer messages ---------------------------------------------------------------------------
 * Protocol messages from our own phone (category='peer', Baileys 7 process-message.js,
 * whatsmeow handleProtocolMessage): encrypted like every message (pkmsg, later msg, from
 * device 0 of our own user) and committed like every message, but nothing for the message
 * callback. Answered with the receipt alone, type peer_msg, and for a history sync notification
 * a second one <receipt id to=OWN_USER type='hist_sync'/> (Baileys 7 sendReceipt(jid,
 * undefined, [id], 'hist_sync'); whatsmeow ReceiptTypeHistorySync). */

/* Store the keys of an appStateSyncKeyShare (for the app-state sync). */
static void store_app_state_keys(wa_client *c, const rmsg *m,
                                 const Wa__Message__AppStateSyncKeyShare *share)
{
    wa_store_appstate_key k;
    wa_buf fp;
    size_t i, stored = 0;

    wa_buf_init(&fp, WA_STORE_APPSTATE_FP_MAX);
    for (i = 0; i < share->n_keys; i++) {
        const Wa__Message__AppStateSyncKey *key = share->keys[i];
        const Wa__Message__AppStateSyncKeyData *kd = key ? key->keydata : NULL;
        int rc = WA_EPROTO;
        memset(&k, 0, sizeof k);
        wa_buf_reset(&fp);
        if (key && key->keyid && key->keyid->has_keyid && kd && kd->has_keydata &&
            key->keyid->keyid.len && key->keyid->keyid.len <= sizeof k.id && kd->keydata.len &&
            kd->keydata.len <= sizeof k.data &&
            (!kd->fingerprint || wa_proto_pack(kd->fingerprint, &fp) == 0)) {
            memcpy(k.id, key->keyid->keyid.data, key->keyid->keyid.len);
            k.id_len = key->keyid->keyid.len;
            memcpy(k.data, kd->keydata.data, kd->keydata.len);
            k.data_len = kd->keydata.len;
            memcpy(k.fingerprint, fp.data, fp.len);
            k.fingerprint_len = fp.len;
            k.timestamp = kd->has_timestamp ? kd->timestamp : 0;
            rc = wa_store_appstate_key_put(c->store, c->account, &k);
        }
        if (rc == 0)
            stored++;
        else
            wa_log_warn(LOG, "[%s] message %s: app-state sync key #%zu not stored: %s",
                        c->account_name, m->id, i, wa_strerror(rc));
        wa_store_appstate_key_wipe(&k);
    }
    wa_buf_wipe_cleanup(&fp);
    wa_log_info(LOG, "[%s] message %s: %zu of %zu app-state sync keys stored", c->account_name,
                m->id, stored, share->n_keys);
}

/* Handle the Message of a peer message (trusted: decrypted, from our own user). Returns 1 when
 * it is a history sync notification (it wants the hist_sync receipt). */
static int peer_protocol(wa_client *c, const rmsg *m, const uint8_t *p, size_t len, int trusted)
{
    const Wa__Message__ProtocolMessage *pm;
    Wa__Message *msg = NULL;
    int hist = 0;

    if (wa_proto_unpack(&wa__message__descriptor, p, len, &msg) != 0) {
        wa_log_warn(LOG, "[%s] peer message %s: not a Message", c->account_name, m->id);
        return 0;
    }
    pm = msg->protocolmessage;
    if (!pm) {
        wa_log_debug(LOG, "[%s] peer message %s without a protocol message: ignored",
                     c->account_name, m->id);
    } else if (pm->historysyncnotification) {
        const Wa__Message__HistorySyncNotification *h = pm->historysyncnotification;
        hist = 1;
        /* downloading and applying the history blob is later work: nothing is stored */
        wa_log_info(LOG,
                    "[%s] history sync notification %s (type %d, chunk %u, %zu bytes inline): "
                    "history download skipped",
                    c->account_name, m->id, h->has_synctype ? (int)h->synctype : -1,
                    h->has_chunkorder ? h->chunkorder : 0u,
                    h->has_initialhistbootstrapinlinepayload
                        ? h->initialhistbootstrapinlinepayload.len
                        : (size_t)0);
    } else if (pm->appstatesynckeyshare) {
        if (trusted)
            store_app_state_keys(c, m, pm->appstatesynckeyshare);
        else
            wa_log_warn(LOG,
                        "[%s] peer message %s: app-state keys not end-to-end encrypted "
                        "from our own devices: ignored",
                        c->account_name, m->id);
    } else {
        wa_log_debug(LOG, "[%s] peer message %s: protocol message type %d ignored", c->account_name,
                     m->id, pm->has_type ? (int)pm->type : -1);
    }
    wa_proto_free(msg);
    return hist;
}

static void peer_receipts(wa_client *c, const rmsg *m, int hist)
{
    wa_arena a;
    wa_node *r;

    wa_arena_init(&a, 4096);
    r = wa_node_new(&a, "receipt");
    if (r && !wa_node_set_attr(&a, r, "id", m->id) && !wa_node_set_attr(&a, r, "to", m->from) &&
        !wa_node_set_attr(&a, r, "type", "peer_msg"))
        wa__client_send(c, r);
    if (hist) {
        r = wa_node_new(&a, "receipt");
        if (r && !wa_node_set_attr(&a, r, "id", m->id) && !wa_node_set_attr(&a, r, "to", m->chat) &&
            !wa_node_set_attr(&a, r, "type", "hist_sync"))
            wa__client_send(c, r);
    }
    wa_arena_cleanup(&a);
}

/* The committed plaintext of a peer message: handled, marked done, answered (deliver's order). */
static void deliver_peer(wa_client *c, const rmsg *m, const uint8_t *p, size_t len)
{
    unsigned gen = c->gen;
    int hist, rc;

    if (!m->from_me) {
        wa_log_warn(LOG, "[%s] peer message %s from %s, not from our own devices: ignored",
                    c->account_name, m->id, m->sender);
        hist = 0;
    } else {
        hist = peer_protocol(c, m, p, len, 1);
    }
    rc = wa_store_seen_put(c->store, c->account, m->key, m->id, WA_STORE_SEEN_DONE, NULL, 0, m->t);
    if (rc)
        wa_log_warn(LOG, "[%s] peer message %s handled, but not marked so: %s", c->account_name,
                    m->id, wa_strerror(rc));
    if (!wa__client_alive(c, gen))
        return;
    peer_receipts(c, m, hist);
}

/* A <plaintext> message with no <enc> (not how WhatsApp sends peer messages: they are
 * encrypted): receipted as a peer message, a history notification in it answered, key shares in
 * it not trusted. */
static void on_plaintext_message(wa_client *c, const rmsg *m)
{
    const uint8_t *p;
    size_t len;
    int hist = 0;

    if (wa_node_content_bytes(wa_node_child(m->n, "plaintext"), &p, &len) == 0 && len > 0 &&
        len <= WA__PLAIN_MAX)
        hist = peer_protocol(c, m, p, len, 0);
    peer_receipts(c, m, hist);
}

/* The nack error for content that decrypted but is malformed. */
static const char *nack_code(const failure *f)
{
    return f->err == WA_EPROTOBUF || f->err == WA_EDEPTH ? NACK_PROTO : NACK_PARSE;
}

/* A redelivery of a message refused as malformed (its nack lost, e.g. to a crash): refused and
 * reported again, from the stored record "CODE\0reason". */
static void refused_again(wa_client *c, const wa_node *n, const rmsg *m, const wa_buf *rec)
{
    char code[8] = NACK_PARSE, reason[160] = "malformed content";
    size_t cl = rec->len ? strnlen((const char *)rec->data, rec->len) : 0;
    failure f;

    if (cl == 3 && !memcmp(rec->data, NACK_PROTO, 3))
        memcpy(code, NACK_PROTO, 4);
    if (cl + 1 < rec->len) {
        size_t rl = rec->len - cl - 1;
        if (rl >= sizeof reason)
            rl = sizeof reason - 1;
        memcpy(reason, rec->data + cl + 1, rl);
        reason[rl] = '\0';
    }
    nack(c, n, code);
    memset(&f, 0, sizeof f);
    f.err = WA_EPROTO;
    f.reason = reason;
    f.content = 1;
    emit_failure(c, m, &f, 0, 0);
}

void wa__recv_message(wa_client *c, const wa_node *n)
{
    rmsg m;
    failure f;
    wa_buf content;
    int rc, state = 0;
    unsigned gen = c->gen;

    if (parse_message(c, n, &m) != 0) {
        wa_log_warn(LOG, "[%s] unusable message stanza (id %s, from %s): acked, ignored",
                    c->account_name, attr_or(n, "id", "-"), attr_or(n, "from", "-"));
        nack(c, n, NACK_PARSE);
        return;
    }
    if (wa_node_child(n, "plaintext") && !wa_node_child(n, "enc")) {
        wa__recv_batch_flush(c);
        if (wa__client_alive(c, gen))
            on_plaintext_message(c, &m);
        return;
    }
    m.peer = m.category && !strcmp(m.category, "peer");
    if (batch_has(c, &m)) { /* the same message twice in one read: the second is a redelivery */
        wa__recv_batch_flush(c);
        if (!wa__client_alive(c, gen))
            return;
    }
    wa_buf_init(&content, WA__PLAIN_MAX);
    /* 1. a redelivery? (read inside the open batch: it cannot hold this id) */
    rc = wa_store_seen_get(c->store, c->account, m.key, m.id, &state, &content);
    if (rc != WA_ENOTFOUND) {
        /* what follows answers at once: the messages before it first */
        wa__recv_batch_flush(c);
        if (!wa__client_alive(c, gen))
            goto out;
    }
    if (rc == 0 && state == WA_STORE_SEEN_DECRYPTED && marks_has(c, &m))
        state = WA_STORE_SEEN_DONE; /* handed over by this process, its mark deferred */
    if (rc == 0) {
        wa_log_debug(LOG, "[%s] message %s from %s: a redelivery (%s)", c->account_name, m.id,
                     m.sender, state == WA_STORE_SEEN_DONE ? "handed over already" : "not yet");
        retry_done(c, &m);
        retry_unstore(c, m.id, m.from, m.participant);
        if (state == WA_STORE_SEEN_REFUSED) {
            refused_again(c, n, &m, &content);
        } else if (state == WA_STORE_SEEN_DONE && m.peer) {
            peer_receipts(c, &m, 0);
        } else if (state == WA_STORE_SEEN_DONE) {
            send_delivery(c, &m);
        } else if (m.peer) {
            deliver_peer(c, &m, content.data, content.len);
        } else {
            /* committed by an earlier run that may have handed it over and stopped before the
             * done mark: the callback cannot be atomic with the mark, so say so */
            m.maybe_repeat = 1;
            deliver(c, &m, content.data, content.len);
        }
        goto out;
    }
    if (rc != WA_ENOTFOUND) {
        /* cannot tell: better not to decrypt (a wrong guess would lose the message keys) */
        wa_log_error(LOG, "[%s] message %s: store unreadable (%s): not acknowledged",
                     c->account_name, m.id, wa_strerror(rc));
        goto out;
    }
    /* 2. decrypt every enc; its changes and the message id go into the batch's transaction */
    memset(&f, 0, sizeof f);
    wa_buf_reset(&content);
    if (!c->rx_open && (rc = batch_open(c)) != 0) {
        wa_log_error(LOG, "[%s] message %s: store busy (%s): not acknowledged", c->account_name,
                     m.id, wa_strerror(rc));
        goto out;
    }
    rc = decrypt_all(c, &m, &content, &f);
    if (rc == 0) {
        rc = wa_store_seen_put(c->store, c->account, m.key, m.id,
                               content.len ? WA_STORE_SEEN_DECRYPTED : WA_STORE_SEEN_DONE,
                               content.data, content.len, m.t);
        if (rc == 0) /* its retry state goes with it (nothing written when none is stored) */
            retry_unstore(c, m.id, m.from, m.participant);
    } else if (f.content) {
        /* decrypted but malformed: consumed all the same; remembered as refused, with the nack
         * and the reason, so that a redelivery (the nack lost to a crash) is refused and
         * reported again instead of taken for a new message */
        char rec[4 + 160];
        size_t k = strnlen(f.reason ? f.reason : "", sizeof rec - 5);
        memcpy(rec, nack_code(&f), 4); /* "487" or "491" with its NUL */
        memcpy(rec + 4, f.reason ? f.reason : "", k);
        rc = wa_store_seen_put(c->store, c->account, m.key, m.id, WA_STORE_SEEN_REFUSED,
                               (const uint8_t *)rec, 4 + k, m.t);
    } else
        rc = 0; /* decrypt failures commit too: the encs that did decrypt (a sender key) stay */
    if (rc) {
        /* the whole batch rolls back: its messages were not receipted and come again */
        c->rx_err = rc;
        wa__recv_batch_flush(c);
        goto out;
    }
    if (f.err || m.peer) {
        /* answered at once, after the commit (with the batch before it) */
        if (batch_end(c) != 0 || !wa__client_alive(c, gen))
            goto out; /* not committed: not acknowledged */
    }
    if (f.err) {
        unsigned count = 0;
        int gave_up = 0;
        if (f.content) {
            nack(c, n, nack_code(&f));
        } else {
            count = send_retry(c, &m,
                               (f.err == WA_ENOTFOUND || f.err == WA_EEXIST) && f.enc_type &&
                                   strcmp(f.enc_type, "skmsg"),
                               &gave_up);
            /* a new device may be behind this: look its user's device list up again */
            wa__devices_forget(c, &m.author);
        }
        emit_failure(c, &m, &f, count, gave_up);
        goto out;
    }
    retry_done(c, &m);
    if (m.peer) {
        /* 3. handled, marked, 4. answered */
        if (content.len)
            deliver_peer(c, &m, content.data, content.len);
        else
            peer_receipts(c, &m, 0);
        goto out;
    }
    /* 3. and 4. after the batch's commit */
    rc = batch_add(c, &m, &content);
    if (rc == WA_ELIMIT) { /* full: the batch so far first */
        if (batch_end(c) != 0 || !wa__client_alive(c, gen))
            goto out;
        /* committed with it: this message alone now */
        if (content.len)
            deliver(c, &m, content.data, content.len);
        else
            send_delivery(c, &m);
        goto out;
    }
    if (rc) { /* no memory to keep it: commit and hand over now */
        if (batch_end(c) == 0 && wa__client_alive(c, gen)) {
            if (content.len)
                deliver(c, &m, content.data, content.len);
            else
                send_delivery(c, &m);
        }
        goto out;
    }
    if (c->n_rx == WA__BATCH_MAX)
        wa__recv_batch_flush(c);
out:
    wa_buf_wipe_cleanup(&content);
}

/* ---- receipts ------------------------------------------------------------------------------- */

void wa__recv_receipt(wa_client *c, const wa_node *n)
{
    const char *type = wa_node_attr(n, "type"), *from = wa_node_attr(n, "from");
    const char *id = wa_node_attr(n, "id"), *participant = wa_node_attr(n, "participant");
    const char *recipient = wa_node_attr(n, "recipient");
    const char *ids[WA__RETRY_TRACK];
    wa_client_receipt r;
    wa_jid fj, chat;
    char chat_str[WA_JID_STR_MAX];
    size_t nids = 0;
    int64_t t = 0;
    unsigned gen = c->gen;

    if (!id || !from || wa_jid_parse(from, &fj) != 0) {
        wa__client_ack(c, n);
        return;
    }
    ids[nids++] = id;
    if (!type || strcmp(type, "retry") != 0) {
        WA_NODE_FOREACH(list, n)
        {
            if (!wa_node_is(list, "list"))
                continue;
            WA_NODE_FOREACH(item, list)
            {
                const char *iid = wa_node_attr(item, "id");
                if (wa_node_is(item, "item") && iid && nids < WA__RETRY_TRACK)
                    ids[nids++] = iid;
            }
        }
    }
    if (type && !strcmp(type, "retry")) {
        wa__send_retry(c, n);
        if (!wa__client_alive(c, gen))
            return;
    }
    if (wa_jid_is_group(&fj) || !recipient || wa_jid_parse(recipient, &chat) != 0)
        wa_jid_to_non_ad(&fj, &chat);
    else
        wa_jid_to_non_ad(&chat, &chat);
    wa_jid_format(&chat, chat_str, sizeof chat_str);
    wa_node_attr_i64(n, "t", &t);
    memset(&r, 0, sizeof r);
    r.type_name = type ? type : "";
    r.type = !type || !strcmp(type, "inactive") || !strcmp(type, "sender") ? WA_RECEIPT_DELIVERED
             : !strcmp(type, "read") || !strcmp(type, "read-self")         ? WA_RECEIPT_READ
             : !strcmp(type, "played") || !strcmp(type, "played-self")     ? WA_RECEIPT_PLAYED
             : !strcmp(type, "retry")                                      ? WA_RECEIPT_RETRY
                                                                           : WA_RECEIPT_OTHER;
    r.chat = chat_str;
    r.from = participant ? participant : from;
    r.ids = ids;
    r.n_ids = nids;
    r.timestamp = t;
    if (c->cbs.receipt) {
        c->cbs.receipt(c, &r, c->user_data);
        if (!wa__client_alive(c, gen))
            return;
    }
    wa__client_ack(c, n);
}

/* ---- read receipts -------------------------------------------------------------------------- */

int wa_client_mark_read(wa_client *c, const char *chat, const char *sender, const char *const *ids,
                        size_t n)
{
    wa_arena a;
    wa_node *r, *list = NULL;
    char t[24];
    wa_jid cj, sj;
    size_t i;
    int rc = 0;

    if (!c || !chat || !ids || n == 0 || n > WA__RETRY_TRACK || wa_jid_parse(chat, &cj) != 0 ||
        (sender && wa_jid_parse(sender, &sj) != 0))
        return WA_EINVAL;
    for (i = 0; i < n; i++)
        if (!ids[i] || !ids[i][0] || strlen(ids[i]) >= WA_CLIENT_MSG_ID_MAX)
            return WA_EINVAL;
    if (!wa_client_is_connected(c))
        return WA_ESTATE;
    snprintf(t, sizeof t, "%lld", (long long)wa__client_unix());
    wa_arena_init(&a, 4096 + n * 96);
    r = wa_node_new(&a, "receipt");
    if (!r || wa_node_set_attr(&a, r, "id", ids[0]) || wa_node_set_attr(&a, r, "t", t) ||
        wa_node_set_attr(&a, r, "to", chat) ||
        (sender && wa_node_set_attr(&a, r, "participant", sender)) ||
        wa_node_set_attr(&a, r, "type", c->readreceipts == WA__RR_ALL ? "read" : "read-self"))
        rc = WA_ENOMEM;
    if (rc == 0 && n > 1 && !(list = wa_node_new_child(&a, r, "list")))
        rc = WA_ENOMEM;
    for (i = 1; rc == 0 && i < n; i++) {
        wa_node *item = wa_node_new_child(&a, list, "item");
        if (!item || wa_node_set_attr(&a, item, "id", ids[i]))
            rc = WA_ENOMEM;
    }
    if (rc == 0)
        rc = wa__client_send(c, r);
    wa_arena_cleanup(&a);
    return rc;
}
