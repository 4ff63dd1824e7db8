/*
 * webhook.h - the pure parts of webhook delivery: request signature, retry schedule and the
 * classification of an attempt's outcome. The transport (libcurl multi on the libuv loop) is in
 * webhook.c, driven by events.c.
 *
 * Signature (the scheme of Stripe's and Svix's webhooks, with our header names):
 *   X-Wagate-Timestamp: <Unix seconds of the attempt>
 *   X-Wagate-Signature: sha256=<lower-case hex HMAC-SHA256(secret, timestamp "." body)>
 * A receiver recomputes the HMAC over the exact body bytes, compares in constant time, and may
 * refuse timestamps too far from its clock (replays). Every attempt is signed anew.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_EVENTS_WEBHOOK_H
#define WG_EVENTS_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#define WG_WEBHOOK_HDR_SIGNATURE "X-Wagate-Signature"
#define WG_WEBHOOK_HDR_TIMESTAMP "X-Wagate-Timestamp"
#define WG_WEBHOOK_HDR_ID        "X-Wagate-Event-Id"
#define WG_WEBHOOK_HDR_EVENT     "X-Wagate-Event"
#define WG_WEBHOOK_HDR_ATTEMPT   "X-Wagate-Attempt"
/* "sha256=" and 64 hex digits */
#define WG_WEBHOOK_SIG_PREFIX "sha256="
#define WG_WEBHOOK_SIG_LEN    (7 + 64)

/*
 * out = "sha256=" hex(HMAC-SHA256(secret, timestamp "." body)), NUL-terminated.
 * Returns 0, WA_ECRYPTO, WA_ENOMEM.
 */
int wg_webhook_sign(char out[WG_WEBHOOK_SIG_LEN + 1], const void *secret, size_t secret_len,
                    const char *timestamp, const void *body, size_t body_len);
/* 1 if header is the right signature (constant-time compare), else 0. */
int wg_webhook_verify(const char *header, const void *secret, size_t secret_len,
                      const char *timestamp, const void *body, size_t body_len);

/* Retry schedule: exponential with "equal jitter". */
typedef struct wg_backoff {
    unsigned base_ms;      /* delay scale of the first retry */
    unsigned cap_ms;       /* no delay above this */
    unsigned max_attempts; /* attempts (first included) before a delivery is given up */
} wg_backoff;

#define WG_BACKOFF_DEFAULT_BASE_MS      1000u
#define WG_BACKOFF_DEFAULT_CAP_MS       (10u * 60 * 1000)
#define WG_BACKOFF_DEFAULT_MAX_ATTEMPTS 20u

/*
 * Delay before the retry that follows attempt number `attempt` (1 = the first attempt failed):
 * d = min(cap, base * 2^(attempt-1)), delay = d/2 + rnd % (d/2 + 1), so every delay lies in
 * [d/2, d]: the schedule doubles while clients that failed together spread out. attempt 0 is
 * treated as 1. rnd: a uniform random number (the caller draws it; tests pass fixed ones).
 */
uint64_t wg_backoff_delay_ms(const wg_backoff *b, unsigned attempt, uint32_t rnd);

enum wg_webhook_outcome {
    WG_WEBHOOK_DONE = 0,  /* 2xx: delivered */
    WG_WEBHOOK_RETRY = 1, /* no response, 408, 429, 5xx, 1xx/3xx: try again later */
    WG_WEBHOOK_FAILED = 2 /* 4xx other than 408/429 (or attempts exhausted): given up */
};

/* Outcome of one attempt. responded: 0 when no HTTP response arrived (connect error, timeout,
 * reset), then status is ignored. */
int wg_webhook_classify(int responded, long status);
const char *wg_webhook_outcome_name(int outcome);

#endif
