/*
 * encode.c - binary node encoder (PROTOCOL.md §7), dictionary v2 and v3.
 *
 * Byte-identical to Baileys' encodeBinaryNode (lib/WABinary/encode.js; 6.17.16 for v2,
 * 7.0.0-rc14 for v3) for the same tree, without the leading 0x00 Baileys puts in front (that is
 * the transport flag byte: wa_bnode_encode_frame writes it). A string is written as the first
 * of these that applies:
 *   ""            v2: byte 0 (Baileys 6 finds "" as single-byte token 0, which decodes as
 *                 LIST_EMPTY = ""); v3: BINARY_8 0 (Baileys 7 special-cases it)
 *   token         single-byte, else double-byte (236 + dict, index) (tokens_v*.c)
 *   nibble        all of [0-9.-], at most 127 chars
 *   hex           all of [0-9A-F], at most 127 chars
 *   JID           see jid_form() below
 *   raw           BINARY_8 (< 256), BINARY_20 (< 2^20), BINARY_32
 *
 * Deliberate differences from Baileys, all for strings that Baileys' own decoder would not give
 * back unchanged, so that encode -> decode is the identity on every tree:
 * - JID form is used only when decoding it gives the same string (jid_form). Baileys' jidDecode
 *   also JID-encodes "u_1@s.whatsapp.net" (agent dropped), "u:x@g.us" (device NaN -> 0, server
 *   lost), "u:0@..." and "u:@..." (device dropped), "u@" (undecodable), "a@b@c" (nested JID
 *   pairs, which libwa's decoder and whatsmeow's refuse); libwa writes those raw.
 * - STRING content "" is written NIBBLE_8 0x00 (decodes as the string ""); Baileys writes byte 0
 *   (v2, decodes as an empty child list) or BINARY_8 0 (v3, decodes as empty bytes).
 * - Baileys looks strings up in a plain JS object, so "constructor", "toString", "__proto__"
 *   and the other Object.prototype names are "tokens" there and come out as byte 0; libwa
 *   writes them as the ordinary strings they are.
 * - Attributes are written in the tree's order. (Baileys uses Object.keys order, which puts
 *   integer-like keys such as "0" or "12" first in ascending order.)
 * FB_JID and INTEROP_JID are never written (Baileys neither; whatsmeow writes them for @msgr
 * and @interop JIDs).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <string.h>

#include "bnode/bnode.h"
#include "bnode/tokens.h"
#include "core/util.h"
#include "wa/error.h"

typedef struct enc {
    wa_buf *out;
    const wa_bnode_dict *dict;
} enc;

static inline int put1(enc *e, uint8_t b)
{
    wa_buf *o = e->out;

    if (o->len < o->cap) {
        o->data[o->len++] = b;
        return 0;
    }
    return wa_buf_append_byte(o, b);
}

static inline int put2(enc *e, uint8_t a, uint8_t b)
{
    wa_buf *o = e->out;

    if (o->cap - o->len >= 2) {
        o->data[o->len++] = a;
        o->data[o->len++] = b;
        return 0;
    }
    {
        uint8_t t[2] = {a, b};
        return wa_buf_append(o, t, 2);
    }
}

static int put(enc *e, const void *p, size_t n)
{
    wa_buf *o = e->out;

    if (o->cap - o->len >= n) {
        if (n)
            memcpy(o->data + o->len, p, n);
        o->len += n;
        return 0;
    }
    return wa_buf_append(o, p, n);
}

static int write_byte_length(enc *e, size_t n)
{
    uint8_t h[5];

    if (n > 0xFFFFFFFFu)
        return WA_ELIMIT;
    if (n >= (1u << 20)) {
        h[0] = WA_BNODE_BINARY_32;
        wa_store_be32(h + 1, (uint32_t)n);
        return put(e, h, 5);
    }
    if (n >= 256) {
        h[0] = WA_BNODE_BINARY_20;
        wa_store_be24(h + 1, (uint32_t)n);
        return put(e, h, 4);
    }
    return put2(e, WA_BNODE_BINARY_8, (uint8_t)n);
}

static int write_raw(enc *e, const void *p, size_t n)
{
    int rc = write_byte_length(e, n);
    return rc ? rc : put(e, p, n);
}

/* Character classes: bit 1 nibble ([0-9.-]), bit 2 hex ([0-9A-F]); and nibble values. */
#define C_NIBBLE 1
#define C_HEX    2
static const uint8_t cclass[256] = {
    ['0'] = 3, ['1'] = 3, ['2'] = 3, ['3'] = 3, ['4'] = 3, ['5'] = 3,
    ['6'] = 3, ['7'] = 3, ['8'] = 3, ['9'] = 3, ['-'] = 1, ['.'] = 1,
    ['A'] = 2, ['B'] = 2, ['C'] = 2, ['D'] = 2, ['E'] = 2, ['F'] = 2};
