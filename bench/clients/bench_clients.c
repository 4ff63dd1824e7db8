/*
 * bench_clients.c - N libwa clients on ONE uv loop against one wasim (issue 4's benchmark).
 * Prints figures; asserts nothing. Driven by bench/clients/run.mjs, which starts wasim.
 *
 *   bench_clients pair  --url WS --control URL --root-key HEX [--ca FILE] --store FILE --n N
 *                       [--batch B] [--concurrency C] [--phone-base P]
 *       Pairs accounts 0..N-1 of the store as phones P+i (QR text -> POST /phones/{phone}/scan
 *       over libcurl multi on the same loop). The first B (default 100) pair all at once: their
 *       time and the peak RSS of that batch are the "100 accounts paired at once" figures; the
 *       rest pair C at a time (default 200). A pairing counts once the client has logged in as
 *       the new device (pair-success, durable identity, 515, login, prekey upload).
 *   bench_clients login --url WS --control URL --root-key HEX [--ca FILE] --store FILE --n N
 *                       [--ramp K] [--keepalive MS] [--idle-pings P] [--settle MS]
 *       A fresh process (the restart): opens the store, logs the N accounts in (at most K
 *       connecting at a time; 0 = all at once), reports the time from the first start to all N
 *       connected, lets them idle for P keep-alive intervals and reports RSS per client
 *       ((VmRSS_N - VmRSS_before_clients) / N), heap per client (mallinfo2 in-use bytes, same
 *       difference), the RSS again after malloc_trim(0) (what the allocator kept from the
 *       login storm), and CPU per client per keep-alive (getrusage over the idle window / (N x
 *       P)); wasim's /stats gives the pings it answered in the window and its own RSS.
 *   bench_clients route --url WS --control URL --root-key HEX [--ca FILE] --store FILE --n N
 *                       [--window W] [--seconds S] [--wasim-pid PID]
 *       wasim's routing throughput: N clients log in, client i sends to client i + N/2 (W
 *       messages in flight each, default 32) stanzas shaped as a 1:1 message to a one-device
 *       peer with an opaque 64-byte <enc> (wasim copies it without reading it, as the real
 *       server does); the receiver answers a delivery receipt, which wasim forwards to the
 *       sender, who acks it. These stanzas are taken over by the stanza hook, so the client's
 *       own messaging (part 2) is not involved. Reports wasim's messages_routed per second
 *       over S seconds (default 10) and its CPU per routed message (/proc/PID/stat).
 *
 *   bench_clients sessions --store FILE --n N [--sessions K] [--phone-base P]
 *       Offline (no wasim): accounts 0..N-1 of the store (paired) get K Signal sessions each
 *       (default 100), with K distinct synthetic peer devices (phone numbers 19990000000 + j,
 *       device 0), set up as a conversation does: the peer's prekey bundle (signed prekey, no
 *       one-time prekey), our pkmsg, which the peer decrypts, and the peer's answer, which we
 *       decrypt (so each session is acknowledged and has ratcheted once), with lib/signal and
 *       the client's store binding; the peer's identity is stored as well. Then `login` measures
 *       what idle clients keep with a populated store.
 *
 * Progress goes to stderr; the figures to stdout, ending with one line `RESULT {json}`.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "bnode/node.h"
#include "client/client_int.h"
#include "core/arena.h"
#include "core/log.h"
#include "core/util.h"
#include "fleet.h"
#include "signal/memstore.h"
#include "signal/signal.h"
#include "wa/client.h"
#include "wa/error.h"
#include "wa/store.h"

#define DEFAULT_BATCH         100
#define DEFAULT_CONCURRENCY   200
#define DEFAULT_RAMP          500
#define DEFAULT_KEEPALIVE     5000
#define DEFAULT_IDLE_PINGS    4
#define DEFAULT_SETTLE_MS     3000
#define DEFAULT_PHONE_BASE    15550000000ULL
#define DEFAULT_ROUTE_SECONDS 10
#define CONNECT_TIMEOUT_MS    60000 /* per client: a 10,000-connection storm queues handshakes */

