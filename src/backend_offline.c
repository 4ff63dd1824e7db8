/*
 * backend_offline.c - a session backend that does NOT connect to WhatsApp.
 *
 * PLACEHOLDER. It exists so that the gateway (API, persistence, health, metrics, dashboard)
 * can run and be tested before libwa's client (include/wa/client.h) is ready. A started
 * session is reported STARTING and stays there; stop reports STOPPED; logout reports
 * LOGGED_OUT without anything to unlink. No QR, no pairing, no messages. wagate logs a warning
 * at start-up and /ready shows "backend": "offline" while this is in use. Replace it with the
 * libwa client backend (open = wa_client_new on the shared wa_store, start = wa_client_start,
 * callbacks -> wg_session_report_*).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdlib.h>

#include "session.h"
#include "wa/error.h"

typedef struct offline_handle {
    wg_session *s;
} offline_handle;

static int off_open(void *ctx, wg_session *s, void **handle)
{
    offline_handle *h = calloc(1, sizeof *h);

    (void)ctx;
    if (!h)
        return WA_ENOMEM;
    h->s = s;
    *handle = h;
    return 0;
}

static int off_start(void *ctx, void *handle)
{
    offline_handle *h = handle;

    (void)ctx;
    wg_session_report_status(h->s, WG_STATUS_STARTING,
                             "offline backend: not connected to WhatsApp");
    return 0;
}

static void off_stop(void *ctx, void *handle)
{
    offline_handle *h = handle;

    (void)ctx;
    wg_session_report_status(h->s, WG_STATUS_STOPPED, NULL);
}

static int off_logout(void *ctx, void *handle)
{
    offline_handle *h = handle;

    (void)ctx;
    wg_session_report_status(h->s, WG_STATUS_LOGGED_OUT, "logged out by request");
    return 0;
}

static void off_close(void *ctx, void *handle)
{
    (void)ctx;
    free(handle);
}

static int off_purge(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return 0;
}

static size_t off_memory(void *ctx, void *handle)
{
    (void)ctx;
    (void)handle;
    return sizeof(offline_handle);
}

const wg_backend_ops wg_backend_offline_ops = {
    .name = "offline",
    .connects_to_whatsapp = 0,
    .open = off_open,
    .start = off_start,
    .stop = off_stop,
    .logout = off_logout,
    .close = off_close,
    .purge = off_purge,
    .memory = off_memory,
    .trim = NULL,
};
