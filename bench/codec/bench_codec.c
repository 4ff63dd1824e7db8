/*
 * bench_codec.c - libwa's half of the binary node benchmark (driven by bench.mjs, which also
 * times Baileys on the same bytes in the same run and prints the ratios).
 *
 *   bench_codec <corpus.bin> [seconds per measurement | --iters=N]
 *
 * corpus.bin: entries of [u8 name length][name][u32 BE frame length][frame], each frame a v3
 * transport plaintext (flag byte 0x00 + node bytes) as Baileys 7 encodes it. For every entry
 * it checks that libwa decodes the frame and re-encodes it to the identical bytes, then times
 * wa_bnode_decode_frame (one fresh arena per stanza, as a connection would) and
 * wa_bnode_encode_frame (into a reused buffer), and prints one JSON line per entry: ns per
 * operation, the median over timed batches (robust to a shared machine's load) and the mean.
 * --iters=N runs exactly N decodes and N encodes per entry instead of a time budget, for
 * instruction counting: valgrind --tool=callgrind bench_codec corpus.bin --iters=1000, then
 * callgrind_annotate --inclusive=yes (cost of wa_bnode_decode_frame + wa_arena_cleanup / N).
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

#define BATCH_MIN_SECONDS 200e-6 /* a timed batch lasts at least this long */
#define MAX_BATCHES       100000

typedef struct job {
    const uint8_t *frame;
    size_t len;
    const wa_node *tree;
    wa_buf *out;
} job;

/* One decode into a fresh arena, as a connection decodes each stanza. */
static void op_decode(const job *j)
{
    wa_arena a;
    wa_node *n = NULL;

    wa_arena_init(&a, WA_BNODE_ARENA_MAX);
    if (wa_bnode_decode_frame(j->frame, j->len, DICT, &a, &n) != 0)
        abort();
    sink += n->nattrs;
    wa_arena_cleanup(&a);
}

/* One encode into a reused buffer. */
static void op_encode(const job *j)
{
    wa_buf_reset(j->out);
    if (wa_bnode_encode_frame(j->tree, DICT, j->out) != 0)
        abort();
    sink += j->out->len;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ns per op: *mean over the whole budget, *median over batches of at least BATCH_MIN_SECONDS
 * (the batch size is calibrated first, untimed). fixed > 0: exactly `fixed` ops, one batch. */
static void measure(void (*op)(const job *), const job *j, double seconds, unsigned long fixed,
                    double *mean, double *median)
{
    static double per[MAX_BATCHES];
    unsigned long iters = 1, total = 0, i;
    size_t nb = 0;
    double t0, t, elapsed = 0;

    if (fixed) {
        t0 = now();
        for (i = 0; i < fixed; i++)
            op(j);
        *mean = *median = (now() - t0) * 1e9 / (double)fixed;
        return;
    }
    for (;;) {
        t0 = now();
        for (i = 0; i < iters; i++)
            op(j);
        if (now() - t0 >= BATCH_MIN_SECONDS)
            break;
        iters *= 2;
    }
    while (elapsed < seconds && nb < MAX_BATCHES) {
        t0 = now();
        for (i = 0; i < iters; i++)
            op(j);
        t = now() - t0;
        per[nb++] = t * 1e9 / (double)iters;
        total += iters;
        elapsed += t;
    }
    qsort(per, nb, sizeof per[0], cmp_double);
    *mean = elapsed * 1e9 / (double)total;
    *median = per[nb / 2];
}

static int bench_one(const char *name, const uint8_t *frame, size_t len, double seconds,
                     unsigned long fixed)
{
    wa_arena keep;
    wa_node *tree = NULL;
    wa_buf out;
    double dec_mean, dec_med, enc_mean, enc_med;
    size_t nodes;
    int rc, identical;
    job j;

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

    j.frame = frame;
    j.len = len;
    j.tree = tree;
    j.out = &out;
    measure(op_decode, &j, seconds, fixed, &dec_mean, &dec_med);
    measure(op_encode, &j, seconds, fixed, &enc_mean, &enc_med);
    printf("{\"name\":\"%s\",\"bytes\":%zu,\"nodes\":%zu,\"identical\":%s,"
           "\"decode_ns\":%.1f,\"decode_mean_ns\":%.1f,\"encode_ns\":%.1f,"
           "\"encode_mean_ns\":%.1f}\n",
           name, len, nodes, identical ? "true" : "false", dec_med, dec_mean, enc_med, enc_mean);
    wa_buf_cleanup(&out);
    wa_arena_cleanup(&keep);
    return identical ? 0 : 1;
}

int main(int argc, char **argv)
{
    FILE *f;
    uint8_t *buf;
    size_t len, pos = 0;
    double seconds = 0.5;
    unsigned long fixed = 0;
    int rc = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_codec <corpus.bin> [seconds | --iters=N]  (run "
                        "bench/codec/bench.mjs)\n");
        return 2;
    }
    if (argc > 2 && strncmp(argv[2], "--iters=", 8) == 0)
        fixed = strtoul(argv[2] + 8, NULL, 10);
    else if (argc > 2)
        seconds = atof(argv[2]);
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
        rc |= bench_one(name, buf + pos, fl, seconds, fixed);
        pos += fl;
    }
    free(buf);
    (void)sink;
    return rc;
}
