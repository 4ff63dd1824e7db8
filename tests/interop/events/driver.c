/* driver.c - drives src/events without the daemon, for events.test.mjs: an event hub on a libuv
 * loop with wg_httpd serving GET /api/events, commanded over stdin, answering on stdout with
 * one JSON object per line.
 *
 * Usage: events_driver DB_PATH   (environment: WEBHOOK_URL, WEBHOOK_SECRET, QUEUE_MAX,
 *        RETRY_BASE_MS, RETRY_CAP_MS, WS_PING_MS, SSE_KEEPALIVE_MS)
 * First line out: {"ready":true,"port":N}. Commands (one per line):
 *   publish SESSION|- EVENT JSON        -> {"published":"ID"}
 *   burst N SESSION|-|* EVENT|* PAD      -> {"burst":["ID",...]} ('*': alternate s1/s2 and
 *                                          message/message.ack; PAD bytes of padding)
 *   webhook SESSION|- URL SECRET [EVENTS] -> {"webhook":true}
 *   stats                               -> {"stats":{...}}
 *   flush MS                            -> {"flushed":true,"pending":N} when done
 *   quit                                -> closes everything, {"bye":true}, exit 0
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "events/events.h"
#include "http/httpd.h"
#include "wa/error.h"

#define LINE_MAX_BYTES (1 << 20)

static uv_loop_t *loop;
static wg_events *ev;
static wg_httpd *http;
static uv_pipe_t in;
static char *line;
static size_t line_len;

static void out_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);

    json_decref(o);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(s);
    }
}

static void handler(wg_http_req *req, wg_http_resp *resp, void *ud)
{
    (void)ud;
    if (wg_events_http(ev, req, resp) == WA_ENOTFOUND)
        wg_http_json_error(resp, 404, "not_found", "no such route");
}

static unsigned env_uint(const char *name, unsigned def)
{
    const char *v = getenv(name);
    return v && *v ? (unsigned)strtoul(v, NULL, 10) : def;
}

static void on_flushed(void *ud)
{
    wg_events_stats st;

    (void)ud;
    wg_events_get_stats(ev, &st);
    out_json(json_pack("{s:b, s:I}", "flushed", 1, "pending", (json_int_t)st.pending));
}

static void on_closed(void *ud)
{
    (void)ud;
    ev = NULL;
    wg_httpd_stop(http);
    http = NULL;
}

static void on_in_closed(uv_handle_t *h)
{
    (void)h;
}

static void quit(void)
{
    if (!ev)
        return;
    uv_read_stop((uv_stream_t *)&in);
    if (!uv_is_closing((uv_handle_t *)&in))
        uv_close((uv_handle_t *)&in, on_in_closed);
    /* the hub first: streams must be closed before the HTTP server stops */
    wg_events_close(ev, on_closed, NULL);
}

