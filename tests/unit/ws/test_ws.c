/* test_ws.c - WebSocket engine: RFC 6455 vectors (4.2.2 accept key, 5.7 example frames),
 * client<->server sessions in memory, every split point of multi-frame streams, bad input
 * (each with its error code, reason and close code), API misuse, allocation failure, and
 * the "idle connection holds no buffers" rule.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/util.h"
#include "wa/error.h"
#include "ws/internal.h"
#include "ws/ws.h"

#define BIG (1u << 26)

/* --- helpers --------------------------------------------------------------------------- */

typedef struct tlog {
    char s[16384];
    size_t n;
} tlog;

__attribute__((format(printf, 2, 3))) static void tlog_add(tlog *t, const char *fmt, ...)
{
    va_list ap;
    int k;

    va_start(ap, fmt);
    k = vsnprintf(t->s + t->n, sizeof t->s - t->n, fmt, ap);
    va_end(ap);
    assert_true(k >= 0 && (size_t)k < sizeof t->s - t->n);
    t->n += (size_t)k;
}

static uint32_t fnv(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static void log_event(tlog *t, const wa_ws_event *ev)
{
    switch (ev->type) {
    case WA_WS_EV_HANDSHAKE_REQUEST:
        tlog_add(t, "REQ %.*s|", (int)ev->path.len, (const char *)ev->path.ptr);
        break;
    case WA_WS_EV_OPEN:
        tlog_add(t, "OPEN|");
        break;
    case WA_WS_EV_MESSAGE:
        tlog_add(t, "MSG %d %zu %08x|", ev->opcode, ev->data.len, fnv(ev->data.ptr, ev->data.len));
        break;
    case WA_WS_EV_PING:
        tlog_add(t, "PING %.*s|", (int)ev->data.len, (const char *)ev->data.ptr);
        break;
    case WA_WS_EV_PONG:
        tlog_add(t, "PONG %.*s|", (int)ev->data.len, (const char *)ev->data.ptr);
        break;
    case WA_WS_EV_CLOSE:
        tlog_add(t, "CLOSE %d %.*s|", ev->close_code, (int)ev->data.len,
                 (const char *)ev->data.ptr);
        break;
    default:
        fail_msg("unknown event %d", ev->type);
    }
}

/* Pull events until the engine stops; returns its last code. */
static int drain(wa_ws *ws, tlog *t)
{
    wa_ws_event ev;
    int rc;

    while ((rc = wa_ws_next_event(ws, &ev)) == 0)
        log_event(t, &ev);
    return rc;
}

static int feed_str(wa_ws *ws, const char *s)
{
    return wa_ws_feed(ws, (const uint8_t *)s, strlen(s));
}

static int next(wa_ws *ws, wa_ws_event *ev)
{
    memset(ev, 0xA5, sizeof *ev);
    return wa_ws_next_event(ws, ev);
}

static void assert_slice_str(wa_slice s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    if (s.len)
        assert_memory_equal(s.ptr, want, s.len);
}

/* Move b's bytes into ws (then empty b). */
static void pipe_buf(wa_buf *b, wa_ws *ws)
{
    assert_int_equal(wa_ws_feed(ws, b->data, b->len), 0);
    wa_buf_reset(b);
}

static int buf_contains(const wa_buf *b, const char *s)
{
    size_t n = strlen(s), i;

    for (i = 0; i + n <= b->len; i++)
        if (memcmp(b->data + i, s, n) == 0)
            return 1;
    return 0;
}

/* Run a client handshake against a server engine; both end open (OPEN events consumed). */
static void connect_pair(wa_ws *c, wa_ws *s, size_t max)
{
    wa_buf b;
    wa_ws_event ev;

    wa_buf_init(&b, BIG);
    assert_int_equal(wa_ws_init(c, WA_WS_CLIENT, max), 0);
    assert_int_equal(wa_ws_init(s, WA_WS_SERVER, max), 0);
    assert_int_equal(wa_ws_client_handshake(c, &b, "web.whatsapp.com", "/ws/chat", NULL, NULL), 0);
    pipe_buf(&b, s);
    assert_int_equal(next(s, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_HANDSHAKE_REQUEST);
    assert_int_equal(wa_ws_server_accept(s, NULL, &b), 0);
    pipe_buf(&b, c);
    assert_int_equal(next(c, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_OPEN);
    assert_int_equal(next(s, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_OPEN);
    assert_int_equal(next(c, &ev), WA_EAGAIN);
    assert_int_equal(next(s, &ev), WA_EAGAIN);
    wa_buf_cleanup(&b);
}

static void assert_idle(const wa_ws *ws)
{
    assert_null(ws->in.data);
    assert_null(ws->msg.data);
    assert_null(ws->out.data);
    assert_null(ws->hs.data);
}

/* --- RFC known-answer vectors ---------------------------------------------------------- */

static void test_accept_key_rfc(void **state)
{
    char acc[WA_WS_ACCEPT_LEN + 1];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";

    (void)state;
    /* RFC 6455 1.3 and 4.2.2 */
    assert_int_equal(wa_ws_accept_key(acc, key, strlen(key)), 0);
    assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* RFC 6455 4.1 example key from section 1.2 */
    assert_int_equal(wa_ws_accept_key(acc, "x3JJHMbDL1EzLkh9GBhXDw==", 24), 0);
    assert_string_equal(acc, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    assert_int_equal(wa_ws_accept_key(acc, key, 65), WA_EINVAL);
}

static const uint8_t rfc_hello_unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t rfc_hello_masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                           0x7f, 0x9f, 0x4d, 0x51, 0x58};
static const uint8_t rfc_hel_lo[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
static const uint8_t rfc_ping_hello[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t rfc_pong_hello_masked[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                                0x7f, 0x9f, 0x4d, 0x51, 0x58};

/* RFC 6455 5.7 frames as received by a client (unmasked, from a server). */
static void test_rfc_frames_client_role(void **state)
{
    wa_ws c;
    wa_ws_event ev;
    wa_buf out;
    uint8_t big[10 + 65536];
    size_t i;

    (void)state;
    wa_buf_init(&out, 1 << 20);
    assert_int_equal(wa_ws_init_open(&c, WA_WS_CLIENT, 0), 0);

    assert_int_equal(wa_ws_feed(&c, rfc_hello_unmasked, sizeof rfc_hello_unmasked), 0);
    assert_int_equal(next(&c, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_MESSAGE);
    assert_int_equal(ev.opcode, WA_WS_OP_TEXT);
    assert_slice_str(ev.data, "Hello");
    assert_int_equal(next(&c, &ev), WA_EAGAIN);

    /* "Hel" + "lo": one message */
    assert_int_equal(wa_ws_feed(&c, rfc_hel_lo, sizeof rfc_hel_lo), 0);
    assert_int_equal(next(&c, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_MESSAGE);
    assert_int_equal(ev.opcode, WA_WS_OP_TEXT);
    assert_slice_str(ev.data, "Hello");
    assert_int_equal(next(&c, &ev), WA_EAGAIN);

    /* ping "Hello": reported, and a masked pong "Hello" is queued */
    assert_int_equal(wa_ws_feed(&c, rfc_ping_hello, sizeof rfc_ping_hello), 0);
    assert_int_equal(next(&c, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_PING);
    assert_slice_str(ev.data, "Hello");
    assert_int_equal(wa_ws_pending_output(&c), 11);
    assert_int_equal(wa_ws_take_output(&c, &out), 0);
    assert_int_equal(out.len, 11);
    assert_int_equal(out.data[0], 0x8a);
    assert_int_equal(out.data[1], 0x85);
    for (i = 0; i < 5; i++)
        assert_int_equal(out.data[6 + i] ^ out.data[2 + (i & 3)], "Hello"[i]);
    assert_int_equal(wa_ws_pending_output(&c), 0);

    /* 256 bytes binary in a single unmasked message: 0x82 0x7E 0x0100 */
    big[0] = 0x82;
    big[1] = 0x7e;
    big[2] = 0x01;
    big[3] = 0x00;
    for (i = 0; i < 256; i++)
        big[4 + i] = (uint8_t)i;
    assert_int_equal(wa_ws_feed(&c, big, 4 + 256), 0);
    assert_int_equal(next(&c, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_MESSAGE);
    assert_int_equal(ev.opcode, WA_WS_OP_BINARY);
    assert_int_equal(ev.data.len, 256);
    assert_memory_equal(ev.data.ptr, big + 4, 256);

    /* 64 KiB binary: 0x82 0x7F 0x0000000000010000 */
    memset(big, 0, 10);
    big[0] = 0x82;
    big[1] = 0x7f;
    big[7] = 0x01;
    for (i = 0; i < 65536; i++)
        big[10 + i] = (uint8_t)(i * 7);
    assert_int_equal(wa_ws_feed(&c, big, sizeof big), 0);
    assert_int_equal(next(&c, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_MESSAGE);
    assert_int_equal(ev.data.len, 65536);
    assert_memory_equal(ev.data.ptr, big + 10, 65536);
    assert_int_equal(next(&c, &ev), WA_EAGAIN);
    assert_idle(&c);
    wa_ws_cleanup(&c);
    wa_buf_cleanup(&out);
}

/* RFC 6455 5.7 masked frames as received by a server. */
static void test_rfc_frames_server_role(void **state)
{
    wa_ws s;
    wa_ws_event ev;

    (void)state;
    assert_int_equal(wa_ws_init_open(&s, WA_WS_SERVER, 0), 0);
    assert_int_equal(wa_ws_feed(&s, rfc_hello_masked, sizeof rfc_hello_masked), 0);
    assert_int_equal(wa_ws_feed(&s, rfc_pong_hello_masked, sizeof rfc_pong_hello_masked), 0);
    assert_int_equal(next(&s, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_MESSAGE);
    assert_int_equal(ev.opcode, WA_WS_OP_TEXT);
    assert_slice_str(ev.data, "Hello");
    assert_int_equal(next(&s, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_PONG);
    assert_slice_str(ev.data, "Hello");
    assert_int_equal(next(&s, &ev), WA_EAGAIN);
    assert_int_equal(wa_ws_pending_output(&s), 0);
    assert_idle(&s);
    wa_ws_cleanup(&s);
}

/* A server's frames are unmasked, so they must match RFC 6455 5.7 byte for byte. */
static void test_encode_server_frames(void **state)
{
    wa_ws s;
    wa_buf out;
    static uint8_t data[65536];
    static const uint8_t h256[] = {0x82, 0x7e, 0x01, 0x00};
    static const uint8_t h64k[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0, 0};

    (void)state;
    wa_buf_init(&out, 1 << 20);
    assert_int_equal(wa_ws_init_open(&s, WA_WS_SERVER, 0), 0);
    assert_int_equal(wa_ws_send(&s, WA_WS_OP_TEXT, "Hello", 5, &out), 0);
    assert_int_equal(out.len, sizeof rfc_hello_unmasked);
    assert_memory_equal(out.data, rfc_hello_unmasked, out.len);
    wa_buf_reset(&out);

    assert_int_equal(wa_ws_send_frame(&s, WA_WS_OP_TEXT, 0, "Hel", 3, &out), 0);
    assert_int_equal(wa_ws_send_frame(&s, WA_WS_OP_CONT, 1, "lo", 2, &out), 0);
    assert_int_equal(out.len, sizeof rfc_hel_lo);
    assert_memory_equal(out.data, rfc_hel_lo, out.len);
    wa_buf_reset(&out);

    assert_int_equal(wa_ws_send(&s, WA_WS_OP_PING, "Hello", 5, &out), 0);
    assert_memory_equal(out.data, rfc_ping_hello, sizeof rfc_ping_hello);
    wa_buf_reset(&out);

    memset(data, 0x5a, sizeof data);
    assert_int_equal(wa_ws_send(&s, WA_WS_OP_BINARY, data, 256, &out), 0);
    assert_int_equal(out.len, 4 + 256);
    assert_memory_equal(out.data, h256, 4);
    wa_buf_reset(&out);
    assert_int_equal(wa_ws_send(&s, WA_WS_OP_BINARY, data, 65536, &out), 0);
    assert_int_equal(out.len, 10 + 65536);
    assert_memory_equal(out.data, h64k, 10);
    assert_memory_equal(out.data + 10, data, 65536);
    wa_buf_reset(&out);
    /* 125 and 126 are the 7-bit / 16-bit boundary, 65535 / 65536 the 16 / 64-bit one */
    assert_int_equal(wa_ws_send(&s, WA_WS_OP_BINARY, data, 125, &out), 0);
    assert_int_equal(out.len, 2 + 125);
    assert_int_equal(out.data[1], 125);
    wa_buf_reset(&out);
    assert_int_equal(wa_ws_send(&s, WA_WS_OP_BINARY, data, 126, &out), 0);
    assert_int_equal(out.len, 4 + 126);
    assert_int_equal(out.data[1], 126);
    wa_buf_reset(&out);
    assert_int_equal(wa_ws_send(&s, WA_WS_OP_BINARY, data, 65535, &out), 0);
    assert_int_equal(out.len, 4 + 65535);
    wa_buf_reset(&out);
    assert_int_equal(wa_ws_send(&s, WA_WS_OP_BINARY, NULL, 0, &out), 0);
    assert_int_equal(out.len, 2);
    assert_int_equal(out.data[0], 0x82);
    assert_int_equal(out.data[1], 0x00);
    wa_ws_cleanup(&s);
    wa_buf_cleanup(&out);
}

/* A client masks every frame with a fresh key; unmasking gives the payload back. */
static void test_encode_client_masked(void **state)
{
    wa_ws c;
    wa_buf out;
    uint8_t data[300];
    size_t i;
    uint8_t mask1[4];

    (void)state;
    wa_buf_init(&out, 1 << 20);
    for (i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 3);
    assert_int_equal(wa_ws_init_open(&c, WA_WS_CLIENT, 0), 0);
    assert_int_equal(wa_ws_send(&c, WA_WS_OP_TEXT, "Hello", 5, &out), 0);
    assert_int_equal(out.len, 11);
    assert_int_equal(out.data[0], 0x81);
    assert_int_equal(out.data[1], 0x85);
    memcpy(mask1, out.data + 2, 4);
    for (i = 0; i < 5; i++)
        assert_int_equal(out.data[6 + i] ^ mask1[i & 3], "Hello"[i]);
    wa_buf_reset(&out);
    assert_int_equal(wa_ws_send(&c, WA_WS_OP_BINARY, data, sizeof data, &out), 0);
    assert_int_equal(out.len, 2 + 2 + 4 + 300);
    assert_int_equal(out.data[1], 0x80 | 126);
    assert_int_equal(out.data[2], 0x01);
    assert_int_equal(out.data[3], 0x2c);
    for (i = 0; i < sizeof data; i++)
        assert_int_equal(out.data[8 + i] ^ out.data[4 + (i & 3)], data[i]);
    /* a fresh mask per frame (the chance of two equal random keys is 2^-32) */
    assert_memory_not_equal(out.data + 4, mask1, 4);
    wa_ws_cleanup(&c);
    wa_buf_cleanup(&out);
}

static void test_utf8(void **state)
{
    static const struct {
        const char *s;
        int ok;
    } v[] = {
        {"", 1},
        {"plain ascii", 1},
        {"\xc3\xa9t\xc3\xa9", 1},
        {"\xe2\x82\xac", 1},
        {"\xf0\x9f\x98\x80", 1},
        {"\xf4\x8f\xbf\xbf", 1},     /* U+10FFFF */
        {"\xed\x9f\xbf", 1},         /* U+D7FF */
        {"\xc0\x80", 0},             /* overlong NUL */
        {"\xc1\xbf", 0},             /* overlong */
        {"\xe0\x9f\xbf", 0},         /* overlong 3-byte */
        {"\xf0\x8f\xbf\xbf", 0},     /* overlong 4-byte */
        {"\xed\xa0\x80", 0},         /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", 0},     /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 0},     /* bad lead */
        {"\x80", 0},                 /* lone continuation */
        {"\xe2\x82", 0},             /* truncated */
        {"\xe2\x28\xac", 0},         /* bad continuation */
        {"\xce\xba\xe1\xbd\xb9", 1}, /* "κό" */
    };
    size_t i;

    (void)state;
    for (i = 0; i < WA_ARRAY_SIZE(v); i++)
        assert_int_equal(wa__ws_utf8_valid((const uint8_t *)v[i].s, strlen(v[i].s)), v[i].ok);
}

/* --- sessions -------------------------------------------------------------------------- */

static void test_session(void **state)
{
    wa_ws c, s;
    wa_buf b;
    wa_ws_event ev;
    wa_slice v;
    static uint8_t big[100000];
    size_t i;

    (void)state;
    wa_buf_init(&b, BIG);
    for (i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i ^ (i >> 8));
    assert_int_equal(wa_ws_init(&c, WA_WS_CLIENT, 0), 0);
    assert_int_equal(wa_ws_init(&s, WA_WS_SERVER, 0), 0);
    assert_int_equal(wa_ws_state(&c), WA_WS_ST_IDLE);
    assert_int_equal(wa_ws_state(&s), WA_WS_ST_AWAIT_REQUEST);
    assert_int_equal(next(&c, &ev), WA_ESTATE); /* nothing to read before the request */

    assert_int_equal(wa_ws_client_handshake(&c, &b, "web.whatsapp.com", "/ws/chat?ed=1", NULL,
                                            "User-Agent: libwa-test\r\nX-Trace: 7\r\n"),
                     0);
    assert_true(b.len > 0);
    {
        static const char head[] = "GET /ws/chat?ed=1 HTTP/1.1\r\nHost: web.whatsapp.com\r\n";
        assert_memory_equal(b.data, head, sizeof head - 1);
    }
    assert_true(buf_contains(&b, "\r\nOrigin: https://web.whatsapp.com\r\n"));
    assert_true(buf_contains(&b, "\r\nSec-WebSocket-Version: 13\r\n"));
    assert_true(buf_contains(&b, "\r\nUser-Agent: libwa-test\r\nX-Trace: 7\r\n\r\n"));
    assert_int_equal(wa_ws_state(&c), WA_WS_ST_AWAIT_RESPONSE);
    assert_int_equal(next(&c, &ev), WA_EAGAIN);

    pipe_buf(&b, &s);
    assert_int_equal(next(&s, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_HANDSHAKE_REQUEST);
    assert_slice_str(ev.path, "/ws/chat?ed=1");
    assert_slice_str(ev.host, "web.whatsapp.com");
    assert_slice_str(ev.origin, "https://web.whatsapp.com");
    assert_int_equal(wa_ws_state(&s), WA_WS_ST_REQUEST);
    assert_int_equal(wa_ws_request_header(&s, "user-agent", &v), 0);
    assert_slice_str(v, "libwa-test");
    assert_int_equal(wa_ws_request_header(&s, "X-TRACE", &v), 0);
    assert_slice_str(v, "7");
    assert_int_equal(wa_ws_request_header(&s, "Cookie", &v), WA_ENOTFOUND);
    assert_int_equal(next(&s, &ev), WA_ESTATE); /* must accept or reject first */
    assert_int_equal(wa_ws_send(&s, WA_WS_OP_TEXT, "x", 1, &b), WA_ESTATE);

    assert_int_equal(wa_ws_server_accept(&s, "X-Server: wasim\r\n", &b), 0);
    assert_true(buf_contains(&b, "HTTP/1.1 101 Switching Protocols\r\n"));
    assert_true(buf_contains(&b, "\r\nX-Server: wasim\r\n\r\n"));
    assert_int_equal(wa_ws_request_header(&s, "user-agent", &v), WA_ESTATE);
    /* the server may talk right after its 101: both arrive in one read */
    assert_int_equal(wa_ws_send(&s, WA_WS_OP_BINARY, "\x00\x01\x02", 3, &b), 0);
    pipe_buf(&b, &c);
    assert_int_equal(next(&c, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_OPEN);
    assert_int_equal(wa_ws_http_status(&c), 101);
    assert_int_equal(next(&c, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_MESSAGE);
    assert_int_equal(ev.opcode, WA_WS_OP_BINARY);
    assert_int_equal(ev.data.len, 3);
    assert_memory_equal(ev.data.ptr, "\x00\x01\x02", 3);
    assert_int_equal(next(&c, &ev), WA_EAGAIN);
    assert_idle(&c);
    assert_int_equal(next(&s, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_OPEN);
    assert_int_equal(next(&s, &ev), WA_EAGAIN);
    assert_idle(&s);

    /* client -> server: text, big binary, empty message, ping */
    assert_int_equal(wa_ws_send(&c, WA_WS_OP_TEXT, "h\xc3\xa9llo", 6, &b), 0);
    assert_int_equal(wa_ws_send(&c, WA_WS_OP_BINARY, big, sizeof big, &b), 0);
    assert_int_equal(wa_ws_send(&c, WA_WS_OP_TEXT, "", 0, &b), 0);
    assert_int_equal(wa_ws_send(&c, WA_WS_OP_PING, "k1", 2, &b), 0);
    pipe_buf(&b, &s);
    assert_int_equal(next(&s, &ev), 0);
    assert_int_equal(ev.opcode, WA_WS_OP_TEXT);
    assert_slice_str(ev.data, "h\xc3\xa9llo");
    assert_int_equal(next(&s, &ev), 0);
    assert_int_equal(ev.opcode, WA_WS_OP_BINARY);
    assert_int_equal(ev.data.len, sizeof big);
    assert_memory_equal(ev.data.ptr, big, sizeof big);
    assert_int_equal(next(&s, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_MESSAGE);
    assert_int_equal(ev.data.len, 0);
    assert_int_equal(next(&s, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_PING);
    assert_slice_str(ev.data, "k1");
    assert_int_equal(next(&s, &ev), WA_EAGAIN);
    assert_int_equal(wa_ws_take_output(&s, &b), 0); /* the automatic pong */
    assert_idle(&s);

    /* server -> client: pong, fragmented text with a ping between fragments, ping */
    assert_int_equal(wa_ws_send_frame(&s, WA_WS_OP_TEXT, 0, "frag", 4, &b), 0);
    assert_int_equal(wa_ws_send(&s, WA_WS_OP_TEXT, "x", 1, &b), WA_ESTATE);
    assert_int_equal(wa_ws_send(&s, WA_WS_OP_PING, "mid", 3, &b), 0);
    assert_int_equal(wa_ws_send_frame(&s, WA_WS_OP_CONT, 0, "men", 3, &b), 0);
    assert_int_equal(wa_ws_send_frame(&s, WA_WS_OP_CONT, 1, "ted", 3, &b), 0);
    assert_int_equal(wa_ws_send_frame(&s, WA_WS_OP_CONT, 1, "x", 1, &b), WA_ESTATE);
    pipe_buf(&b, &c);
    assert_int_equal(next(&c, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_PONG);
    assert_slice_str(ev.data, "k1");
    assert_int_equal(next(&c, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_PING);
    assert_slice_str(ev.data, "mid");
    assert_int_equal(next(&c, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_MESSAGE);
    assert_int_equal(ev.opcode, WA_WS_OP_TEXT);
    assert_slice_str(ev.data, "fragmented");
    assert_int_equal(next(&c, &ev), WA_EAGAIN);
    assert_int_equal(wa_ws_take_output(&c, &b), 0);
    pipe_buf(&b, &s);
    assert_int_equal(next(&s, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_PONG);
    assert_slice_str(ev.data, "mid");
    assert_int_equal(next(&s, &ev), WA_EAGAIN);

    /* client closes; the server reports it and answers once; the client sees the answer */
    assert_int_equal(wa_ws_close(&c, WA_WS_CLOSE_NORMAL, "bye", &b), 0);
    assert_int_equal(wa_ws_state(&c), WA_WS_ST_CLOSING);
    assert_int_equal(wa_ws_send(&c, WA_WS_OP_TEXT, "late", 4, &b), WA_ECLOSED);
    assert_int_equal(wa_ws_close(&c, WA_WS_CLOSE_NORMAL, NULL, &b), WA_ECLOSED);
    pipe_buf(&b, &s);
    assert_int_equal(next(&s, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_CLOSE);
    assert_int_equal(ev.close_code, 1000);
    assert_slice_str(ev.data, "bye");
    assert_int_equal(wa_ws_state(&s), WA_WS_ST_CLOSED);
    assert_int_equal(next(&s, &ev), WA_ECLOSED);
    assert_int_equal(wa_ws_send(&s, WA_WS_OP_TEXT, "late", 4, &b), WA_ECLOSED);
    assert_int_equal(wa_ws_pending_output(&s), 4);
    assert_int_equal(wa_ws_take_output(&s, &b), 0);
    assert_int_equal(b.data[0], 0x88);
    assert_int_equal(b.data[1], 0x02);
    assert_int_equal(b.data[2], 0x03);
    assert_int_equal(b.data[3], 0xe8);
    assert_idle(&s);
    pipe_buf(&b, &c);
    assert_int_equal(next(&c, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_CLOSE);
    assert_int_equal(ev.close_code, 1000);
    assert_int_equal(wa_ws_pending_output(&c), 0); /* the initiator does not answer */
    assert_int_equal(next(&c, &ev), WA_ECLOSED);
    assert_int_equal(wa_ws_feed(&c, (const uint8_t *)"x", 1), WA_ECLOSED);
    assert_idle(&c);
    assert_null(wa_ws_error_reason(&c));
    wa_ws_cleanup(&c);
    wa_ws_cleanup(&s);
    wa_buf_cleanup(&b);
}

/* The server closes with no code; data sent before the reply is still delivered. */
static void test_server_close_no_code(void **state)
{
    wa_ws c, s;
    wa_buf b;
    wa_ws_event ev;

    (void)state;
    wa_buf_init(&b, BIG);
    connect_pair(&c, &s, 0);
    assert_int_equal(wa_ws_close(&s, 0, "x", &b), WA_EINVAL);
    assert_int_equal(wa_ws_close(&s, 0, NULL, &b), 0);
    assert_int_equal(b.len, 2);
    pipe_buf(&b, &c);
    assert_int_equal(wa_ws_send(&c, WA_WS_OP_BINARY, "tail", 4, &b), 0);
    assert_int_equal(next(&c, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_CLOSE);
    assert_int_equal(ev.close_code, WA_WS_CLOSE_NO_STATUS);
    assert_int_equal(ev.data.len, 0);
    assert_int_equal(wa_ws_take_output(&c, &b), 0);
    pipe_buf(&b, &s);
    assert_int_equal(next(&s, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_MESSAGE);
    assert_slice_str(ev.data, "tail");
    assert_int_equal(next(&s, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_CLOSE);
    assert_int_equal(ev.close_code, WA_WS_CLOSE_NO_STATUS);
    assert_int_equal(wa_ws_pending_output(&s), 0);
    assert_int_equal(next(&s, &ev), WA_ECLOSED);
    wa_ws_cleanup(&c);
    wa_ws_cleanup(&s);
    wa_buf_cleanup(&b);
}

static void test_server_reject(void **state)
{
    wa_ws c, s;
    wa_buf b;
    wa_ws_event ev;

    (void)state;
    wa_buf_init(&b, BIG);
    assert_int_equal(wa_ws_init(&c, WA_WS_CLIENT, 0), 0);
    assert_int_equal(wa_ws_init(&s, WA_WS_SERVER, 0), 0);
    assert_int_equal(wa_ws_client_handshake(&c, &b, "localhost:8080", "/nope", "", NULL), 0);
    assert_false(buf_contains(&b, "Origin:"));
    pipe_buf(&b, &s);
    assert_int_equal(next(&s, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_HANDSHAKE_REQUEST);
    assert_slice_str(ev.origin, "");
    assert_slice_str(ev.host, "localhost:8080");
    assert_int_equal(wa_ws_server_reject(&s, 101, NULL, &b), WA_EINVAL);
    assert_int_equal(wa_ws_server_reject(&s, 404, "no such path", &b), 0);
    assert_true(buf_contains(&b, "HTTP/1.1 404 Not Found\r\n"));
    assert_true(buf_contains(&b, "Content-Length: 12\r\n"));
    assert_true(buf_contains(&b, "\r\n\r\nno such path"));
    assert_int_equal(wa_ws_state(&s), WA_WS_ST_CLOSED);
    assert_int_equal(wa_ws_http_status(&s), 404);
    assert_int_equal(next(&s, &ev), WA_ECLOSED);
    assert_int_equal(wa_ws_server_accept(&s, NULL, &b), WA_ESTATE);
    assert_idle(&s);
    /* the client sees a non-101 response */
    pipe_buf(&b, &c);
    assert_int_equal(next(&c, &ev), WA_EHTTP);
    assert_int_equal(wa_ws_http_status(&c), 404);
    assert_string_equal(wa_ws_error_reason(&c), "status not 101");
    assert_int_equal(next(&c, &ev), WA_EHTTP); /* sticky */
    wa_ws_cleanup(&c);
    wa_ws_cleanup(&s);
    wa_buf_cleanup(&b);
}

/* --- every split point ----------------------------------------------------------------- */

/* Feed `stream` to a fresh engine in two pieces cut at k (k == SIZE_MAX: byte by byte) and
 * record the events and the engine's output. */
static void run_split(int role, const uint8_t *stream, size_t len, size_t k, tlog *t, wa_buf *out)
{
    wa_ws ws;
    size_t cuts[2] = {k, len}, pos = 0, i;
    int rc = WA_EAGAIN;

    assert_int_equal(wa_ws_init_open(&ws, role, 1 << 20), 0);
    if (k == SIZE_MAX) {
        for (i = 0; i < len && (rc == WA_EAGAIN); i++) {
            assert_int_equal(wa_ws_feed(&ws, stream + i, 1), 0);
            rc = drain(&ws, t);
        }
    } else {
        for (i = 0; i < 2 && rc == WA_EAGAIN; i++) {
            assert_int_equal(wa_ws_feed(&ws, stream + pos, cuts[i] - pos), 0);
            pos = cuts[i];
            rc = drain(&ws, t);
        }
    }
    tlog_add(t, "END %d", rc);
    assert_int_equal(wa_ws_take_output(&ws, out), 0);
    wa_ws_cleanup(&ws);
}

/* The events and the engine's answers must be exactly `expect` / `expect_out` (server role;
 * the client's answers are masked with random keys, so only their length is known). */
static void check_all_splits(int role, const uint8_t *stream, size_t len, const char *expect,
                             const uint8_t *expect_out, size_t expect_out_len)
{
    static tlog t;
    wa_buf out;
    size_t k;

    wa_buf_init(&out, BIG);
    for (k = 0; k <= len + 1; k++) {
        memset(&t, 0, sizeof t);
        wa_buf_reset(&out);
        /* k == len + 1 stands for byte-by-byte feeding */
        run_split(role, stream, len, k <= len ? k : SIZE_MAX, &t, &out);
        assert_string_equal(t.s, expect);
        assert_int_equal(out.len, expect_out_len);
        if (role == WA_WS_SERVER)
            assert_memory_equal(out.data, expect_out, out.len);
    }
    wa_buf_cleanup(&out);
}

static uint8_t stream_bin[70000];

/* Frames a peer of `receiver_role` receives, written by an engine of the other role, and the
 * transcript the receiver must produce. */
static void build_stream(int receiver_role, wa_buf *b, size_t bin_len, tlog *expect)
{
    wa_ws w;
    size_t i;

    for (i = 0; i < sizeof stream_bin; i++)
        stream_bin[i] = (uint8_t)(i * 13 + 1);
    assert_true(bin_len <= sizeof stream_bin);
    assert_int_equal(
        wa_ws_init_open(&w, receiver_role == WA_WS_SERVER ? WA_WS_CLIENT : WA_WS_SERVER, 0), 0);
    assert_int_equal(wa_ws_send(&w, WA_WS_OP_TEXT, "Hello", 5, b), 0);
    assert_int_equal(wa_ws_send(&w, WA_WS_OP_PING, "p1", 2, b), 0);
    assert_int_equal(wa_ws_send_frame(&w, WA_WS_OP_BINARY, 0, "abc", 3, b), 0);
    assert_int_equal(wa_ws_send(&w, WA_WS_OP_PING, "mid", 3, b), 0);
    assert_int_equal(wa_ws_send_frame(&w, WA_WS_OP_CONT, 0, NULL, 0, b), 0);
    assert_int_equal(wa_ws_send_frame(&w, WA_WS_OP_CONT, 1, "def", 3, b), 0);
    assert_int_equal(wa_ws_send(&w, WA_WS_OP_BINARY, stream_bin, bin_len, b), 0);
    /* a 3-byte character split across fragments is fine once reassembled */
    assert_int_equal(wa_ws_send_frame(&w, WA_WS_OP_TEXT, 0, "\xe2", 1, b), 0);
    assert_int_equal(wa_ws_send_frame(&w, WA_WS_OP_CONT, 1, "\x82\xac", 2, b), 0);
    assert_int_equal(wa_ws_send(&w, WA_WS_OP_PONG, NULL, 0, b), 0);
    assert_int_equal(wa_ws_send(&w, WA_WS_OP_TEXT, NULL, 0, b), 0);
    assert_int_equal(wa_ws_close(&w, 4001, "done", b), 0);
    wa_ws_cleanup(&w);
    /* bytes after the close are ignored */
    assert_int_equal(wa_buf_append(b, "\x81\x01Z", 3), 0);

    memset(expect, 0, sizeof *expect);
    tlog_add(expect, "MSG 1 5 %08x|", fnv((const uint8_t *)"Hello", 5));
    tlog_add(expect, "PING p1|PING mid|");
    tlog_add(expect, "MSG 2 6 %08x|", fnv((const uint8_t *)"abcdef", 6));
    tlog_add(expect, "MSG 2 %zu %08x|", bin_len, fnv(stream_bin, bin_len));
    tlog_add(expect, "MSG 1 3 %08x|", fnv((const uint8_t *)"\xe2\x82\xac", 3));
    tlog_add(expect, "PONG |MSG 1 0 %08x|CLOSE 4001 done|END %d", fnv(NULL, 0), WA_ECLOSED);
}

/* pong "p1", pong "mid", close reply echoing 4001 */
static const uint8_t split_answers[] = {0x8a, 0x02, 'p',  '1',  0x8a, 0x03, 'm',
                                        'i',  'd',  0x88, 0x02, 0x0f, 0xa1};

static void test_split_server_role(void **state)
{
    wa_buf b;
    static tlog expect;

    (void)state;
    wa_buf_init(&b, BIG);
    build_stream(WA_WS_SERVER, &b, 300, &expect);
    check_all_splits(WA_WS_SERVER, b.data, b.len, expect.s, split_answers, sizeof split_answers);
    wa_buf_cleanup(&b);
}

static void test_split_client_role(void **state)
{
    wa_buf b;
    static tlog expect;

    (void)state;
    wa_buf_init(&b, BIG);
    build_stream(WA_WS_CLIENT, &b, 200, &expect);
    /* the same answers, each with a 4-byte mask */
    check_all_splits(WA_WS_CLIENT, b.data, b.len, expect.s, NULL, sizeof split_answers + 12);
    wa_buf_cleanup(&b);
}

/* A 64-bit length frame fed in pieces of several sizes. */
static void test_split_large(void **state)
{
    wa_buf b, out;
    static tlog ref, t;
    size_t steps[] = {1, 3, 7, 1000, 65536, 70001}, i, pos;

    (void)state;
    wa_buf_init(&b, BIG);
    wa_buf_init(&out, BIG);
    build_stream(WA_WS_SERVER, &b, 70000, &ref);
    assert_non_null(strstr(ref.s, "MSG 2 70000 "));
    for (i = 0; i < WA_ARRAY_SIZE(steps); i++) {
        wa_ws ws;
        int rc = WA_EAGAIN;

        memset(&t, 0, sizeof t);
        assert_int_equal(wa_ws_init_open(&ws, WA_WS_SERVER, 1 << 20), 0);
        for (pos = 0; pos < b.len && rc == WA_EAGAIN; pos += steps[i]) {
            size_t n = b.len - pos < steps[i] ? b.len - pos : steps[i];
            assert_int_equal(wa_ws_feed(&ws, b.data + pos, n), 0);
            rc = drain(&ws, &t);
        }
        tlog_add(&t, "END %d", rc);
        assert_string_equal(t.s, ref.s);
        wa_ws_cleanup(&ws);
    }
    wa_buf_cleanup(&b);
    wa_buf_cleanup(&out);
}

/* The handshake response (with frames right behind it) split at every point. */
static void test_split_handshake(void **state)
{
    wa_buf req, resp, frames;
    size_t k;
    wa_ws w;
    char expect[64];

    (void)state;
    snprintf(expect, sizeof expect, "OPEN|MSG 1 5 %08x|PING p|", fnv((const uint8_t *)"first", 5));
    wa_buf_init(&frames, BIG);
    assert_int_equal(wa_ws_init_open(&w, WA_WS_SERVER, 0), 0);
    assert_int_equal(wa_ws_send(&w, WA_WS_OP_TEXT, "first", 5, &frames), 0);
    assert_int_equal(wa_ws_send(&w, WA_WS_OP_PING, "p", 1, &frames), 0);
    wa_ws_cleanup(&w);
    for (k = 0;; k++) {
        wa_ws c, s;
        wa_ws_event ev;
        static tlog t;
        int rc;

        wa_buf_init(&req, BIG);
        wa_buf_init(&resp, BIG);
        memset(&t, 0, sizeof t);
        assert_int_equal(wa_ws_init(&c, WA_WS_CLIENT, 0), 0);
        assert_int_equal(wa_ws_init(&s, WA_WS_SERVER, 0), 0);
        assert_int_equal(wa_ws_client_handshake(&c, &req, "h", "/", NULL, NULL), 0);
        /* the request split at k too (k past its end: whole) */
        if (k < req.len) {
            assert_int_equal(wa_ws_feed(&s, req.data, k), 0);
            assert_int_equal(drain(&s, &t), WA_EAGAIN);
            assert_int_equal(wa_ws_feed(&s, req.data + k, req.len - k), 0);
        } else {
            assert_int_equal(wa_ws_feed(&s, req.data, req.len), 0);
        }
        assert_int_equal(next(&s, &ev), 0);
        assert_int_equal(ev.type, WA_WS_EV_HANDSHAKE_REQUEST);
        assert_slice_str(ev.host, "h");
        assert_int_equal(wa_ws_server_accept(&s, NULL, &resp), 0);
        assert_int_equal(wa_buf_append(&resp, frames.data, frames.len), 0);
        if (k > resp.len) {
            wa_ws_cleanup(&c);
            wa_ws_cleanup(&s);
            wa_buf_cleanup(&req);
            wa_buf_cleanup(&resp);
            break;
        }
        assert_int_equal(wa_ws_feed(&c, resp.data, k), 0);
        rc = drain(&c, &t);
        assert_int_equal(rc, WA_EAGAIN);
        assert_int_equal(wa_ws_feed(&c, resp.data + k, resp.len - k), 0);
        rc = drain(&c, &t);
        assert_int_equal(rc, WA_EAGAIN);
        assert_string_equal(t.s, expect);
        wa_ws_cleanup(&c);
        wa_ws_cleanup(&s);
        wa_buf_cleanup(&req);
        wa_buf_cleanup(&resp);
    }
    wa_buf_cleanup(&frames);
}

/* --- bad input ------------------------------------------------------------------------- */

typedef struct bad_case {
    const char *name;
    int role;
    const char *bytes;
    size_t len;
    int err;
    const char *reason;
    int close_code;
} bad_case;

#define B(s) s, sizeof(s) - 1

static void test_bad_frames(void **state)
{
    /* masked frames use the mask 00 00 00 00 so their payload reads plainly */
    static const bad_case v[] = {
        {"rsv1", WA_WS_SERVER, B("\xc1\x80\0\0\0\0"), WA_EPROTO, "reserved bits set", 1002},
        {"rsv3", WA_WS_CLIENT, B("\x92\x00"), WA_EPROTO, "reserved bits set", 1002},
        {"opcode 3", WA_WS_SERVER, B("\x83\x80\0\0\0\0"), WA_EPROTO, "unknown opcode", 1002},
        {"opcode 0xB", WA_WS_CLIENT, B("\x8b\x00"), WA_EPROTO, "unknown opcode", 1002},
        {"unmasked from client", WA_WS_SERVER, B("\x81\x05Hello"), WA_EPROTO,
         "unmasked frame from client", 1002},
        {"masked from server", WA_WS_CLIENT, B("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"),
         WA_EPROTO, "masked frame from server", 1002},
        {"ping 126", WA_WS_CLIENT, B("\x89\x7e\x00\x7e"), WA_EPROTO, "control frame over 125 bytes",
         1002},
        {"fragmented ping", WA_WS_CLIENT, B("\x09\x00"), WA_EPROTO, "fragmented control frame",
         1002},
        {"fragmented close", WA_WS_SERVER, B("\x08\x80\0\0\0\0"), WA_EPROTO,
         "fragmented control frame", 1002},
        {"continuation first", WA_WS_CLIENT, B("\x80\x01x"), WA_EPROTO, "unexpected continuation",
         1002},
        {"text inside fragments", WA_WS_CLIENT, B("\x01\x01x\x81\x01y"), WA_EPROTO,
         "new message inside a fragmented one", 1002},
        {"64-bit top bit", WA_WS_CLIENT, B("\x82\x7f\x80\0\0\0\0\0\0\x01"), WA_EPROTO,
         "64-bit length with the top bit set", 1002},
        {"too big 16-bit", WA_WS_CLIENT, B("\x82\x7e\x03\xe9"), WA_ELIMIT, "message too big", 1009},
        {"too big 64-bit", WA_WS_CLIENT, B("\x82\x7f\0\0\0\x01\0\0\0\0"), WA_ELIMIT,
         "message too big", 1009},
        {"too big fragmented", WA_WS_CLIENT,
         B("\x02\x7e\x01\xf4"
           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
           "\x80\x7e\x01\xf5"),
         WA_ELIMIT, "message too big", 1009},
        {"bad utf-8 text", WA_WS_CLIENT, B("\x81\x02\xc0\x80"), WA_EPROTO, "text message not UTF-8",
         1007},
        {"bad utf-8 fragments", WA_WS_CLIENT, B("\x01\x01\xe2\x80\x01\x28"), WA_EPROTO,
         "text message not UTF-8", 1007},
        {"close 1 byte", WA_WS_CLIENT, B("\x88\x01\x03"), WA_EPROTO, "close payload of 1 byte",
         1002},
        {"close 1005", WA_WS_CLIENT, B("\x88\x02\x03\xed"), WA_EPROTO, "invalid close code", 1002},
        {"close 999", WA_WS_CLIENT, B("\x88\x02\x03\xe7"), WA_EPROTO, "invalid close code", 1002},
        {"close 5000", WA_WS_CLIENT, B("\x88\x02\x13\x88"), WA_EPROTO, "invalid close code", 1002},
        {"close reason utf-8", WA_WS_CLIENT,
         B("\x88\x04\x03\xe8\xed"
           "\xa0"),
         WA_EPROTO, "close reason not UTF-8", 1007},
    };
    size_t i;

    (void)state;
    for (i = 0; i < WA_ARRAY_SIZE(v); i++) {
        wa_ws ws;
        wa_ws_event ev;
        wa_buf out;
        int rc;

        print_message("bad frame: %s\n", v[i].name);
        wa_buf_init(&out, 1 << 16);
        assert_int_equal(wa_ws_init_open(&ws, v[i].role, 1000), 0);
        assert_int_equal(wa_ws_feed(&ws, (const uint8_t *)v[i].bytes, v[i].len), 0);
        rc = next(&ws, &ev);
        if (rc == 0) /* a bad frame may follow a good one */
            rc = next(&ws, &ev);
        assert_int_equal(rc, v[i].err);
        assert_string_equal(wa_ws_error_reason(&ws), v[i].reason);
        assert_int_equal(wa_ws_error_close_code(&ws), v[i].close_code);
        assert_int_equal(wa_ws_state(&ws), WA_WS_ST_CLOSED);
        /* sticky */
        assert_int_equal(next(&ws, &ev), v[i].err);
        assert_int_equal(wa_ws_feed(&ws, (const uint8_t *)"\x81\x00", 2), v[i].err);
        assert_int_equal(wa_ws_send(&ws, WA_WS_OP_TEXT, "x", 1, &out), v[i].err);
        /* the close frame carrying the code is waiting to be sent */
        assert_int_equal(wa_ws_take_output(&ws, &out), 0);
        assert_int_equal(out.data[0], 0x88);
        if (v[i].role == WA_WS_CLIENT) {
            assert_int_equal(out.len, 8);
            assert_int_equal(out.data[1], 0x82);
            assert_int_equal(((out.data[6] ^ out.data[2]) << 8) | (out.data[7] ^ out.data[3]),
                             v[i].close_code);
        } else {
            assert_int_equal(out.len, 4);
            assert_int_equal(out.data[1], 0x02);
            assert_int_equal((out.data[2] << 8) | out.data[3], v[i].close_code);
        }
        assert_idle(&ws);
        wa_ws_cleanup(&ws);
        wa_buf_cleanup(&out);
    }
}

/* An oversized message is refused from its header alone, before its payload arrives. */
static void test_too_big_early(void **state)
{
    wa_ws ws;
    wa_ws_event ev;
    static const uint8_t hdr[] = {0x82, 0xff, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3, 4};

    (void)state;
    assert_int_equal(wa_ws_init_open(&ws, WA_WS_SERVER, 0), 0);
    assert_int_equal(wa_ws_feed(&ws, hdr, sizeof hdr), 0);
    assert_int_equal(next(&ws, &ev), WA_ELIMIT);
    assert_int_equal(wa_ws_error_close_code(&ws), WA_WS_CLOSE_TOO_BIG);
    wa_ws_cleanup(&ws);

    /* exactly max_message is fine */
    assert_int_equal(wa_ws_init_open(&ws, WA_WS_CLIENT, 4), 0);
    assert_int_equal(wa_ws_feed(&ws,
                                (const uint8_t *)"\x82\x04"
                                                 "abcd",
                                6),
                     0);
    assert_int_equal(next(&ws, &ev), 0);
    assert_int_equal(ev.data.len, 4);
    assert_int_equal(wa_ws_feed(&ws, (const uint8_t *)"\x82\x05", 2), 0);
    assert_int_equal(next(&ws, &ev), WA_ELIMIT);
    wa_ws_cleanup(&ws);
}

/* Feeding past the input cap without draining fails (sticky), never grows without bound. */
static void test_feed_cap(void **state)
{
    wa_ws ws;
    wa_ws_event ev;
    static uint8_t chunk[WA_WS_FEED_MAX];

    (void)state;
    memset(chunk, 0, sizeof chunk);
    assert_int_equal(wa_ws_init_open(&ws, WA_WS_CLIENT, 100), 0);
    /* WA_WS_FEED_MAX after draining: accepted */
    assert_int_equal(wa_ws_feed(&ws, chunk, sizeof chunk), 0);
    assert_int_equal(wa_ws_feed(&ws, chunk, sizeof chunk), WA_ELIMIT);
    assert_string_equal(wa_ws_error_reason(&ws), "input buffer full");
    assert_int_equal(next(&ws, &ev), WA_ELIMIT);
    assert_null(ws.in.data);
    wa_ws_cleanup(&ws);
}

typedef struct http_case {
    const char *name;
    const char *text;
    int err;
    const char *reason;
    int status; /* server: status of the queued answer */
} http_case;

#define REQ_OK_HEAD "GET /ws HTTP/1.1\r\nHost: x\r\n"
#define REQ_UP      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
#define REQ_KEY     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define REQ_VER     "Sec-WebSocket-Version: 13\r\n"

static void test_bad_requests(void **state)
{
    static const http_case v[] = {
        {"POST", "POST /ws HTTP/1.1\r\nHost: x\r\n" REQ_UP REQ_KEY REQ_VER "\r\n", WA_EHTTP,
         "method not GET", 405},
        {"HTTP/1.0", "GET /ws HTTP/1.0\r\nHost: x\r\n" REQ_UP REQ_KEY REQ_VER "\r\n", WA_EHTTP,
         "malformed request line", 400},
        {"absolute target", "GET http://x/ws HTTP/1.1\r\nHost: x\r\n" REQ_UP REQ_KEY REQ_VER "\r\n",
         WA_EHTTP, "malformed request line", 400},
        {"no host", "GET /ws HTTP/1.1\r\n" REQ_UP REQ_KEY REQ_VER "\r\n", WA_EHTTP,
         "missing or repeated Host", 400},
        {"two hosts", REQ_OK_HEAD "Host: y\r\n" REQ_UP REQ_KEY REQ_VER "\r\n", WA_EHTTP,
         "missing or repeated Host", 400},
        {"no upgrade", REQ_OK_HEAD "Connection: Upgrade\r\n" REQ_KEY REQ_VER "\r\n", WA_EHTTP,
         "missing Upgrade: websocket", 400},
        {"no connection", REQ_OK_HEAD "Upgrade: websocket\r\n" REQ_KEY REQ_VER "\r\n", WA_EHTTP,
         "missing Connection: upgrade", 400},
        {"no key", REQ_OK_HEAD REQ_UP REQ_VER "\r\n", WA_EHTTP, "bad Sec-WebSocket-Key", 400},
        {"short key", REQ_OK_HEAD REQ_UP "Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\n" REQ_VER "\r\n",
         WA_EHTTP, "bad Sec-WebSocket-Key", 400},
        {"bad key chars",
         REQ_OK_HEAD REQ_UP "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ!==\r\n" REQ_VER "\r\n",
         WA_EHTTP, "bad Sec-WebSocket-Key", 400},
        {"two keys", REQ_OK_HEAD REQ_UP REQ_KEY REQ_KEY REQ_VER "\r\n", WA_EHTTP,
         "bad Sec-WebSocket-Key", 400},
        {"version 8", REQ_OK_HEAD REQ_UP REQ_KEY "Sec-WebSocket-Version: 8\r\n\r\n", WA_EHTTP,
         "Sec-WebSocket-Version not 13", 426},
        {"no version", REQ_OK_HEAD REQ_UP REQ_KEY "\r\n", WA_EHTTP, "Sec-WebSocket-Version not 13",
         426},
        {"obs-fold", REQ_OK_HEAD REQ_UP REQ_KEY REQ_VER "X-A: 1\r\n  2\r\n\r\n", WA_EHTTP,
         "malformed header field", 400},
        {"no colon", REQ_OK_HEAD REQ_UP REQ_KEY REQ_VER "Broken\r\n\r\n", WA_EHTTP,
         "malformed header field", 400},
        {"space before colon", REQ_OK_HEAD "Upgrade : websocket\r\n\r\n", WA_EHTTP,
         "malformed header field", 400},
        {"bare CR", REQ_OK_HEAD REQ_UP REQ_KEY REQ_VER "X-A: a\rb\r\n\r\n", WA_EHTTP,
         "malformed header field", 400},
        {"binary junk", "\x16\x03\x01\x02\x01\r\n\r\n", WA_EHTTP, "malformed request line", 400},
    };
    size_t i;

    (void)state;
    for (i = 0; i < WA_ARRAY_SIZE(v); i++) {
        wa_ws ws;
        wa_ws_event ev;
        wa_buf out;
        char line[64];

        print_message("bad request: %s\n", v[i].name);
        wa_buf_init(&out, 1 << 16);
        assert_int_equal(wa_ws_init(&ws, WA_WS_SERVER, 0), 0);
        assert_int_equal(feed_str(&ws, v[i].text), 0);
        assert_int_equal(next(&ws, &ev), v[i].err);
        assert_string_equal(wa_ws_error_reason(&ws), v[i].reason);
        assert_int_equal(wa_ws_http_status(&ws), v[i].status);
        assert_int_equal(wa_ws_take_output(&ws, &out), 0);
        snprintf(line, sizeof line, "HTTP/1.1 %d ", v[i].status);
        assert_memory_equal(out.data, line, strlen(line));
        if (v[i].status == 426)
            assert_true(buf_contains(&out, "\r\nSec-WebSocket-Version: 13\r\n"));
        assert_int_equal(next(&ws, &ev), v[i].err);
        assert_idle(&ws);
        wa_ws_cleanup(&ws);
        wa_buf_cleanup(&out);
    }
}

/* Bytes that cannot begin "GET " are refused at once, before a header block ends: a TLS
 * ClientHello on a ws:// port, another method, a blank or space-led line. */
static void test_early_reject(void **state)
{
    static const struct {
        const char *name;
        const char *bytes;
        size_t len;
        int status;
        const char *reason;
    } v[] = {
        {"TLS ClientHello", B("\x16\x03\x01\x00\xc4\x01\x00\x00\xc0\x03\x03"), 400,
         "malformed request line"},
        {"one byte 0x16", B("\x16"), 400, "malformed request line"},
        {"NUL", "\0", 1, 400, "malformed request line"},
        {"POST", B("POST /ws HTTP/1.1\r\n"), 405, "method not GET"},
        {"P", B("P"), 405, "method not GET"},
        {"get (lower case)", B("get"), 405, "method not GET"},
        {"GEX", B("GEX"), 405, "method not GET"},
        {"GETX", B("GETX /ws"), 405, "method not GET"},
        {"GE then space", B("GE /ws"), 405, "method not GET"},
        {"leading space", B(" GET"), 400, "malformed request line"},
        {"blank line", B("\r\n"), 400, "malformed request line"},
        {"G then TLS", B("G\x16"), 400, "malformed request line"},
    };
    static const char req[] = REQ_OK_HEAD REQ_UP REQ_KEY REQ_VER "\r\n";
    size_t i, k;

    (void)state;
    for (i = 0; i < WA_ARRAY_SIZE(v); i++) {
        wa_ws ws;
        wa_ws_event ev;
        wa_buf out;
        char line[64];

        print_message("early reject: %s\n", v[i].name);
        wa_buf_init(&out, 1 << 16);
        assert_int_equal(wa_ws_init(&ws, WA_WS_SERVER, 0), 0);
        assert_int_equal(wa_ws_feed(&ws, (const uint8_t *)v[i].bytes, v[i].len), 0);
        assert_int_equal(next(&ws, &ev), WA_EHTTP);
        assert_string_equal(wa_ws_error_reason(&ws), v[i].reason);
        assert_int_equal(wa_ws_http_status(&ws), v[i].status);
        assert_int_equal(wa_ws_take_output(&ws, &out), 0);
        snprintf(line, sizeof line, "HTTP/1.1 %d ", v[i].status);
        assert_memory_equal(out.data, line, strlen(line));
        assert_int_equal(next(&ws, &ev), WA_EHTTP); /* sticky */
        assert_idle(&ws);
        wa_ws_cleanup(&ws);
        wa_buf_cleanup(&out);
    }
    /* a valid request fed byte by byte waits at every prefix, then is taken whole */
    for (k = 1; k <= sizeof req - 1; k++) {
        wa_ws ws;
        wa_ws_event ev;
        size_t j;

        assert_int_equal(wa_ws_init(&ws, WA_WS_SERVER, 0), 0);
        for (j = 0; j < k; j++) {
            assert_int_equal(wa_ws_feed(&ws, (const uint8_t *)req + j, 1), 0);
            if (j + 1 < sizeof req - 1)
                assert_int_equal(next(&ws, &ev), WA_EAGAIN);
        }
        if (k < sizeof req - 1) {
            /* the rest in one piece */
            assert_int_equal(wa_ws_feed(&ws, (const uint8_t *)req + k, sizeof req - 1 - k), 0);
        }
        assert_int_equal(next(&ws, &ev), 0);
        assert_int_equal(ev.type, WA_WS_EV_HANDSHAKE_REQUEST);
        assert_slice_str(ev.path, "/ws");
        wa_ws_cleanup(&ws);
    }
}

/* Tokens are case-insensitive and may be part of lists. */
static void test_request_variants(void **state)
{
    wa_ws ws;
    wa_ws_event ev;
    wa_buf out;
    wa_slice v;

    (void)state;
    wa_buf_init(&out, 1 << 16);
    assert_int_equal(wa_ws_init(&ws, WA_WS_SERVER, 0), 0);
    assert_int_equal(feed_str(&ws, "GET /events?token=abc&x=%20 HTTP/1.1\r\n"
                                   "host:  gate.example:8443 \r\n"
                                   "UPGRADE: WebSocket\r\n"
                                   "connection: keep-alive, Upgrade\r\n"
                                   "sec-websocket-key:dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                   "SEC-WEBSOCKET-VERSION: 13\r\n"
                                   "Origin: http://a.example\r\n"
                                   "Authorization: Bearer t0k\r\n"
                                   "\r\n"),
                     0);
    assert_int_equal(next(&ws, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_HANDSHAKE_REQUEST);
    assert_slice_str(ev.path, "/events?token=abc&x=%20");
    assert_slice_str(ev.host, "gate.example:8443");
    assert_slice_str(ev.origin, "http://a.example");
    assert_int_equal(wa_ws_request_header(&ws, "authorization", &v), 0);
    assert_slice_str(v, "Bearer t0k");
    assert_int_equal(wa_ws_server_accept(&ws, "bad header", &out), WA_EINVAL);
    assert_int_equal(out.len, 0);
    assert_int_equal(wa_ws_server_accept(&ws, NULL, &out), 0);
    /* RFC 6455 4.2.2 vector on the wire */
    assert_true(buf_contains(&out, "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert_true(out.len > 4 && memcmp(out.data + out.len - 4, "\r\n\r\n", 4) == 0);
    assert_int_equal(next(&ws, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_OPEN);
    assert_int_equal(next(&ws, &ev), WA_EAGAIN);
    assert_idle(&ws);
    wa_ws_cleanup(&ws);
    wa_buf_cleanup(&out);
}

static void test_header_too_large(void **state)
{
    wa_ws ws;
    wa_ws_event ev;
    wa_buf out, b;
    static char big[WA_WS_HTTP_MAX + 100];
    size_t i;

    (void)state;
    wa_buf_init(&out, 1 << 16);
    wa_buf_init(&b, 1 << 16);
    memcpy(big, REQ_OK_HEAD, strlen(REQ_OK_HEAD));
    for (i = strlen(REQ_OK_HEAD); i < sizeof big - 1; i++)
        big[i] = (i % 80 == 79) ? '\n' : 'a';
    big[sizeof big - 1] = '\0';

    /* server: fed in pieces, refused with 431 as soon as the limit passes */
    assert_int_equal(wa_ws_init(&ws, WA_WS_SERVER, 0), 0);
    for (i = 0; i < WA_WS_HTTP_MAX - 1000; i += 1000) {
        assert_int_equal(wa_ws_feed(&ws, (const uint8_t *)big + i, 1000), 0);
        assert_int_equal(next(&ws, &ev), WA_EAGAIN);
    }
    assert_int_equal(wa_ws_feed(&ws, (const uint8_t *)big + i, sizeof big - 1 - i), 0);
    assert_int_equal(next(&ws, &ev), WA_ELIMIT);
    assert_string_equal(wa_ws_error_reason(&ws), "request header block too large");
    assert_int_equal(wa_ws_take_output(&ws, &out), 0);
    assert_true(buf_contains(&out, "HTTP/1.1 431 "));
    wa_ws_cleanup(&ws);

    /* client */
    assert_int_equal(wa_ws_init(&ws, WA_WS_CLIENT, 0), 0);
    assert_int_equal(wa_ws_client_handshake(&ws, &b, "h", "/", NULL, NULL), 0);
    assert_int_equal(feed_str(&ws, "HTTP/1.1 101 Switching Protocols\r\n"), 0);
    assert_int_equal(next(&ws, &ev), WA_EAGAIN);
    assert_int_equal(feed_str(&ws, big), 0);
    assert_int_equal(next(&ws, &ev), WA_ELIMIT);
    assert_string_equal(wa_ws_error_reason(&ws), "response header block too large");
    assert_int_equal(wa_ws_pending_output(&ws), 0);
    wa_ws_cleanup(&ws);
    wa_buf_cleanup(&out);
    wa_buf_cleanup(&b);
}

/* Copy fmt to out with every "%s" replaced by val. */
static void subst(char *out, size_t cap, const char *fmt, const char *val)
{
    size_t n = 0, vl = strlen(val);

    while (*fmt) {
        if (fmt[0] == '%' && fmt[1] == 's') {
            assert_true(n + vl < cap);
            memcpy(out + n, val, vl);
            n += vl;
            fmt += 2;
        } else {
            assert_true(n + 1 < cap);
            out[n++] = *fmt++;
        }
    }
    out[n] = '\0';
}

/* Client: run the handshake and answer with a response built from `fmt` (%s: right accept). */
static int client_vs_response(const char *fmt, const char **reason)
{
    wa_ws c, s;
    wa_buf b;
    wa_ws_event ev;
    char resp[1024];
    int rc;

    wa_buf_init(&b, 1 << 16);
    assert_int_equal(wa_ws_init(&c, WA_WS_CLIENT, 0), 0);
    assert_int_equal(wa_ws_init(&s, WA_WS_SERVER, 0), 0);
    assert_int_equal(wa_ws_client_handshake(&c, &b, "h", "/", NULL, NULL), 0);
    pipe_buf(&b, &s);
    assert_int_equal(next(&s, &ev), 0);
    subst(resp, sizeof resp, fmt, s.accept);
    assert_int_equal(feed_str(&c, resp), 0);
    rc = next(&c, &ev);
    if (rc == 0)
        assert_int_equal(ev.type, WA_WS_EV_OPEN);
    *reason = wa_ws_error_reason(&c);
    wa_ws_cleanup(&c);
    wa_ws_cleanup(&s);
    wa_buf_cleanup(&b);
    return rc;
}

static void test_bad_responses(void **state)
{
    static const struct {
        const char *fmt;
        int err;
        const char *reason;
    } v[] = {
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: %s\r\n\r\n",
         0, NULL},
        {"HTTP/1.1 101\r\nupgrade: WEBSOCKET\r\nconnection: upgrade\r\n"
         "sec-websocket-accept:%s  \r\n\r\n",
         0, NULL},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n%s",
         WA_EHTTP, "bad Sec-WebSocket-Accept"},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Accept: %s\r\n\r\n",
         WA_EHTTP, "bad Sec-WebSocket-Accept"},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "\r\n%s",
         WA_EHTTP, "bad Sec-WebSocket-Accept"},
        {"HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: %s\r\n\r\n",
         WA_EHTTP, "status not 101"},
        {"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: %s\r\n\r\n",
         WA_EHTTP, "missing Upgrade: websocket"},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: close\r\n"
         "Sec-WebSocket-Accept: %s\r\n\r\n",
         WA_EHTTP, "missing Connection: upgrade"},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
         WA_EHTTP, "extension not offered"},
        {"HTTP/1.0 101 Switching Protocols\r\n\r\n%s", WA_EHTTP, "malformed status line"},
        {"HTTP/1.1 1O1 Switching Protocols\r\n\r\n%s", WA_EHTTP, "malformed status line"},
        {"SSH-2.0-OpenSSH\r\n\r\n%s", WA_EHTTP, "malformed status line"},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade websocket\r\n\r\n%s", WA_EHTTP,
         "malformed header field"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < WA_ARRAY_SIZE(v); i++) {
        const char *reason = "unset";

        print_message("response %zu\n", i);
        assert_int_equal(client_vs_response(v[i].fmt, &reason), v[i].err);
        if (v[i].reason)
            assert_string_equal(reason, v[i].reason);
        else
            assert_null(reason);
    }
}

/* --- API misuse and limits ------------------------------------------------------------- */

static void test_api_misuse(void **state)
{
    wa_ws ws;
    wa_buf b;
    wa_ws_event ev;
    char reason[WA_WS_CLOSE_REASON_MAX + 2];

    (void)state;
    wa_buf_init(&b, 1 << 16);
    assert_int_equal(wa_ws_init(&ws, 0, 0), WA_EINVAL);
    assert_int_equal(wa_ws_init(&ws, 3, 0), WA_EINVAL);
    assert_int_equal(wa_ws_init(&ws, WA_WS_CLIENT, WA_WS_MAX_MESSAGE_LIMIT + 1), WA_EINVAL);
    assert_int_equal(wa_ws_init(&ws, WA_WS_CLIENT, 0), 0);
    assert_int_equal(ws.max_message, WA_WS_DEFAULT_MAX_MESSAGE);
    assert_int_equal(wa_ws_send(&ws, WA_WS_OP_TEXT, "x", 1, &b), WA_ESTATE);
    assert_int_equal(wa_ws_close(&ws, 1000, NULL, &b), WA_ESTATE);
    assert_int_equal(wa_ws_server_accept(&ws, NULL, &b), WA_ESTATE);
    assert_int_equal(wa_ws_client_handshake(&ws, &b, NULL, "/", NULL, NULL), WA_EINVAL);
    assert_int_equal(wa_ws_client_handshake(&ws, &b, "a b", "/", NULL, NULL), WA_EINVAL);
    assert_int_equal(wa_ws_client_handshake(&ws, &b, "h\r\nX: y", "/", NULL, NULL), WA_EINVAL);
    assert_int_equal(wa_ws_client_handshake(&ws, &b, "h", "ws/chat", NULL, NULL), WA_EINVAL);
    assert_int_equal(wa_ws_client_handshake(&ws, &b, "h", "/a b", NULL, NULL), WA_EINVAL);
    assert_int_equal(wa_ws_client_handshake(&ws, &b, "h", "/", "o\r\n", NULL), WA_EINVAL);
    assert_int_equal(wa_ws_client_handshake(&ws, &b, "h", "/", NULL, "X: a\r\n\r\nGET /"),
                     WA_EINVAL);
    assert_int_equal(wa_ws_client_handshake(&ws, &b, "h", "/", NULL, "X: a"), WA_EINVAL);
    assert_int_equal(wa_ws_client_handshake(&ws, &b, "h", "/", NULL, "X: a\nY: b\r\n"), WA_EINVAL);
    assert_int_equal(b.len, 0);
    /* out too small: out unchanged, engine still idle */
    {
        wa_buf small;
        wa_buf_init(&small, 16);
        assert_int_equal(wa_ws_client_handshake(&ws, &small, "h", "/", NULL, NULL), WA_ELIMIT);
        assert_int_equal(small.len, 0);
        wa_buf_cleanup(&small);
    }
    assert_int_equal(wa_ws_state(&ws), WA_WS_ST_IDLE);
    assert_int_equal(wa_ws_client_handshake(&ws, &b, "h", NULL, NULL, NULL), 0);
    assert_memory_equal(b.data, "GET / HTTP/1.1\r\n", 16);
    assert_int_equal(wa_ws_client_handshake(&ws, &b, "h", NULL, NULL, NULL), WA_ESTATE);
    assert_int_equal(wa_ws_request_header(&ws, "Host", &(wa_slice){0}), WA_ESTATE);
    wa_ws_cleanup(&ws);

    wa_buf_reset(&b);
    assert_int_equal(wa_ws_init_open(&ws, WA_WS_SERVER, 0), 0);
    assert_int_equal(wa_ws_client_handshake(&ws, &b, "h", "/", NULL, NULL), WA_ESTATE);
    assert_int_equal(wa_ws_send(&ws, WA_WS_OP_CLOSE, "", 0, &b), WA_EINVAL);
    assert_int_equal(wa_ws_send(&ws, WA_WS_OP_CONT, "", 0, &b), WA_EINVAL);
    assert_int_equal(wa_ws_send(&ws, 3, "", 0, &b), WA_EINVAL);
    memset(reason, 'r', sizeof reason);
    assert_int_equal(wa_ws_send(&ws, WA_WS_OP_PING, reason, 126, &b), WA_EINVAL);
    assert_int_equal(wa_ws_send(&ws, WA_WS_OP_PING, reason, 125, &b), 0);
    assert_int_equal(wa_ws_send_frame(&ws, WA_WS_OP_PING, 0, "", 0, &b), WA_EINVAL);
    assert_int_equal(wa_ws_send(&ws, WA_WS_OP_BINARY, NULL, 5, &b), WA_EINVAL);
    reason[WA_WS_CLOSE_REASON_MAX + 1] = '\0';
    assert_int_equal(wa_ws_close(&ws, 1000, reason, &b), WA_EINVAL);
    reason[WA_WS_CLOSE_REASON_MAX] = '\0';
    assert_int_equal(wa_ws_close(&ws, 1005, NULL, &b), WA_EINVAL);
    assert_int_equal(wa_ws_close(&ws, 1006, NULL, &b), WA_EINVAL);
    assert_int_equal(wa_ws_close(&ws, 2000, NULL, &b), WA_EINVAL);
    assert_int_equal(wa_ws_close(&ws, 1000, "\xff", &b), WA_EINVAL);
    wa_buf_reset(&b);
    assert_int_equal(wa_ws_close(&ws, 4999, reason, &b), 0);
    assert_int_equal(b.len, 2 + 125);
    assert_int_equal(next(&ws, &ev), WA_EAGAIN);
    wa_ws_cleanup(&ws);
    assert_int_equal(next(&ws, &ev), WA_ECLOSED);
    wa_ws_cleanup(&ws); /* twice is harmless */
    wa_buf_cleanup(&b);
}

/* A ping flood with nobody draining output: pongs stop before the cap, the close still fits. */
static void test_ping_flood(void **state)
{
    wa_ws ws;
    wa_ws_event ev;
    wa_buf b;
    int i, pings = 0;
    static const uint8_t ping[] = {0x89, 0x7d};
    static uint8_t payload[125];

    (void)state;
    wa_buf_init(&b, 1 << 20);
    assert_int_equal(wa_ws_init_open(&ws, WA_WS_CLIENT, 0), 0);
    for (i = 0; i < 500; i++) {
        assert_int_equal(wa_ws_feed(&ws, ping, 2), 0);
        assert_int_equal(wa_ws_feed(&ws, payload, sizeof payload), 0);
        while (next(&ws, &ev) == 0) {
            assert_int_equal(ev.type, WA_WS_EV_PING);
            pings++;
        }
    }
    assert_int_equal(pings, 500);
    assert_true(wa_ws_pending_output(&ws) <= WA_WS_OUTPUT_MAX - WA_WS_OUTPUT_RESERVE);
    assert_int_equal(wa_ws_feed(&ws, (const uint8_t *)"\x88\x02\x03\xe9", 4), 0);
    assert_int_equal(next(&ws, &ev), 0);
    assert_int_equal(ev.type, WA_WS_EV_CLOSE);
    assert_int_equal(ev.close_code, 1001);
    assert_int_equal(wa_ws_take_output(&ws, &b), 0);
    /* the last frame is the masked close reply echoing 1001 */
    assert_int_equal(b.data[b.len - 8], 0x88);
    assert_int_equal(b.data[b.len - 2] ^ b.data[b.len - 6], 0x03);
    assert_int_equal(b.data[b.len - 1] ^ b.data[b.len - 5], 0xe9);
    wa_ws_cleanup(&ws);
    wa_buf_cleanup(&b);
}

/* take_output into a full destination moves nothing. */
static void test_take_output_limit(void **state)
{
    wa_ws ws;
    wa_ws_event ev;
    wa_buf small;

    (void)state;
    wa_buf_init(&small, 3);
    assert_int_equal(wa_ws_init_open(&ws, WA_WS_SERVER, 0), 0);
    assert_int_equal(wa_ws_feed(&ws, (const uint8_t *)"\x89\x81\0\0\0\0z", 7), 0);
    assert_int_equal(next(&ws, &ev), 0);
    assert_int_equal(wa_ws_pending_output(&ws), 3);
    assert_int_equal(wa_ws_feed(&ws, (const uint8_t *)"\x89\x81\0\0\0\0z", 7), 0);
    assert_int_equal(next(&ws, &ev), 0);
    assert_int_equal(wa_ws_take_output(&ws, &small), WA_ELIMIT);
    assert_int_equal(small.len, 0);
    assert_int_equal(wa_ws_pending_output(&ws), 6);
    wa_ws_cleanup(&ws);
    wa_buf_cleanup(&small);
}

/* --- allocation failure ---------------------------------------------------------------- */

/* A whole session where any step may fail; returns 0 only if everything succeeded. */
static int session_may_fail(void)
{
    wa_ws c, s;
    wa_buf b;
    wa_ws_event ev;
    static uint8_t big[5000];
    int rc;

    wa_buf_init(&b, 1 << 20);
    assert_int_equal(wa_ws_init(&c, WA_WS_CLIENT, 0), 0);
    assert_int_equal(wa_ws_init(&s, WA_WS_SERVER, 0), 0);
#define TRY(x)                                                                                     \
    do {                                                                                           \
        rc = (x);                                                                                  \
        if (rc)                                                                                    \
            goto out;                                                                              \
    } while (0)
#define FEED(w)                                                                                    \
    do {                                                                                           \
        TRY(wa_ws_feed(w, b.data, b.len));                                                         \
        wa_buf_reset(&b);                                                                          \
    } while (0)
    TRY(wa_ws_client_handshake(&c, &b, "h", "/", NULL, "User-Agent: t\r\n"));
    FEED(&s);
    TRY(wa_ws_next_event(&s, &ev));
    TRY(wa_ws_server_accept(&s, NULL, &b));
    FEED(&c);
    TRY(wa_ws_next_event(&c, &ev));
    TRY(wa_ws_send_frame(&c, WA_WS_OP_BINARY, 0, big, sizeof big, &b));
    TRY(wa_ws_send(&c, WA_WS_OP_PING, "p", 1, &b));
    TRY(wa_ws_send_frame(&c, WA_WS_OP_CONT, 1, big, sizeof big, &b));
    FEED(&s);
    TRY(wa_ws_next_event(&s, &ev)); /* OPEN */
    TRY(wa_ws_next_event(&s, &ev)); /* PING */
    TRY(wa_ws_next_event(&s, &ev)); /* MESSAGE */
    assert_int_equal(ev.data.len, 2 * sizeof big);
    TRY(wa_ws_take_output(&s, &b));
    FEED(&c);
    TRY(wa_ws_next_event(&c, &ev));
    assert_int_equal(ev.type, WA_WS_EV_PONG);
    TRY(wa_ws_close(&s, 1000, "x", &b));
    FEED(&c);
    TRY(wa_ws_next_event(&c, &ev));
    assert_int_equal(ev.type, WA_WS_EV_CLOSE);
    TRY(wa_ws_take_output(&c, &b));
    FEED(&s);
    TRY(wa_ws_next_event(&s, &ev));
    assert_int_equal(ev.type, WA_WS_EV_CLOSE);
#undef TRY
#undef FEED
out:
    wa_ws_cleanup(&c);
    wa_ws_cleanup(&s);
    wa_buf_cleanup(&b);
    return rc;
}

static void test_alloc_failure(void **state)
{
    long n;
    int rc = -1;

    (void)state;
    for (n = 0; n < 200; n++) {
        wa__alloc_fail_after(n);
        rc = session_may_fail();
        wa__alloc_fail_after(-1);
        if (rc == 0)
            break;
        /* allocation failure shows as ENOMEM, or as a missing close reply (best effort: the
         * peer's close was still reported) and so the initiator waiting for more input */
        assert_true(rc == WA_ENOMEM || rc == WA_EAGAIN);
    }
    assert_int_equal(rc, 0);
    assert_true(n > 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key_rfc),
        cmocka_unit_test(test_rfc_frames_client_role),
        cmocka_unit_test(test_rfc_frames_server_role),
        cmocka_unit_test(test_encode_server_frames),
        cmocka_unit_test(test_encode_client_masked),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_session),
        cmocka_unit_test(test_server_close_no_code),
        cmocka_unit_test(test_server_reject),
        cmocka_unit_test(test_split_server_role),
        cmocka_unit_test(test_split_client_role),
        cmocka_unit_test(test_split_large),
        cmocka_unit_test(test_split_handshake),
        cmocka_unit_test(test_bad_frames),
        cmocka_unit_test(test_too_big_early),
        cmocka_unit_test(test_feed_cap),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_early_reject),
        cmocka_unit_test(test_request_variants),
        cmocka_unit_test(test_header_too_large),
        cmocka_unit_test(test_bad_responses),
        cmocka_unit_test(test_api_misuse),
        cmocka_unit_test(test_ping_flood),
        cmocka_unit_test(test_take_output_limit),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
