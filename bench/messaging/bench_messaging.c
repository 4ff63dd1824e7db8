/*
 * bench_messaging.c - one libwa client on one core against wasim: 1:1 encrypt+send and
 * receive+decrypt throughput and CPU per message (issue 5's benchmark). Prints figures; asserts
 * nothing. Driven by bench/messaging/run.mjs, which starts wasim, pins the processes and
 * measures Baileys (baileys.mjs) against the same wasim.
 *
 *   bench_messaging pair --url WS --control URL --root-key HEX [--ca FILE] --store FILE
 *                        --account NAME --phone P
 *       Pairs account "<NAME>0" of the store as phone P (QR -> POST /phones/P/scan), waits for
 *       the login as the new device and its prekey upload, exits.
 *   bench_messaging send ... --account NAME --to PHONE --n N [--window W] [--warmup K]
 *       Logs in, lets the offline queue drain, sends K warm-up texts (sessions with every
 *       device of the peer and of our own account are established then), then N texts to
 *       PHONE with at most W (default and maximum WA_CLIENT_MAX_SENDS) waiting for their
 *       server ack. Reports messages/s from the first send to the last server ack and the CPU
 *       time of the process (getrusage) over that window per message.
 *   bench_messaging recv ... --account NAME --n N
 *       Logs in, drains the offline queue, prints "READY" and counts the texts that start with
 *       "bench-msg" (what `send` sends after its warm-up) until N came. Reports messages/s from
 *       the first text after READY (warm-up ones included) to the last, and the CPU time from
 *       READY to the last per text received since READY (warm-up + N: the decryption, the
 *       store commit, the receipt and the ack of each). Counting from READY, not from the
 *       first text, is what keeps Baileys 6.17 honest: it emits messages in batches, after
 *       decrypting them.
 *
 * Common: [--cpu K] pins the process to CPU K (sched_setaffinity) before anything else;
 * [--log-level L]. Progress goes to stderr; the figures to stdout, ending with one line
 * `RESULT {json}`.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/log.h"
#include "core/util.h"
#include "fleet.h"
#include "wa/client.h"
#include "wa/error.h"
#include "wa/store.h"

#define DEFAULT_WINDOW   WA_CLIENT_MAX_SENDS
#define DEFAULT_WARMUP   20
#define QUIET_MS         1500 /* the offline queue counts as drained after this long quiet */
#define LOGIN_TIMEOUT_MS 60000
#define MSG_PREFIX       "bench-msg"
#define WARM_PREFIX      "bench-warm"

enum { PH_IDLE = 0, PH_WARMUP, PH_MEASURE };

typedef struct mb {
    uv_loop_t loop;
    wa_store *store;
    fleet_ctl *ctl;
    fleet *f;
    const char *to;
    unsigned n, window, warmup;
    /* send */
    int phase;
    unsigned target, started, inflight, acked, failed;
    uint64_t t_first_send, t_last_ack;
    /* recv (and the drain of both) */
    uint64_t last_msg_ms;
    int ready;
    unsigned msgs_any, got, warm;
    uint64_t t_first, t_last;
    double cpu_last;
} mb;

static mb *g_mb;

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_messaging pair|send|recv --url WS --control URL --root-key HEX\n"
            "         [--ca FILE] --store FILE --account NAME [--phone P] [--to PHONE] [--n N]\n"
            "         [--window W] [--warmup K] [--cpu K] [--log-level L]\n");
}

static int send_one(mb *b)
{
    char text[128], id[WA_CLIENT_MSG_ID_MAX];
    fleet_member *m = &b->f->m[0];
    int rc;

    snprintf(text, sizeof text, "%s %u: the quick brown fox jumps over the lazy dog",
             b->phase == PH_MEASURE ? MSG_PREFIX : WARM_PREFIX, b->started);
    rc = wa_client_send_text(m->client, b->to, text, NULL, id);
    if (rc == 0) {
        if (b->started == 0)
            b->t_first_send = fleet_now_ms();
        b->started++;
        b->inflight++;
    } else if (rc != WA_ELIMIT) {
        fprintf(stderr, "bench: send: %s\n", wa_strerror(rc));
        b->started++;
        b->failed++;
    }
    return rc;
}

static void fill(mb *b)
{
    while (b->phase != PH_IDLE && b->started < b->target && b->inflight < b->window)
        if (send_one(b) == WA_ELIMIT)
            break;
}

static void on_sent(wa_client *c, const char *id, int err, void *member)
{
    mb *b = g_mb;

    (void)c;
    (void)id;
    (void)member;
    if (b->phase == PH_IDLE || b->inflight == 0)
        return;
    b->inflight--;
    if (err) {
        b->failed++;
        fprintf(stderr, "bench: send %s failed: %s\n", id, wa_strerror(err));
    } else {
        b->acked++;
    }
    b->t_last_ack = fleet_now_ms();
    fill(b);
}

