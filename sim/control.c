/*
 * control.c - wasim's control API (JSON over HTTP on a separate port): what a phone, an
 * operator or a fault injector does. See docs/wasim.md for the routes with curl examples.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/util.h"
#include "http/httpd.h"
#include "jid/jid.h"
#include "sim.h"
#include "util.h"
#include "wa/error.h"

static void reply_json(wg_http_resp *resp, int status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);

    if (s) {
        wg_http_set_body(resp, status, "application/json", s, strlen(s));
        free(s);
    } else {
        wg_http_json_error(resp, 500, "internal", "cannot encode reply");
    }
    json_decref(j);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;

    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    fclose(f);
    return v;
}

static void get_stats(sim *s, wg_http_resp *resp)
{
    json_t *j = json_object(), *faults = json_object();
    size_t phones = 0, devices = 0, online = 0, queued = 0;
    sim_phone *p;
    unsigned i;

    for (p = s->phones; p; p = p->next) {
        phones++;
        for (i = 0; i < SIM_MAX_DEVICES; i++) {
            if (!p->devices[i].present)
                continue;
            devices++;
            if (p->devices[i].conn)
                online++;
            queued += p->devices[i].queue_len;
        }
    }
    json_object_set_new(j, "connections", json_integer((json_int_t)s->nconns));
    json_object_set_new(j, "connections_total",
                        json_integer((json_int_t)s->stats.connections_total));
    json_object_set_new(j, "phones", json_integer((json_int_t)phones));
    json_object_set_new(j, "devices", json_integer((json_int_t)devices));
    json_object_set_new(j, "devices_online", json_integer((json_int_t)online));
    json_object_set_new(j, "frames_in", json_integer((json_int_t)s->stats.frames_in));
    json_object_set_new(j, "frames_out", json_integer((json_int_t)s->stats.frames_out));
    json_object_set_new(j, "iqs", json_integer((json_int_t)s->stats.iqs));
    json_object_set_new(j, "messages_routed", json_integer((json_int_t)s->stats.messages_routed));
    json_object_set_new(j, "receipts_routed", json_integer((json_int_t)s->stats.receipts_routed));
    json_object_set_new(j, "queued_stanzas", json_integer((json_int_t)queued));
    json_object_set_new(j, "logins", json_integer((json_int_t)s->stats.logins));
    json_object_set_new(j, "registrations", json_integer((json_int_t)s->stats.registrations));
    json_object_set_new(j, "pairings", json_integer((json_int_t)s->stats.pairings));
    json_object_set_new(j, "bad_input_closes", json_integer((json_int_t)s->stats.bad_input_closes));
    json_object_set_new(j, "rss_kib", json_integer(rss_kib()));
    json_object_set_new(faults, "dropped", json_integer((json_int_t)s->stats.faults_dropped));
    json_object_set_new(faults, "stalled", json_integer((json_int_t)s->stats.faults_stalled));
    json_object_set_new(faults, "delayed", json_integer((json_int_t)s->stats.faults_delayed));
    json_object_set_new(faults, "refused", json_integer((json_int_t)s->stats.faults_refused));
    json_object_set_new(faults, "iq_errors", json_integer((json_int_t)s->stats.faults_iq_errors));
    json_object_set_new(faults, "stream_errors",
                        json_integer((json_int_t)s->stats.faults_stream_errors));
    json_object_set_new(faults, "injected", json_integer((json_int_t)s->stats.faults_injected));
    json_object_set_new(j, "faults", faults);
    reply_json(resp, 200, j);
}

static void get_phone(sim_phone *p, wg_http_resp *resp)
{
    json_t *j = json_object(), *devs = json_array();
    char hex[65];
    unsigned i;

    json_object_set_new(j, "phone", json_string(p->number));
    json_object_set_new(j, "lid", json_string(p->lid));
    wa_hex_encode(hex, p->identity_pub, 32);
    json_object_set_new(j, "identity", json_string(hex));
    for (i = 0; i < SIM_MAX_DEVICES; i++) {
        sim_device *d = &p->devices[i];
        json_t *dj;
        char jid[SIM_JID_LEN];
        if (!d->present)
            continue;
        dj = json_object();
        snprintf(jid, sizeof jid, "%s:%u@s.whatsapp.net", p->number, (unsigned)d->id);
        json_object_set_new(dj, "jid", json_string(jid));
        json_object_set_new(dj, "id", json_integer(d->id));
        json_object_set_new(dj, "online", json_boolean(d->conn != NULL));
        json_object_set_new(dj, "prekeys", json_integer((json_int_t)d->keys.nprekeys));
        json_object_set_new(dj, "queued", json_integer((json_int_t)d->queue_len));
        json_array_append_new(devs, dj);
    }
    json_object_set_new(j, "devices", devs);
    reply_json(resp, 200, j);
}

/* Split "/a/b/c" into at most n segments (pointers into buf). */
static size_t split_path(char *buf, char **seg, size_t n)
{
    size_t k = 0;
    char *save = NULL, *t;

    for (t = strtok_r(buf, "/", &save); t && k < n; t = strtok_r(NULL, "/", &save))
        seg[k++] = t;
    return k;
}

