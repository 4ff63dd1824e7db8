/*
 * ws.c - the WebSocket engine: state, input buffering, data framing (RFC 6455 section 5),
 * fragmentation, control frames and the closing handshake (section 7).
 *
 * Input buffering: wa_ws_feed appends to `in`; next_event parses from in_pos and hands out
 * payloads of unfragmented frames in place (unmasked in place, no copy). Consumed bytes are only
 * moved away on the next feed, so an event's data stays valid until the next call. A frame is
 * parsed only once complete, and its length is checked against max_message as soon as its
 * header is there, so `in` never needs more than one frame plus one fed chunk. Fragments are
 * appended to `msg`. Both buffers are released whenever next_event runs dry with nothing
 * pending: an idle connection keeps no heap memory.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "ws/ws.h"

#include <string.h>

#include "core/util.h"
#include "wa/error.h"
#include "ws/internal.h"

static int is_control(int op)
{
    return (op & 0x8) != 0;
}

static int is_known_opcode(int op)
{
    return op == WA_WS_OP_CONT || op == WA_WS_OP_TEXT || op == WA_WS_OP_BINARY ||
           op == WA_WS_OP_CLOSE || op == WA_WS_OP_PING || op == WA_WS_OP_PONG;
}

/* Codes that may appear on the wire (RFC 6455 7.4.1/7.4.2 and the IANA registry): 1004, 1005,
 * 1006 and 1015 are reserved, 1016-2999 unassigned, 3000-4999 for libraries and applications. */
static int close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

static void apply_mask(uint8_t *p, size_t n, const uint8_t mask[4])
{
    size_t i;

    for (i = 0; i < n; i++)
        p[i] ^= mask[i & 3];
}

/* Append one frame to dst, masked with a fresh key in the client role (5.3). dst unchanged on
 * failure. */
static int write_frame(const wa_ws *ws, wa_buf *dst, int fin, int op, const uint8_t *data,
                       size_t len)
{
    uint8_t hdr[WA_WS_FRAME_HEADER_MAX];
    size_t h;
    int rc;

    hdr[0] = (uint8_t)((fin ? 0x80 : 0) | (op & 0x0F));
    if (len < 126) {
        hdr[1] = (uint8_t)len;
        h = 2;
    } else if (len <= 0xFFFF) {
        hdr[1] = 126;
        wa_store_be16(hdr + 2, (uint16_t)len);
        h = 4;
    } else {
        hdr[1] = 127;
        wa_store_be64(hdr + 2, (uint64_t)len);
        h = 10;
    }
    if (ws->role == WA_WS_CLIENT) {
        hdr[1] |= 0x80;
        if (wa_random(hdr + h, 4))
            return WA_EIO;
        h += 4;
    }
    if (len > SIZE_MAX - h)
        return WA_ELIMIT;
    rc = wa_buf_reserve(dst, h + len);
    if (rc)
        return rc;
    memcpy(dst->data + dst->len, hdr, h);
    if (len) {
        memcpy(dst->data + dst->len + h, data, len);
        if (ws->role == WA_WS_CLIENT)
            apply_mask(dst->data + dst->len + h, len, hdr + h - 4);
    }
    dst->len += h + len;
    return 0;
}

/* Close frame payload: 2-byte code and reason; code 0 means an empty payload. */
static int write_close(const wa_ws *ws, wa_buf *dst, int code, const char *reason, size_t rlen)
{
    uint8_t p[WA_WS_CONTROL_MAX];

    if (code == 0)
        return write_frame(ws, dst, 1, WA_WS_OP_CLOSE, NULL, 0);
    wa_store_be16(p, (uint16_t)code);
    if (rlen)
        memcpy(p + 2, reason, rlen);
    return write_frame(ws, dst, 1, WA_WS_OP_CLOSE, p, 2 + rlen);
}

