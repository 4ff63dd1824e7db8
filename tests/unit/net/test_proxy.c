/* test_proxy.c - proxy tunnels (lib/net/proxy.c and their use in wa_stream).
 *
 * Sans-I/O: URL parsing (good URLs, percent-encoded credentials, bad URLs), request bytes
 * against hand-built known answers (RFC 1928/1929 layouts, RFC 9110 CONNECT), and every reply
 * fed split at every pair of cut points, plus byte by byte, giving the same result; bad replies
 * give the right code and text, and errors are sticky.
 *
 * Loopback: a tiny SOCKS5 and HTTP CONNECT proxy written here with libuv relays to a wa_listener
 * TLS echo server; a wa_stream goes through it (socks5h, socks5 with local resolution, http),
 * the TLS certificate is verified against the real host name (an unresolvable "wa.test" that
 * only the proxy maps), and wrong credentials, refusals, a silent proxy, a proxy that hangs up,
 * an unreachable proxy and bad URLs fail with the right code and text. Credentials never reach
 * the log. Every test ends with the loop closed; the ASan build checks for leaks.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "net/proxy.h"
#include "net/stream.h"
#include "tls/tls.h"
#include "wa/error.h"

/* ======================================================================================== */
/* URL parsing                                                                              */
/* ======================================================================================== */

static void expect_url(const char *url, int kind, const char *host, unsigned port, const char *user,
                       const void *pass, size_t pass_len)
{
    wa_proxy_url u;

    assert_int_equal(wa_proxy_url_parse(url, &u), 0);
    assert_int_equal(u.kind, kind);
    assert_string_equal(u.host, host);
    assert_int_equal(u.port, port);
    if (user) {
        assert_int_equal(u.has_auth, 1);
        assert_int_equal(u.user_len, strlen(user));
        assert_memory_equal(u.user, user, u.user_len);
        assert_int_equal(u.pass_len, pass_len);
        if (pass_len)
            assert_memory_equal(u.pass, pass, pass_len);
    } else {
        assert_int_equal(u.has_auth, 0);
        assert_int_equal(u.user_len, 0);
        assert_int_equal(u.pass_len, 0);
    }
    wa_proxy_url_wipe(&u);
}

static void test_url_good(void **state)
{
    (void)state;
    expect_url("socks5://user:pass@proxy.example:1080", WA_PROXY_SOCKS5, "proxy.example", 1080,
               "user", "pass", 4);
    expect_url("socks5h://u:p@10.0.0.1:9050/", WA_PROXY_SOCKS5H, "10.0.0.1", 9050, "u", "p", 1);
    expect_url("http://user:pass@[::1]:3128", WA_PROXY_HTTP, "::1", 3128, "user", "pass", 4);
    expect_url("HTTP://proxy", WA_PROXY_HTTP, "proxy", WA_PROXY_DEFAULT_PORT, NULL, NULL, 0);
    expect_url("SoCkS5H://[2001:db8::1]", WA_PROXY_SOCKS5H, "2001:db8::1", 1080, NULL, NULL, 0);
    expect_url("socks5://h:65535", WA_PROXY_SOCKS5, "h", 65535, NULL, NULL, 0);
    /* percent-encoded credentials: '@' ':' '/' '%' ' ' and a non-ASCII byte */
    expect_url("socks5://us%40er:p%3Aa%2Fss%25%20%C3%A9@h:1", WA_PROXY_SOCKS5, "h", 1, "us@er",
               "p:a/ss% \xc3\xa9", 10);
    /* a raw '@' in the password: the last '@' ends the user info (as curl does) */
    expect_url("socks5h://u:p@ss@h:2", WA_PROXY_SOCKS5H, "h", 2, "u", "p@ss", 4);
    /* a user without password, and with an empty one */
    expect_url("socks5://u@h:3", WA_PROXY_SOCKS5, "h", 3, "u", NULL, 0);
    expect_url("http://u:@h:3", WA_PROXY_HTTP, "h", 3, "u", NULL, 0);
    /* SOCKS credentials may hold any byte, NUL included (RFC 1929 lengths) */
    expect_url("socks5://u:%00x@h:4", WA_PROXY_SOCKS5, "h", 4, "u", "\0x", 2);
    /* ':' in an HTTP password is fine (only the user-id may not hold one) */
    expect_url("http://u:a%3Ab@h:5", WA_PROXY_HTTP, "h", 5, "u", "a:b", 3);
}

static void test_url_bad(void **state)
{
    static const char *const einval[] = {
        "",
        "proxy:1080",
        "://h:1",
        "1socks://h:1",
        "so cks://h:1",
        "socks5://",
        "socks5://:1080",
        "socks5://h:",
        "socks5://h:0",
        "socks5://h:65536",
        "socks5://h:123456",
        "socks5://h:12a",
        "socks5://h:-1",
        "socks5://h/path",
        "socks5://h:1/x",
        "socks5://h?x=1",
        "socks5://h#f",
        "socks5://[::1",
        "socks5://[::1]x",
        "socks5://[]:1",
        "socks5://[zz::1]:1",
        "socks5://[1.2.3.4]:1",
        "socks5://[fe80::1%25eth0]:1",
        "socks5://::1:1080",
        "socks5://ho$t:1",
        "socks5://h h:1",
        "socks5://@h:1",
        "socks5://:p@h:1",
        "socks5://u%4:p@h:1",
        "socks5://u%zz:p@h:1",
        "socks5://u:p%@h:1",
        "socks5://u p:x@h:1",
        "socks5://u:\tx@h:1",
        "http://a%3Ab:c@h:1", /* ':' in an HTTP user-id (RFC 7617) */
        "http://a:b%0A@h:1",  /* control character in HTTP credentials */
        "http://a%7F:b@h:1",
    };
    static const char *const unsupported[] = {
        "https://h:443", "socks4://h:1080", "socks4a://h:1080", "socks://h:1", "ftp://h",
    };
    wa_proxy_url u;
    char big[WA_PROXY_MAX_URL + 64];
    size_t i;

    (void)state;
    memset(&u, 0x5a, sizeof u);
    for (i = 0; i < WA_ARRAY_SIZE(einval); i++) {
        if (wa_proxy_url_parse(einval[i], &u) != WA_EINVAL)
            fail_msg("accepted or wrong code: \"%s\"", einval[i]);
    }
    for (i = 0; i < WA_ARRAY_SIZE(unsupported); i++)
        assert_int_equal(wa_proxy_url_parse(unsupported[i], &u), WA_EUNSUPPORTED);
    assert_int_equal(wa_proxy_url_parse(NULL, &u), WA_EINVAL);
    assert_int_equal(((uint8_t *)&u)[0], 0x5a); /* out untouched on failure */

    /* a 255-byte user is the RFC 1929 maximum; 256 is refused */
    strcpy(big, "socks5://");
    memset(big + 9, 'a', 255);
    strcpy(big + 9 + 255, ":p@h:1");
    assert_int_equal(wa_proxy_url_parse(big, &u), 0);
    assert_int_equal(u.user_len, 255);
    wa_proxy_url_wipe(&u);
    memset(big + 9, 'a', 256);
    strcpy(big + 9 + 256, ":p@h:1");
    assert_int_equal(wa_proxy_url_parse(big, &u), WA_EINVAL);
    /* the same through percent-escapes: 256 x "%61" decode to 256 bytes */
    strcpy(big, "socks5://u:");
    for (i = 0; i < 256; i++)
        memcpy(big + 11 + 3 * i, "%61", 3);
    strcpy(big + 11 + 3 * 256, "@h:1");
    assert_int_equal(wa_proxy_url_parse(big, &u), WA_EINVAL);
    /* a 253-character host is fine, 254 is not */
    strcpy(big, "socks5://");
    memset(big + 9, 'h', 253);
    strcpy(big + 9 + 253, ":1");
    assert_int_equal(wa_proxy_url_parse(big, &u), 0);
    wa_proxy_url_wipe(&u);
    memset(big + 9, 'h', 254);
    strcpy(big + 9 + 254, ":1");
    assert_int_equal(wa_proxy_url_parse(big, &u), WA_EINVAL);
    /* over WA_PROXY_MAX_URL */
    strcpy(big, "socks5://h:1/");
    memset(big + 13, '/', sizeof big - 14);
    big[sizeof big - 1] = '\0';
    assert_int_equal(wa_proxy_url_parse(big, &u), WA_EINVAL);
}

