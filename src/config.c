/*
 * config.c - strict parsing of wagate's environment (see config.h and docs/configuration.md).
 *
 * Each variable has one parser; the first bad value stops the load with "VAR: why (got ...)".
 * Secret values (API_KEY, WEBHOOK_SECRET) are never echoed back in the message.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "core/log.h"
#include "core/util.h"
#include "wa/error.h"

typedef wg_env_loader loader;

int wg_api_key_valid(const char *s)
{
    size_t n = strlen(s), i;

    if (n < WG_API_KEY_MIN || n > WG_API_KEY_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            return 0;
    return 1;
}

static int copy_str(loader *l, const char *name, const char *v, char *dst, size_t cap)
{
    if (strlen(v) >= cap)
        return wg_env_fail(l, name, v, "longer than %zu bytes", cap - 1);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int load_interval(loader *l, const char *name, unsigned min, unsigned max, unsigned *dst)
{
    const char *v = wg_env_get(l, name);
    unsigned long n;

    if (!v)
        return 0;
    if (wg_parse_uint(v, min, max, &n))
        return wg_env_fail(l, name, v, "must be an integer number of milliseconds in [%u, %u]", min,
                           max);
    *dst = (unsigned)n;
    return 0;
}

static int load_bool(loader *l, const char *name, int *dst)
{
    const char *v = wg_env_get(l, name);

    if (v && wg_parse_bool(v, dst))
        return wg_env_fail(l, name, v, "must be true, false, 1 or 0");
    return 0;
}

static int url_has_scheme(const char *v, const char *const *schemes)
{
    for (; *schemes; schemes++) {
        size_t n = strlen(*schemes);
        if (!strncasecmp(v, *schemes, n) && v[n] && v[n] != '/')
            return 1;
    }
    return 0;
}

static int has_space_or_ctl(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v <= 0x20 || *v == 0x7f)
            return 1;
    return 0;
}

static int load_port(loader *l, wg_config *cfg)
{
    const char *v = wg_env_get(l, "PORT");
    unsigned long n;

    if (!v)
        return 0;
    if (wg_parse_uint(v, 1, 65535, &n))
        return wg_env_fail(l, "PORT", v, "must be an integer in [1, 65535]");
    cfg->port = (int)n;
    return 0;
}

static int load_host(loader *l, wg_config *cfg)
{
    const char *v = wg_env_get(l, "HOST");
    struct in_addr a;

    if (!v)
        return 0;
    /* dotted quad only (inet_pton takes no short forms): the HTTP server binds IPv4 */
    if (strlen(v) >= sizeof cfg->host || inet_pton(AF_INET, v, &a) != 1)
        return wg_env_fail(l, "HOST", v, "must be an IPv4 address such as 0.0.0.0 or 127.0.0.1");
    return copy_str(l, "HOST", v, cfg->host, sizeof cfg->host);
}

static int load_data_dir(loader *l, wg_config *cfg)
{
    const char *v = wg_env_get(l, "DATA_DIR");

    if (!v)
        return 0;
    /* room for the file names we put under it */
    return copy_str(l, "DATA_DIR", v, cfg->data_dir, sizeof cfg->data_dir - 64);
}

static int load_api_key(loader *l, wg_config *cfg)
{
    const char *v = wg_env_get(l, "API_KEY");

    if (!v)
        return 0;
    if (!wg_api_key_valid(v))
        return wg_env_fail(l, "API_KEY", NULL,
                           "must be %d to %d printable ASCII characters without spaces "
                           "(value not shown)",
                           WG_API_KEY_MIN, WG_API_KEY_MAX);
    memcpy(cfg->api_key, v, strlen(v) + 1);
    return 0;
}

