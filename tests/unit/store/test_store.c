/* test_store.c - the SQLite store: accounts, credentials, prekeys, PN<->LID, wipe, delete,
 * snapshot/restore, reopening, file modes, isolation between accounts.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/util.h"
#include "store/store.h"
#include "wa/error.h"

static char dir[256];

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/wa_store_test.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void fill_creds(wa_store_creds *c, uint8_t seed)
{
    memset(c, 0, sizeof *c);
    memset(c->noise_priv, seed, 32);
    memset(c->noise_pub, seed + 1, 32);
    memset(c->identity_priv, seed + 2, 32);
    memset(c->identity_pub, seed + 3, 32);
    c->registration_id = 12345;
    c->spk_id = 1;
    memset(c->spk_priv, seed + 4, 32);
    memset(c->spk_pub, seed + 5, 32);
    memset(c->spk_sig, seed + 6, 64);
    c->spk_created = 1700000000;
    memset(c->adv_secret, seed + 7, 32);
    c->next_prekey_id = 1;
}

static void assert_creds_equal(const wa_store_creds *a, const wa_store_creds *b)
{
    assert_memory_equal(a->noise_priv, b->noise_priv, 32);
    assert_memory_equal(a->noise_pub, b->noise_pub, 32);
    assert_memory_equal(a->identity_priv, b->identity_priv, 32);
    assert_memory_equal(a->identity_pub, b->identity_pub, 32);
    assert_int_equal(a->registration_id, b->registration_id);
    assert_int_equal(a->spk_id, b->spk_id);
    assert_memory_equal(a->spk_priv, b->spk_priv, 32);
    assert_memory_equal(a->spk_pub, b->spk_pub, 32);
    assert_memory_equal(a->spk_sig, b->spk_sig, 64);
    assert_int_equal(a->spk_created, b->spk_created);
    assert_memory_equal(a->adv_secret, b->adv_secret, 32);
    assert_int_equal(a->next_prekey_id, b->next_prekey_id);
    assert_string_equal(a->me_jid, b->me_jid);
    assert_string_equal(a->me_lid, b->me_lid);
    assert_string_equal(a->platform, b->platform);
    assert_string_equal(a->push_name, b->push_name);
    assert_int_equal(a->adv_identity_len, b->adv_identity_len);
    assert_memory_equal(a->adv_identity, b->adv_identity, a->adv_identity_len);
    assert_int_equal(a->routing_info_len, b->routing_info_len);
    if (a->routing_info_len)
        assert_memory_equal(a->routing_info, b->routing_info, a->routing_info_len);
}

static wa_store *open_store(const char *name)
{
    char p[300];
    wa_store *s = NULL;

    path_of(p, sizeof p, name);
    assert_int_equal(wa_store_open(p, NULL, &s), 0);
    return s;
}

static void test_open_bad(void **state)
{
    char p[300];
    wa_store *s = NULL;
    FILE *f;

    (void)state;
    assert_int_equal(wa_store_open(NULL, NULL, &s), WA_EINVAL);
    assert_int_equal(wa_store_open("", NULL, &s), WA_EINVAL);
    path_of(p, sizeof p, "garbage.db");
    f = fopen(p, "wb");
    assert_non_null(f);
    fputs("this is not an SQLite database, just some text long enough to matter..........", f);
    fclose(f);
    assert_int_equal(wa_store_open(p, NULL, &s), WA_ESTORE);
    assert_null(s);
    path_of(p, sizeof p, "nodir/x.db");
    assert_int_equal(wa_store_open(p, NULL, &s), WA_ESTORE);
}

static void test_accounts_and_creds(void **state)
{
    wa_store *s;
    wa_store_creds c, got;
    int64_t a = 0, b = 0, again = 0;
    struct stat st;
    char p[300];

    (void)state;
    s = open_store("a.db");
    path_of(p, sizeof p, "a.db");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(wa_store_account(s, "alice", 0, &a), WA_ENOTFOUND);
    assert_int_equal(wa_store_account(s, "", 1, &a), WA_EINVAL);
    assert_int_equal(wa_store_account(s, "alice", 1, &a), 0);
    assert_int_equal(wa_store_account(s, "bob", 1, &b), 0);
    assert_true(a != b);
    assert_int_equal(wa_store_account(s, "alice", 1, &again), 0);
    assert_int_equal(again, a);

    assert_int_equal(wa_store_creds_load(s, a, &got), WA_ENOTFOUND);
    assert_false(wa_store_account_paired(s, a));
    fill_creds(&c, 1);
    assert_int_equal(wa_store_creds_save(s, a, &c, 0), 0);
    assert_false(wa_store_account_paired(s, a));
    assert_int_equal(wa_store_creds_load(s, a, &got), 0);
    assert_creds_equal(&c, &got);

    /* pairing fills in the identity (durable) */
    snprintf(c.me_jid, sizeof c.me_jid, "15551234567:3@s.whatsapp.net");
    snprintf(c.me_lid, sizeof c.me_lid, "99887766:3@lid");
    snprintf(c.platform, sizeof c.platform, "android");
    snprintf(c.push_name, sizeof c.push_name, "Alice");
    c.adv_identity_len = 200;
    memset(c.adv_identity, 0xAB, 200);
    assert_int_equal(wa_store_creds_save(s, a, &c, 1), 0);
    assert_true(wa_store_account_paired(s, a));
    assert_int_equal(wa_store_set_routing(s, a, (const uint8_t *)"\x08\x02", 2), 0);
    c.routing_info_len = 2;
    memcpy(c.routing_info, "\x08\x02", 2);
    assert_int_equal(wa_store_set_push_name(s, a, "Alice B"), 0);
    snprintf(c.push_name, sizeof c.push_name, "Alice B");
    assert_int_equal(wa_store_set_routing(s, b, (const uint8_t *)"x", 1), WA_ENOTFOUND);

    /* bob's creds are separate */
    fill_creds(&got, 50);
    assert_int_equal(wa_store_creds_save(s, b, &got, 0), 0);
    wa_store_close(s);

    /* reopen: everything is still there */
    s = open_store("a.db");
    assert_int_equal(wa_store_account(s, "alice", 0, &again), 0);
    assert_int_equal(again, a);
    assert_int_equal(wa_store_creds_load(s, a, &got), 0);
    assert_creds_equal(&c, &got);
    assert_int_equal(wa_store_creds_load(s, b, &got), 0);
    assert_int_equal(got.noise_priv[0], 50);

    /* invalid creds are refused */
    c.next_prekey_id = 0;
    assert_int_equal(wa_store_creds_save(s, a, &c, 0), WA_EINVAL);
    wa_store_creds_wipe(&got);
    assert_int_equal(got.registration_id, 0);
    wa_store_close(s);
}

