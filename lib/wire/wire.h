/*
 * wire.h - the whole WhatsApp Web transport stack of one connection, sans-I/O, in either role:
 *
 *     socket bytes <-> WebSocket (ws/) <-> WA framing (frame/) <-> Noise XX (noise/)
 *                  <-> binary nodes (bnode/)
 *
 * The client (libwa) and the simulator (wasim) both drive one wa_wire per connection: feed the
 * bytes read from the socket, take events, write what wa_wire_output() holds to the socket.
 * The handshake runs by itself from what the config gives it: the client's ClientPayload, the
 * server's certificate chain. No I/O, timers or clocks inside (the certificate check takes the
 * time from the config).
 *
 * Events (wa_wire_next):
 *   WA_WIRE_EV_REQUEST  server: a WebSocket upgrade request (path, origin): call wa_wire_accept
 *                       or wa_wire_reject before the next call.
 *   WA_WIRE_EV_OPEN     the Noise handshake is done; the server can now read the client's static
 *                       key and ClientPayload (wa_wire_remote_static, wa_wire_client_payload)
 *                       and the dictionary version it asked for.
 *   WA_WIRE_EV_NODE     a decoded stanza; ev->node lives in the wire's arena until the next
 *                       call to wa_wire_next / wa_wire_feed.
 *   WA_WIRE_EV_CLOSE    the peer closed the WebSocket (ev->close_code); nothing more follows.
 *
 * Memory: while idle a wire holds no buffers (every buffer is released when empty) and no
 * handshake state (freed after the split). Errors are sticky: after one, every call returns it.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_WIRE_WIRE_H
#define WA_WIRE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "bnode/node.h"
#include "core/arena.h"
#include "core/buf.h"
#include "frame/frame.h"
#include "noise/noise.h"
#include "ws/ws.h"

enum wa_wire_role {
    WA_WIRE_CLIENT = 1,
    WA_WIRE_SERVER = 2,
};

enum wa_wire_event_type {
    WA_WIRE_EV_REQUEST = 1,
    WA_WIRE_EV_OPEN,
    WA_WIRE_EV_NODE,
    WA_WIRE_EV_CLOSE,
};

/* Cap on bytes waiting in the output buffer (a stanza is at most a 16 MiB frame). */
#define WA_WIRE_OUTPUT_MAX ((size_t)20 << 20)
/* Arena cap for one decoded stanza. */
#define WA_WIRE_ARENA_MAX WA_BNODE_ARENA_MAX

typedef struct wa_wire_config {
    int role;                   /* enum wa_wire_role */
    const uint8_t *static_priv; /* 32-byte Noise static private key (copied into the handshake) */
    /* client */
    const char *host;          /* Host header, e.g. "web.whatsapp.com" */
    const char *path;          /* e.g. "/ws/chat" */
    const char *origin;        /* NULL = "https://web.whatsapp.com" */
    const char *extra_headers; /* "Name: value\r\n" lines or NULL */
    uint8_t dict_version;      /* 2 or 3 */
    const uint8_t *routing;    /* edge routing info for the ED header, or NULL */
    size_t routing_len;
    const uint8_t *root_pub; /* trusted certificate root (32 bytes); NULL = WhatsApp's */
    uint64_t now;            /* unix seconds for certificate validity; 0 = current time */
    const uint8_t *payload;  /* serialized ClientPayload (copied) */
    size_t payload_len;
    /* server */
    const uint8_t *cert_chain; /* serialized CertChain naming our static key (borrowed: must
                                * outlive the handshake) */
    size_t cert_chain_len;
} wa_wire_config;

typedef struct wa_wire_event {
    int type;            /* enum wa_wire_event_type */
    const wa_node *node; /* NODE */
    int close_code;      /* CLOSE */
    wa_slice path;       /* REQUEST */
    wa_slice origin;     /* REQUEST */
} wa_wire_event;

typedef struct wa_wire {
    int role;
    int state;      /* internal */
    int err;        /* sticky */
    int hello_sent; /* our first handshake message is out */
    const char *reason;
    uint8_t dict; /* dictionary version in use */
    wa_ws ws;
    wa_frame frame;
    wa_noise_hs *hs; /* heap, only during the handshake */
    wa_noise_transport tr;
    wa_buf out;       /* bytes for the socket */
    wa_buf scratch;   /* reused for decryption */
    wa_arena arena;   /* the last NODE event's tree */
    uint8_t *payload; /* client: ClientPayload copy until sent */
    size_t payload_len;
    const uint8_t *cert_chain;
    size_t cert_chain_len;
    uint8_t static_priv[WA_NOISE_KEY_LEN];
    uint8_t remote_static[WA_NOISE_KEY_LEN];
    uint8_t *client_payload; /* server: the ClientPayload received (heap) */
    size_t client_payload_len;
    const uint8_t *root_pub;
    uint64_t now;
} wa_wire;

/* Set up a wire. The client queues its WebSocket upgrade request in the output at once.
 * 0, WA_EINVAL (bad role/missing keys/payload/chain), WA_ENOMEM. */
int wa_wire_init(wa_wire *w, const wa_wire_config *cfg);
/* Wipe keys and free everything. */
void wa_wire_cleanup(wa_wire *w);

/* Bytes read from the socket. 0, or the sticky error. Invalidates the last event's node. */
int wa_wire_feed(wa_wire *w, const uint8_t *data, size_t len);
/* Next event: 0 and *ev, WA_EAGAIN (need more bytes), or a sticky error (reason in
 * wa_wire_reason). Handshake messages and pongs are produced into the output on the way. */
int wa_wire_next(wa_wire *w, wa_wire_event *ev);

/* Server, after WA_WIRE_EV_REQUEST. */
int wa_wire_accept(wa_wire *w);
int wa_wire_reject(wa_wire *w, int http_status);

/* Encode, encrypt and frame a stanza into the output. 0, WA_ESTATE before OPEN,
 * WA_ELIMIT/WA_ENOMEM, encoder errors. */
int wa_wire_send_node(wa_wire *w, const wa_node *n);
/* Queue a WebSocket close frame (the Noise stream simply ends). */
int wa_wire_close(wa_wire *w, int code, const char *reason);

/* Free the buffers a wire keeps between reads for speed (the decryption scratch, sized by the
 * largest frame so far; an empty output). For an idle connection, e.g. at a keep-alive; not
 * between wa_wire_next and the use of the event it returned. */
void wa_wire_trim(wa_wire *w);
/* Bytes waiting for the socket ({NULL,0} if none); after writing them call wa_wire_consumed. */
wa_slice wa_wire_output(const wa_wire *w);
void wa_wire_consumed(wa_wire *w, size_t n);

int wa_wire_is_open(const wa_wire *w);
/* Static text on why the wire failed ("" if it did not). */
const char *wa_wire_reason(const wa_wire *w);
/* Server after OPEN: the client's 32-byte Noise static key and ClientPayload bytes. */
const uint8_t *wa_wire_remote_static(const wa_wire *w);
wa_slice wa_wire_client_payload(const wa_wire *w);
/* Dictionary version: the client's configured one, or the one the server received. */
int wa_wire_dict(const wa_wire *w);

#endif
