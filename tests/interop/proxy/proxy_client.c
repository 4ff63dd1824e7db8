/* proxy_client.c - one wa_stream through a real proxy (run by run.sh).
 *
 *   proxy_client --echo-port P --host H --proxy URL (--expect-ok | --expect CODE --text TEXT)
 *                [--target-port Q]
 *
 * Starts a wa_listener TLS echo server on 127.0.0.1:P (a self-signed certificate for
 * "localhost", 127.0.0.1 and ::1, trusted by the client and nothing else), then connects to
 * H:Q (Q defaults to P) through the proxy URL with TLS verification on. With --expect-ok it
 * sends 256 KiB and checks they come back intact; with --expect it checks that on_connect and
 * on_close report CODE (a name such as WA_EPROXYAUTH) and that wa_stream_last_error contains
 * TEXT. Exit status 0 when the expectation holds, 1 otherwise (the reason on stderr). The
 * password in the URL is never printed: the URL is shown with its user info replaced.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "net/stream.h"
#include "tls/tls.h"
#include "wa/error.h"

#define PAYLOAD    (256 * 1024)
#define GUARD_MS   30000
#define CONNECT_MS 15000

struct state {
    uv_loop_t loop;
    uv_timer_t guard;
    wa_listener *listener;
    wa_stream *client;
    uint8_t *sent;
    wa_buf rx;
    int connect_status, close_reason, connect_calls, close_calls, echoed, accepts;
    char error[400];
};

static void srv_data(wa_stream *s, const uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    if (wa_stream_write(s, data, len) != 0)
        wa_stream_close(s);
}

static void srv_accept(wa_listener *l, wa_stream *s, void *ud)
{
    struct state *st = ud;
    wa_stream_cbs cbs = {NULL, srv_data, NULL, NULL};

    (void)l;
    st->accepts++;
    wa_stream_set_callbacks(s, &cbs, st);
}

static void finish(struct state *st)
{
    if (st->listener) {
        wa_listener_close(st->listener);
        st->listener = NULL;
    }
    if (!uv_is_closing((uv_handle_t *)&st->guard))
        uv_close((uv_handle_t *)&st->guard, NULL);
}

static void cli_connect(wa_stream *s, int status, void *ud)
{
    struct state *st = ud;

    st->connect_calls++;
    st->connect_status = status;
    snprintf(st->error, sizeof st->error, "%s", wa_stream_last_error(s));
    if (status == 0 && wa_stream_write(s, st->sent, PAYLOAD) != 0)
        wa_stream_close(s);
}

static void cli_data(wa_stream *s, const uint8_t *data, size_t len, void *ud)
{
    struct state *st = ud;

    if (wa_buf_append(&st->rx, data, len) != 0) {
        wa_stream_close(s);
        return;
    }
    if (st->rx.len == PAYLOAD) {
        st->echoed = memcmp(st->rx.data, st->sent, PAYLOAD) == 0;
        wa_stream_close(s);
    }
}

static void cli_close(wa_stream *s, int reason, void *ud)
{
    struct state *st = ud;

    st->close_calls++;
    st->close_reason = reason;
    if (reason != 0 && st->connect_calls == 0)
        snprintf(st->error, sizeof st->error, "%s", wa_stream_last_error(s));
    st->client = NULL;
    finish(st);
}

static void on_guard(uv_timer_t *t)
{
    struct state *st = t->data;

    fprintf(stderr, "proxy_client: no result after %d ms\n", GUARD_MS);
    if (st->client)
        wa_stream_close(st->client);
    else
        finish(st);
}

static int code_by_name(const char *name)
{
    int c;

    for (c = -1; c > -100; c--)
        if (strcmp(wa_err_name(c), name) == 0)
            return c;
    return 1;
}

/* The URL with user info replaced, for messages. */
static void redact(const char *url, char *out, size_t cap)
{
    const char *sep = strstr(url, "://"), *at = sep ? strchr(sep + 3, '@') : NULL, *p;

    if (!sep || !at) {
        snprintf(out, cap, "%s", url);
        return;
    }
    for (p = at; (p = strchr(p + 1, '@')) != NULL;)
        at = p;
    snprintf(out, cap, "%.*s***@%s", (int)(sep + 3 - url), url, at + 1);
}