/* ======================================================================================== */
/* The handshake engine, sans I/O                                                           */
/* ======================================================================================== */

struct outcome {
    int rc;
    size_t consumed; /* bytes of the input that were the proxy's (rc == 0) */
    char err[WA_PROXY_MAX_ERROR];
    uint8_t out[4096];
    size_t out_len;
};

static void take_output(wa_proxy_tunnel *t, struct outcome *o)
{
    wa_slice s = wa_proxy_tunnel_output(t);
    size_t i;

    assert_true(o->out_len + s.len <= sizeof o->out);
    memcpy(o->out + o->out_len, s.ptr, s.len);
    o->out_len += s.len;
    wa_proxy_tunnel_output_done(t);
    assert_int_equal(wa_proxy_tunnel_output(t).len, 0);
    for (i = 0; i < s.len; i++) /* the engine wiped what it had pending */
        assert_int_equal(t->out[i], 0);
}

/* A fresh engine for url -> host:port fed in[] as chunks [0,a) [a,b) [b,n). */
static void drive(const char *url, const char *host, uint16_t port, const uint8_t *in, size_t n,
                  size_t a, size_t b, struct outcome *o)
{
    wa_proxy_tunnel t;
    wa_proxy_url u;
    size_t cuts[4], i, used, k;
    int rc = WA_EAGAIN;

    cuts[0] = 0;
    cuts[1] = a;
    cuts[2] = b;
    cuts[3] = n;
    memset(o, 0, sizeof *o);
    assert_int_equal(wa_proxy_url_parse(url, &u), 0);
    assert_int_equal(wa_proxy_tunnel_init(&t, &u, host, port), 0);
    wa_proxy_url_wipe(&u);
    take_output(&t, o);
    for (i = 0; i < 3 && rc == WA_EAGAIN; i++) {
        if (cuts[i + 1] == cuts[i])
            continue;
        used = 9999;
        rc = wa_proxy_tunnel_feed(&t, in + cuts[i], cuts[i + 1] - cuts[i], &used);
        if (rc == WA_EAGAIN)
            assert_int_equal(used, cuts[i + 1] - cuts[i]);
        if (rc == 0) {
            assert_true(used <= cuts[i + 1] - cuts[i]);
            o->consumed = cuts[i] + used;
        }
        if (rc == 0 || rc == WA_EAGAIN)
            take_output(&t, o);
    }
    o->rc = rc;
    snprintf(o->err, sizeof o->err, "%s", wa_proxy_tunnel_error(&t));
    if (rc == 0) {
        assert_true(wa_proxy_tunnel_done(&t));
        assert_string_equal(o->err, "");
        used = 9999;
        assert_int_equal(wa_proxy_tunnel_feed(&t, (const uint8_t *)"x", 1, &used), 0);
        assert_int_equal(used, 0);
    } else if (rc != WA_EAGAIN) {
        /* sticky, nothing pending, no credentials left */
        assert_false(wa_proxy_tunnel_done(&t));
        assert_int_equal(wa_proxy_tunnel_feed(&t, (const uint8_t *)"\x05\x00", 2, &used), rc);
        assert_int_equal(wa_proxy_tunnel_output(&t).len, 0);
        assert_true(o->err[0] != '\0');
    }
    for (k = 0; k < sizeof t.user; k++) /* never kept past the request that carried them */
        assert_int_equal(t.user[k] | t.pass[k], 0);
    wa_proxy_tunnel_cleanup(&t);
}

static void same_outcome(const struct outcome *x, const struct outcome *y)
{
    assert_int_equal(x->rc, y->rc);
    assert_int_equal(x->consumed, y->consumed);
    assert_string_equal(x->err, y->err);
    if (x->rc != 0 && x->rc != WA_EAGAIN) {
        /* a failure drops the request still pending; what was sent before is the same */
        assert_memory_equal(x->out, y->out, x->out_len < y->out_len ? x->out_len : y->out_len);
        return;
    }
    assert_int_equal(x->out_len, y->out_len);
    assert_memory_equal(x->out, y->out, x->out_len);
}

/* Run with every pair of cut points (and byte by byte) and check all give the same outcome;
 * returns the outcome of the unsplit run. */
static void every_split(const char *url, const char *host, uint16_t port, const uint8_t *in,
                        size_t n, struct outcome *ref)
{
    struct outcome *o = malloc(sizeof *o);
    wa_proxy_tunnel t;
    wa_proxy_url u;
    size_t a, b, i, used, step = n > 600 ? 97 : 1;
    int rc = WA_EAGAIN;

    assert_non_null(o);
    drive(url, host, port, in, n, n, n, ref);
    for (a = 0; a <= n; a += step)
        for (b = a; b <= n; b += step) {
            drive(url, host, port, in, n, a, b, o);
            same_outcome(ref, o);
        }
    /* byte by byte */
    memset(o, 0, sizeof *o);
    assert_int_equal(wa_proxy_url_parse(url, &u), 0);
    assert_int_equal(wa_proxy_tunnel_init(&t, &u, host, port), 0);
    wa_proxy_url_wipe(&u);
    take_output(&t, o);
    for (i = 0; i < n && rc == WA_EAGAIN; i++) {
        rc = wa_proxy_tunnel_feed(&t, in + i, 1, &used);
        if (rc == 0 || rc == WA_EAGAIN) {
            assert_int_equal(used, 1);
            take_output(&t, o);
        }
        if (rc == 0)
            o->consumed = i + 1;
    }
    o->rc = rc;
    snprintf(o->err, sizeof o->err, "%s", wa_proxy_tunnel_error(&t));
    wa_proxy_tunnel_cleanup(&t);
    same_outcome(ref, o);
    free(o);
}

#define B(s) (const uint8_t *)(s), sizeof(s) - 1

static const uint8_t greet_auth[] = {0x05, 0x02, 0x00, 0x02};
static const uint8_t greet_none[] = {0x05, 0x01, 0x00};
/* RFC 1929: 01 ULEN "user" PLEN "p@ss" */
static const uint8_t auth_req[] = {0x01, 4, 'u', 's', 'e', 'r', 4, 'p', '@', 's', 's'};
/* RFC 1928 CONNECT example.com:443 (ATYP 3) */
static const uint8_t conn_domain[] = {0x05, 0x01, 0x00, 0x03, 11,  'e', 'x', 'a',  'm',
                                      'p',  'l',  'e',  '.',  'c', 'o', 'm', 0x01, 0xbb};

static void expect_out(const struct outcome *o, const uint8_t *a, size_t an, const uint8_t *b,
                       size_t bn, const uint8_t *c, size_t cn)
{
    uint8_t want[1024];
    size_t n = 0;

    memcpy(want + n, a, an);
    n += an;
    if (b) {
        memcpy(want + n, b, bn);
        n += bn;
    }
    if (c) {
        memcpy(want + n, c, cn);
        n += cn;
    }
    assert_int_equal(o->out_len, n);
    assert_memory_equal(o->out, want, n);
}

