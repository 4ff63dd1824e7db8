/*
 * wire.c - one connection's transport stack (WebSocket -> WA framing -> Noise -> binary nodes)
 * as a single sans-I/O engine for both roles. See wire.h.
 *
 * Flow, client:  init: upgrade request -> [101] -> intro + clientHello -> [serverHello: chain
 *                verified by noise/] -> clientFinish{static, ClientPayload} -> split -> OPEN.
 * Flow, server:  [upgrade request] -> REQUEST event -> accept -> [intro + clientHello] ->
 *                serverHello{ephemeral, static, CertChain} -> [clientFinish] -> split -> OPEN.
 * After OPEN every frame is one Noise transport message holding flag byte + node.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "wire/wire.h"

#include <string.h>

#include "bnode/bnode.h"
#include "core/alloc.h"
#include "core/util.h"
#include "wa/error.h"

enum {
    ST_WS = 1, /* WebSocket handshake */
    ST_NOISE,  /* Noise handshake */
    ST_OPEN,   /* transport */
    ST_CLOSED, /* peer closed */
};

/* A handshake message or ClientPayload is small; transport frames are bounded by the frame
 * layer's 16 MiB. */
#define WIRE_SCRATCH_MAX ((size_t)17 << 20)

static int fail(wa_wire *w, int err, const char *reason)
{
    if (!w->err) {
        w->err = err;
        w->reason = reason;
    }
    return w->err;
}

/* Move whatever the WebSocket engine queued by itself (pongs, close replies) to the output. */
static int pump_ws_output(wa_wire *w)
{
    if (wa_ws_pending_output(&w->ws) == 0)
        return 0;
    return wa_ws_take_output(&w->ws, &w->out);
}

/* Frame a payload and send it as one binary WebSocket message. */
static int send_frame(wa_wire *w, const uint8_t *payload, size_t len)
{
    wa_buf framed;
    int rc;

    wa_buf_init(&framed, WIRE_SCRATCH_MAX);
    rc = wa_frame_write(&w->frame, payload, len, &framed);
    if (rc == 0)
        rc = wa_ws_send(&w->ws, WA_WS_OP_BINARY, framed.data, framed.len, &w->out);
    wa_buf_cleanup(&framed);
    return rc;
}

static int hs_begin(wa_wire *w, uint8_t dict)
{
    wa_noise_config nc;
    int rc;

    w->hs = wa_calloc(1, sizeof *w->hs);
    if (!w->hs)
        return fail(w, WA_ENOMEM, "out of memory");
    memset(&nc, 0, sizeof nc);
    nc.role = w->role == WA_WIRE_CLIENT ? WA_NOISE_INITIATOR : WA_NOISE_RESPONDER;
    wa_frame_make_intro(nc.prologue, dict);
    nc.static_priv = w->static_priv;
    nc.root_pub = w->root_pub;
    nc.now = w->now;
    rc = wa_noise_hs_init(w->hs, &nc);
    if (rc)
        return fail(w, rc, "noise: init failed");
    w->dict = dict;
    w->state = ST_NOISE;
    return 0;
}

static void hs_end(wa_wire *w)
{
    if (w->hs) {
        wa_noise_hs_cleanup(w->hs);
        wa_free(w->hs);
        w->hs = NULL;
    }
}

/* Our turn in the handshake: write the next message. */
static int hs_write(wa_wire *w)
{
    wa_buf msg;
    const uint8_t *payload = NULL;
    size_t len = 0;
    int rc;

    if (w->role == WA_WIRE_SERVER) {
        payload = w->cert_chain;
        len = w->cert_chain_len;
    } else if (w->hello_sent) { /* the client's second message carries the ClientPayload */
        payload = w->payload;
        len = w->payload_len;
    }
    wa_buf_init(&msg, WA_NOISE_HS_MAX_MSG + 1024);
    rc = wa_noise_hs_write(w->hs, payload, len, &msg);
    if (rc == 0)
        rc = send_frame(w, msg.data, msg.len);
    wa_buf_cleanup(&msg);
    if (rc)
        return fail(w, rc, "noise: cannot write handshake message");
    w->hello_sent = 1;
    return 0;
}

