/*
 * events.c - the event hub: options, webhook targets, publish (envelope -> outbox -> streams ->
 * delivery pump), statistics and the close sequence. See events.h.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "events/events.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/util.h"
#include "events/internal.h"
#include "wa/error.h"

#define COMPONENT "events"

const double wg_events_latency_bounds[WG_EVENTS_LATENCY_BUCKETS] = {
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

int64_t wg__now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- handles and the close sequence ---- */

static void target_free(wg_target *t)
{
    wa_wipe(t->secret, sizeof t->secret);
    wa_free(t);
}

static void finalize(wg_events *ev)
{
    void (*closed)(void *) = ev->closed;
    void *ud = ev->closed_ud;
    size_t i;

    wg_outbox_close(ev->ob);
    for (i = 0; i < WG__TARGET_BUCKETS; i++) {
        while (ev->targets[i]) {
            wg_target *t = ev->targets[i];
            ev->targets[i] = t->next;
            target_free(t);
        }
    }
    wa_wipe(ev, sizeof *ev);
    wa_free(ev);
    if (closed)
        closed(ud);
}

void wg__handle_released(wg_events *ev)
{
    if (--ev->open_handles == 0 && ev->closing)
        finalize(ev);
}

static void on_handle_closed(uv_handle_t *h)
{
    wg__handle_released(h->data);
}

void wg__handle_close(wg_events *ev, uv_handle_t *h)
{
    h->data = ev;
    uv_close(h, on_handle_closed);
}

/* ---- open ---- */

static void on_prune(uv_timer_t *t)
{
    wg_events *ev = t->data;
    int64_t deleted = 0;

    if (ev->closing)
        return;
    if (wg_outbox_prune(ev->ob, wg__now_ms() - (int64_t)ev->opts.retention_ms,
                        (int64_t)ev->opts.keep_max, &deleted) == 0 &&
        deleted > 0)
        wa_log_debug(COMPONENT, "pruned %lld old event(s)", (long long)deleted);
}

static int check_options(wg_events_options *o)
{
    if (!o->db_path || !o->db_path[0])
        return WA_EINVAL;
    if (!o->backoff.base_ms)
        o->backoff.base_ms = WG_BACKOFF_DEFAULT_BASE_MS;
    if (!o->backoff.cap_ms)
        o->backoff.cap_ms = WG_BACKOFF_DEFAULT_CAP_MS;
    if (!o->backoff.max_attempts)
        o->backoff.max_attempts = WG_BACKOFF_DEFAULT_MAX_ATTEMPTS;
    if (!o->attempt_timeout_ms)
        o->attempt_timeout_ms = WG_EVENTS_DEFAULT_ATTEMPT_TIMEOUT_MS;
    if (!o->connect_timeout_ms)
        o->connect_timeout_ms = WG_EVENTS_DEFAULT_CONNECT_TIMEOUT_MS;
    if (!o->max_inflight)
        o->max_inflight = WG_EVENTS_DEFAULT_MAX_INFLIGHT;
    if (!o->retention_ms)
        o->retention_ms = WG_EVENTS_DEFAULT_RETENTION_MS;
    if (!o->keep_max)
        o->keep_max = WG_EVENTS_DEFAULT_KEEP_MAX;
    if (!o->stream_queue_max)
        o->stream_queue_max = WG_EVENTS_DEFAULT_QUEUE_MAX;
    if (!o->ws_ping_ms)
        o->ws_ping_ms = WG_EVENTS_DEFAULT_WS_PING_MS;
    if (!o->sse_keepalive_ms)
        o->sse_keepalive_ms = WG_EVENTS_DEFAULT_SSE_KEEPALIVE_MS;
    if (!o->max_streams)
        o->max_streams = WG_EVENTS_DEFAULT_MAX_STREAMS;
    if (o->max_inflight > WG_EVENTS_MAX_INFLIGHT_LIMIT ||
        o->stream_queue_max < WG_EVENTS_QUEUE_MIN ||
        o->stream_queue_max > WG_EVENTS_QUEUE_MAX_LIMIT || o->backoff.cap_ms < o->backoff.base_ms)
        return WA_EINVAL;
    return 0;
}

