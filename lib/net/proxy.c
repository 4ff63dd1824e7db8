/*
 * proxy.c - proxy URL parser and the SOCKS5 / HTTP CONNECT handshake engine (see proxy.h).
 *
 * SOCKS5 (RFC 1928), client side, one message at a time (no pipelining: the method the proxy
 * picks decides what comes next):
 *
 *   greeting   05 NMETHODS METHODS...       we offer 00 (none), plus 02 (RFC 1929) with creds
 *   <- choice  05 METHOD                    FF: none acceptable
 *   auth       01 ULEN UNAME PLEN PASSWD    RFC 1929 (only if 02 was chosen)
 *   <- status  01 STATUS                    00 success; some old servers answer 05 STATUS
 *   request    05 01 00 ATYP DST.ADDR DST.PORT   CONNECT; ATYP 1 IPv4, 3 domain, 4 IPv6
 *   <- reply   05 REP RSV ATYP BND.ADDR BND.PORT REP 00 succeeded, else the reason below
 *
 * Every reply byte is checked as soon as it arrives, so a proxy that answers with an error and
 * closes gets a precise message however the bytes are split. RSV is not checked (RFC 1928 says
 * it is 00, but it carries no meaning).
 *
 * HTTP CONNECT (RFC 9110 9.3.6): "CONNECT host:port HTTP/1.1" with Host and, with credentials,
 * "Proxy-Authorization: Basic base64(user:pass)" (RFC 7617). The response header block ends
 * with an empty line (CRLF or a bare LF are both accepted, RFC 9112 2.2); it is capped at
 * WA_PROXY_MAX_HTTP_HEADER. Only status 200 opens the tunnel; 401/407 are authentication
 * failures (tinyproxy answers 401 to wrong credentials and 407 to missing ones). Headers are not
 * interpreted.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "net/proxy.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "wa/error.h"

enum {
    ST_FAILED = 0,
    ST_METHOD, /* SOCKS5: waiting for the method choice */
    ST_AUTH,   /* SOCKS5: waiting for the RFC 1929 status */
    ST_REPLY,  /* SOCKS5: waiting for the CONNECT reply */
    ST_HTTP,   /* HTTP: waiting for the response header block */
    ST_DONE,
};

#define SOCKS5_VERSION     0x05
#define SOCKS5_AUTH_VER    0x01 /* RFC 1929 subnegotiation version */
#define SOCKS5_M_NONE      0x00
#define SOCKS5_M_USERPASS  0x02
#define SOCKS5_M_NONE_OK   0xff
#define SOCKS5_CMD_CONNECT 0x01
#define SOCKS5_ATYP_IPV4   0x01
#define SOCKS5_ATYP_DOMAIN 0x03
#define SOCKS5_ATYP_IPV6   0x04

/* ---- URL parsing ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out (at most cap bytes). Raw controls and spaces are refused:
 * they must be encoded. */
static int pct_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    size_t i, o = 0;
    int hi, lo;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o == cap)
            return WA_EINVAL;
        if (c == '%') {
            if (n - i < 3 || (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
                return WA_EINVAL;
            out[o++] = (uint8_t)(hi << 4 | lo);
            i += 2;
        } else if (c <= 0x20 || c == 0x7f) {
            return WA_EINVAL;
        } else {
            out[o++] = c;
        }
    }
    *outlen = o;
    return 0;
}

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/* A DNS name or IPv4 literal of name characters only, 1..WA_PROXY_MAX_HOST long. */
static int valid_name(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > WA_PROXY_MAX_HOST)
        return 0;
    for (i = 0; i < n; i++)
        if (!is_name_char(s[i]))
            return 0;
    return 1;
}

