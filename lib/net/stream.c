/*
 * stream.c - wa_stream: a libuv TCP connection, optionally TLS, with a capped write queue.
 *
 * Design notes
 *
 * - Close protocol (libuv's rule: memory of a handle may only be freed in its close callback).
 *   A stream owns two handles (tcp, timer) and, while resolving, one uv_getaddrinfo request
 *   that is not tied to a handle. Closing sets `closing`, closes the handles and cancels the
 *   request; every libuv callback that arrives for a closing stream only does bookkeeping, and
 *   the last one (handles == 0, no request pending) calls on_close and frees. So a stream closed
 *   from inside any callback stays valid until that callback returns, and our own code checks
 *   `closing` after every user callback it makes.
 *
 * - Addresses: uv_getaddrinfo (thread pool, never blocks the loop; IP literals too, so every
 *   path is asynchronous and no callback runs inside wa_stream_connect). Each address is tried
 *   in order; after a failed attempt the tcp handle is closed and re-initialised, because its
 *   socket is bound to the failed address family.
 *
 * - Connection steps: resolve -> connect -> tunnel_start() -> transport_up() -> TLS
 *   handshake -> established(). With a proxy (opts.proxy) the resolve and connect steps are
 *   for the proxy, and tunnel_start() runs the sans-I/O handshake of net/proxy.h in state
 *   WA__ST_TUNNEL: it sends the engine's requests, read_cb feeds it the proxy's replies, and
 *   when the tunnel is up any bytes after the proxy's last reply go on to TLS (or on_data).
 *   For socks5:// (local resolution) the target name is resolved first, with the same
 *   uv_getaddrinfo request, and its first IPv4 address (else IPv6) is sent to the proxy:
 *   IPv4 first because the proxy's own connectivity is unknown to us.
 *   The proxy state lives in the dial and is freed (wiped: it held credentials) with it;
 *   wa_stream_last_error takes the proxy's error text from there until on_close returns.
 *
 * - Memory: reads land in one WA_NET_READ_SLAB buffer per thread (libuv calls alloc_cb and
 *   read_cb back to back for one stream, and one loop runs per thread). TLS ciphertext is
 *   copied into the engine and the slab is then reused for the decrypted plaintext. Writes first
 *   try uv_try_write; only what the kernel does not take is kept in a write request, so an
 *   idle stream holds no buffer at all.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/util.h"
#include "net/net_int.h"
#include "net/proxy.h"
#include "wa/error.h"

/* Connecting through a proxy (only then allocated). */
struct dial_proxy {
    wa_proxy_url url;                 /* parsed opts.proxy; wiped once the tunnel engine has it */
    wa_proxy_tunnel tun;              /* the handshake (WA__ST_TUNNEL) */
    uint16_t target_port;             /* the real destination */
    unsigned resolving_target : 1;    /* socks5://: the gai in flight is the target's */
    char target[WA_NET_MAX_HOST + 1]; /* name, or the address resolved for socks5:// */
    char text[WA_PROXY_MAX_ERROR + WA_NET_MAX_HOST]; /* wa_stream_last_error while connecting */
};

struct wa__dial {
    uv_getaddrinfo_t gai;
    uv_connect_t conn;
    struct addrinfo *ai_head; /* from uv_getaddrinfo, freed with the dial */
    struct addrinfo *ai_next; /* next address to try */
    struct dial_proxy *px;    /* NULL for a direct connection */
    int last_err;             /* last libuv error of a connect attempt */
    char port[8];
    char host[WA_NET_MAX_HOST + 1]; /* being resolved / connected to (the proxy's, if any) */
};

/* A write the kernel did not take at once. */
struct wreq {
    uv_write_t req;
    wa_stream *s;
    size_t len;
    uint8_t *owned; /* heap buffer to free, or NULL when the bytes are in data[] */
    uint8_t data[];
};

static _Thread_local uint8_t read_slab[WA_NET_READ_SLAB];

static void try_next(wa_stream *s);
static void transport_ready(wa_stream *s);
static int start_resolve(wa_stream *s, const char *host, uint16_t port);
static void tunnel_read(wa_stream *s, const uint8_t *data, size_t n);

/* ---- teardown ---- */

