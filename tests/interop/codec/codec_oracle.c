/*
 * codec_oracle.c - the C half of the binary node oracle test (driven by oracle.mjs).
 *
 *   codec_oracle <cases.json> <out.json>
 *
 * For every case {v, frame (hex), tree | btree} written by oracle.mjs:
 *   - decodes `frame` (Baileys' encoding, or a hand-made / compressed frame) with
 *     wa_bnode_decode_frame and checks the result equals Baileys' decoding of it (`btree`, or
 *     `tree` when the frame is Baileys' encoding of `tree`, which oracle.mjs checked round-trips);
 *   - when `tree` is present, builds it with the wa_node builders, encodes it with
 *     wa_bnode_encode_frame and checks the bytes equal `frame` (Baileys' encoding), and writes
 *     the encoding to out.json {"frames": [hex | null, ...]} for oracle.mjs to decode with
 *     Baileys.
 * Tree JSON: {"tag": s, "attrs": [[k, v], ...], "content": null | {"bytes": hex} |
 * {"string": s} | [tree, ...]}. Exit status 0 when everything matched.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnode/bnode.h"
#include "core/util.h"
#include "wa/error.h"

#define MAX_REPORTS 5

static int failures;

static uint8_t *unhex(const char *hex, size_t hlen, size_t *len)
{
    uint8_t *p;

    if (hlen % 2)
        return NULL;
    p = malloc(hlen / 2 + 1);
    if (!p || wa_hex_decode(p, hlen / 2, hex, hlen) != 0) {
        free(p);
        return NULL;
    }
    *len = hlen / 2;
    return p;
}

static wa_node *build(wa_arena *a, json_t *j, int depth)
{
    json_t *attrs = json_object_get(j, "attrs"), *content = json_object_get(j, "content");
    wa_node *n;
    size_t i;

    if (depth > WA_BNODE_MAX_DEPTH)
        return NULL;
    n = wa_node_new(a, json_string_value(json_object_get(j, "tag")));
    if (!n)
        return NULL;
    for (i = 0; i < json_array_size(attrs); i++) {
        json_t *kv = json_array_get(attrs, i), *v = json_array_get(kv, 1);
        if (wa_node_set_attr_n(a, n, json_string_value(json_array_get(kv, 0)), json_string_value(v),
                               json_string_length(v)) != 0)
            return NULL;
    }
    if (json_is_array(content)) {
        wa_node_set_list(n);
        for (i = 0; i < json_array_size(content); i++) {
            wa_node *c = build(a, json_array_get(content, i), depth + 1);
            if (!c || wa_node_add_child(n, c) != 0)
                return NULL;
        }
    } else if (json_is_object(content)) {
        json_t *b = json_object_get(content, "bytes"), *s = json_object_get(content, "string");
        if (b) {
            size_t len;
            uint8_t *p = unhex(json_string_value(b), json_string_length(b), &len);
            int rc = p ? wa_node_set_bytes(a, n, p, len) : -1;
            free(p);
            if (rc)
                return NULL;
        } else if (s) {
            if (wa_node_set_string_n(a, n, json_string_value(s), json_string_length(s)) != 0)
                return NULL;
        } else {
            return NULL;
        }
    }
    return n;
}

static int str_eq(const char *p, size_t n, json_t *s)
{
    return json_is_string(s) && json_string_length(s) == n &&
           (n == 0 || memcmp(json_string_value(s), p, n) == 0);
}

/* 1 if the libwa tree n equals the JSON tree j. */
static int same(const wa_node *n, json_t *j, int depth)
{
    json_t *attrs = json_object_get(j, "attrs"), *content = json_object_get(j, "content");
    const wa_node *c;
    size_t i;

    if (depth > WA_BNODE_MAX_DEPTH + 1 || !str_eq(n->tag, n->tag_len, json_object_get(j, "tag")))
        return 0;
    if (json_array_size(attrs) != n->nattrs)
        return 0;
    for (i = 0; i < n->nattrs; i++) {
        json_t *kv = json_array_get(attrs, i);
        if (!str_eq(n->attrs[i].key, n->attrs[i].key_len, json_array_get(kv, 0)) ||
            !str_eq(n->attrs[i].value, n->attrs[i].value_len, json_array_get(kv, 1)))
            return 0;
    }
    switch (n->content) {
    case WA_NODE_NONE:
        return json_is_null(content);
    case WA_NODE_LIST:
        if (!json_is_array(content) || json_array_size(content) != n->len)
            return 0;
        for (c = n->first, i = 0; c; c = c->next, i++)
            if (!same(c, json_array_get(content, i), depth + 1))
                return 0;
        return 1;
    case WA_NODE_STRING:
        return json_is_object(content) &&
               str_eq((const char *)n->bytes, n->len, json_object_get(content, "string"));
    case WA_NODE_BYTES: {
        json_t *b = json_object_get(content, "bytes");
        size_t len;
        uint8_t *p;
        int eq;
        if (!json_is_object(content) || !json_is_string(b))
            return 0;
        p = unhex(json_string_value(b), json_string_length(b), &len);
        eq = p && len == n->len && (len == 0 || memcmp(p, n->bytes, len) == 0);
        free(p);
        return eq;
    }
    default:
        return 0;
    }
}

