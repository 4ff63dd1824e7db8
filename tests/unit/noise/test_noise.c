/* test_noise.c - the Noise handshake and transport: a known-answer transcript produced by
 * Baileys 6.17 (tests/vectors/noise_xx.txt), full in-memory handshakes both ways, certificate
 * chain checks (whatsmeow's verifyServerCert rules), tampering, bad messages, limits.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/util.h"
#include "crypto/curve25519.h"
#include "crypto/provider.h"
#include "crypto/vectors.h"
#include "frame/frame.h"
#include "noise/cert.h"
#include "noise/noise.h"
#include "proto/handshake.pb-c.h"
#include "proto/proto.h"
#include "wa/error.h"

#define BUF_MAX (1 << 20)

/* ---- the Baileys transcript ---- */

typedef struct kat {
    tv_record hs;
    tv_record tr[4];
    int ntr;
} kat;

static void kat_load(kat *k)
{
    FILE *f = tv_open("noise_xx.txt");

    assert_non_null(f);
    memset(k, 0, sizeof *k);
    assert_true(tv_next(f, &k->hs));
    while (k->ntr < 4 && tv_next(f, &k->tr[k->ntr]))
        k->ntr++;
    fclose(f);
    assert_int_equal(k->ntr, 2);
}

static void kat_free(kat *k)
{
    int i;

    tv_record_free(&k->hs);
    for (i = 0; i < k->ntr; i++)
        tv_record_free(&k->tr[i]);
}

static const uint8_t *kget(const tv_record *r, const char *name, size_t *len)
{
    size_t l = 0;
    const uint8_t *p = tv_get(r, name, &l);

    if (!p)
        fail_msg("vector field %s missing", name);
    if (len)
        *len = l;
    return p;
}

static uint64_t kat_now(const kat *k)
{
    const uint8_t *p = kget(&k->hs, "now", NULL);

    return ((uint64_t)wa_load_be32(p) << 32) | wa_load_be32(p + 4);
}

static void assert_buf(const wa_buf *b, const uint8_t *want, size_t len)
{
    assert_int_equal(b->len, len);
    assert_memory_equal(b->data, want, len);
}

static void kat_config(const kat *k, wa_noise_config *cfg, int role)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->role = role;
    memcpy(cfg->prologue, kget(&k->hs, "prologue", NULL), 4);
    if (role == WA_NOISE_INITIATOR) {
        cfg->static_priv = kget(&k->hs, "client_static_priv", NULL);
        cfg->root_pub = kget(&k->hs, "root_pub", NULL);
        cfg->now = kat_now(k);
    } else {
        cfg->static_priv = kget(&k->hs, "server_static_priv", NULL);
    }
}

static void test_kat_initiator(void **state)
{
    kat k;
    wa_noise_config cfg;
    wa_noise_hs hs;
    wa_noise_transport t;
    wa_buf out, small;
    size_t len;
    const uint8_t *p;
    int i;

    (void)state;
    kat_load(&k);
    kat_config(&k, &cfg, WA_NOISE_INITIATOR);
    wa_buf_init(&out, BUF_MAX);
    assert_int_equal(wa_noise_hs_init(&hs, &cfg), 0);
    assert_int_equal(wa__noise_hs_set_ephemeral(&hs, kget(&k.hs, "client_eph_priv", NULL)), 0);
    assert_int_equal(wa_noise_hs_state(&hs), WA_NOISE_HS_WRITE);
    /* a full output buffer is retryable: nothing changed */
    wa_buf_init(&small, 10);
    assert_int_equal(wa_noise_hs_write(&hs, NULL, 0, &small), WA_ELIMIT);
    wa_buf_cleanup(&small);
    assert_int_equal(wa_noise_hs_write(&hs, (const uint8_t *)"x", 1, &out), WA_EINVAL);
    assert_int_equal(wa_noise_hs_write(&hs, NULL, 0, &out), 0);
    p = kget(&k.hs, "client_hello", &len);
    assert_buf(&out, p, len);
    /* on the wire: intro + 3-byte length + client hello, as Baileys' encodeFrame makes it */
    {
        wa_frame f;
        wa_buf wire;
        const uint8_t *w;
        size_t wl;
        wa_buf_init(&wire, BUF_MAX);
        wa_frame_init(&f, WA_FRAME_CLIENT);
        assert_int_equal(wa_frame_set_intro(&f, 2, NULL, 0), 0);
        assert_int_equal(wa_frame_write(&f, out.data, out.len, &wire), 0);
        w = kget(&k.hs, "client_hello_wire", &wl);
        assert_buf(&wire, w, wl);
        wa_frame_cleanup(&f);
        wa_buf_cleanup(&wire);
    }
    assert_int_equal(wa_noise_hs_state(&hs), WA_NOISE_HS_READ);
    assert_int_equal(wa__noise_hs_set_ephemeral(&hs, kget(&k.hs, "client_eph_priv", NULL)),
                     WA_ESTATE);
    p = kget(&k.hs, "server_hello", &len);
    assert_int_equal(wa_noise_hs_read(&hs, p, len), 0);
    assert_string_equal(wa_noise_hs_reason(&hs), "");
    assert_memory_equal(wa_noise_hs_remote_static(&hs), kget(&k.hs, "server_static_pub", NULL), 32);
    p = kget(&k.hs, "cert_chain", &len);
    assert_int_equal(wa_noise_hs_remote_payload(&hs).len, len);
    assert_memory_equal(wa_noise_hs_remote_payload(&hs).ptr, p, len);
    assert_int_equal(wa_noise_hs_state(&hs), WA_NOISE_HS_WRITE);
    wa_buf_reset(&out);
    p = kget(&k.hs, "client_payload", &len);
    assert_int_equal(wa_noise_hs_write(&hs, p, len, &out), 0);
    p = kget(&k.hs, "client_finish", &len);
    assert_buf(&out, p, len);
    assert_int_equal(wa_noise_hs_state(&hs), WA_NOISE_HS_DONE);
    assert_int_equal(wa_noise_hs_split(&hs, &t), 0);
    assert_int_equal(wa_noise_hs_split(&hs, &t), WA_ESTATE);
    for (i = 0; i < k.ntr; i++) {
        const uint8_t *pt, *ct;
        size_t ptl, ctl;
        pt = kget(&k.tr[i], "c2s_pt", &ptl);
        ct = kget(&k.tr[i], "c2s_ct", &ctl);
        wa_buf_reset(&out);
        assert_int_equal(wa_noise_encrypt(&t, pt, ptl, &out), 0);
        assert_buf(&out, ct, ctl);
        /* the node helper produces the same bytes for a flag-0 plaintext (fresh counter) */
        pt = kget(&k.tr[i], "s2c_pt", &ptl);
        ct = kget(&k.tr[i], "s2c_ct", &ctl);
        wa_buf_reset(&out);
        assert_int_equal(wa_noise_decrypt(&t, ct, ctl, &out), 0);
        assert_buf(&out, pt, ptl);
    }
    assert_int_equal(t.wn, 2);
    assert_int_equal(t.rn, 2);
    wa_noise_transport_cleanup(&t);
    wa_noise_hs_cleanup(&hs);
    wa_buf_cleanup(&out);
    kat_free(&k);
}