static void test_socks5_ok(void **state)
{
    static const uint8_t conn_v4[] = {0x05, 0x01, 0x00, 0x01, 10, 1, 2, 3, 0x01, 0xbb};
    static const uint8_t conn_v6[] = {0x05, 0x01, 0x00, 0x04, 0x20, 0x01, 0x0d, 0xb8,
                                      0,    0,    0,    0,    0,    0,    0,    0,
                                      0,    0,    0,    1,    0x14, 0x6c};
    /* method 02, auth ok, reply with a bound IPv4 address, then 3 bytes from the target */
    static const uint8_t srv_v4[] = {0x05, 0x02, 0x01, 0x00, 0x05, 0x00, 0x00, 0x01, 127,
                                     0,    0,    1,    0x12, 0x34, 'T',  'L',  'S'};
    /* method 00 (no auth needed after all), reply with a bound domain name */
    static const uint8_t srv_none_dom[] = {0x05, 0x00, 0x05, 0x00, 0x00, 0x03, 4,
                                           'p',  'r',  'o',  'x',  0x04, 0x38};
    /* reply with a bound IPv6 address and an RSV byte that is not 0 (ignored) */
    static const uint8_t srv_v6[] = {0x05, 0x00, 0x05, 0x00, 0x07, 0x04, 0, 0, 0, 0, 0, 0,
                                     0,    0,    0,    0,    0,    0,    0, 0, 0, 1, 0, 80};
    /* an old server answering the RFC 1929 status with version 5 */
    static const uint8_t srv_old_auth[] = {0x05, 0x02, 0x05, 0x00, 0x05, 0x00, 0x00,
                                           0x01, 1,    2,    3,    4,    0,    1};
    struct outcome o;

    (void)state;
    every_split("socks5h://user:p%40ss@h", "example.com", 443, srv_v4, sizeof srv_v4, &o);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.consumed, sizeof srv_v4 - 3);
    expect_out(&o, greet_auth, sizeof greet_auth, auth_req, sizeof auth_req, conn_domain,
               sizeof conn_domain);

    /* socks5:// sends addresses; so does socks5h:// for a literal */
    every_split("socks5://user:p%40ss@h", "10.1.2.3", 443, srv_v4, sizeof srv_v4, &o);
    assert_int_equal(o.rc, 0);
    expect_out(&o, greet_auth, sizeof greet_auth, auth_req, sizeof auth_req, conn_v4,
               sizeof conn_v4);
    every_split("socks5h://h", "2001:db8::1", 5228, srv_v6, sizeof srv_v6, &o);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.consumed, sizeof srv_v6);
    expect_out(&o, greet_none, sizeof greet_none, conn_v6, sizeof conn_v6, NULL, 0);

    /* credentials offered, the proxy picks "no authentication" */
    every_split("socks5h://user:p%40ss@h", "example.com", 443, srv_none_dom, sizeof srv_none_dom,
                &o);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.consumed, sizeof srv_none_dom);
    expect_out(&o, greet_auth, sizeof greet_auth, conn_domain, sizeof conn_domain, NULL, 0);

    every_split("socks5h://user:p%40ss@h", "example.com", 443, srv_old_auth, sizeof srv_old_auth,
                &o);
    assert_int_equal(o.rc, 0);

    /* incomplete: need more */
    every_split("socks5h://user:p%40ss@h", "example.com", 443, srv_v4, 9, &o);
    assert_int_equal(o.rc, WA_EAGAIN);
    expect_out(&o, greet_auth, sizeof greet_auth, auth_req, sizeof auth_req, conn_domain,
               sizeof conn_domain);
}

static void expect_fail(const char *url, const uint8_t *in, size_t n, int rc, const char *text)
{
    struct outcome o;

    every_split(url, "example.com", 443, in, n, &o);
    assert_int_equal(o.rc, rc);
    if (!strstr(o.err, text))
        fail_msg("error text \"%s\" lacks \"%s\"", o.err, text);
}

static void test_socks5_errors(void **state)
{
    const char *cred = "socks5h://user:p%40ss@h:1";

    (void)state;
    expect_fail(cred, B("\x05\xff"), WA_EPROXYAUTH,
                "SOCKS5 proxy accepts none of our authentication methods");
    expect_fail("socks5h://h", B("\x05\xff"), WA_EPROXYAUTH, "requires authentication");
    expect_fail(cred, B("\x05\x02\x01\x01"), WA_EPROXYAUTH, "proxy authentication failed");
    expect_fail(cred, B("\x05\x02\x01\x01\xff\xff"), WA_EPROXYAUTH, "proxy authentication failed");
    expect_fail(cred, B("\x05\x02\x01\x00\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00"), WA_EPROXY,
                "proxy refused connection: SOCKS5 reply 5 (connection refused)");
    expect_fail(cred, B("\x05\x00\x05\x02"), WA_EPROXY,
                "proxy refused connection: SOCKS5 reply 2 (connection not allowed by ruleset)");
    expect_fail(cred, B("\x05\x00\x05\x09"), WA_EPROXY, "SOCKS5 reply 9 (unassigned)");
    expect_fail(cred, B("\x04\x5a"), WA_EPROTO, "not a SOCKS5 proxy (reply version 4)");
    expect_fail(cred, B("HTTP/1.1 400 Bad Request\r\n\r\n"), WA_EPROTO, "not a SOCKS5 proxy");
    expect_fail("socks5h://h", B("\x05\x02"), WA_EPROTO, "chose method 2, which we did not offer");
    expect_fail(cred, B("\x05\x01"), WA_EPROTO, "chose method 1");
    expect_fail(cred, B("\x05\x02\x02\x00"), WA_EPROTO, "authentication reply (version 2)");
    expect_fail(cred, B("\x05\x00\x04\x00"), WA_EPROTO, "malformed SOCKS5 reply (version 4)");
    expect_fail(cred, B("\x05\x00\x05\x00\x00\x02\x00\x00"), WA_EPROTO, "address type 2");
}

static void test_tunnel_init_bad(void **state)
{
    wa_proxy_tunnel t;
    wa_proxy_url u;

    (void)state;
    assert_int_equal(wa_proxy_url_parse("socks5://u:p@h:1", &u), 0);
    /* socks5:// resolves locally: a name must have been turned into an address */
    assert_int_equal(wa_proxy_tunnel_init(&t, &u, "example.com", 443), WA_EINVAL);
    wa_proxy_tunnel_cleanup(&t);
    assert_int_equal(wa_proxy_tunnel_init(&t, &u, "127.0.0.1", 0), WA_EINVAL);
    wa_proxy_tunnel_cleanup(&t);
    assert_int_equal(wa_proxy_tunnel_init(&t, &u, "", 1), WA_EINVAL);
    wa_proxy_tunnel_cleanup(&t);
    wa_proxy_url_wipe(&u);
    assert_int_equal(wa_proxy_url_parse("http://h:1", &u), 0);
    /* nothing that could break the request line */
    assert_int_equal(wa_proxy_tunnel_init(&t, &u, "a b", 1), WA_EINVAL);
    wa_proxy_tunnel_cleanup(&t);
    assert_int_equal(wa_proxy_tunnel_init(&t, &u, "a\r\nX: y", 1), WA_EINVAL);
    wa_proxy_tunnel_cleanup(&t);
    assert_int_equal(wa_proxy_tunnel_init(&t, &u, "u@h", 1), WA_EINVAL);
    wa_proxy_tunnel_cleanup(&t);
    assert_int_equal(wa_proxy_tunnel_init(&t, &u, "[::1]", 1), WA_EINVAL);
    wa_proxy_tunnel_cleanup(&t);
    assert_false(wa_proxy_valid_target("h/x"));
    assert_true(wa_proxy_valid_target("web.whatsapp.com"));
    assert_true(wa_proxy_valid_target("::ffff:1.2.3.4"));
    wa_proxy_url_wipe(&u);
    /* an engine that failed to start refuses input */
    assert_int_equal(wa_proxy_url_parse("http://h:1", &u), 0);
    assert_int_equal(wa_proxy_tunnel_init(&t, &u, "a b", 1), WA_EINVAL);
    {
        size_t used;
        assert_int_equal(wa_proxy_tunnel_feed(&t, (const uint8_t *)"x", 1, &used), WA_ESTATE);
    }
    wa_proxy_tunnel_cleanup(&t);
    wa_proxy_url_wipe(&u);
}