static void dial_free(wa_stream *s)
{
    if (!s->dial)
        return;
    if (s->dial->ai_head)
        uv_freeaddrinfo(s->dial->ai_head);
    if (s->dial->px) {
        wa_proxy_tunnel_cleanup(&s->dial->px->tun);
        wa_wipe(s->dial->px, sizeof *s->dial->px);
        wa_free(s->dial->px);
    }
    wa_free(s->dial);
    s->dial = NULL;
}

static void maybe_free(wa_stream *s)
{
    if (!s->closing || s->handles > 0 || s->gai_pending)
        return;
    if (!s->silent && s->cbs.on_close)
        s->cbs.on_close(s, s->reason, s->user_data);
    dial_free(s);
    wa_tls_free(s->tls);
    wa_free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
    wa_stream *s = h->data;

    s->handles--;
    if (h == (uv_handle_t *)&s->tcp && s->redialing && !s->closing) {
        /* a failed connect attempt: a fresh handle for the next address */
        s->redialing = 0;
        if (uv_tcp_init(s->loop, &s->tcp) == 0) {
            s->tcp.data = s;
            s->handles++;
            try_next(s);
            return;
        }
        s->closing = 1; /* tcp is closed already; only the timer is left */
        s->reason = WA_EIO;
        if (!s->silent && !s->accepted && s->cbs.on_connect)
            s->cbs.on_connect(s, WA_EIO, s->user_data);
        if (!uv_is_closing((uv_handle_t *)&s->timer))
            uv_close((uv_handle_t *)&s->timer, on_handle_closed);
    }
    maybe_free(s);
}

static void close_handles(wa_stream *s)
{
    if (s->listener) {
        wa__listener_forget(s->listener, s);
        s->listener = NULL;
    }
    if (s->gai_pending)
        uv_cancel((uv_req_t *)&s->dial->gai); /* its callback still comes, maybe ECANCELED */
    if (!s->redialing && !uv_is_closing((uv_handle_t *)&s->tcp))
        uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&s->timer))
        uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

static void proxy_text(wa_stream *s, const char *fmt, ...) WA__PRINTF(2, 3);

/* Set the proxy error text (first one wins). */
static void proxy_text(wa_stream *s, const char *fmt, ...)
{
    struct dial_proxy *px = s->dial ? s->dial->px : NULL;
    va_list ap;

    if (!px || px->text[0])
        return;
    va_start(ap, fmt);
    vsnprintf(px->text, sizeof px->text, fmt, ap);
    va_end(ap);
}

/* Say which step of a proxied connection failed (the codes alone do not tell whether the
 * proxy or the target was unreachable). Host names only: the URL is never repeated. */
static void proxy_explain(wa_stream *s, int reason)
{
    struct wa__dial *d = s->dial;

    if (!d || !d->px)
        return;
    switch (s->state) {
    case WA__ST_RESOLVING:
        if (d->px->resolving_target)
            proxy_text(s, "cannot resolve %s (for the SOCKS5 proxy): %s", d->host,
                       wa_strerror(reason));
        else
            proxy_text(s, "cannot resolve proxy host %s: %s", d->host, wa_strerror(reason));
        break;
    case WA__ST_CONNECTING:
        proxy_text(s, "cannot connect to proxy %s:%s: %s", d->host, d->port, wa_strerror(reason));
        break;
    case WA__ST_TUNNEL:
        if (reason == WA_ETIMEDOUT)
            proxy_text(s, "timed out in the proxy handshake");
        else
            proxy_text(s, "proxy handshake failed: %s", wa_strerror(reason));
        break;
    default: /* the TLS handshake after the tunnel has its own text */
        break;
    }
}

void wa__stream_fail(wa_stream *s, int reason)
{
    if (s->closing)
        return;
    s->closing = 1;
    s->reason = reason;
    proxy_explain(s, reason);
    wa_log_debug(WA__NET_LOG, "stream %p closing: %s", (void *)s, wa_stream_last_error(s));
    if (!s->silent && !s->accepted && s->state != WA__ST_OPEN && s->cbs.on_connect)
        s->cbs.on_connect(s, reason, s->user_data);
    close_handles(s);
}

static int map_uv_error(int r)
{
    switch (r) {
    case 0:
        return WA_EDNS; /* no usable address */
    case UV_ECONNREFUSED:
        return WA_ECONNREFUSED;
    case UV_ETIMEDOUT:
        return WA_ETIMEDOUT;
    case UV_ENOMEM:
        return WA_ENOMEM;
    default:
        return WA_EIO;
    }
}

