/*
 * events.h - wagate's event hub: every event is stored in a durable outbox (SQLite) and then
 * delivered by signed webhooks with retries, and streamed live over WebSocket and Server-Sent
 * Events on GET /api/events. One wg_events per process, on the gateway's libuv loop; all calls
 * from the loop thread.
 *
 * Flow of one event:
 *   wg_events_publish -> envelope (envelope.h) -> one SQLite transaction: the event and one
 *   delivery row per webhook target whose filter wants it -> live stream subscribers get it ->
 *   the delivery pump (a uv timer) hands due rows to libcurl multi (uv_poll + uv_timer, no
 *   thread) -> 2xx deletes the row; 408/429/5xx/no answer schedules a retry (backoff with
 *   jitter); other 4xx marks it failed. Rows in flight when the process died are sent again
 *   at the next start (at-least-once: receivers de-duplicate by X-Wagate-Event-Id).
 *
 * Webhook targets: one global (WEBHOOK_URL / WEBHOOK_SECRET) and one per session (the session's
 * "webhook" option), each with an optional event filter. Targets are configuration, not stored
 * by this module: the daemon sets them again at every start (the global one from the
 * environment, the sessions' from its own database); deliveries of a target wait in the outbox
 * until it is set.
 *
 * Streams: GET /api/events?session=a,b&events=message,message.*&since=<id>
 *   - with a WebSocket upgrade: text frames, one envelope each; the server pings every
 *     ws_ping_ms and drops a client silent for two intervals;
 *   - with "Accept: text/event-stream": SSE, "id: <event id>\ndata: <envelope>\n\n" per event
 *     and ": keepalive" comments; Last-Event-ID (header) or since= (query) replays from the
 *     outbox everything after that id, then continues live, without gap or repeat.
 *   A client whose queue (stream_queue_max bytes) overflows is dropped (WS close 1008, SSE end of
 *   stream), so a slow reader never holds unbounded memory; it may reconnect with its last id.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_EVENTS_EVENTS_H
#define WG_EVENTS_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "events/envelope.h"
#include "events/webhook.h"
#include "http/httpd.h"

/* The stream path. */
#define WG_EVENTS_PATH "/api/events"
/* Longest webhook URL and secret accepted. */
#define WG_EVENTS_URL_MAX    1024
#define WG_EVENTS_SECRET_MAX 256
/* Buckets (upper bounds, seconds) of the delivery latency histogram; the same as
 * wagate_webhook_delivery_duration_seconds in src/stats.c. */
#define WG_EVENTS_LATENCY_BUCKETS 11
extern const double wg_events_latency_bounds[WG_EVENTS_LATENCY_BUCKETS];

/* Defaults of wg_events_options (0 selects them). */
#define WG_EVENTS_DEFAULT_ATTEMPT_TIMEOUT_MS 10000u
#define WG_EVENTS_DEFAULT_CONNECT_TIMEOUT_MS 5000u
#define WG_EVENTS_DEFAULT_MAX_INFLIGHT       16u
#define WG_EVENTS_DEFAULT_RETENTION_MS       (24u * 3600 * 1000)
#define WG_EVENTS_DEFAULT_KEEP_MAX           100000u
#define WG_EVENTS_DEFAULT_QUEUE_MAX          (1u << 20)
#define WG_EVENTS_DEFAULT_WS_PING_MS         30000u
#define WG_EVENTS_DEFAULT_SSE_KEEPALIVE_MS   15000u
#define WG_EVENTS_DEFAULT_MAX_STREAMS        256u
/* Bounds. */
#define WG_EVENTS_MAX_INFLIGHT_LIMIT 256u
#define WG_EVENTS_QUEUE_MIN          (16u << 10)
#define WG_EVENTS_QUEUE_MAX_LIMIT    (64u << 20)
/* How often old events are pruned. */
#define WG_EVENTS_PRUNE_INTERVAL_MS 60000u

typedef struct wg_events wg_events;

/* One finished webhook attempt, for metrics and logs. Strings valid during the call. */
typedef struct wg_webhook_attempt {
    const char *target;   /* "global" or "s:<session>" */
    const char *event_id; /* envelope id */
    const char *event;    /* event name */
    unsigned attempt;     /* 1 for the first attempt */
    long http_status;     /* 0: no response */
    double seconds;       /* duration of the attempt */
    int outcome;          /* WG_WEBHOOK_DONE, _RETRY, or _FAILED (given up: 4xx or attempts
                             exhausted) */
    const char *error;    /* curl's message when there was no response, else NULL */
} wg_webhook_attempt;
typedef void (*wg_webhook_attempt_cb)(const wg_webhook_attempt *a, void *user_data);

