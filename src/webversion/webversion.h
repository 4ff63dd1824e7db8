/*
 * webversion.h - the current WhatsApp Web version, fetched the way whatsmeow's update.go
 * (GetLatestVersion) does: GET https://web.whatsapp.com/ with a browser's headers and take
 * `"client_revision":N,` from the page as 2.3000.N; a check-update style JSON answer
 * (`"currentVersion":"2.3000.N"`) is accepted too. Shared by wagate (WA_VERSION=auto) and
 * wa-cli (--version auto).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_WEBVERSION_H
#define WG_WEBVERSION_H

#include <stddef.h>

#define WG_WEBVERSION_URL      "https://web.whatsapp.com/"
#define WG_WEBVERSION_STR_MAX  32        /* "A.B.C" with its NUL */
#define WG_WEBVERSION_BODY_MAX (4 << 20) /* largest answer read */

/* The version in body (NUL-terminated): writes out (WG_WEBVERSION_STR_MAX bytes) and returns 0,
 * or -1 when there is none. */
int wg_webversion_parse(const char *body, char *out);

/* Fetch from url (NULL: WG_WEBVERSION_URL) within timeout_s seconds (blocking: call it before
 * the loop runs). 0 and out; -1 with a readable reason in err (errlen bytes). */
int wg_webversion_fetch(const char *url, long timeout_s, char *out, char *err, size_t errlen);

#endif
