/*
 * addr.c - WhatsApp addresses of the Signal layer and their libsignal names.
 *
 * Name mapping (Baileys 7 lib/Signal/libsignal.js jidToSignalProtocolAddress): the user for a
 * phone-number address, "user_<domain type>" otherwise (LID 1, hosted 128, hosted LID 129);
 * the device goes into signal_protocol_address.device_id. Users never contain '_', so a name
 * parses back to exactly one address.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "signal/signal_int.h"
#include "wa/error.h"

static int server_ok(int server)
{
    return server == WA_SIGNAL_PN || server == WA_SIGNAL_LID || server == WA_SIGNAL_HOSTED ||
           server == WA_SIGNAL_HOSTED_LID;
}

static int user_char_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '_' && c != '.' && c != ':' && c != '@';
}

/* 0 if user[0..len) is a valid user. */
static int check_user(const char *user, size_t len)
{
    size_t i;

    if (len == 0)
        return WA_EINVAL;
    if (len > WA_SIGNAL_USER_MAX)
        return WA_ELIMIT;
    for (i = 0; i < len; i++)
        if (!user_char_ok((unsigned char)user[i]))
            return WA_EINVAL;
    return 0;
}

int wa_signal_addr_make(wa_signal_addr *out, const char *user, int server, uint16_t device)
{
    size_t len;
    int rc;

    if (!out || !user || !server_ok(server))
        return WA_EINVAL;
    len = strnlen(user, WA_SIGNAL_USER_MAX + 1);
    rc = check_user(user, len);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    memcpy(out->user, user, len);
    out->server = (uint8_t)server;
    out->device = device;
    return 0;
}

/* 0 if a is a valid address (NUL-terminated user, known server). */
static int check_addr(const wa_signal_addr *a)
{
    size_t len;

    if (!a || !server_ok(a->server))
        return WA_EINVAL;
    len = strnlen(a->user, sizeof a->user);
    if (len == sizeof a->user)
        return WA_EINVAL;
    return check_user(a->user, len) ? WA_EINVAL : 0;
}

int wa_signal_addr_name(const wa_signal_addr *a, char *buf, size_t cap)
{
    int n;

    if (!buf || check_addr(a))
        return WA_EINVAL;
    if (a->server == WA_SIGNAL_PN)
        n = snprintf(buf, cap, "%s", a->user);
    else
        n = snprintf(buf, cap, "%s_%u", a->user, (unsigned)a->server);
    if (n < 0)
        return WA_EINVAL;
    if ((size_t)n >= cap)
        return WA_ELIMIT;
    return n;
}

int wa_signal_addr_from_name(wa_signal_addr *out, const char *name, size_t len, int32_t device)
{
    const char *us;
    size_t ulen;
    int server = WA_SIGNAL_PN;
    wa_signal_addr a;

    if (!out || !name || device < 0 || device > UINT16_MAX)
        return WA_EINVAL;
    us = memchr(name, '_', len);
    ulen = us ? (size_t)(us - name) : len;
    if (us) {
        size_t slen = len - ulen - 1;
        const char *sfx = us + 1;

        /* exact canonical spellings only */
        if (slen == 1 && sfx[0] == '1')
            server = WA_SIGNAL_LID;
        else if (slen == 3 && memcmp(sfx, "128", 3) == 0)
            server = WA_SIGNAL_HOSTED;
        else if (slen == 3 && memcmp(sfx, "129", 3) == 0)
            server = WA_SIGNAL_HOSTED_LID;
        else
            return WA_EINVAL;
    }
    if (check_user(name, ulen))
        return WA_EINVAL;
    memset(&a, 0, sizeof a);
    memcpy(a.user, name, ulen);
    a.server = (uint8_t)server;
    a.device = (uint16_t)device;
    *out = a;
    return 0;
}

int wa_signal_addr_equal(const wa_signal_addr *a, const wa_signal_addr *b)
{
    return a->server == b->server && a->device == b->device &&
           strncmp(a->user, b->user, sizeof a->user) == 0;
}

const char *wa_signal_type_name(int type)
{
    switch (type) {
    case WA_SIGNAL_MSG:
        return "msg";
    case WA_SIGNAL_PKMSG:
        return "pkmsg";
    default:
        return NULL;
    }
}

int wa_signal_type_parse(const char *s, int *type)
{
    if (!s || !type)
        return WA_EINVAL;
    if (strcmp(s, "msg") == 0)
        *type = WA_SIGNAL_MSG;
    else if (strcmp(s, "pkmsg") == 0)
        *type = WA_SIGNAL_PKMSG;
    else
        return WA_EINVAL;
    return 0;
}

int wa__signal_sg_addr(wa__sg_addr *out, const wa_signal_addr *addr)
{
    int n = wa_signal_addr_name(addr, out->name, sizeof out->name);

    if (n < 0)
        return WA_EINVAL;
    out->a.name = out->name;
    out->a.name_len = (size_t)n;
    out->a.device_id = addr->device;
    return 0;
}

int wa__signal_check_group(const char *group)
{
    size_t len;

    if (!group)
        return WA_EINVAL;
    len = strnlen(group, WA_SIGNAL_GROUP_MAX + 1);
    if (len == 0)
        return WA_EINVAL;
    if (len > WA_SIGNAL_GROUP_MAX)
        return WA_ELIMIT;
    return 0;
}

int wa__signal_sg_skname(wa__sg_skname *out, const char *group, const wa_signal_addr *sender)
{
    int n, rc = wa__signal_check_group(group);

    if (rc)
        return rc;
    n = wa_signal_addr_name(sender, out->name, sizeof out->name);
    if (n < 0)
        return WA_EINVAL;
    out->n.group_id = group;
    out->n.group_id_len = strlen(group);
    out->n.sender.name = out->name;
    out->n.sender.name_len = (size_t)n;
    out->n.sender.device_id = sender->device;
    return 0;
}
