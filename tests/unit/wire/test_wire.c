/* test_wire.c - the whole stack in memory: a client wire and a server wire complete the
 * WebSocket upgrade and the Noise handshake, exchange stanzas both ways, with the byte stream
 * cut at every chunk size; a chain under another root or naming another key is refused.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bnode/node.h"
#include "core/buf.h"
#include "crypto/curve25519.h"
#include "noise/cert.h"
#include "wa/error.h"
#include "wire/wire.h"

typedef struct pair {
    wa_wire c, s;
    uint8_t root_priv[32], root_pub[32], inter_priv[32], inter_pub[32];
    uint8_t srv_priv[32], srv_pub[32], cli_priv[32], cli_pub[32];
    wa_buf chain;
    int c_open, s_open, s_request;
    char c_got[256], s_got[256];
} pair;

static void make_chain(pair *p, const uint8_t *leaf_key)
{
    wa_noise_cert_params cp;
    uint64_t now = (uint64_t)time(NULL);

    memset(&cp, 0, sizeof cp);
    cp.root_priv = p->root_priv;
    cp.intermediate_priv = p->inter_priv;
    cp.leaf_key = leaf_key;
    cp.intermediate_serial = 7;
    cp.leaf_serial = 8;
    cp.not_before = now - 60;
    cp.not_after = now + 3600;
    wa_buf_init(&p->chain, 4096);
    assert_int_equal(wa_noise_cert_create(&cp, &p->chain), 0);
}

static void setup_pair(pair *p, const uint8_t *trusted_root, int wrong_leaf)
{
    wa_wire_config cc, sc;
    static const uint8_t payload[] = {0x08, 0x01, 0x10, 0x00}; /* any bytes: carried opaque */
    uint8_t other_priv[32], other_pub[32];

    memset(p, 0, sizeof *p);
    assert_int_equal(wa_x25519_keygen(p->root_priv, p->root_pub), 0);
    assert_int_equal(wa_x25519_keygen(p->inter_priv, p->inter_pub), 0);
    assert_int_equal(wa_x25519_keygen(p->srv_priv, p->srv_pub), 0);
    assert_int_equal(wa_x25519_keygen(p->cli_priv, p->cli_pub), 0);
    assert_int_equal(wa_x25519_keygen(other_priv, other_pub), 0);
    make_chain(p, wrong_leaf ? other_pub : p->srv_pub);

    memset(&cc, 0, sizeof cc);
    cc.role = WA_WIRE_CLIENT;
    cc.static_priv = p->cli_priv;
    cc.host = "web.whatsapp.com";
    cc.path = "/ws/chat";
    cc.dict_version = 3;
    cc.root_pub = trusted_root ? trusted_root : p->root_pub;
    cc.payload = payload;
    cc.payload_len = sizeof payload;
    assert_int_equal(wa_wire_init(&p->c, &cc), 0);

    memset(&sc, 0, sizeof sc);
    sc.role = WA_WIRE_SERVER;
    sc.static_priv = p->srv_priv;
    sc.cert_chain = p->chain.data;
    sc.cert_chain_len = p->chain.len;
    assert_int_equal(wa_wire_init(&p->s, &sc), 0);
}

static void teardown_pair(pair *p)
{
    wa_wire_cleanup(&p->c);
    wa_wire_cleanup(&p->s);
    wa_buf_cleanup(&p->chain);
}

/* Drain events of one side; returns the last error other than EAGAIN (0 if none). */
static int drain(pair *p, wa_wire *w)
{
    wa_wire_event ev;
    int rc;

    while ((rc = wa_wire_next(w, &ev)) == 0) {
        switch (ev.type) {
        case WA_WIRE_EV_REQUEST:
            assert_true(w == &p->s);
            assert_int_equal(ev.path.len, 8);
            assert_memory_equal(ev.path.ptr, "/ws/chat", 8);
            p->s_request++;
            assert_int_equal(wa_wire_accept(w), 0);
            break;
        case WA_WIRE_EV_OPEN:
            if (w == &p->c)
                p->c_open++;
            else
                p->s_open++;
            break;
        case WA_WIRE_EV_NODE: {
            char *dst = w == &p->c ? p->c_got : p->s_got;
            const char *id = wa_node_attr(ev.node, "id");
            snprintf(dst, 256, "%s:%s", ev.node->tag, id ? id : "");
            break;
        }
        default:
            break;
        }
    }
    return rc == WA_EAGAIN ? 0 : rc;
}

/* Move bytes from one side to the other in chunks of `chunk` bytes. */
static int shuttle(pair *p, wa_wire *from, wa_wire *to, size_t chunk)
{
    int rc = 0;
    wa_slice out = wa_wire_output(from);
    uint8_t copy[65536];
    size_t len = out.len, off;

    if (!len)
        return 0;
    assert_true(len <= sizeof copy);
    memcpy(copy, out.ptr, len);
    wa_wire_consumed(from, len);
    for (off = 0; off < len && rc == 0; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        rc = wa_wire_feed(to, copy + off, n);
        if (rc == 0)
            rc = drain(p, to);
    }
    return rc;
}

static int run(pair *p, size_t chunk)
{
    int i, rc = 0;

    for (i = 0; i < 10 && rc == 0; i++) {
        rc = shuttle(p, &p->c, &p->s, chunk);
        if (rc == 0)
            rc = shuttle(p, &p->s, &p->c, chunk);
    }
    return rc;
}

