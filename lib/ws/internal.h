/*
 * internal.h - helpers shared by the files of the WebSocket layer (not for other layers).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_WS_INTERNAL_H
#define WA_WS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ws/ws.h"

/* 1 if p[0..n) is well-formed UTF-8 (RFC 3629: no overlongs, surrogates or > U+10FFFF). */
int wa__ws_utf8_valid(const uint8_t *p, size_t n);

/* Record a sticky error: queue a close frame with close_code (if non-zero and the engine is
 * open), enter the closed state, free the input buffers. Returns err. */
int wa__ws_fail(wa_ws *ws, int err, int close_code, const char *reason);

/* Client: parse the server's response once its header block is complete (state
 * AWAIT_RESPONSE). Server: parse the upgrade request (state AWAIT_REQUEST). 0 with *ev,
 * WA_EAGAIN, or the (sticky) error. */
int wa__ws_parse_response(wa_ws *ws, wa_ws_event *ev);
int wa__ws_parse_request(wa_ws *ws, wa_ws_event *ev);

/* Append an HTTP error response (status, reason phrase, text/plain body) to dst; out unchanged
 * on failure. 426 adds "Sec-WebSocket-Version: 13". */
int wa__ws_write_http_error(wa_buf *dst, int status, const char *body);

#endif