static json_t *parse_body(wg_http_req *req, wg_http_resp *resp)
{
    json_error_t err;
    json_t *j;

    if (req->body_len == 0) {
        wg_http_json_error(resp, 400, "bad_request", "a JSON object body is required");
        return NULL;
    }
    j = json_loadb(req->body, req->body_len, 0, &err);
    if (!j || !json_is_object(j)) {
        char msg[256];
        snprintf(msg, sizeof msg, "body is not a JSON object: %s", j ? "wrong type" : err.text);
        json_decref(j);
        wg_http_json_error(resp, 400, "bad_json", msg);
        return NULL;
    }
    return j;
}

static const char *body_str(json_t *body, const char *key, wg_http_resp *resp)
{
    json_t *v = json_object_get(body, key);
    char msg[128];

    if (!json_is_string(v)) {
        snprintf(msg, sizeof msg, "field \"%s\" must be a string", key);
        wg_http_json_error(resp, 400, "bad_field", msg);
        return NULL;
    }
    return json_string_value(v);
}

static void phone_scan(sim *s, sim_phone *p, wg_http_req *req, wg_http_resp *resp)
{
    json_t *body = parse_body(req, resp), *j;
    const char *qr;
    char jid[SIM_JID_LEN];
    int rc;

    if (!body)
        return;
    qr = body_str(body, "qr", resp);
    if (qr) {
        rc = sim_pair_scan(s, p, qr, jid, sizeof jid);
        if (rc == 0) {
            j = json_object();
            json_object_set_new(j, "device", json_string(jid));
            reply_json(resp, 200, j);
        } else if (rc == WA_EINVAL) {
            wg_http_json_error(resp, 400, "bad_qr", "not a WhatsApp QR text");
        } else if (rc == WA_ENOTFOUND) {
            wg_http_json_error(resp, 404, "no_such_ref", "no connected client is showing this QR");
        } else {
            wg_http_json_error(resp, 409, "pairing_failed", wa_strerror(rc));
        }
    }
    json_decref(body);
}

/* pair.c; repeated here until it can move to sim.h. */
int sim_pair_link_code_state(sim *s, const sim_phone *p, const char **state, const char **why,
                             int *attempts_left, char *device, size_t device_cap);

/* POST /phones/{phone}/link-code {"code":"ABCD-EFGH"}: the user types the code on the phone.
 * wasim sends the client the primary_hello at once and answers 202; whether the code was right
 * is known when the client's companion_finish arrives (the key bundle decrypts or not), so the
 * outcome is read with GET /phones/{phone}/link-code. */
static void phone_link_code(sim *s, sim_phone *p, wg_http_req *req, wg_http_resp *resp)
{
    json_t *body = parse_body(req, resp), *j;
    const char *code, *state = NULL, *why = NULL;
    char device[SIM_JID_LEN];
    int rc, left = 0;

    if (!body)
        return;
    code = body_str(body, "code", resp);
    if (code) {
        rc = sim_pair_link_code(s, p, code);
        if (rc == 0) {
            j = json_object();
            json_object_set_new(j, "state", json_string("code_sent"));
            json_object_set_new(
                j, "next",
                json_string("GET this URL: the client's answer tells whether the code was right"));
            reply_json(resp, 202, j);
        } else if (rc == WA_EINVAL) {
            wg_http_json_error(resp, 400, "bad_code",
                               "the code must be 8 letters or digits (ABCDEFGH or ABCD-EFGH)");
        } else if (rc == WA_ENOTFOUND) {
            if (sim_pair_link_code_state(s, p, &state, &why, &left, device, sizeof device) == 0 &&
                strcmp(state, "expired") == 0) {
                char msg[160];
                snprintf(msg, sizeof msg,
                         "the last pairing-code request for this phone is over: %s",
                         why ? why : "expired");
                wg_http_json_error(resp, 410, "code_expired", msg);
            } else {
                wg_http_json_error(resp, 404, "no_pending_code",
                                   "no connected client asked for a pairing code for this phone");
            }
        } else if (rc == WA_ESTATE) {
            wg_http_json_error(resp, 409, "code_pending",
                               "a code was typed and the client has not answered yet");
        } else {
            wg_http_json_error(resp, 500, "pairing_failed", wa_strerror(rc));
        }
    }
    json_decref(body);
}

