/*
 * log.h - leveled logging.
 *
 * Messages are plain text made by the caller's format string. Rule for every caller: key
 * material, tokens, API keys and message plaintexts are never passed to these functions; log a
 * key's purpose or a fingerprint-free id instead. The sink receives the finished line, so a
 * daemon can turn it into JSON (Cloud Logging) without re-parsing.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WA_CORE_LOG_H
#define WA_CORE_LOG_H

#include <stdarg.h>

enum wa_log_level {
    WA_LOG_TRACE = 0,
    WA_LOG_DEBUG,
    WA_LOG_INFO,
    WA_LOG_WARN,
    WA_LOG_ERROR,
    WA_LOG_OFF
};

/* Receives one finished message (no trailing newline). `component` is a short layer name. */
typedef void (*wa_log_sink_cb)(int level, const char *component, const char *msg, void *user_data);

void wa_log_set_level(int level);
int wa_log_get_level(void);
/* NULL restores the default sink (stderr, "LEVEL component: msg"). */
void wa_log_set_sink(wa_log_sink_cb cb, void *user_data);
/* Parse "trace|debug|info|warn|error|off" (case-insensitive). 0 or WA_EINVAL. */
int wa_log_level_parse(const char *s, int *level);
const char *wa_log_level_name(int level);

#if defined(__GNUC__)
#define WA__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define WA__PRINTF(a, b)
#endif

void wa_log(int level, const char *component, const char *fmt, ...) WA__PRINTF(3, 4);
void wa_logv(int level, const char *component, const char *fmt, va_list ap) WA__PRINTF(3, 0);

#define WA_LOG_ENABLED(level)   ((level) >= wa_log_get_level())
#define wa_log_error(comp, ...) wa_log(WA_LOG_ERROR, comp, __VA_ARGS__)
#define wa_log_warn(comp, ...)  wa_log(WA_LOG_WARN, comp, __VA_ARGS__)
#define wa_log_info(comp, ...)  wa_log(WA_LOG_INFO, comp, __VA_ARGS__)
#define wa_log_debug(comp, ...)                                                                    \
    do {                                                                                           \
        if (WA_LOG_ENABLED(WA_LOG_DEBUG))                                                          \
            wa_log(WA_LOG_DEBUG, comp, __VA_ARGS__);                                               \
    } while (0)
#define wa_log_trace(comp, ...)                                                                    \
    do {                                                                                           \
        if (WA_LOG_ENABLED(WA_LOG_TRACE))                                                          \
            wa_log(WA_LOG_TRACE, comp, __VA_ARGS__);                                               \
    } while (0)

#endif
