/* test_client.c - the sans-I/O parts of libwa's client (policy, ClientPayload, keys, iq table,
 * stanza builders, pairing: QR text, pair-success verification as a phone would sign it,
 * phone-code crypto checked from the primary's side) and the life cycle on a real loop
 * without a server (retries with backoff, stop, free inside a callback, bad configs).
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "bnode/bnode.h"
#include "bnode/node.h"
#include "client/client_int.h"
#include "core/log.h"
#include "core/util.h"
#include "crypto/crypto.h"
#include "crypto/curve25519.h"
#include "proto/adv.pb-c.h"
#include "proto/client_payload.pb-c.h"
#include "proto/proto.h"
#include "wa/client.h"
#include "wa/error.h"

/* ---- policy --------------------------------------------------------------------------------- */

static wa_node *mk(wa_arena *a, const char *tag, const char *k, const char *v)
{
    wa_node *n = wa_node_new(a, tag);
    assert_non_null(n);
    if (k)
        assert_int_equal(wa_node_set_attr(a, n, k, v), 0);
    return n;
}

static void classify(const wa_node *n, int want_reason, int want_code)
{
    int reason = 0, code = 0;
    const char *text = NULL;

    wa__policy_classify_node(n, &reason, &code, &text);
    assert_int_equal(reason, want_reason);
    assert_int_equal(code, want_code);
    assert_non_null(text);
    assert_true(strlen(text) > 0);
}

static void test_policy_classify(void **state)
{
    wa_arena a;
    wa_node *n;

    (void)state;
    wa_arena_init(&a, 1 << 16);
    classify(mk(&a, "stream:error", "code", "515"), WA_DISC_RESTART, 515);
    classify(mk(&a, "stream:error", "code", "401"), WA_DISC_LOGGED_OUT, 401);
    classify(mk(&a, "failure", "reason", "401"), WA_DISC_LOGGED_OUT, 401);
    classify(mk(&a, "failure", "reason", "403"), WA_DISC_BANNED, 403);
    classify(mk(&a, "failure", "reason", "405"), WA_DISC_BAD_VERSION, 405);
    classify(mk(&a, "stream:error", "code", "411"), WA_DISC_DOWNGRADE, 411);
    classify(mk(&a, "stream:error", "code", "503"), WA_DISC_SERVER, 503);
    classify(mk(&a, "stream:error", "code", "x5"), WA_DISC_SERVER, 500); /* junk: bad session */
    classify(mk(&a, "xmlstreamend", NULL, NULL), WA_DISC_SERVER, 428);
    n = mk(&a, "stream:error", NULL, NULL);
    assert_non_null(wa_node_new_child(&a, n, "conflict"));
    classify(n, WA_DISC_REPLACED, 440);
    classify(mk(&a, "stream:error", NULL, NULL), WA_DISC_SERVER, 500);
    classify(mk(&a, "failure", "reason", "400"), WA_DISC_PROTOCOL, 400);
    wa_arena_cleanup(&a);

    assert_int_equal(wa__policy_reason_for_error(WA_ECERT), WA_DISC_CERT);
    assert_int_equal(wa__policy_reason_for_error(WA_ETIMEDOUT), WA_DISC_TIMEOUT);
    assert_int_equal(wa__policy_reason_for_error(WA_ECONNREFUSED), WA_DISC_NETWORK);
    assert_int_equal(wa__policy_reason_for_error(WA_EPROTO), WA_DISC_PROTOCOL);
    assert_int_equal(wa__policy_reason_for_error(WA_EPROXYAUTH), WA_DISC_PROXY_AUTH);
    assert_string_equal(wa_disconnect_reason_name(WA_DISC_PROXY_AUTH), "proxy_auth");
    assert_string_equal(wa_disconnect_reason_name(WA_DISC_REPLACED), "replaced");
    assert_string_equal(wa_disconnect_reason_name(999), "unknown");
}

static void test_policy_retry(void **state)
{
    unsigned d = 12345, i, attempt;
    static const int stops[] = {WA_DISC_STOPPED, WA_DISC_REPLACED,     WA_DISC_LOGGED_OUT,
                                WA_DISC_BANNED,  WA_DISC_BAD_VERSION,  WA_DISC_DOWNGRADE,
                                WA_DISC_CERT,    WA_DISC_PAIR_EXPIRED, WA_DISC_PAIR_FAILED,
                                WA_DISC_STORE,   WA_DISC_PROXY_AUTH};
    static const int retries[] = {WA_DISC_NETWORK, WA_DISC_TIMEOUT, WA_DISC_DEAD_LINK,
                                  WA_DISC_SERVER, WA_DISC_PROTOCOL};

    (void)state;
    assert_int_equal(wa__policy_retry(WA_DISC_RESTART, 7, 1000, 60000, 99, &d), 1);
    assert_int_equal(d, 0);
    for (i = 0; i < WA_ARRAY_SIZE(stops); i++)
        assert_int_equal(wa__policy_retry(stops[i], 0, 1000, 60000, 5, &d), 0);
    for (i = 0; i < WA_ARRAY_SIZE(retries); i++) {
        /* equal jitter: within [cap/2, cap] where cap = min(max, base << attempt) */
        for (attempt = 0; attempt < 40; attempt++) {
            uint64_t cap = attempt >= 31 ? 60000 : (uint64_t)1000 << attempt;
            if (cap > 60000)
                cap = 60000;
            assert_int_equal(wa__policy_retry(retries[i], attempt, 1000, 60000, 0, &d), 1);
            assert_int_equal(d, cap / 2);
            assert_int_equal(wa__policy_retry(retries[i], attempt, 1000, 60000, UINT32_MAX, &d), 1);
            assert_true(d >= cap / 2 && d <= cap);
        }
    }
    /* the delay grows with the attempts until the cap */
    wa__policy_retry(WA_DISC_NETWORK, 0, 1000, 60000, 0, &d);
    assert_int_equal(d, 500);
    wa__policy_retry(WA_DISC_NETWORK, 3, 1000, 60000, 0, &d);
    assert_int_equal(d, 4000);
}

