/*
 * sigv4.c - AWS Signature Version 4 (see sigv4.h for the canonical forms and the reason we do
 * not use libcurl's).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "backup/sigv4.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/util.h"
#include "crypto/crypto.h"
#include "wa/error.h"

/* Query parameters per request, at most. */
#define QUERY_PARAMS_MAX 64
/* Longest header name, and one header value after trimming. */
#define HEADER_NAME_MAX  64
#define HEADER_VALUE_MAX 4096

static int unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

int wg_sigv4_uri_encode(wa_buf *out, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;
    int rc;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            rc = wa_buf_append_byte(out, c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = wa_buf_append(out, e, 3);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) then encode it strictly into out. */
static int reencode(wa_buf *out, const char *s, size_t n)
{
    char tmp[1024];
    size_t i, k = 0;

    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return WA_EINVAL;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return WA_EINVAL;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (k == sizeof tmp)
            return WA_ELIMIT;
        tmp[k++] = c;
    }
    return wg_sigv4_uri_encode(out, tmp, k, 0);
}

/* One canonical "name=value" in the scratch buffer: offset, name length, total length. */
typedef struct qparam {
    size_t off, name_len, len;
} qparam;

static int qparam_cmp(const void *a, const void *b, void *base)
{
    const qparam *x = a, *y = b;
    const char *bs = base;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(bs + x->off, bs + y->off, n);

    if (c)
        return c;
    if (x->name_len != y->name_len)
        return x->name_len < y->name_len ? -1 : 1;
    /* same name: by value */
    {
        size_t xv = x->len - x->name_len - 1, yv = y->len - y->name_len - 1;
        size_t m = xv < yv ? xv : yv;
        c = memcmp(bs + x->off + x->name_len + 1, bs + y->off + y->name_len + 1, m);
        if (c)
            return c;
        return xv < yv ? -1 : xv > yv ? 1 : 0;
    }
}

static int canonical_query(const char *q, wa_buf *out)
{
    qparam p[QUERY_PARAMS_MAX];
    wa_buf scratch;
    size_t np = 0, i;
    int rc = 0;

    if (!q || !*q)
        return 0;
    wa_buf_init(&scratch, WG_SIGV4_CANON_MAX);
    while (*q) {
        const char *amp = strchr(q, '&'), *eq;
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > 0) {
            if (np == QUERY_PARAMS_MAX) {
                rc = WA_EINVAL;
                goto out;
            }
            eq = memchr(q, '=', len);
            p[np].off = scratch.len;
            if ((rc = reencode(&scratch, q, eq ? (size_t)(eq - q) : len)))
                goto out;
            p[np].name_len = scratch.len - p[np].off;
            if ((rc = wa_buf_append_byte(&scratch, '=')))
                goto out;
            if (eq && (rc = reencode(&scratch, eq + 1, len - (size_t)(eq - q) - 1)))
                goto out;
            p[np].len = scratch.len - p[np].off;
            np++;
        }
        q += len;
        if (*q == '&')
            q++;
    }
    qsort_r(p, np, sizeof p[0], qparam_cmp, scratch.data);
    for (i = 0; i < np && rc == 0; i++) {
        if (i)
            rc = wa_buf_append_byte(out, '&');
        if (rc == 0)
            rc = wa_buf_append(out, scratch.data + p[i].off, p[i].len);
    }
out:
    wa_buf_cleanup(&scratch);
    return rc;
}

typedef struct hdr {
    char name[HEADER_NAME_MAX + 1];
    const char *value;
    size_t idx; /* input order, for repeated names */
} hdr;

static int hdr_cmp(const void *a, const void *b)
{
    const hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Trimmed value with inner runs of spaces collapsed to one. */
static int append_value(wa_buf *out, const char *v)
{
    size_t n = 0;
    int space = 0, rc;

    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            space = 1;
            continue;
        }
        if (space) {
            if ((rc = wa_buf_append_byte(out, ' ')))
                return rc;
            space = 0;
        }
        if (++n > HEADER_VALUE_MAX)
            return WA_ELIMIT;
        if ((rc = wa_buf_append_byte(out, (uint8_t)*v)))
            return rc;
    }
    return 0;
}

int wg_sigv4_canonical_request(const wg_sigv4_request *r, wa_buf *out, char *signed_headers,
                               size_t cap)
{
    hdr h[WG_SIGV4_HEADERS_MAX];
    size_t i, j, sh = 0;
    int rc;

    if (!r || !r->method || !r->path || r->path[0] != '/' || !r->headers || !r->n_headers ||
        r->n_headers > WG_SIGV4_HEADERS_MAX || !r->payload_hash || !signed_headers || !cap)
        return WA_EINVAL;
    for (i = 0; i < r->n_headers; i++) {
        const char *n = r->headers[i].name;
        size_t len = n ? strlen(n) : 0;
        if (!len || len > HEADER_NAME_MAX || !r->headers[i].value)
            return WA_EINVAL;
        for (j = 0; j < len; j++)
            h[i].name[j] = (char)tolower((unsigned char)n[j]);
        h[i].name[len] = '\0';
        h[i].value = r->headers[i].value;
        h[i].idx = i;
    }
    qsort(h, r->n_headers, sizeof h[0], hdr_cmp);

    wa_buf_reset(out);
    if ((rc = wa_buf_append(out, r->method, strlen(r->method))) ||
        (rc = wa_buf_append_byte(out, '\n')) ||
        (rc = wg_sigv4_uri_encode(out, r->path, strlen(r->path), 1)) ||
        (rc = wa_buf_append_byte(out, '\n')) || (rc = canonical_query(r->query, out)) ||
        (rc = wa_buf_append_byte(out, '\n')))
        return rc;
    for (i = 0; i < r->n_headers; i++) {
        size_t nl = strlen(h[i].name);
        if (i > 0 && strcmp(h[i].name, h[i - 1].name) == 0) {
            /* repeated name: "name:v1,v2" (the previous line's newline is replaced) */
            out->len--;
            if ((rc = wa_buf_append_byte(out, ',')))
                return rc;
        } else {
            if ((rc = wa_buf_append(out, h[i].name, nl)) || (rc = wa_buf_append_byte(out, ':')))
                return rc;
            if (sh + nl + 2 > cap)
                return WA_ELIMIT;
            if (sh)
                signed_headers[sh++] = ';';
            memcpy(signed_headers + sh, h[i].name, nl);
            sh += nl;
        }
        if ((rc = append_value(out, h[i].value)) || (rc = wa_buf_append_byte(out, '\n')))
            return rc;
    }
    signed_headers[sh] = '\0';
    if ((rc = wa_buf_append_byte(out, '\n')) || (rc = wa_buf_append(out, signed_headers, sh)) ||
        (rc = wa_buf_append_byte(out, '\n')) ||
        (rc = wa_buf_append(out, r->payload_hash, strlen(r->payload_hash))))
        return rc;
    return 0;
}

