/*
 * fleet.c - many libwa clients on one uv loop, wasim's control API over libcurl multi on the
 * same loop, and process figures (see fleet.h).
 *
 * libcurl multi on libuv: libcurl says which sockets to watch (CURLMOPT_SOCKETFUNCTION -> one
 * uv_poll per socket) and when to call it back (CURLMOPT_TIMERFUNCTION -> one uv_timer); we
 * call curl_multi_socket_action on readiness or timeout and collect finished transfers with
 * curl_multi_info_read. Transfers beyond FLEET_CTL_CONNS connections wait inside libcurl.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "fleet.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <curl/curl.h>

#include "wa/error.h"

/* ---- process figures ------------------------------------------------------------------------ */

void fleet_mem_read(fleet_mem *m)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    struct mallinfo2 mi = mallinfo2();

    memset(m, 0, sizeof *m);
    m->rss_kib = m->hwm_kib = -1;
    if (f) {
        while (fgets(line, sizeof line, f)) {
            long v;
            if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
                m->rss_kib = v;
            else if (sscanf(line, "VmHWM: %ld kB", &v) == 1)
                m->hwm_kib = v;
        }
        fclose(f);
    }
    m->heap_used = mi.uordblks + mi.hblkhd;
    m->heap_arena = mi.arena + mi.hblkhd;
}

int fleet_mem_reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int rc;

    if (!f)
        return -1;
    rc = fputs("5", f) < 0 ? -1 : 0;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

double fleet_cpu_seconds(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

uint64_t fleet_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int fleet_raise_nofile(unsigned long *soft_out)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -1;
    }
    if (soft_out)
        *soft_out = (unsigned long)rl.rlim_cur;
    return 0;
}

static void on_tick(uv_timer_t *t)
{
    (void)t; /* only makes uv_run(UV_RUN_ONCE) return */
}

int fleet_run_until(uv_loop_t *loop, int (*done)(void *ud), void *ud, unsigned timeout_ms)
{
    uv_timer_t tick;
    uint64_t end = fleet_now_ms() + timeout_ms;
    int ok;

    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 10, 10);
    while (!(ok = done(ud)) && fleet_now_ms() < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT); /* let the close finish */
    return ok;
}

static void on_wake(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

void fleet_run_for(uv_loop_t *loop, unsigned ms)
{
    uv_timer_t t;
    int fired = 0;

    uv_timer_init(loop, &t);
    t.data = &fired;
    uv_timer_start(&t, on_wake, ms, 0);
    while (!fired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* ---- wasim's control API -------------------------------------------------------------------- */

typedef struct ctl_req {
    struct ctl_req *prev, *next;
    fleet_ctl *ctl;
    CURL *easy;
    struct curl_slist *headers;
    char *body;  /* request body (copied) */
    char *reply; /* response body */
    size_t len, cap;
    char err[CURL_ERROR_SIZE];
    fleet_ctl_cb cb;
    void *user_data;
} ctl_req;

typedef struct ctl_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    fleet_ctl *ctl;
} ctl_sock;

struct fleet_ctl {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    char *base;
    ctl_req *reqs; /* in flight */
    size_t pending;
};

static void ctl_check_done(fleet_ctl *c)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(c->multi, &left))) {
        ctl_req *r;
        long status = -1;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (msg->data.result == CURLE_OK)
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(c->multi, r->easy);
        if (r->prev)
            r->prev->next = r->next;
        else
            c->reqs = r->next;
        if (r->next)
            r->next->prev = r->prev;
        c->pending--;
        if (r->cb) {
            if (status < 0)
                r->cb(-1, r->err, strlen(r->err), r->user_data);
            else
                r->cb((int)status, r->reply ? r->reply : "", r->len, r->user_data);
        }
        curl_easy_cleanup(r->easy);
        curl_slist_free_all(r->headers);
        free(r->body);
        free(r->reply);
        free(r);
    }
}

