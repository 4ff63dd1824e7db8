/*
 * backend_wa.c - the session backend over libwa's client (see backend_wa.h, session.h and
 * include/wa/client.h).
 *
 * One wa_store for every session (store account name = session name); one wa_client per
 * running session, created at start and freed at stop, so that a stopped or failed session
 * costs no client at all. Every call and callback runs on the gateway's loop.
 *
 * Status mapping (client event -> session status, reason):
 *   start                            -> STARTING (me from the store when already paired)
 *   qr(text)                         -> SCAN_QR (the text in s->qr)
 *   pair_code(code)                  -> PAIRING_CODE (the code in s->pair_code)
 *   paired(jid, lid)                 -> me set (the status follows with the restart)
 *   connected                        -> WORKING
 *   disconnected, will_retry         -> DISCONNECTED "<reason> (<code>): <text>; retrying in N ms"
 *                                       (515 before the first login -> STARTING: the normal
 *                                       restart after pairing)
 *   ... the Nth failed attempt in a row (MAX_RECONNECT_FAILURES) -> client freed, FAILED
 *   disconnected logged_out (401)    -> LOGGED_OUT (libwa wiped the credentials), me cleared
 *   disconnected, no retry, other    -> FAILED "<reason> (<code>): <text>" (replaced, banned,
 *                                       certificate, pairing expired, ...)
 *   stop                             -> the client freed (session.c reports STOPPED)
 * A "failed attempt" is a connection that ended before logging in (not counting the 515
 * restart); a login resets the count.
 *
 * Logout: wa_client_logout sends what Baileys' logout() sends (<iq xmlns='md' type='set'>
 * <remove-companion-device jid reason='user_initiated'/></iq>) on the logged-in connection,
 * closes it (the close drains the iq) and wipes the account's credentials in the store
 * (durable); the client is then freed. When the session is not connected only the local wipe
 * is possible, and the reason says so.
 *
 * Messaging: wg_backend_ops.send maps a JSON request onto wa_client_send_text / _reaction /
 * _edit / _revoke / _location / _contact (each one that leaves is recorded in the gateway's
 * message store: wg_session_report_sent) and answers through the `sent` callback (at most
 * WA_CLIENT_MAX_SENDS in flight; every pending send fails with WA_ECLOSED when the client is
 * freed). A bare phone number is first checked with wa_client_check_phones (the answer cached
 * PHONE_CACHE_TTL_S per session); a number not on WhatsApp is never sent to. Client callbacks
 * become events: message / message.reaction / message.edited / message.revoked (by kind),
 * message.ack (sent from the `sent` callback, delivered / read / played from receipts),
 * message.decrypt_failed, group.update, presence.update (presence of subscribed contacts and chat
 * states), contact.identity_changed. A message libwa flags maybe_repeat carries "maybe_repeat":
 * true; session.c drops it if it was published before. Payloads carry ids, JIDs, names and text
 * only: no key material, no raw bytes.
 *
 * Calls (wg_backend_ops.call: contact checks, group create / metadata / participants) answer
 * from libwa's callbacks through CALLS_MAX slots per session; the slots of a freed client are
 * failed with WA_ECLOSED (libwa runs no callback after wa_client_free). Presence, chat states
 * and presence subscriptions are immediate (wg_backend_ops.act).
 *
 * Metrics: connects (each login), disconnects by reason (libwa's names; "stopped" when a
 * logged-in session is stopped), reconnects (each retry libwa schedules), the keep-alive round
 * trip (the client's keepalive callback, each answered ping).
 *
 * Memory: the handle and its strings, plus the client's own share as wa_client_memory reports
 * it (struct, wire buffers, TLS engine estimate, messaging caches).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "backend_wa.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "bnode/node.h"
#include "core/arena.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"
#include "wa/client.h"
#include "wa/error.h"
#include "wa/store.h"

#define COMPONENT "backend"
/* Longest phone number the client takes (digits). */
#define PHONE_MAX 20
#define PROXY_MAX 1024
/* Sends in flight per session (HTTP requests waiting for the server's ack). */
#define SENDS_MAX WA_CLIENT_MAX_SENDS
/* Phone numbers remembered as on / not on WhatsApp per session, and for how long. */
#define PHONE_CACHE_MAX   64
#define PHONE_CACHE_TTL_S 3600
#define MENTIONS_MAX      WA_CLIENT_MENTIONS_MAX

struct wg_backend_wa {
    uv_loop_t *loop;
    wa_store *store;
    char *ws_url, *ca_file;
    uint8_t root_key[32];
    int has_root;
    unsigned keepalive_ms, max_failures, reconnect_base_ms, reconnect_max_ms;
    char version[32]; /* WhatsApp Web version sent; "" = libwa's default */
    wg_stats *stats;
};

typedef struct pending_send {
    int used;
    int checking;  /* waiting for the phone check */
    json_t *req;   /* the request (a reference) */
    wg_send_cb cb; /* NULL once cancelled */
    void *ud;
    char id[WA_CLIENT_MSG_ID_MAX];
} pending_send;

typedef struct phone_entry {
    char phone[PHONE_MAX + 1];
    char jid[WG_SESSION_JID_MAX];
    int exists;
    int64_t at; /* unix seconds; 0 = free */
} phone_entry;

typedef struct wa_handle {
    wg_backend_wa *be;
    wg_session *s;
    wa_client *c;              /* NULL while stopped or failed */
    char *proxy;               /* the session's proxy URL (may hold a password: wiped) */
    char phone[PHONE_MAX + 1]; /* pairing by code with this number; "" for QR */
    unsigned failures;         /* connection attempts in a row that ended before a login */
    int connected;             /* between connected and disconnected */
    pending_send sends[SENDS_MAX];
    phone_entry phones[PHONE_CACHE_MAX];
    struct pending_call *calls; /* CALLS_MAX slots (check, groups), allocated with the handle */
} wa_handle;

static const wa_client_callbacks callbacks;

