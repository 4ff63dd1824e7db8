/*
 * session.c - the session registry (see session.h): records in a name-sorted array, desired
 * state persisted in db.c, life cycle delegated to the backend.
 *
 * Order of effects, so that a crash at any point leaves a state the next boot can use: the
 * desired state is written to the database before the backend is asked to act on it.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/log.h"
#include "core/util.h"
#include "wa/error.h"

#define COMPONENT "session"

/* Login admission ramp: at most this many sessions log in at once (started, still STARTING:
 * DNS, TCP, TLS and Noise handshakes, login, prekey check); the others wait in a FIFO, STARTING
 * with a reason that says so, and start as slots free up (any status other than STARTING frees
 * one: WORKING, SCAN_QR, DISCONNECTED, FAILED, STOPPED...). It applies to every start: the boot
 * (sessions loaded from the database), POST /api/sessions with start and .../start. Why: 10,000
 * clients logging in at once kept RSS at 47.7 KiB per client afterwards against 25.7 KiB with a
 * ramp (bench/clients), because the TLS handshakes in flight at the same time fragment the heap
 * for good. Pairing by code (an interactive request) is not held back. */
#define LOGIN_ADMIT_MAX 200

struct wg_sessions {
    wg_db *db;
    const wg_backend *be;
    wg_session **v; /* sorted by name */
    size_t n, cap;
    wg_session_status_cb observer;
    void *observer_data;
    wg_session_event_cb sink;
    void *sink_data;
    wg_session_state_cb state_changed; /* the backend's durable state changed (backups) */
    void *state_data;
    int freeing;                    /* wg_sessions_free runs: records are being freed, no lookups */
    unsigned store_max, store_days; /* message store bounds (0: off) */
    size_t prune_next;              /* round-robin position of wg_sessions_prune_store */
    /* login admission (LOGIN_ADMIT_MAX): waiting[wait_head..n_wait) in order (NULL: left the
     * queue), admitted[] the sessions started and still STARTING */
    wg_session **waiting;
    size_t wait_head, n_wait, cap_wait;
    wg_session *admitted[LOGIN_ADMIT_MAX];
    size_t n_admitted;
    int admitting; /* admit_pump runs (no nested pump) */
    int admit_off; /* shutting down: nothing more is admitted */
};

static void admit_unqueue(wg_sessions *ss, wg_session *s);
static void admit_forget(wg_sessions *ss, wg_session *s);

static const char *const status_names[WG_STATUS_COUNT] = {
    "STARTING",     "SCAN_QR",    "PAIRING_CODE", "WORKING",
    "DISCONNECTED", "LOGGED_OUT", "FAILED",       "STOPPED"};

const char *wg_status_name(int status)
{
    if (status < 0 || status >= WG_STATUS_COUNT)
        return "UNKNOWN";
    return status_names[status];
}

int wg_session_name_valid(const char *name)
{
    size_t i, n = strlen(name);

    if (n == 0 || n > WG_SESSION_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '-' && c != '_')))
            return 0;
    }
    return 1;
}

int wg_sessions_new(wg_db *db, const wg_backend *backend, wg_sessions **out)
{
    wg_sessions *ss = calloc(1, sizeof *ss);

    if (!ss)
        return WA_ENOMEM;
    ss->db = db;
    ss->be = backend;
    *out = ss;
    return 0;
}

static void close_handle(wg_sessions *ss, wg_session *s)
{
    if (s->backend) {
        ss->be->ops->close(ss->be->ctx, s->backend);
        s->backend = NULL;
    }
}

static void notify(wg_session *s)
{
    wg_session_watch *w = s->watches, *next;

    for (; w; w = next) {
        next = w->next; /* fn may remove w (only w) */
        w->fn(w, s, 0);
    }
}

void wg_session_watch_add(wg_session *s, wg_session_watch *w)
{
    w->next = s->watches;
    s->watches = w;
}

void wg_session_watch_remove(wg_session *s, wg_session_watch *w)
{
    wg_session_watch **pp;

    for (pp = &s->watches; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            w->next = NULL;
            return;
        }
    }
}

/* The record goes away: every watch is told (and removed) first. */
static void watches_gone(wg_session *s)
{
    while (s->watches) {
        wg_session_watch *w = s->watches;
        s->watches = w->next;
        w->next = NULL;
        w->fn(w, s, 1);
    }
}

static void session_free(wg_session *s)
{
    watches_gone(s);
    free(s->qr);
    free(s->config_json);
    free(s);
}

