/*
 * stats.c - wagate's metric families (see stats.h). Names follow Prometheus conventions: base
 * units (seconds, bytes), counters end in _total, process_* as the client libraries name them.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "stats.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "session.h"
#include "wa/error.h"

static const double http_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                      0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const double rtt_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const double webhook_buckets[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

static const char *const l_route[] = {"route", "method", "status", NULL};
static const char *const l_status[] = {"status", NULL};
static const char *const l_reason[] = {"reason", NULL};
static const char *const l_result[] = {"result", NULL};
static const char *const l_version[] = {"version", NULL};
static const char *const l_direction[] = {"direction", NULL};

/* Disconnect reasons of include/wa/client.h (wa_disconnect_reason_name), pre-registered at 0. */
static const char *const disc_reasons[] = {
    "stopped",  "restart",         "network",        "timeout",     "dead_link", "server",
    "replaced", "logged_out",      "banned",         "bad_version", "downgrade", "certificate",
    "protocol", "pairing_expired", "pairing_failed", "store",       "proxy_auth"};

int wg_stats_init(wg_stats *st, const char *version)
{
    wg_metrics *m;
    struct timespec now;
    size_t i;

    memset(st, 0, sizeof *st);
    if (wg_metrics_new(&st->reg))
        return WA_ENOMEM;
    m = st->reg;
#define ADD(field, kind, name, help, labels, b, nb)                                                \
    if (!(st->field = wg_metrics_add(m, kind, name, help, labels, b, nb)))                         \
        goto fail;
    ADD(build_info, WG_METRIC_GAUGE, "wagate_build_info", "wagate version (always 1).", l_version,
        NULL, 0);
    ADD(start_time, WG_METRIC_GAUGE, "process_start_time_seconds",
        "Start time of the process since the Unix epoch in seconds.", NULL, NULL, 0);
    ADD(rss, WG_METRIC_GAUGE, "process_resident_memory_bytes", "Resident memory size in bytes.",
        NULL, NULL, 0);
    ADD(http_duration, WG_METRIC_HISTOGRAM, "wagate_http_request_duration_seconds",
        "Time to handle an HTTP request, by route pattern, method and status.", l_route,
        http_buckets, sizeof http_buckets / sizeof *http_buckets);
    ADD(sessions, WG_METRIC_GAUGE, "wagate_sessions", "Sessions by status.", l_status, NULL, 0);
    ADD(sessions_max, WG_METRIC_GAUGE, "wagate_sessions_max_connections",
        "Running sessions allowed (MAX_CONNECTIONS).", NULL, NULL, 0);
    ADD(mem_used, WG_METRIC_GAUGE, "wagate_memory_used_bytes",
        "Memory in use: the cgroup's memory.current, else the process's resident set.", NULL, NULL,
        0);
    ADD(mem_limit, WG_METRIC_GAUGE, "wagate_memory_limit_bytes",
        "Memory limit: the cgroup's memory.max, else the machine's MemTotal.", NULL, NULL, 0);
    ADD(mem_threshold, WG_METRIC_GAUGE, "wagate_memory_threshold_ratio",
        "MEMORY_THRESHOLD: fraction of the limit above which new sessions are refused.", NULL, NULL,
        0);
    ADD(mem_pressure, WG_METRIC_GAUGE, "wagate_memory_pressure",
        "1 while memory use is above the threshold (new sessions refused).", NULL, NULL, 0);
    ADD(mem_trims, WG_METRIC_COUNTER, "wagate_memory_trims_total",
        "Times the memory governor trimmed caches and released idle memory.", NULL, NULL, 0);
    ADD(loop_lag, WG_METRIC_GAUGE, "wagate_event_loop_lag_seconds",
        "Delay of the last event-loop probe timer beyond its due time.", NULL, NULL, 0);
    ADD(loop_lag_max, WG_METRIC_GAUGE, "wagate_event_loop_lag_max_seconds",
        "Largest event-loop lag seen during the last health interval.", NULL, NULL, 0);
    ADD(health_ok, WG_METRIC_GAUGE, "wagate_health_ok", "1 if the last health self-check passed.",
        NULL, NULL, 0);
    ADD(store_writable, WG_METRIC_GAUGE, "wagate_store_writable",
        "1 if the last write probe of the session database succeeded.", NULL, NULL, 0);
    ADD(wa_connects, WG_METRIC_COUNTER, "wagate_whatsapp_connects_total",
        "Successful logins to WhatsApp.", NULL, NULL, 0);
    ADD(wa_disconnects, WG_METRIC_COUNTER, "wagate_whatsapp_disconnects_total",
        "Disconnections from WhatsApp, by reason.", l_reason, NULL, 0);
    ADD(wa_reconnects, WG_METRIC_COUNTER, "wagate_whatsapp_reconnects_total",
        "Reconnection attempts to WhatsApp.", NULL, NULL, 0);
    ADD(wa_keepalive_rtt, WG_METRIC_HISTOGRAM, "wagate_whatsapp_keepalive_rtt_seconds",
        "Round-trip time of WhatsApp keep-alive pings.", NULL, rtt_buckets,
        sizeof rtt_buckets / sizeof *rtt_buckets);
    ADD(messages, WG_METRIC_COUNTER, "wagate_messages_total", "Messages, by direction.",
        l_direction, NULL, 0);
    ADD(webhook_deliveries, WG_METRIC_COUNTER, "wagate_webhook_deliveries_total",
        "Webhook delivery attempts, by result (success, failure).", l_result, NULL, 0);
    ADD(webhook_failures, WG_METRIC_COUNTER, "wagate_webhook_events_failed_total",
        "Webhook events abandoned after the last retry.", NULL, NULL, 0);
    ADD(webhook_latency, WG_METRIC_HISTOGRAM, "wagate_webhook_delivery_duration_seconds",
        "Duration of webhook delivery attempts.", NULL, webhook_buckets,
        sizeof webhook_buckets / sizeof *webhook_buckets);
    ADD(backups, WG_METRIC_COUNTER, "wagate_backups_total", "Session backups, by result.", l_result,
        NULL, 0);
    ADD(backup_last_success, WG_METRIC_GAUGE, "wagate_backup_last_success_timestamp_seconds",
        "Time of the last successful backup since the Unix epoch (0: none yet).", NULL, NULL, 0);
    ADD(backup_bytes, WG_METRIC_COUNTER, "wagate_backup_bytes_total",
        "Bytes of backup objects uploaded.", NULL, NULL, 0);
    ADD(backup_duration, WG_METRIC_GAUGE, "wagate_backup_duration_seconds",
        "Duration of the last successful backup (snapshot to upload done).", NULL, NULL, 0);
    ADD(backup_restored, WG_METRIC_COUNTER, "wagate_backup_restored_total",
        "Sessions restored from a backup at boot.", NULL, NULL, 0);
    ADD(backup_restore_fallbacks, WG_METRIC_COUNTER, "wagate_backup_restore_fallbacks_total",
        "Unusable backup objects passed over for an older generation at restore.", NULL, NULL, 0);
#undef ADD
    {
        const char *v[1] = {version};
        wg_metric_set(wg_metric_series_get(st->build_info, v), 1);
    }
    clock_gettime(CLOCK_REALTIME, &now);
    wg_metric_set(wg_metric_get0(st->start_time), (double)now.tv_sec);
    for (i = 0; i < WG_STATUS_COUNT; i++)
        wg_metric_get1(st->sessions, wg_status_name((int)i));
    for (i = 0; i < sizeof disc_reasons / sizeof *disc_reasons; i++)
        wg_metric_get1(st->wa_disconnects, disc_reasons[i]);
    wg_metric_get1(st->messages, "in");
    wg_metric_get1(st->messages, "out");
    wg_metric_get1(st->webhook_deliveries, "success");
    wg_metric_get1(st->webhook_deliveries, "failure");
    wg_metric_get1(st->backups, "success");
    wg_metric_get1(st->backups, "failure");
    /* unlabelled families: their single series exists from the start */
    wg_metric_get0(st->rss);
    wg_metric_get0(st->sessions_max);
    wg_metric_get0(st->mem_used);
    wg_metric_get0(st->mem_limit);
    wg_metric_get0(st->mem_threshold);
    wg_metric_get0(st->mem_pressure);
    wg_metric_get0(st->mem_trims);
    wg_metric_get0(st->loop_lag);
    wg_metric_get0(st->loop_lag_max);
    wg_metric_get0(st->health_ok);
    wg_metric_get0(st->store_writable);
    wg_metric_get0(st->wa_connects);
    wg_metric_get0(st->wa_reconnects);
    wg_metric_get0(st->wa_keepalive_rtt);
    wg_metric_get0(st->webhook_failures);
    wg_metric_get0(st->webhook_latency);
    wg_metric_get0(st->backup_last_success);
    wg_metric_get0(st->backup_bytes);
    wg_metric_get0(st->backup_duration);
    wg_metric_get0(st->backup_restored);
    wg_metric_get0(st->backup_restore_fallbacks);
    return 0;
fail:
    wg_stats_cleanup(st);
    return WA_ENOMEM;
}

