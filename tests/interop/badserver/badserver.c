/*
 * badserver.c - issue 4, "bad input": libwa clients against hostile servers, all on ONE uv loop
 * with healthy clients, through libwa's public API (include/wa/client.h).
 *
 *   badserver WASIM
 *
 * Starts wasim and pairs every account through it (bench/clients/fleet.h, as clients100 does),
 * then runs on one loop:
 *   - healthy clients, logged in to wasim from start to end: none may see a disconnect;
 *   - pre-login victims, each pointed at its own hostile ws:// listener in this process that
 *     misbehaves on its first FAIL_FIRST connections (closes on the upgrade request, answers
 *     it with a non-HTTP line, sends garbage instead of the Noise server hello, announces a
 *     16 MiB handshake frame or a 2^40-byte WebSocket frame, sends a truncated frame and
 *     closes, or stalls after the upgrade) and then relays to wasim: each victim must report
 *     FAIL_FIRST disconnects with the expected reason, will_retry and an exponential backoff
 *     with jitter ([cap/2, cap], cap = min(max, base << attempt)), then log in;
 *   - post-login victims, logged in to wasim, each sent one bad stanza through wasim's
 *     POST /devices/{jid}/inject (missing id/from/type, a wrong JID, an answer to no iq, an
 *     8 MiB payload, a stream:error with a non-numeric code, <success/> or pair-device after
 *     login): either the stanza is logged and ignored (a marker stanza injected after it
 *     arrives on the same connection, no disconnect), or the connection is dropped with the
 *     expected reason, retried after [base/2, base] and logged in again.
 * After every case no other client may have seen a connect or disconnect event. The clients'
 * log lines go through a log sink and are checked per case. Prints "ok - ..." / "FAIL - ..."
 * and exits 1 on any failure (the log is kept in the scratch folder then, or always with
 * BADSERVER_KEEP=1 in the environment).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "bnode/node.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "fleet.h"
#include "wa/client.h"
#include "wa/error.h"
#include "wa/store.h"
#include "ws/ws.h"

#define N_HEALTHY       4
#define PHONE_BASE      15552000000ULL
#define BASE_MS         100  /* reconnect_base_ms of the victims */
#define MAX_MS          400  /* reconnect_max_ms: reached at the third retry */
#define FAIL_FIRST      4    /* hostile connections before a listener relays to wasim */
#define STALL_TIMEOUT   4000 /* connect_timeout_ms of the stall victim (its relayed login too) */
#define STEP_TIMEOUT_MS 90000
#define CASE_TIMEOUT_MS 30000
#define READY_MAX       512
#define MAX_EVENTS      16
#define LOG_CAP         16384
#define BIG_PAYLOAD     (8u << 20)

/* ---- cases ---------------------------------------------------------------------------------- */

enum mode { M_CLOSE = 1, M_NOT_HTTP, M_GARBAGE, M_HS_BIG, M_WS_BIG, M_TRUNC, M_STALL };

typedef struct pre_case {
    const char *name;
    int mode;
    int reason; /* expected enum wa_disconnect_reason */
    const char *what;
} pre_case;

static const pre_case pre_cases[] = {
    {"close", M_CLOSE, WA_DISC_NETWORK, "closes the connection on the upgrade request"},
    {"not_http", M_NOT_HTTP, WA_DISC_PROTOCOL, "answers the upgrade with a non-HTTP line"},
    {"garbage_hello", M_GARBAGE, WA_DISC_PROTOCOL, "sends garbage instead of the server hello"},
    {"hs_oversized", M_HS_BIG, WA_DISC_PROTOCOL, "announces a 16 MiB handshake frame"},
    {"ws_oversized", M_WS_BIG, WA_DISC_PROTOCOL, "announces a 2^40-byte WebSocket frame"},
    {"truncated", M_TRUNC, WA_DISC_NETWORK, "sends a truncated frame and closes"},
    {"stall", M_STALL, WA_DISC_TIMEOUT, "completes the upgrade, then says nothing"},
};
#define N_PRE (sizeof pre_cases / sizeof pre_cases[0])

typedef struct post_case {
    const char *name;
    const char *node; /* JSON for POST /devices/{jid}/inject */
    int reason;       /* 0: logged and ignored; else the expected disconnect reason */
    int code;         /* expected disconnect code */
    const char *log;  /* substring expected in the victim's log, or NULL */
} post_case;

