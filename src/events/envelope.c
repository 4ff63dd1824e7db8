/*
 * envelope.c - event ids (ULID, https://github.com/ulid/spec, monotonic variant), the event name
 * registry, envelopes built with jansson, and subscription filters. See envelope.h.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "events/envelope.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "wa/error.h"

static const char *const names[] = {
#define WG__NAME(n) n,
    WG_EVENT_NAMES(WG__NAME)
#undef WG__NAME
        NULL};

const char *const *wg_event_names(void)
{
    return names;
}

int wg_event_name_known(const char *name)
{
    size_t i;

    if (!name)
        return 0;
    for (i = 0; names[i]; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* ---- ULID ---- */

/* Crockford's base32: no I, L, O, U. */
static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static int b32_value(char c)
{
    const char *p;

    if (c == '\0')
        return -1;
    p = strchr(b32, c);
    return p ? (int)(p - b32) : -1;
}

/* 16 bytes (6 time, 10 random, big-endian) -> 26 characters. The 128 bits are read as a 130-bit
 * number with two leading zero bits, 5 bits per character. */
static void ulid_encode(char out[WG_EVENT_ID_LEN + 1], const uint8_t v[16])
{
    int i;

    for (i = 0; i < WG_EVENT_ID_LEN; i++) {
        int bit = i * 5 - 2; /* index of the character's first bit in v (may be negative) */
        unsigned x = 0;
        int k;
        for (k = 0; k < 5; k++, bit++) {
            x <<= 1;
            if (bit >= 0)
                x |= (v[bit / 8] >> (7 - bit % 8)) & 1u;
        }
        out[i] = b32[x];
    }
    out[WG_EVENT_ID_LEN] = '\0';
}

static int ulid_decode(uint8_t v[16], const char *s)
{
    int i;

    if (!s || strlen(s) != WG_EVENT_ID_LEN)
        return WA_EINVAL;
    memset(v, 0, 16);
    for (i = 0; i < WG_EVENT_ID_LEN; i++) {
        int x = b32_value(s[i]);
        int bit = i * 5 - 2, k;
        if (x < 0 || (i == 0 && x > 7))
            return WA_EINVAL;
        for (k = 4; k >= 0; k--, bit++)
            if (bit >= 0 && ((x >> k) & 1))
                v[bit / 8] |= (uint8_t)(0x80u >> (bit % 8));
    }
    return 0;
}

int wg_event_id_valid(const char *s)
{
    uint8_t v[16];

    return ulid_decode(v, s) == 0;
}

int wg_event_id_time(const char *id, uint64_t *ms)
{
    uint8_t v[16];
    uint64_t t = 0;
    int i;

    if (ulid_decode(v, id))
        return WA_EINVAL;
    for (i = 0; i < 6; i++)
        t = (t << 8) | v[i];
    *ms = t;
    return 0;
}

int wg_event_idgen_seed(wg_event_idgen *g, const char *id)
{
    uint8_t v[16];
    uint64_t t = 0;
    int i;

    if (ulid_decode(v, id))
        return WA_EINVAL;
    for (i = 0; i < 6; i++)
        t = (t << 8) | v[i];
    if (!g->have_last || t > g->last_ms ||
        (t == g->last_ms && memcmp(v + 6, g->last_rand, 10) > 0)) {
        g->last_ms = t;
        memcpy(g->last_rand, v + 6, 10);
        g->have_last = 1;
    }
    return 0;
}

/* Increment a big-endian 80-bit number; 1 on overflow. */
static int rand_inc(uint8_t r[10])
{
    int i;

    for (i = 9; i >= 0; i--)
        if (++r[i] != 0)
            return 0;
    return 1;
}

int wg_event_id_next(wg_event_idgen *g, uint64_t now_ms, char out[WG_EVENT_ID_LEN + 1])
{
    uint8_t v[16];
    uint64_t t = now_ms & 0xFFFFFFFFFFFFull;

    if (g->have_last && t <= g->last_ms) {
        /* same millisecond or the clock went back: stay after the previous id */
        t = g->last_ms;
        if (rand_inc(g->last_rand)) {
            /* 2^80 ids in one millisecond cannot happen; move to the next one anyway */
            t++;
            if (wa_random(g->last_rand, sizeof g->last_rand))
                return WA_EIO;
            /* keep the top bit clear so that increments in the new millisecond have room */
            g->last_rand[0] &= 0x7F;
        }
    } else {
        if (wa_random(g->last_rand, sizeof g->last_rand))
            return WA_EIO;
        g->last_rand[0] &= 0x7F;
    }
    g->last_ms = t;
    g->have_last = 1;
    wa_store_be16(v, (uint16_t)(t >> 32));
    wa_store_be32(v + 2, (uint32_t)t);
    memcpy(v + 6, g->last_rand, 10);
    ulid_encode(out, v);
    return 0;
}

/* ---- envelope ---- */

