/*
 * handshake.c - the WebSocket opening handshake over HTTP/1.1 (RFC 6455 section 4; message
 * syntax of RFC 9112/9110).
 *
 * Client: writes the GET upgrade request and checks the server's 101 (4.1): status 101,
 * "Upgrade: websocket" and "Connection: upgrade" (tokens, case-insensitive), and
 * Sec-WebSocket-Accept = base64(SHA-1(key || GUID)) for the key we sent; no extension may be
 * imposed, since we offer none.
 * Server: parses the request (4.2.1): GET, origin-form request-target, Host, Upgrade,
 * Connection, a Sec-WebSocket-Key of 16 base64 bytes and Sec-WebSocket-Version 13 (otherwise 426
 * with the version we speak, 4.4). Origin is optional and left to the caller to judge.
 *
 * The server refuses a request as soon as its first bytes cannot begin "GET " (405 for another
 * method, 400 for bytes that are no HTTP at all, such as a TLS ClientHello), without waiting for
 * the header block to end.
 * Both sides take a header block of at most WA_WS_HTTP_MAX bytes, require CRLF line ends and
 * refuse obsolete line folding. Bytes after the block (frames sent right behind the 101) stay in
 * the input for the frame parser.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/util.h"
#include "wa/error.h"
#include "ws/internal.h"
#include "ws/ws.h"

#define WS_GUID      "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_MAX   64 /* longest key wa_ws_accept_key hashes; a valid key has 24 chars */
#define WS_KEY_LEN   24 /* base64 of 16 bytes, with padding */
#define WS_NONCE_LEN 16

int wa_ws_accept_key(char out[WA_WS_ACCEPT_LEN + 1], const char *key, size_t key_len)
{
    uint8_t buf[WS_KEY_MAX + sizeof WS_GUID];
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (!out || (key_len && !key) || key_len > WS_KEY_MAX)
        return WA_EINVAL;
    if (key_len)
        memcpy(buf, key, key_len);
    memcpy(buf + key_len, WS_GUID, sizeof WS_GUID - 1);
    if (EVP_Digest(buf, key_len + sizeof WS_GUID - 1, md, &mdlen, EVP_sha1(), NULL) != 1 ||
        mdlen != 20)
        return WA_ECRYPTO;
    wa_base64_encode(out, md, 20, 0);
    return 0;
}

/* --- small lexical helpers ------------------------------------------------------------- */

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Case-insensitive equality of p[0..n) and the NUL-terminated s. */
static int ieq(const uint8_t *p, size_t n, const char *s)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (s[i] == '\0' || lower(p[i]) != lower((unsigned char)s[i]))
            return 0;
    return s[n] == '\0';
}

/* tchar of RFC 9110 5.6.2 */
static int is_tchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* field-value characters: VCHAR, obs-text, SP, HTAB */
static int is_field_char(int c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7F);
}

/* visible ASCII, no space: request-target, Host */
static int is_vchar(int c)
{
    return c > 0x20 && c < 0x7F;
}

static int all_vchar(const char *s)
{
    for (; *s; s++)
        if (!is_vchar((unsigned char)*s))
            return 0;
    return 1;
}

/* Does the comma-separated list p[0..n) hold `token` (case-insensitive)? */
static int list_has_token(const uint8_t *p, size_t n, const char *token)
{
    size_t i = 0;

    while (i < n) {
        size_t a, b;

        while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == ','))
            i++;
        a = i;
        while (i < n && p[i] != ',')
            i++;
        b = i;
        while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t'))
            b--;
        if (b > a && ieq(p + a, b - a, token))
            return 1;
    }
    return 0;
}

/* "Name: value\r\n" lines, as the caller passes for extra headers. */
static int valid_extra_headers(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    if (!p)
        return 1;
    while (*p) {
        const unsigned char *name = p;

        while (is_tchar(*p))
            p++;
        if (p == name || *p != ':')
            return 0;
        p++;
        while (*p && *p != '\r' && is_field_char(*p))
            p++;
        if (p[0] != '\r' || p[1] != '\n')
            return 0;
        p += 2;
    }
    return 1;
}

/* Append NUL-terminated strings up to a NULL. */
static int put_strs(wa_buf *b, ...)
{
    va_list ap;
    const char *s;
    int rc = 0;

    va_start(ap, b);
    while ((s = va_arg(ap, const char *)) != NULL) {
        rc = wa_buf_append(b, s, strlen(s));
        if (rc)
            break;
    }
    va_end(ap);
    return rc;
}

