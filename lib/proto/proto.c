/*
 * proto.c - protobuf-c glue: a wiping wa_malloc-based allocator, a framing/nesting check run
 * before protobuf-c sees untrusted input, bounded unpack, pack into a capped wa_buf.
 * Wire format: https://protobuf.dev/programming-guides/encoding/ (varints of at most 10
 * bytes, tag = field number << 3 | wire type, field numbers 1 .. 2^29 - 1).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "proto/proto.h"

#include <stddef.h>
#include <string.h>

#include "core/alloc.h"
#include "core/util.h"
#include "wa/error.h"

/* Each block carries its size in a header so that free can wipe it; the header is as large
 * as max_align_t so the payload keeps malloc's alignment. */
typedef union block_header {
    size_t size;
    max_align_t align;
} block_header;

static void *proto_alloc(void *data, size_t size)
{
    block_header *h;

    (void)data;
    if (size > SIZE_MAX - sizeof *h)
        return NULL;
    h = wa_malloc(sizeof *h + size);
    if (!h)
        return NULL;
    h->size = size;
    return h + 1;
}

static void proto_free(void *data, void *p)
{
    block_header *h;

    (void)data;
    if (!p)
        return;
    h = (block_header *)p - 1;
    wa_wipe(h, sizeof *h + h->size);
    wa_free(h);
}

#define VARINT_MAX_BYTES 10
#define FIELD_NUMBER_MAX ((1u << 29) - 1)

enum {
    WIRE_VARINT = 0,
    WIRE_FIXED64 = 1,
    WIRE_LEN = 2,
    WIRE_FIXED32 = 5,
};

/* Read a varint at p[*pos..len); advances *pos. */
static int read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = *pos;

    for (unsigned n = 0; n < VARINT_MAX_BYTES; n++, i++) {
        if (i >= len)
            return WA_EPROTOBUF;
        v |= (uint64_t)(p[i] & 0x7f) << (7 * n);
        if (!(p[i] & 0x80)) {
            *pos = i + 1;
            *out = v;
            return 0;
        }
    }
    return WA_EPROTOBUF;
}

/* Recursion is bounded by WA_PROTO_MAX_DEPTH; each byte is visited once per call that
 * owns it, and a sub-message's bytes are owned by exactly one nested call. */
static int scan(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len,
                unsigned depth)
{
    size_t pos = 0;

    if (depth > WA_PROTO_MAX_DEPTH)
        return WA_EDEPTH;
    while (pos < len) {
        const ProtobufCFieldDescriptor *f;
        uint64_t tag, v;
        uint32_t num;
        int rc;

        rc = read_varint(p, len, &pos, &tag);
        if (rc)
            return rc;
        if ((tag >> 3) == 0 || (tag >> 3) > FIELD_NUMBER_MAX)
            return WA_EPROTOBUF;
        num = (uint32_t)(tag >> 3);
        switch (tag & 7) {
        case WIRE_VARINT:
            rc = read_varint(p, len, &pos, &v);
            if (rc)
                return rc;
            break;
        case WIRE_FIXED64:
            if (len - pos < 8)
                return WA_EPROTOBUF;
            pos += 8;
            break;
        case WIRE_FIXED32:
            if (len - pos < 4)
                return WA_EPROTOBUF;
            pos += 4;
            break;
        case WIRE_LEN:
            rc = read_varint(p, len, &pos, &v);
            if (rc)
                return rc;
            if (v > len - pos)
                return WA_EPROTOBUF;
            f = desc ? protobuf_c_message_descriptor_get_field(desc, num) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                rc = scan(f->descriptor, p + pos, (size_t)v, depth + 1);
                if (rc)
                    return rc;
            }
            pos += (size_t)v;
            break;
        default: /* groups (3, 4) are not used by WhatsApp; 6 and 7 do not exist */
            return WA_EPROTOBUF;
        }
    }
    return 0;
}

int wa_proto_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len)
{
    if (!desc || (!data && len))
        return WA_EINVAL;
    return scan(desc, data, len, 0);
}

static ProtobufCAllocator allocator = {proto_alloc, proto_free, NULL};

ProtobufCAllocator *wa_proto_allocator(void)
{
    return &allocator;
}

int wa_proto_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                    void *out)
{
    ProtobufCMessage *msg;
    int rc;

    if (!desc || !out || (!data && len))
        return WA_EINVAL;
    if (len > WA_PROTO_MAX_INPUT)
        return WA_ELIMIT;
    rc = scan(desc, data, len, 0);
    if (rc)
        return rc;
    msg = protobuf_c_message_unpack(desc, &allocator, len, data);
    if (!msg)
        return WA_EPROTOBUF;
    /* All pointers to structure types share one representation (C11 6.2.5p28), and every
     * generated type starts with ProtobufCMessage, so the caller's Wa__X * may take it. */
    memcpy(out, &msg, sizeof msg);
    return 0;
}

void wa_proto_free(void *msg)
{
    if (msg)
        protobuf_c_message_free_unpacked((ProtobufCMessage *)msg, &allocator);
}

int wa_proto_pack(const void *msg, wa_buf *out)
{
    const ProtobufCMessage *m = msg;
    size_t n;
    int rc;

    if (!m || !out || !protobuf_c_message_check(m))
        return WA_EINVAL;
    n = protobuf_c_message_get_packed_size(m);
    rc = wa_buf_reserve(out, n);
    if (rc)
        return rc;
    if (n) {
        protobuf_c_message_pack(m, out->data + out->len);
        out->len += n;
    }
    return 0;
}
