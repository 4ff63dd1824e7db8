/*
 * utf8.c - UTF-8 validation for text messages and close reasons (RFC 6455 5.6, 8.1; the
 * well-formed byte sequences of RFC 3629 section 4 / Unicode table 3-7).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "ws/internal.h"

int wa__ws_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c = p[i];
        uint8_t lo = 0x80, hi = 0xBF;
        size_t need, k;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* UTF-16 surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            return 0; /* 0x80..0xC1 (continuation or overlong lead), 0xF5..0xFF */
        }
        if (n - i - 1 < need)
            return 0;
        /* only the first continuation byte has the narrowed range */
        if (p[i + 1] < lo || p[i + 1] > hi)
            return 0;
        for (k = 2; k <= need; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
        i += need + 1;
    }
    return 1;
}
