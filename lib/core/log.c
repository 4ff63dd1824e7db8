/* log.c - leveled logging with a replaceable sink.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include "core/log.h"

#include <stdio.h>
#include <strings.h>

#include "wa/error.h"

static int log_level = WA_LOG_INFO;
static wa_log_sink_cb log_sink;
static void *log_sink_data;

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error", "off"};

void wa_log_set_level(int level)
{
    if (level < WA_LOG_TRACE)
        level = WA_LOG_TRACE;
    if (level > WA_LOG_OFF)
        level = WA_LOG_OFF;
    log_level = level;
}

int wa_log_get_level(void)
{
    return log_level;
}

void wa_log_set_sink(wa_log_sink_cb cb, void *user_data)
{
    log_sink = cb;
    log_sink_data = user_data;
}

int wa_log_level_parse(const char *s, int *level)
{
    int i;

    for (i = WA_LOG_TRACE; i <= WA_LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *level = i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *level = WA_LOG_WARN;
        return 0;
    }
    return WA_EINVAL;
}

const char *wa_log_level_name(int level)
{
    if (level < WA_LOG_TRACE || level > WA_LOG_OFF)
        return "?";
    return level_names[level];
}

void wa_logv(int level, const char *component, const char *fmt, va_list ap)
{
    char msg[1024];

    if (level < log_level || level >= WA_LOG_OFF)
        return;
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (log_sink) {
        log_sink(level, component, msg, log_sink_data);
        return;
    }
    fprintf(stderr, "%-5s %s: %s\n", wa_log_level_name(level), component ? component : "-", msg);
}

void wa_log(int level, const char *component, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    wa_logv(level, component, fmt, ap);
    va_end(ap);
}
