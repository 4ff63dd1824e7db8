/* test_gateway_api.c - the gateway in-process on a real socket, driven with libcurl: API key
 * (401/403), session life cycle through a recording backend, validation (bad JSON, wrong
 * types, unknown fields, path-traversal names: each a 4xx and nothing changed), 404/405/413/
 * 501, MAX_CONNECTIONS (429), the memory governor (503 and trims, on fixture cgroup files),
 * sessions restarted from the database after a restart, /health, /ready, /metrics, dashboard,
 * the QR route in each format (the images compared with src/qr's own rendering), pairing by
 * code (the request suspended until the backend reports the code, fails, times out, the
 * session is deleted or the gateway shuts down), events: session.status published on every
 * status change and read back over SSE with the key in ?api_key= (accepted on GET /api/events
 * only), session webhooks set and dropped with their session, webhook metrics, and a shutdown
 * with a stream client connected, and one with a webhook delivery that never finishes (bounded
 * flush, /metrics served meanwhile, the delivery kept for the next start).
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/log.h"
#include "gateway.h"
#include "logging.h"
#include "qr/qr.h"
#include "session.h"
#include "wa/error.h"

#define KEY "test-api-key-0123456789"

/* ---- a backend that records what it is asked ---- */

typedef struct rec {
    int opens, starts, stops, logouts, closes, purges, trims, pairs;
    int report_working; /* start reports WORKING (else STARTING) */
    int report_qr;      /* start reports a QR (SCAN_QR) */
    int fail_start;
    char last_purged[80];
    /* pair_phone: the code (or FAILED with pair_fail) is reported after pair_delay_ms from a
     * timer; pair_delay_ms < 0: never */
    uv_loop_t *loop;
    uv_timer_t pair_timer;
    int pair_timer_init;
    int pair_delay_ms;
    int pair_fail;
    wg_session *pairing;
    char last_phone[32];
} rec;

#define QR_TEXT "https://wa.me/settings/linked_devices#2@ref,bm9pc2U=,aWRlbnRpdHk=,YWR2,1"

static int r_open(void *ctx, wg_session *s, void **h)
{
    ((rec *)ctx)->opens++;
    *h = s;
    return 0;
}
static int r_start(void *ctx, void *h)
{
    rec *r = ctx;
    r->starts++;
    if (r->fail_start)
        return WA_ECONNREFUSED;
    if (r->report_working) {
        wg_session_report_me(h, "15550001111:1@s.whatsapp.net", "123456789:1@lid");
        wg_session_report_status(h, WG_STATUS_WORKING, NULL);
    } else if (r->report_qr) {
        wg_session_report_status(h, WG_STATUS_STARTING, NULL);
        wg_session_report_qr(h, QR_TEXT);
    } else {
        wg_session_report_status(h, WG_STATUS_STARTING, NULL);
    }
    return 0;
}
static void r_stop(void *ctx, void *h)
{
    rec *r = ctx;
    r->stops++;
    if (r->pairing == h) {
        uv_timer_stop(&r->pair_timer);
        r->pairing = NULL;
    }
    wg_session_report_status(h, WG_STATUS_STOPPED, NULL);
}
static int r_logout(void *ctx, void *h)
{
    ((rec *)ctx)->logouts++;
    wg_session_report_status(h, WG_STATUS_LOGGED_OUT, "logged out");
    return 0;
}
static void r_close(void *ctx, void *h)
{
    (void)h;
    ((rec *)ctx)->closes++;
}
static int r_purge(void *ctx, const char *name)
{
    rec *r = ctx;
    r->purges++;
    snprintf(r->last_purged, sizeof r->last_purged, "%s", name);
    return 0;
}
static size_t r_memory(void *ctx, void *h)
{
    (void)ctx;
    (void)h;
    return 1000;
}
static void r_trim(void *ctx)
{
    ((rec *)ctx)->trims++;
}
static void r_pair_timer(uv_timer_t *t)
{
    rec *r = t->data;
    wg_session *s = r->pairing;

    r->pairing = NULL;
    if (!s)
        return;
    if (r->pair_fail)
        wg_session_report_status(s, WG_STATUS_FAILED, "pairing_failed (0): number refused");
    else
        wg_session_report_pair_code(s, "ABCD1234");
}
static int r_pair_phone(void *ctx, void *h, const char *phone)
{
    rec *r = ctx;

    r->pairs++;
    snprintf(r->last_phone, sizeof r->last_phone, "%s", phone);
    if (!strcmp(phone, "99999")) /* the backend's own refusal */
        return WA_EINVAL;
    wg_session_report_status(h, WG_STATUS_STARTING, "requesting a pairing code");
    if (!r->pair_timer_init) {
        uv_timer_init(r->loop, &r->pair_timer);
        r->pair_timer.data = r;
        r->pair_timer_init = 1;
    }
    r->pairing = h;
    if (r->pair_delay_ms >= 0)
        uv_timer_start(&r->pair_timer, r_pair_timer, (uint64_t)r->pair_delay_ms, 0);
    return 0;
}

static const wg_backend_ops rec_ops = {
    "recording",  1,    r_open, r_start, r_stop, r_logout, r_close, r_purge, r_memory, r_trim,
    r_pair_phone, NULL, NULL,   NULL,    NULL,   NULL,     NULL};

/* ---- HTTP client on a thread ---- */

typedef struct result {
    long status;
    char body[65536];
    size_t len;
    char headers[4096];
    size_t hlen;
} result;

typedef struct job {
    int port;
    const char *method, *path, *key, *body, *accept;
    long timeout_ms; /* 0: 10 s; else a timeout is not a failure (streams) */
    size_t body_len;
    result *res;
    uv_async_t *done;
} job;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    result *r = ud;
    size_t len = sz * n;
    if (len > sizeof r->body - 1 - r->len)
        len = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    result *r = ud;
    size_t len = sz * n;
    if (len > sizeof r->headers - 1 - r->hlen)
        len = sizeof r->headers - 1 - r->hlen;
    memcpy(r->headers + r->hlen, p, len);
    r->hlen += len;
    r->headers[r->hlen] = '\0';
    return sz * n;
}

static void run_job(void *arg)
{
    job *j = arg;
    CURL *c = curl_easy_init();
    CURLcode rc;
    char url[512], hdr[256];
    struct curl_slist *hdrs = NULL;

    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", j->port, j->path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, j->method);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    if (j->key) {
        snprintf(hdr, sizeof hdr, "X-Api-Key: %s", j->key);
        hdrs = curl_slist_append(hdrs, hdr);
    }
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (j->accept) {
        snprintf(hdr, sizeof hdr, "Accept: %s", j->accept);
        hdrs = curl_slist_append(hdrs, hdr);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (j->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, j->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)j->body_len);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, j->res);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, j->res);
    if (j->timeout_ms)
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, j->timeout_ms);
    else
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK || (j->timeout_ms && rc == CURLE_OPERATION_TIMEDOUT))
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &j->res->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    uv_async_send(j->done);
}