/* ---- writing ---- */

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    wa_stream *s = w->s;

    s->queued -= w->len;
    if (!w->owned)
        wa_wipe(w->data, w->len); /* may be a proxy request with credentials */
    wa_free(w->owned);
    wa_free(w);
    if (s->closing)
        return;
    if (status < 0) {
        wa__stream_fail(s, WA_EIO);
        return;
    }
    if (s->queued == 0 && s->want_drain) {
        s->want_drain = 0;
        if (s->cbs.on_drain)
            s->cbs.on_drain(s, s->user_data);
    }
}

/* Send n bytes at p. `owned` is a heap block holding them that this function takes over, or
 * NULL to copy what the kernel does not take at once. On failure the stream is failed. */
static int send_bytes(wa_stream *s, const uint8_t *p, size_t n, uint8_t *owned)
{
    struct wreq *w;
    uv_buf_t b;
    int r;

    if (s->queued == 0 && uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp) == 0) {
        b = uv_buf_init((char *)p, (unsigned)n);
        r = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
        if (r >= 0) {
            p += r;
            n -= (size_t)r;
        } else if (r != UV_EAGAIN) {
            wa_free(owned);
            wa__stream_fail(s, WA_EIO);
            return WA_EIO;
        }
    }
    if (n == 0) {
        wa_free(owned);
        return 0;
    }
    w = wa_malloc(sizeof *w + (owned ? 0 : n));
    if (!w) {
        wa_free(owned);
        wa__stream_fail(s, WA_ENOMEM);
        return WA_ENOMEM;
    }
    w->s = s;
    w->len = n;
    w->owned = owned;
    if (!owned) {
        memcpy(w->data, p, n);
        p = w->data;
    }
    b = uv_buf_init((char *)p, (unsigned)n);
    r = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_written);
    if (r) {
        wa_free(w->owned);
        wa_free(w);
        wa__stream_fail(s, WA_EIO);
        return WA_EIO;
    }
    s->queued += n;
    return 0;
}

/* Send whatever ciphertext the TLS engine has produced (handed over without a copy). */
static int flush_tls(wa_stream *s)
{
    wa_buf b;
    uint8_t *data;
    size_t len;
    int rc;

    if (wa_tls_pending_len(s->tls) == 0)
        return 0;
    wa_buf_init(&b, WA_TLS_MAX_OUTPUT);
    rc = wa_tls_pending_output(s->tls, &b);
    if (rc) {
        wa_buf_cleanup(&b);
        wa__stream_fail(s, rc);
        return rc;
    }
    data = wa_buf_steal(&b, &len);
    return send_bytes(s, data, len, data);
}

int wa_stream_write(wa_stream *s, const void *data, size_t len)
{
    int rc;

    if (s->closing)
        return WA_ECLOSED;
    if (s->state != WA__ST_OPEN)
        return WA_ESTATE;
    if (len == 0)
        return 0;
    if (s->queued > 0 && (len > s->queue_max || s->queued > s->queue_max - len)) {
        s->want_drain = 1;
        return WA_ELIMIT;
    }
    if (!s->tls)
        return send_bytes(s, data, len, NULL);
    rc = wa_tls_write(s->tls, data, len);
    if (rc == WA_ELIMIT)
        return rc; /* one call larger than the engine's output cap: nothing written */
    if (rc) {
        wa__stream_fail(s, rc);
        return rc;
    }
    return flush_tls(s);
}

/* ---- reading ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = (char *)read_slab;
    buf->len = sizeof read_slab;
}

static void tls_failed(wa_stream *s, int rc)
{
    wa_buf b;
    uv_buf_t ub;

    if (rc != WA_ECLOSED) {
        if (s->accepted)
            wa_log_debug(WA__NET_LOG, "accepted TLS stream failed: %s", wa_tls_last_error(s->tls));
        else
            wa_log_warn(WA__NET_LOG, "TLS connection failed: %s", wa_tls_last_error(s->tls));
    }
    /* best effort, one try: let the alert OpenSSL queued reach the peer */
    wa_buf_init(&b, WA_TLS_MAX_OUTPUT);
    if (wa_tls_pending_output(s->tls, &b) == 0 && b.len > 0) {
        ub = uv_buf_init((char *)b.data, (unsigned)b.len);
        (void)uv_try_write((uv_stream_t *)&s->tcp, &ub, 1);
    }
    wa_buf_cleanup(&b);
    wa__stream_fail(s, rc);
}

