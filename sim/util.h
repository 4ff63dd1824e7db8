/*
 * util.h - small helpers of the simulator: terse node building, ids, times.
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WASIM_UTIL_H
#define WASIM_UTIL_H

#include <stdint.h>

#include "bnode/node.h"
#include "sim.h"

/* A node with attributes given as key, value pairs ending with NULL; NULL values are skipped.
 * Returns NULL on arena exhaustion. */
wa_node *sim_node(wa_arena *a, const char *tag, ...);
/* Same, appended to parent. */
wa_node *sim_child(wa_arena *a, wa_node *parent, const char *tag, ...);
/* Bytes content helper: returns n. */
wa_node *sim_bytes(wa_arena *a, wa_node *n, const void *p, size_t len);
/* A fresh server-side stanza id ("sim-..."). */
void sim_make_id(sim *s, char *out, size_t cap);
/* Current unix time in seconds, as a decimal string into out. */
void sim_unix_str(char *out, size_t cap);
/* Reply <iq type='result' id=ID from=..> to an iq; returns the node to add children to. */
wa_node *sim_iq_result(wa_arena *a, const wa_node *iq);
/* Reply <iq type='error' id=ID><error code text/></iq>. */
wa_node *sim_iq_error(wa_arena *a, const wa_node *iq, int code, const char *text);
/* Big-endian helpers for the node formats that carry numbers in bytes. */
uint32_t sim_be_bytes(const uint8_t *p, size_t len);

#endif
