/* util.c - node building and small helpers for the simulator.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "core/util.h"

static wa_node *vnode(wa_arena *a, const char *tag, va_list ap)
{
    wa_node *n = wa_node_new(a, tag);
    const char *k, *v;

    if (!n)
        return NULL;
    while ((k = va_arg(ap, const char *)) != NULL) {
        v = va_arg(ap, const char *);
        if (v && wa_node_set_attr(a, n, k, v) != 0)
            return NULL;
    }
    return n;
}

wa_node *sim_node(wa_arena *a, const char *tag, ...)
{
    va_list ap;
    wa_node *n;

    va_start(ap, tag);
    n = vnode(a, tag, ap);
    va_end(ap);
    return n;
}

wa_node *sim_child(wa_arena *a, wa_node *parent, const char *tag, ...)
{
    va_list ap;
    wa_node *n;

    if (!parent)
        return NULL;
    va_start(ap, tag);
    n = vnode(a, tag, ap);
    va_end(ap);
    if (n && wa_node_add_child(parent, n) != 0)
        return NULL;
    return n;
}

wa_node *sim_bytes(wa_arena *a, wa_node *n, const void *p, size_t len)
{
    if (n && wa_node_set_bytes(a, n, p, len) != 0)
        return NULL;
    return n;
}

void sim_make_id(sim *s, char *out, size_t cap)
{
    uint32_t r = 0;

    wa_random(&r, sizeof r);
    snprintf(out, cap, "%08X%llu", r, (unsigned long long)++s->next_msg_seq);
}

void sim_unix_str(char *out, size_t cap)
{
    snprintf(out, cap, "%lld", (long long)time(NULL));
}

wa_node *sim_iq_result(wa_arena *a, const wa_node *iq)
{
    const char *id = wa_node_attr(iq, "id");

    return sim_node(a, "iq", "from", "@s.whatsapp.net", "type", "result", "id", id ? id : "", NULL);
}

wa_node *sim_iq_error(wa_arena *a, const wa_node *iq, int code, const char *text)
{
    char buf[16];
    wa_node *n = sim_node(a, "iq", "from", "@s.whatsapp.net", "type", "error", "id",
                          wa_node_attr(iq, "id") ? wa_node_attr(iq, "id") : "", NULL);

    snprintf(buf, sizeof buf, "%d", code);
    sim_child(a, n, "error", "code", buf, "text", text, NULL);
    return n;
}

uint32_t sim_be_bytes(const uint8_t *p, size_t len)
{
    uint32_t v = 0;
    size_t i;

    for (i = 0; i < len && i < 4; i++)
        v = v << 8 | p[i];
    return v;
}
