/*
 * stream.c - live event streams on GET /api/events: WebSocket (RFC 6455, through
 * libmicrohttpd's upgrade and lib/ws's sans-I/O engine in the server role) and Server-Sent Events
 * (WHATWG HTML "Server-sent events": text/event-stream from a libmicrohttpd content reader that
 * suspends its connection while there is nothing to send).
 *
 * Each client is a wg_sub with a filter and a byte queue capped at stream_queue_max: SSE text
 * ("id: ...\ndata: <envelope>\n\n") or WebSocket frames. A live event that does not fit drops
 * the client (slow consumer) instead of growing memory. A client that gave a last event id
 * (Last-Event-ID, since=) starts in catch-up mode: it reads the outbox page by page after its
 * cursor whenever its queue is less than half full, ignoring live events (they are in the
 * outbox too), and switches to live in the same loop turn as the page that reached the end, so
 * nothing is missed or sent twice.
 *
 * Ownership: an SSE client belongs to its libmicrohttpd response (freed in the reader's free
 * callback, possibly after the hub closed). A WebSocket client belongs to the hub once
 * upgraded (freed in its uv_poll close callback); before that it waits in ev->pending for
 * MHD's upgrade callback.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/util.h"
#include "events/internal.h"
#include "wa/error.h"

#define COMPONENT "stream"

#define SSE_HELLO     ": wagate event stream\nretry: 2000\n\n"
#define SSE_KEEPALIVE ": keepalive\n\n"

/* ---- list helpers ---- */

static void sub_link(wg_sub **head, wg_sub *s)
{
    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
}