static void release_input(wa_ws *ws)
{
    wa_buf_cleanup(&ws->in);
    wa_buf_cleanup(&ws->msg);
    wa_buf_cleanup(&ws->hs);
    ws->in_pos = 0;
    ws->frag_op = 0;
    ws->msg_delivered = 0;
}

int wa__ws_fail(wa_ws *ws, int err, int close_code, const char *reason)
{
    ws->err = err;
    ws->fail_reason = reason;
    if (ws->state == WA_WS_ST_OPEN && close_code) {
        /* Best effort: a failure to queue leaves the transport close as the signal. */
        if (write_close(ws, &ws->out, close_code, NULL, 0) == 0)
            ws->fail_code = (uint16_t)close_code;
    }
    ws->state = WA_WS_ST_CLOSED;
    ws->open_pending = 0;
    release_input(ws);
    return err;
}

static int init_common(wa_ws *ws, int role, size_t max_message)
{
    if (!ws || (role != WA_WS_CLIENT && role != WA_WS_SERVER))
        return WA_EINVAL;
    if (max_message == 0)
        max_message = WA_WS_DEFAULT_MAX_MESSAGE;
    if (max_message > WA_WS_MAX_MESSAGE_LIMIT)
        return WA_EINVAL;
    memset(ws, 0, sizeof *ws);
    ws->role = (uint8_t)role;
    ws->max_message = max_message;
    /* one incomplete frame (checked against max_message) plus one fed chunk */
    wa_buf_init(&ws->in, max_message + WA_WS_FRAME_HEADER_MAX + WA_WS_FEED_MAX);
    wa_buf_init(&ws->msg, max_message);
    wa_buf_init(&ws->out, WA_WS_OUTPUT_MAX);
    wa_buf_init(&ws->hs, WA_WS_HTTP_MAX);
    return 0;
}

int wa_ws_init(wa_ws *ws, int role, size_t max_message)
{
    int rc = init_common(ws, role, max_message);

    if (rc)
        return rc;
    ws->state = role == WA_WS_CLIENT ? WA_WS_ST_IDLE : WA_WS_ST_AWAIT_REQUEST;
    return 0;
}

int wa_ws_init_open(wa_ws *ws, int role, size_t max_message)
{
    int rc = init_common(ws, role, max_message);

    if (rc)
        return rc;
    ws->state = WA_WS_ST_OPEN;
    return 0;
}

void wa_ws_cleanup(wa_ws *ws)
{
    if (!ws)
        return;
    release_input(ws);
    wa_buf_cleanup(&ws->out);
    ws->state = WA_WS_ST_CLOSED;
    ws->open_pending = 0;
    ws->send_frag = 0;
}

/* Forget the data of the previous event. */
static void retire(wa_ws *ws)
{
    if (ws->msg_delivered) {
        wa_buf_reset(&ws->msg);
        wa_buf_release_idle(&ws->msg);
        ws->msg_delivered = 0;
    }
}

/* Called when next_event runs out of input: drop what was consumed and release empty buffers. */
static void go_idle(wa_ws *ws)
{
    if (ws->in_pos >= ws->in.len) {
        wa_buf_reset(&ws->in);
        ws->in_pos = 0;
    }
    wa_buf_release_idle(&ws->in);
    wa_buf_release_idle(&ws->msg);
}

int wa_ws_feed(wa_ws *ws, const uint8_t *data, size_t len)
{
    int rc;

    if (!ws || (len && !data))
        return WA_EINVAL;
    if (ws->err)
        return ws->err;
    if (ws->state == WA_WS_ST_CLOSED)
        return WA_ECLOSED;
    retire(ws);
    if (ws->in_pos) {
        wa_buf_consume(&ws->in, ws->in_pos);
        ws->in_pos = 0;
    }
    if (len == 0)
        return 0;
    rc = wa_buf_append(&ws->in, data, len);
    if (rc == WA_ELIMIT)
        return wa__ws_fail(ws, rc, WA_WS_CLOSE_TOO_BIG, "input buffer full");
    if (rc)
        return wa__ws_fail(ws, rc, WA_WS_CLOSE_INTERNAL, "out of memory");
    return 0;
}