/* POST /phones/{phone}/reinstall {"notify": true|false}: the phone gets a new identity key
 * (sim_phone_reinstall); notify (default true) sends the identity notification. 200 {told: N,
 * identity: HEX}. */
static void phone_reinstall(sim *s, sim_phone *p, wg_http_req *req, wg_http_resp *resp)
{
    json_t *body = req->body_len ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
    json_t *nv = body ? json_object_get(body, "notify") : NULL;
    char hex[65];
    size_t told = 0;
    int rc;

    if (s->state) {
        wg_http_json_error(resp, 409, "state", "reinstall is not supported with --state");
    } else if ((rc = sim_phone_reinstall(s, p, !json_is_false(nv), &told)) != 0) {
        wg_http_json_error(resp, 500, "reinstall_failed", wa_strerror(rc));
    } else {
        json_t *j = json_object();
        wa_hex_encode(hex, p->identity_pub, 32);
        json_object_set_new(j, "told", json_integer((json_int_t)told));
        json_object_set_new(j, "identity", json_string(hex));
        reply_json(resp, 200, j);
    }
    json_decref(body);
}

/* POST /phones/{phone}/privacy {"readreceipts": "all"|"none"}: the account's read-receipt
 * privacy setting, which privacy get answers its clients with (default "all"). 200
 * {readreceipts}; 400 on another value. */
static void phone_privacy(sim_phone *p, wg_http_req *req, wg_http_resp *resp)
{
    json_t *body = req->body_len ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
    const char *v = json_string_value(body ? json_object_get(body, "readreceipts") : NULL);

    if (!v || (strcmp(v, "all") != 0 && strcmp(v, "none") != 0)) {
        wg_http_json_error(resp, 400, "bad_request", "readreceipts must be \"all\" or \"none\"");
    } else {
        json_t *j = json_object();
        p->readreceipts_none = strcmp(v, "none") == 0;
        json_object_set_new(j, "readreceipts", json_string(v));
        reply_json(resp, 200, j);
    }
    json_decref(body);
}

/* GET /phones/{phone}/link-code: where the newest pairing-code request for this phone stands.
 * 200 waiting_for_code | paired, 202 code_sent, 422 wrong_code (another code may be typed),
 * 410 expired, 404 none. */
static void phone_link_code_state(sim *s, sim_phone *p, wg_http_resp *resp)
{
    const char *state, *why;
    char device[SIM_JID_LEN];
    int left, status = 200;
    json_t *j;

    if (sim_pair_link_code_state(s, p, &state, &why, &left, device, sizeof device) != 0) {
        wg_http_json_error(resp, 404, "no_pending_code",
                           "no client asked for a pairing code for this phone");
        return;
    }
    j = json_object();
    json_object_set_new(j, "state", json_string(state));
    if (strcmp(state, "code_sent") == 0) {
        status = 202;
    } else if (strcmp(state, "wrong_code") == 0) {
        status = 422;
    } else if (strcmp(state, "expired") == 0) {
        status = 410;
    } else if (strcmp(state, "paired") == 0) {
        json_object_set_new(j, "device", json_string(device));
    }
    if (why) {
        json_t *e = json_object();
        json_object_set_new(e, "code", json_string(state));
        json_object_set_new(e, "message", json_string(why));
        json_object_set_new(j, "error", e);
    }
    if (strcmp(state, "paired") != 0 && strcmp(state, "expired") != 0)
        json_object_set_new(j, "attempts_left", json_integer(left));
    reply_json(resp, status, j);
}