static int session_valid(const char *s)
{
    size_t n = strlen(s), i;

    if (n == 0 || n > WG_EVENT_SESSION_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
            return 0;
    return 1;
}

int wg_envelope_build(wg_envelope *env, const char *id, int64_t ts_ms, const char *session,
                      const char *event, const json_t *payload)
{
    json_t *o = NULL;
    char *text = NULL;
    int rc = WA_ENOMEM;

    if (!wg_event_id_valid(id) || !wg_event_name_known(event) || !json_is_object(payload) ||
        (session && !session_valid(session)) || ts_ms < 0)
        return WA_EINVAL;
    o = json_object();
    if (!o)
        goto out;
    /* json_object_set takes a reference: the caller's payload is shared, never modified */
    if (json_object_set_new(o, "id", json_string(id)) ||
        json_object_set_new(o, "timestamp", json_integer((json_int_t)ts_ms)) ||
        json_object_set_new(o, "session", session ? json_string(session) : json_null()) ||
        json_object_set_new(o, "event", json_string(event)) ||
        json_object_set(o, "payload", (json_t *)payload))
        goto out;
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        goto out;
    if (strlen(text) > WG_EVENT_JSON_MAX) {
        rc = WA_ELIMIT;
        goto out;
    }
    memset(env, 0, sizeof *env);
    memcpy(env->id, id, WG_EVENT_ID_LEN + 1);
    env->ts_ms = ts_ms;
    if (session)
        memcpy(env->session, session, strlen(session) + 1);
    memcpy(env->event, event, strlen(event) + 1);
    env->json = text;
    env->json_len = strlen(text);
    text = NULL;
    rc = 0;
out:
    free(text);
    json_decref(o);
    return rc;
}

void wg_envelope_cleanup(wg_envelope *env)
{
    if (!env)
        return;
    free(env->json);
    env->json = NULL;
    env->json_len = 0;
}

/* ---- filters ---- */

void wg_event_filter_init(wg_event_filter *f)
{
    f->nsessions = 0;
    f->nevents = 0;
}

static int pattern_valid(const char *p)
{
    size_t n = strlen(p), i;

    if (n == 0 || n > WG_EVENT_NAME_MAX)
        return 0;
    if (strcmp(p, "*") == 0 || wg_event_name_known(p))
        return 1;
    if (n < 3 || p[n - 1] != '*' || p[n - 2] != '.')
        return 0;
    for (i = 0; names[i]; i++)
        if (strncmp(names[i], p, n - 1) == 0)
            return 1;
    return 0;
}

int wg_event_filter_add_event(wg_event_filter *f, const char *pattern)
{
    if (!pattern || !pattern_valid(pattern))
        return WA_EINVAL;
    if (f->nevents >= WG_EVENT_FILTER_MAX)
        return WA_ELIMIT;
    memcpy(f->events[f->nevents++], pattern, strlen(pattern) + 1);
    return 0;
}

int wg_event_filter_add_session(wg_event_filter *f, const char *session)
{
    if (!session || !session_valid(session))
        return WA_EINVAL;
    if (f->nsessions >= WG_EVENT_FILTER_MAX)
        return WA_ELIMIT;
    memcpy(f->sessions[f->nsessions++], session, strlen(session) + 1);
    return 0;
}

static void copy_bad(char *bad, size_t badlen, const char *s, size_t n)
{
    if (!bad || badlen == 0)
        return;
    if (n >= badlen)
        n = badlen - 1;
    memcpy(bad, s, n);
    bad[n] = '\0';
}

static int parse_list(wg_event_filter *f, const char *list, int sessions, char *bad, size_t badlen)
{
    const char *p = list;

    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char item[WG_EVENT_SESSION_MAX + 2];
        int rc;

        if (n > 0) {
            if (n > WG_EVENT_SESSION_MAX) {
                copy_bad(bad, badlen, p, n);
                return WA_EINVAL;
            }
            memcpy(item, p, n);
            item[n] = '\0';
            rc = sessions ? wg_event_filter_add_session(f, item)
                          : wg_event_filter_add_event(f, item);
            if (rc) {
                copy_bad(bad, badlen, p, n);
                return rc;
            }
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

int wg_event_filter_parse(wg_event_filter *f, const char *sessions, const char *events, char *bad,
                          size_t badlen)
{
    int rc = parse_list(f, sessions, 1, bad, badlen);

    if (rc)
        return rc;
    return parse_list(f, events, 0, bad, badlen);
}

static int pattern_match(const char *p, const char *event)
{
    size_t n;

    if (strcmp(p, "*") == 0)
        return 1;
    n = strlen(p);
    if (n >= 2 && p[n - 1] == '*' && p[n - 2] == '.')
        return strncmp(p, event, n - 1) == 0;
    return strcmp(p, event) == 0;
}

int wg_event_filter_match(const wg_event_filter *f, const char *session, const char *event)
{
    unsigned i;
    int ok = f->nsessions == 0;

    for (i = 0; !ok && i < f->nsessions; i++)
        ok = session && strcmp(f->sessions[i], session) == 0;
    if (!ok)
        return 0;
    if (f->nevents == 0)
        return 1;
    for (i = 0; i < f->nevents; i++)
        if (pattern_match(f->events[i], event))
            return 1;
    return 0;
}