/* A close frame from the peer (5.5.1, 7.1.5, 7.4). */
static int on_close(wa_ws *ws, uint8_t *p, size_t len, wa_ws_event *e)
{
    int code = WA_WS_CLOSE_NO_STATUS;

    if (len == 1)
        return wa__ws_fail(ws, WA_EPROTO, WA_WS_CLOSE_PROTOCOL, "close payload of 1 byte");
    if (len >= 2) {
        code = wa_load_be16(p);
        if (!close_code_valid((unsigned)code))
            return wa__ws_fail(ws, WA_EPROTO, WA_WS_CLOSE_PROTOCOL, "invalid close code");
        if (!wa__ws_utf8_valid(p + 2, len - 2))
            return wa__ws_fail(ws, WA_EPROTO, WA_WS_CLOSE_INVALID_DATA, "close reason not UTF-8");
        e->data = wa_slice_make(p + 2, len - 2);
    } else {
        e->data = wa_slice_make(p, 0);
    }
    if (ws->state == WA_WS_ST_OPEN) {
        /* Echo the code once (5.5.1); an allocation failure only loses the courtesy reply. */
        (void)write_close(ws, &ws->out, code == WA_WS_CLOSE_NO_STATUS ? 0 : code, NULL, 0);
    }
    ws->state = WA_WS_ST_CLOSED;
    e->type = WA_WS_EV_CLOSE;
    e->close_code = code;
    return 0;
}

static int deliver_message(wa_ws *ws, int op, uint8_t *p, size_t len, wa_ws_event *e)
{
    if (op == WA_WS_OP_TEXT && !wa__ws_utf8_valid(p, len))
        return wa__ws_fail(ws, WA_EPROTO, WA_WS_CLOSE_INVALID_DATA, "text message not UTF-8");
    e->type = WA_WS_EV_MESSAGE;
    e->opcode = op;
    e->data = wa_slice_make(p, len);
    return 0;
}