/* ---- ClientPayload -------------------------------------------------------------------------- */

static void fill_creds(wa_store_creds *c)
{
    assert_int_equal(wa__keys_new_creds(c), 0);
}

static void test_payload(void **state)
{
    wa_store_creds c;
    wa__payload_opts o = {{2, 3000, 1043857760}, NULL, "Gateway"};
    Wa__ClientPayload *p = NULL;
    Wa__DeviceProps *dp = NULL;
    uint8_t sig_msg[33];
    wa_buf b;
    uint32_t v[3];
    static const uint8_t md5[16] = {0xf6, 0xf6, 0x5c, 0x06, 0x07, 0xa1, 0xcd, 0xff,
                                    0xd8, 0x75, 0x2b, 0x05, 0x1f, 0xc9, 0x5e, 0xdf};

    (void)state;
    assert_int_equal(wa__parse_version("2.3000.1043857760", v), 0);
    assert_int_equal(v[2], 1043857760u);
    assert_int_equal(wa__parse_version("2.3000", v), WA_EINVAL);
    assert_int_equal(wa__parse_version("2.3000.1.4", v), WA_EINVAL);
    assert_int_equal(wa__parse_version("2.x.1", v), WA_EINVAL);
    assert_int_equal(wa__parse_version("2.3000.99999999999", v), WA_EINVAL);

    fill_creds(&c);
    assert_true(c.registration_id >= 1 && c.registration_id <= 0x3FFF);
    assert_int_equal(c.spk_id, 1);
    assert_int_equal(c.next_prekey_id, 1);
    /* the signed prekey is signed over 05 || pub */
    sig_msg[0] = 5;
    memcpy(sig_msg + 1, c.spk_pub, 32);
    assert_int_equal(wa_xeddsa_verify(c.identity_pub, sig_msg, 33, c.spk_sig), 0);

    /* registration */
    wa_buf_init(&b, WA__PAYLOAD_MAX);
    assert_int_equal(wa__payload_build(&c, &o, &b), 0);
    assert_int_equal(wa_proto_unpack(&wa__client_payload__descriptor, b.data, b.len, &p), 0);
    assert_false(p->has_username);
    assert_true(p->has_passive && !p->passive);
    assert_true(p->has_pull && !p->pull);
    assert_string_equal(p->pushname, "Gateway");
    assert_int_equal(p->useragent->platform, WA__CLIENT_PAYLOAD__USER_AGENT__PLATFORM__WEB);
    assert_int_equal(p->useragent->appversion->tertiary, 1043857760u);
    assert_string_equal(p->useragent->localecountryiso31661alpha2, "US");
    assert_non_null(p->devicepairingdata);
    assert_int_equal(p->devicepairingdata->eregid.len, 4);
    assert_int_equal(wa_load_be32(p->devicepairingdata->eregid.data), c.registration_id);
    assert_int_equal(p->devicepairingdata->eskeyid.len, 3);
    assert_int_equal(wa_load_be24(p->devicepairingdata->eskeyid.data), 1);
    assert_memory_equal(p->devicepairingdata->eident.data, c.identity_pub, 32);
    assert_memory_equal(p->devicepairingdata->eskeysig.data, c.spk_sig, 64);
    assert_int_equal(p->devicepairingdata->ekeytype.data[0], 5);
    assert_memory_equal(p->devicepairingdata->buildhash.data, md5, 16);
    assert_int_equal(wa_proto_unpack(&wa__device_props__descriptor,
                                     p->devicepairingdata->deviceprops.data,
                                     p->devicepairingdata->deviceprops.len, &dp),
                     0);
    assert_string_equal(dp->os, "Mac OS");
    assert_int_equal(dp->platformtype, WA__DEVICE_PROPS__PLATFORM_TYPE__CHROME);
    wa_proto_free(dp);
    wa_proto_free(p);
    p = NULL;

    /* login */
    wa_buf_reset(&b);
    snprintf(c.me_jid, sizeof c.me_jid, "15551234567:7@s.whatsapp.net");
    assert_int_equal(wa__payload_build(&c, &o, &b), 0);
    assert_int_equal(wa_proto_unpack(&wa__client_payload__descriptor, b.data, b.len, &p), 0);
    assert_true(p->has_username);
    assert_int_equal(p->username, 15551234567ull);
    assert_int_equal(p->device, 7);
    assert_true(p->passive && p->pull);
    assert_null(p->devicepairingdata);
    wa_proto_free(p);
    snprintf(c.me_jid, sizeof c.me_jid, "notanumber:1@s.whatsapp.net");
    wa_buf_reset(&b);
    assert_int_equal(wa__payload_build(&c, &o, &b), WA_EINVAL);
    wa_buf_cleanup(&b);
}

static void test_keys_ids(void **state)
{
    wa_store_creds c;
    uint32_t old;

    (void)state;
    assert_int_equal(wa__keys_next_id(1), 2);
    assert_int_equal(wa__keys_next_id(0xFFFFFE), 0xFFFFFF);
    assert_int_equal(wa__keys_next_id(0xFFFFFF), 1); /* wraps past 0 */
    fill_creds(&c);
    old = c.spk_id;
    assert_int_equal(wa__keys_rotate_signed_prekey(&c, 1234), 0);
    assert_int_equal(c.spk_id, old + 1);
    assert_int_equal(c.spk_created, 1234);
    {
        uint8_t m[33] = {5};
        memcpy(m + 1, c.spk_pub, 32);
        assert_int_equal(wa_xeddsa_verify(c.identity_pub, m, 33, c.spk_sig), 0);
    }
}