static int hmac(uint8_t out[WA_HMAC_SHA256_LEN], const uint8_t *key, size_t klen, const char *s)
{
    return wa_hmac_sha256(out, key, klen, s, strlen(s));
}

void wg_sigv4_date(char *out, long long t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    /* years past 9999 do not fit: the empty string then fails the length checks */
    if (!gmtime_r(&tt, &tm) || strftime(out, WG_SIGV4_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) == 0)
        out[0] = '\0';
}

int wg_sigv4_authorization(const wg_sigv4_key *k, const char *amz_date, const wg_sigv4_request *r,
                           char *out, size_t cap, char *signature)
{
    char signed_headers[WG_SIGV4_HEADERS_MAX * (HEADER_NAME_MAX + 1) + 1];
    char date8[9], scope[256], sts_hex[2 * WA_SHA256_LEN + 1], sig_hex[2 * WA_SHA256_LEN + 1];
    uint8_t digest[WA_SHA256_LEN], kd[WA_HMAC_SHA256_LEN], kr[WA_HMAC_SHA256_LEN];
    uint8_t ks[WA_HMAC_SHA256_LEN], kk[WA_HMAC_SHA256_LEN], sig[WA_HMAC_SHA256_LEN];
    char *secret = NULL;
    wa_buf canon, sts;
    size_t slen;
    int rc, n;

    if (!k || !k->access_key || !k->secret_key || !k->region || !k->service || !amz_date ||
        strlen(amz_date) != WG_SIGV4_DATE_LEN || !out)
        return WA_EINVAL;
    wa_buf_init(&canon, WG_SIGV4_CANON_MAX);
    wa_buf_init(&sts, WG_SIGV4_CANON_MAX);
    rc = wg_sigv4_canonical_request(r, &canon, signed_headers, sizeof signed_headers);
    if (rc)
        goto out;
    if ((rc = wa_sha256(digest, canon.data, canon.len)))
        goto out;
    wa_hex_encode(sts_hex, digest, sizeof digest);
    memcpy(date8, amz_date, 8);
    date8[8] = '\0';
    n = snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date8, k->region, k->service);
    if (n < 0 || (size_t)n >= sizeof scope) {
        rc = WA_ELIMIT;
        goto out;
    }
    if ((rc = wa_buf_append(&sts, WG_SIGV4_ALGORITHM "\n", sizeof WG_SIGV4_ALGORITHM)) ||
        (rc = wa_buf_append(&sts, amz_date, WG_SIGV4_DATE_LEN)) ||
        (rc = wa_buf_append_byte(&sts, '\n')) || (rc = wa_buf_append(&sts, scope, strlen(scope))) ||
        (rc = wa_buf_append_byte(&sts, '\n')) ||
        (rc = wa_buf_append(&sts, sts_hex, 2 * WA_SHA256_LEN)))
        goto out;
    /* kSecret = "AWS4" + secret */
    slen = strlen(k->secret_key);
    secret = wa_malloc(slen + 5);
    if (!secret) {
        rc = WA_ENOMEM;
        goto out;
    }
    memcpy(secret, "AWS4", 4);
    memcpy(secret + 4, k->secret_key, slen + 1);
    if ((rc = hmac(kd, (const uint8_t *)secret, slen + 4, date8)) ||
        (rc = hmac(kr, kd, sizeof kd, k->region)) || (rc = hmac(ks, kr, sizeof kr, k->service)) ||
        (rc = hmac(kk, ks, sizeof ks, "aws4_request")) ||
        (rc = wa_hmac_sha256(sig, kk, sizeof kk, sts.data, sts.len)))
        goto out;
    wa_hex_encode(sig_hex, sig, sizeof sig);
    n = snprintf(out, cap, WG_SIGV4_ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                 k->access_key, scope, signed_headers, sig_hex);
    if (n < 0 || (size_t)n >= cap) {
        rc = WA_ELIMIT;
        goto out;
    }
    if (signature)
        memcpy(signature, sig_hex, sizeof sig_hex);
out:
    if (secret) {
        wa_wipe(secret, slen + 5);
        wa_free(secret);
    }
    wa_wipe(kd, sizeof kd);
    wa_wipe(kr, sizeof kr);
    wa_wipe(ks, sizeof ks);
    wa_wipe(kk, sizeof kk);
    wa_buf_cleanup(&canon);
    wa_buf_cleanup(&sts);
    return rc;
}
