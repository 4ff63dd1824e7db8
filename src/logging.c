/*
 * logging.c - text or JSON-lines sink for libwa's logger (see logging.h).
 *
 * JSON form, one object per line, fields in this order:
 *   {"time":"2025-01-02T03:04:05.678Z","severity":"INFO","component":"api","message":"..."}
 * `severity` uses Cloud Logging's LogSeverity names (DEBUG, INFO, WARNING, ERROR), which Cloud
 * Run's agent lifts from stdout/stderr lines into the entry's severity.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "logging.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "wa/error.h"

#define SECRET_MIN 6
#define REDACTED   "[redacted]"

static int log_format;
static FILE *log_out;
static char *secrets[WG_LOG_SECRETS_MAX];
static size_t nsecrets;

static const char *severity(int level)
{
    switch (level) {
    case WA_LOG_TRACE:
    case WA_LOG_DEBUG:
        return "DEBUG";
    case WA_LOG_INFO:
        return "INFO";
    case WA_LOG_WARN:
        return "WARNING";
    default:
        return "ERROR";
    }
}

/* Append s (JSON-escaped when json) to out[*o..cap). Stops silently when full. */
static void put(char *out, size_t cap, size_t *o, const char *s, int json)
{
    static const char hex[] = "0123456789abcdef";

    for (; *s && *o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (!json) {
            /* keep one record per line in text form too */
            out[(*o)++] = (c == '\n' || c == '\r') ? ' ' : (char)c;
        } else if (c == '"' || c == '\\') {
            out[(*o)++] = '\\';
            out[(*o)++] = (char)c;
        } else if (c == '\n') {
            out[(*o)++] = '\\';
            out[(*o)++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(out + *o, "\\u00", 4);
            out[*o + 4] = hex[c >> 4];
            out[*o + 5] = hex[c & 15];
            *o += 6;
        } else {
            out[(*o)++] = (char)c;
        }
    }
    out[*o] = '\0';
}

size_t wg_logging_format(char *out, size_t cap, int format, int level, const char *component,
                         const char *msg, double unix_time)
{
    char ts[96];
    struct tm tm;
    time_t secs = (time_t)unix_time;
    int ms = (int)((unix_time - (double)secs) * 1000.0);
    size_t o = 0;

    if (cap < 16)
        return 0;
    if (ms < 0 || ms > 999)
        ms = 0;
    gmtime_r(&secs, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    if (!component)
        component = "-";
    if (format == WG_LOG_FORMAT_JSON) {
        put(out, cap, &o, "{\"time\":\"", 0);
        put(out, cap, &o, ts, 1);
        put(out, cap, &o, "\",\"severity\":\"", 0);
        put(out, cap, &o, severity(level), 1);
        put(out, cap, &o, "\",\"component\":\"", 0);
        put(out, cap, &o, component, 1);
        put(out, cap, &o, "\",\"message\":\"", 0);
        put(out, cap, &o, msg, 1);
        /* a message cut short still closes the object: the line stays valid JSON */
        if (o + 3 > cap)
            o = cap - 3;
        out[o++] = '"';
        out[o++] = '}';
        out[o] = '\0';
    } else {
        put(out, cap, &o, ts, 0);
        put(out, cap, &o, " ", 0);
        put(out, cap, &o, wa_log_level_name(level), 0);
        put(out, cap, &o, " ", 0);
        put(out, cap, &o, component, 0);
        put(out, cap, &o, ": ", 0);
        put(out, cap, &o, msg, 0);
    }
    return o;
}

/* Copy msg into buf with every registered secret replaced. */
static const char *redact(const char *msg, char *buf, size_t cap)
{
    size_t i, o = 0;
    const char *p = msg;
    int hit = 0;

    for (i = 0; i < nsecrets; i++)
        if (strstr(msg, secrets[i]))
            hit = 1;
    if (!hit)
        return msg;
    while (*p && o + 1 < cap) {
        size_t skip = 0;
        for (i = 0; i < nsecrets; i++) {
            size_t n = strlen(secrets[i]);
            if (!strncmp(p, secrets[i], n)) {
                skip = n;
                break;
            }
        }
        if (skip) {
            size_t r = strlen(REDACTED);
            if (o + r + 1 > cap)
                break;
            memcpy(buf + o, REDACTED, r);
            o += r;
            p += skip;
        } else {
            buf[o++] = *p++;
        }
    }
    buf[o] = '\0';
    return buf;
}

static void sink(int level, const char *component, const char *msg, void *ud)
{
    char line[WG_LOG_LINE_MAX], clean[WG_LOG_LINE_MAX];
    struct timespec now;
    size_t n;

    (void)ud;
    clock_gettime(CLOCK_REALTIME, &now);
    msg = redact(msg, clean, sizeof clean);
    n = wg_logging_format(line, sizeof line - 1, log_format, level, component, msg,
                          (double)now.tv_sec + (double)now.tv_nsec / 1e9);
    line[n++] = '\n';
    /* one write per line so concurrent writers (and Cloud Run's collector) never see halves */
    fwrite(line, 1, n, log_out ? log_out : stderr);
    fflush(log_out ? log_out : stderr);
    if (msg == clean)
        wa_wipe(clean, sizeof clean);
}

void wg_logging_init(int format, int level, FILE *out)
{
    log_format = format;
    log_out = out;
    wa_log_set_level(level);
    wa_log_set_sink(sink, NULL);
}

int wg_logging_add_secret(const char *secret)
{
    size_t n = strlen(secret);

    if (n < SECRET_MIN)
        return 0;
    if (nsecrets == WG_LOG_SECRETS_MAX)
        return WA_ELIMIT;
    secrets[nsecrets] = malloc(n + 1);
    if (!secrets[nsecrets])
        return WA_ENOMEM;
    memcpy(secrets[nsecrets++], secret, n + 1);
    return 0;
}

void wg_logging_cleanup(void)
{
    size_t i;

    wa_log_set_sink(NULL, NULL);
    for (i = 0; i < nsecrets; i++) {
        wa_wipe(secrets[i], strlen(secrets[i]));
        free(secrets[i]);
        secrets[i] = NULL;
    }
    nsecrets = 0;
    log_out = NULL;
}