static void send_iq(wa_wire *w, const char *id)
{
    wa_arena a;
    wa_node *n;

    wa_arena_init(&a, 65536);
    n = wa_node_new(&a, "iq");
    assert_non_null(n);
    assert_int_equal(wa_node_set_attr(&a, n, "id", id), 0);
    assert_int_equal(wa_node_set_attr(&a, n, "type", "get"), 0);
    assert_non_null(wa_node_new_child(&a, n, "ping"));
    assert_int_equal(wa_wire_send_node(w, n), 0);
    wa_arena_cleanup(&a);
}

static void test_handshake_and_nodes(void **state)
{
    size_t chunks[] = {1, 2, 3, 7, 64, 65536};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        pair p;
        wa_slice pl;

        setup_pair(&p, NULL, 0);
        assert_int_equal(wa_wire_send_node(&p.c, NULL), WA_ESTATE); /* not open yet */
        assert_int_equal(run(&p, chunks[i]), 0);
        assert_int_equal(p.s_request, 1);
        assert_int_equal(p.c_open, 1);
        assert_int_equal(p.s_open, 1);
        assert_true(wa_wire_is_open(&p.c));
        assert_true(wa_wire_is_open(&p.s));
        assert_int_equal(wa_wire_dict(&p.s), 3);
        assert_memory_equal(wa_wire_remote_static(&p.s), p.cli_pub, 32);
        pl = wa_wire_client_payload(&p.s);
        assert_int_equal(pl.len, 4);
        assert_memory_equal(pl.ptr, "\x08\x01\x10\x00", 4);

        send_iq(&p.c, "c1");
        assert_int_equal(run(&p, chunks[i]), 0);
        assert_string_equal(p.s_got, "iq:c1");
        send_iq(&p.s, "s1");
        send_iq(&p.s, "s2"); /* two stanzas in one read */
        assert_int_equal(run(&p, chunks[i]), 0);
        assert_string_equal(p.c_got, "iq:s2");
        teardown_pair(&p);
    }
}

static void test_wrong_root(void **state)
{
    pair p;
    uint8_t other_root_priv[32], other_root_pub[32];

    (void)state;
    assert_int_equal(wa_x25519_keygen(other_root_priv, other_root_pub), 0);
    setup_pair(&p, other_root_pub, 0);
    assert_int_equal(run(&p, 65536), WA_ECERT);
    assert_int_equal(p.c_open, 0);
    assert_true(strlen(wa_wire_reason(&p.c)) > 0);
    teardown_pair(&p);
}

static void test_default_root_refuses_sim(void **state)
{
    pair p;

    (void)state;
    /* a client that trusts only WhatsApp's real root refuses any locally made chain */
    setup_pair(&p, WA_NOISE_WA_ROOT_PUB, 0);
    assert_int_equal(run(&p, 65536), WA_ECERT);
    teardown_pair(&p);
}

static void test_leaf_not_static(void **state)
{
    pair p;

    (void)state;
    setup_pair(&p, NULL, 1);
    assert_int_equal(run(&p, 65536), WA_ECERT);
    assert_int_equal(p.c_open, 0);
    teardown_pair(&p);
}

static void test_garbage_after_open(void **state)
{
    pair p;
    uint8_t junk[64];

    (void)state;
    setup_pair(&p, NULL, 0);
    assert_int_equal(run(&p, 65536), 0);
    /* a masked client frame whose payload is a WA frame of junk: the server refuses it */
    memset(junk, 0xA5, sizeof junk);
    {
        wa_buf raw;
        uint8_t fr[3 + sizeof junk];
        fr[0] = 0;
        fr[1] = 0;
        fr[2] = sizeof junk;
        memcpy(fr + 3, junk, sizeof junk);
        wa_buf_init(&raw, 4096);
        assert_int_equal(wa_ws_send(&p.c.ws, WA_WS_OP_BINARY, fr, sizeof fr, &raw), 0);
        assert_int_equal(wa_wire_feed(&p.s, raw.data, raw.len), 0);
        assert_int_equal(drain(&p, &p.s), WA_ECRYPTO);
        wa_buf_cleanup(&raw);
    }
    /* sticky */
    send_iq(&p.c, "x");
    assert_int_equal(shuttle(&p, &p.c, &p.s, 65536), WA_ECRYPTO);
    teardown_pair(&p);
}

static void test_big_frame_in_handshake(void **state)
{
    pair p;
    wa_buf raw;
    /* intro, then a frame header announcing 1 MiB: more than any handshake message */
    static const uint8_t msg[] = {0x57, 0x41, 0x06, 0x03, 0x10, 0x00, 0x00, 0x01, 0x02};

    (void)state;
    setup_pair(&p, NULL, 0);
    assert_int_equal(shuttle(&p, &p.c, &p.s, 65536), 0); /* upgrade request */
    assert_int_equal(shuttle(&p, &p.s, &p.c, 65536), 0); /* 101; client queues its hello */
    wa_wire_consumed(&p.c, wa_wire_output(&p.c).len);    /* drop the real hello */
    wa_buf_init(&raw, 4096);
    assert_int_equal(wa_ws_send(&p.c.ws, WA_WS_OP_BINARY, msg, sizeof msg, &raw), 0);
    assert_int_equal(wa_wire_feed(&p.s, raw.data, raw.len), 0);
    assert_int_equal(drain(&p, &p.s), WA_ELIMIT);
    wa_buf_cleanup(&raw);
    teardown_pair(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_nodes),
        cmocka_unit_test(test_wrong_root),
        cmocka_unit_test(test_default_root_refuses_sim),
        cmocka_unit_test(test_leaf_not_static),
        cmocka_unit_test(test_garbage_after_open),
        cmocka_unit_test(test_big_frame_in_handshake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