static void test_signed_prekey_rotation(void **state)
{
    wa_store *s = open_store("spk.db");
    wa_store_creds c, got;
    uint8_t priv[32], pub[32], sig[64];
    int64_t a;

    (void)state;
    assert_int_equal(wa_store_account(s, "x", 1, &a), 0);
    fill_creds(&c, 1);
    assert_int_equal(wa_store_creds_save(s, a, &c, 0), 0);
    /* rotate: new id 2; the old one stays readable */
    c.spk_id = 2;
    memset(c.spk_priv, 0x77, 32);
    memset(c.spk_pub, 0x78, 32);
    assert_int_equal(wa_store_creds_save(s, a, &c, 0), 0);
    assert_int_equal(wa_store_creds_load(s, a, &got), 0);
    assert_int_equal(got.spk_id, 2);
    assert_int_equal(got.spk_priv[0], 0x77);
    assert_int_equal(wa_store_signed_prekey_get(s, a, 1, priv, pub, sig), 0);
    assert_int_equal(priv[0], 5);
    assert_int_equal(pub[0], 6);
    assert_int_equal(sig[0], 7);
    assert_int_equal(wa_store_signed_prekey_get(s, a, 3, NULL, NULL, NULL), WA_ENOTFOUND);
    wa_store_close(s);
}

