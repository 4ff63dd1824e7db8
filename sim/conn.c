/*
 * conn.c - one client connection of the simulator: a wa_stream carrying a wa_wire in the server
 * role. Decoded stanzas go to stanza.c; the first stanza after the Noise handshake goes out
 * SIM_HELLO_DELAY_MS later (Baileys 6.17 does not await its key split, so a frame arriving
 * within milliseconds of clientFinish can be lost: PROTOCOL.md §2). The same hold serves the
 * "delay" fault. The same timer first bounds the handshake: a connection that has not finished
 * the WebSocket upgrade and the Noise handshake within SIM_HANDSHAKE_TIMEOUT_MS is closed (and
 * counted as bad input), so silent or trickling clients cannot hold connections.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "sim.h"
#include "wa/error.h"

/* Time a new connection has for the WebSocket upgrade and the Noise handshake. */
#define SIM_HANDSHAKE_TIMEOUT_MS 20000
/* How long a connection the server ends (stream:error, failure, bad input) keeps reading and
 * dropping what the client still sends before the socket is closed: closing a socket with
 * unread input makes the kernel send a TCP RST, and a client that gets the RST may lose our last
 * frames unread (Baileys 6.17 then saw "Connection Terminated" instead of a stream:error). */
#define SIM_LINGER_MS 1000

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

void sim_trace_node(sim *s, const sim_conn *c, const char *dir, const wa_node *n)
{
    wa_buf b;

    if (!s->trace)
        return;
    wa_buf_init(&b, 1 << 20);
    /* WASIM_TRACE_HEX=1: bytes as hex (public keys, ciphertexts; a debugging aid for tests) */
    wa_node_to_xml(n, &b, getenv("WASIM_TRACE_HEX") ? WA_NODE_XML_HEX : 0);
    fprintf(s->trace, "%llu %s %.*s\n", (unsigned long long)(c ? c->id : 0), dir, (int)b.len,
            b.data ? (const char *)b.data : "");
    fflush(s->trace);
    wa_buf_cleanup(&b);
}

void sim_conn_flush(sim_conn *c)
{
    wa_slice out;
    int rc;

    if (c->hold || c->stalled || !c->stream)
        return;
    out = wa_wire_output(&c->wire);
    if (!out.len)
        return;
    rc = wa_stream_write(c->stream, out.ptr, out.len);
    if (rc == 0)
        wa_wire_consumed(&c->wire, out.len);
    else if (rc != WA_ELIMIT) /* WA_ELIMIT: on_drain flushes again */
        sim_conn_close(c);
}

static void linger(sim_conn *c);

static void on_hold_timer(uv_timer_t *t)
{
    sim_conn *c = t->data;

    if (!c)
        return;
    c->hold = 0;
    sim_conn_flush(c);
    if (c->state == SIM_CONN_CLOSING)
        linger(c); /* a kick waited for the hold */
}

/* The connection's one timer (handshake deadline, then output hold). 0 or WA_ENOMEM. */
static int ensure_timer(sim_conn *c)
{
    if (c->timer)
        return 0;
    c->timer = malloc(sizeof *c->timer);
    if (!c->timer)
        return WA_ENOMEM;
    uv_timer_init(c->sim->loop, c->timer);
    c->timer->data = c;
    return 0;
}

/* Hold output for ms milliseconds, then flush (this ends the handshake deadline too). */
static void hold_for(sim_conn *c, unsigned ms)
{
    if (ensure_timer(c) != 0) {
        c->hold = 0;
        return;
    }
    c->hold = 1;
    uv_timer_start(c->timer, on_hold_timer, ms, 0);
}

static void on_handshake_timer(uv_timer_t *t)
{
    sim_conn *c = t->data;

    if (!c || c->state != SIM_CONN_HANDSHAKE)
        return;
    wa_log_warn("sim", "conn %llu: closing on bad input: no handshake within %u ms",
                (unsigned long long)c->id, (unsigned)SIM_HANDSHAKE_TIMEOUT_MS);
    c->sim->stats.bad_input_closes++;
    sim_conn_close(c);
}

int sim_conn_send(sim_conn *c, const wa_node *n)
{
    int rc;

    if (c->state == SIM_CONN_CLOSING)
        return WA_ECLOSED;
    sim_trace_node(c->sim, c, "out", n);
    rc = wa_wire_send_node(&c->wire, n);
    if (rc) {
        wa_log_warn("sim", "conn %llu: cannot send <%s>: %s", (unsigned long long)c->id, n->tag,
                    wa_strerror(rc));
        return rc;
    }
    c->sim->stats.frames_out++;
    if (c->delay_ms && !c->hold)
        hold_for(c, c->delay_ms);
    sim_conn_flush(c);
    return 0;
}

static void on_linger_timer(uv_timer_t *t)
{
    sim_conn *c = t->data;

    if (c && c->stream)
        wa_stream_close(c->stream);
}

/* A closing connection: once its output is no longer held, flush it and keep reading (and
 * dropping) input until the client hangs up or SIM_LINGER_MS passes. */
static void linger(sim_conn *c)
{
    if (c->hold) /* the hello delay or the delay fault: on_hold_timer comes back here */
        return;
    sim_conn_flush(c);
    if (!c->stream)
        return;
    if (ensure_timer(c) != 0) {
        wa_stream_close(c->stream);
        return;
    }
    uv_timer_start(c->timer, on_linger_timer, SIM_LINGER_MS, 0);
}

