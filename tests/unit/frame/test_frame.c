/* test_frame.c - WA framing: intro and ED header layout, every split point of a stream (with
 * zero-length frames) gives the same frames, limits, bad magic, idle memory.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/util.h"
#include "frame/frame.h"
#include "wa/error.h"

#define MAX_FRAMES 32

/* set while reading complete streams: after the final drain the reader holds no memory */
static int expect_drained;

typedef struct collected {
    int n;
    size_t len[MAX_FRAMES];
    uint8_t *data[MAX_FRAMES];
    int rc; /* first error other than WA_EAGAIN, or 0 */
    uint8_t dict;
    uint8_t routing[64];
    size_t routing_len;
    int intro_ok;
} collected;

static void collected_free(collected *c)
{
    int i;

    for (i = 0; i < c->n; i++)
        free(c->data[i]);
    c->n = 0;
}

/* drain every frame available */
static int drain(wa_frame *f, collected *c)
{
    wa_slice s;
    int rc;

    while ((rc = wa_frame_next(f, &s)) == 0) {
        assert_true(c->n < MAX_FRAMES);
        c->len[c->n] = s.len;
        c->data[c->n] = malloc(s.len ? s.len : 1);
        memcpy(c->data[c->n], s.ptr, s.len);
        c->n++;
    }
    return rc;
}

/* Feed `stream` to a fresh reader in pieces cut at the given offsets (ascending), draining
 * after every piece. */
static void read_pieces(int role, const uint8_t *stream, size_t len, const size_t *cuts, int ncuts,
                        collected *c)
{
    wa_frame f;
    size_t pos = 0;
    int i, rc = 0;

    memset(c, 0, sizeof *c);
    wa_frame_init(&f, role);
    for (i = 0; i <= ncuts && !rc; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        rc = wa_frame_feed(&f, stream + pos, end - pos);
        pos = end;
        if (!rc) {
            rc = drain(&f, c);
            if (rc == WA_EAGAIN)
                rc = 0;
        }
    }
    c->rc = rc;
    if (!rc && expect_drained) {
        /* fully drained: nothing buffered, nothing allocated */
        assert_null(f.in.data);
    }
    if (role == WA_FRAME_SERVER) {
        wa_slice r;
        if (wa_frame_peer_intro(&f, &c->dict, &r) == 0) {
            c->intro_ok = 1;
            assert_true(r.len <= sizeof c->routing);
            if (r.len)
                memcpy(c->routing, r.ptr, r.len);
            c->routing_len = r.len;
        }
    }
    wa_frame_cleanup(&f);
}

static void assert_same(const collected *a, const collected *b)
{
    int i;

    assert_int_equal(a->rc, b->rc);
    assert_int_equal(a->n, b->n);
    for (i = 0; i < a->n; i++) {
        assert_int_equal(a->len[i], b->len[i]);
        if (a->len[i])
            assert_memory_equal(a->data[i], b->data[i], a->len[i]);
    }
    assert_int_equal(a->intro_ok, b->intro_ok);
    assert_int_equal(a->dict, b->dict);
    assert_int_equal(a->routing_len, b->routing_len);
    assert_memory_equal(a->routing, b->routing, a->routing_len);
}

/* Every single cut point and every pair of cut points, plus byte-by-byte, gives `want`. */
static void check_all_splits(int role, const uint8_t *stream, size_t len, const collected *want)
{
    collected c;
    size_t cuts[2], *all;
    size_t i, j;

    expect_drained = 1;
    for (i = 0; i <= len; i++) {
        cuts[0] = i;
        read_pieces(role, stream, len, cuts, 1, &c);
        assert_same(&c, want);
        collected_free(&c);
        for (j = i; j <= len && len <= 64; j++) {
            cuts[1] = j;
            read_pieces(role, stream, len, cuts, 2, &c);
            assert_same(&c, want);
            collected_free(&c);
        }
    }
    all = malloc((len + 1) * sizeof *all);
    for (i = 0; i < len; i++)
        all[i] = i;
    read_pieces(role, stream, len, all, (int)len, &c);
    assert_same(&c, want);
    collected_free(&c);
    free(all);
}

