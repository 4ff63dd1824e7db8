/*
 * clients100.c - issue 4's acceptance item "100 clients on one loop survive wasim being
 * restarted", through libwa's public API (include/wa/client.h) and wasim's control API.
 *
 *   clients100 WASIM [--n 100]
 *
 * Starts wasim (--state FILE, so that it keeps its identity, accounts and devices across a
 * restart) and, on ONE uv loop, N libwa clients sharing one store:
 *   1. pair the N accounts at once (QR text -> POST /phones/{phone}/scan; distinct phones) and
 *      see them log in as the new devices;
 *   2. restart the clients (free them all, reopen the store) and log all N in from the store;
 *   3. wasim refuses connections for 5 s (POST /faults/refuse) and drops every connection
 *      (POST /devices/{jid}/drop): each client reports disconnected{network, will_retry}, its
 *      reconnects are refused while the fault lasts, and all N are logged in again after it;
 *   4. wasim is killed (SIGKILL) and started again on the same ports and state file: all N
 *      reconnect and log in, none gives up, and wasim counts the N devices online.
 * Prints "ok - ..." / "FAIL - ..." lines and exits 1 on any failure.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "core/log.h"
#include "core/util.h"
#include "fleet.h"
#include "wa/client.h"
#include "wa/error.h"
#include "wa/store.h"

#define DEFAULT_N         100
#define PHONE_BASE        15551000000ULL
#define KEEPALIVE_MS      2000
#define RECONNECT_BASE_MS 200
#define RECONNECT_MAX_MS  2000
#define REFUSE_SECONDS    5
#define STEP_TIMEOUT_MS   60000
#define READY_MAX         512 /* the "wasim ready" line */

typedef struct wasim {
    uv_process_t proc;
    uv_pipe_t out;
    char line[READY_MAX];
    size_t len;
    int ready, exited, running;
    char ws[128], control[128];
} wasim;