static void established(wa_stream *s)
{
    wa_listener *l;

    s->state = WA__ST_OPEN;
    uv_timer_stop(&s->timer);
    dial_free(s);
    if (s->accepted) {
        l = s->listener;
        s->listener = NULL;
        if (l)
            wa__listener_established(l, s);
        if (!s->closing && !s->cbs.on_data) {
            wa_log_warn(WA__NET_LOG, "accepted stream left without callbacks: closing it");
            wa__stream_fail(s, WA_ESTATE);
        }
    } else if (s->cbs.on_connect) {
        s->cbs.on_connect(s, 0, s->user_data);
    }
}

/* Drive the handshake, then hand every decrypted record to on_data. */
static void pump_tls(wa_stream *s)
{
    size_t n;
    int rc;

    if (s->state == WA__ST_HANDSHAKE) {
        rc = wa_tls_handshake(s->tls);
        if (rc == 0 || rc == WA_EAGAIN) {
            if (flush_tls(s) != 0 || s->closing)
                return;
        }
        if (rc == WA_EAGAIN)
            return;
        if (rc) {
            tls_failed(s, rc);
            return;
        }
        established(s);
        if (s->closing)
            return;
    }
    while ((rc = wa_tls_read(s->tls, read_slab, sizeof read_slab, &n)) == 0) {
        if (s->cbs.on_data)
            s->cbs.on_data(s, read_slab, n, s->user_data);
        if (s->closing)
            return;
    }
    if (rc == WA_EAGAIN) {
        (void)flush_tls(s); /* post-handshake messages may need an answer */
        return;
    }
    tls_failed(s, rc);
}

static void read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    wa_stream *s = h->data;
    int rc;

    if (s->closing || nread == 0)
        return;
    if (nread < 0) {
        if (s->state == WA__ST_TUNNEL && nread == UV_EOF) {
            proxy_text(s, "proxy closed the connection during the handshake");
            wa__stream_fail(s, WA_EPROXY);
            return;
        }
        wa__stream_fail(s, nread == UV_EOF ? WA_ECLOSED : WA_EIO);
        return;
    }
    if (s->state == WA__ST_TUNNEL) {
        tunnel_read(s, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    if (!s->tls) {
        if (s->state == WA__ST_OPEN && s->cbs.on_data)
            s->cbs.on_data(s, (const uint8_t *)buf->base, (size_t)nread, s->user_data);
        return;
    }
    rc = wa_tls_feed(s->tls, buf->base, (size_t)nread);
    if (rc) {
        wa__stream_fail(s, rc == WA_ELIMIT ? WA_ETLS : rc);
        return;
    }
    pump_tls(s);
}

/* ---- connecting ---- */

static void on_timeout(uv_timer_t *t)
{
    wa_stream *s = t->data;

    wa_log_debug(WA__NET_LOG, "stream %p: timed out (state %d)", (void *)s, s->state);
    wa__stream_fail(s, WA_ETIMEDOUT);
}

/* The transport (TCP, or the proxy tunnel) is up and reading: TLS or established. `early` are
 * bytes the target sent right after the proxy's reply (normally none). */
static void transport_up(wa_stream *s, const uint8_t *early, size_t n)
{
    int rc;

    if (!s->tls) {
        established(s);
        if (n > 0 && !s->closing && s->cbs.on_data)
            s->cbs.on_data(s, early, n, s->user_data);
        return;
    }
    s->state = WA__ST_HANDSHAKE;
    if (n > 0) {
        rc = wa_tls_feed(s->tls, early, n); /* copied before pump_tls reuses the slab */
        if (rc) {
            wa__stream_fail(s, rc == WA_ELIMIT ? WA_ETLS : rc);
            return;
        }
    }
    pump_tls(s); /* the client sends its ClientHello now */
}

/* TCP is up: start reading, then TLS or established. */
static void transport_ready(wa_stream *s)
{
    if (uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, read_cb) != 0) {
        wa__stream_fail(s, WA_EIO);
        return;
    }
    transport_up(s, NULL, 0);
}

/* Send the proxy engine's pending request (copied if the kernel does not take it at once). */
static int tunnel_flush(wa_stream *s)
{
    wa_proxy_tunnel *t = &s->dial->px->tun;
    wa_slice out = wa_proxy_tunnel_output(t);
    int rc;

    if (out.len == 0)
        return 0;
    rc = send_bytes(s, out.ptr, out.len, NULL);
    wa_proxy_tunnel_output_done(t);
    return rc;
}