void wg_sessions_free(wg_sessions *ss)
{
    size_t i;

    if (!ss)
        return;
    ss->freeing = 1;
    for (i = 0; i < ss->n; i++) {
        close_handle(ss, ss->v[i]);
        session_free(ss->v[i]);
    }
    free(ss->v);
    free(ss->waiting);
    free(ss);
}

void wg_sessions_set_event_sink(wg_sessions *ss, wg_session_event_cb cb, void *user_data)
{
    ss->sink = cb;
    ss->sink_data = user_data;
}

/* ---- the message store ---- */

/* With the store off, ids of incoming messages are kept this long and this many per session
 * (to drop flagged repeats). */
#define DEDUPE_KEEP_S   86400
#define DEDUPE_KEEP_MAX 10000
/* Work bounds of one wg_sessions_prune_store run. */
#define PRUNE_BUDGET   10000
#define PRUNE_SESSIONS 64

void wg_sessions_set_store(wg_sessions *ss, unsigned max, unsigned retention_days)
{
    ss->store_max = max;
    ss->store_days = retention_days;
}

int wg_sessions_store_enabled(const wg_sessions *ss)
{
    return ss->store_max > 0 && ss->store_days > 0;
}

wg_db *wg_sessions_db(const wg_sessions *ss)
{
    return ss->db;
}

void wg_sessions_prune_store(wg_sessions *ss)
{
    int on = wg_sessions_store_enabled(ss);
    int64_t cut = (int64_t)time(NULL) - (on ? (int64_t)ss->store_days * 86400 : DEDUPE_KEEP_S);
    size_t budget = PRUNE_BUDGET, n = 0, i, checked = 0;

    if (wg_db_msg_prune_age(ss->db, cut, budget, &n) != 0)
        return;
    budget -= n < budget ? n : budget;
    for (i = 0; i < ss->n && budget > 0 && checked < PRUNE_SESSIONS; i++) {
        wg_session *x = ss->v[(ss->prune_next + i) % ss->n];
        if (!x->store_dirty)
            continue;
        checked++;
        n = 0;
        if (wg_db_msg_prune_session(ss->db, x->name, on ? ss->store_max : DEDUPE_KEEP_MAX, budget,
                                    &n) != 0)
            break;
        budget -= n < budget ? n : budget;
        if (budget > 0)
            x->store_dirty = 0; /* else more may be left: again next time */
    }
    if (ss->n)
        ss->prune_next = (ss->prune_next + i) % ss->n;
}

static const char *jstr_or(json_t *o, const char *key, const char *dflt)
{
    json_t *v = json_object_get(o, key);

    return json_is_string(v) ? json_string_value(v) : dflt;
}

/* The stored kind of a message event, or NULL when the event is not a message. */
static const char *message_kind(const char *event, json_t *payload)
{
    if (!strcmp(event, "message"))
        return jstr_or(payload, "type", "other");
    if (!strcmp(event, "message.reaction"))
        return "reaction";
    if (!strcmp(event, "message.edited"))
        return "edit";
    if (!strcmp(event, "message.revoked"))
        return "revoke";
    return NULL;
}

/* The text a stored row shows for a payload of this kind. */
static const char *row_text(const char *kind, json_t *p)
{
    if (!strcmp(kind, "reaction"))
        return jstr_or(p, "emoji", NULL);
    if (!strcmp(kind, "location") || !strcmp(kind, "contact"))
        return jstr_or(p, "name", NULL);
    return jstr_or(p, "text", NULL);
}

static void store_row(wg_session *s, const char *kind, json_t *p, int from_me, const char *status)
{
    wg_sessions *ss = s->owner;
    int on = wg_sessions_store_enabled(ss);
    char *body = on ? json_dumps(p, JSON_COMPACT) : NULL;
    json_t *ts = json_object_get(p, "timestamp");
    wg_db_msg m;
    int rc;

    m.chat = jstr_or(p, "chat", NULL);
    m.id = jstr_or(p, "id", NULL);
    if (!m.chat || !m.id || (on && !body)) {
        free(body);
        return;
    }
    m.sender = from_me ? "" : jstr_or(p, "from", "");
    m.kind = kind;
    m.text = on ? row_text(kind, p) : NULL;
    m.body = body;
    m.status = status;
    m.from_me = from_me;
    m.ts = json_is_integer(ts) ? (int64_t)json_integer_value(ts) : (int64_t)time(NULL);
    rc = wg_db_msg_put(ss->db, s->name, &m, (int64_t)time(NULL));
    if (rc && rc != WA_EEXIST)
        wa_log_warn(COMPONENT, "session %s: message %s not stored: %s", s->name, m.id,
                    wa_strerror(rc));
    else if (!rc)
        s->store_dirty = 1;
    free(body);
}

