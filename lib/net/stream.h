/*
 * stream.h - libuv byte streams for the event-loop code: outgoing TCP connections (DNS through
 * uv_getaddrinfo, every address tried in turn, one timer over the whole connect), accepted
 * connections from a wa_listener, either optionally wrapped in TLS (lib/tls), with a capped
 * write queue.
 *
 * Life cycle of a stream (all callbacks run on the loop thread and take user_data last):
 *
 *   outgoing:  wa_stream_connect -> [resolve -> TCP connect -> (proxy tunnel) -> TLS]
 *              -> on_connect(s, 0) ... on_data ... -> on_close(s, reason)
 *              or on failure: on_connect(s, err) -> on_close(s, err)
 *   accepted:  wa_listener (on_accept once TCP and any TLS handshake are done; the handler
 *              installs its callbacks with wa_stream_set_callbacks) ... on_data ... on_close
 *
 * on_close is called exactly once for every stream handed out, always last, from a libuv close
 * callback; the stream's memory is freed right after it returns. wa_stream_close may be called
 * at any time, from inside any callback, any number of times: it only schedules the close, no
 * other callback follows it except that final on_close (reason 0), and the stream pointer stays
 * valid until then. Calls on a closing stream are harmless (wa_stream_write: WA_ECLOSED).
 *
 * on_close reasons: 0 closed by wa_stream_close; WA_ECLOSED the peer closed (EOF or TLS
 * close_notify); WA_ETIMEDOUT connect/handshake timer; WA_EDNS name resolution failed;
 * WA_ECONNREFUSED; WA_ECERT certificate rejected; WA_ETLS other TLS failure; WA_EIO socket
 * error; WA_ENOMEM; WA_ESTATE an accepted stream left without callbacks.
 * Through a proxy also: WA_EPROXYAUTH credentials rejected or missing; WA_EPROXY the proxy
 * refused or could not make the connection, or closed during its handshake; WA_EPROTO a
 * malformed proxy reply; WA_ELIMIT an HTTP proxy response header over its cap. DNS, refused and
 * timeout codes then concern the proxy (or, for socks5://, resolving the target); the
 * wa_stream_last_error text says which ("cannot connect to proxy 10.0.0.1:1080: connection
 * refused", "proxy authentication failed", "proxy refused connection: SOCKS5 reply 5
 * (connection refused)", "HTTP proxy answered 407 ...", "timed out in the proxy handshake").
 *
 * Memory per idle connection: this struct with its uv_tcp_t and uv_timer_t (< 1 KiB) plus the
 * TLS engine (see tls.h); reads go through one 64 KiB slab per loop thread, and write buffers
 * exist only while the kernel has not taken the bytes.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_NET_STREAM_H
#define WA_NET_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tls/tls.h"

/* Default limit on DNS + TCP connect + proxy handshake + TLS handshake (and on an accepted TLS
 * handshake). */
#define WA_NET_CONNECT_TIMEOUT_MS 20000
/* Default write-queue cap (bytes handed to wa_stream_write that the kernel has not taken). */
#define WA_NET_WRITE_QUEUE_MAX (4 * 1024 * 1024)
/* Read slab shared by all streams of a loop thread: one socket read at most. */
#define WA_NET_READ_SLAB (64 * 1024)
/* How long wa_stream_close waits for queued writes to drain before closing anyway. */
#define WA_NET_CLOSE_LINGER_MS 2000
/* Longest host name accepted (RFC 1035). */
#define WA_NET_MAX_HOST 253
/* Listen backlog default. */
#define WA_NET_BACKLOG 511

typedef struct wa_stream wa_stream;
typedef struct wa_listener wa_listener;

/* Outgoing streams only: status 0 = ready to write (TLS verified), < 0 = failed (on_close
 * follows with the same code). Not called if wa_stream_close was called first. */
typedef void (*wa_stream_connect_cb)(wa_stream *s, int status, void *user_data);
/* Plaintext received. `data` is borrowed (a per-thread slab) and valid only during the call. */
typedef void (*wa_stream_data_cb)(wa_stream *s, const uint8_t *data, size_t len, void *user_data);
/* The write queue emptied after wa_stream_write had returned WA_ELIMIT. Optional. */
typedef void (*wa_stream_drain_cb)(wa_stream *s, void *user_data);
/* Final callback; reason as listed above. The stream is freed when it returns. */
typedef void (*wa_stream_close_cb)(wa_stream *s, int reason, void *user_data);

typedef struct wa_stream_cbs {
    wa_stream_connect_cb on_connect; /* outgoing only; may be NULL */
    wa_stream_data_cb on_data;       /* required */
    wa_stream_drain_cb on_drain;     /* may be NULL */
    wa_stream_close_cb on_close;     /* may be NULL */
} wa_stream_cbs;