/* A proxy reply arrived (WA__ST_TUNNEL). */
static void tunnel_read(wa_stream *s, const uint8_t *data, size_t n)
{
    struct dial_proxy *px = s->dial->px;
    size_t used = 0;
    int rc;

    rc = wa_proxy_tunnel_feed(&px->tun, data, n, &used);
    if (rc == 0 || rc == WA_EAGAIN) {
        if (tunnel_flush(s) != 0 || s->closing)
            return;
    }
    if (rc == WA_EAGAIN)
        return;
    if (rc) {
        proxy_text(s, "%s", wa_proxy_tunnel_error(&px->tun));
        wa_log_warn(WA__NET_LOG, "proxy %s:%s: %s", s->dial->host, s->dial->port, px->text);
        wa__stream_fail(s, rc);
        return;
    }
    wa_log_debug(WA__NET_LOG, "stream %p: proxy tunnel to %s:%u is up", (void *)s, px->target,
                 (unsigned)px->target_port);
    wa_proxy_tunnel_cleanup(&px->tun);
    transport_up(s, data + used, n - used);
}

/* The pre-TLS tunnel step: without a proxy the TCP connection is the transport; with one,
 * start its handshake (WA__ST_TUNNEL) and continue in tunnel_read. */
static void tunnel_start(wa_stream *s)
{
    struct dial_proxy *px = s->dial ? s->dial->px : NULL;
    int rc;

    if (!px) {
        transport_ready(s);
        return;
    }
    s->state = WA__ST_TUNNEL;
    rc = wa_proxy_tunnel_init(&px->tun, &px->url, px->target, px->target_port);
    wa_proxy_url_wipe(&px->url); /* the engine has what it needs */
    if (rc) {
        wa__stream_fail(s, rc);
        return;
    }
    if (uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, read_cb) != 0) {
        wa__stream_fail(s, WA_EIO);
        return;
    }
    (void)tunnel_flush(s); /* on failure the stream is failed already */
}

static void redial(wa_stream *s)
{
    s->redialing = 1;
    uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
}

static void on_connected(uv_connect_t *req, int status)
{
    wa_stream *s = req->handle->data;

    if (status == UV_ECANCELED || s->closing)
        return;
    if (status < 0) {
        s->dial->last_err = status;
        wa_log_debug(WA__NET_LOG, "connect to %s failed: %s", s->dial->host, uv_strerror(status));
        if (s->dial->ai_next)
            redial(s);
        else
            wa__stream_fail(s, map_uv_error(status));
        return;
    }
    uv_tcp_nodelay(&s->tcp, 1); /* small frames, latency matters */
    tunnel_start(s);
}

static void try_next(wa_stream *s)
{
    struct wa__dial *d = s->dial;
    struct addrinfo *ai;
    int r;

    while ((ai = d->ai_next) != NULL) {
        d->ai_next = ai->ai_next;
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        s->state = WA__ST_CONNECTING;
        r = uv_tcp_connect(&d->conn, &s->tcp, ai->ai_addr, on_connected);
        if (r == 0)
            return;
        d->last_err = r;
        if (d->ai_next) {
            redial(s);
            return;
        }
    }
    wa__stream_fail(s, map_uv_error(d->last_err));
}

/* socks5://: the target's name is resolved (res is ours); now the proxy's. */
static void resolved_target(wa_stream *s, struct addrinfo *res)
{
    struct dial_proxy *px = s->dial->px;
    const struct addrinfo *ai, *pick = NULL;
    int rc;

    for (ai = res; ai && !pick; ai = ai->ai_next)
        if (ai->ai_family == AF_INET)
            pick = ai;
    for (ai = res; ai && !pick; ai = ai->ai_next)
        if (ai->ai_family == AF_INET6)
            pick = ai;
    if (pick && pick->ai_family == AF_INET)
        rc = uv_ip4_name((const struct sockaddr_in *)pick->ai_addr, px->target, sizeof px->target);
    else if (pick)
        rc = uv_ip6_name((const struct sockaddr_in6 *)pick->ai_addr, px->target, sizeof px->target);
    else
        rc = -1;
    uv_freeaddrinfo(res);
    if (rc != 0) {
        wa__stream_fail(s, WA_EDNS);
        return;
    }
    px->resolving_target = 0;
    rc = start_resolve(s, px->url.host, px->url.port);
    if (rc)
        wa__stream_fail(s, rc);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    wa_stream *s = req->data;

    s->gai_pending = 0;
    if (s->closing) {
        if (res)
            uv_freeaddrinfo(res);
        maybe_free(s);
        return;
    }
    if (status < 0 || !res) {
        if (res)
            uv_freeaddrinfo(res);
        wa_log_debug(WA__NET_LOG, "resolving %s failed: %s", s->dial->host,
                     status < 0 ? uv_strerror(status) : "no address");
        wa__stream_fail(s, WA_EDNS);
        return;
    }
    if (s->dial->px && s->dial->px->resolving_target) {
        resolved_target(s, res);
        return;
    }
    s->dial->ai_head = s->dial->ai_next = res;
    try_next(s);
}