static void on_ctl_poll(uv_poll_t *p, int status, int events)
{
    ctl_sock *s = p->data;
    int flags = 0, running;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(s->ctl->multi, s->fd, flags, &running);
    ctl_check_done(s->ctl);
}

static void on_sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static int on_curl_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    fleet_ctl *c = userp;
    ctl_sock *s = socketp;
    int ev = 0;

    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_sock_closed);
            curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        s->fd = fd;
        s->ctl = c;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        curl_multi_assign(c->multi, fd, s);
    }
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_ctl_poll);
    return 0;
}

static void on_ctl_timer(uv_timer_t *t)
{
    fleet_ctl *c = t->data;
    int running;

    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    ctl_check_done(c);
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
    fleet_ctl *c = userp;

    (void)m;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_ctl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t on_curl_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    ctl_req *r = ud;
    size_t n = size * nmemb;

    if (r->len + n + 1 > FLEET_CTL_BODY_MAX)
        return 0; /* aborts the transfer */
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 1024;
        char *p;
        while (cap < r->len + n + 1)
            cap *= 2;
        p = realloc(r->reply, cap);
        if (!p)
            return 0;
        r->reply = p;
        r->cap = cap;
    }
    memcpy(r->reply + r->len, ptr, n);
    r->len += n;
    r->reply[r->len] = '\0';
    return n;
}

int fleet_ctl_new(uv_loop_t *loop, const char *base_url, fleet_ctl **out)
{
    static int curl_ready;
    fleet_ctl *c;

    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return -1;
        curl_ready = 1;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->loop = loop;
    c->base = strdup(base_url);
    c->multi = curl_multi_init();
    if (!c->base || !c->multi) {
        if (c->multi)
            curl_multi_cleanup(c->multi);
        free(c->base);
        free(c);
        return -1;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)FLEET_CTL_CONNS);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    *out = c;
    return 0;
}

int fleet_ctl_request(fleet_ctl *c, const char *method, const char *path, const char *body,
                      fleet_ctl_cb cb, void *user_data)
{
    ctl_req *r = calloc(1, sizeof *r);
    size_t ulen = strlen(c->base) + strlen(path) + 1;
    char *url = malloc(ulen);

    if (!r || !url)
        goto fail;
    snprintf(url, ulen, "%s%s", c->base, path);
    r->ctl = c;
    r->cb = cb;
    r->user_data = user_data;
    r->easy = curl_easy_init();
    if (!r->easy)
        goto fail;
    curl_easy_setopt(r->easy, CURLOPT_URL, url);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_curl_write);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->err);
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)FLEET_CTL_TIMEOUT_MS);
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    if (!strcmp(method, "POST")) {
        r->body = strdup(body ? body : "{}");
        r->headers = curl_slist_append(NULL, "Content-Type: application/json");
        if (!r->body || !r->headers)
            goto fail;
        curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
    }
    if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK)
        goto fail;
    free(url);
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    c->pending++;
    return 0;
fail:
    free(url);
    if (r) {
        if (r->easy)
            curl_easy_cleanup(r->easy);
        curl_slist_free_all(r->headers);
        free(r->body);
        free(r);
    }
    return -1;
}

size_t fleet_ctl_pending(const fleet_ctl *c)
{
    return c->pending;
}

typedef struct call_state {
    int done, status;
    char *body;
} call_state;

static void on_call_done(int status, const char *body, size_t len, void *ud)
{
    call_state *st = ud;

    st->done = 1;
    st->status = status;
    st->body = malloc(len + 1);
    if (st->body) {
        memcpy(st->body, body, len);
        st->body[len] = '\0';
    }
}

static int call_finished(void *ud)
{
    return ((call_state *)ud)->done;
}