static void command(char *cmd)
{
    char *save = NULL, *verb = strtok_r(cmd, " ", &save);

    if (!verb)
        return;
    if (strcmp(verb, "publish") == 0) {
        char *session = strtok_r(NULL, " ", &save), *event = strtok_r(NULL, " ", &save);
        char *payload = save, id[WG_EVENT_ID_LEN + 1];
        json_t *p = payload ? json_loads(payload, 0, NULL) : json_object();
        int rc;
        if (!session || !event) {
            out_json(json_pack("{s:s}", "error", "usage"));
            return;
        }
        rc = wg_events_publish(ev, strcmp(session, "-") ? session : NULL, event, p, id);
        if (rc)
            out_json(json_pack("{s:s}", "error", wa_err_name(rc)));
        else
            out_json(json_pack("{s:s}", "published", id));
    } else if (strcmp(verb, "burst") == 0) {
        char *ns = strtok_r(NULL, " ", &save), *session = strtok_r(NULL, " ", &save);
        char *event = strtok_r(NULL, " ", &save), *pads = strtok_r(NULL, " ", &save);
        unsigned n = ns ? (unsigned)atoi(ns) : 0, i, pad = pads ? (unsigned)atoi(pads) : 0;
        json_t *ids = json_array();
        char *padding = calloc(1, pad + 1);
        if (!session || !event || !padding) {
            free(padding);
            json_decref(ids);
            out_json(json_pack("{s:s}", "error", "usage"));
            return;
        }
        memset(padding, 'x', pad);
        for (i = 0; i < n; i++) {
            char id[WG_EVENT_ID_LEN + 1];
            const char *s = strcmp(session, "*") == 0   ? (i % 2 ? "s2" : "s1")
                            : strcmp(session, "-") == 0 ? NULL
                                                        : session;
            const char *e =
                strcmp(event, "*") == 0 ? ((i / 2) % 2 ? "message.ack" : "message") : event;
            int rc =
                wg_events_publish(ev, s, e, json_pack("{s:i, s:s}", "i", i, "pad", padding), id);
            if (rc) {
                json_array_append_new(ids, json_string(wa_err_name(rc)));
                continue;
            }
            json_array_append_new(ids, json_string(id));
        }
        free(padding);
        out_json(json_pack("{s:o}", "burst", ids));
    } else if (strcmp(verb, "webhook") == 0) {
        char *session = strtok_r(NULL, " ", &save), *url = strtok_r(NULL, " ", &save);
        char *secret = strtok_r(NULL, " ", &save), *events = strtok_r(NULL, " ", &save);
        const char *list[WG_EVENT_FILTER_MAX + 1];
        size_t k = 0;
        char *s2 = NULL, *e;
        int rc;
        for (e = events ? strtok_r(events, ",", &s2) : NULL; e && k < WG_EVENT_FILTER_MAX;
             e = strtok_r(NULL, ",", &s2))
            list[k++] = e;
        list[k] = NULL;
        rc = session && url ? wg_events_set_webhook(ev, strcmp(session, "-") ? session : NULL, url,
                                                    k ? list : NULL, secret)
                            : WA_EINVAL;
        out_json(rc ? json_pack("{s:s}", "error", wa_err_name(rc))
                    : json_pack("{s:b}", "webhook", 1));
    } else if (strcmp(verb, "stats") == 0) {
        wg_events_stats st;
        wg_events_get_stats(ev, &st);
        out_json(json_pack(
            "{s:{s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:i, s:I, s:I}}", "stats", "published",
            (json_int_t)st.published, "attempts", (json_int_t)st.attempts, "delivered",
            (json_int_t)st.delivered, "retried", (json_int_t)st.retried, "failed",
            (json_int_t)st.failed, "pending", (json_int_t)st.pending, "inflight", (int)st.inflight,
            "ws_clients", (int)st.ws_clients, "sse_clients", (int)st.sse_clients, "stream_sent",
            (json_int_t)st.stream_sent, "stream_dropped", (json_int_t)st.stream_dropped));
    } else if (strcmp(verb, "flush") == 0) {
        char *ms = strtok_r(NULL, " ", &save);
        wg_events_flush(ev, ms ? (unsigned)atoi(ms) : 1000, on_flushed, NULL);
    } else if (strcmp(verb, "quit") == 0) {
        quit();
    } else {
        out_json(json_pack("{s:s}", "error", "unknown command"));
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char chunk[65536];

    (void)h;
    (void)suggested;
    buf->base = chunk;
    buf->len = sizeof chunk;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    ssize_t i;

    (void)s;
    if (n < 0) { /* stdin closed: same as quit */
        quit();
        return;
    }
    for (i = 0; i < n; i++) {
        char c = buf->base[i];
        if (c == '\n') {
            line[line_len] = '\0';
            if (ev)
                command(line);
            line_len = 0;
        } else if (line_len + 1 < LINE_MAX_BYTES) {
            line[line_len++] = c;
        }
    }
}

int main(int argc, char **argv)
{
    wg_events_options o;
    const char *url = getenv("WEBHOOK_URL"), *secret = getenv("WEBHOOK_SECRET");
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: %s DB_PATH\n", argv[0]);
        return 2;
    }
    loop = uv_default_loop();
    line = malloc(LINE_MAX_BYTES);
    memset(&o, 0, sizeof o);
    o.db_path = argv[1];
    o.stream_queue_max = env_uint("QUEUE_MAX", 0);
    o.backoff.base_ms = env_uint("RETRY_BASE_MS", 0);
    o.backoff.cap_ms = env_uint("RETRY_CAP_MS", 0);
    o.ws_ping_ms = env_uint("WS_PING_MS", 0);
    o.sse_keepalive_ms = env_uint("SSE_KEEPALIVE_MS", 0);
    rc = wg_events_open(loop, &o, &ev);
    if (rc) {
        fprintf(stderr, "wg_events_open: %s\n", wa_strerror(rc));
        return 1;
    }
    if (url && *url && wg_events_set_webhook(ev, NULL, url, NULL, secret)) {
        fprintf(stderr, "bad WEBHOOK_URL\n");
        return 1;
    }
    http = wg_httpd_start(loop, "127.0.0.1", 0, 0, handler, NULL);
    if (!http) {
        fprintf(stderr, "httpd did not start\n");
        return 1;
    }
    uv_pipe_init(loop, &in, 0);
    uv_pipe_open(&in, 0);
    uv_read_start((uv_stream_t *)&in, on_alloc, on_read);
    out_json(json_pack("{s:b, s:i}", "ready", 1, "port", wg_httpd_port(http)));
    uv_run(loop, UV_RUN_DEFAULT);
    out_json(json_pack("{s:b}", "bye", 1));
    free(line);
    return uv_loop_close(loop) == 0 ? 0 : 3;
}