static void usage(void)
{
    fprintf(stderr, "usage: proxy_client --echo-port P --host H --proxy URL "
                    "(--expect-ok | --expect WA_Exxx --text TEXT) [--target-port Q]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = NULL, *proxy = NULL, *expect = NULL, *text = "";
    int echo_port = 0, target_port = 0, expect_ok = 0, i, ok, want = 0;
    char *cert = NULL, *key = NULL, shown[512];
    wa_tls_ctx *sctx = NULL, *cctx = NULL;
    wa_tls_client_opts co;
    wa_listener_opts lo;
    wa_stream_opts so;
    wa_stream_cbs cbs = {cli_connect, cli_data, NULL, cli_close};
    struct state st;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--expect-ok")) {
            expect_ok = 1;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "--echo-port"))
            echo_port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--target-port"))
            target_port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--host"))
            host = argv[++i];
        else if (!strcmp(argv[i], "--proxy"))
            proxy = argv[++i];
        else if (!strcmp(argv[i], "--expect"))
            expect = argv[++i];
        else if (!strcmp(argv[i], "--text"))
            text = argv[++i];
        else
            usage();
    }
    if (!host || !proxy || echo_port <= 0 || echo_port > 65535 || expect_ok == !!expect)
        usage();
    if (expect) {
        want = code_by_name(expect);
        if (want > 0) {
            fprintf(stderr, "proxy_client: unknown code %s\n", expect);
            return 2;
        }
    }
    if (!target_port)
        target_port = echo_port;
    redact(proxy, shown, sizeof shown);
    wa_log_set_level(WA_LOG_WARN);

    memset(&st, 0, sizeof st);
    st.connect_status = st.close_reason = 1;
    wa_buf_init(&st.rx, PAYLOAD);
    st.sent = malloc(PAYLOAD);
    if (!st.sent || uv_loop_init(&st.loop) != 0)
        return 1;
    for (i = 0; i < PAYLOAD; i++)
        st.sent[i] = (uint8_t)(i * 31 + 7);
    memset(&co, 0, sizeof co);
    if (wa_tls_generate_self_signed(NULL, &cert, &key) != 0 ||
        wa_tls_ctx_new_server(cert, key, &sctx) != 0)
        return 1;
    co.ca_pem = cert;
    co.no_system_ca = 1;
    if (wa_tls_ctx_new_client(&co, &cctx) != 0)
        return 1;

    memset(&lo, 0, sizeof lo);
    lo.host = "127.0.0.1";
    lo.port = (uint16_t)echo_port;
    lo.tls = sctx;
    lo.on_accept = srv_accept;
    lo.user_data = &st;
    if (wa_listener_start(&st.loop, &lo, &st.listener) != 0) {
        fprintf(stderr, "proxy_client: cannot listen on 127.0.0.1:%d\n", echo_port);
        return 1;
    }
    uv_timer_init(&st.loop, &st.guard);
    st.guard.data = &st;
    uv_timer_start(&st.guard, on_guard, GUARD_MS, 0);

    memset(&so, 0, sizeof so);
    so.host = host;
    so.port = (uint16_t)target_port;
    so.tls = cctx;
    so.timeout_ms = CONNECT_MS;
    so.proxy = proxy;
    if (wa_stream_connect(&st.loop, &so, &cbs, &st, &st.client) != 0) {
        fprintf(stderr, "proxy_client: wa_stream_connect refused %s\n", shown);
        return 1;
    }
    uv_run(&st.loop, UV_RUN_DEFAULT);
    uv_loop_close(&st.loop);

    if (expect_ok) {
        ok = st.connect_status == 0 && st.echoed && st.close_reason == 0 && st.accepts == 1;
        if (ok)
            printf("PASS %s -> %s:%d: %d bytes echoed through TLS\n", shown, host, target_port,
                   PAYLOAD);
        else
            fprintf(stderr, "FAIL %s -> %s:%d: status %s, close %s, echoed %d: %s\n", shown, host,
                    target_port, wa_err_name(st.connect_status), wa_err_name(st.close_reason),
                    st.echoed, st.error);
    } else {
        ok = st.connect_calls == 1 && st.connect_status == want && st.close_reason == want &&
             strstr(st.error, text) != NULL && st.accepts == 0;
        if (ok)
            printf("PASS %s -> %s:%d: %s \"%s\"\n", shown, host, target_port, expect, st.error);
        else
            fprintf(stderr, "FAIL %s -> %s:%d: want %s \"%s\", got %s \"%s\"\n", shown, host,
                    target_port, expect, text, wa_err_name(st.connect_status), st.error);
    }
    wa_buf_cleanup(&st.rx);
    free(st.sent);
    wa_tls_ctx_free(cctx);
    wa_tls_ctx_free(sctx);
    wa_free(cert);
    wa_tls_pem_free(key);
    return ok ? 0 : 1;
}
