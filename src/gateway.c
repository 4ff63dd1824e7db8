/*
 * gateway.c - assembly of one wagate instance (see gateway.h): start-up order, the periodic
 * self-check with the memory governor, and shutdown.
 *
 * Start-up: DATA_DIR (created 0700), API key (given, or DATA_DIR/api_key, or generated and
 * stored there), session database, metrics, event hub (DATA_DIR/events.db, the global webhook
 * from WEBHOOK_URL, each stored session's webhook), sessions loaded and the wanted ones started
 * (their status changes are published from then on), HTTP listener, event-loop lag probe,
 * first self-check. Any failure undoes what was done.
 *
 * Shutdown (SIGTERM), in this order because each step needs the next one still there:
 *   sessions stopped (WhatsApp connections closed), database closed
 *   -> wg_events_flush: pending webhook deliveries tried once, WG_SHUTDOWN_FLUSH_MS at most
 *   -> wg_events_close: stream clients closed (WS 1001, SSE end), outbox closed
 *   -> wg_httpd_stop: only now, since libmicrohttpd must not stop while a stream connection is
 *      suspended (SSE) or upgraded (WebSocket).
 * The HTTP server keeps answering meanwhile: /health, and 503 shutting_down on the API.
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

#include <jansson.h>

#include "api.h"
#include "backend_wa.h"
#include "backup/backup.h"
#include "core/log.h"
#include "core/util.h"
#include "logging.h"
#include "webversion.h"
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

static void backup_collect(wg_gateway *gw);

static void refresh_counts(wg_gateway *gw)
{
    size_t counts[WG_STATUS_COUNT], i;

    if (!gw->sessions) /* shutting down: /metrics is still served while the events flush */
        return;
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
    backup_collect(gw);
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
    if (gw->sessions)
        wg_sessions_prune_store(gw->sessions); /* the message store's bounds (bounded work) */
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

/* ---- events ---- */

static void on_webhook_attempt(const wg_webhook_attempt *a, void *user_data)
{
    wg_gateway *gw = user_data;

    /* the hub logs retries and give-ups itself */
    wg_stats_webhook_attempt(&gw->stats, a->outcome == WG_WEBHOOK_DONE,
                             a->outcome == WG_WEBHOOK_FAILED, a->seconds);
}

/* ---- session backups (backup/backup.h) ---- */

/* The metadata stored with a session's backups is its row: {"created_at", "want_running",
 * "config"?} (config: the options as stored, a JSON text), so that a restore into an empty
 * DATA_DIR recreates it. */
struct meta_walk {
    wg_backup *b;
    const char *name; /* NULL: every row */
};

static int backup_meta_row(const char *name, int64_t created_at, int want_running,
                           const char *config_json, void *user_data)
{
    struct meta_walk *w = user_data;
    json_t *m;
    char *text = NULL;
    int rc = WA_ENOMEM;

    if (w->name && strcmp(w->name, name) != 0)
        return 0;
    m = json_pack("{s:I, s:b}", "created_at", (json_int_t)created_at, "want_running", want_running);
    if (m && config_json)
        json_object_set_new(m, "config", json_string(config_json));
    if (m)
        text = json_dumps(m, JSON_COMPACT);
    if (text)
        rc = wg_backup_set_meta(w->b, name, text, strlen(text));
    if (rc)
        wa_log_warn(COMPONENT, "session %s: backup metadata not set: %s", name, wa_strerror(rc));
    free(text);
    json_decref(m);
    return 0;
}

/* Push the session row(s) to the backup engine (name NULL: all). */
static void backup_meta_sync(wg_gateway *gw, const char *name)
{
    struct meta_walk w;

    if (!gw->backup || !gw->db)
        return;
    w.b = gw->backup;
    w.name = name;
    if (wg_db_sessions_load(gw->db, backup_meta_row, &w))
        wa_log_warn(COMPONENT, "backup metadata: the session database could not be read");
}

