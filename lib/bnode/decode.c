/*
 * decode.c - binary node decoder (PROTOCOL.md §7), dictionary v2 and v3.
 *
 * Follows Baileys' decodeDecompressedBinaryNode (6.17 / 7) and whatsmeow's binary/decoder.go.
 * Where they differ or are lax, the choices are:
 *
 * - Content: BINARY_8/20/32 -> BYTES; any other string form (token, packed, JID) -> STRING;
 *   LIST_EMPTY/LIST_8/LIST_16 -> LIST. This is Baileys' Buffer vs string distinction; whatsmeow
 *   returns []byte vs string/JID the same way.
 * - The input must be exactly one node: trailing bytes are WA_EPROTO (whatsmeow; Baileys ignores).
 * - JID parts (user, server) must be plain strings: a JID nested in a JID is WA_EPROTO
 *   (whatsmeow fails its type assertion; Baileys would build "a@b@c"). A JID_PAIR user may be
 *   LIST_EMPTY ("" -> "@server"); the server must be non-empty (both libraries).
 * - AD_JID domain type: 0 s.whatsapp.net, 1 lid, 128 hosted, 129 hosted.lid (Baileys 7 and
 *   whatsmeow); any other value is an agent on s.whatsapp.net, written whatsmeow's way,
 *   "user.agent:device@s.whatsapp.net" (Baileys 7 drops the agent; Baileys 6 maps every
 *   non-zero domain to lid). The same mapping is used for v2 and v3. Device 0 (domains 0, 1,
 *   128, 129) is omitted from the string, as both libraries do.
 * - FB_JID (v3): user, device (2 bytes), server, which must be "msgr" (whatsmeow; Baileys takes
 *   any) -> "user:device@msgr" with the device always written (Baileys 7).
 * - INTEROP_JID (v3): user, device (2), integrator (2), server, which must be "interop"
 *   (whatsmeow; Baileys 7 makes the server optional) -> "integrator-user:device@interop"
 *   (Baileys 7). With dictionary v2 both tags are unknown (WA_ETOKEN), as in Baileys 6.
 * - Packed strings: nibble 15 decodes to NUL and the pad nibble is not checked (both
 *   libraries). A tag, attribute key or attribute value containing NUL is WA_EPROTO (they are C
 *   strings here); STRING content keeps it (content carries its length).
 * - An odd-length flag on an empty packed string gives "" (whatsmeow would panic).
 * - Attribute keys and tags may be any string form, JIDs included (Baileys).
 *
 * Hostile input cannot make the decoder allocate much more than the input size: list and
 * attribute counts are checked against the bytes left (a node takes >= 3 bytes, an attribute
 * >= 2) before anything is allocated, and every allocation comes from the caller's capped arena.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <limits.h>
#include <string.h>
#include <zlib.h>

#include "bnode/bnode.h"
#include "bnode/tokens.h"
#include "core/alloc.h"
#include "core/util.h"
#include "wa/error.h"

#define MIN_NODE_BYTES 3 /* LIST_8 n tag */
#define MIN_ATTR_BYTES 2 /* key, value */
#define INFLATE_STEP   (64u << 10)

enum { STR_STATIC, STR_ARENA, STR_INPUT };

typedef struct str {
    const char *p;
    size_t len;
    int where; /* STR_STATIC/STR_ARENA: NUL-terminated and stable; STR_INPUT: neither */
} str;

typedef struct dec {
    const uint8_t *p;
    size_t len;
    size_t pos;
    const wa_bnode_dict *dict;
    wa_arena *arena;
} dec;

static int arena_err(const wa_arena *a, size_t n)
{
    /* wa_arena_alloc fails either past its cap or when malloc fails. */
    size_t need = (n + 15) & ~(size_t)15;
    return (n > a->max || need > a->max - a->total) ? WA_ELIMIT : WA_ENOMEM;
}

static void *aalloc(dec *d, size_t n, int *rc)
{
    void *p = wa_arena_alloc(d->arena, n);
    if (!p)
        *rc = arena_err(d->arena, n);
    return p;
}

static inline size_t left(const dec *d)
{
    return d->len - d->pos;
}

static inline int rd_byte(dec *d, uint8_t *b)
{
    if (d->pos >= d->len)
        return WA_ETRUNC;
    *b = d->p[d->pos++];
    return 0;
}

static int rd_be(dec *d, size_t n, uint32_t *v)
{
    uint32_t x = 0;
    size_t i;

    if (left(d) < n)
        return WA_ETRUNC;
    for (i = 0; i < n; i++)
        x = (x << 8) | d->p[d->pos + i];
    d->pos += n;
    *v = x;
    return 0;
}