static int hs_finish(wa_wire *w)
{
    wa_slice p;
    int rc;

    if (w->role == WA_WIRE_SERVER) {
        const uint8_t *rs = wa_noise_hs_remote_static(w->hs);
        p = wa_noise_hs_remote_payload(w->hs);
        if (!rs)
            return fail(w, WA_EPROTO, "noise: no client static key");
        memcpy(w->remote_static, rs, WA_NOISE_KEY_LEN);
        w->client_payload = wa_malloc(p.len ? p.len : 1);
        if (!w->client_payload)
            return fail(w, WA_ENOMEM, "out of memory");
        if (p.len)
            memcpy(w->client_payload, p.ptr, p.len);
        w->client_payload_len = p.len;
    }
    rc = wa_noise_hs_split(w->hs, &w->tr);
    hs_end(w);
    if (rc)
        return fail(w, rc, "noise: split failed");
    if (w->payload) {
        wa_wipe(w->payload, w->payload_len);
        wa_free(w->payload);
        w->payload = NULL;
        w->payload_len = 0;
    }
    w->state = ST_OPEN;
    wa_frame_set_max_len(&w->frame, WA_FRAME_MAX_LEN);
    return 0;
}

/* One WA frame arrived. Returns 1 with *ev filled, 0 to go on, or an error. */
static int on_frame(wa_wire *w, wa_slice fr, wa_wire_event *ev)
{
    int rc;

    if (w->state == ST_NOISE) {
        if (!w->hs) { /* server: the first frame; the intro is known now */
            uint8_t dict = 0;
            if (wa_frame_peer_intro(&w->frame, &dict, NULL) != 0)
                return fail(w, WA_EPROTO, "frame: no intro");
            if (dict != 2 && dict != 3)
                return fail(w, WA_EPROTO, "frame: unsupported dictionary version");
            rc = hs_begin(w, dict);
            if (rc)
                return rc;
        }
        rc = wa_noise_hs_read(w->hs, fr.ptr, fr.len);
        if (rc)
            return fail(w, rc, wa_noise_hs_reason(w->hs));
        if (wa_noise_hs_state(w->hs) == WA_NOISE_HS_WRITE) {
            rc = hs_write(w);
            if (rc)
                return rc;
        }
        if (wa_noise_hs_state(w->hs) == WA_NOISE_HS_DONE) {
            rc = hs_finish(w);
            if (rc)
                return rc;
            memset(ev, 0, sizeof *ev);
            ev->type = WA_WIRE_EV_OPEN;
            return 1;
        }
        return 0;
    }
    if (w->state == ST_OPEN) {
        uint8_t flags;
        wa_slice node_bytes;
        wa_node *node = NULL;

        wa_buf_reset(&w->scratch);
        rc = wa_noise_open_node(&w->tr, fr.ptr, fr.len, &w->scratch, &flags, &node_bytes);
        if (rc)
            return fail(w, rc, "noise: cannot decrypt frame");
        /* decode_frame wants the flag byte in front: it is right before node_bytes */
        rc = wa_bnode_decode_frame(node_bytes.ptr - 1, node_bytes.len + 1, w->dict, &w->arena,
                                   &node);
        if (rc)
            return fail(w, rc, "bnode: cannot decode stanza");
        memset(ev, 0, sizeof *ev);
        ev->type = WA_WIRE_EV_NODE;
        ev->node = node;
        return 1;
    }
    return fail(w, WA_EPROTO, "frame before the WebSocket is open");
}