static void test_kat_responder(void **state)
{
    kat k;
    wa_noise_config cfg;
    wa_noise_hs hs;
    wa_noise_transport t;
    wa_buf out;
    size_t len, clen;
    const uint8_t *p, *chain;
    int i;

    (void)state;
    kat_load(&k);
    kat_config(&k, &cfg, WA_NOISE_RESPONDER);
    wa_buf_init(&out, BUF_MAX);
    assert_int_equal(wa_noise_hs_init(&hs, &cfg), 0);
    assert_int_equal(wa_noise_hs_state(&hs), WA_NOISE_HS_READ);
    assert_int_equal(wa_noise_hs_write(&hs, NULL, 0, &out), WA_ESTATE);
    p = kget(&k.hs, "client_hello", &len);
    assert_int_equal(wa_noise_hs_read(&hs, p, len), 0);
    assert_int_equal(wa_noise_hs_read(&hs, p, len), WA_ESTATE); /* our turn to write */
    assert_int_equal(wa__noise_hs_set_ephemeral(&hs, kget(&k.hs, "server_eph_priv", NULL)), 0);
    chain = kget(&k.hs, "cert_chain", &clen);
    assert_int_equal(wa_noise_hs_write(&hs, chain, clen, &out), 0);
    p = kget(&k.hs, "server_hello", &len);
    assert_buf(&out, p, len);
    p = kget(&k.hs, "client_finish", &len);
    assert_int_equal(wa_noise_hs_read(&hs, p, len), 0);
    assert_int_equal(wa_noise_hs_state(&hs), WA_NOISE_HS_DONE);
    assert_memory_equal(wa_noise_hs_remote_static(&hs), kget(&k.hs, "client_static_pub", NULL), 32);
    p = kget(&k.hs, "client_payload", &len);
    assert_int_equal(wa_noise_hs_remote_payload(&hs).len, len);
    assert_memory_equal(wa_noise_hs_remote_payload(&hs).ptr, p, len);
    assert_int_equal(wa_noise_hs_split(&hs, &t), 0);
    /* the ClientPayload stays readable after the split */
    assert_int_equal(wa_noise_hs_remote_payload(&hs).len, len);
    for (i = 0; i < k.ntr; i++) {
        const uint8_t *pt, *ct;
        size_t ptl, ctl;
        uint8_t flags = 0xff;
        wa_slice node;
        pt = kget(&k.tr[i], "c2s_pt", &ptl);
        ct = kget(&k.tr[i], "c2s_ct", &ctl);
        wa_buf_reset(&out);
        assert_int_equal(wa_noise_open_node(&t, ct, ctl, &out, &flags, &node), 0);
        assert_int_equal(flags, 0);
        assert_int_equal(node.len, ptl - 1);
        assert_memory_equal(node.ptr, pt + 1, ptl - 1);
        pt = kget(&k.tr[i], "s2c_pt", &ptl);
        ct = kget(&k.tr[i], "s2c_ct", &ctl);
        wa_buf_reset(&out);
        assert_int_equal(pt[0], 0);
        assert_int_equal(wa_noise_seal_node(&t, pt + 1, ptl - 1, &out), 0);
        assert_buf(&out, ct, ctl);
    }
    wa_noise_transport_cleanup(&t);
    wa_noise_hs_cleanup(&hs);
    wa_buf_cleanup(&out);
    kat_free(&k);
}

