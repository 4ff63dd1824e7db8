/*
 * ws.h - sans-I/O WebSocket engine (RFC 6455), client and server roles.
 *
 * The engine never touches a socket: the caller feeds received bytes (wa_ws_feed), pulls events
 * (wa_ws_next_event) until WA_EAGAIN, writes what the send functions append to its own output
 * buffer, and drains the bytes the engine produced by itself (automatic pongs, the close reply,
 * the close frame or HTTP error sent when the peer breaks the protocol) with wa_ws_take_output.
 *
 * Roles:
 *   client  wa_ws_init(WA_WS_CLIENT) -> wa_ws_client_handshake writes the GET upgrade request ->
 *           feed the server's bytes -> WA_WS_EV_OPEN once a valid 101 (RFC 6455 4.1) arrived.
 *           Every frame sent is masked with a fresh random key; masked frames received are an
 *           error (5.1).
 *   server  wa_ws_init(WA_WS_SERVER) -> feed the client's bytes -> WA_WS_EV_HANDSHAKE_REQUEST
 *           (path, Host, Origin; any header via wa_ws_request_header) -> wa_ws_server_accept
 *           (writes the 101) or wa_ws_server_reject (writes e.g. 404 with a short body). Client
 *           frames must be masked (5.1). A malformed upgrade request makes next_event fail
 *           (WA_EHTTP, or WA_ELIMIT for a header block over WA_WS_HTTP_MAX) and queues a 400,
 *           405, 426 or 431 response for wa_ws_take_output.
 *   open    wa_ws_init_open starts in the open state, for when another HTTP server (e.g.
 *           libmicrohttpd) already did the upgrade. No WA_WS_EV_OPEN is reported then.
 *
 * Messages: fragments are reassembled into one WA_WS_EV_MESSAGE; text must be UTF-8 (else close
 * 1007); a message over max_message gives close 1009 and WA_ELIMIT; control frames are at most
 * 125 bytes and never fragmented. A ping is reported and answered (pong queued) automatically. A
 * close is reported once, answered once (echoing the code), then the engine is closed.
 *
 * Errors: after any protocol violation the engine keeps a sticky error (every later call returns
 * it), has queued a close frame with the matching status code (1002, 1007, 1009, 1011) if it was
 * open, and holds no input buffers. wa_ws_error_reason tells which rule was broken.
 *
 * Memory: the engine allocates nothing at init. It buffers received bytes only while a frame or
 * header block is incomplete, and releases its buffers whenever they become empty, so an idle
 * connection holds no heap memory once next_event returned WA_EAGAIN and the output was taken.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_WS_WS_H
#define WA_WS_WS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Default largest message (after reassembly): a WA frame is up to 16 MiB plus its 3-byte
 * header, and a client's first message also carries the intro and routing header. */
#define WA_WS_DEFAULT_MAX_MESSAGE ((size_t)17 << 20)
/* Largest max_message wa_ws_init accepts. */
#define WA_WS_MAX_MESSAGE_LIMIT ((size_t)1 << 30)
/* Largest HTTP header block (start line, headers, blank line) either side accepts. */
#define WA_WS_HTTP_MAX 8192
/* Largest chunk wa_ws_feed is guaranteed to accept once events were drained to WA_EAGAIN. */
#define WA_WS_FEED_MAX ((size_t)256 << 10)
/* Largest frame header: 2 bytes, 8-byte extended length, 4-byte mask. */
#define WA_WS_FRAME_HEADER_MAX 14
/* Largest control frame payload (RFC 6455 5.5). */
#define WA_WS_CONTROL_MAX 125
/* Largest close reason (control payload less the 2-byte code). */
#define WA_WS_CLOSE_REASON_MAX 123
/* Cap of the engine's own output (pongs, close, HTTP errors); pongs that would not leave
 * WA_WS_OUTPUT_RESERVE bytes free are dropped (RFC 6455 5.5.3 allows answering only the last). */
#define WA_WS_OUTPUT_MAX     ((size_t)16 << 10)
#define WA_WS_OUTPUT_RESERVE 1024
/* Largest body wa_ws_server_reject writes. */
#define WA_WS_REJECT_BODY_MAX 1024
/* Length of a Sec-WebSocket-Accept value (base64 of a SHA-1). */
#define WA_WS_ACCEPT_LEN 28
/* Origin sent by wa_ws_client_handshake when origin is NULL (PROTOCOL.md 1). */
#define WA_WS_DEFAULT_ORIGIN "https://web.whatsapp.com"