int wa_wire_init(wa_wire *w, const wa_wire_config *cfg)
{
    int rc;

    memset(w, 0, sizeof *w);
    if (!cfg || !cfg->static_priv)
        return WA_EINVAL;
    if (cfg->role == WA_WIRE_CLIENT) {
        if (!cfg->host || !cfg->payload || (cfg->dict_version != 2 && cfg->dict_version != 3))
            return WA_EINVAL;
    } else if (cfg->role == WA_WIRE_SERVER) {
        if (!cfg->cert_chain || !cfg->cert_chain_len)
            return WA_EINVAL;
    } else {
        return WA_EINVAL;
    }
    w->role = cfg->role;
    memcpy(w->static_priv, cfg->static_priv, WA_NOISE_KEY_LEN);
    w->root_pub = cfg->root_pub;
    w->now = cfg->now;
    w->cert_chain = cfg->cert_chain;
    w->cert_chain_len = cfg->cert_chain_len;
    wa_buf_init(&w->out, WA_WIRE_OUTPUT_MAX);
    wa_buf_init(&w->scratch, WIRE_SCRATCH_MAX);
    wa_arena_init(&w->arena, WA_WIRE_ARENA_MAX);
    wa_frame_init(&w->frame, w->role == WA_WIRE_CLIENT ? WA_FRAME_CLIENT : WA_FRAME_SERVER);
    /* Handshake messages are small: until the transport is open a peer may not announce a
     * 16 MiB frame and make us buffer it. */
    wa_frame_set_max_len(&w->frame, WA_NOISE_HS_MAX_MSG);
    rc = wa_ws_init(&w->ws, w->role == WA_WIRE_CLIENT ? WA_WS_CLIENT : WA_WS_SERVER,
                    WA_WS_DEFAULT_MAX_MESSAGE);
    if (rc)
        goto out;
    w->state = ST_WS;
    if (w->role == WA_WIRE_CLIENT) {
        w->payload = wa_malloc(cfg->payload_len ? cfg->payload_len : 1);
        if (!w->payload) {
            rc = WA_ENOMEM;
            goto out;
        }
        memcpy(w->payload, cfg->payload, cfg->payload_len);
        w->payload_len = cfg->payload_len;
        w->dict = cfg->dict_version;
        rc = wa_frame_set_intro(&w->frame, cfg->dict_version, cfg->routing, cfg->routing_len);
        if (rc)
            goto out;
        rc = wa_ws_client_handshake(&w->ws, &w->out, cfg->host, cfg->path ? cfg->path : "/ws/chat",
                                    cfg->origin, cfg->extra_headers);
        if (rc)
            goto out;
    }
out:
    if (rc)
        wa_wire_cleanup(w);
    return rc;
}

void wa_wire_cleanup(wa_wire *w)
{
    hs_end(w);
    wa_ws_cleanup(&w->ws);
    wa_frame_cleanup(&w->frame);
    wa_noise_transport_cleanup(&w->tr);
    wa_buf_cleanup(&w->out);
    wa_buf_wipe_cleanup(&w->scratch);
    wa_arena_cleanup(&w->arena);
    if (w->payload) {
        wa_wipe(w->payload, w->payload_len);
        wa_free(w->payload);
    }
    wa_free(w->client_payload);
    wa_wipe(w->static_priv, sizeof w->static_priv);
    w->payload = NULL;
    w->client_payload = NULL;
}

int wa_wire_feed(wa_wire *w, const uint8_t *data, size_t len)
{
    int rc;

    if (w->err)
        return w->err;
    wa_arena_cleanup(&w->arena);
    rc = wa_ws_feed(&w->ws, data, len);
    if (rc)
        return fail(w, rc, wa_ws_error_reason(&w->ws));
    return 0;
}

int wa_wire_next(wa_wire *w, wa_wire_event *ev)
{
    int rc;

    if (w->err)
        return w->err;
    wa_arena_cleanup(&w->arena);
    for (;;) {
        wa_ws_event wev;
        wa_slice fr;

        if (w->state == ST_NOISE || w->state == ST_OPEN) {
            rc = wa_frame_next(&w->frame, &fr);
            if (rc == 0) {
                rc = on_frame(w, fr, ev);
                if (rc == 1)
                    return 0;
                if (rc < 0)
                    return rc;
                continue;
            }
            if (rc != WA_EAGAIN)
                return fail(w, rc, "frame: malformed framing");
        }
        if (w->state == ST_CLOSED)
            return WA_EAGAIN;
        rc = wa_ws_next_event(&w->ws, &wev);
        if (pump_ws_output(w) != 0)
            return fail(w, WA_ENOMEM, "output buffer full");
        if (rc == WA_EAGAIN) {
            /* the last frames' plaintext is dead (the arena was cleared on entry): wiped; the
             * buffer itself goes at wa_wire_trim (an idle connection keeps none) */
            if (w->scratch.data)
                wa_wipe(w->scratch.data, w->scratch.cap);
            wa_buf_reset(&w->scratch);
            wa_buf_release_idle(&w->out);
            return WA_EAGAIN;
        }
        if (rc)
            return fail(w, rc, wa_ws_error_reason(&w->ws));
        switch (wev.type) {
        case WA_WS_EV_HANDSHAKE_REQUEST:
            memset(ev, 0, sizeof *ev);
            ev->type = WA_WIRE_EV_REQUEST;
            ev->path = wev.path;
            ev->origin = wev.origin;
            return 0;
        case WA_WS_EV_OPEN:
            if (w->role == WA_WIRE_CLIENT) {
                rc = hs_begin(w, w->dict);
                if (rc == 0)
                    rc = hs_write(w); /* intro + clientHello */
                if (rc)
                    return rc;
            } else {
                w->state = ST_NOISE; /* the handshake starts with the first frame */
            }
            break;
        case WA_WS_EV_MESSAGE:
            if (w->state != ST_NOISE && w->state != ST_OPEN)
                return fail(w, WA_EPROTO, "message before the WebSocket is open");
            rc = wa_frame_feed(&w->frame, wev.data.ptr, wev.data.len);
            if (rc)
                return fail(w, rc, "frame: bad intro or oversized frame");
            break;
        case WA_WS_EV_CLOSE:
            w->state = ST_CLOSED;
            memset(ev, 0, sizeof *ev);
            ev->type = WA_WIRE_EV_CLOSE;
            ev->close_code = wev.close_code;
            return 0;
        default: /* ping (pong already queued), pong */
            break;
        }
    }
}

