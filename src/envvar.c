/*
 * envvar.c - see envvar.h.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "envvar.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wa/error.h"

/* How much of a bad (non-secret) value is quoted back in an error message. */
#define SHOW_MAX 64

static const char *env_get(const char *name, void *ud)
{
    (void)ud;
    return getenv(name);
}

wg_env_loader wg_env_loader_make(wg_getenv_cb get, void *user_data, char *err, size_t errlen)
{
    wg_env_loader l = {get ? get : env_get, user_data, err, errlen};

    return l;
}

const char *wg_env_get(wg_env_loader *l, const char *name)
{
    const char *v = l->get(name, l->ud);
    return (v && *v) ? v : NULL;
}

int wg_env_fail(wg_env_loader *l, const char *name, const char *value, const char *fmt, ...)
{
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (l->errlen) {
        if (value)
            snprintf(l->err, l->errlen, "%s: %s (got \"%.*s%s\")", name, why, SHOW_MAX, value,
                     strlen(value) > SHOW_MAX ? "..." : "");
        else
            snprintf(l->err, l->errlen, "%s: %s", name, why);
    }
    return WA_EINVAL;
}

int wg_parse_bool(const char *s, int *out)
{
    if (!strcasecmp(s, "true") || !strcmp(s, "1")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(s, "false") || !strcmp(s, "0")) {
        *out = 0;
        return 0;
    }
    return WA_EINVAL;
}

int wg_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    unsigned long v;
    char *end;

    if (!isdigit((unsigned char)s[0]))
        return WA_EINVAL;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return WA_EINVAL;
    *out = v;
    return 0;
}
