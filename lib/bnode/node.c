/*
 * node.c - building and reading binary node trees (see node.h for the model).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bnode/node.h"

#include <limits.h>
#include <string.h>

#include "bnode/bnode.h"
#include "wa/error.h"

#define ATTRS_FIRST_CAP 4

static int arena_err(const wa_arena *a, size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    return (n > a->max || need > a->max - a->total) ? WA_ELIMIT : WA_ENOMEM;
}

wa_node *wa_node_new(wa_arena *a, const char *tag)
{
    wa_node *n;
    size_t len;
    char *t;

    if (!a || !tag || !tag[0])
        return NULL;
    len = strlen(tag);
    n = wa_arena_zalloc(a, sizeof *n);
    t = n ? wa_arena_strndup(a, tag, len) : NULL;
    if (!t)
        return NULL;
    n->tag = t;
    n->tag_len = len;
    return n;
}

static wa_node_kv *find_attr(const wa_node *n, const char *key, size_t klen)
{
    size_t i = n->nattrs;

    /* From the end: the last occurrence wins (map semantics of Baileys and whatsmeow). */
    while (i-- > 0) {
        wa_node_kv *at = &n->attrs[i];
        if (at->key_len == klen && memcmp(at->key, key, klen) == 0)
            return at;
    }
    return NULL;
}

int wa_node_set_attr_n(wa_arena *a, wa_node *n, const char *key, const char *value, size_t len)
{
    wa_node_kv *at;
    size_t klen;
    char *v, *k;

    if (!a || !n || !key || !key[0] || (!value && len))
        return WA_EINVAL;
    if (len && memchr(value, 0, len))
        return WA_EINVAL;
    klen = strlen(key);
    v = wa_arena_strndup(a, len ? value : "", len);
    if (!v)
        return arena_err(a, len + 1);
    at = find_attr(n, key, klen);
    if (at) {
        at->value = v;
        at->value_len = len;
        return 0;
    }
    if (n->nattrs >= WA_BNODE_MAX_ATTRS)
        return WA_ELIMIT;
    if (n->nattrs == n->attrs_cap) {
        size_t cap = n->attrs_cap ? 2 * n->attrs_cap : ATTRS_FIRST_CAP;
        wa_node_kv *na = wa_arena_alloc(a, cap * sizeof *na);
        if (!na)
            return arena_err(a, cap * sizeof *na);
        if (n->nattrs)
            memcpy(na, n->attrs, n->nattrs * sizeof *na);
        n->attrs = na;
        n->attrs_cap = cap;
    }
    k = wa_arena_strndup(a, key, klen);
    if (!k)
        return arena_err(a, klen + 1);
    at = &n->attrs[n->nattrs++];
    at->key = k;
    at->key_len = klen;
    at->value = v;
    at->value_len = len;
    return 0;
}

int wa_node_set_attr(wa_arena *a, wa_node *n, const char *key, const char *value)
{
    if (!value)
        return WA_EINVAL;
    return wa_node_set_attr_n(a, n, key, value, strlen(value));
}

int wa_node_set_attr_u64(wa_arena *a, wa_node *n, const char *key, uint64_t v)
{
    char tmp[21];
    size_t i = sizeof tmp;

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return wa_node_set_attr_n(a, n, key, tmp + i, sizeof tmp - i);
}

int wa_node_set_attr_jid(wa_arena *a, wa_node *n, const char *key, const wa_jid *j)
{
    char tmp[WA_JID_STR_MAX];
    int len = wa_jid_format(j, tmp, sizeof tmp);

    if (len < 0)
        return len;
    return wa_node_set_attr_n(a, n, key, tmp, (size_t)len);
}

static void clear_content(wa_node *n)
{
    n->content = WA_NODE_NONE;
    n->bytes = NULL;
    n->len = 0;
    n->first = n->last = NULL;
}

int wa_node_set_bytes(wa_arena *a, wa_node *n, const void *p, size_t len)
{
    char *copy;

    if (!a || !n || (!p && len))
        return WA_EINVAL;
    if (len > WA_BNODE_MAX_BYTES)
        return WA_ELIMIT;
    copy = wa_arena_strndup(a, len ? p : "", len);
    if (!copy)
        return arena_err(a, len + 1);
    clear_content(n);
    n->content = WA_NODE_BYTES;
    n->bytes = (const uint8_t *)copy;
    n->len = len;
    return 0;
}

void wa_node_set_bytes_ref(wa_node *n, const void *p, size_t len)
{
    clear_content(n);
    n->content = WA_NODE_BYTES;
    n->bytes = len ? p : (const uint8_t *)"";
    n->len = len;
}

int wa_node_set_string_n(wa_arena *a, wa_node *n, const char *s, size_t len)
{
    int rc = wa_node_set_bytes(a, n, s, len);

    if (!rc)
        n->content = WA_NODE_STRING;
    return rc;
}

int wa_node_set_string(wa_arena *a, wa_node *n, const char *s)
{
    if (!s)
        return WA_EINVAL;
    return wa_node_set_string_n(a, n, s, strlen(s));
}

void wa_node_set_list(wa_node *n)
{
    clear_content(n);
    n->content = WA_NODE_LIST;
}

