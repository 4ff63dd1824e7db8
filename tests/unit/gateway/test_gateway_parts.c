/* test_gateway_parts.c - wagate's building blocks in isolation: log line format (JSON and
 * text, escaping, secret redaction), Prometheus rendering, route matching, session names, the
 * session database, the memory governor on fixture files, the API key file.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "api.h"
#include "core/log.h"
#include "db.h"
#include "gateway.h"
#include "logging.h"
#include "memory.h"
#include "metrics.h"
#include "session.h"
#include "strbuf.h"
#include "wa/error.h"

static char tmpdir[64];

static void mktmp(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/wg_parts_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
}

static void rmtmp(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- logging ---- */

static void test_log_json(void **state)
{
    char line[512];
    json_t *j;
    json_error_t e;
    size_t n;

    (void)state;
    /* 2021-01-01T00:00:00.250Z */
    n = wg_logging_format(line, sizeof line, WG_LOG_FORMAT_JSON, WA_LOG_WARN, "api",
                          "say \"hi\"\n\tback\\slash \x01", 1609459200.25);
    assert_int_equal(n, strlen(line));
    assert_null(strchr(line, '\n'));
    j = json_loads(line, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "severity")), "WARNING");
    assert_string_equal(json_string_value(json_object_get(j, "component")), "api");
    assert_string_equal(json_string_value(json_object_get(j, "time")), "2021-01-01T00:00:00.250Z");
    assert_string_equal(json_string_value(json_object_get(j, "message")),
                        "say \"hi\"\n\tback\\slash \x01");
    json_decref(j);

    /* every level maps to a Cloud Logging severity */
    wg_logging_format(line, sizeof line, WG_LOG_FORMAT_JSON, WA_LOG_TRACE, NULL, "x", 0);
    assert_non_null(strstr(line, "\"severity\":\"DEBUG\""));
    wg_logging_format(line, sizeof line, WG_LOG_FORMAT_JSON, WA_LOG_INFO, NULL, "x", 0);
    assert_non_null(strstr(line, "\"severity\":\"INFO\""));
    wg_logging_format(line, sizeof line, WG_LOG_FORMAT_JSON, WA_LOG_ERROR, NULL, "x", 0);
    assert_non_null(strstr(line, "\"severity\":\"ERROR\""));
}