typedef struct bench {
    uv_loop_t loop;
    wa_store *store;
    fleet_ctl *ctl;
    fleet *f;
    unsigned n, next, limit; /* members started so far; at most `limit` in flight (0: all) */
    unsigned stop_at;        /* top_up starts members below this index only */
    unsigned settled;        /* members logged in once, or stopped before that */
    unsigned failed;         /* members that could not start or stopped before logging in */
    unsigned *to_close;      /* pair: settled members, to free outside their callbacks */
    unsigned n_close;
    int close_settled;
    unsigned target; /* run_until: members settled */
    uint64_t last_report;
} bench;

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_clients pair|login --url WS --control URL --root-key HEX [--ca FILE]\n"
            "         --store FILE --n N [--batch B] [--concurrency C] [--phone-base P]\n"
            "         [--ramp K] [--keepalive MS] [--idle-pings P] [--settle MS]\n"
            "       bench_clients route ... --store FILE --n N [--window W] [--seconds S]\n"
            "         [--wasim-pid PID]\n"
            "       bench_clients sessions --store FILE --n N [--sessions K] [--phone-base P]\n");
}

static unsigned in_flight(const bench *b)
{
    return b->next - b->settled;
}

static void top_up(bench *b)
{
    while (b->next < b->stop_at && (b->limit == 0 || in_flight(b) < b->limit)) {
        unsigned i = b->next++;
        int rc = fleet_start(b->f, i);
        if (rc) {
            fprintf(stderr, "bench: cannot start client %u: %s\n", i, wa_strerror(rc));
            b->settled++;
            b->failed++;
        }
    }
}

/* A member settles when it first logs in, or stops for good before that. */
static void on_change(fleet *f, fleet_member *m, void *ud)
{
    bench *b = ud;

    (void)f;
    if (m->state == FLEET_CONNECTED && m->connects == 1 && !m->settled) {
        m->settled = 1;
        b->settled++;
    } else if (m->state == FLEET_STOPPED && !m->settled) {
        m->settled = 1;
        b->settled++;
        b->failed++;
    } else {
        return;
    }
    if (b->close_settled)
        b->to_close[b->n_close++] = m->idx;
}

/* The predicate of fleet_run_until: frees settled clients (pairing), starts more, says when
 * `target` members have settled. */
static int progress(void *ud)
{
    bench *b = ud;
    fleet *f = b->f;
    uint64_t now = fleet_now_ms();

    while (b->n_close)
        fleet_close(f, b->to_close[--b->n_close]);
    top_up(b);
    if (now - b->last_report >= 5000) {
        b->last_report = now;
        fprintf(stderr, "bench: started %u, settled %u, connected now %u, paired %u, failed %u\n",
                b->next, b->settled, f->n_connected, f->n_paired, b->failed);
    }
    return b->settled >= b->target;
}

static double kib_per(long a, long b, unsigned n)
{
    return n ? (double)(a - b) / n : 0;
}

