/*
 * listener.c - wa_listener: accept TCP connections on host:port and hand them out as
 * wa_streams once established (after the TLS handshake when the listener has a server
 * context). Streams still in their handshake sit on a list owned by the listener, so closing
 * the listener can drop them and no stream ever calls back into a freed listener.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "net/net_int.h"
#include "wa/error.h"

/* After an allocation failure, libuv leaves the connection waiting (and stops watching the
 * socket) until it is accepted: retry after this delay. */
#define ACCEPT_RETRY_MS 100

struct wa_listener {
    uv_tcp_t tcp;     /* .data = the listener */
    uv_timer_t retry; /* accept retry after an allocation failure */
    int handles;      /* initialised handles not yet through their close callback */
    wa_listener_opts opts;
    wa_stream *pending; /* accepted, handshake not done; linked by pend_prev/pend_next */
    int closing;
};

static void unlink_pending(wa_listener *l, wa_stream *s)
{
    if (s->pend_prev)
        s->pend_prev->pend_next = s->pend_next;
    else if (l->pending == s)
        l->pending = s->pend_next;
    if (s->pend_next)
        s->pend_next->pend_prev = s->pend_prev;
    s->pend_prev = s->pend_next = NULL;
}

void wa__listener_forget(wa_listener *l, wa_stream *s)
{
    unlink_pending(l, s);
}

void wa__listener_established(wa_listener *l, wa_stream *s)
{
    unlink_pending(l, s);
    l->opts.on_accept(l, s, l->opts.user_data);
}

static void on_retry(uv_timer_t *t);

static void accept_one(wa_listener *l)
{
    wa_stream *s;

    if (l->closing)
        return;
    s = wa__stream_alloc(l->tcp.loop);
    if (!s) {
        wa_log_error(WA__NET_LOG, "accept: out of memory, retrying");
        uv_timer_start(&l->retry, on_retry, ACCEPT_RETRY_MS, 0);
        return;
    }
    if (uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&s->tcp) != 0) {
        s->silent = 1;
        wa__stream_fail(s, WA_EIO);
        return;
    }
    s->listener = l;
    s->pend_next = l->pending;
    if (l->pending)
        l->pending->pend_prev = s;
    l->pending = s;
    wa__stream_start_accepted(s, l->opts.tls, l->opts.timeout_ms, l->opts.write_queue_max);
}

static void on_retry(uv_timer_t *t)
{
    accept_one(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0) {
        wa_log_warn(WA__NET_LOG, "accept: %s", uv_strerror(status));
        return;
    }
    accept_one(server->data);
}

static void on_listener_closed(uv_handle_t *h)
{
    wa_listener *l = h->data;

    if (--l->handles == 0)
        wa_free(l);
}

int wa_listener_start(uv_loop_t *loop, const wa_listener_opts *opts, wa_listener **out)
{
    const char *host;
    struct sockaddr_storage ss;
    wa_listener *l;
    int r;

    if (!loop || !opts || !opts->on_accept)
        return WA_EINVAL;
    if (opts->tls && !wa_tls_ctx_is_server(opts->tls))
        return WA_EINVAL;
    host = opts->host ? opts->host : "0.0.0.0";
    memset(&ss, 0, sizeof ss);
    if (uv_ip4_addr(host, opts->port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, opts->port, (struct sockaddr_in6 *)&ss) != 0)
        return WA_EINVAL;
    l = wa_calloc(1, sizeof *l);
    if (!l)
        return WA_ENOMEM;
    if (uv_tcp_init(loop, &l->tcp) != 0) {
        wa_free(l);
        return WA_EIO;
    }
    uv_timer_init(loop, &l->retry); /* cannot fail */
    l->tcp.data = l;
    l->retry.data = l;
    l->handles = 2;
    l->opts = *opts;
    l->opts.host = NULL; /* not kept */
    r = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&l->tcp, opts->backlog ? opts->backlog : WA_NET_BACKLOG,
                      on_connection);
    if (r) {
        wa_log_error(WA__NET_LOG, "listen on %s:%u: %s", host, (unsigned)opts->port,
                     uv_strerror(r));
        l->closing = 1;
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
        uv_close((uv_handle_t *)&l->retry, on_listener_closed);
        return r == UV_ENOMEM ? WA_ENOMEM : WA_EIO;
    }
    *out = l;
    return 0;
}

int wa_listener_port(const wa_listener *l)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;

    if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len) != 0)
        return WA_EIO;
    if (ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    return WA_EIO;
}

void wa_listener_close(wa_listener *l)
{
    wa_stream *s;

    if (!l || l->closing)
        return;
    l->closing = 1;
    while ((s = l->pending) != NULL) {
        unlink_pending(l, s);
        s->listener = NULL;
        wa__stream_fail(s, WA_ECLOSED);
    }
    uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
    uv_close((uv_handle_t *)&l->retry, on_listener_closed);
}