int fleet_ctl_call(fleet_ctl *c, const char *method, const char *path, const char *body,
                   char **body_out)
{
    call_state st = {0, -1, NULL};

    if (fleet_ctl_request(c, method, path, body, on_call_done, &st) != 0)
        return -1;
    fleet_run_until(c->loop, call_finished, &st, FLEET_CTL_TIMEOUT_MS + 5000);
    if (!st.done) /* cannot happen: libcurl times out first */
        return -1;
    if (body_out)
        *body_out = st.body;
    else
        free(st.body);
    return st.status;
}

static void on_ctl_timer_closed(uv_handle_t *h)
{
    fleet_ctl *c = h->data;

    free(c->base);
    free(c);
}

void fleet_ctl_free(fleet_ctl *c)
{
    if (!c)
        return;
    while (c->reqs) {
        ctl_req *r = c->reqs;
        c->reqs = r->next;
        curl_multi_remove_handle(c->multi, r->easy);
        curl_easy_cleanup(r->easy);
        curl_slist_free_all(r->headers);
        free(r->body);
        free(r->reply);
        free(r);
    }
    curl_multi_cleanup(c->multi); /* closes the sockets: CURL_POLL_REMOVE for each */
    uv_close((uv_handle_t *)&c->timer, on_ctl_timer_closed);
}

/* ---- the fleet ---------------------------------------------------------------------------------
 */

static void changed(fleet_member *m)
{
    fleet *f = m->fleet;

    if (f->on_change)
        f->on_change(f, m, f->user_data);
}

static void on_scan_done(int status, const char *body, size_t len, void *ud)
{
    fleet_member *m = ud;

    (void)len;
    m->scan_inflight = 0;
    if (status == 200) {
        m->scanned = 1;
        return;
    }
    /* the next QR (a new ref) is scanned again */
    m->fleet->n_scan_errors++;
    fprintf(stderr, "fleet: scan of member %u: HTTP %d %.200s\n", m->idx, status, body);
}

static void on_qr(wa_client *c, const char *text, void *ud)
{
    fleet_member *m = ud;
    fleet *f = m->fleet;
    char path[64], *body;
    size_t cap = strlen(text) * 2 + 16, k = 0;
    const char *p;

    (void)c;
    if (m->scanned || m->scan_inflight || !f->ctl)
        return;
    body = malloc(cap);
    if (!body)
        return;
    k += (size_t)snprintf(body, cap, "{\"qr\":\"");
    for (p = text; *p && k + 4 < cap; p++) {
        if (*p == '"' || *p == '\\')
            body[k++] = '\\';
        body[k++] = *p;
    }
    snprintf(body + k, cap - k, "\"}");
    snprintf(path, sizeof path, "/phones/%llu/scan",
             (unsigned long long)(f->o.phone_base + m->idx));
    if (fleet_ctl_request(f->ctl, "POST", path, body, on_scan_done, m) == 0)
        m->scan_inflight = 1;
    free(body);
}

static void on_paired(wa_client *c, const char *jid, const char *lid, void *ud)
{
    fleet_member *m = ud;

    (void)c;
    (void)lid;
    m->paired = 1;
    snprintf(m->jid, sizeof m->jid, "%s", jid);
    m->fleet->n_paired++;
    changed(m);
}

static void on_connected(wa_client *c, void *ud)
{
    fleet_member *m = ud;
    fleet *f = m->fleet;

    if (m->state == FLEET_CONNECTED)
        return;
    if (!m->connected_ms) {
        m->connected_ms = fleet_now_ms();
        f->n_ever++;
        if (m->connected_ms > f->last_connected_ms)
            f->last_connected_ms = m->connected_ms;
    }
    m->state = FLEET_CONNECTED;
    m->connects++;
    f->n_connected++;
    f->connect_events++;
    snprintf(m->jid, sizeof m->jid, "%s", wa_client_jid(c));
    changed(m);
}

