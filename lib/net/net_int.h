/*
 * net_int.h - internals shared by stream.c and listener.c (not for other layers).
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_NET_NET_INT_H
#define WA_NET_NET_INT_H

#include "net/stream.h"

#define WA__NET_LOG "net"

enum wa__stream_state {
    WA__ST_RESOLVING, /* outgoing: uv_getaddrinfo in flight */
    WA__ST_CONNECTING,
    WA__ST_TUNNEL,    /* pre-TLS proxy handshake (HTTP CONNECT, SOCKS5; net/proxy.h) */
    WA__ST_HANDSHAKE, /* TLS handshake */
    WA__ST_OPEN,
};

struct wa__dial; /* outgoing connect-phase state (stream.c) */

struct wa_stream {
    uv_tcp_t tcp;     /* .data = the stream */
    uv_timer_t timer; /* connect/handshake timeout, close linger */
    uv_loop_t *loop;
    wa_tls *tls;           /* NULL for plain TCP */
    struct wa__dial *dial; /* outgoing, until established */
    wa_listener *listener; /* accepted, until established (listener's pending list) */
    wa_stream *pend_prev, *pend_next;
    wa_stream_cbs cbs;
    void *user_data;
    size_t queued; /* bytes in uv write requests */
    size_t queue_max;
    int reason;      /* for on_close; valid once closing */
    uint8_t state;   /* enum wa__stream_state */
    uint8_t handles; /* uv handles initialised and not yet through their close callback */
    unsigned closing : 1;
    unsigned silent : 1; /* no callbacks at all (failed before being handed out) */
    unsigned accepted : 1;
    unsigned gai_pending : 1;
    unsigned redialing : 1;
    unsigned want_drain : 1;
};

/* A stream with its tcp and timer handles initialised (handles == 2), or NULL. */
wa_stream *wa__stream_alloc(uv_loop_t *loop);
/* Start an accepted stream (tcp already accepted): TLS handshake or established at once.
 * On failure the stream is closed silently. */
void wa__stream_start_accepted(wa_stream *s, wa_tls_ctx *tls, unsigned timeout_ms,
                               size_t write_queue_max);
/* Close with a reason (no graceful drain); no-op when already closing. */
void wa__stream_fail(wa_stream *s, int reason);

/* listener.c: an accepted stream completed its handshake: unlink and call on_accept. */
void wa__listener_established(wa_listener *l, wa_stream *s);
/* listener.c: an accepted stream closed before being handed out: unlink. */
void wa__listener_forget(wa_listener *l, wa_stream *s);

#endif