/* --- header block ---------------------------------------------------------------------- */

/* Find the end of the header block at in_pos. 0 with *block_len (including the blank line),
 * WA_EAGAIN, or WA_ELIMIT when WA_WS_HTTP_MAX bytes hold no blank line. Resumes the search
 * where the last call stopped, so byte-wise feeding stays linear. */
static int find_block(wa_ws *ws, size_t *block_len)
{
    size_t avail = ws->in.len - ws->in_pos;
    size_t lim = avail < WA_WS_HTTP_MAX ? avail : WA_WS_HTTP_MAX;
    size_t i = ws->hs_scan > 3 ? ws->hs_scan - 3 : 0;
    const uint8_t *p;

    if (avail == 0)
        return WA_EAGAIN;
    p = ws->in.data + ws->in_pos;
    for (; i + 4 <= lim; i++) {
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') {
            *block_len = i + 4;
            ws->hs_scan = 0;
            return 0;
        }
    }
    if (avail >= WA_WS_HTTP_MAX)
        return WA_ELIMIT;
    ws->hs_scan = lim;
    return WA_EAGAIN;
}

typedef struct hdr_field {
    const uint8_t *name;
    size_t name_len;
    const uint8_t *value;
    size_t value_len;
} hdr_field;

/* Next "name: value\r\n" line of [*pp, end), end being the start of the blank line. 1 with *f,
 * 0 at the end, WA_EHTTP when malformed. */
static int next_field(const uint8_t **pp, const uint8_t *end, hdr_field *f)
{
    const uint8_t *p = *pp, *v, *ve;

    if (p >= end)
        return 0;
    f->name = p;
    while (p < end && is_tchar(*p))
        p++;
    /* also refuses obs-fold (a line starting with SP/HTAB) and space before the colon */
    if (p == f->name || p >= end || *p != ':')
        return WA_EHTTP;
    f->name_len = (size_t)(p - f->name);
    p++;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    v = p;
    while (p < end && *p != '\r' && is_field_char(*p))
        p++;
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
        return WA_EHTTP;
    ve = p;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    f->value = v;
    f->value_len = (size_t)(ve - v);
    *pp = p + 2;
    return 1;
}

/* Offset of the first CRLF in p[0..n) (the end of the start line), or n if none. */
static size_t line_end(const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i + 1 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n')
            return i;
    return n;
}

/* --- client ---------------------------------------------------------------------------- */

int wa_ws_client_handshake(wa_ws *ws, wa_buf *out, const char *host, const char *path,
                           const char *origin, const char *extra_headers)
{
    uint8_t nonce[WS_NONCE_LEN];
    char key[WS_KEY_LEN + 1];
    char accept[WA_WS_ACCEPT_LEN + 1];
    size_t start;
    int rc;

    if (!ws || !out)
        return WA_EINVAL;
    if (ws->role != WA_WS_CLIENT || ws->state != WA_WS_ST_IDLE)
        return WA_ESTATE;
    if (!path)
        path = "/";
    if (!origin)
        origin = WA_WS_DEFAULT_ORIGIN;
    if (!host || !*host || !all_vchar(host) || path[0] != '/' || !all_vchar(path))
        return WA_EINVAL;
    /* an Origin is a serialized origin: no control characters, no spaces */
    if (!all_vchar(origin) || !valid_extra_headers(extra_headers))
        return WA_EINVAL;
    if (wa_random(nonce, sizeof nonce))
        return WA_EIO;
    wa_base64_encode(key, nonce, sizeof nonce, 0);
    rc = wa_ws_accept_key(accept, key, WS_KEY_LEN);
    if (rc)
        return rc;
    start = out->len;
    rc = put_strs(out, "GET ", path, " HTTP/1.1\r\nHost: ", host,
                  "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ", key,
                  "\r\nSec-WebSocket-Version: 13\r\n", (const char *)NULL);
    if (!rc && *origin)
        rc = put_strs(out, "Origin: ", origin, "\r\n", (const char *)NULL);
    if (!rc)
        rc = put_strs(out, extra_headers ? extra_headers : "", "\r\n", (const char *)NULL);
    if (rc) {
        out->len = start;
        return rc;
    }
    memcpy(ws->accept, accept, sizeof accept);
    ws->state = WA_WS_ST_AWAIT_RESPONSE;
    return 0;
}