/* Length of BINARY_8/20/32; the bytes must be present. */
static int rd_binary_len(dec *d, uint8_t tag, size_t *n)
{
    uint32_t v;
    int rc;

    if (tag == WA_BNODE_BINARY_8)
        rc = rd_be(d, 1, &v);
    else if (tag == WA_BNODE_BINARY_20)
        rc = rd_be(d, 3, &v);
    else
        rc = rd_be(d, 4, &v);
    if (rc)
        return rc;
    if (tag == WA_BNODE_BINARY_20)
        v &= 0xFFFFF; /* 4 + 16 bits: the top nibble of the first byte is ignored */
    if (v > WA_BNODE_MAX_BYTES)
        return WA_ELIMIT;
    if (v > left(d))
        return WA_ETRUNC;
    *n = v;
    return 0;
}

/* Nibble alphabet; 0 marks an invalid value (12..14). */
static const char nibble_chars[16] = {'0', '1', '2', '3', '4', '5', '6', '7',
                                      '8', '9', '-', '.', 0,   0,   0,   0};
static const char hex_chars[16] = {'0', '1', '2', '3', '4', '5', '6', '7',
                                   '8', '9', 'A', 'B', 'C', 'D', 'E', 'F'};

static int unpack(uint8_t tag, unsigned v, char *c)
{
    if (tag == WA_BNODE_HEX_8) {
        *c = hex_chars[v];
        return 0;
    }
    if (v == 15) {
        *c = '\0';
        return 0;
    }
    if (!nibble_chars[v])
        return WA_EPROTO;
    *c = nibble_chars[v];
    return 0;
}

static int rd_packed(dec *d, uint8_t tag, str *out)
{
    uint8_t start;
    size_t nbytes, i, n;
    char *p;
    int rc;

    rc = rd_byte(d, &start);
    if (rc)
        return rc;
    nbytes = start & 0x7F;
    if (left(d) < nbytes)
        return WA_ETRUNC;
    p = aalloc(d, 2 * nbytes + 1, &rc);
    if (!p)
        return rc;
    for (i = 0; i < nbytes; i++) {
        uint8_t b = d->p[d->pos + i];
        if ((rc = unpack(tag, b >> 4, &p[2 * i])) != 0 ||
            (rc = unpack(tag, b & 0x0F, &p[2 * i + 1])) != 0)
            return rc;
    }
    d->pos += nbytes;
    n = 2 * nbytes;
    if ((start & 0x80) && n > 0)
        n--;
    p[n] = '\0';
    out->p = p;
    out->len = n;
    out->where = STR_ARENA;
    return 0;
}

static int rd_string(dec *d, uint8_t tag, int allow_jid, str *out);

/* A JID part: a plain string (no nested JID). */
static int rd_part(dec *d, str *out)
{
    uint8_t tag;
    int rc = rd_byte(d, &tag);
    if (rc)
        return rc;
    return rd_string(d, tag, 0, out);
}

static char *put_str(char *w, const str *s)
{
    if (s->len)
        memcpy(w, s->p, s->len);
    return w + s->len;
}

static char *put_u(char *w, unsigned v)
{
    char tmp[10];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *w++ = tmp[--n];
    return w;
}

static int str_is(const str *s, const char *lit)
{
    size_t n = strlen(lit);
    return s->len == n && memcmp(s->p, lit, n) == 0;
}

/* Assemble "[integrator-]user[.agent][:device]@server" into the arena. */
static int make_jid(dec *d, int integrator, const str *user, int agent, int device,
                    const char *server, size_t server_len, str *out)
{
    /* numbers: up to 5 digits each plus separators */
    size_t cap = user->len + server_len + 24;
    char *p, *w;
    int rc;

    if (user->len > WA_BNODE_MAX_BYTES)
        return WA_ELIMIT;
    p = aalloc(d, cap, &rc);
    if (!p)
        return rc;
    w = p;
    if (integrator >= 0) {
        w = put_u(w, (unsigned)integrator);
        *w++ = '-';
    }
    w = put_str(w, user);
    if (agent >= 0) {
        *w++ = '.';
        w = put_u(w, (unsigned)agent);
    }
    if (device >= 0) {
        *w++ = ':';
        w = put_u(w, (unsigned)device);
    }
    *w++ = '@';
    memcpy(w, server, server_len);
    w += server_len;
    *w = '\0';
    out->p = p;
    out->len = (size_t)(w - p);
    out->where = STR_ARENA;
    return 0;
}