/* A session imported from a backup: recreate its row (and webhook) from the metadata. */
static void on_backup_restored(const char *session, const uint8_t *meta, size_t meta_len,
                               const char *object, void *user_data)
{
    wg_gateway *gw = user_data;
    json_error_t jerr;
    json_t *m = NULL, *v;
    int64_t created_at = (int64_t)time(NULL);
    int want_running = 1, rc;
    const char *config = NULL;

    if (meta_len)
        m = json_loadb((const char *)meta, meta_len, 0, &jerr);
    if (meta_len && !json_is_object(m))
        wa_log_warn(COMPONENT, "session %s: backup %s has unreadable metadata; defaults used",
                    session, object);
    if (json_is_object(m)) {
        if (json_is_integer(v = json_object_get(m, "created_at")))
            created_at = (int64_t)json_integer_value(v);
        if (json_is_boolean(v = json_object_get(m, "want_running")))
            want_running = json_is_true(v);
        config = json_string_value(json_object_get(m, "config"));
    }
    rc = gw->db ? wg_db_session_insert(gw->db, session, created_at, want_running, config)
                : WA_ESTATE;
    if (rc && rc != WA_EEXIST)
        wa_log_error(COMPONENT, "session %s: restored from %s but its row not recreated: %s",
                     session, object, wa_strerror(rc));
    else if (!rc && config && (rc = wg_gateway_session_webhook(gw, session, config)))
        wa_log_warn(COMPONENT, "session %s: its webhook could not be set: %s", session,
                    wa_strerror(rc));
    if (!rc)
        wa_log_info(COMPONENT, "session %s restored from backup %s", session, object);
    json_decref(m);
}

/* The boot restore is over: now the sessions load and the wanted ones connect. */
static void on_backup_restore_done(const wg_backup_restore_report *rep, void *user_data)
{
    wg_gateway *gw = user_data;
    int rc;

    gw->restoring = 0;
    wa_log_info(COMPONENT,
                "backup restore from %s: %u sessions in the store, %u restored, %u present "
                "locally, %u failed, %u fallbacks to an older generation, %.3f s",
                wg_backup_store_name(gw->backup), rep->sessions, rep->restored, rep->skipped,
                rep->failed, rep->fallbacks, rep->seconds);
    if (gw->shutting_down || !gw->sessions)
        return;
    if ((rc = wg_sessions_load(gw->sessions)))
        wa_log_error(COMPONENT, "the sessions could not be loaded: %s", wa_strerror(rc));
    backup_meta_sync(gw, NULL);
}

/* Status changes that matter to backups: pairing done (WORKING), logged out (purge). */
static void backup_on_status(wg_gateway *gw, wg_session *s, int old_status)
{
    int rc = 0;

    if (!gw->backup || gw->restoring)
        return;
    if (s->status == WG_STATUS_LOGGED_OUT) {
        rc = wg_backup_untrack(gw->backup, s->name, 1);
    } else {
        backup_meta_sync(gw, s->name);
        if (s->status == WG_STATUS_WORKING && old_status != WG_STATUS_WORKING)
            rc = wg_backup_request(gw->backup, s->name);
    }
    if (rc)
        wa_log_warn(COMPONENT, "session %s: backup not requested: %s", s->name, wa_strerror(rc));
}

/* New keys on the server (prekey upload, signed prekey rotation): back the session up now, so
 * that a restore after a crash still holds the private halves of what senders are handed. */
static void backup_on_state_changed(wg_session *s, const char *what, void *user_data)
{
    wg_gateway *gw = user_data;
    int rc;

    if (!gw->backup || gw->restoring || gw->shutting_down)
        return;
    rc = wg_backup_request(gw->backup, s->name);
    if (rc)
        wa_log_warn(COMPONENT, "session %s: %s, but no backup requested: %s", s->name, what,
                    wa_strerror(rc));
    else
        wa_log_info(COMPONENT, "session %s: %s: backup requested", s->name, what);
}

void wg_gateway_session_deleted(wg_gateway *gw, const char *name)
{
    int rc;

    if (gw->backup && (rc = wg_backup_untrack(gw->backup, name, 1)))
        wa_log_warn(COMPONENT, "session %s: its backups not deleted: %s", name, wa_strerror(rc));
}

static void backup_collect(wg_gateway *gw)
{
    wg_stats *st = &gw->stats;
    wg_backup_stats bs;

    if (!gw->backup)
        return;
    wg_backup_get_stats(gw->backup, &bs);
    wg_metric_set(wg_metric_get1(st->backups, "success"), (double)bs.backups_ok);
    wg_metric_set(wg_metric_get1(st->backups, "failure"), (double)bs.backups_failed);
    wg_metric_set(wg_metric_get0(st->backup_last_success), (double)bs.last_success_ms / 1000.0);
    wg_metric_set(wg_metric_get0(st->backup_bytes), (double)bs.bytes_uploaded);
    wg_metric_set(wg_metric_get0(st->backup_duration), bs.last_duration_s);
    wg_metric_set(wg_metric_get0(st->backup_restored), (double)bs.restored);
    wg_metric_set(wg_metric_get0(st->backup_restore_fallbacks), (double)bs.restore_fallbacks);
}

