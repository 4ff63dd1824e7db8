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
 * Logout: libwa's client has no logout call yet, so this sends what Baileys' logout() sends
 * (<iq xmlns='md' type='set'><remove-companion-device jid reason='user_initiated'/></iq>) on
 * the logged-in connection, closes it (the close drains what was queued) and wipes the
 * account's credentials in the store (durable). When the session is not connected only the
 * local wipe is possible, and the reason says so.
 *
 * Metrics: connects (each login), disconnects by reason (libwa's names; "stopped" when a
 * logged-in session is stopped), reconnects (each retry libwa schedules). The keep-alive
 * round trip is not fed: libwa's client does not report it (no callback or accessor yet).
 *
 * Memory: the handle and its strings are counted; the client's own memory (struct, TLS engine,
 * buffers) is not, because libwa does not tell it yet.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "backend_wa.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

struct wg_backend_wa {
    uv_loop_t *loop;
    wa_store *store;
    char *ws_url, *ca_file;
    uint8_t root_key[32];
    int has_root;
    unsigned keepalive_ms, max_failures, reconnect_base_ms, reconnect_max_ms;
    wg_stats *stats;
};

typedef struct wa_handle {
    wg_backend_wa *be;
    wg_session *s;
    wa_client *c;              /* NULL while stopped or failed */
    char *proxy;               /* the session's proxy URL (may hold a password: wiped) */
    char phone[PHONE_MAX + 1]; /* pairing by code with this number; "" for QR */
    unsigned failures;         /* connection attempts in a row that ended before a login */
    int connected;             /* between connected and disconnected */
} wa_handle;

static const wa_client_callbacks callbacks;

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

static const wa_client_callbacks callbacks = {
    .qr = on_qr,
    .pair_code = on_pair_code,
    .paired = on_paired,
    .connected = on_connected,
    .disconnected = on_disconnected,
    .logged_out = NULL, /* handled in on_disconnected (reason logged_out) */
    .stanza = NULL,
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

/* <iq to='s.whatsapp.net' type='set' id xmlns='md'><remove-companion-device jid
 * reason='user_initiated'/></iq> on the logged-in connection. */
static int send_logout(wa_handle *h)
{
    wa_arena a;
    wa_node *iq, *rm;
    char id[40];
    uint8_t rnd[8];
    int rc = WA_ENOMEM;

    if (!h->c || !wa_client_is_connected(h->c) || !wa_client_jid(h->c)[0])
        return WA_ESTATE;
    if (wa_random(rnd, sizeof rnd))
        return WA_EIO;
    memcpy(id, "wagate-logout-", 14);
    wa_hex_encode(id + 14, rnd, sizeof rnd);
    wa_arena_init(&a, 1024);
    iq = wa_node_new(&a, "iq");
    rm = iq ? wa_node_new_child(&a, iq, "remove-companion-device") : NULL;
    if (rm && !wa_node_set_attr(&a, iq, "to", "s.whatsapp.net") &&
        !wa_node_set_attr(&a, iq, "type", "set") && !wa_node_set_attr(&a, iq, "id", id) &&
        !wa_node_set_attr(&a, iq, "xmlns", "md") &&
        !wa_node_set_attr(&a, rm, "jid", wa_client_jid(h->c)) &&
        !wa_node_set_attr(&a, rm, "reason", "user_initiated"))
        rc = wa_client_send_node(h->c, iq);
    wa_arena_cleanup(&a);
    return rc;
}

static int wa_logout(void *ctx, void *handle)
{
    wa_handle *h = handle;
    wg_backend_wa *be = ctx;
    int64_t id;
    int sent, rc;

    sent = send_logout(h) == 0;
    drop_client(h); /* closing drains the queued iq first */
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
    /* the client's own bytes are not known (libwa does not report them) */
    return sizeof *h + (h->proxy ? strlen(h->proxy) + 1 : 0);
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