/* /devices/{jid}/... : the device by JID "phone:dev@s.whatsapp.net" (or lid). */
static sim_device *device_from_jid(sim *s, const char *text, wg_http_resp *resp)
{
    wa_jid j;
    sim_device *d;

    if (wa_jid_parse(text, &j) != 0) {
        wg_http_json_error(resp, 400, "bad_jid", "not a device JID (phone:device@s.whatsapp.net)");
        return NULL;
    }
    d = sim_device_find(s, j.user, j.device);
    if (!d)
        wg_http_json_error(resp, 404, "no_such_device", "no such device");
    return d;
}

/* A stanza from JSON for POST /devices/{jid}/inject: {"tag":"iq","attrs":{"k":"v"},
 * "children":[...]} with content either "text" (a string) or "bytes" (N zero bytes, at most
 * 16 MiB). Anything goes otherwise (missing or wrong attributes are the point). NULL if bad. */
static wa_node *inject_node(wa_arena *a, json_t *j, int depth)
{
    const char *tag = json_string_value(json_object_get(j, "tag")), *k;
    json_t *attrs = json_object_get(j, "attrs"), *kids = json_object_get(j, "children"), *v;
    json_t *text = json_object_get(j, "text"), *bytes = json_object_get(j, "bytes");
    wa_node *n;
    size_t i;

    if (depth > 8 || !tag || !tag[0] || (attrs && !json_is_object(attrs)) ||
        (kids && !json_is_array(kids)) || !(n = wa_node_new(a, tag)))
        return NULL;
    json_object_foreach(attrs, k, v)
    {
        if (!json_is_string(v) || wa_node_set_attr(a, n, k, json_string_value(v)) != 0)
            return NULL;
    }
    if (json_is_string(text) && wa_node_set_string(a, n, json_string_value(text)) != 0)
        return NULL;
    if (json_is_integer(bytes)) {
        json_int_t len = json_integer_value(bytes);
        void *p = len >= 0 && len <= (16 << 20) ? calloc(1, (size_t)len + 1) : NULL;
        int rc = p ? wa_node_set_bytes(a, n, p, (size_t)len) : -1;
        free(p);
        if (rc != 0)
            return NULL;
    }
    for (i = 0; kids && i < json_array_size(kids); i++) {
        wa_node *c = inject_node(a, json_array_get(kids, i), depth + 1);
        if (!c || wa_node_add_child(n, c) != 0)
            return NULL;
    }
    return n;
}

