/*
 * envelope.h - wagate's event envelope and the pieces every delivery path shares: sortable event
 * ids, the registry of event names, and subscription filters.
 *
 * An event is one JSON object, the same bytes for webhooks, the WebSocket stream, SSE and the
 * outbox:
 *
 *   {"id":"01HV3K9Z8Q0000000000000000","timestamp":1712345678901,"session":"default",
 *    "event":"message","payload":{...}}
 *
 *   id         26 characters, a ULID (https://github.com/ulid/spec): 48-bit Unix time in ms and
 *              80 bits of randomness in Crockford base32. The generator is monotonic: ids made
 *              by one process (and, seeded with the newest stored id, across restarts) sort in
 *              creation order as plain strings, which is what SSE's Last-Event-ID resumption
 *              relies on ("everything after this id").
 *   timestamp  milliseconds since the Unix epoch (integer).
 *   session    the session's name, or null for gateway-wide events.
 *   event      a dotted name from the registry below.
 *   payload    an object chosen by the producer of the event.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_EVENTS_ENVELOPE_H
#define WG_EVENTS_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define WG_EVENT_ID_LEN 26
/* Longest session name carried (WG_SESSION_NAME_MAX of session.h). */
#define WG_EVENT_SESSION_MAX 64
/* Longest event name, and longest filter pattern ("message.*"). */
#define WG_EVENT_NAME_MAX 32
/* Largest serialized envelope; bigger events are refused (WA_ELIMIT). */
#define WG_EVENT_JSON_MAX ((size_t)1 << 20)
/* Most patterns (or session names) in one filter. */
#define WG_EVENT_FILTER_MAX 32

/* The registry: every name an envelope may carry. */
#define WG_EVENT_NAMES(X)                                                                          \
    X("session.status")                                                                            \
    X("message")                                                                                   \
    X("message.ack")                                                                               \
    X("message.reaction")                                                                          \
    X("message.edited")                                                                            \
    X("message.revoked")                                                                           \
    X("presence.update")                                                                           \
    X("group.update")                                                                              \
    X("message.decrypt_failed")                                                                    \
    X("contact.identity_changed")

/* 1 if name is in the registry. */
int wg_event_name_known(const char *name);
/* The registry as a NULL-terminated array (static). */
const char *const *wg_event_names(void);

/* ---- ids ---- */

/* Monotonic ULID generator; zero-initialise, optionally seed. */
typedef struct wg_event_idgen {
    uint64_t last_ms;
    uint8_t last_rand[10];
    int have_last;
} wg_event_idgen;

/* Make every later id sort after `id` (the newest id already stored). WA_EINVAL if id is not a
 * valid ULID (the generator is then unchanged). */
int wg_event_idgen_seed(wg_event_idgen *g, const char *id);
/* Write the next id (26 characters and a NUL) for wall-clock time now_ms. If now_ms is not past
 * the previous id's time (same millisecond, or the clock went back) the previous id's time is
 * kept and its random part incremented, so ids never go backwards. 0, or WA_EIO (no
 * randomness). */
int wg_event_id_next(wg_event_idgen *g, uint64_t now_ms, char out[WG_EVENT_ID_LEN + 1]);
/* 1 if s is a well-formed ULID: 26 Crockford base32 characters (upper case), first <= '7'. */
int wg_event_id_valid(const char *s);
/* Time part of a valid id in ms. WA_EINVAL if not valid. */
int wg_event_id_time(const char *id, uint64_t *ms);

/* ---- envelope ---- */

typedef struct wg_envelope {
    char id[WG_EVENT_ID_LEN + 1];
    int64_t ts_ms;
    char session[WG_EVENT_SESSION_MAX + 1]; /* "" when the envelope's session is null */
    char event[WG_EVENT_NAME_MAX + 1];
    char *json; /* the serialized envelope, NUL-terminated (malloc via jansson; owned) */
    size_t json_len;
} wg_envelope;

/*
 * Build an envelope. session: NULL (null in JSON) or 1..WG_EVENT_SESSION_MAX bytes; event: a
 * registered name; payload: a JSON object (borrowed; not modified). The JSON is compact, keys in
 * the order id, timestamp, session, event, payload.
 * Returns 0 (env filled; free with wg_envelope_cleanup), WA_EINVAL (unknown event, bad session,
 * payload not an object or id invalid), WA_ELIMIT (over WG_EVENT_JSON_MAX), WA_ENOMEM. On
 * failure env holds nothing to free.
 */
int wg_envelope_build(wg_envelope *env, const char *id, int64_t ts_ms, const char *session,
                      const char *event, const json_t *payload);
void wg_envelope_cleanup(wg_envelope *env);

/* ---- filters ---- */

/*
 * Which events a subscriber (stream client, webhook target) wants: a set of sessions (empty:
 * all) and a set of event patterns (empty: all). A pattern is a registered name, "*" (all), or
 * "<prefix>.*" (every registered name that starts with "<prefix>."; e.g. "message.*" matches
 * message.ack but not message).
 */
typedef struct wg_event_filter {
    unsigned nsessions, nevents;
    char sessions[WG_EVENT_FILTER_MAX][WG_EVENT_SESSION_MAX + 1];
    char events[WG_EVENT_FILTER_MAX][WG_EVENT_NAME_MAX + 1];
} wg_event_filter;

/* Empty filter (matches everything). */
void wg_event_filter_init(wg_event_filter *f);
/* Add one event pattern. 0, WA_EINVAL (not a registered name, "*" or a "<prefix>.*" matching
 * at least one registered name), WA_ELIMIT (too many). */
int wg_event_filter_add_event(wg_event_filter *f, const char *pattern);
/* Add one session name (1..WG_EVENT_SESSION_MAX bytes, no control characters). 0, WA_EINVAL,
 * WA_ELIMIT. */
int wg_event_filter_add_session(wg_event_filter *f, const char *session);
/* Parse comma-separated lists (as in ?session=a,b&events=message,message.ack); NULL or "" add
 * nothing. Empty items are ignored. On error f may be partly filled; the bad item is copied to
 * bad (badlen bytes, may be 0). 0, WA_EINVAL, WA_ELIMIT. */
int wg_event_filter_parse(wg_event_filter *f, const char *sessions, const char *events, char *bad,
                          size_t badlen);
/* 1 if an event of this session (NULL/"" = no session) and name passes the filter. A filter with
 * sessions never matches events without a session. */
int wg_event_filter_match(const wg_event_filter *f, const char *session, const char *event);

#endif