static void on_done(uv_async_t *a)
{
    uv_stop(a->loop);
}

typedef struct fixture {
    uv_loop_t loop;
    wg_gateway *gw;
    wg_config cfg;
    rec backend;
    char dir[64];
    char cg[96], proc[96];
    int use_fixture_memory;
} fixture;

/* A request with an Accept header and a timeout after which the answer so far counts (for event
 * streams); the loop runs meanwhile. */
static result *http_ex(fixture *f, const char *method, const char *path, const char *key,
                       const char *body, const char *accept, long timeout_ms)
{
    static result res;
    uv_thread_t th;
    uv_async_t done;
    job j = {0};

    memset(&res, 0, sizeof res);
    j.accept = accept;
    j.timeout_ms = timeout_ms;
    uv_async_init(&f->loop, &done, on_done);
    j.port = wg_gateway_port(f->gw);
    j.method = method;
    j.path = path;
    j.key = key;
    j.body = body;
    j.body_len = body ? strlen(body) : 0;
    j.res = &res;
    j.done = &done;
    uv_thread_create(&th, run_job, &j);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_thread_join(&th);
    uv_close((uv_handle_t *)&done, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    return &res;
}

static result *http(fixture *f, const char *method, const char *path, const char *key,
                    const char *body)
{
    return http_ex(f, method, path, key, body, NULL, 0);
}

#define GET(path)        http(f, "GET", path, KEY, NULL)
#define POST(path, body) http(f, "POST", path, KEY, body)

static json_t *body_json(const result *r)
{
    json_t *j = json_loads(r->body, 0, NULL);
    if (!j)
        fail_msg("not JSON: %s", r->body);
    return j;
}

/* status and error code of a JSON error */
static void expect_error(const result *r, long status, const char *code)
{
    json_t *j = body_json(r), *e = json_object_get(j, "error");

    if (r->status != status)
        fail_msg("status %ld, expected %ld: %s", r->status, status, r->body);
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    assert_true(json_is_string(json_object_get(e, "message")));
    json_decref(j);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    FILE *fp;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void gw_start(fixture *f)
{
    wg_gateway_options o = {
        .backend = &rec_ops, .backend_ctx = &f->backend, .pair_code_wait_ms = 300};

    if (f->use_fixture_memory) {
        o.cgroup_root = f->cg;
        o.proc_root = f->proc;
    }
    assert_int_equal(wg_gateway_start(&f->loop, &f->cfg, &o, &f->gw), 0);
    assert_true(wg_gateway_port(f->gw) > 0);
}

static void gw_stop(fixture *f)
{
    wg_gateway_shutdown(f->gw);
    if (f->backend.pair_timer_init) {
        uv_close((uv_handle_t *)&f->backend.pair_timer, NULL);
        f->backend.pair_timer_init = 0;
    }
    uv_run(&f->loop, UV_RUN_DEFAULT);
    wg_gateway_free(f->gw);
    f->gw = NULL;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[256];
    const char *none = NULL;

    (void)none;
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/wg_api_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(wg_config_load(&f->cfg, NULL, NULL, err, sizeof err), 0);
    snprintf(f->cfg.data_dir, sizeof f->cfg.data_dir, "%s/data", f->dir);
    snprintf(f->cfg.host, sizeof f->cfg.host, "127.0.0.1");
    snprintf(f->cfg.api_key, sizeof f->cfg.api_key, "%s", KEY);
    f->cfg.port = 0; /* any free port (not reachable through PORT, which must be 1-65535) */
    f->cfg.max_connections = 3;
    f->cfg.health_interval_ms = 60000;
    /* memory fixture: cgroup v2 files the test rewrites */
    snprintf(f->cg, sizeof f->cg, "%s/cg", f->dir);
    snprintf(f->proc, sizeof f->proc, "%s/proc", f->dir);
    mkdir(f->cg, 0700);
    mkdir(f->proc, 0700);
    write_file(f->cg, "memory.max", "1000000\n");
    write_file(f->cg, "memory.current", "100000\n");
    write_file(f->proc, "meminfo", "MemTotal: 1024 kB\n");
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->backend.loop = &f->loop;
    f->backend.pair_delay_ms = 50;
    wa_log_set_level(WA_LOG_ERROR);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];

    if (f->gw)
        gw_stop(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static size_t session_count(fixture *f)
{
    result *r = GET("/api/sessions");
    json_t *j = body_json(r);
    size_t n = json_array_size(json_object_get(j, "sessions"));

    assert_int_equal(r->status, 200);
    json_decref(j);
    return n;
}

/* ---- tests ---- */

static void test_auth(void **state)
{
    fixture *f = *state;

    gw_start(f);
    expect_error(http(f, "GET", "/api/sessions", NULL, NULL), 401, "unauthorized");
    expect_error(http(f, "GET", "/api/sessions", "", NULL), 401, "unauthorized");
    expect_error(http(f, "GET", "/api/sessions", "wrong-key-0123456789000", NULL), 403,
                 "forbidden");
    expect_error(http(f, "GET", "/api/sessions", KEY "x", NULL), 403, "forbidden");
    /* unknown /api routes do not leak existence before authentication */
    expect_error(http(f, "GET", "/api/nothing", NULL, NULL), 401, "unauthorized");
    expect_error(http(f, "POST", "/api/sessions", "bad-key-0123456789000", "{\"name\":\"a\"}"), 403,
                 "forbidden");
    expect_error(GET("/api/nothing"), 404, "not_found");
    assert_int_equal(session_count(f), 0);
    /* public routes need no key */
    assert_int_equal(http(f, "GET", "/health", NULL, NULL)->status, 200);
    assert_int_equal(http(f, "GET", "/ready", NULL, NULL)->status, 200);
    assert_int_equal(http(f, "GET", "/metrics", NULL, NULL)->status, 200);
}

static void test_session_lifecycle(void **state)
{
    fixture *f = *state;
    result *r;
    json_t *j;

    f->backend.report_working = 1;
    gw_start(f);
    r = POST("/api/sessions", "{\"name\":\"alpha\"}");
    assert_int_equal(r->status, 201);
    assert_non_null(strstr(r->headers, "Location: /api/sessions/alpha\r\n"));
    j = body_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "alpha");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "WORKING");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "me"), "jid")),
                        "15550001111:1@s.whatsapp.net");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "me"), "lid")),
                        "123456789:1@lid");
    assert_true(json_is_true(json_object_get(j, "running")));
    /* the session's own bytes: its record plus the backend's 1000 */
    assert_true(json_integer_value(json_object_get(j, "memory_bytes")) > 1000);
    json_decref(j);
    assert_int_equal(f->backend.opens, 1);
    assert_int_equal(f->backend.starts, 1);

    expect_error(POST("/api/sessions", "{\"name\":\"alpha\"}"), 409, "session_exists");
    expect_error(POST("/api/sessions/alpha/start", NULL), 409, "invalid_state");
    assert_int_equal(f->backend.starts, 1);

    /* sends: the fields are checked first; this backend cannot send */
    expect_error(POST("/api/sessions/alpha/messages", "{\"text\":\"hi\"}"), 400, "invalid_field");
    expect_error(POST("/api/sessions/alpha/messages", "{\"to\":\"abc\",\"text\":\"hi\"}"), 400,
                 "invalid_field");
    expect_error(POST("/api/sessions/alpha/messages", "{\"to\":\"+15550002222\",\"text\":5}"), 400,
                 "invalid_field");
    expect_error(POST("/api/sessions/alpha/messages", "{\"to\":\"+15550002222\",\"text\":\"\"}"),
                 400, "invalid_field");
    expect_error(POST("/api/sessions/alpha/messages",
                      "{\"to\":\"+15550002222\",\"text\":\"hi\",\"mentions\":[1]}"),
                 400, "invalid_field");
    expect_error(POST("/api/sessions/alpha/messages",
                      "{\"to\":\"+15550002222\",\"text\":\"hi\",\"extra\":1}"),
                 400, "invalid_field");
    expect_error(POST("/api/sessions/alpha/messages", "{\"to\":\"+15550002222\",\"text\":\"hi\"}"),
                 501, "not_implemented");
    expect_error(POST("/api/sessions/alpha/messages/revoke", "{\"to\":\"+15550002222\"}"), 400,
                 "invalid_field");
    expect_error(POST("/api/sessions/alpha/read", "{\"chat\":\"+15550002222\",\"ids\":[]}"), 400,
                 "invalid_field");
    expect_error(POST("/api/sessions/alpha/read", "{\"chat\":\"+15550002222\",\"ids\":[\"A\"]}"),
                 501, "not_implemented");
    /* location, contact, presence, contacts, groups: fields first (400 naming them) */
    r = POST("/api/sessions/alpha/messages/location",
             "{\"to\":\"+15550002222\",\"latitude\":\"52\",\"longitude\":13}");
    expect_error(r, 400, "invalid_field");
    assert_non_null(strstr(r->body, "\"field\":\"latitude\""));
    r = POST("/api/sessions/alpha/messages/location",
             "{\"to\":\"+15550002222\",\"latitude\":52,\"longitude\":181}");
    assert_non_null(strstr(r->body, "\"field\":\"longitude\""));
    expect_error(POST("/api/sessions/alpha/messages/location",
                      "{\"to\":\"+15550002222\",\"latitude\":52.5,\"longitude\":13.4}"),
                 501, "not_implemented");
    r = POST("/api/sessions/alpha/messages/contact", "{\"to\":\"+15550002222\",\"name\":\"A\"}");
    assert_non_null(strstr(r->body, "\"field\":\"vcard\""));
    r = POST("/api/sessions/alpha/contacts/check", "{\"phones\":\"+15550002222\"}");
    assert_non_null(strstr(r->body, "\"field\":\"phones\""));
    expect_error(POST("/api/sessions/alpha/contacts/check", "{\"phones\":[\"abc\"]}"), 400,
                 "invalid_field");
    expect_error(POST("/api/sessions/alpha/contacts/check", "{\"phones\":[\"+15550002222\"]}"), 501,
                 "not_implemented");
    r = POST("/api/sessions/alpha/presence", "{\"presence\":\"busy\"}");
    assert_non_null(strstr(r->body, "\"field\":\"presence\""));
    r = POST("/api/sessions/alpha/presence", "{\"to\":\"+15550002222\",\"state\":\"dancing\"}");
    assert_non_null(strstr(r->body, "\"field\":\"state\""));
    expect_error(POST("/api/sessions/alpha/presence", "{\"presence\":\"available\"}"), 501,
                 "not_implemented");
    r = POST("/api/sessions/alpha/groups",
             "{\"subject\":\"\",\"participants\":[\"+15550002222\"]}");
    assert_non_null(strstr(r->body, "\"field\":\"subject\""));
    r = POST("/api/sessions/alpha/groups", "{\"subject\":\"g\",\"participants\":[]}");
    assert_non_null(strstr(r->body, "\"field\":\"participants\""));
    r = GET("/api/sessions/alpha/groups/not-a-group");
    assert_non_null(strstr(r->body, "\"field\":\"jid\""));
    expect_error(GET("/api/sessions/alpha/groups/120363000000000001@g.us"), 501, "not_implemented");
    /* the message store: empty, bad limits */
    r = GET("/api/sessions/alpha/chats");
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "\"chats\":[]"));
    r = GET("/api/sessions/alpha/chats/15550002222@s.whatsapp.net/messages?limit=0");
    assert_non_null(strstr(r->body, "\"field\":\"limit\""));
    r = GET("/api/sessions/alpha/chats/15550002222/messages?before=NOPE");
    expect_error(r, 404, "message_not_found");
    r = GET("/api/sessions/alpha/chats/15550002222/messages?limit=5");
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "\"chat\":\"15550002222@s.whatsapp.net\""));

    r = GET("/api/sessions/alpha");
    assert_int_equal(r->status, 200);
    expect_error(GET("/api/sessions/beta"), 404, "session_not_found");

    r = POST("/api/sessions/alpha/stop", NULL);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "\"status\":\"STOPPED\""));
    assert_non_null(strstr(r->body, "\"running\":false"));
    assert_int_equal(f->backend.stops, 1);
    assert_int_equal(f->backend.closes, 1);
    /* stop is idempotent */
    assert_int_equal(POST("/api/sessions/alpha/stop", NULL)->status, 200);

    r = POST("/api/sessions/alpha/start", NULL);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "\"status\":\"WORKING\""));
    assert_int_equal(f->backend.starts, 2);

    r = POST("/api/sessions/alpha/logout", NULL);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "\"status\":\"LOGGED_OUT\""));
    assert_null(strstr(r->body, "\"me\""));
    assert_int_equal(f->backend.logouts, 1);

    r = http(f, "DELETE", "/api/sessions/alpha", KEY, NULL);
    assert_int_equal(r->status, 200);
    assert_int_equal(f->backend.purges, 1);
    assert_string_equal(f->backend.last_purged, "alpha");
    expect_error(GET("/api/sessions/alpha"), 404, "session_not_found");
    expect_error(http(f, "DELETE", "/api/sessions/alpha", KEY, NULL), 404, "session_not_found");
    assert_int_equal(session_count(f), 0);

    /* a backend that fails to start: nothing is kept */
    f->backend.fail_start = 1;
    expect_error(POST("/api/sessions", "{\"name\":\"broken\"}"), 500, "backend_error");
    assert_int_equal(session_count(f), 0);
}

