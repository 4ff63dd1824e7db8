/*
 * vectors.h - test helpers: hex literals and "name = hex" vector files from tests/vectors/.
 * Shared by the crypto and noise unit tests (include as "crypto/vectors.h").
 *
 * File format: '#' comments, blank lines separate records, each line "name = lowercase hex".
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_TEST_VECTORS_H
#define WA_TEST_VECTORS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#ifndef WA_TEST_SOURCE_DIR
#define WA_TEST_SOURCE_DIR "."
#endif

#define TV_MAX_FIELDS 32
#define TV_MAX_NAME   32

/* Decode a hex literal into a malloc'd buffer (test code: plain malloc); aborts on bad hex. */
static inline uint8_t *tv_hex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    uint8_t *p = malloc(n ? n : 1);

    if (!p || wa_hex_decode(p, n, hex, strlen(hex)) != 0)
        abort();
    if (len)
        *len = n;
    return p;
}

/* Fixed-size hex into out; aborts if the size differs. */
static inline void tv_hex_into(uint8_t *out, size_t n, const char *hex)
{
    if (strlen(hex) != 2 * n || wa_hex_decode(out, n, hex, strlen(hex)) != 0)
        abort();
}

typedef struct tv_record {
    int n;
    char name[TV_MAX_FIELDS][TV_MAX_NAME];
    uint8_t *val[TV_MAX_FIELDS];
    size_t len[TV_MAX_FIELDS];
} tv_record;

static inline void tv_record_free(tv_record *r)
{
    int i;

    for (i = 0; i < r->n; i++)
        free(r->val[i]);
    r->n = 0;
}

/* The field's value, or NULL (len untouched) if the record lacks it. */
static inline const uint8_t *tv_get(const tv_record *r, const char *name, size_t *len)
{
    int i;

    for (i = 0; i < r->n; i++) {
        if (strcmp(r->name[i], name) == 0) {
            if (len)
                *len = r->len[i];
            return r->val[i];
        }
    }
    return NULL;
}

static inline FILE *tv_open(const char *file)
{
    const char *root = getenv("WA_SOURCE_DIR");
    char path[4096];

    snprintf(path, sizeof path, "%s/tests/vectors/%s", root ? root : WA_TEST_SOURCE_DIR, file);
    return fopen(path, "r");
}

/* Read the next record; 1 if one was read, 0 at end of file. Aborts on malformed lines. */
static inline int tv_next(FILE *f, tv_record *r)
{
    static char line[1 << 20];

    r->n = 0;
    while (fgets(line, sizeof line, f)) {
        char *eq, *name, *val, *end;
        size_t vl;

        line[strcspn(line, "\r\n")] = 0;
        if (line[0] == '#')
            continue;
        if (line[0] == 0) {
            if (r->n)
                return 1;
            continue;
        }
        eq = strstr(line, " = ");
        if (!eq || r->n == TV_MAX_FIELDS)
            abort();
        *eq = 0;
        name = line;
        val = eq + 3;
        end = val + strlen(val);
        vl = (size_t)(end - val);
        if (strlen(name) >= TV_MAX_NAME || vl % 2)
            abort();
        strcpy(r->name[r->n], name);
        r->val[r->n] = malloc(vl / 2 ? vl / 2 : 1);
        if (!r->val[r->n] || wa_hex_decode(r->val[r->n], vl / 2, val, vl) != 0)
            abort();
        r->len[r->n] = vl / 2;
        r->n++;
    }
    return r->n > 0;
}

#endif
