/*
 * token.c - OAuth2 bearer tokens from the metadata server or a service-account key (token.h).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "backup/token.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/util.h"
#include "wa/error.h"

enum { SRC_METADATA = 1, SRC_SA = 2 };

struct wg_token_source {
    int kind;
    wg_curluv *cu;
    char host[WG_TOKEN_HOST_MAX];
    wg_gsa_key *key;
    char scope[256];
    char describe[WG_GSA_EMAIL_MAX + 32];
    char token[WG_TOKEN_MAX];
    int64_t good_until_ms; /* 0: no token */
    /* the fetch */
    wg_curluv_xfer x;
    struct curl_slist *headers;
    wa_buf body;   /* request body (the assertion form) */
    wa_buf resp;   /* answer */
    int resp_over; /* the answer passed WG_TOKEN_JSON_MAX */
    wg_token_cb cb;
    void *ud;
    char errbuf[CURL_ERROR_SIZE];
    uint64_t fetched, failed;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static wg_token_source *alloc_source(wg_curluv *cu, int kind)
{
    wg_token_source *ts = wa_calloc(1, sizeof *ts);

    if (!ts)
        return NULL;
    ts->kind = kind;
    ts->cu = cu;
    wa_buf_init(&ts->body, WG_TOKEN_JSON_MAX);
    wa_buf_init(&ts->resp, WG_TOKEN_JSON_MAX);
    return ts;
}

int wg_token_metadata_new(wg_curluv *cu, const char *host, wg_token_source **out)
{
    wg_token_source *ts;
    size_t i;

    if (!cu || !out)
        return WA_EINVAL;
    if (!host || !*host)
        host = WG_METADATA_HOST_DEFAULT;
    if (strlen(host) >= WG_TOKEN_HOST_MAX)
        return WA_EINVAL;
    for (i = 0; host[i]; i++)
        if ((unsigned char)host[i] <= 0x20 || host[i] == '/' || host[i] == '@' || host[i] == '?')
            return WA_EINVAL;
    ts = alloc_source(cu, SRC_METADATA);
    if (!ts)
        return WA_ENOMEM;
    snprintf(ts->host, sizeof ts->host, "%s", host);
    snprintf(ts->describe, sizeof ts->describe, "metadata server %s", host);
    *out = ts;
    return 0;
}

int wg_token_sa_new(wg_curluv *cu, wg_gsa_key *key, const char *scope, wg_token_source **out)
{
    wg_token_source *ts;

    if (!cu || !key || !out || (scope && strlen(scope) >= 256)) {
        wg_gsa_key_free(key);
        return WA_EINVAL;
    }
    ts = alloc_source(cu, SRC_SA);
    if (!ts) {
        wg_gsa_key_free(key);
        return WA_ENOMEM;
    }
    ts->key = key;
    snprintf(ts->scope, sizeof ts->scope, "%s", scope ? scope : WG_GCS_SCOPE_RW);
    snprintf(ts->describe, sizeof ts->describe, "service account %s", wg_gsa_key_email(key));
    *out = ts;
    return 0;
}

const char *wg_token_current(wg_token_source *ts, int64_t now)
{
    if (!ts || !ts->good_until_ms || now >= ts->good_until_ms)
        return NULL;
    return ts->token;
}

void wg_token_invalidate(wg_token_source *ts)
{
    if (!ts)
        return;
    wa_wipe(ts->token, sizeof ts->token);
    ts->good_until_ms = 0;
}

const char *wg_token_describe(const wg_token_source *ts)
{
    return ts ? ts->describe : "";
}

void wg_token_counts(const wg_token_source *ts, uint64_t *fetched, uint64_t *failed)
{
    *fetched = ts ? ts->fetched : 0;
    *failed = ts ? ts->failed : 0;
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    wg_token_source *ts = ud;

    if (wa_buf_append(&ts->resp, p, size * n) != 0) {
        ts->resp_over = 1;
        return 0;
    }
    return size * n;
}

static void fetch_end(wg_token_source *ts)
{
    if (ts->x.easy)
        curl_easy_cleanup(ts->x.easy);
    ts->x.easy = NULL;
    curl_slist_free_all(ts->headers);
    ts->headers = NULL;
    wa_buf_wipe_cleanup(&ts->body);
    wa_buf_wipe_cleanup(&ts->resp);
}