/* Every status change becomes a session.status event {status, reason?, me?}. */
static void on_session_status(wg_session *s, int old_status, void *user_data)
{
    wg_gateway *gw = user_data;
    json_t *p;
    int rc;

    (void)old_status;
    /* the stop of a shutdown is not news: the session comes back at the next start */
    if (!gw->events || gw->shutting_down)
        return;
    backup_on_status(gw, s, old_status);
    p = json_pack("{s:s}", "status", wg_status_name(s->status));
    if (p && s->reason[0])
        json_object_set_new(p, "reason", json_string(s->reason));
    if (p && s->me[0]) {
        json_t *me = json_pack("{s:s}", "jid", s->me);
        if (me && s->me_lid[0])
            json_object_set_new(me, "lid", json_string(s->me_lid));
        json_object_set_new(p, "me", me);
    }
    rc = wg_events_publish(gw->events, s->name, "session.status", p, NULL);
    if (rc)
        wa_log_warn(COMPONENT, "session %s: session.status %s not published: %s", s->name,
                    wg_status_name(s->status), wa_strerror(rc));
}

/* Backend events (message, message.ack, ...) go out as they are. */
static void on_session_event(wg_session *s, const char *event, json_t *payload, void *user_data)
{
    wg_gateway *gw = user_data;
    int rc;

    if (!gw->events)
        return;
    rc = wg_events_publish(gw->events, s->name, event, json_incref(payload), NULL);
    if (rc)
        wa_log_warn(COMPONENT, "session %s: %s not published: %s", s->name, event, wa_strerror(rc));
}

int wg_gateway_session_webhook(wg_gateway *gw, const char *name, const char *config_json)
{
    const char *events[WG_EVENT_FILTER_MAX + 1];
    json_t *cfg, *w, *url, *list, *secret;
    size_t i, n = 0;
    int rc = 0;

    cfg = json_loads(config_json ? config_json : "{}", 0, NULL);
    if (!json_is_object(cfg)) {
        rc = WA_EINVAL;
        goto out;
    }
    w = json_object_get(cfg, "webhook");
    if (!w)
        goto out;
    url = json_object_get(w, "url");
    list = json_object_get(w, "events");
    secret = json_object_get(w, "secret");
    if (!json_is_string(url) || (list && !json_is_array(list)) ||
        (list && json_array_size(list) > WG_EVENT_FILTER_MAX) ||
        (secret && !json_is_string(secret))) {
        rc = WA_EINVAL;
        goto out;
    }
    for (i = 0; list && i < json_array_size(list); i++) {
        const char *e = json_string_value(json_array_get(list, i));
        if (!e) {
            rc = WA_EINVAL;
            goto out;
        }
        events[n++] = e;
    }
    events[n] = NULL;
    rc = wg_events_set_webhook(gw->events, name, json_string_value(url), n ? events : NULL,
                               json_string_value(secret));
out:
    /* the options hold the webhook secret */
    if (json_is_object(cfg) &&
        json_is_string(json_object_get(json_object_get(cfg, "webhook"), "secret"))) {
        json_t *sec = json_object_get(json_object_get(cfg, "webhook"), "secret");
        wa_wipe((void *)json_string_value(sec), json_string_length(sec));
    }
    json_decref(cfg);
    return rc;
}

/* Stored sessions' webhooks, set before the sessions start so that their first events reach
 * them. A bad one is logged and skipped (the session still starts). */
static int load_webhook(const char *name, int64_t created_at, int want_running,
                        const char *config_json, void *user_data)
{
    int rc;

    (void)created_at;
    (void)want_running;
    rc = wg_gateway_session_webhook(user_data, name, config_json);
    if (rc)
        wa_log_warn(COMPONENT, "session %s: its webhook could not be set: %s", name,
                    wa_strerror(rc));
    return 0;
}

