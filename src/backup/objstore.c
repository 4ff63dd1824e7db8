/*
 * objstore.c - the object-store front (key checks, dispatch) and the S3 listing/error XML
 * reader shared by the HTTP stores (see objstore.h).
 *
 * The XML reader is deliberately small: S3's ListBucketResult is flat, machine-written XML
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjects.html); GCS's XML API
 * answers the same document. We look for <Contents> elements and their <Key>/<Size> children,
 * and the top-level <IsTruncated>/<NextMarker>, decoding the five predefined entities and
 * numeric character references in keys. Anything else (CDATA, comments inside values) makes
 * the document malformed rather than guessed at.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "backup/objstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "wa/error.h"

int wg_obj_key_valid(const char *key)
{
    size_t n, i;

    if (!key)
        return 0;
    n = strlen(key);
    if (n == 0 || n > WG_OBJ_KEY_MAX || key[0] == '/' || key[n - 1] == '/')
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            return 0;
        /* no "." or ".." path segment: the local store maps keys to paths */
        if ((i == 0 || key[i - 1] == '/') && c == '.' &&
            (key[i + 1] == '/' || key[i + 1] == '\0' ||
             (key[i + 1] == '.' && (key[i + 2] == '/' || key[i + 2] == '\0'))))
            return 0;
        if (c == '/' && key[i + 1] == '/')
            return 0;
    }
    return 1;
}

static int usable(wg_objstore *s, wg_obj_cb cb)
{
    if (!s || !cb)
        return WA_EINVAL;
    if (s->closing)
        return WA_ESTATE;
    return 0;
}

int wg_objstore_put(wg_objstore *s, const char *key, const uint8_t *data, size_t len, wg_obj_cb cb,
                    void *user_data)
{
    int rc = usable(s, cb);

    if (rc)
        return rc;
    if (!wg_obj_key_valid(key) || (!data && len))
        return WA_EINVAL;
    return s->ops->put(s, key, data, len, cb, user_data);
}

int wg_objstore_get(wg_objstore *s, const char *key, size_t max, wg_obj_cb cb, void *user_data)
{
    int rc = usable(s, cb);

    if (rc)
        return rc;
    if (!wg_obj_key_valid(key) || !max)
        return WA_EINVAL;
    return s->ops->get(s, key, max, cb, user_data);
}

int wg_objstore_list(wg_objstore *s, const char *prefix, wg_obj_cb cb, void *user_data)
{
    int rc = usable(s, cb);

    if (rc)
        return rc;
    if (!prefix)
        prefix = "";
    if (strlen(prefix) > WG_OBJ_KEY_MAX || prefix[0] == '/')
        return WA_EINVAL;
    return s->ops->list(s, prefix, cb, user_data);
}

int wg_objstore_del(wg_objstore *s, const char *key, wg_obj_cb cb, void *user_data)
{
    int rc = usable(s, cb);

    if (rc)
        return rc;
    if (!wg_obj_key_valid(key))
        return WA_EINVAL;
    return s->ops->del(s, key, cb, user_data);
}

const char *wg_objstore_name(const wg_objstore *s)
{
    return s ? s->name : "none";
}

const char *wg_objstore_where(const wg_objstore *s)
{
    return s ? s->where : "";
}

void wg_objstore_close(wg_objstore *s, void (*closed)(void *user_data), void *user_data)
{
    if (!s || s->closing)
        return;
    s->closing = 1;
    s->ops->close(s, closed, user_data);
}

/* ---- entries ---- */

void wg_obj_entries_free(wg_obj_entry *v, size_t n)
{
    size_t i;

    if (!v)
        return;
    for (i = 0; i < n; i++)
        wa_free(v[i].key);
    wa_free(v);
}

/* ---- XML ---- */

/* Find the start tag "<tag>" or "<tag attr...>" at or after p (before end); returns a pointer
 * past its '>', or NULL. */
