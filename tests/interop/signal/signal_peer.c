/*
 * signal_peer.c - the C half of the Signal interop test (driven by signal_interop.mjs): one
 * party of libwa's Signal layer over an in-memory store, answering JSON lines on stdin with
 * JSON lines on stdout. Bytes are hex; addresses are {"user", "server" (0 PN, 1 LID),
 * "device"}.
 *
 *   {"op":"init","addr":A}                        -> {}      identity, spk 1, prekeys 1..20
 *   {"op":"bundle","prekey":id|null}              -> {"reg","identity","spk_id","spk_pub",
 *                                                     "spk_sig","prekey_id","prekey_pub"}
 *   {"op":"process_bundle","peer":A,"bundle":B}   -> {}
 *   {"op":"encrypt","peer":A,"plain":h,"pad":b}   -> {"type":"pkmsg"|"msg","ct":h}
 *   {"op":"decrypt","peer":A,"type":t,"ct":h,"unpad":b} -> {"plain":h}
 *   {"op":"skdm","group":g}                       -> {"skdm":h}
 *   {"op":"process_skdm","group":g,"peer":A,"skdm":h} -> {}
 *   {"op":"group_encrypt","group":g,"plain":h,"pad":b} -> {"ct":h}
 *   {"op":"group_decrypt","group":g,"peer":A,"ct":h,"unpad":b} -> {"plain":h}
 *   {"op":"prekeys"}                              -> {"count":n}
 * Failures answer {"err":"WA_E...","reason":...}. EOF ends the tool.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "crypto/provider.h"
#include "signal/memstore.h"
#include "signal/signal.h"
#include "wa/error.h"

#define NPREKEYS     20
#define LINE_MAX_LEN (1u << 20)
#define MSG_CAP      (1u << 20)

static wa_signal_addr me;
static wa_signal_keypair id;
static uint32_t reg;
static wa_signal_signed_prekey spk;
static wa_signal_prekey pk[NPREKEYS];
static wa_signal_memstore *mem;
static wa_signal *sig;

static json_t *hex_json(const uint8_t *p, size_t n)
{
    char *h = malloc(2 * n + 1);
    json_t *j;

    if (!h)
        return NULL;
    wa_hex_encode(h, p, n);
    j = json_string(h);
    free(h);
    return j;
}

/* Decode a hex string member into a malloc'd buffer (NULL on error). */
static uint8_t *unhex(json_t *o, const char *key, size_t *n)
{
    const char *h = json_string_value(json_object_get(o, key));
    size_t hl;
    uint8_t *p;

    if (!h)
        return NULL;
    hl = strlen(h);
    if (hl % 2)
        return NULL;
    p = malloc(hl / 2 + 1);
    if (!p || wa_hex_decode(p, hl / 2, h, hl) != 0) {
        free(p);
        return NULL;
    }
    *n = hl / 2;
    return p;
}

static int unhex_fixed(json_t *o, const char *key, uint8_t *out, size_t n)
{
    size_t got = 0;
    uint8_t *p = unhex(o, key, &got);
    int ok = p && got == n;

    if (ok)
        memcpy(out, p, n);
    free(p);
    return ok ? 0 : WA_EINVAL;
}

static int get_addr(json_t *o, const char *key, wa_signal_addr *a)
{
    json_t *j = json_object_get(o, key);
    const char *user = json_string_value(json_object_get(j, "user"));

    if (!json_is_object(j) || !user)
        return WA_EINVAL;
    return wa_signal_addr_make(a, user, (int)json_integer_value(json_object_get(j, "server")),
                               (uint16_t)json_integer_value(json_object_get(j, "device")));
}

static json_t *fail(int rc)
{
    return json_pack("{s:s,s:s}", "err", wa_err_name(rc), "reason",
                     sig && *wa_signal_last_error(sig) ? wa_signal_last_error(sig)
                                                       : wa_strerror(rc));
}

static json_t *op_init(json_t *req)
{
    wa_signal_store st;
    int rc = get_addr(req, "addr", &me);

    if (rc)
        return fail(rc);
    if ((rc = wa_signal_gen_keypair(&id)) || (rc = wa_signal_gen_registration_id(&reg)) ||
        (rc = wa_signal_gen_signed_prekey(&id, 1, &spk)) ||
        (rc = wa_signal_gen_prekeys(1, NPREKEYS, pk)) ||
        (rc = wa_signal_memstore_new(&mem, &id, reg, 0)))
        return fail(rc);
    wa_signal_memstore_bind(mem, &st);
    if ((rc = wa_signal_new(&sig, &st)) || (rc = wa_signal_save_signed_prekey(sig, &spk)) ||
        (rc = wa_signal_save_prekeys(sig, pk, NPREKEYS)))
        return fail(rc);
    return json_object();
}

