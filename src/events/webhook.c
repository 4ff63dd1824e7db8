/*
 * webhook.c - signed webhook delivery from the outbox with libcurl multi on the libuv loop.
 *
 * Transport: libcurl multi on the loop through src/curluv (shared with the backup uploader). No
 * thread of our own; the multi handle keeps connections alive between deliveries to the same
 * receiver.
 *
 * Pump: a uv timer that claims due deliveries from the outbox (marking them in flight, so a
 * crash re-sends rather than loses them) up to max_inflight, starts one POST each, and re-arms
 * itself for the earliest next retry. When a target answers 2xx, its other deliveries waiting
 * for a retry become due at once: a receiver that comes back gets its backlog without waiting
 * for every event's own backoff.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "events/webhook.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/util.h"
#include "crypto/crypto.h"
#include "events/internal.h"
#include "wa/error.h"

#define COMPONENT "webhook"

/* ---- pure helpers ---- */

int wg_webhook_sign(char out[WG_WEBHOOK_SIG_LEN + 1], const void *secret, size_t secret_len,
                    const char *timestamp, const void *body, size_t body_len)
{
    wa_hmac_sha256_ctx c;
    uint8_t mac[WA_HMAC_SHA256_LEN];
    int rc;

    rc = wa_hmac_sha256_init(&c, secret, secret_len);
    if (rc)
        return rc;
    if ((rc = wa_hmac_sha256_update(&c, timestamp, strlen(timestamp))) ||
        (rc = wa_hmac_sha256_update(&c, ".", 1)) ||
        (rc = wa_hmac_sha256_update(&c, body, body_len)) || (rc = wa_hmac_sha256_final(&c, mac)))
        goto out;
    memcpy(out, WG_WEBHOOK_SIG_PREFIX, 7);
    wa_hex_encode(out + 7, mac, sizeof mac);
out:
    wa_hmac_sha256_cleanup(&c);
    wa_wipe(mac, sizeof mac);
    return rc;
}

int wg_webhook_verify(const char *header, const void *secret, size_t secret_len,
                      const char *timestamp, const void *body, size_t body_len)
{
    char want[WG_WEBHOOK_SIG_LEN + 1];
    int ok;

    if (!header || strlen(header) != WG_WEBHOOK_SIG_LEN)
        return 0;
    if (wg_webhook_sign(want, secret, secret_len, timestamp, body, body_len))
        return 0;
    ok = wa_ct_equal(want, header, WG_WEBHOOK_SIG_LEN);
    wa_wipe(want, sizeof want);
    return ok;
}

uint64_t wg_backoff_delay_ms(const wg_backoff *b, unsigned attempt, uint32_t rnd)
{
    uint64_t d = b->base_ms ? b->base_ms : 1, cap = b->cap_ms ? b->cap_ms : d, half;
    unsigned i;

    if (attempt == 0)
        attempt = 1;
    for (i = 1; i < attempt && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    half = d / 2;
    return half + (uint64_t)rnd % (d - half + 1);
}

int wg_webhook_classify(int responded, long status)
{
    if (!responded)
        return WG_WEBHOOK_RETRY;
    if (status >= 200 && status <= 299)
        return WG_WEBHOOK_DONE;
    if (status >= 400 && status <= 499 && status != 408 && status != 429)
        return WG_WEBHOOK_FAILED;
    return WG_WEBHOOK_RETRY;
}

const char *wg_webhook_outcome_name(int outcome)
{
    switch (outcome) {
    case WG_WEBHOOK_DONE:
        return "delivered";
    case WG_WEBHOOK_RETRY:
        return "retry";
    case WG_WEBHOOK_FAILED:
        return "failed";
    default:
        return "unknown";
    }
}

/* ---- transfers ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    wg_transfer *t = ud;

    (void)p;
    /* the receiver's answer is not used: count it so that a huge one cannot run forever */
    t->resp_len += size * n;
    return t->resp_len > WG__RESP_MAX * 256 ? 0 : size * n;
}

