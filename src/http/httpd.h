/*
 * httpd.h - a small HTTP server for the daemon and the simulator's control API: libmicrohttpd
 * driven from a libuv loop through its epoll fd (no extra thread), requests buffered up to a
 * body cap and handed to one handler, responses built in memory.
 *
 * Handlers run on the loop thread. A handler fills `resp` and returns; it may instead call
 * wg_http_suspend() and answer later, from any loop callback, with wg_http_resume_with() (for
 * a request that waits on something asynchronous: a pairing code, a long poll).
 * For streaming and protocol upgrades a handler may hand over its own libmicrohttpd response in
 * resp->mhd_response (the daemon runs with MHD_ALLOW_SUSPEND_RESUME and MHD_ALLOW_UPGRADE, so
 * such a response may suspend/resume its connection or take over the socket).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_HTTPD_H
#define WG_HTTPD_H

#include <stddef.h>
#include <uv.h>

#define WG_HTTP_DEFAULT_MAX_BODY (1024 * 1024)

typedef struct wg_httpd wg_httpd;

typedef struct wg_http_req {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* URL path without the query string, percent-decoded by MHD */
    const char *body;   /* request body, NUL-terminated; "" when none */
    size_t body_len;
    void *conn;       /* struct MHD_Connection *, for header and argument look-ups */
    void *ctx;        /* the server's state of this request (wg_http_suspend) */
    wg_httpd *server; /* the server that received the request (for wg_httpd_kick) */
} wg_http_req;

typedef struct wg_http_resp {
    int status;               /* default 200 */
    const char *content_type; /* static string; default "application/json" */
    char *body;               /* heap (malloc), owned by the server after return; may be NULL */
    size_t body_len;
    char extra_headers[512]; /* "Name: value\r\n" lines, optional */
    /* Optional: a ready struct MHD_Response * (streaming from a callback, or a 101 upgrade made
     * with MHD_create_response_for_upgrade) queued with `status` instead of body/content_type;
     * extra_headers are added to it. Ownership passes to the server (destroyed after queueing,
     * also on failure); body, if any, is freed. Used by src/events for SSE and WebSocket. */
    void *mhd_response;
} wg_http_resp;

typedef void (*wg_http_handler_cb)(wg_http_req *req, wg_http_resp *resp, void *user_data);

/* Start listening on host:port (port 0 picks one; see wg_httpd_port). Requests whose body is
 * larger than max_body get 413 without reaching the handler. NULL on failure (errno-like reason
 * logged). */
wg_httpd *wg_httpd_start(uv_loop_t *loop, const char *host, int port, size_t max_body,
                         wg_http_handler_cb handler, void *user_data);
int wg_httpd_port(const wg_httpd *h);
/* Stop accepting, close connections and free. Safe to call once. */
void wg_httpd_stop(wg_httpd *h);

/* Run libmicrohttpd again on the next loop iteration. In external-polling mode a direct
 * MHD_resume_connection() (e.g. of a streaming response's connection) or MHD_upgrade_action()
 * only takes effect at the next MHD_run(): call this after them. Not after wg_httpd_stop. */
void wg_httpd_kick(wg_httpd *h);

/* Request helpers. */
const char *wg_http_header(const wg_http_req *req, const char *name);
const char *wg_http_query(const wg_http_req *req, const char *name);

/*
 * Suspended requests. In a handler, wg_http_suspend(req, cancel, user_data) keeps the request
 * open without an answer: whatever the handler put in resp is discarded, and the connection
 * waits (MHD's connection timeout does not run meanwhile: the caller needs its own deadline).
 * It returns the pending request, or NULL (not called from a handler, or already suspended):
 * then the handler answers normally.
 *
 * wg_http_resume_with(p, resp) answers it: resp's body and headers are taken over (resp->body
 * is owned by the server afterwards, as from a handler). Call it exactly once per pending
 * request, on the loop thread, never from inside cancel.
 *
 * When the server stops (wg_httpd_stop) with requests still suspended, each one's
 * cancel(user_data) is called first (the owner must forget p: it is answered 503 by the
 * server), so that libmicrohttpd never stops with a suspended connection. cancel may be NULL.
 */
typedef struct wg_http_pending wg_http_pending;
wg_http_pending *wg_http_suspend(wg_http_req *req, void (*cancel)(void *user_data),
                                 void *user_data);
void wg_http_resume_with(wg_http_pending *p, wg_http_resp *resp);
/* Requests suspended right now. */
size_t wg_httpd_suspended(const wg_httpd *h);

/* Response helpers: body copied. */
void wg_http_set_body(wg_http_resp *resp, int status, const char *content_type, const void *body,
                      size_t len);
void wg_http_json_error(wg_http_resp *resp, int status, const char *code, const char *message);

#endif