static void on_done(wg_curluv_xfer *x, CURLcode result)
{
    wg_token_source *ts = x->user_data;
    wg_token_cb cb = ts->cb;
    void *ud = ts->ud;
    char err[256];
    long status = 0;
    int64_t expires_in = 0, life_ms, margin_ms;
    int rc = WA_EIO;

    err[0] = '\0';
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (result != CURLE_OK) {
        snprintf(err, sizeof err, "%s", ts->errbuf[0] ? ts->errbuf : curl_easy_strerror(result));
    } else if (status != 200) {
        snprintf(err, sizeof err, "HTTP %ld from the token endpoint", status);
    } else if (wg_token_response_parse((const char *)ts->resp.data, ts->resp.len, ts->token,
                                       sizeof ts->token, &expires_in) != 0) {
        snprintf(err, sizeof err, "malformed token answer");
    } else {
        life_ms = expires_in * 1000;
        margin_ms = (int64_t)WG_TOKEN_MARGIN_S * 1000;
        if (margin_ms > life_ms / 2)
            margin_ms = life_ms / 2;
        ts->good_until_ms = now_ms() + life_ms - margin_ms;
        rc = 0;
    }
    if (rc)
        ts->failed++;
    else
        ts->fetched++;
    ts->cb = NULL;
    fetch_end(ts);
    cb(rc, err, ud);
}

int wg_token_refresh(wg_token_source *ts, wg_token_cb cb, void *user_data)
{
    char url[WG_GSA_URI_MAX + WG_TOKEN_HOST_MAX + 64];
    wa_buf assertion;
    struct curl_slist *h;
    int rc = WA_ENOMEM;

    if (!ts || !cb)
        return WA_EINVAL;
    if (ts->cb)
        return WA_ESTATE;
    wa_buf_init(&ts->body, WG_TOKEN_JSON_MAX);
    wa_buf_init(&ts->resp, WG_TOKEN_JSON_MAX);
    ts->resp_over = 0;
    ts->errbuf[0] = '\0';
    ts->x.easy = curl_easy_init();
    if (!ts->x.easy)
        goto fail;
    if (ts->kind == SRC_METADATA) {
        snprintf(url, sizeof url, "http://%s%s", ts->host, WG_METADATA_TOKEN_PATH);
        h = curl_slist_append(NULL, "Metadata-Flavor: Google");
        if (!h)
            goto fail;
        ts->headers = h;
        curl_easy_setopt(ts->x.easy, CURLOPT_HTTPGET, 1L);
    } else {
        wa_buf_init(&assertion, WG_TOKEN_JSON_MAX);
        rc = wg_jwt_assertion(ts->key, ts->scope, now_ms() / 1000, &assertion);
        if (rc == 0)
            rc = wa_buf_append_byte(&assertion, 0);
        if (rc == 0)
            rc = wg_jwt_token_request_body((const char *)assertion.data, &ts->body);
        wa_buf_wipe_cleanup(&assertion);
        if (rc)
            goto fail;
        rc = WA_ENOMEM;
        snprintf(url, sizeof url, "%s", wg_gsa_key_token_uri(ts->key));
        h = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
        if (!h)
            goto fail;
        ts->headers = h;
        if (!(h = curl_slist_append(ts->headers, "Expect:")))
            goto fail;
        curl_easy_setopt(ts->x.easy, CURLOPT_POST, 1L);
        curl_easy_setopt(ts->x.easy, CURLOPT_POSTFIELDS, (char *)ts->body.data);
        curl_easy_setopt(ts->x.easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)ts->body.len);
    }
    curl_easy_setopt(ts->x.easy, CURLOPT_URL, url);
    curl_easy_setopt(ts->x.easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(ts->x.easy, CURLOPT_HTTPHEADER, ts->headers);
    curl_easy_setopt(ts->x.easy, CURLOPT_USERAGENT, "wagate-backup/1");
    curl_easy_setopt(ts->x.easy, CURLOPT_TIMEOUT_MS, (long)WG_TOKEN_FETCH_TIMEOUT_MS);
    curl_easy_setopt(ts->x.easy, CURLOPT_FOLLOWLOCATION, 0L);
    /* the metadata server is reached directly, never through a proxy */
    if (ts->kind == SRC_METADATA)
        curl_easy_setopt(ts->x.easy, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(ts->x.easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(ts->x.easy, CURLOPT_WRITEDATA, ts);
    curl_easy_setopt(ts->x.easy, CURLOPT_ERRORBUFFER, ts->errbuf);
    ts->x.done = on_done;
    ts->x.user_data = ts;
    if (wg_curluv_add(ts->cu, &ts->x) != 0) {
        rc = WA_EIO;
        goto fail;
    }
    ts->cb = cb;
    ts->ud = user_data;
    return 0;
fail:
    fetch_end(ts);
    return rc;
}

void wg_token_free(wg_token_source *ts)
{
    if (!ts)
        return;
    if (ts->cb)
        wg_curluv_remove(ts->cu, &ts->x);
    fetch_end(ts);
    wg_gsa_key_free(ts->key);
    wa_wipe(ts, sizeof *ts);
    wa_free(ts);
}