static void sub_unlink(wg_sub **head, wg_sub *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else if (*head == s)
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

static void count_add(wg_events *ev, int kind, int d)
{
    if (kind == WG__SUB_WS)
        ev->stats.ws_clients = (unsigned)((int)ev->stats.ws_clients + d);
    else
        ev->stats.sse_clients = (unsigned)((int)ev->stats.sse_clients + d);
}

unsigned wg__stream_count(const wg_events *ev, int kind)
{
    return kind == WG__SUB_WS ? ev->stats.ws_clients : ev->stats.sse_clients;
}

static unsigned pending_count(const wg_events *ev)
{
    unsigned n = 0;
    const wg_sub *s;

    for (s = ev->pending; s; s = s->next)
        n++;
    return n;
}

static wg_sub *sub_new(wg_events *ev, int kind, const wg_event_filter *f, const char *since)
{
    wg_sub *s = wa_calloc(1, sizeof *s);
    uint64_t now = (uint64_t)wg__now_ms();

    if (!s)
        return NULL;
    s->ev = ev;
    s->kind = kind;
    s->filter = *f;
    s->q_limit = ev->opts.stream_queue_max;
    /* room past the event limit for control frames, the close frame and the engine's output */
    wa_buf_init(&s->q, s->q_limit + WA_WS_OUTPUT_MAX + 256);
    s->fd = -1;
    s->created_ms = s->last_ping_ms = s->last_rx_ms = now;
    if (since && since[0]) {
        memcpy(s->cursor, since, WG_EVENT_ID_LEN + 1);
        s->catching_up = 1;
    }
    return s;
}

static void sub_free(wg_sub *s)
{
    wa_buf_cleanup(&s->q);
    wa_ws_cleanup(&s->ws);
    wa_free(s);
}

/* ---- queueing ---- */

/* Queue one event. 0, WA_ELIMIT (no room now), WA_EINVAL (can never fit this client's queue),
 * WA_ENOMEM. */
static int sub_append(wg_sub *s, const char *id, const char *body, size_t len)
{
    size_t need;
    int rc;

    if (s->kind == WG__SUB_SSE)
        need = 4 + WG_EVENT_ID_LEN + 7 + len + 2; /* "id: " id "\ndata: " body "\n\n" */
    else
        need = WA_WS_FRAME_HEADER_MAX + len;
    if (need > s->q_limit)
        return WA_EINVAL;
    if (s->q.len + need > s->q_limit)
        return WA_ELIMIT;
    if (s->kind == WG__SUB_SSE) {
        rc = wa_buf_reserve(&s->q, need);
        if (rc)
            return rc;
        /* compact JSON has no raw newline: one data line per event */
        wa_buf_append(&s->q, "id: ", 4);
        wa_buf_append(&s->q, id, WG_EVENT_ID_LEN);
        wa_buf_append(&s->q, "\ndata: ", 7);
        wa_buf_append(&s->q, body, len);
        wa_buf_append(&s->q, "\n\n", 2);
    } else {
        rc = wa_ws_send(&s->ws, WA_WS_OP_TEXT, body, len, &s->q);
        if (rc)
            return rc;
    }
    if (s->ev)
        s->ev->stats.stream_sent++;
    return 0;
}

typedef struct replay_ctx {
    wg_sub *s;
    int full;
} replay_ctx;

static int on_replay_row(const char *id, const char *session, const char *event, const char *body,
                         size_t len, void *ud)
{
    replay_ctx *c = ud;
    wg_sub *s = c->s;
    int rc;

    if (wg_event_filter_match(&s->filter, session, event)) {
        rc = sub_append(s, id, body, len);
        if (rc == WA_ELIMIT || rc == WA_ENOMEM) {
            c->full = 1;
            return 1; /* cursor stays before this row */
        }
        if (rc == WA_EINVAL)
            wa_log_warn(COMPONENT, "event %s is larger than a stream queue: skipped", id);
    }
    memcpy(s->cursor, id, WG_EVENT_ID_LEN + 1);
    return 0;
}

/* Catch-up: read the outbox after the cursor while the queue is less than half full. */
static void sub_fill(wg_sub *s)
{
    wg_events *ev = s->ev;

    while (ev && s->catching_up && !s->ended && s->q.len < s->q_limit / 2) {
        replay_ctx c = {s, 0};
        size_t nread = 0;
        int rc = wg_outbox_replay(ev->ob, s->cursor, WG__REPLAY_PAGE, on_replay_row, &c, &nread);
        if (rc < 0) {
            wa_log_error(COMPONENT, "replay failed: %s", wa_strerror(rc));
            s->catching_up = 0;
            s->ended = 1;
            break;
        }
        if (c.full)
            break;
        if (nread < WG__REPLAY_PAGE)
            s->catching_up = 0; /* reached the newest event: live from now on */
    }
}

/* ---- SSE ---- */

static void sse_wake(wg_sub *s)
{
    if (s->suspended && s->conn) {
        s->suspended = 0;
        MHD_resume_connection(s->conn);
        /* external polling: the resume takes effect at the next MHD_run */
        wg_httpd_kick(s->server);
    }
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    wg_sub *s = cls;
    size_t n;

    (void)pos;
    if (s->q.len == 0 && s->catching_up)
        sub_fill(s);
    if (s->q.len == 0) {
        if (s->ended || !s->ev)
            return MHD_CONTENT_READER_END_OF_STREAM;
        s->suspended = 1;
        MHD_suspend_connection(s->conn);
        return 0;
    }
    n = s->q.len < max ? s->q.len : max;
    memcpy(buf, s->q.data, n);
    wa_buf_consume(&s->q, n);
    wa_buf_release_idle(&s->q);
    return (ssize_t)n;
}

static void sse_free(void *cls)
{
    wg_sub *s = cls;

    if (s->ev) {
        sub_unlink(&s->ev->subs, s);
        count_add(s->ev, WG__SUB_SSE, -1);
    }
    sub_free(s);
}

static void sse_drop(wg_sub *s)
{
    s->dropped = 1;
    s->ended = 1;
    wa_buf_reset(&s->q);
    if (s->ev)
        s->ev->stats.stream_dropped++;
    sse_wake(s);
}

/* ---- WebSocket ---- */

static void on_ws_io(uv_poll_t *p, int status, int events);

static void on_ws_closed(uv_handle_t *h)
{
    wg_sub *s = h->data;
    wg_events *ev = s->ev;

    sub_free(s);
    if (ev)
        wg__handle_released(ev);
}

static void ws_destroy(wg_sub *s)
{
    wg_events *ev = s->ev;

    sub_unlink(&ev->subs, s);
    count_add(ev, WG__SUB_WS, -1);
    uv_poll_stop(&s->poll);
    /* hand the socket back to libmicrohttpd now: it may be stopped right after this turn */
    MHD_upgrade_action(s->urh, MHD_UPGRADE_ACTION_CLOSE);
    s->urh = NULL;
    wg_httpd_kick(s->server); /* MHD releases the connection at its next run */
    uv_close((uv_handle_t *)&s->poll, on_ws_closed);
}

static void ws_update_poll(wg_sub *s)
{
    int want = UV_READABLE | (s->q.len ? UV_WRITABLE : 0);

    if (want != s->poll_events) {
        uv_poll_start(&s->poll, want, on_ws_io);
        s->poll_events = want;
    }
}

static void ws_start_close(wg_sub *s, int code, const char *reason)
{
    if (s->ended)
        return;
    s->ended = 1;
    s->close_deadline_ms = (uint64_t)wg__now_ms() + WG__WS_CLOSE_GRACE_MS;
    if (wa_ws_state(&s->ws) == WA_WS_ST_OPEN)
        wa_ws_close(&s->ws, code, reason, &s->q);
}

/* Send what the socket takes. 1 if the client was destroyed. */
static int ws_write(wg_sub *s)
{
    for (;;) {
        ssize_t n;
        if (s->q.len == 0 && s->catching_up)
            sub_fill(s);
        if (s->q.len == 0)
            break;
        n = send(s->fd, s->q.data, s->q.len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return 0;
            ws_destroy(s);
            return 1;
        }
        wa_buf_consume(&s->q, (size_t)n);
    }
    wa_buf_release_idle(&s->q);
    if (wa_ws_state(&s->ws) == WA_WS_ST_CLOSED) { /* close handshake done (or error sent) */
        ws_destroy(s);
        return 1;
    }
    return 0;
}

/* Read and process. 1 if the client was destroyed. */
static int ws_read(wg_sub *s)
{
    uint8_t buf[WG__WS_READ_CHUNK];
    ssize_t n;
    wa_ws_event ev;
    int rc;

    n = recv(s->fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        ws_destroy(s);
        return 1;
    }
    if (n < 0)
        return 0;
    s->last_rx_ms = (uint64_t)wg__now_ms();
    rc = wa_ws_feed(&s->ws, buf, (size_t)n);
    while (rc == 0 && (rc = wa_ws_next_event(&s->ws, &ev)) == 0) {
        /* pings are answered by the engine; client messages are ignored */
        if (ev.type == WA_WS_EV_CLOSE)
            s->ended = 1;
    }
    if (rc != WA_EAGAIN && rc != 0) {
        /* protocol error (the engine queued its close frame) or closed */
        if (!s->ended) {
            s->ended = 1;
            s->close_deadline_ms = (uint64_t)wg__now_ms() + WG__WS_CLOSE_GRACE_MS;
        }
    }
    if (wa_ws_pending_output(&s->ws) && wa_ws_take_output(&s->ws, &s->q)) {
        ws_destroy(s);
        return 1;
    }
    return 0;
}

static void on_ws_io(uv_poll_t *p, int status, int events)
{
    wg_sub *s = p->data;

    if (status < 0) {
        ws_destroy(s);
        return;
    }
    if ((events & UV_READABLE) && ws_read(s))
        return;
    if (ws_write(s))
        return;
    ws_update_poll(s);
}

static void ws_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock,
                        struct MHD_UpgradeResponseHandle *urh)
{
    wg_sub *s = cls;
    wg_events *ev = s->ev;
    int flags;