static void test_validation(void **state)
{
    fixture *f = *state;
    static const char *const bad_names[] = {
        "{\"name\":\"../etc\"}",
        "{\"name\":\"..\"}",
        "{\"name\":\"a/b\"}",
        "{\"name\":\"\"}",
        "{\"name\":\".hidden\"}",
        "{\"name\":\"a b\"}",
        "{\"name\":5}",
        "{\"name\":null}",
        "{\"name\":[\"a\"]}",
        "{}",
        "{\"name\":\"a\\u0000b\"}",
        "{\"name\":\"%2e%2e\"}",
    };
    size_t i;
    result *r;
    json_t *j;

    gw_start(f);
    for (i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        r = POST("/api/sessions", bad_names[i]);
        if (r->status != 400)
            fail_msg("%s: status %ld", bad_names[i], r->status);
        if (strstr(bad_names[i], "u0000"))
            continue; /* refused by the JSON parser itself */
        j = body_json(r);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(j, "error"), "field")), "name");
        json_decref(j);
    }
    expect_error(POST("/api/sessions", "{\"name\":"), 400, "invalid_json");
    expect_error(POST("/api/sessions", "not json"), 400, "invalid_json");
    expect_error(POST("/api/sessions", "[\"name\"]"), 400, "invalid_json");
    expect_error(POST("/api/sessions", ""), 400, "invalid_json");
    expect_error(POST("/api/sessions", "{\"name\":\"a\",\"name\":\"b\"}"), 400, "invalid_json");
    expect_error(POST("/api/sessions", "{\"name\":\"a\",\"extra\":1}"), 400, "invalid_field");
    expect_error(POST("/api/sessions", "{\"name\":\"a\",\"start\":\"yes\"}"), 400, "invalid_field");
    expect_error(POST("/api/sessions", "{\"name\":\"a\",\"webhook\":\"http://x\"}"), 400,
                 "invalid_field");
    expect_error(POST("/api/sessions", "{\"name\":\"a\",\"webhook\":{\"url\":\"ftp://x\"}}"), 400,
                 "invalid_field");
    expect_error(POST("/api/sessions",
                      "{\"name\":\"a\",\"webhook\":{\"url\":\"https://x\",\"events\":[\"nope\"]}}"),
                 400, "invalid_field");
    expect_error(
        POST("/api/sessions", "{\"name\":\"a\",\"webhook\":{\"url\":\"https://x\",\"bogus\":1}}"),
        400, "invalid_field");
    r = POST("/api/sessions", "{\"name\":\"a\",\"proxy\":\"ftp://u:hunter2@h:1\"}");
    expect_error(r, 400, "invalid_field");
    assert_null(strstr(r->body, "hunter2"));
    /* path-traversal and malformed names in the path */
    expect_error(GET("/api/sessions/.."), 400, "invalid_field");
    expect_error(GET("/api/sessions/..%2F..%2Fetc"), 404, "not_found");
    expect_error(GET("/api/sessions/a.b"), 400, "invalid_field");
    expect_error(POST("/api/sessions/%2e%2e/start", NULL), 400, "invalid_field");
    expect_error(http(f, "DELETE", "/api/sessions/..", KEY, NULL), 400, "invalid_field");
    /* nothing was created by any of that */
    assert_int_equal(session_count(f), 0);
    assert_int_equal(f->backend.opens, 0);

    /* a good one with every option: secrets are not echoed */
    r = POST("/api/sessions", "{\"name\":\"full\",\"start\":false,\"proxy\":"
                              "\"socks5://user:hunter2@127.0.0.1:1080\",\"webhook\":{\"url\":"
                              "\"https://127.0.0.1:9/x\",\"events\":[\"message\",\"session."
                              "status\"],\"secret\":\"whsec-abcdef\"}}");
    assert_int_equal(r->status, 201);
    assert_null(strstr(r->body, "hunter2"));
    assert_null(strstr(r->body, "whsec-abcdef"));
    j = body_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "STOPPED");
    assert_string_equal(json_string_value(json_object_get(j, "proxy")),
                        "socks5://user:***@127.0.0.1:1080");
    assert_true(json_is_true(json_object_get(json_object_get(j, "webhook"), "has_secret")));
    json_decref(j);
    assert_int_equal(f->backend.starts, 0);
}