static void test_log_json_truncated_stays_valid(void **state)
{
    char line[128], msg[1000];
    json_t *j;

    (void)state;
    memset(msg, '"', sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    wg_logging_format(line, sizeof line, WG_LOG_FORMAT_JSON, WA_LOG_INFO, "c", msg, 0);
    j = json_loads(line, 0, NULL);
    assert_non_null(j);
    json_decref(j);
}

static void test_log_text(void **state)
{
    char line[256];

    (void)state;
    wg_logging_format(line, sizeof line, WG_LOG_FORMAT_TEXT, WA_LOG_INFO, "db", "a\nb", 0);
    assert_string_equal(line, "1970-01-01T00:00:00.000Z info db: a b");
}

static void test_log_redaction(void **state)
{
    char path[128], buf[1024];
    FILE *f;
    size_t n;

    (void)state;
    mktmp();
    snprintf(path, sizeof path, "%s/log", tmpdir);
    f = fopen(path, "w+");
    assert_non_null(f);
    wg_logging_init(WG_LOG_FORMAT_JSON, WA_LOG_INFO, f);
    assert_int_equal(wg_logging_add_secret("SuperSecretKey123"), 0);
    assert_int_equal(wg_logging_add_secret("abc"), 0); /* too short: ignored */
    wa_log_info("test", "key=%s and again SuperSecretKey123; abc stays", "SuperSecretKey123");
    wa_log_debug("test", "below the level: not written");
    rewind(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    wg_logging_cleanup();
    assert_null(strstr(buf, "SuperSecretKey123"));
    assert_non_null(strstr(buf, "key=[redacted] and again [redacted]; abc stays"));
    assert_null(strstr(buf, "below the level"));
    /* exactly one line */
    assert_non_null(strchr(buf, '\n'));
    assert_null(strchr(strchr(buf, '\n') + 1, '\n'));
    rmtmp();
}

/* ---- metrics ---- */

static void test_metrics_render(void **state)
{
    static const char *const labels[] = {"route", NULL};
    static const double buckets[] = {0.1, 1};
    wg_metrics *m;
    wg_metric *c, *g, *h;
    char *text;
    size_t len;
    const char *expected =
        "# HELP t_requests_total Requests with a \\\\ and\\na newline.\n"
        "# TYPE t_requests_total counter\n"
        "t_requests_total{route=\"/a\\\"b\\\\c\\nd\"} 3\n"
        "# HELP t_temp_celsius A gauge.\n"
        "# TYPE t_temp_celsius gauge\n"
        "t_temp_celsius 0.5\n"
        "# HELP t_latency_seconds A histogram.\n"
        "# TYPE t_latency_seconds histogram\n"
        "t_latency_seconds_bucket{route=\"x\",le=\"0.1\"} 1\n"
        "t_latency_seconds_bucket{route=\"x\",le=\"1\"} 2\n"
        "t_latency_seconds_bucket{route=\"x\",le=\"+Inf\"} 3\n"
        "t_latency_seconds_sum{route=\"x\"} 5.5499999999999998\n"
        "t_latency_seconds_count{route=\"x\"} 3\n"
        "# HELP wagate_metric_series_dropped_total Label combinations not recorded because a "
        "family reached its series cap.\n"
        "# TYPE wagate_metric_series_dropped_total counter\n"
        "wagate_metric_series_dropped_total 0\n";

    (void)state;
    assert_int_equal(wg_metrics_new(&m), 0);
    c = wg_metrics_add(m, WG_METRIC_COUNTER, "t_requests_total",
                       "Requests with a \\ and\na newline.", labels, NULL, 0);
    g = wg_metrics_add(m, WG_METRIC_GAUGE, "t_temp_celsius", "A gauge.", NULL, NULL, 0);
    h = wg_metrics_add(m, WG_METRIC_HISTOGRAM, "t_latency_seconds", "A histogram.", labels, buckets,
                       2);
    assert_non_null(c);
    assert_non_null(g);
    assert_non_null(h);
    wg_metric_add(wg_metric_get1(c, "/a\"b\\c\nd"), 2);
    wg_metric_inc(wg_metric_get1(c, "/a\"b\\c\nd"));
    wg_metric_set(wg_metric_get0(g), 0.5);
    wg_metric_observe(wg_metric_get1(h, "x"), 0.05);
    wg_metric_observe(wg_metric_get1(h, "x"), 0.5);
    wg_metric_observe(wg_metric_get1(h, "x"), 5);
    assert_int_equal(wg_metrics_render(m, &text, &len), 0);
    assert_string_equal(text, expected);
    assert_int_equal(len, strlen(expected));
    free(text);
    /* bad registrations */
    assert_null(wg_metrics_add(m, WG_METRIC_GAUGE, "1bad", "x", NULL, NULL, 0));
    assert_null(wg_metrics_add(m, WG_METRIC_GAUGE, "bad-name", "x", NULL, NULL, 0));
    {
        static const double unsorted[] = {1, 0.5};
        static const char *const le[] = {"le", NULL};
        assert_null(wg_metrics_add(m, WG_METRIC_HISTOGRAM, "t_h", "x", NULL, unsorted, 2));
        assert_null(wg_metrics_add(m, WG_METRIC_COUNTER, "t_c_total", "x", le, NULL, 0));
    }
    /* a labelled family asked for its unlabelled series */
    assert_null(wg_metric_get0(c));
    wg_metrics_free(m);
}

static void test_metrics_series_cap(void **state)
{
    static const char *const labels[] = {"k", NULL};
    wg_metrics *m;
    wg_metric *c;
    char v[32], *text;
    size_t i, len;

    (void)state;
    assert_int_equal(wg_metrics_new(&m), 0);
    c = wg_metrics_add(m, WG_METRIC_COUNTER, "t_total", "x", labels, NULL, 0);
    for (i = 0; i < WG_METRIC_SERIES_MAX; i++) {
        snprintf(v, sizeof v, "v%zu", i);
        assert_non_null(wg_metric_get1(c, v));
    }
    assert_null(wg_metric_get1(c, "one-too-many"));
    wg_metric_inc(wg_metric_get1(c, "one-too-many")); /* NULL ignored */
    assert_non_null(wg_metric_get1(c, "v0"));         /* existing ones still found */
    assert_int_equal(wg_metrics_render(m, &text, &len), 0);
    assert_non_null(strstr(text, "wagate_metric_series_dropped_total 2\n"));
    free(text);
    wg_metrics_free(m);
}

static void test_strbuf_cap(void **state)
{
    wg_strbuf b;
    size_t len;
    char *p;

    (void)state;
    wg_strbuf_init(&b, 8);
    assert_int_equal(wg_strbuf_puts(&b, "1234"), 0);
    assert_int_equal(wg_strbuf_printf(&b, "%d", 5678), 0);
    assert_int_equal(wg_strbuf_puts(&b, "9"), WA_ELIMIT);
    assert_int_equal(wg_strbuf_puts(&b, ""), WA_ELIMIT); /* sticky */
    assert_null(wg_strbuf_steal(&b, &len));
    wg_strbuf_init(&b, 8);
    assert_int_equal(wg_strbuf_puts(&b, "12345678"), 0);
    p = wg_strbuf_steal(&b, &len);
    assert_string_equal(p, "12345678");
    assert_int_equal(len, 8);
    free(p);
}

/* ---- routes and names ---- */

static void test_route_match(void **state)
{
    const char *params[WG_ROUTE_PARAMS_MAX];
    char buf[64];
    size_t n;

    (void)state;
    assert_true(wg_route_match("/", "/", buf, sizeof buf, params, &n));
    assert_int_equal(n, 0);
    assert_false(wg_route_match("/", "/x", buf, sizeof buf, params, &n));
    assert_true(wg_route_match("/api/sessions", "/api/sessions", buf, sizeof buf, params, &n));
    assert_false(wg_route_match("/api/sessions", "/api/sessions/", buf, sizeof buf, params, &n));
    assert_false(wg_route_match("/api/sessions", "/api/session", buf, sizeof buf, params, &n));
    assert_false(wg_route_match("/api/sessions", "/api/sessionsX", buf, sizeof buf, params, &n));
    assert_true(wg_route_match("/api/sessions/{name}/start", "/api/sessions/abc/start", buf,
                               sizeof buf, params, &n));
    assert_int_equal(n, 1);
    assert_string_equal(params[0], "abc");
    assert_false(wg_route_match("/api/sessions/{name}/start", "/api/sessions//start", buf,
                                sizeof buf, params, &n));
    assert_false(
        wg_route_match("/api/sessions/{name}", "/api/sessions/a/b", buf, sizeof buf, params, &n));
    assert_true(wg_route_match("/a/{x}/b/{y}", "/a/1/b/22", buf, sizeof buf, params, &n));
    assert_int_equal(n, 2);
    assert_string_equal(params[0], "1");
    assert_string_equal(params[1], "22");
    /* a parameter longer than the buffer does not match */
    assert_false(wg_route_match("/a/{x}",
                                "/a/0123456789012345678901234567890123456789"
                                "0123456789012345678901234567890123456789",
                                buf, sizeof buf, params, &n));
    assert_false(wg_route_match("/a", "a", buf, sizeof buf, params, &n));
}

static void test_route_table(void **state)
{
    size_t i, j;

    (void)state;
    for (i = 0; i < wg_routes_count; i++) {
        const wg_route *r = &wg_routes[i];
        /* implemented routes have a handler, planned ones none */
        assert_true(((r->flags & WG_ROUTE_PLANNED) != 0) == (r->fn == NULL));
        /* /api is never public */
        if (!strncmp(r->pattern, "/api", 4))
            assert_false(r->flags & WG_ROUTE_PUBLIC);
        for (j = i + 1; j < wg_routes_count; j++)
            assert_false(!strcmp(r->method, wg_routes[j].method) &&
                         !strcmp(r->pattern, wg_routes[j].pattern));
    }
}

static void test_session_names(void **state)
{
    char longname[80];

    (void)state;
    assert_true(wg_session_name_valid("a"));
    assert_true(wg_session_name_valid("Sales_1-main"));
    assert_true(wg_session_name_valid("0abc"));
    assert_false(wg_session_name_valid(""));
    assert_false(wg_session_name_valid("."));
    assert_false(wg_session_name_valid(".."));
    assert_false(wg_session_name_valid("../etc"));
    assert_false(wg_session_name_valid("a/b"));
    assert_false(wg_session_name_valid("a\\b"));
    assert_false(wg_session_name_valid("a.b"));
    assert_false(wg_session_name_valid("-a"));
    assert_false(wg_session_name_valid("_a"));
    assert_false(wg_session_name_valid("a b"));
    assert_false(wg_session_name_valid("a%2f"));
    assert_false(wg_session_name_valid("caf\xc3\xa9"));
    memset(longname, 'a', 64);
    longname[64] = '\0';
    assert_true(wg_session_name_valid(longname));
    longname[64] = 'a';
    longname[65] = '\0';
    assert_false(wg_session_name_valid(longname));
    assert_string_equal(wg_status_name(WG_STATUS_SCAN_QR), "SCAN_QR");
    assert_string_equal(wg_status_name(99), "UNKNOWN");
}

/* ---- database ---- */

typedef struct rows {
    char names[8][80];
    int running[8];
    char cfg[8][80];
    size_t n;
} rows;

static int collect(const char *name, int64_t created_at, int want_running, const char *cfg,
                   void *ud)
{
    rows *r = ud;

    (void)created_at;
    snprintf(r->names[r->n], sizeof r->names[0], "%s", name);
    snprintf(r->cfg[r->n], sizeof r->cfg[0], "%s", cfg);
    r->running[r->n++] = want_running;
    return 0;
}

static int collect_queue(const char *id, const char *body, void *ud)
{
    rows *r = ud;

    snprintf(r->names[r->n], sizeof r->names[0], "%s", id);
    snprintf(r->cfg[r->n++], sizeof r->cfg[0], "%s", body);
    return 0;
}

static void test_db(void **state)
{
    char path[128];
    wg_db *db;
    rows r;
    struct stat st;

    (void)state;
    mktmp();
    snprintf(path, sizeof path, "%s/%s", tmpdir, WG_DB_FILE);
    assert_int_equal(wg_db_open(path, &db), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(wg_db_session_insert(db, "b", 1, 1, "{\"proxy\":\"x\"}"), 0);
    assert_int_equal(wg_db_session_insert(db, "a", 2, 0, NULL), 0);
    assert_int_equal(wg_db_session_insert(db, "a", 3, 1, NULL), WA_EEXIST);
    assert_int_equal(wg_db_session_set_running(db, "a", 1), 0);
    assert_int_equal(wg_db_session_set_running(db, "zz", 1), WA_ENOTFOUND);
    assert_int_equal(wg_db_probe(db), 0);
    /* the send queue: per session, oldest first */
    assert_int_equal(wg_db_queue_add(db, "Q2", "b", "{\"text\":\"2\"}", 20), 0);
    assert_int_equal(wg_db_queue_add(db, "Q1", "b", "{\"text\":\"1\"}", 10), 0);
    assert_int_equal(wg_db_queue_add(db, "Q3", "a", "{}", 5), 0);
    assert_int_equal(wg_db_queue_add(db, "Q3", "a", "{}", 5), WA_ESTORE); /* same id */
    wg_db_close(db);

    /* everything survives a reopen */
    assert_int_equal(wg_db_open(path, &db), 0);
    {
        size_t n = 0;
        assert_int_equal(wg_db_queue_count(db, "b", &n), 0);
        assert_int_equal(n, 2);
        memset(&r, 0, sizeof r);
        assert_int_equal(wg_db_queue_load(db, "b", 10, collect_queue, &r), 0);
        assert_int_equal(r.n, 2);
        assert_string_equal(r.names[0], "Q1");
        assert_string_equal(r.cfg[0], "{\"text\":\"1\"}");
        assert_string_equal(r.names[1], "Q2");
        memset(&r, 0, sizeof r);
        assert_int_equal(wg_db_queue_load(db, "b", 1, collect_queue, &r), 0);
        assert_int_equal(r.n, 1);
        assert_int_equal(wg_db_queue_delete(db, "Q1"), 0);
        assert_int_equal(wg_db_queue_delete(db, "Q1"), WA_ENOTFOUND);
        assert_int_equal(wg_db_queue_purge(db, "a"), 0);
        assert_int_equal(wg_db_queue_purge(db, "a"), 0);
        assert_int_equal(wg_db_queue_count(db, "a", &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(wg_db_queue_count(db, "b", &n), 0);
        assert_int_equal(n, 1);
    }
    memset(&r, 0, sizeof r);
    assert_int_equal(wg_db_sessions_load(db, collect, &r), 0);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.names[0], "a");
    assert_int_equal(r.running[0], 1);
    assert_string_equal(r.cfg[0], "{}");
    assert_string_equal(r.names[1], "b");
    assert_string_equal(r.cfg[1], "{\"proxy\":\"x\"}");
    assert_int_equal(wg_db_session_delete(db, "a"), 0);
    assert_int_equal(wg_db_session_delete(db, "a"), WA_ENOTFOUND);
    memset(&r, 0, sizeof r);
    assert_int_equal(wg_db_sessions_load(db, collect, &r), 0);
    assert_int_equal(r.n, 1);
    wg_db_close(db);

    /* not a database */
    snprintf(path, sizeof path, "%s/junk.db", tmpdir);
    write_file(tmpdir, "junk.db", "this is not an SQLite file, not at all, no......");
    assert_int_equal(wg_db_open(path, &db), WA_ESTORE);
    /* a directory that does not exist */
    assert_int_equal(wg_db_open("/nonexistent/dir/x.db", &db), WA_ESTORE);
    rmtmp();
}

/* Statements are cached per handle: a walk's callback may run the same query again (a one-shot
 * copy), write meanwhile, or stop the walk early; the next use starts afresh. */
typedef struct nested {
    wg_db *db;
    rows inner;
    int calls;
} nested;

static int walk_nested(const char *name, int64_t created_at, int want_running, const char *cfg,
                       void *ud)
{
    nested *x = ud;

    (void)created_at;
    (void)want_running;
    (void)cfg;
    x->calls++;
    if (!strcmp(name, "a")) {
        x->inner.n = 0;
        assert_int_equal(wg_db_sessions_load(x->db, collect, &x->inner), 0);
        assert_int_equal(wg_db_session_set_running(x->db, "c", 1), 0);
    }
    return 0;
}

static int stop_first(const char *name, int64_t created_at, int want_running, const char *cfg,
                      void *ud)
{
    (void)name;
    (void)created_at;
    (void)want_running;
    (void)cfg;
    (*(int *)ud)++;
    return 7;
}

static void test_db_statement_cache(void **state)
{
    char path[128];
    nested x;
    rows r;
    int i, seen = 0;

    (void)state;
    mktmp();
    snprintf(path, sizeof path, "%s/%s", tmpdir, WG_DB_FILE);
    memset(&x, 0, sizeof x);
    assert_int_equal(wg_db_open(path, &x.db), 0);
    assert_int_equal(wg_db_session_insert(x.db, "a", 1, 0, NULL), 0);
    assert_int_equal(wg_db_session_insert(x.db, "b", 2, 0, NULL), 0);
    assert_int_equal(wg_db_session_insert(x.db, "c", 3, 0, NULL), 0);
    assert_int_equal(wg_db_sessions_load(x.db, walk_nested, &x), 0);
    assert_int_equal(x.calls, 3);
    assert_int_equal(x.inner.n, 3);
    /* a walk stopped early returns the callback's value and leaves nothing open */
    assert_int_equal(wg_db_sessions_load(x.db, stop_first, &seen), 7);
    assert_int_equal(seen, 1);
    for (i = 0; i < 3; i++) { /* the same statements again and again, bindings renewed */
        memset(&r, 0, sizeof r);
        assert_int_equal(wg_db_session_set_running(x.db, "b", i & 1), 0);
        assert_int_equal(wg_db_sessions_load(x.db, collect, &r), 0);
        assert_int_equal(r.n, 3);
        assert_string_equal(r.names[2], "c");
        assert_int_equal(r.running[1], i & 1);
        assert_int_equal(r.running[2], 1);
    }
    wg_db_close(x.db);
    /* every write is there for the next handle */
    assert_int_equal(wg_db_open(path, &x.db), 0);
    memset(&r, 0, sizeof r);
    assert_int_equal(wg_db_sessions_load(x.db, collect, &r), 0);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.running[1], 0);
    assert_int_equal(r.running[2], 1);
    wg_db_close(x.db);
    rmtmp();
}

/* ---- memory governor ---- */

static void make_fixture(const char *max, const char *current, const char *meminfo,
                         const char *cgroup_line)
{
    char d[128];

    snprintf(d, sizeof d, "%s/cg", tmpdir);
    mkdir(d, 0700);
    snprintf(d, sizeof d, "%s/proc", tmpdir);
    mkdir(d, 0700);
    snprintf(d, sizeof d, "%s/proc/self", tmpdir);
    mkdir(d, 0700);
    snprintf(d, sizeof d, "%s/cg", tmpdir);
    if (max)
        write_file(d, "memory.max", max);
    if (current)
        write_file(d, "memory.current", current);
    snprintf(d, sizeof d, "%s/proc", tmpdir);
    write_file(d, "meminfo", meminfo);
    snprintf(d, sizeof d, "%s/proc/self", tmpdir);
    write_file(d, "statm", "1000 256 10 1 0 100 0\n");
    write_file(d, "cgroup", cgroup_line);
}

/* ---- the message store and exactly-once message events ---- */

static int st_open(void *ctx, wg_session *s, void **h)
{
    (void)ctx;
    *h = s;
    return 0;
}
static int st_start(void *ctx, void *h)
{
    (void)ctx;
    (void)h;
    return 0;
}
static void st_stop(void *ctx, void *h)
{
    (void)ctx;
    (void)h;
}
static int st_logout(void *ctx, void *h)
{
    (void)ctx;
    (void)h;
    return 0;
}
static int st_purge(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return 0;
}

static const wg_backend_ops store_ops = {
    .name = "store-test",
    .open = st_open,
    .start = st_start,
    .stop = st_stop,
    .logout = st_logout,
    .close = st_stop,
    .purge = st_purge,
};

static int published;

static void count_sink(wg_session *s, const char *event, json_t *payload, void *ud)
{
    (void)s;
    (void)event;
    (void)payload;
    (void)ud;
    published++;
}

typedef struct msg_rows {
    char ids[16][16];
    char status[16][16];
    size_t n;
} msg_rows;

static int collect_msg(const wg_db_msg *m, void *ud)
{
    msg_rows *r = ud;

    if (r->n < 16) {
        snprintf(r->ids[r->n], sizeof r->ids[0], "%s", m->id);
        snprintf(r->status[r->n++], sizeof r->status[0], "%s", m->status);
    }
    return 0;
}

static int count_chat(const char *chat, int64_t last, int64_t count, int64_t unread, void *ud)
{
    int64_t *out = ud;

    (void)chat;
    (void)last;
    out[0]++;
    out[1] = count;
    out[2] = unread;
    return 0;
}

static json_t *incoming(const char *id, int64_t ts, int maybe_repeat)
{
    json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:b}", "id", id, "chat",
                          "1@s.whatsapp.net", "from", "1:2@s.whatsapp.net", "type", "text", "text",
                          "hi", "timestamp", (json_int_t)ts, "from_me", 0);

    if (maybe_repeat)
        json_object_set_new(p, "maybe_repeat", json_true());
    return p;
}

static void test_message_store(void **state)
{
    char path[128];
    wg_backend be = {&store_ops, NULL};
    wg_sessions *ss;
    wg_session *s;
    wg_db *db;
    msg_rows r;
    int64_t chats[3] = {0, 0, 0};
    json_t *req;
    size_t n;

    (void)state;
    mktmp();
    snprintf(path, sizeof path, "%s/%s", tmpdir, WG_DB_FILE);
    assert_int_equal(wg_db_open(path, &db), 0);
    assert_int_equal(wg_sessions_new(db, &be, &ss), 0);
    wg_sessions_set_event_sink(ss, count_sink, NULL);
    wg_sessions_set_store(ss, 3, 7);
    assert_true(wg_sessions_store_enabled(ss));
    assert_int_equal(wg_sessions_create(ss, "s1", NULL, 0, &s), 0);

    /* published, then recorded; a flagged repeat of a recorded id is dropped */
    published = 0;
    assert_int_equal(wg_session_report_event(s, "message", incoming("A1", 100, 0)), 1);
    assert_int_equal(wg_session_report_event(s, "message", incoming("A1", 100, 1)), 0);
    assert_int_equal(published, 1);
    /* a flagged message never published before goes out (with its flag) */
    assert_int_equal(wg_session_report_event(s, "message", incoming("A2", 101, 1)), 1);
    assert_int_equal(published, 2);
    assert_int_equal(wg_db_msg_exists(db, "s1", "1@s.whatsapp.net", "A2"), 1);
    /* ours: pending, then the ack moves it on (never back) */
    req = json_pack("{s:s, s:s, s:s}", "kind", "text", "to", "1", "text", "out");
    wg_session_report_sent(s, "1@s.whatsapp.net", "B1", req);
    json_decref(req);
    wg_session_report_event(s, "message.ack",
                            json_pack("{s:s, s:s}", "id", "B1", "status", "read"));
    wg_session_report_event(s, "message.ack",
                            json_pack("{s:[s], s:s}", "ids", "B1", "status", "delivered"));
    memset(&r, 0, sizeof r);
    assert_int_equal(wg_db_messages(db, "s1", "1@s.whatsapp.net", NULL, 0, 10, collect_msg, &r), 0);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.ids[0], "B1"); /* newest first (its timestamp is now) */
    assert_string_equal(r.status[0], "read");
    assert_string_equal(r.ids[1], "A2");
    assert_string_equal(r.status[1], "received");
    /* paging: before an id, before a time */
    memset(&r, 0, sizeof r);
    assert_int_equal(wg_db_messages(db, "s1", "1@s.whatsapp.net", "A2", 0, 10, collect_msg, &r), 0);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.ids[0], "A1");
    memset(&r, 0, sizeof r);
    assert_int_equal(wg_db_messages(db, "s1", "1@s.whatsapp.net", NULL, 101, 10, collect_msg, &r),
                     0);
    assert_int_equal(r.n, 1);
    assert_int_equal(wg_db_messages(db, "s1", "1@s.whatsapp.net", "NOPE", 0, 10, collect_msg, &r),
                     WA_ENOTFOUND);
    assert_int_equal(wg_db_chats(db, "s1", 10, count_chat, chats), 0);
    assert_int_equal(chats[0], 1);
    assert_int_equal(chats[1], 3);
    assert_int_equal(chats[2], 2); /* A1 and A2 unread */
    assert_int_equal(wg_db_msg_set_status(db, "s1", NULL, "A1", "read"), 0);
    assert_int_equal(wg_db_msg_set_status(db, "s1", NULL, "A1", "bogus"), WA_EINVAL);

    /* the bound: 3 per session, the oldest rows go first */
    wg_session_report_event(s, "message", incoming("A3", 102, 0));
    wg_session_report_event(s, "message", incoming("A4", 103, 0));
    wg_sessions_prune_store(ss);
    memset(&r, 0, sizeof r);
    assert_int_equal(wg_db_messages(db, "s1", "1@s.whatsapp.net", NULL, 0, 10, collect_msg, &r), 0);
    assert_int_equal(r.n, 3);
    assert_int_equal(wg_db_msg_exists(db, "s1", "1@s.whatsapp.net", "A1"), 0);
    assert_int_equal(wg_db_msg_exists(db, "s1", "1@s.whatsapp.net", "A2"), 0);
    /* retention: everything stored before the cut goes */
    assert_int_equal(wg_db_msg_prune_age(db, (int64_t)time(NULL) + 10, 100, &n), 0);
    assert_int_equal(n, 3);

    /* store off: nothing listed, but repeats are still recognised */
    wg_sessions_set_store(ss, 0, 7);
    assert_false(wg_sessions_store_enabled(ss));
    published = 0;
    assert_int_equal(wg_session_report_event(s, "message", incoming("C1", 200, 0)), 1);
    assert_int_equal(wg_session_report_event(s, "message", incoming("C1", 200, 1)), 0);
    assert_int_equal(published, 1);
    memset(&r, 0, sizeof r);
    assert_int_equal(wg_db_messages(db, "s1", "1@s.whatsapp.net", NULL, 0, 10, collect_msg, &r), 0);
    assert_int_equal(r.n, 0);

    /* deleting the session deletes its messages */
    assert_int_equal(wg_sessions_delete(ss, s), 0);
    assert_int_equal(wg_db_msg_exists(db, "s1", "1@s.whatsapp.net", "C1"), 0);
    wg_sessions_free(ss);
    wg_db_close(db);
    rmtmp();
}