/* ---- iq table and stanzas ------------------------------------------------------------------- */

static void test_iq_table(void **state)
{
    wa__iq_table t;
    wa__iq q;
    char id[WA__IQ_ID_MAX], first[WA__IQ_ID_MAX];
    unsigned i;

    (void)state;
    wa__iq_init(&t);
    wa__iq_make_id(&t, first);
    assert_non_null(strchr(first, '-'));
    assert_int_equal(wa__iq_next_deadline(&t), UINT64_MAX);
    for (i = 0; i < WA__MAX_PENDING_IQS; i++) {
        wa__iq_make_id(&t, id);
        assert_int_equal(wa__iq_track(&t, id, WA__IQ_PING, 1000 + i, i), 0);
    }
    assert_int_equal(wa__iq_track(&t, "x", WA__IQ_PING, 1, 0), WA_ELIMIT);
    assert_int_equal(wa__iq_next_deadline(&t), 1000);
    assert_int_equal(wa__iq_take(&t, first, &q), WA_ENOTFOUND);
    assert_int_equal(wa__iq_take(&t, NULL, &q), WA_ENOTFOUND);
    assert_int_equal(wa__iq_take_expired(&t, 999, &q), WA_ENOTFOUND);
    assert_int_equal(wa__iq_take_expired(&t, 1001, &q), 0);
    assert_true(q.deadline <= 1001);
    assert_int_equal(wa__iq_take_expired(&t, 1001, &q), 0);
    assert_int_equal(wa__iq_take_expired(&t, 1001, &q), WA_ENOTFOUND);
    assert_int_equal(wa__iq_next_deadline(&t), 1002);
    wa__iq_clear(&t);
    assert_int_equal(wa__iq_next_deadline(&t), UINT64_MAX);
    assert_null(t.pending); /* the memory goes with the last iq */
    /* grows on demand; freed when the last one is taken */
    assert_int_equal(wa__iq_track(&t, "a", WA__IQ_PING, 5, 0), 0);
    assert_non_null(t.pending);
    assert_int_equal(wa__iq_track(&t, "b", WA__IQ_PING, 6, 0), 0);
    assert_int_equal(wa__iq_take(&t, "a", &q), 0);
    assert_int_equal(q.deadline, 5);
    assert_non_null(t.pending);
    assert_int_equal(wa__iq_take(&t, "b", &q), 0);
    assert_string_equal(q.id, "b");
    assert_null(t.pending);
    assert_int_equal(t.n, 0);
}

static void test_stanzas(void **state)
{
    wa_arena a;
    wa_node *n, *msg;
    wa_store_creds c;
    wa_store_prekey keys[2];
    const uint8_t *p;
    size_t len;

    (void)state;
    wa_arena_init(&a, 1 << 20);
    n = wa__st_ping(&a, "1.2-3");
    assert_string_equal(wa_node_attr(n, "xmlns"), "w:p");
    assert_string_equal(wa_node_attr(n, "to"), "@s.whatsapp.net");
    {
        /* on the wire the server is a JID (JID_PAIR, LIST_EMPTY, token s.whatsapp.net) as
         * Baileys writes it, not the bare token */
        static const uint8_t jid_pair[3] = {0xfa, 0x00, 0x03};
        wa_buf b;
        size_t i;
        int found = 0;
        wa_buf_init(&b, 1024);
        assert_int_equal(wa_bnode_encode(n, 3, &b), 0);
        for (i = 0; i + 3 <= b.len; i++)
            found |= memcmp(b.data + i, jid_pair, 3) == 0;
        assert_true(found);
        wa_buf_cleanup(&b);
    }
    assert_string_equal(n->attrs[0].key, "id"); /* Baileys' order */
    assert_non_null(wa_node_child(n, "ping"));

    msg = mk(&a, "message", "id", "M1");
    wa_node_set_attr(&a, msg, "from", "123@g.us");
    wa_node_set_attr(&a, msg, "participant", "456@s.whatsapp.net");
    wa_node_set_attr(&a, msg, "type", "text");
    n = wa__st_ack(&a, msg, "999:1@s.whatsapp.net");
    assert_string_equal(wa_node_attr(n, "class"), "message");
    assert_string_equal(wa_node_attr(n, "to"), "123@g.us");
    assert_string_equal(wa_node_attr(n, "participant"), "456@s.whatsapp.net");
    assert_string_equal(wa_node_attr(n, "type"), "text");
    assert_string_equal(wa_node_attr(n, "from"), "999:1@s.whatsapp.net");
    msg = mk(&a, "receipt", "id", "R1");
    wa_node_set_attr(&a, msg, "from", "1@s.whatsapp.net");
    n = wa__st_ack(&a, msg, "999:1@s.whatsapp.net");
    assert_null(wa_node_attr(n, "from"));                             /* only messages carry from */
    assert_null(wa__st_ack(&a, mk(&a, "receipt", "id", "R2"), NULL)); /* no from: no ack */

    fill_creds(&c);
    memset(keys, 0, sizeof keys);
    keys[0].id = 1;
    keys[1].id = 0x010203;
    n = wa__st_prekey_upload(&a, "u1", &c, keys, 2);
    assert_non_null(n);
    assert_int_equal(wa_node_child_count(wa_node_child(n, "list")), 2);
    assert_int_equal(
        wa_node_content_bytes(
            wa_node_child(wa_node_child(wa_node_child(n, "list"), "key")->next, "id"), &p, &len),
        0);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "\x01\x02\x03", 3);
    assert_int_equal(wa_node_content_bytes(wa_node_child(n, "registration"), &p, &len), 0);
    assert_int_equal(wa_load_be32(p), c.registration_id);
    assert_non_null(wa_node_child(wa_node_child(n, "skey"), "signature"));
    n = wa__st_unified_session(&a, 0);
    assert_string_equal(wa_node_attr(wa_node_child(n, "unified_session"), "id"), "259200000");
    wa_arena_cleanup(&a);
}