static int events_start(wg_gateway *gw, const wg_gateway_options *opts)
{
    wg_events_options eo;
    char path[WG_CONFIG_PATH_MAX + 64];
    int rc;

    if (opts->events)
        eo = *opts->events;
    else
        memset(&eo, 0, sizeof eo);
    snprintf(path, sizeof path, "%s/%s", gw->cfg.data_dir, WG_EVENTS_DB_FILE);
    eo.db_path = path;
    eo.on_attempt = on_webhook_attempt;
    eo.user_data = gw;
    if ((rc = wg_events_open(gw->loop, &eo, &gw->events))) {
        wa_log_error(COMPONENT, "%s: cannot open the event outbox: %s", path, wa_strerror(rc));
        return rc;
    }
    if (gw->cfg.webhook_url[0]) {
        rc = wg_events_set_webhook(gw->events, NULL, gw->cfg.webhook_url, NULL,
                                   gw->cfg.webhook_secret[0] ? gw->cfg.webhook_secret : NULL);
        if (rc) {
            wa_log_error(COMPONENT, "WEBHOOK_URL: cannot be used: %s", wa_strerror(rc));
            return rc;
        }
        wa_log_info(COMPONENT, "global webhook set%s",
                    gw->cfg.webhook_secret[0] ? " (signed with WEBHOOK_SECRET)" : " (unsigned)");
    }
    return wg_db_sessions_load(gw->db, load_webhook, gw);
}

/* WA_VERSION: "" libwa's default, a version, or "auto": fetched now, before any session starts
 * (blocking, at most WG_VERSION_FETCH_S), the default kept on failure. */
#define WG_VERSION_FETCH_S 5L
static const char *resolve_version(const wg_config *cfg, char *buf)
{
    char err[160];

    if (strcmp(cfg->wa_version, "auto") != 0)
        return cfg->wa_version[0] ? cfg->wa_version : NULL;
    if (wg_webversion_fetch(cfg->wa_version_url, WG_VERSION_FETCH_S, buf, err, sizeof err) == 0) {
        wa_log_info(COMPONENT, "WA_VERSION=auto: WhatsApp Web version %s", buf);
        return buf;
    }
    wa_log_warn(COMPONENT,
                "WA_VERSION=auto: the version could not be fetched (%s); using the "
                "default",
                err);
    return NULL;
}

static void warn_unimplemented(const wg_gateway *gw)
{
    if (!gw->backend.ops->connects_to_whatsapp)
        wa_log_warn(COMPONENT, "session backend \"%s\" does NOT connect to WhatsApp",
                    gw->backend.ops->name);
}

int wg_gateway_start(uv_loop_t *loop, const wg_config *cfg, const wg_gateway_options *opts,
                     wg_gateway **out)
{
    wg_gateway_options none = {0};
    char path[WG_CONFIG_PATH_MAX + 64], version[WG_WEBVERSION_STR_MAX];
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
        bo.version = resolve_version(cfg, version);
        if ((rc = wg_backend_wa_new(loop, &bo, &gw->backend_wa)))
            goto fail;
        gw->backend.ops = &wg_backend_wa_ops;
        gw->backend.ctx = gw->backend_wa;
    }
    if ((rc = events_start(gw, opts)))
        goto fail;
    if ((rc = wg_sessions_new(gw->db, &gw->backend, &gw->sessions)))
        goto fail;
    wg_sessions_set_observer(gw->sessions, on_session_status, gw);
    wg_sessions_set_event_sink(gw->sessions, on_session_event, gw);
    wg_sessions_set_store(gw->sessions, cfg->message_store_max, cfg->message_retention_days);
    wg_sessions_set_state_observer(gw->sessions, backup_on_state_changed, gw);
    warn_unimplemented(gw);
    if (opts->backup) {
        wg_backup_restore_options ro;

        if ((rc = wg_backup_open(loop, opts->backup, NULL, &gw->backup)))
            goto fail;
        wa_log_info(COMPONENT, "session backups: %s at %s", wg_backup_store_name(gw->backup),
                    wg_backup_store_where(gw->backup));
        /* the sessions load once the restore is done (on_backup_restore_done); HTTP answers
         * /health meanwhile */
        memset(&ro, 0, sizeof ro);
        ro.restored = on_backup_restored;
        ro.done = on_backup_restore_done;
        ro.user_data = gw;
        gw->restoring = 1;
        if ((rc = wg_backup_restore(gw->backup, &ro))) {
            gw->restoring = 0;
            goto fail;
        }
    } else if ((rc = wg_sessions_load(gw->sessions))) {
        goto fail;
    }
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
    if (gw->events) {
        /* its handles close on the loop: shut down the normal way */
        wg_gateway_shutdown(gw);
        *out = gw;
        return rc ? rc : WA_EIO;
    }
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

