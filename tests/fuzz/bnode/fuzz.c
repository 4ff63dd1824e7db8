/*
 * fuzz.c - libFuzzer target for the binary node decoder/encoder.
 *
 * Input: 1 selector byte, then the data. Selector bit 0: dictionary (0 -> v2, 1 -> v3);
 * bit 1: the data is a transport frame (flag byte, maybe zlib) rather than bare node bytes.
 * When decoding succeeds the tree T1 is printed (XML, capped), encoded, and the encoding decoded
 * again into T2, which must equal T1 (STRING content may come back as BYTES, with the same
 * bytes, when it had to be written raw); encoding T2 must give the same bytes again. Any
 * divergence aborts, so the fuzzer reports it.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnode/bnode.h"
#include "wa/error.h"

#define FUZZ_ARENA_MAX (16u << 20)
#define FUZZ_OUT_MAX   (16u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const wa_node *a, const wa_node *b, int depth)
{
    const wa_node *x, *y;
    size_t i;

    if (depth > WA_BNODE_MAX_DEPTH)
        return 0;
    if (a->tag_len != b->tag_len || memcmp(a->tag, b->tag, a->tag_len) != 0 ||
        a->nattrs != b->nattrs)
        return 0;
    for (i = 0; i < a->nattrs; i++)
        if (strcmp(a->attrs[i].key, b->attrs[i].key) != 0 ||
            strcmp(a->attrs[i].value, b->attrs[i].value) != 0 ||
            a->attrs[i].value_len != b->attrs[i].value_len)
            return 0;
    if (a->content != b->content && !(a->content == WA_NODE_STRING && b->content == WA_NODE_BYTES))
        return 0;
    switch (a->content) {
    case WA_NODE_BYTES:
    case WA_NODE_STRING:
        return a->len == b->len && (a->len == 0 || memcmp(a->bytes, b->bytes, a->len) == 0);
    case WA_NODE_LIST:
        if (a->len != b->len)
            return 0;
        for (x = a->first, y = b->first; x && y; x = x->next, y = y->next)
            if (!same(x, y, depth + 1))
                return 0;
        return !x && !y;
    default:
        return 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wa_arena a1, a2, a3;
    wa_node *t1 = NULL, *t2 = NULL, *t3 = NULL;
    wa_buf e1, e2, xml;
    int v, rc;

    if (size < 1)
        return 0;
    v = (data[0] & 1) ? 3 : 2;
    wa_arena_init(&a1, FUZZ_ARENA_MAX);
    wa_arena_init(&a2, FUZZ_ARENA_MAX);
    wa_arena_init(&a3, FUZZ_ARENA_MAX);
    wa_buf_init(&e1, FUZZ_OUT_MAX);
    wa_buf_init(&e2, FUZZ_OUT_MAX);
    wa_buf_init(&xml, 1 << 16);
    if (data[0] & 2)
        rc = wa_bnode_decode_frame(data + 1, size - 1, v, &a1, &t1);
    else
        rc = wa_bnode_decode(data + 1, size - 1, v, &a1, &t1);
    if (rc)
        goto out;
    rc = wa_node_to_xml(t1, &xml, WA_NODE_XML_HEX);
    if (rc && rc != WA_ELIMIT)
        abort();
    if (wa_bnode_encode(t1, v, &e1) != 0)
        abort();
    rc = wa_bnode_decode(e1.data, e1.len, v, &a2, &t2);
    if (rc) {
        fprintf(stderr, "re-decoding libwa's own encoding failed: %s\n", wa_err_name(rc));
        abort();
    }
    if (!same(t1, t2, 1)) {
        fprintf(stderr, "tree changed by encode -> decode\n");
        abort();
    }
    if (wa_bnode_encode(t2, v, &e2) != 0 || e1.len != e2.len ||
        memcmp(e1.data, e2.data, e1.len) != 0) {
        fprintf(stderr, "encoding is not stable\n");
        abort();
    }
    /* the transport form decodes to the same tree */
    wa_buf_reset(&e2);
    if (wa_bnode_encode_frame(t2, v, &e2) != 0 ||
        wa_bnode_decode_frame(e2.data, e2.len, v, &a3, &t3) != 0 || !wa_node_equal(t2, t3))
        abort();
out:
    wa_buf_cleanup(&xml);
    wa_buf_cleanup(&e1);
    wa_buf_cleanup(&e2);
    wa_arena_cleanup(&a1);
    wa_arena_cleanup(&a2);
    wa_arena_cleanup(&a3);
    return 0;
}