static void on_disconnected(wa_client *c, const wa_client_disconnect_info *info, void *ud)
{
    fleet_member *m = ud;
    fleet *f = m->fleet;

    (void)c;
    if (m->state == FLEET_CONNECTED)
        f->n_connected--;
    m->disconnects++;
    f->disconnect_events++;
    m->last_reason = info->reason;
    m->last_code = info->code;
    if (info->will_retry) {
        f->retry_disconnects++;
        m->state = m->connects ? FLEET_RETRYING : FLEET_STARTED;
    } else {
        if (m->state != FLEET_STOPPED && info->reason != WA_DISC_STOPPED)
            f->n_stopped++;
        m->state = FLEET_STOPPED;
        fprintf(stderr, "fleet: member %u stopped: %s (%d) %s\n", m->idx,
                wa_disconnect_reason_name(info->reason), info->code, info->text);
    }
    changed(m);
}

static void on_logged_out(wa_client *c, void *ud)
{
    (void)c;
    (void)ud;
}

int fleet_new(uv_loop_t *loop, wa_store *store, fleet_ctl *ctl, const fleet_opts *opts, unsigned n,
              fleet **out)
{
    fleet *f = calloc(1, sizeof *f);
    unsigned i;

    if (!f)
        return -1;
    f->m = calloc(n ? n : 1, sizeof *f->m);
    if (!f->m) {
        free(f);
        return -1;
    }
    f->loop = loop;
    f->store = store;
    f->ctl = ctl;
    f->o = *opts;
    if (!f->o.account_prefix)
        f->o.account_prefix = "fleet";
    f->n = n;
    for (i = 0; i < n; i++) {
        f->m[i].fleet = f;
        f->m[i].idx = i;
    }
    *out = f;
    return 0;
}

int fleet_start(fleet *f, unsigned i)
{
    wa_client_callbacks cbs = {
        .qr = on_qr,
        .paired = on_paired,
        .connected = on_connected,
        .disconnected = on_disconnected,
        .logged_out = on_logged_out,
        .stanza = f->o.stanza,
        .message = f->o.message,
        .sent = f->o.sent,
    };
    fleet_member *m = &f->m[i];
    wa_client_config cfg;
    char account[64];
    int rc;

    if (m->client)
        return WA_ESTATE;
    snprintf(account, sizeof account, "%s%u", f->o.account_prefix, i);
    memset(&cfg, 0, sizeof cfg);
    cfg.account = account;
    cfg.ws_url = f->o.ws_url;
    cfg.root_key = f->o.root_key;
    cfg.ca_file = f->o.ca_file;
    cfg.keepalive_ms = f->o.keepalive_ms;
    cfg.connect_timeout_ms = f->o.connect_timeout_ms;
    cfg.reconnect_base_ms = f->o.reconnect_base_ms;
    cfg.reconnect_max_ms = f->o.reconnect_max_ms;
    rc = wa_client_new(f->loop, f->store, &cfg, &cbs, m, &m->client);
    if (rc)
        return rc;
    m->pairing = wa_client_jid(m->client)[0] == '\0';
    m->scanned = m->scan_inflight = m->paired = 0;
    m->connects = m->disconnects = 0;
    m->connected_ms = 0;
    m->state = FLEET_STARTED;
    m->started_ms = fleet_now_ms();
    if (!f->first_start_ms)
        f->first_start_ms = m->started_ms;
    f->n_active++;
    rc = wa_client_start(m->client);
    if (rc) {
        wa_client_free(m->client);
        m->client = NULL;
        m->state = FLEET_NONE;
        f->n_active--;
    }
    return rc;
}

void fleet_close(fleet *f, unsigned i)
{
    fleet_member *m = &f->m[i];

    if (!m->client)
        return;
    if (m->state == FLEET_CONNECTED)
        f->n_connected--;
    wa_client_free(m->client);
    m->client = NULL;
    m->state = FLEET_NONE;
    f->n_active--;
}

void fleet_free(fleet *f)
{
    unsigned i;

    if (!f)
        return;
    for (i = 0; i < f->n; i++)
        fleet_close(f, i);
    free(f->m);
    free(f);
}