static void test_prekeys(void **state)
{
    wa_store *s = open_store("pk.db");
    wa_store_creds c, got;
    wa_store_prekey keys[10], out[10], one;
    uint32_t ids[3] = {1, 2, 3};
    size_t n, i;
    int64_t a;

    (void)state;
    assert_int_equal(wa_store_account(s, "x", 1, &a), 0);
    for (i = 0; i < 10; i++) {
        keys[i].id = (uint32_t)(i + 1);
        memset(keys[i].priv, (int)i, 32);
        memset(keys[i].pub, (int)(i + 100), 32);
    }
    /* no creds yet: the next id cannot be recorded */
    assert_int_equal(wa_store_prekeys_add(s, a, keys, 10, 11), WA_ENOTFOUND);
    assert_int_equal(wa_store_prekeys_count(s, a, 0, &n), 0);
    assert_int_equal(n, 0);
    fill_creds(&c, 1);
    assert_int_equal(wa_store_creds_save(s, a, &c, 0), 0);
    /* id 0 is never valid */
    keys[0].id = 0;
    assert_int_equal(wa_store_prekeys_add(s, a, keys, 10, 11), WA_EINVAL);
    keys[0].id = 1;
    assert_int_equal(wa_store_prekeys_add(s, a, keys, 10, 11), 0);
    assert_int_equal(wa_store_creds_load(s, a, &got), 0);
    assert_int_equal(got.next_prekey_id, 11);
    /* a duplicate id rolls the whole batch back */
    assert_int_equal(wa_store_prekeys_add(s, a, keys + 9, 1, 12), WA_EEXIST);
    assert_int_equal(wa_store_creds_load(s, a, &got), 0);
    assert_int_equal(got.next_prekey_id, 11);

    assert_int_equal(wa_store_prekeys_pending(s, a, out, 4, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(out[0].id, 1);
    assert_int_equal(out[3].id, 4);
    assert_int_equal(out[3].pub[0], 103);
    assert_int_equal(wa_store_prekeys_mark_uploaded(s, a, ids, 3), 0);
    assert_int_equal(wa_store_prekeys_pending(s, a, out, 10, &n), 0);
    assert_int_equal(n, 7);
    assert_int_equal(out[0].id, 4);
    assert_int_equal(wa_store_prekeys_count(s, a, 1, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(wa_store_prekeys_count(s, a, 0, &n), 0);
    assert_int_equal(n, 10);
    assert_int_equal(wa_store_prekey_get(s, a, 5, &one), 0);
    assert_int_equal(one.id, 5);
    assert_int_equal(one.priv[0], 4);
    assert_int_equal(wa_store_prekey_remove(s, a, 5), 0);
    assert_int_equal(wa_store_prekey_get(s, a, 5, &one), WA_ENOTFOUND);
    assert_int_equal(wa_store_prekey_remove(s, a, 5), 0);
    wa_store_close(s);
}

static void test_lid_map(void **state)
{
    wa_store *s = open_store("lid.db");
    char out[64];
    int64_t a, b;

    (void)state;
    assert_int_equal(wa_store_account(s, "a", 1, &a), 0);
    assert_int_equal(wa_store_account(s, "b", 1, &b), 0);
    assert_int_equal(wa_store_lid_put(s, a, "15551234567", "99887766"), 0);
    assert_int_equal(wa_store_lid_for_pn(s, a, "15551234567", out, sizeof out), 0);
    assert_string_equal(out, "99887766");
    assert_int_equal(wa_store_pn_for_lid(s, a, "99887766", out, sizeof out), 0);
    assert_string_equal(out, "15551234567");
    assert_int_equal(wa_store_lid_for_pn(s, b, "15551234567", out, sizeof out), WA_ENOTFOUND);
    /* a new LID for the same number replaces the old mapping both ways */
    assert_int_equal(wa_store_lid_put(s, a, "15551234567", "11112222"), 0);
    assert_int_equal(wa_store_pn_for_lid(s, a, "99887766", out, sizeof out), WA_ENOTFOUND);
    assert_int_equal(wa_store_lid_for_pn(s, a, "15551234567", out, sizeof out), 0);
    assert_string_equal(out, "11112222");
    assert_int_equal(wa_store_lid_for_pn(s, a, "15551234567", out, 4), WA_ELIMIT);
    assert_int_equal(wa_store_lid_put(s, a, "", "1"), WA_EINVAL);
    wa_store_close(s);
}

static int count_cb(int64_t id, const char *name, void *ud)
{
    (void)id;
    (void)name;
    (*(int *)ud)++;
    return 0;
}

static void test_wipe_and_delete(void **state)
{
    wa_store *s = open_store("w.db");
    wa_store_creds c, got;
    wa_store_prekey k;
    int64_t a, b, again;
    char out[32];
    size_t n;
    int count = 0;

    (void)state;
    assert_int_equal(wa_store_account(s, "a", 1, &a), 0);
    assert_int_equal(wa_store_account(s, "b", 1, &b), 0);
    fill_creds(&c, 1);
    snprintf(c.me_jid, sizeof c.me_jid, "1:1@s.whatsapp.net");
    assert_int_equal(wa_store_creds_save(s, a, &c, 1), 0);
    assert_int_equal(wa_store_creds_save(s, b, &c, 1), 0);
    k.id = 1;
    memset(k.priv, 1, 32);
    memset(k.pub, 2, 32);
    assert_int_equal(wa_store_prekeys_add(s, a, &k, 1, 2), 0);
    assert_int_equal(wa_store_prekeys_add(s, b, &k, 1, 2), 0);
    assert_int_equal(wa_store_lid_put(s, a, "1", "2"), 0);

    /* logout wipe: credentials, keys and map gone, the name stays */
    assert_int_equal(wa_store_account_wipe(s, a), 0);
    assert_int_equal(wa_store_creds_load(s, a, &got), WA_ENOTFOUND);
    assert_false(wa_store_account_paired(s, a));
    assert_int_equal(wa_store_prekeys_count(s, a, 0, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(wa_store_lid_for_pn(s, a, "1", out, sizeof out), WA_ENOTFOUND);
    assert_int_equal(wa_store_account(s, "a", 0, &again), 0);
    assert_int_equal(again, a);
    /* the other account is untouched */
    assert_true(wa_store_account_paired(s, b));
    assert_int_equal(wa_store_prekeys_count(s, b, 0, &n), 0);
    assert_int_equal(n, 1);

    assert_int_equal(wa_store_account_delete(s, b), 0);
    assert_int_equal(wa_store_account(s, "b", 0, &again), WA_ENOTFOUND);
    assert_int_equal(wa_store_account_delete(s, b), WA_ENOTFOUND);
    assert_int_equal(wa_store_accounts(s, count_cb, &count), 0);
    assert_int_equal(count, 1);
    wa_store_close(s);
}

static void test_snapshot_restore(void **state)
{
    wa_store *s = open_store("main.db"), *t;
    wa_store_creds c, got;
    wa_store_prekey keys[3], out[3];
    char snap[300], out_s[32];
    struct stat st;
    int64_t a, b, r, r2;
    size_t n, i;

    (void)state;
    assert_int_equal(wa_store_account(s, "a", 1, &a), 0);
    assert_int_equal(wa_store_account(s, "b", 1, &b), 0);
    fill_creds(&c, 9);
    snprintf(c.me_jid, sizeof c.me_jid, "15550001111:2@s.whatsapp.net");
    snprintf(c.me_lid, sizeof c.me_lid, "4242:2@lid");
    c.adv_identity_len = 5;
    memcpy(c.adv_identity, "hello", 5);
    assert_int_equal(wa_store_creds_save(s, a, &c, 1), 0);
    for (i = 0; i < 3; i++) {
        keys[i].id = (uint32_t)(i + 1);
        memset(keys[i].priv, 0x10 + (int)i, 32);
        memset(keys[i].pub, 0x20 + (int)i, 32);
    }
    assert_int_equal(wa_store_prekeys_add(s, a, keys, 3, 4), 0);
    c.next_prekey_id = 4;
    assert_int_equal(wa_store_lid_put(s, a, "15550001111", "4242"), 0);
    fill_creds(&got, 77);
    assert_int_equal(wa_store_creds_save(s, b, &got, 0), 0);

    path_of(snap, sizeof snap, "a.snap");
    assert_int_equal(wa_store_snapshot(s, a, snap), 0);
    assert_int_equal(stat(snap, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(wa_store_snapshot(s, a, snap), WA_EEXIST);
    {
        char p[300];
        path_of(p, sizeof p, "missing.snap");
        assert_int_equal(wa_store_snapshot(s, 999, p), WA_ENOTFOUND);
        assert_int_not_equal(access(p, F_OK), 0); /* a failed snapshot leaves no file */
    }

    /* restore into another store and into the same one under another name */
    t = open_store("other.db");
    assert_int_equal(wa_store_restore(t, snap, "restored", &r), 0);
    assert_int_equal(wa_store_creds_load(t, r, &got), 0);
    assert_creds_equal(&c, &got);
    assert_int_equal(wa_store_prekeys_pending(t, r, out, 3, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[2].priv[0], 0x12);
    assert_int_equal(wa_store_lid_for_pn(t, r, "15550001111", out_s, sizeof out_s), 0);
    assert_string_equal(out_s, "4242");
    assert_int_equal(wa_store_restore(t, snap, "restored", &r2), WA_EEXIST);
    wa_store_close(t);

    assert_int_equal(wa_store_restore(s, snap, "copy", &r), 0);
    assert_true(r != a && r != b);
    assert_int_equal(wa_store_creds_load(s, r, &got), 0);
    assert_creds_equal(&c, &got);
    /* only account a went into the snapshot */
    assert_int_equal(wa_store_creds_load(s, b, &got), 0);
    assert_int_equal(got.noise_priv[0], 77);

    /* not a snapshot */
    {
        char p[300];
        path_of(p, sizeof p, "main.db");
        assert_int_equal(wa_store_restore(s, p, "bad", &r2), WA_EINVAL);
        path_of(p, sizeof p, "nothing-here");
        assert_int_equal(wa_store_restore(s, p, "bad", &r2), WA_EINVAL);
    }
    wa_store_close(s);
}

static void test_two_connections(void **state)
{
    /* two loop threads would each open their own connection on one file */
    wa_store *s = open_store("two.db"), *t = open_store("two.db");
    wa_store_creds c, got;
    int64_t a, a2;

    (void)state;
    assert_int_equal(wa_store_account(s, "a", 1, &a), 0);
    fill_creds(&c, 3);
    assert_int_equal(wa_store_creds_save(s, a, &c, 0), 0);
    assert_int_equal(wa_store_account(t, "a", 0, &a2), 0);
    assert_int_equal(a, a2);
    assert_int_equal(wa_store_creds_load(t, a2, &got), 0);
    assert_creds_equal(&c, &got);
    wa_store_close(s);
    wa_store_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_bad),
        cmocka_unit_test(test_accounts_and_creds),
        cmocka_unit_test(test_signed_prekey_rotation),
        cmocka_unit_test(test_prekeys),
        cmocka_unit_test(test_lid_map),
        cmocka_unit_test(test_wipe_and_delete),
        cmocka_unit_test(test_snapshot_restore),
        cmocka_unit_test(test_two_connections),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