int wg_events_open(uv_loop_t *loop, const wg_events_options *opts, wg_events **out)
{
    wg_events *ev;
    char last[WG_EVENT_ID_LEN + 1];
    int rc;

    if (!loop || !opts || !out)
        return WA_EINVAL;
    ev = wa_calloc(1, sizeof *ev);
    if (!ev)
        return WA_ENOMEM;
    ev->loop = loop;
    ev->opts = *opts;
    rc = check_options(&ev->opts);
    if (rc)
        goto fail;
    rc = wg_outbox_open(ev->opts.db_path, ev->opts.fsync_full, &ev->ob);
    if (rc)
        goto fail;
    /* new ids sort after every stored one, whatever the clock says now */
    if (wg_outbox_last_id(ev->ob, last) == 0 && last[0])
        wg_event_idgen_seed(&ev->idgen, last);
    rc = wg__webhook_init(ev);
    if (rc)
        goto fail;
    wg__stream_init(ev);
    uv_timer_init(loop, &ev->prune_timer);
    ev->prune_timer.data = ev;
    ev->open_handles++;
    uv_timer_start(&ev->prune_timer, on_prune, WG_EVENTS_PRUNE_INTERVAL_MS,
                   WG_EVENTS_PRUNE_INTERVAL_MS);
    uv_unref((uv_handle_t *)&ev->prune_timer);
    *out = ev;
    return 0;
fail:
    wg_outbox_close(ev->ob);
    wa_free(ev);
    return rc;
}

/* ---- targets ---- */

static void target_key(char key[WG_OUTBOX_TARGET_MAX + 1], const char *session)
{
    if (session)
        snprintf(key, WG_OUTBOX_TARGET_MAX + 1, "s:%s", session);
    else
        snprintf(key, WG_OUTBOX_TARGET_MAX + 1, "%s", WG__GLOBAL_TARGET);
}

static int url_valid(const char *url)
{
    size_t n = strlen(url), i;

    if (n > WG_EVENTS_URL_MAX)
        return 0;
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return 0;
    if (n <= 8)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7F)
            return 0;
    return 1;
}

static unsigned target_hash(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (; *key; key++)
        h = (h ^ (uint8_t)*key) * 16777619u;
    return h % WG__TARGET_BUCKETS;
}

wg_target *wg__target_find(wg_events *ev, const char *key)
{
    wg_target *t;

    for (t = ev->targets[target_hash(key)]; t; t = t->next)
        if (strcmp(t->key, key) == 0)
            return t;
    return NULL;
}

/* Take the target with this key out of the table (NULL if none). */
static wg_target *target_unlink(wg_events *ev, const char *key)
{
    wg_target **pp, *t;

    for (pp = &ev->targets[target_hash(key)]; (t = *pp); pp = &t->next) {
        if (strcmp(t->key, key) == 0) {
            *pp = t->next;
            return t;
        }
    }
    return NULL;
}

int wg_events_set_webhook(wg_events *ev, const char *session, const char *url,
                          const char *const *events, const char *secret)
{
    wg_target *t, *old;
    wg_event_filter probe;
    size_t slen = secret ? strlen(secret) : 0;
    unsigned h;
    int rc;

    if (!ev || ev->closing || !url || !url_valid(url) || slen > WG_EVENTS_SECRET_MAX)
        return WA_EINVAL;
    if (session) {
        wg_event_filter_init(&probe);
        if (wg_event_filter_add_session(&probe, session))
            return WA_EINVAL;
    }
    t = wa_calloc(1, sizeof *t);
    if (!t)
        return WA_ENOMEM;
    target_key(t->key, session);
    memcpy(t->url, url, strlen(url) + 1);
    if (slen)
        memcpy(t->secret, secret, slen);
    t->secret_len = slen;
    wg_event_filter_init(&t->filter);
    for (; events && *events; events++) {
        if (wg_event_filter_add_event(&t->filter, *events)) {
            target_free(t);
            return WA_EINVAL;
        }
    }
    rc = wg_outbox_set_live(ev->ob, t->key, 1);
    if (rc) {
        target_free(t);
        return rc;
    }
    old = target_unlink(ev, t->key);
    if (old)
        target_free(old);
    h = target_hash(t->key);
    t->next = ev->targets[h];
    ev->targets[h] = t;
    wg__webhook_kick(ev);
    return 0;
}