    (void)conn;
    (void)con_cls;
    if (ev)
        sub_unlink(&ev->pending, s);
    if (!ev || ev->closing) {
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        if (ev)
            wg_httpd_kick(s->server);
        sub_free(s);
        return;
    }
    s->urh = urh;
    s->fd = sock;
    flags = fcntl(sock, F_GETFL, 0);
    if (flags >= 0)
        fcntl(sock, F_SETFL, flags | O_NONBLOCK);
    if (wa_ws_init_open(&s->ws, WA_WS_SERVER, WG__WS_MAX_IN) ||
        uv_poll_init_socket(ev->loop, &s->poll, sock) != 0) {
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        wg_httpd_kick(s->server);
        sub_free(s);
        return;
    }
    ev->open_handles++;
    s->poll.data = s;
    s->upgraded = 1;
    sub_link(&ev->subs, s);
    count_add(ev, WG__SUB_WS, 1);
    if (extra_in_size) {
        int rc = wa_ws_feed(&s->ws, (const uint8_t *)extra_in, extra_in_size);
        wa_ws_event wev;
        while (rc == 0 && (rc = wa_ws_next_event(&s->ws, &wev)) == 0)
            if (wev.type == WA_WS_EV_CLOSE)
                s->ended = 1;
        if (wa_ws_pending_output(&s->ws))
            wa_ws_take_output(&s->ws, &s->q);
    }
    sub_fill(s);
    ws_update_poll(s);
}

