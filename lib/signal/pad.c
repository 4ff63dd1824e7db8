/*
 * pad.c - WhatsApp's random padding of message plaintexts (before Signal encryption).
 *
 * Baileys 7 lib/Utils/generics.js: writeRandomPadMax16 appends n bytes of value n with
 * n = (random byte & 0x0f) + 1, i.e. 1..16; unpadRandomMax16 drops the last byte's value of
 * bytes after checking only that it is <= the length. whatsmeow pads 1..15 and also checks
 * that every pad byte equals n. We pad like Baileys (and WhatsApp Web, whose function names
 * Baileys keeps) and check like whatsmeow, refusing n == 0 as well: every client pads.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <string.h>

#include "core/util.h"
#include "signal/signal.h"
#include "wa/error.h"

int wa_signal_pad(const uint8_t *plain, size_t len, wa_buf *out)
{
    uint8_t pad[WA_SIGNAL_PAD_MAX], r;
    size_t n;
    int rc;

    if ((!plain && len) || !out)
        return WA_EINVAL;
    rc = wa_random(&r, 1);
    if (rc)
        return rc;
    n = (size_t)(r & 0x0f) + 1;
    memset(pad, (int)n, n);
    if (len > SIZE_MAX - n)
        return WA_ELIMIT;
    rc = wa_buf_reserve(out, len + n);
    if (rc)
        return rc;
    if (len)
        wa_buf_append(out, plain, len); /* reserved: cannot fail */
    wa_buf_append(out, pad, n);
    return 0;
}

int wa_signal_unpad(const uint8_t *p, size_t len, size_t *plain_len)
{
    size_t n, i;
    uint8_t bad = 0;

    if ((!p && len) || !plain_len)
        return WA_EINVAL;
    if (len == 0)
        return WA_EPROTO;
    n = p[len - 1];
    if (n == 0 || n > len)
        return WA_EPROTO;
    for (i = len - n; i < len; i++)
        bad |= (uint8_t)(p[i] ^ n);
    if (bad)
        return WA_EPROTO;
    *plain_len = len - n;
    return 0;
}
