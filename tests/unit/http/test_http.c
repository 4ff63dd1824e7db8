/* test_http.c - the libmicrohttpd-on-libuv server: routing to the handler, bodies, the body
 * cap (413), query and header look-ups, and a clean shutdown with the loop closed.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <uv.h>

#include "http/httpd.h"

typedef struct result {
    long status;
    char body[4096];
    size_t len;
} result;

typedef struct job {
    int port;
    const char *method;
    const char *path;
    const char *body;
    size_t body_len;
    result res;
    uv_async_t *done;
} job;

static size_t on_write(char *p, size_t sz, size_t n, void *ud)
{
    result *r = ud;
    size_t len = sz * n;
    if (r->len + len >= sizeof r->body)
        len = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = '\0';
    return sz * n;
}

static void run_job(void *arg)
{
    job *j = arg;
    CURL *c = curl_easy_init();
    char url[256];
    struct curl_slist *hdrs = curl_slist_append(NULL, "X-Test: yes");

    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", j->port, j->path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, j->method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (j->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, j->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)j->body_len);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &j->res);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &j->res.status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    uv_async_send(j->done);
}

static void handler(wg_http_req *req, wg_http_resp *resp, void *ud)
{
    char buf[2048];
    const char *q = wg_http_query(req, "q");
    const char *hdr = wg_http_header(req, "X-Test");
    int n;

    (*(int *)ud)++;
    if (strcmp(req->path, "/missing") == 0) {
        wg_http_json_error(resp, 404, "not_found", "no \"such\" route");
        return;
    }
    n = snprintf(buf, sizeof buf, "%s %s q=%s h=%s len=%zu body=%.64s", req->method, req->path,
                 q ? q : "-", hdr ? hdr : "-", req->body_len, req->body);
    wg_http_set_body(resp, 200, "text/plain", buf, (size_t)n);
}

static void on_done(uv_async_t *a)
{
    uv_stop(a->loop);
}

static void do_request(uv_loop_t *loop, int port, job *j)
{
    uv_thread_t th;
    uv_async_t done;

    uv_async_init(loop, &done, on_done);
    j->port = port;
    j->done = &done;
    uv_thread_create(&th, run_job, j);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_thread_join(&th);
    uv_close((uv_handle_t *)&done, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void test_requests(void **state)
{
    uv_loop_t loop;
    wg_httpd *h;
    int calls = 0;
    static char big[5000];
    job j1 = {0}, j2 = {0}, j3 = {0}, j4 = {0};

    (void)state;
    memset(big, 'a', sizeof big);
    assert_int_equal(uv_loop_init(&loop), 0);
    h = wg_httpd_start(&loop, "127.0.0.1", 0, 4096, handler, &calls);
    assert_non_null(h);
    assert_true(wg_httpd_port(h) > 0);

    j1.method = "GET";
    j1.path = "/hello?q=42";
    do_request(&loop, wg_httpd_port(h), &j1);
    assert_int_equal(j1.res.status, 200);
    assert_string_equal(j1.res.body, "GET /hello q=42 h=yes len=0 body=");

    j2.method = "POST";
    j2.path = "/echo";
    j2.body = "{\"a\":1}";
    j2.body_len = 7;
    do_request(&loop, wg_httpd_port(h), &j2);
    assert_int_equal(j2.res.status, 200);
    assert_string_equal(j2.res.body, "POST /echo q=- h=yes len=7 body={\"a\":1}");

    j3.method = "POST";
    j3.path = "/echo";
    j3.body = big;
    j3.body_len = sizeof big; /* over the 4096 cap */
    do_request(&loop, wg_httpd_port(h), &j3);
    assert_int_equal(j3.res.status, 413);
    assert_non_null(strstr(j3.res.body, "\"code\":\"body_too_large\""));
    assert_int_equal(calls, 2); /* the handler never saw the oversized request */

    j4.method = "GET";
    j4.path = "/missing";
    do_request(&loop, wg_httpd_port(h), &j4);
    assert_int_equal(j4.res.status, 404);
    assert_string_equal(
        j4.res.body, "{\"error\":{\"code\":\"not_found\",\"message\":\"no \\\"such\\\" route\"}}");

    wg_httpd_stop(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_requests)};
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