static void test_client_layout(void **state)
{
    wa_frame f;
    wa_buf out;
    static const uint8_t want1[] = {0x57, 0x41, 0x06, 0x02, 0x00, 0x00, 0x03, 'a', 'b', 'c'};
    static const uint8_t want2[] = {0x00, 0x00, 0x00};
    static const uint8_t want_ed[] = {0x45, 0x44, 0x00, 0x01, 0x00, 0x00, 0x03, 0x08, 0x05,
                                      0x09, 0x57, 0x41, 0x06, 0x03, 0x00, 0x00, 0x01, 'x'};
    static const uint8_t routing[] = {0x08, 0x05, 0x09};
    uint8_t intro[4];

    (void)state;
    wa_buf_init(&out, 1 << 20);
    wa_frame_init(&f, WA_FRAME_CLIENT);
    assert_int_equal(wa_frame_write(&f, (const uint8_t *)"abc", 3, &out), WA_ESTATE);
    assert_int_equal(wa_frame_peer_intro(&f, NULL, NULL), WA_ESTATE);
    assert_int_equal(wa_frame_set_intro(&f, 2, NULL, 0), 0);
    assert_int_equal(wa_frame_write(&f, (const uint8_t *)"abc", 3, &out), 0);
    assert_int_equal(out.len, sizeof want1);
    assert_memory_equal(out.data, want1, sizeof want1);
    wa_buf_reset(&out);
    assert_int_equal(wa_frame_write(&f, NULL, 0, &out), 0); /* zero-length frame, no intro */
    assert_int_equal(out.len, sizeof want2);
    assert_memory_equal(out.data, want2, sizeof want2);
    assert_int_equal(wa_frame_set_intro(&f, 3, NULL, 0), WA_ESTATE); /* too late */
    wa_frame_cleanup(&f);

    wa_buf_reset(&out);
    wa_frame_init(&f, WA_FRAME_CLIENT);
    assert_int_equal(wa_frame_set_intro(&f, 3, routing, sizeof routing), 0);
    assert_int_equal(wa_frame_write(&f, (const uint8_t *)"x", 1, &out), 0);
    assert_int_equal(out.len, sizeof want_ed);
    assert_memory_equal(out.data, want_ed, sizeof want_ed);
    wa_frame_cleanup(&f);

    /* server role has no intro to set and writes plain frames */
    wa_buf_reset(&out);
    wa_frame_init(&f, WA_FRAME_SERVER);
    assert_int_equal(wa_frame_set_intro(&f, 3, NULL, 0), WA_ESTATE);
    assert_int_equal(wa_frame_write(&f, (const uint8_t *)"abc", 3, &out), 0);
    assert_int_equal(out.len, 6);
    assert_memory_equal(out.data, "\0\0\3abc", 6);
    wa_frame_cleanup(&f);

    wa_frame_make_intro(intro, 3);
    assert_memory_equal(intro, "WA\x06\x03", 4);
    wa_buf_cleanup(&out);
}