/* Parse frames until one yields an event (5.2). */
static int next_frame(wa_ws *ws, wa_ws_event *e)
{
    for (;;) {
        size_t avail = ws->in.len - ws->in_pos;
        uint64_t len64;
        size_t len, h;
        int fin, op, masked;
        uint8_t *p, *payload;

        if (avail < 2)
            return WA_EAGAIN;
        p = ws->in.data + ws->in_pos;
        fin = (p[0] & 0x80) != 0;
        op = p[0] & 0x0F;
        masked = (p[1] & 0x80) != 0;
        len64 = p[1] & 0x7F;
        /* no extension is negotiated, so RSV1-3 must be 0 */
        if (p[0] & 0x70)
            return wa__ws_fail(ws, WA_EPROTO, WA_WS_CLOSE_PROTOCOL, "reserved bits set");
        if (!is_known_opcode(op))
            return wa__ws_fail(ws, WA_EPROTO, WA_WS_CLOSE_PROTOCOL, "unknown opcode");
        if (ws->role == WA_WS_SERVER && !masked)
            return wa__ws_fail(ws, WA_EPROTO, WA_WS_CLOSE_PROTOCOL, "unmasked frame from client");
        if (ws->role == WA_WS_CLIENT && masked)
            return wa__ws_fail(ws, WA_EPROTO, WA_WS_CLOSE_PROTOCOL, "masked frame from server");
        if (is_control(op)) {
            if (!fin)
                return wa__ws_fail(ws, WA_EPROTO, WA_WS_CLOSE_PROTOCOL, "fragmented control frame");
            if (len64 > WA_WS_CONTROL_MAX)
                return wa__ws_fail(ws, WA_EPROTO, WA_WS_CLOSE_PROTOCOL,
                                   "control frame over 125 bytes");
        } else if (op == WA_WS_OP_CONT && !ws->frag_op) {
            return wa__ws_fail(ws, WA_EPROTO, WA_WS_CLOSE_PROTOCOL, "unexpected continuation");
        } else if (op != WA_WS_OP_CONT && ws->frag_op) {
            return wa__ws_fail(ws, WA_EPROTO, WA_WS_CLOSE_PROTOCOL,
                               "new message inside a fragmented one");
        }
        h = 2;
        if (len64 == 126) {
            if (avail < 4)
                return WA_EAGAIN;
            len64 = wa_load_be16(p + 2);
            h = 4;
        } else if (len64 == 127) {
            if (avail < 10)
                return WA_EAGAIN;
            len64 = ((uint64_t)wa_load_be32(p + 2) << 32) | wa_load_be32(p + 6);
            if (len64 >> 63)
                return wa__ws_fail(ws, WA_EPROTO, WA_WS_CLOSE_PROTOCOL,
                                   "64-bit length with the top bit set");
            h = 10;
        }
        /* Refuse an oversized message before waiting for its bytes. */
        if (!is_control(op) && len64 > (uint64_t)(ws->max_message - ws->msg.len))
            return wa__ws_fail(ws, WA_ELIMIT, WA_WS_CLOSE_TOO_BIG, "message too big");
        len = (size_t)len64;
        if (masked)
            h += 4;
        if (avail < h || avail - h < len)
            return WA_EAGAIN;
        payload = p + h;
        if (masked)
            apply_mask(payload, len, payload - 4);
        ws->in_pos += h + len;

        if (!is_control(op)) {
            int rc;

            if (fin && op != WA_WS_OP_CONT)
                return deliver_message(ws, op, payload, len, e);
            if (op != WA_WS_OP_CONT)
                ws->frag_op = (uint8_t)op;
            rc = wa_buf_append(&ws->msg, payload, len);
            if (rc)
                return wa__ws_fail(ws, rc, WA_WS_CLOSE_INTERNAL, "out of memory");
            if (!fin)
                continue;
            op = ws->frag_op;
            ws->frag_op = 0;
            ws->msg_delivered = 1;
            /* the message may be empty: msg.data is NULL then, point at the frame instead */
            return deliver_message(ws, op, ws->msg.len ? ws->msg.data : payload, ws->msg.len, e);
        }
        switch (op) {
        case WA_WS_OP_PING:
            /* Answer while open; drop the pong if the peer floods pings faster than the
             * caller drains output (keeping room for a close frame). */
            if (ws->state == WA_WS_ST_OPEN &&
                ws->out.len + WA_WS_OUTPUT_RESERVE + WA_WS_FRAME_HEADER_MAX + len <= ws->out.max) {
                int rc = write_frame(ws, &ws->out, 1, WA_WS_OP_PONG, payload, len);
                if (rc == WA_EIO)
                    return wa__ws_fail(ws, rc, WA_WS_CLOSE_INTERNAL, "no randomness for mask");
                if (rc)
                    return wa__ws_fail(ws, rc, WA_WS_CLOSE_INTERNAL, "out of memory");
            }
            e->type = WA_WS_EV_PING;
            e->data = wa_slice_make(payload, len);
            return 0;
        case WA_WS_OP_PONG:
            e->type = WA_WS_EV_PONG;
            e->data = wa_slice_make(payload, len);
            return 0;
        default: /* WA_WS_OP_CLOSE */
            return on_close(ws, payload, len, e);
        }
    }
}

