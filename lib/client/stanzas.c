/*
 * stanzas.c - builders of the stanzas the client sends, with attributes in the order Baileys
 * 7 writes them (the wire fidelity test compares the order): its query() appends `id` last
 * when the node has none; nodes built with an id first keep it first.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "client/client_int.h"
#include "core/util.h"
#include "wa/error.h"

wa_node *wa__child_bytes(wa_arena *a, wa_node *parent, const char *tag, const void *p, size_t n)
{
    wa_node *c = parent ? wa_node_new_child(a, parent, tag) : NULL;

    if (c && wa_node_set_bytes(a, c, p, n) != 0)
        return NULL;
    return c;
}

wa_node *wa__child_be(wa_arena *a, wa_node *parent, const char *tag, uint32_t v, size_t len)
{
    uint8_t b[4];
    size_t i;

    if (len < 1 || len > 4)
        return NULL;
    for (i = 0; i < len; i++)
        b[i] = (uint8_t)(v >> (8 * (len - 1 - i)));
    return wa__child_bytes(a, parent, tag, b, len);
}

/* Set attributes from a NULL-terminated key, value list; a NULL value skips the pair. */
static int attrs(wa_arena *a, wa_node *n, const char *const *kv)
{
    for (; n && kv[0]; kv += 2)
        if (kv[1] && wa_node_set_attr(a, n, kv[0], kv[1]) != 0)
            return -1;
    return n ? 0 : -1;
}

static wa_node *node(wa_arena *a, const char *tag, const char *const *kv)
{
    wa_node *n = wa_node_new(a, tag);

    return n && attrs(a, n, kv) == 0 ? n : NULL;
}

wa_node *wa__st_ping(wa_arena *a, const char *id)
{
    const char *kv[] = {"id", id, "to", WA__SERVER_JID, "type", "get", "xmlns", "w:p", NULL};
    wa_node *n = node(a, "iq", kv);

    return n && wa_node_new_child(a, n, "ping") ? n : NULL;
}

wa_node *wa__st_prekey_count(wa_arena *a, const char *id)
{
    const char *kv[] = {"id", id, "xmlns", "encrypt", "type", "get", "to", WA__SERVER_JID, NULL};
    wa_node *n = node(a, "iq", kv);

    return n && wa_node_new_child(a, n, "count") ? n : NULL;
}

/* <iq xmlns='encrypt' type='get' to='@s.whatsapp.net'><digest/></iq>, as Baileys 7 sends it */
wa_node *wa__st_prekey_digest(wa_arena *a, const char *id)
{
    const char *kv[] = {"to", WA__SERVER_JID, "type", "get", "xmlns", "encrypt", "id", id, NULL};
    wa_node *n = node(a, "iq", kv);

    return n && wa_node_new_child(a, n, "digest") ? n : NULL;
}

/* <iq xmlns='privacy' to='@s.whatsapp.net' type='get'><privacy/></iq>, as Baileys 7 sends it
 * (fetchPrivacySettings) */
wa_node *wa__st_privacy_get(wa_arena *a, const char *id)
{
    const char *kv[] = {"xmlns", "privacy", "to", WA__SERVER_JID, "type", "get", "id", id, NULL};
    wa_node *n = node(a, "iq", kv);

    return n && wa_node_new_child(a, n, "privacy") ? n : NULL;
}

static wa_node *add_skey(wa_arena *a, wa_node *parent, const wa_store_creds *c)
{
    wa_node *sk = wa_node_new_child(a, parent, "skey");

    if (!sk || !wa__child_be(a, sk, "id", c->spk_id, 3) ||
        !wa__child_bytes(a, sk, "value", c->spk_pub, 32) ||
        !wa__child_bytes(a, sk, "signature", c->spk_sig, 64))
        return NULL;
    return sk;
}

wa_node *wa__st_prekey_upload(wa_arena *a, const char *id, const wa_store_creds *c,
                              const wa_store_prekey *keys, size_t n)
{
    const char *kv[] = {"xmlns", "encrypt", "type", "set", "to", WA__SERVER_JID, "id", id, NULL};
    uint8_t type = 0x05;
    wa_node *iq = node(a, "iq", kv), *list;
    size_t i;

    if (!iq || !wa__child_be(a, iq, "registration", c->registration_id, 4) ||
        !wa__child_bytes(a, iq, "type", &type, 1) ||
        !wa__child_bytes(a, iq, "identity", c->identity_pub, 32))
        return NULL;
    list = wa_node_new_child(a, iq, "list");
    if (!list)
        return NULL;
    wa_node_set_list(list);
    for (i = 0; i < n; i++) {
        wa_node *k = wa_node_new_child(a, list, "key");
        if (!k || !wa__child_be(a, k, "id", keys[i].id, 3) ||
            !wa__child_bytes(a, k, "value", keys[i].pub, 32))
            return NULL;
    }
    return add_skey(a, iq, c) ? iq : NULL;
}

wa_node *wa__st_rotate(wa_arena *a, const char *id, const wa_store_creds *c)
{
    const char *kv[] = {"id", id, "to", WA__SERVER_JID, "type", "set", "xmlns", "encrypt", NULL};
    wa_node *iq = node(a, "iq", kv), *rot;

    rot = iq ? wa_node_new_child(a, iq, "rotate") : NULL;
    return rot && add_skey(a, rot, c) ? iq : NULL;
}

wa_node *wa__st_passive_active(wa_arena *a, const char *id)
{
    const char *kv[] = {"to", WA__SERVER_JID, "xmlns", "passive", "type", "set", "id", id, NULL};
    wa_node *n = node(a, "iq", kv);

    return n && wa_node_new_child(a, n, "active") ? n : NULL;
}

wa_node *wa__st_iq_result(wa_arena *a, const wa_node *iq)
{
    const char *id = wa_node_attr(iq, "id");
    const char *kv[] = {"to", WA__SERVER_JID, "type", "result", "id", id, NULL};

    if (!id)
        return NULL;
    return node(a, "iq", kv);
}

wa_node *wa__st_ack(wa_arena *a, const wa_node *n, const char *me_jid)
{
    const char *id = wa_node_attr(n, "id"), *from = wa_node_attr(n, "from");
    const char *kv[] = {
        "id",          id,
        "to",          from,
        "class",       n->tag,
        "participant", wa_node_attr(n, "participant"),
        "recipient",   wa_node_attr(n, "recipient"),
        "type",        wa_node_attr(n, "type"),
        "from",        wa_node_is(n, "message") && me_jid && me_jid[0] ? me_jid : NULL,
        NULL};

    if (!id || !from)
        return NULL;
    return node(a, "ack", kv);
}

wa_node *wa__st_unified_session(wa_arena *a, uint64_t unix_ms)
{
    /* Baileys: (now + 3 days) % 1 week, in ms */
    const uint64_t day = 24ull * 3600 * 1000;
    char id[24];
    wa_node *ib = wa_node_new(a, "ib"), *us;

    snprintf(id, sizeof id, "%llu", (unsigned long long)((unix_ms + 3 * day) % (7 * day)));
    us = ib ? wa_node_new_child(a, ib, "unified_session") : NULL;
    if (!us || wa_node_set_attr(a, us, "id", id) != 0)
        return NULL;
    return ib;
}