static void test_kat_cert_chain(void **state)
{
    kat k;
    size_t len;
    const uint8_t *chain;
    const char *why = NULL;

    (void)state;
    kat_load(&k);
    chain = kget(&k.hs, "cert_chain", &len);
    assert_int_equal(wa_noise_cert_verify(chain, len, kget(&k.hs, "root_pub", NULL),
                                          kget(&k.hs, "server_static_pub", NULL), kat_now(&k),
                                          &why),
                     0);
    /* not the real WhatsApp root */
    assert_int_equal(wa_noise_cert_verify(chain, len, WA_NOISE_WA_ROOT_PUB,
                                          kget(&k.hs, "server_static_pub", NULL), kat_now(&k),
                                          &why),
                     WA_ECERT);
    assert_string_equal(why, "intermediate certificate not signed by the trusted root key");
    kat_free(&k);
}

/* ---- live handshakes ---- */

typedef struct peer {
    uint8_t priv[32], pub[32];
} peer;

static void keypair(peer *p)
{
    assert_int_equal(wa_x25519_keygen(p->priv, p->pub), 0);
}

typedef struct pki {
    peer root, inter, server, client;
    wa_buf chain;
} pki;

static void pki_make(pki *k, int64_t nb_off, int64_t na_off, const uint8_t *leaf_key)
{
    wa_noise_cert_params cp;
    uint64_t now = (uint64_t)time(NULL);

    keypair(&k->root);
    keypair(&k->inter);
    keypair(&k->server);
    keypair(&k->client);
    memset(&cp, 0, sizeof cp);
    cp.root_priv = k->root.priv;
    cp.intermediate_priv = k->inter.priv;
    cp.leaf_key = leaf_key ? leaf_key : k->server.pub;
    cp.intermediate_serial = 1234;
    cp.leaf_serial = 99;
    cp.not_before = (uint64_t)((int64_t)now + nb_off);
    cp.not_after = (uint64_t)((int64_t)now + na_off);
    wa_buf_init(&k->chain, 4096);
    assert_int_equal(wa_noise_cert_create(&cp, &k->chain), 0);
}

static const uint8_t intro_v3[4] = {'W', 'A', 6, 3};
static const uint8_t client_payload[] = "pretend ClientPayload bytes";

static void start(wa_noise_hs *c, wa_noise_hs *s, const pki *k, const uint8_t *root)
{
    wa_noise_config cfg;

    memset(&cfg, 0, sizeof cfg);
    cfg.role = WA_NOISE_INITIATOR;
    memcpy(cfg.prologue, intro_v3, 4);
    cfg.static_priv = k->client.priv;
    cfg.root_pub = root ? root : k->root.pub;
    assert_int_equal(wa_noise_hs_init(c, &cfg), 0);
    cfg.role = WA_NOISE_RESPONDER;
    cfg.static_priv = k->server.priv;
    cfg.root_pub = NULL;
    assert_int_equal(wa_noise_hs_init(s, &cfg), 0);
}

/* Runs client hello + server hello; returns the initiator's read result. */
static int run_to_server_hello(wa_noise_hs *c, wa_noise_hs *s, const pki *k, wa_buf *msg)
{
    wa_buf_reset(msg);
    assert_int_equal(wa_noise_hs_write(c, NULL, 0, msg), 0);
    assert_int_equal(wa_noise_hs_read(s, msg->data, msg->len), 0);
    wa_buf_reset(msg);
    assert_int_equal(wa_noise_hs_write(s, k->chain.data, k->chain.len, msg), 0);
    return wa_noise_hs_read(c, msg->data, msg->len);
}

static void full_handshake(wa_noise_hs *c, wa_noise_hs *s, const pki *k, wa_noise_transport *ct,
                           wa_noise_transport *st)
{
    wa_buf msg;

    wa_buf_init(&msg, BUF_MAX);
    start(c, s, k, NULL);
    assert_int_equal(run_to_server_hello(c, s, k, &msg), 0);
    wa_buf_reset(&msg);
    assert_int_equal(wa_noise_hs_write(c, client_payload, sizeof client_payload, &msg), 0);
    assert_int_equal(wa_noise_hs_read(s, msg.data, msg.len), 0);
    assert_int_equal(wa_noise_hs_state(c), WA_NOISE_HS_DONE);
    assert_int_equal(wa_noise_hs_state(s), WA_NOISE_HS_DONE);
    assert_memory_equal(wa_noise_hs_hash(c), wa_noise_hs_hash(s), 32);
    assert_int_equal(wa_noise_hs_split(c, ct), 0);
    assert_int_equal(wa_noise_hs_split(s, st), 0);
    wa_buf_cleanup(&msg);
}