static void test_http_ok(void **state)
{
    static const char req_auth[] = "CONNECT example.com:443 HTTP/1.1\r\n"
                                   "Host: example.com:443\r\n"
                                   "Proxy-Authorization: Basic dXNlcjpwQHNz\r\n" /* user:p@ss */
                                   "\r\n";
    static const char req_v6[] = "CONNECT [2001:db8::1]:5222 HTTP/1.1\r\n"
                                 "Host: [2001:db8::1]:5222\r\n"
                                 "\r\n";
    static const char resp[] = "HTTP/1.1 200 Connection established\r\n"
                               "Proxy-Agent: test\r\n"
                               "\r\n"
                               "\x16\x03\x03"; /* first bytes from the target */
    struct outcome o;

    (void)state;
    every_split("http://user:p%40ss@h:3128", "example.com", 443, B(resp), &o);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.consumed, sizeof resp - 1 - 3);
    expect_out(&o, B(req_auth), NULL, 0, NULL, 0);

    every_split("http://h:3128", "2001:db8::1", 5222, B("HTTP/1.0 200 OK\r\n\r\n"), &o);
    assert_int_equal(o.rc, 0);
    expect_out(&o, B(req_v6), NULL, 0, NULL, 0);
    /* bare LF line ends, no reason phrase */
    every_split("http://h:3128", "example.com", 443, B("HTTP/1.1 200\nVia: x\n\nabc"), &o);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.consumed, sizeof "HTTP/1.1 200\nVia: x\n\n" - 1);
    /* incomplete */
    every_split("http://h:3128", "example.com", 443, B("HTTP/1.1 200 OK\r\nVia: x\r\n"), &o);
    assert_int_equal(o.rc, WA_EAGAIN);
}

static void test_http_errors(void **state)
{
    const char *url = "http://user:p%40ss@h:3128";
    char *big;
    size_t n;

    (void)state;
    expect_fail(url,
                B("HTTP/1.1 407 Proxy Authentication Required\r\n"
                  "Proxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n"),
                WA_EPROXYAUTH, "HTTP proxy answered 407 Proxy Authentication Required");
    expect_fail(url, B("HTTP/1.0 401 Unauthorized\r\n\r\n"), WA_EPROXYAUTH,
                "HTTP proxy answered 401 Unauthorized (proxy authentication failed)");
    expect_fail(url, B("HTTP/1.0 403 Access violation\r\n\r\n<html>"), WA_EPROXY,
                "HTTP proxy answered 403 Access violation");
    expect_fail(url, B("HTTP/1.1 502\r\n\r\n"), WA_EPROXY, "HTTP proxy answered 502");
    expect_fail(url, B("HTTP/1.1 204 No Content\r\n\r\n"), WA_EPROXY, "HTTP proxy answered 204");
    /* the reason phrase is quoted sanitised */
    expect_fail(url, B("HTTP/1.1 500 Bad\x01\x7f\xff ok\r\n\r\n"), WA_EPROXY,
                "HTTP proxy answered 500 Bad??? ok");
    expect_fail(url, B("HTTP/2 200\r\n\r\n"), WA_EPROTO, "malformed HTTP proxy response");
    expect_fail(url, B("HTTP/1.1 20\r\n\r\n"), WA_EPROTO, "malformed HTTP proxy response");
    expect_fail(url, B("HTTP/1.1 200x\r\n\r\n"), WA_EPROTO, "malformed HTTP proxy response");
    expect_fail(url, B("HTTP/1.1 099 x\r\n\r\n"), WA_EPROTO, "malformed HTTP proxy response");
    expect_fail(url, B("http/1.1 200 OK\r\n\r\n"), WA_EPROTO, "malformed HTTP proxy response");
    expect_fail(url, B("\r\n"), WA_EPROTO, "malformed HTTP proxy response");
    expect_fail(url, B("\x05\x00"), WA_EAGAIN, ""); /* a SOCKS5 answer: no line end yet */
    expect_fail(url, B("\x05\x00\n\n"), WA_EPROTO, "malformed HTTP proxy response");

    /* header block cap: exactly WA_PROXY_MAX_HTTP_HEADER bytes pass, one more does not */
    big = malloc(WA_PROXY_MAX_HTTP_HEADER + 16);
    assert_non_null(big);
    n = WA_PROXY_MAX_HTTP_HEADER;
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', n - 20 - 4);
    memcpy(big + n - 4, "\r\n\r\n", 4);
    {
        struct outcome o;
        every_split(url, "example.com", 443, (const uint8_t *)big, n, &o);
        assert_int_equal(o.rc, 0);
        assert_int_equal(o.consumed, n);
        memcpy(big + n - 4, "a\r\n\r\n", 5);
        every_split(url, "example.com", 443, (const uint8_t *)big, n + 1, &o);
        assert_int_equal(o.rc, WA_ELIMIT);
        assert_non_null(strstr(o.err, "header over 8192 bytes"));
    }
    free(big);
}

/* ======================================================================================== */
/* Loopback: fake proxies in front of a wa_listener TLS echo server                         */
/* ======================================================================================== */

enum fake_kind { FAKE_SOCKS5, FAKE_HTTP };
enum fake_behaviour {
    FB_RELAY,       /* authenticate, connect to 127.0.0.1:target_port, relay */
    FB_REFUSE,      /* SOCKS5 reply 5 / HTTP 502 */
    FB_SILENT,      /* never answer */
    FB_HANG_UP,     /* close after reading the first request */
    FB_EARLY_HELLO, /* HTTP: "200" and "HELLO" in one write, then relay */
};

#define FAKE_BUF 4096

struct fake_proxy {
    uv_tcp_t listen;
    int port;
    int kind, behaviour;
    const char *user, *pass; /* expected; NULL = no authentication */
    int target_port;
    int open;
    /* what it saw */
    int conns, auth_ok, auth_bad, relayed;
    int seen_atyp;
    char seen_host[WA_PROXY_MAX_HOST + 1];
    int seen_port;
};

struct fake_conn {
    struct fake_proxy *fp;
    uv_tcp_t down; /* from the client */
    uv_tcp_t up;   /* to the target */
    uv_connect_t creq;
    int handles, up_init, relaying, closing;
    int stage; /* SOCKS5: 0 greeting, 1 auth, 2 request, 3 waiting for connect */
    uint8_t buf[FAKE_BUF];
    size_t len;
};

struct fwrite {
    uv_write_t req;
    char data[];
};

static void fake_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void fake_send(uv_tcp_t *t, const void *p, size_t n)
{
    struct fwrite *w = malloc(sizeof *w + n);
    uv_buf_t b;

    assert_non_null(w);
    memcpy(w->data, p, n);
    b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)t, &b, 1, fake_written) != 0)
        free(w);
}

static void fake_conn_closed(uv_handle_t *h)
{
    struct fake_conn *c = h->data;

    if (--c->handles == 0)
        free(c);
}