/* ---- pairing -------------------------------------------------------------------------------- */

static void test_qr_text(void **state)
{
    wa_store_creds c;
    char text[WA__QR_MAX], b64[48];

    (void)state;
    memset(&c, 0, sizeof c);
    memset(c.noise_pub, 1, 32);
    memset(c.identity_pub, 2, 32);
    memset(c.adv_secret, 3, 32);
    assert_int_equal(wa__pair_qr_text("2@abc", &c, text, sizeof text), 0);
    assert_true(strncmp(text, WA__QR_PREFIX "2@abc,", strlen(WA__QR_PREFIX) + 6) == 0);
    wa_base64_encode(b64, c.adv_secret, 32, 0);
    assert_non_null(strstr(text, b64));
    assert_string_equal(text + strlen(text) - 2, ",1");
    assert_int_equal(wa__pair_qr_text("2@abc", &c, text, 40), WA_ELIMIT);
}

/* What the phone and server do on a scan (as wasim does), with knobs to break it. */
typedef struct phone {
    uint8_t priv[32], pub[32];
} phone;

enum { BREAK_NONE, BREAK_HMAC, BREAK_SIG, BREAK_NO_DEVICE, HOSTED };

static wa_node *pair_success_iq(wa_arena *a, const phone *ph, const wa_store_creds *c, int how)
{
    Wa__ADVDeviceIdentity di = WA__ADVDEVICE_IDENTITY__INIT;
    Wa__ADVSignedDeviceIdentity sd = WA__ADVSIGNED_DEVICE_IDENTITY__INIT;
    Wa__ADVSignedDeviceIdentityHMAC hm = WA__ADVSIGNED_DEVICE_IDENTITY_HMAC__INIT;
    wa_buf details, signed_b, outer, msg;
    uint8_t sig[64], mac[32];
    wa_node *iq, *ps, *dev;

    wa_buf_init(&details, 512);
    wa_buf_init(&signed_b, 1024);
    wa_buf_init(&outer, 2048);
    wa_buf_init(&msg, 1024);
    di.has_rawid = di.has_timestamp = di.has_keyindex = 1;
    di.rawid = 42;
    di.timestamp = 1700000000;
    di.keyindex = 3;
    if (how == HOSTED) {
        di.has_devicetype = 1;
        di.devicetype = WA__ADVENCRYPTION_TYPE__HOSTED;
    }
    assert_int_equal(wa_proto_pack(&di, &details), 0);
    wa_buf_append(&msg, how == HOSTED ? "\x06\x05" : "\x06\x00", 2);
    wa_buf_append(&msg, details.data, details.len);
    wa_buf_append(&msg, c->identity_pub, 32);
    assert_int_equal(wa_xeddsa_sign(sig, ph->priv, msg.data, msg.len), 0);
    if (how == BREAK_SIG)
        sig[10] ^= 1;
    sd.has_details = sd.has_accountsignaturekey = sd.has_accountsignature = 1;
    sd.details.data = details.data;
    sd.details.len = details.len;
    sd.accountsignaturekey.data = (uint8_t *)ph->pub;
    sd.accountsignaturekey.len = 32;
    sd.accountsignature.data = sig;
    sd.accountsignature.len = 64;
    assert_int_equal(wa_proto_pack(&sd, &signed_b), 0);
    wa_buf_reset(&msg);
    if (how == HOSTED)
        wa_buf_append(&msg, "\x06\x05", 2);
    wa_buf_append(&msg, signed_b.data, signed_b.len);
    assert_int_equal(wa_hmac_sha256(mac, c->adv_secret, 32, msg.data, msg.len), 0);
    if (how == BREAK_HMAC)
        mac[0] ^= 1;
    hm.has_details = hm.has_hmac = 1;
    hm.details.data = signed_b.data;
    hm.details.len = signed_b.len;
    hm.hmac.data = mac;
    hm.hmac.len = 32;
    if (how == HOSTED) {
        hm.has_accounttype = 1;
        hm.accounttype = WA__ADVENCRYPTION_TYPE__HOSTED;
    }
    assert_int_equal(wa_proto_pack(&hm, &outer), 0);
    iq = mk(a, "iq", "id", "PS1");
    wa_node_set_attr(a, iq, "type", "set");
    ps = wa_node_new_child(a, iq, "pair-success");
    wa__child_bytes(a, ps, "device-identity", outer.data, outer.len);
    wa_node_set_attr(a, wa_node_new_child(a, ps, "platform"), "name", "android");
    if (how != BREAK_NO_DEVICE) {
        dev = wa_node_new_child(a, ps, "device");
        wa_node_set_attr(a, dev, "jid", "15551234567:4@s.whatsapp.net");
        wa_node_set_attr(a, dev, "lid", "777:4@lid");
    }
    wa_buf_cleanup(&details);
    wa_buf_cleanup(&signed_b);
    wa_buf_cleanup(&outer);
    wa_buf_cleanup(&msg);
    return iq;
}