static void test_roundtrip(void **state)
{
    pki k;
    wa_noise_hs c, s;
    wa_noise_transport ct, st;
    wa_buf a, b;
    int i;

    (void)state;
    pki_make(&k, -3600, 3600, NULL);
    full_handshake(&c, &s, &k, &ct, &st);
    assert_memory_equal(wa_noise_hs_remote_static(&s), k.client.pub, 32);
    assert_memory_equal(wa_noise_hs_remote_static(&c), k.server.pub, 32);
    assert_int_equal(wa_noise_hs_remote_payload(&s).len, sizeof client_payload);
    assert_memory_equal(wa_noise_hs_remote_payload(&s).ptr, client_payload, sizeof client_payload);
    assert_memory_equal(ct.wkey, st.rkey, 32);
    assert_memory_equal(ct.rkey, st.wkey, 32);
    assert_memory_not_equal(ct.wkey, ct.rkey, 32);
    wa_buf_init(&a, BUF_MAX);
    wa_buf_init(&b, BUF_MAX);
    for (i = 0; i < 5; i++) {
        uint8_t msg[40];
        uint8_t prev[64];
        memset(msg, 'a' + i, sizeof msg);
        /* client -> server */
        wa_buf_reset(&a);
        wa_buf_reset(&b);
        assert_int_equal(wa_noise_encrypt(&ct, msg, sizeof msg, &a), 0);
        assert_int_equal(a.len, sizeof msg + 16);
        assert_int_equal(wa_noise_decrypt(&st, a.data, a.len, &b), 0);
        assert_buf(&b, msg, sizeof msg);
        /* server -> client, twice the same plaintext: counters make the ciphertexts differ */
        wa_buf_reset(&a);
        wa_buf_reset(&b);
        assert_int_equal(wa_noise_seal_node(&st, msg, 8, &a), 0);
        memcpy(prev, a.data, a.len);
        assert_int_equal(wa_noise_seal_node(&st, msg, 8, &a), 0);
        assert_int_equal(a.len, 2 * 25);
        assert_memory_not_equal(prev, a.data + 25, 25);
        for (int j = 0; j < 2; j++) {
            uint8_t flags;
            wa_slice node;
            wa_buf_reset(&b);
            assert_int_equal(wa_noise_open_node(&ct, a.data + 25 * j, 25, &b, &flags, &node), 0);
            assert_int_equal(flags, 0);
            assert_int_equal(node.len, 8);
            assert_memory_equal(node.ptr, msg, 8);
        }
    }
    assert_int_equal(ct.wn, 5);
    assert_int_equal(st.rn, 5);
    assert_int_equal(st.wn, 10);
    assert_int_equal(ct.rn, 10);
    /* a replayed frame (old counter) fails, and the read side stays failed */
    wa_buf_reset(&b);
    assert_int_equal(wa_noise_decrypt(&ct, a.data, 25, &b), WA_ECRYPTO);
    assert_int_equal(b.len, 0);
    assert_int_equal(wa_noise_seal_node(&st, (const uint8_t *)"x", 1, &a), 0);
    assert_int_equal(wa_noise_decrypt(&ct, a.data + a.len - 18, 18, &b), WA_ECRYPTO);
    /* the write side is independent */
    wa_buf_reset(&a);
    assert_int_equal(wa_noise_encrypt(&ct, (const uint8_t *)"y", 1, &a), 0);
    wa_buf_reset(&b);
    assert_int_equal(wa_noise_decrypt(&st, a.data, a.len, &b), 0);
    wa_buf_cleanup(&a);
    wa_buf_cleanup(&b);
    wa_noise_transport_cleanup(&ct);
    wa_noise_transport_cleanup(&st);
    wa_noise_hs_cleanup(&c);
    wa_noise_hs_cleanup(&s);
    wa_buf_cleanup(&k.chain);
}

/* the initiator's verdict on a server hello built over chain k */
static void expect_cert_failure(pki *k, const uint8_t *root, const char *reason)
{
    wa_noise_hs c, s;
    wa_buf msg;

    wa_buf_init(&msg, BUF_MAX);
    start(&c, &s, k, root);
    assert_int_equal(run_to_server_hello(&c, &s, k, &msg), WA_ECERT);
    assert_string_equal(wa_noise_hs_reason(&c), reason);
    assert_int_equal(wa_noise_hs_state(&c), WA_NOISE_HS_FAILED);
    /* sticky */
    assert_int_equal(wa_noise_hs_read(&c, msg.data, msg.len), WA_ECERT);
    assert_int_equal(wa_noise_hs_write(&c, client_payload, 4, &msg), WA_ECERT);
    wa_noise_hs_cleanup(&c);
    wa_noise_hs_cleanup(&s);
    wa_buf_cleanup(&msg);
}

static void test_cert_other_root(void **state)
{
    pki k;
    peer other;

    (void)state;
    pki_make(&k, -60, 60, NULL);
    keypair(&other);
    expect_cert_failure(&k, other.pub,
                        "intermediate certificate not signed by the trusted root key");
    /* and by default the real WhatsApp root is trusted, not ours */
    expect_cert_failure(&k, WA_NOISE_WA_ROOT_PUB,
                        "intermediate certificate not signed by the trusted root key");
    wa_buf_cleanup(&k.chain);
}