typedef struct wg_events_options {
    const char *db_path;         /* required: SQLite file, e.g. DATA_DIR/events.db */
    int fsync_full;              /* 1: synchronous=FULL (see outbox.h) */
    wg_backoff backoff;          /* zeros: WG_BACKOFF_DEFAULT_* */
    unsigned attempt_timeout_ms; /* whole attempt */
    unsigned connect_timeout_ms;
    unsigned max_inflight;     /* concurrent webhook requests */
    unsigned retention_ms;     /* events kept for replay this long ... */
    unsigned keep_max;         /* ... and at most this many (pending ones always stay) */
    unsigned stream_queue_max; /* bytes queued per stream client before it is dropped */
    unsigned ws_ping_ms;
    unsigned sse_keepalive_ms;
    unsigned max_streams;             /* WS + SSE clients at once; more get 503 */
    const char *ca_file;              /* NULL: system CAs (https webhooks) */
    wg_webhook_attempt_cb on_attempt; /* NULL or called after every attempt */
    void *user_data;
} wg_events_options;

/* Counters since wg_events_open, and current gauges. */
typedef struct wg_events_stats {
    uint64_t published;      /* events stored */
    uint64_t publish_errors; /* wg_events_publish failures (store) */
    uint64_t attempts;       /* webhook attempts finished */
    uint64_t delivered;      /* ... answered 2xx */
    uint64_t retried;        /* ... that will be retried */
    uint64_t failed;         /* deliveries given up (4xx, or attempts exhausted) */
    uint64_t latency_counts[WG_EVENTS_LATENCY_BUCKETS + 1]; /* per bucket (not cumulative);
                                                                the last is +Inf */
    double latency_sum;                                     /* seconds */
    uint64_t pending;  /* deliveries waiting or in flight (from the outbox) */
    unsigned inflight; /* webhook requests in flight */
    unsigned ws_clients, sse_clients;
    uint64_t stream_sent;    /* events written to stream queues */
    uint64_t stream_dropped; /* stream clients dropped for overflowing their queue */
} wg_events_stats;

/*
 * Open the outbox at opts->db_path (created 0600; resumes what a previous process left) and
 * attach to loop. Nothing is delivered until targets are set. 0 and *out; WA_EINVAL (missing
 * path, out-of-bounds option), WA_ESTORE, WA_ENOMEM, WA_EIO (libcurl).
 */
int wg_events_open(uv_loop_t *loop, const wg_events_options *opts, wg_events **out);

/*
 * Set (add or replace) a webhook target. session NULL: the global target; else that session's
 * target, which receives only that session's events. url: http:// or https://. events: NULL
 * or a NULL-terminated list of patterns (envelope.h filters; NULL or empty: all). secret: NULL
 * or "" sends no signature. Deliveries already waiting for this target (e.g. from before a
 * restart) resume. 0, WA_EINVAL (bad URL, pattern, session or secret), WA_ENOMEM, WA_ESTORE.
 */
int wg_events_set_webhook(wg_events *ev, const char *session, const char *url,
                          const char *const *events, const char *secret);
/* Remove a target. drop_pending: 1 deletes its waiting deliveries (session deleted), 0 keeps them
 * for when it is set again. 0, WA_ENOTFOUND, WA_ESTORE. */
int wg_events_remove_webhook(wg_events *ev, const char *session, int drop_pending);

/*
 * Publish an event: build the envelope (session NULL for none; event a registered name), store
 * it with its deliveries (durable when this returns 0), push it to matching stream clients and
 * wake the delivery pump. payload: a JSON object whose reference is STOLEN (also on failure);
 * NULL (a failed json_pack) gives WA_ENOMEM. id_out: NULL or 27 bytes for the id.
 * 0, WA_EINVAL, WA_ELIMIT (envelope over WG_EVENT_JSON_MAX), WA_ENOMEM, WA_ESTORE, WA_ECLOSED.
 */
int wg_events_publish(wg_events *ev, const char *session, const char *event, json_t *payload,
                      char *id_out);

/*
 * GET /api/events (WebSocket upgrade or SSE). Call it from the HTTP handler after checking the
 * API key, for req->path == WG_EVENTS_PATH. Fills resp: the streaming or upgrade response, or a
 * JSON error (400 naming a bad parameter, 405, 406 when neither WebSocket nor text/event-stream
 * was asked for, 426, 503 over max_streams or while closing). Returns 0 when resp was filled,
 * WA_ENOTFOUND if the path is not WG_EVENTS_PATH (resp untouched).
 */
int wg_events_http(wg_events *ev, wg_http_req *req, wg_http_resp *resp);

/*
 * SIGTERM: try every pending delivery now (also those waiting for a retry), at most once each,
 * for at most timeout_ms; then abort what is still in flight (it stays pending in the outbox)
 * and call done(user_data) from the loop. Publishing stays possible. Calling it again while a
 * flush runs replaces the callback.
 */
void wg_events_flush(wg_events *ev, unsigned timeout_ms, void (*done)(void *user_data),
                     void *user_data);

/* Counters and gauges (pending is read from the outbox). */
void wg_events_get_stats(wg_events *ev, wg_events_stats *out);

/*
 * Close the stream clients (WS close 1001, SSE end of stream), abort webhook requests (they stay
 * pending; a running flush reports done first), close the handles and the outbox;
 * closed(user_data) (may be NULL) is called when
 * everything is released (run the loop until then). MUST be called before wg_httpd_stop of the
 * server that carried the streams: libmicrohttpd must not be stopped while a stream connection
 * is suspended or upgraded. Safe with ev NULL; once only.
 */
void wg_events_close(wg_events *ev, void (*closed)(void *user_data), void *user_data);

#endif
