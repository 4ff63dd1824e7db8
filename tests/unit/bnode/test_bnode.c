/* test_bnode.c - binary node codec: known-answer vectors (PROTOCOL.md §7 and bytes produced by
 * Baileys 6.17.16 / 7.0.0-rc14), round trips, every-split-point truncation, packing and length
 * boundaries, limits, compressed frames, bad input, getters, builders and the XML printer.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "bnode/bnode.h"
#include "bnode/tokens.h"
#include "core/alloc.h"
#include "core/util.h"
#include "wa/error.h"

#define OUT_MAX (64u << 20)

/* ---- helpers ---------------------------------------------------------------------------- */

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;

    for (; *hex; hex++) {
        int v = 0;
        if (*hex == ' ')
            continue;
        if (*hex >= '0' && *hex <= '9')
            v = *hex - '0';
        else if (*hex >= 'a' && *hex <= 'f')
            v = *hex - 'a' + 10;
        else
            fail_msg("bad hex char %c", *hex);
        if (hi < 0) {
            hi = v;
        } else {
            assert_true(n < cap);
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    assert_int_equal(hi, -1);
    return n;
}

static int decode_hex(wa_arena *a, const char *hex, int v, int frame, wa_node **out)
{
    uint8_t buf[4096];
    size_t n = unhex(hex, buf, sizeof buf);
    return frame ? wa_bnode_decode_frame(buf, n, v, a, out) : wa_bnode_decode(buf, n, v, a, out);
}

static void assert_encodes(const wa_node *n, int v, const char *hex)
{
    uint8_t want[4096];
    size_t wn = unhex(hex, want, sizeof want);
    wa_buf b;

    wa_buf_init(&b, OUT_MAX);
    assert_int_equal(wa_bnode_encode_frame(n, v, &b), 0);
    if (b.len != wn || memcmp(b.data, want, wn) != 0) {
        char got[8192];
        wa_hex_encode(got, b.data, b.len < 4000 ? b.len : 4000);
        fail_msg("v%d encoding mismatch:\n got  %s\n want %s", v, got, hex);
    }
    wa_buf_cleanup(&b);
}

static void assert_xml(const wa_node *n, int flags, const char *want)
{
    wa_buf b;

    wa_buf_init(&b, 1 << 20);
    assert_int_equal(wa_node_to_xml(n, &b, flags), 0);
    assert_int_equal(wa_buf_append_byte(&b, 0), 0);
    assert_string_equal((const char *)b.data, want);
    wa_buf_cleanup(&b);
}

/* Every proper prefix of a valid encoding is WA_ETRUNC (stride > 1 samples long inputs). */
static void assert_prefixes_truncated(const uint8_t *p, size_t len, int v, size_t stride)
{
    size_t k;

    for (k = 0; k < len; k += (k < 512 || len - k < 512) ? 1 : stride) {
        wa_arena a;
        wa_node *n = NULL;
        wa_arena_init(&a, WA_BNODE_ARENA_MAX);
        int rc = wa_bnode_decode(p, k, v, &a, &n);
        if (rc != WA_ETRUNC)
            fail_msg("v%d prefix %zu/%zu: %s", v, k, len, wa_err_name(rc));
        assert_null(n);
        wa_arena_cleanup(&a);
    }
}

/* encode -> decode gives an equal tree; all prefixes truncated; re-encoding is identical. */
static void assert_roundtrip(const wa_node *n, int v)
{
    wa_buf b, b2;
    wa_arena a;
    wa_node *d = NULL;

    wa_buf_init(&b, OUT_MAX);
    wa_buf_init(&b2, OUT_MAX);
    wa_arena_init(&a, WA_BNODE_ARENA_MAX);
    assert_int_equal(wa_bnode_encode(n, v, &b), 0);
    assert_int_equal(wa_bnode_decode(b.data, b.len, v, &a, &d), 0);
    assert_true(wa_node_equal(n, d));
    assert_int_equal(wa_bnode_encode(d, v, &b2), 0);
    assert_int_equal(b.len, b2.len);
    assert_memory_equal(b.data, b2.data, b.len);
    assert_prefixes_truncated(b.data, b.len, v, b.len > 65536 ? 4099 : 1);
    wa_arena_cleanup(&a);
    wa_buf_cleanup(&b);
    wa_buf_cleanup(&b2);
}

static int decode_bytes(const uint8_t *p, size_t n, int v)
{
    wa_arena a;
    wa_node *out = NULL;
    int rc;

    wa_arena_init(&a, WA_BNODE_ARENA_MAX);
    rc = wa_bnode_decode(p, n, v, &a, &out);
    assert_true(rc == 0 ? out != NULL : out == NULL);
    wa_arena_cleanup(&a);
    return rc;
}

static int decode_err(const char *hex, int v)
{
    uint8_t buf[4096];
    size_t n = unhex(hex, buf, sizeof buf);
    return decode_bytes(buf, n, v);
}

/* ---- PROTOCOL.md §7 vectors (v2, flag byte first) --------------------------------------- */

static void test_protocol_vectors(void **state)
{
    wa_arena a;
    wa_node *n, *c;
    const wa_node *k;

    (void)state;
    wa_arena_init(&a, WA_BNODE_ARENA_MAX);

    /* <iq id='1.2-3' type='result' to='@s.whatsapp.net'/> */
    assert_int_equal(decode_hex(&a, "00 f8 07 1e 08 ff 83 1b 2a 3f 04 14 0e fa 00 03", 2, 1, &n),
                     0);
    assert_string_equal(n->tag, "iq");
    assert_int_equal(n->nattrs, 3);
    assert_string_equal(wa_node_attr(n, "id"), "1.2-3");
    assert_string_equal(wa_node_attr(n, "type"), "result");
    assert_string_equal(wa_node_attr(n, "to"), "@s.whatsapp.net");
    assert_int_equal(n->content, WA_NODE_NONE);
    assert_encodes(n, 2, "00 f8 07 1e 08 ff 83 1b 2a 3f 04 14 0e fa 00 03");
    n = wa_node_new(&a, "iq");
    assert_int_equal(wa_node_set_attr(&a, n, "id", "1.2-3"), 0);
    assert_int_equal(wa_node_set_attr(&a, n, "type", "result"), 0);
    assert_int_equal(wa_node_set_attr(&a, n, "to", "@s.whatsapp.net"), 0);
    assert_encodes(n, 2, "00 f8 07 1e 08 ff 83 1b 2a 3f 04 14 0e fa 00 03");
    assert_encodes(n, 3, "00f8071908ff831b2a3f041411fa0003"); /* Baileys 7 */

    /* <ib><offline count='0'/></ib> */
    assert_int_equal(decode_hex(&a, "00 f8 02 fc 02 69 62 f8 01 f8 03 12 39 4f", 2, 1, &n), 0);
    assert_string_equal(n->tag, "ib");
    assert_int_equal(n->content, WA_NODE_LIST);
    assert_int_equal(wa_node_child_count(n), 1);
    k = wa_node_child(n, "offline");
    assert_non_null(k);
    assert_string_equal(wa_node_attr(k, "count"), "0");
    assert_encodes(n, 2, "00 f8 02 fc 02 69 62 f8 01 f8 03 12 39 4f");
    n = wa_node_new(&a, "ib");
    c = wa_node_new_child(&a, n, "offline");
    assert_int_equal(wa_node_set_attr_u64(&a, c, "count", 0), 0);
    assert_encodes(n, 2, "00 f8 02 fc 02 69 62 f8 01 f8 03 12 39 4f");
    assert_encodes(n, 3, "00f802fc026962f801f80312412d");

    /* <success lid='123:1@lid'/> */
    assert_int_equal(decode_hex(&a, "00 f8 03 47 fc 03 6c 69 64 f7 01 01 ff 82 12 3f", 2, 1, &n),
                     0);
    assert_string_equal(n->tag, "success");
    assert_string_equal(wa_node_attr(n, "lid"), "123:1@lid");
    assert_encodes(n, 2, "00 f8 03 47 fc 03 6c 69 64 f7 01 01 ff 82 12 3f");
    assert_encodes(n, 3, "00f8034c76f70101ff82123f");
    wa_arena_cleanup(&a);
}

/* ---- more vectors produced by Baileys' encodeBinaryNode ---------------------------------- */

static wa_node *message_stanza(wa_arena *a)
{
    wa_node *n = wa_node_new(a, "message"), *enc;
    static const uint8_t body[] = {0x33, 1, 2};

    assert_int_equal(wa_node_set_attr(a, n, "id", "3EB0C431C26A1916E5A4"), 0);
    assert_int_equal(wa_node_set_attr(a, n, "type", "text"), 0);
    assert_int_equal(wa_node_set_attr(a, n, "to", "123456789@s.whatsapp.net"), 0);
    enc = wa_node_new_child(a, n, "enc");
    assert_int_equal(wa_node_set_attr(a, enc, "v", "2"), 0);
    assert_int_equal(wa_node_set_attr(a, enc, "type", "pkmsg"), 0);
    assert_int_equal(wa_node_set_bytes(a, enc, body, sizeof body), 0);
    return n;
}

static void test_baileys_vectors(void **state)
{
    wa_arena a;
    wa_node *n;

    (void)state;
    wa_arena_init(&a, WA_BNODE_ARENA_MAX);
    n = message_stanza(&a);
    assert_encodes(n, 2,
                   "00f8080b08fb0a3eb0c431c26a1916e5a404260efaff85123456789f03f801f8061636330460"
                   "fc03330102");
    assert_encodes(n, 3,
                   "00f8081308fb0a3eb0c431c26a1916e5a4043811faff85123456789f03f801f8061d51450453"
                   "fc03330102");
    assert_roundtrip(n, 2);
    assert_roundtrip(n, 3);

    /* hosted AD_JID (v3 domain 128); v2 Baileys would write a lossy AD_JID: libwa writes raw */
    n = wa_node_new(&a, "iq");
    assert_int_equal(wa_node_set_attr(&a, n, "to", "999:12@hosted"), 0);
    assert_int_equal(wa_node_set_attr(&a, n, "xmlns", "md"), 0);
    assert_int_equal(wa_node_set_attr(&a, n, "type", "get"), 0);
    assert_encodes(n, 3, "00f8071911f7800cff82999f16fc026d640429");
    assert_encodes(n, 2, "00f8071e0efc0d3939393a313240686f7374656419fc026d640431");
    assert_roundtrip(n, 2);
    assert_roundtrip(n, 3);

    /* double-byte token (v3), lid AD_JID, empty child list */
    n = wa_node_new(&a, "receipt");
    assert_int_equal(wa_node_set_attr(&a, n, "type", "read-self"), 0);
    assert_int_equal(wa_node_set_attr(&a, n, "participant", "5511:3@lid"), 0);
    assert_int_equal(wa_node_set_attr(&a, n, "t", "1700000000"), 0);
    wa_node_set_list(n);
    assert_encodes(n, 2, "00f8080704fc09726561642d73656c6605f70103ff0255111dff05170000000000");
    assert_encodes(n, 3, "00f8080704ec0005f70103ff0255111aff05170000000000");
    assert_roundtrip(n, 2);
    assert_roundtrip(n, 3);

    /* status@broadcast JID, raw key, token value, raw bytes content */
    n = wa_node_new(&a, "call");
    assert_int_equal(wa_node_set_attr(&a, n, "from", "status@broadcast"), 0);
    assert_int_equal(wa_node_set_attr(&a, n, "x-y", "g.us"), 0);
    assert_int_equal(wa_node_set_bytes(&a, n, "abcdef", 6), 0);
    assert_encodes(n, 2, "00f8066406fa0a09fc03782d7913fc06616263646566");
    assert_encodes(n, 3, "00f8066406fa0b0dfc03782d791cfc06616263646566");

    /* hex-packed, JID with raw parts, string content (nibble) */
    n = wa_node_new(&a, "n");
    assert_int_equal(wa_node_set_attr(&a, n, "a", "0123456789ABCDEF"), 0);
    assert_int_equal(wa_node_set_attr(&a, n, "b", "abc@def"), 0);
    assert_int_equal(wa_node_set_attr(&a, n, "c", "u@s.whatsapp.net"), 0);
    assert_int_equal(wa_node_set_string(&a, n, "1.2"), 0);
    assert_encodes(n, 2,
                   "00f808fc016eef18fb080123456789abcdefef70fafc03616263fc03646566ee43fafc017503"
                   "ff821b2f");
    assert_encodes(n, 3,
                   "00f808fc016efc0161fb080123456789abcdeffc0162fafc03616263fc03646566ee25fafc0175"
                   "03ff821b2f");
    assert_roundtrip(n, 2);
    assert_roundtrip(n, 3);
    wa_arena_cleanup(&a);
}

/* ---- encoder string choices -------------------------------------------------------------- */

/* Expected bytes below were produced by Baileys' encodeBinaryNode, except where a comment says
 * libwa differs on purpose. Encode <x to=VALUE/> with v and compare the value's bytes (after "f8 03
 * <x> <a>"). */
static void assert_value_encoding(int v, const char *value, const char *hex_value)
{
    wa_arena a;
    wa_node *n;
    char want[8192];

    wa_arena_init(&a, 1 << 20);
    n = wa_node_new(&a, "x");
    assert_int_equal(wa_node_set_attr(&a, n, "to", value), 0);
    /* "x" is raw (fc 01 78); "to" is token 0x0e (v2) / 0x11 (v3) */
    snprintf(want, sizeof want, "00 f8 03 fc 01 78 %s %s", v == 2 ? "0e" : "11", hex_value);
    assert_encodes(n, v, want);
    assert_roundtrip(n, v);
    wa_arena_cleanup(&a);
}

static void test_string_forms(void **state)
{
    (void)state;
    /* empty string: v2 token 0 (LIST_EMPTY), v3 BINARY_8 0 */
    assert_value_encoding(2, "", "00");
    assert_value_encoding(3, "", "fc 00");
    /* nibble: even, odd, all symbols */
    assert_value_encoding(3, "98", "ff 01 98");
    assert_value_encoding(3, "123", "ff 82 12 3f");
    assert_value_encoding(3, "-.09", "ff 02 ab 09");
    /* hex: upper-case only; lower-case is raw */
    assert_value_encoding(3, "ABC", "fb 82 ab cf");
    assert_value_encoding(3, "abc", "fc 03 61 62 63");
    /* mixed nibble+hex alphabet -> hex; '.' with A-F -> raw */
    assert_value_encoding(3, "1A", "fb 01 1a");
    assert_value_encoding(3, "1.A", "fc 03 31 2e 41");
    /* JIDs */
    assert_value_encoding(3, "@s.whatsapp.net", "fa 00 03");
    assert_value_encoding(2, "98@g.us", "fa ff 01 98 13");
    assert_value_encoding(3, "98@g.us", "fa ff 01 98 1c");
    assert_value_encoding(3, "98:2@s.whatsapp.net", "f7 00 02 ff 01 98");
    assert_value_encoding(3, "98:255@lid", "f7 01 ff ff 01 98");
    assert_value_encoding(2, ":5@lid", "f7 01 05 00");
    assert_value_encoding(3, ":5@lid", "f7 01 05 fc 00");
    assert_value_encoding(3, "9:1@hosted.lid", "f7 81 01 ed 05");
    /* v2 (Baileys 6) has no hosted domain: Baileys writes domain 0, which decodes as
     * s.whatsapp.net; libwa writes it raw */
    assert_value_encoding(2, "9:1@hosted.lid", "fc 0e 393a3140686f737465642e6c6964");
    /* strings Baileys would JID-encode lossily: raw here */
    assert_value_encoding(3, "1:0@s.whatsapp.net", "fc 12 313a3040732e77686174736170702e6e6574");
    assert_value_encoding(3, "1:256@lid", "fc 09 313a323536406c6964");
    assert_value_encoding(3, "1:01@lid", "fc 08 313a3031406c6964");
    assert_value_encoding(3, "1:2@g.us", "fc 08 313a324067 2e7573");
    assert_value_encoding(3, "1_2@lid", "fc 07 315f32406c6964");
    assert_value_encoding(3, "1:@lid", "fc 06 313a406c6964");
    assert_value_encoding(3, "1:2:3@lid", "fc 09 313a323a33406c6964");
    assert_value_encoding(3, "a@", "fc 02 6140");
    assert_value_encoding(3, "a@b@c", "fc 05 6140624063");
    /* Object.prototype names are plain strings here (Baileys would write byte 0) */
    assert_value_encoding(3, "constructor", "fc 0b 636f6e7374727563746f72");
}

static void test_nibble_hex_limits(void **state)
{
    wa_arena a;
    wa_node *n;
    wa_buf b;
    char s[200];

    (void)state;
    wa_arena_init(&a, 1 << 20);
    wa_buf_init(&b, 1 << 20);
    for (size_t len = 1; len <= 130; len++) {
        for (int kind = 0; kind < 2; kind++) {
            for (size_t i = 0; i < len; i++)
                s[i] = kind ? "0123456789ABCDEF"[(i * 7 + 3) % 16] : "0123456789.-"[(i * 5) % 12];
            s[len] = '\0';
            n = wa_node_new(&a, "x");
            assert_int_equal(wa_node_set_attr(&a, n, "to", s), 0);
            wa_buf_reset(&b);
            assert_int_equal(wa_bnode_encode(n, 2, &b), 0);
            /* f8 03 fc 01 78 <to> then the value */
            {
                const uint8_t *p = b.data + 6;
                int dict;
                uint8_t idx;
                if (wa_bnode_token_find(&wa_bnode_dict_v2, s, len, &dict, &idx))
                    continue;
                if (len <= 127) {
                    int is_nibble = kind == 0 || strspn(s, "0123456789") == len;
                    assert_int_equal(p[0], is_nibble ? WA_BNODE_NIBBLE_8 : WA_BNODE_HEX_8);
                    assert_int_equal(p[1], ((len + 1) / 2) | (len & 1 ? 0x80 : 0));
                    assert_int_equal(b.len, 8 + (len + 1) / 2);
                    if (len & 1)
                        assert_int_equal(p[2 + len / 2] & 0x0F, 0x0F);
                } else {
                    assert_int_equal(p[0], WA_BNODE_BINARY_8);
                    assert_int_equal(p[1], len);
                }
            }
            assert_roundtrip(n, 2);
            assert_roundtrip(n, 3);
        }
    }
    wa_buf_cleanup(&b);
    wa_arena_cleanup(&a);
}

static void test_packed_decoding(void **state)
{
    wa_arena a;
    wa_node *n;

    (void)state;
    wa_arena_init(&a, 1 << 20);
    /* <x>"" as NIBBLE_8 0 and with the odd flag set on zero bytes</x> */
    assert_int_equal(decode_hex(&a, "f8 02 fc 01 78 ff 00", 3, 0, &n), 0);
    assert_int_equal(n->content, WA_NODE_STRING);
    assert_int_equal(n->len, 0);
    assert_int_equal(decode_hex(&a, "f8 02 fc 01 78 ff 80", 3, 0, &n), 0);
    assert_int_equal(n->len, 0);
    /* odd flag drops the pad nibble whatever it is */
    assert_int_equal(decode_hex(&a, "f8 02 fc 01 78 ff 81 12", 3, 0, &n), 0);
    assert_int_equal(n->len, 1);
    assert_memory_equal(n->bytes, "1", 1);
    /* hex decodes A-F upper-case; the pad nibble F is dropped */
    assert_int_equal(decode_hex(&a, "f8 02 fc 01 78 fb 82 ab cf", 3, 0, &n), 0);
    assert_int_equal(n->len, 3);
    assert_memory_equal(n->bytes, "ABC", 3);
    /* nibble 15 in the middle is NUL: kept in content (and re-encoded raw as bytes) */
    assert_int_equal(decode_hex(&a, "f8 02 fc 01 78 ff 02 1f 23", 3, 0, &n), 0);
    assert_int_equal(n->content, WA_NODE_STRING);
    assert_int_equal(n->len, 4);
    assert_memory_equal(n->bytes,
                        "1\0"
                        "23",
                        4);
    /* ... but refused in an attribute value, key or tag */
    assert_int_equal(decode_err("f8 03 fc 01 78 11 ff 02 1f 23", 3), WA_EPROTO);
    assert_int_equal(decode_err("f8 03 fc 01 78 ff 01 1f 11", 3), WA_EPROTO);
    assert_int_equal(decode_err("f8 01 ff 01 1f", 3), WA_EPROTO);
    assert_int_equal(decode_err("f8 03 fc 01 78 11 fc 02 61 00", 3), WA_EPROTO);
    /* nibbles 12..14 are invalid */
    assert_int_equal(decode_err("f8 03 fc 01 78 11 ff 01 1c", 3), WA_EPROTO);
    assert_int_equal(decode_err("f8 03 fc 01 78 11 ff 01 d1", 3), WA_EPROTO);
    assert_int_equal(decode_err("f8 03 fc 01 78 11 ff 01 1e", 3), WA_EPROTO);
    /* 127 bytes of packed data (254 chars) decode although the encoder packs at most 127 */
    {
        uint8_t buf[200];
        size_t k = 0;
        buf[k++] = 0xf8, buf[k++] = 0x02, buf[k++] = 0xfc, buf[k++] = 1, buf[k++] = 'x';
        buf[k++] = 0xff, buf[k++] = 0x7f;
        for (int i = 0; i < 127; i++)
            buf[k++] = 0x12;
        assert_int_equal(wa_bnode_decode(buf, k, 3, &a, &n), 0);
        assert_int_equal(n->len, 254);
        /* 254 chars cannot be packed: re-encoded raw, so they come back as BYTES */
        wa_buf b;
        wa_node *m;
        wa_buf_init(&b, 1 << 20);
        assert_int_equal(wa_bnode_encode(n, 3, &b), 0);
        assert_int_equal(b.data[5], WA_BNODE_BINARY_8);
        assert_int_equal(wa_bnode_decode(b.data, b.len, 3, &a, &m), 0);
        assert_int_equal(m->content, WA_NODE_BYTES);
        assert_int_equal(m->len, 254);
        assert_memory_equal(m->bytes, n->bytes, 254);
        wa_buf_cleanup(&b);
    }
    wa_arena_cleanup(&a);
}

/* ---- lists and lengths ------------------------------------------------------------------- */

static void test_list_sizes(void **state)
{
    wa_arena a;
    wa_buf b;
    size_t counts[] = {0, 1, 254, 255, 256, 257, 1000, 65535};

    (void)state;
    wa_buf_init(&b, OUT_MAX);
    for (size_t t = 0; t < WA_ARRAY_SIZE(counts); t++) {
        wa_arena_init(&a, WA_BNODE_ARENA_MAX);
        wa_node *n = wa_node_new(&a, "zzzz");
        wa_node_set_list(n);
        for (size_t i = 0; i < counts[t]; i++)
            assert_non_null(wa_node_new_child(&a, n, "item"));
        wa_buf_reset(&b);
        assert_int_equal(wa_bnode_encode(n, 3, &b), 0);
        /* f8 02 <zzzz raw: fc 04 7a7a7a7a> <list start> */
        const uint8_t *p = b.data + 8;
        if (counts[t] == 0) {
            assert_int_equal(p[0], WA_BNODE_LIST_EMPTY);
        } else if (counts[t] < 256) {
            assert_int_equal(p[0], WA_BNODE_LIST_8);
            assert_int_equal(p[1], counts[t]);
        } else {
            assert_int_equal(p[0], WA_BNODE_LIST_16);
            assert_int_equal(wa_load_be16(p + 1), counts[t]);
        }
        assert_roundtrip(n, 3);
        wa_arena_cleanup(&a);
    }
    /* 65536 children cannot be encoded */
    wa_arena_init(&a, WA_BNODE_ARENA_MAX);
    {
        wa_node *n = wa_node_new(&a, "list"), *kids;
        wa_node_set_list(n);
        kids = wa_arena_zalloc(&a, 65536 * sizeof *kids);
        assert_non_null(kids);
        for (size_t i = 0; i < 65536; i++) {
            kids[i].tag = "i";
            kids[i].tag_len = 1;
            kids[i].next = i + 1 < 65536 ? &kids[i + 1] : NULL;
        }
        n->first = kids;
        n->last = &kids[65535];
        n->len = 65536;
        wa_buf_reset(&b);
        assert_int_equal(wa_bnode_encode(n, 3, &b), WA_ELIMIT);
        assert_int_equal(b.len, 0);
    }
    /* many attributes: the node's own list size goes LIST_16 */
    {
        wa_node *n = wa_node_new(&a, "x");
        char key[16];
        for (int i = 0; i < 200; i++) {
            snprintf(key, sizeof key, "k%d", i);
            assert_int_equal(wa_node_set_attr(&a, n, key, "v"), 0);
        }
        wa_buf_reset(&b);
        assert_int_equal(wa_bnode_encode(n, 2, &b), 0);
        assert_int_equal(b.data[0], WA_BNODE_LIST_16);
        assert_int_equal(wa_load_be16(b.data + 1), 401);
        assert_roundtrip(n, 2);
    }
    wa_arena_cleanup(&a);
    wa_buf_cleanup(&b);
}

static void test_binary_lengths(void **state)
{
    wa_arena a;
    wa_buf b;
    size_t lens[] = {0, 1, 255, 256, 257, (1u << 20) - 1, 1u << 20, (1u << 20) + 1};
    uint8_t *blob = malloc((1u << 20) + 1);

    (void)state;
    assert_non_null(blob);
    for (size_t i = 0; i < (1u << 20) + 1; i++)
        blob[i] = (uint8_t)(i * 31 + 7);
    wa_buf_init(&b, OUT_MAX);
    for (size_t t = 0; t < WA_ARRAY_SIZE(lens); t++) {
        for (int as_string = 0; as_string < 2; as_string++) {
            size_t len = lens[t];
            if (as_string && len == 0)
                continue;
            wa_arena_init(&a, WA_BNODE_ARENA_MAX);
            wa_node *n = wa_node_new(&a, "x");
            assert_int_equal(wa_node_set_bytes(&a, n, blob, len), 0);
            if (as_string) {
                /* a raw string attribute of the same length (letters only: no JID/packing) */
                char *s = wa_arena_alloc(&a, len + 1);
                for (size_t i = 0; i < len; i++)
                    s[i] = (char)('a' + i % 26);
                s[len] = '\0';
                assert_int_equal(wa_node_set_attr(&a, n, "zz", s), 0);
            }
            wa_buf_reset(&b);
            assert_int_equal(wa_bnode_encode(n, 3, &b), 0);
            /* content header is at the end minus len */
            const uint8_t *h = b.data + b.len - len;
            if (len < 256) {
                assert_int_equal(h[-2], WA_BNODE_BINARY_8);
                assert_int_equal(h[-1], len);
            } else if (len < (1u << 20)) {
                assert_int_equal(h[-4], WA_BNODE_BINARY_20);
                assert_int_equal(wa_load_be24(h - 3), len);
            } else {
                assert_int_equal(h[-5], WA_BNODE_BINARY_32);
                assert_int_equal(wa_load_be32(h - 4), len);
            }
            assert_roundtrip(n, 3);
            wa_arena_cleanup(&a);
        }
    }
    /* BINARY_20 ignores the top nibble of its first length byte */
    wa_arena_init(&a, WA_BNODE_ARENA_MAX);
    {
        uint8_t buf[300] = {0xf8, 0x02, 0xfc, 0x01, 'x', 0xfd, 0xf0, 0x01, 0x00};
        wa_node *n;
        assert_int_equal(wa_bnode_decode(buf, 9 + 256, 3, &a, &n), 0);
        assert_int_equal(n->len, 256);
    }
    /* lengths over WA_BNODE_MAX_BYTES are refused before anything else */
    assert_int_equal(decode_err("f8 02 fc 01 78 fe 01 00 00 01", 3), WA_ELIMIT);
    assert_int_equal(decode_err("f8 02 fc 01 78 fe 01 00 00 00", 3), WA_ETRUNC);
    assert_int_equal(decode_err("f8 02 fc 01 78 fe ff ff ff ff", 3), WA_ELIMIT);
    wa_arena_cleanup(&a);
    wa_buf_cleanup(&b);
    free(blob);
}

/* ---- JIDs in the decoder ----------------------------------------------------------------- */

static void assert_attr_decodes(int v, const char *value_hex, const char *want)
{
    wa_arena a;
    wa_node *n;
    char hex[512];

    wa_arena_init(&a, 1 << 20);
    snprintf(hex, sizeof hex, "f8 03 fc 01 78 fc 01 6a %s", value_hex);
    assert_int_equal(decode_hex(&a, hex, v, 0, &n), 0);
    assert_string_equal(wa_node_attr(n, "j"), want);
    /* re-encoding and decoding gives the same string back */
    assert_roundtrip(n, v);
    wa_arena_cleanup(&a);
}

static void test_jid_decoding(void **state)
{
    (void)state;
    assert_attr_decodes(3, "fa 00 03", "@s.whatsapp.net");
    assert_attr_decodes(3, "fa fc 00 03", "@s.whatsapp.net");
    assert_attr_decodes(3, "fa ff 81 1f 1c", "1@g.us");
    assert_attr_decodes(2, "f7 00 00 ff 81 1f", "1@s.whatsapp.net");
    assert_attr_decodes(2, "f7 00 07 ff 81 1f", "1:7@s.whatsapp.net");
    assert_attr_decodes(2, "f7 01 00 ff 81 1f", "1@lid");
    assert_attr_decodes(3, "f7 01 63 ff 81 1f", "1:99@lid");
    assert_attr_decodes(3, "f7 80 02 ff 81 1f", "1:2@hosted");
    assert_attr_decodes(3, "f7 81 00 ff 81 1f", "1@hosted.lid");
    assert_attr_decodes(2, "f7 00 01 00", ":1@s.whatsapp.net");
    /* other domain types: whatsmeow's agent form */
    assert_attr_decodes(3, "f7 05 00 ff 81 1f", "1.5:0@s.whatsapp.net");
    assert_attr_decodes(2, "f7 ff 09 fc 01 61", "a.255:9@s.whatsapp.net");
    /* FB_JID / INTEROP_JID (v3) */
    assert_attr_decodes(3, "f6 ff 81 1f 01 02 fc 04 6d736772", "1:258@msgr");
    assert_attr_decodes(3, "f6 fc 01 61 00 00 fc 04 6d736772", "a:0@msgr");
    assert_attr_decodes(3, "f5 ff 81 1f 00 03 00 2a fc 07 696e7465726f70", "42-1:3@interop");
    assert_int_equal(decode_err("f8 03 fc 01 78 fc 01 6a f6 ff 81 1f 01 02 03", 3), WA_EPROTO);
    assert_int_equal(decode_err("f8 03 fc 01 78 fc 01 6a f5 ff 81 1f 00 03 00 2a 03", 3),
                     WA_EPROTO);
    assert_int_equal(decode_err("f8 03 fc 01 78 fc 01 6a f6 ff 81 1f 01 02 fc 04 6d736772", 2),
                     WA_ETOKEN);
    assert_int_equal(decode_err("f8 03 fc 01 78 fc 01 6a f5 ff 81 1f 00 03 00 2a 03", 2),
                     WA_ETOKEN);
    /* empty server, nested JIDs, list in a JID */
    assert_int_equal(decode_err("f8 03 fc 01 78 fc 01 6a fa 00 00", 3), WA_EPROTO);
    assert_int_equal(decode_err("f8 03 fc 01 78 fc 01 6a fa 00 fc 00", 3), WA_EPROTO);
    assert_int_equal(decode_err("f8 03 fc 01 78 fc 01 6a fa fa 00 03 03", 3), WA_EPROTO);
    assert_int_equal(decode_err("f8 03 fc 01 78 fc 01 6a fa 00 fa 00 03", 3), WA_EPROTO);
    assert_int_equal(decode_err("f8 03 fc 01 78 fc 01 6a f7 00 01 fa 00 03", 3), WA_EPROTO);
    assert_int_equal(decode_err("f8 03 fc 01 78 fc 01 6a fa f8 01 03", 3), WA_EPROTO);
}

/* ---- limits and bad input ---------------------------------------------------------------- */

static void test_depth_limit(void **state)
{
    wa_arena a;
    wa_node *root, *n;
    wa_buf b;
    uint8_t buf[1024];
    size_t k = 0;

    (void)state;
    wa_arena_init(&a, 1 << 20);
    wa_buf_init(&b, 1 << 20);
    root = n = wa_node_new(&a, "d");
    for (int i = 1; i < WA_BNODE_MAX_DEPTH; i++)
        n = wa_node_new_child(&a, n, "d");
    assert_int_equal(wa_bnode_encode(root, 3, &b), 0);
    assert_roundtrip(root, 3);
    n = wa_node_new_child(&a, n, "d"); /* depth MAX + 1 */
    wa_buf_reset(&b);
    assert_int_equal(wa_bnode_encode(root, 3, &b), WA_EDEPTH);
    assert_int_equal(b.len, 0);
    /* decoder: MAX levels fine, MAX + 1 refused */
    for (int depth = WA_BNODE_MAX_DEPTH; depth <= WA_BNODE_MAX_DEPTH + 1; depth++) {
        k = 0;
        for (int i = 0; i < depth - 1; i++) {
            buf[k++] = 0xf8, buf[k++] = 0x02, buf[k++] = 0x13; /* <message> */
            buf[k++] = 0xf8, buf[k++] = 0x01;                  /* one child */
        }
        buf[k++] = 0xf8, buf[k++] = 0x01, buf[k++] = 0x13;
        assert_int_equal(decode_bytes(buf, k, 3), depth > WA_BNODE_MAX_DEPTH ? WA_EDEPTH : 0);
    }
    wa_buf_cleanup(&b);
    wa_arena_cleanup(&a);
}

static void test_bad_input(void **state)
{
    wa_arena a;
    wa_node *n = NULL;
    uint8_t one = 0xf8;

    (void)state;
    /* unknown tags where a string belongs */
    for (int t = 240; t <= 244; t++) {
        char hex[64];
        snprintf(hex, sizeof hex, "f8 01 %02x", t);
        assert_int_equal(decode_err(hex, 2), WA_ETOKEN);
        assert_int_equal(decode_err(hex, 3), WA_ETOKEN);
    }
    /* node header must be LIST_8/LIST_16 with size > 0 */
    assert_int_equal(decode_err("00", 3), WA_EPROTO);
    assert_int_equal(decode_err("f8 00", 3), WA_EPROTO);
    assert_int_equal(decode_err("f9 00 00", 3), WA_EPROTO);
    assert_int_equal(decode_err("13", 3), WA_EPROTO);
    assert_int_equal(decode_err("fc 01 78", 3), WA_EPROTO);
    /* empty tag */
    assert_int_equal(decode_err("f8 01 00", 3), WA_EPROTO);
    assert_int_equal(decode_err("f8 01 fc 00", 3), WA_EPROTO);
    /* list where a string belongs (tag, key, value) */
    assert_int_equal(decode_err("f8 01 f8 01 13", 3), WA_EPROTO);
    assert_int_equal(decode_err("f8 03 13 f8 01 13 13", 3), WA_EPROTO);
    /* trailing bytes */
    assert_int_equal(decode_err("f8 01 13 00", 3), WA_EPROTO);
    assert_int_equal(decode_err("f8 01 13", 3), 0);
    /* child list header wrong */
    assert_int_equal(decode_err("f8 02 13 f8 01 fc 01 78", 3), WA_EPROTO);
    /* huge counts with short input are truncation, not allocation */
    assert_int_equal(decode_err("f8 02 13 f9 ff ff f8 01 13", 3), WA_ETRUNC);
    assert_int_equal(decode_err("f9 ff ff 13 13 13", 3), WA_ELIMIT); /* > MAX_ATTRS */
    assert_int_equal(decode_err("f9 07 ff 13 13 13", 3), WA_ETRUNC);
    /* empty input, NULLs, bad version */
    assert_int_equal(decode_bytes(&one, 0, 3), WA_ETRUNC);
    wa_arena_init(&a, 1 << 20);
    assert_int_equal(wa_bnode_decode(&one, 1, 4, &a, &n), WA_EINVAL);
    assert_int_equal(wa_bnode_decode(&one, 1, 3, NULL, &n), WA_EINVAL);
    assert_int_equal(wa_bnode_decode(NULL, 1, 3, &a, &n), WA_EINVAL);
    assert_int_equal(wa_bnode_decode_frame(&one, 0, 3, &a, &n), WA_ETRUNC);
    assert_null(n);
    wa_arena_cleanup(&a);
    /* arena cap reached -> WA_ELIMIT */
    {
        uint8_t buf[600] = {0xf8, 0x02, 0x13, 0xfd, 0x00, 0x02, 0x00};
        wa_arena_init(&a, 300);
        assert_int_equal(wa_bnode_decode(buf, 7 + 512, 3, &a, &n), WA_ELIMIT);
        wa_arena_cleanup(&a);
    }
}

static void test_alloc_failure(void **state)
{
    wa_arena a;
    wa_node *n;
    uint8_t buf[256];
    size_t len;
    int ok = 0;

    (void)state;
    len = unhex("f8080b08fb0a3eb0c431c26a1916e5a404260efaff85123456789f03f801f8061636330460"
                "fc03330102",
                buf, sizeof buf);
    for (long k = 0; k < 50 && !ok; k++) {
        wa_arena_init(&a, 1 << 20);
        wa__alloc_fail_after(k);
        int rc = wa_bnode_decode(buf, len, 2, &a, &n);
        wa__alloc_fail_after(-1);
        assert_true(rc == 0 || rc == WA_ENOMEM);
        ok = rc == 0;
        wa_arena_cleanup(&a);
    }
    assert_true(ok);
}

/* ---- transport frames -------------------------------------------------------------------- */

static void test_compressed_frame(void **state)
{
    wa_arena a;
    wa_node *n, *m;
    wa_buf b;
    uint8_t z[4096];
    uLongf zlen = sizeof z - 1;

    (void)state;
    wa_arena_init(&a, WA_BNODE_ARENA_MAX);
    wa_buf_init(&b, 1 << 20);
    n = message_stanza(&a);
    assert_int_equal(wa_bnode_encode(n, 3, &b), 0);
    z[0] = WA_BNODE_FLAG_COMPRESSED;
    assert_int_equal(compress2(z + 1, &zlen, b.data, b.len, 9), Z_OK);
    assert_int_equal(wa_bnode_decode_frame(z, zlen + 1, 3, &a, &m), 0);
    assert_true(wa_node_equal(n, m));
    /* other flag bits are ignored */
    z[0] = 0x02 | 0x04;
    assert_int_equal(wa_bnode_decode_frame(z, zlen + 1, 3, &a, &m), 0);
    /* every truncation of the compressed stream fails cleanly */
    for (size_t k = 1; k < zlen + 1; k++) {
        int rc = wa_bnode_decode_frame(z, k, 3, &a, &m);
        assert_true(rc == WA_ETRUNC || rc == WA_EZLIB);
    }
    /* corrupt stream, trailing garbage */
    z[0] = WA_BNODE_FLAG_COMPRESSED;
    z[1] ^= 0xff;
    assert_int_equal(wa_bnode_decode_frame(z, zlen + 1, 3, &a, &m), WA_EZLIB);
    z[1] ^= 0xff;
    z[zlen + 1] = 0;
    assert_int_equal(wa_bnode_decode_frame(z, zlen + 2, 3, &a, &m), WA_EZLIB);
    /* uncompressed frame: flag 0 */
    wa_buf_reset(&b);
    assert_int_equal(wa_bnode_encode_frame(n, 3, &b), 0);
    assert_int_equal(b.data[0], 0);
    assert_int_equal(wa_bnode_decode_frame(b.data, b.len, 3, &a, &m), 0);
    assert_true(wa_node_equal(n, m));
    wa_arena_cleanup(&a);
    wa_buf_cleanup(&b);

    /* a zlib bomb beyond WA_BNODE_MAX_INFLATED is refused */
    {
        size_t big = WA_BNODE_MAX_INFLATED + 16;
        uint8_t *zeros = calloc(1, big);
        uLongf blen = compressBound(big);
        uint8_t *bomb = malloc(blen + 1);
        assert_non_null(zeros);
        assert_non_null(bomb);
        bomb[0] = WA_BNODE_FLAG_COMPRESSED;
        assert_int_equal(compress2(bomb + 1, &blen, zeros, big, 9), Z_OK);
        wa_arena_init(&a, WA_BNODE_ARENA_MAX);
        assert_int_equal(wa_bnode_decode_frame(bomb, blen + 1, 3, &a, &m), WA_ELIMIT);
        wa_arena_cleanup(&a);
        free(zeros);
        free(bomb);
    }
}

/* ---- getters, builders, printer ---------------------------------------------------------- */

static void test_getters(void **state)
{
    wa_arena a;
    wa_node *n, *c;
    const wa_node *k;
    uint64_t u;
    int64_t i64;
    int i;
    wa_jid j;
    const uint8_t *p;
    size_t len, count = 0;

    (void)state;
    wa_arena_init(&a, 1 << 20);
    n = wa_node_new(&a, "iq");
    assert_null(wa_node_new(&a, ""));
    assert_int_equal(wa_node_set_attr(&a, n, "t", "1700000000"), 0);
    assert_int_equal(wa_node_set_attr(&a, n, "neg", "-42"), 0);
    assert_int_equal(wa_node_set_attr(&a, n, "big", "18446744073709551615"), 0);
    assert_int_equal(wa_node_set_attr(&a, n, "over", "18446744073709551616"), 0);
    assert_int_equal(wa_node_set_attr(&a, n, "bad", "12a"), 0);
    assert_int_equal(wa_node_set_attr(&a, n, "from", "123:4@s.whatsapp.net"), 0);
    assert_int_equal(wa_node_set_attr(&a, n, "", "x"), WA_EINVAL);
    assert_int_equal(wa_node_set_attr_n(&a, n, "nul", "a\0b", 3), WA_EINVAL);

    assert_int_equal(wa_node_attr_u64(n, "t", &u), 0);
    assert_int_equal(u, 1700000000);
    assert_int_equal(wa_node_attr_u64(n, "big", &u), 0);
    assert_true(u == UINT64_MAX);
    assert_int_equal(wa_node_attr_u64(n, "over", &u), WA_EPROTO);
    assert_int_equal(wa_node_attr_u64(n, "bad", &u), WA_EPROTO);
    assert_int_equal(wa_node_attr_u64(n, "neg", &u), WA_EPROTO);
    assert_int_equal(wa_node_attr_u64(n, "missing", &u), WA_ENOTFOUND);
    assert_int_equal(wa_node_attr_i64(n, "neg", &i64), 0);
    assert_int_equal(i64, -42);
    assert_int_equal(wa_node_attr_int(n, "neg", &i), 0);
    assert_int_equal(i, -42);
    assert_int_equal(wa_node_attr_int(n, "t", &i), 0);
    assert_int_equal(wa_node_attr_int(n, "big", &i), WA_EPROTO);
    assert_int_equal(wa_node_attr_jid(n, "from", &j), 0);
    assert_string_equal(j.user, "123");
    assert_int_equal(j.device, 4);
    assert_int_equal(wa_node_attr_jid(n, "bad", &j), WA_EJID);
    assert_int_equal(wa_node_attr_jid(n, "nope", &j), WA_ENOTFOUND);
    /* replacing keeps position */
    assert_int_equal(wa_node_set_attr(&a, n, "t", "5"), 0);
    assert_string_equal(n->attrs[0].key, "t");
    assert_string_equal(wa_node_attr(n, "t"), "5");
    assert_int_equal(wa_node_set_attr_jid(&a, n, "to", &j), 0);
    assert_string_equal(wa_node_attr(n, "to"), "123:4@s.whatsapp.net");

    /* children */
    assert_null(wa_node_children(n));
    assert_int_equal(wa_node_content_bytes(n, &p, &len), WA_ENOTFOUND);
    for (int x = 0; x < 5; x++) {
        c = wa_node_new_child(&a, n, x % 2 ? "odd" : "even");
        assert_int_equal(wa_node_set_attr_u64(&a, c, "i", (uint64_t)x), 0);
    }
    assert_int_equal(wa_node_add_child(n, c), WA_EINVAL); /* already the last child */
    assert_int_equal(wa_node_child_count(n), 5);
    WA_NODE_FOREACH(ch, n)
    {
        uint64_t idx;
        assert_int_equal(wa_node_attr_u64(ch, "i", &idx), 0);
        assert_int_equal(idx, count);
        count++;
    }
    assert_int_equal(count, 5);
    k = wa_node_child(n, "odd");
    assert_string_equal(wa_node_attr(k, "i"), "1");
    k = wa_node_next_tag(k, "odd");
    assert_string_equal(wa_node_attr(k, "i"), "3");
    assert_null(wa_node_next_tag(k, "odd"));
    assert_null(wa_node_child(n, "none"));
    assert_true(wa_node_is(n, "iq"));
    assert_false(wa_node_is(n, "i"));

    /* content bytes */
    assert_int_equal(wa_node_set_bytes(&a, c, "\x01\x02", 2), 0);
    assert_int_equal(wa_node_content_bytes(c, &p, &len), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(p, "\x01\x02", 2);
    assert_int_equal(wa_node_set_string(&a, c, "hi"), 0);
    assert_int_equal(c->content, WA_NODE_STRING);
    assert_int_equal(wa_node_content_bytes(c, &p, &len), 0);
    assert_int_equal(len, 2);

    /* repeated keys in a decoded node: the last one wins */
    assert_int_equal(decode_hex(&a, "f8 05 13 fc 01 61 fc 01 31 fc 01 61 fc 01 32", 3, 0, &c), 0);
    assert_int_equal(c->nattrs, 2);
    assert_string_equal(wa_node_attr(c, "a"), "2");
    assert_roundtrip(c, 3);
    wa_arena_cleanup(&a);
}

static void test_xml(void **state)
{
    wa_arena a;
    wa_node *n, *c;
    wa_buf small;

    (void)state;
    wa_arena_init(&a, 1 << 20);
    n = wa_node_new(&a, "iq");
    assert_int_equal(wa_node_set_attr(&a, n, "id", "1"), 0);
    assert_int_equal(wa_node_set_attr(&a, n, "type", "result"), 0);
    assert_non_null(wa_node_new_child(&a, n, "ping"));
    assert_xml(n, 0, "<iq id=\"1\" type=\"result\"><ping/></iq>");
    assert_xml(n, WA_NODE_XML_INDENT, "<iq id=\"1\" type=\"result\">\n  <ping/>\n</iq>");

    c = wa_node_new_child(&a, n, "enc");
    assert_int_equal(wa_node_set_bytes(&a, c, "\x33\xff\x00", 3), 0);
    assert_xml(n, 0, "<iq id=\"1\" type=\"result\"><ping/><enc>[3 bytes]</enc></iq>");
    assert_xml(c, WA_NODE_XML_HEX, "<enc>33ff00</enc>");
    assert_int_equal(wa_node_set_string(&a, c, "a<b&\"c\"\n"), 0);
    assert_xml(c, 0, "<enc>a&lt;b&amp;&quot;c&quot;\\x0a</enc>");
    wa_node_set_list(c);
    assert_xml(c, 0, "<enc></enc>");
    assert_int_equal(wa_node_set_attr(&a, c, "k", "x>\x01"), 0);
    assert_xml(c, 0, "<enc k=\"x&gt;\\x01\"></enc>");

    /* cap reached */
    wa_buf_init(&small, 10);
    assert_int_equal(wa_node_to_xml(n, &small, 0), WA_ELIMIT);
    assert_true(small.len <= 10);
    wa_buf_cleanup(&small);
    wa_arena_cleanup(&a);
}

static void test_encode_errors(void **state)
{
    wa_arena a;
    wa_node *n;
    wa_buf b;

    (void)state;
    wa_arena_init(&a, 1 << 20);
    n = message_stanza(&a);
    /* output cap: every cap below the size fails with WA_ELIMIT and leaves out unchanged */
    wa_buf_init(&b, 1 << 20);
    assert_int_equal(wa_bnode_encode(n, 3, &b), 0);
    size_t need = b.len;
    wa_buf_cleanup(&b);
    for (size_t cap = 1; cap < need; cap++) {
        wa_buf_init(&b, cap);
        assert_int_equal(wa_bnode_encode(n, 3, &b), WA_ELIMIT);
        assert_int_equal(b.len, 0);
        wa_buf_cleanup(&b);
    }
    wa_buf_init(&b, need);
    assert_int_equal(wa_bnode_encode(n, 3, &b), 0);
    assert_int_equal(wa_bnode_encode(n, 1, &b), WA_EINVAL);
    assert_int_equal(wa_bnode_encode(NULL, 3, &b), WA_EINVAL);
    assert_int_equal(b.len, need);
    wa_buf_cleanup(&b);
    wa_arena_cleanup(&a);
}

static void test_tokens(void **state)
{
    int dict;
    uint8_t idx;

    (void)state;
    /* every token of both dictionaries is found at its own index */
    for (int v = 2; v <= 3; v++) {
        const wa_bnode_dict *d = wa_bnode_dict_get(v);
        assert_non_null(d);
        for (unsigned i = 1; i < d->single_count; i++) {
            assert_int_equal(
                wa_bnode_token_find(d, d->single[i], strlen(d->single[i]), &dict, &idx), 1);
            assert_int_equal(dict, -1);
            assert_int_equal(idx, i);
        }
        for (int di = 0; di < WA_BNODE_DICT_COUNT; di++)
            for (unsigned i = 0; i < d->dbl_count[di]; i++) {
                const char *s = d->dbl[di][i];
                assert_int_equal(wa_bnode_token_find(d, s, strlen(s), &dict, &idx), 1);
                assert_int_equal(dict, di);
                assert_int_equal(idx, i);
            }
        assert_int_equal(wa_bnode_token_find(d, "", 0, &dict, &idx), 0);
        assert_int_equal(wa_bnode_token_find(d, "not-a-token-xyz", 15, &dict, &idx), 0);
        assert_int_equal(wa_bnode_token_find(d, "messag", 6, &dict, &idx), 0);
    }
    assert_null(wa_bnode_dict_get(1));
    assert_string_equal(wa_bnode_dict_v2.single[3], "s.whatsapp.net");
    assert_string_equal(wa_bnode_dict_v3.dbl[0][0], "read-self");
}

/* ---- decoder fast paths and memory ------------------------------------------------------ */

/* Reference unpacking of nb packed bytes: 0 and out[0..*n) (NUL-terminated), *nul when a NUL
 * lies within the string; -1 for an invalid nibble (12..14, the pad included). */
static int ref_unpack(int hex, const uint8_t *b, size_t nb, int odd, char *out, size_t *n, int *nul)
{
    size_t len = 2 * nb - (odd && nb ? 1 : 0);

    *nul = 0;
    for (size_t i = 0; i < 2 * nb; i++) {
        unsigned v = i % 2 ? b[i / 2] & 15u : b[i / 2] >> 4;
        char c;
        if (hex)
            c = "0123456789ABCDEF"[v];
        else if (v < 10)
            c = (char)('0' + v);
        else if (v == 10)
            c = '-';
        else if (v == 11)
            c = '.';
        else if (v == 15)
            c = 0;
        else
            return -1;
        out[i] = c;
        if (i < len && c == 0)
            *nul = 1;
    }
    out[len] = 0;
    *n = len;
    return 0;
}

/* One packed string (tag, start byte, bytes) as a tag, an attribute value and content. */
static void check_packed(uint8_t tag, uint8_t start, const uint8_t *b, size_t nb)
{
    uint8_t buf[32];
    char want[16];
    size_t k, wn, hdr;
    int nul, bad, rc;
    wa_arena a;
    wa_node *n;

    bad = ref_unpack(tag == WA_BNODE_HEX_8, b, nb, start & 0x80, want, &wn, &nul) != 0;
    for (int ctx = 0; ctx < 3; ctx++) {
        static const uint8_t heads[3][8] = {{0xf8, 0x01},
                                            {0xf8, 0x03, 0xfc, 0x01, 'x', 0xfc, 0x01, 'k'},
                                            {0xf8, 0x02, 0xfc, 0x01, 'x'}};
        hdr = ctx == 0 ? 2 : ctx == 1 ? 8 : 5;
        memcpy(buf, heads[ctx], hdr);
        k = hdr;
        buf[k++] = tag;
        buf[k++] = start;
        memcpy(buf + k, b, nb);
        k += nb;
        wa_arena_init(&a, 1 << 20);
        n = NULL;
        rc = wa_bnode_decode(buf, k, 3, &a, &n);
        if (bad || (ctx < 2 && nul) || (ctx == 0 && wn == 0)) {
            if (rc != WA_EPROTO)
                fail_msg("tag %02x start %02x b %02x%02x ctx %d: %s, want WA_EPROTO", tag, start,
                         b[0], nb > 1 ? b[1] : 0, ctx, wa_err_name(rc));
        } else {
            const char *got = NULL;
            size_t gl = 0;
            if (rc != 0)
                fail_msg("tag %02x start %02x b %02x%02x ctx %d: %s", tag, start, b[0],
                         nb > 1 ? b[1] : 0, ctx, wa_err_name(rc));
            if (ctx == 0)
                got = n->tag, gl = n->tag_len;
            else if (ctx == 1)
                got = n->attrs[0].value, gl = n->attrs[0].value_len;
            else {
                assert_int_equal(n->content, WA_NODE_STRING);
                got = (const char *)n->bytes, gl = n->len;
            }
            assert_int_equal(gl, wn);
            assert_memory_equal(got, want, wn + 1); /* NUL-terminated too */
            if (ctx < 2)
                assert_int_equal(strlen(got), wn);
        }
        wa_arena_cleanup(&a);
    }
}

static void test_packed_exhaustive(void **state)
{
    static const uint8_t second[] = {0x00, 0x0f, 0xf0, 0xff, 0x1c, 0xc1, 0x12, 0xab,
                                     0x9f, 0xf9, 0x5e, 0xe5, 0xdd, 0x3b, 0xa0, 0x0a};
    static const uint8_t tags[] = {WA_BNODE_NIBBLE_8, WA_BNODE_HEX_8};

    (void)state;
    for (size_t t = 0; t < 2; t++)
        for (int odd = 0; odd <= 1; odd++) {
            uint8_t b[2];
            check_packed(tags[t], odd ? 0x80 : 0x00, b, 0);
            for (int x = 0; x < 256; x++) {
                /* one byte (the decoder's static short strings), then two bytes with the
                 * varied byte first and last (the pad position) */
                b[0] = (uint8_t)x;
                check_packed(tags[t], (uint8_t)(odd << 7 | 1), b, 1);
                for (size_t y = 0; y < sizeof second; y++) {
                    b[0] = (uint8_t)x, b[1] = second[y];
                    check_packed(tags[t], (uint8_t)(odd << 7 | 2), b, 2);
                    b[0] = second[y], b[1] = (uint8_t)x;
                    check_packed(tags[t], (uint8_t)(odd << 7 | 2), b, 2);
                }
            }
        }
}

/* A JID attribute value decodes to want (or fails with err), every prefix is truncated, and
 * as content it gives the same string. */
static void check_jid(int v, const char *jid_hex, const char *want, int err)
{
    char hex[512];
    uint8_t buf[256];
    size_t n;
    wa_arena a;
    wa_node *t;

    snprintf(hex, sizeof hex, "f8 03 fc 01 78 fc 01 6a %s", jid_hex);
    n = unhex(hex, buf, sizeof buf);
    if (err) {
        assert_int_equal(decode_bytes(buf, n, v), err);
    } else {
        int rc = decode_bytes(buf, n, v);
        if (rc)
            fail_msg("v%d %s: %s", v, jid_hex, wa_err_name(rc));
        assert_attr_decodes(v, jid_hex, want);
        assert_prefixes_truncated(buf, n, v, 1);
    }
    snprintf(hex, sizeof hex, "f8 02 fc 01 78 %s", jid_hex);
    n = unhex(hex, buf, sizeof buf);
    wa_arena_init(&a, 1 << 20);
    if (err) {
        assert_int_equal(wa_bnode_decode(buf, n, v, &a, &t), err);
    } else {
        assert_int_equal(wa_bnode_decode(buf, n, v, &a, &t), 0);
        assert_int_equal(t->content, WA_NODE_STRING);
        assert_int_equal(t->len, strlen(want));
        assert_string_equal((const char *)t->bytes, want);
    }
    wa_arena_cleanup(&a);
}

static void test_jid_fast_paths(void **state)
{
    /* users: nibble-packed (the fast path), and the other forms (the general path) */
    static const struct {
        const char *hex, *str;
    } users[] = {{"ff 81 1f", "1"},
                 {"ff 01 12", "12"},
                 {"ff 87 55 11 98 76 54 32 1f", "5511987654321"},
                 {"ff 02 12 34", "1234"},
                 {"ff 82 12 3f", "123"},
                 {"ff 00", ""},
                 {"ff 80", ""},
                 {"00", ""},
                 {"fb 01 ab", "AB"},
                 {"fc 02 61 62", "ab"},
                 {"0e", NULL},     /* single-byte token 14 */
                 {"ec 00", NULL}}; /* double-byte token 0, 0 */
    static const int domains[] = {0, 1, 128, 129, 2, 77, 255};
    static const int devices[] = {0, 1, 9, 10, 99, 100, 255};
    char hex[256], want[256];

    (void)state;
    for (size_t u = 0; u < sizeof users / sizeof users[0]; u++) {
        for (int v = 2; v <= 3; v++) {
            const wa_bnode_dict *dict = wa_bnode_dict_get(v);
            const char *ustr = users[u].str             ? users[u].str
                               : users[u].hex[0] == '0' ? dict->single[14]
                                                        : dict->dbl[0][0];
            for (size_t di = 0; di < sizeof domains / sizeof domains[0]; di++)
                for (size_t dv = 0; dv < sizeof devices / sizeof devices[0]; dv++) {
                    int dom = domains[di], dev = devices[dv];
                    int agent = dom != 0 && dom != 1 && dom != 128 && dom != 129;
                    const char *server = dom == 1     ? "lid"
                                         : dom == 128 ? "hosted"
                                         : dom == 129 ? "hosted.lid"
                                                      : "s.whatsapp.net";
                    int w = snprintf(want, sizeof want, "%s", ustr);
                    if (agent)
                        w += snprintf(want + w, sizeof want - (size_t)w, ".%d", dom);
                    if (agent || dev)
                        w += snprintf(want + w, sizeof want - (size_t)w, ":%d", dev);
                    snprintf(want + w, sizeof want - (size_t)w, "@%s", server);
                    snprintf(hex, sizeof hex, "f7 %02x %02x %s", dom, dev, users[u].hex);
                    check_jid(v, hex, want, 0);
                }
            /* JID_PAIR with servers as a single-byte token (fast path), a double-byte token,
             * a packed and a raw string */
            snprintf(want, sizeof want, "%s@%s", ustr, dict->single[3]);
            snprintf(hex, sizeof hex, "fa %s 03", users[u].hex);
            check_jid(v, hex, want, 0);
            snprintf(want, sizeof want, "%s@%s", ustr, dict->dbl[0][0]);
            snprintf(hex, sizeof hex, "fa %s ec 00", users[u].hex);
            check_jid(v, hex, want, 0);
            snprintf(want, sizeof want, "%s@1", ustr);
            snprintf(hex, sizeof hex, "fa %s ff 81 1f", users[u].hex);
            check_jid(v, hex, want, 0);
            snprintf(want, sizeof want, "%s@a", ustr);
            snprintf(hex, sizeof hex, "fa %s fc 01 61", users[u].hex);
            check_jid(v, hex, want, 0);
            /* empty server */
            snprintf(hex, sizeof hex, "fa %s 00", users[u].hex);
            check_jid(v, hex, NULL, WA_EPROTO);
        }
    }
    /* a nibble-packed user with a bad nibble (also the pad) or a NUL */
    check_jid(3, "f7 00 01 ff 02 1c 11", NULL, WA_EPROTO);
    check_jid(3, "f7 00 01 ff 82 11 1d", NULL, WA_EPROTO);
    check_jid(3, "fa ff 02 1c 11 03", NULL, WA_EPROTO);
    check_jid(3, "fa ff 82 11 1e 03", NULL, WA_EPROTO);
    /* a NUL in the user: refused in an attribute, kept in content */
    {
        static const char *const jids[] = {"f7 00 03 ff 02 1f 23", "fa ff 02 1f 23 03",
                                           "fa fc 02 31 00 03", "f7 05 03 ff 02 1f 23"};
#define WANT(s)                                                                                    \
    {                                                                                              \
        s, sizeof s - 1                                                                            \
    }
        static const struct {
            const char *s;
            size_t len;
        } wants[] = {WANT("1\0"
                          "23:3@s.whatsapp.net"),
                     WANT("1\0"
                          "23@s.whatsapp.net"),
                     WANT("1\0@s.whatsapp.net"),
                     WANT("1\0"
                          "23.5:3@s.whatsapp.net")};
#undef WANT
        for (size_t i = 0; i < 4; i++) {
            wa_arena a;
            wa_node *t;
            snprintf(hex, sizeof hex, "f8 03 fc 01 78 fc 01 6a %s", jids[i]);
            assert_int_equal(decode_err(hex, 3), WA_EPROTO);
            snprintf(hex, sizeof hex, "f8 02 fc 01 78 %s", jids[i]);
            wa_arena_init(&a, 1 << 20);
            assert_int_equal(decode_hex(&a, hex, 3, 0, &t), 0);
            assert_int_equal(t->len, wants[i].len);
            assert_memory_equal(t->bytes, wants[i].s, wants[i].len + 1);
            wa_arena_cleanup(&a);
        }
    }
}

/* A stanza with many nodes, attributes, JIDs and binary contents of all sizes, so that the
 * decoder takes several blocks and allocates big contents directly. */
static wa_node *big_tree(wa_arena *a)
{
    static uint8_t blob[70000];
    wa_node *root = wa_node_new(a, "iq"), *list;

    for (size_t i = 0; i < sizeof blob; i++)
        blob[i] = (uint8_t)(i * 7 + 3);
    assert_int_equal(wa_node_set_attr(a, root, "id", "63401.40113-27"), 0);
    assert_int_equal(wa_node_set_attr(a, root, "to", "5511987654321:3@s.whatsapp.net"), 0);
    list = wa_node_new_child(a, root, "list");
    for (int i = 0; i < 600; i++) {
        char id[32], jid[64];
        wa_node *c = wa_node_new_child(a, list, i % 3 ? "item" : "user");
        snprintf(id, sizeof id, "%d", i);
        snprintf(jid, sizeof jid, "55119%08d%s@%s", i * 7919, i % 2 ? ":7" : "",
                 i % 5 ? "s.whatsapp.net" : "lid");
        assert_int_equal(wa_node_set_attr(a, c, "id", id), 0);
        assert_int_equal(wa_node_set_attr(a, c, "jid", jid), 0);
        if (i % 4 == 1)
            assert_int_equal(wa_node_set_bytes(a, c, blob, (size_t)(i * 37) % 3000), 0);
        else if (i % 4 == 2)
            assert_int_equal(wa_node_set_string(a, c, "1718000123"), 0);
    }
    assert_int_equal(wa_node_set_bytes(a, wa_node_new_child(a, root, "big"), blob, sizeof blob), 0);
    return root;
}

static void test_arena_caps(void **state)
{
    wa_arena a, ref_a, tree_a;
    wa_node *tree, *ref, *n;
    wa_buf b;
    size_t need, cap;
    int ok = 0;

    (void)state;
    wa_arena_init(&tree_a, WA_BNODE_ARENA_MAX);
    wa_buf_init(&b, OUT_MAX);
    tree = big_tree(&tree_a);
    assert_int_equal(wa_bnode_encode(tree, 3, &b), 0);
    wa_arena_init(&ref_a, WA_BNODE_ARENA_MAX);
    assert_int_equal(wa_bnode_decode(b.data, b.len, 3, &ref_a, &ref), 0);
    assert_true(wa_node_equal(tree, ref));
    need = ref_a.total;
    /* every cap: the same tree or WA_ELIMIT; enough for an unlimited decode is enough */
    for (cap = 0; cap <= need + 4096; cap += cap < 4096 ? 97 : 1531) {
        wa_arena_init(&a, cap);
        n = NULL;
        int rc = wa_bnode_decode(b.data, b.len, 3, &a, &n);
        if (rc == 0) {
            assert_true(wa_node_equal(ref, n));
            ok++;
        } else if (rc != WA_ELIMIT) {
            fail_msg("cap %zu: %s", cap, wa_err_name(rc));
        }
        assert_true(a.total <= cap);
        if (cap >= need)
            assert_int_equal(rc, 0);
        wa_arena_cleanup(&a);
    }
    assert_true(ok > 0);
    /* allocation failure at every point: the same tree or WA_ENOMEM */
    ok = 0;
    for (long k = 0; k < 64 && !ok; k++) {
        wa_arena_init(&a, WA_BNODE_ARENA_MAX);
        wa__alloc_fail_after(k);
        int rc = wa_bnode_decode(b.data, b.len, 3, &a, &n);
        wa__alloc_fail_after(-1);
        assert_true(rc == 0 || rc == WA_ENOMEM);
        if (rc == 0) {
            assert_true(wa_node_equal(ref, n));
            ok = 1;
        }
        wa_arena_cleanup(&a);
    }
    assert_true(ok);
    wa_arena_cleanup(&ref_a);
    wa_arena_cleanup(&tree_a);
    wa_buf_cleanup(&b);
}

static void test_static_strings(void **state)
{
    wa_arena a;
    wa_node *n;

    (void)state;
    /* tokens are not copied: a decoded tree points into the static dictionary, which outlives
     * every tree */
    wa_arena_init(&a, 1 << 20);
    assert_int_equal(decode_hex(&a, "f8 04 13 04 ec 00 f8 01 f8 01 13", 3, 0, &n), 0);
    assert_ptr_equal(n->tag, wa_bnode_dict_v3.single[0x13]);
    assert_ptr_equal(n->attrs[0].key, wa_bnode_dict_v3.single[0x04]);
    assert_ptr_equal(n->attrs[0].value, wa_bnode_dict_v3.dbl[0][0]);
    assert_ptr_equal(n->first->tag, wa_bnode_dict_v3.single[0x13]);
    assert_int_equal(decode_hex(&a, "f8 03 13 04 ec 00", 2, 0, &n), 0);
    assert_ptr_equal(n->tag, wa_bnode_dict_v2.single[0x13]);
    assert_ptr_equal(n->attrs[0].value, wa_bnode_dict_v2.dbl[0][0]);
    /* the tree stays valid after the input is gone */
    {
        uint8_t *in = malloc(16);
        size_t len = unhex("f8 05 13 04 ff 81 2f 08 fc 02 61 62", in, 16);
        assert_int_equal(wa_bnode_decode(in, len, 3, &a, &n), 0);
        memset(in, 0, 16);
        free(in);
        assert_string_equal(n->tag, "message");
        assert_string_equal(wa_node_attr(n, "type"), "2");
        assert_string_equal(wa_node_attr(n, "id"), "ab");
    }
    wa_arena_cleanup(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_protocol_vectors),
        cmocka_unit_test(test_baileys_vectors),
        cmocka_unit_test(test_string_forms),
        cmocka_unit_test(test_nibble_hex_limits),
        cmocka_unit_test(test_packed_decoding),
        cmocka_unit_test(test_list_sizes),
        cmocka_unit_test(test_binary_lengths),
        cmocka_unit_test(test_jid_decoding),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_compressed_frame),
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_xml),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_packed_exhaustive),
        cmocka_unit_test(test_jid_fast_paths),
        cmocka_unit_test(test_arena_caps),
        cmocka_unit_test(test_static_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