enum wa_ws_role {
    WA_WS_CLIENT = 1,
    WA_WS_SERVER = 2,
};

enum wa_ws_opcode {
    WA_WS_OP_CONT = 0x0,
    WA_WS_OP_TEXT = 0x1,
    WA_WS_OP_BINARY = 0x2,
    WA_WS_OP_CLOSE = 0x8,
    WA_WS_OP_PING = 0x9,
    WA_WS_OP_PONG = 0xA,
};

/* Close status codes (RFC 6455 7.4.1). */
enum wa_ws_close_code {
    WA_WS_CLOSE_NORMAL = 1000,
    WA_WS_CLOSE_GOING_AWAY = 1001,
    WA_WS_CLOSE_PROTOCOL = 1002,
    WA_WS_CLOSE_UNSUPPORTED = 1003,
    WA_WS_CLOSE_NO_STATUS = 1005, /* reported when a close frame carries no code; never sent */
    WA_WS_CLOSE_ABNORMAL = 1006,  /* never sent */
    WA_WS_CLOSE_INVALID_DATA = 1007,
    WA_WS_CLOSE_POLICY = 1008,
    WA_WS_CLOSE_TOO_BIG = 1009,
    WA_WS_CLOSE_MANDATORY_EXT = 1010,
    WA_WS_CLOSE_INTERNAL = 1011,
};

enum wa_ws_event_type {
    WA_WS_EV_HANDSHAKE_REQUEST = 1, /* server: path, host, origin set; accept or reject next */
    WA_WS_EV_OPEN,                  /* handshake done; messages may be sent */
    WA_WS_EV_MESSAGE,               /* opcode (TEXT or BINARY) and data set */
    WA_WS_EV_PING,                  /* data set; the pong is already queued (if open) */
    WA_WS_EV_PONG,                  /* data set */
    WA_WS_EV_CLOSE,                 /* close_code and data (reason) set; engine now closed */
};

enum wa_ws_state {
    WA_WS_ST_IDLE = 1,       /* client: handshake not written yet */
    WA_WS_ST_AWAIT_RESPONSE, /* client: waiting for the 101 */
    WA_WS_ST_AWAIT_REQUEST,  /* server: waiting for the upgrade request */
    WA_WS_ST_REQUEST,        /* server: request reported, caller must accept or reject */
    WA_WS_ST_OPEN,
    WA_WS_ST_CLOSING, /* we sent a close, waiting for the peer's */
    WA_WS_ST_CLOSED,
};

/*
 * One event. Slices borrow engine memory:
 *   data              valid until the next wa_ws_feed, wa_ws_next_event or wa_ws_cleanup.
 *   path/host/origin  valid until wa_ws_server_accept, wa_ws_server_reject or wa_ws_cleanup.
 */
typedef struct wa_ws_event {
    int type;        /* WA_WS_EV_* */
    int opcode;      /* MESSAGE: WA_WS_OP_TEXT or WA_WS_OP_BINARY */
    wa_slice data;   /* MESSAGE/PING/PONG payload; CLOSE reason (UTF-8, possibly empty) */
    int close_code;  /* CLOSE: the peer's code, WA_WS_CLOSE_NO_STATUS if it sent none */
    wa_slice path;   /* HANDSHAKE_REQUEST: request-target as sent (path and "?query") */
    wa_slice host;   /* HANDSHAKE_REQUEST: Host header value */
    wa_slice origin; /* HANDSHAKE_REQUEST: Origin header value, empty if absent */
} wa_ws_event;