static void test_routes_misc(void **state)
{
    fixture *f = *state;
    result *r;
    static char big[WG_MAX_BODY + 100];

    gw_start(f);
    r = http(f, "PUT", "/api/sessions", KEY, "{}");
    expect_error(r, 405, "method_not_allowed");
    assert_non_null(strstr(r->headers, "Allow: GET, POST\r\n"));
    expect_error(http(f, "POST", "/health", NULL, NULL), 405, "method_not_allowed");
    expect_error(GET("/api/sessions/x/qr?format=raw"), 404, "session_not_found");
    expect_error(POST("/api/sessions/x/messages/location", "{}"), 404, "session_not_found");
    expect_error(GET("/api/sessions/x/chats"), 404, "session_not_found");
    expect_error(POST("/api/sessions/x/groups", "{}"), 404, "session_not_found");
    expect_error(POST("/api/sessions/x/messages", "{}"), 404, "session_not_found");
    expect_error(http(f, "GET", "/nothing", NULL, NULL), 404, "not_found");
    expect_error(http(f, "GET", "/api/sessions/", KEY, NULL), 404, "not_found");
    memset(big, 'a', sizeof big - 1);
    expect_error(POST("/api/sessions", big), 413, "body_too_large");
    assert_int_equal(session_count(f), 0);

    /* dashboard */
    r = http(f, "GET", "/", NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->headers, "Content-Type: text/html"));
    assert_non_null(strstr(r->headers, "Content-Security-Policy: default-src 'self'"));
    assert_non_null(strstr(r->body, "<script src=\"/dashboard/app.js\""));
    r = http(f, "GET", "/dashboard/app.js", NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->headers, "Content-Type: text/javascript"));
    assert_int_equal(http(f, "GET", "/dashboard/style.css", NULL, NULL)->status, 200);
    assert_int_equal(http(f, "GET", "/dashboard/index.html", NULL, NULL)->status, 404);
    assert_int_equal(http(f, "GET", "/dashboard/..", NULL, NULL)->status, 404);
    assert_int_equal(http(f, "GET", "/dashboard/nope.js", NULL, NULL)->status, 404);
}

