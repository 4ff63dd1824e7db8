/*
 * xml.c - XML-like debug rendering of node trees (like whatsmeow's binary/xml.go).
 *
 * Byte content is redacted to "[N bytes]" unless the caller asks for hex: stanza content holds
 * ciphertexts, prekeys, identity keys and HMACs, and logs must not carry key material.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "bnode/bnode.h"
#include "core/util.h"
#include "wa/error.h"

static int put(wa_buf *o, const char *s, size_t n)
{
    return wa_buf_append(o, s, n);
}

static int puts_(wa_buf *o, const char *s)
{
    return put(o, s, strlen(s));
}

/* Escaped text: XML specials as entities, control bytes and DEL as \xNN. */
static int put_escaped(wa_buf *o, const char *s, size_t n)
{
    size_t i, run = 0;
    int rc = 0;

    for (i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *rep = NULL;
        char hex[5];

        switch (c) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        default:
            if (c < 0x20 || c == 0x7f || c == '\\') {
                snprintf(hex, sizeof hex, "\\x%02x", c);
                rep = hex;
            }
        }
        if (!rep)
            continue;
        rc = put(o, s + run, i - run);
        if (!rc)
            rc = puts_(o, rep);
        run = i + 1;
    }
    if (!rc)
        rc = put(o, s + run, n - run);
    return rc;
}

static int indent(wa_buf *o, int flags, int depth)
{
    int rc = 0, i;

    if (!(flags & WA_NODE_XML_INDENT))
        return 0;
    if (o->len)
        rc = wa_buf_append_byte(o, '\n');
    for (i = 1; !rc && i < depth; i++)
        rc = put(o, "  ", 2);
    return rc;
}

static int put_hex(wa_buf *o, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    int rc = wa_buf_reserve(o, 2 * n);

    for (i = 0; !rc && i < n; i++) {
        char h[2] = {digits[p[i] >> 4], digits[p[i] & 15]};
        rc = put(o, h, 2);
    }
    return rc;
}

static int render(const wa_node *n, wa_buf *o, int flags, int depth)
{
    const wa_node *c;
    char tmp[32];
    size_t i;
    int rc;

    if (depth > WA_BNODE_MAX_DEPTH)
        return WA_EDEPTH;
    if ((rc = indent(o, flags, depth)) != 0 || (rc = put(o, "<", 1)) != 0 ||
        (rc = put_escaped(o, n->tag, n->tag_len)) != 0)
        return rc;
    for (i = 0; i < n->nattrs; i++) {
        const wa_node_kv *a = &n->attrs[i];
        if ((rc = put(o, " ", 1)) != 0 || (rc = put_escaped(o, a->key, a->key_len)) != 0 ||
            (rc = put(o, "=\"", 2)) != 0 || (rc = put_escaped(o, a->value, a->value_len)) != 0 ||
            (rc = put(o, "\"", 1)) != 0)
            return rc;
    }
    switch (n->content) {
    case WA_NODE_NONE:
        return put(o, "/>", 2);
    case WA_NODE_STRING:
        rc = put(o, ">", 1);
        if (!rc)
            rc = put_escaped(o, (const char *)n->bytes, n->len);
        break;
    case WA_NODE_BYTES:
        rc = put(o, ">", 1);
        if (rc)
            return rc;
        if (flags & WA_NODE_XML_HEX) {
            rc = put_hex(o, n->bytes, n->len);
        } else {
            snprintf(tmp, sizeof tmp, "[%zu bytes]", n->len);
            rc = puts_(o, tmp);
        }
        break;
    case WA_NODE_LIST:
        rc = put(o, ">", 1);
        for (c = n->first; !rc && c; c = c->next)
            rc = render(c, o, flags, depth + 1);
        if (!rc && n->first)
            rc = indent(o, flags, depth);
        break;
    default:
        return WA_EINVAL;
    }
    if (!rc)
        rc = put(o, "</", 2);
    if (!rc)
        rc = put_escaped(o, n->tag, n->tag_len);
    if (!rc)
        rc = put(o, ">", 1);
    return rc;
}

int wa_node_to_xml(const wa_node *n, wa_buf *out, int flags)
{
    if (!n || !out)
        return WA_EINVAL;
    return render(n, out, flags, 1);
}