#define S_FROM "\"from\":\"s.whatsapp.net\""
static const post_case post_cases[] = {
    {"ping without id",
     "{\"tag\":\"iq\",\"attrs\":{\"type\":\"get\",\"xmlns\":\"urn:xmpp:ping\"," S_FROM "}}", 0, 0,
     "server ping without id"},
    {"notification without id and from",
     "{\"tag\":\"notification\",\"attrs\":{\"type\":\"server_sync\"}}", 0, 0, "without id/from"},
    {"notification without type",
     "{\"tag\":\"notification\",\"attrs\":{\"id\":\"bad-n1\"," S_FROM "}}", 0, 0,
     "notification without type"},
    {"message without from",
     "{\"tag\":\"message\",\"attrs\":{\"id\":\"3EB0BAD00001\",\"type\":\"text\"},\"children\":[{"
     "\"tag\":\"enc\",\"attrs\":{\"v\":\"2\",\"type\":\"msg\"},\"bytes\":32}]}",
     0, 0, "unusable message stanza"},
    {"message with a malformed sender JID",
     "{\"tag\":\"message\",\"attrs\":{\"id\":\"3EB0BAD00002\",\"from\":\"@@not-a-jid:x\",\"type\":"
     "\"text\"},\"children\":[{\"tag\":\"enc\",\"attrs\":{\"v\":\"2\",\"type\":\"msg\"},"
     "\"bytes\":32}]}",
     0, 0, "unusable message stanza"},
    {"iq result for no request",
     "{\"tag\":\"iq\",\"attrs\":{\"type\":\"result\",\"id\":\"no-such-iq\"," S_FROM "}}", 0, 0,
     "for no request of ours"},
    {"8 MiB notification payload",
     "{\"tag\":\"notification\",\"attrs\":{\"id\":\"big-1\",\"type\":\"server_sync\"," S_FROM
     "},\"bytes\":8388608}",
     0, 0, NULL},
    {"stream:error with a non-numeric code",
     "{\"tag\":\"stream:error\",\"attrs\":{\"code\":\"abc\"}}", WA_DISC_SERVER, 500,
     "disconnecting: server (500)"},
    {"<success/> after login", "{\"tag\":\"success\",\"attrs\":{\"t\":\"1\"}}", WA_DISC_PROTOCOL,
     400, "unexpected <success/>"},
    {"pair-device after login",
     "{\"tag\":\"iq\",\"attrs\":{\"type\":\"set\",\"id\":\"pd-1\",\"xmlns\":\"md\"," S_FROM
     "},\"children\":[{\"tag\":\"pair-device\"}]}",
     WA_DISC_PROTOCOL, 400, "pair-device after login"},
};
#define N_POST (sizeof post_cases / sizeof post_cases[0])

#define N_ALL (N_HEALTHY + N_PRE + N_POST)

/* ---- state ---------------------------------------------------------------------------------- */

typedef struct wasim {
    uv_process_t proc;
    uv_pipe_t out;
    char line[READY_MAX];
    size_t len;
    int ready, exited, running;
    char ws[128], control[128];
} wasim;

struct t;

typedef struct hostile {
    struct t *x;
    uv_tcp_t srv;
    const pre_case *pc;
    unsigned conns; /* accepted so far */
    int port;
} hostile;

typedef struct member {
    struct t *x;
    unsigned idx;
    wa_client *c;
    const pre_case *pre;
    const post_case *post;
    hostile *h;
    char jid[FLEET_JID_MAX];
    int connected;
    unsigned connects, disconnects, n_ev;
    int reason[MAX_EVENTS], code[MAX_EVENTS], retry[MAX_EVENTS];
    unsigned retry_ms[MAX_EVENTS];
    char text[160];
    char marker[32];
    int marker_seen;
    char log[LOG_CAP];
    size_t loglen;
} member;

typedef struct t {
    uv_loop_t loop;
    const char *wasim_bin;
    char dir[64], store_path[128], err_path[128], log_path[128];
    FILE *logf;
    wasim sim;
    fleet_ctl *ctl;
    wa_store *store;
    uint8_t root[32];
    int sim_port;
    member m[N_ALL];
    hostile h[N_PRE];
    int pass, fail;
} t;

static void ok(t *x, int cond, const char *what)
{
    if (cond)
        x->pass++;
    else
        x->fail++;
    printf("%s - %s\n", cond ? "ok  " : "FAIL", what);
}

