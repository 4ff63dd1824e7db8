/*
 * fuzz.c - fuzz target "proxy": proxy URLs and proxy replies into lib/net/proxy.c.
 *
 * Input layout: byte 0 selects the mode, byte 1 seeds the chunk sizes the rest is fed in.
 *   mode 0  the rest is a proxy URL (NUL-terminated copy) for wa_proxy_url_parse; a parsed
 *           URL then starts an engine to "example.com" (or 127.0.0.1 for socks5://).
 *   mode 1  SOCKS5 (socks5h://) with credentials: the rest is the proxy's replies.
 *   mode 2  SOCKS5 without credentials, target an IPv6 literal.
 *   mode 3  HTTP CONNECT with credentials: the rest is the proxy's response.
 * The engine's result must be consistent: 0 consumes at most what was fed, WA_EAGAIN all of
 * it, errors are sticky with a text; output is drained after every feed.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/proxy.h"
#include "wa/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint32_t sink_sum;

static void drain(wa_proxy_tunnel *t)
{
    wa_slice s = wa_proxy_tunnel_output(t);
    size_t i;

    for (i = 0; i < s.len; i++)
        sink_sum += s.ptr[i];
    wa_proxy_tunnel_output_done(t);
}

static void run_engine(const wa_proxy_url *u, const char *host, const uint8_t *data, size_t size,
                       uint8_t seed)
{
    wa_proxy_tunnel t;
    size_t off = 0, chunk, used;
    int rc = WA_EAGAIN;

    if (wa_proxy_tunnel_init(&t, u, host, 443) != 0) {
        wa_proxy_tunnel_cleanup(&t);
        return;
    }
    drain(&t);
    while (off < size && rc == WA_EAGAIN) {
        chunk = 1 + (seed % 7 == 0 ? size : (size_t)(seed % 13));
        if (chunk > size - off)
            chunk = size - off;
        seed = (uint8_t)(seed * 33 + 7);
        used = (size_t)-1;
        rc = wa_proxy_tunnel_feed(&t, data + off, chunk, &used);
        if (rc == WA_EAGAIN && used != chunk)
            abort();
        if (rc == 0 && used > chunk)
            abort();
        if (rc == 0 || rc == WA_EAGAIN)
            drain(&t);
        off += chunk;
    }
    if (rc != 0 && rc != WA_EAGAIN) {
        if (wa_proxy_tunnel_error(&t)[0] == '\0' || wa_proxy_tunnel_feed(&t, data, 1, &used) != rc)
            abort();
        sink_sum += (uint32_t)strlen(wa_proxy_tunnel_error(&t));
    }
    wa_proxy_tunnel_cleanup(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wa_proxy_url u;
    char *url;
    uint8_t mode, seed;

    if (size < 2)
        return 0;
    mode = data[0] & 3;
    seed = data[1];
    data += 2;
    size -= 2;
    switch (mode) {
    case 0:
        url = malloc(size + 1);
        if (!url)
            return 0;
        memcpy(url, data, size);
        url[size] = '\0';
        if (wa_proxy_url_parse(url, &u) == 0) {
            run_engine(&u, u.kind == WA_PROXY_SOCKS5 ? "127.0.0.1" : "example.com",
                       (const uint8_t *)"\x05\x00\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12,
                       seed);
            wa_proxy_url_wipe(&u);
        }
        free(url);
        break;
    case 1:
        if (wa_proxy_url_parse("socks5h://user:p%40ss@proxy:1080", &u) == 0)
            run_engine(&u, "example.com", data, size, seed);
        break;
    case 2:
        if (wa_proxy_url_parse("socks5://proxy", &u) == 0)
            run_engine(&u, "2001:db8::1", data, size, seed);
        break;
    default:
        if (wa_proxy_url_parse("http://user:pass@proxy:3128", &u) == 0)
            run_engine(&u, "example.com", data, size, seed);
        break;
    }
    return 0;
}