static void fake_close(struct fake_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->down, fake_conn_closed);
    if (c->up_init)
        uv_close((uv_handle_t *)&c->up, fake_conn_closed);
}

/* A reply that must reach the client before we close: uv_try_write (loopback takes it). */
static void fake_reply_and_close(struct fake_conn *c, const void *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);

    assert_int_equal(uv_try_write((uv_stream_t *)&c->down, &b, 1), (int)n);
    fake_close(c);
}

static void fake_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    static char slab[65536];

    (void)h;
    (void)sz;
    *b = uv_buf_init(slab, sizeof slab);
}

static void fake_up_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct fake_conn *c = st->data;

    if (c->closing)
        return;
    if (n < 0) {
        fake_close(c);
        return;
    }
    if (n > 0)
        fake_send(&c->down, b->base, (size_t)n);
}

static void fake_up_connected(uv_connect_t *req, int status)
{
    struct fake_conn *c = req->data;
    static const uint8_t socks_ok[] = {0x05, 0x00, 0x00, 0x01, 127, 0, 0, 1, 0x04, 0x38};
    static const char http_ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    static const char http_hello[] = "HTTP/1.1 200 Connection established\r\n\r\nHELLO";

    if (status == UV_ECANCELED || c->closing)
        return;
    assert_int_equal(status, 0);
    c->relaying = 1;
    c->fp->relayed++;
    if (c->fp->kind == FAKE_SOCKS5)
        fake_send(&c->down, socks_ok, sizeof socks_ok);
    else if (c->fp->behaviour == FB_EARLY_HELLO)
        fake_send(&c->down, http_hello, sizeof http_hello - 1);
    else
        fake_send(&c->down, http_ok, sizeof http_ok - 1);
    assert_int_equal(uv_read_start((uv_stream_t *)&c->up, fake_alloc, fake_up_read), 0);
    if (c->len > 0) { /* client bytes that came with the request (none expected) */
        fake_send(&c->up, c->buf, c->len);
        c->len = 0;
    }
}

static void fake_connect_up(struct fake_conn *c)
{
    struct sockaddr_in a;

    assert_int_equal(uv_tcp_init(c->down.loop, &c->up), 0);
    c->up.data = c;
    c->up_init = 1;
    c->handles++;
    uv_ip4_addr("127.0.0.1", c->fp->target_port, &a);
    c->creq.data = c;
    assert_int_equal(uv_tcp_connect(&c->creq, &c->up, (struct sockaddr *)&a, fake_up_connected), 0);
}

static void fake_consume(struct fake_conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Process what the client sent so far (SOCKS5 server side, RFC 1928/1929). */
static void fake_socks(struct fake_conn *c)
{
    struct fake_proxy *fp = c->fp;
    static const uint8_t refused[] = {0x05, 0x05, 0x00, 0x01, 0, 0, 0, 0, 0, 0};
    uint8_t *d = c->buf;
    size_t need, ulen, plen, i;
    int offered_userpass = 0, ok;

    for (;;) {
        if (c->stage == 0) {
            if (c->len < 2 || c->len < 2u + d[1])
                return;
            assert_int_equal(d[0], 5);
            if (fp->behaviour == FB_SILENT)
                return;
            if (fp->behaviour == FB_HANG_UP) {
                fake_close(c);
                return;
            }
            for (i = 0; i < d[1]; i++)
                if (d[2 + i] == 2)
                    offered_userpass = 1;
            fake_consume(c, 2u + d[1]);
            if (fp->user && !offered_userpass) {
                fake_reply_and_close(c, "\x05\xff", 2);
                return;
            }
            fake_send(&c->down, fp->user ? "\x05\x02" : "\x05\x00", 2);
            c->stage = fp->user ? 1 : 2;
        } else if (c->stage == 1) {
            if (c->len < 2 || c->len < 3u + d[1] || c->len < 3u + d[1] + d[2 + d[1]])
                return;
            assert_int_equal(d[0], 1);
            ulen = d[1];
            plen = d[2 + ulen];
            ok = ulen == strlen(fp->user) && memcmp(d + 2, fp->user, ulen) == 0 &&
                 plen == strlen(fp->pass) && memcmp(d + 3 + ulen, fp->pass, plen) == 0;
            fake_consume(c, 3 + ulen + plen);
            if (!ok) {
                fp->auth_bad++;
                fake_reply_and_close(c, "\x01\x01", 2);
                return;
            }
            fp->auth_ok++;
            fake_send(&c->down, "\x01\x00", 2);
            c->stage = 2;
        } else if (c->stage == 2) {
            if (c->len < 5)
                return;
            assert_int_equal(d[0], 5);
            assert_int_equal(d[1], 1);
            fp->seen_atyp = d[3];
            need = d[3] == 1 ? 10 : d[3] == 4 ? 22 : 7u + d[4];
            if (c->len < need)
                return;
            if (d[3] == 1)
                uv_inet_ntop(AF_INET, d + 4, fp->seen_host, sizeof fp->seen_host);
            else if (d[3] == 4)
                uv_inet_ntop(AF_INET6, d + 4, fp->seen_host, sizeof fp->seen_host);
            else {
                memcpy(fp->seen_host, d + 5, d[4]);
                fp->seen_host[d[4]] = '\0';
            }
            fp->seen_port = wa_load_be16(d + need - 2);
            fake_consume(c, need);
            if (fp->behaviour == FB_REFUSE) {
                fake_reply_and_close(c, refused, sizeof refused);
                return;
            }
            c->stage = 3;
            fake_connect_up(c);
            return;
        } else {
            return;
        }
    }
}

/* Process the client's CONNECT request (HTTP server side). */
static void fake_http(struct fake_conn *c)
{
    struct fake_proxy *fp = c->fp;
    static const char r407[] = "HTTP/1.1 407 Proxy Authentication Required\r\n"
                               "Proxy-Authenticate: Basic realm=\"fake\"\r\n"
                               "Content-Length: 0\r\n\r\n";
    static const char r502[] = "HTTP/1.1 502 Bad Gateway\r\n\r\n";
    char *end, *sp, *colon, want[600], cred[300], line[700];
    size_t hl;
    int ok;

    if (c->stage != 0)
        return;
    c->buf[c->len < FAKE_BUF ? c->len : FAKE_BUF - 1] = '\0';
    end = strstr((char *)c->buf, "\r\n\r\n");
    if (!end)
        return;
    hl = (size_t)(end + 4 - (char *)c->buf);
    if (fp->behaviour == FB_SILENT)
        return;
    if (fp->behaviour == FB_HANG_UP) {
        fake_close(c);
        return;
    }
    assert_memory_equal(c->buf, "CONNECT ", 8);
    sp = strchr((char *)c->buf + 8, ' ');
    assert_non_null(sp);
    *sp = '\0';
    colon = strrchr((char *)c->buf + 8, ':');
    assert_non_null(colon);
    *colon = '\0';
    snprintf(fp->seen_host, sizeof fp->seen_host, "%s", (char *)c->buf + 8);
    fp->seen_port = atoi(colon + 1);
    *sp = ' ';
    *colon = ':';
    ok = 1;
    if (fp->user) {
        snprintf(cred, sizeof cred, "%s:%s", fp->user, fp->pass);
        wa_base64_encode(want, (const uint8_t *)cred, strlen(cred), 0);
        snprintf(line, sizeof line, "\r\nProxy-Authorization: Basic %s\r\n", want);
        *end = '\0';
        ok = strstr((char *)c->buf, line) != NULL;
        if (!ok) {
            *end = '\r';
            /* ...unless it is the last header line */
            snprintf(line, sizeof line, "\r\nProxy-Authorization: Basic %s\r\n\r\n", want);
            ok = strstr((char *)c->buf, line) != NULL;
        }
        if (ok)
            fp->auth_ok++;
        else
            fp->auth_bad++;
    }
    fake_consume(c, hl);
    c->stage = 1;
    if (!ok) {
        fake_reply_and_close(c, r407, sizeof r407 - 1);
        return;
    }
    if (fp->behaviour == FB_REFUSE) {
        fake_reply_and_close(c, r502, sizeof r502 - 1);
        return;
    }
    fake_connect_up(c);
}

static void fake_down_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct fake_conn *c = st->data;

    if (c->closing)
        return;
    if (n < 0) {
        fake_close(c);
        return;
    }
    if (n == 0)
        return;
    if (c->relaying) {
        fake_send(&c->up, b->base, (size_t)n);
        return;
    }
    if (c->len + (size_t)n >= FAKE_BUF) {
        fake_close(c);
        return;
    }
    memcpy(c->buf + c->len, b->base, (size_t)n);
    c->len += (size_t)n;
    if (c->fp->kind == FAKE_SOCKS5)
        fake_socks(c);
    else
        fake_http(c);
}

