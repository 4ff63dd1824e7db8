/* test_events_stream.c - GET /api/events through wg_httpd on one loop, with clients in threads:
 * the request checks (405, 406, 400 naming the field, 426), an SSE client resuming with
 * Last-Event-ID (stored events then live ones, no gap, no repeat, id lines = envelope ids), a
 * WebSocket client (lib/ws engine in the client role over a blocking socket) filtered by session
 * that answers the server's pings and closes cleanly, and the hub closing under an attached SSE
 * client (its stream ends).
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <uv.h>

#include "events/events.h"
#include "http/httpd.h"
#include "wa/error.h"
#include "ws/ws.h"

#include "harness.h"

#define LOAD(p)     __atomic_load_n(p, __ATOMIC_SEQ_CST)
#define STORE(p, v) __atomic_store_n(p, v, __ATOMIC_SEQ_CST)

typedef struct server {
    uv_loop_t loop;
    wg_events *ev;
    wg_httpd *http;
    char dir[64];
} server;

static void handler(wg_http_req *req, wg_http_resp *resp, void *ud)
{
    server *s = ud;

    if (wg_events_http(s->ev, req, resp) == WA_ENOTFOUND)
        wg_http_json_error(resp, 404, "not_found", "no route");
}

static void server_start(server *s, unsigned ws_ping_ms)
{
    wg_events_options o;
    char path[128];

    memset(s, 0, sizeof *s);
    strcpy(s->dir, "/tmp/wg_stream_XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(path, sizeof path, "%s/events.db", s->dir);
    assert_int_equal(uv_loop_init(&s->loop), 0);
    memset(&o, 0, sizeof o);
    o.db_path = path;
    o.ws_ping_ms = ws_ping_ms;
    o.sse_keepalive_ms = 200;
    assert_int_equal(wg_events_open(&s->loop, &o, &s->ev), 0);
    s->http = wg_httpd_start(&s->loop, "127.0.0.1", 0, 0, handler, s);
    assert_non_null(s->http);
}

static void server_stop(server *s)
{
    if (s->ev)
        harness_close_events(&s->loop, s->ev);
    wg_httpd_stop(s->http);
    harness_run_for(&s->loop, 50);
    assert_int_equal(uv_loop_close(&s->loop), 0);
    harness_rmdir(s->dir);
}

static void publish(server *s, const char *session, const char *event, int i, char *id)
{
    assert_int_equal(wg_events_publish(s->ev, session, event, json_pack("{s:i}", "i", i), id), 0);
}

/* ---- plain requests (curl in a thread) ---- */

typedef struct req_job {
    int port;
    const char *method, *path;
    const char *headers[4];
    long status;
    char body[2048];
    size_t len;
    int done;
} req_job;

static size_t on_write(char *p, size_t sz, size_t n, void *ud)
{
    req_job *j = ud;
    size_t len = sz * n;

    if (j->len + len >= sizeof j->body)
        len = sizeof j->body - 1 - j->len;
    memcpy(j->body + j->len, p, len);
    j->len += len;
    j->body[j->len] = '\0';
    return sz * n;
}

