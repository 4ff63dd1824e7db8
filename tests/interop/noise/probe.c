/*
 * probe.c - a minimal libwa client connection for the interop tests: connects to a WhatsApp
 * WebSocket URL (ws:// or wss://), runs the Noise handshake with a throw-away login
 * ClientPayload, and prints one line: "OPEN <first stanza tag>" or "REFUSED <code> <reason>".
 * Usage: probe URL ROOT_KEY_HEX|default [CA_FILE]
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/util.h"
#include "crypto/curve25519.h"
#include "net/stream.h"
#include "proto/client_payload.pb-c.h"
#include "proto/proto.h"
#include "wa/error.h"
#include "wire/wire.h"

typedef struct probe {
    wa_wire wire;
    wa_stream *st;
    int done;
} probe;

static void finish(probe *p, const char *line)
{
    if (p->done)
        return;
    p->done = 1;
    printf("%s\n", line);
    fflush(stdout);
    wa_stream_close(p->st);
}

static void flush(probe *p)
{
    wa_slice out = wa_wire_output(&p->wire);
    if (out.len && wa_stream_write(p->st, out.ptr, out.len) == 0)
        wa_wire_consumed(&p->wire, out.len);
}

static void on_connect(wa_stream *s, int status, void *ud)
{
    probe *p = ud;
    char line[256];

    (void)s;
    if (status) {
        snprintf(line, sizeof line, "REFUSED %s %s", wa_err_name(status), wa_strerror(status));
        finish(p, line);
        return;
    }
    flush(p);
}

static void on_data(wa_stream *s, const uint8_t *data, size_t len, void *ud)
{
    probe *p = ud;
    wa_wire_event ev;
    char line[512];
    int rc;

    (void)s;
    rc = wa_wire_feed(&p->wire, data, len);
    while (rc == 0 && (rc = wa_wire_next(&p->wire, &ev)) == 0) {
        if (ev.type == WA_WIRE_EV_NODE) {
            snprintf(line, sizeof line, "OPEN %s", ev.node->tag);
            finish(p, line);
            return;
        }
    }
    if (rc != WA_EAGAIN) {
        snprintf(line, sizeof line, "REFUSED %s %s", wa_err_name(rc), wa_wire_reason(&p->wire));
        finish(p, line);
        return;
    }
    flush(p);
}

static void on_close(wa_stream *s, int reason, void *ud)
{
    probe *p = ud;

    (void)s;
    if (!p->done) {
        char line[128];
        snprintf(line, sizeof line, "REFUSED %s closed", wa_err_name(reason ? reason : WA_ECLOSED));
        p->done = 1;
        printf("%s\n", line);
    }
}

int main(int argc, char **argv)
{
    static const wa_stream_cbs cbs = {on_connect, on_data, NULL, on_close};
    Wa__ClientPayload cp = WA__CLIENT_PAYLOAD__INIT;
    Wa__ClientPayload__UserAgent ua = WA__CLIENT_PAYLOAD__USER_AGENT__INIT;
    uv_loop_t loop;
    probe p;
    wa_wire_config wc;
    wa_stream_opts so;
    wa_tls_ctx *tls = NULL;
    wa_buf payload;
    uint8_t priv[32], pub[32], root[32];
    char host[128];
    const char *url, *rest, *slash;
    int tls_on, port, rc;

    if (argc < 3) {
        fprintf(stderr, "usage: probe URL ROOT_KEY_HEX|default [CA_FILE]\n");
        return 2;
    }
    url = argv[1];
    tls_on = strncmp(url, "wss://", 6) == 0;
    rest = url + (tls_on ? 6 : 5);
    slash = strchr(rest, '/');
    if (!slash || sscanf(rest, "%127[^:]:%d", host, &port) != 2) {
        fprintf(stderr, "probe: bad URL\n");
        return 2;
    }
    if (strcmp(argv[2], "default") != 0 && wa_hex_decode(root, 32, argv[2], strlen(argv[2]))) {
        fprintf(stderr, "probe: bad root key\n");
        return 2;
    }
    wa_x25519_keygen(priv, pub);
    cp.has_username = 1;
    cp.username = 15550009999ULL;
    cp.has_device = 1;
    cp.device = 1;
    cp.has_passive = 1;
    cp.has_pull = 1;
    cp.pull = 1;
    ua.has_platform = 1;
    ua.platform = WA__CLIENT_PAYLOAD__USER_AGENT__PLATFORM__WEB;
    cp.useragent = &ua;
    wa_buf_init(&payload, 4096);
    wa_proto_pack(&cp, &payload);

    memset(&wc, 0, sizeof wc);
    wc.role = WA_WIRE_CLIENT;
    wc.static_priv = priv;
    wc.host = host;
    wc.path = slash;
    wc.dict_version = 3;
    wc.root_pub = strcmp(argv[2], "default") == 0 ? NULL : root;
    wc.payload = payload.data;
    wc.payload_len = payload.len;
    memset(&p, 0, sizeof p);
    if (wa_wire_init(&p.wire, &wc) != 0)
        return 1;
    uv_loop_init(&loop);
    if (tls_on) {
        wa_tls_client_opts to;
        memset(&to, 0, sizeof to);
        to.ca_file = argc > 3 ? argv[3] : NULL;
        if (wa_tls_ctx_new_client(&to, &tls) != 0)
            return 1;
    }
    memset(&so, 0, sizeof so);
    so.host = host;
    so.port = (uint16_t)port;
    so.tls = tls;
    so.timeout_ms = 10000;
    rc = wa_stream_connect(&loop, &so, &cbs, &p, &p.st);
    if (rc) {
        printf("REFUSED %s connect\n", wa_err_name(rc));
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    wa_wire_cleanup(&p.wire);
    wa_buf_cleanup(&payload);
    if (tls)
        wa_tls_ctx_free(tls);
    return 0;
}