static void fake_on_conn(uv_stream_t *server, int status)
{
    struct fake_proxy *fp = server->data;
    struct fake_conn *c;

    assert_int_equal(status, 0);
    c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->fp = fp;
    assert_int_equal(uv_tcp_init(server->loop, &c->down), 0);
    c->down.data = c;
    c->handles = 1;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&c->down), 0);
    fp->conns++;
    assert_int_equal(uv_read_start((uv_stream_t *)&c->down, fake_alloc, fake_down_read), 0);
}

static void fake_start(uv_loop_t *loop, struct fake_proxy *fp)
{
    struct sockaddr_in a;
    struct sockaddr_storage ss;
    int len = sizeof ss;

    assert_int_equal(uv_tcp_init(loop, &fp->listen), 0);
    fp->listen.data = fp;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&fp->listen, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&fp->listen, 16, fake_on_conn), 0);
    assert_int_equal(uv_tcp_getsockname(&fp->listen, (struct sockaddr *)&ss, &len), 0);
    fp->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    fp->open = 1;
}

static void fake_stop(struct fake_proxy *fp)
{
    if (fp->open) {
        fp->open = 0;
        uv_close((uv_handle_t *)&fp->listen, NULL);
    }
}

/* ---- the test run: TLS echo server, fake proxy, one client stream ---- */

static char *g_cert, *g_key;
static wa_tls_ctx *g_server_ctx, *g_client_ctx;

struct run {
    uv_loop_t loop;
    wa_listener *listener;
    int port;
    struct fake_proxy fp;
    wa_stream *client;
    int connect_calls, connect_status, close_calls, close_reason;
    char error[300];
    wa_buf rx;
    uint8_t *sent;
    size_t sent_len;
    const char *prefix; /* expected before the echo (early data through the tunnel) */
    int echoed;
    int accepts;
    int close_after_ms; /* the client closes itself after this long (0 = no) */
    uv_timer_t closer;
    int closer_init;
};

static int group_setup(void **state)
{
    wa_tls_client_opts o;

    (void)state;
    wa_log_set_level(WA_LOG_ERROR);
    /* the certificate names wa.test (plus localhost, 127.0.0.1, ::1): "wa.test" only resolves
     * through the fake proxies, so a verified connection to it proves that SNI and
     * verification used the real host */
    if (wa_tls_generate_self_signed("wa.test", &g_cert, &g_key) ||
        wa_tls_ctx_new_server(g_cert, g_key, &g_server_ctx))
        return -1;
    memset(&o, 0, sizeof o);
    o.ca_pem = g_cert;
    o.no_system_ca = 1;
    if (wa_tls_ctx_new_client(&o, &g_client_ctx))
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    wa_tls_ctx_free(g_client_ctx);
    wa_tls_ctx_free(g_server_ctx);
    wa_free(g_cert);
    wa_tls_pem_free(g_key);
    return 0;
}

static void srv_data(wa_stream *s, const uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    assert_int_equal(wa_stream_write(s, data, len), 0);
}

static void srv_close(wa_stream *s, int reason, void *ud)
{
    (void)s;
    (void)reason;
    (void)ud;
}

static void srv_accept(wa_listener *l, wa_stream *s, void *ud)
{
    struct run *r = ud;
    wa_stream_cbs cbs = {NULL, srv_data, NULL, srv_close};

    (void)l;
    r->accepts++;
    wa_stream_set_callbacks(s, &cbs, r);
}

static void cli_try_finish(struct run *r, wa_stream *s)
{
    size_t plen = r->prefix ? strlen(r->prefix) : 0;

    if (r->rx.len != plen + r->sent_len)
        return;
    if (plen)
        assert_memory_equal(r->rx.data, r->prefix, plen);
    assert_memory_equal(r->rx.data + plen, r->sent, r->sent_len);
    r->echoed = 1;
    wa_stream_close(s);
}

static void cli_connect(wa_stream *s, int status, void *ud)
{
    struct run *r = ud;

    r->connect_calls++;
    r->connect_status = status;
    snprintf(r->error, sizeof r->error, "%s", wa_stream_last_error(s));
    if (status != 0)
        return;
    assert_true(wa_stream_is_open(s));
    assert_int_equal(wa_stream_write(s, r->sent, r->sent_len), 0);
}

static void cli_data(wa_stream *s, const uint8_t *data, size_t len, void *ud)
{
    struct run *r = ud;

    assert_int_equal(r->connect_status, 0); /* never before on_connect */
    assert_int_equal(wa_buf_append(&r->rx, data, len), 0);
    cli_try_finish(r, s);
}

static void cli_close(wa_stream *s, int reason, void *ud)
{
    struct run *r = ud;

    r->close_calls++;
    r->close_reason = reason;
    if (reason != 0 && r->connect_calls == 0)
        snprintf(r->error, sizeof r->error, "%s", wa_stream_last_error(s));
    r->client = NULL;
    if (r->listener) {
        wa_listener_close(r->listener);
        r->listener = NULL;
    }
    fake_stop(&r->fp);
    if (r->closer_init) {
        r->closer_init = 0;
        uv_close((uv_handle_t *)&r->closer, NULL);
    }
}

static const wa_stream_cbs client_cbs = {cli_connect, cli_data, NULL, cli_close};

static void run_init(struct run *r, int kind, int behaviour, const char *user, const char *pass)
{
    wa_listener_opts lo;
    size_t i;

    memset(r, 0, sizeof *r);
    assert_int_equal(uv_loop_init(&r->loop), 0);
    wa_buf_init(&r->rx, 1 << 20);
    r->connect_status = 1;
    r->close_reason = 1;
    memset(&lo, 0, sizeof lo);
    lo.host = "127.0.0.1";
    lo.tls = g_server_ctx;
    lo.on_accept = srv_accept;
    lo.user_data = r;
    assert_int_equal(wa_listener_start(&r->loop, &lo, &r->listener), 0);
    r->port = wa_listener_port(r->listener);
    r->fp.kind = kind;
    r->fp.behaviour = behaviour;
    r->fp.user = user;
    r->fp.pass = pass;
    r->fp.target_port = r->port;
    fake_start(&r->loop, &r->fp);
    r->sent_len = 50000;
    r->sent = malloc(r->sent_len);
    assert_non_null(r->sent);
    for (i = 0; i < r->sent_len; i++)
        r->sent[i] = (uint8_t)(i * 7 + 3);
}

static void closer_fired(uv_timer_t *t)
{
    struct run *r = t->data;

    if (r->client)
        wa_stream_close(r->client);
}