/* Requests answered later (contact checks, group operations) in flight per session. */
#define CALLS_MAX 16

typedef struct pending_call {
    int used;
    wg_call_cb cb; /* NULL once cancelled (the slot is freed when libwa answers) */
    void *ud;
    int op; /* enum call_op */
} pending_call;

/* ---- helpers ---------------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

static void free_secret(char *s)
{
    if (s) {
        wa_wipe(s, strlen(s));
        free(s);
    }
}

/* me (jid, lid) of a paired account from the store; "" when unpaired. */
static void load_me(wg_backend_wa *be, const char *name, char *jid, size_t jcap, char *lid,
                    size_t lcap)
{
    wa_store_creds *cr;
    int64_t id;

    jid[0] = lid[0] = '\0';
    if (wa_store_account(be->store, name, 0, &id) != 0)
        return;
    cr = malloc(sizeof *cr);
    if (!cr)
        return;
    if (wa_store_creds_load(be->store, id, cr) == 0) {
        snprintf(jid, jcap, "%s", cr->me_jid);
        snprintf(lid, lcap, "%s", cr->me_lid);
    }
    wa_store_creds_wipe(cr);
    free(cr);
}

static int account_paired(wg_backend_wa *be, const char *name)
{
    int64_t id;

    return wa_store_account(be->store, name, 0, &id) == 0 && wa_store_account_paired(be->store, id);
}

static void finish_send(pending_send *ps, int err, int not_registered, const char *detail)
{
    wg_send_result r;
    wg_send_cb cb = ps->cb;
    void *ud = ps->ud;
    char id[WA_CLIENT_MSG_ID_MAX];

    memcpy(id, ps->id, sizeof id);
    json_decref(ps->req);
    memset(ps, 0, sizeof *ps);
    if (!cb)
        return;
    r.err = err;
    r.not_registered = not_registered;
    r.id = id;
    r.detail = detail ? detail : "";
    cb(ud, &r);
}

/* Answer every pending send (the connection is gone or the session stops). */
static void fail_sends(wa_handle *h, int err, const char *detail)
{
    size_t i;

    for (i = 0; i < SENDS_MAX; i++)
        if (h->sends[i].used)
            finish_send(&h->sends[i], err, 0, detail);
}

/* Answer every pending call (the client is freed: libwa calls none of their callbacks). */
static void fail_calls(wa_handle *h, int err, const char *detail)
{
    size_t i;

    for (i = 0; h->calls && i < CALLS_MAX; i++) {
        pending_call *pc = &h->calls[i];
        wg_call_cb cb = pc->cb;
        void *cud = pc->ud;
        if (!pc->used)
            continue;
        memset(pc, 0, sizeof *pc);
        if (cb)
            cb(cud, err, NULL, detail);
    }
}

/* Free the client (no callback follows); counts a disconnect when it was logged in. */
static void drop_client(wa_handle *h)
{
    if (!h->c)
        return;
    if (h->connected && h->be->stats)
        wg_stats_wa_disconnect(h->be->stats, wa_disconnect_reason_name(WA_DISC_STOPPED));
    h->connected = 0;
    wa_client_free(h->c);
    h->c = NULL;
    fail_sends(h, WA_ECLOSED, "the session stopped");
    fail_calls(h, WA_ECLOSED, "the session stopped");
}

/* A new client for the session, started (pairing by code when h->phone is set). */
static int new_client(wa_handle *h)
{
    wg_backend_wa *be = h->be;
    wa_client_config cfg;
    char jid[WG_SESSION_JID_MAX], lid[WG_SESSION_JID_MAX];
    int rc;

    drop_client(h);
    memset(&cfg, 0, sizeof cfg);
    cfg.account = h->s->name;
    cfg.ws_url = be->ws_url;
    cfg.root_key = be->has_root ? be->root_key : NULL;
    cfg.ca_file = be->ca_file;
    cfg.proxy = h->proxy;
    cfg.keepalive_ms = be->keepalive_ms;
    cfg.reconnect_base_ms = be->reconnect_base_ms;
    cfg.reconnect_max_ms = be->reconnect_max_ms;
    cfg.version = be->version[0] ? be->version : NULL;
    rc = wa_client_new(be->loop, be->store, &cfg, &callbacks, h, &h->c);
    if (rc) {
        h->c = NULL;
        return rc;
    }
    if (h->phone[0] && (rc = wa_client_pair_phone(h->c, h->phone)) != 0)
        goto fail;
    h->failures = 0;
    h->connected = 0;
    load_me(be, h->s->name, jid, sizeof jid, lid, sizeof lid);
    wg_session_report_me(h->s, jid, lid);
    if ((rc = wa_client_start(h->c)) != 0)
        goto fail;
    return 0;
fail:
    wa_client_free(h->c);
    h->c = NULL;
    return rc;
}

/* ---- client callbacks -------------------------------------------------------------------- */

static void on_qr(wa_client *c, const char *text, void *ud)
{
    wa_handle *h = ud;

    (void)c;
    wg_session_report_qr(h->s, text);
}

static void on_pair_code(wa_client *c, const char *code, void *ud)
{
    wa_handle *h = ud;

    (void)c;
    wg_session_report_pair_code(h->s, code);
}

static void on_paired(wa_client *c, const char *jid, const char *lid, void *ud)
{
    wa_handle *h = ud;

    (void)c;
    wa_log_info(COMPONENT, "session %s: paired as %s%s%s", h->s->name, jid, lid[0] ? " / " : "",
                lid);
    h->phone[0] = '\0'; /* from now on it logs in */
    wg_session_report_me(h->s, jid, lid);
}

static void on_connected(wa_client *c, void *ud)
{
    wa_handle *h = ud;
    char jid[WG_SESSION_JID_MAX], lid[WG_SESSION_JID_MAX];

    h->connected = 1;
    h->failures = 0;
    if (h->be->stats)
        wg_stats_wa_connect(h->be->stats);
    if (!h->s->me[0] || !h->s->me_lid[0]) {
        load_me(h->be, h->s->name, jid, sizeof jid, lid, sizeof lid);
        if (!jid[0])
            snprintf(jid, sizeof jid, "%s", wa_client_jid(c));
        wg_session_report_me(h->s, jid, lid);
    }
    wg_session_report_status(h->s, WG_STATUS_WORKING, NULL);
}

