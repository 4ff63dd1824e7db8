/*
 * webversion.c - fetch and parse the current WhatsApp Web version (see webversion.h). Moved
 * here from tools/wa-cli so that wagate's WA_VERSION=auto uses the same code.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "webversion.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define UA                                                                                         \
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 "     \
    "Safari/537.36"

typedef struct http_body {
    char *data;
    size_t len;
    int too_big;
} http_body;

static size_t body_write(char *ptr, size_t size, size_t n, void *ud)
{
    http_body *b = ud;
    size_t add = size * n;
    char *p;

    if (add > WG_WEBVERSION_BODY_MAX - b->len) {
        b->too_big = 1;
        return 0;
    }
    p = realloc(b->data, b->len + add + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, ptr, add);
    b->len += add;
    p[b->len] = '\0';
    b->data = p;
    return add;
}

/* Digits at s, at most 10 of them (a uint32); their count, 0 if none or too many. */
static size_t digits(const char *s)
{
    size_t n = 0;

    while (s[n] >= '0' && s[n] <= '9')
        n++;
    return n > 10 ? 0 : n;
}

int wg_webversion_parse(const char *body, char *out)
{
    const char *p;
    size_t a, b, c;

    if ((p = strstr(body, "\"client_revision\":")) != NULL) {
        p += strlen("\"client_revision\":");
        a = digits(p);
        if (!a || p[a] != ',')
            return -1;
        snprintf(out, WG_WEBVERSION_STR_MAX, "2.3000.%.*s", (int)a, p);
        return 0;
    }
    if ((p = strstr(body, "\"currentVersion\"")) != NULL) {
        p += strlen("\"currentVersion\"");
        while (*p == ' ')
            p++;
        if (*p++ != ':')
            return -1;
        while (*p == ' ')
            p++;
        if (*p++ != '"')
            return -1;
        a = digits(p);
        if (!a || p[a] != '.')
            return -1;
        b = digits(p + a + 1);
        if (!b || p[a + 1 + b] != '.')
            return -1;
        c = digits(p + a + 1 + b + 1);
        if (!c || p[a + b + c + 2] != '"')
            return -1;
        snprintf(out, WG_WEBVERSION_STR_MAX, "%.*s", (int)(a + b + c + 2), p);
        return 0;
    }
    return -1;
}

int wg_webversion_fetch(const char *url, long timeout_s, char *out, char *err, size_t errlen)
{
    http_body b = {0};
    struct curl_slist *h = NULL;
    CURL *e = NULL;
    CURLcode cc;
    long status = 0;
    int rc = -1;

    if (!url)
        url = WG_WEBVERSION_URL;
    if (errlen)
        err[0] = '\0';
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "curl init failed");
        return -1;
    }
    e = curl_easy_init();
    if (!e) {
        snprintf(err, errlen, "curl init failed");
        goto out;
    }
    h = curl_slist_append(h, "Sec-Fetch-Dest: document");
    h = curl_slist_append(h, "Sec-Fetch-Mode: navigate");
    h = curl_slist_append(h, "Sec-Fetch-Site: none");
    h = curl_slist_append(h, "Sec-Fetch-User: ?1");
    h = curl_slist_append(h, "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;"
                             "q=0.8");
    h = curl_slist_append(h, "Accept-Language: en-US,en;q=0.9");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_USERAGENT, UA);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    cc = curl_easy_perform(e);
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s", b.too_big ? "answer too large" : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        snprintf(err, errlen, "HTTP status %ld", status);
        goto out;
    }
    if (!b.data || wg_webversion_parse(b.data, out) != 0) {
        snprintf(err, errlen, "no version in the answer");
        goto out;
    }
    rc = 0;
out:
    curl_slist_free_all(h);
    if (e)
        curl_easy_cleanup(e);
    curl_global_cleanup();
    free(b.data);
    return rc;
}
