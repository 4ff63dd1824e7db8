/* alloc.c - allocation wrappers with a failure-injection hook for tests.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include "core/alloc.h"

#include <stdlib.h>

static long fail_countdown = -1;

static int should_fail(void)
{
    if (fail_countdown < 0)
        return 0;
    if (fail_countdown == 0)
        return 1;
    fail_countdown--;
    return 0;
}

void wa__alloc_fail_after(long n)
{
    fail_countdown = n;
}

void *wa_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *wa_calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    if (count == 0 || size == 0)
        count = size = 1;
    return calloc(count, size);
}

void *wa_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void wa_free(void *p)
{
    free(p);
}