static json_t *op_bundle(json_t *req)
{
    json_t *pj = json_object_get(req, "prekey");
    const wa_signal_prekey *p = NULL;
    wa_signal_bundle b;
    json_t *r;
    int i;

    if (json_is_integer(pj))
        for (i = 0; i < NPREKEYS; i++)
            if (pk[i].id == (uint32_t)json_integer_value(pj))
                p = &pk[i];
    wa_signal_make_bundle(&b, reg, id.pub, &spk, p);
    r = json_pack("{s:i,s:o,s:i,s:o,s:o}", "reg", (json_int_t)b.reg_id, "identity",
                  hex_json(b.identity_pub, 32), "spk_id", (json_int_t)b.spk_id, "spk_pub",
                  hex_json(b.spk_pub, 32), "spk_sig", hex_json(b.spk_sig, 64));
    if (b.has_prekey) {
        json_object_set_new(r, "prekey_id", json_integer(b.prekey_id));
        json_object_set_new(r, "prekey_pub", hex_json(b.prekey_pub, 32));
    }
    return r;
}

static json_t *op_process_bundle(json_t *req)
{
    json_t *bj = json_object_get(req, "bundle");
    wa_signal_addr peer;
    wa_signal_bundle b;
    int rc;

    memset(&b, 0, sizeof b);
    if ((rc = get_addr(req, "peer", &peer)) || !json_is_object(bj) ||
        (rc = unhex_fixed(bj, "identity", b.identity_pub, 32)) ||
        (rc = unhex_fixed(bj, "spk_pub", b.spk_pub, 32)) ||
        (rc = unhex_fixed(bj, "spk_sig", b.spk_sig, 64)))
        return fail(rc ? rc : WA_EINVAL);
    b.reg_id = (uint32_t)json_integer_value(json_object_get(bj, "reg"));
    b.spk_id = (uint32_t)json_integer_value(json_object_get(bj, "spk_id"));
    if (json_is_integer(json_object_get(bj, "prekey_id"))) {
        b.has_prekey = 1;
        b.prekey_id = (uint32_t)json_integer_value(json_object_get(bj, "prekey_id"));
        if ((rc = unhex_fixed(bj, "prekey_pub", b.prekey_pub, 32)))
            return fail(rc);
    }
    rc = wa_signal_process_bundle(sig, &peer, &b);
    return rc ? fail(rc) : json_object();
}

/* The plaintext of a request, padded when "pad" is true. */
static int plaintext(json_t *req, wa_buf *out)
{
    size_t n = 0;
    uint8_t *p = unhex(req, "plain", &n);
    int rc;

    if (!p)
        return WA_EINVAL;
    wa_buf_init(out, MSG_CAP);
    if (json_is_true(json_object_get(req, "pad")))
        rc = wa_signal_pad(p, n, out);
    else
        rc = wa_buf_append(out, p, n);
    free(p);
    return rc;
}

/* Reply {"plain": hex}, unpadded first when "unpad" is true. */
static json_t *plain_reply(json_t *req, const wa_buf *out)
{
    size_t n = out->len;

    if (json_is_true(json_object_get(req, "unpad"))) {
        int rc = wa_signal_unpad(out->data, out->len, &n);

        if (rc)
            return fail(rc);
    }
    return json_pack("{s:o}", "plain", hex_json(out->data, n));
}

static json_t *op_encrypt(json_t *req)
{
    wa_signal_addr peer;
    wa_buf in, out;
    json_t *r;
    int rc, type;

    if ((rc = get_addr(req, "peer", &peer)) || (rc = plaintext(req, &in)))
        return fail(rc);
    wa_buf_init(&out, MSG_CAP + WA_SIGNAL_CT_OVERHEAD);
    rc = wa_signal_encrypt(sig, &peer, in.data, in.len, &type, &out);
    r = rc ? fail(rc)
           : json_pack("{s:s,s:o}", "type", wa_signal_type_name(type), "ct",
                       hex_json(out.data, out.len));
    wa_buf_cleanup(&in);
    wa_buf_cleanup(&out);
    return r;
}

static json_t *op_decrypt(json_t *req)
{
    wa_signal_addr peer;
    size_t n = 0;
    uint8_t *ct;
    wa_buf out;
    json_t *r;
    int rc, type;

    if ((rc = get_addr(req, "peer", &peer)) ||
        (rc = wa_signal_type_parse(json_string_value(json_object_get(req, "type")), &type)))
        return fail(rc);
    ct = unhex(req, "ct", &n);
    if (!ct)
        return fail(WA_EINVAL);
    wa_buf_init(&out, MSG_CAP);
    rc = wa_signal_decrypt(sig, &peer, type, ct, n, &out);
    r = rc ? fail(rc) : plain_reply(req, &out);
    free(ct);
    wa_buf_cleanup(&out);
    return r;
}