/* message.ack: statuses of stored messages of ours move forward. */
static void store_ack(wg_session *s, json_t *p)
{
    const char *status = jstr_or(p, "status", NULL), *id = jstr_or(p, "id", NULL);
    json_t *ids = json_object_get(p, "ids"), *v;
    size_t i;

    if (!status || !wg_sessions_store_enabled(s->owner))
        return;
    if (id)
        wg_db_msg_set_status(s->owner->db, s->name, NULL, id, status);
    json_array_foreach(ids, i, v)
    {
        if (json_is_string(v))
            wg_db_msg_set_status(s->owner->db, s->name, NULL, json_string_value(v), status);
    }
}

void wg_session_report_sent(wg_session *s, const char *chat, const char *id, json_t *req)
{
    const char *kind = jstr_or(req, "kind", "text");
    json_t *p;

    if (!wg_sessions_store_enabled(s->owner))
        return;
    p = json_pack("{s:s, s:s, s:s, s:b, s:I}", "id", id, "chat", chat, "type", kind, "from_me", 1,
                  "timestamp", (json_int_t)time(NULL));
    if (!p)
        return;
    /* the request's content, without its routing fields */
    {
        const char *key;
        json_t *v;
        json_object_foreach(req, key, v)
        {
            if (strcmp(key, "to") && strcmp(key, "kind") && strcmp(key, "id"))
                json_object_set(p, key, v);
        }
    }
    store_row(s, kind, p, 1, "pending");
    json_decref(p);
}

int wg_session_report_event(wg_session *s, const char *event, json_t *payload)
{
    int published = payload != NULL;

    const char *kind = payload ? message_kind(event, payload) : NULL;

    if (kind && json_is_true(json_object_get(payload, "maybe_repeat"))) {
        /* libwa hands this message over again after a crash: published already if recorded */
        const char *chat = jstr_or(payload, "chat", ""), *id = jstr_or(payload, "id", "");
        if (wg_db_msg_exists(s->owner->db, s->name, chat, id) == 1) {
            wa_log_info(COMPONENT, "session %s: message %s was delivered before: not repeated",
                        s->name, id);
            json_decref(payload);
            return 0;
        }
    }
    if (payload && s->owner->sink)
        s->owner->sink(s, event, payload, s->owner->sink_data);
    /* recorded after publishing: a crash in between repeats it (flagged), never loses it */
    if (kind)
        store_row(s, kind, payload, json_is_true(json_object_get(payload, "from_me")),
                  json_is_true(json_object_get(payload, "from_me")) ? "sent" : "received");
    else if (payload && !strcmp(event, "message.ack"))
        store_ack(s, payload);
    json_decref(payload);
    return published;
}

int wg_sessions_send(wg_sessions *ss, wg_session *s, json_t *req, wg_send_cb cb, void *user_data)
{
    if (!ss->be->ops->send || !ss->be->ops->send_cancel)
        return WA_EUNSUPPORTED;
    if (!s->backend || !s->want_running)
        return WA_ESTATE;
    return ss->be->ops->send(ss->be->ctx, s->backend, req, cb, user_data);
}

void wg_sessions_send_cancel(wg_sessions *ss, wg_session *s, void *user_data)
{
    if (s->backend && ss->be->ops->send_cancel)
        ss->be->ops->send_cancel(ss->be->ctx, s->backend, user_data);
}

int wg_sessions_mark_read(wg_sessions *ss, wg_session *s, const char *chat, const char *sender,
                          const char *const *ids, size_t n)
{
    size_t i;
    int rc;

    if (!ss->be->ops->mark_read)
        return WA_EUNSUPPORTED;
    if (!s->backend || !s->want_running)
        return WA_ESTATE;
    rc = ss->be->ops->mark_read(ss->be->ctx, s->backend, chat, sender, ids, n);
    for (i = 0; rc == 0 && wg_sessions_store_enabled(ss) && i < n; i++)
        wg_db_msg_set_status(ss->db, s->name, NULL, ids[i], "read");
    return rc;
}

int wg_sessions_call(wg_sessions *ss, wg_session *s, json_t *req, wg_call_cb cb, void *user_data)
{
    if (!ss->be->ops->call || !ss->be->ops->call_cancel)
        return WA_EUNSUPPORTED;
    if (!s->backend || !s->want_running)
        return WA_ESTATE;
    return ss->be->ops->call(ss->be->ctx, s->backend, req, cb, user_data);
}

void wg_sessions_call_cancel(wg_sessions *ss, wg_session *s, void *user_data)
{
    if (s->backend && ss->be->ops->call_cancel)
        ss->be->ops->call_cancel(ss->be->ctx, s->backend, user_data);
}

