/*
 * health.h - event-loop lag probe and the result of the periodic self-check.
 *
 * The probe is a repeating libuv timer: each time it fires, the time since the previous firing
 * minus the interval is how late the loop was (a handler that blocked it, a slow disk). The
 * self-check (gateway.c, every HEALTH_CHECK_INTERVAL) combines that with a write probe of the
 * store, memory and the sessions connected versus expected; GET /ready reports it.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WG_HEALTH_H
#define WG_HEALTH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define WG_LAG_PROBE_MS 250
/* A loop later than this is not healthy (/ready answers 503). */
#define WG_HEALTH_MAX_LAG_MS 1000

typedef struct wg_lag_probe {
    uv_timer_t timer;
    uint64_t last_ns; /* hrtime of the previous firing */
    double lag;       /* seconds, last probe */
    double max_lag;   /* seconds, largest since wg_lag_probe_reset_max */
    int closing;
} wg_lag_probe;

int wg_lag_probe_start(wg_lag_probe *p, uv_loop_t *loop);
/* Close the timer (the struct must stay valid until the loop ran the close callback). */
void wg_lag_probe_stop(wg_lag_probe *p);
void wg_lag_probe_reset_max(wg_lag_probe *p);

typedef struct wg_health {
    int64_t checked_at;        /* unix seconds of the last self-check (0: none yet) */
    int store_ok;              /* write probe of the session db */
    int loop_ok;               /* max lag under WG_HEALTH_MAX_LAG_MS */
    double max_lag;            /* seconds, over the last interval */
    size_t sessions_expected;  /* desired state running */
    size_t sessions_connected; /* WORKING */
    int ok;                    /* store_ok && loop_ok */
} wg_health;

#endif