static const uint8_t nib_val[256] = {
    ['0'] = 0,  ['1'] = 1,  ['2'] = 2,  ['3'] = 3,  ['4'] = 4,  ['5'] = 5,
    ['6'] = 6,  ['7'] = 7,  ['8'] = 8,  ['9'] = 9,  ['-'] = 10, ['.'] = 11,
    ['A'] = 10, ['B'] = 11, ['C'] = 12, ['D'] = 13, ['E'] = 14, ['F'] = 15};

/* Bits common to all characters of s (0 when too long to pack). */
static int packable(const char *s, size_t n)
{
    int m = C_NIBBLE | C_HEX;
    size_t i;

    if (n > WA_BNODE_PACKED_MAX)
        return 0;
    for (i = 0; i < n && m; i++)
        m &= cclass[(uint8_t)s[i]];
    return m;
}

static int write_packed(enc *e, const char *s, size_t n, uint8_t tag)
{
    uint8_t buf[2 + 64];
    size_t i, w = 0;

    buf[w++] = tag;
    buf[w++] = (uint8_t)(((n + 1) / 2) | ((n & 1) ? 0x80 : 0));
    for (i = 0; i + 1 < n; i += 2)
        buf[w++] = (uint8_t)((nib_val[(uint8_t)s[i]] << 4) | nib_val[(uint8_t)s[i + 1]]);
    if (n & 1)
        buf[w++] = (uint8_t)((nib_val[(uint8_t)s[n - 1]] << 4) | 0x0F);
    return put(e, buf, w);
}

typedef struct jidform {
    int ad;           /* 1: AD_JID, 0: JID_PAIR */
    uint8_t domain;   /* AD_JID */
    uint8_t device;   /* AD_JID */
    const char *user; /* JID_PAIR user may be empty (LIST_EMPTY) */
    size_t user_len;
    const char *server; /* JID_PAIR */
    size_t server_len;
} jidform;

static int bytes_is(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(s, lit, l) == 0;
}

/*
 * The JID form of s, as Baileys' jidDecode + writeJid would write it, but only when the decoder
 * gives s back: exactly one '@', a non-empty server, no '_' (agent) before it, at most one ':'
 * and then a canonical device 1..255 on a server with a domain type (s.whatsapp.net 0, lid 1;
 * v3 also hosted 128, hosted.lid 129).
 */