/* url: proxy URL with "PORT" for the fake proxy's port. */
static void run_connect(struct run *r, const char *url_fmt, const char *host, wa_tls_ctx *tls,
                        unsigned timeout_ms)
{
    wa_stream_opts so;
    char url[512];

    const char *at = strstr(url_fmt, "PORT");

    assert_non_null(at);
    snprintf(url, sizeof url, "%.*s%d%s", (int)(at - url_fmt), url_fmt, r->fp.port, at + 4);
    memset(&so, 0, sizeof so);
    so.host = host;
    so.port = (uint16_t)r->port;
    so.tls = tls;
    so.timeout_ms = timeout_ms;
    so.proxy = url;
    assert_int_equal(wa_stream_connect(&r->loop, &so, &client_cbs, r, &r->client), 0);
    memset(url, 0, sizeof url); /* the stream keeps its own copy */
    if (r->close_after_ms) {
        uv_timer_init(&r->loop, &r->closer);
        r->closer.data = r;
        r->closer_init = 1;
        uv_timer_start(&r->closer, closer_fired, (uint64_t)r->close_after_ms, 0);
    }
}

static void run_finish(struct run *r)
{
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    assert_int_equal(r->close_calls, 1);
    wa_buf_cleanup(&r->rx);
    free(r->sent);
}

static void expect_echo(struct run *r)
{
    assert_int_equal(r->connect_calls, 1);
    assert_int_equal(r->connect_status, 0);
    assert_true(r->echoed);
    assert_int_equal(r->close_reason, 0);
    assert_int_equal(r->accepts, 1);
    assert_int_equal(r->fp.relayed, 1);
}

static void expect_failure(struct run *r, int code, const char *text)
{
    assert_int_equal(r->connect_calls, 1);
    assert_int_equal(r->connect_status, code);
    assert_int_equal(r->close_reason, code);
    if (!strstr(r->error, text))
        fail_msg("error text \"%s\" lacks \"%s\"", r->error, text);
    assert_false(r->echoed);
}

/* ---- credentials never reach the log ---- */

static char g_log[65536];
static size_t g_log_len;

static void log_sink(int level, const char *component, const char *msg, void *ud)
{
    int n;

    (void)level;
    (void)ud;
    n = snprintf(g_log + g_log_len, sizeof g_log - g_log_len, "%s: %s\n", component, msg);
    if (n > 0 && (size_t)n < sizeof g_log - g_log_len)
        g_log_len += (size_t)n;
}

static void log_capture(void)
{
    g_log_len = 0;
    g_log[0] = '\0';
    wa_log_set_sink(log_sink, NULL);
    wa_log_set_level(WA_LOG_TRACE);
}

static void log_release(void)
{
    wa_log_set_sink(NULL, NULL);
    wa_log_set_level(WA_LOG_ERROR);
}

static void expect_log_clean(void)
{
    assert_true(g_log_len > 0); /* something was logged, and none of it secret */
    assert_null(strstr(g_log, "s3cret"));
    assert_null(strstr(g_log, "wr0ng"));
    assert_null(strstr(g_log, "czNjcmV0")); /* base64 fragments of the passwords */
    assert_null(strstr(g_log, "%40"));
}

/* socks5h: the proxy gets the name (ATYP 3), authentication with a percent-encoded password. */
static void test_loop_socks5h(void **state)
{
    struct run r;

    (void)state;
    run_init(&r, FAKE_SOCKS5, FB_RELAY, "alice", "s3cret@x");
    log_capture();
    run_connect(&r, "socks5h://alice:s3cret%40x@127.0.0.1:PORT", "wa.test", g_client_ctx, 0);
    run_finish(&r);
    log_release();
    expect_echo(&r);
    assert_int_equal(r.fp.auth_ok, 1);
    assert_int_equal(r.fp.seen_atyp, 3);
    assert_string_equal(r.fp.seen_host, "wa.test");
    assert_int_equal(r.fp.seen_port, r.port);
    expect_log_clean();
}

/* socks5: the name is resolved here and sent as an IPv4 address; no credentials. */
static void test_loop_socks5_local(void **state)
{
    struct run r;

    (void)state;
    run_init(&r, FAKE_SOCKS5, FB_RELAY, NULL, NULL);
    run_connect(&r, "socks5://localhost:PORT", "localhost", g_client_ctx, 0);
    run_finish(&r);
    expect_echo(&r);
    assert_int_equal(r.fp.seen_atyp, 1);
    assert_string_equal(r.fp.seen_host, "127.0.0.1");
}

static void test_loop_http(void **state)
{
    struct run r;

    (void)state;
    run_init(&r, FAKE_HTTP, FB_RELAY, "bob", "s3cret");
    log_capture();
    run_connect(&r, "http://bob:s3cret@127.0.0.1:PORT/", "wa.test", g_client_ctx, 0);
    run_finish(&r);
    log_release();
    expect_echo(&r);
    assert_int_equal(r.fp.auth_ok, 1);
    assert_string_equal(r.fp.seen_host, "wa.test");
    assert_int_equal(r.fp.seen_port, r.port);
    expect_log_clean();
}

/* Plain TCP through HTTP CONNECT, the proxy's "200" and the target's first bytes in one
 * segment: on_connect first, then on_data("HELLO"), then the echo. */
static void test_loop_early_data(void **state)
{
    struct run r;
    wa_listener_opts lo;

    (void)state;
    run_init(&r, FAKE_HTTP, FB_EARLY_HELLO, NULL, NULL);
    wa_listener_close(r.listener); /* a plain TCP echo server instead */
    memset(&lo, 0, sizeof lo);
    lo.host = "127.0.0.1";
    lo.on_accept = srv_accept;
    lo.user_data = &r;
    assert_int_equal(wa_listener_start(&r.loop, &lo, &r.listener), 0);
    r.port = r.fp.target_port = wa_listener_port(r.listener);
    r.prefix = "HELLO";
    run_connect(&r, "http://127.0.0.1:PORT", "wa.test", NULL, 0);
    run_finish(&r);
    expect_echo(&r);
}

static void test_loop_wrong_password(void **state)
{
    struct run r;

    (void)state;
    run_init(&r, FAKE_SOCKS5, FB_RELAY, "alice", "s3cret");
    log_capture();
    run_connect(&r, "socks5h://alice:wr0ng@127.0.0.1:PORT", "wa.test", g_client_ctx, 0);
    run_finish(&r);
    log_release();
    expect_failure(&r, WA_EPROXYAUTH, "proxy authentication failed");
    assert_int_equal(r.fp.auth_bad, 1);
    assert_int_equal(r.accepts, 0);
    expect_log_clean();

    run_init(&r, FAKE_SOCKS5, FB_RELAY, "alice", "s3cret");
    run_connect(&r, "socks5h://127.0.0.1:PORT", "wa.test", g_client_ctx, 0);
    run_finish(&r);
    expect_failure(&r, WA_EPROXYAUTH, "requires authentication");

    run_init(&r, FAKE_HTTP, FB_RELAY, "bob", "s3cret");
    log_capture();
    run_connect(&r, "http://bob:wr0ng@127.0.0.1:PORT", "wa.test", g_client_ctx, 0);
    run_finish(&r);
    log_release();
    expect_failure(&r, WA_EPROXYAUTH, "HTTP proxy answered 407");
    assert_int_equal(r.fp.auth_bad, 1);
    assert_int_equal(r.accepts, 0);
    expect_log_clean();
}