static json_t *op_skdm(json_t *req)
{
    const char *g = json_string_value(json_object_get(req, "group"));
    wa_buf out;
    json_t *r;
    int rc;

    wa_buf_init(&out, 4096);
    rc = wa_signal_group_create_skdm(sig, g, &me, &out);
    r = rc ? fail(rc) : json_pack("{s:o}", "skdm", hex_json(out.data, out.len));
    wa_buf_cleanup(&out);
    return r;
}

static json_t *op_process_skdm(json_t *req)
{
    const char *g = json_string_value(json_object_get(req, "group"));
    wa_signal_addr peer;
    size_t n = 0;
    uint8_t *d;
    int rc;

    if ((rc = get_addr(req, "peer", &peer)))
        return fail(rc);
    d = unhex(req, "skdm", &n);
    if (!d)
        return fail(WA_EINVAL);
    rc = wa_signal_group_process_skdm(sig, g, &peer, d, n);
    free(d);
    return rc ? fail(rc) : json_object();
}

static json_t *op_group_encrypt(json_t *req)
{
    const char *g = json_string_value(json_object_get(req, "group"));
    wa_buf in, out;
    json_t *r;
    int rc;

    if ((rc = plaintext(req, &in)))
        return fail(rc);
    wa_buf_init(&out, MSG_CAP + WA_SIGNAL_CT_OVERHEAD);
    rc = wa_signal_group_encrypt(sig, g, &me, in.data, in.len, &out);
    r = rc ? fail(rc) : json_pack("{s:o}", "ct", hex_json(out.data, out.len));
    wa_buf_cleanup(&in);
    wa_buf_cleanup(&out);
    return r;
}

static json_t *op_group_decrypt(json_t *req)
{
    const char *g = json_string_value(json_object_get(req, "group"));
    wa_signal_addr peer;
    size_t n = 0;
    uint8_t *ct;
    wa_buf out;
    json_t *r;
    int rc;

    if ((rc = get_addr(req, "peer", &peer)))
        return fail(rc);
    ct = unhex(req, "ct", &n);
    if (!ct)
        return fail(WA_EINVAL);
    wa_buf_init(&out, MSG_CAP);
    rc = wa_signal_group_decrypt(sig, g, &peer, ct, n, &out);
    r = rc ? fail(rc) : plain_reply(req, &out);
    free(ct);
    wa_buf_cleanup(&out);
    return r;
}

static json_t *dispatch(json_t *req)
{
    const char *op = json_string_value(json_object_get(req, "op"));

    if (!op)
        return fail(WA_EINVAL);
    if (strcmp(op, "init") == 0)
        return op_init(req);
    if (!sig)
        return fail(WA_ESTATE);
    if (strcmp(op, "bundle") == 0)
        return op_bundle(req);
    if (strcmp(op, "process_bundle") == 0)
        return op_process_bundle(req);
    if (strcmp(op, "encrypt") == 0)
        return op_encrypt(req);
    if (strcmp(op, "decrypt") == 0)
        return op_decrypt(req);
    if (strcmp(op, "skdm") == 0)
        return op_skdm(req);
    if (strcmp(op, "process_skdm") == 0)
        return op_process_skdm(req);
    if (strcmp(op, "group_encrypt") == 0)
        return op_group_encrypt(req);
    if (strcmp(op, "group_decrypt") == 0)
        return op_group_decrypt(req);
    if (strcmp(op, "prekeys") == 0)
        return json_pack("{s:i}", "count",
                         (json_int_t)wa_signal_memstore_count(mem, WA_SIGNAL_MEM_PREKEYS));
    return fail(WA_EUNSUPPORTED);
}

int main(void)
{
    char *line = malloc(LINE_MAX_LEN);

    if (!line)
        return 1;
    while (fgets(line, LINE_MAX_LEN, stdin)) {
        json_error_t e;
        json_t *req = json_loads(line, 0, &e), *resp;
        char *s;

        resp = req ? dispatch(req) : fail(WA_EINVAL);
        s = json_dumps(resp, JSON_COMPACT);
        printf("%s\n", s ? s : "{\"err\":\"WA_ENOMEM\"}");
        fflush(stdout);
        free(s);
        json_decref(resp);
        json_decref(req);
    }
    free(line);
    wa_signal_free(sig);
    wa_signal_memstore_free(mem);
    wa_signal_ctx_shutdown();
    return 0;
}
