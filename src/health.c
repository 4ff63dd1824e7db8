/* health.c - event-loop lag probe (see health.h).
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include "health.h"

static void on_probe(uv_timer_t *t)
{
    wg_lag_probe *p = t->data;
    uint64_t now = uv_hrtime();
    double late = (double)(now - p->last_ns) / 1e9 - WG_LAG_PROBE_MS / 1000.0;

    p->last_ns = now;
    p->lag = late > 0 ? late : 0;
    if (p->lag > p->max_lag)
        p->max_lag = p->lag;
}

int wg_lag_probe_start(wg_lag_probe *p, uv_loop_t *loop)
{
    int rc;

    p->lag = p->max_lag = 0;
    p->closing = 0;
    if ((rc = uv_timer_init(loop, &p->timer)))
        return rc;
    p->timer.data = p;
    p->last_ns = uv_hrtime();
    return uv_timer_start(&p->timer, on_probe, WG_LAG_PROBE_MS, WG_LAG_PROBE_MS);
}

void wg_lag_probe_stop(wg_lag_probe *p)
{
    if (p->closing)
        return;
    p->closing = 1;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, NULL);
}

void wg_lag_probe_reset_max(wg_lag_probe *p)
{
    p->max_lag = p->lag;
}