static void test_loop_refused(void **state)
{
    struct run r;

    (void)state;
    run_init(&r, FAKE_SOCKS5, FB_REFUSE, NULL, NULL);
    run_connect(&r, "socks5h://127.0.0.1:PORT", "wa.test", g_client_ctx, 0);
    run_finish(&r);
    expect_failure(&r, WA_EPROXY, "proxy refused connection: SOCKS5 reply 5");

    run_init(&r, FAKE_HTTP, FB_REFUSE, NULL, NULL);
    run_connect(&r, "http://127.0.0.1:PORT", "wa.test", g_client_ctx, 0);
    run_finish(&r);
    expect_failure(&r, WA_EPROXY, "HTTP proxy answered 502 Bad Gateway");

    run_init(&r, FAKE_SOCKS5, FB_HANG_UP, NULL, NULL);
    run_connect(&r, "socks5h://127.0.0.1:PORT", "wa.test", g_client_ctx, 0);
    run_finish(&r);
    expect_failure(&r, WA_EPROXY, "proxy closed the connection during the handshake");
}

/* The tunnel reaches a server whose certificate does not name the requested host: the name
 * checked is the target's, not the proxy's (127.0.0.1, which the certificate does name). */
static void test_loop_verifies_real_host(void **state)
{
    struct run r;

    (void)state;
    run_init(&r, FAKE_SOCKS5, FB_RELAY, NULL, NULL);
    run_connect(&r, "socks5h://127.0.0.1:PORT", "other.test", g_client_ctx, 0);
    run_finish(&r);
    expect_failure(&r, WA_ECERT, "certificate verify failed");
    assert_string_equal(r.fp.seen_host, "other.test");
}

/* A proxy that never answers: the connect timeout covers the tunnel. Closing by hand while in
 * the tunnel works too. */
static void test_loop_timeout_and_close(void **state)
{
    struct run r;

    (void)state;
    run_init(&r, FAKE_HTTP, FB_SILENT, NULL, NULL);
    run_connect(&r, "http://127.0.0.1:PORT", "wa.test", g_client_ctx, 300);
    run_finish(&r);
    expect_failure(&r, WA_ETIMEDOUT, "timed out in the proxy handshake");

    run_init(&r, FAKE_SOCKS5, FB_SILENT, NULL, NULL);
    r.close_after_ms = 100;
    run_connect(&r, "socks5h://127.0.0.1:PORT", "wa.test", g_client_ctx, 0);
    run_finish(&r);
    assert_int_equal(r.connect_calls, 0);
    assert_int_equal(r.close_reason, 0);
    assert_int_equal(r.fp.conns, 1);
}

/* The proxy itself cannot be reached or resolved. */
static void test_loop_unreachable(void **state)
{
    struct run r;
    int port;

    (void)state;
    run_init(&r, FAKE_SOCKS5, FB_RELAY, NULL, NULL);
    port = r.fp.port;
    fake_stop(&r.fp); /* nothing listens there now */
    (void)uv_run(&r.loop, UV_RUN_NOWAIT);
    r.fp.port = port;
    run_connect(&r, "socks5h://127.0.0.1:PORT", "wa.test", g_client_ctx, 0);
    run_finish(&r);
    expect_failure(&r, WA_ECONNREFUSED, "cannot connect to proxy 127.0.0.1:");

    run_init(&r, FAKE_SOCKS5, FB_RELAY, NULL, NULL);
    /* (a machine whose DNS server does not answer gives WA_ETIMEDOUT: also accepted) */
    run_connect(&r, "socks5h://no-such-host.invalid:PORT", "wa.test", g_client_ctx, 5000);
    run_finish(&r);
    expect_failure(&r, r.connect_status == WA_ETIMEDOUT ? WA_ETIMEDOUT : WA_EDNS,
                   "cannot resolve proxy host no-such-host.invalid: ");

    /* socks5:// resolves the target here: an unresolvable one fails before the proxy */
    run_init(&r, FAKE_SOCKS5, FB_RELAY, NULL, NULL);
    run_connect(&r, "socks5://127.0.0.1:PORT", "wa.invalid", g_client_ctx, 5000);
    run_finish(&r);
    expect_failure(&r, r.connect_status == WA_ETIMEDOUT ? WA_ETIMEDOUT : WA_EDNS,
                   "cannot resolve wa.invalid (for the SOCKS5 proxy): ");
    assert_int_equal(r.fp.conns, 0);
}

/* Bad proxy URLs are refused by wa_stream_connect itself: no callback ever. */
static void test_loop_bad_url(void **state)
{
    static const struct {
        const char *url;
        int rc;
    } cases[] = {
        {"socks5://h:0", WA_EINVAL},     {"https://h:443", WA_EUNSUPPORTED},
        {"socks4://h", WA_EUNSUPPORTED}, {"http://u:p@h:1/path", WA_EINVAL},
        {"garbage", WA_EINVAL},
    };
    uv_loop_t loop;
    wa_stream_opts so;
    wa_stream *s = NULL;
    size_t i;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    for (i = 0; i < WA_ARRAY_SIZE(cases); i++) {
        memset(&so, 0, sizeof so);
        so.host = "wa.test";
        so.port = 443;
        so.tls = g_client_ctx;
        so.proxy = cases[i].url;
        assert_int_equal(wa_stream_connect(&loop, &so, &client_cbs, NULL, &s), cases[i].rc);
    }
    /* a target that cannot be put in a request */
    so.host = "bad host";
    so.proxy = "http://h:1";
    assert_int_equal(wa_stream_connect(&loop, &so, &client_cbs, NULL, &s), WA_EINVAL);
    assert_null(s);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Allocation failures while connecting through a proxy: no crash, no leak, and either
 * wa_stream_connect fails or exactly one on_close follows. */
static void test_loop_alloc_failures(void **state)
{
    struct run r;
    wa_stream_opts so;
    char url[128];
    long n;
    int rc, ok = 0;

    (void)state;
    for (n = 0; n < 40 && !ok; n++) {
        run_init(&r, FAKE_SOCKS5, FB_RELAY, "alice", "s3cret");
        snprintf(url, sizeof url, "socks5h://alice:s3cret@127.0.0.1:%d", r.fp.port);
        memset(&so, 0, sizeof so);
        so.host = "wa.test";
        so.port = (uint16_t)r.port;
        so.tls = g_client_ctx;
        so.proxy = url;
        wa__alloc_fail_after(n);
        rc = wa_stream_connect(&r.loop, &so, &client_cbs, &r, &r.client);
        wa__alloc_fail_after(-1);
        if (rc != 0) {
            assert_true(rc == WA_ENOMEM || rc == WA_ETLS);
            wa_listener_close(r.listener);
            fake_stop(&r.fp);
            assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
            assert_int_equal(uv_loop_close(&r.loop), 0);
            wa_buf_cleanup(&r.rx);
            free(r.sent);
            continue;
        }
        run_finish(&r);
        ok = r.echoed;
    }
    assert_true(ok); /* with enough allocations it works */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_good),
        cmocka_unit_test(test_url_bad),
        cmocka_unit_test(test_socks5_ok),
        cmocka_unit_test(test_socks5_errors),
        cmocka_unit_test(test_tunnel_init_bad),
        cmocka_unit_test(test_http_ok),
        cmocka_unit_test(test_http_errors),
        cmocka_unit_test(test_loop_socks5h),
        cmocka_unit_test(test_loop_socks5_local),
        cmocka_unit_test(test_loop_http),
        cmocka_unit_test(test_loop_early_data),
        cmocka_unit_test(test_loop_wrong_password),
        cmocka_unit_test(test_loop_refused),
        cmocka_unit_test(test_loop_verifies_real_host),
        cmocka_unit_test(test_loop_timeout_and_close),
        cmocka_unit_test(test_loop_unreachable),
        cmocka_unit_test(test_loop_bad_url),
        cmocka_unit_test(test_loop_alloc_failures),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