int wa_wire_accept(wa_wire *w)
{
    int rc;

    if (w->err)
        return w->err;
    rc = wa_ws_server_accept(&w->ws, NULL, &w->out);
    if (rc)
        return fail(w, rc, "ws: cannot accept");
    return 0;
}

int wa_wire_reject(wa_wire *w, int http_status)
{
    int rc;

    if (w->err)
        return w->err;
    rc = wa_ws_server_reject(&w->ws, http_status, NULL, &w->out);
    if (rc)
        return fail(w, rc, "ws: cannot reject");
    return fail(w, WA_ECLOSED, "request rejected");
}

int wa_wire_send_node(wa_wire *w, const wa_node *n)
{
    wa_buf plain, sealed;
    int rc;

    if (w->err)
        return w->err;
    if (w->state != ST_OPEN)
        return WA_ESTATE;
    wa_buf_init(&plain, WIRE_SCRATCH_MAX);
    wa_buf_init(&sealed, WIRE_SCRATCH_MAX);
    rc = wa_bnode_encode_frame(n, w->dict, &plain);
    if (rc)
        goto out;
    rc = wa_noise_encrypt(&w->tr, plain.data, plain.len, &sealed);
    if (rc)
        goto out;
    rc = send_frame(w, sealed.data, sealed.len);
out:
    wa_buf_wipe_cleanup(&plain);
    wa_buf_cleanup(&sealed);
    return rc;
}

int wa_wire_close(wa_wire *w, int code, const char *reason)
{
    int rc = wa_ws_close(&w->ws, code, reason, &w->out);
    if (rc == WA_ECLOSED)
        return 0;
    return rc;
}

wa_slice wa_wire_output(const wa_wire *w)
{
    wa_slice s = {NULL, 0};

    if (w->out.len) {
        s.ptr = w->out.data;
        s.len = w->out.len;
    }
    return s;
}

void wa_wire_trim(wa_wire *w)
{
    wa_buf_wipe_cleanup(&w->scratch); /* wiped at every read's end already; freed here */
    wa_buf_release_idle(&w->out);
}

void wa_wire_consumed(wa_wire *w, size_t n)
{
    wa_buf_consume(&w->out, n);
    wa_buf_release_idle(&w->out);
}

int wa_wire_is_open(const wa_wire *w)
{
    return w->state == ST_OPEN && !w->err;
}

const char *wa_wire_reason(const wa_wire *w)
{
    return w->err ? (w->reason ? w->reason : wa_strerror(w->err)) : "";
}

const uint8_t *wa_wire_remote_static(const wa_wire *w)
{
    return w->client_payload ? w->remote_static : NULL;
}

wa_slice wa_wire_client_payload(const wa_wire *w)
{
    wa_slice s = {w->client_payload, w->client_payload_len};
    return s;
}

int wa_wire_dict(const wa_wire *w)
{
    return w->dict;
}