wa_stream *wa__stream_alloc(uv_loop_t *loop)
{
    wa_stream *s = wa_calloc(1, sizeof *s);

    if (!s)
        return NULL;
    if (uv_tcp_init(loop, &s->tcp) != 0) {
        wa_free(s);
        return NULL;
    }
    uv_timer_init(loop, &s->timer); /* cannot fail */
    s->tcp.data = s;
    s->timer.data = s;
    s->handles = 2;
    s->loop = loop;
    s->queue_max = WA_NET_WRITE_QUEUE_MAX;
    return s;
}

/* Resolve host:port with the dial's one uv_getaddrinfo request (host <= WA_NET_MAX_HOST). */
static int start_resolve(wa_stream *s, const char *host, uint16_t port)
{
    struct wa__dial *d = s->dial;
    struct addrinfo hints;
    int r;

    snprintf(d->host, sizeof d->host, "%s", host);
    snprintf(d->port, sizeof d->port, "%u", (unsigned)port);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV;
    d->gai.data = s;
    r = uv_getaddrinfo(s->loop, &d->gai, on_resolved, d->host, d->port, &hints);
    if (r)
        return r == UV_ENOMEM ? WA_ENOMEM : WA_EDNS;
    s->gai_pending = 1;
    s->state = WA__ST_RESOLVING;
    return 0;
}

static const char *proxy_kind_name(int kind)
{
    return kind == WA_PROXY_HTTP ? "HTTP" : kind == WA_PROXY_SOCKS5H ? "SOCKS5h" : "SOCKS5";
}

/* Parse opts->proxy into a new d->px and start the first name resolution. */
static int start_proxied(wa_stream *s, const wa_stream_opts *opts)
{
    struct dial_proxy *px;
    int rc;

    if (!wa_proxy_valid_target(opts->host))
        return WA_EINVAL;
    px = wa_calloc(1, sizeof *px);
    if (!px)
        return WA_ENOMEM;
    s->dial->px = px;
    rc = wa_proxy_url_parse(opts->proxy, &px->url);
    if (rc)
        return rc;
    snprintf(px->target, sizeof px->target, "%s", opts->host);
    px->target_port = opts->port;
    wa_log_debug(WA__NET_LOG, "stream %p: to %s:%u through %s proxy %s:%u", (void *)s, px->target,
                 (unsigned)px->target_port, proxy_kind_name(px->url.kind), px->url.host,
                 (unsigned)px->url.port);
    if (px->url.kind == WA_PROXY_SOCKS5 && !wa_proxy_is_ip_literal(opts->host)) {
        px->resolving_target = 1;
        return start_resolve(s, opts->host, opts->port);
    }
    return start_resolve(s, px->url.host, px->url.port);
}