/* ---- publish and timers ---- */

void wg__stream_publish(wg_events *ev, const wg_envelope *env)
{
    wg_sub *s, *next;

    for (s = ev->subs; s; s = next) {
        int rc;
        next = s->next;
        if (s->ended || s->catching_up ||
            !wg_event_filter_match(&s->filter, env->session[0] ? env->session : NULL, env->event))
            continue;
        rc = sub_append(s, env->id, env->json, env->json_len);
        if (rc == WA_EINVAL) {
            wa_log_warn(COMPONENT, "event %s is larger than a stream queue: skipped", env->id);
            continue;
        }
        if (rc) {
            wa_log_info(COMPONENT, "%s client dropped: queue full (slow consumer)",
                        s->kind == WG__SUB_WS ? "WebSocket" : "SSE");
            if (s->kind == WG__SUB_SSE) {
                sse_drop(s);
            } else {
                ev->stats.stream_dropped++;
                s->dropped = 1;
                ws_start_close(s, WA_WS_CLOSE_POLICY, "slow consumer");
                ws_update_poll(s);
            }
            continue;
        }
        if (s->kind == WG__SUB_SSE)
            sse_wake(s);
        else
            ws_update_poll(s);
    }
}

static void on_tick(uv_timer_t *t)
{
    wg_events *ev = t->data;
    uint64_t now = (uint64_t)wg__now_ms();
    wg_sub *s, *next;

    for (s = ev->subs; s; s = next) {
        next = s->next;
        if (s->kind == WG__SUB_SSE) {
            if (s->ended || now - s->last_ping_ms < ev->opts.sse_keepalive_ms)
                continue;
            s->last_ping_ms = now;
            /* also how a client that went away is noticed: the write fails */
            if (s->q.len + sizeof SSE_KEEPALIVE > s->q_limit) {
                sse_drop(s);
                continue;
            }
            wa_buf_append(&s->q, SSE_KEEPALIVE, sizeof SSE_KEEPALIVE - 1);
            sse_wake(s);
            continue;
        }
        if (s->ended) {
            if (now >= s->close_deadline_ms)
                ws_destroy(s);
            continue;
        }
        if (now - s->last_rx_ms > 2ull * ev->opts.ws_ping_ms) {
            wa_log_info(COMPONENT, "WebSocket client silent for %llu ms: dropped",
                        (unsigned long long)(now - s->last_rx_ms));
            ws_destroy(s);
            continue;
        }
        if (now - s->last_ping_ms >= ev->opts.ws_ping_ms) {
            s->last_ping_ms = now;
            wa_ws_send(&s->ws, WA_WS_OP_PING, "wagate", 6, &s->q);
            ws_update_poll(s);
        }
    }
    /* upgrades that libmicrohttpd never completed (the client left before the 101 was sent);
     * WG__UPGRADE_WAIT_MS is longer than the server's connection timeout */
    for (s = ev->pending; s; s = next) {
        next = s->next;
        if (now - s->created_ms > WG__UPGRADE_WAIT_MS) {
            sub_unlink(&ev->pending, s);
            sub_free(s);
        }
    }
}

