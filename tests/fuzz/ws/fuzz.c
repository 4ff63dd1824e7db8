/*
 * fuzz.c - fuzz target "ws": arbitrary bytes into the WebSocket engine.
 *
 * Input layout: byte 0 selects the mode, byte 1 seeds the chunk sizes the rest is fed in.
 *   mode 0  server, raw: the bytes are the upgrade request (accepted or rejected) and frames.
 *   mode 1  server after a synthetic handshake: the bytes are client frames.
 *   mode 2  client, raw: the bytes are the server's response (its accept will not match unless
 *           the fuzzer guesses SHA-1) and frames.
 *   mode 3  client after a synthetic handshake: the bytes are server frames.
 *   bit 2   a small max_message (64) to reach the size limits.
 * Every event is touched (so ASan sees bad pointers), messages are echoed, output is drained.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "wa/error.h"
#include "ws/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint32_t sink_sum;

static void touch(wa_slice s)
{
    uint32_t h = 0;
    size_t i;

    for (i = 0; i < s.len; i++)
        h = h * 31 + s.ptr[i];
    sink_sum += h;
}

/* Pull events until the engine stops; react like a simple application would. */
static int pump(wa_ws *ws, wa_buf *out, unsigned flags)
{
    wa_ws_event ev;
    wa_slice v;
    int rc;

    while ((rc = wa_ws_next_event(ws, &ev)) == 0) {
        touch(ev.data);
        switch (ev.type) {
        case WA_WS_EV_HANDSHAKE_REQUEST:
            touch(ev.path);
            touch(ev.host);
            touch(ev.origin);
            if (wa_ws_request_header(ws, "user-agent", &v) == 0)
                touch(v);
            if (flags & 1)
                (void)wa_ws_server_reject(ws, 404, "no", out);
            else
                (void)wa_ws_server_accept(ws, NULL, out);
            break;
        case WA_WS_EV_MESSAGE:
            (void)wa_ws_send(ws, ev.opcode, ev.data.ptr, ev.data.len, out);
            break;
        case WA_WS_EV_PING:
            if (flags & 2)
                (void)wa_ws_close(ws, WA_WS_CLOSE_GOING_AWAY, "bye", out);
            break;
        default:
            break;
        }
        (void)wa_ws_take_output(ws, out);
        if (out->len > (1u << 20))
            wa_buf_reset(out);
    }
    (void)wa_ws_take_output(ws, out);
    wa_buf_reset(out);
    return rc;
}

/* Bring client c and server s to the open state; returns 0 on success. */
static int handshake(wa_ws *c, wa_ws *s, wa_buf *b, size_t max)
{
    wa_ws_event ev;
    int rc;

    if (wa_ws_init(c, WA_WS_CLIENT, max) || wa_ws_init(s, WA_WS_SERVER, max))
        return -1;
    rc = wa_ws_client_handshake(c, b, "web.whatsapp.com", "/ws/chat", NULL, "User-Agent: fuzz\r\n");
    if (!rc)
        rc = wa_ws_feed(s, b->data, b->len);
    wa_buf_reset(b);
    if (!rc)
        rc = wa_ws_next_event(s, &ev);
    if (!rc)
        rc = wa_ws_server_accept(s, NULL, b);
    if (!rc)
        rc = wa_ws_feed(c, b->data, b->len);
    wa_buf_reset(b);
    if (!rc)
        rc = wa_ws_next_event(c, &ev);
    if (!rc)
        rc = wa_ws_next_event(s, &ev);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wa_ws c, s, *target;
    wa_buf out;
    unsigned mode, seed;
    size_t pos, max;
    int rc = WA_EAGAIN;

    if (size < 2)
        return 0;
    mode = data[0];
    seed = data[1] | 1u;
    data += 2;
    size -= 2;
    max = (mode & 4) ? 64 : 0;
    wa_buf_init(&out, 4u << 20);
    memset(&c, 0, sizeof c);
    memset(&s, 0, sizeof s);

    switch (mode & 3) {
    case 0:
        if (wa_ws_init(&s, WA_WS_SERVER, max) || wa_ws_init(&c, WA_WS_CLIENT, max))
            goto out;
        target = &s;
        break;
    case 2:
        if (wa_ws_init(&c, WA_WS_CLIENT, max) || wa_ws_init(&s, WA_WS_SERVER, max))
            goto out;
        if (wa_ws_client_handshake(&c, &out, "h", "/", NULL, NULL))
            goto out;
        wa_buf_reset(&out);
        target = &c;
        break;
    default:
        if (handshake(&c, &s, &out, max))
            goto out;
        target = (mode & 3) == 1 ? &s : &c;
        break;
    }

    for (pos = 0; pos < size && (rc == 0 || rc == WA_EAGAIN);) {
        size_t n;

        seed = seed * 1103515245u + 12345u;
        n = ((seed >> 16) % 97) + 1;
        if ((seed >> 8) % 8 == 0)
            n = (seed >> 12) % 4096 + 1;
        if (n > size - pos)
            n = size - pos;
        rc = wa_ws_feed(target, data + pos, n);
        pos += n;
        if (rc == 0)
            rc = pump(target, &out, mode >> 3);
    }
    /* whatever state it ended in, these must not crash */
    (void)wa_ws_send(target, WA_WS_OP_BINARY, "x", 1, &out);
    (void)wa_ws_close(target, WA_WS_CLOSE_NORMAL, NULL, &out);
    (void)wa_ws_take_output(target, &out);
out:
    wa_ws_cleanup(&c);
    wa_ws_cleanup(&s);
    wa_buf_cleanup(&out);
    return 0;
}
