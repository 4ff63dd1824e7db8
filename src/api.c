/*
 * api.c - routing, authentication and handlers of wagate's HTTP interface (see api.h and
 * docs/openapi.yaml).
 *
 * Every request goes through wg_api_handle: route lookup (404, or 405 with Allow when only the
 * method is wrong), X-Api-Key for everything under /api (constant-time compare; 401 missing,
 * 403 wrong; checked before the route so that unauthenticated clients learn nothing about the
 * routes), then the handler. GET /api/events also takes the key as ?api_key=, because a
 * browser's EventSource and WebSocket cannot send headers; no path or query string is ever
 * logged (the access log names the route pattern), so the key does not reach the logs. Errors are
 * {"error": {"code", "message"[, "field"]}}. Each request is timed into
 * wagate_http_request_duration_seconds by route pattern (never by raw path: bounded label values).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/util.h"
#include "events/events.h"
#include "qr/qr.h"
#include "wa/error.h"

#define COMPONENT "api"
#define PARAM_BUF 512
#define URL_MAX   1024
#define PROXY_MAX 1024

/* ---- responses ---- */

static void add_header(wg_http_resp *resp, const char *name, const char *value)
{
    size_t used = strlen(resp->extra_headers);

    snprintf(resp->extra_headers + used, sizeof resp->extra_headers - used, "%s: %s\r\n", name,
             value);
}

static void send_json(wg_http_resp *resp, int status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;

    json_decref(j);
    free(resp->body);
    resp->body = NULL;
    if (!text) {
        wg_http_json_error(resp, 500, "internal", "out of memory");
        return;
    }
    resp->body = text; /* jansson allocates with malloc: the server free()s it */
    resp->body_len = strlen(text);
    resp->status = status;
    resp->content_type = "application/json";
}

static void send_error(wg_http_resp *resp, int status, const char *code, const char *field,
                       const char *fmt, ...) WA__PRINTF(5, 6);

static void send_error(wg_http_resp *resp, int status, const char *code, const char *field,
                       const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    json_t *err;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err = json_pack("{s:s, s:s}", "code", code, "message", msg);
    if (err && field)
        json_object_set_new(err, "field", json_string(field));
    send_json(resp, status, err ? json_pack("{s:o}", "error", err) : NULL);
}