typedef struct t {
    uv_loop_t loop;
    const char *wasim_bin;
    char dir[64], state[128], store_path[128], err_path[128];
    wasim sim;
    fleet_ctl *ctl;
    wa_store *store;
    fleet *f;
    unsigned n;
    uint8_t root[32];
    char root_hex[65];
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

/* ---- wasim as a child process ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t want, uv_buf_t *buf)
{
    wasim *w = h->data;

    (void)want;
    if (w->len >= sizeof w->line - 1)
        w->len = 0; /* not a ready line: drop it */
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

/* Start wasim on listen/control (e.g. "127.0.0.1:0") with --state. 0 or -1. */
static int sim_start(t *x, const char *listen, const char *control)
{
    wasim *w = &x->sim;
    char *args[] = {(char *)x->wasim_bin,
                    "--listen",
                    (char *)listen,
                    "--control",
                    (char *)control,
                    "--state",
                    x->state,
                    "--log-level",
                    "warn",
                    NULL};
    uv_process_options_t po;
    uv_stdio_container_t io[3];
    FILE *err = fopen(x->err_path, "a");

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
    return w->ready ? 0 : -1;
}

static void sim_kill(t *x, int sig)
{
    if (!x->sim.running || x->sim.exited)
        return;
    uv_process_kill(&x->sim.proc, sig);
    fleet_run_until(&x->loop, sim_gone, &x->sim, 15000);
    x->sim.running = 0;
}

/* "127.0.0.1:PORT" of a "scheme://127.0.0.1:PORT/..." URL into out. */
static void host_port(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    size_t k = 0;

    p = p ? p + 3 : url;
    while (p[k] && p[k] != '/' && k + 1 < cap) {
        out[k] = p[k];
        k++;
    }
    out[k] = '\0';
}

/* ---- checks -------------------------------------------------------------------------------- */

typedef struct wait_n {
    t *x;
    unsigned want;
} wait_n;

static int all_connected(void *ud)
{
    wait_n *w = ud;
    return w->x->f->n_connected >= w->want || w->x->f->n_stopped > 0;
}

static int none_connected(void *ud)
{
    wait_n *w = ud;
    return w->x->f->n_connected == 0;
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

static char *get(t *x, const char *path)
{
    char *body = NULL;

    if (fleet_ctl_call(x->ctl, "GET", path, NULL, &body) != 200) {
        free(body);
        return NULL;
    }
    return body;
}

static int open_fleet(t *x)
{
    fleet_opts fo;

    if (wa_store_open(x->store_path, NULL, &x->store) != 0)
        return -1;
    memset(&fo, 0, sizeof fo);
    fo.ws_url = x->sim.ws;
    fo.root_key = x->root;
    fo.keepalive_ms = KEEPALIVE_MS;
    fo.reconnect_base_ms = RECONNECT_BASE_MS;
    fo.reconnect_max_ms = RECONNECT_MAX_MS;
    fo.account_prefix = "c";
    fo.phone_base = PHONE_BASE;
    return fleet_new(&x->loop, x->store, x->ctl, &fo, x->n, &x->f);
}

static void close_fleet(t *x)
{
    fleet_free(x->f);
    x->f = NULL;
    uv_run(&x->loop, UV_RUN_NOWAIT);
    fleet_run_for(&x->loop, 100); /* the clients' handles close */
    wa_store_close(x->store);
    x->store = NULL;
}

static unsigned start_all(t *x)
{
    unsigned i, started = 0;

    for (i = 0; i < x->n; i++)
        if (fleet_start(x->f, i) == 0)
            started++;
    return started;
}

static unsigned members_stopped(const t *x)
{
    unsigned i, k = 0;

    for (i = 0; i < x->n; i++)
        if (x->f->m[i].state == FLEET_STOPPED)
            k++;
    return k;
}

static int run(t *x)
{
    char msg[256], listen[64], control[64], *st;
    wait_n w = {x, 0};
    unsigned i, paired_jids = 0;
    uint64_t disc0, t0;
    int rc;

    /* wasim */
    if (sim_start(x, "127.0.0.1:0", "127.0.0.1:0") != 0) {
        ok(x, 0, "wasim starts with --state");
        return 1;
    }
    if (fleet_ctl_new(&x->loop, x->sim.control, &x->ctl) != 0)
        return 1;
    st = get(x, "/root-key");
    if (!st || wa_hex_decode(x->root, sizeof x->root, st, 64) != 0) {
        ok(x, 0, "GET /root-key");
        free(st);
        return 1;
    }
    memcpy(x->root_hex, st, 64);
    x->root_hex[64] = '\0';
    free(st);

    /* 1. pairing, all at once */
    if (open_fleet(x) != 0) {
        ok(x, 0, "store and fleet");
        return 1;
    }
    ok(x, start_all(x) == x->n, "all clients start on one loop");
    w.want = x->n;
    t0 = fleet_now_ms();
    fleet_run_until(&x->loop, all_connected, &w, STEP_TIMEOUT_MS);
    snprintf(msg, sizeof msg,
             "%u clients paired by QR at once and logged in as new devices "
             "(%u paired, %u connected, %u scans refused, %.1f s)",
             x->n, x->f->n_paired, x->f->n_connected, x->f->n_scan_errors,
             (fleet_now_ms() - t0) / 1000.0);
    ok(x, x->f->n_paired == x->n && x->f->n_connected == x->n, msg);
    for (i = 0; i < x->n; i++)
        if (strchr(x->f->m[i].jid, ':'))
            paired_jids++;
    ok(x, paired_jids == x->n, "every client has its device JID");

    /* 2. the clients restart: log in from the store */
    close_fleet(x);
    if (open_fleet(x) != 0) {
        ok(x, 0, "store reopened");
        return 1;
    }
    start_all(x);
    t0 = fleet_now_ms();
    fleet_run_until(&x->loop, all_connected, &w, STEP_TIMEOUT_MS);
    snprintf(msg, sizeof msg,
             "after a restart of the clients, %u of %u log in from the store "
             "(%u pairing again, %.1f s)",
             x->f->n_connected, x->n, x->f->n_paired, (fleet_now_ms() - t0) / 1000.0);
    ok(x, x->f->n_connected == x->n && x->f->n_paired == 0, msg);

    /* 3. refuse connections for 5 s, drop every connection */
    disc0 = x->f->retry_disconnects;
    rc = fleet_ctl_call(x->ctl, "POST", "/faults/refuse", "{\"seconds\":5}", NULL);
    ok(x, rc == 200, "POST /faults/refuse {seconds: 5}");
    t0 = fleet_now_ms();
    for (i = 0; i < x->n; i++) {
        char path[256];
        snprintf(path, sizeof path, "/devices/%s/drop", x->f->m[i].jid);
        fleet_ctl_request(x->ctl, "POST", path, NULL, NULL, NULL);
    }
    fleet_run_until(&x->loop, none_connected, &w, 10000);
    snprintf(msg, sizeof msg,
             "every connection dropped: %llu disconnects that retry, %u still "
             "connected",
             (unsigned long long)(x->f->retry_disconnects - disc0), x->f->n_connected);
    ok(x, x->f->n_connected == 0 && x->f->retry_disconnects - disc0 >= x->n, msg);
    fleet_run_until(&x->loop, all_connected, &w, STEP_TIMEOUT_MS);
    st = get(x, "/stats");
    snprintf(msg, sizeof msg,
             "all %u reconnect once the refusal ends (%u connected after %.1f "
             "s; %lld connection attempts refused)",
             x->n, x->f->n_connected, (fleet_now_ms() - t0) / 1000.0,
             st ? stat_of(strstr(st, "\"faults\""), "refused") : -1);
    ok(x,
       x->f->n_connected == x->n && fleet_now_ms() - t0 >= (REFUSE_SECONDS - 1) * 1000u && st &&
           stat_of(strstr(st, "\"faults\""), "refused") > 0,
       msg);
    ok(x, st && stat_of(st, "devices_online") == (long long)x->n,
       "wasim counts every device online after the fault");
    free(st);
    ok(x, members_stopped(x) == 0, "no client gave up");

    /* 4. wasim killed and started again on the same ports and state */
    host_port(x->sim.ws, listen, sizeof listen);
    host_port(x->sim.control, control, sizeof control);
    disc0 = x->f->retry_disconnects;
    fleet_ctl_free(x->ctl);
    x->ctl = NULL;
    x->f->ctl = NULL;
    sim_kill(x, SIGKILL);
    fleet_run_until(&x->loop, none_connected, &w, 10000);
    snprintf(msg, sizeof msg, "wasim killed: %u clients disconnected, all retrying",
             x->n - x->f->n_connected);
    ok(x,
       x->f->n_connected == 0 && x->f->retry_disconnects - disc0 >= x->n && members_stopped(x) == 0,
       msg);
    fleet_run_for(&x->loop, 1000); /* a few refused reconnects */
    if (sim_start(x, listen, control) != 0) {
        ok(x, 0, "wasim starts again on the same ports with the same --state");
        return 1;
    }
    ok(x, 1, "wasim starts again on the same ports with the same --state");
    if (fleet_ctl_new(&x->loop, x->sim.control, &x->ctl) != 0)
        return 1;
    x->f->ctl = x->ctl;
    st = get(x, "/root-key");
    ok(x, st && !strncmp(st, x->root_hex, 64), "the restarted wasim has the same root key");
    free(st);
    t0 = fleet_now_ms();
    fleet_run_until(&x->loop, all_connected, &w, STEP_TIMEOUT_MS);
    snprintf(msg, sizeof msg,
             "all %u clients on the loop log in again after the restart (%u "
             "connected after %.1f s, %u gave up)",
             x->n, x->f->n_connected, (fleet_now_ms() - t0) / 1000.0, members_stopped(x));
    ok(x, x->f->n_connected == x->n && members_stopped(x) == 0, msg);
    st = get(x, "/stats");
    snprintf(msg, sizeof msg,
             "the restarted wasim knows the %u devices and has them online "
             "(devices_online %lld, pairings %lld)",
             x->n, stat_of(st, "devices_online"), stat_of(st, "pairings"));
    ok(x, st && stat_of(st, "devices_online") == (long long)x->n, msg);
    free(st);
    return 0;
}

int main(int argc, char **argv)
{
    t x;
    int i;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    memset(&x, 0, sizeof x);
    x.n = DEFAULT_N;
    if (argc < 2) {
        fprintf(stderr, "usage: clients100 WASIM [--n N]\n");
        return 2;
    }
    x.wasim_bin = argv[1];
    for (i = 2; i + 1 < argc; i += 2)
        if (!strcmp(argv[i], "--n"))
            x.n = (unsigned)strtoul(argv[i + 1], NULL, 10);
    if (!x.n) {
        fprintf(stderr, "clients100: --n wants a positive number\n");
        return 2;
    }
    wa_log_set_level(WA_LOG_ERROR);
    snprintf(x.dir, sizeof x.dir, "/tmp/wa-clients100.XXXXXX");
    if (!mkdtemp(x.dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(x.state, sizeof x.state, "%s/wasim.db", x.dir);
    snprintf(x.store_path, sizeof x.store_path, "%s/clients.db", x.dir);
    snprintf(x.err_path, sizeof x.err_path, "%s/wasim.err", x.dir);
    uv_loop_init(&x.loop);
    run(&x);
    if (x.f)
        close_fleet(&x);
    fleet_ctl_free(x.ctl);
    sim_kill(&x, SIGTERM);
    uv_run(&x.loop, UV_RUN_DEFAULT);
    uv_loop_close(&x.loop);
    printf("%d passed, %d failed\n", x.pass, x.fail);
    if (x.fail)
        printf("logs kept in %s\n", x.dir);
    else if (system(NULL)) {
        char cmd[160];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", x.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "clients100: cannot remove %s\n", x.dir);
    }
    return x.fail ? 1 : 0;
}