static void on_disconnected(wa_client *c, const wa_client_disconnect_info *info, void *ud)
{
    wa_handle *h = ud;
    wg_backend_wa *be = h->be;
    const char *name = wa_disconnect_reason_name(info->reason);
    char reason[WG_SESSION_REASON_MAX];
    int was_connected = h->connected;

    (void)c;
    h->connected = 0;
    if (be->stats)
        wg_stats_wa_disconnect(be->stats, name);
    if (info->reason == WA_DISC_STOPPED)
        return; /* ours (stop frees the client, so this is not expected) */
    if (info->reason == WA_DISC_LOGGED_OUT) {
        /* libwa wiped the credentials before telling; nothing to retry */
        wa_client_free(h->c);
        h->c = NULL;
        h->phone[0] = '\0';
        snprintf(reason, sizeof reason, "logged out from the phone (%d): %s", info->code,
                 info->text);
        wg_session_report_status(h->s, WG_STATUS_LOGGED_OUT, reason);
        return;
    }
    if (!info->will_retry) {
        wa_client_free(h->c);
        h->c = NULL;
        snprintf(reason, sizeof reason, "%s (%d): %s", name, info->code, info->text);
        wg_session_report_status(h->s, WG_STATUS_FAILED, reason);
        return;
    }
    if (be->stats)
        wg_stats_wa_reconnect(be->stats);
    if (!was_connected && info->reason != WA_DISC_RESTART)
        h->failures++;
    if (be->max_failures && h->failures >= be->max_failures) {
        wa_client_free(h->c);
        h->c = NULL;
        snprintf(reason, sizeof reason,
                 "gave up after %u failed connection attempts in a row; "
                 "last: %s (%d): %s",
                 h->failures, name, info->code, info->text);
        wa_log_warn(COMPONENT, "session %s: %s", h->s->name, reason);
        wg_session_report_status(h->s, WG_STATUS_FAILED, reason);
        return;
    }
    if (info->reason == WA_DISC_RESTART && h->s->status != WG_STATUS_WORKING &&
        h->s->status != WG_STATUS_DISCONNECTED) {
        wg_session_report_status(h->s, WG_STATUS_STARTING, "restart required (515) after pairing");
        return;
    }
    snprintf(reason, sizeof reason, "%s (%d): %s; retrying in %u ms", name, info->code, info->text,
             info->retry_ms);
    wg_session_report_status(h->s, WG_STATUS_DISCONNECTED, reason);
}

/* ---- messaging ---------------------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

static phone_entry *phone_lookup(wa_handle *h, const char *phone)
{
    int64_t now = (int64_t)time(NULL);
    size_t i;

    for (i = 0; i < PHONE_CACHE_MAX; i++)
        if (h->phones[i].at && now - h->phones[i].at < PHONE_CACHE_TTL_S &&
            !strcmp(h->phones[i].phone, phone))
            return &h->phones[i];
    return NULL;
}

static void phone_remember(wa_handle *h, const wa_client_contact *ct)
{
    phone_entry *e = NULL;
    size_t i;

    if (strlen(ct->phone) > PHONE_MAX)
        return;
    for (i = 0; i < PHONE_CACHE_MAX; i++) {
        if (!strcmp(h->phones[i].phone, ct->phone) || !h->phones[i].at) {
            e = &h->phones[i];
            break;
        }
        if (!e || h->phones[i].at < e->at)
            e = &h->phones[i]; /* the oldest, unless a match or a free one comes */
    }
    snprintf(e->phone, sizeof e->phone, "%s", ct->phone);
    snprintf(e->jid, sizeof e->jid, "%s", ct->jid);
    e->exists = ct->exists;
    e->at = (int64_t)time(NULL);
}

/* "+15551234567" / "15551234567" -> digits; 0 when `to` is not a bare phone number. */
static int to_phone(const char *to, char *out)
{
    size_t n;

    if (*to == '+')
        to++;
    n = strlen(to);
    if (n < 5 || n > PHONE_MAX || strspn(to, "0123456789") != n || to[0] == '0')
        return 0;
    memcpy(out, to, n + 1);
    return 1;
}

static int do_send_kind(wa_handle *h, pending_send *ps, const char *jid);

/* Send slot's request to jid (the chat); a message that left is recorded in the store. */
static int do_send(wa_handle *h, pending_send *ps, const char *jid)
{
    int rc = do_send_kind(h, ps, jid);

    if (rc == 0)
        wg_session_report_sent(h->s, jid, ps->id, ps->req);
    return rc;
}