int wa_stream_connect(uv_loop_t *loop, const wa_stream_opts *opts, const wa_stream_cbs *cbs,
                      void *user_data, wa_stream **out)
{
    struct wa__dial *d;
    wa_stream *s;
    size_t hlen;
    int rc;

    if (!loop || !opts || !cbs || !cbs->on_data || !opts->host || opts->port == 0)
        return WA_EINVAL;
    hlen = strlen(opts->host);
    if (hlen == 0 || hlen > WA_NET_MAX_HOST)
        return WA_EINVAL;
    if (opts->tls && wa_tls_ctx_is_server(opts->tls))
        return WA_EINVAL;
    s = wa__stream_alloc(loop);
    if (!s)
        return WA_ENOMEM;
    s->cbs = *cbs;
    s->user_data = user_data;
    if (opts->write_queue_max)
        s->queue_max = opts->write_queue_max;
    d = wa_calloc(1, sizeof *d);
    if (!d) {
        rc = WA_ENOMEM;
        goto fail;
    }
    s->dial = d;
    if (opts->tls) {
        /* SNI and verification name: always the real host, never the proxy's */
        rc = wa_tls_new(opts->tls, opts->tls_host ? opts->tls_host : opts->host, &s->tls);
        if (rc)
            goto fail;
    }
    if (opts->proxy && opts->proxy[0])
        rc = start_proxied(s, opts);
    else
        rc = start_resolve(s, opts->host, opts->port);
    if (rc)
        goto fail;
    uv_timer_start(&s->timer, on_timeout,
                   opts->timeout_ms ? opts->timeout_ms : WA_NET_CONNECT_TIMEOUT_MS, 0);
    *out = s;
    return 0;
fail:
    /* handles exist: free through their close callbacks, with no user callback */
    s->silent = 1;
    s->closing = 1;
    s->reason = rc;
    close_handles(s);
    return rc;
}

void wa__stream_start_accepted(wa_stream *s, wa_tls_ctx *tls, unsigned timeout_ms,
                               size_t write_queue_max)
{
    int rc;

    s->accepted = 1;
    if (write_queue_max)
        s->queue_max = write_queue_max;
    if (tls) {
        rc = wa_tls_new(tls, NULL, &s->tls);
        if (rc) {
            wa__stream_fail(s, rc);
            return;
        }
        uv_timer_start(&s->timer, on_timeout, timeout_ms ? timeout_ms : WA_NET_CONNECT_TIMEOUT_MS,
                       0);
    }
    uv_tcp_nodelay(&s->tcp, 1);
    transport_ready(s);
}

/* ---- closing and queries ---- */

static void on_shutdown(uv_shutdown_t *req, int status)
{
    wa_stream *s = req->data;

    (void)status;
    wa_free(req);
    close_handles(s);
}

static void on_linger(uv_timer_t *t)
{
    close_handles(t->data);
}

void wa_stream_close(wa_stream *s)
{
    uv_shutdown_t *req;

    if (!s || s->closing)
        return;
    s->closing = 1;
    s->reason = 0;
    if (s->state == WA__ST_OPEN) {
        uv_read_stop((uv_stream_t *)&s->tcp);
        if (s->tls && wa_tls_shutdown(s->tls) == 0)
            (void)flush_tls(s); /* close_notify; errors only mean the socket is gone */
        if (s->queued > 0) {
            /* let queued writes reach the peer, but not forever */
            req = wa_malloc(sizeof *req);
            if (req) {
                req->data = s;
                if (uv_shutdown(req, (uv_stream_t *)&s->tcp, on_shutdown) == 0) {
                    uv_timer_start(&s->timer, on_linger, WA_NET_CLOSE_LINGER_MS, 0);
                    return;
                }
                wa_free(req);
            }
        }
    }
    close_handles(s);
}

void wa_stream_set_callbacks(wa_stream *s, const wa_stream_cbs *cbs, void *user_data)
{
    s->cbs = *cbs;
    s->user_data = user_data;
}

size_t wa_stream_queued(const wa_stream *s)
{
    return s->queued;
}

int wa_stream_is_open(const wa_stream *s)
{
    return s->state == WA__ST_OPEN && !s->closing;
}

const char *wa_stream_last_error(const wa_stream *s)
{
    if (s->tls && wa_tls_last_error(s->tls)[0])
        return wa_tls_last_error(s->tls);
    if (s->closing && s->reason) {
        if (s->dial && s->dial->px && s->dial->px->text[0])
            return s->dial->px->text;
        return wa_strerror(s->reason);
    }
    return "";
}

int wa_stream_peer(const wa_stream *s, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    char ip[64], tmp[80];
    int len = sizeof ss, n;

    if (s->closing || uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len) != 0)
        return WA_ESTATE;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        uv_ip4_name(a, ip, sizeof ip);
        n = snprintf(tmp, sizeof tmp, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, ip, sizeof ip);
        n = snprintf(tmp, sizeof tmp, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
    } else {
        return WA_ESTATE;
    }
    if (n < 0 || (size_t)n >= cap)
        return WA_ELIMIT;
    memcpy(buf, tmp, (size_t)n + 1);
    return 0;
}
