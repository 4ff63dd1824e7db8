/* buf.c - capped growable byte buffers.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include "core/buf.h"

#include <string.h>

#include "core/alloc.h"
#include "core/util.h"
#include "wa/error.h"

void wa_buf_init(wa_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max ? max : 1;
}

void wa_buf_cleanup(wa_buf *b)
{
    wa_free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void wa_buf_wipe_cleanup(wa_buf *b)
{
    if (b->data)
        wa_wipe(b->data, b->cap);
    wa_buf_cleanup(b);
}

int wa_buf_reserve(wa_buf *b, size_t extra)
{
    size_t need, ncap;
    uint8_t *p;

    if (extra > b->max - b->len)
        return WA_ELIMIT;
    need = b->len + extra;
    if (need <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap > b->max)
        ncap = b->max;
    p = wa_realloc(b->data, ncap);
    if (!p)
        return WA_ENOMEM;
    b->data = p;
    b->cap = ncap;
    return 0;
}

int wa_buf_append(wa_buf *b, const void *p, size_t n)
{
    int rc;

    if (n == 0)
        return 0;
    rc = wa_buf_reserve(b, n);
    if (rc)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int wa_buf_append_byte(wa_buf *b, uint8_t c)
{
    return wa_buf_append(b, &c, 1);
}

void wa_buf_consume(wa_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void wa_buf_release_idle(wa_buf *b)
{
    if (b->len == 0)
        wa_buf_cleanup(b);
}

uint8_t *wa_buf_steal(wa_buf *b, size_t *len)
{
    uint8_t *p = b->data;

    *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