static int load_threshold(loader *l, wg_config *cfg)
{
    const char *v = wg_env_get(l, "MEMORY_THRESHOLD");
    char *end;
    double d;

    if (!v)
        return 0;
    errno = 0;
    d = strtod(v, &end);
    /* a plain decimal fraction: no hex floats, no "inf"/"nan", no trailing characters */
    if (!isdigit((unsigned char)v[0]) && v[0] != '.')
        goto bad;
    if (errno || *end || !isfinite(d) || d <= 0.0 || d > 1.0 || strpbrk(v, "xXpP"))
        goto bad;
    cfg->memory_threshold = d;
    return 0;
bad:
    return wg_env_fail(l, "MEMORY_THRESHOLD", v, "must be a fraction in (0, 1], e.g. 0.8");
}

static int load_max_connections(loader *l, wg_config *cfg)
{
    const char *v = wg_env_get(l, "MAX_CONNECTIONS");
    unsigned long n;

    if (!v)
        return 0;
    if (wg_parse_uint(v, 1, WG_MAX_CONNECTIONS_MAX, &n))
        return wg_env_fail(l, "MAX_CONNECTIONS", v, "must be an integer in [1, %d]",
                           WG_MAX_CONNECTIONS_MAX);
    cfg->max_connections = (unsigned)n;
    return 0;
}

static int load_reconnect_failures(loader *l, wg_config *cfg)
{
    const char *v = wg_env_get(l, "MAX_RECONNECT_FAILURES");
    unsigned long n;

    if (!v)
        return 0;
    if (wg_parse_uint(v, 0, WG_RECONNECT_FAILURES_MAX, &n))
        return wg_env_fail(l, "MAX_RECONNECT_FAILURES", v,
                           "must be an integer in [0, %d] (0: never give up)",
                           WG_RECONNECT_FAILURES_MAX);
    cfg->max_reconnect_failures = (unsigned)n;
    return 0;
}

static int load_storage(loader *l, wg_config *cfg)
{
    const char *v = wg_env_get(l, "SESSION_STORAGE_TYPE");

    if (!v)
        return 0;
    if (!strcmp(v, "local"))
        cfg->storage_type = WG_STORAGE_LOCAL;
    else if (!strcmp(v, "cloud"))
        cfg->storage_type = WG_STORAGE_CLOUD;
    else if (!strcmp(v, "s3"))
        cfg->storage_type = WG_STORAGE_S3;
    else
        return wg_env_fail(l, "SESSION_STORAGE_TYPE", v, "must be local, cloud or s3");
    return 0;
}

static int load_ws_url(loader *l, wg_config *cfg)
{
    static const char *const schemes[] = {"ws://", "wss://", NULL};
    const char *v = wg_env_get(l, "WA_WS_URL");

    if (!v)
        return 0;
    if (!url_has_scheme(v, schemes) || has_space_or_ctl(v))
        return wg_env_fail(l, "WA_WS_URL", v, "must be a ws:// or wss:// URL");
    return copy_str(l, "WA_WS_URL", v, cfg->ws_url, sizeof cfg->ws_url);
}

static int load_root_key(loader *l, wg_config *cfg)
{
    const char *v = wg_env_get(l, "WA_ROOT_KEY");

    if (!v)
        return 0;
    if (strlen(v) != 64 || wa_hex_decode(cfg->root_key, 32, v, 64))
        return wg_env_fail(l, "WA_ROOT_KEY", v, "must be 64 hex digits (a 32-byte Curve25519 key)");
    cfg->root_key_set = 1;
    return 0;
}

static int load_ca_file(loader *l, wg_config *cfg)
{
    const char *v = wg_env_get(l, "WA_CA_FILE");

    if (!v)
        return 0;
    if (access(v, R_OK) != 0)
        return wg_env_fail(l, "WA_CA_FILE", v, "cannot read the file: %s", strerror(errno));
    return copy_str(l, "WA_CA_FILE", v, cfg->ca_file, sizeof cfg->ca_file);
}