/* ---- wasim as a child process (as in clients100) -------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t want, uv_buf_t *buf)
{
    wasim *w = h->data;

    (void)want;
    if (w->len >= sizeof w->line - 1)
        w->len = 0;
    buf->base = w->line + w->len;
    buf->len = sizeof w->line - 1 - w->len;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    wasim *w = st->data;
    char *nl;

    (void)buf;
    if (nread <= 0)
        return;
    w->len += (size_t)nread;
    w->line[w->len] = '\0';
    while ((nl = strchr(w->line, '\n'))) {
        *nl = '\0';
        if (sscanf(w->line, "wasim ready ws=%127s control=%127s", w->ws, w->control) == 2)
            w->ready = 1;
        memmove(w->line, nl + 1, strlen(nl + 1) + 1);
        w->len = strlen(w->line);
    }
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    wasim *w = p->data;

    (void)status;
    (void)sig;
    w->exited = 1;
    uv_close((uv_handle_t *)p, NULL);
}

static void on_pipe_closed(uv_handle_t *h)
{
    (void)h;
}

static int sim_ready(void *ud)
{
    wasim *w = ud;
    return w->ready || w->exited;
}

static int sim_gone(void *ud)
{
    return ((wasim *)ud)->exited;
}

static int sim_start(t *x)
{
    wasim *w = &x->sim;
    char *args[] = {(char *)x->wasim_bin, "--listen",    "127.0.0.1:0", "--control",
                    "127.0.0.1:0",        "--log-level", "warn",        NULL};
    uv_process_options_t po;
    uv_stdio_container_t io[3];
    FILE *err = fopen(x->err_path, "a");
    const char *p;

    if (!err)
        return -1;
    memset(w, 0, sizeof *w);
    uv_pipe_init(&x->loop, &w->out, 0);
    w->out.data = w;
    w->proc.data = w;
    memset(&po, 0, sizeof po);
    io[0].flags = UV_IGNORE;
    io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    io[1].data.stream = (uv_stream_t *)&w->out;
    io[2].flags = UV_INHERIT_FD;
    io[2].data.fd = fileno(err);
    po.file = x->wasim_bin;
    po.args = args;
    po.stdio = io;
    po.stdio_count = 3;
    po.exit_cb = on_exit_cb;
    if (uv_spawn(&x->loop, &w->proc, &po) != 0) {
        fclose(err);
        uv_close((uv_handle_t *)&w->out, on_pipe_closed);
        return -1;
    }
    fclose(err);
    w->running = 1;
    uv_read_start((uv_stream_t *)&w->out, on_alloc, on_read);
    fleet_run_until(&x->loop, sim_ready, w, 15000);
    uv_read_stop((uv_stream_t *)&w->out);
    uv_close((uv_handle_t *)&w->out, on_pipe_closed);
    if (!w->ready)
        return -1;
    p = strrchr(w->ws, ':'); /* ws://127.0.0.1:PORT/ws/chat */
    x->sim_port = p ? atoi(p + 1) : 0;
    return x->sim_port > 0 ? 0 : -1;
}

static void sim_kill(t *x, int sig)
{
    if (!x->sim.running || x->sim.exited)
        return;
    uv_process_kill(&x->sim.proc, sig);
    fleet_run_until(&x->loop, sim_gone, &x->sim, 15000);
    x->sim.running = 0;
}

/* ---- the hostile server --------------------------------------------------------------------- */

/* One accepted connection: hostile for the listener's first FAIL_FIRST connections, then a
 * relay to wasim. Both handles are always initialised; freed when both are closed. */
typedef struct hconn {
    hostile *h;
    uv_tcp_t tcp, up;
    uv_connect_t creq;
    wa_ws ws;
    wa_buf in;    /* relay: bytes from the client before the upstream is connected */
    int relay;    /* relaying to wasim */
    int up_ready; /* upstream connected */
    int acted;    /* the hostile answer is out */
    int closing;  /* close started */
    int open_handles;
} hconn;

typedef struct wreq {
    uv_write_t req;
    hconn *hc;
    int close_after;
    uint8_t data[];
} wreq;

static void hconn_handle_closed(uv_handle_t *hd)
{
    hconn *hc = hd->data;

    if (--hc->open_handles == 0) {
        wa_ws_cleanup(&hc->ws);
        wa_buf_cleanup(&hc->in);
        free(hc);
    }
}

static void hconn_close(hconn *hc)
{
    if (hc->closing)
        return;
    hc->closing = 1;
    uv_close((uv_handle_t *)&hc->tcp, hconn_handle_closed);
    uv_close((uv_handle_t *)&hc->up, hconn_handle_closed);
}

static void on_written(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;

    if (status || w->close_after)
        hconn_close(w->hc);
    free(w);
}

/* Write a copy of p to `to` (the client or the upstream); close the connection once it is out
 * when close_after is set. */
static void hwrite(hconn *hc, uv_tcp_t *to, const void *p, size_t n, int close_after)
{
    wreq *w;
    uv_buf_t b;

    if (hc->closing)
        return;
    w = malloc(sizeof *w + (n ? n : 1));
    if (!w) {
        hconn_close(hc);
        return;
    }
    w->hc = hc;
    w->close_after = close_after;
    memcpy(w->data, p, n);
    b = uv_buf_init((char *)w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)to, &b, 1, on_written) != 0) {
        free(w);
        hconn_close(hc);
    }
}

static void on_alloc_big(uv_handle_t *h, size_t want, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(want);
    buf->len = buf->base ? want : 0;
}

static void on_up_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    hconn *hc = st->data;

    if (nread > 0)
        hwrite(hc, &hc->tcp, buf->base, (size_t)nread, 0);
    else if (nread < 0)
        hconn_close(hc);
    free(buf->base);
}

