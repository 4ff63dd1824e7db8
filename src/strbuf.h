/*
 * strbuf.h - a text buffer with a mandatory maximum for building HTTP bodies (metrics text,
 * terminal QR). malloc-based because bodies are handed to the HTTP server, which free()s them.
 * The first failed append (over max, out of memory) makes the buffer sticky-failed.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_STRBUF_H
#define WG_STRBUF_H

#include <stddef.h>

#include "core/log.h" /* WA__PRINTF */

typedef struct wg_strbuf {
    char *data; /* NUL-terminated when not NULL */
    size_t len, cap, max;
    int err; /* 0, WA_ELIMIT or WA_ENOMEM: sticky */
} wg_strbuf;

void wg_strbuf_init(wg_strbuf *b, size_t max);
void wg_strbuf_cleanup(wg_strbuf *b);
int wg_strbuf_append(wg_strbuf *b, const char *s, size_t n);
int wg_strbuf_puts(wg_strbuf *b, const char *s);
int wg_strbuf_printf(wg_strbuf *b, const char *fmt, ...) WA__PRINTF(2, 3);
/* Take the text (malloc'd, caller frees); the buffer becomes empty. NULL after an error. */
char *wg_strbuf_steal(wg_strbuf *b, size_t *len);

#endif