typedef struct wa_stream_opts {
    const char *host;       /* DNS name or IP literal to connect to (copied) */
    uint16_t port;          /* != 0 */
    wa_tls_ctx *tls;        /* client TLS context, or NULL for plain TCP; must outlive the stream */
    const char *tls_host;   /* name for SNI and verification; NULL = host (copied) */
    unsigned timeout_ms;    /* DNS + connect + tunnel + TLS handshake; 0 = default */
    size_t write_queue_max; /* 0 = WA_NET_WRITE_QUEUE_MAX */
    /* Proxy URL (parsed and copied; NULL or "" = direct), see net/proxy.h:
     *   "socks5://user:pass@host:port"   SOCKS5, `host` resolved here, sent as an address
     *   "socks5h://user:pass@host:port"  SOCKS5, the proxy resolves `host`
     *   "http://user:pass@host:port"     HTTP CONNECT with Proxy-Authorization: Basic
     * Credentials are optional and percent-decoded; port defaults to 1080. The stream connects
     * to the proxy (DNS through uv_getaddrinfo), runs the tunnel handshake, then TLS to `host`
     * (SNI and verification against tls_host/host, never the proxy's name). Credentials are
     * never logged and are wiped once sent. timeout_ms covers the whole sequence. */
    const char *proxy;
} wa_stream_opts;

/* Start an outgoing connection. Returns 0 and *out (then exactly one on_close will follow),
 * or WA_EINVAL (bad options / a server TLS context / a malformed proxy URL), WA_EUNSUPPORTED
 * (a proxy scheme other than socks5, socks5h, http), WA_ENOMEM, or the TLS engine's error,
 * in which case no callback is ever called (what was allocated is freed as the loop runs).
 * No callback runs before this returns. cbs is copied (on_data required); user_data is
 * passed back. */
int wa_stream_connect(uv_loop_t *loop, const wa_stream_opts *opts, const wa_stream_cbs *cbs,
                      void *user_data, wa_stream **out);

/* Replace the callbacks and user data (an accepted stream gets them in on_accept). */
void wa_stream_set_callbacks(wa_stream *s, const wa_stream_cbs *cbs, void *user_data);

/* Send len bytes (copied or encrypted at once; the caller keeps data). Returns 0;
 * WA_ESTATE before the stream is established; WA_ECLOSED once closing; WA_ELIMIT when bytes
 * are already queued and this write would take the queue past its cap (nothing is sent;
 * on_drain follows when the queue is empty); on a transport/TLS failure the error code, and
 * the stream closes (on_close follows). A write to an empty queue is always accepted (on a
 * TLS stream, up to WA_TLS_MAX_OUTPUT bytes per call). */
int wa_stream_write(wa_stream *s, const void *data, size_t len);

/* Close: stop reading, send TLS close_notify, let queued writes drain for up to
 * WA_NET_CLOSE_LINGER_MS, close the socket; then on_close(s, 0). See the top of this file. */
void wa_stream_close(wa_stream *s);

/* Bytes written but not yet taken by the kernel. */
size_t wa_stream_queued(const wa_stream *s);
/* 1 once established (on_connect(0) / on_accept), 0 before and after closing. */
int wa_stream_is_open(const wa_stream *s);
/* Readable reason for a TLS failure (certificate verification text) or the reason code's
 * text; "" while there is no error. Valid until on_close returns. */
const char *wa_stream_last_error(const wa_stream *s);
/* Peer address as "1.2.3.4:443" or "[::1]:443" into buf (NUL-terminated); through a proxy,
 * the proxy's address. 0, WA_ESTATE if not connected, WA_ELIMIT if cap is too small. */
int wa_stream_peer(const wa_stream *s, char *buf, size_t cap);

/* --- listener --- */

/* A new established stream (TLS handshake done if the listener has TLS). Install callbacks
 * with wa_stream_set_callbacks (or call wa_stream_close) before returning; a stream left
 * without an on_data callback is closed. */
typedef void (*wa_listener_accept_cb)(wa_listener *l, wa_stream *s, void *user_data);

typedef struct wa_listener_opts {
    const char *host;       /* IP literal to bind; NULL = "0.0.0.0" (no DNS: never blocks) */
    uint16_t port;          /* 0 = ephemeral (see wa_listener_port) */
    wa_tls_ctx *tls;        /* server TLS context or NULL; must outlive the listener's streams */
    unsigned timeout_ms;    /* TLS handshake limit; 0 = WA_NET_CONNECT_TIMEOUT_MS */
    size_t write_queue_max; /* for accepted streams; 0 = WA_NET_WRITE_QUEUE_MAX */
    int backlog;            /* 0 = WA_NET_BACKLOG */
    wa_listener_accept_cb on_accept; /* required */
    void *user_data;
} wa_listener_opts;

/* Bind and listen. 0 and *out, WA_EINVAL (bad host / client TLS context / no on_accept),
 * WA_EIO (bind/listen failed, e.g. address in use; logged), WA_ENOMEM. */
int wa_listener_start(uv_loop_t *loop, const wa_listener_opts *opts, wa_listener **out);
/* The bound port (useful with port 0), or a negative WA_E* code. */
int wa_listener_port(const wa_listener *l);
/* Stop accepting and free the listener (in its close callback). Connections still in their
 * TLS handshake are dropped; established streams are not affected. Safe to call once. */
void wa_listener_close(wa_listener *l);

#endif