static void run_req(void *arg)
{
    req_job *j = arg;
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char url[256];
    int i;

    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", j->port, j->path);
    for (i = 0; i < 4 && j->headers[i]; i++)
        h = curl_slist_append(h, j->headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, j->method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &j->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    STORE(&j->done, 1);
}

static int job_done(void *ud)
{
    return LOAD(&((req_job *)ud)->done);
}

static void request(server *s, req_job *j)
{
    uv_thread_t th;

    j->port = wg_httpd_port(s->http);
    uv_thread_create(&th, run_req, j);
    assert_true(harness_run_until(&s->loop, job_done, j, 10000));
    uv_thread_join(&th);
}

static void test_request_checks(void **state)
{
    server s;
    req_job j1 = {.method = "GET", .path = "/api/events"};
    req_job j2 = {.method = "GET",
                  .path = "/api/events?events=message,bogus",
                  .headers = {"Accept: text/event-stream"}};
    req_job j3 = {
        .method = "GET", .path = "/api/events?since=xyz", .headers = {"Accept: text/event-stream"}};
    req_job j4 = {.method = "POST", .path = "/api/events"};
    req_job j5 = {.method = "GET",
                  .path = "/api/events",
                  .headers = {"Upgrade: websocket", "Connection: Upgrade",
                              "Sec-WebSocket-Version: 8",
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="}};
    req_job j6 = {.method = "GET",
                  .path = "/api/events",
                  .headers = {"Upgrade: websocket", "Connection: Upgrade",
                              "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: short"}};
    req_job j7 = {.method = "GET", .path = "/api/other"};

    (void)state;
    server_start(&s, 0);
    request(&s, &j1);
    assert_int_equal(j1.status, 406);
    request(&s, &j2);
    assert_int_equal(j2.status, 400);
    assert_non_null(strstr(j2.body, "\"field\":\"events\""));
    assert_non_null(strstr(j2.body, "bogus"));
    request(&s, &j3);
    assert_int_equal(j3.status, 400);
    assert_non_null(strstr(j3.body, "\"field\":\"since\""));
    request(&s, &j4);
    assert_int_equal(j4.status, 405);
    request(&s, &j5);
    assert_int_equal(j5.status, 426);
    request(&s, &j6);
    assert_int_equal(j6.status, 400);
    assert_non_null(strstr(j6.body, "Sec-WebSocket-Key"));
    request(&s, &j7);
    assert_int_equal(j7.status, 404);
    server_stop(&s);
}

/* ---- SSE ---- */

typedef struct sse_job {
    int port;
    char last_id[WG_EVENT_ID_LEN + 1];
    const char *query;
    int want; /* stop after this many events (0: until the stream ends) */
    char buf[65536];
    size_t len;
    int events;
    int done, ended_by_server;
    long status;
    char ctype[64];
} sse_job;

static size_t sse_write(char *p, size_t sz, size_t n, void *ud)
{
    sse_job *j = ud;
    size_t len = sz * n, i;

    if (j->len + len >= sizeof j->buf)
        return 0;
    memcpy(j->buf + j->len, p, len);
    j->len += len;
    j->buf[j->len] = '\0';
    for (i = 0, j->events = 0; i + 5 < j->len; i++)
        if (memcmp(j->buf + i, "data:", 5) == 0 && (i == 0 || j->buf[i - 1] == '\n'))
            __atomic_add_fetch(&j->events, 1, __ATOMIC_SEQ_CST);
    if (j->want && LOAD(&j->events) >= j->want)
        return 0; /* enough: abort */
    return len;
}

static void run_sse(void *arg)
{
    sse_job *j = arg;
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Accept: text/event-stream");
    char url[256], hdr[64];
    char *ct = NULL;
    CURLcode rc;

    if (j->last_id[0]) {
        snprintf(hdr, sizeof hdr, "Last-Event-ID: %s", j->last_id);
        h = curl_slist_append(h, hdr);
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/events%s", j->port,
             j->query ? j->query : "");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &j->status);
    if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
        snprintf(j->ctype, sizeof j->ctype, "%s", ct);
    j->ended_by_server = rc == CURLE_OK;
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    STORE(&j->done, 1);
}

static int sse_done(void *ud)
{
    return LOAD(&((sse_job *)ud)->done);
}

typedef struct count_wait {
    wg_events *ev;
    unsigned sse, ws;
} count_wait;

static int clients_are(void *ud)
{
    count_wait *c = ud;
    wg_events_stats st;

    wg_events_get_stats(c->ev, &st);
    return st.sse_clients == c->sse && st.ws_clients == c->ws;
}

/* The ids of the SSE blocks in buf, checked against their data lines. */
static int sse_ids(const char *buf, char ids[][WG_EVENT_ID_LEN + 1], int max)
{
    const char *p = buf;
    int n = 0;

    while ((p = strstr(p, "id: ")) && n < max) {
        const char *data = strstr(p, "\ndata: ");
        json_t *env;
        const char *end;
        assert_non_null(data);
        memcpy(ids[n], p + 4, WG_EVENT_ID_LEN);
        ids[n][WG_EVENT_ID_LEN] = '\0';
        end = strstr(data + 7, "\n\n");
        assert_non_null(end);
        env = json_loadb(data + 7, (size_t)(end - data - 7), 0, NULL);
        assert_non_null(env);
        assert_string_equal(json_string_value(json_object_get(env, "id")), ids[n]);
        json_decref(env);
        n++;
        p = end;
    }
    return n;
}

static void test_sse_resume(void **state)
{
    server s;
    char ids[10][WG_EVENT_ID_LEN + 1], got[16][WG_EVENT_ID_LEN + 1];
    sse_job *j = calloc(1, sizeof *j);
    uv_thread_t th;
    count_wait cw;
    int i, n;

    (void)state;
    server_start(&s, 0);
    for (i = 0; i < 5; i++)
        publish(&s, i % 2 ? "s2" : "s1", "message", i, ids[i]);
    j->port = wg_httpd_port(s.http);
    memcpy(j->last_id, ids[1], sizeof ids[1]);
    j->want = 8; /* 2..4 replayed, 5..9 live */
    uv_thread_create(&th, run_sse, j);
    cw.ev = s.ev;
    cw.sse = 1;
    cw.ws = 0;
    assert_true(harness_run_until(&s.loop, clients_are, &cw, 5000));
    harness_run_for(&s.loop, 50);
    for (i = 5; i < 10; i++) {
        publish(&s, "s1", i % 2 ? "message.ack" : "message", i, ids[i]);
        harness_run_for(&s.loop, 5); /* interleave with the writes */
    }
    assert_true(harness_run_until(&s.loop, sse_done, j, 10000));
    uv_thread_join(&th);
    assert_int_equal(j->status, 200);
    assert_string_equal(j->ctype, "text/event-stream");
    assert_memory_equal(j->buf, ": wagate event stream\nretry: 2000\n\n", 35);
    n = sse_ids(j->buf, got, 16);
    assert_int_equal(n, 8);
    for (i = 0; i < 8; i++)
        assert_string_equal(got[i], ids[i + 2]);
    /* the client went away: released at a keep-alive write */
    cw.sse = 0;
    assert_true(harness_run_until(&s.loop, clients_are, &cw, 5000));

    /* filters: only s2, and the hub closing ends the stream */
    memset(j, 0, sizeof *j);
    j->port = wg_httpd_port(s.http);
    j->query = "?session=s2&events=message.*";
    uv_thread_create(&th, run_sse, j);
    cw.sse = 1;
    assert_true(harness_run_until(&s.loop, clients_are, &cw, 5000));
    publish(&s, "s1", "message.ack", 100, ids[0]);
    publish(&s, "s2", "message", 101, ids[1]);
    publish(&s, "s2", "message.ack", 102, ids[2]);
    harness_run_for(&s.loop, 100);
    harness_close_events(&s.loop, s.ev);
    s.ev = NULL;
    assert_true(harness_run_until(&s.loop, sse_done, j, 5000));
    uv_thread_join(&th);
    assert_true(j->ended_by_server); /* a clean end of the chunked stream */
    n = sse_ids(j->buf, got, 16);
    assert_int_equal(n, 1);
    assert_string_equal(got[0], ids[2]);
    free(j);
    server_stop(&s);
}

/* ---- WebSocket ---- */

typedef struct ws_job {
    int port;
    const char *path;
    int want;
    char ids[16][WG_EVENT_ID_LEN + 1];
    char sessions[16][8];
    int got, pings, close_code, done, ok;
} ws_job;

static int send_all(int fd, wa_buf *b)
{
    size_t off = 0;

    while (off < b->len) {
        ssize_t n = send(fd, b->data + off, b->len - off, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    wa_buf_reset(b);
    return 0;
}

static void run_ws(void *arg)
{
    ws_job *j = arg;
    struct sockaddr_in a;
    struct timeval tv = {10, 0};
    wa_ws ws;
    wa_buf out;
    uint8_t buf[8192];
    int fd = socket(AF_INET, SOCK_STREAM, 0), closing = 0;
    char host[32];

    wa_buf_init(&out, 1 << 20);
    wa_ws_init(&ws, WA_WS_CLIENT, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)j->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    snprintf(host, sizeof host, "127.0.0.1:%d", j->port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) ||
        wa_ws_client_handshake(&ws, &out, host, j->path, "", NULL) || send_all(fd, &out))
        goto out;
    for (;;) {
        wa_ws_event ev;
        int rc;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        if (wa_ws_feed(&ws, buf, (size_t)n))
            break;
        while ((rc = wa_ws_next_event(&ws, &ev)) == 0) {
            if (ev.type == WA_WS_EV_MESSAGE && ev.opcode == WA_WS_OP_TEXT && j->got < 16) {
                json_t *env = json_loadb((const char *)ev.data.ptr, ev.data.len, 0, NULL);
                const char *id = json_string_value(json_object_get(env, "id"));
                const char *sess = json_string_value(json_object_get(env, "session"));
                if (id && sess) {
                    snprintf(j->ids[j->got], sizeof j->ids[0], "%s", id);
                    snprintf(j->sessions[j->got], sizeof j->sessions[0], "%s", sess);
                    __atomic_add_fetch(&j->got, 1, __ATOMIC_SEQ_CST);
                }
                json_decref(env);
            } else if (ev.type == WA_WS_EV_PING) {
                __atomic_add_fetch(&j->pings, 1, __ATOMIC_SEQ_CST);
            } else if (ev.type == WA_WS_EV_CLOSE) {
                j->close_code = ev.close_code;
            }
        }
        /* pongs and the close reply the engine queued */
        wa_ws_take_output(&ws, &out);
        if (LOAD(&j->got) >= j->want && LOAD(&j->pings) >= 2 && !closing) {
            wa_ws_close(&ws, WA_WS_CLOSE_NORMAL, "bye", &out);
            closing = 1;
        }
        if (out.len && send_all(fd, &out))
            break;
        if (rc != WA_EAGAIN)
            break;
    }
    j->ok = closing && wa_ws_state(&ws) == WA_WS_ST_CLOSED;
out:
    wa_ws_cleanup(&ws);
    wa_buf_cleanup(&out);
    close(fd);
    STORE(&j->done, 1);
}

static int ws_done(void *ud)
{
    return LOAD(&((ws_job *)ud)->done);
}

static void test_ws(void **state)
{
    server s;
    ws_job *j = calloc(1, sizeof *j);
    char ids[8][WG_EVENT_ID_LEN + 1];
    uv_thread_t th;
    count_wait cw;
    int i;

    (void)state;
    server_start(&s, 100); /* pings every 100 ms */
    j->port = wg_httpd_port(s.http);
    j->path = "/api/events?session=s1";
    j->want = 4;
    uv_thread_create(&th, run_ws, j);
    cw.ev = s.ev;
    cw.sse = 0;
    cw.ws = 1;
    assert_true(harness_run_until(&s.loop, clients_are, &cw, 5000));
    for (i = 0; i < 8; i++)
        publish(&s, i % 2 ? "s2" : "s1", "message", i, ids[i]);
    /* the client closes after 4 messages and 2 pings; it was never dropped for silence
     * (it answers pings), so the hub sees a clean close */
    assert_true(harness_run_until(&s.loop, ws_done, j, 10000));
    uv_thread_join(&th);
    assert_true(j->ok);
    assert_int_equal(j->close_code, WA_WS_CLOSE_NORMAL); /* the server echoed our close */
    assert_int_equal(j->got, 4);
    for (i = 0; i < 4; i++) {
        assert_string_equal(j->ids[i], ids[2 * i]);
        assert_string_equal(j->sessions[i], "s1");
    }
    assert_true(j->pings >= 2);
    cw.ws = 0;
    assert_true(harness_run_until(&s.loop, clients_are, &cw, 5000));
    free(j);
    server_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_checks),
        cmocka_unit_test(test_sse_resume),
        cmocka_unit_test(test_ws),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
