/* pbjson.c - generic protobuf-c message to JSON, driven by the message descriptors.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include "pbjson.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"

#define PB_MAX_DEPTH 16

static int put(wa_buf *o, const char *s)
{
    return wa_buf_append(o, s, strlen(s));
}

static int put_str(wa_buf *o, const char *s)
{
    char esc[8];
    int rc = wa_buf_append_byte(o, '"');

    for (; rc == 0 && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            snprintf(esc, sizeof esc, "\\%c", c);
            rc = put(o, esc);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            rc = put(o, esc);
        } else {
            rc = wa_buf_append_byte(o, c);
        }
    }
    return rc ? rc : wa_buf_append_byte(o, '"');
}

static int value(const ProtobufCFieldDescriptor *f, const void *p, wa_buf *o, int depth);

static int message(const ProtobufCMessage *m, wa_buf *o, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    unsigned i;
    int first = 1, rc = 0;

    if (depth > PB_MAX_DEPTH)
        return put(o, "null");
    rc = put(o, "{");
    for (i = 0; rc == 0 && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        const void *member = base + f->offset;
        size_t count = 1;

        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            count = *(const size_t *)(base + f->quantifier_offset);
            if (!count)
                continue;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL || f->label == PROTOBUF_C_LABEL_NONE) {
            if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING) {
                if (!*(const void *const *)member)
                    continue;
            } else if (f->quantifier_offset &&
                       !*(const protobuf_c_boolean *)(base + f->quantifier_offset)) {
                continue;
            }
        }
        if (!first)
            rc = put(o, ",");
        first = 0;
        if (rc == 0)
            rc = put_str(o, f->name);
        if (rc == 0)
            rc = put(o, ":");
        if (rc)
            break;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t j, sz;
            const char *arr = *(const char *const *)member;
            switch (f->type) {
            case PROTOBUF_C_TYPE_BYTES:
                sz = sizeof(ProtobufCBinaryData);
                break;
            case PROTOBUF_C_TYPE_STRING:
            case PROTOBUF_C_TYPE_MESSAGE:
                sz = sizeof(void *);
                break;
            case PROTOBUF_C_TYPE_INT64:
            case PROTOBUF_C_TYPE_UINT64:
            case PROTOBUF_C_TYPE_SINT64:
            case PROTOBUF_C_TYPE_FIXED64:
            case PROTOBUF_C_TYPE_SFIXED64:
            case PROTOBUF_C_TYPE_DOUBLE:
                sz = 8;
                break;
            case PROTOBUF_C_TYPE_BOOL:
                sz = sizeof(protobuf_c_boolean);
                break;
            default:
                sz = 4;
                break;
            }
            rc = put(o, "[");
            for (j = 0; rc == 0 && j < count; j++) {
                if (j)
                    rc = put(o, ",");
                if (rc == 0)
                    rc = value(f, arr + j * sz, o, depth);
            }
            if (rc == 0)
                rc = put(o, "]");
        } else {
            rc = value(f, member, o, depth);
        }
    }
    return rc ? rc : put(o, "}");
}

static int value(const ProtobufCFieldDescriptor *f, const void *p, wa_buf *o, int depth)
{
    char num[64];

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        snprintf(num, sizeof num, "%" PRId32, *(const int32_t *)p);
        return put(o, num);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        snprintf(num, sizeof num, "%" PRIu32, *(const uint32_t *)p);
        return put(o, num);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(num, sizeof num, "%" PRId64, *(const int64_t *)p);
        return put(o, num);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(num, sizeof num, "%" PRIu64, *(const uint64_t *)p);
        return put(o, num);
    case PROTOBUF_C_TYPE_FLOAT:
        snprintf(num, sizeof num, "%g", (double)*(const float *)p);
        return put(o, num);
    case PROTOBUF_C_TYPE_DOUBLE:
        snprintf(num, sizeof num, "%g", *(const double *)p);
        return put(o, num);
    case PROTOBUF_C_TYPE_BOOL:
        return put(o, *(const protobuf_c_boolean *)p ? "true" : "false");
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
        if (ev)
            return put_str(o, ev->name);
        snprintf(num, sizeof num, "%d", *(const int *)p);
        return put(o, num);
    }
    case PROTOBUF_C_TYPE_STRING:
        return put_str(o, *(const char *const *)p);
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        size_t n = b->len > 4096 ? 4096 : b->len;
        char hex[2 * 4096 + 1];
        wa_hex_encode(hex, b->data, n);
        return put_str(o, hex);
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return message(*(const ProtobufCMessage *const *)p, o, depth + 1);
    }
    return put(o, "null");
}

int sim_pb_to_json(const ProtobufCMessage *m, wa_buf *out)
{
    return message(m, out, 0);
}