static int do_send_kind(wa_handle *h, pending_send *ps, const char *jid)
{
    json_t *req = ps->req, *men = json_object_get(req, "mentions"), *v;
    const char *kind = jstr(req, "kind"), *text = jstr(req, "text");
    const char *mlist[MENTIONS_MAX];
    char(*mbuf)[WG_SESSION_JID_MAX] = NULL;
    char digits[PHONE_MAX + 1];
    wa_client_send_opts o;
    size_t i, n = 0;
    int rc;

    if (!kind || !strcmp(kind, "text")) {
        memset(&o, 0, sizeof o);
        o.id = jstr(req, "id"); /* set for queued sends (the id answered with 202) */
        o.quoted_id = jstr(req, "reply_to");
        if (json_array_size(men) > 0) {
            if (json_array_size(men) > MENTIONS_MAX)
                return WA_EINVAL;
            if (!(mbuf = calloc(MENTIONS_MAX, sizeof *mbuf)))
                return WA_ENOMEM;
            json_array_foreach(men, i, v)
            {
                const char *m = json_string_value(v);
                if (!m) {
                    free(mbuf);
                    return WA_EINVAL;
                }
                if (to_phone(m, digits))
                    snprintf(mbuf[n], sizeof mbuf[n], "%s@s.whatsapp.net", digits);
                else
                    snprintf(mbuf[n], sizeof mbuf[n], "%s", m);
                mlist[n] = mbuf[n];
                n++;
            }
            o.mentions = mlist;
            o.n_mentions = n;
        }
        rc = wa_client_send_text(h->c, jid, text ? text : "", &o, ps->id);
        free(mbuf);
        return rc;
    }
    if (!strcmp(kind, "reaction"))
        return wa_client_send_reaction(h->c, jid, jstr(req, "message_id"), jstr(req, "sender"),
                                       json_is_true(json_object_get(req, "from_me")),
                                       jstr(req, "emoji") ? jstr(req, "emoji") : "", ps->id);
    if (!strcmp(kind, "edit"))
        return wa_client_send_edit(h->c, jid, jstr(req, "message_id"), text ? text : "", ps->id);
    if (!strcmp(kind, "revoke"))
        return wa_client_send_revoke(h->c, jid, jstr(req, "message_id"), ps->id);
    if (!strcmp(kind, "location") || !strcmp(kind, "contact")) {
        memset(&o, 0, sizeof o);
        o.id = jstr(req, "id"); /* queued sends keep the id answered with 202 */
        o.quoted_id = jstr(req, "reply_to");
        if (!strcmp(kind, "contact"))
            return wa_client_send_contact(h->c, jid, jstr(req, "name"), jstr(req, "vcard"), &o,
                                          ps->id);
        {
            wa_client_location loc;
            loc.latitude = json_number_value(json_object_get(req, "latitude"));
            loc.longitude = json_number_value(json_object_get(req, "longitude"));
            loc.name = jstr(req, "name");
            loc.address = jstr(req, "address");
            return wa_client_send_location(h->c, jid, &loc, &o, ps->id);
        }
    }
    return WA_EINVAL;
}

static void on_checked(wa_client *c, int err, const wa_client_contact *res, size_t n, void *ud)
{
    wa_handle *h = wa_client_user_data(c);
    pending_send *ps = ud;
    char detail[WG_SESSION_REASON_MAX];
    size_t i;
    int rc;

    ps->checking = 0;
    for (i = 0; i < n; i++)
        phone_remember(h, &res[i]);
    if (err) {
        snprintf(detail, sizeof detail, "the WhatsApp contact check failed: %s", wa_strerror(err));
        finish_send(ps, err, 0, detail);
        return;
    }
    if (n < 1 || !res[0].exists) {
        finish_send(ps, WA_ENOTFOUND, 1, "the phone number is not on WhatsApp");
        return;
    }
    if (!ps->cb) { /* cancelled while checking: do not send any more */
        finish_send(ps, WA_ECLOSED, 0, NULL);
        return;
    }
    if ((rc = do_send(h, ps, res[0].jid)) != 0) {
        snprintf(detail, sizeof detail, "the send failed: %s", wa_strerror(rc));
        finish_send(ps, rc, 0, detail);
    }
}

static int wa_send(void *ctx, void *handle, json_t *req, wg_send_cb cb, void *ud)
{
    wa_handle *h = handle;
    pending_send *ps = NULL;
    const char *to = jstr(req, "to"), *phones[1];
    char digits[PHONE_MAX + 1];
    phone_entry *pe;
    size_t i;
    int rc;

    (void)ctx;
    if (!to)
        return WA_EINVAL;
    if (!h->c || !h->connected)
        return WA_ESTATE;
    for (i = 0; i < SENDS_MAX && !ps; i++)
        if (!h->sends[i].used)
            ps = &h->sends[i];
    if (!ps)
        return WA_ELIMIT;
    if (to_phone(to, digits) && (pe = phone_lookup(h, digits)) != NULL) {
        if (!pe->exists)
            return WA_ENOTFOUND;
        to = pe->jid;
    }
    memset(ps, 0, sizeof *ps);
    ps->used = 1;
    ps->req = json_incref(req);
    ps->cb = cb;
    ps->ud = ud;
    if (to_phone(to, digits)) {
        phones[0] = digits;
        ps->checking = 1;
        rc = wa_client_check_phones(h->c, phones, 1, on_checked, ps);
    } else {
        rc = do_send(h, ps, to);
    }
    if (rc) {
        json_decref(ps->req);
        memset(ps, 0, sizeof *ps);
    }
    return rc;
}

static void wa_send_cancel(void *ctx, void *handle, void *ud)
{
    wa_handle *h = handle;
    size_t i;

    (void)ctx;
    for (i = 0; i < SENDS_MAX; i++)
        if (h->sends[i].used && h->sends[i].ud == ud)
            h->sends[i].cb = NULL; /* the slot is freed when the send finishes */
}

static int wa_mark_read(void *ctx, void *handle, const char *chat, const char *sender,
                        const char *const *ids, size_t n)
{
    wa_handle *h = handle;
    char digits[PHONE_MAX + 1], jid[WG_SESSION_JID_MAX];

    (void)ctx;
    if (!h->c || !h->connected)
        return WA_ESTATE;
    if (to_phone(chat, digits)) {
        snprintf(jid, sizeof jid, "%s@s.whatsapp.net", digits);
        chat = jid;
    }
    return wa_client_mark_read(h->c, chat, sender, ids, n);
}

/* ---- calls: contact checks and groups ------------------------------------------------------ */

static json_t *str_or_null(const char *s);

enum call_op { OP_CHECK = 1, OP_GROUP_CREATE, OP_GROUP_INFO, OP_GROUP_ADD, OP_GROUP_REMOVE };

/* Hand the answer over and free the slot. */
static void finish_call(pending_call *pc, int err, json_t *result, const char *detail)
{
    wg_call_cb cb = pc->cb;
    void *ud = pc->ud;

    memset(pc, 0, sizeof *pc);
    if (cb)
        cb(ud, err, result, detail ? detail : "");
    json_decref(result);
}