static int rd_jid_pair(dec *d, str *out)
{
    str user, server;
    int rc;

    if ((rc = rd_part(d, &user)) != 0 || (rc = rd_part(d, &server)) != 0)
        return rc;
    if (server.len == 0)
        return WA_EPROTO;
    return make_jid(d, -1, &user, -1, -1, server.p, server.len, out);
}

static int rd_ad_jid(dec *d, str *out)
{
    uint8_t domain, device;
    str user;
    const char *server = WA_JID_SERVER_USER;
    int agent = -1, rc;

    if ((rc = rd_byte(d, &domain)) != 0 || (rc = rd_byte(d, &device)) != 0 ||
        (rc = rd_part(d, &user)) != 0)
        return rc;
    switch (domain) {
    case WA_JID_DOMAIN_WHATSAPP:
        break;
    case WA_JID_DOMAIN_LID:
        server = WA_JID_SERVER_LID;
        break;
    case WA_JID_DOMAIN_HOSTED:
        server = WA_JID_SERVER_HOSTED;
        break;
    case WA_JID_DOMAIN_HOSTED_LID:
        server = WA_JID_SERVER_HOSTED_LID;
        break;
    default:
        agent = domain;
        break;
    }
    return make_jid(d, -1, &user, agent, (device || agent >= 0) ? device : -1, server,
                    strlen(server), out);
}

static int rd_fb_jid(dec *d, str *out)
{
    str user, server;
    uint32_t device;
    int rc;

    if ((rc = rd_part(d, &user)) != 0 || (rc = rd_be(d, 2, &device)) != 0 ||
        (rc = rd_part(d, &server)) != 0)
        return rc;
    if (!str_is(&server, WA_JID_SERVER_MSGR))
        return WA_EPROTO;
    return make_jid(d, -1, &user, -1, (int)device, server.p, server.len, out);
}

static int rd_interop_jid(dec *d, str *out)
{
    str user, server;
    uint32_t device, integrator;
    int rc;

    if ((rc = rd_part(d, &user)) != 0 || (rc = rd_be(d, 2, &device)) != 0 ||
        (rc = rd_be(d, 2, &integrator)) != 0 || (rc = rd_part(d, &server)) != 0)
        return rc;
    if (!str_is(&server, WA_JID_SERVER_INTEROP))
        return WA_EPROTO;
    return make_jid(d, (int)integrator, &user, -1, (int)device, server.p, server.len, out);
}

static int rd_string(dec *d, uint8_t tag, int allow_jid, str *out)
{
    const wa_bnode_dict *t = d->dict;
    uint8_t idx;
    size_t n;
    int rc;

    if (tag >= 1 && tag < t->single_count) {
        out->p = t->single[tag];
        out->len = t->single_len[tag];
        out->where = STR_STATIC;
        return 0;
    }
    switch (tag) {
    case WA_BNODE_LIST_EMPTY:
        out->p = "";
        out->len = 0;
        out->where = STR_STATIC;
        return 0;
    case WA_BNODE_DICTIONARY_0:
    case WA_BNODE_DICTIONARY_0 + 1:
    case WA_BNODE_DICTIONARY_0 + 2:
    case WA_BNODE_DICTIONARY_3:
        if ((rc = rd_byte(d, &idx)) != 0)
            return rc;
        if (idx >= t->dbl_count[tag - WA_BNODE_DICTIONARY_0])
            return WA_ETOKEN;
        out->p = t->dbl[tag - WA_BNODE_DICTIONARY_0][idx];
        out->len = t->dbl_len[tag - WA_BNODE_DICTIONARY_0][idx];
        out->where = STR_STATIC;
        return 0;
    case WA_BNODE_BINARY_8:
    case WA_BNODE_BINARY_20:
    case WA_BNODE_BINARY_32:
        if ((rc = rd_binary_len(d, tag, &n)) != 0)
            return rc;
        out->p = (const char *)d->p + d->pos;
        out->len = n;
        out->where = STR_INPUT;
        d->pos += n;
        return 0;
    case WA_BNODE_NIBBLE_8:
    case WA_BNODE_HEX_8:
        return rd_packed(d, tag, out);
    case WA_BNODE_JID_PAIR:
        return allow_jid ? rd_jid_pair(d, out) : WA_EPROTO;
    case WA_BNODE_AD_JID:
        return allow_jid ? rd_ad_jid(d, out) : WA_EPROTO;
    case WA_BNODE_FB_JID:
        if (t->version < 3)
            return WA_ETOKEN;
        return allow_jid ? rd_fb_jid(d, out) : WA_EPROTO;
    case WA_BNODE_INTEROP_JID:
        if (t->version < 3)
            return WA_ETOKEN;
        return allow_jid ? rd_interop_jid(d, out) : WA_EPROTO;
    case WA_BNODE_LIST_8:
    case WA_BNODE_LIST_16:
        return WA_EPROTO; /* a list where a string belongs */
    default:
        return WA_ETOKEN; /* 240..244 */
    }
}