int wg_sessions_act(wg_sessions *ss, wg_session *s, json_t *req)
{
    if (!ss->be->ops->act)
        return WA_EUNSUPPORTED;
    if (!s->backend || !s->want_running)
        return WA_ESTATE;
    return ss->be->ops->act(ss->be->ctx, s->backend, req);
}

/* ---- the durable send queue ---- */

/* Queued sends handed to the backend at once (the next batch follows when they finished). */
#define QUEUE_BATCH 16

typedef struct queued_send {
    wg_sessions *ss;
    char name[WG_SESSION_NAME_MAX + 1];
    char id[WG_QUEUE_ID_MAX];
} queued_send;

static void queue_flush(wg_sessions *ss, wg_session *s);

static void queue_failed(wg_session *s, const char *id, const char *error, const char *detail)
{
    wg_session_report_event(s, "message.ack",
                            json_pack("{s:s, s:s, s:s, s:s, s:b}", "id", id, "status", "failed",
                                      "error", error, "message", detail, "queued", 1));
}

static void queue_done(void *ud, const wg_send_result *r)
{
    queued_send *q = ud;
    wg_sessions *ss = q->ss;
    wg_session *s = ss->freeing ? NULL : wg_sessions_find(ss, q->name);
    int drop = 1;

    if (s && s->queue_inflight)
        s->queue_inflight--;
    if (r->not_registered) {
        if (s)
            queue_failed(s, q->id, "not_on_whatsapp", "the phone number is not on WhatsApp");
    } else if (r->err == WA_ECLOSED || r->err == WA_ETIMEDOUT) {
        drop = 0; /* the connection ended first: it goes out at the next WORKING */
    } else if (r->err && s) {
        queue_failed(s, q->id, "send_failed", r->detail[0] ? r->detail : wa_strerror(r->err));
    } else if (!r->err && s && r->id[0] && strcmp(r->id, q->id) != 0) {
        /* reactions, edits and revokes get their id from the client: tell which one it was */
        wg_session_report_event(s, "message.ack",
                                json_pack("{s:s, s:s, s:s, s:b}", "id", q->id, "status", "sent",
                                          "message_id", r->id, "queued", 1));
    }
    if (ss->freeing)
        drop = 0; /* shutting down: the outcome is unknown, it stays queued */
    if (drop && wg_db_queue_delete(ss->db, q->id) != 0)
        wa_log_warn(COMPONENT, "queued send %s: cannot delete it from the queue", q->id);
    free(q);
    if (s && !s->queue_inflight && drop)
        queue_flush(ss, s);
}

struct flush_ctx {
    wg_sessions *ss;
    wg_session *s;
    int stop;
};

static int flush_one(const char *id, const char *body, void *user_data)
{
    struct flush_ctx *fc = user_data;
    json_t *req = json_loads(body, 0, NULL);
    queued_send *q = calloc(1, sizeof *q);
    int rc = WA_ENOMEM;

    if (req && q) {
        q->ss = fc->ss;
        snprintf(q->name, sizeof q->name, "%s", fc->s->name);
        snprintf(q->id, sizeof q->id, "%s", id);
        rc = wg_sessions_send(fc->ss, fc->s, req, queue_done, q);
    }
    json_decref(req);
    if (rc == 0) {
        fc->s->queue_inflight++;
        return 0;
    }
    free(q);
    if (rc == WA_ESTATE || rc == WA_ELIMIT || rc == WA_ENOMEM || rc == WA_EUNSUPPORTED) {
        fc->stop = 1;
        return 1; /* later */
    }
    queue_failed(fc->s, id, rc == WA_ENOTFOUND ? "not_on_whatsapp" : "send_failed",
                 rc == WA_ENOTFOUND ? "the phone number is not on WhatsApp" : wa_strerror(rc));
    wg_db_queue_delete(fc->ss->db, id);
    return 0;
}

/* Hand the next batch of queued sends to the backend (the session is WORKING). */
static void queue_flush(wg_sessions *ss, wg_session *s)
{
    struct flush_ctx fc = {ss, s, 0};

    if (s->status != WG_STATUS_WORKING || s->queue_inflight)
        return;
    if (wg_db_queue_load(ss->db, s->name, QUEUE_BATCH, flush_one, &fc) != 0 && !fc.stop)
        wa_log_warn(COMPONENT, "session %s: the send queue cannot be read", s->name);
}

