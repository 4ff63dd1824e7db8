/*
 * curluv.c - libcurl multi_socket on a libuv loop (see curluv.h). Moved out of
 * src/events/webhook.c so that the webhook sender and the backup uploader share one glue.
 *
 * Life cycle of the handles: one uv_timer for curl's timeouts, one uv_poll per socket curl asks
 * us to watch (created on CURL_POLL_IN/OUT, closed on CURL_POLL_REMOVE). Each closed handle
 * decrements `open`; when wg_curluv_close has run and `open` reaches 0, the struct is freed and
 * the owner told.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "curluv/curluv.h"

#include <string.h>

#include "core/alloc.h"
#include "wa/error.h"

typedef struct sock {
    uv_poll_t poll;
    struct sock *prev, *next;
    wg_curluv *m;
    curl_socket_t fd;
} sock;

struct wg_curluv {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    sock *socks;
    unsigned running;
    int open; /* uv handles not yet closed */
    int closing;
    void (*closed)(void *);
    void *closed_ud;
};

static void released(wg_curluv *m)
{
    void (*closed)(void *);
    void *ud;

    if (--m->open > 0 || !m->closing)
        return;
    closed = m->closed;
    ud = m->closed_ud;
    wa_free(m);
    if (closed)
        closed(ud);
}

static void check_done(wg_curluv *m)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(m->multi, &left))) {
        wg_curluv_xfer *x;
        char *priv = NULL;
        CURLcode result;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        x = (wg_curluv_xfer *)(void *)priv;
        if (!x)
            continue;
        result = msg->data.result; /* msg is invalid after remove_handle */
        curl_multi_remove_handle(m->multi, x->easy);
        x->added = 0;
        m->running--;
        x->done(x, result);
        if (m->closing) /* closed inside the callback: the multi handle is gone */
            return;
    }
}

static void on_sock_closed(uv_handle_t *h)
{
    sock *s = h->data;
    wg_curluv *m = s->m;

    wa_free(s);
    released(m);
}

static void sock_release(wg_curluv *m, sock *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        m->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static void on_sock_ready(uv_poll_t *p, int status, int events)
{
    sock *s = p->data;
    wg_curluv *m = s->m;
    int flags = 0, running;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(m->multi, s->fd, flags, &running);
    check_done(m);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    wg_curluv *m = userp;
    sock *s = socketp;
    int events = 0;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(m->multi, fd, NULL);
            sock_release(m, s);
        }
        return 0;
    }
    if (!s) {
        s = wa_calloc(1, sizeof *s);
        if (!s)
            return -1;
        if (uv_poll_init_socket(m->loop, &s->poll, fd) != 0) {
            wa_free(s);
            return -1;
        }
        m->open++;
        s->poll.data = s;
        s->m = m;
        s->fd = fd;
        s->next = m->socks;
        if (m->socks)
            m->socks->prev = s;
        m->socks = s;
        curl_multi_assign(m->multi, fd, s);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_sock_ready);
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    wg_curluv *m = t->data;
    int running;

    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(m);
}

static int on_curl_timerfn(CURLM *multi, long timeout_ms, void *userp)
{
    wg_curluv *m = userp;

    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&m->timer);
    else /* 0 means "as soon as possible": from the loop, never from inside this callback */
        uv_timer_start(&m->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

int wg_curluv_new(uv_loop_t *loop, wg_curluv **out)
{
    wg_curluv *m;

    if (!loop || !out)
        return WA_EINVAL;
    m = wa_calloc(1, sizeof *m);
    if (!m)
        return WA_ENOMEM;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        wa_free(m);
        return WA_EIO;
    }
    m->multi = curl_multi_init();
    if (!m->multi) {
        curl_global_cleanup();
        wa_free(m);
        return WA_EIO;
    }
    m->loop = loop;
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_curl_timerfn);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    m->open = 1;
    *out = m;
    return 0;
}

int wg_curluv_add(wg_curluv *m, wg_curluv_xfer *x)
{
    if (!m || !x || !x->easy || !x->done || x->added || m->closing)
        return WA_EINVAL;
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    if (curl_multi_add_handle(m->multi, x->easy) != CURLM_OK)
        return WA_EIO;
    x->added = 1;
    m->running++;
    return 0;
}

void wg_curluv_remove(wg_curluv *m, wg_curluv_xfer *x)
{
    if (!m || !x || !x->added)
        return;
    curl_multi_remove_handle(m->multi, x->easy);
    x->added = 0;
    m->running--;
}

unsigned wg_curluv_running(const wg_curluv *m)
{
    return m ? m->running : 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    released(h->data);
}

void wg_curluv_close(wg_curluv *m, void (*closed)(void *user_data), void *user_data)
{
    if (!m || m->closing)
        return;
    m->closing = 1;
    m->closed = closed;
    m->closed_ud = user_data;
    /* detach our polls from the sockets of cached connections before curl closes them, and stop
     * curl from calling back while it cleans up */
    while (m->socks)
        sock_release(m, m->socks);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, NULL);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, NULL);
    curl_multi_cleanup(m->multi);
    m->multi = NULL;
    curl_global_cleanup();
    uv_timer_stop(&m->timer);
    uv_close((uv_handle_t *)&m->timer, on_timer_closed);
}
