/*
 * outbox.h - the durable event outbox in SQLite (internal to src/events; the tests use it).
 *
 * Every event is stored, together with one delivery row per webhook target that wants it, in one
 * transaction before anything is sent. Delivery rows carry the attempt count and the time of the
 * next attempt; a row is deleted once delivered, marked failed when given up, and put back to
 * pending if the process died while an attempt was in flight (at-least-once delivery; receivers
 * de-duplicate by event id). Events stay after delivery for stream replay (Last-Event-ID) until
 * pruned by age and count.
 *
 * Schema (its own tables; the file may be shared with other tables, see wg_outbox_open):
 *   wg_events(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, ts, session, event, body)
 *   wg_deliveries(seq, target, state 0 pending/1 in flight/2 failed, attempts, next_at,
 *                 last_try, last_status, last_error; PRIMARY KEY (seq, target))
 *   wg_outbox_meta(k PRIMARY KEY, v)    -- schema version
 *   temp.wg_live(target PRIMARY KEY)    -- targets configured in this process
 * Times are wall-clock milliseconds since the Unix epoch (they must survive a restart).
 *
 * One connection, used from the loop thread only; statements are prepared once.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_EVENTS_OUTBOX_H
#define WG_EVENTS_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "events/envelope.h"

#define WG_OUTBOX_SCHEMA_VERSION 1
/* Longest target key ("global" or "s:" and a session name). */
#define WG_OUTBOX_TARGET_MAX (WG_EVENT_SESSION_MAX + 2)
/* Longest last_error text kept. */
#define WG_OUTBOX_ERROR_MAX 200
/* How long a statement waits for a lock held by another connection. */
#define WG_OUTBOX_BUSY_TIMEOUT_MS 1000

enum wg_delivery_state {
    WG_DELIVERY_PENDING = 0,
    WG_DELIVERY_INFLIGHT = 1,
    WG_DELIVERY_FAILED = 2,
};

typedef struct wg_outbox wg_outbox;

/* One due delivery, with a copy of its event. */
typedef struct wg_delivery {
    int64_t seq;
    char target[WG_OUTBOX_TARGET_MAX + 1];
    unsigned attempts; /* attempts already made */
    char id[WG_EVENT_ID_LEN + 1];
    char event[WG_EVENT_NAME_MAX + 1];
    char *body; /* wa_malloc'd, NUL-terminated; owned by the caller of wg_outbox_due */
    size_t body_len;
} wg_delivery;

/*
 * Open (create, mode 0600) the database at path in WAL mode, create or check the schema, and
 * put back to pending every delivery left in flight by a previous process.
 * fsync_full: 1 selects synchronous=FULL (a commit survives power loss), 0 NORMAL (a commit
 * survives a crash of the process, the last ones may be lost on power loss; the usual WAL
 * choice). 0 and *out, WA_ESTORE (cannot open, not a database, newer schema), WA_ENOMEM.
 */
int wg_outbox_open(const char *path, int fsync_full, wg_outbox **out);
/* NULL allowed. */
void wg_outbox_close(wg_outbox *ob);

/* The largest stored event id into id ("" when none). 0 or WA_ESTORE. */
int wg_outbox_last_id(wg_outbox *ob, char id[WG_EVENT_ID_LEN + 1]);

/* Store an event and a pending delivery due at `now` for each of the ntargets targets, in one
 * transaction. *seq (may be NULL) receives the event's sequence number. 0, WA_EEXIST (id
 * already stored), WA_ESTORE (nothing stored). */
int wg_outbox_insert(wg_outbox *ob, const wg_envelope *env, const char *const *targets,
                     size_t ntargets, int64_t now, int64_t *seq);

/* Mark a target as configured (live=1) or not in this process; only live targets' deliveries
 * are handed out by wg_outbox_due. 0 or WA_ESTORE. */
int wg_outbox_set_live(wg_outbox *ob, const char *target, int live);
/* Delete the pending and in-flight deliveries of a target. *n (may be NULL) receives how many.
 */
int wg_outbox_drop_target(wg_outbox *ob, const char *target, int64_t *n);

/*
 * Up to max pending deliveries of live targets, oldest due first, that are due at `now`, or (if
 * flush_start > 0) were last tried before flush_start. Each is marked in flight (attempts + 1,
 * last_try = now) before it is returned. rows[i].body must be freed with wa_free by the caller
 * (wg_delivery_cleanup). 0 and *n, WA_ESTORE, WA_ENOMEM (*n rows were returned anyway).
 */
int wg_outbox_due(wg_outbox *ob, int64_t now, int64_t flush_start, wg_delivery *rows, size_t max,
                  size_t *n);
void wg_delivery_cleanup(wg_delivery *d);

/* Outcome of an attempt. error may be NULL. 0 or WA_ESTORE (also 0 when the row is gone). */
int wg_outbox_delivered(wg_outbox *ob, int64_t seq, const char *target);
int wg_outbox_retry(wg_outbox *ob, int64_t seq, const char *target, int64_t next_at, int status,
                    const char *error);
int wg_outbox_failed(wg_outbox *ob, int64_t seq, const char *target, int status, const char *error);
/* Back to pending, due at `at`, without counting the attempt (aborted at shutdown). */
int wg_outbox_unclaim(wg_outbox *ob, int64_t seq, const char *target, int64_t at);
/* Make every pending delivery of target that waits for a retry due at `now` (the target just
 * answered). */
int wg_outbox_wake_target(wg_outbox *ob, const char *target, int64_t now);

/* Earliest next_at among pending deliveries of live targets. 0, WA_ENOTFOUND, WA_ESTORE. */
int wg_outbox_next_due(wg_outbox *ob, int64_t *at);
/* Counts of deliveries in a state (WG_DELIVERY_*), or pending + in flight for state -1. target
 * NULL counts all targets. */
int wg_outbox_count(wg_outbox *ob, int state, const char *target, int64_t *n);
/* A delivery's attempts, state and last status (tests, diagnostics). 0, WA_ENOTFOUND. */
int wg_outbox_delivery_info(wg_outbox *ob, const char *id, const char *target, unsigned *attempts,
                            int *state, int *last_status);

/* Walk stored events with an id greater than after_id ("" or NULL: from the first), in id
 * order, at most max rows. cb's strings are valid during the call; a non-zero return stops the
 * walk and is returned. *nread (may be NULL) receives the number of rows read (matching or not:
 * fewer than max means the end was reached). 0 (also when no row), WA_ESTORE. */
typedef int (*wg_outbox_event_cb)(const char *id, const char *session, const char *event,
                                  const char *body, size_t body_len, void *user_data);
int wg_outbox_replay(wg_outbox *ob, const char *after_id, size_t max, wg_outbox_event_cb cb,
                     void *user_data, size_t *nread);

/* Delete events older than cut_ms, and beyond the newest keep_max, that no delivery waits for,
 * with their failed deliveries; pending deliveries of targets that are not live whose event is
 * older than cut_ms are dropped first. The newest event always stays (it seeds the id
 * generator). *deleted (may be NULL) receives the number of events deleted. */
int wg_outbox_prune(wg_outbox *ob, int64_t cut_ms, int64_t keep_max, int64_t *deleted);

#endif