void wg_stats_cleanup(wg_stats *st)
{
    wg_metrics_free(st->reg);
    memset(st, 0, sizeof *st);
}

void wg_stats_wa_connect(wg_stats *st)
{
    wg_metric_inc(wg_metric_get0(st->wa_connects));
}

void wg_stats_wa_disconnect(wg_stats *st, const char *reason)
{
    wg_metric_inc(wg_metric_get1(st->wa_disconnects, reason ? reason : "unknown"));
}

void wg_stats_wa_reconnect(wg_stats *st)
{
    wg_metric_inc(wg_metric_get0(st->wa_reconnects));
}

void wg_stats_wa_keepalive_rtt(wg_stats *st, double seconds)
{
    wg_metric_observe(wg_metric_get0(st->wa_keepalive_rtt), seconds);
}

void wg_stats_message(wg_stats *st, int outgoing)
{
    wg_metric_inc(wg_metric_get1(st->messages, outgoing ? "out" : "in"));
}

void wg_stats_webhook_attempt(wg_stats *st, int delivered, int given_up, double seconds)
{
    wg_metric_inc(wg_metric_get1(st->webhook_deliveries, delivered ? "success" : "failure"));
    wg_metric_observe(wg_metric_get0(st->webhook_latency), seconds);
    if (given_up)
        wg_metric_inc(wg_metric_get0(st->webhook_failures));
}

void wg_stats_http(wg_stats *st, const char *route, const char *method, int status, double seconds)
{
    char code[8];
    const char *v[3];

    snprintf(code, sizeof code, "%d", status);
    v[0] = route;
    v[1] = method;
    v[2] = code;
    wg_metric_observe(wg_metric_series_get(st->http_duration, v), seconds);
}