static const char *find_open(const char *p, const char *end, const char *tag)
{
    size_t tl = strlen(tag);

    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p)), *gt;
        if (!lt)
            return NULL;
        if ((size_t)(end - lt) >= tl + 2 && memcmp(lt + 1, tag, tl) == 0) {
            char c = lt[tl + 1];
            if (c == '>')
                return lt + tl + 2;
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                gt = memchr(lt + tl + 1, '>', (size_t)(end - lt - tl - 1));
                /* an empty element "<tag/>" has no content to return */
                if (gt && gt[-1] != '/')
                    return gt + 1;
            }
        }
        p = lt + 1;
    }
    return NULL;
}

/* The text of <tag>...</tag> starting at or after p within [p, end): *val and *vlen, and *next past
 * the closing tag. 0, WA_ENOTFOUND (no such element), WA_EPROTO (not closed). */
static int element(const char *p, const char *end, const char *tag, const char **val, size_t *vlen,
                   const char **next)
{
    const char *s = find_open(p, end, tag), *e;
    char close[64];
    size_t cl;

    if (!s)
        return WA_ENOTFOUND;
    cl = (size_t)snprintf(close, sizeof close, "</%s>", tag);
    e = memmem(s, (size_t)(end - s), close, cl);
    if (!e)
        return WA_EPROTO;
    *val = s;
    *vlen = (size_t)(e - s);
    if (next)
        *next = e + cl;
    return 0;
}