static void iso_time(char *out, size_t cap, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- request bodies ---- */

/* The body as a JSON object, or NULL with the error response already set. */
static json_t *parse_body(wg_http_req *req, wg_http_resp *resp)
{
    json_error_t e;
    json_t *j;

    /* The body is JSON whatever the Content-Type says (curl -d sends a form type). No CSRF
     * risk: a browser cannot add X-Api-Key to a cross-origin request without a preflight. */
    if (req->body_len == 0) {
        send_error(resp, 400, "invalid_json", NULL, "the request body must be a JSON object");
        return NULL;
    }
    j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        send_error(resp, 400, "invalid_json", NULL, "malformed JSON at line %d, column %d: %s",
                   e.line, e.column, e.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        send_error(resp, 400, "invalid_json", NULL, "the request body must be a JSON object");
        return NULL;
    }
    return j;
}

/* 1 if every key of obj is in allowed; else a 400 naming the first unknown field. */
static int only_fields(json_t *obj, const char *const *allowed, const char *prefix,
                       wg_http_resp *resp)
{
    const char *key;
    json_t *v;
    size_t i;

    json_object_foreach(obj, key, v)
    {
        for (i = 0; allowed[i]; i++)
            if (!strcmp(key, allowed[i]))
                break;
        if (!allowed[i]) {
            char field[160];
            snprintf(field, sizeof field, "%s%.100s", prefix, key);
            send_error(resp, 400, "invalid_field", field, "%s: unknown field", field);
            return 0;
        }
    }
    return 1;
}

static int has_scheme(const char *s, const char *const *schemes)
{
    size_t i;

    for (i = 0; schemes[i]; i++) {
        size_t n = strlen(schemes[i]);
        if (!strncasecmp(s, schemes[i], n) && s[n] && s[n] != '/')
            return 1;
    }
    return 0;
}

static int has_ctl_or_space(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* Event names of issue 6's envelope, and "*". */
static const char *const event_names[] = {"*",
                                          "session.status",
                                          "message",
                                          "message.ack",
                                          "message.reaction",
                                          "message.edited",
                                          "message.revoked",
                                          "presence.update",
                                          "group.update",
                                          "message.decrypt_failed",
                                          "contact.identity_changed",
                                          NULL};

/* Validate the "webhook" option; returns the canonical copy or NULL (error set). */
static json_t *check_webhook(json_t *w, wg_http_resp *resp)
{
    static const char *const fields[] = {"url", "events", "secret", NULL};
    static const char *const schemes[] = {"http://", "https://", NULL};
    json_t *url, *events, *secret, *out;
    size_t i, k;

    if (!json_is_object(w)) {
        send_error(resp, 400, "invalid_field", "webhook", "webhook: must be an object");
        return NULL;
    }
    if (!only_fields(w, fields, "webhook.", resp))
        return NULL;
    url = json_object_get(w, "url");
    if (!json_is_string(url) || json_string_length(url) > URL_MAX ||
        !has_scheme(json_string_value(url), schemes) || has_ctl_or_space(json_string_value(url))) {
        send_error(resp, 400, "invalid_field", "webhook.url",
                   "webhook.url: must be an http:// or https:// URL of at most %d bytes", URL_MAX);
        return NULL;
    }
    events = json_object_get(w, "events");
    if (events) {
        if (!json_is_array(events) || json_array_size(events) > 32) {
            send_error(resp, 400, "invalid_field", "webhook.events",
                       "webhook.events: must be an array of event names");
            return NULL;
        }
        for (i = 0; i < json_array_size(events); i++) {
            json_t *e = json_array_get(events, i);
            for (k = 0; event_names[k] && json_is_string(e); k++)
                if (!strcmp(json_string_value(e), event_names[k]))
                    break;
            if (!json_is_string(e) || !event_names[k]) {
                send_error(resp, 400, "invalid_field", "webhook.events",
                           "webhook.events[%zu]: unknown event name", i);
                return NULL;
            }
        }
    }
    secret = json_object_get(w, "secret");
    if (secret && (!json_is_string(secret) || json_string_length(secret) > WG_WEBHOOK_SECRET_MAX)) {
        send_error(resp, 400, "invalid_field", "webhook.secret",
                   "webhook.secret: must be a string of at most %d bytes", WG_WEBHOOK_SECRET_MAX);
        return NULL;
    }
    out = json_pack("{s:O}", "url", url);
    if (out && events)
        json_object_set(out, "events", events);
    if (out && secret)
        json_object_set(out, "secret", secret);
    return out;
}

static int check_proxy(json_t *p, wg_http_resp *resp)
{
    static const char *const schemes[] = {"socks5://", "socks5h://", "http://", NULL};

    if (!json_is_string(p) || json_string_length(p) > PROXY_MAX ||
        !has_scheme(json_string_value(p), schemes) || has_ctl_or_space(json_string_value(p))) {
        /* the value is never echoed: it may hold a password */
        send_error(resp, 400, "invalid_field", "proxy",
                   "proxy: must be a socks5://, socks5h:// or http:// URL of at most %d bytes",
                   PROXY_MAX);
        return 0;
    }
    return 1;
}

/* "scheme://user:secret@host" -> "scheme://user:***@host". */
static json_t *masked_proxy(const char *url)
{
    const char *start = strstr(url, "://"), *at, *colon;
    char out[PROXY_MAX + 8];

    if (!start)
        return json_string("***");
    start += 3;
    at = strrchr(start, '@');
    if (!at)
        return json_string(url);
    colon = memchr(start, ':', (size_t)(at - start));
    if (!colon)
        return json_string(url);
    snprintf(out, sizeof out, "%.*s:***%s", (int)(colon - url), url, at);
    return json_string(out);
}

/* ---- sessions ---- */

static json_t *session_json(wg_session *s)
{
    char created[32];
    json_t *j, *cfg;

    iso_time(created, sizeof created, s->created_at);
    j = json_pack("{s:s, s:s, s:b, s:s, s:I}", "name", s->name, "status", wg_status_name(s->status),
                  "running", s->want_running, "created_at", created, "memory_bytes",
                  (json_int_t)wg_session_memory(s));
    if (!j)
        return NULL;
    if (s->me[0]) {
        json_t *me = json_pack("{s:s}", "jid", s->me);
        if (me && s->me_lid[0])
            json_object_set_new(me, "lid", json_string(s->me_lid));
        json_object_set_new(j, "me", me);
    }
    if (s->reason[0])
        json_object_set_new(j, "reason", json_string(s->reason));
    if (s->status == WG_STATUS_PAIRING_CODE && s->pair_code[0])
        json_object_set_new(j, "pair_code", json_string(s->pair_code));
    cfg = json_loads(s->config_json, 0, NULL);
    if (json_is_object(cfg)) {
        json_t *w = json_object_get(cfg, "webhook"), *p = json_object_get(cfg, "proxy");
        if (json_is_object(w)) {
            json_t *wo = json_pack("{s:O, s:b}", "url", json_object_get(w, "url"), "has_secret",
                                   json_object_get(w, "secret") != NULL);
            if (wo && json_object_get(w, "events"))
                json_object_set(wo, "events", json_object_get(w, "events"));
            json_object_set_new(j, "webhook", wo);
        }
        if (json_is_string(p))
            json_object_set_new(j, "proxy", masked_proxy(json_string_value(p)));
    }
    json_decref(cfg);
    return j;
}

/* The named session, or NULL with 400 (bad name) / 404 set. */
static wg_session *find_session(wg_gateway *gw, const char *name, wg_http_resp *resp)
{
    wg_session *s;

    if (!wg_session_name_valid(name)) {
        send_error(resp, 400, "invalid_field", "name",
                   "name: 1 to %d letters, digits, '-' or '_', starting with a letter or digit",
                   WG_SESSION_NAME_MAX);
        return NULL;
    }
    s = wg_sessions_find(gw->sessions, name);
    if (!s)
        send_error(resp, 404, "session_not_found", NULL, "no session named %s", name);
    return s;
}

/* Admission control for a session about to be created or started. */
static int admit(wg_gateway *gw, wg_http_resp *resp, int starting)
{
    char retry[16];

    if (gw->mem.pressure) {
        snprintf(retry, sizeof retry, "%u", (gw->cfg.health_interval_ms + 999) / 1000);
        add_header(resp, "Retry-After", retry);
        send_error(resp, 503, "memory_pressure", NULL,
                   "memory use is above MEMORY_THRESHOLD (%.2f): no new sessions until it is "
                   "back below",
                   gw->cfg.memory_threshold);
        return 0;
    }
    if (starting && wg_sessions_running(gw->sessions) >= gw->cfg.max_connections) {
        send_error(resp, 429, "max_connections", NULL,
                   "MAX_CONNECTIONS (%u) sessions are already running", gw->cfg.max_connections);
        return 0;
    }
    if (wg_sessions_count(gw->sessions) >= WG_SESSIONS_MAX) {
        send_error(resp, 429, "too_many_sessions", NULL, "at most %d sessions", WG_SESSIONS_MAX);
        return 0;
    }
    return 1;
}

static void session_error(wg_http_resp *resp, int rc, const char *name)
{
    switch (rc) {
    case WA_EEXIST:
        send_error(resp, 409, "session_exists", "name", "a session named %s already exists", name);
        break;
    case WA_ESTATE:
        send_error(resp, 409, "invalid_state", NULL, "session %s is already running", name);
        break;
    case WA_ELIMIT:
        send_error(resp, 429, "too_many_sessions", NULL, "at most %d sessions", WG_SESSIONS_MAX);
        break;
    case WA_ESTORE:
        send_error(resp, 500, "store_error", NULL, "the session database could not be written");
        break;
    default:
        send_error(resp, 500, "backend_error", NULL, "session %s: %s", name, wa_strerror(rc));
    }
}

static void h_sessions_list(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                            const char *const *params)
{
    json_t *arr = json_array();
    size_t i;

    (void)req;
    (void)params;
    for (i = 0; arr && i < wg_sessions_count(gw->sessions); i++)
        json_array_append_new(arr, session_json(wg_sessions_at(gw->sessions, i)));
    send_json(resp, 200, arr ? json_pack("{s:o}", "sessions", arr) : NULL);
}

static void h_sessions_create(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                              const char *const *params)
{
    static const char *const fields[] = {"name", "webhook", "proxy", "start", NULL};
    json_t *body, *name, *webhook, *proxy, *start, *cfg = NULL;
    char *cfg_text = NULL, location[128];
    wg_session *s;
    int want_start = 1, rc;

    (void)params;
    if (!(body = parse_body(req, resp)))
        return;
    if (!only_fields(body, fields, "", resp))
        goto out;
    name = json_object_get(body, "name");
    if (!json_is_string(name) || !wg_session_name_valid(json_string_value(name))) {
        send_error(resp, 400, "invalid_field", "name",
                   "name: required, 1 to %d letters, digits, '-' or '_', starting with a letter "
                   "or digit",
                   WG_SESSION_NAME_MAX);
        goto out;
    }
    start = json_object_get(body, "start");
    if (start) {
        if (!json_is_boolean(start)) {
            send_error(resp, 400, "invalid_field", "start", "start: must be true or false");
            goto out;
        }
        want_start = json_is_true(start);
    }
    cfg = json_object();
    if (!cfg)
        goto oom;
    webhook = json_object_get(body, "webhook");
    if (webhook) {
        json_t *w = check_webhook(webhook, resp);
        if (!w)
            goto out;
        json_object_set_new(cfg, "webhook", w);
    }
    proxy = json_object_get(body, "proxy");
    if (proxy) {
        if (!check_proxy(proxy, resp))
            goto out;
        json_object_set(cfg, "proxy", proxy);
    }
    if (wg_sessions_find(gw->sessions, json_string_value(name))) {
        session_error(resp, WA_EEXIST, json_string_value(name));
        goto out;
    }
    if (!admit(gw, resp, want_start))
        goto out;
    cfg_text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
    if (!cfg_text)
        goto oom;
    /* the webhook target first, so that the session's first events reach it */
    if (webhook && (rc = wg_gateway_session_webhook(gw, json_string_value(name), cfg_text))) {
        if (rc == WA_EINVAL)
            send_error(resp, 400, "invalid_field", "webhook.url",
                       "webhook.url: not a usable http:// or https:// URL");
        else
            send_error(resp, 500, "store_error", NULL, "the webhook could not be set: %s",
                       wa_strerror(rc));
        goto out;
    }
    rc = wg_sessions_create(gw->sessions, json_string_value(name), cfg_text, want_start, &s);
    if (rc) {
        if (webhook)
            wg_events_remove_webhook(gw->events, json_string_value(name), 1);
        session_error(resp, rc, json_string_value(name));
        goto out;
    }
    snprintf(location, sizeof location, "/api/sessions/%s", s->name);
    add_header(resp, "Location", location);
    send_json(resp, 201, session_json(s));
    goto out;
oom:
    send_error(resp, 500, "internal", NULL, "out of memory");
out:
    if (cfg_text) {
        wa_wipe(cfg_text, strlen(cfg_text));
        free(cfg_text);
    }
    json_decref(cfg);
    json_decref(body);
}

static void h_session_get(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                          const char *const *params)
{
    wg_session *s = find_session(gw, params[0], resp);

    (void)req;
    if (s)
        send_json(resp, 200, session_json(s));
}

static void h_session_delete(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                             const char *const *params)
{
    wg_session *s = find_session(gw, params[0], resp);
    int rc;

    (void)req;
    if (!s)
        return;
    if ((rc = wg_sessions_delete(gw->sessions, s))) {
        session_error(resp, rc, params[0]);
        return;
    }
    wg_gateway_session_deleted(gw, params[0]); /* its backups too */
    /* its deliveries still waiting go with it (the target may not exist: WA_ENOTFOUND) */
    rc = wg_events_remove_webhook(gw->events, params[0], 1);
    if (rc && rc != WA_ENOTFOUND)
        wa_log_warn(COMPONENT, "session %s: its webhook deliveries could not be dropped: %s",
                    params[0], wa_strerror(rc));
    send_json(resp, 200, json_pack("{s:s, s:b}", "name", params[0], "deleted", 1));
}

static void h_session_start(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                            const char *const *params)
{
    wg_session *s = find_session(gw, params[0], resp);
    int rc;

    (void)req;
    if (!s)
        return;
    if (s->want_running && s->status != WG_STATUS_STOPPED && s->status != WG_STATUS_FAILED &&
        s->status != WG_STATUS_LOGGED_OUT) {
        session_error(resp, WA_ESTATE, s->name);
        return;
    }
    if (!admit(gw, resp, !s->want_running))
        return;
    if ((rc = wg_sessions_start(gw->sessions, s))) {
        session_error(resp, rc, params[0]);
        return;
    }
    send_json(resp, 200, session_json(s));
}

/* A session action that answers with the session: find, act, report. */
static void session_action(wg_gateway *gw, wg_http_resp *resp, const char *name,
                           int (*act)(wg_sessions *, wg_session *))
{
    wg_session *s = find_session(gw, name, resp);
    int rc;

    if (!s)
        return;
    if ((rc = act(gw->sessions, s))) {
        session_error(resp, rc, name);
        return;
    }
    send_json(resp, 200, session_json(s));
}

static void h_session_stop(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                           const char *const *params)
{
    (void)req;
    session_action(gw, resp, params[0], wg_sessions_stop);
}

static void h_session_logout(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                             const char *const *params)
{
    (void)req;
    session_action(gw, resp, params[0], wg_sessions_logout);
}

/* ---- QR and pairing by code ---- */

static void h_session_qr(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                         const char *const *params)
{
    const char *format = wg_http_query(req, "format");
    wg_session *s;
    uint8_t *png = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (!format || !*format)
        format = "png";
    if (strcmp(format, "png") && strcmp(format, "json") && strcmp(format, "raw") &&
        strcmp(format, "terminal")) {
        send_error(resp, 400, "invalid_field", "format",
                   "format: must be png, json, raw or terminal");
        return;
    }
    if (!(s = find_session(gw, params[0], resp)))
        return;
    if (!s->qr) {
        if (s->status == WG_STATUS_WORKING || s->me[0])
            send_error(resp, 409, "already_paired", NULL, "session %s is paired (%s): no QR code",
                       s->name, wg_status_name(s->status));
        else
            send_error(resp, 409, "qr_unavailable", NULL,
                       "session %s has no QR code now (status %s)%s", s->name,
                       wg_status_name(s->status),
                       s->status == WG_STATUS_STARTING ? ": try again in a moment"
                       : s->want_running               ? ""
                                                       : ": start it first");
        return;
    }
    if (!strcmp(format, "raw")) {
        wg_http_set_body(resp, 200, "text/plain; charset=utf-8", s->qr, strlen(s->qr));
        return;
    }
    if (!strcmp(format, "png")) {
        rc = wg_qr_png(s->qr, WG_QR_DEFAULT_SCALE, WG_QR_DEFAULT_MARGIN, &png, &len);
        if (!rc)
            wg_http_set_body(resp, 200, "image/png", png, len);
    } else if (!strcmp(format, "terminal")) {
        rc = wg_qr_terminal(s->qr, WG_QR_INK_LIGHT, &text, &len);
        if (!rc)
            wg_http_set_body(resp, 200, "text/plain; charset=utf-8", text, len);
    } else {
        rc = wg_qr_png_base64(s->qr, WG_QR_DEFAULT_SCALE, WG_QR_DEFAULT_MARGIN, &text);
        if (!rc)
            send_json(resp, 200,
                      json_pack("{s:s, s:s, s:s}", "qr", s->qr, "png_base64", text, "status",
                                wg_status_name(s->status)));
    }
    if (rc)
        send_error(resp, 500, "internal", NULL, "the QR code could not be rendered: %s",
                   wa_strerror(rc));
    wa_free(png);
    wa_free(text);
}

#define PHONE_DIGITS_MAX 20

typedef struct pair_wait {
    wg_gateway *gw;
    wg_session_watch watch;
    wg_session *s; /* NULL once gone */
    wg_http_pending *p;
    uv_timer_t timer;
    unsigned gen;
} pair_wait;

static void pair_wait_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Stop watching and release (the request is answered or cancelled). */
static void pair_wait_end(pair_wait *pw)
{
    if (pw->s)
        wg_session_watch_remove(pw->s, &pw->watch);
    pw->s = NULL;
    pw->p = NULL;
    uv_timer_stop(&pw->timer);
    if (!uv_is_closing((uv_handle_t *)&pw->timer))
        uv_close((uv_handle_t *)&pw->timer, pair_wait_closed);
}

static void pair_wait_answer(pair_wait *pw, int status, json_t *body)
{
    wg_http_resp r;

    memset(&r, 0, sizeof r);
    add_header(&r, "X-Content-Type-Options", "nosniff");
    add_header(&r, "Cache-Control", "no-store");
    send_json(&r, status, body);
    wg_http_resume_with(pw->p, &r);
    pair_wait_end(pw);
}

static json_t *error_json(const char *code, const char *fmt, ...) WA__PRINTF(2, 3);

static json_t *error_json(const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
}

/* What the session's state means for a waiting pair-code request: 1 answered, 0 keep waiting. */
static int pair_wait_check(pair_wait *pw, wg_session *s)
{
    if (s->pair_gen != pw->gen) {
        pair_wait_answer(
            pw, 409, error_json("superseded", "a newer pairing-code request replaced this one"));
    } else if (s->status == WG_STATUS_PAIRING_CODE && s->pair_code[0]) {
        pair_wait_answer(pw, 200, json_pack("{s:s}", "code", s->pair_code));
    } else if (s->status == WG_STATUS_FAILED || s->status == WG_STATUS_LOGGED_OUT) {
        pair_wait_answer(pw, 502,
                         error_json("pairing_failed", "session %s: %s", s->name,
                                    s->reason[0] ? s->reason : wg_status_name(s->status)));
    } else if (s->status == WG_STATUS_STOPPED || s->status == WG_STATUS_WORKING ||
               s->status == WG_STATUS_SCAN_QR) {
        pair_wait_answer(pw, 409,
                         error_json("invalid_state", "session %s is %s: pairing by code ended",
                                    s->name, wg_status_name(s->status)));
    } else {
        return 0;
    }
    return 1;
}

static void pair_wait_changed(wg_session_watch *w, wg_session *s, int gone)
{
    pair_wait *pw = w->user_data;

    if (gone)
        pw->s = NULL; /* the watch is already removed */
    if (pw->gw->shutting_down) {
        /* the sessions stop (or go) because the server does */
        pair_wait_answer(pw, 503, error_json("shutting_down", "the server is shutting down"));
        return;
    }
    if (gone) {
        pair_wait_answer(pw, 404, error_json("session_not_found", "the session was deleted"));
        return;
    }
    pair_wait_check(pw, s);
}

static void pair_wait_timeout(uv_timer_t *t)
{
    pair_wait *pw = t->data;

    pair_wait_answer(pw, 504,
                     error_json("timeout",
                                "no pairing code within %u ms; the session keeps trying: GET it "
                                "for its status and POST pair-code again",
                                pw->gw->pair_code_wait_ms));
}

/* The server stops: the request is answered by it, only forget it. */
static void pair_wait_cancel(void *ud)
{
    pair_wait_end(ud);
}

/* "+15551234567", "15551234567" -> digits; 0 if not a phone number. */
static int phone_digits(const char *in, char *out, size_t cap)
{
    size_t n = 0;

    if (*in == '+')
        in++;
    for (; *in; in++) {
        if (*in < '0' || *in > '9' || n + 1 >= cap)
            return 0;
        out[n++] = *in;
    }
    out[n] = '\0';
    return n >= 5 && out[0] != '0';
}

static void h_session_pair_code(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                                const char *const *params)
{
    static const char *const fields[] = {"phone", NULL};
    char digits[PHONE_DIGITS_MAX + 1];
    json_t *body = NULL, *phone;
    wg_session *s;
    pair_wait *pw;
    int rc;

    if (!(s = find_session(gw, params[0], resp)))
        return;
    if (!(body = parse_body(req, resp)))
        return;
    if (!only_fields(body, fields, "", resp))
        goto out;
    phone = json_object_get(body, "phone");
    if (!json_is_string(phone) || !phone_digits(json_string_value(phone), digits, sizeof digits)) {
        send_error(resp, 400, "invalid_field", "phone",
                   "phone: required, the number with its country code, 5 to %d digits, an "
                   "optional leading '+' (e.g. \"+15551234567\")",
                   PHONE_DIGITS_MAX);
        goto out;
    }
    if (s->me[0] || s->status == WG_STATUS_WORKING) {
        send_error(resp, 409, "already_paired", NULL,
                   "session %s is already paired: log it out first", s->name);
        goto out;
    }
    if (!admit(gw, resp, !s->want_running))
        goto out;
    rc = wg_sessions_pair_phone(gw->sessions, s, digits);
    if (rc == WA_EINVAL) {
        send_error(resp, 400, "invalid_field", "phone", "phone: not a valid phone number");
        goto out;
    }
    if (rc == WA_ESTATE) {
        send_error(resp, 409, "already_paired", NULL,
                   "session %s is already paired: log it out first", s->name);
        goto out;
    }
    if (rc == WA_EUNSUPPORTED) {
        send_error(resp, 501, "not_implemented", NULL,
                   "the session backend cannot pair by phone code");
        goto out;
    }
    if (rc) {
        session_error(resp, rc, s->name);
        goto out;
    }
    pw = calloc(1, sizeof *pw);
    if (!pw) {
        send_error(resp, 500, "internal", NULL, "out of memory");
        goto out;
    }
    pw->gw = gw;
    pw->s = s;
    pw->gen = s->pair_gen;
    pw->watch.fn = pair_wait_changed;
    pw->watch.user_data = pw;
    uv_timer_init(gw->loop, &pw->timer);
    pw->timer.data = pw;
    pw->p = wg_http_suspend(req, pair_wait_cancel, pw);
    if (!pw->p) {
        uv_close((uv_handle_t *)&pw->timer, pair_wait_closed);
        send_error(resp, 500, "internal", NULL, "cannot wait for the pairing code");
        goto out;
    }
    wg_session_watch_add(s, &pw->watch);
    uv_timer_start(&pw->timer, pair_wait_timeout, gw->pair_code_wait_ms, 0);
    /* the backend may have answered already */
    pair_wait_check(pw, s);
out:
    json_decref(body);
}

/* ---- messages ---- */

/* How long a send waits for the server's ack before 504 (the send may still go out), and a
 * call (contact check, group operation) for WhatsApp's answer. */
#define SEND_WAIT_MS  30000
#define CALL_WAIT_MS  30000
#define TEXT_MAX      65536 /* bytes of a text message */
#define JID_FIELD_MAX 191
#define MSG_ID_MAX    63
#define READ_IDS_MAX  256
#define MENTIONS_MAX  64 /* WA_CLIENT_MENTIONS_MAX */

/* A request suspended until the session's backend answers (a send's server ack, or a call such
 * as a group operation), or its timer fires. */
typedef struct backend_wait {
    wg_gateway *gw;
    char name[WG_SESSION_NAME_MAX + 1];
    wg_http_pending *p;
    uv_timer_t timer;
    int is_call;   /* 0: wg_sessions_send, 1: wg_sessions_call */
    int ok_status; /* calls: 200 or 201 */
} backend_wait;

static void wait_closed(uv_handle_t *h)
{
    free(h->data);
}

static backend_wait *wait_new(wg_gateway *gw, const wg_session *s, int is_call, int ok_status)
{
    backend_wait *w = calloc(1, sizeof *w);

    if (!w)
        return NULL;
    w->gw = gw;
    w->is_call = is_call;
    w->ok_status = ok_status;
    snprintf(w->name, sizeof w->name, "%s", s->name);
    uv_timer_init(gw->loop, &w->timer);
    w->timer.data = w;
    return w;
}

static void wait_end(backend_wait *w)
{
    w->p = NULL;
    uv_timer_stop(&w->timer);
    if (!uv_is_closing((uv_handle_t *)&w->timer))
        uv_close((uv_handle_t *)&w->timer, wait_closed);
}

/* Forget the backend's callback (the session may be gone: looked up by name). */
static void wait_forget(backend_wait *w)
{
    wg_session *s = wg_sessions_find(w->gw->sessions, w->name);

    if (s && w->is_call)
        wg_sessions_call_cancel(w->gw->sessions, s, w);
    else if (s)
        wg_sessions_send_cancel(w->gw->sessions, s, w);
}

static void wait_answer(backend_wait *w, int status, json_t *body)
{
    wg_http_resp r;

    memset(&r, 0, sizeof r);
    add_header(&r, "X-Content-Type-Options", "nosniff");
    add_header(&r, "Cache-Control", "no-store");
    send_json(&r, status, body);
    wg_http_resume_with(w->p, &r);
    wait_end(w);
}

static void wait_timeout(uv_timer_t *t)
{
    backend_wait *w = t->data;

    wait_forget(w);
    if (w->is_call)
        wait_answer(
            w, 504,
            error_json("timeout", "no answer from WhatsApp within %u ms", (unsigned)CALL_WAIT_MS));
    else
        wait_answer(w, 504,
                    error_json("timeout",
                               "no acknowledgement from WhatsApp within %u ms; the message may "
                               "still be delivered (watch message.ack events)",
                               (unsigned)SEND_WAIT_MS));
}

static void wait_cancel(void *ud)
{
    backend_wait *w = ud;

    wait_forget(w);
    wait_end(w);
}

/* The backend accepted w: suspend the request until it answers. 0, or -1 with the error sent
 * (the backend's callback forgotten, w released). */
static int wait_suspend(backend_wait *w, wg_http_req *req, wg_http_resp *resp)
{
    w->p = wg_http_suspend(req, wait_cancel, w);
    if (!w->p) {
        wait_forget(w);
        uv_close((uv_handle_t *)&w->timer, wait_closed);
        send_error(resp, 500, "internal", NULL, "cannot wait for WhatsApp's answer");
        return -1;
    }
    uv_timer_start(&w->timer, wait_timeout, w->is_call ? CALL_WAIT_MS : SEND_WAIT_MS, 0);
    return 0;
}

static void send_wait_done(void *ud, const wg_send_result *r)
{
    backend_wait *sw = ud;

    if (!sw->p)
        return;
    if (r->not_registered)
        wait_answer(sw, 422,
                    error_json("not_on_whatsapp",
                               "to: this phone number is not on WhatsApp; nothing was sent "
                               "(sending to unregistered numbers gets accounts restricted)"));
    else if (!r->err)
        wait_answer(sw, 201, json_pack("{s:s, s:s}", "id", r->id, "status", "sent"));
    else if (r->err == WA_ETIMEDOUT)
        wait_answer(sw, 504,
                    error_json("timeout", "the server did not acknowledge message %s: %s", r->id,
                               r->detail));
    else if (r->err == WA_ECLOSED)
        wait_answer(sw, 503,
                    error_json("session_unavailable",
                               "the connection ended before the server acknowledged the "
                               "message%s%s; it may not have been sent",
                               r->detail[0] ? ": " : "", r->detail));
    else
        wait_answer(sw, 502,
                    error_json("send_failed", "message %s not sent: %s", r->id,
                               r->detail[0] ? r->detail : wa_strerror(r->err)));
}

/* 1 if the session can send now; else the error is set (409: it needs an action first;
 * 503: it is (re)connecting, try again). */
static int session_can_send(wg_session *s, wg_http_resp *resp)
{
    switch (s->status) {
    case WG_STATUS_WORKING:
        return 1;
    case WG_STATUS_STARTING:
    case WG_STATUS_DISCONNECTED:
        add_header(resp, "Retry-After", "5");
        send_error(resp, 503, "session_unavailable", NULL,
                   "session %s is %s%s%s: it is (re)connecting, try again shortly (only "
                   "message sends of a paired session are queued)",
                   s->name, wg_status_name(s->status), s->reason[0] ? ": " : "", s->reason);
        return 0;
    default:
        send_error(resp, 409, "invalid_state", NULL, "session %s is %s: it must be WORKING to send",
                   s->name, wg_status_name(s->status));
        return 0;
    }
}

/* A required (or optional) string field of at most max bytes; else 400 naming it. */
static const char *str_field(json_t *body, const char *key, int required, size_t min, size_t max,
                             wg_http_resp *resp)
{
    json_t *v = json_object_get(body, key);

    if (!v && !required)
        return "";
    if (!json_is_string(v) || json_string_length(v) < min || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        send_error(resp, 400, "invalid_field", key, "%s: %s a string of %zu to %zu bytes", key,
                   required ? "required," : "must be", min, max);
        return NULL;
    }
    return json_string_value(v);
}

/* `to`: a phone number (digits with country code, optional '+') or a JID. */
static int to_valid(const char *to)
{
    char digits[PHONE_DIGITS_MAX + 1];

    if (strchr(to, '@'))
        return !has_ctl_or_space(to) && to[0] != '@';
    return phone_digits(to, digits, sizeof digits);
}

enum { SEND_TEXT, SEND_REACTION, SEND_EDIT, SEND_REVOKE, SEND_LOCATION, SEND_CONTACT };

#define LOC_TEXT_MAX     1024  /* bytes of a location's name or address */
#define VCARD_MAX        65536 /* bytes of a vCard */
#define CONTACT_NAME_MAX 256

/* A number field within [min, max]; else 400 naming it. */
static int num_field(json_t *body, const char *key, double min, double max, wg_http_resp *resp)
{
    json_t *v = json_object_get(body, key);
    double d;

    if (!json_is_number(v) || (d = json_number_value(v)) < min || d > max) {
        send_error(resp, 400, "invalid_field", key, "%s: required, a number in [%g, %g]", key, min,
                   max);
        return 0;
    }
    return 1;
}

static void send_common(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                        const char *const *params, int kind)
{
    static const char *const f_text[] = {"to", "text", "reply_to", "mentions", NULL};
    static const char *const f_reaction[] = {"to",     "message_id", "emoji",
                                             "sender", "from_me",    NULL};
    static const char *const f_edit[] = {"to", "message_id", "text", NULL};
    static const char *const f_revoke[] = {"to", "message_id", NULL};
    static const char *const f_location[] = {"to",      "latitude", "longitude", "name",
                                             "address", "reply_to", NULL};
    static const char *const f_contact[] = {"to", "name", "vcard", "reply_to", NULL};
    static const char *const *const fields[] = {f_text,   f_reaction, f_edit,
                                                f_revoke, f_location, f_contact};
    static const char *const kinds[] = {"text",   "reaction", "edit",
                                        "revoke", "location", "contact"};
    json_t *body = NULL, *v;
    const char *to;
    wg_session *s;
    backend_wait *sw;
    size_t i;
    int rc;

    if (!(s = find_session(gw, params[0], resp)))
        return;
    if (!(body = parse_body(req, resp)))
        return;
    if (!only_fields(body, fields[kind], "", resp))
        goto out;
    if (!(to = str_field(body, "to", 1, 1, JID_FIELD_MAX, resp)))
        goto out;
    if (!to_valid(to)) {
        send_error(resp, 400, "invalid_field", "to",
                   "to: a phone number with its country code (e.g. \"+15551234567\") or a JID "
                   "(\"15551234567@s.whatsapp.net\", \"...@lid\", \"...@g.us\")");
        goto out;
    }
    if (kind == SEND_TEXT || kind == SEND_EDIT) {
        if (!str_field(body, "text", 1, 1, TEXT_MAX, resp))
            goto out;
    }
    if ((kind == SEND_REACTION || kind == SEND_EDIT || kind == SEND_REVOKE) &&
        !str_field(body, "message_id", 1, 1, MSG_ID_MAX, resp))
        goto out;
    if (kind == SEND_LOCATION && (!num_field(body, "latitude", -90, 90, resp) ||
                                  !num_field(body, "longitude", -180, 180, resp) ||
                                  !str_field(body, "name", 0, 1, LOC_TEXT_MAX, resp) ||
                                  !str_field(body, "address", 0, 1, LOC_TEXT_MAX, resp) ||
                                  !str_field(body, "reply_to", 0, 1, MSG_ID_MAX, resp)))
        goto out;
    if (kind == SEND_CONTACT && (!str_field(body, "name", 1, 1, CONTACT_NAME_MAX, resp) ||
                                 !str_field(body, "vcard", 1, 1, VCARD_MAX, resp) ||
                                 !str_field(body, "reply_to", 0, 1, MSG_ID_MAX, resp)))
        goto out;
    if (kind == SEND_TEXT) {
        if (!str_field(body, "reply_to", 0, 1, MSG_ID_MAX, resp))
            goto out;
        v = json_object_get(body, "mentions");
        if (v && (!json_is_array(v) || json_array_size(v) > MENTIONS_MAX)) {
            send_error(resp, 400, "invalid_field", "mentions",
                       "mentions: an array of at most %d phone numbers or JIDs", MENTIONS_MAX);
            goto out;
        }
        for (i = 0; v && i < json_array_size(v); i++) {
            json_t *m = json_array_get(v, i);
            if (!json_is_string(m) || json_string_length(m) > JID_FIELD_MAX ||
                !to_valid(json_string_value(m))) {
                send_error(resp, 400, "invalid_field", "mentions",
                           "mentions[%zu]: a phone number or a JID", i);
                goto out;
            }
        }
    }
    if (kind == SEND_REACTION) {
        if (!str_field(body, "emoji", 0, 0, 64, resp) ||
            !str_field(body, "sender", 0, 1, JID_FIELD_MAX, resp))
            goto out;
        v = json_object_get(body, "from_me");
        if (v && !json_is_boolean(v)) {
            send_error(resp, 400, "invalid_field", "from_me", "from_me: must be a boolean");
            goto out;
        }
    }
    if (s->me[0] && s->want_running &&
        (s->status == WG_STATUS_STARTING || s->status == WG_STATUS_DISCONNECTED)) {
        /* reconnecting: queued durably, sent once WORKING again (message.ack follows) */
        char qid[WG_QUEUE_ID_MAX];
        if (json_object_set_new(body, "kind", json_string(kinds[kind]))) {
            send_error(resp, 500, "internal", NULL, "out of memory");
            goto out;
        }
        rc = wg_sessions_queue(gw->sessions, s, body, qid);
        if (rc == WA_ELIMIT)
            send_error(resp, 429, "queue_full", NULL,
                       "session %s is %s and already has %d queued sends", s->name,
                       wg_status_name(s->status), WG_SEND_QUEUE_MAX);
        else if (rc)
            send_error(resp, 500, "store_error", NULL, "the send could not be queued: %s",
                       wa_strerror(rc));
        else
            send_json(resp, 202, json_pack("{s:s, s:s}", "id", qid, "status", "queued"));
        goto out;
    }
    if (!session_can_send(s, resp))
        goto out;
    if (json_object_set_new(body, "kind", json_string(kinds[kind])) ||
        !(sw = wait_new(gw, s, 0, 201))) {
        send_error(resp, 500, "internal", NULL, "out of memory");
        goto out;
    }
    rc = wg_sessions_send(gw->sessions, s, body, send_wait_done, sw);
    if (rc) {
        uv_close((uv_handle_t *)&sw->timer, wait_closed);
        if (rc == WA_ENOTFOUND)
            send_error(resp, 422, "not_on_whatsapp", "to",
                       "to: this phone number is not on WhatsApp; nothing was sent (sending to "
                       "unregistered numbers gets accounts restricted)");
        else if (rc == WA_ESTATE)
            send_error(resp, 503, "session_unavailable", NULL,
                       "session %s is not connected; try again shortly", s->name);
        else if (rc == WA_ELIMIT)
            send_error(resp, 429, "too_many_sends", NULL,
                       "too many sends in flight on session %s; try again shortly", s->name);
        else if (rc == WA_EINVAL)
            send_error(resp, 400, "invalid_field", "to", "to/message: rejected: %s",
                       wa_strerror(rc));
        else if (rc == WA_EUNSUPPORTED)
            send_error(resp, 501, "not_implemented", NULL, "the session backend cannot send");
        else
            send_error(resp, 500, "backend_error", NULL, "session %s: %s", s->name,
                       wa_strerror(rc));
        goto out;
    }
    wait_suspend(sw, req, resp); /* the backend keeps its slot until the ack in any case */
out:
    json_decref(body);
}

static void h_send_text(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                        const char *const *params)
{
    send_common(gw, req, resp, params, SEND_TEXT);
}

static void h_send_reaction(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                            const char *const *params)
{
    send_common(gw, req, resp, params, SEND_REACTION);
}

static void h_send_edit(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                        const char *const *params)
{
    send_common(gw, req, resp, params, SEND_EDIT);
}

static void h_send_revoke(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                          const char *const *params)
{
    send_common(gw, req, resp, params, SEND_REVOKE);
}

static void h_send_location(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                            const char *const *params)
{
    send_common(gw, req, resp, params, SEND_LOCATION);
}

static void h_send_contact(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                           const char *const *params)
{
    send_common(gw, req, resp, params, SEND_CONTACT);
}

/* POST .../read {"chat", "ids": [...], "sender"?} -> 200 {"read": n} */
static void h_read(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp, const char *const *params)
{
    static const char *const fields[] = {"chat", "ids", "sender", NULL};
    const char *ids[READ_IDS_MAX];
    const char *chat, *sender;
    json_t *body = NULL, *v;
    wg_session *s;
    size_t i, n;
    int rc;

    if (!(s = find_session(gw, params[0], resp)))
        return;
    if (!(body = parse_body(req, resp)))
        return;
    if (!only_fields(body, fields, "", resp))
        goto out;
    if (!(chat = str_field(body, "chat", 1, 1, JID_FIELD_MAX, resp)) ||
        !(sender = str_field(body, "sender", 0, 1, JID_FIELD_MAX, resp)))
        goto out;
    if (!to_valid(chat)) {
        send_error(resp, 400, "invalid_field", "chat", "chat: a phone number or a JID");
        goto out;
    }
    v = json_object_get(body, "ids");
    n = json_array_size(v);
    if (!json_is_array(v) || n < 1 || n > READ_IDS_MAX) {
        send_error(resp, 400, "invalid_field", "ids", "ids: an array of 1 to %d message ids",
                   READ_IDS_MAX);
        goto out;
    }
    for (i = 0; i < n; i++) {
        json_t *id = json_array_get(v, i);
        if (!json_is_string(id) || json_string_length(id) < 1 ||
            json_string_length(id) > MSG_ID_MAX) {
            send_error(resp, 400, "invalid_field", "ids", "ids[%zu]: a message id", i);
            goto out;
        }
        ids[i] = json_string_value(id);
    }
    if (!session_can_send(s, resp))
        goto out;
    rc = wg_sessions_mark_read(gw->sessions, s, chat, sender[0] ? sender : NULL, ids, n);
    if (rc == WA_ESTATE)
        send_error(resp, 503, "session_unavailable", NULL, "session %s is not connected", s->name);
    else if (rc == WA_EINVAL)
        send_error(resp, 400, "invalid_field", "chat", "chat/sender: rejected");
    else if (rc == WA_EUNSUPPORTED)
        send_error(resp, 501, "not_implemented", NULL, "the session backend cannot send receipts");
    else if (rc)
        send_error(resp, 500, "backend_error", NULL, "session %s: %s", s->name, wa_strerror(rc));
    else
        send_json(resp, 200, json_pack("{s:I}", "read", (json_int_t)n));
out:
    json_decref(body);
}

/* ---- contacts, groups, presence (requests answered by WhatsApp later) ---- */

#define CHECK_PHONES_MAX 256 /* WA_CLIENT_CHECK_MAX */
#define GROUP_BATCH_MAX  256 /* WA_CLIENT_GROUP_BATCH_MAX */
#define SUBJECT_MAX      100 /* bytes; WhatsApp's limit on a group subject */

static void call_wait_done(void *ud, int err, json_t *result, const char *detail)
{
    backend_wait *cw = ud;

    if (!cw->p)
        return;
    if (!err)
        wait_answer(cw, cw->ok_status, json_incref(result));
    else if (err == WA_ETIMEDOUT)
        wait_answer(cw, 504, error_json("timeout", "WhatsApp did not answer: %s", detail));
    else if (err == WA_ECLOSED)
        wait_answer(
            cw, 503,
            error_json("session_unavailable", "the connection ended before WhatsApp answered"));
    else
        wait_answer(cw, 502,
                    error_json("whatsapp_error", "%s", detail[0] ? detail : wa_strerror(err)));
}

/* Hand req to the session's backend and answer the request when WhatsApp does. */
static void start_call(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp, wg_session *s,
                       json_t *call, int ok_status)
{
    backend_wait *cw;
    int rc;

    if (!session_can_send(s, resp))
        return;
    if (!(cw = wait_new(gw, s, 1, ok_status))) {
        send_error(resp, 500, "internal", NULL, "out of memory");
        return;
    }
    rc = wg_sessions_call(gw->sessions, s, call, call_wait_done, cw);
    if (rc) {
        uv_close((uv_handle_t *)&cw->timer, wait_closed);
        if (rc == WA_ESTATE)
            send_error(resp, 503, "session_unavailable", NULL,
                       "session %s is not connected; try again shortly", s->name);
        else if (rc == WA_ELIMIT)
            send_error(resp, 429, "too_many_requests", NULL,
                       "too many requests in flight on session %s; try again shortly", s->name);
        else if (rc == WA_EINVAL)
            send_error(resp, 400, "invalid_request", NULL, "rejected: %s", wa_strerror(rc));
        else if (rc == WA_EUNSUPPORTED)
            send_error(resp, 501, "not_implemented", NULL, "the session backend cannot do this");
        else
            send_error(resp, 500, "backend_error", NULL, "session %s: %s", s->name,
                       wa_strerror(rc));
        return;
    }
    wait_suspend(cw, req, resp);
}

/* An array field of 1..max phone numbers (phones_only) or phone numbers / user JIDs; else 400. */
static json_t *list_field(json_t *body, const char *key, size_t max, int phones_only,
                          wg_http_resp *resp)
{
    char digits[PHONE_DIGITS_MAX + 1];
    json_t *v = json_object_get(body, key), *e;
    size_t i, n = json_array_size(v);

    if (!json_is_array(v) || n < 1 || n > max) {
        send_error(resp, 400, "invalid_field", key, "%s: required, an array of 1 to %zu %s", key,
                   max, phones_only ? "phone numbers" : "phone numbers or JIDs");
        return NULL;
    }
    for (i = 0; i < n; i++) {
        const char *x;
        e = json_array_get(v, i);
        x = json_string_value(e);
        if (!x || json_string_length(e) > JID_FIELD_MAX ||
            !(phones_only ? phone_digits(x, digits, sizeof digits)
                          : (to_valid(x) && !strstr(x, "@g.us")))) {
            send_error(resp, 400, "invalid_field", key, "%s[%zu]: %s", key, i,
                       phones_only ? "a phone number with its country code (\"+15551234567\")"
                                   : "a phone number or a user JID");
            return NULL;
        }
    }
    return v;
}

/* POST .../contacts/check {"phones": [...]} -> 200 {"contacts": [{phone, exists, jid, lid?}]} */
static void h_contacts_check(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                             const char *const *params)
{
    static const char *const fields[] = {"phones", NULL};
    json_t *body, *phones, *call;
    wg_session *s;

    if (!(s = find_session(gw, params[0], resp)))
        return;
    if (!(body = parse_body(req, resp)))
        return;
    if (only_fields(body, fields, "", resp) &&
        (phones = list_field(body, "phones", CHECK_PHONES_MAX, 1, resp)) != NULL) {
        call = json_pack("{s:s, s:O}", "op", "check", "phones", phones);
        if (call)
            start_call(gw, req, resp, s, call, 200);
        else
            send_error(resp, 500, "internal", NULL, "out of memory");
        json_decref(call);
    }
    json_decref(body);
}

/* A group JID from the path: "120363...@g.us" or the bare id. NULL with 400 set. */
static const char *group_jid(const char *v, char *buf, size_t cap, wg_http_resp *resp)
{
    size_t n = strlen(v);

    if (n >= 6 && !strcmp(v + n - 5, "@g.us") && strspn(v, "0123456789-") == n - 5) {
        snprintf(buf, cap, "%s", v);
        return buf;
    }
    if (n > 0 && n < 64 && strspn(v, "0123456789-") == n) {
        snprintf(buf, cap, "%s@g.us", v);
        return buf;
    }
    send_error(resp, 400, "invalid_field", "jid", "jid: a group JID (\"120363...@g.us\")");
    return NULL;
}

/* POST .../groups {"subject", "participants": [...]} -> 201 group */
static void h_group_create(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                           const char *const *params)
{
    static const char *const fields[] = {"subject", "participants", NULL};
    json_t *body, *parts, *call;
    const char *subject;
    wg_session *s;

    if (!(s = find_session(gw, params[0], resp)))
        return;
    if (!(body = parse_body(req, resp)))
        return;
    if (only_fields(body, fields, "", resp) &&
        (subject = str_field(body, "subject", 1, 1, SUBJECT_MAX, resp)) != NULL &&
        (parts = list_field(body, "participants", GROUP_BATCH_MAX, 0, resp)) != NULL) {
        call = json_pack("{s:s, s:s, s:O}", "op", "group_create", "subject", subject,
                         "participants", parts);
        if (call)
            start_call(gw, req, resp, s, call, 201);
        else
            send_error(resp, 500, "internal", NULL, "out of memory");
        json_decref(call);
    }
    json_decref(body);
}

static void h_group_info(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                         const char *const *params)
{
    char jid[80];
    json_t *call;
    wg_session *s;

    if (!(s = find_session(gw, params[0], resp)))
        return;
    if (!group_jid(params[1], jid, sizeof jid, resp))
        return;
    call = json_pack("{s:s, s:s}", "op", "group_info", "group", jid);
    if (call)
        start_call(gw, req, resp, s, call, 200);
    else
        send_error(resp, 500, "internal", NULL, "out of memory");
    json_decref(call);
}

static void group_participants(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                               const char *const *params, const char *op)
{
    static const char *const fields[] = {"participants", NULL};
    json_t *body, *parts, *call;
    char jid[80];
    wg_session *s;

    if (!(s = find_session(gw, params[0], resp)))
        return;
    if (!group_jid(params[1], jid, sizeof jid, resp))
        return;
    if (!(body = parse_body(req, resp)))
        return;
    if (only_fields(body, fields, "", resp) &&
        (parts = list_field(body, "participants", GROUP_BATCH_MAX, 0, resp)) != NULL) {
        call = json_pack("{s:s, s:s, s:O}", "op", op, "group", jid, "participants", parts);
        if (call)
            start_call(gw, req, resp, s, call, 200);
        else
            send_error(resp, 500, "internal", NULL, "out of memory");
        json_decref(call);
    }
    json_decref(body);
}

static void h_group_add(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                        const char *const *params)
{
    group_participants(gw, req, resp, params, "group_add");
}

static void h_group_remove(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                           const char *const *params)
{
    group_participants(gw, req, resp, params, "group_remove");
}

/* POST .../presence: {"presence": "available"|"unavailable"}, or a chat state {"to", "state":
 * "composing"|"paused"|"recording"}, or {"subscribe": phone or JID} -> 200 echoing it. */
static void h_presence(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                       const char *const *params)
{
    static const char *const fields[] = {"presence", "to", "state", "subscribe", NULL};
    json_t *body, *act = NULL;
    const char *presence, *to, *state, *sub;
    wg_session *s;
    int rc;

    if (!(s = find_session(gw, params[0], resp)))
        return;
    if (!(body = parse_body(req, resp)))
        return;
    if (!only_fields(body, fields, "", resp) ||
        !(presence = str_field(body, "presence", 0, 1, 16, resp)) ||
        !(to = str_field(body, "to", 0, 1, JID_FIELD_MAX, resp)) ||
        !(state = str_field(body, "state", 0, 1, 16, resp)) ||
        !(sub = str_field(body, "subscribe", 0, 1, JID_FIELD_MAX, resp)))
        goto out;
    if (!!presence[0] + !!(to[0] || state[0]) + !!sub[0] != 1) {
        send_error(resp, 400, "invalid_field", presence[0] ? "to" : "presence",
                   "one of: presence (available or unavailable), to with state (composing, "
                   "paused or recording), or subscribe");
        goto out;
    }
    if (presence[0]) {
        if (strcmp(presence, "available") && strcmp(presence, "unavailable")) {
            send_error(resp, 400, "invalid_field", "presence",
                       "presence: available or unavailable");
            goto out;
        }
        act = json_pack("{s:s, s:s}", "op", "presence", "presence", presence);
    } else if (sub[0]) {
        if (!to_valid(sub) || strstr(sub, "@g.us")) {
            send_error(resp, 400, "invalid_field", "subscribe",
                       "subscribe: a phone number or a user JID");
            goto out;
        }
        act = json_pack("{s:s, s:s}", "op", "subscribe", "jid", sub);
    } else {
        if (!to[0] || !to_valid(to)) {
            send_error(resp, 400, "invalid_field", "to",
                       "to: required with state, a phone number "
                       "or a JID");
            goto out;
        }
        if (strcmp(state, "composing") && strcmp(state, "paused") && strcmp(state, "recording")) {
            send_error(resp, 400, "invalid_field", "state",
                       "state: required with to, composing, paused or recording");
            goto out;
        }
        act = json_pack("{s:s, s:s, s:s}", "op", "chat_state", "to", to, "state", state);
    }
    if (!act) {
        send_error(resp, 500, "internal", NULL, "out of memory");
        goto out;
    }
    if (!session_can_send(s, resp))
        goto out;
    rc = wg_sessions_act(gw->sessions, s, act);
    if (rc == WA_ESTATE)
        send_error(resp, 503, "session_unavailable", NULL, "session %s is not connected", s->name);
    else if (rc == WA_EINVAL)
        send_error(resp, 400, "invalid_request", NULL, "rejected by the client");
    else if (rc == WA_EUNSUPPORTED)
        send_error(resp, 501, "not_implemented", NULL, "the session backend cannot do this");
    else if (rc)
        send_error(resp, 500, "backend_error", NULL, "session %s: %s", s->name, wa_strerror(rc));
    else {
        json_object_del(act, "op");
        send_json(resp, 200, json_incref(act));
    }
out:
    json_decref(act);
    json_decref(body);
}

/* ---- the message store ---- */

#define CHATS_DEFAULT    100
#define CHATS_MAX        1000
#define MESSAGES_DEFAULT 50
#define MESSAGES_MAX     500

/* ?name= as an integer in [1, max] (default dflt); 0 with 400 set. */
static int query_limit(wg_http_req *req, const char *name, unsigned long dflt, unsigned long max,
                       unsigned long *out, wg_http_resp *resp)
{
    const char *v = wg_http_query(req, name);

    *out = dflt;
    if (v && wg_parse_uint(v, 1, max, out)) {
        send_error(resp, 400, "invalid_field", name, "%s: an integer in [1, %lu]", name, max);
        return 0;
    }
    return 1;
}

static int store_ready(wg_gateway *gw, wg_http_resp *resp)
{
    if (wg_sessions_store_enabled(gw->sessions))
        return 1;
    send_error(resp, 409, "store_disabled", NULL,
               "the message store is off (MESSAGE_STORE_MAX or MESSAGE_RETENTION_DAYS is 0)");
    return 0;
}

static int chat_row(const char *chat, int64_t last_ts, int64_t count, int64_t unread, void *ud)
{
    char when[32];

    iso_time(when, sizeof when, last_ts);
    return json_array_append_new(ud, json_pack("{s:s, s:I, s:s, s:I, s:I}", "jid", chat,
                                               "last_timestamp", (json_int_t)last_ts, "last_time",
                                               when, "messages", (json_int_t)count, "unread",
                                               (json_int_t)unread))
               ? WA_ENOMEM
               : 0;
}

static void h_chats(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp, const char *const *params)
{
    unsigned long limit;
    json_t *arr;
    wg_session *s;

    if (!(s = find_session(gw, params[0], resp)) || !store_ready(gw, resp) ||
        !query_limit(req, "limit", CHATS_DEFAULT, CHATS_MAX, &limit, resp))
        return;
    if (!(arr = json_array()) ||
        wg_db_chats(wg_sessions_db(gw->sessions), s->name, limit, chat_row, arr)) {
        json_decref(arr);
        send_error(resp, 500, "store_error", NULL, "the message store could not be read");
        return;
    }
    send_json(resp, 200, json_pack("{s:o}", "chats", arr));
}

static int message_row(const wg_db_msg *m, void *ud)
{
    json_t *o = json_loads(m->body, 0, NULL);

    if (!json_is_object(o)) {
        json_decref(o);
        return 0; /* not readable: skipped */
    }
    json_object_del(o, "maybe_repeat");
    json_object_set_new(o, "status", json_string(m->status));
    if (!json_object_get(o, "type"))
        json_object_set_new(o, "type", json_string(m->kind));
    return json_array_append_new(ud, o) ? WA_ENOMEM : 0;
}

/* GET .../chats/{jid}/messages?limit=&before= (a message id, or unix seconds) */
static void h_chat_messages(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                            const char *const *params)
{
    char digits[PHONE_DIGITS_MAX + 1], jid[JID_FIELD_MAX + 32];
    const char *before = wg_http_query(req, "before"), *chat = params[1];
    unsigned long limit, before_ts = 0;
    json_t *arr;
    wg_session *s;
    int rc;

    if (!(s = find_session(gw, params[0], resp)) || !store_ready(gw, resp) ||
        !query_limit(req, "limit", MESSAGES_DEFAULT, MESSAGES_MAX, &limit, resp))
        return;
    if (strlen(chat) > JID_FIELD_MAX || !to_valid(chat)) {
        send_error(resp, 400, "invalid_field", "jid", "jid: a phone number or a JID");
        return;
    }
    if (!strchr(chat, '@') && phone_digits(chat, digits, sizeof digits)) {
        snprintf(jid, sizeof jid, "%s@s.whatsapp.net", digits);
        chat = jid;
    }
    if (before && (!before[0] || strlen(before) > MSG_ID_MAX || has_ctl_or_space(before))) {
        send_error(resp, 400, "invalid_field", "before",
                   "before: a message id or a unix time in seconds");
        return;
    }
    if (before && strspn(before, "0123456789") == strlen(before)) {
        if (wg_parse_uint(before, 1, 1UL << 40, &before_ts)) {
            send_error(resp, 400, "invalid_field", "before", "before: a unix time in seconds");
            return;
        }
        before = NULL;
    }
    if (!(arr = json_array())) {
        send_error(resp, 500, "internal", NULL, "out of memory");
        return;
    }
    rc = wg_db_messages(wg_sessions_db(gw->sessions), s->name, chat, before, (int64_t)before_ts,
                        limit, message_row, arr);
    if (rc == WA_ENOTFOUND) {
        json_decref(arr);
        send_error(resp, 404, "message_not_found", "before",
                   "before: no stored message with this id in this chat");
        return;
    }
    if (rc) {
        json_decref(arr);
        send_error(resp, 500, "store_error", NULL, "the message store could not be read");
        return;
    }
    send_json(resp, 200, json_pack("{s:s, s:o}", "chat", chat, "messages", arr));
}

/* ---- health, readiness, metrics ---- */

static void h_health(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                     const char *const *params)
{
    (void)gw;
    (void)req;
    (void)params;
    /* liveness: the loop answered; nothing else is checked here (cheap by design) */
    wg_http_set_body(resp, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

static void h_ready(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp, const char *const *params)
{
    wg_health *h = &gw->health;
    const char *status;
    char checked[32];
    json_t *j;
    int ok, degraded;

    (void)req;
    (void)params;
    /* the loop is judged on the last interval and on right now */
    ok = h->ok && gw->lag.lag * 1000.0 <= WG_HEALTH_MAX_LAG_MS && h->checked_at != 0;
    degraded = gw->mem.pressure || h->sessions_connected < h->sessions_expected;
    status = !ok ? "fail" : degraded ? "degraded" : "ok";
    iso_time(checked, sizeof checked, h->checked_at);
    j = json_pack(
        "{s:s, s:s, s:s, s:b, s:{s:{s:b, s:f, s:f, s:f}, s:{s:b}, s:{s:b, s:I, s:I, s:f, s:f, "
        "s:b}, s:{s:I, s:I}, s:{s:n, s:b}}}",
        "status", status, "checked_at", checked, "backend", gw->backend.ops->name,
        "connected_to_whatsapp", gw->backend.ops->connects_to_whatsapp, "checks", "event_loop",
        "ok", h->loop_ok, "lag_seconds", gw->lag.lag, "max_lag_seconds", h->max_lag,
        "limit_seconds", WG_HEALTH_MAX_LAG_MS / 1000.0, "store", "ok", h->store_ok, "memory", "ok",
        !gw->mem.pressure, "used_bytes", (json_int_t)gw->mem.used, "limit_bytes",
        (json_int_t)gw->mem.limit, "ratio", wg_memory_ratio(&gw->mem), "threshold",
        gw->cfg.memory_threshold, "from_cgroup", gw->mem.limit_from_cgroup, "sessions", "expected",
        (json_int_t)h->sessions_expected, "connected", (json_int_t)h->sessions_connected, "backup",
        "last_success", "implemented", 0);
    send_json(resp, ok ? 200 : 503, j);
}

static void h_metrics(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                      const char *const *params)
{
    char *text;
    size_t len;

    (void)req;
    (void)params;
    wg_gateway_collect(gw);
    if (wg_metrics_render(gw->stats.reg, &text, &len)) {
        send_error(resp, 500, "internal", NULL, "metrics could not be rendered");
        return;
    }
    free(resp->body);
    resp->body = text;
    resp->body_len = len;
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* ---- events ---- */

static void h_events(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp,
                     const char *const *params)
{
    (void)params;
    if (wg_events_http(gw->events, req, resp) == WA_ENOTFOUND)
        send_error(resp, 404, "not_found", NULL, "no such route");
}

/* ---- dashboard ---- */

static void send_asset(wg_http_resp *resp, const char *name)
{
    size_t i;

    for (i = 0; i < wg_assets_count; i++) {
        if (!strcmp(wg_assets[i].name, name)) {
            wg_http_set_body(resp, 200, wg_assets[i].content_type, wg_assets[i].data,
                             wg_assets[i].len);
            add_header(resp, "Content-Security-Policy",
                       "default-src 'self'; img-src 'self' data: blob:; "
                       "connect-src 'self'; frame-ancestors 'none'");
            add_header(resp, "Cache-Control", "no-cache");
            return;
        }
    }
    send_error(resp, 404, "not_found", NULL, "no such file");
}

static void h_index(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp, const char *const *params)
{
    (void)gw;
    (void)req;
    (void)params;
    send_asset(resp, "index.html");
}

static void h_asset(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp, const char *const *params)
{
    (void)gw;
    (void)req;
    /* index.html is only served at / */
    if (!strcmp(params[0], "index.html")) {
        send_error(resp, 404, "not_found", NULL, "no such file");
        return;
    }
    send_asset(resp, params[0]);
}

/* ---- the table ---- */

#define P WG_ROUTE_PUBLIC
#define PLANNED(m, p)                                                                              \
    {                                                                                              \
        m, p, NULL, WG_ROUTE_PLANNED                                                               \
    }

const wg_route wg_routes[] = {
    {"GET", "/", h_index, P},
    {"GET", "/dashboard/{file}", h_asset, P},
    {"GET", "/health", h_health, P},
    {"GET", "/ready", h_ready, P},
    {"GET", "/metrics", h_metrics, P},
    {"GET", "/api/sessions", h_sessions_list, 0},
    {"POST", "/api/sessions", h_sessions_create, 0},
    {"GET", "/api/sessions/{name}", h_session_get, 0},
    {"DELETE", "/api/sessions/{name}", h_session_delete, 0},
    {"POST", "/api/sessions/{name}/start", h_session_start, 0},
    {"POST", "/api/sessions/{name}/stop", h_session_stop, 0},
    {"POST", "/api/sessions/{name}/logout", h_session_logout, 0},
    {"GET", "/api/sessions/{name}/qr", h_session_qr, 0},
    {"POST", "/api/sessions/{name}/pair-code", h_session_pair_code, 0},
    {"POST", "/api/sessions/{name}/messages", h_send_text, 0},
    {"POST", "/api/sessions/{name}/messages/reaction", h_send_reaction, 0},
    {"POST", "/api/sessions/{name}/messages/edit", h_send_edit, 0},
    {"POST", "/api/sessions/{name}/messages/revoke", h_send_revoke, 0},
    {"POST", "/api/sessions/{name}/messages/location", h_send_location, 0},
    {"POST", "/api/sessions/{name}/messages/contact", h_send_contact, 0},
    {"POST", "/api/sessions/{name}/read", h_read, 0},
    {"POST", "/api/sessions/{name}/presence", h_presence, 0},
    {"POST", "/api/sessions/{name}/contacts/check", h_contacts_check, 0},
    {"POST", "/api/sessions/{name}/groups", h_group_create, 0},
    {"GET", "/api/sessions/{name}/groups/{jid}", h_group_info, 0},
    {"POST", "/api/sessions/{name}/groups/{jid}/participants/add", h_group_add, 0},
    {"POST", "/api/sessions/{name}/groups/{jid}/participants/remove", h_group_remove, 0},
    {"GET", "/api/sessions/{name}/chats", h_chats, 0},
    {"GET", "/api/sessions/{name}/chats/{jid}/messages", h_chat_messages, 0},
    {"GET", "/api/events", h_events, 0},
};
const size_t wg_routes_count = sizeof wg_routes / sizeof wg_routes[0];

#undef P
#undef PLANNED

int wg_route_match(const char *pattern, const char *path, char *buf, size_t bufsize,
                   const char **params, size_t *nparams)
{
    const char *p = pattern, *q = path;
    size_t used = 0, np = 0;

    if (*p != '/' || *q != '/')
        return 0;
    while (*p && *q) {
        size_t pl, ql;
        if (*p != '/' || *q != '/')
            return 0;
        p++;
        q++;
        pl = strcspn(p, "/");
        ql = strcspn(q, "/");
        if (pl >= 2 && p[0] == '{' && p[pl - 1] == '}') {
            if (ql == 0 || np == WG_ROUTE_PARAMS_MAX || used + ql + 1 > bufsize)
                return 0;
            memcpy(buf + used, q, ql);
            buf[used + ql] = '\0';
            params[np++] = buf + used;
            used += ql + 1;
        } else if (pl != ql || memcmp(p, q, pl) != 0) {
            return 0;
        }
        p += pl;
        q += ql;
    }
    if (*p || *q)
        return 0;
    *nparams = np;
    return 1;
}

static const char *method_label(const char *m)
{
    static const char *const known[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"};
    size_t i;

    for (i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(m, known[i]))
            return known[i];
    return "other";
}

static int is_api_path(const char *path)
{
    return !strcmp(path, "/api") || !strncmp(path, "/api/", 5);
}

/* 1 if the request carries the right key; else the 401/403 response is set. The header, or
 * for GET /api/events only (EventSource and WebSocket in a browser cannot send headers) the
 * query parameter api_key. */
static int authorized(wg_gateway *gw, wg_http_req *req, wg_http_resp *resp)
{
    const char *key = wg_http_header(req, "X-Api-Key");

    if ((!key || !*key) && !strcmp(req->method, "GET") && !strcmp(req->path, WG_EVENTS_PATH))
        key = wg_http_query(req, "api_key");
    if (!key || !*key) {
        send_error(resp, 401, "unauthorized", NULL, "missing X-Api-Key header");
        return 0;
    }
    if (!wa_ct_streq(key, gw->api_key)) {
        send_error(resp, 403, "forbidden", NULL, "invalid API key");
        return 0;
    }
    return 1;
}

void wg_api_handle(wg_http_req *req, wg_http_resp *resp, void *user_data)
{
    wg_gateway *gw = user_data;
    uint64_t t0 = uv_hrtime();
    const wg_route *route = NULL;
    const char *params[WG_ROUTE_PARAMS_MAX] = {NULL};
    char pbuf[PARAM_BUF], allow[96] = "";
    size_t i, np = 0;
    int path_matched = 0;

    for (i = 0; i < wg_routes_count; i++) {
        if (!wg_route_match(wg_routes[i].pattern, req->path, pbuf, sizeof pbuf, params, &np))
            continue;
        path_matched = 1;
        if (!strcmp(wg_routes[i].method, req->method)) {
            route = &wg_routes[i];
            break;
        }
        if (strlen(allow) + strlen(wg_routes[i].method) + 3 < sizeof allow) {
            if (allow[0])
                strcat(allow, ", ");
            strcat(allow, wg_routes[i].method);
        }
    }
    add_header(resp, "X-Content-Type-Options", "nosniff");
    if ((is_api_path(req->path) || (route && !(route->flags & WG_ROUTE_PUBLIC))) &&
        !authorized(gw, req, resp)) {
        /* no route information before authentication */
        route = NULL;
    } else if (!route && path_matched) {
        add_header(resp, "Allow", allow);
        send_error(resp, 405, "method_not_allowed", NULL, "%s is not allowed here; use %s",
                   method_label(req->method), allow);
    } else if (!route) {
        send_error(resp, 404, "not_found", NULL, "no such route");
    } else if (gw->shutting_down && !(route->flags & WG_ROUTE_PUBLIC)) {
        send_error(resp, 503, "shutting_down", NULL, "the server is shutting down");
    } else if (route->flags & WG_ROUTE_PLANNED) {
        send_error(resp, 501, "not_implemented", NULL, "%s %s is planned but not implemented yet",
                   route->method, route->pattern);
    } else {
        route->fn(gw, req, resp, params);
    }
    if (!strstr(resp->extra_headers, "Cache-Control:"))
        add_header(resp, "Cache-Control", "no-store");
    {
        double secs = (double)(uv_hrtime() - t0) / 1e9;
        int status = resp->status ? resp->status : 200;
        wg_stats_http(&gw->stats, route ? route->pattern : "unmatched", method_label(req->method),
                      status, secs);
        /* access log at debug level: method, route pattern (not the raw path), status, time */
        wa_log_debug(COMPONENT, "%s %s %d %.3fms", method_label(req->method),
                     route ? route->pattern : "unmatched", status, secs * 1000.0);
    }
}