/* The engine; embed it and treat the fields as private. */
typedef struct wa_ws {
    wa_buf in;  /* received bytes; in.data[in_pos..in.len) not yet parsed */
    wa_buf msg; /* payload of the fragmented message being reassembled */
    wa_buf out; /* bytes the engine produced by itself, drained by wa_ws_take_output */
    wa_buf hs;  /* server: copy of the pending upgrade request's header block */
    size_t in_pos;
    size_t max_message;
    size_t hs_scan; /* bytes of the header block already searched for its end */
    const char *fail_reason;
    int err; /* sticky error, 0 if none */
    uint8_t role;
    uint8_t state;
    uint8_t frag_op;       /* opcode of the message being reassembled, 0 if none */
    uint8_t send_frag;     /* wa_ws_send_frame left a fragmented message open */
    uint8_t msg_delivered; /* msg holds the last event's data; reset on the next call */
    uint8_t open_pending;  /* server: report WA_WS_EV_OPEN on the next call */
    uint16_t http_status;  /* client: status received; server: status of the error we sent */
    uint16_t fail_code;    /* close code sent because of err, 0 if none */
    uint16_t path_off, path_len, host_off, host_len, origin_off, origin_len, hdr_off;
    char accept[WA_WS_ACCEPT_LEN + 1]; /* expected (client) or computed (server) accept */
} wa_ws;

/*
 * Initialise an engine that starts with the handshake of `role` (WA_WS_CLIENT or WA_WS_SERVER).
 * max_message bounds a reassembled message (0 selects WA_WS_DEFAULT_MAX_MESSAGE). Allocates
 * nothing. Returns 0, or WA_EINVAL for a bad role or max_message over WA_WS_MAX_MESSAGE_LIMIT.
 */
int wa_ws_init(wa_ws *ws, int role, size_t max_message);
/* Like wa_ws_init, but the upgrade was done elsewhere: the engine starts open. */
int wa_ws_init_open(wa_ws *ws, int role, size_t max_message);
/* Free every buffer. The engine is closed afterwards; wa_ws_init may be called again. */
void wa_ws_cleanup(wa_ws *ws);

/*
 * Client: append the HTTP/1.1 upgrade request to out and wait for the response.
 *   host           Host header value (add ":port" for a non-default port); required.
 *   path           request-target, e.g. "/ws/chat" (NULL means "/").
 *   origin         Origin header value; NULL sends WA_WS_DEFAULT_ORIGIN, "" sends none.
 *   extra_headers  NULL or complete lines "Name: value\r\n" (e.g. User-Agent), appended as is.
 *                  Offer no Sec-WebSocket-Extensions: a response accepting one is refused.
 * The Sec-WebSocket-Key is 16 fresh random bytes. On failure out is unchanged.
 * Returns 0, WA_ESTATE (not a client or already done), WA_EINVAL (missing host, a control
 * character or space where none may be, malformed extra_headers), WA_EIO (no randomness),
 * WA_ELIMIT/WA_ENOMEM (out).
 */
int wa_ws_client_handshake(wa_ws *ws, wa_buf *out, const char *host, const char *path,
                           const char *origin, const char *extra_headers);

/*
 * Server, after WA_WS_EV_HANDSHAKE_REQUEST: append the 101 response (with the accept hash) to
 * out and open the connection; the next wa_ws_next_event reports WA_WS_EV_OPEN.
 * extra_headers: NULL or lines "Name: value\r\n" (e.g. Sec-WebSocket-Protocol).
 * Returns 0, WA_ESTATE (no request pending), WA_EINVAL, WA_ELIMIT/WA_ENOMEM (out unchanged).
 */
int wa_ws_server_accept(wa_ws *ws, const char *extra_headers, wa_buf *out);
/*
 * Server, after WA_WS_EV_HANDSHAKE_REQUEST: append an HTTP error response with status
 * 300..599 and a short text/plain body (NULL: the reason phrase; at most
 * WA_WS_REJECT_BODY_MAX bytes) to out, then the engine is closed: write out and close.
 * Returns 0, WA_ESTATE, WA_EINVAL, WA_ELIMIT/WA_ENOMEM (out unchanged, engine unchanged).
 */
int wa_ws_server_reject(wa_ws *ws, int status, const char *body, wa_buf *out);
/*
 * Server, while a request is pending: the first header called `name` (case-insensitive).
 * *value borrows the engine's copy until accept/reject/cleanup. Returns 0, WA_ENOTFOUND or
 * WA_ESTATE.
 */
int wa_ws_request_header(const wa_ws *ws, const char *name, wa_slice *value);

/*
 * Buffer received bytes. Call wa_ws_next_event until WA_EAGAIN before feeding again: then any
 * chunk of up to WA_WS_FEED_MAX bytes is accepted. Invalidates the last event's data.
 * Returns 0, the sticky error, WA_ECLOSED once closed, WA_EINVAL, or (sticky) WA_ELIMIT when
 * the input cap is passed / WA_ENOMEM.
 */