static void test_write_limits(void **state)
{
    wa_frame f;
    wa_buf out;
    uint8_t *big;

    (void)state;
    big = calloc(1, (size_t)WA_FRAME_MAX_LEN + 1);
    assert_non_null(big);
    wa_frame_init(&f, WA_FRAME_SERVER);
    wa_buf_init(&out, 10);
    assert_int_equal(wa_frame_write(&f, big, 8, &out), WA_ELIMIT); /* past the out cap */
    assert_int_equal(out.len, 0);
    wa_buf_cleanup(&out);
    wa_buf_init(&out, (size_t)WA_FRAME_MAX_LEN + 16);
    assert_int_equal(wa_frame_write(&f, big, (size_t)WA_FRAME_MAX_LEN + 1, &out), WA_ELIMIT);
    assert_int_equal(out.len, 0);
    /* the largest frame round-trips through a client reader */
    assert_int_equal(wa_frame_write(&f, big, WA_FRAME_MAX_LEN, &out), 0);
    assert_int_equal(out.len, (size_t)WA_FRAME_MAX_LEN + 3);
    assert_memory_equal(out.data, "\xff\xff\xff", 3);
    wa_frame_cleanup(&f);
    {
        wa_frame r;
        wa_slice s;
        wa_frame_init(&r, WA_FRAME_CLIENT);
        assert_int_equal(wa_frame_feed(&r, out.data, out.len - 1), 0);
        assert_int_equal(wa_frame_next(&r, &s), WA_EAGAIN);
        assert_int_equal(wa_frame_feed(&r, out.data + out.len - 1, 1), 0);
        assert_int_equal(wa_frame_next(&r, &s), 0);
        assert_int_equal(s.len, WA_FRAME_MAX_LEN);
        assert_int_equal(wa_frame_next(&r, &s), WA_EAGAIN);
        assert_null(r.in.data);
        wa_frame_cleanup(&r);
    }
    wa_buf_cleanup(&out);
    free(big);
}

/* Build a client stream: [ED header] intro, then frames of the given sizes (byte i of frame k
 * is k + i). */
static size_t build_stream(uint8_t *buf, size_t cap, uint8_t dict, const uint8_t *routing,
                           size_t rlen, const size_t *sizes, int n, collected *want)
{
    wa_frame f;
    wa_buf out;
    uint8_t payload[512];
    size_t len;
    int k;

    memset(want, 0, sizeof *want);
    wa_buf_init(&out, cap);
    wa_frame_init(&f, WA_FRAME_CLIENT);
    assert_int_equal(wa_frame_set_intro(&f, dict, routing, rlen), 0);
    for (k = 0; k < n; k++) {
        size_t i;
        assert_true(sizes[k] <= sizeof payload);
        for (i = 0; i < sizes[k]; i++)
            payload[i] = (uint8_t)(k + i);
        assert_int_equal(wa_frame_write(&f, payload, sizes[k], &out), 0);
        want->len[k] = sizes[k];
        want->data[k] = malloc(sizes[k] ? sizes[k] : 1);
        memcpy(want->data[k], payload, sizes[k]);
    }
    want->n = n;
    want->intro_ok = 1;
    want->dict = dict;
    want->routing_len = routing ? rlen : 0;
    if (rlen)
        memcpy(want->routing, routing, rlen);
    wa_frame_cleanup(&f);
    memcpy(buf, out.data, out.len);
    len = out.len;
    wa_buf_cleanup(&out);
    return len;
}

static void test_server_splits(void **state)
{
    static const size_t sizes[] = {0, 5, 0, 0, 1, 17, 0};
    static const uint8_t routing[] = {0x08, 0x08, 0x08, 0x02};
    uint8_t stream[1024];
    collected want;
    size_t len;

    (void)state;
    /* no ED header, leading and trailing zero-length frames */
    len = build_stream(stream, sizeof stream, 2, NULL, 0, sizes, 7, &want);
    assert_int_equal(len, 4 + 7 * 3 + 5 + 1 + 17);
    check_all_splits(WA_FRAME_SERVER, stream, len, &want);
    collected_free(&want);
    /* with an ED header */
    len = build_stream(stream, sizeof stream, 3, routing, sizeof routing, sizes, 7, &want);
    check_all_splits(WA_FRAME_SERVER, stream, len, &want);
    collected_free(&want);
    /* the intro alone: no frames, intro known */
    len = build_stream(stream, sizeof stream, 3, routing, sizeof routing, sizes, 1, &want);
    collected_free(&want); /* keeps the intro fields */
    check_all_splits(WA_FRAME_SERVER, stream, len - 3, &want);
    /* ED header with empty routing info */
    len = build_stream(stream, sizeof stream, 3, (const uint8_t *)"", 0, sizes + 1, 2, &want);
    assert_memory_equal(stream, "ED\0\1\0\0\0WA\6\3", 11);
    check_all_splits(WA_FRAME_SERVER, stream, len, &want);
    collected_free(&want);
}

