/*
 * httpd.c - libmicrohttpd on a libuv loop.
 *
 * MHD runs with MHD_USE_EPOLL and no thread of its own: its epoll fd is watched with uv_poll,
 * and MHD_run() is called when it is readable or when MHD's own timeout expires (uv_timer).
 * Bodies are accumulated per connection up to max_body; past that the request is answered 413
 * without reaching the handler, and the rest of the upload is discarded. A handler may suspend
 * its request (MHD_suspend_connection) and answer later: the answer is held in the request's
 * state and sent when MHD calls the access handler again after MHD_resume_connection.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "http/httpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

struct wg_httpd {
    uv_loop_t *loop;
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    size_t max_body;
    wg_http_handler_cb handler;
    void *user_data;
    int port;
    int closing_handles;
    int stopping;
    struct wg_http_pending *suspended; /* list of suspended requests */
    size_t nsuspended;
};

/* The state of one request (also the handle of a suspended one). */
typedef struct wg_http_pending {
    char *body;
    size_t len, cap;
    int too_big;
    wg_httpd *h;
    struct MHD_Connection *conn;
    int in_handler; /* the handler is running: wg_http_suspend allowed */
    int suspended;  /* waiting for wg_http_resume_with */
    int answered;   /* resumed: `held` is the answer */
    wg_http_resp held;
    void (*cancel)(void *user_data);
    void *cancel_ud;
    struct wg_http_pending *prev, *next; /* in h->suspended */
} req_ctx;

static void schedule(wg_httpd *h);

static void run_mhd(wg_httpd *h)
{
    MHD_run(h->mhd);
    schedule(h);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    run_mhd(p->data);
}

static void on_timer(uv_timer_t *t)
{
    run_mhd(t->data);
}

static void schedule(wg_httpd *h)
{
    MHD_UNSIGNED_LONG_LONG ms;

    if (MHD_get_timeout(h->mhd, &ms) == MHD_YES)
        uv_timer_start(&h->timer, on_timer, ms > 60000 ? 60000 : ms, 0);
    else
        uv_timer_stop(&h->timer);
}