static void transfer_unlink(wg_events *ev, wg_transfer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        ev->transfers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

static void transfer_free(wg_transfer *t)
{
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    wg_delivery_cleanup(&t->d);
    wa_free(t);
}

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
    char line[WG_EVENTS_URL_MAX + 128];
    struct curl_slist *n;

    snprintf(line, sizeof line, "%s: %s", name, value);
    n = curl_slist_append(*list, line);
    wa_wipe(line, sizeof line); /* may hold a signature */
    if (!n)
        return WA_ENOMEM;
    *list = n;
    return 0;
}

static void on_transfer_done(wg_curluv_xfer *x, CURLcode result);

static int transfer_start(wg_events *ev, wg_target *tg, wg_delivery *d)
{
    wg_transfer *t;
    char ts[24], attempt[16], sig[WG_WEBHOOK_SIG_LEN + 1];
    int rc = WA_ENOMEM;

    t = wa_calloc(1, sizeof *t);
    if (!t)
        return WA_ENOMEM;
    t->ev = ev;
    t->d = *d;
    d->body = NULL; /* moved */
    t->easy = curl_easy_init();
    if (!t->easy)
        goto fail;
    snprintf(ts, sizeof ts, "%" PRId64, wg__now_ms() / 1000);
    snprintf(attempt, sizeof attempt, "%u", t->d.attempts);
    if (add_header(&t->headers, "Content-Type", "application/json") ||
        add_header(&t->headers, WG_WEBHOOK_HDR_ID, t->d.id) ||
        add_header(&t->headers, WG_WEBHOOK_HDR_EVENT, t->d.event) ||
        add_header(&t->headers, WG_WEBHOOK_HDR_TIMESTAMP, ts) ||
        add_header(&t->headers, WG_WEBHOOK_HDR_ATTEMPT, attempt) ||
        /* no "Expect: 100-continue" round trip for large bodies */
        !(t->headers = curl_slist_append(t->headers, "Expect:")))
        goto fail;
    if (tg->secret_len) {
        rc = wg_webhook_sign(sig, tg->secret, tg->secret_len, ts, t->d.body, t->d.body_len);
        if (rc)
            goto fail;
        rc = add_header(&t->headers, WG_WEBHOOK_HDR_SIGNATURE, sig);
        wa_wipe(sig, sizeof sig);
        if (rc)
            goto fail;
        rc = WA_ENOMEM;
    }
    curl_easy_setopt(t->easy, CURLOPT_URL, tg->url);
    curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(t->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->d.body);
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->d.body_len);
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "wagate-webhook/1");
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long)ev->opts.attempt_timeout_ms);
    curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)ev->opts.connect_timeout_ms);
    curl_easy_setopt(t->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
    if (ev->opts.ca_file)
        curl_easy_setopt(t->easy, CURLOPT_CAINFO, ev->opts.ca_file);
    t->start_ns = uv_hrtime();
    t->next = ev->transfers;
    if (ev->transfers)
        ev->transfers->prev = t;
    ev->transfers = t;
    t->x.easy = t->easy;
    t->x.done = on_transfer_done;
    t->x.user_data = t;
    if (wg_curluv_add(ev->curl, &t->x) != 0) {
        transfer_unlink(ev, t);
        goto fail;
    }
    ev->stats.inflight++;
    return 0;
fail:
    /* give the row back, not counting an attempt that never started */
    wg_outbox_unclaim(ev->ob, t->d.seq, t->d.target, wg__now_ms());
    transfer_free(t);
    return rc;
}

static void observe_latency(wg_events *ev, double s)
{
    size_t i;

    for (i = 0; i < WG_EVENTS_LATENCY_BUCKETS; i++)
        if (s <= wg_events_latency_bounds[i])
            break;
    ev->stats.latency_counts[i]++;
    ev->stats.latency_sum += s;
}

