/* strbuf.c - capped text buffer (see strbuf.h).
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/error.h"

void wg_strbuf_init(wg_strbuf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

void wg_strbuf_cleanup(wg_strbuf *b)
{
    free(b->data);
    wg_strbuf_init(b, b->max);
}

static int reserve(wg_strbuf *b, size_t extra)
{
    size_t need, ncap;
    char *p;

    if (b->err)
        return b->err;
    if (extra > b->max - b->len) {
        b->err = WA_ELIMIT;
        return b->err;
    }
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap *= 2;
    p = realloc(b->data, ncap);
    if (!p) {
        b->err = WA_ENOMEM;
        return b->err;
    }
    b->data = p;
    b->cap = ncap;
    return 0;
}

int wg_strbuf_append(wg_strbuf *b, const char *s, size_t n)
{
    int rc = reserve(b, n);

    if (rc)
        return rc;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int wg_strbuf_puts(wg_strbuf *b, const char *s)
{
    return wg_strbuf_append(b, s, strlen(s));
}

int wg_strbuf_printf(wg_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return WA_EINVAL;
    if ((rc = reserve(b, (size_t)n)))
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *wg_strbuf_steal(wg_strbuf *b, size_t *len)
{
    char *p;

    if (b->err) {
        wg_strbuf_cleanup(b);
        return NULL;
    }
    if (!b->data && reserve(b, 0))
        return NULL;
    p = b->data;
    *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