static void test_cert_leaf_key_mismatch(void **state)
{
    pki k;
    peer other;

    (void)state;
    keypair(&other);
    pki_make(&k, -60, 60, other.pub);
    expect_cert_failure(&k, NULL, "leaf certificate key does not match the server static key");
    wa_buf_cleanup(&k.chain);
}

static void test_cert_expired(void **state)
{
    pki k;

    (void)state;
    pki_make(&k, -7200, -3600, NULL);
    expect_cert_failure(&k, NULL, "intermediate certificate expired");
    wa_buf_cleanup(&k.chain);
    pki_make(&k, 3600, 7200, NULL);
    expect_cert_failure(&k, NULL, "intermediate certificate not valid yet");
    wa_buf_cleanup(&k.chain);
}

/* Hand-built chains for the checks wa_noise_cert_create cannot produce. */
typedef struct chain_opts {
    uint32_t inter_serial, inter_issuer, leaf_issuer;
    uint64_t inter_nb, inter_na, leaf_nb, leaf_na;
    size_t inter_key_len;
    size_t inter_sig_len, leaf_sig_len;
    int omit_leaf;
} chain_opts;

static void pack_details(wa_buf *out, uint32_t serial, uint32_t issuer, const uint8_t *key,
                         size_t key_len, uint64_t nb, uint64_t na)
{
    Wa__CertChain__NoiseCertificate__Details d = WA__CERT_CHAIN__NOISE_CERTIFICATE__DETAILS__INIT;

    d.has_serial = 1;
    d.serial = serial;
    d.has_issuerserial = 1;
    d.issuerserial = issuer;
    d.has_key = 1;
    d.key.data = (uint8_t *)key;
    d.key.len = key_len;
    d.has_notbefore = 1;
    d.notbefore = nb;
    d.has_notafter = 1;
    d.notafter = na;
    assert_int_equal(wa_proto_pack(&d, out), 0);
}

static int verify_custom(const chain_opts *o, const char **why)
{
    peer root, inter, server;
    wa_buf id, ld, chain;
    uint8_t isig[64], lsig[64];
    Wa__CertChain cc = WA__CERT_CHAIN__INIT;
    Wa__CertChain__NoiseCertificate ic = WA__CERT_CHAIN__NOISE_CERTIFICATE__INIT;
    Wa__CertChain__NoiseCertificate lc = WA__CERT_CHAIN__NOISE_CERTIFICATE__INIT;
    int rc;

    keypair(&root);
    keypair(&inter);
    keypair(&server);
    wa_buf_init(&id, 1024);
    wa_buf_init(&ld, 1024);
    wa_buf_init(&chain, 4096);
    pack_details(&id, o->inter_serial, o->inter_issuer, inter.pub, o->inter_key_len, o->inter_nb,
                 o->inter_na);
    pack_details(&ld, 5, o->leaf_issuer, server.pub, 32, o->leaf_nb, o->leaf_na);
    assert_int_equal(wa_xeddsa_sign(isig, root.priv, id.data, id.len), 0);
    assert_int_equal(wa_xeddsa_sign(lsig, inter.priv, ld.data, ld.len), 0);
    ic.has_details = 1;
    ic.details.data = id.data;
    ic.details.len = id.len;
    ic.has_signature = 1;
    ic.signature.data = isig;
    ic.signature.len = o->inter_sig_len;
    lc.has_details = 1;
    lc.details.data = ld.data;
    lc.details.len = ld.len;
    lc.has_signature = 1;
    lc.signature.data = lsig;
    lc.signature.len = o->leaf_sig_len;
    cc.intermediate = &ic;
    cc.leaf = o->omit_leaf ? NULL : &lc;
    assert_int_equal(wa_proto_pack(&cc, &chain), 0);
    *why = NULL;
    rc = wa_noise_cert_verify(chain.data, chain.len, root.pub, server.pub, 1000, why);
    wa_buf_cleanup(&id);
    wa_buf_cleanup(&ld);
    wa_buf_cleanup(&chain);
    return rc;
}

static void test_cert_rules(void **state)
{
    const chain_opts good = {7, 0, 7, 0, 2000, 0, 2000, 32, 64, 64, 0};
    chain_opts o;
    const char *why;

    (void)state;
    assert_int_equal(verify_custom(&good, &why), 0);
    assert_null(why);
    o = good;
    o.inter_issuer = 1;
    assert_int_equal(verify_custom(&o, &why), WA_ECERT);
    assert_string_equal(why, "intermediate certificate issuer serial is not 0");
    o = good;
    o.leaf_issuer = 8;
    assert_int_equal(verify_custom(&o, &why), WA_ECERT);
    assert_string_equal(why,
                        "leaf certificate issuer serial does not match the intermediate serial");
    o = good;
    o.leaf_na = 999;
    assert_int_equal(verify_custom(&o, &why), WA_ECERT);
    assert_string_equal(why, "leaf certificate expired");
    o = good;
    o.leaf_nb = 1001;
    assert_int_equal(verify_custom(&o, &why), WA_ECERT);
    assert_string_equal(why, "leaf certificate not valid yet");
    o = good;
    o.inter_na = 1000; /* the boundary second is still valid */
    o.leaf_na = 1000;
    assert_int_equal(verify_custom(&o, &why), 0);
    o = good;
    o.inter_key_len = 31;
    assert_int_equal(verify_custom(&o, &why), WA_ECERT);
    assert_string_equal(why, "unexpected length of the intermediate certificate key");
    o = good;
    o.inter_sig_len = 63;
    assert_int_equal(verify_custom(&o, &why), WA_ECERT);
    assert_string_equal(why, "unexpected length of the intermediate certificate signature");
    o = good;
    o.leaf_sig_len = 0;
    assert_int_equal(verify_custom(&o, &why), WA_ECERT);
    assert_string_equal(why, "unexpected length of the leaf certificate signature");
    o = good;
    o.omit_leaf = 1;
    assert_int_equal(verify_custom(&o, &why), WA_ECERT);
    assert_string_equal(why, "missing parts of the certificate chain");
    why = NULL;
    assert_int_equal(wa_noise_cert_verify((const uint8_t *)"\x0a\xff", 2, WA_NOISE_WA_ROOT_PUB,
                                          WA_NOISE_WA_ROOT_PUB, 1, &why),
                     WA_ECERT);
    assert_string_equal(why, "malformed certificate chain");
}

