/*
 * bench_codec.c - libwa's half of the binary node benchmark (driven by bench.mjs, which also
 * times Baileys on the same bytes in the same run and prints the ratios).
 *
 *   bench_codec <corpus.bin> [seconds per measurement]
 *
 * corpus.bin: entries of [u8 name length][name][u32 BE frame length][frame], each frame a v3
 * transport plaintext (flag byte 0x00 + node bytes) as Baileys 7 encodes it. For every entry
 * it checks that libwa decodes the frame and re-encodes it to the identical bytes, then times
 * wa_bnode_decode_frame (one fresh arena per stanza, as a connection would) and
 * wa_bnode_encode_frame (into a reused buffer), and prints one JSON line per entry.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bnode/bnode.h"
#include "core/util.h"
#include "wa/error.h"

#define DICT       3
#define MAX_CORPUS (64u << 20)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t count_nodes(const wa_node *n)
{
    size_t c = 1;
    const wa_node *k;

    for (k = wa_node_children(n); k; k = k->next)
        c += count_nodes(k);
    return c;
}

/* Defeats dead-code elimination of the timed loops. */
static volatile size_t sink;

static int bench_one(const char *name, const uint8_t *frame, size_t len, double seconds)
{
    wa_arena a, keep;
    wa_node *tree = NULL, *n = NULL;
    wa_buf out;
    double t0, dt_dec, dt_enc;
    unsigned long iters, it_dec = 0, it_enc = 0;
    size_t nodes;
    int rc, identical;

    wa_arena_init(&keep, WA_BNODE_ARENA_MAX);
    wa_buf_init(&out, WA_BNODE_MAX_INFLATED);
    rc = wa_bnode_decode_frame(frame, len, DICT, &keep, &tree);
    if (rc) {
        fprintf(stderr, "bench_codec: %s: decode failed: %s\n", name, wa_err_name(rc));
        return 1;
    }
    nodes = count_nodes(tree);
    rc = wa_bnode_encode_frame(tree, DICT, &out);
    identical = !rc && out.len == len && memcmp(out.data, frame, len) == 0;

    /* decode: batches of 64 until the time budget is spent */
    for (iters = 64, t0 = now();;) {
        for (unsigned long i = 0; i < iters; i++) {
            wa_arena_init(&a, WA_BNODE_ARENA_MAX);
            if (wa_bnode_decode_frame(frame, len, DICT, &a, &n) != 0)
                abort();
            sink += n->nattrs;
            wa_arena_cleanup(&a);
        }
        it_dec += iters;
        if ((dt_dec = now() - t0) >= seconds)
            break;
    }
    for (iters = 64, t0 = now();;) {
        for (unsigned long i = 0; i < iters; i++) {
            wa_buf_reset(&out);
            if (wa_bnode_encode_frame(tree, DICT, &out) != 0)
                abort();
            sink += out.len;
        }
        it_enc += iters;
        if ((dt_enc = now() - t0) >= seconds)
            break;
    }
    printf("{\"name\":\"%s\",\"bytes\":%zu,\"nodes\":%zu,\"identical\":%s,"
           "\"decode_ns\":%.1f,\"encode_ns\":%.1f}\n",
           name, len, nodes, identical ? "true" : "false", dt_dec * 1e9 / (double)it_dec,
           dt_enc * 1e9 / (double)it_enc);
    wa_buf_cleanup(&out);
    wa_arena_cleanup(&keep);
    return identical ? 0 : 1;
}

int main(int argc, char **argv)
{
    FILE *f;
    uint8_t *buf;
    size_t len, pos = 0;
    double seconds = argc > 2 ? atof(argv[2]) : 0.5;
    int rc = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_codec <corpus.bin> [seconds]  (run bench/codec/bench.mjs)\n");
        return 2;
    }
    f = fopen(argv[1], "rb");
    buf = malloc(MAX_CORPUS);
    if (!f || !buf) {
        fprintf(stderr, "bench_codec: cannot read %s\n", argv[1]);
        return 2;
    }
    len = fread(buf, 1, MAX_CORPUS, f);
    fclose(f);
    while (pos < len) {
        char name[256];
        size_t nl = buf[pos++], fl;
        if (pos + nl + 4 > len)
            break;
        memcpy(name, buf + pos, nl);
        name[nl] = '\0';
        pos += nl;
        fl = wa_load_be32(buf + pos);
        pos += 4;
        if (pos + fl > len)
            break;
        rc |= bench_one(name, buf + pos, fl, seconds);
        pos += fl;
    }
    free(buf);
    (void)sink;
    return rc;
}