int wa_node_add_child(wa_node *n, wa_node *child)
{
    if (!n || !child || child == n || child->next)
        return WA_EINVAL;
    if (n->content != WA_NODE_LIST)
        wa_node_set_list(n);
    if (n->last == child)
        return WA_EINVAL;
    if (n->len >= WA_BNODE_MAX_LIST)
        return WA_ELIMIT;
    if (n->last)
        n->last->next = child;
    else
        n->first = child;
    n->last = child;
    n->len++;
    return 0;
}

wa_node *wa_node_new_child(wa_arena *a, wa_node *parent, const char *tag)
{
    wa_node *c;

    if (!parent)
        return NULL;
    c = wa_node_new(a, tag);
    if (!c || wa_node_add_child(parent, c) != 0)
        return NULL;
    return c;
}

const char *wa_node_attr(const wa_node *n, const char *key)
{
    const wa_node_kv *at;

    if (!n || !key)
        return NULL;
    at = find_attr(n, key, strlen(key));
    return at ? at->value : NULL;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (!*s)
        return WA_EPROTO;
    for (; *s; s++) {
        unsigned d;
        if (*s < '0' || *s > '9')
            return WA_EPROTO;
        d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return WA_EPROTO;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int wa_node_attr_u64(const wa_node *n, const char *key, uint64_t *out)
{
    const char *s = wa_node_attr(n, key);
    uint64_t v;
    int rc;

    if (!s)
        return WA_ENOTFOUND;
    rc = parse_u64(s, UINT64_MAX, &v);
    if (!rc)
        *out = v;
    return rc;
}

int wa_node_attr_i64(const wa_node *n, const char *key, int64_t *out)
{
    const char *s = wa_node_attr(n, key);
    uint64_t v;
    int neg, rc;

    if (!s)
        return WA_ENOTFOUND;
    neg = *s == '-';
    rc = parse_u64(s + neg, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &v);
    if (rc)
        return rc;
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return 0;
}

int wa_node_attr_int(const wa_node *n, const char *key, int *out)
{
    int64_t v;
    int rc = wa_node_attr_i64(n, key, &v);

    if (rc)
        return rc;
    if (v < INT_MIN || v > INT_MAX)
        return WA_EPROTO;
    *out = (int)v;
    return 0;
}

int wa_node_attr_jid(const wa_node *n, const char *key, wa_jid *out)
{
    const wa_node_kv *at;

    if (!n || !key)
        return WA_EINVAL;
    at = find_attr(n, key, strlen(key));
    if (!at)
        return WA_ENOTFOUND;
    return wa_jid_parse_n(at->value, at->value_len, out);
}

int wa_node_is(const wa_node *n, const char *tag)
{
    return n && tag && strcmp(n->tag, tag) == 0;
}

const wa_node *wa_node_children(const wa_node *n)
{
    return (n && n->content == WA_NODE_LIST) ? n->first : NULL;
}

const wa_node *wa_node_next_tag(const wa_node *c, const char *tag)
{
    for (c = c ? c->next : NULL; c; c = c->next)
        if (strcmp(c->tag, tag) == 0)
            return c;
    return NULL;
}

const wa_node *wa_node_child(const wa_node *n, const char *tag)
{
    const wa_node *c;

    if (!tag)
        return NULL;
    for (c = wa_node_children(n); c; c = c->next)
        if (strcmp(c->tag, tag) == 0)
            return c;
    return NULL;
}

size_t wa_node_child_count(const wa_node *n)
{
    return (n && n->content == WA_NODE_LIST) ? n->len : 0;
}

int wa_node_content_bytes(const wa_node *n, const uint8_t **p, size_t *len)
{
    if (!n || (n->content != WA_NODE_BYTES && n->content != WA_NODE_STRING))
        return WA_ENOTFOUND;
    *p = n->bytes;
    *len = n->len;
    return 0;
}

static int equal(const wa_node *a, const wa_node *b, int depth)
{
    const wa_node *x, *y;
    size_t i;

    if (depth > WA_BNODE_MAX_DEPTH + 1)
        return 0;
    if (a->tag_len != b->tag_len || memcmp(a->tag, b->tag, a->tag_len) != 0 ||
        a->nattrs != b->nattrs || a->content != b->content)
        return 0;
    for (i = 0; i < a->nattrs; i++) {
        const wa_node_kv *p = &a->attrs[i], *q = &b->attrs[i];
        if (p->key_len != q->key_len || p->value_len != q->value_len ||
            memcmp(p->key, q->key, p->key_len) != 0 ||
            memcmp(p->value, q->value, p->value_len) != 0)
            return 0;
    }
    switch (a->content) {
    case WA_NODE_BYTES:
    case WA_NODE_STRING:
        return a->len == b->len && (a->len == 0 || memcmp(a->bytes, b->bytes, a->len) == 0);
    case WA_NODE_LIST:
        for (x = a->first, y = b->first; x && y; x = x->next, y = y->next)
            if (!equal(x, y, depth + 1))
                return 0;
        return x == NULL && y == NULL;
    default:
        return 1;
    }
}

int wa_node_equal(const wa_node *a, const wa_node *b)
{
    if (!a || !b)
        return a == b;
    return equal(a, b, 1);
}
