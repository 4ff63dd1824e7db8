/*
 * internal.h - the event hub's state, shared by events.c (publish, targets, lifecycle),
 * webhook.c (libcurl multi on libuv) and stream.c (WebSocket and SSE clients).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_EVENTS_INTERNAL_H
#define WG_EVENTS_INTERNAL_H

#include <curl/curl.h>
#include <microhttpd.h>

#include "core/buf.h"
#include "curluv/curluv.h"
#include "events/events.h"
#include "events/outbox.h"
#include "ws/ws.h"

#define WG__TARGET_BUCKETS 256
#define WG__GLOBAL_TARGET  "global"
/* Rows read from the outbox per replay step of a stream client. */
#define WG__REPLAY_PAGE 64
/* Largest WebSocket message a stream client may send us (we expect none but control frames). */
#define WG__WS_MAX_IN 4096
/* Bytes read from a WebSocket client per recv. */
#define WG__WS_READ_CHUNK 16384
/* A closing WebSocket gets this long to flush its close frame. */
#define WG__WS_CLOSE_GRACE_MS 2000
/* An accepted upgrade that MHD never completed is forgotten after this long. */
#define WG__UPGRADE_WAIT_MS 30000
/* libmicrohttpd's block size for the SSE reader. */
#define WG__SSE_BLOCK 16384
/* Response bytes of a webhook receiver we keep (discarded; only counted). */
#define WG__RESP_MAX 4096

typedef struct wg_target {
    struct wg_target *next;
    char key[WG_OUTBOX_TARGET_MAX + 1];
    char url[WG_EVENTS_URL_MAX + 1];
    char secret[WG_EVENTS_SECRET_MAX + 1]; /* wiped on free */
    size_t secret_len;
    wg_event_filter filter;
} wg_target;

typedef struct wg_transfer {
    struct wg_transfer *prev, *next;
    wg_events *ev;
    CURL *easy;
    wg_curluv_xfer x; /* x.easy == easy while running */
    struct curl_slist *headers;
    wg_delivery d;
    uint64_t start_ns;
    size_t resp_len;
    char errbuf[CURL_ERROR_SIZE];
} wg_transfer;

enum { WG__SUB_SSE = 1, WG__SUB_WS = 2 };

typedef struct wg_sub {
    struct wg_sub *prev, *next;
    wg_events *ev; /* NULL once the hub closed (SSE clients outlive it until MHD frees them) */
    int kind;
    wg_event_filter filter;
    wa_buf q;       /* bytes to send: SSE text or WebSocket frames */
    size_t q_limit; /* event bytes allowed in q (the rest of q.max is for control frames) */
    char cursor[WG_EVENT_ID_LEN + 1]; /* replay: last id read from the outbox */
    int catching_up;
    int ended; /* SSE: send what is queued, then end; WS: close sent */
    int dropped;
    uint64_t last_ping_ms, last_rx_ms, created_ms, close_deadline_ms;
    wg_httpd *server; /* to run libmicrohttpd after a resume or an upgrade close */
    /* SSE */
    struct MHD_Connection *conn;
    int suspended;
    /* WebSocket */
    int upgraded;
    wa_ws ws;
    uv_poll_t poll;
    int poll_started;
    int fd;
    int poll_events;
    struct MHD_UpgradeResponseHandle *urh;
} wg_sub;

struct wg_events {
    uv_loop_t *loop;
    wg_events_options opts;
    wg_outbox *ob;
    wg_event_idgen idgen;
    wg_target *targets[WG__TARGET_BUCKETS];
    wg_events_stats stats;
    int closing;

    /* webhooks */
    wg_curluv *curl; /* counts as one handle in open_handles until closed */
    uv_timer_t pump_timer;
    uv_timer_t flush_timer;
    wg_transfer *transfers;
    int64_t flush_start; /* > 0 while flushing */
    void (*flush_done)(void *);
    void *flush_ud;
    uv_timer_t prune_timer;

    /* streams */
    wg_sub *subs;    /* live SSE and upgraded WS clients */
    wg_sub *pending; /* WS clients waiting for MHD's upgrade callback */
    uv_timer_t tick_timer;

    int open_handles;
    void (*closed)(void *);
    void *closed_ud;
};

/* Wall-clock ms (stored times) and monotonic ns (durations). */
int64_t wg__now_ms(void);

/* webhook.c */
int wg__webhook_init(wg_events *ev);
/* Run the pump soon (next loop iteration). */
void wg__webhook_kick(wg_events *ev);
/* Abort transfers (unclaimed), release curl; handles are closed with wg__handle_close. */
void wg__webhook_shutdown(wg_events *ev);
void wg__webhook_flush_start(wg_events *ev, unsigned timeout_ms);
wg_target *wg__target_find(wg_events *ev, const char *key);

/* stream.c */
void wg__stream_init(wg_events *ev);
/* Push a stored event to the live clients. */
void wg__stream_publish(wg_events *ev, const wg_envelope *env);
int wg__stream_http(wg_events *ev, wg_http_req *req, wg_http_resp *resp);
void wg__stream_shutdown(wg_events *ev);
unsigned wg__stream_count(const wg_events *ev, int kind);

/* events.c: every uv handle of the hub counts in open_handles. wg__handle_close closes one of
 * the hub's embedded timers; other close callbacks free their owner, then call
 * wg__handle_released. The hub is freed after the last handle once closing. */
void wg__handle_close(wg_events *ev, uv_handle_t *h);
void wg__handle_released(wg_events *ev);

#endif
