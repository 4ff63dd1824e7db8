/* test_signal.c - the Signal layer with in-memory parties: addresses and their libsignal names,
 * padding, key helpers, 1:1 sessions (bundle -> pkmsg -> msg both ways, out of order,
 * duplicates, tampering, missing prekeys, identity changes, buffer limits, store failures,
 * batch encryption), sender keys (SKDM, both ways, out of order, duplicates, tampering,
 * rotation) and the memstore's bounds.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/util.h"
#include "crypto/curve25519.h"
#include "crypto/provider.h"
#include "signal/memstore.h"
#include "signal/signal.h"
#include "wa/error.h"

#define NPREKEYS 8
#define GROUP    "120363000000000001@g.us"
#define BIG      (1u << 20)

typedef struct party {
    wa_signal_addr addr;
    wa_signal_keypair id;
    uint32_t reg;
    wa_signal_signed_prekey spk;
    wa_signal_prekey pk[NPREKEYS];
    wa_signal_memstore *mem;
    wa_signal *s;
    /* identity-changed reports */
    int changes;
    wa_signal_addr changed_addr;
    uint8_t changed_old[32], changed_new[32];
} party;

static void on_identity_changed(const wa_signal_addr *addr, const uint8_t old_key[32],
                                const uint8_t new_key[32], void *ud)
{
    party *p = ud;

    p->changes++;
    p->changed_addr = *addr;
    memcpy(p->changed_old, old_key, 32);
    memcpy(p->changed_new, new_key, 32);
}

static party *party_new(const char *user, int server, uint16_t device, uint32_t first_prekey)
{
    party *p = calloc(1, sizeof *p);
    wa_signal_store st;

    assert_non_null(p);
    assert_int_equal(wa_signal_addr_make(&p->addr, user, server, device), 0);
    assert_int_equal(wa_signal_gen_keypair(&p->id), 0);
    assert_int_equal(wa_signal_gen_registration_id(&p->reg), 0);
    assert_int_equal(wa_signal_gen_signed_prekey(&p->id, 1, &p->spk), 0);
    assert_int_equal(wa_signal_gen_prekeys(first_prekey, NPREKEYS, p->pk), 0);
    assert_int_equal(wa_signal_memstore_new(&p->mem, &p->id, p->reg, 0), 0);
    wa_signal_memstore_bind(p->mem, &st);
    assert_int_equal(wa_signal_new(&p->s, &st), 0);
    wa_signal_set_identity_changed_cb(p->s, on_identity_changed, p);
    assert_int_equal(wa_signal_save_signed_prekey(p->s, &p->spk), 0);
    assert_int_equal(wa_signal_save_prekeys(p->s, p->pk, NPREKEYS), 0);
    assert_int_equal(wa_signal_memstore_count(p->mem, WA_SIGNAL_MEM_PREKEYS), NPREKEYS);
    return p;
}

static void party_free(party *p)
{
    if (!p)
        return;
    wa_signal_free(p->s);
    wa_signal_memstore_free(p->mem);
    free(p);
}

static void bundle_of(const party *p, int prekey_index, wa_signal_bundle *b)
{
    wa_signal_make_bundle(b, p->reg, p->id.pub, &p->spk,
                          prekey_index >= 0 ? &p->pk[prekey_index] : NULL);
}

/* Encrypt text from a to b; returns the ciphertext (caller frees) and its type. */
static uint8_t *enc(party *a, party *b, const char *text, int *type, size_t *len)
{
    wa_buf out;
    uint8_t *ct;

    wa_buf_init(&out, BIG);
    assert_int_equal(
        wa_signal_encrypt(a->s, &b->addr, (const uint8_t *)text, strlen(text), type, &out), 0);
    assert_string_equal(wa_signal_last_error(a->s), "");
    ct = wa_buf_steal(&out, len);
    assert_non_null(ct);
    return ct;
}

/* Decrypt at b a message from a; returns the WA code and checks the text on success. */
static int dec(party *b, party *a, int type, const uint8_t *ct, size_t len, const char *text)
{
    wa_buf out;
    int rc;

    wa_buf_init(&out, BIG);
    rc = wa_signal_decrypt(b->s, &a->addr, type, ct, len, &out);
    if (rc == 0) {
        assert_int_equal(out.len, strlen(text));
        assert_memory_equal(out.data, text, out.len);
    } else {
        assert_int_equal(out.len, 0);
        assert_true(strlen(wa_signal_last_error(b->s)) > 0);
    }
    wa_buf_cleanup(&out);
    return rc;
}

/* ---- addresses ---- */