static void test_tampered(void **state)
{
    pki k;
    wa_noise_hs c, s;
    wa_buf msg;
    size_t i;

    (void)state;
    pki_make(&k, -60, 60, NULL);
    wa_buf_init(&msg, BUF_MAX);
    /* flip one bit at every position of the server hello: the initiator must fail (WA_ECRYPTO
     * inside the ciphertexts or for a changed ephemeral; a protobuf or protocol error when the
     * framing bytes change), never accept it */
    for (i = 0;; i++) {
        int rc;
        start(&c, &s, &k, NULL);
        wa_buf_reset(&msg);
        assert_int_equal(wa_noise_hs_write(&c, NULL, 0, &msg), 0);
        assert_int_equal(wa_noise_hs_read(&s, msg.data, msg.len), 0);
        wa_buf_reset(&msg);
        assert_int_equal(wa_noise_hs_write(&s, k.chain.data, k.chain.len, &msg), 0);
        if (i == msg.len) {
            wa_noise_hs_cleanup(&c);
            wa_noise_hs_cleanup(&s);
            break;
        }
        msg.data[i] ^= 0x01;
        rc = wa_noise_hs_read(&c, msg.data, msg.len);
        assert_true(rc == WA_ECRYPTO || rc == WA_EPROTOBUF || rc == WA_EPROTO);
        if (i >= msg.len - 100)
            assert_int_equal(rc, WA_ECRYPTO);
        assert_int_equal(wa_noise_hs_state(&c), WA_NOISE_HS_FAILED);
        wa_noise_hs_cleanup(&c);
        wa_noise_hs_cleanup(&s);
    }
    wa_buf_reset(&msg);
    /* tampered client finish */
    start(&c, &s, &k, NULL);
    assert_int_equal(run_to_server_hello(&c, &s, &k, &msg), 0);
    wa_buf_reset(&msg);
    assert_int_equal(wa_noise_hs_write(&c, client_payload, sizeof client_payload, &msg), 0);
    msg.data[msg.len - 3] ^= 0x10;
    assert_int_equal(wa_noise_hs_read(&s, msg.data, msg.len), WA_ECRYPTO);
    assert_string_equal(wa_noise_hs_reason(&s), "cannot decrypt the client payload");
    assert_null(wa_noise_hs_remote_payload(&s).ptr);
    wa_noise_hs_cleanup(&c);
    wa_noise_hs_cleanup(&s);
    wa_buf_cleanup(&msg);
    wa_buf_cleanup(&k.chain);
}

static void test_tampered_transport(void **state)
{
    pki k;
    wa_noise_hs c, s;
    wa_noise_transport ct, st;
    wa_buf a, b;
    uint8_t flags;
    wa_slice node;

    (void)state;
    pki_make(&k, -60, 60, NULL);
    full_handshake(&c, &s, &k, &ct, &st);
    wa_buf_init(&a, BUF_MAX);
    wa_buf_init(&b, BUF_MAX);
    assert_int_equal(wa_noise_seal_node(&ct, (const uint8_t *)"node", 4, &a), 0);
    a.data[2] ^= 4;
    assert_int_equal(wa_noise_open_node(&st, a.data, a.len, &b, &flags, &node), WA_ECRYPTO);
    assert_int_equal(b.len, 0);
    a.data[2] ^= 4; /* the genuine frame is refused too: the read side is dead */
    assert_int_equal(wa_noise_open_node(&st, a.data, a.len, &b, &flags, &node), WA_ECRYPTO);
    /* too short */
    assert_int_equal(wa_noise_decrypt(&ct, a.data, 15, &b), WA_ECRYPTO);
    wa_noise_transport_cleanup(&ct);
    wa_noise_transport_cleanup(&st);
    wa_noise_hs_cleanup(&c);
    wa_noise_hs_cleanup(&s);
    wa_buf_cleanup(&a);
    wa_buf_cleanup(&b);
    wa_buf_cleanup(&k.chain);
}