static void on_call_checked(wa_client *c, int err, const wa_client_contact *res, size_t n, void *ud)
{
    wa_handle *h = wa_client_user_data(c);
    pending_call *pc = ud;
    json_t *arr = json_array(), *o;
    size_t i;

    for (i = 0; i < n; i++)
        phone_remember(h, &res[i]);
    if (err || !arr) {
        json_decref(arr);
        finish_call(pc, err ? err : WA_ENOMEM, NULL, err ? wa_strerror(err) : "out of memory");
        return;
    }
    for (i = 0; i < n; i++) {
        o = json_pack("{s:s, s:b, s:o}", "phone", res[i].phone, "exists", res[i].exists, "jid",
                      res[i].exists ? json_string(res[i].jid) : json_null());
        if (o && res[i].lid && res[i].lid[0])
            json_object_set_new(o, "lid", json_string(res[i].lid));
        json_array_append_new(arr, o);
    }
    finish_call(pc, 0, json_pack("{s:o}", "contacts", arr), NULL);
}

static void on_call_group(wa_client *c, int err, const wa_client_group *g, void *ud)
{
    pending_call *pc = ud;
    json_t *parts, *res, *o;
    size_t i;

    (void)c;
    if (err || !g) {
        finish_call(pc, err ? err : WA_EPROTO, NULL,
                    err == WA_EPROTO ? "WhatsApp refused the group operation" : wa_strerror(err));
        return;
    }
    parts = json_array();
    for (i = 0; parts && i < g->n_participants; i++) {
        const wa_client_group_participant *gp = &g->participants[i];
        if (pc->op == OP_GROUP_ADD || pc->op == OP_GROUP_REMOVE)
            o = json_pack("{s:s, s:b, s:i}", "jid", gp->jid, "ok", gp->error == 0, "error",
                          gp->error);
        else
            o = json_pack("{s:s, s:s}", "jid", gp->jid, "role",
                          gp->admin == 2   ? "superadmin"
                          : gp->admin == 1 ? "admin"
                                           : "member");
        if (o && gp->lid && gp->lid[0])
            json_object_set_new(o, "lid", json_string(gp->lid));
        json_array_append_new(parts, o);
    }
    if (pc->op == OP_GROUP_ADD || pc->op == OP_GROUP_REMOVE)
        res = json_pack("{s:s, s:o}", "group", g->jid ? g->jid : "", "participants", parts);
    else
        res = json_pack("{s:s, s:o, s:o, s:I, s:o}", "jid", g->jid ? g->jid : "", "subject",
                        str_or_null(g->subject), "creator", str_or_null(g->creator), "creation",
                        (json_int_t)g->creation, "participants", parts);
    finish_call(pc, res ? 0 : WA_ENOMEM, res, res ? NULL : "out of memory");
}

/* "+1555..." / digits -> "digits@s.whatsapp.net" into buf; anything else as it is. */
static const char *user_jid(const char *v, char *buf, size_t cap)
{
    char digits[PHONE_MAX + 1];

    if (to_phone(v, digits)) {
        snprintf(buf, cap, "%s@s.whatsapp.net", digits);
        return buf;
    }
    return v;
}

static int wa_call(void *ctx, void *handle, json_t *req, wg_call_cb cb, void *ud)
{
    wa_handle *h = handle;
    const char *op = jstr(req, "op"), *list[WA_CLIENT_GROUP_BATCH_MAX];
    char(*buf)[WG_SESSION_JID_MAX] = NULL;
    json_t *arr = json_object_get(req, "phones"), *v;
    pending_call *pc = NULL;
    size_t i, n = 0;
    int rc = WA_EINVAL;

    (void)ctx;
    if (!op)
        return WA_EINVAL;
    if (!h->c || !h->connected)
        return WA_ESTATE;
    if (!h->calls && !(h->calls = calloc(CALLS_MAX, sizeof *h->calls)))
        return WA_ENOMEM;
    for (i = 0; i < CALLS_MAX && !pc; i++)
        if (!h->calls[i].used)
            pc = &h->calls[i];
    if (!pc)
        return WA_ELIMIT;
    if (!arr)
        arr = json_object_get(req, "participants");
    if (json_array_size(arr) > WA_CLIENT_GROUP_BATCH_MAX)
        return WA_ELIMIT;
    if (json_array_size(arr) && !(buf = calloc(json_array_size(arr), sizeof *buf)))
        return WA_ENOMEM;
    json_array_foreach(arr, i, v)
    {
        const char *x = json_string_value(v);
        if (!x)
            goto out;
        if (!strcmp(op, "check")) {
            if (!to_phone(x, buf[n]))
                goto out;
            list[n] = buf[n];
        } else {
            list[n] = user_jid(x, buf[n], sizeof buf[n]);
        }
        n++;
    }
    pc->used = 1;
    pc->cb = cb;
    pc->ud = ud;
    if (!strcmp(op, "check")) {
        pc->op = OP_CHECK;
        rc = n ? wa_client_check_phones(h->c, list, n, on_call_checked, pc) : WA_EINVAL;
    } else if (!strcmp(op, "group_create")) {
        pc->op = OP_GROUP_CREATE;
        rc = wa_client_group_create(h->c, jstr(req, "subject"), list, n, on_call_group, pc);
    } else if (!strcmp(op, "group_info")) {
        pc->op = OP_GROUP_INFO;
        rc = wa_client_group_metadata(h->c, jstr(req, "group"), on_call_group, pc);
    } else if (!strcmp(op, "group_add") || !strcmp(op, "group_remove")) {
        pc->op = !strcmp(op, "group_add") ? OP_GROUP_ADD : OP_GROUP_REMOVE;
        rc = n ? wa_client_group_participants(h->c, jstr(req, "group"),
                                              pc->op == OP_GROUP_ADD ? WA_GROUP_ADD
                                                                     : WA_GROUP_REMOVE,
                                              list, n, on_call_group, pc)
               : WA_EINVAL;
    }
    if (rc)
        memset(pc, 0, sizeof *pc);
out:
    free(buf);
    return rc;
}