static void report(size_t idx, int v, const char *what, const wa_node *n, json_t *j)
{
    char *js, xml[2001];
    wa_buf x;

    failures++;
    if (failures > MAX_REPORTS)
        return;
    js = json_dumps(j, JSON_COMPACT);
    wa_buf_init(&x, sizeof xml - 1);
    if (n)
        (void)wa_node_to_xml(n, &x, WA_NODE_XML_HEX);
    if (x.len)
        memcpy(xml, x.data, x.len);
    xml[x.len] = '\0';
    fprintf(stderr, "codec_oracle: case %zu (v%d): %s\n  reference %.400s\n  libwa     %.400s\n",
            idx, v, what, js ? js : "?", n ? xml : "-");
    free(js);
    wa_buf_cleanup(&x);
}

int main(int argc, char **argv)
{
    json_error_t jerr;
    json_t *root, *cases, *frames, *out;
    size_t i, identical = 0, decoded = 0;
    char *hex = NULL;
    size_t hexcap = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: codec_oracle <cases.json> <out.json>\n");
        return 2;
    }
    root = json_load_file(argv[1], JSON_ALLOW_NUL, &jerr);
    if (!root) {
        fprintf(stderr, "codec_oracle: %s:%d: %s\n", argv[1], jerr.line, jerr.text);
        return 2;
    }
    cases = json_object_get(root, "cases");
    frames = json_array();
    for (i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i), *fj = json_object_get(c, "frame");
        json_t *tree = json_object_get(c, "tree"), *btree = json_object_get(c, "btree");
        int v = (int)json_integer_value(json_object_get(c, "v"));
        size_t flen;
        uint8_t *frame = unhex(json_string_value(fj), json_string_length(fj), &flen);
        wa_arena a;
        wa_node *d = NULL, *t;
        wa_buf enc;
        int rc;

        if (!btree)
            btree = tree; /* Baileys' decoding of its own encoding equals the tree */
        wa_arena_init(&a, WA_BNODE_ARENA_MAX);
        if (!frame) {
            report(i, v, "bad case (frame)", NULL, c);
            goto next;
        }
        /* Baileys' bytes -> libwa tree == Baileys' tree */
        rc = wa_bnode_decode_frame(frame, flen, v, &a, &d);
        if (rc) {
            char msg[96];
            snprintf(msg, sizeof msg, "libwa cannot decode the frame: %s", wa_err_name(rc));
            report(i, v, msg, NULL, btree);
        } else if (!same(d, btree, 1)) {
            report(i, v, "libwa decodes the frame to a different tree", d, btree);
        } else {
            decoded++;
        }
        if (!tree) {
            json_array_append_new(frames, json_null());
            goto next;
        }
        /* tree -> libwa bytes == Baileys' bytes */
        t = build(&a, tree, 1);
        if (!t) {
            report(i, v, "libwa cannot build the tree", NULL, tree);
            json_array_append_new(frames, json_null());
            goto next;
        }
        if (d && !wa_node_equal(t, d))
            report(i, v, "built tree != decoded tree", t, btree);
        wa_buf_init(&enc, WA_BNODE_MAX_INFLATED);
        rc = wa_bnode_encode_frame(t, v, &enc);
        if (rc) {
            report(i, v, "libwa cannot encode the tree", t, tree);
            json_array_append_new(frames, json_null());
        } else {
            if (enc.len == flen && memcmp(enc.data, frame, flen) == 0) {
                identical++;
            } else {
                size_t k = 0;
                char msg[128];
                while (k < enc.len && k < flen && enc.data[k] == frame[k])
                    k++;
                snprintf(msg, sizeof msg,
                         "encodings differ at byte %zu (libwa %zu bytes, Baileys %zu)", k, enc.len,
                         flen);
                report(i, v, msg, t, tree);
            }
            if (2 * enc.len + 1 > hexcap) {
                free(hex);
                hexcap = 2 * enc.len + 1;
                hex = malloc(hexcap);
                if (!hex) {
                    fprintf(stderr, "codec_oracle: out of memory\n");
                    return 2;
                }
            }
            wa_hex_encode(hex, enc.data, enc.len);
            json_array_append_new(frames, json_stringn(hex, 2 * enc.len));
        }
        wa_buf_cleanup(&enc);
    next:
        free(frame);
        wa_arena_cleanup(&a);
    }
    out = json_pack("{s:o}", "frames", frames);
    if (!out || json_dump_file(out, argv[2], JSON_COMPACT) != 0) {
        fprintf(stderr, "codec_oracle: cannot write %s\n", argv[2]);
        return 2;
    }
    printf("codec_oracle: %zu cases: %zu Baileys frames decoded to Baileys' tree, %zu encodings "
           "byte-identical to Baileys', %d failures\n",
           json_array_size(cases), decoded, identical, failures);
    json_decref(out);
    json_decref(root);
    free(hex);
    return failures ? 1 : 0;
}