/* "HTTP/1.1 101 Switching Protocols": 0 with *status, or WA_EHTTP. */
static int parse_status_line(const uint8_t *p, size_t n, int *status)
{
    static const char proto[] = "HTTP/1.1 ";
    size_t i;

    if (n < sizeof proto - 1 + 3 || memcmp(p, proto, sizeof proto - 1) != 0)
        return WA_EHTTP;
    p += sizeof proto - 1;
    n -= sizeof proto - 1;
    for (i = 0; i < 3; i++)
        if (p[i] < '0' || p[i] > '9')
            return WA_EHTTP;
    if (n > 3 && p[3] != ' ')
        return WA_EHTTP;
    for (i = 4; i < n; i++)
        if (!is_field_char(p[i]))
            return WA_EHTTP;
    *status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    return 0;
}

int wa__ws_parse_response(wa_ws *ws, wa_ws_event *ev)
{
    const uint8_t *p, *q, *end;
    size_t block, sl;
    int rc, status = 0, upgrade = 0, connection = 0, accepts = 0, accept_ok = 0;
    hdr_field f;

    rc = find_block(ws, &block);
    if (rc == WA_ELIMIT)
        return wa__ws_fail(ws, rc, 0, "response header block too large");
    if (rc)
        return rc;
    p = ws->in.data + ws->in_pos;
    end = p + block - 2;
    sl = line_end(p, block);
    if (parse_status_line(p, sl, &status))
        return wa__ws_fail(ws, WA_EHTTP, 0, "malformed status line");
    ws->http_status = (uint16_t)status;
    if (status != 101)
        return wa__ws_fail(ws, WA_EHTTP, 0, "status not 101");
    q = p + sl + 2;
    while ((rc = next_field(&q, end, &f)) == 1) {
        if (ieq(f.name, f.name_len, "upgrade")) {
            upgrade |= list_has_token(f.value, f.value_len, "websocket");
        } else if (ieq(f.name, f.name_len, "connection")) {
            connection |= list_has_token(f.value, f.value_len, "upgrade");
        } else if (ieq(f.name, f.name_len, "sec-websocket-accept")) {
            accepts++;
            accept_ok = f.value_len == WA_WS_ACCEPT_LEN &&
                        wa_ct_equal(f.value, ws->accept, WA_WS_ACCEPT_LEN);
        } else if (ieq(f.name, f.name_len, "sec-websocket-extensions") && f.value_len) {
            return wa__ws_fail(ws, WA_EHTTP, 0, "extension not offered");
        }
    }
    if (rc < 0)
        return wa__ws_fail(ws, WA_EHTTP, 0, "malformed header field");
    if (!upgrade)
        return wa__ws_fail(ws, WA_EHTTP, 0, "missing Upgrade: websocket");
    if (!connection)
        return wa__ws_fail(ws, WA_EHTTP, 0, "missing Connection: upgrade");
    if (accepts != 1 || !accept_ok)
        return wa__ws_fail(ws, WA_EHTTP, 0, "bad Sec-WebSocket-Accept");
    ws->in_pos += block;
    ws->state = WA_WS_ST_OPEN;
    memset(ev, 0, sizeof *ev);
    ev->type = WA_WS_EV_OPEN;
    return 0;
}

/* --- server ---------------------------------------------------------------------------- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return status < 500 ? "Client Error" : status < 600 ? "Server Error" : "Redirect";
    }
}

int wa__ws_write_http_error(wa_buf *dst, int status, const char *body)
{
    char line[64], clen[32];
    size_t start = dst->len;
    int rc;

    if (!body)
        body = reason_phrase(status);
    snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, reason_phrase(status));
    snprintf(clen, sizeof clen, "%zu", strlen(body));
    rc = put_strs(dst, line, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: ", clen,
                  "\r\nConnection: close\r\n", status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "",
                  "\r\n", body, (const char *)NULL);
    if (rc)
        dst->len = start;
    return rc;
}

/* Refuse a request: queue the HTTP error for take_output and fail with err. */
static int refuse(wa_ws *ws, int err, int status, const char *reason)
{
    /* Best effort: without the response the transport close still tells the client. */
    if (wa__ws_write_http_error(&ws->out, status, NULL) == 0)
        ws->http_status = (uint16_t)status;
    return wa__ws_fail(ws, err, 0, reason);
}