int wa_ws_next_event(wa_ws *ws, wa_ws_event *ev)
{
    wa_ws_event e;
    int rc;

    if (!ws || !ev)
        return WA_EINVAL;
    if (ws->err)
        return ws->err;
    retire(ws);
    memset(&e, 0, sizeof e);
    switch (ws->state) {
    case WA_WS_ST_IDLE:
    case WA_WS_ST_REQUEST:
        return WA_ESTATE;
    case WA_WS_ST_AWAIT_RESPONSE:
        rc = wa__ws_parse_response(ws, &e);
        break;
    case WA_WS_ST_AWAIT_REQUEST:
        rc = wa__ws_parse_request(ws, &e);
        break;
    case WA_WS_ST_OPEN:
    case WA_WS_ST_CLOSING:
        if (ws->open_pending) {
            ws->open_pending = 0;
            e.type = WA_WS_EV_OPEN;
            rc = 0;
            break;
        }
        rc = next_frame(ws, &e);
        break;
    default:
        release_input(ws);
        return WA_ECLOSED;
    }
    if (rc == WA_EAGAIN)
        go_idle(ws);
    if (rc == 0)
        *ev = e;
    return rc;
}

static int check_can_send(const wa_ws *ws)
{
    if (ws->err)
        return ws->err;
    switch (ws->state) {
    case WA_WS_ST_OPEN:
        return 0;
    case WA_WS_ST_CLOSING:
    case WA_WS_ST_CLOSED:
        return WA_ECLOSED;
    default:
        return WA_ESTATE;
    }
}

int wa_ws_send_frame(wa_ws *ws, int opcode, int fin, const void *data, size_t len, wa_buf *out)
{
    int rc;

    if (!ws || !out || (len && !data) || !is_known_opcode(opcode) || opcode == WA_WS_OP_CLOSE)
        return WA_EINVAL;
    if (is_control(opcode) && (!fin || len > WA_WS_CONTROL_MAX))
        return WA_EINVAL;
    rc = check_can_send(ws);
    if (rc)
        return rc;
    if (!is_control(opcode) && (opcode == WA_WS_OP_CONT) != (ws->send_frag != 0))
        return WA_ESTATE;
    rc = write_frame(ws, out, fin, opcode, data, len);
    if (rc)
        return rc;
    if (!is_control(opcode))
        ws->send_frag = !fin;
    return 0;
}

int wa_ws_send(wa_ws *ws, int opcode, const void *data, size_t len, wa_buf *out)
{
    if (opcode == WA_WS_OP_CONT)
        return WA_EINVAL;
    return wa_ws_send_frame(ws, opcode, 1, data, len, out);
}

int wa_ws_close(wa_ws *ws, int code, const char *reason, wa_buf *out)
{
    size_t rlen = reason ? strlen(reason) : 0;
    int rc;

    if (!ws || !out)
        return WA_EINVAL;
    if (code == 0 ? rlen != 0 : !close_code_valid((unsigned)code))
        return WA_EINVAL;
    if (rlen > WA_WS_CLOSE_REASON_MAX || !wa__ws_utf8_valid((const uint8_t *)reason, rlen))
        return WA_EINVAL;
    rc = check_can_send(ws);
    if (rc)
        return rc;
    rc = write_close(ws, out, code, reason, rlen);
    if (rc)
        return rc;
    ws->state = WA_WS_ST_CLOSING;
    return 0;
}

size_t wa_ws_pending_output(const wa_ws *ws)
{
    return ws ? ws->out.len : 0;
}

int wa_ws_take_output(wa_ws *ws, wa_buf *dst)
{
    int rc;

    if (!ws || !dst)
        return WA_EINVAL;
    rc = wa_buf_append(dst, ws->out.data, ws->out.len);
    if (rc)
        return rc;
    wa_buf_cleanup(&ws->out);
    return 0;
}

int wa_ws_state(const wa_ws *ws)
{
    return ws->state;
}

const char *wa_ws_error_reason(const wa_ws *ws)
{
    return ws->err ? ws->fail_reason : NULL;
}

int wa_ws_error_close_code(const wa_ws *ws)
{
    return ws->fail_code;
}

int wa_ws_http_status(const wa_ws *ws)
{
    return ws->http_status;
}