int wa_proxy_is_ip_literal(const char *host)
{
    uint8_t a[16];

    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static int scheme_is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

static int parse_port(const char *s, size_t n, uint16_t *port)
{
    unsigned long v = 0;
    size_t i;

    if (n == 0 || n > 5)
        return WA_EINVAL;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return WA_EINVAL;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return WA_EINVAL;
    *port = (uint16_t)v;
    return 0;
}

/* RFC 7617 2: the user-id must not contain ':', and neither part control characters. */
static int http_cred_ok(const uint8_t *p, size_t n, int is_user)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] == 0x7f || (is_user && p[i] == ':'))
            return 0;
    return 1;
}

static int parse_hostport(const char *s, size_t n, wa_proxy_url *u)
{
    const char *colon;
    size_t hlen;

    u->port = WA_PROXY_DEFAULT_PORT;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        hlen = close ? (size_t)(close - s - 1) : 0;
        if (!close || hlen == 0 || hlen > WA_PROXY_MAX_HOST)
            return WA_EINVAL;
        memcpy(u->host, s + 1, hlen);
        u->host[hlen] = '\0';
        if (!wa_proxy_is_ip_literal(u->host) || strchr(u->host, ':') == NULL)
            return WA_EINVAL; /* brackets only around IPv6 */
        s += hlen + 2;
        n -= hlen + 2;
        if (n == 0)
            return 0;
        if (s[0] != ':')
            return WA_EINVAL;
        return parse_port(s + 1, n - 1, &u->port);
    }
    colon = memchr(s, ':', n);
    hlen = colon ? (size_t)(colon - s) : n;
    if (!valid_name(s, hlen))
        return WA_EINVAL;
    memcpy(u->host, s, hlen);
    u->host[hlen] = '\0';
    if (!colon)
        return 0;
    return parse_port(colon + 1, n - hlen - 1, &u->port);
}

int wa_proxy_url_parse(const char *url, wa_proxy_url *out)
{
    wa_proxy_url u;
    const char *sep, *auth, *end, *at, *colon, *p;
    size_t n, slen, i;
    int rc = WA_EINVAL;

    memset(&u, 0, sizeof u);
    if (!url || !out)
        goto out;
    n = strnlen(url, WA_PROXY_MAX_URL + 1);
    if (n > WA_PROXY_MAX_URL)
        goto out;
    sep = strstr(url, "://");
    if (!sep || sep == url)
        goto out;
    slen = (size_t)(sep - url);
    /* RFC 3986 3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
    for (i = 0; i < slen; i++) {
        char c = url[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (i > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))))
            goto out;
    }
    if (scheme_is(url, slen, "socks5"))
        u.kind = WA_PROXY_SOCKS5;
    else if (scheme_is(url, slen, "socks5h"))
        u.kind = WA_PROXY_SOCKS5H;
    else if (scheme_is(url, slen, "http"))
        u.kind = WA_PROXY_HTTP;
    else {
        rc = WA_EUNSUPPORTED;
        goto out;
    }
    auth = sep + 3;
    end = auth + strcspn(auth, "/?#");
    if (*end != '\0' && strcmp(end, "/") != 0)
        goto out; /* a path, query or fragment means something we would silently ignore */
    /* The last '@' ends the user info, so a raw '@' in a password still works (as in curl). */
    at = NULL;
    for (p = auth; p < end; p++)
        if (*p == '@')
            at = p;
    if (at) {
        colon = memchr(auth, ':', (size_t)(at - auth));
        if (pct_decode(auth, (size_t)((colon ? colon : at) - auth), u.user, sizeof u.user,
                       &u.user_len) != 0 ||
            u.user_len == 0)
            goto out;
        if (colon && pct_decode(colon + 1, (size_t)(at - colon - 1), u.pass, sizeof u.pass,
                                &u.pass_len) != 0)
            goto out;
        if (u.kind == WA_PROXY_HTTP &&
            (!http_cred_ok(u.user, u.user_len, 1) || !http_cred_ok(u.pass, u.pass_len, 0)))
            goto out;
        u.has_auth = 1;
        auth = at + 1;
    }
    if (parse_hostport(auth, (size_t)(end - auth), &u) != 0)
        goto out;
    *out = u;
    rc = 0;
out:
    wa_wipe(&u, sizeof u);
    return rc;
}