static void on_message(wa_client *c, const wa_client_message *msg, void *member)
{
    mb *b = g_mb;

    (void)c;
    (void)member;
    b->last_msg_ms = fleet_now_ms();
    b->msgs_any++;
    if (!b->ready || msg->kind != WA_MSG_TEXT)
        return;
    if (!strncmp(msg->text, WARM_PREFIX, strlen(WARM_PREFIX))) {
        if (b->got + b->warm++ == 0)
            b->t_first = b->last_msg_ms;
    } else if (!strncmp(msg->text, MSG_PREFIX, strlen(MSG_PREFIX))) {
        if (b->got++ + b->warm == 0)
            b->t_first = b->last_msg_ms;
        b->t_last = b->last_msg_ms;
        if (b->got == b->n)
            b->cpu_last = fleet_cpu_seconds();
    }
}

static int is_connected(void *ud)
{
    mb *b = ud;

    return b->f->m[0].state == FLEET_CONNECTED || b->f->m[0].state == FLEET_STOPPED;
}

static int is_quiet(void *ud)
{
    mb *b = ud;

    return fleet_now_ms() - b->last_msg_ms >= QUIET_MS;
}

static int send_done(void *ud)
{
    mb *b = ud;

    return b->acked + b->failed >= b->target || b->f->m[0].state == FLEET_STOPPED;
}

static int recv_done(void *ud)
{
    mb *b = ud;

    return b->got >= b->n || b->f->m[0].state == FLEET_STOPPED;
}

/* Log in and let the offline queue drain. 0 or -1. */
static int login(mb *b)
{
    int rc = fleet_start(b->f, 0);

    if (rc) {
        fprintf(stderr, "bench: cannot start the client: %s\n", wa_strerror(rc));
        return -1;
    }
    if (!fleet_run_until(&b->loop, is_connected, b, LOGIN_TIMEOUT_MS) ||
        b->f->m[0].state != FLEET_CONNECTED) {
        fprintf(stderr, "bench: login failed\n");
        return -1;
    }
    b->last_msg_ms = fleet_now_ms();
    fleet_run_until(&b->loop, is_quiet, b, 120000);
    fprintf(stderr, "bench: logged in as %s (%u messages drained)\n", b->f->m[0].jid, b->msgs_any);
    return 0;
}

static int run_pair(mb *b)
{
    if (login(b) != 0)
        return 1;
    fleet_run_for(&b->loop, 2000); /* prekey upload and the rest of the first login */
    printf("pair: %s paired\n", b->f->m[0].jid);
    printf("RESULT {\"phase\":\"pair\",\"jid\":\"%s\",\"ok\":true}\n", b->f->m[0].jid);
    return 0;
}

static int run_send(mb *b)
{
    double c0, c1, secs;
    int ok;

    if (login(b) != 0)
        return 1;
    /* warm-up: device lists, sessions (pkmsg -> msg once answered), the store's caches */
    b->phase = PH_WARMUP;
    b->target = b->warmup;
    fill(b);
    fleet_run_until(&b->loop, send_done, b, 60000);
    fleet_run_for(&b->loop, 1000); /* receipts of the warm-up */
    fprintf(stderr, "bench: warm-up: %u acked, %u failed\n", b->acked, b->failed);
    b->started = b->inflight = b->acked = b->failed = 0;
    b->phase = PH_MEASURE;
    b->target = b->n;
    c0 = fleet_cpu_seconds();
    fill(b);
    ok = fleet_run_until(&b->loop, send_done, b, 60000 + b->n * 20);
    c1 = fleet_cpu_seconds();
    b->phase = PH_IDLE;
    secs = (double)(b->t_last_ack - b->t_first_send) / 1000.0;
    if (secs <= 0)
        secs = 0.001;
    printf("send: %u texts to %s, %u in flight at most: %u acked, %u failed in %.2f s: %.0f "
           "msgs/s; CPU %.3f s: %.1f us per message\n",
           b->n, b->to, b->window, b->acked, b->failed, secs, b->acked / secs, c1 - c0,
           b->acked ? (c1 - c0) * 1e6 / b->acked : -1.0);
    printf("RESULT {\"phase\":\"send\",\"impl\":\"libwa\",\"n\":%u,\"window\":%u,\"acked\":%u,"
           "\"failed\":%u,\"seconds\":%.3f,\"msgs_per_s\":%.1f,\"cpu_s\":%.4f,"
           "\"cpu_us_per_msg\":%.2f,\"ok\":%s}\n",
           b->n, b->window, b->acked, b->failed, secs, b->acked / secs, c1 - c0,
           b->acked ? (c1 - c0) * 1e6 / b->acked : -1.0, ok && b->acked == b->n ? "true" : "false");
    fleet_run_for(&b->loop, 500);
    return ok && b->acked == b->n ? 0 : 1;
}

