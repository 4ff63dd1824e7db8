/*
 * route.c - message routing of the simulator.
 *
 * NOT DONE YET: this first version only completes the login sequence (<ib><offline count='0'/>)
 * and answers the routing iqs with bare results. Message routing, receipts, usync, prekey
 * bundles, the offline queue and groups come next (issue "wasim").
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "http/httpd.h"
#include "sim.h"
#include "util.h"

wa_node *sim_route_prekey_bundles(sim_conn *c, const wa_node *iq, wa_arena *a)
{
    (void)c;
    return sim_iq_result(a, iq);
}

wa_node *sim_route_usync(sim_conn *c, const wa_node *iq, wa_arena *a)
{
    (void)c;
    return sim_iq_result(a, iq);
}

wa_node *sim_route_group_iq(sim_conn *c, const wa_node *iq, wa_arena *a)
{
    (void)c;
    return sim_iq_result(a, iq);
}

void sim_route_message(sim_conn *c, const wa_node *n, wa_arena *a)
{
    (void)c;
    (void)n;
    (void)a;
}

void sim_route_receipt(sim_conn *c, const wa_node *n, wa_arena *a)
{
    (void)c;
    (void)n;
    (void)a;
}

void sim_route_presence(sim_conn *c, const wa_node *n, wa_arena *a)
{
    (void)c;
    (void)n;
    (void)a;
}

void sim_route_chatstate(sim_conn *c, const wa_node *n, wa_arena *a)
{
    (void)c;
    (void)n;
    (void)a;
}

void sim_deliver_offline(sim_conn *c)
{
    wa_arena a;
    wa_node *ib;

    wa_arena_init(&a, 4096);
    ib = sim_node(&a, "ib", NULL);
    sim_child(&a, ib, "offline", "count", "0", NULL);
    if (ib)
        sim_conn_send(c, ib);
    wa_arena_cleanup(&a);
}

void sim_route_drop_queue(sim_device *d)
{
    d->queue_head = d->queue_tail = NULL;
    d->queue_len = 0;
}

void sim_control_phone_send(sim *s, sim_phone *p, struct wg_http_req *req,
                            struct wg_http_resp *resp)
{
    (void)s;
    (void)p;
    (void)req;
    wg_http_json_error(resp, 501, "not_implemented", "the virtual phone cannot send yet");
}

void sim_route_cleanup(sim *s)
{
    (void)s;
}