void wa_proxy_url_wipe(wa_proxy_url *u)
{
    wa_wipe(u, sizeof *u);
}

/* ---- engine ---- */

static int fail(wa_proxy_tunnel *t, int err, const char *fmt, ...) WA__PRINTF(3, 4);

static int fail(wa_proxy_tunnel *t, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(t->error, sizeof t->error, fmt, ap);
    va_end(ap);
    t->err = err;
    t->step = ST_FAILED;
    wa_wipe(t->user, sizeof t->user);
    wa_wipe(t->pass, sizeof t->pass);
    wa_proxy_tunnel_output_done(t);
    wa_buf_cleanup(&t->in);
    return err;
}

static void put(wa_proxy_tunnel *t, const void *p, size_t n)
{
    /* sizes are bounded by construction (see WA_PROXY_MAX_REQUEST) */
    if (n > sizeof t->out - t->out_len)
        n = sizeof t->out - t->out_len;
    memcpy(t->out + t->out_len, p, n);
    t->out_len += n;
}

static void put_byte(wa_proxy_tunnel *t, uint8_t b)
{
    put(t, &b, 1);
}

static void put_str(wa_proxy_tunnel *t, const char *s)
{
    put(t, s, strlen(s));
}

static void socks_greeting(wa_proxy_tunnel *t)
{
    put_byte(t, SOCKS5_VERSION);
    if (t->has_auth) {
        put_byte(t, 2);
        put_byte(t, SOCKS5_M_NONE);
        put_byte(t, SOCKS5_M_USERPASS);
    } else {
        put_byte(t, 1);
        put_byte(t, SOCKS5_M_NONE);
    }
}

static void socks_auth(wa_proxy_tunnel *t)
{
    put_byte(t, SOCKS5_AUTH_VER);
    put_byte(t, (uint8_t)t->user_len);
    put(t, t->user, t->user_len);
    put_byte(t, (uint8_t)t->pass_len);
    put(t, t->pass, t->pass_len);
    wa_wipe(t->user, sizeof t->user);
    wa_wipe(t->pass, sizeof t->pass);
}

static void socks_connect(wa_proxy_tunnel *t)
{
    uint8_t a[16], port[2];
    size_t hlen = strlen(t->host);

    put_byte(t, SOCKS5_VERSION);
    put_byte(t, SOCKS5_CMD_CONNECT);
    put_byte(t, 0x00);
    if (inet_pton(AF_INET, t->host, a) == 1) {
        put_byte(t, SOCKS5_ATYP_IPV4);
        put(t, a, 4);
    } else if (inet_pton(AF_INET6, t->host, a) == 1) {
        put_byte(t, SOCKS5_ATYP_IPV6);
        put(t, a, 16);
    } else {
        put_byte(t, SOCKS5_ATYP_DOMAIN);
        put_byte(t, (uint8_t)hlen);
        put(t, t->host, hlen);
    }
    wa_store_be16(port, t->port);
    put(t, port, 2);
}

static int http_request(wa_proxy_tunnel *t, const wa_proxy_url *p)
{
    char hostport[WA_PROXY_MAX_HOST + 16];
    uint8_t cred[2 * WA_PROXY_MAX_CRED + 1];
    char b64[((2 * WA_PROXY_MAX_CRED + 1 + 2) / 3) * 4 + 1];
    size_t n;

    if (strchr(t->host, ':'))
        snprintf(hostport, sizeof hostport, "[%s]:%u", t->host, (unsigned)t->port);
    else
        snprintf(hostport, sizeof hostport, "%s:%u", t->host, (unsigned)t->port);
    put_str(t, "CONNECT ");
    put_str(t, hostport);
    put_str(t, " HTTP/1.1\r\nHost: ");
    put_str(t, hostport);
    put_str(t, "\r\n");
    if (p->has_auth) {
        memcpy(cred, p->user, p->user_len);
        cred[p->user_len] = ':';
        memcpy(cred + p->user_len + 1, p->pass, p->pass_len);
        n = p->user_len + 1 + p->pass_len;
        wa_base64_encode(b64, cred, n, 0);
        put_str(t, "Proxy-Authorization: Basic ");
        put_str(t, b64);
        put_str(t, "\r\n");
        wa_wipe(cred, sizeof cred);
        wa_wipe(b64, sizeof b64);
    }
    put_str(t, "\r\n");
    return 0;
}

