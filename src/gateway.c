/*
 * gateway.c - assembly of one wagate instance (see gateway.h): start-up order, the periodic
 * self-check with the memory governor, and shutdown.
 *
 * Start-up: DATA_DIR (created 0700), API key (given, or DATA_DIR/api_key, or generated and
 * stored there), session database, metrics, sessions loaded and the wanted ones started, HTTP
 * listener, event-loop lag probe, first self-check. Any failure undoes what was done.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "gateway.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "backend_wa.h"
#include "core/log.h"
#include "core/util.h"
#include "logging.h"
#include "wa/error.h"

#define COMPONENT     "gateway"
#define API_KEY_BYTES 32

/* mkdir -p with mode 0700 for the directories it creates. */
static int make_dirs(const char *path)
{
    char tmp[WG_CONFIG_PATH_MAX];
    size_t i, n = strlen(path);

    if (n == 0 || n >= sizeof tmp)
        return WA_EINVAL;
    memcpy(tmp, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0')
            continue;
        tmp[i] = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return WA_EIO;
        tmp[i] = i < n ? '/' : '\0';
    }
    return 0;
}

int wg_api_key_load_or_create(const char *path, char *key, int *generated)
{
    char buf[WG_API_KEY_MAX + 2];
    uint8_t raw[API_KEY_BYTES];
    ssize_t n;
    size_t len;
    int fd, rc = WA_EIO;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        n = read(fd, buf, sizeof buf - 1);
        if (fstat(fd, &st) == 0 && (st.st_mode & 077))
            wa_log_warn(COMPONENT, "%s is readable by other users: chmod 600 it", path);
        close(fd);
        if (n < 0)
            return WA_EIO;
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        rc = wg_api_key_valid(buf) ? 0 : WA_EINVAL;
        if (!rc) {
            memcpy(key, buf, strlen(buf) + 1);
            *generated = 0;
        }
        wa_wipe(buf, sizeof buf);
        return rc;
    }
    if (errno != ENOENT)
        return WA_EIO;
    if (wa_random(raw, sizeof raw))
        return WA_EIO;
    wa_base64_encode(buf, raw, sizeof raw, 1);
    wa_wipe(raw, sizeof raw);
    len = strlen(buf);
    /* O_EXCL: two instances starting at once on one DATA_DIR do not overwrite each other */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        goto out;
    buf[len] = '\n';
    if (write(fd, buf, len + 1) != (ssize_t)(len + 1) || fsync(fd) != 0) {
        close(fd);
        unlink(path);
        goto out;
    }
    close(fd);
    buf[len] = '\0';
    memcpy(key, buf, len + 1);
    *generated = 1;
    rc = 0;
out:
    wa_wipe(buf, sizeof buf);
    return rc;
}

static void refresh_counts(wg_gateway *gw)
{
    size_t counts[WG_STATUS_COUNT], i;

    wg_sessions_count_by_status(gw->sessions, counts);
    for (i = 0; i < WG_STATUS_COUNT; i++)
        wg_metric_set(wg_metric_get1(gw->stats.sessions, wg_status_name((int)i)),
                      (double)counts[i]);
    gw->health.sessions_expected = wg_sessions_running(gw->sessions);
    gw->health.sessions_connected = counts[WG_STATUS_WORKING];
}

void wg_gateway_collect(wg_gateway *gw)
{
    wg_stats *st = &gw->stats;

    refresh_counts(gw);
    wg_memory_read(&gw->mem);
    wg_metric_set(wg_metric_get0(st->mem_used), (double)gw->mem.used);
    wg_metric_set(wg_metric_get0(st->mem_limit), (double)gw->mem.limit);
    wg_metric_set(wg_metric_get0(st->mem_threshold), gw->cfg.memory_threshold);
    wg_metric_set(wg_metric_get0(st->mem_pressure), gw->mem.pressure);
    wg_metric_set(wg_metric_get0(st->mem_trims), (double)gw->mem.trims);
    wg_metric_set(wg_metric_get0(st->rss), (double)gw->mem.rss);
    wg_metric_set(wg_metric_get0(st->sessions_max), gw->cfg.max_connections);
    wg_metric_set(wg_metric_get0(st->loop_lag), gw->lag.lag);
    wg_metric_set(wg_metric_get0(st->loop_lag_max), gw->health.max_lag);
    wg_metric_set(wg_metric_get0(st->health_ok), gw->health.ok);
    wg_metric_set(wg_metric_get0(st->store_writable), gw->health.store_ok);
}

static void memory_debug(wg_gateway *gw)
{
    size_t i, total = 0;

    for (i = 0; i < wg_sessions_count(gw->sessions); i++) {
        wg_session *s = wg_sessions_at(gw->sessions, i);
        size_t b = wg_session_memory(s);
        total += b;
        wa_log_info("memory", "session %s status=%s bytes=%zu", s->name, wg_status_name(s->status),
                    b);
    }
    wa_log_info("memory",
                "used=%llu limit=%llu (%s) ratio=%.3f threshold=%.3f rss=%llu sessions=%zu "
                "session_bytes=%zu pressure=%d trims=%lu",
                (unsigned long long)gw->mem.used, (unsigned long long)gw->mem.limit,
                gw->mem.limit_from_cgroup ? "cgroup" : "MemTotal", wg_memory_ratio(&gw->mem),
                gw->cfg.memory_threshold, (unsigned long long)gw->mem.rss,
                wg_sessions_count(gw->sessions), total, gw->mem.pressure, gw->mem.trims);
}