static void test_memory(void **state)
{
    char cg[128], proc[128];
    wg_memory m;
    long page = sysconf(_SC_PAGESIZE);

    (void)state;
    mktmp();
    snprintf(cg, sizeof cg, "%s/cg", tmpdir);
    snprintf(proc, sizeof proc, "%s/proc", tmpdir);

    /* cgroup v2 limit and use */
    make_fixture("1000000\n", "500000\n", "MemTotal:       16384 kB\n", "0::/\n");
    wg_memory_init(&m, 0.8, cg, proc);
    assert_int_equal(wg_memory_read(&m), 0);
    assert_int_equal(m.limit, 1000000);
    assert_int_equal(m.used, 500000);
    assert_int_equal(m.limit_from_cgroup, 1);
    assert_int_equal(m.used_from_cgroup, 1);
    assert_int_equal(m.rss, 256 * (uint64_t)page);
    assert_int_equal(wg_memory_check(&m), 0);
    assert_int_equal(m.pressure, 0);

    /* above the threshold: pressure, trim asked */
    write_file(cg, "memory.current", "850000\n");
    assert_int_equal(wg_memory_check(&m), 1);
    assert_int_equal(m.pressure, 1);
    /* just below the threshold but inside the hysteresis band: still under pressure */
    write_file(cg, "memory.current", "790000\n");
    assert_int_equal(wg_memory_check(&m), 0);
    assert_int_equal(m.pressure, 1);
    /* clearly below: lifted */
    write_file(cg, "memory.current", "700000\n");
    assert_int_equal(wg_memory_check(&m), 0);
    assert_int_equal(m.pressure, 0);
    wg_memory_trim(&m);
    assert_int_equal(m.trims, 1);

    /* memory.max "max": MemTotal is the limit */
    write_file(cg, "memory.max", "max\n");
    assert_int_equal(wg_memory_read(&m), 0);
    assert_int_equal(m.limit, 16384 * 1024);
    assert_int_equal(m.limit_from_cgroup, 0);

    /* the process's own cgroup directory is preferred */
    {
        char sub[160];
        snprintf(sub, sizeof sub, "%s/cg/app", tmpdir);
        mkdir(sub, 0700);
        write_file(sub, "memory.max", "2000000\n");
        write_file(sub, "memory.current", "100\n");
        snprintf(sub, sizeof sub, "%s/proc/self", tmpdir);
        write_file(sub, "cgroup", "0::/app\n");
        assert_int_equal(wg_memory_read(&m), 0);
        assert_int_equal(m.limit, 2000000);
        assert_int_equal(m.used, 100);
    }
    rmtmp();

    /* no cgroup files at all: MemTotal and RSS */
    mktmp();
    snprintf(cg, sizeof cg, "%s/cg", tmpdir);
    snprintf(proc, sizeof proc, "%s/proc", tmpdir);
    make_fixture(NULL, NULL, "MemFree: 1 kB\nMemTotal:  1024 kB\n", "");
    wg_memory_init(&m, 0.5, cg, proc);
    assert_int_equal(wg_memory_read(&m), 0);
    assert_int_equal(m.limit, 1024 * 1024);
    assert_int_equal(m.used, 256 * (uint64_t)page);
    assert_int_equal(m.used_from_cgroup, 0);
    rmtmp();

    /* nothing readable */
    wg_memory_init(&m, 0.5, "/nonexistent", "/nonexistent");
    assert_int_equal(wg_memory_read(&m), WA_EIO);
    assert_int_equal(wg_memory_check(&m), 0);

    /* the real machine answers something sane */
    wg_memory_init(&m, 0.8, NULL, NULL);
    assert_int_equal(wg_memory_read(&m), 0);
    assert_true(m.limit > 0);
    assert_true(m.used > 0);
}