/* A NUL-terminated, arena- or static-backed copy of s. */
static int materialize(dec *d, str *s)
{
    char *p;

    if (s->where != STR_INPUT)
        return 0;
    p = wa_arena_strndup(d->arena, s->p, s->len);
    if (!p)
        return arena_err(d->arena, s->len + 1);
    s->p = p;
    s->where = STR_ARENA;
    return 0;
}

/* Read a string that becomes a C string (tag, attribute key or value). */
static int rd_cstring(dec *d, str *s)
{
    uint8_t tag;
    int rc;

    if ((rc = rd_byte(d, &tag)) != 0 || (rc = rd_string(d, tag, 1, s)) != 0)
        return rc;
    if (s->where != STR_STATIC && s->len && memchr(s->p, 0, s->len))
        return WA_EPROTO;
    return materialize(d, s);
}

static int rd_list_size(dec *d, uint8_t tag, size_t *n)
{
    uint32_t v;
    int rc;

    switch (tag) {
    case WA_BNODE_LIST_EMPTY:
        *n = 0;
        return 0;
    case WA_BNODE_LIST_8:
        rc = rd_be(d, 1, &v);
        break;
    case WA_BNODE_LIST_16:
        rc = rd_be(d, 2, &v);
        break;
    default:
        return WA_EPROTO;
    }
    if (rc)
        return rc;
    *n = v;
    return 0;
}

static int rd_node(dec *d, int depth, wa_node *n);

static int rd_content(dec *d, int depth, wa_node *n)
{
    uint8_t tag;
    size_t count, i;
    str s;
    int rc;

    if ((rc = rd_byte(d, &tag)) != 0)
        return rc;
    switch (tag) {
    case WA_BNODE_LIST_EMPTY:
    case WA_BNODE_LIST_8:
    case WA_BNODE_LIST_16: {
        wa_node *kids;
        if ((rc = rd_list_size(d, tag, &count)) != 0)
            return rc;
        n->content = WA_NODE_LIST;
        if (count == 0)
            return 0;
        if (count > WA_BNODE_MAX_LIST)
            return WA_ELIMIT;
        if (count > left(d) / MIN_NODE_BYTES)
            return WA_ETRUNC;
        if (depth + 1 > WA_BNODE_MAX_DEPTH)
            return WA_EDEPTH;
        kids = aalloc(d, count * sizeof *kids, &rc);
        if (!kids)
            return rc;
        for (i = 0; i < count; i++) {
            if ((rc = rd_node(d, depth + 1, &kids[i])) != 0)
                return rc;
            kids[i].next = i + 1 < count ? &kids[i + 1] : NULL;
        }
        n->first = kids;
        n->last = &kids[count - 1];
        n->len = count;
        return 0;
    }
    case WA_BNODE_BINARY_8:
    case WA_BNODE_BINARY_20:
    case WA_BNODE_BINARY_32: {
        char *p;
        if ((rc = rd_binary_len(d, tag, &count)) != 0)
            return rc;
        p = wa_arena_strndup(d->arena, (const char *)d->p + d->pos, count);
        if (!p)
            return arena_err(d->arena, count + 1);
        d->pos += count;
        n->content = WA_NODE_BYTES;
        n->bytes = (const uint8_t *)p;
        n->len = count;
        return 0;
    }
    default:
        if ((rc = rd_string(d, tag, 1, &s)) != 0 || (rc = materialize(d, &s)) != 0)
            return rc;
        n->content = WA_NODE_STRING;
        n->bytes = (const uint8_t *)s.p;
        n->len = s.len;
        return 0;
    }
}