static void wa_call_cancel(void *ctx, void *handle, void *ud)
{
    wa_handle *h = handle;
    size_t i;

    (void)ctx;
    for (i = 0; h->calls && i < CALLS_MAX; i++)
        if (h->calls[i].used && h->calls[i].ud == ud)
            h->calls[i].cb = NULL;
}

static int wa_act(void *ctx, void *handle, json_t *req)
{
    wa_handle *h = handle;
    const char *op = jstr(req, "op"), *v;
    char jid[WG_SESSION_JID_MAX];

    (void)ctx;
    if (!op)
        return WA_EINVAL;
    if (!h->c || !h->connected)
        return WA_ESTATE;
    if (!strcmp(op, "presence") && (v = jstr(req, "presence")) != NULL)
        return wa_client_send_presence(h->c, !strcmp(v, "available")     ? WA_PRESENCE_AVAILABLE
                                             : !strcmp(v, "unavailable") ? WA_PRESENCE_UNAVAILABLE
                                                                         : 0);
    if (!strcmp(op, "chat_state") && (v = jstr(req, "state")) != NULL && jstr(req, "to"))
        return wa_client_send_chat_state(h->c, user_jid(jstr(req, "to"), jid, sizeof jid),
                                         !strcmp(v, "composing")   ? WA_CHAT_COMPOSING
                                         : !strcmp(v, "paused")    ? WA_CHAT_PAUSED
                                         : !strcmp(v, "recording") ? WA_CHAT_RECORDING
                                                                   : 0);
    if (!strcmp(op, "subscribe") && (v = jstr(req, "jid")) != NULL)
        return wa_client_subscribe_presence(h->c, user_jid(v, jid, sizeof jid));
    return WA_EINVAL;
}

static void on_sent(wa_client *c, const char *id, int err, void *ud)
{
    wa_handle *h = ud;
    char detail[WG_SESSION_REASON_MAX];
    size_t i;

    (void)c;
    if (!err && h->be->stats)
        wg_stats_message(h->be->stats, 1);
    if (!err)
        wg_session_report_event(h->s, "message.ack",
                                json_pack("{s:s, s:s, s:I}", "id", id, "status", "sent",
                                          "timestamp", (json_int_t)time(NULL)));
    for (i = 0; i < SENDS_MAX; i++) {
        pending_send *ps = &h->sends[i];
        if (ps->used && !ps->checking && !strcmp(ps->id, id)) {
            snprintf(detail, sizeof detail, "%s", err ? wa_strerror(err) : "");
            finish_send(ps, err, 0, detail);
            return;
        }
    }
}

static json_t *str_array(const char *const *v, size_t n)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* "" -> JSON null, else the string. */
static json_t *str_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

static void on_message(wa_client *c, const wa_client_message *m, void *ud)
{
    wa_handle *h = ud;
    const char *event = "message";
    json_t *p;

    (void)c;
    p = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:I, s:b, s:b}", "id", m->id, "chat", m->chat,
                  "from", m->sender, "from_pn", str_or_null(m->sender_pn), "from_lid",
                  str_or_null(m->sender_lid), "push_name", str_or_null(m->push_name), "timestamp",
                  (json_int_t)m->timestamp, "from_me", m->from_me, "offline", m->offline);
    if (!p)
        return;
    switch (m->kind) {
    case WA_MSG_TEXT:
        json_object_set_new(p, "type", json_string("text"));
        json_object_set_new(p, "text", json_string(m->text));
        if (m->quoted_id[0])
            json_object_set_new(p, "quoted",
                                json_pack("{s:s, s:o, s:o}", "id", m->quoted_id, "sender",
                                          str_or_null(m->quoted_sender), "text",
                                          str_or_null(m->quoted_text)));
        json_object_set_new(p, "mentions", str_array(m->mentions, m->n_mentions));
        break;
    case WA_MSG_REACTION:
        event = "message.reaction";
        json_object_set_new(p, "emoji", json_string(m->text));
        break;
    case WA_MSG_EDIT:
        event = "message.edited";
        json_object_set_new(p, "text", json_string(m->text));
        break;
    case WA_MSG_REVOKE:
        event = "message.revoked";
        break;
    case WA_MSG_LOCATION:
        json_object_set_new(p, "type", json_string("location"));
        json_object_set_new(p, "latitude", json_real(m->latitude));
        json_object_set_new(p, "longitude", json_real(m->longitude));
        json_object_set_new(p, "name", str_or_null(m->location_name));
        json_object_set_new(p, "address", str_or_null(m->location_address));
        break;
    case WA_MSG_CONTACT:
        json_object_set_new(p, "type", json_string("contact"));
        json_object_set_new(p, "name", json_string(m->contact_name));
        json_object_set_new(p, "vcard", json_string(m->vcard));
        break;
    default:
        json_object_set_new(p, "type", json_string("other"));
        json_object_set_new(p, "raw_size", json_integer((json_int_t)m->raw_len));
        break;
    }
    if (m->kind == WA_MSG_REACTION || m->kind == WA_MSG_EDIT || m->kind == WA_MSG_REVOKE)
        json_object_set_new(p, "target",
                            json_pack("{s:s, s:o, s:b}", "id", m->target_id, "sender",
                                      str_or_null(m->target_sender), "from_me", m->target_from_me));
    if (m->maybe_repeat) /* the gateway drops it if it was published before (session.c) */
        json_object_set_new(p, "maybe_repeat", json_true());
    if (wg_session_report_event(h->s, event, p) && h->be->stats)
        wg_stats_message(h->be->stats, 0);
}