const char *wg_http_header(const wg_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *wg_http_query(const wg_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

void wg_http_set_body(wg_http_resp *resp, int status, const char *content_type, const void *body,
                      size_t len)
{
    free(resp->body);
    resp->body = malloc(len + 1);
    if (resp->body) {
        memcpy(resp->body, body, len);
        resp->body[len] = '\0';
        resp->body_len = len;
    } else {
        resp->body_len = 0;
        status = 500;
    }
    resp->status = status;
    resp->content_type = content_type;
}

static void json_escape(char *out, size_t cap, const char *s)
{
    size_t o = 0;

    for (; *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

void wg_http_json_error(wg_http_resp *resp, int status, const char *code, const char *message)
{
    char c[128], m[512], buf[768];
    int n;

    json_escape(c, sizeof c, code);
    json_escape(m, sizeof m, message);
    n = snprintf(buf, sizeof buf, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", c, m);
    wg_http_set_body(resp, status, "application/json", buf, (size_t)n);
}

static enum MHD_Result send_resp(struct MHD_Connection *conn, wg_http_resp *r)
{
    struct MHD_Response *mr;
    enum MHD_Result ret;
    char *line, *save = NULL;

    if (r->mhd_response) {
        /* the handler's own response (streaming, upgrade): it set its own content type */
        mr = r->mhd_response;
        r->mhd_response = NULL;
        free(r->body);
        r->body = NULL;
    } else {
        mr = MHD_create_response_from_buffer(r->body_len, r->body ? r->body : (char *)"",
                                             r->body ? MHD_RESPMEM_MUST_FREE
                                                     : MHD_RESPMEM_PERSISTENT);
        if (!mr) {
            free(r->body);
            return MHD_NO;
        }
        r->body = NULL;
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                                r->content_type ? r->content_type : "application/json");
    }
    for (line = strtok_r(r->extra_headers, "\r\n", &save); line;
         line = strtok_r(NULL, "\r\n", &save)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        colon++;
        while (*colon == ' ')
            colon++;
        MHD_add_response_header(mr, line, colon);
    }
    ret = MHD_queue_response(conn, (unsigned)(r->status ? r->status : 200), mr);
    MHD_destroy_response(mr);
    return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    wg_httpd *h = cls;
    req_ctx *ctx = *con_cls;
    wg_http_req req;
    wg_http_resp resp;

    (void)version;
    if (!ctx) {
        ctx = calloc(1, sizeof *ctx);
        if (!ctx)
            return MHD_NO;
        ctx->h = h;
        ctx->conn = conn;
        *con_cls = ctx;
        return MHD_YES;
    }
    if (ctx->answered) /* called again after wg_http_resume_with */
        return send_resp(conn, &ctx->held);
    if (ctx->suspended)
        return MHD_YES;
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (ctx->too_big || n > h->max_body - ctx->len) {
            ctx->too_big = 1;
            return MHD_YES;
        }
        if (ctx->len + n + 1 > ctx->cap) {
            size_t ncap = ctx->cap ? ctx->cap : 1024;
            char *p;
            while (ncap < ctx->len + n + 1)
                ncap *= 2;
            p = realloc(ctx->body, ncap);
            if (!p)
                return MHD_NO;
            ctx->body = p;
            ctx->cap = ncap;
        }
        memcpy(ctx->body + ctx->len, upload_data, n);
        ctx->len += n;
        ctx->body[ctx->len] = '\0';
        return MHD_YES;
    }
    memset(&resp, 0, sizeof resp);
    resp.status = 200;
    if (ctx->too_big) {
        wg_http_json_error(&resp, 413, "body_too_large", "request body exceeds the limit");
        return send_resp(conn, &resp);
    }
    req.method = method;
    req.path = url;
    req.body = ctx->body ? ctx->body : "";
    req.body_len = ctx->len;
    req.conn = conn;
    req.ctx = ctx;
    req.server = h;
    ctx->in_handler = 1;
    h->handler(&req, &resp, h->user_data);
    ctx->in_handler = 0;
    if (ctx->suspended || ctx->answered) {
        /* the answer comes (or came) from wg_http_resume_with */
        if (resp.mhd_response)
            MHD_destroy_response(resp.mhd_response);
        free(resp.body);
        if (ctx->answered)
            return send_resp(conn, &ctx->held);
        MHD_suspend_connection(conn);
        return MHD_YES;
    }
    return send_resp(conn, &resp);
}

static void unlink_suspended(req_ctx *ctx)
{
    wg_httpd *h = ctx->h;

    if (ctx->prev)
        ctx->prev->next = ctx->next;
    else
        h->suspended = ctx->next;
    if (ctx->next)
        ctx->next->prev = ctx->prev;
    ctx->prev = ctx->next = NULL;
    h->nsuspended--;
}

wg_http_pending *wg_http_suspend(wg_http_req *req, void (*cancel)(void *user_data), void *user_data)
{
    req_ctx *ctx = req ? req->ctx : NULL;
    wg_httpd *h;

    if (!ctx || !ctx->in_handler || ctx->suspended || ctx->answered || ctx->h->stopping)
        return NULL;
    h = ctx->h;
    ctx->suspended = 1;
    ctx->cancel = cancel;
    ctx->cancel_ud = user_data;
    ctx->prev = NULL;
    ctx->next = h->suspended;
    if (h->suspended)
        h->suspended->prev = ctx;
    h->suspended = ctx;
    h->nsuspended++;
    return ctx;
}

void wg_http_resume_with(wg_http_pending *p, wg_http_resp *resp)
{
    wg_httpd *h;

    if (!p || !p->suspended) {
        if (resp->mhd_response)
            MHD_destroy_response(resp->mhd_response);
        resp->mhd_response = NULL;
        free(resp->body);
        resp->body = NULL;
        return;
    }
    h = p->h;
    unlink_suspended(p);
    p->suspended = 0;
    p->answered = 1;
    p->held = *resp;
    if (!p->held.status)
        p->held.status = 200;
    resp->body = NULL;
    resp->mhd_response = NULL;
    if (p->in_handler)
        return; /* answered before the handler returned: on_access sends it */
    MHD_resume_connection(p->conn);
    /* MHD's ITC wakes the epoll fd too; run it now rather than on the next poll */
    if (!h->stopping)
        uv_timer_start(&h->timer, on_timer, 0, 0);
}

size_t wg_httpd_suspended(const wg_httpd *h)
{
    return h ? h->nsuspended : 0;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req_ctx *ctx = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (ctx) {
        if (ctx->suspended) { /* not expected: wg_httpd_stop resumes every one first */
            unlink_suspended(ctx);
            if (ctx->cancel)
                ctx->cancel(ctx->cancel_ud);
        }
        if (ctx->held.mhd_response)
            MHD_destroy_response(ctx->held.mhd_response);
        free(ctx->held.body);
        free(ctx->body);
        free(ctx);
        *con_cls = NULL;
    }
}

wg_httpd *wg_httpd_start(uv_loop_t *loop, const char *host, int port, size_t max_body,
                         wg_http_handler_cb handler, void *user_data)
{
    wg_httpd *h;
    struct sockaddr_in addr;
    const union MHD_DaemonInfo *info;

    if (uv_ip4_addr(host, port, &addr) != 0)
        return NULL;
    h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->loop = loop;
    h->max_body = max_body ? max_body : WG_HTTP_DEFAULT_MAX_BODY;
    h->handler = handler;
    h->user_data = user_data;
    h->mhd = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE, 0, NULL, NULL,
        on_access, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (!h->mhd) {
        free(h);
        return NULL;
    }
    info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    uv_poll_init(loop, &h->poll, info->epoll_fd);
    h->poll.data = h;
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    uv_poll_start(&h->poll, UV_READABLE, on_poll);
    schedule(h);
    return h;
}

void wg_httpd_kick(wg_httpd *h)
{
    if (h && !h->stopping)
        uv_timer_start(&h->timer, on_timer, 0, 0);
}

int wg_httpd_port(const wg_httpd *h)
{
    return h->port;
}

static void on_handle_closed(uv_handle_t *handle)
{
    wg_httpd *h = handle->data;

    if (--h->closing_handles == 0) {
        /* MHD owns the epoll fd the poll handle watched: stop it only after libuv let go. */
        MHD_stop_daemon(h->mhd);
        free(h);
    }
}

void wg_httpd_stop(wg_httpd *h)
{
    if (!h)
        return;
    h->stopping = 1;
    /* libmicrohttpd must not stop with a suspended connection: answer each one 503 */
    while (h->suspended) {
        req_ctx *ctx = h->suspended;
        wg_http_resp r;
        void (*cancel)(void *) = ctx->cancel;
        ctx->cancel = NULL;
        if (cancel)
            cancel(ctx->cancel_ud);
        if (h->suspended != ctx || !ctx->suspended)
            continue; /* cancel answered it after all */
        memset(&r, 0, sizeof r);
        wg_http_json_error(&r, 503, "shutting_down", "the server is shutting down");
        wg_http_resume_with(ctx, &r);
    }
    MHD_run(h->mhd); /* send those answers if the sockets take them now */
    uv_poll_stop(&h->poll);
    uv_timer_stop(&h->timer);
    h->closing_handles = 2;
    uv_close((uv_handle_t *)&h->poll, on_handle_closed);
    uv_close((uv_handle_t *)&h->timer, on_handle_closed);
}