static void on_up_connect(uv_connect_t *req, int status)
{
    hconn *hc = req->data;

    if (hc->closing)
        return;
    if (status) {
        hconn_close(hc);
        return;
    }
    hc->up_ready = 1;
    if (hc->in.len)
        hwrite(hc, &hc->up, hc->in.data, hc->in.len, 0);
    wa_buf_cleanup(&hc->in);
    uv_read_start((uv_stream_t *)&hc->up, on_alloc_big, on_up_read);
}

/* The hostile answer once the upgrade request is complete. */
static void act(hconn *hc)
{
    static const uint8_t deadbeef[4] = {0xde, 0xad, 0xbe, 0xef};
    uint8_t payload[3 + 64];
    wa_buf out;
    size_t i;
    int close_after = 0;

    hc->acted = 1;
    wa_buf_init(&out, 1 << 16);
    if (hc->h->pc->mode == M_NOT_HTTP) {
        static const char line[] = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\r\n";
        hwrite(hc, &hc->tcp, line, sizeof line - 1, 0);
        wa_buf_cleanup(&out);
        return;
    }
    if (wa_ws_server_accept(&hc->ws, NULL, &out) != 0) {
        wa_buf_cleanup(&out);
        hconn_close(hc);
        return;
    }
    switch (hc->h->pc->mode) {
    case M_GARBAGE: /* a 64-byte frame of de ad be ef: not a HandshakeMessage protobuf */
        payload[0] = 0, payload[1] = 0, payload[2] = 64;
        for (i = 0; i < 64; i++)
            payload[3 + i] = deadbeef[i % 4];
        wa_ws_send(&hc->ws, WA_WS_OP_BINARY, payload, sizeof payload, &out);
        break;
    case M_HS_BIG: /* a frame header announcing 16 MiB - 1 during the handshake */
        memset(payload, 0, sizeof payload);
        payload[0] = payload[1] = payload[2] = 0xff;
        wa_ws_send(&hc->ws, WA_WS_OP_BINARY, payload, 3 + 16, &out);
        break;
    case M_WS_BIG: { /* FIN+binary, 64-bit length 2^40, then a little of it */
        static const uint8_t hdr[] = {0x82, 0x7f, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4};
        wa_buf_append(&out, hdr, sizeof hdr);
        break;
    }
    case M_TRUNC: /* a frame announcing 1000 bytes, 10 of them, then the end */
        memset(payload, 0x55, sizeof payload);
        payload[0] = 0, payload[1] = 0x03, payload[2] = 0xe8;
        wa_ws_send(&hc->ws, WA_WS_OP_BINARY, payload, 3 + 10, &out);
        close_after = 1;
        break;
    default: /* M_STALL: the upgrade, then silence */
        break;
    }
    hwrite(hc, &hc->tcp, out.data, out.len, close_after);
    wa_buf_cleanup(&out);
}

static void on_client_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    hconn *hc = st->data;
    wa_ws_event ev;

    if (nread < 0) {
        hconn_close(hc);
        goto out;
    }
    if (nread == 0 || hc->closing)
        goto out;
    if (hc->relay) {
        if (hc->up_ready)
            hwrite(hc, &hc->up, buf->base, (size_t)nread, 0);
        else if (wa_buf_append(&hc->in, buf->base, (size_t)nread) != 0)
            hconn_close(hc);
        goto out;
    }
    if (hc->acted)
        goto out; /* the client's hello and anything after it: ignored */
    if (hc->h->pc->mode == M_CLOSE) {
        hconn_close(hc);
        goto out;
    }
    if (wa_ws_feed(&hc->ws, (const uint8_t *)buf->base, (size_t)nread) != 0) {
        hconn_close(hc);
        goto out;
    }
    if (wa_ws_next_event(&hc->ws, &ev) == 0 && ev.type == WA_WS_EV_HANDSHAKE_REQUEST)
        act(hc);
out:
    free(buf->base);
}

static void on_hostile_conn(uv_stream_t *srv, int status)
{
    hostile *h = srv->data;
    hconn *hc;

    if (status)
        return;
    hc = calloc(1, sizeof *hc);
    if (!hc)
        return;
    hc->h = h;
    uv_tcp_init(&h->x->loop, &hc->tcp);
    uv_tcp_init(&h->x->loop, &hc->up);
    hc->tcp.data = hc->up.data = hc->creq.data = hc;
    hc->open_handles = 2;
    wa_ws_init(&hc->ws, WA_WS_SERVER, 0);
    wa_buf_init(&hc->in, 1 << 16);
    if (uv_accept(srv, (uv_stream_t *)&hc->tcp) != 0) {
        hconn_close(hc);
        return;
    }
    if (++h->conns > FAIL_FIRST) {
        struct sockaddr_in sa;
        hc->relay = 1;
        uv_ip4_addr("127.0.0.1", h->x->sim_port, &sa);
        if (uv_tcp_connect(&hc->creq, &hc->up, (const struct sockaddr *)&sa, on_up_connect)) {
            hconn_close(hc);
            return;
        }
    }
    uv_read_start((uv_stream_t *)&hc->tcp, on_alloc_big, on_client_read);
}