int wg_events_remove_webhook(wg_events *ev, const char *session, int drop_pending)
{
    char key[WG_OUTBOX_TARGET_MAX + 1];
    wg_target *t;
    int rc;

    if (!ev || ev->closing)
        return WA_EINVAL;
    target_key(key, session);
    t = target_unlink(ev, key);
    if (!t)
        return WA_ENOTFOUND;
    target_free(t);
    rc = wg_outbox_set_live(ev->ob, key, 0);
    if (!rc && drop_pending)
        rc = wg_outbox_drop_target(ev->ob, key, NULL);
    return rc;
}

/* ---- publish ---- */

int wg_events_publish(wg_events *ev, const char *session, const char *event, json_t *payload,
                      char *id_out)
{
    wg_envelope env;
    char id[WG_EVENT_ID_LEN + 1], skey[WG_OUTBOX_TARGET_MAX + 1];
    const char *targets[2];
    size_t n = 0;
    wg_target *t;
    int64_t now;
    int rc, built = 0;

    if (!payload)
        return WA_ENOMEM;
    if (!ev || !event) {
        rc = WA_EINVAL;
        goto out;
    }
    if (ev->closing) {
        rc = WA_ECLOSED;
        goto out;
    }
    now = wg__now_ms();
    rc = wg_event_id_next(&ev->idgen, (uint64_t)now, id);
    if (rc)
        goto out;
    rc = wg_envelope_build(&env, id, now, session, event, payload);
    if (rc)
        goto out;
    built = 1;
    t = wg__target_find(ev, WG__GLOBAL_TARGET);
    if (t && wg_event_filter_match(&t->filter, session, event))
        targets[n++] = t->key;
    if (session) {
        target_key(skey, session);
        t = wg__target_find(ev, skey);
        if (t && wg_event_filter_match(&t->filter, session, event))
            targets[n++] = t->key;
    }
    rc = wg_outbox_insert(ev->ob, &env, targets, n, now, NULL);
    if (rc) {
        ev->stats.publish_errors++;
        wa_log_error(COMPONENT, "event %s (%s) not stored: %s", id, event, wa_strerror(rc));
        goto out;
    }
    ev->stats.published++;
    wg__stream_publish(ev, &env);
    if (n)
        wg__webhook_kick(ev);
    if (id_out)
        memcpy(id_out, id, sizeof id);
out:
    if (built)
        wg_envelope_cleanup(&env);
    json_decref(payload);
    return rc;
}

/* ---- the rest ---- */

int wg_events_http(wg_events *ev, wg_http_req *req, wg_http_resp *resp)
{
    if (!req->path || strcmp(req->path, WG_EVENTS_PATH) != 0)
        return WA_ENOTFOUND;
    if (!ev || ev->closing) {
        wg_http_json_error(resp, 503, "unavailable", "the event hub is closing");
        return 0;
    }
    return wg__stream_http(ev, req, resp);
}

void wg_events_flush(wg_events *ev, unsigned timeout_ms, void (*done)(void *user_data),
                     void *user_data)
{
    if (!ev || ev->closing) {
        if (done)
            done(user_data);
        return;
    }
    ev->flush_done = done;
    ev->flush_ud = user_data;
    wg__webhook_flush_start(ev, timeout_ms);
}

void wg_events_get_stats(wg_events *ev, wg_events_stats *out)
{
    int64_t n = 0;

    *out = ev->stats;
    if (wg_outbox_count(ev->ob, -1, NULL, &n) == 0)
        out->pending = (uint64_t)n;
    out->ws_clients = wg__stream_count(ev, WG__SUB_WS);
    out->sse_clients = wg__stream_count(ev, WG__SUB_SSE);
}

void wg_events_close(wg_events *ev, void (*closed)(void *user_data), void *user_data)
{
    if (!ev || ev->closing)
        return;
    ev->closing = 1;
    ev->closed = closed;
    ev->closed_ud = user_data;
    wg__stream_shutdown(ev);
    wg__webhook_shutdown(ev);
    wg__handle_close(ev, (uv_handle_t *)&ev->prune_timer);
}