static void on_events_closed(void *user_data)
{
    wg_gateway *gw = user_data;

    gw->events = NULL;
    /* no stream connection is suspended or upgraded any more */
    wg_httpd_stop(gw->http);
    gw->http = NULL;
    wa_log_info(COMPONENT, "shut down");
    if (gw->on_closed)
        gw->on_closed(gw->on_closed_data);
}

static void on_shutdown_timer_closed(uv_handle_t *h)
{
    wg_gateway *gw = h->data;

    wg_events_close(gw->events, on_events_closed, gw);
}

/* After the flush, from a fresh loop turn (not inside the hub's own callback). */
static void on_shutdown_timer(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, on_shutdown_timer_closed);
}

static void on_backup_closed(void *user_data)
{
    wg_gateway *gw = user_data;

    gw->backup = NULL;
}

static void on_backup_flushed(int ok, void *user_data)
{
    wg_gateway *gw = user_data;

    if (ok)
        wa_log_info(COMPONENT, "session backups flushed");
    else
        wa_log_warn(COMPONENT, "session backups: the final flush did not finish; the last "
                               "uploaded generation stays the newest");
    wg_backup_close(gw->backup, on_backup_closed, gw);
}

static void on_flushed(void *user_data)
{
    wg_gateway *gw = user_data;
    wg_events_stats st;

    wg_events_get_stats(gw->events, &st);
    if (st.pending)
        wa_log_info(COMPONENT, "%llu webhook deliveries left in the outbox for the next start",
                    (unsigned long long)st.pending);
    uv_timer_start(&gw->shutdown_timer, on_shutdown_timer, 0, 0);
}

void wg_gateway_shutdown(wg_gateway *gw)
{
    if (!gw || gw->shutting_down)
        return;
    gw->shutting_down = 1;
    wa_log_info(COMPONENT, "shutting down: closing the sessions, flushing the events");
    /* calloc'd: type is UV_UNKNOWN_HANDLE (0) until uv_timer_init */
    if (gw->health_timer.type == UV_TIMER && !uv_is_closing((uv_handle_t *)&gw->health_timer)) {
        uv_timer_stop(&gw->health_timer);
        uv_close((uv_handle_t *)&gw->health_timer, NULL);
    }
    if (gw->lag.timer.type == UV_TIMER)
        wg_lag_probe_stop(&gw->lag);
    /* desired states stay in the database: the sessions come back at the next boot */
    if (gw->sessions)
        wg_sessions_stop_all(gw->sessions);
    wg_sessions_free(gw->sessions);
    gw->sessions = NULL;
    wg_db_close(gw->db);
    gw->db = NULL;
    /* alongside the events flush: changed sessions backed up, then the engine closed */
    if (gw->backup && wg_backup_flush(gw->backup, WG_SHUTDOWN_BACKUP_MS, on_backup_flushed, gw))
        wg_backup_close(gw->backup, on_backup_closed, gw);
    if (!gw->events) {
        wg_httpd_stop(gw->http);
        gw->http = NULL;
        return;
    }
    uv_timer_init(gw->loop, &gw->shutdown_timer);
    gw->shutdown_timer.data = gw;
    wg_events_flush(gw->events, WG_SHUTDOWN_FLUSH_MS, on_flushed, gw);
}

void wg_gateway_free(wg_gateway *gw)
{
    if (!gw)
        return;
    wg_gateway_shutdown(gw);
    if (gw->events || gw->http || gw->backup) {
        /* the loop was not run to the end of the shutdown: the hub still points at gw */
        wa_log_error(COMPONENT, "wg_gateway_free before the shutdown finished: leaking it");
        return;
    }
    /* the clients were freed by the shutdown; libwa no longer touches the store */
    wg_backend_wa_free(gw->backend_wa);
    gw->backend_wa = NULL;
    wg_stats_cleanup(&gw->stats);
    wa_wipe(gw->api_key, sizeof gw->api_key);
    wg_config_wipe(&gw->cfg);
    free(gw);
}