static void test_max_connections(void **state)
{
    fixture *f = *state;

    f->cfg.max_connections = 2;
    gw_start(f);
    assert_int_equal(POST("/api/sessions", "{\"name\":\"a\"}")->status, 201);
    assert_int_equal(POST("/api/sessions", "{\"name\":\"b\"}")->status, 201);
    expect_error(POST("/api/sessions", "{\"name\":\"c\"}"), 429, "max_connections");
    /* a stopped session does not count, and cannot be started while full */
    assert_int_equal(POST("/api/sessions", "{\"name\":\"c\",\"start\":false}")->status, 201);
    expect_error(POST("/api/sessions/c/start", NULL), 429, "max_connections");
    assert_int_equal(POST("/api/sessions/a/stop", NULL)->status, 200);
    assert_int_equal(POST("/api/sessions/c/start", NULL)->status, 200);
    assert_int_equal(session_count(f), 3);
}

static void test_memory_pressure(void **state)
{
    fixture *f = *state;
    result *r;
    json_t *j;

    f->use_fixture_memory = 1;
    f->cfg.memory_threshold = 0.5;
    gw_start(f);
    assert_int_equal(POST("/api/sessions", "{\"name\":\"a\"}")->status, 201);
    write_file(f->cg, "memory.current", "900000\n");
    wg_gateway_check(f->gw);
    assert_int_equal(f->backend.trims, 1);
    r = POST("/api/sessions", "{\"name\":\"b\"}");
    expect_error(r, 503, "memory_pressure");
    assert_non_null(strstr(r->headers, "Retry-After: 60\r\n"));
    expect_error(POST("/api/sessions", "{\"name\":\"b\",\"start\":false}"), 503, "memory_pressure");
    r = http(f, "GET", "/ready", NULL, NULL);
    assert_int_equal(r->status, 200);
    j = body_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "degraded");
    assert_true(json_is_false(
        json_object_get(json_object_get(json_object_get(j, "checks"), "memory"), "ok")));
    json_decref(j);
    r = http(f, "GET", "/metrics", NULL, NULL);
    assert_non_null(strstr(r->body, "\nwagate_memory_pressure 1\n"));
    assert_non_null(strstr(r->body, "\nwagate_memory_limit_bytes 1000000\n"));
    assert_non_null(strstr(r->body, "\nwagate_memory_trims_total 1\n"));
    /* existing sessions keep working */
    assert_int_equal(POST("/api/sessions/a/stop", NULL)->status, 200);
    /* back below the threshold (and its hysteresis): accepted again */
    write_file(f->cg, "memory.current", "200000\n");
    wg_gateway_check(f->gw);
    assert_int_equal(POST("/api/sessions", "{\"name\":\"b\"}")->status, 201);
    assert_int_equal(f->backend.trims, 1);
}

static void test_memory_debug(void **state)
{
    fixture *f = *state;
    char path[160], buf[4096];
    FILE *log;
    size_t n;

    f->use_fixture_memory = 1;
    f->cfg.memory_debug = 1;
    gw_start(f);
    assert_int_equal(POST("/api/sessions", "{\"name\":\"dbg\"}")->status, 201);
    snprintf(path, sizeof path, "%s/log", f->dir);
    log = fopen(path, "w+");
    assert_non_null(log);
    wg_logging_init(WG_LOG_FORMAT_TEXT, WA_LOG_INFO, log);
    wg_gateway_check(f->gw);
    wg_logging_cleanup();
    wa_log_set_level(WA_LOG_ERROR);
    rewind(log);
    n = fread(buf, 1, sizeof buf - 1, log);
    buf[n] = '\0';
    fclose(log);
    /* one line per session with its own bytes (record + the backend's 1000), then totals */
    assert_non_null(strstr(buf, "memory: session dbg status=WORKING bytes=") ||
                    strstr(buf, "memory: session dbg status=STARTING bytes="));
    assert_non_null(strstr(buf, "used=100000 limit=1000000 (cgroup)"));
    assert_non_null(strstr(buf, "sessions=1"));
    assert_null(strstr(buf, KEY));
}

static void test_restart_restores_sessions(void **state)
{
    fixture *f = *state;
    result *r;

    f->backend.report_working = 1;
    gw_start(f);
    assert_int_equal(POST("/api/sessions", "{\"name\":\"up\"}")->status, 201);
    assert_int_equal(POST("/api/sessions", "{\"name\":\"down\",\"start\":false}")->status, 201);
    assert_int_equal(POST("/api/sessions", "{\"name\":\"gone\"}")->status, 201);
    assert_int_equal(http(f, "DELETE", "/api/sessions/gone", KEY, NULL)->status, 200);
    gw_stop(f);
    /* shutdown stops sessions without changing what should run at the next boot */
    assert_int_equal(f->backend.stops, 2);

    memset(&f->backend, 0, sizeof f->backend);
    f->backend.loop = &f->loop;
    f->backend.report_working = 1;
    gw_start(f);
    assert_int_equal(f->backend.starts, 1);
    r = GET("/api/sessions/up");
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "\"status\":\"WORKING\""));
    r = GET("/api/sessions/down");
    assert_non_null(strstr(r->body, "\"status\":\"STOPPED\""));
    expect_error(GET("/api/sessions/gone"), 404, "session_not_found");
    assert_int_equal(session_count(f), 2);
}

static void test_health_ready_metrics(void **state)
{
    fixture *f = *state;
    result *r;
    json_t *j, *checks;

    f->backend.report_working = 1;
    gw_start(f);
    assert_int_equal(POST("/api/sessions", "{\"name\":\"w1\"}")->status, 201);
    f->backend.report_working = 0;
    assert_int_equal(POST("/api/sessions", "{\"name\":\"s2\"}")->status, 201);
    wg_gateway_check(f->gw);

    r = http(f, "GET", "/health", NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body, "{\"status\":\"ok\"}");

    r = http(f, "GET", "/ready", NULL, NULL);
    assert_int_equal(r->status, 200);
    j = body_json(r);
    /* one of two expected sessions is connected */
    assert_string_equal(json_string_value(json_object_get(j, "status")), "degraded");
    assert_string_equal(json_string_value(json_object_get(j, "backend")), "recording");
    checks = json_object_get(j, "checks");
    assert_true(json_is_true(json_object_get(json_object_get(checks, "store"), "ok")));
    assert_true(json_is_true(json_object_get(json_object_get(checks, "event_loop"), "ok")));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(checks, "sessions"), "expected")), 2);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(checks, "sessions"), "connected")), 1);
    json_decref(j);

    r = http(f, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->headers, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(r->body, "\nwagate_sessions{status=\"WORKING\"} 1\n"));
    assert_non_null(strstr(r->body, "\nwagate_sessions{status=\"STARTING\"} 1\n"));
    assert_non_null(strstr(r->body, "\nwagate_sessions{status=\"FAILED\"} 0\n"));
    assert_non_null(strstr(r->body, "wagate_http_request_duration_seconds_count{route=\"/api/"
                                    "sessions\",method=\"POST\",status=\"201\"} 2\n"));
    assert_non_null(strstr(r->body, "wagate_http_request_duration_seconds_count{route=\"/"
                                    "ready\",method=\"GET\",status=\"200\"} 1\n"));
    assert_non_null(
        strstr(r->body, "\nwagate_whatsapp_disconnects_total{reason=\"replaced\"} 0\n"));
    assert_non_null(strstr(r->body, "\nwagate_webhook_deliveries_total{result=\"failure\"} 0\n"));
    assert_non_null(strstr(r->body, "\nwagate_backups_total{result=\"success\"} 0\n"));
    assert_non_null(strstr(r->body, "\nwagate_health_ok 1\n"));
    assert_non_null(strstr(r->body, "\nwagate_store_writable 1\n"));
    assert_non_null(strstr(r->body, "\nprocess_start_time_seconds "));
    assert_non_null(strstr(r->body, "\nwagate_event_loop_lag_seconds "));
    /* raw paths never become label values */
    assert_int_equal(GET("/api/sessions/w1")->status, 200);
    r = http(f, "GET", "/metrics", NULL, NULL);
    assert_null(strstr(r->body, "route=\"/api/sessions/w1\""));
    assert_non_null(strstr(r->body, "route=\"/api/sessions/{name}\""));
}