static int jid_form(const enc *e, const char *s, size_t n, jidform *j)
{
    const char *at = memchr(s, '@', n), *colon, *dev;
    size_t ulen, dlen, i;
    unsigned v = 0;

    if (!at)
        return 0;
    ulen = (size_t)(at - s);
    j->server = at + 1;
    j->server_len = n - ulen - 1;
    if (j->server_len == 0 || memchr(j->server, '@', j->server_len))
        return 0;
    if (ulen && memchr(s, '_', ulen))
        return 0;
    colon = ulen ? memchr(s, ':', ulen) : NULL;
    if (!colon) {
        j->ad = 0;
        j->user = s;
        j->user_len = ulen;
        return 1;
    }
    dev = colon + 1;
    dlen = (size_t)(at - dev);
    if (dlen == 0 || dlen > 3 || dev[0] == '0')
        return 0;
    for (i = 0; i < dlen; i++) {
        if (dev[i] < '0' || dev[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(dev[i] - '0');
    }
    if (v > 255)
        return 0;
    if (bytes_is(j->server, j->server_len, WA_JID_SERVER_USER))
        j->domain = WA_JID_DOMAIN_WHATSAPP;
    else if (bytes_is(j->server, j->server_len, WA_JID_SERVER_LID))
        j->domain = WA_JID_DOMAIN_LID;
    else if (e->dict->version >= 3 && bytes_is(j->server, j->server_len, WA_JID_SERVER_HOSTED))
        j->domain = WA_JID_DOMAIN_HOSTED;
    else if (e->dict->version >= 3 && bytes_is(j->server, j->server_len, WA_JID_SERVER_HOSTED_LID))
        j->domain = WA_JID_DOMAIN_HOSTED_LID;
    else
        return 0;
    j->ad = 1;
    j->device = (uint8_t)v;
    j->user = s;
    j->user_len = (size_t)(colon - s);
    return 1;
}

static int write_string(enc *e, const char *s, size_t n);

static int write_jid(enc *e, const jidform *j)
{
    int rc;

    if (j->ad) {
        uint8_t h[3] = {WA_BNODE_AD_JID, j->domain, j->device};
        if ((rc = put(e, h, 3)) != 0)
            return rc;
        return write_string(e, j->user, j->user_len);
    }
    if ((rc = put1(e, WA_BNODE_JID_PAIR)) != 0)
        return rc;
    rc = j->user_len ? write_string(e, j->user, j->user_len) : put1(e, WA_BNODE_LIST_EMPTY);
    if (rc)
        return rc;
    return write_string(e, j->server, j->server_len);
}

/* Recursion: JID parts contain no '@', so write_string nests at most once. */
static int write_string(enc *e, const char *s, size_t n)
{
    jidform j;
    int dict, m;
    uint8_t index;

    if (n == 0) {
        if (e->dict->version < 3)
            return put1(e, WA_BNODE_LIST_EMPTY);
        return put2(e, WA_BNODE_BINARY_8, 0);
    }
    if (wa_bnode_token_find(e->dict, s, n, &dict, &index)) {
        if (dict < 0)
            return put1(e, index);
        return put2(e, (uint8_t)(WA_BNODE_DICTIONARY_0 + dict), index);
    }
    m = packable(s, n);
    if (m & C_NIBBLE)
        return write_packed(e, s, n, WA_BNODE_NIBBLE_8);
    if (m & C_HEX)
        return write_packed(e, s, n, WA_BNODE_HEX_8);
    if (jid_form(e, s, n, &j))
        return write_jid(e, &j);
    return write_raw(e, s, n);
}

static int write_list_start(enc *e, size_t n)
{
    if (n == 0)
        return put1(e, WA_BNODE_LIST_EMPTY);
    if (n < 256)
        return put2(e, WA_BNODE_LIST_8, (uint8_t)n);
    if (n > 0xFFFF)
        return WA_ELIMIT;
    {
        uint8_t h[3] = {WA_BNODE_LIST_16, (uint8_t)(n >> 8), (uint8_t)n};
        return put(e, h, 3);
    }
}

static int write_node(enc *e, const wa_node *n, int depth)
{
    const wa_node *c;
    size_t i, count;
    int rc;

    if (depth > WA_BNODE_MAX_DEPTH)
        return WA_EDEPTH;
    if (!n->tag || n->tag_len == 0)
        return WA_EINVAL;
    if (n->nattrs > (0xFFFF - 2) / 2)
        return WA_ELIMIT;
    rc = write_list_start(e, 2 * n->nattrs + 1 + (n->content != WA_NODE_NONE));
    if (!rc)
        rc = write_string(e, n->tag, n->tag_len);
    for (i = 0; !rc && i < n->nattrs; i++) {
        rc = write_string(e, n->attrs[i].key, n->attrs[i].key_len);
        if (!rc)
            rc = write_string(e, n->attrs[i].value, n->attrs[i].value_len);
    }
    if (rc)
        return rc;
    switch (n->content) {
    case WA_NODE_NONE:
        return 0;
    case WA_NODE_BYTES:
        return write_raw(e, n->bytes, n->len);
    case WA_NODE_STRING:
        if (n->len == 0)
            return put2(e, WA_BNODE_NIBBLE_8, 0);
        return write_string(e, (const char *)n->bytes, n->len);
    case WA_NODE_LIST:
        count = 0;
        for (c = n->first; c; c = c->next)
            count++;
        if ((rc = write_list_start(e, count)) != 0)
            return rc;
        for (c = n->first; c; c = c->next)
            if ((rc = write_node(e, c, depth + 1)) != 0)
                return rc;
        return 0;
    default:
        return WA_EINVAL;
    }
}

int wa_bnode_encode(const wa_node *n, int dict_version, wa_buf *out)
{
    enc e;
    size_t start;
    int rc;

    if (!n || !out)
        return WA_EINVAL;
    e.dict = wa_bnode_dict_get(dict_version);
    if (!e.dict)
        return WA_EINVAL;
    e.out = out;
    start = out->len;
    rc = write_node(&e, n, 1);
    if (rc)
        out->len = start;
    return rc;
}

int wa_bnode_encode_frame(const wa_node *n, int dict_version, wa_buf *out)
{
    size_t start = out ? out->len : 0;
    int rc;

    if (!n || !out)
        return WA_EINVAL;
    rc = wa_buf_append_byte(out, 0);
    if (!rc)
        rc = wa_bnode_encode(n, dict_version, out);
    if (rc)
        out->len = start;
    return rc;
}