static void device_action(sim *s, const char *jid, const char *action, wg_http_req *req,
                          wg_http_resp *resp)
{
    sim_device *d = device_from_jid(s, jid, resp);
    json_t *j, *body = NULL;

    if (!d)
        return;
    if (strcmp(action, "logout") == 0) {
        if (d->id == 0) {
            wg_http_json_error(resp, 400, "bad_device", "the phone itself cannot be unlinked");
            return;
        }
        sim_device_remove(s, d);
    } else if (strcmp(action, "drop") == 0) {
        if (!d->conn) {
            wg_http_json_error(resp, 409, "offline", "device is not connected");
            return;
        }
        s->stats.faults_dropped++;
        sim_conn_close(d->conn);
    } else if (strcmp(action, "stall") == 0) {
        if (!d->conn) {
            wg_http_json_error(resp, 409, "offline", "device is not connected");
            return;
        }
        s->stats.faults_stalled++;
        d->conn->stalled = 1;
    } else if (strcmp(action, "delay") == 0) {
        json_t *ms;
        if (!d->conn) {
            wg_http_json_error(resp, 409, "offline", "device is not connected");
            return;
        }
        body = parse_body(req, resp);
        if (!body)
            return;
        ms = json_object_get(body, "ms");
        if (!json_is_integer(ms) || json_integer_value(ms) < 0 || json_integer_value(ms) > 600000) {
            json_decref(body);
            wg_http_json_error(resp, 400, "bad_field", "field \"ms\" must be 0..600000");
            return;
        }
        if (json_integer_value(ms) > 0) /* 0 ends the fault: not one more */
            s->stats.faults_delayed++;
        sim_conn_set_delay(d->conn, (unsigned)json_integer_value(ms));
    } else if (strcmp(action, "stream-error") == 0) {
        const char *code = NULL;
        char num[24];
        json_t *conflict, *jc;
        if (!d->conn) {
            wg_http_json_error(resp, 409, "offline", "device is not connected");
            return;
        }
        body = parse_body(req, resp);
        if (!body)
            return;
        conflict = json_object_get(body, "conflict");
        jc = json_object_get(body, "code");
        if (json_is_string(jc) && json_string_length(jc) > 0 && json_string_length(jc) < 16) {
            code = json_string_value(jc);
        } else if (json_is_integer(jc) && json_integer_value(jc) > 0 &&
                   json_integer_value(jc) < 100000) {
            snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(jc));
            code = num;
        }
        if ((jc && !code) || (conflict && !json_is_string(conflict)) ||
            (json_is_string(conflict) &&
             (json_string_length(conflict) == 0 || json_string_length(conflict) >= 32)) ||
            (!code && !conflict)) {
            json_decref(body);
            wg_http_json_error(resp, 400, "bad_field",
                               "give \"code\" (e.g. \"515\" or 515) and/or \"conflict\" (e.g. "
                               "\"replaced\")");
            return;
        }
        s->stats.faults_stream_errors++;
        sim_send_stream_error(d->conn, code, json_string_value(conflict));
    } else if (strcmp(action, "inject") == 0) {
        wa_arena a;
        wa_node *n;
        int rc;
        if (!d->conn) {
            wg_http_json_error(resp, 409, "offline", "device is not connected");
            return;
        }
        body = parse_body(req, resp);
        if (!body)
            return;
        wa_arena_init(&a, 64u << 20);
        n = inject_node(&a, body, 0);
        rc = n ? sim_conn_send(d->conn, n) : WA_EINVAL;
        wa_arena_cleanup(&a);
        if (rc != 0) {
            json_decref(body);
            wg_http_json_error(resp, n ? 409 : 400, n ? "send_failed" : "bad_node",
                               n ? wa_strerror(rc)
                                 : "need {\"tag\", \"attrs\": {..}, \"children\": [..], "
                                   "\"text\" or \"bytes\": N}");
            return;
        }
        s->stats.faults_injected++;
    } else {
        wg_http_json_error(resp, 404, "not_found", "no such device action");
        return;
    }
    json_decref(body);
    j = json_object();
    json_object_set_new(j, "ok", json_true());
    reply_json(resp, 200, j);
}

static void faults(sim *s, const char *what, wg_http_req *req, wg_http_resp *resp)
{
    json_t *body, *j;

    if (strcmp(what, "refuse") != 0 && strcmp(what, "iq-error") != 0) {
        wg_http_json_error(resp, 404, "not_found", "no such fault (refuse, iq-error)");
        return;
    }
    body = parse_body(req, resp);
    if (!body)
        return;
    if (strcmp(what, "refuse") == 0) {
        json_t *sec = json_object_get(body, "seconds");
        if (!json_is_integer(sec) || json_integer_value(sec) < 0 ||
            json_integer_value(sec) > 3600) {
            wg_http_json_error(resp, 400, "bad_field", "field \"seconds\" must be 0..3600");
            goto out;
        }
        s->refuse_until_ms = sim_now_ms(s) + (uint64_t)json_integer_value(sec) * 1000;
    } else if (strcmp(what, "iq-error") == 0) {
        json_t *code = json_object_get(body, "code");
        const char *xmlns = json_string_value(json_object_get(body, "xmlns"));
        size_t i, slot = WA_ARRAY_SIZE(s->iq_faults);
        if (!xmlns || !xmlns[0] || strlen(xmlns) >= sizeof s->iq_faults[0].xmlns ||
            (code && (!json_is_integer(code) ||
                      (json_integer_value(code) != 0 &&
                       (json_integer_value(code) < 100 || json_integer_value(code) > 999))))) {
            wg_http_json_error(resp, 400, "bad_field",
                               "need \"xmlns\" (1-31 characters) and optional \"code\" (100..999; "
                               "0 clears; default 500)");
            goto out;
        }
        for (i = 0; i < WA_ARRAY_SIZE(s->iq_faults); i++) {
            if (s->iq_faults[i].active && strcmp(s->iq_faults[i].xmlns, xmlns) == 0)
                slot = i;
            else if (!s->iq_faults[i].active && slot == WA_ARRAY_SIZE(s->iq_faults))
                slot = i;
        }
        if (slot == WA_ARRAY_SIZE(s->iq_faults)) {
            wg_http_json_error(resp, 409, "too_many", "too many iq faults");
            goto out;
        }
        if (code && json_integer_value(code) == 0) {
            s->iq_faults[slot].active = 0;
        } else {
            snprintf(s->iq_faults[slot].xmlns, sizeof s->iq_faults[slot].xmlns, "%s", xmlns);
            s->iq_faults[slot].code = code ? (int)json_integer_value(code) : 500;
            s->iq_faults[slot].active = 1;
        }
    } else {
        wg_http_json_error(resp, 404, "not_found", "no such fault");
        goto out;
    }
    j = json_object();
    json_object_set_new(j, "ok", json_true());
    reply_json(resp, 200, j);
out:
    json_decref(body);
}