/* ---- API key file ---- */

static void test_api_key_file(void **state)
{
    char path[128], key[WG_API_KEY_MAX + 1], again[WG_API_KEY_MAX + 1];
    struct stat st;
    int gen = -1;

    (void)state;
    mktmp();
    snprintf(path, sizeof path, "%s/%s", tmpdir, WG_API_KEY_FILE);
    assert_int_equal(wg_api_key_load_or_create(path, key, &gen), 0);
    assert_int_equal(gen, 1);
    assert_int_equal(strlen(key), 43); /* 32 random bytes, base64url */
    assert_true(wg_api_key_valid(key));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(wg_api_key_load_or_create(path, again, &gen), 0);
    assert_int_equal(gen, 0);
    assert_string_equal(key, again);
    /* an invalid file is refused, never replaced */
    write_file(tmpdir, WG_API_KEY_FILE, "short\n");
    assert_int_equal(wg_api_key_load_or_create(path, again, &gen), WA_EINVAL);
    /* a key written by hand */
    write_file(tmpdir, WG_API_KEY_FILE, "my-own-key-0123456789\n");
    assert_int_equal(wg_api_key_load_or_create(path, again, &gen), 0);
    assert_string_equal(again, "my-own-key-0123456789");
    rmtmp();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_json),
        cmocka_unit_test(test_log_json_truncated_stays_valid),
        cmocka_unit_test(test_log_text),
        cmocka_unit_test(test_log_redaction),
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_metrics_series_cap),
        cmocka_unit_test(test_strbuf_cap),
        cmocka_unit_test(test_route_match),
        cmocka_unit_test(test_route_table),
        cmocka_unit_test(test_session_names),
        cmocka_unit_test(test_db),
        cmocka_unit_test(test_message_store),
        cmocka_unit_test(test_db_statement_cache),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_api_key_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