static void test_transport_edges(void **state)
{
    wa_noise_transport a, b;
    wa_buf x, y;
    uint8_t flags;
    wa_slice node;

    (void)state;
    memset(&a, 0, sizeof a);
    memset(a.wkey, 0x11, 32);
    memset(a.rkey, 0x22, 32);
    memset(&b, 0, sizeof b);
    memcpy(b.wkey, a.rkey, 32);
    memcpy(b.rkey, a.wkey, 32);
    wa_buf_init(&x, 1024);
    wa_buf_init(&y, 1024);
    /* an empty plaintext is a valid transport message, but not a valid node frame */
    assert_int_equal(wa_noise_encrypt(&a, NULL, 0, &x), 0);
    assert_int_equal(x.len, 16);
    assert_int_equal(wa_noise_decrypt(&b, x.data, x.len, &y), 0);
    assert_int_equal(y.len, 0);
    wa_buf_reset(&x);
    assert_int_equal(wa_noise_encrypt(&a, NULL, 0, &x), 0);
    assert_int_equal(wa_noise_open_node(&b, x.data, x.len, &y, &flags, &node), WA_EPROTO);
    assert_int_equal(wa_noise_decrypt(&b, x.data, x.len, &y), WA_EPROTO);
    /* a compressed-flag frame: the flag and the raw bytes are handed over */
    memset(&b, 0, sizeof b);
    memcpy(b.rkey, a.wkey, 32);
    b.rn = a.wn;
    wa_buf_reset(&x);
    assert_int_equal(wa_noise_encrypt(&a, (const uint8_t *)"\x02zz", 3, &x), 0);
    assert_int_equal(wa_noise_open_node(&b, x.data, x.len, &y, &flags, &node), 0);
    assert_int_equal(flags, WA_NOISE_FLAG_COMPRESSED);
    assert_int_equal(node.len, 2);
    assert_memory_equal(node.ptr, "zz", 2);
    /* counter exhaustion: 2^32 - 1 is the last usable counter */
    a.wn = UINT32_MAX;
    wa_buf_reset(&x);
    assert_int_equal(wa_noise_encrypt(&a, (const uint8_t *)"q", 1, &x), 0);
    assert_int_equal(x.data[0] == 'q', 0);
    assert_int_equal(wa_noise_encrypt(&a, (const uint8_t *)"q", 1, &x), WA_ELIMIT);
    b.rn = UINT32_MAX;
    wa_buf_reset(&y);
    assert_int_equal(wa_noise_decrypt(&b, x.data, x.len, &y), 0);
    assert_int_equal(y.len, 1);
    assert_int_equal(wa_noise_decrypt(&b, x.data, x.len, &y), WA_ELIMIT);
    /* a full output buffer is not fatal for the read side */
    memset(&b, 0, sizeof b);
    memcpy(b.rkey, a.wkey, 32);
    b.rn = UINT32_MAX;
    wa_buf_cleanup(&y);
    wa_buf_init(&y, 0 + 1);
    wa_buf_append_byte(&y, 'z');
    assert_int_equal(wa_noise_decrypt(&b, x.data, x.len, &y), WA_ELIMIT);
    assert_int_equal(b.rerr, 0);
    wa_buf_cleanup(&x);
    wa_buf_cleanup(&y);
}

