/* test_http_suspend.c - suspended requests of src/http/httpd: answered later from a timer,
 * answered before the handler returns, several at once in any order, and still suspended when
 * the server stops (cancel called, 503 or a closed connection, no MHD panic, loop closes).
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

#define MAX_WAITERS 8

typedef struct waiter {
    wg_http_pending *p;
    uv_timer_t timer;
    int delay_ms;
    char text[32];
    int cancelled;
    int used;
} waiter;

typedef struct server {
    wg_httpd *h;
    waiter w[MAX_WAITERS];
    int calls;
    int stop_on_suspend; /* stop the server once this many requests are suspended */
} server;

typedef struct result {
    long status;
    char body[1024];
    size_t len;
} result;

typedef struct job {
    int port;
    char path[64];
    result res;
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

    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", j->port, j->path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &j->res);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &j->res.status);
    curl_easy_cleanup(c);
}

static void answer(waiter *w, int status)
{
    wg_http_resp r;

    memset(&r, 0, sizeof r);
    wg_http_set_body(&r, status, "text/plain", w->text, strlen(w->text));
    snprintf(r.extra_headers, sizeof r.extra_headers, "X-Late: yes\r\n");
    wg_http_resume_with(w->p, &r);
    w->p = NULL;
}

static void on_timer(uv_timer_t *t)
{
    waiter *w = t->data;

    if (w->p)
        answer(w, 200);
    uv_close((uv_handle_t *)t, NULL);
}

static void on_cancel(void *ud)
{
    waiter *w = ud;

    w->cancelled = 1;
    w->p = NULL;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, NULL);
}

static void on_stop_timer(uv_timer_t *t)
{
    server *sv = t->data;

    wg_httpd_stop(sv->h);
    sv->h = NULL;
    uv_close((uv_handle_t *)t, NULL);
}

static uv_timer_t stop_timer;

/* /wait/<ms>/<text>: answered after ms; /now/<text>: suspended and answered at once;
 * /hold: suspended until the server stops. */
static void handler(wg_http_req *req, wg_http_resp *resp, void *ud)
{
    server *sv = ud;
    waiter *w = NULL;
    int i, ms = 0;
    char text[32] = "";

    sv->calls++;
    for (i = 0; i < MAX_WAITERS; i++)
        if (!sv->w[i].used) {
            w = &sv->w[i];
            break;
        }
    assert_non_null(w);
    w->used = 1;
    if (sscanf(req->path, "/wait/%d/%31s", &ms, text) == 2) {
        w->p = wg_http_suspend(req, on_cancel, w);
        assert_non_null(w->p);
        /* a second suspend of the same request is refused */
        assert_null(wg_http_suspend(req, on_cancel, w));
        snprintf(w->text, sizeof w->text, "%s", text);
        uv_timer_init(uv_default_loop(), &w->timer);
        w->timer.data = w;
        uv_timer_start(&w->timer, on_timer, (uint64_t)ms, 0);
        /* what the handler leaves in resp is discarded */
        wg_http_set_body(resp, 500, "text/plain", "ignored", 7);
    } else if (sscanf(req->path, "/now/%31s", text) == 1) {
        w->p = wg_http_suspend(req, NULL, NULL);
        assert_non_null(w->p);
        snprintf(w->text, sizeof w->text, "%s", text);
        answer(w, 201);
    } else if (!strcmp(req->path, "/hold")) {
        w->p = wg_http_suspend(req, on_cancel, w);
        assert_non_null(w->p);
        uv_timer_init(uv_default_loop(), &w->timer);
        if (sv->stop_on_suspend && wg_httpd_suspended(sv->h) == (size_t)sv->stop_on_suspend) {
            uv_timer_init(uv_default_loop(), &stop_timer);
            stop_timer.data = sv;
            uv_timer_start(&stop_timer, on_stop_timer, 20, 0);
        }
    } else {
        wg_http_set_body(resp, 200, "text/plain", "plain", 5);
    }
}

typedef struct batch {
    job *jobs;
    int n;
    uv_thread_t th[MAX_WAITERS];
    uv_async_t done;
    uv_mutex_t lock;
    int finished;
} batch;

static batch *current;

