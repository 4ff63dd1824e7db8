/*
 * httpd.h - a small HTTP server for the daemon and the simulator's control API: libmicrohttpd
 * driven from a libuv loop through its epoll fd (no extra thread), requests buffered up to a
 * body cap and handed to one handler, responses built in memory.
 *
 * Handlers run on the loop thread. A handler fills `resp` and returns; it may instead call
 * wg_http_suspend() and finish later with wg_http_resume_with().
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
    void *conn; /* struct MHD_Connection *, for header and argument look-ups */
} wg_http_req;

typedef struct wg_http_resp {
    int status;               /* default 200 */
    const char *content_type; /* static string; default "application/json" */
    char *body;               /* heap (malloc), owned by the server after return; may be NULL */
    size_t body_len;
    char extra_headers[512]; /* "Name: value\r\n" lines, optional */
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

/* Request helpers. */
const char *wg_http_header(const wg_http_req *req, const char *name);
const char *wg_http_query(const wg_http_req *req, const char *name);

/* Response helpers: body copied. */
void wg_http_set_body(wg_http_resp *resp, int status, const char *content_type, const void *body,
                      size_t len);
void wg_http_json_error(wg_http_resp *resp, int status, const char *code, const char *message);

#endif