/* "GET /path HTTP/1.1": 0 with the target's offset and length, else an HTTP status. */
static int parse_request_line(const uint8_t *p, size_t n, size_t *t_off, size_t *t_len)
{
    static const char proto[] = " HTTP/1.1";
    size_t i = 0, t;

    while (i < n && is_tchar(p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ' ')
        return 400;
    if (i != 3 || memcmp(p, "GET", 3) != 0)
        return 405;
    t = ++i;
    while (i < n && is_vchar(p[i]))
        i++;
    /* origin-form only: the path and query of the resource */
    if (i == t || p[t] != '/')
        return 400;
    if (n - i != sizeof proto - 1 || memcmp(p + i, proto, sizeof proto - 1) != 0)
        return 400;
    *t_off = t;
    *t_len = i - t;
    return 0;
}

static int valid_key(const uint8_t *v, size_t n)
{
    uint8_t raw[WS_NONCE_LEN + 2];
    size_t raw_len = 0;

    if (n != WS_KEY_LEN || v[WS_KEY_LEN - 2] != '=' || v[WS_KEY_LEN - 1] != '=')
        return 0;
    if (wa_base64_decode(raw, sizeof raw, &raw_len, (const char *)v, n))
        return 0;
    return raw_len == WS_NONCE_LEN;
}

/* Can the bytes received so far start a GET request line? 0 while they are a prefix of "GET "
 * (or longer and start with it), else the status the request line will get: 405 for another
 * method token, 400 for bytes no request line starts with (a TLS ClientHello, 0x16 0x03, sent
 * to a ws:// port). Checked as bytes arrive, so such a request is refused at its first bytes
 * instead of once WA_WS_HTTP_MAX bytes have come (or never, when the peer waits for an
 * answer). */
static int method_prefix_status(const uint8_t *p, size_t n)
{
    static const char get[] = "GET ";
    size_t i;

    for (i = 0; i < n && i < sizeof get - 1; i++) {
        if (p[i] == (uint8_t)get[i])
            continue;
        /* another token (or a shorter one ended by SP) is a method we do not serve */
        return is_tchar(p[i]) || (p[i] == ' ' && i > 0) ? 405 : 400;
    }
    return 0;
}

int wa__ws_parse_request(wa_ws *ws, wa_ws_event *ev)
{
    const uint8_t *p, *q, *end;
    const uint8_t *host = NULL, *origin = NULL, *key = NULL;
    size_t block, sl, t_off = 0, t_len = 0, host_len = 0, origin_len = 0;
    int rc, status, upgrade = 0, connection = 0, version = 0;
    int hosts = 0, origins = 0, keys = 0, versions = 0;
    hdr_field f;

    status = ws->in.len > ws->in_pos
                 ? method_prefix_status(ws->in.data + ws->in_pos, ws->in.len - ws->in_pos)
                 : 0;
    if (status)
        return refuse(ws, WA_EHTTP, status,
                      status == 405 ? "method not GET" : "malformed request line");
    rc = find_block(ws, &block);
    if (rc == WA_ELIMIT)
        return refuse(ws, rc, 431, "request header block too large");
    if (rc)
        return rc;
    p = ws->in.data + ws->in_pos;
    end = p + block - 2;
    sl = line_end(p, block);
    status = parse_request_line(p, sl, &t_off, &t_len);
    if (status)
        return refuse(ws, WA_EHTTP, status,
                      status == 405 ? "method not GET" : "malformed request line");
    q = p + sl + 2;
    while ((rc = next_field(&q, end, &f)) == 1) {
        if (ieq(f.name, f.name_len, "host")) {
            hosts++;
            host = f.value;
            host_len = f.value_len;
        } else if (ieq(f.name, f.name_len, "origin")) {
            origins++;
            origin = f.value;
            origin_len = f.value_len;
        } else if (ieq(f.name, f.name_len, "upgrade")) {
            upgrade |= list_has_token(f.value, f.value_len, "websocket");
        } else if (ieq(f.name, f.name_len, "connection")) {
            connection |= list_has_token(f.value, f.value_len, "upgrade");
        } else if (ieq(f.name, f.name_len, "sec-websocket-key")) {
            keys++;
            if (valid_key(f.value, f.value_len))
                key = f.value;
        } else if (ieq(f.name, f.name_len, "sec-websocket-version")) {
            versions++;
            version = f.value_len == 2 && f.value[0] == '1' && f.value[1] == '3';
        }
    }
    if (rc < 0)
        return refuse(ws, WA_EHTTP, 400, "malformed header field");
    if (hosts != 1 || host_len == 0)
        return refuse(ws, WA_EHTTP, 400, "missing or repeated Host");
    if (origins > 1)
        return refuse(ws, WA_EHTTP, 400, "repeated Origin");
    if (!upgrade)
        return refuse(ws, WA_EHTTP, 400, "missing Upgrade: websocket");
    if (!connection)
        return refuse(ws, WA_EHTTP, 400, "missing Connection: upgrade");
    if (keys != 1 || !key)
        return refuse(ws, WA_EHTTP, 400, "bad Sec-WebSocket-Key");
    if (versions != 1 || !version)
        return refuse(ws, WA_EHTTP, 426, "Sec-WebSocket-Version not 13");
    rc = wa_ws_accept_key(ws->accept, (const char *)key, WS_KEY_LEN);
    if (rc)
        return refuse(ws, rc, 500, "accept hash failed");
    /* Keep a copy of the block: `in` may move while the caller decides. */
    rc = wa_buf_append(&ws->hs, p, block);
    if (rc)
        return refuse(ws, rc, 500, "out of memory");
    /* all offsets are below WA_WS_HTTP_MAX */
    ws->path_off = (uint16_t)t_off;
    ws->path_len = (uint16_t)t_len;
    ws->host_off = (uint16_t)(host - p);
    ws->host_len = (uint16_t)host_len;
    ws->origin_off = (uint16_t)(origin ? (size_t)(origin - p) : 0);
    ws->origin_len = (uint16_t)origin_len;
    ws->hdr_off = (uint16_t)(sl + 2);
    ws->in_pos += block;
    ws->state = WA_WS_ST_REQUEST;
    memset(ev, 0, sizeof *ev);
    ev->type = WA_WS_EV_HANDSHAKE_REQUEST;
    ev->path = wa_slice_make(ws->hs.data + ws->path_off, ws->path_len);
    ev->host = wa_slice_make(ws->hs.data + ws->host_off, ws->host_len);
    ev->origin = wa_slice_make(ws->hs.data + ws->origin_off, ws->origin_len);
    return 0;
}

int wa_ws_request_header(const wa_ws *ws, const char *name, wa_slice *value)
{
    const uint8_t *q, *end;
    hdr_field f;

    if (!ws || !name || !value)
        return WA_EINVAL;
    if (ws->state != WA_WS_ST_REQUEST || ws->err)
        return WA_ESTATE;
    q = ws->hs.data + ws->hdr_off;
    end = ws->hs.data + ws->hs.len - 2;
    /* the block was validated when the request was parsed */
    while (next_field(&q, end, &f) == 1) {
        if (ieq(f.name, f.name_len, name)) {
            *value = wa_slice_make(f.value, f.value_len);
            return 0;
        }
    }
    return WA_ENOTFOUND;
}

int wa_ws_server_accept(wa_ws *ws, const char *extra_headers, wa_buf *out)
{
    size_t start;
    int rc;

    if (!ws || !out)
        return WA_EINVAL;
    if (ws->err || ws->state != WA_WS_ST_REQUEST)
        return WA_ESTATE;
    if (!valid_extra_headers(extra_headers))
        return WA_EINVAL;
    start = out->len;
    rc = put_strs(out,
                  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Accept: ",
                  ws->accept, "\r\n", extra_headers ? extra_headers : "", "\r\n",
                  (const char *)NULL);
    if (rc) {
        out->len = start;
        return rc;
    }
    wa_buf_cleanup(&ws->hs);
    ws->state = WA_WS_ST_OPEN;
    ws->open_pending = 1;
    return 0;
}

int wa_ws_server_reject(wa_ws *ws, int status, const char *body, wa_buf *out)
{
    int rc;

    if (!ws || !out || status < 300 || status > 599)
        return WA_EINVAL;
    if (body && strlen(body) > WA_WS_REJECT_BODY_MAX)
        return WA_EINVAL;
    if (ws->err || ws->state != WA_WS_ST_REQUEST)
        return WA_ESTATE;
    rc = wa__ws_write_http_error(out, status, body);
    if (rc)
        return rc;
    ws->http_status = (uint16_t)status;
    wa_buf_cleanup(&ws->hs);
    wa_buf_cleanup(&ws->in);
    ws->in_pos = 0;
    ws->state = WA_WS_ST_CLOSED;
    return 0;
}