static void job_thread(void *arg)
{
    run_job(arg);
    uv_mutex_lock(&current->lock);
    current->finished++;
    uv_mutex_unlock(&current->lock);
    uv_async_send(&current->done);
}

static void on_done(uv_async_t *a)
{
    batch *b = a->data;
    int all;

    /* async sends coalesce: count under the lock */
    uv_mutex_lock(&b->lock);
    all = b->finished == b->n;
    uv_mutex_unlock(&b->lock);
    if (all)
        uv_stop(a->loop);
}

/* Run n requests in parallel threads while the loop runs; returns when all have ended. */
static void run_batch(uv_loop_t *loop, job *jobs, int n)
{
    batch b;
    int i;

    memset(&b, 0, sizeof b);
    b.jobs = jobs;
    b.n = n;
    uv_mutex_init(&b.lock);
    current = &b;
    uv_async_init(loop, &b.done, on_done);
    b.done.data = &b;
    for (i = 0; i < n; i++)
        uv_thread_create(&b.th[i], job_thread, &jobs[i]);
    uv_run(loop, UV_RUN_DEFAULT);
    for (i = 0; i < n; i++)
        uv_thread_join(&b.th[i]);
    uv_close((uv_handle_t *)&b.done, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    uv_mutex_destroy(&b.lock);
    current = NULL;
}

static void test_suspend_resume(void **state)
{
    uv_loop_t *loop = uv_default_loop();
    server sv;
    job j[4];
    int i;

    (void)state;
    memset(&sv, 0, sizeof sv);
    memset(j, 0, sizeof j);
    sv.h = wg_httpd_start(loop, "127.0.0.1", 0, 4096, handler, &sv);
    assert_non_null(sv.h);
    for (i = 0; i < 4; i++)
        j[i].port = wg_httpd_port(sv.h);
    /* answered in the reverse order of arrival */
    snprintf(j[0].path, sizeof j[0].path, "/wait/300/first");
    snprintf(j[1].path, sizeof j[1].path, "/wait/100/second");
    snprintf(j[2].path, sizeof j[2].path, "/now/third");
    snprintf(j[3].path, sizeof j[3].path, "/plain");
    run_batch(loop, j, 4);
    assert_int_equal(j[0].res.status, 200);
    assert_string_equal(j[0].res.body, "first");
    assert_int_equal(j[1].res.status, 200);
    assert_string_equal(j[1].res.body, "second");
    assert_int_equal(j[2].res.status, 201);
    assert_string_equal(j[2].res.body, "third");
    assert_int_equal(j[3].res.status, 200);
    assert_string_equal(j[3].res.body, "plain");
    assert_int_equal(wg_httpd_suspended(sv.h), 0);
    assert_int_equal(sv.calls, 4);
    for (i = 0; i < MAX_WAITERS; i++)
        assert_int_equal(sv.w[i].cancelled, 0);

    wg_httpd_stop(sv.h);
    uv_run(loop, UV_RUN_DEFAULT);
}

static void test_stop_while_suspended(void **state)
{
    uv_loop_t *loop = uv_default_loop();
    server sv;
    job j[2];
    int i, cancelled = 0;

    (void)state;
    memset(&sv, 0, sizeof sv);
    memset(j, 0, sizeof j);
    sv.stop_on_suspend = 2;
    sv.h = wg_httpd_start(loop, "127.0.0.1", 0, 4096, handler, &sv);
    assert_non_null(sv.h);
    for (i = 0; i < 2; i++) {
        j[i].port = wg_httpd_port(sv.h);
        snprintf(j[i].path, sizeof j[i].path, "/hold");
    }
    run_batch(loop, j, 2);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_null(sv.h); /* stopped by on_stop_timer */
    for (i = 0; i < MAX_WAITERS; i++)
        cancelled += sv.w[i].cancelled;
    assert_int_equal(cancelled, 2);
    for (i = 0; i < 2; i++) /* 503, or the connection closed before it was written */
        assert_true(j[i].res.status == 503 || j[i].res.status == 0);
    assert_int_equal(uv_loop_close(loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_suspend_resume),
                                       cmocka_unit_test(test_stop_while_suspended)};
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
