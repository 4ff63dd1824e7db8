/* harness.h - helpers for the src/events tests: run a libuv loop until a condition or for a
 * while, a webhook receiver on the same loop (wg_httpd) that checks every request's signature
 * and headers and records delivered ids, a listening socket that never answers, temp dirs.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef WG_TEST_EVENTS_HARNESS_H
#define WG_TEST_EVENTS_HARNESS_H

#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "events/events.h"
#include "events/webhook.h"
#include "http/httpd.h"

typedef struct run_ctx {
    int (*cond)(void *);
    void *ud;
    uint64_t deadline;
    int ok;
} run_ctx;

static inline void harness_check(uv_timer_t *t)
{
    run_ctx *c = t->data;

    if (c->cond && c->cond(c->ud)) {
        c->ok = 1;
        uv_stop(t->loop);
    } else if (uv_now(t->loop) >= c->deadline) {
        uv_stop(t->loop);
    }
}

/* Run the loop until cond(ud) holds (1) or timeout_ms passed (0). */
static inline int harness_run_until(uv_loop_t *loop, int (*cond)(void *), void *ud,
                                    unsigned timeout_ms)
{
    uv_timer_t t;
    run_ctx c;

    c.cond = cond;
    c.ud = ud;
    c.ok = 0;
    uv_update_time(loop);
    c.deadline = uv_now(loop) + timeout_ms;
    if (cond && cond(ud))
        return 1;
    uv_timer_init(loop, &t);
    t.data = &c;
    uv_timer_start(&t, harness_check, 5, 5);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_timer_stop(&t);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return c.ok;
}

static inline void harness_run_for(uv_loop_t *loop, unsigned ms)
{
    harness_run_until(loop, NULL, NULL, ms);
}

static inline void harness_on_closed(void *ud)
{
    *(int *)ud = 1;
}

static inline int harness_flag(void *ud)
{
    return *(int *)ud != 0;
}

/* Close the hub and run the loop until it is released. */
static inline void harness_close_events(uv_loop_t *loop, wg_events *ev)
{
    int closed = 0;

    wg_events_close(ev, harness_on_closed, &closed);
    if (!harness_run_until(loop, harness_flag, &closed, 5000))
        fail_msg("wg_events_close did not finish");
}

/* A listening socket on 127.0.0.1 that never accepts: requests to it hang. */
static inline int harness_black_hole(int *port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 16) ||
        getsockname(fd, (struct sockaddr *)&a, &len))
        fail_msg("black hole socket");
    *port = ntohs(a.sin_port);
    return fd;
}

static inline void harness_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];

    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* ---- webhook receiver ---- */

#define RX_MAX 512

typedef struct receiver receiver;
typedef int (*respond_fn)(receiver *r, const char *id, const char *event, unsigned attempt);

struct receiver {
    wg_httpd *h;
    int port;
    const char *secret;
    respond_fn respond;
    int want;  /* receiver_has_n: delivered ids wanted */
    int calls; /* requests */
    int bad;   /* requests with a wrong signature or inconsistent headers */
    int dups;  /* ids delivered (2xx) more than once */
    int n;     /* distinct ids delivered */
    char ids[RX_MAX][WG_EVENT_ID_LEN + 1];
};

static inline int receiver_seen(const receiver *r, const char *id)
{
    int i;

    for (i = 0; i < r->n; i++)
        if (strcmp(r->ids[i], id) == 0)
            return 1;
    return 0;
}

static inline void receiver_handle(wg_http_req *req, wg_http_resp *resp, void *ud)
{
    receiver *r = ud;
    const char *sig = wg_http_header(req, WG_WEBHOOK_HDR_SIGNATURE);
    const char *ts = wg_http_header(req, WG_WEBHOOK_HDR_TIMESTAMP);
    const char *hid = wg_http_header(req, WG_WEBHOOK_HDR_ID);
    const char *hev = wg_http_header(req, WG_WEBHOOK_HDR_EVENT);
    const char *hat = wg_http_header(req, WG_WEBHOOK_HDR_ATTEMPT);
    const char *ct = wg_http_header(req, "Content-Type");
    json_t *body = json_loads(req->body, 0, NULL);
    const char *id = body ? json_string_value(json_object_get(body, "id")) : NULL;
    const char *event = body ? json_string_value(json_object_get(body, "event")) : NULL;
    int status;

    r->calls++;
    if (strcmp(req->method, "POST") != 0 || !sig || !ts || !hid || !hev || !hat || !id || !event ||
        strcmp(hid, id) != 0 || strcmp(hev, event) != 0 || !ct ||
        strcmp(ct, "application/json") != 0 ||
        !wg_webhook_verify(sig, r->secret, strlen(r->secret), ts, req->body, req->body_len)) {
        r->bad++;
        json_decref(body);
        wg_http_set_body(resp, 401, "text/plain", "bad", 3);
        return;
    }
    status = r->respond(r, id, event, (unsigned)atoi(hat));
    if (status >= 200 && status <= 299) {
        if (receiver_seen(r, id))
            r->dups++;
        else if (r->n < RX_MAX)
            memcpy(r->ids[r->n++], id, WG_EVENT_ID_LEN + 1);
    }
    json_decref(body);
    if (status == 429)
        snprintf(resp->extra_headers, sizeof resp->extra_headers, "Retry-After: 0\r\n");
    wg_http_set_body(resp, status, "text/plain", "ok", 2);
}

static inline int receiver_has_n(void *ud)
{
    receiver *r = ud;
    return r->n >= r->want;
}

static inline void receiver_start(receiver *r, uv_loop_t *loop, const char *secret, respond_fn fn)
{
    memset(r, 0, sizeof *r);
    r->secret = secret;
    r->respond = fn;
    r->want = 1;
    r->h = wg_httpd_start(loop, "127.0.0.1", 0, 0, receiver_handle, r);
    if (!r->h)
        fail_msg("receiver did not start");
    r->port = wg_httpd_port(r->h);
}

static inline void receiver_stop(receiver *r, uv_loop_t *loop)
{
    wg_httpd_stop(r->h);
    r->h = NULL;
    uv_run(loop, UV_RUN_NOWAIT);
}

#endif
