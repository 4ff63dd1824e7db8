/*
 * alloc.h - libwa's allocation wrappers.
 *
 * All heap allocation in libwa goes through these so that tests can make the Nth allocation
 * fail (wa__alloc_fail_after) and check that every caller handles NULL. The library never
 * aborts on allocation failure.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_CORE_ALLOC_H
#define WA_CORE_ALLOC_H

#include <stddef.h>

void *wa_malloc(size_t n);
void *wa_calloc(size_t count, size_t size);
void *wa_realloc(void *p, size_t n);
void wa_free(void *p);

/* Test hook: after `n` more successful allocations, every allocation fails until reset with
 * n < 0. Not thread-safe; for single-threaded tests only. */
void wa__alloc_fail_after(long n);

#endif
