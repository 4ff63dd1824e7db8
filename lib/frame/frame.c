/*
 * frame.c - WhatsApp Web framing: 3-byte big-endian length prefixes, the client's intro
 * (57 41 06 <dict>) and the optional edge-routing header (45 44 00 01 <len24> <info>) in front
 * of it. Byte layout in frame.h; facts from PROTOCOL.md section 1 (Baileys noise-handler.js
 * encodeFrame/decodeFrame, whatsmeow socket/framesocket.go).
 *
 * The reader never trusts a length before checking it against max_len, validates the intro
 * byte by byte as it arrives (so a wrong first byte fails at once), and keeps no memory while
 * idle: when a drain reaches WA_EAGAIN the leftover partial frame moves to the front of the
 * buffer, and an empty buffer is freed.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "frame/frame.h"

#include <string.h>

#include "core/alloc.h"
#include "core/util.h"
#include "wa/error.h"

static const uint8_t ed_magic[4] = {'E', 'D', 0, 1};
static const uint8_t wa_magic[3] = {'W', 'A', WA_FRAME_MAGIC};

void wa_frame_init(wa_frame *f, int role)
{
    memset(f, 0, sizeof *f);
    f->role = role;
    f->max_len = WA_FRAME_MAX_LEN;
    wa_buf_init(&f->in, WA_FRAME_INBUF_MAX);
    if (role != WA_FRAME_CLIENT && role != WA_FRAME_SERVER)
        f->err = WA_EINVAL;
}

void wa_frame_cleanup(wa_frame *f)
{
    wa_buf_cleanup(&f->in);
    wa_free(f->routing);
    f->routing = NULL;
    f->routing_len = 0;
    f->rpos = 0;
}

int wa_frame_set_intro(wa_frame *f, uint8_t dict_version, const uint8_t *routing,
                       size_t routing_len)
{
    uint8_t *copy = NULL;

    if (f->role != WA_FRAME_CLIENT || f->intro_done)
        return WA_ESTATE;
    if (routing_len > WA_FRAME_ROUTING_MAX)
        return WA_ELIMIT;
    if (routing_len && !routing)
        return WA_EINVAL;
    if (routing_len) {
        copy = wa_malloc(routing_len);
        if (!copy)
            return WA_ENOMEM;
        memcpy(copy, routing, routing_len);
    }
    wa_free(f->routing);
    f->routing = copy;
    f->routing_len = routing_len;
    /* Baileys writes the ED header whenever it has a routing buffer, even an empty one */
    f->has_routing = routing != NULL;
    f->dict = dict_version;
    f->intro_set = 1;
    return 0;
}

int wa_frame_set_max_len(wa_frame *f, size_t max_len)
{
    if (max_len == 0 || max_len > WA_FRAME_MAX_LEN)
        return WA_EINVAL;
    f->max_len = max_len;
    return 0;
}

void wa_frame_make_intro(uint8_t out[WA_FRAME_INTRO_LEN], uint8_t dict_version)
{
    memcpy(out, wa_magic, sizeof wa_magic);
    out[3] = dict_version;
}

/* Server role: consume [ED header] + intro from the front of the buffer.
 * 0 when done, WA_EAGAIN for more bytes, or an error. */
static int parse_intro(wa_frame *f)
{
    const uint8_t *p;
    size_t n = f->in.len - f->rpos, off = 0, rlen = 0, i;
    int has_ed = 0;

    if (n == 0)
        return WA_EAGAIN; /* the buffer may be NULL: no pointer arithmetic on it */
    p = f->in.data + f->rpos;
    if (p[0] == ed_magic[0]) {
        for (i = 1; i < sizeof ed_magic && i < n; i++)
            if (p[i] != ed_magic[i])
                return WA_EPROTO;
        if (n < WA_FRAME_ED_HDR_LEN)
            return WA_EAGAIN;
        rlen = wa_load_be24(p + 4);
        if (rlen > WA_FRAME_ROUTING_MAX)
            return WA_ELIMIT;
        off = WA_FRAME_ED_HDR_LEN + rlen;
        has_ed = 1;
    }
    for (i = 0; i < sizeof wa_magic && off + i < n; i++)
        if (p[off + i] != wa_magic[i])
            return WA_EPROTO;
    if (n < off + WA_FRAME_INTRO_LEN)
        return WA_EAGAIN;
    if (rlen) {
        f->routing = wa_malloc(rlen);
        if (!f->routing)
            return WA_ENOMEM;
        memcpy(f->routing, p + WA_FRAME_ED_HDR_LEN, rlen);
    }
    f->routing_len = rlen;
    f->has_routing = has_ed;
    f->dict = p[off + 3];
    f->rpos += off + WA_FRAME_INTRO_LEN;
    f->intro_done = 1;
    return 0;
}

