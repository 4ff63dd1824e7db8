/*
 * envvar.h - the strict environment-variable reader shared by the gateway's configuration
 * (config.c) and the backup's (backup/env.c): one error format ("VAR: why (got ...)", secrets
 * never quoted), one number and boolean syntax.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_ENVVAR_H
#define WG_ENVVAR_H

#include <stddef.h>

#include "core/log.h"

/* Reads one variable; NULL when unset. The default reads the process environment. */
typedef const char *(*wg_getenv_cb)(const char *name, void *user_data);

/* A load in progress: where variables come from and where the first error goes. */
typedef struct wg_env_loader {
    wg_getenv_cb get;
    void *ud;
    char *err;
    size_t errlen;
} wg_env_loader;

/* A loader reading through get (NULL: getenv) into err (errlen bytes, may be 0). */
wg_env_loader wg_env_loader_make(wg_getenv_cb get, void *user_data, char *err, size_t errlen);
/* The variable's value; NULL when unset or empty. */
const char *wg_env_get(wg_env_loader *l, const char *name);
/* Record "NAME: why (got "value")" (value NULL: not quoted, for secrets) and return WA_EINVAL. */
int wg_env_fail(wg_env_loader *l, const char *name, const char *value, const char *fmt, ...)
    WA__PRINTF(4, 5);

/* "true"/"1" or "false"/"0" (case-insensitive words). 0 or WA_EINVAL. */
int wg_parse_bool(const char *s, int *out);
/* Base-10 digits only, within [min, max]. 0 or WA_EINVAL. */
int wg_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out);

#endif