static void test_client_reader_splits(void **state)
{
    /* server -> client: plain frames, including several zero-length ones in a row */
    static const uint8_t stream[] = {0, 0, 0, 0, 0, 2, 'h', 'i', 0, 0, 0,
                                     0, 0, 0, 0, 0, 1, 'x', 0,   0, 0};
    collected want;

    (void)state;
    memset(&want, 0, sizeof want);
    want.n = 6;
    want.len[0] = 0;
    want.len[1] = 2;
    want.data[1] = (uint8_t *)"hi";
    want.len[2] = 0;
    want.len[3] = 0;
    want.len[4] = 1;
    want.data[4] = (uint8_t *)"x";
    want.len[5] = 0;
    check_all_splits(WA_FRAME_CLIENT, stream, sizeof stream, &want);
}

/* A stream that must fail with `err` at byte `at` (1-based count of bytes needed to see it):
 * every split gives the error, and feeding only at-1 bytes does not. */
static void check_bad(int role, const uint8_t *stream, size_t len, size_t at, int err)
{
    collected c;
    size_t cut;

    expect_drained = 0;
    for (cut = 0; cut <= len; cut++) {
        read_pieces(role, stream, len, &cut, 1, &c);
        assert_int_equal(c.rc, err);
        assert_int_equal(c.n, 0);
        collected_free(&c);
    }
    read_pieces(role, stream, at - 1, NULL, 0, &c);
    assert_int_equal(c.rc, 0);
    collected_free(&c);
}

static void test_bad_magic(void **state)
{
    uint8_t ed_long[16] = {'E', 'D', 0, 1, 0x00, 0x10, 0x01};

    (void)state;
    check_bad(WA_FRAME_SERVER, (const uint8_t *)"GET / HTTP/1.1", 14, 1, WA_EPROTO);
    check_bad(WA_FRAME_SERVER, (const uint8_t *)"WB\x06\x02\0\0\0", 7, 2, WA_EPROTO);
    check_bad(WA_FRAME_SERVER, (const uint8_t *)"WA\x05\x02\0\0\0", 7, 3, WA_EPROTO);
    check_bad(WA_FRAME_SERVER, (const uint8_t *)"EX\0\1\0\0\0WA\6\2", 11, 2, WA_EPROTO);
    check_bad(WA_FRAME_SERVER, (const uint8_t *)"ED\0\2\0\0\0WA\6\2", 11, 4, WA_EPROTO);
    /* after a good ED header with 2 bytes of routing, a bad intro */
    check_bad(WA_FRAME_SERVER, (const uint8_t *)"ED\0\1\0\0\2abWZ\6\2", 13, 11, WA_EPROTO);
    /* routing info longer than WA_FRAME_ROUTING_MAX (0x1001) */
    check_bad(WA_FRAME_SERVER, ed_long, sizeof ed_long, 7, WA_ELIMIT);
}

static void test_oversize_sticky(void **state)
{
    wa_frame f;
    wa_slice s;
    static const uint8_t stream[] = {0, 0, 100, 0, 0, 101};
    uint8_t payload[100] = {0};

    (void)state;
    wa_frame_init(&f, WA_FRAME_CLIENT);
    assert_int_equal(wa_frame_set_max_len(&f, 0), WA_EINVAL);
    assert_int_equal(wa_frame_set_max_len(&f, (size_t)WA_FRAME_MAX_LEN + 1), WA_EINVAL);
    assert_int_equal(wa_frame_set_max_len(&f, 100), 0);
    assert_int_equal(wa_frame_feed(&f, stream, 3), 0);
    assert_int_equal(wa_frame_feed(&f, payload, 100), 0);
    assert_int_equal(wa_frame_next(&f, &s), 0); /* exactly the maximum is fine */
    assert_int_equal(s.len, 100);
    assert_int_equal(wa_frame_next(&f, &s), WA_EAGAIN);
    assert_int_equal(wa_frame_feed(&f, stream + 3, 3), 0);
    assert_int_equal(wa_frame_next(&f, &s), WA_ELIMIT);
    assert_int_equal(wa_frame_next(&f, &s), WA_ELIMIT);
    assert_int_equal(wa_frame_feed(&f, payload, 1), WA_ELIMIT);
    wa_frame_cleanup(&f);
}