static int load_webhook(loader *l, wg_config *cfg)
{
    static const char *const schemes[] = {"http://", "https://", NULL};
    const char *v = wg_env_get(l, "WEBHOOK_URL");
    const char *s = wg_env_get(l, "WEBHOOK_SECRET");

    if (v) {
        if (!url_has_scheme(v, schemes) || has_space_or_ctl(v))
            return wg_env_fail(l, "WEBHOOK_URL", v, "must be an http:// or https:// URL");
        if (copy_str(l, "WEBHOOK_URL", v, cfg->webhook_url, sizeof cfg->webhook_url))
            return WA_EINVAL;
    }
    if (s) {
        if (strlen(s) > WG_WEBHOOK_SECRET_MAX)
            return wg_env_fail(l, "WEBHOOK_SECRET", NULL, "longer than %d bytes (value not shown)",
                               WG_WEBHOOK_SECRET_MAX);
        memcpy(cfg->webhook_secret, s, strlen(s) + 1);
    }
    return 0;
}

static int load_log(loader *l, wg_config *cfg)
{
    const char *v = wg_env_get(l, "LOG_LEVEL");
    const char *f = wg_env_get(l, "LOG_FORMAT");

    if (v && wa_log_level_parse(v, &cfg->log_level))
        return wg_env_fail(l, "LOG_LEVEL", v, "must be trace, debug, info, warn, error or off");
    if (f) {
        if (!strcmp(f, "json"))
            cfg->log_format = WG_LOG_FORMAT_JSON;
        else if (!strcmp(f, "text"))
            cfg->log_format = WG_LOG_FORMAT_TEXT;
        else
            return wg_env_fail(l, "LOG_FORMAT", f, "must be json or text");
    }
    return 0;
}

static int load_message_store(loader *l, wg_config *cfg)
{
    const char *d = wg_env_get(l, "MESSAGE_RETENTION_DAYS");
    const char *m = wg_env_get(l, "MESSAGE_STORE_MAX");
    unsigned long n;

    if (d) {
        if (wg_parse_uint(d, 0, WG_MESSAGE_RETENTION_DAYS_MAX, &n))
            return wg_env_fail(l, "MESSAGE_RETENTION_DAYS", d,
                               "must be an integer number of days in [0, %d] (0: no message store)",
                               WG_MESSAGE_RETENTION_DAYS_MAX);
        cfg->message_retention_days = (unsigned)n;
    }
    if (m) {
        if (wg_parse_uint(m, 0, WG_MESSAGE_STORE_MAX_LIMIT, &n))
            return wg_env_fail(l, "MESSAGE_STORE_MAX", m,
                               "must be an integer in [0, %d] (messages per session; 0: no message "
                               "store)",
                               WG_MESSAGE_STORE_MAX_LIMIT);
        cfg->message_store_max = (unsigned)n;
    }
    return 0;
}

/* "A.B.C", each part 1 to 10 digits. */
static int version_valid(const char *v)
{
    int part;

    for (part = 0; part < 3; part++) {
        size_t n = strspn(v, "0123456789");
        if (n < 1 || n > 10)
            return 0;
        v += n;
        if (part < 2 && *v++ != '.')
            return 0;
    }
    return *v == '\0';
}

static int load_version(loader *l, wg_config *cfg)
{
    static const char *const schemes[] = {"http://", "https://", NULL};
    const char *v = wg_env_get(l, "WA_VERSION");
    const char *u = wg_env_get(l, "WA_VERSION_URL");

    if (v) {
        if (strcmp(v, "auto") && (!version_valid(v) || strlen(v) >= sizeof cfg->wa_version))
            return wg_env_fail(l, "WA_VERSION", v,
                               "must be a WhatsApp Web version such as 2.3000.1023456789, or auto");
        memcpy(cfg->wa_version, v, strlen(v) + 1);
    }
    if (u) {
        if (!url_has_scheme(u, schemes) || has_space_or_ctl(u))
            return wg_env_fail(l, "WA_VERSION_URL", u, "must be an http:// or https:// URL");
        return copy_str(l, "WA_VERSION_URL", u, cfg->wa_version_url, sizeof cfg->wa_version_url);
    }
    return 0;
}