static int hostile_start(t *x, hostile *h, const pre_case *pc)
{
    struct sockaddr_in sa;
    struct sockaddr_storage ss;
    int len = sizeof ss;

    h->x = x;
    h->pc = pc;
    uv_tcp_init(&x->loop, &h->srv);
    h->srv.data = h;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    if (uv_tcp_bind(&h->srv, (const struct sockaddr *)&sa, 0) != 0 ||
        uv_listen((uv_stream_t *)&h->srv, 64, on_hostile_conn) != 0 ||
        uv_tcp_getsockname(&h->srv, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

/* ---- the clients ---------------------------------------------------------------------------- */

static member *member_of(t *x, const char *msg)
{
    unsigned i;

    if (strncmp(msg, "[b", 2) != 0)
        return NULL;
    i = (unsigned)strtoul(msg + 2, NULL, 10);
    return i < N_ALL ? &x->m[i] : NULL;
}

static void log_sink(int level, const char *component, const char *msg, void *ud)
{
    t *x = ud;
    member *m = member_of(x, msg);
    size_t n = strlen(msg);

    if (x->logf)
        fprintf(x->logf, "%s %s: %s\n", wa_log_level_name(level), component, msg);
    if (m && m->loglen + n + 2 < sizeof m->log) {
        memcpy(m->log + m->loglen, msg, n);
        m->loglen += n;
        m->log[m->loglen++] = '\n';
        m->log[m->loglen] = '\0';
    }
}

static void on_connected(wa_client *c, void *ud)
{
    member *m = ud;

    (void)c;
    m->connected = 1;
    m->connects++;
}

static void on_disconnected(wa_client *c, const wa_client_disconnect_info *info, void *ud)
{
    member *m = ud;

    (void)c;
    m->connected = 0;
    if (m->n_ev < MAX_EVENTS) {
        m->reason[m->n_ev] = info->reason;
        m->code[m->n_ev] = info->code;
        m->retry[m->n_ev] = info->will_retry;
        m->retry_ms[m->n_ev] = info->retry_ms;
        m->n_ev++;
    }
    m->disconnects++;
    snprintf(m->text, sizeof m->text, "%s", info->text ? info->text : "");
}

static int on_stanza(wa_client *c, const struct wa_node *n, void *ud)
{
    member *m = ud;
    const char *id = wa_node_attr(n, "id");

    (void)c;
    if (m->marker[0] && id && wa_node_is(n, "notification") && !strcmp(id, m->marker))
        m->marker_seen = 1;
    return 0;
}

static int member_start(t *x, member *m, const char *url, unsigned connect_timeout_ms)
{
    wa_client_callbacks cbs;
    wa_client_config cfg;
    char account[32];

    memset(&cbs, 0, sizeof cbs);
    cbs.connected = on_connected;
    cbs.disconnected = on_disconnected;
    cbs.stanza = on_stanza;
    memset(&cfg, 0, sizeof cfg);
    snprintf(account, sizeof account, "b%u", m->idx);
    cfg.account = account;
    cfg.ws_url = url;
    cfg.root_key = x->root;
    cfg.connect_timeout_ms = connect_timeout_ms;
    cfg.reconnect_base_ms = BASE_MS;
    cfg.reconnect_max_ms = MAX_MS;
    if (wa_client_new(&x->loop, x->store, &cfg, &cbs, m, &m->c) != 0)
        return -1;
    return wa_client_start(m->c) == 0 ? 0 : -1;
}

/* ---- waits and checks ----------------------------------------------------------------------- */

typedef struct snap {
    unsigned connects[N_ALL], disconnects[N_ALL];
} snap;

static void take_snap(const t *x, snap *s)
{
    unsigned i;

    for (i = 0; i < N_ALL; i++) {
        s->connects[i] = x->m[i].connects;
        s->disconnects[i] = x->m[i].disconnects;
    }
}

/* How many members outside [from, to) had a connect or disconnect since the snapshot; their
 * names in `names`. */
static unsigned others_moved(const t *x, const snap *s, unsigned from, unsigned to, char *names,
                             size_t cap)
{
    unsigned i, k = 0;
    size_t len = 0;

    names[0] = '\0';
    for (i = 0; i < N_ALL; i++) {
        if (i >= from && i < to)
            continue;
        if (x->m[i].connects != s->connects[i] || x->m[i].disconnects != s->disconnects[i]) {
            k++;
            if (len + 8 < cap)
                len += (size_t)snprintf(names + len, cap - len, " b%u", i);
        }
    }
    return k;
}

typedef struct range {
    t *x;
    unsigned from, to;
} range;

static int range_connected(void *ud)
{
    range *r = ud;
    unsigned i;

    for (i = r->from; i < r->to; i++)
        if (!r->x->m[i].connected)
            return 0;
    return 1;
}

static int pre_done(void *ud)
{
    range *r = ud;
    unsigned i;

    for (i = r->from; i < r->to; i++) {
        const member *m = &r->x->m[i];
        /* logged in, or given up (then the checks say why) */
        if (!m->connected && !(m->n_ev && !m->retry[m->n_ev - 1]))
            return 0;
    }
    return 1;
}

static int post_done(void *ud)
{
    member *m = ud;

    if (m->post->reason)
        return m->disconnects > 0 && m->connected;
    return m->marker_seen || m->disconnects > 0;
}

static long long stat_of(const char *json, const char *key)
{
    char pat[64];
    const char *p;

    if (!json)
        return -1;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = strstr(json, pat);
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/* Backoff of the attempt-th retry in a row (0-based): within [cap/2, cap]. */
static int backoff_ok(unsigned attempt, unsigned ms)
{
    unsigned cap = attempt >= 8 ? MAX_MS : BASE_MS << attempt;

    if (cap > MAX_MS)
        cap = MAX_MS;
    return ms >= cap / 2 && ms <= cap;
}

static int inject(t *x, const member *m, const char *json)
{
    char path[256], *body = NULL;
    int rc;

    snprintf(path, sizeof path, "/devices/%s/inject", m->jid);
    rc = fleet_ctl_call(x->ctl, "POST", path, json, &body);
    if (rc != 200)
        fprintf(stderr, "badserver: inject into %s: %d %s\n", m->jid, rc, body ? body : "");
    free(body);
    return rc;
}

/* ---- the scenario --------------------------------------------------------------------------- */

static int pair_all(t *x)
{
    fleet_opts fo;
    fleet *f;
    uint64_t t0 = fleet_now_ms();
    unsigned i;
    int done = 0;

    memset(&fo, 0, sizeof fo);
    fo.ws_url = x->sim.ws;
    fo.root_key = x->root;
    fo.reconnect_base_ms = 200;
    fo.reconnect_max_ms = 2000;
    fo.account_prefix = "b";
    fo.phone_base = PHONE_BASE;
    if (fleet_new(&x->loop, x->store, x->ctl, &fo, N_ALL, &f) != 0)
        return -1;
    for (i = 0; i < N_ALL; i++)
        fleet_start(f, i);
    while (!done && fleet_now_ms() - t0 < STEP_TIMEOUT_MS) {
        fleet_run_for(&x->loop, 50);
        done = f->n_connected == N_ALL || f->n_stopped > 0;
    }
    for (i = 0; i < N_ALL; i++)
        snprintf(x->m[i].jid, sizeof x->m[i].jid, "%s", f->m[i].jid);
    done = f->n_connected == N_ALL && f->n_paired == N_ALL;
    fleet_free(f);
    fleet_run_for(&x->loop, 200); /* the clients' handles close */
    return done ? 0 : -1;
}

static void run_pre(t *x)
{
    range r = {x, N_HEALTHY, N_HEALTHY + N_PRE};
    char msg[512], names[128];
    unsigned i, k;
    snap s;

    take_snap(x, &s);
    for (i = 0; i < N_PRE; i++) {
        member *m = &x->m[N_HEALTHY + i];
        char url[96];
        if (hostile_start(x, &x->h[i], m->pre) != 0) {
            ok(x, 0, "hostile listener starts");
            return;
        }
        m->h = &x->h[i];
        snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws/chat", x->h[i].port);
        member_start(x, m, url, m->pre->mode == M_STALL ? STALL_TIMEOUT : 0);
    }
    fleet_run_until(&x->loop, pre_done, &r, STEP_TIMEOUT_MS);
    for (i = 0; i < N_PRE; i++) {
        member *m = &x->m[N_HEALTHY + i];
        int reasons_ok = m->n_ev >= FAIL_FIRST, delays_ok = m->n_ev >= FAIL_FIRST;
        char delays[96] = "";
        size_t dl = 0;
        for (k = 0; k < m->n_ev && k < FAIL_FIRST; k++) {
            reasons_ok = reasons_ok && m->reason[k] == m->pre->reason && m->retry[k] == 1;
            delays_ok = delays_ok && backoff_ok(k, m->retry_ms[k]);
            dl += (size_t)snprintf(delays + dl, sizeof delays - dl, "%s%u", k ? "," : "",
                                   m->retry_ms[k]);
        }
        snprintf(msg, sizeof msg,
                 "server %s: %u disconnects, reason %s (want %s, will_retry), retry_ms %s "
                 "(want [c/2,c], c=min(%u,%u<<n)); %s",
                 m->pre->what, m->disconnects,
                 m->n_ev ? wa_disconnect_reason_name(m->reason[0]) : "-",
                 wa_disconnect_reason_name(m->pre->reason), delays, MAX_MS, BASE_MS,
                 m->connected ? "then logs in through the relay" : "never logged in");
        /* more than FAIL_FIRST only if the relayed login itself timed out on a loaded machine */
        ok(x, reasons_ok && delays_ok && m->connected && m->h->conns > FAIL_FIRST, msg);
        snprintf(msg, sizeof msg, "server %s: the client logged the disconnect with its reason",
                 m->pre->what);
        {
            char want[64];
            snprintf(want, sizeof want, "disconnected: %s",
                     wa_disconnect_reason_name(m->pre->reason));
            ok(x, strstr(m->log, want) != NULL, msg);
        }
    }
    /* the backoff grows (third retry window above the first's) and is capped */
    {
        unsigned grew = 0, capped = 0;
        for (i = 0; i < N_PRE; i++) {
            const member *m = &x->m[N_HEALTHY + i];
            if (m->n_ev >= FAIL_FIRST && m->retry_ms[2] > m->retry_ms[0])
                grew++;
            if (m->n_ev >= FAIL_FIRST && m->retry_ms[3] <= MAX_MS)
                capped++;
        }
        snprintf(msg, sizeof msg, "backoff grows in %u of %u and stays under the cap in %u", grew,
                 (unsigned)N_PRE, capped);
        ok(x, grew == N_PRE && capped == N_PRE, msg);
    }
    k = others_moved(x, &s, N_HEALTHY, N_HEALTHY + N_PRE, names, sizeof names);
    snprintf(msg, sizeof msg, "the other %u clients on the loop saw no event meanwhile (moved:%s)",
             (unsigned)(N_ALL - N_PRE), k ? names : " none");
    ok(x, k == 0, msg);
}

static void run_post(t *x)
{
    char msg[600], names[128];
    unsigned i, k;

    for (i = 0; i < N_POST; i++) {
        unsigned idx = N_HEALTHY + N_PRE + i;
        member *m = &x->m[idx];
        const post_case *pc = m->post;
        char mark[256];
        snap s;
        int rc, good;

        m->loglen = 0;
        m->log[0] = '\0';
        m->n_ev = 0;
        m->marker_seen = 0;
        snprintf(m->marker, sizeof m->marker, "mark-%u", i);
        take_snap(x, &s);
        rc = inject(x, m, pc->node);
        if (rc != 200) {
            snprintf(msg, sizeof msg, "%s: wasim injects it (HTTP %d)", pc->name, rc);
            ok(x, 0, msg);
            continue;
        }
        if (!pc->reason) { /* the marker follows the bad stanza on the same connection */
            snprintf(mark, sizeof mark,
                     "{\"tag\":\"notification\",\"attrs\":{\"id\":\"%s\",\"type\":\"badserver\","
                     "\"from\":\"s.whatsapp.net\"}}",
                     m->marker);
            inject(x, m, mark);
        }
        fleet_run_until(&x->loop, post_done, m, CASE_TIMEOUT_MS);
        if (!pc->reason) {
            good = m->marker_seen && m->disconnects == s.disconnects[idx] && m->connected;
            snprintf(msg, sizeof msg, "%s: ignored, the connection stays (%s%s)", pc->name,
                     m->marker_seen ? "the next stanza arrives" : "no next stanza",
                     m->disconnects != s.disconnects[idx] ? ", DISCONNECTED" : "");
        } else {
            good = m->n_ev == 1 && m->reason[0] == pc->reason && m->code[0] == pc->code &&
                   m->retry[0] == 1 && backoff_ok(0, m->retry_ms[0]) && m->connected &&
                   m->connects == s.connects[idx] + 1;
            snprintf(msg, sizeof msg,
                     "%s: disconnected %s (%d, \"%s\"), will_retry %d after %u ms (want %s %d, "
                     "retry in [%u,%u]), %s",
                     pc->name, m->n_ev ? wa_disconnect_reason_name(m->reason[0]) : "-",
                     m->n_ev ? m->code[0] : 0, m->text, m->n_ev ? m->retry[0] : -1,
                     m->n_ev ? m->retry_ms[0] : 0, wa_disconnect_reason_name(pc->reason), pc->code,
                     BASE_MS / 2, BASE_MS,
                     m->connected ? "logged in again" : "NOT logged in again");
        }
        ok(x, good, msg);
        if (pc->log) {
            snprintf(msg, sizeof msg, "%s: the client logs \"%s\"", pc->name, pc->log);
            ok(x, strstr(m->log, pc->log) != NULL, msg);
        }
        k = others_moved(x, &s, idx, idx + 1, names, sizeof names);
        snprintf(msg, sizeof msg, "%s: the other %u clients saw no event (moved:%s)", pc->name,
                 (unsigned)N_ALL - 1, k ? names : " none");
        ok(x, k == 0, msg);
    }
}

static int run(t *x)
{
    range all = {x, 0, N_ALL}, firsts = {x, 0, 0};
    char msg[256], *st = NULL;
    unsigned i, k;

    if (sim_start(x) != 0) {
        ok(x, 0, "wasim starts");
        return 1;
    }
    if (fleet_ctl_new(&x->loop, x->sim.control, &x->ctl) != 0)
        return 1;
    if (fleet_ctl_call(x->ctl, "GET", "/root-key", NULL, &st) != 200 || !st ||
        wa_hex_decode(x->root, sizeof x->root, st, 64) != 0) {
        ok(x, 0, "GET /root-key");
        free(st);
        return 1;
    }
    free(st);
    st = NULL;
    if (wa_store_open(x->store_path, NULL, &x->store) != 0)
        return 1;
    snprintf(msg, sizeof msg, "%u accounts paired with wasim", (unsigned)N_ALL);
    if (pair_all(x) != 0) {
        ok(x, 0, msg);
        return 1;
    }
    ok(x, 1, msg);

    /* healthy clients and post-login victims log in to wasim directly */
    for (i = 0; i < N_ALL; i++) {
        member *m = &x->m[i];
        m->x = x;
        m->idx = i;
        if (i >= N_HEALTHY && i < N_HEALTHY + N_PRE)
            m->pre = &pre_cases[i - N_HEALTHY];
        else if (i >= N_HEALTHY + N_PRE)
            m->post = &post_cases[i - N_HEALTHY - N_PRE];
    }
    for (i = 0; i < N_ALL; i++)
        if (!x->m[i].pre)
            member_start(x, &x->m[i], x->sim.ws, 0);
    firsts.to = N_HEALTHY;
    {
        /* the healthy block, then the post block */
        range post = {x, N_HEALTHY + N_PRE, N_ALL};
        fleet_run_until(&x->loop, range_connected, &firsts, STEP_TIMEOUT_MS);
        fleet_run_until(&x->loop, range_connected, &post, STEP_TIMEOUT_MS);
        ok(x, range_connected(&firsts) && range_connected(&post),
           "healthy clients and post-login victims log in on one loop");
    }

    run_pre(x);
    run_post(x);

    fleet_run_until(&x->loop, range_connected, &all, 10000);
    k = 0;
    for (i = 0; i < N_HEALTHY; i++)
        k += x->m[i].disconnects + (x->m[i].connects != 1);
    snprintf(msg, sizeof msg,
             "the %u healthy clients stayed connected throughout (one login each, %u "
             "disconnects)",
             N_HEALTHY, k);
    ok(x, k == 0 && range_connected(&firsts), msg);
    if (fleet_ctl_call(x->ctl, "GET", "/stats", NULL, &st) != 200)
        st = NULL;
    snprintf(msg, sizeof msg, "all %u clients logged in at the end; wasim counts %lld online",
             (unsigned)N_ALL, stat_of(st, "devices_online"));
    ok(x, range_connected(&all) && stat_of(st, "devices_online") == (long long)N_ALL, msg);
    free(st);
    return 0;
}

static void close_all(t *x)
{
    unsigned i;

    for (i = 0; i < N_ALL; i++)
        if (x->m[i].c) {
            wa_client_free(x->m[i].c);
            x->m[i].c = NULL;
        }
    for (i = 0; i < N_PRE; i++)
        if (x->h[i].x)
            uv_close((uv_handle_t *)&x->h[i].srv, NULL);
    fleet_run_for(&x->loop, 200);
}

int main(int argc, char **argv)
{
    static t x;
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        fprintf(stderr, "usage: badserver WASIM\n");
        return 2;
    }
    x.wasim_bin = argv[1];
    snprintf(x.dir, sizeof x.dir, "/tmp/wa-badserver.XXXXXX");
    if (!mkdtemp(x.dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(x.store_path, sizeof x.store_path, "%s/clients.db", x.dir);
    snprintf(x.err_path, sizeof x.err_path, "%s/wasim.err", x.dir);
    snprintf(x.log_path, sizeof x.log_path, "%s/clients.log", x.dir);
    x.logf = fopen(x.log_path, "w");
    wa_log_set_level(WA_LOG_INFO);
    wa_log_set_sink(log_sink, &x);
    uv_loop_init(&x.loop);
    run(&x);
    close_all(&x);
    fleet_ctl_free(x.ctl);
    sim_kill(&x, SIGTERM);
    uv_run(&x.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&x.loop);
    if (x.store)
        wa_store_close(x.store);
    wa_log_set_sink(NULL, NULL);
    if (x.logf)
        fclose(x.logf);
    ok(&x, rc == 0, "the loop closes with no handle left");
    printf("%d passed, %d failed\n", x.pass, x.fail);
    if (x.fail || getenv("BADSERVER_KEEP"))
        printf("logs kept in %s\n", x.dir);
    else if (system(NULL)) {
        char cmd[160];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", x.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "badserver: cannot remove %s\n", x.dir);
    }
    return x.fail ? 1 : 0;
}