void wg_gateway_check(wg_gateway *gw)
{
    wg_health *h = &gw->health;
    int was_ok = h->ok, was_pressure = gw->mem.pressure;

    h->max_lag = gw->lag.max_lag > gw->lag.lag ? gw->lag.max_lag : gw->lag.lag;
    wg_lag_probe_reset_max(&gw->lag);
    h->loop_ok = h->max_lag * 1000.0 <= WG_HEALTH_MAX_LAG_MS;
    h->store_ok = wg_db_probe(gw->db) == 0;
    if (wg_memory_check(&gw->mem)) {
        wg_memory_trim(&gw->mem);
        wg_sessions_trim(gw->sessions);
    }
    if (gw->mem.pressure != was_pressure) {
        if (gw->mem.pressure)
            wa_log_warn("memory",
                        "memory use %.1f%% of the limit is above MEMORY_THRESHOLD (%.1f%%): "
                        "trimming, new sessions refused",
                        100.0 * wg_memory_ratio(&gw->mem), 100.0 * gw->cfg.memory_threshold);
        else
            wa_log_info("memory", "memory use back to %.1f%% of the limit: sessions accepted",
                        100.0 * wg_memory_ratio(&gw->mem));
    }
    refresh_counts(gw);
    h->ok = h->store_ok && h->loop_ok;
    h->checked_at = (int64_t)time(NULL);
    if (h->ok != was_ok || !h->ok)
        wa_log(h->ok ? WA_LOG_INFO : WA_LOG_WARN, "health",
               "self-check %s: store=%s loop_lag_max=%.3fs sessions=%zu/%zu connected",
               h->ok ? "ok" : "FAILED", h->store_ok ? "writable" : "NOT writable", h->max_lag,
               h->sessions_connected, h->sessions_expected);
    if (gw->cfg.memory_debug)
        memory_debug(gw);
}

static void on_health_timer(uv_timer_t *t)
{
    wg_gateway_check(t->data);
}

static void warn_unimplemented(const wg_gateway *gw)
{
    if (!gw->backend.ops->connects_to_whatsapp)
        wa_log_warn(COMPONENT, "session backend \"%s\" does NOT connect to WhatsApp",
                    gw->backend.ops->name);
    if (gw->cfg.storage_type != WG_STORAGE_LOCAL)
        wa_log_warn(COMPONENT,
                    "SESSION_STORAGE_TYPE=%s: remote backups are not implemented yet; "
                    "sessions are kept in DATA_DIR only",
                    wg_storage_type_name(gw->cfg.storage_type));
    if (gw->cfg.webhook_url[0])
        wa_log_warn(COMPONENT, "WEBHOOK_URL is set but webhook delivery is not implemented yet");
}