void wg__stream_init(wg_events *ev)
{
    unsigned tick = 1000;

    if (ev->opts.ws_ping_ms < tick)
        tick = ev->opts.ws_ping_ms;
    if (ev->opts.sse_keepalive_ms < tick)
        tick = ev->opts.sse_keepalive_ms;
    uv_timer_init(ev->loop, &ev->tick_timer);
    ev->tick_timer.data = ev;
    ev->open_handles++;
    uv_timer_start(&ev->tick_timer, on_tick, tick, tick);
    uv_unref((uv_handle_t *)&ev->tick_timer);
}

void wg__stream_shutdown(wg_events *ev)
{
    wg_sub *s;

    while ((s = ev->subs)) {
        if (s->kind == WG__SUB_SSE) {
            /* the response outlives the hub: detach, end after what is queued */
            sub_unlink(&ev->subs, s);
            count_add(ev, WG__SUB_SSE, -1);
            s->ev = NULL;
            s->ended = 1;
            s->catching_up = 0;
            sse_wake(s);
        } else {
            ws_start_close(s, WA_WS_CLOSE_GOING_AWAY, "server shutting down");
            if (s->q.len) /* best effort, without waiting */
                (void)!send(s->fd, s->q.data, s->q.len, MSG_NOSIGNAL | MSG_DONTWAIT);
            ws_destroy(s);
        }
    }
    while ((s = ev->pending)) {
        /* MHD may still call ws_upgraded: it closes and frees an orphan */
        sub_unlink(&ev->pending, s);
        s->ev = NULL;
    }
    wg__handle_close(ev, (uv_handle_t *)&ev->tick_timer);
}

/* ---- the HTTP entry ---- */

/* 1 if the comma-separated header value contains token (case-insensitive). */
static int header_has_token(const char *value, const char *token)
{
    size_t tl = strlen(token);
    const char *p = value;

    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        /* media types may carry parameters: "text/event-stream;q=1" */
        {
            const char *semi = memchr(p, ';', n);
            size_t m = semi ? (size_t)(semi - p) : n;
            while (m && (p[m - 1] == ' ' || p[m - 1] == '\t'))
                m--;
            if (m == tl && strncasecmp(p, token, tl) == 0)
                return 1;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

/* 400 in the API's error shape: {"error":{"code":"invalid_field","message","field"}}. */
static int bad_request(wg_http_resp *resp, const char *field, const char *why, const char *item)
{
    char msg[256];
    json_t *o;
    char *text;

    snprintf(msg, sizeof msg, "%s: %s%s%.64s%s", field, why, item ? " '" : "", item ? item : "",
             item ? "'" : "");
    o = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "invalid_field", "message", msg, "field",
                  field);
    text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text)
        wg_http_set_body(resp, 400, "application/json", text, strlen(text));
    else
        wg_http_json_error(resp, 400, "invalid_field", msg);
    free(text);
    return 0;
}

static int start_sse(wg_events *ev, wg_sub *s, wg_http_resp *resp)
{
    struct MHD_Response *mr;

    if (wa_buf_append(&s->q, SSE_HELLO, sizeof SSE_HELLO - 1))
        return WA_ENOMEM;
    mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, WG__SSE_BLOCK, sse_read, s, sse_free);
    if (!mr)
        return WA_ENOMEM;
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(mr, "X-Accel-Buffering", "no");
    sub_link(&ev->subs, s);
    count_add(ev, WG__SUB_SSE, 1);
    resp->status = 200;
    resp->mhd_response = mr;
    return 0;
}

