/*
 * login.c - what the server does with the ClientPayload at the end of the Noise handshake
 * (PROTOCOL.md §3-5):
 *   - registration (devicePairingData, no username): remember the companion's keys and send
 *     <iq type='set' xmlns='md'><pair-device><ref/>x6</pair-device></iq>; the client shows QR
 *     codes built from the refs until a phone scans one (control API /scan, pair.c);
 *   - login (username + device): the device must exist and its Noise static key must be the
 *     one of this handshake; else <failure reason='401'/>. A second login of the same device
 *     replaces the first (<stream:error><conflict type='replaced'/></stream:error>). Then
 *     <success/>, the offline queue, <ib><offline count/></ib>.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "pbjson.h"
#include "proto/client_payload.pb-c.h"
#include "proto/proto.h"
#include "sim.h"
#include "util.h"
#include "wa/error.h"

static void trace_payload(sim_conn *c, const Wa__ClientPayload *p)
{
    wa_buf b;

    if (!c->sim->trace)
        return;
    wa_buf_init(&b, 1 << 20);
    if (sim_pb_to_json(&p->base, &b) == 0)
        fprintf(c->sim->trace, "%llu payload %.*s\n", (unsigned long long)c->id, (int)b.len,
                (const char *)b.data);
    fflush(c->sim->trace);
    wa_buf_cleanup(&b);
}

static void send_failure(sim_conn *c, const char *reason)
{
    wa_arena a;
    wa_node *n;

    wa_arena_init(&a, 4096);
    n = sim_node(&a, "failure", "reason", reason, "location", "sim", NULL);
    if (n)
        sim_conn_kick(c, n);
    else
        sim_conn_close(c);
    wa_arena_cleanup(&a);
}

void sim_send_stream_error(sim_conn *c, const char *code, const char *conflict_type)
{
    wa_arena a;
    wa_node *n;

    wa_arena_init(&a, 4096);
    n = sim_node(&a, "stream:error", "code", code, NULL);
    if (n && conflict_type)
        sim_child(&a, n, "conflict", "type", conflict_type, NULL);
    if (n)
        sim_conn_kick(c, n);
    else
        sim_conn_close(c);
    wa_arena_cleanup(&a);
}

static int copy_bytes(uint8_t *dst, size_t n, const ProtobufCBinaryData *b, int has)
{
    if (!has || b->len != n)
        return -1;
    memcpy(dst, b->data, n);
    return 0;
}

static void start_registration(sim_conn *c, const Wa__ClientPayload *p)
{
    const Wa__ClientPayload__DevicePairingRegistrationData *d = p->devicepairingdata;
    sim *s = c->sim;
    wa_arena a;
    wa_node *iq, *pd;
    char id[32];
    int i;

    if (copy_bytes(c->reg_keys.identity_pub, 32, &d->eident, d->has_eident) ||
        copy_bytes(c->reg_keys.spk_pub, 32, &d->eskeyval, d->has_eskeyval) ||
        copy_bytes(c->reg_keys.spk_sig, 64, &d->eskeysig, d->has_eskeysig) || !d->has_eregid ||
        d->eregid.len != 4 || !d->has_eskeyid || d->eskeyid.len != 3) {
        wa_log_warn("sim", "conn %llu: registration data malformed", (unsigned long long)c->id);
        send_failure(c, "400");
        return;
    }
    c->reg_keys.reg_id = sim_be_bytes(d->eregid.data, 4);
    c->reg_keys.spk_id = sim_be_bytes(d->eskeyid.data, 3);
    memcpy(c->reg_noise_pub, wa_wire_remote_static(&c->wire), 32);
    c->state = SIM_CONN_REGISTERING;
    s->stats.registrations++;

    wa_arena_init(&a, 16384);
    sim_make_id(s, id, sizeof id);
    snprintf(c->pair_iq_id, sizeof c->pair_iq_id, "%s", id);
    iq =
        sim_node(&a, "iq", "from", "@s.whatsapp.net", "type", "set", "id", id, "xmlns", "md", NULL);
    pd = sim_child(&a, iq, "pair-device", NULL);
    for (i = 0; i < SIM_REFS && pd; i++) {
        uint8_t raw[18];
        char ref[40];
        wa_random(raw, sizeof raw);
        /* real refs look like "2@<base64>"; the client treats them as opaque text */
        ref[0] = '2';
        ref[1] = '@';
        wa_base64_encode(ref + 2, raw, sizeof raw, 0);
        snprintf(c->refs[i], sizeof c->refs[i], "%s", ref);
        sim_bytes(&a, sim_child(&a, pd, "ref", NULL), ref, strlen(ref));
    }
    if (pd)
        sim_conn_send(c, iq);
    wa_arena_cleanup(&a);
}

void sim_send_success(sim_conn *c)
{
    sim_device *d = c->device;
    wa_arena a;
    wa_node *n;
    char t[24], lid[64];

    wa_arena_init(&a, 4096);
    sim_unix_str(t, sizeof t);
    if (d->id)
        snprintf(lid, sizeof lid, "%s:%u@lid", d->phone->lid, (unsigned)d->id);
    else
        snprintf(lid, sizeof lid, "%s@lid", d->phone->lid);
    n = sim_node(&a, "success", "t", t, "props", "1", "abprops", "1", "location", "sim", "creation",
                 t, "lid", lid, "display_name", d->push_name[0] ? d->push_name : NULL, NULL);
    if (n)
        sim_conn_send(c, n);
    wa_arena_cleanup(&a);
    sim_deliver_offline(c);
}

static void do_login(sim_conn *c, const Wa__ClientPayload *p)
{
    sim *s = c->sim;
    char user[32];
    sim_device *d;

    snprintf(user, sizeof user, "%" PRIu64, p->username);
    d = sim_device_find(s, user, p->has_device ? p->device : 0);
    if (!d || d->id == 0 ||
        !wa_ct_equal(d->noise_pub, wa_wire_remote_static(&c->wire), sizeof d->noise_pub)) {
        wa_log_info("sim", "conn %llu: login of unknown device %s:%u refused",
                    (unsigned long long)c->id, user, p->has_device ? p->device : 0);
        send_failure(c, "401");
        return;
    }
    if (d->conn && d->conn != c) {
        /* a second login of the same device replaces the first */
        sim_send_stream_error(d->conn, NULL, "replaced");
    }
    if (p->pushname && p->pushname[0])
        snprintf(d->push_name, sizeof d->push_name, "%s", p->pushname);
    d->conn = c;
    c->device = d;
    c->state = SIM_CONN_ONLINE;
    s->stats.logins++;
    sim_send_success(c);
}

void sim_login(sim_conn *c)
{
    wa_slice pl = wa_wire_client_payload(&c->wire);
    Wa__ClientPayload *p = NULL;
    int rc;

    rc = wa_proto_unpack(&wa__client_payload__descriptor, pl.ptr, pl.len, &p);
    if (rc) {
        wa_log_warn("sim", "conn %llu: bad ClientPayload: %s", (unsigned long long)c->id,
                    wa_strerror(rc));
        c->sim->stats.bad_input_closes++;
        sim_conn_close(c);
        return;
    }
    trace_payload(c, p);
    if (p->pushname && p->pushname[0])
        snprintf(c->push_name, sizeof c->push_name, "%s", p->pushname);
    if (p->has_username && p->username)
        do_login(c, p);
    else if (p->devicepairingdata)
        start_registration(c, p);
    else
        send_failure(c, "401");
    wa_proto_free(p);
}