int wg_gateway_start(uv_loop_t *loop, const wg_config *cfg, const wg_gateway_options *opts,
                     wg_gateway **out)
{
    wg_gateway_options none = {0};
    char path[WG_CONFIG_PATH_MAX + 64];
    wg_gateway *gw;
    int rc;

    if (!opts)
        opts = &none;
    gw = calloc(1, sizeof *gw);
    if (!gw)
        return WA_ENOMEM;
    gw->loop = loop;
    gw->cfg = *cfg;
    gw->pair_code_wait_ms =
        opts->pair_code_wait_ms ? opts->pair_code_wait_ms : WG_PAIR_CODE_WAIT_MS;
    gw->backend.ops = opts->backend;
    gw->backend.ctx = opts->backend_ctx;
    wg_memory_init(&gw->mem, cfg->memory_threshold, opts->cgroup_root, opts->proc_root);

    *out = NULL;
    if ((rc = make_dirs(cfg->data_dir))) {
        wa_log_error(COMPONENT, "DATA_DIR %s: cannot create: %s", cfg->data_dir, strerror(errno));
        goto fail;
    }
    if (cfg->api_key[0]) {
        memcpy(gw->api_key, cfg->api_key, sizeof gw->api_key);
    } else {
        snprintf(gw->api_key_path, sizeof gw->api_key_path, "%s/%s", cfg->data_dir,
                 WG_API_KEY_FILE);
        rc = wg_api_key_load_or_create(gw->api_key_path, gw->api_key, &gw->api_key_generated);
        if (rc) {
            wa_log_error(COMPONENT, "%s: %s", gw->api_key_path,
                         rc == WA_EINVAL ? "not a valid API key (delete it to generate a new one)"
                                         : "cannot read or create the API key file");
            goto fail;
        }
        gw->api_key_from_file = !gw->api_key_generated;
    }
    wg_logging_add_secret(gw->api_key);
    if (cfg->webhook_secret[0])
        wg_logging_add_secret(cfg->webhook_secret);

    snprintf(path, sizeof path, "%s/%s", cfg->data_dir, WG_DB_FILE);
    if ((rc = wg_db_open(path, &gw->db)))
        goto fail;
    if ((rc = wg_stats_init(&gw->stats, WG_VERSION)))
        goto fail;
    if (!gw->backend.ops) {
        wg_backend_wa_options bo;
        memset(&bo, 0, sizeof bo);
        snprintf(path, sizeof path, "%s/%s", cfg->data_dir, WG_WA_STORE_FILE);
        bo.store_path = path;
        bo.ws_url = cfg->ws_url;
        bo.root_key = cfg->root_key_set ? cfg->root_key : NULL;
        bo.ca_file = cfg->ca_file;
        bo.keepalive_ms = cfg->ws_keepalive_ms;
        bo.max_reconnect_failures = cfg->max_reconnect_failures;
        bo.reconnect_base_ms = opts->reconnect_base_ms;
        bo.reconnect_max_ms = opts->reconnect_max_ms;
        bo.stats = &gw->stats;
        if ((rc = wg_backend_wa_new(loop, &bo, &gw->backend_wa)))
            goto fail;
        gw->backend.ops = &wg_backend_wa_ops;
        gw->backend.ctx = gw->backend_wa;
    }
    if ((rc = wg_sessions_new(gw->db, &gw->backend, &gw->sessions)))
        goto fail;
    warn_unimplemented(gw);
    if ((rc = wg_sessions_load(gw->sessions)))
        goto fail;
    gw->http = wg_httpd_start(loop, cfg->host, cfg->port, WG_MAX_BODY, wg_api_handle, gw);
    if (!gw->http) {
        wa_log_error(COMPONENT, "cannot listen on %s:%d (in use, or not permitted)", cfg->host,
                     cfg->port);
        rc = WA_EIO;
        goto fail;
    }
    if ((rc = wg_lag_probe_start(&gw->lag, loop)) ||
        (rc = uv_timer_init(loop, &gw->health_timer))) {
        rc = WA_EIO;
        goto fail_http;
    }
    gw->health_timer.data = gw;
    uv_timer_start(&gw->health_timer, on_health_timer, cfg->health_interval_ms,
                   cfg->health_interval_ms);
    wg_gateway_check(gw);
    wa_log_info(COMPONENT,
                "wagate %s listening on %s:%d, DATA_DIR %s, backend %s, MAX_CONNECTIONS %u, "
                "MEMORY_THRESHOLD %.2f, HEALTH_CHECK_INTERVAL %ums",
                WG_VERSION, cfg->host, wg_httpd_port(gw->http), cfg->data_dir,
                gw->backend.ops->name, cfg->max_connections, cfg->memory_threshold,
                cfg->health_interval_ms);
    *out = gw;
    return 0;
fail_http:
    /* the listener's handles close on the loop: shut down the normal way */
    wg_gateway_shutdown(gw);
    *out = gw;
    return rc;
fail:
    wg_sessions_free(gw->sessions);
    wg_backend_wa_free(gw->backend_wa);
    wg_stats_cleanup(&gw->stats);
    wg_db_close(gw->db);
    wa_wipe(gw->api_key, sizeof gw->api_key);
    wg_config_wipe(&gw->cfg);
    free(gw);
    return rc ? rc : WA_EIO;
}

int wg_gateway_port(const wg_gateway *gw)
{
    return gw->http ? wg_httpd_port(gw->http) : 0;
}

void wg_gateway_shutdown(wg_gateway *gw)
{
    if (!gw || gw->shutting_down)
        return;
    gw->shutting_down = 1;
    wa_log_info(COMPONENT, "shutting down: closing the listener and the sessions");
    wg_httpd_stop(gw->http);
    gw->http = NULL;
    /* calloc'd: type is UV_UNKNOWN_HANDLE (0) until uv_timer_init */
    if (gw->health_timer.type == UV_TIMER && !uv_is_closing((uv_handle_t *)&gw->health_timer)) {
        uv_timer_stop(&gw->health_timer);
        uv_close((uv_handle_t *)&gw->health_timer, NULL);
    }
    if (gw->lag.timer.type == UV_TIMER)
        wg_lag_probe_stop(&gw->lag);
    /* desired states stay in the database: the sessions come back at the next boot */
    wg_sessions_stop_all(gw->sessions);
    wg_sessions_free(gw->sessions);
    gw->sessions = NULL;
    wg_db_close(gw->db);
    gw->db = NULL;
}

void wg_gateway_free(wg_gateway *gw)
{
    if (!gw)
        return;
    wg_gateway_shutdown(gw);
    /* the clients were freed by the shutdown; libwa no longer touches the store */
    wg_backend_wa_free(gw->backend_wa);
    gw->backend_wa = NULL;
    wg_stats_cleanup(&gw->stats);
    wa_wipe(gw->api_key, sizeof gw->api_key);
    wg_config_wipe(&gw->cfg);
    free(gw);
}