static void test_generated_key(void **state)
{
    fixture *f = *state;
    char path[160], key[WG_API_KEY_MAX + 1];
    FILE *fp;

    f->cfg.api_key[0] = '\0';
    gw_start(f);
    assert_int_equal(f->gw->api_key_generated, 1);
    snprintf(path, sizeof path, "%s/data/%s", f->dir, WG_API_KEY_FILE);
    fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(key, sizeof key, fp));
    fclose(fp);
    key[strcspn(key, "\n")] = '\0';
    assert_int_equal(http(f, "GET", "/api/sessions", key, NULL)->status, 200);
    expect_error(GET("/api/sessions"), 403, "forbidden");
    gw_stop(f);
    /* the same key after a restart, and not announced as new */
    gw_start(f);
    assert_int_equal(f->gw->api_key_generated, 0);
    assert_int_equal(http(f, "GET", "/api/sessions", key, NULL)->status, 200);
}

static void test_qr(void **state)
{
    fixture *f = *state;
    result *r;
    json_t *j;
    uint8_t *png;
    char *b64, *term;
    size_t png_len, term_len, i;

    f->backend.report_qr = 1;
    gw_start(f);
    assert_int_equal(POST("/api/sessions", "{\"name\":\"q\"}")->status, 201);
    r = GET("/api/sessions/q/qr?format=raw");
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->headers, "Content-Type: text/plain"));
    assert_string_equal(r->body, QR_TEXT);
    r = GET("/api/sessions/q/qr?format=json");
    assert_int_equal(r->status, 200);
    j = body_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "qr")), QR_TEXT);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "SCAN_QR");
    json_decref(j);
    /* images: the same bytes src/qr makes of the text */
    assert_int_equal(wg_qr_png(QR_TEXT, WG_QR_DEFAULT_SCALE, WG_QR_DEFAULT_MARGIN, &png, &png_len),
                     0);
    assert_int_equal(wg_qr_png_base64(QR_TEXT, WG_QR_DEFAULT_SCALE, WG_QR_DEFAULT_MARGIN, &b64), 0);
    assert_int_equal(wg_qr_terminal(QR_TEXT, WG_QR_INK_LIGHT, &term, &term_len), 0);
    j = body_json(GET("/api/sessions/q/qr?format=json"));
    assert_string_equal(json_string_value(json_object_get(j, "png_base64")), b64);
    json_decref(j);
    for (i = 0; i < 2; i++) {
        r = GET(i ? "/api/sessions/q/qr?format=png" : "/api/sessions/q/qr"); /* png: the default */
        assert_int_equal(r->status, 200);
        assert_non_null(strstr(r->headers, "Content-Type: image/png\r\n"));
        assert_int_equal(r->len, png_len);
        assert_memory_equal(r->body, png, png_len);
        assert_memory_equal(r->body, "\x89PNG\r\n\x1a\n", 8);
    }
    r = GET("/api/sessions/q/qr?format=terminal");
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->headers, "Content-Type: text/plain; charset=utf-8\r\n"));
    assert_int_equal(r->len, term_len);
    assert_memory_equal(r->body, term, term_len);
    assert_non_null(strstr(r->body, "\xe2\x96\x88")); /* U+2588 full block */
    wa_free(png);
    wa_free(b64);
    wa_free(term);
    r = GET("/api/sessions/q/qr?format=svg");
    expect_error(r, 400, "invalid_field");
    assert_non_null(strstr(r->body, "\"field\":\"format\""));
    expect_error(GET("/api/sessions/nope/qr?format=raw"), 404, "session_not_found");
    expect_error(GET("/api/sessions/..%2Fq/qr?format=raw"), 404, "not_found");
    /* stopped: no QR, and the text is gone */
    assert_int_equal(POST("/api/sessions/q/stop", NULL)->status, 200);
    r = GET("/api/sessions/q/qr?format=raw");
    expect_error(r, 409, "qr_unavailable");
    assert_non_null(strstr(r->body, "start it first"));
    /* paired: no QR */
    f->backend.report_qr = 0;
    f->backend.report_working = 1;
    assert_int_equal(POST("/api/sessions", "{\"name\":\"w\"}")->status, 201);
    expect_error(GET("/api/sessions/w/qr?format=json"), 409, "already_paired");
}

static void on_delete_timer(uv_timer_t *t)
{
    fixture *f = t->data;

    assert_int_equal(wg_sessions_delete(f->gw->sessions, wg_sessions_find(f->gw->sessions, "p")),
                     0);
    uv_close((uv_handle_t *)t, NULL);
}