int wg_sessions_queue(wg_sessions *ss, wg_session *s, json_t *req, char *id_out)
{
    static const char hex[] = "0123456789ABCDEF";
    uint8_t rnd[9];
    char id[WG_QUEUE_ID_MAX], *body = NULL;
    size_t n = 0, i;
    int rc;

    if ((rc = wg_db_queue_count(ss->db, s->name, &n)) != 0)
        return rc;
    if (n >= WG_SEND_QUEUE_MAX)
        return WA_ELIMIT;
    if (wa_random(rnd, sizeof rnd))
        return WA_EIO;
    memcpy(id, "3EB0", 4);
    for (i = 0; i < sizeof rnd; i++) {
        id[4 + 2 * i] = hex[rnd[i] >> 4];
        id[5 + 2 * i] = hex[rnd[i] & 15];
    }
    id[4 + 2 * sizeof rnd] = '\0';
    if (json_object_set_new(req, "id", json_string(id)) || !(body = json_dumps(req, JSON_COMPACT)))
        return WA_ENOMEM;
    rc = wg_db_queue_add(ss->db, id, s->name, body, (int64_t)time(NULL));
    free(body);
    if (rc == 0)
        memcpy(id_out, id, strlen(id) + 1);
    return rc;
}

void wg_sessions_set_observer(wg_sessions *ss, wg_session_status_cb cb, void *user_data)
{
    ss->observer = cb;
    ss->observer_data = user_data;
}

void wg_sessions_set_state_observer(wg_sessions *ss, wg_session_state_cb cb, void *user_data)
{
    ss->state_changed = cb;
    ss->state_data = user_data;
}

void wg_session_report_state_changed(wg_session *s, const char *what)
{
    if (s->owner->state_changed && !s->owner->freeing)
        s->owner->state_changed(s, what, s->owner->state_data);
}