static void test_pair_success(void **state)
{
    phone ph;
    wa_store_creds c, before;
    wa_arena a;
    wa_node *reply = NULL;
    wa__pair_result r;
    const wa_node *di;
    const uint8_t *p;
    size_t len;
    Wa__ADVSignedDeviceIdentity *sd = NULL;
    wa_buf msg;
    int how;

    (void)state;
    wa_arena_init(&a, 1 << 20);
    assert_int_equal(wa_x25519_keygen(ph.priv, ph.pub), 0);
    fill_creds(&c);
    before = c;
    for (how = BREAK_HMAC; how <= BREAK_NO_DEVICE; how++) {
        assert_int_equal(wa__pair_success(pair_success_iq(&a, &ph, &c, how), &c, &a, &reply, &r),
                         how == BREAK_NO_DEVICE ? WA_EPROTO : WA_ECRYPTO);
        assert_memory_equal(&c, &before, sizeof c); /* nothing changed */
    }
    for (how = BREAK_NONE; how <= HOSTED; how += HOSTED) {
        c = before;
        assert_int_equal(wa__pair_success(pair_success_iq(&a, &ph, &c, how), &c, &a, &reply, &r),
                         0);
        assert_string_equal(c.me_jid, "15551234567:4@s.whatsapp.net");
        assert_string_equal(c.me_lid, "777:4@lid");
        assert_string_equal(c.platform, "android");
        assert_int_equal(r.key_index, 3);
        assert_true(c.adv_identity_len > 0);
        /* the reply: <iq type=result id=PS1><pair-device-sign><device-identity key-index=3> */
        assert_string_equal(wa_node_attr(reply, "type"), "result");
        assert_string_equal(wa_node_attr(reply, "id"), "PS1");
        di = wa_node_child(wa_node_child(reply, "pair-device-sign"), "device-identity");
        assert_string_equal(wa_node_attr(di, "key-index"), "3");
        assert_int_equal(wa_node_content_bytes(di, &p, &len), 0);
        assert_int_equal(wa_proto_unpack(&wa__advsigned_device_identity__descriptor, p, len, &sd),
                         0);
        assert_false(sd->has_accountsignaturekey); /* left out of the reply */
        assert_true(sd->has_devicesignature && sd->devicesignature.len == 64);
        /* the server checks 06 01 || details || companion identity || account key */
        wa_buf_init(&msg, 1024);
        wa_buf_append(&msg, "\x06\x01", 2);
        wa_buf_append(&msg, sd->details.data, sd->details.len);
        wa_buf_append(&msg, c.identity_pub, 32);
        wa_buf_append(&msg, ph.pub, 32);
        assert_int_equal(
            wa_xeddsa_verify(c.identity_pub, msg.data, msg.len, sd->devicesignature.data), 0);
        wa_buf_cleanup(&msg);
        wa_proto_free(sd);
        sd = NULL;
        /* the stored identity keeps the account key */
        assert_int_equal(wa_proto_unpack(&wa__advsigned_device_identity__descriptor, c.adv_identity,
                                         c.adv_identity_len, &sd),
                         0);
        assert_true(sd->has_accountsignaturekey);
        assert_memory_equal(sd->accountsignaturekey.data, ph.pub, 32);
        wa_proto_free(sd);
        sd = NULL;
    }
    /* the other party's adv secret: HMAC fails */
    c = before;
    {
        wa_node *iq = pair_success_iq(&a, &ph, &c, BREAK_NONE);
        c.adv_secret[0] ^= 0xFF;
        before = c;
        assert_int_equal(wa__pair_success(iq, &c, &a, &reply, &r), WA_ECRYPTO);
    }
    wa_arena_cleanup(&a);
}

