/*
 * tokens.c - dictionary selection and the encoder's token lookup.
 *
 * The hash table in tokens_v*.c is built by tools/gen_tokens.js with the same FNV-1a hash and
 * linear probing as below; a lookup hashes the string once and compares at most a few entries.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bnode/tokens.h"

#include <string.h>

const wa_bnode_dict *wa_bnode_dict_get(int version)
{
    if (version == 2)
        return &wa_bnode_dict_v2;
    if (version == 3)
        return &wa_bnode_dict_v3;
    return NULL;
}

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 0x811c9dc5u;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x01000193u;
    }
    return h;
}

int wa_bnode_token_find(const wa_bnode_dict *d, const char *s, size_t len, int *dict,
                        uint8_t *index)
{
    uint32_t i;
    uint16_t v;

    if (len == 0 || len > d->max_token_len)
        return 0;
    for (i = fnv1a(s, len) & d->slot_mask; (v = d->slots[i]) != 0; i = (i + 1) & d->slot_mask) {
        const char *t;
        size_t tl;
        int di = (v >> 8) - 1;
        uint8_t ix = (uint8_t)v;

        if (di < 0) {
            t = d->single[ix];
            tl = d->single_len[ix];
        } else {
            t = d->dbl[di][ix];
            tl = d->dbl_len[di][ix];
        }
        if (tl == len && memcmp(t, s, len) == 0) {
            *dict = di;
            *index = ix;
            return 1;
        }
    }
    return 0;
}
