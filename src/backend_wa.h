/*
 * backend_wa.h - wagate's session backend over libwa's client (include/wa/client.h): one
 * wa_store (DATA_DIR/libwa.db) shared by every session, one wa_client per running session, all
 * on the gateway's loop. See backend_wa.c for the status mapping.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_BACKEND_WA_H
#define WG_BACKEND_WA_H

#include <stdint.h>

#include <uv.h>

#include "session.h"
#include "stats.h"

/* The store file under DATA_DIR (mode 0600; one account per session, named like it). */
#define WG_WA_STORE_FILE "libwa.db"

typedef struct wg_backend_wa wg_backend_wa;

typedef struct wg_backend_wa_options {
    const char *store_path;          /* required: the wa_store file */
    const char *ws_url;              /* NULL: WhatsApp's */
    const uint8_t *root_key;         /* 32 bytes, NULL: WhatsApp's real root */
    const char *ca_file;             /* NULL or "": system CAs only */
    unsigned keepalive_ms;           /* 0: libwa's default */
    unsigned max_reconnect_failures; /* FAILED after this many failed attempts in a row; 0: never */
    unsigned reconnect_base_ms;      /* 0: libwa's default (tests shorten it) */
    unsigned reconnect_max_ms;       /* 0: libwa's default */
    wg_stats *stats;                 /* NULL or the metrics to feed (borrowed) */
    const char *version;             /* WhatsApp Web version "2.3000.N"; NULL/"": libwa's */
} wg_backend_wa_options;

/* Open the store. 0 and *out; WA_EINVAL, WA_ESTORE, WA_ENOMEM. Strings are copied; the loop
 * and stats are borrowed. */
int wg_backend_wa_new(uv_loop_t *loop, const wg_backend_wa_options *o, wg_backend_wa **out);
/* Close the store. Every handle must be closed already (their clients freed); the loop need not
 * have run since (libwa touches no store once a client is freed). NULL allowed. */
void wg_backend_wa_free(wg_backend_wa *b);

/* ctx: the wg_backend_wa. */
extern const wg_backend_ops wg_backend_wa_ops;

#endif
