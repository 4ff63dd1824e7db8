/*
 * arena.h - a bump allocator for one decoded stanza: the whole node tree (tags, attributes,
 * children, binary content) lives in one arena and is freed at once. The arena has a mandatory
 * maximum total size, so a hostile input cannot make the decoder allocate without bound.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_CORE_ARENA_H
#define WA_CORE_ARENA_H

#include <stddef.h>

typedef struct wa_arena_chunk wa_arena_chunk;

typedef struct wa_arena {
    wa_arena_chunk *head; /* newest chunk first */
    size_t total;         /* bytes allocated in chunks */
    size_t max;           /* cap on total */
} wa_arena;

void wa_arena_init(wa_arena *a, size_t max);
/* 16-byte aligned, uninitialised; NULL past max or on allocation failure. */
void *wa_arena_alloc(wa_arena *a, size_t n);
void *wa_arena_zalloc(wa_arena *a, size_t n);
/* Copy of n bytes plus a terminating NUL. */
char *wa_arena_strndup(wa_arena *a, const char *s, size_t n);
void *wa_arena_memdup(wa_arena *a, const void *p, size_t n);
/* Free everything; the arena is empty and reusable afterwards. */
void wa_arena_cleanup(wa_arena *a);

#endif