static void transfer_done(wg_events *ev, wg_transfer *t, CURLcode result)
{
    long status = 0;
    curl_off_t retry_after = 0;
    int responded = 0, outcome;
    int64_t now = wg__now_ms();
    double secs = (double)(uv_hrtime() - t->start_ns) / 1e9;
    const char *err = NULL;
    char why[64];
    wg_webhook_attempt a;

    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    /* a response counts even if reading its body failed afterwards */
    responded = status > 0 && (result == CURLE_OK || result == CURLE_WRITE_ERROR);
    if (!responded) {
        err = t->errbuf[0] ? t->errbuf : curl_easy_strerror(result);
        status = 0;
    }
    outcome = wg_webhook_classify(responded, status);
    ev->stats.attempts++;
    observe_latency(ev, secs);
    if (outcome == WG_WEBHOOK_RETRY && t->d.attempts >= ev->opts.backoff.max_attempts)
        outcome = WG_WEBHOOK_FAILED;
    if (!err && outcome != WG_WEBHOOK_DONE) {
        snprintf(why, sizeof why, "HTTP %ld", status);
        err = why;
    }
    switch (outcome) {
    case WG_WEBHOOK_DONE:
        ev->stats.delivered++;
        wg_outbox_delivered(ev->ob, t->d.seq, t->d.target);
        if (!ev->flush_start)
            wg_outbox_wake_target(ev->ob, t->d.target, now);
        break;
    case WG_WEBHOOK_RETRY: {
        uint64_t delay =
            wg_backoff_delay_ms(&ev->opts.backoff, t->d.attempts, wa_random_below(UINT32_MAX));
        if ((status == 429 || status == 503) &&
            curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
            retry_after > 0) {
            uint64_t ra = (uint64_t)retry_after * 1000;
            if (ra > ev->opts.backoff.cap_ms)
                ra = ev->opts.backoff.cap_ms;
            if (ra > delay)
                delay = ra;
        }
        ev->stats.retried++;
        wg_outbox_retry(ev->ob, t->d.seq, t->d.target, now + (int64_t)delay, (int)status, err);
        wa_log_debug(COMPONENT, "%s to %s: attempt %u: %s; retry in %" PRIu64 " ms", t->d.id,
                     t->d.target, t->d.attempts, err, delay);
        break;
    }
    default:
        ev->stats.failed++;
        wg_outbox_failed(ev->ob, t->d.seq, t->d.target, (int)status, err);
        wa_log_warn(COMPONENT, "%s to %s: given up after %u attempt(s): %s", t->d.id, t->d.target,
                    t->d.attempts, err);
        break;
    }
    if (ev->opts.on_attempt) {
        memset(&a, 0, sizeof a);
        a.target = t->d.target;
        a.event_id = t->d.id;
        a.event = t->d.event;
        a.attempt = t->d.attempts;
        a.http_status = status;
        a.seconds = secs;
        a.outcome = outcome;
        a.error = responded ? NULL : err;
        ev->opts.on_attempt(&a, ev->opts.user_data);
    }
}

static void on_transfer_done(wg_curluv_xfer *x, CURLcode result)
{
    wg_transfer *t = x->user_data;
    wg_events *ev = t->ev;

    transfer_unlink(ev, t);
    ev->stats.inflight--;
    transfer_done(ev, t, result);
    transfer_free(t);
    wg__webhook_kick(ev);
}

/* ---- pump ---- */

static void flush_finish(wg_events *ev);

