/* test_core.c - errors, capped buffers, arena, hex/base64, constant-time helpers, log.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "wa/error.h"

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(wa_strerror(WA_OK), "success");
    assert_string_equal(wa_strerror(WA_EAGAIN), "need more input");
    assert_string_equal(wa_err_name(WA_ELIMIT), "WA_ELIMIT");
    assert_string_equal(wa_strerror(-9999), "unknown error");
    /* every code has a distinct, non-empty text */
#define CHECK(name, value, text) assert_true(strlen(wa_strerror(value)) > 0);
    WA_ERRNO_MAP(CHECK)
#undef CHECK
}

static void test_buf_cap(void **state)
{
    wa_buf b;
    uint8_t big[100];

    (void)state;
    memset(big, 'x', sizeof big);
    wa_buf_init(&b, 10);
    assert_int_equal(wa_buf_append(&b, "hello", 5), 0);
    assert_int_equal(wa_buf_append(&b, "world", 5), 0);
    assert_int_equal(b.len, 10);
    /* one byte past the cap fails and changes nothing */
    assert_int_equal(wa_buf_append_byte(&b, '!'), WA_ELIMIT);
    assert_int_equal(b.len, 10);
    assert_memory_equal(b.data, "helloworld", 10);
    wa_buf_consume(&b, 5);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "world", 5);
    assert_int_equal(wa_buf_append(&b, big, 6), WA_ELIMIT);
    assert_int_equal(wa_buf_append(&b, big, 5), 0);
    wa_buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    wa_buf_release_idle(&b);
    assert_null(b.data);
    wa_buf_cleanup(&b);
}

static void test_buf_alloc_failure(void **state)
{
    wa_buf b;

    (void)state;
    wa_buf_init(&b, 1 << 20);
    wa__alloc_fail_after(0);
    assert_int_equal(wa_buf_append(&b, "abc", 3), WA_ENOMEM);
    wa__alloc_fail_after(-1);
    assert_int_equal(b.len, 0);
    assert_int_equal(wa_buf_append(&b, "abc", 3), 0);
    wa_buf_wipe_cleanup(&b);
}

static void test_arena(void **state)
{
    wa_arena a;
    char *s;
    void *p;
    int i;

    (void)state;
    wa_arena_init(&a, 64 * 1024);
    s = wa_arena_strndup(&a, "tag", 3);
    assert_string_equal(s, "tag");
    for (i = 0; i < 100; i++) {
        p = wa_arena_alloc(&a, 100);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, i, 100);
    }
    assert_string_equal(s, "tag"); /* earlier allocations untouched */
    assert_null(wa_arena_alloc(&a, 64 * 1024 + 1));
    /* fill up to the cap: eventually fails, never exceeds it */
    while (wa_arena_alloc(&a, 1000) != NULL)
        ;
    assert_true(a.total <= a.max);
    wa_arena_cleanup(&a);
    assert_int_equal(a.total, 0);
}

static void test_hex_base64(void **state)
{
    uint8_t bin[5] = {0x00, 0xff, 0x10, 0xab, 0x7f}, out[16];
    char hex[11], b64[16];
    size_t n;

    (void)state;
    wa_hex_encode(hex, bin, 5);
    assert_string_equal(hex, "00ff10ab7f");
    assert_int_equal(wa_hex_decode(out, 5, "00FF10ab7f", 10), 0);
    assert_memory_equal(out, bin, 5);
    assert_int_equal(wa_hex_decode(out, 5, "00FF10ab7g", 10), WA_EINVAL);
    assert_int_equal(wa_hex_decode(out, 5, "00FF", 4), WA_EINVAL);

    wa_base64_encode(b64, (const uint8_t *)"foobar", 6, 0);
    assert_string_equal(b64, "Zm9vYmFy");
    wa_base64_encode(b64, (const uint8_t *)"fooba", 5, 0);
    assert_string_equal(b64, "Zm9vYmE=");
    wa_base64_encode(b64, (const uint8_t *)"foob", 4, 0);
    assert_string_equal(b64, "Zm9vYg==");
    wa_base64_encode(b64, bin, 5, 1);
    assert_int_equal(strlen(b64), wa_base64_encoded_len(5, 1));
    assert_int_equal(wa_base64_decode(out, sizeof out, &n, b64, strlen(b64)), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, bin, 5);
    assert_int_equal(wa_base64_decode(out, sizeof out, &n, "Zm9vYg==", 8), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "foob", 4);
    assert_int_equal(wa_base64_decode(out, sizeof out, &n, "Zm9v*g==", 8), WA_EINVAL);
    assert_int_equal(wa_base64_decode(out, 2, &n, "Zm9vYg==", 8), WA_ELIMIT);
    assert_int_equal(wa_base64_decode(out, sizeof out, &n, "Z", 1), WA_EINVAL);
}

static void test_ct(void **state)
{
    (void)state;
    assert_true(wa_ct_equal("abcd", "abcd", 4));
    assert_false(wa_ct_equal("abcd", "abce", 4));
    assert_true(wa_ct_streq("secret", "secret"));
    assert_false(wa_ct_streq("secret", "secret2"));
    assert_false(wa_ct_streq("", "x"));
    assert_true(wa_ct_streq("", ""));
}

static int sink_calls;
static char sink_last[128];
static void sink(int level, const char *component, const char *msg, void *ud)
{
    (void)level;
    (void)component;
    (void)ud;
    sink_calls++;
    snprintf(sink_last, sizeof sink_last, "%s", msg);
}

static void test_log_levels(void **state)
{
    int lvl;

    (void)state;
    wa_log_set_sink(sink, NULL);
    wa_log_set_level(WA_LOG_WARN);
    wa_log_info("t", "hidden %d", 1);
    assert_int_equal(sink_calls, 0);
    wa_log_warn("t", "shown %d", 2);
    assert_int_equal(sink_calls, 1);
    assert_string_equal(sink_last, "shown 2");
    assert_int_equal(wa_log_level_parse("DEBUG", &lvl), 0);
    assert_int_equal(lvl, WA_LOG_DEBUG);
    assert_int_equal(wa_log_level_parse("loud", &lvl), WA_EINVAL);
    wa_log_set_sink(NULL, NULL);
    wa_log_set_level(WA_LOG_INFO);
}

static void test_random(void **state)
{
    uint8_t a[32], b[32];
    int i;

    (void)state;
    assert_int_equal(wa_random(a, sizeof a), 0);
    assert_int_equal(wa_random(b, sizeof b), 0);
    assert_memory_not_equal(a, b, sizeof a);
    for (i = 0; i < 1000; i++)
        assert_true(wa_random_below(7) < 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror),          cmocka_unit_test(test_buf_cap),
        cmocka_unit_test(test_buf_alloc_failure), cmocka_unit_test(test_arena),
        cmocka_unit_test(test_hex_base64),        cmocka_unit_test(test_ct),
        cmocka_unit_test(test_log_levels),        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
