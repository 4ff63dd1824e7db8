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
 * - Packed strings: nibble 15 decodes to NUL, and the pad nibble of an odd length need not be
 *   15 (both libraries) but must be a valid nibble (12..14 are WA_EPROTO wherever they are). A
 *   tag, attribute key or attribute value containing NUL is WA_EPROTO (they are C strings
 *   here); STRING content keeps it (content carries its length).
 * - An odd-length flag on an empty packed string gives "" (whatsmeow would panic).
 * - Attribute keys and tags may be any string form, JIDs included (Baileys).
 *
 * Hostile input cannot make the decoder allocate much more than the input size: list and
 * attribute counts are checked against the bytes left (a node takes >= 3 bytes, an attribute
 * >= 2) before anything is allocated, every allocation comes from the caller's capped arena,
 * and the decoder's reserve is bounded: its first block is BLOCK_MIN + BLOCK_PER_BYTE * input
 * length (at most BLOCK_MAX), a later one is taken only when the previous is full and is at
 * most twice its size (see "Memory" below).
 *
 * Strings of the tree: tokens (and one-byte nibble strings) point into static tables, which
 * outlive every tree and are never written; all other strings and bytes are copied into the
 * arena, so the tree does not reference the input. (node.h: strings are const char *.)
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

/*
 * Memory: the decoder carves the tree out of a few large blocks it takes from the caller's
 * arena (one wa_arena_alloc per block instead of one per node, attribute array and string).
 * The first block is sized from the input (BLOCK_PER_BYTE bytes per input byte, which covers
 * typical stanzas: nodes and attributes cost far more than their wire bytes); later blocks
 * double up to BLOCK_MAX. An allocation larger than a quarter of the block size (big binary
 * content) goes straight to the arena, leaving the block in use. When a block cannot be had
 * (arena cap or malloc failure) the allocation is retried with its exact size, so the arena
 * cap is hit no earlier than with one arena allocation per object, give or take the unused
 * tail of the last block; the errors are the same (WA_ELIMIT past the cap, else WA_ENOMEM).
 * Strings are byte-aligned, nodes and attribute arrays pointer-aligned.
 */
#define BLOCK_MIN      1024u
#define BLOCK_MAX      (256u << 10)
#define BLOCK_PER_BYTE 8u
#define BLOCK_DIRECT   4u /* allocations over block size / BLOCK_DIRECT bypass the block */
#define NODE_ALIGN     (sizeof(void *))

/* Rare paths out of line, so that the common paths stay small. */
#define NOINLINE __attribute__((noinline))

enum { STR_STATIC, STR_ARENA, STR_INPUT };

typedef struct str {
    const char *p;
    size_t len;
    int where; /* STR_STATIC/STR_ARENA: NUL-terminated and stable; STR_INPUT: neither */
    int nul;   /* STR_STATIC/STR_ARENA: p[0..len) holds a NUL (STR_INPUT: unknown) */
    char *own; /* STR_ARENA: the same bytes, writable (the decoder's own allocation) */
} str;

typedef struct dec {
    const uint8_t *p;   /* next input byte */
    const uint8_t *end; /* end of input */
    const wa_bnode_dict *dict;
    const char *const *single; /* dict->single, single_len, single_count, cached */
    const uint8_t *single_len;
    unsigned single_count;
    wa_arena *arena;
    uintptr_t cur, lim; /* free part of the current block (both 0 before the first) */
    size_t block;       /* size of the next block */
} dec;

static int arena_err(const wa_arena *a, size_t n)
{
    /* wa_arena_alloc fails either past its cap or when malloc fails. */
    size_t need = (n + 15) & ~(size_t)15;
    return (n > a->max || need > a->max - a->total) ? WA_ELIMIT : WA_ENOMEM;
}