/* Index of name, or of where it would go (*found set accordingly). */
static size_t lookup(const wg_sessions *ss, const char *name, int *found)
{
    size_t lo = 0, hi = ss->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ss->v[mid]->name, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

size_t wg_sessions_count(const wg_sessions *ss)
{
    return ss->n;
}

wg_session *wg_sessions_at(const wg_sessions *ss, size_t i)
{
    return i < ss->n ? ss->v[i] : NULL;
}

wg_session *wg_sessions_find(const wg_sessions *ss, const char *name)
{
    int found;
    size_t i = lookup(ss, name, &found);

    return found ? ss->v[i] : NULL;
}

size_t wg_sessions_running(const wg_sessions *ss)
{
    size_t i, n = 0;

    for (i = 0; i < ss->n; i++)
        n += ss->v[i]->want_running ? 1 : 0;
    return n;
}

void wg_sessions_count_by_status(const wg_sessions *ss, size_t *counts)
{
    size_t i;

    memset(counts, 0, WG_STATUS_COUNT * sizeof *counts);
    for (i = 0; i < ss->n; i++)
        if (ss->v[i]->status >= 0 && ss->v[i]->status < WG_STATUS_COUNT)
            counts[ss->v[i]->status]++;
}

/* A new record inserted in order (not persisted). */
static int add_record(wg_sessions *ss, const char *name, const char *config_json,
                      int64_t created_at, wg_session **out)
{
    wg_session *s;
    int found;
    size_t at = lookup(ss, name, &found);

    if (found)
        return WA_EEXIST;
    if (ss->n >= WG_SESSIONS_MAX)
        return WA_ELIMIT;
    if (ss->n == ss->cap) {
        size_t ncap = ss->cap ? ss->cap * 2 : 16;
        wg_session **nv = realloc(ss->v, ncap * sizeof *nv);
        if (!nv)
            return WA_ENOMEM;
        ss->v = nv;
        ss->cap = ncap;
    }
    s = calloc(1, sizeof *s);
    if (!s)
        return WA_ENOMEM;
    s->config_json = strdup(config_json ? config_json : "{}");
    if (!s->config_json) {
        free(s);
        return WA_ENOMEM;
    }
    memcpy(s->name, name, strlen(name) + 1);
    s->status = WG_STATUS_STOPPED;
    s->created_at = created_at;
    s->owner = ss;
    memmove(ss->v + at + 1, ss->v + at, (ss->n - at) * sizeof *ss->v);
    ss->v[at] = s;
    ss->n++;
    *out = s;
    return 0;
}

static void remove_record(wg_sessions *ss, wg_session *s)
{
    int found;
    size_t at = lookup(ss, s->name, &found);

    if (!found)
        return;
    memmove(ss->v + at, ss->v + at + 1, (ss->n - at - 1) * sizeof *ss->v);
    ss->n--;
    admit_forget(ss, s);
    session_free(s);
}

static int is_active(const wg_session *s)
{
    return s->status != WG_STATUS_STOPPED && s->status != WG_STATUS_FAILED &&
           s->status != WG_STATUS_LOGGED_OUT;
}

/* Open the handle if needed and start it; on failure the session is FAILED and closed. */
static int backend_start(wg_sessions *ss, wg_session *s)
{
    int rc = 0;

    if (!s->backend)
        rc = ss->be->ops->open(ss->be->ctx, s, &s->backend);
    if (!rc)
        rc = ss->be->ops->start(ss->be->ctx, s->backend);
    if (rc) {
        close_handle(ss, s);
        wg_session_report_status(s, WG_STATUS_FAILED, wa_strerror(rc));
        wa_log_warn(COMPONENT, "session %s: start failed: %s", s->name, wa_strerror(rc));
    }
    return rc;
}

/* ---- login admission ------------------------------------------------------------------------ */

static int admit_holds(const wg_sessions *ss, const wg_session *s, size_t *at)
{
    size_t i;

    for (i = 0; i < ss->n_admitted; i++) {
        if (ss->admitted[i] == s) {
            *at = i;
            return 1;
        }
    }
    return 0;
}

/* Start waiting sessions while slots are free. */
static void admit_pump(wg_sessions *ss)
{
    if (ss->admitting || ss->freeing || ss->admit_off)
        return;
    ss->admitting = 1;
    while (ss->n_admitted < LOGIN_ADMIT_MAX && ss->wait_head < ss->n_wait) {
        wg_session *s = ss->waiting[ss->wait_head++];
        if (!s || !s->want_running || s->backend)
            continue; /* stopped, or started another way (pairing by code) meanwhile */
        ss->admitted[ss->n_admitted++] = s;
        backend_start(ss, s); /* a failure reports FAILED, which frees the slot */
    }
    if (ss->wait_head == ss->n_wait) {
        ss->wait_head = ss->n_wait = 0;
    } else if (ss->wait_head > 1024 && ss->wait_head > ss->n_wait / 2) {
        memmove(ss->waiting, ss->waiting + ss->wait_head,
                (ss->n_wait - ss->wait_head) * sizeof *ss->waiting);
        ss->n_wait -= ss->wait_head;
        ss->wait_head = 0;
    }
    ss->admitting = 0;
}

/* s no longer holds a login slot (it left STARTING). */
static void admit_release(wg_sessions *ss, wg_session *s)
{
    size_t at;

    if (!admit_holds(ss, s, &at))
        return;
    ss->admitted[at] = ss->admitted[--ss->n_admitted];
    admit_pump(ss);
}

/* s leaves the queue of waiting sessions (if it was there). */
static void admit_unqueue(wg_sessions *ss, wg_session *s)
{
    size_t i;

    for (i = ss->wait_head; i < ss->n_wait; i++)
        if (ss->waiting[i] == s)
            ss->waiting[i] = NULL;
}

/* s leaves the ramp altogether (stopped, deleted). */
static void admit_forget(wg_sessions *ss, wg_session *s)
{
    admit_unqueue(ss, s);
    admit_release(ss, s);
}

/* Start s now if a login slot is free and nobody waits, else queue it (STARTING). 0 or the
 * backend's error of an immediate start (then s is FAILED). */
static int request_start(wg_sessions *ss, wg_session *s)
{
    char reason[WG_SESSION_REASON_MAX];
    size_t at;
    int rc;

    if (ss->n_admitted < LOGIN_ADMIT_MAX && ss->wait_head == ss->n_wait) {
        if (!admit_holds(ss, s, &at))
            ss->admitted[ss->n_admitted++] = s;
        rc = backend_start(ss, s);
        if (rc)
            admit_release(ss, s);
        return rc;
    }
    if (ss->n_wait == ss->cap_wait) {
        size_t ncap = ss->cap_wait ? ss->cap_wait * 2 : 256;
        wg_session **nv = realloc(ss->waiting, ncap * sizeof *nv);
        if (!nv)
            return backend_start(ss, s); /* no room to wait: start it anyway */
        ss->waiting = nv;
        ss->cap_wait = ncap;
    }
    ss->waiting[ss->n_wait++] = s;
    snprintf(reason, sizeof reason, "waiting to log in (at most %d sessions log in at once)",
             LOGIN_ADMIT_MAX);
    wg_session_report_status(s, WG_STATUS_STARTING, reason);
    return 0;
}

int wg_sessions_create(wg_sessions *ss, const char *name, const char *config_json, int start,
                       wg_session **out)
{
    wg_session *s;
    int64_t now = (int64_t)time(NULL);
    int rc;

    if (!wg_session_name_valid(name))
        return WA_EINVAL;
    if ((rc = add_record(ss, name, config_json, now, &s)))
        return rc;
    rc = wg_db_session_insert(ss->db, name, now, start, config_json);
    if (rc) {
        remove_record(ss, s);
        return rc;
    }
    s->want_running = start;
    if (start && (rc = request_start(ss, s))) {
        wg_db_session_delete(ss->db, name);
        remove_record(ss, s);
        return rc;
    }
    wa_log_info(COMPONENT, "session %s created%s", name, start ? " and started" : "");
    *out = s;
    return 0;
}

int wg_sessions_start(wg_sessions *ss, wg_session *s)
{
    int rc;

    if (s->want_running && is_active(s))
        return WA_ESTATE;
    if ((rc = wg_db_session_set_running(ss->db, s->name, 1)))
        return rc;
    s->want_running = 1;
    if ((rc = request_start(ss, s))) {
        s->want_running = 0;
        wg_db_session_set_running(ss->db, s->name, 0);
        return rc;
    }
    wa_log_info(COMPONENT, "session %s started", s->name);
    return 0;
}

static void backend_stop(wg_sessions *ss, wg_session *s)
{
    admit_unqueue(ss, s); /* before anything can admit it */
    if (s->backend)
        ss->be->ops->stop(ss->be->ctx, s->backend);
    close_handle(ss, s);
    if (s->status != WG_STATUS_STOPPED && s->status != WG_STATUS_LOGGED_OUT)
        wg_session_report_status(s, WG_STATUS_STOPPED, NULL);
    admit_forget(ss, s); /* its slot, if it was logging in, goes to the next one */
}

int wg_sessions_stop(wg_sessions *ss, wg_session *s)
{
    int rc;

    if (s->want_running && (rc = wg_db_session_set_running(ss->db, s->name, 0)))
        return rc;
    s->want_running = 0;
    backend_stop(ss, s);
    wa_log_info(COMPONENT, "session %s stopped", s->name);
    return 0;
}

int wg_sessions_logout(wg_sessions *ss, wg_session *s)
{
    int rc;

    if (s->want_running && (rc = wg_db_session_set_running(ss->db, s->name, 0)))
        return rc;
    s->want_running = 0;
    if (!s->backend && (rc = ss->be->ops->open(ss->be->ctx, s, &s->backend)))
        return rc;
    rc = ss->be->ops->logout(ss->be->ctx, s->backend);
    if (rc) {
        backend_stop(ss, s);
        return rc;
    }
    if (s->backend)
        ss->be->ops->stop(ss->be->ctx, s->backend);
    close_handle(ss, s);
    s->me[0] = '\0';
    s->me_lid[0] = '\0';
    if (s->status != WG_STATUS_LOGGED_OUT)
        wg_session_report_status(s, WG_STATUS_LOGGED_OUT, "logged out by request");
    wa_log_info(COMPONENT, "session %s logged out", s->name);
    return 0;
}

int wg_sessions_pair_phone(wg_sessions *ss, wg_session *s, const char *phone)
{
    int was_running = s->want_running, rc;

    if (!ss->be->ops->pair_phone)
        return WA_EUNSUPPORTED;
    if (!was_running && (rc = wg_db_session_set_running(ss->db, s->name, 1)))
        return rc;
    s->want_running = 1;
    if (!s->backend)
        rc = ss->be->ops->open(ss->be->ctx, s, &s->backend);
    else
        rc = 0;
    s->pair_gen++;
    s->pair_code[0] = '\0';
    if (!rc)
        rc = ss->be->ops->pair_phone(ss->be->ctx, s->backend, phone);
    if (rc) {
        if (!was_running) {
            s->want_running = 0;
            wg_db_session_set_running(ss->db, s->name, 0);
        }
        wa_log_info(COMPONENT, "session %s: pairing by code refused: %s", s->name, wa_strerror(rc));
        return rc;
    }
    wa_log_info(COMPONENT, "session %s: pairing by phone code started", s->name);
    return 0;
}

int wg_sessions_delete(wg_sessions *ss, wg_session *s)
{
    int rc;

    watches_gone(s); /* waiters learn of the deletion, not of the stop that precedes it */
    backend_stop(ss, s);
    s->want_running = 0;
    if ((rc = ss->be->ops->purge(ss->be->ctx, s->name)))
        wa_log_warn(COMPONENT, "session %s: purging its state failed: %s", s->name,
                    wa_strerror(rc));
    if ((rc = wg_db_session_delete(ss->db, s->name)) && rc != WA_ENOTFOUND)
        return rc;
    if (wg_db_queue_purge(ss->db, s->name))
        wa_log_warn(COMPONENT, "session %s: its queued sends could not be dropped", s->name);
    if (wg_db_msg_purge(ss->db, s->name))
        wa_log_warn(COMPONENT, "session %s: its stored messages could not be dropped", s->name);
    wa_log_info(COMPONENT, "session %s deleted", s->name);
    remove_record(ss, s);
    return 0;
}

void wg_sessions_stop_all(wg_sessions *ss)
{
    size_t i;

    ss->admit_off = 1; /* no waiting session starts while the others stop */
    for (i = 0; i < ss->n; i++)
        backend_stop(ss, ss->v[i]);
}

void wg_sessions_trim(wg_sessions *ss)
{
    if (ss->be->ops->trim)
        ss->be->ops->trim(ss->be->ctx);
}

size_t wg_session_memory(const wg_session *s)
{
    size_t n = sizeof *s + strlen(s->config_json) + 1 + (s->qr ? strlen(s->qr) + 1 : 0);
    const wg_backend *be = s->owner->be;

    if (s->backend && be->ops->memory)
        n += be->ops->memory(be->ctx, s->backend);
    return n;
}

typedef struct load_ctx {
    wg_sessions *ss;
    size_t loaded, started;
} load_ctx;

static int load_one(const char *name, int64_t created_at, int want_running, const char *config_json,
                    void *ud)
{
    load_ctx *lc = ud;
    wg_session *s;
    int rc;

    if (!wg_session_name_valid(name)) {
        wa_log_warn(COMPONENT, "skipping a stored session with an invalid name");
        return 0;
    }
    if ((rc = add_record(lc->ss, name, config_json, created_at, &s)))
        return rc == WA_EEXIST ? 0 : rc;
    lc->loaded++;
    if (want_running) {
        s->want_running = 1;
        /* a failure leaves the session FAILED with its reason, and the others start */
        if (request_start(lc->ss, s) == 0)
            lc->started++;
    }
    return 0;
}

int wg_sessions_load(wg_sessions *ss)
{
    load_ctx lc = {ss, 0, 0};
    int rc = wg_db_sessions_load(ss->db, load_one, &lc);

    if (!rc)
        wa_log_info(COMPONENT, "%zu sessions loaded, %zu started (%zu logging in, %zu waiting)",
                    lc.loaded, lc.started, ss->n_admitted, ss->n_wait - ss->wait_head);
    return rc;
}

void wg_session_report_status(wg_session *s, int status, const char *reason)
{
    int old = s->status;

    if (status < 0 || status >= WG_STATUS_COUNT)
        return;
    s->status = status;
    snprintf(s->reason, sizeof s->reason, "%s", reason ? reason : "");
    if (status != WG_STATUS_SCAN_QR) {
        free(s->qr);
        s->qr = NULL;
    }
    if (status != WG_STATUS_PAIRING_CODE)
        s->pair_code[0] = '\0';
    if (status == WG_STATUS_LOGGED_OUT) {
        s->me[0] = '\0';
        s->me_lid[0] = '\0';
        if (s->want_running) {
            /* unlinked: it would only show a new QR at the next boot */
            s->want_running = 0;
            if (wg_db_session_set_running(s->owner->db, s->name, 0))
                wa_log_warn(COMPONENT, "session %s: cannot persist the stopped state", s->name);
        }
    }
    if (old != status) {
        wa_log_info(COMPONENT, "session %s: %s -> %s%s%s", s->name, wg_status_name(old),
                    wg_status_name(status), reason ? ": " : "", reason ? reason : "");
        if (s->owner->observer)
            s->owner->observer(s, old, s->owner->observer_data);
    }
    notify(s);
    if (status == WG_STATUS_WORKING && old != status)
        queue_flush(s->owner, s);
    if (status != WG_STATUS_STARTING)
        admit_release(s->owner, s); /* its login is over: the next waiting one starts */
}

void wg_session_report_qr(wg_session *s, const char *text)
{
    char *copy = text ? strdup(text) : NULL;

    free(s->qr);
    s->qr = copy;
    if (copy && s->status != WG_STATUS_SCAN_QR)
        wg_session_report_status(s, WG_STATUS_SCAN_QR, NULL); /* notifies */
    else
        notify(s);
}

void wg_session_report_pair_code(wg_session *s, const char *code)
{
    snprintf(s->pair_code, sizeof s->pair_code, "%s", code ? code : "");
    if (s->pair_code[0] && s->status != WG_STATUS_PAIRING_CODE)
        wg_session_report_status(s, WG_STATUS_PAIRING_CODE, NULL); /* notifies */
    else
        notify(s);
}

void wg_session_report_me(wg_session *s, const char *jid, const char *lid)
{
    snprintf(s->me, sizeof s->me, "%s", jid ? jid : "");
    snprintf(s->me_lid, sizeof s->me_lid, "%s", lid ? lid : "");
    notify(s);
}