static void test_addr(void **state)
{
    wa_signal_addr a, b;
    char name[WA_SIGNAL_NAME_MAX];
    char longuser[WA_SIGNAL_USER_MAX + 2];
    int t;

    (void)state;
    assert_int_equal(wa_signal_addr_make(&a, "15551234567", WA_SIGNAL_PN, 2), 0);
    assert_int_equal(wa_signal_addr_name(&a, name, sizeof name), 11);
    assert_string_equal(name, "15551234567");
    assert_int_equal(wa_signal_addr_from_name(&b, name, strlen(name), 2), 0);
    assert_true(wa_signal_addr_equal(&a, &b));

    /* Baileys 7: LID users are "user_1", hosted "user_128", hosted LID "user_129" */
    assert_int_equal(wa_signal_addr_make(&a, "123456789012345", WA_SIGNAL_LID, 0), 0);
    assert_int_equal(wa_signal_addr_name(&a, name, sizeof name), 17);
    assert_string_equal(name, "123456789012345_1");
    assert_int_equal(wa_signal_addr_from_name(&b, name, strlen(name), 0), 0);
    assert_true(wa_signal_addr_equal(&a, &b));
    assert_int_equal(b.server, WA_SIGNAL_LID);
    assert_int_equal(wa_signal_addr_make(&a, "42", WA_SIGNAL_HOSTED, 99), 0);
    assert_int_equal(wa_signal_addr_name(&a, name, sizeof name), 6);
    assert_string_equal(name, "42_128");
    assert_int_equal(wa_signal_addr_make(&a, "42", WA_SIGNAL_HOSTED_LID, 99), 0);
    assert_int_equal(wa_signal_addr_name(&a, name, sizeof name), 6);
    assert_string_equal(name, "42_129");
    assert_int_equal(wa_signal_addr_from_name(&b, name, 6, 99), 0);
    assert_true(wa_signal_addr_equal(&a, &b));
    /* too small a buffer */
    assert_int_equal(wa_signal_addr_name(&a, name, 6), WA_ELIMIT);

    /* the same number in both spaces is two addresses */
    assert_int_equal(wa_signal_addr_make(&a, "123", WA_SIGNAL_PN, 0), 0);
    assert_int_equal(wa_signal_addr_make(&b, "123", WA_SIGNAL_LID, 0), 0);
    assert_false(wa_signal_addr_equal(&a, &b));

    /* bad users and names */
    assert_int_equal(wa_signal_addr_make(&a, "", WA_SIGNAL_PN, 0), WA_EINVAL);
    assert_int_equal(wa_signal_addr_make(&a, "12_1", WA_SIGNAL_PN, 0), WA_EINVAL);
    assert_int_equal(wa_signal_addr_make(&a, "12.1", WA_SIGNAL_PN, 0), WA_EINVAL);
    assert_int_equal(wa_signal_addr_make(&a, "12:1", WA_SIGNAL_PN, 0), WA_EINVAL);
    assert_int_equal(wa_signal_addr_make(&a, "1@s", WA_SIGNAL_PN, 0), WA_EINVAL);
    assert_int_equal(wa_signal_addr_make(&a, "1 2", WA_SIGNAL_PN, 0), WA_EINVAL);
    assert_int_equal(wa_signal_addr_make(&a, "12", 2, 0), WA_EINVAL);
    memset(longuser, '7', sizeof longuser - 1);
    longuser[sizeof longuser - 1] = 0;
    assert_int_equal(wa_signal_addr_make(&a, longuser, WA_SIGNAL_PN, 0), WA_ELIMIT);
    longuser[WA_SIGNAL_USER_MAX] = 0;
    assert_int_equal(wa_signal_addr_make(&a, longuser, WA_SIGNAL_LID, 0), 0);
    assert_int_equal(wa_signal_addr_name(&a, name, sizeof name), WA_SIGNAL_USER_MAX + 2);
    assert_int_equal(wa_signal_addr_from_name(&b, "12_2", 4, 0), WA_EINVAL);
    assert_int_equal(wa_signal_addr_from_name(&b, "12_01", 5, 0), WA_EINVAL);
    assert_int_equal(wa_signal_addr_from_name(&b, "12_", 3, 0), WA_EINVAL);
    assert_int_equal(wa_signal_addr_from_name(&b, "_1", 2, 0), WA_EINVAL);
    assert_int_equal(wa_signal_addr_from_name(&b, "12_1_1", 6, 0), WA_EINVAL);
    assert_int_equal(wa_signal_addr_from_name(&b, "12", 2, -1), WA_EINVAL);
    assert_int_equal(wa_signal_addr_from_name(&b, "12", 2, 65536), WA_EINVAL);

    assert_string_equal(wa_signal_type_name(WA_SIGNAL_MSG), "msg");
    assert_string_equal(wa_signal_type_name(WA_SIGNAL_PKMSG), "pkmsg");
    assert_null(wa_signal_type_name(4));
    assert_int_equal(wa_signal_type_parse("pkmsg", &t), 0);
    assert_int_equal(t, WA_SIGNAL_PKMSG);
    assert_int_equal(wa_signal_type_parse("msg", &t), 0);
    assert_int_equal(t, WA_SIGNAL_MSG);
    assert_int_equal(wa_signal_type_parse("skmsg", &t), WA_EINVAL);
}

/* ---- padding ---- */

