/*
 * jid.c - WhatsApp JID parsing, formatting and classification (see jid.h for the grammar).
 *
 * Follows the forms of Baileys 7 lib/WABinary/jid-utils.js (jidDecode/jidEncode, domain types)
 * and whatsmeow types/jid.go (ParseJID, JID.String, NewADJID, ActualAgent).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "jid/jid.h"

#include <stdio.h>
#include <string.h>

#include "wa/error.h"

static int user_char_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '@' && c != ':' && c != '.' && c != '_';
}

static int server_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

/* Canonical decimal in s[0..n): digits only, no leading zero unless "0", value <= max. */
static int parse_dec(const char *s, size_t n, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;
    size_t i;

    if (n == 0 || n > 10 || (n > 1 && s[0] == '0'))
        return WA_EJID;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return WA_EJID;
        v = v * 10 + (unsigned long)(s[i] - '0');
        if (v > max)
            return WA_EJID;
    }
    *out = v;
    return 0;
}

static const char *find_char(const char *s, size_t n, char c)
{
    return n ? memchr(s, c, n) : NULL;
}

static int copy_user(char *dst, const char *s, size_t n)
{
    size_t i;

    if (n > WA_JID_USER_MAX)
        return WA_EJID;
    for (i = 0; i < n; i++)
        if (!user_char_ok((unsigned char)s[i]))
            return WA_EJID;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

static int copy_server(char *dst, const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > WA_JID_SERVER_MAX)
        return WA_EJID;
    for (i = 0; i < n; i++)
        if (!server_char_ok((unsigned char)s[i]))
            return WA_EJID;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

int wa_jid_parse_n(const char *s, size_t n, wa_jid *out)
{
    wa_jid j;
    const char *at, *up, *colon, *sep;
    size_t ulen;
    unsigned long v;
    int rc;

    if (!s || !out)
        return WA_EINVAL;
    memset(&j, 0, sizeof j);
    at = find_char(s, n, '@');
    if (!at || find_char(at + 1, n - (size_t)(at + 1 - s), '@'))
        return WA_EJID;
    rc = copy_server(j.server, at + 1, n - (size_t)(at + 1 - s));
    if (rc)
        return rc;
    up = s;
    ulen = (size_t)(at - s);

    if (strcmp(j.server, WA_JID_SERVER_INTEROP) == 0) {
        /* integrator-user:device@interop */
        const char *dash = find_char(up, ulen, '-');
        if (!dash)
            return WA_EJID;
        rc = parse_dec(up, (size_t)(dash - up), 65535, &v);
        if (rc)
            return rc;
        j.integrator = (uint16_t)v;
        ulen -= (size_t)(dash + 1 - up);
        up = dash + 1;
        if (!find_char(up, ulen, ':'))
            return WA_EJID;
    }

    colon = find_char(up, ulen, ':');
    if (colon) {
        size_t dlen = ulen - (size_t)(colon + 1 - up);
        rc = parse_dec(colon + 1, dlen, 65535, &v);
        if (rc)
            return rc;
        j.device = (uint16_t)v;
        ulen = (size_t)(colon - up);
    }
    sep = find_char(up, ulen, '.');
    if (!sep)
        sep = find_char(up, ulen, '_');
    if (sep) {
        rc = parse_dec(sep + 1, ulen - (size_t)(sep + 1 - up), 255, &v);
        if (rc)
            return rc;
        j.agent = (uint8_t)v;
        ulen = (size_t)(sep - up);
    }
    rc = copy_user(j.user, up, ulen);
    if (rc)
        return rc;
    *out = j;
    return 0;
}

int wa_jid_parse(const char *s, wa_jid *out)
{
    if (!s)
        return WA_EINVAL;
    return wa_jid_parse_n(s, strlen(s), out);
}

static int valid(const wa_jid *j)
{
    size_t ul = strnlen(j->user, sizeof j->user);
    size_t sl = strnlen(j->server, sizeof j->server);
    size_t i;

    if (ul > WA_JID_USER_MAX || sl == 0 || sl > WA_JID_SERVER_MAX)
        return 0;
    for (i = 0; i < ul; i++)
        if (!user_char_ok((unsigned char)j->user[i]))
            return 0;
    for (i = 0; i < sl; i++)
        if (!server_char_ok((unsigned char)j->server[i]))
            return 0;
    return 1;
}

int wa_jid_format(const wa_jid *j, char *buf, size_t cap)
{
    char tmp[WA_JID_STR_MAX];
    size_t n = 0, len;
    int interop, msgr;

    if (!j || !buf)
        return WA_EINVAL;
    if (!valid(j))
        return WA_EJID;
    interop = strcmp(j->server, WA_JID_SERVER_INTEROP) == 0;
    msgr = strcmp(j->server, WA_JID_SERVER_MSGR) == 0;
    /* Bounded by WA_JID_STR_MAX: every part has a checked maximum length. */
    if (interop)
        n += (size_t)snprintf(tmp + n, sizeof tmp - n, "%u-", (unsigned)j->integrator);
    len = strlen(j->user);
    memcpy(tmp + n, j->user, len);
    n += len;
    if (j->agent)
        n += (size_t)snprintf(tmp + n, sizeof tmp - n, ".%u:%u", (unsigned)j->agent,
                              (unsigned)j->device);
    else if (j->device || interop || msgr)
        n += (size_t)snprintf(tmp + n, sizeof tmp - n, ":%u", (unsigned)j->device);
    tmp[n++] = '@';
    len = strlen(j->server);
    memcpy(tmp + n, j->server, len);
    n += len;
    if (n + 1 > cap)
        return WA_ELIMIT;
    memcpy(buf, tmp, n);
    buf[n] = '\0';
    return (int)n;
}

int wa_jid_make(wa_jid *out, const char *user, const char *server, uint16_t device)
{
    wa_jid j;
    size_t ul, sl;
    int rc;

    if (!out || !user || !server)
        return WA_EINVAL;
    ul = strlen(user);
    sl = strlen(server);
    if (ul > WA_JID_USER_MAX || sl > WA_JID_SERVER_MAX)
        return WA_ELIMIT;
    memset(&j, 0, sizeof j);
    rc = copy_user(j.user, user, ul);
    if (!rc)
        rc = copy_server(j.server, server, sl);
    if (rc)
        return rc;
    j.device = device;
    *out = j;
    return 0;
}

void wa_jid_to_non_ad(const wa_jid *in, wa_jid *out)
{
    if (in != out)
        *out = *in;
    out->device = 0;
    out->agent = 0;
}

void wa_jid_normalized_user(const wa_jid *in, wa_jid *out)
{
    wa_jid_to_non_ad(in, out);
    if (strcmp(out->server, WA_JID_SERVER_LEGACY_USER) == 0)
        memcpy(out->server, WA_JID_SERVER_USER, sizeof WA_JID_SERVER_USER);
}

uint8_t wa_jid_domain_type(const wa_jid *j)
{
    if (strcmp(j->server, WA_JID_SERVER_LID) == 0)
        return WA_JID_DOMAIN_LID;
    if (strcmp(j->server, WA_JID_SERVER_HOSTED) == 0)
        return WA_JID_DOMAIN_HOSTED;
    if (strcmp(j->server, WA_JID_SERVER_HOSTED_LID) == 0)
        return WA_JID_DOMAIN_HOSTED_LID;
    return j->agent;
}

int wa_jid_equal(const wa_jid *a, const wa_jid *b)
{
    return a->device == b->device && a->agent == b->agent && a->integrator == b->integrator &&
           strcmp(a->user, b->user) == 0 && strcmp(a->server, b->server) == 0;
}

int wa_jid_same_user(const wa_jid *a, const wa_jid *b)
{
    return a->integrator == b->integrator && strcmp(a->user, b->user) == 0 &&
           strcmp(a->server, b->server) == 0;
}

static int server_is(const wa_jid *j, const char *server)
{
    return strcmp(j->server, server) == 0;
}

int wa_jid_is_user(const wa_jid *j)
{
    return server_is(j, WA_JID_SERVER_USER);
}

int wa_jid_is_lid(const wa_jid *j)
{
    return server_is(j, WA_JID_SERVER_LID);
}

int wa_jid_is_hosted(const wa_jid *j)
{
    return server_is(j, WA_JID_SERVER_HOSTED) || server_is(j, WA_JID_SERVER_HOSTED_LID);
}

int wa_jid_is_group(const wa_jid *j)
{
    return server_is(j, WA_JID_SERVER_GROUP);
}

int wa_jid_is_broadcast(const wa_jid *j)
{
    return server_is(j, WA_JID_SERVER_BROADCAST);
}

int wa_jid_is_status_broadcast(const wa_jid *j)
{
    return server_is(j, WA_JID_SERVER_BROADCAST) && strcmp(j->user, "status") == 0;
}

int wa_jid_is_newsletter(const wa_jid *j)
{
    return server_is(j, WA_JID_SERVER_NEWSLETTER);
}

int wa_jid_is_server(const wa_jid *j)
{
    return j->user[0] == '\0';
}

int wa_jid_is_ad(const wa_jid *j)
{
    return j->device != 0 || j->agent != 0;
}
