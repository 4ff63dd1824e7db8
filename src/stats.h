/*
 * stats.h - the metric families wagate exports on GET /metrics, registered at start-up so
 * that every one of them is present (at zero) before anything feeds it.
 *
 * Fed today: HTTP request durations, sessions by status, memory, event-loop lag, health,
 * process start time, WhatsApp connects/disconnects/reconnects (backend_wa.c), webhook
 * deliveries/failures/latency (gateway.c, from the event hub's attempt callback). Registered
 * to be fed later (zero until then): the keep-alive round trip (libwa's client does not report
 * it yet), messages in/out, backups.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_STATS_H
#define WG_STATS_H

#include "metrics.h"

typedef struct wg_stats {
    wg_metrics *reg;
    wg_metric *build_info, *start_time, *rss;
    wg_metric *http_duration; /* {route, method, status} */
    wg_metric *sessions, *sessions_max;
    wg_metric *mem_used, *mem_limit, *mem_threshold, *mem_pressure, *mem_trims;
    wg_metric *loop_lag, *loop_lag_max;
    wg_metric *health_ok, *store_writable;
    wg_metric *wa_connects, *wa_disconnects, *wa_reconnects, *wa_keepalive_rtt;
    wg_metric *messages; /* {direction: in, out} */
    wg_metric *webhook_deliveries, *webhook_failures, *webhook_latency;
    wg_metric *backups, *backup_last_success;
    wg_metric *backup_bytes, *backup_duration, *backup_restored, *backup_restore_fallbacks;
} wg_stats;

/* Register every family (and the zero series of families whose label values are known).
 * 0 or WA_ENOMEM. */
int wg_stats_init(wg_stats *st, const char *version);
void wg_stats_cleanup(wg_stats *st);

/* For the client backend (names as wa_disconnect_reason_name(): "network", "replaced", ...). */
void wg_stats_wa_connect(wg_stats *st);
void wg_stats_wa_disconnect(wg_stats *st, const char *reason);
void wg_stats_wa_reconnect(wg_stats *st);
void wg_stats_wa_keepalive_rtt(wg_stats *st, double seconds);
void wg_stats_message(wg_stats *st, int outgoing);
/* One finished webhook attempt: delivered (2xx) or not, given up (no more retries), duration. */
void wg_stats_webhook_attempt(wg_stats *st, int delivered, int given_up, double seconds);

/* One HTTP request: route pattern ("unmatched" when none), method, status, seconds. */
void wg_stats_http(wg_stats *st, const char *route, const char *method, int status, double seconds);

#endif