static void test_padding(void **state)
{
    static const uint8_t good[] = {'a', 'b', 'c', 3, 3, 3};
    static const uint8_t one[] = {1};
    static const uint8_t zero[] = {'a', 0};
    static const uint8_t toolong[] = {'a', 3};
    static const uint8_t mismatch[] = {'a', 'b', 2, 3, 3};
    uint8_t seen[WA_SIGNAL_PAD_MAX + 1] = {0};
    size_t n, i;
    wa_buf b;

    (void)state;
    assert_int_equal(wa_signal_unpad(good, sizeof good, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(wa_signal_unpad(one, 1, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(wa_signal_unpad(good, 0, &n), WA_EPROTO);
    assert_int_equal(wa_signal_unpad(zero, sizeof zero, &n), WA_EPROTO);
    assert_int_equal(wa_signal_unpad(toolong, sizeof toolong, &n), WA_EPROTO);
    assert_int_equal(wa_signal_unpad(mismatch, sizeof mismatch, &n), WA_EPROTO);

    /* pad then unpad, every pad length 1..16 shows up (2000 draws) and nothing else */
    for (i = 0; i < 2000; i++) {
        size_t pl;

        wa_buf_init(&b, 64);
        assert_int_equal(wa_signal_pad((const uint8_t *)"hello", 5, &b), 0);
        pl = b.len - 5;
        assert_true(pl >= 1 && pl <= WA_SIGNAL_PAD_MAX);
        seen[pl] = 1;
        assert_memory_equal(b.data, "hello", 5);
        assert_int_equal(b.data[b.len - 1], pl);
        assert_int_equal(wa_signal_unpad(b.data, b.len, &n), 0);
        assert_int_equal(n, 5);
        wa_buf_cleanup(&b);
    }
    for (i = 1; i <= WA_SIGNAL_PAD_MAX; i++)
        assert_true(seen[i]);
    /* empty plaintext, and a capped buffer refusing the result */
    wa_buf_init(&b, 16);
    assert_int_equal(wa_signal_pad(NULL, 0, &b), 0);
    assert_int_equal(wa_signal_unpad(b.data, b.len, &n), 0);
    assert_int_equal(n, 0);
    wa_buf_cleanup(&b);
    wa_buf_init(&b, 17);
    assert_int_equal(wa_signal_pad((const uint8_t *)"x", 1, &b), 0);
    wa_buf_cleanup(&b);
    wa_buf_init(&b, 4);
    for (i = 0; i < 50; i++) /* 4 bytes never hold 4 + pad */
        assert_int_equal(wa_signal_pad((const uint8_t *)"abcd", 4, &b), WA_ELIMIT);
    assert_int_equal(b.len, 0);
    wa_buf_cleanup(&b);
}

/* ---- keys ---- */

static void test_keys(void **state)
{
    wa_signal_keypair id, k2;
    wa_signal_signed_prekey spk;
    wa_signal_prekey pk[4];
    uint8_t msg[33], pub[32];
    uint32_t reg;
    int i;

    (void)state;
    assert_int_equal(wa_signal_gen_keypair(&id), 0);
    assert_int_equal(id.priv[0] & 7, 0);
    assert_int_equal(id.priv[31] & 0xc0, 0x40);
    assert_int_equal(wa_x25519_public(pub, id.priv), 0);
    assert_memory_equal(pub, id.pub, 32);
    assert_int_equal(wa_signal_gen_keypair(&k2), 0);
    assert_memory_not_equal(id.pub, k2.pub, 32);

    for (i = 0; i < 1000; i++) {
        assert_int_equal(wa_signal_gen_registration_id(&reg), 0);
        assert_true(reg >= 1 && reg <= WA_SIGNAL_REG_ID_MAX);
    }

    /* signature over 0x05 || pub, verifiable with the identity key */
    assert_int_equal(wa_signal_gen_signed_prekey(&id, 7, &spk), 0);
    assert_int_equal(spk.id, 7);
    msg[0] = 5;
    memcpy(msg + 1, spk.kp.pub, 32);
    assert_int_equal(wa_xeddsa_verify(id.pub, msg, 33, spk.sig), 0);
    assert_int_equal(wa_xeddsa_verify(id.pub, msg + 1, 32, spk.sig), WA_ECRYPTO);
    assert_int_equal(wa_xeddsa_verify(k2.pub, msg, 33, spk.sig), WA_ECRYPTO);
    assert_int_equal(wa_signal_gen_signed_prekey(&id, 0, &spk), WA_EINVAL);

    /* ids from first_id, never 0 nor 0xFFFFFF, wrapping to 1 */
    assert_int_equal(wa_signal_gen_prekeys(WA_SIGNAL_PREKEY_ID_MAX - 1, 4, pk), 0);
    assert_int_equal(pk[0].id, WA_SIGNAL_PREKEY_ID_MAX - 1);
    assert_int_equal(pk[1].id, WA_SIGNAL_PREKEY_ID_MAX);
    assert_int_equal(pk[2].id, 1);
    assert_int_equal(pk[3].id, 2);
    assert_memory_not_equal(pk[0].kp.pub, pk[1].kp.pub, 32);
    assert_int_equal(wa_signal_gen_prekeys(0, 4, pk), WA_EINVAL);
    assert_int_equal(wa_signal_gen_prekeys(0xFFFFFF, 4, pk), WA_EINVAL);
    assert_int_equal(wa_signal_prekey_id_next(0), 1);
    assert_int_equal(wa_signal_prekey_id_next(5), 6);
    assert_int_equal(wa_signal_prekey_id_next(WA_SIGNAL_PREKEY_ID_MAX), 1);
}

/* ---- 1:1 ---- */

static void test_session_roundtrip(void **state)
{
    party *alice = party_new("15550000001", WA_SIGNAL_PN, 0, 1);
    party *bob = party_new("15550000002", WA_SIGNAL_PN, 3, 100);
    wa_signal_bundle b;
    uint8_t *ct, pub[32];
    size_t len;
    int type, i;
    char text[64];

    (void)state;
    assert_int_equal(wa_signal_has_session(alice->s, &bob->addr), 0);
    bundle_of(bob, 2, &b);
    assert_int_equal(wa_signal_process_bundle(alice->s, &bob->addr, &b), 0);
    assert_int_equal(wa_signal_has_session(alice->s, &bob->addr), 1);
    assert_int_equal(alice->changes, 0);

    /* pkmsg until bob answers */
    ct = enc(alice, bob, "hello bob", &type, &len);
    assert_int_equal(type, WA_SIGNAL_PKMSG);
    assert_int_equal(ct[0], 0x33);
    assert_int_equal(wa_signal_load_prekey_public(bob->s, 102, pub), 0);
    assert_memory_equal(pub, bob->pk[2].kp.pub, 32);
    assert_int_equal(dec(bob, alice, type, ct, len, "hello bob"), 0);
    free(ct);
    /* the one-time prekey is consumed; the others stay */
    assert_int_equal(wa_signal_memstore_count(bob->mem, WA_SIGNAL_MEM_PREKEYS), NPREKEYS - 1);
    assert_int_equal(wa_signal_load_prekey_public(bob->s, 102, pub), WA_ENOTFOUND);
    assert_int_equal(wa_signal_has_session(bob->s, &alice->addr), 1);
    assert_int_equal(bob->changes, 0);

    /* bob answers with msg; then alice switches to msg too */
    for (i = 0; i < 5; i++) {
        snprintf(text, sizeof text, "bob to alice %d", i);
        ct = enc(bob, alice, text, &type, &len);
        assert_int_equal(type, WA_SIGNAL_MSG);
        assert_int_equal(dec(alice, bob, type, ct, len, text), 0);
        free(ct);
        snprintf(text, sizeof text, "alice to bob %d", i);
        ct = enc(alice, bob, text, &type, &len);
        assert_int_equal(type, WA_SIGNAL_MSG);
        assert_int_equal(dec(bob, alice, type, ct, len, text), 0);
        free(ct);
    }
    /* an empty plaintext works too */
    ct = enc(alice, bob, "", &type, &len);
    assert_int_equal(dec(bob, alice, type, ct, len, ""), 0);
    free(ct);
    party_free(alice);
    party_free(bob);
}

/* Session started without a one-time prekey, from the other side, on LID addresses. */
static void test_session_no_prekey_lid(void **state)
{
    party *alice = party_new("111111111111111", WA_SIGNAL_LID, 0, 1);
    party *bob = party_new("222222222222222", WA_SIGNAL_LID, 1, 1);
    wa_signal_addr pn;
    wa_signal_bundle b;
    uint8_t *ct;
    size_t len;
    int type;

    (void)state;
    bundle_of(alice, -1, &b);
    assert_int_equal(wa_signal_process_bundle(bob->s, &alice->addr, &b), 0);
    ct = enc(bob, alice, "via lid", &type, &len);
    assert_int_equal(type, WA_SIGNAL_PKMSG);
    assert_int_equal(dec(alice, bob, type, ct, len, "via lid"), 0);
    free(ct);
    assert_int_equal(wa_signal_memstore_count(alice->mem, WA_SIGNAL_MEM_PREKEYS), NPREKEYS);
    ct = enc(alice, bob, "reply", &type, &len);
    assert_int_equal(type, WA_SIGNAL_MSG);
    assert_int_equal(dec(bob, alice, type, ct, len, "reply"), 0);
    free(ct);
    /* the same number in the PN space has no session */
    assert_int_equal(wa_signal_addr_make(&pn, "222222222222222", WA_SIGNAL_PN, 1), 0);
    assert_int_equal(wa_signal_has_session(alice->s, &pn), 0);
    party_free(alice);
    party_free(bob);
}

static void test_session_out_of_order_and_duplicates(void **state)
{
    party *alice = party_new("15550000001", WA_SIGNAL_PN, 0, 1);
    party *bob = party_new("15550000002", WA_SIGNAL_PN, 0, 1);
    static const int order[] = {3, 0, 4, 2, 1};
    wa_signal_bundle b;
    uint8_t *ct[5];
    size_t len[5];
    int type[5], i, t;
    char text[32];
    uint8_t *r;
    size_t rl;

    (void)state;
    bundle_of(bob, 0, &b);
    assert_int_equal(wa_signal_process_bundle(alice->s, &bob->addr, &b), 0);
    /* five pkmsgs (same base key), delivered out of order */
    for (i = 0; i < 5; i++) {
        snprintf(text, sizeof text, "pk %d", i);
        ct[i] = enc(alice, bob, text, &type[i], &len[i]);
        assert_int_equal(type[i], WA_SIGNAL_PKMSG);
    }
    for (i = 0; i < 5; i++) {
        snprintf(text, sizeof text, "pk %d", order[i]);
        assert_int_equal(dec(bob, alice, type[order[i]], ct[order[i]], len[order[i]], text), 0);
    }
    /* a replayed pkmsg is a duplicate */
    assert_int_equal(dec(bob, alice, type[2], ct[2], len[2], ""), WA_EEXIST);
    assert_string_equal(wa_signal_last_error(bob->s), "duplicate message");
    for (i = 0; i < 5; i++)
        free(ct[i]);

    /* bob answers, alice sends msgs out of order */
    r = enc(bob, alice, "ack", &t, &rl);
    assert_int_equal(dec(alice, bob, t, r, rl, "ack"), 0);
    free(r);
    for (i = 0; i < 5; i++) {
        snprintf(text, sizeof text, "m %d", i);
        ct[i] = enc(alice, bob, text, &type[i], &len[i]);
        assert_int_equal(type[i], WA_SIGNAL_MSG);
    }
    for (i = 0; i < 5; i++) {
        snprintf(text, sizeof text, "m %d", order[i]);
        assert_int_equal(dec(bob, alice, type[order[i]], ct[order[i]], len[order[i]], text), 0);
    }
    for (i = 0; i < 5; i++) {
        assert_int_equal(dec(bob, alice, type[i], ct[i], len[i], ""), WA_EEXIST);
        assert_string_equal(wa_signal_last_error(bob->s), "duplicate message");
    }
    /* a msg from an earlier chain arriving after a ratchet step */
    r = enc(alice, bob, "late", &t, &rl);
    free(ct[0]);
    ct[0] = r;
    len[0] = rl;
    r = enc(bob, alice, "step", &t, &rl);
    assert_int_equal(dec(alice, bob, t, r, rl, "step"), 0);
    free(r);
    r = enc(alice, bob, "new chain", &t, &rl);
    assert_int_equal(dec(bob, alice, t, r, rl, "new chain"), 0);
    free(r);
    assert_int_equal(dec(bob, alice, WA_SIGNAL_MSG, ct[0], len[0], "late"), 0);
    for (i = 0; i < 5; i++)
        free(ct[i]);
    party_free(alice);
    party_free(bob);
}

static void test_session_errors(void **state)
{
    party *alice = party_new("15550000001", WA_SIGNAL_PN, 0, 1);
    party *bob = party_new("15550000002", WA_SIGNAL_PN, 0, 1);
    party *carol = party_new("15550000003", WA_SIGNAL_PN, 0, 1);
    wa_signal_bundle b;
    uint8_t *ct, *r;
    size_t len, rl, i;
    int type, t;
    wa_buf small;

    (void)state;
    /* encrypt and decrypt without a session */
    wa_buf_init(&small, BIG);
    assert_int_equal(wa_signal_encrypt(alice->s, &bob->addr, (const uint8_t *)"x", 1, &t, &small),
                     WA_ENOTFOUND);
    assert_string_equal(wa_signal_last_error(alice->s), "no session");
    wa_buf_cleanup(&small);

    /* a bundle whose signature does not match: no session */
    bundle_of(bob, 0, &b);
    b.spk_sig[10] ^= 1;
    assert_int_equal(wa_signal_process_bundle(alice->s, &bob->addr, &b), WA_ECRYPTO);
    assert_int_equal(wa_signal_has_session(alice->s, &bob->addr), 0);
    bundle_of(bob, 0, &b);
    b.spk_pub[3] ^= 1;
    assert_int_equal(wa_signal_process_bundle(alice->s, &bob->addr, &b), WA_ECRYPTO);
    bundle_of(bob, 0, &b);
    b.prekey_id = 0;
    assert_int_equal(wa_signal_process_bundle(alice->s, &bob->addr, &b), WA_EPROTO);

    /* a bundle naming a prekey bob does not have: bob cannot decrypt */
    bundle_of(bob, 0, &b);
    b.prekey_id = 4242;
    assert_int_equal(wa_signal_process_bundle(alice->s, &bob->addr, &b), 0);
    ct = enc(alice, bob, "lost", &type, &len);
    assert_int_equal(dec(bob, alice, type, ct, len, ""), WA_ENOTFOUND);
    assert_int_equal(wa_signal_has_session(bob->s, &alice->addr), 0);
    free(ct);

    /* a good session */
    bundle_of(bob, 1, &b);
    assert_int_equal(wa_signal_process_bundle(alice->s, &bob->addr, &b), 0);
    ct = enc(alice, bob, "first", &type, &len);
    assert_int_equal(dec(bob, alice, type, ct, len, "first"), 0);
    free(ct);
    r = enc(bob, alice, "ok", &t, &rl);
    assert_int_equal(dec(alice, bob, t, r, rl, "ok"), 0);
    free(r);

    /* msg from someone without a session */
    ct = enc(alice, bob, "to bob", &type, &len);
    assert_int_equal(type, WA_SIGNAL_MSG);
    assert_int_equal(dec(carol, alice, type, ct, len, ""), WA_ENOTFOUND);
    assert_string_equal(wa_signal_last_error(carol->s), "no session");

    /* tampering anywhere in the body or the MAC fails, and does not hurt the session */
    for (i = 1; i < len; i++) {
        int rc;

        ct[i] ^= 0x40;
        rc = dec(bob, alice, type, ct, len, "");
        assert_true(rc == WA_ECRYPTO || rc == WA_EPROTO || rc == WA_EUNSUPPORTED ||
                    rc == WA_EPROTOBUF);
        ct[i] ^= 0x40;
    }
    ct[0] = 0x23; /* version 2 */
    assert_int_equal(dec(bob, alice, type, ct, len, ""), WA_EUNSUPPORTED);
    ct[0] = 0x43; /* version 4 */
    assert_int_equal(dec(bob, alice, type, ct, len, ""), WA_EUNSUPPORTED);
    ct[0] = 0x33;
    for (i = 0; i < len; i++) /* every truncation */
        assert_true(dec(bob, alice, type, ct, i, "") < 0);
    /* type confusion: a msg given as a pkmsg */
    assert_true(dec(bob, alice, WA_SIGNAL_PKMSG, ct, len, "") < 0);
    assert_int_equal(dec(bob, alice, type, ct, len, "to bob"), 0);
    free(ct);

    /* output buffer too small: nothing consumed, the message decrypts afterwards */
    ct = enc(alice, bob, "0123456789abcdef0123456789", &type, &len);
    wa_buf_init(&small, 8);
    assert_int_equal(wa_signal_decrypt(bob->s, &alice->addr, type, ct, len, &small), WA_ELIMIT);
    assert_int_equal(small.len, 0);
    assert_int_equal(wa_signal_encrypt(alice->s, &bob->addr, (const uint8_t *)"abc", 3, &t, &small),
                     WA_ELIMIT);
    wa_buf_cleanup(&small);
    assert_int_equal(dec(bob, alice, type, ct, len, "0123456789abcdef0123456789"), 0);
    free(ct);

    /* store failures surface as the store's code */
    ct = enc(alice, bob, "store", &type, &len);
    wa_signal_memstore_fail_after(bob->mem, 0, WA_ESTORE);
    assert_int_equal(dec(bob, alice, type, ct, len, ""), WA_ESTORE);
    wa_signal_memstore_fail_after(bob->mem, 1, WA_EIO);
    assert_int_equal(dec(bob, alice, type, ct, len, ""), WA_EIO);
    wa_signal_memstore_fail_after(bob->mem, -1, 0);
    assert_int_equal(dec(bob, alice, type, ct, len, "store"), 0);
    free(ct);

    /* bad arguments */
    wa_buf_init(&small, 64);
    assert_int_equal(wa_signal_decrypt(bob->s, &alice->addr, 4, (const uint8_t *)"x", 1, &small),
                     WA_EINVAL);
    assert_int_equal(wa_signal_decrypt(bob->s, &alice->addr, WA_SIGNAL_MSG, NULL, 0, &small),
                     WA_EINVAL);
    wa_buf_cleanup(&small);

    /* delete: back to "no session" */
    assert_int_equal(wa_signal_delete_session(bob->s, &alice->addr), 0);
    assert_int_equal(wa_signal_has_session(bob->s, &alice->addr), 0);
    assert_int_equal(wa_signal_delete_session(bob->s, &alice->addr), 0);
    party_free(alice);
    party_free(bob);
    party_free(carol);
}

/* Find needle in haystack. */
static uint8_t *find(uint8_t *h, size_t hl, const uint8_t *n, size_t nl)
{
    size_t i;

    for (i = 0; i + nl <= hl; i++)
        if (memcmp(h + i, n, nl) == 0)
            return h + i;
    return NULL;
}

static void test_identity_change(void **state)
{
    party *alice = party_new("15550000001", WA_SIGNAL_PN, 0, 1);
    party *bob = party_new("15550000002", WA_SIGNAL_PN, 0, 1);
    party *bob2, *alice2, *mallory;
    wa_signal_bundle b;
    uint8_t *ct, *r, key33[33], *at;
    size_t len, rl;
    int type, t;

    (void)state;
    bundle_of(bob, 0, &b);
    assert_int_equal(wa_signal_process_bundle(alice->s, &bob->addr, &b), 0);
    ct = enc(alice, bob, "hi", &type, &len);
    assert_int_equal(dec(bob, alice, type, ct, len, "hi"), 0);
    free(ct);
    assert_int_equal(alice->changes + bob->changes, 0);

    /* bob reinstalls (new identity, same address): alice accepts his new bundle and reports */
    bob2 = party_new("15550000002", WA_SIGNAL_PN, 0, 50);
    bundle_of(bob2, 0, &b);
    assert_int_equal(wa_signal_process_bundle(alice->s, &bob2->addr, &b), 0);
    assert_int_equal(alice->changes, 1);
    assert_true(wa_signal_addr_equal(&alice->changed_addr, &bob->addr));
    assert_memory_equal(alice->changed_old, bob->id.pub, 32);
    assert_memory_equal(alice->changed_new, bob2->id.pub, 32);
    ct = enc(alice, bob2, "new bob", &type, &len);
    assert_int_equal(type, WA_SIGNAL_PKMSG);
    assert_int_equal(dec(bob2, alice, type, ct, len, "new bob"), 0);
    free(ct);
    /* the same bundle again is no change */
    assert_int_equal(wa_signal_process_bundle(alice->s, &bob2->addr, &b), 0);
    assert_int_equal(alice->changes, 1);

    /* alice reinstalls and writes to bob2 first: bob2 accepts the pkmsg and reports */
    alice2 = party_new("15550000001", WA_SIGNAL_PN, 0, 70);
    bundle_of(bob2, 1, &b);
    assert_int_equal(wa_signal_process_bundle(alice2->s, &bob2->addr, &b), 0);
    ct = enc(alice2, bob2, "new alice", &type, &len);
    assert_int_equal(bob2->changes, 0);
    assert_int_equal(dec(bob2, alice2, type, ct, len, "new alice"), 0);
    free(ct);
    assert_int_equal(bob2->changes, 1);
    assert_memory_equal(bob2->changed_old, alice->id.pub, 32);
    assert_memory_equal(bob2->changed_new, alice2->id.pub, 32);
    r = enc(bob2, alice2, "welcome back", &t, &rl);
    assert_int_equal(dec(alice2, bob2, t, r, rl, "welcome back"), 0);
    free(r);

    /* a forged pkmsg claiming alice2's address with another identity and a broken MAC changes
     * nothing: no report, and alice2's key stays */
    mallory = party_new("15550000001", WA_SIGNAL_PN, 0, 90);
    bundle_of(bob2, 2, &b);
    assert_int_equal(wa_signal_process_bundle(mallory->s, &bob2->addr, &b), 0);
    ct = enc(mallory, bob2, "evil", &type, &len);
    key33[0] = 5;
    memcpy(key33 + 1, mallory->id.pub, 32);
    at = find(ct, len, key33, 33);
    assert_non_null(at);
    at[20] ^= 1; /* another identity key: the MAC no longer matches */
    assert_int_equal(dec(bob2, mallory, type, ct, len, ""), WA_ECRYPTO);
    assert_int_equal(bob2->changes, 1);
    free(ct);
    r = enc(alice2, bob2, "still me", &t, &rl);
    assert_int_equal(t, WA_SIGNAL_MSG);
    assert_int_equal(dec(bob2, alice2, t, r, rl, "still me"), 0);
    free(r);
    /* with the policy "reject", a genuine new identity is refused */
    wa_signal_set_identity_policy(bob2->s, WA_SIGNAL_IDENTITY_REJECT);
    ct = enc(mallory, bob2, "evil2", &type, &len);
    assert_int_equal(dec(bob2, mallory, type, ct, len, ""), WA_ECRYPTO);
    assert_string_equal(wa_signal_last_error(bob2->s), "untrusted identity");
    assert_int_equal(bob2->changes, 1);
    wa_signal_set_identity_policy(bob2->s, WA_SIGNAL_IDENTITY_ACCEPT);
    assert_int_equal(dec(bob2, mallory, type, ct, len, "evil2"), 0);
    assert_int_equal(bob2->changes, 2);
    free(ct);

    party_free(alice);
    party_free(alice2);
    party_free(bob);
    party_free(bob2);
    party_free(mallory);
}

static void test_encrypt_many(void **state)
{
    party *alice = party_new("15550000001", WA_SIGNAL_PN, 0, 1);
    party *bob0 = party_new("15550000002", WA_SIGNAL_PN, 0, 1);
    party *bob1 = party_new("15550000002", WA_SIGNAL_PN, 1, 1);
    party *carol = party_new("15550000003", WA_SIGNAL_PN, 0, 1);
    wa_signal_addr addrs[4];
    wa_signal_encrypted res[4];
    wa_signal_bundle b;
    uint8_t has[4];
    size_t i;

    (void)state;
    bundle_of(bob0, 0, &b);
    assert_int_equal(wa_signal_process_bundle(alice->s, &bob0->addr, &b), 0);
    bundle_of(bob1, 0, &b);
    assert_int_equal(wa_signal_process_bundle(alice->s, &bob1->addr, &b), 0);
    addrs[0] = bob0->addr;
    addrs[1] = carol->addr;
    addrs[2] = bob1->addr;
    addrs[3] = bob0->addr; /* twice: gets the next message key */
    assert_int_equal(wa_signal_has_sessions(alice->s, addrs, 4, has), 0);
    assert_int_equal(has[0], 1);
    assert_int_equal(has[1], 0);
    assert_int_equal(has[2], 1);
    assert_int_equal(has[3], 1);
    for (i = 0; i < 4; i++)
        wa_buf_init(&res[i].ct, BIG);
    assert_int_equal(wa_signal_encrypt_many(alice->s, addrs, 4, (const uint8_t *)"fan", 3, res), 0);
    assert_int_equal(res[0].err, 0);
    assert_int_equal(res[0].type, WA_SIGNAL_PKMSG);
    assert_int_equal(res[1].err, WA_ENOTFOUND);
    assert_int_equal(res[1].ct.len, 0);
    assert_int_equal(res[2].err, 0);
    assert_int_equal(res[3].err, 0);
    assert_int_equal(dec(bob0, alice, res[0].type, res[0].ct.data, res[0].ct.len, "fan"), 0);
    assert_int_equal(dec(bob1, alice, res[2].type, res[2].ct.data, res[2].ct.len, "fan"), 0);
    assert_int_equal(dec(bob0, alice, res[3].type, res[3].ct.data, res[3].ct.len, "fan"), 0);
    for (i = 0; i < 4; i++)
        wa_buf_cleanup(&res[i].ct);
    assert_int_equal(wa_signal_encrypt_many(alice->s, addrs, WA_SIGNAL_BATCH_MAX + 1,
                                            (const uint8_t *)"x", 1, res),
                     WA_ELIMIT);
    party_free(alice);
    party_free(bob0);
    party_free(bob1);
    party_free(carol);
}

/* Every allocation of libwa failing in turn while bob decrypts a pkmsg: clean failures, and
 * success once allocations work again. */
static void test_session_alloc_failures(void **state)
{
    long n;
    int failures = 0, done = 0;

    (void)state;
    for (n = 0; n < 1000 && !done; n++) {
        party *alice = party_new("15550000001", WA_SIGNAL_PN, 0, 1);
        party *bob = party_new("15550000002", WA_SIGNAL_PN, 0, 1);
        wa_signal_bundle b;
        uint8_t *ct;
        size_t len;
        int type, rc;
        wa_buf out;

        bundle_of(bob, 0, &b);
        assert_int_equal(wa_signal_process_bundle(alice->s, &bob->addr, &b), 0);
        ct = enc(alice, bob, "alloc", &type, &len);
        wa_buf_init(&out, BIG);
        wa__alloc_fail_after(n);
        rc = wa_signal_decrypt(bob->s, &alice->addr, type, ct, len, &out);
        wa__alloc_fail_after(-1);
        assert_true(rc <= 0); /* libsignal turns some ENOMEMs into other codes */
        if (rc == 0) {
            assert_memory_equal(out.data, "alloc", 5);
            done = 1;
        } else {
            failures++;
        }
        if (rc) {
            /* nothing half-done: the message decrypts now */
            rc = dec(bob, alice, type, ct, len, "alloc");
            assert_int_equal(rc, 0);
        }
        wa_buf_cleanup(&out);
        free(ct);
        party_free(alice);
        party_free(bob);
    }
    assert_true(done);
    assert_true(failures > 10);
}

/* ---- groups ---- */

static uint8_t *genc(party *p, const char *text, size_t *len)
{
    wa_buf out;
    uint8_t *ct;

    wa_buf_init(&out, BIG);
    assert_int_equal(
        wa_signal_group_encrypt(p->s, GROUP, &p->addr, (const uint8_t *)text, strlen(text), &out),
        0);
    ct = wa_buf_steal(&out, len);
    assert_non_null(ct);
    return ct;
}

static int gdec(party *to, party *from, const uint8_t *ct, size_t len, const char *text)
{
    wa_buf out;
    int rc;

    wa_buf_init(&out, BIG);
    rc = wa_signal_group_decrypt(to->s, GROUP, &from->addr, ct, len, &out);
    if (rc == 0) {
        assert_int_equal(out.len, strlen(text));
        assert_memory_equal(out.data, text, out.len);
    } else {
        assert_int_equal(out.len, 0);
        assert_true(strlen(wa_signal_last_error(to->s)) > 0);
    }
    wa_buf_cleanup(&out);
    return rc;
}

static void skdm_to(party *from, party *to)
{
    wa_buf d;

    wa_buf_init(&d, 1024);
    assert_int_equal(wa_signal_group_create_skdm(from->s, GROUP, &from->addr, &d), 0);
    assert_int_equal(d.data[0], 0x33);
    assert_int_equal(wa_signal_group_process_skdm(to->s, GROUP, &from->addr, d.data, d.len), 0);
    wa_buf_cleanup(&d);
}

static void test_group(void **state)
{
    party *alice = party_new("15550000001", WA_SIGNAL_PN, 0, 1);
    party *bob = party_new("333333333333333", WA_SIGNAL_LID, 2, 1);
    party *carol = party_new("15550000003", WA_SIGNAL_PN, 0, 1);
    static const int order[] = {2, 0, 4, 1, 3};
    uint8_t *ct[5], *c;
    size_t len[5], l, i;
    char text[32];
    wa_buf out;

    (void)state;
    /* nothing yet */
    wa_buf_init(&out, BIG);
    assert_int_equal(
        wa_signal_group_encrypt(alice->s, GROUP, &alice->addr, (const uint8_t *)"x", 1, &out),
        WA_ENOTFOUND);
    assert_string_equal(wa_signal_last_error(alice->s), "no sender key");
    wa_buf_cleanup(&out);
    assert_int_equal(wa_signal_group_has_sender_key(alice->s, GROUP, &alice->addr), 0);

    skdm_to(alice, bob);
    skdm_to(alice, carol);
    assert_int_equal(wa_signal_group_has_sender_key(alice->s, GROUP, &alice->addr), 1);
    assert_int_equal(wa_signal_group_has_sender_key(bob->s, GROUP, &alice->addr), 1);
    for (i = 0; i < 5; i++) {
        snprintf(text, sizeof text, "g %zu", i);
        ct[i] = genc(alice, text, &len[i]);
        assert_int_equal(ct[i][0], 0x33);
    }
    for (i = 0; i < 5; i++) {
        snprintf(text, sizeof text, "g %d", order[i]);
        assert_int_equal(gdec(bob, alice, ct[order[i]], len[order[i]], text), 0);
        snprintf(text, sizeof text, "g %zu", i);
        assert_int_equal(gdec(carol, alice, ct[i], len[i], text), 0);
    }
    assert_int_equal(gdec(bob, alice, ct[3], len[3], ""), WA_EEXIST);
    assert_string_equal(wa_signal_last_error(bob->s), "duplicate message");
    /* a member without alice's key; and the wrong claimed sender */
    c = genc(alice, "late joiner", &l);
    assert_int_equal(gdec(alice, bob, c, l, ""), WA_ENOTFOUND);
    assert_int_equal(gdec(carol, bob, c, l, ""), WA_ENOTFOUND);
    /* tampering: every byte */
    for (i = 0; i < l; i++) {
        int rc;

        c[i] ^= 0x08;
        rc = gdec(bob, alice, c, l, "");
        assert_true(rc == WA_ECRYPTO || rc == WA_EPROTO || rc == WA_EUNSUPPORTED);
        c[i] ^= 0x08;
    }
    for (i = 0; i < l; i++)
        assert_true(gdec(bob, alice, c, i, "") < 0);
    assert_int_equal(gdec(bob, alice, c, l, "late joiner"), 0);
    free(c);

    /* the other way: bob (a LID member) writes to the group */
    skdm_to(bob, alice);
    skdm_to(bob, carol);
    c = genc(bob, "from bob", &l);
    assert_int_equal(gdec(alice, bob, c, l, "from bob"), 0);
    assert_int_equal(gdec(carol, bob, c, l, "from bob"), 0);
    free(c);

    /* rotation: alice forgets her key; the new one is unknown to holders of the old SKDM */
    assert_int_equal(wa_signal_group_delete_sender_key(alice->s, GROUP, &alice->addr), 0);
    assert_int_equal(wa_signal_group_has_sender_key(alice->s, GROUP, &alice->addr), 0);
    skdm_to(alice, carol);
    c = genc(alice, "rotated", &l);
    assert_int_equal(gdec(bob, alice, c, l, ""), WA_ECRYPTO);
    assert_int_equal(gdec(carol, alice, c, l, "rotated"), 0);
    free(c);

    /* malformed distribution messages, bad group ids */
    assert_int_equal(
        wa_signal_group_process_skdm(bob->s, GROUP, &alice->addr, (const uint8_t *)"\x33junk", 5),
        WA_EPROTO);
    assert_int_equal(wa_signal_group_process_skdm(bob->s, GROUP, &alice->addr, ct[0], 0),
                     WA_EPROTO);
    wa_buf_init(&out, BIG);
    assert_int_equal(wa_signal_group_create_skdm(bob->s, "", &bob->addr, &out), WA_EINVAL);
    assert_int_equal(wa_signal_group_decrypt(bob->s, NULL, &alice->addr, ct[0], len[0], &out),
                     WA_EINVAL);
    wa_buf_cleanup(&out);
    for (i = 0; i < 5; i++)
        free(ct[i]);
    party_free(alice);
    party_free(bob);
    party_free(carol);
}

/* ---- memstore ---- */

static void test_memstore_bounds(void **state)
{
    wa_signal_keypair id;
    wa_signal_memstore *m;
    wa_signal_store st;
    wa_signal_addr a[3];
    uint8_t key[32] = {1};
    uint8_t rec[8] = {9, 9, 9};
    wa_buf b;
    int i;

    (void)state;
    assert_int_equal(wa_signal_gen_keypair(&id), 0);
    assert_int_equal(wa_signal_memstore_new(&m, &id, 7, 2), 0);
    wa_signal_memstore_bind(m, &st);
    assert_int_equal(wa_signal_addr_make(&a[0], "1", WA_SIGNAL_PN, 0), 0);
    assert_int_equal(wa_signal_addr_make(&a[1], "1", WA_SIGNAL_LID, 0), 0);
    assert_int_equal(wa_signal_addr_make(&a[2], "1", WA_SIGNAL_PN, 1), 0);
    assert_int_equal(st.store_session_cb(&a[0], rec, 3, st.user_data), 0);
    assert_int_equal(st.store_session_cb(&a[1], rec, 4, st.user_data), 0);
    assert_int_equal(st.store_session_cb(&a[2], rec, 5, st.user_data), WA_ELIMIT);
    assert_int_equal(st.store_session_cb(&a[0], rec, 6, st.user_data), 0); /* replace */
    assert_int_equal(st.store_session_cb(&a[0], rec, 0, st.user_data), WA_ELIMIT);
    assert_int_equal(wa_signal_memstore_count(m, WA_SIGNAL_MEM_SESSIONS), 2);
    wa_buf_init(&b, 64);
    assert_int_equal(st.load_session_cb(&a[0], &b, st.user_data), 1);
    assert_int_equal(b.len, 6);
    wa_buf_reset(&b);
    assert_int_equal(st.load_session_cb(&a[2], &b, st.user_data), 0);
    assert_int_equal(st.delete_session_cb(&a[0], st.user_data), 1);
    assert_int_equal(st.delete_session_cb(&a[0], st.user_data), 0);
    assert_int_equal(st.store_session_cb(&a[2], rec, 5, st.user_data), 0);
    wa_buf_cleanup(&b);
    /* a load into a too small buffer fails */
    wa_buf_init(&b, 2);
    assert_int_equal(st.load_session_cb(&a[2], &b, st.user_data), WA_ELIMIT);
    wa_buf_cleanup(&b);
    assert_int_equal(st.save_identity_cb(&a[0], key, st.user_data), 0);
    key[0] = 0;
    assert_int_equal(st.load_identity_cb(&a[0], key, st.user_data), 1);
    assert_int_equal(key[0], 1);
    assert_int_equal(st.load_identity_cb(&a[1], key, st.user_data), 0);
    wa_signal_memstore_free(m);

    /* growth past the initial table size with many entries */
    assert_int_equal(wa_signal_memstore_new(&m, &id, 7, 0), 0);
    wa_signal_memstore_bind(m, &st);
    for (i = 1; i <= 1000; i++)
        assert_int_equal(st.store_prekey_cb((uint32_t)i, rec, 3, st.user_data), 0);
    assert_int_equal(wa_signal_memstore_count(m, WA_SIGNAL_MEM_PREKEYS), 1000);
    wa_buf_init(&b, 64);
    for (i = 1; i <= 1000; i++) {
        wa_buf_reset(&b);
        assert_int_equal(st.load_prekey_cb((uint32_t)i, &b, st.user_data), 1);
    }
    assert_int_equal(st.load_prekey_cb(1001, &b, st.user_data), 0);
    wa_buf_cleanup(&b);
    wa_signal_memstore_free(m);
}

static void test_new_requires_callbacks(void **state)
{
    wa_signal_keypair id;
    wa_signal_memstore *m;
    wa_signal_store st;
    wa_signal *s;

    (void)state;
    assert_int_equal(wa_signal_gen_keypair(&id), 0);
    assert_int_equal(wa_signal_memstore_new(&m, &id, 7, 0), 0);
    wa_signal_memstore_bind(m, &st);
    st.delete_sender_key_cb = NULL;
    assert_int_equal(wa_signal_new(&s, &st), WA_EINVAL);
    wa_signal_memstore_bind(m, &st);
    st.load_sessions_cb = NULL; /* optional */
    assert_int_equal(wa_signal_new(&s, &st), 0);
    wa_signal_free(s);
    wa_signal_memstore_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr),
        cmocka_unit_test(test_padding),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_session_roundtrip),
        cmocka_unit_test(test_session_no_prekey_lid),
        cmocka_unit_test(test_session_out_of_order_and_duplicates),
        cmocka_unit_test(test_session_errors),
        cmocka_unit_test(test_identity_change),
        cmocka_unit_test(test_encrypt_many),
        cmocka_unit_test(test_session_alloc_failures),
        cmocka_unit_test(test_group),
        cmocka_unit_test(test_memstore_bounds),
        cmocka_unit_test(test_new_requires_callbacks),
    };
    int rc;

    wa_log_set_level(WA_LOG_OFF); /* libsignal logs every bad MAC the tests provoke */
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    wa_signal_ctx_shutdown();
    return rc;
}
