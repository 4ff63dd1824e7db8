/*
 * fuzz.c - fuzz target "events_filter": the parts of src/events that read client input before
 * anything else: the ?session= and ?events= lists of GET /api/events, and event ids from since=
 * / Last-Event-ID (ULID decoding, the generator seeded with them).
 *
 * Input layout: up to three NUL-separated strings: sessions, events, id. The filter is parsed
 * and matched against every registered name; the id is validated, and if valid its time read
 * and the generator seeded with it, after which generated ids must sort after it.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[4096], bad[WG_EVENT_SESSION_MAX + 1];
    const char *part[3] = {"", "", ""};
    wg_event_filter f;
    wg_event_idgen g;
    char id[WG_EVENT_ID_LEN + 1];
    size_t i, k = 0;
    uint64_t ms;

    if (size >= sizeof buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    part[0] = buf;
    for (i = 0; i < size && k < 2; i++) {
        if (buf[i] == '\0')
            part[++k] = buf + i + 1;
    }
    wg_event_filter_init(&f);
    if (wg_event_filter_parse(&f, part[0], part[1], bad, sizeof bad) == 0) {
        const char *const *names = wg_event_names();
        for (i = 0; names[i]; i++) {
            /* an empty filter matches everything */
            int m = wg_event_filter_match(&f, part[0][0] ? "s" : NULL, names[i]);
            if (f.nsessions == 0 && f.nevents == 0 && !m)
                abort();
        }
    }
    if (wg_event_id_valid(part[2])) {
        if (wg_event_id_time(part[2], &ms))
            abort();
        memset(&g, 0, sizeof g);
        if (wg_event_idgen_seed(&g, part[2]))
            abort();
        if (wg_event_id_next(&g, ms, id) == 0 && strcmp(id, part[2]) <= 0 &&
            strcmp(part[2], "7ZZZZZZZZZZZZZZZZZZZZZZZZZ") != 0)
            abort();
    }
    return 0;
}