static NOINLINE void *dalloc_slow(dec *d, size_t n, int *rc)
{
    void *p;

    if (n <= d->block / BLOCK_DIRECT) {
        p = wa_arena_alloc(d->arena, d->block);
        if (p) {
            d->cur = (uintptr_t)p + n;
            d->lim = (uintptr_t)p + d->block;
            d->block = d->block < BLOCK_MAX / 2 ? 2 * d->block : BLOCK_MAX;
            return p;
        }
        d->block = BLOCK_MIN; /* near the cap (or out of memory): reserve no more than needed */
    }
    p = wa_arena_alloc(d->arena, n);
    if (!p)
        *rc = arena_err(d->arena, n);
    return p;
}

/* n (> 0) bytes aligned to `align` (a power of two <= 16). Blocks are 16-aligned and their
 * size is a multiple of 16, so aligning cur never passes lim. */
static inline void *dalloc(dec *d, size_t n, size_t align, int *rc)
{
    uintptr_t c = (d->cur + (align - 1)) & ~(uintptr_t)(align - 1);

    if (n <= d->lim - c) {
        d->cur = c + n;
        return (void *)c;
    }
    return dalloc_slow(d, n, rc);
}

static inline size_t left(const dec *d)
{
    return (size_t)(d->end - d->p);
}

static inline int rd_byte(dec *d, uint8_t *b)
{
    if (d->p == d->end)
        return WA_ETRUNC;
    *b = *d->p++;
    return 0;
}