static void on_receipt(wa_client *c, const wa_client_receipt *r, void *ud)
{
    wa_handle *h = ud;
    const char *status;

    (void)c;
    switch (r->type) {
    case WA_RECEIPT_DELIVERED:
        status = "delivered";
        break;
    case WA_RECEIPT_READ:
        status = "read";
        break;
    case WA_RECEIPT_PLAYED:
        status = "played";
        break;
    default:
        return; /* retry receipts are the client's business */
    }
    wg_session_report_event(
        h->s, "message.ack",
        json_pack("{s:o, s:s, s:s, s:s, s:I}", "ids", str_array(r->ids, r->n_ids), "status", status,
                  "chat", r->chat, "from", r->from, "timestamp", (json_int_t)r->timestamp));
}

static void on_decrypt_failed(wa_client *c, const wa_client_decrypt_failure *f, void *ud)
{
    wa_handle *h = ud;

    (void)c;
    wg_session_report_event(h->s, "message.decrypt_failed",
                            json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:b}", "id", f->id, "chat",
                                      f->chat, "from", f->sender, "enc_type", f->enc_type, "reason",
                                      f->reason, "retry_count", f->retry_count, "gave_up",
                                      f->gave_up));
}

static void on_group_update(wa_client *c, const wa_client_group_update *u, void *ud)
{
    wa_handle *h = ud;

    (void)c;
    wg_session_report_event(h->s, "group.update",
                            json_pack("{s:s, s:s, s:o, s:o, s:o, s:I}", "group", u->jid, "action",
                                      u->action, "actor", str_or_null(u->actor), "subject",
                                      str_or_null(u->subject), "participants",
                                      str_array(u->participants, u->n_participants), "timestamp",
                                      (json_int_t)u->timestamp));
}

/* New keys on the server: the session's backup must follow at once (gateway.c). */
static void on_keys_uploaded(wa_client *c, unsigned count, void *ud)
{
    wa_handle *h = ud;

    (void)c;
    wg_session_report_state_changed(h->s, count ? "prekeys uploaded" : "signed prekey rotated");
}

static void on_keepalive(wa_client *c, unsigned rtt_ms, void *ud)
{
    wa_handle *h = ud;

    (void)c;
    if (h->be->stats)
        wg_stats_wa_keepalive_rtt(h->be->stats, rtt_ms / 1000.0);
}

static void on_presence(wa_client *c, const wa_client_presence_update *pu, void *ud)
{
    wa_handle *h = ud;
    json_t *p;

    (void)c;
    p = json_pack("{s:s, s:s, s:s}", "from", pu->from, "chat", pu->from, "presence",
                  pu->available ? "available" : "unavailable");
    if (p && pu->last_seen)
        json_object_set_new(p, "last_seen", json_integer((json_int_t)pu->last_seen));
    wg_session_report_event(h->s, "presence.update", p);
}

static void on_chat_state(wa_client *c, const wa_client_chat_state_update *cs, void *ud)
{
    static const char *const names[] = {"paused", "composing", "paused", "recording"};
    wa_handle *h = ud;

    (void)c;
    wg_session_report_event(
        h->s, "presence.update",
        json_pack("{s:s, s:s, s:s}", "chat", cs->chat, "from", cs->sender, "presence",
                  cs->state >= 0 && cs->state <= WA_CHAT_RECORDING ? names[cs->state] : "paused"));
}

static void on_identity_changed(wa_client *c, const char *jid, void *ud)
{
    wa_handle *h = ud;

    (void)c;
    wg_session_report_event(
        h->s, "contact.identity_changed",
        json_pack("{s:s, s:I}", "jid", jid, "timestamp", (json_int_t)time(NULL)));
}

static const wa_client_callbacks callbacks = {
    .qr = on_qr,
    .pair_code = on_pair_code,
    .paired = on_paired,
    .connected = on_connected,
    .disconnected = on_disconnected,
    .logged_out = NULL, /* handled in on_disconnected (reason logged_out) */
    .stanza = NULL,
    .message = on_message,
    .receipt = on_receipt,
    .decrypt_failed = on_decrypt_failed,
    .sent = on_sent,
    .group_update = on_group_update,
    .presence = on_presence,
    .chat_state = on_chat_state,
    .identity_changed = on_identity_changed,
    .keys_uploaded = on_keys_uploaded,
    .keepalive = on_keepalive,
};

/* ---- backend operations -------------------------------------------------------------------- */

/* The session's proxy option (validated by the API at creation). */
static int session_proxy(const wg_session *s, char **out)
{
    json_t *cfg = json_loads(s->config_json ? s->config_json : "{}", 0, NULL), *p;
    int rc = 0;

    *out = NULL;
    p = json_is_object(cfg) ? json_object_get(cfg, "proxy") : NULL;
    if (json_is_string(p) && json_string_length(p) > 0) {
        if (json_string_length(p) > PROXY_MAX)
            rc = WA_EINVAL;
        else if (!(*out = strdup(json_string_value(p))))
            rc = WA_ENOMEM;
    }
    json_decref(cfg); /* the copy inside jansson is not wiped: it is freed right here */
    return rc;
}

static int wa_open(void *ctx, wg_session *s, void **handle)
{
    wa_handle *h = calloc(1, sizeof *h);
    int rc;

    if (!h)
        return WA_ENOMEM;
    h->be = ctx;
    h->s = s;
    if ((rc = session_proxy(s, &h->proxy)) != 0) {
        free(h);
        return rc;
    }
    *handle = h;
    return 0;
}

static int wa_start(void *ctx, void *handle)
{
    wa_handle *h = handle;
    int rc;

    (void)ctx;
    h->phone[0] = '\0'; /* a plain start pairs by QR (if it needs to pair) */
    wg_session_report_status(h->s, WG_STATUS_STARTING, NULL);
    if ((rc = new_client(h)) != 0)
        wa_log_warn(COMPONENT, "session %s: cannot start the client: %s", h->s->name,
                    wa_strerror(rc));
    return rc;
}