static void on_pump(uv_timer_t *timer)
{
    wg_events *ev = timer->data;
    wg_delivery rows[WG_EVENTS_MAX_INFLIGHT_LIMIT];
    size_t n = 0, i, started = 0;
    int64_t now = wg__now_ms(), next;
    unsigned room;

    if (ev->closing)
        return;
    room =
        ev->opts.max_inflight > ev->stats.inflight ? ev->opts.max_inflight - ev->stats.inflight : 0;
    if (room) {
        wg_outbox_due(ev->ob, now, ev->flush_start, rows, room, &n);
        for (i = 0; i < n; i++) {
            wg_target *tg = wg__target_find(ev, rows[i].target);
            if (!tg) { /* removed since: leave it pending for when it comes back */
                wg_outbox_unclaim(ev->ob, rows[i].seq, rows[i].target, now);
                wg_delivery_cleanup(&rows[i]);
                continue;
            }
            if (transfer_start(ev, tg, &rows[i]) == 0)
                started++;
            wg_delivery_cleanup(&rows[i]);
        }
    }
    if (ev->flush_start && ev->stats.inflight == 0 && started == 0 && n == 0) {
        flush_finish(ev);
        /* fall through: keep serving retries as usual if the loop goes on */
    }
    if (ev->stats.inflight >= ev->opts.max_inflight)
        return; /* a finishing transfer kicks the pump */
    if (n == room && room) {
        uv_timer_start(&ev->pump_timer, on_pump, 0, 0); /* more may be due right now */
        return;
    }
    if (wg_outbox_next_due(ev->ob, &next) == 0) {
        uint64_t delay = next > now ? (uint64_t)(next - now) : 0;
        /* a due row that could not start (e.g. out of memory) must not spin the loop */
        if (delay == 0 && started == 0 && n > 0)
            delay = 1000;
        if (delay == 0 && n == 0)
            delay = 10;
        uv_timer_start(&ev->pump_timer, on_pump, delay, 0);
    } else {
        uv_timer_stop(&ev->pump_timer);
    }
}

void wg__webhook_kick(wg_events *ev)
{
    if (ev->closing)
        return;
    uv_timer_start(&ev->pump_timer, on_pump, 0, 0);
}

/* ---- flush ---- */

static void abort_transfers(wg_events *ev)
{
    wg_transfer *t;
    int64_t now = wg__now_ms();

    while ((t = ev->transfers)) {
        wg_curluv_remove(ev->curl, &t->x);
        transfer_unlink(ev, t);
        ev->stats.inflight--;
        wg_outbox_unclaim(ev->ob, t->d.seq, t->d.target, now);
        transfer_free(t);
    }
}

static void flush_finish(wg_events *ev)
{
    void (*done)(void *) = ev->flush_done;
    void *ud = ev->flush_ud;

    uv_timer_stop(&ev->flush_timer);
    ev->flush_start = 0;
    ev->flush_done = NULL;
    ev->flush_ud = NULL;
    if (done)
        done(ud);
}

static void on_flush_deadline(uv_timer_t *timer)
{
    wg_events *ev = timer->data;

    if (!ev->flush_start)
        return;
    wa_log_info(COMPONENT, "flush deadline: %u request(s) aborted, left pending",
                ev->stats.inflight);
    abort_transfers(ev);
    flush_finish(ev);
    /* no kick: the process is about to stop; the rows are due for the next pump or start */
}

void wg__webhook_flush_start(wg_events *ev, unsigned timeout_ms)
{
    /* rows last tried before this instant are due again, once (a row tried during the flush has
     * last_try >= flush_start) */
    ev->flush_start = wg__now_ms();
    uv_timer_start(&ev->flush_timer, on_flush_deadline, timeout_ms, 0);
    uv_timer_start(&ev->pump_timer, on_pump, 0, 0);
}

/* ---- lifecycle ---- */

static void on_curl_closed(void *ud)
{
    wg__handle_released(ud);
}

int wg__webhook_init(wg_events *ev)
{
    int rc = wg_curluv_new(ev->loop, &ev->curl);

    if (rc)
        return rc;
    uv_timer_init(ev->loop, &ev->pump_timer);
    uv_timer_init(ev->loop, &ev->flush_timer);
    ev->pump_timer.data = ev->flush_timer.data = ev;
    ev->open_handles += 3; /* the two timers and the curl glue */
    return 0;
}

void wg__webhook_shutdown(wg_events *ev)
{
    if (ev->flush_start)
        flush_finish(ev);
    abort_transfers(ev);
    if (ev->curl) {
        wg_curluv_close(ev->curl, on_curl_closed, ev);
        ev->curl = NULL;
    }
    wg__handle_close(ev, (uv_handle_t *)&ev->pump_timer);
    wg__handle_close(ev, (uv_handle_t *)&ev->flush_timer);
}