static int run_recv(mb *b)
{
    double secs, cpu, c0;
    unsigned total, k;
    int ok;

    if (login(b) != 0)
        return 1;
    b->ready = 1;
    c0 = fleet_cpu_seconds();
    printf("READY\n");
    fflush(stdout);
    ok = fleet_run_until(&b->loop, recv_done, b, 120000 + b->n * 50);
    if (b->got < b->n)
        b->cpu_last = fleet_cpu_seconds();
    total = b->got + b->warm;      /* texts received since READY */
    k = total > 1 ? total - 1 : 0; /* ... after the first one */
    secs = (double)(b->t_last - b->t_first) / 1000.0;
    if (secs <= 0)
        secs = 0.001;
    cpu = b->cpu_last - c0;
    printf("recv: %u of %u texts (+%u warm-up) in %.2f s (first to last): %.0f msgs/s; CPU %.3f "
           "s: %.1f us per message\n",
           b->got, b->n, b->warm, secs, k / secs, cpu, total ? cpu * 1e6 / total : -1.0);
    printf("RESULT {\"phase\":\"recv\",\"impl\":\"libwa\",\"n\":%u,\"got\":%u,\"warm\":%u,"
           "\"seconds\":%.3f,\"msgs_per_s\":%.1f,\"cpu_s\":%.4f,\"cpu_us_per_msg\":%.2f,"
           "\"ok\":%s}\n",
           b->n, b->got, b->warm, secs, k / secs, cpu, total ? cpu * 1e6 / total : -1.0,
           ok && b->got == b->n ? "true" : "false");
    fleet_run_for(&b->loop, 500); /* the last receipts leave */
    return ok && b->got == b->n ? 0 : 1;
}

static int pin_cpu(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

int main(int argc, char **argv)
{
    const char *cmd = NULL, *url = NULL, *control = NULL, *root_hex = NULL, *ca = NULL,
               *store_path = NULL, *account = NULL;
    unsigned long long phone = 0;
    int cpu = -1, i, rc;
    uint8_t root[32];
    fleet_opts fo;
    mb b;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    wa_log_set_level(WA_LOG_ERROR);
    memset(&b, 0, sizeof b);
    b.window = DEFAULT_WINDOW;
    b.warmup = DEFAULT_WARMUP;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "pair") || !strcmp(a, "send") || !strcmp(a, "recv")) {
            cmd = a;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        i++;
        if (!strcmp(a, "--url"))
            url = v;
        else if (!strcmp(a, "--control"))
            control = v;
        else if (!strcmp(a, "--root-key"))
            root_hex = v;
        else if (!strcmp(a, "--ca"))
            ca = v;
        else if (!strcmp(a, "--store"))
            store_path = v;
        else if (!strcmp(a, "--account"))
            account = v;
        else if (!strcmp(a, "--phone"))
            phone = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--to"))
            b.to = v;
        else if (!strcmp(a, "--n"))
            b.n = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--window"))
            b.window = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--warmup"))
            b.warmup = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--cpu"))
            cpu = atoi(v);
        else if (!strcmp(a, "--log-level")) {
            int lvl;
            if (wa_log_level_parse(v, &lvl) == 0)
                wa_log_set_level(lvl);
        } else {
            usage();
            return 2;
        }
    }
    if (!cmd || !url || !control || !root_hex || !store_path || !account ||
        wa_hex_decode(root, sizeof root, root_hex, strlen(root_hex)) != 0 ||
        (!strcmp(cmd, "pair") && !phone) || (!strcmp(cmd, "send") && (!b.to || !b.n)) ||
        (!strcmp(cmd, "recv") && !b.n)) {
        usage();
        return 2;
    }
    if (b.window == 0 || b.window > WA_CLIENT_MAX_SENDS)
        b.window = WA_CLIENT_MAX_SENDS;
    if (cpu >= 0 && pin_cpu(cpu) != 0) {
        perror("bench: sched_setaffinity");
        return 1;
    }
    g_mb = &b;
    uv_loop_init(&b.loop);
    rc = wa_store_open(store_path, NULL, &b.store);
    if (rc) {
        fprintf(stderr, "bench: cannot open the store %s: %s\n", store_path, wa_strerror(rc));
        return 1;
    }
    if (fleet_ctl_new(&b.loop, control, &b.ctl) != 0) {
        fprintf(stderr, "bench: libcurl setup failed\n");
        return 1;
    }
    memset(&fo, 0, sizeof fo);
    fo.ws_url = url;
    fo.root_key = root;
    fo.ca_file = ca;
    fo.connect_timeout_ms = 30000;
    fo.account_prefix = account;
    fo.phone_base = phone;
    fo.message = on_message;
    fo.sent = on_sent;
    if (fleet_new(&b.loop, b.store, b.ctl, &fo, 1, &b.f) != 0)
        return 1;
    if (!strcmp(cmd, "pair"))
        rc = run_pair(&b);
    else if (!strcmp(cmd, "send"))
        rc = run_send(&b);
    else
        rc = run_recv(&b);
    fleet_free(b.f);
    fleet_ctl_free(b.ctl);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    uv_loop_close(&b.loop);
    wa_store_close(b.store);
    return rc;
}
