/*
 * client.c - the libwa client on libuv: one connection at a time (wa_stream: DNS, TCP, proxy,
 * TLS; wa_wire: WebSocket, framing, Noise, binary nodes), one timer for every deadline, the
 * stanzas of pairing and login (PROTOCOL.md §4-5), keep-alive with dead-link detection, and
 * the reconnect policy of wa/client.h (decided in policy.c).
 *
 * States:  IDLE -> WAIT (timer) -> CONNECTING (stream) -> HANDSHAKE (WebSocket + Noise, until
 *          the first stanza) -> PAIRING (pair-device .. 515) or LOGIN (success, then prekey
 *          count, key bundle digest, upload and passive/active) -> CONNECTED -> CLOSING (stream
 *          closing) -> WAIT | IDLE.
 *
 * Every connection attempt starts from the timer callback, never inside a public call, so no
 * user callback runs re-entrantly from wa_client_start/stop. User callbacks may stop or free
 * the client: `gen` changes then, and the code after a callback checks it and returns.
 * The client's memory is released only when both its timer and its stream have closed.
 *
 * Memory while idle-connected: this struct, the wire (transport keys, no buffers), the stream
 * (TLS engine). Nothing else: keys are loaded from the store when needed and wiped after.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "client/client_int.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/util.h"
#include "jid/jid.h"
#include "net/proxy.h"
#include "net/stream.h"
#include "tls/tls.h"
#include "wa/error.h"
#include "wire/wire.h"

#define LOG           "client"
#define HOST_MAX      253
#define PATH_MAX_LEN  512
#define TRACE_XML_MAX 2048

enum {
    ST_IDLE = 0,
    ST_WAIT,
    ST_CONNECTING,
    ST_HANDSHAKE,
    ST_PAIRING,
    ST_LOGIN,
    ST_CONNECTED,
    ST_CLOSING,
};

typedef struct pairing pairing;
typedef struct tls_ref tls_ref;

struct pairing {
    char refs[WA__MAX_REFS][WA__REF_MAX + 1];
    unsigned nrefs, next;
    uint64_t deadline; /* current ref / code expiry; 0 once pair-success arrived */
    int link;          /* phone-code mode */
    wa__link lk;
};

struct tls_ref {
    struct tls_ref *next;
    char *ca_file; /* NULL = system store only */
    wa_tls_ctx *ctx;
    unsigned refs;
};

static void arm(wa_client *c);
static void drop(wa_client *c, int reason, int code, const char *text);

/* ---- shared TLS contexts (one SSL_CTX per CA file per process) ------------------------------ */

static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static tls_ref *tls_refs;

static int tls_get(const char *ca_file, tls_ref **out)
{
    tls_ref *r;
    wa_tls_client_opts o;
    int rc = 0;

    pthread_mutex_lock(&tls_lock);
    for (r = tls_refs; r; r = r->next)
        if ((!r->ca_file && !ca_file) || (r->ca_file && ca_file && !strcmp(r->ca_file, ca_file)))
            break;
    if (!r) {
        r = wa_calloc(1, sizeof *r);
        if (!r) {
            rc = WA_ENOMEM;
            goto out;
        }
        if (ca_file && !(r->ca_file = strdup(ca_file))) {
            wa_free(r);
            rc = WA_ENOMEM;
            goto out;
        }
        memset(&o, 0, sizeof o);
        o.ca_file = ca_file;
        rc = wa_tls_ctx_new_client(&o, &r->ctx);
        if (rc) {
            free(r->ca_file);
            wa_free(r);
            goto out;
        }
        r->next = tls_refs;
        tls_refs = r;
    }
    r->refs++;
    *out = r;
out:
    pthread_mutex_unlock(&tls_lock);
    return rc;
}

static void tls_put(tls_ref *r)
{
    tls_ref **p;

    if (!r)
        return;
    pthread_mutex_lock(&tls_lock);
    if (--r->refs == 0) {
        for (p = &tls_refs; *p; p = &(*p)->next) {
            if (*p == r) {
                *p = r->next;
                break;
            }
        }
        wa_tls_ctx_free(r->ctx);
        free(r->ca_file);
        wa_free(r);
    }
    pthread_mutex_unlock(&tls_lock);
}

/* ---- small helpers -------------------------------------------------------------------------- */

