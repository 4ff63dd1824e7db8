/*
 * logging.h - wagate's log output: libwa's logger (lib/core/log.h) with a sink that writes one
 * line per message to stderr, either as text or as one JSON object per line in the form Cloud
 * Logging parses (`severity`, `message`, `time`, plus `component`).
 *
 * Secrets: callers never pass secrets to the logger (rule of lib/core/log.h). As a second line
 * of defence the sink replaces every registered secret (API key, webhook secrets) that still
 * shows up in a message with "[redacted]".
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_LOGGING_H
#define WG_LOGGING_H

#include <stdio.h>

#include "config.h"

#define WG_LOG_SECRETS_MAX 8
#define WG_LOG_LINE_MAX    4096

/* Install the sink on libwa's logger with the format and level of cfg. `out` is where lines
 * go (NULL: stderr); borrowed, must outlive the logger. */
void wg_logging_init(int format, int level, FILE *out);
/* Restore libwa's default sink and forget the registered secrets (wiped). */
void wg_logging_cleanup(void);
/* Register a secret to redact (copied; at most WG_LOG_SECRETS_MAX, secrets shorter than 6
 * characters are ignored: redacting them would mangle ordinary words). 0 or WA_ELIMIT. */
int wg_logging_add_secret(const char *secret);

/* Format one line (no newline) into out (cap bytes) as the sink would; for tests.
 * Returns the length written. */
size_t wg_logging_format(char *out, size_t cap, int format, int level, const char *component,
                         const char *msg, double unix_time);

#endif