static int wa_pair_phone(void *ctx, void *handle, const char *phone)
{
    wa_handle *h = handle;
    wg_backend_wa *be = ctx;
    size_t n = strlen(phone);
    int rc;

    if (n < 5 || n > PHONE_MAX || strspn(phone, "0123456789") != n || phone[0] == '0')
        return WA_EINVAL;
    if (account_paired(be, h->s->name))
        return WA_ESTATE;
    memcpy(h->phone, phone, n + 1);
    wg_session_report_status(h->s, WG_STATUS_STARTING, "requesting a pairing code");
    if ((rc = new_client(h)) != 0) {
        h->phone[0] = '\0';
        wa_log_warn(COMPONENT, "session %s: cannot start pairing by code: %s", h->s->name,
                    wa_strerror(rc));
        wg_session_report_status(h->s, WG_STATUS_FAILED, wa_strerror(rc));
    }
    return rc;
}

static void wa_stop(void *ctx, void *handle)
{
    wa_handle *h = handle;

    (void)ctx;
    drop_client(h);
}

static int wa_logout(void *ctx, void *handle)
{
    wa_handle *h = handle;
    wg_backend_wa *be = ctx;
    int64_t id;
    int sent, rc;

    /* 1: the unlink iq went out (libwa wiped the credentials; the close drains the iq) */
    sent = h->c && h->connected && wa_client_logout(h->c) == 1;
    drop_client(h);
    h->phone[0] = '\0';
    rc = wa_store_account(be->store, h->s->name, 0, &id);
    if (rc == 0)
        rc = wa_store_account_wipe(be->store, id);
    else if (rc == WA_ENOTFOUND)
        rc = 0; /* never started: nothing stored */
    if (rc) {
        wa_log_error(COMPONENT, "session %s: logout: wiping the credentials failed: %s", h->s->name,
                     wa_strerror(rc));
        return rc;
    }
    wg_session_report_me(h->s, "", "");
    wg_session_report_status(h->s, WG_STATUS_LOGGED_OUT,
                             sent ? "logged out by request (device unlinked)"
                                  : "logged out by request: not connected, so the credentials "
                                    "were deleted here but the phone may still list the device");
    return 0;
}

static void wa_close(void *ctx, void *handle)
{
    wa_handle *h = handle;

    (void)ctx;
    if (!h)
        return;
    drop_client(h);
    free_secret(h->proxy);
    free(h->calls);
    wa_wipe(h, sizeof *h);
    free(h);
}

static int wa_purge(void *ctx, const char *name)
{
    wg_backend_wa *be = ctx;
    int64_t id;
    int rc = wa_store_account(be->store, name, 0, &id);

    if (rc == WA_ENOTFOUND)
        return 0;
    if (rc == 0)
        rc = wa_store_account_delete(be->store, id);
    return rc == WA_ENOTFOUND ? 0 : rc;
}

static size_t wa_memory(void *ctx, void *handle)
{
    wa_handle *h = handle;

    (void)ctx;
    return sizeof *h + (h->proxy ? strlen(h->proxy) + 1 : 0) + wa_client_memory(h->c) +
           (h->calls ? CALLS_MAX * sizeof *h->calls : 0);
}

const wg_backend_ops wg_backend_wa_ops = {
    .name = "libwa",
    .connects_to_whatsapp = 1,
    .open = wa_open,
    .start = wa_start,
    .stop = wa_stop,
    .logout = wa_logout,
    .close = wa_close,
    .purge = wa_purge,
    .memory = wa_memory,
    .trim = NULL,
    .pair_phone = wa_pair_phone,
    .send = wa_send,
    .send_cancel = wa_send_cancel,
    .mark_read = wa_mark_read,
    .call = wa_call,
    .call_cancel = wa_call_cancel,
    .act = wa_act,
};

/* ---- context ----------------------------------------------------------------------------------
 */

static int count_account(int64_t id, const char *name, void *ud)
{
    (void)id;
    (void)name;
    (*(size_t *)ud)++;
    return 0;
}

int wg_backend_wa_new(uv_loop_t *loop, const wg_backend_wa_options *o, wg_backend_wa **out)
{
    wg_backend_wa *b;
    size_t accounts = 0;
    int rc;

    if (!loop || !o || !o->store_path || !o->store_path[0])
        return WA_EINVAL;
    b = calloc(1, sizeof *b);
    if (!b)
        return WA_ENOMEM;
    b->loop = loop;
    b->keepalive_ms = o->keepalive_ms;
    b->max_failures = o->max_reconnect_failures;
    b->reconnect_base_ms = o->reconnect_base_ms;
    b->reconnect_max_ms = o->reconnect_max_ms;
    b->stats = o->stats;
    if (o->version)
        snprintf(b->version, sizeof b->version, "%s", o->version);
    if (o->root_key) {
        memcpy(b->root_key, o->root_key, sizeof b->root_key);
        b->has_root = 1;
    }
    rc = WA_ENOMEM;
    if ((o->ws_url && o->ws_url[0] && !(b->ws_url = dup_or_null(o->ws_url))) ||
        (o->ca_file && o->ca_file[0] && !(b->ca_file = dup_or_null(o->ca_file))))
        goto fail;
    if ((rc = wa_store_open(o->store_path, NULL, &b->store)) != 0) {
        wa_log_error(COMPONENT, "cannot open the WhatsApp store %s: %s", o->store_path,
                     wa_strerror(rc));
        goto fail;
    }
    wa_store_accounts(b->store, count_account, &accounts);
    wa_log_info(COMPONENT, "WhatsApp store %s: %zu accounts; server %s%s", o->store_path, accounts,
                b->ws_url ? b->ws_url : WA_CLIENT_DEFAULT_URL,
                b->has_root ? " (custom Noise root key)" : "");
    *out = b;
    return 0;
fail:
    wg_backend_wa_free(b);
    return rc;
}

void wg_backend_wa_free(wg_backend_wa *b)
{
    if (!b)
        return;
    wa_store_close(b->store);
    free(b->ws_url);
    free(b->ca_file);
    wa_wipe(b, sizeof *b);
    free(b);
}