static char *dup_str(const char *s)
{
    size_t n;
    char *d;

    if (!s)
        return NULL;
    n = strlen(s);
    d = wa_malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

static uint64_t now_ms(const wa_client *c)
{
    return uv_now(c->loop);
}

static uint64_t unix_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static int parse_url(wa_client *c, const char *url)
{
    const char *p, *host_end, *slash;
    size_t hlen;
    long port;

    if (!strncmp(url, "wss://", 6)) {
        c->use_tls = 1;
        p = url + 6;
        port = 443;
    } else if (!strncmp(url, "ws://", 5)) {
        p = url + 5;
        port = 80;
    } else {
        return WA_EINVAL;
    }
    slash = strchr(p, '/');
    if (!slash)
        slash = p + strlen(p);
    if (*p == '[') { /* IPv6 literal */
        host_end = memchr(p, ']', (size_t)(slash - p));
        if (!host_end)
            return WA_EINVAL;
        p++;
        hlen = (size_t)(host_end - p);
        host_end++;
    } else {
        host_end = memchr(p, ':', (size_t)(slash - p));
        if (!host_end)
            host_end = slash;
        hlen = (size_t)(host_end - p);
    }
    if (hlen == 0 || hlen > HOST_MAX)
        return WA_EINVAL;
    if (host_end < slash) {
        char *end;
        if (*host_end != ':')
            return WA_EINVAL;
        port = strtol(host_end + 1, &end, 10);
        if (end != slash || port < 1 || port > 65535)
            return WA_EINVAL;
    }
    c->host = wa_malloc(hlen + 1);
    if (!c->host)
        return WA_ENOMEM;
    memcpy(c->host, p, hlen);
    c->host[hlen] = '\0';
    c->port = (uint16_t)port;
    if (strlen(slash) > PATH_MAX_LEN)
        return WA_EINVAL;
    c->path = dup_str(*slash ? slash : "/ws/chat");
    return c->path ? 0 : WA_ENOMEM;
}

/* Still the same life of the client after a user callback? */
static int alive(const wa_client *c, unsigned gen)
{
    return !c->freeing && c->gen == gen;
}

static void trace_node(const wa_client *c, const char *dir, const wa_node *n)
{
    wa_buf b;

    if (!WA_LOG_ENABLED(WA_LOG_TRACE))
        return;
    wa_buf_init(&b, TRACE_XML_MAX);
    wa_node_to_xml(n, &b, 0);
    wa_log_trace(LOG, "[%s] %s %.*s", c->account_name, dir, (int)b.len, (const char *)b.data);
    wa_buf_cleanup(&b);
}

/* ---- sending -------------------------------------------------------------------------------- */

static void flush(wa_client *c)
{
    wa_slice out;
    int rc;

    if (!c->wire || !c->stream)
        return;
    out = wa_wire_output(c->wire);
    if (!out.len)
        return;
    rc = wa_stream_write(c->stream, out.ptr, out.len);
    if (rc == 0)
        wa_wire_consumed(c->wire, out.len);
    else if (rc != WA_ELIMIT) /* WA_ELIMIT: on_drain flushes again */
        wa_log_debug(LOG, "[%s] write: %s", c->account_name, wa_strerror(rc));
}

static int send_node(wa_client *c, const wa_node *n)
{
    int rc;

    if (!n)
        return WA_ENOMEM;
    if (!c->wire || !wa_wire_is_open(c->wire) || c->state == ST_CLOSING)
        return WA_ESTATE;
    trace_node(c, "send", n);
    rc = wa_wire_send_node(c->wire, n);
    if (rc) {
        wa_log_warn(LOG, "[%s] cannot send <%s>: %s", c->account_name, n->tag, wa_strerror(rc));
        return rc;
    }
    /* within a read: one write at its end (receipts of a burst), unless much is waiting */
    if (!c->in_read || wa_wire_output(c->wire).len >= WA__SEND_COALESCE_MAX)
        flush(c);
    return 0;
}

/* Send an iq of ours and track its answer. */
static int send_iq(wa_client *c, wa_node *iq, const char *id, int kind, uint64_t timeout,
                   uint32_t arg)
{
    int rc;

    if (!iq)
        return WA_ENOMEM;
    rc = wa__iq_track(&c->iqs, id, kind, now_ms(c) + timeout, arg);
    if (rc == 0)
        rc = send_node(c, iq);
    if (rc) {
        wa__iq tmp;
        wa__iq_take(&c->iqs, id, &tmp);
    }
    return rc;
}

/* ---- services for the messaging files (client_int.h) ---------------------------------------- */

int wa__client_send(wa_client *c, const wa_node *n)
{
    if (c->state != ST_CONNECTED && c->state != ST_LOGIN)
        return WA_ESTATE;
    return send_node(c, n);
}

int wa__client_send_iq(wa_client *c, wa_node *iq, const char *id, int kind, uint32_t arg)
{
    if (c->state != ST_CONNECTED && c->state != ST_LOGIN)
        return WA_ESTATE;
    return send_iq(c, iq, id, kind, c->iq_timeout_ms, arg);
}

int wa__client_alive(const wa_client *c, unsigned gen)
{
    return alive(c, gen);
}

uint64_t wa__client_now(const wa_client *c)
{
    return now_ms(c);
}

int64_t wa__client_unix(void)
{
    return (int64_t)(unix_ms() / 1000);
}

void wa__client_arm(wa_client *c)
{
    arm(c);
}

/* ---- one-time prekeys off the loop (see send_upload) --------------------------------------- */

/* One-time prekeys made on libuv's thread pool. A new device uploads 812 (Baileys 7): 812
 * X25519 key generations take ~40 ms of CPU, and with many accounts logging in at once
 * (a gateway pairing hundreds of sessions) they kept the loop from running for seconds (issue 6:
 * the liveness probe failed, keep-alives of the other sessions stalled). The pool thread only
 * makes key pairs (no store, no ids, no allocation); ids are given and the keys stored in one
 * transaction back on the loop, from the account's next_prekey_id as it is then, and the
 * upload goes out from the store as before (the private half is on disk before the server can
 * hand the public one out). A work item makes KEYGEN_CHUNK pairs and the next one is queued
 * behind whatever else waits for the pool (DNS), so a storm of logins does not hold the pool
 * either. Small uploads (a refill of 50) are made in place. */
#define KEYGEN_CHUNK     128
#define KEYGEN_ASYNC_MIN 100 /* fewer missing keys than this: generated on the loop */

struct wa__keygen {
    uv_work_t work;
    wa_client *c;
    wa_store_prekey *keys; /* total pairs, ids given when stored */
    size_t total, done, chunk;
    size_t want; /* the upload to make when done */
    int send;    /* upload on this connection when done (cleared when it ends) */
    int rc;
};

/* ---- disconnect ----------------------------------------------------------------------------- */

static void release_connection(wa_client *c)
{
    if (c->wire) {
        wa_wire_cleanup(c->wire);
        wa_free(c->wire);
        c->wire = NULL;
    }
    if (c->pair) {
        wa_wipe(c->pair, sizeof *c->pair);
        wa_free(c->pair);
        c->pair = NULL;
    }
    wa__iq_clear(&c->iqs);
    c->upload_busy = 0;
    if (c->keygen) /* the keys are still made and stored; the next login uploads them */
        c->keygen->send = 0;
    c->deadline = 0;
    c->available = 0; /* a new connection starts unavailable (presence.c) */
}

static void maybe_free(wa_client *c)
{
    if (!c->freeing || c->stream || !c->timer_closed || c->keygen)
        return;
    release_connection(c);
    /* requests still in flight go without callbacks (c->freeing: see their fail functions) */
    wa__send_fail_all(c, WA_ECLOSED);
    wa__check_fail_all(c, WA_ECLOSED);
    wa__group_fail_all(c, WA_ECLOSED);
    wa__e2e_release(c);
    wa__presence_release(c);
    tls_put(c->tls);
    wa_free(c->account_name);
    wa_free(c->host);
    wa_free(c->path);
    if (c->proxy) {
        wa_wipe(c->proxy, strlen(c->proxy));
        wa_free(c->proxy);
    }
    wa_free(c->push_name);
    wa_free(c->os_name);
    wa_free(c->phone);
    wa_wipe(c, sizeof *c);
    wa_free(c);
}

/* Record why the connection ends (the first reason wins) and close it. */
static void drop(wa_client *c, int reason, int code, const char *text)
{
    if (c->state == ST_CLOSING || c->state == ST_IDLE || c->state == ST_WAIT)
        return;
    if (!c->disc_reason) {
        c->disc_reason = reason;
        c->disc_code = code ? code : wa__policy_code_for_reason(reason);
        snprintf(c->disc_text, sizeof c->disc_text, "%s", text ? text : "");
    }
    wa_log_info(LOG, "[%s] disconnecting: %s (%d) %s", c->account_name,
                wa_disconnect_reason_name(reason), c->disc_code, c->disc_text);
    c->state = ST_CLOSING;
    if (c->stream) {
        flush(c);
        wa_stream_close(c->stream);
    }
}

/* The connection is gone (stream closed, or it never opened): report, then retry or stop. */
static void finished(wa_client *c, int err, const char *err_text)
{
    wa_client_disconnect_info info;
    int reason = c->disc_reason, code = c->disc_code, will_retry;
    unsigned delay = 0, gen = c->gen;
    char text[sizeof c->disc_text];

    release_connection(c);
    /* sends and contact queries in flight end with the connection (callbacks may stop or free
     * the client: checked below) */
    wa__send_fail_all(c, WA_ECLOSED);
    if (alive(c, gen))
        wa__check_fail_all(c, WA_ECLOSED);
    if (alive(c, gen))
        wa__group_fail_all(c, WA_ECLOSED);
    wa__e2e_release(c);
    if (!alive(c, gen))
        return;
    if (!reason) {
        reason = wa__policy_reason_for_error(err ? err : WA_ECLOSED);
        code = wa__policy_code_for_reason(reason);
        snprintf(text, sizeof text, "%s",
                 err_text && err_text[0] ? err_text : wa_strerror(err ? err : WA_ECLOSED));
    } else {
        snprintf(text, sizeof text, "%s", c->disc_text);
    }
    c->disc_reason = 0;
    c->disc_code = 0;
    c->disc_text[0] = '\0';
    if (!c->started)
        reason = WA_DISC_STOPPED, code = 428;
    if (c->was_connected)
        c->attempts = 0;
    c->was_connected = 0;
    will_retry =
        c->started && wa__policy_retry(reason, c->attempts, c->backoff_base, c->backoff_max,
                                       wa_random_below(UINT32_MAX), &delay);
    if (will_retry && reason != WA_DISC_RESTART)
        c->attempts++;
    if (reason == WA_DISC_LOGGED_OUT) {
        int rc = wa_store_account_wipe(c->store, c->account);
        if (rc)
            wa_log_error(LOG, "[%s] logged out, but wiping the credentials failed: %s",
                         c->account_name, wa_strerror(rc));
        c->me_jid[0] = '\0';
    }
    if (will_retry) {
        c->state = ST_WAIT;
        c->retry_at = now_ms(c) + delay;
    } else {
        c->state = ST_IDLE;
        c->started = 0;
    }
    wa_log_info(LOG, "[%s] disconnected: %s (%d) %s; %s %u ms", c->account_name,
                wa_disconnect_reason_name(reason), code, text,
                will_retry ? "reconnecting in" : "not retrying", delay);
    memset(&info, 0, sizeof info);
    info.reason = reason;
    info.code = code;
    info.text = text;
    info.will_retry = will_retry;
    info.retry_ms = delay;
    if (c->cbs.disconnected) {
        c->cbs.disconnected(c, &info, c->user_data);
        if (!alive(c, gen))
            return;
    }
    if (reason == WA_DISC_LOGGED_OUT && c->cbs.logged_out) {
        c->cbs.logged_out(c, c->user_data);
        if (!alive(c, gen))
            return;
    }
    arm(c);
}

/* ---- pairing -------------------------------------------------------------------------------- */

static void next_qr(wa_client *c)
{
    pairing *p = c->pair;
    wa_store_creds *cr;
    char text[WA__QR_MAX];
    unsigned gen = c->gen;
    int rc;

    if (p->next >= p->nrefs) {
        drop(c, WA_DISC_PAIR_EXPIRED, 408, "QR refs exhausted: no phone scanned the code");
        return;
    }
    cr = wa_malloc(sizeof *cr);
    if (!cr) {
        drop(c, WA_DISC_NETWORK, 0, "out of memory");
        return;
    }
    rc = wa_store_creds_load(c->store, c->account, cr);
    if (rc == 0)
        rc = wa__pair_qr_text(p->refs[p->next], cr, text, sizeof text);
    wa_store_creds_wipe(cr);
    wa_free(cr);
    if (rc) {
        drop(c, WA_DISC_STORE, 0, "cannot build the QR text from the stored credentials");
        return;
    }
    p->deadline = now_ms(c) + (p->next == 0 ? WA__QR_FIRST_MS : WA__QR_NEXT_MS);
    p->next++;
    if (c->cbs.qr)
        c->cbs.qr(c, text, c->user_data);
    wa_wipe(text, sizeof text);
    if (alive(c, gen))
        arm(c);
}

static void on_pair_device(wa_client *c, const wa_node *iq)
{
    const wa_node *pd = wa_node_child(iq, "pair-device");
    wa_arena a;
    pairing *p;

    wa_arena_init(&a, 4096);
    send_node(c, wa__st_iq_result(&a, iq));
    wa_arena_cleanup(&a);
    if (c->me_jid[0]) {
        drop(c, WA_DISC_PROTOCOL, 0, "pair-device for an account that is already paired");
        return;
    }
    if (!c->pair) {
        c->pair = wa_calloc(1, sizeof *c->pair);
        if (!c->pair) {
            drop(c, WA_DISC_NETWORK, 0, "out of memory");
            return;
        }
    }
    p = c->pair;
    p->nrefs = p->next = 0;
    WA_NODE_FOREACH(r, pd)
    {
        const uint8_t *b;
        size_t n, i;
        if (p->nrefs >= WA__MAX_REFS || !wa_node_is(r, "ref") ||
            wa_node_content_bytes(r, &b, &n) != 0 || n == 0 || n > WA__REF_MAX)
            continue;
        for (i = 0; i < n && b[i] > 32 && b[i] < 127 && b[i] != ','; i++)
            ;
        if (i != n)
            continue;
        memcpy(p->refs[p->nrefs], b, n);
        p->refs[p->nrefs][n] = '\0';
        p->nrefs++;
    }
    c->state = ST_PAIRING;
    c->deadline = 0;
    c->next_ping = now_ms(c) + c->keepalive_ms;
    if (c->phone) {
        wa_store_creds *cr;
        wa_node *hello = NULL;
        char id[WA__IQ_ID_MAX];
        int rc;

        if (p->link) /* a second pair-device on this connection: the code stays */
            return;
        cr = wa_malloc(sizeof *cr);
        rc = cr ? wa_store_creds_load(c->store, c->account, cr) : WA_ENOMEM;
        if (rc == 0)
            rc = wa__link_init(&p->lk, c->phone);
        wa_arena_init(&a, 8192);
        wa__iq_make_id(&c->iqs, id);
        if (rc == 0) {
            hello = wa__link_hello(&a, id, &p->lk, cr->noise_pub);
            rc = send_iq(c, hello, id, WA__IQ_LINK_HELLO, c->iq_timeout_ms, 0);
        }
        wa_arena_cleanup(&a);
        if (cr) {
            wa_store_creds_wipe(cr);
            wa_free(cr);
        }
        if (rc) {
            drop(c, WA_DISC_PAIR_FAILED, 0, "cannot start phone-number pairing");
            return;
        }
        p->link = 1;
        p->deadline = now_ms(c) + WA__PAIR_CODE_TTL_MS;
        arm(c);
        return;
    }
    next_qr(c);
}

static void on_pair_success(wa_client *c, const wa_node *iq)
{
    wa_store_creds *cr = wa_malloc(sizeof *cr);
    wa__pair_result res;
    wa_node *reply = NULL;
    wa_arena a;
    unsigned gen = c->gen;
    char msg[160];
    int rc;

    if (!cr) {
        drop(c, WA_DISC_NETWORK, 0, "out of memory");
        return;
    }
    wa_arena_init(&a, 16384);
    rc = wa_store_creds_load(c->store, c->account, cr);
    if (rc) {
        drop(c, WA_DISC_STORE, 0, "cannot load the credentials to finish pairing");
        goto out;
    }
    rc = wa__pair_success(iq, cr, &a, &reply, &res);
    if (rc) {
        snprintf(msg, sizeof msg, "pair-success refused: %s",
                 rc == WA_ECRYPTO ? "HMAC or account signature does not verify" : wa_strerror(rc));
        drop(c, WA_DISC_PAIR_FAILED, 500, msg);
        goto out;
    }
    if (c->push_name)
        snprintf(cr->push_name, sizeof cr->push_name, "%s", c->push_name);
    /* the new identity is durable before the server hears that we accept it */
    rc = wa_store_creds_save(c->store, c->account, cr, 1);
    if (rc) {
        drop(c, WA_DISC_STORE, 0, "cannot store the new identity");
        goto out;
    }
    if (res.lid[0]) {
        wa_jid pn, lid;
        if (wa_jid_parse(res.jid, &pn) == 0 && wa_jid_parse(res.lid, &lid) == 0)
            wa_store_lid_put(c->store, c->account, pn.user, lid.user);
    }
    snprintf(c->me_jid, sizeof c->me_jid, "%s", res.jid);
    if (c->pair)
        c->pair->deadline = 0; /* no more QR rotation: wait for 515 */
    wa_log_info(LOG, "[%s] paired as %s (lid %s, platform %s)", c->account_name, res.jid,
                res.lid[0] ? res.lid : "-", res.platform[0] ? res.platform : "-");
    send_node(c, reply);
    wa_arena_cleanup(&a);
    send_node(c, wa__st_unified_session(&a, unix_ms()));
    if (c->cbs.paired)
        c->cbs.paired(c, res.jid, res.lid, c->user_data);
    if (alive(c, gen))
        arm(c);
out:
    wa_arena_cleanup(&a);
    wa_store_creds_wipe(cr);
    wa_free(cr);
}

static void on_link_notification(wa_client *c, const wa_node *n)
{
    wa_store_creds *cr;
    wa_node *iq = NULL;
    wa_arena a;
    char id[WA__IQ_ID_MAX];
    int rc;

    if (!c->pair || !c->pair->link) {
        wa_log_warn(LOG, "[%s] link code notification without a code request", c->account_name);
        return;
    }
    cr = wa_malloc(sizeof *cr);
    if (!cr) {
        drop(c, WA_DISC_NETWORK, 0, "out of memory");
        return;
    }
    wa_arena_init(&a, 8192);
    wa__iq_make_id(&c->iqs, id);
    rc = wa_store_creds_load(c->store, c->account, cr);
    if (rc == 0)
        rc = wa__link_finish(n, &c->pair->lk, cr, &a, id, &iq);
    /* the adv secret from the code exchange authenticates the coming pair-success */
    if (rc == 0)
        rc = wa_store_creds_save(c->store, c->account, cr, 0);
    if (rc == 0)
        rc = send_iq(c, iq, id, WA__IQ_LINK_FINISH, c->iq_timeout_ms, 0);
    if (rc)
        drop(c, rc == WA_ESTORE ? WA_DISC_STORE : WA_DISC_PAIR_FAILED, 0,
             "phone-number pairing failed (wrong code or malformed notification)");
    wa_arena_cleanup(&a);
    wa_store_creds_wipe(cr);
    wa_free(cr);
}

/* ---- after login ---------------------------------------------------------------------------- */

static void send_active(wa_client *c)
{
    wa_arena a;
    char id[WA__IQ_ID_MAX];

    wa_arena_init(&a, 4096);
    wa__iq_make_id(&c->iqs, id);
    if (send_iq(c, wa__st_passive_active(&a, id), id, WA__IQ_ACTIVE, c->iq_timeout_ms, 0))
        drop(c, WA_DISC_NETWORK, 0, "cannot send the passive/active iq");
    wa_arena_cleanup(&a);
}

static int send_upload(wa_client *c, size_t want, int may_defer);

/* One chunk at a time in the process: the pool threads otherwise take the CPU from the loop
 * thread in a login storm (4 busy workers and the loop on 2 cores: the loop ran at a third of a
 * core). The other pool threads wait here for ~5 ms at most per chunk ahead of them. */
static pthread_mutex_t keygen_lock = PTHREAD_MUTEX_INITIALIZER;

static void keygen_work(uv_work_t *w)
{
    struct wa__keygen *k = w->data;

    pthread_mutex_lock(&keygen_lock);
    k->rc = wa__keys_generate(k->keys + k->done, k->chunk);
    pthread_mutex_unlock(&keygen_lock);
}

static void keygen_free(struct wa__keygen *k)
{
    wa_wipe(k->keys, k->total * sizeof *k->keys);
    wa_free(k->keys);
    wa_free(k);
}

static void keygen_done(uv_work_t *w, int status)
{
    struct wa__keygen *k = w->data;
    wa_client *c = k->c;
    wa_store_creds *cr;
    int rc = status ? WA_ECLOSED : k->rc;

    if (rc == 0 && !c->freeing) {
        k->done += k->chunk;
        if (k->done < k->total) {
            k->chunk = k->total - k->done < KEYGEN_CHUNK ? k->total - k->done : KEYGEN_CHUNK;
            if (uv_queue_work(c->loop, &k->work, keygen_work, keygen_done) == 0)
                return;
            rc = WA_EIO;
        }
    }
    c->keygen = NULL;
    if (c->freeing) {
        keygen_free(k);
        maybe_free(c);
        return;
    }
    cr = wa_malloc(sizeof *cr);
    if (rc == 0)
        rc = cr ? wa_store_creds_load(c->store, c->account, cr) : WA_ENOMEM;
    if (rc == 0)
        rc = wa__keys_store_new(c->store, c->account, cr, k->keys, k->total);
    if (rc)
        wa_log_warn(LOG, "[%s] one-time prekeys not made: %s", c->account_name, wa_strerror(rc));
    if (cr) {
        wa_store_creds_wipe(cr);
        wa_free(cr);
    }
    /* the connection that asked waits for the upload before passive/active (on_iq_answer) */
    if (k->send && (c->state == ST_LOGIN || c->state == ST_CONNECTED) &&
        send_upload(c, k->want, 0) != 0 && c->state == ST_LOGIN)
        send_active(c);
    keygen_free(k);
}

/* Queue the making of `missing` keys for an upload of `want`. 0 if queued. */
static int keygen_start(wa_client *c, size_t want, size_t missing)
{
    struct wa__keygen *k = wa_calloc(1, sizeof *k);

    if (!k)
        return WA_ENOMEM;
    k->keys = wa_calloc(missing, sizeof *k->keys);
    if (!k->keys) {
        wa_free(k);
        return WA_ENOMEM;
    }
    k->c = c;
    k->total = missing;
    k->chunk = missing < KEYGEN_CHUNK ? missing : KEYGEN_CHUNK;
    k->want = want;
    k->send = 1;
    k->work.data = k;
    if (uv_queue_work(c->loop, &k->work, keygen_work, keygen_done) != 0) {
        keygen_free(k);
        return WA_EIO;
    }
    c->keygen = k;
    return 0;
}

/* Upload `want` one-time prekeys (the pending ones, topped up with new ones). 0 if an upload
 * went out, or will once the missing keys are made (keygen above). */
static int start_upload(wa_client *c, size_t want)
{
    return send_upload(c, want, 1);
}

static int send_upload(wa_client *c, size_t want, int may_defer)
{
    wa_store_creds *cr = NULL;
    wa_store_prekey *keys = NULL;
    size_t n = 0;
    wa_arena a;
    char id[WA__IQ_ID_MAX];
    int rc;

    if (c->upload_busy)
        return WA_ESTATE;
    if (c->keygen) { /* the upload follows when the keys are made */
        if (want > c->keygen->want)
            c->keygen->want = want;
        c->keygen->send = 1;
        return 0;
    }
    cr = wa_malloc(sizeof *cr);
    keys = wa_calloc(want, sizeof *keys);
    wa_arena_init(&a, WA__STANZA_ARENA_MAX);
    rc = cr && keys ? wa_store_creds_load(c->store, c->account, cr) : WA_ENOMEM;
    if (rc == 0 && may_defer)
        rc = wa_store_prekeys_pending(c->store, c->account, keys, want, &n);
    if (rc == 0 && may_defer && want - n >= KEYGEN_ASYNC_MIN &&
        keygen_start(c, want, want - n) == 0) {
        wa_log_info(LOG, "[%s] making %zu one-time prekeys", c->account_name, want - n);
        goto out;
    }
    if (rc == 0)
        rc = wa__keys_pending_prekeys(c->store, c->account, cr, want, keys, &n);
    if (rc == 0) {
        wa__iq_make_id(&c->iqs, id);
        rc = send_iq(c, wa__st_prekey_upload(&a, id, cr, keys, n), id, WA__IQ_UPLOAD,
                     c->iq_timeout_ms, (uint32_t)n);
    }
    if (rc == 0) {
        c->upload_busy = 1;
        wa_log_info(LOG, "[%s] uploading %zu prekeys", c->account_name, n);
    } else {
        wa_log_warn(LOG, "[%s] prekey upload not sent: %s", c->account_name, wa_strerror(rc));
    }
out:
    wa_arena_cleanup(&a);
    if (keys) {
        wa_wipe(keys, want * sizeof *keys);
        wa_free(keys);
    }
    if (cr) {
        wa_store_creds_wipe(cr);
        wa_free(cr);
    }
    return rc;
}

#define DIGEST_IDS_MAX 4096 /* prekey ids read from a key bundle digest */

/* At login, after the prekey count and before leaving passive mode (so before any offline
 * message can make us hand out a prekey in a retry receipt): the server's key bundle digest
 * (the iq Baileys 7 sends after <active/>), whose prekey id list tells whether this store is
 * behind the server (a restored backup, see digest_answer). count: the server's prekey count,
 * carried to the answer. 0 if sent. */
static int send_digest(wa_client *c, uint32_t count)
{
    wa_arena a;
    char id[WA__IQ_ID_MAX];
    int rc;

    wa_arena_init(&a, 4096);
    wa__iq_make_id(&c->iqs, id);
    rc = send_iq(c, wa__st_prekey_digest(&a, id), id, WA__IQ_DIGEST, c->iq_timeout_ms, count);
    wa_arena_cleanup(&a);
    return rc;
}

/* <digest><list><id>3 bytes</id>..</list>..</digest>: one-time prekeys the server holds that the
 * store does not are the mark of a stale store (a backup restored after a crash): the server
 * would hand them to senders whose first message then cannot be decrypted. They are replaced,
 * same ids, by new keys uploaded at once (the server keeps the last key uploaded for an id),
 * and the next ids move past them. */
static size_t digest_answer(wa_client *c, const wa_node *iq)
{
    const wa_node *list = wa_node_child(wa_node_child(iq, "digest"), "list"), *k;
    uint32_t *ids;
    size_t n = 0, cap = wa_node_child_count(list), unknown = 0, replaced = 0;
    int rc;

    if (!list || !cap)
        return 0;
    if (cap > DIGEST_IDS_MAX)
        cap = DIGEST_IDS_MAX;
    ids = wa_calloc(cap, sizeof *ids);
    if (!ids)
        return 0;
    for (k = wa_node_children(list); k && n < cap; k = k->next) {
        const uint8_t *p;
        size_t len;
        if (wa_node_is(k, "id") && wa_node_content_bytes(k, &p, &len) == 0 && len == 3)
            ids[n++] = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    }
    rc = wa__keys_adopt_server_prekeys(c->store, c->account, ids, n, WA__PREKEY_UPLOAD_MAX,
                                       &unknown, &replaced);
    wa_free(ids);
    if (rc) {
        wa_log_warn(LOG, "[%s] key bundle digest not checked: %s", c->account_name,
                    wa_strerror(rc));
        return 0;
    }
    if (!unknown)
        return 0;
    wa_log_warn(LOG,
                "[%s] the server holds %zu one-time prekey(s) this store does not have (restored "
                "from an older backup?): replacing %zu under the same ids",
                c->account_name, unknown, replaced);
    return replaced;
}

static void upload_done(wa_client *c, uint32_t n)
{
    /* the upload carried the n lowest pending keys; uploads never overlap (upload_busy). One
     * UPDATE, not a read and n of them: 812 at a first login (issue 6, loop time). */
    int rc = wa_store_prekeys_mark_lowest(c->store, c->account, n);

    if (rc)
        wa_log_warn(LOG, "[%s] cannot mark prekeys uploaded: %s", c->account_name, wa_strerror(rc));
}

static void on_success(wa_client *c, const wa_node *n)
{
    const char *lid = wa_node_attr(n, "lid");
    wa_arena a;
    char id[WA__IQ_ID_MAX];

    if (c->state != ST_HANDSHAKE) {
        drop(c, WA_DISC_PROTOCOL, 0, "unexpected <success/>");
        return;
    }
    c->state = ST_LOGIN;
    c->deadline = 0;
    c->next_ping = now_ms(c) + c->keepalive_ms;
    if (lid && c->me_jid[0]) {
        wa_jid pn, l;
        if (wa_jid_parse(c->me_jid, &pn) == 0 && wa_jid_parse(lid, &l) == 0 && wa_jid_is_lid(&l)) {
            wa__e2e_learn(c, pn.user, l.user);
            snprintf(c->me_lid, sizeof c->me_lid, "%s", lid);
        }
    }
    wa_log_info(LOG, "[%s] logged in as %s", c->account_name, c->me_jid);
    wa_arena_init(&a, 4096);
    wa__iq_make_id(&c->iqs, id);
    if (send_iq(c, wa__st_prekey_count(&a, id), id, WA__IQ_COUNT, c->iq_timeout_ms, 0))
        drop(c, WA_DISC_NETWORK, 0, "cannot send the prekey count iq");
    wa_arena_cleanup(&a);
}

/* The privacy settings, once per connection, as Baileys 7 at every open (executeInitQueries):
 * readreceipts decides between 'read' and 'read-self' receipts (wa_client_mark_read). */
static void send_privacy_get(wa_client *c)
{
    wa_arena a;
    char id[WA__IQ_ID_MAX];

    /* the value of the last connection stays until the answer: a setting rarely changes, and
     * reads marked right after a reconnect keep their type */
    wa_arena_init(&a, 1024);
    wa__iq_make_id(&c->iqs, id);
    if (send_iq(c, wa__st_privacy_get(&a, id), id, WA__IQ_PRIVACY, c->iq_timeout_ms, 0))
        wa_log_warn(LOG, "[%s] cannot ask for the privacy settings", c->account_name);
    wa_arena_cleanup(&a);
}

/* <privacy><category name value/>..</privacy>: keep readreceipts (anything but "all" is
 * treated as "none": no read receipts to the sender) */
static void privacy_answer(wa_client *c, const wa_node *iq)
{
    const wa_node *pv = wa_node_child(iq, "privacy"), *k;

    for (k = pv ? wa_node_children(pv) : NULL; k; k = k->next) {
        const char *name = wa_node_attr(k, "name"), *value = wa_node_attr(k, "value");
        if (wa_node_is(k, "category") && name && value && !strcmp(name, "readreceipts")) {
            c->readreceipts = !strcmp(value, "all") ? WA__RR_ALL : WA__RR_NONE;
            return;
        }
    }
}

static void became_connected(wa_client *c)
{
    wa_arena a;
    unsigned gen = c->gen;

    c->state = ST_CONNECTED;
    c->was_connected = 1;
    c->attempts = 0;
    wa_arena_init(&a, 4096);
    send_node(c, wa__st_unified_session(&a, unix_ms()));
    wa_arena_cleanup(&a);
    send_privacy_get(c);
    wa_log_info(LOG, "[%s] connected", c->account_name);
    if (c->cbs.connected)
        c->cbs.connected(c, c->user_data);
    /* messages asked again before a restart or reconnect (recv.c) */
    if (alive(c, gen) && c->state == ST_CONNECTED)
        wa__recv_retry_resume(c);
}

static void on_iq_answer(wa_client *c, const wa__iq *q, const wa_node *iq)
{
    int error = wa_node_attr(iq, "type") && !strcmp(wa_node_attr(iq, "type"), "error");
    const wa_node *err = wa_node_child(iq, "error");
    const char *etext = err && wa_node_attr(err, "text") ? wa_node_attr(err, "text") : "";

    if (error)
        wa_log_warn(LOG, "[%s] iq %s (kind %d) failed: %s %s", c->account_name, q->id, q->kind,
                    err && wa_node_attr(err, "code") ? wa_node_attr(err, "code") : "?", etext);
    switch (q->kind) {
    case WA__IQ_COUNT: {
        uint64_t count = 0;
        if (!error && wa_node_attr_u64(wa_node_child(iq, "count"), "value", &count) == 0)
            wa_log_info(LOG, "[%s] %llu prekeys on the server", c->account_name,
                        (unsigned long long)count);
        if (!error && send_digest(c, count > UINT32_MAX ? UINT32_MAX : (uint32_t)count) == 0)
            break; /* the upload decision follows the digest */
        /* none on the server (a new device): 812 at once, as Baileys 7 (INITIAL_PREKEY_COUNT)
         * and whatsmeow (initial upload); refills prekey_count (50, as whatsmeow) */
        if (!error && count <= WA__PREKEY_LOW &&
            start_upload(c, count == 0 ? WA__PREKEY_UPLOAD_MAX : c->prekey_count) == 0)
            break; /* passive/active after the upload */
        send_active(c);
        break;
    }
    case WA__IQ_UPLOAD:
        c->upload_busy = 0;
        if (!error) {
            unsigned gen = c->gen;
            upload_done(c, q->arg);
            if (c->cbs.keys_uploaded) {
                c->cbs.keys_uploaded(c, q->arg, c->user_data);
                if (!alive(c, gen))
                    break;
            }
        }
        if (c->state == ST_LOGIN)
            send_active(c);
        break;
    case WA__IQ_ACTIVE:
        if (c->state == ST_LOGIN)
            became_connected(c);
        break;
    case WA__IQ_LINK_HELLO:
        if (error) {
            char msg[160];
            snprintf(msg, sizeof msg, "the server refused the phone number: %s", etext);
            drop(c, WA_DISC_PAIR_FAILED, 0, msg);
        } else if (c->pair && c->cbs.pair_code) {
            char code[WA__PAIR_CODE_LEN + 1];
            memcpy(code, c->pair->lk.code, sizeof code);
            c->cbs.pair_code(c, code, c->user_data);
        }
        break;
    case WA__IQ_LINK_FINISH:
        /* a wrong code typed on the phone: the key bundle did not decrypt there. The user may
         * type the code again until it expires (the code deadline still runs). */
        if (error)
            wa_log_warn(LOG, "[%s] the phone did not accept the pairing code (typo?): waiting",
                        c->account_name);
        break;
    case WA__IQ_USYNC:
    case WA__IQ_KEYS:
    case WA__IQ_GROUP_META:
        wa__send_iq_answer(c, q->kind, q->arg, iq);
        break;
    case WA__IQ_GROUP:
        wa__group_answer(c, q->arg, iq);
        break;
    case WA__IQ_CONTACT:
        wa__check_answer(c, q->arg, iq);
        break;
    case WA__IQ_DIGEST: {
        /* q->arg: the prekey count; the upload as after the count, with room for the keys
         * that replace unknown ones */
        size_t replaced = error ? 0 : digest_answer(c, iq), want = 0;
        if (q->arg <= WA__PREKEY_LOW)
            want = q->arg == 0 ? WA__PREKEY_UPLOAD_MAX : c->prekey_count;
        if (replaced && want < (replaced > c->prekey_count ? replaced : c->prekey_count))
            want = replaced > c->prekey_count ? replaced : c->prekey_count;
        if (want && start_upload(c, want) == 0 && c->state == ST_LOGIN)
            break; /* passive/active after the upload */
        if (c->state == ST_LOGIN)
            send_active(c);
        break;
    }
    case WA__IQ_PRIVACY:
        if (!error)
            privacy_answer(c, iq);
        break;
    case WA__IQ_ROTATE:
        if (!error && c->cbs.keys_uploaded)
            c->cbs.keys_uploaded(c, 0, c->user_data);
        break;
    case WA__IQ_PING:
        if (!error && c->cbs.keepalive)
            c->cbs.keepalive(c, (unsigned)((uint32_t)now_ms(c) - q->arg), c->user_data);
        break;
    default:
        break;
    }
}

static void on_iq(wa_client *c, const wa_node *iq)
{
    const char *type = wa_node_attr(iq, "type"), *xmlns = wa_node_attr(iq, "xmlns");
    wa__iq q;

    if (!type)
        type = "";
    if (!strcmp(type, "result") || !strcmp(type, "error")) {
        if (wa__iq_take(&c->iqs, wa_node_attr(iq, "id"), &q) == 0)
            on_iq_answer(c, &q, iq);
        else /* a late answer after our timeout, or a server bug: not worth the connection */
            wa_log_warn(LOG, "[%s] iq %s for no request of ours (id %s): ignored", c->account_name,
                        type, wa_node_attr(iq, "id") ? wa_node_attr(iq, "id") : "-");
        return;
    }
    if (wa_node_child(iq, "pair-device") && !strcmp(type, "set")) {
        if (c->state == ST_HANDSHAKE || c->state == ST_PAIRING)
            on_pair_device(c, iq);
        else
            drop(c, WA_DISC_PROTOCOL, 0, "pair-device after login");
        return;
    }
    if (wa_node_child(iq, "pair-success")) {
        if (c->state == ST_PAIRING)
            on_pair_success(c, iq);
        else
            drop(c, WA_DISC_PROTOCOL, 0, "unexpected pair-success");
        return;
    }
    if (xmlns && !strcmp(xmlns, "urn:xmpp:ping")) {
        wa_arena a;
        if (!wa_node_attr(iq, "id")) {
            wa_log_warn(LOG, "[%s] server ping without id: not answered", c->account_name);
            return;
        }
        wa_arena_init(&a, 4096);
        send_node(c, wa__st_iq_result(&a, iq));
        wa_arena_cleanup(&a);
        return;
    }
    wa_log_debug(LOG, "[%s] unhandled server iq (xmlns %s)", c->account_name, xmlns ? xmlns : "-");
}

static void on_ib(wa_client *c, const wa_node *ib)
{
    const wa_node *n;

    if ((n = wa_node_child(wa_node_child(ib, "edge_routing"), "routing_info"))) {
        const uint8_t *p;
        size_t len;
        if (wa_node_content_bytes(n, &p, &len) == 0 && len <= WA_STORE_ROUTING_MAX && c->me_jid[0])
            wa_store_set_routing(c->store, c->account, p, len);
    } else if ((n = wa_node_child(ib, "offline"))) {
        wa_log_info(LOG, "[%s] offline queue delivered (%s)", c->account_name,
                    wa_node_attr(n, "count") ? wa_node_attr(n, "count") : "0");
    } else if (wa_node_child(ib, "downgrade_webclient")) {
        drop(c, WA_DISC_DOWNGRADE, 411, "multi-device mismatch (downgrade_webclient)");
    } else if (wa_node_child(ib, "offline_preview")) {
        wa_arena a;
        wa_node *r, *b;
        wa_arena_init(&a, 4096);
        r = wa_node_new(&a, "ib");
        b = r ? wa_node_new_child(&a, r, "offline_batch") : NULL;
        if (b && wa_node_set_attr(&a, b, "count", "100") == 0)
            send_node(c, r);
        wa_arena_cleanup(&a);
    }
}

void wa__client_ack(wa_client *c, const wa_node *n)
{
    wa_arena a;
    wa_node *ack;

    wa_arena_init(&a, 4096);
    ack = wa__st_ack(&a, n, c->me_jid);
    if (ack)
        send_node(c, ack);
    else
        wa_log_warn(LOG, "[%s] <%s> without id/from: not acked, ignored", c->account_name, n->tag);
    wa_arena_cleanup(&a);
}

static void on_notification(wa_client *c, const wa_node *n)
{
    const char *type = wa_node_attr(n, "type"), *from = wa_node_attr(n, "from");

    wa__client_ack(c, n);
    if (!type) {
        wa_log_warn(LOG, "[%s] notification without type: ignored", c->account_name);
        return;
    }
    if (!strcmp(type, "encrypt") && from &&
        (!strcmp(from, WA__SERVER_JID) || !strcmp(from, WA__SERVER))) {
        uint64_t count;
        if (wa_node_attr_u64(wa_node_child(n, "count"), "value", &count) == 0 &&
            count < WA__PREKEY_LOW && c->state == ST_CONNECTED)
            start_upload(c, c->prekey_count);
    } else if (!strcmp(type, "link_code_companion_reg") && c->state == ST_PAIRING) {
        on_link_notification(c, n);
    } else if (!strcmp(type, "devices")) {
        wa__devices_notification(c, n);
    } else if (!strcmp(type, "w:gp2") && c->state == ST_CONNECTED) {
        wa__group_notification(c, n);
    } else if (!strcmp(type, "encrypt") && wa_node_child(n, "identity") &&
               (c->state == ST_CONNECTED || c->state == ST_LOGIN)) {
        wa__identity_notification(c, n);
    }
}

static void on_node(wa_client *c, const wa_node *n)
{
    unsigned gen = c->gen;

    trace_node(c, "recv", n);
    if (c->rx_open && (c->cbs.stanza || !wa_node_is(n, "message"))) {
        /* the messages decrypted before it are committed and handed over first (recv.c) */
        wa__recv_batch_flush(c);
        if (!alive(c, gen))
            return;
    }
    if (c->cbs.stanza && (c->state == ST_LOGIN || c->state == ST_CONNECTED)) {
        int taken = c->cbs.stanza(c, n, c->user_data);
        if (!alive(c, gen) || taken == 1)
            return;
    }
    if (wa_node_is(n, "iq")) {
        on_iq(c, n);
    } else if (wa_node_is(n, "success")) {
        on_success(c, n);
    } else if (wa_node_is(n, "stream:error") || wa_node_is(n, "failure") ||
               wa_node_is(n, "xmlstreamend")) {
        int reason, code;
        const char *text;
        char msg[160];
        wa__policy_classify_node(n, &reason, &code, &text);
        snprintf(msg, sizeof msg, "%s%s", wa_node_is(n, "failure") ? "login failure: " : "", text);
        drop(c, reason, code, msg);
    } else if (wa_node_is(n, "ib")) {
        on_ib(c, n);
    } else if (wa_node_is(n, "notification")) {
        on_notification(c, n);
    } else if (wa_node_is(n, "message") && (c->state == ST_CONNECTED || c->state == ST_LOGIN)) {
        wa__recv_message(c, n);
    } else if (wa_node_is(n, "receipt") && (c->state == ST_CONNECTED || c->state == ST_LOGIN)) {
        wa__recv_receipt(c, n);
    } else if (wa_node_is(n, "ack")) {
        const char *cls = wa_node_attr(n, "class");
        if (cls && !strcmp(cls, "message"))
            wa__send_acked(c, n);
    } else if (wa_node_is(n, "message") || wa_node_is(n, "receipt") || wa_node_is(n, "call")) {
        wa__client_ack(c, n);
    } else if (wa_node_is(n, "presence") && c->state == ST_CONNECTED) {
        wa__presence_recv(c, n);
    } else if (wa_node_is(n, "chatstate") && c->state == ST_CONNECTED) {
        wa__chatstate_recv(c, n);
    }
    if (alive(c, gen))
        wa__identity_flush(c); /* identity changes the Signal layer reported meanwhile */
}

/* ---- stream callbacks ----------------------------------------------------------------------- */

static void on_connect(wa_stream *s, int status, void *ud)
{
    wa_client *c = ud;

    (void)s;
    if (status || c->state != ST_CONNECTING)
        return; /* on_close follows */
    c->state = ST_HANDSHAKE;
    c->deadline = now_ms(c) + c->connect_timeout_ms;
    c->last_recv = now_ms(c);
    flush(c); /* the WebSocket upgrade request */
    arm(c);
}

static void on_data(wa_stream *s, const uint8_t *data, size_t len, void *ud)
{
    wa_client *c = ud;
    wa_wire_event ev;
    int rc;

    (void)s;
    if (!c->wire || c->state == ST_CLOSING || c->freeing)
        return;
    c->last_recv = now_ms(c);
    rc = wa_wire_feed(c->wire, data, len);
    c->in_read = 1; /* what is sent meanwhile leaves in one write at the end */
    while (rc == 0 && (rc = wa_wire_next(c->wire, &ev)) == 0) {
        if (ev.type == WA_WIRE_EV_NODE) {
            on_node(c, ev.node);
        } else if (ev.type == WA_WIRE_EV_CLOSE) {
            char msg[64];
            snprintf(msg, sizeof msg, "the server closed the WebSocket (%d)", ev.close_code);
            drop(c, WA_DISC_NETWORK, 428, msg);
        } else if (ev.type == WA_WIRE_EV_OPEN) {
            wa_log_debug(LOG, "[%s] Noise handshake done", c->account_name);
        }
        if (c->state == ST_CLOSING || c->freeing || !c->wire)
            break;
    }
    /* the read's messages: committed, handed over, receipted (recv.c) */
    wa__recv_batch_flush(c);
    c->in_read = 0;
    if (c->state == ST_CLOSING || c->freeing || !c->wire)
        return;
    if (rc != WA_EAGAIN) {
        char msg[160];
        /* WA_ELIMIT here is the server's fault (a frame or message over our caps), not a full
         * write queue */
        int reason = rc == WA_ELIMIT ? WA_DISC_PROTOCOL : wa__policy_reason_for_error(rc);
        snprintf(msg, sizeof msg, "%s%s",
                 reason == WA_DISC_CERT ? "server certificate chain rejected: " : "",
                 wa_wire_reason(c->wire));
        drop(c, reason, 0, msg);
        return;
    }
    flush(c);
    arm(c); /* state and deadlines may have changed */
}

static void on_drain(wa_stream *s, void *ud)
{
    (void)s;
    flush(ud);
}

static void on_close(wa_stream *s, int reason, void *ud)
{
    wa_client *c = ud;
    char text[160];

    snprintf(text, sizeof text, "%s", wa_stream_last_error(s));
    c->stream = NULL;
    if (c->freeing) {
        maybe_free(c);
        return;
    }
    if (reason == WA_ECERT && !c->disc_reason) {
        c->disc_reason = WA_DISC_CERT;
        c->disc_code = 400;
        snprintf(c->disc_text, sizeof c->disc_text, "TLS certificate rejected: %.150s", text);
    }
    finished(c, reason, text);
}

/* ---- connecting ----------------------------------------------------------------------------- */

static void connect_now(wa_client *c)
{
    static const wa_stream_cbs cbs = {on_connect, on_data, on_drain, on_close};
    wa_store_creds *cr = wa_malloc(sizeof *cr);
    wa__payload_opts po;
    wa_wire_config wc;
    wa_stream_opts so;
    wa_buf payload;
    int rc;

    wa_buf_init(&payload, WA__PAYLOAD_MAX);
    c->disc_reason = 0;
    if (!cr) {
        rc = WA_ENOMEM;
        goto out;
    }
    rc = wa_store_creds_load(c->store, c->account, cr);
    if (rc == WA_ENOTFOUND) { /* a new account: make its keys before the first connection */
        rc = wa__keys_new_creds(cr);
        if (rc == 0)
            rc = wa_store_creds_save(c->store, c->account, cr, 0);
    }
    if (rc) {
        c->disc_reason = WA_DISC_STORE;
        c->disc_code = 500;
        snprintf(c->disc_text, sizeof c->disc_text, "cannot read or create the credentials: %s",
                 wa_store_errmsg(c->store));
        goto out;
    }
    snprintf(c->me_jid, sizeof c->me_jid, "%s", cr->me_jid);
    memcpy(po.version, c->version, sizeof po.version);
    po.os_name = c->os_name;
    po.push_name = c->push_name;
    rc = wa__payload_build(cr, &po, &payload);
    if (rc)
        goto out;
    c->wire = wa_calloc(1, sizeof *c->wire);
    if (!c->wire) {
        rc = WA_ENOMEM;
        goto out;
    }
    memset(&wc, 0, sizeof wc);
    wc.role = WA_WIRE_CLIENT;
    wc.static_priv = cr->noise_priv;
    wc.host = c->host;
    wc.path = c->path;
    wc.dict_version = c->dict;
    wc.routing = cr->routing_info_len ? cr->routing_info : NULL;
    wc.routing_len = cr->routing_info_len;
    wc.root_pub = c->has_root ? c->root : NULL;
    wc.payload = payload.data;
    wc.payload_len = payload.len;
    rc = wa_wire_init(c->wire, &wc);
    if (rc) {
        wa_free(c->wire);
        c->wire = NULL;
        goto out;
    }
    wa__iq_clear(&c->iqs); /* (cleared when the last connection ended: nothing, normally) */
    wa__iq_init(&c->iqs);
    memset(&so, 0, sizeof so);
    so.host = c->host;
    so.port = c->port;
    so.tls = c->use_tls ? c->tls->ctx : NULL;
    so.timeout_ms = c->connect_timeout_ms;
    so.proxy = c->proxy;
    c->state = ST_CONNECTING;
    rc = wa_stream_connect(c->loop, &so, &cbs, c, &c->stream);
    if (rc) {
        c->stream = NULL;
        goto out;
    }
    wa_log_debug(LOG, "[%s] connecting to %s:%u (%s)", c->account_name, c->host, (unsigned)c->port,
                 cr->me_jid[0] ? "login" : "registration");
out:
    wa_buf_wipe_cleanup(&payload);
    if (cr) {
        wa_store_creds_wipe(cr);
        wa_free(cr);
    }
    if (rc || c->disc_reason) {
        c->state = ST_CLOSING;
        finished(c, rc, NULL);
    }
}

/* ---- the timer ------------------------------------------------------------------------------ */

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t dead_after(const wa_client *c)
{
    unsigned grace =
        c->keepalive_ms < WA__DEADLINK_GRACE_MS ? c->keepalive_ms : WA__DEADLINK_GRACE_MS;
    return c->last_recv + c->keepalive_ms + grace;
}

static void on_timer(uv_timer_t *t);

static void arm(wa_client *c)
{
    uint64_t next = UINT64_MAX, now;

    if (c->freeing)
        return;
    switch (c->state) {
    case ST_WAIT:
        next = c->retry_at;
        break;
    case ST_HANDSHAKE:
        next = c->deadline ? c->deadline : UINT64_MAX;
        break;
    case ST_PAIRING:
    case ST_LOGIN:
    case ST_CONNECTED:
        next = min64(c->next_ping, dead_after(c));
        next = min64(next, wa__iq_next_deadline(&c->iqs));
        next = min64(next, wa__send_next_deadline(c));
        next = min64(next, wa__recv_next_deadline(c));
        if (c->pair && c->pair->deadline)
            next = min64(next, c->pair->deadline);
        break;
    default:
        break;
    }
    if (next == UINT64_MAX) {
        uv_timer_stop(&c->timer);
        return;
    }
    now = now_ms(c);
    uv_timer_start(&c->timer, on_timer, next > now ? next - now : 0, 0);
}

static void send_ping(wa_client *c, uint64_t now)
{
    wa_arena a;
    char id[WA__IQ_ID_MAX];

    wa_arena_init(&a, 4096);
    wa__iq_make_id(&c->iqs, id);
    /* an unanswered ping is caught by the dead-link check; its own deadline only frees the
     * slot. arg: the loop time it left (low 32 bits), for the round trip. */
    send_iq(c, wa__st_ping(&a, id), id, WA__IQ_PING, c->keepalive_ms + WA__DEADLINK_GRACE_MS,
            (uint32_t)now);
    wa_arena_cleanup(&a);
    c->next_ping = now + c->keepalive_ms;
}

static void on_timer(uv_timer_t *t)
{
    wa_client *c = t->data;
    uint64_t now = now_ms(c);
    wa__iq q;

    if (c->freeing)
        return;
    switch (c->state) {
    case ST_WAIT:
        if (now >= c->retry_at) {
            connect_now(c);
            return;
        }
        break;
    case ST_HANDSHAKE:
        if (c->deadline && now >= c->deadline) {
            drop(c, WA_DISC_TIMEOUT, 408, "no answer from the server during the handshake");
            return;
        }
        break;
    case ST_PAIRING:
    case ST_LOGIN:
    case ST_CONNECTED:
        if (now >= dead_after(c)) {
            char msg[96];
            snprintf(msg, sizeof msg, "nothing received for %llu ms (keep-alive)",
                     (unsigned long long)(now - c->last_recv));
            drop(c, WA_DISC_DEAD_LINK, 408, msg);
            return;
        }
        while (wa__iq_take_expired(&c->iqs, now, &q) == 0) {
            if (q.kind == WA__IQ_PING || q.kind == WA__IQ_PRIVACY)
                continue; /* (privacy: read receipts stay 'read-self') */
            drop(c, WA_DISC_TIMEOUT, 408, "an iq of ours was not answered in time");
            return;
        }
        if (c->pair && c->pair->deadline && now >= c->pair->deadline) {
            if (c->pair->link) {
                drop(c, WA_DISC_PAIR_EXPIRED, 408, "the pairing code was not entered in time");
                return;
            }
            next_qr(c); /* emits, or drops when out of refs */
            if (c->state == ST_CLOSING || c->freeing)
                return;
        }
        if (now >= c->next_ping) {
            wa__e2e_idle(c, now, c->keepalive_ms); /* no messaging for a keep-alive interval */
            if (c->wire)
                wa_wire_trim(c->wire); /* its decryption scratch (kept between reads) */
            send_ping(c, now);
        }
        {
            unsigned gen = c->gen;
            wa__recv_expire(c, now);
            wa__send_expire(c, now); /* may run user callbacks */
            if (!alive(c, gen) || c->state == ST_CLOSING)
                return;
        }
        break;
    default:
        break;
    }
    if (c->state != ST_CLOSING && !c->freeing)
        arm(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    wa_client *c = h->data;

    c->timer_closed = 1;
    maybe_free(c);
}

/* ---- public API ----------------------------------------------------------------------------- */

int wa_client_new(uv_loop_t *loop, wa_store *store, const wa_client_config *cfg,
                  const wa_client_callbacks *cbs, void *user_data, wa_client **out)
{
    wa_client_config d;
    wa_client *c;
    int rc;

    if (!loop || !store || !out)
        return WA_EINVAL;
    memset(&d, 0, sizeof d);
    if (!cfg)
        cfg = &d;
    c = wa_calloc(1, sizeof *c);
    if (!c)
        return WA_ENOMEM;
    c->loop = loop;
    c->store = store;
    c->user_data = user_data;
    if (cbs)
        c->cbs = *cbs;
    c->timer_closed = 1; /* until uv_timer_init */
    c->account_name = dup_str(cfg->account ? cfg->account : WA_CLIENT_DEFAULT_ACCOUNT);
    c->keepalive_ms = cfg->keepalive_ms ? cfg->keepalive_ms : WA_CLIENT_DEFAULT_KEEPALIVE_MS;
    c->connect_timeout_ms =
        cfg->connect_timeout_ms ? cfg->connect_timeout_ms : WA_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS;
    c->iq_timeout_ms = cfg->iq_timeout_ms ? cfg->iq_timeout_ms : WA_CLIENT_DEFAULT_IQ_TIMEOUT_MS;
    c->backoff_base =
        cfg->reconnect_base_ms ? cfg->reconnect_base_ms : WA_CLIENT_DEFAULT_RECONNECT_BASE_MS;
    c->backoff_max =
        cfg->reconnect_max_ms ? cfg->reconnect_max_ms : WA_CLIENT_DEFAULT_RECONNECT_MAX_MS;
    c->prekey_count =
        cfg->prekey_upload_count ? cfg->prekey_upload_count : WA__PREKEY_UPLOAD_DEFAULT;
    c->dict = (uint8_t)(cfg->dict_version ? cfg->dict_version : 3);
    rc = c->account_name ? 0 : WA_ENOMEM;
    if (rc == 0 && (c->prekey_count > WA__PREKEY_UPLOAD_MAX || (c->dict != 2 && c->dict != 3) ||
                    c->keepalive_ms < 100))
        rc = WA_EINVAL;
    if (rc == 0)
        rc = wa__parse_version(cfg->version ? cfg->version : WA_CLIENT_DEFAULT_VERSION, c->version);
    if (rc == 0)
        rc = parse_url(c, cfg->ws_url ? cfg->ws_url : WA_CLIENT_DEFAULT_URL);
    if (rc == 0 && cfg->proxy && cfg->proxy[0]) {
        wa_proxy_url pu;
        rc = wa_proxy_url_parse(cfg->proxy, &pu);
        wa_proxy_url_wipe(&pu);
        if (rc == 0 && !(c->proxy = dup_str(cfg->proxy)))
            rc = WA_ENOMEM;
    }
    if (rc == 0 && cfg->push_name && cfg->push_name[0] &&
        (strlen(cfg->push_name) >= WA_STORE_TEXT_MAX || !(c->push_name = dup_str(cfg->push_name))))
        rc = WA_EINVAL;
    if (rc == 0 && cfg->os_name && !(c->os_name = dup_str(cfg->os_name)))
        rc = WA_ENOMEM;
    if (rc == 0 && cfg->root_key) {
        memcpy(c->root, cfg->root_key, 32);
        c->has_root = 1;
    }
    if (rc == 0 && c->use_tls)
        rc = tls_get(cfg->ca_file, &c->tls);
    if (rc == 0)
        rc = wa_store_account(store, c->account_name, 1, &c->account);
    if (rc == 0) {
        wa_store_creds *cr = wa_malloc(sizeof *cr);
        if (cr && wa_store_creds_load(store, c->account, cr) == 0)
            snprintf(c->me_jid, sizeof c->me_jid, "%s", cr->me_jid);
        if (cr) {
            wa_store_creds_wipe(cr);
            wa_free(cr);
        }
    }
    if (rc == 0 && uv_timer_init(loop, &c->timer) != 0)
        rc = WA_EIO;
    if (rc) {
        c->freeing = 1;
        maybe_free(c);
        return rc;
    }
    c->timer_closed = 0;
    c->timer.data = c;
    *out = c;
    return 0;
}

int wa_client_start(wa_client *c)
{
    if (!c || c->freeing)
        return WA_EINVAL;
    if (c->started || c->state != ST_IDLE)
        return WA_ESTATE;
    c->started = 1;
    c->attempts = 0;
    c->state = ST_WAIT;
    c->retry_at = now_ms(c);
    arm(c);
    return 0;
}

int wa_client_stop(wa_client *c)
{
    if (!c || !c->started)
        return 0;
    c->started = 0;
    c->gen++;
    uv_timer_stop(&c->timer);
    if (c->state == ST_WAIT) {
        c->state = ST_IDLE;
        return 0;
    }
    if (!c->stream)
        return 0;
    /* a user stop overrides whatever reason was pending */
    c->disc_reason = WA_DISC_STOPPED;
    c->disc_code = 428;
    snprintf(c->disc_text, sizeof c->disc_text, "stopped by the application");
    if (c->state != ST_CLOSING) {
        c->state = ST_CLOSING;
        flush(c);
        wa_stream_close(c->stream);
    }
    return 1;
}

void wa_client_free(wa_client *c)
{
    if (!c || c->freeing)
        return;
    wa_client_stop(c);
    c->freeing = 1;
    c->gen++;
    memset(&c->cbs, 0, sizeof c->cbs);
    if (c->stream)
        wa_stream_close(c->stream);
    if (!c->timer_closed && !uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

int wa_client_pair_phone(wa_client *c, const char *phone)
{
    size_t n = phone ? strlen(phone) : 0, i;

    if (!c || n < 5 || n > WA__PHONE_MAX || phone[0] == '0')
        return WA_EINVAL;
    for (i = 0; i < n; i++)
        if (phone[i] < '0' || phone[i] > '9')
            return WA_EINVAL;
    if (c->started || c->me_jid[0])
        return WA_ESTATE;
    wa_free(c->phone);
    c->phone = dup_str(phone);
    return c->phone ? 0 : WA_ENOMEM;
}

int wa_client_rotate_signed_prekey(wa_client *c)
{
    wa_store_creds *cr;
    wa_arena a;
    char id[WA__IQ_ID_MAX];
    int rc;

    if (!c)
        return WA_EINVAL;
    if (c->state != ST_CONNECTED)
        return WA_ESTATE;
    cr = wa_malloc(sizeof *cr);
    if (!cr)
        return WA_ENOMEM;
    wa_arena_init(&a, 4096);
    rc = wa_store_creds_load(c->store, c->account, cr);
    if (rc == 0)
        rc = wa__keys_rotate_signed_prekey(cr, (int64_t)(unix_ms() / 1000));
    /* current in the store first: a bundle fetched after the server switches must find it */
    if (rc == 0)
        rc = wa_store_creds_save(c->store, c->account, cr, 0);
    if (rc == 0) {
        wa__iq_make_id(&c->iqs, id);
        rc = send_iq(c, wa__st_rotate(&a, id, cr), id, WA__IQ_ROTATE, c->iq_timeout_ms, 0);
    }
    if (rc == 0)
        wa_log_info(LOG, "[%s] signed prekey rotated to id %u", c->account_name,
                    (unsigned)cr->spk_id);
    wa_arena_cleanup(&a);
    wa_store_creds_wipe(cr);
    wa_free(cr);
    return rc;
}

int wa_client_send_node(wa_client *c, const struct wa_node *node)
{
    if (!c || !node)
        return WA_EINVAL;
    if (c->state != ST_CONNECTED && c->state != ST_LOGIN)
        return WA_ESTATE;
    return send_node(c, node);
}

const char *wa_client_jid(const wa_client *c)
{
    return c ? c->me_jid : "";
}

int wa_client_is_connected(const wa_client *c)
{
    return c && c->state == ST_CONNECTED;
}

int64_t wa_client_account_id(const wa_client *c)
{
    return c ? c->account : 0;
}

void *wa_client_user_data(const wa_client *c)
{
    return c ? c->user_data : NULL;
}

/* ---- memory and logout ---------------------------------------------------------------------- */

/* Stream struct with its uv_tcp_t and uv_timer_t (net/stream.h: < 1 KiB). */
#define STREAM_ESTIMATE 1024

static size_t str_bytes(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* A heap block of a type private to another file of the client: its size as the allocator
 * reports it (wa_malloc is malloc). */
static size_t block_bytes(const void *p)
{
#ifdef __GLIBC__
    return p ? malloc_usable_size((void *)p) : 0;
#else
    (void)p;
    return 0;
#endif
}

static size_t wire_bytes(const wa_wire *w)
{
    size_t n = sizeof *w;

    n += w->ws.in.cap + w->ws.msg.cap + w->ws.out.cap + w->ws.hs.cap;
    n += w->frame.in.cap + (w->frame.routing ? w->frame.routing_len : 0);
    n += w->hs ? sizeof *w->hs : 0;
    n += w->out.cap + w->scratch.cap + w->arena.total;
    n += w->payload ? w->payload_len : 0;
    n += w->client_payload ? w->client_payload_len : 0;
    return n;
}

size_t wa_client_memory(const wa_client *c)
{
    size_t n, i;

    if (!c)
        return 0;
    n = sizeof *c + str_bytes(c->account_name) + str_bytes(c->host) + str_bytes(c->path) +
        str_bytes(c->proxy) + str_bytes(c->push_name) + str_bytes(c->os_name) + str_bytes(c->phone);
    if (c->pair)
        n += sizeof *c->pair;
    if (c->wire)
        n += wire_bytes(c->wire);
    if (c->stream)
        n += STREAM_ESTIMATE + (c->use_tls ? WA_CLIENT_TLS_ESTIMATE : 0) +
             wa_stream_queued(c->stream);
    n += block_bytes(c->sig) + block_bytes(c->devs) + block_bytes(c->groups);
    n += c->retries ? WA__RETRY_TRACK * sizeof *c->retries : 0;
    n += block_bytes(c->resends);
    for (i = 0; i < WA__MAX_JOBS; i++)
        n += block_bytes(c->jobs[i]);
    for (i = 0; i < WA__MAX_CHECKS; i++)
        n += block_bytes(c->checks[i]);
    for (i = 0; i < WA_CLIENT_GROUP_OPS_MAX; i++)
        n += block_bytes(c->gops[i]);
    return n;
}

/* Baileys' logout(): <iq to='@s.whatsapp.net' type='set' id xmlns='md'>
 * <remove-companion-device jid=ME reason='user_initiated'/></iq>. 0 once it went out. */
static int send_remove_companion(wa_client *c)
{
    wa_arena a;
    wa_node *iq, *rm;
    char id[WA__IQ_ID_MAX];
    int rc = WA_ENOMEM;

    wa_arena_init(&a, 4096);
    wa__iq_make_id(&c->iqs, id);
    iq = wa_node_new(&a, "iq");
    rm = iq ? wa_node_new_child(&a, iq, "remove-companion-device") : NULL;
    if (rm && !wa_node_set_attr(&a, iq, "to", WA__SERVER_JID) &&
        !wa_node_set_attr(&a, iq, "type", "set") && !wa_node_set_attr(&a, iq, "id", id) &&
        !wa_node_set_attr(&a, iq, "xmlns", "md") && !wa_node_set_attr(&a, rm, "jid", c->me_jid) &&
        !wa_node_set_attr(&a, rm, "reason", "user_initiated"))
        rc = send_iq(c, iq, id, WA__IQ_OTHER, c->iq_timeout_ms, 0);
    wa_arena_cleanup(&a);
    return rc;
}

int wa_client_logout(wa_client *c)
{
    int sent = 0, rc;

    if (!c || c->freeing)
        return WA_EINVAL;
    if (c->state == ST_CONNECTED && c->me_jid[0] && send_remove_companion(c) == 0) {
        sent = 1;
        /* the close flushes the iq first; finished() reports logged_out and retries nothing */
        drop(c, WA_DISC_LOGGED_OUT, 401, "logged out by the application (device unlinked)");
    } else {
        wa_client_stop(c);
    }
    wa_log_info(LOG, "[%s] logout%s", c->account_name,
                sent ? ": device unlinked" : " without a connection: credentials wiped here only");
    rc = wa_store_account_wipe(c->store, c->account);
    c->me_jid[0] = '\0';
    c->me_lid[0] = '\0';
    if (rc) {
        wa_log_error(LOG, "[%s] logout: wiping the credentials failed: %s", c->account_name,
                     wa_strerror(rc));
        return rc;
    }
    return sent;
}
