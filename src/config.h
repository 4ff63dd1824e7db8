/*
 * config.h - wagate's configuration, read once at start-up from the environment.
 *
 * Every variable of docs/configuration.md (issue 6, and the Cloud Run deployment of
 * shared/seed.md) with its default. Parsing is strict: an unknown enum word, a number with
 * trailing garbage, an interval outside its bounds... stops start-up with a message that names
 * the variable. An empty value counts as unset (Cloud Run and compose files often set VAR=).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_CONFIG_H
#define WG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "envvar.h" /* wg_getenv_cb, wg_parse_bool, wg_parse_uint */

#define WG_CONFIG_PATH_MAX 1024
#define WG_CONFIG_URL_MAX  1024
#define WG_CONFIG_HOST_MAX 64
/* API keys: printable ASCII without spaces; short keys are refused (guessable). */
#define WG_API_KEY_MIN        16
#define WG_API_KEY_MAX        256
#define WG_WEBHOOK_SECRET_MAX 256

/* Defaults: the production values of the Cloud Run deployment (shared/seed.md). */
#define WG_DEFAULT_PORT               8080
#define WG_DEFAULT_HOST               "0.0.0.0"
#define WG_DEFAULT_DATA_DIR           "./data"
#define WG_DEFAULT_MEMORY_THRESHOLD   0.8
#define WG_DEFAULT_MAX_CONNECTIONS    50
#define WG_DEFAULT_WS_KEEPALIVE_MS    15000
#define WG_DEFAULT_BACKUP_INTERVAL_MS 120000
#define WG_DEFAULT_HEALTH_INTERVAL_MS 60000
#define WG_DEFAULT_WS_URL             "wss://web.whatsapp.com/ws/chat"
/* With libwa's backoff (1 s doubling, capped at 60 s, jitter over the upper half) 20 failed
 * attempts in a row take about 12 to 17 minutes. */
#define WG_DEFAULT_MAX_RECONNECT_FAILURES 20
/* The message store (GET .../chats): kept this many days, at most this many per session. */
#define WG_DEFAULT_MESSAGE_RETENTION_DAYS 7
#define WG_DEFAULT_MESSAGE_STORE_MAX      10000
#define WG_MESSAGE_RETENTION_DAYS_MAX     3650
#define WG_MESSAGE_STORE_MAX_LIMIT        10000000
/* WA_VERSION=auto fetches the current WhatsApp Web version from here (WA_VERSION_URL). */
#define WG_DEFAULT_VERSION_URL "https://web.whatsapp.com/"
#define WG_VERSION_STR_MAX     32

/* Bounds (inclusive). */
#define WG_MAX_CONNECTIONS_MAX    100000
#define WG_KEEPALIVE_MIN_MS       1000
#define WG_KEEPALIVE_MAX_MS       600000 /* 10 min: WhatsApp drops idle links well before */
#define WG_BACKUP_MIN_MS          1000
#define WG_BACKUP_MAX_MS          86400000 /* one day */
#define WG_HEALTH_MIN_MS          250
#define WG_HEALTH_MAX_MS          3600000 /* one hour */
#define WG_RECONNECT_FAILURES_MAX 100000

enum wg_storage_type { WG_STORAGE_LOCAL = 0, WG_STORAGE_CLOUD, WG_STORAGE_S3 };
enum wg_log_format { WG_LOG_FORMAT_TEXT = 0, WG_LOG_FORMAT_JSON };

typedef struct wg_config {
    int port;                            /* PORT */
    char host[WG_CONFIG_HOST_MAX];       /* HOST: IPv4 address to bind */
    char data_dir[WG_CONFIG_PATH_MAX];   /* DATA_DIR */
    char api_key[WG_API_KEY_MAX + 1];    /* API_KEY; "" = generate/persist under DATA_DIR */
    double memory_threshold;             /* MEMORY_THRESHOLD, in (0, 1] */
    int memory_debug;                    /* MEMORY_DEBUG */
    unsigned max_connections;            /* MAX_CONNECTIONS */
    unsigned ws_keepalive_ms;            /* WS_KEEPALIVE_INTERVAL */
    unsigned max_reconnect_failures;     /* MAX_RECONNECT_FAILURES; 0 = retry forever */
    int storage_type;                    /* SESSION_STORAGE_TYPE (enum wg_storage_type) */
    unsigned backup_interval_ms;         /* SESSION_BACKUP_INTERVAL */
    unsigned health_interval_ms;         /* HEALTH_CHECK_INTERVAL */
    char ws_url[WG_CONFIG_URL_MAX];      /* WA_WS_URL */
    uint8_t root_key[32];                /* WA_ROOT_KEY (when root_key_set) */
    int root_key_set;                    /* 0: WhatsApp's real root */
    char ca_file[WG_CONFIG_PATH_MAX];    /* WA_CA_FILE; "" = system CAs only */
    char webhook_url[WG_CONFIG_URL_MAX]; /* WEBHOOK_URL; "" = none */
    char webhook_secret[WG_WEBHOOK_SECRET_MAX + 1]; /* WEBHOOK_SECRET */
    int log_level;                                  /* LOG_LEVEL (enum wa_log_level) */
    int log_format;                                 /* LOG_FORMAT (enum wg_log_format) */
    int on_cloud_run;                               /* K_SERVICE is set */
    unsigned message_retention_days;     /* MESSAGE_RETENTION_DAYS; 0 = the store is off */
    unsigned message_store_max;          /* MESSAGE_STORE_MAX per session; 0 = the store is off */
    char wa_version[WG_VERSION_STR_MAX]; /* WA_VERSION: "" (libwa's default), "2.3000.N", "auto" */
    char wa_version_url[WG_CONFIG_URL_MAX]; /* WA_VERSION_URL (for WA_VERSION=auto) */
} wg_config;

/* Fill *cfg from the environment (get == NULL: getenv). 0 on success; WA_EINVAL with a
 * NUL-terminated message naming the variable in err (errlen bytes, may be 0) otherwise. On
 * failure *cfg is wiped (it may have held a secret). */
int wg_config_load(wg_config *cfg, wg_getenv_cb get, void *user_data, char *err, size_t errlen);

/* Wipe the secrets held in cfg (API key, webhook secret). */
void wg_config_wipe(wg_config *cfg);

const char *wg_storage_type_name(int type);
const char *wg_log_format_name(int format);

/* 1 if s is an acceptable API key (length bounds, printable ASCII without spaces). */
int wg_api_key_valid(const char *s);

#endif