int wa_ws_feed(wa_ws *ws, const uint8_t *data, size_t len);
/*
 * Parse the buffered input. Returns 0 and writes *ev, WA_EAGAIN when more input is needed,
 * WA_ESTATE while a server request awaits accept/reject (or a client has not written its
 * handshake), WA_ECLOSED after the close event, or the sticky error:
 *   WA_EHTTP   bad upgrade request/response: status not 101, missing or wrong Upgrade,
 *              Connection, Sec-WebSocket-Key/Version/Accept, malformed HTTP;
 *   WA_ELIMIT  header block over WA_WS_HTTP_MAX, message over max_message (close 1009);
 *   WA_EPROTO  frame rule broken (close 1002) or invalid UTF-8 (close 1007);
 *   WA_ENOMEM  (close 1011); WA_EIO  no randomness to mask a client's automatic frame.
 */
int wa_ws_next_event(wa_ws *ws, wa_ws_event *ev);

/*
 * Append one complete message (TEXT, BINARY) or control frame (PING, PONG; at most
 * WA_WS_CONTROL_MAX bytes) to out; masked in the client role. data must not point into out.
 * The caller is responsible for TEXT being UTF-8. On failure out is unchanged.
 * Returns 0, WA_EINVAL, WA_ESTATE (not open yet, or a wa_ws_send_frame message is unfinished),
 * WA_ECLOSED (close sent or received), the sticky error, WA_EIO, WA_ELIMIT/WA_ENOMEM (out).
 */
int wa_ws_send(wa_ws *ws, int opcode, const void *data, size_t len, wa_buf *out);
/*
 * Low level: append one frame (not CLOSE: use wa_ws_close). A fragmented message is TEXT/BINARY
 * with fin=0, then CONT frames, the last with fin=1; control frames (fin=1) may come in between.
 * Same returns as wa_ws_send (WA_ESTATE for a CONT with no message open or a new message while one
 * is).
 */
int wa_ws_send_frame(wa_ws *ws, int opcode, int fin, const void *data, size_t len, wa_buf *out);
/*
 * Append a close frame to out and enter WA_WS_ST_CLOSING; keep reading until WA_WS_EV_CLOSE.
 * code 0 sends no code (then reason must be NULL or ""); otherwise 1000-1003, 1007-1014 or
 * 3000-4999. reason: NULL or UTF-8 of at most WA_WS_CLOSE_REASON_MAX bytes.
 * Returns 0, WA_EINVAL, WA_ESTATE (handshake not done), WA_ECLOSED (already closing/closed),
 * the sticky error, WA_EIO, WA_ELIMIT/WA_ENOMEM (out unchanged).
 */
int wa_ws_close(wa_ws *ws, int code, const char *reason, wa_buf *out);

/* Bytes the engine queued by itself (pongs, close frames, HTTP errors) that await
 * wa_ws_take_output. Also non-zero after an error: send them, then close the transport. */
size_t wa_ws_pending_output(const wa_ws *ws);
/* Move all queued bytes to the end of dst and release the engine's copy. Returns 0, or
 * WA_ELIMIT/WA_ENOMEM with nothing moved. Valid in every state, also after an error. */
int wa_ws_take_output(wa_ws *ws, wa_buf *dst);

/* Current WA_WS_ST_* state. */
int wa_ws_state(const wa_ws *ws);
/* Which rule the sticky error broke ("masked frame from server", ...), or NULL. */
const char *wa_ws_error_reason(const wa_ws *ws);
/* Close code queued because of the sticky error (1002, 1007, 1009, 1011), or 0. */
int wa_ws_error_close_code(const wa_ws *ws);
/* Client: the status code of the server's response (0 before it). Server: the status of the
 * error response the engine or wa_ws_server_reject wrote (0 if none). */
int wa_ws_http_status(const wa_ws *ws);

/*
 * Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2): base64(SHA-1(key || GUID)).
 * out receives WA_WS_ACCEPT_LEN characters and a NUL. Returns 0, WA_EINVAL (key longer than
 * 64 bytes), WA_ECRYPTO (digest failed).
 */
int wa_ws_accept_key(char out[WA_WS_ACCEPT_LEN + 1], const char *key, size_t key_len);

#endif