static void test_link_code(void **state)
{
    static const uint8_t zero[5] = {0}, ones[5] = {0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t mix[5] = {0x08, 0x86, 0x42, 0x98, 0xe8};
    char code[9];
    wa__link l;
    uint8_t pub[32], wrapped[80], back[32];
    wa_store_creds c;
    uint8_t prim_id_priv[32], prim_id_pub[32], prim_eph_priv[32], prim_eph_pub[32];
    uint8_t comp_eph[32], shared[32], key[32], plain[96], ident_shared[32], ikm[96], adv[32];
    const uint8_t *bundle, *p;
    size_t blen, len;
    wa_arena a;
    wa_node *hello, *notif, *reg, *finish = NULL, *r;

    (void)state;
    wa__link_code_from_bytes(zero, code);
    assert_string_equal(code, "11111111");
    wa__link_code_from_bytes(ones, code);
    assert_string_equal(code, "ZZZZZZZZ");
    /* 00001 00010 00011 00100 00101 00110 00111 01000 */
    wa__link_code_from_bytes(mix, code);
    assert_string_equal(code, "23456789");
    assert_int_equal(wa__link_init(&l, "0123"), WA_EINVAL);
    assert_int_equal(wa__link_init(&l, "1555x234567"), WA_EINVAL);
    assert_int_equal(wa__link_init(&l, "15551234567"), 0);
    assert_int_equal(strlen(l.code), 8);

    /* wrap / unwrap */
    memset(pub, 0x5A, 32);
    assert_int_equal(wa__link_wrap(l.code, pub, wrapped), 0);
    assert_int_equal(wa__link_unwrap(l.code, wrapped, back), 0);
    assert_memory_equal(back, pub, 32);
    assert_int_equal(wa__link_unwrap("WRONGCOD", wrapped, back), 0);
    assert_memory_not_equal(back, pub, 32);

    /* the whole exchange, checked from the primary's side */
    wa_arena_init(&a, 1 << 20);
    fill_creds(&c);
    hello = wa__link_hello(&a, "h1", &l, c.noise_pub);
    reg = (wa_node *)wa_node_child(hello, "link_code_companion_reg");
    assert_string_equal(wa_node_attr(reg, "jid"), "15551234567@s.whatsapp.net");
    assert_string_equal(wa_node_attr(reg, "stage"), "companion_hello");
    assert_int_equal(
        wa_node_content_bytes(
            wa_node_child(reg, "link_code_pairing_wrapped_companion_ephemeral_pub"), &p, &len),
        0);
    assert_int_equal(len, 80);
    assert_int_equal(wa__link_unwrap(l.code, p, comp_eph), 0); /* the phone knows the code */
    assert_memory_equal(comp_eph, l.eph_pub, 32);

    assert_int_equal(wa_x25519_keygen(prim_id_priv, prim_id_pub), 0);
    assert_int_equal(wa_x25519_keygen(prim_eph_priv, prim_eph_pub), 0);
    assert_int_equal(wa__link_wrap(l.code, prim_eph_pub, wrapped), 0);
    notif = mk(&a, "notification", "type", "link_code_companion_reg");
    r = wa_node_new_child(&a, notif, "link_code_companion_reg");
    wa__child_bytes(&a, r, "link_code_pairing_ref", "REF1", 4);
    wa__child_bytes(&a, r, "primary_identity_pub", prim_id_pub, 32);
    wa__child_bytes(&a, r, "link_code_pairing_wrapped_primary_ephemeral_pub", wrapped, 80);
    assert_int_equal(wa__link_finish(notif, &l, &c, &a, "f1", &finish), 0);
    reg = (wa_node *)wa_node_child(finish, "link_code_companion_reg");
    assert_string_equal(wa_node_attr(reg, "stage"), "companion_finish");
    assert_int_equal(
        wa_node_content_bytes(wa_node_child(reg, "link_code_pairing_wrapped_key_bundle"), &bundle,
                              &blen),
        0);
    assert_int_equal(blen, 32 + 12 + 96 + 16);
    assert_int_equal(wa_x25519(shared, prim_eph_priv, comp_eph), 0);
    assert_int_equal(wa_hkdf_sha256(key, 32, bundle, 32, shared, 32,
                                    (const uint8_t *)"link_code_pairing_key_bundle_encryption_key",
                                    43),
                     0);
    assert_int_equal(wa_aes_gcm_decrypt(plain, key, bundle + 32, NULL, 0, bundle + 44, 112), 0);
    assert_memory_equal(plain, c.identity_pub, 32);
    assert_memory_equal(plain + 32, prim_id_pub, 32);
    assert_int_equal(wa_x25519(ident_shared, prim_id_priv, c.identity_pub), 0);
    memcpy(ikm, shared, 32);
    memcpy(ikm + 32, ident_shared, 32);
    memcpy(ikm + 64, plain + 64, 32);
    assert_int_equal(wa_hkdf_sha256(adv, 32, NULL, 0, ikm, 96, (const uint8_t *)"adv_secret", 10),
                     0);
    assert_memory_equal(adv, c.adv_secret, 32); /* both sides hold the same adv secret */
    assert_int_equal(wa_node_content_bytes(wa_node_child(reg, "link_code_pairing_ref"), &p, &len),
                     0);
    assert_memory_equal(p, "REF1", 4);

    /* a notification missing its parts is refused */
    notif = mk(&a, "notification", "type", "link_code_companion_reg");
    wa_node_new_child(&a, notif, "link_code_companion_reg");
    assert_int_equal(wa__link_finish(notif, &l, &c, &a, "f2", &finish), WA_EPROTO);
    wa_arena_cleanup(&a);
}

/* ---- the client on a loop, no server -------------------------------------------------------- */

typedef struct events {
    int disconnects, retries, free_in_cb;
    int last_reason;
    unsigned last_retry_ms;
    wa_client *c;
    uv_timer_t *stopper;
} events;

static void on_disc(wa_client *c, const wa_client_disconnect_info *i, void *ud)
{
    events *e = ud;

    e->disconnects++;
    e->last_reason = i->reason;
    e->last_retry_ms = i->retry_ms;
    if (i->will_retry)
        e->retries++;
    if (e->free_in_cb && e->disconnects == e->free_in_cb) {
        wa_client_free(c); /* inside a callback: must be safe */
        e->c = NULL;
        uv_close((uv_handle_t *)e->stopper, NULL);
    }
}

static char store_path[64];

static void test_lifecycle_no_server(void **state)
{
    static const wa_client_callbacks cbs = {.disconnected = on_disc};
    wa_client_config cfg;
    uv_loop_t loop;
    uv_timer_t stopper;
    wa_store *st;
    events e;
    uv_tcp_t probe;
    struct sockaddr_in sa;
    int port, namelen = sizeof sa;
    char url[64];

    (void)state;
    snprintf(store_path, sizeof store_path, "/tmp/wa_client_test_%d.db", (int)getpid());
    unlink(store_path);
    assert_int_equal(wa_store_open(store_path, NULL, &st), 0);
    uv_loop_init(&loop);
    /* a port nobody listens on: bind one, read its number, close it */
    uv_tcp_init(&loop, &probe);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_bind(&probe, (const struct sockaddr *)&sa, 0);
    uv_tcp_getsockname(&probe, (struct sockaddr *)&sa, &namelen);
    port = ntohs(sa.sin_port);
    uv_close((uv_handle_t *)&probe, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws/chat", port);

    memset(&cfg, 0, sizeof cfg);
    memset(&e, 0, sizeof e);
    /* bad configs */
    cfg.ws_url = "http://x/";
    assert_int_equal(wa_client_new(&loop, st, &cfg, &cbs, &e, &e.c), WA_EINVAL);
    cfg.ws_url = "ws://:80/";
    assert_int_equal(wa_client_new(&loop, st, &cfg, &cbs, &e, &e.c), WA_EINVAL);
    cfg.ws_url = url;
    cfg.version = "2.3000";
    assert_int_equal(wa_client_new(&loop, st, &cfg, &cbs, &e, &e.c), WA_EINVAL);
    cfg.version = NULL;
    cfg.proxy = "ftp://proxy";
    assert_int_not_equal(wa_client_new(&loop, st, &cfg, &cbs, &e, &e.c), 0);
    cfg.proxy = NULL;

    cfg.reconnect_base_ms = 20;
    cfg.reconnect_max_ms = 80;
    assert_int_equal(wa_client_new(&loop, st, &cfg, &cbs, &e, &e.c), 0);
    assert_string_equal(wa_client_jid(e.c), "");
    assert_int_equal(wa_client_pair_phone(e.c, "12"), WA_EINVAL);
    assert_int_equal(wa_client_pair_phone(e.c, "15551234567"), 0);
    assert_int_equal(wa_client_start(e.c), 0);
    assert_int_equal(wa_client_start(e.c), WA_ESTATE);
    assert_int_equal(wa_client_pair_phone(e.c, "15551234567"), WA_ESTATE);
    /* refused connections retry with a growing, capped backoff; the 4th disconnect frees the
     * client from inside its own callback */
    e.free_in_cb = 4;
    e.stopper = &stopper;
    uv_timer_init(&loop, &stopper);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(e.disconnects, 4);
    assert_int_equal(e.retries, 4);
    assert_int_equal(e.last_reason, WA_DISC_NETWORK);
    assert_true(e.last_retry_ms <= 80);
    assert_null(e.c);
    /* the account's keys were made before the first connection */
    {
        int64_t id;
        assert_int_equal(wa_store_account(st, "default", 0, &id), 0);
        assert_false(wa_store_account_paired(st, id));
    }
    /* stop while waiting to retry: no event, no retry */
    memset(&e, 0, sizeof e);
    cfg.reconnect_base_ms = 10000;
    assert_int_equal(wa_client_new(&loop, st, &cfg, &cbs, &e, &e.c), 0);
    assert_int_equal(wa_client_start(e.c), 0);
    while (e.disconnects == 0)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(wa_client_stop(e.c), 0);
    assert_int_equal(wa_client_stop(e.c), 0);
    wa_client_free(e.c);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(e.disconnects, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    wa_store_close(st);
    unlink(store_path);
}

static int logged_out_events;

static void on_logged_out(wa_client *c, void *ud)
{
    (void)c;
    (void)ud;
    logged_out_events++;
}

/* wa_client_memory counts the struct and its strings (no connection: no stream, no wire);
 * wa_client_logout without a connection wipes the credentials here only, with no event. */
static void test_memory_logout_offline(void **state)
{
    static const wa_client_callbacks cbs = {.logged_out = on_logged_out};
    static const char proxy[] = "socks5://user:secret@127.0.0.1:1080", push[] = "Bench Push";
    wa_client_config cfg;
    wa_store_creds *cr = calloc(1, sizeof *cr);
    uv_loop_t loop;
    wa_store *st;
    wa_client *a, *b;
    int64_t id;
    size_t ma, mb;

    (void)state;
    assert_non_null(cr);
    snprintf(store_path, sizeof store_path, "/tmp/wa_client_test_m%d.db", (int)getpid());
    unlink(store_path);
    assert_int_equal(wa_store_open(store_path, NULL, &st), 0);
    uv_loop_init(&loop);
    assert_int_equal(wa_client_memory(NULL), 0);
    assert_int_equal(wa_client_logout(NULL), WA_EINVAL);

    memset(&cfg, 0, sizeof cfg);
    cfg.ws_url = "ws://127.0.0.1:9/ws/chat";
    cfg.account = "acct-a";
    assert_int_equal(wa_client_new(&loop, st, &cfg, &cbs, NULL, &a), 0);
    cfg.account = "acct-b";
    cfg.proxy = proxy;
    cfg.push_name = push;
    assert_int_equal(wa_client_new(&loop, st, &cfg, &cbs, NULL, &b), 0);
    ma = wa_client_memory(a);
    mb = wa_client_memory(b);
    /* struct + account name + host + path */
    assert_int_equal(ma, sizeof(struct wa_client) + sizeof "acct-a" + sizeof "127.0.0.1" +
                             sizeof "/ws/chat");
    assert_int_equal(mb, ma + sizeof proxy + sizeof push);
    wa_client_free(b);

    /* a paired account, logged out while not connected */
    assert_int_equal(wa_client_start(a), 0);
    assert_int_equal(wa__keys_new_creds(cr), 0);
    snprintf(cr->me_jid, sizeof cr->me_jid, "15551234567:3@s.whatsapp.net");
    assert_int_equal(wa_store_account(st, "acct-a", 0, &id), 0);
    assert_int_equal(wa_store_creds_save(st, id, cr, 1), 0);
    assert_true(wa_store_account_paired(st, id));
    assert_int_equal(wa_client_logout(a), 0);
    assert_false(wa_store_account_paired(st, id));
    assert_string_equal(wa_client_jid(a), "");
    assert_int_equal(wa_client_start(a), 0); /* stopped by the logout: it may start again */
    wa_client_free(a);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(logged_out_events, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    wa_store_creds_wipe(cr);
    free(cr);
    wa_store_close(st);
    unlink(store_path);
}

/* Key pairs made off the loop (wa__keys_generate: no ids), then given ids from the account's
 * next_prekey_id as it is when stored (wa__keys_store_new, one transaction): a key taken in
 * between (a retry receipt's) moves the ids on instead of colliding. */
static void test_keys_generate_then_store(void **state)
{
    wa_store_creds *cr = calloc(1, sizeof *cr), *back = calloc(1, sizeof *back);
    wa_store_prekey k[4], pend[8], got;
    uint8_t pub[32];
    wa_store *st;
    int64_t id;
    size_t n = 0, i;

    (void)state;
    assert_non_null(cr);
    assert_non_null(back);
    snprintf(store_path, sizeof store_path, "/tmp/wa_client_test_g%d.db", (int)getpid());
    unlink(store_path);
    assert_int_equal(wa_store_open(store_path, NULL, &st), 0);
    assert_int_equal(wa__keys_new_creds(cr), 0);
    assert_int_equal(wa_store_account(st, "acct", 1, &id), 0);
    assert_int_equal(wa_store_creds_save(st, id, cr, 0), 0);
    memset(k, 0xAA, sizeof k);
    assert_int_equal(wa__keys_generate(k, 4), 0);
    for (i = 0; i < 4; i++) {
        assert_int_equal(k[i].id, 0);
        assert_int_equal(wa_x25519_public(pub, k[i].priv), 0);
        assert_memory_equal(pub, k[i].pub, 32);
    }
    assert_memory_not_equal(k[0].priv, k[1].priv, 32);
    /* meanwhile one key is made on the loop (ids 1), then the batch is stored: 2..5 */
    assert_int_equal(wa__keys_pending_prekeys(st, id, cr, 1, pend, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(pend[0].id, 1);
    assert_int_equal(wa_store_creds_load(st, id, back), 0);
    assert_int_equal(wa__keys_store_new(st, id, back, k, 4), 0);
    assert_int_equal(k[0].id, 2);
    assert_int_equal(k[3].id, 5);
    assert_int_equal(wa_store_creds_load(st, id, back), 0);
    assert_int_equal(back->next_prekey_id, 6);
    assert_int_equal(wa_store_prekey_get(st, id, 4, &got), 0);
    assert_memory_equal(got.pub, k[2].pub, 32);
    assert_int_equal(wa_store_prekeys_pending(st, id, pend, 8, &n), 0);
    assert_int_equal(n, 5);
    /* stored from stale creds (next 1 again): the ids are taken, nothing is stored */
    assert_int_equal(wa__keys_store_new(st, id, cr, k, 4), WA_EEXIST);
    assert_int_equal(wa_store_creds_load(st, id, back), 0);
    assert_int_equal(back->next_prekey_id, 6);
    wa_store_creds_wipe(cr);
    wa_store_creds_wipe(back);
    free(cr);
    free(back);
    wa_store_close(st);
    unlink(store_path);
}

/* Stale restore: the server's digest lists prekey ids this store lost; they get new keys under
 * the same ids (to upload again) and the next id moves past them; known ids stay untouched. */
static void test_keys_adopt_server_prekeys(void **state)
{
    wa_store_creds *cr = calloc(1, sizeof *cr), *back = calloc(1, sizeof *back);
    wa_store_prekey k[3], got;
    uint8_t old_pub[32];
    uint32_t server[] = {1, 2, 5, 6, 7, 0, 0x1000000};
    wa_store *st;
    int64_t id;
    size_t unknown = 99, replaced = 99, i;

    (void)state;
    assert_non_null(cr);
    assert_non_null(back);
    snprintf(store_path, sizeof store_path, "/tmp/wa_client_test_k%d.db", (int)getpid());
    unlink(store_path);
    assert_int_equal(wa_store_open(store_path, NULL, &st), 0);
    assert_int_equal(wa__keys_new_creds(cr), 0);
    assert_int_equal(wa_store_account(st, "acct", 1, &id), 0);
    assert_int_equal(wa_store_creds_save(st, id, cr, 0), 0);
    for (i = 0; i < 3; i++) { /* the restored store has ids 1..3, next 4 */
        k[i].id = (uint32_t)i + 1;
        assert_int_equal(wa_x25519_keygen(k[i].priv, k[i].pub), 0);
    }
    assert_int_equal(wa_store_prekeys_add(st, id, k, 3, 4), 0);
    memcpy(old_pub, k[1].pub, 32);

    /* nothing unknown: nothing changes */
    assert_int_equal(wa__keys_adopt_server_prekeys(st, id, server, 2, 10, &unknown, &replaced), 0);
    assert_int_equal(unknown, 0);
    assert_int_equal(replaced, 0);

    /* 5, 6, 7 unknown (0 and out-of-range ids ignored); at most 2 replaced */
    assert_int_equal(wa__keys_adopt_server_prekeys(st, id, server, 7, 2, &unknown, &replaced), 0);
    assert_int_equal(unknown, 3);
    assert_int_equal(replaced, 2);
    assert_int_equal(wa_store_prekey_get(st, id, 5, &got), 0);
    assert_int_equal(wa_store_prekey_get(st, id, 6, &got), 0);
    assert_int_equal(wa_store_prekey_get(st, id, 7, &got), WA_ENOTFOUND);
    assert_int_equal(wa_store_prekey_get(st, id, 2, &got), 0);
    assert_memory_equal(got.pub, old_pub, 32); /* ours: kept */
    assert_int_equal(wa_store_creds_load(st, id, back), 0);
    assert_int_equal(back->next_prekey_id, 8); /* past the highest unknown id */

    /* the adopted ones are pending upload */
    {
        wa_store_prekey pend[8];
        size_t n = 0;
        int seen5 = 0, seen6 = 0;
        assert_int_equal(wa_store_prekeys_pending(st, id, pend, 8, &n), 0);
        for (i = 0; i < n; i++) {
            seen5 |= pend[i].id == 5;
            seen6 |= pend[i].id == 6;
        }
        assert_true(seen5 && seen6);
    }
    wa_store_creds_wipe(cr);
    wa_store_creds_wipe(back);
    free(cr);
    free(back);
    wa_store_close(st);
    unlink(store_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_logout_offline),
        cmocka_unit_test(test_policy_classify),
        cmocka_unit_test(test_policy_retry),
        cmocka_unit_test(test_payload),
        cmocka_unit_test(test_keys_ids),
        cmocka_unit_test(test_keys_adopt_server_prekeys),
        cmocka_unit_test(test_keys_generate_then_store),
        cmocka_unit_test(test_iq_table),
        cmocka_unit_test(test_stanzas),
        cmocka_unit_test(test_qr_text),
        cmocka_unit_test(test_pair_success),
        cmocka_unit_test(test_link_code),
        cmocka_unit_test(test_lifecycle_no_server),
    };
    wa_log_set_level(WA_LOG_OFF);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