static int rd_node(dec *d, int depth, wa_node *n)
{
    uint8_t tag;
    size_t size, nattrs, i;
    str s;
    int rc;

    memset(n, 0, sizeof *n);
    if ((rc = rd_byte(d, &tag)) != 0 || (rc = rd_list_size(d, tag, &size)) != 0)
        return rc;
    if (size == 0)
        return WA_EPROTO;
    if ((rc = rd_cstring(d, &s)) != 0)
        return rc;
    if (s.len == 0)
        return WA_EPROTO;
    n->tag = s.p;
    n->tag_len = s.len;

    nattrs = (size - 1) / 2;
    if (nattrs > WA_BNODE_MAX_ATTRS)
        return WA_ELIMIT;
    if (nattrs * MIN_ATTR_BYTES + (size % 2 == 0) > left(d))
        return WA_ETRUNC;
    if (nattrs) {
        n->attrs = aalloc(d, nattrs * sizeof *n->attrs, &rc);
        if (!n->attrs)
            return rc;
        n->attrs_cap = nattrs;
        for (i = 0; i < nattrs; i++) {
            wa_node_kv *a = &n->attrs[i];
            if ((rc = rd_cstring(d, &s)) != 0)
                return rc;
            a->key = s.p;
            a->key_len = s.len;
            if ((rc = rd_cstring(d, &s)) != 0)
                return rc;
            a->value = s.p;
            a->value_len = s.len;
            n->nattrs = i + 1;
        }
    }
    if (size % 2 == 0)
        return rd_content(d, depth, n);
    return 0;
}

int wa_bnode_decode(const uint8_t *data, size_t len, int dict_version, wa_arena *arena,
                    wa_node **out)
{
    dec d;
    wa_node *root;
    int rc;

    if ((!data && len) || !arena || !out)
        return WA_EINVAL;
    d.dict = wa_bnode_dict_get(dict_version);
    if (!d.dict)
        return WA_EINVAL;
    d.p = data;
    d.len = len;
    d.pos = 0;
    d.arena = arena;
    if (len == 0)
        return WA_ETRUNC;
    root = aalloc(&d, sizeof *root, &rc);
    if (!root)
        return rc;
    rc = rd_node(&d, 1, root);
    if (rc)
        return rc;
    if (d.pos != d.len)
        return WA_EPROTO;
    *out = root;
    return 0;
}

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return wa_calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    wa_free(p);
}

/* Inflate a whole zlib stream into out (capped at WA_BNODE_MAX_INFLATED). */
static int inflate_all(const uint8_t *in, size_t len, wa_buf *out)
{
    z_stream z;
    int zrc, rc = 0;

    memset(&z, 0, sizeof z);
    z.zalloc = z_alloc;
    z.zfree = z_free;
    if (len > UINT_MAX)
        return WA_ELIMIT;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    zrc = inflateInit(&z);
    if (zrc != Z_OK)
        return zrc == Z_MEM_ERROR ? WA_ENOMEM : WA_EZLIB;
    for (;;) {
        size_t room;
        uInt avail;
        if (out->cap - out->len < INFLATE_STEP && out->len < out->max) {
            size_t want = out->max - out->len < INFLATE_STEP ? out->max - out->len : INFLATE_STEP;
            if ((rc = wa_buf_reserve(out, want)) != 0)
                goto out;
        }
        room = out->cap - out->len;
        if (room == 0) {
            rc = WA_ELIMIT;
            goto out;
        }
        avail = room > UINT_MAX ? UINT_MAX : (uInt)room;
        z.next_out = out->data + out->len;
        z.avail_out = avail;
        zrc = inflate(&z, Z_NO_FLUSH);
        out->len += avail - z.avail_out;
        if (zrc == Z_STREAM_END)
            break;
        if (zrc == Z_MEM_ERROR) {
            rc = WA_ENOMEM;
            goto out;
        }
        if (zrc == Z_DATA_ERROR || zrc == Z_NEED_DICT || zrc == Z_STREAM_ERROR) {
            rc = WA_EZLIB;
            goto out;
        }
        if (z.avail_in == 0 && z.avail_out != 0) {
            rc = WA_ETRUNC; /* the compressed stream ends early */
            goto out;
        }
    }
    if (z.avail_in != 0)
        rc = WA_EZLIB; /* bytes after the end of the zlib stream */
out:
    inflateEnd(&z);
    return rc;
}

int wa_bnode_decode_frame(const uint8_t *data, size_t len, int dict_version, wa_arena *arena,
                          wa_node **out)
{
    wa_buf plain;
    int rc;

    if ((!data && len) || !arena || !out)
        return WA_EINVAL;
    if (len == 0)
        return WA_ETRUNC;
    if (!(data[0] & WA_BNODE_FLAG_COMPRESSED))
        return wa_bnode_decode(data + 1, len - 1, dict_version, arena, out);
    wa_buf_init(&plain, WA_BNODE_MAX_INFLATED);
    rc = inflate_all(data + 1, len - 1, &plain);
    if (!rc)
        rc = wa_bnode_decode(plain.data, plain.len, dict_version, arena, out);
    wa_buf_cleanup(&plain);
    return rc;
}