/* Move unread bytes to the front; free an empty buffer, shrink a big mostly empty one. */
static void compact(wa_frame *f)
{
    size_t left = f->in.len - f->rpos;

    if (left == 0) {
        wa_buf_cleanup(&f->in);
        f->rpos = 0;
        return;
    }
    if (f->rpos) {
        memmove(f->in.data, f->in.data + f->rpos, left);
        f->in.len = left;
        f->rpos = 0;
    }
    if (f->in.cap > WA_FRAME_SHRINK_ABOVE && left < f->in.cap / 4) {
        wa_buf nb;
        wa_buf_init(&nb, f->in.max);
        if (wa_buf_append(&nb, f->in.data, left) == 0) {
            wa_buf_cleanup(&f->in);
            f->in = nb;
        } /* else keep the big buffer: shrinking is an optimisation */
    }
}

int wa_frame_feed(wa_frame *f, const uint8_t *data, size_t len)
{
    int rc;

    if (f->err)
        return f->err;
    if (len == 0)
        return 0;
    if (!data)
        return WA_EINVAL;
    if (f->rpos)
        compact(f);
    rc = wa_buf_append(&f->in, data, len);
    if (rc)
        return f->err = rc;
    if (f->role == WA_FRAME_SERVER && !f->intro_done) {
        rc = parse_intro(f);
        if (rc && rc != WA_EAGAIN)
            return f->err = rc;
    }
    return 0;
}

int wa_frame_next(wa_frame *f, wa_slice *frame)
{
    size_t avail;
    uint32_t flen;
    int rc;

    if (f->err)
        return f->err;
    if (f->role == WA_FRAME_SERVER && !f->intro_done) {
        rc = parse_intro(f);
        if (rc == WA_EAGAIN)
            goto more;
        if (rc)
            return f->err = rc;
    }
    avail = f->in.len - f->rpos;
    if (avail < WA_FRAME_HDR_LEN)
        goto more;
    flen = wa_load_be24(f->in.data + f->rpos);
    if (flen > f->max_len)
        return f->err = WA_ELIMIT;
    if (avail - WA_FRAME_HDR_LEN < flen)
        goto more;
    frame->ptr = f->in.data + f->rpos + WA_FRAME_HDR_LEN;
    frame->len = flen;
    f->rpos += WA_FRAME_HDR_LEN + flen;
    return 0;
more:
    compact(f);
    return WA_EAGAIN;
}

int wa_frame_peer_intro(const wa_frame *f, uint8_t *dict_version, wa_slice *routing)
{
    if (f->role == WA_FRAME_SERVER && !f->intro_done)
        return WA_EAGAIN;
    if (f->role == WA_FRAME_CLIENT && !f->intro_set)
        return WA_ESTATE;
    if (dict_version)
        *dict_version = f->dict;
    if (routing)
        *routing = wa_slice_make(f->routing, f->routing_len);
    return 0;
}

int wa_frame_write(wa_frame *f, const uint8_t *payload, size_t len, wa_buf *out)
{
    uint8_t
        hdr[WA_FRAME_ED_HDR_LEN > WA_FRAME_INTRO_LEN ? WA_FRAME_ED_HDR_LEN : WA_FRAME_INTRO_LEN];
    size_t pre = 0;
    int intro = 0, rc;

    if (len > WA_FRAME_MAX_LEN)
        return WA_ELIMIT;
    if (len && !payload)
        return WA_EINVAL;
    if (f->role == WA_FRAME_CLIENT && !f->intro_done) {
        if (!f->intro_set)
            return WA_ESTATE;
        intro = 1;
        pre = WA_FRAME_INTRO_LEN + (f->has_routing ? WA_FRAME_ED_HDR_LEN + f->routing_len : 0);
    }
    /* reserve everything first so that the appends below cannot fail half-way */
    rc = wa_buf_reserve(out, pre + WA_FRAME_HDR_LEN + len);
    if (rc)
        return rc;
    if (intro) {
        if (f->has_routing) {
            memcpy(hdr, ed_magic, sizeof ed_magic);
            wa_store_be24(hdr + 4, (uint32_t)f->routing_len);
            wa_buf_append(out, hdr, WA_FRAME_ED_HDR_LEN);
            wa_buf_append(out, f->routing, f->routing_len);
        }
        wa_frame_make_intro(hdr, f->dict);
        wa_buf_append(out, hdr, WA_FRAME_INTRO_LEN);
        f->intro_done = 1;
    }
    wa_store_be24(hdr, (uint32_t)len);
    wa_buf_append(out, hdr, WA_FRAME_HDR_LEN);
    wa_buf_append(out, payload, len);
    return 0;
}
