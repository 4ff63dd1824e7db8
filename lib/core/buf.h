/*
 * buf.h - the three buffer kinds of libwa (see docs/architecture.md):
 *
 *   wa_slice  a borrowed {ptr, len}; never owns memory.
 *   wa_buf    a growable byte buffer with a mandatory maximum (like curl's bufq): every append
 *             that would pass `max` fails with WA_ELIMIT and leaves the buffer unchanged.
 *   wa_arena  (core/arena.h) one allocation region per decoded stanza, freed at once.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_CORE_BUF_H
#define WA_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct wa_slice {
    const uint8_t *ptr;
    size_t len;
} wa_slice;

static inline wa_slice wa_slice_make(const void *ptr, size_t len)
{
    wa_slice s;
    s.ptr = (const uint8_t *)ptr;
    s.len = len;
    return s;
}

typedef struct wa_buf {
    uint8_t *data; /* owned; NULL until the first append */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes allocated */
    size_t max;    /* hard cap on len; set at init, never 0 */
} wa_buf;

/* Initialise an empty buffer that may grow to `max` bytes. Allocates nothing. */
void wa_buf_init(wa_buf *b, size_t max);
/* Free the storage. The buffer is empty and reusable afterwards (same max). */
void wa_buf_cleanup(wa_buf *b);
/* Like wa_buf_cleanup, but first overwrites the whole allocation (for key material). */
void wa_buf_wipe_cleanup(wa_buf *b);
/* Make room for `extra` more bytes. WA_ELIMIT past max, WA_ENOMEM on allocation failure. */
int wa_buf_reserve(wa_buf *b, size_t extra);
int wa_buf_append(wa_buf *b, const void *p, size_t n);
int wa_buf_append_byte(wa_buf *b, uint8_t c);
/* Drop the first n bytes (n > len drops everything). */
void wa_buf_consume(wa_buf *b, size_t n);
/* Forget the contents but keep the allocation. */
static inline void wa_buf_reset(wa_buf *b)
{
    b->len = 0;
}
/* If empty, give the allocation back (idle connections keep no buffers). */
void wa_buf_release_idle(wa_buf *b);
/* Take ownership of the data (caller frees with wa_free); the buffer becomes empty. */
uint8_t *wa_buf_steal(wa_buf *b, size_t *len);

#endif