int wa_proxy_valid_target(const char *host)
{
    size_t n = strnlen(host, WA_PROXY_MAX_HOST + 1);

    if (n == 0 || n > WA_PROXY_MAX_HOST)
        return 0;
    return valid_name(host, n) || wa_proxy_is_ip_literal(host);
}

int wa_proxy_tunnel_init(wa_proxy_tunnel *t, const wa_proxy_url *p, const char *host, uint16_t port)
{
    memset(t, 0, sizeof *t);
    wa_buf_init(&t->in, 1);
    if (!p || !host || port == 0 || !wa_proxy_valid_target(host) ||
        p->user_len > WA_PROXY_MAX_CRED || p->pass_len > WA_PROXY_MAX_CRED)
        return WA_EINVAL;
    if (p->kind == WA_PROXY_SOCKS5 && !wa_proxy_is_ip_literal(host))
        return WA_EINVAL; /* socks5:// means we resolve: the caller passes an address */
    t->kind = p->kind;
    t->port = port;
    t->has_auth = p->has_auth;
    memcpy(t->host, host, strlen(host) + 1);
    switch (p->kind) {
    case WA_PROXY_SOCKS5:
    case WA_PROXY_SOCKS5H:
        wa_buf_init(&t->in, WA_PROXY_SOCKS5_MAX_REPLY);
        if (p->has_auth) {
            memcpy(t->user, p->user, p->user_len);
            memcpy(t->pass, p->pass, p->pass_len);
            t->user_len = p->user_len;
            t->pass_len = p->pass_len;
        }
        socks_greeting(t);
        t->step = ST_METHOD;
        return 0;
    case WA_PROXY_HTTP:
        wa_buf_init(&t->in, WA_PROXY_MAX_HTTP_HEADER);
        t->step = ST_HTTP;
        return http_request(t, p);
    default:
        wa_wipe(t, sizeof *t);
        wa_buf_init(&t->in, 1);
        return WA_EINVAL;
    }
}

void wa_proxy_tunnel_cleanup(wa_proxy_tunnel *t)
{
    wa_buf_cleanup(&t->in);
    wa_wipe(t, sizeof *t);
    wa_buf_init(&t->in, 1);
}

wa_slice wa_proxy_tunnel_output(const wa_proxy_tunnel *t)
{
    return wa_slice_make(t->out, t->out_len);
}

void wa_proxy_tunnel_output_done(wa_proxy_tunnel *t)
{
    wa_wipe(t->out, t->out_len);
    t->out_len = 0;
}

int wa_proxy_tunnel_done(const wa_proxy_tunnel *t)
{
    return t->step == ST_DONE;
}

const char *wa_proxy_tunnel_error(const wa_proxy_tunnel *t)
{
    return t->err ? t->error : "";
}

static const char *socks_reply_text(uint8_t rep)
{
    static const char *const texts[] = {
        "succeeded",
        "general SOCKS server failure",
        "connection not allowed by ruleset",
        "network unreachable",
        "host unreachable",
        "connection refused",
        "TTL expired",
        "command not supported",
        "address type not supported",
    };

    return rep < WA_ARRAY_SIZE(texts) ? texts[rep] : "unassigned";
}