/* End the connection gracefully: a WebSocket close frame (when the WebSocket is open) after what
 * is queued; the output goes when any hold ends (the hello delay keeps protecting Baileys 6.17's
 * late key split: a <failure/> sent at once after the handshake was lost), a stall ends; then
 * linger. */
static void close_lingering(sim_conn *c, int ws_code, const char *why)
{
    if (c->state == SIM_CONN_CLOSING)
        return;
    (void)wa_wire_close(&c->wire, ws_code, why); /* fails harmlessly before the upgrade */
    c->stalled = 0;
    c->state = SIM_CONN_CLOSING;
    if (c->device && c->device->conn == c)
        c->device->conn = NULL;
    linger(c);
}

void sim_conn_kick(sim_conn *c, const wa_node *n)
{
    if (c->state == SIM_CONN_CLOSING)
        return;
    sim_conn_send(c, n);
    close_lingering(c, 1000, NULL);
}

void sim_conn_close(sim_conn *c)
{
    if (c->state == SIM_CONN_CLOSING)
        return;
    c->state = SIM_CONN_CLOSING;
    if (c->device && c->device->conn == c)
        c->device->conn = NULL;
    if (c->stream)
        wa_stream_close(c->stream);
}

void sim_conn_set_delay(sim_conn *c, unsigned ms)
{
    c->delay_ms = ms;
}

/* The wire failed on what the client sent: log why, count it, send what the wire has for the
 * client (an HTTP error before the upgrade; after it, a WebSocket close 1002 naming the reason)
 * and close this connection only (lingering). */
static void close_bad_input(sim_conn *c, int rc)
{
    char why[WA_WS_CLOSE_REASON_MAX + 1];

    wa_log_warn("sim", "conn %llu: closing on bad input: %s (%s)", (unsigned long long)c->id,
                wa_wire_reason(&c->wire), wa_strerror(rc));
    c->sim->stats.bad_input_closes++;
    snprintf(why, sizeof why, "%s", wa_wire_reason(&c->wire));
    close_lingering(c, 1002, why);
}

static void handle_events(sim_conn *c)
{
    wa_wire_event ev;
    int rc;

    while (c->state != SIM_CONN_CLOSING && (rc = wa_wire_next(&c->wire, &ev)) == 0) {
        switch (ev.type) {
        case WA_WIRE_EV_REQUEST:
            if (ev.path.len >= 8 && memcmp(ev.path.ptr, "/ws/chat", 8) == 0)
                rc = wa_wire_accept(&c->wire);
            else
                rc = wa_wire_reject(&c->wire, 404);
            break;
        case WA_WIRE_EV_OPEN:
            hold_for(c, SIM_HELLO_DELAY_MS);
            sim_login(c);
            break;
        case WA_WIRE_EV_NODE:
            c->sim->stats.frames_in++;
            sim_trace_node(c->sim, c, "in", ev.node);
            sim_handle_stanza(c, ev.node);
            break;
        case WA_WIRE_EV_CLOSE:
            sim_conn_close(c);
            break;
        }
        if (rc)
            break;
    }
    if (c->state == SIM_CONN_CLOSING)
        return;
    if (rc != WA_EAGAIN) {
        close_bad_input(c, rc);
        return;
    }
    sim_conn_flush(c);
}

static void on_data(wa_stream *st, const uint8_t *data, size_t len, void *ud)
{
    sim_conn *c = ud;
    int rc;

    (void)st;
    if (c->stalled || c->state == SIM_CONN_CLOSING)
        return; /* stall fault: the server stops answering, pings included */
    rc = wa_wire_feed(&c->wire, data, len);
    if (rc) {
        close_bad_input(c, rc);
        return;
    }
    handle_events(c);
}

static void on_drain(wa_stream *st, void *ud)
{
    (void)st;
    sim_conn_flush(ud);
}

static void on_close(wa_stream *st, int reason, void *ud)
{
    sim_conn *c = ud;
    sim *s = c->sim;

    (void)st;
    (void)reason;
    if (c->device && c->device->conn == c)
        c->device->conn = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (c->timer) {
        c->timer->data = NULL;
        uv_close((uv_handle_t *)c->timer, on_timer_closed);
    }
    wa_wire_cleanup(&c->wire);
    sim_keys_cleanup(&c->reg_keys);
    free(c);
}

void sim_on_accept(wa_listener *l, wa_stream *st, void *user_data)
{
    sim *s = user_data;
    sim_conn *c;
    wa_wire_config wc;
    static const wa_stream_cbs cbs = {NULL, on_data, on_drain, on_close};

    (void)l;
    if (s->refuse_until_ms && sim_now_ms(s) < s->refuse_until_ms) {
        s->stats.faults_refused++;
        wa_stream_close(st);
        return;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        wa_stream_close(st);
        return;
    }
    memset(&wc, 0, sizeof wc);
    wc.role = WA_WIRE_SERVER;
    wc.static_priv = s->static_priv;
    wc.cert_chain = s->cert_chain.data;
    wc.cert_chain_len = s->cert_chain.len;
    if (wa_wire_init(&c->wire, &wc) != 0) {
        free(c);
        wa_stream_close(st);
        return;
    }
    c->sim = s;
    c->stream = st;
    c->id = ++s->next_conn_id;
    c->state = SIM_CONN_HANDSHAKE;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    s->stats.connections_total++;
    wa_stream_set_callbacks(st, &cbs, c);
    if (ensure_timer(c) == 0)
        uv_timer_start(c->timer, on_handshake_timer, SIM_HANDSHAKE_TIMEOUT_MS, 0);
}