static void defaults(wg_config *cfg, int on_cloud_run)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->port = WG_DEFAULT_PORT;
    snprintf(cfg->host, sizeof cfg->host, "%s", WG_DEFAULT_HOST);
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", WG_DEFAULT_DATA_DIR);
    cfg->memory_threshold = WG_DEFAULT_MEMORY_THRESHOLD;
    cfg->max_connections = WG_DEFAULT_MAX_CONNECTIONS;
    cfg->ws_keepalive_ms = WG_DEFAULT_WS_KEEPALIVE_MS;
    cfg->max_reconnect_failures = WG_DEFAULT_MAX_RECONNECT_FAILURES;
    cfg->storage_type = WG_STORAGE_LOCAL;
    cfg->backup_interval_ms = WG_DEFAULT_BACKUP_INTERVAL_MS;
    cfg->health_interval_ms = WG_DEFAULT_HEALTH_INTERVAL_MS;
    snprintf(cfg->ws_url, sizeof cfg->ws_url, "%s", WG_DEFAULT_WS_URL);
    cfg->log_level = WA_LOG_INFO;
    cfg->message_retention_days = WG_DEFAULT_MESSAGE_RETENTION_DAYS;
    cfg->message_store_max = WG_DEFAULT_MESSAGE_STORE_MAX;
    snprintf(cfg->wa_version_url, sizeof cfg->wa_version_url, "%s", WG_DEFAULT_VERSION_URL);
    cfg->on_cloud_run = on_cloud_run;
    /* Cloud Run (K_SERVICE set) parses one JSON object per line into structured entries */
    cfg->log_format = on_cloud_run ? WG_LOG_FORMAT_JSON : WG_LOG_FORMAT_TEXT;
}

int wg_config_load(wg_config *cfg, wg_getenv_cb getfn, void *user_data, char *err, size_t errlen)
{
    loader l = wg_env_loader_make(getfn, user_data, err, errlen);
    int rc;

    if (errlen)
        err[0] = '\0';
    defaults(cfg, wg_env_get(&l, "K_SERVICE") != NULL);
    if ((rc = load_port(&l, cfg)) || (rc = load_host(&l, cfg)) || (rc = load_data_dir(&l, cfg)) ||
        (rc = load_api_key(&l, cfg)) || (rc = load_threshold(&l, cfg)) ||
        (rc = load_bool(&l, "MEMORY_DEBUG", &cfg->memory_debug)) ||
        (rc = load_max_connections(&l, cfg)) ||
        (rc = load_interval(&l, "WS_KEEPALIVE_INTERVAL", WG_KEEPALIVE_MIN_MS, WG_KEEPALIVE_MAX_MS,
                            &cfg->ws_keepalive_ms)) ||
        (rc = load_reconnect_failures(&l, cfg)) || (rc = load_storage(&l, cfg)) ||
        (rc = load_interval(&l, "SESSION_BACKUP_INTERVAL", WG_BACKUP_MIN_MS, WG_BACKUP_MAX_MS,
                            &cfg->backup_interval_ms)) ||
        (rc = load_interval(&l, "HEALTH_CHECK_INTERVAL", WG_HEALTH_MIN_MS, WG_HEALTH_MAX_MS,
                            &cfg->health_interval_ms)) ||
        (rc = load_ws_url(&l, cfg)) || (rc = load_root_key(&l, cfg)) ||
        (rc = load_ca_file(&l, cfg)) || (rc = load_webhook(&l, cfg)) || (rc = load_log(&l, cfg)) ||
        (rc = load_message_store(&l, cfg)) || (rc = load_version(&l, cfg))) {
        wg_config_wipe(cfg);
        memset(cfg, 0, sizeof *cfg);
        return rc;
    }
    return 0;
}

void wg_config_wipe(wg_config *cfg)
{
    wa_wipe(cfg->api_key, sizeof cfg->api_key);
    wa_wipe(cfg->webhook_secret, sizeof cfg->webhook_secret);
}

const char *wg_storage_type_name(int type)
{
    switch (type) {
    case WG_STORAGE_LOCAL:
        return "local";
    case WG_STORAGE_CLOUD:
        return "cloud";
    case WG_STORAGE_S3:
        return "s3";
    }
    return "?";
}

const char *wg_log_format_name(int format)
{
    return format == WG_LOG_FORMAT_JSON ? "json" : "text";
}