static void test_bad_messages(void **state)
{
    pki k;
    wa_noise_hs c, s;
    wa_buf msg;
    static uint8_t big[WA_NOISE_HS_MAX_MSG + 1];
    uint8_t ch31[] = {0x12, 0x21, 0x0a, 0x1f, 1,  2,  3,  4,  5,  6,  7,  8,
                      9,    10,   11,   12,   13, 14, 15, 16, 17, 18, 19, 20,
                      21,   22,   23,   24,   25, 26, 27, 28, 29, 30, 31};

    (void)state;
    pki_make(&k, -60, 60, NULL);
    wa_buf_init(&msg, BUF_MAX);
    /* responder expecting a client hello gets a server hello */
    start(&c, &s, &k, NULL);
    assert_int_equal(wa_noise_hs_write(&c, NULL, 0, &msg), 0);
    assert_int_equal(wa_noise_hs_read(&s, msg.data, msg.len), 0);
    wa_buf_reset(&msg);
    assert_int_equal(wa_noise_hs_write(&s, k.chain.data, k.chain.len, &msg), 0);
    wa_noise_hs_cleanup(&s);
    start(&c, &s, &k, NULL);
    assert_int_equal(wa_noise_hs_read(&s, msg.data, msg.len), WA_EPROTO);
    assert_string_equal(wa_noise_hs_reason(&s), "expected a client hello");
    wa_noise_hs_cleanup(&c);
    wa_noise_hs_cleanup(&s);
    /* 31-byte ephemeral */
    start(&c, &s, &k, NULL);
    assert_int_equal(wa_noise_hs_read(&s, ch31, sizeof ch31), WA_EPROTO);
    wa_noise_hs_cleanup(&c);
    wa_noise_hs_cleanup(&s);
    /* garbage, empty, oversize */
    start(&c, &s, &k, NULL);
    assert_int_equal(wa_noise_hs_read(&s, (const uint8_t *)"\x12\xff\x01", 3), WA_EPROTOBUF);
    assert_int_equal(wa_noise_hs_read(&s, ch31, sizeof ch31), WA_EPROTOBUF); /* sticky */
    wa_noise_hs_cleanup(&c);
    wa_noise_hs_cleanup(&s);
    start(&c, &s, &k, NULL);
    assert_int_equal(wa_noise_hs_read(&s, NULL, 0), WA_EPROTO); /* empty message: no hello */
    wa_noise_hs_cleanup(&c);
    wa_noise_hs_cleanup(&s);
    start(&c, &s, &k, NULL);
    assert_int_equal(wa_noise_hs_read(&s, big, sizeof big), WA_ELIMIT);
    wa_noise_hs_cleanup(&c);
    wa_noise_hs_cleanup(&s);
    /* initiator: a server hello whose static ciphertext has the wrong size */
    {
        Wa__HandshakeMessage m = WA__HANDSHAKE_MESSAGE__INIT;
        Wa__HandshakeMessage__ServerHello h = WA__HANDSHAKE_MESSAGE__SERVER_HELLO__INIT;
        uint8_t junk[64] = {0};
        start(&c, &s, &k, NULL);
        wa_buf_reset(&msg);
        assert_int_equal(wa_noise_hs_write(&c, NULL, 0, &msg), 0);
        h.has_ephemeral = 1;
        h.ephemeral.data = k.server.pub;
        h.ephemeral.len = 32;
        h.has_static_ = 1;
        h.static_.data = junk;
        h.static_.len = 47;
        h.has_payload = 1;
        h.payload.data = junk;
        h.payload.len = 64;
        m.serverhello = &h;
        wa_buf_reset(&msg);
        assert_int_equal(wa_proto_pack(&m, &msg), 0);
        assert_int_equal(wa_noise_hs_read(&c, msg.data, msg.len), WA_EPROTO);
        assert_string_equal(wa_noise_hs_reason(&c), "unexpected length of the server static key");
        wa_noise_hs_cleanup(&c);
        wa_noise_hs_cleanup(&s);
        /* all-zero (small-order) server ephemeral: the DH is refused */
        start(&c, &s, &k, NULL);
        wa_buf_reset(&msg);
        assert_int_equal(wa_noise_hs_write(&c, NULL, 0, &msg), 0);
        h.ephemeral.data = junk;
        h.static_.len = 48;
        wa_buf_reset(&msg);
        assert_int_equal(wa_proto_pack(&m, &msg), 0);
        assert_int_equal(wa_noise_hs_read(&c, msg.data, msg.len), WA_ECRYPTO);
        assert_string_equal(wa_noise_hs_reason(&c), "cannot mix in the server ephemeral key");
        wa_noise_hs_cleanup(&c);
        wa_noise_hs_cleanup(&s);
    }
    wa_buf_cleanup(&msg);
    wa_buf_cleanup(&k.chain);
}

static void test_alloc_failure(void **state)
{
    pki k;
    wa_noise_hs c, s;
    wa_noise_transport ct, st;
    wa_buf msg;

    (void)state;
    pki_make(&k, -60, 60, NULL);
    wa_buf_init(&msg, BUF_MAX);
    start(&c, &s, &k, NULL);
    assert_int_equal(wa_noise_hs_write(&c, NULL, 0, &msg), 0);
    assert_int_equal(wa_noise_hs_read(&s, msg.data, msg.len), 0);
    wa_buf_reset(&msg);
    /* the first failure happens before the transcript moves: retryable */
    wa__alloc_fail_after(0);
    assert_int_equal(wa_noise_hs_write(&s, k.chain.data, k.chain.len, &msg), WA_ENOMEM);
    wa__alloc_fail_after(-1);
    assert_int_equal(wa_noise_hs_state(&s), WA_NOISE_HS_WRITE);
    assert_int_equal(wa_noise_hs_write(&s, k.chain.data, k.chain.len, &msg), 0);
    assert_int_equal(wa_noise_hs_read(&c, msg.data, msg.len), 0);
    wa_buf_reset(&msg);
    assert_int_equal(wa_noise_hs_write(&c, client_payload, sizeof client_payload, &msg), 0);
    assert_int_equal(wa_noise_hs_read(&s, msg.data, msg.len), 0);
    assert_int_equal(wa_noise_hs_split(&c, &ct), 0);
    assert_int_equal(wa_noise_hs_split(&s, &st), 0);
    wa_noise_transport_cleanup(&ct);
    wa_noise_transport_cleanup(&st);
    wa_noise_hs_cleanup(&c);
    wa_noise_hs_cleanup(&s);
    wa_buf_cleanup(&msg);
    wa_buf_cleanup(&k.chain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kat_initiator),   cmocka_unit_test(test_kat_responder),
        cmocka_unit_test(test_kat_cert_chain),  cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_cert_other_root), cmocka_unit_test(test_cert_leaf_key_mismatch),
        cmocka_unit_test(test_cert_expired),    cmocka_unit_test(test_cert_rules),
        cmocka_unit_test(test_tampered),        cmocka_unit_test(test_tampered_transport),
        cmocka_unit_test(test_transport_edges), cmocka_unit_test(test_bad_messages),
        cmocka_unit_test(test_alloc_failure),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    wa_signal_ctx_shutdown();
    return rc;
}