static int start_ws(wg_events *ev, wg_sub *s, wg_http_req *req, wg_http_resp *resp)
{
    struct MHD_Response *mr;
    const char *key = wg_http_header(req, "Sec-WebSocket-Key");
    char accept[WA_WS_ACCEPT_LEN + 1];
    uint8_t raw[32];
    size_t rawlen = 0;

    (void)ev;
    if (!key || wa_base64_decode(raw, sizeof raw, &rawlen, key, strlen(key)) || rawlen != 16 ||
        wa_ws_accept_key(accept, key, strlen(key)))
        return WA_EINVAL;
    mr = MHD_create_response_for_upgrade(ws_upgraded, s);
    if (!mr)
        return WA_ENOMEM;
    MHD_add_response_header(mr, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(mr, "Sec-WebSocket-Accept", accept);
    resp->status = 101;
    resp->mhd_response = mr;
    sub_link(&ev->pending, s);
    return 0;
}

int wg__stream_http(wg_events *ev, wg_http_req *req, wg_http_resp *resp)
{
    wg_event_filter f;
    const char *since, *upgrade, *accept, *conn;
    char bad[WG_EVENT_SESSION_MAX + 1];
    wg_sub *s;
    int ws, rc;

    if (strcmp(req->method, "GET") != 0) {
        wg_http_json_error(resp, 405, "method_not_allowed", "use GET");
        snprintf(resp->extra_headers, sizeof resp->extra_headers, "Allow: GET\r\n");
        return 0;
    }
    wg_event_filter_init(&f);
    bad[0] = '\0';
    rc = wg_event_filter_parse(&f, wg_http_query(req, "session"), NULL, bad, sizeof bad);
    if (rc)
        return bad_request(resp, "session", rc == WA_ELIMIT ? "too many sessions" : "bad name",
                           bad);
    rc = wg_event_filter_parse(&f, NULL, wg_http_query(req, "events"), bad, sizeof bad);
    if (rc)
        return bad_request(resp, "events", rc == WA_ELIMIT ? "too many names" : "unknown event",
                           bad);
    since = wg_http_query(req, "since");
    if (since && since[0]) {
        if (!wg_event_id_valid(since))
            return bad_request(resp, "since", "not an event id", NULL);
    } else {
        since = wg_http_header(req, "Last-Event-ID");
        if (since && since[0] && !wg_event_id_valid(since))
            return bad_request(resp, "Last-Event-ID", "not an event id", NULL);
    }
    upgrade = wg_http_header(req, "Upgrade");
    accept = wg_http_header(req, "Accept");
    ws = upgrade && header_has_token(upgrade, "websocket");
    if (ws) {
        const char *version = wg_http_header(req, "Sec-WebSocket-Version");
        conn = wg_http_header(req, "Connection");
        if (!conn || !header_has_token(conn, "upgrade"))
            return bad_request(resp, "Connection", "must contain 'upgrade'", NULL);
        if (!version || strcmp(version, "13") != 0) {
            wg_http_json_error(resp, 426, "upgrade_required", "Sec-WebSocket-Version: 13 only");
            snprintf(resp->extra_headers, sizeof resp->extra_headers,
                     "Sec-WebSocket-Version: 13\r\n");
            return 0;
        }
    } else if (!accept || !header_has_token(accept, "text/event-stream")) {
        wg_http_json_error(resp, 406, "not_acceptable",
                           "GET /api/events needs a WebSocket upgrade or Accept: "
                           "text/event-stream");
        return 0;
    }
    if (ev->stats.ws_clients + ev->stats.sse_clients + pending_count(ev) >= ev->opts.max_streams) {
        wg_http_json_error(resp, 503, "too_many_streams", "event stream limit reached");
        snprintf(resp->extra_headers, sizeof resp->extra_headers, "Retry-After: 5\r\n");
        return 0;
    }
    s = sub_new(ev, ws ? WG__SUB_WS : WG__SUB_SSE, &f, since && since[0] ? since : NULL);
    if (!s) {
        wg_http_json_error(resp, 500, "internal", "out of memory");
        return 0;
    }
    s->server = req->server;
    if (ws) {
        rc = start_ws(ev, s, req, resp);
        if (rc == WA_EINVAL) {
            sub_free(s);
            return bad_request(resp, "Sec-WebSocket-Key", "missing or malformed", NULL);
        }
    } else {
        s->conn = req->conn;
        rc = start_sse(ev, s, resp);
    }
    if (rc) {
        sub_free(s);
        wg_http_json_error(resp, 500, "internal", "out of memory");
    }
    return 0;
}