/* An integer field of a flat JSON object (wasim's /stats), or -1. */
static long long json_int(const char *json, const char *key)
{
    char pat[64];
    const char *p;

    if (!json)
        return -1;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = strstr(json, pat);
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

static char *get_stats(bench *b)
{
    char *body = NULL;
    int st = fleet_ctl_call(b->ctl, "GET", "/stats", NULL, &body);

    if (st != 200) {
        fprintf(stderr, "bench: GET /stats: %d\n", st);
        free(body);
        return NULL;
    }
    return body;
}

static int run_pair(bench *b, unsigned batch, unsigned concurrency)
{
    fleet *f = b->f;
    fleet_mem m0, m1, m2;
    uint64_t t0, t1, t2, t3;
    double c0, c1, c2;
    unsigned first = batch < b->n ? batch : b->n, i;
    int ok, ok2 = 1;

    b->to_close = calloc(b->n ? b->n : 1, sizeof *b->to_close);
    if (!b->to_close)
        return 1;
    fleet_mem_read(&m0);
    fleet_mem_reset_peak();
    /* the first batch: all at once, kept connected until measured */
    t0 = fleet_now_ms();
    c0 = fleet_cpu_seconds();
    b->limit = 0;
    b->target = b->stop_at = first;
    for (i = 0; i < first; i++)
        if (fleet_start(f, i) != 0) {
            b->settled++;
            b->failed++;
        }
    b->next = first;
    ok = fleet_run_until(&b->loop, progress, b, 120000 + first * 200);
    t1 = fleet_now_ms();
    c1 = fleet_cpu_seconds();
    fleet_mem_read(&m1);
    printf("pair: %u accounts paired at once: %s in %.2f s (%u paired, %u logged in, %u "
           "failed, %u scans refused); peak RSS %ld KiB (%ld KiB above the %ld KiB before), "
           "CPU %.2f s\n",
           first, ok ? "done" : "TIMED OUT", (t1 - t0) / 1000.0, f->n_paired, f->n_ever, b->failed,
           f->n_scan_errors, m1.hwm_kib, m1.hwm_kib - m0.rss_kib, m0.rss_kib, c1 - c0);
    for (i = 0; i < first; i++)
        fleet_close(f, i);
    /* the rest: `concurrency` at a time, each freed once it has logged in */
    b->close_settled = 1;
    b->limit = concurrency;
    b->target = b->stop_at = b->n;
    t2 = fleet_now_ms();
    c2 = fleet_cpu_seconds();
    if (b->n > first)
        ok2 = fleet_run_until(&b->loop, progress, b, 600000 + b->n * 200);
    while (b->n_close)
        fleet_close(f, b->to_close[--b->n_close]);
    t3 = fleet_now_ms();
    fleet_mem_read(&m2);
    ok = ok && ok2 && f->n_paired == b->n && b->failed == 0;
    printf("pair: all %u accounts: %s, %u paired, %u failed in %.1f s (%.1f pairings/s after "
           "the first batch, %u at a time); peak RSS %ld KiB\n",
           b->n, ok ? "done" : "INCOMPLETE", f->n_paired, b->failed, (t3 - t0) / 1000.0,
           b->n > first ? (b->n - first) / ((t3 - t2) / 1000.0) : 0.0, concurrency, m2.hwm_kib);
    printf("RESULT {\"phase\":\"pair\",\"n\":%u,\"paired\":%u,\"failed\":%u,\"batch\":%u,"
           "\"batch_s\":%.3f,\"batch_peak_rss_kib\":%ld,\"rss_before_kib\":%ld,"
           "\"batch_cpu_s\":%.3f,\"total_s\":%.3f,\"rest_cpu_s\":%.3f,\"ok\":%s}\n",
           b->n, f->n_paired, b->failed, first, (t1 - t0) / 1000.0, m1.hwm_kib, m0.rss_kib, c1 - c0,
           (t3 - t0) / 1000.0, fleet_cpu_seconds() - c2, ok ? "true" : "false");
    free(b->to_close);
    return ok ? 0 : 1;
}

static int run_login(bench *b, unsigned ramp, unsigned keepalive, unsigned pings, unsigned settle)
{
    fleet *f = b->f;
    fleet_mem m0, m1, m2, m3;
    uint64_t t0, t1, tw0, tw1;
    uint64_t disc0;
    double c0, c1, cw0, cw1;
    char *s0, *s1;
    long long iq0, iq1;
    int ok;

    fleet_mem_read(&m0);
    t0 = fleet_now_ms();
    c0 = fleet_cpu_seconds();
    b->limit = ramp;
    b->target = b->stop_at = b->n;
    top_up(b);
    ok = fleet_run_until(&b->loop, progress, b, 120000 + b->n * 50);
    t1 = f->last_connected_ms ? f->last_connected_ms : fleet_now_ms();
    c1 = fleet_cpu_seconds();
    fleet_mem_read(&m1);
    printf("login: %u of %u connected from the store in %.2f s (%s; %u at a time%s), CPU %.2f "
           "s, %u failed, %llu reconnects\n",
           f->n_ever, b->n, (t1 - t0) / 1000.0, ok ? "all" : "TIMED OUT", ramp,
           ramp ? "" : ": all at once", c1 - c0, b->failed,
           (unsigned long long)f->retry_disconnects);
    /* settle (the last logins' iqs), then the idle window */
    fleet_run_for(&b->loop, settle);
    s0 = get_stats(b);
    iq0 = json_int(s0, "iqs");
    disc0 = f->disconnect_events;
    cw0 = fleet_cpu_seconds();
    tw0 = fleet_now_ms();
    fleet_run_for(&b->loop, keepalive * pings);
    cw1 = fleet_cpu_seconds();
    tw1 = fleet_now_ms();
    fleet_mem_read(&m2);
    s1 = get_stats(b);
    iq1 = json_int(s1, "iqs");
    /* what the allocator keeps from the login storm (freed but not returned) */
    malloc_trim(0);
    fleet_mem_read(&m3);
    printf("idle: %u clients connected after %.1f s (%u keep-alives of %u ms), %llu "
           "disconnects in the window; wasim answered %lld iqs (expected %llu pings)\n",
           f->n_connected, (tw1 - tw0) / 1000.0, pings, keepalive,
           (unsigned long long)(f->disconnect_events - disc0), iq1 - iq0,
           (unsigned long long)b->n * pings);
    printf("idle: RSS %ld KiB with %u clients, %ld KiB before them: %.1f KiB per client; heap "
           "in use %.1f KiB per client (allocator holds %.1f KiB per client)\n",
           m2.rss_kib, b->n, m0.rss_kib, kib_per(m2.rss_kib, m0.rss_kib, b->n),
           (double)(m2.heap_used - m0.heap_used) / 1024.0 / (b->n ? b->n : 1),
           (double)(m2.heap_arena - m0.heap_arena) / 1024.0 / (b->n ? b->n : 1));
    printf("idle: RSS after malloc_trim(0): %ld KiB: %.1f KiB per client\n", m3.rss_kib,
           kib_per(m3.rss_kib, m0.rss_kib, b->n));
    printf("idle: CPU %.3f s over the window: %.1f us per client per keep-alive\n", cw1 - cw0,
           (cw1 - cw0) * 1e6 / ((double)(b->n ? b->n : 1) * pings));
    printf("wasim: %lld connections, RSS %lld KiB\n", json_int(s1, "connections"),
           json_int(s1, "rss_kib"));
    printf("RESULT {\"phase\":\"login\",\"n\":%u,\"connected\":%u,\"ever\":%u,\"ramp\":%u,"
           "\"login_s\":%.3f,\"login_cpu_s\":%.3f,\"rss_before_kib\":%ld,\"rss_kib\":%ld,"
           "\"rss_per_client_kib\":%.2f,\"rss_trim_per_client_kib\":%.2f,"
           "\"heap_per_client_kib\":%.2f,"
           "\"heap_arena_per_client_kib\":%.2f,\"idle_s\":%.2f,\"keepalive_ms\":%u,"
           "\"pings\":%u,\"idle_cpu_s\":%.4f,\"cpu_us_per_client_ping\":%.2f,"
           "\"wasim_iqs_in_window\":%lld,\"disconnects_in_window\":%llu,"
           "\"wasim_connections\":%lld,\"wasim_rss_kib\":%lld,\"ok\":%s}\n",
           b->n, f->n_connected, f->n_ever, ramp, (t1 - t0) / 1000.0, c1 - c0, m0.rss_kib,
           m2.rss_kib, kib_per(m2.rss_kib, m0.rss_kib, b->n), kib_per(m3.rss_kib, m0.rss_kib, b->n),
           (double)(m2.heap_used - m0.heap_used) / 1024.0 / (b->n ? b->n : 1),
           (double)(m2.heap_arena - m0.heap_arena) / 1024.0 / (b->n ? b->n : 1),
           (tw1 - tw0) / 1000.0, keepalive, pings, cw1 - cw0,
           (cw1 - cw0) * 1e6 / ((double)(b->n ? b->n : 1) * pings), iq1 - iq0,
           (unsigned long long)(f->disconnect_events - disc0), json_int(s1, "connections"),
           json_int(s1, "rss_kib"), ok && f->n_connected == b->n ? "true" : "false");
    (void)m1;
    free(s0);
    free(s1);
    return ok && f->n_connected == b->n ? 0 : 1;
}

/* ---- route: messages through wasim between clients of the loop ------------------------------ */

#define ROUTE_PREFIX    "BENCH"
#define ROUTE_ENC_BYTES 64   /* size of the opaque <enc> payload (a short text's ciphertext) */
#define ROUTE_ARENA     8192 /* one stanza we build */
#define ROUTE_WINDOW    32   /* messages in flight per sender */

typedef struct route_state {
    bench *b;
    unsigned half, window;
    unsigned *inflight; /* per sender */
    uint64_t *seq;      /* per sender */
    uint64_t sent, server_acks, delivered, receipts_in, send_errors;
    int running;
    uint8_t payload[ROUTE_ENC_BYTES];
} route_state;

static route_state *route_st;

/* "PHONE@s.whatsapp.net" of a device JID "PHONE:DEV@s.whatsapp.net". */
static void user_jid(const char *device, char *out, size_t cap)
{
    const char *colon = strchr(device, ':'), *at = strchr(device, '@');
    size_t k = colon && at && colon < at ? (size_t)(colon - device)
               : at                      ? (size_t)(at - device)
                                         : 0;

    snprintf(out, cap, "%.*s%s", (int)k, device, at ? at : "");
}

/* Sender i sends its next message to member i + half: <message id to type><participants><to
 * jid=DEVICE><enc v=2 type=msg>bytes</enc></to></participants></message>, as a client does for
 * a peer with one device (wasim copies the <enc> without reading it). */
static int route_send(route_state *r, unsigned i)
{
    fleet_member *from = &r->b->f->m[i], *to = &r->b->f->m[i + r->half];
    wa_arena a;
    wa_node *msg, *parts, *tn, *enc;
    char id[48], user[FLEET_JID_MAX];
    int rc = WA_ENOMEM;

    if (!from->client || from->state != FLEET_CONNECTED)
        return WA_ESTATE;
    snprintf(id, sizeof id, ROUTE_PREFIX "%ux%llu", i, (unsigned long long)++r->seq[i]);
    user_jid(to->jid, user, sizeof user);
    wa_arena_init(&a, ROUTE_ARENA);
    msg = wa_node_new(&a, "message");
    if (msg && !wa_node_set_attr(&a, msg, "id", id) && !wa_node_set_attr(&a, msg, "to", user) &&
        !wa_node_set_attr(&a, msg, "type", "text") &&
        (parts = wa_node_new_child(&a, msg, "participants")) &&
        (tn = wa_node_new_child(&a, parts, "to")) && !wa_node_set_attr(&a, tn, "jid", to->jid) &&
        (enc = wa_node_new_child(&a, tn, "enc")) && !wa_node_set_attr(&a, enc, "v", "2") &&
        !wa_node_set_attr(&a, enc, "type", "msg")) {
        wa_node_set_bytes_ref(enc, r->payload, sizeof r->payload);
        rc = wa_client_send_node(from->client, msg);
    }
    wa_arena_cleanup(&a);
    if (rc == 0) {
        r->inflight[i]++;
        r->sent++;
    } else {
        r->send_errors++;
    }
    return rc;
}

static void route_fill(route_state *r, unsigned i)
{
    while (r->running && r->inflight[i] < r->window)
        if (route_send(r, i) != 0)
            break;
}

/* <receipt id to=FROM/> or <ack class id to=FROM/> on c. */
static void route_reply(wa_client *c, const char *tag, const char *cls, const char *id,
                        const char *to)
{
    wa_arena a;
    wa_node *n;

    wa_arena_init(&a, ROUTE_ARENA);
    n = wa_node_new(&a, tag);
    if (n && !wa_node_set_attr(&a, n, "id", id) && !wa_node_set_attr(&a, n, "to", to) &&
        (!cls || !wa_node_set_attr(&a, n, "class", cls)))
        wa_client_send_node(c, n);
    wa_arena_cleanup(&a);
}

/* The stanza hook: this benchmark's messages, receipts and acks are handled here. */
static int route_stanza(wa_client *c, const struct wa_node *n, void *ud)
{
    fleet_member *m = ud;
    route_state *r = route_st;
    const char *id = wa_node_attr(n, "id"), *from = wa_node_attr(n, "from");
    unsigned sender;

    if (!r || !id || strncmp(id, ROUTE_PREFIX, strlen(ROUTE_PREFIX)) != 0 || !from)
        return 0;
    sender = (unsigned)strtoul(id + strlen(ROUTE_PREFIX), NULL, 10);
    if (wa_node_is(n, "message")) {
        route_reply(c, "receipt", NULL, id, from); /* delivered (acknowledges it too) */
        return 1;
    }
    if (wa_node_is(n, "receipt")) {
        route_reply(c, "ack", "receipt", id, from);
        r->receipts_in++;
        if (sender == m->idx && sender < r->half && r->inflight[sender]) {
            r->inflight[sender]--;
            r->delivered++;
            route_fill(r, sender);
        }
        return 1;
    }
    if (wa_node_is(n, "ack")) {
        r->server_acks++;
        return 1;
    }
    return 0;
}

/* utime + stime of another process, in seconds (/proc/PID/stat), or -1. */
static double proc_cpu_seconds(long pid)
{
    char path[64], buf[1024], *p;
    unsigned long long ut = 0, st = 0;
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int run_route(bench *b, unsigned ramp, unsigned seconds, unsigned window, long wasim_pid)
{
    fleet *f = b->f;
    route_state r;
    char *s0, *s1;
    long long routed0, routed1, rec0, rec1;
    uint64_t t0, t1, delivered0;
    double c0, c1, w0, w1;
    unsigned i;
    int ok;

    memset(&r, 0, sizeof r);
    r.b = b;
    r.half = b->n / 2;
    r.window = window;
    r.inflight = calloc(r.half ? r.half : 1, sizeof *r.inflight);
    r.seq = calloc(r.half ? r.half : 1, sizeof *r.seq);
    if (!r.inflight || !r.seq || r.half == 0) {
        free(r.inflight);
        free(r.seq);
        return 1;
    }
    memset(r.payload, 0xA5, sizeof r.payload);
    route_st = &r;
    b->limit = ramp;
    b->target = b->stop_at = b->n;
    top_up(b);
    ok = fleet_run_until(&b->loop, progress, b, 120000 + b->n * 50);
    printf("route: %u of %u clients logged in (%s)\n", f->n_connected, b->n,
           ok ? "all" : "TIMED OUT");
    fleet_run_for(&b->loop, 2000); /* the offline deliveries of the login */
    r.running = 1;
    for (i = 0; i < r.half; i++)
        route_fill(&r, i);
    fleet_run_for(&b->loop, 2000); /* warm up */
    s0 = get_stats(b);
    routed0 = json_int(s0, "messages_routed");
    rec0 = json_int(s0, "receipts_routed");
    delivered0 = r.delivered;
    c0 = fleet_cpu_seconds();
    w0 = wasim_pid > 0 ? proc_cpu_seconds(wasim_pid) : -1;
    t0 = fleet_now_ms();
    fleet_run_for(&b->loop, seconds * 1000);
    t1 = fleet_now_ms();
    c1 = fleet_cpu_seconds();
    w1 = wasim_pid > 0 ? proc_cpu_seconds(wasim_pid) : -1;
    s1 = get_stats(b);
    routed1 = json_int(s1, "messages_routed");
    rec1 = json_int(s1, "receipts_routed");
    r.running = 0;
    {
        double secs = (t1 - t0) / 1000.0;
        double msgs = (double)(routed1 - routed0);
        printf("route: %u senders -> %u receivers, %u in flight each, %.1f s: wasim routed %lld "
               "messages (%.0f/s) and %lld receipts (%.0f/s); %llu delivered end to end; send "
               "errors %llu\n",
               r.half, r.half, window, secs, routed1 - routed0, msgs / secs, rec1 - rec0,
               (rec1 - rec0) / secs, (unsigned long long)(r.delivered - delivered0),
               (unsigned long long)r.send_errors);
        printf("route: CPU over the window: wasim %.2f s (%.1f us per routed message, receipt "
               "included), the %u clients %.2f s\n",
               w1 - w0, msgs > 0 && w0 >= 0 ? (w1 - w0) * 1e6 / msgs : -1.0, b->n, c1 - c0);
        printf("RESULT {\"phase\":\"route\",\"n\":%u,\"pairs\":%u,\"window\":%u,\"seconds\":%.2f,"
               "\"messages_routed\":%lld,\"messages_per_s\":%.1f,\"receipts_routed\":%lld,"
               "\"delivered\":%llu,\"send_errors\":%llu,\"wasim_cpu_s\":%.3f,"
               "\"wasim_cpu_us_per_message\":%.2f,\"clients_cpu_s\":%.3f,\"ok\":%s}\n",
               b->n, r.half, window, secs, routed1 - routed0, msgs / secs, rec1 - rec0,
               (unsigned long long)(r.delivered - delivered0), (unsigned long long)r.send_errors,
               w0 >= 0 ? w1 - w0 : -1.0, msgs > 0 && w0 >= 0 ? (w1 - w0) * 1e6 / msgs : -1.0,
               c1 - c0, ok && routed1 > routed0 ? "true" : "false");
    }
    fleet_run_for(&b->loop, 1000); /* let what is in flight land */
    route_st = NULL;
    free(s0);
    free(s1);
    free(r.inflight);
    free(r.seq);
    return ok ? 0 : 1;
}

/* ---- sessions: a populated store (100 Signal sessions per account) --------------------------- */

/* peer j is the phone number SESS_PEER_BASE + j, device 0 */
#define SESS_PEER_BASE 19990000000ULL
#define SESS_TEXT      "hello from the benchmark: a short text to set the session up"

/* One synthetic peer device: its keys and a Signal handle over an in-memory store. */
typedef struct sess_peer {
    wa_signal_memstore *mem;
    wa_signal *sig;
    wa_signal_bundle bundle;
    wa_signal_addr addr;
} sess_peer;

static int sess_peer_init(sess_peer *p, unsigned j, size_t max_entries)
{
    wa_signal_keypair id;
    wa_signal_signed_prekey spk;
    wa_signal_store st;
    uint32_t reg;
    char user[32];
    int rc;

    snprintf(user, sizeof user, "%llu", SESS_PEER_BASE + j);
    if ((rc = wa_signal_addr_make(&p->addr, user, WA_SIGNAL_PN, 0)) != 0 ||
        (rc = wa_signal_gen_keypair(&id)) != 0 || (rc = wa_signal_gen_registration_id(&reg)) != 0 ||
        (rc = wa_signal_gen_signed_prekey(&id, 1, &spk)) != 0 ||
        (rc = wa_signal_memstore_new(&p->mem, &id, reg, max_entries)) != 0)
        return rc;
    wa_signal_memstore_bind(p->mem, &st);
    if ((rc = wa_signal_new(&p->sig, &st)) != 0 ||
        (rc = wa_signal_save_signed_prekey(p->sig, &spk)) != 0)
        return rc;
    /* no one-time prekey: every account starts its session from the same bundle */
    wa_signal_make_bundle(&p->bundle, reg, id.pub, &spk, NULL);
    wa_wipe(&id, sizeof id);
    wa_wipe(&spk, sizeof spk);
    return 0;
}

/* Account `acc` (our address `me` as the peers see it) gets a session with each of the k peers,
 * set up as a conversation does: the peer's bundle, our pkmsg (the peer decrypts it), the peer's
 * answer (we decrypt it: our session is acknowledged and has ratcheted once). The peers forget
 * their side afterwards. One store transaction per account. 0 or a WA_E* code. */
static int sess_account(wa_store *store, int64_t acc, const wa_signal_addr *me, sess_peer *peers,
                        unsigned k)
{
    wa__sigstore ss = {store, acc};
    wa_signal_store st;
    wa_signal *sig = NULL;
    wa_buf ct, pt;
    unsigned j;
    int rc, type;

    wa__sigstore_bind(&ss, &st);
    rc = wa_signal_new(&sig, &st);
    if (rc)
        return rc;
    wa_buf_init(&ct, WA_SIGNAL_MSG_MAX);
    wa_buf_init(&pt, WA_SIGNAL_MSG_MAX);
    wa_store_tx_begin(store);
    for (j = 0; j < k && rc == 0; j++) {
        sess_peer *p = &peers[j];
        wa_buf_reset(&ct);
        wa_buf_reset(&pt);
        if ((rc = wa_signal_process_bundle(sig, &p->addr, &p->bundle)) != 0 ||
            (rc = wa_signal_encrypt(sig, &p->addr, (const uint8_t *)SESS_TEXT, sizeof SESS_TEXT,
                                    &type, &ct)) != 0 ||
            (rc = wa_signal_decrypt(p->sig, me, type, ct.data, ct.len, &pt)) != 0)
            break;
        wa_buf_reset(&ct);
        if ((rc = wa_signal_encrypt(p->sig, me, (const uint8_t *)SESS_TEXT, sizeof SESS_TEXT, &type,
                                    &ct)) != 0)
            break;
        wa_buf_reset(&pt);
        if ((rc = wa_signal_decrypt(sig, &p->addr, type, ct.data, ct.len, &pt)) != 0)
            break;
        rc = wa_signal_delete_session(p->sig, me);
    }
    if (rc)
        fprintf(stderr, "bench: sessions of account %lld, peer %u: %s (%s)\n", (long long)acc, j,
                wa_strerror(rc), wa_signal_last_error(sig));
    rc = wa_store_tx_end(store, rc);
    wa_buf_wipe_cleanup(&ct);
    wa_buf_wipe_cleanup(&pt);
    wa_signal_free(sig);
    return rc;
}

/* Offline: accounts "bench0".."bench<n-1>" (paired) of the store get k sessions each. */
static int run_sessions(wa_store *store, unsigned n, unsigned k, unsigned long long phone_base)
{
    sess_peer *peers = calloc(k ? k : 1, sizeof *peers);
    uint64_t t0 = fleet_now_ms(), last = t0;
    double c0 = fleet_cpu_seconds();
    unsigned i, j, done = 0;
    int rc = 0;

    if (!peers)
        return 1;
    for (j = 0; j < k && rc == 0; j++)
        rc = sess_peer_init(&peers[j], j, (size_t)n + 64);
    for (i = 0; i < n && rc == 0; i++) {
        char name[64], user[32];
        wa_signal_addr me;
        int64_t acc;
        snprintf(name, sizeof name, "bench%u", i);
        snprintf(user, sizeof user, "%llu", phone_base + i);
        rc = wa_store_account(store, name, 0, &acc);
        if (rc == 0 && !wa_store_account_paired(store, acc))
            rc = WA_ENOTFOUND;
        if (rc == 0)
            rc = wa_signal_addr_make(&me, user, WA_SIGNAL_PN, 1);
        if (rc == 0)
            rc = sess_account(store, acc, &me, peers, k);
        if (rc) {
            fprintf(stderr, "bench: account %s: %s\n", name, wa_strerror(rc));
            break;
        }
        done++;
        if (fleet_now_ms() - last >= 5000) {
            last = fleet_now_ms();
            fprintf(stderr, "bench: sessions: %u of %u accounts\n", done, n);
        }
    }
    for (j = 0; j < k; j++) {
        wa_signal_free(peers[j].sig);
        wa_signal_memstore_free(peers[j].mem);
    }
    free(peers);
    printf("sessions: %u accounts x %u Signal sessions (bundle, pkmsg, answer) in %.1f s, CPU "
           "%.1f s\n",
           done, k, (fleet_now_ms() - t0) / 1000.0, fleet_cpu_seconds() - c0);
    printf(
        "RESULT {\"phase\":\"sessions\",\"n\":%u,\"sessions\":%u,\"seconds\":%.2f,\"cpu_s\":%.2f,"
        "\"ok\":%s}\n",
        done, k, (fleet_now_ms() - t0) / 1000.0, fleet_cpu_seconds() - c0,
        done == n ? "true" : "false");
    return done == n ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *cmd = NULL, *url = NULL, *control = NULL, *root_hex = NULL, *ca = NULL,
               *store_path = NULL;
    unsigned n = 0, batch = DEFAULT_BATCH, concurrency = DEFAULT_CONCURRENCY, ramp = DEFAULT_RAMP,
             keepalive = DEFAULT_KEEPALIVE, pings = DEFAULT_IDLE_PINGS, settle = DEFAULT_SETTLE_MS;
    unsigned seconds = DEFAULT_ROUTE_SECONDS, window = ROUTE_WINDOW, sessions = 100;
    long wasim_pid = 0;
    unsigned long long phone_base = DEFAULT_PHONE_BASE;
    unsigned long nofile = 0;
    uint8_t root[32];
    fleet_opts fo;
    bench b;
    int i, rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    wa_log_set_level(WA_LOG_ERROR);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "pair") || !strcmp(a, "login") || !strcmp(a, "route") ||
            !strcmp(a, "sessions")) {
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
        else if (!strcmp(a, "--n"))
            n = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--batch"))
            batch = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--concurrency"))
            concurrency = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--phone-base"))
            phone_base = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--ramp"))
            ramp = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--keepalive"))
            keepalive = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--idle-pings"))
            pings = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--settle"))
            settle = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--seconds"))
            seconds = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--window"))
            window = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--sessions"))
            sessions = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--wasim-pid"))
            wasim_pid = strtol(v, NULL, 10);
        else if (!strcmp(a, "--log-level")) {
            int lvl;
            if (wa_log_level_parse(v, &lvl) == 0)
                wa_log_set_level(lvl);
        } else {
            usage();
            return 2;
        }
    }
    if (cmd && !strcmp(cmd, "sessions")) { /* offline: the store only */
        if (!store_path || !n) {
            usage();
            return 2;
        }
        rc = wa_store_open(store_path, NULL, &b.store);
        if (rc) {
            fprintf(stderr, "bench: cannot open the store %s: %s\n", store_path, wa_strerror(rc));
            return 1;
        }
        rc = run_sessions(b.store, n, sessions, phone_base);
        wa_store_close(b.store);
        return rc;
    }
    if (!cmd || !url || !control || !root_hex || !store_path || !n || !keepalive || !pings ||
        !concurrency || wa_hex_decode(root, sizeof root, root_hex, strlen(root_hex)) != 0) {
        usage();
        return 2;
    }
    if (fleet_raise_nofile(&nofile) != 0 || nofile < (unsigned long)n + 64) {
        fprintf(stderr, "bench: open-file limit %lu is too low for %u clients\n", nofile, n);
        return 1;
    }
    fprintf(stderr, "bench: %s, %u clients, open-file limit %lu\n", cmd, n, nofile);
    memset(&b, 0, sizeof b);
    b.n = n;
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
    fo.keepalive_ms = keepalive;
    fo.connect_timeout_ms = CONNECT_TIMEOUT_MS;
    fo.account_prefix = "bench";
    fo.phone_base = phone_base;
    if (!strcmp(cmd, "route"))
        fo.stanza = route_stanza;
    if (fleet_new(&b.loop, b.store, b.ctl, &fo, n, &b.f) != 0)
        return 1;
    b.f->on_change = on_change;
    b.f->user_data = &b;
    if (!strcmp(cmd, "pair"))
        rc = run_pair(&b, batch, concurrency);
    else if (!strcmp(cmd, "route"))
        rc = run_route(&b, ramp, seconds, window ? window : 1, wasim_pid);
    else
        rc = run_login(&b, ramp, keepalive, pings, settle);
    fleet_free(b.f);
    fleet_ctl_free(b.ctl);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    uv_loop_close(&b.loop);
    wa_store_close(b.store);
    return rc;
}