static void on_shutdown_timer(uv_timer_t *t)
{
    fixture *f = t->data;

    wg_gateway_shutdown(f->gw);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_pair_code(void **state)
{
    fixture *f = *state;
    uv_timer_t t;
    result *r;
    json_t *j;

    gw_start(f);
    assert_int_equal(POST("/api/sessions", "{\"name\":\"p\",\"start\":false}")->status, 201);

    /* bad input: each a 400 naming the field, nothing started */
    expect_error(POST("/api/sessions/p/pair-code", "{}"), 400, "invalid_field");
    expect_error(POST("/api/sessions/p/pair-code", "{\"phone\":15551234567}"), 400,
                 "invalid_field");
    expect_error(POST("/api/sessions/p/pair-code", "{\"phone\":\"555-1234\"}"), 400,
                 "invalid_field");
    expect_error(POST("/api/sessions/p/pair-code", "{\"phone\":\"0155512345\"}"), 400,
                 "invalid_field");
    expect_error(POST("/api/sessions/p/pair-code", "{\"phone\":\"1234\"}"), 400, "invalid_field");
    expect_error(POST("/api/sessions/p/pair-code", "{\"phone\":\"123456789012345678901\"}"), 400,
                 "invalid_field");
    expect_error(POST("/api/sessions/p/pair-code", "{\"phone\":\"15551234567\",\"x\":1}"), 400,
                 "invalid_field");
    expect_error(POST("/api/sessions/p/pair-code", "{\"phone\":"), 400, "invalid_json");
    expect_error(POST("/api/sessions/nope/pair-code", "{\"phone\":\"15551234567\"}"), 404,
                 "session_not_found");
    assert_int_equal(f->backend.pairs, 0);
    /* refused by the backend: the session keeps its stopped state */
    expect_error(POST("/api/sessions/p/pair-code", "{\"phone\":\"99999\"}"), 400, "invalid_field");
    assert_non_null(strstr(GET("/api/sessions/p")->body, "\"running\":false"));

    /* the request waits for the code the backend reports 50 ms later */
    r = POST("/api/sessions/p/pair-code", "{\"phone\":\"+15551234567\"}");
    assert_int_equal(r->status, 200);
    j = body_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "code")), "ABCD1234");
    json_decref(j);
    assert_string_equal(f->backend.last_phone, "15551234567");
    r = GET("/api/sessions/p");
    assert_non_null(strstr(r->body, "\"status\":\"PAIRING_CODE\""));
    assert_non_null(strstr(r->body, "\"pair_code\":\"ABCD1234\""));
    assert_non_null(strstr(r->body, "\"running\":true"));
    assert_int_equal(wg_httpd_suspended(f->gw->http), 0);

    /* the backend fails: 502 with its reason */
    f->backend.pair_fail = 1;
    r = POST("/api/sessions/p/pair-code", "{\"phone\":\"15551234567\"}");
    expect_error(r, 502, "pairing_failed");
    assert_non_null(strstr(r->body, "number refused"));
    f->backend.pair_fail = 0;

    /* no code in time: 504 (the gateway waits 300 ms in this test) */
    f->backend.pair_delay_ms = -1;
    expect_error(POST("/api/sessions/p/pair-code", "{\"phone\":\"15551234567\"}"), 504, "timeout");
    assert_int_equal(wg_httpd_suspended(f->gw->http), 0);

    /* the session is deleted while the request waits: 404 */
    uv_timer_init(&f->loop, &t);
    t.data = f;
    uv_timer_start(&t, on_delete_timer, 50, 0);
    expect_error(POST("/api/sessions/p/pair-code", "{\"phone\":\"15551234567\"}"), 404,
                 "session_not_found");
    expect_error(GET("/api/sessions/p"), 404, "session_not_found");

    /* a paired session: 409 */
    f->backend.report_working = 1;
    assert_int_equal(POST("/api/sessions", "{\"name\":\"w\"}")->status, 201);
    expect_error(POST("/api/sessions/w/pair-code", "{\"phone\":\"15551234567\"}"), 409,
                 "already_paired");

    /* shutdown while a request waits: it is answered (503) or closed, nothing leaks */
    f->backend.report_working = 0;
    assert_int_equal(POST("/api/sessions", "{\"name\":\"p\",\"start\":false}")->status, 201);
    uv_timer_init(&f->loop, &t);
    t.data = f;
    uv_timer_start(&t, on_shutdown_timer, 50, 0);
    r = POST("/api/sessions/p/pair-code", "{\"phone\":\"15551234567\"}");
    assert_true(r->status == 503 || r->status == 0);
}

/* ---- events ---- */

#define SSE       "text/event-stream"
#define SINCE_ALL "00000000000000000000000000" /* replay from the first stored event */

