/*
 * proxy.h - sans-I/O proxy tunnels for wa_stream's pre-TLS step: proxy URL parsing, SOCKS5
 * (RFC 1928) with username/password authentication (RFC 1929), and HTTP CONNECT (RFC 9110
 * 9.3.6) with Basic proxy authentication (RFC 7617).
 *
 * No sockets, no allocation except the capped reply buffer: the event loop sends what
 * wa_proxy_tunnel_output() holds, feeds the proxy's reply bytes with wa_proxy_tunnel_feed(), and
 * once that returns 0 the connection is a byte pipe to the target (TLS starts there).
 *
 *   socks5://[user[:pass]@]host[:port]   SOCKS5; the target name is resolved by the client and
 *                                        sent as an IPv4/IPv6 address (ATYP 1/4)
 *   socks5h://...                        SOCKS5; the proxy resolves the name (ATYP 3)
 *   http://[user[:pass]@]host[:port]     HTTP CONNECT, Proxy-Authorization: Basic
 *
 * user and pass are percent-decoded (RFC 3986 2.1); characters such as '@', ':', '/', '#', '%'
 * and spaces in them must be percent-encoded. The port defaults to WA_PROXY_DEFAULT_PORT (1080,
 * as curl does for every proxy type). https:// proxies (TLS to the proxy) and SOCKS4 are
 * WA_EUNSUPPORTED.
 *
 * Secrets: credentials live in wa_proxy_url and in the engine only until the request carrying
 * them has been built; every copy (including the pending request bytes) is wiped. No error text
 * ever contains them.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_NET_PROXY_H
#define WA_NET_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Longest proxy URL accepted. */
#define WA_PROXY_MAX_URL 2048
/* Longest host name (RFC 1035), target or proxy. */
#define WA_PROXY_MAX_HOST 253
/* Longest user name and password after percent-decoding (RFC 1929: one length byte each). */
#define WA_PROXY_MAX_CRED 255
/* Port used when the URL names none. */
#define WA_PROXY_DEFAULT_PORT 1080
/* Longest request the engine builds (an HTTP CONNECT with the longest host and credentials is
 * about 1.3 KiB). */
#define WA_PROXY_MAX_REQUEST 1536
/* Longest SOCKS5 reply: VER REP RSV ATYP, a 255-byte domain with its length byte, port. */
#define WA_PROXY_SOCKS5_MAX_REPLY (4 + 1 + 255 + 2)
/* Cap on the HTTP CONNECT response header block (status line + headers + empty line). */
#define WA_PROXY_MAX_HTTP_HEADER 8192
/* Longest part of an HTTP reason phrase quoted in an error text. */
#define WA_PROXY_MAX_REASON 64
/* Size of the error text buffer. */
#define WA_PROXY_MAX_ERROR 160

enum wa_proxy_kind {
    WA_PROXY_SOCKS5 = 1, /* local name resolution */
    WA_PROXY_SOCKS5H,    /* name resolution by the proxy */
    WA_PROXY_HTTP,       /* HTTP CONNECT */
};

typedef struct wa_proxy_url {
    uint8_t kind;     /* enum wa_proxy_kind */
    uint8_t has_auth; /* user[:pass]@ was given */
    uint16_t port;
    size_t user_len, pass_len;
    char host[WA_PROXY_MAX_HOST + 1]; /* NUL-terminated; an IPv6 literal without brackets */
    uint8_t user[WA_PROXY_MAX_CRED];  /* secret, not NUL-terminated */
    uint8_t pass[WA_PROXY_MAX_CRED];  /* secret, not NUL-terminated */
} wa_proxy_url;

/* Parse a proxy URL (see the top of this file) into *out (written only on success; the caller
 * wipes it with wa_proxy_url_wipe). A trailing "/" is allowed, any other path, query or fragment
 * is not. Returns 0, WA_EINVAL (malformed: bad scheme syntax, missing host, bad port, bad
 * percent-escape, raw control characters or spaces, empty user name, overlong parts, an HTTP
 * user name containing ':' or control characters in HTTP credentials), or WA_EUNSUPPORTED (a
 * well-formed URL of another scheme: https, socks4, ...). */
int wa_proxy_url_parse(const char *url, wa_proxy_url *out);