/* Bytes the current SOCKS5 message needs in total, given what has arrived (0 = unknown yet). */
static size_t socks_need(const wa_proxy_tunnel *t)
{
    const uint8_t *d = t->in.data;

    if (t->step != ST_REPLY)
        return 2;
    if (t->in.len < 5)
        return 5;
    switch (d[3]) {
    case SOCKS5_ATYP_IPV4:
        return 4 + 4 + 2;
    case SOCKS5_ATYP_IPV6:
        return 4 + 16 + 2;
    default: /* SOCKS5_ATYP_DOMAIN, checked before */
        return 4 + 1 + (size_t)d[4] + 2;
    }
}

/* Check the bytes of the current message so far; WA_EAGAIN while incomplete, 0 when complete
 * and accepted (the next request queued), or the error. */
static int socks_check(wa_proxy_tunnel *t)
{
    const uint8_t *d = t->in.data;
    size_t n = t->in.len;

    switch (t->step) {
    case ST_METHOD:
        if (d[0] != SOCKS5_VERSION)
            return fail(t, WA_EPROTO, "not a SOCKS5 proxy (reply version %u)", d[0]);
        if (n < 2)
            return WA_EAGAIN;
        if (d[1] == SOCKS5_M_NONE_OK)
            return fail(t, WA_EPROXYAUTH,
                        t->has_auth ? "SOCKS5 proxy accepts none of our authentication methods"
                                    : "SOCKS5 proxy requires authentication (no credentials "
                                      "given)");
        if (d[1] == SOCKS5_M_USERPASS && t->has_auth) {
            socks_auth(t);
            t->step = ST_AUTH;
        } else if (d[1] == SOCKS5_M_NONE) {
            wa_wipe(t->user, sizeof t->user);
            wa_wipe(t->pass, sizeof t->pass);
            socks_connect(t);
            t->step = ST_REPLY;
        } else {
            return fail(t, WA_EPROTO, "SOCKS5 proxy chose method %u, which we did not offer", d[1]);
        }
        return 0;
    case ST_AUTH:
        /* RFC 1929 says version 1; a few old servers echo 5 */
        if (d[0] != SOCKS5_AUTH_VER && d[0] != SOCKS5_VERSION)
            return fail(t, WA_EPROTO, "malformed SOCKS5 authentication reply (version %u)", d[0]);
        if (n < 2)
            return WA_EAGAIN;
        if (d[1] != 0)
            return fail(t, WA_EPROXYAUTH, "proxy authentication failed");
        socks_connect(t);
        t->step = ST_REPLY;
        return 0;
    case ST_REPLY:
        if (d[0] != SOCKS5_VERSION)
            return fail(t, WA_EPROTO, "malformed SOCKS5 reply (version %u)", d[0]);
        if (n < 2)
            return WA_EAGAIN;
        if (d[1] != 0)
            return fail(t, WA_EPROXY, "proxy refused connection: SOCKS5 reply %u (%s)", d[1],
                        socks_reply_text(d[1]));
        if (n < 4)
            return WA_EAGAIN;
        if (d[3] != SOCKS5_ATYP_IPV4 && d[3] != SOCKS5_ATYP_IPV6 && d[3] != SOCKS5_ATYP_DOMAIN)
            return fail(t, WA_EPROTO, "malformed SOCKS5 reply (address type %u)", d[3]);
        if (n < socks_need(t))
            return WA_EAGAIN;
        t->step = ST_DONE;
        return 0;
    default:
        return fail(t, WA_ESTATE, "proxy handshake in a bad state");
    }
}

static int socks_feed(wa_proxy_tunnel *t, const uint8_t *data, size_t len, size_t *used)
{
    size_t off = 0, take;
    int rc;

    while (off < len) {
        /* up to the end of the current message (or of its fixed head while its length is not
         * known yet), so the bytes after the last reply stay the caller's */
        take = socks_need(t) - t->in.len;
        if (take > len - off)
            take = len - off;
        rc = wa_buf_append(&t->in, data + off, take);
        if (rc)
            return fail(t, rc, "proxy reply buffer: %s", wa_strerror(rc));
        off += take;
        rc = socks_check(t);
        if (rc == WA_EAGAIN)
            continue;
        if (rc)
            return rc;
        wa_buf_reset(&t->in); /* message complete; the next request is queued */
        if (t->step == ST_DONE) {
            wa_buf_cleanup(&t->in);
            *used = off;
            return 0;
        }
    }
    *used = off;
    return WA_EAGAIN;
}

