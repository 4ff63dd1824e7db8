/* arena.c - chunked bump allocator with a size cap.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include "core/arena.h"

#include <stdint.h>
#include <string.h>

#include "core/alloc.h"

#define ARENA_CHUNK_MIN 1024
#define ARENA_ALIGN     16

struct wa_arena_chunk {
    wa_arena_chunk *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    /* data follows, aligned */
};

#define CHUNK_HDR ((sizeof(wa_arena_chunk) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))

void wa_arena_init(wa_arena *a, size_t max)
{
    a->head = NULL;
    a->total = 0;
    a->max = max;
}

void *wa_arena_alloc(wa_arena *a, size_t n)
{
    wa_arena_chunk *c = a->head;
    size_t need, size;

    if (n > a->max)
        return NULL;
    need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need == 0)
        need = ARENA_ALIGN;
    if (!c || c->size - c->used < need) {
        size = c ? c->size * 2 : ARENA_CHUNK_MIN;
        if (size < need)
            size = need;
        if (size > a->max - a->total) {
            if (need > a->max - a->total)
                return NULL;
            size = need;
        }
        c = wa_malloc(CHUNK_HDR + size);
        if (!c)
            return NULL;
        c->next = a->head;
        c->size = size;
        c->used = 0;
        a->head = c;
        a->total += size;
    }
    c->used += need;
    return (uint8_t *)c + CHUNK_HDR + c->used - need;
}

void *wa_arena_zalloc(wa_arena *a, size_t n)
{
    void *p = wa_arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *wa_arena_strndup(wa_arena *a, const char *s, size_t n)
{
    char *p;

    if (n == SIZE_MAX)
        return NULL;
    p = wa_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void *wa_arena_memdup(wa_arena *a, const void *p, size_t n)
{
    void *q = wa_arena_alloc(a, n);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

void wa_arena_cleanup(wa_arena *a)
{
    wa_arena_chunk *c = a->head, *next;

    while (c) {
        next = c->next;
        wa_free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}