static void test_idle_memory(void **state)
{
    wa_frame f;
    wa_slice s;
    uint8_t *big;
    size_t n = 200000;

    (void)state;
    big = calloc(1, n + 4);
    wa_store_be24(big, (uint32_t)(n - 3));
    big[n] = 0; /* start of a second frame: 1 of its 3 header bytes */
    wa_frame_init(&f, WA_FRAME_CLIENT);
    assert_int_equal(wa_frame_feed(&f, big, n + 1), 0);
    assert_int_equal(wa_frame_next(&f, &s), 0);
    assert_int_equal(s.len, n - 3);
    assert_int_equal(wa_frame_next(&f, &s), WA_EAGAIN);
    /* one byte left: the big buffer was given back */
    assert_int_equal(f.in.len, 1);
    assert_true(f.in.cap <= WA_FRAME_SHRINK_ABOVE);
    assert_int_equal(wa_frame_feed(&f, (const uint8_t *)"\0\0", 2), 0);
    assert_int_equal(wa_frame_next(&f, &s), 0);
    assert_int_equal(s.len, 0);
    assert_int_equal(wa_frame_next(&f, &s), WA_EAGAIN);
    assert_null(f.in.data);
    wa_frame_cleanup(&f);
    free(big);
}

static void test_alloc_failure(void **state)
{
    wa_frame f;
    wa_slice s;
    wa_buf out;

    (void)state;
    wa_frame_init(&f, WA_FRAME_SERVER);
    wa__alloc_fail_after(0);
    assert_int_equal(wa_frame_feed(&f, (const uint8_t *)"WA\6\2", 4), WA_ENOMEM);
    wa__alloc_fail_after(-1);
    assert_int_equal(wa_frame_next(&f, &s), WA_ENOMEM); /* sticky */
    wa_frame_cleanup(&f);

    /* routing copy fails after the buffer allocation succeeded */
    wa_frame_init(&f, WA_FRAME_SERVER);
    wa__alloc_fail_after(1);
    assert_int_equal(wa_frame_feed(&f, (const uint8_t *)"ED\0\1\0\0\1zWA\6\2", 12), WA_ENOMEM);
    wa__alloc_fail_after(-1);
    wa_frame_cleanup(&f);

    wa_frame_init(&f, WA_FRAME_CLIENT);
    wa__alloc_fail_after(0);
    assert_int_equal(wa_frame_set_intro(&f, 2, (const uint8_t *)"r", 1), WA_ENOMEM);
    wa__alloc_fail_after(-1);
    assert_int_equal(wa_frame_set_intro(&f, 2, (const uint8_t *)"r", 1), 0);
    wa_buf_init(&out, 100);
    wa__alloc_fail_after(0);
    assert_int_equal(wa_frame_write(&f, (const uint8_t *)"abc", 3, &out), WA_ENOMEM);
    wa__alloc_fail_after(-1);
    assert_int_equal(out.len, 0);
    /* the intro was not consumed by the failed write */
    assert_int_equal(wa_frame_write(&f, (const uint8_t *)"abc", 3, &out), 0);
    assert_int_equal(out.len, 7 + 1 + 4 + 3 + 3);
    wa_buf_cleanup(&out);
    wa_frame_cleanup(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_layout), cmocka_unit_test(test_write_limits),
        cmocka_unit_test(test_server_splits), cmocka_unit_test(test_client_reader_splits),
        cmocka_unit_test(test_bad_magic),     cmocka_unit_test(test_oversize_sticky),
        cmocka_unit_test(test_idle_memory),   cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