static void handle(wg_http_req *req, wg_http_resp *resp, void *ud)
{
    sim *s = ud;
    char path[512], *seg[6];
    size_t n;
    int get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0;

    if (strlen(req->path) >= sizeof path) {
        wg_http_json_error(resp, 414, "uri_too_long", "path too long");
        return;
    }
    snprintf(path, sizeof path, "%s", req->path);
    n = split_path(path, seg, WA_ARRAY_SIZE(seg));
    if (get && n == 1 && strcmp(seg[0], "root-key") == 0) {
        char hex[66];
        wa_hex_encode(hex, s->root_pub, 32);
        strcat(hex, "\n");
        wg_http_set_body(resp, 200, "text/plain", hex, strlen(hex));
    } else if (get && n == 1 && strcmp(seg[0], "ca.pem") == 0) {
        if (!s->ca_pem)
            wg_http_json_error(resp, 404, "no_tls", "wasim runs without --tls");
        else
            wg_http_set_body(resp, 200, "application/x-pem-file", s->ca_pem, strlen(s->ca_pem));
    } else if (get && n == 1 && strcmp(seg[0], "stats") == 0) {
        get_stats(s, resp);
    } else if (n >= 2 && strcmp(seg[0], "phones") == 0) {
        sim_phone *p = sim_phone_get(s, seg[1]);
        if (!p)
            wg_http_json_error(resp, 400, "bad_phone", "phone must be 5-20 digits, no leading 0");
        else if (get && n == 2)
            get_phone(p, resp);
        else if (post && n == 3 && strcmp(seg[2], "scan") == 0)
            phone_scan(s, p, req, resp);
        else if (post && n == 3 && strcmp(seg[2], "link-code") == 0)
            phone_link_code(s, p, req, resp);
        else if (get && n == 3 && strcmp(seg[2], "link-code") == 0)
            phone_link_code_state(s, p, resp);
        else if (post && n == 3 && strcmp(seg[2], "send") == 0)
            sim_control_phone_send(s, p, req, resp);
        else if (get && n == 3 &&
                 (strcmp(seg[2], "messages") == 0 || strcmp(seg[2], "receipts") == 0))
            sim_control_phone_inbox(s, p, seg[2], req, resp);
        else if (post && n == 3 && strcmp(seg[2], "forget-sessions") == 0)
            sim_control_phone_forget(s, p, req, resp);
        else if (post && n == 3 && strcmp(seg[2], "reinstall") == 0)
            phone_reinstall(s, p, req, resp);
        else if (post && n == 3 && strcmp(seg[2], "privacy") == 0)
            phone_privacy(p, req, resp);
        else
            wg_http_json_error(resp, 404, "not_found", "no such route");
    } else if (post && n == 3 && strcmp(seg[0], "devices") == 0) {
        device_action(s, seg[1], seg[2], req, resp);
    } else if (post && n == 2 && strcmp(seg[0], "faults") == 0) {
        faults(s, seg[1], req, resp);
    } else {
        wg_http_json_error(resp, 404, "not_found", "no such route");
    }
}

int sim_control_start(sim *s, const char *host, int port)
{
    s->httpd = wg_httpd_start(s->loop, host, port, 64 * 1024, handle, s);
    return s->httpd ? 0 : WA_EIO;
}

int sim_control_port(const sim *s)
{
    return wg_httpd_port(s->httpd);
}

void sim_control_stop(sim *s)
{
    wg_httpd_stop(s->httpd);
    s->httpd = NULL;
}