static void sanitize(char *dst, size_t cap, const uint8_t *src, size_t n)
{
    size_t i, o = 0;

    for (i = 0; i < n && o + 1 < cap; i++)
        dst[o++] = src[i] >= 0x20 && src[i] < 0x7f ? (char)src[i] : '?';
    dst[o] = '\0';
}

/* Parse the status line of a complete header block in t->in. */
static int http_status(wa_proxy_tunnel *t)
{
    const uint8_t *d = t->in.data;
    const uint8_t *nl = memchr(d, '\n', t->in.len);
    char reason[WA_PROXY_MAX_REASON + 1];
    size_t n = (size_t)(nl - d);
    int code;

    if (n > 0 && d[n - 1] == '\r')
        n--;
    /* HTTP-version SP status-code [SP reason-phrase] (RFC 9112 4) */
    if (n < 12 || memcmp(d, "HTTP/1.", 7) != 0 || d[7] < '0' || d[7] > '9' || d[8] != ' ' ||
        d[9] < '1' || d[9] > '5' || d[10] < '0' || d[10] > '9' || d[11] < '0' || d[11] > '9' ||
        (n > 12 && d[12] != ' '))
        return fail(t, WA_EPROTO, "malformed HTTP proxy response");
    code = (d[9] - '0') * 100 + (d[10] - '0') * 10 + (d[11] - '0');
    reason[0] = '\0';
    if (n > 13) {
        reason[0] = ' ';
        sanitize(reason + 1, sizeof reason - 1, d + 13, n - 13);
    }
    if (code == 200)
        return 0;
    if (code == 401 || code == 407)
        return fail(t, WA_EPROXYAUTH, "HTTP proxy answered %d%s (proxy authentication failed)",
                    code, reason);
    return fail(t, WA_EPROXY, "HTTP proxy answered %d%s", code, reason);
}

static int http_feed(wa_proxy_tunnel *t, const uint8_t *data, size_t len, size_t *used)
{
    size_t i, end = 0;
    int rc;

    for (i = 0; i < len; i++) {
        if (data[i] == '\n') {
            if (t->line_len == 0) {
                /* the empty line ends the block (an empty first line is a bad status line) */
                end = i + 1;
                break;
            }
            t->line_len = 0;
        } else if (data[i] != '\r') {
            t->line_len++;
        }
    }
    rc = wa_buf_append(&t->in, data, end ? end : len);
    if (rc == WA_ELIMIT)
        return fail(t, WA_ELIMIT, "HTTP proxy response header over %d bytes",
                    WA_PROXY_MAX_HTTP_HEADER);
    if (rc)
        return fail(t, rc, "proxy reply buffer: %s", wa_strerror(rc));
    if (!end) {
        *used = len;
        return WA_EAGAIN;
    }
    rc = http_status(t);
    if (rc)
        return rc;
    wa_buf_cleanup(&t->in);
    t->step = ST_DONE;
    *used = end;
    return 0;
}

int wa_proxy_tunnel_feed(wa_proxy_tunnel *t, const uint8_t *data, size_t len, size_t *used)
{
    if (t->err)
        return t->err;
    if (t->step == ST_DONE) {
        *used = 0;
        return 0;
    }
    if (len == 0) {
        *used = 0;
        return WA_EAGAIN;
    }
    if (t->step == ST_HTTP)
        return http_feed(t, data, len, used);
    if (t->step == ST_FAILED) /* never initialised */
        return WA_ESTATE;
    return socks_feed(t, data, len, used);
}