static void on_run_for(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* Run the loop for ms milliseconds (webhook attempts, timers). */
static void run_for(fixture *f, unsigned ms)
{
    uv_timer_t t;

    uv_timer_init(&f->loop, &t);
    uv_timer_start(&t, on_run_for, ms, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;

    while ((hay = strstr(hay, needle))) {
        n++;
        hay += strlen(needle);
    }
    return n;
}

/* The value of a metric sample line "name value" (-1 if absent). */
static double metric(const char *text, const char *series)
{
    char needle[256];
    const char *p;

    snprintf(needle, sizeof needle, "\n%s ", series);
    p = strstr(text, needle);
    return p ? strtod(p + strlen(needle), NULL) : -1;
}

static void test_events(void **state)
{
    fixture *f = *state;
    wg_events_stats st;
    result *r;

    f->backend.report_working = 1;
    gw_start(f);
    assert_non_null(f->gw->events);
    /* STOPPED -> WORKING (with me), WORKING -> STOPPED: one session.status event each */
    assert_int_equal(POST("/api/sessions", "{\"name\":\"e1\"}")->status, 201);
    assert_int_equal(POST("/api/sessions/e1/stop", NULL)->status, 200);
    wg_events_get_stats(f->gw->events, &st);
    assert_int_equal(st.published, 2);

    /* SSE with the key as ?api_key= (what a browser's EventSource does), replayed from the
     * outbox */
    r = http_ex(f, "GET", "/api/events?since=" SINCE_ALL "&api_key=" KEY, NULL, NULL, SSE, 700);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->headers, "Content-Type: text/event-stream"));
    assert_int_equal(count_of(r->body, "\"event\":\"session.status\""), 2);
    assert_int_equal(count_of(r->body, "\"session\":\"e1\""), 2);
    assert_non_null(strstr(r->body, "\"status\":\"WORKING\""));
    assert_non_null(strstr(r->body, "\"me\":{\"jid\":\"15550001111:1@s.whatsapp.net\",\"lid\":"
                                    "\"123456789:1@lid\"}"));
    assert_non_null(strstr(r->body, "\"status\":\"STOPPED\""));
    /* the WORKING event comes first */
    assert_true(strstr(r->body, "\"status\":\"WORKING\"") <
                strstr(r->body, "\"status\":\"STOPPED\""));
    /* filters pass through: no event of another session */
    r = http_ex(f, "GET", "/api/events?session=other&since=" SINCE_ALL, KEY, NULL, SSE, 400);
    assert_int_equal(r->status, 200);
    assert_null(strstr(r->body, "session.status"));

    /* the query key: wrong, missing, or anywhere else than GET /api/events */
    expect_error(http_ex(f, "GET", "/api/events?api_key=wrong-key-0123456789", NULL, NULL, SSE, 0),
                 403, "forbidden");
    expect_error(http_ex(f, "GET", "/api/events?api_key=", NULL, NULL, SSE, 0), 401,
                 "unauthorized");
    expect_error(http_ex(f, "GET", "/api/events", NULL, NULL, SSE, 0), 401, "unauthorized");
    expect_error(http(f, "GET", "/api/sessions?api_key=" KEY, NULL, NULL), 401, "unauthorized");
    expect_error(http(f, "POST", "/api/events?api_key=" KEY, NULL, "{}"), 401, "unauthorized");
    expect_error(http(f, "POST", "/api/events", KEY, "{}"), 405, "method_not_allowed");
    /* neither a WebSocket upgrade nor Accept: text/event-stream */
    expect_error(GET("/api/events"), 406, "not_acceptable");
    expect_error(http_ex(f, "GET", "/api/events?events=nope", KEY, NULL, SSE, 0), 400,
                 "invalid_field");

    /* a session webhook: its deliveries wait in the outbox while nothing listens (port 1) */
    r = POST("/api/sessions", "{\"name\":\"h\",\"webhook\":{\"url\":\"http://127.0.0.1:1/hook\","
                              "\"secret\":\"s3cret\",\"events\":[\"session.status\"]}}");
    assert_int_equal(r->status, 201);
    run_for(f, 300);
    wg_events_get_stats(f->gw->events, &st);
    assert_int_equal(st.published, 3);
    assert_int_equal(st.pending, 1);
    assert_true(st.attempts >= 1);
    assert_int_equal(st.delivered, 0);
    /* every attempt is counted in the metrics */
    r = http(f, "GET", "/metrics", NULL, NULL);
    assert_true(metric(r->body, "wagate_webhook_deliveries_total{result=\"failure\"}") >= 1);
    assert_true(metric(r->body, "wagate_webhook_deliveries_total{result=\"success\"}") == 0);
    assert_true(metric(r->body, "wagate_webhook_delivery_duration_seconds_count") >= 1);
    assert_true(metric(r->body, "wagate_webhook_events_failed_total") == 0);
    /* ... and they go with the session */
    assert_int_equal(http(f, "DELETE", "/api/sessions/h", KEY, NULL)->status, 200);
    wg_events_get_stats(f->gw->events, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(wg_events_remove_webhook(f->gw->events, "h", 0), WA_ENOTFOUND);

    /* refused creations leave no target behind: an existing name, a backend failure */
    expect_error(
        POST("/api/sessions", "{\"name\":\"e1\",\"webhook\":{\"url\":\"http://127.0.0.1:1/x\"}}"),
        409, "session_exists");
    assert_int_equal(wg_events_remove_webhook(f->gw->events, "e1", 0), WA_ENOTFOUND);
    f->backend.fail_start = 1;
    expect_error(POST("/api/sessions",
                      "{\"name\":\"broken\",\"webhook\":{\"url\":\"http://127.0.0.1:1/x\"}}"),
                 500, "backend_error");
    assert_int_equal(wg_events_remove_webhook(f->gw->events, "broken", 0), WA_ENOTFOUND);
    f->backend.fail_start = 0;

    /* a restart sets the targets again: the stored sessions' and WEBHOOK_URL's */
    assert_int_equal(
        POST("/api/sessions",
             "{\"name\":\"k\",\"start\":false,\"webhook\":{\"url\":\"http://127.0.0.1:1/k\"}}")
            ->status,
        201);
    gw_stop(f);
    snprintf(f->cfg.webhook_url, sizeof f->cfg.webhook_url, "http://127.0.0.1:1/global");
    gw_start(f);
    assert_int_equal(wg_events_remove_webhook(f->gw->events, "k", 0), 0);
    assert_int_equal(wg_events_remove_webhook(f->gw->events, NULL, 0), 0);
    assert_int_equal(wg_events_remove_webhook(f->gw->events, "e1", 0), WA_ENOTFOUND);
    /* the events of before the restart are still there to replay */
    r = http_ex(f, "GET", "/api/events?session=e1&since=" SINCE_ALL, KEY, NULL, SSE, 400);
    assert_int_equal(count_of(r->body, "\"event\":\"session.status\""), 2);
}

/* SIGTERM with a stream client connected: the hub ends the stream before the HTTP server stops
 * (libmicrohttpd must not stop with a suspended connection), well within the deadline. */
static void test_shutdown_with_stream(void **state)
{
    fixture *f = *state;
    uv_timer_t t;
    uint64_t t0;
    result *r;

    gw_start(f);
    uv_timer_init(&f->loop, &t);
    t.data = f;
    uv_timer_start(&t, on_shutdown_timer, 200, 0);
    t0 = uv_hrtime();
    r = http_ex(f, "GET", "/api/events", KEY, NULL, SSE, 5000);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, ": wagate event stream"));
    /* ended by the server, not by the client's 5 s timeout */
    assert_true(uv_hrtime() - t0 < 3000000000ull);
    assert_true(f->gw->shutting_down);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_null(f->gw->events);
    assert_null(f->gw->http);
}

/* SIGTERM with a webhook delivery in flight to a receiver that never answers: the flush waits
 * WG_SHUTDOWN_FLUSH_MS at most, the HTTP server keeps serving /health and /metrics meanwhile
 * (503 on the API), and the delivery stays in the outbox for the next start. */
static void test_shutdown_flush(void **state)
{
    fixture *f = *state;
    struct sockaddr_in sa;
    socklen_t salen = sizeof sa;
    wg_events_stats st;
    uint64_t t0, ms;
    result *r;
    int lfd;

    /* a listener that never accepts: connections complete in the backlog, no answer comes */
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 16), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &salen), 0);
    snprintf(f->cfg.webhook_url, sizeof f->cfg.webhook_url, "http://127.0.0.1:%d/hook",
             ntohs(sa.sin_port));

    f->backend.report_working = 1;
    gw_start(f);
    assert_int_equal(POST("/api/sessions", "{\"name\":\"w\"}")->status, 201);
    run_for(f, 100);
    wg_events_get_stats(f->gw->events, &st);
    assert_int_equal(st.pending, 1);
    assert_int_equal(st.inflight, 1);

    t0 = uv_hrtime();
    wg_gateway_shutdown(f->gw);
    r = http(f, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "\nwagate_health_ok "));
    assert_int_equal(http(f, "GET", "/health", NULL, NULL)->status, 200);
    expect_error(GET("/api/sessions"), 503, "shutting_down");
    uv_run(&f->loop, UV_RUN_DEFAULT);
    ms = (uv_hrtime() - t0) / 1000000;
    assert_null(f->gw->http);
    assert_true(ms >= WG_SHUTDOWN_FLUSH_MS - 100 && ms < WG_SHUTDOWN_FLUSH_MS + 2000);
    wg_gateway_free(f->gw);
    f->gw = NULL;

    /* the delivery waited in the outbox: it and the new WORKING of the restarted session */
    gw_start(f);
    wg_events_get_stats(f->gw->events, &st);
    assert_int_equal(st.published, 1);
    assert_int_equal(st.pending, 2);
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes_misc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_pressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_debug, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_restores_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_ready_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generated_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pair_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_with_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_flush, setup, teardown),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