/* Decode entities of s[0..n) into a new NUL-terminated string. */
static int xml_text(const char *s, size_t n, char **out)
{
    char *r = wa_malloc(n + 1);
    size_t i, k = 0;

    if (!r)
        return WA_ENOMEM;
    for (i = 0; i < n; i++) {
        if (s[i] == '<')
            goto bad; /* nested markup, CDATA, comments: not in the documents we read */
        if (s[i] != '&') {
            r[k++] = s[i];
            continue;
        }
        {
            static const struct {
                const char *name;
                char c;
            } ent[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
            size_t j, rest = n - i - 1;
            for (j = 0; j < sizeof ent / sizeof ent[0]; j++) {
                size_t el = strlen(ent[j].name);
                if (rest >= el && memcmp(s + i + 1, ent[j].name, el) == 0) {
                    r[k++] = ent[j].c;
                    i += el;
                    break;
                }
            }
            if (j < sizeof ent / sizeof ent[0])
                continue;
            if (rest >= 3 && s[i + 1] == '#') {
                unsigned long cp = 0;
                size_t m = i + 2;
                int hex = 0, digits = 0;
                if (s[m] == 'x') {
                    hex = 1;
                    m++;
                }
                for (; m < n && s[m] != ';' && digits < 8; m++, digits++) {
                    char c = s[m];
                    int d = c >= '0' && c <= '9'          ? c - '0'
                            : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                            : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                          : -1;
                    if (d < 0)
                        goto bad;
                    cp = cp * (hex ? 16 : 10) + (unsigned long)d;
                }
                if (m >= n || s[m] != ';' || !digits || cp == 0 || cp > 0x10ffff)
                    goto bad;
                /* UTF-8 */
                if (cp < 0x80) {
                    r[k++] = (char)cp;
                } else if (cp < 0x800) {
                    r[k++] = (char)(0xc0 | (cp >> 6));
                    r[k++] = (char)(0x80 | (cp & 0x3f));
                } else if (cp < 0x10000) {
                    r[k++] = (char)(0xe0 | (cp >> 12));
                    r[k++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    r[k++] = (char)(0x80 | (cp & 0x3f));
                } else {
                    r[k++] = (char)(0xf0 | (cp >> 18));
                    r[k++] = (char)(0x80 | ((cp >> 12) & 0x3f));
                    r[k++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    r[k++] = (char)(0x80 | (cp & 0x3f));
                }
                i = m;
                continue;
            }
            goto bad;
        }
    }
    r[k] = '\0';
    *out = r;
    return 0;
bad:
    wa_free(r);
    return WA_EPROTO;
}

static int push(wg_obj_entry **v, size_t *n, size_t max, char *key, uint64_t size)
{
    wg_obj_entry *nv;

    if (*n >= max)
        return WA_ELIMIT;
    /* grow by powers of two: *n is a power of two exactly when the array is full */
    if (*n == 0 || (*n & (*n - 1)) == 0) {
        size_t cap = *n ? *n * 2 : 16;
        nv = wa_realloc(*v, cap * sizeof **v);
        if (!nv)
            return WA_ENOMEM;
        *v = nv;
    }
    (*v)[*n].key = key;
    (*v)[*n].size = size;
    (*n)++;
    return 0;
}

int wg_obj_list_parse(const char *xml, size_t len, wg_obj_entry **v, size_t *n, size_t max,
                      int *truncated, char *next_marker, size_t cap)
{
    const char *end = xml + len, *p, *val, *next;
    size_t vlen;
    int rc;

    *truncated = 0;
    if (cap)
        next_marker[0] = '\0';
    if (!find_open(xml, end, "ListBucketResult"))
        return WA_EPROTO;
    p = xml;
    for (;;) {
        const char *c, *kv, *sv;
        size_t klen, slen;
        char *key = NULL;
        unsigned long long size = 0;

        rc = element(p, end, "Contents", &c, &vlen, &next);
        if (rc == WA_ENOTFOUND)
            break;
        if (rc)
            return rc;
        if (element(c, c + vlen, "Key", &kv, &klen, NULL) != 0)
            return WA_EPROTO;
        if (element(c, c + vlen, "Size", &sv, &slen, NULL) == 0) {
            size_t i;
            if (slen == 0 || slen > 19)
                return WA_EPROTO;
            for (i = 0; i < slen; i++) {
                if (sv[i] < '0' || sv[i] > '9')
                    return WA_EPROTO;
                size = size * 10 + (unsigned)(sv[i] - '0');
            }
        }
        if ((rc = xml_text(kv, klen, &key)))
            return rc;
        if ((rc = push(v, n, max, key, size))) {
            wa_free(key);
            return rc;
        }
        p = next;
    }
    /* IsTruncated and NextMarker are children of the root, outside any Contents: look after
     * the last Contents first, then anywhere (servers put them before the Contents too) */
    if (element(xml, end, "IsTruncated", &val, &vlen, NULL) == 0)
        *truncated = vlen == 4 && memcmp(val, "true", 4) == 0;
    if (element(xml, end, "NextMarker", &val, &vlen, NULL) == 0 && cap) {
        char *m = NULL;
        if ((rc = xml_text(val, vlen, &m)))
            return rc;
        if (strlen(m) >= cap) {
            wa_free(m);
            return WA_ELIMIT;
        }
        memcpy(next_marker, m, strlen(m) + 1);
        wa_free(m);
    }
    return 0;
}

void wg_obj_error_parse(const char *xml, size_t len, char *out, size_t cap)
{
    const char *err, *code, *msg;
    size_t el, cl, ml;
    char *q;

    if (!cap)
        return;
    out[0] = '\0';
    if (!xml || element(xml, xml + len, "Error", &err, &el, NULL) != 0)
        return;
    if (element(err, err + el, "Code", &code, &cl, NULL) != 0)
        return;
    if (element(err, err + el, "Message", &msg, &ml, NULL) != 0)
        ml = 0;
    if (cl > 64)
        cl = 64;
    if (ml > 160)
        ml = 160;
    snprintf(out, cap, "%.*s%s%.*s", (int)cl, code, ml ? ": " : "", (int)ml, ml ? msg : "");
    /* no control characters in log lines */
    for (q = out; *q; q++)
        if ((unsigned char)*q < 0x20)
            *q = ' ';
}