/* Wipe a parsed URL (credentials included). */
void wa_proxy_url_wipe(wa_proxy_url *u);

/* 1 if host is an IPv4 or IPv6 literal (no brackets), else 0. */
int wa_proxy_is_ip_literal(const char *host);

/* 1 if host can be a tunnel target: an IPv4/IPv6 literal, or 1..WA_PROXY_MAX_HOST characters of
 * [A-Za-z0-9._-] (nothing that could break an HTTP request line or a SOCKS5 request). */
int wa_proxy_valid_target(const char *host);

/* --- the tunnel handshake engine --- */

typedef struct wa_proxy_tunnel {
    uint8_t kind; /* enum wa_proxy_kind */
    uint8_t step; /* internal */
    uint8_t has_auth;
    uint16_t port; /* target port */
    int err;       /* sticky error, 0 while none */
    size_t user_len, pass_len;
    size_t line_len; /* HTTP: bytes on the current header line so far */
    size_t out_len;
    wa_buf in; /* reply bytes of the current message (capped) */
    char host[WA_PROXY_MAX_HOST + 1];
    uint8_t user[WA_PROXY_MAX_CRED]; /* SOCKS5 until the auth request is built; then wiped */
    uint8_t pass[WA_PROXY_MAX_CRED];
    uint8_t out[WA_PROXY_MAX_REQUEST]; /* pending request bytes (may hold credentials) */
    char error[WA_PROXY_MAX_ERROR];
} wa_proxy_tunnel;

/* Start a handshake through proxy `p` (credentials copied; p may be wiped afterwards) to
 * host:port. host is a DNS name or an IPv4/IPv6 literal without brackets; for WA_PROXY_SOCKS5
 * it must be a literal (the caller resolves it first). The first request (SOCKS5 greeting or
 * the HTTP CONNECT request) becomes pending output at once.
 * Returns 0, or WA_EINVAL (bad kind, host or port) with the engine left clean. Call
 * wa_proxy_tunnel_cleanup in both cases. */
int wa_proxy_tunnel_init(wa_proxy_tunnel *t, const wa_proxy_url *p, const char *host,
                         uint16_t port);

/* Wipe everything (credentials, pending request) and free the reply buffer. */
void wa_proxy_tunnel_cleanup(wa_proxy_tunnel *t);

/* The request bytes waiting to be sent (len 0 when none). Borrowed: valid until the next call
 * on the engine. */
wa_slice wa_proxy_tunnel_output(const wa_proxy_tunnel *t);

/* The pending output has been taken (sent or copied): wipe it. */
void wa_proxy_tunnel_output_done(wa_proxy_tunnel *t);

/* Feed len bytes received from the proxy. *used is set on 0 and WA_EAGAIN.
 *   WA_EAGAIN  all bytes consumed, the handshake needs more; check wa_proxy_tunnel_output for
 *              a next request to send first.
 *   0          the tunnel is up: *used bytes belonged to the proxy's reply, the remaining
 *              len - *used bytes are the first bytes from the target. Later calls return 0
 *              with *used = 0.
 *   WA_EPROXYAUTH  the proxy rejected our credentials, or wants some and we have none
 *                  (SOCKS5 method 0xFF, RFC 1929 status != 0, HTTP 401/407)
 *   WA_EPROXY      the proxy refused or failed the connection (SOCKS5 reply != 0, HTTP status
 *                  other than 200)
 *   WA_EPROTO      malformed reply (not SOCKS5, unknown address type, bad status line, ...)
 *   WA_ELIMIT      HTTP response header block over WA_PROXY_MAX_HTTP_HEADER
 *   WA_ENOMEM
 * Errors are sticky; wa_proxy_tunnel_error gives the text. */
int wa_proxy_tunnel_feed(wa_proxy_tunnel *t, const uint8_t *data, size_t len, size_t *used);

/* 1 once the tunnel is up. */
int wa_proxy_tunnel_done(const wa_proxy_tunnel *t);

/* Readable reason for the sticky error ("proxy authentication failed", "proxy refused
 * connection: SOCKS5 reply 5 (connection refused)", "HTTP proxy answered 407 Proxy
 * Authentication Required", ...), "" while there is none. Never contains credentials. */
const char *wa_proxy_tunnel_error(const wa_proxy_tunnel *t);

#endif