static inline int rd_be(dec *d, size_t n, uint32_t *v)
{
    uint32_t x = 0;
    size_t i;

    if (left(d) < n)
        return WA_ETRUNC;
    for (i = 0; i < n; i++)
        x = (x << 8) | d->p[i];
    d->p += n;
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

/* A token or other string in static storage (never written, outlives every tree). */
static inline void set_static(str *out, const char *p, size_t len)
{
    out->p = p;
    out->len = len;
    out->where = STR_STATIC;
    out->nul = 0;
}

/* A NUL-terminated arena copy of n input bytes. */
static char *copy_input(dec *d, const uint8_t *src, size_t n, int *rc)
{
    char *p = dalloc(d, n + 1, 1, rc);

    if (!p)
        return NULL;
    if (n)
        memcpy(p, src, n);
    p[n] = '\0';
    return p;
}

/*
 * Packed strings: one table entry per input byte gives both characters. Nibble alphabet
 * "0123456789-." then 12..14 invalid (WA_EPROTO) and 15 = NUL; hex "0123456789ABCDEF".
 * pack_flags: PACK_BAD an invalid nibble, PACK_NUL_HI / PACK_NUL_LO a high / low nibble 15.
 */
#define NIB_CHAR(v) ((v) < 10 ? '0' + (v) : (v) == 10 ? '-' : (v) == 11 ? '.' : 0)
#define HEX_CHAR(v) ((v) < 10 ? '0' + (v) : 'A' + (v)-10)
#define NIB_BAD(v)  ((v) >= 12 && (v) <= 14)
#define NIB_PAIR(b) NIB_CHAR((b) >> 4), NIB_CHAR((b)&15)
#define HEX_PAIR(b) HEX_CHAR((b) >> 4), HEX_CHAR((b)&15)
#define NIB_FLAGS(b)                                                                               \
    ((NIB_BAD((b) >> 4) || NIB_BAD((b)&15)) | ((b) >> 4 == 15) << 1 | (((b)&15) == 15) << 2)
#define ROW(F, h)                                                                                  \
    F(h * 16 + 0), F(h * 16 + 1), F(h * 16 + 2), F(h * 16 + 3), F(h * 16 + 4), F(h * 16 + 5),      \
        F(h * 16 + 6), F(h * 16 + 7), F(h * 16 + 8), F(h * 16 + 9), F(h * 16 + 10),                \
        F(h * 16 + 11), F(h * 16 + 12), F(h * 16 + 13), F(h * 16 + 14), F(h * 16 + 15)
#define TABLE(F)                                                                                   \
    ROW(F, 0), ROW(F, 1), ROW(F, 2), ROW(F, 3), ROW(F, 4), ROW(F, 5), ROW(F, 6), ROW(F, 7),        \
        ROW(F, 8), ROW(F, 9), ROW(F, 10), ROW(F, 11), ROW(F, 12), ROW(F, 13), ROW(F, 14),          \
        ROW(F, 15)
#define PACK_BAD    1
#define PACK_NUL_HI 2
#define PACK_NUL_LO 4

static const char nibble_pairs[512] = {TABLE(NIB_PAIR)};
static const char hex_pairs[512] = {TABLE(HEX_PAIR)};
static const uint8_t pack_flags[256] = {TABLE(NIB_FLAGS)};

/* One-byte nibble strings ("0".."99", "1.", ...: ids, versions, counts, all frequent) are
 * not allocated: [byte][odd] is the string, in static storage like the tokens. */
#define NIB_SHORT(b)                                                                               \
    {                                                                                              \
        {NIB_CHAR((b) >> 4), NIB_CHAR((b)&15), 0},                                                 \
        {                                                                                          \
            NIB_CHAR((b) >> 4), 0, 0                                                               \
        }                                                                                          \
    }
static const char nibble_short[256][2][3] = {TABLE(NIB_SHORT)};

/* Unpack nbytes (> 0) nibble-packed bytes into 2 * nbytes characters at p. odd: the last low
 * nibble is padding, whose NUL (15) does not count. Returns the PACK_* flags. */
static inline unsigned unpack_nibbles(char *p, const uint8_t *src, size_t nbytes, int odd)
{
    unsigned flags = 0, last = src[nbytes - 1];
    size_t i;

    for (i = 0; i + 1 < nbytes; i++) {
        unsigned b = src[i];
        memcpy(p + 2 * i, nibble_pairs + 2 * (size_t)b, 2);
        flags |= pack_flags[b];
    }
    memcpy(p + 2 * i, nibble_pairs + 2 * (size_t)last, 2);
    /* the pad nibble must be valid (or 15) too, but it is not a NUL of the string */
    return flags | (pack_flags[last] & (odd ? ~(unsigned)PACK_NUL_LO : ~0u));
}

static inline int rd_packed(dec *d, uint8_t tag, str *out)
{
    uint8_t start;
    size_t nbytes, i, n;
    unsigned flags = 0;
    int odd;
    char *p;
    int rc;

    if ((rc = rd_byte(d, &start)) != 0)
        return rc;
    nbytes = start & 0x7F;
    odd = (start & 0x80) != 0;
    if (left(d) < nbytes)
        return WA_ETRUNC;
    n = 2 * nbytes;
    if (odd && n > 0)
        n--;
    if (nbytes == 1 && tag == WA_BNODE_NIBBLE_8) {
        flags = pack_flags[*d->p] & (odd ? ~(unsigned)PACK_NUL_LO : ~0u);
        if (flags & PACK_BAD)
            return WA_EPROTO;
        set_static(out, nibble_short[*d->p][odd], n);
        out->nul = flags != 0;
        d->p++;
        return 0;
    }
    /* 2 * nbytes characters are written: n, then the pad character, which the NUL replaces */
    if (!(p = dalloc(d, n + 1, 1, &rc)))
        return rc;
    if (tag == WA_BNODE_HEX_8) {
        const uint8_t *src = d->p; /* a local: stores to p could alias d->p */
        for (i = 0; i + 1 < nbytes; i += 2) {
            memcpy(p + 2 * i, hex_pairs + 2 * (size_t)src[i], 2);
            memcpy(p + 2 * i + 2, hex_pairs + 2 * (size_t)src[i + 1], 2);
        }
        if (i < nbytes)
            memcpy(p + 2 * i, hex_pairs + 2 * (size_t)src[i], 2);
    } else if (nbytes) {
        flags = unpack_nibbles(p, d->p, nbytes, odd);
        if (flags & PACK_BAD)
            return WA_EPROTO;
    }
    d->p += nbytes;
    p[n] = '\0';
    out->p = p;
    out->own = p;
    out->len = n;
    out->where = STR_ARENA;
    out->nul = flags != 0;
    return 0;
}

static int rd_string(dec *d, uint8_t tag, int allow_jid, str *out);

/* A JID part: a plain string (no nested JID), whose `nul` is known. */
static int rd_part(dec *d, str *out)
{
    uint8_t tag;
    int rc = rd_byte(d, &tag);
    if (rc || (rc = rd_string(d, tag, 0, out)) != 0)
        return rc;
    if (out->where == STR_INPUT)
        out->nul = out->len && memchr(out->p, 0, out->len) != NULL;
    return 0;
}

static size_t ndigits(unsigned v)
{
    size_t n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Decimal strings of 0..255: [v][0] the length, then the digits. (Every branch stays within
 * char range: clang checks the unselected ones too.) */
#define DEC_U8(v)                                                                                  \
    {                                                                                              \
        (v) >= 100  ? 3                                                                            \
        : (v) >= 10 ? 2                                                                            \
                    : 1,                                                                           \
            (v) >= 100  ? '0' + (v) / 100 % 10                                                     \
            : (v) >= 10 ? '0' + (v) / 10 % 10                                                      \
                        : '0' + (v) % 10,                                                          \
            (v) >= 100  ? '0' + (v) / 10 % 10                                                      \
            : (v) >= 10 ? '0' + (v) % 10                                                           \
                        : 0,                                                                       \
            (v) >= 100 ? '0' + (v) % 10 : 0                                                        \
    }
static const char dec_u8[256][4] = {TABLE(DEC_U8)};

/* Write v's ndigits(v) decimal digits at w; return the end. */
static char *put_u(char *w, unsigned v, size_t nd)
{
    char *e = w + nd;

    do {
        *--e = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return w + nd;
}

static int str_is(const str *s, const char *lit, size_t n)
{
    return s->len == n && memcmp(s->p, lit, n) == 0;
}

/*
 * Assemble "[integrator-]user[.agent][:device]@server" (numbers < 0 are absent). When the
 * user is the decoder's latest allocation (a packed user, the usual case) and no integrator
 * comes first, the JID is built in place after it, with no copy.
 */
static int make_jid(dec *d, int integrator, const str *user, int agent, int device,
                    const char *server, size_t server_len, int server_nul, str *out)
{
    size_t ni = integrator >= 0 ? ndigits((unsigned)integrator) : 0;
    size_t na = agent >= 0 ? ndigits((unsigned)agent) : 0;
    size_t nd = device >= 0 ? ndigits((unsigned)device) : 0;
    size_t extra, total;
    char *p, *w;
    int rc;

    if (user->len > WA_BNODE_MAX_BYTES)
        return WA_ELIMIT;
    extra = (ni ? ni + 1 : 0) + (na ? na + 1 : 0) + (nd ? nd + 1 : 0) + 1 + server_len;
    total = user->len + extra;
    if (!ni && user->where == STR_ARENA && (uintptr_t)user->p + user->len + 1 == d->cur &&
        extra <= d->lim - d->cur) {
        d->cur += extra;
        p = user->own;
        w = p + user->len;
    } else {
        if (!(p = dalloc(d, total + 1, 1, &rc)))
            return rc;
        w = p;
        if (ni) {
            w = put_u(w, (unsigned)integrator, ni);
            *w++ = '-';
        }
        if (user->len)
            memcpy(w, user->p, user->len);
        w += user->len;
    }
    if (na) {
        *w++ = '.';
        w = put_u(w, (unsigned)agent, na);
    }
    if (nd) {
        *w++ = ':';
        w = put_u(w, (unsigned)device, nd);
    }
    *w++ = '@';
    memcpy(w, server, server_len);
    w[server_len] = '\0';
    out->p = p;
    out->own = p;
    out->len = total;
    out->where = STR_ARENA;
    out->nul = user->nul || server_nul;
    return 0;
}

/*
 * Fast path of the usual JIDs, whose user is nibble-packed (a phone number): the JID
 * "user[.agent][:device]@server" is written in one allocation, straight from the packed bytes.
 * start: the packed string's length byte (nbytes > 0, all present); server: static.
 */
static inline int jid_from_nibbles(dec *d, uint8_t start, int agent, int device, const char *server,
                                   size_t server_len, str *out)
{
    size_t nbytes = start & 0x7F, n = 2 * nbytes - ((start & 0x80) ? 1 : 0);
    size_t na = agent >= 0 ? (size_t)dec_u8[agent][0] : 0;
    size_t nd = device >= 0 ? (size_t)dec_u8[device][0] : 0;
    size_t total = n + (na ? na + 1 : 0) + (nd ? nd + 1 : 0) + 1 + server_len;
    unsigned flags;
    char *p, *w;
    int rc;

    if (!(p = dalloc(d, total + 1, 1, &rc)))
        return rc;
    flags = unpack_nibbles(p, d->p, nbytes, (start & 0x80) != 0);
    if (flags & PACK_BAD)
        return WA_EPROTO;
    d->p += nbytes;
    w = p + n;
    /* 3 digit bytes are copied: at least '@', a server byte and the NUL follow the digits */
    if (na) {
        *w++ = '.';
        memcpy(w, dec_u8[agent] + 1, 3);
        w += na;
    }
    if (nd) {
        *w++ = ':';
        memcpy(w, dec_u8[device] + 1, 3);
        w += nd;
    }
    *w++ = '@';
    memcpy(w, server, server_len);
    w[server_len] = '\0';
    out->p = p;
    out->own = p;
    out->len = total;
    out->where = STR_ARENA;
    out->nul = flags != 0;
    return 0;
}

/* 1 if a nibble-packed string with at least one byte, all present, starts at d->p. */
static inline int nibbles_next(const dec *d)
{
    return left(d) >= 2 && d->p[0] == WA_BNODE_NIBBLE_8 && (d->p[1] & 0x7F) != 0 &&
           (size_t)(d->p[1] & 0x7F) <= left(d) - 2;
}

static NOINLINE int rd_jid_pair(dec *d, str *out)
{
    str user, server;
    int rc;

    /* fast paths: empty user ("@s.whatsapp.net", servers' own address) or nibble-packed user,
     * with a single-byte token server */
    if (left(d) >= 2 && d->p[0] == WA_BNODE_LIST_EMPTY) {
        unsigned stag = d->p[1];
        if (stag - 1u < d->single_count - 1u && d->single_len[stag]) {
            size_t n = d->single_len[stag];
            char *p;
            if (!(p = dalloc(d, n + 2, 1, &rc)))
                return rc;
            p[0] = '@';
            memcpy(p + 1, d->single[stag], n + 1);
            d->p += 2;
            out->p = p;
            out->own = p;
            out->len = n + 1;
            out->where = STR_ARENA;
            out->nul = 0;
            return 0;
        }
    }
    if (nibbles_next(d)) {
        size_t nbytes = d->p[1] & 0x7F;
        unsigned stag = nbytes + 2 < left(d) ? d->p[nbytes + 2] : 0;
        if (stag - 1u < d->single_count - 1u && d->single_len[stag]) {
            uint8_t start = d->p[1];
            d->p += 2;
            if ((rc = jid_from_nibbles(d, start, -1, -1, d->single[stag], d->single_len[stag],
                                       out)) != 0)
                return rc;
            d->p++; /* the server token */
            return 0;
        }
    }
    if ((rc = rd_part(d, &user)) != 0 || (rc = rd_part(d, &server)) != 0)
        return rc;
    if (server.len == 0)
        return WA_EPROTO;
    return make_jid(d, -1, &user, -1, -1, server.p, server.len, server.nul, out);
}

#define LIT(s) s, sizeof s - 1

static NOINLINE int rd_ad_jid(dec *d, str *out)
{
    uint8_t domain, device;
    const char *server = WA_JID_SERVER_USER;
    size_t server_len = sizeof WA_JID_SERVER_USER - 1;
    int agent = -1, dev;
    str user;
    int rc;

    if ((rc = rd_byte(d, &domain)) != 0 || (rc = rd_byte(d, &device)) != 0)
        return rc;
    switch (domain) {
    case WA_JID_DOMAIN_WHATSAPP:
        break;
    case WA_JID_DOMAIN_LID:
        server = WA_JID_SERVER_LID;
        server_len = sizeof WA_JID_SERVER_LID - 1;
        break;
    case WA_JID_DOMAIN_HOSTED:
        server = WA_JID_SERVER_HOSTED;
        server_len = sizeof WA_JID_SERVER_HOSTED - 1;
        break;
    case WA_JID_DOMAIN_HOSTED_LID:
        server = WA_JID_SERVER_HOSTED_LID;
        server_len = sizeof WA_JID_SERVER_HOSTED_LID - 1;
        break;
    default: /* an agent on s.whatsapp.net, always with the device */
        agent = domain;
        break;
    }
    dev = (device || agent >= 0) ? device : -1;
    if (nibbles_next(d)) {
        uint8_t start = d->p[1];
        d->p += 2;
        return jid_from_nibbles(d, start, agent, dev, server, server_len, out);
    }
    if ((rc = rd_part(d, &user)) != 0)
        return rc;
    return make_jid(d, -1, &user, agent, dev, server, server_len, 0, out);
}

static NOINLINE int rd_fb_jid(dec *d, str *out)
{
    str user, server;
    uint32_t device;
    int rc;

    if ((rc = rd_part(d, &user)) != 0 || (rc = rd_be(d, 2, &device)) != 0 ||
        (rc = rd_part(d, &server)) != 0)
        return rc;
    if (!str_is(&server, LIT(WA_JID_SERVER_MSGR)))
        return WA_EPROTO;
    return make_jid(d, -1, &user, -1, (int)device, LIT(WA_JID_SERVER_MSGR), 0, out);
}

static NOINLINE int rd_interop_jid(dec *d, str *out)
{
    str user, server;
    uint32_t device, integrator;
    int rc;

    if ((rc = rd_part(d, &user)) != 0 || (rc = rd_be(d, 2, &device)) != 0 ||
        (rc = rd_be(d, 2, &integrator)) != 0 || (rc = rd_part(d, &server)) != 0)
        return rc;
    if (!str_is(&server, LIT(WA_JID_SERVER_INTEROP)))
        return WA_EPROTO;
    return make_jid(d, (int)integrator, &user, -1, (int)device, LIT(WA_JID_SERVER_INTEROP), 0, out);
}

/* Double-byte token (tag DICTIONARY_0..3). */
static inline int rd_dbl_token(dec *d, uint8_t tag, str *out)
{
    const wa_bnode_dict *t = d->dict;
    unsigned di = tag - WA_BNODE_DICTIONARY_0;
    uint8_t idx;
    int rc;

    if ((rc = rd_byte(d, &idx)) != 0)
        return rc;
    if (idx >= t->dbl_count[di])
        return WA_ETOKEN;
    set_static(out, t->dbl[di][idx], t->dbl_len[di][idx]);
    return 0;
}

/* Any string form. Tokens are not copied: they point into the static dictionary. */
static int rd_string(dec *d, uint8_t tag, int allow_jid, str *out)
{
    const wa_bnode_dict *t = d->dict;
    size_t n;
    int rc;

    if (tag >= 1 && tag < d->single_count) {
        set_static(out, d->single[tag], d->single_len[tag]);
        return 0;
    }
    switch (tag) {
    case WA_BNODE_LIST_EMPTY:
        set_static(out, "", 0);
        return 0;
    case WA_BNODE_DICTIONARY_0:
    case WA_BNODE_DICTIONARY_0 + 1:
    case WA_BNODE_DICTIONARY_0 + 2:
    case WA_BNODE_DICTIONARY_3:
        return rd_dbl_token(d, tag, out);
    case WA_BNODE_BINARY_8:
    case WA_BNODE_BINARY_20:
    case WA_BNODE_BINARY_32:
        if ((rc = rd_binary_len(d, tag, &n)) != 0)
            return rc;
        out->p = (const char *)d->p;
        out->len = n;
        out->where = STR_INPUT;
        d->p += n;
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

/* Copy an STR_INPUT string into the arena, NUL-terminated; other strings stay as they are. */
static int materialize(dec *d, str *s)
{
    char *p;
    int rc;

    if (s->where != STR_INPUT)
        return 0;
    if (!(p = copy_input(d, (const uint8_t *)s->p, s->len, &rc)))
        return rc;
    s->p = p;
    s->own = p;
    s->where = STR_ARENA;
    s->nul = 0; /* not tracked: STRING content may hold NULs */
    return 0;
}

/* rd_cstring past a single-byte token: the frequent forms first, then rd_string. */
static int rd_cstring_slow(dec *d, uint8_t tag, str *s)
{
    size_t n;
    char *p;
    int rc;

    switch (tag) {
    case WA_BNODE_DICTIONARY_0:
    case WA_BNODE_DICTIONARY_0 + 1:
    case WA_BNODE_DICTIONARY_0 + 2:
    case WA_BNODE_DICTIONARY_3:
        return rd_dbl_token(d, tag, s);
    case WA_BNODE_NIBBLE_8:
    case WA_BNODE_HEX_8:
        if ((rc = rd_packed(d, tag, s)) != 0)
            return rc;
        return s->nul ? WA_EPROTO : 0;
    case WA_BNODE_BINARY_8:
    case WA_BNODE_BINARY_20:
    case WA_BNODE_BINARY_32:
        if ((rc = rd_binary_len(d, tag, &n)) != 0)
            return rc;
        if (n && memchr(d->p, 0, n))
            return WA_EPROTO;
        if (!(p = copy_input(d, d->p, n, &rc)))
            return rc;
        d->p += n;
        s->p = p;
        s->len = n;
        return 0;
    case WA_BNODE_AD_JID:
        rc = rd_ad_jid(d, s);
        break;
    case WA_BNODE_JID_PAIR:
        rc = rd_jid_pair(d, s);
        break;
    default:
        rc = rd_string(d, tag, 1, s);
        break;
    }
    if (rc)
        return rc;
    /* STR_STATIC or STR_ARENA here: the binary forms were handled above */
    return s->nul ? WA_EPROTO : 0;
}

/* Read a string that becomes a C string (tag, attribute key or value) into *p, *len;
 * single-byte tokens, the usual case, inline. */
static inline int rd_cstring(dec *d, const char **p, size_t *len)
{
    unsigned tag;
    str s;
    int rc;

    if (d->p == d->end)
        return WA_ETRUNC;
    tag = *d->p++;
    if (tag - 1u < d->single_count - 1u) {
        *p = d->single[tag];
        *len = d->single_len[tag];
        return 0;
    }
    if ((rc = rd_cstring_slow(d, (uint8_t)tag, &s)) != 0)
        return rc;
    *p = s.p;
    *len = s.len;
    return 0;
}

static inline int rd_list_size(dec *d, uint8_t tag, size_t *n)
{
    switch (tag) {
    case WA_BNODE_LIST_EMPTY:
        *n = 0;
        return 0;
    case WA_BNODE_LIST_8:
        if (d->p == d->end)
            return WA_ETRUNC;
        *n = *d->p++;
        return 0;
    case WA_BNODE_LIST_16:
        if (left(d) < 2)
            return WA_ETRUNC;
        *n = (size_t)d->p[0] << 8 | d->p[1];
        d->p += 2;
        return 0;
    default:
        return WA_EPROTO;
    }
}

static int rd_node(dec *d, int depth, wa_node *n);

/* Content: sets content, bytes, len, first and last. */
static int rd_children(dec *d, int depth, uint8_t tag, wa_node *n)
{
    wa_node *kids;
    size_t count, i;
    int rc;

    if ((rc = rd_list_size(d, tag, &count)) != 0)
        return rc;
    n->content = WA_NODE_LIST;
    n->bytes = NULL;
    n->len = 0;
    n->first = n->last = NULL;
    if (count == 0)
        return 0;
    if (count > WA_BNODE_MAX_LIST)
        return WA_ELIMIT;
    if (count > left(d) / MIN_NODE_BYTES)
        return WA_ETRUNC;
    if (depth + 1 > WA_BNODE_MAX_DEPTH)
        return WA_EDEPTH;
    if (!(kids = dalloc(d, count * sizeof *kids, NODE_ALIGN, &rc)))
        return rc;
    for (i = 0; i < count; i++) {
        kids[i].next = i + 1 < count ? &kids[i + 1] : NULL;
        if ((rc = rd_node(d, depth + 1, &kids[i])) != 0)
            return rc;
    }
    n->first = kids;
    n->last = &kids[count - 1];
    n->len = count;
    return 0;
}

static int rd_content(dec *d, int depth, wa_node *n)
{
    uint8_t tag;
    size_t count;
    str s;
    int rc;

    if ((rc = rd_byte(d, &tag)) != 0)
        return rc;
    switch (tag) {
    case WA_BNODE_LIST_EMPTY:
    case WA_BNODE_LIST_8:
    case WA_BNODE_LIST_16:
        return rd_children(d, depth, tag, n);
    case WA_BNODE_BINARY_8:
    case WA_BNODE_BINARY_20:
    case WA_BNODE_BINARY_32: {
        char *p;
        if ((rc = rd_binary_len(d, tag, &count)) != 0)
            return rc;
        if (!(p = copy_input(d, d->p, count, &rc)))
            return rc;
        d->p += count;
        n->content = WA_NODE_BYTES;
        n->bytes = (const uint8_t *)p;
        n->len = count;
        n->first = n->last = NULL;
        return 0;
    }
    default:
        if ((rc = rd_string(d, tag, 1, &s)) != 0 || (rc = materialize(d, &s)) != 0)
            return rc;
        n->content = WA_NODE_STRING;
        n->bytes = (const uint8_t *)s.p;
        n->len = s.len;
        n->first = n->last = NULL;
        return 0;
    }
}

/* Reads one node into *n (every field but n->next, which is the caller's). On failure *n is
 * left partly written (the tree is not returned). */
static int rd_node(dec *d, int depth, wa_node *n)
{
    uint8_t tag;
    size_t size, nattrs, i;
    wa_node_kv *kv;
    int rc;

    if ((rc = rd_byte(d, &tag)) != 0 || (rc = rd_list_size(d, tag, &size)) != 0)
        return rc;
    if (size == 0)
        return WA_EPROTO;
    if ((rc = rd_cstring(d, &n->tag, &n->tag_len)) != 0)
        return rc;
    if (n->tag_len == 0)
        return WA_EPROTO;

    nattrs = (size - 1) / 2;
    if (nattrs > WA_BNODE_MAX_ATTRS)
        return WA_ELIMIT;
    if (nattrs * MIN_ATTR_BYTES + (size % 2 == 0) > left(d))
        return WA_ETRUNC;
    n->attrs = NULL;
    n->nattrs = n->attrs_cap = nattrs;
    if (nattrs) {
        if (!(kv = dalloc(d, nattrs * sizeof *kv, NODE_ALIGN, &rc)))
            return rc;
        n->attrs = kv;
        for (i = 0; i < nattrs; i++) {
            if ((rc = rd_cstring(d, &kv[i].key, &kv[i].key_len)) != 0 ||
                (rc = rd_cstring(d, &kv[i].value, &kv[i].value_len)) != 0)
                return rc;
        }
    }
    if (size % 2 == 0)
        return rd_content(d, depth, n);
    n->content = WA_NODE_NONE;
    n->bytes = NULL;
    n->len = 0;
    n->first = n->last = NULL;
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
    if (len == 0)
        return WA_ETRUNC;
    d.single = d.dict->single;
    d.single_len = d.dict->single_len;
    d.single_count = d.dict->single_count;
    d.p = data;
    d.end = data + len;
    d.arena = arena;
    d.cur = d.lim = 0;
    d.block = len < (BLOCK_MAX - BLOCK_MIN) / BLOCK_PER_BYTE
                  ? (BLOCK_MIN + len * BLOCK_PER_BYTE + 15) & ~(size_t)15
                  : BLOCK_MAX;
    if (!(root = dalloc(&d, sizeof *root, NODE_ALIGN, &rc)))
        return rc;
    root->next = NULL;
    if ((rc = rd_node(&d, 1, root)) != 0)
        return rc;
    if (d.p != d.end)
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
